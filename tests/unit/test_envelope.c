/* test_envelope.c - the end-to-end envelope: round trips, the broker's
 * verification, and every forgery a recipient must refuse. */
#include "casenet.pb-c.h"
#include "crypto.h"
#include "envelope_impl.h"
#include "keys_impl.h"
#include "testlib.h"
#include "tl_net.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const members[] = {
    "vn.hotline111:intake,responder:helpline",
    "vn.police.a05:responder,takedown-requester:police",
    "vn.police.hn:responder:police",
    "vn.police.hcm:responder:police",
    "vn.platform.x:platform:platforms",
    "vn.coord:coordinator",
    "vn.broker:broker",
};
#define N_MEMBERS (sizeof members / sizeof members[0])

static int setup(void **state)
{
    *state = tl_net_new(members, N_MEMBERS);
    return 0;
}

static int teardown(void **state)
{
    tl_net_free(*state);
    return 0;
}

/* Seals a referral from `from` to `to`; asserts success. */
static casenet_buf seal_to(tl_net *net, const char *from, const char *const *to, size_t n,
                           const char *text)
{
    casenet_buf payload = tl_referral_payload(text), env = {0};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = n};
    uint8_t mid[16];
    int rc =
        casenet_seal(tl_net_keys(net, from), net->dir, &o, payload.data, payload.len, &env, mid);
    assert_int_equal(rc, CASENET_OK);
    casenet_buf_free(&payload);
    return env;
}

/* Opens env as reader and checks the referral summary is text. */
static void open_expect(tl_net *net, const char *reader, const casenet_buf *env, const char *text)
{
    casenet_message_info info;
    casenet_buf out = {0};
    assert_int_equal(
        casenet_open(tl_net_keys(net, reader), net->dir, env->data, env->len, &info, &out),
        CASENET_OK);
    Casenet__V1__Payload *p = casenet__v1__payload__unpack(NULL, out.len, out.data);
    assert_non_null(p);
    assert_int_equal(p->body_case, CASENET__V1__PAYLOAD__BODY_REFERRAL);
    assert_string_equal(p->referral->summary, text);
    casenet__v1__payload__free_unpacked(p, NULL);
    casenet_buf_free(&out);
    casenet_message_info_clear(&info);
}

static void test_round_trip_one(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 1, "child at risk");
    casenet_message_info info;
    assert_int_equal(casenet_envelope_verify(net->dir, env.data, env.len, &info), CASENET_OK);
    assert_string_equal(info.sender, "vn.hotline111");
    assert_int_equal(info.kind, CASENET_KIND_REFERRAL);
    assert_int_equal(info.urgency, CASENET_URGENCY_STANDARD);
    assert_int_equal(info.status, CASENET_MSG_ACTUAL);
    assert_int_equal(info.n_recipients, 1);
    assert_string_equal(info.recipients[0], "vn.police.a05");
    assert_false(info.has_in_reply_to);
    uint8_t h[32];
    cn_sha256(env.data, env.len, h);
    assert_memory_equal(info.envelope_hash, h, 32);
    casenet_message_info_clear(&info);
    open_expect(net, "vn.police.a05", &env, "child at risk");
    casenet_buf_free(&env);
}

static void test_round_trip_two(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05", "vn.platform.x"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 2, "two");
    open_expect(net, "vn.police.a05", &env, "two");
    open_expect(net, "vn.platform.x", &env, "two");
    casenet_buf_free(&env);
}

static void test_round_trip_group(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"@police", "vn.police.hn", "vn.hotline111"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 3, "group");
    casenet_message_info info;
    assert_int_equal(casenet_envelope_verify(net->dir, env.data, env.len, &info), CASENET_OK);
    assert_int_equal(info.n_recipients, 4);
    assert_string_equal(info.recipients[0], "vn.police.a05");
    assert_string_equal(info.recipients[1], "vn.police.hn");
    assert_string_equal(info.recipients[2], "vn.police.hcm");
    assert_string_equal(info.recipients[3], "vn.hotline111");
    casenet_message_info_clear(&info);
    open_expect(net, "vn.police.hcm", &env, "group");
    open_expect(net, "vn.hotline111", &env, "group");
    casenet_buf_free(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_group, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
