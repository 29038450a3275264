/* attach_cli.c - the attachment parts of `casenet send --attach FILE` (read,
 * seal, upload with resumption) and `casenet read --save-attachments DIR`
 * (download, decrypt, check, rename into place): see commands.h. */
#include "cli.h"
#include "commands.h"
#include "hashbank.h"
#include "hashbank_digest.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB            (1024.0 * 1024.0)
#define UPLOAD_RETRIES 3
/* Who may attach image and video media types when $CASENET_ATTACH_MEDIA_ROLES is unset. */
#define ATTACH_MEDIA_ROLES "police"

/* True when the comma-separated list (a role or group name each) names one
 * of m's roles or groups. */
static bool media_allowed(const casenet_member *m, const char *list)
{
    char name[CASENET_MEMBER_ID_MAX + 1];
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n < sizeof name) {
            memcpy(name, p, n);
            name[n] = '\0';
            if (casenet_member_has_role(m, name) || casenet_member_in_group(m, name))
                return true;
        }
        p += n + (p[n] == ',');
    }
    return false;
}

#define HINT_MEDIA                                                                                 \
    "attach evidence documents (chat exports, reports, recordings) instead; abusive images "       \
    "and videos travel as hashes only (casenet hashes contribute)"
#define HINT_BANK                                                                                  \
    "abusive media never travels through casenet: report it with its hashes (casenet hashes "      \
    "contribute / feedback), not the file"

/* The media policy (docs/cli.md, "Never abusive media"): image and video media types
 * only from a member with a role or group in $CASENET_ATTACH_MEDIA_ROLES
 * (default "police"). */
static int media_check(const struct home *h, const char *label, const casenet_attachment *t,
                       struct attach_refusal *r)
{
    if (strncmp(t->media_type, "image/", 6) != 0 && strncmp(t->media_type, "video/", 6) != 0)
        return CASENET_OK;
    const char *list = getenv("CASENET_ATTACH_MEDIA_ROLES");
    if (!list)
        list = ATTACH_MEDIA_ROLES;
    casenet_member m;
    if (casenet_directory_find(h->dir, h->member, &m) == CASENET_OK && media_allowed(&m, list))
        return CASENET_OK;
    r->what = "media_policy";
    r->hint = HINT_MEDIA;
    snprintf(r->why, sizeof r->why,
             "%s is %s: images and videos may be attached only by members with role or group %s "
             "(client policy)",
             label, t->media_type, list);
    return CASENET_EPERM;
}

/* Refuses a file whose md5, sha1 or sha256 is in h's hash bank. */
static int bank_check(const struct home *h, const char *path, const char *label,
                      struct attach_refusal *r)
{
    char bank_path[4096];
    snprintf(bank_path, sizeof bank_path, "%s/%s", h->path, HASHBANK_FILE);
    if (access(bank_path, F_OK) != 0)
        return CASENET_OK; /* no bank yet: nothing to match */
    struct hashbank_digests d;
    int rc = hashbank_digest_file(path, &d);
    if (rc != CASENET_OK) {
        r->hint = "check that the file exists and is readable";
        snprintf(r->why, sizeof r->why, "cannot read %s to check it against the hash bank", label);
        return rc;
    }
    hashbank *b = NULL;
    rc = hashbank_open(bank_path, &b);
    if (rc != CASENET_OK) {
        r->hint = "check the home's permissions";
        snprintf(r->why, sizeof r->why,
                 "cannot open the hash bank " HASHBANK_FILE " in the home to check %s", label);
        return rc;
    }
    const char *types[] = {"md5", "sha1", "sha256"};
    const char *values[] = {d.md5, d.sha1, d.sha256};
    for (size_t i = 0; i < 3 && rc == CASENET_OK; i++) {
        size_t n = 0;
        rc = hashbank_lookup(b, types[i], values[i], &n);
        if (rc != CASENET_OK) {
            r->hint = "check the home's permissions and free space";
            snprintf(r->why, sizeof r->why, "cannot search the hash bank for %s", label);
        } else if (n > 0) {
            rc = CASENET_EPERM;
            r->what = "hash_bank";
            r->hint = HINT_BANK;
            snprintf(r->why, sizeof r->why,
                     "%s matches %s:%s in the hash bank (%zu entr%s): refused", label, types[i],
                     values[i], n, n == 1 ? "y" : "ies");
        }
    }
    hashbank_free(b);
    return rc;
}

int attach_check(const struct home *h, const char *path, const char *label,
                 const casenet_attachment *t, struct attach_refusal *r)
{
    memset(r, 0, sizeof *r);
    int rc = media_check(h, label, t, r);
    return rc == CASENET_OK ? bank_check(h, path, label, r) : rc;
}

/* name for a terminal line: control bytes as '?', cut to fit n - 1 bytes
 * (on a UTF-8 boundary). */
static void progress_name(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (; in[k] && k + 1 < n; k++)
        out[k] = (unsigned char)in[k] < 0x20 || in[k] == 0x7f ? '?' : in[k];
    while (k > 0 && in[k] && ((unsigned char)in[k] & 0xc0) == 0x80)
        k--; /* do not cut a character in two */
    out[k] = '\0';
}

