/* blobs.c - attachment blobs as files in the data directory (see blobs.h). */
#include "blobs.h"

#include "hex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_LEN 4096

/* DATA/blobs/<hex id>[/name] into path. */
static int blob_path(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                     const char *name, char path[PATH_LEN])
{
    char hex[2 * CASENET_BLOB_ID_BYTES + 1];
    cn_hex(id, CASENET_BLOB_ID_BYTES, hex);
    int n = name ? snprintf(path, PATH_LEN, "%s/%s/%s/%s", data_dir, BLOBS_DIR, hex, name)
                 : snprintf(path, PATH_LEN, "%s/%s/%s", data_dir, BLOBS_DIR, hex);
    return n > 0 && n < PATH_LEN ? CASENET_OK : CASENET_EIO;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CASENET_EIO;
    int rc = fsync(fd) == 0 ? CASENET_OK : CASENET_EIO;
    close(fd);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CASENET_EIO;
        p += w;
        len -= (size_t)w;
    }
    return CASENET_OK;
}

/* Writes data to dir/name through dir/name.tmp: written, fsync'd, renamed,
 * the directory fsync'd. */
static int write_durable(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char tmp[PATH_LEN], dst[PATH_LEN];
    if (snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst)
        return CASENET_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return CASENET_EIO;
    int rc = write_all(fd, data, len);
    if (rc == CASENET_OK && fsync(fd) != 0)
        rc = CASENET_EIO;
    if (close(fd) != 0)
        rc = CASENET_EIO;
    if (rc == CASENET_OK && rename(tmp, dst) != 0)
        rc = CASENET_EIO;
    if (rc != CASENET_OK) {
        unlink(tmp);
        return rc;
    }
    return fsync_path(dir);
}

/* Reads at most max bytes of path into *out. */
static int read_file(const char *path, size_t max, casenet_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? CASENET_ENOTFOUND : CASENET_EIO;
    struct stat st;
    int rc = CASENET_EIO;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > max)
        goto cleanup;
    rc = CASENET_ENOMEM;
    size_t len = (size_t)st.st_size, got = 0;
    if (!(buf = malloc(len ? len : 1)))
        goto cleanup;
    rc = CASENET_EIO;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto cleanup;
        got += (size_t)r;
    }
    out->data = buf;
    out->len = len;
    buf = NULL;
    rc = CASENET_OK;
cleanup:
    free(buf);
    close(fd);
    return rc;
}

int blobs_meta_read(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                    struct blob_meta *m)
{
    char path[PATH_LEN];
    casenet_buf b = {0};
    int rc = blob_path(data_dir, id, "meta", path);
    if (rc != CASENET_OK || (rc = read_file(path, 512, &b)) != CASENET_OK)
        return rc;
    char text[513];
    memcpy(text, b.data, b.len);
    text[b.len] = '\0';
    casenet_buf_free(&b);
    memset(m, 0, sizeof *m);
    if (sscanf(text, "%64s %" SCNu32 " %" SCNu64 " %" SCNd64, m->owner, &m->total_chunks,
               &m->total_size, &m->created_ms) != 4)
        return CASENET_EIO;
    return CASENET_OK;
}

int blobs_meta_create(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                      const struct blob_meta *m)
{
    char top[PATH_LEN], dir[PATH_LEN], text[256];
    if (snprintf(top, sizeof top, "%s/%s", data_dir, BLOBS_DIR) >= (int)sizeof top ||
        blob_path(data_dir, id, NULL, dir) != CASENET_OK)
        return CASENET_EIO;
    if (mkdir(top, 0700) != 0 && errno != EEXIST)
        return CASENET_EIO;
    if (mkdir(dir, 0700) != 0)
        return errno == EEXIST ? CASENET_ECONFLICT : CASENET_EIO;
    int n = snprintf(text, sizeof text, "%s %" PRIu32 " %" PRIu64 " %" PRId64 "\n", m->owner,
                     m->total_chunks, m->total_size, m->created_ms);
    int rc = write_durable(dir, "meta", (const uint8_t *)text, (size_t)n);
    if (rc == CASENET_OK)
        rc = fsync_path(top);
    return rc;
}

