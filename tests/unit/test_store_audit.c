/* test_store_audit.c - the audit log tree (broker/store_audit.c) over the
 * SQLite store, with what only SQLite can show (rows removed behind its back):
 * the compact range follows commits, savepoint rollbacks and batch
 * rollbacks; it reloads at open; proofs from the stored subtrees verify at
 * every size; events without subtrees (an older schema, lost nodes) are
 * rebuilt; an append that fails after its first row (it has no savepoint
 * of its own) leaves nothing behind once its request or batch is rolled
 * back, and no batch commits it; a log cut short outside the broker grows
 * again; audit queries
 * (filters, visibility, paging, the examined cap) and signed heads. */
#include "testlib.h"

#include "casenet.pb-c.h"
#include "merkle.h"
#include "store.h"
#include "store_sql.h"
#include "store_sqlite_impl.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 64

/* The events appended so far, to recompute roots independently. */
struct log {
    char *dir;
    struct store *s;
    size_t n;
    casenet_buf ev[MAX_EVENTS * 2];
};

static casenet_buf make_event(uint64_t index, int kind, const char *actor,
                              const char *const *parties, size_t n_parties, uint8_t mid_byte,
                              int64_t time_ms)
{
    Casenet__V1__AuditEvent e = CASENET__V1__AUDIT_EVENT__INIT;
    uint8_t mid[16];
    memset(mid, mid_byte, sizeof mid);
    e.index = index;
    e.time_ms = time_ms;
    e.kind = (Casenet__V1__AuditKind)kind;
    e.actor = (char *)(actor ? actor : "");
    e.parties = (char **)parties;
    e.n_parties = n_parties;
    if (mid_byte) {
        e.message_id.data = mid;
        e.message_id.len = sizeof mid;
        e.case_ref.data = mid; /* same bytes, another column */
        e.case_ref.len = sizeof mid;
    }
    casenet_buf b;
    b.len = casenet__v1__audit_event__get_packed_size(&e);
    b.data = malloc(b.len);
    assert_non_null(b.data);
    casenet__v1__audit_event__pack(&e, b.data);
    return b;
}

/* Appends one event inside the caller's transaction; records it in l only
 * when keep (the caller commits). */
static void append(struct log *l, int kind, const char *actor, uint8_t mid_byte, int64_t t,
                   bool keep)
{
    uint64_t idx = 99;
    assert_int_equal(store_audit_next_index(l->s, &idx), CASENET_OK);
    const char *parties[2] = {actor, "vn.police"};
    casenet_buf b = make_event(idx, kind, actor, parties, actor ? 2 : 0, mid_byte, t);
    assert_int_equal(store_audit_append(l->s, idx, t, kind, parties, actor ? 2 : 0, b.data, b.len),
                     CASENET_OK);
    if (keep) {
        assert_int_equal(idx, l->n);
        l->ev[l->n++] = b;
    } else {
        free(b.data);
    }
}

/* Appends and commits n events. */
static void append_n(struct log *l, size_t n)
{
    assert_int_equal(store_begin(l->s), CASENET_OK);
    for (size_t i = 0; i < n; i++)
        append(l, 1, i % 2 ? "vn.hotline" : "vn.molisa", (uint8_t)(l->n + 1), 1000 + (int64_t)l->n,
               true);
    assert_int_equal(store_commit(l->s), CASENET_OK);
}

static void local_root(const struct log *l, size_t n, uint8_t out[32])
{
    struct merkle_stack st;
    merkle_stack_init(&st);
    for (size_t i = 0; i < n; i++) {
        uint8_t leaf[32];
        merkle_leaf_hash(l->ev[i].data, l->ev[i].len, leaf);
        assert_int_equal(merkle_stack_push(&st, leaf, NULL, NULL), CASENET_OK);
    }
    merkle_stack_root(&st, out);
}

static void check_tree(const struct log *l)
{
    uint64_t size = 0;
    uint8_t root[32], want[32];
    assert_int_equal(store_audit_tree(l->s, &size, root), CASENET_OK);
    assert_int_equal(size, l->n);
    local_root(l, l->n, want);
    assert_memory_equal(root, want, 32);
}

static void reopen(struct log *l)
{
    store_close(l->s);
    l->s = NULL;
    assert_int_equal(store_open(l->dir, &l->s), CASENET_OK);
}

