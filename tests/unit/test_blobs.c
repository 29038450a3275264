/* test_blobs.c - the broker's blob files (broker/blobs.c) alone: which blobs
 * the idle retirement deletes (unreferenced and old; referenced and every
 * referencing message finished) and which it keeps, and that the quota
 * sweep still sums what an owner holds and keeps referenced blobs; a pass
 * cut into steps of at most N blobs resumes where it stopped and counts
 * what it kept; nothing is deleted while a backup holds the blobs lock; the
 * quota tally counts each owner's blobs once whether or not the pass under
 * way saw a blob created during it; a blob a chunk is being written into is
 * never deleted; the blob writer takes the member with fewest chunks queued
 * first, and its write that completes a blob is the one that says so. */
#include "testlib.h"

#include "blob_io.h"
#include "blob_tally.h"
#include "blobs.h"
#include "casenet.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define OLD_MS 1000
#define NOW_MS 5000

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = tl_tmpdir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tl_rmrf(dir);
    free(dir);
    return 0;
}

/* A blob of 10 bytes owned by owner, created at created_ms, id = n in every byte. */
static void make_blob(uint8_t n, const char *owner, int64_t created_ms)
{
    uint8_t id[CASENET_BLOB_ID_BYTES];
    memset(id, n, sizeof id);
    struct blob_meta m = {.total_chunks = 1, .total_size = 10, .created_ms = created_ms};
    snprintf(m.owner, sizeof m.owner, "%s", owner);
    CN_OK(blobs_meta_create(dir, id, &m));
}

static void reference(uint8_t n, uint8_t msg)
{
    uint8_t id[CASENET_BLOB_ID_BYTES], mid[CASENET_MESSAGE_ID_BYTES];
    memset(id, n, sizeof id);
    memset(mid, msg, sizeof mid);
    char member[] = "vn.police.a05";
    char *members[] = {member};
    CN_OK(blobs_reference(dir, id, mid, members, 1));
}

static bool held(uint8_t n)
{
    uint8_t id[CASENET_BLOB_ID_BYTES];
    struct blob_meta m;
    memset(id, n, sizeof id);
    return blobs_meta_read(dir, id, &m) == CASENET_OK;
}

/* blobs_finished_fn: the messages whose id bytes are in the set ctx. */
static bool finished_in(const uint8_t msg_id[CASENET_MESSAGE_ID_BYTES], int64_t blob_created_ms,
                        void *ctx)
{
    assert_int_equal(blob_created_ms, OLD_MS); /* every referenced blob here is old */
    return strchr((const char *)ctx, (char)msg_id[0]) != NULL;
}

static void test_retire(void **state)
{
    (void)state;
    make_blob(1, "vn.hotline111", OLD_MS); /* unreferenced, old */
    make_blob(2, "vn.hotline111", NOW_MS); /* unreferenced, new */
    make_blob(3, "vn.hotline111", OLD_MS); /* message 'a' */
    reference(3, 'a');
    make_blob(4, "vn.hotline111", OLD_MS); /* messages 'a' and 'b' */
    reference(4, 'a');
    reference(4, 'b');
    size_t removed = 9;
    char none[] = "", a[] = "a", ab[] = "ab";

    /* blob_unreferenced = 0: nothing unreferenced goes; nothing finished. */
    CN_OK(blobs_retire(dir, 0, finished_in, none, &removed));
    assert_int_equal(removed, 0);
    assert_true(held(1) && held(2) && held(3) && held(4));

    CN_OK(blobs_retire(dir, NOW_MS, finished_in, none, &removed));
    assert_int_equal(removed, 1);
    assert_false(held(1));
    assert_true(held(2) && held(3) && held(4));

    CN_OK(blobs_retire(dir, NOW_MS, finished_in, a, &removed));
    assert_int_equal(removed, 1);
    assert_false(held(3));
    assert_true(held(2) && held(4)); /* 'b' still needs blob 4 */

    CN_OK(blobs_retire(dir, NOW_MS, finished_in, ab, &removed));
    assert_int_equal(removed, 1);
    assert_false(held(4));
    assert_true(held(2));
}

