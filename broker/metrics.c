/* metrics.c - the loop's counters, their lock-free snapshots and the refreshed figures (see
 * metrics.h). */
#include "metrics.h"

#include "casenet.pb-c.h"
#include "log.h"
#include "util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DB_FILE      "casenet.db" /* the SQLite backend's file in the data directory */
#define WAL_FILE     "casenet.db-wal"
#define FRESH        4u /* in tribuf.mid: the middle slot holds a snapshot the reader has not taken */
#define OVERDUE_PAGE 256u

/* A triple buffer: the writer owns slot[back], the reader slot[front], and
 * they trade through the middle one with a single atomic exchange each. The
 * writer never waits and the reader always gets a whole snapshot. */
struct tribuf {
    atomic_uint mid;
    unsigned back, front;
};

static void tribuf_init(struct tribuf *t)
{
    atomic_init(&t->mid, 1u);
    t->back = 0;
    t->front = 2;
}

/* Writer: slot back is written; it becomes the middle one. */
static void tribuf_publish(struct tribuf *t)
{
    unsigned old = atomic_exchange_explicit(&t->mid, t->back | FRESH, memory_order_acq_rel);
    t->back = old & 3u;
}

/* Reader: takes the middle slot when it is newer than its own. */
static unsigned tribuf_take(struct tribuf *t)
{
    if (atomic_load_explicit(&t->mid, memory_order_acquire) & FRESH) {
        unsigned old = atomic_exchange_explicit(&t->mid, t->front, memory_order_acq_rel);
        t->front = old & 3u;
    }
    return t->front;
}

struct conn_count {
    char id[CASENET_MEMBER_ID_MAX + 1];
    uint64_t n;
};

static struct {
    struct metrics_hot live; /* the loop's own */
    struct metrics_hot hot[3];
    struct tribuf hot_tb;
    struct metrics_slow slow[3];
    struct tribuf slow_tb;
    int64_t next_refresh_ms;
    /* Submits of the batch in hand: when each was received (microseconds). */
    int64_t cur_recv_us;
    int64_t *lat_us;
    size_t n_lat, cap_lat;
    int64_t commit_start_us;
    struct conn_count *conns;
    size_t n_conns, cap_conns;
} M;

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
static const double duration_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                         0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};

static const struct hist_def {
    const double *bounds;
    size_t n;
} hist_defs[METRICS_H_N] = {
    [METRICS_H_LATENCY] = {latency_bounds, sizeof latency_bounds / sizeof *latency_bounds},
    [METRICS_H_BATCH] = {batch_bounds, sizeof batch_bounds / sizeof *batch_bounds},
    [METRICS_H_COMMIT] = {duration_bounds, sizeof duration_bounds / sizeof *duration_bounds},
    [METRICS_H_CHECKPOINT] = {duration_bounds, sizeof duration_bounds / sizeof *duration_bounds},
};

const double *metrics_hist_bounds(enum metrics_hist_id h, size_t *n)
{
    *n = hist_defs[h].n;
    return hist_defs[h].bounds;
}

_Static_assert(sizeof latency_bounds / sizeof *latency_bounds <= METRICS_BUCKETS, "buckets");
_Static_assert(sizeof duration_bounds / sizeof *duration_bounds <= METRICS_BUCKETS, "buckets");

static void observe(enum metrics_hist_id h, double v)
{
    struct metrics_hist *x = &M.live.hist[h];
    const struct hist_def *d = &hist_defs[h];
    x->count++;
    x->sum += v;
    for (size_t i = 0; i < d->n; i++) {
        if (v <= d->bounds[i]) {
            x->bucket[i]++;
            return;
        }
    }
}

int metrics_init(void)
{
    memset(&M, 0, sizeof M);
    tribuf_init(&M.hot_tb);
    tribuf_init(&M.slow_tb);
    M.live.store_ok = true;
    M.live.turned_mono_ms = cn_mono_ms();
    for (int i = 0; i < 3; i++)
        M.hot[i] = M.live;
    return CASENET_OK;
}

void metrics_shutdown(void)
{
    for (int i = 0; i < 3; i++)
        free(M.slow[i].members);
    free(M.lat_us);
    free(M.conns);
    memset(&M, 0, sizeof M);
}

