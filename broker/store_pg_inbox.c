/*
 * store_pg_inbox.c - the PostgreSQL store's inbox rows (struct
 * store_inbox_ops), the counts behind the member limits, deadlines (struct
 * store_deadline_ops) and the lifecycle reads of a sender's messages.
 */
#include "store.h"

#include "log.h"
#include "store_pg_impl.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define DEADLINE_KIND_MASK ((UINT64_C(1) << PQ_DEADLINE_KIND_BITS) - 1)

/* ------------------------------------------------------------ rows */

int pq_read_inbox_row(const PGresult *r, int row, int base, struct store_inbox_row *out)
{
    memset(out, 0, sizeof *out);
    out->seq = (uint64_t)pq_col_i64(r, row, base + 0);
    if (!pq_col_text(r, row, base + 1, out->recipient, sizeof out->recipient) ||
        !pq_col_fixed(r, row, base + 2, out->message_id, sizeof out->message_id) ||
        !pq_col_text(r, row, base + 3, out->sender, sizeof out->sender)) {
        log_event(LOG_ERROR, "store_corrupt", "table", "inbox", "seq", log_u64(out->seq), NULL);
        return CASENET_EUNAVAIL;
    }
    out->kind = (int)pq_col_i64(r, row, base + 4);
    out->urgency = (int)pq_col_i64(r, row, base + 5);
    out->msg_status = (int)pq_col_i64(r, row, base + 6);
    out->state = (int)pq_col_i64(r, row, base + 7);
    out->received_at_ms = pq_col_i64(r, row, base + 8);
    out->created_at_ms = pq_col_i64(r, row, base + 9);
    out->size = (uint32_t)pq_col_i64(r, row, base + 10);
    out->has_in_reply_to =
        pq_col_fixed(r, row, base + 11, out->in_reply_to, sizeof out->in_reply_to);
    out->has_case_ref = pq_col_fixed(r, row, base + 12, out->case_ref, sizeof out->case_ref);
    out->receipt_status = (int)pq_col_i64(r, row, base + 13);
    return pq_col_buf(r, row, base + 14, &out->receipt);
}

void pq_read_deadline(const PGresult *r, int row, int base, struct store_deadline *d)
{
    memset(d, 0, sizeof *d);
    d->id = (uint64_t)pq_col_i64(r, row, base + 0);
    d->seq = (uint64_t)pq_col_i64(r, row, base + 1);
    d->kind = (int)pq_col_i64(r, row, base + 2);
    d->due_ms = pq_col_i64(r, row, base + 3);
    d->state = (int)pq_col_i64(r, row, base + 4);
    d->settled_at_ms = pq_col_i64(r, row, base + 5);
    d->has_notice = pq_col_fixed(r, row, base + 6, d->notice_id, sizeof d->notice_id);
}

int pq_read_deadlines(const PGresult *r, struct store_deadline **rows, size_t *n)
{
    size_t count = (size_t)PQntuples(r);
    struct store_deadline *out = count ? calloc(count, sizeof *out) : NULL;
    if (count && !out)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < count; i++)
        pq_read_deadline(r, (int)i, 0, &out[i]);
    *rows = out;
    *n = count;
    return CASENET_OK;
}

/* Reads up to max rows of PQ_INBOX_COLS (from column 0) into a malloc'd
 * array; with_msg: the column after them is the message row (msg_row). */
static int read_inbox_rows(const PGresult *r, size_t max, bool with_msg,
                           struct store_inbox_row **rows, size_t *n)
{
    size_t count = (size_t)PQntuples(r), done = 0;
    if (count > max)
        count = max;
    struct store_inbox_row *out = count ? calloc(count, sizeof *out) : NULL;
    int rc = count && !out ? CASENET_ENOMEM : CASENET_OK;
    for (; rc == CASENET_OK && done < count; done++) {
        rc = pq_read_inbox_row(r, (int)done, 0, &out[done]);
        if (with_msg)
            out[done].msg_row = pq_col_i64(r, (int)done, PQ_INBOX_NCOLS);
    }
    if (rc != CASENET_OK) {
        store_inbox_rows_free(out, done);
        return rc;
    }
    *rows = out;
    *n = count;
    return CASENET_OK;
}

/* Runs a statement answering one row at most, into *out: CASENET_ENOTFOUND
 * when none. */
