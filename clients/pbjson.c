/* pbjson.c - protobuf-c message <-> canonical proto3 JSON, driven by descriptors. */
#include "pbjson.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <float.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define PBJSON_PATH_MAX  256
#define PBJSON_NAME_MAX  128                /* longest proto field name we convert */
#define PBJSON_EXACT_MAX 9007199254740992.0 /* 2^53: larger reals are not exact */

/* ------------------------------------------------------------------ shared */

#define MEMBER_PTR(msg, off)  ((void *)((char *)(msg) + (off)))
#define CMEMBER_PTR(msg, off) ((const void *)((const char *)(msg) + (off)))

/* Writes the lowerCamelCase JSON name of a snake_case proto field name, as
 * protoc's ToJsonName does: underscores dropped, the letter after one
 * upper-cased. Descriptors are our own generated code: a name that does not
 * fit is a bug. */
static void json_name(const char *proto, char out[static PBJSON_NAME_MAX])
{
    size_t n = 0;
    bool up = false;
    for (; *proto; proto++) {
        if (*proto == '_') {
            up = true;
            continue;
        }
        char c = *proto;
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        up = false;
        assert(n + 1 < PBJSON_NAME_MAX);
        out[n++] = c;
    }
    out[n] = '\0';
}

/* True when key is the JSON name or the proto name of field f. */
static bool field_matches(const ProtobufCFieldDescriptor *f, const char *key)
{
    char jn[PBJSON_NAME_MAX];
    if (strcmp(f->name, key) == 0)
        return true;
    json_name(f->name, jn);
    return strcmp(jn, key) == 0;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (field_matches(&d->fields[i], key))
            return &d->fields[i];
    }
    return NULL;
}

/* Size of one element of a repeated field (and of a singular member). */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int); /* generated enums are forced to int size */
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    assert(!"unknown protobuf-c type");
    return 0;
}

/* protobuf-c keeps a has_ flag for optional (proto2 / proto3 `optional`)
 * scalars and bytes; strings and messages use NULL for absence. */
