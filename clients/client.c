/*
 * client.c - the broker connection of libcasenet: one ZeroMQ DEALER socket
 * with CURVE client keys, one request/reply round trip (client_call, reached
 * through client_request by every casenet_client_* request), pushed notices
 * queued for casenet_client_wait_notice, and a socket monitor for reconnects
 * and ZAP refusals. The requests themselves: client_messages.c (inbox and
 * directory), client_lifecycle.c (status, sent, overdue), client_audit.c.
 *
 * Wire contract (proto/PROTOCOL.md sections 7-8): one frame per message, a
 * serialised Request out, a serialised Response back with the same
 * request_id; Response{request_id = 0, notice} is pushed at any time.
 *
 * Socket options and why:
 *  - ZMQ_IMMEDIATE = 1: a request is only queued on a pipe whose CURVE
 *    handshake has completed. Without it, a request sent while the broker is
 *    away sits in a pipe to a dead peer and goes out after a reconnect, even
 *    when the caller has long timed out (a late, unasked-for PublishDirectory)
 *    and together with our own resend. With it, zmq_send(ZMQ_DONTWAIT) says
 *    EAGAIN until the connection is up, ZMQ_POLLOUT tells when it is, and a
 *    disconnect drops the pipe, so the resend after the reconnect is the
 *    only copy.
 *  - Reconnect 100 ms doubling to 2 s, heartbeats every 2 s with a 6 s
 *    timeout (a dead broker host is noticed, not only a closed socket), a
 *    5 s handshake limit, linger 0, a 16 MiB inbound message limit.
 *
 * Retries: idempotent requests (everything but PublishDirectory) are resent
 * as the identical frame (same request_id) when the connection dropped after
 * sending and, on a live connection, after 1 s, 2 s, 4 s ... until the
 * caller's deadline. A reply to any copy of the request answers it; replies
 * carrying another request_id (late answers to a request that already timed
 * out) are dropped.
 *
 * Monitor: libzmq 4.3.4 reports a ZAP refusal at the client as
 * ZMQ_EVENT_HANDSHAKE_FAILED_AUTH with the ZAP status code (400 for an
 * unknown, suspended or revoked key) within milliseconds, and then stops
 * reconnecting that endpoint; a wrong broker key shows only as
 * HANDSHAKE_FAILED_NO_DETAIL and endless reconnects. So 400 becomes
 * CASENET_EUNAUTH at once, 300/500 CASENET_EUNAVAIL, a wrong broker key
 * CASENET_ETIMEDOUT at the deadline, and the next call reconnects the
 * endpoint to try again (a re-admitted member recovers). If the monitor's
 * queue overflows (about 2000 unread events, e.g. a long-idle client whose
 * broker keeps refusing it) libzmq drops events rather than blocking.
 *
 * Re-subscription: a reconnect is a HANDSHAKE_SUCCEEDED after a
 * DISCONNECTED (not ZMQ_EVENT_CONNECTED, which is the bare TCP connect
 * before CURVE; with ZMQ_IMMEDIATE nothing can be sent until the handshake).
 * The Subscribe goes out at the end of the call that noticed it, at the start
 * of the next call, or inside casenet_client_wait_notice. Rows that appear
 * between the broker's restart and that Subscribe are not pushed: an agent
 * that must not miss any lists its inbox as well.
 */
#include "client_impl.h"

