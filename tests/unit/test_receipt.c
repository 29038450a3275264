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
    CN_OK(casenet_receipt_sign(tl_net_keys(net, "vn.police.a05"), &r, &buf));
    CN_OK(casenet_receipt_verify(net->dir, buf.data, buf.len, &got));
    assert_memory_equal(got.message_id, r.message_id, 16);
    assert_memory_equal(got.envelope_hash, r.envelope_hash, 32);
    assert_string_equal(got.sender, r.sender);
    assert_string_equal(got.recipient, r.recipient);
    assert_int_equal(got.status, r.status);
    assert_string_equal(got.reason, r.reason);
    assert_int_equal(got.outcome, CASENET_OUTCOME_NONE);
    assert_false(got.has_note);
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
    CN_OK(casenet_submit_receipt_sign(tl_net_keys(net, "vn.broker"), &r, &buf));
    CN_OK(casenet_submit_receipt_verify(net->dir, buf.data, buf.len, &got));
    assert_memory_equal(got.message_id, r.message_id, 16);
    assert_memory_equal(got.envelope_hash, r.envelope_hash, 32);
    assert_int_equal(got.accepted_at_ms, r.accepted_at_ms);
    assert_int_equal(got.audit_index, 42);
    assert_string_equal(got.broker_id, "vn.broker");
    casenet_buf_free(&buf);
}

/* Repacks a receipt wrapper (SignedReceipt and BrokerReceipt have the same
 * shape) with body changed by fn and re-signed under domain with sk. */
static casenet_buf resign_body(const casenet_buf *in, const char *domain, const uint8_t *sk,
                               void (*fn)(Casenet__V1__ReceiptBody *))
{
    Casenet__V1__SignedReceipt *s = casenet__v1__signed_receipt__unpack(NULL, in->len, in->data);
    assert_non_null(s);
    Casenet__V1__ReceiptBody *b =
        casenet__v1__receipt_body__unpack(NULL, s->body.len, s->body.data);
    assert_non_null(b);
    Casenet__V1__ReceiptBody c = *b;
    if (fn)
        fn(&c);
    size_t bl = casenet__v1__receipt_body__get_packed_size(&c);
    uint8_t *body = malloc(bl);
    casenet__v1__receipt_body__pack(&c, body);
    casenet_buf pae = {0};
    const uint8_t *parts[1] = {body};
    size_t lens[1] = {bl};
    CN_OK(cn_pae(domain, 1, parts, lens, &pae));
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, pae.data, pae.len, sk);
    Casenet__V1__SignedReceipt o = CASENET__V1__SIGNED_RECEIPT__INIT;
    o.body.data = body;
    o.body.len = bl;
    o.signature.data = sig;
    o.signature.len = 64;
    casenet_buf out;
    out.len = casenet__v1__signed_receipt__get_packed_size(&o);
    out.data = malloc(out.len);
    casenet__v1__signed_receipt__pack(&o, out.data);
    free(body);
    casenet_buf_free(&pae);
    casenet__v1__receipt_body__free_unpacked(b, NULL);
    casenet__v1__signed_receipt__free_unpacked(s, NULL);
    return out;
}

static void set_completed(Casenet__V1__ReceiptBody *b)
{
    b->status = CASENET__V1__RECEIPT_STATUS__RECEIPT_STATUS_COMPLETED;
    b->reason = (char *)"";
    b->outcome = CASENET__V1__COMPLETION_OUTCOME__COMPLETION_OUTCOME_RESOLVED;
}
static void set_unknown_outcome(Casenet__V1__ReceiptBody *b)
{
    set_completed(b);
    b->outcome = 99;
}
static void set_key_id_escape(Casenet__V1__ReceiptBody *b)
{
    b->sign_key_id = (char *)"\x1b]0;pwned\x07";
}
static void set_short_note(Casenet__V1__ReceiptBody *b)
{
    b->note_id.len = 8;
    b->note_id.data = b->message_id.data;
}
static void set_unknown_reason(Casenet__V1__ReceiptBody *b)
{
    b->reason = (char *)"too-busy";
}
static void set_reason_on_accepted(Casenet__V1__ReceiptBody *b)
{
    b->status = CASENET__V1__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED;
}
static void set_unknown_signer(Casenet__V1__ReceiptBody *b)
{
    b->recipient = (char *)"vn.stranger";
}
static void set_bad_status(Casenet__V1__ReceiptBody *b)
{
    b->status = 9;
}
static void set_short_mid(Casenet__V1__ReceiptBody *b)
{
    b->message_id.len = 8;
}
static const char *signer_key_id;
static void set_key_id(Casenet__V1__ReceiptBody *b)
{
    b->sign_key_id = (char *)signer_key_id;
}

