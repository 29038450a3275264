/*
 * auditlog.h - verification of the broker's audit log, shared by both modes
 * of `casenet audit verify` (live and --file), and the export file format.
 * Internal to libcasenet (prefix auditv_): programs use the public verifier
 * of casenet.h (audit_verify.c), which drives this one. PROTOCOL.md §10.3 and
 * §10.4 specify the checkpoints and the file.
 *
 * The verifier consumes the log in index order: events (their exact bytes)
 * and signed tree heads (checkpoints). It recomputes the Merkle tree from the
 * events, checks that each event's own index is its position, and checks every
 * head: signature by the broker key, origin, size and time never decreasing,
 * and its root equal to the recomputed root at its size. It starts from a
 * remembered state (the last head the home trusted, with the compact range at
 * its size), so a continuation needs only the events after it, and a log that
 * was rewritten before that head cannot match it.
 *
 * When heads are checked: a head of size s is checked once exactly s events
 * have been consumed (counting from index 0). A producer may feed it at that
 * point or earlier: a head fed before its last event is verified (signature,
 * format, order) at once and its root is checked when the s-th event arrives
 * (at most AUDITV_PENDING_MAX such heads wait). A head fed after more than s
 * events is refused as out of order. So: feed a page's checkpoints before its
 * events, or interleave them right after the event that completes their size
 * (what the export file does). A head's size must be >= the remembered size.
 *
 * Epochs: starting from 0 below a remembered head of size M, a LOG_RESTORED
 * event at index N < M (the broker was restored from a backup) replaces the
 * remembered head when it names it: previous_size = M and previous_root its
 * root, or previous_size > M (the remembered head is older than the newest
 * one the operator proved; its root cannot be compared), or previous_size =
 * 0 (unknown). Verification then goes on as from the empty state, and the
 * change is reported through cfg.epoch. A LOG_RESTORED naming a head
 * smaller than M, or of size M with another root, fails (AUDITV_REMEMBERED,
 * CASENET_EROLLBACK): the restore hid a head this verifier holds.
 *
 * The first failure stops the verifier and is kept (auditv_failure); every
 * later call returns the same error. Root mismatches cannot name the event
 * that changed: they name the head and the interval [previous verified head
 * size, head size) of events (or the history before it) that differs.
 */
#ifndef CASENET_AUDITLOG_H
#define CASENET_AUDITLOG_H

#include "casenet.h"
#include "checkpoint.h"
#include "merkle.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AUDITV_EXPORT_FORMAT "casenet-audit-export-v1"
/* Largest record of an export file (length prefix), and largest event. */
#define AUDITV_RECORD_MAX (16u * 1024u * 1024u)
/* Most heads that may wait for their events. */
#define AUDITV_PENDING_MAX 4096
/* The progress callback runs every this many events (and at the end). */
#define AUDITV_PROGRESS_EVERY 1024
#define AUDITV_REASON_MAX     256
/* Network names as the file header carries them (origin minus its prefix). */
#define AUDITV_NETWORK_MAX (CKPT_ORIGIN_MAX - (sizeof CKPT_ORIGIN_PREFIX - 1))

/* ------------------------------------------------------------------ state */

/* A trusted point of the log: a head the home verified, and the compact
 * range at its size so that verification continues from there. Plain data
 * (about 3 KiB); copy freely. The empty state (all zero, size 0, no
 * checkpoint) trusts nothing yet. */
struct auditv_state {
    uint64_t size;
    int64_t time_ms;
    uint8_t root[MERKLE_HASH_BYTES];
    struct merkle_stack range; /* range.size == size; root is its root */
    size_t checkpoint_len;     /* 0 only for the empty state */
    uint8_t checkpoint[CKPT_MAX_BYTES];
};

/* Makes s the empty state (size 0, root of the empty tree). */
void auditv_state_init(struct auditv_state *s);

/* Serialises s (the home's file format, local only):
 *   "casenet-audit-state-v1\n" (23 bytes) || size (u64 big-endian) ||
 *   time_ms (i64 big-endian) || root (32) || one 32-byte hash per set bit of
 *   size, highest level first (the compact range) || checkpoint length (u16
 *   big-endian) || checkpoint || SHA-256 of everything before it (catches a
 *   damaged file; the file is trusted, so this is no MAC).
 * *out is malloc'd. CASENET_EINVAL when s is inconsistent. */
CASENET_NODISCARD int auditv_state_encode(const struct auditv_state *s, casenet_buf *out);
/* Parses the format above strictly: exact length, the range's root equal to
 * root, the checkpoint (unverified: the file is the home's own) present when
 * size > 0 and naming the same size, root and time. CASENET_EBADREQ
 * otherwise; out is written only on success. */