static bool has_flag(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, <= U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* ------------------------------------------------------------------ JSON -> message */

typedef struct pbj_ctx {
    char *err;
    size_t errlen;
    char path[PBJSON_PATH_MAX];
    size_t plen;
    unsigned depth;
} pbj_ctx;

static const char *json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Records "path: message" in the caller's err buffer and returns rc. */
__attribute__((format(printf, 3, 4))) static int fail(pbj_ctx *ctx, int rc, const char *fmt, ...)
{
    va_list ap;
    int n = 0;
    if (ctx->errlen == 0)
        return rc;
    if (ctx->plen > 0)
        n = snprintf(ctx->err, ctx->errlen, "%s: ", ctx->path);
    if (n >= 0 && (size_t)n < ctx->errlen) {
        va_start(ap, fmt);
        vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int fail_type(pbj_ctx *ctx, const char *expected, const json_t *got)
{
    return fail(ctx, CASENET_EINVAL, "expected %s, got %s", expected, json_type_name(got));
}

/* Appends a path segment; returns the length to restore with path_pop. A
 * path too long for the buffer is cut, ending in "...". */
__attribute__((format(printf, 2, 3))) static size_t path_push(pbj_ctx *ctx, const char *fmt, ...)
{
    size_t saved = ctx->plen;
    size_t room = sizeof(ctx->path) - ctx->plen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ctx->path + ctx->plen, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        ctx->path[ctx->plen] = '\0';
    } else if ((size_t)n >= room) {
        ctx->plen = sizeof(ctx->path) - 1;
        memcpy(ctx->path + ctx->plen - 3, "...", 3);
    } else {
        ctx->plen += (size_t)n;
    }
    return saved;
}

static size_t path_push_field(pbj_ctx *ctx, const char *name)
{
    return path_push(ctx, ctx->plen ? ".%s" : "%s", name);
}

static void path_pop(pbj_ctx *ctx, size_t saved)
{
    ctx->plen = saved;
    ctx->path[saved] = '\0';
}

/* Strict decimal integer text: optional '-', then digits only. */
static bool decimal_text(const char *s, size_t len, bool allow_minus)
{
    size_t i = 0;
    if (allow_minus && len > 0 && s[0] == '-')
        i = 1;
    if (i == len)
        return false;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* An integral JSON real within +-2^53 (exactly representable). */
static bool exact_integral(double d)
{
    return isfinite(d) && d == trunc(d) && fabs(d) <= PBJSON_EXACT_MAX;
}

static int get_signed(pbj_ctx *ctx, const json_t *j, int64_t min, int64_t max, const char *tname,
                      int64_t *out)
{
    int64_t v;
    if (json_is_integer(j)) {
        v = (int64_t)json_integer_value(j);
    } else if (json_is_real(j)) {
        double d = json_real_value(j);
        if (!exact_integral(d))
            return fail(ctx, CASENET_EINVAL, "not an exact integer for %s", tname);
        v = (int64_t)d;
    } else if (json_is_string(j)) {
        const char *s = json_string_value(j);
        size_t len = json_string_length(j);
        if (!decimal_text(s, len, true))
            return fail(ctx, CASENET_EINVAL, "expected a number, got string \"%.40s\"", s);
        errno = 0;
        long long ll = strtoll(s, NULL, 10);
        if (errno == ERANGE)
            return fail(ctx, CASENET_EINVAL, "number out of range for %s", tname);
        v = (int64_t)ll;
    } else {
        return fail_type(ctx, "a number", j);
    }
    if (v < min || v > max)
        return fail(ctx, CASENET_EINVAL, "number out of range for %s", tname);
    *out = v;
    return CASENET_OK;
}

static int get_unsigned(pbj_ctx *ctx, const json_t *j, uint64_t max, const char *tname,
                        uint64_t *out)
{
    uint64_t v;
    if (json_is_integer(j)) {
        json_int_t i = json_integer_value(j);
        if (i < 0)
            return fail(ctx, CASENET_EINVAL, "number out of range for %s", tname);
        v = (uint64_t)i;
    } else if (json_is_real(j)) {
        double d = json_real_value(j);
        if (!exact_integral(d))
            return fail(ctx, CASENET_EINVAL, "not an exact integer for %s", tname);
        if (d < 0)
            return fail(ctx, CASENET_EINVAL, "number out of range for %s", tname);
        v = (uint64_t)d;
    } else if (json_is_string(j)) {
        const char *s = json_string_value(j);
        size_t len = json_string_length(j);
        if (len > 0 && s[0] == '-' && decimal_text(s, len, true))
            return fail(ctx, CASENET_EINVAL, "number out of range for %s", tname);
        if (!decimal_text(s, len, false))
            return fail(ctx, CASENET_EINVAL, "expected a number, got string \"%.40s\"", s);
        errno = 0;
        unsigned long long ull = strtoull(s, NULL, 10);
        if (errno == ERANGE)
            return fail(ctx, CASENET_EINVAL, "number out of range for %s", tname);
        v = (uint64_t)ull;
    } else {
        return fail_type(ctx, "a number", j);
    }
    if (v > max)
        return fail(ctx, CASENET_EINVAL, "number out of range for %s", tname);
    *out = v;
    return CASENET_OK;
}

static int get_double(pbj_ctx *ctx, const json_t *j, bool is_float, double *out)
{
    double d;
    if (json_is_number(j)) {
        d = json_number_value(j);
    } else if (json_is_string(j)) {
        const char *s = json_string_value(j);
        if (strcmp(s, "NaN") == 0)
            d = NAN;
        else if (strcmp(s, "Infinity") == 0)
            d = INFINITY;
        else if (strcmp(s, "-Infinity") == 0)
            d = -INFINITY;
        else
            return fail(ctx, CASENET_EINVAL,
                        "not a number: expected a number, \"NaN\", "
                        "\"Infinity\" or \"-Infinity\"");
    } else {
        return fail_type(ctx, "a number", j);
    }
    if (is_float && isfinite(d) && fabs(d) > FLT_MAX)
        return fail(ctx, CASENET_EINVAL, "number out of range for float");
    *out = d;
    return CASENET_OK;
}

static int get_string(pbj_ctx *ctx, const json_t *j, char **out)
{
    if (!json_is_string(j))
        return fail_type(ctx, "a string", j);
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    if (memchr(s, '\0', len) != NULL)
        return fail(ctx, CASENET_EINVAL, "string holds a NUL character");
    if (!utf8_valid((const unsigned char *)s, len))
        return fail(ctx, CASENET_EINVAL, "string is not valid UTF-8");
    char *copy = malloc(len + 1);
    if (!copy)
        return fail(ctx, CASENET_ENOMEM, "out of memory");
    memcpy(copy, s, len + 1);
    *out = copy;
    return CASENET_OK;
}

static int get_bytes(pbj_ctx *ctx, const json_t *j, ProtobufCBinaryData *out)
{
    if (!json_is_string(j))
        return fail_type(ctx, "a base64 string", j);
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    if (len == 0) {
        out->data = NULL;
        out->len = 0;
        return CASENET_OK;
    }
    bool url = strpbrk(s, "-_") != NULL;
    bool padded = memchr(s, '=', len) != NULL;
    int variant =
        url ? (padded ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_URLSAFE_NO_PADDING)
            : (padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    size_t cap = len / 4 * 3 + 3;
    uint8_t *bin = malloc(cap);
    size_t bin_len = 0;
    if (!bin)
        return fail(ctx, CASENET_ENOMEM, "out of memory");
    if (sodium_base642bin(bin, cap, s, len, NULL, &bin_len, NULL, variant) != 0) {
        free(bin);
        return fail(ctx, CASENET_EINVAL, "invalid base64");
    }
    if (bin_len == 0) {
        free(bin);
        bin = NULL;
    }
    out->data = bin;
    out->len = bin_len;
    return CASENET_OK;
}

static int get_enum(pbj_ctx *ctx, const ProtobufCEnumDescriptor *ed, const json_t *j, int *out)
{
    const ProtobufCEnumValue *v;
    if (json_is_string(j)) {
        v = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));
        if (!v)
            return fail(ctx, CASENET_EINVAL, "unknown value \"%.64s\" for enum %s",
                        json_string_value(j), ed->name);
    } else if (json_is_integer(j)) {
        json_int_t i = json_integer_value(j);
        if (i < INT32_MIN || i > INT32_MAX)
            return fail(ctx, CASENET_EINVAL, "number out of range for enum %s", ed->name);
        v = protobuf_c_enum_descriptor_get_value(ed, (int)i);
        if (!v)
            return fail(ctx, CASENET_EINVAL, "unknown value %d for enum %s", (int)i, ed->name);
    } else {
        return fail_type(ctx, "an enum name or number", j);
    }
    *out = v->value;
    return CASENET_OK;
}

static int parse_message(pbj_ctx *ctx, const ProtobufCMessageDescriptor *d, const json_t *obj,
                         ProtobufCMessage **out);

/* Converts one JSON value to one element of field f's type at dst. dst is
 * written only on success, so a failed element never needs freeing. */
static int parse_value(pbj_ctx *ctx, const ProtobufCFieldDescriptor *f, const json_t *j, void *dst)
{
    int rc;
    int64_t s64;
    uint64_t u64;
    double d;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        rc = get_signed(ctx, j, INT32_MIN, INT32_MAX, "int32", &s64);
        if (rc == CASENET_OK)
            *(int32_t *)dst = (int32_t)s64;
        return rc;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        rc = get_unsigned(ctx, j, UINT32_MAX, "uint32", &u64);
        if (rc == CASENET_OK)
            *(uint32_t *)dst = (uint32_t)u64;
        return rc;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        rc = get_signed(ctx, j, INT64_MIN, INT64_MAX, "int64", &s64);
        if (rc == CASENET_OK)
            *(int64_t *)dst = s64;
        return rc;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        rc = get_unsigned(ctx, j, UINT64_MAX, "uint64", &u64);
        if (rc == CASENET_OK)
            *(uint64_t *)dst = u64;
        return rc;
    case PROTOBUF_C_TYPE_FLOAT:
        rc = get_double(ctx, j, true, &d);
        if (rc == CASENET_OK)
            *(float *)dst = (float)d;
        return rc;
    case PROTOBUF_C_TYPE_DOUBLE:
        rc = get_double(ctx, j, false, &d);
        if (rc == CASENET_OK)
            *(double *)dst = d;
        return rc;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(j))
            return fail_type(ctx, "a boolean", j);
        *(protobuf_c_boolean *)dst = json_is_true(j) ? 1 : 0;
        return CASENET_OK;
    case PROTOBUF_C_TYPE_ENUM:
        return get_enum(ctx, f->descriptor, j, (int *)dst);
    case PROTOBUF_C_TYPE_STRING:
        return get_string(ctx, j, (char **)dst);
    case PROTOBUF_C_TYPE_BYTES:
        return get_bytes(ctx, j, (ProtobufCBinaryData *)dst);
    case PROTOBUF_C_TYPE_MESSAGE:
        return parse_message(ctx, f->descriptor, j, (ProtobufCMessage **)dst);
    }
    assert(!"unknown protobuf-c type");
    return CASENET_EINVAL;
}

