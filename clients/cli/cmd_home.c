/* cmd_home.c - `casenet init` (set up a member home) and `casenet directory
 * ...` (update, pull, publish, show the home's signed directory). */
#include "cli.h"
#include "commands.h"
#include "dirview.h"
#include "home.h"
#include "keys_impl.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FILE_MAX (16u * 1024u * 1024u)

/* ------------------------------------------------------------ init */

static const char init_usage[] =
    "usage: casenet init [--home DIR] --key ID.key --authority authority.pub\n"
    "                    --directory FILE [--broker ENDPOINT] [--force]\n"
    "\n"
    "Sets up a member home: copies the secret keyring (mode 0600), pins the\n"
    "authority's public key, verifies the directory against it and stores it,\n"
    "and records the member id, the directory version and the broker endpoint\n"
    "in DIR/state. Refuses an existing home unless --force, and even then a\n"
    "keyring whose box keys the new one lacks (mail wrapped to them would no\n"
    "longer open): rotate keys with 'casenet keygen --rotate' instead.\n"
    "\n"
    "options:\n"
    "  -H, --home DIR          the home (default $CASENET_HOME, else ~/.casenet)\n"
    "  -k, --key FILE          the member's secret keyring (from 'casenet keygen')\n"
    "  -a, --authority FILE    the authority's public key (authority.pub)\n"
    "  -d, --directory FILE    a signed directory from the authority\n"
    "  -b, --broker ENDPOINT   the broker, e.g. tcp://broker.example:7400; brokers sharing\n"
    "                          one store as a list: tcp://a:7400,tcp://b:7400\n"
    "  -f, --force             overwrite an existing home\n"
    "  -h, --help              this text\n"
    "\n"
    "example:\n"
    "  casenet init --home ~/.casenet --key keys/vn.hotline111.key \\\n"
    "      --authority authority.pub --directory directory.bin \\\n"
    "      --broker tcp://casenet.example.vn:7400\n";

static int copy_in(const char *home, const char *name, const casenet_buf *bytes, mode_t mode)
{
    char *file = cli_path(home, name);
    if (!file)
        return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    int rc = cn_write_file_atomic(file, bytes->data, bytes->len, mode, false);
    int ex = rc == CASENET_OK
                 ? CLI_OK
                 : cli_fail(CLI_LOCAL, rc, NULL, "cannot write %s: %s", file, strerror(errno));
    free(file);
    return ex;
}

/* init --force over a home: refuses to drop box keys of the keyring there
 * that h's lacks (mail wrapped to them would no longer open). */
static int keep_box_keys(const struct home *h)
{
    char *path = cli_path(h->path, HOME_KEY_FILE);
    casenet_keys *old = NULL;
    int ex = CLI_OK;
    if (path && cli_exists(path) && casenet_keys_load(path, &old) == CASENET_OK) {
        char first[CASENET_KEY_ID_CHARS + 1];
        size_t n = cn_keys_box_missing(h->keys, old, first);
        if (n)
            ex = cli_fail(CLI_LOCAL, CASENET_EINVAL,
                          "rotate with 'casenet keygen --rotate' instead, which keeps them; or "
                          "move the old keyring away first if they must go",
                          "%s holds %zu box key%s (%s%s) that the new keyring lacks: mail "
                          "wrapped to %s could no longer be opened",
                          path, n, n == 1 ? "" : "s", first, n > 1 ? ", ..." : "",
                          n == 1 ? "it" : "them");
    }
    casenet_keys_free(old);
    free(path);
    return ex;
}

/* Loads and checks what init copies into the home: the member's keyring
 * (mode 0600), the pinned authority key and the directory it signed. The
 * files' bytes are left in the three buffers; CLI_OK or the exit code of a
 * reported failure. */
