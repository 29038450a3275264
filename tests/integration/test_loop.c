/* test_loop.c - casenetd's event loop (broker/server.c, verify.c,
 * store_sqlite_wal.c): Submits verified ahead on the workers land on their
 * own request when several connections interleave valid, forged, oversized
 * and other requests in one burst (with 0, 1 and 3 workers); the loop
 * checkpoints the store's WAL once idle and keeps it bounded while busy; a
 * reader holding a snapshot (which stops a checkpoint) neither loses nor
 * blocks a request, and the log is checkpointed once it lets go; receipts
 * signed beside the loop (with 0, 1 and 3 workers) verify and equal, byte
 * for byte, the receipt stored in the database. */
#include "network.h"
#include "testlib.h"

#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RCPT     "vn.police.a05"
#define N_SEND   4
#define PER_CONN 40
#define MAX_ENV  4096
/* The WAL's bound while busy: the loop checkpoints past 1000 pages
 * (CKPT_BUSY_FRAMES), plus what the batches in between wrote. */
#define WAL_FRAME_BYTES (8192 + 24)
#define WAL_MAX_FRAMES  1600

static const char *const members[] = {
    "vn.hotline111:intake", "vn.molisa:intake",       "vn.ngo.a:intake",
    "vn.ngo.b:intake",      RCPT ":responder:police",
};

static tn_network *start_with(const char *ini)
{
    tn_network *tn = tn_new(members, 5);
    tn->config_path = tl_path(tn->root, "casenetd.ini");
    tl_write_file(tn->config_path, ini, strlen(ini), 0644);
    tn_start(tn);
    return tn;
}

static void stop(tn_network *tn)
{
    assert_false(tn_log_contains(tn, "store_error"));
    assert_int_equal(tn_stop(tn), 0);
    tn_free(tn);
}

/* Sends req with request id `id` without waiting for the answer. */
static void send_request(tn_conn *c, Casenet__V1__Request *req, uint64_t id)
{
    req->protocol_version = 1;
    req->request_id = id;
    size_t len = casenet__v1__request__get_packed_size(req);
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);
    casenet__v1__request__pack(req, buf);
    const void *frames[1] = {buf};
    tn_send_frames(c, frames, &len, 1);
    free(buf);
}

static void send_submit(tn_conn *c, const casenet_buf *env, uint64_t id)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Submit s = CASENET__V1__SUBMIT__INIT;
    s.envelope.data = env->data;
    s.envelope.len = env->len;
    req.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    req.submit = &s;
    send_request(c, &req, id);
}

/* Receives the next non-notice Response within timeout_ms (NULL: none). */
static Casenet__V1__Response *next_answer(tn_conn *c, int timeout_ms)
{
    int64_t deadline = cn_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - cn_mono_ms();
        casenet_buf in = {0};
        if (left <= 0 || !tn_recv(c, (int)left, &in))
            return NULL;
        Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, in.len, in.data);
        casenet_buf_free(&in);
        assert_non_null(r);
        if (r->body_case != CASENET__V1__RESPONSE__BODY_NOTICE)
            return r;
        casenet__v1__response__free_unpacked(r, NULL);
    }
}

/* ------------------------------------------------------------ verification */

enum kind { K_VALID, K_FORGED, K_OVERSIZED, K_HELLO, K_VALID2, K_COUNT };

struct expect {
    enum kind kind;
    uint8_t id[16]; /* of a valid envelope */
    bool answered;
};

/* Each connection sends PER_CONN requests, the connections interleaved
 * request by request, before any answer is read; every answer must carry
 * its own request's code, and every receipt its own message id. */
