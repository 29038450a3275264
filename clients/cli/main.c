/* main.c - the casenet command-line tool: one dispatch table of subcommands,
 * `casenet --help`, `casenet help CMD` and `casenet --version`. */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

#ifndef CASENET_VERSION
#define CASENET_VERSION "unknown"
#endif

static const struct cli_cmd commands[] = {
    {"keygen", cmd_keygen, "generate a member's key pairs (ID.key, ID.pub), or --rotate them"},
    {"admin", cmd_admin, "authority: init, add, revoke, suspend, reinstate, renew, show"},
    {"init", cmd_init, "set up a member home from a key, the authority key and a directory"},
    {"directory", cmd_directory, "the home's directory: update, pull, publish, show"},
    {"seal", cmd_seal, "seal a payload (JSON on stdin) into a signed, encrypted message"},
    {"open", cmd_open, "verify and decrypt a message (stdin), print its payload JSON"},
    {"send", cmd_send, "seal a payload and submit it to the broker"},
    {"inbox", cmd_inbox, "list the inbox kept by the broker"},
    {"read", cmd_read, "fetch, verify and decrypt a message from the inbox"},
    {"ack", cmd_ack, "sign and send a receipt (delivered, accepted, declined, completed)"},
    {"audit", cmd_audit, "the audit log: log, verify, export, prove"},
    {"status", cmd_status, "a message's timeline per recipient: steps, signers, deadlines"},
    {"cases", cmd_cases, "the messages this member sent and where each stands"},
    {"overdue", cmd_overdue, "coordinators: referrals past a deadline and not yet taken"},
    {"watch", cmd_watch, "unattended agent: hand each new message to the agency, then ack"},
    {"console", cmd_console, "the agency's web console and its staff accounts"},
    {"report", cmd_report, "coordinators: a month's figures from the verified audit log"},
    {"hashes", cmd_hashes, "the local hash bank: import, list, stats, export, contribute"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: casenet COMMAND [OPTIONS] [ARGS]\n"
               "       casenet help COMMAND | casenet COMMAND --help | casenet --version\n\n"
               "Signed, end-to-end encrypted case referrals between the members of a\n"
               "child-online-protection network.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nmember home: --home DIR, else $CASENET_HOME, else ~/.casenet\n"
               "\nexit codes:\n"
               "  0  success\n"
               "  1  any other failure, including invalid input data (e.g. payload JSON)\n"
               "  2  usage error (unknown command or option, bad argument)\n"
               "  3  verification or security failure: BAD_SIGNATURE, EXPIRED, ROLLBACK,\n"
               "     KEY_COMMITMENT, CRYPTO, NOT_RECIPIENT, UNAUTHENTICATED, PERMISSIONS,\n"
               "     or a message/directory that is malformed\n"
               "  4  file I/O error\n"
               "  5  refused by the broker (FORBIDDEN, CONFLICT, NOT_FOUND, TOO_LARGE,\n"
               "     DIRECTORY_EXPIRED, ...)\n"
               "  6  broker unreachable, timed out, UNAVAILABLE or RATE_LIMITED\n");
}

static const struct cli_cmd *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

static int run(const struct cli_cmd *cmd, int argc, char **argv)
{
    cli_cmd_name = cmd->name;
    int rc = casenet_init();
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot initialise libsodium");
    return cmd->handler(argc, argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EUSAGE;
    }
    const char *first = argv[1];
    if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(first, "--version") == 0 || strcmp(first, "version") == 0) {
        printf("casenet %s\n", CASENET_VERSION);
        return CLI_OK;
    }
    if (strcmp(first, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return CLI_OK;
        }
        const struct cli_cmd *cmd = find(argv[2]);
        if (!cmd) {
            fprintf(stderr, "casenet: help: unknown command '%s'\nsee 'casenet --help'\n", argv[2]);
            return CLI_EUSAGE;
        }
        /* `casenet help admin add` is `casenet admin add --help`. */
        char help[] = "--help";
        char *sub[4] = {argv[2], argc > 3 ? argv[3] : help, argc > 3 ? help : NULL, NULL};
        return run(cmd, argc > 3 ? 3 : 2, sub);
    }
    const struct cli_cmd *cmd = find(first);
    if (!cmd) {
        fprintf(stderr, "casenet: unknown command '%s'\nsee 'casenet --help'\n", first);
        return CLI_EUSAGE;
    }
    return run(cmd, argc - 1, argv + 1);
}
