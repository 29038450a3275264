/* server.c - the broker loop: poll, drain a batch, commit once, reply, push (see server.h). */
#include "server.h"

#include "audit.h"
#include "audit_tree.h"
#include "casenet.pb-c.h"
#include "deadlines.h"
#include "directory_impl.h"
#include "handlers.h"
#include "keys_impl.h"
#include "log.h"
#include "receipt_impl.h"
#include "util.h"
#include "verify.h"
#include "zap.h"

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

/* Draft options of libzmq 4.3 (present in the library, absent from the
 * header unless ZMQ_BUILD_DRAFT_API). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define TICK_MS          1000
#define HEARTBEAT_IVL_MS 10000
#define HEARTBEAT_TTL_MS 60000
#define HEARTBEAT_TMO_MS 30000
#define HANDSHAKE_IVL_MS 10000
/* High-water marks bound what one connection can make the broker hold:
 * at most RCV_HWM requests (each up to MAXMSGSIZE) queued in, SND_HWM
 * replies and notices queued out (a reply to a full pipe is dropped and
 * logged; the client retries). */
#define RCV_HWM            100
#define SND_HWM            256
#define CLOSE_LINGER_MS    500
#define ROUTING_ID_MAX     255
#define STATS_INTERVAL_MS  60000
#define DEADLINES_PER_TICK 256 /* a full pass runs again at once, between batches */
#define MONITOR_ENDPOINT   "inproc://casenetd.monitor"
/* broker_warn_expiry runs hourly. */
#define EXPIRY_CHECK_MS  (3600 * 1000)
#define PENDING_RETRY_MS 100 /* retry-after of a request beyond max_pending */
/* When the loop checkpoints the store's log (store_ops.checkpoint), always
 * after a batch's replies and pushes went out, never inside a commit: as
 * soon as the loop finds nothing ready once CKPT_IDLE_FRAMES pages wait;
 * after CKPT_QUIET_MS without a request for fewer; and between batches,
 * busy or not, once CKPT_BUSY_FRAMES wait (SQLite's own interval: the log
 * stays as bounded as before). */
#define CKPT_IDLE_FRAMES 64
#define CKPT_QUIET_MS    50
#define CKPT_BUSY_FRAMES 1000

struct item {
    uint8_t rid[ROUTING_ID_MAX];
    size_t rid_len;
    char member[CASENET_MEMBER_ID_MAX + 1];
    int fd;              /* the connection's socket (ZMQ_SRCFD), to tie a subscription to it */
    casenet_buf request; /* the one frame received */
    casenet_buf reply;   /* the packed Response to send after commit */
    bool answered;       /* reply set on receipt (bad framing): not dispatched */
    bool subscribe;
    struct verify_job *job; /* its Submit's envelope check, or NULL (verify_ahead) */
    uint32_t cost;          /* for fair batches (limits_request_peek) */
};

/* A subscribed connection. The routing id is chosen by the broker (zap.h)
 * but libzmq's own ids may be reused by another connection once this one is
 * gone, so a subscription is also tied to the connection's file descriptor
 * and dropped as soon as the socket monitor reports that descriptor closed
 * or reused (see drain_monitor), when the ROUTER reports the peer
 * unreachable, or when a request under that routing id comes from another
 * member. */
struct sub {
    uint8_t rid[ROUTING_ID_MAX];
    size_t rid_len;
    int fd;
    char member[CASENET_MEMBER_ID_MAX + 1];
};

/* A connection the ROUTER accepted, by descriptor: its peer's address and,
 * once known, its member (at the handshake, or from its requests). Counts
 * the connections each member holds (max_connections). */
struct conn {
    bool open;
    char address[64];
    char member[CASENET_MEMBER_ID_MAX + 1]; /* "" until known */
    uint64_t order;                         /* of acceptance */
};

