/*
 * store.h - the broker's durable state behind one narrow interface: messages
 * (ciphertext envelopes and their routing metadata), per-recipient inbox rows,
 * recipients' receipts, the audit log and the directories published.
 *
 * A backend is a `const struct store_ops` of five sub-tables (admin,
 * message, inbox, deadline, audit); the broker only ever calls the store_*()
 * functions below, so another backend (PostgreSQL for high availability) is
 * one new file registered in store_handle.c. The SQLite backend is store_sqlite.c.
 * The audit log's invariants (its Merkle tree follows the rows through
 * commits, rollbacks and savepoints) are kept above the backends, once, in
 * store_audit.c; docs/ARCHITECTURE.md "The store" tells how to add one.
 *
 * Transactions. The loop is the only writer. It opens one transaction per
 * batch (begin), wraps each request in a savepoint (savepoint, then release or
 * rollback_to), and commits once; a reply is sent only after commit. Every
 * operation marked "in batch" must be called between begin and commit or
 * rollback; every other operation must be called outside a transaction.
 *
 * Errors: casenet_err values. CASENET_ENOTFOUND and CASENET_ECONFLICT are
 * answers about the data; CASENET_EUNAVAIL means the store itself failed
 * (disk full, I/O error, corruption): the batch must be rolled back and every
 * request answered UNAVAILABLE. The backend logs the raw cause.
 *
 * Ownership: rows returned are owned by the caller and released with
 * store_message_clear() / store_inbox_row_clear() / store_inbox_rows_free() /
 * store_audit_rows_free() / store_head_clear() / store_heads_free().
 * Input rows are borrowed for the duration of the call.
 */
#ifndef BROKER_STORE_H
#define BROKER_STORE_H

#include "casenet.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A stored submission: what the broker may know about a message. */
/* A receipt signature to write into a stored message row. */
struct store_receipt_sig {
    int64_t rowid;      /* from message_last_rowid */
    const uint8_t *sig; /* CASENET_SIGNATURE_BYTES; borrowed */
};

struct store_message {
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    char sender[CASENET_MEMBER_ID_MAX + 1];
    int kind, urgency, msg_status; /* stored as given (proto values) */
    int64_t created_at_ms, expires_at_ms, received_at_ms;
    bool has_in_reply_to;
    uint8_t in_reply_to[CASENET_MESSAGE_ID_BYTES];
    bool has_case_ref;
    uint8_t case_ref[CASENET_CASE_REF_BYTES];
    uint8_t envelope_hash[CASENET_HASH_BYTES];
    uint32_t size;        /* envelope bytes */
    uint64_t audit_index; /* of its SUBMITTED event */
    casenet_buf envelope; /* the serialised Envelope (ciphertext); owned */
    casenet_buf receipt;  /* the serialised BrokerReceipt; owned */
    uint64_t row;         /* the store's row number (set by message_get and sent_list) */
};

/* One row of one member's inbox (a message for it, or a receipt forwarded to
 * the message's sender: kind = KIND_RECEIPT). */
struct store_inbox_row {
    uint64_t seq; /* assigned by inbox_insert, increasing, the list cursor */
    char recipient[CASENET_MEMBER_ID_MAX + 1];
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    char sender[CASENET_MEMBER_ID_MAX + 1];
    int kind, urgency, msg_status;
    int state; /* STORE_INBOX_* */
    int64_t received_at_ms, created_at_ms;
    uint32_t size;
    bool has_in_reply_to;
    uint8_t in_reply_to[CASENET_MESSAGE_ID_BYTES];
    bool has_case_ref;
    uint8_t case_ref[CASENET_CASE_REF_BYTES];
    int receipt_status;  /* proto ReceiptStatus, for STORE_KIND_RECEIPT rows */
    casenet_buf receipt; /* the SignedReceipt, for KIND_RECEIPT rows; owned */
    /* In, for inbox_insert: the row number of the stored message this
     * row is for (message_last_rowid after its message_insert), or 0 when
     * the caller does not know it (the store finds it by message_id). Out,
     * from sent_rows; 0 from every other read. */
    int64_t msg_row;
};

/* A recipient's receipt as recorded. */
struct store_receipt {
    uint8_t receipt_hash[CASENET_HASH_BYTES]; /* SHA-256 of the SignedReceipt */
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    char recipient[CASENET_MEMBER_ID_MAX + 1];
    int status; /* proto ReceiptStatus */
    int64_t received_at_ms;
    uint64_t audit_index; /* of its RECEIPT event */
    const uint8_t *signed_receipt;
    size_t signed_len;
};

/* One audit event as stored: its log index and its exact bytes. */
struct store_audit_row {
    uint64_t index;
    casenet_buf event; /* the serialised AuditEvent (the Merkle leaf); owned */
};

/* A signed tree head as stored (PROTOCOL.md §10.3). */
struct store_head {
    uint64_t size;
    int64_t time_ms;
    uint8_t root[CASENET_HASH_BYTES];
    casenet_buf checkpoint; /* the checkpoint bytes as signed; owned */
};

