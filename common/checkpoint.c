/* checkpoint.c - C2SP signed notes and casenet checkpoints (see checkpoint.h
 * and PROTOCOL.md §10.3). */
#include "checkpoint.h"

#include "crypto.h"
#include "hex.h"
#include "keys_impl.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(CASENET_SIGN_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "Ed25519 pk size");
_Static_assert(CASENET_SIGNATURE_BYTES == crypto_sign_BYTES, "Ed25519 signature size");
_Static_assert(CKPT_ROOT_BYTES == crypto_hash_sha256_BYTES, "root is a SHA-256");

/* Base64 lengths (standard alphabet, padded) of what a checkpoint holds. */
#define ROOT_B64_CHARS 44 /* 32 bytes */
#define SIG_BLOB_BYTES (CKPT_KEY_ID_BYTES + CASENET_SIGNATURE_BYTES)
#define SIG_B64_CHARS  92 /* 68 bytes */
#define TIME_PREFIX    "time "
/* U+2014 EM DASH and a space: how every signature line starts. */
static const uint8_t sig_prefix[4] = {0xe2, 0x80, 0x94, 0x20};

/* ------------------------------------------------------------------ small parsers */

/* The value of a standard-alphabet base64 character, or -1. */
static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* When s[0..slen) is canonical standard base64 (RFC 4648 §4: padded to a
 * multiple of 4, no whitespace, the unused low bits of the last character
 * zero), the decoded length; else -1. Exactly one spelling of each byte
 * string passes. */
static long b64_canonical_len(const char *s, size_t slen)
{
    if (slen == 0 || slen % 4 != 0 || slen > CKPT_NOTE_MAX)
        return -1;
    size_t pad = s[slen - 1] == '=' ? (s[slen - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < slen - pad; i++)
        if (b64_val(s[i]) < 0)
            return -1;
    int last = b64_val(s[slen - pad - 1]);
    if ((pad == 2 && (last & 0x0f) != 0) || (pad == 1 && (last & 0x03) != 0))
        return -1;
    return (long)(slen / 4 * 3 - pad);
}

/* Decodes canonical base64 of exactly want bytes into out. */
static bool b64_decode(const char *s, size_t slen, uint8_t *out, size_t want)
{
    size_t n = 0;
    const char *end = NULL;
    long cl = b64_canonical_len(s, slen);
    if (cl < 0 || (size_t)cl != want)
        return false;
    return sodium_base642bin(out, want, s, slen, NULL, &n, &end, sodium_base64_VARIANT_ORIGINAL) ==
               0 &&
           n == want && end == s + slen;
}

/* Canonical decimal: 1..20 digits, no leading zero except "0", <= max. */
static bool parse_dec(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* An origin line or a key name of ours: 1..255 bytes of 0x21..0x7E, no '+'. */
static bool ascii_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > CKPT_ORIGIN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '+')
            return false;
    }
    return true;
}

/* Valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF)
 * and no control character other than '\n' (C0 controls and DEL). */
