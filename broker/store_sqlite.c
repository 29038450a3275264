/*
 * store_sqlite.c - the SQLite backend of the broker store (see store.h):
 * one connection, WAL, synchronous=FULL, foreign keys on, 4 KiB pages, schema
 * version in user_version with forward migrations, statements prepared once
 * for the life of the process. This file holds the connection, the
 * transaction, messages, receipts, directories and the statement table; the
 * other operations are in its companions (store_sqlite_impl.h).
 */
#include "store.h"

#include "log.h"
#include "store_sqlite_impl.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_FILE         "casenet.db"
#define BUSY_TIMEOUT_MS 5000
/* The page size of a new store. A commit writes every page it dirties,
 * about one per B-tree a Submit touches (~20), whole, to the WAL: at 4 KiB
 * a message at one in flight wrote 137-139 KB against 223-235 KB at 8 KiB,
 * at saturation 11.7-12.8 KB of log against 14.5-15.8 (casenet-bench, 2 KB
 * messages, 3 runs each). A 2 KB envelope still fits a page's row. A store
 * created with another size keeps it: SQLite ignores page_size once the
 * database has a table, and cannot change it in WAL mode. */
#define PAGE_SIZE 4096
/* Tuning measured with casenet-bench (README "Performance"); none of it
 * touches durability (synchronous stays FULL). temp_store = MEMORY keeps the
 * sub-journal of the per-request savepoints in memory: on a file it cost a
 * pwrite per page touched by every request. The page cache is bounded (the
 * broker's memory must stay flat whatever the store holds). The WAL is
 * checkpointed every 8 MiB or so at most (server_impl.h: CKPT_BUSY_FRAMES)
 * and cut back to 64 MiB after a checkpoint. The loop, not SQLite, checkpoints: after a
 * batch's replies went out (store_sqlite_wal.c). */
#define TUNING_PRAGMAS                                                                             \
    "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;"                                      \
    " PRAGMA journal_size_limit = 67108864;"

/* Columns of an audit query's candidate rows (see read_candidate). */
#define AQ_COLS   "a.idx, a.time_ms, a.kind, a.message_id, a.case_ref, a.event"
#define HEAD_COLS "size, time_ms, root, checkpoint"

#define INBOX_COLS SQ_INBOX_COLS
/* One state's part of a recipient's inbox after the cursor (ListInbox). */
#define LIST_IN(state_cond)                                                                        \
    "SELECT " INBOX_COLS " FROM inbox WHERE recipient = ?1 AND " state_cond " AND seq > ?2"

