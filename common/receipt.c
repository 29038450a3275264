/* receipt.c - signed receipts: a recipient's receipt for its copy of a
 * message, and the broker's receipt for an accepted submission (see
 * casenet.h and PROTOCOL.md §5). */
#include "casenet.h"

#include "casenet.pb-c.h"
#include "crypto.h"
#include "directory_impl.h"
#include "keys_impl.h"
#include "receipt_impl.h"
#include "text.h"
#include "util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define RECEIPT_DOMAIN        "casenet.receipt.v1"
#define SUBMIT_RECEIPT_DOMAIN "casenet.submit-receipt.v1"
#define RECEIPT_MAX_BYTES     4096

/* PAE(domain, body): the bytes a receipt's signature covers. */
static int receipt_pae(const char *domain, const uint8_t *body, size_t blen, casenet_buf *pae)
{
    const uint8_t *parts[1] = {body};
    size_t lens[1] = {blen};
    return cn_pae(domain, 1, parts, lens, pae);
}

/* Packs {body, signature} (both receipt wrappers have this shape: field 1
 * body, field 2 signature, so the signature is the last bytes). */
static int pack_wrapped(const uint8_t *body, size_t blen,
                        const uint8_t sig[CASENET_SIGNATURE_BYTES], bool broker, casenet_buf *out)
{
    size_t len;
    uint8_t *buf;
    if (broker) {
        Casenet__V1__BrokerReceipt r = CASENET__V1__BROKER_RECEIPT__INIT;
        r.body.data = (uint8_t *)body;
        r.body.len = blen;
        r.signature.data = (uint8_t *)sig;
        r.signature.len = CASENET_SIGNATURE_BYTES;
        len = casenet__v1__broker_receipt__get_packed_size(&r);
        if (!(buf = malloc(len)))
            return CASENET_ENOMEM;
        casenet__v1__broker_receipt__pack(&r, buf);
    } else {
        Casenet__V1__SignedReceipt r = CASENET__V1__SIGNED_RECEIPT__INIT;
        r.body.data = (uint8_t *)body;
        r.body.len = blen;
        r.signature.data = (uint8_t *)sig;
        r.signature.len = CASENET_SIGNATURE_BYTES;
        len = casenet__v1__signed_receipt__get_packed_size(&r);
        if (!(buf = malloc(len)))
            return CASENET_ENOMEM;
        casenet__v1__signed_receipt__pack(&r, buf);
    }
    out->data = buf;
    out->len = len;
    return CASENET_OK;
}

/* Signs PAE(domain, body) and packs {body, signature}. */
static int sign_wrapped(const char *domain, const uint8_t *body, size_t blen,
                        const uint8_t *sign_sk, bool broker, casenet_buf *out)
{
    casenet_buf pae = {0};
    uint8_t sig[CASENET_SIGNATURE_BYTES];
    int rc = receipt_pae(domain, body, blen, &pae);
    if (rc != CASENET_OK)
        return rc;
    cn_sign(sig, pae.data, pae.len, sign_sk);
    casenet_buf_free(&pae);
    return pack_wrapped(body, blen, sig, broker, out);
}

static int verify_sig(const char *domain, const ProtobufCBinaryData *body,
                      const ProtobufCBinaryData *sig, const uint8_t *pk)
{
    if (sig->len != CASENET_SIGNATURE_BYTES)
        return CASENET_EBADSIG;
    casenet_buf pae = {0};
    const uint8_t *parts[1] = {body->data};
    size_t lens[1] = {body->len};
    int rc = cn_pae(domain, 1, parts, lens, &pae);
    if (rc != CASENET_OK)
        return rc;
    rc = cn_sign_verify(sig->data, pae.data, pae.len, pk);
    casenet_buf_free(&pae);
    return rc;
}

/* ------------------------------------------------------------ recipient receipts */

/* The reason and outcome rules of a receipt's status (see casenet.h): a
 * decline reason with DECLINED only, a known outcome code with COMPLETED
 * only. */
static bool status_fields_valid(int status, const char *reason, int outcome)
{
    if (status == CASENET_RECEIPT_DECLINED ? !casenet_decline_reason_valid(reason) : reason[0])
        return false;
    bool known = outcome >= CASENET_OUTCOME_RESOLVED && outcome <= CASENET_OUTCOME_WITHDRAWN;
    return status == CASENET_RECEIPT_COMPLETED ? known : outcome == CASENET_OUTCOME_NONE;
}

