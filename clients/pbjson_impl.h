/*
 * pbjson_impl.h - what the two directions of pbjson (pbjson.c: JSON ->
 * message, pbjson_emit.c: message -> JSON) share. Internal.
 */
#ifndef CASENET_PBJSON_IMPL_H
#define CASENET_PBJSON_IMPL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#define PBJSON_NAME_MAX 128 /* longest proto field name we convert */

#define MEMBER_PTR(msg, off)  ((void *)((char *)(msg) + (off)))
#define CMEMBER_PTR(msg, off) ((const void *)((const char *)(msg) + (off)))

/* Writes the lowerCamelCase JSON name of a snake_case proto field name, as
 * protoc's ToJsonName does. A name that does not fit is a bug (aborts). */
void pbj_json_name(const char *proto, char out[static PBJSON_NAME_MAX]);
/* Size of one element of a field of type t in a message struct. */
size_t pbj_elem_size(ProtobufCType t);
/* protobuf-c keeps a has_ flag for optional (proto2 / proto3 `optional`)
 * scalars and bytes; strings and messages use NULL for absence. */
bool pbj_has_flag(const ProtobufCFieldDescriptor *f);

#endif
