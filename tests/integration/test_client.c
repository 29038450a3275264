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

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

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
        CN_OK(casenet_client_list(c, CASENET_INBOX_ANY, cursor, 0, &e, &n, &next, &more));
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
    CN_OK(casenet_client_get_directory(c, &d));
    assert_int_equal(d.len, tn->net->signed_dir.len);
    assert_memory_equal(d.data, tn->net->signed_dir.data, d.len);
    casenet_buf_free(&d);
    casenet_client_free(c);

    /* Bad arguments never reach the wire. */
    casenet_client_opts o = {.endpoint = NULL};
    CN_ERR(casenet_client_connect(tn_keys(tn, HOTLINE), tn->net->dir, &o, &c), CASENET_EINVAL);
    o.endpoint = "no-scheme";
    CN_ERR(casenet_client_connect(tn_keys(tn, HOTLINE), tn->net->dir, &o, &c), CASENET_EINVAL);
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
    CN_OK(casenet_client_fetch(p, id, &got));
    assert_int_equal(got.len, env.len);
    assert_memory_equal(got.data, env.data, env.len);
    casenet_message_info info;
    casenet_buf payload = {0};
    CN_OK(casenet_open(tn_keys(tn, POLICE), tn->net->dir, got.data, got.len, &info, &payload));
    casenet_buf want = tl_referral_payload("child at risk, call back");
    assert_int_equal(payload.len, want.len);
    assert_memory_equal(payload.data, want.data, want.len);
    assert_true(find_entry(p, id, &e));
    assert_int_equal(e.state, CASENET_INBOX_FETCHED);
    casenet_inbox_entry_clear(&e);

    /* Someone else cannot fetch it. */
    casenet_client *m = connect_as(tn, MOLISA, 0);
    casenet_buf none = {0};
    CN_ERR(casenet_client_fetch(m, id, &none), CASENET_ENOTFOUND);
    assert_string_not_equal(casenet_client_last_error(m), "");
    assert_null(none.data);
    casenet_client_free(m);

    /* The recipient's signed receipt travels back to the sender. */
    casenet_buf signed_rc = tn_sign_receipt(tn, POLICE, id, info.envelope_hash, HOTLINE,
                                            CASENET_RECEIPT_DELIVERED, cn_now_ms());
    uint64_t idx = 0;
    CN_OK(casenet_client_send_receipt(p, signed_rc.data, signed_rc.len, &idx));
    assert_true(idx > sr.audit_index);
    /* Identical receipts are idempotent at the broker. */
    CN_OK(casenet_client_send_receipt(p, signed_rc.data, signed_rc.len, NULL));

    casenet_inbox_entry *all = NULL;
    size_t n = 0;
    bool more = true;
    uint64_t next = 0;
    CN_OK(casenet_client_list(h, CASENET_INBOX_ANY, 0, 0, &all, &n, &next, &more));
    assert_false(more);
    assert_int_equal(n, 1);
    assert_int_equal(all[0].kind, CASENET_KIND_RECEIPT);
    assert_string_equal(all[0].sender, POLICE);
    assert_true(all[0].has_in_reply_to);
    assert_memory_equal(all[0].in_reply_to, id, 16);
    assert_int_equal(all[0].receipt_status, CASENET_RECEIPT_DELIVERED);
    casenet_receipt back;
    CN_OK(casenet_receipt_verify(tn->net->dir, all[0].receipt.data, all[0].receipt.len, &back));
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
    CN_ERR(casenet_client_submit(p, junk, sizeof junk, &x, NULL), CASENET_EINVAL);
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
        CN_OK(casenet_client_list(p, CASENET_INBOX_QUEUED, cursor, 2, &e, &n, &next, &more));
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
    CN_ERR(casenet_client_list(p, 99, 0, 0, &e, &n, NULL, NULL), CASENET_EINVAL);
    casenet_client_free(p);
    casenet_client_free(h);
}

