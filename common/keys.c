/* keys.c - member and authority keyrings: generation, the 0600 secret key
 * file, the public key file and the pinned authority key (see casenet.h and
 * keys_impl.h). */
#include "keys_impl.h"

#include "casenet.pb-c.h"
#include "crypto.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One key pair. Lives inside the sodium_malloc'd array of the keyring. */
struct cn_keypair {
    int use; /* Casenet__V1__KeyUse */
    int64_t created_at_ms;
    char key_id[CASENET_KEY_ID_CHARS + 1];
    uint8_t pk[CASENET_SIGN_PK_BYTES];
    uint8_t sk[CASENET_SIGN_SK_BYTES]; /* sign: seed || pk; box, curve: first 32 B */
};

struct casenet_keys {
    char member_id[CASENET_MEMBER_ID_MAX + 1];
    size_t n;
    struct cn_keypair *pairs; /* sodium_malloc'd, n entries */
    int cur[4];               /* index of the current pair per KeyUse, -1 = none */
};

static size_t sk_len(int use)
{
    return use == CASENET__V1__KEY_USE__KEY_USE_SIGN ? CASENET_SIGN_SK_BYTES : CASENET_BOX_SK_BYTES;
}

static int keys_alloc(const char *member_id, size_t n, casenet_keys **out)
{
    casenet_keys *k = calloc(1, sizeof *k);
    if (!k)
        return CASENET_ENOMEM;
    if (cn_strlcpy(k->member_id, member_id, sizeof k->member_id) != CASENET_OK) {
        free(k);
        return CASENET_EINVAL;
    }
    k->pairs = sodium_malloc(n * sizeof *k->pairs);
    if (!k->pairs) {
        free(k);
        return CASENET_ENOMEM;
    }
    memset(k->pairs, 0, n * sizeof *k->pairs);
    k->n = n;
    *out = k;
    return CASENET_OK;
}

/* The current pair of each use: the newest created_at, the later one on a tie. */
static void pick_current(casenet_keys *k)
{
    for (int u = 0; u < 4; u++)
        k->cur[u] = -1;
    for (size_t i = 0; i < k->n; i++) {
        int u = k->pairs[i].use;
        int c = k->cur[u];
        if (c < 0 || k->pairs[i].created_at_ms >= k->pairs[c].created_at_ms)
            k->cur[u] = (int)i;
    }
}

void casenet_keys_free(casenet_keys *k)
{
    if (!k)
        return;
    sodium_free(k->pairs); /* wipes */
    free(k);
}

int cn_keys_from_secrets(const char *member_id, const uint8_t *sign_seed, const uint8_t *box_sk,
                         const uint8_t *curve_sk, int64_t now_ms, casenet_keys **out)
{
    if (!casenet_member_id_valid(member_id) || !sign_seed)
        return CASENET_EINVAL;
    size_t n = 1 + (box_sk != NULL) + (curve_sk != NULL);
    casenet_keys *k = NULL;
    int rc = keys_alloc(member_id, n, &k);
    if (rc != CASENET_OK)
        return rc;
    struct cn_keypair *p = k->pairs;
    p->use = CASENET__V1__KEY_USE__KEY_USE_SIGN;
    cn_sign_seed_keypair(p->pk, p->sk, sign_seed);
    p++;
    if (box_sk) {
        p->use = CASENET__V1__KEY_USE__KEY_USE_BOX;
        memcpy(p->sk, box_sk, CASENET_BOX_SK_BYTES);
        cn_x25519_base(p->pk, p->sk);
        p++;
    }
    if (curve_sk) {
        p->use = CASENET__V1__KEY_USE__KEY_USE_CURVE;
        memcpy(p->sk, curve_sk, CASENET_CURVE_KEY_BYTES);
        cn_x25519_base(p->pk, p->sk);
    }
    for (size_t i = 0; i < n; i++) {
        k->pairs[i].created_at_ms = now_ms;
        cn_key_id(k->pairs[i].pk, CASENET_SIGN_PK_BYTES, k->pairs[i].key_id);
    }
    pick_current(k);
    *out = k;
    return CASENET_OK;
}

