/*
 * merkle.h - the audit log's Merkle tree (RFC 9162 §2.1): hashing, an
 * incremental builder, proofs computed from stored perfect subtrees, and proof
 * verification. Internal to libcasenet and casenetd (prefix merkle_).
 *
 * Terms used below:
 *  - A perfect subtree (level, index) is the Merkle tree hash of the 2^level
 *    leaves [index * 2^level, (index + 1) * 2^level). Level 0 is a leaf hash.
 *    The broker stores every perfect subtree as soon as it is complete (the
 *    merkle_stack callback tells it which), about 2n hashes for n leaves.
 *  - Every range that RFC 9162's MTH, PATH and SUBPROOF need starts at a
 *    multiple of the power of two at least as large as the range; such a
 *    range is one perfect subtree per set bit of its length, so its hash
 *    costs at most 64 stored reads and never touches the leaves below.
 *
 * Errors are casenet_err values. Verification returns CASENET_EINVAL for
 * impossible sizes (index >= size, size1 > size2, size1 == 0) and
 * CASENET_EBADSIG when the proof does not verify (wrong length, wrong hashes,
 * roots that do not match). Both mean: reject.
 */
#ifndef CASENET_MERKLE_H
#define CASENET_MERKLE_H

#include "casenet.h"

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_BYTES 32
/* Longest proof: an inclusion proof has at most 64 hashes (tree height for
 * 2^64 - 1 leaves), a consistency proof at most 65 (the extra one is the old
 * root's own subtree when size1 is not a power of two). */
#define MERKLE_PROOF_MAX 65
/* Most perfect subtrees a stack holds: one per bit of a 64-bit size. */
#define MERKLE_STACK_LEVELS 64

/* ------------------------------------------------------------------ hashing */

/* SHA-256(0x00 || data[0..len)). data may be NULL when len is 0. */
void merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[MERKLE_HASH_BYTES]);
/* SHA-256(0x01 || left || right). out may alias left or right. */
void merkle_node_hash(const uint8_t left[MERKLE_HASH_BYTES], const uint8_t right[MERKLE_HASH_BYTES],
                      uint8_t out[MERKLE_HASH_BYTES]);
/* SHA-256(0x01 || left || right) over children of any length. Only the
 * hasher's known-answer tests need it (their children are not hashes);
 * everything else uses merkle_node_hash. */
void merkle_node_hash_bytes(const uint8_t *left, size_t left_len, const uint8_t *right,
                            size_t right_len, uint8_t out[MERKLE_HASH_BYTES]);
/* The root of the empty tree: SHA-256 of the empty string. */
void merkle_empty_root(uint8_t out[MERKLE_HASH_BYTES]);

/* ------------------------------------------------------------------ builder */

/* The compact range of a log prefix: for each set bit L of size, the hash of
 * the perfect subtree of level L that the prefix ends with (hash[L]; slots of
 * clear bits hold nothing meaningful). 2 KiB, plain data: copy it freely. */
struct merkle_stack {
    uint64_t size;
    uint8_t hash[MERKLE_STACK_LEVELS][MERKLE_HASH_BYTES];
};

/* Told about a perfect subtree that has just been completed: first the leaf
 * itself (level 0, index = its leaf index), then each subtree it closes,
 * lowest level first. The subtree (level, index) covers leaves
 * [index * 2^level, (index + 1) * 2^level). hash is borrowed for the call.
 * Returns 0, or a casenet_err that aborts the push. */
typedef int (*merkle_on_complete)(void *ctx, unsigned level, uint64_t index,
                                  const uint8_t hash[MERKLE_HASH_BYTES]);

/* Makes s the empty log. */
void merkle_stack_init(struct merkle_stack *s);
/* Appends one leaf, given by its leaf hash (merkle_leaf_hash of the event
 * bytes). on_complete (may be NULL) is called for each newly completed
 * perfect subtree, as described above. If it fails, its error is returned and
 * s is left unchanged (the callback may already have seen some subtrees of
 * this leaf: store them in the same transaction as the leaf, so that a
 * rollback undoes them). CASENET_ETOOLARGE when s holds 2^64 - 1 leaves. */
CASENET_NODISCARD int merkle_stack_push(struct merkle_stack *s,
                                        const uint8_t leaf_hash[MERKLE_HASH_BYTES],
                                        merkle_on_complete on_complete, void *ctx);
/* The root of every leaf pushed so far (the empty-tree root for none). */
void merkle_stack_root(const struct merkle_stack *s, uint8_t out[MERKLE_HASH_BYTES]);
/* How many leaves were pushed. */
uint64_t merkle_stack_size(const struct merkle_stack *s);

/* ------------------------------------------------------------------ proofs */

/* A source of stored perfect subtrees: writes the hash of perfect subtree
 * (level, index) to out and returns 0, or returns a casenet_err
 * (CASENET_ENOTFOUND when it is not stored, CASENET_EIO ...), which the
 * caller passes on unchanged. Only subtrees that lie wholly inside the size
 * asked about are requested. */