/* What an audit query asks for; every filter that is set must hold. */
struct store_audit_filter {
    const char *member;        /* NULL = any; else events filed under this member */
    const uint8_t *message_id; /* NULL = any; else CASENET_MESSAGE_ID_BYTES */
    const uint8_t *case_ref;   /* NULL = any; else CASENET_CASE_REF_BYTES */
    int64_t from_ms, to_ms;    /* 0 = unbounded; else from_ms <= time_ms < to_ms */
    int kind;                  /* proto AuditKind; 0 = any */
    /* With member set: walk only the events filed under member, so that
     * events it is not party to change nothing of the answer (rows, cursor,
     * more). Set for every member that is not a coordinator. */
    bool member_only;
};

/* A deadline of one inbox row: deliver, accept or expire
 * (STORE_DEADLINE_DELIVER ...), in state pending, met, breached or void
 * (STORE_DEADLINE_PENDING ...). */
struct store_deadline {
    uint64_t id;  /* the store's number for it, increasing in the order deadlines are
                   * armed: the ListOverdue cursor */
    uint64_t seq; /* the inbox row */
    int kind;
    int64_t due_ms;
    int state;
    int64_t settled_at_ms;
    bool has_notice;
    uint8_t notice_id[CASENET_MESSAGE_ID_BYTES]; /* breached: the broker's notice */
};

/* A state an inbox row entered, and when (recorded by inbox_set_state). */
struct store_step {
    int state;
    int64_t at_ms;
};

/* A recorded receipt of one recipient for one message. */
struct store_receipt_rec {
    int status; /* proto ReceiptStatus */
    int64_t received_at_ms;
    casenet_buf signed_receipt; /* owned */
};

/* A breached deadline with its row, for ListOverdue. */
struct store_overdue {
    struct store_deadline d;
    struct store_inbox_row row;
};

/* Values the store's SQL and its callers share, in the store's own names.
 * Each equals the protocol enum value it stands for (proto/casenet.proto);
 * store_map.c, above the store, asserts that at compile time, so that the
 * backends need no protocol header and their SQL is built from these. Macros,
 * not enum constants, so that SQL text can be spelled with STORE_SQL(). */
#define STORE_INBOX_ANY         0 /* a filter only: every state */
#define STORE_INBOX_QUEUED      1 /* stored, never fetched */
#define STORE_INBOX_FETCHED     2
#define STORE_INBOX_DELIVERED   3
#define STORE_INBOX_ACCEPTED    4
#define STORE_INBOX_DECLINED    5
#define STORE_INBOX_COMPLETED   6
#define STORE_INBOX_DEAD        7  /* the highest state */
#define STORE_KIND_RECEIPT      20 /* an inbox row forwarding a receipt: no message */
#define STORE_DEADLINE_DELIVER  1
#define STORE_DEADLINE_ACCEPT   2
#define STORE_DEADLINE_EXPIRE   3
#define STORE_DEADLINE_PENDING  1
#define STORE_DEADLINE_MET      2
#define STORE_DEADLINE_BREACHED 3
#define STORE_DEADLINE_VOID     4
/* A constant above as SQL text: STORE_SQL(STORE_INBOX_QUEUED) is "1". */
#define STORE_SQL(c)  STORE_SQL_(c)
#define STORE_SQL_(c) #c

struct store_ops;
struct store_log; /* the audit log's bookkeeping (store_audit.c) */

/* A backend instance; backends embed it as their first member. log is set by
 * store_open and belongs to the backend-neutral audit module: a backend never
 * touches it. */
struct store {
    const struct store_ops *ops;
    struct store_log *log;
};

/* The operations of a backend, grouped by what they store. A backend fills
 * every pointer of every table; callers use the store_*() wrappers below.
 * Where an operation is a plain row operation used by store_audit.c (the
 * event rows and subtree rows of the audit log), the log's invariants (the
 * Merkle tree follows the rows, a torn transaction commits nothing) are kept
 * there, once for every backend. */

/* Opening, closing, the transaction and the upkeep of the backend itself. */
struct store_admin_ops {
    const char *name;

    /* Opens (creating if needed) the store inside data_dir and migrates its
     * schema forward. CASENET_EUNAVAIL when it cannot, with the cause logged;
     * CASENET_EVERSION when the schema is newer than this program. */
    int (*open)(const char *data_dir, struct store **out);
    /* Closes; a transaction still open is rolled back, and a lease this
     * store still holds is handed back (see lease). Accepts NULL. */
    void (*close)(struct store *s);

