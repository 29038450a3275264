/* test_client.c - libcasenet's broker connection (casenet_client_*) against a
 * real casenetd on loopback (tests/testlib/network.h): hello, the submit /
 * list / fetch / open / receipt round trip, idempotent resubmission, errors,
 * refused and mis-keyed handshakes, pushed notices, reconnect after a broker
 * crash with the subscription restored, and a stopped broker. */
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

/* Slack for scheduling on a loaded 2-core machine (and ASan). */
#define MARGIN_MS 1500

static const char *const members[] = {
    HOTLINE ":intake",
    POLICE ":responder:police",
    MOLISA ":responder",
};

static int setup(void **state)
{
    tn_network *tn = tn_new(members, 3);
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

static casenet_client *connect_as(tn_network *tn, const char *id, int timeout_ms)
{
    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = timeout_ms};
    casenet_client *c = NULL;
    int rc = casenet_client_connect(tn_keys(tn, id), tn->net->dir, &o, &c);
    if (rc != CASENET_OK)
        fail_msg("connect as %s: %s", id, casenet_strerror(rc));
    return c;
}

/* Submits and checks the receipt names the message. */
static void submit_ok(casenet_client *c, const casenet_buf *env, const uint8_t id[16],
                      casenet_submit_receipt *r, bool *dup)
{
    int rc = casenet_client_submit(c, env->data, env->len, r, dup);
    if (rc != CASENET_OK)
        fail_msg("submit: %s (%s)", casenet_strerror(rc), casenet_client_last_error(c));
    assert_memory_equal(r->message_id, id, 16);
    uint8_t h[32];
    cn_sha256(env->data, env->len, h);
    assert_memory_equal(r->envelope_hash, h, 32);
    assert_string_equal(r->broker_id, TN_BROKER_ID);
}

/* The entry for message id in c's inbox (any state), all pages. */
static bool find_entry(casenet_client *c, const uint8_t id[16], casenet_inbox_entry *out)
{
    uint64_t cursor = 0;
    bool found = false;
    for (;;) {
        casenet_inbox_entry *e = NULL;
        size_t n = 0;
        bool more = false;
        uint64_t next = 0;
        assert_int_equal(casenet_client_list(c, CASENET_INBOX_ANY, cursor, 0, &e, &n, &next, &more),
                         CASENET_OK);
        for (size_t i = 0; i < n; i++) {
            if (!found && memcmp(e[i].message_id, id, 16) == 0) {
                *out = e[i];
                memset(&e[i], 0, sizeof e[i]);
                found = true;
            }
        }
        casenet_inbox_entries_free(e, n);
        if (!more)
            return found;
        assert_true(next > cursor);
        cursor = next;
    }
}

/* ------------------------------------------------------------ tests */

static void test_connect_hello_directory(void **state)
{
    tn_network *tn = *state;
    casenet_client *c = connect_as(tn, HOTLINE, 0);
    assert_string_equal(casenet_client_last_error(c), "");
    casenet_buf d = {0};
    assert_int_equal(casenet_client_get_directory(c, &d), CASENET_OK);
    assert_int_equal(d.len, tn->net->signed_dir.len);
    assert_memory_equal(d.data, tn->net->signed_dir.data, d.len);
    casenet_buf_free(&d);
    casenet_client_free(c);

    /* Bad arguments never reach the wire. */
    casenet_client_opts o = {.endpoint = NULL};
    assert_int_equal(casenet_client_connect(tn_keys(tn, HOTLINE), tn->net->dir, &o, &c),
                     CASENET_EINVAL);
    o.endpoint = "no-scheme";
    assert_int_equal(casenet_client_connect(tn_keys(tn, HOTLINE), tn->net->dir, &o, &c),
                     CASENET_EINVAL);
}

