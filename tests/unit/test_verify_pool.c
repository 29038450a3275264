/* test_verify_pool.c - the broker's verification pool (broker/verify.c): for
 * every frame of a batch it gives exactly what casenet_envelope_verify gives
 * (valid, forged, malformed, wrong kind of request, unparsable, oversized),
 * with no workers, one and several, over many batches in a row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tl_net.h"
#include "verify.h"

#include <stdlib.h>
#include <string.h>

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
    assert_int_equal(
        casenet_seal(tl_net_keys(net, from), net->dir, &o, payload.data, payload.len, &env, NULL),
        CASENET_OK);
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

/* Runs the frames through a pool of `threads` workers and checks each
 * result against the direct call. */
static void check_pool(struct fixture *f, unsigned threads, uint32_t max_bytes)
{
    struct verify_pool *p = NULL;
    assert_int_equal(verify_pool_new(threads, &p), CASENET_OK);
    struct verify_job jobs[N_FRAMES];
    for (int round = 0; round < 20; round++) {
        size_t n = round == 0 ? 1 : N_FRAMES; /* a lone request runs inline */
        for (size_t i = 0; i < n; i++) {
            jobs[i] = (struct verify_job){.frame = f->frames[i].data, .len = f->frames[i].len};
            verify_job_prepare(&jobs[i], max_bytes);
        }
        verify_pool_run(p, f->net->dir, jobs, n);
        size_t ok = 0, refused = 0;
        for (size_t i = 0; i < n; i++) {
            struct verify_job *j = &jobs[i];
            const casenet_buf *e = &f->envelopes[i];
            if (!e->data || e->len > max_bytes) {
                assert_null(j->result.envelope);
            } else {
                casenet_message_info info = {0};
                int want = casenet_envelope_verify(f->net->dir, e->data, e->len, &info);
                assert_non_null(j->result.envelope);
                assert_int_equal(j->result.len, e->len);
                assert_memory_equal(j->result.envelope, e->data, e->len);
                assert_int_equal(j->result.rc, want);
                ok += want == CASENET_OK;
                refused += want != CASENET_OK;
                if (want == CASENET_OK) {
                    assert_memory_equal(j->result.info.message_id, info.message_id,
                                        CASENET_MESSAGE_ID_BYTES);
                    assert_memory_equal(j->result.info.envelope_hash, info.envelope_hash,
                                        CASENET_HASH_BYTES);
                    assert_string_equal(j->result.info.sender, info.sender);
                    assert_int_equal(j->result.info.n_recipients, 1);
                    casenet_message_info_clear(&info);
                }
            }
            verify_job_clear(j);
            assert_null(j->req);
        }
        if (n == N_FRAMES && max_bytes == MAX_BYTES) {
            assert_int_equal(ok, N_FRAMES / 3);      /* cases 0 and 1 of every 6 */
            assert_int_equal(refused, N_FRAMES / 3); /* forged and junk */
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

/* A job the loop deselects (its member's bucket will refuse it) is not
 * verified: no result, no info. */
static void test_deselected(void **state)
{
    struct fixture *f = *state;
    struct verify_pool *p = NULL;
    assert_int_equal(verify_pool_new(1, &p), CASENET_OK);
    struct verify_job jobs[3];
    for (size_t i = 0; i < 3; i++) {
        jobs[i] = (struct verify_job){.frame = f->frames[i].data, .len = f->frames[i].len};
        verify_job_prepare(&jobs[i], MAX_BYTES);
        assert_non_null(jobs[i].result.envelope); /* 0, 1 valid; 2 forged */
    }
    jobs[1].result.envelope = NULL;
    jobs[1].result.rc = -1;
    verify_pool_run(p, f->net->dir, jobs, 3);
    assert_int_equal(jobs[0].result.rc, CASENET_OK);
    assert_int_equal(jobs[1].result.rc, -1);
    assert_int_equal(jobs[1].result.info.n_recipients, 0);
    assert_int_not_equal(jobs[2].result.rc, CASENET_OK);
    for (size_t i = 0; i < 3; i++)
        verify_job_clear(&jobs[i]);
    verify_pool_free(p);
}

static void test_free_null(void **state)
{
    (void)state;
    verify_pool_free(NULL);
    verify_job_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_workers),   cmocka_unit_test(test_one_worker),
        cmocka_unit_test(test_four_workers), cmocka_unit_test(test_oversized_left_alone),
        cmocka_unit_test(test_deselected),   cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
