/* server.c - the broker loop: poll, drain a batch, commit once, reply, push (see server.h). */
#include "server.h"

#include "audit.h"
#include "audit_tree.h"
#include "blob_io.h"
#include "blobs.h"
#include "casenet.pb-c.h"
#include "deadlines.h"
#include "directory_impl.h"
#include "handlers.h"
#include "handlers_blob.h"
#include "keys_impl.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "receipt_impl.h"
#include "request.h"
#include "server_impl.h"
#include "util.h"
#include "zap.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* Draft options of libzmq 4.3 (present in the library, absent from the
 * header unless ZMQ_BUILD_DRAFT_API). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

/* ------------------------------------------------------------ open / close */

static int setopt_int(void *sock, int opt, int v, const char *name)
{
    if (zmq_setsockopt(sock, opt, &v, sizeof v) != 0) {
        log_event(LOG_ERROR, "socket_option", "option", name, "zmq_error", zmq_strerror(errno),
                  NULL);
        return CASENET_EIO;
    }
    return CASENET_OK;
}

int server_open(struct broker *b, int sigfd, struct server **out)
{
    int rc = CASENET_EIO;
    struct server *s = calloc(1, sizeof *s);
    if (!s)
        return CASENET_ENOMEM;
    s->b = b;
    s->sigfd = sigfd;
    s->items = calloc(b->cfg->limits.batch_max, sizeof *s->items);
    s->cap_pending = b->cfg->limits.batch_max;
    s->pending = calloc(s->cap_pending, sizeof *s->pending);
    size_t n_slots = (size_t)b->cfg->limits.batch_max + s->cap_pending;
    s->job_slots = calloc(n_slots, sizeof *s->job_slots);
    s->job_free = calloc(n_slots, sizeof *s->job_free);
    s->ctx = zmq_ctx_new();
    if (!s->items || !s->job_slots || !s->job_free || !s->pending || !s->ctx) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < n_slots; i++)
        s->job_free[s->n_job_free++] = &s->job_slots[n_slots - 1 - i];
    if ((rc = verify_pool_new(b->cfg->limits.verify_threads, &s->vpool)) != CASENET_OK) {
        log_event(LOG_ERROR, "verify_pool", "error", casenet_errname(rc), NULL);
        goto cleanup;
    }
    if ((rc = blob_io_new(b->cfg->data_dir, &s->bio)) != CASENET_OK) {
        log_event(LOG_ERROR, "blob_writer", "error", casenet_errname(rc), NULL);
        goto cleanup;
    }
    /* libzmq numbers the routing ids it generates from rand(): seeded at
     * random, a peer cannot announce (ZMQ_ROUTING_ID) the id the ROUTER
     * would generate next, which would abort libzmq on an assertion. */
    srand(randombytes_random());
    /* The ZAP handler first: libzmq consults it during every handshake. */
    if ((rc = zap_open(s->ctx, &s->zap)) != CASENET_OK)
        goto cleanup;
    rc = CASENET_EIO;
    s->router = zmq_socket(s->ctx, ZMQ_ROUTER);
    if (!s->router)
        goto cleanup;
    int64_t maxmsg = (int64_t)b->cfg->limits.max_envelope_bytes + BROKER_FRAME_MARGIN;
    if (maxmsg < (int64_t)BLOBS_CHUNK_MAX + BROKER_FRAME_MARGIN) /* a BlobPut */
        maxmsg = (int64_t)BLOBS_CHUNK_MAX + BROKER_FRAME_MARGIN;
    if (setopt_int(s->router, ZMQ_CURVE_SERVER, 1, "CURVE_SERVER") != CASENET_OK ||
        zmq_setsockopt(s->router, ZMQ_CURVE_SECRETKEY, casenet_keys_curve_sk(b->keys),
                       CASENET_CURVE_KEY_BYTES) != 0 ||
        zmq_setsockopt(s->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0 ||
        setopt_int(s->router, ZMQ_ZAP_ENFORCE_DOMAIN, 1, "ZAP_ENFORCE_DOMAIN") != CASENET_OK ||
        setopt_int(s->router, ZMQ_ROUTER_MANDATORY, 1, "ROUTER_MANDATORY") != CASENET_OK ||
        zmq_setsockopt(s->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        setopt_int(s->router, ZMQ_HEARTBEAT_IVL, HEARTBEAT_IVL_MS, "HEARTBEAT_IVL") != CASENET_OK ||
        setopt_int(s->router, ZMQ_HEARTBEAT_TIMEOUT, HEARTBEAT_TMO_MS, "HEARTBEAT_TIMEOUT") !=
            CASENET_OK ||
        setopt_int(s->router, ZMQ_HEARTBEAT_TTL, HEARTBEAT_TTL_MS, "HEARTBEAT_TTL") != CASENET_OK ||
        setopt_int(s->router, ZMQ_HANDSHAKE_IVL, HANDSHAKE_IVL_MS, "HANDSHAKE_IVL") != CASENET_OK ||
        setopt_int(s->router, ZMQ_SNDHWM, SND_HWM, "SNDHWM") != CASENET_OK ||
        setopt_int(s->router, ZMQ_RCVHWM, RCV_HWM, "RCVHWM") != CASENET_OK) {
        log_event(LOG_ERROR, "socket_option", "zmq_error", zmq_strerror(errno), NULL);
        goto cleanup;
    }
    if (zmq_socket_monitor(s->router, MONITOR_ENDPOINT,
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
        !(s->monitor = zmq_socket(s->ctx, ZMQ_PAIR)) ||
        setopt_int(s->monitor, ZMQ_LINGER, 0, "LINGER") != CASENET_OK ||
        zmq_connect(s->monitor, MONITOR_ENDPOINT) != 0) {
        log_event(LOG_ERROR, "monitor", "zmq_error", zmq_strerror(errno), NULL);
        goto cleanup;
    }
    if (zmq_bind(s->router, b->cfg->listen) != 0) {
        log_event(LOG_ERROR, "bind", "endpoint", b->cfg->listen, "zmq_error", zmq_strerror(errno),
                  NULL);
        goto cleanup;
    }
    *out = s;
    s = NULL;
    rc = CASENET_OK;
cleanup:
    server_close(s);
    return rc;
}

void server_close(struct server *s)
{
    if (!s)
        return;
    if (s->router) {
        /* A bounded linger, not 0: the replies of the last batch are queued
         * and would otherwise be discarded on close. */
        (void)setopt_int(s->router, ZMQ_LINGER, CLOSE_LINGER_MS, "LINGER");
        (void)zmq_socket_monitor(s->router, NULL, 0);
        zmq_close(s->router);
    }
    if (s->monitor)
        zmq_close(s->monitor);
    zap_close(s->zap);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    /* The workers first: then no job is in use. */
    verify_pool_free(s->vpool);
    blob_io_free(s->bio);
    for (size_t i = 0; i < s->n_items; i++) {
        casenet_buf_free(&s->items[i].reply);
        casenet_buf_free(&s->items[i].request);
        verify_job_clear(s->items[i].job);
        blob_job_free(s->items[i].blob);
    }
    free(s->items);
    for (size_t i = 0; i < s->n_pending; i++) {
        casenet_buf_free(&s->pending[i].reply);
        casenet_buf_free(&s->pending[i].request);
        verify_job_clear(s->pending[i].job);
    }
    free(s->pending);
    free(s->job_slots);
    free(s->job_free);
    free(s->subs);
    free(s->conns);
    free(s);
}

/* ------------------------------------------------------------ batch */

/* The request id of an item: from its reply when the handler ran, else
 * from its request (0 when neither parses). Clients match answers by it, so
 * an UNAVAILABLE for a failed batch must carry it. */
static uint64_t item_request_id(const struct item *it)
{
    uint64_t id = 0;
    if (it->blob) {
        id = it->blob->request_id;
    } else if (it->reply.data) {
        Casenet__V1__Response *r =
            casenet__v1__response__unpack(NULL, it->reply.len, it->reply.data);
        if (r) {
            id = r->request_id;
            casenet__v1__response__free_unpacked(r, NULL);
        }
    } else if (it->request.data) {
        Casenet__V1__Request *r =
            casenet__v1__request__unpack(NULL, it->request.len, it->request.data);
        if (r) {
            id = r->request_id;
            casenet__v1__request__free_unpacked(r, NULL);
        }
    }
    return id;
}

static void answer_all_unavailable(struct server *s)
{
    for (size_t i = 0; i < s->n_items; i++) {
        struct item *it = &s->items[i];
        if (it->answered)
            continue;
        uint64_t id = item_request_id(it);
        casenet_buf_free(&it->reply);
        it->subscribe = false;
        if (req_error_reply(id, CASENET_EUNAVAIL,
                            "the broker could not commit this batch; nothing was stored; "
                            "retry later",
                            0, 0, &it->reply) != CASENET_OK)
            it->reply.len = 0;
    }
}

static void reload_directory(struct server *s, struct batch *bt)
{
    struct broker *b = s->b;
    casenet_buf buf = {0};
    char msg[320] = "";
    uint64_t version = 0;
    int rc = cn_read_file(b->cfg->directory_path, DIRECTORY_MAX, &buf);
    if (rc != CASENET_OK) {
        log_event(LOG_ERROR, "directory_reload", "path", b->cfg->directory_path, "error",
                  casenet_errname(rc), NULL);
        return;
    }
    if (store_savepoint(b->store) != CASENET_OK) {
        bt->store_failed = true;
        casenet_buf_free(&buf);
        return;
    }
    rc = handlers_directory_accept(b, bt, buf.data, buf.len, "", &version, msg, sizeof msg);
    if (rc == CASENET_OK) {
        if (store_release(b->store) != CASENET_OK)
            bt->store_failed = true;
    } else {
        store_rollback_to(b->store);
        log_event(LOG_WARN, "directory_reload_refused", "path", b->cfg->directory_path, "error",
                  casenet_errname(req_wire_code(rc)), "msg", msg, NULL);
    }
    casenet_buf_free(&buf);
}

/* store_commit, counting the pages the commit appended to the store's log
 * (the difference of its pending count: a backstop checkpoint inside the
 * commit makes it err low, rarely). */
static int commit_counted(struct server *s)
{
    struct store *st = s->b->store;
    uint32_t before = 0, after = 0;
    (void)store_checkpoint(st, UINT32_MAX, &before);
    int rc = store_commit(st);
    if (rc == CASENET_OK && store_checkpoint(st, UINT32_MAX, &after) == CASENET_OK &&
        after != before) {
        s->commits++;
        s->log_pages += after > before ? after - before : after;
    }
    return rc;
}

/* Runs one pass of due deadlines in its own transaction; true when the
 * pass was full (more may be due). */
static bool run_deadlines(struct server *s)
{
    struct broker *b = s->b;
    struct store *st = b->store;
    struct batch bt = {0};
    size_t settled = 0;
    if (store_begin(st) != CASENET_OK)
        return false;
    int rc = deadlines_run(b, &bt, cn_now_ms(), DEADLINES_PER_TICK, &settled);
    if (rc != CASENET_OK || bt.store_failed) {
        store_rollback(st);
        log_event(LOG_ERROR, "deadlines_failed", "error", casenet_errname(rc), "msg",
                  "rolled back; retried at the next tick", NULL);
        batch_clear(&bt);
        return false;
    }
    if (commit_counted(s) != CASENET_OK) {
        log_event(LOG_ERROR, "deadlines_failed", "error", "UNAVAILABLE", "msg",
                  "commit failed; retried at the next tick", NULL);
        batch_clear(&bt);
        return false;
    }
    server_drain_monitor(s);
    server_push_notices(s, &bt);
    batch_clear(&bt);
    return settled == DEADLINES_PER_TICK;
}

static void swap_directory(struct server *s, casenet_directory *dir)
{
    struct broker *b = s->b;
    for (size_t i = 0; i < s->n_pending; i++) {
        if (s->pending[i].job) {
            verify_pool_cancel(s->vpool, s->pending[i].job);
            verify_job_reset(s->pending[i].job);
        }
    }
    casenet_directory_free(b->dir);
    b->dir = dir;
    for (size_t i = 0; i < s->n_pending; i++)
        if (s->pending[i].job)
            verify_pool_submit(s->vpool, b->dir, s->pending[i].job);
}

/* ------------------------------------------------------------ receipt signatures */

struct sign_ctx {
    const struct batch *bt;
    const uint8_t *sk;
};

/* Signs deferred receipt i (on a worker, or the loop at the end). */
static void sign_one(void *arg, size_t i)
{
    const struct sign_ctx *sc = arg;
    struct batch_sig *g = &sc->bt->sigs[i];
    cn_submit_receipt_sign_pae(sc->sk, g->pae.data, g->pae.len, g->sig);
}

/* Writes the batch's signatures, all signed, into their messages rows and
 * replies. CASENET_EUNAVAIL (the batch rolls back) or CASENET_ENOMEM. */
static int write_sigs(struct store *st, struct batch *bt)
{
    struct store_receipt_sig *rows = malloc(bt->n_sigs * sizeof *rows);
    if (!rows)
        return CASENET_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < bt->n_sigs; i++) {
        memcpy(bt->sigs[i].reply_sig, bt->sigs[i].sig, CASENET_SIGNATURE_BYTES);
        if (bt->sigs[i].rowid)
            rows[n++] = (struct store_receipt_sig){bt->sigs[i].rowid, bt->sigs[i].sig};
    }
    int rc = n ? store_message_receipt_sigs(st, rows, n) : CASENET_OK;
    free(rows);
    return rc;
}

/* Handles the batch in one transaction; replies are sent only after commit. */
static void process_batch(struct server *s)
{
    struct broker *b = s->b;
    struct store *st = b->store;
    struct batch bt = {0};
    int64_t now = cn_now_ms();
    /* Room for a receipt signature per request (a Submit defers at most
     * one): the workers sign each as its handler returns, beside the loop;
     * without room the handlers sign inline. */
    if (s->n_items && (bt.sigs = calloc(s->n_items, sizeof *bt.sigs)))
        bt.cap_sigs = s->n_items;
    bt.blob_io = s->bio;
    struct sign_ctx sc = {.bt = &bt, .sk = cn_keys_sign_sk(b->keys, NULL)};
    verify_pool_for_begin(s->vpool, sign_one, &sc);
    bool ok = store_begin(st) == CASENET_OK;
    if (ok && zap_has_pending(s->zap) && zap_flush_audit(s->zap, st, now) == CASENET_EUNAVAIL)
        bt.store_failed = true;
    if (ok && s->reload) {
        s->reload = false;
        reload_directory(s, &bt);
        notify_reloading(0);
    }
    for (size_t i = 0; ok && i < s->n_items; i++) {
        struct item *it = &s->items[i];
        if (it->answered)
            continue;
        if (it->blob) { /* a BlobPut whose chunk is written now */
            if (handlers_blob_put_done(b, &bt, it->blob, &it->reply) != CASENET_OK &&
                !it->reply.data)
                (void)req_error_reply(it->blob->request_id, CASENET_EUNAVAIL,
                                      "out of memory; retry later", 0, 0, &it->reply);
            continue;
        }
        /* Its envelope check, done by a worker meanwhile (or now). */
        if (it->job) {
            verify_pool_wait(s->vpool, it->job);
            bt.pre = &it->job->result;
        }
        metrics_request_begin(it->recv_us);
        /* Room is kept for the BlobPuts in the batch (server_fair_fill); a
         * frame that hid its kind from the peek is written inline. */
        bt.blob_room = s->n_writing < BLOB_WRITES_MAX;
        if (req_dispatch(b, &bt, it->member, it->request.data, it->request.len, &it->reply,
                         &it->subscribe) != CASENET_OK &&
            !it->reply.data)
            (void)req_error_reply(0, CASENET_EUNAVAIL, "out of memory; retry later", 0, 0,
                                  &it->reply);
        bt.pre = NULL;
        casenet_buf_free(&it->request);
        if (bt.blob_job)
            server_blob_hand_over(s, it, &bt); /* answered once written */
        verify_pool_for_grow(s->vpool, bt.n_sigs);
    }
    /* Every receipt signed before the commit that stores it. */
    verify_pool_for_end(s->vpool);
    if (ok && !bt.store_failed && bt.n_sigs && write_sigs(st, &bt) != CASENET_OK) {
        log_event(LOG_ERROR, "receipt_sign", "error", "UNAVAILABLE", "msg",
                  "could not store the receipts' signatures", NULL);
        bt.store_failed = true;
    }
    if (ok && !bt.store_failed && batch_flush_bytes(&bt, st) != CASENET_OK)
        bt.store_failed = true; /* logged by the store */
    for (size_t i = 0; i < s->n_items; i++)
        server_verify_done(s, &s->items[i]);
    /* The requests that arrived meanwhile go to the workers now: they are
     * verified during this batch's commit. */
    server_receive_ready(s);
    if (ok && bt.store_failed) {
        store_rollback(st);
        ok = false;
    }
    metrics_commit_begin();
    if (ok && commit_counted(s) != CASENET_OK)
        ok = false;
    metrics_batch_done(ok, s->n_items);
    if (!ok) {
        log_event(LOG_ERROR, "batch_failed", "requests", log_u64(s->n_items), "msg",
                  "rolled back; every request answered UNAVAILABLE", NULL);
        answer_all_unavailable(s);
        batch_clear(&bt);
    } else if (bt.new_dir) {
        swap_directory(s, bt.new_dir);
        bt.new_dir = NULL;
        log_event(LOG_INFO, "directory_swapped", "version",
                  log_u64(casenet_directory_version(b->dir)), NULL);
        /* Subscriptions of members no longer active end here. */
        for (size_t i = 0; i < s->n_subs;) {
            if (!broker_member_active(b, s->subs[i].member))
                server_sub_drop(s, s->subs[i].rid, s->subs[i].rid_len, "member not active");
            else
                i++;
        }
    }
    /* Replies, then pushes: only after the commit. Connection events first,
     * so that no push follows a subscription whose connection is gone. */
    server_drain_monitor(s);
    for (size_t i = 0; i < s->n_items; i++) {
        struct item *it = &s->items[i];
        size_t rid_len = it->rid_len;
        if (it->reply.data) {
            int e = server_send_to(s, it->rid, rid_len, it->reply.data, it->reply.len);
            if (e)
                log_event(LOG_WARN, "reply_dropped", "member", it->member, "zmq_error",
                          zmq_strerror(e), NULL);
            else if (ok && it->subscribe)
                server_sub_add(s, it->rid, rid_len, it->member, it->fd);
        }
        casenet_buf_free(&it->reply);
        casenet_buf_free(&it->request);
        blob_job_free(it->blob);
        it->blob = NULL;
    }
    server_push_notices(s, &bt);
    s->served += s->n_items;
    s->batches++;
    s->n_items = 0;
    batch_clear(&bt);
}

/* ------------------------------------------------------------ loop */

static void read_signals(struct server *s)
{
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            log_event(LOG_INFO, "signal", "signal", "HUP", "action", "reload directory", NULL);
            s->reload = true;
            notify_reloading(1);
        } else {
            log_event(LOG_INFO, "signal", "signal", si.ssi_signo == SIGINT ? "INT" : "TERM",
                      "action", "stop", NULL);
            notify_stopping();
            s->stopping = true;
        }
    }
}

