/* console_attach.c - attachments in the console (console_attach.h): the
 * upload area in the home, the send's path through the same checks and
 * library calls as `casenet send --attach`, the case view's list and the
 * verified download. */
#include "console_attach.h"

#include "cli.h"
#include "commands.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One file being uploaded (or complete, waiting for its send). */
struct upload {
    bool used;
    uint8_t id[16];
    char user[CONSOLE_NAME_MAX + 1];
    char name[CASENET_ATTACH_NAME_MAX + 1];
    uint64_t size, received;
    int64_t touched_ms;
};

/* The upload area. One console per process: its state lives here, under
 * its own lock (taken after net_lock, never before). */
static struct {
    pthread_mutex_t lock;
    bool emptied; /* what a previous run left was removed */
    struct upload u[CONSOLE_UPLOADS];
} area = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void area_path(const struct console *c, const uint8_t id[16], const char *name, char *out,
                      size_t n)
{
    char hex[33] = "";
    if (id)
        cli_id16_hex(id, hex);
    snprintf(out, n, "%s/%s%s%s%s%s", c->home->path, CONSOLE_UPLOAD_DIR, id ? "/" : "", hex,
             name ? "/" : "", name ? name : "");
}

/* Removes dir and what it holds, two levels deep (the area, its uploads). */
static void remove_tree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0 && depth > 0)
            remove_tree(p, depth - 1);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void drop(const struct console *c, struct upload *u)
{
    char p[4096];
    area_path(c, u->id, NULL, p, sizeof p);
    remove_tree(p, 0);
    sodium_memzero(u, sizeof *u);
}

/* Under area.lock: empties the area once, deletes idle uploads. */
static void sweep(const struct console *c)
{
    char p[4096];
    if (!area.emptied) {
        area_path(c, NULL, NULL, p, sizeof p);
        remove_tree(p, 1);
        area.emptied = true;
    }
    int64_t now = cn_now_ms();
    for (size_t i = 0; i < CONSOLE_UPLOADS; i++)
        if (area.u[i].used && now - area.u[i].touched_ms > CONSOLE_UPLOAD_IDLE_MS)
            drop(c, &area.u[i]);
}

/* Under area.lock: the upload id of user, or NULL. */
static struct upload *find(const uint8_t id[16], const char *user)
{
    for (size_t i = 0; i < CONSOLE_UPLOADS; i++)
        if (area.u[i].used && memcmp(area.u[i].id, id, 16) == 0 &&
            strcmp(area.u[i].user, user) == 0)
            return &area.u[i];
    return NULL;
}

static void upload_new(struct console *c, const struct console_req *r, struct console_resp *out)
{
    char name[CASENET_ATTACH_NAME_MAX + 1], p[4096], hex[33];
    uint64_t size = 0;
    if (!console_parse_upload_new(r->body, r->body_len, name, &size, out))
        return;
    pthread_mutex_lock(&area.lock);
    sweep(c);
    struct upload *u = NULL;
    for (size_t i = 0; i < CONSOLE_UPLOADS && !u; i++)
        if (!area.u[i].used)
            u = &area.u[i];
    if (!u) {
        console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE",
                      "too many files are being uploaded: send or remove some, then try again",
                      NULL);
        goto unlock;
    }
    randombytes_buf(u->id, sizeof u->id);
    area_path(c, NULL, NULL, p, sizeof p);
    bool ok = (mkdir(p, 0700) == 0 || errno == EEXIST);
    area_path(c, u->id, NULL, p, sizeof p);
    ok = ok && mkdir(p, 0700) == 0;
    area_path(c, u->id, name, p, sizeof p);
    int fd = ok ? open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    if (fd < 0 || close(fd) != 0) {
        drop(c, u);
        console_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "IO",
                      "cannot store the file in the home: check its free space and permissions",
                      NULL);
        goto unlock;
    }
    u->used = true;
    snprintf(u->user, sizeof u->user, "%s", r->who->user);
    snprintf(u->name, sizeof u->name, "%s", name);
    u->size = size;
    u->touched_ms = cn_now_ms();
    cli_id16_hex(u->id, hex);
    console_ok(out, json_pack("{s:s, s:s, s:I, s:I}", "id", hex, "name", name, "size",
                              (json_int_t)size, "chunk_bytes", (json_int_t)CONSOLE_UPLOAD_CHUNK));
unlock:
    pthread_mutex_unlock(&area.lock);
}

