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

bool bench_proc_io(pid_t pid, struct proc_io *out)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/io", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "write_bytes: %llu", &v) == 1) {
            out->write_bytes = v;
            got |= 1;
        } else if (sscanf(line, "wchar: %llu", &v) == 1) {
            out->wchar = v;
            got |= 2;
        }
    }
    fclose(f);
    return got == 3;
}

/* The value of key in a log line ("key=value"), as a number. */
static bool log_u64_field(const char *line, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    for (const char *p = strstr(line, key); p; p = strstr(p + 1, key)) {
        if ((p == line || p[-1] == ' ') && p[kl] == '=') {
            char *end = NULL;
            unsigned long long v = strtoull(p + kl + 1, &end, 10);
            if (end == p + kl + 1)
                return false;
            *out = v;
            return true;
        }
    }
    return false;
}

/* "ts=2026-12-07T18:00:00.123Z" -> ms since the epoch. */
static bool log_ts_ms(const char *line, int64_t *out)
{
    struct tm tm = {0};
    int ms = 0;
    if (sscanf(line, "ts=%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm) * 1000 + ms;
    return true;
}

struct stats_line {
    int64_t ts;
    uint64_t requests, batches, commits, log_pages;
};

static bool parse_stats_line(const char *line, struct stats_line *out)
{
    return strstr(line, " event=stats ") && log_ts_ms(line, &out->ts) &&
           log_u64_field(line, "requests", &out->requests) &&
           log_u64_field(line, "batches", &out->batches) &&
           log_u64_field(line, "commits", &out->commits) &&
           log_u64_field(line, "log_pages", &out->log_pages);
}

bool bench_broker_stats(const char *log_path, int64_t t0_ms, int64_t t1_ms,
                        struct broker_stats *out)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return false;
    char line[1024];
    struct stats_line a = {0}, b = {0}, x;
    bool have_a = false, have_b = false;
    while (fgets(line, sizeof line, f)) {
        if (!parse_stats_line(line, &x))
            continue;
        if (x.ts >= t0_ms && x.ts <= t1_ms) {
            if (!have_a) {
                a = x;
                have_a = true;
            }
            b = x;
            have_b = true;
        }
    }
    fclose(f);
    if (!have_a || !have_b || b.ts <= a.ts || b.requests < a.requests || b.commits < a.commits ||
        b.log_pages < a.log_pages)
        return false;
    out->span_s = (double)(b.ts - a.ts) / 1e3;
    out->requests = b.requests - a.requests;
    out->batches = b.batches - a.batches;
    out->commits = b.commits - a.commits;
    out->log_pages = b.log_pages - a.log_pages;
    return true;
}

uint32_t bench_db_page_size(const char *data_dir)
{
    char path[4096];
    unsigned char h[18];
    snprintf(path, sizeof path, "%s/casenet.db", data_dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    bool ok = fread(h, 1, sizeof h, f) == sizeof h && memcmp(h, "SQLite format 3", 16) == 0;
    fclose(f);
    if (!ok)
        return 0;
    uint32_t ps = (uint32_t)h[16] << 8 | h[17];
    return ps == 1 ? 65536u : ps;
}
