/* pg.c - the store conformance suite on the PostgreSQL backend: starts a
 * real PostgreSQL 15 server in a temporary directory (pg_server.sh, its path
 * argv[1]), a fresh database per test, and stops and removes the server at
 * exit. Exits 77 (skipped) when PostgreSQL 15 is not installed. */
#include "conformance.h"
#include "rows.h"
#include "store.h"
#include "testlib.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *script;
static char *server_dir;
static char admin_uri[512];
static unsigned databases;

static void stop_server(void)
{
    if (!server_dir)
        return;
    char *cmd = NULL;
    if (asprintf(&cmd, "'%s' stop '%s'", script, server_dir) >= 0 && system(cmd) != 0)
        fprintf(stderr, "pg.c: stopping the server in %s failed\n", server_dir);
    free(cmd);
    free(server_dir);
    server_dir = NULL;
}

static void on_signal(int sig)
{
    stop_server();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Starts the server; its URI (database postgres) into admin_uri. */
static void start_server(void)
{
    server_dir = tl_tmpdir();
    char *cmd = NULL;
    if (asprintf(&cmd, "'%s' start '%s'", script, server_dir) < 0)
        abort();
    atexit(stop_server);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p || !fgets(admin_uri, sizeof admin_uri, p) || pclose(p) != 0) {
        fprintf(stderr, "pg.c: could not start PostgreSQL (see above)\n");
        exit(1);
    }
    admin_uri[strcspn(admin_uri, "\n")] = '\0';
}

/* Runs one statement on the server's postgres database; aborts on failure. */
static void admin(const char *q)
{
    PGconn *c = PQconnectdb(admin_uri);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "pg.c: %s: %s", q, PQerrorMessage(c));
        abort();
    }
    PQclear(r);
    PQfinish(c);
}

/* The admin URI with database name db instead of postgres. */
static char *uri_for(const char *db)
{
    const char *at = strstr(admin_uri, "/postgres?");
    if (!at)
        abort();
    char *spec = NULL;
    if (asprintf(&spec, "%.*s/%s%s", (int)(at - admin_uri), admin_uri, db,
                 at + strlen("/postgres")) < 0)
        abort();
    return spec;
}

static char *fresh(void)
{
    char db[32], q[64];
    snprintf(db, sizeof db, "casenet_%u", ++databases);
    snprintf(q, sizeof q, "CREATE DATABASE %s", db);
    admin(q);
    return uri_for(db);
}

/* The spec's database (between the last '/' before '?' and the '?'). */
static void discard(const char *spec)
{
    const char *end = strchr(spec, '?');
    const char *start = end;
    while (start > spec && start[-1] != '/')
        start--;
    char q[96];
    snprintf(q, sizeof q, "DROP DATABASE %.*s", (int)(end - start), start);
    admin(q);
}

/* Ends every other session on the database of spec (a lost connection). */
static void kill_sessions(const char *spec)
{
    const char *end = strchr(spec, '?'), *start = end;
    while (start > spec && start[-1] != '/')
        start--;
    char q[256];
    snprintf(q, sizeof q,
             "DO $$ BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE datname = '%.*s' AND pid <> pg_backend_pid(); END $$",
             (int)(end - start), start);
    admin(q);
}

/* A connection lost in the middle of a batch: the batch fails UNAVAILABLE
 * with nothing of it committed, and the next batch reconnects. */
static void test_connection_lost(void **state)
{
    (void)state;
    char *spec = fresh();
    struct store *s = NULL;
    assert_int_equal(store_open(spec, &s), CASENET_OK);
    struct store_message a = store_test_message(0x41, "vn.hotline"), b = a, got = {0};
    memset(b.message_id, 0x42, sizeof b.message_id);
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_message_insert(s, &a), CASENET_OK);
    kill_sessions(spec);
    assert_int_equal(store_message_insert(s, &b), CASENET_EUNAVAIL);
    store_rollback(s);
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_message_insert(s, &b), CASENET_OK);
    assert_int_equal(store_commit(s), CASENET_OK);
    assert_int_equal(store_message_get(s, a.message_id, false, &got), CASENET_ENOTFOUND);
    assert_int_equal(store_message_get(s, b.message_id, false, &got), CASENET_OK);
    store_message_clear(&got);
    /* Outside a batch too: a read reconnects. */
    kill_sessions(spec);
    assert_int_equal(store_message_get(s, b.message_id, false, &got), CASENET_EUNAVAIL);
    assert_int_equal(store_message_get(s, b.message_id, false, &got), CASENET_OK);
    store_message_clear(&got);
    store_close(s);
    discard(spec);
    free(spec);
}

/* One Submit's rows the way the broker writes them in a batch: the reads
 * first (duplicate, receipt row, backlog), then the inserts, which that
 * batch's pipeline sends without waiting (store_pg_pipe.c). */
