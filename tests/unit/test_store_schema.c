/* test_store_schema.c - the SQLite store's schema (broker/store_sqlite.c):
 * every statement the store prepares reads its large tables through an index
 * (EXPLAIN QUERY PLAN shows no full SCAN, and the hot lookups use the index
 * meant for them), and the check itself fails when a needed index is
 * dropped; inbox rows keep (recipient, message id) unique
 * across message rows and receipt rows, whether the message is named by id
 * or by its row (Submit), and inbox_receipt_row finds receipt rows only; a database written before
 * the schema step that reshaped the indexes (found by its SQL, not by number) migrates forward and
 * answers every lookup, its audit tree included; and deadlines written before they were keyed by
 * (seq, kind) keep every row and state, and page through the overdue list once each; a store
 * from before schema 8 answers queries by kind, paged by what a call may examine, and numbers
 * new inbox rows after its highest without AUTOINCREMENT. */
#include "testlib.h"

#include "casenet.pb-c.h"
#include "merkle.h"
#include "store.h"
#include "rows.h"
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
#include <sys/stat.h>

#define HOTLINE "vn.hotline"
#define POLICE  "vn.police"
#define COORD   "vn.coord"
#define MOLISA  "vn.molisa"

/* Tables that grow with traffic: a statement may never read one in full. */
static const char *const large_tables[] = {
    "messages",    "inbox",     "receipts", "audit",      "audit_parties",
    "audit_nodes", "deadlines", "steps",    "tree_heads", "directories",
};

/* Full scans that stay O(1): the newest row by primary key (LIMIT 1 read
 * from the end). Exact statement texts, so that any other is checked. */
static const char *const scan_allowed[] = {
    "SELECT version, signed FROM directories ORDER BY version DESC LIMIT 1",
    "SELECT size, time_ms, root, checkpoint FROM tree_heads ORDER BY size DESC LIMIT 1",
};

/* The index a statement must use, beyond avoiding a full scan: without it
 * the statement would still SEARCH, but through a prefix that reads a whole
 * inbox, log or member's rows. Keyed by a fragment of the statement's SQL;
 * every entry must match at least one statement. KEY: the table's own key
 * (a WITHOUT ROWID table's PRIMARY KEY). */
#define KEY "PRIMARY KEY"
static const struct {
    const char *sql;
    const char *index;
} expected[] = {
    {"FROM inbox WHERE msg IS NULL AND recipient = ?1 AND message_id = ?2", "inbox_unlinked"},
    {"WHERE msg = (SELECT id FROM messages WHERE message_id = ?2) AND recipient = ?1",
     "inbox_msg_recipient"},
    {"FROM inbox WHERE recipient = ?1 AND msg = (SELECT id", "inbox_msg_recipient"},
    {"FROM inbox WHERE recipient = ?1 AND state = 1 AND seq > ?2", "inbox_recipient_state_seq"},
    {"FROM inbox WHERE recipient = ?1 AND state = ?4 AND seq > ?2", "inbox_recipient_state_seq"},
    {"WHERE a.msg_key = (SELECT audit_index", "audit_msg_key"},
    {"WHERE a.msg_key IS NULL AND a.message_id = ?2", "audit_message_unkeyed"},
    {"WHERE a.case_ref = ?2", "audit_case_ref"},
    {"FROM messages WHERE sender = ?1 AND id > ?2", "messages_sender"},
    {"FROM messages WHERE message_id = ?1", "sqlite_autoindex_messages_1"},
    {"FROM deadlines WHERE state = 1 AND due_ms <= ?1", "deadlines_pending"},
    {"WHERE d.state = 3 AND (d.seq, d.kind) > (?1, ?3)", "deadlines_breached"},
    {"FROM deadlines WHERE seq = ?1", KEY},
    {"UPDATE deadlines SET state = ?3", KEY},
    {"FROM steps WHERE seq = ?1", "steps_seq"},
    {"FROM receipts WHERE message_id = ?1", "receipts_message"},
};

/* Off while the drop test provokes bad plans on purpose. */
static bool report = true;

struct fx {
    char *dir;
    struct store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = tl_tmpdir();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->s)
        store_close(f->s);
    tl_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void exec_sql(sqlite3 *db, const char *q)
{
    char *err = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", q, err);
}

/* The name a plan line "SCAN x ..." reads, in out. */
static bool scanned_name(const char *detail, char *out, size_t cap)
{
    if (strncmp(detail, "SCAN ", 5) != 0)
        return false;
    const char *p = detail + 5;
    size_t n = strcspn(p, " ");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
    return true;
}

/* Whether the plan of one statement scans a large table in full or misses
 * an index it is expected to use (expected[]; *matched counts the entries
 * that apply); prints what is wrong. Aliases are resolved by the table list
 * of the statement ("FROM audit a": a scan of "a" is a scan of audit). */
