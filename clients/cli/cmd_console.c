/* cmd_console.c - `casenet console`: runs the agency's web console for a
 * member home, and manages its staff accounts (`console user add|list|
 * disable`) and machine tokens (`console token add`). */
#include "cli.h"
#include "commands.h"
#include "console.h"
#include "console_coord.h"
#include "home.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PASSWORD_MIN 10
#define PASSWORD_MAX 256

static const char console_usage[] =
    "usage: casenet console [--home DIR] [--listen ADDR:PORT] [--broker ENDPOINT]\n"
    "                       [--assets DIR] [--tls-cert FILE --tls-key FILE]\n"
    "                       [--public-host HOST[:PORT]]\n"
    "       casenet console user add NAME --role caseworker|supervisor|viewer [--home DIR]\n"
    "       casenet console user list [--home DIR]\n"
    "       casenet console user disable NAME [--home DIR]\n"
    "       casenet console token add NAME --role ROLE [--home DIR]\n"
    "       casenet console ledger [--home DIR] > ledger.json\n"
    "\n"
    "Serves the agency's web console (pages and the JSON API under /api/v1/,\n"
    "see docs/console.md) for the member of the home, with the home's keys: content\n"
    "is decrypted here, never at the broker. Staff log in with their own accounts\n"
    "(console user add); every read of content and every receipt signed is\n"
    "written to the disclosure ledger DIR/console.db. Runs until SIGINT/SIGTERM.\n"
    "It can run beside 'casenet watch' for the same home (they share no files).\n"
    "\n"
    "options:\n"
    "  -H, --home DIR           the member home\n"
    "  -l, --listen ADDR:PORT   where to listen (default 127.0.0.1:8111; port 0\n"
    "                           picks a free one). Only loopback addresses serve\n"
    "                           plain HTTP: any other address needs --tls-cert\n"
    "                           and --tls-key (HTTPS), else it is refused\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -a, --assets DIR         the pages (default: " CASENET_CONSOLE_ASSETS ")\n"
    "  -c, --tls-cert FILE      PEM certificate chain for HTTPS\n"
    "  -k, --tls-key FILE       PEM private key for HTTPS\n"
    "  -P, --public-host HOST[:PORT]  also accept this Host (and the origin\n"
    "                           https://HOST[:PORT]): the name a TLS reverse\n"
    "                           proxy serves the console under; cookies get Secure\n"
    "  -h, --help               this text\n"
    "\n"
    "accounts: the password is read from the terminal (twice), or one line from\n"
    "stdin when it is not a terminal; at least 10 characters, stored as an\n"
    "Argon2id hash. Roles: viewer (lists only), caseworker (reads content, sends,\n"
    "signs receipts), supervisor (also the disclosure ledger). A token (shown\n"
    "once) is for the agency's own case system: 'Authorization: Bearer TOKEN'.\n"
    "'console ledger' prints the disclosure ledger (who read or signed what,\n"
    "when), newest first, as one JSON array.\n"
    "\n"
    "example:\n"
    "  casenet console user add lan --role caseworker --home /var/lib/casenet/hotline\n"
    "  casenet console --home /var/lib/casenet/hotline --listen 127.0.0.1:8111\n";

/* Reads a password: from the terminal without echo (twice), else one line of
 * stdin. Returns an exit code. */
static int read_password(char *pw, size_t cap)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    char again[PASSWORD_MAX + 2];
    for (int round = 0; round < (tty ? 2 : 1); round++) {
        char *dst = round == 0 ? pw : again;
        size_t dcap = round == 0 ? cap : sizeof again;
        if (tty) {
            fprintf(stderr, round == 0 ? "password: " : "again: ");
            tcgetattr(STDIN_FILENO, &old);
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        char *got = fgets(dst, (int)dcap, stdin);
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
            fprintf(stderr, "\n");
        }
        if (!got) {
            sodium_memzero(again, sizeof again);
            return cli_usage_error("no password given on stdin");
        }
        dst[strcspn(dst, "\r\n")] = '\0';
    }
    bool same = !tty || strcmp(pw, again) == 0;
    sodium_memzero(again, sizeof again);
    if (!same)
        return cli_usage_error("the two passwords differ");
    size_t n = strlen(pw);
    if (n < PASSWORD_MIN || n > PASSWORD_MAX)
        return cli_usage_error("a password has %d to %d characters", PASSWORD_MIN, PASSWORD_MAX);
    return CLI_OK;
}

/* Options of the account subcommands: NAME, --role, --home. */
struct acct_args {
    const char *home, *name;
    enum console_role role;
};

