/* test_hostile.c - casenetd against hostile input, one test per attack with
 * the error code it must produce: clock skew, truncated and multipart frames,
 * duplicate recipients, zero-length ids, thousands of recipients, a client
 * holding the wrong server key, a Submit reusing a receipt row's id,
 * handshakes that never complete, and envelopes the role matrix forbids or
 * of the broker's own kinds from a member. After
 * each attack the broker must still serve an honest member. */
#include "network.h"
#include "testlib.h"

#include "envelope_impl.h"
#include "keys_impl.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOTLINE         "vn.hotline111"
#define POLICE          "vn.police.a05"
#define MOLISA          "vn.molisa"
#define REQUESTER       "vn.mic.takedown"
#define PLATFORM        "vn.platform.x"
#define COORD           "vn.coord"
#define RULES_MAX_RCPTS 4

#define MANY_RECIPIENTS 3000
#define STALLED_CONNS   40
#define HANDSHAKE_WAIT  25000 /* the broker's handshake limit is 10 s */

static const char *const members[] = {
    HOTLINE ":intake",
    POLICE ":responder:police",
    MOLISA ":responder",
    REQUESTER ":takedown-requester",
    PLATFORM ":platform:platforms",
    COORD ":coordinator",
};
#define N_MEMBERS (sizeof members / sizeof members[0])

static int setup(void **state)
{
    tn_network *tn = tn_new(members, N_MEMBERS);
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

/* An honest member still gets its message through. */
static void assert_still_serving(tn_network *tn)
{
    const char *to[] = {MOLISA};
    casenet_buf env = tn_seal(tn, POLICE, to, 1, "still here", NULL);
    tn_conn *c = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_submit(c, env.data, env.len);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->body_case, CASENET__V1__RESPONSE__BODY_SUBMIT);
    rfree(r);
    tn_close(c);
    casenet_buf_free(&env);
}

/* Sends one raw frame and decodes the single answer. */
static Casenet__V1__Response *raw_call(tn_conn *c, const void *frame, size_t len)
{
    const void *f[1] = {frame};
    size_t l[1] = {len};
    tn_send_frames(c, f, l, 1);
    casenet_buf in = {0};
    if (!tn_recv(c, 10000, &in))
        return NULL;
    Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, in.len, in.data);
    casenet_buf_free(&in);
    return r;
}

/* Re-signs a (modified) header as sender `from` around the original
 * ciphertext: a well-signed envelope that breaks a structural rule. */
static casenet_buf resign(tn_network *tn, const char *from, const Casenet__V1__Header *hd,
                          const Casenet__V1__Envelope *orig)
{
    size_t hlen = casenet__v1__header__get_packed_size(hd);
    uint8_t *hbuf = malloc(hlen);
    assert_non_null(hbuf);
    casenet__v1__header__pack(hd, hbuf);
    casenet_buf out = {0};
    CN_OK(cn_envelope_pack(hbuf, hlen, cn_keys_sign_sk(tn_keys(tn, from), NULL),
                           orig->ciphertext.data, orig->ciphertext.len, &out));
    free(hbuf);
    return out;
}

/* A sealed envelope HOTLINE -> POLICE, unpacked for modification. */
static void sealed_parts(tn_network *tn, Casenet__V1__Envelope **e, Casenet__V1__Header **hd,
                         casenet_buf *env)
{
    const char *to[] = {POLICE};
    *env = tn_seal(tn, HOTLINE, to, 1, "hostile", NULL);
    *e = casenet__v1__envelope__unpack(NULL, env->len, env->data);
    assert_non_null(*e);
    *hd = casenet__v1__header__unpack(NULL, (*e)->header.len, (*e)->header.data);
    assert_non_null(*hd);
}

static int submit_code(tn_network *tn, const casenet_buf *env)
{
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_submit(h, env->data, env->len);
    int code = tn_code(r);
    rfree(r);
    tn_close(h);
    return code;
}

/* ------------------------------------------------------------ tests */

