/* bench_attach.c - a large attachment through a real casenetd on loopback,
 * and what it costs the other members (issue 18's closing figures). One
 * member sends a referral with an attachment of MIB MiB (default 200) with
 * the real CLI (`casenet send --attach`), its recipient saves it with
 * `casenet read --save-attachments`; meanwhile another member submits small
 * referrals at RATE a second (default 100) through the library, timing
 * each Submit until its receipt. Prints upload and download MB/s, the CPU
 * seconds and peak RSS of the sending and receiving CLI processes
 * (getrusage of the children), the broker's CPU seconds per phase and its
 * RSS, and the other member's Submit->receipt p50/p99 without an upload
 * (a baseline of BASELINE seconds), during the upload and during the
 * download; beside them a fourth member asks for the directory 50 times a
 * second, a request that writes nothing (answered after the commit of the
 * batch it joins): closer to the loop's own latency than a Submit's
 * receipt, whose commit fsync shares the disk with the chunks' writes. Built with the tests, not
 * registered with ctest: build/tests/bench_attach [MIB] [--rate N] [--baseline SECONDS] Everything
 * runs on this machine, so the CLI processes, the broker and the submitting member share its CPUs
 * and disk: the figures are of one machine, not of a network. */
#include "network.h"
#include "testlib.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define B_SENDER    "vn.bench.hotline"
#define B_POLICE    "vn.bench.police"
#define B_OTHER     "vn.bench.other"
#define B_AGENCY    "vn.bench.agency"
#define B_TIMEOUT_S "900"
#define B_PHASES    4 /* idle, baseline, upload, download */
#define MIB         (1024.0 * 1024.0)
#define PROBE_RATE  50 /* GetDirectory round trips a second */

enum phase { P_IDLE, P_BASELINE, P_UPLOAD, P_DOWNLOAD };
static const char *const phase_names[B_PHASES] = {"", "no transfer", "during the upload",
                                                  "during the download"};

static void check(int rc, const char *what)
{
    if (rc != CASENET_OK) {
        fprintf(stderr, "bench_attach: %s: %s\n", what, casenet_strerror(rc));
        exit(1);
    }
}

static double now_s(void)
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

/* ------------------------------------------------------------ the other member */

struct samples {
    double *v;
    size_t n, cap;
};

static struct {
    tn_network *tn;
    double rate;
    atomic_int phase; /* enum phase; P_IDLE ends the thread */
    atomic_bool stop;
    struct samples lat[B_PHASES];   /* the thread's own until joined */
    struct samples probe[B_PHASES]; /* the prober's own until joined */
    size_t failed, probe_failed;
} O;

static void add_sample(struct samples *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            check(CASENET_ENOMEM, "realloc");
    }
    s->v[s->n++] = v;
}

/* Submits one referral every 1/rate s (paced on an absolute clock), timing
 * each from the call to the verified receipt, into the current phase. */
static void *other_member(void *arg)
{
    (void)arg;
    casenet_client_opts o = {.endpoint = O.tn->endpoint, .timeout_ms = 30000};
    casenet_client *c = NULL;
    check(casenet_client_connect(tn_keys(O.tn, B_OTHER), O.tn->net->dir, &o, &c), "connect");
    const char *to[] = {B_AGENCY};
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long step_ns = (long)(1e9 / O.rate);
    while (!atomic_load(&O.stop)) {
        next.tv_nsec += step_ns;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        casenet_buf env = tn_seal(O.tn, B_OTHER, to, 1, "routine referral during the bench", NULL);
        int ph = atomic_load(&O.phase);
        double t0 = now_s();
        casenet_submit_receipt r;
        int rc = casenet_client_submit(c, env.data, env.len, &r, NULL);
        double t = now_s() - t0;
        casenet_buf_free(&env);
        if (rc != CASENET_OK) {
            O.failed++;
            continue;
        }
        if (ph == atomic_load(&O.phase)) /* a sample that straddles phases is dropped */
            add_sample(&O.lat[ph], t);
    }
    casenet_client_free(c);
    return NULL;
}

/* Asks for the directory (nothing written) PROBE_RATE times a second as
 * another member, timing each round trip into the current phase. */
static void *prober(void *arg)
{
    (void)arg;
    casenet_client_opts o = {.endpoint = O.tn->endpoint, .timeout_ms = 30000};
    casenet_client *c = NULL;
    check(casenet_client_connect(tn_keys(O.tn, B_AGENCY), O.tn->net->dir, &o, &c), "connect");
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load(&O.stop)) {
        next.tv_nsec += 1000000000L / PROBE_RATE;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        int ph = atomic_load(&O.phase);
        double t0 = now_s();
        casenet_buf dir = {0};
        int rc = casenet_client_get_directory(c, &dir);
        double t = now_s() - t0;
        casenet_buf_free(&dir);
        if (rc != CASENET_OK)
            O.probe_failed++;
        else if (ph == atomic_load(&O.phase))
            add_sample(&O.probe[ph], t);
    }
    casenet_client_free(c);
    return NULL;
}

/* ------------------------------------------------------------ processes */

