/*
 * test_merkle.c - the audit log's Merkle tree (common/merkle.c): the 196
 * public RFC 6962 / RFC 9162 probes, the reference roots and hasher known
 * answers, proofs of every (index, size) and every (size1, size2) up to 300
 * checked against the RFC's recursive definitions and the verifiers, and the
 * number of stored-subtree reads at a million leaves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casenet.h"
#include "merkle.h"
#include "merkle_mem.h"
#include "testlib.h"

#define HB MERKLE_HASH_BYTES

/* ------------------------------------------------------------------ helpers */

/* ceil(log2(n)) for n >= 1. */
static unsigned ceil_log2(uint64_t n)
{
    return n <= 1 ? 0 : 64u - (unsigned)__builtin_clzll(n - 1);
}

/* The read bounds merkle.h documents for proofs in a tree of n leaves. */
static uint64_t bound_inclusion(uint64_t n)
{
    uint64_t c = ceil_log2(n);
    return c < 2 ? c : 2 * c - 2;
}

static uint64_t bound_consistency(uint64_t n)
{
    uint64_t c = ceil_log2(n);
    return c == 0 ? 0 : 2 * c - 1;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Uniform-enough in [lo, hi]. */
static uint64_t rng_range(uint64_t lo, uint64_t hi)
{
    return lo + rng_next() % (hi - lo + 1);
}

static void unhex_exact(const char *hex, uint8_t *out, size_t len)
{
    assert_int_equal(tl_unhex(hex, out, len), (long)len);
}

/* ------------------------------------------------------------------ RFC reference */
/* The RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 definitions, recursively over
 * leaf hashes: slow, obviously right, used to check the production code. */

static void ref_mth(const uint8_t (*leaves)[HB], uint64_t n, uint8_t out[HB])
{
    if (n == 0) {
        merkle_empty_root(out);
        return;
    }
    if (n == 1) {
        memcpy(out, leaves[0], HB);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    uint8_t l[HB], r[HB];
    ref_mth(leaves, k, l);
    ref_mth(leaves + k, n - k, r);
    merkle_node_hash(l, r, out);
}

static void ref_path(uint64_t m, const uint8_t (*leaves)[HB], uint64_t n, uint8_t (*out)[HB],
                     size_t *len)
{
    if (n == 1)
        return;
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    if (m < k) {
        ref_path(m, leaves, k, out, len);
        ref_mth(leaves + k, n - k, out[(*len)++]);
    } else {
        ref_path(m - k, leaves + k, n - k, out, len);
        ref_mth(leaves, k, out[(*len)++]);
    }
}

static void ref_subproof(uint64_t m, const uint8_t (*leaves)[HB], uint64_t n, int whole,
                         uint8_t (*out)[HB], size_t *len)
{
    if (m == n) {
        if (!whole)
            ref_mth(leaves, n, out[(*len)++]);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    if (m <= k) {
        ref_subproof(m, leaves, k, whole, out, len);
        ref_mth(leaves + k, n - k, out[(*len)++]);
    } else {
        ref_subproof(m - k, leaves + k, n - k, 0, out, len);
        ref_mth(leaves, k, out[(*len)++]);
    }
}

/* ------------------------------------------------------------------ hasher and reference roots */

static void test_hasher_known_answers(void **state)
{
    (void)state;
    json_t *v = tl_load_vector("merkle-rfc6962/reference-roots.json");
    assert_non_null(v); /* the vectors must be present: fail, never skip */
    json_t *hv = json_object_get(v, "hasher_vectors");
    assert_int_equal(json_array_size(hv), 4);
    uint8_t want[HB], got[HB], a[64], b[64];

    unhex_exact(json_string_value(json_object_get(json_array_get(hv, 0), "expected")), want, HB);
    merkle_empty_root(got);
    assert_memory_equal(got, want, HB);

    for (size_t i = 1; i <= 2; i++) {
        json_t *t = json_array_get(hv, i);
        const char *leaf = json_string_value(json_object_get(t, "leaf_hex"));
        long n = tl_unhex(leaf, a, sizeof a);
        assert_true(n >= 0);
        unhex_exact(json_string_value(json_object_get(t, "expected")), want, HB);
        merkle_leaf_hash(n ? a : NULL, (size_t)n, got);
        assert_memory_equal(got, want, HB);
    }

    json_t *t = json_array_get(hv, 3);
    long nl = tl_unhex(json_string_value(json_object_get(t, "left_hex")), a, sizeof a);
    long nr = tl_unhex(json_string_value(json_object_get(t, "right_hex")), b, sizeof b);
    assert_true(nl == 4 && nr == 4);
    unhex_exact(json_string_value(json_object_get(t, "expected")), want, HB);
    merkle_node_hash_bytes(a, (size_t)nl, b, (size_t)nr, got);
    assert_memory_equal(got, want, HB);

    /* merkle_node_hash is the same function on 32-byte children, and may
     * write over its own input. */
    uint8_t l[HB], r[HB], h1[HB], h2[HB];
    merkle_leaf_hash(a, 4, l);
    merkle_leaf_hash(b, 4, r);
    merkle_node_hash_bytes(l, HB, r, HB, h1);
    merkle_node_hash(l, r, h2);
    assert_memory_equal(h1, h2, HB);
    merkle_node_hash(l, r, l);
    assert_memory_equal(l, h1, HB);
    json_decref(v);
}

static void test_reference_roots(void **state)
{
    (void)state;
    json_t *v = tl_load_vector("merkle-rfc6962/reference-roots.json");
    assert_non_null(v);
    json_t *leaves = json_object_get(v, "leaves_hex");
    json_t *roots = json_object_get(v, "roots");
    assert_int_equal(json_array_size(leaves), 8);
    assert_int_equal(json_array_size(roots), 8);

    struct merkle_mem m;
    mm_init(&m, 8);
    uint8_t got[HB], want[HB], data[64];
    merkle_stack_root(&m.stack, got);
    merkle_empty_root(want);
    assert_memory_equal(got, want, HB);
    CN_OK(merkle_root_at(mm_get, &m, 0, got));
    assert_memory_equal(got, want, HB);

    for (size_t i = 0; i < 8; i++) {
        long n = tl_unhex(json_string_value(json_array_get(leaves, i)), data, sizeof data);
        assert_true(n >= 0);
        uint8_t leaf[HB];
        merkle_leaf_hash(data, (size_t)n, leaf);
        mm_push(&m, leaf);
        json_t *r = json_array_get(roots, i);
        assert_int_equal(json_integer_value(json_object_get(r, "tree_size")), (json_int_t)(i + 1));
        unhex_exact(json_string_value(json_object_get(r, "root")), want, HB);

        assert_int_equal(merkle_stack_size(&m.stack), i + 1);
        merkle_stack_root(&m.stack, got);
        assert_memory_equal(got, want, HB);
        mm_reset(&m, i + 1);
        CN_OK(merkle_root_at(mm_get, &m, i + 1, got));
        assert_memory_equal(got, want, HB);
        assert_int_equal(m.reads, __builtin_popcountll(i + 1));

        struct merkle_stack s;
        CN_OK(merkle_stack_load(&s, mm_get, &m, i + 1));
        assert_int_equal(merkle_stack_size(&s), i + 1);
        merkle_stack_root(&s, got);
        assert_memory_equal(got, want, HB);
    }
    /* Every perfect subtree of 8 leaves was handed to the callback once. */
    assert_int_equal(m.stored[0], 8);
    assert_int_equal(m.stored[1], 4);
    assert_int_equal(m.stored[2], 2);
    assert_int_equal(m.stored[3], 1);
    assert_int_equal(m.stored[4], 0);
    mm_free(&m);
    json_decref(v);
}

/* ------------------------------------------------------------------ public probes */

/* Decodes a standard-base64 hash field. The verifiers take 32-byte arrays
 * (the wire parser refuses other lengths before they get there); a probe
 * field of another length ("garbage", "" or the 12-byte "don't care" roots)
 * is replaced by a stand-in: SHA-256 of a test-only prefix, the kind of field
 * (tag) and the given bytes. Two roots given equal get equal stand-ins and
 * different roots different ones, so the equal-sizes consistency rule
 * compares roots "as given" (README §1). Stand-ins of different kinds never
 * match (a 0-byte leaf and a 0-byte root are not "equal"), and no stand-in
 * equals a real hash, so anywhere else a hash that is not 32 bytes can never
 * verify, which is README's "reject hashes that are not 32 bytes".
 * *odd is set when a stand-in was made. */
static void decode_hash(json_t *field, const char *tag, uint8_t out[HB], bool *odd)
{
    const char *b64 = json_string_value(field);
    assert_non_null(b64);
    uint8_t raw[256];
    size_t len = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof raw, b64, strlen(b64), NULL, &len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    if (len == HB) {
        memcpy(out, raw, HB);
        return;
    }
    static const char prefix[] = "casenet test: not a 32-byte hash: ";
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)prefix, sizeof prefix - 1);
    crypto_hash_sha256_update(&st, (const uint8_t *)tag, strlen(tag) + 1);
    crypto_hash_sha256_update(&st, raw, len);
    crypto_hash_sha256_final(&st, out);
    *odd = true;
}

/* proof may be null or []; returns the count. */
static size_t decode_proof(json_t *field, uint8_t (*out)[HB], size_t cap, bool *odd)
{
    if (json_is_null(field))
        return 0;
    assert_true(json_is_array(field));
    size_t n = json_array_size(field);
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++)
        decode_hash(json_array_get(field, i), "proof", out[i], odd);
    return n;
}