static void test_submit_list_fetch_open_receipt(void **state)
{
    tn_network *tn = *state;
    casenet_client *h = connect_as(tn, HOTLINE, 0);
    casenet_client *p = connect_as(tn, POLICE, 0);
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "child at risk, call back", id);
    casenet_submit_receipt sr;
    bool dup = true;
    submit_ok(h, &env, id, &sr, &dup);
    assert_false(dup);

    /* The recipient lists, fetches and opens it. */
    casenet_inbox_entry e;
    assert_true(find_entry(p, id, &e));
    assert_string_equal(e.sender, HOTLINE);
    assert_int_equal(e.kind, CASENET_KIND_REFERRAL);
    assert_int_equal(e.state, CASENET_INBOX_QUEUED);
    assert_int_equal(e.size, env.len);
    assert_true(e.seq > 0);
    casenet_inbox_entry_clear(&e);

    casenet_buf got = {0};
    assert_int_equal(casenet_client_fetch(p, id, &got), CASENET_OK);
    assert_int_equal(got.len, env.len);
    assert_memory_equal(got.data, env.data, env.len);
    casenet_message_info info;
    casenet_buf payload = {0};
    assert_int_equal(
        casenet_open(tn_keys(tn, POLICE), tn->net->dir, got.data, got.len, &info, &payload),
        CASENET_OK);
    casenet_buf want = tl_referral_payload("child at risk, call back");
    assert_int_equal(payload.len, want.len);
    assert_memory_equal(payload.data, want.data, want.len);
    assert_true(find_entry(p, id, &e));
    assert_int_equal(e.state, CASENET_INBOX_FETCHED);
    casenet_inbox_entry_clear(&e);

    /* Someone else cannot fetch it. */
    casenet_client *m = connect_as(tn, MOLISA, 0);
    casenet_buf none = {0};
    assert_int_equal(casenet_client_fetch(m, id, &none), CASENET_ENOTFOUND);
    assert_string_not_equal(casenet_client_last_error(m), "");
    assert_null(none.data);
    casenet_client_free(m);

    /* The recipient's signed receipt travels back to the sender. */
    casenet_receipt rc = {.status = CASENET_RECEIPT_DELIVERED, .signed_at_ms = cn_now_ms()};
    memcpy(rc.message_id, id, 16);
    memcpy(rc.envelope_hash, info.envelope_hash, 32);
    snprintf(rc.sender, sizeof rc.sender, "%s", HOTLINE);
    snprintf(rc.recipient, sizeof rc.recipient, "%s", POLICE);
    casenet_buf signed_rc = {0};
    assert_int_equal(casenet_receipt_sign(tn_keys(tn, POLICE), &rc, &signed_rc), CASENET_OK);
    uint64_t idx = 0;
    assert_int_equal(casenet_client_send_receipt(p, signed_rc.data, signed_rc.len, &idx),
                     CASENET_OK);
    assert_true(idx > sr.audit_index);
    /* Identical receipts are idempotent at the broker. */
    assert_int_equal(casenet_client_send_receipt(p, signed_rc.data, signed_rc.len, NULL),
                     CASENET_OK);

    casenet_inbox_entry *all = NULL;
    size_t n = 0;
    bool more = true;
    uint64_t next = 0;
    assert_int_equal(casenet_client_list(h, CASENET_INBOX_ANY, 0, 0, &all, &n, &next, &more),
                     CASENET_OK);
    assert_false(more);
    assert_int_equal(n, 1);
    assert_int_equal(all[0].kind, CASENET_KIND_RECEIPT);
    assert_string_equal(all[0].sender, POLICE);
    assert_true(all[0].has_in_reply_to);
    assert_memory_equal(all[0].in_reply_to, id, 16);
    assert_int_equal(all[0].receipt_status, CASENET_RECEIPT_DELIVERED);
    casenet_receipt back;
    assert_int_equal(
        casenet_receipt_verify(tn->net->dir, all[0].receipt.data, all[0].receipt.len, &back),
        CASENET_OK);
    assert_memory_equal(back.message_id, id, 16);
    assert_string_equal(back.recipient, POLICE);
    casenet_inbox_entries_free(all, n);
    assert_true(find_entry(p, id, &e));
    assert_int_equal(e.state, CASENET_INBOX_DELIVERED);
    casenet_inbox_entry_clear(&e);

    casenet_message_info_clear(&info);
    casenet_buf_free(&payload);
    casenet_buf_free(&want);
    casenet_buf_free(&got);
    casenet_buf_free(&signed_rc);
    casenet_buf_free(&env);
    casenet_client_free(p);
    casenet_client_free(h);
}