static int write_at(const char *path, uint64_t off, const uint8_t *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return CASENET_EIO;
    int rc = CASENET_OK;
    while (n && rc == CASENET_OK) {
        ssize_t w = pwrite(fd, data, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = CASENET_EIO;
            break;
        }
        data += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    if (close(fd) != 0)
        rc = CASENET_EIO;
    return rc;
}

static void upload_chunk(struct console *c, const struct console_req *r, const uint8_t id[16],
                         struct console_resp *out)
{
    uint64_t off = 0;
    uint8_t *data = NULL;
    size_t n = 0;
    char p[4096];
    if (!console_parse_upload_chunk(r->body, r->body_len, &off, &data, &n, out))
        return;
    pthread_mutex_lock(&area.lock);
    sweep(c);
    struct upload *u = find(id, r->who->user);
    if (!u) {
        console_error(out, MHD_HTTP_NOT_FOUND, "NOT_FOUND",
                      "no such upload (it was sent, removed, or idle for an hour): attach the "
                      "file again",
                      NULL);
    } else if (off != u->received || n > u->size - u->received) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "error", "CONFLICT", "message",
                              "the chunk does not continue the upload: resume at received", "field",
                              "offset", "received", (json_int_t)u->received);
        console_ok(out, o);
        out->status = MHD_HTTP_CONFLICT;
    } else {
        area_path(c, u->id, u->name, p, sizeof p);
        if (write_at(p, off, data, n) != CASENET_OK) {
            console_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "IO",
                          "cannot store the file in the home: check its free space", NULL);
        } else {
            u->received += n;
            u->touched_ms = cn_now_ms();
            console_ok(out, json_pack("{s:I, s:b}", "received", (json_int_t)u->received, "complete",
                                      u->received == u->size));
        }
    }
    pthread_mutex_unlock(&area.lock);
    free(data);
}

void console_attach_uploads(struct console *c, const struct console_req *r,
                            struct console_resp *out)
{
    if (!console_need_role(out, r, ROLE_CASEWORKER))
        return;
    const char *p = r->path + strlen("/uploads");
    bool post = strcmp(r->method, "POST") == 0;
    uint8_t id[16];
    char hex[33];
    if (post && p[0] == '\0')
        return upload_new(c, r, out);
    if (p[0] == '/' && strlen(p) == 33) {
        memcpy(hex, p + 1, 33);
        if (cli_parse_id16(hex, id) && post)
            return upload_chunk(c, r, id, out);
        if (cli_parse_id16(hex, id) && strcmp(r->method, "DELETE") == 0) {
            pthread_mutex_lock(&area.lock);
            struct upload *u = find(id, r->who->user);
            if (u)
                drop(c, u);
            pthread_mutex_unlock(&area.lock);
            if (!u)
                return console_error(out, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such upload", NULL);
            return console_ok(out, json_pack("{s:b}", "ok", 1));
        }
    }
    console_error(out, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such API endpoint", NULL);
}

/* ------------------------------------------------------------ send */

/* The refusal of file name by the checks of `casenet send --attach`. */
static void refuse(struct console_resp *out, unsigned status, const char *name, int err,
                   const struct attach_refusal *why)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "error", casenet_errname(err), "message",
                          why->why, "field", "attachments", "file", name);
    if (o && why->what)
        json_object_set_new(o, "reason", json_string(why->what));
    if (o && why->hint)
        json_object_set_new(o, "hint", json_string(why->hint));
    console_ok(out, o);
    out->status = status;
}

/* Copies the paths of the send's uploads (r's user's, complete) into
 * paths. false with out set. */
static bool upload_paths(struct console *c, const struct console_req *r,
                         const struct console_attach_pending *p, char (*paths)[4096],
                         struct console_resp *out)
{
    bool ok = true;
    pthread_mutex_lock(&area.lock);
    sweep(c);
    for (size_t i = 0; ok && i < p->n; i++) {
        struct upload *u = find(p->uploads[i], r->who->user);
        ok = u && u->received == u->size;
        if (ok) {
            area_path(c, u->id, u->name, paths[i], sizeof paths[i]);
            u->touched_ms = cn_now_ms();
        }
    }
    pthread_mutex_unlock(&area.lock);
    if (!ok)
        console_error(out, MHD_HTTP_CONFLICT, "CONFLICT",
                      "an attached file is not fully uploaded or was removed: attach it again",
                      "attachments");
    return ok;
}

/* Checks, prepares and uploads the files at paths into p->atts. Under
 * net_lock. false with out set. */
static bool prepare_upload(struct console *c, char (*paths)[4096], struct console_attach_pending *p,
                           struct console_resp *out)
{
    for (size_t i = 0; i < p->n; i++) {
        const char *name = strrchr(paths[i], '/') + 1;
        int rc = casenet_attachment_prepare(paths[i], NULL, &p->atts[i]);
        if (rc != CASENET_OK) {
            console_error(out, rc == CASENET_ETOOLARGE ? 413 : 500, casenet_errname(rc),
                          "cannot read an attached file in the home: attach it again",
                          "attachments");
            return false;
        }
        struct attach_refusal why;
        rc = attach_check(c->home, paths[i], name, &p->atts[i], &why);
        if (rc != CASENET_OK) {
            refuse(out, rc == CASENET_EPERM ? MHD_HTTP_UNPROCESSABLE_CONTENT : 500, name, rc, &why);
            return false;
        }
    }
    int rc = console_client(c);
    for (size_t i = 0; rc == CASENET_OK && i < p->n; i++) {
        rc = casenet_attachment_upload(c->client, paths[i], &p->atts[i], 0, NULL);
        memcpy(p->blob_ids[i], p->atts[i].blob_id, CASENET_BLOB_ID_BYTES);
    }
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_BROKER, "the attachment upload failed; nothing was sent");
        return false;
    }
    return true;
}

