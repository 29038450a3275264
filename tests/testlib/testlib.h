/*
 * testlib.h - small helpers shared by the cmocka unit tests: temporary
 * directories, files, hex, the public test vectors and assertions on
 * casenet_err results that name the error.
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

/* NULL when got == want; otherwise a message naming both casenet_err values,
 * e.g. "casenet_client_fetch(p, id, &e) returned NOT_FOUND (4: not found),
 * expected OK (0: success)", in a buffer of the calling thread that the next
 * call overwrites. */
const char *tl_err_mismatch(int got, int want, const char *expr);

/* CN_OK(expr): expr (a casenet_err result, evaluated once) must be CASENET_OK.
 * CN_ERR(expr, CASENET_EXXX): expr must be exactly that error.
 * On a mismatch the test fails (cmocka) after printing the expression, the
 * error names and texts, the file and the line. For cmocka tests only: the
 * caller includes <cmocka.h> before using them. */
#define CN_ERR(expr, want)                                                                         \
    do {                                                                                           \
        const char *cn_msg_ = tl_err_mismatch((int)(expr), (int)(want), #expr);                    \
        if (cn_msg_) {                                                                             \
            print_error("%s\n", cn_msg_);                                                          \
            _fail(__FILE__, __LINE__);                                                             \
        }                                                                                          \
    } while (0)
#define CN_OK(expr) CN_ERR(expr, 0)

#endif