static int parse_repeated(pbj_ctx *ctx, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                          const json_t *val)
{
    if (!json_is_array(val))
        return fail_type(ctx, "an array", val);
    size_t n = json_array_size(val);
    if (n == 0)
        return CASENET_OK;
    size_t es = elem_size(f->type);
    void *arr = calloc(n, es);
    if (!arr)
        return fail(ctx, CASENET_ENOMEM, "out of memory");
    /* Attach at once, counting only converted elements, so that
     * protobuf_c_message_free_unpacked releases a partial array. */
    size_t *np = MEMBER_PTR(msg, f->quantifier_offset);
    *(void **)MEMBER_PTR(msg, f->offset) = arr;
    *np = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *elem = json_array_get(val, i);
        size_t saved = path_push(ctx, "[%zu]", i);
        if (json_is_null(elem))
            return fail(ctx, CASENET_EINVAL, "null is not allowed in an array");
        int rc = parse_value(ctx, f, elem, (char *)arr + i * es);
        if (rc != CASENET_OK)
            return rc;
        (*np)++;
        path_pop(ctx, saved);
    }
    return CASENET_OK;
}

static int parse_field(pbj_ctx *ctx, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                       const json_t *val)
{
    void *member = MEMBER_PTR(msg, f->offset);
    int rc;

    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return parse_repeated(ctx, msg, f, val);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = MEMBER_PTR(msg, f->quantifier_offset);
        if (*which != 0) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field(msg->descriptor, *which);
            char jn[PBJSON_NAME_MAX];
            json_name(other ? other->name : "?", jn);
            return fail(ctx, CASENET_EINVAL, "only one member of a oneof may be set, %s is set too",
                        jn);
        }
        rc = parse_value(ctx, f, val, member);
        if (rc == CASENET_OK)
            *which = f->id;
        return rc;
    }
    rc = parse_value(ctx, f, val, member);
    if (rc == CASENET_OK && has_flag(f))
        *(protobuf_c_boolean *)MEMBER_PTR(msg, f->quantifier_offset) = 1;
    return rc;
}

