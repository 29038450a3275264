/* home.c - the member home of the casenet CLI: loading it with every check
 * (key file permissions, pinned authority key, directory signature, expiry
 * and rollback), and updating its directory and state atomically. */
#include "home.h"

#include "cli.h"
#include "directory_impl.h"
#include "dirview.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STATE_MAX (64u * 1024u)
/* Every command warns this long before the directory expires (the broker's
 * log and --check-config do too, BROKER_EXPIRY_WARN_MS). */
#define EXPIRY_WARN_MS (7LL * 86400 * 1000)

/* A warning on stderr when d expires within EXPIRY_WARN_MS: after expiry
 * the broker takes no new messages until a renewed directory arrives. */
static void warn_expiry(const casenet_directory *d)
{
    int64_t exp = casenet_directory_expires_at(d), left = exp - cn_now_ms();
    if (left <= 0 || left > EXPIRY_WARN_MS)
        return;
    char when[64];
    cli_format_time(exp, true, when, sizeof when);
    cli_warn("directory version %llu expires at %s (in %lld h); after that the broker takes "
             "no new messages: ask the authority to renew it ('casenet admin renew'), then run "
             "'casenet directory pull'",
             (unsigned long long)casenet_directory_version(d), when,
             (long long)((left + 3599999) / 3600000));
}

char *home_path(const char *opt)
{
    const char *env = getenv("CASENET_HOME");
    char *p = NULL;
    if (opt && opt[0]) {
        p = strdup(opt);
    } else if (env && env[0]) {
        p = strdup(env);
    } else {
        const char *home = getenv("HOME");
        if (!home || !home[0]) {
            cli_fail(CLI_LOCAL, CASENET_EINVAL, "pass --home DIR or set CASENET_HOME",
                     "no member home: neither --home, $CASENET_HOME nor $HOME is set");
            return NULL;
        }
        p = cli_path(home, ".casenet");
    }
    if (!p)
        cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    return p;
}

void home_free(struct home *h)
{
    if (!h)
        return;
    casenet_keys_free(h->keys);
    casenet_directory_free(h->dir);
    free(h->path);
    free(h);
}

/* Parses the key=value state file; unknown keys are ignored, so that later
 * versions can add some. */
static int load_state(struct home *h, const char *file)
{
    casenet_buf buf = {0};
    int rc = cn_read_file(file, STATE_MAX, &buf);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, "is this a casenet home? see 'casenet init --help'",
                        "cannot read %s", file);
    char *text = malloc(buf.len + 1);
    if (!text) {
        casenet_buf_free(&buf);
        return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    }
    memcpy(text, buf.data, buf.len);
    text[buf.len] = '\0';
    casenet_buf_free(&buf);

    int ex = CLI_OK;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *eq = strchr(line, '=');
        if (!eq) {
            ex = cli_fail(CLI_LOCAL, CASENET_EBADREQ, NULL, "%s: malformed line '%s'", file, line);
            break;
        }
        *eq = '\0';
        const char *key = line, *val = eq + 1;
        if (strcmp(key, "member") == 0) {
            if (!casenet_member_id_valid(val) ||
                cn_strlcpy(h->member, val, sizeof h->member) != CASENET_OK) {
                ex = cli_fail(CLI_LOCAL, CASENET_EBADREQ, NULL, "%s: invalid member id '%s'", file,
                              val);
                break;
            }
        } else if (strcmp(key, "directory_version") == 0) {
            if (!cli_parse_uint(val, 0, UINT64_MAX, &h->directory_version)) {
                ex = cli_fail(CLI_LOCAL, CASENET_EBADREQ, NULL, "%s: invalid version '%s'", file,
                              val);
                break;
            }
        } else if (strcmp(key, "broker") == 0) {
            if (cn_strlcpy(h->broker, val, sizeof h->broker) != CASENET_OK) {
                ex = cli_fail(CLI_LOCAL, CASENET_EBADREQ, NULL, "%s: broker endpoint too long",
                              file);
                break;
            }
        }
    }
    free(text);
    return ex;
}

