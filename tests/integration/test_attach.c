/* test_attach.c - attachments through a real casenetd on loopback (issue
 * 18): an upload interrupted after some chunks, and a broker crash, resume
 * without re-sending them (BlobStatus) and a Submit naming the blob is refused until it is
 * complete; the recipient's copy is identical; a non-recipient cannot see
 * the blob, nor reference another member's; chunks are idempotent but never
 * replaced; a chunk duplicated, swapped or dropped at the broker is
 * detected and nothing is kept; a manifest that disagrees with the header
 * is refused; while a member's chunk is being written (slowly: the broker's
 * write gate, a test hook), another member's Submits are answered, and the
 * chunks are answered once written, each once. */
#include "network.h"
#include "testlib.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOTLINE "vn.hotline111"
#define POLICE  "vn.police.a05"
#define MOLISA  "vn.molisa"
#define CHUNKS  6
#define SIZE    (5u * 1024u * 1024u + 12345u) /* 6 chunks, the last short */

static const char *const members[] = {
    HOTLINE ":intake",
    POLICE ":responder:police",
    MOLISA ":responder",
};

/* The broker's chunk writes wait while this file exists (blob_io.h). */
static char *gate_dir, *gate;

struct fx {
    tn_network *tn;
    char *dir;  /* scratch: the evidence file and the download directories */
    char *file; /* dir/evidence.bin */
    uint8_t *data;
    tn_conn *conns[2]; /* closed by teardown: a failed test leaves none open */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->tn = tn_new(members, 3);
    tn_start(f->tn);
    f->dir = tl_tmpdir();
    f->file = tl_path(f->dir, "evidence.bin");
    f->data = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        f->data[i] = (uint8_t)(i * 31 + i / 4096);
    tl_write_file(f->file, f->data, SIZE, 0600);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < 2; i++)
        if (f->conns[i])
            tn_close(f->conns[i]);
    (void)unlink(gate);
    assert_int_equal(tn_stop(f->tn), 0);
    tn_free(f->tn);
    tl_rmrf(f->dir);
    free(f->dir);
    free(f->file);
    free(f->data);
    free(f);
    return 0;
}

static casenet_client *connect_as(tn_network *tn, const char *id)
{
    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = 20000};
    casenet_client *c = NULL;
    CN_OK(casenet_client_connect(tn_keys(tn, id), tn->net->dir, &o, &c));
    return c;
}

/* A referral from `from` to `to` carrying a's manifest and blob id. */
static casenet_buf seal_with(tn_network *tn, const char *from, const char *to,
                             const casenet_attachment *a)
{
    casenet_buf plain = tl_referral_payload("evidence attached"), payload = {0}, env = {0};
    CN_OK(casenet_payload_add_attachments(plain.data, plain.len, a, 1, &payload));
    const uint8_t(*ids)[CASENET_BLOB_ID_BYTES] = &a->blob_id;
    casenet_seal_opts o = {
        .kind = CASENET_KIND_REFERRAL, .to = &to, .n_to = 1, .blob_ids = ids, .n_blob_ids = 1};
    CN_OK(casenet_seal(tn_keys(tn, from), tn->net->dir, &o, payload.data, payload.len, &env, NULL));
    casenet_buf_free(&plain);
    casenet_buf_free(&payload);
    return env;
}

/* Opens env as POLICE and returns its single attachment. */
static void open_attachment(tn_network *tn, const casenet_buf *env, casenet_attachment *out)
{
    casenet_message_info info = {0};
    casenet_buf payload = {0};
    casenet_attachment *atts = NULL;
    size_t n = 0;
    CN_OK(casenet_open(tn_keys(tn, POLICE), tn->net->dir, env->data, env->len, &info, &payload));
    assert_int_equal(info.n_blob_ids, 1);
    CN_OK(casenet_payload_attachments(payload.data, payload.len, &info, &atts, &n));
    assert_int_equal(n, 1);
    *out = atts[0];
    casenet_attachment_clear(&atts[0]);
    free(atts);
    casenet_buf_free(&payload);
    casenet_message_info_clear(&info);
}

