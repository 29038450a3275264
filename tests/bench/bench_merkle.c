/*
 * bench_merkle.c - times the audit log's Merkle tree on an in-memory store:
 * appending N leaves (default 1,000,000), then inclusion and consistency
 * proof generation and verification. Not a test; run it by hand:
 *     build/tests/bench_merkle [leaves] [proofs]
 */
#include "merkle.h"
#include "merkle_mem.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(uint64_t lo, uint64_t hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + rng % (hi - lo + 1);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_merkle: %s\n", what);
    exit(1);
}

int main(int argc, char **argv)
{
    uint64_t leaves = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000u;
    size_t proofs = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 100000u;
    if (leaves < 2 || proofs == 0 || sodium_init() < 0)
        die("usage: bench_merkle [leaves >= 2] [proofs >= 1]");

    struct merkle_mem *m = calloc(1, sizeof *m);
    if (!m)
        die("out of memory");
    mm_init(m, leaves);
    uint64_t *a = malloc(proofs * sizeof *a), *b = malloc(proofs * sizeof *b);
    uint8_t(*pr)[MERKLE_PROOF_MAX][MERKLE_HASH_BYTES] = malloc(proofs * sizeof *pr);
    size_t *len = malloc(proofs * sizeof *len);
    uint8_t(*r1)[MERKLE_HASH_BYTES] = malloc(proofs * sizeof *r1);
    uint8_t(*lh)[MERKLE_HASH_BYTES] = malloc(proofs * sizeof *lh);
    if (!a || !b || !pr || !len || !r1 || !lh)
        die("out of memory");

    double t0 = now_s();
    mm_append(m, leaves);
    double t_build = now_s() - t0;
    uint8_t root[MERKLE_HASH_BYTES];
    merkle_stack_root(&m->stack, root);

    /* Inclusion: generate, then verify, for random leaves. */
    for (size_t i = 0; i < proofs; i++) {
        a[i] = rnd(0, leaves - 1);
        mm_leaf(a[i], lh[i]);
    }
    mm_reset(m, leaves);
    t0 = now_s();
    for (size_t i = 0; i < proofs; i++) {
        if (merkle_inclusion_proof(mm_get, m, a[i], leaves, pr[i], MERKLE_PROOF_MAX, &len[i]))
            die("inclusion proof failed");
    }
    double t_inc_gen = now_s() - t0;
    uint64_t inc_reads = m->reads;
    t0 = now_s();
    for (size_t i = 0; i < proofs; i++) {
        if (merkle_verify_inclusion(lh[i], a[i], leaves, (const uint8_t(*)[MERKLE_HASH_BYTES])pr[i],
                                    len[i], root))
            die("inclusion proof does not verify");
    }
    double t_inc_ver = now_s() - t0;

    /* Consistency: from a random size1 to the whole tree. */
    mm_reset(m, leaves);
    for (size_t i = 0; i < proofs; i++) {
        a[i] = rnd(1, leaves - 1);
        if (merkle_root_at(mm_get, m, a[i], r1[i]))
            die("root failed");
    }
    mm_reset(m, leaves);
    t0 = now_s();
    for (size_t i = 0; i < proofs; i++) {
        if (merkle_consistency_proof(mm_get, m, a[i], leaves, pr[i], MERKLE_PROOF_MAX, &len[i]))
            die("consistency proof failed");
    }
    double t_con_gen = now_s() - t0;
    uint64_t con_reads = m->reads;
    t0 = now_s();
    for (size_t i = 0; i < proofs; i++) {
        if (merkle_verify_consistency(a[i], leaves, (const uint8_t(*)[MERKLE_HASH_BYTES])pr[i],
                                      len[i], r1[i], root))
            die("consistency proof does not verify");
    }
    double t_con_ver = now_s() - t0;

    /* Root of a random earlier size (what a signed tree head needs). */
    mm_reset(m, leaves);
    t0 = now_s();
    for (size_t i = 0; i < proofs; i++) {
        if (merkle_root_at(mm_get, m, rnd(1, leaves), r1[i]))
            die("root failed");
    }
    double t_root = now_s() - t0;

    double n = (double)proofs;
    printf("leaves %llu, proofs %zu (in-memory store)\n", (unsigned long long)leaves, proofs);
    printf("append (leaf hash + push + store): %.3f s, %.2f us/leaf\n", t_build,
           t_build * 1e6 / (double)leaves);
    printf("inclusion   generate %.2f us/proof (%.2f reads/proof), verify %.2f us/proof\n",
           t_inc_gen * 1e6 / n, (double)inc_reads / n, t_inc_ver * 1e6 / n);
    printf("consistency generate %.2f us/proof (%.2f reads/proof), verify %.2f us/proof\n",
           t_con_gen * 1e6 / n, (double)con_reads / n, t_con_ver * 1e6 / n);
    printf("root_at     %.2f us/root\n", t_root * 1e6 / n);

    free(a);
    free(b);
    free(pr);
    free(len);
    free(r1);
    free(lh);
    mm_free(m);
    free(m);
    return 0;
}