static int parse_message(pbj_ctx *ctx, const ProtobufCMessageDescriptor *d, const json_t *obj,
                         ProtobufCMessage **out)
{
    int rc = CASENET_EINVAL;
    ProtobufCMessage *msg = NULL;
    bool *seen = NULL;
    const char *key;
    json_t *val;

    if (!json_is_object(obj))
        return fail_type(ctx, "an object", obj);
    if (ctx->depth >= PBJSON_MAX_DEPTH)
        return fail(ctx, CASENET_EINVAL, "messages nested deeper than %d levels", PBJSON_MAX_DEPTH);
    ctx->depth++;
    msg = malloc(d->sizeof_message);
    seen = calloc(d->n_fields + 1, sizeof(*seen));
    if (!msg || !seen) {
        rc = fail(ctx, CASENET_ENOMEM, "out of memory");
        free(msg);
        msg = NULL;
        goto cleanup;
    }
    protobuf_c_message_init(d, msg);

    /* json_object_foreach does not modify the object; jansson lacks a const
     * iterator. */
    json_object_foreach((json_t *)obj, key, val)
    {
        const ProtobufCFieldDescriptor *f = find_field(d, key);
        char jn[PBJSON_NAME_MAX];
        size_t saved;
        if (!f) {
            path_push_field(ctx, key);
            rc = fail(ctx, CASENET_EINVAL, "unknown field");
            goto cleanup;
        }
        json_name(f->name, jn);
        saved = path_push_field(ctx, jn);
        if (seen[f - d->fields]) {
            rc =
                fail(ctx, CASENET_EINVAL, "field given more than once (as %s and %s)", jn, f->name);
            goto cleanup;
        }
        seen[f - d->fields] = true;
        if (!json_is_null(val)) {
            rc = parse_field(ctx, msg, f, val);
            if (rc != CASENET_OK)
                goto cleanup;
        }
        path_pop(ctx, saved);
    }
    *out = msg;
    msg = NULL;
    rc = CASENET_OK;

cleanup:
    free(seen);
    protobuf_c_message_free_unpacked(msg, NULL);
    ctx->depth--;
    return rc;
}

int pbjson_from_json(const ProtobufCMessageDescriptor *d, const json_t *in, ProtobufCMessage **out,
                     char *err, size_t errlen)
{
    pbj_ctx ctx = {.err = err, .errlen = err ? errlen : 0};
    ProtobufCMessage *msg = NULL;

    assert(d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC && out);
    if (ctx.errlen > 0)
        err[0] = '\0';
    if (!in)
        return fail(&ctx, CASENET_EINVAL, "no JSON value");
    int rc = parse_message(&ctx, d, in, &msg);
    if (rc != CASENET_OK)
        return rc;
    *out = msg;
    return CASENET_OK;
}

void pbjson_free(ProtobufCMessage *m)
{
    protobuf_c_message_free_unpacked(m, NULL);
}

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
        if (!utf8_valid((const unsigned char *)s, strlen(s)))
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
        size_t es = elem_size(f->type);
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
    if (has_flag(f)) {
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
            json_name(f->name, jn);
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
        json_name(f->name, jn);
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
                json_t *h = human_value(f, arr + k * elem_size(f->type), json_array_get(v, k), &rc);
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