static bool bad_plan(sqlite3 *db, const char *q, bool *matched)
{
    bool allowed = false;
    for (size_t i = 0; i < sizeof scan_allowed / sizeof *scan_allowed; i++)
        allowed = allowed || strcmp(q, scan_allowed[i]) == 0;
    char plan[4096] = "";
    char *eqp = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", q);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, eqp, -1, &st, NULL) != SQLITE_OK)
        fail_msg("cannot explain %s: %s", q, sqlite3_errmsg(db));
    sqlite3_free(eqp);
    bool bad = false;
    if (getenv("STORE_PLANS"))
        print_message("%s\n", q);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        if (getenv("STORE_PLANS"))
            print_message("    %s\n", detail ? detail : "");
        if (detail && strlen(plan) + strlen(detail) + 2 < sizeof plan) {
            strcat(plan, detail);
            strcat(plan, "\n");
        }
        char name[64];
        if (allowed || !detail || !scanned_name(detail, name, sizeof name))
            continue;
        for (size_t i = 0; i < sizeof large_tables / sizeof *large_tables; i++) {
            char as_alias[96];
            snprintf(as_alias, sizeof as_alias, "%s %s ", large_tables[i], name);
            char as_alias_end[96];
            snprintf(as_alias_end, sizeof as_alias_end, "%s %s", large_tables[i], name);
            size_t ql = strlen(q), al = strlen(as_alias_end);
            bool aliased =
                strstr(q, as_alias) || (ql >= al && strcmp(q + ql - al, as_alias_end) == 0);
            if (strcmp(name, large_tables[i]) == 0 || aliased) {
                if (report)
                    print_message("full scan: %s\n  in: %s\n", detail, q);
                bad = true;
            }
        }
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
        if (!strstr(q, expected[i].sql))
            continue;
        matched[i] = true;
        char want[96];
        if (strcmp(expected[i].index, KEY) == 0)
            snprintf(want, sizeof want, "USING %s (", KEY);
        else
            snprintf(want, sizeof want, "INDEX %s (", expected[i].index);
        if (!strstr(plan, want)) {
            print_message("index %s not used\n  in: %s\n  plan:\n%s", expected[i].index, q, plan);
            bad = true;
        }
    }
    return bad;
}

/* Statements of the store with a bad plan (see bad_plan). */
static size_t count_bad_plans(sqlite3 *db)
{
    bool matched[sizeof expected / sizeof *expected] = {0};
    size_t bad = 0, i = 0;
    for (const char *q; (q = sq_statement_sql(i)); i++) {
        if (strncmp(q, "SELECT", 6) != 0 && strncmp(q, "INSERT", 6) != 0 &&
            strncmp(q, "UPDATE", 6) != 0 && strncmp(q, "DELETE", 6) != 0)
            continue; /* BEGIN, SAVEPOINT, ... */
        bad += bad_plan(db, q, matched);
    }
    assert_true(i > 30); /* both files' statements were seen */
    for (size_t k = 0; k < sizeof expected / sizeof *expected; k++)
        if (!matched[k])
            fail_msg("no statement contains \"%s\"", expected[k].sql);
    return bad;
}

static void test_every_statement_uses_an_index(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_open(f->dir, &f->s), CASENET_OK);
    assert_int_equal(count_bad_plans(sq_db(f->s)), 0);
}

/* The check is honest: without any one of the schema's own indexes (every
 * one is needed by some statement), it fails. */
static void test_dropped_index_is_caught(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_open(f->dir, &f->s), CASENET_OK);
    sqlite3 *db = sq_db(f->s);
    char names[32][64];
    size_t n = 0;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_schema WHERE type = 'index'"
                                        " AND sql IS NOT NULL ORDER BY name",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && n < 32)
        snprintf(names[n++], sizeof names[0], "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    assert_true(n >= 11);
    report = false;
    for (size_t i = 0; i < n; i++) {
        exec_sql(db, "BEGIN");
        char *q = sqlite3_mprintf("DROP INDEX \"%w\"", names[i]);
        exec_sql(db, q);
        sqlite3_free(q);
        if (count_bad_plans(db) == 0)
            fail_msg("no statement noticed that index %s is gone", names[i]);
        exec_sql(db, "ROLLBACK");
    }
    report = true;
    assert_int_equal(count_bad_plans(db), 0);
}

/* ------------------------------------------------------------ inbox keys */

static int64_t count_rows_sql(sqlite3 *db, const char *q)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static struct store_message message(uint8_t id_byte, uint64_t audit_index)
{
    struct store_message m = store_test_message(id_byte, HOTLINE);
    m.audit_index = audit_index;
    return m;
}

static struct store_inbox_row row_for(const char *recipient, uint8_t id_byte, int kind)
{
    return store_test_row(recipient, id_byte, kind,
                          kind == CASENET_KIND_RECEIPT ? POLICE : HOTLINE);
}

/* Opens the store, begins a batch and stores m in it. */
static struct store *open_with_message(struct fx *f, struct store_message *m)
{
    assert_int_equal(store_open(f->dir, &f->s), CASENET_OK);
    assert_int_equal(store_begin(f->s), CASENET_OK);
    assert_int_equal(store_message_insert(f->s, m), CASENET_OK);
    return f->s;
}