struct server {
    struct broker *b;
    void *ctx;
    void *router;
    void *monitor; /* PAIR receiving the ROUTER's connection events */
    struct zap *zap;
    int sigfd;
    struct item *items; /* the batch: at most batch_max */
    size_t n_items;
    struct verify_pool *vpool;
    /* Envelope checks: one slot per item that can exist (pending + batch),
     * so the free list never runs dry; their addresses never move. */
    struct verify_job *job_slots;
    struct verify_job **job_free;
    size_t n_job_free;
    struct item *pending; /* received, not yet in a batch (fair_queue) */
    size_t n_pending, cap_pending;
    struct sub *subs;
    size_t n_subs, cap_subs;
    struct conn *conns; /* indexed by descriptor */
    size_t cap_conns;
    uint64_t accepted;
    char admit_why[160];
    bool stopping, reload;
    uint64_t served, batches;
};

/* ------------------------------------------------------------ batch */

int batch_add_notice(struct batch *bt, const char *member, const uint8_t *resp, size_t len)
{
    if (bt->n_notices == bt->cap_notices) {
        size_t cap = bt->cap_notices ? 2 * bt->cap_notices : 16;
        struct batch_notice *n = realloc(bt->notices, cap * sizeof *n);
        if (!n)
            return CASENET_ENOMEM;
        bt->notices = n;
        bt->cap_notices = cap;
    }
    struct batch_notice *n = &bt->notices[bt->n_notices];
    n->response.data = malloc(len ? len : 1);
    if (!n->response.data)
        return CASENET_ENOMEM;
    memcpy(n->response.data, resp, len);
    n->response.len = len;
    snprintf(n->member, sizeof n->member, "%s", member);
    bt->n_notices++;
    return CASENET_OK;
}

const struct batch_sig *batch_find_sig(const struct batch *bt,
                                       const uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    for (size_t i = 0; i < bt->n_sigs; i++)
        if (memcmp(bt->sigs[i].message_id, id, CASENET_MESSAGE_ID_BYTES) == 0)
            return &bt->sigs[i];
    return NULL;
}

static struct batch_bytes *bytes_find(const struct batch *bt, const char *member)
{
    for (size_t i = 0; i < bt->n_bytes; i++)
        if (strcmp(bt->bytes[i].member, member) == 0)
            return &bt->bytes[i];
    return NULL;
}

int batch_add_bytes(struct batch *bt, const char *member, uint64_t n)
{
    struct batch_bytes *b = bytes_find(bt, member);
    if (!b) {
        if (bt->n_bytes == bt->cap_bytes) {
            size_t cap = bt->cap_bytes ? 2 * bt->cap_bytes : 16;
            struct batch_bytes *m = realloc(bt->bytes, cap * sizeof *m);
            if (!m)
                return CASENET_ENOMEM;
            bt->bytes = m;
            bt->cap_bytes = cap;
        }
        b = &bt->bytes[bt->n_bytes++];
        snprintf(b->member, sizeof b->member, "%s", member);
        b->bytes = 0;
    }
    b->bytes += n;
    return CASENET_OK;
}

uint64_t batch_bytes_of(const struct batch *bt, const char *member)
{
    const struct batch_bytes *b = bytes_find(bt, member);
    return b ? b->bytes : 0;
}

int batch_flush_bytes(const struct batch *bt, struct store *st)
{
    for (size_t i = 0; i < bt->n_bytes; i++) {
        int rc = store_member_bytes_add(st, bt->bytes[i].member, bt->bytes[i].bytes);
        if (rc != CASENET_OK)
            return rc;
    }
    return CASENET_OK;
}

void batch_clear(struct batch *bt)
{
    free(bt->bytes);
    for (size_t i = 0; i < bt->n_sigs; i++)
        casenet_buf_free(&bt->sigs[i].pae);
    free(bt->sigs);
    for (size_t i = 0; i < bt->n_notices; i++)
        casenet_buf_free(&bt->notices[i].response);
    free(bt->notices);
    casenet_directory_free(bt->new_dir);
    memset(bt, 0, sizeof *bt);
}