bool console_attach_seal(struct console *c, const struct console_req *r, struct console_send *s,
                         struct console_attach_pending *p, struct console_resp *out)
{
    memset(p, 0, sizeof *p);
    if (!console_parse_attach_ids(r->body, r->body_len, p->uploads, &p->n, out))
        return false;
    if (p->n == 0)
        return true;
    char(*paths)[4096] = calloc(p->n, sizeof *paths);
    p->atts = calloc(p->n, sizeof *p->atts);
    casenet_buf with = {0};
    bool ok = paths && p->atts;
    if (!ok)
        console_error(out, 500, "NOMEM", "out of memory", NULL);
    ok = ok && upload_paths(c, r, p, paths, out) && prepare_upload(c, paths, p, out);
    int rc =
        ok ? casenet_payload_add_attachments(s->payload.data, s->payload.len, p->atts, p->n, &with)
           : CASENET_OK;
    if (rc != CASENET_OK) {
        console_error(out, 400, casenet_errname(rc), "cannot add the attachments to the payload",
                      "attachments");
        ok = false;
    }
    if (ok) {
        casenet_buf_free(&s->payload);
        s->payload = with;
        s->so.blob_ids = (const uint8_t(*)[CASENET_BLOB_ID_BYTES])p->blob_ids;
        s->so.n_blob_ids = p->n;
    }
    free(paths);
    return ok;
}

#define SENT_DIR "console-sent"

/* The list the case view shows: name, type, size and SHA-256 of each. */
static json_t *list_json(const casenet_attachment *a, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        char sha[65], name[CASENET_ATTACH_NAME_MAX + 1];
        cn_hex(a[i].sha256, sizeof a[i].sha256, sha);
        console_attach_name(a[i].file_name, name); /* the name a download saves */
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:I, s:s}", "index", (json_int_t)i,
                                             "file_name", name, "media_type", a[i].media_type,
                                             "size", (json_int_t)a[i].size, "sha256", sha));
    }
    return arr;
}

/* Keeps the list of what was attached to sent message mid_hex in
 * HOME/console-sent/ID.json (0600): the sender cannot open its own message
 * later. A failure is only reported: the message is sent. */
static void keep_sent_list(const struct console *c, const struct console_attach_pending *p,
                           const char *mid_hex)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/%s", c->home->path, SENT_DIR);
    snprintf(path, sizeof path, "%s/%s.json", dir, mid_hex);
    json_t *arr = list_json(p->atts, p->n);
    char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    int fd = (mkdir(dir, 0700) == 0 || errno == EEXIST)
                 ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
                 : -1;
    bool ok = fd >= 0 && close(fd) == 0 && text &&
              write_at(path, 0, (const uint8_t *)text, strlen(text)) == CASENET_OK;
    if (!ok)
        fprintf(stderr, "console: warning: the attachment list of sent %s not kept\n", mid_hex);
    free(text);
    json_decref(arr);
}

void console_attach_sent_view(struct console *c, const uint8_t id[16], json_t *o)
{
    char hex[33], path[4200];
    cli_id16_hex(id, hex);
    snprintf(path, sizeof path, "%s/%s/%s.json", c->home->path, SENT_DIR, hex);
    json_t *arr = json_load_file(path, 0, NULL);
    if (json_is_array(arr))
        json_object_set_new(o, "attachments", arr);
    else
        json_decref(arr);
}

void console_attach_sent(struct console *c, struct console_attach_pending *p, const char *mid_hex)
{
    if (p->n)
        keep_sent_list(c, p, mid_hex);
    pthread_mutex_lock(&area.lock);
    for (size_t i = 0; i < p->n; i++) {
        for (size_t k = 0; k < CONSOLE_UPLOADS; k++)
            if (area.u[k].used && memcmp(area.u[k].id, p->uploads[i], 16) == 0)
                drop(c, &area.u[k]);
    }
    pthread_mutex_unlock(&area.lock);
}

