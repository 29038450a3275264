/*
 * crypto.h - thin, size-typed wrappers over the libsodium primitives that
 * libcasenet uses: Ed25519 detached signatures, XChaCha20-Poly1305 (IETF),
 * sealed boxes (random and deterministic), X25519 and the BLAKE2b key
 * commitment. The known-answer tests (tests/unit/test_crypto.c) run through
 * exactly these functions. Internal to libcasenet.
 */
#ifndef CASENET_CRYPTO_H
#define CASENET_CRYPTO_H

#include "casenet.h"

#include <stddef.h>
#include <stdint.h>

#define CN_SIGN_SEED_BYTES 32
#define CN_AEAD_TAG_BYTES  16
#define CN_X25519_BYTES    32
#define CN_BOX_MAC_BYTES   16
/* A sealed box is epk || crypto_box_easy(m): 32 + 16 + |m| bytes. */
#define CN_SEAL_OVERHEAD (CN_X25519_BYTES + CN_BOX_MAC_BYTES)
/* The key-commitment message (no NUL). */
#define CN_KEY_COMMIT_MSG "casenet.key-commit.v1"

/* Ed25519 key pair from a 32-byte seed; sk = seed || pk (libsodium layout). */
void cn_sign_seed_keypair(uint8_t pk[static CASENET_SIGN_PK_BYTES],
                          uint8_t sk[static CASENET_SIGN_SK_BYTES],
                          const uint8_t seed[static CN_SIGN_SEED_BYTES]);
/* Ed25519 detached signature of m[0..mlen) with sk (deterministic). */
void cn_sign(uint8_t sig[static CASENET_SIGNATURE_BYTES], const uint8_t *m, size_t mlen,
             const uint8_t sk[static CASENET_SIGN_SK_BYTES]);
/* CASENET_OK when sig is a valid signature of m by pk, CASENET_EBADSIG
 * otherwise (including non-canonical encodings libsodium rejects). */
CASENET_NODISCARD int cn_sign_verify(const uint8_t sig[static CASENET_SIGNATURE_BYTES],
                                     const uint8_t *m, size_t mlen,
                                     const uint8_t pk[static CASENET_SIGN_PK_BYTES]);

/* XChaCha20-Poly1305 (IETF) encryption: c receives mlen + CN_AEAD_TAG_BYTES
 * bytes (ciphertext || tag). c and m may not overlap. */
void cn_aead_encrypt(uint8_t *c, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[static CASENET_NONCE_BYTES],
                     const uint8_t key[static CASENET_CONTENT_KEY_BYTES]);
/* Decrypts c[0..clen) (ciphertext || tag) into m (clen - 16 bytes).
 * CASENET_ECRYPTO when clen < 16 or the tag does not verify; m is then
 * wiped. */
CASENET_NODISCARD int cn_aead_decrypt(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad,
                                      size_t adlen, const uint8_t nonce[static CASENET_NONCE_BYTES],
                                      const uint8_t key[static CASENET_CONTENT_KEY_BYTES]);

/* X25519: q = n * p. CASENET_ECRYPTO when the result is all zero (p of low
 * order), as libsodium refuses. */
CASENET_NODISCARD int cn_x25519(uint8_t q[static CN_X25519_BYTES],
                                const uint8_t n[static CN_X25519_BYTES],
                                const uint8_t p[static CN_X25519_BYTES]);
/* X25519 public key of secret sk. */
void cn_x25519_base(uint8_t pk[static CN_X25519_BYTES], const uint8_t sk[static CN_X25519_BYTES]);

/* crypto_box_seal(m) to rpk with a fresh ephemeral key: out receives
 * CN_SEAL_OVERHEAD + mlen bytes. Same construction as cn_box_seal_det with a
 * random ephemeral key pair (which is wiped). */
CASENET_NODISCARD int cn_box_seal(uint8_t *out, const uint8_t *m, size_t mlen,
                                  const uint8_t rpk[static CN_X25519_BYTES]);
/* The sealed-box construction with a given ephemeral key pair (epk, esk):
 * out = epk || crypto_box_easy(m, nonce = BLAKE2b-192(epk || rpk), rpk, esk).
 * crypto_box_seal_open opens it. For tests and the worked example; production
 * code reaches it only through cn_box_seal. CASENET_ECRYPTO on a low-order
 * rpk. */
CASENET_NODISCARD int cn_box_seal_det(uint8_t *out, const uint8_t *m, size_t mlen,
                                      const uint8_t rpk[static CN_X25519_BYTES],
                                      const uint8_t epk[static CN_X25519_BYTES],
                                      const uint8_t esk[static CN_X25519_BYTES]);
/* crypto_box_seal_open: m receives clen - CN_SEAL_OVERHEAD bytes.
 * CASENET_ECRYPTO when c is too short or does not open (m is then wiped). */
CASENET_NODISCARD int cn_box_seal_open(uint8_t *m, const uint8_t *c, size_t clen,
                                       const uint8_t pk[static CN_X25519_BYTES],
                                       const uint8_t sk[static CN_X25519_BYTES]);

/* Key commitment: BLAKE2b-256 keyed with the content key over the 21 bytes
 * "casenet.key-commit.v1" (crypto_generichash, no NUL). */
void cn_key_commit(uint8_t out[static CASENET_HASH_BYTES],
                   const uint8_t key[static CASENET_CONTENT_KEY_BYTES]);

#endif
