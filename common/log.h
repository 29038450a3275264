/*
 * log.h - the broker's event log: one line per event on stderr, as
 * `ts=<UTC ISO 8601 with ms> level=<level> event=<name> key=value ...`.
 * Values that are empty or hold spaces, quotes, '=' or control characters are
 * written in double quotes with \" \\ and \xNN escapes, so a line always
 * splits into key=value pairs unambiguously. Bytes from 0x80 up are copied as
 * they are (UTF-8 or not: the split looks at ASCII only). A line is at most
 * 4096 bytes: a longer value is cut between characters or escapes, its
 * closing quote kept, and the pairs after it are left out. Never log secret
 * keys or payloads.
 */
#ifndef BROKER_LOG_H
#define BROKER_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Lines below level are dropped (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Writes one line: event, then the (key, value) string pairs that follow,
 * terminated by a NULL key. A NULL value is skipped with its key. The line
 * is written with one write(2), so concurrent writers never interleave. */
void log_event(enum log_level level, const char *event, ...) __attribute__((sentinel));

/* Lowercase hex of in[0..len) in a static per-thread buffer good for up to 64
 * bytes (longer input is truncated): for ids and hashes in log_event calls.
 * Each call returns a different one of four rotating buffers, so up to four
 * may be used in one log_event call. */
const char *log_hex(const uint8_t *in, size_t len);

/* Decimal text of v in a rotating per-thread buffer: up to LOG_U64_BUFS
 * may be used in one log_event call (the arguments' order of evaluation is
 * unspecified, so one more overwrites whichever ran first). */
#define LOG_U64_BUFS 8
const char *log_u64(uint64_t v);

/* ms since the epoch as UTC "2026-12-07T18:00:00Z" in a rotating
 * per-thread buffer (four of them): for times people read. */
const char *log_utc(int64_t ms);

#endif
