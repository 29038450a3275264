/*
 * blobs.h - attachment blobs on disk (PROTOCOL.md §8.2): the ciphertext
 * chunks members upload before a Submit that references them, kept as files
 * under DATA/blobs/<32 hex>/: "meta" (owner, chunk count, size, creation
 * time), one file per chunk named by its decimal index, "refs" (the
 * members a stored message addressed while referencing the blob, one a
 * line) and "msgs" (the ids of those messages, in hex, one a line). Files, not store rows: a chunk
 * is written and read without ever holding a whole blob in memory, and the store's transaction
 * stays small. Every write is fsync'd (file and directory) before the function returns. Errors:
 * CASENET_ENOTFOUND (no such blob or chunk), CASENET_ECONFLICT (a chunk already held with other
 * bytes, a meta that disagrees), CASENET_EIO (the file system), CASENET_ENOMEM.
 */
#ifndef BROKER_BLOBS_H
#define BROKER_BLOBS_H

#include "casenet.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOBS_DIR       "blobs" /* under the data directory */
#define BLOBS_CHUNK_MAX (CASENET_ATTACH_CHUNK_BYTES + CASENET_ATTACH_ABYTES)

struct blob_meta {
    char owner[CASENET_MEMBER_ID_MAX + 1];
    uint32_t total_chunks;
    uint64_t total_size;
    int64_t created_ms;
};

/* What the broker holds of one blob. */
struct blob_held {
    uint32_t n;     /* chunks held */
    uint64_t bytes; /* their bytes */
    bool complete;  /* every chunk, and bytes == total_size */
};

/* The blob's meta. CASENET_ENOTFOUND when the broker has no such blob. */
CASENET_NODISCARD int blobs_meta_read(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                                      struct blob_meta *m);
/* Creates the blob's directory and meta. CASENET_ECONFLICT when it exists. */
CASENET_NODISCARD int blobs_meta_create(const char *data_dir,
                                        const uint8_t id[CASENET_BLOB_ID_BYTES],
                                        const struct blob_meta *m);
/* Writes chunk index (fsync'd, renamed into place). A chunk already held
 * with the same bytes is CASENET_OK with *fresh false; with other bytes
 * CASENET_ECONFLICT. */
CASENET_NODISCARD int blobs_chunk_write(const char *data_dir,
                                        const uint8_t id[CASENET_BLOB_ID_BYTES], uint32_t index,
                                        const uint8_t *data, size_t len, bool *fresh);
/* Reads chunk index into *out (malloc'd, at most BLOBS_CHUNK_MAX bytes). */
CASENET_NODISCARD int blobs_chunk_read(const char *data_dir,
                                       const uint8_t id[CASENET_BLOB_ID_BYTES], uint32_t index,
                                       casenet_buf *out);
/* Which chunks of the blob of m are held: when list is not NULL it receives
 * the indexes held, ascending (room for m->total_chunks). */
CASENET_NODISCARD int blobs_held(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                                 const struct blob_meta *m, uint32_t *list, struct blob_held *h);
/* True when member may read the blob: its owner, or listed in its refs. */
bool blobs_may_read(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                    const struct blob_meta *m, const char *member);
/* True when some stored message references the blob (it has refs). */
bool blobs_referenced(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES]);
/* Appends members to the blob's refs and msg_id (hex, a line) to its
 * "msgs", the messages that reference it (both fsync'd). */
CASENET_NODISCARD int blobs_reference(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                                      const uint8_t msg_id[CASENET_MESSAGE_ID_BYTES],
                                      char *const *members, size_t n);
/* True when message msg_id, which referenced a blob created at
 * blob_created_ms, no longer needs it. */
typedef bool (*blobs_finished_fn)(const uint8_t msg_id[CASENET_MESSAGE_ID_BYTES],
                                  int64_t blob_created_ms, void *ctx);
/* Walks every blob and deletes it when no message references it and it was
 * created before unreferenced_before_ms (0 = none of those), or when
 * finished is true for every message its "msgs" names (a blob referenced
 * before "msgs" was kept stays). *removed = the number deleted. */
CASENET_NODISCARD int blobs_retire(const char *data_dir, int64_t unreferenced_before_ms,
                                   blobs_finished_fn finished, void *ctx, size_t *removed);
/* Walks every blob: deletes those no message references that were created
 * before unreferenced_before_ms (0 = delete none), and sums in *owned the
 * total_size of the rest that owner owns. */
CASENET_NODISCARD int blobs_sweep(const char *data_dir, const char *owner,
                                  int64_t unreferenced_before_ms, uint64_t *owned);

#endif
