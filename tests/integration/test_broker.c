/* test_broker.c - casenetd on loopback: authentication, submit/receipt,
 * inboxes, fetch, receipts, directory publication, limits, crashes. */
#include "network.h"
#include "testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

static const char *const members[] = {
    "vn.hotline111:intake",
    "vn.police.a05:responder:police",
    "vn.molisa:responder",
    "vn.platform.x:platform:platforms",
};

static int setup(void **state)
{
    tn_network *tn = tn_new(members, 4);
    tn_start(tn);
    *state = tn;
    return 0;
}

static int teardown(void **state)
{
    tn_network *tn = *state;
    assert_int_equal(tn_stop(tn), 0);
    tn_free(tn);
    return 0;
}

static void test_hello(void **state)
{
    tn_network *tn = *state;
    tn_conn *c = tn_connect(tn, tn_keys(tn, "vn.police.a05"));
    Casenet__V1__Response *r = tn_hello(c);
    assert_non_null(r);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->body_case, CASENET__V1__RESPONSE__BODY_HELLO);
    assert_string_equal(r->hello->member_id, "vn.police.a05");
    assert_string_equal(r->hello->broker_id, TN_BROKER_ID);
    assert_int_equal(r->hello->directory_version, casenet_directory_version(tn->net->dir));
    assert_int_equal(r->hello->max_envelope_bytes, 1024 * 1024);
    casenet__v1__response__free_unpacked(r, NULL);
    tn_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
