/*
 * store_pg_pipe.c - the PostgreSQL store's batch in libpq's pipeline mode
 * (store_pg_impl.h): the round trips a batch costs. Every statement of the
 * batch transaction is sent in pipeline mode; one whose answer the caller
 * needs now (a read, an insert that may conflict) is followed by a sync and
 * waited for, together with every statement sent before it. Writes whose
 * only failure is the store's are sent without waiting (pq_defer) and
 * checked at the next sync: savepoints, the audit log's rows and subtrees,
 * byte counts, steps, and the inserts that what the batch has just read
 * tells cannot conflict (a message id message_get did not find, that
 * message's inbox rows for pairs inbox_receipt_row found free, deadlines of
 * the row just inserted), numbered from identities reserved per batch
 * (pq_reserve). So the loop and the server work at the same time, and a
 * Submit waits only for its reads, some of which the batch answers from
 * what it read before (the counts behind the limits, pq_cache_*). A
 * deferred statement that fails raises an error (their SQL is written so,
 * store_pg_schema.c), and the server skips the rest of the pipeline up to
 * its sync, COMMIT included; pipe_failed then makes the commit fail and
 * roll back, as a failure answered at once would have.
 */
#include "store.h"

#include "log.h"
#include "store_pg_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFERRED_MAX ((int)(sizeof((struct pg_store *)0)->deferred / sizeof(struct pq_deferred)))

static struct pg_store *P(struct store *s)
{
    return (struct pg_store *)s;
}

/* The statements that change neither member_bytes nor inbox_pair_backlog
 * (the inbox inserts change the backlogs as pq_cache_inbox_added tells);
 * any other clears the counts read in the batch. */
static const bool keeps_counts[PQ_STMT_COUNT] = {
    [PQ_MSG_INSERT] = true,
    [PQ_MSG_INSERT_ID] = true,
    [PQ_RESERVE] = true,
    [PQ_INBOX_INSERT_SEQ] = true,
    [PQ_DL_ARM_NEW] = true,
    [PQ_MSG_GET] = true,
    [PQ_MSG_SIG] = true,
    [PQ_MSG_SIGS] = true,
    [PQ_MSG_ROW] = true,
    [PQ_RECEIPT_INSERT] = true,
    [PQ_RECEIPT_FIND] = true,
    [PQ_RECEIPTS] = true,
    [PQ_SENT] = true,
    [PQ_SENT_ROWS] = true,
    [PQ_SENT_DEADLINES] = true,
    [PQ_MEMBER_BYTES] = true,
    [PQ_DIR_SAVE] = true,
    [PQ_DIR_LATEST] = true,
    [PQ_INBOX_INSERT_LINKED] = true,
    [PQ_INBOX_INSERT_RECEIPT] = true,
    [PQ_INBOX_GET] = true,
    [PQ_INBOX_RECEIPT_ROW] = true,
    [PQ_INBOX_LIST_ANY] = true,
    [PQ_INBOX_LIST_STATE] = true,
    [PQ_INBOX_SEQ] = true,
    [PQ_INBOX_MSG] = true,
    [PQ_STEP_INSERT] = true,
    [PQ_STEPS] = true,
    [PQ_INBOX_BACKLOG] = true,
    [PQ_INBOX_FETCH_MARK] = true, /* fetch_state: not the trigger's state */
    [PQ_DL_ARM] = true,
    [PQ_DL_DUE] = true,
    [PQ_DL_SETTLE] = true,
    [PQ_DL_LIST] = true,
    [PQ_OVERDUE] = true,
    [PQ_AUDIT_COUNT] = true,
    [PQ_AUDIT_INSERT] = true,
    [PQ_AUDIT_SET_KEYS] = true,
    [PQ_NODE_PUT] = true,
    [PQ_NODE_GET] = true,
    [PQ_NODE_LEAVES] = true,
    [PQ_AQ_ALL] = true,
    [PQ_AQ_MESSAGE] = true,
    [PQ_AQ_CASE] = true,
    [PQ_AQ_KIND] = true,
    [PQ_AQ_MEMBER] = true,
    [PQ_AUDIT_VISIBLE] = true,
    [PQ_AUDIT_RANGE] = true,
    [PQ_HEAD_SAVE] = true,
    [PQ_HEAD_GET] = true,
    [PQ_HEAD_LATEST] = true,
    [PQ_HEAD_LIST] = true,
};