#include "text.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define CN_PROTOCOL_VERSION     1
#define CN_DEFAULT_TIMEOUT_MS   10000
#define CN_DEFAULT_CLIENT_NAME  "libcasenet"
#define CN_CLIENT_NAME_MAX      128
#define CN_ENDPOINT_MAX         255 /* one endpoint of the comma-separated list */
#define CN_MAX_INBOUND_BYTES    (16 * 1024 * 1024)
#define CN_RECONNECT_IVL_MS     100
#define CN_RECONNECT_IVL_MAX_MS 2000
#define CN_HEARTBEAT_IVL_MS     2000
#define CN_HEARTBEAT_TIMEOUT_MS 6000
#define CN_HANDSHAKE_IVL_MS     5000
#define CN_CONNECT_TIMEOUT_MS   3000
#define CN_FIRST_RESEND_MS      1000
#define CN_RESUBSCRIBE_MIN_MS   1000
#define CN_MAX_QUEUED_NOTICES   4096
#define CN_ZAP_STATUS_REFUSED   400
#define CN_MONITOR_ENDPOINT     "inproc://casenet-client-monitor"
#define CN_MONITOR_EVENTS                                                                          \
    (ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |    \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
/* A monitor event's first frame: uint16 event, uint32 value (host order). */
#define CN_MONITOR_FRAME_BYTES 6

_Static_assert(CASENET_CURVE_KEY_BYTES == 32, "ZMQ_CURVE_*KEY take 32 binary bytes");

/* ------------------------------------------------------------------ helpers */

/* Maps a ZeroMQ errno to casenet_err. */
static int zmq_err(int errnum)
{
    switch (errnum) {
    case ENOMEM:
        return CASENET_ENOMEM;
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
        return CASENET_EINVAL;
    case EAGAIN:
        return CASENET_ETIMEDOUT;
    default:
        return CASENET_EIO;
    }
}

void client_set_error(casenet_client *c, const char *msg)
{
    size_t i = 0;
    for (; msg && msg[i] && i + 1 < sizeof c->last_error; i++) {
        unsigned char ch = (unsigned char)msg[i];
        c->last_error[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    c->last_error[i] = '\0';
}

static int set_int_opt(void *sock, int opt, int value)
{
    if (zmq_setsockopt(sock, opt, &value, sizeof value) != 0)
        return zmq_err(zmq_errno());
    return CASENET_OK;
}

bool client_id_bytes_ok(const ProtobufCBinaryData *b, size_t want, bool optional)
{
    if (b->len == 0)
        return optional;
    return b->len == want && b->data != NULL;
}
bool client_kind_known(int k)
{
    return (k >= CASENET_KIND_REFERRAL && k <= CASENET_KIND_DEAD_LETTER) ||
           k == CASENET_KIND_RECEIPT;
}

int client_copy_bin(const ProtobufCBinaryData *b, casenet_buf *out)
{
    out->data = NULL;
    out->len = 0;
    if (b->len == 0)
        return CASENET_OK;
    out->data = malloc(b->len);
    if (!out->data)
        return CASENET_ENOMEM;
    memcpy(out->data, b->data, b->len);
    out->len = b->len;
    return CASENET_OK;
}

uint32_t client_page_limit(uint32_t limit)
{
    if (limit == 0)
        return CN_LIST_DEFAULT_LIMIT;
    return limit > CN_LIST_MAX_LIMIT ? CN_LIST_MAX_LIMIT : limit;
}

bool client_page_ok(casenet_client *c, const char *what, size_t n, uint32_t limit, bool more,
                    uint64_t next_cursor, uint64_t cursor)
{
    if (n <= limit && !(more && next_cursor <= cursor))
        return true;
    char msg[96];
    snprintf(msg, sizeof msg, "malformed %s page from the broker", what);
    client_set_error(c, msg);
    return false;
}

/* ------------------------------------------------------------------ notices */

/* Takes ownership of *e. When the queue is full the notice is dropped: the
 * inbox itself is durable, a notice is only a hint to list it. */
static void queue_push(casenet_client *c, casenet_inbox_entry *e)
{
    if (c->q_len == c->q_cap) {
        size_t cap = c->q_cap ? 2 * c->q_cap : 16;
        if (c->q_len >= CN_MAX_QUEUED_NOTICES || cap > CN_MAX_QUEUED_NOTICES)
            cap = CN_MAX_QUEUED_NOTICES;
        if (cap <= c->q_cap) {
            casenet_inbox_entry_clear(e);
            return;
        }
        casenet_inbox_entry *q = calloc(cap, sizeof *q);
        if (!q) {
            casenet_inbox_entry_clear(e);
            return;
        }
        for (size_t i = 0; i < c->q_len; i++)
            q[i] = c->queue[(c->q_head + i) % c->q_cap];
        free(c->queue);
        c->queue = q;
        c->q_cap = cap;
        c->q_head = 0;
    }
    c->queue[(c->q_head + c->q_len) % c->q_cap] = *e;
    c->q_len++;
    memset(e, 0, sizeof *e);
}

static bool queue_pop(casenet_client *c, casenet_inbox_entry *out)
{
    if (c->q_len == 0)
        return false;
    *out = c->queue[c->q_head];
    memset(&c->queue[c->q_head], 0, sizeof c->queue[c->q_head]);
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_len--;
    return true;
}

/* ------------------------------------------------------------------ events */

/* Applies one monitor event to the connection state. */
static void on_event(casenet_client *c, uint16_t event, uint32_t value)
{
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        c->connected = true;
        c->auth_failed = 0;
        c->handshake_failures = 0;
        if (c->lost_connection && c->subscribed)
            c->resubscribe = true;
        c->lost_connection = false;
        break;
    case ZMQ_EVENT_DISCONNECTED:
        c->connected = false;
        c->lost_connection = true;
        c->disconnects++;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        c->auth_failed = value ? value : CN_ZAP_STATUS_REFUSED;
        c->handshake_failures++;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        c->handshake_failures++;
        break;
    default:
        break;
    }
}

/* Reads every pending monitor event. */
static int drain_monitor(casenet_client *c)
{
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, c->mon, ZMQ_DONTWAIT) < 0) {
            int err = zmq_errno();
            zmq_msg_close(&msg);
            if (err == EAGAIN)
                return CASENET_OK;
            if (err == EINTR)
                continue;
            return zmq_err(err);
        }
        bool more = zmq_msg_more(&msg);
        if (zmq_msg_size(&msg) == CN_MONITOR_FRAME_BYTES) {
            const uint8_t *p = zmq_msg_data(&msg);
            uint16_t event;
            uint32_t value;
            memcpy(&event, p, sizeof event);
            memcpy(&value, p + sizeof event, sizeof value);
            on_event(c, event, value);
        }
        zmq_msg_close(&msg);
        /* The endpoint frame (and anything else) of this event. */
        while (more) {
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, c->mon, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&msg);
                break;
            }
            more = zmq_msg_more(&msg);
            zmq_msg_close(&msg);
        }
    }
}

