/* text.c - UTF-8 and control-character checks, protobuf string fields and
 * terminal escaping (see text.h). */
#include "text.h"

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the UTF-8 character at s[0..len) (1 to 4), its code point in
 * *cp; 0 when the bytes are not valid UTF-8. */
static size_t utf8_char(const uint8_t *s, size_t len, uint32_t *cp)
{
    uint8_t b = s[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        n = 2;
        *cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        *cp = b & 0x0f;
        lo = b == 0xe0 ? 0xa0 : 0x80; /* no overlong form */
        hi = b == 0xed ? 0x9f : 0xbf; /* no surrogate */
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        *cp = b & 0x07;
        lo = b == 0xf0 ? 0x90 : 0x80; /* no overlong form */
        hi = b == 0xf4 ? 0x8f : 0xbf; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    return n;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

bool cn_utf8_valid(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(p + i, len - i, &cp);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

bool cn_text_valid(const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t len = strlen(s);
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(p + i, len - i, &cp);
        if (!n || is_control(cp))
            return false;
        i += n;
    }
    return true;
}

/* Whether the field's value (a string or a message) passes. */
static bool value_valid(const ProtobufCFieldDescriptor *f, const void *value)
{
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = value;
        return !s || cn_utf8_valid(s, strlen(s));
    }
    return !value || cn_pb_strings_valid(value);
}

bool cn_pb_strings_valid(const struct ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const uint8_t *base = (const uint8_t *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            void *const *items = *(void *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (!value_valid(f, items[j]))
                    return false;
        } else if (!value_valid(f, *(const void *const *)(base + f->offset))) {
            return false;
        }
    }
    return true;
}

int cn_json_escape_controls(const char *in, size_t len, casenet_buf *out)
{
    const uint8_t *p = (const uint8_t *)in;
    size_t need = 0;
    for (size_t i = 0; i < len; i++) /* at most 6 bytes per input byte */
        need += (p[i] == 0x7f || (p[i] == 0xc2 && i + 1 < len && p[i + 1] <= 0x9f)) ? 6 : 1;
    char *o = malloc(need + 1);
    if (!o)
        return CASENET_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        /* 0xc2 0x80..0x9f is U+0080..U+009F; 0x7f is DEL. Neither occurs in
         * JSON text outside a string, and in valid UTF-8 0xc2 always starts
         * a character, so this never splits one. */
        if (p[i] == 0x7f || (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)) {
            unsigned cp = p[i] == 0x7f ? 0x7f : p[++i];
            snprintf(o + n, 7, "\\u%04x", cp);
            n += 6;
        } else {
            o[n++] = (char)p[i];
        }
    }
    o[n] = '\0';
    out->data = (uint8_t *)o;
    out->len = n;
    return CASENET_OK;
}

char *cn_text_escape(const char *s, char *out, size_t cap)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t len = strlen(s), o = 0;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(p + i, len - i, &cp);
        bool raw = n && !is_control(cp);
        size_t need = raw ? n : 4 * (n ? n : 1);
        if (o + need + 4 > cap) { /* room for "..." and the NUL */
            memcpy(out + o, "...", 4);
            return out;
        }
        if (raw) {
            memcpy(out + o, p + i, n);
            o += n;
        } else {
            for (size_t k = 0; k < (n ? n : 1); k++) {
                snprintf(out + o, 5, "\\x%02x", p[i + k]);
                o += 4;
            }
        }
        i += n ? n : 1;
    }
    out[o] = '\0';
    return out;
}
