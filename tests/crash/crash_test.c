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
 *   - PRAGMA integrity_check says ok;
 *   - audit indexes are dense from 0, and the log, written as an export file,
 *     passes the audit verifier (clients/auditlog.h).
 * Prints the figures (cycles, attempts, receipts, stored, losses) and exits 0
 * only when every check holds.
 *
 *   crash_test [--cycles N] [--senders K] [--seed S]
 * (defaults 10 cycles, 4 senders; ctest runs a short run, the 200-cycle run
 * is by hand). Needs CASENET_BINARY_DIR (set by ctest) to find casenetd. */
#include "network.h"
#include "testlib.h"

#include "auditlog.h"
#include "checkpoint.h"
#include "util.h"

#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_RCPTS       3
#define SUBMIT_TMO_MS 15000
#define MAX_SENDERS   32
#define KILL_MIN_MS   50
#define KILL_MAX_MS   500
#define NETWORK_NAME  "crash-test"

static const char *const rcpt_ids[N_RCPTS] = {"vn.rcpt1", "vn.rcpt2", "vn.rcpt3"};
/* The same members with a role that receives referrals (PROTOCOL.md §6.1). */
static const char *const rcpt_specs[N_RCPTS] = {"vn.rcpt1:responder", "vn.rcpt2:responder",
                                                "vn.rcpt3:responder"};

struct attempt {
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    unsigned mask; /* bit i: rcpt_ids[i] is a recipient */
    bool receipted;
};

struct sender {
    pthread_t th;
    tn_network *tn;
    char id[32];
    unsigned seed;
    atomic_bool *stop;
    struct attempt *a;
    size_t n, cap;
    uint64_t errors[2]; /* timeouts, other errors */
};

static void die(const char *what)
{
    fprintf(stderr, "crash_test: %s\n", what);
    exit(2);
}

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    casenet_client_opts o = {.endpoint = s->tn->endpoint, .timeout_ms = SUBMIT_TMO_MS};
    casenet_client *c = NULL;
    if (casenet_client_connect(tn_keys(s->tn, s->id), s->tn->net->dir, &o, &c) != CASENET_OK)
        die("a sender could not connect");
    while (!atomic_load(s->stop)) {
        unsigned mask = 0;
        while (!mask)
            mask = (unsigned)rand_r(&s->seed) & ((1u << N_RCPTS) - 1);
        const char *to[N_RCPTS];
        size_t n_to = 0;
        for (int i = 0; i < N_RCPTS; i++)
            if (mask & (1u << i))
                to[n_to++] = rcpt_ids[i];
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 1024;
            s->a = realloc(s->a, s->cap * sizeof *s->a);
            if (!s->a)
                die("out of memory");
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
                die("a receipt names another message");
            at->receipted = true;
        } else {
            s->errors[rc == CASENET_ETIMEDOUT ? 0 : 1]++;
        }
        casenet_buf_free(&env);
    }
    casenet_client_free(c);
    return NULL;
}

static int cmp_attempt(const void *a, const void *b)
{
    return memcmp(((const struct attempt *)a)->id, ((const struct attempt *)b)->id,
                  CASENET_MESSAGE_ID_BYTES);
}

static struct attempt *find(struct attempt *all, size_t n, const uint8_t *id)
{
    struct attempt key;
    memcpy(key.id, id, sizeof key.id);
    return bsearch(&key, all, n, sizeof *all, cmp_attempt);
}

static int failures;

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    failures++;
    if (failures > 20)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "crash_test: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int64_t scalar(sqlite3 *db, const char *q)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        fprintf(stderr, "crash_test: %s: %s\n", q, sqlite3_errmsg(db));
        exit(2);
    }
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The receipted-and-stored checks, per attempt (indexed lookups only).
 * Returns the losses; *rows counts the inbox rows found. */