/* ------------------------------------------------------------------ the round trip */

/* Handles one frame from the broker: queues a notice, hands back the
 * response to `awaited` in *got (when still NULL), drops anything else
 * (malformed frames, late replies). */
static void on_frame(casenet_client *c, const uint8_t *data, size_t len, uint64_t awaited,
                     Casenet__V1__Response **got)
{
    Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, len, data);
    if (r && !cn_pb_strings_valid(&r->base)) { /* malformed: dropped like the others */
        casenet__v1__response__free_unpacked(r, NULL);
        r = NULL;
    }
    if (!r)
        return;
    if (r->request_id == 0) {
        if (r->body_case == CASENET__V1__RESPONSE__BODY_NOTICE && r->notice) {
            casenet_inbox_entry e;
            if (client_entry_from_pb(r->notice->entry, &e) == CASENET_OK)
                queue_push(c, &e);
        }
    } else if (awaited != 0 && r->request_id == awaited && *got == NULL) {
        *got = r;
        return;
    }
    casenet__v1__response__free_unpacked(r, NULL);
}

/* Reads every frame waiting on the socket. */
static int drain_socket(casenet_client *c, uint64_t awaited, Casenet__V1__Response **got)
{
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) < 0) {
            int err = zmq_errno();
            zmq_msg_close(&msg);
            if (err == EAGAIN)
                return CASENET_OK;
            if (err == EINTR)
                continue;
            return zmq_err(err);
        }
        if (!zmq_msg_more(&msg)) {
            on_frame(c, zmq_msg_data(&msg), zmq_msg_size(&msg), awaited, got);
            zmq_msg_close(&msg);
            continue;
        }
        /* Multi-frame: not our protocol; drop every part. */
        bool more = true;
        while (more) {
            zmq_msg_close(&msg);
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) < 0)
                break;
            more = zmq_msg_more(&msg);
        }
        zmq_msg_close(&msg);
    }
}

/* Waits until `until` (monotonic ms) for the socket (readable, or writable
 * when want_out) or a monitor event, then processes what arrived. */
static int pump(casenet_client *c, int64_t until, bool want_out, uint64_t awaited,
                Casenet__V1__Response **got)
{
    zmq_pollitem_t items[2] = {
        {.socket = c->sock, .events = (short)(ZMQ_POLLIN | (want_out ? ZMQ_POLLOUT : 0))},
        {.socket = c->mon, .events = ZMQ_POLLIN},
    };
    int64_t wait = until - cn_mono_ms();
    if (wait < 0)
        wait = 0;
    if (wait > INT_MAX)
        wait = INT_MAX;
    if (zmq_poll(items, 2, (long)wait) < 0 && zmq_errno() != EINTR)
        return zmq_err(zmq_errno());
    int rc = drain_monitor(c);
    if (rc != CASENET_OK)
        return rc;
    return drain_socket(c, awaited, got);
}

