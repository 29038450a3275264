/* test_directory.c - the signed directory: authority operations, signature,
 * expiry, rollback, tampering, lookups, key rotation and revocation. */
#include "casenet.pb-c.h"
#include "directory_impl.h"
#include "keys_impl.h"
#include "testlib.h"
#include "tl_net.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

static const char *const members[] = {
    "vn.hotline111:intake,responder:helpline,hanoi",
    "vn.police.a05:responder,takedown-requester:police",
    "vn.police.hn:responder:police,hanoi",
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

static void test_build_and_lookup(void **state)
{
    tl_net *net = *state;
    casenet_directory *d = net->dir;
    casenet_member m;
    assert_int_equal(casenet_directory_version(d), N_MEMBERS);
    assert_int_equal(casenet_directory_count(d), N_MEMBERS);
    assert_true(casenet_directory_expires_at(d) > casenet_directory_issued_at(d));
    for (size_t i = 0; i < N_MEMBERS; i++) {
        CN_OK(casenet_directory_at(d, i, &m));
        assert_string_equal(m.id, net->ids[i]);
        assert_int_equal(m.status, CASENET_MEMBER_ACTIVE);
        casenet_keys *k = net->keys[i];
        const char *kid;
        assert_memory_equal(m.sign_pk, casenet_keys_sign_pk(k, &kid), 32);
        assert_string_equal(m.sign_key_id, kid);
        assert_memory_equal(m.curve_pk, casenet_keys_curve_pk(k), 32);
        assert_non_null(m.box_pk);
        assert_non_null(cn_keys_box_sk(k, m.box_key_id, NULL));
        casenet_member f;
        CN_OK(casenet_directory_find(d, net->ids[i], &f));
        assert_ptr_equal(f.id, m.id);
        CN_OK(casenet_directory_find_curve(d, casenet_keys_curve_pk(k), &f));
        assert_string_equal(f.id, net->ids[i]);
        const uint8_t *pk = NULL;
        CN_OK(casenet_directory_sign_key(d, m.id, kid, cn_now_ms(), &pk));
        assert_memory_equal(pk, m.sign_pk, 32);
    }
    CN_ERR(casenet_directory_at(d, N_MEMBERS, &m), CASENET_ENOTFOUND);
    CN_ERR(casenet_directory_find(d, "vn.nobody", &m), CASENET_ENOTFOUND);
    CN_ERR(casenet_directory_find(d, "a", &m), CASENET_ENOTFOUND);
    uint8_t zero[32] = {0};
    CN_ERR(casenet_directory_find_curve(d, zero, &m), CASENET_ENOTFOUND);
    CN_OK(casenet_directory_broker(d, &m));
    assert_string_equal(m.id, "vn.broker");
    CN_OK(casenet_directory_find(d, "vn.police.hn", &m));
    assert_true(casenet_member_has_role(&m, "responder"));
    assert_false(casenet_member_has_role(&m, "platform"));
    assert_true(casenet_member_in_group(&m, "hanoi"));
    assert_false(casenet_member_in_group(&m, "platforms"));
    const uint8_t *pk = NULL;
    CN_ERR(casenet_directory_sign_key(d, "vn.police.hn", "0123456789abcdef", cn_now_ms(), &pk),
           CASENET_ENOTFOUND);
    /* Keys are not valid before the authority listed them. */
    CN_ERR(casenet_directory_sign_key(d, m.id, m.sign_key_id, 0, &pk), CASENET_ENOTFOUND);
    size_t len;
    const uint8_t *bytes = casenet_directory_bytes(d, &len);
    assert_int_equal(len, net->signed_dir.len);
    assert_memory_equal(bytes, net->signed_dir.data, len);
}

static void test_no_broker(void **state)
{
    (void)state;
    const char *const one[] = {"vn.a:intake"};
    tl_net *net = tl_net_new(one, 1);
    casenet_member m;
    CN_ERR(casenet_directory_broker(net->dir, &m), CASENET_ENOTFOUND);
    tl_net_free(net);
}

static void test_expired(void **state)
{
    tl_net *net = *state;
    casenet_directory *d = NULL;
    int64_t exp = casenet_directory_expires_at(net->dir);
    CN_ERR(casenet_directory_parse(net->signed_dir.data, net->signed_dir.len, net->authority_pk,
                                   exp, 0, &d),
           CASENET_EEXPIRED);
    assert_null(d);
    CN_ERR(casenet_directory_parse(net->signed_dir.data, net->signed_dir.len, net->authority_pk,
                                   exp + DAY_MS, 0, &d),
           CASENET_EEXPIRED);
    CN_OK(casenet_directory_parse(net->signed_dir.data, net->signed_dir.len, net->authority_pk,
                                  exp - 1, 0, &d));
    casenet_directory_free(d);
    /* The authority renews an expired directory. */
    casenet_buf out = {0};
    CN_OK(casenet_directory_set_status(net->authority, net->signed_dir.data, net->signed_dir.len,
                                       "vn.coord", CASENET_MEMBER_ACTIVE, exp + DAY_MS, DAY_MS,
                                       &out));
    CN_OK(casenet_directory_parse(out.data, out.len, net->authority_pk, exp + DAY_MS, 0, &d));
    assert_int_equal(casenet_directory_version(d), N_MEMBERS + 1);
    casenet_directory_free(d);
    casenet_buf_free(&out);
}

static void test_other_authority(void **state)
{
    tl_net *net = *state;
    casenet_keys *other = NULL;
    casenet_directory *d = NULL;
    CN_OK(casenet_keys_generate_authority(1, &other));
    CN_ERR(casenet_directory_parse(net->signed_dir.data, net->signed_dir.len,
                                   casenet_keys_sign_pk(other, NULL), cn_now_ms(), 0, &d),
           CASENET_EBADSIG);
    /* Nor can another authority amend it. */
    casenet_buf out = {0};
    CN_ERR(casenet_directory_set_status(other, net->signed_dir.data, net->signed_dir.len,
                                        "vn.coord", CASENET_MEMBER_REVOKED, cn_now_ms(), DAY_MS,
                                        &out),
           CASENET_EBADSIG);
    assert_null(out.data);
    casenet_keys_free(other);
}

/* Re-signs a SignedDirectory after fn altered its signature or key id. */
static casenet_buf alter_wrapper(const casenet_buf *in, void (*fn)(Casenet__V1__SignedDirectory *))
{
    Casenet__V1__SignedDirectory *sd =
        casenet__v1__signed_directory__unpack(NULL, in->len, in->data);
    assert_non_null(sd);
    fn(sd);
    casenet_buf out;
    out.len = casenet__v1__signed_directory__get_packed_size(sd);
    out.data = malloc(out.len);
    casenet__v1__signed_directory__pack(sd, out.data);
    casenet__v1__signed_directory__free_unpacked(sd, NULL);
    return out;
}

static size_t flip_at;
static void flip_body(Casenet__V1__SignedDirectory *sd)
{
    sd->body.data[flip_at % sd->body.len] ^= 0x01;
}
static void flip_sig(Casenet__V1__SignedDirectory *sd)
{
    sd->signature.data[flip_at % sd->signature.len] ^= 0x80;
}
static void short_sig(Casenet__V1__SignedDirectory *sd)
{
    sd->signature.len = 63;
}
static void other_key_id(Casenet__V1__SignedDirectory *sd)
{
    sd->authority_key_id[0] = sd->authority_key_id[0] == 'a' ? 'b' : 'a';
}

static void test_tampered(void **state)
{
    tl_net *net = *state;
    casenet_directory *d = NULL;
    size_t body_len;
    {
        Casenet__V1__SignedDirectory *sd =
            casenet__v1__signed_directory__unpack(NULL, net->signed_dir.len, net->signed_dir.data);
        body_len = sd->body.len;
        casenet__v1__signed_directory__free_unpacked(sd, NULL);
    }
    /* Every single-bit change of the body fails the signature. */
    for (flip_at = 0; flip_at < body_len; flip_at++) {
        casenet_buf t = alter_wrapper(&net->signed_dir, flip_body);
        CN_ERR(casenet_directory_parse(t.data, t.len, net->authority_pk, cn_now_ms(), 0, &d),
               CASENET_EBADSIG);
        casenet_buf_free(&t);
    }
    for (flip_at = 0; flip_at < 64; flip_at++) {
        casenet_buf t = alter_wrapper(&net->signed_dir, flip_sig);
        CN_ERR(casenet_directory_parse(t.data, t.len, net->authority_pk, cn_now_ms(), 0, &d),
               CASENET_EBADSIG);
        casenet_buf_free(&t);
    }
    void (*fns[])(Casenet__V1__SignedDirectory *) = {short_sig, other_key_id};
    for (size_t i = 0; i < 2; i++) {
        casenet_buf t = alter_wrapper(&net->signed_dir, fns[i]);
        CN_ERR(casenet_directory_parse(t.data, t.len, net->authority_pk, cn_now_ms(), 0, &d),
               CASENET_EBADSIG);
        casenet_buf_free(&t);
    }
    uint8_t junk[3] = {0xff, 0xff, 0xff};
    CN_ERR(casenet_directory_parse(junk, sizeof junk, net->authority_pk, cn_now_ms(), 0, &d),
           CASENET_EBADREQ);
    CN_ERR(casenet_directory_parse(junk, 0, net->authority_pk, cn_now_ms(), 0, &d),
           CASENET_EBADSIG);
    assert_null(d);
}

static void test_rollback(void **state)
{
    tl_net *net = *state;
    casenet_directory *d = NULL;
    uint64_t v = casenet_directory_version(net->dir);
    CN_ERR(casenet_directory_parse(net->signed_dir.data, net->signed_dir.len, net->authority_pk,
                                   cn_now_ms(), v + 1, &d),
           CASENET_EROLLBACK);
    assert_null(d);
    CN_OK(casenet_directory_parse(net->signed_dir.data, net->signed_dir.len, net->authority_pk,
                                  cn_now_ms(), v, &d));
    casenet_directory_free(d);
}

static void test_revoke(void **state)
{
    tl_net *net = *state;
    uint64_t v = casenet_directory_version(net->dir);
    tl_net_set_status(net, "vn.police.hn", CASENET_MEMBER_REVOKED);
    casenet_member m;
    assert_int_equal(casenet_directory_version(net->dir), v + 1);
    CN_OK(casenet_directory_find(net->dir, "vn.police.hn", &m));
    assert_int_equal(m.status, CASENET_MEMBER_REVOKED);
    CN_OK(casenet_directory_find(net->dir, "vn.police.a05", &m));
    assert_int_equal(m.status, CASENET_MEMBER_ACTIVE);
    tl_net_set_status(net, "vn.police.a05", CASENET_MEMBER_SUSPENDED);
    CN_OK(casenet_directory_find(net->dir, "vn.police.a05", &m));
    assert_int_equal(m.status, CASENET_MEMBER_SUSPENDED);
    casenet_buf out = {0};
    CN_ERR(casenet_directory_set_status(net->authority, net->signed_dir.data, net->signed_dir.len,
                                        "vn.nobody", CASENET_MEMBER_REVOKED, cn_now_ms(), DAY_MS,
                                        &out),
           CASENET_ENOTFOUND);
    CN_ERR(casenet_directory_set_status(net->authority, net->signed_dir.data, net->signed_dir.len,
                                        "vn.coord", 7, cn_now_ms(), DAY_MS, &out),
           CASENET_EINVAL);
}

/* Revocation is final (issue 12 item 7): the tools refuse to undo it, and
 * a holder refuses a successor that does (cn_directory_check_successor),
 * or that changes the audit network (item 8). */
static void test_revocation_final(void **state)
{
    tl_net *net = *state;
    casenet_directory *prev = net->dir;
    net->dir = NULL;
    tl_net_set_status(net, "vn.police.hn", CASENET_MEMBER_REVOKED);
    casenet_buf out = {0}, renewed = {0};
    for (int st = CASENET_MEMBER_ACTIVE; st <= CASENET_MEMBER_SUSPENDED; st++)
        CN_ERR(casenet_directory_set_status(net->authority, net->signed_dir.data,
                                            net->signed_dir.len, "vn.police.hn", st, cn_now_ms(),
                                            DAY_MS, &out),
               CASENET_ECONFLICT);
    casenet_buf pub = {0};
    CN_OK(casenet_keys_public_file(tl_net_keys(net, "vn.police.hn"), &pub));
    const char *roles[] = {"responder"};
    casenet_member_spec spec = {NULL, roles, 1, NULL, 0};
    CN_ERR(casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                        pub.data, pub.len, &spec, cn_now_ms(), DAY_MS, &out),
           CASENET_ECONFLICT);
    casenet_buf_free(&pub);
    CN_ERR(casenet_directory_set_status(net->authority, net->signed_dir.data, net->signed_dir.len,
                                        "vn.broker", CASENET_MEMBER_REVOKED, cn_now_ms(), DAY_MS,
                                        &out),
           CASENET_EFORBIDDEN);
    assert_null(out.data);

    /* The previous version renewed twice: higher, but police.hn active. */
    char why[320];
    casenet_directory *fork = NULL, *next = NULL;
    size_t len = 0;
    const uint8_t *bytes = casenet_directory_bytes(prev, &len);
    CN_OK(casenet_directory_renew(net->authority, bytes, len, cn_now_ms(), DAY_MS, &out));
    CN_OK(
        casenet_directory_renew(net->authority, out.data, out.len, cn_now_ms(), DAY_MS, &renewed));
    CN_OK(casenet_directory_parse(renewed.data, renewed.len, net->authority_pk, cn_now_ms(), 0,
                                  &fork));
    assert_true(casenet_directory_version(fork) > casenet_directory_version(net->dir));
    CN_ERR(cn_directory_check_successor(net->dir, fork, why, sizeof why), CASENET_ECONFLICT);
    assert_non_null(strstr(why, "vn.police.hn"));
    CN_OK(cn_directory_check_successor(prev, net->dir, why, sizeof why));
    casenet_buf_free(&out);
    casenet_buf_free(&renewed);

    /* A renewal keeps every member and status; it may follow. */
    CN_OK(casenet_directory_renew(net->authority, net->signed_dir.data, net->signed_dir.len,
                                  cn_now_ms(), 2 * DAY_MS, &out));
    CN_OK(casenet_directory_parse(out.data, out.len, net->authority_pk, cn_now_ms(), 0, &next));
    assert_int_equal(casenet_directory_count(next), N_MEMBERS);
    CN_OK(cn_directory_check_successor(net->dir, next, why, sizeof why));
    assert_string_equal(cn_directory_audit_network(next), "vn.broker");
    casenet_buf_free(&out);

    /* A new network's first directory names it; one naming another
     * network may not follow. */
    CN_ERR(casenet_directory_create(net->authority, "Bad Name", cn_now_ms(), DAY_MS, &out),
           CASENET_EINVAL);
    CN_OK(casenet_directory_create(net->authority, "vn.cop", cn_now_ms(), DAY_MS, &out));
    casenet_directory *named = NULL;
    CN_OK(casenet_directory_parse(out.data, out.len, net->authority_pk, cn_now_ms(), 0, &named));
    assert_string_equal(cn_directory_audit_network(named), "vn.cop");
    CN_ERR(cn_directory_check_successor(prev, named, why, sizeof why), CASENET_ECONFLICT);
    assert_non_null(strstr(why, "network"));
    casenet_buf_free(&out);
    casenet_directory_free(named);
    casenet_directory_free(next);
    casenet_directory_free(fork);
    casenet_directory_free(prev);
}

