/* hashbank_digest.c - md5, sha1 (RFC 1321, RFC 3174) and sha256 (libsodium)
 * of a file, as the hash lists of other hotlines carry them. MD5 and SHA-1
 * are broken for collisions and used here only to match the lists that
 * still use them, never to sign or to protect anything; the project takes
 * no second crypto library for two legacy digests. */
#include "hashbank_digest.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

struct md {
    uint32_t h[5];
    uint64_t len;
    uint8_t buf[64];
    size_t used;
    bool sha1;
};

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const int md5_r[16] = {7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21};

static void md5_block(uint32_t h[4], const uint8_t *p)
{
    uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16)
            f = (b & c) | (~b & d), g = i;
        else if (i < 32)
            f = (d & b) | (~d & c), g = (5 * i + 1) % 16;
        else if (i < 48)
            f = b ^ c ^ d, g = (3 * i + 5) % 16;
        else
            f = c ^ (b | ~d), g = (7 * i) % 16;
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rol(a + f + md5_k[i] + w[g], md5_r[(i / 16) * 4 + i % 4]);
        a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d;
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & c) | (~b & d), k = 0x5a827999;
        else if (i < 40)
            f = b ^ c ^ d, k = 0x6ed9eba1;
        else if (i < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
        else
            f = b ^ c ^ d, k = 0xca62c1d6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

static void md_init(struct md *m, bool sha1)
{
    static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memset(m, 0, sizeof *m);
    memcpy(m->h, iv, sizeof iv);
    m->sha1 = sha1;
}

static void md_block(struct md *m, const uint8_t *p)
{
    if (m->sha1)
        sha1_block(m->h, p);
    else
        md5_block(m->h, p);
}

static void md_update(struct md *m, const uint8_t *p, size_t n)
{
    m->len += n;
    while (n) {
        size_t take = 64 - m->used < n ? 64 - m->used : n;
        memcpy(m->buf + m->used, p, take);
        m->used += take, p += take, n -= take;
        if (m->used == 64) {
            md_block(m, m->buf);
            m->used = 0;
        }
    }
}

/* Pads and writes the digest (16 or 20 bytes) into out. */
static void md_final(struct md *m, uint8_t *out)
{
    uint64_t bits = m->len * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (m->used < 56 ? 56 : 120) - m->used;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)(bits >> (m->sha1 ? 56 - 8 * i : 8 * i));
    md_update(m, pad, padlen);
    md_update(m, len8, 8);
    for (int i = 0; i < (m->sha1 ? 5 : 4); i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(m->h[i] >> (m->sha1 ? 24 - 8 * j : 8 * j));
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int hashbank_digest_file(const char *path, struct hashbank_digests *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return CASENET_EIO;
    struct md md5, sha1;
    crypto_hash_sha256_state sha256;
    md_init(&md5, false);
    md_init(&sha1, true);
    crypto_hash_sha256_init(&sha256);
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        md_update(&md5, buf, n);
        md_update(&sha1, buf, n);
        crypto_hash_sha256_update(&sha256, buf, n);
    }
    int rc = ferror(f) ? CASENET_EIO : CASENET_OK;
    fclose(f);
    uint8_t out[32];
    md_final(&md5, out);
    hex(out, 16, d->md5);
    md_final(&sha1, out);
    hex(out, 20, d->sha1);
    crypto_hash_sha256_final(&sha256, out);
    hex(out, 32, d->sha256);
    return rc;
}