static struct {
    size_t inclusion, consistency, accepted, rejected, odd;
} probes;

/* The probes' sizes and indices are u64 and some are 2^64 - 1 (index 0 minus
 * one, wrapped), beyond jansson's signed integers. So the file is parsed with
 * JSON_DECODE_INT_AS_REAL for its structure, and each u64 field is read from
 * the text: the key, a colon, then decimal digits up to a delimiter. */
static uint64_t u64_field(const char *text, json_t *o, const char *name)
{
    char key[32];
    snprintf(key, sizeof key, "\"%s\"", name);
    const char *at = strstr(text, key);
    assert_non_null(at);
    assert_null(strstr(at + 1, key)); /* exactly once */
    at += strlen(key);
    at += strspn(at, " \t\r\n");
    assert_true(*at == ':');
    at++;
    at += strspn(at, " \t\r\n");
    assert_true(*at >= '0' && *at <= '9');
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(at, &end, 10);
    assert_int_equal(errno, 0);
    assert_true(*end == ',' || *end == '}' || *end == ' ' || *end == '\n' || *end == '\r');
    /* Agrees with the parser where a double is exact. */
    json_t *f = json_object_get(o, name);
    assert_true(json_is_number(f));
    if (v < (1ull << 53))
        assert_true(json_number_value(f) == (double)v);
    return (uint64_t)v;
}

