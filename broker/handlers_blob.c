/* handlers_blob.c - BlobPut, BlobStatus, BlobGet and what Submit asks of
 * blobs (PROTOCOL.md §8.2; see handlers_blob.h). */
#include "handlers_blob.h"

#include "audit.h"
#include "blob_io.h"
#include "blob_tally.h"
#include "blobs.h"
#include "hex.h"
#include "inbox_row.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_BLOB_STORED  CASENET__V1__AUDIT_KIND__AUDIT_KIND_BLOB_STORED
#define AUDIT_BLOB_FETCHED CASENET__V1__AUDIT_KIND__AUDIT_KIND_BLOB_FETCHED
#define MIB                (1024ull * 1024ull)
#define BLOB_RETIRE_MS     5000  /* how often the idle sweep starts a pass */
#define BLOB_SWEEP_STEP    128   /* blobs one step of the pass visits at most */
#define BLOB_SWEEP_STEP_US 20000 /* and the time after which it stops */

/* The idle sweep's pass and what it counted (the loop's thread only). */
static struct {
    struct blobs_pass pass;
    struct blob_tally tally;
    int64_t next_ms;
} S;

static const char *data_dir(const struct req *r)
{
    return r->b->cfg->data_dir;
}

static uint64_t max_message_bytes(const struct req *r)
{
    return (uint64_t)r->b->cfg->limits.max_message_mb * MIB;
}

static const char *hex_id(const uint8_t id[CASENET_BLOB_ID_BYTES], char out[33])
{
    cn_hex(id, CASENET_BLOB_ID_BYTES, out);
    return out;
}

/* The blob the request names, when member may see it. NOT_FOUND otherwise,
 * as for a message: a member learns nothing of others' blobs. */
static int visible_blob(struct req *r, const ProtobufCBinaryData *id, struct blob_meta *m)
{
    if (id->len != CASENET_BLOB_ID_BYTES)
        return req_fail(r, CASENET_EBADREQ, "blob_id must be 16 bytes");
    int rc = blobs_meta_read(data_dir(r), id->data, m);
    if (rc == CASENET_OK && !blobs_may_read(data_dir(r), id->data, m, r->member))
        rc = CASENET_ENOTFOUND;
    if (rc == CASENET_ENOTFOUND)
        return req_fail(r, rc,
                        "no such blob for this member: upload it, or check the message that "
                        "names it is addressed to you");
    if (rc != CASENET_OK)
        return req_fail(r, CASENET_EUNAVAIL, "the broker could not read the blob; retry later");
    return CASENET_OK;
}

/* The shape of a BlobPut: sizes and counts within the limits. */
static int put_shape(struct req *r, const Casenet__V1__BlobPut *p)
{
    uint64_t n = p->total_chunks, size = p->total_size;
    if (p->blob_id.len != CASENET_BLOB_ID_BYTES || n == 0 || n > CASENET_ATTACH_MAX_CHUNKS ||
        p->chunk_index >= n || p->chunk.len < CASENET_ATTACH_ABYTES ||
        p->chunk.len > BLOBS_CHUNK_MAX || size < n * CASENET_ATTACH_ABYTES ||
        size > n * BLOBS_CHUNK_MAX)
        return req_fail(r, CASENET_EBADREQ,
                        "a BlobPut needs a 16-byte blob_id, chunk_index < total_chunks, a chunk "
                        "of 17 bytes to 1 MiB + 17 and a total_size its chunks can reach");
    if (size > max_message_bytes(r))
        return req_fail(r, CASENET_ETOOLARGE,
                        "the blob is larger than this broker's max_message_size (%u MiB); send "
                        "a smaller file or split it",
                        r->b->cfg->limits.max_message_mb);
    return CASENET_OK;
}

