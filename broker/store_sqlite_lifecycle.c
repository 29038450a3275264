/*
 * store_sqlite_lifecycle.c - the SQLite store's lifecycle and deadline
 * operations (see store.h): deadlines armed per inbox row and settled once,
 * the steps each row went through, a member's sent messages and the overdue
 * list. Statements are prepared on first use and kept for the life of the
 * connection (store_sqlite_impl.h).
 */
#include "log.h"
#include "store.h"
#include "store_sqlite_impl.h"

#include <stdlib.h>
#include <string.h>

enum lc_stmt {
    LC_STEP_INSERT,
    LC_ARM,
    LC_DUE,
    LC_SETTLE,
    LC_LIST,
    LC_OVERDUE,
    LC_INBOX_SEQ,
    LC_INBOX_MSG,
    LC_STEPS,
    LC_RECEIPTS,
    LC_SENT,
    LC_SENT_ROWS,
    LC_SENT_DEADLINES,
    LC_COUNT
};

/* A deadline is keyed by (seq, kind) (schema step 6); its id, which settles
 * it and is the overdue list's cursor, packs both into one number:
 * seq * 2^DEADLINE_KIND_BITS + kind (kinds are below 8: the table's CHECK).
 * Ordering by id is ordering by (seq, kind). DEADLINE_ID is that id in SQL,
 * over the columns of table alias p ("" or "d."). */
#define DEADLINE_KIND_BITS 3
#define DEADLINE_KIND_MASK ((UINT64_C(1) << DEADLINE_KIND_BITS) - 1)
#define DEADLINE_ID(p)     "(" p "seq * 8 + " p "kind)"
_Static_assert(DEADLINE_KIND_BITS == 3, "DEADLINE_ID multiplies by 8");

#define DEADLINE_COLS DEADLINE_ID("") ", seq, kind, due_ms, state, settled_at_ms, notice_id"

static const char *const lc_sql[LC_COUNT] = {
    [LC_STEP_INSERT] = "INSERT INTO steps (seq, state, at_ms) VALUES (?1, ?2, ?3)",
    [LC_ARM] = "INSERT INTO deadlines (seq, kind, due_ms) VALUES (?1, ?2, ?3)",
    /* state = PENDING literally, so that the partial index deadlines_pending is
     * the one used. */
    [LC_DUE] = "SELECT " DEADLINE_COLS " FROM deadlines"
               " WHERE state = " SQ_DL_PENDING " AND due_ms <= ?1"
               " ORDER BY due_ms LIMIT ?2",
    [LC_SETTLE] = "UPDATE deadlines SET state = ?3, settled_at_ms = ?4, notice_id = ?5"
                  " WHERE seq = ?1 AND kind = ?2 AND state = " SQ_DL_PENDING,
    [LC_LIST] = "SELECT " DEADLINE_COLS " FROM deadlines WHERE seq = ?1 ORDER BY kind",
    /* Breached deliver (1) / accept (2) deadlines whose row is still below
     * the state that meets them: delivered (3), resp. accepted (4). DEAD
     * (7) rows are settled, not overdue. The cursor is a deadline id:
     * (seq, kind) after (?1, ?3). */
    [LC_OVERDUE] = "SELECT " DEADLINE_ID(
        "d.") ", d.seq, d.kind, d.due_ms, d.state, d.settled_at_ms,"
              " d.notice_id,"
              " i.seq, i.recipient, i.message_id, i.sender, i.kind, i.urgency, i.msg_status,"
              " i.state, i.received_at_ms, i.created_at_ms, i.size, i.in_reply_to,"
              " i.case_ref, i.receipt_status, i.receipt"
              " FROM deadlines d JOIN inbox i ON i.seq = d.seq"
              " WHERE d.state = " SQ_DL_BREACHED " AND (d.seq, d.kind) > (?1, ?3)"
              " AND d.kind IN (" SQ_DL_DELIVER ", " SQ_DL_ACCEPT ")"
              " AND ((d.kind = " SQ_DL_DELIVER " AND i.state IN (" SQ_QUEUED ", " SQ_FETCHED "))"
              " OR (d.kind = " SQ_DL_ACCEPT " AND i.state IN (" SQ_QUEUED ", " SQ_FETCHED
              ", " SQ_DELIVERED ")))"
              " ORDER BY d.seq, d.kind LIMIT ?2",
    [LC_INBOX_SEQ] = "SELECT " SQ_INBOX_COLS " FROM inbox WHERE seq = ?1",
    [LC_INBOX_MSG] = "SELECT " SQ_INBOX_COLS " FROM inbox"
                     " WHERE msg = (SELECT id FROM messages WHERE message_id = ?1) ORDER BY seq",
    [LC_STEPS] = "SELECT state, at_ms FROM steps WHERE seq = ?1 ORDER BY rowid",
    [LC_RECEIPTS] = "SELECT status, received_at_ms, signed_receipt FROM receipts"
                    " WHERE message_id = ?1 AND recipient = ?2 ORDER BY id",
    [LC_SENT] = "SELECT " SQ_MESSAGE_COLS " FROM messages WHERE sender = ?1 AND id > ?2"
                " ORDER BY id LIMIT ?3",
    /* One ListSent page's rows and deadlines, each in one statement: the
     * messages through messages_sender, their rows through inbox_msg_recipient,
     * the rows' deadlines through the deadlines key. */
    [LC_SENT_ROWS] = "SELECT " SQ_INBOX_COLS ", msg FROM inbox WHERE msg IN"
                     " (SELECT id FROM messages WHERE sender = ?1 AND id > ?2 AND id <= ?3)"
                     " ORDER BY msg, seq",
    [LC_SENT_DEADLINES] = "SELECT " DEADLINE_COLS " FROM deadlines WHERE seq IN"
                          " (SELECT seq FROM inbox WHERE msg IN (SELECT id FROM messages"
                          " WHERE sender = ?1 AND id > ?2 AND id <= ?3))"
                          " ORDER BY seq, kind",
};

