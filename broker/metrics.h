/*
 * metrics.h - the broker's figures for the admin listener (admin.h): the
 * loop counts as it works and publishes a snapshot after each batch; the
 * admin thread reads the newest snapshot and renders it in the Prometheus
 * text exposition format 0.0.4, or judges health and readiness from it.
 *
 * Threads: every function but metrics_read, metrics_render, metrics_health
 * and metrics_ready is the loop's own (one writer, no locks: plain counters).
 * Snapshots travel through triple buffers with one atomic index each, so
 * neither side ever waits for the other. Figures that need the store (inbox
 * backlog per member, overdue deadlines) or the file system (database, WAL
 * and free disk sizes) are refreshed by the loop at most every
 * METRICS_REFRESH_MS, between batches, never per scrape.
 */
#ifndef BROKER_METRICS_H
#define BROKER_METRICS_H

#include "broker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_KINDS      32 /* Request body cases (field numbers) below this */
#define METRICS_CODES      16 /* wire result codes (casenet.h, 0..15) */
#define METRICS_URGENCIES  5  /* proto Urgency 0..4 */
#define METRICS_BUCKETS    16 /* at most, per histogram */
#define METRICS_REFRESH_MS 5000
#define METRICS_OVERDUE_MAX                                                                        \
    100000u /* overdue rows counted per refresh (beyond: truncated, reported) */
#define METRICS_HEALTH_STALL_MS 10000 /* /healthz fails when the loop has not turned for this */
#define METRICS_READY_DIR_MS    (86400LL * 1000) /* /readyz: directory valid at least this */

enum metrics_hist_id {
    METRICS_H_LATENCY,
    METRICS_H_BATCH,
    METRICS_H_COMMIT,
    METRICS_H_CHECKPOINT,
    METRICS_H_N
};

struct metrics_hist {
    uint64_t count;
    double sum;
    uint64_t bucket[METRICS_BUCKETS]; /* not cumulative: observations <= bound i, > bound i-1 */
};

/* The upper bounds of histogram h's buckets (+Inf not included). */
const double *metrics_hist_bounds(enum metrics_hist_id h, size_t *n);

/* What changes per batch (copied whole into each snapshot). */
struct metrics_hot {
    uint64_t requests[METRICS_KINDS][METRICS_CODES];
    uint64_t rate_limited; /* requests answered RATE_LIMITED, counted or refused on receipt */
    uint64_t auth_denied;  /* handshakes ZAP refused */
    uint64_t escalations;  /* escalation notices sealed and queued */
    uint64_t batches, batches_failed;
    struct metrics_hist hist[METRICS_H_N];
    /* Attachment blobs (handlers_blob.c): chunks stored fresh by BlobPut and
     * sent by BlobGet, with their bytes; BlobPuts refused QUOTA_EXCEEDED;
     * blobs the sweeps deleted; and, as of the last whole sweep pass
     * (blobs_valid), the blobs held and their total_size. */
    uint64_t blob_chunks_up, blob_bytes_up, blob_chunks_down, blob_bytes_down;
    uint64_t blob_quota_refused, blobs_deleted;
    uint64_t blobs_stored, blob_bytes_stored;
    bool blobs_valid;
    int64_t turned_mono_ms; /* when the loop last published */
    bool store_ok;          /* the last commit succeeded */
};

struct metrics_member {
    char id[CASENET_MEMBER_ID_MAX + 1];
    uint64_t backlog;     /* queued message rows in its inbox */
    uint64_t connections; /* open connections */
};

/* What the loop refreshes every METRICS_REFRESH_MS (its own triple buffer). */
struct metrics_slow {
    bool valid; /* refreshed at least once */
    int64_t refreshed_ms;
    uint64_t db_bytes, wal_bytes, free_bytes, reserve_bytes;
    uint64_t backlog_total;
    uint64_t overdue[METRICS_URGENCIES];
    bool overdue_truncated;
    uint64_t dir_version;
    int64_t dir_expires_ms;
    uint64_t tree_size;
    int64_t head_time_ms;           /* 0: no head signed yet */
    struct metrics_member *members; /* owned by the buffer */
    size_t n_members, cap_members;
};