static void test_inbox_pairs_unique_across_kinds(void **state)
{
    struct fx *f = *state;
    struct store_message m = message(0x11, 0);
    struct store *s = open_with_message(f, &m);
    struct store_inbox_row r = row_for(POLICE, 0x11, CASENET_KIND_REFERRAL);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_OK);
    uint64_t first = r.seq;
    /* The same pair again: CONFLICT, by either kind. */
    r = row_for(POLICE, 0x11, CASENET_KIND_REFERRAL);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    r = row_for(POLICE, 0x11, CASENET_KIND_RECEIPT);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    /* A receipt row, then a message whose id is the receipt row's. */
    r = row_for(HOTLINE, 0x22, CASENET_KIND_RECEIPT);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_OK);
    uint64_t receipt_seq = r.seq;
    r = row_for(HOTLINE, 0x22, CASENET_KIND_RECEIPT);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    struct store_message m2 = message(0x22, 1);
    assert_int_equal(store_message_insert(s, &m2), CASENET_OK);
    r = row_for(HOTLINE, 0x22, CASENET_KIND_REFERRAL);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    /* A message row for an id no message has: refused, nothing stored. */
    r = row_for(POLICE, 0x33, CASENET_KIND_REFERRAL);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    struct store_inbox_row none = {0};
    assert_int_equal(store_inbox_get(s, POLICE, r.message_id, &none), CASENET_ENOTFOUND);
    r = row_for(POLICE, 0x22, CASENET_KIND_REFERRAL); /* another inbox: fine */
    assert_int_equal(store_inbox_insert(s, &r), CASENET_OK);
    /* A receipt row whose id is a stored message's, in an inbox without
     * that message's row: fine, stored whole, linked to no message. */
    r = row_for(HOTLINE, 0x11, CASENET_KIND_RECEIPT);
    r.receipt_status = CASENET_RECEIPT_DELIVERED;
    r.receipt.data = (uint8_t *)"signed receipt";
    r.receipt.len = 14;
    r.has_in_reply_to = true;
    memset(r.in_reply_to, 0x11, sizeof r.in_reply_to);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_OK);
    uint64_t receipt_11 = r.seq;
    r = row_for(HOTLINE, 0x11, CASENET_KIND_RECEIPT);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    assert_int_equal(store_commit(s), CASENET_OK);
    assert_int_equal(count_rows_sql(sq_db(s), "SELECT count(*) FROM inbox WHERE msg IS NULL"), 2);

    struct store_inbox_row got = {0};
    assert_int_equal(store_inbox_get(s, POLICE, m.message_id, &got), CASENET_OK);
    assert_int_equal(got.seq, first);
    store_inbox_row_clear(&got);
    assert_int_equal(store_inbox_get(s, HOTLINE, m2.message_id, &got), CASENET_OK);
    assert_int_equal(got.seq, receipt_seq);
    assert_int_equal(got.kind, CASENET_KIND_RECEIPT);
    store_inbox_row_clear(&got);
    assert_int_equal(store_inbox_get(s, HOTLINE, m.message_id, &got), CASENET_OK);
    assert_int_equal(got.seq, receipt_11);
    assert_int_equal(got.kind, CASENET_KIND_RECEIPT);
    assert_int_equal(got.receipt_status, CASENET_RECEIPT_DELIVERED);
    assert_true(got.has_in_reply_to);
    assert_int_equal(got.receipt.len, 14);
    assert_memory_equal(got.receipt.data, "signed receipt", 14);
    store_inbox_row_clear(&got);
    assert_int_equal(store_inbox_get(s, MOLISA, m.message_id, &got), CASENET_ENOTFOUND);
    /* inbox_receipt_row (Submit's check): receipt rows only. */
    bool taken = false;
    assert_int_equal(store_inbox_receipt_row(s, HOTLINE, m2.message_id, &taken), CASENET_OK);
    assert_true(taken);
    assert_int_equal(store_inbox_receipt_row(s, POLICE, m2.message_id, &taken), CASENET_OK);
    assert_false(taken); /* POLICE's row for 0x22 is a message row */
    taken = true;
    assert_int_equal(store_inbox_receipt_row(s, POLICE, m.message_id, &taken), CASENET_OK);
    assert_false(taken);
    taken = true;
    assert_int_equal(store_inbox_receipt_row(s, MOLISA, m.message_id, &taken), CASENET_OK);
    assert_false(taken);
    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(store_inbox_of_message(s, m2.message_id, &rows, &n), CASENET_OK);
    assert_int_equal(n, 1); /* the receipt row is not the message's */
    assert_string_equal(rows[0].recipient, POLICE);
    store_inbox_rows_free(rows, n);
}

/* The same pairs refused when the caller names the message by its row
 * (Submit: inbox_insert with msg_row), and a row number that is not the
 * message's refused too. */