bool broker_member_active(const struct broker *b, const char *id)
{
    casenet_member m;
    return casenet_directory_find(b->dir, id, &m) == CASENET_OK &&
           m.status == CASENET_MEMBER_ACTIVE && m.curve_key_id &&
           cn_directory_has_curve_key(b->dir, id, m.curve_key_id, cn_now_ms());
}

void broker_warn_expiry(const casenet_directory *dir, bool to_stdout)
{
    int64_t exp = casenet_directory_expires_at(dir), left = exp - cn_now_ms();
    if (left > BROKER_EXPIRY_WARN_MS)
        return;
    const char *what = left <= 0 ? "expired at" : "expires at";
    const char *fix = left <= 0 ? "new Submits are refused (DIRECTORY_EXPIRED) until a newer "
                                  "directory arrives: ask the authority for 'casenet admin "
                                  "renew', then publish it or SIGHUP with it as --directory"
                                : "then new Submits are refused: ask the authority for "
                                  "'casenet admin renew' and publish the result";
    log_event(LOG_WARN, left <= 0 ? "directory_expired" : "directory_expiring", "version",
              log_u64(casenet_directory_version(dir)), "expires_at", log_utc(exp), "msg", fix,
              NULL);
    if (to_stdout)
        printf("casenetd: WARNING: directory version %llu %s %s; %s\n",
               (unsigned long long)casenet_directory_version(dir), what, log_utc(exp), fix);
}

/* ------------------------------------------------------------ subscriptions */

static struct sub *sub_find(struct server *s, const uint8_t *rid, size_t len)
{
    for (size_t i = 0; i < s->n_subs; i++)
        if (s->subs[i].rid_len == len && memcmp(s->subs[i].rid, rid, len) == 0)
            return &s->subs[i];
    return NULL;
}

static void sub_drop(struct server *s, const uint8_t *rid, size_t len, const char *why)
{
    struct sub *x = sub_find(s, rid, len);
    if (!x)
        return;
    log_event(LOG_INFO, "unsubscribe", "member", x->member, "reason", why, NULL);
    *x = s->subs[--s->n_subs];
}

static void sub_drop_fd(struct server *s, int fd, const char *why)
{
    for (size_t i = 0; i < s->n_subs;) {
        if (s->subs[i].fd == fd)
            sub_drop(s, s->subs[i].rid, s->subs[i].rid_len, why);
        else
            i++;
    }
}

static void sub_add(struct server *s, const uint8_t *rid, size_t len, const char *member, int fd)
{
    struct sub *x = sub_find(s, rid, len);
    if (!x) {
        if (s->n_subs == s->cap_subs) {
            size_t cap = s->cap_subs ? 2 * s->cap_subs : 16;
            struct sub *n = realloc(s->subs, cap * sizeof *n);
            if (!n) {
                log_event(LOG_ERROR, "subscribe", "member", member, "error", "NOMEM", NULL);
                return;
            }
            s->subs = n;
            s->cap_subs = cap;
        }
        x = &s->subs[s->n_subs++];
        memcpy(x->rid, rid, len);
        x->rid_len = len;
    }
    snprintf(x->member, sizeof x->member, "%s", member);
    x->fd = fd;
    log_event(LOG_INFO, "subscribe", "member", member, NULL);
}

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
    for (size_t i = 0; i < s->n_items; i++) {
        casenet_buf_free(&s->items[i].reply);
        casenet_buf_free(&s->items[i].request);
        verify_job_clear(s->items[i].job);
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

/* ------------------------------------------------------------ connections */

static void drain_monitor(struct server *s);

/* The entry of descriptor fd, grown as needed; NULL when fd is negative or
 * memory is short (the connection is then not counted). */
static struct conn *conn_at(struct server *s, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= s->cap_conns) {
        size_t cap = s->cap_conns ? s->cap_conns : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct conn *n = realloc(s->conns, cap * sizeof *n);
        if (!n)
            return NULL;
        memset(n + s->cap_conns, 0, (cap - s->cap_conns) * sizeof *n);
        s->conns = n;
        s->cap_conns = cap;
    }
    return &s->conns[fd];
}

