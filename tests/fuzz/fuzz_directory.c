/* fuzz_directory.c - libFuzzer harness: casenet_directory_parse on outside
 * bytes, against the fixed authority key of fuzz_net.h.
 *
 * Every input is parsed as a SignedDirectory as it is. An input whose first
 * byte has the high bit set is also read as selector || DirectoryBody: the
 * harness signs the body with the authority key, so the fuzzer reaches the
 * body checks behind the signature. Selector bit 0 asks for min_version 2
 * (rollback), bit 1 parses two days later (expiry, other current keys), bit 2
 * first rewrites every key id to match its key (the fuzzer cannot forge
 * SHA-256 prefixes), so that keys of odd sizes, uses and windows get past the
 * key-id check. With bit 3 set the rest is a list of 3-byte edits (op,
 * target, value) applied to the fixed network's own directory body before it
 * is signed: key sizes, uses and windows, shared keys, ids, statuses, roles,
 * groups, duplicated members, version and expiry (see apply_edit).
 * After a successful parse every member is walked through the accessors and
 * their answers are checked against each other. */
#include "casenet.pb-c.h"
#include "directory_impl.h"
#include "fuzz_net.h"
#include "keys_impl.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RESIGN_FLAG  0x80
#define EDIT_FLAG    0x08
#define EDIT_MEMBERS 8
#define EDIT_KEYS    6
#define EDIT_ROLES   4
#define EDIT_MAX     64

static casenet_keys *authority;
static uint8_t authority_pk[CASENET_SIGN_PK_BYTES];
static Casenet__V1__DirectoryBody *base; /* the fixed network's last body */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    authority = fz_authority();
    memcpy(authority_pk, casenet_keys_sign_pk(authority, NULL), sizeof authority_pk);
    tl_net *net = fz_net_new(NULL, NULL);
    Casenet__V1__SignedDirectory *sd =
        casenet__v1__signed_directory__unpack(NULL, net->signed_dir.len, net->signed_dir.data);
    if (!sd)
        abort();
    base = casenet__v1__directory_body__unpack(NULL, sd->body.len, sd->body.data);
    if (!base || base->n_members + 2 > EDIT_MEMBERS)
        abort();
    for (size_t i = 0; i < base->n_members; i++) {
        if (base->members[i]->n_keys > EDIT_KEYS || base->members[i]->n_roles > EDIT_ROLES ||
            base->members[i]->n_groups > EDIT_ROLES)
            abort();
    }
    casenet__v1__signed_directory__free_unpacked(sd, NULL);
    tl_net_free(net);
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
            CHECK(cn_directory_has_curve_key(d, m.id, m.curve_key_id, now_ms));
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
    /* A directory always follows itself (revoked members stay revoked, the
     * audit network is the same). */
    char why[320];
    CHECK(cn_directory_check_successor(d, d, why, sizeof why) == CASENET_OK);
    casenet_directory_free(d);
}

/* The body with every key id recomputed from its key (malloc'd), or NULL
 * when it does not parse. */
static uint8_t *fix_key_ids(const uint8_t *body, size_t len, size_t *out_len)
{
    Casenet__V1__DirectoryBody *b = casenet__v1__directory_body__unpack(NULL, len, body);
    if (!b)
        return NULL;
    char(*ids)[CASENET_KEY_ID_CHARS + 1] = NULL;
    size_t n = 0;
    for (size_t i = 0; i < b->n_members; i++)
        n += b->members[i]->n_keys;
    ids = calloc(n ? n : 1, sizeof *ids);
    if (!ids)
        abort();
    /* The unpacked strings stay owned by b; the new ids live in ids. */
    char **saved = calloc(n ? n : 1, sizeof *saved);
    if (!saved)
        abort();
    size_t j = 0;
    for (size_t i = 0; i < b->n_members; i++) {
        for (size_t k = 0; k < b->members[i]->n_keys; k++, j++) {
            Casenet__V1__PublicKey *pk = b->members[i]->keys[k];
            cn_key_id(pk->key.data, pk->key.len, ids[j]);
            saved[j] = pk->key_id;
            pk->key_id = ids[j];
        }
    }
    *out_len = casenet__v1__directory_body__get_packed_size(b);
    uint8_t *out = malloc(*out_len ? *out_len : 1);
    if (!out)
        abort();
    casenet__v1__directory_body__pack(b, out);
    j = 0;
    for (size_t i = 0; i < b->n_members; i++) {
        for (size_t k = 0; k < b->members[i]->n_keys; k++, j++)
            b->members[i]->keys[k]->key_id = saved[j];
    }
    free(saved);
    free(ids);
    casenet__v1__directory_body__free_unpacked(b, NULL);
    return out;
}

/* Wraps body in a SignedDirectory signed by the authority and parses it. */
static void sign_and_parse(const uint8_t *body, size_t len, int64_t now_ms, uint64_t min_version)
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
    parse(sbuf, slen, now_ms, min_version);
    free(sbuf);
}

