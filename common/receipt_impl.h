/* receipt_impl.h - the broker's Submit receipt in two steps (internal to
 * libcasenet and casenetd): build it with a zero signature, sign it later,
 * so that casenetd can sign off its loop thread (broker/server.c). */
#ifndef CASENET_RECEIPT_IMPL_H
#define CASENET_RECEIPT_IMPL_H

#include "casenet.h"

#include <stddef.h>
#include <stdint.h>

/* Builds the packed BrokerReceipt for r under broker's current signing key,
 * with a signature of CASENET_SIGNATURE_BYTES zero bytes: the receipt's last
 * CASENET_SIGNATURE_BYTES bytes (field 2 follows field 1 in the packing), and
 * the bytes the signature covers, PAE(submit-receipt domain, body). Writing
 * cn_submit_receipt_sign_pae(sk, pae) over those last bytes gives exactly
 * what casenet_submit_receipt_sign returns (Ed25519 is deterministic). On
 * success the caller owns *receipt and *pae; on error neither is touched.
 * CASENET_EINVAL (NULL, r->broker_id not broker's id), CASENET_ENOMEM. */
CASENET_NODISCARD int cn_submit_receipt_build(const casenet_keys *broker,
                                              const casenet_submit_receipt *r, casenet_buf *receipt,
                                              casenet_buf *pae);

/* The receipt's signature: Ed25519 of pae[0..len) with sign_sk (the broker's
 * cn_keys_sign_sk, read only: any thread may sign while the keys live). */
void cn_submit_receipt_sign_pae(const uint8_t *sign_sk, const uint8_t *pae, size_t len,
                                uint8_t sig[CASENET_SIGNATURE_BYTES]);

#endif