static void test_publish_directory(void **state)
{
    tn_network *tn = *state;
    casenet_keys *ngo = NULL;
    CN_OK(casenet_keys_generate("vn.ngo.safe", cn_now_ms(), &ngo));
    tl_net_add(tn->net, "vn.ngo.safe:responder", ngo);
    casenet_client *h = connect_as(tn, HOTLINE, 0);
    uint64_t v = 0;
    CN_OK(
        casenet_client_publish_directory(h, tn->net->signed_dir.data, tn->net->signed_dir.len, &v));
    assert_int_equal(v, casenet_directory_version(tn->net->dir));
    CN_ERR(
        casenet_client_publish_directory(h, tn->net->signed_dir.data, tn->net->signed_dir.len, &v),
        CASENET_ECONFLICT);
    assert_string_not_equal(casenet_client_last_error(h), "");
    /* The new member connects with the new directory. */
    casenet_client_opts o = {.endpoint = tn->endpoint};
    casenet_client *n = NULL;
    CN_OK(casenet_client_connect(ngo, tn->net->dir, &o, &n));
    casenet_client_free(n);
    casenet_client_free(h);
    casenet_keys_free(ngo);
}

/* Seals a referral from `from` to `to` with directory dir (NULL: the
 * network's current one). */
static casenet_buf seal_with(tn_network *tn, const casenet_directory *dir, const char *from,
                             const char *to, uint8_t id[16])
{
    casenet_buf payload = tl_referral_payload("rotation");
    const char *rcpt[] = {to};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = rcpt, .n_to = 1};
    casenet_buf env = {0};
    CN_OK(casenet_seal(tn_keys(tn, from), dir ? dir : tn->net->dir, &o, payload.data, payload.len,
                       &env, id));
    casenet_buf_free(&payload);
    return env;
}

/* Key rotation (PROTOCOL.md §3.4, §4.6 step 9): the police rotate, the
 * authority re-admits them and the new directory is published. Mail queued
 * before still opens with the rotated keyring; an envelope sealed with the
 * old directory is STALE_DIRECTORY naming the broker's version (also in
 * Error.directory_version), not BAD_REQUEST; one wrapped to a box key the
 * broker's directory never listed stays BAD_REQUEST. */