/* Before the loop blocks in poll (*wait > 0): checkpoints the log if
 * enough pages wait and no request is ready, or shortens *wait so that a few
 * pages are copied after a quiet moment. Returns true when poll timing out
 * should checkpoint. */
static bool checkpoint_when_idle(struct server *s, zmq_pollitem_t *items, int n, long *wait)
{
    struct store *st = s->b->store;
    uint32_t pending = 0;
    if (*wait <= 0 || store_checkpoint(st, UINT32_MAX, &pending) != CASENET_OK || pending == 0)
        return false;
    if (pending >= CKPT_IDLE_FRAMES) {
        int r = zmq_poll(items, n, 0);
        if (r == 0) {
            metrics_checkpoint(st, 1); /* logs its own failure */
            return false;
        }
        if (r > 0)
            *wait = 0; /* something is ready: no wait */
        return false;
    }
    if (*wait > CKPT_QUIET_MS)
        *wait = CKPT_QUIET_MS;
    return true;
}

/* After each turn of the loop: kicks the watchdog and hands the figures to
 * the admin listener; the store-read ones every METRICS_REFRESH_MS, when
 * nothing waits (or when overdue). */
static void publish_metrics(struct server *s)
{
    notify_watchdog(cn_mono_ms());
    if (metrics_refresh_due(s->n_pending == 0 && s->n_items == 0)) {
        for (size_t i = 0; i < s->cap_conns; i++)
            if (s->conns[i].open)
                metrics_connection(s->conns[i].member);
        metrics_refresh(s->b);
    }
    metrics_publish();
}