static void test_rotation(void **state)
{
    tl_net *net = *state;
    casenet_member before, after;
    CN_OK(casenet_directory_find(net->dir, "vn.police.hn", &before));
    char old_sign[17], old_box[17];
    uint8_t old_pk[32];
    memcpy(old_sign, before.sign_key_id, 17);
    memcpy(old_box, before.box_key_id, 17);
    memcpy(old_pk, before.sign_pk, 32);
    int64_t t_old = net->now_ms;
    /* Make sure the new keys (valid from their creation, PROTOCOL.md §3.4)
     * and the rotation come strictly later than the old listing. */
    while (cn_now_ms() <= t_old)
        ;
    casenet_keys *k2 = NULL;
    CN_OK(casenet_keys_generate("vn.police.hn", cn_now_ms(), &k2));
    tl_net_add(net, "vn.police.hn:responder:police", k2);
    int64_t t_rot = net->now_ms;
    assert_int_equal(casenet_directory_count(net->dir), N_MEMBERS);
    CN_OK(casenet_directory_find(net->dir, "vn.police.hn", &after));
    const char *new_id;
    assert_memory_equal(after.sign_pk, casenet_keys_sign_pk(k2, &new_id), 32);
    assert_string_equal(after.sign_key_id, new_id);
    assert_string_not_equal(after.box_key_id, old_box);
    assert_false(casenet_member_in_group(&after, "hanoi"));
    /* The old signing key still verifies what it signed before the rotation. */
    const uint8_t *pk = NULL;
    CN_OK(casenet_directory_sign_key(net->dir, "vn.police.hn", old_sign, t_old, &pk));
    assert_memory_equal(pk, old_pk, 32);
    CN_ERR(casenet_directory_sign_key(net->dir, "vn.police.hn", old_sign, t_rot, &pk),
           CASENET_ENOTFOUND);
    CN_OK(casenet_directory_sign_key(net->dir, "vn.police.hn", new_id, t_rot, &pk));
    CN_ERR(casenet_directory_sign_key(net->dir, "vn.police.hn", new_id, t_old, &pk),
           CASENET_ENOTFOUND);
    assert_true(cn_directory_has_box_key(net->dir, "vn.police.hn", old_box, t_old));
    assert_false(cn_directory_has_box_key(net->dir, "vn.police.hn", old_box, t_rot));
    /* Re-adding the same keys keeps their windows. */
    tl_net_add(net, "vn.police.hn:responder:police", k2);
    CN_OK(casenet_directory_sign_key(net->dir, "vn.police.hn", new_id, t_rot, &pk));
    CN_OK(casenet_directory_sign_key(net->dir, "vn.police.hn", old_sign, t_old, &pk));
    casenet_keys_free(k2);
}