CASENET_NODISCARD int auditv_state_decode(const uint8_t *buf, size_t len, struct auditv_state *out);
/* auditv_state_encode to path, atomically (mode 0600). */
CASENET_NODISCARD int auditv_state_save(const char *path, const struct auditv_state *s);
/* Reads path with auditv_state_decode. CASENET_ENOTFOUND when path does not
 * exist (nothing remembered yet), CASENET_EIO when unreadable. */
CASENET_NODISCARD int auditv_state_load(const char *path, struct auditv_state *out);

/* ------------------------------------------------------------------ verifier */

/* Where verification failed. */
enum auditv_where {
    AUDITV_OK = 0,
    AUDITV_EVENT,      /* event `index` is malformed or not at its position */
    AUDITV_HEAD,       /* the head of size `head_size` is bad (format,
                        * signature, order, time, root: then the change is in
                        * events [index, head_size) or the history before) */
    AUDITV_REMEMBERED, /* the log disagrees with the remembered head of size
                        * head_size: it was rewritten in [index, head_size) or
                        * cut short before it */
    AUDITV_FILE,       /* the export file is malformed at byte `offset` */
};

struct auditv_failure {
    enum auditv_where where;
    int err;                        /* the casenet_err returned */
    uint64_t index;                 /* see enum auditv_where */
    uint64_t head_size;             /* HEAD, REMEMBERED */
    uint64_t offset;                /* FILE: byte offset of the bad record (its length
                                     * prefix); with auditv_verify_file, that of the
                                     * record that failed for the other kinds too */
    char reason[AUDITV_REASON_MAX]; /* one English sentence naming the place */
};

/* Told how far verification got: done = events consumed so far (absolute,
 * counting from index 0), total = cfg.total (0 = unknown). */
typedef void (*auditv_progress)(void *ctx, uint64_t done, uint64_t total);

/* An epoch change the verifier accepted: the broker was restored from a
 * backup of size restored_size and says so with a LOG_RESTORED event at
 * that index (PROTOCOL.md §10.1, §10.4), while the remembered head (of
 * remembered_size) lies beyond it. previous_size is the newest head the
 * broker's operator proved (0 = unknown); events [restored_size,
 * max(previous_size, remembered_size)) are lost. */
struct auditv_epoch {
    bool changed;
    uint64_t restored_size, previous_size, remembered_size;
};

struct auditv_config {
    const char *origin;       /* expected origin line (ckpt_origin); borrowed */
    const char *key_name;     /* the broker's member id; borrowed */
    const uint8_t *sign_pk;   /* the broker's Ed25519 key, 32 bytes; borrowed */
    auditv_progress progress; /* may be NULL */
    void *progress_ctx;
    uint64_t total; /* expected log size, for progress only; 0 = unknown */
    /* Where an accepted epoch change is reported (NULL = not wanted). Only
     * a verifier started from 0 below a remembered head sees one. */
    struct auditv_epoch *epoch;
    /* Told of each event consumed (at its position, index field right) and
     * of each head whose root matched; both may be NULL (hooks_ctx passed). */
    void (*on_event)(void *ctx, uint64_t index, const uint8_t *ev, size_t len);
    void (*on_head)(void *ctx, uint64_t size, int64_t time_ms, const uint8_t *ckpt, size_t len);
    void *hooks_ctx;
};

struct auditv;

/* Starts a verifier. trusted (NULL = the empty state) is copied. start is the
 * index of the first event that will be fed, and must be either
 * trusted->size (continue from its compact range: the cheap path) or 0
 * (recompute everything and compare with the trusted root on reaching its
 * size). cfg and what it points to are borrowed for the verifier's life.
 * CASENET_EINVAL for another start, CASENET_ENOMEM. */
CASENET_NODISCARD int auditv_new(const struct auditv_config *cfg,
                                 const struct auditv_state *trusted, uint64_t start,
                                 struct auditv **out);
void auditv_free(struct auditv *v);

/* Feeds the next event (its exact serialised AuditEvent bytes, borrowed).
 * CASENET_EBADREQ when it does not parse or its index field is not its
 * position (AUDITV_EVENT), CASENET_ETOOLARGE past AUDITV_RECORD_MAX bytes or
 * 2^64 - 1 events, or a head check that was due before it (see top). */
CASENET_NODISCARD int auditv_event(struct auditv *v, const uint8_t *ev, size_t len);

/* Feeds a signed head (checkpoint bytes, borrowed). CASENET_EBADREQ when
 * malformed or of another origin, CASENET_EBADSIG when the signature does
 * not verify with the broker key or the root does not match,
 * CASENET_ECONFLICT when out of order (size or time decreasing, size below
 * what was consumed or remembered), CASENET_ETOOLARGE when too many heads
 * wait. */
CASENET_NODISCARD int auditv_checkpoint(struct auditv *v, const uint8_t *ckpt, size_t len);