int blobs_chunk_write(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES], uint32_t index,
                      const uint8_t *data, size_t len, bool *fresh)
{
    char dir[PATH_LEN], path[PATH_LEN], name[16];
    *fresh = false;
    snprintf(name, sizeof name, "%" PRIu32, index);
    if (blob_path(data_dir, id, NULL, dir) != CASENET_OK ||
        blob_path(data_dir, id, name, path) != CASENET_OK)
        return CASENET_EIO;
    casenet_buf old = {0};
    int rc = read_file(path, BLOBS_CHUNK_MAX, &old);
    if (rc == CASENET_OK) {
        bool same = old.len == len && memcmp(old.data, data, len) == 0;
        casenet_buf_free(&old);
        return same ? CASENET_OK : CASENET_ECONFLICT;
    }
    if (rc != CASENET_ENOTFOUND)
        return rc;
    rc = write_durable(dir, name, data, len);
    *fresh = rc == CASENET_OK;
    return rc;
}

uint64_t blobs_charge(uint32_t total_chunks, uint64_t total_size)
{
    return total_size + BLOBS_FILE_CHARGE * ((uint64_t)total_chunks + 4);
}

bool blobs_chunk_exists(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                        uint32_t index)
{
    char path[PATH_LEN], name[16];
    struct stat st;
    snprintf(name, sizeof name, "%" PRIu32, index);
    return blob_path(data_dir, id, name, path) == CASENET_OK && stat(path, &st) == 0;
}

int blobs_chunk_read(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES], uint32_t index,
                     casenet_buf *out)
{
    char path[PATH_LEN], name[16];
    snprintf(name, sizeof name, "%" PRIu32, index);
    if (blob_path(data_dir, id, name, path) != CASENET_OK)
        return CASENET_EIO;
    return read_file(path, BLOBS_CHUNK_MAX, out);
}

int blobs_held(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
               const struct blob_meta *m, uint32_t *list, struct blob_held *h)
{
    char path[PATH_LEN], name[16];
    memset(h, 0, sizeof *h);
    for (uint32_t i = 0; i < m->total_chunks; i++) {
        snprintf(name, sizeof name, "%" PRIu32, i);
        if (blob_path(data_dir, id, name, path) != CASENET_OK)
            return CASENET_EIO;
        struct stat st;
        if (stat(path, &st) != 0) {
            if (errno != ENOENT)
                return CASENET_EIO;
            continue;
        }
        if (list)
            list[h->n] = i;
        h->n++;
        h->bytes += (uint64_t)st.st_size;
    }
    h->complete = h->n == m->total_chunks && h->bytes == m->total_size;
    return CASENET_OK;
}

bool blobs_may_read(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                    const struct blob_meta *m, const char *member)
{
    if (strcmp(m->owner, member) == 0)
        return true;
    char path[PATH_LEN], line[CASENET_MEMBER_ID_MAX + 8];
    if (blob_path(data_dir, id, "refs", path) != CASENET_OK)
        return false;
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        found = strcmp(line, member) == 0;
    }
    fclose(f);
    return found;
}

bool blobs_referenced(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES])
{
    char path[PATH_LEN];
    struct stat st;
    return blob_path(data_dir, id, "refs", path) == CASENET_OK && stat(path, &st) == 0;
}

/* Appends each of lines and a newline to the blob's file name (fsync'd). */
static int append_lines(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                        const char *name, const char *const *lines, size_t n)
{
    char path[PATH_LEN];
    if (blob_path(data_dir, id, name, path) != CASENET_OK)
        return CASENET_EIO;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return CASENET_EIO;
    int rc = CASENET_OK;
    for (size_t i = 0; i < n && rc == CASENET_OK; i++) {
        rc = write_all(fd, (const uint8_t *)lines[i], strlen(lines[i]));
        if (rc == CASENET_OK)
            rc = write_all(fd, (const uint8_t *)"\n", 1);
    }
    if (rc == CASENET_OK && fsync(fd) != 0)
        rc = CASENET_EIO;
    if (close(fd) != 0)
        rc = CASENET_EIO;
    return rc;
}

int blobs_reference(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                    const uint8_t msg_id[CASENET_MESSAGE_ID_BYTES], char *const *members, size_t n)
{
    char hex[2 * CASENET_MESSAGE_ID_BYTES + 1];
    cn_hex(msg_id, CASENET_MESSAGE_ID_BYTES, hex);
    const char *line = hex;
    int rc = append_lines(data_dir, id, "msgs", &line, 1);
    return rc == CASENET_OK ? append_lines(data_dir, id, "refs", (const char *const *)members, n)
                            : rc;
}