/* A descriptor accepted: its peer's address, as ZAP reports it. */
static void conn_accepted(struct server *s, int fd)
{
    struct conn *c = conn_at(s, fd);
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    c->open = true;
    c->order = ++s->accepted;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getpeername(fd, (struct sockaddr *)&sa, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&sa, sl, c->address, sizeof c->address, NULL, 0,
                    NI_NUMERICHOST) != 0)
        c->address[0] = 0;
}

/* ZAP's question (zap_admit_fn): refuses a member's handshake when it holds
 * max_connections already; else ties the member to the newest connection
 * from that address whose member is not known yet (the one handshaking:
 * libzmq reports the accept before it asks ZAP). Requests correct the tie
 * (recv_one) should two members handshake from one address at once. */
static const char *admit_connection(void *arg, const char *member, const char *address)
{
    struct server *s = arg;
    uint32_t max = s->b->cfg->limits.max_connections;
    drain_monitor(s);
    size_t held = 0;
    struct conn *mine = NULL;
    for (size_t i = 0; i < s->cap_conns; i++) {
        struct conn *c = &s->conns[i];
        if (!c->open)
            continue;
        if (strcmp(c->member, member) == 0)
            held++;
        else if (!c->member[0] && strcmp(c->address, address) == 0 &&
                 (!mine || c->order > mine->order))
            mine = c;
    }
    if (max && held >= max) {
        snprintf(s->admit_why, sizeof s->admit_why,
                 "member %s holds %zu connections (max_connections %u)", member, held, max);
        return s->admit_why;
    }
    if (mine)
        snprintf(mine->member, sizeof mine->member, "%s", member);
    return NULL;
}

/* ------------------------------------------------------------ receive */

/* Sends [rid][bytes] without blocking. Returns 0, or the zmq errno. */
static int send_to(struct server *s, const uint8_t *rid, size_t rid_len, const uint8_t *data,
                   size_t len)
{
    if (zmq_send(s->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno;
    if (zmq_send(s->router, data, len, ZMQ_DONTWAIT) < 0)
        return errno;
    return 0;
}

/* Receives one routed message into it. Returns 1 for a request (it->request
 * holds its frame, or it->answered is set with an error reply), 0 when
 * nothing is pending, -1 on error. */
static int recv_one(struct server *s, struct item *it)
{
    zmq_msg_t rid, part;
    zmq_msg_init(&rid);
    if (zmq_msg_recv(&rid, s->router, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&rid);
        return e == EAGAIN ? 0 : -1;
    }
    memset(it, 0, sizeof *it);
    it->rid_len = zmq_msg_size(&rid) > ROUTING_ID_MAX ? ROUTING_ID_MAX : zmq_msg_size(&rid);
    memcpy(it->rid, zmq_msg_data(&rid), it->rid_len);
    int more = zmq_msg_more(&rid);
    zmq_msg_close(&rid);

    size_t frames = 0;
    uint8_t *first = NULL;
    size_t first_len = 0;
    while (more) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, s->router, 0) < 0) {
            zmq_msg_close(&part);
            free(first);
            return -1;
        }
        if (frames == 0) {
            const char *uid = zmq_msg_gets(&part, "User-Id");
            if (uid)
                snprintf(it->member, sizeof it->member, "%s", uid);
            it->fd = zmq_msg_get(&part, ZMQ_SRCFD);
            first_len = zmq_msg_size(&part);
            first = malloc(first_len ? first_len : 1);
            if (first)
                memcpy(first, zmq_msg_data(&part), first_len);
        }
        frames++;
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
    }
    if (frames == 1 && first && !zap_routing_id_assigned(it->rid, it->rid_len)) {
        /* Answered under the request's own id when it has one. */
        Casenet__V1__Request *rq = casenet__v1__request__unpack(NULL, first_len, first);
        uint64_t request_id = rq ? rq->request_id : 0;
        casenet__v1__request__free_unpacked(rq, NULL);
        free(first);
        it->answered = true;
        log_event(LOG_INFO, "rejected", "member", it->member, "error", "BAD_REQUEST", "detail",
                  "routing id chosen by the peer", NULL);
        (void)handlers_error_reply(request_id, CASENET_EBADREQ,
                                   "this connection announced its own ZeroMQ routing id; connect "
                                   "without ZMQ_ROUTING_ID (the broker assigns routing ids)",
                                   &it->reply);
        return 1;
    }
    struct conn *cn = it->member[0] ? conn_at(s, it->fd) : NULL;
    if (cn && cn->open && strcmp(cn->member, it->member) != 0)
        snprintf(cn->member, sizeof cn->member, "%s", it->member);
    struct sub *x = sub_find(s, it->rid, it->rid_len);
    if (x && strcmp(x->member, it->member) != 0)
        sub_drop(s, it->rid, it->rid_len, "routing id reused");
    if (frames == 1 && first) {
        it->request.data = first;
        it->request.len = first_len;
        return 1;
    }
    free(first);
    it->answered = true;
    if (frames != 1) {
        log_event(LOG_INFO, "rejected", "member", it->member, "error", "BAD_REQUEST", "detail",
                  "not exactly one frame", "frames", log_u64(frames), NULL);
        (void)handlers_error_reply(
            0, CASENET_EBADREQ, "send exactly one frame holding a serialised Request", &it->reply);
    } else {
        (void)handlers_error_reply(0, CASENET_EUNAVAIL, "out of memory; retry later", &it->reply);
    }
    return 1;
}