int home_save_state(const struct home *h)
{
    char *file = cli_path(h->path, HOME_STATE_FILE);
    char *text = NULL;
    int n = asprintf(&text,
                     "# casenet member home state; written by the casenet CLI\n"
                     "member=%s\ndirectory_version=%llu\nbroker=%s\n",
                     h->member, (unsigned long long)h->directory_version, h->broker);
    int ex = CLI_OK;
    if (!file || n < 0) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    } else {
        int rc = cn_write_file_atomic(file, text, (size_t)n, 0600, false);
        if (rc != CASENET_OK)
            ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot write %s: %s", file, strerror(errno));
    }
    free(text);
    free(file);
    return ex;
}

static int fail_directory(int rc, const char *file, uint64_t min_version)
{
    switch (rc) {
    case CASENET_EBADSIG:
        return cli_fail(CLI_VERIFY, rc,
                        "the file was altered or not signed by the pinned authority",
                        "%s: directory signature does not verify", file);
    case CASENET_EROLLBACK:
        return cli_fail(CLI_VERIFY, rc, "refusing to go back to an older directory",
                        "%s: directory is older than version %llu already seen", file,
                        (unsigned long long)min_version);
    case CASENET_EIO:
        return cli_file_fail(rc, file, "the directory");
    default:
        return cli_fail(CLI_VERIFY, rc, NULL, "%s: invalid directory: %s", file,
                        casenet_strerror(rc));
    }
}

static int open_home(const char *path, struct home **out, bool allow_expired, bool *expired_out)
{
    struct home *h = calloc(1, sizeof *h);
    char *file = NULL;
    casenet_buf dirbytes = {0};
    int ex = CLI_EFAIL;
    if (!h || !(h->path = strdup(path))) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }

    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, "create one with 'casenet init'",
                      "no member home at %s", path);
        goto cleanup;
    }
    if (st.st_mode & 077) {
        ex = cli_fail(CLI_LOCAL, CASENET_EPERM, "run 'chmod 700' on it",
                      "member home %s is accessible to group or others (mode %03o)", path,
                      (unsigned)(st.st_mode & 0777));
        goto cleanup;
    }

    file = cli_path(path, HOME_STATE_FILE);
    if (!file) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    ex = load_state(h, file);
    if (ex != CLI_OK)
        goto cleanup;

    free(file);
    file = cli_path(path, HOME_KEY_FILE);
    int rc = file ? casenet_keys_load(file, &h->keys) : CASENET_ENOMEM;
    if (rc == CASENET_EPERM) {
        ex = cli_fail(CLI_LOCAL, rc, "run 'chmod 600' on it",
                      "secret key file %s is accessible to group or others: permissions refused",
                      file);
        goto cleanup;
    }
    if (rc != CASENET_OK) {
        ex = cli_file_fail(rc, file, "the member's secret key");
        goto cleanup;
    }
    if (h->member[0] && strcmp(h->member, casenet_keys_member_id(h->keys)) != 0) {
        ex = cli_fail(CLI_LOCAL, CASENET_EINVAL, NULL,
                      "the key in %s belongs to %s, but the home is for %s", file,
                      casenet_keys_member_id(h->keys), h->member);
        goto cleanup;
    }
    rc = cn_strlcpy(h->member, casenet_keys_member_id(h->keys), sizeof h->member);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "member id too long");
        goto cleanup;
    }

    free(file);
    file = cli_path(path, HOME_AUTHORITY_FILE);
    rc = file ? casenet_authority_pk_load(file, h->authority_pk) : CASENET_ENOMEM;
    if (rc != CASENET_OK) {
        ex = cli_file_fail(rc, file, "the pinned authority key");
        goto cleanup;
    }

    free(file);
    file = cli_path(path, HOME_DIRECTORY_FILE);
    rc = file ? cn_read_file(file, DIRECTORY_MAX, &dirbytes) : CASENET_ENOMEM;
    if (rc != CASENET_OK) {
        ex = cli_file_fail(rc, file, "the directory");
        goto cleanup;
    }
    bool expired = false;
    rc = dirview_verify(dirbytes.data, dirbytes.len, h->authority_pk, h->directory_version, &h->dir,
                        &expired);
    if (rc != CASENET_OK) {
        ex = fail_directory(rc, file, h->directory_version);
        goto cleanup;
    }
    if (expired && !allow_expired) {
        char when[64];
        cli_format_time(casenet_directory_expires_at(h->dir), true, when, sizeof when);
        ex = cli_fail(CLI_VERIFY, CASENET_EEXPIRED, "run 'casenet directory pull'",
                      "directory expired at %s", when);
        goto cleanup;
    }
    if (!expired)
        warn_expiry(h->dir);
    if (casenet_directory_version(h->dir) > h->directory_version)
        h->directory_version = casenet_directory_version(h->dir);
    if (expired_out)
        *expired_out = expired;
    *out = h;
    h = NULL;
    ex = CLI_OK;
