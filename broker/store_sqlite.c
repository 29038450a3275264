/*
 * store_sqlite.c - the SQLite backend of the broker store (see store.h):
 * one connection, WAL, synchronous=FULL, foreign keys on, 8 KiB pages, schema
 * version in user_version with forward migrations, statements prepared once
 * for the life of the process.
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
#define PAGE_SIZE       8192
/* Tuning measured with casenet-bench (README "Performance"); none of it
 * touches durability (synchronous stays FULL). temp_store = MEMORY keeps the
 * sub-journal of the per-request savepoints in memory: on a file it cost a
 * pwrite per page touched by every request. The page cache is bounded (the
 * broker's memory must stay flat whatever the store holds). The WAL keeps
 * SQLite's checkpoint interval (1000 pages, 8 MiB: a longer one made each
 * checkpoint, which runs inside a commit, a longer stall) and is cut back to
 * 64 MiB after a checkpoint. The loop, not SQLite, checkpoints: after a
 * batch's replies went out (store_sqlite_wal.c). */
#define TUNING_PRAGMAS                                                                             \
    "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;"                                      \
    " PRAGMA journal_size_limit = 67108864;"

/* Forward migrations: step i takes user_version i to i + 1. Never edit a
 * step once released; append a new one. */
static const char *const migrations[] = {
    /* 0 -> 1: messages, inboxes, receipts, audit log, directories. */
    "CREATE TABLE messages ("
    " id INTEGER PRIMARY KEY,"
    " message_id BLOB NOT NULL UNIQUE CHECK (length(message_id) = 16),"
    " sender TEXT NOT NULL,"
    " kind INTEGER NOT NULL, urgency INTEGER NOT NULL, msg_status INTEGER NOT NULL,"
    " created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL,"
    " received_at_ms INTEGER NOT NULL,"
    " in_reply_to BLOB, case_ref BLOB,"
    " envelope_hash BLOB NOT NULL CHECK (length(envelope_hash) = 32),"
    " size INTEGER NOT NULL,"
    " audit_index INTEGER NOT NULL,"
    " envelope BLOB," /* the ciphertext envelope; NULL once purged */
    " receipt BLOB NOT NULL);"
    "CREATE TABLE inbox ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " recipient TEXT NOT NULL,"
    " message_id BLOB NOT NULL,"
    " msg INTEGER REFERENCES messages(id)," /* NULL for receipt rows */
    " sender TEXT NOT NULL,"
    " kind INTEGER NOT NULL, urgency INTEGER NOT NULL, msg_status INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " received_at_ms INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,"
    " updated_at_ms INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " in_reply_to BLOB, case_ref BLOB,"
    " receipt_status INTEGER NOT NULL DEFAULT 0,"
    " receipt BLOB);"
    "CREATE UNIQUE INDEX inbox_recipient_message ON inbox(recipient, message_id);"
    "CREATE INDEX inbox_recipient_seq ON inbox(recipient, seq);"
    "CREATE INDEX inbox_recipient_state_seq ON inbox(recipient, state, seq);"
    "CREATE INDEX inbox_msg ON inbox(msg);"
    "CREATE TABLE receipts ("
    " id INTEGER PRIMARY KEY,"
    " receipt_hash BLOB NOT NULL UNIQUE,"
    " message_id BLOB NOT NULL REFERENCES messages(message_id),"
    " recipient TEXT NOT NULL,"
    " status INTEGER NOT NULL,"
    " received_at_ms INTEGER NOT NULL,"
    " audit_index INTEGER NOT NULL,"
    " signed_receipt BLOB NOT NULL);"
    "CREATE INDEX receipts_message ON receipts(message_id);"
    /* idx is the rowid: the log position, 0-based, dense. event holds the
     * exact serialised AuditEvent that is hashed into the Merkle tree. */
    "CREATE TABLE audit ("
    " idx INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " kind INTEGER NOT NULL,"
    " event BLOB NOT NULL);"
    "CREATE TABLE audit_parties ("
    " member TEXT NOT NULL,"
    " idx INTEGER NOT NULL REFERENCES audit(idx),"
    " PRIMARY KEY (member, idx)) WITHOUT ROWID;"
    "CREATE TABLE directories ("
    " version INTEGER PRIMARY KEY,"
    " signed BLOB NOT NULL,"
    " stored_at_ms INTEGER NOT NULL);",
    /* 1 -> 2: lifecycle and deadlines. deadlines: one row per (inbox row,
     * kind) armed at submit, settled exactly once (the UNIQUE key and the
     * state make an escalation fire once, across restarts); only pending
     * rows are indexed by due time, so the timer never rescans settled
     * ones. steps: every state an inbox row entered, with its time.
     * messages_sender: a member's own submissions (ListSent). */
    "CREATE TABLE deadlines ("
    " id INTEGER PRIMARY KEY,"
    " seq INTEGER NOT NULL REFERENCES inbox(seq),"
    " kind INTEGER NOT NULL," /* proto DeadlineKind */
    " due_ms INTEGER NOT NULL,"
    " state INTEGER NOT NULL DEFAULT " SQ_DL_PENDING ","
    " settled_at_ms INTEGER NOT NULL DEFAULT 0,"
    " notice_id BLOB,"
    " UNIQUE (seq, kind));"
    "CREATE INDEX deadlines_pending ON deadlines(due_ms) WHERE state = " SQ_DL_PENDING ";"
    "CREATE INDEX deadlines_breached ON deadlines(id) WHERE state = " SQ_DL_BREACHED ";"
    "CREATE TABLE steps ("
    " seq INTEGER NOT NULL REFERENCES inbox(seq),"
    " state INTEGER NOT NULL,"
    " at_ms INTEGER NOT NULL);"
    "CREATE INDEX steps_seq ON steps(seq);"
    "CREATE INDEX messages_sender ON messages(sender, id);",
    /* 2 -> 3: the audit log's Merkle tree and signed heads. audit_nodes holds
     * every perfect subtree (level, idx) = MTH of leaves [idx * 2^level,
     * (idx + 1) * 2^level), written when complete (PROTOCOL.md §10.2);
     * tree_heads the signed checkpoints. message_id and case_ref index the
     * events for audit queries; events stored before this step get their
     * keys and subtrees when the store is next opened (tree_open). */
    "CREATE TABLE audit_nodes ("
    " level INTEGER NOT NULL,"
    " idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL CHECK (length(hash) = 32),"
    " PRIMARY KEY (level, idx)) WITHOUT ROWID;"
    "CREATE TABLE tree_heads ("
    " size INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " root BLOB NOT NULL CHECK (length(root) = 32),"
    " checkpoint BLOB NOT NULL);"
    "ALTER TABLE audit ADD COLUMN message_id BLOB;"
    "ALTER TABLE audit ADD COLUMN case_ref BLOB;"
    "CREATE INDEX audit_message ON audit(message_id);"
    "CREATE INDEX audit_case ON audit(case_ref);"
    "CREATE INDEX audit_kind ON audit(kind);",
    /* 3 -> 4: a per-recipient count of QUEUED (state 1) inbox rows, kept by
     * triggers, so that the backlog limit costs one lookup. */
    "CREATE TABLE inbox_backlog ("
    " recipient TEXT PRIMARY KEY,"
    " queued INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO inbox_backlog (recipient, queued)"
    " SELECT recipient, count(*) FROM inbox WHERE state = " SQ_QUEUED " GROUP BY recipient;"
    "CREATE TRIGGER inbox_backlog_insert AFTER INSERT ON inbox"
    " WHEN NEW.state = " SQ_QUEUED " BEGIN"
    " INSERT INTO inbox_backlog (recipient, queued) VALUES (NEW.recipient, 1)"
    " ON CONFLICT (recipient) DO UPDATE SET queued = queued + 1; END;"
    "CREATE TRIGGER inbox_backlog_leave AFTER UPDATE OF state ON inbox"
    " WHEN OLD.state = " SQ_QUEUED " AND NEW.state <> " SQ_QUEUED " BEGIN"
    " UPDATE inbox_backlog SET queued = queued - 1 WHERE recipient = OLD.recipient; END;"
    "CREATE TRIGGER inbox_backlog_enter AFTER UPDATE OF state ON inbox"
    " WHEN OLD.state <> " SQ_QUEUED " AND NEW.state = " SQ_QUEUED " BEGIN"
    " INSERT INTO inbox_backlog (recipient, queued) VALUES (NEW.recipient, 1)"
    " ON CONFLICT (recipient) DO UPDATE SET queued = queued + 1; END;"
    "CREATE TRIGGER inbox_backlog_delete AFTER DELETE ON inbox"
    " WHEN OLD.state = " SQ_QUEUED " BEGIN"
    " UPDATE inbox_backlog SET queued = queued - 1 WHERE recipient = OLD.recipient; END;",
    /* 4 -> 5: fewer B-trees and fewer random pages per Submit. Every commit
     * writes each B-tree page it dirties to the WAL; an index keyed by the
     * client's random message id dirties one random page per message, an
     * index keyed by the broker's own increasing numbers only the last one.
     * - inbox: a message row is found through messages.message_id (the one
     *   random index a Submit must have) and then (msg, recipient), which
     *   grows at its end; rows without a message (KIND_RECEIPT rows, whose
     *   id is derived from the receipt) keep (recipient, message_id), in a
     *   partial index that Submit never touches. (msg, recipient) also
     *   serves what inbox_msg did. A recipient's whole inbox is listed by
     *   merging its states' runs of (recipient, state, seq), so
     *   (recipient, seq) goes.
     * - audit: an event about a stored message is keyed by that message's
     *   audit_index (msg_key), which grows with the log: the SUBMITTED event
     *   is appended after its message row, so it takes its own index. Events
     *   about an id not stored (REJECTED) and every event written before
     *   this step keep the message_id index, now partial. case_ref is
     *   indexed only where present.
     * - audit_nodes: keyed by (last leaf covered, level), so that the
     *   subtrees one batch completes are neighbours (one page), not one
     *   page per level. */
    "CREATE UNIQUE INDEX inbox_msg_recipient ON inbox(msg, recipient);"
    "CREATE UNIQUE INDEX inbox_unlinked ON inbox(recipient, message_id) WHERE msg IS NULL;"
    "DROP INDEX inbox_recipient_message;"
    "DROP INDEX inbox_msg;"
    "DROP INDEX inbox_recipient_seq;"
    "ALTER TABLE audit ADD COLUMN msg_key INTEGER;"
    "CREATE INDEX audit_msg_key ON audit(msg_key) WHERE msg_key IS NOT NULL;"
    "CREATE INDEX audit_message_unkeyed ON audit(message_id)"
    " WHERE msg_key IS NULL AND message_id IS NOT NULL;"
    "DROP INDEX audit_message;"
    "CREATE INDEX audit_case_ref ON audit(case_ref) WHERE case_ref IS NOT NULL;"
    "DROP INDEX audit_case;"
    "CREATE TABLE audit_nodes_v5 ("
    " last INTEGER NOT NULL," /* (idx + 1) * 2^level - 1 */
    " level INTEGER NOT NULL,"
    " hash BLOB NOT NULL CHECK (length(hash) = 32),"
    " PRIMARY KEY (last, level)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO audit_nodes_v5 (last, level, hash)"
    " SELECT ((idx + 1) << level) - 1, level, hash FROM audit_nodes"
    " WHERE level BETWEEN 0 AND 62 AND idx >= 0 AND idx < (1 << (62 - level));"
    "DROP TABLE audit_nodes;"
    "ALTER TABLE audit_nodes_v5 RENAME TO audit_nodes;",
    /* 5 -> 6: one B-tree less for every armed deadline. deadlines had a
     * rowid id and a UNIQUE (seq, kind) index beside it: every arm wrote
     * both. Now (seq, kind) is the key itself (WITHOUT ROWID), and a
     * deadline's id, which settles it and is the overdue list's cursor, is
     * seq * 8 + kind (store_sqlite_lifecycle.c: DEADLINE_ID): kinds are
     * proto DeadlineKind 1..3, below 8, hence the CHECK. The old rowids
     * ordered deadlines as they were armed, which is (seq, kind) order
     * (each row's kinds are armed in ascending order when the row is
     * stored), so the overdue list keeps its order. Every row is kept, its
     * state and settlement with it; the seq REFERENCES inbox(seq) lookups
     * use the key's prefix. */
    "CREATE TABLE deadlines_v6 ("
    " seq INTEGER NOT NULL REFERENCES inbox(seq),"
    " kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 7)," /* proto DeadlineKind */
    " due_ms INTEGER NOT NULL,"
    " state INTEGER NOT NULL DEFAULT " SQ_DL_PENDING ","
    " settled_at_ms INTEGER NOT NULL DEFAULT 0,"
    " notice_id BLOB,"
    " PRIMARY KEY (seq, kind)) WITHOUT ROWID;"
    "INSERT INTO deadlines_v6 (seq, kind, due_ms, state, settled_at_ms, notice_id)"
    " SELECT seq, kind, due_ms, state, settled_at_ms, notice_id FROM deadlines;"
    "DROP TABLE deadlines;"
    "ALTER TABLE deadlines_v6 RENAME TO deadlines;"
    "CREATE INDEX deadlines_pending ON deadlines(due_ms) WHERE state = " SQ_DL_PENDING ";"
    "CREATE INDEX deadlines_breached ON deadlines(seq, kind) WHERE state = " SQ_DL_BREACHED ";",
    /* 6 -> 7: the limits that keep one member from denying service to the
     * others (member_limits.h). inbox_pair_backlog replaces inbox_backlog:
     * QUEUED message rows (forwarded receipts, kind 20, are the broker's
     * doing, not a sender's) per (recipient, sender), kept by triggers; an
     * inbox's total is the sum over its senders, so a Submit still writes
     * one counter row per recipient. member_bytes: the envelope bytes each
     * member stored with Submits (not purged), for the byte quota: added
     * once per member and batch by the broker (member_bytes_add; a trigger
     * per message cost the loop measurably), taken away by triggers when
     * ciphertext goes. inbox.fetch_state: the
     * state in which the row's last audited fetch found it, so that
     * repeated fetches append one FETCHED event per state, not one each. */
    "DROP TRIGGER inbox_backlog_insert;"
    "DROP TRIGGER inbox_backlog_leave;"
    "DROP TRIGGER inbox_backlog_enter;"
    "DROP TRIGGER inbox_backlog_delete;"
    "DROP TABLE inbox_backlog;"
    "CREATE TABLE inbox_pair_backlog ("
    " recipient TEXT NOT NULL,"
    " sender TEXT NOT NULL,"
    " queued INTEGER NOT NULL,"
    " PRIMARY KEY (recipient, sender)) WITHOUT ROWID;"
    "INSERT INTO inbox_pair_backlog (recipient, sender, queued)"
    " SELECT recipient, sender, count(*) FROM inbox"
    " WHERE state = " SQ_QUEUED " AND kind <> " SQ_KIND_RECEIPT " GROUP BY recipient, sender;"
    "CREATE TRIGGER inbox_pair_insert AFTER INSERT ON inbox"
    " WHEN NEW.state = " SQ_QUEUED " AND NEW.kind <> " SQ_KIND_RECEIPT " BEGIN"
    " INSERT INTO inbox_pair_backlog (recipient, sender, queued)"
    " VALUES (NEW.recipient, NEW.sender, 1)"
    " ON CONFLICT (recipient, sender) DO UPDATE SET queued = queued + 1; END;"
    "CREATE TRIGGER inbox_pair_leave AFTER UPDATE OF state ON inbox"
    " WHEN OLD.state = " SQ_QUEUED " AND NEW.state <> " SQ_QUEUED
    " AND OLD.kind <> " SQ_KIND_RECEIPT " BEGIN"
    " UPDATE inbox_pair_backlog SET queued = queued - 1"
    " WHERE recipient = OLD.recipient AND sender = OLD.sender; END;"
    "CREATE TRIGGER inbox_pair_enter AFTER UPDATE OF state ON inbox"
    " WHEN OLD.state <> " SQ_QUEUED " AND NEW.state = " SQ_QUEUED
    " AND NEW.kind <> " SQ_KIND_RECEIPT " BEGIN"
    " INSERT INTO inbox_pair_backlog (recipient, sender, queued)"
    " VALUES (NEW.recipient, NEW.sender, 1)"
    " ON CONFLICT (recipient, sender) DO UPDATE SET queued = queued + 1; END;"
    "CREATE TRIGGER inbox_pair_delete AFTER DELETE ON inbox"
    " WHEN OLD.state = " SQ_QUEUED " AND OLD.kind <> " SQ_KIND_RECEIPT " BEGIN"
    " UPDATE inbox_pair_backlog SET queued = queued - 1"
    " WHERE recipient = OLD.recipient AND sender = OLD.sender; END;"
    "CREATE TABLE member_bytes ("
    " member TEXT PRIMARY KEY,"
    " bytes INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO member_bytes (member, bytes)"
    " SELECT sender, sum(size) FROM messages WHERE envelope IS NOT NULL GROUP BY sender;"
    "CREATE TRIGGER member_bytes_purge AFTER UPDATE OF envelope ON messages"
    " WHEN OLD.envelope IS NOT NULL AND NEW.envelope IS NULL BEGIN"
    " UPDATE member_bytes SET bytes = bytes - OLD.size WHERE member = OLD.sender; END;"
    "CREATE TRIGGER member_bytes_delete AFTER DELETE ON messages"
    " WHEN OLD.envelope IS NOT NULL BEGIN"
    " UPDATE member_bytes SET bytes = bytes - OLD.size WHERE member = OLD.sender; END;"
    "ALTER TABLE inbox ADD COLUMN fetch_state INTEGER NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

enum stmt {
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
    ST_AQ_KIND,
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
     * filter set), the other filters are checked row by row. */
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
    [ST_AQ_KIND] = "SELECT " AQ_COLS " FROM audit a WHERE a.kind = ?2 AND a.idx >= ?1"
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

static sqlite3_stmt *stmt(struct sqlite_store *s, enum stmt which)
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

static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    if (!p)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_blob64(st, i, n ? p : "", n, SQLITE_STATIC);
}

