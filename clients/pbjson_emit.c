/* pbjson_emit.c - protobuf-c message -> canonical proto3 JSON, and the
 * human-readable touches on top of it (see pbjson.h; the other direction and
 * the shared helpers: pbjson.c). */
#include "pbjson.h"
#include "pbjson_impl.h"
#include "text.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

/* ------------------------------------------------------------------ message -> JSON */

static int emit_message(const ProtobufCMessage *m, unsigned depth, json_t **out);

static json_t *string_from_u64(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return json_string(buf);
}

static json_t *string_from_s64(int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return json_string(buf);
}

static json_t *json_from_double(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

static json_t *json_from_bytes(const ProtobufCBinaryData *bd)
{
    size_t cap = sodium_base64_ENCODED_LEN(bd->len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(cap);
    json_t *j;
    if (!b64)
        return NULL;
    if (bd->len == 0)
        b64[0] = '\0';
    else
        sodium_bin2base64(b64, cap, bd->data, bd->len, sodium_base64_VARIANT_ORIGINAL);
    j = json_string(b64);
    free(b64);
    return j;
}

/* One element of field f, read from src. */
static int emit_value(const ProtobufCFieldDescriptor *f, const void *src, unsigned depth,
                      json_t **out)
{
    json_t *j = NULL;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        j = json_integer(*(const int32_t *)src);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        j = json_integer((json_int_t) * (const uint32_t *)src);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        j = string_from_s64(*(const int64_t *)src);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        j = string_from_u64(*(const uint64_t *)src);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        j = json_from_double(*(const float *)src);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        j = json_from_double(*(const double *)src);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        j = json_boolean(*(const protobuf_c_boolean *)src);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)src;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        j = ev ? json_string(ev->name) : json_integer(v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)src;
        if (!s)
            s = "";
        if (!cn_utf8_valid(s, strlen(s)))
            return CASENET_EBADREQ;
        j = json_string(s);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES:
        j = json_from_bytes(src);
        break;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)src;
        if (!sub) {
            j = json_object(); /* a set oneof member without a body */
            break;
        }
        return emit_message(sub, depth + 1, out);
    }
    }
    if (!j)
        return CASENET_ENOMEM;
    *out = j;
    return CASENET_OK;
}

/* True when a singular proto3 (no-presence) member holds its default. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *src)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)src == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)src == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)src == 0.0f && !signbit(*(const float *)src);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)src == 0.0 && !signbit(*(const double *)src);
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)src;
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int *)src == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)src;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)src)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const ProtobufCMessage *const *)src == NULL;
    }
    return true;
}

/* The whole JSON value of field f of m, or *out = NULL when it is absent. */
static int emit_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, unsigned depth,
                      json_t **out)
{
    const void *member = CMEMBER_PTR(m, f->offset);
    *out = NULL;

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)CMEMBER_PTR(m, f->quantifier_offset) != f->id)
            return CASENET_OK;
        return emit_value(f, member, depth, out);
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)CMEMBER_PTR(m, f->quantifier_offset);
        const char *arr = *(const void *const *)member;
        size_t es = pbj_elem_size(f->type);
        if (n == 0)
            return CASENET_OK;
        json_t *ja = json_array();
        if (!ja)
            return CASENET_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            json_t *v = NULL;
            int rc = emit_value(f, arr + i * es, depth, &v);
            if (rc == CASENET_OK && json_array_append_new(ja, v) != 0)
                rc = CASENET_ENOMEM;
            if (rc != CASENET_OK) {
                json_decref(ja);
                return rc;
            }
        }
        *out = ja;
        return CASENET_OK;
    }
    if (pbj_has_flag(f)) {
        if (!*(const protobuf_c_boolean *)CMEMBER_PTR(m, f->quantifier_offset))
            return CASENET_OK;
        return emit_value(f, member, depth, out);
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) { /* string or message: NULL = absent */
        if (*(const void *const *)member == NULL)
            return CASENET_OK;
        return emit_value(f, member, depth, out);
    }
    if (is_default(f, member)) /* a present sub-message is not a default */
        return CASENET_OK;
    return emit_value(f, member, depth, out);
}

