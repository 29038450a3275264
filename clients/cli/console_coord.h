/*
 * console_coord.h - the coordinator's view (issue 14): a local cache of the
 * broker's audit log, verified as it is pulled, and the figures computed
 * from it, shared by `casenet console` (its /api/v1/coord/ pages) and
 * `casenet report`.
 *
 *   console_verify.c  the one adapter over libcasenet's public audit
 *                     verifier (casenet_audit_verifier_*, docs/library.md)
 *   console_cache.c   DIR/coord.db: the verified events (metadata only), the
 *                     trusted head, and a verification failure once seen
 *   console_stats.c   the figures for a time range (one function), as JSON
 *                     and as CSV
 *   console_coord.c   the coordinator API: gate, overdue board, network,
 *                     report, audit list, verify, prove
 *
 * Figures are computed only from events under a signed head the cache
 * verified; events after the last head wait for the next one.
 */
#ifndef CASENET_CLI_CONSOLE_COORD_H
#define CASENET_CLI_CONSOLE_COORD_H

#include "casenet.h"
#include "home.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define COORD_DB_FILE    "coord.db"
#define COORD_ERR_MAX    320
#define COORD_SMALL_CELL 5 /* --public: counts below it show as "<5" */

/* ------------------------------------------------------------ verifier (console_verify.c) */

/* A verified signed tree head. */
struct coord_head {
    uint64_t size;
    int64_t time_ms;
    uint8_t root[32];
};

/* Told each verified-or-not-yet event as it is consumed (index, exact
 * bytes, borrowed); the first non-zero return fails the pull with that
 * error (once the run ends). */
typedef int (*coord_event_fn)(void *ctx, uint64_t index, const uint8_t *ev, size_t len);
/* Told how far a pull got (events consumed, the broker's head size). */
typedef void (*coord_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* The trusted state as opaque bytes (the verifier's own encoding); len 0 is
 * the empty state. */
struct coord_trust {
    uint8_t *bytes; /* malloc'd */
    size_t len;
};
void coord_trust_clear(struct coord_trust *t);

/* Pulls the log from the broker over cl and verifies it with the broker key
 * and origin of dir: from the trusted point (full = false: only the new
 * events) or from 0 (full: every event again, compared with the trusted
 * head on reaching its size). Each event goes to on_event before the head
 * covering it is checked, so the caller must keep them provisional until
 * this returns CASENET_OK. On success *next is the new trusted state (the
 * caller's) and *head its head. On failure err holds one English sentence
 * naming the place (a head, an interval of events) and the result is
 * CASENET_EBADSIG/EBADREQ/ECONFLICT for a log that does not verify, or the
 * broker's error (then err says "broker: ..."). */
CASENET_NODISCARD int coord_verify_pull(casenet_client *cl, const casenet_directory *dir,
                                        const struct coord_trust *trusted, bool full,
                                        coord_event_fn on_event, coord_progress_fn progress,
                                        void *ctx, struct coord_trust *next,
                                        struct coord_head *head, char err[COORD_ERR_MAX]);
/* Proves event index (exact bytes ev) is in the broker's log under head (a
 * head this cache verified): asks the broker for the inclusion proof and
 * checks it against the head's root (casenet_audit_verifier_prove_path).
 * Fills *out with {index, tree_size, root, head_time, leaf_hash, proof:
 * [hex]}. CASENET_EBADSIG with err when it does not verify; err starts with
 * "broker:" when the broker did not answer. */
CASENET_NODISCARD int coord_prove(casenet_client *cl, const casenet_directory *dir, uint64_t index,
                                  const uint8_t *ev, size_t len, const struct coord_head *head,
                                  json_t **out, char err[COORD_ERR_MAX]);

/* ------------------------------------------------------------ cache (console_cache.c) */

typedef struct coord_cache coord_cache;

/* Opens (creating, mode 0600) DIR/coord.db. CASENET_EIO on stderr. */
CASENET_NODISCARD int coord_cache_open(const char *home_dir, coord_cache **out);
void coord_cache_close(coord_cache *cc);
/* The cache's database, for the figures (read only). */
sqlite3 *coord_cache_db(coord_cache *cc);

/* Pulls and verifies what is new (or everything again with full) and
 * stores the events under the new trusted head in one transaction. A
 * failure is remembered (coord_cache_failure) and every later sync fails
 * with it until the cache file is removed: figures from a log that was
 * rewritten are never shown. CASENET_OK, or the error with err filled. */
CASENET_NODISCARD int coord_cache_sync(coord_cache *cc, casenet_client *cl,
                                       const casenet_directory *dir, bool full,
                                       coord_progress_fn progress, void *ctx,
                                       char err[COORD_ERR_MAX]);
/* The remembered failure ("" when none), and when it was seen. */
bool coord_cache_failure(coord_cache *cc, char err[COORD_ERR_MAX], int64_t *at_ms);
/* The trusted head and when it was last verified (0 when never). */
void coord_cache_head(coord_cache *cc, struct coord_head *head, int64_t *verified_at_ms);
/* Changes whenever a pull brought events the figures use (submissions,
 * receipts, escalations): figures computed at the same generation are the
 * same. */
uint64_t coord_cache_generation(coord_cache *cc);
/* The exact bytes of a cached event (malloc'd), CASENET_ENOTFOUND. */
CASENET_NODISCARD int coord_cache_event(coord_cache *cc, uint64_t index, casenet_buf *out);
/* Events matching the filters (NULL or 0 = any), newest first, at most
 * limit, before index `before` (0 = the end), as a JSON array. */
json_t *coord_cache_list(coord_cache *cc, const char *member, const char *message_hex,
                         const char *case_hex, int kind, int64_t from_ms, int64_t to_ms,
                         uint64_t before, unsigned limit);

/* ------------------------------------------------------------ figures (console_stats.c) */

/* The figures over events with from_ms <= time < to_ms, from db (the
 * cache's): messages per day and per ISO week by kind and urgency, flows,
 * times to delivered and to accepted|declined per recipient and urgency,
 * declines by reason, takedowns within 24 h; actual messages only, with
 * exercise and test counted apart. With public, counts below
 * COORD_SMALL_CELL are the string "<5" and no message or case id appears.
 * head is stated in the result. NULL on failure. */
json_t *coord_figures(sqlite3 *db, int64_t from_ms, int64_t to_ms, bool public,
                      const struct coord_head *head);
/* Writes figures as CSV (section,key...,value rows) to f. */
int coord_figures_csv(const json_t *fig, FILE *f);
/* Month "YYYY-MM" as [from_ms, to_ms) in UTC. false when malformed. */
bool coord_month(const char *month, int64_t *from_ms, int64_t *to_ms);

/* ------------------------------------------------------------ API (console_coord.c) */

struct console;
struct console_req;
struct console_resp;

/* True when the home's member has role coordinator in its directory. */
bool console_is_coordinator(const struct console *c);
/* From the notice thread, over its own connection cl: at most once a
 * second, lists the overdue rows and pushes {"type":"overdue","count"} to
 * the pages when the board changed. Does nothing in a console that is not
 * a coordinator's. */
void console_coord_tick(struct console *c, casenet_client *cl);
/* Handles /coord/...: FORBIDDEN for a member that is not a coordinator. */
void console_coord_api(struct console *c, const struct console_req *r, struct console_resp *out);

#endif
