/*
 * cli.h - what every `casenet` subcommand shares: the dispatch table type,
 * option parsing habits, error reporting and the exit codes.
 *
 * Every handler returns an exit code (enum cli_exit), never a casenet_err:
 * errors are reported on stderr where they happen, through cli_fail(), which
 * also picks the exit code with cli_exit_code().
 */
#ifndef CASENET_CLI_H
#define CASENET_CLI_H

#include "casenet.h"

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, documented in `casenet --help` and docs/cli.md. */
enum cli_exit {
    CLI_OK = 0,
    CLI_EFAIL = 1,     /* anything else, including invalid input data (payload JSON) */
    CLI_EUSAGE = 2,    /* bad arguments or options */
    CLI_ESECURITY = 3, /* a verification or security check failed */
    CLI_EIO = 4,       /* a file could not be read or written */
    CLI_EREFUSED = 5,  /* the broker refused the request */
    CLI_EUNREACH = 6,  /* broker unreachable, timed out, unavailable or rate limited */
};

/* Where an error came from: the same casenet_err means different things when
 * the broker answers it (refused, exit 5), when checking bytes that came from
 * outside (a message or directory that does not verify, exit 3) or locally. */
enum cli_origin {
    CLI_LOCAL = 0,  /* a local operation (arguments, our own files) */
    CLI_VERIFY = 1, /* verifying outside bytes: malformed is as bad as forged */
    CLI_BROKER = 2, /* an answer of the broker */
};

/* One subcommand (or group of subcommands). handler gets argv[0] = name. */
struct cli_cmd {
    const char *name;
    int (*handler)(int argc, char **argv);
    const char *help; /* one line for `casenet --help` */
};

/* The subcommand being run ("seal", "admin add"), for error messages. Set by
 * the dispatchers; static storage. */
extern const char *cli_cmd_name;

/* Maps err to an exit code. Security failures (BAD_SIGNATURE, EXPIRED,
 * ROLLBACK, KEY_COMMITMENT, CRYPTO, NOT_RECIPIENT, UNAUTHENTICATED,
 * PERMISSIONS) are 3 wherever they arise; IO is 4; TIMEDOUT, UNAVAILABLE and
 * RATE_LIMITED are 6; other wire errors are 5 from the broker, 3 while
 * verifying outside bytes (BAD_REQUEST, VERSION, UNKNOWN_RECIPIENT) and 1
 * otherwise. CASENET_OK is 0. */
int cli_exit_code(int err, enum cli_origin origin);

/* Prints "casenet: CMD: <fmt...> (ERRNAME)[; hint]" on stderr and returns
 * cli_exit_code(err, origin). hint may be NULL. */