/* kept_fn of the idle sweep: the tally counts each blob at its charge. */
static void tally_kept(const uint8_t *id, const struct blob_meta *m, void *ctx)
{
    struct blob_meta c;
    if (m) {
        c = *m;
        c.total_size = blobs_charge(m->total_chunks, m->total_size);
    }
    blob_tally_on_kept(id, m ? &c : NULL, ctx);
}

/* blobs_busy_fn: a chunk of blob id is with the writer (ctx). */
static bool being_written(const uint8_t id[CASENET_BLOB_ID_BYTES], void *ctx)
{
    return blob_io_busy(ctx, id);
}

/* The first chunk of a new blob: checks the member's quota against the
 * tally (until the first sweep pass ended: against every blob's meta,
 * sweeping unreferenced old blobs), each blob at its blobs_charge;
 * creates the meta. */
static int put_create(struct req *r, const Casenet__V1__BlobPut *p, struct blob_meta *m)
{
    const struct broker_limits *lim = &r->b->cfg->limits;
    int64_t before =
        lim->blob_unreferenced_s ? r->now_ms - (int64_t)lim->blob_unreferenced_s * 1000 : 0;
    uint64_t owned = 0, charge = blobs_charge(p->total_chunks, p->total_size);
    if (!blob_tally_owned(&S.tally, r->member, &owned) &&
        blobs_sweep(data_dir(r), r->member, before, r->bt->blob_io ? being_written : NULL,
                    r->bt->blob_io, &owned) != CASENET_OK)
        return req_fail(r, CASENET_EUNAVAIL, "the broker could not read its blobs; retry later");
    if (lim->blob_quota_mb && owned + charge > (uint64_t)lim->blob_quota_mb * MIB) {
        metrics_blob_quota_refused();
        return req_fail(r, CASENET_EQUOTA,
                        "this blob would pass your blob quota at the broker (%u MiB, %llu bytes "
                        "counted); wait until the recipients complete your older messages with "
                        "attachments (their blobs are then deleted), or ask the operator",
                        lim->blob_quota_mb, (unsigned long long)owned);
    }
    memset(m, 0, sizeof *m);
    snprintf(m->owner, sizeof m->owner, "%s", r->member);
    m->total_chunks = p->total_chunks;
    m->total_size = p->total_size;
    m->created_ms = r->now_ms;
    int rc = blobs_meta_create(data_dir(r), p->blob_id.data, m);
    if (rc == CASENET_ECONFLICT)
        return req_fail(r, rc, "the blob id is taken; prepare the attachment again");
    if (rc != CASENET_OK)
        return req_fail(r, CASENET_EUNAVAIL, "the broker could not store the blob; retry later");
    blob_tally_created(&S.tally, p->blob_id.data, m->owner, charge);
    return CASENET_OK;
}

/* True when chunk p, not yet held (h->n < the blob's chunks), leaves each
 * other chunk not held its 17 bytes within total_size, so that the bytes
 * held never pass the size the quota counted; or when it is held already or
 * with the writer (a resend, which blobs_chunk_write answers). The chunks
 * with the writer count as held: h is read from disk first, the writer's
 * jobs after, so a job finishing meanwhile is missed rather than counted
 * twice (a legitimate upload is never refused). */
static bool chunk_fits(struct req *r, const Casenet__V1__BlobPut *p, const struct blob_meta *m,
                       const struct blob_held *h)
{
    uint32_t n = h->n;
    uint64_t bytes = h->bytes;
    if (r->bt->blob_io &&
        blob_io_pending(r->bt->blob_io, p->blob_id.data, p->chunk_index, &n, &bytes))
        return true;
    if (n < m->total_chunks) {
        uint64_t rest = (uint64_t)(m->total_chunks - n - 1) * CASENET_ATTACH_ABYTES;
        if (bytes + p->chunk.len + rest <= m->total_size)
            return true;
    }
    casenet_buf old = {0};
    bool held = blobs_chunk_read(data_dir(r), p->blob_id.data, p->chunk_index, &old) == CASENET_OK;
    casenet_buf_free(&old);
    return held;
}