static void mixed_burst(const char *ini)
{
    tn_network *tn = start_with(ini);
    tn_conn *c[N_SEND];
    static struct expect want[N_SEND][PER_CONN];
    casenet_buf env[N_SEND][PER_CONN];
    memset(env, 0, sizeof env);
    char big[MAX_ENV + 512];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *to[] = {RCPT};
    for (int k = 0; k < N_SEND; k++) {
        const char *from = members[k];
        char id[32];
        snprintf(id, sizeof id, "%.*s", (int)(strchr(from, ':') - from), from);
        c[k] = tn_connect(tn, tn_keys(tn, id));
        for (int i = 0; i < PER_CONN; i++) {
            struct expect *w = &want[k][i];
            w->kind = (enum kind)((i + k) % K_COUNT);
            w->answered = false;
            switch (w->kind) {
            case K_VALID:
            case K_VALID2:
                env[k][i] = tn_seal(tn, id, to, 1, "loop burst", w->id);
                break;
            case K_FORGED: {
                env[k][i] = tn_seal(tn, id, to, 1, "loop burst forged", NULL);
                Casenet__V1__Envelope *e =
                    casenet__v1__envelope__unpack(NULL, env[k][i].len, env[k][i].data);
                assert_non_null(e);
                e->signature.data[0] ^= 1; /* same length: packs in place */
                casenet__v1__envelope__pack(e, env[k][i].data);
                casenet__v1__envelope__free_unpacked(e, NULL);
                casenet_message_info info = {0};
                CN_ERR(casenet_envelope_verify(tn->net->dir, env[k][i].data, env[k][i].len, &info),
                       CASENET_EBADSIG);
                break;
            }
            case K_OVERSIZED:
                env[k][i] = tn_seal(tn, id, to, 1, big, NULL);
                assert_true(env[k][i].len > MAX_ENV);
                break;
            default:
                break;
            }
        }
    }
    for (int i = 0; i < PER_CONN; i++) {
        for (int k = 0; k < N_SEND; k++) {
            uint64_t rid = 1000 + (uint64_t)i;
            if (want[k][i].kind == K_HELLO) {
                Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
                Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
                req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
                req.hello = &h;
                send_request(c[k], &req, rid);
            } else {
                send_submit(c[k], &env[k][i], rid);
            }
        }
    }
    for (int k = 0; k < N_SEND; k++) {
        for (int n = 0; n < PER_CONN; n++) {
            Casenet__V1__Response *r = next_answer(c[k], 30000);
            assert_non_null(r);
            assert_true(r->request_id >= 1000 && r->request_id < 1000 + PER_CONN);
            struct expect *w = &want[k][r->request_id - 1000];
            assert_false(w->answered); /* answered once */
            w->answered = true;
            int code = r->error ? (int)r->error->code : 0;
            switch (w->kind) {
            case K_VALID:
            case K_VALID2: {
                assert_int_equal(code, 0);
                assert_int_equal(r->body_case, CASENET__V1__RESPONSE__BODY_SUBMIT);
                casenet_submit_receipt rc = {0};
                CN_OK(casenet_submit_receipt_verify(tn->net->dir, r->submit->receipt.data,
                                                    r->submit->receipt.len, &rc));
                assert_memory_equal(rc.message_id, w->id, 16);
                break;
            }
            case K_FORGED:
                assert_int_equal(code, CASENET__V1__ERROR_CODE__ERROR_CODE_BAD_SIGNATURE);
                break;
            case K_OVERSIZED:
                assert_int_equal(code, CASENET__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE);
                break;
            case K_HELLO:
                assert_int_equal(code, 0);
                assert_int_equal(r->body_case, CASENET__V1__RESPONSE__BODY_HELLO);
                break;
            default:
                fail();
            }
            casenet__v1__response__free_unpacked(r, NULL);
        }
        /* nothing more for this connection */
        Casenet__V1__Response *extra = next_answer(c[k], 200);
        assert_null(extra);
    }
    for (int k = 0; k < N_SEND; k++) {
        for (int i = 0; i < PER_CONN; i++)
            casenet_buf_free(&env[k][i]);
        tn_close(c[k]);
    }
    stop(tn);
}

static void test_burst_default_workers(void **state)
{
    (void)state;
    mixed_burst("[limits]\nmax_envelope_bytes = 4096\n");
}

static void test_burst_three_workers(void **state)
{
    (void)state;
    mixed_burst("[limits]\nmax_envelope_bytes = 4096\nverify_threads = 3\nbatch_max = 16\n");
}