/* Maps a broker Error to casenet_err and keeps its message and hint. */
static int from_wire_error(casenet_client *c, const Casenet__V1__Error *e)
{
    client_set_error(c, e->message);
    int code = (int)e->code;
    if (code == CASENET_ERATELIMIT || code == CASENET_EUNAVAIL)
        c->retry_after_ms = e->retry_after_ms;
    if (code == CASENET_ESTALEDIR)
        c->stale_version = e->directory_version;
    if ((code >= CASENET_EBADREQ && code <= CASENET_EVERSION) || code == CASENET_ESTALEDIR ||
        code == CASENET_EDIREXPIRED || code == CASENET_EQUOTA)
        return code;
    return CASENET_EBADREQ; /* an error code this client does not know */
}

static void resubscribe(casenet_client *c, int64_t deadline);

/*
 * The one request/reply mechanism. Assigns req a fresh request_id, sends it
 * once the connection is up and waits until `deadline` (monotonic ms) for
 * the Response with that id. Idempotent requests are resent as the identical
 * frame after a disconnect and on a doubling interval. Notices that arrive
 * meanwhile are queued.
 *
 * On success *out is the Response (free with
 * casenet__v1__response__free_unpacked), error unset and body_case == expect
 * with its body present. Failures: the broker's error code,
 * CASENET_ETIMEDOUT, CASENET_EUNAUTH (the broker's ZAP refused our key),
 * CASENET_EUNAVAIL (ZAP failed otherwise), CASENET_EVERSION,
 * CASENET_EBADREQ (a reply of the wrong kind), CASENET_ENOMEM, CASENET_EIO.
 */
static int client_call(casenet_client *c, Casenet__V1__Request *req,
                       Casenet__V1__Response__BodyCase expect, bool idempotent, int64_t deadline,
                       Casenet__V1__Response **out)
{
    int rc = CASENET_ETIMEDOUT;
    Casenet__V1__Response *got = NULL;
    req->protocol_version = CN_PROTOCOL_VERSION;
    req->request_id = c->next_request_id++;
    if (c->next_request_id == 0)
        c->next_request_id = 1; /* 0 marks pushed notices */
    size_t len = casenet__v1__request__get_packed_size(req);
    uint8_t *frame = malloc(len ? len : 1);
    if (!frame)
        return CASENET_ENOMEM;
    size_t packed = casenet__v1__request__pack(req, frame);
    assert(packed == len);
    (void)packed;

    bool need_send = true, sent = false;
    uint64_t sent_disconnects = 0;
    int64_t resend_ivl = CN_FIRST_RESEND_MS, resend_at = 0;
    for (;;) {
        int64_t now = cn_mono_ms();
        if (sent && idempotent && (c->disconnects != sent_disconnects || now >= resend_at))
            need_send = true;
        if (need_send) {
            if (zmq_send(c->sock, frame, len, ZMQ_DONTWAIT) >= 0) {
                need_send = false;
                sent = true;
                sent_disconnects = c->disconnects;
                resend_at = now + resend_ivl;
                resend_ivl *= 2;
            } else if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) {
                rc = zmq_err(zmq_errno());
                goto cleanup;
            }
        }
        int64_t until = deadline;
        if (sent && idempotent && !need_send && resend_at < until)
            until = resend_at;
        rc = pump(c, until, need_send, req->request_id, &got);
        if (rc != CASENET_OK)
            goto cleanup;
        if (got)
            break;
        if (c->auth_failed && !c->connected) {
            char msg[96];
            snprintf(msg, sizeof msg, "the broker refused this member's key (ZAP status %u)",
                     (unsigned)c->auth_failed);
            client_set_error(c, msg);
            rc = c->auth_failed == CN_ZAP_STATUS_REFUSED ? CASENET_EUNAUTH : CASENET_EUNAVAIL;
            goto cleanup;
        }
        if (cn_mono_ms() >= deadline) {
            if (!c->connected && c->handshake_failures > 0)
                client_set_error(c, "no CURVE handshake with the broker (wrong broker key in "
                                    "the directory, or this key not accepted)");
            else
                client_set_error(c, "no answer from the broker in time");
            rc = CASENET_ETIMEDOUT;
            goto cleanup;
        }
    }

    if (got->protocol_version != CN_PROTOCOL_VERSION) {
        client_set_error(c, "the broker answered with another protocol version");
        rc = CASENET_EVERSION;
    } else if (got->error) {
        rc = from_wire_error(c, got->error);
    } else if (got->body_case != expect || got->hello == NULL /* any member of the union */) {
        client_set_error(c, "the broker answered with the wrong kind of reply");
        rc = CASENET_EBADREQ;
    } else {
        *out = got;
        got = NULL;
        rc = CASENET_OK;
    }