static int parse_acct(int argc, char **argv, bool want_role, struct acct_args *a)
{
    static const struct option opts[] = {
        {"role", required_argument, NULL, 'r'},
        {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    int ch;
    while ((ch = cli_getopt(argc, argv, "r:H:h", opts)) != -1) {
        switch (ch) {
        case 'h':
            return cli_help(console_usage);
        case 'H':
            a->home = optarg;
            break;
        case 'r':
            a->role = console_role_parse(optarg);
            if (a->role == ROLE_NONE)
                return cli_usage_error("--role is caseworker, supervisor or viewer, not '%s'",
                                       optarg);
            break;
        default:
            return CLI_EUSAGE;
        }
    }
    if (want_role && a->role == ROLE_NONE)
        return cli_usage_error("--role caseworker|supervisor|viewer is required");
    if (optind < argc)
        a->name = argv[optind++];
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    return -1;
}

/* Parses an account subcommand's options (NAME required with want_name, a
 * --role with want_role) and opens the console database of the home.
 * Returns -1 to go on (then *db is the caller's), else the exit code. */
static int acct_open(int argc, char **argv, bool want_role, bool want_name, struct acct_args *a,
                     console_db **db)
{
    int ex = parse_acct(argc, argv, want_role, a);
    if (ex >= 0)
        return ex;
    if (want_name && !console_name_valid(a->name))
        return cli_usage_error("expected a NAME: [a-z0-9][a-z0-9._-]{0,63}");
    char *path = home_path(a->home);
    if (!path)
        return CLI_EFAIL;
    if (!cli_exists(path)) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, "see 'casenet init --help'", "no member home at %s",
                      path);
        free(path);
        return ex;
    }
    int rc = console_db_open(path, db);
    free(path);
    return rc == CASENET_OK ? -1
                            : cli_fail(CLI_LOCAL, rc, NULL, "cannot open the console database");
}

static int user_add(int argc, char **argv)
{
    struct acct_args a;
    console_db *db = NULL;
    int ex = acct_open(argc, argv, true, true, &a, &db);
    if (ex >= 0)
        return ex;
    char pw[PASSWORD_MAX + 2];
    ex = read_password(pw, sizeof pw);
    if (ex == CLI_OK) {
        int rc = console_user_add(db, a.name, a.role, pw);
        if (rc == CASENET_ECONFLICT)
            ex = cli_fail(CLI_LOCAL, rc, NULL, "user '%s' exists", a.name);
        else if (rc != CASENET_OK)
            ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot add user '%s'", a.name);
        else
            printf("user %s added (%s)\n", a.name, console_role_name(a.role));
    }
    sodium_memzero(pw, sizeof pw);
    console_db_close(db);
    return ex;
}

static int user_list(int argc, char **argv)
{
    struct acct_args a;
    console_db *db = NULL;
    int ex = acct_open(argc, argv, false, false, &a, &db);
    if (ex >= 0)
        return ex;
    ex = CLI_OK;
    if (console_user_print(db) != CASENET_OK)
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot list the users");
    console_db_close(db);
    return ex;
}

static int user_disable(int argc, char **argv)
{
    struct acct_args a;
    console_db *db = NULL;
    int ex = acct_open(argc, argv, false, true, &a, &db);
    if (ex >= 0)
        return ex;
    ex = CLI_OK;
    int rc = console_user_disable(db, a.name);
    if (rc != CASENET_OK)
        ex = cli_fail(CLI_LOCAL, rc, "see 'casenet console user list'", "cannot disable user '%s'",
                      a.name);
    else
        printf("user %s disabled\n", a.name);
    console_db_close(db);
    return ex;
}

static int token_add(int argc, char **argv)
{
    struct acct_args a;
    console_db *db = NULL;
    int ex = acct_open(argc, argv, true, true, &a, &db);
    if (ex >= 0)
        return ex;
    char token[65];
    ex = CLI_OK;
    int rc = console_token_add(db, a.name, a.role, token);
    if (rc != CASENET_OK)
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot add token '%s'", a.name);
    else
        printf("%s\n", token);
    sodium_memzero(token, sizeof token);
    console_db_close(db);
    return ex;
}

static int ledger_export(int argc, char **argv)
{
    struct acct_args a;
    console_db *db = NULL;
    int ex = acct_open(argc, argv, false, false, &a, &db);
    if (ex >= 0)
        return ex;
    char *rows = console_ledger_json(db, SIZE_MAX);
    ex = CLI_OK;
    if (!rows)
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot read the disclosure ledger");
    else if (cli_write_stdout(rows, strlen(rows)) != CASENET_OK ||
             cli_write_stdout("\n", 1) != CASENET_OK)
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot write to stdout");
    free(rows);
    console_db_close(db);
    return ex;
}

