/*
 * envelope_impl.h - the envelope's deterministic core, for tests and the
 * worked example of proto/PROTOCOL.md, and helpers shared with other modules.
 * casenet_seal draws random inputs and calls cn_seal_raw: one mechanism.
 * Internal to libcasenet.
 */
#ifndef CASENET_ENVELOPE_IMPL_H
#define CASENET_ENVELOPE_IMPL_H

#include "casenet.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define CN_ENVELOPE_VERSION 1
#define CN_ENVELOPE_DOMAIN  "casenet.envelope.v1"
#define CN_PAYLOAD_DOMAIN   "casenet.payload.v1"

/* One recipient as cn_seal_raw wraps for it: its box key (from the
 * directory) and the ephemeral X25519 key pair of its sealed box. */
struct cn_seal_recipient {
    const char *id;
    const char *box_key_id;
    const uint8_t *box_pk; /* 32 B */
    const uint8_t *eph_pk; /* 32 B */
    const uint8_t *eph_sk; /* 32 B */
};

/* Every input of an envelope. Values are written to the header as given (no
 * defaults, no directory checks, no payload check). */
struct cn_seal_params {
    const char *sender;
    const char *sign_key_id;
    const uint8_t *sign_sk; /* 64 B */
    casenet_kind kind;
    casenet_urgency urgency;
    casenet_msg_status status;
    int64_t created_at_ms;
    int64_t expires_at_ms;
    const uint8_t *in_reply_to; /* NULL or 16 B */
    const uint8_t *case_ref;    /* NULL or 16 B */
    const uint8_t *message_id;  /* 16 B */
    const uint8_t *nonce;       /* 24 B */
    const uint8_t *content_key; /* 32 B */
    const uint8_t *commit_key;  /* NULL = content_key; another key only in tests */
    size_t n_recipients;
    const struct cn_seal_recipient *recipients;
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t (*blob_ids)[CASENET_BLOB_ID_BYTES]; /* NULL or n_blob_ids ids */
    size_t n_blob_ids;
};

/* Builds, signs and serialises an envelope from p into *envelope (malloc'd).
 * CASENET_ECRYPTO when a box key is of low order, CASENET_ENOMEM. */
CASENET_NODISCARD int cn_seal_raw(const struct cn_seal_params *p, casenet_buf *envelope);

/* Serialises Envelope{header, signature = Ed25519(sign_sk, PAE(
 * "casenet.envelope.v1", header)), ciphertext} into *out. */
CASENET_NODISCARD int cn_envelope_pack(const uint8_t *header, size_t header_len,
                                       const uint8_t *sign_sk, const uint8_t *ciphertext,
                                       size_t ciphertext_len, casenet_buf *out);

/* The Payload oneof case (proto field number) a header kind requires, or 0
 * when the kind carries no payload (HASH_SHARE, RECEIPT, unknown). */
int cn_payload_case_for_kind(int kind);

/* A protobuf-c allocator whose free wipes the block: for unpacking
 * plaintext payloads. */
extern ProtobufCAllocator cn_wiping_allocator;

#endif
