/* merkle.c - RFC 9162 §2.1 Merkle tree: hashing, builder, proofs from stored
 * perfect subtrees, verification (see merkle.h). */
#include "merkle.h"

#include <assert.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

_Static_assert(MERKLE_HASH_BYTES == crypto_hash_sha256_BYTES, "merkle hash size");
_Static_assert(MERKLE_HASH_BYTES == CASENET_HASH_BYTES, "merkle hash size");

static const uint8_t LEAF_PREFIX = 0x00;
static const uint8_t NODE_PREFIX = 0x01;

/* ------------------------------------------------------------------ bits */

/* Number of significant bits of x (0 for 0). */
static unsigned bit_len(uint64_t x)
{
    return x ? 64u - (unsigned)__builtin_clzll(x) : 0u;
}

static unsigned pop_count(uint64_t x)
{
    return (unsigned)__builtin_popcountll(x);
}

/* The largest power of two strictly smaller than n; n >= 2. */
static uint64_t split_point(uint64_t n)
{
    assert(n >= 2);
    return (uint64_t)1 << (bit_len(n - 1) - 1);
}

/* ------------------------------------------------------------------ hashing */

void merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[MERKLE_HASH_BYTES])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &LEAF_PREFIX, 1);
    if (len > 0)
        crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out);
}

void merkle_node_hash_bytes(const uint8_t *left, size_t left_len, const uint8_t *right,
                            size_t right_len, uint8_t out[MERKLE_HASH_BYTES])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &NODE_PREFIX, 1);
    if (left_len > 0)
        crypto_hash_sha256_update(&st, left, left_len);
    if (right_len > 0)
        crypto_hash_sha256_update(&st, right, right_len);
    crypto_hash_sha256_final(&st, out);
}

void merkle_node_hash(const uint8_t left[MERKLE_HASH_BYTES], const uint8_t right[MERKLE_HASH_BYTES],
                      uint8_t out[MERKLE_HASH_BYTES])
{
    /* The state absorbs both inputs before out is written, so out may alias. */
    merkle_node_hash_bytes(left, MERKLE_HASH_BYTES, right, MERKLE_HASH_BYTES, out);
}

void merkle_empty_root(uint8_t out[MERKLE_HASH_BYTES])
{
    crypto_hash_sha256(out, NULL, 0);
}

/* ------------------------------------------------------------------ builder */

void merkle_stack_init(struct merkle_stack *s)
{
    memset(s, 0, sizeof *s);
}

uint64_t merkle_stack_size(const struct merkle_stack *s)
{
    return s->size;
}

int merkle_stack_push(struct merkle_stack *s, const uint8_t leaf_hash[MERKLE_HASH_BYTES],
                      merkle_on_complete on_complete, void *ctx)
{
    if (s->size == UINT64_MAX)
        return CASENET_ETOOLARGE;
    uint8_t h[MERKLE_HASH_BYTES];
    memcpy(h, leaf_hash, sizeof h);
    uint64_t index = s->size;
    unsigned level = 0;
    if (on_complete) {
        int rc = on_complete(ctx, 0, index, h);
        if (rc != CASENET_OK)
            return rc;
    }
    /* Each set low bit of size is a perfect subtree of that level waiting for
     * a right sibling of equal size: the new one closes it. */
    while ((s->size >> level) & 1) {
        merkle_node_hash(s->hash[level], h, h);
        level++;
        index >>= 1;
        if (on_complete) {
            int rc = on_complete(ctx, level, index, h);
            if (rc != CASENET_OK)
                return rc;
        }
    }
    assert(level < MERKLE_STACK_LEVELS);
    memcpy(s->hash[level], h, sizeof h);
    s->size++;
    return CASENET_OK;
}

void merkle_stack_root(const struct merkle_stack *s, uint8_t out[MERKLE_HASH_BYTES])
{
    if (s->size == 0) {
        merkle_empty_root(out);
        return;
    }
    /* The lowest set bit is the rightmost (smallest) subtree; each higher one
     * is the left child of the node over everything to its right. */
    unsigned level = (unsigned)__builtin_ctzll(s->size);
    uint8_t h[MERKLE_HASH_BYTES];
    memcpy(h, s->hash[level], sizeof h);
    for (level++; level < MERKLE_STACK_LEVELS; level++) {
        if ((s->size >> level) & 1)
            merkle_node_hash(s->hash[level], h, h);
    }
    memcpy(out, h, sizeof h);
}

