/*
 * store_audit.c - the audit log's Merkle bookkeeping, the same over every
 * store backend (see store_audit.h): the backend stores event and subtree
 * rows, this file decides when the in-memory tree takes a leaf, when it goes
 * back, and when a transaction must not commit.
 */
#include "store_audit.h"

#include "casenet.pb-c.h"
#include "log.h"
#include "merkle.h"

#include <stdlib.h>
#include <string.h>

#define REBUILD_CHUNK 1024 /* events read at once when rebuilding the tree */

struct store_log {
    /* The log's compact range as the open transaction sees it, and copies to
     * restore it when the batch (tx_tree) or a request savepoint (sp_tree)
     * is rolled back: the tree never runs ahead of the rows. */
    struct merkle_stack tree;
    struct merkle_stack tx_tree;
    struct merkle_stack sp_tree[STORE_SAVEPOINTS_MAX];
    size_t sp_depth;
    /* An audit append failed after its first write (or a rollback to a
     * savepoint failed): the open transaction holds rows the tree does not
     * (mark_torn). Set, the store appends no event and commits nothing
     * until a rollback takes those rows away: of the request savepoint at
     * depth > torn_depth that holds them (store_log_rolled_back_to), or of
     * the batch. */
    bool torn;
    size_t torn_depth;
    /* The open transaction found as many event rows as tree.size leaves
     * (tree_check): from then on the tree is the log's size, since nothing
     * but this store writes while it holds the transaction, and every path
     * that takes rows away restores the tree with them (or marks the
     * transaction torn). Cleared by begin; not trusted outside a
     * transaction (another process may write between two). */
    bool tree_checked;
};

/* The keys an event is indexed by, read from its bytes: the message id and
 * case reference when it carries them. The store's one reading of a
 * protocol message, kept here, above the backends. CASENET_EBADREQ when the
 * bytes are not an AuditEvent. */
static int event_keys(const uint8_t *event, size_t len, bool *has_mid,
                      uint8_t mid[CASENET_MESSAGE_ID_BYTES], bool *has_case,
                      uint8_t case_ref[CASENET_CASE_REF_BYTES])
{
    Casenet__V1__AuditEvent *e = casenet__v1__audit_event__unpack(NULL, len, event);
    if (!e)
        return CASENET_EBADREQ;
    *has_mid = e->message_id.len == CASENET_MESSAGE_ID_BYTES;
    if (*has_mid)
        memcpy(mid, e->message_id.data, CASENET_MESSAGE_ID_BYTES);
    *has_case = e->case_ref.len == CASENET_CASE_REF_BYTES;
    if (*has_case)
        memcpy(case_ref, e->case_ref.data, CASENET_CASE_REF_BYTES);
    casenet__v1__audit_event__free_unpacked(e, NULL);
    return CASENET_OK;
}

/* merkle_on_complete: stores a completed perfect subtree. */
static int put_node(void *ctx, unsigned level, uint64_t index,
                    const uint8_t hash[MERKLE_HASH_BYTES])
{
    struct store *s = ctx;
    return s->ops->audit->node_put(s, level, index, hash);
}

/* merkle_get_node over the stored subtrees. */
static int get_node(void *ctx, unsigned level, uint64_t index, uint8_t out[MERKLE_HASH_BYTES])
{
    struct store *s = ctx;
    return s->ops->audit->node_get(s, level, index, out);
}

/* ------------------------------------------------------------ transactions */

/* The open transaction's rows ran ahead of the tree: whatever wrote them
 * must be rolled back, the request's savepoint at the current depth or the
 * whole batch. */
static void mark_torn(struct store_log *log, const char *what)
{
    log_event(LOG_ERROR, "store_error", "op", what, "msg",
              "failed after writing: the request or the batch must be rolled back", NULL);
    if (!log->torn || log->sp_depth < log->torn_depth)
        log->torn_depth = log->sp_depth;
    log->torn = true;
}

void store_log_begin(struct store_log *log)
{
    log->tx_tree = log->tree;
    log->sp_depth = 0;
    log->torn = false;
    log->tree_checked = false;
}

bool store_log_torn(struct store_log *log)
{
    if (log->torn)
        log_event(LOG_ERROR, "store_error", "op", "commit", "msg",
                  "refused: the batch holds a partly written audit event", NULL);
    return log->torn;
}

void store_log_rolled_back(struct store_log *log)
{
    log->tree = log->tx_tree;
    log->sp_depth = 0;
    log->torn = false;
}

bool store_log_can_savepoint(struct store_log *log)
{
    if (log->sp_depth < STORE_SAVEPOINTS_MAX)
        return true;
    log_event(LOG_ERROR, "store_error", "op", "savepoint", "msg", "savepoints nested too deep",
              NULL);
    return false;
}