/* Answers a BlobPut whose chunk write returned rc (*fresh: it wrote the
 * chunk) with what the blob then holds (h, with rc OK): the write that
 * completed the blob appends BLOB_STORED. */
static int put_answer(struct req *r, const uint8_t id[CASENET_BLOB_ID_BYTES], uint32_t index,
                      const struct blob_meta *m, size_t len, int rc, bool fresh,
                      const struct blob_held *h)
{
    char hex[33];
    if (rc == CASENET_ECONFLICT)
        return req_fail(r, rc, "chunk %u is held with other bytes; chunks cannot be replaced",
                        index);
    if (rc != CASENET_OK)
        return req_fail(r, CASENET_EUNAVAIL, "the broker could not store the chunk; retry later");
    if (fresh)
        metrics_blob_chunk_uploaded(len);
    if (fresh && h->complete) {
        rc = audit_blob(r->b->store, r->now_ms, AUDIT_BLOB_STORED, r->member, m->owner, id,
                        m->total_size);
        if (rc != CASENET_OK)
            return req_store_fail(r, rc, "audit the blob");
        log_event(LOG_INFO, "blob_stored", "member", r->member, "blob", hex_id(id, hex), "size",
                  log_u64(m->total_size), NULL);
    }
    Casenet__V1__BlobPutReply out = CASENET__V1__BLOB_PUT_REPLY__INIT;
    out.chunks_held = h->n;
    out.complete = h->complete;
    r->resp.body_case = CASENET__V1__RESPONSE__BODY_BLOB_PUT;
    r->resp.blob_put = &out;
    return req_reply(r);
}

/* Leaves the chunk for the blob writer (r->bt->blob_job), unanswered: the
 * loop hands it over and answers once it is durable
 * (handlers_blob_put_done). */
static int put_hand_over(struct req *r, const Casenet__V1__BlobPut *p, const struct blob_meta *m)
{
    struct blob_job *j = calloc(1, sizeof *j);
    if (!j || !(j->chunk.data = malloc(p->chunk.len))) {
        free(j);
        return req_fail(r, CASENET_EUNAVAIL, "out of memory; retry later");
    }
    memcpy(j->chunk.data, p->chunk.data, p->chunk.len);
    j->chunk.len = j->chunk_len = p->chunk.len;
    memcpy(j->id, p->blob_id.data, CASENET_BLOB_ID_BYTES);
    j->index = p->chunk_index;
    j->meta = *m;
    snprintf(j->member, sizeof j->member, "%s", r->member);
    j->request_id = r->request_id;
    r->bt->blob_job = j;
    return CASENET_OK;
}

int handlers_blob_put(struct req *r, const Casenet__V1__Request *q)
{
    const Casenet__V1__BlobPut *p = q->blob_put;
    struct blob_meta m;
    int rc;
    if ((rc = put_shape(r, p)) != CASENET_OK ||
        (rc = req_disk_check(r, LIMITS_SUBMIT)) != CASENET_OK)
        return rc;
    rc = blobs_meta_read(data_dir(r), p->blob_id.data, &m);
    if (rc == CASENET_ENOTFOUND)
        rc = put_create(r, p, &m);
    else if (rc != CASENET_OK)
        return req_fail(r, CASENET_EUNAVAIL, "the broker could not read the blob; retry later");
    else if (strcmp(m.owner, r->member) != 0)
        return req_fail(r, CASENET_ECONFLICT, "the blob id is taken; prepare the attachment again");
    if (rc != CASENET_OK)
        return rc;
    if (m.total_chunks != p->total_chunks || m.total_size != p->total_size)
        return req_fail(r, CASENET_ECONFLICT,
                        "total_chunks or total_size differ from the blob's first chunk");
    struct blob_held h;
    if (blobs_held(data_dir(r), p->blob_id.data, &m, NULL, &h) != CASENET_OK)
        return req_fail(r, CASENET_EUNAVAIL, "the broker could not read the blob; retry later");
    if (h.n < m.total_chunks && !chunk_fits(r, p, &m, &h))
        return req_fail(r, CASENET_ECONFLICT,
                        "chunk %u (%zu bytes) would take the blob past its total_size; send "
                        "the chunks of the file the first chunk described",
                        p->chunk_index, p->chunk.len);
    /* A new chunk is written by the writer; one held already is only
     * compared, here (a resumed upload sends none of those). */
    if (r->bt->blob_io && r->bt->blob_room &&
        !blobs_chunk_exists(data_dir(r), p->blob_id.data, p->chunk_index))
        return put_hand_over(r, p, &m);
    bool fresh = false;
    rc = blobs_chunk_write(data_dir(r), p->blob_id.data, p->chunk_index, p->chunk.data,
                           p->chunk.len, &fresh);
    if (rc == CASENET_OK && blobs_held(data_dir(r), p->blob_id.data, &m, NULL, &h) != CASENET_OK)
        rc = CASENET_EIO;
    return put_answer(r, p->blob_id.data, p->chunk_index, &m, p->chunk.len, rc, fresh, &h);
}