/* Sets up the buffers. CASENET_ENOMEM. Called once by main before the loop
 * and the admin thread start; metrics_shutdown frees them after both end. */
int metrics_init(void);
void metrics_shutdown(void);

/* Loop: counts one request of body case kind answered with wire code. */
void metrics_request(int kind, int code);
/* The dispatcher's counter hook (broker.h on_done; metrics_hook.c): kind
 * is an index into req_kinds(), code the answer's wire code. */
void metrics_on_done(void *ctx, size_t kind, int code);
/* Loop: one request refused RATE_LIMITED before reaching a handler. */
void metrics_rate_limited(void);
/* Loop (ZAP handler): one handshake refused. */
void metrics_auth_denied(void);
/* Loop: one escalation notice queued, when sent. */
void metrics_escalated_if(bool sent);
/* Loop: one BlobPut stored a new chunk of len bytes. */
void metrics_blob_chunk_uploaded(size_t len);
/* Loop: one BlobGet answered a chunk of len bytes. */
void metrics_blob_chunk_downloaded(size_t len);
/* Loop: one BlobPut refused QUOTA_EXCEEDED. */
void metrics_blob_quota_refused(void);
/* Loop: a sweep step deleted n blobs. */
void metrics_blobs_deleted(size_t n);
/* Loop: a whole sweep pass kept n blobs of bytes total_size. */
void metrics_blobs_stored(uint64_t n, uint64_t bytes);
/* Loop: the request about to be dispatched was received at recv_us
 * (metrics_now_us); a Submit's latency is observed from it at the commit. */
void metrics_request_begin(int64_t recv_us);
/* Loop: just before the batch's commit. */
void metrics_commit_begin(void);
/* Loop: the batch of n requests ended (committed when ok); observes its
 * size, commit time and the Submits' submit-to-commit latency. */
void metrics_batch_done(bool ok, size_t n);
/* Loop, outside a transaction: store_checkpoint(st, min_frames), timed
 * when it copies pages (at least min_frames wait). Failures are logged by
 * the store. */
void metrics_checkpoint(struct store *st, uint32_t min_frames);
/* A monotonic clock in microseconds. */
int64_t metrics_now_us(void);

/* Loop: true when the store-reading figures are due: every
 * METRICS_REFRESH_MS when idle (nothing waits), or twice that late anyway;
 * then the caller adds each open connection's member
 * with metrics_connection and calls metrics_refresh. */
bool metrics_refresh_due(bool idle);
void metrics_connection(const char *member);
/* Loop, outside a transaction: reads the store, the files and the
 * directory's figures and publishes them. Store errors leave the figure
 * at its last value (logged at debug level). */
void metrics_refresh(struct broker *b);
/* Loop: publishes the hot figures (after each batch and each tick). */
void metrics_publish(void);

/* Admin thread: copies the newest snapshots. slow's member array stays
 * owned by the metrics module and valid until the next metrics_read from
 * the same (single) reader thread. */
void metrics_read(struct metrics_hot *hot, struct metrics_slow *slow);

/* Renders both snapshots as Prometheus text (0.0.4) into a malloc'd
 * string. now_ms (wall) and now_mono_ms give the ages. NULL when out of
 * memory. */
char *metrics_render(const struct metrics_hot *hot, const struct metrics_slow *slow,
                     int64_t now_ms);
/* JSON bodies for /healthz and /readyz (malloc'd, NULL when out of
 * memory); *ok tells whether every check passed. */
char *metrics_health(const struct metrics_hot *hot, int64_t now_mono_ms, bool *ok);
char *metrics_ready(const struct metrics_hot *hot, const struct metrics_slow *slow, int64_t now_ms,
                    bool *ok);

#endif