static int bind_text(sqlite3_stmt *st, int i, const char *t)
{
    return sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
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

static bool col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
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

static int pragma_int(struct sqlite_store *s, const char *q, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, q, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return map_rc(s, rc, q);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? CASENET_OK : map_rc(s, rc, q);
}

/* Runs the steps that take the database from its user_version to target. */
static int migrate(struct sqlite_store *s, int64_t target)
{
    int64_t version = 0;
    int rc = pragma_int(s, "PRAGMA user_version", &version);
    if (rc != CASENET_OK)
        return rc;
    if (version > SCHEMA_VERSION) {
        log_event(LOG_ERROR, "store_schema_newer", "found", log_u64((uint64_t)version), "supported",
                  log_u64(SCHEMA_VERSION), "msg", "upgrade casenetd or restore a backup", NULL);
        return CASENET_EVERSION;
    }
    for (int64_t v = version; v < target; v++) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %lld", (long long)(v + 1));
        if ((rc = exec(s, "BEGIN IMMEDIATE", "migrate")) != CASENET_OK)
            return rc;
        if ((rc = exec(s, migrations[v], "migrate")) != CASENET_OK ||
            (rc = exec(s, set, "migrate")) != CASENET_OK ||
            (rc = exec(s, "COMMIT", "migrate")) != CASENET_OK) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        log_event(LOG_INFO, "store_migrated", "schema_version", log_u64((uint64_t)(v + 1)), NULL);
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
        rc = migrate(s, target);
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
    int rc = connect_at(s, data_dir, SCHEMA_VERSION);
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
    int rc = version >= 0 && version <= SCHEMA_VERSION ? connect_at(s, data_dir, version)
                                                       : CASENET_EINVAL;
    sq_close(&s->base);
    return rc;
}

const char *sq_migration_sql(size_t step)
{
    return step < (size_t)SCHEMA_VERSION ? migrations[step] : NULL;
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
    bind_blob(st, 1, m->message_id, sizeof m->message_id);
    bind_text(st, 2, m->sender);
    sqlite3_bind_int(st, 3, m->kind);
    sqlite3_bind_int(st, 4, m->urgency);
    sqlite3_bind_int(st, 5, m->msg_status);
    sqlite3_bind_int64(st, 6, m->created_at_ms);
    sqlite3_bind_int64(st, 7, m->expires_at_ms);
    sqlite3_bind_int64(st, 8, m->received_at_ms);
    bind_blob(st, 9, m->has_in_reply_to ? m->in_reply_to : NULL, sizeof m->in_reply_to);
    bind_blob(st, 10, m->has_case_ref ? m->case_ref : NULL, sizeof m->case_ref);
    bind_blob(st, 11, m->envelope_hash, sizeof m->envelope_hash);
    sqlite3_bind_int64(st, 12, m->size);
    sqlite3_bind_int64(st, 13, (sqlite3_int64)m->audit_index);
    bind_blob(st, 14, m->envelope.data, m->envelope.len);
    bind_blob(st, 15, m->receipt.data, m->receipt.len);
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
    bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES);
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
        !col_text(st, 1, m->sender, sizeof m->sender) ||
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

/* ------------------------------------------------------------ inbox */

static int read_inbox_row(sqlite3_stmt *st, struct store_inbox_row *r)
{
    memset(r, 0, sizeof *r);
    r->seq = (uint64_t)sqlite3_column_int64(st, 0);
    if (!col_text(st, 1, r->recipient, sizeof r->recipient) ||
        !sq_col_fixed(st, 2, r->message_id, sizeof r->message_id) ||
        !col_text(st, 3, r->sender, sizeof r->sender)) {
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
static int message_row(struct sqlite_store *s, const uint8_t *id, int64_t *out)
{
    sqlite3_stmt *st = stmt(s, ST_MSG_ROW);
    bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES);
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_ROW    ? CASENET_OK
              : rc == SQLITE_DONE ? CASENET_ECONFLICT
                                  : map_rc(s, rc, "message_row");
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return err;
}

/* Runs st, bound, a query of one row whose first column is a truth value
 * (EXISTS ...), into *yes; resets st. */
static int query_bool(struct sqlite_store *s, sqlite3_stmt *st, bool *yes, const char *what)
{
    int rc = sqlite3_step(st);
    int err = CASENET_OK;
    if (rc == SQLITE_ROW)
        *yes = sqlite3_column_int(st, 0) != 0;
    else
        err = map_rc(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    sqlite3_reset(st);
    return err;
}

/* Whether row r may be inserted, linked to message row msg_row, or a
 * receipt row when msg_row is 0 (ST_INBOX_LINK_CHECK, ST_INBOX_RECEIPT_CHECK):
 * CASENET_ECONFLICT when its pair is taken or msg_row is not its message's. */
static int inbox_check(struct sqlite_store *s, const struct store_inbox_row *r, int64_t msg_row)
{
    sqlite3_stmt *st = stmt(s, msg_row ? ST_INBOX_LINK_CHECK : ST_INBOX_RECEIPT_CHECK);
    bind_text(st, 1, r->recipient);
    bind_blob(st, 2, r->message_id, sizeof r->message_id);
    if (msg_row)
        sqlite3_bind_int64(st, 3, msg_row);
    bool refused = true;
    int rc = query_bool(s, st, &refused, "inbox_check");
    return rc != CASENET_OK ? rc : refused ? CASENET_ECONFLICT : CASENET_OK;
}

static int sq_inbox_insert(struct store *b, struct store_inbox_row *r)
{
    struct sqlite_store *s = S(b);
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
    sqlite3_stmt *st = stmt(s, ST_INBOX_INSERT);
    bind_text(st, 1, r->recipient);
    bind_blob(st, 2, r->message_id, sizeof r->message_id);
    if (!receipt_row)
        sqlite3_bind_int64(st, 3, msg_row); /* else NULL (cleared) */
    bind_text(st, 4, r->sender);
    sqlite3_bind_int(st, 5, r->kind);
    sqlite3_bind_int(st, 6, r->urgency);
    sqlite3_bind_int(st, 7, r->msg_status);
    sqlite3_bind_int(st, 8, r->state);
    sqlite3_bind_int64(st, 9, r->received_at_ms);
    sqlite3_bind_int64(st, 10, r->created_at_ms);
    sqlite3_bind_int64(st, 11, r->size);
    bind_blob(st, 12, r->has_in_reply_to ? r->in_reply_to : NULL, sizeof r->in_reply_to);
    bind_blob(st, 13, r->has_case_ref ? r->case_ref : NULL, sizeof r->case_ref);
    sqlite3_bind_int(st, 14, r->receipt_status);
    bind_blob(st, 15, r->receipt.data, r->receipt.len);
    rc = run(s, st, "inbox_insert"); /* (msg, recipient) taken: CASENET_ECONFLICT */
    if (rc == CASENET_OK)
        r->seq = (uint64_t)sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int sq_inbox_get(struct store *b, const char *recipient,
                        const uint8_t id[CASENET_MESSAGE_ID_BYTES], struct store_inbox_row *out)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_INBOX_GET);
    bind_text(st, 1, recipient);
    bind_blob(st, 2, id, CASENET_MESSAGE_ID_BYTES);
    int rc = sqlite3_step(st);
    int err;
    if (rc == SQLITE_ROW) {
        struct store_inbox_row r;
        err = read_inbox_row(st, &r);
        if (err == CASENET_OK)
            *out = r;
        else
            store_inbox_row_clear(&r);
    } else {
        err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : map_rc(s, rc, "inbox_get");
    }
    sqlite3_reset(st);
    return err;
}

static int sq_inbox_receipt_row(struct store *b, const char *recipient,
                                const uint8_t id[CASENET_MESSAGE_ID_BYTES], bool *taken)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_INBOX_RECEIPT_ROW);
    bind_text(st, 1, recipient);
    bind_blob(st, 2, id, CASENET_MESSAGE_ID_BYTES);
    return query_bool(s, st, taken, "inbox_receipt_row");
}