static const char *const sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT request",
    [ST_RELEASE] = "RELEASE request",
    [ST_ROLLBACK_TO] = "ROLLBACK TO request",
    [ST_MSG_INSERT] = "INSERT INTO messages (message_id, sender, kind, urgency, msg_status,"
                      " created_at_ms, expires_at_ms, received_at_ms, in_reply_to, case_ref,"
                      " envelope_hash, size, audit_index, envelope, receipt)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [ST_MSG_GET] = "SELECT " SQ_MESSAGE_COLS ", CASE WHEN ?2 THEN envelope END"
                   " FROM messages WHERE message_id = ?1",
    [ST_MSG_AUDIT_KEY] = "SELECT audit_index FROM messages WHERE message_id = ?1",
    [ST_MSG_ROW] = "SELECT id FROM messages WHERE message_id = ?1",
    /* Inbox rows. A row for a message (any kind but KIND_RECEIPT) is linked
     * to its message's row and unique by (msg, recipient), the UNIQUE index
     * inbox_msg_recipient; a receipt row has no message and is unique by
     * (recipient, message_id) among such rows, inbox_unlinked. A check
     * before the insert keeps (recipient, message_id) unique across both
     * kinds, as one index did before schema 5: ST_INBOX_LINK_CHECK for a
     * message row (no receipt row holds the pair, and row ?3 is message
     * ?2's: read by rowid, a page just written), ST_INBOX_RECEIPT_CHECK for
     * a receipt row. Then a one-row INSERT ... VALUES: an INSERT ... SELECT
     * into a table with triggers stages its rows in a temporary b-tree,
     * opened and freed for every row. */
    [ST_INBOX_LINK_CHECK] =
        "SELECT EXISTS (SELECT 1 FROM inbox WHERE msg IS NULL AND recipient = ?1"
        " AND message_id = ?2)"
        " OR NOT EXISTS (SELECT 1 FROM messages WHERE id = ?3 AND message_id = ?2)",
    /* The same for a receipt row (no message: ?3 NULL in
     * ST_INBOX_INSERT): whether (recipient, message_id) is taken, by a
     * receipt row or by the row of a message with that id. Both checks
     * answer true when the row must be refused. */
    [ST_INBOX_RECEIPT_CHECK] =
        "SELECT EXISTS (SELECT 1 FROM inbox WHERE msg IS NULL AND recipient = ?1"
        " AND message_id = ?2) OR EXISTS (SELECT 1 FROM inbox WHERE recipient = ?1"
        " AND msg = (SELECT id FROM messages WHERE message_id = ?2))",
    [ST_INBOX_INSERT] =
        "INSERT INTO inbox (recipient, message_id, msg, sender, kind, urgency, msg_status, state,"
        " received_at_ms, created_at_ms, updated_at_ms, size, in_reply_to, case_ref,"
        " receipt_status, receipt)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?11, ?12, ?13, ?14, ?15)",
    [ST_INBOX_GET] = "SELECT " INBOX_COLS " FROM inbox"
                     " WHERE msg = (SELECT id FROM messages WHERE message_id = ?2)"
                     " AND recipient = ?1"
                     " UNION ALL SELECT " INBOX_COLS " FROM inbox"
                     " WHERE msg IS NULL AND recipient = ?1 AND message_id = ?2 LIMIT 1",
    /* A receipt row's key, through the partial index inbox_unlinked only. */
    [ST_INBOX_RECEIPT_ROW] = "SELECT EXISTS (SELECT 1 FROM inbox WHERE msg IS NULL"
                             " AND recipient = ?1 AND message_id = ?2)",
    /* Every state's run of (recipient, state, seq), merged in seq order:
     * one index serves both listings, nine seeks a page (states beyond
     * STORE_INBOX_QUEUED..DEAD in the last two, empty unless corrupt). */
    /* clang-format off */
    [ST_INBOX_LIST_ANY] = LIST_IN("state = " SQ_QUEUED) " UNION ALL "
                          LIST_IN("state = " SQ_FETCHED) " UNION ALL "
                          LIST_IN("state = " SQ_DELIVERED) " UNION ALL "
                          LIST_IN("state = " SQ_ACCEPTED) " UNION ALL "
                          LIST_IN("state = " SQ_DECLINED) " UNION ALL "
                          LIST_IN("state = " SQ_COMPLETED) " UNION ALL "
                          LIST_IN("state = " SQ_DEAD) " UNION ALL "
                          LIST_IN("state < " SQ_QUEUED) " UNION ALL "
                          LIST_IN("state > " SQ_DEAD) " ORDER BY seq LIMIT ?3",
    /* clang-format on */
    [ST_INBOX_LIST_STATE] = "SELECT " INBOX_COLS " FROM inbox"
                            " WHERE recipient = ?1 AND state = ?4 AND seq > ?2"
                            " ORDER BY seq LIMIT ?3",
    [ST_INBOX_SET_STATE] = "UPDATE inbox SET state = ?2, updated_at_ms = ?3 WHERE seq = ?1",
    [ST_RECEIPT_INSERT] = "INSERT INTO receipts (receipt_hash, message_id, recipient, status,"
                          " received_at_ms, audit_index, signed_receipt)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_RECEIPT_FIND] = "SELECT audit_index FROM receipts WHERE receipt_hash = ?1",
    [ST_AUDIT_NEXT] = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit",
    [ST_AUDIT_INSERT] = "INSERT INTO audit (idx, time_ms, kind, event, message_id, case_ref,"
                        " msg_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_AUDIT_PARTY] = "INSERT OR IGNORE INTO audit_parties (member, idx) VALUES (?1, ?2)",
    [ST_AUDIT_COUNT] = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit",
    [ST_DIR_SAVE] = "INSERT INTO directories (version, signed, stored_at_ms) VALUES (?1, ?2, ?3)",
    [ST_DIR_LATEST] = "SELECT version, signed FROM directories ORDER BY version DESC LIMIT 1",
    /* audit_nodes is keyed by (last leaf, level): see node_last. */
    [ST_NODE_PUT] = "INSERT OR REPLACE INTO audit_nodes (level, last, hash) VALUES (?1, ?2, ?3)",
    [ST_NODE_GET] = "SELECT hash FROM audit_nodes WHERE level = ?1 AND last = ?2",
    /* A subtree is stored with the leaf that completes it: the last leaf
     * stored is the largest last of any level. */
    [ST_NODE_LEAVES] = "SELECT COALESCE(MAX(last) + 1, 0) FROM audit_nodes",
    [ST_AUDIT_SET_KEYS] = "UPDATE audit SET message_id = ?2, case_ref = ?3 WHERE idx = ?1",
    /* Audit queries: one driving index per statement (the most selective
     * filter set), the other filters are checked row by row. A query by
     * kind alone reads the log in index order (ST_AQ_ALL), max_examined
     * rows a call: no index on kind (schema 8). */
    [ST_AQ_ALL] = "SELECT " AQ_COLS " FROM audit a WHERE a.idx >= ?1 ORDER BY a.idx",
    /* Events keyed by the stored message's audit_index, and events about
     * the id that were not keyed (none was stored then, or older schema),
     * merged in log order. A key shared by two messages (notices of one
     * event) is told apart by the row check (candidate_matches). */
    [ST_AQ_MESSAGE] = "SELECT " AQ_COLS " FROM audit a"
                      " WHERE a.msg_key = (SELECT audit_index FROM messages WHERE message_id = ?2)"
                      " AND a.idx >= ?1"
                      " UNION ALL SELECT " AQ_COLS " FROM audit a"
                      " WHERE a.msg_key IS NULL AND a.message_id = ?2 AND a.idx >= ?1"
                      " ORDER BY 1",
    [ST_AQ_CASE] = "SELECT " AQ_COLS " FROM audit a WHERE a.case_ref = ?2 AND a.idx >= ?1"
                   " ORDER BY a.idx",
    [ST_AQ_MEMBER] = "SELECT " AQ_COLS " FROM audit_parties p JOIN audit a ON a.idx = p.idx"
                     " WHERE p.member = ?2 AND p.idx >= ?1 ORDER BY p.idx",
    [ST_AUDIT_VISIBLE] = "SELECT 1 FROM audit_parties WHERE member = ?1 AND idx = ?2",
    [ST_AUDIT_RANGE] = "SELECT idx, event FROM audit WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
    [ST_HEAD_SAVE] = "INSERT INTO tree_heads (" HEAD_COLS ") VALUES (?1, ?2, ?3, ?4)",
    [ST_HEAD_GET] = "SELECT " HEAD_COLS " FROM tree_heads WHERE size = ?1",
    [ST_HEAD_LATEST] = "SELECT " HEAD_COLS " FROM tree_heads ORDER BY size DESC LIMIT 1",
    [ST_HEAD_LIST] = "SELECT " HEAD_COLS " FROM tree_heads WHERE size > ?1 AND size <= ?2"
                     " ORDER BY size LIMIT ?3",
    [ST_INBOX_BACKLOG] = "SELECT coalesce(sum(queued), 0),"
                         " coalesce(sum(CASE WHEN sender = ?2 THEN queued END), 0)"
                         " FROM inbox_pair_backlog WHERE recipient = ?1",
    [ST_MEMBER_BYTES] = "SELECT bytes FROM member_bytes WHERE member = ?1",
    [ST_MEMBER_BYTES_ADD] = "INSERT INTO member_bytes (member, bytes) VALUES (?1, ?2)"
                            " ON CONFLICT (member) DO UPDATE SET bytes = bytes + ?2",
    [ST_INBOX_FETCH_MARK] =
        "UPDATE inbox SET fetch_state = ?2 WHERE seq = ?1 AND fetch_state <> ?2",
};

