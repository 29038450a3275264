/* crash_test.c - casenetd must never lose an acknowledged referral. K sender
 * threads submit continuously (libcasenet clients, random recipients) while
 * the broker is SIGKILLed at random moments (50-500 ms after it came up) and
 * restarted on the same data directory and endpoint, N times. Then the broker
 * is stopped cleanly and its database is checked read-only:
 *   - every message that got a verified receipt is stored, and is in each of
 *     its recipients' inboxes exactly once (and in no other inbox);
 *   - every stored message was submitted by a sender (ids recorded before
 *     sending), and has its inbox rows all or none;
 *   - no inbox row lacks its stored message;
 *   - every stored message has its SUBMITTED audit event, and there are no
 *     more SUBMITTED events than messages;
 *   - PRAGMA integrity_check says ok (SQLite);
 *   - audit indexes are dense from 0, and the log, written as an export file,
 *     passes the audit verifier (clients/auditlog.h).
 * Prints the figures (cycles, attempts, receipts, stored, losses) and exits 0
 * only when every check holds.
 *
 * With --postgresql PG_SERVER_SH (tests/store/pg_server.sh) the same load
 * and checks run on two brokers sharing one PostgreSQL database, the active
 * one SIGKILLed each cycle and the standby taking over (crash_pg.c); exits
 * 77 when PostgreSQL 15 is not installed.
 *
 *   crash_test [--cycles N] [--senders K] [--seed S] [--postgresql SCRIPT]
 * (defaults 10 cycles, 4 senders; ctest runs a short run, the 200-cycle run
 * is by hand). Needs CASENET_BINARY_DIR (set by ctest) to find casenetd. */
#include "crash.h"
#include "testlib.h"

#include "util.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUBMIT_TMO_MS 15000

const char *const crash_rcpt_ids[CRASH_RCPTS] = {"vn.rcpt1", "vn.rcpt2", "vn.rcpt3"};
/* The same members with a role that receives referrals (PROTOCOL.md §6.1). */
static const char *const rcpt_specs[CRASH_RCPTS] = {"vn.rcpt1:responder", "vn.rcpt2:responder",
                                                    "vn.rcpt3:responder"};

struct sender {
    pthread_t th;
    tn_network *tn;
    const char *endpoint;
    char id[32];
    unsigned seed;
    struct attempt *a;
    size_t n, cap;
    uint64_t errors[2]; /* timeouts, other errors */
};

static atomic_bool stop;
static struct sender *senders;
static int n_senders;
/* The takeover watch (crash_watch_arm). */
static _Atomic int64_t watch_after, watch_seen;

void crash_watch_arm(int64_t after_wall_ms)
{
    atomic_store(&watch_seen, 0);
    atomic_store(&watch_after, after_wall_ms);
}

int64_t crash_watch_seen(void)
{
    return atomic_load(&watch_seen);
}

static void watch_receipt(const casenet_submit_receipt *r)
{
    int64_t after = atomic_load(&watch_after), none = 0;
    if (after && r->accepted_at_ms > after)
        atomic_compare_exchange_strong(&watch_seen, &none, cn_mono_ms());
}

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    casenet_client_opts o = {.endpoint = s->endpoint, .timeout_ms = SUBMIT_TMO_MS};
    casenet_client *c = NULL;
    if (casenet_client_connect(tn_keys(s->tn, s->id), s->tn->net->dir, &o, &c) != CASENET_OK)
        crash_die("a sender could not connect");
    while (!atomic_load(&stop)) {
        unsigned mask = 0;
        while (!mask)
            mask = (unsigned)rand_r(&s->seed) & ((1u << CRASH_RCPTS) - 1);
        const char *to[CRASH_RCPTS];
        size_t n_to = 0;
        for (int i = 0; i < CRASH_RCPTS; i++)
            if (mask & (1u << i))
                to[n_to++] = crash_rcpt_ids[i];
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 1024;
            s->a = realloc(s->a, s->cap * sizeof *s->a);
            if (!s->a)
                crash_die("out of memory");
        }
        struct attempt *at = &s->a[s->n];
        casenet_buf env = tn_seal(s->tn, s->id, to, n_to, "crash test referral", at->id);
        at->mask = mask;
        at->receipted = false;
        s->n++; /* recorded before it is sent */
        casenet_submit_receipt r;
        int rc = casenet_client_submit(c, env.data, env.len, &r, NULL);
        if (rc == CASENET_OK) {
            if (memcmp(r.message_id, at->id, sizeof at->id) != 0)
                crash_die("a receipt names another message");
            at->receipted = true;
            watch_receipt(&r);
        } else {
            s->errors[rc == CASENET_ETIMEDOUT ? 0 : 1]++;
        }
        casenet_buf_free(&env);
    }
    casenet_client_free(c);
    return NULL;
}

void crash_senders_start(tn_network *tn, const char *endpoint, int k, unsigned seed)
{
    atomic_store(&stop, false);
    n_senders = k;
    senders = calloc((size_t)k, sizeof *senders);
    if (!senders)
        crash_die("out of memory");
    for (int i = 0; i < k; i++) {
        struct sender *s = &senders[i];
        s->tn = tn;
        s->endpoint = endpoint;
        snprintf(s->id, sizeof s->id, "vn.sender%d", i + 1);
        s->seed = seed + 7919u * (unsigned)(i + 1);
        if (pthread_create(&s->th, NULL, sender_main, s) != 0)
            crash_die("pthread_create");
    }
}

static int cmp_attempt(const void *a, const void *b)
{
    return memcmp(((const struct attempt *)a)->id, ((const struct attempt *)b)->id,
                  CASENET_MESSAGE_ID_BYTES);
}

