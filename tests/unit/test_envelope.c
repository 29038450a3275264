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
    CN_OK(rc);
    casenet_buf_free(&payload);
    return env;
}

/* Opens env as reader and checks the referral summary is text. */
static void open_expect(tl_net *net, const char *reader, const casenet_buf *env, const char *text)
{
    casenet_message_info info;
    casenet_buf out = {0};
    CN_OK(casenet_open(tl_net_keys(net, reader), net->dir, env->data, env->len, &info, &out));
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
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, &info));
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
    const char *to[] = {"vn.police.a05", "vn.police.hcm"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 2, "two");
    open_expect(net, "vn.police.a05", &env, "two");
    open_expect(net, "vn.police.hcm", &env, "two");
    casenet_buf_free(&env);
}

static void test_round_trip_group(void **state)
{
    tl_net *net = *state;
    /* A member named again after its group is listed once, in the group's
     * place (a referral goes to neither the sender nor a coordinator). */
    const char *to[] = {"@police", "vn.police.hn"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 2, "group");
    casenet_message_info info;
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, &info));
    assert_int_equal(info.n_recipients, 3);
    assert_string_equal(info.recipients[0], "vn.police.a05");
    assert_string_equal(info.recipients[1], "vn.police.hn");
    assert_string_equal(info.recipients[2], "vn.police.hcm");
    casenet_message_info_clear(&info);
    open_expect(net, "vn.police.hcm", &env, "group");
    open_expect(net, "vn.police.a05", &env, "group");
    casenet_buf_free(&env);
    /* A group leaves its member who sends out; naming oneself is refused. */
    const char *police[] = {"@police"};
    env = seal_to(net, "vn.police.hn", police, 1, "group");
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, &info));
    assert_int_equal(info.n_recipients, 2);
    assert_string_equal(info.recipients[0], "vn.police.a05");
    assert_string_equal(info.recipients[1], "vn.police.hcm");
    casenet_message_info_clear(&info);
    casenet_buf_free(&env);
    const char *self[] = {"vn.police.a05", "vn.hotline111"};
    casenet_buf payload = tl_referral_payload("self");
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = self, .n_to = 2};
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, payload.data, payload.len,
                        &env, NULL),
           CASENET_EFORBIDDEN);
    casenet_buf_free(&payload);
}

/* ------------------------------------------------------------ adversarial */

static void test_round_trip_24(void **state)
{
    (void)state;
    enum { N = 25 };
    char *specs[N];
    const char *to[N - 1];
    for (int i = 0; i < N; i++)
        assert_true(asprintf(&specs[i], "vn.m%02d:responder:all", i) > 0);
    tl_net *net = tl_net_new((const char *const *)specs, N);
    for (int i = 1; i < N; i++)
        to[i - 1] = net->ids[i];
    casenet_buf env = seal_to(net, "vn.m00", to, N - 1, "twenty-four");
    casenet_message_info info;
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, &info));
    assert_int_equal(info.n_recipients, 24);
    casenet_message_info_clear(&info);
    for (int i = 1; i < N; i++)
        open_expect(net, net->ids[i], &env, "twenty-four");
    casenet_buf out = {0};
    CN_ERR(casenet_open(tl_net_keys(net, "vn.m00"), net->dir, env.data, env.len, NULL, &out),
           CASENET_ENOTRECIPIENT);
    casenet_buf_free(&env);
    /* "@all" leaves the sender itself out and names vn.m03 once. */
    const char *all[] = {"@all", "vn.m03"};
    env = seal_to(net, "vn.m00", all, 2, "all");
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, &info));
    assert_int_equal(info.n_recipients, N - 1);
    casenet_message_info_clear(&info);
    open_expect(net, "vn.m03", &env, "all");
    casenet_buf_free(&env);
    for (int i = 0; i < N; i++)
        free(specs[i]);
    tl_net_free(net);
}

static void test_every_byte_flip(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05", "vn.police.hn"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 2, "flip me");
    casenet_keys *reader = tl_net_keys(net, "vn.police.hn");
    for (size_t i = 0; i < env.len; i++) {
        for (int b = 0; b < 8; b += 7) {
            env.data[i] ^= (uint8_t)(1u << b);
            casenet_buf out = {0};
            int rc = casenet_open(reader, net->dir, env.data, env.len, NULL, &out);
            if (rc == CASENET_OK)
                fail_msg("flipping bit %d of byte %zu still opens", b, i);
            assert_null(out.data);
            env.data[i] ^= (uint8_t)(1u << b);
        }
    }
    open_expect(net, "vn.police.hn", &env, "flip me");
    casenet_buf_free(&env);
}

static void test_not_recipient(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 1, "secret");
    casenet_buf out = {0};
    casenet_message_info info = {0};
    CN_ERR(casenet_open(tl_net_keys(net, "vn.police.hn"), net->dir, env.data, env.len, &info, &out),
           CASENET_ENOTRECIPIENT);
    assert_null(out.data);
    assert_null(info.recipients);
    /* Nor the sender, who is not listed. */
    CN_ERR(casenet_open(tl_net_keys(net, "vn.hotline111"), net->dir, env.data, env.len, NULL, &out),
           CASENET_ENOTRECIPIENT);
    casenet_buf_free(&env);
}

/* Parameters for cn_seal_raw from a sender keyring to directory members. */
struct raw {
    struct cn_seal_params p;
    struct cn_seal_recipient r[8];
    uint8_t mid[16], nonce[24], key[32], epk[8][32], esk[8][32];
    casenet_buf payload;
};

static void raw_init(struct raw *w, tl_net *net, const casenet_keys *sender, const char *const *to,
                     size_t n)
{
    memset(w, 0, sizeof *w);
    randombytes_buf(w->mid, sizeof w->mid);
    randombytes_buf(w->nonce, sizeof w->nonce);
    randombytes_buf(w->key, sizeof w->key);
    w->payload = tl_referral_payload("raw");
    for (size_t i = 0; i < n; i++) {
        casenet_member m;
        CN_OK(casenet_directory_find(net->dir, to[i], &m));
        crypto_box_keypair(w->epk[i], w->esk[i]);
        w->r[i] = (struct cn_seal_recipient){m.id, m.box_key_id, m.box_pk, w->epk[i], w->esk[i]};
    }
    const char *kid;
    w->p = (struct cn_seal_params){
        .sender = casenet_keys_member_id(sender),
        .sign_sk = cn_keys_sign_sk(sender, &kid),
        .kind = CASENET_KIND_REFERRAL,
        .urgency = CASENET_URGENCY_STANDARD,
        .status = CASENET_MSG_TEST,
        .created_at_ms = cn_now_ms(),
        .message_id = w->mid,
        .nonce = w->nonce,
        .content_key = w->key,
        .n_recipients = n,
        .recipients = w->r,
        .payload = w->payload.data,
        .payload_len = w->payload.len,
    };
    w->p.sign_key_id = kid;
}

static void test_raw_matches_seal(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05", "vn.coord"};
    struct raw w;
    raw_init(&w, net, tl_net_keys(net, "vn.hotline111"), to, 2);
    casenet_buf env = {0};
    CN_OK(cn_seal_raw(&w.p, &env));
    casenet_message_info info;
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, &info));
    assert_memory_equal(info.message_id, w.mid, 16);
    assert_int_equal(info.urgency, CASENET_URGENCY_STANDARD);
    assert_int_equal(info.status, CASENET_MSG_TEST);
    casenet_message_info_clear(&info);
    open_expect(net, "vn.coord", &env, "raw");
    casenet_buf_free(&env);
    casenet_buf_free(&w.payload);
}