const char *sq_lifecycle_sql(size_t i)
{
    return i < LC_COUNT ? lc_sql[i] : NULL;
}

struct sq_lifecycle {
    sqlite3_stmt *st[LC_COUNT];
};

void sq_lifecycle_close(struct sq_lifecycle *lc)
{
    if (!lc)
        return;
    for (int i = 0; i < LC_COUNT; i++)
        sqlite3_finalize(lc->st[i]);
    free(lc);
}

/* The statement, prepared on first use, reset and unbound. NULL on failure
 * (logged; *err set). */
static sqlite3_stmt *stmt(struct store *s, enum lc_stmt which, int *err)
{
    struct sq_lifecycle **slot = sq_lifecycle_slot(s);
    if (!*slot) {
        *slot = calloc(1, sizeof **slot);
        if (!*slot) {
            *err = CASENET_ENOMEM;
            return NULL;
        }
    }
    sqlite3_stmt **st = &(*slot)->st[which];
    if (!*st) {
        int rc =
            sqlite3_prepare_v3(sq_db(s), lc_sql[which], -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
        if (rc != SQLITE_OK) {
            *st = NULL;
            *err = sq_map_rc(s, rc, lc_sql[which]);
            return NULL;
        }
    }
    sqlite3_reset(*st);
    sqlite3_clear_bindings(*st);
    return *st;
}

static int run(struct store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_DONE ? CASENET_OK : sq_map_rc(s, rc, what);
    sqlite3_reset(st);
    return err;
}

/* Grows *arr (of elem-sized items) to hold one more; CASENET_ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return CASENET_OK;
    size_t c = *cap ? 2 * *cap : 8;
    void *p = realloc(*arr, c * elem);
    if (!p)
        return CASENET_ENOMEM;
    memset((uint8_t *)p + *cap * elem, 0, (c - *cap) * elem);
    *arr = p;
    *cap = c;
    return CASENET_OK;
}

static void read_deadline(sqlite3_stmt *st, int base, struct store_deadline *d)
{
    memset(d, 0, sizeof *d);
    d->id = (uint64_t)sqlite3_column_int64(st, base + 0);
    d->seq = (uint64_t)sqlite3_column_int64(st, base + 1);
    d->kind = sqlite3_column_int(st, base + 2);
    d->due_ms = sqlite3_column_int64(st, base + 3);
    d->state = sqlite3_column_int(st, base + 4);
    d->settled_at_ms = sqlite3_column_int64(st, base + 5);
    d->has_notice = sq_col_fixed(st, base + 6, d->notice_id, sizeof d->notice_id);
}

/* ------------------------------------------------------------ steps */

int sq_lifecycle_step(struct store *s, uint64_t seq, int state, int64_t at_ms)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_STEP_INSERT, &err);
    if (!st)
        return err;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_int(st, 2, state);
    sqlite3_bind_int64(st, 3, at_ms);
    return run(s, st, "step_insert");
}