static void test_referenced_without_msgs_stays(void **state)
{
    (void)state;
    make_blob(5, "vn.hotline111", OLD_MS);
    reference(5, 'c');
    char path[4096], hex[2 * CASENET_BLOB_ID_BYTES + 1];
    uint8_t id[CASENET_BLOB_ID_BYTES];
    memset(id, 5, sizeof id);
    tl_hex(id, sizeof id, hex);
    snprintf(path, sizeof path, "%s/%s/%s/msgs", dir, BLOBS_DIR, hex);
    assert_int_equal(unlink(path), 0); /* as referenced before "msgs" was kept */
    size_t removed = 9;
    char all[] = "c";
    CN_OK(blobs_retire(dir, NOW_MS, finished_in, all, &removed));
    assert_int_equal(removed, 0);
    assert_true(held(5));
}

static void test_sweep_keeps_referenced(void **state)
{
    (void)state;
    make_blob(6, "vn.hotline111", OLD_MS);
    reference(6, 'd');
    make_blob(7, "vn.hotline111", OLD_MS);
    make_blob(8, "vn.police.a05", NOW_MS);
    uint64_t owned = 0;
    CN_OK(blobs_sweep(dir, "vn.hotline111", NOW_MS, NULL, NULL, &owned));
    assert_int_equal(owned, blobs_charge(1, 10)); /* blob 6; blob 7 swept */
    assert_true(held(6) && held(8));
    assert_false(held(7));
}

/* Blob ids 0x00 0x00 ... 0x00 n_hi n_lo: n up to 65535. */
static void make_many(unsigned n, int64_t created_ms)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t id[CASENET_BLOB_ID_BYTES] = {0};
        id[14] = (uint8_t)(i >> 8);
        id[15] = (uint8_t)i;
        struct blob_meta m = {.total_chunks = 1, .total_size = 10, .created_ms = created_ms};
        snprintf(m.owner, sizeof m.owner, "vn.hotline111");
        CN_OK(blobs_meta_create(dir, id, &m));
    }
}

static void test_pass_in_steps(void **state)
{
    (void)state;
    make_many(300, NOW_MS); /* kept: new, unreferenced */
    struct blobs_pass p = {0};
    size_t removed = 9;
    bool done = true;
    char none[] = "";
    CN_OK(blobs_retire_step(dir, &p, 128, 0, NOW_MS, finished_in, none, &removed, &done));
    assert_false(done);
    assert_int_equal(p.kept, 128);
    CN_OK(blobs_retire_step(dir, &p, 128, 0, NOW_MS, finished_in, none, &removed, &done));
    assert_false(done);
    assert_int_equal(p.kept, 256);
    CN_OK(blobs_retire_step(dir, &p, 128, 0, NOW_MS, finished_in, none, &removed, &done));
    assert_true(done);
    assert_int_equal(p.steps, 3);
    assert_int_equal(p.kept, 300);
    assert_int_equal(p.kept_bytes, 3000);
    assert_int_equal(p.removed, 0);
    assert_null(p.dir);
    /* The next step starts a new pass. */
    CN_OK(blobs_retire_step(dir, &p, 1000, 0, NOW_MS, finished_in, none, &removed, &done));
    assert_true(done);
    assert_int_equal(p.steps, 1);
    assert_int_equal(p.kept, 300);
    blobs_pass_end(&p);
}

static void test_pass_deletes_across_steps(void **state)
{
    (void)state;
    make_many(200, OLD_MS); /* unreferenced and old: all go */
    struct blobs_pass p = {0};
    size_t removed = 0, total = 0;
    bool done = false;
    char none[] = "";
    while (!done) {
        CN_OK(blobs_retire_step(dir, &p, 64, 0, NOW_MS, finished_in, none, &removed, &done));
        assert_true(removed <= 64);
        total += removed;
    }
    assert_int_equal(total, 200);
    assert_int_equal(p.removed, 200);
    assert_int_equal(p.kept, 0);
    assert_int_equal(p.steps, 4); /* 64 + 64 + 64 + 8 */
}