/* Random secrets in sodium_malloc'd scratch, wiped and freed on return. */
static int generate(const char *member_id, bool member, int64_t now_ms, casenet_keys **out)
{
    uint8_t *s = sodium_malloc(3 * 32);
    if (!s)
        return CASENET_ENOMEM;
    randombytes_buf(s, 3 * 32);
    int rc = cn_keys_from_secrets(member_id, s, member ? s + 32 : NULL, member ? s + 64 : NULL,
                                  now_ms, out);
    sodium_free(s);
    return rc;
}

int casenet_keys_generate(const char *member_id, int64_t now_ms, casenet_keys **out)
{
    if (!member_id || !out || strcmp(member_id, CN_AUTHORITY_ID) == 0)
        return CASENET_EINVAL;
    return generate(member_id, true, now_ms, out);
}

int casenet_keys_generate_authority(int64_t now_ms, casenet_keys **out)
{
    if (!out)
        return CASENET_EINVAL;
    return generate(CN_AUTHORITY_ID, false, now_ms, out);
}

int casenet_keys_rotate(casenet_keys *k, int64_t now_ms, size_t *retired_box)
{
    if (!k || strcmp(k->member_id, CN_AUTHORITY_ID) == 0)
        return CASENET_EINVAL;
    if (k->n + 3 > CN_KEYS_MAX)
        return CASENET_ETOOLARGE;
    /* Newer than every pair held, so the new ones are current even when the
     * clock went back since the last rotation. */
    int64_t at = now_ms;
    for (size_t i = 0; i < k->n; i++) {
        if (k->pairs[i].created_at_ms >= at)
            at = k->pairs[i].created_at_ms + 1;
    }
    casenet_keys *fresh = NULL;
    int rc = generate(k->member_id, true, at, &fresh);
    if (rc != CASENET_OK)
        return rc;
    struct cn_keypair *pairs = sodium_malloc((k->n + fresh->n) * sizeof *pairs);
    if (!pairs) {
        casenet_keys_free(fresh);
        return CASENET_ENOMEM;
    }
    memcpy(pairs, k->pairs, k->n * sizeof *pairs);
    memcpy(pairs + k->n, fresh->pairs, fresh->n * sizeof *pairs);
    sodium_free(k->pairs); /* wipes */
    k->pairs = pairs;
    k->n += fresh->n;
    casenet_keys_free(fresh);
    pick_current(k);
    if (retired_box) {
        size_t box = 0;
        for (size_t i = 0; i < k->n; i++)
            box += k->pairs[i].use == CASENET__V1__KEY_USE__KEY_USE_BOX;
        *retired_box = box - 1;
    }
    return CASENET_OK;
}

const char *casenet_keys_member_id(const casenet_keys *k)
{
    return k->member_id;
}

const uint8_t *casenet_keys_sign_pk(const casenet_keys *k, const char **key_id)
{
    const struct cn_keypair *p = &k->pairs[k->cur[CASENET__V1__KEY_USE__KEY_USE_SIGN]];
    if (key_id)
        *key_id = p->key_id;
    return p->pk;
}

const uint8_t *cn_keys_sign_sk(const casenet_keys *k, const char **key_id)
{
    const struct cn_keypair *p = &k->pairs[k->cur[CASENET__V1__KEY_USE__KEY_USE_SIGN]];
    if (key_id)
        *key_id = p->key_id;
    return p->sk;
}

const uint8_t *cn_keys_box_sk(const casenet_keys *k, const char *key_id, const uint8_t **pk)
{
    for (size_t i = 0; i < k->n; i++) {
        const struct cn_keypair *p = &k->pairs[i];
        if (p->use == CASENET__V1__KEY_USE__KEY_USE_BOX && strcmp(p->key_id, key_id) == 0) {
            if (pk)
                *pk = p->pk;
            return p->sk;
        }
    }
    return NULL;
}