int cli_fail(enum cli_origin origin, int err, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reports that the file at path (what it should hold: "the member's public
 * key") could not be read or loaded with error rc: "no such file: PATH" when
 * it does not exist, else the error. Returns the exit code (4 for IO). */
int cli_file_fail(int rc, const char *path, const char *what);
/* Prints "casenet: CMD: <fmt...>" and "see 'casenet CMD --help'" on stderr;
 * returns CLI_EUSAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "casenet: CMD: warning: <fmt...>" on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Dispatches argv[1] through table (n rows) for a group such as `admin`:
 * no argument or --help lists the rows; an unknown name is a usage error.
 * group is the group's name ("admin"), used in messages. */
int cli_dispatch(const char *group, const struct cli_cmd *table, size_t n, int argc, char **argv);

/* Runs getopt_long on argv, resetting getopt's state when argv is a new
 * vector. Returns the option character or -1 at the end; an unknown option
 * or a missing argument is reported as a usage error and returns '?', upon
 * which the handler returns CLI_EUSAGE. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* Prints a subcommand's usage text on stdout (its --help); CLI_OK. */
int cli_help(const char *usage);

/* Parses an unsigned decimal integer in [min, max]; false otherwise. */
bool cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Parses a duration "90s", "15m", "12h", "7d" (a bare number is seconds)
 * into milliseconds; false when malformed, zero or over ten years. */
bool cli_parse_duration(const char *s, int64_t *out_ms);
/* s made safe for a terminal (cn_text_escape of text.h: control characters
 * and bytes that are not UTF-8 become \xNN). Every string that came from
 * outside (the broker, the directory, another member's message or receipt)
 * goes through it before a person sees it in human output; JSON output is
 * escaped by the JSON writer. The result lives in one of CLI_SAFE_SLOTS
 * static buffers and stays valid for that many further calls (enough for
 * one printf); longer text is cut with "...". Not thread-safe. */
#define CLI_SAFE_SLOTS 8
const char *cli_safe(const char *s);

/* Parses exactly 32 hex digits into 16 bytes; false otherwise. */
bool cli_parse_id16(const char *s, uint8_t out[16]);
/* True when s can name a message id: 1 to 32 hex digits (all 32, or a
 * prefix to resolve, see net_resolve_id). */
bool cli_id_arg_ok(const char *s);
/* Lowercase hex of a 16-byte id into out[33]. */
void cli_id16_hex(const uint8_t id[16], char out[33]);

/* Formats ms since the epoch as "2025-03-01 08:15:00 UTC" (utc) or in local
 * time with its zone, or "-" for 0, into out[cap]. */
void cli_format_time(int64_t ms, bool utc, char *out, size_t cap);
/* ISO 8601 UTC with milliseconds, "2025-03-01T08:15:00.000Z", into out[cap]. */
void cli_format_iso(int64_t ms, char *out, size_t cap);

/* Human tables (inbox, cases, overdue, audit log) fit this many columns
 * unless --wide is given. */
#define CLI_TABLE_WIDTH 100
/* Digits of a message id a table shows (unless --wide): a prefix that read,
 * ack and status take back. */
#define CLI_TABLE_ID_DIGITS 10

/* Writes s into out[cap] as exactly width columns (UTF-8 characters count
 * one each): padded with spaces, or cut with '~' as its last column. */
void cli_cell(const char *s, size_t width, char *out, size_t cap);
/* Prints one table line (fmt...) and a newline on stdout; unless wide, a
 * line over CLI_TABLE_WIDTH columns is cut with '~' as its last one. */
void cli_table_line(bool wide, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* How member id shows in a table: its display name from dir (the id when it
 * has none or is not listed); wide: "id (name)". Into out[cap]. */
void cli_member_label(const casenet_directory *dir, const char *id, bool wide, char *out,
                      size_t cap);
/* ms since the epoch as a short local time "12-07 18:00" (wide: the full
 * cli_format_time form), into out[cap]; "-" for 0. */
void cli_table_time(int64_t ms, bool wide, char *out, size_t cap);
/* The id in a table: its first CLI_TABLE_ID_DIGITS hex digits, which every
 * command that takes a message id accepts as a prefix (wide: all 32). */
void cli_table_id(const uint8_t id[16], bool wide, char out[33]);

/* Reads all of stream f into out (malloc'd), at most max bytes: IO or
 * TOO_LARGE. */
int cli_read_stream(FILE *f, size_t max, casenet_buf *out);
/* Writes all of data to stdout and flushes; CASENET_EIO on failure. */
int cli_write_stdout(const void *data, size_t len);

/* Joins dir and name with '/'; malloc'd, NULL on out of memory. */
char *cli_path(const char *dir, const char *name);
/* Creates dir and its missing parents with mode 0700 (like mkdir -p) unless
 * it exists as a directory. CASENET_OK, CASENET_EIO (errno set). */
int cli_mkdir(const char *dir);
/* True when path exists (any type). */
bool cli_exists(const char *path);

/* Seals text as the encrypted STATUS note that explains receipt r (PROTOCOL.md
 * section 5.1) from the member of keys to the sender of the message whose
 * envelope is orig (info: its verified metadata), in reply to it, for the case
 * its payload names, in the state r gives: ACCEPTED, DECLINED with r's reason,
 * CLOSED with r's outcome (a delivered receipt has no note: CASENET_EINVAL).
 * On success *note holds the envelope to submit and id its message id, which
 * the receipt then names (note_id). Otherwise a casenet_err with a sentence in
 * why (whylen bytes) and *origin CLI_VERIFY when orig does not open,
 * CLI_LOCAL else; nothing is allocated. Builds only: the caller submits. */
int cli_note_seal(const casenet_keys *keys, const casenet_directory *dir, const casenet_buf *orig,
                  const casenet_message_info *info, const casenet_receipt *r, const char *text,
                  casenet_buf *note, uint8_t id[CASENET_MESSAGE_ID_BYTES], enum cli_origin *origin,
                  char *why, size_t whylen);

#endif