static void test_inbox_pairs_unique_given_msg_row(void **state)
{
    struct fx *f = *state;
    struct store_message m = message(0x11, 0);
    struct store *s = open_with_message(f, &m);
    int64_t row_11 = store_message_last_rowid(s);
    struct store_inbox_row r = row_for(POLICE, 0x11, CASENET_KIND_REFERRAL);
    r.msg_row = row_11;
    assert_int_equal(store_inbox_insert(s, &r), CASENET_OK);
    uint64_t first = r.seq;
    r = row_for(POLICE, 0x11, CASENET_KIND_REFERRAL);
    r.msg_row = row_11;
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    r = row_for(POLICE, 0x11, CASENET_KIND_REFERRAL); /* by id: the same pair */
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    r = row_for(POLICE, 0x11, CASENET_KIND_RECEIPT);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    /* A receipt row, then a message whose id is the receipt row's. */
    r = row_for(HOTLINE, 0x22, CASENET_KIND_RECEIPT);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_OK);
    uint64_t receipt_seq = r.seq;
    struct store_message m2 = message(0x22, 1);
    assert_int_equal(store_message_insert(s, &m2), CASENET_OK);
    int64_t row_22 = store_message_last_rowid(s);
    assert_true(row_22 != row_11);
    r = row_for(HOTLINE, 0x22, CASENET_KIND_REFERRAL);
    r.msg_row = row_22;
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    /* Row numbers that are not this id's message: refused, also where no
     * other rule would refuse the row (an inbox without either message; a
     * row number that exists). */
    r = row_for(COORD, 0x22, CASENET_KIND_REFERRAL);
    r.msg_row = row_11;
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    r = row_for(POLICE, 0x22, CASENET_KIND_REFERRAL);
    r.msg_row = row_11;
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    r = row_for(POLICE, 0x22, CASENET_KIND_REFERRAL);
    r.msg_row = row_22 + 100;
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    r = row_for(POLICE, 0x22, CASENET_KIND_REFERRAL); /* another inbox: fine */
    r.msg_row = row_22;
    assert_int_equal(store_inbox_insert(s, &r), CASENET_OK);
    uint64_t police_22 = r.seq;
    assert_int_equal(store_commit(s), CASENET_OK);

    /* Linked to their messages as rows inserted by id are. */
    struct store_inbox_row got = {0};
    assert_int_equal(store_inbox_get(s, POLICE, m.message_id, &got), CASENET_OK);
    assert_int_equal(got.seq, first);
    store_inbox_row_clear(&got);
    assert_int_equal(store_inbox_get(s, HOTLINE, m2.message_id, &got), CASENET_OK);
    assert_int_equal(got.seq, receipt_seq);
    store_inbox_row_clear(&got);
    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(store_inbox_of_message(s, m2.message_id, &rows, &n), CASENET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].seq, police_22);
    store_inbox_rows_free(rows, n);
    assert_int_equal(store_inbox_of_message(s, m.message_id, &rows, &n), CASENET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].seq, first);
    store_inbox_rows_free(rows, n);
}

/* ------------------------------------------------------------ migration */

/* The migration step that reshaped the indexes: the one creating
 * inbox_msg_recipient. A database is made at the version before it. */
static int64_t reshape_step(void)
{
    for (size_t i = 0; sq_migration_sql(i); i++)
        if (strstr(sq_migration_sql(i), "CREATE UNIQUE INDEX inbox_msg_recipient"))
            return (int64_t)i;
    fail_msg("no migration creates inbox_msg_recipient");
    return -1;
}

static casenet_buf event(uint64_t index, int kind, uint8_t mid_byte)
{
    Casenet__V1__AuditEvent e = CASENET__V1__AUDIT_EVENT__INIT;
    uint8_t mid[16];
    memset(mid, mid_byte, sizeof mid);
    char *parties[2] = {HOTLINE, POLICE};
    e.index = index;
    e.time_ms = 1000 + (int64_t)index;
    e.kind = (Casenet__V1__AuditKind)kind;
    e.actor = HOTLINE;
    e.parties = parties;
    e.n_parties = 2;
    e.message_id.data = mid;
    e.message_id.len = sizeof mid;
    casenet_buf b;
    b.len = casenet__v1__audit_event__get_packed_size(&e);
    b.data = malloc(b.len);
    assert_non_null(b.data);
    casenet__v1__audit_event__pack(&e, b.data);
    return b;
}

/* merkle_on_complete writing the subtrees as the old schema kept them. */
static int old_put_node(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32])
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(ctx,
                                        "INSERT INTO audit_nodes (level, idx, hash)"
                                        " VALUES (?1, ?2, ?3)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)index);
    sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    return CASENET_OK;
}

static int no_node(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32])
{
    (void)ctx, (void)level, (void)index, (void)hash;
    return CASENET_OK;
}

/* Writes what a broker of the previous schema would have: messages 0xA1
 * (audit 0) and 0xB2 (audit 2) for POLICE, a receipt row 0xC3 in
 * HOTLINE's inbox, a deadline, and events SUBMITTED(A1), REJECTED(D4, never
 * stored), SUBMITTED(B2), FETCHED(A1) with their subtrees when old_nodes
 * (the rows alone suit the later schemas too, whose store rebuilds the
 * subtrees at open). Returns the root of those 4 events. */
