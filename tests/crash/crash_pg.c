/* crash_pg.c - the crash test on PostgreSQL (issue 17): a throwaway server
 * (tests/store/pg_server.sh), two casenetd on its database with the same
 * broker key on two loopback endpoints, one active and one standby by the
 * store's fenced lease. The senders' clients list both endpoints. Each cycle
 * SIGKILLs the active broker under load, waits for the standby to take over
 * (the first receipt it signs), restarts the killed one, which waits as the
 * standby. Then the store is checked through libpq with crash_check, and the
 * takeover times (kill -> first receipt signed by the other broker) are
 * printed with p50/p99. */
#include "crash.h"
#include "testlib.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 60000 /* for a broker to come up, take over or wait */

struct broker {
    char name;
    char endpoint[64];
    char *data, *log;
    off_t log_from; /* the log's size when this process started */
    pid_t pid;      /* 0 when not running */
};

static const char *server_script;
static char *server_dir;

static void stop_server(void)
{
    if (!server_dir)
        return;
    char *cmd = NULL;
    if (asprintf(&cmd, "'%s' stop '%s'", server_script, server_dir) >= 0 && system(cmd) != 0)
        fprintf(stderr, "crash_test: stopping PostgreSQL in %s failed\n", server_dir);
    free(cmd);
    free(server_dir);
    server_dir = NULL;
}

/* Starts the throwaway server; returns its conninfo URI (malloc'd). */
static char *start_server(void)
{
    server_dir = tl_tmpdir(); /* not under the network's root: the server may run as nobody */
    char *cmd = NULL, uri[512];
    if (asprintf(&cmd, "'%s' start '%s'", server_script, server_dir) < 0)
        crash_die("out of memory");
    atexit(stop_server);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p || !fgets(uri, sizeof uri, p) || pclose(p) != 0)
        crash_die("could not start PostgreSQL (see above)");
    uri[strcspn(uri, "\n")] = '\0';
    return strdup(uri);
}

/* A loopback port below the ephemeral range, free now: a standby binds
 * its port only when it takes over, and an outgoing connection must not
 * have taken it meanwhile. */
static int quiet_port(void)
{
    for (int tries = 0; tries < 100; tries++) {
        int port = 10000 + (int)(randombytes_uniform(20000));
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return port;
    }
    crash_die("no free loopback port");
}

static void spawn(tn_network *tn, struct broker *b, const char *uri)
{
    const char *bin_dir = getenv("CASENET_BINARY_DIR");
    char *bin = NULL;
    if (!bin_dir || asprintf(&bin, "%s/broker/casenetd", bin_dir) < 0)
        crash_die("CASENET_BINARY_DIR is not set");
    const char *argv[] = {bin,
                          "--data",
                          b->data,
                          "--listen",
                          b->endpoint,
                          "--key",
                          tn->broker_key_path,
                          "--directory",
                          tn->directory_path,
                          "--authority",
                          tn->authority_path,
                          "--config",
                          tn->config_path,
                          "--store",
                          uri,
                          NULL};
    struct stat st;
    int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || fstat(fd, &st) != 0)
        crash_die("open a broker's log");
    b->log_from = st.st_size;
    b->pid = fork();
    if (b->pid < 0)
        crash_die("fork");
    if (b->pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the test */
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    free(bin);
}

/* Whether this run of b logged needle. */
static bool logged(const struct broker *b, const char *needle)
{
    size_t len = 0;
    uint8_t *text = tl_read_file(b->log, &len);
    bool found = (size_t)b->log_from <= len && memmem(text + b->log_from, len - (size_t)b->log_from,
                                                      needle, strlen(needle)) != NULL;
    free(text);
    return found;
}

/* Whether b answers a client (only the active broker listens). */
static bool answers(tn_network *tn, const struct broker *b)
{
    casenet_client_opts o = {.endpoint = b->endpoint, .timeout_ms = 300};
    casenet_client *c = NULL;
    int rc = casenet_client_connect(tn_keys(tn, crash_rcpt_ids[0]), tn->net->dir, &o, &c);
    casenet_client_free(c);
    return rc == CASENET_OK;
}

/* Whether b still runs; reaps it (and says so) when it exited. */
static bool running(struct broker *b)
{
    int st = 0;
    if (b->pid && waitpid(b->pid, &st, WNOHANG) == b->pid) {
        fprintf(stderr, "crash_test: broker %c exited (status %d); see %s\n", b->name,
                WIFEXITED(st) ? WEXITSTATUS(st) : -1, b->log);
        b->pid = 0;
    }
    return b->pid != 0;
}