void crash_senders_stop(struct crash_load *out)
{
    atomic_store(&stop, true);
    size_t total = 0;
    *out = (struct crash_load){0};
    for (int i = 0; i < n_senders; i++) {
        pthread_join(senders[i].th, NULL);
        total += senders[i].n;
        out->timeouts += senders[i].errors[0];
        out->errors += senders[i].errors[1];
    }
    out->all = malloc((total ? total : 1) * sizeof *out->all);
    if (!out->all)
        crash_die("out of memory");
    for (int i = 0; i < n_senders; i++) {
        for (size_t j = 0; j < senders[i].n; j++) {
            out->all[out->n++] = senders[i].a[j];
            out->receipts += senders[i].a[j].receipted;
        }
        free(senders[i].a);
    }
    free(senders);
    senders = NULL;
    qsort(out->all, out->n, sizeof *out->all, cmp_attempt);
    for (size_t i = 1; i < out->n; i++)
        if (cmp_attempt(&out->all[i - 1], &out->all[i]) == 0)
            crash_die("two attempts drew the same message id");
}

tn_network *crash_network(int k)
{
    const char *specs[CRASH_MAX_SENDERS + CRASH_RCPTS];
    static char names[CRASH_MAX_SENDERS][48];
    for (int i = 0; i < k; i++) {
        snprintf(names[i], sizeof names[i], "vn.sender%d:intake", i + 1);
        specs[i] = names[i];
    }
    for (int i = 0; i < CRASH_RCPTS; i++)
        specs[k + i] = rcpt_specs[i];
    tn_network *tn = tn_new(specs, (size_t)k + CRASH_RCPTS);
    /* Senders submit as fast as they can: no per-member limits here. */
    tn->config_path = tl_path(tn->root, "casenetd.ini");
    const char *ini =
        "[limits]\nsubmit_rate = 0\nmax_inbox_backlog = 4000000000\nmax_pair_backlog = 0\n";
    tl_write_file(tn->config_path, ini, strlen(ini), 0644);
    return tn;
}

/* One broker on SQLite, killed and restarted on the same directory. */
static int sqlite_run(int cycles, int k, unsigned seed)
{
    tn_network *tn = crash_network(k);
    tn_start(tn);
    crash_senders_start(tn, tn->endpoint, k, seed);
    int64_t t0 = cn_mono_ms();
    for (int c = 0; c < cycles; c++) {
        int ms =
            CRASH_KILL_MIN_MS + (int)(rand_r(&seed) % (CRASH_KILL_MAX_MS - CRASH_KILL_MIN_MS + 1));
        usleep((useconds_t)ms * 1000);
        tn_kill(tn);
        tn_restart(tn);
        if ((c + 1) % 20 == 0)
            fprintf(stderr, "crash_test: %d/%d cycles\n", c + 1, cycles);
    }
    usleep(300 * 1000); /* some traffic after the last restart */
    struct crash_load load;
    crash_senders_stop(&load);
    int64_t elapsed = cn_mono_ms() - t0;
    if (tn_stop(tn) != 0)
        crash_fail("casenetd did not stop cleanly");

    char *path = tl_path(tn->data_dir, "casenet.db");
    crash_db db = crash_db_sqlite(path);
    struct crash_figures f = {0};
    crash_check(&db, tn, &load, &f);
    db.close(db.h);
    free(path);
    free(load.all);

    printf("crash_test: cycles %d, senders %d, %.1f s: messages attempted %zu, receipts %llu, "
           "stored %llu, losses %llu; submit timeouts %llu, other errors %llu; audit events "
           "%llu (broker starts %lld)\n",
           cycles, k, elapsed / 1000.0, load.n, (unsigned long long)load.receipts,
           (unsigned long long)f.stored, (unsigned long long)f.losses,
           (unsigned long long)load.timeouts, (unsigned long long)load.errors,
           (unsigned long long)f.events, (long long)f.starts);
    if (crash_failures()) {
        setenv("CASENET_KEEP_TMP", "1", 1);
        fprintf(stderr, "crash_test: %d check(s) failed; data kept in %s\n", crash_failures(),
                tn->root);
    }
    if (load.receipts == 0)
        crash_fail("no message got a receipt: the test proved nothing");
    tn_free(tn);
    return crash_failures() ? 1 : 0;
}

int main(int argc, char **argv)
{
    int cycles = 10, k = 4;
    unsigned seed = (unsigned)cn_now_ms();
    const char *pg_server = NULL;
    static const struct option opts[] = {
        {"cycles", required_argument, NULL, 'c'},
        {"senders", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 's'},
        {"postgresql", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'c')
            cycles = atoi(optarg);
        else if (o == 'k')
            k = atoi(optarg);
        else if (o == 's')
            seed = (unsigned)strtoul(optarg, NULL, 10);
        else if (o == 'p')
            pg_server = optarg;
        else {
            fprintf(stderr, "usage: crash_test [--cycles N] [--senders K] [--seed S]"
                            " [--postgresql PG_SERVER_SH]\n");
            return 2;
        }
    }
    if (cycles < 0 || k < 1 || k > CRASH_MAX_SENDERS)
        crash_die("--cycles >= 0, --senders 1..32");
    if (casenet_init() != CASENET_OK)
        crash_die("casenet_init");
    fprintf(stderr, "crash_test: %d cycles, %d senders, seed %u%s\n", cycles, k, seed,
            pg_server ? ", two brokers on PostgreSQL" : "");
    int rc = pg_server ? crash_pg_run(pg_server, cycles, k, seed) : sqlite_run(cycles, k, seed);
    if (rc != 77)
        printf("crash_test: %d passed, %d failed\n", rc ? 0 : 1, rc ? 1 : 0);
    return rc;
}