static void run_inclusion_probe(const char *text, json_t *v, const char *path)
{
    uint8_t leaf[HB], root[HB], proof[MERKLE_PROOF_MAX + 8][HB];
    bool odd = false;
    uint64_t idx = u64_field(text, v, "leafIdx"), size = u64_field(text, v, "treeSize");
    decode_hash(json_object_get(v, "leafHash"), "leaf", leaf, &odd);
    decode_hash(json_object_get(v, "root"), "root", root, &odd);
    size_t n = decode_proof(json_object_get(v, "proof"), proof, MERKLE_PROOF_MAX + 8, &odd);
    bool want_err = json_is_true(json_object_get(v, "wantErr"));
    int rc = merkle_verify_inclusion(leaf, idx, size, (const uint8_t(*)[HB])proof, n, root);
    if ((rc == CASENET_OK) == want_err)
        fail_msg("%s: verifier says %d, wantErr %d", path, rc, want_err);
    if (idx >= size)
        CN_ERR(rc, CASENET_EINVAL);
    else if (rc != CASENET_OK)
        CN_ERR(rc, CASENET_EBADSIG);
    /* README: an inclusion probe with a hash that is not 32 bytes is refused. */
    if (odd)
        assert_int_not_equal(rc, CASENET_OK);
    probes.inclusion++;
    probes.odd += odd;
    if (rc == CASENET_OK)
        probes.accepted++;
    else
        probes.rejected++;
}

static void run_consistency_probe(const char *text, json_t *v, const char *path)
{
    uint8_t root1[HB], root2[HB], proof[MERKLE_PROOF_MAX + 8][HB];
    bool odd = false;
    uint64_t size1 = u64_field(text, v, "size1"), size2 = u64_field(text, v, "size2");
    decode_hash(json_object_get(v, "root1"), "root", root1, &odd);
    decode_hash(json_object_get(v, "root2"), "root", root2, &odd);
    size_t n = decode_proof(json_object_get(v, "proof"), proof, MERKLE_PROOF_MAX + 8, &odd);
    bool want_err = json_is_true(json_object_get(v, "wantErr"));
    int rc = merkle_verify_consistency(size1, size2, (const uint8_t(*)[HB])proof, n, root1, root2);
    if ((rc == CASENET_OK) == want_err)
        fail_msg("%s: verifier says %d, wantErr %d", path, rc, want_err);
    if (size1 > size2 || size1 == 0)
        CN_ERR(rc, CASENET_EINVAL);
    else if (rc != CASENET_OK)
        CN_ERR(rc, CASENET_EBADSIG);
    /* README: only the equal-sizes rule, comparing roots as given, can
     * accept a probe whose hashes are not 32 bytes. */
    if (odd && rc == CASENET_OK)
        assert_true(size1 == size2 && n == 0);
    probes.consistency++;
    probes.odd += odd;
    if (rc == CASENET_OK)
        probes.accepted++;
    else
        probes.rejected++;
}

static int probe_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    size_t len = strlen(path);
    if (flag != FTW_F || len < 5 || strcmp(path + len - 5, ".json") != 0)
        return 0;
    size_t text_len = 0;
    char *text = (char *)tl_read_file(path, &text_len);
    json_error_t err;
    json_t *v = json_loadb(text, text_len, JSON_DECODE_INT_AS_REAL, &err);
    if (!v)
        fail_msg("%s: %s", path, err.text);
    if (strstr(path, "/merkle-rfc6962/inclusion/"))
        run_inclusion_probe(text, v, path);
    else
        run_consistency_probe(text, v, path);
    free(text);
    json_decref(v);
    return 0;
}