static void write_old_store(const char *dir, uint8_t root[32], bool old_nodes)
{
    char *path = tl_path(dir, "casenet.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    free(path);
    exec_sql(db, "BEGIN");
    exec_sql(db, "INSERT INTO messages (id, message_id, sender, kind, urgency, msg_status,"
                 " created_at_ms, expires_at_ms, received_at_ms, envelope_hash, size, audit_index,"
                 " envelope, receipt) VALUES"
                 " (1, x'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', '" HOTLINE "', 1, 2, 1, 1000, 0, 1000,"
                 " zeroblob(32), 3, 0, x'010203', x'aa'),"
                 " (2, x'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2', '" HOTLINE "', 1, 2, 1, 1000, 0, 1002,"
                 " zeroblob(32), 3, 2, x'010203', x'bb');"
                 "INSERT INTO inbox (seq, recipient, message_id, msg, sender, kind, urgency,"
                 " msg_status, state, received_at_ms, created_at_ms, updated_at_ms, size) VALUES"
                 " (1, '" POLICE "', x'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 1, '" HOTLINE "', 1, 2,"
                 " 1, 1, 1000, 1000, 1000, 3),"
                 " (2, '" POLICE "', x'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2', 2, '" HOTLINE "', 1, 2,"
                 " 1, 2, 1002, 1000, 1003, 3),"
                 " (3, '" HOTLINE "', x'c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3', NULL, '" POLICE "', 20,"
                 " 2, 1, 1, 1004, 1004, 1004, 5);"
                 "INSERT INTO deadlines (seq, kind, due_ms) VALUES (1, 1, 99000);");
    uint8_t ids[4] = {0xa1, 0xd4, 0xb2, 0xa1};
    int kinds[4] = {1, 2, 1, 3};
    struct merkle_stack tree;
    merkle_stack_init(&tree);
    for (uint64_t i = 0; i < 4; i++) {
        casenet_buf b = event(i, kinds[i], ids[i]);
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "INSERT INTO audit (idx, time_ms, kind, event,"
                                            " message_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                                            -1, &st, NULL),
                         SQLITE_OK);
        uint8_t mid[16];
        memset(mid, ids[i], sizeof mid);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
        sqlite3_bind_int64(st, 2, 1000 + (sqlite3_int64)i);
        sqlite3_bind_int(st, 3, kinds[i]);
        sqlite3_bind_blob(st, 4, b.data, (int)b.len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 5, mid, sizeof mid, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        char q[160];
        snprintf(q, sizeof q,
                 "INSERT INTO audit_parties (member, idx) VALUES ('" HOTLINE "', %u),"
                 " ('" POLICE "', %u)",
                 (unsigned)i, (unsigned)i);
        exec_sql(db, q);
        uint8_t leaf[32];
        merkle_leaf_hash(b.data, b.len, leaf);
        assert_int_equal(merkle_stack_push(&tree, leaf, old_nodes ? old_put_node : no_node, db),
                         CASENET_OK);
        free(b.data);
    }
    merkle_stack_root(&tree, root);
    exec_sql(db, "COMMIT");
    sqlite3_close(db);
}

static void assert_events(struct store *s, uint8_t id_byte, const uint64_t *want, size_t n_want)
{
    uint8_t mid[16];
    memset(mid, id_byte, sizeof mid);
    struct store_audit_filter flt = {.message_id = mid};
    struct store_audit_row *rows = NULL;
    size_t n = 0;
    uint64_t next = 0;
    bool more = true;
    assert_int_equal(store_audit_query(s, &flt, 0, 10, 100, &rows, &n, &next, &more), CASENET_OK);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rows[i].index, want[i]);
    assert_false(more);
    store_audit_rows_free(rows, n);
}

static void test_old_store_migrates(void **state)
{
    struct fx *f = *state;
    int64_t before = reshape_step();
    assert_int_equal(sq_create_at(f->dir, before), CASENET_OK);
    uint8_t root[32];
    write_old_store(f->dir, root, true);
    assert_int_equal(store_open(f->dir, &f->s), CASENET_OK);
    struct store *s = f->s;

    /* The tree was loaded from the migrated subtrees, not rebuilt: a
     * rebuild would have added rows beside mis-keyed ones (4 leaves: 7). */
    uint64_t size = 0;
    uint8_t got_root[32];
    assert_int_equal(store_audit_tree(s, &size, got_root), CASENET_OK);
    assert_int_equal(size, 4);
    assert_memory_equal(got_root, root, 32);
    assert_int_equal(store_sql_count(s, "SELECT count(*) FROM audit_nodes"), 7);
    uint8_t node[32];
    assert_int_equal(store_audit_node_get(s, 2, 0, node), CASENET_OK);
    assert_memory_equal(node, root, 32);

    /* Inbox lookups: message rows and the receipt row. */
    uint8_t a1[16], b2[16], c3[16], d4[16];
    memset(a1, 0xa1, 16);
    memset(b2, 0xb2, 16);
    memset(c3, 0xc3, 16);
    memset(d4, 0xd4, 16);
    struct store_inbox_row row = {0};
    assert_int_equal(store_inbox_get(s, POLICE, a1, &row), CASENET_OK);
    assert_int_equal(row.seq, 1);
    store_inbox_row_clear(&row);
    assert_int_equal(store_inbox_get(s, POLICE, b2, &row), CASENET_OK);
    assert_int_equal(row.state, CASENET_INBOX_FETCHED);
    store_inbox_row_clear(&row);
    assert_int_equal(store_inbox_get(s, HOTLINE, c3, &row), CASENET_OK);
    assert_int_equal(row.kind, CASENET_KIND_RECEIPT);
    store_inbox_row_clear(&row);
    assert_int_equal(store_inbox_get(s, HOTLINE, a1, &row), CASENET_ENOTFOUND);
    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    bool more = true;
    assert_int_equal(store_inbox_list(s, POLICE, CASENET_INBOX_QUEUED, 0, 10, &rows, &n, &more),
                     CASENET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].seq, 1);
    store_inbox_rows_free(rows, n);
    assert_int_equal(store_inbox_of_message(s, b2, &rows, &n), CASENET_OK);
    assert_int_equal(n, 1);
    store_inbox_rows_free(rows, n);
    struct store_deadline *dl = NULL;
    assert_int_equal(store_deadline_list(s, 1, &dl, &n), CASENET_OK);
    assert_int_equal(n, 1);
    free(dl);

    /* Audit by message: old events through the message_id index. */
    assert_events(s, 0xa1, (const uint64_t[]){0, 3}, 2);
    assert_events(s, 0xd4, (const uint64_t[]){1}, 1);
    assert_events(s, 0xb2, (const uint64_t[]){2}, 1);

    /* New events after the migration: a stored message's are keyed by it
     * and merge in log order with the old ones. */
    assert_int_equal(store_begin(s), CASENET_OK);
    int kinds[3] = {3, 4, 2};
    uint8_t ids[3] = {0xa1, 0xb2, 0xd4};
    for (uint64_t i = 4; i < 7; i++) {
        casenet_buf b = event(i, kinds[i - 4], ids[i - 4]);
        const char *parties[2] = {HOTLINE, POLICE};
        assert_int_equal(store_audit_append(s, i, 2000, kinds[i - 4], parties, 2, b.data, b.len),
                         CASENET_OK);
        free(b.data);
    }
    struct store_message m = message(0xe5, 7);
    assert_int_equal(store_message_insert(s, &m), CASENET_OK);
    casenet_buf b = event(7, 1, 0xe5);
    assert_int_equal(store_audit_append(s, 7, 2000, 1, NULL, 0, b.data, b.len), CASENET_OK);
    free(b.data);
    /* A new message row for an id an old receipt row holds: CONFLICT. */
    struct store_message mc = message(0xc3, 7);
    assert_int_equal(store_message_insert(s, &mc), CASENET_OK);
    struct store_inbox_row r = row_for(HOTLINE, 0xc3, CASENET_KIND_REFERRAL);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    r = row_for(POLICE, 0xa1, CASENET_KIND_REFERRAL);
    assert_int_equal(store_inbox_insert(s, &r), CASENET_ECONFLICT);
    assert_int_equal(store_commit(s), CASENET_OK);
    assert_events(s, 0xa1, (const uint64_t[]){0, 3, 4}, 3);
    assert_events(s, 0xb2, (const uint64_t[]){2, 5}, 2);
    assert_events(s, 0xd4, (const uint64_t[]){1, 6}, 2);
    assert_events(s, 0xe5, (const uint64_t[]){7}, 1);
    assert_int_equal(store_sql_count(s, "SELECT count(*) FROM audit WHERE msg_key IS NOT NULL"), 3);

    /* Reopened: the tree loads from what was stored. */
    store_close(s);
    f->s = NULL;
    assert_int_equal(store_open(f->dir, &f->s), CASENET_OK);
    assert_int_equal(store_audit_tree(f->s, &size, got_root), CASENET_OK);
    assert_int_equal(size, 8);
    assert_int_equal(store_sql_count(f->s, "SELECT count(*) FROM audit_nodes"), 15);
    assert_int_equal(store_audit_node_get(f->s, 3, 0, node), CASENET_OK);
    assert_memory_equal(node, got_root, 32);
}