static void test_burst_inline(void **state)
{
    (void)state;
    mixed_burst("[limits]\nmax_envelope_bytes = 4096\nverify_threads = 0\n");
}

/* ------------------------------------------------------------ receipt signatures */

#define SIGN_PER_CONN  30
#define SIGN_DUP_EVERY 5 /* every 5th envelope sent twice in a row */

/* A receipt answer: verified against the directory, for message id. */
static casenet_buf receipt_of(tn_network *tn, Casenet__V1__Response *r, const uint8_t id[16])
{
    assert_int_equal(r->error ? (int)r->error->code : 0, 0);
    assert_int_equal(r->body_case, CASENET__V1__RESPONSE__BODY_SUBMIT);
    casenet_submit_receipt sr = {0};
    CN_OK(casenet_submit_receipt_verify(tn->net->dir, r->submit->receipt.data,
                                        r->submit->receipt.len, &sr));
    assert_memory_equal(sr.message_id, id, 16);
    casenet_buf b = {.data = malloc(r->submit->receipt.len), .len = r->submit->receipt.len};
    assert_non_null(b.data);
    memcpy(b.data, r->submit->receipt.data, b.len);
    return b;
}

/* The broker signs each receipt beside its loop, after the handlers and
 * before the commit: pipelined Submits from several connections (some sent
 * twice in a row, so that the copy lands in the same batch as its first
 * and is answered from a row not signed yet) all get receipts that verify,
 * and resending every envelope afterwards (answered from the database)
 * gives the same receipt byte for byte. */
static void sign_burst(const char *ini)
{
    tn_network *tn = start_with(ini);
    tn_conn *c[N_SEND];
    static casenet_buf env[N_SEND][SIGN_PER_CONN], first[N_SEND][SIGN_PER_CONN];
    static uint8_t ids[N_SEND][SIGN_PER_CONN][16];
    const char *to[] = {RCPT};
    for (int k = 0; k < N_SEND; k++) {
        const char *from = members[k];
        char id[32];
        snprintf(id, sizeof id, "%.*s", (int)(strchr(from, ':') - from), from);
        c[k] = tn_connect(tn, tn_keys(tn, id));
        for (int i = 0; i < SIGN_PER_CONN; i++) {
            env[k][i] = tn_seal(tn, id, to, 1, "signed beside the loop", ids[k][i]);
            first[k][i] = (casenet_buf){0};
        }
    }
    /* Request id 2 * i for the first copy, 2 * i + 1 for the second. */
    int n_sent[N_SEND] = {0};
    for (int i = 0; i < SIGN_PER_CONN; i++) {
        for (int k = 0; k < N_SEND; k++) {
            send_submit(c[k], &env[k][i], 2 * (uint64_t)i);
            n_sent[k]++;
            if (i % SIGN_DUP_EVERY == 0) {
                send_submit(c[k], &env[k][i], 2 * (uint64_t)i + 1);
                n_sent[k]++;
            }
        }
    }
    int dups = 0;
    for (int k = 0; k < N_SEND; k++) {
        for (int n = 0; n < n_sent[k]; n++) {
            Casenet__V1__Response *r = next_answer(c[k], 30000);
            assert_non_null(r);
            assert_true(r->request_id < 2 * SIGN_PER_CONN);
            int i = (int)(r->request_id / 2);
            casenet_buf got = receipt_of(tn, r, ids[k][i]);
            if (!first[k][i].data) {
                first[k][i] = got;
            } else { /* the copy, in the same batch or a later one */
                assert_int_equal(got.len, first[k][i].len);
                assert_memory_equal(got.data, first[k][i].data, got.len);
                casenet_buf_free(&got);
                dups++;
            }
            casenet__v1__response__free_unpacked(r, NULL);
        }
        assert_null(next_answer(c[k], 200));
    }
    assert_int_equal(dups, N_SEND * ((SIGN_PER_CONN + SIGN_DUP_EVERY - 1) / SIGN_DUP_EVERY));
    /* Every envelope again: the duplicate's receipt is read from the row. */
    for (int k = 0; k < N_SEND; k++)
        for (int i = 0; i < SIGN_PER_CONN; i++)
            send_submit(c[k], &env[k][i], 100000 + (uint64_t)i);
    for (int k = 0; k < N_SEND; k++) {
        for (int n = 0; n < SIGN_PER_CONN; n++) {
            Casenet__V1__Response *r = next_answer(c[k], 30000);
            assert_non_null(r);
            assert_true(r->request_id >= 100000 && r->request_id < 100000 + SIGN_PER_CONN);
            int i = (int)(r->request_id - 100000);
            assert_true(r->submit && r->submit->duplicate);
            casenet_buf got = receipt_of(tn, r, ids[k][i]);
            assert_int_equal(got.len, first[k][i].len);
            assert_memory_equal(got.data, first[k][i].data, got.len);
            casenet_buf_free(&got);
            casenet__v1__response__free_unpacked(r, NULL);
        }
    }
    for (int k = 0; k < N_SEND; k++) {
        for (int i = 0; i < SIGN_PER_CONN; i++) {
            casenet_buf_free(&env[k][i]);
            casenet_buf_free(&first[k][i]);
        }
        tn_close(c[k]);
    }
    stop(tn);
}

