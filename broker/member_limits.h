/*
 * member_limits.h - per-member limits that keep one member's flood from hurting the
 * others: a token bucket for Submit (RATE_LIMITED with a retry-after), the
 * inbox backlog cap (checked in the store), and the per-member share of a
 * batch that the loop uses to fill batches fairly.
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

#define LIMITS_DEFAULT_SUBMIT_RATE     200u    /* submits per second per member */
#define LIMITS_DEFAULT_SUBMIT_BURST    400u    /* bucket size */
#define LIMITS_DEFAULT_INBOX_BACKLOG   100000u /* queued (unfetched) rows per inbox */
#define LIMITS_DEFAULT_FAIR_SHARE      16u     /* requests per member per batch */
#define LIMITS_BACKLOG_RETRY_MS        60000u  /* retry-after for a full inbox */
#define LIMITS_DEFAULT_MIN_FREE_MB     64u     /* disk kept free for everything but Submit */
#define LIMITS_DISK_RETRY_MS           30000u  /* retry-after when the disk is low */
#define LIMITS_DEFAULT_MAX_PENDING     64u     /* requests per member waiting for a batch */
#define LIMITS_DEFAULT_MAX_CONNECTIONS 32u     /* connections per member */
#define LIMITS_DEFAULT_ESC_BUDGET      20u     /* escalation notices per sender per period */
#define LIMITS_DEFAULT_ESC_PERIOD_S    3600u

struct limits;

/* Creates the table. rate = 0 turns the submit bucket off (every submit is
 * admitted); burst 0 means burst = rate. Returns NULL when out of memory. */
struct limits *limits_new(uint32_t submit_rate, uint32_t submit_burst);
/* Releases the table. Accepts NULL. */
void limits_free(struct limits *l);

/* Takes one Submit token of member at monotonic time now_ms. CASENET_OK when
 * admitted; CASENET_ERATELIMIT when the bucket is empty, with the time until
 * the next token in *retry_after_ms and *first set when this is the first
 * refusal since the member was last admitted (the caller audits only that
 * one, so a flood cannot grow the audit log). CASENET_ENOMEM when a new
 * member's state cannot be allocated (the caller answers UNAVAILABLE). */
CASENET_NODISCARD int limits_take_submit(struct limits *l, const char *member, int64_t now_ms,
                                         uint32_t *retry_after_ms, bool *first);

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

/* Whole Submit tokens member has at now_ms, without taking any:
 * UINT32_MAX when the bucket is off (l NULL or rate 0), burst for a member
 * not seen yet. For the loop to skip work on Submits the handler will refuse
 * (verify.h); the decision itself stays limits_take_submit's. */
uint32_t limits_submit_tokens(const struct limits *l, const char *member, int64_t now_ms);

/* Fair batches weigh requests by cost (server.c): 1 unit for each request,
 * plus one per LIMITS_COST_ROWS rows it may read. A member's share of a
 * batch is fair_share units; a batch holds at most batch_max units (a
 * request dearer than that goes alone). */
#define LIMITS_COST_ROWS 25u
#define LIMITS_AUDIT_QUERY_ROWS                                                                    \
    10000u /* an AuditQuery page examines up to this many                                          \
            * (audit_tree.c QUERY_EXAMINE_MAX) */

/* What the loop reads of a request frame before its batch, from the wire
 * bytes alone (no unpacking: a Submit's envelope is not copied): its cost
 * in units and its request id (0 when absent). A frame that does not parse
 * costs 1 (its handler answers BAD_REQUEST). Never fails. */
void limits_request_peek(const uint8_t *frame, size_t len, uint32_t *cost, uint64_t *request_id);

/* Whether the file system holding dir has at least min_free_mb MiB
 * available to the broker (statvfs f_bavail). Submit is refused below that,
 * so that what remains serves the small writes of Fetch, receipts and audit
 * events, and the broker never runs into a full disk on the write path that
 * matters most. *avail_mb receives what is available. min_free_mb 0 always
 * passes. A statvfs failure passes too (logged): the store still maps a real
 * SQLITE_FULL to UNAVAILABLE. */
bool limits_disk_ok(const char *dir, uint32_t min_free_mb, uint64_t *avail_mb);

#endif