struct run {
    double wall_s, cpu_s;
    long maxrss_kb;
};

/* Runs argv with stdin from in (NULL: /dev/null), stdout to out, stderr to
 * log; waits and fills *r from wait4's rusage. Exits the bench on failure. */
static void run(char *const argv[], const char *in, const char *out, const char *log, struct run *r)
{
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        int i = open(in ? in : "/dev/null", O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_attach: casenet %s failed (status %d); see %s\n", argv[1], st, log);
        exit(1);
    }
    r->wall_s = now_s() - t0;
    r->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    r->maxrss_kb = ru.ru_maxrss;
}

/* The broker's CPU seconds so far (/proc/PID/stat utime + stime). */
static double broker_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, stime = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stime) != 2)
        return 0;
    return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* A field of /proc/PID/status in KiB (VmRSS, VmHWM). */
static long broker_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':')
            kb = atol(line + strlen(field) + 1);
    if (f)
        fclose(f);
    return kb;
}

/* Writes mib MiB of random bytes to path. */
static void make_file(const char *path, size_t mib)
{
    FILE *f = fopen(path, "wb");
    uint8_t *buf = malloc(1 << 20);
    if (!f || !buf)
        check(CASENET_EIO, "make the file");
    for (size_t i = 0; i < mib; i++) {
        randombytes_buf(buf, 1 << 20);
        if (fwrite(buf, 1, 1 << 20, f) != 1 << 20)
            check(CASENET_EIO, "write the file");
    }
    free(buf);
    if (fclose(f) != 0)
        check(CASENET_EIO, "close the file");
}

static const char referral_json[] =
    "{\"referral\": {\"caseId\": \"BENCH-ATTACH-1\", \"intakeChannel\": \"INTAKE_CHANNEL_PHONE\","
    " \"intakeReceivedAtMs\": \"1735700000000\", \"harmCategories\": "
    "[\"HARM_CATEGORY_SEXTORTION\"],"
    " \"urgency\": \"URGENCY_STANDARD\", \"children\": [{\"ageYears\": 14, \"sex\": "
    "\"SEX_FEMALE\"}], \"numberOfChildren\": 1, \"place\": {\"provinceCode\": \"01\"},"
    " \"currentCondition\": \"fictitious bench case\", \"requestedAction\": \"preserve "
    "evidence\", \"legalBasis\": {\"kind\": \"LEGAL_BASIS_KIND_VITAL_INTEREST\", \"reference\": "
    "\"bench\"}, \"language\": \"vi\", \"summary\": \"bench: evidence attached\"}}\n";

/* ------------------------------------------------------------ main */

struct paths {
    char *casenet, *file, *json, *out, *log, *saved;
    char *home[2]; /* sender, police */
};

/* casenet init for member id into home, as an operator would. */
static void init_home(tn_network *tn, struct paths *p, const char *id, char *home)
{
    char *key = NULL;
    if (asprintf(&key, "%s/%s.key", tn->root, id) < 0)
        check(CASENET_ENOMEM, "asprintf");
    char *argv[] = {p->casenet,    "init",
                    "--home",      home,
                    "--key",       key,
                    "--authority", tn->authority_path,
                    "--directory", tn->directory_path,
                    "--broker",    tn->endpoint,
                    NULL};
    struct run r;
    run(argv, NULL, p->out, p->log, &r);
    free(key);
}

/* One line of percentiles per phase of samples all, each named what. */
static void report_phases(struct samples *all, const char *what, const char *unit)
{
    for (int ph = P_BASELINE; ph < B_PHASES; ph++) {
        struct samples *s = &all[ph];
        if (s->n == 0) {
            printf("  %s %-20s: no sample\n", what, phase_names[ph]);
            continue;
        }
        qsort(s->v, s->n, sizeof *s->v, cmp_double);
        printf("  %s %-20s: p50 %6.2f ms  p99 %7.2f ms  max %7.2f ms  (%zu %s)\n", what,
               phase_names[ph], s->v[s->n / 2] * 1e3, s->v[(s->n * 99) / 100] * 1e3,
               s->v[s->n - 1] * 1e3, s->n, unit);
    }
}

static void report_latency(void)
{
    report_phases(O.lat, "Submit->receipt", "Submits");
    report_phases(O.probe, "GetDirectory   ", "requests");
    if (O.failed)
        printf("  Submits that failed: %zu\n", O.failed);
    if (O.probe_failed)
        printf("  GetDirectory requests that failed: %zu\n", O.probe_failed);
}