static void test_sender_not_in_directory(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    /* A stranger, and a keyring claiming a member's id with other keys. */
    const char *ids[] = {"vn.stranger", "vn.hotline111"};
    for (size_t i = 0; i < 2; i++) {
        casenet_keys *k = NULL;
        CN_OK(casenet_keys_generate(ids[i], cn_now_ms(), &k));
        struct raw w;
        raw_init(&w, net, k, to, 1);
        casenet_buf env = {0}, out = {0};
        CN_OK(cn_seal_raw(&w.p, &env));
        CN_ERR(casenet_envelope_verify(net->dir, env.data, env.len, NULL), CASENET_EUNAUTH);
        CN_ERR(casenet_open(tl_net_keys(net, "vn.police.a05"), net->dir, env.data, env.len, NULL,
                            &out),
               CASENET_EUNAUTH);
        casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = 1};
        casenet_buf env2 = {0};
        CN_ERR(casenet_seal(k, net->dir, &o, w.payload.data, w.payload.len, &env2, NULL),
               CASENET_EUNAUTH);
        assert_null(env2.data);
        casenet_buf_free(&env);
        casenet_buf_free(&w.payload);
        casenet_keys_free(k);
    }
    /* A member's key used under another member's name: the key id names no
     * key of that member. */
    struct raw w;
    raw_init(&w, net, tl_net_keys(net, "vn.coord"), to, 1);
    w.p.sender = "vn.hotline111";
    casenet_buf env = {0};
    CN_OK(cn_seal_raw(&w.p, &env));
    CN_ERR(casenet_envelope_verify(net->dir, env.data, env.len, NULL), CASENET_EUNAUTH);
    casenet_buf_free(&env);
    /* The right key id with the wrong key: a bad signature. */
    const char *kid;
    casenet_keys_sign_pk(tl_net_keys(net, "vn.hotline111"), &kid);
    w.p.sign_key_id = kid;
    CN_OK(cn_seal_raw(&w.p, &env));
    CN_ERR(casenet_envelope_verify(net->dir, env.data, env.len, NULL), CASENET_EBADSIG);
    casenet_buf_free(&env);
    /* Signed before the key was listed. */
    casenet_buf_free(&w.payload);
    raw_init(&w, net, tl_net_keys(net, "vn.hotline111"), to, 1);
    w.p.created_at_ms = 1000;
    CN_OK(cn_seal_raw(&w.p, &env));
    CN_ERR(casenet_envelope_verify(net->dir, env.data, env.len, NULL), CASENET_EUNAUTH);
    casenet_buf_free(&env);
    casenet_buf_free(&w.payload);
}

static void test_suspended_sender(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 1, "before");
    tl_net_set_status(net, "vn.hotline111", CASENET_MEMBER_SUSPENDED);
    CN_ERR(casenet_envelope_verify(net->dir, env.data, env.len, NULL), CASENET_EUNAUTH);
    casenet_buf payload = tl_referral_payload("x"), env2 = {0};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = 1};
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, payload.data, payload.len,
                        &env2, NULL),
           CASENET_EUNAUTH);
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
}

/* Unpacks env, lets fn change the header, re-signs it with signer's
 * current key (and key id) and repacks with the same ciphertext. */
static casenet_buf resign(const casenet_buf *env, const casenet_keys *signer,
                          void (*fn)(Casenet__V1__Header *, void *), void *arg)
{
    Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, env->len, env->data);
    assert_non_null(e);
    Casenet__V1__Header *h = casenet__v1__header__unpack(NULL, e->header.len, e->header.data);
    assert_non_null(h);
    const char *kid;
    const uint8_t *sk = cn_keys_sign_sk(signer, &kid);
    /* Mutate a shallow copy, so the unpacked header frees cleanly. */
    enum { MAXR = 32 };
    assert_true(h->n_recipients <= MAXR && h->n_wrapped_keys <= MAXR);
    Casenet__V1__Header c = *h;
    char *rcpt[MAXR];
    Casenet__V1__WrappedKey wk[MAXR], *wkp[MAXR];
    for (size_t i = 0; i < h->n_recipients; i++)
        rcpt[i] = h->recipients[i];
    for (size_t i = 0; i < h->n_wrapped_keys; i++) {
        wk[i] = *h->wrapped_keys[i];
        wkp[i] = &wk[i];
    }
    c.recipients = rcpt;
    c.wrapped_keys = wkp;
    c.sender = (char *)casenet_keys_member_id(signer);
    c.sign_key_id = (char *)kid;
    if (fn)
        fn(&c, arg);
    size_t hl = casenet__v1__header__get_packed_size(&c);
    uint8_t *hb = malloc(hl);
    casenet__v1__header__pack(&c, hb);
    casenet_buf out = {0};
    CN_OK(cn_envelope_pack(hb, hl, sk, e->ciphertext.data, e->ciphertext.len, &out));
    free(hb);
    casenet__v1__header__free_unpacked(h, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    return out;
}

static void test_pasted_under_other_sender(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 1, "from the hotline");
    /* vn.coord re-signs the hotline's ciphertext and wrapped key as its own:
     * the signature, key commitment and key unwrap all pass; the AEAD's
     * associated data (message id, sender) does not. */
    casenet_buf forged = resign(&env, tl_net_keys(net, "vn.coord"), NULL, NULL);
    casenet_message_info info;
    CN_OK(casenet_envelope_verify(net->dir, forged.data, forged.len, &info));
    assert_string_equal(info.sender, "vn.coord");
    casenet_message_info_clear(&info);
    casenet_buf out = {0};
    CN_ERR(casenet_open(tl_net_keys(net, "vn.police.a05"), net->dir, forged.data, forged.len, NULL,
                        &out),
           CASENET_ECRYPTO);
    assert_null(out.data);
    casenet_buf_free(&forged);
    casenet_buf_free(&env);
}

static void set_mid(Casenet__V1__Header *h, void *arg)
{
    (void)arg;
    h->message_id.data[0] ^= 1;
}

static void test_new_message_id_same_ciphertext(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 1, "replay");
    /* The sender itself replays its ciphertext under a new message id. */
    casenet_buf forged = resign(&env, tl_net_keys(net, "vn.hotline111"), set_mid, NULL);
    casenet_buf out = {0};
    CN_ERR(casenet_open(tl_net_keys(net, "vn.police.a05"), net->dir, forged.data, forged.len, NULL,
                        &out),
           CASENET_ECRYPTO);
    casenet_buf_free(&forged);
    casenet_buf_free(&env);
}

static void test_wrong_commitment(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05", "vn.police.hn"};
    struct raw w;
    uint8_t other[32];
    randombytes_buf(other, sizeof other);
    raw_init(&w, net, tl_net_keys(net, "vn.hotline111"), to, 2);
    w.p.commit_key = other;
    casenet_buf env = {0}, out = {0};
    CN_OK(cn_seal_raw(&w.p, &env));
    /* Validly signed, structurally fine: the broker accepts it ... */
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, NULL));
    /* ... and each recipient refuses it before decrypting. */
    CN_ERR(casenet_open(tl_net_keys(net, "vn.police.a05"), net->dir, env.data, env.len, NULL, &out),
           CASENET_ECOMMIT);
    CN_ERR(casenet_open(tl_net_keys(net, "vn.police.hn"), net->dir, env.data, env.len, NULL, &out),
           CASENET_ECOMMIT);
    assert_null(out.data);
    casenet_buf_free(&env);
    casenet_buf_free(&w.payload);
}

/* Two recipients, one content key each, one ciphertext: without the key
 * commitment they could read different texts. The header commits to key A,
 * so the recipient handed key B refuses. */
