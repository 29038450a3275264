/*
 * store_pg_impl.h - internal to the PostgreSQL store: what store_pg.c (the
 * connection, the transaction, statements, parameters and result columns,
 * messages, receipts, directories) shares with store_pg_schema.c (the
 * migrations and the statement table), store_pg_inbox.c (inbox rows, limits,
 * deadlines, lifecycle queries) and store_pg_audit.c (audit rows and heads).
 * One connection serves them all; every statement is prepared once per
 * connection (PQprepare) and run with binary results.
 */
#ifndef BROKER_STORE_PG_IMPL_H
#define BROKER_STORE_PG_IMPL_H

#include "store.h"

#include <libpq-fe.h>

/* The store's constants (store.h) as SQL text. */
#define PQ_QUEUED       STORE_SQL(STORE_INBOX_QUEUED)
#define PQ_FETCHED      STORE_SQL(STORE_INBOX_FETCHED)
#define PQ_DELIVERED    STORE_SQL(STORE_INBOX_DELIVERED)
#define PQ_KIND_RECEIPT STORE_SQL(STORE_KIND_RECEIPT)
#define PQ_DL_DELIVER   STORE_SQL(STORE_DEADLINE_DELIVER)
#define PQ_DL_ACCEPT    STORE_SQL(STORE_DEADLINE_ACCEPT)
#define PQ_DL_PENDING   STORE_SQL(STORE_DEADLINE_PENDING)
#define PQ_DL_BREACHED  STORE_SQL(STORE_DEADLINE_BREACHED)

/* The columns pq_read_inbox_row expects, in its order. */
#define PQ_INBOX_COLS                                                                              \
    "seq, recipient, message_id, sender, kind, urgency, msg_status, state, received_at_ms,"        \
    " created_at_ms, size, in_reply_to, case_ref, receipt_status, receipt"
#define PQ_INBOX_NCOLS 15
/* The columns pq_read_message_row expects (the envelope, when selected,
 * follows them at column PQ_MESSAGE_NCOLS). */
#define PQ_MESSAGE_COLS                                                                            \
    "message_id, sender, kind, urgency, msg_status, created_at_ms, expires_at_ms,"                 \
    " received_at_ms, in_reply_to, case_ref, envelope_hash, size, audit_index, receipt, id"
#define PQ_MESSAGE_NCOLS 15
/* A deadline's columns (pq_read_deadline); its id packs (seq, kind) as
 * seq * 8 + kind, the overdue list's cursor (kinds are below 8). */
#define PQ_DEADLINE_KIND_BITS 3
#define PQ_DEADLINE_ID(p)     "(" p "seq * 8 + " p "kind)"
#define PQ_DEADLINE_COLS(p)                                                                        \
    PQ_DEADLINE_ID(p)                                                                              \
    ", " p "seq, " p "kind, " p "due_ms, " p "state, " p "settled_at_ms, " p "notice_id"
#define PQ_DEADLINE_NCOLS 7

/* The schema version this build writes (store_pg_schema.c). */
#define PQ_SCHEMA_VERSION 2

/* The prepared statements (store_pg_schema.c: pq_sql), named "cn<i>". */
enum pq_stmt {
    PQ_MSG_INSERT,
    PQ_MSG_INSERT_ID,
    PQ_RESERVE,
    PQ_INBOX_INSERT_SEQ,
    PQ_DL_ARM_NEW,
    PQ_MSG_GET,
    PQ_MSG_SIG,
    PQ_MSG_SIGS,
    PQ_MSG_ROW,
    PQ_RECEIPT_INSERT,
    PQ_RECEIPT_FIND,
    PQ_RECEIPTS,
    PQ_SENT,
    PQ_SENT_ROWS,
    PQ_SENT_DEADLINES,
    PQ_MEMBER_BYTES,
    PQ_MEMBER_BYTES_ADD,
    PQ_DIR_SAVE,
    PQ_DIR_LATEST,
    PQ_INBOX_INSERT_LINKED,
    PQ_INBOX_INSERT_RECEIPT,
    PQ_INBOX_GET,
    PQ_INBOX_RECEIPT_ROW,
    PQ_INBOX_LIST_ANY,
    PQ_INBOX_LIST_STATE,
    PQ_INBOX_SET_STATE,
    PQ_INBOX_SEQ,
    PQ_INBOX_MSG,
    PQ_STEP_INSERT,
    PQ_STEPS,
    PQ_INBOX_BACKLOG,
    PQ_INBOX_FETCH_MARK,
    PQ_DL_ARM,
    PQ_DL_DUE,
    PQ_DL_SETTLE,
    PQ_DL_LIST,
    PQ_OVERDUE,
    PQ_AUDIT_COUNT,
    PQ_AUDIT_INSERT,
    PQ_AUDIT_SET_KEYS,
    PQ_NODE_PUT,
    PQ_NODE_GET,
    PQ_NODE_LEAVES,
    PQ_AQ_ALL,
    PQ_AQ_MESSAGE,
    PQ_AQ_CASE,
    PQ_AQ_KIND,
    PQ_AQ_MEMBER,
    PQ_AUDIT_VISIBLE,
    PQ_AUDIT_RANGE,
    PQ_HEAD_SAVE,
    PQ_HEAD_GET,
    PQ_HEAD_LATEST,
    PQ_HEAD_LIST,
    PQ_STMT_COUNT
};

