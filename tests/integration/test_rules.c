/* test_rules.c - casenetd enforces the role matrix (PROTOCOL.md §6.1) and
 * keeps the broker's notice kinds to itself (§4.6 step 8): envelopes that a
 * conforming client would refuse to seal, built with the library's raw
 * sealing path and validly signed, are answered FORBIDDEN and audited as
 * rejected submits; what the matrix allows still goes through. */
#include "network.h"
#include "testlib.h"

#include "envelope_impl.h"
#include "keys_impl.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define HOTLINE   "vn.hotline111"
#define POLICE    "vn.police.pc02"
#define A05       "vn.police.a05"
#define PLATFORM  "vn.platform.x"
#define COORD     "vn.coord"
#define MAX_RCPTS 4

static const char *const members[] = {
    HOTLINE ":intake",
    POLICE ":responder:police",
    A05 ":responder,takedown-requester:police",
    PLATFORM ":platform:platforms",
    COORD ":coordinator",
};

static int setup(void **state)
{
    tn_network *tn = tn_new(members, sizeof members / sizeof members[0]);
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

static void rfree(Casenet__V1__Response *r)
{
    casenet__v1__response__free_unpacked(r, NULL);
}

/* A serialised Payload of kind with every required field. */
static casenet_buf full_payload(casenet_kind kind)
{
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    Casenet__V1__TakedownRequest t = CASENET__V1__TAKEDOWN_REQUEST__INIT;
    Casenet__V1__TakedownItem item = CASENET__V1__TAKEDOWN_ITEM__INIT, *items[1] = {&item};
    Casenet__V1__OnlineArtefact loc = CASENET__V1__ONLINE_ARTEFACT__INIT;
    Casenet__V1__LegalBasis lb = CASENET__V1__LEGAL_BASIS__INIT;
    Casenet__V1__BrokerNotice n = CASENET__V1__BROKER_NOTICE__INIT;
    uint8_t id[16] = {7};
    lb.kind = CASENET__V1__LEGAL_BASIS_KIND__LEGAL_BASIS_KIND_CRIME_PREVENTION;
    switch (kind) {
    case CASENET_KIND_REFERRAL:
        return tl_referral_payload("rules");
    case CASENET_KIND_TAKEDOWN_REQUEST:
        loc.url = (char *)"https://social.example/p/1";
        item.item_id = (char *)"1";
        item.locator = &loc;
        t.case_id = (char *)"T-1";
        t.n_items = 1;
        t.items = items;
        t.legal_basis = &lb;
        p.body_case = CASENET__V1__PAYLOAD__BODY_TAKEDOWN_REQUEST;
        p.takedown_request = &t;
        break;
    default: /* a broker notice */
        n.reason = CASENET__V1__NOTICE_REASON__NOTICE_REASON_DELIVER_OVERDUE;
        n.message_id.data = id;
        n.message_id.len = sizeof id;
        n.sender = (char *)HOTLINE;
        n.recipient = (char *)POLICE;
        n.urgency = CASENET__V1__URGENCY__URGENCY_STANDARD;
        p.body_case = CASENET__V1__PAYLOAD__BODY_NOTICE;
        p.notice = &n;
        break;
    }
    casenet_buf b;
    b.len = casenet__v1__payload__get_packed_size(&p);
    b.data = malloc(b.len + 1);
    assert_non_null(b.data);
    casenet__v1__payload__pack(&p, b.data);
    return b;
}

/* A validly signed envelope of kind from `from` to `to`, sealed without the
 * library's role checks (what a non-conforming client could submit). */
static casenet_buf forge(tn_network *tn, const char *from, casenet_kind kind, const char *const *to,
                         size_t n, uint8_t mid[16])
{
    assert_true(n <= MAX_RCPTS);
    struct cn_seal_recipient r[MAX_RCPTS];
    uint8_t nonce[24], key[32], epk[MAX_RCPTS][32], esk[MAX_RCPTS][32];
    randombytes_buf(mid, 16);
    randombytes_buf(nonce, sizeof nonce);
    randombytes_buf(key, sizeof key);
    for (size_t i = 0; i < n; i++) {
        casenet_member m;
        assert_int_equal(casenet_directory_find(tn->net->dir, to[i], &m), CASENET_OK);
        assert_non_null(m.box_pk);
        crypto_box_keypair(epk[i], esk[i]);
        r[i] = (struct cn_seal_recipient){m.id, m.box_key_id, m.box_pk, epk[i], esk[i]};
    }
    casenet_buf payload = full_payload(kind), env = {0};
    const casenet_keys *k = tn_keys(tn, from);
    const char *kid = NULL;
    struct cn_seal_params p = {
        .sender = from,
        .sign_sk = cn_keys_sign_sk(k, &kid),
        .kind = kind,
        .urgency = CASENET_URGENCY_STANDARD,
        .status = CASENET_MSG_ACTUAL,
        .created_at_ms = cn_now_ms(),
        .message_id = mid,
        .nonce = nonce,
        .content_key = key,
        .n_recipients = n,
        .recipients = r,
        .payload = payload.data,
        .payload_len = payload.len,
    };
    p.sign_key_id = kid;
    assert_int_equal(cn_seal_raw(&p, &env), CASENET_OK);
    casenet_buf_free(&payload);
    sodium_memzero(esk, sizeof esk);
    sodium_memzero(key, sizeof key);
    return env;
}

/* Submits env as `from`; returns the answer's code, message in msg. */
static int submit_as(tn_network *tn, const char *from, const casenet_buf *env, char *msg,
                     size_t len)
{
    tn_conn *c = tn_connect(tn, tn_keys(tn, from));
    Casenet__V1__Response *r = tn_submit(c, env->data, env->len);
    int code = tn_code(r);
    snprintf(msg, len, "%s", r->error && r->error->message ? r->error->message : "");
    rfree(r);
    tn_close(c);
    return code;
}

/* The number of REJECTED events of `member` with error code `code` whose
 * detail contains needle (as the member itself sees them). */
static size_t rejected(tn_network *tn, const char *member, int code, const char *needle)
{
    tn_conn *c = tn_connect(tn, tn_keys(tn, member));
    Casenet__V1__AuditQuery q = CASENET__V1__AUDIT_QUERY__INIT;
    q.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED;
    q.limit = 1000;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_QUERY;
    req.audit_query = &q;
    Casenet__V1__Response *r = tn_call(c, &req, 5000);
    assert_int_equal(tn_code(r), 0);
    size_t n = 0;
    for (size_t i = 0; i < r->audit_page->n_records; i++) {
        const Casenet__V1__AuditRecord *rec = r->audit_page->records[i];
        Casenet__V1__AuditEvent *e =
            casenet__v1__audit_event__unpack(NULL, rec->event.len, rec->event.data);
        assert_non_null(e);
        if ((int)e->error == code && strcmp(e->actor, member) == 0 && e->detail &&
            strstr(e->detail, needle))
            n++;
        casenet__v1__audit_event__free_unpacked(e, NULL);
    }
    rfree(r);
    tn_close(c);
    return n;
}

/* Refused with FORBIDDEN, the message naming why, and audited once. */
static void expect_forbidden(tn_network *tn, const char *from, casenet_kind kind, const char *to,
                             const char *why)
{
    const char *rcpt[1] = {to};
    uint8_t mid[16];
    casenet_buf env = forge(tn, from, kind, rcpt, 1, mid);
    char msg[512];
    size_t before = rejected(tn, from, CASENET_EFORBIDDEN, why);
    int code = submit_as(tn, from, &env, msg, sizeof msg);
    if (code != CASENET_EFORBIDDEN || !strstr(msg, why))
        fail_msg("%s -> %s (%s): got %d \"%s\", want FORBIDDEN \"%s\"", from, to,
                 casenet_kind_name(kind), code, msg, why);
    assert_int_equal(rejected(tn, from, CASENET_EFORBIDDEN, why), before + 1);
    casenet_buf_free(&env);
}

static void expect_accepted(tn_network *tn, const char *from, casenet_kind kind, const char *to)
{
    const char *rcpt[1] = {to};
    uint8_t mid[16];
    casenet_buf env = forge(tn, from, kind, rcpt, 1, mid);
    char msg[512];
    int code = submit_as(tn, from, &env, msg, sizeof msg);
    if (code != 0)
        fail_msg("%s -> %s (%s): got %d \"%s\", want it accepted", from, to,
                 casenet_kind_name(kind), code, msg);
    casenet_buf_free(&env);
}

/* The three breaches the issue reproduced, and their allowed neighbours. */
static void test_role_matrix_at_submit(void **state)
{
    tn_network *tn = *state;
    /* A platform does not send referrals (they carry a child's identity). */
    expect_forbidden(tn, PLATFORM, CASENET_KIND_REFERRAL, POLICE,
                     "vn.platform.x (platform) may not send referral messages");
    /* A responder without takedown-requester does not request takedowns... */
    expect_forbidden(tn, POLICE, CASENET_KIND_TAKEDOWN_REQUEST, PLATFORM,
                     "vn.police.pc02 (responder) may not send takedown-request messages");
    /* ... a competent authority does, to a platform, never to the helpline. */
    expect_accepted(tn, A05, CASENET_KIND_TAKEDOWN_REQUEST, PLATFORM);
    expect_forbidden(tn, A05, CASENET_KIND_TAKEDOWN_REQUEST, HOTLINE, "vn.hotline111 is intake");
    /* Nobody sends to the broker's member id. */
    expect_forbidden(tn, HOTLINE, CASENET_KIND_REFERRAL, TN_BROKER_ID,
                     "vn.broker is the broker: no member sends it messages");
    /* Coordinators see metadata, never content. */
    expect_forbidden(tn, HOTLINE, CASENET_KIND_REFERRAL, COORD, "vn.coord is coordinator");
    expect_accepted(tn, HOTLINE, CASENET_KIND_REFERRAL, POLICE);
}

/* A member submitting the broker's notice kinds: FORBIDDEN (§4.6 step 8),
 * not BAD_REQUEST, and audited. */
static void test_broker_kinds_forbidden(void **state)
{
    tn_network *tn = *state;
    expect_forbidden(tn, HOTLINE, CASENET_KIND_ESCALATION, COORD, "the broker's own notices");
    expect_forbidden(tn, POLICE, CASENET_KIND_DEAD_LETTER, HOTLINE, "the broker's own notices");
}

/* The client library refuses the same envelopes before they leave. */
static void test_refused_when_sealing(void **state)
{
    tn_network *tn = *state;
    casenet_buf ref = full_payload(CASENET_KIND_REFERRAL), env = {0};
    const char *to[1] = {POLICE};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = 1};
    assert_int_equal(
        casenet_seal(tn_keys(tn, PLATFORM), tn->net->dir, &o, ref.data, ref.len, &env, NULL),
        CASENET_EFORBIDDEN);
    to[0] = TN_BROKER_ID;
    assert_int_equal(
        casenet_seal(tn_keys(tn, HOTLINE), tn->net->dir, &o, ref.data, ref.len, &env, NULL),
        CASENET_EFORBIDDEN);
    assert_null(env.data);
    casenet_buf_free(&ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_role_matrix_at_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_kinds_forbidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_when_sealing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