    /* The batch transaction, as the backend runs it. commit failing leaves
     * nothing committed (the backend rolls back) and returns
     * CASENET_EUNAVAIL. rollback never fails visibly. The wrappers
     * store_begin() ... store_rollback() call these and keep the audit log's
     * tree in step (store_handle.c). */
    int (*begin)(struct store *s);
    int (*commit)(struct store *s);
    void (*rollback)(struct store *s);
    /* One request inside the batch (in batch): savepoint opens it; release
     * keeps its writes; rollback_to undoes them and closes the savepoint,
     * returning CASENET_EUNAVAIL (logged) when the rows could not be undone:
     * they then stay until the batch's rollback. At most STORE_SAVEPOINTS_MAX
     * deep (store_handle.c refuses deeper ones before calling the backend). */
    int (*savepoint)(struct store *s);
    int (*release)(struct store *s);
    int (*rollback_to)(struct store *s);
    /* Whether a transaction is open now: false too once the backend rolled
     * it back by itself (an I/O error, a full disk). */
    bool (*in_transaction)(struct store *s);
    /* Rows written through this store since it was opened: a counter whose
     * readings are compared, to tell whether a request wrote anything. */
    uint64_t (*changes)(struct store *s);
    /* In batch. Records a signed directory of the given version;
     * CASENET_ECONFLICT if that version is already stored. */
    int (*directory_save)(struct store *s, uint64_t version, const uint8_t *bytes, size_t len,
                          int64_t now_ms);
    /* Outside a batch. The stored directory of the highest version; out is
     * malloc'd. CASENET_ENOTFOUND when none was ever stored. */
    int (*directory_latest)(struct store *s, casenet_buf *out, uint64_t *version);
    /* Outside a transaction. Copies committed pages from the backend's
     * write-ahead log into the database, without waiting for or blocking
     * readers, when at least min_frames pages (> 0) wait to be copied
     * (UINT32_MAX: only report). *pending (may be NULL) gets the number
     * still waiting: an estimate that errs high; 0 for a backend without a
     * log. A page a reader still needs stays pending: not a failure.
     * CASENET_EUNAVAIL on an I/O error (logged): the data stays in the log.
     * The SQLite backend checkpoints only here (and, as a backstop, in a
     * commit when far too many pages wait), so its caller chooses when. */
    int (*checkpoint)(struct store *s, uint32_t min_frames, uint32_t *pending);
    /* Optional: NULL for a backend only one broker uses (SQLite), whose
     * broker is always active. Outside a transaction. Takes the lease that
     * makes this broker the active one of those sharing the store, for
     * ttl_ms, when it is free or expired, or renews it when this store holds
     * it; *active tells whether it holds it now. Once taken, every commit
     * checks inside its transaction that the lease is still this store's and
     * unexpired, and otherwise rolls back and fails (CASENET_EUNAVAIL): a
     * broker that lost the lease commits nothing. CASENET_ECONFLICT (logged)
     * when this store held the lease and another broker took it over: the
     * broker must stop (its tree and caches are stale). CASENET_EUNAVAIL
     * when the store cannot be reached. */
    int (*lease)(struct store *s, uint32_t ttl_ms, bool *active);
};

/* Messages, their receipts and what a sender stored. */
struct store_message_ops {
    /* In batch. Inserts a message; CASENET_ECONFLICT if its id exists. */
    int (*message_insert)(struct store *s, const struct store_message *m);
    /* In batch, right after message_insert: the inserted row's number, for
     * message_receipt_sigs. */
    int64_t (*message_last_rowid)(struct store *s);
    /* In batch. Writes each rows[i].sig over the last CASENET_SIGNATURE_BYTES
     * bytes of the receipt of message row rows[i].rowid (a receipt stored
     * with a placeholder signature and signed later, server.c), in place.
     * CASENET_EUNAVAIL (the batch must roll back) on a store failure, a
     * missing row or a receipt shorter than a signature. */
    int (*message_receipt_sigs)(struct store *s, const struct store_receipt_sig *rows, size_t n);
    /* In or outside a batch. Looks a message up by id; with_envelope false
     * leaves out->envelope empty. CASENET_ENOTFOUND. */
    int (*message_get)(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                       bool with_envelope, struct store_message *out);
    /* In batch. Records a receipt; CASENET_ECONFLICT if the same bytes were
     * recorded before. */
    int (*receipt_insert)(struct store *s, const struct store_receipt *r);
    /* In or outside a batch. Finds a receipt by the hash of its bytes and
     * returns the audit index it was recorded with. CASENET_ENOTFOUND. */
    int (*receipt_find)(struct store *s, const uint8_t hash[CASENET_HASH_BYTES],
                        uint64_t *audit_index);
    /* In or outside a batch. The receipts recipient sent for message id,
     * oldest first. */
    int (*receipt_list)(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                        const char *recipient, struct store_receipt_rec **rows, size_t *n);
    /* In or outside a batch. Up to limit messages of sender with row >
     * cursor, oldest first, without envelopes; *more tells whether another
     * exists. */
    int (*sent_list)(struct store *s, const char *sender, uint64_t cursor, uint32_t limit,
                     struct store_message **rows, size_t *n, bool *more);
    /* In or outside a batch. Every inbox row of sender's messages with
     * after_row < row <= upto_row (one sent_list page), in (message row,
     * seq) order, each with msg_row set to its message's row; and every
     * deadline of those rows, in (seq, kind) order. Two statements whatever
     * the page holds (not one per message). *rows as for inbox_list, *ds
     * malloc'd (NULL when *n_ds is 0). */
    int (*sent_rows)(struct store *s, const char *sender, uint64_t after_row, uint64_t upto_row,
                     struct store_inbox_row **rows, size_t *n_rows, struct store_deadline **ds,
                     size_t *n_ds);
    /* In or outside a batch. The envelope bytes member has stored with
     * Submits, as added by member_bytes_add, less what was purged; O(1), for
     * the byte quota. 0 for a member that never sent. */
    int (*member_bytes)(struct store *s, const char *member, uint64_t *bytes);
    /* In batch. Adds bytes to member's count: the caller adds the envelopes
     * of a batch's accepted Submits, once per member before the commit (not
     * a write per message). The store takes purged ciphertext away itself.
     * CASENET_EUNAVAIL. */
    int (*member_bytes_add)(struct store *s, const char *member, uint64_t bytes);
};