static int sq_inbox_list(struct store *b, const char *recipient, int state, uint64_t cursor,
                         uint32_t limit, struct store_inbox_row **rows, size_t *n, bool *more)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, state ? ST_INBOX_LIST_STATE : ST_INBOX_LIST_ANY);
    struct store_inbox_row *out = NULL;
    size_t count = 0;
    int err = CASENET_ENOMEM;
    if (limit > 0) {
        out = calloc(limit, sizeof *out);
        if (!out)
            return CASENET_ENOMEM;
    }
    bind_text(st, 1, recipient);
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
        if ((err = read_inbox_row(st, &out[count])) != CASENET_OK) {
            count++;
            goto cleanup;
        }
        count++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = map_rc(s, rc, "inbox_list");
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

static int sq_inbox_set_state(struct store *b, uint64_t seq, int state, int64_t now_ms)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_INBOX_SET_STATE);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_int(st, 2, state);
    sqlite3_bind_int64(st, 3, now_ms);
    int rc = run(s, st, "inbox_set_state");
    if (rc == CASENET_OK && sqlite3_changes(s->db) == 0)
        return CASENET_ENOTFOUND;
    if (rc == CASENET_OK)
        rc = sq_lifecycle_step(b, seq, state, now_ms);
    return rc;
}

/* ------------------------------------------------------------ receipts */

