/* test_disk_full.c - casenetd on a full disk: its data directory is an 8 MiB
 * tmpfs mounted by the test (root only; skipped, saying so, otherwise).
 *   1. Below the free-space reserve (min_free_mb), Submit answers
 *      UNAVAILABLE with a retry-after while ListInbox and Fetch (whose small
 *      writes use the reserve) keep working. Below half of it, a Fetch that
 *      would write (audit) is refused too, a repeated one (nothing to write)
 *      and receipts are served; below a quarter, receipts are refused: the
 *      rest is the broker's own.
 *   2. With no reserve and the file system filled to the last page, SQLite
 *      itself fails (SQLITE_FULL): the batch is rolled back, Submit answers
 *      UNAVAILABLE, the broker keeps running and ListInbox keeps working.
 *   3. Space returns (the filler files are deleted): Submit is accepted again,
 *      every receipted message is still in its inbox, the broker stops
 *      cleanly and PRAGMA integrity_check says ok. */
#include "network.h"
#include "testlib.h"

#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define HOTLINE "vn.hotline111"
#define POLICE  "vn.police.a05"

#define FS_OPTIONS  "size=8m,mode=0700"
#define RESERVE_MB  2
#define N_BEFORE    20
#define BIG_TEXT    (200u * 1024u)
#define CHUNK_BIG   (64u * 1024u)
#define CHUNK_SMALL 512u

static const char *const members[] = {HOTLINE ":intake", POLICE ":responder:police"};

static void rfree(Casenet__V1__Response *r)
{
    casenet__v1__response__free_unpacked(r, NULL);
}

static uint64_t avail_bytes(const char *dir)
{
    struct statvfs v;
    assert_int_equal(statvfs(dir, &v), 0);
    return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Appends to path until fewer than floor bytes are available, or (floor 0)
 * until the file system refuses even CHUNK_SMALL bytes. */
static void fill(const char *dir, const char *name, uint64_t floor)
{
    char *path = tl_path(dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static uint8_t junk[CHUNK_BIG];
    memset(junk, 0x5a, sizeof junk);
    size_t chunk = CHUNK_BIG;
    for (;;) {
        if (floor && avail_bytes(dir) < floor)
            break;
        ssize_t n = write(fd, junk, chunk);
        if (n < 0) {
            assert_int_equal(errno, ENOSPC);
            if (chunk == CHUNK_SMALL)
                break;
            chunk = CHUNK_SMALL;
        }
    }
    close(fd);
    free(path);
}

static void unfill(const char *dir, const char *name)
{
    char *path = tl_path(dir, name);
    if (access(path, F_OK) == 0)
        assert_int_equal(unlink(path), 0);
    free(path);
}

struct fixture {
    tn_network *tn;
    tn_conn *h; /* closed by teardown, also after a failed assertion */
    tn_conn *p; /* the same */
    bool mounted;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->tn = tn_new(members, 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tn_close(f->h);
    tn_close(f->p);
    if (f->tn->pid)
        tn_kill(f->tn);
    if (f->mounted && umount2(f->tn->data_dir, MNT_DETACH) != 0)
        fprintf(stderr, "disk_full: umount %s: %s\n", f->tn->data_dir, strerror(errno));
    tn_free(f->tn);
    free(f);
    return 0;
}

static void write_config(tn_network *tn, unsigned reserve_mb)
{
    char ini[128];
    snprintf(ini, sizeof ini, "[limits]\nmin_free_mb = %u\n", reserve_mb);
    free(tn->config_path);
    tn->config_path = tl_path(tn->root, "casenetd.ini");
    tl_write_file(tn->config_path, ini, strlen(ini), 0644);
}

static Casenet__V1__Response *submit_text(tn_network *tn, tn_conn *c, const char *text,
                                          uint8_t id[16])
{
    const char *to[] = {POLICE};
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, text, id);
    Casenet__V1__Response *r = tn_submit(c, env.data, env.len);
    casenet_buf_free(&env);
    return r;
}

/* Every id in ids[0..n) is in POLICE's inbox. */
static void assert_inbox_holds(tn_network *tn, uint8_t (*ids)[16], size_t n)
{
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_list(p, 0, 0, 1000);
    assert_int_equal(tn_code(r), 0);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < r->inbox->n_entries; k++) {
            const Casenet__V1__InboxEntry *e = r->inbox->entries[k];
            if (e->message_id.len == 16 && memcmp(e->message_id.data, ids[i], 16) == 0)
                found = true;
        }
        assert_true(found);
    }
    rfree(r);
    tn_close(p);
}