/* The store: one connection (store_pg_conn.c). */
struct pg_store {
    struct store base;
    PGconn *conn;
    char *conninfo;  /* the spec without our parameter */
    char sync[16];   /* synchronous_commit */
    bool prepared;   /* the statements exist on this connection */
    bool tx;         /* begin ran, commit / rollback not yet */
    int64_t last_id; /* of the last message_insert */
    uint64_t changes;
    /* The batch's pipeline (store_pg_pipe.c): in a batch transaction the
     * connection is in libpq's pipeline mode; writes whose answer nobody
     * waits for are sent and their results checked at the next sync. */
    bool pipe;        /* in pipeline mode (begin to commit / rollback) */
    bool pipe_failed; /* a deferred statement failed: the batch cannot commit */
    int n_deferred;   /* results still to read, in deferred[] */
    struct pq_deferred {
        const char *what;
        int expect; /* enum pq_expect */
    } deferred[256];
    /* What the batch knows cannot conflict, so that its inserts need not
     * wait (store_pg_pipe.c, pq_pipe_forget): */
    int64_t fresh_seq;    /* the inbox row this batch inserted last (0: none) */
    unsigned fresh_kinds; /* the deadline kinds this batch armed on it */
    int64_t fresh_msg;    /* the message row this batch inserted last (0: none) */
    uint8_t fresh_msg_id[CASENET_MESSAGE_ID_BYTES];
    bool absent; /* message_get found no message absent_id in this batch */
    uint8_t absent_id[CASENET_MESSAGE_ID_BYTES];
    /* inbox_receipt_row found no receipt row (recipient, id), before message
     * row `before` was inserted (the fresh_msg then) */
    int n_free;
    struct pq_free {
        char recipient[CASENET_MEMBER_ID_MAX + 1];
        uint8_t id[CASENET_MESSAGE_ID_BYTES];
        int64_t before;
    } free_rows[32];
    /* Counts read in this batch, kept while no statement that may change
     * them runs (pq_cache_*, store_pg_pipe.c). */
    int n_bytes, n_backlog;
    struct pq_bytes {
        char member[CASENET_MEMBER_ID_MAX + 1];
        uint64_t bytes;
    } bytes[16];
    struct pq_backlog {
        char recipient[CASENET_MEMBER_ID_MAX + 1];
        char sender[CASENET_MEMBER_ID_MAX + 1];
        uint64_t queued, from_sender;
    } backlog[16];
    /* Row numbers reserved for this batch (pq_reserve), used in order. */
    struct pq_ids {
        int n, next;
        int64_t v[128];
    } msg_ids, inbox_ids;
    int64_t lease_token; /* the lease this store holds (0: none taken) */
    bool lease_lost;     /* it held one and another broker took it over */
    char holder[96];     /* "host:pid", who holds the lease */
};

/* The store's connection (borrowed). */
PGconn *pq_conn(struct store *s);
/* The SQL of statement i (store_pg_schema.c). */
const char *pq_sql(enum pq_stmt i);
/* The SQL of migration step `step` (version step -> step + 1), NULL past
 * the last (store_pg_schema.c). */
const char *pq_migration_sql(size_t step);

/* store_pg_conn.c: opens the store spec names (a libpq URI with our
 * synchronous_commit parameter) as a store of ops: connects, sets the
 * session, creates the schema-version table and runs the migrations from
 * the stored version (each step one transaction), prepares the statements.
 * CASENET_EINVAL (bad spec), CASENET_EVERSION (a newer schema),
 * CASENET_EUNAVAIL (logged). */