/* A new key is valid from its creation on the member's clock, clamped to
 * [admission - 10 min, admission]: a member whose clock runs behind can
 * sign at once; a file cannot make its key valid long before admission. */
static void test_admission_window(void **state)
{
    tl_net *net = *state;
    const int64_t min = 60 * 1000;
    /* created: the key's creation relative to the clock read just before the
     * admission; valid_at / invalid_at: offsets from the admission time;
     * slack: room for the milliseconds between the two clock readings. */
    struct {
        const char *id;
        int64_t created, valid_at, invalid_at, slack;
    } cases[] = {
        {"vn.behind", -2 * min, -2 * min, -2 * min - 1, 50},                 /* clock behind */
        {"vn.ancient", -365LL * 24 * 60 * min, -10 * min, -10 * min - 1, 0}, /* floor */
        {"vn.ahead", 5 * min, 0, -1, 0},                                     /* ahead: now */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        casenet_keys *k = NULL;
        CN_OK(casenet_keys_generate(cases[i].id, cn_now_ms() + cases[i].created, &k));
        char spec[64];
        snprintf(spec, sizeof spec, "%s:responder", cases[i].id);
        tl_net_add(net, spec, k);
        const char *key_id = NULL;
        (void)casenet_keys_sign_pk(k, &key_id);
        const uint8_t *pk = NULL;
        int64_t t = net->now_ms;
        CN_OK(casenet_directory_sign_key(net->dir, cases[i].id, key_id,
                                         t + cases[i].valid_at + cases[i].slack, &pk));
        CN_ERR(casenet_directory_sign_key(net->dir, cases[i].id, key_id,
                                          t + cases[i].invalid_at - cases[i].slack, &pk),
               CASENET_ENOTFOUND);
        casenet_keys_free(k);
    }
}

