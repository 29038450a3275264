/*
 * store_pg_schema.c - the PostgreSQL store's schema and statements: forward
 * migrations recorded in the table casenet_schema (one transaction per
 * step), and the SQL of every statement store_pg.c prepares. The schema
 * holds what the SQLite backend's holds (store_sqlite_schema.c), in
 * PostgreSQL's types: BIGINT for times, ids and counts, bytea for bytes.
 */
#include "store.h"

#include "store_pg_impl.h"

#include <stddef.h>

/* Forward migrations: step i takes version i to i + 1. Never edit a step
 * once released; append a new one. */
static const char *const migrations[] = {
    /* 0 -> 1: messages, inboxes, receipts, deadlines, steps, the audit log
     * (events, parties, perfect subtrees keyed by their last leaf, signed
     * heads), directories, and the counts behind the member limits. */
    "CREATE TABLE messages ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " message_id bytea NOT NULL UNIQUE CHECK (length(message_id) = 16),"
    " sender TEXT NOT NULL,"
    " kind BIGINT NOT NULL, urgency BIGINT NOT NULL, msg_status BIGINT NOT NULL,"
    " created_at_ms BIGINT NOT NULL, expires_at_ms BIGINT NOT NULL,"
    " received_at_ms BIGINT NOT NULL,"
    " in_reply_to bytea, case_ref bytea,"
    " envelope_hash bytea NOT NULL CHECK (length(envelope_hash) = 32),"
    " size BIGINT NOT NULL,"
    " audit_index BIGINT NOT NULL,"
    " envelope bytea," /* the ciphertext envelope; NULL once purged */
    " receipt bytea NOT NULL);"
    "CREATE INDEX messages_sender ON messages(sender, id);"
    "CREATE TABLE inbox ("
    " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " recipient TEXT NOT NULL,"
    " message_id bytea NOT NULL,"
    " msg BIGINT REFERENCES messages(id)," /* NULL for receipt rows */
    " sender TEXT NOT NULL,"
    " kind BIGINT NOT NULL, urgency BIGINT NOT NULL, msg_status BIGINT NOT NULL,"
    " state BIGINT NOT NULL,"
    " received_at_ms BIGINT NOT NULL, created_at_ms BIGINT NOT NULL,"
    " updated_at_ms BIGINT NOT NULL,"
    " size BIGINT NOT NULL,"
    " in_reply_to bytea, case_ref bytea,"
    " receipt_status BIGINT NOT NULL DEFAULT 0,"
    " receipt bytea,"
    " fetch_state BIGINT NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX inbox_msg_recipient ON inbox(msg, recipient);"
    "CREATE UNIQUE INDEX inbox_unlinked ON inbox(recipient, message_id) WHERE msg IS NULL;"
    "CREATE INDEX inbox_recipient_seq ON inbox(recipient, seq);"
    "CREATE INDEX inbox_recipient_state_seq ON inbox(recipient, state, seq);"
    "CREATE TABLE receipts ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " receipt_hash bytea NOT NULL UNIQUE,"
    " message_id bytea NOT NULL REFERENCES messages(message_id),"
    " recipient TEXT NOT NULL,"
    " status BIGINT NOT NULL,"
    " received_at_ms BIGINT NOT NULL,"
    " audit_index BIGINT NOT NULL,"
    " signed_receipt bytea NOT NULL);"
    "CREATE INDEX receipts_message ON receipts(message_id, recipient, id);"
    "CREATE TABLE deadlines ("
    " seq BIGINT NOT NULL REFERENCES inbox(seq),"
    " kind BIGINT NOT NULL CHECK (kind BETWEEN 0 AND 7),"
    " due_ms BIGINT NOT NULL,"
    " state BIGINT NOT NULL DEFAULT " PQ_DL_PENDING ","
    " settled_at_ms BIGINT NOT NULL DEFAULT 0,"
    " notice_id bytea,"
    " PRIMARY KEY (seq, kind));"
    "CREATE INDEX deadlines_pending ON deadlines(due_ms) WHERE state = " PQ_DL_PENDING ";"
    "CREATE INDEX deadlines_breached ON deadlines(seq, kind) WHERE state = " PQ_DL_BREACHED ";"
    "CREATE TABLE steps ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " seq BIGINT NOT NULL REFERENCES inbox(seq),"
    " state BIGINT NOT NULL,"
    " at_ms BIGINT NOT NULL);"
    "CREATE INDEX steps_seq ON steps(seq, id);"
    /* idx: the log position, 0-based, dense; event: the exact serialised
     * AuditEvent hashed into the Merkle tree. */
    "CREATE TABLE audit ("
    " idx BIGINT PRIMARY KEY,"
    " time_ms BIGINT NOT NULL,"
    " kind BIGINT NOT NULL,"
    " event bytea NOT NULL,"
    " message_id bytea,"
    " case_ref bytea);"
    "CREATE INDEX audit_message ON audit(message_id, idx) WHERE message_id IS NOT NULL;"
    "CREATE INDEX audit_case_ref ON audit(case_ref, idx) WHERE case_ref IS NOT NULL;"
    "CREATE INDEX audit_kind ON audit(kind, idx);"
    "CREATE TABLE audit_parties ("
    " member TEXT NOT NULL,"
    " idx BIGINT NOT NULL REFERENCES audit(idx),"
    " PRIMARY KEY (member, idx));"
    /* Perfect subtree (level, idx) keyed by the last leaf it covers,
     * (idx + 1) * 2^level - 1. */
    "CREATE TABLE audit_nodes ("
    " last BIGINT NOT NULL,"
    " level BIGINT NOT NULL,"
    " hash bytea NOT NULL CHECK (length(hash) = 32),"
    " PRIMARY KEY (last, level));"
    "CREATE TABLE tree_heads ("
    " size BIGINT PRIMARY KEY,"
    " time_ms BIGINT NOT NULL,"
    " root bytea NOT NULL CHECK (length(root) = 32),"
    " checkpoint bytea NOT NULL);"
    "CREATE TABLE directories ("
    " version BIGINT PRIMARY KEY,"
    " signed bytea NOT NULL,"
    " stored_at_ms BIGINT NOT NULL);"
    /* QUEUED message rows per (recipient, sender) (forwarded receipts are
     * not counted), kept by a trigger; the envelope bytes each member
     * stored, added by the broker, taken away when ciphertext goes. */
    "CREATE TABLE inbox_pair_backlog ("
    " recipient TEXT NOT NULL,"
    " sender TEXT NOT NULL,"
    " queued BIGINT NOT NULL,"
    " PRIMARY KEY (recipient, sender));"
    "CREATE FUNCTION inbox_pair_backlog_keep() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    " IF TG_OP <> 'INSERT' AND OLD.state = " PQ_QUEUED " AND OLD.kind <> " PQ_KIND_RECEIPT
    " THEN UPDATE inbox_pair_backlog SET queued = queued - 1"
    " WHERE recipient = OLD.recipient AND sender = OLD.sender; END IF;"
    " IF TG_OP <> 'DELETE' AND NEW.state = " PQ_QUEUED " AND NEW.kind <> " PQ_KIND_RECEIPT
    " THEN INSERT INTO inbox_pair_backlog (recipient, sender, queued)"
    " VALUES (NEW.recipient, NEW.sender, 1) ON CONFLICT (recipient, sender)"
    " DO UPDATE SET queued = inbox_pair_backlog.queued + 1; END IF;"
    " RETURN NULL; END $$;"
    "CREATE TRIGGER inbox_pair_backlog AFTER INSERT OR DELETE OR UPDATE OF state ON inbox"
    " FOR EACH ROW EXECUTE FUNCTION inbox_pair_backlog_keep();"
    "CREATE TABLE member_bytes ("
    " member TEXT PRIMARY KEY,"
    " bytes BIGINT NOT NULL);"
    "CREATE FUNCTION member_bytes_purge() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    " IF OLD.envelope IS NOT NULL AND (TG_OP = 'DELETE' OR NEW.envelope IS NULL) THEN"
    " UPDATE member_bytes SET bytes = bytes - OLD.size WHERE member = OLD.sender; END IF;"
    " RETURN NULL; END $$;"
    "CREATE TRIGGER member_bytes_purge AFTER DELETE OR UPDATE OF envelope ON messages"
    " FOR EACH ROW EXECUTE FUNCTION member_bytes_purge();",
    /* 1 -> 2: the active broker's lease (store_pg_lease.c): one row, the
     * holder, its fencing token (increasing with every takeover), its
     * session's backend pid and when it expires (server time). */
    "CREATE TABLE broker_lease ("
    " one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),"
    " holder TEXT NOT NULL,"
    " token BIGINT NOT NULL,"
    " pid BIGINT NOT NULL,"
    " expires_at TIMESTAMPTZ NOT NULL);",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == PQ_SCHEMA_VERSION,
               "PQ_SCHEMA_VERSION counts the migrations");

