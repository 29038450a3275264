/*
 * broker.h - the state casenetd's modules share: configuration and limits,
 * the broker's keys, the pinned authority key, the current directory, the
 * store and the hook that counts finished requests. What one batch leaves
 * for the loop after its commit is in batch.h; one request's context in
 * request.h.
 */
#ifndef BROKER_BROKER_H
#define BROKER_BROKER_H

#include "casenet.h"
#include "member_limits.h"
#include "policy.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BROKER_DEFAULT_MAX_ENVELOPE (1024u * 1024u)
#define BROKER_DEFAULT_MAX_RCPTS    256u
#define BROKER_DEFAULT_CLOCK_SKEW_S 600u
#define BROKER_DEFAULT_BATCH_MAX    256u
#define BROKER_MAX_VERIFY_THREADS   8u /* default: one per core beyond the loop's, up to 4 */
#define BROKER_FRAME_MARGIN         (64u * 1024u)  /* MAXMSGSIZE = envelope + this */
#define BROKER_DIRECTORY_FILE       "directory.pb" /* in the data directory */
#define BROKER_PROTOCOL_VERSION     1u
/* The log warns this long before the directory expires (at start-up and
 * hourly); the CLI warns on every command from the same time. */
#define BROKER_EXPIRY_WARN_MS (7LL * 86400 * 1000)

struct broker_limits {
    uint32_t max_envelope_bytes;
    uint32_t max_recipients;
    uint32_t clock_skew_s;
    uint32_t batch_max;
    /* After an idle loop, wait this long for more requests (0 = off). */
    uint32_t batch_window_us;
    uint32_t verify_threads; /* workers verifying Submits off the loop (verify.h) */
    /* Per-member limits (member_limits.h); config.c fills in the defaults. A
     * rate of 0 given in the config turns that bucket off. */
    struct limits_rate rate[LIMITS_BUCKETS_N]; /* token bucket per request class */
    uint32_t max_inbox_backlog;                /* queued message rows per inbox */
    uint32_t max_pair_backlog;                 /* of them from one sender (0 = no cap) */
    uint32_t emergency_pct;                    /* share of both caps only EMERGENCY takes */
    uint32_t quota_mb;                         /* stored envelope MiB per sender (0 = none) */
    uint32_t fair_share;                       /* requests per member per batch */
    uint32_t min_free_mb;                      /* the disk reserve, split per class (0 = off) */
    uint32_t max_pending;                      /* requests of one member waiting for a batch */
    uint32_t max_connections;                  /* connections per member (0 = no limit) */
    uint32_t escalation_budget;                /* notices per sender per period (0 = no limit) */
    uint32_t escalation_period_s;
    uint32_t max_message_mb;      /* an envelope with its blobs, MiB (handlers_blob.h) */
    uint32_t blob_quota_mb;       /* blob MiB one member may hold (0 = none) */
    uint32_t blob_unreferenced_s; /* an unreferenced blob is deleted after this (0 = never) */
};

/* Paths and limits as given by the config file and the command line, with
 * the defaults filled in (config.h: one table describes every field;
 * malloc'd strings, NULL when not set). */
struct broker_config {
    char *data_dir;
    char *listen;
    char *key_path;
    char *directory_path;
    char *authority_path;
    char *policy_path;
    char *store_spec; /* store_open's spec; default "sqlite:" + data_dir */
    char *admin;      /* the admin listener's HOST:PORT (admin.h), or NULL */
    struct broker_limits limits;
};

struct broker {
    const struct broker_config *cfg; /* borrowed from main */
    casenet_keys *keys;              /* the broker's keyring; owned */
    const char *broker_id;           /* borrowed from keys */
    uint8_t authority_pk[CASENET_SIGN_PK_BYTES];
    casenet_directory *dir;      /* current directory; owned; swapped after commit */
    struct store *store;         /* owned */
    struct broker_policy policy; /* deadlines per urgency (--policy) */
    struct limits *limits;       /* per-member submit buckets; owned (may be NULL) */
    /* Called by the dispatcher (request.h) after every request it answered,
     * with the request's kind (an index into req_kinds()) and the wire
     * ErrorCode of the answer (0 = OK), before the batch commits: a batch
     * that then fails is answered UNAVAILABLE without a second call. For
     * counters (an admin or metrics module); it must not block, fail or
     * touch the store. NULL (the default): nothing is called. Answers the
     * loop gives without dispatching (bad framing, a peer-chosen routing
     * id, beyond max_pending) are not reported here. */
    void (*on_done)(void *ctx, size_t kind, int code);
    void *on_done_ctx;
};

/* True when member id is an active member of the current directory whose
 * CURVE key is valid now (asked at every request: a key may pass its
 * valid_until while its connection stays up). */
bool broker_member_active(const struct broker *b, const char *id);

/* True when member holds the coordinator role in the current directory. */
bool broker_is_coordinator(const struct broker *b, const char *member);

/* Logs a warning (and with to_stdout, for --check-config, prints it) when
 * dir has expired or expires within BROKER_EXPIRY_WARN_MS, saying what to
 * do. Called at start-up and hourly by the loop. */
void broker_warn_expiry(const casenet_directory *dir, bool to_stdout);

#endif