static void test_public_probes(void **state)
{
    (void)state;
    const char *dir = tl_vectors_dir();
    assert_non_null(dir); /* absent vectors are a failure, not a skip */
    memset(&probes, 0, sizeof probes);
    char *inc = tl_path(dir, "merkle-rfc6962/inclusion");
    char *con = tl_path(dir, "merkle-rfc6962/consistency");
    assert_int_equal(nftw(inc, probe_file, 16, FTW_PHYS), 0);
    assert_int_equal(nftw(con, probe_file, 16, FTW_PHYS), 0);
    free(inc);
    free(con);
    assert_int_equal(probes.inclusion, 98);
    assert_int_equal(probes.consistency, 98);
    /* Sanity of the adapter: both verdicts occur, and some probes did carry
     * hashes that are not 32 bytes. */
    assert_true(probes.accepted > 0 && probes.rejected > probes.accepted);
    assert_true(probes.odd > 0);
    print_message("merkle probes: %zu inclusion, %zu consistency, %zu accepted, %zu rejected, "
                  "%zu with non-32-byte hashes\n",
                  probes.inclusion, probes.consistency, probes.accepted, probes.rejected,
                  probes.odd);
}

/* ------------------------------------------------------------------ exhaustive up to 300 */

#define SMALL 300

struct small_tree {
    struct merkle_mem m;
    uint8_t leaves[SMALL][HB];
    uint8_t roots[SMALL + 1][HB]; /* roots[s]: the stack's root after s leaves */
};

static struct small_tree *small_tree_new(void)
{
    struct small_tree *t = calloc(1, sizeof *t);
    assert_non_null(t);
    mm_init(&t->m, SMALL);
    merkle_stack_root(&t->m.stack, t->roots[0]);
    for (uint64_t i = 0; i < SMALL; i++) {
        mm_leaf(i, t->leaves[i]);
        mm_push(&t->m, t->leaves[i]);
        merkle_stack_root(&t->m.stack, t->roots[i + 1]);
    }
    return t;
}

static void small_tree_free(struct small_tree *t)
{
    mm_free(&t->m);
    free(t);
}

static void test_roots_against_reference(void **state)
{
    (void)state;
    struct small_tree *t = small_tree_new();
    for (uint64_t s = 0; s <= SMALL; s++) {
        uint8_t want[HB], got[HB];
        ref_mth((const uint8_t(*)[HB])t->leaves, s, want);
        assert_memory_equal(t->roots[s], want, HB);
        mm_reset(&t->m, s);
        CN_OK(merkle_root_at(mm_get, &t->m, s, got));
        assert_memory_equal(got, want, HB);
        assert_int_equal(t->m.reads, __builtin_popcountll(s));
        assert_false(t->m.out_of_range);
    }
    small_tree_free(t);
}

/* Proofs equal the RFC's recursive PATH and SUBPROOF, hash for hash. */
static void test_proofs_against_reference(void **state)
{
    (void)state;
    struct small_tree *t = small_tree_new();
    const uint8_t(*leaves)[HB] = (const uint8_t(*)[HB])t->leaves;
    uint8_t got[MERKLE_PROOF_MAX][HB], want[MERKLE_PROOF_MAX][HB];
    for (uint64_t size = 1; size <= 96; size++) {
        for (uint64_t idx = 0; idx < size; idx++) {
            size_t n = 0, wn = 0;
            mm_reset(&t->m, size);
            CN_OK(merkle_inclusion_proof(mm_get, &t->m, idx, size, got, MERKLE_PROOF_MAX, &n));
            ref_path(idx, leaves, size, want, &wn);
            assert_int_equal(n, wn);
            if (n)
                assert_memory_equal(got, want, n * HB);
        }
        for (uint64_t size1 = 1; size1 <= size; size1++) {
            size_t n = 0, wn = 0;
            mm_reset(&t->m, size);
            CN_OK(merkle_consistency_proof(mm_get, &t->m, size1, size, got, MERKLE_PROOF_MAX, &n));
            if (size1 < size)
                ref_subproof(size1, leaves, size, 1, want, &wn);
            assert_int_equal(n, wn);
            if (n)
                assert_memory_equal(got, want, n * HB);
        }
    }
    small_tree_free(t);
}

static void flip(uint8_t (*proof)[HB], size_t i, unsigned salt)
{
    proof[i][(i * 11 + salt) % HB] ^= (uint8_t)(1u << ((i + salt) % 8));
}