static int setup(void **state)
{
    struct log *l = calloc(1, sizeof *l);
    l->dir = tl_tmpdir();
    assert_int_equal(store_open(l->dir, &l->s), CASENET_OK);
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    struct log *l = *state;
    if (l->s)
        store_close(l->s);
    for (size_t i = 0; i < l->n; i++)
        free(l->ev[i].data);
    tl_rmrf(l->dir);
    free(l->dir);
    free(l);
    return 0;
}

static int node(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
    struct store *s = ctx;
    return store_audit_node_get(s, level, index, out);
}

static void sql(const struct log *l, const char *q)
{
    char *path = tl_path(l->dir, "casenet.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", q, err);
    sqlite3_close(db);
    free(path);
}

/* ------------------------------------------------------------ tests */

static void test_tree_follows_rollbacks(void **state)
{
    struct log *l = *state;
    check_tree(l); /* empty */
    append_n(l, 3);
    check_tree(l);
    /* A request savepoint rolled back: its event and subtrees vanish. */
    struct store *s = l->s;
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    append(l, 2, "vn.hotline", 0xaa, 5000, false);
    append(l, 2, "vn.hotline", 0xab, 5001, false);
    store_rollback_to(s);
    append(l, 1, "vn.molisa", 0x44, 5002, true); /* reuses index 3 */
    assert_int_equal(store_savepoint(s), CASENET_OK);
    append(l, 1, "vn.molisa", 0x45, 5003, true);
    assert_int_equal(store_release(s), CASENET_OK);
    assert_int_equal(store_commit(s), CASENET_OK);
    check_tree(l);
    /* A batch rolled back. */
    assert_int_equal(store_begin(s), CASENET_OK);
    append(l, 1, "vn.hotline", 0x77, 6000, false);
    append(l, 1, "vn.hotline", 0x78, 6001, false);
    store_rollback(s);
    check_tree(l);
    reopen(l);
    check_tree(l);
    append_n(l, 1);
    check_tree(l);
}

/* The rows and the tree agree: as many events as leaves, every event filed
 * under its two parties, and as many stored subtrees as a log of that size
 * has (2n - popcount(n)). */
static void check_rows(const struct log *l)
{
    struct store *s = l->s;
    uint64_t next = 99;
    assert_int_equal(store_audit_next_index(s, &next), CASENET_OK);
    assert_int_equal(next, l->n);
    assert_int_equal(store_sql_count(s, "SELECT count(*) FROM audit"), (int64_t)l->n);
    assert_int_equal(store_sql_count(s, "SELECT count(*) FROM audit_parties"), 2 * (int64_t)l->n);
    assert_int_equal(store_sql_count(s, "SELECT count(*) FROM audit_nodes"),
                     2 * (int64_t)l->n - __builtin_popcountll(l->n));
    check_tree(l);
}

/* An append refused by a trigger: after its event row (a party), or after
 * its leaf and first subtree (the level-2 subtree it completes). */
static void fail_append(struct log *l, bool at_party)
{
    struct store *s = l->s;
    uint64_t idx = 99;
    assert_int_equal(store_audit_next_index(s, &idx), CASENET_OK);
    const char *parties[2] = {"vn.molisa", at_party ? "vn.refused" : "vn.police"};
    casenet_buf b = make_event(idx, 1, "vn.molisa", parties, 2, 0x5a, 7000);
    uint64_t size = 0;
    uint8_t root[32], after[32];
    assert_int_equal(store_audit_tree(s, &size, root), CASENET_OK);
    assert_int_equal(store_audit_append(s, idx, 7000, 1, parties, 2, b.data, b.len),
                     CASENET_EUNAVAIL);
    /* The tree did not take the leaf, and nothing more is appended while
     * the partial rows are there. */
    uint64_t size_after = 0;
    assert_int_equal(store_audit_tree(s, &size_after, after), CASENET_OK);
    assert_int_equal(size_after, size);
    assert_memory_equal(after, root, 32);
    assert_int_equal(store_audit_append(s, idx, 7000, 1, parties, 1, b.data, b.len),
                     CASENET_EUNAVAIL);
    free(b.data);
}