/* ------------------------------------------------------------ deadlines */

/* The migration step that made (seq, kind) the deadlines' key. */
/* The step that dropped the index on the audit log's kind (schema 8). */
static int64_t kind_index_step(void)
{
    for (size_t i = 0; sq_migration_sql(i); i++)
        if (strstr(sq_migration_sql(i), "DROP INDEX audit_kind"))
            return (int64_t)i;
    fail_msg("no migration drops audit_kind");
    return -1;
}

/* Events of one kind, in index order, examining at most max rows a call;
 * the calls' cursors chained until the log is read. */
static void assert_kind(struct store *s, int kind, uint32_t max, const uint64_t *want,
                        size_t n_want)
{
    struct store_audit_filter flt = {.kind = kind};
    size_t got = 0;
    uint64_t cursor = 0;
    bool more = true;
    for (int calls = 0; more; calls++) {
        assert_true(calls < 16);
        struct store_audit_row *rows = NULL;
        size_t n = 0;
        assert_int_equal(store_audit_query(s, &flt, cursor, 10, max, &rows, &n, &cursor, &more),
                         CASENET_OK);
        assert_true(n <= max);
        for (size_t i = 0; i < n; i++) {
            assert_true(got < n_want);
            assert_int_equal(rows[i].index, want[got++]);
        }
        store_audit_rows_free(rows, n);
    }
    assert_int_equal(got, n_want);
}

/* A store at the schema before audit_kind and the inbox's AUTOINCREMENT
 * went keeps its events, its tree and its other indexes; queries by kind
 * find the same events, a call examining no more than it is allowed; inbox
 * rows keep their seq and new ones follow the highest. */