static void test_clock_skew_past(void **state)
{
    tn_network *tn = *state;
    /* A sender clock behind the broker's. Keys are not valid before they
     * were made (moments ago), so the broker's tolerance is set to 1 s and
     * the envelope dated at the directory's creation, 2.5 s back. */
    assert_int_equal(tn_stop(tn), 0);
    tn->config_path = tl_path(tn->root, "casenetd.ini");
    const char *ini = "[limits]\nclock_skew_s = 1\n";
    tl_write_file(tn->config_path, ini, strlen(ini), 0644);
    tn_restart(tn);
    while (cn_now_ms() < tn->net->now_ms + 2500)
        usleep(50 * 1000);
    const char *to[] = {POLICE};
    casenet_buf payload = tl_referral_payload("sealed on a machine whose clock is behind");
    casenet_seal_opts o = {
        .kind = CASENET_KIND_REFERRAL, .to = to, .n_to = 1, .created_at_ms = tn->net->now_ms};
    casenet_buf env = {0};
    CN_OK(casenet_seal(tn_keys(tn, HOTLINE), tn->net->dir, &o, payload.data, payload.len, &env,
                       NULL));
    CN_ERR(submit_code(tn, &env), CASENET_ECLOCKSKEW);
    casenet_buf_free(&env);
    casenet_buf_free(&payload);
    assert_still_serving(tn);
}

/* An envelope dated before its signing key was admitted is UNAUTHENTICATED
 * whatever the clock skew: the key must be valid at created_at_ms (step 7 of
 * PROTOCOL.md 4.6), checked before the broker's clock (section 8, Submit).
 * The keys were admitted moments ago; the envelope says 20 minutes ago. */
static void test_key_validity_before_clock_skew(void **state)
{
    tn_network *tn = *state;
    Casenet__V1__Envelope *e;
    Casenet__V1__Header *hd;
    casenet_buf env;
    sealed_parts(tn, &e, &hd, &env);
    hd->created_at_ms = cn_now_ms() - 20 * 60 * 1000;
    casenet_buf early = resign(tn, HOTLINE, hd, e);
    CN_ERR(submit_code(tn, &early), CASENET_EUNAUTH);
    casenet_buf_free(&early);
    casenet__v1__header__free_unpacked(hd, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    casenet_buf_free(&env);
    assert_still_serving(tn);
}

static void test_truncated_frame(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "cut short", NULL);
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Submit s = CASENET__V1__SUBMIT__INIT;
    s.envelope.data = env.data;
    s.envelope.len = env.len;
    req.protocol_version = 1;
    req.request_id = 9;
    req.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    req.submit = &s;
    size_t len = casenet__v1__request__get_packed_size(&req);
    uint8_t *buf = malloc(len);
    casenet__v1__request__pack(&req, buf);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));

    /* The Request itself cut in the middle of the envelope field. */
    Casenet__V1__Response *r = raw_call(h, buf, len / 2);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    rfree(r);
    /* A whole Request carrying a truncated envelope. */
    s.envelope.len = env.len - 7;
    req.request_id = 10;
    r = tn_call(h, &req, 10000);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    assert_int_equal(r->request_id, 10);
    rfree(r);
    free(buf);
    tn_close(h);
    casenet_buf_free(&env);
    assert_still_serving(tn);
}

static void test_multipart_frame(void **state)
{
    tn_network *tn = *state;
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Hello hello = CASENET__V1__HELLO__INIT;
    req.protocol_version = 1;
    req.request_id = 5;
    req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    req.hello = &hello;
    uint8_t buf[64];
    size_t len = casenet__v1__request__pack(&req, buf);
    const void *f[3] = {buf, "", buf};
    size_t l[3] = {len, 0, len};
    tn_send_frames(h, f, l, 3);
    casenet_buf in = {0};
    assert_true(tn_recv(h, 10000, &in));
    Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, in.len, in.data);
    casenet_buf_free(&in);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    rfree(r);
    /* Exactly one answer for the three frames, and the connection goes on. */
    assert_false(tn_recv(h, 300, &in));
    r = tn_hello(h);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(h);
    assert_still_serving(tn);
}

