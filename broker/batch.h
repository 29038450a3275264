/*
 * batch.h - what one batch of requests (or one deadline pass) leaves for the
 * loop to do after its commit: inbox notices to push, a directory to swap
 * in, deferred receipt signatures, per-member byte counts. Handlers,
 * deadlines and lifecycle queue work here; only the loop (server.c) acts on
 * it, so no lower layer ever calls back into the loop.
 */
#ifndef BROKER_BATCH_H
#define BROKER_BATCH_H

#include "casenet.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* A broker receipt that the Submit handler stored and packed into its reply
 * with a zero signature: signed before the commit (server.c, beside the
 * loop on the verification pool's workers), then written into its messages
 * row and its reply, so both hold exactly what signing inline gave. */
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
    /* The blob writer (blob_io.h), or NULL. While it has room (set by the
     * loop before each request) a BlobPut leaves its chunk here,
     * unanswered, and the loop hands it over at once (handlers_blob.h);
     * else the handler writes the chunk itself. */
    struct blob_io *blob_io;
    bool blob_room;
    struct blob_job *blob_job;
};

/* Queues a notice for member (takes a copy of the packed response).
 * CASENET_ENOMEM. */
int batch_add_notice(struct batch *bt, const char *member, const uint8_t *resp, size_t len);
/* Queues a Notice of the new inbox row (already inserted) for its
 * recipient's subscribed connections, pushed after the batch commits.
 * CASENET_ENOMEM. */
int batch_queue_notice(struct batch *bt, const struct store_inbox_row *row);
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

#endif