static void parse_resigned(uint8_t sel, const uint8_t *body, size_t len)
{
    uint8_t *fixed = NULL;
    if (sel & 4) {
        fixed = fix_key_ids(body, len, &len);
        if (!fixed)
            return;
        body = fixed;
    }
    int64_t now_ms = (sel & 2) ? FZ_NOW_MS + 2 * FZ_VALIDITY_MS : FZ_NOW_MS;
    sign_and_parse(body, len, now_ms, (sel & 1) ? 2 : 0);
    free(fixed);
}

/* ------------------------------------------------------------ edit mode */

/* A copy of the base body in harness memory (strings borrowed from base),
 * which 3-byte edits change before it is packed and signed: byte-level
 * mutation cannot keep nested protobuf lengths consistent, edits can. */
static struct {
    Casenet__V1__DirectoryBody body;
    Casenet__V1__Member m[EDIT_MEMBERS], *mp[EDIT_MEMBERS];
    Casenet__V1__PublicKey k[EDIT_MEMBERS][EDIT_KEYS], *kp[EDIT_MEMBERS][EDIT_KEYS];
    uint8_t key[EDIT_MEMBERS][EDIT_KEYS][48];
    char key_id[EDIT_MEMBERS][EDIT_KEYS][CASENET_KEY_ID_CHARS + 1];
    bool keep_id[EDIT_MEMBERS][EDIT_KEYS]; /* leave a wrong key id in place */
    char *roles[EDIT_MEMBERS][EDIT_ROLES], *groups[EDIT_MEMBERS][EDIT_ROLES];
} ed;

static const char *const id_pool[] = {
    "broker",     "vn.police",
    "vn.hotline", "platform.x",
    "x",          "Bad.Id",
    "-lead",      "",
    "authority",  "a123456789012345678901234567890123456789012345678901234567890123"};
static const char *const role_pool[] = {"broker",      "responder", "intake", "platform",
                                        "coordinator", "gateway",   "bogus",  ""};
static const char *const group_pool[] = {"police", "platforms", "a.b_c-9", "", "Upper", "g g"};
static char long_name[300];

/* Copies member src of the base into slot i. */
static void copy_member(size_t i, const Casenet__V1__Member *src)
{
    ed.m[i] = *src;
    ed.mp[i] = &ed.m[i];
    for (size_t j = 0; j < src->n_keys; j++) {
        ed.k[i][j] = *src->keys[j];
        memset(ed.key[i][j], 0, sizeof ed.key[i][j]);
        memcpy(ed.key[i][j], src->keys[j]->key.data,
               src->keys[j]->key.len < 48 ? src->keys[j]->key.len : 48);
        ed.k[i][j].key.data = ed.key[i][j];
        ed.keep_id[i][j] = false;
        ed.kp[i][j] = &ed.k[i][j];
    }
    ed.m[i].keys = ed.kp[i];
    for (size_t r = 0; r < src->n_roles; r++)
        ed.roles[i][r] = src->roles[r];
    ed.m[i].roles = ed.roles[i];
    for (size_t g = 0; g < src->n_groups; g++)
        ed.groups[i][g] = src->groups[g];
    ed.m[i].groups = ed.groups[i];
}

static int64_t offset_ms(uint8_t v, int64_t unit)
{
    return FZ_NOW_MS + (int64_t)(int8_t)v * unit;
}

