/*
 * store_sqlite_impl.h - internal to the SQLite store: what store_sqlite.c
 * (connection, transaction, messages, receipts, directories, the statement
 * table) shares with its companion files: store_sqlite_inbox.c (inbox rows
 * and limit counts), store_sqlite_audit.c (audit rows and heads),
 * store_sqlite_schema.c (migrations), store_sqlite_lifecycle.c (deadlines
 * and lifecycle queries, with statements of its own) and store_sqlite_wal.c
 * (checkpoints). One connection serves them all.
 */
#ifndef BROKER_STORE_SQLITE_IMPL_H
#define BROKER_STORE_SQLITE_IMPL_H

#include "store.h"

#include <sqlite3.h>

/* The store's constants (store.h) as SQL text: the SQL is spelled with these,
 * never with the numbers. */
#define SQ_QUEUED       STORE_SQL(STORE_INBOX_QUEUED)
#define SQ_FETCHED      STORE_SQL(STORE_INBOX_FETCHED)
#define SQ_DELIVERED    STORE_SQL(STORE_INBOX_DELIVERED)
#define SQ_ACCEPTED     STORE_SQL(STORE_INBOX_ACCEPTED)
#define SQ_DECLINED     STORE_SQL(STORE_INBOX_DECLINED)
#define SQ_COMPLETED    STORE_SQL(STORE_INBOX_COMPLETED)
#define SQ_DEAD         STORE_SQL(STORE_INBOX_DEAD)
#define SQ_KIND_RECEIPT STORE_SQL(STORE_KIND_RECEIPT)
#define SQ_DL_DELIVER   STORE_SQL(STORE_DEADLINE_DELIVER)
#define SQ_DL_ACCEPT    STORE_SQL(STORE_DEADLINE_ACCEPT)
#define SQ_DL_PENDING   STORE_SQL(STORE_DEADLINE_PENDING)
#define SQ_DL_BREACHED  STORE_SQL(STORE_DEADLINE_BREACHED)

/* The columns read_inbox_row expects, in its order. */
#define SQ_INBOX_COLS                                                                              \
    "seq, recipient, message_id, sender, kind, urgency, msg_status, state, received_at_ms,"        \
    " created_at_ms, size, in_reply_to, case_ref, receipt_status, receipt"

/* The columns sq_read_message_row expects, in its order (the envelope is
 * not among them: a statement that wants it selects it after them, at
 * column SQ_MESSAGE_NCOLS). */
#define SQ_MESSAGE_COLS                                                                            \
    "message_id, sender, kind, urgency, msg_status, created_at_ms, expires_at_ms,"                 \
    " received_at_ms, in_reply_to, case_ref, envelope_hash, size, audit_index, receipt, id"
#define SQ_MESSAGE_NCOLS 15

/* The schema version this build writes (store_sqlite_schema.c). */
#define SQ_SCHEMA_VERSION 8

/* The statements of store_sqlite.c (its table sql[]), prepared at open. */
enum sq_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_MSG_INSERT,
    ST_MSG_GET,
    ST_MSG_AUDIT_KEY,
    ST_MSG_ROW,
    ST_INBOX_LINK_CHECK,
    ST_INBOX_RECEIPT_CHECK,
    ST_INBOX_INSERT,
    ST_INBOX_GET,
    ST_INBOX_RECEIPT_ROW,
    ST_INBOX_LIST_ANY,
    ST_INBOX_LIST_STATE,
    ST_INBOX_SET_STATE,
    ST_RECEIPT_INSERT,
    ST_RECEIPT_FIND,
    ST_AUDIT_NEXT,
    ST_AUDIT_INSERT,
    ST_AUDIT_PARTY,
    ST_AUDIT_COUNT,
    ST_DIR_SAVE,
    ST_DIR_LATEST,
    ST_NODE_PUT,
    ST_NODE_GET,
    ST_NODE_LEAVES,
    ST_AUDIT_SET_KEYS,
    ST_AQ_ALL,
    ST_AQ_MESSAGE,
    ST_AQ_CASE,
    ST_AQ_MEMBER,
    ST_AUDIT_VISIBLE,
    ST_AUDIT_RANGE,
    ST_HEAD_SAVE,
    ST_HEAD_GET,
    ST_HEAD_LATEST,
    ST_HEAD_LIST,
    ST_INBOX_BACKLOG,
    ST_MEMBER_BYTES,
    ST_MEMBER_BYTES_ADD,
    ST_INBOX_FETCH_MARK,
    ST_COUNT
};

/* Statement i, reset and unbound, ready to bind (borrowed). */
sqlite3_stmt *sq_stmt(struct store *s, enum sq_stmt which);
/* Runs a statement that returns no rows; the error mapped (sq_map_rc). */
int sq_run(struct store *s, sqlite3_stmt *st, const char *what);
/* Runs SQL text (no rows); failures logged, CASENET_EUNAVAIL / ENOMEM. */
int sq_exec(struct store *s, const char *q, const char *what);
/* Binders (SQLITE_STATIC: the caller keeps the bytes until the step): a blob
 * (NULL p binds NULL) and a text. */
static inline int sq_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    if (!p)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_blob64(st, i, n ? p : "", n, SQLITE_STATIC);
}
static inline int sq_bind_text(sqlite3_stmt *st, int i, const char *t)
{
    return sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
}
/* Copies a text column into out (cap bytes with its NUL); false when NULL or
 * too long. */
