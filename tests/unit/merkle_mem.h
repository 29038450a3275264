/*
 * merkle_mem.h - an in-memory store of perfect subtrees for the Merkle tests
 * and the bench: filled by merkle_stack_push's callback, read through the
 * merkle_get_node interface, counting reads. Test fixture: aborts on misuse.
 */
#ifndef CASENET_TEST_MERKLE_MEM_H
#define CASENET_TEST_MERKLE_MEM_H

#include "merkle.h"

#include <stdbool.h>
#include <stdint.h>

struct merkle_mem {
    uint64_t capacity;                                        /* leaves it can hold */
    uint8_t (*level[MERKLE_STACK_LEVELS])[MERKLE_HASH_BYTES]; /* capacity >> L slots */
    uint64_t stored[MERKLE_STACK_LEVELS];                     /* filled slots per level */
    struct merkle_stack stack;                                /* the log so far */
    uint64_t limit;    /* reads beyond this many leaves are refused and flagged */
    uint64_t reads;    /* get calls since the last reset */
    bool out_of_range; /* a read asked for a subtree beyond limit or not stored */
    int fail_at_read;  /* > 0: the n-th read from now fails with CASENET_EIO */
};

/* Allocates room for capacity leaves; the log starts empty. */
void mm_init(struct merkle_mem *m, uint64_t capacity);
void mm_free(struct merkle_mem *m);
/* Appends leaf hashes of the 8-byte big-endian encodings of the next n leaf
 * numbers (leaf i has data be64(i)), storing every completed subtree. */
void mm_append(struct merkle_mem *m, uint64_t n);
/* Appends one leaf hash. */
void mm_push(struct merkle_mem *m, const uint8_t leaf_hash[MERKLE_HASH_BYTES]);
/* The leaf hash of leaf i as mm_append makes it. */
void mm_leaf(uint64_t i, uint8_t out[MERKLE_HASH_BYTES]);
/* Starts counting reads for a proof over the first limit leaves. */
void mm_reset(struct merkle_mem *m, uint64_t limit);
/* merkle_on_complete and merkle_get_node over a struct merkle_mem. */
int mm_store(void *ctx, unsigned level, uint64_t index, const uint8_t hash[MERKLE_HASH_BYTES]);
int mm_get(void *ctx, unsigned level, uint64_t index, uint8_t out[MERKLE_HASH_BYTES]);

#endif
