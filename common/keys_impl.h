/*
 * keys_impl.h - what other libcasenet modules need from a keyring: the
 * current signing secret key, box secret keys by key id, and a deterministic
 * constructor for tests and the worked example. Internal to libcasenet.
 */
#ifndef CASENET_KEYS_IMPL_H
#define CASENET_KEYS_IMPL_H

#include "casenet.h"

#include <stddef.h>
#include <stdint.h>

/* Member id of the authority keyring. */
#define CN_AUTHORITY_ID "authority"
/* Largest key file accepted by casenet_keys_load and casenet_authority_pk_load. */
#define CN_KEY_FILE_MAX (64u * 1024u)
/* Most key pairs in one keyring. */
#define CN_KEYS_MAX 64

/* The current signing secret key (64 B, seed || pk; borrowed from k, valid
 * while k lives) and its key id. Every keyring has one. */
const uint8_t *cn_keys_sign_sk(const casenet_keys *k, const char **key_id);

/* The box secret key whose public key has id key_id (borrowed), with its
 * public key in *pk when pk is not NULL; NULL when the keyring has none. Old
 * box keys stay in a keyring, so old mail can be read. */
const uint8_t *cn_keys_box_sk(const casenet_keys *k, const char *key_id, const uint8_t **pk);

/* How many box keys of `old` the keyring k lacks; the first one's id goes
 * to first (when any). `casenet init --force` refuses to drop them. */
size_t cn_keys_box_missing(const casenet_keys *k, const casenet_keys *old,
                           char first[CASENET_KEY_ID_CHARS + 1]);

/* Builds a keyring from given secrets (one mechanism with
 * casenet_keys_generate, which passes random ones): an Ed25519 key from
 * sign_seed (32 B) and, when not NULL, an X25519 box key box_sk and a CURVE
 * key curve_sk (32 B each), all created at now_ms. CASENET_EINVAL for an
 * invalid member id; CASENET_ENOMEM. */
CASENET_NODISCARD int cn_keys_from_secrets(const char *member_id, const uint8_t *sign_seed,
                                           const uint8_t *box_sk, const uint8_t *curve_sk,
                                           int64_t now_ms, casenet_keys **out);

#endif