static int cmd_user(int argc, char **argv)
{
    static const struct cli_cmd table[] = {
        {"add", user_add, "add a staff account: NAME --role ROLE (password on stdin/tty)"},
        {"list", user_list, "list the staff accounts"},
        {"disable", user_disable, "disable a staff account (its sessions end)"},
    };
    return cli_dispatch("console user", table, sizeof table / sizeof table[0], argc, argv);
}

static int cmd_token(int argc, char **argv)
{
    static const struct cli_cmd table[] = {
        {"add", token_add, "add a bearer token for a machine: NAME --role ROLE"},
    };
    return cli_dispatch("console token", table, sizeof table / sizeof table[0], argc, argv);
}

static int serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},
        {"listen", required_argument, NULL, 'l'},
        {"broker", required_argument, NULL, 'b'},
        {"assets", required_argument, NULL, 'a'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"public-host", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *home = NULL, *listen = "127.0.0.1:8111", *broker = NULL;
    const char *assets = CASENET_CONSOLE_ASSETS, *cert = NULL, *key = NULL, *public_host = NULL;
    int ch;
    while ((ch = cli_getopt(argc, argv, "H:l:b:a:c:k:P:h", opts)) != -1) {
        switch (ch) {
        case 'h':
            return cli_help(console_usage);
        case 'H':
            home = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'b':
            broker = optarg;
            break;
        case 'a':
            assets = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'P':
            public_host = optarg;
            break;
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    const char *colon = strrchr(listen, ':');
    uint64_t port = 0;
    if (!colon || colon == listen || !cli_parse_uint(colon + 1, 0, 65535, &port))
        return cli_usage_error("--listen wants ADDRESS:PORT (e.g. 127.0.0.1:8111), not '%s'",
                               listen);
    char *path = home_path(home);
    if (!path)
        return CLI_EFAIL;
    struct console *c = calloc(1, sizeof *c);
    int ex = CLI_EFAIL;
    if (!c)
        goto cleanup;
    pthread_rwlock_init(&c->dir_lock, NULL);
    pthread_mutex_init(&c->net_lock, NULL);
    pthread_mutex_init(&c->ev_lock, NULL);
    pthread_cond_init(&c->ev_cond, NULL);
    ex = home_open(path, &c->home);
    if (ex != CLI_OK)
        goto cleanup;
    c->broker = broker && broker[0] ? broker : c->home->broker;
    if (!c->broker[0]) {
        ex = cli_usage_error("no broker endpoint: pass --broker ENDPOINT");
        goto cleanup;
    }
    c->assets = assets;
    if (public_host &&
        (!public_host[0] || strlen(public_host) >= sizeof c->host_ok[2] ||
         strspn(public_host,
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
             strlen(public_host))) {
        ex = cli_usage_error("--public-host wants HOST or HOST:PORT, not '%s'", public_host);
        goto cleanup;
    }
    if (public_host)
        snprintf(c->host_ok[2], sizeof c->host_ok[2], "%s", public_host);
    char index[4096];
    snprintf(index, sizeof index, "%s/index.html", assets);
    if (!cli_exists(index)) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, "pass --assets DIR (clients/console/www)",
                      "the console's pages are not at %s", assets);
        goto cleanup;
    }
    if (console_db_open(path, &c->db) != CASENET_OK) {
        ex = CLI_EIO;
        goto cleanup;
    }
    c->sessions = console_sessions_new(CONSOLE_IDLE_MS);
    if (!c->sessions) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    if (console_is_coordinator(c) && coord_cache_open(path, &c->coord) != CASENET_OK) {
        ex = CLI_EIO;
        goto cleanup;
    }
    ex = console_serve(c, listen, cert, key);
cleanup:
    if (c) {
        casenet_client_free(c->client);
        for (size_t i = 0; i < CONSOLE_DRAFTS; i++)
            casenet_buf_free(&c->drafts[i].envelope);
        console_sessions_free(c->sessions);
        console_db_close(c->db);
        coord_cache_close(c->coord);
        home_free(c->home);
        pthread_cond_destroy(&c->ev_cond);
        pthread_mutex_destroy(&c->ev_lock);
        pthread_mutex_destroy(&c->net_lock);
        pthread_rwlock_destroy(&c->dir_lock);
        free(c);
    }
    free(path);
    return ex;
}

int cmd_console(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "user") == 0) {
        cli_cmd_name = "console user";
        return cmd_user(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(argv[1], "ledger") == 0) {
        cli_cmd_name = "console ledger";
        return ledger_export(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(argv[1], "token") == 0) {
        cli_cmd_name = "console token";
        return cmd_token(argc - 1, argv + 1);
    }
    return serve(argc, argv);
}