static int one_inbox_row(struct store *s, enum pq_stmt which, const struct pq_args *a,
                         struct store_inbox_row *out, const char *what)
{
    PGresult *r = NULL;
    int rc = pq_run(s, which, a, &r, what);
    if (rc != CASENET_OK)
        return rc;
    struct store_inbox_row row;
    if (PQntuples(r) == 0)
        rc = CASENET_ENOTFOUND;
    else if ((rc = pq_read_inbox_row(r, 0, 0, &row)) == CASENET_OK)
        *out = row;
    else
        store_inbox_row_clear(&row);
    PQclear(r);
    return rc;
}

/* Runs a statement of one row whose first column is a truth value. */
static int query_bool(struct store *s, enum pq_stmt which, const struct pq_args *a, bool *yes,
                      const char *what)
{
    PGresult *r = NULL;
    int rc = pq_run(s, which, a, &r, what);
    if (rc != CASENET_OK)
        return rc;
    *yes = PQntuples(r) > 0 && pq_col_i64(r, 0, 0) != 0;
    PQclear(r);
    return CASENET_OK;
}

/* ------------------------------------------------------------ inbox */

static int pg_inbox_insert(struct store *s, struct store_inbox_row *row)
{
    bool receipt_row = row->kind == STORE_KIND_RECEIPT;
    assert(!row->msg_row || !receipt_row); /* a receipt row has no message */
    int64_t msg_row = row->msg_row;
    struct pq_args a = {0};
    int rc = CASENET_OK;
    if (!receipt_row && !msg_row) { /* a broker notice: find its message's row */
        pq_blob(&a, row->message_id, sizeof row->message_id);
        PGresult *r = NULL;
        if ((rc = pq_run(s, PQ_MSG_ROW, &a, &r, "message_row")) != CASENET_OK)
            return rc;
        rc = PQntuples(r) == 1 ? CASENET_OK : CASENET_ECONFLICT;
        if (rc == CASENET_OK)
            msg_row = pq_col_i64(r, 0, 0);
        PQclear(r);
        if (rc != CASENET_OK)
            return rc;
    }
    a = (struct pq_args){0};
    pq_text(&a, row->recipient);
    pq_blob(&a, row->message_id, sizeof row->message_id);
    if (receipt_row)
        pq_text(&a, NULL);
    else
        pq_i64(&a, msg_row);
    pq_text(&a, row->sender);
    pq_i64(&a, row->kind);
    pq_i64(&a, row->urgency);
    pq_i64(&a, row->msg_status);
    pq_i64(&a, row->state);
    pq_i64(&a, row->received_at_ms);
    pq_i64(&a, row->created_at_ms);
    pq_i64(&a, row->size);
    pq_blob(&a, row->has_in_reply_to ? row->in_reply_to : NULL, sizeof row->in_reply_to);
    pq_blob(&a, row->has_case_ref ? row->case_ref : NULL, sizeof row->case_ref);
    pq_i64(&a, row->receipt_status);
    pq_blob(&a, row->receipt.data, row->receipt.len);
    struct pg_store *p = (struct pg_store *)s;
    if (receipt_row) {
        p->n_free = 0; /* it may take a pair found free */
    } else if (pq_free_take(s, row->recipient, row->message_id, msg_row)) {
        int64_t seq = 0; /* cannot conflict: sent without waiting */
        if ((rc = pq_reserve(s, true, &seq)) != CASENET_OK)
            return rc;
        pq_i64(&a, seq);
        if ((rc = pq_defer(s, PQ_INBOX_INSERT_SEQ, NULL, &a, PQ_EXPECT_ONE, "inbox_insert")) ==
            CASENET_OK) {
            row->seq = (uint64_t)seq;
            p->fresh_seq = seq;
            p->fresh_kinds = 0;
            pq_cache_inbox_added(s, row);
        }
        return rc;
    }
    PGresult *r = NULL;
    rc = pq_run(s, receipt_row ? PQ_INBOX_INSERT_RECEIPT : PQ_INBOX_INSERT_LINKED, &a, &r,
                "inbox_insert");
    if (rc != CASENET_OK)
        return rc;
    rc = PQntuples(r) == 1 ? CASENET_OK : CASENET_ECONFLICT;
    if (rc == CASENET_OK) {
        row->seq = (uint64_t)pq_col_i64(r, 0, 0);
        p->fresh_seq = (int64_t)row->seq; /* no deadline yet (pg_deadline_arm) */
        p->fresh_kinds = 0;
        pq_cache_inbox_added(s, row);
    }
    PQclear(r);
    return rc;
}