static void test_failed_append_is_rolled_back(void **state)
{
    struct log *l = *state;
    struct store *s = l->s;
    sql(l, "CREATE TRIGGER refuse_party BEFORE INSERT ON audit_parties"
           " WHEN NEW.member = 'vn.refused' BEGIN SELECT RAISE(ABORT, 'test'); END;"
           "CREATE TRIGGER refuse_level_2 BEFORE INSERT ON audit_nodes"
           " WHEN NEW.level = 2 AND NEW.last >= 8 BEGIN SELECT RAISE(ABORT, 'test'); END;");
    append_n(l, 3);

    /* In a request savepoint, after a kept request: rolling the request
     * back leaves rows and tree as they were before it. */
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    append(l, 1, "vn.hotline", 0x31, 6000, true);
    assert_int_equal(store_release(s), CASENET_OK);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    append(l, 2, "vn.hotline", 0x32, 6001, false);
    fail_append(l, true);
    store_rollback_to(s);
    check_rows(l);
    append(l, 1, "vn.hotline", 0x33, 6002, true); /* appends again */
    assert_int_equal(store_commit(s), CASENET_OK);
    check_rows(l);

    /* Leaf and level-1 subtree written, level 2 refused (index 11 closes
     * [8, 12)): the same, with subtrees. */
    append_n(l, 6);
    assert_int_equal(l->n, 11);
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    fail_append(l, false);
    store_rollback_to(s);
    check_rows(l);
    assert_int_equal(store_commit(s), CASENET_OK);
    sql(l, "DROP TRIGGER refuse_level_2;");

    /* Without a savepoint (a Submit), or in one released over the partial
     * rows: the batch does not commit them, and rolls back whole. */
    for (int released = 0; released < 2; released++) {
        assert_int_equal(store_begin(s), CASENET_OK);
        append(l, 1, "vn.hotline", 0x40, 8000, false);
        if (released)
            assert_int_equal(store_savepoint(s), CASENET_OK);
        fail_append(l, true);
        if (released)
            assert_int_equal(store_release(s), CASENET_OK);
        assert_int_equal(store_commit(s), CASENET_EUNAVAIL);
        check_rows(l);
    }
    /* Nested: the inner request's rollback is enough; an outer one's
     * partial rows are not undone by an inner rollback. */
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    fail_append(l, true);
    store_rollback_to(s);
    append(l, 1, "vn.hotline", 0x41, 8001, true);
    assert_int_equal(store_release(s), CASENET_OK);
    fail_append(l, true);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    store_rollback_to(s);
    assert_int_equal(store_commit(s), CASENET_EUNAVAIL);
    l->n--; /* event 0x41 went with its batch */
    free(l->ev[l->n].data);
    check_rows(l);

    /* Committed and reopened: the stored subtrees give the same tree. */
    append_n(l, 2);
    reopen(l);
    check_rows(l);
}