void console_attach_pending_clear(struct console_attach_pending *p)
{
    if (p->atts)
        attach_free(p->atts, p->n);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------ view, download */

void console_attach_view(json_t *o, const casenet_buf *payload, const casenet_message_info *info)
{
    json_t *pj = json_object_get(o, "payload");
    if (json_is_object(pj))
        json_object_del(pj, "attachments"); /* the manifests hold the keys */
    casenet_attachment *a = NULL;
    size_t n = 0;
    if (casenet_payload_attachments(payload->data, payload->len, info, &a, &n) != CASENET_OK) {
        json_object_set_new(o, "attachments_invalid", json_true());
        n = 0;
    }
    json_object_set_new(o, "attachments", list_json(a, n));
    attach_free(a, n);
}

/* Fetches and opens message id, its attachment n into *a. Under net_lock.
 * false with out set. */
static bool manifest_of(struct console *c, const uint8_t id[16], unsigned n, casenet_attachment *a,
                        char case_hex[33], bool *has_case, struct console_resp *out)
{
    casenet_buf env = {0}, payload = {0};
    casenet_message_info info = {0};
    casenet_attachment *atts = NULL;
    size_t k = 0;
    bool ok = false;
    int rc = console_fetch(c, id, &env, out);
    if (rc != CASENET_OK) {
        goto cleanup;
    }
    rc = casenet_open(c->home->keys, c->home->dir, env.data, env.len, &info, &payload);
    if (rc == CASENET_OK)
        rc = casenet_payload_attachments(payload.data, payload.len, &info, &atts, &k);
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_VERIFY, "the message or its attachment list does not verify");
        goto cleanup;
    }
    if (n >= k) {
        console_error(out, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "the message has no such attachment",
                      "attachment");
        goto cleanup;
    }
    *a = atts[n];
    *has_case = info.has_case_ref;
    cli_id16_hex(info.case_ref, case_hex);
    ok = true;
cleanup:
    attach_free(atts, k);
    casenet_message_info_clear(&info);
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
    return ok;
}

/* Downloads a (checked) into a temporary directory of the home and opens
 * the result; the names are removed at once. Under net_lock. -1 with out
 * set. */
static int fetch_checked(struct console *c, const casenet_attachment *a, struct console_resp *out)
{
    char dir[4096], saved[4096];
    area_path(c, NULL, NULL, dir, sizeof dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        console_error(out, 500, "IO", "cannot write in the home: check its permissions", NULL);
        return -1;
    }
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/dl-XXXXXX");
    if (!mkdtemp(dir)) {
        console_error(out, 500, "IO", "cannot write in the home: check its free space", NULL);
        return -1;
    }
    int rc = casenet_attachment_download(c->client, a, dir, saved, sizeof saved);
    int fd = rc == CASENET_OK ? open(saved, O_RDONLY | O_CLOEXEC) : -1;
    if (rc == CASENET_OK)
        unlink(saved);
    rmdir(dir);
    if (rc == CASENET_ECRYPTO || rc == CASENET_ECOMMIT)
        console_error(out, MHD_HTTP_BAD_GATEWAY, casenet_errname(rc),
                      "the attachment does not match the signed manifest (altered or truncated "
                      "at the broker): nothing was kept; ask the sender to send it again",
                      "attachment");
    else if (rc != CASENET_OK)
        console_fail(out, c, rc, CLI_BROKER, "the attachment download failed");
    else if (fd < 0)
        console_error(out, 500, "IO", "cannot read the downloaded file", NULL);
    return fd;
}

void console_attach_download(struct console *c, const struct console_req *r, const uint8_t id[16],
                             unsigned n, struct console_resp *out)
{
    if (!console_need_role(out, r, ROLE_CASEWORKER))
        return;
    casenet_attachment a;
    char case_hex[33], idhex[33], action[48], disp[CONSOLE_DISPOSITION_MAX];
    bool has_case = false;
    cli_id16_hex(id, idhex);
    pthread_mutex_lock(&c->net_lock);
    bool ok = manifest_of(c, id, n, &a, case_hex, &has_case, out);
    int fd = ok ? fetch_checked(c, &a, out) : -1;
    pthread_mutex_unlock(&c->net_lock);
    if (fd < 0)
        goto cleanup;
    snprintf(action, sizeof action, "download:attachments[%u]", n);
    if (console_ledger_add(c->db, r->who->user, action, idhex, has_case ? case_hex : NULL) !=
        CASENET_OK) {
        close(fd);
        console_error(out, 500, "IO", "the disclosure ledger cannot be written: nothing served",
                      NULL);
        goto cleanup;
    }
    console_disposition(a.file_name, disp);
    free(out->body);
    out->body = NULL;
    out->status = MHD_HTTP_OK;
    out->file = true;
    out->file_fd = fd;
    out->file_size = a.size;
    out->disposition = strdup(disp);
    fprintf(stderr, "console: %s downloaded attachment %u of %s\n", r->who->user, n, idhex);
cleanup:
    if (ok)
        casenet_attachment_clear(&a);
}