static void test_submit_twice_is_duplicate(void **state)
{
    tn_network *tn = *state;
    casenet_client *h = connect_as(tn, HOTLINE, 0);
    const char *to[] = {POLICE, MOLISA};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 2, "twice", id);
    casenet_submit_receipt a, b;
    bool dup = true;
    submit_ok(h, &env, id, &a, &dup);
    assert_false(dup);
    submit_ok(h, &env, id, &b, &dup);
    assert_true(dup);
    assert_memory_equal(&a, &b, sizeof a);

    /* A broker error comes back as its code with the broker's message: an
     * envelope not sealed by this member. */
    casenet_client *p = connect_as(tn, POLICE, 0);
    casenet_submit_receipt x;
    int rc = casenet_client_submit(p, env.data, env.len, &x, NULL);
    assert_int_not_equal(rc, CASENET_OK);
    assert_true(rc >= CASENET_EBADREQ && rc <= CASENET_EVERSION);
    assert_string_not_equal(casenet_client_last_error(p), "");
    /* Not an envelope at all: refused locally. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_int_equal(casenet_client_submit(p, junk, sizeof junk, &x, NULL), CASENET_EINVAL);
    casenet_client_free(p);
    casenet_buf_free(&env);
    casenet_client_free(h);
}

static void test_list_pages(void **state)
{
    tn_network *tn = *state;
    casenet_client *h = connect_as(tn, HOTLINE, 0);
    casenet_client *p = connect_as(tn, POLICE, 0);
    const char *to[] = {POLICE};
    uint8_t ids[5][16];
    for (int i = 0; i < 5; i++) {
        casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "page", ids[i]);
        casenet_submit_receipt r;
        submit_ok(h, &env, ids[i], &r, NULL);
        casenet_buf_free(&env);
    }
    uint64_t cursor = 0;
    size_t total = 0, pages = 0;
    bool more = true;
    while (more) {
        casenet_inbox_entry *e = NULL;
        size_t n = 0;
        uint64_t next = 0;
        assert_int_equal(
            casenet_client_list(p, CASENET_INBOX_QUEUED, cursor, 2, &e, &n, &next, &more),
            CASENET_OK);
        assert_true(n <= 2);
        for (size_t i = 0; i < n; i++)
            assert_memory_equal(e[i].message_id, ids[total + i], 16);
        total += n;
        pages++;
        cursor = next;
        casenet_inbox_entries_free(e, n);
    }
    assert_int_equal(total, 5);
    assert_true(pages >= 3);
    casenet_inbox_entry *e = NULL;
    size_t n = 1;
    assert_int_equal(casenet_client_list(p, 99, 0, 0, &e, &n, NULL, NULL), CASENET_EINVAL);
    casenet_client_free(p);
    casenet_client_free(h);
}

static void test_publish_directory(void **state)
{
    tn_network *tn = *state;
    casenet_keys *ngo = NULL;
    assert_int_equal(casenet_keys_generate("vn.ngo.safe", cn_now_ms(), &ngo), CASENET_OK);
    tl_net_add(tn->net, "vn.ngo.safe:responder", ngo);
    casenet_client *h = connect_as(tn, HOTLINE, 0);
    uint64_t v = 0;
    assert_int_equal(
        casenet_client_publish_directory(h, tn->net->signed_dir.data, tn->net->signed_dir.len, &v),
        CASENET_OK);
    assert_int_equal(v, casenet_directory_version(tn->net->dir));
    assert_int_equal(
        casenet_client_publish_directory(h, tn->net->signed_dir.data, tn->net->signed_dir.len, &v),
        CASENET_ECONFLICT);
    assert_string_not_equal(casenet_client_last_error(h), "");
    /* The new member connects with the new directory. */
    casenet_client_opts o = {.endpoint = tn->endpoint};
    casenet_client *n = NULL;
    assert_int_equal(casenet_client_connect(ngo, tn->net->dir, &o, &n), CASENET_OK);
    casenet_client_free(n);
    casenet_client_free(h);
    casenet_keys_free(ngo);
}