int casenet_receipt_sign(const casenet_keys *signer, const casenet_receipt *r, casenet_buf *out)
{
    if (!signer || !r || !out || strcmp(r->recipient, casenet_keys_member_id(signer)) != 0 ||
        !casenet_member_id_valid(r->sender) || r->status < CASENET_RECEIPT_DELIVERED ||
        r->status > CASENET_RECEIPT_COMPLETED || !memchr(r->reason, '\0', sizeof r->reason) ||
        !cn_text_valid(r->reason) || !status_fields_valid(r->status, r->reason, (int)r->outcome))
        return CASENET_EINVAL;
    const char *key_id = NULL;
    const uint8_t *sk = cn_keys_sign_sk(signer, &key_id);
    Casenet__V1__ReceiptBody b = CASENET__V1__RECEIPT_BODY__INIT;
    b.message_id.data = (uint8_t *)r->message_id;
    b.message_id.len = CASENET_MESSAGE_ID_BYTES;
    b.envelope_hash.data = (uint8_t *)r->envelope_hash;
    b.envelope_hash.len = CASENET_HASH_BYTES;
    b.sender = (char *)r->sender;
    b.recipient = (char *)r->recipient;
    b.sign_key_id = (char *)key_id;
    b.status = (Casenet__V1__ReceiptStatus)r->status;
    b.reason = (char *)r->reason;
    b.outcome = (Casenet__V1__CompletionOutcome)r->outcome;
    if (r->has_note) {
        b.note_id.data = (uint8_t *)r->note_id;
        b.note_id.len = CASENET_MESSAGE_ID_BYTES;
    }
    b.signed_at_ms = r->signed_at_ms;
    size_t blen = casenet__v1__receipt_body__get_packed_size(&b);
    uint8_t *body = malloc(blen);
    if (!body)
        return CASENET_ENOMEM;
    casenet__v1__receipt_body__pack(&b, body);
    int rc = sign_wrapped(RECEIPT_DOMAIN, body, blen, sk, false, out);
    free(body);
    return rc;
}

int casenet_receipt_verify(const casenet_directory *dir, const uint8_t *buf, size_t len,
                           casenet_receipt *out)
{
    if (!dir || !buf || !out)
        return CASENET_EINVAL;
    if (len > RECEIPT_MAX_BYTES)
        return CASENET_EBADREQ;
    Casenet__V1__ReceiptBody *b = NULL;
    int rc = CASENET_EBADREQ;
    Casenet__V1__SignedReceipt *s = casenet__v1__signed_receipt__unpack(NULL, len, buf);
    if (!s)
        goto cleanup;
    b = casenet__v1__receipt_body__unpack(NULL, s->body.len, s->body.data);
    /* Every text field is a single line without control characters: a
     * receipt is shown to people, stored and audited for good. */
    if (!b || !cn_pb_strings_valid(&b->base) || !cn_text_valid(b->sign_key_id) ||
        !cn_text_valid(b->reason) || b->message_id.len != CASENET_MESSAGE_ID_BYTES ||
        b->envelope_hash.len != CASENET_HASH_BYTES || !casenet_member_id_valid(b->sender) ||
        !casenet_member_id_valid(b->recipient) ||
        b->status < CASENET__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED ||
        b->status > CASENET__V1__RECEIPT_STATUS__RECEIPT_STATUS_COMPLETED ||
        (b->note_id.len != 0 && b->note_id.len != CASENET_MESSAGE_ID_BYTES))
        goto cleanup;
    casenet_receipt r;
    memset(&r, 0, sizeof r);
    if (cn_strlcpy(r.sender, b->sender, sizeof r.sender) != CASENET_OK ||
        cn_strlcpy(r.recipient, b->recipient, sizeof r.recipient) != CASENET_OK ||
        cn_strlcpy(r.reason, b->reason, sizeof r.reason) != CASENET_OK ||
        !status_fields_valid(b->status, r.reason, (int)b->outcome))
        goto cleanup;
    r.outcome = (casenet_outcome)b->outcome;
    r.has_note = b->note_id.len == CASENET_MESSAGE_ID_BYTES;
    if (r.has_note)
        memcpy(r.note_id, b->note_id.data, CASENET_MESSAGE_ID_BYTES);
    casenet_member m;
    const uint8_t *pk = NULL;
    rc = CASENET_EUNAUTH;
    if (casenet_directory_find(dir, b->recipient, &m) != CASENET_OK ||
        casenet_directory_sign_key(dir, b->recipient, b->sign_key_id, b->signed_at_ms, &pk) !=
            CASENET_OK)
        goto cleanup;
    rc = verify_sig(RECEIPT_DOMAIN, &s->body, &s->signature, pk);
    if (rc != CASENET_OK)
        goto cleanup;
    memcpy(r.message_id, b->message_id.data, CASENET_MESSAGE_ID_BYTES);
    memcpy(r.envelope_hash, b->envelope_hash.data, CASENET_HASH_BYTES);
    r.status = (casenet_receipt_status)b->status;
    r.signed_at_ms = b->signed_at_ms;
    *out = r;
cleanup:
    casenet__v1__receipt_body__free_unpacked(b, NULL);
    casenet__v1__signed_receipt__free_unpacked(s, NULL);
    return rc;
}

/* ------------------------------------------------------------ broker receipts */

