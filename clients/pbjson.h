/*
 * pbjson.h - internal: converts between protobuf-c messages and protobuf's
 * canonical proto3 JSON mapping, driven only by the protobuf-c descriptors
 * (one converter for every message, no per-message code).
 *
 * Mapping (https://protobuf.dev/programming-guides/proto3/#json):
 *  - field names in lowerCamelCase derived from the snake_case proto name
 *    (protobuf-c 1.4.1 descriptors carry no json_name); the proto name is
 *    also accepted on input;
 *  - int64/uint64/sint64/(s)fixed64 are emitted as JSON strings and accepted
 *    as strings or integers; 32-bit integers are emitted as numbers and
 *    accepted as numbers or decimal strings; a JSON real is accepted for any
 *    integer field when it is integral and at most 2^53 in magnitude;
 *  - bytes as standard base64 with padding (input: standard or URL-safe
 *    alphabet, padded or not, non-canonical trailing bits refused);
 *  - enums by value name ("URGENCY_EMERGENCY"); input by name or number, and
 *    only values the enum defines are accepted; on output a value the enum
 *    does not define (an open proto3 enum read from the wire) is a number;
 *  - proto3 defaults are omitted on output, except a set oneof member and a
 *    present (even empty) sub-message; `null` means "default" on input;
 *  - float/double: numbers, or "NaN", "Infinity", "-Infinity".
 * Input is strict: an unknown field, a field given twice (camelCase and
 * snake_case), two members of one oneof, a wrong JSON type, an out-of-range
 * number, an unknown enum name, bad base64, a string that is not valid UTF-8
 * or holds a NUL, a null array element and nesting deeper than
 * PBJSON_MAX_DEPTH messages are refused.
 * Unknown fields of an unpacked message are not represented in JSON.
 */
#ifndef CASENET_PBJSON_H
#define CASENET_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "casenet.h"

/* Messages nested deeper than this (the top message is level 1) are refused,
 * in both directions, against hostile nesting in recursive schemas. */
#define PBJSON_MAX_DEPTH 32

/* Builds a message of type d from the JSON object in. On success *out is a
 * message allocated with the system allocator (malloc), every string, bytes
 * buffer, array and sub-message separately malloc'd, exactly as
 * protobuf_c_message_unpack(d, NULL, ...) would build it: release it with
 * protobuf_c_message_free_unpacked(*out, NULL) (or pbjson_free). in is
 * borrowed. Errors: CASENET_EINVAL for input that does not fit the mapping,
 * CASENET_ENOMEM; on error err (when errlen > 0) holds a NUL-terminated
 * message that starts with the JSON field path, e.g.
 * "referral.children[1].ageYears: expected a number, got string", and *out is
 * untouched. err is set to "" on success. */
CASENET_NODISCARD int pbjson_from_json(const ProtobufCMessageDescriptor *d, const json_t *in,
                                       ProtobufCMessage **out, char *err, size_t errlen);

/* The canonical JSON object for m (a new reference, fields in proto field
 * order), or NULL when out of memory or when m cannot be represented (a
 * string that is not valid UTF-8, nesting deeper than PBJSON_MAX_DEPTH).
 * Use pbjson_encode to tell the two apart. m is borrowed. */
json_t *pbjson_to_json(const ProtobufCMessage *m);

/* pbjson_to_json with a result code: CASENET_ENOMEM, or CASENET_EBADREQ when
 * m holds a string that is not valid UTF-8 or nests deeper than
 * PBJSON_MAX_DEPTH. *out is written only on success. */
CASENET_NODISCARD int pbjson_encode(const ProtobufCMessage *m, json_t **out);

/* Rewrites obj, the canonical JSON of m (pbjson_encode), for people: every
 * bytes field (ids, hashes) as lowercase hex and every 64-bit signed integer
 * field whose proto name ends in "_ms" (a time) as an ISO 8601 UTC date
 * ("2025-01-01T02:13:20Z", with ".mmm" when not whole seconds). The result
 * is not canonical: pbjson_from_json does not take it back. CASENET_ENOMEM
 * (obj partly rewritten), CASENET_EBADREQ when obj does not match m. */
CASENET_NODISCARD int pbjson_humanise(const ProtobufCMessage *m, json_t *obj);

/* Frees a message returned by pbjson_from_json (same as
 * protobuf_c_message_free_unpacked(m, NULL)); accepts NULL. */
void pbjson_free(ProtobufCMessage *m);

#endif