static void test_backup_lock_defers_deletion(void **state)
{
    (void)state;
    make_blob(1, "vn.hotline111", OLD_MS); /* unreferenced, old */
    int fd = blobs_lock(dir, false, true); /* casenetd backup's hold */
    assert_true(fd >= 0);
    assert_int_equal(blobs_lock(dir, true, false), -1); /* the broker cannot take it */
    size_t removed = 9;
    char none[] = "";
    CN_OK(blobs_retire(dir, NOW_MS, finished_in, none, &removed));
    assert_int_equal(removed, 0);
    assert_true(held(1));
    uint64_t owned = 0;
    CN_OK(blobs_sweep(dir, "vn.hotline111", NOW_MS, NULL, NULL, &owned));
    assert_true(held(1));
    close(fd);
    CN_OK(blobs_retire(dir, NOW_MS, finished_in, none, &removed));
    assert_int_equal(removed, 1);
    assert_false(held(1));
}

/* A blob of 10 bytes made and told to the tally. */
static void make_told(struct blob_tally *t, uint8_t n, const char *owner, int64_t created_ms)
{
    uint8_t id[CASENET_BLOB_ID_BYTES];
    memset(id, n, sizeof id);
    make_blob(n, owner, created_ms);
    blob_tally_created(t, id, owner, 10);
}

/* Runs the pass to its end in steps of one blob, calling between(t) after
 * the first step. */
static void tally_pass(struct blob_tally *t, int64_t before_ms,
                       void (*between)(struct blob_tally *))
{
    struct blobs_pass p = {.kept_fn = blob_tally_on_kept, .kept_ctx = t};
    size_t removed = 0;
    bool done = false;
    char none[] = "";
    for (int i = 0; !done; i++) {
        CN_OK(blobs_retire_step(dir, &p, 1, 0, before_ms, finished_in, none, &removed, &done));
        if (i == 0 && between)
            between(t);
    }
    blob_tally_pass_end(t);
}

static void made_during_pass(struct blob_tally *t)
{
    make_told(t, 3, "vn.hotline111", NOW_MS);
}

static void test_tally(void **state)
{
    (void)state;
    struct blob_tally t = {0};
    uint64_t bytes = 9;
    make_told(&t, 1, "vn.hotline111", OLD_MS); /* unreferenced, old */
    make_told(&t, 2, "vn.police.a05", NOW_MS);
    assert_false(blob_tally_owned(&t, "vn.hotline111", &bytes)); /* no pass ended yet */
    tally_pass(&t, 0, made_during_pass);
    assert_true(blob_tally_owned(&t, "vn.hotline111", &bytes));
    assert_int_equal(bytes, 20); /* blobs 1 and 3, once each */
    assert_true(blob_tally_owned(&t, "vn.police.a05", &bytes));
    assert_int_equal(bytes, 10);
    assert_true(blob_tally_owned(&t, "vn.coord", &bytes));
    assert_int_equal(bytes, 0);
    make_told(&t, 4, "vn.hotline111", NOW_MS); /* between passes: counted at once */
    assert_true(blob_tally_owned(&t, "vn.hotline111", &bytes));
    assert_int_equal(bytes, 30);
    tally_pass(&t, NOW_MS, NULL); /* deletes blob 1 */
    assert_false(held(1));
    assert_true(blob_tally_owned(&t, "vn.hotline111", &bytes));
    assert_int_equal(bytes, 20);
    blob_tally_clear(&t);
}

/* blobs_busy_fn: the blob whose id bytes are n (ctx) is being written. */
static bool busy_n(const uint8_t id[CASENET_BLOB_ID_BYTES], void *ctx)
{
    return id[0] == *(const uint8_t *)ctx;
}

static void test_busy_blob_kept(void **state)
{
    (void)state;
    uint8_t busy = 9;
    make_blob(9, "vn.hotline111", OLD_MS); /* unreferenced, old, being written */
    make_blob(10, "vn.hotline111", OLD_MS);
    uint64_t owned = 0;
    CN_OK(blobs_sweep(dir, "vn.hotline111", NOW_MS, busy_n, &busy, &owned));
    assert_int_equal(owned, blobs_charge(1, 10));
    assert_true(held(9));
    assert_false(held(10));
    /* Referenced, its message finished, but being written: kept by a pass. */
    make_blob(11, "vn.hotline111", OLD_MS);
    reference(11, 'f');
    busy = 11;
    struct blobs_pass p = {.busy_fn = busy_n, .busy_ctx = &busy};
    size_t removed = 0;
    bool done = false;
    while (!done)
        CN_OK(blobs_retire_step(dir, &p, 100, 0, NOW_MS, finished_in, "f", &removed, &done));
    assert_true(held(11));
    assert_false(held(9)); /* no longer busy: gone */
    busy = 0;
    CN_OK(blobs_retire(dir, NOW_MS, finished_in, "f", &removed));
    assert_false(held(11));
}