static int sq_receipt_insert(struct store *b, const struct store_receipt *r)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_RECEIPT_INSERT);
    bind_blob(st, 1, r->receipt_hash, sizeof r->receipt_hash);
    bind_blob(st, 2, r->message_id, sizeof r->message_id);
    bind_text(st, 3, r->recipient);
    sqlite3_bind_int(st, 4, r->status);
    sqlite3_bind_int64(st, 5, r->received_at_ms);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)r->audit_index);
    bind_blob(st, 7, r->signed_receipt, r->signed_len);
    return run(s, st, "receipt_insert");
}

static int sq_receipt_find(struct store *b, const uint8_t hash[CASENET_HASH_BYTES],
                           uint64_t *audit_index)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_RECEIPT_FIND);
    bind_blob(st, 1, hash, CASENET_HASH_BYTES);
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

/* ------------------------------------------------------------ audit */

static int scalar_u64(struct sqlite_store *s, enum stmt which, uint64_t *out, const char *what)
{
    sqlite3_stmt *st = stmt(s, which);
    int rc = sqlite3_step(st);
    int err = CASENET_OK;
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    else
        err = map_rc(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    sqlite3_reset(st);
    return err;
}

static int sq_event_count(struct store *b, uint64_t *count)
{
    return scalar_u64(S(b), ST_AUDIT_COUNT, count, "audit_count");
}

/* A subtree is stored with the leaf that completes it: the last leaf stored
 * is the largest last of any level. */
static int sq_node_leaves(struct store *b, uint64_t *leaves)
{
    return scalar_u64(S(b), ST_NODE_LEAVES, leaves, "audit_node_leaves");
}

/* The key of perfect subtree (level, index) in audit_nodes: the last leaf it
 * covers, (index + 1) * 2^level - 1; false when that is beyond int64. */
static bool node_last(unsigned level, uint64_t index, sqlite3_int64 *last)
{
    if (level > 62 || index >= ((uint64_t)1 << (62 - level)))
        return false;
    *last = (sqlite3_int64)(((index + 1) << level) - 1);
    return true;
}

/* A node already there (a log cut short outside the broker and grown
 * again) is replaced: the tree follows the events; the old signed heads
 * keep the old roots, and verification shows the difference. */
static int sq_node_put(struct store *b, unsigned level, uint64_t index,
                       const uint8_t hash[CASENET_HASH_BYTES])
{
    struct sqlite_store *s = S(b);
    sqlite3_int64 last = 0;
    if (!node_last(level, index, &last))
        return CASENET_ETOOLARGE;
    sqlite3_stmt *st = stmt(s, ST_NODE_PUT);
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, last);
    bind_blob(st, 3, hash, CASENET_HASH_BYTES);
    return run(s, st, "audit_node_put");
}