static int emit_message(const ProtobufCMessage *m, unsigned depth, json_t **out)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *obj;

    if (depth > PBJSON_MAX_DEPTH)
        return CASENET_EBADREQ;
    obj = json_object();
    if (!obj)
        return CASENET_ENOMEM;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char jn[PBJSON_NAME_MAX];
        json_t *v = NULL;
        int rc = emit_field(m, f, depth, &v);
        if (rc == CASENET_OK && v) {
            pbj_json_name(f->name, jn);
            if (json_object_set_new(obj, jn, v) != 0)
                rc = CASENET_ENOMEM;
        }
        if (rc != CASENET_OK) {
            json_decref(obj);
            return rc;
        }
    }
    *out = obj;
    return CASENET_OK;
}

int pbjson_encode(const ProtobufCMessage *m, json_t **out)
{
    json_t *j = NULL;
    assert(m && m->descriptor && out);
    int rc = emit_message(m, 1, &j);
    if (rc != CASENET_OK)
        return rc;
    *out = j;
    return CASENET_OK;
}

json_t *pbjson_to_json(const ProtobufCMessage *m)
{
    json_t *j = NULL;
    if (pbjson_encode(m, &j) != CASENET_OK)
        return NULL;
    return j;
}

/* ------------------------------------------------------------------ for people */

static bool is_time_field(const ProtobufCFieldDescriptor *f)
{
    size_t n = strlen(f->name);
    return (f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
            f->type == PROTOBUF_C_TYPE_SFIXED64) &&
           n > 3 && strcmp(f->name + n - 3, "_ms") == 0;
}

static json_t *human_time(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[40], out[48];
    if (!gmtime_r(&t, &tm) || strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return string_from_s64(ms);
    int frac = (int)(ms % 1000);
    if (frac > 0)
        snprintf(out, sizeof out, "%s.%03dZ", base, frac);
    else
        snprintf(out, sizeof out, "%sZ", base);
    return json_string(out);
}

static json_t *human_bytes(const ProtobufCBinaryData *bd)
{
    char *hex = malloc(2 * bd->len + 1);
    if (!hex)
        return NULL;
    sodium_bin2hex(hex, 2 * bd->len + 1, bd->data, bd->len);
    json_t *j = json_string(hex);
    free(hex);
    return j;
}

/* The people's form of one value of f at src, or NULL to keep it as is
 * (*rc set on failure). Messages are rewritten in place in v. */
static json_t *human_value(const ProtobufCFieldDescriptor *f, const void *src, json_t *v, int *rc)
{
    json_t *j = NULL;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)src;
        if (!sub || !json_is_object(v)) /* bounded by obj: pbjson_encode limited its depth */
            *rc = CASENET_EBADREQ;
        else
            *rc = pbjson_humanise(sub, v);
        return NULL;
    }
    if (f->type == PROTOBUF_C_TYPE_BYTES)
        j = human_bytes((const ProtobufCBinaryData *)src);
    else if (is_time_field(f))
        j = human_time(*(const int64_t *)src);
    else
        return NULL;
    if (!j)
        *rc = CASENET_ENOMEM;
    return j;
}

int pbjson_humanise(const ProtobufCMessage *m, json_t *obj)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_BYTES &&
            !is_time_field(f))
            continue;
        char jn[PBJSON_NAME_MAX];
        pbj_json_name(f->name, jn);
        json_t *v = json_object_get(obj, jn);
        if (!v)
            continue; /* absent: a default, or another member of a oneof */
        const void *member = CMEMBER_PTR(m, f->offset);
        int rc = CASENET_OK;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)CMEMBER_PTR(m, f->quantifier_offset);
            const char *arr = *(const void *const *)member;
            if (!json_is_array(v) || json_array_size(v) != n)
                return CASENET_EBADREQ;
            for (size_t k = 0; k < n && rc == CASENET_OK; k++) {
                json_t *h =
                    human_value(f, arr + k * pbj_elem_size(f->type), json_array_get(v, k), &rc);
                if (h && json_array_set_new(v, k, h) != 0)
                    rc = CASENET_ENOMEM;
            }
        } else {
            json_t *h = human_value(f, member, v, &rc);
            if (h && json_object_set_new(obj, jn, h) != 0)
                rc = CASENET_ENOMEM;
        }
        if (rc != CASENET_OK)
            return rc;
    }
    return CASENET_OK;
}
