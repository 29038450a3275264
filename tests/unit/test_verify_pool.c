/* test_verify_pool.c - the broker's verification pool (broker/verify.c): for
 * every frame it gives exactly what casenet_envelope_verify gives (valid,
 * forged, malformed, wrong kind of request, unparsable, oversized), with no
 * workers, one and several, waited for in any order, over many rounds;
 * cancelling, checking again against another directory, and stopping with
 * jobs queued; the parallel loop runs every item once, beside queued jobs;
 * a job no worker has taken is verified by the thread waiting for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testlib.h"
#include "tl_net.h"
#include "verify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_FRAMES  24
#define MAX_BYTES (64u * 1024u)

struct fixture {
    tl_net *net;
    casenet_buf frames[N_FRAMES];
    casenet_buf envelopes[N_FRAMES]; /* empty for frames that are not Submits */
};

static casenet_buf pack_request(Casenet__V1__Request *req)
{
    casenet_buf b;
    req->protocol_version = 1;
    b.len = casenet__v1__request__get_packed_size(req);
    b.data = malloc(b.len + 1);
    assert_non_null(b.data);
    casenet__v1__request__pack(req, b.data);
    return b;
}

static casenet_buf submit_frame(const uint8_t *env, size_t len)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Submit s = CASENET__V1__SUBMIT__INIT;
    s.envelope.data = (uint8_t *)env;
    s.envelope.len = len;
    req.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    req.submit = &s;
    return pack_request(&req);
}

static casenet_buf seal(tl_net *net, const char *from, const char *to)
{
    casenet_buf payload = tl_referral_payload("verify pool");
    const char *rcpt[] = {to};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = rcpt, .n_to = 1};
    casenet_buf env = {0};
    CN_OK(
        casenet_seal(tl_net_keys(net, from), net->dir, &o, payload.data, payload.len, &env, NULL));
    casenet_buf_free(&payload);
    return env;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *members[] = {"vn.alpha:intake", "vn.beta:responder"};
    f->net = tl_net_new(members, 2);
    for (size_t i = 0; i < N_FRAMES; i++) {
        switch (i % 6) {
        case 0: /* valid */
        case 1:
            f->envelopes[i] = seal(f->net, "vn.alpha", "vn.beta");
            break;
        case 2: /* forged: one byte of the ciphertext changed */
            f->envelopes[i] = seal(f->net, "vn.beta", "vn.alpha");
            f->envelopes[i].data[f->envelopes[i].len - 1] ^= 1;
            break;
        case 3: /* not an envelope */
            f->envelopes[i].data = malloc(8);
            memcpy(f->envelopes[i].data, "\x0a\x05junk", 7);
            f->envelopes[i].len = 7;
            break;
        default:
            break;
        }
        if (f->envelopes[i].data) {
            f->frames[i] = submit_frame(f->envelopes[i].data, f->envelopes[i].len);
        } else if (i % 6 == 4) { /* a Hello */
            Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
            Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
            req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
            req.hello = &h;
            f->frames[i] = pack_request(&req);
        } else { /* not a Request at all */
            f->frames[i].data = malloc(4);
            memcpy(f->frames[i].data, "\xff\xff\xff\xff", 4);
            f->frames[i].len = 4;
        }
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < N_FRAMES; i++) {
        casenet_buf_free(&f->frames[i]);
        casenet_buf_free(&f->envelopes[i]);
    }
    tl_net_free(f->net);
    free(f);
    return 0;
}

/* Prepares job i from frame i; true when it was selected. */
static bool prepare(struct fixture *f, struct verify_job *j, size_t i, uint32_t max_bytes)
{
    memset(j, 0, sizeof *j);
    bool sel = verify_job_prepare(j, f->frames[i].data, f->frames[i].len, max_bytes);
    assert_int_equal(sel, j->result.envelope != NULL);
    return sel;
}

