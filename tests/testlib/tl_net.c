/* tl_net.c - test networks: authority, members, signed directory (see tl_net.h). */
#include "tl_net.h"

#include "casenet.pb-c.h"
#include "crypto.h"
#include "keys_impl.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TL_VALIDITY_MS (24LL * 3600 * 1000)

static void fail(const char *what, int rc)
{
    fprintf(stderr, "tl_net: %s: %s\n", what, casenet_strerror(rc));
    abort();
}

/* Splits "a,b,c" into a malloc'd array of malloc'd strings. */
static size_t split(const char *s, char ***out)
{
    size_t n = 0;
    char **v = NULL;
    if (s && *s) {
        char *copy = strdup(s), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            v = realloc(v, (n + 1) * sizeof *v);
            v[n++] = strdup(t);
        }
        free(copy);
    }
    *out = v;
    return n;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void tl_net_reload(tl_net *net)
{
    casenet_directory_free(net->dir);
    net->dir = NULL;
    int rc = casenet_directory_parse(net->signed_dir.data, net->signed_dir.len, net->authority_pk,
                                     cn_now_ms(), 0, &net->dir);
    if (rc != CASENET_OK)
        fail("directory_parse", rc);
}

void tl_net_add(tl_net *net, const char *spec, const casenet_keys *k)
{
    char *copy = strdup(spec);
    char *roles = strchr(copy, ':'), *groups = NULL;
    if (roles) {
        *roles++ = '\0';
        groups = strchr(roles, ':');
        if (groups)
            *groups++ = '\0';
    }
    char **rv, **gv;
    size_t nr = split(roles, &rv), ng = split(groups, &gv);
    casenet_member_spec ms = {NULL, (const char *const *)rv, nr, (const char *const *)gv, ng};
    casenet_buf pub = {0}, out = {0};
    int rc = casenet_keys_public_file(k, &pub);
    if (rc != CASENET_OK)
        fail("public_file", rc);
    net->now_ms = cn_now_ms();
    rc = casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                      pub.data, pub.len, &ms, net->now_ms, TL_VALIDITY_MS, &out);
    if (rc != CASENET_OK)
        fail("add_member", rc);
    casenet_buf_free(&net->signed_dir);
    net->signed_dir = out;
    casenet_buf_free(&pub);
    free_list(rv, nr);
    free_list(gv, ng);
    free(copy);
    tl_net_reload(net);
}

void tl_net_set_status(tl_net *net, const char *id, casenet_member_status st)
{
    casenet_buf out = {0};
    net->now_ms = cn_now_ms();
    int rc = casenet_directory_set_status(net->authority, net->signed_dir.data, net->signed_dir.len,
                                          id, st, net->now_ms, TL_VALIDITY_MS, &out);
    if (rc != CASENET_OK)
        fail("set_status", rc);
    casenet_buf_free(&net->signed_dir);
    net->signed_dir = out;
    tl_net_reload(net);
}

tl_net *tl_net_new(const char *const *members, size_t n)
{
    tl_net *net = calloc(1, sizeof *net);
    int rc = casenet_init();
    if (rc != CASENET_OK)
        fail("init", rc);
    rc = casenet_keys_generate_authority(cn_now_ms(), &net->authority);
    if (rc != CASENET_OK)
        fail("generate_authority", rc);
    memcpy(net->authority_pk, casenet_keys_sign_pk(net->authority, NULL), 32);
    net->n = n;
    net->ids = calloc(n, sizeof *net->ids);
    net->keys = calloc(n, sizeof *net->keys);
    for (size_t i = 0; i < n; i++) {
        net->ids[i] = strndup(members[i], strcspn(members[i], ":"));
        rc = casenet_keys_generate(net->ids[i], cn_now_ms(), &net->keys[i]);
        if (rc != CASENET_OK)
            fail("generate", rc);
        tl_net_add(net, members[i], net->keys[i]);
    }
    return net;
}

void tl_net_free(tl_net *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->n; i++) {
        casenet_keys_free(net->keys[i]);
        free(net->ids[i]);
    }
    free(net->keys);
    free(net->ids);
    casenet_directory_free(net->dir);
    casenet_buf_free(&net->signed_dir);
    casenet_keys_free(net->authority);
    free(net);
}

casenet_keys *tl_net_keys(const tl_net *net, const char *id)
{
    for (size_t i = 0; i < net->n; i++) {
        if (strcmp(net->ids[i], id) == 0)
            return net->keys[i];
    }
    fprintf(stderr, "tl_net: no member %s\n", id);
    abort();
}

casenet_buf tl_referral_payload(const char *text)
{
    return tl_referral_payload_urgency(text, CASENET_URGENCY_STANDARD);
}

casenet_buf tl_referral_payload_urgency(const char *text, casenet_urgency urgency)
{
    Casenet__V1__Referral r = CASENET__V1__REFERRAL__INIT;
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    Casenet__V1__LegalBasis lb = CASENET__V1__LEGAL_BASIS__INIT;
    Casenet__V1__HarmCategory harm = CASENET__V1__HARM_CATEGORY__HARM_CATEGORY_OTHER;
    lb.kind = CASENET__V1__LEGAL_BASIS_KIND__LEGAL_BASIS_KIND_STATUTORY_DUTY;
    r.summary = (char *)text;
    r.case_id = (char *)"case-1";
    r.urgency = (Casenet__V1__Urgency)urgency;
    r.n_harm_categories = 1;
    r.harm_categories = &harm;
    r.legal_basis = &lb;
    p.body_case = CASENET__V1__PAYLOAD__BODY_REFERRAL;
    p.referral = &r;
    casenet_buf b;
    b.len = casenet__v1__payload__get_packed_size(&p);
    b.data = malloc(b.len + 1);
    casenet__v1__payload__pack(&p, b.data);
    return b;
}

casenet_buf tl_sign_receipt_raw(const casenet_keys *signer, const casenet_receipt *r)
{
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
        abort();
    casenet__v1__receipt_body__pack(&b, body);
    casenet_buf pae = {0};
    const uint8_t *parts[1] = {body};
    size_t lens[1] = {blen};
    if (cn_pae("casenet.receipt.v1", 1, parts, lens, &pae) != CASENET_OK)
        abort();
    uint8_t sig[CASENET_SIGNATURE_BYTES];
    cn_sign(sig, pae.data, pae.len, sk);
    casenet_buf_free(&pae);
    Casenet__V1__SignedReceipt o = CASENET__V1__SIGNED_RECEIPT__INIT;
    o.body.data = body;
    o.body.len = blen;
    o.signature.data = sig;
    o.signature.len = sizeof sig;
    casenet_buf out;
    out.len = casenet__v1__signed_receipt__get_packed_size(&o);
    out.data = malloc(out.len);
    if (!out.data)
        abort();
    casenet__v1__signed_receipt__pack(&o, out.data);
    free(body);
    return out;
}