static int pg_inbox_get(struct store *s, const char *recipient,
                        const uint8_t id[CASENET_MESSAGE_ID_BYTES], struct store_inbox_row *out)
{
    struct pq_args a = {0};
    pq_text(&a, recipient);
    pq_blob(&a, id, CASENET_MESSAGE_ID_BYTES);
    return one_inbox_row(s, PQ_INBOX_GET, &a, out, "inbox_get");
}

static int pg_inbox_get_seq(struct store *s, uint64_t seq, struct store_inbox_row *out)
{
    struct pq_args a = {0};
    pq_u64(&a, seq);
    return one_inbox_row(s, PQ_INBOX_SEQ, &a, out, "inbox_get_seq");
}

static int pg_inbox_receipt_row(struct store *s, const char *recipient,
                                const uint8_t id[CASENET_MESSAGE_ID_BYTES], bool *taken)
{
    struct pq_args a = {0};
    pq_text(&a, recipient);
    pq_blob(&a, id, CASENET_MESSAGE_ID_BYTES);
    int rc = query_bool(s, PQ_INBOX_RECEIPT_ROW, &a, taken, "inbox_receipt_row");
    if (rc == CASENET_OK && !*taken)
        pq_free_add(s, recipient, id); /* for inbox_insert */
    return rc;
}

static int pg_inbox_list(struct store *s, const char *recipient, int state, uint64_t cursor,
                         uint32_t limit, struct store_inbox_row **rows, size_t *n, bool *more)
{
    struct pq_args a = {0};
    pq_text(&a, recipient);
    pq_u64(&a, cursor);
    pq_i64(&a, (int64_t)limit + 1);
    if (state)
        pq_i64(&a, state);
    PGresult *r = NULL;
    int rc = pq_run(s, state ? PQ_INBOX_LIST_STATE : PQ_INBOX_LIST_ANY, &a, &r, "inbox_list");
    if (rc != CASENET_OK)
        return rc;
    if ((rc = read_inbox_rows(r, limit, false, rows, n)) == CASENET_OK)
        *more = PQntuples(r) > (int)limit;
    PQclear(r);
    return rc;
}

static int pg_inbox_of_message(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                               struct store_inbox_row **rows, size_t *n)
{
    struct pq_args a = {0};
    pq_blob(&a, id, CASENET_MESSAGE_ID_BYTES);
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_INBOX_MSG, &a, &r, "inbox_of_message");
    if (rc != CASENET_OK)
        return rc;
    rc = read_inbox_rows(r, SIZE_MAX, false, rows, n);
    PQclear(r);
    return rc;
}

static int pg_inbox_set_state(struct store *s, uint64_t seq, int state, int64_t now_ms)
{
    struct pq_args a = {0};
    pq_u64(&a, seq);
    pq_i64(&a, state);
    pq_i64(&a, now_ms);
    uint64_t touched = 0;
    int rc = pq_write(s, PQ_INBOX_SET_STATE, &a, &touched, "inbox_set_state");
    if (rc != CASENET_OK)
        return rc;
    if (touched == 0)
        return CASENET_ENOTFOUND;
    /* the same (seq, state, at) */
    return pq_defer(s, PQ_STEP_INSERT, NULL, &a, PQ_EXPECT_DONE, "step_insert");
}

static int pg_step_list(struct store *s, uint64_t seq, struct store_step **rows, size_t *n)
{
    struct pq_args a = {0};
    pq_u64(&a, seq);
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_STEPS, &a, &r, "step_list");
    if (rc != CASENET_OK)
        return rc;
    size_t count = (size_t)PQntuples(r);
    struct store_step *out = count ? calloc(count, sizeof *out) : NULL;
    if (count && !out) {
        rc = CASENET_ENOMEM;
    } else {
        for (size_t i = 0; i < count; i++) {
            out[i].state = (int)pq_col_i64(r, (int)i, 0);
            out[i].at_ms = pq_col_i64(r, (int)i, 1);
        }
        *rows = out;
        *n = count;
    }
    PQclear(r);
    return rc;
}

/* ------------------------------------------------------------ limits */