cleanup:
    casenet__v1__response__free_unpacked(got, NULL);
    free(frame);
    /* Reconnected during this call while subscribed: restore the
     * subscription now rather than at the next call, so that notices for
     * rows created meanwhile are not missed. */
    if (c->resubscribe && req->body_case != CASENET__V1__REQUEST__BODY_SUBSCRIBE && c->connected) {
        resubscribe(c, deadline);
    }
    return rc;
}

/* Wraps body in a Request and runs it to its reply by deadline (client_call).
 * body is any member of the Request's body union: they are all pointers to
 * structures, which share one representation (C11 6.2.5p28). */
static int request_until(casenet_client *c, int64_t deadline,
                         Casenet__V1__Request__BodyCase body_case, void *body,
                         Casenet__V1__Response__BodyCase expect, bool idempotent,
                         Casenet__V1__Response **out)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = body_case;
    req.hello = body;
    return client_call(c, &req, expect, idempotent, deadline, out);
}

static int subscribe_call(casenet_client *c, int64_t deadline)
{
    Casenet__V1__Subscribe sub = CASENET__V1__SUBSCRIBE__INIT;
    Casenet__V1__Response *resp = NULL;
    int rc = request_until(c, deadline, CASENET__V1__REQUEST__BODY_SUBSCRIBE, &sub,
                           CASENET__V1__RESPONSE__BODY_SUBSCRIBE, true, &resp);
    casenet__v1__response__free_unpacked(resp, NULL);
    if (rc == CASENET_OK) {
        c->subscribed = true;
        c->resubscribe = false;
    }
    return rc;
}

/* Subscribe again after a reconnect, within deadline but taking at least
 * CN_RESUBSCRIBE_MIN_MS; keeps the caller's error state. A failure leaves
 * c->resubscribe set for the next call. */
static void resubscribe(casenet_client *c, int64_t deadline)
{
    char saved[CN_LAST_ERROR_MAX];
    memcpy(saved, c->last_error, sizeof saved);
    uint32_t saved_retry = c->retry_after_ms;
    uint64_t saved_stale = c->stale_version;
    int64_t floor = cn_mono_ms() + CN_RESUBSCRIBE_MIN_MS;
    (void)subscribe_call(c, deadline > floor ? deadline : floor);
    memcpy(c->last_error, saved, sizeof saved);
    c->retry_after_ms = saved_retry;
    c->stale_version = saved_stale;
}

/* Calls op (zmq_connect or zmq_disconnect) on every endpoint of the
 * comma-separated list c->endpoint; true when each call succeeded (or, with
 * gone_ok, found the endpoint not connected). */
static bool endpoints_apply(casenet_client *c, int (*op)(void *, const char *), bool gone_ok)
{
    bool ok = true;
    char one[CN_ENDPOINT_MAX + 1];
    for (const char *p = c->endpoint; *p;) {
        size_t len = strcspn(p, ",");
        if (len > 0 && len < sizeof one) {
            memcpy(one, p, len);
            one[len] = '\0';
            if (op(c->sock, one) != 0 && !(gone_ok && zmq_errno() == ENOENT))
                ok = false;
        } else {
            ok = false;
        }
        p += len + (p[len] == ',');
    }
    return ok;
}

/* Catches up on monitor events, reconnects after a ZAP refusal (the socket
 * gave up on the endpoint), re-subscribes after a reconnect, then clears the
 * error state for the call about to start. */
static void begin_call(casenet_client *c, int64_t deadline)
{
    if (drain_monitor(c) == CASENET_OK && c->auth_failed && !c->connected) {
        /* Failure here leaves the flag set: the call then fails at once. */
        if (endpoints_apply(c, zmq_disconnect, true) && endpoints_apply(c, zmq_connect, false)) {
            c->auth_failed = 0;
            c->handshake_failures = 0;
        }
    }
    if (c->resubscribe)
        resubscribe(c, deadline);
    c->last_error[0] = '\0';
    c->retry_after_ms = 0;
    c->stale_version = 0;
}

