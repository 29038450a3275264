/*
 * tl_net.h - a test network: an authority, member keyrings and the signed
 * directory that lists them, built through the public authority API. Aborts
 * on any failure (a fixture, not production code).
 */
#ifndef CASENET_TL_NET_H
#define CASENET_TL_NET_H

#include "casenet.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tl_net {
    casenet_keys *authority;
    uint8_t authority_pk[32];
    size_t n;
    char **ids;
    casenet_keys **keys;    /* keys[i] belongs to ids[i] */
    casenet_buf signed_dir; /* the current SignedDirectory bytes */
    casenet_directory *dir; /* parsed from signed_dir at now */
    int64_t now_ms;         /* the time the directory was built */
} tl_net;

/* Members as "id[:role,role[:group,group]]", e.g. "vn.police:responder:police". */
tl_net *tl_net_new(const char *const *members, size_t n);
void tl_net_free(tl_net *net);
/* The keyring of member id (aborts when unknown). */
casenet_keys *tl_net_keys(const tl_net *net, const char *id);
/* Re-parses signed_dir into dir (after an authority operation replaced it). */
void tl_net_reload(tl_net *net);
/* Adds (or re-adds) one member described as in tl_net_new with keyring k
 * (owned by the caller), re-signs, reloads. */
void tl_net_add(tl_net *net, const char *spec, const casenet_keys *k);
/* Sets a member's status, re-signs, reloads. */
void tl_net_set_status(tl_net *net, const char *id, casenet_member_status st);

/* A SignedReceipt for r signed with signer's current key WITHOUT the
 * library's content rules: what a non-conforming client could send, so tests
 * can check that the broker refuses it. */
casenet_buf tl_sign_receipt_raw(const casenet_keys *signer, const casenet_receipt *r);

/* A serialised Payload with a referral whose summary is text, carrying every
 * required field (PROTOCOL.md §6), urgency standard or the one given. */
casenet_buf tl_referral_payload(const char *text);
casenet_buf tl_referral_payload_urgency(const char *text, casenet_urgency urgency);

#endif