static void test_split_keys(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05", "vn.police.hn"};
    struct raw w;
    raw_init(&w, net, tl_net_keys(net, "vn.hotline111"), to, 2);
    casenet_buf env = {0}, env_b = {0}, out = {0};
    CN_OK(cn_seal_raw(&w.p, &env));
    uint8_t key_b[32];
    randombytes_buf(key_b, sizeof key_b);
    /* Same parameters but wrapping key_b; commitment stays to key A. */
    w.p.commit_key = w.key;
    w.p.content_key = key_b;
    CN_OK(cn_seal_raw(&w.p, &env_b));
    /* Graft the second recipient's wrapped key of env_b into env. */
    Casenet__V1__Envelope *eb = casenet__v1__envelope__unpack(NULL, env_b.len, env_b.data);
    Casenet__V1__Header *hb = casenet__v1__header__unpack(NULL, eb->header.len, eb->header.data);
    struct graft {
        uint8_t sealed[80];
    } g;
    memcpy(g.sealed, hb->wrapped_keys[1]->sealed_key.data, 80);
    casenet__v1__header__free_unpacked(hb, NULL);
    casenet__v1__envelope__free_unpacked(eb, NULL);
    casenet_buf forged = resign(&env, tl_net_keys(net, "vn.hotline111"), NULL, NULL);
    {
        Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, forged.len, forged.data);
        Casenet__V1__Header *h = casenet__v1__header__unpack(NULL, e->header.len, e->header.data);
        memcpy(h->wrapped_keys[1]->sealed_key.data, g.sealed, 80);
        size_t hl = casenet__v1__header__get_packed_size(h);
        uint8_t *hbuf = malloc(hl);
        casenet__v1__header__pack(h, hbuf);
        casenet_buf_free(&forged);
        CN_OK(cn_envelope_pack(hbuf, hl, cn_keys_sign_sk(tl_net_keys(net, "vn.hotline111"), NULL),
                               e->ciphertext.data, e->ciphertext.len, &forged));
        free(hbuf);
        casenet__v1__header__free_unpacked(h, NULL);
        casenet__v1__envelope__free_unpacked(e, NULL);
    }
    open_expect(net, "vn.police.a05", &forged, "raw");
    CN_ERR(casenet_open(tl_net_keys(net, "vn.police.hn"), net->dir, forged.data, forged.len, NULL,
                        &out),
           CASENET_ECOMMIT);
    casenet_buf_free(&forged);
    casenet_buf_free(&env_b);
    casenet_buf_free(&env);
    casenet_buf_free(&w.payload);
}

static void test_revoked_recipient(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05", "vn.police.hn"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 2, "before revocation");
    tl_net_set_status(net, "vn.police.hn", CASENET_MEMBER_REVOKED);
    /* The broker no longer accepts it ... */
    CN_ERR(casenet_envelope_verify(net->dir, env.data, env.len, NULL), CASENET_EUNKNOWNRCPT);
    /* ... but the other recipient can still read what was sent before. */
    open_expect(net, "vn.police.a05", &env, "before revocation");
    /* ... and a new one cannot be sealed to the revoked member. */
    casenet_buf payload = tl_referral_payload("x"), env2 = {0};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = 2};
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, payload.data, payload.len,
                        &env2, NULL),
           CASENET_EUNKNOWNRCPT);
    /* The group leaves it out. */
    const char *grp[] = {"@police"};
    o.to = grp;
    o.n_to = 1;
    CN_OK(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, payload.data, payload.len,
                       &env2, NULL));
    casenet_message_info info;
    CN_OK(casenet_envelope_verify(net->dir, env2.data, env2.len, &info));
    assert_int_equal(info.n_recipients, 2);
    assert_string_equal(info.recipients[0], "vn.police.a05");
    assert_string_equal(info.recipients[1], "vn.police.hcm");
    casenet_message_info_clear(&info);
    const char *unknown[] = {"vn.nobody"}, *nogroup[] = {"@nobody"};
    o.to = unknown;
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, payload.data, payload.len,
                        &env2, NULL),
           CASENET_EUNKNOWNRCPT);
    o.to = nogroup;
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, payload.data, payload.len,
                        &env2, NULL),
           CASENET_EUNKNOWNRCPT);
    o.n_to = 0;
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, payload.data, payload.len,
                        &env2, NULL),
           CASENET_EINVAL);
    casenet_buf_free(&env2);
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
}

static void test_duplicates_removed(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.hn", "vn.police.hn", "@police", "vn.police.a05"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 4, "dups");
    casenet_message_info info;
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, &info));
    assert_int_equal(info.n_recipients, 3);
    assert_string_equal(info.recipients[0], "vn.police.hn");
    assert_string_equal(info.recipients[1], "vn.police.a05");
    assert_string_equal(info.recipients[2], "vn.police.hcm");
    casenet_message_info_clear(&info);
    casenet_buf_free(&env);
}

static casenet_buf status_payload(void)
{
    Casenet__V1__StatusNote n = CASENET__V1__STATUS_NOTE__INIT;
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    n.case_id = (char *)"case-1";
    n.status = CASENET__V1__CASE_STATUS__CASE_STATUS_ACCEPTED;
    p.body_case = CASENET__V1__PAYLOAD__BODY_STATUS;
    p.status = &n;
    casenet_buf b;
    b.len = casenet__v1__payload__get_packed_size(&p);
    b.data = malloc(b.len);
    casenet__v1__payload__pack(&p, b.data);
    return b;
}

static void test_payload_kind_mismatch(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf ref = tl_referral_payload("r"), st = status_payload(), env = {0};
    casenet_seal_opts o = {.kind = CASENET_KIND_STATUS, .to = to, .n_to = 1};
    casenet_keys *k = tl_net_keys(net, "vn.hotline111");
    CN_ERR(casenet_seal(k, net->dir, &o, ref.data, ref.len, &env, NULL), CASENET_EINVAL);
    CN_OK(casenet_seal(k, net->dir, &o, st.data, st.len, &env, NULL));
    casenet_buf_free(&env);
    uint8_t junk[3] = {0xff, 0xff, 0xff};
    CN_ERR(casenet_seal(k, net->dir, &o, junk, sizeof junk, &env, NULL), CASENET_EINVAL);
    CN_ERR(casenet_seal(k, net->dir, &o, junk, 0, &env, NULL), CASENET_EINVAL);
    o.kind = CASENET_KIND_HASH_SHARE;
    CN_ERR(casenet_seal(k, net->dir, &o, st.data, st.len, &env, NULL), CASENET_EINVAL);
    o.kind = CASENET_KIND_RECEIPT;
    CN_ERR(casenet_seal(k, net->dir, &o, st.data, st.len, &env, NULL), CASENET_EINVAL);
    /* A sender that lies about the kind: the broker cannot tell, the
     * recipient refuses after decrypting. */
    struct raw w;
    raw_init(&w, net, k, to, 1);
    w.p.kind = CASENET_KIND_STATUS;
    CN_OK(cn_seal_raw(&w.p, &env));
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, NULL));
    casenet_buf out = {0};
    CN_ERR(casenet_open(tl_net_keys(net, "vn.police.a05"), net->dir, env.data, env.len, NULL, &out),
           CASENET_EBADREQ);
    casenet_buf_free(&env);
    /* A payload that is not a Payload at all. */
    w.p.payload = junk;
    w.p.payload_len = sizeof junk;
    CN_OK(cn_seal_raw(&w.p, &env));
    CN_ERR(casenet_open(tl_net_keys(net, "vn.police.a05"), net->dir, env.data, env.len, NULL, &out),
           CASENET_EBADREQ);
    casenet_buf_free(&env);
    casenet_buf_free(&w.payload);
    casenet_buf_free(&ref);
    casenet_buf_free(&st);
}

static casenet_buf notice_payload(void)
{
    Casenet__V1__BrokerNotice n = CASENET__V1__BROKER_NOTICE__INIT;
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    uint8_t id[16] = {1};
    n.reason = CASENET__V1__NOTICE_REASON__NOTICE_REASON_DELIVER_OVERDUE;
    n.message_id.data = id;
    n.message_id.len = sizeof id;
    n.sender = (char *)"vn.hotline111";
    n.recipient = (char *)"vn.police.a05";
    n.urgency = CASENET__V1__URGENCY__URGENCY_STANDARD;
    p.body_case = CASENET__V1__PAYLOAD__BODY_NOTICE;
    p.notice = &n;
    casenet_buf b;
    b.len = casenet__v1__payload__get_packed_size(&p);
    b.data = malloc(b.len);
    casenet__v1__payload__pack(&p, b.data);
    return b;
}

