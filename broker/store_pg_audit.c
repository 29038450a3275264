/*
 * store_pg_audit.c - the PostgreSQL store's audit rows (struct
 * store_audit_ops): events and the parties they are filed under, the Merkle
 * tree's perfect subtrees, audit queries and signed tree heads. Plain rows:
 * the tree and its invariants are store_audit.c's.
 */
#include "store.h"

#include "log.h"
#include "store_pg_impl.h"

#include <stdlib.h>
#include <string.h>

/* A one-row, one-column count of a statement without parameters. */
static int scalar_u64(struct store *s, enum pq_stmt which, uint64_t *out, const char *what)
{
    PGresult *r = NULL;
    int rc = pq_run(s, which, NULL, &r, what);
    if (rc != CASENET_OK)
        return rc;
    *out = PQntuples(r) ? (uint64_t)pq_col_i64(r, 0, 0) : 0;
    PQclear(r);
    return CASENET_OK;
}

static int pg_event_count(struct store *s, uint64_t *count)
{
    return scalar_u64(s, PQ_AUDIT_COUNT, count, "audit_count");
}

static int pg_node_leaves(struct store *s, uint64_t *leaves)
{
    return scalar_u64(s, PQ_NODE_LEAVES, leaves, "audit_node_leaves");
}

/* The key of perfect subtree (level, index): the last leaf it covers,
 * (index + 1) * 2^level - 1; false when that is beyond BIGINT. */
static bool node_last(unsigned level, uint64_t index, int64_t *last)
{
    if (level > 62 || index >= ((uint64_t)1 << (62 - level)))
        return false;
    *last = (int64_t)(((index + 1) << level) - 1);
    return true;
}

static int pg_node_put(struct store *s, unsigned level, uint64_t index,
                       const uint8_t hash[CASENET_HASH_BYTES])
{
    int64_t last = 0;
    if (!node_last(level, index, &last))
        return CASENET_ETOOLARGE;
    struct pq_args a = {0};
    pq_i64(&a, level);
    pq_i64(&a, last);
    pq_blob(&a, hash, CASENET_HASH_BYTES);
    return pq_defer(s, PQ_NODE_PUT, NULL, &a, PQ_EXPECT_DONE, "audit_node_put");
}

static int pg_node_get(struct store *s, unsigned level, uint64_t index,
                       uint8_t out[CASENET_HASH_BYTES])
{
    int64_t last = 0;
    if (!node_last(level, index, &last))
        return CASENET_ENOTFOUND;
    struct pq_args a = {0};
    pq_i64(&a, level);
    pq_i64(&a, last);
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_NODE_GET, &a, &r, "audit_node_get");
    if (rc != CASENET_OK)
        return rc;
    if (PQntuples(r) == 0) {
        rc = CASENET_ENOTFOUND;
    } else if (!pq_col_fixed(r, 0, 0, out, CASENET_HASH_BYTES)) {
        log_event(LOG_ERROR, "store_corrupt", "table", "audit_nodes", "level", log_u64(level),
                  "idx", log_u64(index), NULL);
        rc = CASENET_EUNAVAIL;
    }
    PQclear(r);
    return rc;
}

/* The parties as a text[] literal ({"a","b"}, quotes and backslashes
 * escaped), malloc'd; NULL on CASENET_ENOMEM. */