static void test_schema8_migrates(void **state)
{
    struct fx *f = *state;
    assert_int_equal(sq_create_at(f->dir, kind_index_step()), CASENET_OK);
    uint8_t root[32];
    write_old_store(f->dir, root, false);
    assert_int_equal(store_open(f->dir, &f->s), CASENET_OK);
    sqlite3 *db = sq_db(f->s);
    assert_int_equal(count_rows_sql(db, "SELECT count(*) FROM sqlite_schema"
                                        " WHERE name = 'audit_kind'"),
                     0);
    assert_int_equal(count_rows_sql(db, "PRAGMA user_version"), SQ_SCHEMA_VERSION);
    assert_int_equal(count_bad_plans(db), 0);
    uint64_t size = 0;
    uint8_t now[32];
    assert_int_equal(store_audit_tree(f->s, &size, now), CASENET_OK);
    assert_int_equal(size, 4);
    assert_memory_equal(now, root, 32);
    const uint64_t submitted[] = {0, 2}, second[] = {1}, third[] = {3};
    assert_kind(f->s, 1, 100, submitted, 2);
    assert_kind(f->s, 1, 1, submitted, 2);
    assert_kind(f->s, 2, 100, second, 1);
    assert_kind(f->s, 3, 2, third, 1);
    assert_kind(f->s, 9, 3, NULL, 0);
    const uint64_t a1[] = {0, 3};
    assert_events(f->s, 0xa1, a1, 2);

    /* inbox without AUTOINCREMENT: its rows intact, the next seq after the
     * highest, sqlite_sequence no longer written. */
    assert_int_equal(count_rows_sql(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'inbox'"
                                        " AND sql LIKE '%AUTOINCREMENT%'"),
                     0);
    assert_int_equal(count_rows_sql(db, "SELECT count(*) FROM sqlite_sequence"), 0);
    assert_int_equal(count_rows_sql(db, "SELECT count(*) FROM pragma_integrity_check"
                                        " WHERE integrity_check <> 'ok'"),
                     0);
    exec_sql(db, "INSERT INTO inbox (recipient, message_id, sender, kind, urgency, msg_status,"
                 " state, received_at_ms, created_at_ms, updated_at_ms, size) VALUES ('" COORD "',"
                 " x'e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5', '" POLICE "', 20, 2, 1, 1, 1, 1, 1, 1)");
    assert_int_equal(sqlite3_last_insert_rowid(db), 4);
    assert_int_equal(count_rows_sql(db, "SELECT count(*) FROM sqlite_sequence"), 0);
    assert_int_equal(count_rows_sql(db, "SELECT count(*) FROM inbox"), 4);
}

static int64_t deadline_key_step(void)
{
    for (size_t i = 0; sq_migration_sql(i); i++)
        if (strstr(sq_migration_sql(i), "CREATE TABLE deadlines_v6"))
            return (int64_t)i;
    fail_msg("no migration creates deadlines_v6");
    return -1;
}

static void assert_deadline(const struct store_deadline *d, uint64_t seq, int kind, int64_t due,
                            int state, int64_t settled, bool has_notice)
{
    assert_int_equal(d->seq, seq);
    assert_int_equal(d->kind, kind);
    assert_int_equal(d->id, seq * 8 + (uint64_t)kind);
    assert_int_equal(d->due_ms, due);
    assert_int_equal(d->state, state);
    assert_int_equal(d->settled_at_ms, settled);
    assert_int_equal(d->has_notice, has_notice);
}

/* Deadlines written under the rowid schema, in every state, keep their
 * state, settlement and notice under the (seq, kind) key; the overdue
 * list visits each breached one once, across pages, in the order they were
 * armed; settling, re-arming and the due list work on the migrated rows. */