static void test_unknown_key_refused_promptly(void **state)
{
    tn_network *tn = *state;
    casenet_keys *stranger = NULL;
    assert_int_equal(casenet_keys_generate("vn.stranger", cn_now_ms(), &stranger), CASENET_OK);
    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = 4000};
    casenet_client *c = NULL;
    int64_t t0 = cn_mono_ms();
    int rc = casenet_client_connect(stranger, tn->net->dir, &o, &c);
    int64_t elapsed = cn_mono_ms() - t0;
    /* The monitor turns the ZAP refusal (status 400) into EUNAUTH at once,
     * long before the timeout. */
    assert_int_equal(rc, CASENET_EUNAUTH);
    assert_null(c);
    assert_true(elapsed < 1000);
    casenet_keys_free(stranger);
}

static void test_wrong_broker_key(void **state)
{
    tn_network *tn = *state;
    /* A directory, signed by the real authority, whose broker CURVE key is
     * not the running broker's. */
    casenet_keys *fake = NULL;
    assert_int_equal(casenet_keys_generate(TN_BROKER_ID, cn_now_ms(), &fake), CASENET_OK);
    casenet_buf pub = {0}, signed_dir = {0};
    assert_int_equal(casenet_keys_public_file(fake, &pub), CASENET_OK);
    const char *roles[] = {"broker"};
    casenet_member_spec spec = {.roles = roles, .n_roles = 1};
    assert_int_equal(casenet_directory_add_member(tn->net->authority, tn->net->signed_dir.data,
                                                  tn->net->signed_dir.len, pub.data, pub.len, &spec,
                                                  cn_now_ms(), 3600000, &signed_dir),
                     CASENET_OK);
    casenet_directory *dir = NULL;
    assert_int_equal(casenet_directory_parse(signed_dir.data, signed_dir.len, tn->net->authority_pk,
                                             cn_now_ms(), 0, &dir),
                     CASENET_OK);
    casenet_member b;
    assert_int_equal(casenet_directory_broker(dir, &b), CASENET_OK);
    assert_memory_equal(b.curve_pk, casenet_keys_curve_pk(fake), 32);

    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = 2000};
    casenet_client *c = NULL;
    int64_t t0 = cn_mono_ms();
    int rc = casenet_client_connect(tn_keys(tn, HOTLINE), dir, &o, &c);
    int64_t elapsed = cn_mono_ms() - t0;
    assert_true(rc == CASENET_ETIMEDOUT || rc == CASENET_EUNAUTH);
    assert_null(c);
    assert_true(elapsed >= 1900 && elapsed < 2000 + MARGIN_MS);
    casenet_directory_free(dir);
    casenet_buf_free(&signed_dir);
    casenet_buf_free(&pub);
    casenet_keys_free(fake);
}

static void test_subscribe_notice(void **state)
{
    tn_network *tn = *state;
    casenet_client *p = connect_as(tn, POLICE, 0);
    casenet_inbox_entry e;
    int64_t t0 = cn_mono_ms();
    assert_int_equal(casenet_client_wait_notice(p, 200, &e), CASENET_ETIMEDOUT);
    assert_true(cn_mono_ms() - t0 >= 190);
    assert_int_equal(casenet_client_subscribe(p), CASENET_OK);

    casenet_client *h = connect_as(tn, HOTLINE, 0);
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "push me", id);
    casenet_submit_receipt r;
    submit_ok(h, &env, id, &r, NULL);
    t0 = cn_mono_ms();
    assert_int_equal(casenet_client_wait_notice(p, 2000, &e), CASENET_OK);
    assert_true(cn_mono_ms() - t0 < 2000);
    assert_memory_equal(e.message_id, id, 16);
    assert_string_equal(e.sender, HOTLINE);
    assert_int_equal(e.state, CASENET_INBOX_QUEUED);
    assert_int_equal(e.kind, CASENET_KIND_REFERRAL);
    casenet_inbox_entry_clear(&e);

    /* A notice that arrives during another call is queued for wait_notice. */
    casenet_buf env2 = tn_seal(tn, HOTLINE, to, 1, "push me too", id);
    submit_ok(h, &env2, id, &r, NULL);
    casenet_inbox_entry found;
    assert_true(find_entry(p, id, &found)); /* the notice went out before the reply */
    casenet_inbox_entry_clear(&found);
    assert_int_equal(casenet_client_wait_notice(p, 0, &e), CASENET_OK);
    assert_memory_equal(e.message_id, id, 16);
    casenet_inbox_entry_clear(&e);
    assert_int_equal(casenet_client_wait_notice(p, 0, &e), CASENET_ETIMEDOUT);

    casenet_buf_free(&env);
    casenet_buf_free(&env2);
    casenet_client_free(h);
    casenet_client_free(p);
}