static int64_t call_deadline(const casenet_client *c)
{
    return cn_mono_ms() + c->timeout_ms;
}

int client_request(casenet_client *c, Casenet__V1__Request__BodyCase body_case, void *body,
                   Casenet__V1__Response__BodyCase expect, bool idempotent,
                   Casenet__V1__Response **out)
{
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);
    return request_until(c, deadline, body_case, body, expect, idempotent, out);
}

void client_begin(casenet_client *c)
{
    begin_call(c, call_deadline(c));
}

/* ------------------------------------------------------------------ connect */

static int open_socket(casenet_client *c, const uint8_t server_key[CASENET_CURVE_KEY_BYTES])
{
    int rc;
    c->ctx = zmq_ctx_new();
    if (!c->ctx)
        return zmq_err(zmq_errno());
    if (zmq_ctx_set(c->ctx, ZMQ_BLOCKY, 0) != 0)
        return zmq_err(zmq_errno());
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (!c->sock)
        return zmq_err(zmq_errno());
    const int64_t maxmsg = CN_MAX_INBOUND_BYTES;
    if ((rc = set_int_opt(c->sock, ZMQ_LINGER, 0)) ||
        (rc = set_int_opt(c->sock, ZMQ_IMMEDIATE, 1)) ||
        (rc = set_int_opt(c->sock, ZMQ_RECONNECT_IVL, CN_RECONNECT_IVL_MS)) ||
        (rc = set_int_opt(c->sock, ZMQ_RECONNECT_IVL_MAX, CN_RECONNECT_IVL_MAX_MS)) ||
        (rc = set_int_opt(c->sock, ZMQ_HEARTBEAT_IVL, CN_HEARTBEAT_IVL_MS)) ||
        (rc = set_int_opt(c->sock, ZMQ_HEARTBEAT_TIMEOUT, CN_HEARTBEAT_TIMEOUT_MS)) ||
        (rc = set_int_opt(c->sock, ZMQ_HEARTBEAT_TTL, CN_HEARTBEAT_TIMEOUT_MS)) ||
        (rc = set_int_opt(c->sock, ZMQ_HANDSHAKE_IVL, CN_HANDSHAKE_IVL_MS)) ||
        (rc = set_int_opt(c->sock, ZMQ_CONNECT_TIMEOUT, CN_CONNECT_TIMEOUT_MS)))
        return rc;
    if (zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server_key, CASENET_CURVE_KEY_BYTES) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, casenet_keys_curve_pk(c->keys),
                       CASENET_CURVE_KEY_BYTES) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, casenet_keys_curve_sk(c->keys),
                       CASENET_CURVE_KEY_BYTES) != 0)
        return zmq_err(zmq_errno());

    if (zmq_socket_monitor(c->sock, CN_MONITOR_ENDPOINT, CN_MONITOR_EVENTS) != 0)
        return zmq_err(zmq_errno());
    c->mon = zmq_socket(c->ctx, ZMQ_PAIR);
    if (!c->mon)
        return zmq_err(zmq_errno());
    if ((rc = set_int_opt(c->mon, ZMQ_LINGER, 0)))
        return rc;
    if (zmq_connect(c->mon, CN_MONITOR_ENDPOINT) != 0)
        return zmq_err(zmq_errno());
    /* Every broker of the list at once: with ZMQ_IMMEDIATE a request goes
     * only to a broker whose handshake completed, and standbys do not bind,
     * so the active broker gets it; when it goes, the resend after the
     * disconnect reaches the one that took over (PROTOCOL.md §7). */
    if (!endpoints_apply(c, zmq_connect, false))
        return zmq_errno() ? zmq_err(zmq_errno()) : CASENET_EINVAL;
    return CASENET_OK;
}

