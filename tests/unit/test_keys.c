/* test_keys.c - keyrings: generation, the 0600 secret file, refusal of
 * group-readable, truncated, garbage and inconsistent files, public files. */
#include "casenet.pb-c.h"
#include "keys_impl.h"
#include "testlib.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fx {
    char *dir;
    char *sec;
    char *pub;
    casenet_keys *k;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    CN_OK(casenet_init());
    f->dir = tl_tmpdir();
    f->sec = tl_path(f->dir, "vn.hotline111.key");
    f->pub = tl_path(f->dir, "vn.hotline111.pub");
    CN_OK(casenet_keys_generate("vn.hotline111", 1000, &f->k));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    casenet_keys_free(f->k);
    tl_rmrf(f->dir);
    free(f->dir);
    free(f->sec);
    free(f->pub);
    free(f);
    return 0;
}

/* casenet_keys_rotate: the new set is current, every older pair stays, the
 * box keys they lost are counted, and the file round-trips through
 * casenet_keys_save_replace (casenet_keys_save still refuses to replace). */
static void test_rotate(void **state)
{
    struct fx *f = *state;
    const char *id0 = NULL, *id1 = NULL;
    char first[CASENET_KEY_ID_CHARS + 1];
    (void)casenet_keys_sign_pk(f->k, &id0);
    snprintf(first, sizeof first, "%s", id0);
    uint8_t curve0[32];
    memcpy(curve0, casenet_keys_curve_pk(f->k), 32);
    CN_OK(casenet_keys_save(f->k, f->sec, NULL));
    /* A clock that went back (1 < 1000) still makes the new keys current. */
    size_t retired = 9;
    CN_OK(casenet_keys_rotate(f->k, 1, &retired));
    assert_int_equal(retired, 1);
    CN_ERR(casenet_keys_save(f->k, f->sec, NULL), CASENET_EINVAL);
    CN_OK(casenet_keys_save_replace(f->k, f->sec, f->pub));
    casenet_keys *back = NULL;
    CN_OK(casenet_keys_load(f->sec, &back));
    (void)casenet_keys_sign_pk(back, &id1);
    assert_string_not_equal(id1, first);
    assert_memory_not_equal(casenet_keys_curve_pk(back), curve0, 32);
    /* The first signing key is still held. */
    casenet_buf pubf = {0};
    CN_OK(casenet_keys_public_file(back, &pubf));
    Casenet__V1__PublicKeyFile *pf =
        casenet__v1__public_key_file__unpack(NULL, pubf.len, pubf.data);
    assert_non_null(pf);
    assert_int_equal(pf->n_keys, 3); /* the public file: the current set only */
    for (size_t i = 0; i < pf->n_keys; i++)
        assert_string_not_equal(pf->keys[i]->key_id, first);
    casenet__v1__public_key_file__free_unpacked(pf, NULL);
    casenet_buf_free(&pubf);
    CN_OK(casenet_keys_rotate(back, 5000, &retired));
    assert_int_equal(retired, 2);
    /* At most 64 pairs: 3 per rotation, 9 held now. */
    int rc = CASENET_OK;
    int n = 0;
    while (rc == CASENET_OK && n < 30) {
        rc = casenet_keys_rotate(back, 6000, NULL);
        n++;
    }
    CN_ERR(rc, CASENET_ETOOLARGE);
    assert_int_equal(n, 19); /* 9 + 18 * 3 = 63 */
    casenet_keys *auth = NULL;
    CN_OK(casenet_keys_generate_authority(1000, &auth));
    CN_ERR(casenet_keys_rotate(auth, 2000, NULL), CASENET_EINVAL);
    casenet_keys_free(auth);
    casenet_keys_free(back);
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    struct stat st;
    CN_OK(casenet_keys_save(f->k, f->sec, f->pub));
    assert_int_equal(stat(f->sec, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(f->pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    casenet_keys *k2 = NULL;
    CN_OK(casenet_keys_load(f->sec, &k2));
    assert_string_equal(casenet_keys_member_id(k2), "vn.hotline111");
    const char *id1, *id2;
    assert_memory_equal(casenet_keys_sign_pk(f->k, &id1), casenet_keys_sign_pk(k2, &id2), 32);
    assert_string_equal(id1, id2);
    assert_memory_equal(casenet_keys_curve_pk(f->k), casenet_keys_curve_pk(k2), 32);
    assert_memory_equal(casenet_keys_curve_sk(f->k), casenet_keys_curve_sk(k2), 32);
    assert_memory_equal(cn_keys_sign_sk(f->k, NULL), cn_keys_sign_sk(k2, NULL), 64);
    char bid[17];
    /* Find the box key id through the public file. */
    casenet_buf pubf = {0};
    CN_OK(casenet_keys_public_file(k2, &pubf));
    Casenet__V1__PublicKeyFile *pf =
        casenet__v1__public_key_file__unpack(NULL, pubf.len, pubf.data);
    assert_non_null(pf);
    assert_int_equal(pf->n_keys, 3);
    for (size_t i = 0; i < pf->n_keys; i++) {
        cn_key_id(pf->keys[i]->key.data, 32, bid);
        assert_string_equal(bid, pf->keys[i]->key_id);
        if (pf->keys[i]->use == CASENET__V1__KEY_USE__KEY_USE_BOX) {
            const uint8_t *pk = NULL;
            assert_non_null(cn_keys_box_sk(k2, bid, &pk));
            assert_memory_equal(pk, pf->keys[i]->key.data, 32);
        }
    }
    casenet__v1__public_key_file__free_unpacked(pf, NULL);
    /* The public file on disk is the same. */
    size_t len;
    uint8_t *disk = tl_read_file(f->pub, &len);
    assert_int_equal(len, pubf.len);
    assert_memory_equal(disk, pubf.data, len);
    free(disk);
    casenet_buf_free(&pubf);
    assert_null(cn_keys_box_sk(k2, "0000000000000000", NULL));
    casenet_keys_free(k2);
}

static void test_group_readable_refused(void **state)
{
    struct fx *f = *state;
    casenet_keys *k2 = NULL;
    CN_OK(casenet_keys_save(f->k, f->sec, NULL));
    assert_int_equal(chmod(f->sec, 0644), 0);
    CN_ERR(casenet_keys_load(f->sec, &k2), CASENET_EPERM);
    assert_null(k2);
    assert_int_equal(chmod(f->sec, 0640), 0);
    CN_ERR(casenet_keys_load(f->sec, &k2), CASENET_EPERM);
    assert_int_equal(chmod(f->sec, 0601), 0);
    CN_ERR(casenet_keys_load(f->sec, &k2), CASENET_EPERM);
    assert_int_equal(chmod(f->sec, 0400), 0);
    CN_OK(casenet_keys_load(f->sec, &k2));
    casenet_keys_free(k2);
}

static void test_no_overwrite(void **state)
{
    struct fx *f = *state;
    casenet_keys *other = NULL;
    CN_OK(casenet_keys_save(f->k, f->sec, NULL));
    CN_OK(casenet_keys_generate("vn.hotline111", 2000, &other));
    CN_ERR(casenet_keys_save(other, f->sec, NULL), CASENET_EINVAL);
    casenet_keys *k2 = NULL;
    CN_OK(casenet_keys_load(f->sec, &k2));
    assert_memory_equal(casenet_keys_sign_pk(k2, NULL), casenet_keys_sign_pk(f->k, NULL), 32);
    casenet_keys_free(k2);
    casenet_keys_free(other);
}

static void test_missing_file(void **state)
{
    struct fx *f = *state;
    casenet_keys *k2 = NULL;
    CN_ERR(casenet_keys_load(f->sec, &k2), CASENET_EIO);
    assert_null(k2);
}

static void test_truncated_and_garbage(void **state)
{
    struct fx *f = *state;
    CN_OK(casenet_keys_save(f->k, f->sec, NULL));
    size_t len;
    uint8_t *data = tl_read_file(f->sec, &len);
    char *p = tl_path(f->dir, "bad.key");
    /* Every truncation is refused as malformed, never loaded. */
    for (size_t cut = 0; cut < len; cut++) {
        tl_write_file(p, data, cut, 0600);
        casenet_keys *k2 = NULL;
        int rc = casenet_keys_load(p, &k2);
        CN_ERR(rc, CASENET_EBADREQ);
        assert_null(k2);
    }
    uint8_t junk[200];
    randombytes_buf(junk, sizeof junk);
    tl_write_file(p, junk, sizeof junk, 0600);
    casenet_keys *k2 = NULL;
    CN_ERR(casenet_keys_load(p, &k2), CASENET_EBADREQ);
    free(p);
    free(data);
}

/* Writes a key file whose pair `which` is altered by fn. */
static int load_altered(struct fx *f, void (*fn)(Casenet__V1__KeyPair *))
{
    CN_OK(casenet_keys_save(f->k, f->sec, NULL));
    size_t len;
    uint8_t *data = tl_read_file(f->sec, &len);
    Casenet__V1__SecretKeyFile *sf = casenet__v1__secret_key_file__unpack(NULL, len, data);
    assert_non_null(sf);
    fn(sf->keys[0]);
    size_t n = casenet__v1__secret_key_file__get_packed_size(sf);
    uint8_t *out = malloc(n);
    casenet__v1__secret_key_file__pack(sf, out);
    char *p = tl_path(f->dir, "altered.key");
    tl_write_file(p, out, n, 0600);
    casenet_keys *k2 = NULL;
    int rc = casenet_keys_load(p, &k2);
    casenet_keys_free(k2);
    free(p);
    free(out);
    casenet__v1__secret_key_file__free_unpacked(sf, NULL);
    free(data);
    return rc;
}

static void swap_secret(Casenet__V1__KeyPair *kp)
{
    /* Another Ed25519 secret: the public key no longer matches. */
    uint8_t pk[32];
    crypto_sign_keypair(pk, kp->secret_key.data);
}

static void flip_public(Casenet__V1__KeyPair *kp)
{
    /* Keep the key id consistent with the altered key: only the pairing is wrong. */
    kp->public_key.data[5] ^= 1;
    char id[17];
    cn_key_id(kp->public_key.data, 32, id);
    memcpy(kp->key_id, id, 17);
}

static void bad_key_id(Casenet__V1__KeyPair *kp)
{
    kp->key_id[0] = kp->key_id[0] == '0' ? '1' : '0';
}

static void short_secret(Casenet__V1__KeyPair *kp)
{
    kp->secret_key.len = 32;
}

static void test_mismatched_pair(void **state)
{
    struct fx *f = *state;
    CN_ERR(load_altered(f, swap_secret), CASENET_EBADREQ);
}

static void test_mismatched_public(void **state)
{
    struct fx *f = *state;
    CN_ERR(load_altered(f, flip_public), CASENET_EBADREQ);
}

static void test_bad_key_id(void **state)
{
    struct fx *f = *state;
    CN_ERR(load_altered(f, bad_key_id), CASENET_EBADREQ);
}

static void test_short_secret(void **state)
{
    struct fx *f = *state;
    CN_ERR(load_altered(f, short_secret), CASENET_EBADREQ);
}

static void test_authority(void **state)
{
    struct fx *f = *state;
    casenet_keys *a = NULL;
    CN_OK(casenet_keys_generate_authority(5, &a));
    assert_string_equal(casenet_keys_member_id(a), "authority");
    assert_null(casenet_keys_curve_pk(a));
    char *sec = tl_path(f->dir, "authority.key"), *pub = tl_path(f->dir, "authority.pub");
    CN_OK(casenet_keys_save(a, sec, pub));
    uint8_t pk[32];
    CN_OK(casenet_authority_pk_load(pub, pk));
    assert_memory_equal(pk, casenet_keys_sign_pk(a, NULL), 32);
    /* A member's public file is not an authority key. */
    CN_OK(casenet_keys_save(f->k, f->sec, f->pub));
    CN_ERR(casenet_authority_pk_load(f->pub, pk), CASENET_EBADREQ);
    casenet_keys *a2 = NULL;
    CN_OK(casenet_keys_load(sec, &a2));
    assert_memory_equal(casenet_keys_sign_pk(a2, NULL), casenet_keys_sign_pk(a, NULL), 32);
    casenet_keys_free(a2);
    casenet_keys_free(a);
    free(sec);
    free(pub);
}

/* The pinned root of trust is one key: an authority file that offers a
 * second signing key (say, appended by whoever could write it) is refused
 * rather than resolved by picking one. */
static void test_authority_one_key(void **state)
{
    struct fx *f = *state;
    casenet_keys *a = NULL, *other = NULL;
    CN_OK(casenet_keys_generate_authority(5, &a));
    CN_OK(casenet_keys_generate_authority(9, &other));
    char *sec = tl_path(f->dir, "authority.key"), *pub = tl_path(f->dir, "authority.pub");
    char *sec2 = tl_path(f->dir, "other.key"), *pub2 = tl_path(f->dir, "other.pub");
    CN_OK(casenet_keys_save(a, sec, pub));
    CN_OK(casenet_keys_save(other, sec2, pub2));

    /* Public file: the other authority's key appended to ours. */
    size_t n1, n2;
    uint8_t *d1 = tl_read_file(pub, &n1), *d2 = tl_read_file(pub2, &n2);
    Casenet__V1__PublicKeyFile *f1 = casenet__v1__public_key_file__unpack(NULL, n1, d1);
    Casenet__V1__PublicKeyFile *f2 = casenet__v1__public_key_file__unpack(NULL, n2, d2);
    assert_non_null(f1);
    assert_non_null(f2);
    assert_int_equal(f1->n_keys, 1);
    Casenet__V1__PublicKey *both[2] = {f1->keys[0], f2->keys[0]};
    Casenet__V1__PublicKey **saved = f1->keys;
    f1->keys = both;
    f1->n_keys = 2;
    size_t n = casenet__v1__public_key_file__get_packed_size(f1);
    uint8_t *out = malloc(n);
    assert_non_null(out);
    casenet__v1__public_key_file__pack(f1, out);
    f1->keys = saved;
    f1->n_keys = 1;
    char *two = tl_path(f->dir, "two.pub");
    tl_write_file(two, out, n, 0644);
    uint8_t pk[32];
    CN_ERR(casenet_authority_pk_load(two, pk), CASENET_EBADREQ);
    CN_OK(casenet_authority_pk_load(pub, pk));

    /* Secret keyring: a second signing pair is refused the same way. */
    size_t s1, s2;
    uint8_t *k1 = tl_read_file(sec, &s1), *k2 = tl_read_file(sec2, &s2);
    Casenet__V1__SecretKeyFile *sf1 = casenet__v1__secret_key_file__unpack(NULL, s1, k1);
    Casenet__V1__SecretKeyFile *sf2 = casenet__v1__secret_key_file__unpack(NULL, s2, k2);
    assert_non_null(sf1);
    assert_non_null(sf2);
    Casenet__V1__KeyPair *pairs[2] = {sf1->keys[0], sf2->keys[0]};
    Casenet__V1__KeyPair **saved_pairs = sf1->keys;
    sf1->keys = pairs;
    sf1->n_keys = 2;
    size_t m = casenet__v1__secret_key_file__get_packed_size(sf1);
    uint8_t *out2 = malloc(m);
    assert_non_null(out2);
    casenet__v1__secret_key_file__pack(sf1, out2);
    sf1->keys = saved_pairs;
    sf1->n_keys = 1;
    char *two_sec = tl_path(f->dir, "two.key");
    tl_write_file(two_sec, out2, m, 0600);
    casenet_keys *loaded = NULL;
    CN_ERR(casenet_keys_load(two_sec, &loaded), CASENET_EBADREQ);
    assert_null(loaded);

    casenet__v1__secret_key_file__free_unpacked(sf1, NULL);
    casenet__v1__secret_key_file__free_unpacked(sf2, NULL);
    casenet__v1__public_key_file__free_unpacked(f1, NULL);
    casenet__v1__public_key_file__free_unpacked(f2, NULL);
    free(out);
    free(out2);
    free(d1);
    free(d2);
    free(k1);
    free(k2);
    free(two);
    free(two_sec);
    free(sec);
    free(pub);
    free(sec2);
    free(pub2);
    casenet_keys_free(a);
    casenet_keys_free(other);
}

static void test_invalid_ids(void **state)
{
    (void)state;
    casenet_keys *k = NULL;
    CN_ERR(casenet_keys_generate("Bad_ID", 1, &k), CASENET_EINVAL);
    CN_ERR(casenet_keys_generate("authority", 1, &k), CASENET_EINVAL);
    CN_ERR(casenet_keys_generate("", 1, &k), CASENET_EINVAL);
    assert_null(k);
}

static void test_deterministic(void **state)
{
    (void)state;
    uint8_t seed[32] = {1}, box[32] = {2}, curve[32] = {3};
    casenet_keys *a = NULL, *b = NULL;
    CN_OK(cn_keys_from_secrets("vn.a", seed, box, curve, 7, &a));
    CN_OK(cn_keys_from_secrets("vn.a", seed, box, curve, 7, &b));
    assert_memory_equal(casenet_keys_sign_pk(a, NULL), casenet_keys_sign_pk(b, NULL), 32);
    uint8_t pk[32];
    crypto_scalarmult_base(pk, curve);
    assert_memory_equal(casenet_keys_curve_pk(a), pk, 32);
    casenet_keys_free(a);
    casenet_keys_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_readable_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mismatched_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mismatched_public, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_key_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authority_one_key, setup, teardown),
        cmocka_unit_test(test_invalid_ids),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
