/* hashbank_pdq.c - PDQ matching by Hamming distance over a bank's live pdq
 * entries (see hashbank.h), with multi-index hashing: the 256 bits are cut
 * into 16 chunks of 16 bits, each chunk indexed. Two hashes within distance
 * d <= 31 agree within distance d / 16 <= 1 on at least one chunk
 * (pigeonhole), so a query probes each chunk's value and, for d >= 16, its
 * 16 one-bit neighbours, and checks only the entries found there. Each
 * chunk's buckets hold, next to the entry's id, two other words of its hash,
 * a filter read in sequence that rejects nearly every random candidate
 * without touching the hash itself; a hash is counted at the first chunk
 * that finds it (no per-query marks). A query prefetches all its buckets
 * before reading any. About 20 bytes per entry and chunk:
 * 320 MB for a million hashes. */
#include "hashbank.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CHUNKS  16
#define BUCKETS 65536u

/* A bucket entry of chunk k (in word w = k / 4): words w + 1 and w + 2. */
struct filter {
    uint64_t a, b;
};

struct hashbank_pdq_index {
    size_t n, cap;
    uint64_t (*bits)[4];
    uint32_t *offsets[CHUNKS]; /* BUCKETS + 1 each, after hashbank_pdq_build */
    uint32_t *ids[CHUNKS];
    struct filter *filters[CHUNKS];
};

