/*
 * cmd_hashes.h - what the files of `casenet hashes` share (cmd_hashes.c,
 * cmd_hashes_send.c) and the hook `casenet watch` calls.
 */
#ifndef CASENET_CLI_CMD_HASHES_H
#define CASENET_CLI_CMD_HASHES_H

#include "casenet.h"
#include "hashbank.h"
#include "home.h"

#include <stdbool.h>

/* The options every hashes subcommand that talks to the broker takes. */
struct hashes_net {
    const char *home, *broker;
    int timeout_ms;
};
/* Handles getopt's c (--home, --broker, --timeout) into o: CLI_OK when it
 * was one of them, CLI_EUSAGE (reported) for a bad value or another option. */
int hashes_net_option(int c, const char *arg, struct hashes_net *o);
/* Parses argv when --home, --broker, --timeout and --help are all it takes.
 * Returns -1 to go on, else the exit code (0 after --help). */
int hashes_parse_net(int argc, char **argv, const char *usage, struct hashes_net *o);
#define HASHES_NET_OPTS                                                                            \
    {"home", required_argument, NULL, 'H'}, {"broker", required_argument, NULL, 'b'},              \
        {"timeout", required_argument, NULL, 't'},                                                 \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* An open home, its bank and (when asked) a connection to the broker. */
struct hashes_ctx {
    char *path;
    struct home *h;
    hashbank *bank;
    casenet_client *c;
};
/* Opens o's home and bank, and connects when connect. Returns an exit code;
 * close x with hashes_ctx_close whatever it returns. */
int hashes_ctx_open(const struct hashes_net *o, bool connect, struct hashes_ctx *x);
void hashes_ctx_close(struct hashes_ctx *x);
/* Opens the bank of home h (HASHBANK_FILE in it). Returns an exit code. */
int hashes_bank_open(const struct home *h, hashbank **out);

/* Rows read from a CSV list or the bank, grown as needed (free rows). */
struct hashes_rows {
    struct hashbank_row *rows;
    size_t n, cap;
};
/* Appends row to b. Returns an exit code (reported). */
int hashes_rows_add(struct hashes_rows *b, const struct hashbank_row *row);
/* Reads the CSV list at path ("-": stdin) into b; a row without a category is
 * an error when need_category. The first bad line is the (reported) error. */
int hashes_read_csv(const char *path, bool need_category, struct hashes_rows *b);

/* cmd_hashes_send.c */
int hashes_contribute(int argc, char **argv);
int hashes_feedback(int argc, char **argv);
/* cmd_hashes_match.c */
int hashes_match(int argc, char **argv);

/* For `casenet watch`: applies an opened HASH_SHARE message to h's bank
 * (after casenet_hash_share_check), reporting on stderr what it did or why
 * not. The message is handed over and acknowledged as any other. */
void hashes_apply_opened(const struct home *h, const casenet_message_info *info,
                         const casenet_buf *payload);

/* `casenet hashes import` and the console (console_bank.c): fetches over cl
 * the inbox's HASH_SHARE messages b has not applied, opens them with h's
 * keys, applies them in the order they were sealed (as hashes_apply_opened
 * does, after casenet_hash_share_check) and acknowledges each as delivered.
 * *applied = how many changed the bank. Returns an exit code (reported). */
int hashes_import_pending(const struct home *h, casenet_client *cl, hashbank *b, size_t *applied);
/* The same for one inbox row (a push notice): nothing unless it is a
 * HASH_SHARE b has not applied. Returns a casenet code (reported on stderr). */
int hashes_import_one(const struct home *h, casenet_client *cl, hashbank *b,
                      const casenet_inbox_entry *row);

#endif