size_t cn_keys_box_missing(const casenet_keys *k, const casenet_keys *old,
                           char first[CASENET_KEY_ID_CHARS + 1])
{
    size_t n = 0;
    for (size_t i = 0; i < old->n; i++) {
        const struct cn_keypair *p = &old->pairs[i];
        if (p->use != CASENET__V1__KEY_USE__KEY_USE_BOX || cn_keys_box_sk(k, p->key_id, NULL))
            continue;
        if (n++ == 0)
            memcpy(first, p->key_id, CASENET_KEY_ID_CHARS + 1);
    }
    return n;
}

const uint8_t *casenet_keys_curve_pk(const casenet_keys *k)
{
    int c = k->cur[CASENET__V1__KEY_USE__KEY_USE_CURVE];
    return c < 0 ? NULL : k->pairs[c].pk;
}

const uint8_t *casenet_keys_curve_sk(const casenet_keys *k)
{
    int c = k->cur[CASENET__V1__KEY_USE__KEY_USE_CURVE];
    return c < 0 ? NULL : k->pairs[c].sk;
}

int casenet_keys_public_file(const casenet_keys *k, casenet_buf *out)
{
    Casenet__V1__PublicKeyFile f = CASENET__V1__PUBLIC_KEY_FILE__INIT;
    Casenet__V1__PublicKey keys[3], *ptrs[3];
    size_t n = 0;
    for (int u = CASENET__V1__KEY_USE__KEY_USE_SIGN; u <= CASENET__V1__KEY_USE__KEY_USE_CURVE;
         u++) {
        if (k->cur[u] < 0)
            continue;
        const struct cn_keypair *p = &k->pairs[k->cur[u]];
        casenet__v1__public_key__init(&keys[n]);
        keys[n].use = (Casenet__V1__KeyUse)u;
        keys[n].key_id = (char *)p->key_id;
        keys[n].key.data = (uint8_t *)p->pk;
        keys[n].key.len = CASENET_SIGN_PK_BYTES;
        keys[n].valid_from_ms = p->created_at_ms;
        ptrs[n] = &keys[n];
        n++;
    }
    f.member_id = (char *)k->member_id;
    f.n_keys = n;
    f.keys = ptrs;
    size_t len = casenet__v1__public_key_file__get_packed_size(&f);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return CASENET_ENOMEM;
    casenet__v1__public_key_file__pack(&f, buf);
    out->data = buf;
    out->len = len;
    return CASENET_OK;
}

/* casenet_keys_save; exclusive: refuse to replace an existing secret file. */
static int save(const casenet_keys *k, const char *secret_path, const char *public_path,
                bool exclusive)
{
    Casenet__V1__SecretKeyFile f = CASENET__V1__SECRET_KEY_FILE__INIT;
    Casenet__V1__KeyPair *pairs = NULL, **ptrs = NULL;
    uint8_t *packed = NULL;
    size_t len = 0;
    casenet_buf pub = {0};
    int rc = CASENET_ENOMEM;
    if (!k || !secret_path)
        return CASENET_EINVAL;
    pairs = calloc(k->n, sizeof *pairs);
    ptrs = calloc(k->n, sizeof *ptrs);
    if (!pairs || !ptrs)
        goto cleanup;
    for (size_t i = 0; i < k->n; i++) {
        const struct cn_keypair *p = &k->pairs[i];
        casenet__v1__key_pair__init(&pairs[i]);
        pairs[i].use = (Casenet__V1__KeyUse)p->use;
        pairs[i].key_id = (char *)p->key_id;
        pairs[i].public_key.data = (uint8_t *)p->pk;
        pairs[i].public_key.len = CASENET_SIGN_PK_BYTES;
        pairs[i].secret_key.data = (uint8_t *)p->sk;
        pairs[i].secret_key.len = sk_len(p->use);
        pairs[i].created_at_ms = p->created_at_ms;
        ptrs[i] = &pairs[i];
    }
    f.member_id = (char *)k->member_id;
    f.n_keys = k->n;
    f.keys = ptrs;
    len = casenet__v1__secret_key_file__get_packed_size(&f);
    packed = sodium_malloc(len ? len : 1);
    if (!packed)
        goto cleanup;
    casenet__v1__secret_key_file__pack(&f, packed);
    if (public_path) {
        rc = casenet_keys_public_file(k, &pub);
        if (rc != CASENET_OK)
            goto cleanup;
    }
    rc = cn_write_file_atomic(secret_path, packed, len, 0600, exclusive);
    if (rc != CASENET_OK)
        goto cleanup;
    if (public_path)
        rc = cn_write_file_atomic(public_path, pub.data, pub.len, 0644, false);
cleanup:
    sodium_free(packed);
    casenet_buf_free(&pub);
    free(ptrs);
    free(pairs);
    return rc;
}

