/*
 * bench_hashbank.c - times the local hash bank (clients/hashbank.c) at
 * scale: N sha256 entries (default 1,000,000) sent as HASH_SHARE payloads
 * of 20,000 items, each checked (casenet_payload_check) and applied to a
 * bank file; then L exact lookups (default 1,000,000, half of them hits)
 * and the bank's size on disk. With "pdq" the entries are PDQ hashes: the
 * bank's pdq index is loaded (timed) and the lookups are Hamming-distance
 * matches within 31, half of them near an entry (distance 1..31), half
 * random. Not a test; run it by hand:
 *     build/tests/bench_hashbank [entries] [lookups] [sha256|pdq]
 */
#include "casenet.pb-c.h"
#include "hashbank.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BATCH 20000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The i-th value: 64 hex digits, distinct for each i (and odd i + N misses). */
static void value(uint64_t i, char out[65])
{
    uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;
    for (int k = 0; k < 4; k++) {
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ull;
        snprintf(out + 16 * k, 17, "%016llx", (unsigned long long)(x ^ i));
    }
}

/* Payload of entries [from, from + n): packed into *out (malloc'd). */
static int type = CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_SHA256;

static size_t build(uint64_t from, size_t n, uint8_t **out)
{
    Casenet__V1__HashSignal *sig = calloc(n, sizeof *sig);
    Casenet__V1__HashEntry *ent = calloc(n, sizeof *ent), **pe = calloc(n, sizeof *pe);
    char(*vals)[65] = calloc(n, sizeof *vals);
    if (!sig || !ent || !pe || !vals)
        abort();
    for (size_t i = 0; i < n; i++) {
        value(from + i, vals[i]);
        casenet__v1__hash_signal__init(&sig[i]);
        sig[i].signal_type = (Casenet__V1__HashSignalType)type;
        sig[i].value = vals[i];
        casenet__v1__hash_entry__init(&ent[i]);
        ent[i].signal = &sig[i];
        ent[i].category = CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_BASELINE;
        ent[i].first_seen_ms = 1;
        pe[i] = &ent[i];
    }
    Casenet__V1__HashShare hs = CASENET__V1__HASH_SHARE__INIT;
    hs.n_entries = n;
    hs.entries = pe;
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    p.body_case = CASENET__V1__PAYLOAD__BODY_HASH_SHARE;
    p.hash_share = &hs;
    *out = malloc(casenet__v1__payload__get_packed_size(&p));
    if (!*out)
        abort();
    size_t len = casenet__v1__payload__pack(&p, *out);
    free(sig), free(ent), free(pe), free(vals);
    return len;
}

static void exact_lookups(hashbank *b, uint64_t entries, uint64_t lookups)
{
    double t0 = now_s();
    uint64_t hits = 0;
    for (uint64_t i = 0; i < lookups; i++) {
        char v[65];
        value(i % 2 ? (i * 7919) % entries : entries + i, v);
        size_t n = 0;
        if (hashbank_lookup(b, "sha256", v, &n) != CASENET_OK)
            exit(1);
        hits += n;
    }
    double dt = now_s() - t0;
    printf("lookup: %llu exact lookups (%llu hits) in %.2f s: %.0f lookups/s\n",
           (unsigned long long)lookups, (unsigned long long)hits, dt, (double)lookups / dt);
}

static void pdq_lookups(hashbank *b, uint64_t entries, uint64_t lookups)
{
    double t0 = now_s();
    hashbank_pdq_index *ix = NULL;
    if (hashbank_pdq_load(b, 50, &ix) != CASENET_OK)
        exit(1);
    printf("pdq index: %llu entries loaded and indexed in %.2f s\n", (unsigned long long)entries,
           now_s() - t0);
    t0 = now_s();
    uint64_t hits = 0;
    struct hashbank_pdq_hit h[4];
    for (uint64_t i = 0; i < lookups; i++) {
        char v[65];
        uint64_t q[4];
        value(i % 2 ? (i * 7919) % entries : entries + i, v);
        if (hashbank_pdq_parse(v, q) != CASENET_OK)
            exit(1);
        if (i % 2) /* near: flip 1..31 bits spread over the hash */
            for (unsigned f = 0; f < 1 + i % 31; f++)
                q[(f * 97 % 256) / 64] ^= 1ull << (f * 97 % 64);
        hits += hashbank_pdq_match(ix, q, 31, h, 4) > 0;
    }
    double dt = now_s() - t0;
    printf("lookup: %llu pdq matches within 31 (%llu found) in %.2f s: %.0f lookups/s\n",
           (unsigned long long)lookups, (unsigned long long)hits, dt, (double)lookups / dt);
    hashbank_pdq_free(ix);
}

static int count_source(const struct hashbank_source *s, void *ctx)
{
    *(uint64_t *)ctx += s->live_total;
    return CASENET_OK;
}

/* The figures `casenet hashes stats` and the console's bank page read. */
static void stats_time(hashbank *b)
{
    struct hashbank_stats s;
    uint64_t live = 0;
    double t0 = now_s();
    if (hashbank_stats(b, &s) != CASENET_OK || hashbank_each_source(b, count_source, &live))
        exit(1);
    printf("stats: totals and per source (%llu live) in %.4f s\n", (unsigned long long)live,
           now_s() - t0);
}

int main(int argc, char **argv)
{
    uint64_t entries = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    uint64_t lookups = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
    if (argc > 3 && strcmp(argv[3], "pdq") == 0)
        type = CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_PDQ;
    char *dir = tl_tmpdir(), path[4096];
    snprintf(path, sizeof path, "%s/bank.sqlite", dir);
    hashbank *b = NULL;
    if (casenet_init() != CASENET_OK || hashbank_open(path, &b) != CASENET_OK)
        return 1;
    double check = 0, apply = 0;
    for (uint64_t at = 0; at < entries; at += BATCH) {
        size_t n = entries - at < BATCH ? (size_t)(entries - at) : BATCH;
        uint8_t *payload = NULL, id[CASENET_MESSAGE_ID_BYTES] = {0};
        size_t len = build(at, n, &payload);
        memcpy(id, &at, sizeof at);
        double t0 = now_s();
        if (casenet_payload_check(payload, len, CASENET_KIND_HASH_SHARE, 0, NULL, 0) != CASENET_OK)
            return 1;
        double t1 = now_s();
        struct hashbank_result r;
        if (hashbank_apply(b, id, "vn.hotline111", (int64_t)at + 1, payload, len, &r) !=
                CASENET_OK ||
            r.added != n)
            return 1;
        check += t1 - t0;
        apply += now_s() - t1;
        free(payload);
    }
    printf("import: %llu entries in %.2f s (checks %.2f s, applying %.2f s): %.0f entries/s\n",
           (unsigned long long)entries, check + apply, check, apply,
           (double)entries / (check + apply));
    stats_time(b);
    if (type == CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_PDQ)
        pdq_lookups(b, entries, lookups);
    else
        exact_lookups(b, entries, lookups);
    hashbank_free(b);
    struct stat st;
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", path);
    off_t size = stat(path, &st) == 0 ? st.st_size : 0;
    off_t wsize = stat(wal, &st) == 0 ? st.st_size : 0;
    printf("size on disk: %.1f MB (%.0f bytes/entry)\n", (double)(size + wsize) / 1e6,
           (double)(size + wsize) / (double)entries);
    tl_rmrf(dir);
    free(dir);
    return 0;
}