/* Per-recipient inbox rows and the steps they went through. */
struct store_inbox_ops {
    /* In batch. Appends a row to row->recipient's inbox and sets row->seq.
     * CASENET_ECONFLICT if that inbox already holds row->message_id. A
     * message row (any kind but KIND_RECEIPT) must name a stored message
     * (else CASENET_ECONFLICT as well); with row->msg_row set, that row must
     * be the message's (else CASENET_ECONFLICT), and the store need not look
     * it up. */
    int (*inbox_insert)(struct store *s, struct store_inbox_row *row);
    /* In or outside a batch. The row of recipient's inbox for message id
     * (receipt rows are keyed by their own id). CASENET_ENOTFOUND. */
    int (*inbox_get)(struct store *s, const char *recipient,
                     const uint8_t id[CASENET_MESSAGE_ID_BYTES], struct store_inbox_row *out);
    /* In or outside a batch. *taken: whether recipient's inbox holds a
     * receipt row (no message: KIND_RECEIPT) keyed by id. When no message
     * has that id this is what inbox_get would find, at the cost of one
     * index probe (Submit's check before its first write). */
    int (*inbox_receipt_row)(struct store *s, const char *recipient,
                             const uint8_t id[CASENET_MESSAGE_ID_BYTES], bool *taken);
    /* In or outside a batch. Up to limit rows of recipient's inbox with seq >
     * cursor, in seq order, in the given state (0 = any). *rows is malloc'd
     * (NULL when *n is 0); *more tells whether a further row exists. Costs
     * O(limit + log n) whatever the backlog. */
    int (*inbox_list)(struct store *s, const char *recipient, int state, uint64_t cursor,
                      uint32_t limit, struct store_inbox_row **rows, size_t *n, bool *more);
    /* In batch. Sets the state of row seq and records the step (state, now)
     * for the status query. CASENET_ENOTFOUND. */
    int (*inbox_set_state)(struct store *s, uint64_t seq, int state, int64_t now_ms);
    /* In or outside a batch. The inbox row seq. CASENET_ENOTFOUND. */
    int (*inbox_get_seq)(struct store *s, uint64_t seq, struct store_inbox_row *out);
    /* In or outside a batch. Every recipient's row of message id, in seq
     * order (receipt rows are not message rows). */
    int (*inbox_of_message)(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                            struct store_inbox_row **rows, size_t *n);
    /* In or outside a batch. The steps of row seq, oldest first. */
    int (*step_list)(struct store *s, uint64_t seq, struct store_step **rows, size_t *n);
    /* In or outside a batch. The number of QUEUED (never fetched) message
     * rows in recipient's inbox (forwarded receipts are not counted) and,
     * of them, those from sender, counting this batch's writes; O(senders to
     * recipient), for the backlog limits. */
    int (*inbox_backlog)(struct store *s, const char *recipient, const char *sender,
                         uint64_t *queued, uint64_t *from_sender);
    /* In batch. Records that row seq was fetched in state (proto
     * InboxState): *first is set when no fetch of the row in that state was
     * recorded before (the fetch to audit), and then nothing else is
     * written. CASENET_EUNAVAIL. */
    int (*inbox_fetch_mark)(struct store *s, uint64_t seq, int state, bool *first);
};

/* Deadlines of inbox rows. Every *rows array is malloc'd (NULL when *n is 0)
 * and released with the matching *_free below. */
struct store_deadline_ops {
    /* ---- lifecycle and deadlines. Every *rows array is malloc'd (NULL when
     * *n is 0) and released with the matching *_free below. */