static int pg_inbox_backlog(struct store *s, const char *recipient, const char *sender,
                            uint64_t *queued, uint64_t *from_sender)
{
    if (pq_cache_backlog_get(s, recipient, sender, queued, from_sender))
        return CASENET_OK; /* read earlier in this batch */
    struct pq_args a = {0};
    pq_text(&a, recipient);
    pq_text(&a, sender);
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_INBOX_BACKLOG, &a, &r, "inbox_backlog");
    if (rc != CASENET_OK)
        return rc;
    int64_t q = PQntuples(r) ? pq_col_i64(r, 0, 0) : 0;
    int64_t f = PQntuples(r) ? pq_col_i64(r, 0, 1) : 0;
    *queued = q > 0 ? (uint64_t)q : 0;
    *from_sender = f > 0 ? (uint64_t)f : 0;
    PQclear(r);
    pq_cache_backlog_put(s, recipient, sender, *queued, *from_sender);
    return CASENET_OK;
}

int pq_member_bytes(struct store *s, const char *member, uint64_t *bytes)
{
    if (pq_cache_bytes_get(s, member, bytes))
        return CASENET_OK; /* read earlier in this batch */
    struct pq_args a = {0};
    pq_text(&a, member);
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_MEMBER_BYTES, &a, &r, "member_bytes");
    if (rc != CASENET_OK)
        return rc;
    int64_t v = PQntuples(r) ? pq_col_i64(r, 0, 0) : 0;
    *bytes = v > 0 ? (uint64_t)v : 0;
    PQclear(r);
    pq_cache_bytes_put(s, member, *bytes);
    return CASENET_OK;
}

int pq_member_bytes_add(struct store *s, const char *member, uint64_t bytes)
{
    struct pq_args a = {0};
    pq_text(&a, member);
    pq_u64(&a, bytes);
    return pq_defer(s, PQ_MEMBER_BYTES_ADD, NULL, &a, PQ_EXPECT_DONE, "member_bytes_add");
}

static int pg_inbox_fetch_mark(struct store *s, uint64_t seq, int state, bool *first)
{
    struct pq_args a = {0};
    pq_u64(&a, seq);
    pq_i64(&a, state);
    uint64_t touched = 0;
    int rc = pq_write(s, PQ_INBOX_FETCH_MARK, &a, &touched, "inbox_fetch_mark");
    *first = rc == CASENET_OK && touched > 0;
    return rc;
}

/* ------------------------------------------------------------ deadlines */

/* On the inbox row this batch inserted last, a kind not armed on it yet
 * cannot conflict: sent without waiting (store_pg_pipe.c). */
static int pg_deadline_arm(struct store *s, uint64_t seq, int kind, int64_t due_ms)
{
    struct pg_store *p = (struct pg_store *)s;
    struct pq_args a = {0};
    pq_u64(&a, seq);
    pq_i64(&a, kind);
    pq_i64(&a, due_ms);
    unsigned bit = kind >= 0 && kind < 32 ? 1u << kind : 0;
    if (p->pipe && p->fresh_seq != 0 && (uint64_t)p->fresh_seq == seq && bit &&
        !(p->fresh_kinds & bit)) {
        p->fresh_kinds |= bit;
        return pq_defer(s, PQ_DL_ARM_NEW, NULL, &a, PQ_EXPECT_ONE, "deadline_arm");
    }
    uint64_t touched = 0;
    int rc = pq_write(s, PQ_DL_ARM, &a, &touched, "deadline_arm");
    return rc == CASENET_OK && touched == 0 ? CASENET_ECONFLICT : rc;
}

/* Runs a deadline statement and reads every row. */
static int deadlines(struct store *s, enum pq_stmt which, const struct pq_args *a,
                     struct store_deadline **rows, size_t *n, const char *what)
{
    PGresult *r = NULL;
    int rc = pq_run(s, which, a, &r, what);
    if (rc != CASENET_OK)
        return rc;
    rc = pq_read_deadlines(r, rows, n);
    PQclear(r);
    return rc;
}

static int pg_deadline_due(struct store *s, int64_t now_ms, uint32_t limit,
                           struct store_deadline **rows, size_t *n)
{
    struct pq_args a = {0};
    pq_i64(&a, now_ms);
    pq_i64(&a, limit);
    return deadlines(s, PQ_DL_DUE, &a, rows, n, "deadline_due");
}