static int sq_node_get(struct store *b, unsigned level, uint64_t index,
                       uint8_t out[CASENET_HASH_BYTES])
{
    struct sqlite_store *s = S(b);
    sqlite3_int64 last = 0;
    if (!node_last(level, index, &last))
        return CASENET_ENOTFOUND;
    sqlite3_stmt *st = stmt(s, ST_NODE_GET);
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, last);
    int rc = sqlite3_step(st);
    int err;
    if (rc == SQLITE_ROW)
        err = sq_col_fixed(st, 0, out, CASENET_HASH_BYTES) ? CASENET_OK : CASENET_EUNAVAIL;
    else
        err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : map_rc(s, rc, "audit_node_get");
    if (err == CASENET_EUNAVAIL && rc == SQLITE_ROW)
        log_event(LOG_ERROR, "store_corrupt", "table", "audit_nodes", "level", log_u64(level),
                  "idx", log_u64(index), NULL);
    sqlite3_reset(st);
    return err;
}

/* The msg_key of an event about message id mid: the stored message's
 * audit_index, or NULL (*has false) when no message has that id. */
static int audit_msg_key(struct sqlite_store *s, const uint8_t *mid, bool *has, sqlite3_int64 *key)
{
    sqlite3_stmt *st = stmt(s, ST_MSG_AUDIT_KEY);
    bind_blob(st, 1, mid, CASENET_MESSAGE_ID_BYTES);
    int rc = sqlite3_step(st);
    int err = CASENET_OK;
    *has = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *key = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        err = map_rc(s, rc, "audit_msg_key");
    sqlite3_reset(st);
    return err;
}