/* Sends prepared statement which, or the text q (which == PQ_STMT_COUNT),
 * and hands it to the server now. */
static int send_one(struct pg_store *s, enum pq_stmt which, const char *q, const struct pq_args *a,
                    const char *what)
{
    /* Text: BEGIN, savepoints (a rollback to one forgets), the fence, COMMIT. */
    if (which != PQ_STMT_COUNT && !keeps_counts[which])
        s->n_bytes = s->n_backlog = 0;
    int ok;
    if (which == PQ_STMT_COUNT) {
        ok = a ? PQsendQueryParams(s->conn, q, a->n, NULL, a->v, a->len, a->fmt, 1)
               : PQsendQueryParams(s->conn, q, 0, NULL, NULL, NULL, NULL, 1);
    } else {
        char name[16];
        snprintf(name, sizeof name, "cn%d", (int)which);
        ok = a ? PQsendQueryPrepared(s->conn, name, a->n, a->v, a->len, a->fmt, 1)
               : PQsendQueryPrepared(s->conn, name, 0, NULL, NULL, NULL, 1);
    }
    if (ok && PQflush(s->conn) == 0)
        return CASENET_OK;
    s->pipe_failed = true;
    return pq_map_failure(&s->base, NULL, what);
}

/* The next statement's result, and the end of it (NULL: the connection
 * broke). */
static PGresult *next_result(struct pg_store *s)
{
    PGresult *r = PQgetResult(s->conn);
    if (!r)
        return NULL;
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_PIPELINE_SYNC) {
        PGresult *end = PQgetResult(s->conn);
        if (end) { /* not one statement's result: out of step */
            PQclear(end);
            PQclear(r);
            return NULL;
        }
    }
    return r;
}

/* Whether deferred result r answers as d expects; a failure is logged (a
 * statement the server skipped after it is not). */
static bool deferred_ok(struct pg_store *s, const PGresult *r, const struct pq_deferred *d)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_ABORTED)
        return false;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (d->expect == PQ_EXPECT_FENCE && state && strcmp(state, PQ_FENCE_SQLSTATE) == 0)
            pq_lease_fence_failed(&s->base);
        else if (pq_map_failure(&s->base, r, d->what) == CASENET_ECONFLICT)
            log_event(LOG_ERROR, "store_error", "op", d->what, "msg", PQresultErrorMessage(r),
                      NULL); /* not logged by the mapping, and not expected */
        return false;
    }
    bool ok = true;
    if (d->expect == PQ_EXPECT_ONE)
        ok = strcmp(PQcmdTuples((PGresult *)r), "1") == 0;
    else if (d->expect == PQ_EXPECT_COUNT)
        ok = PQntuples(r) > 0 && pq_col_i64(r, 0, 0) > 0;
    if (!ok)
        log_event(LOG_ERROR, "store_error", "op", d->what, "msg",
                  "a write of the batch did not touch the row it was sent for", NULL);
    return ok;
}

/* Sends a sync and reads every deferred result, then (want) the last
 * statement's into *want, then the sync's. CASENET_EUNAVAIL when a deferred
 * statement failed or the connection broke. */