/* Reads every pending connection event: a descriptor accepted or closed
 * ends any subscription tied to it (the routing id may be reused next). */
static void drain_monitor(struct server *s)
{
    for (;;) {
        zmq_msg_t ev, ep;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, s->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&value, (const uint8_t *)zmq_msg_data(&ev) + 2, 4);
        }
        bool more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        while (more) {
            zmq_msg_init(&ep);
            if (zmq_msg_recv(&ep, s->monitor, 0) < 0) {
                zmq_msg_close(&ep);
                return;
            }
            more = zmq_msg_more(&ep);
            zmq_msg_close(&ep);
        }
        if (event == ZMQ_EVENT_ACCEPTED || event == ZMQ_EVENT_DISCONNECTED)
            sub_drop_fd(s, (int)value,
                        event == ZMQ_EVENT_ACCEPTED ? "descriptor reused" : "disconnected");
        if (event == ZMQ_EVENT_ACCEPTED) {
            conn_accepted(s, (int)value);
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            struct conn *c = conn_at(s, (int)value);
            if (c)
                c->open = false;
        }
    }
}

/* ------------------------------------------------------------ fairness */

struct share {
    const char *member;
    uint32_t cost;
};

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
static void fair_fill(struct server *s, struct share *sh)
{
    const struct broker_limits *lim = &s->b->cfg->limits;
    size_t n_sh = 0, keep = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < s->n_pending; i++) {
        struct item *it = &s->pending[i];
        uint32_t used = share_cost(sh, n_sh, it->member);
        bool take = s->n_items < lim->batch_max &&
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
                total + s->pending[i].cost <= lim->batch_max) {
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

/* ------------------------------------------------------------ batch */

/* The request id of an item: from its reply when the handler ran, else
 * from its request (0 when neither parses). Clients match answers by it, so
 * an UNAVAILABLE for a failed batch must carry it. */
static uint64_t item_request_id(const struct item *it)
{
    uint64_t id = 0;
    if (it->reply.data) {
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
        if (handlers_error_reply(id, CASENET_EUNAVAIL,
                                 "the broker could not commit this batch; nothing was stored; "
                                 "retry later",
                                 &it->reply) != CASENET_OK)
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
                  casenet_errname(handlers_wire_code(rc)), "msg", msg, NULL);
    }
    casenet_buf_free(&buf);
}