/* Columns of an audit query's candidate rows (store_pg_audit.c): the
 * event's, then whether member $3 is a party to it. */
#define AQ_COLS                                                                                    \
    "a.idx, a.time_ms, a.kind, a.message_id, a.case_ref, a.event,"                                 \
    " EXISTS (SELECT 1 FROM audit_parties p WHERE p.member = $3 AND p.idx = a.idx)"
#define HEAD_COLS "size, time_ms, root, checkpoint"
/* An inbox row ($3 its message's row, NULL for a receipt row) unless a
 * receipt row holds (recipient, message_id); INBOX_RETURNING ends it. */
#define INBOX_INSERT                                                                               \
    "INSERT INTO inbox (recipient, message_id, msg, sender, kind, urgency, msg_status, state,"     \
    " received_at_ms, created_at_ms, updated_at_ms, size, in_reply_to, case_ref,"                  \
    " receipt_status, receipt)"                                                                    \
    " SELECT $1::text, $2::bytea, $3::bigint, $4::text, $5::bigint, $6::bigint, $7::bigint,"       \
    " $8::bigint, $9::bigint, $10::bigint, $9::bigint, $11::bigint, $12::bytea, $13::bytea,"       \
    " $14::bigint, $15::bytea WHERE NOT EXISTS (SELECT 1 FROM inbox WHERE msg IS NULL"             \
    " AND recipient = $1 AND message_id = $2)"
