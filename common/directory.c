/* directory.c - the authority-signed member directory: parsing and
 * verification, O(log n) lookups by member id and CURVE key, and the
 * authority's add-member / set-status operations (see casenet.h). */
#include "directory_impl.h"

#include "casenet.pb-c.h"
#include "crypto.h"
#include "keys_impl.h"
#include "text.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIR_DOMAIN      "casenet.directory.v1"
#define DIR_MAX_MEMBERS 100000
#define DIR_MAX_KEYS    64
#define DIR_MAX_ROLES   16
#define DIR_MAX_GROUPS  64
#define DIR_MAX_NAME    256
#define GROUP_NAME_MAX  64

struct casenet_directory {
    uint8_t *bytes; /* the SignedDirectory bytes, copied */
    size_t len;
    Casenet__V1__SignedDirectory *sd;
    Casenet__V1__DirectoryBody *body;
    size_t n;
    casenet_member *members; /* directory order; pointers borrow from body */
    size_t *by_id;           /* indices sorted by member id */
    size_t *by_curve;        /* indices of members with a CURVE key, sorted by key */
    size_t n_curve;
    long broker; /* index of the member with role broker, -1 = none */
};

static const char *const known_roles[] = {
    "intake",  "responder",    "takedown-requester", "platform", CN_ROLE_COORDINATOR,
    "gateway", CN_ROLE_BROKER,
};

bool cn_role_known(const char *name)
{
    for (size_t i = 0; i < sizeof known_roles / sizeof known_roles[0]; i++) {
        if (strcmp(name, known_roles[i]) == 0)
            return true;
    }
    return false;
}

/* Group names: 1..64 of [a-z0-9._-]. */
static bool group_valid(const char *g)
{
    size_t n = strlen(g);
    if (n == 0 || n > GROUP_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = g[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}

static bool key_valid_at(const Casenet__V1__PublicKey *k, int64_t t)
{
    return k->valid_from_ms <= t && (k->valid_until_ms == 0 || t < k->valid_until_ms);
}

/* The newest (largest valid_from) key of a use valid at now_ms, or NULL. */
static const Casenet__V1__PublicKey *current_key(const Casenet__V1__Member *m, int use,
                                                 int64_t now_ms)
{
    const Casenet__V1__PublicKey *best = NULL;
    for (size_t i = 0; i < m->n_keys; i++) {
        const Casenet__V1__PublicKey *k = m->keys[i];
        if ((int)k->use == use && key_valid_at(k, now_ms) &&
            (!best || k->valid_from_ms >= best->valid_from_ms))
            best = k;
    }
    return best;
}

static int check_member(const Casenet__V1__Member *m)
{
    if (!casenet_member_id_valid(m->id) || strlen(m->display_name) > DIR_MAX_NAME)
        return CASENET_EBADREQ;
    if (m->status < CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_ACTIVE ||
        m->status > CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_REVOKED)
        return CASENET_EBADREQ;
    if (m->n_roles > DIR_MAX_ROLES || m->n_groups > DIR_MAX_GROUPS || m->n_keys > DIR_MAX_KEYS)
        return CASENET_EBADREQ;
    for (size_t i = 0; i < m->n_roles; i++) {
        if (!cn_role_known(m->roles[i]))
            return CASENET_EBADREQ;
    }
    for (size_t i = 0; i < m->n_groups; i++) {
        if (!group_valid(m->groups[i]))
            return CASENET_EBADREQ;
    }
    for (size_t i = 0; i < m->n_keys; i++) {
        const Casenet__V1__PublicKey *k = m->keys[i];
        char id[CASENET_KEY_ID_CHARS + 1];
        if (k->use < CASENET__V1__KEY_USE__KEY_USE_SIGN ||
            k->use > CASENET__V1__KEY_USE__KEY_USE_CURVE || k->key.len != CASENET_SIGN_PK_BYTES)
            return CASENET_EBADREQ;
        cn_key_id(k->key.data, k->key.len, id);
        if (strcmp(id, k->key_id) != 0)
            return CASENET_EBADREQ;
        if (k->valid_until_ms != 0 && k->valid_until_ms <= k->valid_from_ms)
            return CASENET_EBADREQ;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(m->keys[j]->key_id, k->key_id) == 0)
                return CASENET_EBADREQ;
        }
    }
    return CASENET_OK;
}

