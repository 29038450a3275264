/* cmd_admin.c - `casenet admin ...`: the network authority's offline
 * operations on the signed directory (init, add, revoke, suspend, reinstate,
 * renew) and `admin show`, which anyone can use to inspect a directory file. */
#include "cli.h"
#include "commands.h"
#include "casenet.pb-c.h"
#include "directory_impl.h"
#include "dirview.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PUBFILE_MAX    (64u * 1024u)
#define MAX_ATTRS      32
#define DAY_MS         (86400LL * 1000)
#define MAX_VALID_DAYS 3660

/* ------------------------------------------------------------ admin init */

static const char init_usage[] =
    "usage: casenet admin init --out DIR [--network NAME --directory FILE]\n"
    "                          [--valid-days N]\n"
    "\n"
    "Generates the network authority's Ed25519 signing key into DIR/authority.key\n"
    "(secret, mode 0600: keep it offline) and DIR/authority.pub (every member\n"
    "pins it with 'casenet init --authority'). With --network, also signs\n"
    "version 1 of the directory FILE (no members yet) naming the network: the\n"
    "audit log's origin is casenet.audit/NAME, fixed for the life of the log\n"
    "(a directory that changes it is refused). Without a name the origin is\n"
    "the broker's member id.\n"
    "\n"
    "options:\n"
    "  -o, --out DIR          directory for the key files (created 0700 if absent)\n"
    "  -N, --network NAME     the network's name, e.g. vn.cop (written like a member id)\n"
    "  -d, --directory FILE   the directory to create (with --network; must not exist)\n"
    "  -V, --valid-days N     validity of that directory in days (default 30)\n"
    "  -h, --help             this text\n"
    "\n"
    "example:\n"
    "  casenet admin init --out ./authority --network vn.cop --directory directory\n";

static bool parse_valid_days(const char *s, int64_t *ms);
static int write_directory(const casenet_keys *authority, const char *path, const casenet_buf *nd,
                           const char *what);

static int admin_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"network", required_argument, NULL, 'N'},
        {"directory", required_argument, NULL, 'd'},
        {"valid-days", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *network = NULL, *dir_path = NULL;
    int64_t validity = 30 * DAY_MS;
    int c;
    while ((c = cli_getopt(argc, argv, "o:N:d:V:h", opts)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'N':
            network = optarg;
            break;
        case 'd':
            dir_path = optarg;
            break;
        case 'V':
            if (!parse_valid_days(optarg, &validity))
                return CLI_EUSAGE;
            break;
        case 'h':
            return cli_help(init_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!out)
        return cli_usage_error("--out DIR is required");
    if (!network != !dir_path)
        return cli_usage_error("--network NAME and --directory FILE go together");
    if (network && !casenet_member_id_valid(network))
        return cli_usage_error("invalid network name '%s' (like a member id, e.g. vn.cop)",
                               network);
    if (dir_path && cli_exists(dir_path))
        return cli_usage_error("%s exists already: the network is named when its directory "
                               "is created",
                               dir_path);

    char *secret = cli_path(out, "authority.key");
    char *public = cli_path(out, "authority.pub");
    casenet_keys *keys = NULL;
    casenet_buf nd = {0};
    int ex = CLI_EFAIL;
    if (!secret || !public) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    if (cli_mkdir(out) != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot create %s: %s", out, strerror(errno));
        goto cleanup;
    }
    if (cli_exists(secret) || cli_exists(public)) {
        ex = cli_fail(CLI_LOCAL, CASENET_EINVAL, "an authority key exists already",
                      "refusing to overwrite %s or %s", secret, public);
        goto cleanup;
    }
    int rc = casenet_keys_generate_authority(cn_now_ms(), &keys);
    if (rc == CASENET_OK)
        rc = casenet_keys_save(keys, secret, public);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot create the authority key: %s",
                      casenet_strerror(rc));
        goto cleanup;
    }
    const char *key_id = NULL;
    (void)casenet_keys_sign_pk(keys, &key_id);
    printf("authority secret key  %s  (mode 0600, keep offline)\n", secret);
    printf("authority public key  %s  (give to every member)\n", public);
    printf("authority key id      %s\n", key_id ? key_id : "?");
    ex = CLI_OK;
    if (network) {
        rc = casenet_directory_create(keys, network, cn_now_ms(), validity, &nd);
        if (rc != CASENET_OK) {
            ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot sign the directory: %s",
                          casenet_strerror(rc));
            goto cleanup;
        }
        char what[CASENET_MEMBER_ID_MAX + 32];
        snprintf(what, sizeof what, "network %s", network);
        ex = write_directory(keys, dir_path, &nd, what);
    }