static uint64_t check_messages(sqlite3 *db, struct attempt *all, size_t n, uint64_t *stored,
                               uint64_t *rows_found)
{
    sqlite3_stmt *msg = NULL, *row = NULL;
    uint64_t losses = 0;
    char hex[2 * CASENET_MESSAGE_ID_BYTES + 1];
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM messages WHERE message_id = ?1", -1, &msg,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM inbox WHERE recipient = ?1 AND message_id = ?2"
                           " AND kind <> ?3",
                           -1, &row, NULL) != SQLITE_OK)
        die("prepare");
    *stored = 0;
    *rows_found = 0;
    for (size_t i = 0; i < n; i++) {
        struct attempt *a = &all[i];
        tl_hex(a->id, sizeof a->id, hex);
        sqlite3_reset(msg);
        sqlite3_bind_blob(msg, 1, a->id, sizeof a->id, SQLITE_STATIC);
        if (sqlite3_step(msg) != SQLITE_ROW)
            die("query messages");
        bool is_stored = sqlite3_column_int(msg, 0) == 1;
        *stored += is_stored;
        unsigned seen = 0;
        bool dup = false;
        for (int j = 0; j < N_RCPTS; j++) {
            sqlite3_reset(row);
            sqlite3_bind_text(row, 1, rcpt_ids[j], -1, SQLITE_STATIC);
            sqlite3_bind_blob(row, 2, a->id, sizeof a->id, SQLITE_STATIC);
            sqlite3_bind_int(row, 3, CASENET_KIND_RECEIPT);
            if (sqlite3_step(row) != SQLITE_ROW)
                die("query inbox");
            int k = sqlite3_column_int(row, 0);
            *rows_found += (uint64_t)k;
            if (k > 1)
                dup = true;
            if (k > 0)
                seen |= 1u << j;
        }
        if (a->receipted && !is_stored) {
            losses++;
            fail("receipted message %s is not stored", hex);
        }
        if (dup)
            fail("message %s is twice in an inbox", hex);
        if (seen & ~a->mask)
            fail("message %s is in an inbox that is not a recipient's", hex);
        if (is_stored && (seen & a->mask) != a->mask) {
            if (a->receipted)
                losses++;
            fail("stored message %s is missing from a recipient's inbox", hex);
        }
        if (!is_stored && seen)
            fail("message %s has inbox rows but is not stored", hex);
    }
    sqlite3_finalize(msg);
    sqlite3_finalize(row);
    return losses;
}

/* Every stored message was attempted. */
static void check_no_strangers(sqlite3 *db, struct attempt *all, size_t n)
{
    sqlite3_stmt *st = NULL;
    char hex[2 * CASENET_MESSAGE_ID_BYTES + 1];
    if (sqlite3_prepare_v2(db, "SELECT message_id FROM messages", -1, &st, NULL) != SQLITE_OK)
        die("prepare");
    while (sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *id = sqlite3_column_blob(st, 0);
        if (!id || sqlite3_column_bytes(st, 0) != CASENET_MESSAGE_ID_BYTES) {
            fail("a stored message id is malformed");
            continue;
        }
        if (!find(all, n, id)) {
            tl_hex(id, CASENET_MESSAGE_ID_BYTES, hex);
            fail("stored message %s was never submitted", hex);
        }
    }
    sqlite3_finalize(st);
}