/* Inserts the event row and its parties. */
static int sq_event_append(struct store *b, uint64_t index, int64_t time_ms, int kind,
                           const uint8_t *mid, const uint8_t *case_ref, const char *const *parties,
                           size_t n_parties, const uint8_t *bytes, size_t len, bool *wrote)
{
    struct sqlite_store *s = S(b);
    bool has_key = false;
    sqlite3_int64 key = 0;
    int rc = mid ? audit_msg_key(s, mid, &has_key, &key) : CASENET_OK;
    if (rc != CASENET_OK)
        return rc;
    sqlite3_stmt *st = stmt(s, ST_AUDIT_INSERT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    sqlite3_bind_int64(st, 2, time_ms);
    sqlite3_bind_int(st, 3, kind);
    bind_blob(st, 4, bytes, len);
    bind_blob(st, 5, mid, CASENET_MESSAGE_ID_BYTES);
    bind_blob(st, 6, case_ref, CASENET_CASE_REF_BYTES);
    if (has_key)
        sqlite3_bind_int64(st, 7, key);
    rc = run(s, st, "audit_append");
    if (rc != CASENET_OK)
        return rc; /* a statement fails whole: nothing written */
    *wrote = true;
    for (size_t i = 0; i < n_parties; i++) {
        if (!parties[i] || !*parties[i])
            continue;
        st = stmt(s, ST_AUDIT_PARTY);
        bind_text(st, 1, parties[i]);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)index);
        if ((rc = run(s, st, "audit_party")) != CASENET_OK)
            return rc;
    }
    return CASENET_OK;
}

static int sq_event_keys_set(struct store *b, uint64_t index, const uint8_t *mid,
                             const uint8_t *case_ref)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_AUDIT_SET_KEYS);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    bind_blob(st, 2, mid, CASENET_MESSAGE_ID_BYTES);
    bind_blob(st, 3, case_ref, CASENET_CASE_REF_BYTES);
    return run(s, st, "tree_rebuild");
}

/* Copies an audit row's event (column col) into r. */
static int read_audit_row(sqlite3_stmt *st, int col, uint64_t index, struct store_audit_row *r)
{
    r->index = index;
    return sq_col_buf(st, col, &r->event);
}