static size_t dir_entries(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Path of chunk i of blob id at the broker (malloc'd). */
static char *chunk_path(const tn_network *tn, const uint8_t id[16], unsigned i)
{
    char hex[33], *p = NULL;
    tl_hex(id, 16, hex);
    assert_true(asprintf(&p, "%s/blobs/%s/%u", tn->data_dir, hex, i) > 0);
    return p;
}

/* Uploads a completely (after the resumption test or on its own). */
static void upload_all(casenet_client *c, const char *file, const casenet_attachment *a)
{
    uint32_t sent = 0;
    CN_OK(casenet_attachment_upload(c, file, a, 0, &sent));
}

static void test_resume_and_deliver(void **state)
{
    struct fx *f = *state;
    casenet_attachment a, got;
    CN_OK(casenet_attachment_prepare(f->file, NULL, &a));
    assert_int_equal(a.chunk_count, CHUNKS);
    assert_int_equal(a.size, SIZE);
    assert_string_equal(a.media_type, "application/octet-stream");
    casenet_client *h = connect_as(f->tn, HOTLINE);

    /* Interrupted after two chunks: the broker holds exactly those. */
    uint32_t sent = 0, *held = NULL, total = 0;
    size_t n = 0;
    CN_OK(casenet_attachment_upload(h, f->file, &a, 2, &sent));
    assert_int_equal(sent, 2);
    CN_OK(casenet_client_blob_status(h, a.blob_id, &held, &n, &total));
    assert_int_equal(n, 2);
    assert_int_equal(total, CHUNKS);
    assert_int_equal(held[0], 0);
    assert_int_equal(held[1], 1);
    free(held);

    /* A Submit naming the incomplete blob is refused. */
    casenet_buf env = seal_with(f->tn, HOTLINE, POLICE, &a);
    casenet_submit_receipt r;
    bool dup = false;
    CN_ERR(casenet_client_submit(h, env.data, env.len, &r, &dup), CASENET_ENOTFOUND);
    assert_non_null(strstr(casenet_client_last_error(h), "incomplete"));

    /* The broker crashes and comes back: the two chunks survived (fsync'd
     * before the answer) and the same connection resumes. */
    tn_kill(f->tn);
    tn_restart(f->tn);
    CN_OK(casenet_client_blob_status(h, a.blob_id, &held, &n, &total));
    assert_int_equal(n, 2);
    free(held);

    /* Resumed: only the four missing chunks travel. */
    CN_OK(casenet_attachment_upload(h, f->file, &a, 0, &sent));
    assert_int_equal(sent, CHUNKS - 2);
    CN_OK(casenet_attachment_upload(h, f->file, &a, 0, &sent));
    assert_int_equal(sent, 0);
    CN_OK(casenet_client_submit(h, env.data, env.len, &r, &dup));

    /* The recipient's copy is identical. */
    casenet_client *p = connect_as(f->tn, POLICE);
    open_attachment(f->tn, &env, &got);
    char *out = tl_path(f->dir, "police");
    assert_int_equal(mkdir(out, 0700), 0);
    char saved[4096];
    CN_OK(casenet_attachment_download(p, &got, out, saved, sizeof saved));
    size_t len = 0;
    uint8_t *back = tl_read_file(saved, &len);
    assert_int_equal(len, SIZE);
    assert_memory_equal(back, f->data, SIZE);
    free(back);
    /* Never replaced. */
    CN_ERR(casenet_attachment_download(p, &got, out, NULL, 0), CASENET_ECONFLICT);
    assert_int_equal(dir_entries(out), 1);

    /* A non-recipient sees nothing of it. */
    casenet_client *m = connect_as(f->tn, MOLISA);
    casenet_buf chunk = {0};
    CN_ERR(casenet_client_blob_get(m, a.blob_id, 0, &chunk), CASENET_ENOTFOUND);
    CN_ERR(casenet_client_blob_status(m, a.blob_id, &held, &n, NULL), CASENET_ENOTFOUND);
    /* ... nor references it in a message of its own. */
    casenet_buf forged = seal_with(f->tn, MOLISA, POLICE, &a);
    CN_ERR(casenet_client_submit(m, forged.data, forged.len, &r, &dup), CASENET_ENOTFOUND);

    casenet_buf_free(&forged);
    casenet_client_free(m);
    casenet_client_free(p);
    casenet_client_free(h);
    casenet_buf_free(&env);
    casenet_attachment_clear(&got);
    casenet_attachment_clear(&a);
    free(out);
}

static void test_chunks_never_replaced(void **state)
{
    struct fx *f = *state;
    casenet_client *h = connect_as(f->tn, HOTLINE);
    uint8_t id[16], c1[64], c2[64];
    randombytes_buf(id, sizeof id);
    memset(c1, 1, sizeof c1);
    memset(c2, 2, sizeof c2);
    uint32_t held = 0;
    CN_OK(casenet_client_blob_put(h, id, 0, c1, sizeof c1, 2, 128, &held));
    assert_int_equal(held, 1);
    CN_OK(casenet_client_blob_put(h, id, 0, c1, sizeof c1, 2, 128, &held));
    CN_ERR(casenet_client_blob_put(h, id, 0, c2, sizeof c2, 2, 128, &held), CASENET_ECONFLICT);
    CN_ERR(casenet_client_blob_put(h, id, 1, c2, sizeof c2, 3, 128, &held), CASENET_ECONFLICT);
    /* Another member cannot add to it. */
    casenet_client *m = connect_as(f->tn, MOLISA);
    CN_ERR(casenet_client_blob_put(m, id, 1, c2, sizeof c2, 2, 128, &held), CASENET_ECONFLICT);
    /* Beyond max_message_size (256 MiB by default). */
    CN_ERR(casenet_client_blob_put(h, c2, 0, c1, sizeof c1, 300, 300ull * 1024 * 1024, &held),
           CASENET_ETOOLARGE);
    casenet_client_free(m);
    casenet_client_free(h);
}

/* Tampering at the broker: each alteration of the stored chunks is caught
 * by the recipient and leaves nothing in its directory. */
static void test_tampered_chunks(void **state)
{
    struct fx *f = *state;
    casenet_attachment a, got;
    CN_OK(casenet_attachment_prepare(f->file, "application/pdf", &a));
    casenet_client *h = connect_as(f->tn, HOTLINE), *p = connect_as(f->tn, POLICE);
    upload_all(h, f->file, &a);
    casenet_buf env = seal_with(f->tn, HOTLINE, POLICE, &a);
    casenet_submit_receipt r;
    bool dup = false;
    CN_OK(casenet_client_submit(h, env.data, env.len, &r, &dup));
    open_attachment(f->tn, &env, &got);
    char *c0 = chunk_path(f->tn, a.blob_id, 0), *c1 = chunk_path(f->tn, a.blob_id, 1);
    char *c5 = chunk_path(f->tn, a.blob_id, CHUNKS - 1), *keep = tl_path(f->dir, "keep");
    char *out = tl_path(f->dir, "tampered");
    assert_int_equal(mkdir(out, 0700), 0);
    size_t len0 = 0, len1 = 0;
    uint8_t *b0 = tl_read_file(c0, &len0), *b1 = tl_read_file(c1, &len1);

    /* duplicated: chunk 0 stored again as chunk 1 */
    tl_write_file(c1, b0, len0, 0600);
    CN_ERR(casenet_attachment_download(p, &got, out, NULL, 0), CASENET_ECRYPTO);
    /* swapped: 1 and 0 exchanged */
    tl_write_file(c0, b1, len1, 0600);
    CN_ERR(casenet_attachment_download(p, &got, out, NULL, 0), CASENET_ECRYPTO);
    tl_write_file(c0, b0, len0, 0600);
    tl_write_file(c1, b1, len1, 0600);
    /* one bit flipped */
    b1[len1 / 2] ^= 1;
    tl_write_file(c1, b1, len1, 0600);
    CN_ERR(casenet_attachment_download(p, &got, out, NULL, 0), CASENET_ECRYPTO);
    b1[len1 / 2] ^= 1;
    tl_write_file(c1, b1, len1, 0600);
    /* dropped: the last chunk is gone */
    assert_int_equal(rename(c5, keep), 0);
    CN_ERR(casenet_attachment_download(p, &got, out, NULL, 0), CASENET_ENOTFOUND);
    assert_int_equal(rename(keep, c5), 0);
    assert_int_equal(dir_entries(out), 0);
    /* restored: it opens again */
    CN_OK(casenet_attachment_download(p, &got, out, NULL, 0));
    assert_int_equal(dir_entries(out), 1);

    free(b0);
    free(b1);
    free(c0);
    free(c1);
    free(c5);
    free(keep);
    free(out);
    casenet_buf_free(&env);
    casenet_client_free(p);
    casenet_client_free(h);
    casenet_attachment_clear(&a);
    casenet_attachment_clear(&got);
}

/* A manifest whose blob is not in the signed header (or the other way
 * round) is refused by the recipient before any download. */
static void test_manifest_must_match_header(void **state)
{
    struct fx *f = *state;
    casenet_attachment a;
    CN_OK(casenet_attachment_prepare(f->file, NULL, &a));
    casenet_buf plain = tl_referral_payload("evidence attached"), payload = {0}, env = {0};
    CN_OK(casenet_payload_add_attachments(plain.data, plain.len, &a, 1, &payload));
    const char *to = POLICE;
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = &to, .n_to = 1};
    CN_OK(casenet_seal(tn_keys(f->tn, HOTLINE), f->tn->net->dir, &o, payload.data, payload.len,
                       &env, NULL));
    casenet_message_info info = {0};
    casenet_buf opened = {0};
    casenet_attachment *atts = NULL;
    size_t n = 0;
    CN_OK(casenet_open(tn_keys(f->tn, POLICE), f->tn->net->dir, env.data, env.len, &info, &opened));
    CN_ERR(casenet_payload_attachments(opened.data, opened.len, &info, &atts, &n), CASENET_EBADREQ);
    CN_OK(casenet_payload_attachments(opened.data, opened.len, NULL, &atts, &n));
    assert_int_equal(n, 1);
    casenet_attachment_clear(&atts[0]);
    free(atts);
    casenet_message_info_clear(&info);
    casenet_buf_free(&opened);
    casenet_buf_free(&env);
    casenet_buf_free(&payload);
    casenet_buf_free(&plain);
    casenet_attachment_clear(&a);
}

/* Sends BlobPut chunk index of blob id (3 chunks of 64 bytes) as request
 * index + 1, without waiting for the answer. */
/* Sends chunk index (len bytes) of blob id, declared total_chunks and
 * total_size, without waiting for the answer (its request id is index + 1). */
static void send_put_sized(tn_conn *c, const uint8_t id[16], uint32_t index, size_t len,
                           uint32_t total_chunks, uint64_t total_size)
{
    uint8_t *chunk = malloc(len);
    assert_non_null(chunk);
    memset(chunk, (int)index + 1, len);
    Casenet__V1__Request q = CASENET__V1__REQUEST__INIT;
    Casenet__V1__BlobPut p = CASENET__V1__BLOB_PUT__INIT;
    p.blob_id = (ProtobufCBinaryData){16, (uint8_t *)id};
    p.chunk_index = index;
    p.chunk = (ProtobufCBinaryData){len, chunk};
    p.total_chunks = total_chunks;
    p.total_size = total_size;
    q.protocol_version = 1;
    q.request_id = index + 1;
    q.body_case = CASENET__V1__REQUEST__BODY_BLOB_PUT;
    q.blob_put = &p;
    size_t n = casenet__v1__request__get_packed_size(&q);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    casenet__v1__request__pack(&q, buf);
    const void *frames[1] = {buf};
    tn_send_frames(c, frames, &n, 1);
    free(buf);
    free(chunk);
}

static void send_put(tn_conn *c, const uint8_t id[16], uint32_t index)
{
    send_put_sized(c, id, index, 64, 3, 3 * 64);
}

static void test_submits_answered_while_chunk_written(void **state)
{
    struct fx *f = *state;
    tl_write_file(gate, "", 0, 0600);
    tn_conn *up = f->conns[0] = tn_connect(f->tn, tn_keys(f->tn, POLICE));
    uint8_t id[16];
    randombytes_buf(id, sizeof id);
    /* Three chunks: two go to the writer (its bound per member), the third
     * waits in the broker's queue. */
    for (uint32_t i = 0; i < 3; i++)
        send_put(up, id, i);
    char hex[33], *meta = NULL;
    tl_hex(id, 16, hex);
    assert_true(asprintf(&meta, "%s/blobs/%s/meta", f->tn->data_dir, hex) > 0);
    for (int64_t until = cn_mono_ms() + 20000; access(meta, F_OK) != 0;) {
        assert_true(cn_mono_ms() < until); /* the first put reached its handler */
        casenet_buf none = {0};
        assert_false(tn_recv(up, 20, &none));
    }
    /* Another member's Submits are answered meanwhile, again and again. */
    tn_conn *other = f->conns[1] = tn_connect(f->tn, tn_keys(f->tn, HOTLINE));
    const char *to[] = {POLICE};
    for (int k = 0; k < 3; k++) {
        casenet_buf env = tn_seal(f->tn, HOTLINE, to, 1, "a referral meanwhile", NULL);
        Casenet__V1__Response *r = tn_submit(other, env.data, env.len);
        assert_non_null(r);
        assert_int_equal(tn_code(r), 0);
        casenet__v1__response__free_unpacked(r, NULL);
        casenet_buf_free(&env);
    }
    /* No chunk is answered before it is written. */
    casenet_buf early = {0};
    assert_false(tn_recv(up, 0, &early));
    assert_int_equal(unlink(gate), 0);
    bool seen[3] = {false};
    unsigned complete = 0;
    for (int n = 0; n < 3; n++) {
        casenet_buf in = {0};
        assert_true(tn_recv(up, 20000, &in));
        Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, in.len, in.data);
        assert_non_null(r);
        assert_int_equal(tn_code(r), 0);
        assert_true(r->request_id >= 1 && r->request_id <= 3 && !seen[r->request_id - 1]);
        seen[r->request_id - 1] = true;
        assert_int_equal(r->body_case, CASENET__V1__RESPONSE__BODY_BLOB_PUT);
        complete += r->blob_put->complete;
        casenet__v1__response__free_unpacked(r, NULL);
        casenet_buf_free(&in);
    }
    assert_int_equal(complete, 1); /* only the write that completed the blob */
    for (unsigned i = 0; i < 3; i++) {
        char *p = chunk_path(f->tn, id, i);
        assert_int_equal(access(p, F_OK), 0);
        free(p);
    }
    free(meta);
}