static void test_disk_full(void **state)
{
    struct fixture *f = *state;
    tn_network *tn = f->tn;
    if (geteuid() != 0) {
        fprintf(stderr, "disk_full: SKIPPED: mounting a small tmpfs for the data directory "
                        "needs root (CI runs as root)\n");
        skip();
    }
    assert_int_equal(mkdir(tn->data_dir, 0700), 0);
    if (mount("casenet-disk-full", tn->data_dir, "tmpfs", MS_NOSUID | MS_NODEV, FS_OPTIONS) != 0)
        fail_msg("mount tmpfs on %s: %s (root without CAP_SYS_ADMIN?)", tn->data_dir,
                 strerror(errno));
    f->mounted = true;
    write_config(tn, RESERVE_MB);
    tn_start(tn);

    uint8_t ids[N_BEFORE + 2][16];
    size_t n_ids = 0;
    tn_conn *h = f->h = tn_connect(tn, tn_keys(tn, HOTLINE));
    for (int i = 0; i < N_BEFORE; i++) {
        Casenet__V1__Response *r = submit_text(tn, h, "before the disk fills", ids[n_ids]);
        assert_int_equal(tn_code(r), 0);
        rfree(r);
        n_ids++;
    }

    /* 1. Below the reserve: Submit refused, reads and Fetch served. */
    uint64_t mib = 1024u * 1024u;
    fill(tn->data_dir, "filler1", RESERVE_MB * mib * 3 / 4);
    Casenet__V1__Response *r = submit_text(tn, h, "refused: reserve", NULL);
    CN_ERR(tn_code(r), CASENET_EUNAVAIL);
    assert_true(r->error->retry_after_ms > 0);
    rfree(r);
    assert_inbox_holds(tn, ids, n_ids);
    tn_conn *p = f->p = tn_connect(tn, tn_keys(tn, POLICE));
    r = tn_fetch(p, ids[0]);
    assert_int_equal(tn_code(r), 0);
    assert_true(r->fetch->envelope.len > 0);
    uint8_t hash0[32];
    cn_sha256(r->fetch->envelope.data, r->fetch->envelope.len, hash0);
    rfree(r);
    assert_true(tn_log_contains(tn, "event=disk_low"));
    /* Below half: a first fetch (a state change and an event) refused, the
     * same fetch again (nothing written) and a receipt served. */
    fill(tn->data_dir, "filler1", RESERVE_MB * mib * 3 / 8);
    r = tn_fetch(p, ids[1]);
    CN_ERR(tn_code(r), CASENET_EUNAVAIL);
    rfree(r);
    r = tn_fetch(p, ids[0]);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    casenet_buf rc0 =
        tn_sign_receipt(tn, POLICE, ids[0], hash0, HOTLINE, CASENET_RECEIPT_DELIVERED, cn_now_ms());
    r = tn_send_receipt(p, rc0.data, rc0.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    casenet_buf_free(&rc0);
    /* Below a quarter: receipts refused as well. */
    fill(tn->data_dir, "filler1", RESERVE_MB * mib / 8);
    rc0 =
        tn_sign_receipt(tn, POLICE, ids[0], hash0, HOTLINE, CASENET_RECEIPT_ACCEPTED, cn_now_ms());
    r = tn_send_receipt(p, rc0.data, rc0.len);
    CN_ERR(tn_code(r), CASENET_EUNAVAIL);
    rfree(r);
    casenet_buf_free(&rc0);
    tn_close(p);
    f->p = NULL;

    /* 2. No reserve, and not one free page: SQLite's own SQLITE_FULL. */
    tn_close(h);
    f->h = NULL;
    unfill(tn->data_dir, "filler1");
    assert_int_equal(tn_stop(tn), 0);
    write_config(tn, 0);
    tn_restart(tn);
    h = f->h = tn_connect(tn, tn_keys(tn, HOTLINE));
    fill(tn->data_dir, "filler2", 0);
    char *big = malloc(BIG_TEXT + 1);
    memset(big, 'x', BIG_TEXT);
    big[BIG_TEXT] = 0;
    r = submit_text(tn, h, big, NULL);
    CN_ERR(tn_code(r), CASENET_EUNAVAIL);
    assert_true(r->request_id != 0); /* a failed batch still answers each request */
    rfree(r);
    assert_true(tn_log_contains(tn, "event=batch_failed"));
    assert_inbox_holds(tn, ids, n_ids);
    r = tn_hello(h);
    assert_int_equal(tn_code(r), 0); /* still running */
    rfree(r);

    /* 3. Space returns: accepted again, nothing accepted was lost. */
    unfill(tn->data_dir, "filler2");
    r = submit_text(tn, h, big, ids[n_ids]);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    n_ids++;
    r = submit_text(tn, h, "after", ids[n_ids]);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    n_ids++;
    assert_inbox_holds(tn, ids, n_ids);
    free(big);
    tn_close(h);
    f->h = NULL;
    assert_int_equal(tn_stop(tn), 0);

    char *db_path = tl_path(tn->data_dir, "casenet.db");
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), (int)n_ids);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(db_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