cleanup:
    casenet_buf_free(&nd);
    casenet_keys_free(keys);
    free(public);
    free(secret);
    return ex;
}

/* ------------------------------------------------------------ shared */

/* True when path holds a PublicKeyFile (ID.pub); its member id into member. */
static bool public_key_file_of(const char *path, char *member, size_t cap)
{
    casenet_buf buf = {0};
    if (cn_read_file(path, PUBFILE_MAX, &buf) != CASENET_OK)
        return false;
    Casenet__V1__PublicKeyFile *f = casenet__v1__public_key_file__unpack(NULL, buf.len, buf.data);
    bool ok = f && casenet_member_id_valid(f->member_id) && f->n_keys > 0 &&
              cn_strlcpy(member, f->member_id, cap) == CASENET_OK;
    casenet__v1__public_key_file__free_unpacked(f, NULL);
    casenet_buf_free(&buf);
    return ok;
}

/* Loads the authority's secret keyring from path. A public key file (the
 * authority's or a member's) or a member's secret keyring given instead is
 * named as such: advising chmod on a public key would be wrong. */
static int load_authority(const char *path, casenet_keys **out)
{
    static const char need[] = "--authority wants the authority's secret key (authority.key from "
                               "'casenet admin init'), kept offline";
    uint8_t pk[CASENET_SIGN_PK_BYTES];
    int rc = casenet_keys_load(path, out);
    if (rc == CASENET_EPERM || rc == CASENET_EBADREQ) {
        /* Mode and content of a public key file fail the same way. */
        if (casenet_authority_pk_load(path, pk) == CASENET_OK)
            return cli_fail(CLI_LOCAL, CASENET_EINVAL, need,
                            "%s is the authority's public key, not its secret key", path);
        char member[CASENET_MEMBER_ID_MAX + 1];
        if (public_key_file_of(path, member, sizeof member))
            return cli_fail(CLI_LOCAL, CASENET_EINVAL, need, "%s is the public key of member %s",
                            path, member);
    }
    if (rc == CASENET_EPERM)
        return cli_fail(CLI_LOCAL, rc, "run 'chmod 600' on it",
                        "authority key %s is accessible to group or others: permissions refused",
                        path);
    if (rc != CASENET_OK)
        return cli_file_fail(rc, path, "the authority's secret key");
    if (strcmp(casenet_keys_member_id(*out), "authority") != 0) {
        rc = cli_fail(CLI_LOCAL, CASENET_EINVAL, need, "%s is the secret key of member %s", path,
                      casenet_keys_member_id(*out));
        casenet_keys_free(*out);
        *out = NULL;
        return rc;
    }
    return CLI_OK;
}

/* Reads the current directory, or leaves *cur empty when the file does not
 * exist and may_create. */
static int read_directory(const char *path, bool may_create, casenet_buf *cur)
{
    if (may_create && !cli_exists(path))
        return CLI_OK;
    int rc = cn_read_file(path, DIRECTORY_MAX, cur);
    if (rc != CASENET_OK)
        return cli_file_fail(rc, path, "the directory");
    return CLI_OK;
}

/* Writes the new directory and prints its version. */
static int write_directory(const casenet_keys *authority, const char *path, const casenet_buf *nd,
                           const char *what)
{
    int rc = cn_write_file_atomic(path, nd->data, nd->len, 0644, false);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot write %s: %s", path, strerror(errno));
    casenet_directory *d = NULL;
    const char *key_id = NULL;
    rc = casenet_directory_parse(nd->data, nd->len, casenet_keys_sign_pk(authority, &key_id),
                                 cn_now_ms(), 0, &d);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "the new directory does not verify: %s",
                        casenet_strerror(rc));
    char exp[64];
    cli_format_time(casenet_directory_expires_at(d), true, exp, sizeof exp);
    printf("%s: %s; version %llu, %zu members, expires %s\n", path, what,
           (unsigned long long)casenet_directory_version(d), casenet_directory_count(d), exp);
    casenet_directory_free(d);
    return CLI_OK;
}