/* qsort_r comparators over indices into the member array (glibc's qsort_r;
 * _GNU_SOURCE is set by the build). */
static int cmp_by_id(const void *a, const void *b, void *ctx)
{
    const casenet_member *m = ctx;
    return strcmp(m[*(const size_t *)a].id, m[*(const size_t *)b].id);
}

static int cmp_by_curve(const void *a, const void *b, void *ctx)
{
    const casenet_member *m = ctx;
    return memcmp(m[*(const size_t *)a].curve_pk, m[*(const size_t *)b].curve_pk,
                  CASENET_CURVE_KEY_BYTES);
}

/* Builds the member views and the sorted indexes; EBADREQ on duplicate ids,
 * duplicate current CURVE keys or more than one broker. */
static int directory_index(casenet_directory *d, int64_t now_ms)
{
    const Casenet__V1__DirectoryBody *b = d->body;
    d->n = b->n_members;
    d->broker = -1;
    if (d->n == 0)
        return CASENET_OK;
    d->members = calloc(d->n, sizeof *d->members);
    d->by_id = calloc(d->n, sizeof *d->by_id);
    d->by_curve = calloc(d->n, sizeof *d->by_curve);
    if (!d->members || !d->by_id || !d->by_curve)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < d->n; i++) {
        const Casenet__V1__Member *pm = b->members[i];
        casenet_member *m = &d->members[i];
        m->id = pm->id;
        m->display_name = pm->display_name;
        m->status = (casenet_member_status)pm->status;
        m->n_roles = pm->n_roles;
        m->roles = (const char *const *)pm->roles;
        m->n_groups = pm->n_groups;
        m->groups = (const char *const *)pm->groups;
        const Casenet__V1__PublicKey *k;
        if ((k = current_key(pm, CASENET__V1__KEY_USE__KEY_USE_SIGN, now_ms))) {
            m->sign_pk = k->key.data;
            m->sign_key_id = k->key_id;
        }
        if ((k = current_key(pm, CASENET__V1__KEY_USE__KEY_USE_BOX, now_ms))) {
            m->box_pk = k->key.data;
            m->box_key_id = k->key_id;
        }
        if ((k = current_key(pm, CASENET__V1__KEY_USE__KEY_USE_CURVE, now_ms))) {
            m->curve_pk = k->key.data;
            m->curve_key_id = k->key_id;
            d->by_curve[d->n_curve++] = i;
        }
        if (casenet_member_has_role(m, CN_ROLE_BROKER)) {
            if (d->broker >= 0)
                return CASENET_EBADREQ;
            d->broker = (long)i;
        }
        d->by_id[i] = i;
    }
    qsort_r(d->by_id, d->n, sizeof *d->by_id, cmp_by_id, d->members);
    qsort_r(d->by_curve, d->n_curve, sizeof *d->by_curve, cmp_by_curve, d->members);
    for (size_t i = 1; i < d->n; i++) {
        if (strcmp(d->members[d->by_id[i - 1]].id, d->members[d->by_id[i]].id) == 0)
            return CASENET_EBADREQ;
    }
    for (size_t i = 1; i < d->n_curve; i++) {
        if (memcmp(d->members[d->by_curve[i - 1]].curve_pk, d->members[d->by_curve[i]].curve_pk,
                   CASENET_CURVE_KEY_BYTES) == 0)
            return CASENET_EBADREQ;
    }
    return CASENET_OK;
}