static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

enum cond { BROKER_ANSWERS, BROKER_STANDBY, TAKEOVER_RECEIPT };

/* Polls the condition every 5 ms, WAIT_MS at most, while b runs. When
 * lease_at is not NULL, *lease_at gets the time b's lease_taken line was
 * first seen (0 if not seen). */
static bool wait_for(tn_network *tn, struct broker *b, enum cond what, int64_t *lease_at)
{
    int64_t until = cn_mono_ms() + WAIT_MS;
    while (cn_mono_ms() < until && running(b)) {
        if (lease_at && !*lease_at && logged(b, "event=lease_taken"))
            *lease_at = cn_mono_ms();
        if ((what == BROKER_ANSWERS && answers(tn, b)) ||
            (what == BROKER_STANDBY && logged(b, "event=standby")) ||
            (what == TAKEOVER_RECEIPT && crash_watch_seen() != 0))
            return true;
        pause_ms(5);
    }
    return false;
}

static void stop_broker(struct broker *b, int sig, bool must_be_clean)
{
    if (!b->pid)
        return;
    int st = 0;
    kill(b->pid, sig);
    waitpid(b->pid, &st, 0);
    b->pid = 0;
    if (must_be_clean && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        crash_fail("the active casenetd did not stop cleanly (see %s)", b->log);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p% of them at or below. */
static int64_t percentile(const int64_t *sorted, int n, int p)
{
    int rank = (n * p + 99) / 100;
    return n ? sorted[rank > 0 ? rank - 1 : 0] : 0;
}

/* The kill cycles; takeover[c] gets the time (ms) from kill c to the first
 * receipt signed by the other broker, lease[c] to its lease_taken log line
 * (written before it serves, so seen before or with that receipt). Returns
 * the cycles done (fewer when a takeover did not come). */
static int kill_cycles(tn_network *tn, struct broker br[2], const char *uri, int cycles,
                       unsigned *seed, int64_t *takeover, int64_t *lease)
{
    int active = 0;
    for (int c = 0; c < cycles; c++) {
        int ms =
            CRASH_KILL_MIN_MS + (int)(rand_r(seed) % (CRASH_KILL_MAX_MS - CRASH_KILL_MIN_MS + 1));
        pause_ms(ms);              /* under load */
        if (!running(&br[active])) /* lost its lease to the standby (a stall) */
            active = 1 - active;
        struct broker *victim = &br[active], *other = &br[1 - active];
        if (!running(victim)) {
            crash_fail("no broker runs before kill %d (see %s, %s)", c + 1, br[0].log, br[1].log);
            return c;
        }
        if (!running(other)) { /* it lost its lease: back as the standby */
            spawn(tn, other, uri);
            if (!wait_for(tn, other, BROKER_STANDBY, NULL)) {
                crash_fail("broker %c did not come back as the standby (see %s)", other->name,
                           other->log);
                return c;
            }
        }
        int64_t t0 = cn_mono_ms();
        kill(victim->pid, SIGKILL);
        waitpid(victim->pid, NULL, 0);
        victim->pid = 0;
        crash_watch_arm(cn_now_ms());
        int64_t lease_at = 0;
        if (!wait_for(tn, other, TAKEOVER_RECEIPT, &lease_at)) {
            crash_fail("broker %c did not take over within %d s of kill %d (see %s)", other->name,
                       WAIT_MS / 1000, c + 1, other->log);
            return c;
        }
        takeover[c] = crash_watch_seen() - t0;
        lease[c] = (lease_at ? lease_at : cn_mono_ms()) - t0;
        spawn(tn, victim, uri);
        if (!wait_for(tn, victim, BROKER_STANDBY, NULL)) {
            crash_fail("broker %c did not come back as the standby (see %s)", victim->name,
                       victim->log);
            return c + 1;
        }
        active = 1 - active;
        if ((c + 1) % 10 == 0)
            fprintf(stderr, "crash_test: %d/%d cycles\n", c + 1, cycles);
    }
    pause_ms(300); /* some traffic after the last takeover */
    return cycles;
}

/* Prints p50, p99 and max of the n times in t (sorts them). */
static void print_times(const char *what, int64_t *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_i64);
    printf("crash_test: %s over %d kills: p50 %lld ms, p99 %lld ms, max %lld ms\n", what, n,
           (long long)percentile(t, n, 50), (long long)percentile(t, n, 99),
           (long long)(n ? t[n - 1] : 0));
}

static void report(int cycles, int k, int64_t elapsed, const struct crash_load *l,
                   const struct crash_figures *f, int64_t token)
{
    printf("crash_test: postgresql, cycles %d, senders %d, %.1f s: messages attempted %zu, "
           "receipts %llu, stored %llu, losses %llu; submit timeouts %llu, other errors %llu; "
           "audit events %llu (broker starts %lld, lease token %lld)\n",
           cycles, k, elapsed / 1000.0, l->n, (unsigned long long)l->receipts,
           (unsigned long long)f->stored, (unsigned long long)f->losses,
           (unsigned long long)l->timeouts, (unsigned long long)l->errors,
           (unsigned long long)f->events, (long long)f->starts, (long long)token);
}

int crash_pg_run(const char *pg_server, int cycles, int k, unsigned seed)
{
    const char *pg_bin = getenv("PG_BIN") ? getenv("PG_BIN") : "/usr/lib/postgresql/15/bin";
    char *initdb = tl_path(pg_bin, "initdb");
    bool have = access(initdb, X_OK) == 0;
    free(initdb);
    if (!have) {
        fprintf(stderr, "SKIP: PostgreSQL 15 is not installed (deploy/setup-debian.sh)\n");
        return 77;
    }
    server_script = pg_server;
    char *uri = start_server();
    tn_network *tn = crash_network(k);
    struct broker br[2] = {{.name = 'a'}, {.name = 'b'}};
    char list[2 * sizeof br[0].endpoint + 1];
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(br[i].endpoint, sizeof br[i].endpoint, "tcp://127.0.0.1:%d", quiet_port());
        snprintf(name, sizeof name, "data-%c", br[i].name);
        br[i].data = tl_path(tn->root, name);
        if (mkdir(br[i].data, 0700) != 0)
            crash_die("mkdir");
        snprintf(name, sizeof name, "broker-%c.log", br[i].name);
        br[i].log = tl_path(tn->root, name);
    }
    snprintf(list, sizeof list, "%s,%s", br[0].endpoint, br[1].endpoint);
    spawn(tn, &br[0], uri);
    for (int i = 0; i < 2; i++) {
        if (i == 1)
            spawn(tn, &br[1], uri);
        if (!wait_for(tn, &br[i], i == 0 ? BROKER_ANSWERS : BROKER_STANDBY, NULL)) {
            fprintf(stderr, "crash_test: see %s\n", br[i].log);
            crash_die(i == 0 ? "broker a did not come up on PostgreSQL"
                             : "broker b did not wait as the standby");
        }
    }

    crash_senders_start(tn, list, k, seed);
    int64_t t0 = cn_mono_ms();
    int64_t *takeover = calloc((size_t)cycles + 1, sizeof *takeover);
    int64_t *lease = calloc((size_t)cycles + 1, sizeof *lease);
    if (!takeover || !lease)
        crash_die("out of memory");
    int done = kill_cycles(tn, br, uri, cycles, &seed, takeover, lease);
    struct crash_load load;
    crash_senders_stop(&load);
    int64_t elapsed = cn_mono_ms() - t0;
    /* The standby first (it holds nothing), then the active one, cleanly. */
    int active = running(&br[0]) && logged(&br[0], "event=lease_taken") ? 0 : 1;
    stop_broker(&br[1 - active], SIGKILL, false);
    stop_broker(&br[active], SIGTERM, true);

    crash_db db = crash_db_pg(uri);
    struct crash_figures f = {0};
    crash_check(&db, tn, &load, &f);
    int64_t token = db.scalar(db.h, "SELECT COALESCE(max(token), 0) FROM broker_lease");
    db.close(db.h);
    report(cycles, k, elapsed, &load, &f, token);
    print_times("takeover (kill -> first receipt from the other broker)", takeover, done);
    print_times("lease (kill -> the other broker's lease_taken line)", lease, done);
    if (load.receipts == 0)
        crash_fail("no message got a receipt: the test proved nothing");
    if (crash_failures()) {
        setenv("CASENET_KEEP_TMP", "1", 1);
        fprintf(stderr, "crash_test: %d check(s) failed; data and broker logs kept in %s\n",
                crash_failures(), tn->root);
    }
    free(takeover);
    free(lease);
    free(load.all);
    for (int i = 0; i < 2; i++) {
        free(br[i].data);
        free(br[i].log);
    }
    tn_free(tn);
    free(uri);
    stop_server();
    return crash_failures() ? 1 : 0;
}