/* Ends the stream: every waiting head must have been reached
 * (CASENET_EBADSIG otherwise: events are missing, AUDITV_HEAD) and, when
 * starting from 0, the remembered size too (AUDITV_REMEMBERED). On success
 * *state (may be NULL) receives the new trusted state: the last verified
 * head, or the trusted one when no later head was verified. The verifier
 * may not be fed afterwards. */
CASENET_NODISCARD int auditv_finish(struct auditv *v, struct auditv_state *state);

/* The first failure (where == AUDITV_OK when none); borrowed from v. */
const struct auditv_failure *auditv_failure(const struct auditv *v);
/* Counts so far: events consumed (absolute), heads verified (roots checked),
 * and events consumed after the last verified head (not covered by a head). */
void auditv_counts(const struct auditv *v, uint64_t *events, uint64_t *heads,
                   uint64_t *unsigned_tail);

/* A checkpoint of an export page with its size, parsed but not verified (0
 * when it does not parse: it sorts first, and the verifier names it). */
struct auditv_page_head {
    uint64_t size;
    const casenet_buf *bytes; /* borrowed from the page */
};

/* The page's checkpoints with their sizes, in page order: sorted with
 * auditv_page_heads_sort (after appending one, when needed), each is fed or
 * written right after the event that brings the log to its size. *out is
 * malloc'd with room for one more entry (free()); CASENET_ENOMEM. */
CASENET_NODISCARD int auditv_page_heads(const casenet_audit_export_page *p,
                                        struct auditv_page_head **out);
/* Sorts n heads by size. */
void auditv_page_heads_sort(struct auditv_page_head *hs, size_t n);

/* ------------------------------------------------------------------ export file */

/* The header record of an export file. */
struct auditv_export_header {
    char network[AUDITV_NETWORK_MAX + 1];
    char broker_id[CASENET_MEMBER_ID_MAX + 1];
    uint8_t broker_sign_pk[CASENET_SIGN_PK_BYTES];
    uint64_t from_index;
};

/* Writers: each appends one record (varint length || AuditExportRecord) to
 * f. They write what they are given in the order given: the producer puts
 * each checkpoint right after the event that brings the log to its size.
 * CASENET_EINVAL for an invalid header or a record over AUDITV_RECORD_MAX,
 * CASENET_EIO when writing fails, CASENET_ENOMEM. */
CASENET_NODISCARD int auditv_export_write_header(FILE *f, const struct auditv_export_header *h);
CASENET_NODISCARD int auditv_export_write_event(FILE *f, const uint8_t *ev, size_t len);
CASENET_NODISCARD int auditv_export_write_checkpoint(FILE *f, const uint8_t *ckpt, size_t len);

/* What a record holds. */
enum auditv_record_type { AUDITV_REC_EVENT = 1, AUDITV_REC_CHECKPOINT = 2 };

struct auditv_reader;

/* Reads the header record from f (borrowed; read sequentially from its
 * current position, which counts as offset 0). CASENET_EBADREQ when f does
 * not start with a valid header (format string exact, network a valid origin
 * suffix, broker_id a member id, a 32-byte key, no unknown fields), with the
 * reason in fail (may be NULL; AUDITV_FILE). */
CASENET_NODISCARD int auditv_reader_open(FILE *f, struct auditv_export_header *hdr,
                                         struct auditv_reader **out, struct auditv_failure *fail);
void auditv_reader_free(struct auditv_reader *r);
/* The next record: CASENET_OK with *type and *rec (a malloc'd copy of the
 * event or checkpoint bytes; free with casenet_buf_free), or CASENET_OK with
 * *eof = true at a clean end of file. CASENET_EBADREQ naming the byte offset
 * in fail (AUDITV_FILE) for: a length prefix that is not a canonical varint
 * or is over AUDITV_RECORD_MAX, a truncated record, a record that does not
 * parse, has unknown fields, holds nothing or a second header.
 * CASENET_EIO when reading fails. */
CASENET_NODISCARD int auditv_reader_next(struct auditv_reader *r, enum auditv_record_type *type,
                                         casenet_buf *rec, bool *eof, struct auditv_failure *fail);

/* Offline verification of a whole export file: reads the header, which must
 * match cfg (origin = ckpt_origin(network), key name, key) and start at 0 or
 * at trusted->size (trusted may be NULL), then feeds every record to a
 * verifier and finishes it. On success *state (may be NULL) is the new
 * trusted state. On failure fail (may be NULL) names the first bad event,
 * head or byte offset. */
CASENET_NODISCARD int auditv_verify_file(FILE *f, const struct auditv_config *cfg,
                                         const struct auditv_state *trusted,
                                         struct auditv_state *state, struct auditv_failure *fail);

#endif /* CASENET_AUDITLOG_H */