int attach_prepare(const struct home *h, const struct seal_args *a, casenet_attachment **out)
{
    *out = NULL;
    if (a->n_attach == 0)
        return CLI_OK;
    casenet_attachment *atts = calloc(a->n_attach, sizeof *atts);
    if (!atts)
        return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < a->n_attach; i++) {
        int rc = casenet_attachment_prepare(a->attach[i], NULL, &atts[i]);
        if (rc != CASENET_OK) {
            attach_free(atts, a->n_attach);
            if (rc == CASENET_EIO)
                return cli_file_fail(rc, a->attach[i], "the file to attach");
            return cli_fail(CLI_LOCAL, rc,
                            "attach a regular file whose name does not start with '.'",
                            "cannot attach %s", a->attach[i]);
        }
        struct attach_refusal why;
        rc = attach_check(h, a->attach[i], a->attach[i], &atts[i], &why);
        if (rc != CASENET_OK) {
            attach_free(atts, a->n_attach);
            return cli_fail(CLI_LOCAL, rc, why.hint, "%s", why.why);
        }
    }
    *out = atts;
    return CLI_OK;
}

void attach_free(casenet_attachment *atts, size_t n)
{
    for (size_t i = 0; atts && i < n; i++)
        casenet_attachment_clear(&atts[i]);
    free(atts);
}

/* The progress bar of one file's upload on a terminal's stderr: one line
 * redrawn (\r) at most every PROGRESS_MS, and once at the end. */
#define PROGRESS_MS 100
struct progress {
    const char *name;
    int64_t start_ms, drawn_ms;
    uint64_t start_done; /* bytes done before this run (held by the broker) */
    bool started;
};

static void progress_draw(void *ctx, uint64_t done, uint64_t total)
{
    struct progress *p = ctx;
    int64_t now = cn_now_ms();
    if (!p->started) {
        p->started = true;
        p->start_ms = now;
        p->start_done = done;
    }
    if (done < total && now - p->drawn_ms < PROGRESS_MS)
        return;
    p->drawn_ms = now;
    double secs = (double)(now - p->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)(done - p->start_done) / 1e6 / secs : 0;
    char name[41];
    progress_name(p->name, name, sizeof name);
    fprintf(stderr, "\r%-40s %8.1f / %.1f MiB %3u%% %7.1f MB/s", name, (double)done / MIB,
            (double)total / MIB, total ? (unsigned)(done * 100 / total) : 100u, rate);
    fflush(stderr);
}

int attach_upload(casenet_client *c, const struct seal_args *a)
{
    bool bar = !a->quiet && isatty(STDERR_FILENO);
    for (size_t i = 0; i < a->n_attach; i++) {
        const casenet_attachment *t = &a->atts[i];
        uint32_t sent = 0, more = 0;
        struct progress pr = {.name = t->file_name};
        casenet_progress_fn fn = bar ? progress_draw : NULL;
        int rc = casenet_attachment_upload_progress(c, a->attach[i], t, 0, &sent, fn, &pr);
        if (bar && pr.started)
            fputc('\n', stderr);
        /* A broker that went away (restarted, a timeout): resume from what
         * it holds (BlobStatus), a few times. */
        for (int tries = 0;
             tries < UPLOAD_RETRIES && (rc == CASENET_ETIMEDOUT || rc == CASENET_EUNAVAIL);
             tries++) {
            fprintf(stderr, "casenet: send: %s: upload interrupted (%s); resuming\n", t->file_name,
                    casenet_errname(rc));
            pr.started = false;
            rc = casenet_attachment_upload_progress(c, a->attach[i], t, 0, &more, fn, &pr);
            if (bar && pr.started)
                fputc('\n', stderr);
            sent += more;
        }
        if (rc == CASENET_ECONFLICT)
            return cli_fail(CLI_LOCAL, rc, "send the message again once the file is final",
                            "%s changed while it was being sent", a->attach[i]);
        if (rc != CASENET_OK)
            return net_fail(c, rc, "the attachment upload failed; nothing was submitted");
        fprintf(stderr, "uploaded %s: %.1f MiB in %u chunks (%u sent now)\n", t->file_name,
                (double)t->size / MIB, t->chunk_count, sent);
    }
    return CLI_OK;
}

int attach_save(casenet_client *c, const casenet_message_info *info, const casenet_buf *payload,
                const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_fail(CLI_LOCAL, CASENET_EIO, "create it first",
                        "--save-attachments: %s is not a directory", dir);
    casenet_attachment *atts = NULL;
    size_t n = 0;
    int rc = casenet_payload_attachments(payload->data, payload->len, info, &atts, &n);
    if (rc != CASENET_OK)
        return cli_fail(CLI_VERIFY, rc, "ask the sender to send the message again",
                        "the message's attachment manifest is malformed or does not match its "
                        "header");
    int ex = CLI_OK;
    for (size_t i = 0; i < n && ex == CLI_OK; i++) {
        char saved[4096];
        rc = casenet_attachment_download(c, &atts[i], dir, saved, sizeof saved);
        if (rc == CASENET_ECRYPTO || rc == CASENET_ECOMMIT)
            ex = cli_fail(CLI_VERIFY, rc, "nothing was kept; ask the sender to send it again",
                          "attachment %s does not match the signed manifest (altered or "
                          "truncated at the broker)",
                          atts[i].file_name);
        else if (rc == CASENET_ECONFLICT)
            ex = cli_fail(CLI_LOCAL, rc, "move it away or save into another directory",
                          "%s/%s exists already", dir, atts[i].file_name);
        else if (rc != CASENET_OK)
            ex = net_fail(c, rc, "the attachment download failed");
        else
            fprintf(stderr, "saved %s (%s, %llu bytes, SHA-256 verified)\n", saved,
                    atts[i].media_type, (unsigned long long)atts[i].size);
    }
    attach_free(atts, n);
    return ex;
}
