/* util.c - clocks, file I/O, PAE and key ids for libcasenet (see util.h). */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(CASENET_HASH_BYTES == crypto_hash_sha256_BYTES, "hash size");

int64_t cn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cn_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cn_read_file(const char *path, size_t max, casenet_buf *out)
{
    int rc = CASENET_EIO;
    uint8_t *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CASENET_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto cleanup;
    if ((uint64_t)st.st_size > max) {
        rc = CASENET_ETOOLARGE;
        goto cleanup;
    }
    size_t size = (size_t)st.st_size;
    data = malloc(size ? size : 1);
    if (!data) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto cleanup;
        got += (size_t)r;
    }
    out->data = data;
    out->len = size;
    data = NULL;
    rc = CASENET_OK;
cleanup:
    free(data);
    close(fd);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int cn_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         bool exclusive)
{
    int rc = CASENET_EIO;
    char *tmp = NULL;
    int fd = -1;
    if (exclusive && access(path, F_OK) == 0)
        return CASENET_EINVAL;
    if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
        return CASENET_ENOMEM;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        free(tmp);
        return CASENET_EIO;
    }
    if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
        goto cleanup;
    if (close(fd) != 0) {
        fd = -1;
        goto cleanup;
    }
    fd = -1;
    if (exclusive) {
        /* link() fails if path exists, closing the race with access() above. */
        if (link(tmp, path) != 0) {
            rc = errno == EEXIST ? CASENET_EINVAL : CASENET_EIO;
            goto cleanup;
        }
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        goto cleanup;
    }
    free(tmp);
    tmp = NULL;
    if (fsync_dir_of(path) != 0)
        return CASENET_EIO;
    return CASENET_OK;
cleanup:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int cn_pae(const char *domain, size_t n, const uint8_t *const parts[], const size_t lens[],
           casenet_buf *out)
{
    size_t dlen = strlen(domain);
    size_t total = 8 + 8 + dlen;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > SIZE_MAX - total - 8)
            return CASENET_ETOOLARGE;
        total += 8 + lens[i];
    }
    uint8_t *buf = malloc(total);
    if (!buf)
        return CASENET_ENOMEM;
    uint8_t *p = buf;
    put_le64(p, (uint64_t)n + 1);
    p += 8;
    put_le64(p, dlen);
    p += 8;
    memcpy(p, domain, dlen);
    p += dlen;
    for (size_t i = 0; i < n; i++) {
        put_le64(p, lens[i]);
        p += 8;
        if (lens[i])
            memcpy(p, parts[i], lens[i]);
        p += lens[i];
    }
    out->data = buf;
    out->len = total;
    return CASENET_OK;
}

void cn_key_id(const uint8_t *key, size_t len, char out[CASENET_KEY_ID_CHARS + 1])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, key, len);
    cn_hex(h, CASENET_KEY_ID_CHARS / 2, out);
}

void cn_sha256(const uint8_t *data, size_t len, uint8_t out[CASENET_HASH_BYTES])
{
    crypto_hash_sha256(out, data, len);
}

int cn_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (n >= cap) {
        if (cap)
            dst[0] = '\0';
        return CASENET_EINVAL;
    }
    memcpy(dst, src, n + 1);
    return CASENET_OK;
}

bool cn_endpoint_valid(const char *ep, bool bind)
{
    if (!ep)
        return false;
    if (strncmp(ep, "ipc://", 6) == 0)
        return ep[6] != '\0';
    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    const char *host = ep + 6, *colon = strrchr(host, ':');
    if (!colon || colon == host)
        return false;
    for (const char *p = host; p < colon; p++) {
        if (*p <= ' ' || *p == '/' || *p == 0x7f)
            return false;
    }
    const char *port = colon + 1;
    if (bind && strcmp(port, "*") == 0)
        return true;
    unsigned long v = 0;
    for (const char *p = port; *p; p++) {
        if (*p < '0' || *p > '9' || p - port >= 5)
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    return port[0] != '\0' && v >= 1 && v <= 65535;
}

bool cn_endpoint_list_valid(const char *list)
{
    if (!list || !*list)
        return false;
    char one[256];
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof one)
            return false;
        memcpy(one, p, len);
        one[len] = '\0';
        if (!cn_endpoint_valid(one, false))
            return false;
        if (!p[len])
            return true;
        p += len + 1;
    }
}
