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

#define LIMITS_DEFAULT_SUBMIT_RATE   200u    /* submits per second per member */
#define LIMITS_DEFAULT_SUBMIT_BURST  400u    /* bucket size */
#define LIMITS_DEFAULT_INBOX_BACKLOG 100000u /* queued (unfetched) rows per inbox */
#define LIMITS_DEFAULT_FAIR_SHARE    16u     /* requests per member per batch */
#define LIMITS_BACKLOG_RETRY_MS      60000u  /* retry-after for a full inbox */
#define LIMITS_DEFAULT_MIN_FREE_MB   64u     /* disk kept free for everything but Submit */
#define LIMITS_DISK_RETRY_MS         30000u  /* retry-after when the disk is low */

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

/* Whole Submit tokens member has at now_ms, without taking any:
 * UINT32_MAX when the bucket is off (l NULL or rate 0), burst for a member
 * not seen yet. For the loop to skip work on Submits the handler will refuse
 * (verify.h); the decision itself stays limits_take_submit's. */
uint32_t limits_submit_tokens(const struct limits *l, const char *member, int64_t now_ms);

/* Whether the file system holding dir has at least min_free_mb MiB
 * available to the broker (statvfs f_bavail). Submit is refused below that,
 * so that what remains serves the small writes of Fetch, receipts and audit
 * events, and the broker never runs into a full disk on the write path that
 * matters most. *avail_mb receives what is available. min_free_mb 0 always
 * passes. A statvfs failure passes too (logged): the store still maps a real
 * SQLITE_FULL to UNAVAILABLE. */
bool limits_disk_ok(const char *dir, uint32_t min_free_mb, uint64_t *avail_mb);

#endif