int casenet_keys_save(const casenet_keys *k, const char *secret_path, const char *public_path)
{
    return save(k, secret_path, public_path, true);
}

int casenet_keys_save_replace(const casenet_keys *k, const char *secret_path,
                              const char *public_path)
{
    return save(k, secret_path, public_path, false);
}

/* Reads a secret key file into sodium_malloc'd memory after checking, on the
 * opened descriptor, that nobody but the owner can access it. */
static int read_secret_file(const char *path, uint8_t **data, size_t *len)
{
    int rc = CASENET_EIO;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CASENET_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto cleanup;
    if (st.st_mode & 077) {
        rc = CASENET_EPERM;
        goto cleanup;
    }
    if ((uint64_t)st.st_size > CN_KEY_FILE_MAX) {
        rc = CASENET_EBADREQ;
        goto cleanup;
    }
    size_t size = (size_t)st.st_size, got = 0;
    buf = sodium_malloc(size ? size : 1);
    if (!buf) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto cleanup;
        got += (size_t)r;
    }
    *data = buf;
    *len = size;
    buf = NULL;
    rc = CASENET_OK;
cleanup:
    sodium_free(buf);
    close(fd);
    return rc;
}

/* Checks one key pair from a file: sizes, key id, and that the public key is
 * the one derived from the secret key. */
static int check_pair(const Casenet__V1__KeyPair *kp)
{
    int use = kp->use;
    if (use != CASENET__V1__KEY_USE__KEY_USE_SIGN && use != CASENET__V1__KEY_USE__KEY_USE_BOX &&
        use != CASENET__V1__KEY_USE__KEY_USE_CURVE)
        return CASENET_EBADREQ;
    if (kp->public_key.len != CASENET_SIGN_PK_BYTES || kp->secret_key.len != sk_len(use))
        return CASENET_EBADREQ;
    char id[CASENET_KEY_ID_CHARS + 1];
    cn_key_id(kp->public_key.data, kp->public_key.len, id);
    if (strcmp(id, kp->key_id) != 0)
        return CASENET_EBADREQ;
    uint8_t pk[CASENET_SIGN_PK_BYTES];
    int rc = CASENET_OK;
    if (use == CASENET__V1__KEY_USE__KEY_USE_SIGN) {
        uint8_t sk[CASENET_SIGN_SK_BYTES];
        cn_sign_seed_keypair(pk, sk, kp->secret_key.data);
        if (sodium_memcmp(sk, kp->secret_key.data, sizeof sk) != 0)
            rc = CASENET_EBADREQ;
        sodium_memzero(sk, sizeof sk);
    } else {
        cn_x25519_base(pk, kp->secret_key.data);
    }
    if (memcmp(pk, kp->public_key.data, sizeof pk) != 0)
        rc = CASENET_EBADREQ;
    return rc;
}

/* Wipes the secret bytes protobuf-c copied out of the file, then frees. */
static void free_secret_file(Casenet__V1__SecretKeyFile *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_keys; i++) {
        if (f->keys[i]->secret_key.data)
            sodium_memzero(f->keys[i]->secret_key.data, f->keys[i]->secret_key.len);
    }
    casenet__v1__secret_key_file__free_unpacked(f, NULL);
}