static void test_sign_burst_inline(void **state)
{
    (void)state;
    sign_burst("[limits]\nverify_threads = 0\nsubmit_rate = 0\n");
}

static void test_sign_burst_one_worker(void **state)
{
    (void)state;
    sign_burst("[limits]\nverify_threads = 1\nsubmit_rate = 0\n");
}

static void test_sign_burst_three_workers(void **state)
{
    (void)state;
    sign_burst("[limits]\nverify_threads = 3\nsubmit_rate = 0\nbatch_max = 16\n");
}

/* ------------------------------------------------------------ WAL */

/* The WAL index header (https://sqlite.org/walformat.html): mxFrame at
 * byte 16 of the first header copy, nBackfill at byte 96, native order. */
static void wal_index(tn_network *tn, uint32_t *mx_frame, uint32_t *backfill)
{
    char *path = tl_path(tn->data_dir, "casenet.db-shm");
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, mx_frame, 4, 16), 4);
    assert_int_equal(pread(fd, backfill, 4, 96), 4);
    close(fd);
    free(path);
}

static off_t wal_bytes(tn_network *tn)
{
    char *path = tl_path(tn->data_dir, "casenet.db-wal");
    struct stat st;
    off_t n = stat(path, &st) == 0 ? st.st_size : 0;
    free(path);
    return n;
}

/* Waits (5 s at most) until every frame of the WAL is checkpointed. */
static bool wal_drained(tn_network *tn)
{
    int64_t deadline = cn_mono_ms() + 5000;
    for (;;) {
        uint32_t mx = 0, bf = 0;
        wal_index(tn, &mx, &bf);
        if (mx == bf)
            return true;
        if (cn_mono_ms() > deadline)
            return false;
        usleep(20000);
    }
}

/* Submits n valid envelopes from every sender, `window` in flight per
 * connection; all must be accepted. Returns the largest WAL file seen. */
static off_t submit_many(tn_network *tn, int n, int window)
{
    const char *to[] = {RCPT};
    tn_conn *c[N_SEND];
    casenet_buf *env = calloc((size_t)(N_SEND * n), sizeof *env);
    assert_non_null(env);
    for (int k = 0; k < N_SEND; k++) {
        char id[32];
        snprintf(id, sizeof id, "%.*s", (int)(strchr(members[k], ':') - members[k]), members[k]);
        c[k] = tn_connect(tn, tn_keys(tn, id));
        for (int i = 0; i < n; i++)
            env[k * n + i] = tn_seal(tn, id, to, 1, "wal", NULL);
    }
    off_t max_wal = 0;
    int sent[N_SEND] = {0}, got[N_SEND] = {0};
    for (bool more = true; more;) {
        more = false;
        for (int k = 0; k < N_SEND; k++) {
            while (sent[k] < n && sent[k] - got[k] < window) {
                send_submit(c[k], &env[k * n + sent[k]], (uint64_t)sent[k] + 1);
                sent[k]++;
            }
            if (got[k] < n) {
                Casenet__V1__Response *r = next_answer(c[k], 30000);
                assert_non_null(r); /* never blocked */
                assert_null(r->error);
                casenet__v1__response__free_unpacked(r, NULL);
                got[k]++;
                more = more || got[k] < n;
            }
        }
        off_t w = wal_bytes(tn);
        if (w > max_wal)
            max_wal = w;
    }
    for (int k = 0; k < N_SEND; k++)
        tn_close(c[k]);
    for (int i = 0; i < N_SEND * n; i++)
        casenet_buf_free(&env[i]);
    free(env);
    return max_wal;
}

