/* bench_ack.c - submit -> automated acknowledgement at the sender: one member
 * submits referrals one at a time to an agency whose `casenet watch` agent
 * (the real CLI binary, spooling to a directory, optionally also running a
 * command) hands each over and acknowledges it; the sender, subscribed to its
 * own inbox, times from the start of the submit to the push of the forwarded
 * `delivered` receipt. Prints p50/p99/max over COUNT referrals. Built with
 * the tests, not registered with ctest:
 *   build/tests/bench_ack [COUNT] [--exec CMD]        (default COUNT 1000)
 * Everything runs on this machine against a real casenetd on loopback, so
 * every fsync of the broker and of the agent is in the figure. */
#include "network.h"
#include "testlib.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_SENDER      "vn.bench.sender"
#define BENCH_AGENCY      "vn.bench.agency"
#define BENCH_DEFAULT_N   1000
#define BENCH_TEXT_BYTES  1650 /* an envelope of about 2 KB, like bench_submit */
#define BENCH_WAIT_MS     30000
#define BENCH_WARMUP_MSGS 3

static void check(int rc, const char *what)
{
    if (rc != CASENET_OK) {
        fprintf(stderr, "bench_ack: %s: %s\n", what, casenet_strerror(rc));
        exit(1);
    }
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs argv with stderr to log (NULL: inherited); returns its pid. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        if (log) {
            FILE *f = freopen(log, "a", stderr);
            (void)f;
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void run_ok(char *const argv[])
{
    pid_t pid = spawn(argv, NULL);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_ack: %s failed\n", argv[1]);
        exit(1);
    }
}

/* Submits env and waits for the forwarded delivered receipt of its id;
 * returns the latency in microseconds. */
static double one(casenet_client *c, const casenet_buf *env, const uint8_t id[16])
{
    double t0 = now_us();
    casenet_submit_receipt r;
    check(casenet_client_submit(c, env->data, env->len, &r, NULL), "submit");
    int64_t deadline = cn_mono_ms() + BENCH_WAIT_MS;
    for (;;) {
        int64_t left = deadline - cn_mono_ms();
        if (left <= 0) {
            fprintf(stderr, "bench_ack: no receipt within %d s\n", BENCH_WAIT_MS / 1000);
            exit(1);
        }
        casenet_inbox_entry e;
        int rc = casenet_client_wait_notice(c, (int)left, &e);
        if (rc == CASENET_ETIMEDOUT)
            continue;
        check(rc, "wait_notice");
        bool mine = e.kind == CASENET_KIND_RECEIPT && e.has_in_reply_to &&
                    memcmp(e.in_reply_to, id, 16) == 0 &&
                    e.receipt_status == CASENET_RECEIPT_DELIVERED;
        casenet_inbox_entry_clear(&e);
        if (mine)
            return now_us() - t0;
    }
}

int main(int argc, char **argv)
{
    check(casenet_init(), "init");
    if (!getenv("CASENET_BINARY_DIR"))
        setenv("CASENET_BINARY_DIR", CASENET_BENCH_BINARY_DIR, 1);
    size_t count = BENCH_DEFAULT_N;
    const char *exec_cmd = NULL;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--exec") == 0 && a + 1 < argc) {
            exec_cmd = argv[++a];
        } else if (atol(argv[a]) > 0) {
            count = (size_t)atol(argv[a]);
        } else {
            fprintf(stderr, "usage: bench_ack [COUNT] [--exec CMD]\n");
            return 2;
        }
    }
    const char *members[] = {BENCH_SENDER ":intake", BENCH_AGENCY ":responder"};
    tn_network *tn = tn_new(members, 2);
    tn_start(tn);

    /* The agency's home, made by the CLI as an operator would. */
    char *casenet = NULL, *home = tl_path(tn->root, "agency-home");
    char *spool = tl_path(tn->root, "spool"), *key = tl_path(tn->root, BENCH_AGENCY ".key");
    char *watch_log = tl_path(tn->root, "watch.log");
    if (asprintf(&casenet, "%s/clients/cli/casenet", getenv("CASENET_BINARY_DIR")) < 0)
        check(CASENET_ENOMEM, "asprintf");
    char *init_argv[] = {casenet,       "init",
                         "--home",      home,
                         "--key",       key,
                         "--authority", tn->authority_path,
                         "--directory", tn->directory_path,
                         "--broker",    tn->endpoint,
                         NULL};
    run_ok(init_argv);
    char *watch_argv[] = {
        casenet,          "watch", "--home", home, "--spool", spool, exec_cmd ? "--exec" : NULL,
        (char *)exec_cmd, NULL};
    pid_t watch = spawn(watch_argv, watch_log);

    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = BENCH_WAIT_MS};
    casenet_client *c = NULL;
    check(casenet_client_connect(tn_keys(tn, BENCH_SENDER), tn->net->dir, &o, &c), "connect");
    check(casenet_client_subscribe(c), "subscribe");

    char *text = malloc(BENCH_TEXT_BYTES + 1);
    casenet_buf *pool = calloc(count + BENCH_WARMUP_MSGS, sizeof *pool);
    uint8_t(*ids)[16] = calloc(count + BENCH_WARMUP_MSGS, sizeof *ids);
    double *lat = calloc(count, sizeof *lat);
    if (!text || !pool || !ids || !lat)
        check(CASENET_ENOMEM, "calloc");
    memset(text, 'x', BENCH_TEXT_BYTES);
    text[BENCH_TEXT_BYTES] = '\0';
    const char *to[] = {BENCH_AGENCY};
    for (size_t i = 0; i < count + BENCH_WARMUP_MSGS; i++)
        pool[i] = tn_seal(tn, BENCH_SENDER, to, 1, text, ids[i]);

    /* Warm-up: the agent is connected and subscribed once these come back. */
    for (size_t i = 0; i < BENCH_WARMUP_MSGS; i++)
        one(c, &pool[i], ids[i]);
    double start = now_us();
    for (size_t i = 0; i < count; i++)
        lat[i] = one(c, &pool[BENCH_WARMUP_MSGS + i], ids[BENCH_WARMUP_MSGS + i]);
    double wall = now_us() - start;

    qsort(lat, count, sizeof *lat, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += lat[i];
    printf("referrals=%zu envelope=%zuB hand-over=spool%s  p50=%.2f ms p99=%.2f ms max=%.2f ms "
           "mean=%.2f ms  (%.0f acknowledged referrals/s, one at a time)\n",
           count, pool[0].len, exec_cmd ? "+exec" : "", lat[count / 2] / 1e3,
           lat[(count * 99) / 100] / 1e3, lat[count - 1] / 1e3, sum / count / 1e3,
           count / (wall / 1e6));

    kill(watch, SIGTERM);
    int st = 0;
    waitpid(watch, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "bench_ack: watch exited with status %d (log: %s)\n", st, watch_log);
    casenet_client_free(c);
    for (size_t i = 0; i < count + BENCH_WARMUP_MSGS; i++)
        casenet_buf_free(&pool[i]);
    free(pool);
    free(ids);
    free(lat);
    free(text);
    free(casenet);
    free(home);
    free(spool);
    free(key);
    free(watch_log);
    tn_stop(tn);
    tn_free(tn);
    return 0;
}
