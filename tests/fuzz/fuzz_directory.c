/* fuzz_directory.c - libFuzzer harness: casenet_directory_parse on outside
 * bytes, against the fixed authority key of fuzz_net.h.
 *
 * Every input is parsed as a SignedDirectory as it is. An input whose first
 * byte has the high bit set is also read as selector || DirectoryBody: the
 * harness signs the body with the authority key, so the fuzzer reaches the
 * body checks behind the signature. Selector bit 0 asks for min_version 2
 * (rollback), bit 1 parses two days later (expiry, other current keys).
 * After a successful parse every member is walked through the accessors and
 * their answers are checked against each other. */
#include "casenet.pb-c.h"
#include "fuzz_net.h"
#include "keys_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RESIGN_FLAG 0x80

static casenet_keys *authority;
static uint8_t authority_pk[CASENET_SIGN_PK_BYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    authority = fz_authority();
    memcpy(authority_pk, casenet_keys_sign_pk(authority, NULL), sizeof authority_pk);
    return 0;
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_directory: %s:%d: %s\n", __FILE__, __LINE__, #cond);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Reads every byte a member view points to (ASan flags a dangling one). */
static size_t touch(const casenet_member *m)
{
    size_t sum = strlen(m->id) + strlen(m->display_name);
    for (size_t i = 0; i < m->n_roles; i++)
        sum += strlen(m->roles[i]);
    for (size_t i = 0; i < m->n_groups; i++)
        sum += strlen(m->groups[i]);
    const uint8_t *keys[3] = {m->sign_pk, m->box_pk, m->curve_pk};
    const char *ids[3] = {m->sign_key_id, m->box_key_id, m->curve_key_id};
    for (int u = 0; u < 3; u++) {
        CHECK((keys[u] == NULL) == (ids[u] == NULL));
        if (!keys[u])
            continue;
        CHECK(strlen(ids[u]) == CASENET_KEY_ID_CHARS);
        for (size_t j = 0; j < CASENET_SIGN_PK_BYTES; j++)
            sum += keys[u][j];
    }
    return sum;
}

static void walk(const casenet_directory *d, const uint8_t *buf, size_t len, int64_t now_ms)
{
    size_t blen = 0;
    const uint8_t *bytes = casenet_directory_bytes(d, &blen);
    CHECK(blen == len && memcmp(bytes, buf, len) == 0);
    CHECK(casenet_directory_version(d) >= 1);
    CHECK(casenet_directory_expires_at(d) > now_ms);
    (void)casenet_directory_issued_at(d);

    size_t n = casenet_directory_count(d), brokers = 0;
    size_t sum = 0;
    casenet_member m, f;
    for (size_t i = 0; i < n; i++) {
        CHECK(casenet_directory_at(d, i, &m) == CASENET_OK);
        CHECK(casenet_member_id_valid(m.id));
        sum += touch(&m);
        CHECK(casenet_directory_find(d, m.id, &f) == CASENET_OK && f.id == m.id);
        if (m.curve_pk) {
            CHECK(casenet_directory_find_curve(d, m.curve_pk, &f) == CASENET_OK && f.id == m.id);
        }
        if (m.sign_pk) {
            const uint8_t *pk = NULL;
            CHECK(casenet_directory_sign_key(d, m.id, m.sign_key_id, now_ms, &pk) == CASENET_OK &&
                  pk == m.sign_pk);
        }
        for (size_t r = 0; r < m.n_roles; r++)
            CHECK(casenet_member_has_role(&m, m.roles[r]));
        for (size_t g = 0; g < m.n_groups; g++)
            CHECK(casenet_member_in_group(&m, m.groups[g]));
        brokers += casenet_member_has_role(&m, "broker");
    }
    CHECK(n == 0 || sum > 0); /* ids have 2 characters or more */
    CHECK(casenet_directory_at(d, n, &m) == CASENET_ENOTFOUND);
    CHECK(brokers <= 1);
    if (casenet_directory_broker(d, &m) == CASENET_OK)
        CHECK(brokers == 1 && casenet_member_has_role(&m, "broker"));
    else
        CHECK(brokers == 0);
    /* Lookups that must miss: an invalid id, an all-zero CURVE key when no
     * member has it, a signing key under a made-up key id. */
    CHECK(casenet_directory_find(d, "", &m) == CASENET_ENOTFOUND);
    CHECK(casenet_directory_find(d, NULL, &m) == CASENET_ENOTFOUND);
    const uint8_t zero[CASENET_CURVE_KEY_BYTES] = {0};
    if (casenet_directory_find_curve(d, zero, &m) == CASENET_OK)
        CHECK(m.curve_pk && memcmp(m.curve_pk, zero, sizeof zero) == 0);
    const uint8_t *pk = NULL;
    if (n > 0 && casenet_directory_at(d, 0, &m) == CASENET_OK)
        CHECK(casenet_directory_sign_key(d, m.id, "0000000000000000x", now_ms, &pk) ==
              CASENET_ENOTFOUND);
}

static void parse(const uint8_t *buf, size_t len, int64_t now_ms, uint64_t min_version)
{
    casenet_directory *d = NULL;
    int rc = casenet_directory_parse(buf, len, authority_pk, now_ms, min_version, &d);
    if (rc != CASENET_OK) {
        CHECK(d == NULL);
        return;
    }
    CHECK(casenet_directory_version(d) >= min_version);
    walk(d, buf, len, now_ms);
    casenet_directory_free(d);
}

/* Wraps body in a SignedDirectory signed by the authority and parses it. */
static void parse_resigned(uint8_t sel, const uint8_t *body, size_t len)
{
    uint8_t sig[CASENET_SIGNATURE_BYTES];
    const char *key_id = NULL;
    const uint8_t *sk = cn_keys_sign_sk(authority, &key_id);
    fz_sign(FZ_DIR_DOMAIN, body, len, sk, sig);
    Casenet__V1__SignedDirectory sd = CASENET__V1__SIGNED_DIRECTORY__INIT;
    sd.body.data = (uint8_t *)body;
    sd.body.len = len;
    sd.signature.data = sig;
    sd.signature.len = sizeof sig;
    sd.authority_key_id = (char *)key_id;
    size_t slen = casenet__v1__signed_directory__get_packed_size(&sd);
    uint8_t *sbuf = malloc(slen);
    if (!sbuf)
        abort();
    casenet__v1__signed_directory__pack(&sd, sbuf);
    int64_t now_ms = (sel & 2) ? FZ_NOW_MS + 2 * FZ_VALIDITY_MS : FZ_NOW_MS;
    parse(sbuf, slen, now_ms, (sel & 1) ? 2 : 0);
    free(sbuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(data, size, FZ_NOW_MS, 0);
    if (size >= 1 && (data[0] & RESIGN_FLAG))
        parse_resigned(data[0], data + 1, size - 1);
    return 0;
}
