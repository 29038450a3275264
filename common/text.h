/*
 * text.h - strings that come from outside (the wire, a file, another
 * member): UTF-8 validity, control characters, every string field of a
 * protobuf message, and escaping for a terminal. Not part of the public API;
 * the CLI and the broker use it too.
 *
 * "Control characters" are C0 (U+0000..U+001F), DEL (U+007F) and C1
 * (U+0080..U+009F): what a terminal may take as the start of an escape
 * sequence. UTF-8 is RFC 3629's: no overlong forms, no surrogates, nothing
 * above U+10FFFF.
 */
#ifndef CASENET_TEXT_H
#define CASENET_TEXT_H

#include "casenet.h"

#include <stdbool.h>
#include <stddef.h>

struct ProtobufCMessage;

/* True when s[0..len) is valid UTF-8 (proto3 requires it of `string`). */
bool cn_utf8_valid(const char *s, size_t len);

/* True when the NUL-terminated s is valid UTF-8 without any control
 * character: a single line safe to store and to show. */
bool cn_text_valid(const char *s);

/* True when every `string` field of m, in m and in every message it holds,
 * is valid UTF-8 (cn_utf8_valid). The one check of strings that arrive in a
 * protobuf, at the broker (requests, envelope headers, receipts) and in the
 * client (responses, headers, receipts, directories, payloads). A caller
 * refuses the message without echoing the string. */
bool cn_pb_strings_valid(const struct ProtobufCMessage *m);

/* Copies s into out[cap] (cap >= 4) for a terminal: characters that are not
 * valid UTF-8 or are control characters become \xNN per byte; everything
 * else is copied. Truncated at a character boundary with "..." when out is
 * too small. Always NUL-terminated. Returns out. */
char *cn_text_escape(const char *s, char *out, size_t cap);

/* Escapes DEL and the C1 controls of JSON text in[0..len) as \u007f and
 * \u0080..\u009f (JSON writers escape only C0), so that JSON shown on a
 * terminal cannot drive it; the JSON value is unchanged. out->data is
 * malloc'd and NUL-terminated (out->len excludes the NUL); CASENET_ENOMEM.
 * The caller wipes in if it was secret; out holds the same secret. */
int cn_json_escape_controls(const char *in, size_t len, casenet_buf *out);

#endif