typedef int (*merkle_get_node)(void *ctx, unsigned level, uint64_t index,
                               uint8_t out[MERKLE_HASH_BYTES]);

/* Rebuilds s as the log of the first size leaves from stored subtrees (the
 * broker's start-up), with popcount(size) <= 64 reads. s is written only on
 * success. */
CASENET_NODISCARD int merkle_stack_load(struct merkle_stack *s, merkle_get_node get, void *ctx,
                                        uint64_t size);

/* The root of the first size leaves (the empty-tree root for 0), composed
 * from popcount(size) stored subtrees. out is written only on success. */
CASENET_NODISCARD int merkle_root_at(merkle_get_node get, void *ctx, uint64_t size,
                                     uint8_t out[MERKLE_HASH_BYTES]);

/* Number of hashes in the inclusion proof of leaf index in a tree of size
 * leaves (RFC 9162 §2.1.3.1); 0 when index >= size. */
size_t merkle_proof_len_inclusion(uint64_t index, uint64_t size);
/* Number of hashes in the consistency proof from size1 to size2 (RFC 9162
 * §2.1.4.1): 0 when size1 == size2; 0 when the sizes are impossible
 * (size1 == 0 or size1 > size2). */
size_t merkle_proof_len_consistency(uint64_t size1, uint64_t size2);

/* The inclusion proof PATH(index, D[0:size]) of RFC 9162 §2.1.3.1: the
 * sibling hashes from the leaf's level up to the root's children, so
 * proof[0] is the leaf's neighbour and proof[n-1] a child of the root.
 * Writes *n = merkle_proof_len_inclusion(index, size) hashes to proof.
 * CASENET_EINVAL when index >= size, CASENET_ETOOLARGE when cap < that
 * length, or get's error. *n and proof are meaningful only on success.
 *
 * Reads (get calls), with c = ceil(log2(size)): at most max(c, 2c - 2), so
 * at most 2c = 40 at a million leaves. Why: walking down from the root, the
 * siblings met while the leaf is in the right part are left halves, one
 * stored subtree each; the first time it is in a left half L (of height j),
 * the sibling is the right part of the current range, popcount of its size
 * <= j reads; below that everything is perfect, j more reads. With d levels
 * above L, d + j + 1 <= c, so d + 2j <= 2c - 2. */
CASENET_NODISCARD int merkle_inclusion_proof(merkle_get_node get, void *ctx, uint64_t index,
                                             uint64_t size, uint8_t (*proof)[MERKLE_HASH_BYTES],
                                             size_t cap, size_t *n);

/* The consistency proof PROOF(size1, D[0:size2]) = SUBPROOF(size1, D[0:size2],
 * true) of RFC 9162 §2.1.4.1, in its order (lowest subtree first, children of
 * the root last). Writes *n = merkle_proof_len_consistency(size1, size2);
 * empty when size1 == size2. CASENET_EINVAL when size1 == 0 or
 * size1 > size2, CASENET_ETOOLARGE when cap is too small, or get's error.
 * Reads, with c = ceil(log2(size2)): at most 2c - 1 (39 at a million),
 * by the argument above plus the one final subtree SUBPROOF emits. */
CASENET_NODISCARD int merkle_consistency_proof(merkle_get_node get, void *ctx, uint64_t size1,
                                               uint64_t size2, uint8_t (*proof)[MERKLE_HASH_BYTES],
                                               size_t cap, size_t *n);

/* ------------------------------------------------------------------ verification */

/* Verifies that leaf_hash is leaf index of the tree of size leaves whose root
 * is root, by RFC 9162 §2.1.3.2, after requiring exactly
 * merkle_proof_len_inclusion(index, size) proof hashes. 0 when it verifies;
 * CASENET_EINVAL when index >= size; CASENET_EBADSIG otherwise. */
CASENET_NODISCARD int merkle_verify_inclusion(const uint8_t leaf_hash[MERKLE_HASH_BYTES],
                                              uint64_t index, uint64_t size,
                                              const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t n,
                                              const uint8_t root[MERKLE_HASH_BYTES]);

/* Verifies that the tree of size2 leaves with root root2 extends the tree of
 * size1 leaves with root root1, by RFC 9162 §2.1.4.2, with the conventions of
 * the public test vectors, in this order: CASENET_EINVAL when size1 > size2
 * or size1 == 0 (even 0 -> 0: a proof from the empty tree proves nothing);
 * when size1 == size2, 0 only for an empty proof and root1 == root2; else
 * CASENET_EBADSIG unless the proof has exactly
 * merkle_proof_len_consistency(size1, size2) hashes and both roots recompute. */
CASENET_NODISCARD int merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                                const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t n,
                                                const uint8_t root1[MERKLE_HASH_BYTES],
                                                const uint8_t root2[MERKLE_HASH_BYTES]);

#endif /* CASENET_MERKLE_H */
