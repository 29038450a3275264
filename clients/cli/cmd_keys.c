/* cmd_keys.c - `casenet keygen`: a member's key pairs, generated locally; the
 * secret keyring never leaves the machine, the public file goes to the
 * authority. `keygen --rotate` adds a new set to a home's keyring. */
#include "cli.h"
#include "commands.h"
#include "home.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char keygen_usage[] =
    "usage: casenet keygen ID --out DIR\n"
    "       casenet keygen --rotate [--home DIR] [--out DIR]\n"
    "\n"
    "Generates the key pairs of member ID (Ed25519 signing, X25519 box, CURVE\n"
    "transport) into DIR/ID.key (secret, mode 0600) and DIR/ID.pub (public: send\n"
    "it to the network authority). Refuses to overwrite existing files.\n"
    "ID is [a-z0-9][a-z0-9.-]{1,63}, e.g. vn.police.a05.\n"
    "\n"
    "With --rotate: key rotation. Adds a new key pair of each use to the home's\n"
    "keyring (member.key, replaced atomically) and keeps every older pair, so mail\n"
    "already wrapped to a retired box key still opens; writes the new public keys\n"
    "to DIR/ID.pub (default: the home). Send that file to the authority for\n"
    "re-admission ('casenet admin add' with it, then 'casenet directory publish');\n"
    "until the broker serves that directory this member cannot connect (its mail\n"
    "waits at the broker). Never replace the keyring with a fresh 'keygen' +\n"
    "'init --force' instead: that loses the old box keys and the mail for them.\n"
    "\n"
    "options:\n"
    "  -o, --out DIR   directory for the key files (created 0700 if absent)\n"
    "  -r, --rotate    rotate the keys of the home's member (see above)\n"
    "  -H, --home DIR  the member home (with --rotate)\n"
    "  -h, --help      this text\n"
    "\n"
    "example:\n"
    "  casenet keygen vn.hotline111 --out ./keys\n"
    "  casenet keygen --rotate --out ./outbox\n";

/* `keygen --rotate`: the home's keyring gains a new current set, old pairs
 * kept; the new public file goes to out (NULL: the home). */
static int rotate(const char *home_opt, const char *out)
{
    char *path = home_path(home_opt);
    if (!path)
        return CLI_EFAIL;
    char *secret = cli_path(path, HOME_KEY_FILE), *public = NULL;
    casenet_keys *keys = NULL;
    int ex = CLI_EFAIL;
    if (!secret) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    int rc = casenet_keys_load(secret, &keys);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, "is it a member home ('casenet init')?",
                      "cannot load the keyring %s: %s", secret, casenet_strerror(rc));
        goto cleanup;
    }
    const char *id = casenet_keys_member_id(keys);
    if (asprintf(&public, "%s/%s.pub", out ? out : path, id) < 0) {
        public = NULL;
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    if (out && cli_mkdir(out) != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot create %s: %s", out, strerror(errno));
        goto cleanup;
    }
    size_t retired = 0;
    rc = casenet_keys_rotate(keys, cn_now_ms(), &retired);
    if (rc == CASENET_ETOOLARGE) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "the keyring %s is full (64 key pairs)", secret);
        goto cleanup;
    }
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot generate keys: %s", casenet_strerror(rc));
        goto cleanup;
    }
    rc = casenet_keys_save_replace(keys, secret, public);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, "the old keyring is unchanged", "cannot write %s or %s: %s",
                      secret, public, casenet_strerror(rc));
        goto cleanup;
    }
    const char *key_id = NULL;
    (void)casenet_keys_sign_pk(keys, &key_id);
    printf("rotated keyring %s  (new signing, box and CURVE keys for %s)\n", secret, id);
    printf("retired keys    kept: %zu old box key%s (mail already wrapped to an old key still "
           "opens),\n"
           "                and the old signing and CURVE keys\n",
           retired, retired == 1 ? "" : "s");
    printf("public keys     %s  (send to the network authority for re-admission)\n", public);
    printf("signing key id  %s\n", key_id ? key_id : "?");
    fprintf(stderr,
            "casenet: keygen: until the broker serves a directory with these keys, %s "
            "cannot connect; its mail waits at the broker\n",
            id);
    ex = CLI_OK;
cleanup:
    casenet_keys_free(keys);
    free(public);
    free(secret);
    free(path);
    return ex;
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"rotate", no_argument, NULL, 'r'},
        {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *home = NULL;
    bool rot = false;
    int c;
    while ((c = cli_getopt(argc, argv, "o:rH:h", opts)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'r':
            rot = true;
            break;
        case 'H':
            home = optarg;
            break;
        case 'h':
            return cli_help(keygen_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (rot) {
        if (optind != argc)
            return cli_usage_error("--rotate takes no member ID: it rotates the home's member");
        return rotate(home, out);
    }
    if (home)
        return cli_usage_error("--home goes with --rotate");
    if (optind != argc - 1)
        return cli_usage_error("expected exactly one member ID");
    if (!out)
        return cli_usage_error("--out DIR is required");
    const char *id = argv[optind];
    if (!casenet_member_id_valid(id))
        return cli_usage_error("invalid member id '%s': expected [a-z0-9][a-z0-9.-]{1,63}", id);

    char *secret = NULL, *public = NULL;
    casenet_keys *keys = NULL;
    int ex = CLI_EFAIL;
    if (asprintf(&secret, "%s/%s.key", out, id) < 0) {
        secret = NULL;
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    if (asprintf(&public, "%s/%s.pub", out, id) < 0) {
        public = NULL;
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    if (cli_mkdir(out) != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot create %s: %s", out, strerror(errno));
        goto cleanup;
    }
    if (cli_exists(secret) || cli_exists(public)) {
        ex = cli_fail(CLI_LOCAL, CASENET_EINVAL, "choose another --out or remove them first",
                      "refusing to overwrite %s or %s", secret, public);
        goto cleanup;
    }
    int rc = casenet_keys_generate(id, cn_now_ms(), &keys);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot generate keys: %s", casenet_strerror(rc));
        goto cleanup;
    }
    rc = casenet_keys_save(keys, secret, public);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot write %s: %s", secret, casenet_strerror(rc));
        goto cleanup;
    }
    const char *key_id = NULL;
    (void)casenet_keys_sign_pk(keys, &key_id);
    printf("secret keyring  %s  (mode 0600, keep it here)\n", secret);
    printf("public keys     %s  (send to the network authority)\n", public);
    printf("signing key id  %s\n", key_id ? key_id : "?");
    ex = CLI_OK;
cleanup:
    casenet_keys_free(keys);
    free(public);
    free(secret);
    return ex;
}
