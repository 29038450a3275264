/* fuzz_merkle.c - libFuzzer harness: the audit log's proof verification
 * (merkle_verify_inclusion, merkle_verify_consistency), which reads proofs,
 * sizes and roots the broker sends.
 *
 * Input: op (1 B), a and b (8 B each, little-endian), two hashes (32 B each),
 * then proof hashes (32 B each, at most MERKLE_PROOF_MAX + 2 read).
 *   op bit 0: 0 = inclusion (leaf = first hash, index a, size b, root =
 *             second hash), 1 = consistency (sizes a, b, roots the hashes);
 *   op bit 1: instead, a tree of up to TREE_LEAVES leaves held in memory
 *             (sizes a and b reduced into range) gives a real proof, which
 *             must verify, and then must fail once the bit chosen by the
 *             first hash's first two bytes is flipped in the proof or roots.
 * Whatever the input, proof lengths stay within MERKLE_PROOF_MAX and the
 * verifiers answer only 0, CASENET_EINVAL or CASENET_EBADSIG. */
#include "merkle.h"
#include "merkle_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TREE_LEAVES 300
#define HEAD_BYTES  (1 + 8 + 8 + 2 * MERKLE_HASH_BYTES)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_merkle: %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct merkle_mem mem;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mm_init(&mem, 512);
    mm_append(&mem, TREE_LEAVES);
    return 0;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static bool answer_ok(int rc)
{
    return rc == CASENET_OK || rc == CASENET_EINVAL || rc == CASENET_EBADSIG;
}

/* Arbitrary sizes, hashes and proofs. */
static void raw(bool consistency, uint64_t a, uint64_t b, const uint8_t *h1, const uint8_t *h2,
                const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t n)
{
    if (consistency) {
        CHECK(merkle_proof_len_consistency(a, b) <= MERKLE_PROOF_MAX);
        CHECK(answer_ok(merkle_verify_consistency(a, b, proof, n, h1, h2)));
    } else {
        CHECK(merkle_proof_len_inclusion(a, b) <= MERKLE_PROOF_MAX);
        CHECK(answer_ok(merkle_verify_inclusion(h1, a, b, proof, n, h2)));
    }
}

/* Flips bit `flip` (taken modulo their total size) of the n proof hashes
 * followed by h1 and h2. */
static void flip_bit(uint8_t (*proof)[MERKLE_HASH_BYTES], size_t n, uint8_t *h1, uint8_t *h2,
                     unsigned flip)
{
    size_t byte = (flip / 8) % ((n + 2) * MERKLE_HASH_BYTES);
    uint8_t *p = byte < n * MERKLE_HASH_BYTES         ? &proof[0][0] + byte
                 : byte < (n + 1) * MERKLE_HASH_BYTES ? h1 + (byte - n * MERKLE_HASH_BYTES)
                                                      : h2 + (byte - (n + 1) * MERKLE_HASH_BYTES);
    *p ^= (uint8_t)(1u << (flip % 8));
}

/* A real proof from the in-memory tree must verify, and must not once one
 * bit of it (or of the leaf or roots) is flipped. */
static void real(bool consistency, uint64_t a, uint64_t b, unsigned flip)
{
    uint8_t proof[MERKLE_PROOF_MAX][MERKLE_HASH_BYTES], h1[MERKLE_HASH_BYTES],
        h2[MERKLE_HASH_BYTES];
    const uint8_t(*cproof)[MERKLE_HASH_BYTES] = (const uint8_t(*)[MERKLE_HASH_BYTES])proof;
    size_t n = 0;
    uint64_t size2 = b % TREE_LEAVES + 1;
    mm_reset(&mem, size2);
    CHECK(merkle_root_at(mm_get, &mem, size2, h2) == CASENET_OK);
    if (consistency) {
        uint64_t size1 = a % size2 + 1;
        CHECK(merkle_root_at(mm_get, &mem, size1, h1) == CASENET_OK);
        CHECK(merkle_consistency_proof(mm_get, &mem, size1, size2, proof, MERKLE_PROOF_MAX, &n) ==
              CASENET_OK);
        CHECK(!mem.out_of_range && n == merkle_proof_len_consistency(size1, size2));
        CHECK(merkle_verify_consistency(size1, size2, cproof, n, h1, h2) == CASENET_OK);
        flip_bit(proof, n, h1, h2, flip);
        CHECK(merkle_verify_consistency(size1, size2, cproof, n, h1, h2) == CASENET_EBADSIG);
    } else {
        uint64_t index = a % size2;
        mm_leaf(index, h1);
        CHECK(merkle_inclusion_proof(mm_get, &mem, index, size2, proof, MERKLE_PROOF_MAX, &n) ==
              CASENET_OK);
        CHECK(!mem.out_of_range && n == merkle_proof_len_inclusion(index, size2));
        CHECK(merkle_verify_inclusion(h1, index, size2, cproof, n, h2) == CASENET_OK);
        flip_bit(proof, n, h1, h2, flip);
        CHECK(merkle_verify_inclusion(h1, index, size2, cproof, n, h2) == CASENET_EBADSIG);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEAD_BYTES)
        return 0;
    uint8_t op = data[0];
    uint64_t a = le64(data + 1), b = le64(data + 9);
    const uint8_t *h1 = data + 17, *h2 = data + 17 + MERKLE_HASH_BYTES;
    if (op & 2) {
        real(op & 1, a, b, ((unsigned)h1[0] << 8) | h1[1]);
        return 0;
    }
    uint8_t proof[MERKLE_PROOF_MAX + 2][MERKLE_HASH_BYTES];
    size_t n = (size - HEAD_BYTES) / MERKLE_HASH_BYTES;
    if (n > MERKLE_PROOF_MAX + 2)
        n = MERKLE_PROOF_MAX + 2;
    memcpy(proof, data + HEAD_BYTES, n * MERKLE_HASH_BYTES);
    raw(op & 1, a, b, h1, h2, (const uint8_t(*)[MERKLE_HASH_BYTES])proof, n);
    return 0;
}