int handlers_blob_put_done(struct broker *b, struct batch *bt, const struct blob_job *j,
                           casenet_buf *reply)
{
    struct req r = {.b = b,
                    .bt = bt,
                    .member = j->member,
                    .now_ms = cn_now_ms(),
                    .request_id = j->request_id,
                    .resp = CASENET__V1__RESPONSE__INIT};
    r.resp.protocol_version = BROKER_PROTOCOL_VERSION;
    r.resp.request_id = j->request_id;
    int rc = put_answer(&r, j->id, j->index, &j->meta, j->chunk_len, j->rc, j->fresh, &j->held);
    if (rc == CASENET_OK) {
        *reply = r.out;
        return CASENET_OK;
    }
    casenet_buf_free(&r.out);
    log_event(LOG_INFO, "rejected", "member", r.member, "request", "blob_put", "error",
              casenet_errname(req_wire_code(rc)), "detail", r.msg, NULL);
    return req_error_reply(j->request_id, rc, r.msg, r.retry_after_ms, 0, reply);
}

int handlers_blob_status(struct req *r, const Casenet__V1__Request *q)
{
    const Casenet__V1__BlobStatus *p = q->blob_status;
    struct blob_meta m;
    int rc = visible_blob(r, &p->blob_id, &m);
    if (rc != CASENET_OK)
        return rc;
    uint32_t *list = malloc((size_t)m.total_chunks * sizeof *list);
    if (!list)
        return req_fail(r, CASENET_ENOMEM, "out of memory; retry later");
    struct blob_held h;
    if (blobs_held(data_dir(r), p->blob_id.data, &m, list, &h) != CASENET_OK) {
        free(list);
        return req_fail(r, CASENET_EUNAVAIL, "the broker could not read the blob; retry later");
    }
    Casenet__V1__BlobStatusReply out = CASENET__V1__BLOB_STATUS_REPLY__INIT;
    out.total_chunks = m.total_chunks;
    out.total_size = m.total_size;
    out.held = list;
    out.n_held = h.n;
    out.complete = h.complete;
    r->resp.body_case = CASENET__V1__RESPONSE__BODY_BLOB_STATUS;
    r->resp.blob_status = &out;
    rc = req_reply(r);
    free(list);
    return rc;
}