/* A chunk with the writer counts as held: two chunks of 1 MiB + 17 sent
 * back to back for a blob declared 1 MiB + 34 bytes cannot both be stored,
 * though neither is on disk when the second is checked. */
static void test_chunks_in_flight_count(void **state)
{
    struct fx *f = *state;
    const size_t big = 1048576 + 17;
    tl_write_file(gate, "", 0, 0600);
    tn_conn *up = f->conns[0] = tn_connect(f->tn, tn_keys(f->tn, POLICE));
    uint8_t id[16];
    randombytes_buf(id, sizeof id);
    send_put_sized(up, id, 0, big, 2, big + 17);
    send_put_sized(up, id, 1, big, 2, big + 17);
    /* The second is refused while the first still waits for the writer. */
    casenet_buf in = {0};
    assert_true(tn_recv(up, 20000, &in));
    Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, in.len, in.data);
    assert_non_null(r);
    assert_int_equal(r->request_id, 2);
    assert_int_equal(tn_code(r), CASENET_ECONFLICT);
    casenet__v1__response__free_unpacked(r, NULL);
    casenet_buf_free(&in);
    assert_int_equal(unlink(gate), 0);
    assert_true(tn_recv(up, 20000, &in));
    r = casenet__v1__response__unpack(NULL, in.len, in.data);
    assert_non_null(r);
    assert_int_equal(r->request_id, 1);
    assert_int_equal(tn_code(r), 0);
    assert_false(r->blob_put->complete);
    casenet__v1__response__free_unpacked(r, NULL);
    casenet_buf_free(&in);
    char *p = chunk_path(f->tn, id, 1);
    assert_int_equal(access(p, F_OK), -1);
    free(p);
}

int main(void)
{
    gate_dir = tl_tmpdir();
    gate = tl_path(gate_dir, "gate");
    setenv("CASENETD_TEST_BLOB_WRITE_GATE", gate, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_and_deliver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_never_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_must_match_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submits_answered_while_chunk_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_in_flight_count, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tl_rmrf(gate_dir);
    free(gate_dir);
    free(gate);
    return rc;
}
