/*
 * store_sqlite_inbox.c - the SQLite store's inbox rows (see store.h, struct
 * store_inbox_ops) and the counts behind the member limits: backlogs per
 * (recipient, sender), envelope bytes per member, fetch marks.
 */
#include "store.h"

#include "log.h"
#include "store_sqlite_impl.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ inbox */

int sq_read_inbox_row(sqlite3_stmt *st, struct store_inbox_row *r)
{
    memset(r, 0, sizeof *r);
    r->seq = (uint64_t)sqlite3_column_int64(st, 0);
    if (!sq_col_text(st, 1, r->recipient, sizeof r->recipient) ||
        !sq_col_fixed(st, 2, r->message_id, sizeof r->message_id) ||
        !sq_col_text(st, 3, r->sender, sizeof r->sender)) {
        log_event(LOG_ERROR, "store_corrupt", "table", "inbox", "seq", log_u64(r->seq), NULL);
        return CASENET_EUNAVAIL;
    }
    r->kind = sqlite3_column_int(st, 4);
    r->urgency = sqlite3_column_int(st, 5);
    r->msg_status = sqlite3_column_int(st, 6);
    r->state = sqlite3_column_int(st, 7);
    r->received_at_ms = sqlite3_column_int64(st, 8);
    r->created_at_ms = sqlite3_column_int64(st, 9);
    r->size = (uint32_t)sqlite3_column_int64(st, 10);
    r->has_in_reply_to = sq_col_fixed(st, 11, r->in_reply_to, sizeof r->in_reply_to);
    r->has_case_ref = sq_col_fixed(st, 12, r->case_ref, sizeof r->case_ref);
    r->receipt_status = sqlite3_column_int(st, 13);
    return sq_col_buf(st, 14, &r->receipt);
}

/* The row number of message id (ST_MSG_ROW): CASENET_ECONFLICT when no
 * message has that id. */
static int message_row(struct store *s, const uint8_t *id, int64_t *out)
{
    sqlite3_stmt *st = sq_stmt(s, ST_MSG_ROW);
    sq_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES);
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_ROW    ? CASENET_OK
              : rc == SQLITE_DONE ? CASENET_ECONFLICT
                                  : sq_map_rc(s, rc, "message_row");
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return err;
}

/* Runs st, bound, a query of one row whose first column is a truth value
 * (EXISTS ...), into *yes; resets st. */