static void test_rotation_and_stale_directory(void **state)
{
    tn_network *tn = *state;
    casenet_client *h = connect_as(tn, HOTLINE, 0);
    uint8_t queued_id[16], id[16];
    casenet_buf queued = seal_with(tn, NULL, HOTLINE, POLICE, queued_id);
    casenet_submit_receipt r;
    submit_ok(h, &queued, queued_id, &r, NULL);

    /* The old directory stays with the sender; a directory the authority
     * signed but never published lists a police box key the broker lacks. */
    casenet_directory *old_dir = NULL, *unpublished = NULL;
    CN_OK(casenet_directory_parse(tn->net->signed_dir.data, tn->net->signed_dir.len,
                                  tn->net->authority_pk, cn_now_ms(), 0, &old_dir));
    casenet_keys *other = NULL;
    CN_OK(casenet_keys_generate(POLICE, cn_now_ms(), &other));
    casenet_buf other_pub = {0}, other_dir = {0};
    CN_OK(casenet_keys_public_file(other, &other_pub));
    const char *roles[] = {"responder"};
    casenet_member_spec spec = {.roles = roles, .n_roles = 1};
    CN_OK(casenet_directory_add_member(tn->net->authority, tn->net->signed_dir.data,
                                       tn->net->signed_dir.len, other_pub.data, other_pub.len,
                                       &spec, cn_now_ms(), 3600000, &other_dir));
    CN_OK(casenet_directory_parse(other_dir.data, other_dir.len, tn->net->authority_pk, cn_now_ms(),
                                  0, &unpublished));

    /* Rotate, re-admit, publish. */
    size_t retired = 0;
    CN_OK(casenet_keys_rotate(tn_keys(tn, POLICE), cn_now_ms(), &retired));
    assert_int_equal(retired, 1);
    tl_net_add(tn->net, POLICE ":responder:police", tn_keys(tn, POLICE));
    casenet_client_set_directory(h, tn->net->dir); /* the old one was freed */
    uint64_t v = 0;
    CN_OK(
        casenet_client_publish_directory(h, tn->net->signed_dir.data, tn->net->signed_dir.len, &v));
    assert_int_equal(v, casenet_directory_version(tn->net->dir));

    /* Sealed with the old directory: STALE_DIRECTORY with the version. */
    casenet_buf stale = seal_with(tn, old_dir, HOTLINE, POLICE, id);
    CN_ERR(casenet_client_submit(h, stale.data, stale.len, &r, NULL), CASENET_ESTALEDIR);
    assert_int_equal(casenet_client_stale_directory_version(h), v);
    char want[64];
    snprintf(want, sizeof want, "older than version %llu", (unsigned long long)v);
    assert_non_null(strstr(casenet_client_last_error(h), want));
    tn_conn *raw = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *resp = tn_submit(raw, stale.data, stale.len);
    assert_int_equal(tn_code(resp), CASENET__V1__ERROR_CODE__ERROR_CODE_STALE_DIRECTORY);
    assert_int_equal(resp->error->directory_version, v);
    casenet__v1__response__free_unpacked(resp, NULL);

    /* Wrapped to a key the broker's directory never listed: malformed. */
    casenet_buf unknown = seal_with(tn, unpublished, HOTLINE, POLICE, id);
    resp = tn_submit(raw, unknown.data, unknown.len);
    assert_int_equal(tn_code(resp), CASENET__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    assert_int_equal(resp->error->directory_version, 0);
    casenet__v1__response__free_unpacked(resp, NULL);
    tn_close(raw);

    /* Resealed with the current directory it is accepted, and the rotated
     * keyring opens both it and the referral queued before the rotation. */
    casenet_buf fresh = seal_with(tn, NULL, HOTLINE, POLICE, id);
    submit_ok(h, &fresh, id, &r, NULL);
    assert_int_equal(casenet_client_stale_directory_version(h), 0);
    casenet_client *p = connect_as(tn, POLICE, 0);
    const uint8_t *ids[] = {queued_id, id};
    for (size_t i = 0; i < 2; i++) {
        casenet_buf env = {0}, payload = {0};
        casenet_message_info info;
        CN_OK(casenet_client_fetch(p, ids[i], &env));
        CN_OK(casenet_open(tn_keys(tn, POLICE), tn->net->dir, env.data, env.len, &info, &payload));
        casenet_message_info_clear(&info);
        casenet_buf_free(&payload);
        casenet_buf_free(&env);
    }
    /* A keyring that never held the new key and lost the old one (made
     * afresh instead of rotated): each named, not CRYPTO. */
    casenet_buf payload = {0};
    CN_ERR(casenet_open(other, tn->net->dir, fresh.data, fresh.len, NULL, &payload),
           CASENET_EKEYUNKNOWN);
    CN_ERR(casenet_open(other, tn->net->dir, queued.data, queued.len, NULL, &payload),
           CASENET_EKEYRETIRED);
    char key_id[CASENET_KEY_ID_CHARS + 1];
    CN_OK(casenet_envelope_box_key_id(fresh.data, fresh.len, POLICE, key_id));
    casenet_member pm;
    CN_OK(casenet_directory_find(tn->net->dir, POLICE, &pm));
    assert_string_equal(key_id, pm.box_key_id);

    casenet_client_free(p);
    casenet_buf_free(&fresh);
    casenet_buf_free(&unknown);
    casenet_buf_free(&stale);
    casenet_buf_free(&other_dir);
    casenet_buf_free(&other_pub);
    casenet_keys_free(other);
    casenet_directory_free(unpublished);
    casenet_directory_free(old_dir);
    casenet_buf_free(&queued);
    casenet_client_free(h);
}

static void test_unknown_key_refused_promptly(void **state)
{
    tn_network *tn = *state;
    casenet_keys *stranger = NULL;
    CN_OK(casenet_keys_generate("vn.stranger", cn_now_ms(), &stranger));
    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = 4000};
    casenet_client *c = NULL;
    int64_t t0 = cn_mono_ms();
    int rc = casenet_client_connect(stranger, tn->net->dir, &o, &c);
    int64_t elapsed = cn_mono_ms() - t0;
    /* The monitor turns the ZAP refusal (status 400) into EUNAUTH at once,
     * long before the timeout. */
    CN_ERR(rc, CASENET_EUNAUTH);
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
    CN_OK(casenet_keys_generate(TN_BROKER_ID, cn_now_ms(), &fake));
    casenet_buf pub = {0}, signed_dir = {0};
    CN_OK(casenet_keys_public_file(fake, &pub));
    const char *roles[] = {"broker"};
    casenet_member_spec spec = {.roles = roles, .n_roles = 1};
    CN_OK(casenet_directory_add_member(tn->net->authority, tn->net->signed_dir.data,
                                       tn->net->signed_dir.len, pub.data, pub.len, &spec,
                                       cn_now_ms(), 3600000, &signed_dir));
    casenet_directory *dir = NULL;
    CN_OK(casenet_directory_parse(signed_dir.data, signed_dir.len, tn->net->authority_pk,
                                  cn_now_ms(), 0, &dir));
    casenet_member b;
    CN_OK(casenet_directory_broker(dir, &b));
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
    CN_ERR(casenet_client_wait_notice(p, 200, &e), CASENET_ETIMEDOUT);
    assert_true(cn_mono_ms() - t0 >= 190);
    CN_OK(casenet_client_subscribe(p));

    casenet_client *h = connect_as(tn, HOTLINE, 0);
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "push me", id);
    casenet_submit_receipt r;
    submit_ok(h, &env, id, &r, NULL);
    t0 = cn_mono_ms();
    CN_OK(casenet_client_wait_notice(p, 2000, &e));
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
    CN_OK(casenet_client_wait_notice(p, 0, &e));
    assert_memory_equal(e.message_id, id, 16);
    casenet_inbox_entry_clear(&e);
    CN_ERR(casenet_client_wait_notice(p, 0, &e), CASENET_ETIMEDOUT);

    casenet_buf_free(&env);
    casenet_buf_free(&env2);
    casenet_client_free(h);
    casenet_client_free(p);
}