/* Sleeps for s seconds (the baseline phase: time is what it measures). */
static void hold(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    check(casenet_init(), "init");
    if (!getenv("CASENET_BINARY_DIR"))
        setenv("CASENET_BINARY_DIR", CASENET_BENCH_BINARY_DIR, 1);
    size_t mib = 200;
    double baseline = 10;
    O.rate = 100;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--rate") == 0 && a + 1 < argc)
            O.rate = atof(argv[++a]);
        else if (strcmp(argv[a], "--baseline") == 0 && a + 1 < argc)
            baseline = atof(argv[++a]);
        else if (atol(argv[a]) > 0)
            mib = (size_t)atol(argv[a]);
        else {
            fprintf(stderr, "usage: bench_attach [MIB] [--rate N] [--baseline SECONDS]\n");
            return 2;
        }
    }
    if (O.rate <= 0 || baseline <= 0) {
        fprintf(stderr, "bench_attach: --rate and --baseline must be positive\n");
        return 2;
    }
    const char *members[] = {B_SENDER ":intake", B_POLICE ":responder", B_OTHER ":intake",
                             B_AGENCY ":responder"};
    tn_network *tn =
        tn_new_started(members, 4, "[limits]\nsubmit_rate = 0\nmax_pair_backlog = 0\n");
    O.tn = tn;
    struct paths p = {.file = tl_path(tn->root, "evidence.bin"),
                      .json = tl_path(tn->root, "referral.json"),
                      .out = tl_path(tn->root, "cli.out"),
                      .log = tl_path(tn->root, "cli.log"),
                      .saved = tl_path(tn->root, "saved"),
                      .home = {tl_path(tn->root, "home-sender"), tl_path(tn->root, "home-police")}};
    if (asprintf(&p.casenet, "%s/clients/cli/casenet", getenv("CASENET_BINARY_DIR")) < 0)
        check(CASENET_ENOMEM, "asprintf");
    tl_write_file(p.json, referral_json, strlen(referral_json), 0600);
    if (mkdir(p.saved, 0700) != 0)
        check(CASENET_EIO, "mkdir");
    init_home(tn, &p, B_SENDER, p.home[0]);
    init_home(tn, &p, B_POLICE, p.home[1]);
    make_file(p.file, mib);
    long rss0 = broker_kb(tn->pid, "VmRSS");

    pthread_t th, th_probe;
    atomic_store(&O.phase, P_BASELINE);
    if (pthread_create(&th, NULL, other_member, NULL) != 0)
        check(CASENET_ENOMEM, "pthread_create");
    if (pthread_create(&th_probe, NULL, prober, NULL) != 0)
        check(CASENET_ENOMEM, "pthread_create");
    hold(baseline);

    struct run up, down;
    double cpu0 = broker_cpu_s(tn->pid);
    atomic_store(&O.phase, P_UPLOAD);
    char *send_argv[] = {p.casenet,   "send",      "--home",   p.home[0],  "--to",
                         B_POLICE,    "--kind",    "referral", "--attach", p.file,
                         "--timeout", B_TIMEOUT_S, NULL};
    run(send_argv, p.json, p.out, p.log, &up);
    double cpu1 = broker_cpu_s(tn->pid);
    casenet_buf idbuf = {0};
    check(cn_read_file(p.out, 4096, &idbuf), "read the message id");
    char id[33] = {0};
    memcpy(id, idbuf.data, idbuf.len >= 32 ? 32 : idbuf.len);
    casenet_buf_free(&idbuf);

    atomic_store(&O.phase, P_DOWNLOAD);
    char *read_argv[] = {
        p.casenet, "read",      id,          "--home", p.home[1], "--json", "--save-attachments",
        p.saved,   "--timeout", B_TIMEOUT_S, NULL};
    run(read_argv, NULL, p.out, p.log, &down);
    double cpu2 = broker_cpu_s(tn->pid);
    atomic_store(&O.stop, true);
    pthread_join(th, NULL);
    pthread_join(th_probe, NULL);

    double mb = (double)mib * MIB / 1e6;
    printf("attachment of %zu MiB (%.1f MB) from %s to %s, the other member at %.0f Submits/s:\n",
           mib, mb, B_SENDER, B_POLICE, O.rate);
    printf("  upload   (casenet send --attach):             %6.2f s  %6.1f MB/s  CPU %6.2f s  "
           "max RSS %6.1f MiB\n",
           up.wall_s, mb / up.wall_s, up.cpu_s, (double)up.maxrss_kb / 1024.0);
    printf("  download (casenet read --save-attachments):   %6.2f s  %6.1f MB/s  CPU %6.2f s  "
           "max RSS %6.1f MiB\n",
           down.wall_s, mb / down.wall_s, down.cpu_s, (double)down.maxrss_kb / 1024.0);
    printf("  broker: CPU %.2f s during the upload, %.2f s during the download (the other "
           "member's Submits included); RSS %.1f MiB before, %.1f MiB after, peak %.1f MiB\n",
           cpu1 - cpu0, cpu2 - cpu1, (double)rss0 / 1024.0,
           (double)broker_kb(tn->pid, "VmRSS") / 1024.0,
           (double)broker_kb(tn->pid, "VmHWM") / 1024.0);
    report_latency();

    for (int ph = 0; ph < B_PHASES; ph++) {
        free(O.lat[ph].v);
        free(O.probe[ph].v);
    }
    free(p.casenet);
    free(p.file);
    free(p.json);
    free(p.out);
    free(p.log);
    free(p.saved);
    free(p.home[0]);
    free(p.home[1]);
    tn_free(tn);
    return 0;
}