/* A PublicKeyFile for keyring k under another member id. */
static casenet_buf public_file_as(const casenet_keys *k, const char *id)
{
    casenet_buf pub = {0};
    CN_OK(casenet_keys_public_file(k, &pub));
    Casenet__V1__PublicKeyFile *f = casenet__v1__public_key_file__unpack(NULL, pub.len, pub.data);
    assert_non_null(f);
    Casenet__V1__PublicKeyFile g = *f;
    g.member_id = (char *)id;
    casenet_buf out;
    out.len = casenet__v1__public_key_file__get_packed_size(&g);
    out.data = malloc(out.len + 1);
    casenet__v1__public_key_file__pack(&g, out.data);
    casenet__v1__public_key_file__free_unpacked(f, NULL);
    casenet_buf_free(&pub);
    return out;
}

static void test_add_refusals(void **state)
{
    tl_net *net = *state;
    casenet_keys *k = NULL;
    casenet_buf out = {0};
    CN_OK(casenet_keys_generate("vn.new", cn_now_ms(), &k));
    const char *role_ok[] = {"intake"}, *role_bad[] = {"admin"}, *group_bad[] = {"Ha Noi"};
    casenet_member_spec ok = {NULL, role_ok, 1, NULL, 0};
    casenet_member_spec bad_role = {NULL, role_bad, 1, NULL, 0};
    casenet_member_spec bad_group = {NULL, role_ok, 1, group_bad, 1};
    const char *bad_ids[] = {"Vn.new",
                             "a",
                             "-vn",
                             "vn new",
                             "vn_new",
                             "authority",
                             "x0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        casenet_buf pub = public_file_as(k, bad_ids[i]);
        CN_ERR(casenet_directory_add_member(net->authority, net->signed_dir.data,
                                            net->signed_dir.len, pub.data, pub.len, &ok,
                                            cn_now_ms(), DAY_MS, &out),
               CASENET_EINVAL);
        casenet_buf_free(&pub);
    }
    casenet_buf pub = {0};
    CN_OK(casenet_keys_public_file(k, &pub));
    CN_ERR(casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                        pub.data, pub.len, &bad_role, cn_now_ms(), DAY_MS, &out),
           CASENET_EINVAL);
    CN_ERR(casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                        pub.data, pub.len, &bad_group, cn_now_ms(), DAY_MS, &out),
           CASENET_EINVAL);
    /* A member's keyring is not the authority. */
    CN_ERR(casenet_directory_add_member(k, net->signed_dir.data, net->signed_dir.len, pub.data,
                                        pub.len, &ok, cn_now_ms(), DAY_MS, &out),
           CASENET_EINVAL);
    /* Garbage public file. */
    uint8_t junk[4] = {0xff, 0xff, 0xff, 0xff};
    CN_ERR(casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                        junk, sizeof junk, &ok, cn_now_ms(), DAY_MS, &out),
           CASENET_EBADREQ);
    /* A second broker would make the directory ambiguous. */
    const char *broker[] = {"broker"};
    casenet_member_spec second_broker = {NULL, broker, 1, NULL, 0};
    CN_ERR(casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                        pub.data, pub.len, &second_broker, cn_now_ms(), DAY_MS,
                                        &out),
           CASENET_EINVAL);
    /* Another member's CURVE key would make ZAP ambiguous. */
    uint8_t seed[32] = {9}, box[32] = {8};
    casenet_keys *dup = NULL;
    CN_OK(cn_keys_from_secrets("vn.dup", seed, box,
                               casenet_keys_curve_sk(tl_net_keys(net, "vn.coord")), cn_now_ms(),
                               &dup));
    casenet_buf dpub = {0};
    CN_OK(casenet_keys_public_file(dup, &dpub));
    CN_ERR(casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                        dpub.data, dpub.len, &ok, cn_now_ms(), DAY_MS, &out),
           CASENET_EINVAL);
    assert_null(out.data);
    /* And the valid one goes in. */
    CN_OK(casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                       pub.data, pub.len, &ok, cn_now_ms(), DAY_MS, &out));
    casenet_directory *d = NULL;
    CN_OK(casenet_directory_parse(out.data, out.len, net->authority_pk, cn_now_ms(), 0, &d));
    casenet_member m;
    CN_OK(casenet_directory_find(d, "vn.new", &m));
    assert_string_equal(m.display_name, "vn.new");
    casenet_directory_free(d);
    casenet_buf_free(&out);
    casenet_buf_free(&dpub);
    casenet_keys_free(dup);
    casenet_buf_free(&pub);
    casenet_keys_free(k);
}

static void test_many_members(void **state)
{
    (void)state;
    enum { N = 150 };
    char *specs[N];
    for (int i = 0; i < N; i++)
        assert_true(asprintf(&specs[i], "vn.m%03d:responder:g%d", (i * 37) % N, i % 5) > 0);
    tl_net *net = tl_net_new((const char *const *)specs, N);
    for (int i = 0; i < N; i++) {
        casenet_member m;
        CN_OK(casenet_directory_find(net->dir, net->ids[i], &m));
        assert_string_equal(m.id, net->ids[i]);
        CN_OK(casenet_directory_find_curve(net->dir, casenet_keys_curve_pk(net->keys[i]), &m));
        assert_string_equal(m.id, net->ids[i]);
        free(specs[i]);
    }
    tl_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_build_and_lookup, setup, teardown),
        cmocka_unit_test(test_no_broker),
        cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_authority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admission_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_refusals, setup, teardown),
        cmocka_unit_test(test_many_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