int pq_open(const char *spec, const struct store_ops *ops, struct store **out);
/* store_pg_conn.c: the admin operations of store.h, as PostgreSQL runs them
 * (checkpoint: nothing to copy, 0 pending). */
void pq_close(struct store *s);
int pq_begin(struct store *s);
int pq_commit(struct store *s);
void pq_rollback(struct store *s);
int pq_savepoint(struct store *s);
int pq_release(struct store *s);
int pq_rollback_to(struct store *s);
bool pq_in_transaction(struct store *s);
uint64_t pq_changes(struct store *s);
int pq_checkpoint(struct store *s, uint32_t min_frames, uint32_t *pending);
/* store_pg_lease.c: the lease operation of store.h. pq_lease_fence_sql is
 * the fencing check pq_commit sends inside the batch transaction, in the
 * pipeline just before COMMIT, with the token as $1 (only once a lease was
 * taken): it fails with SQLSTATE PQ_FENCE_SQLSTATE (division by zero) unless
 * the token is still the current, unexpired one held by this session, and
 * locks the row against a takeover until the commit. pq_lease_fence_failed
 * records and logs that the lease was lost (the batch is rolled back).
 * pq_lease_release, at close, hands a lease this store still holds back
 * (fenced by its token and session: expired now), so that a standby takes
 * over at its next try rather than after the TTL. */
int pq_lease(struct store *s, uint32_t ttl_ms, bool *active);
extern const char pq_lease_fence_sql[];
#define PQ_FENCE_SQLSTATE "22012"
void pq_lease_fence_failed(struct store *s);
void pq_lease_release(struct store *s);

/* Parameters of one statement: integers and text travel as text, bytea as
 * binary; a NULL pointer is SQL NULL. Values are borrowed until the run. */
#define PQ_ARGS_MAX 16
struct pq_args {
    int n;
    const char *v[PQ_ARGS_MAX];
    int len[PQ_ARGS_MAX];
    int fmt[PQ_ARGS_MAX];
    char num[PQ_ARGS_MAX][24];
};
void pq_i64(struct pq_args *a, int64_t x);
/* An unsigned count or cursor, clamped to INT64_MAX. */
void pq_u64(struct pq_args *a, uint64_t x);
void pq_text(struct pq_args *a, const char *t);
void pq_blob(struct pq_args *a, const void *p, size_t n);

/* store_pg_pipe.c: the batch in libpq's pipeline mode. pq_pipe_begin enters
 * it and sends BEGIN; pq_pipe_commit sends the fencing check and COMMIT and
 * reads every result (CASENET_EUNAVAIL, rolled back, when any statement of
 * the batch failed); pq_pipe_rollback reads what is pending, leaves pipeline
 * mode and rolls back. pq_pipe_run sends statement which (or the SQL text q
 * when which is PQ_STMT_COUNT) and a sync and reads every pending result
 * and then its own into *res (unchecked; NULL when the connection broke),
 * CASENET_EUNAVAIL when a deferred one failed. */
int pq_pipe_begin(struct store *s);
int pq_pipe_commit(struct store *s);
void pq_pipe_rollback(struct store *s);
/* Forgets what the batch knew cannot conflict (the fresh_* fields, absent,
 * free_rows): at begin and its end, and when a request's rows are rolled
 * back. The reserved numbers are dropped at the batch's end only (a later
 * batch's rows must number above this one's). */
void pq_pipe_forget(struct store *s);
/* In batch: the next number reserved for a message row, or (inbox) an
 * inbox row; when none is left, a sync read reserves 128 of each anew. */
int pq_reserve(struct store *s, bool inbox, int64_t *out);
/* In batch: records that no receipt row holds (recipient, id) (pq_free_add,
 * not past 32); pq_free_take answers whether a linked row (recipient, id)
 * of message row msg, the fresh one, cannot conflict, and forgets it. */
void pq_free_add(struct store *s, const char *recipient, const uint8_t *id);
bool pq_free_take(struct store *s, const char *recipient, const uint8_t *id, int64_t msg);
/* In batch: the member_bytes and inbox_backlog answers read in this batch,
 * answered again without a read until a statement that may change them
 * runs (any but those store_pg_pipe.c lists as keeping them; an inbox row
 * inserted is added to the backlogs by pq_cache_inbox_added). get: false
 * when not known; put: records an answer just read. */
bool pq_cache_bytes_get(struct store *s, const char *member, uint64_t *bytes);
void pq_cache_bytes_put(struct store *s, const char *member, uint64_t bytes);
bool pq_cache_backlog_get(struct store *s, const char *recipient, const char *sender,
                          uint64_t *queued, uint64_t *from_sender);