static void test_broker_kinds(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.coord"};
    casenet_buf np = notice_payload(), env = {0}, out = {0};
    casenet_seal_opts o = {.kind = CASENET_KIND_ESCALATION, .to = to, .n_to = 1};
    CN_ERR(
        casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, np.data, np.len, &env, NULL),
        CASENET_EFORBIDDEN);
    CN_OK(casenet_seal(tl_net_keys(net, "vn.broker"), net->dir, &o, np.data, np.len, &env, NULL));
    CN_OK(casenet_open(tl_net_keys(net, "vn.coord"), net->dir, env.data, env.len, NULL, &out));
    casenet_buf_free(&out);
    casenet_buf_free(&env);
    o.kind = CASENET_KIND_DEAD_LETTER;
    CN_OK(casenet_seal(tl_net_keys(net, "vn.broker"), net->dir, &o, np.data, np.len, &env, NULL));
    /* A member forging a broker notice is refused by the broker's check. */
    casenet_buf forged = resign(&env, tl_net_keys(net, "vn.hotline111"), NULL, NULL);
    CN_ERR(casenet_envelope_verify(net->dir, forged.data, forged.len, NULL), CASENET_EFORBIDDEN);
    casenet_buf_free(&forged);
    casenet_buf_free(&env);
    casenet_buf_free(&np);
}

/* Header mutations a validly signing member might try; each must be refused
 * by casenet_envelope_verify with the given code. */
struct mutation {
    const char *what;
    void (*fn)(Casenet__V1__Header *, void *);
    int want;
};

static void m_version(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->version = 2;
}
static void m_short_mid(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->message_id.len = 15;
}
static void m_short_nonce(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->nonce.len = 23;
}
static void m_hash(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->ciphertext_hash.data[31] ^= 1;
}
static void m_short_commit(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->key_commitment.len = 16;
}
static void m_reply_len(Casenet__V1__Header *h, void *a)
{
    (void)a;
    static uint8_t r[8];
    h->in_reply_to.data = r;
    h->in_reply_to.len = sizeof r;
}
static void m_case_ref_len(Casenet__V1__Header *h, void *a)
{
    (void)a;
    static uint8_t r[17];
    h->case_ref.data = r;
    h->case_ref.len = sizeof r;
}
static void m_kind_receipt(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->kind = CASENET__V1__KIND__KIND_RECEIPT;
}
static void m_kind_zero(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->kind = 0;
}
static void m_urgency(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->urgency = 9;
}
static void m_status(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->status = 4;
}
static void m_no_recipients(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->n_recipients = 0;
}
static void m_dup_recipient(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->recipients[1] = h->recipients[0];
    h->wrapped_keys[1] = h->wrapped_keys[0];
}
static void m_extra_wrapped(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->n_recipients = 1;
}
static void m_missing_wrapped(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->n_wrapped_keys = 1;
}
static void m_wrapped_other(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->wrapped_keys[1]->recipient = (char *)"vn.coord";
}
static void m_box_key_id(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->wrapped_keys[0]->box_key_id = (char *)"0123456789abcdef";
}
static void m_box_key_of_other(Casenet__V1__Header *h, void *a)
{
    (void)a;
    char *t = h->wrapped_keys[0]->box_key_id;
    h->wrapped_keys[0]->box_key_id = h->wrapped_keys[1]->box_key_id;
    h->wrapped_keys[1]->box_key_id = t;
}
static void m_sealed_len(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->wrapped_keys[0]->sealed_key.len = 79;
}
static void m_unknown_rcpt(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->recipients[1] = (char *)"vn.nobody";
    h->wrapped_keys[1]->recipient = (char *)"vn.nobody";
}
static void m_bad_rcpt_id(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->recipients[1] = (char *)"VN";
    h->wrapped_keys[1]->recipient = (char *)"VN";
}
static void m_sender_id(Casenet__V1__Header *h, void *a)
{
    (void)a;
    h->sender = (char *)"Not Valid";
}

static void test_header_mutations(void **state)
{
    tl_net *net = *state;
    const struct mutation ms[] = {
        {"version", m_version, CASENET_EVERSION},
        {"message id size", m_short_mid, CASENET_EBADREQ},
        {"nonce size", m_short_nonce, CASENET_EBADREQ},
        {"ciphertext hash", m_hash, CASENET_EBADREQ},
        {"commitment size", m_short_commit, CASENET_EBADREQ},
        {"in_reply_to size", m_reply_len, CASENET_EBADREQ},
        {"case_ref size", m_case_ref_len, CASENET_EBADREQ},
        {"kind receipt", m_kind_receipt, CASENET_EBADREQ},
        {"kind zero", m_kind_zero, CASENET_EBADREQ},
        {"urgency", m_urgency, CASENET_EBADREQ},
        {"status", m_status, CASENET_EBADREQ},
        {"no recipients", m_no_recipients, CASENET_EBADREQ},
        {"duplicate recipient", m_dup_recipient, CASENET_EBADREQ},
        {"extra wrapped key", m_extra_wrapped, CASENET_EBADREQ},
        {"missing wrapped key", m_missing_wrapped, CASENET_EBADREQ},
        {"wrapped key for a non-recipient", m_wrapped_other, CASENET_EBADREQ},
        {"unknown box key id", m_box_key_id, CASENET_EBADREQ},
        {"another recipient's box key", m_box_key_of_other, CASENET_EBADREQ},
        {"sealed key size", m_sealed_len, CASENET_EBADREQ},
        {"unknown recipient", m_unknown_rcpt, CASENET_EUNKNOWNRCPT},
        {"malformed recipient", m_bad_rcpt_id, CASENET_EBADREQ},
        {"malformed sender", m_sender_id, CASENET_EBADREQ},
    };
    const char *to[] = {"vn.police.a05", "vn.police.hn"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 2, "mutate");
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        casenet_buf f = resign(&env, tl_net_keys(net, "vn.hotline111"), ms[i].fn, NULL);
        int rc = casenet_envelope_verify(net->dir, f.data, f.len, NULL);
        if (rc != ms[i].want)
            fail_msg("%s: got %s, want %s", ms[i].what, casenet_errname(rc),
                     casenet_errname(ms[i].want));
        casenet_buf out = {0};
        assert_int_not_equal(
            casenet_open(tl_net_keys(net, "vn.police.a05"), net->dir, f.data, f.len, NULL, &out),
            CASENET_OK);
        casenet_buf_free(&f);
    }
    /* The unmutated re-signature verifies (the fixture itself is sound). */
    casenet_buf f = resign(&env, tl_net_keys(net, "vn.hotline111"), NULL, NULL);
    CN_OK(casenet_envelope_verify(net->dir, f.data, f.len, NULL));
    casenet_buf_free(&f);
    /* Garbage and truncations. */
    uint8_t junk[4] = {0xff, 0xff, 0xff, 0xff};
    CN_ERR(casenet_envelope_verify(net->dir, junk, sizeof junk, NULL), CASENET_EBADREQ);
    for (size_t cut = 0; cut < env.len; cut += 7)
        assert_int_not_equal(casenet_envelope_verify(net->dir, env.data, cut, NULL), CASENET_OK);
    casenet_buf_free(&env);
}

static void test_reader_without_box_key(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 1, "rotated away");
    /* The reader's keyring lacks the box key the message was wrapped for,
     * the directory's current one: a key it never held, not tampering. */
    casenet_keys *fresh = NULL;
    CN_OK(casenet_keys_generate("vn.police.a05", cn_now_ms(), &fresh));
    casenet_buf out = {0};
    CN_ERR(casenet_open(fresh, net->dir, env.data, env.len, NULL, &out), CASENET_EKEYUNKNOWN);
    casenet_member m;
    CN_OK(casenet_directory_find(net->dir, "vn.police.a05", &m));
    char key_id[CASENET_KEY_ID_CHARS + 1];
    CN_OK(casenet_envelope_box_key_id(env.data, env.len, "vn.police.a05", key_id));
    assert_string_equal(key_id, m.box_key_id);
    CN_ERR(casenet_envelope_box_key_id(env.data, env.len, "vn.molisa.hanoi", key_id),
           CASENET_ENOTRECIPIENT);
    casenet_keys_free(fresh);
    casenet_buf_free(&env);
}

