/*
 * member_limits.h - per-member limits that keep one member's flood from hurting the
 * others: a token bucket per member and request class (Submit, Fetch,
 * Receipt, audit reads: every request that writes; RATE_LIMITED with a
 * retry-after), the inbox backlog caps and byte quota (checked against the
 * store), the disk reserve split per request class, and the per-member share
 * of a batch that the loop uses to fill batches fairly.
 *
 * State is in memory only (a restart refills every bucket) and keyed by the
 * authenticated member id (the ZAP User-Id), so it is bounded by the number
 * of members in the directory. Not thread-safe: the loop is the only caller.
 */
#ifndef BROKER_MEMBER_LIMITS_H
#define BROKER_MEMBER_LIMITS_H

#include "casenet.h"

#include <stdbool.h>
#include <stdint.h>

/* Request classes with a bucket of their own and a share of the disk
 * reserve. LIMITS_BROKER is the broker's own work (deadlines, escalations,
 * dead letters, tree heads): no bucket, and the last part of the reserve. */
enum limits_class {
    LIMITS_SUBMIT,
    LIMITS_FETCH,
    LIMITS_RECEIPT,
    LIMITS_AUDIT, /* AuditQuery, AuditExport: each appends AUDIT_QUERIED */
    LIMITS_BUCKETS_N,
    LIMITS_BROKER = LIMITS_BUCKETS_N,
};

/* A bucket: per_min tokens a minute (0 = no bucket, every request is
 * admitted), at most burst tokens held. */
struct limits_rate {
    uint32_t per_min;
    uint32_t burst;
};

/* Defaults: a referral network sends tens of messages a minute per member,
 * with bursts; a recipient's agent fetches and acknowledges each. */
#define LIMITS_DEFAULT_SUBMIT_PER_MIN  60u
#define LIMITS_DEFAULT_SUBMIT_BURST    120u
#define LIMITS_DEFAULT_FETCH_PER_MIN   600u
#define LIMITS_DEFAULT_FETCH_BURST     600u
#define LIMITS_DEFAULT_RECEIPT_PER_MIN 600u
#define LIMITS_DEFAULT_RECEIPT_BURST   600u
#define LIMITS_DEFAULT_AUDIT_PER_MIN   120u
#define LIMITS_DEFAULT_AUDIT_BURST     240u
#define LIMITS_DEFAULT_INBOX_BACKLOG   100000u /* queued message rows per inbox */
#define LIMITS_DEFAULT_PAIR_BACKLOG    1000u   /* of them from one sender */
#define LIMITS_DEFAULT_EMERGENCY_PCT   10u     /* of each cap, for EMERGENCY only */
#define LIMITS_DEFAULT_QUOTA_MB        256u    /* stored envelope bytes per sender */
#define LIMITS_DEFAULT_FAIR_SHARE      16u     /* requests per member per batch */
#define LIMITS_BACKLOG_RETRY_MS        60000u  /* retry-after for a full inbox */
#define LIMITS_DEFAULT_MIN_FREE_MB     64u     /* the disk reserve (see limits_disk_floor_kb) */
#define LIMITS_DISK_RETRY_MS           30000u  /* retry-after when the disk is low */
#define LIMITS_DEFAULT_MAX_PENDING     64u     /* requests per member waiting for a batch */
#define LIMITS_DEFAULT_MAX_CONNECTIONS 32u     /* connections per member */
#define LIMITS_DEFAULT_ESC_BUDGET      20u     /* escalation notices per sender per period */
#define LIMITS_DEFAULT_ESC_PERIOD_S    3600u

struct limits;

/* Creates the table with one rate per bucket class (rates[LIMITS_BUCKETS_N];
 * NULL: every bucket off); a burst of 0 means one minute's worth. Returns
 * NULL when out of memory. */
struct limits *limits_new(const struct limits_rate *rates);
/* Releases the table. Accepts NULL. */
void limits_free(struct limits *l);

/* Takes one token of class cls (< LIMITS_BUCKETS_N) for member at monotonic
 * time now_ms. CASENET_OK when admitted; CASENET_ERATELIMIT when the bucket
 * is empty, with the time until the next token in *retry_after_ms and *first
 * set when this is the first refusal of that class since the member was
 * last admitted (the caller audits or logs only that one, so a flood cannot
 * grow the audit log). CASENET_ENOMEM when a new member's state cannot be
 * allocated (the caller answers UNAVAILABLE). */