static void test_broker_crash_reconnect_resubscribe(void **state)
{
    tn_network *tn = *state;
    casenet_client *p = connect_as(tn, POLICE, 0);
    assert_int_equal(casenet_client_subscribe(p), CASENET_OK);
    tn_kill(tn);
    tn_restart(tn);

    /* The next request succeeds over the new connection. */
    casenet_inbox_entry *all = NULL;
    size_t n = 9;
    int64_t t0 = cn_mono_ms();
    assert_int_equal(casenet_client_list(p, CASENET_INBOX_ANY, 0, 0, &all, &n, NULL, NULL),
                     CASENET_OK);
    assert_true(cn_mono_ms() - t0 < 10000);
    assert_int_equal(n, 0);
    casenet_inbox_entries_free(all, n);

    /* And the subscription was re-established: a new message is pushed. */
    casenet_client *h = connect_as(tn, HOTLINE, 0);
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "after the crash", id);
    casenet_submit_receipt r;
    submit_ok(h, &env, id, &r, NULL);
    casenet_inbox_entry e;
    assert_int_equal(casenet_client_wait_notice(p, 5000, &e), CASENET_OK);
    assert_memory_equal(e.message_id, id, 16);
    casenet_inbox_entry_clear(&e);

    /* A crash while the client waits for notices: it re-subscribes by itself. */
    tn_kill(tn);
    tn_restart(tn);
    int64_t until = cn_mono_ms() + 3000;
    while (cn_mono_ms() < until) {
        int rc = casenet_client_wait_notice(p, 100, &e);
        assert_int_equal(rc, CASENET_ETIMEDOUT);
    }
    casenet_client_free(h);
    h = connect_as(tn, HOTLINE, 0);
    casenet_buf env2 = tn_seal(tn, HOTLINE, to, 1, "after the second crash", id);
    submit_ok(h, &env2, id, &r, NULL);
    assert_int_equal(casenet_client_wait_notice(p, 5000, &e), CASENET_OK);
    assert_memory_equal(e.message_id, id, 16);
    casenet_inbox_entry_clear(&e);

    casenet_buf_free(&env);
    casenet_buf_free(&env2);
    casenet_client_free(h);
    casenet_client_free(p);
}

static void test_broker_stopped_times_out(void **state)
{
    tn_network *tn = *state;
    casenet_client *p = connect_as(tn, POLICE, 1500);
    assert_int_equal(tn_stop(tn), 0);
    casenet_inbox_entry *all = NULL;
    size_t n = 0;
    int64_t t0 = cn_mono_ms();
    assert_int_equal(casenet_client_list(p, CASENET_INBOX_ANY, 0, 0, &all, &n, NULL, NULL),
                     CASENET_ETIMEDOUT);
    int64_t elapsed = cn_mono_ms() - t0;
    assert_true(elapsed >= 1400 && elapsed < 1500 + MARGIN_MS);
    assert_string_not_equal(casenet_client_last_error(p), "");
    casenet_client_free(p);

    /* Connecting to no broker at all also times out. */
    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = 1000};
    casenet_client *c = NULL;
    t0 = cn_mono_ms();
    assert_int_equal(casenet_client_connect(tn_keys(tn, POLICE), tn->net->dir, &o, &c),
                     CASENET_ETIMEDOUT);
    assert_true(cn_mono_ms() - t0 < 1000 + MARGIN_MS);
    assert_null(c);
}

int main(void)
{
    if (casenet_init() != CASENET_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect_hello_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_list_fetch_open_receipt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_twice_is_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_refused_promptly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_broker_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_crash_reconnect_resubscribe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_stopped_times_out, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