static int pg_deadline_list(struct store *s, uint64_t seq, struct store_deadline **rows, size_t *n)
{
    struct pq_args a = {0};
    pq_u64(&a, seq);
    return deadlines(s, PQ_DL_LIST, &a, rows, n, "deadline_list");
}

static int pg_deadline_settle(struct store *s, uint64_t id, int state, int64_t now_ms,
                              const uint8_t *notice_id)
{
    struct pq_args a = {0};
    pq_u64(&a, id >> PQ_DEADLINE_KIND_BITS);
    pq_i64(&a, (int64_t)(id & DEADLINE_KIND_MASK));
    pq_i64(&a, state);
    pq_i64(&a, now_ms);
    pq_blob(&a, notice_id, CASENET_MESSAGE_ID_BYTES);
    uint64_t touched = 0;
    int rc = pq_write(s, PQ_DL_SETTLE, &a, &touched, "deadline_settle");
    return rc == CASENET_OK && touched == 0 ? CASENET_ENOTFOUND : rc;
}

static int pg_overdue_list(struct store *s, uint64_t cursor, uint32_t limit,
                           struct store_overdue **rows, size_t *n, bool *more)
{
    struct pq_args a = {0};
    pq_u64(&a, cursor >> PQ_DEADLINE_KIND_BITS);
    pq_i64(&a, (int64_t)limit + 1);
    pq_i64(&a, (int64_t)(cursor & DEADLINE_KIND_MASK));
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_OVERDUE, &a, &r, "overdue_list");
    if (rc != CASENET_OK)
        return rc;
    int got = PQntuples(r);
    size_t count = got > (int)limit ? limit : (size_t)got, done = 0;
    struct store_overdue *out = count ? calloc(count, sizeof *out) : NULL;
    rc = count && !out ? CASENET_ENOMEM : CASENET_OK;
    for (; rc == CASENET_OK && done < count; done++) {
        pq_read_deadline(r, (int)done, 0, &out[done].d);
        rc = pq_read_inbox_row(r, (int)done, PQ_DEADLINE_NCOLS, &out[done].row);
    }
    if (rc == CASENET_OK) {
        *rows = out;
        *n = count;
        *more = (size_t)got > count;
        out = NULL;
    }
    store_overdue_free(out, done);
    PQclear(r);
    return rc;
}

/* ------------------------------------------------------------ sent */

int pq_sent_rows(struct store *s, const char *sender, uint64_t after_row, uint64_t upto_row,
                 struct store_inbox_row **rows, size_t *n_rows, struct store_deadline **ds,
                 size_t *n_ds)
{
    *rows = NULL;
    *ds = NULL;
    *n_rows = *n_ds = 0;
    struct pq_args a = {0};
    pq_text(&a, sender);
    pq_u64(&a, after_row);
    pq_u64(&a, upto_row);
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_SENT_ROWS, &a, &r, "sent_rows");
    if (rc != CASENET_OK)
        return rc;
    rc = read_inbox_rows(r, SIZE_MAX, true, rows, n_rows);
    PQclear(r);
    if (rc == CASENET_OK)
        rc = deadlines(s, PQ_SENT_DEADLINES, &a, ds, n_ds, "sent_deadlines");
    if (rc != CASENET_OK) {
        store_inbox_rows_free(*rows, *n_rows);
        *rows = NULL;
        *n_rows = 0;
    }
    return rc;
}

const struct store_inbox_ops pq_inbox_ops = {
    .inbox_insert = pg_inbox_insert,
    .inbox_get = pg_inbox_get,
    .inbox_receipt_row = pg_inbox_receipt_row,
    .inbox_list = pg_inbox_list,
    .inbox_set_state = pg_inbox_set_state,
    .inbox_get_seq = pg_inbox_get_seq,
    .inbox_of_message = pg_inbox_of_message,
    .step_list = pg_step_list,
    .inbox_backlog = pg_inbox_backlog,
    .inbox_fetch_mark = pg_inbox_fetch_mark,
};

const struct store_deadline_ops pq_deadline_ops = {
    .deadline_arm = pg_deadline_arm,
    .deadline_due = pg_deadline_due,
    .deadline_settle = pg_deadline_settle,
    .deadline_list = pg_deadline_list,
    .overdue_list = pg_overdue_list,
};