/* Writes the audit table as an export file and runs the verifier on it. */
static void check_audit_log(sqlite3 *db, tn_network *tn, uint64_t *events)
{
    int64_t count = scalar(db, "SELECT count(*) FROM audit");
    int64_t min = scalar(db, "SELECT COALESCE(min(idx), 0) FROM audit");
    int64_t max = scalar(db, "SELECT COALESCE(max(idx), -1) FROM audit");
    *events = (uint64_t)count;
    if (min != 0 || max + 1 != count)
        fail("audit indexes are not dense from 0");
    casenet_member b;
    if (casenet_directory_broker(tn->net->dir, &b) != CASENET_OK || !b.sign_pk)
        die("directory broker");
    struct auditv_export_header h = {.from_index = 0};
    snprintf(h.network, sizeof h.network, "%s", NETWORK_NAME);
    snprintf(h.broker_id, sizeof h.broker_id, "%s", TN_BROKER_ID);
    memcpy(h.broker_sign_pk, b.sign_pk, sizeof h.broker_sign_pk);
    FILE *f = tmpfile();
    sqlite3_stmt *st = NULL;
    if (!f || auditv_export_write_header(f, &h) != CASENET_OK ||
        sqlite3_prepare_v2(db, "SELECT event FROM audit ORDER BY idx", -1, &st, NULL) != SQLITE_OK)
        die("export");
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (auditv_export_write_event(f, sqlite3_column_blob(st, 0),
                                      (size_t)sqlite3_column_bytes(st, 0)) != CASENET_OK)
            die("export event");
    }
    sqlite3_finalize(st);
    rewind(f);
    char origin[CKPT_ORIGIN_MAX + 1];
    if (ckpt_origin(NETWORK_NAME, origin) != CASENET_OK)
        die("origin");
    struct auditv_config cfg = {.origin = origin, .key_name = TN_BROKER_ID, .sign_pk = b.sign_pk};
    struct auditv_failure why = {0};
    if (auditv_verify_file(f, &cfg, NULL, NULL, &why) != CASENET_OK)
        fail("the audit log does not verify: %s", why.reason);
    fclose(f);
}