static void test_inclusion_every_index(void **state)
{
    (void)state;
    struct small_tree *t = small_tree_new();
    uint8_t proof[MERKLE_PROOF_MAX][HB];
    uint64_t max_reads = 0, checked = 0;
    for (uint64_t size = 1; size <= SMALL; size++) {
        const uint8_t *root = t->roots[size];
        for (uint64_t idx = 0; idx < size; idx++) {
            const uint8_t *leaf = t->leaves[idx];
            size_t n = 0;
            mm_reset(&t->m, size);
            CN_OK(merkle_inclusion_proof(mm_get, &t->m, idx, size, proof, MERKLE_PROOF_MAX, &n));
            assert_false(t->m.out_of_range);
            assert_int_equal(n, merkle_proof_len_inclusion(idx, size));
            assert_true(n <= ceil_log2(size));
            assert_true(t->m.reads <= bound_inclusion(size));
            if (t->m.reads > max_reads)
                max_reads = t->m.reads;
            const uint8_t(*p)[HB] = (const uint8_t(*)[HB])proof;
            CN_OK(merkle_verify_inclusion(leaf, idx, size, p, n, root));

            /* Another index, another leaf, a shorter or longer proof: all
             * refused. Another size is not always: the verifier folds leaf
             * 0's proof in 3 leaves exactly as a proof in 4 leaves, so both
             * reach the same (given) root; the probes hold the size
             * mutations that must fail. */
            if (idx + 1 < size)
                assert_int_not_equal(merkle_verify_inclusion(leaf, idx + 1, size, p, n, root),
                                     CASENET_OK);
            if (idx > 0)
                assert_int_not_equal(merkle_verify_inclusion(leaf, idx - 1, size, p, n, root),
                                     CASENET_OK);
            CN_ERR(merkle_verify_inclusion(leaf, size, size, p, n, root), CASENET_EINVAL);
            if (size > 1)
                assert_int_not_equal(
                    merkle_verify_inclusion(t->leaves[(idx + 1) % size], idx, size, p, n, root),
                    CASENET_OK);
            if (n > 0)
                CN_ERR(merkle_verify_inclusion(leaf, idx, size, p, n - 1, root), CASENET_EBADSIG);
            memcpy(proof[n], root, HB);
            CN_ERR(merkle_verify_inclusion(leaf, idx, size, p, n + 1, root), CASENET_EBADSIG);
            /* One flipped bit in any proof hash. */
            for (size_t i = 0; i < n; i++) {
                flip(proof, i, (unsigned)(idx + size));
                CN_ERR(merkle_verify_inclusion(leaf, idx, size, p, n, root), CASENET_EBADSIG);
                flip(proof, i, (unsigned)(idx + size));
            }
            checked++;
        }
    }
    /* Every byte of every proof hash, on a smaller range. */
    for (uint64_t size = 1; size <= 33; size++) {
        for (uint64_t idx = 0; idx < size; idx++) {
            size_t n = 0;
            mm_reset(&t->m, size);
            CN_OK(merkle_inclusion_proof(mm_get, &t->m, idx, size, proof, MERKLE_PROOF_MAX, &n));
            for (size_t i = 0; i < n; i++) {
                for (size_t b = 0; b < HB; b++) {
                    proof[i][b] ^= 0x80;
                    CN_ERR(merkle_verify_inclusion(t->leaves[idx], idx, size,
                                                   (const uint8_t(*)[HB])proof, n, t->roots[size]),
                           CASENET_EBADSIG);
                    proof[i][b] ^= 0x80;
                }
            }
        }
    }
    assert_int_equal(checked, (uint64_t)SMALL * (SMALL + 1) / 2);
    print_message("inclusion: %llu proofs, at most %llu reads (bound at %d: %llu)\n",
                  (unsigned long long)checked, (unsigned long long)max_reads, SMALL,
                  (unsigned long long)bound_inclusion(SMALL));
    small_tree_free(t);
}

