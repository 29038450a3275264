/* test_input.c - what a member with a valid key can make a real casenetd
 * on loopback reveal or accept (issue 12, items 26 to 30): a resend of a
 * stored message gets its receipt even when the rate limit or the disk
 * reserve refuses new work, and a peer cannot choose its ZeroMQ routing
 * id. */
#include "network.h"
#include "testlib.h"

#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOTLINE "vn.hotline111"
#define POLICE  "vn.police.a05"
#define MOLISA  "vn.molisa"

static const char *const members[] = {
    HOTLINE ":intake",
    POLICE ":responder:police",
    MOLISA ":responder",
};

static tn_network *start_with(const char *ini)
{
    tn_network *tn = tn_new(members, 3);
    if (ini) {
        tn->config_path = tl_path(tn->root, "casenetd.ini");
        tl_write_file(tn->config_path, ini, strlen(ini), 0644);
    }
    tn_start(tn);
    return tn;
}

static void stop(tn_network *tn)
{
    assert_int_equal(tn_stop(tn), 0);
    tn_free(tn);
}

static void rfree(Casenet__V1__Response *r)
{
    casenet__v1__response__free_unpacked(r, NULL);
}

/* ------------------------------------------------------------ item 28 */

/* A resend after a lost answer, while the member's bucket is empty, still
 * gets the original receipt (duplicate set): it is never told that nothing
 * was stored. A new message in the same state is RATE_LIMITED. */
static void test_resend_gets_receipt_when_rate_limited(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nsubmit_rate = 1\nsubmit_burst = 1\n");
    const char *to[] = {POLICE};
    casenet_buf first = tn_seal(tn, HOTLINE, to, 1, "first", NULL);
    casenet_buf second = tn_seal(tn, HOTLINE, to, 1, "second", NULL);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_submit(h, first.data, first.len);
    assert_int_equal(tn_code(r), 0);
    assert_false(r->submit->duplicate);
    casenet_buf receipt = {0};
    receipt.len = r->submit->receipt.len;
    receipt.data = malloc(receipt.len);
    memcpy(receipt.data, r->submit->receipt.data, receipt.len);
    rfree(r);
    /* The bucket is empty now. */
    r = tn_submit(h, second.data, second.len);
    assert_int_equal(tn_code(r), CASENET_ERATELIMIT);
    rfree(r);
    r = tn_submit(h, first.data, first.len);
    assert_int_equal(tn_code(r), 0);
    assert_true(r->submit->duplicate);
    assert_int_equal(r->submit->receipt.len, receipt.len);
    assert_memory_equal(r->submit->receipt.data, receipt.data, receipt.len);
    rfree(r);
    /* Another member resending those bytes gets no receipt. */
    tn_conn *m = tn_connect(tn, tn_keys(tn, MOLISA));
    r = tn_submit(m, first.data, first.len);
    assert_int_equal(tn_code(r), CASENET_EFORBIDDEN);
    rfree(r);
    tn_close(m);
    tn_close(h);
    casenet_buf_free(&receipt);
    casenet_buf_free(&first);
    casenet_buf_free(&second);
    stop(tn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resend_gets_receipt_when_rate_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