static void test_receipt_forgeries(void **state)
{
    tl_net *net = *state;
    casenet_receipt r = sample(), got;
    casenet_buf buf = {0};
    casenet_keys *police = tl_net_keys(net, "vn.police.a05");
    casenet_keys *hotline = tl_net_keys(net, "vn.hotline111");
    CN_OK(casenet_receipt_sign(police, &r, &buf));
    /* Sanity: re-signing unchanged with the right key verifies. */
    casenet_buf t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(police, NULL), NULL);
    CN_OK(casenet_receipt_verify(net->dir, t.data, t.len, &got));
    casenet_buf_free(&t);
    /* The sender forges a "completed" receipt in the police's name. */
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(hotline, NULL), set_completed);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EBADSIG);
    casenet_buf_free(&t);
    /* ... even naming its own key id: that key is not the police's. */
    casenet_keys_sign_pk(hotline, &signer_key_id);
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(hotline, NULL), set_key_id);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EUNAUTH);
    casenet_buf_free(&t);
    /* A signature under another domain (a submit receipt's) does not transfer. */
    t = resign_body(&buf, "casenet.submit-receipt.v1", cn_keys_sign_sk(police, NULL), NULL);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EBADSIG);
    casenet_buf_free(&t);
    /* Unknown signer. */
    casenet_keys *stranger = NULL;
    CN_OK(casenet_keys_generate("vn.stranger", cn_now_ms(), &stranger));
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(stranger, NULL),
                    set_unknown_signer);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EUNAUTH);
    casenet_buf_free(&t);
    casenet_receipt rs = sample();
    strcpy(rs.recipient, "vn.stranger");
    CN_OK(casenet_receipt_sign(stranger, &rs, &t));
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EUNAUTH);
    casenet_buf_free(&t);
    casenet_keys_free(stranger);
    /* Malformed bodies. */
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(police, NULL), set_bad_status);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EBADREQ);
    casenet_buf_free(&t);
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(police, NULL), set_short_mid);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EBADREQ);
    casenet_buf_free(&t);
    /* Validly signed, but a decline reason outside the list, or a reason on
     * another status, is not a receipt this protocol knows. */
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(police, NULL), set_unknown_reason);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EBADREQ);
    casenet_buf_free(&t);
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(police, NULL),
                    set_reason_on_accepted);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EBADREQ);
    casenet_buf_free(&t);
    /* An outcome is one of the codes; a note names a message (16 bytes). */
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(police, NULL), set_unknown_outcome);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EBADREQ);
    casenet_buf_free(&t);
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(police, NULL), set_short_note);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EBADREQ);
    casenet_buf_free(&t);
    /* No control character in any text field: malformed, whatever the key. */
    t = resign_body(&buf, "casenet.receipt.v1", cn_keys_sign_sk(police, NULL), set_key_id_escape);
    CN_ERR(casenet_receipt_verify(net->dir, t.data, t.len, &got), CASENET_EBADREQ);
    casenet_buf_free(&t);
    /* Every bit of the signed receipt matters. */
    for (size_t i = 0; i < buf.len; i++) {
        buf.data[i] ^= 0x01;
        assert_int_not_equal(casenet_receipt_verify(net->dir, buf.data, buf.len, &got), CASENET_OK);
        buf.data[i] ^= 0x01;
    }
    CN_OK(casenet_receipt_verify(net->dir, buf.data, buf.len, &got));
    casenet_buf_free(&buf);
}

static void test_receipt_sign_refusals(void **state)
{
    tl_net *net = *state;
    casenet_receipt r = sample();
    casenet_buf buf = {0};
    /* Only the recipient named in the receipt signs it. */
    CN_ERR(casenet_receipt_sign(tl_net_keys(net, "vn.hotline111"), &r, &buf), CASENET_EINVAL);
    r.status = 0;
    CN_ERR(casenet_receipt_sign(tl_net_keys(net, "vn.police.a05"), &r, &buf), CASENET_EINVAL);
    /* Declined needs a listed reason; no other status takes one; only
     * completed takes an outcome. */
    casenet_keys *police = tl_net_keys(net, "vn.police.a05");
    r = sample();
    strcpy(r.reason, "");
    CN_ERR(casenet_receipt_sign(police, &r, &buf), CASENET_EINVAL);
    strcpy(r.reason, "too-busy");
    CN_ERR(casenet_receipt_sign(police, &r, &buf), CASENET_EINVAL);
    r.status = CASENET_RECEIPT_ACCEPTED;
    strcpy(r.reason, "duplicate");
    CN_ERR(casenet_receipt_sign(police, &r, &buf), CASENET_EINVAL);
    strcpy(r.reason, "");
    r.outcome = CASENET_OUTCOME_RESOLVED;
    CN_ERR(casenet_receipt_sign(police, &r, &buf), CASENET_EINVAL);
    r.status = CASENET_RECEIPT_COMPLETED;
    r.outcome = (casenet_outcome)99;
    CN_ERR(casenet_receipt_sign(police, &r, &buf), CASENET_EINVAL);
    r.outcome = CASENET_OUTCOME_NONE;
    CN_ERR(casenet_receipt_sign(police, &r, &buf), CASENET_EINVAL);
    r.outcome = CASENET_OUTCOME_WITHDRAWN;
    r.has_note = true;
    randombytes_buf(r.note_id, sizeof r.note_id);
    CN_OK(casenet_receipt_sign(police, &r, &buf));
    casenet_receipt got;
    CN_OK(casenet_receipt_verify(net->dir, buf.data, buf.len, &got));
    assert_int_equal(got.outcome, CASENET_OUTCOME_WITHDRAWN);
    assert_true(got.has_note);
    assert_memory_equal(got.note_id, r.note_id, sizeof r.note_id);
    casenet_buf_free(&buf);
    assert_null(buf.data);
}

