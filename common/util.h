/*
 * util.h - internal helpers shared by libcasenet, the broker and the CLI:
 * clocks, whole-file I/O with atomic replacement, the pre-authentication
 * encoding (PAE) and key ids; the hex codec through hex.h. Not part of the
 * public API.
 */
#ifndef CASENET_UTIL_H
#define CASENET_UTIL_H

#include "casenet.h"
#include "hex.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Wall-clock time in ms since the epoch (CLOCK_REALTIME). */
int64_t cn_now_ms(void);
/* Monotonic time in ms (CLOCK_MONOTONIC): for timeouts and intervals. */
int64_t cn_mono_ms(void);

/* Reads the whole file at path into out (malloc'd). CASENET_EIO when it
 * cannot be read, CASENET_ETOOLARGE when it is larger than max bytes. */
CASENET_NODISCARD int cn_read_file(const char *path, size_t max, casenet_buf *out);
/* Replaces path atomically with data: writes a temporary file beside it with
 * the given mode, fsyncs it, renames it over path and fsyncs the directory.
 * With exclusive set, fails with CASENET_EINVAL if path already exists.
 * On failure the old file (if any) is untouched and no temporary remains. */
CASENET_NODISCARD int cn_write_file_atomic(const char *path, const void *data, size_t len,
                                           mode_t mode, bool exclusive);

/* Pre-authentication encoding: LE64(n + 1) || LE64(|domain|) || domain ||
 * for each part: LE64(|part|) || part. The bytes a signature or an AEAD's
 * associated data cover; see proto/PROTOCOL.md section 1. out is malloc'd. */
CASENET_NODISCARD int cn_pae(const char *domain, size_t n, const uint8_t *const parts[],
                             const size_t lens[], casenet_buf *out);

/* Key id of a public key: lowercase hex of the first 8 bytes of its SHA-256
 * (CASENET_KEY_ID_CHARS characters plus a NUL). */
void cn_key_id(const uint8_t *key, size_t len, char out[CASENET_KEY_ID_CHARS + 1]);

/* SHA-256 of data. */
void cn_sha256(const uint8_t *data, size_t len, uint8_t out[CASENET_HASH_BYTES]);

/* Copies the NUL-terminated src into dst[cap]; CASENET_EINVAL (dst = "") if
 * it does not fit. */
CASENET_NODISCARD int cn_strlcpy(char *dst, const char *src, size_t cap);

/* The endpoint forms casenet takes, for messages about a bad one. */
#define CN_ENDPOINT_FORMS "tcp://HOST:PORT (e.g. tcp://broker.example:7400) or ipc://PATH"
/* The same for a client's broker endpoint list (cn_endpoint_list_valid). */
#define CN_ENDPOINT_LIST_FORMS CN_ENDPOINT_FORMS ", or several separated by commas"

/* True when ep is a ZeroMQ endpoint casenet can use: tcp://HOST:PORT with a
 * port 1..65535 (or '*' when bind: any free port) or ipc://PATH. Checked
 * where an endpoint is given (CLI options, the home, casenetd's config), so
 * that a mistake is named at once instead of as a later time-out. */
bool cn_endpoint_valid(const char *ep, bool bind);
/* True when list is one endpoint cn_endpoint_valid accepts (bind false), or
 * several separated by commas (brokers sharing one store; the client library
 * connects to all of them). */
bool cn_endpoint_list_valid(const char *list);

#endif