void casenet_directory_free(casenet_directory *d)
{
    if (!d)
        return;
    free(d->members);
    free(d->by_id);
    free(d->by_curve);
    casenet__v1__directory_body__free_unpacked(d->body, NULL);
    casenet__v1__signed_directory__free_unpacked(d->sd, NULL);
    free(d->bytes);
    free(d);
}

/* Verifies the authority signature over PAE(domain, body). Nothing of the
 * body is parsed before this succeeds. */
static int check_signature(const Casenet__V1__SignedDirectory *sd, const uint8_t pk[32])
{
    char id[CASENET_KEY_ID_CHARS + 1];
    cn_key_id(pk, CASENET_SIGN_PK_BYTES, id);
    if (sd->signature.len != CASENET_SIGNATURE_BYTES || strcmp(id, sd->authority_key_id) != 0)
        return CASENET_EBADSIG;
    casenet_buf pae = {0};
    const uint8_t *parts[1] = {sd->body.data};
    size_t lens[1] = {sd->body.len};
    int rc = cn_pae(DIR_DOMAIN, 1, parts, lens, &pae);
    if (rc != CASENET_OK)
        return rc;
    rc = cn_sign_verify(sd->signature.data, pae.data, pae.len, pk);
    casenet_buf_free(&pae);
    return rc;
}

int cn_directory_parse_ex(const uint8_t *buf, size_t len, const uint8_t authority_pk[32],
                          int64_t now_ms, uint64_t min_version, bool check_expiry,
                          casenet_directory **out)
{
    if (!buf || !authority_pk || !out)
        return CASENET_EINVAL;
    casenet_directory *d = calloc(1, sizeof *d);
    if (!d)
        return CASENET_ENOMEM;
    int rc = CASENET_ENOMEM;
    d->bytes = malloc(len ? len : 1);
    if (!d->bytes)
        goto cleanup;
    memcpy(d->bytes, buf, len);
    d->len = len;
    rc = CASENET_EBADREQ;
    d->sd = casenet__v1__signed_directory__unpack(NULL, len, buf);
    if (!d->sd)
        goto cleanup;
    rc = check_signature(d->sd, authority_pk);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = CASENET_EBADREQ;
    d->body = casenet__v1__directory_body__unpack(NULL, d->sd->body.len, d->sd->body.data);
    if (!d->body || !cn_pb_strings_valid(&d->body->base) || d->body->version < 1 ||
        d->body->n_members > DIR_MAX_MEMBERS)
        goto cleanup;
    for (size_t i = 0; i < d->body->n_members; i++) {
        rc = check_member(d->body->members[i]);
        if (rc != CASENET_OK)
            goto cleanup;
    }
    rc = directory_index(d, now_ms);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = CASENET_EROLLBACK;
    if (d->body->version < min_version)
        goto cleanup;
    rc = CASENET_EEXPIRED;
    if (check_expiry && d->body->expires_at_ms <= now_ms)
        goto cleanup;
    *out = d;
    return CASENET_OK;
cleanup:
    casenet_directory_free(d);
    return rc;
}

int casenet_directory_parse(const uint8_t *buf, size_t len, const uint8_t authority_pk[32],
                            int64_t now_ms, uint64_t min_version, casenet_directory **out)
{
    return cn_directory_parse_ex(buf, len, authority_pk, now_ms, min_version, true, out);
}

uint64_t casenet_directory_version(const casenet_directory *d)
{
    return d->body->version;
}

int64_t casenet_directory_issued_at(const casenet_directory *d)
{
    return d->body->issued_at_ms;
}

int64_t casenet_directory_expires_at(const casenet_directory *d)
{
    return d->body->expires_at_ms;
}

const uint8_t *casenet_directory_bytes(const casenet_directory *d, size_t *len)
{
    if (len)
        *len = d->len;
    return d->bytes;
}

size_t casenet_directory_count(const casenet_directory *d)
{
    return d->n;
}