static int sync_read(struct pg_store *s, PGresult **want, const char *what)
{
    if (!PQpipelineSync(s->conn)) {
        s->pipe_failed = true;
        return pq_map_failure(&s->base, NULL, what);
    }
    bool broken = false;
    for (int i = 0; i < s->n_deferred && !broken; i++) {
        PGresult *r = next_result(s);
        broken = !r;
        if (r && !deferred_ok(s, r, &s->deferred[i]))
            s->pipe_failed = true;
        PQclear(r);
    }
    s->n_deferred = 0;
    if (!broken && want)
        broken = !(*want = next_result(s));
    PGresult *r = broken ? NULL : next_result(s);
    broken = broken || !r || PQresultStatus(r) != PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (broken) {
        s->pipe_failed = true;
        log_event(LOG_ERROR, "store_connection_lost", "op", what, "msg", PQerrorMessage(s->conn),
                  "hint", "check that PostgreSQL is up; the broker reconnects between batches",
                  NULL);
    }
    return s->pipe_failed ? CASENET_EUNAVAIL : CASENET_OK;
}

int pq_pipe_run(struct store *b, enum pq_stmt which, const char *q, const struct pq_args *a,
                PGresult **res, const char *what)
{
    struct pg_store *s = P(b);
    *res = NULL;
    if (s->pipe_failed)
        return CASENET_EUNAVAIL; /* logged when it failed */
    int rc = send_one(s, which, q, a, what);
    if (rc == CASENET_OK)
        rc = sync_read(s, res, what);
    return rc;
}

int pq_defer(struct store *b, enum pq_stmt which, const char *q, const struct pq_args *a,
             enum pq_expect expect, const char *what)
{
    struct pg_store *s = P(b);
    if (!s->pipe) {
        if (which == PQ_STMT_COUNT && a)
            abort(); /* text with parameters: only the fence, in pipeline mode */
        PGresult *r = NULL;
        int rc = which == PQ_STMT_COUNT ? pq_exec(b, q, what) : pq_run(b, which, a, &r, what);
        struct pq_deferred d = {.what = what, .expect = expect};
        if (rc == CASENET_OK && r && !deferred_ok(s, r, &d))
            rc = CASENET_EUNAVAIL;
        PQclear(r);
        return rc == CASENET_ECONFLICT ? CASENET_EUNAVAIL : rc;
    }
    if (s->pipe_failed)
        return CASENET_EUNAVAIL;
    /* A bounded count: their results wait in the server's socket while it
     * reads ours. */
    if (s->n_deferred == DEFERRED_MAX && sync_read(s, NULL, what) != CASENET_OK)
        return CASENET_EUNAVAIL;
    int rc = send_one(s, which, q, a, what);
    if (rc != CASENET_OK)
        return CASENET_EUNAVAIL;
    s->deferred[s->n_deferred++] = (struct pq_deferred){.what = what, .expect = expect};
    s->changes++;
    return CASENET_OK;
}

/* What a batch knows, and its reserved numbers: at its start and end. */
static void batch_forget(struct pg_store *s)
{
    pq_pipe_forget(&s->base);
    s->msg_ids.n = s->msg_ids.next = 0;
    s->inbox_ids.n = s->inbox_ids.next = 0;
}

int pq_pipe_begin(struct store *b)
{
    struct pg_store *s = P(b);
    s->pipe_failed = false;
    s->n_deferred = 0;
    batch_forget(s);
    if (!PQenterPipelineMode(s->conn))
        return pq_map_failure(b, NULL, "begin");
    s->pipe = true;
    int rc = pq_defer(b, PQ_STMT_COUNT, "BEGIN", NULL, PQ_EXPECT_DONE, "begin");
    if (rc != CASENET_OK)
        pq_pipe_rollback(b);
    return rc;
}

/* Reads what is still pending, leaves pipeline mode; false when the
 * connection cannot (broken, or out of step: the next operation
 * reconnects). */
static bool pipe_leave(struct pg_store *s)
{
    if (s->n_deferred > 0 && PQstatus(s->conn) == CONNECTION_OK)
        (void)sync_read(s, NULL, "rollback");
    s->n_deferred = 0;
    s->pipe = false;
    batch_forget(s);
    if (PQstatus(s->conn) == CONNECTION_OK && PQexitPipelineMode(s->conn) == 1)
        return true;
    s->prepared = false; /* pq_reconnect */
    return false;
}