/* Checks job i's result against the direct call with dir. */
static int check_result(struct fixture *f, const casenet_directory *dir, struct verify_job *j,
                        size_t i)
{
    const casenet_buf *e = &f->envelopes[i];
    casenet_message_info info = {0};
    int want = casenet_envelope_verify(dir, e->data, e->len, &info);
    assert_int_equal(j->state, VERIFY_DONE);
    assert_non_null(j->result.envelope);
    assert_int_equal(j->result.len, e->len);
    assert_memory_equal(j->result.envelope, e->data, e->len);
    assert_int_equal(j->result.rc, want);
    if (want == CASENET_OK) {
        assert_memory_equal(j->result.info.message_id, info.message_id, CASENET_MESSAGE_ID_BYTES);
        assert_memory_equal(j->result.info.envelope_hash, info.envelope_hash, CASENET_HASH_BYTES);
        assert_string_equal(j->result.info.sender, info.sender);
        assert_int_equal(j->result.info.n_recipients, 1);
        casenet_message_info_clear(&info);
    }
    return want;
}

/* Runs the frames through a pool of `threads` workers, submitted in order
 * and waited for in another order (the loop waits for the items of its
 * batch while later ones are queued), and checks each result against the
 * direct call. */
static void check_pool(struct fixture *f, unsigned threads, uint32_t max_bytes)
{
    struct verify_pool *p = NULL;
    CN_OK(verify_pool_new(threads, &p));
    assert_int_equal(verify_pool_threads(p), threads);
    struct verify_job jobs[N_FRAMES];
    bool sel[N_FRAMES];
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < N_FRAMES; i++) {
            sel[i] = prepare(f, &jobs[i], i, max_bytes);
            const casenet_buf *e = &f->envelopes[i];
            assert_int_equal(sel[i], e->data && e->len <= max_bytes);
            if (sel[i])
                verify_pool_submit(p, f->net->dir, &jobs[i]);
        }
        size_t ok = 0, refused = 0;
        for (size_t k = 0; k < N_FRAMES; k++) {
            /* round r waits from item r on, wrapping around */
            size_t i = (k + (size_t)round) % N_FRAMES;
            if (sel[i]) {
                verify_pool_wait(p, &jobs[i]);
                int want = check_result(f, f->net->dir, &jobs[i], i);
                ok += want == CASENET_OK;
                refused += want != CASENET_OK;
            }
            verify_job_clear(&jobs[i]);
            assert_null(jobs[i].req);
        }
        if (max_bytes == MAX_BYTES) {
            assert_int_equal(ok, N_FRAMES / 3);      /* cases 0 and 1 of every 6 */
            assert_int_equal(refused, N_FRAMES / 3); /* forged and junk */
        } else {
            assert_int_equal(ok, 0); /* every sealed envelope is over 64 bytes */
        }
    }
    verify_pool_free(p);
}

static void test_no_workers(void **state)
{
    check_pool(*state, 0, MAX_BYTES);
}

static void test_one_worker(void **state)
{
    check_pool(*state, 1, MAX_BYTES);
}

static void test_four_workers(void **state)
{
    check_pool(*state, 4, MAX_BYTES);
}

/* Envelopes over the broker's size limit are left to the handler (which
 * refuses them as TOO_LARGE before any verification). */
static void test_oversized_left_alone(void **state)
{
    check_pool(*state, 1, 64);
}

/* Cancelling: a job no worker took is idle again, unverified; one being
 * verified is waited for; the others still complete correctly. */
static void test_cancel(void **state)
{
    struct fixture *f = *state;
    struct verify_pool *p = NULL;
    CN_OK(verify_pool_new(1, &p));
    for (int round = 0; round < 20; round++) {
        struct verify_job jobs[N_FRAMES];
        bool sel[N_FRAMES];
        for (size_t i = 0; i < N_FRAMES; i++) {
            sel[i] = prepare(f, &jobs[i], i, MAX_BYTES);
            if (sel[i])
                verify_pool_submit(p, f->net->dir, &jobs[i]);
        }
        size_t idle = 0;
        for (size_t i = 0; i < N_FRAMES; i++) {
            if (!sel[i])
                continue;
            if (i % 2 == 0) {
                verify_pool_cancel(p, &jobs[i]);
                assert_true(jobs[i].state == VERIFY_IDLE || jobs[i].state == VERIFY_DONE);
                if (jobs[i].state == VERIFY_DONE)
                    (void)check_result(f, f->net->dir, &jobs[i], i);
                else
                    idle++;
            }
        }
        for (size_t i = 0; i < N_FRAMES; i++) {
            if (sel[i] && i % 2 == 1) {
                verify_pool_wait(p, &jobs[i]);
                (void)check_result(f, f->net->dir, &jobs[i], i);
            }
            verify_job_clear(&jobs[i]);
        }
        (void)idle; /* how many the worker took first depends on timing */
    }
    verify_pool_free(p);
}