/* The recipient rotates (casenet_keys_rotate) and is re-admitted: old mail
 * opens with the rotated keyring; a keyring made afresh instead is told the
 * key is a retired one; a sender still on the old directory is
 * CASENET_ESTALEDIR, a key the directory never listed BAD_REQUEST. */
static void test_recipient_rotation(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 1, "queued before");
    casenet_directory *old_dir = NULL;
    CN_OK(casenet_directory_parse(net->signed_dir.data, net->signed_dir.len, net->authority_pk,
                                  cn_now_ms(), 0, &old_dir));
    int64_t t = cn_now_ms();
    while (cn_now_ms() <= t + 1) /* the old key closes after created_at */
        ;
    casenet_keys *k = tl_net_keys(net, "vn.police.a05");
    size_t retired = 9;
    CN_OK(casenet_keys_rotate(k, cn_now_ms(), &retired));
    assert_int_equal(retired, 1);
    tl_net_add(net, "vn.police.a05:responder,takedown-requester:police", k);
    open_expect(net, "vn.police.a05", &env, "queued before");

    casenet_keys *fresh = NULL;
    CN_OK(casenet_keys_generate("vn.police.a05", cn_now_ms(), &fresh));
    casenet_buf out = {0};
    CN_ERR(casenet_open(fresh, net->dir, env.data, env.len, NULL, &out), CASENET_EKEYRETIRED);

    t = cn_now_ms();
    while (cn_now_ms() <= t + 1) /* sealed after the old key closed */
        ;
    casenet_buf payload = tl_referral_payload("stale"), stale = {0};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = 1};
    CN_OK(casenet_seal(tl_net_keys(net, "vn.hotline111"), old_dir, &o, payload.data, payload.len,
                       &stale, NULL));
    CN_ERR(casenet_envelope_verify(net->dir, stale.data, stale.len, NULL), CASENET_ESTALEDIR);
    /* The old directory still takes it: stale is relative to the verifier's. */
    CN_OK(casenet_envelope_verify(old_dir, stale.data, stale.len, NULL));
    /* Stale is decided after the signature: a forged one is BAD_SIGNATURE. */
    stale.data[stale.len - 1] ^= 1;
    assert_int_not_equal(casenet_envelope_verify(net->dir, stale.data, stale.len, NULL),
                         CASENET_ESTALEDIR);
    casenet_keys_free(fresh);
    casenet_buf_free(&payload);
    casenet_buf_free(&stale);
    casenet_directory_free(old_dir);
    casenet_buf_free(&env);
}

static void test_old_message_after_rotation(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf env = seal_to(net, "vn.hotline111", to, 1, "old mail");
    int64_t t = cn_now_ms();
    while (cn_now_ms() <= t + 1)
        ;
    /* The sender rotates its keys: its old signature still verifies. */
    casenet_keys *k2 = NULL;
    CN_OK(casenet_keys_generate("vn.hotline111", cn_now_ms(), &k2));
    tl_net_add(net, "vn.hotline111:intake,responder:helpline", k2);
    open_expect(net, "vn.police.a05", &env, "old mail");
    casenet_keys_free(k2);
    casenet_buf_free(&env);
}

static void test_options(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    uint8_t reply[16], cref[16];
    randombytes_buf(reply, 16);
    randombytes_buf(cref, 16);
    casenet_buf payload = tl_referral_payload_urgency("opts", CASENET_URGENCY_EMERGENCY), env = {0};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL,
                           .urgency = CASENET_URGENCY_EMERGENCY,
                           .status = CASENET_MSG_EXERCISE,
                           .to = to,
                           .n_to = 1,
                           .in_reply_to = reply,
                           .case_ref = cref,
                           .created_at_ms = cn_now_ms() + 5,
                           .expires_at_ms = cn_now_ms() + 60000};
    uint8_t mid[16];
    CN_OK(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, payload.data, payload.len,
                       &env, mid));
    casenet_message_info info;
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, &info));
    assert_memory_equal(info.message_id, mid, 16);
    assert_int_equal(info.urgency, CASENET_URGENCY_EMERGENCY);
    assert_int_equal(info.status, CASENET_MSG_EXERCISE);
    assert_true(info.has_in_reply_to);
    assert_memory_equal(info.in_reply_to, reply, 16);
    assert_true(info.has_case_ref);
    assert_memory_equal(info.case_ref, cref, 16);
    assert_int_equal(info.created_at_ms, o.created_at_ms);
    assert_int_equal(info.expires_at_ms, o.expires_at_ms);
    const char *kid;
    casenet_keys_sign_pk(tl_net_keys(net, "vn.hotline111"), &kid);
    assert_string_equal(info.sign_key_id, kid);
    assert_int_equal(info.ciphertext_len, payload.len + 16);
    casenet_message_info_clear(&info);
    casenet_message_info_clear(&info); /* idempotent */
    casenet_buf_free(&env);
    o.urgency = 7;
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, payload.data, payload.len,
                        &env, NULL),
           CASENET_EINVAL);
    casenet_buf_free(&payload);
}

/* ------------------------------------------------------------ payload rules */

/* A serialised Payload from JSON (asserts it converts). */
static casenet_buf json_payload(const char *json)
{
    casenet_buf b = {0};
    char err[256] = "";
    if (casenet_payload_from_json(json, strlen(json), 0, &b, err, sizeof err) != CASENET_OK)
        fail_msg("payload JSON %s: %s", json, err);
    return b;
}

/* Payloads as JSON, checked as kind with header urgency: the expected code
 * and a text the message must contain (NULL: no message). */