static void test_deadlines_migrate_to_their_key(void **state)
{
    struct fx *f = *state;
    assert_int_equal(sq_create_at(f->dir, deadline_key_step()), CASENET_OK);
    char *path = tl_path(f->dir, "casenet.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    free(path);
    exec_sql(db, "PRAGMA foreign_keys = ON; BEGIN;"
                 "INSERT INTO messages (id, message_id, sender, kind, urgency, msg_status,"
                 " created_at_ms, expires_at_ms, received_at_ms, envelope_hash, size, audit_index,"
                 " envelope, receipt) VALUES"
                 " (1, x'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', '" HOTLINE "', 1, 2, 1, 1000, 0, 1000,"
                 " zeroblob(32), 3, 0, x'010203', x'aa');"
                 "INSERT INTO inbox (seq, recipient, message_id, msg, sender, kind, urgency,"
                 " msg_status, state, received_at_ms, created_at_ms, updated_at_ms, size)"
                 " SELECT seq, 'm' || seq, x'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 1, '" HOTLINE
                 "', 1, 2, 1, CASE seq WHEN 3 THEN 2 ELSE 1 END, 1000, 1000, 1000, 3"
                 " FROM (SELECT 1 AS seq UNION ALL SELECT 2 UNION ALL SELECT 3"
                 " UNION ALL SELECT 4);"
                 /* Armed in (seq, kind) order, as the broker does; rowids 1..6. */
                 "INSERT INTO deadlines (seq, kind, due_ms, state, settled_at_ms, notice_id) VALUES"
                 " (1, 1, 5000, 1, 0, NULL),"
                 " (1, 2, 6000, 3, 6100, x'01010101010101010101010101010101'),"
                 " (2, 1, 7000, 2, 6500, NULL),"
                 " (2, 3, 8000, 4, 7500, NULL),"
                 " (3, 1, 4000, 3, 4100, x'03030303030303030303030303030303'),"
                 " (4, 1, 4500, 3, 4600, NULL);"
                 "UPDATE inbox SET state = 3 WHERE seq = 4;" /* delivered: no longer overdue */
                 "COMMIT;");
    sqlite3_close(db);
    assert_int_equal(store_open(f->dir, &f->s), CASENET_OK);
    struct store *s = f->s;
    assert_int_equal(store_sql_count(s, "SELECT count(*) FROM deadlines"), 6);
    assert_int_equal(
        store_sql_count(s, "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'deadlines'"
                           " AND name LIKE 'sqlite_autoindex%'"),
        0);

    struct store_deadline *dl = NULL;
    size_t n = 0;
    assert_int_equal(store_deadline_list(s, 1, &dl, &n), CASENET_OK);
    assert_int_equal(n, 2);
    assert_deadline(&dl[0], 1, 1, 5000, 1, 0, false);
    assert_deadline(&dl[1], 1, 2, 6000, 3, 6100, true);
    assert_memory_equal(dl[1].notice_id,
                        "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01", 16);
    free(dl);
    assert_int_equal(store_deadline_list(s, 2, &dl, &n), CASENET_OK);
    assert_int_equal(n, 2);
    assert_deadline(&dl[0], 2, 1, 7000, 2, 6500, false);
    assert_deadline(&dl[1], 2, 3, 8000, 4, 7500, false);
    free(dl);

    /* Overdue, one per page: (1, accept) then (3, deliver); (4, deliver) is
     * breached but its row was delivered since. */
    struct store_overdue *od = NULL;
    bool more = false;
    assert_int_equal(store_overdue_list(s, 0, 1, &od, &n, &more), CASENET_OK);
    assert_int_equal(n, 1);
    assert_true(more);
    assert_deadline(&od[0].d, 1, 2, 6000, 3, 6100, true);
    assert_string_equal(od[0].row.recipient, "m1");
    uint64_t cursor = od[0].d.id;
    store_overdue_free(od, n);
    assert_int_equal(store_overdue_list(s, cursor, 1, &od, &n, &more), CASENET_OK);
    assert_int_equal(n, 1);
    assert_false(more);
    assert_deadline(&od[0].d, 3, 1, 4000, 3, 4100, true);
    assert_int_equal(od[0].row.state, CASENET_INBOX_FETCHED);
    cursor = od[0].d.id;
    store_overdue_free(od, n);
    assert_int_equal(store_overdue_list(s, cursor, 10, &od, &n, &more), CASENET_OK);
    assert_int_equal(n, 0);
    assert_false(more);
    store_overdue_free(od, n);
    assert_int_equal(store_overdue_list(s, UINT64_MAX, 10, &od, &n, &more), CASENET_OK);
    assert_int_equal(n, 0);
    store_overdue_free(od, n);

    /* Due, settle once, arm. */
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_deadline_due(s, 100000, 10, &dl, &n), CASENET_OK);
    assert_int_equal(n, 1);
    assert_deadline(&dl[0], 1, 1, 5000, 1, 0, false);
    uint64_t id = dl[0].id;
    free(dl);
    assert_int_equal(store_deadline_settle(s, id, 2, 9000, NULL), CASENET_OK);
    assert_int_equal(store_deadline_settle(s, id, 3, 9001, NULL), CASENET_ENOTFOUND);
    assert_int_equal(store_deadline_settle(s, 2 * 8 + 1, 3, 9001, NULL), CASENET_ENOTFOUND);
    assert_int_equal(store_deadline_arm(s, 1, 1, 9999), CASENET_ECONFLICT);
    assert_int_equal(store_deadline_arm(s, 3, 2, 9999), CASENET_OK);
    assert_int_equal(store_commit(s), CASENET_OK);
    assert_int_equal(store_deadline_due(s, 100000, 10, &dl, &n), CASENET_OK);
    assert_int_equal(n, 1);
    assert_deadline(&dl[0], 3, 2, 9999, 1, 0, false);
    free(dl);
    assert_int_equal(store_deadline_list(s, 1, &dl, &n), CASENET_OK);
    assert_int_equal(n, 2);
    assert_deadline(&dl[0], 1, 1, 5000, 2, 9000, false);
    free(dl);
}

/* ------------------------------------------------------------ page size */

/* A new store is made of 4 KiB pages (a commit writes whole pages: the
 * smaller, the fewer bytes per message); a store created with 8 KiB pages,
 * as every store before, keeps its own size when opened and migrated, and
 * is written to as before. */
static void test_page_size_new_and_kept(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_open(f->dir, &f->s), CASENET_OK);
    assert_int_equal(count_rows_sql(sq_db(f->s), "PRAGMA page_size"), 4096);
    store_close(f->s);
    f->s = NULL;

    char *old = tl_path(f->dir, "old");
    assert_int_equal(mkdir(old, 0700), 0);
    char *path = tl_path(old, "casenet.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_sql(db, "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; CREATE TABLE t (x);"
                 " DROP TABLE t;");
    sqlite3_close(db);
    free(path);
    assert_int_equal(store_open(old, &f->s), CASENET_OK);
    db = sq_db(f->s);
    assert_int_equal(count_rows_sql(db, "PRAGMA page_size"), 8192);
    assert_int_equal(count_rows_sql(db, "PRAGMA user_version"), SQ_SCHEMA_VERSION);
    assert_int_equal(store_begin(f->s), CASENET_OK);
    assert_int_equal(store_directory_save(f->s, 1, (const uint8_t *)"d", 1, 5), CASENET_OK);
    assert_int_equal(store_commit(f->s), CASENET_OK);
    assert_int_equal(count_rows_sql(db, "SELECT count(*) FROM pragma_integrity_check"
                                        " WHERE integrity_check <> 'ok'"),
                     0);
    store_close(f->s);
    f->s = NULL;
    tl_rmrf(old);
    free(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_statement_uses_an_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_index_is_caught, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbox_pairs_unique_across_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbox_pairs_unique_given_msg_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_store_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadlines_migrate_to_their_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_size_new_and_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema8_migrates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