bool sq_col_text(sqlite3_stmt *st, int i, char *out, size_t cap);
/* store_sqlite_schema.c: runs the migrations that take the database from its
 * user_version to target, each step in its own transaction.
 * CASENET_EVERSION (logged) when the database is newer than this build. */
int sq_migrate(struct store *s, int64_t target);
/* The sub-tables of other files: store_sqlite_audit.c, store_sqlite_inbox.c
 * (which also serves the member byte counts of the message table). */
extern const struct store_audit_ops sq_audit_ops;
extern const struct store_inbox_ops sq_inbox_ops;
int sq_member_bytes(struct store *s, const char *member, uint64_t *bytes);
int sq_member_bytes_add(struct store *s, const char *member, uint64_t bytes);

/* The store's connection (borrowed). */
sqlite3 *sq_db(struct store *s);
/* Maps a SQLite result code to casenet_err, logging failures (see map_rc). */
int sq_map_rc(struct store *s, int rc, const char *what);
/* Reads an SQ_INBOX_COLS row; CASENET_EUNAVAIL (logged) when corrupt. */
int sq_read_inbox_row(sqlite3_stmt *st, struct store_inbox_row *r);
/* Reads an SQ_MESSAGE_COLS row into *m (zeroed first; m->envelope left
 * empty; m->receipt malloc'd, released with store_message_clear even on
 * failure). CASENET_EUNAVAIL (logged) when corrupt, CASENET_ENOMEM. */
int sq_read_message_row(sqlite3_stmt *st, struct store_message *m);
/* Column readers: a blob of exactly len bytes into out (false otherwise), and
 * a blob copied into a fresh buffer (empty for NULL; CASENET_ENOMEM). */
bool sq_col_fixed(sqlite3_stmt *st, int i, uint8_t *out, size_t len);
int sq_col_buf(sqlite3_stmt *st, int i, casenet_buf *out);
/* The companion's statement cache slot (NULL until it prepares one). */
struct sq_lifecycle **sq_lifecycle_slot(struct store *s);

/* What store_sqlite_wal.c knows of the write-ahead log: frames is the log's
 * length after the last commit (from the WAL hook), backfilled how many of
 * them the last checkpoint copied while the log could not restart. */
struct sq_wal {
    uint32_t frames, backfilled;
    uint64_t checkpoints, backstops; /* counts, for tests and logs */
};
/* The store's WAL state (borrowed). */
struct sq_wal *sq_wal_state(struct store *s);
/* store_sqlite_wal.c: turns SQLite's auto-checkpoint off and installs the WAL
 * hook (see there). Called by sq_open once the database is in WAL mode. */
int sq_wal_open(struct store *s);
/* store_sqlite_wal.c: store_ops.checkpoint. */
int sq_checkpoint(struct store *s, uint32_t min_frames, uint32_t *pending);

/* store_sqlite_lifecycle.c: finalises the companion's statements. Accepts
 * NULL. Called by sq_close. */
void sq_lifecycle_close(struct sq_lifecycle *lc);
/* store_sqlite_lifecycle.c: records that row seq entered state at at_ms (in
 * batch; called by inbox_set_state). */
int sq_lifecycle_step(struct store *s, uint64_t seq, int state, int64_t at_ms);

/* store_sqlite_lifecycle.c: the lifecycle operations of store_ops. */
int sq_deadline_arm(struct store *s, uint64_t seq, int kind, int64_t due_ms);
int sq_deadline_due(struct store *s, int64_t now_ms, uint32_t limit, struct store_deadline **rows,
                    size_t *n);
int sq_deadline_settle(struct store *s, uint64_t id, int state, int64_t now_ms,
                       const uint8_t *notice_id);
int sq_deadline_list(struct store *s, uint64_t seq, struct store_deadline **rows, size_t *n);
int sq_overdue_list(struct store *s, uint64_t cursor, uint32_t limit, struct store_overdue **rows,
                    size_t *n, bool *more);
int sq_inbox_get_seq(struct store *s, uint64_t seq, struct store_inbox_row *out);
int sq_inbox_of_message(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                        struct store_inbox_row **rows, size_t *n);
int sq_step_list(struct store *s, uint64_t seq, struct store_step **rows, size_t *n);
int sq_receipt_list(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                    const char *recipient, struct store_receipt_rec **rows, size_t *n);
int sq_sent_list(struct store *s, const char *sender, uint64_t cursor, uint32_t limit,
                 struct store_message **rows, size_t *n, bool *more);
int sq_sent_rows(struct store *s, const char *sender, uint64_t after_row, uint64_t upto_row,
                 struct store_inbox_row **rows, size_t *n_rows, struct store_deadline **ds,
                 size_t *n_ds);

/* store_sqlite_lifecycle.c: the SQL of its statement i, NULL past the last. */
const char *sq_lifecycle_sql(size_t i);

/* For tests of the schema. The SQL of every statement the store prepares
 * (both files), i = 0, 1, ... until NULL; the SQL of migration step `step`
 * (user_version step -> step + 1), NULL past the last; and the database in
 * data_dir created (or migrated forward) up to schema version `version`,
 * then closed (CASENET_EINVAL beyond the last). */
const char *sq_statement_sql(size_t i);
const char *sq_migration_sql(size_t step);
int sq_create_at(const char *data_dir, int64_t version);

#endif