    /* In batch. Arms deadline kind of row seq, due at due_ms, pending.
     * CASENET_ECONFLICT if that row already has one of that kind. */
    int (*deadline_arm)(struct store *s, uint64_t seq, int kind, int64_t due_ms);
    /* In batch. Up to limit pending deadlines with due_ms <= now_ms, earliest
     * first. Costs O(limit + log n): only pending rows are indexed. */
    int (*deadline_due)(struct store *s, int64_t now_ms, uint32_t limit,
                        struct store_deadline **rows, size_t *n);
    /* In batch. Settles pending deadline id (met, breached or void) at now_ms,
     * with the notice's id when not NULL. CASENET_ENOTFOUND when it is not
     * pending any more: a deadline is settled exactly once. */
    int (*deadline_settle)(struct store *s, uint64_t id, int state, int64_t now_ms,
                           const uint8_t *notice_id);
    /* In or outside a batch. Every deadline of row seq, by kind. */
    int (*deadline_list)(struct store *s, uint64_t seq, struct store_deadline **rows, size_t *n);
    /* In or outside a batch. Up to limit breached deliver / accept deadlines
     * with id > cursor whose row has still not been taken (deliver: queued or
     * fetched; accept: not yet accepted, declined or completed), in id order;
     * *more tells whether a further breached deadline exists. */
    int (*overdue_list)(struct store *s, uint64_t cursor, uint32_t limit,
                        struct store_overdue **rows, size_t *n, bool *more);
};

/* The audit log's rows: events, the parties they are filed under, the
 * Merkle tree's perfect subtrees and the signed tree heads. Plain row
 * operations: the order of appends, the in-memory tree and its rollback are
 * store_audit.c's (see store_audit_append and store_audit_tree below). */
struct store_audit_ops {
    /* In or outside a batch. The number of event rows: one past the largest
     * index stored, 0 for an empty log. */
    int (*event_count)(struct store *s, uint64_t *count);
    /* In batch. Inserts event bytes at index with its time and kind, keyed
     * by message_id and case_ref when not NULL (CASENET_MESSAGE_ID_BYTES,
     * CASENET_CASE_REF_BYTES), and files it under each non-empty party
     * (a party named twice is filed once). An event that carries the id of a
     * message already stored may be indexed through that message (the SQLite
     * backend does: its key grows with the log), so the SUBMITTED event
     * follows its message_insert. *wrote is set when a failure came after a
     * row was written: the caller must then have the rows rolled back. */
    int (*event_append)(struct store *s, uint64_t index, int64_t time_ms, int kind,
                        const uint8_t *message_id, const uint8_t *case_ref,
                        const char *const *parties, size_t n_parties, const uint8_t *bytes,
                        size_t len, bool *wrote);
    /* In batch. Sets the keys of stored event index (NULL: none), for events
     * stored before the backend indexed them (the tree's rebuild at open). */
    int (*event_keys_set)(struct store *s, uint64_t index, const uint8_t *message_id,
                          const uint8_t *case_ref);
    /* In batch. Stores perfect subtree (level, index), replacing one stored
     * before (a log cut short outside the broker and grown again: the tree
     * follows the events). CASENET_ETOOLARGE when the backend cannot key it. */
    int (*node_put)(struct store *s, unsigned level, uint64_t index,
                    const uint8_t hash[CASENET_HASH_BYTES]);
    /* In or outside a batch. The stored perfect subtree (level, index)
     * (merkle_get_node of clients/merkle.h): one indexed read.
     * CASENET_ENOTFOUND when not stored. */
    int (*node_get)(struct store *s, unsigned level, uint64_t index,
                    uint8_t out[CASENET_HASH_BYTES]);
    /* Outside a batch. The number of leaves the stored subtrees cover: one
     * past the last leaf of any stored subtree (0 when none). */
    int (*node_leaves)(struct store *s, uint64_t *leaves);
    /* In or outside a batch. Events with index >= cursor matching f, in
     * index order: at most limit of them, examining at most max_examined
     * candidate rows (so one call costs O(max_examined + log n) whatever the
     * filters). *rows is malloc'd (NULL when *n is 0; free with
     * store_audit_rows_free); *next_cursor is one past the last index
     * examined (cursor when none); *more tells whether unexamined candidates
     * remain. */
    int (*audit_query)(struct store *s, const struct store_audit_filter *f, uint64_t cursor,
                       uint32_t limit, uint32_t max_examined, struct store_audit_row **rows,
                       size_t *n, uint64_t *next_cursor, bool *more);
    /* In or outside a batch. Up to limit stored events with index >= from,
     * in index order (an export page). *rows as for audit_query. */
    int (*audit_range)(struct store *s, uint64_t from, uint32_t limit,
                       struct store_audit_row **rows, size_t *n);
    /* In or outside a batch. Whether event index is filed under member (it
     * is the actor or a party). */
    int (*audit_visible)(struct store *s, const char *member, uint64_t index, bool *visible);
    /* In batch. Records a signed tree head; CASENET_ECONFLICT when a head of
     * that size is stored. */
    int (*head_save)(struct store *s, const struct store_head *h);
    /* In or outside a batch. The head of exactly size; CASENET_ENOTFOUND. */
    int (*head_get)(struct store *s, uint64_t size, struct store_head *out);
    /* In or outside a batch. The head of the largest size; CASENET_ENOTFOUND
     * when none was signed. */
    int (*head_latest)(struct store *s, struct store_head *out);
    /* In or outside a batch. Up to limit heads with after < size <= upto,
     * ascending size. *heads is malloc'd (NULL when *n is 0; free with
     * store_heads_free). */
    int (*head_list)(struct store *s, uint64_t after, uint64_t upto, uint32_t limit,
                     struct store_head **heads, size_t *n);
};