/* One edit: op chooses what, t the member (and key), v the value. */
static void apply_edit(uint8_t op, uint8_t t, uint8_t v)
{
    Casenet__V1__DirectoryBody *b = &ed.body;
    if (op % 16 == 12) {
        b->version = v % 3;
        return;
    }
    if (op % 16 == 13) {
        b->expires_at_ms = offset_ms(v, 60000);
        return;
    }
    if (b->n_members == 0)
        return;
    size_t i = t % b->n_members;
    Casenet__V1__Member *m = &ed.m[i];
    size_t j = m->n_keys ? (t / 16) % m->n_keys : 0;
    Casenet__V1__PublicKey *k = m->n_keys ? &ed.k[i][j] : NULL;
    switch (op % 16) {
    case 0: /* key length */
        if (k)
            k->key.len = v % 41;
        break;
    case 1: /* key use */
        if (k)
            k->use = (Casenet__V1__KeyUse)(v % 5);
        break;
    case 2:
        if (k)
            k->valid_from_ms = offset_ms(v, 1000);
        break;
    case 3:
        if (k)
            k->valid_until_ms = v ? offset_ms(v, 1000) : 0;
        break;
    case 4: /* a key of another member (duplicate CURVE keys, shared keys) */
        if (k) {
            size_t o = v % b->n_members;
            if (ed.m[o].n_keys) {
                size_t oj = (v / 16) % ed.m[o].n_keys;
                *k = ed.k[o][oj];
                memcpy(ed.key[i][j], ed.key[o][oj], sizeof ed.key[i][j]);
                k->key.data = ed.key[i][j];
                ed.keep_id[i][j] = ed.keep_id[o][oj];
            }
        }
        break;
    case 5: /* one more key, a copy of key v */
        if (m->n_keys > 0 && m->n_keys < EDIT_KEYS) {
            size_t n = m->n_keys++, src = v % n;
            ed.k[i][n] = ed.k[i][src];
            memcpy(ed.key[i][n], ed.key[i][src], sizeof ed.key[i][n]);
            ed.k[i][n].key.data = ed.key[i][n];
            ed.keep_id[i][n] = ed.keep_id[i][src];
            ed.kp[i][n] = &ed.k[i][n];
            ed.key[i][n][v % 32] ^= 0x80; /* another key, unless v says otherwise */
        }
        break;
    case 6:
        if (m->n_keys)
            m->n_keys--;
        break;
    case 7: /* a wrong key id stays */
        if (k) {
            memset(ed.key_id[i][j], v & 1 ? '0' : 'A', CASENET_KEY_ID_CHARS);
            ed.key_id[i][j][CASENET_KEY_ID_CHARS] = '\0';
            k->key_id = ed.key_id[i][j];
            ed.keep_id[i][j] = true;
        }
        break;
    case 8:
        m->id = (char *)id_pool[v % (sizeof id_pool / sizeof id_pool[0])];
        break;
    case 9:
        m->status = (Casenet__V1__MemberStatus)(v % 5);
        break;
    case 10:
        if (v & 1) {
            if (m->n_roles < EDIT_ROLES)
                ed.roles[i][m->n_roles++] =
                    (char *)role_pool[(v / 2) % (sizeof role_pool / sizeof role_pool[0])];
        } else if (m->n_roles) {
            m->n_roles--;
        }
        break;
    case 11:
        if (v & 1) {
            if (m->n_groups < EDIT_ROLES)
                ed.groups[i][m->n_groups++] =
                    (char *)group_pool[(v / 2) % (sizeof group_pool / sizeof group_pool[0])];
        } else if (m->n_groups) {
            m->n_groups--;
        }
        break;
    case 14: /* a copy of member t (duplicate ids), or one member fewer */
        if (v & 1) {
            if (b->n_members < EDIT_MEMBERS) {
                size_t n = b->n_members++;
                ed.m[n] = ed.m[i];
                memcpy(ed.k[n], ed.k[i], sizeof ed.k[n]);
                memcpy(ed.key[n], ed.key[i], sizeof ed.key[n]);
                memcpy(ed.key_id[n], ed.key_id[i], sizeof ed.key_id[n]);
                memcpy(ed.keep_id[n], ed.keep_id[i], sizeof ed.keep_id[n]);
                memcpy(ed.roles[n], ed.roles[i], sizeof ed.roles[n]);
                memcpy(ed.groups[n], ed.groups[i], sizeof ed.groups[n]);
                for (size_t x = 0; x < EDIT_KEYS; x++) {
                    ed.k[n][x].key.data = ed.key[n][x];
                    if (ed.keep_id[n][x])
                        ed.k[n][x].key_id = ed.key_id[n][x];
                    ed.kp[n][x] = &ed.k[n][x];
                }
                ed.m[n].keys = ed.kp[n];
                ed.m[n].roles = ed.roles[n];
                ed.m[n].groups = ed.groups[n];
                ed.mp[n] = &ed.m[n];
            }
        } else {
            b->n_members--;
        }
        break;
    case 15:
        m->display_name = (v & 1) ? long_name : (char *)"";
        break;
    }
}

/* Selector || edits: the base body, edited, signed and parsed. */
static void parse_edited(const uint8_t *edits, size_t len)
{
    memset(&ed, 0, sizeof ed);
    if (!long_name[0])
        memset(long_name, 'n', sizeof long_name - 1);
    ed.body = *base;
    for (size_t i = 0; i < base->n_members; i++)
        copy_member(i, base->members[i]);
    ed.body.members = ed.mp;
    for (size_t e = 0; e + 3 <= len && e < 3 * EDIT_MAX; e += 3)
        apply_edit(edits[e], edits[e + 1], edits[e + 2]);
    for (size_t i = 0; i < ed.body.n_members; i++) {
        for (size_t j = 0; j < ed.m[i].n_keys; j++) {
            if (ed.keep_id[i][j])
                continue;
            cn_key_id(ed.key[i][j], ed.k[i][j].key.len, ed.key_id[i][j]);
            ed.k[i][j].key_id = ed.key_id[i][j];
        }
    }
    size_t blen = casenet__v1__directory_body__get_packed_size(&ed.body);
    uint8_t *body = malloc(blen ? blen : 1);
    if (!body)
        abort();
    casenet__v1__directory_body__pack(&ed.body, body);
    sign_and_parse(body, blen, FZ_NOW_MS, 0);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(data, size, FZ_NOW_MS, 0);
    if (size >= 1 && (data[0] & RESIGN_FLAG)) {
        if (data[0] & EDIT_FLAG)
            parse_edited(data + 1, size - 1);
        else
            parse_resigned(data[0], data + 1, size - 1);
    }
    return 0;
}
