/* test_blobs.c - the broker's blob files (broker/blobs.c) alone: which blobs
 * the idle retirement deletes (unreferenced and old; referenced and every
 * referencing message finished) and which it keeps, and that the quota
 * sweep still sums what an owner holds and keeps referenced blobs; a pass
 * cut into steps of at most N blobs resumes where it stopped and counts
 * what it kept; nothing is deleted while a backup holds the blobs lock; the
 * quota tally counts each owner's blobs once whether or not the pass under
 * way saw a blob created during it. */
#include "testlib.h"

#include "blob_tally.h"
#include "blobs.h"
#include "casenet.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

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
    assert_int_equal(owned, 10); /* blob 6; blob 7 swept */
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
