/*
 * store_sqlite_audit.c - the SQLite store's audit rows (see store.h, struct
 * store_audit_ops): events and the parties they are filed under, the Merkle
 * tree's perfect subtrees, audit queries and signed tree heads. Plain rows:
 * the tree itself and its invariants are store_audit.c's.
 */
#include "store.h"

#include "log.h"
#include "store_sqlite_impl.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ audit */

static int scalar_u64(struct store *s, enum sq_stmt which, uint64_t *out, const char *what)
{
    sqlite3_stmt *st = sq_stmt(s, which);
    int rc = sqlite3_step(st);
    int err = CASENET_OK;
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    else
        err = sq_map_rc(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    sqlite3_reset(st);
    return err;
}

static int sq_event_count(struct store *b, uint64_t *count)
{
    return scalar_u64(b, ST_AUDIT_COUNT, count, "audit_count");
}

/* A subtree is stored with the leaf that completes it: the last leaf stored
 * is the largest last of any level. */
static int sq_node_leaves(struct store *b, uint64_t *leaves)
{
    return scalar_u64(b, ST_NODE_LEAVES, leaves, "audit_node_leaves");
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
static int sq_node_put(struct store *s, unsigned level, uint64_t index,
                       const uint8_t hash[CASENET_HASH_BYTES])
{
    sqlite3_int64 last = 0;
    if (!node_last(level, index, &last))
        return CASENET_ETOOLARGE;
    sqlite3_stmt *st = sq_stmt(s, ST_NODE_PUT);
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, last);
    sq_bind_blob(st, 3, hash, CASENET_HASH_BYTES);
    return sq_run(s, st, "audit_node_put");
}

static int sq_node_get(struct store *s, unsigned level, uint64_t index,
                       uint8_t out[CASENET_HASH_BYTES])
{
    sqlite3_int64 last = 0;
    if (!node_last(level, index, &last))
        return CASENET_ENOTFOUND;
    sqlite3_stmt *st = sq_stmt(s, ST_NODE_GET);
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, last);
    int rc = sqlite3_step(st);
    int err;
    if (rc == SQLITE_ROW)
        err = sq_col_fixed(st, 0, out, CASENET_HASH_BYTES) ? CASENET_OK : CASENET_EUNAVAIL;
    else
        err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : sq_map_rc(s, rc, "audit_node_get");
    if (err == CASENET_EUNAVAIL && rc == SQLITE_ROW)
        log_event(LOG_ERROR, "store_corrupt", "table", "audit_nodes", "level", log_u64(level),
                  "idx", log_u64(index), NULL);
    sqlite3_reset(st);
    return err;
}

/* The msg_key of an event about message id mid: the stored message's
 * audit_index, or NULL (*has false) when no message has that id. */
static int audit_msg_key(struct store *s, const uint8_t *mid, bool *has, sqlite3_int64 *key)
{
    sqlite3_stmt *st = sq_stmt(s, ST_MSG_AUDIT_KEY);
    sq_bind_blob(st, 1, mid, CASENET_MESSAGE_ID_BYTES);
    int rc = sqlite3_step(st);
    int err = CASENET_OK;
    *has = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *key = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        err = sq_map_rc(s, rc, "audit_msg_key");
    sqlite3_reset(st);
    return err;
}

/* Inserts the event row and its parties. */
static int sq_event_append(struct store *s, uint64_t index, int64_t time_ms, int kind,
                           const uint8_t *mid, const uint8_t *case_ref, const char *const *parties,
                           size_t n_parties, const uint8_t *bytes, size_t len, bool *wrote)
{
    bool has_key = false;
    sqlite3_int64 key = 0;
    int rc = mid ? audit_msg_key(s, mid, &has_key, &key) : CASENET_OK;
    if (rc != CASENET_OK)
        return rc;
    sqlite3_stmt *st = sq_stmt(s, ST_AUDIT_INSERT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    sqlite3_bind_int64(st, 2, time_ms);
    sqlite3_bind_int(st, 3, kind);
    sq_bind_blob(st, 4, bytes, len);
    sq_bind_blob(st, 5, mid, CASENET_MESSAGE_ID_BYTES);
    sq_bind_blob(st, 6, case_ref, CASENET_CASE_REF_BYTES);
    if (has_key)
        sqlite3_bind_int64(st, 7, key);
    rc = sq_run(s, st, "audit_append");
    if (rc != CASENET_OK)
        return rc; /* a statement fails whole: nothing written */
    *wrote = true;
    for (size_t i = 0; i < n_parties; i++) {
        if (!parties[i] || !*parties[i])
            continue;
        st = sq_stmt(s, ST_AUDIT_PARTY);
        sq_bind_text(st, 1, parties[i]);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)index);
        if ((rc = sq_run(s, st, "audit_party")) != CASENET_OK)
            return rc;
    }
    return CASENET_OK;
}

