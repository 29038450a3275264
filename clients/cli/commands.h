/*
 * commands.h - the handlers of the casenet subcommands, one file per group
 * (cmd_keys.c, cmd_admin.c, cmd_home.c, cmd_seal.c, cmd_net.c, cmd_watch.c,
 * cmd_cases.c), and the few helpers one group lends another. Handlers take
 * argv[0] = their own name and return an exit code (enum cli_exit).
 */
#ifndef CASENET_CLI_COMMANDS_H
#define CASENET_CLI_COMMANDS_H

#include "casenet.h"
#include "home.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int cmd_keygen(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_directory(int argc, char **argv);
int cmd_seal(int argc, char **argv);
int cmd_open(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_inbox(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_ack(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_cases(int argc, char **argv);
int cmd_overdue(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_hashes(int argc, char **argv);

/* cmd_admin.c: prints the directory file at path (see `admin show`),
 * verified with authority_pk and min_version unless authority_pk is NULL.
 * Returns an exit code. */
int admin_show_file(const char *path, const uint8_t *authority_pk, uint64_t min_version, bool json);

/* cmd_net.c: connects h's member to the broker at endpoint (NULL: the
 * home's recorded broker) with a per-request timeout. Returns an exit code;
 * *out is the caller's on success (casenet_client_free). */
int net_connect(struct home *h, const char *endpoint, int timeout_ms, casenet_client **out);
/* cmd_net.c: reports a failed broker request, with the broker's own message
 * when it gave one, and returns the exit code. */
int net_fail(casenet_client *c, int err, const char *what);
/* cmd_net.c: fetches the broker's directory over c, stores it in h after
 * the usual checks (pinned key, expiry, never older than the highest version
 * seen) and hands h's directory to c. *old_version gets the previous one.
 * Returns an exit code, the failure reported. */
int net_pull_directory(struct home *h, casenet_client *c, uint64_t *old_version);
/* cmd_net.c: the message id the user typed as arg: 32 hex digits, or a
 * unique prefix (1 to 31 hex digits) of a row of this member's inbox or,
 * with sent, of a message it sent. An ambiguous prefix is a usage error
 * listing the candidates; no match is NOT_FOUND. Returns an exit code. */
int net_resolve_id(casenet_client *c, const char *arg, bool sent, uint8_t out[16]);
/* The usage error for a message id argument that is not one (a format). */
#define ID_ARG_WANTED "expected a message id: 32 hex digits or a unique prefix, not '%s'"
/* cmd_net.c: parses --timeout SECONDS (1..3600) into ms; false otherwise. */
bool net_parse_timeout(const char *s, int *ms);

/* watch_json.c: the JSON of a forwarded receipt row e whose verified body is
 * r ({"message": {...}, "receipt": {...}}: ids in hex, times ISO 8601 UTC),
 * as watch hands it over and `read` prints it. *out is malloc'd. */
int receipt_json(const casenet_inbox_entry *e, const casenet_receipt *r, char **out, size_t *len);

/* cmd_seal.c: what `seal` and `send` share. */
struct seal_args {
    const char *home;
    const char *to[CASENET_MAX_RECIPIENTS];
    size_t n_to;
    casenet_kind kind;
    casenet_urgency urgency; /* 0 = the payload's (standard when it states none) */
    casenet_msg_status status;
    bool has_case, has_reply_to;
    uint8_t case_ref[CASENET_CASE_REF_BYTES];
    uint8_t reply_to[CASENET_MESSAGE_ID_BYTES];
    int64_t expires_in_ms;                 /* 0 = never */
    const char *broker;                    /* send only */
    int timeout_ms;                        /* send only */
    casenet_buf *json;                     /* send only: the payload JSON, kept to seal it again */
    const char *attach[CASENET_MAX_BLOBS]; /* send only: --attach files */
    size_t n_attach;
    const casenet_attachment *atts; /* send only: their manifests, sealed into the payload */
    bool quiet;                     /* send only: no upload progress bar */
};
/* Parses the options of seal (net false) or send (net true, which also takes
 * --broker and --timeout). Returns -1 to go on, else the exit code (0 after
 * --help). Recipient strings point into argv. */
int seal_parse(int argc, char **argv, const char *usage, bool net, struct seal_args *a);
/* Reads payload JSON from stdin (into a->json when set and still empty;
 * from a->json when it holds some), converts it (errors name the field) and
 * seals it from h's member. Returns an exit code; *envelope and message_id
 * are set on success. */
int seal_stdin(const struct home *h, const struct seal_args *a, casenet_buf *envelope,
               uint8_t message_id[CASENET_MESSAGE_ID_BYTES]);
/* attach_cli.c: the manifests of a->attach into *out (attach_free), NULL
 * when none, after h's checks (docs/cli.md, "Never abusive media"): a file
 * whose md5, sha1 or sha256 is in h's hash bank, or an image or video from a
 * member the media policy does not permit, is refused (exit 3). An exit
 * code. */
int attach_prepare(const struct home *h, const struct seal_args *a, casenet_attachment **out);
void attach_free(casenet_attachment *atts, size_t n);
/* Why attach_check refused a file: what is "hash_bank" or "media_policy"
 * for a refusal by policy (CASENET_EPERM), NULL for a file or bank that
 * cannot be read; why a sentence naming the file, hint what to do. */
struct attach_refusal {
    const char *what;
    const char *hint;
    char why[512];
};
/* The checks of one file to attach (docs/cli.md, "Never abusive media"):
 * t (prepared from path) is an image or video the media policy does not
 * permit h's member, or the file's md5, sha1 or sha256 is in h's hash bank
 * (CASENET_EPERM); another code when the file or the bank cannot be read.
 * label names the file in r->why. CASENET_OK when it may be attached. */
int attach_check(const struct home *h, const char *path, const char *label,
                 const casenet_attachment *t, struct attach_refusal *r);
/* Uploads a->attach with their manifests a->atts (resuming what the broker
 * holds already). An exit code. */
int attach_upload(casenet_client *c, const struct seal_args *a);
/* Saves every attachment of an opened message into dir, each checked
 * against the signed manifest before it is renamed into place. An exit
 * code. */
int attach_save(casenet_client *c, const casenet_message_info *info, const casenet_buf *payload,
                const char *dir);
/* Reports a failed casenet_open/casenet_envelope_verify of env (len bytes)
 * for reader and returns the exit code (3 for anything that does not
 * verify). A missing box key is named with its key id. */
int open_fail(int err, const char *reader, const uint8_t *env, size_t len);
/* open_fail, naming what casenet_open_detail found wrong in the payload
 * (detail, may be empty) when there is something. */
int open_fail_detail(int err, const char *reader, const char *detail, const uint8_t *env,
                     size_t len);
/* Prints an opened message: its metadata on stderr (print_message_info) and
 * its payload on stdout, canonical protobuf JSON or, unless canonical, the
 * form for people (casenet_payload_to_display_json). Returns an exit code. */
int print_opened(const casenet_message_info *info, const casenet_buf *payload, bool json_meta,
                 bool canonical);
/* Prints a verified message's metadata on f: a readable block, or one JSON
 * object (json). */
void print_message_info(FILE *f, const casenet_message_info *info, bool json);

#endif