/* ------------------------------------------------------------------ proofs */

/* The hash of leaves [start, end), 0 < end - start, where start is a multiple
 * of the smallest power of two >= end - start. Such a range is the perfect
 * subtrees given by the set bits of its length, largest first, and its
 * Merkle tree hash (RFC 9162 MTH, splitting at the largest power of two
 * below the length) is the right fold node(P1, node(P2, ... Pm)). Reads:
 * popcount(end - start). */
static int range_hash(merkle_get_node get, void *ctx, uint64_t start, uint64_t end,
                      uint8_t out[MERKLE_HASH_BYTES])
{
    uint64_t len = end - start;
    assert(end > start);
    assert(bit_len(len - 1) == 64 ? start == 0
                                  : (start & (((uint64_t)1 << bit_len(len - 1)) - 1)) == 0);
    uint8_t parts[MERKLE_STACK_LEVELS][MERKLE_HASH_BYTES];
    unsigned m = 0;
    uint64_t pos = start;
    for (unsigned level = MERKLE_STACK_LEVELS; level-- > 0;) {
        uint64_t width = (uint64_t)1 << level;
        if (!(len & width))
            continue;
        int rc = get(ctx, level, pos >> level, parts[m]);
        if (rc != CASENET_OK)
            return rc;
        m++;
        pos += width;
    }
    assert(m > 0 && pos == end);
    uint8_t h[MERKLE_HASH_BYTES];
    memcpy(h, parts[m - 1], sizeof h);
    for (unsigned i = m - 1; i-- > 0;)
        merkle_node_hash(parts[i], h, h);
    memcpy(out, h, sizeof h);
    return CASENET_OK;
}

int merkle_stack_load(struct merkle_stack *s, merkle_get_node get, void *ctx, uint64_t size)
{
    struct merkle_stack tmp;
    merkle_stack_init(&tmp);
    uint64_t pos = 0;
    for (unsigned level = MERKLE_STACK_LEVELS; level-- > 0;) {
        if (!((size >> level) & 1))
            continue;
        int rc = get(ctx, level, pos >> level, tmp.hash[level]);
        if (rc != CASENET_OK)
            return rc;
        pos += (uint64_t)1 << level;
    }
    tmp.size = size;
    *s = tmp;
    return CASENET_OK;
}

int merkle_root_at(merkle_get_node get, void *ctx, uint64_t size, uint8_t out[MERKLE_HASH_BYTES])
{
    if (size == 0) {
        merkle_empty_root(out);
        return CASENET_OK;
    }
    return range_hash(get, ctx, 0, size, out);
}

size_t merkle_proof_len_inclusion(uint64_t index, uint64_t size)
{
    if (index >= size)
        return 0;
    /* Below level `inner` the leaf's path and the tree's right edge differ, so
     * every level has a sibling; above it the path runs along the right edge,
     * where only the levels with a left sibling (the set bits) contribute. */
    unsigned inner = bit_len(index ^ (size - 1));
    unsigned border = inner < 64 ? pop_count(index >> inner) : 0;
    return (size_t)inner + border;
}

size_t merkle_proof_len_consistency(uint64_t size1, uint64_t size2)
{
    if (size1 == 0 || size1 >= size2)
        return 0;
    /* The inclusion path of leaf size1 - 1 in the new tree, minus the levels
     * inside the old tree's rightmost perfect subtree (whose hash stands in
     * for the leaf), plus that subtree's own hash unless it is the whole old
     * tree (size1 a power of two: the verifier supplies root1 instead). */
    unsigned shift = (unsigned)__builtin_ctzll(size1);
    size_t len = merkle_proof_len_inclusion(size1 - 1, size2) - shift;
    if (size1 != (uint64_t)1 << shift)
        len++;
    return len;
}

int merkle_inclusion_proof(merkle_get_node get, void *ctx, uint64_t index, uint64_t size,
                           uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap, size_t *n)
{
    if (index >= size)
        return CASENET_EINVAL;
    size_t len = merkle_proof_len_inclusion(index, size);
    if (len > cap)
        return CASENET_ETOOLARGE;
    /* PATH walks down from the root and appends the sibling after recursing,
     * so the sibling found first (a child of the root) goes last. */
    size_t at = len;
    uint64_t lo = 0, hi = size;
    while (hi - lo > 1) {
        uint64_t k = split_point(hi - lo);
        assert(at > 0);
        int rc;
        if (index < lo + k) {
            rc = range_hash(get, ctx, lo + k, hi, proof[--at]);
            hi = lo + k;
        } else {
            rc = range_hash(get, ctx, lo, lo + k, proof[--at]);
            lo += k;
        }
        if (rc != CASENET_OK)
            return rc;
    }
    assert(at == 0);
    *n = len;
    return CASENET_OK;
}

