/* bench_submit.c - submit throughput and submit->receipt latency through
 * libcasenet's client against a real casenetd on loopback (the network
 * fixture). T threads (default: 1, then 8), each with its own member and
 * client, submit pre-sealed ~2 KB envelopes to one recipient for D seconds;
 * prints messages/s and p50/p99 latency. Built with the tests, not registered
 * with ctest:
 *   build/tests/bench_submit [seconds] [threads...]
 * Sealing happens before the clock starts (a pool per thread; a thread that
 * exhausts its pool stops early and is counted over its own time). */
#include "network.h"
#include "testlib.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_THREADS  8
#define BENCH_POOL         6000
#define BENCH_TEXT_BYTES   1650 /* gives an envelope of about 2 KB */
#define BENCH_SINK         "vn.sink"
#define BENCH_DEFAULT_SECS 5

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void check(int rc, const char *what)
{
    if (rc != CASENET_OK) {
        fprintf(stderr, "bench: %s: %s\n", what, casenet_strerror(rc));
        exit(1);
    }
}

struct worker {
    tn_network *tn;
    const char *id;
    casenet_buf *pool;
    size_t n_pool;
    double seconds;
    double start_us; /* shared start time */
    size_t done;
    double *lat_us; /* one per submit */
    double elapsed_us;
    int failures;
};

static void *work(void *p)
{
    struct worker *w = p;
    casenet_client_opts o = {.endpoint = w->tn->endpoint, .timeout_ms = 30000};
    casenet_client *c = NULL;
    check(casenet_client_connect(tn_keys(w->tn, w->id), w->tn->net->dir, &o, &c), "connect");
    while (now_us() < w->start_us) {
    }
    double end = w->start_us + w->seconds * 1e6, t = now_us();
    while (t < end && w->done < w->n_pool) {
        casenet_submit_receipt r;
        const casenet_buf *env = &w->pool[w->done];
        int rc = casenet_client_submit(c, env->data, env->len, &r, NULL);
        double t2 = now_us();
        if (rc != CASENET_OK)
            w->failures++;
        w->lat_us[w->done++] = t2 - t;
        t = t2;
    }
    w->elapsed_us = t - w->start_us;
    casenet_client_free(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void run(tn_network *tn, int threads, double seconds)
{
    static char ids[BENCH_MAX_THREADS][32];
    struct worker w[BENCH_MAX_THREADS];
    char *text = malloc(BENCH_TEXT_BYTES + 1);
    memset(text, 'x', BENCH_TEXT_BYTES);
    text[BENCH_TEXT_BYTES] = '\0';
    const char *to[] = {BENCH_SINK};
    size_t env_len = 0;
    for (int i = 0; i < threads; i++) {
        snprintf(ids[i], sizeof ids[i], "vn.bench%d", i + 1);
        w[i] = (struct worker){.tn = tn, .id = ids[i], .n_pool = BENCH_POOL, .seconds = seconds};
        w[i].pool = calloc(BENCH_POOL, sizeof *w[i].pool);
        w[i].lat_us = calloc(BENCH_POOL, sizeof *w[i].lat_us);
        if (!w[i].pool || !w[i].lat_us)
            check(CASENET_ENOMEM, "calloc");
        for (size_t k = 0; k < BENCH_POOL; k++)
            w[i].pool[k] = tn_seal(tn, ids[i], to, 1, text, NULL);
        env_len = w[i].pool[0].len;
    }
    pthread_t th[BENCH_MAX_THREADS];
    double start = now_us() + 300e3; /* after every client has connected */
    for (int i = 0; i < threads; i++) {
        w[i].start_us = start;
        if (pthread_create(&th[i], NULL, work, &w[i]) != 0)
            check(CASENET_EIO, "pthread_create");
    }
    size_t total = 0;
    double wall = 0;
    int failures = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += w[i].done;
        failures += w[i].failures;
        if (w[i].elapsed_us > wall)
            wall = w[i].elapsed_us;
    }
    double *all = calloc(total ? total : 1, sizeof *all);
    size_t k = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + k, w[i].lat_us, w[i].done * sizeof *all);
        k += w[i].done;
    }
    qsort(all, total, sizeof *all, cmp_double);
    double p50 = total ? all[total / 2] : 0, p99 = total ? all[(total * 99) / 100] : 0;
    printf("threads=%d envelope=%zuB seconds=%.1f submits=%zu failures=%d  %.0f msg/s  "
           "p50=%.2f ms p99=%.2f ms\n",
           threads, env_len, wall / 1e6, total, failures, total / (wall / 1e6), p50 / 1e3,
           p99 / 1e3);
    fflush(stdout);
    for (int i = 0; i < threads; i++) {
        for (size_t q = 0; q < BENCH_POOL; q++)
            casenet_buf_free(&w[i].pool[q]);
        free(w[i].pool);
        free(w[i].lat_us);
    }
    free(all);
    free(text);
}

int main(int argc, char **argv)
{
    check(casenet_init(), "init");
    if (!getenv("CASENET_BINARY_DIR"))
        setenv("CASENET_BINARY_DIR", CASENET_BENCH_BINARY_DIR, 1);
    double seconds = argc > 1 ? atof(argv[1]) : BENCH_DEFAULT_SECS;
    if (seconds <= 0) {
        fprintf(stderr, "usage: bench_submit [seconds] [threads...]\n");
        return 2;
    }
    const char *members[BENCH_MAX_THREADS + 1];
    static char specs[BENCH_MAX_THREADS][48];
    for (int i = 0; i < BENCH_MAX_THREADS; i++) {
        snprintf(specs[i], sizeof specs[i], "vn.bench%d:intake", i + 1);
        members[i] = specs[i];
    }
    members[BENCH_MAX_THREADS] = BENCH_SINK ":responder";
    tn_network *tn = tn_new(members, BENCH_MAX_THREADS + 1);
    /* Throughput, not the per-member limits, is measured here. */
    tn->config_path = tl_path(tn->root, "casenetd.ini");
    const char *ini =
        "[limits]\nsubmit_rate = 0\nmax_inbox_backlog = 4000000000\nmax_pair_backlog = 0\n";
    tl_write_file(tn->config_path, ini, strlen(ini), 0644);
    tn_start(tn);
    if (argc > 2) {
        for (int a = 2; a < argc; a++) {
            int t = atoi(argv[a]);
            if (t < 1 || t > BENCH_MAX_THREADS) {
                fprintf(stderr, "threads: 1..%d\n", BENCH_MAX_THREADS);
                return 2;
            }
            run(tn, t, seconds);
        }
    } else {
        run(tn, 1, seconds);
        run(tn, 8, seconds);
    }
    tn_stop(tn);
    tn_free(tn);
    return 0;
}