static uint64_t submit_rows(struct store *s, uint8_t id_byte, int64_t *rowid)
{
    struct store_message m = store_test_message(id_byte, "vn.hotline"), got = {0};
    struct store_inbox_row row = store_test_row("vn.police", id_byte, 1, "vn.hotline");
    bool taken = true;
    uint64_t queued = 0, mine = 0;
    assert_int_equal(store_message_get(s, m.message_id, false, &got), CASENET_ENOTFOUND);
    assert_int_equal(store_inbox_receipt_row(s, "vn.police", m.message_id, &taken), CASENET_OK);
    assert_false(taken);
    assert_int_equal(store_inbox_backlog(s, "vn.police", "vn.hotline", &queued, &mine), CASENET_OK);
    assert_int_equal(store_message_insert(s, &m), CASENET_OK);
    row.msg_row = *rowid = store_message_last_rowid(s);
    assert_int_equal(store_inbox_insert(s, &row), CASENET_OK);
    assert_int_equal(store_deadline_arm(s, row.seq, STORE_DEADLINE_DELIVER, 5000), CASENET_OK);
    assert_int_equal(store_deadline_arm(s, row.seq, STORE_DEADLINE_DELIVER, 6000),
                     CASENET_ECONFLICT);
    return queued;
}

/* A batch of Submits in the pipeline: rows numbered from reserved ids, the
 * backlog counted within the batch, the receipts signed in one statement;
 * an insert sent without waiting that fails fails the whole commit. */
static void test_pipelined_batch(void **state)
{
    (void)state;
    char *spec = fresh();
    struct store *s = NULL, *other = NULL;
    assert_int_equal(store_open(spec, &s), CASENET_OK);
    assert_int_equal(store_open(spec, &other), CASENET_OK);
    int64_t rows[3];
    uint8_t sigs[3][CASENET_SIGNATURE_BYTES];
    struct store_receipt_sig rs[3];
    assert_int_equal(store_begin(s), CASENET_OK);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(submit_rows(s, (uint8_t)(0x61 + k), &rows[k]), (uint64_t)k);
        memset(sigs[k], 0x30 + k, sizeof sigs[k]);
        rs[k] = (struct store_receipt_sig){rows[k], sigs[k]};
    }
    assert_int_equal(store_message_receipt_sigs(s, rs, 3), CASENET_OK);
    assert_int_equal(store_commit(s), CASENET_OK);
    for (int k = 0; k < 3; k++) {
        struct store_message got = {0};
        uint8_t id[CASENET_MESSAGE_ID_BYTES];
        memset(id, 0x61 + k, sizeof id);
        assert_int_equal(store_message_get(s, id, false, &got), CASENET_OK);
        assert_int_equal(got.row, (uint64_t)rows[k]);
        assert_memory_equal(got.receipt.data + got.receipt.len - CASENET_SIGNATURE_BYTES, sigs[k],
                            CASENET_SIGNATURE_BYTES);
        store_message_clear(&got);
    }
    /* A missing row among several: UNAVAILABLE at once. */
    rs[1].rowid = rows[2] + 1000;
    assert_int_equal(store_begin(s), CASENET_OK);
    assert_int_equal(store_message_receipt_sigs(s, rs, 3), CASENET_EUNAVAIL);
    store_rollback(s);
    /* Another session takes the id between the read and the insert: the
     * commit fails and nothing of the batch is stored. */
    struct store_message late = store_test_message(0x71, "vn.hotline"), got = {0};
    int64_t row = 0;
    assert_int_equal(store_begin(s), CASENET_OK);
    (void)submit_rows(s, 0x70, &row);
    assert_int_equal(store_message_get(s, late.message_id, false, &got), CASENET_ENOTFOUND);
    assert_int_equal(store_begin(other), CASENET_OK);
    assert_int_equal(store_message_insert(other, &late), CASENET_OK);
    assert_int_equal(store_commit(other), CASENET_OK);
    late.size = 4;
    assert_int_equal(store_message_insert(s, &late), CASENET_OK); /* not waited for */
    assert_int_equal(store_commit(s), CASENET_EUNAVAIL);
    memset(late.message_id, 0x70, sizeof late.message_id);
    assert_int_equal(store_message_get(s, late.message_id, false, &got), CASENET_ENOTFOUND);
    store_close(other);
    store_close(s);
    discard(spec);
    free(spec);
}