int sq_step_list(struct store *s, uint64_t seq, struct store_step **rows, size_t *n)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_STEPS, &err);
    if (!st)
        return err;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    struct store_step *out = NULL;
    size_t count = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((err = grow((void **)&out, &cap, count, sizeof *out)) != CASENET_OK)
            goto cleanup;
        out[count].state = sqlite3_column_int(st, 0);
        out[count].at_ms = sqlite3_column_int64(st, 1);
        count++;
    }
    if (rc != SQLITE_DONE) {
        err = sq_map_rc(s, rc, "step_list");
        goto cleanup;
    }
    *rows = out;
    *n = count;
    out = NULL;
    err = CASENET_OK;
cleanup:
    free(out);
    sqlite3_reset(st);
    return err;
}

/* ------------------------------------------------------------ deadlines */

int sq_deadline_arm(struct store *s, uint64_t seq, int kind, int64_t due_ms)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_ARM, &err);
    if (!st)
        return err;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_int(st, 2, kind);
    sqlite3_bind_int64(st, 3, due_ms);
    return run(s, st, "deadline_arm");
}

/* Reads every deadline a bound statement yields. */
static int read_deadlines(struct store *s, sqlite3_stmt *st, const char *what,
                          struct store_deadline **rows, size_t *n)
{
    struct store_deadline *out = NULL;
    size_t count = 0, cap = 0;
    int err = CASENET_OK, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((err = grow((void **)&out, &cap, count, sizeof *out)) != CASENET_OK)
            goto cleanup;
        read_deadline(st, 0, &out[count++]);
    }
    if (rc != SQLITE_DONE) {
        err = sq_map_rc(s, rc, what);
        goto cleanup;
    }
    *rows = out;
    *n = count;
    out = NULL;
    err = CASENET_OK;
cleanup:
    free(out);
    sqlite3_reset(st);
    return err;
}

int sq_deadline_due(struct store *s, int64_t now_ms, uint32_t limit, struct store_deadline **rows,
                    size_t *n)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_DUE, &err);
    if (!st)
        return err;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, limit);
    return read_deadlines(s, st, "deadline_due", rows, n);
}

int sq_deadline_list(struct store *s, uint64_t seq, struct store_deadline **rows, size_t *n)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_LIST, &err);
    if (!st)
        return err;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    return read_deadlines(s, st, "deadline_list", rows, n);
}

int sq_deadline_settle(struct store *s, uint64_t id, int state, int64_t now_ms,
                       const uint8_t *notice_id)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_SETTLE, &err);
    if (!st)
        return err;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(id >> DEADLINE_KIND_BITS));
    sqlite3_bind_int(st, 2, (int)(id & DEADLINE_KIND_MASK));
    sqlite3_bind_int(st, 3, state);
    sqlite3_bind_int64(st, 4, now_ms);
    if (notice_id)
        sqlite3_bind_blob(st, 5, notice_id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    err = run(s, st, "deadline_settle");
    if (err == CASENET_OK && sqlite3_changes(sq_db(s)) == 0)
        return CASENET_ENOTFOUND;
    return err;
}

