/* server_queue.c - the loop's pending queue: fair batches, Submits verified
 * ahead, and the max_pending refusal (see server_impl.h). */
#include "server_impl.h"

#include "blob_io.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* ------------------------------------------------------------ fairness */

/* The cost member already has in the batch. */
static uint32_t share_cost(const struct share *sh, size_t n_sh, const char *member)
{
    for (size_t i = 0; i < n_sh; i++)
        if (strcmp(sh[i].member, member) == 0)
            return sh[i].cost;
    return 0;
}

/* Counts one more request of member; stable is a copy of the id that lives
 * as long as the batch. */
static void share_add(struct share *sh, size_t *n_sh, const char *member, const char *stable,
                      uint32_t cost)
{
    for (size_t i = 0; i < *n_sh; i++)
        if (strcmp(sh[i].member, member) == 0) {
            sh[i].cost += cost;
            return;
        }
    sh[*n_sh].member = stable;
    sh[*n_sh].cost = cost;
    (*n_sh)++;
}

/* ------------------------------------------------------------ blob writes */

/* True when frame is a Request whose body is a BlobPut (field 40), read
 * from the wire as limits_request_peek does: its chunk is not copied. */
static bool peek_blob_put(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    while (p && p < end) {
        uint64_t key = 0, n = 0;
        for (unsigned sh = 0; p < end && sh < 64; sh += 7) {
            key |= (uint64_t)(*p & 0x7f) << sh;
            if (!(*p++ & 0x80))
                break;
        }
        unsigned wt = (unsigned)(key & 7);
        if (wt == 2 && key >> 3 == 40)
            return true;
        if (wt == 0 || wt == 2) {
            for (unsigned sh = 0; p < end && sh < 64; sh += 7) {
                n |= (uint64_t)(*p & 0x7f) << sh;
                if (!(*p++ & 0x80))
                    break;
            }
            if (wt == 2 && n > (uint64_t)(end - p))
                return false;
            p += wt == 2 ? n : 0;
        } else if ((wt == 1 || wt == 5) && (size_t)(end - p) >= (wt == 1 ? 8u : 4u)) {
            p += wt == 1 ? 8 : 4;
        } else {
            return false;
        }
    }
    return false;
}

/* True when one more BlobPut of member may go to the writer: counts those
 * with it and those in the batch on their way to it. */
static bool blob_room(const struct server *s, const char *member)
{
    size_t all = s->n_writing, mine = 0;
    for (size_t i = 0; i < BLOB_WRITES_MAX; i++)
        mine += s->writing_used[i] && strcmp(s->writing[i].member, member) == 0;
    for (size_t i = 0; i < s->n_items; i++) {
        const struct item *it = &s->items[i];
        if (!it->blob_put)
            continue;
        all++;
        mine += strcmp(it->member, member) == 0;
    }
    return all < BLOB_WRITES_MAX && mine < BLOB_WRITES_PER_MEMBER;
}

void server_blob_hand_over(struct server *s, struct item *it, struct batch *bt)
{
    struct blob_job *j = bt->blob_job;
    bt->blob_job = NULL;
    size_t slot = 0;
    while (slot < BLOB_WRITES_MAX && s->writing_used[slot])
        slot++;
    if (slot == BLOB_WRITES_MAX)
        abort(); /* server_fair_fill keeps BlobPuts within BLOB_WRITES_MAX */
    struct item *w = &s->writing[slot];
    *w = *it;
    w->request = (casenet_buf){0};
    w->reply = (casenet_buf){0};
    w->job = NULL;
    s->writing_used[slot] = true;
    s->n_writing++;
    it->answered = true; /* answered when written */
    /* It waits again, for its writing: counted in its member's max_pending. */
    (void)limits_pending(s->b->limits, it->member, 1);
    j->slot = slot;
    blob_io_submit(s->bio, j);
}

void server_blob_collect(struct server *s)
{
    while (s->n_items < s->b->cfg->limits.batch_max) {
        struct blob_job *j = blob_io_take(s->bio);
        if (!j)
            return;
        struct item *it = &s->items[s->n_items++];
        *it = s->writing[j->slot];
        it->blob_put = false;
        it->blob = j;
        s->writing_used[j->slot] = false;
        s->n_writing--;
        (void)limits_pending(s->b->limits, it->member, -1);
    }
}

/* ------------------------------------------------------------ fair batches */

/* Moves requests from pending into the batch, in arrival order, weighed by
 * cost (limits_request_peek): each member gets fair_share units of the
 * batch, so that a member flooding the broker, with cheap requests or dear
 * ones, delays the others by at most its share of each batch (its excess
 * waits, in order, for later batches; ROUTER itself already queues fairly
 * between connections). A request dearer than the share is taken when it is
 * its member's first in the batch and the batch's cost stays within
 * batch_max units (or the batch is empty). When one member alone has
 * requests waiting, the batch is filled with them up to batch_max units
 * (group commit for a busy single member). */
