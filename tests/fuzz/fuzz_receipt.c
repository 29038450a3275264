/* fuzz_receipt.c - libFuzzer harness: casenet_receipt_verify and
 * casenet_submit_receipt_verify on outside bytes, against the fixed network
 * of fuzz_net.h (built once in LLVMFuzzerInitialize).
 *
 * Every input is verified as a SignedReceipt and as a BrokerReceipt (both
 * are {body = 1, signature = 2}). An input whose first byte has the high bit
 * set is also read as 0b1bxxsss body: the body is signed with keyring
 * s % FZ_N under the receipt domain (the submit-receipt domain, wrapped as a
 * BrokerReceipt, when b is set), so the checks behind the signature are
 * reached.
 *
 * Every input is also taken as text (up to its first NUL, at most 255
 * bytes) for common/text.h: the checks a receipt's strings go through, and
 * the terminal escaping whose output must always be safe text. */
#include "casenet.pb-c.h"
#include "fuzz_net.h"
#include "keys_impl.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RESIGN_FLAG 0x80
#define BROKER_FLAG 0x40

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_receipt: %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static tl_net *net;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    net = fz_net_new(NULL, NULL);
    return 0;
}

static void check(const uint8_t *buf, size_t len)
{
    casenet_receipt r;
    if (casenet_receipt_verify(net->dir, buf, len, &r) == CASENET_OK) {
        CHECK(casenet_member_id_valid(r.sender) && casenet_member_id_valid(r.recipient));
        CHECK(r.status >= CASENET_RECEIPT_DELIVERED && r.status <= CASENET_RECEIPT_COMPLETED);
        CHECK(memchr(r.reason, '\0', sizeof r.reason));
        CHECK(cn_text_valid(r.reason) && cn_text_valid(r.sender) && cn_text_valid(r.recipient));
        CHECK(r.status == CASENET_RECEIPT_COMPLETED
                  ? r.outcome >= CASENET_OUTCOME_RESOLVED && r.outcome <= CASENET_OUTCOME_WITHDRAWN
                  : r.outcome == CASENET_OUTCOME_NONE);
        casenet_member m;
        CHECK(casenet_directory_find(net->dir, r.recipient, &m) == CASENET_OK);
    }
    casenet_submit_receipt s;
    if (casenet_submit_receipt_verify(net->dir, buf, len, &s) == CASENET_OK) {
        casenet_member broker;
        CHECK(casenet_directory_broker(net->dir, &broker) == CASENET_OK);
        CHECK(strcmp(broker.id, s.broker_id) == 0);
    }
}

static void resign(uint8_t sel, const uint8_t *body, size_t len)
{
    const casenet_keys *signer = net->keys[(sel & 0x07) % net->n];
    uint8_t sig[CASENET_SIGNATURE_BYTES];
    bool broker = sel & BROKER_FLAG;
    fz_sign(broker ? FZ_SUBMIT_RECEIPT_DOMAIN : FZ_RECEIPT_DOMAIN, body, len,
            cn_keys_sign_sk(signer, NULL), sig);
    size_t slen;
    uint8_t *sbuf;
    if (broker) {
        Casenet__V1__BrokerReceipt w = CASENET__V1__BROKER_RECEIPT__INIT;
        w.body.data = (uint8_t *)body;
        w.body.len = len;
        w.signature.data = sig;
        w.signature.len = sizeof sig;
        slen = casenet__v1__broker_receipt__get_packed_size(&w);
        if (!(sbuf = malloc(slen)))
            abort();
        casenet__v1__broker_receipt__pack(&w, sbuf);
    } else {
        Casenet__V1__SignedReceipt w = CASENET__V1__SIGNED_RECEIPT__INIT;
        w.body.data = (uint8_t *)body;
        w.body.len = len;
        w.signature.data = sig;
        w.signature.len = sizeof sig;
        slen = casenet__v1__signed_receipt__get_packed_size(&w);
        if (!(sbuf = malloc(slen)))
            abort();
        casenet__v1__signed_receipt__pack(&w, sbuf);
    }
    check(sbuf, slen);
    free(sbuf);
}

/* The text checks and the escaping on the input as a string. */
static void check_text(const uint8_t *data, size_t size)
{
    char s[256], esc[4 * sizeof s];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    bool text = cn_text_valid(s);
    CHECK(!text || cn_utf8_valid(s, strlen(s)));
    cn_text_escape(s, esc, sizeof esc);
    CHECK(cn_text_valid(esc));
    CHECK(text == (strcmp(s, esc) == 0)); /* safe text is left alone, anything else is not */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_text(data, size);
    check(data, size);
    if (size >= 1 && (data[0] & RESIGN_FLAG))
        resign(data[0], data + 1, size - 1);
    return 0;
}