CASENET_NODISCARD int limits_take(struct limits *l, enum limits_class cls, const char *member,
                                  int64_t now_ms, uint32_t *retry_after_ms, bool *first);

/* Sets the escalation budget: at most budget notices about one sender's
 * messages per period_ms (0 = no budget), the last of them a summary
 * (deadlines.h). */
void limits_set_escalation(struct limits *l, uint32_t budget, int64_t period_ms);

/* Whether a breach of a deadline of sender's message id, at now_ms (broker
 * time), may be notified one by one. false: the budget of sender's period
 * is spent; the breach is counted for the period's summary (id becomes its
 * reference). true also when there is no budget, l is NULL or the member's
 * state cannot be allocated (a notice is never lost to a lack of memory). */
bool limits_take_escalation(struct limits *l, const char *sender,
                            const uint8_t id[CASENET_MESSAGE_ID_BYTES], int64_t now_ms);

/* A period that ended with breaches counted for its summary. */
struct limits_esc_summary {
    char sender[CASENET_MEMBER_ID_MAX + 1];
    uint32_t summarized;
    int64_t period_start_ms;
    uint8_t last_id[CASENET_MESSAGE_ID_BYTES];
};

/* Ends every escalation period older than period_ms at now_ms and hands
 * those with counted breaches to fn, one call each (fn's error stops the
 * pass and is returned; that period is then kept for the next pass). */
int limits_escalation_periods(struct limits *l, int64_t now_ms,
                              int (*fn)(void *arg, const struct limits_esc_summary *sum),
                              void *arg);

/* The loop's count of member's requests waiting for a batch
 * (max_pending), changed by delta (+1 when one is queued, -1 when it goes
 * into a batch); returns the count after the change. 0 when l is NULL or
 * the member's state cannot be allocated (the request is then not
 * counted: the cap errs on the side of serving). */
uint32_t limits_pending(struct limits *l, const char *member, int delta);

/* Fair batches weigh requests by cost (server_queue.c): 1 unit for each
 * request, plus one per LIMITS_COST_ROWS rows it may read
 * (or chunk files a BlobPut or BlobStatus looks at). A member's share of a
 * batch is fair_share units; a batch holds at most batch_max units (a
 * request dearer than that goes alone). */
#define LIMITS_COST_ROWS 25u
#define LIMITS_AUDIT_QUERY_ROWS                                                                    \
    10000u /* an AuditQuery page examines up to this many                                          \
            * (audit_tree.c QUERY_EXAMINE_MAX) */
/* The dearest request's cost: a BlobStatus, or a BlobPut of a blob of
 * CASENET_ATTACH_MAX_CHUNKS chunks (more than an AuditQuery examines). */
#define LIMITS_COST_MAX (1u + CASENET_ATTACH_MAX_CHUNKS / LIMITS_COST_ROWS)

/* What the loop reads of a request frame before its batch, from the wire
 * bytes alone (no unpacking: a Submit's envelope is not copied): its cost
 * in units and its request id (0 when absent). A frame that does not parse
 * costs 1 (its handler answers BAD_REQUEST). Never fails. */
void limits_request_peek(const uint8_t *frame, size_t len, uint32_t *cost, uint64_t *request_id);

/* Whole tokens of class cls member has at now_ms, without taking any:
 * UINT32_MAX when the bucket is off (l NULL or per_min 0), burst for a
 * member not seen yet. For the loop to skip work on Submits the handler will
 * refuse (verify.h); the decision itself stays limits_take's. */
uint32_t limits_tokens(const struct limits *l, enum limits_class cls, const char *member,
                       int64_t now_ms);

/* The lowercase name of a class ("submit", "fetch", "receipt", "audit",
 * "broker"), for messages and logs. */
const char *limits_class_name(enum limits_class cls);

/* KiB available to the broker on the file system holding dir (statvfs
 * f_bavail); UINT64_MAX when statvfs fails (logged): the store still maps a
 * real SQLITE_FULL to UNAVAILABLE. */
uint64_t limits_disk_avail_kb(const char *dir);

/* The free space (KiB) below which requests of class cls are refused, from
 * the reserve min_free_mb: Submit below all of it, Fetch and audit reads that
 * write below half, Receipts below a quarter; the last quarter is the
 * broker's own (0 for LIMITS_BROKER). Thus members' bulk writes stop first,
 * and the small writes that settle cases and the broker's deadlines,
 * escalations and tree heads keep room after every member is refused. */
uint64_t limits_disk_floor_kb(uint32_t min_free_mb, enum limits_class cls);

#endif
