/* server_conn.c - the loop's connections: subscriptions, admission, receiving,
 * sending and pushing notices (see server_impl.h). */
#include "server_impl.h"

#include "log.h"
#include "request.h"
#include "zap.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zmq.h>

/* ------------------------------------------------------------ subscriptions */

struct sub *server_sub_find(struct server *s, const uint8_t *rid, size_t len)
{
    for (size_t i = 0; i < s->n_subs; i++)
        if (s->subs[i].rid_len == len && memcmp(s->subs[i].rid, rid, len) == 0)
            return &s->subs[i];
    return NULL;
}

void server_sub_drop(struct server *s, const uint8_t *rid, size_t len, const char *why)
{
    struct sub *x = server_sub_find(s, rid, len);
    if (!x)
        return;
    log_event(LOG_INFO, "unsubscribe", "member", x->member, "reason", why, NULL);
    *x = s->subs[--s->n_subs];
}

static void sub_drop_fd(struct server *s, int fd, const char *why)
{
    for (size_t i = 0; i < s->n_subs;) {
        if (s->subs[i].fd == fd)
            server_sub_drop(s, s->subs[i].rid, s->subs[i].rid_len, why);
        else
            i++;
    }
}

void server_sub_add(struct server *s, const uint8_t *rid, size_t len, const char *member, int fd)
{
    struct sub *x = server_sub_find(s, rid, len);
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

/* ------------------------------------------------------------ connections */

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
 * (server_recv_one) should two members handshake from one address at once. */
const char *server_admit_connection(void *arg, const char *member, const char *address)
{
    struct server *s = arg;
    uint32_t max = s->b->cfg->limits.max_connections;
    server_drain_monitor(s);
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
int server_send_to(struct server *s, const uint8_t *rid, size_t rid_len, const uint8_t *data,
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
int server_recv_one(struct server *s, struct item *it)
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
        (void)req_error_reply(request_id, CASENET_EBADREQ,
                              "this connection announced its own ZeroMQ routing id; connect "
                              "without ZMQ_ROUTING_ID (the broker assigns routing ids)",
                              0, 0, &it->reply);
        return 1;
    }
    struct conn *cn = it->member[0] ? conn_at(s, it->fd) : NULL;
    if (cn && cn->open && strcmp(cn->member, it->member) != 0)
        snprintf(cn->member, sizeof cn->member, "%s", it->member);
    struct sub *x = server_sub_find(s, it->rid, it->rid_len);
    if (x && strcmp(x->member, it->member) != 0)
        server_sub_drop(s, it->rid, it->rid_len, "routing id reused");
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
        (void)req_error_reply(0, CASENET_EBADREQ,
                              "send exactly one frame holding a serialised Request", 0, 0,
                              &it->reply);
    } else {
        (void)req_error_reply(0, CASENET_EUNAVAIL, "out of memory; retry later", 0, 0, &it->reply);
    }
    return 1;
}

/* Reads every pending connection event: a descriptor accepted or closed
 * ends any subscription tied to it (the routing id may be reused next). */
void server_drain_monitor(struct server *s)
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

void server_push_notices(struct server *s, const struct batch *bt)
{
    for (size_t n = 0; n < bt->n_notices; n++) {
        const struct batch_notice *no = &bt->notices[n];
        for (size_t i = 0; i < s->n_subs;) {
            struct sub *x = &s->subs[i];
            if (strcmp(x->member, no->member) != 0) {
                i++;
                continue;
            }
            int e = server_send_to(s, x->rid, x->rid_len, no->response.data, no->response.len);
            if (e == EHOSTUNREACH) {
                server_sub_drop(s, x->rid, x->rid_len, "peer gone");
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
