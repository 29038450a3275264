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
#define BLOBS_LOCK      ".lock" /* in BLOBS_DIR: see blobs_lock */
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
/* True when chunk index of the blob is held (its file exists). */
bool blobs_chunk_exists(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                        uint32_t index);
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
/* What a blob counts in its owner's blob_quota: its bytes and a block of
 * BLOBS_FILE_CHARGE for each file it takes (one a chunk; its directory,
 * meta, refs and msgs), so that tiny blobs cannot fill the disk (or its
 * inodes) far below the quota. */
#define BLOBS_FILE_CHARGE 4096u
uint64_t blobs_charge(uint32_t total_chunks, uint64_t total_size);
/* True when a chunk is being written into blob id (blob_io.h): the sweeps
 * keep it, whatever else they would decide. */
typedef bool (*blobs_busy_fn)(const uint8_t id[CASENET_BLOB_ID_BYTES], void *ctx);
/* Walks every blob: deletes those no message references that were created
 * before unreferenced_before_ms (0 = delete none) and busy (NULL: none) does
 * not name, and sums in *owned the blobs_charge of the rest that owner owns. */
CASENET_NODISCARD int blobs_sweep(const char *data_dir, const char *owner,
                                  int64_t unreferenced_before_ms, blobs_busy_fn busy,
                                  void *busy_ctx, uint64_t *owned);

/* A retirement pass cut into steps (the loop's idle sweep): the open
 * directory stream of DATA/blobs and the figures of the blobs the pass kept.
 * Zero it before the first step; blobs_pass_end closes it. */
struct blobs_pass {
    void *dir;           /* DIR *, NULL between passes */
    uint64_t kept;       /* blobs the pass visited and kept */
    uint64_t kept_bytes; /* their total_size */
    uint64_t removed;    /* blobs the pass deleted */
    uint64_t steps;      /* steps the pass took */
    int lock_errno;      /* why a step could not take the blobs lock (not
                          * because casenetd backup held it), else 0 */
    /* Called for each blob the pass visits and keeps, and at the start of
     * each pass with id and m NULL; set before the first step, kept across
     * passes. NULL: none. */
    void (*kept_fn)(const uint8_t *id, const struct blob_meta *m, void *ctx);
    void *kept_ctx;
    /* Blobs being written into, kept (set like kept_fn). NULL: none. */
    blobs_busy_fn busy_fn;
    void *busy_ctx;
};
/* One step of blobs_retire's pass: visits at most max blobs from where the
 * last step stopped (a step after the end starts a new pass), and no more
 * once budget_us microseconds went by (0: no time bound; the blob in hand
 * is finished), and deletes as blobs_retire does. *done tells the pass reached the end: its figures
 * are then whole (a blob created during the pass may or may not be counted), and the next step
 * starts over. While casenetd backup holds the blobs lock (blobs_lock) nothing is deleted: those
 * blobs count as kept. *removed = the number this step deleted. */
CASENET_NODISCARD int blobs_retire_step(const char *data_dir, struct blobs_pass *p, size_t max,
                                        int64_t budget_us, int64_t unreferenced_before_ms,
                                        blobs_finished_fn finished, void *ctx, size_t *removed,
                                        bool *done);
/* Closes the pass's directory stream (figures kept). Accepts a zeroed pass. */
void blobs_pass_end(struct blobs_pass *p);

/* The blobs lock, DATA/blobs/.lock (created when absent; DATA/blobs is
 * not: -1 with ENOENT, there are no blobs): casenetd backup holds it shared while it copies blobs,
 * so that the broker deletes none of the blobs its snapshot references meanwhile; the broker's
 * sweeps take it exclusive without waiting before deleting (wait false) and delete nothing when
 * they cannot. Returns the descriptor holding it (close it to release), or -1 (errno set;
 * EWOULDBLOCK: held). */
int blobs_lock(const char *data_dir, bool exclusive, bool wait);
/* The blob id a directory name (32 hex digits) gives, or false. */
bool blobs_parse_id(const char *name, uint8_t id[CASENET_BLOB_ID_BYTES]);
/* Writes file name ("meta", "refs", "msgs" or a chunk's index) of blob id
 * durably, creating DATA/blobs and the blob's directory when absent (the
 * restore of a backup). */
CASENET_NODISCARD int blobs_file_put(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                                     const char *name, const uint8_t *data, size_t len);

#endif
