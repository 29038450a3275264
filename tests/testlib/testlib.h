/*
 * testlib.h - small helpers shared by the cmocka unit tests: temporary
 * directories, files, hex and the public test vectors.
 * Every function aborts the test process on an unexpected failure (these are
 * test fixtures, not production code).
 */
#ifndef CASENET_TESTLIB_H
#define CASENET_TESTLIB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh directory under $TMPDIR (or /tmp); malloc'd path. */
char *tl_tmpdir(void);
/* Removes path and everything below it. */
void tl_rmrf(const char *path);
/* Joins a directory and a file name; malloc'd. */
char *tl_path(const char *dir, const char *name);
/* The whole file, NUL-terminated (the NUL is not counted in *len); malloc'd. */
uint8_t *tl_read_file(const char *path, size_t *len);
void tl_write_file(const char *path, const void *data, size_t len, unsigned mode);
/* Decodes lowercase or uppercase hex; returns the byte count or -1. */
long tl_unhex(const char *hex, uint8_t *out, size_t cap);
/* Encodes to lowercase hex into out (2*len+1 bytes). */
void tl_hex(const uint8_t *in, size_t len, char *out);
/* The public test vector directory ($CASENET_TESTVECTORS), or NULL. */
const char *tl_vectors_dir(void);
/* A JSON file below the vector directory; NULL when absent. */
json_t *tl_load_vector(const char *relpath);

#endif