int64_t metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void metrics_request(int kind, int code)
{
    size_t k = kind > 0 && kind < METRICS_KINDS ? (size_t)kind : 0;
    size_t c = code >= 0 && code < METRICS_CODES ? (size_t)code : CASENET_EUNAVAIL;
    M.live.requests[k][c]++;
    if (code == CASENET_ERATELIMIT)
        M.live.rate_limited++;
    if (kind == CASENET__V1__REQUEST__BODY_SUBMIT && code == CASENET_OK && M.cur_recv_us) {
        if (M.n_lat == M.cap_lat) {
            size_t cap = M.cap_lat ? 2 * M.cap_lat : 256;
            int64_t *n = realloc(M.lat_us, cap * sizeof *n);
            if (!n)
                return; /* not observed: a figure, not a failure */
            M.lat_us = n;
            M.cap_lat = cap;
        }
        M.lat_us[M.n_lat++] = M.cur_recv_us;
    }
}

void metrics_rate_limited(void)
{
    M.live.rate_limited++;
}

void metrics_auth_denied(void)
{
    M.live.auth_denied++;
}

void metrics_escalated_if(bool sent)
{
    M.live.escalations += sent;
}

void metrics_blob_chunk_uploaded(size_t len)
{
    M.live.blob_chunks_up++;
    M.live.blob_bytes_up += len;
}

void metrics_blob_chunk_downloaded(size_t len)
{
    M.live.blob_chunks_down++;
    M.live.blob_bytes_down += len;
}

void metrics_blob_quota_refused(void)
{
    M.live.blob_quota_refused++;
}

void metrics_blobs_deleted(size_t n)
{
    M.live.blobs_deleted += n;
}

void metrics_blobs_stored(uint64_t n, uint64_t bytes)
{
    M.live.blobs_stored = n;
    M.live.blob_bytes_stored = bytes;
    M.live.blobs_valid = true;
}

void metrics_request_begin(int64_t recv_us)
{
    M.cur_recv_us = recv_us;
}

void metrics_commit_begin(void)
{
    M.commit_start_us = metrics_now_us();
}

void metrics_batch_done(bool ok, size_t n)
{
    int64_t now = metrics_now_us();
    M.live.batches++;
    M.live.store_ok = ok;
    if (!ok)
        M.live.batches_failed++;
    if (n)
        observe(METRICS_H_BATCH, (double)n);
    if (ok && M.commit_start_us)
        observe(METRICS_H_COMMIT, (double)(now - M.commit_start_us) / 1e6);
    for (size_t i = 0; ok && i < M.n_lat; i++)
        observe(METRICS_H_LATENCY, (double)(now - M.lat_us[i]) / 1e6);
    M.n_lat = 0;
    M.cur_recv_us = 0;
    M.commit_start_us = 0;
}

void metrics_checkpoint(struct store *st, uint32_t min_frames)
{
    uint32_t pending = 0;
    if (store_checkpoint(st, UINT32_MAX, &pending) != CASENET_OK || pending < min_frames)
        return;
    int64_t start = metrics_now_us();
    if (store_checkpoint(st, min_frames, NULL) == CASENET_OK)
        observe(METRICS_H_CHECKPOINT, (double)(metrics_now_us() - start) / 1e6);
}

void metrics_publish(void)
{
    M.live.turned_mono_ms = cn_mono_ms();
    M.hot[M.hot_tb.back] = M.live;
    tribuf_publish(&M.hot_tb);
}

bool metrics_refresh_due(bool idle)
{
    int64_t now = cn_mono_ms();
    if (now < M.next_refresh_ms || (!idle && now < M.next_refresh_ms + METRICS_REFRESH_MS))
        return false;
    M.next_refresh_ms = now + METRICS_REFRESH_MS;
    M.n_conns = 0;
    return true;
}

