/*
 * hashbank_digest.h - the md5, sha1 and sha256 of a file, in lowercase hex,
 * for `casenet hashes contribute FILE...` (hashbank_digest.c).
 */
#ifndef CASENET_HASHBANK_DIGEST_H
#define CASENET_HASHBANK_DIGEST_H

#include "casenet.h"

#include <stdbool.h>

struct hashbank_digests {
    char md5[33], sha1[41], sha256[65];
};

/* Reads the file at path once and fills d. CASENET_EIO (errno set) when it
 * cannot be opened or read. */
CASENET_NODISCARD int hashbank_digest_file(const char *path, struct hashbank_digests *d);

#endif