/* One integer from the store, read on a connection of its own. */
static int64_t db_int(tn_network *tn, const char *sql)
{
    char *path = tl_path(tn->data_dir, "casenet.db");
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return v;
}

/* Waits (30 s at most) until the broker's timer has signed a tree head over
 * every audit event committed so far; returns that event count. */
static int64_t wait_head_over_log(tn_network *tn)
{
    int64_t events = db_int(tn, "SELECT count(*) FROM audit");
    int64_t deadline = cn_mono_ms() + 30000;
    while (db_int(tn, "SELECT coalesce(max(size), 0) FROM tree_heads") < events) {
        if (cn_mono_ms() > deadline)
            fail_msg("no tree head over %lld audit events", (long long)events);
        usleep(50 * 1000);
    }
    return events;
}

/* Busy, the WAL stays bounded; idle, it is checkpointed to the last frame
 * (SQLite's own interval would leave up to 1000 frames behind). */
static void test_wal_checkpointed(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nsubmit_rate = 0\n"); /* no bucket */
    off_t max_wal = submit_many(tn, 500, 32);
    assert_true(max_wal > 0);
    assert_true(max_wal <= (off_t)WAL_MAX_FRAMES * WAL_FRAME_BYTES);
    assert_true(wal_drained(tn));
    /* A short burst, far under any interval, is checkpointed too. */
    (void)submit_many(tn, 3, 1);
    assert_true(wal_drained(tn));
    stop(tn);
}

/* A reader holding a snapshot keeps the checkpoint from finishing: the
 * broker goes on answering every request, and checkpoints the rest once
 * the reader is gone. */
static void test_reader_holds_snapshot(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nsubmit_rate = 0\n"); /* no bucket */
    (void)submit_many(tn, 2, 1);
    assert_true(wal_drained(tn));
    char *path = tl_path(tn->data_dir, "casenet.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN; SELECT count(*) FROM messages;", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW); /* the snapshot is taken */
    int before = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    (void)submit_many(tn, 100, 16);
    /* The loop tries to checkpoint whenever it is about to sleep: wait until
     * it has, rather than sleeping and hoping. A tree head is signed by the
     * timer (every 2 s, when the log grew); two heads, over the submits and
     * then over one more, are at least two timer ticks apart, and after a
     * tick the loop sleeps until the next: it went idle, and so tried to
     * checkpoint, while the reader held its snapshot. */
    int64_t events = wait_head_over_log(tn);
    (void)submit_many(tn, 1, 1);
    assert_true(wait_head_over_log(tn) > events);
    uint32_t mx = 0, bf = 0;
    wal_index(tn, &mx, &bf);
    assert_true(bf < mx); /* the reader pins the frames after its snapshot */
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), before); /* still its snapshot */
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    free(path);
    assert_true(wal_drained(tn));
    (void)submit_many(tn, 2, 1); /* and it goes on */
    stop(tn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_default_workers),
        cmocka_unit_test(test_burst_three_workers),
        cmocka_unit_test(test_burst_inline),
        cmocka_unit_test(test_wal_checkpointed),
        cmocka_unit_test(test_reader_holds_snapshot),
        cmocka_unit_test(test_sign_burst_inline),
        cmocka_unit_test(test_sign_burst_one_worker),
        cmocka_unit_test(test_sign_burst_three_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