static void test_submit_receipt_forgeries(void **state)
{
    tl_net *net = *state;
    casenet_submit_receipt r, got;
    memset(&r, 0, sizeof r);
    randombytes_buf(r.message_id, sizeof r.message_id);
    r.accepted_at_ms = cn_now_ms();
    casenet_buf buf = {0};
    /* A member signing a submit receipt as itself is not the broker. */
    CN_OK(casenet_submit_receipt_sign(tl_net_keys(net, "vn.hotline111"), &r, &buf));
    CN_ERR(casenet_submit_receipt_verify(net->dir, buf.data, buf.len, &got), CASENET_EUNAUTH);
    casenet_buf_free(&buf);
    /* Naming the broker but signing with its own key. */
    strcpy(r.broker_id, "vn.broker");
    CN_ERR(casenet_submit_receipt_sign(tl_net_keys(net, "vn.hotline111"), &r, &buf),
           CASENET_EINVAL);
    CN_OK(casenet_submit_receipt_sign(tl_net_keys(net, "vn.broker"), &r, &buf));
    Casenet__V1__BrokerReceipt *br = casenet__v1__broker_receipt__unpack(NULL, buf.len, buf.data);
    assert_non_null(br);
    uint8_t sig[64];
    casenet_buf pae = {0};
    const uint8_t *parts[1] = {br->body.data};
    size_t lens[1] = {br->body.len};
    CN_OK(cn_pae("casenet.submit-receipt.v1", 1, parts, lens, &pae));
    crypto_sign_detached(sig, NULL, pae.data, pae.len,
                         cn_keys_sign_sk(tl_net_keys(net, "vn.hotline111"), NULL));
    memcpy(br->signature.data, sig, 64);
    casenet_buf f;
    f.len = casenet__v1__broker_receipt__get_packed_size(br);
    f.data = malloc(f.len);
    casenet__v1__broker_receipt__pack(br, f.data);
    CN_ERR(casenet_submit_receipt_verify(net->dir, f.data, f.len, &got), CASENET_EBADSIG);
    casenet_buf_free(&f);
    casenet_buf_free(&pae);
    casenet__v1__broker_receipt__free_unpacked(br, NULL);
    /* A recipient receipt is not a submit receipt. */
    casenet_receipt rr = sample();
    casenet_buf rb = {0};
    CN_OK(casenet_receipt_sign(tl_net_keys(net, "vn.police.a05"), &rr, &rb));
    assert_int_not_equal(casenet_submit_receipt_verify(net->dir, rb.data, rb.len, &got),
                         CASENET_OK);
    assert_int_not_equal(casenet_receipt_verify(net->dir, buf.data, buf.len, &rr), CASENET_OK);
    casenet_buf_free(&rb);
    for (size_t i = 0; i < buf.len; i++) {
        buf.data[i] ^= 0x80;
        assert_int_not_equal(casenet_submit_receipt_verify(net->dir, buf.data, buf.len, &got),
                             CASENET_OK);
        buf.data[i] ^= 0x80;
    }
    casenet_buf_free(&buf);
    /* A directory without a broker verifies no submit receipt. */
    const char *const one[] = {"vn.a:intake"};
    tl_net *lone = tl_net_new(one, 1);
    CN_OK(casenet_submit_receipt_sign(tl_net_keys(net, "vn.broker"), &r, &buf));
    CN_ERR(casenet_submit_receipt_verify(lone->dir, buf.data, buf.len, &got), CASENET_EUNAUTH);
    casenet_buf_free(&buf);
    tl_net_free(lone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_receipt_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_receipt_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipt_forgeries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipt_sign_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_receipt_forgeries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