static int query_bool(struct store *s, sqlite3_stmt *st, bool *yes, const char *what)
{
    int rc = sqlite3_step(st);
    int err = CASENET_OK;
    if (rc == SQLITE_ROW)
        *yes = sqlite3_column_int(st, 0) != 0;
    else
        err = sq_map_rc(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    sqlite3_reset(st);
    return err;
}

/* Whether row r may be inserted, linked to message row msg_row, or a
 * receipt row when msg_row is 0 (ST_INBOX_LINK_CHECK, ST_INBOX_RECEIPT_CHECK):
 * CASENET_ECONFLICT when its pair is taken or msg_row is not its message's. */
static int inbox_check(struct store *s, const struct store_inbox_row *r, int64_t msg_row)
{
    sqlite3_stmt *st = sq_stmt(s, msg_row ? ST_INBOX_LINK_CHECK : ST_INBOX_RECEIPT_CHECK);
    sq_bind_text(st, 1, r->recipient);
    sq_bind_blob(st, 2, r->message_id, sizeof r->message_id);
    if (msg_row)
        sqlite3_bind_int64(st, 3, msg_row);
    bool refused = true;
    int rc = query_bool(s, st, &refused, "inbox_check");
    return rc != CASENET_OK ? rc : refused ? CASENET_ECONFLICT : CASENET_OK;
}

static int sq_inbox_insert(struct store *s, struct store_inbox_row *r)
{
    bool receipt_row = r->kind == STORE_KIND_RECEIPT;
    assert(!r->msg_row || !receipt_row); /* a receipt row has no message */
    /* A check, then a one-row INSERT (see ST_INBOX_LINK_CHECK). A message
     * row named by id only (a broker notice) finds its message's row first. */
    int64_t msg_row = r->msg_row;
    int rc = CASENET_OK;
    if (!receipt_row && !msg_row)
        rc = message_row(s, r->message_id, &msg_row);
    if (rc == CASENET_OK)
        rc = inbox_check(s, r, msg_row); /* msg_row is 0 for a receipt row */
    if (rc != CASENET_OK)
        return rc;
    sqlite3_stmt *st = sq_stmt(s, ST_INBOX_INSERT);
    sq_bind_text(st, 1, r->recipient);
    sq_bind_blob(st, 2, r->message_id, sizeof r->message_id);
    if (!receipt_row)
        sqlite3_bind_int64(st, 3, msg_row); /* else NULL (cleared) */
    sq_bind_text(st, 4, r->sender);
    sqlite3_bind_int(st, 5, r->kind);
    sqlite3_bind_int(st, 6, r->urgency);
    sqlite3_bind_int(st, 7, r->msg_status);
    sqlite3_bind_int(st, 8, r->state);
    sqlite3_bind_int64(st, 9, r->received_at_ms);
    sqlite3_bind_int64(st, 10, r->created_at_ms);
    sqlite3_bind_int64(st, 11, r->size);
    sq_bind_blob(st, 12, r->has_in_reply_to ? r->in_reply_to : NULL, sizeof r->in_reply_to);
    sq_bind_blob(st, 13, r->has_case_ref ? r->case_ref : NULL, sizeof r->case_ref);
    sqlite3_bind_int(st, 14, r->receipt_status);
    sq_bind_blob(st, 15, r->receipt.data, r->receipt.len);
    rc = sq_run(s, st, "inbox_insert"); /* (msg, recipient) taken: CASENET_ECONFLICT */
    if (rc == CASENET_OK)
        r->seq = (uint64_t)sqlite3_last_insert_rowid(sq_db(s));
    return rc;
}

static int sq_inbox_get(struct store *s, const char *recipient,
                        const uint8_t id[CASENET_MESSAGE_ID_BYTES], struct store_inbox_row *out)
{
    sqlite3_stmt *st = sq_stmt(s, ST_INBOX_GET);
    sq_bind_text(st, 1, recipient);
    sq_bind_blob(st, 2, id, CASENET_MESSAGE_ID_BYTES);
    int rc = sqlite3_step(st);
    int err;
    if (rc == SQLITE_ROW) {
        struct store_inbox_row r;
        err = sq_read_inbox_row(st, &r);
        if (err == CASENET_OK)
            *out = r;
        else
            store_inbox_row_clear(&r);
    } else {
        err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : sq_map_rc(s, rc, "inbox_get");
    }
    sqlite3_reset(st);
    return err;
}

static int sq_inbox_receipt_row(struct store *s, const char *recipient,
                                const uint8_t id[CASENET_MESSAGE_ID_BYTES], bool *taken)
{
    sqlite3_stmt *st = sq_stmt(s, ST_INBOX_RECEIPT_ROW);
    sq_bind_text(st, 1, recipient);
    sq_bind_blob(st, 2, id, CASENET_MESSAGE_ID_BYTES);
    return query_bool(s, st, taken, "inbox_receipt_row");
}

static int sq_inbox_list(struct store *s, const char *recipient, int state, uint64_t cursor,
                         uint32_t limit, struct store_inbox_row **rows, size_t *n, bool *more)
{
    sqlite3_stmt *st = sq_stmt(s, state ? ST_INBOX_LIST_STATE : ST_INBOX_LIST_ANY);
    struct store_inbox_row *out = NULL;
    size_t count = 0;
    int err = CASENET_ENOMEM;
    if (limit > 0) {
        out = calloc(limit, sizeof *out);
        if (!out)
            return CASENET_ENOMEM;
    }
    sq_bind_text(st, 1, recipient);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(cursor > INT64_MAX ? INT64_MAX : cursor));
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
    if (state)
        sqlite3_bind_int(st, 4, state);
    bool extra = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == limit) {
            extra = true;
            break;
        }
        if ((err = sq_read_inbox_row(st, &out[count])) != CASENET_OK) {
            count++;
            goto cleanup;
        }
        count++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = sq_map_rc(s, rc, "inbox_list");
        goto cleanup;
    }
    *rows = count ? out : NULL;
    if (!count)
        free(out);
    *n = count;
    *more = extra;
    out = NULL;
    count = 0;
    err = CASENET_OK;