int handlers_blob_get(struct req *r, const Casenet__V1__Request *q)
{
    const Casenet__V1__BlobGet *p = q->blob_get;
    struct blob_meta m;
    char hex[33];
    int rc = visible_blob(r, &p->blob_id, &m);
    if (rc != CASENET_OK)
        return rc;
    if (p->chunk_index >= m.total_chunks)
        return req_fail(r, CASENET_ENOTFOUND, "the blob has %u chunks", m.total_chunks);
    casenet_buf chunk = {0};
    rc = blobs_chunk_read(data_dir(r), p->blob_id.data, p->chunk_index, &chunk);
    if (rc == CASENET_ENOTFOUND)
        return req_fail(r, rc, "chunk %u is not uploaded yet", p->chunk_index);
    if (rc != CASENET_OK)
        return req_fail(r, CASENET_EUNAVAIL, "the broker could not read the chunk; retry later");
    if (p->chunk_index + 1 == m.total_chunks && strcmp(r->member, m.owner) != 0) {
        /* Its event is an audited fetch: the Fetch bucket and reserve. */
        if ((rc = req_limits(r, LIMITS_FETCH)) != CASENET_OK ||
            (rc = req_disk_check(r, LIMITS_FETCH)) != CASENET_OK) {
            casenet_buf_free(&chunk);
            return rc;
        }
        rc = audit_blob(r->b->store, r->now_ms, AUDIT_BLOB_FETCHED, r->member, m.owner,
                        p->blob_id.data, m.total_size);
        if (rc != CASENET_OK) {
            casenet_buf_free(&chunk);
            return req_store_fail(r, rc, "audit the download");
        }
        log_event(LOG_INFO, "blob_fetched", "member", r->member, "blob",
                  hex_id(p->blob_id.data, hex), "size", log_u64(m.total_size), NULL);
    }
    Casenet__V1__BlobGetReply out = CASENET__V1__BLOB_GET_REPLY__INIT;
    pb_set_bytes(&out.chunk, chunk.data, chunk.len);
    out.total_chunks = m.total_chunks;
    out.total_size = m.total_size;
    r->resp.body_case = CASENET__V1__RESPONSE__BODY_BLOB_GET;
    r->resp.blob_get = &out;
    rc = req_reply(r);
    if (rc == CASENET_OK)
        metrics_blob_chunk_downloaded(chunk.len);
    casenet_buf_free(&chunk);
    return rc;
}

int handlers_blob_submit_check(struct req *r, size_t envelope_len)
{
    const casenet_message_info *info = &r->info;
    uint64_t total = envelope_len;
    char hex[33];
    for (size_t i = 0; i < info->n_blob_ids; i++) {
        struct blob_meta m;
        struct blob_held h = {0};
        const uint8_t *id = info->blob_ids[i];
        int rc = blobs_meta_read(data_dir(r), id, &m);
        if (rc == CASENET_OK && strcmp(m.owner, info->sender) != 0)
            rc = CASENET_ENOTFOUND;
        if (rc == CASENET_ENOTFOUND)
            return req_fail(r, rc, "blob %s is not one you uploaded; upload the attachment first",
                            hex_id(id, hex));
        if (rc != CASENET_OK || blobs_held(data_dir(r), id, &m, NULL, &h) != CASENET_OK)
            return req_fail(r, CASENET_EUNAVAIL, "the broker could not read a blob; retry later");
        if (!h.complete)
            return req_fail(r, CASENET_ENOTFOUND,
                            "blob %s is incomplete (%u of %u chunks held); resume the upload, "
                            "then submit again",
                            hex_id(id, hex), h.n, m.total_chunks);
        total += m.total_size;
    }
    if (total > max_message_bytes(r))
        return req_fail(r, CASENET_ETOOLARGE,
                        "the message with its attachments passes this broker's max_message_size "
                        "(%u MiB); send fewer or smaller files",
                        r->b->cfg->limits.max_message_mb);
    return CASENET_OK;
}

int handlers_blob_submit_reference(struct req *r)
{
    const casenet_message_info *info = &r->info;
    for (size_t i = 0; i < info->n_blob_ids; i++) {
        if (blobs_reference(data_dir(r), info->blob_ids[i], info->message_id, info->recipients,
                            info->n_recipients) != CASENET_OK)
            return req_fail(r, CASENET_EUNAVAIL, "the broker could not record a blob; retry later");
    }
    return CASENET_OK;
}