void store_log_savepoint(struct store_log *log)
{
    log->sp_tree[log->sp_depth++] = log->tree;
}

void store_log_release(struct store_log *log)
{
    if (log->sp_depth > 0)
        log->sp_depth--;
    /* Rows torn inside it now belong to the enclosing level. */
    if (log->torn && log->torn_depth > log->sp_depth)
        log->torn_depth = log->sp_depth;
}

void store_log_rolled_back_to(struct store_log *log, bool undone)
{
    size_t depth = log->sp_depth;
    if (log->sp_depth > 0)
        log->tree = log->sp_tree[--log->sp_depth];
    if (!undone) {
        /* The rows stay while the tree went back: only the batch's
         * rollback can reconcile them now. */
        log->sp_depth = 0;
        mark_torn(log, "rollback_to");
        return;
    }
    if (log->torn && depth > 0 && log->torn_depth >= depth)
        log->torn = false;
}

/* ------------------------------------------------------------ appends */

/* Whether the event rows are as many as the tree's leaves. Asks the backend
 * once per transaction (a count that cost three runs per Submit when every
 * caller asked it), and every time outside one, or once the backend has
 * rolled the transaction back by itself (an I/O error, a full disk): the
 * tree is then ahead of the rows, and this says so. Rows added or removed
 * behind the broker's back (another process, between two transactions) are
 * found at the next transaction's first event. CASENET_EUNAVAIL (logged)
 * when they differ. */
static int tree_check(struct store *s)
{
    struct store_log *log = s->log;
    bool in_tx = s->ops->admin->in_transaction(s);
    if (in_tx && log->tree_checked)
        return CASENET_OK;
    uint64_t rows = 0;
    int rc = s->ops->audit->event_count(s, &rows);
    if (rc != CASENET_OK)
        return rc;
    if (rows != log->tree.size) {
        log_event(LOG_ERROR, "store_corrupt", "table", "audit", "rows", log_u64(rows), "tree",
                  log_u64(log->tree.size), NULL);
        return CASENET_EUNAVAIL;
    }
    log->tree_checked = in_tx;
    return CASENET_OK;
}

/* The tree's size, once tree_check has compared it with the rows. While the
 * transaction is torn the rows are ahead of the tree, and no event is
 * appended until the rollback that reconciles them: the tree's size is the
 * index the next event will get then. */
int store_audit_next_index(struct store *s, uint64_t *index)
{
    int rc = s->log->torn ? CASENET_OK : tree_check(s);
    if (rc == CASENET_OK)
        *index = s->log->tree.size;
    return rc;
}

int store_audit_count(struct store *s, uint64_t *count)
{
    return s->ops->audit->event_count(s, count);
}

int store_audit_append(struct store *s, uint64_t index, int64_t time_ms, int kind,
                       const char *const *parties, size_t n_parties, const uint8_t *bytes,
                       size_t len)
{
    struct store_log *log = s->log;
    if (log->torn) {
        log_event(LOG_ERROR, "store_error", "op", "audit_append", "msg",
                  "refused: a partly written event awaits its rollback", NULL);
        return CASENET_EUNAVAIL;
    }
    int rc = tree_check(s);
    if (rc != CASENET_OK)
        return rc;
    if (log->tree.size != index)
        return CASENET_ECONFLICT;
    bool has_mid = false, has_case = false;
    uint8_t mid[CASENET_MESSAGE_ID_BYTES], case_ref[CASENET_CASE_REF_BYTES];
    if (event_keys(bytes, len, &has_mid, mid, &has_case, case_ref) != CASENET_OK)
        return CASENET_EINVAL; /* the broker's own bytes: a bug, not input */
    /* No savepoint of its own (it cost a statement journal per event):
     * every caller runs in a request savepoint or fails its batch on a
     * store failure, and a failure after the first row is made one
     * (mark_torn), so that those rows are rolled back before anything
     * commits; the tree never takes a leaf whose rows are not all written. */
    bool wrote = false;
    rc = s->ops->audit->event_append(s, index, time_ms, kind, has_mid ? mid : NULL,
                                     has_case ? case_ref : NULL, parties, n_parties, bytes, len,
                                     &wrote);
    if (rc == CASENET_OK) {
        wrote = true;
        uint8_t leaf[MERKLE_HASH_BYTES];
        merkle_leaf_hash(bytes, len, leaf);
        rc = merkle_stack_push(&log->tree, leaf, put_node, s);
    }
    if (rc != CASENET_OK && wrote) {
        mark_torn(log, "audit_append");
        return CASENET_EUNAVAIL;
    }
    return rc;
}

int store_audit_tree(struct store *s, uint64_t *size, uint8_t root[CASENET_HASH_BYTES])
{
    *size = s->log->tree.size;
    merkle_stack_root(&s->log->tree, root);
    return CASENET_OK;
}

