/* measure.c - casenet-bench's measuring helpers: machine ceilings (Ed25519
 * verify and sign per second, fdatasync per second), process samples from
 * /proc and percentiles (see bench.h). */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CEIL_SECONDS    0.5
#define CEIL_MSG_BYTES  300 /* about a header's PAE: what the broker verifies */
#define FSYNC_BLOCK     4096
#define FSYNC_BLOCKS    256
#define FSYNC_MAX_ITERS 2000

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_sort(double *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_double);
}

double bench_percentile(double *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n)
        return sorted[n - 1];
    double frac = pos - (double)i;
    return sorted[i] + frac * (sorted[i + 1] - sorted[i]);
}

/* utime + stime of a /proc stat file, in seconds. */
static bool stat_cpu(const char *path, double *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name (which may hold spaces), from ')'. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return false;
    *out = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return true;
}

bool bench_proc_sample(pid_t pid, struct proc_sample *out)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    out->rss_kb = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            out->rss_kb = kb;
    }
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!stat_cpu(path, &out->cpu_s))
        return false;
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)pid);
    return stat_cpu(path, &out->loop_cpu_s);
}

int bench_ceilings(const char *dir, struct ceilings *out)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char msg[CEIL_MSG_BYTES], sig[crypto_sign_BYTES];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof msg);

    /* sign */
    size_t n = 0;
    double t0 = mono_s(), t;
    do {
        for (int k = 0; k < 64; k++, n++) {
            msg[0] = (unsigned char)n;
            crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
        }
        t = mono_s();
    } while (t - t0 < CEIL_SECONDS);
    out->sign_per_s = (double)n / (t - t0);

    /* verify (a valid signature each time: the broker's common case) */
    crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
    n = 0;
    size_t bad = 0;
    t0 = mono_s();
    do {
        for (int k = 0; k < 64; k++, n++)
            bad += crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0;
        t = mono_s();
    } while (t - t0 < CEIL_SECONDS);
    out->verify_per_s = (double)n / (t - t0);
    sodium_memzero(sk, sizeof sk);
    if (bad) {
        fprintf(stderr, "casenet-bench: Ed25519 verification failed in the ceiling test\n");
        return CASENET_ECRYPTO;
    }

    /* fdatasync of a 4 KiB overwrite in an allocated file, as a WAL frame
     * rewrite after a checkpoint costs. */
    char *path = NULL;
    if (asprintf(&path, "%s/.casenet-bench-fsync", dir) < 0)
        return CASENET_ENOMEM;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "casenet-bench: %s: %s\n", path, strerror(errno));
        free(path);
        return CASENET_EIO;
    }
    unsigned char block[FSYNC_BLOCK];
    memset(block, 0x5a, sizeof block);
    int rc = CASENET_OK;
    for (int i = 0; i < FSYNC_BLOCKS && rc == CASENET_OK; i++)
        if (pwrite(fd, block, sizeof block, (off_t)i * FSYNC_BLOCK) != (ssize_t)sizeof block)
            rc = CASENET_EIO;
    if (rc == CASENET_OK && fsync(fd) != 0)
        rc = CASENET_EIO;
    n = 0;
    t0 = mono_s();
    t = t0;
    while (rc == CASENET_OK && t - t0 < CEIL_SECONDS && n < FSYNC_MAX_ITERS) {
        block[0] = (unsigned char)n;
        if (pwrite(fd, block, sizeof block, (off_t)(n % FSYNC_BLOCKS) * FSYNC_BLOCK) !=
                (ssize_t)sizeof block ||
            fdatasync(fd) != 0)
            rc = CASENET_EIO;
        n++;
        t = mono_s();
    }
    out->fsync_per_s = t > t0 ? (double)n / (t - t0) : 0;
    close(fd);
    unlink(path);
    free(path);
    if (rc != CASENET_OK)
        fprintf(stderr, "casenet-bench: the fsync test failed in %s\n", dir);
    return rc;
}