static void test_broker_crash_reconnect_resubscribe(void **state)
{
    tn_network *tn = *state;
    casenet_client *p = connect_as(tn, POLICE, 0);
    CN_OK(casenet_client_subscribe(p));
    tn_kill(tn);
    tn_restart(tn);

    /* The next request succeeds over the new connection. */
    casenet_inbox_entry *all = NULL;
    size_t n = 9;
    int64_t t0 = cn_mono_ms();
    CN_OK(casenet_client_list(p, CASENET_INBOX_ANY, 0, 0, &all, &n, NULL, NULL));
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
    CN_OK(casenet_client_wait_notice(p, 5000, &e));
    assert_memory_equal(e.message_id, id, 16);
    casenet_inbox_entry_clear(&e);

    /* A crash while the client waits for notices: it re-subscribes by itself. */
    tn_kill(tn);
    tn_restart(tn);
    int64_t until = cn_mono_ms() + 3000;
    while (cn_mono_ms() < until) {
        int rc = casenet_client_wait_notice(p, 100, &e);
        CN_ERR(rc, CASENET_ETIMEDOUT);
    }
    casenet_client_free(h);
    h = connect_as(tn, HOTLINE, 0);
    casenet_buf env2 = tn_seal(tn, HOTLINE, to, 1, "after the second crash", id);
    submit_ok(h, &env2, id, &r, NULL);
    CN_OK(casenet_client_wait_notice(p, 5000, &e));
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
    CN_ERR(casenet_client_list(p, CASENET_INBOX_ANY, 0, 0, &all, &n, NULL, NULL),
           CASENET_ETIMEDOUT);
    int64_t elapsed = cn_mono_ms() - t0;
    assert_true(elapsed >= 1400 && elapsed < 1500 + MARGIN_MS);
    assert_string_not_equal(casenet_client_last_error(p), "");
    casenet_client_free(p);

    /* Connecting to no broker at all also times out. */
    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = 1000};
    casenet_client *c = NULL;
    t0 = cn_mono_ms();
    CN_ERR(casenet_client_connect(tn_keys(tn, POLICE), tn->net->dir, &o, &c), CASENET_ETIMEDOUT);
    assert_true(cn_mono_ms() - t0 < 1000 + MARGIN_MS);
    assert_null(c);
}

