/* testlib.c - fixtures shared by the unit tests (see testlib.h). */
#include "testlib.h"

#include "casenet.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "testlib: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
    abort();
}

char *tl_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    if (!base || !*base)
        base = "/tmp";
    if (asprintf(&path, "%s/casenet-test-XXXXXX", base) < 0)
        die("asprintf", NULL);
    if (!mkdtemp(path))
        die("mkdtemp", path);
    return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tl_rmrf(const char *path)
{
    if (path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tl_path(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        die("asprintf", NULL);
    return p;
}

uint8_t *tl_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("open", path);
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf)
        die("malloc", NULL);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        cap *= 2;
        uint8_t *nb = realloc(buf, cap + 1);
        if (!nb)
            die("realloc", NULL);
        buf = nb;
    }
    if (ferror(f))
        die("read", path);
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

void tl_write_file(const char *path, const void *data, size_t len, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        die("create", path);
    if (fchmod(fd, mode) != 0)
        die("chmod", path);
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0)
            die("write", path);
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long tl_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

void tl_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = 0;
}

const char *tl_vectors_dir(void)
{
    const char *d = getenv("CASENET_TESTVECTORS");
    struct stat st;
    if (!d || stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return d;
}

json_t *tl_load_vector(const char *relpath)
{
    const char *dir = tl_vectors_dir();
    if (!dir)
        return NULL;
    char *p = tl_path(dir, relpath);
    json_error_t err;
    json_t *j = json_load_file(p, 0, &err);
    if (!j)
        fprintf(stderr, "testlib: %s: %s (line %d)\n", p, err.text, err.line);
    free(p);
    return j;
}

const char *tl_err_mismatch(int got, int want, const char *expr)
{
    static _Thread_local char msg[1024];
    if (got == want)
        return NULL;
    snprintf(msg, sizeof msg, "%s returned %s (%d: %s), expected %s (%d: %s)", expr,
             casenet_errname(got), got, casenet_strerror(got), casenet_errname(want), want,
             casenet_strerror(want));
    return msg;
}