void metrics_connection(const char *member)
{
    if (!member || !*member)
        return;
    for (size_t i = 0; i < M.n_conns; i++) {
        if (strcmp(M.conns[i].id, member) == 0) {
            M.conns[i].n++;
            return;
        }
    }
    if (M.n_conns == M.cap_conns) {
        size_t cap = M.cap_conns ? 2 * M.cap_conns : 64;
        struct conn_count *n = realloc(M.conns, cap * sizeof *n);
        if (!n)
            return;
        M.conns = n;
        M.cap_conns = cap;
    }
    snprintf(M.conns[M.n_conns].id, sizeof M.conns[M.n_conns].id, "%s", member);
    M.conns[M.n_conns++].n = 1;
}

static uint64_t file_bytes(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Counts the overdue deadlines by urgency, up to METRICS_OVERDUE_MAX. */
static void refresh_overdue(struct store *st, struct metrics_slow *sl)
{
    uint64_t cursor = 0, seen = 0;
    bool more = true;
    memset(sl->overdue, 0, sizeof sl->overdue);
    sl->overdue_truncated = false;
    while (more) {
        struct store_overdue *rows = NULL;
        size_t n = 0;
        if (store_overdue_list(st, cursor, OVERDUE_PAGE, &rows, &n, &more) != CASENET_OK) {
            log_event(LOG_DEBUG, "metrics_refresh", "figure", "overdue", NULL);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            int u = rows[i].row.urgency;
            sl->overdue[u >= 0 && u < METRICS_URGENCIES ? u : 0]++;
            cursor = rows[i].d.id;
        }
        store_overdue_free(rows, n);
        seen += n;
        if (more && seen >= METRICS_OVERDUE_MAX) {
            sl->overdue_truncated = true;
            return;
        }
    }
}

/* Every directory member with its backlog and its connections. */
static void refresh_members(struct broker *b, struct metrics_slow *sl)
{
    size_t count = casenet_directory_count(b->dir);
    sl->n_members = 0;
    sl->backlog_total = 0;
    if (count > sl->cap_members) {
        struct metrics_member *n = realloc(sl->members, count * sizeof *n);
        if (!n)
            return;
        sl->members = n;
        sl->cap_members = count;
    }
    for (size_t i = 0; i < count; i++) {
        casenet_member m;
        if (casenet_directory_at(b->dir, i, &m) != CASENET_OK)
            continue;
        struct metrics_member *x = &sl->members[sl->n_members++];
        memset(x, 0, sizeof *x);
        snprintf(x->id, sizeof x->id, "%s", m.id);
        uint64_t from = 0;
        if (store_inbox_backlog(b->store, m.id, "", &x->backlog, &from) != CASENET_OK)
            x->backlog = 0;
        sl->backlog_total += x->backlog;
        for (size_t k = 0; k < M.n_conns; k++)
            if (strcmp(M.conns[k].id, m.id) == 0)
                x->connections = M.conns[k].n;
    }
}

void metrics_refresh(struct broker *b)
{
    struct metrics_slow *sl = &M.slow[M.slow_tb.back];
    const char *dir = b->cfg->data_dir;
    sl->valid = true;
    sl->refreshed_ms = cn_now_ms();
    sl->db_bytes = file_bytes(dir, DB_FILE);
    sl->wal_bytes = file_bytes(dir, WAL_FILE);
    uint64_t kb = limits_disk_avail_kb(dir);
    sl->free_bytes = kb == UINT64_MAX ? UINT64_MAX : kb * 1024;
    sl->reserve_bytes = limits_disk_floor_kb(b->cfg->limits.min_free_mb, LIMITS_SUBMIT) * 1024;
    sl->dir_version = casenet_directory_version(b->dir);
    sl->dir_expires_ms = casenet_directory_expires_at(b->dir);
    if (store_audit_count(b->store, &sl->tree_size) != CASENET_OK)
        log_event(LOG_DEBUG, "metrics_refresh", "figure", "tree_size", NULL);
    struct store_head h = {0};
    int rc = store_head_latest(b->store, &h);
    sl->head_time_ms = rc == CASENET_OK ? h.time_ms : 0;
    store_head_clear(&h);
    refresh_overdue(b->store, sl);
    refresh_members(b, sl);
    tribuf_publish(&M.slow_tb);
}

void metrics_read(struct metrics_hot *hot, struct metrics_slow *slow)
{
    *hot = M.hot[tribuf_take(&M.hot_tb)];
    *slow = M.slow[tribuf_take(&M.slow_tb)];
}