static int init_load(struct home *h, const char *key_path, const char *auth_path,
                     const char *dir_path, casenet_buf *keybytes, casenet_buf *authbytes,
                     casenet_buf *dirbytes)
{
    int rc = casenet_keys_load(key_path, &h->keys);
    if (rc == CASENET_EPERM)
        return cli_fail(CLI_LOCAL, rc, "run 'chmod 600' on it",
                        "secret key file %s is accessible to group or others: permissions refused",
                        key_path);
    if (rc != CASENET_OK)
        return cli_file_fail(rc, key_path, "the member's secret key");
    rc = cn_strlcpy(h->member, casenet_keys_member_id(h->keys), sizeof h->member);
    if (rc == CASENET_OK)
        rc = casenet_authority_pk_load(auth_path, h->authority_pk);
    if (rc != CASENET_OK)
        return cli_file_fail(rc, auth_path, "the authority's public key");
    rc = cn_read_file(key_path, FILE_MAX, keybytes);
    if (rc == CASENET_OK)
        rc = cn_read_file(auth_path, FILE_MAX, authbytes);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot read %s or %s", key_path, auth_path);
    rc = cn_read_file(dir_path, FILE_MAX, dirbytes);
    if (rc != CASENET_OK)
        return cli_file_fail(rc, dir_path, "the directory");
    rc = casenet_directory_parse(dirbytes->data, dirbytes->len, h->authority_pk, cn_now_ms(), 0,
                                 &h->dir);
    if (rc == CASENET_EBADSIG)
        return cli_fail(CLI_VERIFY, rc, "is it signed by the authority whose key you pinned?",
                        "%s: directory signature does not verify", dir_path);
    if (rc == CASENET_EEXPIRED)
        return cli_fail(CLI_VERIFY, rc, "ask the authority for a fresh directory",
                        "%s: directory expired", dir_path);
    if (rc != CASENET_OK)
        return cli_fail(CLI_VERIFY, rc, NULL, "%s: invalid directory: %s", dir_path,
                        casenet_strerror(rc));
    return CLI_OK;
}

