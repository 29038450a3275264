/* fuzz_attach.c - libFuzzer harness: the attachment manifest decoder
 * (casenet_payload_attachments, with and without a header's blob ids) and
 * the chunk decoder (cn_attach_chunk_open) on outside bytes.
 *
 * The input is read whole as a serialised Payload. Its bytes after the
 * first (at most 255) are also decrypted as the first chunk of a fixed
 * three-chunk manifest, which must refuse them; and a chunk sealed here is
 * flipped at the byte the first input byte names and must be refused. */
#include "attach_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_attach: %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void manifests(const uint8_t *data, size_t size)
{
    casenet_attachment *a = NULL;
    size_t n = 0;
    int rc = casenet_payload_attachments(data, size, NULL, &a, &n);
    CHECK(rc == CASENET_OK || (a == NULL && n == 0));
    for (size_t i = 0; i < n; i++) {
        CHECK(a[i].file_name[0] && a[i].file_name[0] != '.' && !strchr(a[i].file_name, '/'));
        CHECK(a[i].chunk_count >= 1 && a[i].chunk_size == CASENET_ATTACH_CHUNK_BYTES);
    }
    /* The same manifests against a header listing their blob ids: must agree. */
    if (rc == CASENET_OK && n) {
        casenet_message_info info = {0};
        uint8_t(*ids)[CASENET_BLOB_ID_BYTES] = malloc(n * sizeof *ids);
        CHECK(ids);
        for (size_t i = 0; i < n; i++)
            memcpy(ids[i], a[i].blob_id, CASENET_BLOB_ID_BYTES);
        info.blob_ids = ids;
        info.n_blob_ids = n;
        casenet_attachment *b = NULL;
        size_t m = 0;
        CHECK(casenet_payload_attachments(data, size, &info, &b, &m) == CASENET_OK && m == n);
        for (size_t i = 0; i < m; i++)
            casenet_attachment_clear(&b[i]);
        free(b);
        free(ids);
    }
    for (size_t i = 0; i < n; i++)
        casenet_attachment_clear(&a[i]);
    free(a);
}

static void chunks(const uint8_t *data, size_t size)
{
    casenet_attachment a = {.chunk_size = CASENET_ATTACH_CHUNK_BYTES};
    memset(a.key, 0x42, sizeof a.key);
    memset(a.stream_header, 0x24, sizeof a.stream_header);
    a.chunk_count = 3;
    a.size = 2ull * CASENET_ATTACH_CHUNK_BYTES + 1;
    crypto_secretstream_xchacha20poly1305_state st;
    CHECK(cn_attach_stream(&a, &st) == CASENET_OK);
    uint8_t *pt = malloc(a.chunk_size);
    CHECK(pt);
    if (size > 1) {
        /* A forged first chunk never authenticates (but with 2^-128 odds). */
        size_t len = size - 1 < 255 ? size - 1 : 255, mlen = 0;
        CHECK(cn_attach_chunk_open(&st, &a, 0, data + 1, len, pt, &mlen) != CASENET_OK);
    }
    /* A real last chunk of a one-chunk stream, flipped at data[0]. */
    a.chunk_count = 1;
    a.size = 8;
    uint8_t ct[8 + CASENET_ATTACH_ABYTES];
    unsigned long long clen = 0;
    CHECK(cn_attach_stream(&a, &st) == CASENET_OK);
    crypto_secretstream_xchacha20poly1305_push(&st, ct, &clen, (const uint8_t *)"evidence", 8, NULL,
                                               0, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    size_t mlen = 0;
    CHECK(cn_attach_stream(&a, &st) == CASENET_OK);
    CHECK(cn_attach_chunk_open(&st, &a, 0, ct, (size_t)clen, pt, &mlen) == CASENET_OK && mlen == 8);
    ct[size ? data[0] % clen : 0] ^= 1;
    CHECK(cn_attach_stream(&a, &st) == CASENET_OK);
    CHECK(cn_attach_chunk_open(&st, &a, 0, ct, (size_t)clen, pt, &mlen) == CASENET_ECRYPTO);
    free(pt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    manifests(data, size);
    chunks(data, size);
    return 0;
}