/* A check redone against another directory (after a swap) gives that
 * directory's answer: the sender unknown there. */
static void test_reset_resubmit(void **state)
{
    struct fixture *f = *state;
    const char *others[] = {"vn.gamma:intake"};
    tl_net *net2 = tl_net_new(others, 1);
    struct verify_pool *p = NULL;
    CN_OK(verify_pool_new(1, &p));
    struct verify_job j;
    assert_true(prepare(f, &j, 0, MAX_BYTES)); /* valid under f->net */
    verify_pool_submit(p, f->net->dir, &j);
    verify_pool_wait(p, &j);
    CN_OK(j.result.rc);
    verify_pool_cancel(p, &j); /* no-op when done */
    verify_job_reset(&j);
    assert_int_equal(j.state, VERIFY_IDLE);
    assert_non_null(j.result.envelope);
    verify_pool_submit(p, net2->dir, &j);
    verify_pool_wait(p, &j);
    assert_int_not_equal(j.result.rc, CASENET_OK);
    (void)check_result(f, net2->dir, &j, 0);
    verify_job_clear(&j);
    verify_pool_free(p);
    tl_net_free(net2);
}

/* Freeing the pool with jobs still queued leaves them idle or verified, for
 * their owner to clear (no leak, no use after free under ASan). */
static void test_free_with_queued(void **state)
{
    struct fixture *f = *state;
    struct verify_pool *p = NULL;
    CN_OK(verify_pool_new(2, &p));
    struct verify_job jobs[N_FRAMES];
    for (size_t i = 0; i < N_FRAMES; i++)
        if (prepare(f, &jobs[i], i, MAX_BYTES))
            verify_pool_submit(p, f->net->dir, &jobs[i]);
    verify_pool_free(p);
    for (size_t i = 0; i < N_FRAMES; i++) {
        assert_true(jobs[i].state == VERIFY_IDLE || jobs[i].state == VERIFY_DONE);
        assert_null(jobs[i].next);
        verify_job_clear(&jobs[i]);
    }
}

static void test_free_null(void **state)
{
    (void)state;
    verify_pool_free(NULL);
    verify_job_clear(NULL);
}

/* The parallel loop: every item published runs exactly once, whoever runs
 * it, also while jobs are queued, with no worker, one and several. */
#define FOR_ITEMS 200

struct for_items {
    int runs[FOR_ITEMS];
    size_t seen[FOR_ITEMS]; /* a value written before publishing */
    size_t copy[FOR_ITEMS]; /* what the runner read */
};

static void for_item(void *arg, size_t i)
{
    struct for_items *x = arg;
    x->runs[i]++;
    x->copy[i] = x->seen[i];
}