static int sq_event_keys_set(struct store *s, uint64_t index, const uint8_t *mid,
                             const uint8_t *case_ref)
{
    sqlite3_stmt *st = sq_stmt(s, ST_AUDIT_SET_KEYS);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    sq_bind_blob(st, 2, mid, CASENET_MESSAGE_ID_BYTES);
    sq_bind_blob(st, 3, case_ref, CASENET_CASE_REF_BYTES);
    return sq_run(s, st, "tree_rebuild");
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

static int sq_audit_visible(struct store *s, const char *member, uint64_t index, bool *visible)
{
    if (index > INT64_MAX) {
        *visible = false;
        return CASENET_OK;
    }
    sqlite3_stmt *st = sq_stmt(s, ST_AUDIT_VISIBLE);
    sq_bind_text(st, 1, member);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)index);
    int rc = sqlite3_step(st);
    int err = CASENET_OK;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        *visible = rc == SQLITE_ROW;
    else
        err = sq_map_rc(s, rc, "audit_visible");
    sqlite3_reset(st);
    return err;
}

static int sq_audit_query(struct store *s, const struct store_audit_filter *f, uint64_t cursor,
                          uint32_t limit, uint32_t max_examined, struct store_audit_row **rows,
                          size_t *n, uint64_t *next_cursor, bool *more)
{
    enum sq_stmt which = f->member && f->member_only ? ST_AQ_MEMBER
                         : f->message_id             ? ST_AQ_MESSAGE
                         : f->case_ref               ? ST_AQ_CASE
                         : f->member                 ? ST_AQ_MEMBER
                                                     : ST_AQ_ALL;
    struct store_audit_row *out = NULL;
    size_t count = 0;
    uint64_t next = cursor;
    bool extra = false;
    int err = CASENET_ENOMEM;
    if (limit > 0 && !(out = calloc(limit, sizeof *out)))
        return CASENET_ENOMEM;
    sqlite3_stmt *st = sq_stmt(s, which);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(cursor > INT64_MAX ? INT64_MAX : cursor));
    if (which == ST_AQ_MESSAGE)
        sq_bind_blob(st, 2, f->message_id, CASENET_MESSAGE_ID_BYTES);
    else if (which == ST_AQ_CASE)
        sq_bind_blob(st, 2, f->case_ref, CASENET_CASE_REF_BYTES);
    else if (which == ST_AQ_MEMBER)
        sq_bind_text(st, 2, f->member);
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
            if ((err = sq_audit_visible(s, f->member, idx, &visible)) != CASENET_OK)
                goto cleanup;
            if (!visible)
                continue;
        }
        if ((err = read_audit_row(st, 5, idx, &out[count])) != CASENET_OK)
            goto cleanup;
        count++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = sq_map_rc(s, rc, "audit_query");
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

static int sq_audit_range(struct store *s, uint64_t from, uint32_t limit,
                          struct store_audit_row **rows, size_t *n)
{
    struct store_audit_row *out = NULL;
    size_t count = 0;
    int err = CASENET_ENOMEM;
    if (limit > 0 && !(out = calloc(limit, sizeof *out)))
        return CASENET_ENOMEM;
    sqlite3_stmt *st = sq_stmt(s, ST_AUDIT_RANGE);
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
        err = sq_map_rc(s, rc, "audit_range");
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

static int sq_head_save(struct store *s, const struct store_head *h)
{
    if (h->size > INT64_MAX)
        return CASENET_ETOOLARGE;
    sqlite3_stmt *st = sq_stmt(s, ST_HEAD_SAVE);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)h->size);
    sqlite3_bind_int64(st, 2, h->time_ms);
    sq_bind_blob(st, 3, h->root, sizeof h->root);
    sq_bind_blob(st, 4, h->checkpoint.data, h->checkpoint.len);
    return sq_run(s, st, "head_save");
}

/* Runs a head statement expected to return at most one row. */
static int one_head(struct store *s, sqlite3_stmt *st, struct store_head *out, const char *what)
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
        err = rc == SQLITE_DONE ? CASENET_ENOTFOUND : sq_map_rc(s, rc, what);
    }
    sqlite3_reset(st);
    return err;
}

static int sq_head_get(struct store *s, uint64_t size, struct store_head *out)
{
    if (size > INT64_MAX)
        return CASENET_ENOTFOUND;
    sqlite3_stmt *st = sq_stmt(s, ST_HEAD_GET);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
    return one_head(s, st, out, "head_get");
}

static int sq_head_latest(struct store *s, struct store_head *out)
{
    return one_head(s, sq_stmt(s, ST_HEAD_LATEST), out, "head_latest");
}

static int sq_head_list(struct store *s, uint64_t after, uint64_t upto, uint32_t limit,
                        struct store_head **heads, size_t *n)
{
    struct store_head *out = NULL;
    size_t count = 0;
    int err = CASENET_ENOMEM;
    if (limit > 0 && !(out = calloc(limit, sizeof *out)))
        return CASENET_ENOMEM;
    sqlite3_stmt *st = sq_stmt(s, ST_HEAD_LIST);
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
        err = sq_map_rc(s, rc, "head_list");
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

const struct store_audit_ops sq_audit_ops = {
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