/* A spec's synchronous_commit: the three durable values, nothing weaker. */
static void test_synchronous_commit(void **state)
{
    (void)state;
    char *spec = fresh(), *with = NULL;
    struct store *s = NULL;
    static const char *const ok[] = {"on", "remote_write", "remote_apply"};
    for (size_t i = 0; i < 3; i++) {
        assert_true(asprintf(&with, "%s&synchronous_commit=%s", spec, ok[i]) > 0);
        assert_int_equal(store_open(with, &s), CASENET_OK);
        store_close(s);
        free(with);
    }
    assert_true(asprintf(&with, "%s&synchronous_commit=off", spec) > 0);
    assert_int_equal(store_open(with, &s), CASENET_EINVAL);
    free(with);
    discard(spec);
    free(spec);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls until a lease of ttl_ms taken at `from` (mono_ms) has certainly
 * expired on the server's clock too. */
static void wait_expired(int64_t from, uint32_t ttl_ms)
{
    while (mono_ms() < from + ttl_ms + 50)
        usleep(10000);
}

/* Two stores on one database: one holds the lease, the other waits; a
 * holder whose lease expired commits nothing (the fencing check inside the
 * batch), and once another took it over, it learns it lost the lease. A
 * store that never took a lease (a single broker) commits as before. */
static void test_lease_fencing(void **state)
{
    (void)state;
    char *spec = fresh();
    struct store *s1 = NULL, *s2 = NULL;
    assert_int_equal(store_open(spec, &s1), CASENET_OK);
    assert_int_equal(store_open(spec, &s2), CASENET_OK);
    bool active = false;
    int64_t t1 = mono_ms();
    assert_int_equal(store_lease(s1, 300, &active), CASENET_OK);
    assert_true(active);
    assert_int_equal(store_lease(s2, 300, &active), CASENET_OK);
    assert_false(active);
    /* Renewed while held; a batch within the lease commits. */
    assert_int_equal(store_lease(s1, 300, &active), CASENET_OK);
    assert_true(active);
    t1 = mono_ms();
    struct store_message a = store_test_message(0x51, "vn.hotline"), b = a, got = {0};
    memset(b.message_id, 0x52, sizeof b.message_id);
    assert_int_equal(store_begin(s1), CASENET_OK);
    assert_int_equal(store_message_insert(s1, &a), CASENET_OK);
    assert_int_equal(store_commit(s1), CASENET_OK);
    /* Expired (a paused broker): its batch rolls back at commit. */
    assert_int_equal(store_begin(s1), CASENET_OK);
    assert_int_equal(store_message_insert(s1, &b), CASENET_OK);
    wait_expired(t1, 300);
    assert_int_equal(store_commit(s1), CASENET_EUNAVAIL);
    assert_int_equal(store_message_get(s2, b.message_id, false, &got), CASENET_ENOTFOUND);
    assert_int_equal(store_lease(s1, 300, &active), CASENET_ECONFLICT);
    assert_false(active);
    /* The standby takes the expired lease over and commits. */
    assert_int_equal(store_lease(s2, 300, &active), CASENET_OK);
    assert_true(active);
    assert_int_equal(store_begin(s2), CASENET_OK);
    assert_int_equal(store_message_insert(s2, &b), CASENET_OK);
    assert_int_equal(store_commit(s2), CASENET_OK);
    assert_int_equal(store_message_get(s2, a.message_id, false, &got), CASENET_OK);
    store_message_clear(&got);
    store_close(s1);
    store_close(s2);
    discard(spec);
    free(spec);
}

/* A holder paused in the middle of a batch past its lease: the broker that
 * takes over ends its session, so the batch's row locks do not stall the new
 * holder, and the old batch commits nothing. */
static void test_lease_takeover_ends_batch(void **state)
{
    (void)state;
    char *spec = fresh();
    struct store *s1 = NULL, *s2 = NULL;
    assert_int_equal(store_open(spec, &s1), CASENET_OK);
    assert_int_equal(store_open(spec, &s2), CASENET_OK);
    bool active = false;
    int64_t t1 = mono_ms();
    assert_int_equal(store_lease(s1, 200, &active), CASENET_OK);
    assert_true(active);
    struct store_message a = store_test_message(0x61, "vn.hotline"), got = {0};
    assert_int_equal(store_begin(s1), CASENET_OK);
    assert_int_equal(store_message_insert(s1, &a), CASENET_OK);
    wait_expired(t1, 200);
    assert_int_equal(store_lease(s2, 200, &active), CASENET_OK);
    assert_true(active);
    /* The same message id: without the old session ended, this would wait
     * for its uncommitted row. */
    assert_int_equal(store_begin(s2), CASENET_OK);
    assert_int_equal(store_message_insert(s2, &a), CASENET_OK);
    assert_int_equal(store_commit(s2), CASENET_OK);
    assert_int_equal(store_commit(s1), CASENET_EUNAVAIL);
    assert_int_equal(store_message_get(s2, a.message_id, false, &got), CASENET_OK);
    store_message_clear(&got);
    store_close(s1);
    store_close(s2);
    discard(spec);
    free(spec);
}

int main(int argc, char **argv)
{
    const char *bin = getenv("PG_BIN") ? getenv("PG_BIN") : "/usr/lib/postgresql/15/bin";
    char *initdb = tl_path(bin, "initdb");
    if (access(initdb, X_OK) != 0) {
        fprintf(stderr, "pg.c: %s not found: install PostgreSQL 15 (deploy/setup-debian.sh)\n",
                initdb);
        free(initdb);
        return 77;
    }
    free(initdb);
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/pg_server.sh\n", argv[0]);
        return 2;
    }
    script = argv[1];
    start_server();
    static const struct conformance_backend pg = {"postgresql", fresh, discard};
    int failed = conformance_run(&pg);
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_connection_lost), cmocka_unit_test(test_synchronous_commit),
        cmocka_unit_test(test_lease_fencing),   cmocka_unit_test(test_lease_takeover_ends_batch),
        cmocka_unit_test(test_pipelined_batch),
    };
    return failed | cmocka_run_group_tests_name("postgresql_backend", own, NULL, NULL);
}