static void test_consistency_every_pair(void **state)
{
    (void)state;
    struct small_tree *t = small_tree_new();
    uint8_t proof[MERKLE_PROOF_MAX + 1][HB];
    const uint8_t(*p)[HB] = (const uint8_t(*)[HB])proof;
    uint64_t max_reads = 0, checked = 0;
    for (uint64_t size2 = 1; size2 <= SMALL; size2++) {
        const uint8_t *root2 = t->roots[size2];
        for (uint64_t size1 = 1; size1 <= size2; size1++) {
            const uint8_t *root1 = t->roots[size1];
            size_t n = 99;
            mm_reset(&t->m, size2);
            CN_OK(
                merkle_consistency_proof(mm_get, &t->m, size1, size2, proof, MERKLE_PROOF_MAX, &n));
            assert_false(t->m.out_of_range);
            assert_int_equal(n, merkle_proof_len_consistency(size1, size2));
            assert_true(n <= ceil_log2(size2) + 1);
            assert_true(t->m.reads <= bound_consistency(size2));
            if (t->m.reads > max_reads)
                max_reads = t->m.reads;
            CN_OK(merkle_verify_consistency(size1, size2, p, n, root1, root2));
            checked++;
            if (size1 == size2) {
                assert_int_equal(n, 0);
                continue;
            }
            assert_true(n > 0);
            /* Other sizes, swapped or wrong roots, short or long proofs. */
            assert_int_not_equal(
                merkle_verify_consistency(size1 + 1, size2, p, n, t->roots[size1 + 1], root2),
                CASENET_OK);
            if (size1 > 1)
                assert_int_not_equal(
                    merkle_verify_consistency(size1 - 1, size2, p, n, t->roots[size1 - 1], root2),
                    CASENET_OK);
            assert_int_not_equal(
                merkle_verify_consistency(size1, size2 - 1, p, n, root1, t->roots[size2 - 1]),
                CASENET_OK);
            if (size2 < SMALL)
                assert_int_not_equal(
                    merkle_verify_consistency(size1, size2 + 1, p, n, root1, t->roots[size2 + 1]),
                    CASENET_OK);
            CN_ERR(merkle_verify_consistency(size1, size2, p, n, root2, root1), CASENET_EBADSIG);
            CN_ERR(merkle_verify_consistency(size1, size2, p, n, root1, root1), CASENET_EBADSIG);
            CN_ERR(merkle_verify_consistency(size1, size2, p, n - 1, root1, root2),
                   CASENET_EBADSIG);
            memcpy(proof[n], root1, HB);
            CN_ERR(merkle_verify_consistency(size1, size2, p, n + 1, root1, root2),
                   CASENET_EBADSIG);
            CN_ERR(merkle_verify_consistency(size2, size1, p, n, root2, root1), CASENET_EINVAL);
            for (size_t i = 0; i < n; i++) {
                flip(proof, i, (unsigned)(size1 + size2));
                CN_ERR(merkle_verify_consistency(size1, size2, p, n, root1, root2),
                       CASENET_EBADSIG);
                flip(proof, i, (unsigned)(size1 + size2));
            }
        }
    }
    /* Every byte of every proof hash, on a smaller range. */
    for (uint64_t size2 = 2; size2 <= 33; size2++) {
        for (uint64_t size1 = 1; size1 < size2; size1++) {
            size_t n = 0;
            mm_reset(&t->m, size2);
            CN_OK(
                merkle_consistency_proof(mm_get, &t->m, size1, size2, proof, MERKLE_PROOF_MAX, &n));
            for (size_t i = 0; i < n; i++) {
                for (size_t b = 0; b < HB; b++) {
                    proof[i][b] ^= 0x01;
                    CN_ERR(merkle_verify_consistency(size1, size2, p, n, t->roots[size1],
                                                     t->roots[size2]),
                           CASENET_EBADSIG);
                    proof[i][b] ^= 0x01;
                }
            }
        }
    }
    assert_int_equal(checked, (uint64_t)SMALL * (SMALL + 1) / 2);
    print_message("consistency: %llu proofs, at most %llu reads (bound at %d: %llu)\n",
                  (unsigned long long)checked, (unsigned long long)max_reads, SMALL,
                  (unsigned long long)bound_consistency(SMALL));
    small_tree_free(t);
}

/* ------------------------------------------------------------------ a million leaves */

#define BIG 1000000u