struct store_ops {
    const char *name;
    const struct store_admin_ops *admin;
    const struct store_message_ops *message;
    const struct store_inbox_ops *inbox;
    const struct store_deadline_ops *deadline;
    const struct store_audit_ops *audit;
};

/* Nesting depth of request savepoints. */
#define STORE_SAVEPOINTS_MAX 8

/* A backend the store can open: specs "SCHEME:REST" go to the backend of
 * that scheme, which gets REST ("sqlite:DIR" -> "DIR"; a URL scheme such as
 * "postgresql://..." gets the whole spec, its own connection string). */
struct store_backend {
    const char *scheme; /* "sqlite", "postgresql", ... */
    bool whole_spec;    /* open gets the whole spec, not what follows "scheme:" */
    const struct store_ops *ops;
};

/* The SQLite backend (store_sqlite.c). */
extern const struct store_ops store_sqlite_ops;

/* Opens the store that spec names, through the backend registered for its
 * scheme (store_handle.c: the table store_backends): "sqlite:DIR", or a bare DIR
 * (no scheme), is the SQLite backend in the data directory DIR. Then loads
 * the audit log's tree (store_audit.c), rebuilding what is missing.
 * CASENET_EINVAL (logged, with the schemes this build serves) for a scheme
 * that no backend of this build serves; else the backend's open errors. */
CASENET_NODISCARD int store_open(const char *spec, struct store **out);
/* Closes; a transaction still open is rolled back. A lease this store still
 * holds is handed back (expired at once, only if still this store's): a
 * standby takes over at its next try (STORE_LEASE_POLL_MS), not after the
 * TTL. casenetd closes its store when it stops cleanly (SIGTERM, SIGINT).
 * Accepts NULL. */
void store_close(struct store *s);

/* Outside a transaction. Waits until this broker holds the store's lease
 * (store_lease, renewed for ttl_ms, tried every poll_ms), then reloads the
 * audit log's tree from the store: the active broker before it may have
 * grown the log since store_open. Returns at once on a backend without a
 * lease. CASENET_ECONFLICT / CASENET_EUNAVAIL as store_lease (an unreachable
 * store is tried again until it answers). */
int store_wait_active(struct store *s, uint32_t ttl_ms, uint32_t poll_ms);
/* The lease casenetd takes: it lasts STORE_LEASE_TTL_MS, renewed every tick
 * (1 s); a standby tries every STORE_LEASE_POLL_MS, so it takes over at most
 * about TTL + POLL after the active broker's last renewal, or within POLL
 * once the active broker stopped cleanly (store_close hands it back). */
#define STORE_LEASE_TTL_MS  3000
#define STORE_LEASE_POLL_MS 200

/* The batch transaction (see the top of this file). commit fails with
 * CASENET_EUNAVAIL, nothing committed, when the backend fails or when the
 * batch still holds a partly written audit event (store_audit_append);
 * rollback never fails visibly. savepoint opens a request (in batch; at most
 * STORE_SAVEPOINTS_MAX deep, CASENET_EUNAVAIL beyond); release keeps its
 * writes; rollback_to undoes them, the audit tree with them, and closes it. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);
int store_savepoint(struct store *s);
int store_release(struct store *s);
void store_rollback_to(struct store *s);

/* The audit log (store_audit.c), kept the same way over every backend. */

/* In batch. The index the next audit event gets (0 for an empty log).
 * CASENET_EUNAVAIL (logged) when the log's rows and its tree disagree (rows
 * written or removed outside the broker, a transaction the backend rolled
 * back by itself). */
int store_audit_next_index(struct store *s, uint64_t *index);
/* In batch. Appends the serialised AuditEvent bytes at index, which must be
 * what store_audit_next_index returned (CASENET_ECONFLICT otherwise), and
 * files it under each of the parties (event_append). Also appends the
 * event's leaf to the Merkle tree (RFC 9162, PROTOCOL.md §10.2) and stores
 * every perfect subtree it completes, in the same transaction: a rolled-back
 * batch or savepoint leaves neither rows nor tree advanced. CASENET_EINVAL
 * when bytes are not an AuditEvent (a bug of the caller). A failure before
 * anything is written returns its cause, with nothing to undo. A failure
 * after part of the event was written returns CASENET_EUNAVAIL, and those
 * rows must be rolled back: by rollback_to of the request savepoint that
 * holds them, or by rollback; until then the store appends no event and
 * commit refuses (CASENET_EUNAVAIL, nothing committed). */