int casenet_directory_at(const casenet_directory *d, size_t i, casenet_member *out)
{
    if (i >= d->n)
        return CASENET_ENOTFOUND;
    *out = d->members[i];
    return CASENET_OK;
}

/* Index of member id, or -1. Binary search over by_id. */
static long find_index(const casenet_directory *d, const char *id)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(id, d->members[d->by_id[mid]].id);
        if (c == 0)
            return (long)d->by_id[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

int casenet_directory_find(const casenet_directory *d, const char *id, casenet_member *out)
{
    long i = id ? find_index(d, id) : -1;
    if (i < 0)
        return CASENET_ENOTFOUND;
    *out = d->members[i];
    return CASENET_OK;
}

int casenet_directory_broker(const casenet_directory *d, casenet_member *out)
{
    if (d->broker < 0)
        return CASENET_ENOTFOUND;
    *out = d->members[d->broker];
    return CASENET_OK;
}

const char *cn_directory_audit_network(const casenet_directory *d)
{
    if (d->body->network && d->body->network[0])
        return d->body->network;
    return d->broker < 0 ? NULL : d->members[d->broker].id;
}

int casenet_directory_find_curve(const casenet_directory *d, const uint8_t curve_pk[32],
                                 casenet_member *out)
{
    size_t lo = 0, hi = d->n_curve;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const casenet_member *m = &d->members[d->by_curve[mid]];
        int c = memcmp(curve_pk, m->curve_pk, CASENET_CURVE_KEY_BYTES);
        if (c == 0) {
            *out = *m;
            return CASENET_OK;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return CASENET_ENOTFOUND;
}

/* The key of member id with the given use and key id, whatever its window. */
static const Casenet__V1__PublicKey *lookup_key(const casenet_directory *d, const char *id, int use,
                                                const char *key_id)
{
    long i = (id && key_id) ? find_index(d, id) : -1;
    if (i < 0)
        return NULL;
    const Casenet__V1__Member *m = d->body->members[i];
    for (size_t j = 0; j < m->n_keys; j++) {
        const Casenet__V1__PublicKey *k = m->keys[j];
        if ((int)k->use == use && strcmp(k->key_id, key_id) == 0)
            return k;
    }
    return NULL;
}

/* The key of member id with the given use and key id, valid at at_ms. */
static const Casenet__V1__PublicKey *find_key(const casenet_directory *d, const char *id, int use,
                                              const char *key_id, int64_t at_ms)
{
    const Casenet__V1__PublicKey *k = lookup_key(d, id, use, key_id);
    return k && key_valid_at(k, at_ms) ? k : NULL;
}

int casenet_directory_sign_key(const casenet_directory *d, const char *id, const char *key_id,
                               int64_t at_ms, const uint8_t **pk)
{
    const Casenet__V1__PublicKey *k =
        find_key(d, id, CASENET__V1__KEY_USE__KEY_USE_SIGN, key_id, at_ms);
    if (!k)
        return CASENET_ENOTFOUND;
    *pk = k->key.data;
    return CASENET_OK;
}

bool cn_directory_has_box_key(const casenet_directory *d, const char *id, const char *key_id,
                              int64_t at_ms)
{
    return find_key(d, id, CASENET__V1__KEY_USE__KEY_USE_BOX, key_id, at_ms) != NULL;
}

enum cn_key_state cn_directory_box_key_state(const casenet_directory *d, const char *id,
                                             const char *key_id, int64_t at_ms)
{
    const Casenet__V1__PublicKey *k = lookup_key(d, id, CASENET__V1__KEY_USE__KEY_USE_BOX, key_id);
    if (!k)
        return CN_KEY_ABSENT;
    if (k->valid_until_ms != 0 && k->valid_until_ms <= at_ms)
        return CN_KEY_RETIRED;
    return key_valid_at(k, at_ms) ? CN_KEY_VALID : CN_KEY_NOT_YET;
}

bool cn_directory_has_curve_key(const casenet_directory *d, const char *id, const char *key_id,
                                int64_t at_ms)
{
    return find_key(d, id, CASENET__V1__KEY_USE__KEY_USE_CURVE, key_id, at_ms) != NULL;
}

int cn_directory_check_successor(const casenet_directory *prev, const casenet_directory *next,
                                 char *why, size_t whylen)
{
    for (size_t i = 0; i < prev->n; i++) {
        const casenet_member *o = &prev->members[i];
        if (o->status != CASENET_MEMBER_REVOKED)
            continue;
        long j = find_index(next, o->id);
        if (j < 0 || next->members[j].status != CASENET_MEMBER_REVOKED) {
            snprintf(why, whylen,
                     "member %s is revoked in directory version %llu but %s in version %llu; "
                     "revocation is final (re-admission is a new key under a new id)",
                     o->id, (unsigned long long)prev->body->version,
                     j < 0 ? "not listed" : "active or suspended again",
                     (unsigned long long)next->body->version);
            return CASENET_ECONFLICT;
        }
    }
    const char *was = cn_directory_audit_network(prev), *now = cn_directory_audit_network(next);
    if (was && (!now || strcmp(was, now) != 0)) {
        snprintf(why, whylen,
                 "directory version %llu changes the audit log's network from %s to %s; the "
                 "network name is fixed for the life of the log (sign it with network %s)",
                 (unsigned long long)next->body->version, was, now ? now : "(none)", was);
        return CASENET_ECONFLICT;
    }
    return CASENET_OK;
}

bool casenet_member_has_role(const casenet_member *m, const char *role)
{
    for (size_t i = 0; i < m->n_roles; i++) {
        if (strcmp(m->roles[i], role) == 0)
            return true;
    }
    return false;
}

bool casenet_member_in_group(const casenet_member *m, const char *group)
{
    for (size_t i = 0; i < m->n_groups; i++) {
        if (strcmp(m->groups[i], group) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ authority side */

/* Verifies the authority's current directory with its own key, ignoring
 * expiry. *d = NULL when there is none yet. */
static int load_current(const casenet_keys *authority, const uint8_t *current, size_t len,
                        int64_t now_ms, casenet_directory **d)
{
    *d = NULL;
    if (!current || len == 0)
        return CASENET_OK;
    return cn_directory_parse_ex(current, len, casenet_keys_sign_pk(authority, NULL), now_ms, 0,
                                 false, d);
}

/* Packs body, signs it and packs the SignedDirectory into out. */
static int sign_body(const casenet_keys *authority, const Casenet__V1__DirectoryBody *body,
                     casenet_buf *out)
{
    int rc = CASENET_ENOMEM;
    casenet_buf pae = {0};
    uint8_t sig[CASENET_SIGNATURE_BYTES];
    size_t blen = casenet__v1__directory_body__get_packed_size(body);
    uint8_t *bbuf = malloc(blen ? blen : 1);
    if (!bbuf)
        return CASENET_ENOMEM;
    casenet__v1__directory_body__pack(body, bbuf);
    const uint8_t *parts[1] = {bbuf};
    size_t lens[1] = {blen};
    rc = cn_pae(DIR_DOMAIN, 1, parts, lens, &pae);
    if (rc != CASENET_OK)
        goto cleanup;
    const char *key_id = NULL;
    cn_sign(sig, pae.data, pae.len, cn_keys_sign_sk(authority, &key_id));
    Casenet__V1__SignedDirectory sd = CASENET__V1__SIGNED_DIRECTORY__INIT;
    sd.body.data = bbuf;
    sd.body.len = blen;
    sd.signature.data = sig;
    sd.signature.len = sizeof sig;
    sd.authority_key_id = (char *)key_id;
    size_t slen = casenet__v1__signed_directory__get_packed_size(&sd);
    uint8_t *sbuf = malloc(slen);
    rc = CASENET_ENOMEM;
    if (!sbuf)
        goto cleanup;
    casenet__v1__signed_directory__pack(&sd, sbuf);
    out->data = sbuf;
    out->len = slen;
    rc = CASENET_OK;
cleanup:
    casenet_buf_free(&pae);
    free(bbuf);
    return rc;
}

/* Signs a new body holding the members of old (or none), with member
 * `replace` (an index into old, or -1 to append) set to m (NULL: none
 * changed). */
static int publish(const casenet_keys *authority, const casenet_directory *old,
                   Casenet__V1__Member *m, long replace, int64_t now_ms, int64_t validity_ms,
                   casenet_buf *out)
{
    size_t n_old = old ? old->body->n_members : 0;
    size_t n = n_old + (m && replace < 0 ? 1 : 0);
    Casenet__V1__Member **members = calloc(n ? n : 1, sizeof *members);
    if (!members)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < n_old; i++)
        members[i] = old->body->members[i];
    if (m)
        members[replace < 0 ? (long)n_old : replace] = m;
    Casenet__V1__DirectoryBody body = CASENET__V1__DIRECTORY_BODY__INIT;
    body.version = old ? old->body->version + 1 : 1;
    body.issued_at_ms = now_ms;
    body.expires_at_ms = now_ms + validity_ms;
    if (old)
        body.network = old->body->network;
    body.n_members = n;
    body.members = members;
    int rc = sign_body(authority, &body, out);
    free(members);
    if (rc != CASENET_OK)
        return rc;
    /* Never hand out a directory that clients would refuse (e.g. two
     * members with one CURVE key, a second broker). */
    casenet_directory *check = NULL;
    rc = cn_directory_parse_ex(out->data, out->len, casenet_keys_sign_pk(authority, NULL), now_ms,
                               0, false, &check);
    casenet_directory_free(check);
    if (rc != CASENET_OK) {
        casenet_buf_free(out);
        return rc == CASENET_EBADREQ ? CASENET_EINVAL : rc;
    }
    return CASENET_OK;
}

static bool authority_args_ok(const casenet_keys *authority, int64_t validity_ms,
                              const casenet_buf *out)
{
    return authority && out && validity_ms > 0 &&
           strcmp(casenet_keys_member_id(authority), CN_AUTHORITY_ID) == 0;
}

/* Checks the keys of a PublicKeyFile: known use, 32 B, key id matches, and a
 * signing key among them. */
static int check_public_file(const Casenet__V1__PublicKeyFile *f)
{
    bool has_sign = false;
    if (f->n_keys == 0 || f->n_keys > DIR_MAX_KEYS)
        return CASENET_EBADREQ;
    for (size_t i = 0; i < f->n_keys; i++) {
        const Casenet__V1__PublicKey *k = f->keys[i];
        char id[CASENET_KEY_ID_CHARS + 1];
        if (k->use < CASENET__V1__KEY_USE__KEY_USE_SIGN ||
            k->use > CASENET__V1__KEY_USE__KEY_USE_CURVE || k->key.len != CASENET_SIGN_PK_BYTES)
            return CASENET_EBADREQ;
        cn_key_id(k->key.data, k->key.len, id);
        if (strcmp(id, k->key_id) != 0)
            return CASENET_EBADREQ;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(f->keys[j]->key_id, k->key_id) == 0)
                return CASENET_EBADREQ;
        }
        has_sign |= k->use == CASENET__V1__KEY_USE__KEY_USE_SIGN;
    }
    return has_sign ? CASENET_OK : CASENET_EBADREQ;
}

/* A new key's valid_from: its creation time as the member's public file
 * states it, clamped to [now - CN_KEY_ADMISSION_LEEWAY_MS, now]. */
static int64_t admission_valid_from(int64_t file_valid_from_ms, int64_t now_ms)
{
    int64_t from = file_valid_from_ms < now_ms ? file_valid_from_ms : now_ms;
    int64_t floor = now_ms - CN_KEY_ADMISSION_LEEWAY_MS;
    return from < floor ? floor : from;
}

int casenet_directory_add_member(const casenet_keys *authority, const uint8_t *current,
                                 size_t current_len, const uint8_t *public_file, size_t public_len,
                                 const casenet_member_spec *spec, int64_t now_ms,
                                 int64_t validity_ms, casenet_buf *out)
{
    if (!authority_args_ok(authority, validity_ms, out) || !public_file || !spec)
        return CASENET_EINVAL;
    if (spec->n_roles > DIR_MAX_ROLES || spec->n_groups > DIR_MAX_GROUPS ||
        (spec->display_name && strlen(spec->display_name) > DIR_MAX_NAME))
        return CASENET_EINVAL;
    for (size_t i = 0; i < spec->n_roles; i++) {
        if (!spec->roles[i] || !cn_role_known(spec->roles[i]))
            return CASENET_EINVAL;
    }
    for (size_t i = 0; i < spec->n_groups; i++) {
        if (!spec->groups[i] || !group_valid(spec->groups[i]))
            return CASENET_EINVAL;
    }
    casenet_directory *old = NULL;
    Casenet__V1__PublicKey *keys = NULL, **key_ptrs = NULL;
    Casenet__V1__PublicKeyFile *f =
        casenet__v1__public_key_file__unpack(NULL, public_len, public_file);
    int rc = CASENET_EBADREQ;
    if (!f)
        goto cleanup;
    rc = CASENET_EINVAL;
    if (!casenet_member_id_valid(f->member_id) || strcmp(f->member_id, CN_AUTHORITY_ID) == 0)
        goto cleanup;
    rc = check_public_file(f);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = load_current(authority, current, current_len, now_ms, &old);
    if (rc != CASENET_OK)
        goto cleanup;
    long replace = old ? find_index(old, f->member_id) : -1;
    const Casenet__V1__Member *prev = replace >= 0 ? old->body->members[replace] : NULL;
    rc = CASENET_ECONFLICT;
    if (prev && prev->status == CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_REVOKED)
        goto cleanup; /* revocation is final */
    size_t n_prev = prev ? prev->n_keys : 0;
    rc = CASENET_ENOMEM;
    keys = calloc(f->n_keys + n_prev, sizeof *keys);
    key_ptrs = calloc(f->n_keys + n_prev, sizeof *key_ptrs);
    if (!keys || !key_ptrs)
        goto cleanup;
    size_t nk = 0;
    /* The new keys: valid from when the member made them (the file's
     * valid_from, its own clock), but no earlier than now - leeway and no
     * later than now. Starting at the authority's now made a member whose
     * clock runs behind unable to sign until its clock passed the
     * admission; the leeway is the broker's default clock-skew limit, so a
     * file cannot make a key valid long before it was admitted. A key
     * already listed and still open-ended keeps its window. */
    for (size_t i = 0; i < f->n_keys; i++) {
        const Casenet__V1__PublicKey *k = f->keys[i];
        casenet__v1__public_key__init(&keys[nk]);
        keys[nk].use = k->use;
        keys[nk].key_id = k->key_id;
        keys[nk].key = k->key;
        keys[nk].valid_from_ms = admission_valid_from(k->valid_from_ms, now_ms);
        for (size_t j = 0; j < n_prev; j++) {
            const Casenet__V1__PublicKey *o = prev->keys[j];
            if (strcmp(o->key_id, k->key_id) == 0 && o->valid_until_ms == 0 &&
                o->valid_from_ms <= now_ms)
                keys[nk].valid_from_ms = o->valid_from_ms;
        }
        key_ptrs[nk] = &keys[nk];
        nk++;
    }
    /* Old keys not in the new file stay listed (old signatures still verify,
     * old mail can still be opened), closed at now. */
    for (size_t j = 0; j < n_prev; j++) {
        const Casenet__V1__PublicKey *o = prev->keys[j];
        bool again = false;
        for (size_t i = 0; i < f->n_keys; i++)
            again |= strcmp(o->key_id, f->keys[i]->key_id) == 0;
        if (again || o->valid_from_ms >= now_ms)
            continue;
        keys[nk] = *o;
        if (keys[nk].valid_until_ms == 0 || keys[nk].valid_until_ms > now_ms)
            keys[nk].valid_until_ms = now_ms;
        key_ptrs[nk] = &keys[nk];
        nk++;
    }
    Casenet__V1__Member m = CASENET__V1__MEMBER__INIT;
    m.id = f->member_id;
    m.display_name = (char *)(spec->display_name ? spec->display_name : f->member_id);
    m.n_roles = spec->n_roles;
    m.roles = (char **)spec->roles;
    m.n_groups = spec->n_groups;
    m.groups = (char **)spec->groups;
    m.status = CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_ACTIVE;
    m.n_keys = nk;
    m.keys = key_ptrs;
    rc = publish(authority, old, &m, replace, now_ms, validity_ms, out);
cleanup:
    free(key_ptrs);
    free(keys);
    casenet_directory_free(old);
    casenet__v1__public_key_file__free_unpacked(f, NULL);
    return rc;
}

int casenet_directory_set_status(const casenet_keys *authority, const uint8_t *current,
                                 size_t current_len, const char *member_id,
                                 casenet_member_status status, int64_t now_ms, int64_t validity_ms,
                                 casenet_buf *out)
{
    if (!authority_args_ok(authority, validity_ms, out) || !member_id ||
        status < CASENET_MEMBER_ACTIVE || status > CASENET_MEMBER_REVOKED)
        return CASENET_EINVAL;
    casenet_directory *old = NULL;
    int rc = load_current(authority, current, current_len, now_ms, &old);
    if (rc != CASENET_OK)
        return rc;
    long i = old ? find_index(old, member_id) : -1;
    if (i < 0) {
        casenet_directory_free(old);
        return CASENET_ENOTFOUND;
    }
    Casenet__V1__Member m = *old->body->members[i];
    if (m.status == CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_REVOKED &&
        status != CASENET_MEMBER_REVOKED)
        rc = CASENET_ECONFLICT; /* revocation is final */
    else if (status != CASENET_MEMBER_ACTIVE && (long)old->broker == i)
        rc = CASENET_EFORBIDDEN; /* the network would lose its broker */
    if (rc != CASENET_OK) {
        casenet_directory_free(old);
        return rc;
    }
    m.status = (Casenet__V1__MemberStatus)status;
    rc = publish(authority, old, &m, i, now_ms, validity_ms, out);
    casenet_directory_free(old);
    return rc;
}

int casenet_directory_renew(const casenet_keys *authority, const uint8_t *current,
                            size_t current_len, int64_t now_ms, int64_t validity_ms,
                            casenet_buf *out)
{
    if (!authority_args_ok(authority, validity_ms, out))
        return CASENET_EINVAL;
    casenet_directory *old = NULL;
    int rc = load_current(authority, current, current_len, now_ms, &old);
    if (rc != CASENET_OK)
        return rc;
    if (!old)
        return CASENET_ENOTFOUND;
    rc = publish(authority, old, NULL, -1, now_ms, validity_ms, out);
    casenet_directory_free(old);
    return rc;
}

int casenet_directory_create(const casenet_keys *authority, const char *network, int64_t now_ms,
                             int64_t validity_ms, casenet_buf *out)
{
    if (!authority_args_ok(authority, validity_ms, out) || !network ||
        !casenet_member_id_valid(network))
        return CASENET_EINVAL;
    Casenet__V1__DirectoryBody body = CASENET__V1__DIRECTORY_BODY__INIT;
    body.version = 1;
    body.issued_at_ms = now_ms;
    body.expires_at_ms = now_ms + validity_ms;
    body.network = (char *)network;
    return sign_body(authority, &body, out);
}