static void test_reads_at_a_million(void **state)
{
    (void)state;
    struct merkle_mem *m = calloc(1, sizeof *m);
    assert_non_null(m);
    mm_init(m, BIG);
    mm_append(m, BIG);
    uint8_t root[HB], got[HB];
    merkle_stack_root(&m->stack, root);

    mm_reset(m, BIG);
    CN_OK(merkle_root_at(mm_get, m, BIG, got));
    assert_memory_equal(got, root, HB);
    assert_int_equal(m->reads, __builtin_popcount(BIG));

    uint8_t proof[MERKLE_PROOF_MAX][HB];
    const uint8_t(*p)[HB] = (const uint8_t(*)[HB])proof;
    uint64_t bound = bound_inclusion(BIG), max_inc = 0, max_con = 0;
    static const uint64_t fixed[] = {0, 1, 2, 524287, 524288, 999998, 999999};
    for (size_t k = 0; k < 2000 + sizeof fixed / sizeof fixed[0]; k++) {
        uint64_t idx = k < sizeof fixed / sizeof fixed[0] ? fixed[k] : rng_range(0, BIG - 1);
        uint8_t leaf[HB];
        mm_leaf(idx, leaf);
        size_t n = 0;
        mm_reset(m, BIG);
        CN_OK(merkle_inclusion_proof(mm_get, m, idx, BIG, proof, MERKLE_PROOF_MAX, &n));
        assert_false(m->out_of_range);
        assert_true(m->reads <= bound);
        if (m->reads > max_inc)
            max_inc = m->reads;
        CN_OK(merkle_verify_inclusion(leaf, idx, BIG, p, n, root));
    }

    static const uint64_t fixed1[] = {1, 2, 3, 524287, 524288, 524289, 999999, BIG};
    for (size_t k = 0; k < 2000 + sizeof fixed1 / sizeof fixed1[0]; k++) {
        uint64_t size1, size2;
        if (k < sizeof fixed1 / sizeof fixed1[0]) {
            size1 = fixed1[k];
            size2 = BIG;
        } else {
            size1 = rng_range(1, BIG);
            size2 = rng_range(size1, BIG);
        }
        uint8_t root1[HB], root2[HB];
        mm_reset(m, size2);
        CN_OK(merkle_root_at(mm_get, m, size1, root1));
        CN_OK(merkle_root_at(mm_get, m, size2, root2));
        size_t n = 0;
        mm_reset(m, size2);
        CN_OK(merkle_consistency_proof(mm_get, m, size1, size2, proof, MERKLE_PROOF_MAX, &n));
        assert_false(m->out_of_range);
        assert_true(m->reads <= bound_consistency(size2));
        if (m->reads > max_con)
            max_con = m->reads;
        CN_OK(merkle_verify_consistency(size1, size2, p, n, root1, root2));
        if (size2 == BIG)
            assert_memory_equal(root2, root, HB);
    }
    print_message("1M leaves: at most %llu reads per inclusion proof (bound %llu), %llu per "
                  "consistency proof (bound %llu)\n",
                  (unsigned long long)max_inc, (unsigned long long)bound,
                  (unsigned long long)max_con, (unsigned long long)bound_consistency(BIG));

    /* The broker's restart: the stack rebuilt from storage equals the live one. */
    struct merkle_stack s;
    mm_reset(m, BIG);
    CN_OK(merkle_stack_load(&s, mm_get, m, BIG));
    assert_int_equal(m->reads, __builtin_popcount(BIG));
    merkle_stack_root(&s, got);
    assert_memory_equal(got, root, HB);
    mm_free(m);
    free(m);
}

/* ------------------------------------------------------------------ errors */

static int fail_on_level(void *ctx, unsigned level, uint64_t index, const uint8_t hash[HB])
{
    (void)index;
    (void)hash;
    return level == *(unsigned *)ctx ? CASENET_EIO : CASENET_OK;
}