/* Removes the blob's directory and every file in it. */
static int blob_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return CASENET_EIO;
    struct dirent *e;
    char path[PATH_LEN];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            unlink(path);
    }
    closedir(d);
    return rmdir(dir) == 0 ? CASENET_OK : CASENET_EIO;
}

bool blobs_parse_id(const char *name, uint8_t id[CASENET_BLOB_ID_BYTES])
{
    if (strlen(name) != 2 * CASENET_BLOB_ID_BYTES)
        return false;
    for (size_t i = 0; i < CASENET_BLOB_ID_BYTES; i++) {
        int hi = cn_hex_digit(name[2 * i]), lo = cn_hex_digit(name[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

int blobs_lock(const char *data_dir, bool exclusive, bool wait)
{
    char top[PATH_LEN], path[PATH_LEN];
    if (snprintf(top, sizeof top, "%s/%s", data_dir, BLOBS_DIR) >= (int)sizeof top ||
        snprintf(path, sizeof path, "%s/%s", top, BLOBS_LOCK) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -1;
    /* Empty, and readable by all: whoever created it (casenetd backup run
     * as root), the broker can still open it to lock. */
    (void)fchmod(fd, 0644);
    int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB), r;
    while ((r = flock(fd, op)) != 0 && errno == EINTR)
        ;
    if (r != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int blobs_file_put(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES], const char *name,
                   const uint8_t *data, size_t len)
{
    char top[PATH_LEN], dir[PATH_LEN];
    if (snprintf(top, sizeof top, "%s/%s", data_dir, BLOBS_DIR) >= (int)sizeof top ||
        blob_path(data_dir, id, NULL, dir) != CASENET_OK)
        return CASENET_EIO;
    if ((mkdir(top, 0700) != 0 && errno != EEXIST) || (mkdir(dir, 0700) != 0 && errno != EEXIST))
        return CASENET_EIO;
    return write_durable(dir, name, data, len);
}

/* True when the blob's "msgs" names at least one message and finished is
 * true for each. */
static bool msgs_finished(const char *data_dir, const uint8_t id[CASENET_BLOB_ID_BYTES],
                          int64_t created_ms, blobs_finished_fn finished, void *ctx)
{
    char path[PATH_LEN], line[80];
    if (blob_path(data_dir, id, "msgs", path) != CASENET_OK)
        return false;
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool any = false, all = true;
    while (all && fgets(line, sizeof line, f)) {
        uint8_t msg[CASENET_MESSAGE_ID_BYTES];
        line[strcspn(line, "\n")] = '\0';
        all = blobs_parse_id(line, msg) && finished(msg, created_ms, ctx);
        any = true;
    }
    fclose(f);
    return any && all;
}

/* What a walk decides and counts. */
struct visit {
    int64_t unreferenced_before_ms;
    blobs_finished_fn finished; /* NULL: referenced blobs stay */
    void *ctx;
    const char *owner; /* NULL: none */
    void (*kept_fn)(const uint8_t *id, const struct blob_meta *m, void *ctx);
    void *kept_ctx;
    blobs_busy_fn busy; /* NULL: none */
    void *busy_ctx;
    bool may_delete; /* the blobs lock is held exclusive */
    uint64_t owned, kept, kept_bytes;
    size_t removed;
};

/* One entry of DATA/blobs: deletes the blob when it is to go (and v allows
 * it), else counts it. False when the entry is not a readable blob. */
static bool visit(const char *data_dir, const char *name, struct visit *v)
{
    uint8_t id[CASENET_BLOB_ID_BYTES];
    struct blob_meta m;
    char dir[PATH_LEN];
    if (!blobs_parse_id(name, id) || blobs_meta_read(data_dir, id, &m) != CASENET_OK)
        return false;
    bool gone = blobs_referenced(data_dir, id)
                    ? v->finished && msgs_finished(data_dir, id, m.created_ms, v->finished, v->ctx)
                    : v->unreferenced_before_ms && m.created_ms < v->unreferenced_before_ms;
    if (gone && v->busy && v->busy(id, v->busy_ctx))
        gone = false; /* a chunk is being written into it */
    if (gone && v->may_delete && blob_path(data_dir, id, NULL, dir) == CASENET_OK &&
        blob_remove(dir) == CASENET_OK) {
        v->removed++;
        return true;
    }
    v->kept++;
    v->kept_bytes += m.total_size;
    if (v->kept_fn)
        v->kept_fn(id, &m, v->kept_ctx);
    if (v->owner && strcmp(m.owner, v->owner) == 0)
        v->owned += blobs_charge(m.total_chunks, m.total_size);
    return true;
}

/* Opens DATA/blobs; *d NULL when it does not exist. */
static int open_top(const char *data_dir, DIR **d)
{
    char top[PATH_LEN];
    *d = NULL;
    if (snprintf(top, sizeof top, "%s/%s", data_dir, BLOBS_DIR) >= (int)sizeof top)
        return CASENET_EIO;
    *d = opendir(top);
    return *d || errno == ENOENT ? CASENET_OK : CASENET_EIO;
}

int blobs_sweep(const char *data_dir, const char *owner, int64_t unreferenced_before_ms,
                blobs_busy_fn busy, void *busy_ctx, uint64_t *owned)
{
    DIR *d = NULL;
    struct visit v = {.unreferenced_before_ms = unreferenced_before_ms,
                      .owner = owner,
                      .busy = busy,
                      .busy_ctx = busy_ctx};
    *owned = 0;
    int rc = open_top(data_dir, &d);
    if (rc != CASENET_OK || !d)
        return rc;
    int lock = blobs_lock(data_dir, true, false);
    v.may_delete = lock >= 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        (void)visit(data_dir, e->d_name, &v);
    if (lock >= 0)
        close(lock);
    closedir(d);
    *owned = v.owned;
    return CASENET_OK;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int blobs_retire_step(const char *data_dir, struct blobs_pass *p, size_t max, int64_t budget_us,
                      int64_t unreferenced_before_ms, blobs_finished_fn finished, void *ctx,
                      size_t *removed, bool *done)
{
    int64_t until = budget_us > 0 ? mono_us() + budget_us : INT64_MAX;
    *removed = 0;
    *done = false;
    if (!p->dir) {
        DIR *d = NULL;
        int rc = open_top(data_dir, &d);
        if (rc != CASENET_OK)
            return rc;
        void (*fn)(const uint8_t *, const struct blob_meta *, void *) = p->kept_fn;
        void *ctx_kept = p->kept_ctx;
        blobs_busy_fn busy = p->busy_fn;
        void *ctx_busy = p->busy_ctx;
        memset(p, 0, sizeof *p);
        p->dir = d;
        p->kept_fn = fn;
        p->kept_ctx = ctx_kept;
        p->busy_fn = busy;
        p->busy_ctx = ctx_busy;
        if (fn)
            fn(NULL, NULL, ctx_kept);
    }
    p->steps++;
    if (!p->dir) { /* no blobs directory: an empty pass */
        *done = true;
        return CASENET_OK;
    }
    struct visit v = {.unreferenced_before_ms = unreferenced_before_ms,
                      .finished = finished,
                      .ctx = ctx,
                      .kept_fn = p->kept_fn,
                      .kept_ctx = p->kept_ctx,
                      .busy = p->busy_fn,
                      .busy_ctx = p->busy_ctx};
    int lock = blobs_lock(data_dir, true, false);
    v.may_delete = lock >= 0;
    if (lock < 0 && errno != EWOULDBLOCK && errno != EAGAIN)
        p->lock_errno = errno;
    size_t seen = 0;
    while (seen < max && (seen == 0 || mono_us() < until)) {
        struct dirent *e = readdir(p->dir);
        if (!e) {
            *done = true;
            break;
        }
        seen += visit(data_dir, e->d_name, &v);
    }
    if (lock >= 0)
        close(lock);
    p->kept += v.kept;
    p->kept_bytes += v.kept_bytes;
    p->removed += v.removed;
    *removed = v.removed;
    if (*done) {
        closedir(p->dir);
        p->dir = NULL;
    }
    return CASENET_OK;
}

void blobs_pass_end(struct blobs_pass *p)
{
    if (p->dir)
        closedir(p->dir);
    p->dir = NULL;
}

int blobs_retire(const char *data_dir, int64_t unreferenced_before_ms, blobs_finished_fn finished,
                 void *ctx, size_t *removed)
{
    struct blobs_pass p = {0};
    bool done = false;
    *removed = 0;
    while (!done) {
        size_t n = 0;
        int rc = blobs_retire_step(data_dir, &p, SIZE_MAX, 0, unreferenced_before_ms, finished, ctx,
                                   &n, &done);
        if (rc != CASENET_OK) {
            blobs_pass_end(&p);
            return rc;
        }
        *removed += n;
    }
    return CASENET_OK;
}