/* The rest of the filters, on a candidate row of an ST_AQ_* statement. */
static bool candidate_matches(sqlite3_stmt *st, const struct store_audit_filter *f)
{
    int64_t t = sqlite3_column_int64(st, 1);
    if ((f->from_ms && t < f->from_ms) || (f->to_ms && t >= f->to_ms))
        return false;
    if (f->kind && sqlite3_column_int(st, 2) != f->kind)
        return false;
    uint8_t tmp[CASENET_MESSAGE_ID_BYTES];
    if (f->message_id && (!sq_col_fixed(st, 3, tmp, sizeof tmp) ||
                          memcmp(tmp, f->message_id, CASENET_MESSAGE_ID_BYTES) != 0))
        return false;
    if (f->case_ref && (!sq_col_fixed(st, 4, tmp, sizeof tmp) ||
                        memcmp(tmp, f->case_ref, CASENET_CASE_REF_BYTES) != 0))
        return false;
    return true;
}

static int sq_audit_visible(struct store *b, const char *member, uint64_t index, bool *visible)
{
    struct sqlite_store *s = S(b);
    if (index > INT64_MAX) {
        *visible = false;
        return CASENET_OK;
    }
    sqlite3_stmt *st = stmt(s, ST_AUDIT_VISIBLE);
    bind_text(st, 1, member);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)index);
    int rc = sqlite3_step(st);
    int err = CASENET_OK;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        *visible = rc == SQLITE_ROW;
    else
        err = map_rc(s, rc, "audit_visible");
    sqlite3_reset(st);
    return err;
}

static int sq_audit_query(struct store *b, const struct store_audit_filter *f, uint64_t cursor,
                          uint32_t limit, uint32_t max_examined, struct store_audit_row **rows,
                          size_t *n, uint64_t *next_cursor, bool *more)
{
    struct sqlite_store *s = S(b);
    enum stmt which = f->member && f->member_only ? ST_AQ_MEMBER
                      : f->message_id             ? ST_AQ_MESSAGE
                      : f->case_ref               ? ST_AQ_CASE
                      : f->member                 ? ST_AQ_MEMBER
                      : f->kind                   ? ST_AQ_KIND
                                                  : ST_AQ_ALL;
    struct store_audit_row *out = NULL;
    size_t count = 0;
    uint64_t next = cursor;
    bool extra = false;
    int err = CASENET_ENOMEM;
    if (limit > 0 && !(out = calloc(limit, sizeof *out)))
        return CASENET_ENOMEM;
    sqlite3_stmt *st = stmt(s, which);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(cursor > INT64_MAX ? INT64_MAX : cursor));
    if (which == ST_AQ_MESSAGE)
        bind_blob(st, 2, f->message_id, CASENET_MESSAGE_ID_BYTES);
    else if (which == ST_AQ_CASE)
        bind_blob(st, 2, f->case_ref, CASENET_CASE_REF_BYTES);
    else if (which == ST_AQ_MEMBER)
        bind_text(st, 2, f->member);
    else if (which == ST_AQ_KIND)
        sqlite3_bind_int(st, 2, f->kind);
    uint32_t examined = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == limit || examined == max_examined) {
            extra = true;
            break;
        }
        uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);
        examined++;
        next = idx + 1;
        if (!candidate_matches(st, f))
            continue;
        if (f->member && which != ST_AQ_MEMBER) {
            bool visible = false;
            /* Another statement: this one stays positioned. */
            if ((err = sq_audit_visible(b, f->member, idx, &visible)) != CASENET_OK)
                goto cleanup;
            if (!visible)
                continue;
        }
        if ((err = read_audit_row(st, 5, idx, &out[count])) != CASENET_OK)
            goto cleanup;
        count++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = map_rc(s, rc, "audit_query");
        goto cleanup;
    }
    *rows = count ? out : NULL;
    if (!count)
        free(out);
    *n = count;
    *next_cursor = next;
    *more = extra;
    out = NULL;
    count = 0;
    err = CASENET_OK;
cleanup:
    store_audit_rows_free(out, count);
    sqlite3_reset(st);
    return err;
}

static int sq_audit_range(struct store *b, uint64_t from, uint32_t limit,
                          struct store_audit_row **rows, size_t *n)
{
    struct sqlite_store *s = S(b);
    struct store_audit_row *out = NULL;
    size_t count = 0;
    int err = CASENET_ENOMEM;
    if (limit > 0 && !(out = calloc(limit, sizeof *out)))
        return CASENET_ENOMEM;
    sqlite3_stmt *st = stmt(s, ST_AUDIT_RANGE);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(from > INT64_MAX ? INT64_MAX : from));
    sqlite3_bind_int64(st, 2, limit);
    int rc = SQLITE_DONE;
    while (count < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((err = read_audit_row(st, 1, (uint64_t)sqlite3_column_int64(st, 0), &out[count])) !=
            CASENET_OK)
            goto cleanup;
        count++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = map_rc(s, rc, "audit_range");
        goto cleanup;
    }
    *rows = count ? out : NULL;
    if (!count)
        free(out);
    *n = count;
    out = NULL;
    count = 0;
    err = CASENET_OK;
cleanup:
    store_audit_rows_free(out, count);
    sqlite3_reset(st);
    return err;
}

/* ------------------------------------------------------------ tree heads */

static int read_head(sqlite3_stmt *st, struct store_head *h)
{
    memset(h, 0, sizeof *h);
    h->size = (uint64_t)sqlite3_column_int64(st, 0);
    h->time_ms = sqlite3_column_int64(st, 1);
    if (!sq_col_fixed(st, 2, h->root, sizeof h->root)) {
        log_event(LOG_ERROR, "store_corrupt", "table", "tree_heads", "size", log_u64(h->size),
                  NULL);
        return CASENET_EUNAVAIL;
    }
    return sq_col_buf(st, 3, &h->checkpoint);
}