struct sqlite_store {
    struct store base;
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    struct sq_lifecycle *lc; /* store_sqlite_lifecycle.c's statements */
    struct sq_wal wal;       /* store_sqlite_wal.c */
};

static struct sqlite_store *S(struct store *s)
{
    return (struct sqlite_store *)s;
}

/* Maps a SQLite result code to casenet_err, logging the raw cause of every
 * store failure. Constraint violations are answers (CONFLICT), not failures. */
static int map_rc(struct sqlite_store *s, int rc, const char *what)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_OK || primary == SQLITE_DONE || primary == SQLITE_ROW)
        return CASENET_OK;
    if (primary == SQLITE_CONSTRAINT)
        return CASENET_ECONFLICT;
    char code[16];
    snprintf(code, sizeof code, "%d", rc);
    log_event(LOG_ERROR, "store_error", "op", what, "sqlite_code", code, "sqlite_error",
              sqlite3_errstr(rc), "msg", s->db ? sqlite3_errmsg(s->db) : "", NULL);
    if (primary == SQLITE_NOMEM)
        return CASENET_ENOMEM;
    return CASENET_EUNAVAIL; /* FULL, IOERR, CORRUPT, BUSY, ... */
}

static sqlite3_stmt *stmt(struct sqlite_store *s, enum sq_stmt which)
{
    sqlite3_stmt *st = s->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Runs a statement that returns no rows. */
static int run(struct sqlite_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_DONE ? CASENET_OK : map_rc(s, rc, what);
    sqlite3_reset(st);
    return err;
}

/* Copies a fixed-size blob column; false when its size differs. */
bool sq_col_fixed(sqlite3_stmt *st, int i, uint8_t *out, size_t len)
{
    const void *p = sqlite3_column_blob(st, i);
    if (!p || (size_t)sqlite3_column_bytes(st, i) != len)
        return false;
    memcpy(out, p, len);
    return true;
}

/* Copies a blob column into a fresh buffer (empty for NULL). */
bool sq_col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!t || n >= cap)
        return false;
    memcpy(out, t, n + 1);
    return true;
}