int hashbank_pdq_parse(const char *hex, uint64_t out[4])
{
    if (strlen(hex) != 64)
        return CASENET_EINVAL;
    for (int w = 0; w < 4; w++) {
        uint64_t v = 0;
        for (int i = 0; i < 16; i++) {
            char c = hex[16 * w + i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return CASENET_EINVAL;
            v = v << 4 | (uint64_t)d;
        }
        out[w] = v;
    }
    return CASENET_OK;
}

int hashbank_pdq_new(hashbank_pdq_index **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? CASENET_OK : CASENET_ENOMEM;
}

int hashbank_pdq_add(hashbank_pdq_index *ix, const uint64_t bits[4])
{
    if (ix->offsets[0] || ix->n == UINT32_MAX)
        return CASENET_EINVAL; /* built already, or full */
    if (ix->n == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 1024;
        uint64_t(*grown)[4] = realloc(ix->bits, cap * sizeof *grown);
        if (!grown)
            return CASENET_ENOMEM;
        ix->bits = grown, ix->cap = cap;
    }
    memcpy(ix->bits[ix->n++], bits, sizeof ix->bits[0]);
    return CASENET_OK;
}

static unsigned chunk(const uint64_t bits[4], int k)
{
    return (unsigned)(bits[k / 4] >> (16 * (k % 4))) & 0xffffu;
}

int hashbank_pdq_build(hashbank_pdq_index *ix)
{
    for (int k = 0; k < CHUNKS; k++) {
        uint32_t *off = calloc(BUCKETS + 1, sizeof *off);
        uint32_t *ids = malloc((ix->n ? ix->n : 1) * sizeof *ids);
        struct filter *f = malloc((ix->n ? ix->n : 1) * sizeof *f);
        ix->offsets[k] = off, ix->ids[k] = ids, ix->filters[k] = f;
        if (!off || !ids || !f)
            return CASENET_ENOMEM;
        for (size_t i = 0; i < ix->n; i++)
            off[chunk(ix->bits[i], k) + 1]++;
        for (unsigned b = 0; b < BUCKETS; b++)
            off[b + 1] += off[b];
        uint32_t *fill = malloc(BUCKETS * sizeof *fill);
        if (!fill)
            return CASENET_ENOMEM;
        memcpy(fill, off, BUCKETS * sizeof *fill);
        int w = k / 4;
        for (size_t i = 0; i < ix->n; i++) {
            uint32_t at = fill[chunk(ix->bits[i], k)]++;
            ids[at] = (uint32_t)i;
            f[at] = (struct filter){ix->bits[i][(w + 1) % 4], ix->bits[i][(w + 2) % 4]};
        }
        free(fill);
    }
    return CASENET_OK;
}

/* The matcher's inner loops are popcounts: on x86-64 the query is compiled
 * twice, with the popcnt instruction and without (the baseline lacks it),
 * and the loader picks one for the CPU (GCC's target_clones); with the
 * instruction it runs several times faster. The helpers are inlined into
 * each clone. Clang 14 leaves the clones' resolver undefined for a function
 * with external linkage, so its builds (the sanitizer and fuzz builds) keep
 * the one baseline version. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define POPCNT_CLONES
#endif
#define INLINE static inline __attribute__((always_inline))

INLINE unsigned distance(const uint64_t a[4], const uint64_t b[4])
{
    return (unsigned)(__builtin_popcountll(a[0] ^ b[0]) + __builtin_popcountll(a[1] ^ b[1]) +
                      __builtin_popcountll(a[2] ^ b[2]) + __builtin_popcountll(a[3] ^ b[3]));
}

/* True when chunk k' < k of c is within radius of q's: an earlier chunk
 * found c already. */
INLINE bool found_before(const uint64_t c[4], const uint64_t q[4], int k, unsigned radius)
{
    for (int j = 0; j < k; j++) {
        if ((unsigned)__builtin_popcount(chunk(c, j) ^ chunk(q, j)) <= radius)
            return true;
    }
    return false;
}

/* Checks the entries [from, to) of chunk k's buckets. */
INLINE void scan(const hashbank_pdq_index *ix, int k, uint32_t from, uint32_t to,
                 const uint64_t q[4], unsigned max, unsigned radius, struct hashbank_pdq_hit *hits,
                 size_t max_hits, size_t *n)
{
    int w = k / 4;
    uint64_t qa = q[(w + 1) % 4], qb = q[(w + 2) % 4];
    const struct filter *f = ix->filters[k];
    for (uint32_t j = from; j < to; j++) {
        if ((unsigned)(__builtin_popcountll(f[j].a ^ qa) + __builtin_popcountll(f[j].b ^ qb)) > max)
            continue;
        const uint64_t *c = ix->bits[ix->ids[k][j]];
        unsigned d = distance(c, q);
        if (d > max || found_before(c, q, k, radius))
            continue;
        if (*n < max_hits) {
            memcpy(hits[*n].bits, c, sizeof hits[*n].bits);
            hits[*n].distance = d;
        }
        (*n)++;
    }
}

/* The 16 x 17 buckets a query probes are random reads in a few hundred MB:
 * all of them are requested (prefetched) before any is read, so that the
 * memory serves them in parallel rather than one miss after another. */
#define PROBES 17

POPCNT_CLONES
size_t hashbank_pdq_match(const hashbank_pdq_index *ix, const uint64_t q[4], unsigned max_distance,
                          struct hashbank_pdq_hit *hits, size_t max_hits)
{
    if (!ix->offsets[CHUNKS - 1] || max_distance > HASHBANK_PDQ_MAX_DISTANCE)
        return 0;
    unsigned radius = max_distance / CHUNKS; /* 0 or 1 */
    int probes = radius ? PROBES : 1;
    unsigned v[CHUNKS][PROBES];
    uint32_t from[CHUNKS][PROBES], to[CHUNKS][PROBES];
    for (int k = 0; k < CHUNKS; k++) {
        for (int p = 0; p < probes; p++) {
            v[k][p] = chunk(q, k) ^ (p ? 1u << (p - 1) : 0);
            __builtin_prefetch(&ix->offsets[k][v[k][p]]);
        }
    }
    for (int k = 0; k < CHUNKS; k++) {
        for (int p = 0; p < probes; p++) {
            from[k][p] = ix->offsets[k][v[k][p]], to[k][p] = ix->offsets[k][v[k][p] + 1];
            __builtin_prefetch(&ix->filters[k][from[k][p]]);
            __builtin_prefetch((const char *)&ix->filters[k][from[k][p]] + 64);
        }
    }
    size_t n = 0;
    for (int k = 0; k < CHUNKS; k++) {
        for (int p = 0; p < probes; p++)
            scan(ix, k, from[k][p], to[k][p], q, max_distance, radius, hits, max_hits, &n);
    }
    return n;
}

void hashbank_pdq_free(hashbank_pdq_index *ix)
{
    if (!ix)
        return;
    for (int k = 0; k < CHUNKS; k++) {
        free(ix->offsets[k]);
        free(ix->ids[k]);
        free(ix->filters[k]);
    }
    free(ix->bits);
    free(ix);
}

/* Adds each live pdq entry of quality 0 (not stated) or >= min_quality. */
struct loader {
    hashbank_pdq_index *ix;
    unsigned min_quality;
};

static int load_one(const struct hashbank_entry *e, void *ctx)
{
    const struct loader *l = ctx;
    uint64_t bits[4];
    if (strcmp(e->signal_type, "pdq") != 0 || (e->pdq_quality && e->pdq_quality < l->min_quality))
        return CASENET_OK;
    if (hashbank_pdq_parse(e->value, bits) != CASENET_OK)
        return CASENET_OK; /* cannot be: the rules checked it */
    return hashbank_pdq_add(l->ix, bits);
}

int hashbank_pdq_load(hashbank *b, unsigned min_quality, hashbank_pdq_index **out)
{
    int rc = hashbank_pdq_new(out);
    struct loader l = {*out, min_quality};
    if (rc == CASENET_OK)
        rc = hashbank_each(b, 0, load_one, &l);
    if (rc == CASENET_OK)
        rc = hashbank_pdq_build(*out);
    if (rc != CASENET_OK) {
        hashbank_pdq_free(*out);
        *out = NULL;
    }
    return rc;
}