/* ------------------------------------------------------------ a lying broker */

/* A scripted peer holding the broker's real CURVE key (so the client's
 * handshake succeeds) that answers as told: the client must not trust what
 * a broker sends. A real ZeroMQ ROUTER in a thread, no casenetd. */
enum fake_mode {
    FAKE_OK,
    FAKE_HELLO_OTHER,   /* Hello names another member */
    FAKE_BAD_ENTRY,     /* an inbox entry with a 15-byte message id */
    FAKE_LATE_NOTICE,   /* a stale reply and a notice before the real reply */
    FAKE_WRONG_RECEIPT, /* a valid broker signature over another message id */
    FAKE_RATE_LIMITED,  /* error RATE_LIMITED with retry_after_ms */
    FAKE_DROP_FIRST,    /* ignore the first Fetch: the client must resend */
    FAKE_WRONG_BODY,    /* a SubscribeReply to a ListInbox */
};

struct fake {
    tn_network *tn;
    void *ctx, *sock;
    char endpoint[64];
    atomic_int mode;
    atomic_int fetches;
    uint8_t env_id[16];
    casenet_buf env; /* what Fetch returns */
    pthread_t th;
};

static void fake_send(struct fake *f, zmq_msg_t *rid, Casenet__V1__Response *r)
{
    r->protocol_version = 1;
    size_t len = casenet__v1__response__get_packed_size(r);
    uint8_t *buf = malloc(len + 1);
    casenet__v1__response__pack(r, buf);
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, rid);
    zmq_msg_send(&copy, f->sock, ZMQ_SNDMORE);
    zmq_send(f->sock, buf, len, 0);
    free(buf);
}

static void fake_entry(Casenet__V1__InboxEntry *e, uint8_t *id, size_t id_len)
{
    e->seq = 7;
    e->message_id.data = id;
    e->message_id.len = id_len;
    e->sender = (char *)HOTLINE;
    e->kind = CASENET__V1__KIND__KIND_REFERRAL;
    e->state = CASENET__V1__INBOX_STATE__INBOX_STATE_QUEUED;
}

