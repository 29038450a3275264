/*
 * broker.h - the state casenetd's modules share: configuration and limits,
 * the broker's keys, the pinned authority key, the current directory, the
 * store, and the per-batch context that request handlers fill and the loop
 * acts on after commit.
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
    uint32_t escalation_budget; /* notices per sender per period (0 = no limit) */
    uint32_t escalation_period_s;
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
};

/* A row that appeared in a member's inbox during the batch: pushed as a
 * Notice to that member's subscribed connections after commit. */
struct batch_notice {
    char member[CASENET_MEMBER_ID_MAX + 1];
    casenet_buf response; /* a packed Response{request_id = 0, notice} */
};

/* A Submit envelope checked before its batch's handlers ran (verify.h):
 * what casenet_envelope_verify returned for these exact bytes. */
struct preverified {
    const uint8_t *envelope; /* borrowed; NULL = not checked */
    size_t len;
    int rc;
    casenet_message_info info; /* with rc == CASENET_OK; owned until a handler takes it */
};

/* A broker receipt that h_submit stored and packed into its reply with a
 * zero signature: signed before the commit (server.c, beside the loop on the
 * verification pool's workers), then written into its messages row and its
 * reply, so both hold exactly what signing inline gave. */
struct batch_sig {
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    int64_t rowid;      /* its messages row; 0: a reply only (a duplicate Submit) */
    casenet_buf pae;    /* the bytes to sign; owned */
    uint8_t *reply_sig; /* where the signature goes in the reply the handler returned
                         * (borrowed: the loop keeps that buffer until it sends it) */
    uint8_t sig[CASENET_SIGNATURE_BYTES]; /* written by the signer */
};

/* The envelope bytes a member's Submits stored in the batch, added to the
 * store's count (member_bytes_add) just before the commit. */
struct batch_bytes {
    char member[CASENET_MEMBER_ID_MAX + 1];
    uint64_t bytes;
};

/* What one batch leaves for the loop to do after its commit. */
struct batch {
    struct batch_notice *notices;
    size_t n_notices, cap_notices;
    casenet_directory *new_dir; /* a verified directory to swap in; owned */
    bool store_failed;          /* a store operation failed: roll back */
    struct preverified *pre;    /* for the request being dispatched, or NULL */
    /* The free space (limits_disk_avail_kb), measured once per batch: a
     * statvfs per Submit cost more than the rest of the limits. */
    bool disk_checked;
    uint64_t disk_avail_kb;
    /* Deferred receipt signatures. The loop reserves cap_sigs up front and
     * the array never moves while workers sign; with no room left (or none
     * reserved, e.g. outside process_batch) a handler signs inline. */
    struct batch_sig *sigs;
    size_t n_sigs, cap_sigs;
    struct batch_bytes *bytes; /* per member, for the byte quota */
    size_t n_bytes, cap_bytes;
};

/* Queues a notice for member (takes a copy of the packed response).
 * CASENET_ENOMEM. */
int batch_add_notice(struct batch *bt, const char *member, const uint8_t *resp, size_t len);
/* The deferred signature of the receipt of message id, registered in this
 * batch, or NULL. */
const struct batch_sig *batch_find_sig(const struct batch *bt,
                                       const uint8_t id[CASENET_MESSAGE_ID_BYTES]);
/* Counts n envelope bytes more for member in the batch. CASENET_ENOMEM. */
int batch_add_bytes(struct batch *bt, const char *member, uint64_t n);
/* The envelope bytes member's Submits stored in the batch so far. */
uint64_t batch_bytes_of(const struct batch *bt, const char *member);
/* Adds the batch's counts to the store (member_bytes_add), in batch, before
 * the commit. CASENET_EUNAVAIL (the batch rolls back). */
int batch_flush_bytes(const struct batch *bt, struct store *st);
/* Releases everything the batch holds and zeroes it. */
void batch_clear(struct batch *bt);

/* True when member id is an active member of the current directory whose
 * CURVE key is valid now (asked at every request: a key may pass its
 * valid_until while its connection stays up). */
bool broker_member_active(const struct broker *b, const char *id);

/* Logs a warning (and with to_stdout, for --check-config, prints it) when
 * dir has expired or expires within BROKER_EXPIRY_WARN_MS, saying what to
 * do. Called at start-up and hourly by the loop. */
void broker_warn_expiry(const casenet_directory *dir, bool to_stdout);

#endif