int casenet_keys_load(const char *secret_path, casenet_keys **out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    Casenet__V1__SecretKeyFile *f = NULL;
    casenet_keys *k = NULL;
    if (!secret_path || !out)
        return CASENET_EINVAL;
    int rc = read_secret_file(secret_path, &data, &len);
    if (rc != CASENET_OK)
        return rc;
    rc = CASENET_EBADREQ;
    f = casenet__v1__secret_key_file__unpack(NULL, len, data);
    if (!f || !casenet_member_id_valid(f->member_id) || f->n_keys == 0 || f->n_keys > CN_KEYS_MAX)
        goto cleanup;
    for (size_t i = 0; i < f->n_keys; i++) {
        rc = check_pair(f->keys[i]);
        if (rc != CASENET_OK)
            goto cleanup;
    }
    rc = keys_alloc(f->member_id, f->n_keys, &k);
    if (rc != CASENET_OK)
        goto cleanup;
    for (size_t i = 0; i < f->n_keys; i++) {
        const Casenet__V1__KeyPair *kp = f->keys[i];
        struct cn_keypair *p = &k->pairs[i];
        p->use = kp->use;
        p->created_at_ms = kp->created_at_ms;
        memcpy(p->key_id, kp->key_id, CASENET_KEY_ID_CHARS + 1);
        memcpy(p->pk, kp->public_key.data, CASENET_SIGN_PK_BYTES);
        memcpy(p->sk, kp->secret_key.data, kp->secret_key.len);
    }
    pick_current(k);
    /* Every keyring signs; a member's also has box and CURVE keys (which
     * also catches a file truncated between two key pairs). */
    rc = CASENET_EBADREQ;
    if (k->cur[CASENET__V1__KEY_USE__KEY_USE_SIGN] < 0)
        goto cleanup;
    /* The authority's keyring is its one signing key (PROTOCOL.md §2). */
    if (strcmp(k->member_id, CN_AUTHORITY_ID) == 0 && k->n != 1)
        goto cleanup;
    if (strcmp(k->member_id, CN_AUTHORITY_ID) != 0 &&
        (k->cur[CASENET__V1__KEY_USE__KEY_USE_BOX] < 0 ||
         k->cur[CASENET__V1__KEY_USE__KEY_USE_CURVE] < 0))
        goto cleanup;
    *out = k;
    k = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_keys_free(k);
    free_secret_file(f);
    sodium_free(data);
    return rc;
}

int casenet_authority_pk_load(const char *path, uint8_t authority_pk[32])
{
    casenet_buf buf = {0};
    if (!path || !authority_pk)
        return CASENET_EINVAL;
    int rc = cn_read_file(path, CN_KEY_FILE_MAX, &buf);
    if (rc != CASENET_OK)
        return rc == CASENET_ETOOLARGE ? CASENET_EBADREQ : rc;
    rc = CASENET_EBADREQ;
    Casenet__V1__PublicKeyFile *f = casenet__v1__public_key_file__unpack(NULL, buf.len, buf.data);
    if (!f || strcmp(f->member_id, CN_AUTHORITY_ID) != 0)
        goto cleanup;
    /* The root of trust is one key: a file offering several would leave
     * the choice of the trusted one to whoever wrote the file. */
    if (f->n_keys != 1)
        goto cleanup;
    const Casenet__V1__PublicKey *pk = f->keys[0];
    char id[CASENET_KEY_ID_CHARS + 1];
    if (pk->use != CASENET__V1__KEY_USE__KEY_USE_SIGN || pk->key.len != CASENET_SIGN_PK_BYTES)
        goto cleanup;
    cn_key_id(pk->key.data, pk->key.len, id);
    if (strcmp(id, pk->key_id) != 0)
        goto cleanup;
    memcpy(authority_pk, pk->key.data, CASENET_SIGN_PK_BYTES);
    rc = CASENET_OK;
cleanup:
    casenet__v1__public_key_file__free_unpacked(f, NULL);
    casenet_buf_free(&buf);
    return rc;
}
