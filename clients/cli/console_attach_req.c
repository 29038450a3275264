/* console_attach_req.c - what a browser sends the console about
 * attachments, apart from the server so that a fuzzer can drive it: the
 * upload bodies, the upload ids of a send, and the safe name and
 * Content-Disposition of a download (console_attach.h). */
#include "console_attach.h"

#include "cli.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the UTF-8 character at s (at most n bytes), 0 when not UTF-8
 * (overlong, surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t k = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (k == 0 || s[0] > 0xf4 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return k;
}

/* True for the k-byte UTF-8 character at s that would make a name shown or
 * saved lie about itself: C1 controls, bidirectional marks, embeddings,
 * overrides and isolates (U+202E turns "cv<RLO>fdp.exe" into "cvexe.pdf"),
 * line and paragraph separators. */
static bool deceptive(const unsigned char *s, size_t k)
{
    unsigned cp = k == 2   ? (s[0] & 0x1fu) << 6 | (s[1] & 0x3fu)
                  : k == 3 ? (s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu)
                           : 0;
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void console_attach_name(const char *name, char out[CASENET_ATTACH_NAME_MAX + 1])
{
    const unsigned char *s = (const unsigned char *)name;
    size_t n = strlen(name), o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(s + i, n - i);
        if (o + (k ? k : 1) > CASENET_ATTACH_NAME_MAX)
            break;
        if (k == 1 && (s[i] < 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '\\'))
            out[o++] = '_';
        else if (k == 0 || deceptive(s + i, k))
            out[o++] = '_';
        else
            for (size_t j = 0; j < k; j++)
                out[o++] = (char)s[i + j];
        i += k ? k : 1;
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, CASENET_ATTACH_NAME_MAX + 1, "attachment");
    else if (out[0] == '.')
        out[0] = '_';
}

bool console_parse_upload_new(const char *body, size_t len, char name[CASENET_ATTACH_NAME_MAX + 1],
                              uint64_t *size, struct console_resp *err)
{
    json_t *in = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *nm = NULL;
    json_int_t sz = -1;
    bool ok = in && json_unpack(in, "{s:s, s:I}", "name", &nm, "size", &sz) == 0 && sz >= 0;
    if (ok)
        console_attach_name(nm, name);
    json_decref(in);
    if (!ok) {
        console_error(err, 400, "BAD_REQUEST", "send {\"name\": file name, \"size\": bytes}",
                      "name");
        return false;
    }
    if ((uint64_t)sz > CONSOLE_UPLOAD_MAX) {
        console_error(err, 413, "TOO_LARGE",
                      "the file is larger than 256 MiB: split it, or send it with 'casenet send "
                      "--attach' if the broker allows more",
                      "size");
        return false;
    }
    *size = (uint64_t)sz;
    return true;
}

bool console_parse_upload_chunk(const char *body, size_t len, uint64_t *offset, uint8_t **data,
                                size_t *n, struct console_resp *err)
{
    *data = NULL;
    *n = 0;
    json_t *in = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *b64 = NULL;
    json_int_t off = -1;
    const char *bad = "send {\"offset\": bytes received so far, \"data\": base64}",
               *field = "offset";
    size_t blen = 0;
    if (in && json_unpack(in, "{s:I, s:s%}", "offset", &off, "data", &b64, &blen) == 0 &&
        off >= 0 && (uint64_t)off <= CONSOLE_UPLOAD_MAX) {
        field = "data";
        uint8_t *buf = blen ? malloc(blen) : NULL;
        size_t got = 0;
        if (blen == 0) {
            bad = NULL;
        } else if (buf &&
                   sodium_base642bin(buf, blen, b64, blen, NULL, &got, NULL,
                                     sodium_base64_VARIANT_ORIGINAL) == 0 &&
                   got <= CONSOLE_UPLOAD_CHUNK) {
            bad = NULL;
            *data = got ? buf : NULL;
            *n = got;
            if (!got)
                free(buf);
        } else {
            free(buf);
            bad = "data is base64 of at most 524288 bytes";
        }
        *offset = (uint64_t)off;
    }
    json_decref(in);
    if (bad) {
        console_error(err, 400, "BAD_REQUEST", bad, field);
        return false;
    }
    return true;
}

bool console_parse_attach_ids(const char *body, size_t len, uint8_t ids[CASENET_MAX_BLOBS][16],
                              size_t *n, struct console_resp *err)
{
    *n = 0;
    json_t *in = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *arr = in ? json_object_get(in, "attachments") : NULL;
    bool ok = !arr || (json_is_array(arr) && json_array_size(arr) <= CASENET_MAX_BLOBS);
    for (size_t i = 0; ok && arr && i < json_array_size(arr); i++) {
        const char *h = json_string_value(json_array_get(arr, i));
        ok = h && cli_parse_id16(h, ids[*n]);
        for (size_t j = 0; ok && j < *n; j++)
            ok = memcmp(ids[j], ids[*n], 16) != 0;
        if (ok)
            (*n)++;
    }
    json_decref(in);
    if (!ok) {
        *n = 0;
        console_error(err, 400, "BAD_REQUEST",
                      "attachments is a list of at most 64 distinct upload ids (32 hex digits)",
                      "attachments");
    }
    return ok;
}

/* RFC 5987 attr-char: ALPHA / DIGIT / "!" "#" "$" "&" "+" "-" "." "^" "_"
 * "`" "|" "~" */
static bool attr_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$&+-.^_`|~", ch));
}

void console_disposition(const char *name, char out[CONSOLE_DISPOSITION_MAX])
{
    char safe[CASENET_ATTACH_NAME_MAX + 1];
    console_attach_name(name, safe);
    size_t o = (size_t)snprintf(out, CONSOLE_DISPOSITION_MAX, "attachment; filename=\"");
    const unsigned char *s = (const unsigned char *)safe;
    for (size_t i = 0; s[i];) {
        if (s[i] >= 0x80) {
            out[o++] = '_'; /* one per character */
            i += utf8_len(s + i, strlen(safe + i));
            continue;
        }
        if (s[i] == '"' || s[i] == '\\')
            out[o++] = '\\';
        out[o++] = (char)s[i++];
    }
    o += (size_t)snprintf(out + o, CONSOLE_DISPOSITION_MAX - o, "\"; filename*=UTF-8''");
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; s[i]; i++) {
        if (attr_char(s[i])) {
            out[o++] = (char)s[i];
        } else {
            out[o++] = '%';
            out[o++] = hex[s[i] >> 4];
            out[o++] = hex[s[i] & 15];
        }
    }
    out[o] = '\0';
}
