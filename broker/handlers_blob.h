/*
 * handlers_blob.h - the blob requests (PROTOCOL.md §8.2) and what Submit
 * asks of blobs. Handlers are req_handler_fn (request.h), named by the
 * table in dispatch.c; each answers with req_reply or returns the error
 * after req_fail. Blobs are files (blobs.h): a refused request leaves a
 * chunk it wrote in place (a later BlobPut of the same bytes is answered
 * OK), and a batch rolled back after Submit recorded a blob's recipients
 * leaves them recorded (they may fetch ciphertext whose key they never
 * received).
 */
#ifndef BROKER_HANDLERS_BLOB_H
#define BROKER_HANDLERS_BLOB_H

#include "blob_io.h"
#include "request.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* BlobPut: shape and max_message_size, disk reserve; a new blob checks the
 * owner's blob quota (QUOTA_EXCEEDED) against the sweep's tally
 * (blob_tally.h; before the first pass ended, against every blob, sweeping
 * unreferenced old ones) and its meta is created; the chunk is written
 * durably (idempotent); the put that completes the blob appends
 * BLOB_STORED. A chunk not held yet, with a writer that has room
 * (r->bt->blob_io, r->bt->blob_room), is not
 * written here: every check above made, it is left in r->bt->blob_job with
 * no reply (CASENET_OK), for the loop to hand to the writer and to answer
 * with handlers_blob_put_done once written. A chunk held already is
 * compared and answered here. */
int handlers_blob_put(struct req *r, const Casenet__V1__Request *q);
/* The answer to a BlobPut whose chunk the writer wrote (j taken from it,
 * blob_io.h), inside a batch's transaction: as handlers_blob_put would have
 * answered (BLOB_STORED appended by the write that completed the blob; an
 * audit the store fails sets bt->store_failed). Produces *reply (owned by
 * the caller) unless CASENET_ENOMEM. The request was counted (broker.h
 * on_done) when handed over, as answered OK. */
int handlers_blob_put_done(struct broker *b, struct batch *bt, const struct blob_job *j,
                           casenet_buf *reply);
/* BlobStatus: the chunks held, for the owner and referenced recipients. */
int handlers_blob_status(struct req *r, const Casenet__V1__Request *q);
/* BlobGet: one chunk, for the owner and referenced recipients; a
 * recipient's fetch of the last chunk appends BLOB_FETCHED. */
int handlers_blob_get(struct req *r, const Casenet__V1__Request *q);

/* For Submit, after admission (r->info filled): every blob id of the header
 * is the sender's and complete (NOT_FOUND otherwise), and the envelope with
 * its blobs fits max_message_size (TOO_LARGE). Writes nothing. */
int handlers_blob_submit_check(struct req *r, size_t envelope_len);
/* For Submit, with its writes: records the recipients of r->info in every
 * blob it references (UNAVAILABLE when the disk fails). */
int handlers_blob_submit_reference(struct req *r);

/* In the broker's idle time (the timer, when no request waits): one step
 * of the retirement pass (blobs.h, blobs_retire_step), which visits at most
 * 128 blobs and stops after 20 ms (the blob in hand finished), so that a
 * sweep over many blobs never holds the loop for long; a pass goes on at the next call and a new
 * one starts at most every BLOB_RETIRE_MS (5 s) after the last one ended. It deletes the blobs no
 * message references that are older than blob_unreferenced, and those whose every referencing
 * message is finished: every recipient's row completed or dead, the message expired, or purged. A
 * pass's end publishes the blobs kept and their bytes (metrics.h) and hands the per-owner counts to
 * the quota tally. Logs each step of a pass that takes more than one, and what a pass deleted;
 * failures are logged and retried. True when a pass is under way (its next step is due at the next
 * call). A blob the writer io (NULL: none) holds a chunk of is kept. */
bool handlers_blob_idle(struct broker *b, int64_t now_mono_ms, struct blob_io *io);

#endif