/* batch_window_us: the loop came round with no request waiting and found
 * new ones (low load: under load, requests wait while a batch commits);
 * wait that long for more to join their batch (their envelopes are
 * verified meanwhile). */
static void batch_window(struct server *s)
{
    uint32_t us = s->b->cfg->limits.batch_window_us;
    if (us == 0 || s->n_pending >= s->b->cfg->limits.batch_max)
        return;
    struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    server_receive_ready(s);
}

/* Renews the store's lease (store_lease); true when another broker took it
 * over: this one must stop without writing (its commits would fail). A store
 * that cannot be reached keeps its lease until it expires: the commits'
 * fencing check then refuses. */
static bool renew_lease(struct server *s)
{
    bool active = false;
    if (store_lease(s->b->store, STORE_LEASE_TTL_MS, &active) != CASENET_ECONFLICT)
        return false;
    s->stopping = true;
    s->lease_lost = true;
    return true;
}

int server_run(struct server *s)
{
    struct broker *b = s->b;
    int64_t next_tick = cn_mono_ms() + TICK_MS;
    int64_t next_stats = cn_mono_ms() + STATS_INTERVAL_MS;
    int64_t next_expiry = cn_mono_ms() + EXPIRY_CHECK_MS;
    int64_t next_head = cn_mono_ms() + AUDIT_HEAD_INTERVAL_MS;
    struct share *shares = calloc(b->cfg->limits.batch_max, sizeof *shares);
    if (!shares)
        return CASENET_ENOMEM;
    log_event(LOG_INFO, "listening", "endpoint", b->cfg->listen, "broker", b->broker_id,
              "directory_version", log_u64(casenet_directory_version(b->dir)), NULL);
    while (!s->stopping) {
        zmq_pollitem_t items[5] = {
            {.socket = s->router, .events = ZMQ_POLLIN},
            {.socket = zap_socket(s->zap), .events = ZMQ_POLLIN},
            {.socket = s->monitor, .events = ZMQ_POLLIN},
            {.fd = blob_io_fd(s->bio), .events = ZMQ_POLLIN},
            {.fd = s->sigfd, .events = ZMQ_POLLIN},
        };
        int n_items = s->sigfd >= 0 ? 5 : 4;
        int64_t until_tick = next_tick - cn_mono_ms();
        /* Pending BlobPuts held for the writer's room wait for it (its
         * descriptor), not in a busy loop. */
        long wait = until_tick < 0 || s->n_pending > s->n_held ? 0 : (long)until_tick;
        bool quiet = checkpoint_when_idle(s, items, n_items, &wait);
        int ready = zmq_poll(items, n_items, wait);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            log_event(LOG_ERROR, "poll", "zmq_error", zmq_strerror(errno), NULL);
            free(shares);
            return CASENET_EIO;
        }
        if (ready == 0 && quiet)
            metrics_checkpoint(b->store, 1);
        if (items[2].revents & ZMQ_POLLIN)
            server_drain_monitor(s);
        if (items[1].revents & ZMQ_POLLIN)
            (void)zap_handle(s->zap, b->dir, server_admit_connection, s);
        if (n_items == 5 && (items[4].revents & ZMQ_POLLIN))
            read_signals(s);
        /* Drain every ready request into pending (bounded), then take a
         * fair batch from it. */
        bool idle = s->n_pending == 0;
        server_receive_ready(s);
        if (idle && s->n_pending > 0)
            batch_window(s);
        server_blob_collect(s); /* answered first: their chunks are durable */
        server_fair_fill(s, shares);
        if (s->n_items > 0 || zap_has_pending(s->zap) || s->reload)
            process_batch(s);
        int64_t now = cn_mono_ms();
        if (now >= next_tick) {
            /* The periodic timer: tree heads, deadlines and retention will
             * hang here, each throttled to its own period. */
            next_tick = now + TICK_MS;
            if (renew_lease(s))
                break;
            zap_summarize(s->zap, now, false); /* written by the next batch */
            if (now >= next_head) {
                next_head = now + AUDIT_HEAD_INTERVAL_MS;
                (void)audit_tree_sign_head(b); /* logs its own failure; retried next time */
            }
            if (run_deadlines(s))
                next_tick = now; /* a full pass: go on after the next batch */
            if (s->n_pending == 0)
                handlers_blob_idle(b, now, s->bio); /* finished and stale blobs deleted */
            if (now >= next_expiry) {
                next_expiry = now + EXPIRY_CHECK_MS;
                broker_warn_expiry(b->dir, false);
            }
            /* Every tick (debug): casenet-bench reads the counts at the
             * edges of its measured window. */
            log_event(LOG_DEBUG, "stats", "requests", log_u64(s->served), "batches",
                      log_u64(s->batches), "commits", log_u64(s->commits), "log_pages",
                      log_u64(s->log_pages), "subscriptions", log_u64(s->n_subs), NULL);
            if (now >= next_stats) {
                next_stats = now + STATS_INTERVAL_MS;
                /* Memory freed after a backlog (queued requests) goes back
                 * to the system: resident memory comes down again. */
                (void)malloc_trim(0);
            }
        }
        /* Between batches, after their replies: the log stays bounded
         * however busy the loop is. */
        metrics_checkpoint(b->store, CKPT_BUSY_FRAMES);
        publish_metrics(s);
    }
    free(shares);
    if (s->lease_lost)
        return CASENET_EUNAVAIL; /* the active broker now records what happens */
    /* Stopping: requests still pending get no answer (their clients
     * resend to the next broker process). Record the stop. */
    struct store *st = b->store;
    zap_summarize(s->zap, cn_mono_ms(), true);
    int rc = store_begin(st);
    if (rc == CASENET_OK) {
        if (zap_has_pending(s->zap))
            rc = zap_flush_audit(s->zap, st, cn_now_ms());
        if (rc == CASENET_OK)
            rc = audit_broker(st, cn_now_ms(), CASENET__V1__AUDIT_KIND__AUDIT_KIND_BROKER_STOP,
                              casenet_directory_version(b->dir), "signal", NULL);
        if (rc == CASENET_OK)
            rc = store_commit(st);
        else
            store_rollback(st);
    }
    /* The last head covers everything, BROKER_STOP included. */
    if (rc == CASENET_OK)
        rc = audit_tree_sign_head(b);
    log_event(rc == CASENET_OK ? LOG_INFO : LOG_ERROR, "stopped", "requests", log_u64(s->served),
              "batches", log_u64(s->batches), "error",
              rc == CASENET_OK ? NULL : casenet_errname(rc), NULL);
    return CASENET_OK;
}
