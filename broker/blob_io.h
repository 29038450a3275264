/*
 * blob_io.h - the blob writer: one thread beside the loop that writes the
 * chunks BlobPut hands over (blobs_chunk_write: written, fsync'd, renamed,
 * the directory fsync'd) and then reads what the blob holds (blobs_held),
 * so that the loop goes on serving the other members while a chunk becomes
 * durable, and answers its uploader once it is (handlers_blob.h).
 *
 * One thread: chunk writes are serialised, so exactly one write finds its
 * blob complete (the one that completed it), as when the loop wrote them.
 * Among the jobs waiting, the writer takes those of the member it has the
 * fewest of queued first (then the oldest): one member's queue of chunks
 * never holds another member's chunk behind more than one of its own per
 * round. How many jobs a member may have and in all is the loop's to bound
 * (server_impl.h, BLOB_WRITES_*).
 *
 * A job belongs to the writer from blob_io_submit until blob_io_take
 * returns it; its blob counts as being written (blob_io_busy) all that
 * time, so that the sweeps delete no blob a chunk is being written into.
 *
 * Threads: every function is called by the loop thread only; the writer
 * touches a job only between submit and take.
 */
#ifndef BROKER_BLOB_IO_H
#define BROKER_BLOB_IO_H

#include "blobs.h"
#include "casenet.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One BlobPut's chunk to write. The handler fills the request's part, the
 * loop the slot, the writer the result. */
struct blob_job {
    uint8_t id[CASENET_BLOB_ID_BYTES];
    uint32_t index;
    struct blob_meta meta; /* the blob's, as the handler checked it */
    casenet_buf chunk;     /* owned; freed by the writer once written */
    size_t chunk_len;      /* its length, kept after the bytes are freed */
    char member[CASENET_MEMBER_ID_MAX + 1];
    uint64_t request_id;
    size_t slot; /* the loop's: the request it answers */
    /* Set by the writer: blobs_chunk_write's rc and *fresh, then (rc OK)
     * what the blob holds; rc CASENET_EIO when that cannot be read. */
    int rc;
    bool fresh;
    struct blob_held held;
    /* The writer's. */
    unsigned round; /* jobs of its member ahead of it when submitted */
    bool writing, done;
    uint64_t done_seq; /* when written (1, 2, ...) */
    struct blob_job *next;
};

struct blob_io;

/* Starts the writer for the blobs under data_dir (copied). With
 * CASENET_TEST_HOOKS (test builds only) the writer waits before each write
 * while the file $CASENETD_TEST_BLOB_WRITE_GATE exists: a slow disk, on
 * demand. CASENET_ENOMEM, or CASENET_EIO when the thread or its eventfd
 * cannot be created. */
int blob_io_new(const char *data_dir, struct blob_io **out);
/* Stops the writer (the job it is writing is finished first) and frees
 * every job it still holds (their requests get no answer, as requests
 * pending when the broker stops). Accepts NULL. */
void blob_io_free(struct blob_io *io);
/* A descriptor readable while written jobs wait for blob_io_take. */
int blob_io_fd(const struct blob_io *io);
/* Hands j (allocated with calloc, chunk set) to the writer. */
void blob_io_submit(struct blob_io *io, struct blob_job *j);
/* The next written job (in the order they were written), now the
 * caller's, or NULL. */
struct blob_job *blob_io_take(struct blob_io *io);
/* True when the writer holds a job for blob id (queued, being written, or
 * written and not taken yet). */
bool blob_io_busy(struct blob_io *io, const uint8_t id[CASENET_BLOB_ID_BYTES]);
/* Adds to *n and *bytes the chunks of blob id the writer holds and has not
 * written yet, each index once, and returns true when one of the jobs held
 * (written or not) is chunk index (a resend). Read after the blob's files,
 * a job finishing between the two is counted in neither, never twice. */
bool blob_io_pending(struct blob_io *io, const uint8_t id[CASENET_BLOB_ID_BYTES], uint32_t index,
                     uint32_t *n, uint64_t *bytes);
/* Frees a job the caller holds. Accepts NULL. */
void blob_job_free(struct blob_job *j);

#endif