static char *party_array(const char *const *parties, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += parties[i] ? 2 * strlen(parties[i]) + 3 : 0;
    char *out = malloc(cap), *p = out;
    if (!out)
        return NULL;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (!parties[i])
            continue;
        if (p > out + 1)
            *p++ = ',';
        *p++ = '"';
        for (const char *c = parties[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

/* The event row and its parties in one statement (PQ_AUDIT_INSERT): a
 * failure writes nothing, so *wrote is never set. In a batch it is sent
 * without waiting: its index was checked against the tree (store_audit.c),
 * so only a store that disagrees with it fails it, and the batch with it. */
static int pg_event_append(struct store *s, uint64_t index, int64_t time_ms, int kind,
                           const uint8_t *mid, const uint8_t *case_ref, const char *const *parties,
                           size_t n_parties, const uint8_t *bytes, size_t len, bool *wrote)
{
    (void)wrote;
    char *members = party_array(parties, n_parties);
    if (!members)
        return CASENET_ENOMEM;
    struct pq_args a = {0};
    pq_u64(&a, index);
    pq_i64(&a, time_ms);
    pq_i64(&a, kind);
    pq_blob(&a, bytes, len);
    pq_blob(&a, mid, CASENET_MESSAGE_ID_BYTES);
    pq_blob(&a, case_ref, CASENET_CASE_REF_BYTES);
    pq_text(&a, members);
    int rc = pq_defer(s, PQ_AUDIT_INSERT, NULL, &a, PQ_EXPECT_COUNT, "audit_append");
    free(members);
    return rc;
}

static int pg_event_keys_set(struct store *s, uint64_t index, const uint8_t *mid,
                             const uint8_t *case_ref)
{
    struct pq_args a = {0};
    pq_u64(&a, index);
    pq_blob(&a, mid, CASENET_MESSAGE_ID_BYTES);
    pq_blob(&a, case_ref, CASENET_CASE_REF_BYTES);
    uint64_t touched = 0;
    return pq_write(s, PQ_AUDIT_SET_KEYS, &a, &touched, "tree_rebuild");
}

/* The rest of the filters, on candidate row i of a PQ_AQ_* result. */
static bool candidate_matches(const PGresult *r, int i, const struct store_audit_filter *f)
{
    int64_t t = pq_col_i64(r, i, 1);
    if ((f->from_ms && t < f->from_ms) || (f->to_ms && t >= f->to_ms))
        return false;
    if (f->kind && pq_col_i64(r, i, 2) != f->kind)
        return false;
    uint8_t tmp[CASENET_MESSAGE_ID_BYTES];
    if (f->message_id && (!pq_col_fixed(r, i, 3, tmp, sizeof tmp) ||
                          memcmp(tmp, f->message_id, CASENET_MESSAGE_ID_BYTES) != 0))
        return false;
    if (f->case_ref && (!pq_col_fixed(r, i, 4, tmp, sizeof tmp) ||
                        memcmp(tmp, f->case_ref, CASENET_CASE_REF_BYTES) != 0))
        return false;
    if (f->member && !pq_col_i64(r, i, 6)) /* not a party */
        return false;
    return true;
}

/* One statement per driving index (the most selective filter set); the
 * others are checked row by row. It fetches at most max_examined + 1
 * candidates: the one past the cap only tells that more remain. */
static int pg_audit_query(struct store *s, const struct store_audit_filter *f, uint64_t cursor,
                          uint32_t limit, uint32_t max_examined, struct store_audit_row **rows,
                          size_t *n, uint64_t *next_cursor, bool *more)
{
    enum pq_stmt which = f->member && f->member_only ? PQ_AQ_MEMBER
                         : f->message_id             ? PQ_AQ_MESSAGE
                         : f->case_ref               ? PQ_AQ_CASE
                         : f->member                 ? PQ_AQ_MEMBER
                         : f->kind                   ? PQ_AQ_KIND
                                                     : PQ_AQ_ALL;
    struct pq_args a = {0};
    pq_u64(&a, cursor);
    pq_i64(&a, (int64_t)max_examined + 1);
    pq_text(&a, f->member);
    if (which == PQ_AQ_MESSAGE)
        pq_blob(&a, f->message_id, CASENET_MESSAGE_ID_BYTES);
    else if (which == PQ_AQ_CASE)
        pq_blob(&a, f->case_ref, CASENET_CASE_REF_BYTES);
    else if (which == PQ_AQ_KIND)
        pq_i64(&a, f->kind);
    PGresult *r = NULL;
    int rc = pq_run(s, which, &a, &r, "audit_query");
    if (rc != CASENET_OK)
        return rc;
    struct store_audit_row *out = limit ? calloc(limit, sizeof *out) : NULL;
    size_t count = 0;
    uint64_t next = cursor;
    uint32_t examined = 0;
    bool extra = false;
    rc = limit && !out ? CASENET_ENOMEM : CASENET_OK;
    for (int i = 0; rc == CASENET_OK && i < PQntuples(r); i++) {
        if (count == limit || examined == max_examined) {
            extra = true;
            break;
        }
        uint64_t idx = (uint64_t)pq_col_i64(r, i, 0);
        examined++;
        next = idx + 1;
        if (!candidate_matches(r, i, f))
            continue;
        out[count].index = idx;
        if ((rc = pq_col_buf(r, i, 5, &out[count].event)) == CASENET_OK)
            count++;
    }
    if (rc == CASENET_OK) {
        *rows = count ? out : NULL;
        if (!count)
            free(out);
        *n = count;
        *next_cursor = next;
        *more = extra;
        out = NULL;
        count = 0;
    }
    store_audit_rows_free(out, count);
    PQclear(r);
    return rc;
}

static int pg_audit_range(struct store *s, uint64_t from, uint32_t limit,
                          struct store_audit_row **rows, size_t *n)
{
    struct pq_args a = {0};
    pq_u64(&a, from);
    pq_i64(&a, limit);
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_AUDIT_RANGE, &a, &r, "audit_range");
    if (rc != CASENET_OK)
        return rc;
    size_t count = (size_t)PQntuples(r), done = 0;
    struct store_audit_row *out = count ? calloc(count, sizeof *out) : NULL;
    rc = count && !out ? CASENET_ENOMEM : CASENET_OK;
    for (; rc == CASENET_OK && done < count; done++) {
        out[done].index = (uint64_t)pq_col_i64(r, (int)done, 0);
        rc = pq_col_buf(r, (int)done, 1, &out[done].event);
    }
    if (rc == CASENET_OK) {
        *rows = out;
        *n = count;
        out = NULL;
    }
    store_audit_rows_free(out, done);
    PQclear(r);
    return rc;
}

static int pg_audit_visible(struct store *s, const char *member, uint64_t index, bool *visible)
{
    if (index > INT64_MAX) {
        *visible = false;
        return CASENET_OK;
    }
    struct pq_args a = {0};
    pq_text(&a, member);
    pq_u64(&a, index);
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_AUDIT_VISIBLE, &a, &r, "audit_visible");
    if (rc == CASENET_OK) {
        *visible = PQntuples(r) > 0;
        PQclear(r);
    }
    return rc;
}

/* ------------------------------------------------------------ tree heads */

static int read_head(const PGresult *r, int i, struct store_head *h)
{
    memset(h, 0, sizeof *h);
    h->size = (uint64_t)pq_col_i64(r, i, 0);
    h->time_ms = pq_col_i64(r, i, 1);
    if (!pq_col_fixed(r, i, 2, h->root, sizeof h->root)) {
        log_event(LOG_ERROR, "store_corrupt", "table", "tree_heads", "size", log_u64(h->size),
                  NULL);
        return CASENET_EUNAVAIL;
    }
    return pq_col_buf(r, i, 3, &h->checkpoint);
}

static int pg_head_save(struct store *s, const struct store_head *h)
{
    if (h->size > INT64_MAX)
        return CASENET_ETOOLARGE;
    struct pq_args a = {0};
    pq_u64(&a, h->size);
    pq_i64(&a, h->time_ms);
    pq_blob(&a, h->root, sizeof h->root);
    pq_blob(&a, h->checkpoint.data, h->checkpoint.len);
    uint64_t touched = 0;
    int rc = pq_write(s, PQ_HEAD_SAVE, &a, &touched, "head_save");
    return rc == CASENET_OK && touched == 0 ? CASENET_ECONFLICT : rc;
}

/* Runs a head statement answering at most one row. */
static int one_head(struct store *s, enum pq_stmt which, const struct pq_args *a,
                    struct store_head *out, const char *what)
{
    PGresult *r = NULL;
    int rc = pq_run(s, which, a, &r, what);
    if (rc != CASENET_OK)
        return rc;
    struct store_head h;
    if (PQntuples(r) == 0)
        rc = CASENET_ENOTFOUND;
    else if ((rc = read_head(r, 0, &h)) == CASENET_OK)
        *out = h;
    else
        store_head_clear(&h);
    PQclear(r);
    return rc;
}

static int pg_head_get(struct store *s, uint64_t size, struct store_head *out)
{
    if (size > INT64_MAX)
        return CASENET_ENOTFOUND;
    struct pq_args a = {0};
    pq_u64(&a, size);
    return one_head(s, PQ_HEAD_GET, &a, out, "head_get");
}

static int pg_head_latest(struct store *s, struct store_head *out)
{
    return one_head(s, PQ_HEAD_LATEST, NULL, out, "head_latest");
}

static int pg_head_list(struct store *s, uint64_t after, uint64_t upto, uint32_t limit,
                        struct store_head **heads, size_t *n)
{
    struct pq_args a = {0};
    pq_u64(&a, after);
    pq_u64(&a, upto);
    pq_i64(&a, limit);
    PGresult *r = NULL;
    int rc = pq_run(s, PQ_HEAD_LIST, &a, &r, "head_list");
    if (rc != CASENET_OK)
        return rc;
    size_t count = (size_t)PQntuples(r), done = 0;
    struct store_head *out = count ? calloc(count, sizeof *out) : NULL;
    rc = count && !out ? CASENET_ENOMEM : CASENET_OK;
    for (; rc == CASENET_OK && done < count; done++)
        rc = read_head(r, (int)done, &out[done]);
    if (rc == CASENET_OK) {
        *heads = out;
        *n = count;
        out = NULL;
    }
    store_heads_free(out, done);
    PQclear(r);
    return rc;
}

const struct store_audit_ops pq_audit_ops = {
    .event_count = pg_event_count,
    .event_append = pg_event_append,
    .event_keys_set = pg_event_keys_set,
    .node_put = pg_node_put,
    .node_get = pg_node_get,
    .node_leaves = pg_node_leaves,
    .audit_query = pg_audit_query,
    .audit_range = pg_audit_range,
    .audit_visible = pg_audit_visible,
    .head_save = pg_head_save,
    .head_get = pg_head_get,
    .head_latest = pg_head_latest,
    .head_list = pg_head_list,
};
