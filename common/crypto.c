/* crypto.c - size-typed wrappers over libsodium (see crypto.h). */
#include "crypto.h"

#include <sodium.h>
#include <string.h>

_Static_assert(CASENET_SIGN_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "sign pk");
_Static_assert(CASENET_SIGN_SK_BYTES == crypto_sign_SECRETKEYBYTES, "sign sk");
_Static_assert(CN_SIGN_SEED_BYTES == crypto_sign_SEEDBYTES, "sign seed");
_Static_assert(CASENET_SIGNATURE_BYTES == crypto_sign_BYTES, "signature");
_Static_assert(CASENET_BOX_PK_BYTES == crypto_box_PUBLICKEYBYTES, "box pk");
_Static_assert(CASENET_BOX_SK_BYTES == crypto_box_SECRETKEYBYTES, "box sk");
_Static_assert(CN_X25519_BYTES == crypto_scalarmult_BYTES, "x25519");
_Static_assert(CN_X25519_BYTES == crypto_scalarmult_SCALARBYTES, "x25519 scalar");
_Static_assert(CASENET_CONTENT_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key");
_Static_assert(CASENET_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
_Static_assert(CN_AEAD_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag");
_Static_assert(CN_BOX_MAC_BYTES == crypto_box_MACBYTES, "box mac");
_Static_assert(CN_SEAL_OVERHEAD == crypto_box_SEALBYTES, "seal overhead");
_Static_assert(CASENET_SEALED_KEY_BYTES == crypto_box_SEALBYTES + CASENET_CONTENT_KEY_BYTES,
               "sealed key");
_Static_assert(crypto_box_NONCEBYTES == 24, "box nonce");
_Static_assert(CASENET_HASH_BYTES <= crypto_generichash_BYTES_MAX, "blake2b out");
_Static_assert(CASENET_CONTENT_KEY_BYTES >= crypto_generichash_KEYBYTES_MIN &&
                   CASENET_CONTENT_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX,
               "blake2b key");

void cn_sign_seed_keypair(uint8_t pk[static CASENET_SIGN_PK_BYTES],
                          uint8_t sk[static CASENET_SIGN_SK_BYTES],
                          const uint8_t seed[static CN_SIGN_SEED_BYTES])
{
    /* Cannot fail for a 32-byte seed. */
    (void)crypto_sign_seed_keypair(pk, sk, seed);
}

void cn_sign(uint8_t sig[static CASENET_SIGNATURE_BYTES], const uint8_t *m, size_t mlen,
             const uint8_t sk[static CASENET_SIGN_SK_BYTES])
{
    (void)crypto_sign_detached(sig, NULL, m, mlen, sk);
}

int cn_sign_verify(const uint8_t sig[static CASENET_SIGNATURE_BYTES], const uint8_t *m, size_t mlen,
                   const uint8_t pk[static CASENET_SIGN_PK_BYTES])
{
    return crypto_sign_verify_detached(sig, m, mlen, pk) == 0 ? CASENET_OK : CASENET_EBADSIG;
}

void cn_aead_encrypt(uint8_t *c, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[static CASENET_NONCE_BYTES],
                     const uint8_t key[static CASENET_CONTENT_KEY_BYTES])
{
    (void)crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, m, mlen, ad, adlen, NULL, nonce, key);
}

int cn_aead_decrypt(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
                    const uint8_t nonce[static CASENET_NONCE_BYTES],
                    const uint8_t key[static CASENET_CONTENT_KEY_BYTES])
{
    if (clen < CN_AEAD_TAG_BYTES)
        return CASENET_ECRYPTO;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL, c, clen, ad, adlen, nonce, key) !=
        0) {
        sodium_memzero(m, clen - CN_AEAD_TAG_BYTES);
        return CASENET_ECRYPTO;
    }
    return CASENET_OK;
}

int cn_x25519(uint8_t q[static CN_X25519_BYTES], const uint8_t n[static CN_X25519_BYTES],
              const uint8_t p[static CN_X25519_BYTES])
{
    return crypto_scalarmult(q, n, p) == 0 ? CASENET_OK : CASENET_ECRYPTO;
}

void cn_x25519_base(uint8_t pk[static CN_X25519_BYTES], const uint8_t sk[static CN_X25519_BYTES])
{
    (void)crypto_scalarmult_base(pk, sk);
}

/* The sealed-box nonce: BLAKE2b with 24 bytes of output over epk || rpk. */
static void seal_nonce(uint8_t nonce[static crypto_box_NONCEBYTES],
                       const uint8_t epk[static CN_X25519_BYTES],
                       const uint8_t rpk[static CN_X25519_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, crypto_box_NONCEBYTES);
    crypto_generichash_update(&st, epk, CN_X25519_BYTES);
    crypto_generichash_update(&st, rpk, CN_X25519_BYTES);
    crypto_generichash_final(&st, nonce, crypto_box_NONCEBYTES);
}

int cn_box_seal_det(uint8_t *out, const uint8_t *m, size_t mlen,
                    const uint8_t rpk[static CN_X25519_BYTES],
                    const uint8_t epk[static CN_X25519_BYTES],
                    const uint8_t esk[static CN_X25519_BYTES])
{
    uint8_t nonce[crypto_box_NONCEBYTES];
    seal_nonce(nonce, epk, rpk);
    memcpy(out, epk, CN_X25519_BYTES);
    if (crypto_box_easy(out + CN_X25519_BYTES, m, mlen, nonce, rpk, esk) != 0) {
        sodium_memzero(out, CN_SEAL_OVERHEAD + mlen);
        return CASENET_ECRYPTO;
    }
    return CASENET_OK;
}

int cn_box_seal(uint8_t *out, const uint8_t *m, size_t mlen,
                const uint8_t rpk[static CN_X25519_BYTES])
{
    uint8_t epk[CN_X25519_BYTES], esk[CN_X25519_BYTES];
    crypto_box_keypair(epk, esk);
    int rc = cn_box_seal_det(out, m, mlen, rpk, epk, esk);
    sodium_memzero(esk, sizeof esk);
    return rc;
}

int cn_box_seal_open(uint8_t *m, const uint8_t *c, size_t clen,
                     const uint8_t pk[static CN_X25519_BYTES],
                     const uint8_t sk[static CN_X25519_BYTES])
{
    if (clen < CN_SEAL_OVERHEAD)
        return CASENET_ECRYPTO;
    if (crypto_box_seal_open(m, c, clen, pk, sk) != 0) {
        sodium_memzero(m, clen - CN_SEAL_OVERHEAD);
        return CASENET_ECRYPTO;
    }
    return CASENET_OK;
}

void cn_key_commit(uint8_t out[static CASENET_HASH_BYTES],
                   const uint8_t key[static CASENET_CONTENT_KEY_BYTES])
{
    static const char msg[] = CN_KEY_COMMIT_MSG;
    (void)crypto_generichash(out, CASENET_HASH_BYTES, (const uint8_t *)msg, sizeof msg - 1, key,
                             CASENET_CONTENT_KEY_BYTES);
}
