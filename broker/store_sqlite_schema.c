/*
 * store_sqlite_schema.c - the SQLite store's schema: forward migrations,
 * one step per schema version, run at open (store_sqlite.c).
 */
#include "store.h"

#include "log.h"
#include "store_sqlite_impl.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
     * keys and subtrees when the store is next opened (store_audit.c). */
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
    /* 7 -> 8: two B-trees fewer in every Submit's commit. Measured at
     * schema 7 (casenet-bench, 2 KB messages, one recipient, 24 members;
     * the WAL's frames mapped to B-trees with dbstat): at one in flight a
     * Submit's commit wrote ~19 pages of 8 KiB, about one in each B-tree
     * it touches: messages (1.4) with its message_id and sender indexes;
     * inbox with inbox_msg_recipient, inbox_recipient_state_seq and
     * sqlite_sequence; inbox_pair_backlog; member_bytes; deadlines and
     * deadlines_pending (2: the two kinds fall due at different times);
     * audit with audit_kind and audit_msg_key; audit_parties (2: one per
     * party); audit_nodes (1.3); page 1 (0.4). At 256 in flight a commit
     * (~100 messages) wrote 67 to 150 pages as the store grew to 20,000
     * messages; per message 0.35 pages of messages (the envelope), 0.22 of
     * the random message_id index, and one tail page per member in
     * audit_parties (0.19), inbox_recipient_state_seq (0.17) and
     * messages_sender (0.10), under 0.05 in each other B-tree. Two of the
     * pages every commit writes go (at one in flight 19.4 -> 17.2):
     * - audit_kind, which served only AuditQuery by kind alone, a query the
     *   contract already pages by max_examined: it now reads the log in
     *   index order (store_sqlite_audit.c), the pages a call examines.
     * - sqlite_sequence, written by every inbox insert for AUTOINCREMENT.
     *   Inbox rows are never deleted (and a rolled-back insert rolls its
     *   sqlite_sequence row back too), so max(seq) + 1, a plain rowid's
     *   choice, is the seq AUTOINCREMENT gave: ListInbox cursors keep
     *   increasing. A purge that deletes inbox rows must keep the row of
     *   the highest seq. The table's records do not change (AUTOINCREMENT
     *   lives in sqlite_sequence, not in them), only its SQL text: edited
     *   in place as SQLite documents for changes that leave the stored
     *   format alone (lang_altertable.html §7, there for constraints and
     *   defaults), the schema reloaded by RESET, its cookie bumped by the
     *   DROP INDEX that follows. O(1) whatever the store holds: a store of
     *   a million messages migrated in 0.2 s. */
    "PRAGMA writable_schema = ON;"
    "UPDATE sqlite_schema SET sql = replace(sql, ' AUTOINCREMENT', '')"
    " WHERE type = 'table' AND name = 'inbox';"
    "PRAGMA writable_schema = RESET;"
    "DELETE FROM sqlite_sequence WHERE name = 'inbox';"
    "DROP INDEX audit_kind;",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == SQ_SCHEMA_VERSION,
               "SQ_SCHEMA_VERSION counts the migrations");

static int pragma_int(struct store *s, const char *q, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(sq_db(s), q, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_map_rc(s, rc, q);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? CASENET_OK : sq_map_rc(s, rc, q);
}

/* Runs the steps that take the database from its user_version to target. */
int sq_migrate(struct store *s, int64_t target)
{
    int64_t version = 0;
    int rc = pragma_int(s, "PRAGMA user_version", &version);
    if (rc != CASENET_OK)
        return rc;
    if (version > SQ_SCHEMA_VERSION) {
        log_event(LOG_ERROR, "store_schema_newer", "found", log_u64((uint64_t)version), "supported",
                  log_u64(SQ_SCHEMA_VERSION), "msg", "upgrade casenetd or restore a backup", NULL);
        return CASENET_EVERSION;
    }
    for (int64_t v = version; v < target; v++) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %lld", (long long)(v + 1));
        if ((rc = sq_exec(s, "BEGIN IMMEDIATE", "migrate")) != CASENET_OK)
            return rc;
        if ((rc = sq_exec(s, migrations[v], "migrate")) != CASENET_OK ||
            (rc = sq_exec(s, set, "migrate")) != CASENET_OK ||
            (rc = sq_exec(s, "COMMIT", "migrate")) != CASENET_OK) {
            sqlite3_exec(sq_db(s), "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        log_event(LOG_INFO, "store_migrated", "schema_version", log_u64((uint64_t)(v + 1)), NULL);
    }
    return CASENET_OK;
}

const char *sq_migration_sql(size_t step)
{
    return step < (size_t)SQ_SCHEMA_VERSION ? migrations[step] : NULL;
}
