/* test_blobs.c - the broker's blob files (broker/blobs.c) alone: which blobs
 * the idle retirement deletes (unreferenced and old; referenced and every
 * referencing message finished) and which it keeps, and that the quota
 * sweep still sums what an owner holds and keeps referenced blobs. */
#include "testlib.h"

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
    CN_OK(blobs_sweep(dir, "vn.hotline111", NOW_MS, &owned));
    assert_int_equal(owned, 10); /* blob 6; blob 7 swept */
    assert_true(held(6) && held(8));
    assert_false(held(7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_referenced_without_msgs_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_keeps_referenced, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
