/* dispatch.c - the table of request kinds and the dispatcher it drives (see request.h). */
#include "audit.h"
#include "audit_tree.h"
#include "handlers.h"
#include "handlers_blob.h"
#include "lifecycle.h"
#include "log.h"
#include "request.h"
#include "text.h"
#include "util.h"

#include <string.h>

#define AUDIT_SUBMITTED CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED
#define AUDIT_QUERIED   CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUDIT_QUERIED
#define AUDIT_FETCHED   CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED
#define AUDIT_RECEIPT   CASENET__V1__AUDIT_KIND__AUDIT_KIND_RECEIPT
#define AUDIT_DIRECTORY CASENET__V1__AUDIT_KIND__AUDIT_KIND_DIRECTORY_PUBLISHED

/* Every request kind: {body case, name, handler, own savepoint, audit kind}.
 * A new kind is one row here and one handler. The last row answers every
 * body this broker does not know. */
static const struct req_kind kinds[] = {
    {CASENET__V1__REQUEST__BODY_HELLO, "hello", handlers_hello, true, 0},
    {CASENET__V1__REQUEST__BODY_GET_DIRECTORY, "get_directory", handlers_get_directory, true, 0},
    {CASENET__V1__REQUEST__BODY_PUBLISH_DIRECTORY, "publish_directory", handlers_publish_directory,
     true, AUDIT_DIRECTORY},
    {CASENET__V1__REQUEST__BODY_SUBMIT, "submit", handlers_submit, false, AUDIT_SUBMITTED},
    {CASENET__V1__REQUEST__BODY_LIST_INBOX, "list_inbox", handlers_list_inbox, true, 0},
    {CASENET__V1__REQUEST__BODY_FETCH, "fetch", handlers_fetch, true, AUDIT_FETCHED},
    {CASENET__V1__REQUEST__BODY_RECEIPT, "receipt", handlers_receipt, true, AUDIT_RECEIPT},
    {CASENET__V1__REQUEST__BODY_SUBSCRIBE, "subscribe", handlers_subscribe, true, 0},
    {CASENET__V1__REQUEST__BODY_GET_TREE_HEAD, "get_tree_head", audit_tree_head, true, 0},
    {CASENET__V1__REQUEST__BODY_AUDIT_QUERY, "audit_query", audit_tree_query, true, AUDIT_QUERIED},
    {CASENET__V1__REQUEST__BODY_AUDIT_PROOF, "audit_proof", audit_tree_proof, true, 0},
    {CASENET__V1__REQUEST__BODY_AUDIT_EXPORT, "audit_export", audit_tree_export, true,
     AUDIT_QUERIED},
    {CASENET__V1__REQUEST__BODY_GET_STATUS, "get_status", lifecycle_get_status, true, 0},
    {CASENET__V1__REQUEST__BODY_LIST_SENT, "list_sent", lifecycle_list_sent, true, 0},
    {CASENET__V1__REQUEST__BODY_LIST_OVERDUE, "list_overdue", lifecycle_list_overdue, true, 0},
    {CASENET__V1__REQUEST__BODY_BLOB_PUT, "blob_put", handlers_blob_put, true, 0},
    {CASENET__V1__REQUEST__BODY_BLOB_STATUS, "blob_status", handlers_blob_status, true, 0},
    {CASENET__V1__REQUEST__BODY_BLOB_GET, "blob_get", handlers_blob_get, true, 0},
    {0, "unknown", NULL, true, 0},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

const struct req_kind *req_kinds(size_t *n)
{
    *n = N_KINDS;
    return kinds;
}

const struct req_kind *req_kind_for(int body_case)
{
    for (size_t i = 0; i + 1 < N_KINDS; i++)
        if (kinds[i].body_case == body_case)
            return &kinds[i];
    return &kinds[N_KINDS - 1];
}

/* Tells the counter hook (broker.h on_done) how a request was answered. */
static void count_done(const struct broker *b, const struct req_kind *k, int rc)
{
    if (b->on_done)
        b->on_done(b->on_done_ctx, (size_t)(k - kinds), rc == CASENET_OK ? 0 : req_wire_code(rc));
}

/* Runs the kind's handler; audit reads first take the audit bucket and the
 * disk reserve (each appends an AUDIT_QUERIED event). */
static int run_handler(struct req *r, const Casenet__V1__Request *q)
{
    const struct req_kind *k = r->kind;
    if (k->audit_kind == AUDIT_QUERIED) {
        int rc = req_limits(r, LIMITS_AUDIT);
        if (rc != CASENET_OK || (rc = req_disk_check(r, LIMITS_AUDIT)) != CASENET_OK)
            return rc;
    }
    if (!k->handler)
        return req_fail(r, CASENET_EBADREQ,
                        "the request has no body this broker knows; upgrade the broker or the "
                        "client");
    return k->handler(r, q);
}

/* The checks before any handler: protocol version, UTF-8 strings, an
 * active member. CASENET_OK, or the error with its message in *why. */
static int precheck(const struct broker *b, const char *member, const Casenet__V1__Request *q,
                    const char **why)
{
    if (q->protocol_version != BROKER_PROTOCOL_VERSION) {
        *why = "this broker speaks protocol version 1";
        return CASENET_EVERSION;
    }
    if (!cn_pb_strings_valid(&q->base)) {
        /* Never echoed: the bytes are not text. */
        *why = "a string field of the request is not valid UTF-8 (protobuf strings must be); "
               "fix the client";
        return CASENET_EBADREQ;
    }
    if (!member || !*member || !broker_member_active(b, member)) {
        *why = "this connection's member is not active in the current directory; contact the "
               "network authority";
        return CASENET_EUNAUTH;
    }
    return CASENET_OK;
}

/* A refused request: undoes what it wrote (its savepoint, or the whole
 * batch for a Submit that wrote), audits a refused Submit as REJECTED, logs
 * the refusal and packs the Error reply. */
static int refuse(struct req *r, const Casenet__V1__Request *q, int rc, uint64_t changes_before,
                  casenet_buf *reply)
{
    struct broker *b = r->b;
    struct batch *bt = r->bt;
    struct store *s = b->store;
    const struct req_kind *k = r->kind;
    if (k->savepoint) {
        store_rollback_to(s);
    } else if (store_changes(s) != changes_before && !bt->store_failed) {
        log_event(LOG_ERROR, "request_failed_after_write", "member", r->member, "request", k->name,
                  "error", casenet_errname(rc), "msg", "the batch is rolled back", NULL);
        bt->store_failed = true;
    }
    if (k->audit_kind == AUDIT_SUBMITTED && !bt->store_failed && !r->no_audit) {
        /* The hash of the bytes refused, when they did not parse far
         * enough to give info (computed here, not for every Submit:
         * verification hashes the envelope already). */
        if (!r->have_info && q->submit) {
            const ProtobufCBinaryData *e = &q->submit->envelope;
            cn_sha256(e->data ? e->data : (const uint8_t *)"", e->len, r->hash);
            r->have_hash = true;
        }
        int arc = audit_rejected(s, r->now_ms, r->member, r->have_info ? &r->info : NULL,
                                 r->have_hash ? r->hash : NULL, r->size, rc, r->msg, NULL);
        if (arc == CASENET_EUNAVAIL)
            bt->store_failed = true;
    }
    /* A rate-limited flood is logged at debug level after its first
     * refusal, like its audit events. */
    log_event(r->no_audit ? LOG_DEBUG : LOG_INFO, "rejected", "member", r->member, "request",
              k->name, "error", casenet_errname(req_wire_code(rc)), "msg",
              r->have_info ? log_hex(r->info.message_id, CASENET_MESSAGE_ID_BYTES) : NULL, "detail",
              r->msg, NULL);
    return req_error_reply(q->request_id, rc, r->msg, r->retry_after_ms, r->stale_version, reply);
}

int req_dispatch(struct broker *b, struct batch *bt, const char *member, const uint8_t *frame,
                 size_t len, casenet_buf *reply, bool *subscribe)
{
    struct store *s = b->store;
    *subscribe = false;
    Casenet__V1__Request *q = casenet__v1__request__unpack(NULL, len, frame);
    if (!q) {
        count_done(b, req_kind_for(0), CASENET_EBADREQ);
        return req_error_reply(0, CASENET_EBADREQ,
                               "the frame is not a serialised Request; send exactly one frame "
                               "holding a casenet.v1.Request",
                               0, 0, reply);
    }
    struct req r = {.b = b,
                    .bt = bt,
                    .member = member,
                    .now_ms = cn_now_ms(),
                    .request_id = q->request_id,
                    .kind = req_kind_for((int)q->body_case),
                    .resp = CASENET__V1__RESPONSE__INIT};
    r.resp.protocol_version = BROKER_PROTOCOL_VERSION;
    r.resp.request_id = q->request_id;
    const char *why = NULL;
    int rc = precheck(b, member, q, &why);
    if (rc != CASENET_OK) {
        count_done(b, r.kind, rc);
        rc = req_error_reply(q->request_id, rc, why, 0, 0, reply);
        casenet__v1__request__free_unpacked(q, NULL);
        return rc;
    }
    uint64_t changes_before = store_changes(s);
    if (r.kind->savepoint && (rc = store_savepoint(s)) != CASENET_OK) {
        bt->store_failed = true;
        count_done(b, r.kind, CASENET_EUNAVAIL);
        rc = req_error_reply(q->request_id, CASENET_EUNAVAIL,
                             "the broker's store failed; retry later", 0, 0, reply);
        casenet__v1__request__free_unpacked(q, NULL);
        return rc;
    }
    int hrc = run_handler(&r, q);
    if (hrc == CASENET_OK) {
        if (r.kind->savepoint && store_release(s) != CASENET_OK)
            bt->store_failed = true;
        *reply = r.out;
        *subscribe = r.subscribe;
        rc = CASENET_OK;
    } else {
        casenet_buf_free(&r.out);
        rc = refuse(&r, q, hrc, changes_before, reply);
    }
    count_done(b, r.kind, hrc);
    if (r.have_info)
        casenet_message_info_clear(&r.info);
    casenet__v1__request__free_unpacked(q, NULL);
    return rc;
}