/* Copies a blob column into a fresh buffer (empty for NULL). */
int sq_col_buf(sqlite3_stmt *st, int i, casenet_buf *out)
{
    out->data = NULL;
    out->len = 0;
    const void *p = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!p || n == 0)
        return CASENET_OK;
    out->data = malloc(n);
    if (!out->data)
        return CASENET_ENOMEM;
    memcpy(out->data, p, n);
    out->len = n;
    return CASENET_OK;
}

/* ------------------------------------------------------------ open / close */

static void sq_close(struct store *base)
{
    if (!base)
        return;
    struct sqlite_store *s = S(base);
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sq_lifecycle_close(s->lc);
    if (s->db) {
        int rc = sqlite3_close(s->db);
        if (rc != SQLITE_OK)
            log_event(LOG_ERROR, "store_close", "sqlite_error", sqlite3_errstr(rc), NULL);
    }
    free(s);
}

static int exec(struct sqlite_store *s, const char *q, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, q, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_event(LOG_ERROR, "store_error", "op", what, "sqlite_error", sqlite3_errstr(rc), "msg",
                  msg ? msg : "", NULL);
        sqlite3_free(msg);
        return (rc & 0xff) == SQLITE_NOMEM ? CASENET_ENOMEM : CASENET_EUNAVAIL;
    }
    return CASENET_OK;
}

/* Opens (creating) the database in data_dir with the store's pragmas, and
 * migrates it to schema version target; no statement is prepared yet. On
 * failure the caller closes s. */