int sq_overdue_list(struct store *s, uint64_t cursor, uint32_t limit, struct store_overdue **rows,
                    size_t *n, bool *more)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_OVERDUE, &err);
    if (!st)
        return err;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(cursor >> DEADLINE_KIND_BITS));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1);
    sqlite3_bind_int(st, 3, (int)(cursor & DEADLINE_KIND_MASK));
    struct store_overdue *out = NULL;
    size_t count = 0, cap = 0;
    bool extra = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == limit) {
            extra = true;
            break;
        }
        if ((err = grow((void **)&out, &cap, count, sizeof *out)) != CASENET_OK)
            goto cleanup;
        read_deadline(st, 0, &out[count].d);
        /* The row's columns follow the deadline's seven; sq_read_inbox_row
         * reads from column 0, so they are read here. */
        struct store_inbox_row *r = &out[count].row;
        count++;
        r->seq = (uint64_t)sqlite3_column_int64(st, 7);
        const unsigned char *rcpt = sqlite3_column_text(st, 8);
        const unsigned char *sender = sqlite3_column_text(st, 10);
        if (!rcpt || !sender || (size_t)sqlite3_column_bytes(st, 8) >= sizeof r->recipient ||
            (size_t)sqlite3_column_bytes(st, 10) >= sizeof r->sender ||
            !sq_col_fixed(st, 9, r->message_id, sizeof r->message_id)) {
            log_event(LOG_ERROR, "store_corrupt", "table", "inbox", "seq", log_u64(r->seq), NULL);
            err = CASENET_EUNAVAIL;
            goto cleanup;
        }
        memcpy(r->recipient, rcpt, (size_t)sqlite3_column_bytes(st, 8) + 1);
        memcpy(r->sender, sender, (size_t)sqlite3_column_bytes(st, 10) + 1);
        r->kind = sqlite3_column_int(st, 11);
        r->urgency = sqlite3_column_int(st, 12);
        r->msg_status = sqlite3_column_int(st, 13);
        r->state = sqlite3_column_int(st, 14);
        r->received_at_ms = sqlite3_column_int64(st, 15);
        r->created_at_ms = sqlite3_column_int64(st, 16);
        r->size = (uint32_t)sqlite3_column_int64(st, 17);
        r->has_in_reply_to = sq_col_fixed(st, 18, r->in_reply_to, sizeof r->in_reply_to);
        r->has_case_ref = sq_col_fixed(st, 19, r->case_ref, sizeof r->case_ref);
        r->receipt_status = sqlite3_column_int(st, 20);
        if ((err = sq_col_buf(st, 21, &r->receipt)) != CASENET_OK)
            goto cleanup;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = sq_map_rc(s, rc, "overdue_list");
        goto cleanup;
    }
    *rows = out;
    *n = count;
    *more = extra;
    out = NULL;
    count = 0;
    err = CASENET_OK;
cleanup:
    store_overdue_free(out, count);
    sqlite3_reset(st);
    return err;
}

/* ------------------------------------------------------------ inbox */

int sq_inbox_get_seq(struct store *s, uint64_t seq, struct store_inbox_row *out)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_INBOX_SEQ, &err);
    if (!st)
        return err;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct store_inbox_row r;
        err = sq_read_inbox_row(st, &r);
        if (err == CASENET_OK)
            *out = r;
        else
            store_inbox_row_clear(&r);
    } else {
        err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : sq_map_rc(s, rc, "inbox_get_seq");
    }
    sqlite3_reset(st);
    return err;
}

/* Reads every SQ_INBOX_COLS row a bound statement yields; with_msg: the
 * column after them is the message row (into msg_row). */
static int read_inbox_rows(struct store *s, sqlite3_stmt *st, const char *what, bool with_msg,
                           struct store_inbox_row **rows, size_t *n)
{
    int err = CASENET_OK;
    struct store_inbox_row *out = NULL;
    size_t count = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((err = grow((void **)&out, &cap, count, sizeof *out)) != CASENET_OK)
            goto cleanup;
        if ((err = sq_read_inbox_row(st, &out[count++])) != CASENET_OK)
            goto cleanup;
        if (with_msg)
            out[count - 1].msg_row = sqlite3_column_int64(st, 15);
    }
    if (rc != SQLITE_DONE) {
        err = sq_map_rc(s, rc, what);
        goto cleanup;
    }
    *rows = out;
    *n = count;
    out = NULL;
    count = 0;
    err = CASENET_OK;