void server_fair_fill(struct server *s, struct share *sh)
{
    const struct broker_limits *lim = &s->b->cfg->limits;
    size_t n_sh = 0, keep = 0;
    uint64_t total = 0;
    s->n_held = 0;
    for (size_t i = 0; i < s->n_pending; i++) {
        struct item *it = &s->pending[i];
        uint32_t used = share_cost(sh, n_sh, it->member);
        bool room = !it->blob_put || blob_room(s, it->member);
        s->n_held += !room;
        bool take = room && s->n_items < lim->batch_max &&
                    (used + it->cost <= lim->fair_share ||
                     (used == 0 && (total == 0 || total + it->cost <= lim->batch_max)));
        if (take) {
            (void)limits_pending(s->b->limits, it->member, -1);
            s->items[s->n_items] = *it;
            /* the share names the batch's copy: pending is compacted below */
            share_add(sh, &n_sh, it->member, s->items[s->n_items].member, it->cost);
            total += it->cost;
            s->n_items++;
        } else {
            if (keep != i)
                s->pending[keep] = *it;
            keep++;
        }
    }
    s->n_pending = keep;
    if (n_sh == 1) { /* a single member: no one to be fair to */
        size_t k = 0;
        for (size_t i = 0; i < s->n_pending; i++) {
            if (k == 0 && s->n_items < lim->batch_max &&
                total + s->pending[i].cost <= lim->batch_max &&
                (!s->pending[i].blob_put || blob_room(s, s->pending[i].member))) {
                total += s->pending[i].cost;
                (void)limits_pending(s->b->limits, s->pending[i].member, -1);
                s->items[s->n_items++] = s->pending[i];
            } else {
                s->pending[k++] = s->pending[i];
            }
        }
        s->n_pending = k;
    }
}

/* ------------------------------------------------------------ verification */

/* True when member's Submit bucket will refuse one more: only as many of a
 * member's waiting Submits as it has tokens are verified ahead, so that a
 * flood answered RATE_LIMITED stays cheap. The handler still decides; one
 * it admits after all (the bucket refilled meanwhile) verifies inline. */
static bool bucket_will_refuse(struct server *s, const char *member)
{
    uint32_t tokens = limits_tokens(s->b->limits, LIMITS_SUBMIT, member, cn_mono_ms());
    if (tokens == UINT32_MAX)
        return false; /* no bucket: every Submit is admitted */
    uint32_t ahead = 0;
    for (size_t k = 0; k < s->n_pending && ahead < tokens; k++)
        ahead += s->pending[k].job && strcmp(s->pending[k].member, member) == 0;
    return ahead >= tokens;
}

/* Hands a request just received (not yet counted in pending) to the
 * workers when it is a Submit they should check: its envelope is verified
 * while the loop works on earlier batches. With no worker the handler
 * verifies inline, as it would anyway. */
static void verify_ahead(struct server *s, struct item *it)
{
    if (it->answered || it->blob_put || s->n_job_free == 0 || verify_pool_threads(s->vpool) == 0)
        return; /* a BlobPut is no Submit: not unpacked (and its chunk copied) for nothing */
    struct verify_job *j = s->job_free[--s->n_job_free];
    if (!verify_job_prepare(j, it->request.data, it->request.len,
                            s->b->cfg->limits.max_envelope_bytes) ||
        bucket_will_refuse(s, it->member)) {
        verify_job_clear(j);
        s->job_free[s->n_job_free++] = j;
        return;
    }
    it->job = j;
    verify_pool_submit(s->vpool, s->b->dir, j);
}

/* Ends an item's check (cancelled if no worker took it yet) and frees its
 * slot. */
void server_verify_done(struct server *s, struct item *it)
{
    if (!it->job)
        return;
    verify_pool_cancel(s->vpool, it->job);
    verify_job_clear(it->job);
    s->job_free[s->n_job_free++] = it->job;
    it->job = NULL;
}

/* Answers a request at once, before any batch (nothing was stored), with
 * RATE_LIMITED: its member has max_pending requests waiting already. The
 * shared pending queue then always has room for the other members. */
static void refuse_pending(struct server *s, struct item *it, uint64_t request_id)
{
    char msg[200];
    snprintf(msg, sizeof msg,
             "%u requests of %s wait for the broker already; wait for their answers, then "
             "resend",
             s->b->cfg->limits.max_pending, it->member);
    casenet_buf reply = {0};
    metrics_rate_limited();
    if (req_error_reply(request_id, CASENET_ERATELIMIT, msg, PENDING_RETRY_MS, 0, &reply) ==
        CASENET_OK) {
        int e = server_send_to(s, it->rid, it->rid_len, reply.data, reply.len);
        if (e)
            log_event(LOG_DEBUG, "reply_dropped", "member", it->member, "zmq_error",
                      zmq_strerror(e), NULL);
    }
    log_event(LOG_DEBUG, "rejected", "member", it->member, "error", "RATE_LIMITED", "detail", msg,
              NULL);
    casenet_buf_free(&reply);
    casenet_buf_free(&it->request);
}

/* Receives every ready request into pending (bounded), each Submit handed
 * to the workers at once; a member's requests beyond max_pending are
 * refused on receipt. */
void server_receive_ready(struct server *s)
{
    while (s->n_pending < s->cap_pending) {
        struct item *it = &s->pending[s->n_pending];
        int r = server_recv_one(s, it);
        if (r == 0)
            break;
        if (r < 0) {
            log_event(LOG_WARN, "recv", "zmq_error", zmq_strerror(errno), NULL);
            break;
        }
        uint64_t request_id = 0;
        it->cost = 1;
        it->recv_us = metrics_now_us();
        if (!it->answered) {
            limits_request_peek(it->request.data, it->request.len, &it->cost, &request_id);
            it->blob_put = peek_blob_put(it->request.data, it->request.len);
        }
        if (!it->answered &&
            limits_pending(s->b->limits, it->member, 0) >= s->b->cfg->limits.max_pending) {
            refuse_pending(s, it, request_id);
            continue;
        }
        (void)limits_pending(s->b->limits, it->member, 1);
        verify_ahead(s, it);
        s->n_pending++;
    }
}

/* Swaps in a directory committed by the batch. The checks made against the
 * old one are made again against the new one (a member revoked there must
 * not pass), and the old one is freed only once no worker reads it. */
