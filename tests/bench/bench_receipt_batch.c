/*
 * bench_receipt_batch.c - issue 20 item 3, as a measurement only: what the
 * broker spends per Submit receipt today (one Ed25519 signature over each
 * receipt's PAE) against one signature per batch over the Merkle root of the
 * batch's receipts (RFC 9162 leaf and node hashes, each member then getting
 * its receipt plus a path of log2(batch) hashes), for batch sizes 1 to 256,
 * and what a client pays to check either. Real receipts, built by the
 * broker's own code (cn_submit_receipt_build). No protocol change. Built
 * with the tests, not registered with ctest:
 *     build/tests/bench_receipt_batch [seconds per size, default 0.3]
 */
#include "keys_impl.h"
#include "merkle.h"
#include "receipt_impl.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BATCH 256
#define MAX_LEVEL 9 /* levels above the leaves for MAX_BATCH */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_receipt_batch: %s\n", what);
    exit(1);
}

/* The tree over n leaf hashes, bottom-up: a lone last node moves up
 * unchanged, which gives RFC 9162's tree for any n. level[0] holds the
 * leaves; returns the number of levels (the root alone in the last). */
static size_t build_tree(uint8_t (*level[MAX_LEVEL + 1])[MERKLE_HASH_BYTES], size_t n)
{
    size_t l = 0;
    while (n > 1) {
        for (size_t i = 0; i + 1 < n; i += 2)
            merkle_node_hash(level[l][i], level[l][i + 1], level[l + 1][i / 2]);
        if (n % 2)
            memcpy(level[l + 1][n / 2], level[l][n - 1], MERKLE_HASH_BYTES);
        n = (n + 1) / 2;
        l++;
    }
    return l + 1;
}

/* The inclusion path of leaf i (a copy of its siblings). Returns its length. */
static size_t path_of(uint8_t (*level[MAX_LEVEL + 1])[MERKLE_HASH_BYTES], size_t n, size_t i,
                      uint8_t path[MAX_LEVEL][MERKLE_HASH_BYTES])
{
    size_t len = 0;
    for (size_t l = 0; n > 1; l++) {
        size_t sib = i ^ 1;
        if (sib < n)
            memcpy(path[len++], level[l][sib], MERKLE_HASH_BYTES);
        i /= 2;
        n = (n + 1) / 2;
    }
    return len;
}

/* A client's check of a batched receipt: leaf hash, path up to the root
 * (index tells left from right), then the one signature over the root. */
static int verify_batched(const uint8_t *pae, size_t pae_len, size_t i, size_t n,
                          uint8_t path[MAX_LEVEL][MERKLE_HASH_BYTES], size_t len,
                          const uint8_t sig[crypto_sign_BYTES], const uint8_t *pk)
{
    uint8_t h[MERKLE_HASH_BYTES];
    merkle_leaf_hash(pae, pae_len, h);
    size_t k = 0;
    while (n > 1) {
        size_t sib = i ^ 1;
        if (sib < n) {
            if (k >= len)
                return -1;
            if (i & 1)
                merkle_node_hash(path[k], h, h);
            else
                merkle_node_hash(h, path[k], h);
            k++;
        }
        i /= 2;
        n = (n + 1) / 2;
    }
    return crypto_sign_verify_detached(sig, h, sizeof h, pk);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? strtod(argv[1], NULL) : 0.3;
    if (!(secs > 0) || casenet_init() != CASENET_OK)
        die("usage: bench_receipt_batch [seconds per size > 0]");
    casenet_keys *keys = NULL;
    if (casenet_keys_generate("bench.broker", 1700000000000LL, &keys) != CASENET_OK)
        die("keys_generate failed");
    const uint8_t *sk = cn_keys_sign_sk(keys, NULL);
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_ed25519_sk_to_pk(pk, sk);

    casenet_buf pae[MAX_BATCH], receipt[MAX_BATCH];
    for (size_t i = 0; i < MAX_BATCH; i++) {
        casenet_submit_receipt r = {.accepted_at_ms = 1700000000000LL + (int64_t)i,
                                    .audit_index = 1000000 + i};
        randombytes_buf(r.message_id, sizeof r.message_id);
        randombytes_buf(r.envelope_hash, sizeof r.envelope_hash);
        snprintf(r.broker_id, sizeof r.broker_id, "bench.broker");
        if (cn_submit_receipt_build(keys, &r, &receipt[i], &pae[i]) != CASENET_OK)
            die("receipt_build failed");
    }
    static uint8_t tree_mem[MAX_LEVEL + 1][MAX_BATCH][MERKLE_HASH_BYTES];
    uint8_t(*level[MAX_LEVEL + 1])[MERKLE_HASH_BYTES];
    for (size_t l = 0; l <= MAX_LEVEL; l++)
        level[l] = tree_mem[l];
    uint8_t sig[crypto_sign_BYTES], root_sig[crypto_sign_BYTES];
    uint8_t path[MAX_LEVEL][MERKLE_HASH_BYTES];

    printf("receipt PAE %zu bytes, packed receipt %zu bytes; microseconds per receipt:\n",
           pae[0].len, receipt[0].len);
    printf("%6s %14s %14s %8s | %14s %14s\n", "batch", "sign each", "root + paths", "ratio",
           "verify each", "verify path");
    for (size_t n = 1; n <= MAX_BATCH; n *= 2) {
        /* Today: one signature per receipt. */
        size_t iters = 0;
        double t0 = now_s(), t;
        do {
            for (size_t i = 0; i < n; i++)
                cn_submit_receipt_sign_pae(sk, pae[i].data, pae[i].len, sig);
            iters++;
            t = now_s();
        } while (t - t0 < secs);
        double each_us = (t - t0) * 1e6 / (double)(iters * n);

        /* Batched: leaf hashes, the tree, one signature, every path. */
        iters = 0;
        t0 = now_s();
        do {
            for (size_t i = 0; i < n; i++)
                merkle_leaf_hash(pae[i].data, pae[i].len, level[0][i]);
            size_t levels = build_tree(level, n);
            crypto_sign_detached(root_sig, NULL, level[levels - 1][0], MERKLE_HASH_BYTES, sk);
            for (size_t i = 0; i < n; i++)
                (void)path_of(level, n, i, path);
            iters++;
            t = now_s();
        } while (t - t0 < secs);
        double batch_us = (t - t0) * 1e6 / (double)(iters * n);

        /* The client's side: one verify, or a path and one verify. */
        crypto_sign_detached(sig, NULL, pae[0].data, pae[0].len, sk);
        iters = 0;
        t0 = now_s();
        do {
            if (crypto_sign_verify_detached(sig, pae[0].data, pae[0].len, pk) != 0)
                die("a receipt signature does not verify");
            iters++;
            t = now_s();
        } while (t - t0 < secs);
        double verify_us = (t - t0) * 1e6 / (double)iters;
        size_t last = n - 1, len = path_of(level, n, last, path);
        iters = 0;
        t0 = now_s();
        do {
            if (verify_batched(pae[last].data, pae[last].len, last, n, path, len, root_sig, pk))
                die("a batched receipt does not verify");
            iters++;
            t = now_s();
        } while (t - t0 < secs);
        double vpath_us = (t - t0) * 1e6 / (double)iters;
        printf("%6zu %14.2f %14.2f %8.2f | %14.2f %14.2f\n", n, each_us, batch_us,
               each_us / batch_us, verify_us, vpath_us);
    }
    for (size_t i = 0; i < MAX_BATCH; i++) {
        casenet_buf_free(&pae[i]);
        casenet_buf_free(&receipt[i]);
    }
    casenet_keys_free(keys);
    return 0;
}
