/*
 * client.c - the broker connection of libcasenet: one ZeroMQ DEALER socket
 * with CURVE client keys, one request/reply round trip (client_call) used by
 * every casenet_client_* function, pushed notices queued for
 * casenet_client_wait_notice, and a socket monitor for reconnects and ZAP
 * refusals.
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
#include "casenet.h"
#include "casenet.pb-c.h"
#include "text.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define CN_PROTOCOL_VERSION     1
#define CN_DEFAULT_TIMEOUT_MS   10000
#define CN_DEFAULT_CLIENT_NAME  "libcasenet"
#define CN_CLIENT_NAME_MAX      128
#define CN_LAST_ERROR_MAX       256
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
#define CN_LIST_DEFAULT_LIMIT   100
#define CN_LIST_MAX_LIMIT       1000
#define CN_ZAP_STATUS_REFUSED   400
#define CN_MONITOR_ENDPOINT     "inproc://casenet-client-monitor"
#define CN_MONITOR_EVENTS                                                                          \
    (ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |    \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
/* A monitor event's first frame: uint16 event, uint32 value (host order). */
#define CN_MONITOR_FRAME_BYTES 6

_Static_assert(CASENET_CURVE_KEY_BYTES == 32, "ZMQ_CURVE_*KEY take 32 binary bytes");

struct casenet_client {
    void *ctx;
    void *sock;
    void *mon;
    const casenet_keys *keys;
    const casenet_directory *dir;
    char *endpoint;
    char *client_name;
    int timeout_ms;
    uint64_t next_request_id;

    /* Connection state, from monitor events. */
    bool connected;         /* a CURVE handshake succeeded and no disconnect since */
    bool lost_connection;   /* a disconnect happened since the last handshake */
    uint64_t disconnects;   /* counts disconnects: a request sent before one is resent */
    uint32_t auth_failed;   /* ZAP status of a refused handshake (0 = none) */
    int handshake_failures; /* since the last success, for error messages */
    bool subscribed;        /* casenet_client_subscribe succeeded once */
    bool resubscribe;       /* reconnected while subscribed: Subscribe again */

    char last_error[CN_LAST_ERROR_MAX];
    uint32_t retry_after_ms;
    uint64_t stale_version; /* of the last STALE_DIRECTORY answer */

    /* What the broker said in Hello. */
    char broker_id[CASENET_MEMBER_ID_MAX + 1];
    uint32_t max_envelope_bytes;

    /* Pushed notices not yet returned by wait_notice: a ring. */
    casenet_inbox_entry *queue;
    size_t q_head, q_len, q_cap;
};

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

/* Stores a printable copy of msg (control bytes become '?'), truncated. */
static void set_last_error(casenet_client *c, const char *msg)
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

static bool valid_id_bytes(const ProtobufCBinaryData *b, size_t want, bool optional)
{
    if (b->len == 0)
        return optional;
    return b->len == want && b->data != NULL;
}

/* Reads the message id from a serialised Envelope (its Header). */
static int envelope_message_id(const uint8_t *env, size_t len, uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    int rc = CASENET_EINVAL;
    Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, len, env);
    if (!e)
        return CASENET_EINVAL;
    Casenet__V1__Header *h = casenet__v1__header__unpack(NULL, e->header.len, e->header.data);
    if (!h)
        goto cleanup;
    if (h->message_id.len != CASENET_MESSAGE_ID_BYTES)
        goto cleanup;
    memcpy(id, h->message_id.data, CASENET_MESSAGE_ID_BYTES);
    rc = CASENET_OK;
cleanup:
    casenet__v1__header__free_unpacked(h, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    return rc;
}

static bool known_kind(int k)
{
    return (k >= CASENET_KIND_REFERRAL && k <= CASENET_KIND_DEAD_LETTER) ||
           k == CASENET_KIND_RECEIPT;
}

/* Converts an InboxEntry from the (untrusted) broker. CASENET_EBADREQ for a
 * wrong-sized id, an over-long or invalid sender, an unknown enum value. */
