/*
 * hashbank.h - a member's local hash bank (docs/hashbank.md): one SQLite
 * file in the home holding the hash entries received in HASH_SHARE messages
 * (PROTOCOL.md §6.2), applied in order and each message once, and the
 * feedback received on the member's own entries. Also the text forms the
 * CLI reads and writes: signal types, categories and CSV rows
 * (hashbank_csv.c).
 *
 * Signal types as text: "md5", "sha1", "sha256", "pdq", or "vendor:NAME"
 * for an opaque vendor type. Categories: "baseline", "nationally-illegal",
 * "not-illegal". Functions return casenet error codes (CASENET_OK = 0).
 */
#ifndef CASENET_HASHBANK_H
#define CASENET_HASHBANK_H

#include "casenet.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HASHBANK_FILE      "hashbank.sqlite"
#define HASHBANK_TYPE_MAX  80  /* "vendor:" + 64 + NUL fits */
#define HASHBANK_VALUE_MAX 257 /* the longest value + NUL */
/* The bank file's schema (SQLite user_version); hashbank_open migrates an
 * older file: 0 = the banks made before versions were recorded, 2 = adds the
 * per-source counts, the recorded matches and the feedback sent. */
#define HASHBANK_SCHEMA_VERSION 2

typedef struct hashbank hashbank;

/* Opens (creating when missing, mode 0600) the bank at path, migrating an
 * older schema first. *out is the caller's (hashbank_free). CASENET_EIO when
 * SQLite cannot open it, CASENET_EINVAL when a newer casenet made it. */
CASENET_NODISCARD int hashbank_open(const char *path, hashbank **out);
void hashbank_free(hashbank *b);

/* What hashbank_apply did with one message. */
struct hashbank_result {
    bool already;     /* applied before: nothing done */
    size_t added;     /* entries added or changed */
    size_t retracted; /* entries removed (or tombstoned before their add came) */
    size_t ignored;   /* older than what the bank holds for that signal */
    size_t feedback;  /* feedback items recorded */
};

/* True when the message id was applied already. */
bool hashbank_applied(hashbank *b, const uint8_t id[CASENET_MESSAGE_ID_BYTES]);

/* Applies one opened HASH_SHARE (a serialised Payload that passed
 * casenet_payload_check) from sender, sealed at created_ms, in one
 * transaction, once per message id. An entry adds or changes the sender's
 * entry for its signal unless the bank holds a newer event for it (or a
 * retraction as new); a retraction removes it unless the bank holds a newer
 * add. The caller checks that sender may contribute (casenet_hash_share_check).
 * CASENET_EBADREQ for a payload that is not a hash share, CASENET_EIO on a
 * database failure (nothing applied). */
CASENET_NODISCARD int hashbank_apply(hashbank *b, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                     const char *sender, int64_t created_ms, const uint8_t *payload,
                                     size_t len, struct hashbank_result *res);

/* One live entry (strings valid during the callback only). */
struct hashbank_entry {
    const char *contributor, *signal_type, *value, *reference;
    int category; /* CASENET__V1__HASH_CATEGORY__* */
    unsigned pdq_quality;
    int64_t first_seen_ms, updated_ms;
    int64_t imported_ms; /* when this bank took it in (0: before banks recorded it) */
};
/* Calls fn for every live entry, by signal type and value; category 0 =
 * every category. Stops at fn's first non-zero return, which it returns. */
int hashbank_each(hashbank *b, int category, int (*fn)(const struct hashbank_entry *, void *),
                  void *ctx);
/* *n = the number of live entries (any contributor) for a signal. */
CASENET_NODISCARD int hashbank_lookup(hashbank *b, const char *signal_type, const char *value,
                                      size_t *n);

/* One feedback item received, or sent (strings valid during the callback
 * only). The note is the other member's text: hostile, shown as text only. */
struct hashbank_feedback {
    const char *sender;    /* received: who sent it (NULL for sent feedback) */
    const char *recipient; /* sent: to whom, comma-separated (NULL for received) */
    const char *signal_type, *value, *note;
    int kind; /* CASENET__V1__HASH_FEEDBACK_KIND__* */
    uint32_t match_count;
    int64_t created_ms;
};
int hashbank_each_feedback(hashbank *b, int (*fn)(const struct hashbank_feedback *, void *),
                           void *ctx);