cleanup:
    store_inbox_rows_free(out, count);
    sqlite3_reset(st);
    return err;
}

static int sq_inbox_set_state(struct store *s, uint64_t seq, int state, int64_t now_ms)
{
    sqlite3_stmt *st = sq_stmt(s, ST_INBOX_SET_STATE);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_int(st, 2, state);
    sqlite3_bind_int64(st, 3, now_ms);
    int rc = sq_run(s, st, "inbox_set_state");
    if (rc == CASENET_OK && sqlite3_changes(sq_db(s)) == 0)
        return CASENET_ENOTFOUND;
    if (rc == CASENET_OK)
        rc = sq_lifecycle_step(s, seq, state, now_ms);
    return rc;
}

/* ------------------------------------------------------------ limits */

/* Reads up to two non-negative counts of a one-row statement (no row: 0). */
static int read_counts(struct store *s, sqlite3_stmt *st, const char *what, uint64_t *a,
                       uint64_t *b)
{
    int rc = sqlite3_step(st);
    int err = CASENET_OK;
    *a = 0;
    if (b)
        *b = 0;
    if (rc == SQLITE_ROW) {
        sqlite3_int64 n = sqlite3_column_int64(st, 0);
        *a = n > 0 ? (uint64_t)n : 0;
        if (b && (n = sqlite3_column_int64(st, 1)) > 0)
            *b = (uint64_t)n;
    } else if (rc != SQLITE_DONE) {
        err = sq_map_rc(s, rc, what);
    }
    sqlite3_reset(st);
    return err;
}

static int sq_inbox_backlog(struct store *s, const char *recipient, const char *sender,
                            uint64_t *queued, uint64_t *from_sender)
{
    sqlite3_stmt *st = sq_stmt(s, ST_INBOX_BACKLOG);
    sq_bind_text(st, 1, recipient);
    sq_bind_text(st, 2, sender);
    return read_counts(s, st, "inbox_backlog", queued, from_sender);
}

int sq_member_bytes(struct store *s, const char *member, uint64_t *bytes)
{
    sqlite3_stmt *st = sq_stmt(s, ST_MEMBER_BYTES);
    sq_bind_text(st, 1, member);
    return read_counts(s, st, "member_bytes", bytes, NULL);
}

int sq_member_bytes_add(struct store *s, const char *member, uint64_t bytes)
{
    sqlite3_stmt *st = sq_stmt(s, ST_MEMBER_BYTES_ADD);
    sq_bind_text(st, 1, member);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)bytes);
    return sq_run(s, st, "member_bytes_add");
}

static int sq_inbox_fetch_mark(struct store *s, uint64_t seq, int state, bool *first)
{
    sqlite3_stmt *st = sq_stmt(s, ST_INBOX_FETCH_MARK);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_int(st, 2, state);
    int rc = sq_run(s, st, "inbox_fetch_mark");
    *first = rc == CASENET_OK && sqlite3_changes(sq_db(s)) > 0;
    return rc;
}

const struct store_inbox_ops sq_inbox_ops = {
    .inbox_insert = sq_inbox_insert,
    .inbox_get = sq_inbox_get,
    .inbox_receipt_row = sq_inbox_receipt_row,
    .inbox_list = sq_inbox_list,
    .inbox_set_state = sq_inbox_set_state,
    .inbox_get_seq = sq_inbox_get_seq,
    .inbox_of_message = sq_inbox_of_message,
    .step_list = sq_step_list,
    .inbox_backlog = sq_inbox_backlog,
    .inbox_fetch_mark = sq_inbox_fetch_mark,
};