int store_audit_append(struct store *s, uint64_t index, int64_t time_ms, int kind,
                       const char *const *parties, size_t n_parties, const uint8_t *bytes,
                       size_t len);
/* Outside a batch. Number of audit events (for start-up logging). */
int store_audit_count(struct store *s, uint64_t *count);
/* In or outside a batch. The log's size and root as the current transaction
 * sees them, from the compact range kept in memory (rebuilt at open from
 * popcount(size) stored subtrees); no read. */
int store_audit_tree(struct store *s, uint64_t *size, uint8_t root[CASENET_HASH_BYTES]);

/* Releases what a row owns and zeroes it. Accept NULL. */
void store_message_clear(struct store_message *m);
void store_inbox_row_clear(struct store_inbox_row *r);
/* Clears and frees an array of n rows (from inbox_list). Accepts NULL. */
void store_inbox_rows_free(struct store_inbox_row *rows, size_t n);
/* Clears and frees arrays from audit_query / audit_range and head_list;
 * store_head_clear releases one head. Accept NULL. */
void store_audit_rows_free(struct store_audit_row *rows, size_t n);
void store_head_clear(struct store_head *h);
void store_heads_free(struct store_head *heads, size_t n);

/* Release arrays from the lifecycle operations. Accept NULL. */
void store_messages_free(struct store_message *rows, size_t n);
void store_receipt_recs_free(struct store_receipt_rec *rows, size_t n);
void store_overdue_free(struct store_overdue *rows, size_t n);

/* Thin calls through the backend's table: the broker calls these, never
 * s->ops-> directly. Each has the contract of the operation it names. */
static inline uint64_t store_changes(struct store *s)
{
    return s->ops->admin->changes(s);
}

static inline int store_message_insert(struct store *s, const struct store_message *m)
{
    return s->ops->message->message_insert(s, m);
}

static inline int64_t store_message_last_rowid(struct store *s)
{
    return s->ops->message->message_last_rowid(s);
}

static inline int store_message_receipt_sigs(struct store *s, const struct store_receipt_sig *rows,
                                             size_t n)
{
    return s->ops->message->message_receipt_sigs(s, rows, n);
}

static inline int store_message_get(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                    bool with_envelope, struct store_message *out)
{
    return s->ops->message->message_get(s, id, with_envelope, out);
}

static inline int store_inbox_insert(struct store *s, struct store_inbox_row *row)
{
    return s->ops->inbox->inbox_insert(s, row);
}

static inline int store_inbox_get(struct store *s, const char *recipient,
                                  const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                  struct store_inbox_row *out)
{
    return s->ops->inbox->inbox_get(s, recipient, id, out);
}

static inline int store_inbox_receipt_row(struct store *s, const char *recipient,
                                          const uint8_t id[CASENET_MESSAGE_ID_BYTES], bool *taken)
{
    return s->ops->inbox->inbox_receipt_row(s, recipient, id, taken);
}

static inline int store_inbox_list(struct store *s, const char *recipient, int state,
                                   uint64_t cursor, uint32_t limit, struct store_inbox_row **rows,
                                   size_t *n, bool *more)
{
    return s->ops->inbox->inbox_list(s, recipient, state, cursor, limit, rows, n, more);
}

static inline int store_inbox_set_state(struct store *s, uint64_t seq, int state, int64_t now_ms)
{
    return s->ops->inbox->inbox_set_state(s, seq, state, now_ms);
}

static inline int store_receipt_insert(struct store *s, const struct store_receipt *r)
{
    return s->ops->message->receipt_insert(s, r);
}

static inline int store_receipt_find(struct store *s, const uint8_t hash[CASENET_HASH_BYTES],
                                     uint64_t *audit_index)
{
    return s->ops->message->receipt_find(s, hash, audit_index);
}

static inline int store_audit_node_get(struct store *s, unsigned level, uint64_t index,
                                       uint8_t out[CASENET_HASH_BYTES])
{
    return s->ops->audit->node_get(s, level, index, out);
}

static inline int store_audit_query(struct store *s, const struct store_audit_filter *f,
                                    uint64_t cursor, uint32_t limit, uint32_t max_examined,
                                    struct store_audit_row **rows, size_t *n, uint64_t *next_cursor,
                                    bool *more)
{
    return s->ops->audit->audit_query(s, f, cursor, limit, max_examined, rows, n, next_cursor,
                                      more);
}

static inline int store_audit_range(struct store *s, uint64_t from, uint32_t limit,
                                    struct store_audit_row **rows, size_t *n)
{
    return s->ops->audit->audit_range(s, from, limit, rows, n);
}