struct hashbank_stats {
    uint64_t by_category[4]; /* live entries, index = category */
    uint64_t live, retracted, messages, contributors;
    uint64_t matches, false_positives; /* feedback received */
    int64_t last_update_ms;            /* the newest applied message's created_ms */
};
CASENET_NODISCARD int hashbank_stats(hashbank *b, struct hashbank_stats *s);

/* ------------------------------------------------------------ the bank's log (hashbank_log.c) */

/* The figures of one source: a contributing member, or "list:NAME". */
struct hashbank_source {
    const char *source; /* valid during the callback only */
    uint64_t live[4];   /* live entries, index = category (0 unused) */
    uint64_t live_total, retracted;
    int64_t updated_ms; /* its newest applied add or retraction (sealed or imported) */
};
/* Calls fn for every source that added or retracted an entry, by name.
 * Stops at fn's first non-zero return, which it returns; CASENET_EIO. */
int hashbank_each_source(hashbank *b, int (*fn)(const struct hashbank_source *, void *), void *ctx);

/* How many recorded matches a bank keeps (the oldest go first; pruned once
 * in 256 inserts, so up to 255 more for a while). */
#define HASHBANK_MATCHES_KEPT 10000
/* The longest label recorded with a match (a file name the user asked for). */
#define HASHBANK_LABEL_MAX 256

/* Records that a lookup matched the live entries of signal (one row per
 * contributor, with its category), at distance (0 for exact types), now.
 * label is what the user asked to record with it (e.g. the file name), ""
 * or NULL for nothing; it is cut at HASHBANK_LABEL_MAX bytes. No file
 * content is ever recorded. *n = the rows recorded. CASENET_ETIMEDOUT
 * (nothing recorded) when another process holds the bank's write lock for
 * more than 50 ms (e.g. a long import), CASENET_EIO. */
CASENET_NODISCARD int hashbank_record_match(hashbank *b, const char *signal_type, const char *value,
                                            unsigned distance, const char *label, size_t *n);

/* One recorded match (strings valid during the callback only). */
struct hashbank_match {
    int64_t at_ms;
    const char *signal_type, *value, *contributor, *label; /* label "" when none */
    int category;
    unsigned distance;
};
/* Calls fn for the recorded matches newest first, skipping offset and at
 * most limit; *total = how many are kept. CASENET_EIO, or fn's non-zero. */
int hashbank_each_match(hashbank *b, size_t offset, size_t limit,
                        int (*fn)(const struct hashbank_match *, void *), void *ctx,
                        uint64_t *total);

/* Records feedback this member sent in message id to recipients (as the
 * --to list was written): kind, the signal, match_count, note. CASENET_EIO. */
CASENET_NODISCARD int hashbank_record_sent_feedback(hashbank *b,
                                                    const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                                    const char *recipients, int64_t created_ms,
                                                    int kind, const char *signal_type,
                                                    const char *value, uint32_t match_count,
                                                    const char *note);
/* Calls fn for the feedback received (sent = false) or sent, newest first,
 * skipping offset and at most limit; *total = how many there are. */
int hashbank_feedback_page(hashbank *b, bool sent, size_t offset, size_t limit,
                           int (*fn)(const struct hashbank_feedback *, void *), void *ctx,
                           uint64_t *total);

/* ------------------------------------------------------------ text forms */

/* "md5" ... "vendor:NAME" (the four names in any case) into *type and, for a vendor type, *vendor
 * (pointing into text); CASENET_EINVAL when it is none. */
CASENET_NODISCARD int hashbank_type_parse(const char *text, int *type, const char **vendor);
/* The text of a type (vendor: "vendor:" + vendor) into buf. */
const char *hashbank_type_text(int type, const char *vendor, char buf[HASHBANK_TYPE_MAX]);
/* "baseline", "nationally-illegal", "not-illegal" (also "not-illegal/under-review",
 * "under-review"); CASENET_EINVAL otherwise. */
CASENET_NODISCARD int hashbank_category_parse(const char *text, int *category);
const char *hashbank_category_name(int category);