static int directory_error(int rc, const char *path)
{
    if (rc == CASENET_EBADSIG)
        return cli_fail(CLI_VERIFY, rc, "is it signed by this authority key?",
                        "%s: directory signature does not verify", path);
    if (rc == CASENET_EINVAL)
        return cli_fail(CLI_LOCAL, rc,
                        "groups are 1..64 of a-z 0-9 . _ -; ids those of 'casenet keygen'",
                        "invalid member data: a group, the display name or the member id");
    if (rc == CASENET_ENOTFOUND)
        return cli_fail(CLI_LOCAL, rc, "see 'casenet admin show'", "no such member in %s", path);
    return cli_fail(CLI_VERIFY, rc, NULL, "%s: %s", path, casenet_strerror(rc));
}

/* --valid-days S: *ms = S days and true, or false after printing the usage
 * error (the caller exits with CLI_EUSAGE). */
static bool parse_valid_days(const char *s, int64_t *ms)
{
    uint64_t days = 0;
    if (!cli_parse_uint(s, 1, MAX_VALID_DAYS, &days)) {
        cli_usage_error("--valid-days wants 1..%d, not '%s'", MAX_VALID_DAYS, s);
        return false;
    }
    *ms = (int64_t)days * DAY_MS;
    return true;
}

/* Appends the comma-separated items of s to list. */
static bool add_items(char *s, const char **list, size_t *n)
{
    char *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_ATTRS)
            return false;
        list[(*n)++] = t;
    }
    return true;
}

/* ------------------------------------------------------------ admin add */

static const char add_usage[] =
    "usage: casenet admin add --authority KEY --directory FILE --member ID.pub\n"
    "                         --role ROLE [--role ROLE ...] [--group GROUP ...]\n"
    "                         [--name TEXT] [--valid-days N]\n"
    "\n"
    "Adds the member whose public key file is ID.pub to the directory FILE (or\n"
    "replaces its keys and attributes if it is listed already, e.g. after a key\n"
    "rotation), bumps the version and re-signs. FILE is created if absent.\n"
    "\n"
    "options:\n"
    "  -a, --authority KEY    the authority's secret key (authority.key)\n"
    "  -d, --directory FILE   the signed directory to update or create\n"
    "  -m, --member ID.pub    the member's public key file (from 'casenet keygen')\n"
    "  -r, --role ROLE        intake, responder, takedown-requester, platform,\n"
    "                         coordinator, gateway, broker; repeatable or a,b\n"
    "  -g, --group GROUP      e.g. police, platforms, a province code; repeatable\n"
    "  -n, --name TEXT        display name (default: the id)\n"
    "  -V, --valid-days N     validity of the new directory in days (default 30)\n"
    "  -h, --help             this text\n"
    "\n"
    "example:\n"
    "  casenet admin add --authority authority/authority.key --directory directory.bin \\\n"
    "      --member keys/vn.police.a05.pub --role responder --group police \\\n"
    "      --name 'Cyber police unit A05'\n";