static void fake_answer(struct fake *f, zmq_msg_t *rid, const Casenet__V1__Request *q)
{
    Casenet__V1__Response r = CASENET__V1__RESPONSE__INIT;
    r.request_id = q->request_id;
    int mode = atomic_load(&f->mode);
    Casenet__V1__HelloReply hello = CASENET__V1__HELLO_REPLY__INIT;
    Casenet__V1__InboxPage page = CASENET__V1__INBOX_PAGE__INIT;
    Casenet__V1__InboxEntry entry = CASENET__V1__INBOX_ENTRY__INIT, *entries[1] = {&entry};
    Casenet__V1__SubmitReply sub = CASENET__V1__SUBMIT_REPLY__INIT;
    Casenet__V1__FetchReply fetch = CASENET__V1__FETCH_REPLY__INIT;
    Casenet__V1__SubscribeReply subr = CASENET__V1__SUBSCRIBE_REPLY__INIT;
    Casenet__V1__Error err = CASENET__V1__ERROR__INIT;
    casenet_buf receipt = {0};
    uint8_t id[16] = {1, 2, 3};
    switch (q->body_case) {
    case CASENET__V1__REQUEST__BODY_HELLO:
        hello.member_id = (char *)(mode == FAKE_HELLO_OTHER ? MOLISA : POLICE);
        r.body_case = CASENET__V1__RESPONSE__BODY_HELLO;
        r.hello = &hello;
        break;
    case CASENET__V1__REQUEST__BODY_LIST_INBOX:
        if (mode == FAKE_WRONG_BODY) {
            r.body_case = CASENET__V1__RESPONSE__BODY_SUBSCRIBE;
            r.subscribe = &subr;
            break;
        }
        fake_entry(&entry, id, mode == FAKE_BAD_ENTRY ? 15 : 16);
        page.n_entries = 1;
        page.entries = entries;
        if (mode == FAKE_LATE_NOTICE) {
            Casenet__V1__Response late = CASENET__V1__RESPONSE__INIT;
            late.request_id = q->request_id - 1;
            err.code = CASENET__V1__ERROR_CODE__ERROR_CODE_CONFLICT;
            late.error = &err;
            fake_send(f, rid, &late);
            Casenet__V1__Response note = CASENET__V1__RESPONSE__INIT;
            Casenet__V1__Notice n = CASENET__V1__NOTICE__INIT;
            n.entry = &entry;
            note.body_case = CASENET__V1__RESPONSE__BODY_NOTICE;
            note.notice = &n;
            fake_send(f, rid, &note);
        }
        r.body_case = CASENET__V1__RESPONSE__BODY_INBOX;
        r.inbox = &page;
        break;
    case CASENET__V1__REQUEST__BODY_SUBMIT:
        if (mode == FAKE_RATE_LIMITED) {
            err.code = CASENET__V1__ERROR_CODE__ERROR_CODE_RATE_LIMITED;
            err.message = (char *)"slow down";
            err.retry_after_ms = 1234;
            r.error = &err;
            break;
        } else {
            casenet_submit_receipt sr = {.accepted_at_ms = cn_now_ms(), .audit_index = 1};
            memcpy(sr.message_id, id, 16); /* not the submitted message */
            cn_sha256(q->submit->envelope.data, q->submit->envelope.len, sr.envelope_hash);
            CN_OK(casenet_submit_receipt_sign(tn_keys(f->tn, TN_BROKER_ID), &sr, &receipt));
            sub.receipt.data = receipt.data;
            sub.receipt.len = receipt.len;
            r.body_case = CASENET__V1__RESPONSE__BODY_SUBMIT;
            r.submit = &sub;
        }
        break;
    case CASENET__V1__REQUEST__BODY_FETCH:
        if (mode == FAKE_DROP_FIRST && atomic_fetch_add(&f->fetches, 1) == 0)
            return;
        fetch.envelope.data = f->env.data;
        fetch.envelope.len = f->env.len;
        /* The row comes with the envelope (PROTOCOL.md 8, Fetch). */
        entry.message_id.data = f->env_id;
        entry.message_id.len = sizeof f->env_id;
        entry.kind = CASENET__V1__KIND__KIND_REFERRAL;
        entry.state = CASENET__V1__INBOX_STATE__INBOX_STATE_FETCHED;
        fetch.entry = &entry;
        r.body_case = CASENET__V1__RESPONSE__BODY_FETCH;
        r.fetch = &fetch;
        break;
    default:
        err.code = CASENET__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST;
        r.error = &err;
        break;
    }
    fake_send(f, rid, &r);
    casenet_buf_free(&receipt);
}

static void *fake_loop(void *p)
{
    struct fake *f = p;
    for (;;) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&rid, f->sock, 0) < 0 || zmq_msg_recv(&body, f->sock, 0) < 0) {
            zmq_msg_close(&rid);
            zmq_msg_close(&body);
            break; /* context shut down */
        }
        Casenet__V1__Request *q =
            casenet__v1__request__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        if (q)
            fake_answer(f, &rid, q);
        casenet__v1__request__free_unpacked(q, NULL);
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
    }
    int linger = 0;
    zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(f->sock);
    return NULL;
}