static const struct {
    const char *json;
    casenet_kind kind;
    casenet_urgency urgency;
    int code;
    const char *want;
} rule_cases[] = {
    {"{\"referral\": {}}", CASENET_KIND_REFERRAL, 0, CASENET_EBADREQ,
     "the referral lacks caseId, urgency, harmCategories, legalBasis.kind, summary"},
    {"{\"referral\": {\"caseId\": \"A\", \"urgency\": \"URGENCY_INFO\", "
     "\"harmCategories\": [\"HARM_CATEGORY_SCAM\"], \"summary\": \"s\", "
     "\"legalBasis\": {\"kind\": \"LEGAL_BASIS_KIND_CONSENT\"}}}",
     CASENET_KIND_REFERRAL, CASENET_URGENCY_INFO, CASENET_EBADREQ,
     "the referral lacks legalBasis.consentedBy"},
    {"{\"referral\": {\"caseId\": \"A\", \"urgency\": \"URGENCY_INFO\", "
     "\"harmCategories\": [\"HARM_CATEGORY_SCAM\"], \"summary\": \"s\", "
     "\"legalBasis\": {\"kind\": \"LEGAL_BASIS_KIND_CONSENT\", \"consentedBy\": "
     "\"parent\"}}}",
     CASENET_KIND_REFERRAL, CASENET_URGENCY_INFO, CASENET_OK, NULL},
    {"{\"status\": {\"caseId\": \"A\", \"status\": \"CASE_STATUS_DECLINED\"}}", CASENET_KIND_STATUS,
     0, CASENET_EBADREQ, "the status lacks reason"},
    {"{\"status\": {}}", CASENET_KIND_STATUS, 0, CASENET_EBADREQ,
     "the status lacks caseId, status"},
    {"{\"infoRequest\": {}}", CASENET_KIND_INFO_REQUEST, 0, CASENET_EBADREQ,
     "the infoRequest lacks caseId, questions"},
    {"{\"infoResponse\": {\"caseId\": \"A\"}}", CASENET_KIND_INFO_RESPONSE, 0, CASENET_EBADREQ,
     "the infoResponse lacks answers (or a note)"},
    {"{\"takedownRequest\": {}}", CASENET_KIND_TAKEDOWN_REQUEST, 0, CASENET_EBADREQ,
     "the takedownRequest lacks caseId, items, legalBasis.kind"},
    {"{\"takedownRequest\": {\"caseId\": \"A\", \"legalBasis\": {\"kind\": "
     "\"LEGAL_BASIS_KIND_CRIME_PREVENTION\"}, \"items\": [{\"itemId\": \"1\", "
     "\"locator\": {\"url\": \"https://x.example/1\"}}, {\"locator\": {}}]}}",
     CASENET_KIND_TAKEDOWN_REQUEST, 0, CASENET_EBADREQ,
     "the takedownRequest lacks items[1].itemId, items[1].locator.url"},
    {"{\"takedownResult\": {\"caseId\": \"A\", \"results\": [{\"itemId\": \"1\", "
     "\"outcome\": \"TAKEDOWN_OUTCOME_REFUSED\"}]}}",
     CASENET_KIND_TAKEDOWN_RESULT, 0, CASENET_EBADREQ,
     "the takedownResult lacks results[0].reason"},
    {"{\"correction\": {\"caseId\": \"A\"}}", CASENET_KIND_CORRECTION, 0, CASENET_EBADREQ,
     "the correction lacks note (or referral)"},
    {"{\"correction\": {\"caseId\": \"A\", \"referral\": {\"caseId\": \"A\"}}}",
     CASENET_KIND_CORRECTION, 0, CASENET_EBADREQ,
     "the correction lacks referral.urgency, referral.harmCategories"},
    {"{\"withdraw\": {}}", CASENET_KIND_WITHDRAW, 0, CASENET_EBADREQ,
     "the withdraw lacks caseId, reason"},
    {"{\"erase\": {\"caseId\": \"A\"}}", CASENET_KIND_ERASE, 0, CASENET_EBADREQ,
     "the erase lacks reason"},
    {"{\"notice\": {}}", CASENET_KIND_ESCALATION, 0, CASENET_EBADREQ,
     "the notice lacks reason, messageId, sender, recipient, urgency"},
    {"{\"status\": {\"caseId\": \"A\", \"status\": \"CASE_STATUS_ACCEPTED\"}}",
     CASENET_KIND_REFERRAL, 0, CASENET_EBADREQ, "the payload is not a referral payload"},
};

/* Each kind's required fields (PROTOCOL.md §6), every missing one named. */
static void test_required_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++) {
        casenet_buf b = json_payload(rule_cases[i].json);
        char err[512] = "x";
        const char *want = rule_cases[i].want;
        int rc = casenet_payload_check(b.data, b.len, rule_cases[i].kind, rule_cases[i].urgency,
                                       err, sizeof err);
        if (rc != rule_cases[i].code || (want && !strstr(err, want)) || (!want && err[0]))
            fail_msg("%s: got %s \"%s\", want %s \"%s\"", rule_cases[i].json, casenet_errname(rc),
                     err, casenet_errname(rule_cases[i].code), want ? want : "");
        casenet_buf_free(&b);
    }
}

/* {"referral":{}} is neither sealed nor opened. */
static void test_required_fields_seal_open(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_buf empty = json_payload("{\"referral\": {}}"), env = {0}, out = {0};
    casenet_keys *k = tl_net_keys(net, "vn.hotline111");
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = 1};
    CN_ERR(casenet_seal(k, net->dir, &o, empty.data, empty.len, &env, NULL), CASENET_EINVAL);
    assert_null(env.data);
    /* A non-conforming sender: the broker cannot see it, the recipient
     * refuses it and says which fields are missing. */
    struct raw w;
    raw_init(&w, net, k, to, 1);
    w.p.payload = empty.data;
    w.p.payload_len = empty.len;
    CN_OK(cn_seal_raw(&w.p, &env));
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, NULL));
    char why[256] = "";
    casenet_message_info info = {0};
    CN_ERR(casenet_open_detail(tl_net_keys(net, "vn.police.a05"), net->dir, env.data, env.len,
                               &info, &out, why, sizeof why),
           CASENET_EBADREQ);
    assert_null(out.data);
    assert_null(info.recipients);
    assert_string_equal(why, "the referral lacks caseId, urgency, harmCategories, legalBasis.kind, "
                             "summary");
    casenet_buf_free(&env);
    casenet_buf_free(&w.payload);
    casenet_buf_free(&empty);
}

/* One source of truth for urgency: the payload's. */
static void test_urgency_from_payload(void **state)
{
    tl_net *net = *state;
    const char *to[] = {"vn.police.a05"};
    casenet_keys *k = tl_net_keys(net, "vn.hotline111");
    casenet_buf em = tl_referral_payload_urgency("now", CASENET_URGENCY_EMERGENCY), env = {0};
    casenet_urgency u = 0;
    CN_OK(casenet_payload_urgency(em.data, em.len, &u));
    assert_int_equal(u, CASENET_URGENCY_EMERGENCY);
    /* Sealed without an urgency: the header takes the payload's. */
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = 1};
    CN_OK(casenet_seal(k, net->dir, &o, em.data, em.len, &env, NULL));
    casenet_message_info info;
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, &info));
    assert_int_equal(info.urgency, CASENET_URGENCY_EMERGENCY);
    casenet_message_info_clear(&info);
    casenet_buf_free(&env);
    /* The same urgency is fine, another is refused. */
    o.urgency = CASENET_URGENCY_EMERGENCY;
    CN_OK(casenet_seal(k, net->dir, &o, em.data, em.len, &env, NULL));
    casenet_buf_free(&env);
    o.urgency = CASENET_URGENCY_STANDARD;
    CN_ERR(casenet_seal(k, net->dir, &o, em.data, em.len, &env, NULL), CASENET_EINVAL);
    assert_null(env.data);
    /* Kinds whose payload states none keep the given urgency. */
    casenet_buf st = status_payload();
    CN_OK(casenet_payload_urgency(st.data, st.len, &u));
    assert_int_equal(u, 0);
    o.kind = CASENET_KIND_STATUS;
    o.urgency = CASENET_URGENCY_INFO;
    CN_OK(casenet_seal(k, net->dir, &o, st.data, st.len, &env, NULL));
    casenet_buf_free(&env);
    casenet_buf_free(&st);
    /* A sender that writes standard over an emergency: the recipient refuses
     * it, naming both. */
    struct raw w;
    raw_init(&w, net, k, to, 1);
    w.p.payload = em.data;
    w.p.payload_len = em.len;
    w.p.urgency = CASENET_URGENCY_STANDARD;
    CN_OK(cn_seal_raw(&w.p, &env));
    CN_OK(casenet_envelope_verify(net->dir, env.data, env.len, NULL));
    char why[256] = "";
    casenet_buf out = {0};
    CN_ERR(casenet_open_detail(tl_net_keys(net, "vn.police.a05"), net->dir, env.data, env.len, NULL,
                               &out, why, sizeof why),
           CASENET_EBADREQ);
    assert_string_equal(why, "the envelope's urgency is standard but the referral says emergency");
    casenet_buf_free(&env);
    /* Urgency 0 in a header reads as standard, so it contradicts too. */
    w.p.urgency = 0;
    CN_OK(cn_seal_raw(&w.p, &env));
    CN_ERR(casenet_open(tl_net_keys(net, "vn.police.a05"), net->dir, env.data, env.len, NULL, &out),
           CASENET_EBADREQ);
    casenet_buf_free(&env);
    w.p.urgency = CASENET_URGENCY_EMERGENCY;
    CN_OK(cn_seal_raw(&w.p, &env));
    CN_OK(casenet_open(tl_net_keys(net, "vn.police.a05"), net->dir, env.data, env.len, NULL, &out));
    casenet_buf_free(&out);
    casenet_buf_free(&env);
    casenet_buf_free(&w.payload);
    casenet_buf_free(&em);
    /* An urgency outside the enum (only a raw encoder writes one). */
    casenet_buf odd = tl_referral_payload_urgency("odd", (casenet_urgency)9);
    CN_ERR(casenet_payload_check(odd.data, odd.len, CASENET_KIND_REFERRAL, (casenet_urgency)9, why,
                                 sizeof why),
           CASENET_EBADREQ);
    assert_string_equal(why, "the referral's urgency 9 is none of emergency, urgent-takedown, "
                             "standard, info");
    o.kind = CASENET_KIND_REFERRAL;
    o.urgency = 0;
    CN_ERR(casenet_seal(k, net->dir, &o, odd.data, odd.len, &env, NULL), CASENET_EINVAL);
    casenet_buf_free(&odd);
}

