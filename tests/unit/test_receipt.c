/* test_receipt.c - recipients' signed receipts and the broker's submit
 * receipts: round trips, forgeries, unknown signers. */
#include "casenet.pb-c.h"
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
#include <stdlib.h>
#include <string.h>

static const char *const members[] = {
    "vn.hotline111:intake",
    "vn.police.a05:responder",
    "vn.broker:broker",
};

static int setup(void **state)
{
    *state = tl_net_new(members, 3);
    return 0;
}

static int teardown(void **state)
{
    tl_net_free(*state);
    return 0;
}

static casenet_receipt sample(void)
{
    casenet_receipt r;
    memset(&r, 0, sizeof r);
    randombytes_buf(r.message_id, sizeof r.message_id);
    randombytes_buf(r.envelope_hash, sizeof r.envelope_hash);
    strcpy(r.sender, "vn.hotline111");
    strcpy(r.recipient, "vn.police.a05");
    r.status = CASENET_RECEIPT_DECLINED;
    strcpy(r.reason, "not-competent");
    r.signed_at_ms = cn_now_ms();
    return r;
}

static void test_receipt_round_trip(void **state)
{
    tl_net *net = *state;
    casenet_receipt r = sample(), got;
    casenet_buf buf = {0};
    assert_int_equal(casenet_receipt_sign(tl_net_keys(net, "vn.police.a05"), &r, &buf), CASENET_OK);
    assert_int_equal(casenet_receipt_verify(net->dir, buf.data, buf.len, &got), CASENET_OK);
    assert_memory_equal(got.message_id, r.message_id, 16);
    assert_memory_equal(got.envelope_hash, r.envelope_hash, 32);
    assert_string_equal(got.sender, r.sender);
    assert_string_equal(got.recipient, r.recipient);
    assert_int_equal(got.status, r.status);
    assert_string_equal(got.reason, r.reason);
    assert_string_equal(got.outcome, "");
    assert_int_equal(got.signed_at_ms, r.signed_at_ms);
    casenet_buf_free(&buf);
}

static void test_submit_receipt_round_trip(void **state)
{
    tl_net *net = *state;
    casenet_submit_receipt r, got;
    memset(&r, 0, sizeof r);
    randombytes_buf(r.message_id, sizeof r.message_id);
    randombytes_buf(r.envelope_hash, sizeof r.envelope_hash);
    r.accepted_at_ms = cn_now_ms();
    r.audit_index = 42;
    casenet_buf buf = {0};
    assert_int_equal(casenet_submit_receipt_sign(tl_net_keys(net, "vn.broker"), &r, &buf),
                     CASENET_OK);
    assert_int_equal(casenet_submit_receipt_verify(net->dir, buf.data, buf.len, &got), CASENET_OK);
    assert_memory_equal(got.message_id, r.message_id, 16);
    assert_memory_equal(got.envelope_hash, r.envelope_hash, 32);
    assert_int_equal(got.accepted_at_ms, r.accepted_at_ms);
    assert_int_equal(got.audit_index, 42);
    assert_string_equal(got.broker_id, "vn.broker");
    casenet_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_receipt_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_receipt_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