int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},
        {"key", required_argument, NULL, 'k'},
        {"authority", required_argument, NULL, 'a'},
        {"directory", required_argument, NULL, 'd'},
        {"broker", required_argument, NULL, 'b'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *home_opt = NULL, *key_path = NULL, *auth_path = NULL, *dir_path = NULL;
    const char *broker = "";
    bool force = false;
    int c;
    while ((c = cli_getopt(argc, argv, "H:k:a:d:b:fh", opts)) != -1) {
        switch (c) {
        case 'H':
            home_opt = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'a':
            auth_path = optarg;
            break;
        case 'd':
            dir_path = optarg;
            break;
        case 'b':
            broker = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            return cli_help(init_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!key_path || !auth_path || !dir_path)
        return cli_usage_error("--key, --authority and --directory are required");
    if (strlen(broker) >= HOME_BROKER_MAX || (broker[0] && !cn_endpoint_list_valid(broker)))
        return cli_usage_error("invalid --broker endpoint '%s': expected " CN_ENDPOINT_LIST_FORMS,
                               broker);

    struct home h = {0};
    casenet_buf keybytes = {0}, authbytes = {0}, dirbytes = {0};
    char *state = NULL;
    int ex = CLI_EFAIL;
    h.path = home_path(home_opt);
    if (!h.path)
        goto cleanup;
    state = cli_path(h.path, HOME_STATE_FILE);
    if (!state) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    if (!force && cli_exists(state)) {
        ex = cli_fail(CLI_LOCAL, CASENET_EINVAL, "pass --force to replace it",
                      "a member home exists already at %s", h.path);
        goto cleanup;
    }

    ex = init_load(&h, key_path, auth_path, dir_path, &keybytes, &authbytes, &dirbytes);
    if (ex != CLI_OK)
        goto cleanup;
    h.directory_version = casenet_directory_version(h.dir);
    snprintf(h.broker, sizeof h.broker, "%s", broker);
    ex = keep_box_keys(&h);
    if (ex != CLI_OK)
        goto cleanup;

    casenet_member self;
    const char *key_id = NULL;
    (void)casenet_keys_sign_pk(h.keys, &key_id);
    if (casenet_directory_find(h.dir, h.member, &self) != CASENET_OK)
        cli_warn("%s is not in this directory yet: send ID.pub to the authority", h.member);
    else if (self.sign_key_id && key_id && strcmp(self.sign_key_id, key_id) != 0)
        cli_warn("the directory lists signing key %s for %s, this keyring has %s", self.sign_key_id,
                 h.member, key_id);

    if (cli_mkdir(h.path) != CASENET_OK || chmod(h.path, 0700) != 0) {
        ex =
            cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot create %s: %s", h.path, strerror(errno));
        goto cleanup;
    }
    ex = copy_in(h.path, HOME_KEY_FILE, &keybytes, 0600);
    if (ex == CLI_OK)
        ex = copy_in(h.path, HOME_AUTHORITY_FILE, &authbytes, 0644);
    if (ex == CLI_OK)
        ex = copy_in(h.path, HOME_DIRECTORY_FILE, &dirbytes, 0644);
    if (ex == CLI_OK)
        ex = home_save_state(&h);
    if (ex != CLI_OK)
        goto cleanup;
    printf("member home %s for %s\n", h.path, h.member);
    printf("  directory version %llu, broker %s\n", (unsigned long long)h.directory_version,
           h.broker[0] ? h.broker : "(none: pass --broker to online commands)");
cleanup:
    casenet_buf_free(&dirbytes);
    casenet_buf_free(&authbytes);
    casenet_buf_free(&keybytes);
    free(state);
    casenet_keys_free(h.keys);
    casenet_directory_free(h.dir);
    free(h.path);
    return ex;
}

/* ------------------------------------------------------------ directory */

static const char update_usage[] =
    "usage: casenet directory update FILE [--home DIR]\n"
    "\n"
    "Verifies FILE against the pinned authority key and stores it as the home's\n"
    "directory, only if its version is not lower than the highest seen (exit 3,\n"
    "ROLLBACK, otherwise). This is how a home with an expired directory recovers\n"
    "offline.\n"
    "\n"
    "options:\n"
    "  -H, --home DIR   the member home\n"
    "  -h, --help       this text\n"
    "\n"
    "example:\n"
    "  casenet directory update directory-v8.bin\n";

static const char pull_usage[] =
    "usage: casenet directory pull [--home DIR] [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Asks the broker for its current directory, verifies it against the pinned\n"
    "authority key (the broker cannot forge one) and stores it if it is not older\n"
    "than the highest version seen.\n"
    "\n"
    "options:\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet directory pull\n";

static const char publish_usage[] =
    "usage: casenet directory publish FILE [--home DIR] [--broker ENDPOINT]\n"
    "                                      [--timeout SECONDS]\n"
    "\n"
    "Sends the authority's new signed directory FILE to the broker, which serves\n"
    "it from then on. FILE is verified against the pinned key first and must be\n"
    "newer than what the home has seen; on success the home stores it too.\n"
    "\n"
    "options:\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet admin revoke --authority authority.key --directory dir.bin \\\n"
    "      --member vn.ngo.example\n"
    "  casenet directory publish dir.bin\n";

static const char show_usage[] =
    "usage: casenet directory show [--home DIR] [--json]\n"
    "\n"
    "Prints the home's directory, verified against the pinned authority key:\n"
    "version, issued and expiry times (UTC) and every member (see 'casenet admin\n"
    "show'). Exit 3 if it has expired (after printing it).\n"
    "\n"
    "options:\n"
    "  -H, --home DIR   the member home\n"
    "  -j, --json       one JSON object instead of text\n"
    "  -h, --help       this text\n"
    "\n"
    "example:\n"
    "  casenet directory show --json\n";

/* Options common to the directory subcommands. */
struct dir_opts {
    const char *home;
    const char *broker;
    int timeout_ms;
    bool json;
    const char *file;
};

/* Parses the options of one directory subcommand. with_file: one FILE
 * argument; net: --broker and --timeout allowed; json: --json allowed.
 * Returns -1 to go on, else the exit code. */
static int dir_parse(int argc, char **argv, const char *usage, bool with_file, bool net, bool json,
                     struct dir_opts *o)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},    {"broker", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    o->timeout_ms = 10000;
    int c;
    while ((c = cli_getopt(argc, argv, "H:b:t:jh", opts)) != -1) {
        switch (c) {
        case 'H':
            o->home = optarg;
            break;
        case 'b':
        case 't':
            if (!net)
                return cli_usage_error("--broker and --timeout are for online subcommands");
            if (c == 'b')
                o->broker = optarg;
            else if (!net_parse_timeout(optarg, &o->timeout_ms))
                return cli_usage_error("--timeout wants 1..3600 seconds, not '%s'", optarg);
            break;
        case 'j':
            if (!json)
                return cli_usage_error("--json is only for 'directory show'");
            o->json = true;
            break;
        case 'h':
            return cli_help(usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (with_file) {
        if (optind != argc - 1)
            return cli_usage_error("expected exactly one directory FILE");
        o->file = argv[optind];
    } else if (optind != argc) {
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    }
    return -1;
}

static void report_stored(const struct home *h, uint64_t old)
{
    char exp[64];
    cli_format_time(casenet_directory_expires_at(h->dir), true, exp, sizeof exp);
    uint64_t v = casenet_directory_version(h->dir);
    if (v == old)
        printf("directory version %llu is current (expires %s)\n", (unsigned long long)v, exp);
    else
        printf("directory version %llu stored (was %llu), expires %s\n", (unsigned long long)v,
               (unsigned long long)old, exp);
}

static int dir_update(int argc, char **argv)
{
    struct dir_opts o = {0};
    int ex = dir_parse(argc, argv, update_usage, true, false, false, &o);
    if (ex >= 0)
        return ex;
    char *path = home_path(o.home);
    if (!path)
        return CLI_EFAIL;
    struct home *h = NULL;
    casenet_buf bytes = {0};
    bool expired = false;
    ex = home_open_allow_expired(path, &h, &expired);
    if (ex != CLI_OK)
        goto cleanup;
    int rc = cn_read_file(o.file, FILE_MAX, &bytes);
    if (rc != CASENET_OK) {
        ex = cli_file_fail(rc, o.file, "the directory");
        goto cleanup;
    }
    uint64_t old = 0;
    ex = home_store_directory(h, bytes.data, bytes.len, &old);
    if (ex == CLI_OK)
        report_stored(h, old);
cleanup:
    casenet_buf_free(&bytes);
    home_free(h);
    free(path);
    return ex;
}

/* True when the broker serves exactly the directory bytes. */
static bool same_as_served(casenet_client *client, const casenet_buf *bytes)
{
    casenet_buf served = {0};
    bool same = casenet_client_get_directory(client, &served) == CASENET_OK &&
                served.len == bytes->len && memcmp(served.data, bytes->data, bytes->len) == 0;
    casenet_buf_free(&served);
    return same;
}

static int dir_pull(int argc, char **argv)
{
    struct dir_opts o = {0};
    int ex = dir_parse(argc, argv, pull_usage, false, true, false, &o);
    if (ex >= 0)
        return ex;
    char *path = home_path(o.home);
    if (!path)
        return CLI_EFAIL;
    struct home *h = NULL;
    casenet_client *client = NULL;
    casenet_buf bytes = {0};
    bool expired = false;
    ex = home_open_allow_expired(path, &h, &expired);
    if (ex != CLI_OK)
        goto cleanup;
    ex = net_connect(h, o.broker, o.timeout_ms, &client);
    if (ex != CLI_OK)
        goto cleanup;
    uint64_t old = 0;
    ex = net_pull_directory(h, client, &old);
    if (ex == CLI_OK)
        report_stored(h, old);
cleanup:
    casenet_buf_free(&bytes);
    casenet_client_free(client);
    home_free(h);
    free(path);
    return ex;
}

static int dir_publish(int argc, char **argv)
{
    struct dir_opts o = {0};
    int ex = dir_parse(argc, argv, publish_usage, true, true, false, &o);
    if (ex >= 0)
        return ex;
    char *path = home_path(o.home);
    if (!path)
        return CLI_EFAIL;
    struct home *h = NULL;
    casenet_client *client = NULL;
    casenet_directory *nd = NULL;
    casenet_buf bytes = {0};
    bool expired = false;
    ex = home_open_allow_expired(path, &h, &expired);
    if (ex != CLI_OK)
        goto cleanup;
    int rc = cn_read_file(o.file, FILE_MAX, &bytes);
    if (rc != CASENET_OK) {
        ex = cli_file_fail(rc, o.file, "the directory");
        goto cleanup;
    }
    /* Check locally first: a directory the members would refuse is not
     * worth sending. */
    rc = casenet_directory_parse(bytes.data, bytes.len, h->authority_pk, cn_now_ms(),
                                 h->directory_version, &nd);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_VERIFY, rc, NULL,
                      "%s does not verify as a directory newer than "
                      "version %llu: %s",
                      o.file, (unsigned long long)h->directory_version, casenet_strerror(rc));
        goto cleanup;
    }
    ex = net_connect(h, o.broker, o.timeout_ms, &client);
    if (ex != CLI_OK)
        goto cleanup;
    uint64_t served = 0;
    rc = casenet_client_publish_directory(client, bytes.data, bytes.len, &served);
    if (rc == CASENET_ECONFLICT && same_as_served(client, &bytes)) {
        /* Publishing is idempotent: this very directory is served already. */
        printf("%s is already current: the broker serves directory version %llu\n", o.file,
               (unsigned long long)casenet_directory_version(nd));
    } else if (rc != CASENET_OK) {
        ex = net_fail(client, rc, "PublishDirectory refused");
        goto cleanup;
    } else {
        printf("published %s: the broker now serves directory version %llu\n", o.file,
               (unsigned long long)served);
    }
    uint64_t old = 0;
    ex = home_store_directory(h, bytes.data, bytes.len, &old);
    casenet_client_set_directory(client, h->dir);
cleanup:
    casenet_directory_free(nd);
    casenet_buf_free(&bytes);
    casenet_client_free(client);
    home_free(h);
    free(path);
    return ex;
}

static int dir_show(int argc, char **argv)
{
    struct dir_opts o = {0};
    int ex = dir_parse(argc, argv, show_usage, false, false, true, &o);
    if (ex >= 0)
        return ex;
    char *path = home_path(o.home);
    if (!path)
        return CLI_EFAIL;
    struct home *h = NULL;
    char *file = NULL;
    bool expired = false;
    ex = home_open_allow_expired(path, &h, &expired);
    if (ex != CLI_OK)
        goto cleanup;
    file = cli_path(path, HOME_DIRECTORY_FILE);
    if (!file) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    ex = admin_show_file(file, h->authority_pk, h->directory_version, o.json);
    if (ex == CLI_OK && expired) {
        char when[64];
        cli_format_time(casenet_directory_expires_at(h->dir), true, when, sizeof when);
        ex = cli_fail(CLI_VERIFY, CASENET_EEXPIRED, "run 'casenet directory pull'",
                      "directory expired at %s", when);
    }
cleanup:
    free(file);
    home_free(h);
    free(path);
    return ex;
}

static const struct cli_cmd directory_commands[] = {
    {"update", dir_update, "store a newer signed directory from a file"},
    {"pull", dir_pull, "fetch the broker's directory, verify and store it"},
    {"publish", dir_publish, "send the authority's new directory to the broker"},
    {"show", dir_show, "print the home's directory, verified"},
};

int cmd_directory(int argc, char **argv)
{
    return cli_dispatch("directory", directory_commands,
                        sizeof directory_commands / sizeof directory_commands[0], argc, argv);
}