/* audit_next_index as the rows say it, inside the store's transaction. */
static void check_next(struct store *s)
{
    uint64_t next = 99;
    assert_int_equal(store_audit_next_index(s, &next), CASENET_OK);
    assert_int_equal((int64_t)next,
                     store_sql_count(s, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit"));
}

/* The next index comes from the tree (the rows are compared once per
 * transaction): it follows every rollback, a torn append, and finds rows
 * written or removed outside the broker between two transactions, or taken
 * away by a rollback the store did not ask for. */
static void test_next_index_follows_the_rows(void **state)
{
    struct log *l = *state;
    struct store *s = l->s;
    check_next(s); /* empty, outside a transaction */
    append_n(l, 2);
    assert_int_equal(store_begin(s), CASENET_OK);
    check_next(s);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    append(l, 1, "vn.hotline", 0x61, 9000, false);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    append(l, 1, "vn.hotline", 0x62, 9001, false);
    check_next(s);
    store_rollback_to(s); /* inner */
    check_next(s);
    store_rollback_to(s); /* outer */
    check_next(s);
    append(l, 1, "vn.molisa", 0x63, 9002, true);
    check_next(s);
    assert_int_equal(store_commit(s), CASENET_OK);
    check_next(s);
    assert_int_equal(store_begin(s), CASENET_OK);
    append(l, 1, "vn.molisa", 0x64, 9003, false);
    store_rollback(s);
    check_next(s);

    /* A torn append (a trigger refuses its second party): the next index
     * stays the tree's, and is the rows' again after the rollback. */
    sql(l, "CREATE TRIGGER refuse_party BEFORE INSERT ON audit_parties"
           " WHEN NEW.member = 'vn.refused' BEGIN SELECT RAISE(ABORT, 'test'); END;");
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_savepoint(s), CASENET_OK);
    fail_append(l, true);
    uint64_t next = 99;
    assert_int_equal(store_audit_next_index(s, &next), CASENET_OK);
    assert_int_equal(next, l->n);
    store_rollback_to(s);
    check_next(s);
    append(l, 1, "vn.molisa", 0x65, 9004, true);
    assert_int_equal(store_commit(s), CASENET_OK);
    check_rows(l);

    /* A row added outside the broker between two transactions: the next
     * one refuses to number or append an event, and writes nothing. */
    sql(l, "INSERT INTO audit (idx, time_ms, kind, event) VALUES (100, 0, 1, x'00');");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(store_begin(s), CASENET_OK);
        if (i == 0) {
            assert_int_equal(store_audit_next_index(s, &next), CASENET_EUNAVAIL);
        } else {
            const char *p[1] = {"vn.molisa"};
            casenet_buf b = make_event(l->n, 1, "vn.molisa", p, 1, 0, 9005);
            assert_int_equal(store_audit_append(s, l->n, 9005, 1, p, 1, b.data, b.len),
                             CASENET_EUNAVAIL);
            free(b.data);
        }
        store_rollback(s);
    }
    assert_int_equal(store_audit_next_index(s, &next), CASENET_EUNAVAIL); /* outside */
    /* Removed again: the rows and the tree agree, appends resume. */
    sql(l, "DELETE FROM audit WHERE idx = 100;");
    append_n(l, 1);
    check_rows(l);
    /* The last row removed outside the broker: found the same way. */
    char q[128];
    snprintf(q, sizeof q,
             "DELETE FROM audit_parties WHERE idx = %zu; DELETE FROM audit WHERE idx = %zu;",
             l->n - 1, l->n - 1);
    sql(l, q);
    free(l->ev[--l->n].data);
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_audit_next_index(s, &next), CASENET_EUNAVAIL);
    store_rollback(s);

    /* A transaction rolled back by SQLite itself (as on an I/O error),
     * after an event: the tree is ahead of the rows, and the store says so
     * instead of numbering the next event from it. */
    reopen(l); /* the tree from the rows */
    check_tree(l);
    s = l->s;
    assert_int_equal(store_begin(s), CASENET_OK);
    append(l, 1, "vn.molisa", 0x66, 9006, false);
    assert_int_equal(sqlite3_exec(sq_db(s), "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(store_audit_next_index(s, &next), CASENET_EUNAVAIL);
    store_rollback(s);
    check_next(s);
}

static void test_proofs_every_size(void **state)
{
    struct log *l = *state;
    const size_t total = 40;
    append_n(l, 17);
    reopen(l); /* the compact range comes back from the stored subtrees */
    append_n(l, total - 17);
    check_tree(l);
    uint8_t proof[MERKLE_PROOF_MAX][32];
    for (size_t n = 1; n <= total; n++) {
        uint8_t root[32];
        local_root(l, n, root);
        uint8_t got[32];
        assert_int_equal(merkle_root_at(node, l->s, n, got), CASENET_OK);
        assert_memory_equal(got, root, 32);
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            uint8_t leaf[32];
            merkle_leaf_hash(l->ev[i].data, l->ev[i].len, leaf);
            assert_int_equal(merkle_inclusion_proof(node, l->s, i, n, proof, MERKLE_PROOF_MAX, &k),
                             CASENET_OK);
            assert_int_equal(
                merkle_verify_inclusion(leaf, i, n, (const uint8_t(*)[32])proof, k, root),
                CASENET_OK);
        }
        for (size_t m = 1; m <= n; m++) {
            uint8_t root1[32];
            size_t k = 0;
            local_root(l, m, root1);
            assert_int_equal(
                merkle_consistency_proof(node, l->s, m, n, proof, MERKLE_PROOF_MAX, &k),
                CASENET_OK);
            assert_int_equal(
                merkle_verify_consistency(m, n, (const uint8_t(*)[32])proof, k, root1, root),
                CASENET_OK);
        }
    }
}