static int connect_at(struct sqlite_store *s, const char *data_dir, int64_t target)
{
    int rc = CASENET_EUNAVAIL;
    char *path = NULL;
    if (asprintf(&path, "%s/%s", data_dir, DB_FILE) < 0) {
        path = NULL;
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    int src = sqlite3_open_v2(path, &s->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                  SQLITE_OPEN_EXRESCODE,
                              NULL);
    if (src != SQLITE_OK) {
        rc = map_rc(s, src, "open");
        goto cleanup;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);
    /* page_size only takes effect before the first table (and before WAL). */
    char q[64];
    snprintf(q, sizeof q, "PRAGMA page_size = %d", PAGE_SIZE);
    if ((rc = exec(s, q, "pragma")) != CASENET_OK)
        goto cleanup;
    char *mode = NULL;
    sqlite3_stmt *st = NULL;
    src = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (src == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        mode = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!mode || strcmp(mode, "wal") != 0) {
        log_event(LOG_ERROR, "store_error", "op", "journal_mode", "got", mode ? mode : "", "msg",
                  "the data directory must be on a local file system that supports WAL", NULL);
        sqlite3_free(mode);
        rc = CASENET_EUNAVAIL;
        goto cleanup;
    }
    sqlite3_free(mode);
    if ((rc = exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", "pragma")) !=
        CASENET_OK)
        goto cleanup;
    if ((rc = exec(s, TUNING_PRAGMAS, "pragma")) != CASENET_OK)
        goto cleanup;
    if ((rc = sq_wal_open(&s->base)) == CASENET_OK)
        rc = sq_migrate(&s->base, target);
cleanup:
    free(path);
    return rc;
}

static int sq_open(const char *data_dir, struct store **out)
{
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s)
        return CASENET_ENOMEM;
    s->base.ops = &store_sqlite_ops;
    int rc = connect_at(s, data_dir, SQ_SCHEMA_VERSION);
    if (rc != CASENET_OK)
        goto cleanup;
    for (int i = 0; i < ST_COUNT; i++) {
        int src = sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (src != SQLITE_OK) {
            rc = map_rc(s, src, sql[i]);
            goto cleanup;
        }
    }
    *out = &s->base;
    s = NULL;
    rc = CASENET_OK;
cleanup:
    sq_close(s ? &s->base : NULL);
    return rc;
}

int sq_create_at(const char *data_dir, int64_t version)
{
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s)
        return CASENET_ENOMEM;
    s->base.ops = &store_sqlite_ops;
    int rc = version >= 0 && version <= SQ_SCHEMA_VERSION ? connect_at(s, data_dir, version)
                                                          : CASENET_EINVAL;
    sq_close(&s->base);
    return rc;
}

const char *sq_statement_sql(size_t i)
{
    return i < ST_COUNT ? sql[i] : sq_lifecycle_sql(i - ST_COUNT);
}

/* ------------------------------------------------------------ transactions */

static int sq_begin(struct store *b)
{
    return run(S(b), stmt(S(b), ST_BEGIN), "begin");
}

static int sq_commit(struct store *b)
{
    struct sqlite_store *s = S(b);
    if (run(s, stmt(s, ST_COMMIT), "commit") == CASENET_OK)
        return CASENET_OK;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return CASENET_EUNAVAIL;
}

static void sq_rollback(struct store *b)
{
    struct sqlite_store *s = S(b);
    if (!sqlite3_get_autocommit(s->db))
        (void)run(s, stmt(s, ST_ROLLBACK), "rollback");
}

static int sq_savepoint(struct store *b)
{
    return run(S(b), stmt(S(b), ST_SAVEPOINT), "savepoint");
}

static int sq_release(struct store *b)
{
    return run(S(b), stmt(S(b), ST_RELEASE), "release");
}

static int sq_rollback_to(struct store *b)
{
    struct sqlite_store *s = S(b);
    int rc = run(s, stmt(s, ST_ROLLBACK_TO), "rollback_to");
    if (rc == CASENET_OK)
        (void)run(s, stmt(s, ST_RELEASE), "release");
    return rc;
}

static bool sq_in_transaction(struct store *b)
{
    return !sqlite3_get_autocommit(S(b)->db);
}

static uint64_t sq_changes(struct store *b)
{
    return (uint64_t)sqlite3_total_changes64(S(b)->db);
}

/* ------------------------------------------------------------ messages */

static int sq_message_insert(struct store *b, const struct store_message *m)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_MSG_INSERT);
    sq_bind_blob(st, 1, m->message_id, sizeof m->message_id);
    sq_bind_text(st, 2, m->sender);
    sqlite3_bind_int(st, 3, m->kind);
    sqlite3_bind_int(st, 4, m->urgency);
    sqlite3_bind_int(st, 5, m->msg_status);
    sqlite3_bind_int64(st, 6, m->created_at_ms);
    sqlite3_bind_int64(st, 7, m->expires_at_ms);
    sqlite3_bind_int64(st, 8, m->received_at_ms);
    sq_bind_blob(st, 9, m->has_in_reply_to ? m->in_reply_to : NULL, sizeof m->in_reply_to);
    sq_bind_blob(st, 10, m->has_case_ref ? m->case_ref : NULL, sizeof m->case_ref);
    sq_bind_blob(st, 11, m->envelope_hash, sizeof m->envelope_hash);
    sqlite3_bind_int64(st, 12, m->size);
    sqlite3_bind_int64(st, 13, (sqlite3_int64)m->audit_index);
    sq_bind_blob(st, 14, m->envelope.data, m->envelope.len);
    sq_bind_blob(st, 15, m->receipt.data, m->receipt.len);
    return run(s, st, "message_insert");
}