static void test_errors(void **state)
{
    (void)state;
    struct small_tree *t = small_tree_new();
    uint8_t proof[MERKLE_PROOF_MAX][HB], h[HB];
    const uint8_t(*p)[HB] = (const uint8_t(*)[HB])proof;
    size_t n = 12345;

    /* Impossible arguments to the generators; *n untouched. */
    mm_reset(&t->m, 10);
    CN_ERR(merkle_inclusion_proof(mm_get, &t->m, 10, 10, proof, MERKLE_PROOF_MAX, &n),
           CASENET_EINVAL);
    CN_ERR(merkle_inclusion_proof(mm_get, &t->m, 0, 0, proof, MERKLE_PROOF_MAX, &n),
           CASENET_EINVAL);
    CN_ERR(merkle_consistency_proof(mm_get, &t->m, 0, 5, proof, MERKLE_PROOF_MAX, &n),
           CASENET_EINVAL);
    CN_ERR(merkle_consistency_proof(mm_get, &t->m, 6, 5, proof, MERKLE_PROOF_MAX, &n),
           CASENET_EINVAL);
    CN_ERR(merkle_consistency_proof(mm_get, &t->m, 0, 0, proof, MERKLE_PROOF_MAX, &n),
           CASENET_EINVAL);
    /* Too small an output array. */
    CN_ERR(merkle_inclusion_proof(mm_get, &t->m, 3, 10, proof, 3, &n), CASENET_ETOOLARGE);
    CN_ERR(merkle_consistency_proof(mm_get, &t->m, 3, 10, proof, 2, &n), CASENET_ETOOLARGE);
    assert_int_equal(n, 12345);
    assert_int_equal(t->m.reads, 0);

    /* A failing read, at every position, is passed on unchanged. */
    bool all_read = false;
    for (int at = 1; at <= 24; at++) {
        mm_reset(&t->m, 200);
        t->m.fail_at_read = at;
        int rc = merkle_inclusion_proof(mm_get, &t->m, 37, 200, proof, MERKLE_PROOF_MAX, &n);
        CN_ERR(rc, t->m.reads >= (uint64_t)at ? CASENET_EIO : CASENET_OK);
        mm_reset(&t->m, 200);
        t->m.fail_at_read = at;
        rc = merkle_consistency_proof(mm_get, &t->m, 37, 200, proof, MERKLE_PROOF_MAX, &n);
        CN_ERR(rc, t->m.reads >= (uint64_t)at ? CASENET_EIO : CASENET_OK);
        all_read |= rc == CASENET_OK;
        mm_reset(&t->m, 200);
        t->m.fail_at_read = at;
        rc = merkle_root_at(mm_get, &t->m, 199, h);
        CN_ERR(rc, at <= 5 ? CASENET_EIO : CASENET_OK); /* 199 has 5 bits set */
    }
    assert_true(all_read);
    assert_int_equal(n, merkle_proof_len_consistency(37, 200));
    /* A missing subtree (asking beyond the stored log) is the source's error. */
    mm_reset(&t->m, 1000);
    CN_ERR(merkle_root_at(mm_get, &t->m, 301, h), CASENET_ENOTFOUND);

    /* A failing callback leaves the stack as it was, whichever subtree it
     * refuses; a later push with a working callback then continues. */
    struct merkle_stack s, before;
    merkle_stack_init(&s);
    for (uint64_t i = 0; i < 7; i++)
        CN_OK(merkle_stack_push(&s, t->leaves[i], NULL, NULL));
    for (unsigned level = 0; level <= 3; level++) {
        before = s;
        CN_ERR(merkle_stack_push(&s, t->leaves[7], fail_on_level, &level), CASENET_EIO);
        assert_memory_equal(&s, &before, sizeof s);
    }
    unsigned never = 99;
    CN_OK(merkle_stack_push(&s, t->leaves[7], fail_on_level, &never));
    merkle_stack_root(&s, h);
    assert_memory_equal(h, t->roots[8], HB);

    /* A full stack refuses another leaf. */
    s.size = UINT64_MAX;
    before = s;
    CN_ERR(merkle_stack_push(&s, t->leaves[0], NULL, NULL), CASENET_ETOOLARGE);
    assert_memory_equal(&s, &before, sizeof s);

    /* merkle_stack_load writes nothing when a read fails. */
    before = s;
    mm_reset(&t->m, 300);
    t->m.fail_at_read = 2;
    CN_ERR(merkle_stack_load(&s, mm_get, &t->m, 299), CASENET_EIO);
    assert_memory_equal(&s, &before, sizeof s);

    /* Largest sizes: proof lengths stay within MERKLE_PROOF_MAX. */
    assert_int_equal(merkle_proof_len_inclusion(0, UINT64_MAX), 64);
    assert_int_equal(merkle_proof_len_inclusion(UINT64_MAX - 1, UINT64_MAX), 63);
    assert_true(merkle_proof_len_consistency(UINT64_MAX - 1, UINT64_MAX) <= MERKLE_PROOF_MAX);
    assert_int_equal(merkle_proof_len_consistency(3, UINT64_MAX), 65);
    assert_int_equal(merkle_proof_len_inclusion(5, 5), 0);
    assert_int_equal(merkle_proof_len_consistency(0, 5), 0);
    assert_int_equal(merkle_proof_len_consistency(5, 5), 0);

    /* Verifier conventions of README §1 on well-formed hashes. */
    const uint8_t *r1 = t->roots[1], *r5 = t->roots[5];
    CN_ERR(merkle_verify_consistency(0, 0, p, 0, t->roots[0], t->roots[0]), CASENET_EINVAL);
    CN_ERR(merkle_verify_consistency(0, 5, p, 0, t->roots[0], r5), CASENET_EINVAL);
    CN_OK(merkle_verify_consistency(5, 5, p, 0, r5, r5));
    CN_ERR(merkle_verify_consistency(5, 5, p, 0, r5, r1), CASENET_EBADSIG);
    memcpy(proof[0], r5, HB);
    CN_ERR(merkle_verify_consistency(5, 5, p, 1, r5, r5), CASENET_EBADSIG);
    CN_ERR(merkle_verify_consistency(1, 5, p, 0, r1, r5), CASENET_EBADSIG);
    CN_OK(merkle_verify_inclusion(t->leaves[0], 0, 1, p, 0, r1));
    CN_ERR(merkle_verify_inclusion(t->leaves[0], 0, 0, p, 0, t->roots[0]), CASENET_EINVAL);
    small_tree_free(t);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hasher_known_answers),
        cmocka_unit_test(test_reference_roots),
        cmocka_unit_test(test_public_probes),
        cmocka_unit_test(test_roots_against_reference),
        cmocka_unit_test(test_proofs_against_reference),
        cmocka_unit_test(test_inclusion_every_index),
        cmocka_unit_test(test_consistency_every_pair),
        cmocka_unit_test(test_reads_at_a_million),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
