/* merkle_mem.c - in-memory perfect-subtree store for the Merkle tests (see merkle_mem.h). */
#include "merkle_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mm_init(struct merkle_mem *m, uint64_t capacity)
{
    memset(m, 0, sizeof *m);
    m->capacity = capacity;
    for (unsigned l = 0; l < MERKLE_STACK_LEVELS && (capacity >> l) > 0; l++) {
        m->level[l] = calloc(capacity >> l, MERKLE_HASH_BYTES);
        if (!m->level[l]) {
            fprintf(stderr, "merkle_mem: out of memory\n");
            abort();
        }
    }
    merkle_stack_init(&m->stack);
}

void mm_free(struct merkle_mem *m)
{
    for (unsigned l = 0; l < MERKLE_STACK_LEVELS; l++)
        free(m->level[l]);
    memset(m, 0, sizeof *m);
}

int mm_store(void *ctx, unsigned level, uint64_t index, const uint8_t hash[MERKLE_HASH_BYTES])
{
    struct merkle_mem *m = ctx;
    /* Subtrees complete left to right, each exactly once. */
    if (level >= MERKLE_STACK_LEVELS || index != m->stored[level] ||
        index >= (m->capacity >> level)) {
        fprintf(stderr, "merkle_mem: unexpected subtree (%u, %llu)\n", level,
                (unsigned long long)index);
        abort();
    }
    memcpy(m->level[level][index], hash, MERKLE_HASH_BYTES);
    m->stored[level]++;
    return CASENET_OK;
}

int mm_get(void *ctx, unsigned level, uint64_t index, uint8_t out[MERKLE_HASH_BYTES])
{
    struct merkle_mem *m = ctx;
    m->reads++;
    if (m->fail_at_read > 0 && --m->fail_at_read == 0)
        return CASENET_EIO;
    if (level >= MERKLE_STACK_LEVELS || index >= m->stored[level] ||
        ((index + 1) << level) > m->limit) {
        m->out_of_range = true;
        return CASENET_ENOTFOUND;
    }
    memcpy(out, m->level[level][index], MERKLE_HASH_BYTES);
    return CASENET_OK;
}

void mm_leaf(uint64_t i, uint8_t out[MERKLE_HASH_BYTES])
{
    uint8_t data[8];
    for (int b = 0; b < 8; b++)
        data[b] = (uint8_t)(i >> (56 - 8 * b));
    merkle_leaf_hash(data, sizeof data, out);
}

void mm_push(struct merkle_mem *m, const uint8_t leaf_hash[MERKLE_HASH_BYTES])
{
    if (merkle_stack_push(&m->stack, leaf_hash, mm_store, m) != CASENET_OK) {
        fprintf(stderr, "merkle_mem: push failed\n");
        abort();
    }
}

void mm_append(struct merkle_mem *m, uint64_t n)
{
    uint8_t h[MERKLE_HASH_BYTES];
    for (uint64_t i = 0; i < n; i++) {
        mm_leaf(merkle_stack_size(&m->stack), h);
        mm_push(m, h);
    }
}

void mm_reset(struct merkle_mem *m, uint64_t limit)
{
    m->limit = limit;
    m->reads = 0;
    m->out_of_range = false;
    m->fail_at_read = 0;
}
