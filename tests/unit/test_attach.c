/* test_attach.c - the attachment construction (PROTOCOL.md §4.9): the worked
 * example recomputed from its fixed inputs with libsodium's secretstream as
 * the section describes it, opened by the library's chunk decoder, its
 * manifest packed and parsed by the library, and every value found in
 * PROTOCOL.md (CASENET_PRINT_EXAMPLE=1 prints them). Also the manifest
 * checks: names, sizes, chunk counts, blob ids against the header. */
#include "attach_impl.h"
#include "casenet.pb-c.h"
#include "testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EX_FILL  (1024u * 1024u) /* bytes of 'A' in the first chunk */
#define EX_TAIL  "Example only.\n"
#define EX_TAILN (sizeof EX_TAIL - 1)

static void seq(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(start + i);
}

static char *hex_of(const uint8_t *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    tl_hex(p, n, s);
    return s;
}

/* A value the document must show: up to 64 digits anywhere; longer ones as
 * an indented block (4 spaces and hex only, lines joined). */
static bool doc_shows(const char *doc, const char *hex)
{
    if (strlen(hex) <= 64)
        return strstr(doc, hex) != NULL;
    char *block = malloc(strlen(doc) + 1);
    size_t bl = 0;
    bool found = false;
    for (const char *line = doc; *line && !found;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > 4 && strncmp(line, "    ", 4) == 0 &&
            strspn(line + 4, "0123456789abcdef") == len - 4) {
            memcpy(block + bl, line + 4, len - 4);
            bl += len - 4;
        } else if (bl) {
            block[bl] = '\0';
            found = strcmp(block, hex) == 0;
            bl = 0;
        }
        line = eol ? eol + 1 : line + len;
    }
    free(block);
    return found;
}

