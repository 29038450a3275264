/*
 * store_sqlite_wal.c - when the SQLite store checkpoints its write-ahead log
 * (store_ops.checkpoint). SQLite's own auto-checkpoint runs inside the
 * COMMIT of whichever batch crosses its threshold, before that batch's
 * replies go out: the broker's worst latency spikes. Here it is turned off;
 * a WAL hook counts the frames each commit leaves, and the loop checkpoints
 * after a batch's replies were sent (server.c decides when). The hook keeps
 * a backstop: past SQ_WAL_HARD_FRAMES pages it checkpoints in the commit
 * like SQLite would, so a caller that never checkpoints (a tool filling a
 * store) keeps a bounded log too.
 *
 * Checkpoints are PASSIVE: they never wait for or block a reader; pages a
 * reader still needs stay in the log for a later one.
 */
#include "log.h"
#include "store_sqlite_impl.h"

#include <stdio.h>

/* 8192 pages: 32 MiB at 4 KiB, 64 MiB (journal_size_limit) in a store
 * created with 8 KiB pages. */
#define SQ_WAL_HARD_FRAMES 8192u

static uint32_t wal_pending(const struct sq_wal *w)
{
    return w->frames > w->backfilled ? w->frames - w->backfilled : 0;
}

static int wal_checkpoint(struct store *st, struct sq_wal *w)
{
    int log = 0, ckpt = 0;
    int rc = sqlite3_wal_checkpoint_v2(sq_db(st), NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt);
    w->checkpoints++;
    if ((rc & 0xff) == SQLITE_BUSY) {
        /* Another connection is checkpointing: nothing lost, try later. */
        return CASENET_OK;
    }
    if (rc != SQLITE_OK)
        return sq_map_rc(st, rc, "checkpoint");
    if (log < 0 || ckpt < 0) /* not in WAL mode: nothing to do */
        log = ckpt = 0;
    if (ckpt >= log) {
        /* All copied: the next commit restarts the log from its start
         * (unless a reader still reads it: then the count errs high until
         * the next checkpoint, which is harmless). */
        w->frames = 0;
        w->backfilled = 0;
    } else {
        /* A reader holds frames past ckpt: the log cannot restart, so the
         * next commits append after log and the count stays exact. */
        w->frames = (uint32_t)log;
        w->backfilled = (uint32_t)ckpt;
    }
    return CASENET_OK;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int n_frames)
{
    (void)db;
    (void)name;
    struct store *st = arg;
    struct sq_wal *w = sq_wal_state(st);
    if (n_frames >= 0) {
        if ((uint32_t)n_frames < w->frames)
            w->backfilled = 0; /* the log restarted */
        w->frames = (uint32_t)n_frames;
    }
    if (wal_pending(w) >= SQ_WAL_HARD_FRAMES) {
        /* The backstop: nobody checkpointed in time. A failure is logged;
         * the commit itself succeeded. */
        (void)wal_checkpoint(st, w);
        w->backstops++;
    }
    return SQLITE_OK;
}

int sq_wal_open(struct store *st)
{
    sqlite3 *db = sq_db(st);
    int rc = sqlite3_wal_autocheckpoint(db, 0);
    if (rc != SQLITE_OK)
        return sq_map_rc(st, rc, "wal_autocheckpoint");
    /* Replaces (and so disables) SQLite's automatic checkpoint. */
    (void)sqlite3_wal_hook(db, wal_hook, st);
    return CASENET_OK;
}

int sq_checkpoint(struct store *st, uint32_t min_frames, uint32_t *pending)
{
    struct sq_wal *w = sq_wal_state(st);
    int rc = CASENET_OK;
    uint32_t p = wal_pending(w);
    if (min_frames != UINT32_MAX && p > 0 && p >= min_frames)
        rc = wal_checkpoint(st, w);
    if (pending)
        *pending = wal_pending(w);
    return rc;
}
