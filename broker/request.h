/*
 * request.h - one request on its way through the broker: its context
 * (struct req), the helpers every handler answers with (req_fail,
 * req_store_fail, req_reply), the admission checks several kinds share
 * (rate buckets, disk reserve), and the one table of request kinds that
 * drives dispatch, the name in log lines and the per-kind counter hook
 * (broker.h on_done).
 *
 * Layers (docs/ARCHITECTURE.md): the loop (server.c) calls req_dispatch;
 * the dispatcher (dispatch.c) looks the kind up in the table and runs its
 * handler (handlers_*.c, lifecycle.c, audit_tree.c); handlers use this
 * header's helpers (request.c), the store, the audit log, deadlines and the
 * batch (batch.h). Nothing below the dispatcher calls back into it or into
 * the loop: work for after the commit is queued in the batch.
 *
 * Attribution: `member` is always the connection's ZAP User-Id, never the
 * routing id and never a name the request claims.
 */
#ifndef BROKER_REQUEST_H
#define BROKER_REQUEST_H

#include "batch.h"
#include "broker.h"
#include "casenet.pb-c.h"
#include "member_limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One request being handled (inside the batch transaction). */
struct req {
    struct broker *b;
    struct batch *bt;
    const char *member; /* the connection's ZAP User-Id */
    int64_t now_ms;     /* the broker's clock when the request was taken */
    uint64_t request_id;
    const struct req_kind *kind;
    /* The reply under construction: protocol version and request id set;
     * a handler sets the body and calls req_reply, which packs it into
     * out (owned by the dispatcher). */
    Casenet__V1__Response resp;
    casenet_buf out;
    bool subscribe;          /* a successful Subscribe: the loop records the connection */
    char msg[320];           /* the error message for the client (req_fail) */
    uint32_t retry_after_ms; /* for a RATE_LIMITED or UNAVAILABLE answer; 0 = default */
    uint64_t stale_version;  /* for a STALE_DIRECTORY answer: the directory served */
    bool no_audit;           /* a rejection not to audit (a rate-limited flood) */
    /* Submit only: what is known of the envelope, for a REJECTED event. */
    bool have_info;
    casenet_message_info info;
    bool have_hash;
    uint8_t hash[CASENET_HASH_BYTES];
    uint32_t size;
};

/* A handler: answers r (req_reply) and returns CASENET_OK, or returns the
 * casenet_err to answer with after req_fail / req_store_fail wrote the
 * message. */
typedef int (*req_handler_fn)(struct req *r, const Casenet__V1__Request *q);

/* One kind of request: a row of the table in dispatch.c. */
struct req_kind {
    int body_case;          /* Casenet__V1__Request__BodyCase; 0 = unknown */
    const char *name;       /* in log lines ("request" key) and metrics */
    req_handler_fn handler; /* NULL: the body is not one this broker knows */
    /* Runs in a savepoint of its own, so that a refusal undoes what it
     * wrote. Submit does not: every refusal a client can cause is decided
     * before its first write, and a savepoint copies each page the request
     * touches (about a tenth of the loop's time at full load). */
    bool savepoint;
    /* The audit event a successful request appends (0 = none).
     * AUDIT_QUERIED also puts the request under the audit bucket and the
     * disk reserve before its handler runs; SUBMITTED also audits every
     * refusal as REJECTED. */
    int audit_kind;
};

/* The table: *n rows, the last one the "unknown" row (body_case 0). Static;
 * an index into it is the kind the on_done hook receives. */
const struct req_kind *req_kinds(size_t *n);
/* The row of body_case, or the "unknown" row. Never NULL. */
const struct req_kind *req_kind_for(int body_case);

/* Handles one request frame inside the batch transaction (the caller has
 * called begin). Always produces a packed Response in *reply (owned by the
 * caller) unless it returns CASENET_ENOMEM. Sets bt->store_failed when the
 * store failed (the batch must then be rolled back and every request
 * answered UNAVAILABLE), queues inbox notices in bt, and sets *subscribe
 * when the request was a successful Subscribe (the caller records the
 * connection). The reply is only to be sent after the batch commits: a
 * Submit's receipt exists only for committed data. Calls b->on_done once
 * per reply. */
int req_dispatch(struct broker *b, struct batch *bt, const char *member, const uint8_t *frame,
                 size_t len, casenet_buf *reply, bool *subscribe);

/* Writes the client's message (printf-style) into r->msg; returns err. */
__attribute__((format(printf, 3, 4))) int req_fail(struct req *r, int err, const char *fmt, ...);
/* A store error: CASENET_EUNAVAIL ("the broker could not <what>; retry
 * later") or CASENET_ENOMEM for the client; sets bt->store_failed (batch
 * rollback) when the store itself failed. */
int req_store_fail(struct req *r, int err, const char *what);
/* Packs r->resp (body set by the handler) into r->out. CASENET_ENOMEM. */
int req_reply(struct req *r);

/* Packs resp into out (malloc'd). CASENET_ENOMEM. */
int req_pack(Casenet__V1__Response *resp, casenet_buf *out);
/* Packs an error Response for request_id (0 when unknown) with the wire code
 * of err (a casenet_err) and message (casenet_strerror(err) when empty).
 * retry_after_ms (0 = 1000) goes with RATE_LIMITED and UNAVAILABLE,
 * stale_version (Error.directory_version) with STALE_DIRECTORY.
 * CASENET_ENOMEM. */
int req_error_reply(uint64_t request_id, int err, const char *message, uint32_t retry_after_ms,
                    uint64_t stale_version, casenet_buf *out);
/* The wire ErrorCode for a casenet_err: 1..12 and 14 (DIRECTORY_EXPIRED)
 * map to themselves, expired directory and invalid input to BAD_REQUEST,
 * rollback to CONFLICT, every local failure to UNAVAILABLE. */
int req_wire_code(int err);

/* The member's bucket of class cls (member_limits.h): RATE_LIMITED with a
 * retry-after. Only the first refusal of a run is audited (a Submit's
 * REJECTED event) or logged at info level. */
int req_limits(struct req *r, enum limits_class cls);
/* The disk reserve's share of class cls (limits_disk_floor_kb), free space
 * measured once per batch: UNAVAILABLE, not audited (the reserve is for the
 * writes that must go on). */
int req_disk_check(struct req *r, enum limits_class cls);

#endif