static int64_t sq_message_last_rowid(struct store *b)
{
    return (int64_t)sqlite3_last_insert_rowid(S(b)->db);
}

/* Incremental blob I/O: 64 bytes written in place, instead of an UPDATE
 * that rewrites the whole receipt (and rereads the row). */
static int sq_message_receipt_sigs(struct store *b, const struct store_receipt_sig *rows, size_t n)
{
    struct sqlite_store *s = S(b);
    sqlite3_blob *blob = NULL;
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        if (!blob)
            rc = sqlite3_blob_open(s->db, "main", "messages", "receipt", rows[i].rowid, 1, &blob);
        else
            rc = sqlite3_blob_reopen(blob, rows[i].rowid);
        if (rc != SQLITE_OK)
            break;
        int len = sqlite3_blob_bytes(blob);
        if (len < CASENET_SIGNATURE_BYTES) {
            rc = SQLITE_CORRUPT;
            break;
        }
        rc = sqlite3_blob_write(blob, rows[i].sig, CASENET_SIGNATURE_BYTES,
                                len - CASENET_SIGNATURE_BYTES);
    }
    int crc = sqlite3_blob_close(blob); /* accepts NULL */
    if (rc == SQLITE_OK)
        rc = crc;
    if (rc == SQLITE_OK)
        return CASENET_OK;
    (void)map_rc(s, rc, "message_receipt_sigs"); /* logs it */
    return CASENET_EUNAVAIL;
}

static int sq_message_get(struct store *b, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                          bool with_envelope, struct store_message *out)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_MSG_GET);
    struct store_message m = {0};
    sq_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES);
    sqlite3_bind_int(st, 2, with_envelope);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : map_rc(s, rc, "message_get");
        sqlite3_reset(st);
        return err;
    }
    int err = sq_read_message_row(st, &m);
    if (err == CASENET_OK)
        err = sq_col_buf(st, SQ_MESSAGE_NCOLS, &m.envelope);
    if (err != CASENET_OK)
        goto cleanup;
    *out = m;
    memset(&m, 0, sizeof m);
    err = CASENET_OK;
cleanup:
    store_message_clear(&m);
    sqlite3_reset(st);
    return err;
}

int sq_read_message_row(sqlite3_stmt *st, struct store_message *m)
{
    memset(m, 0, sizeof *m);
    if (!sq_col_fixed(st, 0, m->message_id, sizeof m->message_id) ||
        !sq_col_text(st, 1, m->sender, sizeof m->sender) ||
        !sq_col_fixed(st, 10, m->envelope_hash, sizeof m->envelope_hash)) {
        log_event(LOG_ERROR, "store_corrupt", "table", "messages", "row",
                  log_u64((uint64_t)sqlite3_column_int64(st, 14)), NULL);
        return CASENET_EUNAVAIL;
    }
    m->kind = sqlite3_column_int(st, 2);
    m->urgency = sqlite3_column_int(st, 3);
    m->msg_status = sqlite3_column_int(st, 4);
    m->created_at_ms = sqlite3_column_int64(st, 5);
    m->expires_at_ms = sqlite3_column_int64(st, 6);
    m->received_at_ms = sqlite3_column_int64(st, 7);
    m->has_in_reply_to = sq_col_fixed(st, 8, m->in_reply_to, sizeof m->in_reply_to);
    m->has_case_ref = sq_col_fixed(st, 9, m->case_ref, sizeof m->case_ref);
    m->size = (uint32_t)sqlite3_column_int64(st, 11);
    m->audit_index = (uint64_t)sqlite3_column_int64(st, 12);
    m->row = (uint64_t)sqlite3_column_int64(st, 14);
    return sq_col_buf(st, 13, &m->receipt);
}

/* ------------------------------------------------------------ receipts */