#define INBOX_RETURNING " ON CONFLICT DO NOTHING RETURNING seq"

static const char *const sql[PQ_STMT_COUNT] = {
    [PQ_MSG_INSERT] = "INSERT INTO messages (message_id, sender, kind, urgency, msg_status,"
                      " created_at_ms, expires_at_ms, received_at_ms, in_reply_to, case_ref,"
                      " envelope_hash, size, audit_index, envelope, receipt)"
                      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                      " ON CONFLICT DO NOTHING RETURNING id",
    /* The statements a batch sends without waiting (store_pg_pipe.c) raise
     * an error where their twins would touch no row, so that the COMMIT
     * sent after them is skipped. PQ_MSG_INSERT with the row's id ($16)
     * reserved by PQ_RESERVE: */
    [PQ_MSG_INSERT_ID] = "INSERT INTO messages (message_id, sender, kind, urgency, msg_status,"
                         " created_at_ms, expires_at_ms, received_at_ms, in_reply_to, case_ref,"
                         " envelope_hash, size, audit_index, envelope, receipt, id)"
                         " OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                         " $10, $11, $12, $13, $14, $15, $16)",
    /* $1 numbers for each: message rows, inbox rows. */
    [PQ_RESERVE] = "SELECT nextval(pg_get_serial_sequence('messages', 'id')),"
                   " nextval(pg_get_serial_sequence('inbox', 'seq'))"
                   " FROM generate_series(1, $1::integer)",
    /* A linked row with its seq ($16) reserved by PQ_RESERVE, of a
     * message this batch inserted, for a pair no receipt row holds. */
    [PQ_INBOX_INSERT_SEQ] =
        "INSERT INTO inbox (recipient, message_id, msg, sender, kind, urgency, msg_status, state,"
        " received_at_ms, created_at_ms, updated_at_ms, size, in_reply_to, case_ref,"
        " receipt_status, receipt, seq) OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6,"
        " $7, $8, $9, $10, $9, $11, $12, $13, $14, $15, $16)",
    /* A deadline on a row this batch inserted, not armed yet. */
    [PQ_DL_ARM_NEW] = "INSERT INTO deadlines (seq, kind, due_ms) VALUES ($1, $2, $3)",
    [PQ_MSG_GET] = "SELECT " PQ_MESSAGE_COLS ", CASE WHEN $2::boolean THEN envelope END"
                   " FROM messages WHERE message_id = $1",
    /* The last 64 bytes of the receipt, in place of its placeholder. */
    [PQ_MSG_SIG] = "UPDATE messages SET receipt = overlay(receipt PLACING $2::bytea"
                   " FROM length(receipt) - 63) WHERE id = $1 AND length(receipt) >= 64",
    /* The same for many rows in one statement: $1 their ids (bigint[]),
     * $2 their signatures end to end, 64 bytes each, in the same order. */
    [PQ_MSG_SIGS] = "UPDATE messages m SET receipt = overlay(m.receipt PLACING"
                    " substring($2::bytea FROM (v.i::integer - 1) * 64 + 1 FOR 64)"
                    " FROM length(m.receipt) - 63)"
                    " FROM unnest($1::bigint[]) WITH ORDINALITY AS v(id, i)"
                    " WHERE m.id = v.id AND length(m.receipt) >= 64",
    [PQ_MSG_ROW] = "SELECT id FROM messages WHERE message_id = $1",
    [PQ_RECEIPT_INSERT] =
        "INSERT INTO receipts (receipt_hash, message_id, recipient, status,"
        " received_at_ms, audit_index, signed_receipt)"
        " SELECT $1::bytea, $2::bytea, $3::text, $4::bigint, $5::bigint, $6::bigint,"
        " $7::bytea"
        " WHERE EXISTS (SELECT 1 FROM messages WHERE message_id = $2)"
        " ON CONFLICT DO NOTHING",
    [PQ_RECEIPT_FIND] = "SELECT audit_index FROM receipts WHERE receipt_hash = $1",
    [PQ_RECEIPTS] = "SELECT status, received_at_ms, signed_receipt FROM receipts"
                    " WHERE message_id = $1 AND recipient = $2 ORDER BY id",
    [PQ_SENT] = "SELECT " PQ_MESSAGE_COLS " FROM messages WHERE sender = $1 AND id > $2"
                " ORDER BY id LIMIT $3",
    [PQ_SENT_ROWS] = "SELECT " PQ_INBOX_COLS ", msg FROM inbox WHERE msg IN"
                     " (SELECT id FROM messages WHERE sender = $1 AND id > $2 AND id <= $3)"
                     " ORDER BY msg, seq",
    [PQ_SENT_DEADLINES] = "SELECT " PQ_DEADLINE_COLS(
        "") " FROM deadlines WHERE seq IN"
            " (SELECT seq FROM inbox WHERE msg IN (SELECT id FROM messages"
            " WHERE sender = $1 AND id > $2 AND id <= $3))"
            " ORDER BY seq, kind",
    [PQ_MEMBER_BYTES] = "SELECT bytes FROM member_bytes WHERE member = $1",
    [PQ_MEMBER_BYTES_ADD] = "INSERT INTO member_bytes (member, bytes) VALUES ($1, $2)"
                            " ON CONFLICT (member) DO UPDATE SET bytes = member_bytes.bytes + $2",
    [PQ_DIR_SAVE] = "INSERT INTO directories (version, signed, stored_at_ms) VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING",
    [PQ_DIR_LATEST] = "SELECT version, signed FROM directories ORDER BY version DESC LIMIT 1",
    /* Inbox rows: a message row is linked to its message's row, unique by
     * (msg, recipient); a receipt row has no message, unique by (recipient,
     * message_id) among such rows. Each insert checks in the same statement
     * that (recipient, message_id) stays unique across both kinds (and that
     * row $3 is message $2's): no row inserted answers CONFLICT. */
    [PQ_INBOX_INSERT_LINKED] = INBOX_INSERT " AND EXISTS (SELECT 1 FROM messages"
                                            " WHERE id = $3 AND message_id = $2)" INBOX_RETURNING,
    [PQ_INBOX_INSERT_RECEIPT] = INBOX_INSERT " AND NOT EXISTS (SELECT 1 FROM inbox"
                                             " WHERE recipient = $1 AND msg = (SELECT id FROM"
                                             " messages WHERE message_id = $2))" INBOX_RETURNING,
    [PQ_INBOX_GET] = "(SELECT " PQ_INBOX_COLS " FROM inbox"
                     " WHERE msg = (SELECT id FROM messages WHERE message_id = $2)"
                     " AND recipient = $1)"
                     " UNION ALL (SELECT " PQ_INBOX_COLS " FROM inbox"
                     " WHERE msg IS NULL AND recipient = $1 AND message_id = $2) LIMIT 1",
    [PQ_INBOX_RECEIPT_ROW] = "SELECT EXISTS (SELECT 1 FROM inbox WHERE msg IS NULL"
                             " AND recipient = $1 AND message_id = $2)",
    [PQ_INBOX_LIST_ANY] = "SELECT " PQ_INBOX_COLS " FROM inbox WHERE recipient = $1 AND seq > $2"
                          " ORDER BY seq LIMIT $3",
    [PQ_INBOX_LIST_STATE] = "SELECT " PQ_INBOX_COLS " FROM inbox"
                            " WHERE recipient = $1 AND seq > $2 AND state = $4"
                            " ORDER BY seq LIMIT $3",
    [PQ_INBOX_SET_STATE] = "UPDATE inbox SET state = $2, updated_at_ms = $3 WHERE seq = $1",
    [PQ_INBOX_SEQ] = "SELECT " PQ_INBOX_COLS " FROM inbox WHERE seq = $1",
    [PQ_INBOX_MSG] = "SELECT " PQ_INBOX_COLS " FROM inbox"
                     " WHERE msg = (SELECT id FROM messages WHERE message_id = $1) ORDER BY seq",
    [PQ_STEP_INSERT] = "INSERT INTO steps (seq, state, at_ms) VALUES ($1, $2, $3)",
    [PQ_STEPS] = "SELECT state, at_ms FROM steps WHERE seq = $1 ORDER BY id",
    [PQ_INBOX_BACKLOG] = "SELECT coalesce(sum(queued), 0)::bigint,"
                         " coalesce(sum(CASE WHEN sender = $2 THEN queued END), 0)::bigint"
                         " FROM inbox_pair_backlog WHERE recipient = $1",
    [PQ_INBOX_FETCH_MARK] =
        "UPDATE inbox SET fetch_state = $2 WHERE seq = $1 AND fetch_state <> $2",
    [PQ_DL_ARM] =
        "INSERT INTO deadlines (seq, kind, due_ms) SELECT $1::bigint, $2::bigint, $3::bigint"
        " WHERE EXISTS (SELECT 1 FROM inbox WHERE seq = $1) ON CONFLICT DO NOTHING",
    [PQ_DL_DUE] = "SELECT " PQ_DEADLINE_COLS("") " FROM deadlines"
                                                 " WHERE state = " PQ_DL_PENDING
                                                 " AND due_ms <= $1 ORDER BY due_ms LIMIT $2",
    [PQ_DL_SETTLE] = "UPDATE deadlines SET state = $3, settled_at_ms = $4, notice_id = $5"
                     " WHERE seq = $1 AND kind = $2 AND state = " PQ_DL_PENDING,
    [PQ_DL_LIST] = "SELECT " PQ_DEADLINE_COLS("") " FROM deadlines WHERE seq = $1 ORDER BY kind",
    /* Breached deliver / accept deadlines whose row is still below the state
     * that meets them; the cursor is (seq, kind) after ($1, $3). */
    [PQ_OVERDUE] = "SELECT " PQ_DEADLINE_COLS(
        "d.") ", i.seq, i.recipient, i.message_id,"
              " i.sender, i.kind, i.urgency, i.msg_status, i.state, i.received_at_ms,"
              " i.created_at_ms, i.size, i.in_reply_to, i.case_ref, i.receipt_status,"
              " i.receipt FROM deadlines d JOIN inbox i ON i.seq = d.seq"
              " WHERE d.state = " PQ_DL_BREACHED " AND (d.seq, d.kind) > ($1, $3)"
              " AND ((d.kind = " PQ_DL_DELIVER " AND i.state IN (" PQ_QUEUED ", " PQ_FETCHED
              ")) OR (d.kind = " PQ_DL_ACCEPT " AND i.state IN (" PQ_QUEUED ", " PQ_FETCHED
              ", " PQ_DELIVERED ")))"
              " ORDER BY d.seq, d.kind LIMIT $2",
    [PQ_AUDIT_COUNT] = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit",
    /* An event and its parties ($7, a text[]) in one statement: both or
     * neither. It answers how many events it wrote (0: index taken). The
     * parties' key to audit is checked at the statement's end, when the
     * event row is there. */
    /* Sent without waiting (store_pg_pipe.c): an index taken raises an
     * error. */
    [PQ_AUDIT_INSERT] = "WITH e AS (INSERT INTO audit (idx, time_ms, kind, event, message_id,"
                        " case_ref) VALUES ($1, $2, $3, $4, $5, $6)"
                        " RETURNING idx), p AS (INSERT INTO audit_parties (member, idx)"
                        " SELECT DISTINCT m, e.idx FROM e, unnest($7::text[]) m WHERE m <> ''"
                        " ON CONFLICT DO NOTHING) SELECT count(*) FROM e",
    [PQ_AUDIT_SET_KEYS] = "UPDATE audit SET message_id = $2, case_ref = $3 WHERE idx = $1",
    [PQ_NODE_PUT] = "INSERT INTO audit_nodes (level, last, hash) VALUES ($1, $2, $3)"
                    " ON CONFLICT (last, level) DO UPDATE SET hash = EXCLUDED.hash",
    [PQ_NODE_GET] = "SELECT hash FROM audit_nodes WHERE level = $1 AND last = $2",
    [PQ_NODE_LEAVES] = "SELECT COALESCE(MAX(last) + 1, 0) FROM audit_nodes",
    /* Audit queries: $1 cursor, $2 rows to fetch, $3 member (for the
     * party column), $4 the driving key. */
    [PQ_AQ_ALL] = "SELECT " AQ_COLS " FROM audit a WHERE a.idx >= $1 ORDER BY a.idx LIMIT $2",
    [PQ_AQ_MESSAGE] = "SELECT " AQ_COLS " FROM audit a WHERE a.message_id = $4 AND a.idx >= $1"
                      " ORDER BY a.idx LIMIT $2",
    [PQ_AQ_CASE] = "SELECT " AQ_COLS " FROM audit a WHERE a.case_ref = $4 AND a.idx >= $1"
                   " ORDER BY a.idx LIMIT $2",
    [PQ_AQ_KIND] = "SELECT " AQ_COLS " FROM audit a WHERE a.kind = $4 AND a.idx >= $1"
                   " ORDER BY a.idx LIMIT $2",
    [PQ_AQ_MEMBER] = "SELECT " AQ_COLS " FROM audit_parties q JOIN audit a ON a.idx = q.idx"
                     " WHERE q.member = $3 AND q.idx >= $1 ORDER BY q.idx LIMIT $2",
    [PQ_AUDIT_VISIBLE] = "SELECT 1 FROM audit_parties WHERE member = $1 AND idx = $2",
    [PQ_AUDIT_RANGE] = "SELECT idx, event FROM audit WHERE idx >= $1 ORDER BY idx LIMIT $2",
    [PQ_HEAD_SAVE] = "INSERT INTO tree_heads (" HEAD_COLS ") VALUES ($1, $2, $3, $4)"
                     " ON CONFLICT DO NOTHING",
    [PQ_HEAD_GET] = "SELECT " HEAD_COLS " FROM tree_heads WHERE size = $1",
    [PQ_HEAD_LATEST] = "SELECT " HEAD_COLS " FROM tree_heads ORDER BY size DESC LIMIT 1",
    [PQ_HEAD_LIST] = "SELECT " HEAD_COLS " FROM tree_heads WHERE size > $1 AND size <= $2"
                     " ORDER BY size LIMIT $3",
};

const char *pq_sql(enum pq_stmt i)
{
    return sql[i];
}

const char *pq_migration_sql(size_t step)
{
    return step < (size_t)PQ_SCHEMA_VERSION ? migrations[step] : NULL;
}