/* A job writing chunk index of blob n (of chunks chunks of 10 bytes) for
 * member. */
static struct blob_job *job(uint8_t n, uint32_t index, uint32_t chunks, const char *member)
{
    struct blob_job *j = calloc(1, sizeof *j);
    memset(j->id, n, sizeof j->id);
    j->index = index;
    j->meta = (struct blob_meta){.total_chunks = chunks, .total_size = 10u * chunks};
    snprintf(j->meta.owner, sizeof j->meta.owner, "%s", member);
    snprintf(j->member, sizeof j->member, "%s", member);
    j->chunk.data = malloc(10);
    memset(j->chunk.data, (int)index, 10);
    j->chunk.len = j->chunk_len = 10;
    return j;
}

/* The next job the writer wrote (waiting on its descriptor). */
static struct blob_job *take(struct blob_io *io)
{
    for (;;) {
        struct blob_job *j = blob_io_take(io);
        if (j)
            return j;
        struct pollfd pf = {.fd = blob_io_fd(io), .events = POLLIN};
        assert_true(poll(&pf, 1, 10000) == 1);
    }
}

static void test_writer_fair_and_durable(void **state)
{
    (void)state;
    char *gate = tl_path(dir, "gate");
    tl_write_file(gate, "", 0, 0600);
    assert_int_equal(setenv("CASENETD_TEST_BLOB_WRITE_GATE", gate, 1), 0);
    make_blob(1, "vn.a", OLD_MS);
    make_blob(2, "vn.b", OLD_MS);
    struct blob_io *io = NULL;
    CN_OK(blob_io_new(dir, &io));
    /* Member a queues its blob's three chunks, then b its one: the gate
     * holds the writer on a's first. */
    struct blob_job *js[4] = {job(1, 0, 3, "vn.a"), job(1, 1, 3, "vn.a"), job(1, 2, 3, "vn.a"),
                              job(2, 0, 1, "vn.b")};
    for (size_t i = 0; i < 4; i++)
        blob_io_submit(io, js[i]);
    uint8_t id1[16], id2[16], id3[16];
    memset(id1, 1, sizeof id1);
    memset(id2, 2, sizeof id2);
    memset(id3, 3, sizeof id3);
    assert_true(blob_io_busy(io, id1) && blob_io_busy(io, id2));
    assert_false(blob_io_busy(io, id3));
    assert_null(blob_io_take(io));
    assert_int_equal(unlink(gate), 0);
    /* b's chunk goes before a's second: fewest queued first. */
    const struct blob_job *want[4] = {js[0], js[3], js[1], js[2]};
    for (size_t i = 0; i < 4; i++) {
        struct blob_job *j = take(io);
        assert_ptr_equal(j, want[i]);
        CN_OK(j->rc);
        assert_true(j->fresh);
        assert_null(j->chunk.data); /* freed once written */
        /* Only the write that completed a blob finds it complete. */
        assert_int_equal(j->held.complete, i == 1 || i == 3);
        blob_job_free(j);
    }
    assert_false(blob_io_busy(io, id1) || blob_io_busy(io, id2));
    for (uint32_t i = 0; i < 3; i++) {
        casenet_buf c = {0};
        CN_OK(blobs_chunk_read(dir, id1, i, &c));
        assert_int_equal(c.len, 10);
        assert_int_equal(c.data[0], i);
        casenet_buf_free(&c);
    }
    blob_io_free(io);
    unsetenv("CASENETD_TEST_BLOB_WRITE_GATE");
    free(gate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_referenced_without_msgs_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_keeps_referenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_in_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_deletes_across_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_lock_defers_deletion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tally, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_blob_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_fair_and_durable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
