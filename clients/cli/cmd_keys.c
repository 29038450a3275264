/* cmd_keys.c - `casenet keygen`: a member's key pairs, generated locally; the
 * secret keyring never leaves the machine, the public file goes to the
 * authority. */
#include "cli.h"
#include "commands.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char keygen_usage[] =
    "usage: casenet keygen ID --out DIR\n"
    "\n"
    "Generates the key pairs of member ID (Ed25519 signing, X25519 box, CURVE\n"
    "transport) into DIR/ID.key (secret, mode 0600) and DIR/ID.pub (public: send\n"
    "it to the network authority). Refuses to overwrite existing files.\n"
    "ID is [a-z0-9][a-z0-9.-]{1,63}, e.g. vn.police.a05.\n"
    "\n"
    "options:\n"
    "  -o, --out DIR   directory for the key files (created 0700 if absent)\n"
    "  -h, --help      this text\n"
    "\n"
    "example:\n"
    "  casenet keygen vn.hotline111 --out ./keys\n";

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "o:h", opts)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'h':
            return cli_help(keygen_usage);
        default:
            return CLI_EUSAGE;
        }
    }
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