int main(int argc, char **argv)
{
    int cycles = 10, n_senders = 4;
    unsigned seed = (unsigned)cn_now_ms();
    static const struct option opts[] = {
        {"cycles", required_argument, NULL, 'c'},
        {"senders", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'c')
            cycles = atoi(optarg);
        else if (o == 'k')
            n_senders = atoi(optarg);
        else if (o == 's')
            seed = (unsigned)strtoul(optarg, NULL, 10);
        else {
            fprintf(stderr, "usage: crash_test [--cycles N] [--senders K] [--seed S]\n");
            return 2;
        }
    }
    if (cycles < 0 || n_senders < 1 || n_senders > MAX_SENDERS)
        die("--cycles >= 0, --senders 1..32");
    if (casenet_init() != CASENET_OK)
        die("casenet_init");
    fprintf(stderr, "crash_test: %d cycles, %d senders, seed %u\n", cycles, n_senders, seed);

    const char *specs[MAX_SENDERS + N_RCPTS];
    static char names[MAX_SENDERS][48];
    for (int i = 0; i < n_senders; i++) {
        snprintf(names[i], sizeof names[i], "vn.sender%d:intake", i + 1);
        specs[i] = names[i];
    }
    for (int i = 0; i < N_RCPTS; i++)
        specs[n_senders + i] = rcpt_specs[i];
    tn_network *tn = tn_new(specs, (size_t)n_senders + N_RCPTS);
    /* Senders submit as fast as they can: no per-member limits here. */
    tn->config_path = tl_path(tn->root, "casenetd.ini");
    const char *ini =
        "[limits]\nsubmit_rate = 0\nmax_inbox_backlog = 4000000000\nmax_pair_backlog = 0\n";
    tl_write_file(tn->config_path, ini, strlen(ini), 0644);
    tn_start(tn);

    atomic_bool stop = false;
    struct sender *s = calloc((size_t)n_senders, sizeof *s);
    if (!s)
        die("out of memory");
    for (int i = 0; i < n_senders; i++) {
        s[i].tn = tn;
        snprintf(s[i].id, sizeof s[i].id, "vn.sender%d", i + 1);
        s[i].seed = seed + 7919u * (unsigned)(i + 1);
        s[i].stop = &stop;
        if (pthread_create(&s[i].th, NULL, sender_main, &s[i]) != 0)
            die("pthread_create");
    }
    int64_t t0 = cn_mono_ms();
    for (int c = 0; c < cycles; c++) {
        int ms = KILL_MIN_MS + (int)(rand_r(&seed) % (KILL_MAX_MS - KILL_MIN_MS + 1));
        usleep((useconds_t)ms * 1000);
        tn_kill(tn);
        tn_restart(tn);
        if ((c + 1) % 20 == 0)
            fprintf(stderr, "crash_test: %d/%d cycles\n", c + 1, cycles);
    }
    usleep(300 * 1000); /* some traffic after the last restart */
    atomic_store(&stop, true);
    size_t total = 0;
    uint64_t timeouts = 0, errors = 0;
    for (int i = 0; i < n_senders; i++) {
        pthread_join(s[i].th, NULL);
        total += s[i].n;
        timeouts += s[i].errors[0];
        errors += s[i].errors[1];
    }
    int64_t elapsed = cn_mono_ms() - t0;
    if (tn_stop(tn) != 0)
        fail("casenetd did not stop cleanly");

    struct attempt *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    uint64_t receipts = 0;
    for (int i = 0; i < n_senders; i++) {
        for (size_t j = 0; j < s[i].n; j++) {
            all[k++] = s[i].a[j];
            receipts += s[i].a[j].receipted;
        }
        free(s[i].a);
    }
    free(s);
    qsort(all, total, sizeof *all, cmp_attempt);
    for (size_t i = 1; i < total; i++)
        if (cmp_attempt(&all[i - 1], &all[i]) == 0)
            die("two attempts drew the same message id");

    char *path = tl_path(tn->data_dir, "casenet.db");
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die("open the database");
    sqlite3_stmt *ic = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &ic, NULL) != SQLITE_OK ||
        sqlite3_step(ic) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(ic, 0), "ok") != 0)
        fail("PRAGMA integrity_check is not ok");
    sqlite3_finalize(ic);
    uint64_t stored = 0, rows_found = 0;
    uint64_t losses = check_messages(db, all, total, &stored, &rows_found);
    /* Every message row of every inbox was one of those found above. */
    if (scalar(db, "SELECT count(*) FROM inbox WHERE kind <> 20") != (int64_t)rows_found)
        fail("an inbox holds a row that no sender submitted");
    check_no_strangers(db, all, total);
    if (scalar(db, "SELECT count(*) FROM inbox i WHERE i.kind <> 20 AND NOT EXISTS"
                   " (SELECT 1 FROM messages m WHERE m.id = i.msg"
                   " AND m.message_id = i.message_id)") != 0)
        fail("an inbox row has no stored message");
    if (scalar(db, "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM audit a"
                   " WHERE a.idx = m.audit_index AND a.kind = 1)") != 0)
        fail("a stored message has no SUBMITTED audit event");
    int64_t submitted = scalar(db, "SELECT count(*) FROM audit WHERE kind = 1");
    if ((uint64_t)submitted != stored ||
        scalar(db, "SELECT count(*) FROM messages") != (int64_t)stored)
        fail("SUBMITTED events, stored messages and attempts disagree");
    int64_t starts = scalar(db, "SELECT count(*) FROM audit WHERE kind = 11");
    uint64_t events = 0;
    check_audit_log(db, tn, &events);
    sqlite3_close(db);
    free(path);
    free(all);

    printf("crash_test: cycles %d, senders %d, %.1f s: messages attempted %zu, receipts %llu, "
           "stored %llu, losses %llu; submit timeouts %llu, other errors %llu; audit events "
           "%llu (broker starts %lld)\n",
           cycles, n_senders, elapsed / 1000.0, total, (unsigned long long)receipts,
           (unsigned long long)stored, (unsigned long long)losses, (unsigned long long)timeouts,
           (unsigned long long)errors, (unsigned long long)events, (long long)starts);
    if (failures) {
        setenv("CASENET_KEEP_TMP", "1", 1);
        fprintf(stderr, "crash_test: %d check(s) failed; data kept in %s\n", failures, tn->root);
    }
    if (receipts == 0)
        fail("no message got a receipt: the test proved nothing");
    tn_free(tn);
    printf("crash_test: %d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}
