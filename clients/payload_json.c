/* payload_json.c - casenet.v1.Payload <-> canonical JSON text (public API). */
#include "casenet.h"
#include "envelope_impl.h"
#include "pbjson.h"
#include "text.h"
#include "casenet.pb-c.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Output form: two-space indentation, fields in proto field order (jansson
 * keeps insertion order and pbjson inserts in descriptor order). */
#define PAYLOAD_JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER)

/* The JSON name of the Payload member with field number id. */
static const char *body_json_name(uint32_t id)
{
    static const char *const names[] = {
        "",
        "referral",
        "status",
        "infoRequest",
        "infoResponse",
        "takedownRequest",
        "takedownResult",
        "correction",
        "withdraw",
        "erase",
        "notice",
    };
    return id < sizeof(names) / sizeof(names[0]) ? names[id] : "?";
}

__attribute__((format(printf, 4, 5))) static int set_err(char *err, size_t errlen, int rc,
                                                         const char *fmt, ...)
{
    va_list ap;
    if (err && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int casenet_payload_from_json(const char *json, size_t json_len, casenet_kind kind,
                              casenet_buf *out, char *err, size_t errlen)
{
    int rc = CASENET_EINVAL;
    Casenet__V1__Payload__BodyCase want = CASENET__V1__PAYLOAD__BODY__NOT_SET;
    json_t *root = NULL;
    ProtobufCMessage *msg = NULL;
    const Casenet__V1__Payload *p;
    json_error_t jerr;
    uint8_t *buf = NULL;
    size_t len;

    assert(out);
    if (err && errlen > 0)
        err[0] = '\0';
    if (!json)
        return set_err(err, errlen, CASENET_EINVAL, "no JSON text");
    if (json_len > CASENET_MAX_PAYLOAD_BYTES)
        return set_err(err, errlen, CASENET_ETOOLARGE, "JSON text larger than %u bytes",
                       CASENET_MAX_PAYLOAD_BYTES);
    if (kind != 0) {
        want = (Casenet__V1__Payload__BodyCase)cn_payload_case_for_kind(kind);
        if (want == CASENET__V1__PAYLOAD__BODY__NOT_SET)
            return set_err(err, errlen, CASENET_EINVAL, "message kind %d carries no payload",
                           (int)kind);
    }

    /* Duplicate keys would silently keep the last value; trailing text after
     * the value is refused by jansson's default end-of-input check. */
    root = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return set_err(err, errlen, CASENET_ENOMEM, "out of memory");
        return set_err(err, errlen, CASENET_EINVAL, "line %d column %d: %s", jerr.line, jerr.column,
                       jerr.text);
    }
    rc = pbjson_from_json(&casenet__v1__payload__descriptor, root, &msg, err, errlen);
    if (rc != CASENET_OK)
        goto cleanup;
    p = (const Casenet__V1__Payload *)msg;
    rc = CASENET_EINVAL;
    if (p->body_case == CASENET__V1__PAYLOAD__BODY__NOT_SET) {
        set_err(err, errlen, rc,
                "empty payload: expected one of referral, status, infoRequest, "
                "infoResponse, takedownRequest, takedownResult, correction, "
                "withdraw, erase, notice");
        goto cleanup;
    }
    if (want != CASENET__V1__PAYLOAD__BODY__NOT_SET && p->body_case != want) {
        set_err(err, errlen, rc, "%s: does not match the message kind, which needs %s",
                body_json_name(p->body_case), body_json_name(want));
        goto cleanup;
    }
    len = protobuf_c_message_get_packed_size(msg);
    if (len > CASENET_MAX_PAYLOAD_BYTES) {
        rc = set_err(err, errlen, CASENET_ETOOLARGE, "payload larger than %u bytes",
                     CASENET_MAX_PAYLOAD_BYTES);
        goto cleanup;
    }
    buf = malloc(len);
    if (!buf) {
        rc = set_err(err, errlen, CASENET_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (protobuf_c_message_pack(msg, buf) != len) {
        sodium_memzero(buf, len);
        free(buf);
        buf = NULL;
        rc = set_err(err, errlen, CASENET_EINVAL, "payload serialisation failed");
        goto cleanup;
    }
    out->data = buf;
    out->len = len;
    rc = CASENET_OK;

cleanup:
    protobuf_c_message_free_unpacked(msg, NULL);
    json_decref(root);
    return rc;
}

/* The JSON text of a serialised Payload: canonical, or for people (human:
 * pbjson_humanise). */
static int payload_to_json(const uint8_t *payload, size_t len, bool human, casenet_buf *out)
{
    int rc = CASENET_EBADREQ;
    ProtobufCMessage *msg = NULL;
    json_t *root = NULL;
    char *text = NULL;
    size_t n;

    assert(out);
    if (!payload && len > 0)
        return CASENET_EINVAL;
    if (len > CASENET_MAX_PAYLOAD_BYTES)
        return CASENET_ETOOLARGE;
    /* protobuf-c cannot tell malformed bytes from an allocation failure;
     * both are reported as malformed. */
    msg = protobuf_c_message_unpack(&casenet__v1__payload__descriptor, NULL, len,
                                    payload ? payload : (const uint8_t *)"");
    if (!msg)
        return CASENET_EBADREQ;
    if (!cn_pb_strings_valid(msg))
        goto cleanup; /* rc is CASENET_EBADREQ */
    rc = pbjson_encode(msg, &root);
    if (rc == CASENET_OK && human)
        rc = pbjson_humanise(msg, root);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = CASENET_ENOMEM;
    n = json_dumpb(root, NULL, 0, PAYLOAD_JSON_FLAGS);
    if (n == 0)
        goto cleanup;
    text = malloc(n + 1);
    if (!text)
        goto cleanup;
    if (json_dumpb(root, text, n, PAYLOAD_JSON_FLAGS) != n) {
        sodium_memzero(text, n);
        free(text);
        goto cleanup;
    }
    text[n] = '\0';
    /* Payload text is shown on terminals: DEL and C1 escaped too. */
    rc = cn_json_escape_controls(text, n, out);
    sodium_memzero(text, n);
    free(text);

cleanup:
    json_decref(root);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

int casenet_payload_to_json(const uint8_t *payload, size_t len, casenet_buf *out)
{
    return payload_to_json(payload, len, false, out);
}

int casenet_payload_to_display_json(const uint8_t *payload, size_t len, casenet_buf *out)
{
    return payload_to_json(payload, len, true, out);
}
