/*
 * server_impl.h - the loop's private state, shared by its files: server.c
 * (open, close, the batch and the loop), server_conn.c (connections,
 * subscriptions, receiving, sending, pushing notices) and server_queue.c
 * (the pending queue: fair batches, Submits verified ahead, max_pending,
 * BlobPut chunks handed to the blob writer).
 * server_conn.c calls nothing of the other two, server_queue.c only
 * server_conn.c.
 */
#ifndef BROKER_SERVER_IMPL_H
#define BROKER_SERVER_IMPL_H

#include "batch.h"
#include "broker.h"
#include "verify.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* BlobPut chunks with the blob writer (blob_io.h) or in the batch on their
 * way to it: at most BLOB_WRITES_MAX in all (each holds its chunk, up to
 * 1 MiB) and BLOB_WRITES_PER_MEMBER of one member (one being written, one
 * waiting: the writer never idles for a member uploading alone). A member's
 * further BlobPuts wait in pending, in order, counted in its max_pending,
 * while the loop serves everyone else. */
#define BLOB_WRITES_MAX        32
#define BLOB_WRITES_PER_MEMBER 2
/* When the loop checkpoints the store's log (store_ops.checkpoint), always
 * after a batch's replies and pushes went out, never inside a commit: as
 * soon as the loop finds nothing ready once CKPT_IDLE_FRAMES pages wait;
 * after CKPT_QUIET_MS without a request for fewer; and between batches,
 * busy or not, once CKPT_BUSY_FRAMES wait (SQLite's own interval). A
 * checkpoint copies each page once however many commits rewrote it:
 * checkpointing every 512 pages when idle and 2000 when busy took a
 * message's bytes written at one in flight from 133-135 KB to 113 KB, but
 * each checkpoint stalls the loop longer, and a victim's p99 under a
 * flood (it.limits' fairness test) doubled in 2 of 3 runs where 64/1000
 * kept it within 1.4x in 6 of 6: kept at 64/1000. */
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
    int64_t recv_us;        /* when received (metrics_now_us) */
    bool blob_put;          /* a BlobPut: bounded by BLOB_WRITES_* (server_fair_fill) */
    struct blob_job *blob;  /* its chunk written: answered by handlers_blob_put_done */
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
    size_t n_held; /* of pending, BlobPuts the last fill left for the writer's room */
    /* The blob writer, and the BlobPuts whose chunk it holds, by slot
     * (blob_job.slot), until their answers go into a batch. */
    struct blob_io *bio;
    struct item writing[BLOB_WRITES_MAX];
    bool writing_used[BLOB_WRITES_MAX];
    size_t n_writing;
    struct sub *subs;
    size_t n_subs, cap_subs;
    struct conn *conns; /* indexed by descriptor */
    size_t cap_conns;
    uint64_t accepted;
    char admit_why[160];
    bool stopping, reload;
    bool lease_lost; /* another broker took the store's lease over: stop, write nothing */
    uint64_t served, batches;
    /* Commits that appended pages to the store's log, and those pages
     * (store_checkpoint's pending count before and after each commit): the
     * stats line's figures, read by casenet-bench. */
    uint64_t commits, log_pages;
};

/* What a member has in the batch being filled (server_fair_fill). */
struct share {
    const char *member;
    uint32_t cost;
};

/* ---- server_conn.c */

/* The subscription under routing id rid, or NULL. */
struct sub *server_sub_find(struct server *s, const uint8_t *rid, size_t len);
/* Ends the subscription under rid (logged with why), if any. */
void server_sub_drop(struct server *s, const uint8_t *rid, size_t len, const char *why);
/* Records (or updates) the subscription of member's connection rid / fd. */
void server_sub_add(struct server *s, const uint8_t *rid, size_t len, const char *member, int fd);
/* ZAP's question (zap_admit_fn): NULL to admit, else the reason. */
const char *server_admit_connection(void *arg, const char *member, const char *address);
/* Sends [rid][bytes] without blocking. Returns 0, or the zmq errno. */
int server_send_to(struct server *s, const uint8_t *rid, size_t rid_len, const uint8_t *data,
                   size_t len);
/* Receives one routed message into it: 1 for a request (or one answered at
 * once, it->answered), 0 when nothing is pending, -1 on error. */
int server_recv_one(struct server *s, struct item *it);
/* Reads every pending connection event (subscriptions of closed or reused
 * descriptors end). */
void server_drain_monitor(struct server *s);
/* Pushes the batch's inbox notices to their members' subscribed
 * connections (after the commit). */
void server_push_notices(struct server *s, const struct batch *bt);

/* ---- server_queue.c */

/* Receives every ready request into pending (bounded), each Submit handed
 * to the workers at once; a member's requests beyond max_pending are
 * refused on receipt. */
void server_receive_ready(struct server *s);
/* Moves requests from pending into the batch, fairly (sh: batch_max
 * entries of scratch). */
void server_fair_fill(struct server *s, struct share *sh);
/* Ends an item's envelope check and frees its slot. */
void server_verify_done(struct server *s, struct item *it);
/* Hands the chunk the BlobPut it just dispatched left in bt (bt->blob_job)
 * to the writer: it keeps the request's return address until the chunk is
 * written, and the batch does not answer it (it->answered). */
void server_blob_hand_over(struct server *s, struct item *it, struct batch *bt);
/* Moves the BlobPuts whose chunks the writer wrote into the batch (room
 * permitting), to be answered in it. */
void server_blob_collect(struct server *s);

#endif
