/*
 * bench_audit.c - the audit log at scale, on the broker's real SQLite store
 * (store_open and store_audit_append: broker/store_audit.c over
 * store_sqlite*.c): fills N events (default
 * 1,000,000; SUBMITTED-like, two parties, 10,000 per transaction), then
 * times reopening the store (the compact range from popcount(N) subtrees),
 * inclusion and consistency proof generation from the stored subtrees at
 * size N, writing an export file of the whole log with a signed head every
 * 10,000 events, and `audit verify --file`'s verifier (auditv_verify_file)
 * over that file, in events per second. Not a test; run it by hand:
 *     build/tests/bench_audit [events] [proofs]
 * (the store and the export live in a temporary directory, removed at the
 * end).
 */
#include "auditlog.h"
#include "casenet.pb-c.h"
#include "checkpoint.h"
#include "merkle.h"
#include "store.h"
#include "testlib.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BENCH_BATCH       10000u
#define BENCH_HEAD_EVERY  10000u
#define BENCH_EXPORT_PAGE 10000u
#define BENCH_NETWORK     "vn.cop"
#define BENCH_BROKER      "vn.broker"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t lo, uint64_t hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + rng % (hi - lo + 1);
}

static void check(int rc, const char *what)
{
    if (rc != CASENET_OK) {
        fprintf(stderr, "bench_audit: %s: %s\n", what, casenet_strerror(rc));
        exit(1);
    }
}

static int node(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
    struct store *s = ctx;
    return store_audit_node_get(s, level, index, out);
}

/* Appends n SUBMITTED-like events. */
static void fill(struct store *s, uint64_t n)
{
    static const char *parties[2] = {"vn.hotline111", "vn.police.a05"};
    uint8_t mid[16], hash[32], buf[512];
    double t0 = now_s();
    for (uint64_t i = 0; i < n;) {
        check(store_begin(s), "begin");
        for (uint32_t k = 0; k < BENCH_BATCH && i < n; k++, i++) {
            Casenet__V1__AuditEvent e = CASENET__V1__AUDIT_EVENT__INIT;
            randombytes_buf(mid, sizeof mid);
            randombytes_buf(hash, sizeof hash);
            e.index = i;
            e.time_ms = 1764000000000 + (int64_t)i;
            e.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED;
            e.actor = (char *)parties[0];
            e.parties = (char **)parties;
            e.n_parties = 2;
            e.message_id.data = mid;
            e.message_id.len = sizeof mid;
            e.envelope_hash.data = hash;
            e.envelope_hash.len = sizeof hash;
            e.message_kind = CASENET__V1__KIND__KIND_REFERRAL;
            e.urgency = CASENET__V1__URGENCY__URGENCY_STANDARD;
            e.message_status = CASENET__V1__MESSAGE_STATUS__MESSAGE_STATUS_ACTUAL;
            e.directory_version = 7;
            e.size = 2048;
            size_t len = casenet__v1__audit_event__pack(&e, buf);
            check(store_audit_append(s, i, e.time_ms, (int)e.kind, parties, 2, buf, len),
                  "audit_append");
        }
        check(store_commit(s), "commit");
        if (i % 100000 == 0 || i == n)
            fprintf(stderr, "\r  filled %llu events (%.0f/s)", (unsigned long long)i,
                    (double)i / (now_s() - t0));
    }
    fprintf(stderr, "\n");
    printf("fill: %llu events in %.1f s (%.0f events/s, store ops, %u per transaction)\n",
           (unsigned long long)n, now_s() - t0, (double)n / (now_s() - t0), BENCH_BATCH);
}

/* Signs and stores a head every BENCH_HEAD_EVERY events and at n. */
static void sign_heads(struct store *s, const casenet_keys *k, const char *origin, uint64_t n)
{
    check(store_begin(s), "begin");
    for (uint64_t size = BENCH_HEAD_EVERY;; size += BENCH_HEAD_EVERY) {
        if (size > n)
            size = n;
        struct ckpt_head h = {.size = size, .time_ms = 1764000000000 + (int64_t)size};
        snprintf(h.origin, sizeof h.origin, "%s", origin);
        check(merkle_root_at(node, s, size, h.root), "root_at");
        struct store_head sh = {.size = size, .time_ms = h.time_ms};
        memcpy(sh.root, h.root, 32);
        check(ckpt_sign(k, &h, &sh.checkpoint), "ckpt_sign");
        check(store_head_save(s, &sh), "head_save");
        casenet_buf_free(&sh.checkpoint);
        if (size == n)
            break;
    }
    check(store_commit(s), "commit");
}