/* The role matrix as the library applies it (PROTOCOL.md §6.1). */
static void test_role_matrix(void **state)
{
    tl_net *net = *state;
    casenet_member hot, a05, hn, plat, coord, broker;
    CN_OK(casenet_directory_find(net->dir, "vn.hotline111", &hot));
    CN_OK(casenet_directory_find(net->dir, "vn.police.a05", &a05));
    CN_OK(casenet_directory_find(net->dir, "vn.police.hn", &hn));
    CN_OK(casenet_directory_find(net->dir, "vn.platform.x", &plat));
    CN_OK(casenet_directory_find(net->dir, "vn.coord", &coord));
    CN_OK(casenet_directory_find(net->dir, "vn.broker", &broker));
    assert_true(casenet_role_may_send(&hot, CASENET_KIND_REFERRAL, &a05));
    assert_false(casenet_role_may_send(&plat, CASENET_KIND_REFERRAL, &a05));
    assert_false(casenet_role_may_send(&hot, CASENET_KIND_REFERRAL, &plat));
    assert_false(casenet_role_may_send(&hot, CASENET_KIND_REFERRAL, &coord));
    assert_false(casenet_role_may_send(&hot, CASENET_KIND_REFERRAL, &broker));
    assert_true(casenet_role_may_send(&a05, CASENET_KIND_TAKEDOWN_REQUEST, &plat));
    assert_false(casenet_role_may_send(&hn, CASENET_KIND_TAKEDOWN_REQUEST, &plat));
    assert_false(casenet_role_may_send(&a05, CASENET_KIND_TAKEDOWN_REQUEST, &hn));
    assert_true(casenet_role_may_send(&plat, CASENET_KIND_TAKEDOWN_RESULT, &a05));
    assert_false(casenet_role_may_send(&plat, CASENET_KIND_TAKEDOWN_RESULT, &hn));
    assert_true(casenet_role_may_send(&plat, CASENET_KIND_STATUS, &a05));
    assert_false(casenet_role_may_send(&coord, CASENET_KIND_STATUS, &a05));
    assert_false(casenet_role_may_send(&a05, CASENET_KIND_INFO_REQUEST, &coord));
    assert_true(casenet_role_may_send(&broker, CASENET_KIND_ESCALATION, &coord));
    assert_true(casenet_role_may_send(&broker, CASENET_KIND_DEAD_LETTER, &hot));
    assert_false(casenet_role_may_send(&broker, CASENET_KIND_REFERRAL, &a05));
    assert_false(casenet_role_may_send(&hot, CASENET_KIND_ESCALATION, &coord));
    assert_true(casenet_role_may_send(&hot, CASENET_KIND_HASH_SHARE, &plat));
    assert_false(casenet_role_may_send(&coord, CASENET_KIND_HASH_SHARE, &plat));
    const char *to[] = {"vn.police.a05", "vn.platform.x"};
    char err[256];
    CN_ERR(casenet_role_check(net->dir, "vn.hotline111", CASENET_KIND_REFERRAL, to, 2, err,
                              sizeof err),
           CASENET_EFORBIDDEN);
    assert_string_equal(err, "referral messages go to intake, responder or gateway; "
                             "vn.platform.x is platform");
    CN_ERR(casenet_role_check(net->dir, "vn.platform.x", CASENET_KIND_REFERRAL, to, 1, err,
                              sizeof err),
           CASENET_EFORBIDDEN);
    assert_string_equal(err, "vn.platform.x (platform) may not send referral messages: only "
                             "intake, responder or gateway may");
    CN_OK(casenet_role_check(net->dir, "vn.hotline111", CASENET_KIND_REFERRAL, to, 1, err,
                             sizeof err));
    /* casenet_seal applies it, @groups included. */
    casenet_buf ref = tl_referral_payload("r"), env = {0};
    const char *grp[] = {"@platforms"};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = grp, .n_to = 1};
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, ref.data, ref.len, &env,
                        NULL),
           CASENET_EFORBIDDEN);
    assert_null(env.data);
    casenet_buf_free(&ref);
}

/* ------------------------------------------------------------ worked example */

/* The worked example of proto/PROTOCOL.md §7 of the envelope section. The
 * expected values live here, once; the test checks that the document carries
 * every one of them (whitespace ignored). CASENET_PRINT_EXAMPLE=1 prints
 * them as computed. */
#define EX_CREATED_AT 1767225600000LL /* 2026-01-01T00:00:00Z */
#define EX_EXPIRES_AT 1767830400000LL /* + 7 days */

struct ex_value {
    const char *label;
    const char *hex;
};

#include "worked_example.inc"

static void fill_seq(uint8_t *b, size_t n, uint8_t first)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(first + i);
}

static casenet_buf example_payload(void)
{
    Casenet__V1__Referral r = CASENET__V1__REFERRAL__INIT;
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    Casenet__V1__LegalBasis lb = CASENET__V1__LEGAL_BASIS__INIT;
    Casenet__V1__HarmCategory harm[1] = {CASENET__V1__HARM_CATEGORY__HARM_CATEGORY_GROOMING};
    lb.kind = CASENET__V1__LEGAL_BASIS_KIND__LEGAL_BASIS_KIND_VITAL_INTEREST;
    r.legal_basis = &lb;
    r.case_id = (char *)"HN-2026-0001";
    r.n_harm_categories = 1;
    r.harm_categories = harm;
    r.urgency = CASENET__V1__URGENCY__URGENCY_EMERGENCY;
    r.summary = (char *)"Example only.";
    p.body_case = CASENET__V1__PAYLOAD__BODY_REFERRAL;
    p.referral = &r;
    casenet_buf b;
    b.len = casenet__v1__payload__get_packed_size(&p);
    b.data = malloc(b.len);
    casenet__v1__payload__pack(&p, b.data);
    return b;
}

static char *hexdup(const uint8_t *b, size_t n)
{
    char *h = malloc(2 * n + 1);
    cn_hex(b, n, h);
    return h;
}

/* True when doc shows hex: a value of up to 16 digits anywhere in the text;
 * a longer one as a whole indented block (lines of 4 spaces and hex digits
 * only, joined), so that a value appearing inside a longer one (the
 * signature inside the envelope) is not mistaken for its own block. */
static bool doc_has_block(const char *doc, const char *hex)
{
    size_t n = strlen(hex);
    if (n <= 16)
        return strstr(doc, hex) != NULL;
    char *block = malloc(strlen(doc) + 1);
    size_t bl = 0;
    bool found = false;
    for (const char *line = doc; *line && !found;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        bool is_hex = len > 4 && strncmp(line, "    ", 4) == 0 &&
                      strspn(line + 4, "0123456789abcdef") == len - 4;
        if (is_hex) {
            memcpy(block + bl, line + 4, len - 4);
            bl += len - 4;
        }
        if (!is_hex || !eol || !eol[1]) {
            found = bl == n && memcmp(block, hex, n) == 0;
            bl = 0;
        }
        line = eol ? eol + 1 : line + len;
    }
    free(block);
    return found;
}