int merkle_consistency_proof(merkle_get_node get, void *ctx, uint64_t size1, uint64_t size2,
                             uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap, size_t *n)
{
    if (size1 == 0 || size1 > size2)
        return CASENET_EINVAL;
    size_t len = merkle_proof_len_consistency(size1, size2);
    if (len > cap)
        return CASENET_ETOOLARGE;
    /* SUBPROOF(m, D[lo:hi], whole) iteratively; as in PATH, hashes found on
     * the way down are emitted in reverse. */
    size_t at = len;
    uint64_t lo = 0, hi = size2;
    bool whole = true; /* D[lo:hi] is still the entire new tree's left edge */
    while (size1 < hi) {
        uint64_t k = split_point(hi - lo);
        assert(at > 0);
        int rc;
        if (size1 <= lo + k) {
            rc = range_hash(get, ctx, lo + k, hi, proof[--at]);
            hi = lo + k;
        } else {
            rc = range_hash(get, ctx, lo, lo + k, proof[--at]);
            lo += k;
            whole = false;
        }
        if (rc != CASENET_OK)
            return rc;
    }
    if (!whole) {
        assert(at == 1);
        int rc = range_hash(get, ctx, lo, hi, proof[--at]);
        if (rc != CASENET_OK)
            return rc;
    }
    assert(at == 0);
    *n = len;
    return CASENET_OK;
}

/* ------------------------------------------------------------------ verification */

int merkle_verify_inclusion(const uint8_t leaf_hash[MERKLE_HASH_BYTES], uint64_t index,
                            uint64_t size, const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t n,
                            const uint8_t root[MERKLE_HASH_BYTES])
{
    if (index >= size)
        return CASENET_EINVAL;
    if (n != merkle_proof_len_inclusion(index, size))
        return CASENET_EBADSIG;
    /* RFC 9162 §2.1.3.2. fn walks the leaf's position up, sn the last leaf's:
     * where they coincide the node has no right sibling and is promoted. */
    uint64_t fn = index, sn = size - 1;
    uint8_t r[MERKLE_HASH_BYTES];
    memcpy(r, leaf_hash, sizeof r);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return CASENET_EBADSIG;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(proof[i], r, r);
            while (fn != 0 && !(fn & 1)) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || crypto_verify_32(r, root) != 0)
        return CASENET_EBADSIG;
    return CASENET_OK;
}

int merkle_verify_consistency(uint64_t size1, uint64_t size2,
                              const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t n,
                              const uint8_t root1[MERKLE_HASH_BYTES],
                              const uint8_t root2[MERKLE_HASH_BYTES])
{
    if (size1 > size2 || size1 == 0)
        return CASENET_EINVAL;
    if (size1 == size2) {
        if (n != 0 || crypto_verify_32(root1, root2) != 0)
            return CASENET_EBADSIG;
        return CASENET_OK;
    }
    if (n == 0 || n != merkle_proof_len_consistency(size1, size2))
        return CASENET_EBADSIG;
    /* RFC 9162 §2.1.4.2. When size1 is a power of two the old tree is one
     * perfect subtree of the new one and root1 is the path's first hash. */
    size_t i = 0;
    const uint8_t *seed;
    if ((size1 & (size1 - 1)) == 0) {
        seed = root1;
    } else {
        seed = proof[0];
        i = 1;
    }
    uint64_t fn = size1 - 1, sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    uint8_t fr[MERKLE_HASH_BYTES], sr[MERKLE_HASH_BYTES];
    memcpy(fr, seed, sizeof fr);
    memcpy(sr, seed, sizeof sr);
    for (; i < n; i++) {
        if (sn == 0)
            return CASENET_EBADSIG;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(proof[i], fr, fr);
            merkle_node_hash(proof[i], sr, sr);
            while (fn != 0 && !(fn & 1)) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* Both comparisons always run: which one failed is not worth a branch. */
    int bad1 = crypto_verify_32(fr, root1);
    int bad2 = crypto_verify_32(sr, root2);
    if (sn != 0 || bad1 != 0 || bad2 != 0)
        return CASENET_EBADSIG;
    return CASENET_OK;
}