static void bench_proofs(struct store *s, uint64_t n, unsigned proofs)
{
    uint8_t proof[MERKLE_PROOF_MAX][32], root[32];
    size_t len = 0;
    check(merkle_root_at(node, s, n, root), "root_at");
    double t0 = now_s();
    for (unsigned i = 0; i < proofs; i++)
        check(merkle_inclusion_proof(node, s, rnd(0, n - 1), n, proof, MERKLE_PROOF_MAX, &len),
              "inclusion");
    double incl = (now_s() - t0) / proofs;
    t0 = now_s();
    for (unsigned i = 0; i < proofs; i++)
        check(merkle_consistency_proof(node, s, rnd(1, n), n, proof, MERKLE_PROOF_MAX, &len),
              "consistency");
    double cons = (now_s() - t0) / proofs;
    t0 = now_s();
    for (unsigned i = 0; i < proofs; i++)
        check(merkle_root_at(node, s, rnd(1, n), root), "root_at");
    double roots = (now_s() - t0) / proofs;
    printf("proofs at %llu events (from stored subtrees, random sizes/indices, %u each):\n"
           "  inclusion   %.1f us/proof\n  consistency %.1f us/proof\n  root_at     %.1f "
           "us/root\n",
           (unsigned long long)n, proofs, incl * 1e6, cons * 1e6, roots * 1e6);
}

static void write_export(struct store *s, const casenet_keys *k, uint64_t n, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    struct auditv_export_header hdr = {.from_index = 0};
    snprintf(hdr.network, sizeof hdr.network, "%s", BENCH_NETWORK);
    snprintf(hdr.broker_id, sizeof hdr.broker_id, "%s", BENCH_BROKER);
    const char *kid = NULL;
    memcpy(hdr.broker_sign_pk, casenet_keys_sign_pk(k, &kid), 32);
    check(auditv_export_write_header(f, &hdr), "header");
    double t0 = now_s();
    for (uint64_t from = 0; from < n;) {
        struct store_audit_row *rows = NULL;
        struct store_head *heads = NULL;
        size_t got = 0, nh = 0;
        check(store_audit_range(s, from, BENCH_EXPORT_PAGE, &rows, &got), "audit_range");
        check(store_head_list(s, from, from + got, (uint32_t)got, &heads, &nh), "head_list");
        size_t hi = 0;
        for (size_t i = 0; i < got; i++) {
            check(auditv_export_write_event(f, rows[i].event.data, rows[i].event.len), "event");
            while (hi < nh && heads[hi].size == from + i + 1) {
                check(auditv_export_write_checkpoint(f, heads[hi].checkpoint.data,
                                                     heads[hi].checkpoint.len),
                      "checkpoint");
                hi++;
            }
        }
        from += got;
        store_audit_rows_free(rows, got);
        store_heads_free(heads, nh);
    }
    if (fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    struct stat st;
    stat(path, &st);
    printf("export: %llu events, %.1f MB written in %.1f s (store pages of %u)\n",
           (unsigned long long)n, (double)st.st_size / 1e6, now_s() - t0, BENCH_EXPORT_PAGE);
}

static void verify_export(const casenet_keys *k, const char *origin, const char *path, uint64_t n)
{
    const char *kid = NULL;
    struct auditv_config cfg = {
        .origin = origin, .key_name = BENCH_BROKER, .sign_pk = casenet_keys_sign_pk(k, &kid)};
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    struct auditv_state st;
    struct auditv_failure fail;
    double t0 = now_s();
    int rc = auditv_verify_file(f, &cfg, NULL, &st, &fail);
    double dt = now_s() - t0;
    fclose(f);
    if (rc != CASENET_OK) {
        fprintf(stderr, "bench_audit: verify: %s\n", fail.reason);
        exit(1);
    }
    printf("verify: %llu events, %llu heads in %.2f s = %.0f events/s (auditv_verify_file, "
           "trusted head size %llu)\n",
           (unsigned long long)n,
           (unsigned long long)((n + BENCH_HEAD_EVERY - 1) / BENCH_HEAD_EVERY), dt, (double)n / dt,
           (unsigned long long)st.size);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    unsigned proofs = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 10000;
    if (n == 0 || proofs == 0 || casenet_init() != CASENET_OK)
        return 2;
    char *dir = tl_tmpdir();
    char *export_path = tl_path(dir, "audit.export");
    casenet_keys *k = NULL;
    check(casenet_keys_generate(BENCH_BROKER, 1764000000000, &k), "keygen");
    char origin[CKPT_ORIGIN_MAX + 1];
    check(ckpt_origin(BENCH_NETWORK, origin), "origin");

    struct store *s = NULL;
    check(store_open(dir, &s), "open");
    fill(s, n);
    sign_heads(s, k, origin, n);
    store_close(s);
    double t0 = now_s();
    check(store_open(dir, &s), "reopen");
    printf("reopen: %.1f ms (compact range from %d stored subtrees)\n", (now_s() - t0) * 1e3,
           __builtin_popcountll(n));
    bench_proofs(s, n, proofs);
    write_export(s, k, n, export_path);
    store_close(s);
    verify_export(k, origin, export_path, n);

    casenet_keys_free(k);
    tl_rmrf(dir);
    free(export_path);
    free(dir);
    return 0;
}