static void test_worked_example(void **state)
{
    (void)state;
    CN_OK(casenet_init());
    uint8_t sseed[32], rseed[32], rbox[32], esk[32], epk[32], key[32], nonce[24], mid[16];
    fill_seq(sseed, 32, 0x00);
    fill_seq(rbox, 32, 0x20);
    fill_seq(esk, 32, 0x40);
    fill_seq(key, 32, 0x60);
    fill_seq(nonce, 24, 0x80);
    fill_seq(mid, 16, 0xa0);
    fill_seq(rseed, 32, 0xc0);
    cn_x25519_base(epk, esk);
    casenet_keys *sender = NULL, *rcpt = NULL, *auth = NULL;
    CN_OK(cn_keys_from_secrets("vn.hotline111", sseed, NULL, NULL, 0, &sender));
    CN_OK(cn_keys_from_secrets("vn.police.a05", rseed, rbox, NULL, 0, &rcpt));
    /* A directory listing both, from an hour before the message. */
    CN_OK(casenet_keys_generate_authority(0, &auth));
    casenet_buf d1 = {0}, d2 = {0}, pub = {0};
    const char *intake[] = {"intake"}, *resp[] = {"responder"};
    casenet_member_spec s1 = {NULL, intake, 1, NULL, 0}, s2 = {NULL, resp, 1, NULL, 0};
    int64_t t0 = EX_CREATED_AT - 3600 * 1000;
    CN_OK(casenet_keys_public_file(sender, &pub));
    CN_OK(casenet_directory_add_member(auth, NULL, 0, pub.data, pub.len, &s1, t0,
                                       365LL * 86400 * 1000, &d1));
    casenet_buf_free(&pub);
    CN_OK(casenet_keys_public_file(rcpt, &pub));
    CN_OK(casenet_directory_add_member(auth, d1.data, d1.len, pub.data, pub.len, &s2, t0,
                                       365LL * 86400 * 1000, &d2));
    casenet_buf_free(&pub);
    casenet_directory *dir = NULL;
    CN_OK(casenet_directory_parse(d2.data, d2.len, casenet_keys_sign_pk(auth, NULL), EX_CREATED_AT,
                                  0, &dir));
    casenet_member m;
    CN_OK(casenet_directory_find(dir, "vn.police.a05", &m));

    casenet_buf payload = example_payload(), env = {0};
    struct cn_seal_recipient r = {m.id, m.box_key_id, m.box_pk, epk, esk};
    const char *skid;
    struct cn_seal_params p = {
        .sender = "vn.hotline111",
        .sign_sk = cn_keys_sign_sk(sender, &skid),
        .kind = CASENET_KIND_REFERRAL,
        .urgency = CASENET_URGENCY_EMERGENCY,
        .status = CASENET_MSG_EXERCISE,
        .created_at_ms = EX_CREATED_AT,
        .expires_at_ms = EX_EXPIRES_AT,
        .message_id = mid,
        .nonce = nonce,
        .content_key = key,
        .n_recipients = 1,
        .recipients = &r,
        .payload = payload.data,
        .payload_len = payload.len,
    };
    p.sign_key_id = skid;
    CN_OK(cn_seal_raw(&p, &env));

    /* Take the envelope apart and recompute every intermediate value. */
    Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, env.len, env.data);
    assert_non_null(e);
    Casenet__V1__Header *h = casenet__v1__header__unpack(NULL, e->header.len, e->header.data);
    assert_non_null(h);
    casenet_buf ad = {0}, pae = {0};
    const uint8_t *adp[2] = {mid, (const uint8_t *)"vn.hotline111"};
    size_t adl[2] = {16, strlen("vn.hotline111")};
    CN_OK(cn_pae(CN_PAYLOAD_DOMAIN, 2, adp, adl, &ad));
    const uint8_t *hp[1] = {e->header.data};
    size_t hl[1] = {e->header.len};
    CN_OK(cn_pae(CN_ENVELOPE_DOMAIN, 1, hp, hl, &pae));
    uint8_t commit[32], opened[32];
    cn_key_commit(commit, key);
    assert_memory_equal(commit, h->key_commitment.data, 32);
    assert_int_equal(
        crypto_box_seal_open(opened, h->wrapped_keys[0]->sealed_key.data, 80, m.box_pk, rbox), 0);
    assert_memory_equal(opened, key, 32);

    struct ex_value got[] = {
        {"sender_sign_pk", hexdup(casenet_keys_sign_pk(sender, NULL), 32)},
        {"sender_sign_key_id", strdup(skid)},
        {"recipient_box_pk", hexdup(m.box_pk, 32)},
        {"recipient_box_key_id", strdup(m.box_key_id)},
        {"ephemeral_pk", hexdup(epk, 32)},
        {"payload", hexdup(payload.data, payload.len)},
        {"payload_ad", hexdup(ad.data, ad.len)},
        {"key_commitment", hexdup(commit, 32)},
        {"sealed_key", hexdup(h->wrapped_keys[0]->sealed_key.data, 80)},
        {"ciphertext", hexdup(e->ciphertext.data, e->ciphertext.len)},
        {"ciphertext_hash", hexdup(h->ciphertext_hash.data, 32)},
        {"header", hexdup(e->header.data, e->header.len)},
        {"header_pae", hexdup(pae.data, pae.len)},
        {"signature", hexdup(e->signature.data, 64)},
        {"envelope", hexdup(env.data, env.len)},
        {"envelope_hash", NULL},
    };
    size_t n_got = sizeof got / sizeof got[0];
    uint8_t eh[32];
    cn_sha256(env.data, env.len, eh);
    got[n_got - 1].hex = hexdup(eh, 32);
    const char *print = getenv("CASENET_PRINT_EXAMPLE");
    if (print && *print) {
        for (size_t i = 0; i < n_got; i++) {
            printf("%s (%zu bytes):\n", got[i].label, strlen(got[i].hex) / 2);
            for (size_t j = 0; j < strlen(got[i].hex); j += 64)
                printf("    %.64s\n", got[i].hex + j);
        }
    }
    /* The values are the expected ones ... */
    assert_int_equal(n_got, sizeof example / sizeof example[0]);
    for (size_t i = 0; i < n_got; i++) {
        assert_string_equal(got[i].label, example[i].label);
        assert_string_equal(got[i].hex, example[i].hex);
    }
    /* ... the recipient opens it through the directory ... */
    casenet_buf out = {0};
    casenet_message_info info;
    CN_OK(casenet_open(rcpt, dir, env.data, env.len, &info, &out));
    assert_int_equal(out.len, payload.len);
    assert_memory_equal(out.data, payload.data, payload.len);
    assert_memory_equal(info.envelope_hash, eh, 32);
    casenet_message_info_clear(&info);
    casenet_buf_free(&out);
    /* ... and proto/PROTOCOL.md shows every one of them. */
    const char *src = getenv("CASENET_SOURCE_DIR");
    assert_non_null(src);
    char *path = tl_path(src, "proto/PROTOCOL.md");
    size_t dlen;
    char *doc = (char *)tl_read_file(path, &dlen);
    for (size_t i = 0; i < n_got; i++) {
        if (!doc_has_block(doc, example[i].hex))
            fail_msg("PROTOCOL.md lacks the worked example's %s", example[i].label);
    }
    free(doc);
    free(path);
    for (size_t i = 0; i < n_got; i++)
        free((char *)got[i].hex);
    casenet_buf_free(&ad);
    casenet_buf_free(&pae);
    casenet__v1__header__free_unpacked(h, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
    casenet_directory_free(dir);
    casenet_buf_free(&d1);
    casenet_buf_free(&d2);
    casenet_keys_free(auth);
    casenet_keys_free(rcpt);
    casenet_keys_free(sender);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_group, setup, teardown),
        cmocka_unit_test(test_round_trip_24),
        cmocka_unit_test_setup_teardown(test_every_byte_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_recipient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_matches_seal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_not_in_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspended_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pasted_under_other_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_message_id_same_ciphertext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_commitment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_recipient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_kind_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_mutations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_without_box_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipient_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_message_after_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test(test_required_fields),
        cmocka_unit_test_setup_teardown(test_required_fields_seal_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urgency_from_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_matrix, setup, teardown),
        cmocka_unit_test(test_worked_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