static int sq_receipt_insert(struct store *b, const struct store_receipt *r)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_RECEIPT_INSERT);
    sq_bind_blob(st, 1, r->receipt_hash, sizeof r->receipt_hash);
    sq_bind_blob(st, 2, r->message_id, sizeof r->message_id);
    sq_bind_text(st, 3, r->recipient);
    sqlite3_bind_int(st, 4, r->status);
    sqlite3_bind_int64(st, 5, r->received_at_ms);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)r->audit_index);
    sq_bind_blob(st, 7, r->signed_receipt, r->signed_len);
    return run(s, st, "receipt_insert");
}

static int sq_receipt_find(struct store *b, const uint8_t hash[CASENET_HASH_BYTES],
                           uint64_t *audit_index)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_RECEIPT_FIND);
    sq_bind_blob(st, 1, hash, CASENET_HASH_BYTES);
    int rc = sqlite3_step(st);
    int err;
    if (rc == SQLITE_ROW) {
        *audit_index = (uint64_t)sqlite3_column_int64(st, 0);
        err = CASENET_OK;
    } else {
        err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : map_rc(s, rc, "receipt_find");
    }
    sqlite3_reset(st);
    return err;
}

/* ------------------------------------------------------------ directories */

static int sq_directory_save(struct store *b, uint64_t version, const uint8_t *bytes, size_t len,
                             int64_t now_ms)
{
    struct sqlite_store *s = S(b);
    if (version > INT64_MAX)
        return CASENET_EBADREQ;
    sqlite3_stmt *st = stmt(s, ST_DIR_SAVE);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)version);
    sq_bind_blob(st, 2, bytes, len);
    sqlite3_bind_int64(st, 3, now_ms);
    return run(s, st, "directory_save");
}

static int sq_directory_latest(struct store *b, casenet_buf *out, uint64_t *version)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_DIR_LATEST);
    int rc = sqlite3_step(st);
    int err;
    if (rc == SQLITE_ROW) {
        casenet_buf buf;
        err = sq_col_buf(st, 1, &buf);
        if (err == CASENET_OK) {
            *version = (uint64_t)sqlite3_column_int64(st, 0);
            *out = buf;
        }
    } else {
        err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : map_rc(s, rc, "directory_latest");
    }
    sqlite3_reset(st);
    return err;
}

static const struct store_admin_ops sq_admin = {
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .in_transaction = sq_in_transaction,
    .changes = sq_changes,
    .directory_save = sq_directory_save,
    .directory_latest = sq_directory_latest,
    .checkpoint = sq_checkpoint,
};

static const struct store_message_ops sq_message = {
    .message_insert = sq_message_insert,
    .message_last_rowid = sq_message_last_rowid,
    .message_receipt_sigs = sq_message_receipt_sigs,
    .message_get = sq_message_get,
    .receipt_insert = sq_receipt_insert,
    .receipt_find = sq_receipt_find,
    .receipt_list = sq_receipt_list,
    .sent_list = sq_sent_list,
    .sent_rows = sq_sent_rows,
    .member_bytes = sq_member_bytes,
    .member_bytes_add = sq_member_bytes_add,
};

static const struct store_deadline_ops sq_deadline = {
    .deadline_arm = sq_deadline_arm,
    .deadline_due = sq_deadline_due,
    .deadline_settle = sq_deadline_settle,
    .deadline_list = sq_deadline_list,
    .overdue_list = sq_overdue_list,
};

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .admin = &sq_admin,
    .message = &sq_message,
    .inbox = &sq_inbox_ops,
    .deadline = &sq_deadline,
    .audit = &sq_audit_ops,
};

/* ------------------------------------------------------------ companions */

sqlite3 *sq_db(struct store *b)
{
    return S(b)->db;
}

sqlite3_stmt *sq_stmt(struct store *b, enum sq_stmt which)
{
    return stmt(S(b), which);
}

int sq_run(struct store *b, sqlite3_stmt *st, const char *what)
{
    return run(S(b), st, what);
}

int sq_exec(struct store *b, const char *q, const char *what)
{
    return exec(S(b), q, what);
}

int sq_map_rc(struct store *b, int rc, const char *what)
{
    return map_rc(S(b), rc, what);
}

struct sq_lifecycle **sq_lifecycle_slot(struct store *b)
{
    return &S(b)->lc;
}

struct sq_wal *sq_wal_state(struct store *b)
{
    return &S(b)->wal;
}