/* Pushes the batch's inbox notices to the subscribed connections of their
 * members (after the commit). */
static void push_notices(struct server *s, const struct batch *bt)
{
    for (size_t n = 0; n < bt->n_notices; n++) {
        const struct batch_notice *no = &bt->notices[n];
        for (size_t i = 0; i < s->n_subs;) {
            struct sub *x = &s->subs[i];
            if (strcmp(x->member, no->member) != 0) {
                i++;
                continue;
            }
            int e = send_to(s, x->rid, x->rid_len, no->response.data, no->response.len);
            if (e == EHOSTUNREACH) {
                sub_drop(s, x->rid, x->rid_len, "peer gone");
                continue;
            }
            if (e)
                log_event(LOG_WARN, "notice_dropped", "member", x->member, "zmq_error",
                          zmq_strerror(e), NULL);
            i++;
        }
    }
}

/* The deadline pass of the timer, in its own transaction: escalations and
 * dead letters, then their notices pushed after the commit. Returns true
 * when the pass was full (more may be due now). */
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
    if (store_commit(st) != CASENET_OK) {
        log_event(LOG_ERROR, "deadlines_failed", "error", "UNAVAILABLE", "msg",
                  "commit failed; retried at the next tick", NULL);
        batch_clear(&bt);
        return false;
    }
    drain_monitor(s);
    push_notices(s, &bt);
    batch_clear(&bt);
    return settled == DEADLINES_PER_TICK;
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
    if (it->answered || s->n_job_free == 0 || verify_pool_threads(s->vpool) == 0)
        return;
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
static void verify_done(struct server *s, struct item *it)
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
    if (handlers_error_reply_retry(request_id, CASENET_ERATELIMIT, msg, PENDING_RETRY_MS, &reply) ==
        CASENET_OK) {
        int e = send_to(s, it->rid, it->rid_len, reply.data, reply.len);
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
static void receive_ready(struct server *s)
{
    while (s->n_pending < s->cap_pending) {
        struct item *it = &s->pending[s->n_pending];
        int r = recv_one(s, it);
        if (r == 0)
            break;
        if (r < 0) {
            log_event(LOG_WARN, "recv", "zmq_error", zmq_strerror(errno), NULL);
            break;
        }
        uint64_t request_id = 0;
        it->cost = 1;
        if (!it->answered)
            limits_request_peek(it->request.data, it->request.len, &it->cost, &request_id);
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
    struct sign_ctx sc = {.bt = &bt, .sk = cn_keys_sign_sk(b->keys, NULL)};
    verify_pool_for_begin(s->vpool, sign_one, &sc);
    bool ok = store_begin(st) == CASENET_OK;
    if (ok && zap_has_pending(s->zap) && zap_flush_audit(s->zap, st, now) == CASENET_EUNAVAIL)
        bt.store_failed = true;
    if (ok && s->reload) {
        s->reload = false;
        reload_directory(s, &bt);
    }
    for (size_t i = 0; ok && i < s->n_items; i++) {
        struct item *it = &s->items[i];
        if (it->answered)
            continue;
        /* Its envelope check, done by a worker meanwhile (or now). */
        if (it->job) {
            verify_pool_wait(s->vpool, it->job);
            bt.pre = &it->job->result;
        }
        if (handlers_dispatch(b, &bt, it->member, it->request.data, it->request.len, &it->reply,
                              &it->subscribe) != CASENET_OK &&
            !it->reply.data)
            (void)handlers_error_reply(0, CASENET_EUNAVAIL, "out of memory; retry later",
                                       &it->reply);
        bt.pre = NULL;
        casenet_buf_free(&it->request);
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
        verify_done(s, &s->items[i]);
    /* The requests that arrived meanwhile go to the workers now: they are
     * verified during this batch's commit. */
    receive_ready(s);
    if (ok && bt.store_failed) {
        store_rollback(st);
        ok = false;
    }
    if (ok && store_commit(st) != CASENET_OK)
        ok = false;
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
                sub_drop(s, s->subs[i].rid, s->subs[i].rid_len, "member not active");
            else
                i++;
        }
    }
    /* Replies, then pushes: only after the commit. Connection events first,
     * so that no push follows a subscription whose connection is gone. */
    drain_monitor(s);
    for (size_t i = 0; i < s->n_items; i++) {
        struct item *it = &s->items[i];
        size_t rid_len = it->rid_len;
        if (it->reply.data) {
            int e = send_to(s, it->rid, rid_len, it->reply.data, it->reply.len);
            if (e)
                log_event(LOG_WARN, "reply_dropped", "member", it->member, "zmq_error",
                          zmq_strerror(e), NULL);
            else if (ok && it->subscribe)
                sub_add(s, it->rid, rid_len, it->member, it->fd);
        }
        casenet_buf_free(&it->reply);
        casenet_buf_free(&it->request);
    }
    push_notices(s, &bt);
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
        } else {
            log_event(LOG_INFO, "signal", "signal", si.ssi_signo == SIGINT ? "INT" : "TERM",
                      "action", "stop", NULL);
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
            (void)store_checkpoint(st, 1, NULL); /* logs its own failure */
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
        zmq_pollitem_t items[4] = {
            {.socket = s->router, .events = ZMQ_POLLIN},
            {.socket = zap_socket(s->zap), .events = ZMQ_POLLIN},
            {.socket = s->monitor, .events = ZMQ_POLLIN},
            {.fd = s->sigfd, .events = ZMQ_POLLIN},
        };
        int n_items = s->sigfd >= 0 ? 4 : 3;
        int64_t until_tick = next_tick - cn_mono_ms();
        long wait = until_tick < 0 || s->n_pending > 0 ? 0 : (long)until_tick;
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
            (void)store_checkpoint(b->store, 1, NULL);
        if (items[2].revents & ZMQ_POLLIN)
            drain_monitor(s);
        if (items[1].revents & ZMQ_POLLIN)
            (void)zap_handle(s->zap, b->dir, admit_connection, s);
        if (n_items == 4 && (items[3].revents & ZMQ_POLLIN))
            read_signals(s);
        /* Drain every ready request into pending (bounded), then take a
         * fair batch from it. */
        receive_ready(s);
        fair_fill(s, shares);
        if (s->n_items > 0 || zap_has_pending(s->zap) || s->reload)
            process_batch(s);
        int64_t now = cn_mono_ms();
        if (now >= next_tick) {
            /* The periodic timer: tree heads, deadlines and retention will
             * hang here, each throttled to its own period. */
            next_tick = now + TICK_MS;
            zap_summarize(s->zap, now, false); /* written by the next batch */
            if (now >= next_head) {
                next_head = now + AUDIT_HEAD_INTERVAL_MS;
                (void)audit_tree_sign_head(b); /* logs its own failure; retried next time */
            }
            if (run_deadlines(s))
                next_tick = now; /* a full pass: go on after the next batch */
            if (now >= next_expiry) {
                next_expiry = now + EXPIRY_CHECK_MS;
                broker_warn_expiry(b->dir, false);
            }
            if (now >= next_stats) {
                next_stats = now + STATS_INTERVAL_MS;
                log_event(LOG_DEBUG, "stats", "requests", log_u64(s->served), "batches",
                          log_u64(s->batches), "subscriptions", log_u64(s->n_subs), NULL);
                /* Memory freed after a backlog (queued requests) goes back
                 * to the system: resident memory comes down again. */
                (void)malloc_trim(0);
            }
        }
        /* Between batches, after their replies: the log stays bounded
         * however busy the loop is. */
        (void)store_checkpoint(b->store, CKPT_BUSY_FRAMES, NULL);
    }
    free(shares);
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