static void test_rebuild_missing_subtrees(void **state)
{
    struct log *l = *state;
    append_n(l, 37);
    store_close(l->s);
    l->s = NULL;
    /* As a schema-1 database would be: no subtrees, no index keys. */
    sql(l, "DELETE FROM audit_nodes; UPDATE audit SET message_id = NULL, case_ref = NULL;");
    assert_int_equal(store_open(l->dir, &l->s), CASENET_OK);
    check_tree(l);
    uint8_t mid[16];
    memset(mid, 5, sizeof mid); /* event 4's */
    struct store_audit_filter f = {.message_id = mid};
    struct store_audit_row *rows = NULL;
    size_t n = 0;
    uint64_t next = 0;
    bool more = true;
    assert_int_equal(store_audit_query(l->s, &f, 0, 10, 100, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].index, 4);
    assert_false(more);
    store_audit_rows_free(rows, n);
    /* Upper subtrees lost: rebuilt from the events. */
    store_close(l->s);
    l->s = NULL;
    sql(l, "DELETE FROM audit_nodes WHERE level = 5;");
    assert_int_equal(store_open(l->dir, &l->s), CASENET_OK);
    check_tree(l);
    append_n(l, 3);
    check_tree(l);
}

static void test_log_cut_short_grows_again(void **state)
{
    struct log *l = *state;
    append_n(l, 20);
    store_close(l->s);
    l->s = NULL;
    sql(l, "DELETE FROM audit_parties WHERE idx = 19; DELETE FROM audit WHERE idx = 19;");
    free(l->ev[19].data);
    l->n = 19;
    assert_int_equal(store_open(l->dir, &l->s), CASENET_OK);
    check_tree(l);
    append_n(l, 5); /* index 19 again, other bytes: its subtrees are replaced */
    check_tree(l);
    reopen(l);
    check_tree(l);
}