int cn_submit_receipt_build(const casenet_keys *broker, const casenet_submit_receipt *r,
                            casenet_buf *receipt, casenet_buf *pae)
{
    if (!broker || !r || !receipt || !pae)
        return CASENET_EINVAL;
    const char *id = casenet_keys_member_id(broker);
    if (r->broker_id[0] && strcmp(r->broker_id, id) != 0)
        return CASENET_EINVAL;
    const char *key_id = NULL;
    (void)cn_keys_sign_sk(broker, &key_id);
    Casenet__V1__SubmitReceiptBody b = CASENET__V1__SUBMIT_RECEIPT_BODY__INIT;
    b.message_id.data = (uint8_t *)r->message_id;
    b.message_id.len = CASENET_MESSAGE_ID_BYTES;
    b.envelope_hash.data = (uint8_t *)r->envelope_hash;
    b.envelope_hash.len = CASENET_HASH_BYTES;
    b.accepted_at_ms = r->accepted_at_ms;
    b.audit_index = r->audit_index;
    b.broker_id = (char *)id;
    b.sign_key_id = (char *)key_id;
    size_t blen = casenet__v1__submit_receipt_body__get_packed_size(&b);
    uint8_t *body = malloc(blen);
    if (!body)
        return CASENET_ENOMEM;
    casenet__v1__submit_receipt_body__pack(&b, body);
    static const uint8_t zero[CASENET_SIGNATURE_BYTES];
    casenet_buf p = {0}, w = {0};
    int rc = receipt_pae(SUBMIT_RECEIPT_DOMAIN, body, blen, &p);
    if (rc == CASENET_OK)
        rc = pack_wrapped(body, blen, zero, true, &w);
    free(body);
    if (rc != CASENET_OK) {
        casenet_buf_free(&p);
        return rc;
    }
    assert(w.len > CASENET_SIGNATURE_BYTES);
    *receipt = w;
    *pae = p;
    return CASENET_OK;
}

void cn_submit_receipt_sign_pae(const uint8_t *sign_sk, const uint8_t *pae, size_t len,
                                uint8_t sig[CASENET_SIGNATURE_BYTES])
{
    cn_sign(sig, pae, len, sign_sk);
}

int casenet_submit_receipt_sign(const casenet_keys *broker, const casenet_submit_receipt *r,
                                casenet_buf *out)
{
    if (!broker || !r || !out)
        return CASENET_EINVAL;
    casenet_buf receipt = {0}, pae = {0};
    int rc = cn_submit_receipt_build(broker, r, &receipt, &pae);
    if (rc != CASENET_OK)
        return rc;
    cn_submit_receipt_sign_pae(cn_keys_sign_sk(broker, NULL), pae.data, pae.len,
                               receipt.data + receipt.len - CASENET_SIGNATURE_BYTES);
    casenet_buf_free(&pae);
    *out = receipt;
    return CASENET_OK;
}

int casenet_submit_receipt_verify(const casenet_directory *dir, const uint8_t *buf, size_t len,
                                  casenet_submit_receipt *out)
{
    if (!dir || !buf || !out)
        return CASENET_EINVAL;
    if (len > RECEIPT_MAX_BYTES)
        return CASENET_EBADREQ;
    Casenet__V1__SubmitReceiptBody *b = NULL;
    int rc = CASENET_EBADREQ;
    Casenet__V1__BrokerReceipt *s = casenet__v1__broker_receipt__unpack(NULL, len, buf);
    if (!s)
        goto cleanup;
    b = casenet__v1__submit_receipt_body__unpack(NULL, s->body.len, s->body.data);
    if (!b || !cn_pb_strings_valid(&b->base) || !cn_text_valid(b->sign_key_id) ||
        b->message_id.len != CASENET_MESSAGE_ID_BYTES ||
        b->envelope_hash.len != CASENET_HASH_BYTES || !casenet_member_id_valid(b->broker_id))
        goto cleanup;
    casenet_member broker;
    const uint8_t *pk = NULL;
    rc = CASENET_EUNAUTH;
    if (casenet_directory_broker(dir, &broker) != CASENET_OK ||
        strcmp(broker.id, b->broker_id) != 0 ||
        casenet_directory_sign_key(dir, broker.id, b->sign_key_id, b->accepted_at_ms, &pk) !=
            CASENET_OK)
        goto cleanup;
    rc = verify_sig(SUBMIT_RECEIPT_DOMAIN, &s->body, &s->signature, pk);
    if (rc != CASENET_OK)
        goto cleanup;
    casenet_submit_receipt r;
    memset(&r, 0, sizeof r);
    memcpy(r.message_id, b->message_id.data, CASENET_MESSAGE_ID_BYTES);
    memcpy(r.envelope_hash, b->envelope_hash.data, CASENET_HASH_BYTES);
    r.accepted_at_ms = b->accepted_at_ms;
    r.audit_index = b->audit_index;
    rc = cn_strlcpy(r.broker_id, b->broker_id, sizeof r.broker_id);
    if (rc != CASENET_OK) {
        rc = CASENET_EBADREQ;
        goto cleanup;
    }
    *out = r;
cleanup:
    casenet__v1__submit_receipt_body__free_unpacked(b, NULL);
    casenet__v1__broker_receipt__free_unpacked(s, NULL);
    return rc;
}