/* A parsed CSV row or TYPE:VALUE argument; values lowercased for hex types. */
struct hashbank_row {
    int type;
    char vendor[HASHBANK_TYPE_MAX];
    char value[HASHBANK_VALUE_MAX];
    int category; /* 0 when the row states none */
};
/* Parses one CSV line "signal_type,signal_value[,category]" (no quoting: no
 * value of any type holds a comma or quote; a trailing CR is ignored) and
 * checks the value as PROTOCOL.md §6.2 says. CASENET_EINVAL with err saying
 * why. The header line is the caller's to skip (hashbank_csv_header). */
CASENET_NODISCARD int hashbank_csv_row(const char *line, size_t len, struct hashbank_row *row,
                                       char *err, size_t errlen);
/* True when line is the header "signal_type,signal_value,category". */
bool hashbank_csv_header(const char *line, size_t len);
/* Parses "TYPE:VALUE" (e.g. sha256:e3b0...), checked as a CSV row is. */
CASENET_NODISCARD int hashbank_signal_arg(const char *arg, struct hashbank_row *row, char *err,
                                          size_t errlen);

/* ------------------------------------------------------------ imported lists */

/* The longest name of an imported list (its source). */
#define HASHBANK_SOURCE_MAX 64

/* Imports the n rows of a foreign list (e.g. a CSV from NCMEC or
 * ThreatExchange) as the entries of source name, in one transaction: their
 * contributor is "list:" + name, first seen and imported now; a row without
 * a category takes category. redistribute is the comma-separated recipients
 * (member ids or @groups) the list may be contributed to ("" or NULL: none),
 * replacing what an earlier import of the same name said. CASENET_EINVAL for
 * a name that is empty, longer than HASHBANK_SOURCE_MAX or holds ':', ',' or
 * a space, or a row without category when category is 0; CASENET_EIO on a
 * database failure (nothing imported). */
CASENET_NODISCARD int hashbank_import_list(hashbank *b, const char *name, const char *redistribute,
                                           const struct hashbank_row *rows, size_t n, int category,
                                           struct hashbank_result *res);
/* *allowed = whether the imported list name may be contributed to recipient
 * (exactly as written at import). CASENET_ENOTFOUND when no list has that name. */
CASENET_NODISCARD int hashbank_source_allows(hashbank *b, const char *name, const char *recipient,
                                             bool *allowed);

/* ------------------------------------------------------------ PDQ matching */

/* The largest Hamming distance hashbank_pdq_match takes (of 256 bits). */
#define HASHBANK_PDQ_MAX_DISTANCE 31
/* The default distance and quality of `casenet hashes match`: ThreatExchange's. */
#define HASHBANK_PDQ_DISTANCE    31
#define HASHBANK_PDQ_MIN_QUALITY 50

/* An in-memory index of PDQ hashes (hashbank_pdq.c): multi-index hashing
 * over 16 chunks of 16 bits, about 340 bytes per hash. Queries only read it. */
typedef struct hashbank_pdq_index hashbank_pdq_index;
struct hashbank_pdq_hit {
    uint64_t bits[4];
    unsigned distance;
};
/* 64 hex digits into 4 words (most significant first); CASENET_EINVAL. */
CASENET_NODISCARD int hashbank_pdq_parse(const char *hex, uint64_t out[4]);
/* An empty index: hashbank_pdq_add each hash, then hashbank_pdq_build once. */
CASENET_NODISCARD int hashbank_pdq_new(hashbank_pdq_index **out);
CASENET_NODISCARD int hashbank_pdq_add(hashbank_pdq_index *ix, const uint64_t bits[4]);
CASENET_NODISCARD int hashbank_pdq_build(hashbank_pdq_index *ix);
/* An index of b's live pdq entries whose quality is not stated or at least
 * min_quality, built. *out is the caller's (hashbank_pdq_free). */
CASENET_NODISCARD int hashbank_pdq_load(hashbank *b, unsigned min_quality,
                                        hashbank_pdq_index **out);
/* The number of indexed hashes within max_distance (<= 31) of q; the first
 * max_hits of them into hits. 0 before hashbank_pdq_build. */
size_t hashbank_pdq_match(const hashbank_pdq_index *ix, const uint64_t q[4], unsigned max_distance,
                          struct hashbank_pdq_hit *hits, size_t max_hits);
void hashbank_pdq_free(hashbank_pdq_index *ix);

#endif