static int sq_head_save(struct store *b, const struct store_head *h)
{
    struct sqlite_store *s = S(b);
    if (h->size > INT64_MAX)
        return CASENET_ETOOLARGE;
    sqlite3_stmt *st = stmt(s, ST_HEAD_SAVE);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)h->size);
    sqlite3_bind_int64(st, 2, h->time_ms);
    bind_blob(st, 3, h->root, sizeof h->root);
    bind_blob(st, 4, h->checkpoint.data, h->checkpoint.len);
    return run(s, st, "head_save");
}

/* Runs a head statement expected to return at most one row. */
static int one_head(struct sqlite_store *s, sqlite3_stmt *st, struct store_head *out,
                    const char *what)
{
    int rc = sqlite3_step(st);
    int err;
    if (rc == SQLITE_ROW) {
        struct store_head h;
        err = read_head(st, &h);
        if (err == CASENET_OK)
            *out = h;
        else
            store_head_clear(&h);
    } else {
        err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : map_rc(s, rc, what);
    }
    sqlite3_reset(st);
    return err;
}

static int sq_head_get(struct store *b, uint64_t size, struct store_head *out)
{
    struct sqlite_store *s = S(b);
    if (size > INT64_MAX)
        return CASENET_ENOTFOUND;
    sqlite3_stmt *st = stmt(s, ST_HEAD_GET);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
    return one_head(s, st, out, "head_get");
}

static int sq_head_latest(struct store *b, struct store_head *out)
{
    struct sqlite_store *s = S(b);
    return one_head(s, stmt(s, ST_HEAD_LATEST), out, "head_latest");
}

static int sq_head_list(struct store *b, uint64_t after, uint64_t upto, uint32_t limit,
                        struct store_head **heads, size_t *n)
{
    struct sqlite_store *s = S(b);
    struct store_head *out = NULL;
    size_t count = 0;
    int err = CASENET_ENOMEM;
    if (limit > 0 && !(out = calloc(limit, sizeof *out)))
        return CASENET_ENOMEM;
    sqlite3_stmt *st = stmt(s, ST_HEAD_LIST);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(after > INT64_MAX ? INT64_MAX : after));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(upto > INT64_MAX ? INT64_MAX : upto));
    sqlite3_bind_int64(st, 3, limit);
    int rc = SQLITE_DONE;
    while (count < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((err = read_head(st, &out[count])) != CASENET_OK) {
            count++;
            goto cleanup;
        }
        count++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = map_rc(s, rc, "head_list");
        goto cleanup;
    }
    *heads = count ? out : NULL;
    if (!count)
        free(out);
    *n = count;
    out = NULL;
    count = 0;
    err = CASENET_OK;
cleanup:
    store_heads_free(out, count);
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
    bind_blob(st, 2, bytes, len);
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

/* ------------------------------------------------------------ limits */

/* Reads up to two non-negative counts of a one-row statement (no row: 0). */
static int read_counts(struct sqlite_store *s, sqlite3_stmt *st, const char *what, uint64_t *a,
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
        err = map_rc(s, rc, what);
    }
    sqlite3_reset(st);
    return err;
}

static int sq_inbox_backlog(struct store *b, const char *recipient, const char *sender,
                            uint64_t *queued, uint64_t *from_sender)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_INBOX_BACKLOG);
    bind_text(st, 1, recipient);
    bind_text(st, 2, sender);
    return read_counts(s, st, "inbox_backlog", queued, from_sender);
}

static int sq_member_bytes(struct store *b, const char *member, uint64_t *bytes)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_MEMBER_BYTES);
    bind_text(st, 1, member);
    return read_counts(s, st, "member_bytes", bytes, NULL);
}

static int sq_member_bytes_add(struct store *b, const char *member, uint64_t bytes)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_MEMBER_BYTES_ADD);
    bind_text(st, 1, member);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)bytes);
    return run(s, st, "member_bytes_add");
}

static int sq_inbox_fetch_mark(struct store *b, uint64_t seq, int state, bool *first)
{
    struct sqlite_store *s = S(b);
    sqlite3_stmt *st = stmt(s, ST_INBOX_FETCH_MARK);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_int(st, 2, state);
    int rc = run(s, st, "inbox_fetch_mark");
    *first = rc == CASENET_OK && sqlite3_changes(s->db) > 0;
    return rc;
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

static const struct store_inbox_ops sq_inbox = {
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

static const struct store_deadline_ops sq_deadline = {
    .deadline_arm = sq_deadline_arm,
    .deadline_due = sq_deadline_due,
    .deadline_settle = sq_deadline_settle,
    .deadline_list = sq_deadline_list,
    .overdue_list = sq_overdue_list,
};

static const struct store_audit_ops sq_audit = {
    .event_count = sq_event_count,
    .event_append = sq_event_append,
    .event_keys_set = sq_event_keys_set,
    .node_put = sq_node_put,
    .node_get = sq_node_get,
    .node_leaves = sq_node_leaves,
    .audit_query = sq_audit_query,
    .audit_range = sq_audit_range,
    .audit_visible = sq_audit_visible,
    .head_save = sq_head_save,
    .head_get = sq_head_get,
    .head_latest = sq_head_latest,
    .head_list = sq_head_list,
};

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .admin = &sq_admin,
    .message = &sq_message,
    .inbox = &sq_inbox,
    .deadline = &sq_deadline,
    .audit = &sq_audit,
};

/* ------------------------------------------------------------ companions */

sqlite3 *sq_db(struct store *b)
{
    return S(b)->db;
}

int sq_map_rc(struct store *b, int rc, const char *what)
{
    return map_rc(S(b), rc, what);
}

int sq_read_inbox_row(sqlite3_stmt *st, struct store_inbox_row *r)
{
    return read_inbox_row(st, r);
}

struct sq_lifecycle **sq_lifecycle_slot(struct store *b)
{
    return &S(b)->lc;
}

struct sq_wal *sq_wal_state(struct store *b)
{
    return &S(b)->wal;
}