int pq_pipe_commit(struct store *b)
{
    struct pg_store *s = P(b);
    if (!s->pipe)
        abort(); /* commit without begin: a bug */
    int rc = CASENET_OK;
    if (s->lease_token != 0) {
        struct pq_args a = {0};
        pq_i64(&a, s->lease_token);
        rc = pq_defer(b, PQ_STMT_COUNT, pq_lease_fence_sql, &a, PQ_EXPECT_FENCE, "fence");
    }
    PGresult *r = NULL;
    if (rc == CASENET_OK)
        rc = pq_pipe_run(b, PQ_STMT_COUNT, "COMMIT", NULL, &r, "commit");
    /* COMMIT of a failed transaction answers ROLLBACK, not an error. */
    bool ok = rc == CASENET_OK && PQresultStatus(r) == PGRES_COMMAND_OK &&
              strcmp(PQcmdStatus(r), "COMMIT") == 0;
    if (rc == CASENET_OK && !ok)
        (void)pq_map_failure(b, r, "commit");
    PQclear(r);
    if (!pipe_leave(s) || ok)
        return ok ? CASENET_OK : CASENET_EUNAVAIL;
    if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    return CASENET_EUNAVAIL;
}

void pq_pipe_rollback(struct store *b)
{
    struct pg_store *s = P(b);
    if (!s->pipe && PQstatus(s->conn) == CONNECTION_OK &&
        PQtransactionStatus(s->conn) == PQTRANS_IDLE)
        return;
    if (s->pipe && !pipe_leave(s))
        return; /* broken: the next begin reconnects, the server rolls back */
    if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        (void)pq_exec(b, "ROLLBACK", "rollback");
}

/* ------------------------------------------------------------ knowledge */

void pq_pipe_forget(struct store *b)
{
    struct pg_store *s = P(b);
    s->n_bytes = s->n_backlog = 0;
    s->fresh_seq = 0;
    s->fresh_kinds = 0;
    s->fresh_msg = 0;
    s->absent = false;
    s->n_free = 0;
}

int pq_reserve(struct store *b, bool inbox, int64_t *out)
{
    struct pg_store *s = P(b);
    struct pq_ids *ids = inbox ? &s->inbox_ids : &s->msg_ids;
    if (ids->next == ids->n) { /* both anew: one round trip, not two */
        enum { COUNT = sizeof ids->v / sizeof ids->v[0] };
        struct pq_args a = {0};
        pq_i64(&a, COUNT);
        PGresult *r = NULL;
        int rc = pq_run(b, PQ_RESERVE, &a, &r, "reserve");
        if (rc != CASENET_OK)
            return rc == CASENET_ECONFLICT ? CASENET_EUNAVAIL : rc;
        int n = PQntuples(r) < COUNT ? PQntuples(r) : COUNT;
        for (int i = 0; i < n; i++) {
            s->msg_ids.v[i] = pq_col_i64(r, i, 0);
            s->inbox_ids.v[i] = pq_col_i64(r, i, 1);
        }
        PQclear(r);
        s->msg_ids.n = s->inbox_ids.n = n;
        s->msg_ids.next = s->inbox_ids.next = 0;
        if (n == 0)
            return CASENET_EUNAVAIL;
    }
    *out = ids->v[ids->next++];
    return CASENET_OK;
}

void pq_free_add(struct store *b, const char *recipient, const uint8_t *id)
{
    struct pg_store *s = P(b);
    size_t len = strlen(recipient);
    if (!s->pipe || s->n_free == (int)(sizeof s->free_rows / sizeof s->free_rows[0]) ||
        len >= sizeof s->free_rows[0].recipient)
        return;
    for (int i = 0; i < s->n_free; i++)
        if (strcmp(s->free_rows[i].recipient, recipient) == 0 &&
            memcmp(s->free_rows[i].id, id, CASENET_MESSAGE_ID_BYTES) == 0)
            return;
    struct pq_free *f = &s->free_rows[s->n_free++];
    memcpy(f->recipient, recipient, len + 1);
    memcpy(f->id, id, CASENET_MESSAGE_ID_BYTES);
    f->before = s->fresh_msg;
}