static inline int store_audit_visible(struct store *s, const char *member, uint64_t index,
                                      bool *visible)
{
    return s->ops->audit->audit_visible(s, member, index, visible);
}

static inline int store_head_save(struct store *s, const struct store_head *h)
{
    return s->ops->audit->head_save(s, h);
}

static inline int store_head_get(struct store *s, uint64_t size, struct store_head *out)
{
    return s->ops->audit->head_get(s, size, out);
}

static inline int store_head_latest(struct store *s, struct store_head *out)
{
    return s->ops->audit->head_latest(s, out);
}

static inline int store_head_list(struct store *s, uint64_t after, uint64_t upto, uint32_t limit,
                                  struct store_head **heads, size_t *n)
{
    return s->ops->audit->head_list(s, after, upto, limit, heads, n);
}

static inline int store_directory_save(struct store *s, uint64_t version, const uint8_t *bytes,
                                       size_t len, int64_t now_ms)
{
    return s->ops->admin->directory_save(s, version, bytes, len, now_ms);
}

static inline int store_directory_latest(struct store *s, casenet_buf *out, uint64_t *version)
{
    return s->ops->admin->directory_latest(s, out, version);
}

static inline int store_deadline_arm(struct store *s, uint64_t seq, int kind, int64_t due_ms)
{
    return s->ops->deadline->deadline_arm(s, seq, kind, due_ms);
}

static inline int store_deadline_due(struct store *s, int64_t now_ms, uint32_t limit,
                                     struct store_deadline **rows, size_t *n)
{
    return s->ops->deadline->deadline_due(s, now_ms, limit, rows, n);
}

static inline int store_deadline_settle(struct store *s, uint64_t id, int state, int64_t now_ms,
                                        const uint8_t *notice_id)
{
    return s->ops->deadline->deadline_settle(s, id, state, now_ms, notice_id);
}

static inline int store_deadline_list(struct store *s, uint64_t seq, struct store_deadline **rows,
                                      size_t *n)
{
    return s->ops->deadline->deadline_list(s, seq, rows, n);
}

static inline int store_overdue_list(struct store *s, uint64_t cursor, uint32_t limit,
                                     struct store_overdue **rows, size_t *n, bool *more)
{
    return s->ops->deadline->overdue_list(s, cursor, limit, rows, n, more);
}

static inline int store_inbox_get_seq(struct store *s, uint64_t seq, struct store_inbox_row *out)
{
    return s->ops->inbox->inbox_get_seq(s, seq, out);
}

static inline int store_inbox_of_message(struct store *s,
                                         const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                         struct store_inbox_row **rows, size_t *n)
{
    return s->ops->inbox->inbox_of_message(s, id, rows, n);
}

static inline int store_step_list(struct store *s, uint64_t seq, struct store_step **rows,
                                  size_t *n)
{
    return s->ops->inbox->step_list(s, seq, rows, n);
}

static inline int store_receipt_list(struct store *s, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                     const char *recipient, struct store_receipt_rec **rows,
                                     size_t *n)
{
    return s->ops->message->receipt_list(s, id, recipient, rows, n);
}

static inline int store_sent_list(struct store *s, const char *sender, uint64_t cursor,
                                  uint32_t limit, struct store_message **rows, size_t *n,
                                  bool *more)
{
    return s->ops->message->sent_list(s, sender, cursor, limit, rows, n, more);
}

static inline int store_sent_rows(struct store *s, const char *sender, uint64_t after_row,
                                  uint64_t upto_row, struct store_inbox_row **rows, size_t *n_rows,
                                  struct store_deadline **ds, size_t *n_ds)
{
    return s->ops->message->sent_rows(s, sender, after_row, upto_row, rows, n_rows, ds, n_ds);
}

static inline int store_inbox_backlog(struct store *s, const char *recipient, const char *sender,
                                      uint64_t *queued, uint64_t *from_sender)
{
    return s->ops->inbox->inbox_backlog(s, recipient, sender, queued, from_sender);
}

static inline int store_member_bytes(struct store *s, const char *member, uint64_t *bytes)
{
    return s->ops->message->member_bytes(s, member, bytes);
}

static inline int store_member_bytes_add(struct store *s, const char *member, uint64_t bytes)
{
    return s->ops->message->member_bytes_add(s, member, bytes);
}

static inline int store_inbox_fetch_mark(struct store *s, uint64_t seq, int state, bool *first)
{
    return s->ops->inbox->inbox_fetch_mark(s, seq, state, first);
}

/* The lease of store_admin_ops (always active on a backend without one). */
static inline int store_lease(struct store *s, uint32_t ttl_ms, bool *active)
{
    if (!s->ops->admin->lease) {
        *active = true;
        return CASENET_OK;
    }
    return s->ops->admin->lease(s, ttl_ms, active);
}

static inline int store_checkpoint(struct store *s, uint32_t min_frames, uint32_t *pending)
{
    return s->ops->admin->checkpoint(s, min_frames, pending);
}

#endif
