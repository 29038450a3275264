/*
 * dirview.h - reading a SignedDirectory for display: verification that can
 * tolerate expiry (to show or renew an expired directory) and the
 * human-readable and JSON listings of `casenet admin show` and
 * `casenet directory show`.
 */
#ifndef CASENET_CLI_DIRVIEW_H
#define CASENET_CLI_DIRVIEW_H

#include "casenet.h"

#include <stdbool.h>
#include <stdint.h>

/* Verifies bytes against authority_pk with min_version like
 * casenet_directory_parse at the current time. When the only fault is
 * expiry, it verifies the signature as of just before expiry, sets *expired
 * and succeeds. Returns a casenet_err; *out is the caller's on success. */
CASENET_NODISCARD int dirview_verify(const uint8_t *bytes, size_t len,
                                     const uint8_t authority_pk[32], uint64_t min_version,
                                     casenet_directory **out, bool *expired);

/* The expiry time of a serialised SignedDirectory, read without verifying
 * (CASENET_EBADREQ when malformed). */
CASENET_NODISCARD int dirview_expires_at(const uint8_t *bytes, size_t len, int64_t *out);

/* Prints the directory in bytes on stdout, read without verifying: version,
 * issued/expires (UTC), and each member's id, name, roles, groups, status and
 * key ids; with json, one JSON object. verdict is a line such as "signature
 * verified" (the "signature" field in JSON). Returns a casenet_err. */
CASENET_NODISCARD int dirview_print(const uint8_t *bytes, size_t len, bool json,
                                    const char *verdict, bool expired);

#endif