/* Only for the fresh message row (no linked row but this batch's), with an
 * entry recorded before it was inserted (no linked row for the pair then). */
bool pq_free_take(struct store *b, const char *recipient, const uint8_t *id, int64_t msg)
{
    struct pg_store *s = P(b);
    if (!s->pipe || msg == 0 || msg != s->fresh_msg ||
        memcmp(s->fresh_msg_id, id, CASENET_MESSAGE_ID_BYTES) != 0)
        return false;
    for (int i = 0; i < s->n_free; i++) {
        struct pq_free *f = &s->free_rows[i];
        if (f->before != msg && strcmp(f->recipient, recipient) == 0 &&
            memcmp(f->id, id, CASENET_MESSAGE_ID_BYTES) == 0) {
            *f = s->free_rows[--s->n_free];
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ counts */

#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

bool pq_cache_bytes_get(struct store *b, const char *member, uint64_t *bytes)
{
    struct pg_store *s = P(b);
    for (int i = 0; s->pipe && i < s->n_bytes; i++)
        if (strcmp(s->bytes[i].member, member) == 0) {
            *bytes = s->bytes[i].bytes;
            return true;
        }
    return false;
}

void pq_cache_bytes_put(struct store *b, const char *member, uint64_t bytes)
{
    struct pg_store *s = P(b);
    if (!s->pipe || s->n_bytes == COUNT_OF(s->bytes) || strlen(member) >= sizeof s->bytes[0].member)
        return;
    struct pq_bytes *e = &s->bytes[s->n_bytes++];
    strcpy(e->member, member);
    e->bytes = bytes;
}

bool pq_cache_backlog_get(struct store *b, const char *recipient, const char *sender,
                          uint64_t *queued, uint64_t *from_sender)
{
    struct pg_store *s = P(b);
    for (int i = 0; s->pipe && i < s->n_backlog; i++) {
        const struct pq_backlog *e = &s->backlog[i];
        if (strcmp(e->recipient, recipient) == 0 && strcmp(e->sender, sender) == 0) {
            *queued = e->queued;
            *from_sender = e->from_sender;
            return true;
        }
    }
    return false;
}

void pq_cache_backlog_put(struct store *b, const char *recipient, const char *sender,
                          uint64_t queued, uint64_t from_sender)
{
    struct pg_store *s = P(b);
    if (!s->pipe || s->n_backlog == COUNT_OF(s->backlog) ||
        strlen(recipient) >= sizeof s->backlog[0].recipient ||
        strlen(sender) >= sizeof s->backlog[0].sender)
        return;
    struct pq_backlog *e = &s->backlog[s->n_backlog++];
    strcpy(e->recipient, recipient);
    strcpy(e->sender, sender);
    e->queued = queued;
    e->from_sender = from_sender;
}

/* As the trigger inbox_pair_backlog_keep counts (store_pg_schema.c): a
 * QUEUED row that is not a receipt adds one to its (recipient, sender). */
void pq_cache_inbox_added(struct store *b, const struct store_inbox_row *row)
{
    struct pg_store *s = P(b);
    if (row->state != STORE_INBOX_QUEUED || row->kind == STORE_KIND_RECEIPT)
        return;
    for (int i = 0; i < s->n_backlog; i++) {
        struct pq_backlog *e = &s->backlog[i];
        if (strcmp(e->recipient, row->recipient) != 0)
            continue;
        e->queued++;
        if (strcmp(e->sender, row->sender) == 0)
            e->from_sender++;
    }
}