static void test_worked_example(void **state)
{
    (void)state;
    casenet_attachment a = {0};
    seq(a.key, sizeof a.key, 0x00);
    seq(a.stream_header, sizeof a.stream_header, 0x20);
    seq(a.blob_id, sizeof a.blob_id, 0xa0);
    strcpy(a.file_name, "chat.txt");
    strcpy(a.media_type, "text/plain");
    a.size = EX_FILL + EX_TAILN;
    a.chunk_size = CASENET_ATTACH_CHUNK_BYTES;
    a.chunk_count = 2;
    uint8_t *plain = malloc(a.size);
    memset(plain, 'A', EX_FILL);
    memcpy(plain + EX_FILL, EX_TAIL, EX_TAILN);
    crypto_hash_sha256(a.sha256, plain, a.size);

    /* The stream: init_push's state for this header is init_pull's. */
    crypto_secretstream_xchacha20poly1305_state st;
    assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(&st, a.stream_header, a.key),
                     0);
    uint8_t *c0 = malloc(EX_FILL + CASENET_ATTACH_ABYTES), c1[EX_TAILN + CASENET_ATTACH_ABYTES];
    unsigned long long l0 = 0, l1 = 0;
    crypto_secretstream_xchacha20poly1305_push(&st, c0, &l0, plain, EX_FILL, NULL, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    crypto_secretstream_xchacha20poly1305_push(&st, c1, &l1, plain + EX_FILL, EX_TAILN, NULL, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    assert_int_equal(l0, EX_FILL + 17);
    assert_int_equal(l1, EX_TAILN + 17);
    uint8_t h0[32], blob[32];
    crypto_hash_sha256(h0, c0, l0);
    crypto_hash_sha256_state hs;
    crypto_hash_sha256_init(&hs);
    crypto_hash_sha256_update(&hs, c0, l0);
    crypto_hash_sha256_update(&hs, c1, l1);
    crypto_hash_sha256_final(&hs, blob);

    /* The library opens both chunks, in order only. */
    uint8_t *pt = malloc(a.chunk_size);
    size_t m = 0;
    CN_OK(cn_attach_stream(&a, &st));
    CN_ERR(cn_attach_chunk_open(&st, &a, 0, c1, l1, pt, &m), CASENET_ECRYPTO);
    CN_OK(cn_attach_stream(&a, &st));
    CN_OK(cn_attach_chunk_open(&st, &a, 0, c0, l0, pt, &m));
    assert_int_equal(m, EX_FILL);
    CN_OK(cn_attach_chunk_open(&st, &a, 1, c1, l1, pt, &m));
    assert_int_equal(m, EX_TAILN);
    assert_memory_equal(pt, EX_TAIL, EX_TAILN);
    /* The FINAL chunk first, as if the stream were truncated to one. */
    CN_OK(cn_attach_stream(&a, &st));
    CN_ERR(cn_attach_chunk_open(&st, &a, 0, c0, l0 - 1, pt, &m), CASENET_ECRYPTO);

    /* The manifest in a payload that carries nothing else. */
    casenet_buf manifest = {0};
    CN_OK(casenet_payload_add_attachments((const uint8_t *)"", 0, &a, 1, &manifest));
    casenet_attachment *back = NULL;
    size_t n = 0;
    CN_OK(casenet_payload_attachments(manifest.data, manifest.len, NULL, &back, &n));
    assert_int_equal(n, 1);
    assert_memory_equal(&back[0], &a, sizeof a);
    casenet_attachment_clear(&back[0]);
    free(back);

    struct {
        const char *label;
        char *hex;
    } ex[] = {
        {"plaintext SHA-256", hex_of(a.sha256, 32)},
        {"chunk 0 SHA-256", hex_of(h0, 32)},
        {"chunk 0 first 16 bytes", hex_of(c0, 16)},
        {"chunk 1", hex_of(c1, l1)},
        {"blob SHA-256", hex_of(blob, 32)},
        {"manifest payload", hex_of(manifest.data, manifest.len)},
    };
    size_t n_ex = sizeof ex / sizeof ex[0];
    bool print = getenv("CASENET_PRINT_EXAMPLE") != NULL;
    const char *src = getenv("CASENET_SOURCE_DIR");
    assert_non_null(src);
    char *path = tl_path(src, "proto/PROTOCOL.md");
    size_t dlen = 0;
    char *doc = (char *)tl_read_file(path, &dlen);
    for (size_t i = 0; i < n_ex; i++) {
        if (print)
            printf("%s (%zu bytes):\n%s\n", ex[i].label, strlen(ex[i].hex) / 2, ex[i].hex);
        else if (!doc_shows(doc, ex[i].hex))
            fail_msg("PROTOCOL.md §4.9 lacks the worked example's %s", ex[i].label);
        free(ex[i].hex);
    }
    free(doc);
    free(path);
    casenet_buf_free(&manifest);
    free(pt);
    free(c0);
    free(plain);
    casenet_attachment_clear(&a);
}

/* One manifest with fields set by the caller, packed in a payload. */
static casenet_buf pack_one(const Casenet__V1__Attachment *m)
{
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    Casenet__V1__Attachment *list[1] = {(Casenet__V1__Attachment *)m};
    p.attachments = list;
    p.n_attachments = 1;
    casenet_buf b = {malloc(casenet__v1__payload__get_packed_size(&p) + 1), 0};
    b.len = casenet__v1__payload__pack(&p, b.data);
    return b;
}

static void test_manifest_checks(void **state)
{
    (void)state;
    uint8_t k[32] = {1}, hd[24] = {2}, sh[32] = {3}, id[16] = {4};
    Casenet__V1__Attachment good = CASENET__V1__ATTACHMENT__INIT;
    good.file_name = "report.pdf";
    good.media_type = "application/pdf";
    good.size = CASENET_ATTACH_CHUNK_BYTES + 1;
    good.sha256 = (ProtobufCBinaryData){32, sh};
    good.key = (ProtobufCBinaryData){32, k};
    good.stream_header = (ProtobufCBinaryData){24, hd};
    good.chunk_size = CASENET_ATTACH_CHUNK_BYTES;
    good.chunk_count = 2;
    good.blob_id = (ProtobufCBinaryData){16, id};
    casenet_attachment *a = NULL;
    size_t n = 0;
    casenet_buf b = pack_one(&good);
    CN_OK(casenet_payload_attachments(b.data, b.len, NULL, &a, &n));
    assert_int_equal(n, 1);
    casenet_attachment_clear(a);
    free(a);
    casenet_buf_free(&b);

    static const char *const bad_names[] = {"", ".hidden", "../x", "a/b", "tab\there", ".."};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        Casenet__V1__Attachment m = good;
        m.file_name = (char *)bad_names[i];
        b = pack_one(&m);
        CN_ERR(casenet_payload_attachments(b.data, b.len, NULL, &a, &n), CASENET_EBADREQ);
        casenet_buf_free(&b);
    }
    Casenet__V1__Attachment m = good;
    m.chunk_count = 3; /* does not match size */
    b = pack_one(&m);
    CN_ERR(casenet_payload_attachments(b.data, b.len, NULL, &a, &n), CASENET_EBADREQ);
    casenet_buf_free(&b);
    m = good;
    m.chunk_size = 4096; /* only 1 MiB chunks */
    b = pack_one(&m);
    CN_ERR(casenet_payload_attachments(b.data, b.len, NULL, &a, &n), CASENET_EBADREQ);
    casenet_buf_free(&b);
    m = good;
    m.key.len = 31;
    b = pack_one(&m);
    CN_ERR(casenet_payload_attachments(b.data, b.len, NULL, &a, &n), CASENET_EBADREQ);
    casenet_buf_free(&b);

    /* Against a header: its blob ids exactly. */
    b = pack_one(&good);
    uint8_t other[1][16] = {{5}};
    casenet_message_info info = {.n_blob_ids = 1, .blob_ids = other};
    CN_ERR(casenet_payload_attachments(b.data, b.len, &info, &a, &n), CASENET_EBADREQ);
    memcpy(other[0], id, 16);
    CN_OK(casenet_payload_attachments(b.data, b.len, &info, &a, &n));
    casenet_attachment_clear(a);
    free(a);
    info.n_blob_ids = 0;
    CN_ERR(casenet_payload_attachments(b.data, b.len, &info, &a, &n), CASENET_EBADREQ);
    casenet_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_manifest_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