cleanup:
    store_inbox_rows_free(out, count);
    sqlite3_reset(st);
    return err;
}

int sq_inbox_of_message(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                        struct store_inbox_row **rows, size_t *n)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_INBOX_MSG, &err);
    if (!st)
        return err;
    sqlite3_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC);
    return read_inbox_rows(s, st, "inbox_of_message", false, rows, n);
}

/* Binds (sender, after, upto) of a LC_SENT_* statement. */
static void bind_sent_range(sqlite3_stmt *st, const char *sender, uint64_t after, uint64_t upto)
{
    sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(after > INT64_MAX ? INT64_MAX : after));
    sqlite3_bind_int64(st, 3, (sqlite3_int64)(upto > INT64_MAX ? INT64_MAX : upto));
}

int sq_sent_rows(struct store *s, const char *sender, uint64_t after_row, uint64_t upto_row,
                 struct store_inbox_row **rows, size_t *n_rows, struct store_deadline **ds,
                 size_t *n_ds)
{
    int err = CASENET_OK;
    *rows = NULL;
    *ds = NULL;
    *n_rows = *n_ds = 0;
    sqlite3_stmt *st = stmt(s, LC_SENT_ROWS, &err);
    if (!st)
        return err;
    bind_sent_range(st, sender, after_row, upto_row);
    if ((err = read_inbox_rows(s, st, "sent_rows", true, rows, n_rows)) != CASENET_OK)
        return err;
    if ((st = stmt(s, LC_SENT_DEADLINES, &err)) != NULL) {
        bind_sent_range(st, sender, after_row, upto_row);
        err = read_deadlines(s, st, "sent_deadlines", ds, n_ds);
    }
    if (err != CASENET_OK) {
        store_inbox_rows_free(*rows, *n_rows);
        *rows = NULL;
        *n_rows = 0;
    }
    return err;
}

/* ------------------------------------------------------------ receipts */

int sq_receipt_list(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                    const char *recipient, struct store_receipt_rec **rows, size_t *n)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_RECEIPTS, &err);
    if (!st)
        return err;
    sqlite3_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, recipient, -1, SQLITE_STATIC);
    struct store_receipt_rec *out = NULL;
    size_t count = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((err = grow((void **)&out, &cap, count, sizeof *out)) != CASENET_OK)
            goto cleanup;
        struct store_receipt_rec *r = &out[count++];
        r->status = sqlite3_column_int(st, 0);
        r->received_at_ms = sqlite3_column_int64(st, 1);
        if ((err = sq_col_buf(st, 2, &r->signed_receipt)) != CASENET_OK)
            goto cleanup;
    }
    if (rc != SQLITE_DONE) {
        err = sq_map_rc(s, rc, "receipt_list");
        goto cleanup;
    }
    *rows = out;
    *n = count;
    out = NULL;
    count = 0;
    err = CASENET_OK;
cleanup:
    store_receipt_recs_free(out, count);
    sqlite3_reset(st);
    return err;
}

/* ------------------------------------------------------------ sent */

int sq_sent_list(struct store *s, const char *sender, uint64_t cursor, uint32_t limit,
                 struct store_message **rows, size_t *n, bool *more)
{
    int err = CASENET_OK;
    sqlite3_stmt *st = stmt(s, LC_SENT, &err);
    if (!st)
        return err;
    sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(cursor > INT64_MAX ? INT64_MAX : cursor));
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
    struct store_message *out = NULL;
    size_t count = 0, cap = 0;
    bool extra = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == limit) {
            extra = true;
            break;
        }
        if ((err = grow((void **)&out, &cap, count, sizeof *out)) != CASENET_OK)
            goto cleanup;
        if ((err = sq_read_message_row(st, &out[count++])) != CASENET_OK)
            goto cleanup;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = sq_map_rc(s, rc, "sent_list");
        goto cleanup;
    }
    *rows = out;
    *n = count;
    *more = extra;
    out = NULL;
    count = 0;
    err = CASENET_OK;
cleanup:
    store_messages_free(out, count);
    sqlite3_reset(st);
    return err;
}
