/*
 * attach_impl.h - the attachment chunk decoder (PROTOCOL.md §4.9) shared by
 * attach.c's download and the fuzz harness. Internal.
 */
#ifndef CASENET_ATTACH_IMPL_H
#define CASENET_ATTACH_IMPL_H

#include "casenet.h"

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

/* The secretstream state of a's stream, before its first chunk (init_pull
 * with a's key and header). CASENET_ECRYPTO when libsodium refuses. */
CASENET_NODISCARD int cn_attach_stream(const casenet_attachment *a,
                                       crypto_secretstream_xchacha20poly1305_state *st);

/* Decrypts chunk `index` of a (len bytes of ciphertext) with st, advanced
 * past the chunks before it, into pt (room for a->chunk_size) and *mlen.
 * CASENET_ECRYPTO when it does not authenticate, is out of its place (the
 * FINAL tag on any chunk but the last, or missing on the last) or has an
 * impossible length; CASENET_ECOMMIT when a chunk but the last holds other
 * than chunk_size bytes. */
CASENET_NODISCARD int cn_attach_chunk_open(crypto_secretstream_xchacha20poly1305_state *st,
                                           const casenet_attachment *a, uint32_t index,
                                           const uint8_t *chunk, size_t len, uint8_t *pt,
                                           size_t *mlen);

#endif