static struct fake *fake_start(tn_network *tn)
{
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->tn = tn;
    const char *to[] = {POLICE};
    f->env = tn_seal(tn, HOTLINE, to, 1, "from the fake", f->env_id);
    f->ctx = zmq_ctx_new();
    f->sock = zmq_socket(f->ctx, ZMQ_ROUTER);
    int one = 1;
    const uint8_t *sk = casenet_keys_curve_sk(tn_keys(tn, TN_BROKER_ID));
    assert_int_equal(zmq_setsockopt(f->sock, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    assert_int_equal(zmq_setsockopt(f->sock, ZMQ_CURVE_SECRETKEY, sk, 32), 0);
    assert_int_equal(zmq_bind(f->sock, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof f->endpoint;
    assert_int_equal(zmq_getsockopt(f->sock, ZMQ_LAST_ENDPOINT, f->endpoint, &len), 0);
    assert_int_equal(pthread_create(&f->th, NULL, fake_loop, f), 0);
    return f;
}

static void fake_stop(struct fake *f)
{
    zmq_ctx_shutdown(f->ctx);
    pthread_join(f->th, NULL);
    zmq_ctx_term(f->ctx);
    casenet_buf_free(&f->env);
    free(f);
}

static casenet_client *fake_connect(struct fake *f, int timeout_ms, int *rc)
{
    casenet_client_opts o = {.endpoint = f->endpoint, .timeout_ms = timeout_ms};
    casenet_client *c = NULL;
    *rc = casenet_client_connect(tn_keys(f->tn, POLICE), f->tn->net->dir, &o, &c);
    return c;
}

static int setup_no_broker(void **state)
{
    *state = tn_new(members, 3);
    return 0;
}

static void test_untrusted_broker_answers(void **state)
{
    tn_network *tn = *state;
    struct fake *f = fake_start(tn);
    int rc;

    atomic_store(&f->mode, FAKE_HELLO_OTHER);
    casenet_client *c = fake_connect(f, 2000, &rc);
    CN_ERR(rc, CASENET_EUNAUTH);
    assert_null(c);

    atomic_store(&f->mode, FAKE_OK);
    c = fake_connect(f, 2000, &rc);
    CN_OK(rc);

    casenet_inbox_entry *e = NULL;
    size_t n = 0;
    atomic_store(&f->mode, FAKE_BAD_ENTRY);
    CN_ERR(casenet_client_list(c, CASENET_INBOX_ANY, 0, 0, &e, &n, NULL, NULL), CASENET_EBADREQ);
    assert_null(e);
    atomic_store(&f->mode, FAKE_WRONG_BODY);
    CN_ERR(casenet_client_list(c, CASENET_INBOX_ANY, 0, 0, &e, &n, NULL, NULL), CASENET_EBADREQ);

    /* A stale reply is dropped, a notice is queued, the real reply counts. */
    atomic_store(&f->mode, FAKE_LATE_NOTICE);
    CN_OK(casenet_client_list(c, CASENET_INBOX_ANY, 0, 0, &e, &n, NULL, NULL));
    assert_int_equal(n, 1);
    assert_int_equal(e[0].seq, 7);
    casenet_inbox_entries_free(e, n);
    casenet_inbox_entry note;
    CN_OK(casenet_client_wait_notice(c, 0, &note));
    assert_string_equal(note.sender, HOTLINE);
    casenet_inbox_entry_clear(&note);

    /* A receipt that verifies but names another message. */
    atomic_store(&f->mode, FAKE_WRONG_RECEIPT);
    casenet_submit_receipt sr;
    CN_ERR(casenet_client_submit(c, f->env.data, f->env.len, &sr, NULL), CASENET_EBADSIG);

    atomic_store(&f->mode, FAKE_RATE_LIMITED);
    CN_ERR(casenet_client_submit(c, f->env.data, f->env.len, &sr, NULL), CASENET_ERATELIMIT);
    assert_int_equal(casenet_client_retry_after_ms(c), 1234);
    assert_string_equal(casenet_client_last_error(c), "slow down");

    /* A lost reply: the client resends the same request and gets it. */
    atomic_store(&f->mode, FAKE_DROP_FIRST);
    casenet_buf got = {0};
    int64_t t0 = cn_mono_ms();
    CN_OK(casenet_client_fetch(c, f->env_id, &got));
    assert_true(cn_mono_ms() - t0 >= 900);
    assert_int_equal(atomic_load(&f->fetches), 2);
    assert_int_equal(got.len, f->env.len);
    casenet_buf_free(&got);
    assert_int_equal(casenet_client_retry_after_ms(c), 0);

    casenet_client_free(c);
    fake_stop(f);
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
        cmocka_unit_test_setup_teardown(test_rotation_and_stale_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_refused_promptly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_broker_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_crash_reconnect_resubscribe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_stopped_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_broker_answers, setup_no_broker, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