struct retire_ctx {
    struct store *s;
    int64_t now_ms, unreferenced_before_ms;
};

/* blobs_finished_fn: every recipient's row completed or dead, the message
 * expired, or the message not stored: purged, or its Submit's batch rolled
 * back after the blob recorded it (the sender may submit it again), so only
 * once the blob is as old as an unreferenced one may be. False when the
 * store fails. */
static bool message_finished(const uint8_t msg_id[CASENET_MESSAGE_ID_BYTES],
                             int64_t blob_created_ms, void *ctx)
{
    struct retire_ctx *x = ctx;
    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    if (store_inbox_of_message(x->s, msg_id, &rows, &n) != CASENET_OK)
        return false;
    bool done = true;
    for (size_t i = 0; i < n && done; i++)
        done = rows[i].state == STORE_INBOX_COMPLETED || rows[i].state == STORE_INBOX_DEAD;
    store_inbox_rows_free(rows, n);
    if (done)
        return true;
    struct store_message m;
    memset(&m, 0, sizeof m);
    int rc = store_message_get(x->s, msg_id, false, &m);
    if (rc == CASENET_ENOTFOUND)
        done = x->unreferenced_before_ms && blob_created_ms < x->unreferenced_before_ms;
    else
        done = rc == CASENET_OK && m.expires_at_ms > 0 && m.expires_at_ms <= x->now_ms;
    store_message_clear(&m);
    return done;
}

bool handlers_blob_idle(struct broker *b, int64_t now_mono_ms, struct blob_io *io)
{
    struct blobs_pass *pass = &S.pass;
    if (!pass->dir && now_mono_ms < S.next_ms)
        return false;
    pass->kept_fn = tally_kept;
    pass->kept_ctx = &S.tally;
    pass->busy_fn = io ? being_written : NULL;
    pass->busy_ctx = io;
    struct retire_ctx x = {.s = b->store, .now_ms = cn_now_ms()};
    uint32_t keep_s = b->cfg->limits.blob_unreferenced_s;
    x.unreferenced_before_ms = keep_s ? x.now_ms - (int64_t)keep_s * 1000 : 0;
    size_t removed = 0;
    bool done = false;
    int64_t t0 = metrics_now_us();
    if (blobs_retire_step(b->cfg->data_dir, pass, BLOB_SWEEP_STEP, BLOB_SWEEP_STEP_US,
                          x.unreferenced_before_ms, message_finished, &x, &removed,
                          &done) != CASENET_OK) {
        log_event(LOG_WARN, "blobs_retire", "error", "cannot read the blobs directory", NULL);
        blobs_pass_end(pass);
        S.next_ms = now_mono_ms + BLOB_RETIRE_MS;
        return false;
    }
    metrics_blobs_deleted(removed);
    uint64_t took_us = (uint64_t)(metrics_now_us() - t0);
    if (!done) {
        log_event(LOG_INFO, "blobs_sweep_step", "step", log_u64(pass->steps), "visited",
                  log_u64(pass->kept + pass->removed), "removed", log_u64(removed), "took_us",
                  log_u64(took_us), NULL);
        return true;
    }
    S.next_ms = now_mono_ms + BLOB_RETIRE_MS;
    blob_tally_pass_end(&S.tally);
    metrics_blobs_stored(pass->kept, pass->kept_bytes);
    if (pass->lock_errno)
        log_event(LOG_WARN, "blobs_lock", "error", strerror(pass->lock_errno), "fix",
                  "casenetd cannot open DATA/blobs/.lock, so it deletes no blob: give it to the "
                  "broker's user",
                  NULL);
    if (pass->removed > 0)
        log_event(LOG_INFO, "blobs_deleted", "count", log_u64(pass->removed), "steps",
                  log_u64(pass->steps), "kept", log_u64(pass->kept), "last_step_us",
                  log_u64(took_us), NULL);
    return false;
}
