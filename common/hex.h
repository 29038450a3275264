/*
 * hex.h - the one hex codec of casenet: lowercase encoding, strict decoding.
 * Internal (libcasenet, the broker, the CLI); not part of the public API.
 */
#ifndef CASENET_HEX_H
#define CASENET_HEX_H

#include "casenet.h"

#include <stddef.h>
#include <stdint.h>

/* Lowercase hex of in[0..len) into out, which holds 2 * len + 1 bytes. */
void cn_hex(const uint8_t *in, size_t len, char *out);
/* The value of one hex digit (0-9, a-f, A-F), or -1 for any other char. */
int cn_hex_digit(char c);
/* Decodes exactly len bytes from hex (2 * len hex digits, nothing else).
 * CASENET_EINVAL otherwise; out is untouched on failure. */
CASENET_NODISCARD int cn_unhex(const char *hex, uint8_t *out, size_t len);

#endif