static int admin_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"authority", required_argument, NULL, 'a'},
        {"directory", required_argument, NULL, 'd'},
        {"member", required_argument, NULL, 'm'},
        {"role", required_argument, NULL, 'r'},
        {"group", required_argument, NULL, 'g'},
        {"name", required_argument, NULL, 'n'},
        {"valid-days", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *auth_path = NULL, *dir_path = NULL, *pub_path = NULL;
    const char *roles[MAX_ATTRS], *groups[MAX_ATTRS];
    size_t n_roles = 0, n_groups = 0;
    casenet_member_spec spec = {0};
    int64_t validity = 30 * DAY_MS;
    int c;
    while ((c = cli_getopt(argc, argv, "a:d:m:r:g:n:V:h", opts)) != -1) {
        switch (c) {
        case 'a':
            auth_path = optarg;
            break;
        case 'd':
            dir_path = optarg;
            break;
        case 'm':
            pub_path = optarg;
            break;
        case 'r':
            if (!add_items(optarg, roles, &n_roles))
                return cli_usage_error("too many roles (at most %d)", MAX_ATTRS);
            break;
        case 'g':
            if (!add_items(optarg, groups, &n_groups))
                return cli_usage_error("too many groups (at most %d)", MAX_ATTRS);
            break;
        case 'n':
            spec.display_name = optarg;
            break;
        case 'V':
            if (!parse_valid_days(optarg, &validity))
                return CLI_EUSAGE;
            break;
        case 'h':
            return cli_help(add_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!auth_path || !dir_path || !pub_path)
        return cli_usage_error("--authority, --directory and --member are required");
    if (n_roles == 0)
        return cli_usage_error("at least one --role is required");
    for (size_t i = 0; i < n_roles; i++) {
        if (!cn_role_known(roles[i]))
            return cli_usage_error("unknown role '%s': intake, responder, takedown-requester, "
                                   "platform, coordinator, gateway or broker",
                                   roles[i]);
    }
    spec.roles = roles;
    spec.n_roles = n_roles;
    spec.groups = groups;
    spec.n_groups = n_groups;

    casenet_keys *authority = NULL;
    casenet_buf cur = {0}, pub = {0}, nd = {0};
    int ex = load_authority(auth_path, &authority);
    if (ex != CLI_OK)
        goto cleanup;
    ex = read_directory(dir_path, true, &cur);
    if (ex != CLI_OK)
        goto cleanup;
    int rc = cn_read_file(pub_path, PUBFILE_MAX, &pub);
    if (rc != CASENET_OK) {
        ex = cli_file_fail(rc, pub_path, "the member's public key");
        goto cleanup;
    }
    rc = casenet_directory_add_member(authority, cur.data, cur.len, pub.data, pub.len, &spec,
                                      cn_now_ms(), validity, &nd);
    if (rc == CASENET_EBADREQ) {
        ex = cli_fail(CLI_LOCAL, rc, "is it an ID.pub from 'casenet keygen'?",
                      "%s or %s is malformed", pub_path, dir_path);
        goto cleanup;
    }
    if (rc == CASENET_ECONFLICT) {
        ex = cli_fail(CLI_LOCAL, rc,
                      "to re-admit the organisation, it makes a new key under a new id "
                      "('casenet keygen NEWID') and you add that",
                      "the member of %s is revoked in %s, and revocation is final", pub_path,
                      dir_path);
        goto cleanup;
    }
    if (rc != CASENET_OK) {
        ex = directory_error(rc, dir_path);
        goto cleanup;
    }
    ex = write_directory(authority, dir_path, &nd, "member added");
cleanup:
    casenet_buf_free(&nd);
    casenet_buf_free(&pub);
    casenet_buf_free(&cur);
    casenet_keys_free(authority);
    return ex;
}

/* ------------------------------------------------------------ revoke, suspend, reinstate */

/* The first line names the subcommand; the rest is shared. */
static const char status_usage[] =
    "\n"
    "Sets the status of member ID in the directory FILE (revoke: revoked for good;\n"
    "suspend: suspended; reinstate: a suspended member active again), bumps the\n"
    "version and re-signs. The broker refuses the keys of a member that is not\n"
    "active once it serves the new directory (publish it with 'casenet directory\n"
    "publish'). Revocation is final: a revoked member is never reinstated or\n"
    "re-added (re-admission is a new key under a new id), and the broker's own\n"
    "entry cannot be suspended or revoked.\n"
    "\n"
    "options:\n"
    "  -a, --authority KEY    the authority's secret key (authority.key)\n"
    "  -d, --directory FILE   the signed directory to update\n"
    "  -m, --member ID        the member id\n"
    "  -V, --valid-days N     validity of the new directory in days (default 30)\n"
    "  -h, --help             this text\n"
    "\n"
    "example:\n"
    "  casenet admin suspend --authority authority/authority.key \\\n"
    "      --directory directory.bin --member vn.ngo.example\n";

static const char renew_usage[] =
    "usage: casenet admin renew --authority KEY --directory FILE [--valid-days N]\n"
    "\n"
    "Re-signs the directory FILE unchanged with a new expiry (now + N days) as\n"
    "the next version. An expired directory stops new messages at the broker\n"
    "and every command of the members warns from 7 days before: renew, then\n"
    "publish it with 'casenet directory publish'.\n"
    "\n"
    "options:\n"
    "  -a, --authority KEY    the authority's secret key (authority.key)\n"
    "  -d, --directory FILE   the signed directory to renew (expired or not)\n"
    "  -V, --valid-days N     validity of the new directory in days (default 30)\n"
    "  -h, --help             this text\n"
    "\n"
    "example:\n"
    "  casenet admin renew --authority authority/authority.key --directory directory\n";

/* admin_status's status for `renew`: none changes. */
#define RENEW ((casenet_member_status)0)

/* revoke, suspend, reinstate and (status RENEW, without --member) renew. */
static int admin_status(int argc, char **argv, casenet_member_status status, const char *what,
                        const char *verb)
{
    static const struct option opts[] = {
        {"authority", required_argument, NULL, 'a'},
        {"directory", required_argument, NULL, 'd'},
        {"member", required_argument, NULL, 'm'},
        {"valid-days", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *auth_path = NULL, *dir_path = NULL, *member = NULL;
    int64_t validity = 30 * DAY_MS;
    int c;
    while ((c = cli_getopt(argc, argv, "a:d:m:V:h", opts)) != -1) {
        switch (c) {
        case 'a':
            auth_path = optarg;
            break;
        case 'd':
            dir_path = optarg;
            break;
        case 'm':
            member = optarg;
            break;
        case 'V':
            if (!parse_valid_days(optarg, &validity))
                return CLI_EUSAGE;
            break;
        case 'h':
            if (status == RENEW)
                return cli_help(renew_usage);
            printf("usage: casenet admin %s --authority KEY --directory FILE --member ID\n"
                   "                          [--valid-days N]\n",
                   verb);
            return cli_help(status_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (status == RENEW && member)
        return cli_usage_error("renew re-signs the whole directory: --member does not apply");
    if (!auth_path || !dir_path || (!member && status != RENEW))
        return cli_usage_error("--authority, --directory%s are required",
                               status == RENEW ? "" : " and --member");
    if (member && !casenet_member_id_valid(member))
        return cli_usage_error("invalid member id '%s'", member);

    casenet_keys *authority = NULL;
    casenet_buf cur = {0}, nd = {0};
    int ex = load_authority(auth_path, &authority);
    if (ex != CLI_OK)
        goto cleanup;
    ex = read_directory(dir_path, false, &cur);
    if (ex != CLI_OK)
        goto cleanup;
    int rc = status == RENEW
                 ? casenet_directory_renew(authority, cur.data, cur.len, cn_now_ms(), validity, &nd)
                 : casenet_directory_set_status(authority, cur.data, cur.len, member, status,
                                                cn_now_ms(), validity, &nd);
    if (rc == CASENET_ENOTFOUND) {
        ex = cli_fail(CLI_LOCAL, rc, "see 'casenet admin show'", "%s is not in %s", member,
                      dir_path);
        goto cleanup;
    }
    if (rc == CASENET_ECONFLICT) {
        ex = cli_fail(CLI_LOCAL, rc,
                      "to re-admit the organisation, it makes a new key under a new id "
                      "('casenet keygen NEWID') and you add that with 'casenet admin add'",
                      "%s is revoked in %s, and revocation is final", member, dir_path);
        goto cleanup;
    }
    if (rc == CASENET_EFORBIDDEN) {
        ex = cli_fail(CLI_LOCAL, rc,
                      "to retire this broker, add the new broker's keys with --role broker "
                      "under a new id instead",
                      "%s is the network's broker: without it no member can connect, so it "
                      "cannot be suspended or revoked",
                      member);
        goto cleanup;
    }
    if (rc != CASENET_OK) {
        ex = directory_error(rc, dir_path);
        goto cleanup;
    }
    char msg[CASENET_MEMBER_ID_MAX + 32];
    snprintf(msg, sizeof msg, "%s%s%s", member ? member : "", member ? " " : "", what);
    ex = write_directory(authority, dir_path, &nd, msg);
cleanup:
    casenet_buf_free(&nd);
    casenet_buf_free(&cur);
    casenet_keys_free(authority);
    return ex;
}

static int admin_revoke(int argc, char **argv)
{
    return admin_status(argc, argv, CASENET_MEMBER_REVOKED, "revoked", "revoke");
}

static int admin_suspend(int argc, char **argv)
{
    return admin_status(argc, argv, CASENET_MEMBER_SUSPENDED, "suspended", "suspend");
}

static int admin_reinstate(int argc, char **argv)
{
    return admin_status(argc, argv, CASENET_MEMBER_ACTIVE, "reinstated", "reinstate");
}

/* ------------------------------------------------------------ admin renew */

/* admin_status without a status: the directory as it is, renewed. */
static int admin_renew(int argc, char **argv)
{
    return admin_status(argc, argv, RENEW, "renewed", "renew");
}

/* ------------------------------------------------------------ admin show */

static const char show_usage[] =
    "usage: casenet admin show FILE [--authority authority.pub] [--json]\n"
    "\n"
    "Prints a signed directory: version, issued and expiry times (UTC) and, per\n"
    "member, id, name, roles, groups, status and key ids. With --authority the\n"
    "signature is verified (exit 3 if it fails); without, the listing says\n"
    "\"signature NOT verified\".\n"
    "\n"
    "options:\n"
    "  -a, --authority FILE   the authority's public key to verify with\n"
    "  -j, --json             one JSON object instead of text\n"
    "  -h, --help             this text\n"
    "\n"
    "example:\n"
    "  casenet admin show directory.bin --authority authority/authority.pub\n";

int admin_show_file(const char *path, const uint8_t *authority_pk, uint64_t min_version, bool json)
{
    casenet_buf bytes = {0};
    casenet_directory *d = NULL;
    int rc = cn_read_file(path, DIRECTORY_MAX, &bytes);
    if (rc != CASENET_OK)
        return cli_file_fail(rc, path, "the directory");
    bool expired = false;
    char verdict[96];
    int ex = CLI_EFAIL;
    if (authority_pk) {
        rc = dirview_verify(bytes.data, bytes.len, authority_pk, min_version, &d, &expired);
        if (rc != CASENET_OK) {
            ex = directory_error(rc, path);
            goto cleanup;
        }
        snprintf(verdict, sizeof verdict, "signature verified");
    } else {
        int64_t exp = 0;
        rc = dirview_expires_at(bytes.data, bytes.len, &exp);
        if (rc != CASENET_OK) {
            ex = cli_fail(CLI_VERIFY, rc, NULL, "%s is not a signed directory", path);
            goto cleanup;
        }
        expired = exp <= cn_now_ms();
        snprintf(verdict, sizeof verdict, "signature NOT verified (no --authority given)");
    }
    rc = dirview_print(bytes.data, bytes.len, json, verdict, expired);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot print %s", path);
        goto cleanup;
    }
    ex = CLI_OK;
cleanup:
    casenet_directory_free(d);
    casenet_buf_free(&bytes);
    return ex;
}

static int admin_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"authority", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *auth_path = NULL;
    bool json = false;
    int c;
    while ((c = cli_getopt(argc, argv, "a:jh", opts)) != -1) {
        switch (c) {
        case 'a':
            auth_path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            return cli_help(show_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("expected exactly one directory FILE");
    uint8_t pk[CASENET_SIGN_PK_BYTES];
    if (auth_path) {
        int rc = casenet_authority_pk_load(auth_path, pk);
        if (rc != CASENET_OK)
            return cli_file_fail(rc, auth_path, "the authority's public key");
    }
    return admin_show_file(argv[optind], auth_path ? pk : NULL, 0, json);
}

/* ------------------------------------------------------------ dispatch */

static const struct cli_cmd admin_commands[] = {
    {"init", admin_init, "create the authority's signing key"},
    {"add", admin_add, "add or replace a member, re-sign the directory"},
    {"revoke", admin_revoke, "revoke a member"},
    {"suspend", admin_suspend, "suspend a member"},
    {"reinstate", admin_reinstate, "make a suspended member active again"},
    {"renew", admin_renew, "re-sign the directory with a new expiry"},
    {"show", admin_show, "print a directory file, verified with --authority"},
};

int cmd_admin(int argc, char **argv)
{
    return cli_dispatch("admin", admin_commands, sizeof admin_commands / sizeof admin_commands[0],
                        argc, argv);
}