static int entry_from_pb(const Casenet__V1__InboxEntry *pb, casenet_inbox_entry *out)
{
    if (!pb)
        return CASENET_EBADREQ;
    if (!valid_id_bytes(&pb->message_id, CASENET_MESSAGE_ID_BYTES, false) ||
        !valid_id_bytes(&pb->in_reply_to, CASENET_MESSAGE_ID_BYTES, true) ||
        !valid_id_bytes(&pb->case_ref, CASENET_CASE_REF_BYTES, true))
        return CASENET_EBADREQ;
    const char *sender = pb->sender ? pb->sender : "";
    if (strnlen(sender, CASENET_MEMBER_ID_MAX + 1) > CASENET_MEMBER_ID_MAX ||
        (sender[0] && !casenet_member_id_valid(sender)))
        return CASENET_EBADREQ;
    if (!known_kind((int)pb->kind) || (int)pb->urgency < 0 ||
        (int)pb->urgency > CASENET_URGENCY_INFO || (int)pb->message_status < 0 ||
        (int)pb->message_status > CASENET_MSG_TEST || (int)pb->state < CASENET_INBOX_QUEUED ||
        (int)pb->state > CASENET_INBOX_DEAD || (int)pb->receipt_status < 0 ||
        (int)pb->receipt_status > CASENET_RECEIPT_COMPLETED)
        return CASENET_EBADREQ;

    casenet_inbox_entry e;
    memset(&e, 0, sizeof e);
    if (pb->receipt.len > 0) {
        e.receipt.data = malloc(pb->receipt.len);
        if (!e.receipt.data)
            return CASENET_ENOMEM;
        memcpy(e.receipt.data, pb->receipt.data, pb->receipt.len);
        e.receipt.len = pb->receipt.len;
    }
    e.seq = pb->seq;
    memcpy(e.message_id, pb->message_id.data, CASENET_MESSAGE_ID_BYTES);
    memcpy(e.sender, sender, strlen(sender) + 1);
    e.kind = (casenet_kind)pb->kind;
    e.urgency = (casenet_urgency)pb->urgency;
    e.status = (casenet_msg_status)pb->message_status;
    e.state = (casenet_inbox_state)pb->state;
    e.received_at_ms = pb->received_at_ms;
    e.created_at_ms = pb->created_at_ms;
    e.size = pb->size;
    if (pb->in_reply_to.len) {
        e.has_in_reply_to = true;
        memcpy(e.in_reply_to, pb->in_reply_to.data, CASENET_MESSAGE_ID_BYTES);
    }
    if (pb->case_ref.len) {
        e.has_case_ref = true;
        memcpy(e.case_ref, pb->case_ref.data, CASENET_CASE_REF_BYTES);
    }
    e.receipt_status = (casenet_receipt_status)pb->receipt_status;
    *out = e;
    return CASENET_OK;
}

void casenet_inbox_entry_clear(casenet_inbox_entry *e)
{
    if (!e)
        return;
    casenet_buf_free(&e->receipt);
    memset(e, 0, sizeof *e);
}