static void check_for(struct fixture *f, unsigned threads)
{
    struct verify_pool *p = NULL;
    CN_OK(verify_pool_new(threads, &p));
    static struct verify_job jobs[N_FRAMES];
    for (int round = 0; round < 3; round++) {
        static struct for_items x;
        memset(&x, 0, sizeof x);
        size_t queued = 0;
        for (size_t i = 0; i < N_FRAMES; i++) {
            memset(&jobs[i], 0, sizeof jobs[i]);
            if (prepare(f, &jobs[i], i, MAX_BYTES)) {
                verify_pool_submit(p, f->net->dir, &jobs[i]);
                queued++;
            }
        }
        assert_true(queued > 0);
        verify_pool_for_begin(p, for_item, &x);
        for (size_t n = 0; n < FOR_ITEMS;) {
            size_t step = (n % 7) + 1;
            for (size_t k = n; k < n + step && k < FOR_ITEMS; k++)
                x.seen[k] = k * 3 + 1;
            n = n + step < FOR_ITEMS ? n + step : FOR_ITEMS;
            verify_pool_for_grow(p, n);
        }
        verify_pool_for_end(p);
        for (size_t i = 0; i < FOR_ITEMS; i++) {
            assert_int_equal(x.runs[i], 1);
            assert_int_equal(x.copy[i], i * 3 + 1);
        }
        for (size_t i = 0; i < N_FRAMES; i++) {
            if (jobs[i].result.envelope) {
                verify_pool_wait(p, &jobs[i]);
                (void)check_result(f, f->net->dir, &jobs[i], i);
            }
            verify_job_clear(&jobs[i]);
        }
        /* An empty loop ends at once. */
        verify_pool_for_begin(p, for_item, &x);
        verify_pool_for_end(p);
        assert_int_equal(x.runs[0], 1);
    }
    verify_pool_free(p);
}

static void test_for_loop(void **state)
{
    struct fixture *f = *state;
    check_for(f, 0);
    check_for(f, 1);
    check_for(f, 3);
}

/* The waiting thread does not wait for a worker that has not taken the job:
 * the only worker is held in a loop item until the wait has returned, so
 * the wait can return only by verifying the job itself. A watchdog frees
 * the worker after 20 s, so that a wait that depends on it ends (and the
 * test fails) instead of hanging. */
struct hold {
    atomic_bool started, released, done, watchdog_fired;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void hold_item(void *arg, size_t i)
{
    (void)i;
    struct hold *h = arg;
    atomic_store(&h->started, true);
    while (!atomic_load(&h->released))
        sleep_ms(1);
}

static void *watchdog(void *arg)
{
    struct hold *h = arg;
    for (int t = 0; t < 20000 && !atomic_load(&h->done); t += 10)
        sleep_ms(10);
    if (!atomic_load(&h->done)) {
        atomic_store(&h->watchdog_fired, true);
        atomic_store(&h->released, true);
    }
    return NULL;
}

static void test_wait_runs_untaken_job(void **state)
{
    struct fixture *f = *state;
    struct verify_pool *p = NULL;
    CN_OK(verify_pool_new(1, &p));
    struct hold h;
    atomic_init(&h.started, false);
    atomic_init(&h.released, false);
    atomic_init(&h.done, false);
    atomic_init(&h.watchdog_fired, false);
    pthread_t dog;
    assert_int_equal(pthread_create(&dog, NULL, watchdog, &h), 0);
    verify_pool_for_begin(p, hold_item, &h);
    verify_pool_for_grow(p, 1);
    while (!atomic_load(&h.started))
        sleep_ms(1);
    /* The worker is busy: frame 0 (valid) and frame 2 (forged, case 2 of
     * every 6) stay queued until waited for. */
    struct verify_job good, forged;
    assert_true(prepare(f, &good, 0, MAX_BYTES));
    assert_true(prepare(f, &forged, 2, MAX_BYTES));
    verify_pool_submit(p, f->net->dir, &good);
    verify_pool_submit(p, f->net->dir, &forged);
    verify_pool_wait(p, &forged); /* out of order: the later one first */
    verify_pool_wait(p, &good);
    assert_false(atomic_load(&h.watchdog_fired));
    CN_OK(check_result(f, f->net->dir, &good, 0));
    assert_int_not_equal(check_result(f, f->net->dir, &forged, 2), CASENET_OK);
    atomic_store(&h.done, true);
    atomic_store(&h.released, true);
    verify_pool_for_end(p);
    pthread_join(dog, NULL);
    verify_job_clear(&good);
    verify_job_clear(&forged);
    verify_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_workers),       cmocka_unit_test(test_one_worker),
        cmocka_unit_test(test_four_workers),     cmocka_unit_test(test_oversized_left_alone),
        cmocka_unit_test(test_cancel),           cmocka_unit_test(test_reset_resubmit),
        cmocka_unit_test(test_free_with_queued), cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_for_loop),         cmocka_unit_test(test_wait_runs_untaken_job),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
