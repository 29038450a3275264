/*
 * fuzz_net.h - the fixed test network shared by the libFuzzer harnesses and
 * the seed corpus generator (make_corpus.c): keyrings from fixed seeds and a
 * directory signed at fixed times, so the same bytes come out on every run
 * and the committed seeds keep verifying. Test code; aborts on any failure.
 */
#ifndef CASENET_FUZZ_NET_H
#define CASENET_FUZZ_NET_H

#include "casenet.h"
#include "tl_net.h"

#include <stddef.h>
#include <stdint.h>

/* The network is built at FZ_T0_MS (2026-01-01T00:00:00Z); vn.hotline's keys
 * are rotated at FZ_ROTATE_MS; the harnesses run at FZ_NOW_MS. */
#define FZ_T0_MS       1767225600000LL
#define FZ_ROTATE_MS   (FZ_T0_MS + 1000)
#define FZ_NOW_MS      (FZ_T0_MS + 60000)
#define FZ_VALIDITY_MS (24LL * 3600 * 1000)

/* Domain strings of the signatures the harnesses re-sign (PROTOCOL.md §1). */
#define FZ_DIR_DOMAIN            "casenet.directory.v1"
#define FZ_RECEIPT_DOMAIN        "casenet.receipt.v1"
#define FZ_SUBMIT_RECEIPT_DOMAIN "casenet.submit-receipt.v1"

/* Indexes into net->ids / net->keys. FZ_HOTLINE_OLD is vn.hotline's keyring
 * from before the rotation (the same id again; tl_net_keys finds the current
 * one first). */
enum {
    FZ_BROKER = 0,  /* "broker", role broker */
    FZ_POLICE,      /* "vn.police", responder, group police */
    FZ_HOTLINE,     /* "vn.hotline", intake, group hotlines, rotated */
    FZ_PLATFORM,    /* "platform.x", platform, group platforms */
    FZ_COURT,       /* "vn.court", responder, suspended */
    FZ_NGO,         /* "old.ngo", intake, revoked */
    FZ_HOTLINE_OLD, /* "vn.hotline" before FZ_ROTATE_MS */
    FZ_N
};

/* The authority keyring alone (what fuzz_directory needs); caller frees. */
casenet_keys *fz_authority(void);

/* The whole network: net->dir parsed at FZ_NOW_MS, net->now_ms = FZ_NOW_MS.
 * Every SignedDirectory the authority issued on the way, oldest first, is
 * stored in history[0..*n_history) when history is not NULL (caller frees
 * each with casenet_buf_free); at most FZ_HISTORY_MAX. Free with
 * tl_net_free. */
#define FZ_HISTORY_MAX 16
tl_net *fz_net_new(casenet_buf *history, size_t *n_history);

/* Signs PAE(domain, body) with sign_sk (64 B) into sig (64 B). */
void fz_sign(const char *domain, const uint8_t *body, size_t len, const uint8_t *sign_sk,
             uint8_t sig[CASENET_SIGNATURE_BYTES]);

#endif
