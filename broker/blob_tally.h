/*
 * blob_tally.h - the blob bytes each member holds, for the blob quota
 * check of a new blob without reading every blob's meta: the idle sweep's
 * passes (blobs.h, struct blobs_pass's kept_fn) count the blobs they keep
 * per owner, and the blobs created since the last pass ended are added as
 * they are created. A blob a pass deletes counts until that pass ends.
 *
 * Exact at the end of each pass: a blob on disk when the pass began is
 * visited by it (counted once, when kept), and of the blobs created during
 * the pass those it did not visit are added then. Until a first pass has
 * ended (and after running out of memory) it knows nothing and
 * blob_tally_owned says so: the caller then reads the blobs (blobs_sweep).
 *
 * One thread only (the loop's). Zero a struct blob_tally to start; free it
 * with blob_tally_clear.
 */
#ifndef BROKER_BLOB_TALLY_H
#define BROKER_BLOB_TALLY_H

#include "blobs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blob_tally_owner {
    char id[CASENET_MEMBER_ID_MAX + 1];
    uint64_t bytes;
};

struct blob_tally_made {
    uint8_t id[CASENET_BLOB_ID_BYTES];
    char owner[CASENET_MEMBER_ID_MAX + 1];
    uint64_t size;
    bool visited; /* by the pass under way */
};

struct blob_tally {
    bool known;                    /* a pass ended since the start, memory permitting */
    bool broken;                   /* out of memory during the pass under way */
    struct blob_tally_owner *held; /* as of the last pass's end */
    size_t n_held, cap_held;
    struct blob_tally_owner *next; /* the pass under way */
    size_t n_next, cap_next;
    struct blob_tally_made *made; /* created since the last pass ended */
    size_t n_made, cap_made;
};

/* kept_fn of struct blobs_pass (ctx: the tally): id and m NULL when a pass
 * starts, else a blob the pass keeps. */
void blob_tally_on_kept(const uint8_t *id, const struct blob_meta *m, void *ctx);
/* The pass under way reached the end: its counts become the tally. */
void blob_tally_pass_end(struct blob_tally *t);
/* A blob was created (its meta written) counting size (handlers_blob.c: its
 * blobs_charge, as its kept_fn counts the blobs a pass keeps). */
void blob_tally_created(struct blob_tally *t, const uint8_t id[CASENET_BLOB_ID_BYTES],
                        const char *owner, uint64_t size);
/* The bytes owner holds in blobs (as counted: see blob_tally_created): true and *bytes, or
 * false when the tally does not know yet. */
bool blob_tally_owned(const struct blob_tally *t, const char *owner, uint64_t *bytes);
/* Frees what t holds and zeroes it. */
void blob_tally_clear(struct blob_tally *t);

#endif