static void test_query_filters_and_paging(void **state)
{
    struct log *l = *state;
    struct store *s = l->s;
    /* 0, 2, 4, ...: vn.molisa (+ vn.police); odd: vn.hotline (+ vn.police);
     * event i has message id bytes i + 1 and time 1000 + i. */
    append_n(l, 30);
    assert_int_equal(store_begin(s), CASENET_OK);
    append(l, 11, NULL, 0, 2000, true); /* 30: no parties (BROKER_START) */
    assert_int_equal(store_commit(s), CASENET_OK);
    struct store_audit_row *rows = NULL;
    size_t n = 0;
    uint64_t next = 0;
    bool more = false;

    struct store_audit_filter all = {0};
    assert_int_equal(store_audit_query(s, &all, 0, 100, 1000, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 31);
    assert_false(more);
    assert_int_equal(next, 31);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].index, i);
        assert_int_equal(rows[i].event.len, l->ev[i].len);
        assert_memory_equal(rows[i].event.data, l->ev[i].data, l->ev[i].len);
    }
    store_audit_rows_free(rows, n);

    /* A member sees only its own; paging by 4. */
    struct store_audit_filter mine = {.member = "vn.hotline"};
    uint64_t cursor = 0;
    size_t seen = 0;
    do {
        assert_int_equal(store_audit_query(s, &mine, cursor, 4, 1000, &rows, &n, &next, &more),
                         CASENET_OK);
        assert_true(n <= 4);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(rows[i].index % 2, 1);
        seen += n;
        store_audit_rows_free(rows, n);
        assert_true(next > cursor || !more);
        cursor = next;
    } while (more);
    assert_int_equal(seen, 15);

    /* Message id + member: event 9 (odd: vn.hotline) visible, 8 not. */
    uint8_t mid[16];
    memset(mid, 10, sizeof mid);
    struct store_audit_filter f = {.member = "vn.hotline", .message_id = mid};
    assert_int_equal(store_audit_query(s, &f, 0, 10, 1000, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].index, 9);
    store_audit_rows_free(rows, n);
    memset(mid, 9, sizeof mid);
    assert_int_equal(store_audit_query(s, &f, 0, 10, 1000, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 0);
    /* The same by case reference. */
    struct store_audit_filter fc = {.member = "vn.molisa", .case_ref = mid};
    assert_int_equal(store_audit_query(s, &fc, 0, 10, 1000, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].index, 8);
    store_audit_rows_free(rows, n);

    /* Time range and kind. */
    struct store_audit_filter ft = {.from_ms = 1010, .to_ms = 1013};
    assert_int_equal(store_audit_query(s, &ft, 0, 10, 1000, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].index, 10);
    assert_int_equal(rows[2].index, 12);
    store_audit_rows_free(rows, n);
    struct store_audit_filter fk = {.kind = 11};
    assert_int_equal(store_audit_query(s, &fk, 0, 10, 1000, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].index, 30);
    store_audit_rows_free(rows, n);
    struct store_audit_filter fkm = {.kind = 11, .member = "vn.police"};
    assert_int_equal(store_audit_query(s, &fkm, 0, 10, 1000, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 0); /* filed under no member */

    /* The examined cap: a page may come back short, with more set. */
    assert_int_equal(store_audit_query(s, &ft, 0, 10, 5, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 0);
    assert_true(more);
    assert_int_equal(next, 5);
    assert_int_equal(store_audit_query(s, &ft, next, 10, 7, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, 2); /* 10, 11 of 5..11 */
    assert_true(more);
    assert_int_equal(next, 12);
    store_audit_rows_free(rows, n);

    bool visible = false;
    assert_int_equal(store_audit_visible(s, "vn.hotline", 9, &visible), CASENET_OK);
    assert_true(visible);
    assert_int_equal(store_audit_visible(s, "vn.hotline", 8, &visible), CASENET_OK);
    assert_false(visible);

    /* Ranges for export. */
    assert_int_equal(store_audit_range(s, 28, 10, &rows, &n), CASENET_OK);
    assert_int_equal(n, 3);
    assert_int_equal(rows[2].index, 30);
    store_audit_rows_free(rows, n);
    assert_int_equal(store_audit_range(s, 31, 10, &rows, &n), CASENET_OK);
    assert_int_equal(n, 0);
}

static void test_heads(void **state)
{
    struct log *l = *state;
    struct store *s = l->s;
    struct store_head h = {0}, got = {0};
    assert_int_equal(store_head_latest(s, &got), CASENET_ENOTFOUND);
    const uint64_t sizes[] = {3, 7, 10};
    assert_int_equal(store_begin(s), CASENET_OK);
    for (size_t i = 0; i < 3; i++) {
        h.size = sizes[i];
        h.time_ms = 100 + (int64_t)i;
        memset(h.root, (int)sizes[i], sizeof h.root);
        char text[32];
        snprintf(text, sizeof text, "head %llu", (unsigned long long)sizes[i]);
        h.checkpoint.data = (uint8_t *)text;
        h.checkpoint.len = strlen(text);
        assert_int_equal(store_head_save(s, &h), CASENET_OK);
    }
    assert_int_equal(store_head_save(s, &h), CASENET_ECONFLICT);
    assert_int_equal(store_commit(s), CASENET_OK);
    assert_int_equal(store_head_latest(s, &got), CASENET_OK);
    assert_int_equal(got.size, 10);
    assert_int_equal(got.time_ms, 102);
    assert_int_equal(got.checkpoint.len, strlen("head 10"));
    assert_memory_equal(got.checkpoint.data, "head 10", got.checkpoint.len);
    store_head_clear(&got);
    assert_int_equal(store_head_get(s, 7, &got), CASENET_OK);
    assert_int_equal(got.root[0], 7);
    store_head_clear(&got);
    assert_int_equal(store_head_get(s, 8, &got), CASENET_ENOTFOUND);
    struct store_head *hs = NULL;
    size_t n = 0;
    assert_int_equal(store_head_list(s, 3, 10, 10, &hs, &n), CASENET_OK);
    assert_int_equal(n, 2);
    assert_int_equal(hs[0].size, 7);
    assert_int_equal(hs[1].size, 10);
    store_heads_free(hs, n);
    assert_int_equal(store_head_list(s, 0, 9, 1, &hs, &n), CASENET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(hs[0].size, 3);
    store_heads_free(hs, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tree_follows_rollbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_append_is_rolled_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_index_follows_the_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proofs_every_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_missing_subtrees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_cut_short_grows_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_filters_and_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