static bool note_chars_ok(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\n') || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* ------------------------------------------------------------------ notes */

/* One signature line, pointing into the note. */
struct sig_line {
    const char *name;
    size_t name_len;
    const char *b64;
    size_t b64_len;
};

/* Splits a signed note into its text (note[0..*text_len)) and signature
 * lines, checking the generic format (checkpoint.h, ckpt_note_verify). */
static int note_split(const uint8_t *note, size_t len, size_t *text_len, struct sig_line *sigs,
                      size_t cap, size_t *n_sigs)
{
    if (len < 2 || len > CKPT_NOTE_MAX || note[len - 1] != '\n' || !note_chars_ok(note, len))
        return CASENET_EBADREQ;
    /* The text ends at the last blank line: signature lines are never empty. */
    size_t split = len - 1;
    for (;;) {
        if (split == 0)
            return CASENET_EBADREQ;
        split--;
        if (note[split] == '\n' && note[split + 1] == '\n')
            break;
    }
    if (split + 2 >= len)
        return CASENET_EBADREQ; /* no signature line */
    size_t n = 0;
    size_t pos = split + 2;
    while (pos < len) {
        const uint8_t *nl = memchr(note + pos, '\n', len - pos);
        size_t line_end = (size_t)(nl - note); /* a '\n' ends the note */
        const char *line = (const char *)note + pos;
        size_t llen = line_end - pos;
        if (n == cap || llen < sizeof sig_prefix || memcmp(line, sig_prefix, sizeof sig_prefix))
            return CASENET_EBADREQ;
        const char *name = line + sizeof sig_prefix;
        size_t rest = llen - sizeof sig_prefix;
        const char *sp = memchr(name, ' ', rest);
        if (!sp || sp == name)
            return CASENET_EBADREQ;
        size_t name_len = (size_t)(sp - name);
        if (memchr(name, '+', name_len))
            return CASENET_EBADREQ;
        sigs[n].name = name;
        sigs[n].name_len = name_len;
        sigs[n].b64 = sp + 1;
        sigs[n].b64_len = rest - name_len - 1;
        if (sigs[n].b64_len == 0 || memchr(sigs[n].b64, ' ', sigs[n].b64_len))
            return CASENET_EBADREQ;
        n++;
        pos = line_end + 1;
    }
    *text_len = split + 1;
    *n_sigs = n;
    return CASENET_OK;
}

void ckpt_key_id(const char *name, const uint8_t pk[CASENET_SIGN_PK_BYTES],
                 uint8_t out[CKPT_KEY_ID_BYTES])
{
    crypto_hash_sha256_state st;
    uint8_t h[crypto_hash_sha256_BYTES];
    static const uint8_t sep[2] = {0x0a, CKPT_SIG_TYPE_ED25519};
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
    crypto_hash_sha256_update(&st, sep, sizeof sep);
    crypto_hash_sha256_update(&st, pk, CASENET_SIGN_PK_BYTES);
    crypto_hash_sha256_final(&st, h);
    memcpy(out, h, CKPT_KEY_ID_BYTES);
}

/* Checks one signature line against (key_name, pk) over text: CASENET_OK,
 * CASENET_ENOTFOUND when the line is by another key (name or key id differ),
 * CASENET_EBADREQ when its base64 is not canonical, CASENET_EBADSIG when it
 * is by this key but does not verify. */
static int check_sig_line(const struct sig_line *s, const char *key_name,
                          const uint8_t kid[CKPT_KEY_ID_BYTES],
                          const uint8_t pk[CASENET_SIGN_PK_BYTES], const uint8_t *text,
                          size_t text_len)
{
    long blen = b64_canonical_len(s->b64, s->b64_len);
    if (blen < CKPT_KEY_ID_BYTES + 1)
        return CASENET_EBADREQ;
    uint8_t blob[SIG_BLOB_BYTES];
    if (blen != SIG_BLOB_BYTES) {
        /* Not an Ed25519 line: decode just the key id, from the first six
         * characters (36 bits; all data, as the blob has >= 5 bytes). */
        int v[6];
        for (size_t i = 0; i < 6; i++)
            v[i] = b64_val(s->b64[i]);
        uint8_t head[CKPT_KEY_ID_BYTES] = {
            (uint8_t)(v[0] << 2 | v[1] >> 4), (uint8_t)((v[1] & 15) << 4 | v[2] >> 2),
            (uint8_t)((v[2] & 3) << 6 | v[3]), (uint8_t)(v[4] << 2 | v[5] >> 4)};
        bool ours = s->name_len == strlen(key_name) &&
                    memcmp(s->name, key_name, s->name_len) == 0 &&
                    memcmp(head, kid, CKPT_KEY_ID_BYTES) == 0;
        return ours ? CASENET_EBADSIG : CASENET_ENOTFOUND;
    }
    if (!b64_decode(s->b64, s->b64_len, blob, sizeof blob))
        return CASENET_EBADREQ;
    if (s->name_len != strlen(key_name) || memcmp(s->name, key_name, s->name_len) != 0 ||
        memcmp(blob, kid, CKPT_KEY_ID_BYTES) != 0)
        return CASENET_ENOTFOUND;
    return cn_sign_verify(blob + CKPT_KEY_ID_BYTES, text, text_len, pk);
}

int ckpt_note_verify(const uint8_t *note, size_t len, const char *key_name,
                     const uint8_t pk[CASENET_SIGN_PK_BYTES], size_t *text_len)
{
    struct sig_line sigs[CKPT_NOTE_SIGS_MAX];
    size_t tlen, n;
    int rc = note_split(note, len, &tlen, sigs, CKPT_NOTE_SIGS_MAX, &n);
    if (rc != CASENET_OK)
        return rc;
    uint8_t kid[CKPT_KEY_ID_BYTES];
    ckpt_key_id(key_name, pk, kid);
    bool verified = false;
    for (size_t i = 0; i < n; i++) {
        rc = check_sig_line(&sigs[i], key_name, kid, pk, note, tlen);
        if (rc == CASENET_OK)
            verified = true;
        else if (rc != CASENET_ENOTFOUND)
            return rc; /* malformed, or a bad signature by our key: reject */
    }
    if (!verified)
        return CASENET_EBADSIG;
    if (text_len)
        *text_len = tlen;
    return CASENET_OK;
}

int ckpt_vkey_parse(const char *vkey, char name[CKPT_KEY_NAME_MAX + 1],
                    uint8_t pk[CASENET_SIGN_PK_BYTES])
{
    const char *p1 = strchr(vkey, '+');
    if (!p1)
        return CASENET_EBADREQ;
    size_t name_len = (size_t)(p1 - vkey);
    const char *p2 = strchr(p1 + 1, '+');
    if (!ascii_name_ok(vkey, name_len) || name_len > CKPT_KEY_NAME_MAX || !p2 || p2 - p1 != 9)
        return CASENET_EBADREQ;
    /* the key id in lowercase hex only */
    char idhex[2 * CKPT_KEY_ID_BYTES + 1];
    memcpy(idhex, p1 + 1, 2 * CKPT_KEY_ID_BYTES);
    idhex[2 * CKPT_KEY_ID_BYTES] = '\0';
    uint8_t want[CKPT_KEY_ID_BYTES];
    if (strpbrk(idhex, "ABCDEF") || cn_unhex(idhex, want, sizeof want) != CASENET_OK)
        return CASENET_EBADREQ;
    uint8_t key[1 + CASENET_SIGN_PK_BYTES];
    if (!b64_decode(p2 + 1, strnlen(p2 + 1, CKPT_NOTE_MAX + 1), key, sizeof key) ||
        key[0] != CKPT_SIG_TYPE_ED25519)
        return CASENET_EBADREQ;
    char nm[CKPT_KEY_NAME_MAX + 1];
    memcpy(nm, vkey, name_len);
    nm[name_len] = '\0';
    uint8_t kid[CKPT_KEY_ID_BYTES];
    ckpt_key_id(nm, key + 1, kid);
    if (memcmp(kid, want, sizeof kid) != 0)
        return CASENET_EBADREQ;
    memcpy(name, nm, name_len + 1);
    memcpy(pk, key + 1, CASENET_SIGN_PK_BYTES);
    return CASENET_OK;
}

/* ------------------------------------------------------------------ checkpoints */

int ckpt_origin(const char *network, char out[CKPT_ORIGIN_MAX + 1])
{
    out[0] = '\0';
    size_t plen = strlen(CKPT_ORIGIN_PREFIX), nlen = strlen(network);
    if (nlen == 0 || nlen > CKPT_ORIGIN_MAX - plen || !ascii_name_ok(network, nlen))
        return CASENET_EINVAL;
    memcpy(out, CKPT_ORIGIN_PREFIX, plen);
    memcpy(out + plen, network, nlen + 1);
    return CASENET_OK;
}

/* The note text of h ("origin\nsize\nroot\ntime ms\n") into buf[cap];
 * its length, or 0 when h is not representable. */
static size_t head_text(const struct ckpt_head *h, char *buf, size_t cap)
{
    size_t olen = strnlen(h->origin, sizeof h->origin);
    if (olen == sizeof h->origin || !ascii_name_ok(h->origin, olen) || h->time_ms < 0)
        return 0;
    char root[ROOT_B64_CHARS + 1];
    sodium_bin2base64(root, sizeof root, h->root, CKPT_ROOT_BYTES, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(buf, cap, "%s\n%llu\n%s\n" TIME_PREFIX "%lld\n", h->origin,
                     (unsigned long long)h->size, root, (long long)h->time_ms);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

int ckpt_sign(const casenet_keys *k, const struct ckpt_head *h, casenet_buf *out)
{
    const char *name = casenet_keys_member_id(k);
    const uint8_t *pk = casenet_keys_sign_pk(k, NULL);
    const uint8_t *sk = cn_keys_sign_sk(k, NULL);
    char text[CKPT_MAX_BYTES];
    size_t tlen = head_text(h, text, sizeof text);
    size_t name_len = strlen(name);
    if (tlen == 0 || !ascii_name_ok(name, name_len) || name_len > CKPT_KEY_NAME_MAX)
        return CASENET_EINVAL;
    uint8_t blob[SIG_BLOB_BYTES];
    ckpt_key_id(name, pk, blob);
    cn_sign(blob + CKPT_KEY_ID_BYTES, (const uint8_t *)text, tlen, sk);
    char sig[SIG_B64_CHARS + 1];
    sodium_bin2base64(sig, sizeof sig, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    size_t total = tlen + 1 + sizeof sig_prefix + name_len + 1 + SIG_B64_CHARS + 1;
    uint8_t *buf = malloc(total);
    if (!buf)
        return CASENET_ENOMEM;
    uint8_t *p = buf;
    memcpy(p, text, tlen), p += tlen;
    *p++ = '\n';
    memcpy(p, sig_prefix, sizeof sig_prefix), p += sizeof sig_prefix;
    memcpy(p, name, name_len), p += name_len;
    *p++ = ' ';
    memcpy(p, sig, SIG_B64_CHARS), p += SIG_B64_CHARS;
    *p++ = '\n';
    out->data = buf;
    out->len = total;
    return CASENET_OK;
}

/* The strict checkpoint format; on success *sig is the one signature line
 * and *text_len the signed text's length. */
static int parse_strict(const uint8_t *buf, size_t len, struct ckpt_head *h, struct sig_line *sig,
                        size_t *text_len)
{
    if (len > CKPT_MAX_BYTES)
        return CASENET_EBADREQ;
    struct sig_line sigs[2];
    size_t tlen, n;
    int rc = note_split(buf, len, &tlen, sigs, 2, &n);
    if (rc != CASENET_OK)
        return rc;
    if (n != 1 || sigs[0].b64_len != SIG_B64_CHARS || sigs[0].name_len > CKPT_KEY_NAME_MAX ||
        !ascii_name_ok(sigs[0].name, sigs[0].name_len))
        return CASENET_EBADREQ;
    uint8_t blob[SIG_BLOB_BYTES];
    if (!b64_decode(sigs[0].b64, sigs[0].b64_len, blob, sizeof blob))
        return CASENET_EBADREQ;

    /* Exactly four lines of text. */
    const char *line[4];
    size_t llen[4];
    const char *p = (const char *)buf, *end = (const char *)buf + tlen;
    for (size_t i = 0; i < 4; i++) {
        const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (!nl)
            return CASENET_EBADREQ;
        line[i] = p;
        llen[i] = (size_t)(nl - p);
        p = nl + 1;
    }
    if (p != end)
        return CASENET_EBADREQ;

    struct ckpt_head out;
    memset(&out, 0, sizeof out);
    if (!ascii_name_ok(line[0], llen[0]))
        return CASENET_EBADREQ;
    memcpy(out.origin, line[0], llen[0]);
    if (!parse_dec(line[1], llen[1], UINT64_MAX, &out.size))
        return CASENET_EBADREQ;
    if (llen[2] != ROOT_B64_CHARS || !b64_decode(line[2], llen[2], out.root, CKPT_ROOT_BYTES))
        return CASENET_EBADREQ;
    size_t tp = strlen(TIME_PREFIX);
    uint64_t t;
    if (llen[3] <= tp || memcmp(line[3], TIME_PREFIX, tp) != 0 ||
        !parse_dec(line[3] + tp, llen[3] - tp, INT64_MAX, &t))
        return CASENET_EBADREQ;
    out.time_ms = (int64_t)t;
    *h = out;
    *sig = sigs[0];
    *text_len = tlen;
    return CASENET_OK;
}

int ckpt_parse(const uint8_t *buf, size_t len, struct ckpt_head *out)
{
    struct sig_line sig;
    size_t tlen;
    return parse_strict(buf, len, out, &sig, &tlen);
}

int ckpt_verify(const uint8_t *buf, size_t len, const char *key_name,
                const uint8_t pk[CASENET_SIGN_PK_BYTES], const char *origin, struct ckpt_head *out)
{
    struct ckpt_head h;
    struct sig_line sig;
    size_t tlen;
    int rc = parse_strict(buf, len, &h, &sig, &tlen);
    if (rc != CASENET_OK)
        return rc;
    if (origin && strcmp(origin, h.origin) != 0)
        return CASENET_EBADREQ;
    uint8_t kid[CKPT_KEY_ID_BYTES];
    ckpt_key_id(key_name, pk, kid);
    rc = check_sig_line(&sig, key_name, kid, pk, buf, tlen);
    if (rc == CASENET_ENOTFOUND)
        rc = CASENET_EBADSIG; /* signed by someone else */
    if (rc != CASENET_OK)
        return rc;
    *out = h;
    return CASENET_OK;
}
