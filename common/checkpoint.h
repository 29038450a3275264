/*
 * checkpoint.h - signed tree heads of the audit log as C2SP checkpoints
 * (c2sp.org/tlog-checkpoint) inside C2SP signed notes (c2sp.org/signed-note),
 * Ed25519 only. Internal to libcasenet and casenetd (prefix ckpt_).
 * proto/PROTOCOL.md §10.3 specifies the bytes.
 *
 * A casenet checkpoint is exactly:
 *
 *     <origin>\n                 casenet.audit/<network>
 *     <size>\n                   decimal, no leading zeros
 *     <root>\n                   standard base64 of the 32-byte root, padded
 *     time <ms>\n                decimal ms since the epoch, no leading zeros
 *     \n
 *     — <key name> <base64(key id || Ed25519 signature)>\n
 *
 * The signature is over the first four lines (the note text, final newline
 * included); key id = SHA-256(key name || 0x0A || 0x01 || pk)[0..4); the key
 * name of the broker is its member id.
 *
 * Errors: CASENET_EBADREQ for anything that is not exactly this format
 * (nothing is "repaired"), CASENET_EBADSIG when the format is right but the
 * signature line is not by the expected key or does not verify.
 */
#ifndef CASENET_CHECKPOINT_H
#define CASENET_CHECKPOINT_H

#include "casenet.h"

#include <stddef.h>
#include <stdint.h>

#define CKPT_ORIGIN_PREFIX    "casenet.audit/"
#define CKPT_ORIGIN_MAX       255 /* characters of an origin line */
#define CKPT_KEY_NAME_MAX     255 /* characters of a signed-note key name */
#define CKPT_KEY_ID_BYTES     4
#define CKPT_ROOT_BYTES       32
#define CKPT_SIG_TYPE_ED25519 0x01
/* Largest casenet checkpoint: a 255-character origin and key name still fit
 * (4 + 255 + 21 + 45 + 25 + 1 + 4 + 255 + 1 + 92 + 1 = 704). */
#define CKPT_MAX_BYTES 1024
/* Largest signed note the generic verifier reads, and most signature lines. */
#define CKPT_NOTE_MAX      (64u * 1024u)
#define CKPT_NOTE_SIGS_MAX 100

/* A tree head: what a checkpoint says. */
struct ckpt_head {
    char origin[CKPT_ORIGIN_MAX + 1];
    uint64_t size;
    uint8_t root[CKPT_ROOT_BYTES];
    int64_t time_ms; /* >= 0 */
};

/* Writes "casenet.audit/<network>" to out. CASENET_EINVAL when network is
 * empty or the origin would be longer than CKPT_ORIGIN_MAX or hold a byte
 * outside 0x21..0x7E or a '+' (out is then ""). */
CASENET_NODISCARD int ckpt_origin(const char *network, char out[CKPT_ORIGIN_MAX + 1]);

/* The signed-note key id: SHA-256(name || 0x0A || 0x01 || pk)[0..4). */
void ckpt_key_id(const char *name, const uint8_t pk[CASENET_SIGN_PK_BYTES],
                 uint8_t out[CKPT_KEY_ID_BYTES]);

/* Signs head h with the keyring's current signing key under key name =
 * casenet_keys_member_id(k). *out receives the checkpoint (malloc'd; free
 * with casenet_buf_free). CASENET_EINVAL when h's origin is not a valid
 * origin line or time_ms < 0; CASENET_ENOMEM. */
CASENET_NODISCARD int ckpt_sign(const casenet_keys *k, const struct ckpt_head *h, casenet_buf *out);

/* Parses a casenet checkpoint WITHOUT checking its signature: for ordering and
 * error messages only, never for trust. Checks the whole format (the
 * signature line's shape included). CASENET_EBADREQ when malformed; out is
 * written only on success. */
CASENET_NODISCARD int ckpt_parse(const uint8_t *buf, size_t len, struct ckpt_head *out);

/* Parses and verifies a casenet checkpoint: the exact format above with
 * exactly one signature line, by key name key_name with the key id of pk,
 * whose signature verifies under pk; when origin is not NULL the origin line
 * must equal it. CASENET_EBADREQ when malformed or of another origin,
 * CASENET_EBADSIG when the name, key id or signature do not match. out is
 * written only on success. */
CASENET_NODISCARD int ckpt_verify(const uint8_t *buf, size_t len, const char *key_name,
                                  const uint8_t pk[CASENET_SIGN_PK_BYTES], const char *origin,
                                  struct ckpt_head *out);

/* Generic C2SP signed-note verification (any text, any number of signature
 * lines; lines by other keys are ignored, as the spec asks). The note must
 * be valid UTF-8 without control characters other than newline, hold a text
 * ending in a newline, a blank line and 1..CKPT_NOTE_SIGS_MAX signature lines
 * in canonical base64. CASENET_OK when a line with key_name and the key id of
 * pk carries a valid Ed25519 signature of the text; *text_len (may be NULL)
 * is then the text's length (the text is note[0..*text_len)).
 * CASENET_EBADREQ when malformed, CASENET_EBADSIG when no line of that key
 * verifies. */
CASENET_NODISCARD int ckpt_note_verify(const uint8_t *note, size_t len, const char *key_name,
                                       const uint8_t pk[CASENET_SIGN_PK_BYTES], size_t *text_len);

/* Parses a signed-note verifier key "<name>+<8 hex key id>+<base64(0x01 ||
 * pk)>" (the form C2SP and Go's golang.org/x/mod/sumdb/note print). The key id
 * must be the one computed from name and pk. CASENET_EBADREQ otherwise.
 * name receives the key name (NUL-terminated). */
CASENET_NODISCARD int ckpt_vkey_parse(const char *vkey, char name[CKPT_KEY_NAME_MAX + 1],
                                      uint8_t pk[CASENET_SIGN_PK_BYTES]);

#endif /* CASENET_CHECKPOINT_H */