static void test_duplicate_recipients(void **state)
{
    tn_network *tn = *state;
    Casenet__V1__Envelope *e;
    Casenet__V1__Header *hd;
    casenet_buf env;
    sealed_parts(tn, &e, &hd, &env);
    /* POLICE twice, each with its own (valid) wrapped key. */
    char *rcpts[2] = {hd->recipients[0], hd->recipients[0]};
    Casenet__V1__WrappedKey *wks[2] = {hd->wrapped_keys[0], hd->wrapped_keys[0]};
    char **save_r = hd->recipients;
    Casenet__V1__WrappedKey **save_w = hd->wrapped_keys;
    hd->recipients = rcpts;
    hd->wrapped_keys = wks;
    hd->n_recipients = hd->n_wrapped_keys = 2;
    casenet_buf bad = resign(tn, HOTLINE, hd, e);
    hd->recipients = save_r;
    hd->wrapped_keys = save_w;
    hd->n_recipients = hd->n_wrapped_keys = 1;
    CN_ERR(submit_code(tn, &bad), CASENET_EBADREQ);
    casenet_buf_free(&bad);
    casenet__v1__header__free_unpacked(hd, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    casenet_buf_free(&env);
    assert_still_serving(tn);
}

static void test_zero_length_ids(void **state)
{
    tn_network *tn = *state;
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    /* Fetch of a zero-length message id. */
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Fetch f = CASENET__V1__FETCH__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_FETCH;
    req.fetch = &f;
    Casenet__V1__Response *r = tn_call(h, &req, 10000);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    rfree(r);
    tn_close(h);

    /* A signed envelope with an empty message id, and one with an empty
     * recipient id. */
    Casenet__V1__Envelope *e;
    Casenet__V1__Header *hd;
    casenet_buf env;
    sealed_parts(tn, &e, &hd, &env);
    ProtobufCBinaryData save_id = hd->message_id;
    hd->message_id.len = 0;
    casenet_buf bad = resign(tn, HOTLINE, hd, e);
    hd->message_id = save_id;
    CN_ERR(submit_code(tn, &bad), CASENET_EBADREQ);
    casenet_buf_free(&bad);

    char *save_r = hd->recipients[0];
    char *save_w = hd->wrapped_keys[0]->recipient;
    hd->recipients[0] = (char *)"";
    hd->wrapped_keys[0]->recipient = (char *)"";
    bad = resign(tn, HOTLINE, hd, e);
    hd->recipients[0] = save_r;
    hd->wrapped_keys[0]->recipient = save_w;
    CN_ERR(submit_code(tn, &bad), CASENET_EBADREQ);
    casenet_buf_free(&bad);
    casenet__v1__header__free_unpacked(hd, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    casenet_buf_free(&env);
    assert_still_serving(tn);
}

static void test_thousands_of_recipients(void **state)
{
    tn_network *tn = *state;
    Casenet__V1__Envelope *e;
    Casenet__V1__Header *hd;
    casenet_buf env;
    sealed_parts(tn, &e, &hd, &env);
    char **rcpts = calloc(MANY_RECIPIENTS, sizeof *rcpts);
    Casenet__V1__WrappedKey **wks = calloc(MANY_RECIPIENTS, sizeof *wks);
    char(*ids)[24] = calloc(MANY_RECIPIENTS, sizeof *ids);
    Casenet__V1__WrappedKey *keys = calloc(MANY_RECIPIENTS, sizeof *keys);
    assert_true(rcpts && wks && ids && keys);
    for (size_t i = 0; i < MANY_RECIPIENTS; i++) {
        snprintf(ids[i], sizeof ids[i], "vn.agency%zu", i);
        keys[i] = *hd->wrapped_keys[0];
        keys[i].recipient = ids[i];
        rcpts[i] = ids[i];
        wks[i] = &keys[i];
    }
    char **save_r = hd->recipients;
    Casenet__V1__WrappedKey **save_w = hd->wrapped_keys;
    hd->recipients = rcpts;
    hd->wrapped_keys = wks;
    hd->n_recipients = hd->n_wrapped_keys = MANY_RECIPIENTS;
    casenet_buf bad = resign(tn, HOTLINE, hd, e);
    hd->recipients = save_r;
    hd->wrapped_keys = save_w;
    hd->n_recipients = hd->n_wrapped_keys = 1;
    assert_true(bad.len < 1024 * 1024); /* under the size limit: the count is what is refused */
    CN_ERR(submit_code(tn, &bad), CASENET_ETOOLARGE);
    casenet_buf_free(&bad);
    free(keys);
    free(ids);
    free(wks);
    free(rcpts);
    casenet__v1__header__free_unpacked(hd, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    casenet_buf_free(&env);
    assert_still_serving(tn);
}

static void test_wrong_server_key(void **state)
{
    tn_network *tn = *state;
    /* Another network's directory: same member names, other keys, so the
     * broker's CURVE key the client pins is not the running broker's. */
    tn_network *other = tn_new(members, N_MEMBERS);
    casenet_member b, real;
    CN_OK(casenet_directory_broker(other->net->dir, &b));
    CN_OK(casenet_directory_broker(tn->net->dir, &real));
    assert_memory_not_equal(b.curve_pk, real.curve_pk, 32);
    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = 1500};
    casenet_client *c = NULL;
    int64_t t0 = cn_mono_ms();
    int rc = casenet_client_connect(tn_keys(tn, HOTLINE), other->net->dir, &o, &c);
    int64_t elapsed = cn_mono_ms() - t0;
    CN_ERR(rc, CASENET_ETIMEDOUT);
    assert_null(c);
    assert_true(elapsed >= 1400 && elapsed < 1500 + 2000);
    tn_free(other);
    assert_still_serving(tn);
}

static int raw_connect(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    assert_non_null(colon);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)atoi(colon + 1)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* True when the peer closed fd (EOF or reset) within timeout_ms; whatever
 * the broker sent before (its own greeting) is read and ignored. */
static bool closed_within(int fd, int timeout_ms)
{
    int64_t deadline = cn_mono_ms() + timeout_ms;
    uint8_t buf[256];
    for (;;) {
        int64_t left = deadline - cn_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        ssize_t got = read(fd, buf, sizeof buf);
        if (got == 0 || (got < 0 && errno == ECONNRESET))
            return true;
    }
}

/* A Submit whose message id is already the id of a receipt row in the
 * recipient's inbox. The member who signed that receipt knows the id (the
 * first 16 bytes of the receipt's hash, PROTOCOL.md §8), so the refusal
 * must come before the Submit writes anything: a Submit runs without a
 * savepoint, and one failing after its first write would take down the
 * whole batch, every other member's requests with it. */
static void test_submit_id_of_a_receipt_row(void **state)
{
    tn_network *tn = *state;
    uint8_t id[16], hash[32];
    const char *to_police[] = {POLICE};
    casenet_buf env = tn_seal(tn, HOTLINE, to_police, 1, "for a receipt", id);
    cn_sha256(env.data, env.len, hash);
    assert_int_equal(submit_code(tn, &env), 0);

    /* POLICE acknowledges: the broker files a receipt row, id X, in
     * HOTLINE's inbox. */
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_fetch(p, id);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    casenet_buf receipt =
        tn_sign_receipt(tn, POLICE, id, hash, HOTLINE, CASENET_RECEIPT_DELIVERED, cn_now_ms());
    r = tn_send_receipt(p, receipt.data, receipt.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    uint8_t row_id[32];
    cn_sha256(receipt.data, receipt.len, row_id);

    /* POLICE then sends HOTLINE a message carrying that id, pipelined with
     * an honest Submit of its own on the same connection (one batch). */
    const char *to_hotline[] = {HOTLINE};
    casenet_buf base = tn_seal(tn, POLICE, to_hotline, 1, "same id", NULL);
    Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, base.len, base.data);
    assert_non_null(e);
    Casenet__V1__Header *hd = casenet__v1__header__unpack(NULL, e->header.len, e->header.data);
    assert_non_null(hd);
    memcpy(hd->message_id.data, row_id, 16);
    casenet_buf evil = resign(tn, POLICE, hd, e);
    const char *to_molisa[] = {MOLISA};
    uint8_t honest_id[16];
    casenet_buf honest = tn_seal(tn, POLICE, to_molisa, 1, "honest", honest_id);

    Casenet__V1__Submit s1 = CASENET__V1__SUBMIT__INIT, s2 = CASENET__V1__SUBMIT__INIT;
    s1.envelope.data = evil.data;
    s1.envelope.len = evil.len;
    s2.envelope.data = honest.data;
    s2.envelope.len = honest.len;
    Casenet__V1__Request q1 = CASENET__V1__REQUEST__INIT, q2 = CASENET__V1__REQUEST__INIT;
    q1.protocol_version = q2.protocol_version = 1;
    q1.request_id = 7001;
    q2.request_id = 7002;
    q1.body_case = q2.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    q1.submit = &s1;
    q2.submit = &s2;
    size_t l1 = casenet__v1__request__get_packed_size(&q1);
    size_t l2 = casenet__v1__request__get_packed_size(&q2);
    uint8_t *b1 = malloc(l1), *b2 = malloc(l2);
    assert_non_null(b1);
    assert_non_null(b2);
    casenet__v1__request__pack(&q1, b1);
    casenet__v1__request__pack(&q2, b2);
    const void *f1[1] = {b1}, *f2[1] = {b2};
    tn_send_frames(p, f1, &l1, 1);
    tn_send_frames(p, f2, &l2, 1);
    int got = 0;
    while (got < 2) {
        casenet_buf in = {0};
        assert_true(tn_recv(p, 10000, &in));
        Casenet__V1__Response *a = casenet__v1__response__unpack(NULL, in.len, in.data);
        casenet_buf_free(&in);
        assert_non_null(a);
        if (a->body_case == CASENET__V1__RESPONSE__BODY_NOTICE) {
            rfree(a);
            continue;
        }
        if (a->request_id == 7001) {
            CN_ERR(tn_code(a), CASENET_ECONFLICT);
        } else {
            assert_int_equal(a->request_id, 7002);
            assert_int_equal(tn_code(a), 0); /* not UNAVAILABLE: its batch stood */
            assert_int_equal(a->body_case, CASENET__V1__RESPONSE__BODY_SUBMIT);
        }
        got++;
        rfree(a);
    }
    assert_false(tn_log_contains(tn, "request_failed_after_write"));
    /* Nothing of the refused Submit was stored: HOTLINE's receipt row is
     * still the only entry under that id. */
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    r = tn_fetch(h, row_id);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->fetch->entry->kind, CASENET__V1__KIND__KIND_RECEIPT);
    assert_int_equal(r->fetch->envelope.len, 0);
    rfree(r);
    tn_close(h);
    assert_still_serving(tn);

    free(b1);
    free(b2);
    casenet__v1__header__free_unpacked(hd, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    casenet_buf_free(&evil);
    casenet_buf_free(&honest);
    casenet_buf_free(&base);
    casenet_buf_free(&receipt);
    casenet_buf_free(&env);
    tn_close(p);
}

static void test_handshake_never_completes(void **state)
{
    tn_network *tn = *state;
    /* Partial ZMTP 3 greetings (signature and major version, no mechanism),
     * then silence, from many connections at once. */
    static const uint8_t partial[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x7f, 0x03};
    int fds[STALLED_CONNS];
    int64_t t0 = cn_mono_ms();
    for (int i = 0; i < STALLED_CONNS; i++) {
        fds[i] = raw_connect(tn->endpoint);
        assert_int_equal(write(fds[i], partial, i % 2 ? sizeof partial : 3),
                         (ssize_t)(i % 2 ? sizeof partial : 3));
    }
    /* Meanwhile everyone else is served, promptly. */
    int64_t t1 = cn_mono_ms();
    assert_still_serving(tn);
    assert_true(cn_mono_ms() - t1 < 5000);
    /* The broker drops each stalled connection after its handshake limit. */
    for (int i = 0; i < STALLED_CONNS; i++) {
        int64_t left = HANDSHAKE_WAIT - (cn_mono_ms() - t0);
        assert_true(closed_within(fds[i], left > 0 ? (int)left : 0));
        close(fds[i]);
    }
    assert_still_serving(tn);
}

/* ------------------------------------------------------------ role matrix and notice kinds
 * Envelopes a conforming client would refuse to seal, built with the raw
 * sealing path and validly signed: FORBIDDEN at Submit and audited as
 * rejected (PROTOCOL.md §6.1, §4.6 step 8); what the matrix allows goes
 * through. */

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
    assert_true(n <= RULES_MAX_RCPTS);
    struct cn_seal_recipient r[RULES_MAX_RCPTS];
    uint8_t nonce[24], key[32], epk[RULES_MAX_RCPTS][32], esk[RULES_MAX_RCPTS][32];
    randombytes_buf(mid, 16);
    randombytes_buf(nonce, sizeof nonce);
    randombytes_buf(key, sizeof key);
    for (size_t i = 0; i < n; i++) {
        casenet_member m;
        CN_OK(casenet_directory_find(tn->net->dir, to[i], &m));
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
    CN_OK(cn_seal_raw(&p, &env));
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
                     "vn.police.a05 (responder) may not send takedown-request messages");
    /* ... a competent authority does, to a platform, never to the helpline. */
    expect_accepted(tn, REQUESTER, CASENET_KIND_TAKEDOWN_REQUEST, PLATFORM);
    expect_forbidden(tn, REQUESTER, CASENET_KIND_TAKEDOWN_REQUEST, HOTLINE,
                     "vn.hotline111 is intake");
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
    CN_ERR(casenet_seal(tn_keys(tn, PLATFORM), tn->net->dir, &o, ref.data, ref.len, &env, NULL),
           CASENET_EFORBIDDEN);
    to[0] = TN_BROKER_ID;
    CN_ERR(casenet_seal(tn_keys(tn, HOTLINE), tn->net->dir, &o, ref.data, ref.len, &env, NULL),
           CASENET_EFORBIDDEN);
    assert_null(env.data);
    casenet_buf_free(&ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clock_skew_past, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_validity_before_clock_skew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipart_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_recipients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_length_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thousands_of_recipients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_server_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_id_of_a_receipt_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_never_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_matrix_at_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_kinds_forbidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_when_sealing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