static int hello_call(casenet_client *c, int64_t deadline)
{
    Casenet__V1__Hello hello = CASENET__V1__HELLO__INIT;
    hello.client = c->client_name;
    Casenet__V1__Response *resp = NULL;
    int rc = request_until(c, deadline, CASENET__V1__REQUEST__BODY_HELLO, &hello,
                           CASENET__V1__RESPONSE__BODY_HELLO, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__HelloReply *h = resp->hello;
    const char *member = h->member_id ? h->member_id : "";
    if (strcmp(member, casenet_keys_member_id(c->keys)) != 0) {
        client_set_error(c, "the broker authenticated this connection as another member");
        rc = CASENET_EUNAUTH;
        goto cleanup;
    }
    if (h->broker_id && cn_strlcpy(c->broker_id, h->broker_id, sizeof c->broker_id) != CASENET_OK)
        c->broker_id[0] = '\0';
    c->max_envelope_bytes = h->max_envelope_bytes;
    rc = CASENET_OK;
cleanup:
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_connect(const casenet_keys *keys, const casenet_directory *dir,
                           const casenet_client_opts *opts, casenet_client **out)
{
    if (!keys || !dir || !opts || !out || !opts->endpoint || opts->timeout_ms < 0)
        return CASENET_EINVAL;
    if (!casenet_keys_curve_pk(keys) || !casenet_keys_curve_sk(keys))
        return CASENET_EINVAL;
    const char *name = opts->client_name ? opts->client_name : CN_DEFAULT_CLIENT_NAME;
    if (strnlen(name, CN_CLIENT_NAME_MAX + 1) > CN_CLIENT_NAME_MAX)
        return CASENET_EINVAL;
    casenet_member broker;
    int rc = casenet_directory_broker(dir, &broker);
    if (rc != CASENET_OK)
        return rc;
    if (!broker.curve_pk)
        return CASENET_ENOTFOUND;

    casenet_client *c = calloc(1, sizeof *c);
    if (!c)
        return CASENET_ENOMEM;
    c->keys = keys;
    c->dir = dir;
    c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : CN_DEFAULT_TIMEOUT_MS;
    c->next_request_id = 1;
    c->endpoint = strdup(opts->endpoint);
    c->client_name = strdup(name);
    rc = CASENET_ENOMEM;
    if (!c->endpoint || !c->client_name)
        goto cleanup;
    rc = open_socket(c, broker.curve_pk);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = hello_call(c, call_deadline(c));
    if (rc != CASENET_OK)
        goto cleanup;
    *out = c;
    c = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_client_free(c);
    return rc;
}

void casenet_client_free(casenet_client *c)
{
    if (!c)
        return;
    if (c->sock)
        (void)zmq_socket_monitor(c->sock, NULL, 0);
    if (c->mon)
        (void)zmq_close(c->mon);
    if (c->sock)
        (void)zmq_close(c->sock);
    if (c->ctx) {
        while (zmq_ctx_term(c->ctx) != 0 && zmq_errno() == EINTR) {
        }
    }
    casenet_inbox_entry e;
    while (queue_pop(c, &e))
        casenet_inbox_entry_clear(&e);
    free(c->queue);
    free(c->endpoint);
    free(c->client_name);
    free(c);
}

void casenet_client_set_directory(casenet_client *c, const casenet_directory *dir)
{
    assert(c && dir);
    c->dir = dir;
}

const char *casenet_client_last_error(const casenet_client *c)
{
    return c ? c->last_error : "";
}

uint32_t casenet_client_retry_after_ms(const casenet_client *c)
{
    return c ? c->retry_after_ms : 0;
}

uint64_t casenet_client_stale_directory_version(const casenet_client *c)
{
    return c ? c->stale_version : 0;
}

uint64_t casenet_client_disconnects(const casenet_client *c)
{
    return c ? c->disconnects : 0;
}

int casenet_client_subscribe(casenet_client *c)
{
    if (!c)
        return CASENET_EINVAL;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);
    return subscribe_call(c, deadline);
}

int casenet_client_wait_notice(casenet_client *c, int timeout_ms, casenet_inbox_entry *entry)
{
    if (!c || !entry || timeout_ms < 0)
        return CASENET_EINVAL;
    int64_t deadline = cn_mono_ms() + timeout_ms;
    bool resubscribed = false;
    c->last_error[0] = '\0';
    c->retry_after_ms = 0;
    for (;;) {
        if (queue_pop(c, entry))
            return CASENET_OK;
        if (c->resubscribe && !resubscribed) {
            /* Once per call, after a reconnect; it may take up to
             * CN_RESUBSCRIBE_MIN_MS even when the wait is shorter. */
            resubscribe(c, deadline);
            resubscribed = true;
            continue;
        }
        if (cn_mono_ms() >= deadline)
            return CASENET_ETIMEDOUT;
        Casenet__V1__Response *none = NULL;
        int rc = pump(c, deadline, false, 0, &none);
        assert(none == NULL);
        if (rc != CASENET_OK)
            return rc;
    }
}