void pq_cache_backlog_put(struct store *s, const char *recipient, const char *sender,
                          uint64_t queued, uint64_t from_sender);
void pq_cache_inbox_added(struct store *s, const struct store_inbox_row *row);
int pq_pipe_run(struct store *s, enum pq_stmt which, const char *q, const struct pq_args *a,
                PGresult **res, const char *what);
/* What a deferred write must answer: command done; exactly one row
 * touched; a first column (the rows a SELECT wrote) above 0; the fencing
 * check passed (pq_lease_fence_failed otherwise). */
enum pq_expect { PQ_EXPECT_DONE, PQ_EXPECT_ONE, PQ_EXPECT_COUNT, PQ_EXPECT_FENCE };
/* In batch: sends write which (or the SQL text q, with parameters a in
 * pipeline mode only, when which is PQ_STMT_COUNT) without waiting for its answer, checked against
 * expect at the next sync (the next statement that answers, or the commit): a failure then fails
 * the batch (logged; nothing commits). Counted as one change at once. Outside pipeline mode it runs
 * at once and is checked. Use it only where the caller would treat any failure as CASENET_EUNAVAIL.
 */
int pq_defer(struct store *s, enum pq_stmt which, const char *q, const struct pq_args *a,
             enum pq_expect expect, const char *what);
/* store_pg_conn.c: logs a failed result (or connection) and maps it as
 * pq_run does. */
int pq_map_failure(struct store *s, const PGresult *r, const char *what);
/* store_pg_conn.c: a fresh connection in place of a broken one (or one left
 * in pipeline mode by a lost connection); statements to prepare again. */
void pq_reconnect(struct store *s);

/* Runs prepared statement which with args (NULL: none). On CASENET_OK, *res
 * (may be NULL: then cleared here) is the result, PQclear'd by the caller,
 * and the rows a write touched are counted (store_ops.changes). Failures
 * are logged and mapped: a constraint violation (SQLSTATE class 23) is
 * CASENET_ECONFLICT, a lost connection or any other failure
 * CASENET_EUNAVAIL. */
int pq_run(struct store *s, enum pq_stmt which, const struct pq_args *a, PGresult **res,
           const char *what);
/* Runs which, expected to write: *touched gets the rows it touched. */
int pq_write(struct store *s, enum pq_stmt which, const struct pq_args *a, uint64_t *touched,
             const char *what);
/* Runs SQL text (no parameters, no rows), for migrations; logged. */
int pq_exec(struct store *s, const char *q, const char *what);

/* Result columns (binary format): an integer of any width (0 for NULL), a
 * bytea of exactly len bytes (false otherwise), a text into cap bytes with
 * its NUL (false when NULL or too long), and a bytea copied into a fresh
 * buffer (empty for NULL; CASENET_ENOMEM). */
int64_t pq_col_i64(const PGresult *r, int row, int col);
bool pq_col_fixed(const PGresult *r, int row, int col, uint8_t *out, size_t len);
bool pq_col_text(const PGresult *r, int row, int col, char *out, size_t cap);
int pq_col_buf(const PGresult *r, int row, int col, casenet_buf *out);
/* Reads a PQ_INBOX_COLS row starting at column base; CASENET_EUNAVAIL
 * (logged) when corrupt, CASENET_ENOMEM. */
int pq_read_inbox_row(const PGresult *r, int row, int base, struct store_inbox_row *out);
/* Reads a PQ_DEADLINE_COLS row starting at column base. */
void pq_read_deadline(const PGresult *r, int row, int base, struct store_deadline *d);
/* Reads every PQ_DEADLINE_COLS row of r into a malloc'd array. */
int pq_read_deadlines(const PGresult *r, struct store_deadline **rows, size_t *n);

/* The sub-tables of the companion files. */
extern const struct store_inbox_ops pq_inbox_ops;
extern const struct store_deadline_ops pq_deadline_ops;
extern const struct store_audit_ops pq_audit_ops;
/* store_pg_inbox.c: the lifecycle queries of the message table. */
int pq_sent_rows(struct store *s, const char *sender, uint64_t after_row, uint64_t upto_row,
                 struct store_inbox_row **rows, size_t *n_rows, struct store_deadline **ds,
                 size_t *n_ds);
int pq_member_bytes(struct store *s, const char *member, uint64_t *bytes);
int pq_member_bytes_add(struct store *s, const char *member, uint64_t bytes);

#endif