void casenet_inbox_entries_free(casenet_inbox_entry *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_inbox_entry_clear(&e[i]);
    free(e);
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
            if (entry_from_pb(r->notice->entry, &e) == CASENET_OK)
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
    set_last_error(c, e->message);
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
            set_last_error(c, msg);
            rc = c->auth_failed == CN_ZAP_STATUS_REFUSED ? CASENET_EUNAUTH : CASENET_EUNAVAIL;
            goto cleanup;
        }
        if (cn_mono_ms() >= deadline) {
            if (!c->connected && c->handshake_failures > 0)
                set_last_error(c, "no CURVE handshake with the broker (wrong broker key in "
                                  "the directory, or this key not accepted)");
            else
                set_last_error(c, "no answer from the broker in time");
            rc = CASENET_ETIMEDOUT;
            goto cleanup;
        }
    }

    if (got->protocol_version != CN_PROTOCOL_VERSION) {
        set_last_error(c, "the broker answered with another protocol version");
        rc = CASENET_EVERSION;
    } else if (got->error) {
        rc = from_wire_error(c, got->error);
    } else if (got->body_case != expect || got->hello == NULL /* any member of the union */) {
        set_last_error(c, "the broker answered with the wrong kind of reply");
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

static int subscribe_call(casenet_client *c, int64_t deadline)
{
    Casenet__V1__Subscribe sub = CASENET__V1__SUBSCRIBE__INIT;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_SUBSCRIBE;
    req.subscribe = &sub;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_SUBSCRIBE, true, deadline, &resp);
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

/* Catches up on monitor events, reconnects after a ZAP refusal (the socket
 * gave up on the endpoint), re-subscribes after a reconnect, then clears the
 * error state for the call about to start. */
static void begin_call(casenet_client *c, int64_t deadline)
{
    if (drain_monitor(c) == CASENET_OK && c->auth_failed && !c->connected) {
        /* Failure here leaves the flag set: the call then fails at once. */
        if (zmq_disconnect(c->sock, c->endpoint) == 0 || zmq_errno() == ENOENT) {
            if (zmq_connect(c->sock, c->endpoint) == 0) {
                c->auth_failed = 0;
                c->handshake_failures = 0;
            }
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
    if (zmq_connect(c->sock, c->endpoint) != 0)
        return zmq_err(zmq_errno());
    return CASENET_OK;
}

static int hello_call(casenet_client *c, int64_t deadline)
{
    Casenet__V1__Hello hello = CASENET__V1__HELLO__INIT;
    hello.client = c->client_name;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    req.hello = &hello;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_HELLO, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__HelloReply *h = resp->hello;
    const char *member = h->member_id ? h->member_id : "";
    if (strcmp(member, casenet_keys_member_id(c->keys)) != 0) {
        set_last_error(c, "the broker authenticated this connection as another member");
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

/* ------------------------------------------------------------------ requests */

int casenet_client_submit(casenet_client *c, const uint8_t *envelope, size_t len,
                          casenet_submit_receipt *receipt, bool *duplicate)
{
    if (!c || !envelope || len == 0 || !receipt)
        return CASENET_EINVAL;
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    uint8_t hash[CASENET_HASH_BYTES];
    int rc = envelope_message_id(envelope, len, id);
    if (rc != CASENET_OK)
        return rc;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);
    if (c->max_envelope_bytes && len > c->max_envelope_bytes) {
        set_last_error(c, "envelope larger than the broker accepts");
        return CASENET_ETOOLARGE;
    }
    cn_sha256(envelope, len, hash);

    Casenet__V1__Submit sub = CASENET__V1__SUBMIT__INIT;
    sub.envelope.data = (uint8_t *)envelope;
    sub.envelope.len = len;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    req.submit = &sub;
    Casenet__V1__Response *resp = NULL;
    rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_SUBMIT, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;

    casenet_submit_receipt r;
    rc = casenet_submit_receipt_verify(c->dir, resp->submit->receipt.data,
                                       resp->submit->receipt.len, &r);
    if (rc != CASENET_OK) {
        set_last_error(c, "the broker's receipt does not verify");
        goto cleanup;
    }
    if (sodium_memcmp(r.message_id, id, sizeof id) != 0 ||
        sodium_memcmp(r.envelope_hash, hash, sizeof hash) != 0) {
        set_last_error(c, "the broker's receipt names another message");
        rc = CASENET_EBADSIG;
        goto cleanup;
    }
    *receipt = r;
    if (duplicate)
        *duplicate = resp->submit->duplicate;
    rc = CASENET_OK;
cleanup:
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_list(casenet_client *c, casenet_inbox_state state, uint64_t cursor,
                        uint32_t limit, casenet_inbox_entry **entries, size_t *n,
                        uint64_t *next_cursor, bool *more)
{
    if (!c || !entries || !n || (int)state < CASENET_INBOX_ANY || (int)state > CASENET_INBOX_DEAD)
        return CASENET_EINVAL;
    if (limit == 0)
        limit = CN_LIST_DEFAULT_LIMIT;
    if (limit > CN_LIST_MAX_LIMIT)
        limit = CN_LIST_MAX_LIMIT;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);

    Casenet__V1__ListInbox li = CASENET__V1__LIST_INBOX__INIT;
    li.state = (Casenet__V1__InboxState)state;
    li.cursor = cursor;
    li.limit = limit;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_LIST_INBOX;
    req.list_inbox = &li;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_INBOX, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;

    const Casenet__V1__InboxPage *page = resp->inbox;
    casenet_inbox_entry *arr = NULL;
    size_t i = 0;
    rc = CASENET_EBADREQ;
    if (page->n_entries > limit || (page->more && page->next_cursor <= cursor)) {
        set_last_error(c, "malformed inbox page from the broker");
        goto cleanup;
    }
    arr = calloc(page->n_entries ? page->n_entries : 1, sizeof *arr);
    if (!arr) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (; i < page->n_entries; i++) {
        rc = entry_from_pb(page->entries[i], &arr[i]);
        if (rc != CASENET_OK) {
            set_last_error(c, "malformed inbox entry from the broker");
            goto cleanup;
        }
    }
    *entries = arr;
    *n = page->n_entries;
    if (next_cursor)
        *next_cursor = page->next_cursor;
    if (more)
        *more = page->more;
    arr = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_inbox_entries_free(arr, i);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_fetch(casenet_client *c, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                         casenet_buf *envelope)
{
    if (!envelope)
        return CASENET_EINVAL;
    casenet_inbox_entry e;
    casenet_buf env = {0};
    int rc = casenet_client_fetch_row(c, id, &env, &e);
    if (rc != CASENET_OK)
        return rc;
    if (e.kind == CASENET_KIND_RECEIPT) {
        set_last_error(c, "this inbox row is a forwarded receipt, not a message");
        rc = CASENET_EBADREQ;
    } else {
        *envelope = env;
        env = (casenet_buf){0};
    }
    casenet_inbox_entry_clear(&e);
    casenet_buf_free(&env);
    return rc;
}

int casenet_client_fetch_row(casenet_client *c, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                             casenet_buf *envelope, casenet_inbox_entry *entry)
{
    if (!c || !id || !envelope || !entry)
        return CASENET_EINVAL;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);

    Casenet__V1__Fetch f = CASENET__V1__FETCH__INIT;
    f.message_id.data = (uint8_t *)id;
    f.message_id.len = CASENET_MESSAGE_ID_BYTES;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_FETCH;
    req.fetch = &f;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_FETCH, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;

    const ProtobufCBinaryData *env = &resp->fetch->envelope;
    casenet_inbox_entry e;
    uint8_t got_id[CASENET_MESSAGE_ID_BYTES];
    rc = entry_from_pb(resp->fetch->entry, &e);
    if (rc == CASENET_EBADREQ || (rc == CASENET_OK && memcmp(e.message_id, id, sizeof got_id))) {
        set_last_error(c, "the broker returned another or a malformed inbox row");
        if (rc == CASENET_OK)
            casenet_inbox_entry_clear(&e);
        rc = CASENET_EBADREQ;
    }
    if (rc != CASENET_OK)
        goto cleanup;
    bool receipt_row = e.kind == CASENET_KIND_RECEIPT;
    if (receipt_row
            ? env->len != 0 || e.receipt.len == 0
            : env->len == 0 || envelope_message_id(env->data, env->len, got_id) != CASENET_OK ||
                  memcmp(got_id, id, sizeof got_id) != 0) {
        set_last_error(c, "the broker returned another or a malformed envelope");
        casenet_inbox_entry_clear(&e);
        rc = CASENET_EBADREQ;
        goto cleanup;
    }
    uint8_t *copy = env->len ? malloc(env->len) : NULL;
    if (env->len && !copy) {
        casenet_inbox_entry_clear(&e);
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    if (copy)
        memcpy(copy, env->data, env->len);
    envelope->data = copy;
    envelope->len = env->len;
    *entry = e;
    rc = CASENET_OK;
cleanup:
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_send_receipt(casenet_client *c, const uint8_t *receipt, size_t len,
                                uint64_t *audit_index)
{
    if (!c || !receipt || len == 0)
        return CASENET_EINVAL;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);

    Casenet__V1__SendReceipt sr = CASENET__V1__SEND_RECEIPT__INIT;
    sr.signed_receipt.data = (uint8_t *)receipt;
    sr.signed_receipt.len = len;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_RECEIPT;
    req.receipt = &sr;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_RECEIPT, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    if (audit_index)
        *audit_index = resp->receipt->audit_index;
    casenet__v1__response__free_unpacked(resp, NULL);
    return CASENET_OK;
}

int casenet_client_get_directory(casenet_client *c, casenet_buf *out)
{
    if (!c || !out)
        return CASENET_EINVAL;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);

    Casenet__V1__GetDirectory gd = CASENET__V1__GET_DIRECTORY__INIT;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_GET_DIRECTORY;
    req.get_directory = &gd;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_DIRECTORY, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    const ProtobufCBinaryData *d = &resp->directory->signed_directory;
    rc = CASENET_EBADREQ;
    if (d->len == 0) {
        set_last_error(c, "the broker returned an empty directory");
        goto cleanup;
    }
    uint8_t *copy = malloc(d->len);
    if (!copy) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    memcpy(copy, d->data, d->len);
    out->data = copy;
    out->len = d->len;
    rc = CASENET_OK;
cleanup:
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_publish_directory(casenet_client *c, const uint8_t *signed_dir, size_t len,
                                     uint64_t *version)
{
    if (!c || !signed_dir || len == 0)
        return CASENET_EINVAL;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);

    Casenet__V1__PublishDirectory pd = CASENET__V1__PUBLISH_DIRECTORY__INIT;
    pd.signed_directory.data = (uint8_t *)signed_dir;
    pd.signed_directory.len = len;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_PUBLISH_DIRECTORY;
    req.publish_directory = &pd;
    Casenet__V1__Response *resp = NULL;
    /* Not idempotent: a second copy would be refused as an old version. */
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_PUBLISH, false, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    if (version)
        *version = resp->publish->version;
    casenet__v1__response__free_unpacked(resp, NULL);
    return CASENET_OK;
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

/* ------------------------------------------------------------------ lifecycle */

static int copy_member(char out[CASENET_MEMBER_ID_MAX + 1], const char *in, bool may_be_empty)
{
    const char *s = in ? in : "";
    if (!s[0])
        return may_be_empty ? (out[0] = '\0', CASENET_OK) : CASENET_EBADREQ;
    if (strnlen(s, CASENET_MEMBER_ID_MAX + 1) > CASENET_MEMBER_ID_MAX ||
        !casenet_member_id_valid(s))
        return CASENET_EBADREQ;
    memcpy(out, s, strlen(s) + 1);
    return CASENET_OK;
}

static bool copy_id(uint8_t *out, size_t want, const ProtobufCBinaryData *b, bool *has)
{
    if (!valid_id_bytes(b, want, has != NULL))
        return false;
    if (has)
        *has = b->len != 0;
    if (b->len)
        memcpy(out, b->data, want);
    return true;
}

static int copy_buf(casenet_buf *out, const ProtobufCBinaryData *b)
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

static bool valid_state(int s)
{
    return s >= CASENET_INBOX_QUEUED && s <= CASENET_INBOX_DEAD;
}

static bool valid_message_enums(int kind, int urgency, int status)
{
    return known_kind(kind) && kind != CASENET_KIND_RECEIPT && urgency >= 0 &&
           urgency <= CASENET_URGENCY_INFO && status >= 0 && status <= CASENET_MSG_TEST;
}

static void recipient_status_clear(casenet_recipient_status *r)
{
    for (size_t i = 0; r->steps && i < r->n_steps; i++)
        casenet_buf_free(&r->steps[i].receipt);
    free(r->steps);
    free(r->deadlines);
    memset(r, 0, sizeof *r);
}

void casenet_message_status_clear(casenet_message_status *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->recipients && i < s->n_recipients; i++)
        recipient_status_clear(&s->recipients[i]);
    free(s->recipients);
    casenet_buf_free(&s->broker_receipt);
    memset(s, 0, sizeof *s);
}

void casenet_message_statuses_free(casenet_message_status *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_message_status_clear(&s[i]);
    free(s);
}

static int recipient_from_pb(const Casenet__V1__RecipientStatus *pb, casenet_recipient_status *out)
{
    memset(out, 0, sizeof *out);
    if (!pb || copy_member(out->recipient, pb->recipient, false) != CASENET_OK ||
        !valid_state((int)pb->state))
        return CASENET_EBADREQ;
    out->state = (casenet_inbox_state)pb->state;
    int rc = CASENET_ENOMEM;
    out->deadlines = calloc(pb->n_deadlines ? pb->n_deadlines : 1, sizeof *out->deadlines);
    out->steps = calloc(pb->n_steps ? pb->n_steps : 1, sizeof *out->steps);
    if (!out->deadlines || !out->steps)
        goto fail;
    rc = CASENET_EBADREQ;
    for (size_t i = 0; i < pb->n_deadlines; i++) {
        const Casenet__V1__Deadline *d = pb->deadlines[i];
        casenet_deadline *o = &out->deadlines[i];
        if (!d || (int)d->kind < CASENET_DEADLINE_DELIVER ||
            (int)d->kind > CASENET_DEADLINE_EXPIRE || (int)d->state < CASENET_DEADLINE_PENDING ||
            (int)d->state > CASENET_DEADLINE_VOID ||
            !copy_id(o->notice_id, CASENET_MESSAGE_ID_BYTES, &d->notice_id, &o->has_notice))
            goto fail;
        o->kind = (casenet_deadline_kind)d->kind;
        o->state = (casenet_deadline_state)d->state;
        o->due_at_ms = d->due_at_ms;
        o->settled_at_ms = d->settled_at_ms;
        out->n_deadlines++;
    }
    for (size_t i = 0; i < pb->n_steps; i++) {
        const Casenet__V1__Step *st = pb->steps[i];
        casenet_step *o = &out->steps[i];
        if (!st || !valid_state((int)st->state) ||
            copy_member(o->actor, st->actor, true) != CASENET_OK)
            goto fail;
        o->state = (casenet_inbox_state)st->state;
        o->at_ms = st->at_ms;
        out->n_steps++;
        if ((rc = copy_buf(&o->receipt, &st->receipt)) != CASENET_OK)
            goto fail;
        rc = CASENET_EBADREQ;
    }
    return CASENET_OK;
fail:
    recipient_status_clear(out);
    return rc;
}

static int record_from_pb(const Casenet__V1__MessageRecord *pb, casenet_message_status *out)
{
    casenet_message_status m;
    memset(&m, 0, sizeof m);
    int rc = CASENET_EBADREQ;
    if (!pb || !copy_id(m.message_id, CASENET_MESSAGE_ID_BYTES, &pb->message_id, NULL) ||
        !copy_id(m.in_reply_to, CASENET_MESSAGE_ID_BYTES, &pb->in_reply_to, &m.has_in_reply_to) ||
        !copy_id(m.case_ref, CASENET_CASE_REF_BYTES, &pb->case_ref, &m.has_case_ref) ||
        !copy_id(m.envelope_hash, CASENET_HASH_BYTES, &pb->envelope_hash, NULL) ||
        copy_member(m.sender, pb->sender, false) != CASENET_OK ||
        !valid_message_enums((int)pb->kind, (int)pb->urgency, (int)pb->message_status))
        return CASENET_EBADREQ;
    m.kind = (casenet_kind)pb->kind;
    m.urgency = (casenet_urgency)pb->urgency;
    m.status = (casenet_msg_status)pb->message_status;
    m.created_at_ms = pb->created_at_ms;
    m.received_at_ms = pb->received_at_ms;
    m.expires_at_ms = pb->expires_at_ms;
    m.cursor = pb->cursor;
    if (pb->n_recipients > CASENET_MAX_RECIPIENTS)
        return CASENET_EBADREQ;
    m.recipients = calloc(pb->n_recipients ? pb->n_recipients : 1, sizeof *m.recipients);
    if (!m.recipients || copy_buf(&m.broker_receipt, &pb->broker_receipt) != CASENET_OK) {
        rc = CASENET_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < pb->n_recipients; i++) {
        if ((rc = recipient_from_pb(pb->recipients[i], &m.recipients[i])) != CASENET_OK)
            goto fail;
        m.n_recipients++;
    }
    *out = m;
    return CASENET_OK;
fail:
    casenet_message_status_clear(&m);
    return rc;
}

int casenet_client_status(casenet_client *c, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                          casenet_message_status *out)
{
    if (!c || !id || !out)
        return CASENET_EINVAL;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);
    Casenet__V1__GetStatus gs = CASENET__V1__GET_STATUS__INIT;
    gs.message_id.data = (uint8_t *)id;
    gs.message_id.len = CASENET_MESSAGE_ID_BYTES;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_GET_STATUS;
    req.get_status = &gs;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_STATUS, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    casenet_message_status m;
    rc = record_from_pb(resp->status->message, &m);
    if (rc == CASENET_OK && memcmp(m.message_id, id, CASENET_MESSAGE_ID_BYTES) != 0) {
        casenet_message_status_clear(&m);
        rc = CASENET_EBADREQ;
    }
    if (rc == CASENET_EBADREQ)
        set_last_error(c, "malformed or mismatched status from the broker");
    if (rc == CASENET_OK)
        *out = m;
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_list_sent(casenet_client *c, bool open_only, casenet_kind kind, uint64_t cursor,
                             uint32_t limit, casenet_message_status **out, size_t *n,
                             uint64_t *next_cursor, bool *more)
{
    if (!c || !out || !n || (kind != 0 && !known_kind((int)kind)))
        return CASENET_EINVAL;
    if (limit == 0)
        limit = CN_LIST_DEFAULT_LIMIT;
    if (limit > CN_LIST_MAX_LIMIT)
        limit = CN_LIST_MAX_LIMIT;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);
    Casenet__V1__ListSent ls = CASENET__V1__LIST_SENT__INIT;
    ls.open_only = open_only;
    ls.kind = (Casenet__V1__Kind)kind;
    ls.cursor = cursor;
    ls.limit = limit;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_LIST_SENT;
    req.list_sent = &ls;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_SENT, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__SentPage *page = resp->sent;
    casenet_message_status *arr = NULL;
    size_t i = 0;
    rc = CASENET_EBADREQ;
    if (page->n_messages > limit || (page->more && page->next_cursor <= cursor)) {
        set_last_error(c, "malformed sent page from the broker");
        goto cleanup;
    }
    arr = calloc(page->n_messages ? page->n_messages : 1, sizeof *arr);
    if (!arr) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (; i < page->n_messages; i++) {
        if ((rc = record_from_pb(page->messages[i], &arr[i])) != CASENET_OK) {
            set_last_error(c, "malformed message record from the broker");
            goto cleanup;
        }
    }
    *out = arr;
    *n = page->n_messages;
    if (next_cursor)
        *next_cursor = page->next_cursor;
    if (more)
        *more = page->more;
    arr = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_message_statuses_free(arr, i);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_list_overdue(casenet_client *c, uint64_t cursor, uint32_t limit,
                                casenet_overdue **out, size_t *n, uint64_t *next_cursor, bool *more)
{
    if (!c || !out || !n)
        return CASENET_EINVAL;
    if (limit == 0)
        limit = CN_LIST_DEFAULT_LIMIT;
    if (limit > CN_LIST_MAX_LIMIT)
        limit = CN_LIST_MAX_LIMIT;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);
    Casenet__V1__ListOverdue lo = CASENET__V1__LIST_OVERDUE__INIT;
    lo.cursor = cursor;
    lo.limit = limit;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_LIST_OVERDUE;
    req.list_overdue = &lo;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_OVERDUE, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__OverduePage *page = resp->overdue;
    casenet_overdue *arr = NULL;
    rc = CASENET_EBADREQ;
    if (page->n_entries > limit || (page->more && page->next_cursor <= cursor))
        goto malformed;
    arr = calloc(page->n_entries ? page->n_entries : 1, sizeof *arr);
    if (!arr) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < page->n_entries; i++) {
        const Casenet__V1__OverdueEntry *e = page->entries[i];
        casenet_overdue *o = &arr[i];
        if (!e || !copy_id(o->message_id, CASENET_MESSAGE_ID_BYTES, &e->message_id, NULL) ||
            !copy_id(o->notice_id, CASENET_MESSAGE_ID_BYTES, &e->notice_id, &o->has_notice) ||
            !copy_id(o->case_ref, CASENET_CASE_REF_BYTES, &e->case_ref, &o->has_case_ref) ||
            copy_member(o->sender, e->sender, false) != CASENET_OK ||
            copy_member(o->recipient, e->recipient, false) != CASENET_OK ||
            !valid_message_enums((int)e->kind, (int)e->urgency, (int)e->message_status) ||
            !valid_state((int)e->state) || (int)e->deadline < CASENET_DEADLINE_DELIVER ||
            (int)e->deadline > CASENET_DEADLINE_EXPIRE)
            goto malformed;
        o->kind = (casenet_kind)e->kind;
        o->urgency = (casenet_urgency)e->urgency;
        o->status = (casenet_msg_status)e->message_status;
        o->state = (casenet_inbox_state)e->state;
        o->deadline = (casenet_deadline_kind)e->deadline;
        o->received_at_ms = e->received_at_ms;
        o->due_at_ms = e->due_at_ms;
        o->escalated_at_ms = e->escalated_at_ms;
    }
    *out = arr;
    *n = page->n_entries;
    if (next_cursor)
        *next_cursor = page->next_cursor;
    if (more)
        *more = page->more;
    arr = NULL;
    rc = CASENET_OK;
    goto cleanup;
malformed:
    set_last_error(c, "malformed overdue page from the broker");
cleanup:
    free(arr);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

/* ------------------------------------------------------------------ audit log */

#define CN_AUDIT_PROOF_MAX  65 /* hashes in the longest proof (merkle.h) */
#define CN_AUDIT_CKPT_MAX   1024
#define CN_AUDIT_EXPORT_MAX 10000u

void casenet_audit_records_free(casenet_audit_record *r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_buf_free(&r[i].event);
    free(r);
}

void casenet_audit_export_page_clear(casenet_audit_export_page *p)
{
    if (!p)
        return;
    if (p->events) {
        for (size_t i = 0; i < p->n_events; i++)
            casenet_buf_free(&p->events[i]);
        free(p->events);
    }
    if (p->checkpoints) {
        for (size_t i = 0; i < p->n_checkpoints; i++)
            casenet_buf_free(&p->checkpoints[i]);
        free(p->checkpoints);
    }
    memset(p, 0, sizeof *p);
}

/* Copies b into out (an empty b gives an empty out). */
static int copy_bin(const ProtobufCBinaryData *b, casenet_buf *out)
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

int casenet_client_tree_head(casenet_client *c, casenet_buf *checkpoint)
{
    if (!c || !checkpoint)
        return CASENET_EINVAL;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);

    Casenet__V1__GetTreeHead g = CASENET__V1__GET_TREE_HEAD__INIT;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_GET_TREE_HEAD;
    req.get_tree_head = &g;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_TREE_HEAD, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    const ProtobufCBinaryData *ck = &resp->tree_head->checkpoint;
    if (ck->len == 0 || ck->len > CN_AUDIT_CKPT_MAX) {
        set_last_error(c, "the broker returned an empty or oversized tree head");
        rc = CASENET_EBADREQ;
    } else {
        rc = copy_bin(ck, checkpoint);
    }
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_audit_query(casenet_client *c, const casenet_audit_filter *f, uint64_t cursor,
                               uint32_t limit, casenet_audit_record **records, size_t *n,
                               uint64_t *next_cursor, bool *more)
{
    if (!c || !records || !n ||
        (f && f->member && f->member[0] && !casenet_member_id_valid(f->member)))
        return CASENET_EINVAL;
    if (limit == 0)
        limit = CN_LIST_DEFAULT_LIMIT;
    if (limit > CN_LIST_MAX_LIMIT)
        limit = CN_LIST_MAX_LIMIT;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);

    Casenet__V1__AuditQuery q = CASENET__V1__AUDIT_QUERY__INIT;
    if (f) {
        q.member = (char *)(f->member ? f->member : "");
        if (f->message_id) {
            q.message_id.data = (uint8_t *)f->message_id;
            q.message_id.len = CASENET_MESSAGE_ID_BYTES;
        }
        if (f->case_ref) {
            q.case_ref.data = (uint8_t *)f->case_ref;
            q.case_ref.len = CASENET_CASE_REF_BYTES;
        }
        q.from_ms = f->from_ms;
        q.to_ms = f->to_ms;
        q.kind = (Casenet__V1__AuditKind)f->kind;
    }
    q.cursor = cursor;
    q.limit = limit;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_QUERY;
    req.audit_query = &q;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_AUDIT_PAGE, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;

    const Casenet__V1__AuditPage *page = resp->audit_page;
    casenet_audit_record *arr = NULL;
    size_t i = 0;
    rc = CASENET_EBADREQ;
    if (page->n_records > limit || page->next_cursor < cursor ||
        (page->more && page->next_cursor == cursor && page->n_records == 0)) {
        set_last_error(c, "malformed audit page from the broker");
        goto cleanup;
    }
    arr = calloc(page->n_records ? page->n_records : 1, sizeof *arr);
    if (!arr) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (; i < page->n_records; i++) {
        const Casenet__V1__AuditRecord *r = page->records[i];
        /* Ascending, from the cursor on, before next_cursor. */
        if (r->index < cursor || r->index >= page->next_cursor ||
            (i > 0 && r->index <= arr[i - 1].index) || r->event.len == 0) {
            set_last_error(c, "malformed audit record from the broker");
            rc = CASENET_EBADREQ;
            goto cleanup;
        }
        arr[i].index = r->index;
        if ((rc = copy_bin(&r->event, &arr[i].event)) != CASENET_OK)
            goto cleanup;
    }
    *records = arr;
    *n = page->n_records;
    if (next_cursor)
        *next_cursor = page->next_cursor;
    if (more)
        *more = page->more;
    arr = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_audit_records_free(arr, i);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

/* Sends an AuditProof and copies the reply's hashes (checked to be 32 bytes
 * each, at most CN_AUDIT_PROOF_MAX) and checkpoint. */
static int proof_call(casenet_client *c, Casenet__V1__AuditProof *p, casenet_buf *hashes,
                      casenet_buf *checkpoint)
{
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_PROOF;
    req.audit_proof = p;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_PROOF, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__ProofReply *pr = resp->proof;
    casenet_buf h = {0}, ck = {0};
    rc = CASENET_EBADREQ;
    if (pr->n_hashes > CN_AUDIT_PROOF_MAX || pr->checkpoint.len > CN_AUDIT_CKPT_MAX) {
        set_last_error(c, "malformed proof from the broker");
        goto cleanup;
    }
    for (size_t i = 0; i < pr->n_hashes; i++) {
        if (pr->hashes[i].len != CASENET_HASH_BYTES) {
            set_last_error(c, "a proof hash from the broker is not 32 bytes");
            goto cleanup;
        }
    }
    if (pr->n_hashes) {
        h.data = malloc(pr->n_hashes * CASENET_HASH_BYTES);
        if (!h.data) {
            rc = CASENET_ENOMEM;
            goto cleanup;
        }
        for (size_t i = 0; i < pr->n_hashes; i++)
            memcpy(h.data + i * CASENET_HASH_BYTES, pr->hashes[i].data, CASENET_HASH_BYTES);
        h.len = pr->n_hashes * CASENET_HASH_BYTES;
    }
    if ((rc = copy_bin(&pr->checkpoint, &ck)) != CASENET_OK)
        goto cleanup;
    *hashes = h;
    *checkpoint = ck;
    h.data = NULL;
    ck.data = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_buf_free(&h);
    casenet_buf_free(&ck);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_audit_inclusion(casenet_client *c, uint64_t index, uint64_t tree_size,
                                   casenet_buf *hashes, casenet_buf *checkpoint)
{
    if (!c || !hashes || !checkpoint || index >= tree_size)
        return CASENET_EINVAL;
    Casenet__V1__InclusionRequest ir = CASENET__V1__INCLUSION_REQUEST__INIT;
    ir.index = index;
    ir.tree_size = tree_size;
    Casenet__V1__AuditProof p = CASENET__V1__AUDIT_PROOF__INIT;
    p.proof_case = CASENET__V1__AUDIT_PROOF__PROOF_INCLUSION;
    p.inclusion = &ir;
    return proof_call(c, &p, hashes, checkpoint);
}

int casenet_client_audit_consistency(casenet_client *c, uint64_t size1, uint64_t size2,
                                     casenet_buf *hashes, casenet_buf *checkpoint)
{
    if (!c || !hashes || !checkpoint || size1 == 0 || size1 > size2)
        return CASENET_EINVAL;
    Casenet__V1__ConsistencyRequest cr = CASENET__V1__CONSISTENCY_REQUEST__INIT;
    cr.size1 = size1;
    cr.size2 = size2;
    Casenet__V1__AuditProof p = CASENET__V1__AUDIT_PROOF__INIT;
    p.proof_case = CASENET__V1__AUDIT_PROOF__PROOF_CONSISTENCY;
    p.consistency = &cr;
    return proof_call(c, &p, hashes, checkpoint);
}

/* Copies n binary fields into a fresh array of buffers. */
static int copy_bins(ProtobufCBinaryData *const src, size_t n, casenet_buf **out)
{
    *out = NULL;
    if (n == 0)
        return CASENET_OK;
    casenet_buf *arr = calloc(n, sizeof *arr);
    if (!arr)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (copy_bin(&src[i], &arr[i]) != CASENET_OK) {
            for (size_t k = 0; k < i; k++)
                casenet_buf_free(&arr[k]);
            free(arr);
            return CASENET_ENOMEM;
        }
    }
    *out = arr;
    return CASENET_OK;
}

int casenet_client_audit_export(casenet_client *c, uint64_t from_index, uint32_t limit,
                                casenet_audit_export_page *page)
{
    if (!c || !page)
        return CASENET_EINVAL;
    if (limit > CN_AUDIT_EXPORT_MAX)
        limit = CN_AUDIT_EXPORT_MAX;
    int64_t deadline = call_deadline(c);
    begin_call(c, deadline);

    Casenet__V1__AuditExport x = CASENET__V1__AUDIT_EXPORT__INIT;
    x.from_index = from_index;
    x.limit = limit;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_EXPORT;
    req.audit_export = &x;
    Casenet__V1__Response *resp = NULL;
    int rc = client_call(c, &req, CASENET__V1__RESPONSE__BODY_EXPORT_PAGE, true, deadline, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__ExportPage *ep = resp->export_page;
    casenet_audit_export_page p = {0};
    rc = CASENET_EBADREQ;
    if ((limit && ep->n_events > limit) || ep->n_events > CN_AUDIT_EXPORT_MAX ||
        ep->next_index != from_index + ep->n_events || ep->n_checkpoints > ep->n_events ||
        (ep->more && ep->n_events == 0)) {
        set_last_error(c, "malformed export page from the broker");
        goto cleanup;
    }
    for (size_t i = 0; i < ep->n_checkpoints; i++) {
        if (ep->checkpoints[i].len == 0 || ep->checkpoints[i].len > CN_AUDIT_CKPT_MAX) {
            set_last_error(c, "malformed checkpoint in an export page from the broker");
            goto cleanup;
        }
    }
    if ((rc = copy_bins(ep->events, ep->n_events, &p.events)) != CASENET_OK)
        goto cleanup;
    p.n_events = ep->n_events;
    if ((rc = copy_bins(ep->checkpoints, ep->n_checkpoints, &p.checkpoints)) != CASENET_OK)
        goto cleanup;
    p.n_checkpoints = ep->n_checkpoints;
    p.next_index = ep->next_index;
    p.more = ep->more;
    *page = p;
    memset(&p, 0, sizeof p);
    rc = CASENET_OK;
cleanup:
    casenet_audit_export_page_clear(&p);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}