/* ------------------------------------------------------------ tree at open */

/* Appends one stored event (index i) to the tree under rebuild, setting its
 * index keys. */
static int rebuild_one(struct store *s, struct merkle_stack *tree, uint64_t i,
                       const struct store_audit_row *row)
{
    bool has_mid = false, has_case = false;
    uint8_t mid[CASENET_MESSAGE_ID_BYTES], case_ref[CASENET_CASE_REF_BYTES];
    if (row->index != i || event_keys(row->event.data, row->event.len, &has_mid, mid, &has_case,
                                      case_ref) != CASENET_OK) {
        log_event(LOG_ERROR, "store_corrupt", "table", "audit", "idx", log_u64(i), "msg",
                  "missing or unreadable event: cannot rebuild the Merkle tree", NULL);
        return CASENET_EUNAVAIL;
    }
    int rc = s->ops->audit->event_keys_set(s, i, has_mid ? mid : NULL, has_case ? case_ref : NULL);
    if (rc != CASENET_OK)
        return rc;
    uint8_t leaf[MERKLE_HASH_BYTES];
    merkle_leaf_hash(row->event.data, row->event.len, leaf);
    return merkle_stack_push(tree, leaf, put_node, s);
}

/* Appends the events [from, count) to tree in one transaction, storing
 * their subtrees and index keys: events stored before the tree existed
 * (schema 1), or a tree that cannot be loaded. O(count - from), once. */
static int tree_rebuild(struct store *s, struct merkle_stack *tree, uint64_t from, uint64_t count)
{
    const struct store_admin_ops *tx = s->ops->admin;
    int rc = tx->begin(s);
    if (rc != CASENET_OK)
        return rc;
    struct merkle_stack saved = *tree;
    struct store_audit_row *rows = NULL;
    size_t n = 0;
    for (uint64_t i = from; i < count;) {
        if ((rc = s->ops->audit->audit_range(s, i, REBUILD_CHUNK, &rows, &n)) != CASENET_OK)
            goto cleanup;
        for (size_t k = 0; k < n; k++, i++)
            if ((rc = rebuild_one(s, tree, i, &rows[k])) != CASENET_OK)
                goto cleanup;
        store_audit_rows_free(rows, n);
        rows = NULL;
        if (n == 0 && i < count) {
            log_event(LOG_ERROR, "store_corrupt", "table", "audit", "idx", log_u64(i), "msg",
                      "events missing: cannot rebuild the Merkle tree", NULL);
            rc = CASENET_EUNAVAIL;
            goto cleanup;
        }
    }
    rc = tx->commit(s);
cleanup:
    store_audit_rows_free(rows, n);
    if (rc != CASENET_OK) {
        tx->rollback(s);
        *tree = saved;
    } else if (count > from) {
        log_event(LOG_INFO, "audit_tree_rebuilt", "from", log_u64(from), "events", log_u64(count),
                  NULL);
    }
    return rc;
}

/* Loads the compact range of the log from the stored subtrees, completing
 * the tree first when events lack it. */
static int tree_open(struct store *s, struct merkle_stack *tree)
{
    uint64_t count = 0, leaves = 0;
    int rc = s->ops->audit->event_count(s, &count);
    if (rc == CASENET_OK)
        rc = s->ops->audit->node_leaves(s, &leaves);
    if (rc != CASENET_OK)
        return rc;
    if (leaves > count)
        log_event(LOG_WARN, "audit_tree_ahead", "events", log_u64(count), "tree_leaves",
                  log_u64(leaves), "msg",
                  "the audit log holds fewer events than its tree: events were removed outside "
                  "the broker; clients that verify the log will see it",
                  NULL);
    uint64_t start = leaves < count ? leaves : count;
    merkle_stack_init(tree);
    rc = merkle_stack_load(tree, get_node, s, start);
    if (rc == CASENET_ENOTFOUND) {
        log_event(LOG_WARN, "audit_tree_incomplete", "size", log_u64(start), "msg",
                  "stored subtrees missing; rebuilding the tree from the events", NULL);
        merkle_stack_init(tree);
        start = 0;
    } else if (rc != CASENET_OK) {
        return rc;
    }
    return start < count ? tree_rebuild(s, tree, start, count) : CASENET_OK;
}

int store_log_open(struct store *s, struct store_log **out)
{
    struct store_log *log = calloc(1, sizeof *log);
    if (!log)
        return CASENET_ENOMEM;
    int rc = tree_open(s, &log->tree);
    if (rc != CASENET_OK) {
        free(log);
        return rc;
    }
    *out = log;
    return CASENET_OK;
}

void store_log_free(struct store_log *log)
{
    free(log);
}