cleanup:
    casenet_buf_free(&dirbytes);
    free(file);
    home_free(h);
    return ex;
}

int home_open(const char *path, struct home **out)
{
    return open_home(path, out, false, NULL);
}

int home_open_allow_expired(const char *path, struct home **out, bool *expired)
{
    return open_home(path, out, true, expired);
}

int home_store_directory(struct home *h, const uint8_t *bytes, size_t len, uint64_t *old_version)
{
    casenet_directory *d = NULL;
    int64_t now = cn_now_ms();
    int rc = casenet_directory_parse(bytes, len, h->authority_pk, now, h->directory_version, &d);
    if (rc == CASENET_EEXPIRED) {
        char when[64];
        int64_t exp = 0;
        if (dirview_expires_at(bytes, len, &exp) != CASENET_OK)
            exp = 0;
        cli_format_time(exp, true, when, sizeof when);
        return cli_fail(CLI_VERIFY, rc, "ask the authority for a fresh directory",
                        "the new directory expired at %s", when);
    }
    if (rc != CASENET_OK)
        return fail_directory(rc, "new directory", h->directory_version);
    char why[320];
    if (h->dir && (rc = cn_directory_check_successor(h->dir, d, why, sizeof why)) != CASENET_OK) {
        casenet_directory_free(d);
        return cli_fail(CLI_VERIFY, rc, "do not use it; tell the network authority", "%s", why);
    }

    uint64_t version = casenet_directory_version(d);
    if (h->dir && version == casenet_directory_version(h->dir)) {
        size_t cur_len = 0;
        const uint8_t *cur = casenet_directory_bytes(h->dir, &cur_len);
        if (cur_len != len || memcmp(cur, bytes, len) != 0) {
            casenet_directory_free(d);
            return cli_fail(CLI_VERIFY, CASENET_EROLLBACK,
                            "the authority must publish a higher version",
                            "directory version %llu is already stored with other content",
                            (unsigned long long)version);
        }
    }

    char *file = cli_path(h->path, HOME_DIRECTORY_FILE);
    rc = file ? cn_write_file_atomic(file, bytes, len, 0644, false) : CASENET_ENOMEM;
    if (rc != CASENET_OK) {
        int ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot write %s", file ? file : "directory");
        free(file);
        casenet_directory_free(d);
        return ex;
    }
    free(file);

    casenet_member self;
    if (casenet_directory_find(d, h->member, &self) != CASENET_OK)
        cli_warn("%s is not in directory version %llu", h->member, (unsigned long long)version);
    else if (self.status != CASENET_MEMBER_ACTIVE)
        cli_warn("%s is %s in directory version %llu", h->member,
                 self.status == CASENET_MEMBER_SUSPENDED ? "suspended" : "revoked",
                 (unsigned long long)version);

    if (old_version)
        *old_version = h->dir ? casenet_directory_version(h->dir) : 0;
    casenet_directory_free(h->dir);
    h->dir = d;
    if (version > h->directory_version)
        h->directory_version = version;
    return home_save_state(h);
}
