/* pbjson.c - protobuf-c message <-> canonical proto3 JSON, driven by descriptors:
 * the shared helpers and JSON -> message (message -> JSON: pbjson_emit.c). */
#include "pbjson.h"
#include "pbjson_impl.h"
#include "text.h"

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
#define PBJSON_EXACT_MAX 9007199254740992.0 /* 2^53: larger reals are not exact */

/* ------------------------------------------------------------------ shared */

/* Writes the lowerCamelCase JSON name of a snake_case proto field name, as
 * protoc's ToJsonName does: underscores dropped, the letter after one
 * upper-cased. Descriptors are our own generated code: a name that does not
 * fit is a bug. */
void pbj_json_name(const char *proto, char out[static PBJSON_NAME_MAX])
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
    pbj_json_name(f->name, jn);
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
size_t pbj_elem_size(ProtobufCType t)
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
bool pbj_has_flag(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
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
    if (!cn_utf8_valid(s, len))
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
    size_t es = pbj_elem_size(f->type);
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
            pbj_json_name(other ? other->name : "?", jn);
            return fail(ctx, CASENET_EINVAL, "only one member of a oneof may be set, %s is set too",
                        jn);
        }
        rc = parse_value(ctx, f, val, member);
        if (rc == CASENET_OK)
            *which = f->id;
        return rc;
    }
    rc = parse_value(ctx, f, val, member);
    if (rc == CASENET_OK && pbj_has_flag(f))
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
        pbj_json_name(f->name, jn);
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
