/*
 * main.c - casenet-bench: options, the run (network, ceilings, casenetd,
 * optional store fill, load), and the report: a table, and with --json one
 * JSON object on the last line.
 */
#include "bench.h"

#include "util.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

static const char usage[] =
    "usage: casenet-bench [options]\n"
    "\n"
    "Starts casenetd on loopback with a temporary data directory (or uses --broker),\n"
    "creates N members, pre-seals envelopes of S bytes to random recipients and\n"
    "offers them from C connections; measures submit->receipt and submit->notice\n"
    "latency, receipts per second, what casenetd writes per receipt (bytes; commits\n"
    "and log pages per commit, from its --verbose stats lines; on PostgreSQL the\n"
    "server's WAL bytes, writes and CPU), and the machine's Ed25519 and fsync\n"
    "ceilings.\n"
    "\n"
    "  --duration SEC      measured seconds (default 10)\n"
    "  --warmup SEC        load before measuring (default 1)\n"
    "  --rate R            offer R msg/s in total on a fixed schedule; default: as\n"
    "                      fast as the broker confirms (--inflight per connection)\n"
    "  --connections C     sending connections (default 8)\n"
    "  --inflight K        Submits in flight per connection when not --rate (32)\n"
    "  --members N         members of the network (default 24)\n"
    "  --size S            envelope bytes (default 2048)\n"
    "  --recipients R      recipients per message (default 1)\n"
    "  --pool P            envelopes to pre-seal (default: enough for the run)\n"
    "  --batch-max B       casenetd's [limits] batch_max (default: its own)\n"
    "  --limit 'K = V'     another line for casenetd's [limits] (repeatable), e.g.\n"
    "                      --limit 'verify_threads = 0'\n"
    "  --scale N           first store N messages queued for one member, then\n"
    "                      measure casenetd start-up and ListInbox pages of 100\n"
    "  --no-load           with --scale: stop after the scale figures\n"
    "  --no-ceilings       skip the verify/sign/fsync ceilings\n"
    "  --network DIR       keep the network (keys, directory, data) in DIR; created\n"
    "                      when absent, reused when present\n"
    "  --init              with --network: create the network, print the casenetd\n"
    "                      command line for it and exit\n"
    "  --broker ENDPOINT   use a running casenetd of the --network DIR network\n"
    "  --broker-pid PID    with --broker: sample this process (RSS, CPU, bytes written;\n"
    "                      commits when it runs with --verbose 2>>DIR/casenetd.log)\n"
    "  --store SPEC        the store of the casenetd it starts: sqlite:DIR (a directory\n"
    "                      without a store yet; default: the data directory) or\n"
    "                      postgresql://... (a server where the URI's user may create\n"
    "                      databases: each run creates its own empty database\n"
    "                      casenet_bench_PID_TIME and drops it at the end)\n"
    "  --casenetd PATH     casenetd to start (default: beside this program, or PATH)\n"
    "  --workdir DIR       where the temporary directory goes (default $TMPDIR or /tmp)\n"
    "  --keep              keep the temporary directory (and the run's database)\n"
    "  --json              print one JSON object on the last line\n"
    "  --help\n";

struct report {
    const struct bench_opts *o;
    struct ceilings ceil;
    bool have_ceil, have_load, have_scale;
    struct load_result load;
    struct scale_result scale;
    char cpu[128];
    char fs[32];
    double loadavg[3];
    long nproc;
    uint32_t page_size; /* of the broker's database, 0 = unknown */
    bool have_ckpt;     /* PostgreSQL: the checkpoint after the run, measured */
    uint64_t ckpt_bytes;
};

/* The store of the casenetd this run starts (o->store): the SQLite
 * directory, which must hold no store yet, or the run's own PostgreSQL
 * database, created here (bench_pg_open). */
static int open_store(struct bench_opts *o, const struct bench_net *net)
{
    if (!o->store) {
        o->sqlite_dir = net->data_dir;
        return CASENET_OK;
    }
    if (bench_store_is_pg(o->store)) {
        int rc = bench_pg_open(o->store, &o->pg);
        if (rc == CASENET_OK)
            o->broker_store = bench_pg_spec(o->pg);
        return rc;
    }
    o->sqlite_dir = o->store + strlen("sqlite:");
    o->broker_store = o->store;
    if (mkdir(o->sqlite_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "casenet-bench: cannot create %s: %s\n", o->sqlite_dir, strerror(errno));
        return CASENET_EIO;
    }
    char *db = NULL;
    if (asprintf(&db, "%s/casenet.db", o->sqlite_dir) < 0)
        return CASENET_ENOMEM;
    bool exists = access(db, F_OK) == 0;
    free(db);
    if (exists) {
        fprintf(stderr,
                "casenet-bench: %s holds a store already (casenet.db); a run starts from an "
                "empty one: choose another directory or remove that store\n",
                o->sqlite_dir);
        return CASENET_EINVAL;
    }
    return CASENET_OK;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(path);
}

static void machine(struct report *r, const char *dir)
{
    r->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(r->cpu, sizeof r->cpu, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v) {
                v += strspn(v + 1, " \t") + 1;
                v[strcspn(v, "\n")] = '\0';
                snprintf(r->cpu, sizeof r->cpu, "%s", v);
            }
            break;
        }
    }
    if (f)
        fclose(f);
    if (getloadavg(r->loadavg, 3) != 3)
        memset(r->loadavg, 0, sizeof r->loadavg);
    struct statfs sf;
    snprintf(r->fs, sizeof r->fs, "unknown");
    if (statfs(dir, &sf) == 0) {
        switch ((unsigned long)sf.f_type) {
        case 0xEF53:
            snprintf(r->fs, sizeof r->fs, "ext4");
            break;
        case 0x58465342:
            snprintf(r->fs, sizeof r->fs, "xfs");
            break;
        case 0x9123683E:
            snprintf(r->fs, sizeof r->fs, "btrfs");
            break;
        case 0x01021994:
            snprintf(r->fs, sizeof r->fs, "tmpfs");
            break;
        case 0x794c7630:
            snprintf(r->fs, sizeof r->fs, "overlayfs");
            break;
        default:
            snprintf(r->fs, sizeof r->fs, "0x%lx", (unsigned long)sf.f_type);
        }
    }
}

/* Per-receipt and per-commit write figures (-1 when not measured). */
struct writes {
    double write_bytes_per_msg, wchar_per_msg, commits_per_s, pages_per_commit, log_bytes_per_msg,
        msgs_per_commit;
};

static struct writes writes_of(const struct report *r)
{
    const struct load_result *l = &r->load;
    struct writes w = {-1, -1, -1, -1, -1, -1};
    double n = (double)l->window_receipts;
    if (l->have_io && n > 0) {
        w.write_bytes_per_msg = (double)l->io.write_bytes / n;
        w.wchar_per_msg = (double)l->io.wchar / n;
    }
    const struct broker_stats *s = &l->stats;
    if (l->have_stats && s->span_s > 0 && s->commits > 0) {
        w.commits_per_s = (double)s->commits / s->span_s;
        w.pages_per_commit = (double)s->log_pages / (double)s->commits;
        w.msgs_per_commit = (double)s->requests / (double)s->commits;
        if (r->page_size && s->requests)
            w.log_bytes_per_msg =
                (double)s->log_pages * (r->page_size + 24.0) / (double)s->requests;
    }
    return w;
}

/* On PostgreSQL: what the server wrote per receipt (its WAL; its processes'
 * write_bytes) and its CPU per receipt; -1 when not measured. */
struct server_writes {
    double wal_bytes_per_msg, write_bytes_per_msg, cpu_us_per_msg, ckpt_bytes_per_msg;
};

static struct server_writes server_writes_of(const struct report *r)
{
    const struct load_result *l = &r->load;
    struct server_writes w = {-1, -1, -1, -1};
    double n = (double)l->window_receipts;
    if (l->have_pg && n > 0)
        w.wal_bytes_per_msg = (double)l->pg_wal_bytes / n;
    if (l->have_pg_io && n > 0) {
        w.write_bytes_per_msg = (double)l->pg_write_bytes / n;
        w.cpu_us_per_msg = l->pg_cpu_s * 1e6 / n;
    }
    if (r->have_ckpt && l->receipts) /* of every page the run dirtied: warm-up too */
        w.ckpt_bytes_per_msg = (double)r->ckpt_bytes / (double)l->receipts;
    return w;
}

static void print_server_writes(const struct report *r)
{
    struct server_writes w = server_writes_of(r);
    if (w.wal_bytes_per_msg >= 0)
        printf("server WAL   %.1f KB per receipt (pg_current_wal_lsn over the window)\n",
               w.wal_bytes_per_msg / 1024);
    else
        printf("server WAL   not measured\n");
    if (w.write_bytes_per_msg >= 0)
        printf("server       %.1f KB per receipt to storage (write_bytes of its processes), cpu "
               "%.0f us/receipt\n",
               w.write_bytes_per_msg / 1024, w.cpu_us_per_msg);
    else
        printf("server       writes and cpu not measured (its processes are not on this machine "
               "or not readable)\n");
    if (w.ckpt_bytes_per_msg >= 0)
        printf(
            "checkpoint   %.1f KB per receipt of the run (CHECKPOINT after it: the data pages it "
            "dirtied)\n",
            w.ckpt_bytes_per_msg / 1024);
}

static void print_writes(const struct report *r)
{
    struct writes w = writes_of(r);
    if (r->o->pg) {
        if (w.write_bytes_per_msg >= 0)
            printf("writes       casenetd %.1f KB per receipt (its log lines; the store's writes "
                   "are the server's)\n",
                   w.write_bytes_per_msg / 1024);
        print_server_writes(r);
        return;
    }
    if (w.write_bytes_per_msg >= 0)
        printf("writes       %.1f KB per receipt to storage (write_bytes), %.1f KB passed to "
               "write (wchar)\n",
               w.write_bytes_per_msg / 1024, w.wchar_per_msg / 1024);
    else
        printf("writes       not measured (no readable /proc/PID/io of casenetd)\n");
    if (w.commits_per_s >= 0)
        printf("commits      %.0f/s, %.1f requests and %.1f log pages each; the log: %.1f KB per "
               "request (%u B pages)\n",
               w.commits_per_s, w.msgs_per_commit, w.pages_per_commit, w.log_bytes_per_msg / 1024,
               r->page_size);
    else
        printf("commits      not measured (no casenetd --verbose stats lines in the log)\n");
}

/* A figure, or null when it is negative (not measured). */
static void json_num(const char *key, double v, int decimals)
{
    if (v < 0)
        printf(",\"%s\":null", key);
    else
        printf(",\"%s\":%.*f", key, decimals, v);
}

static void print_table(const struct report *r)
{
    const struct bench_opts *o = r->o;
    printf("machine      %ld cpu, %s, %s, load average %.2f %.2f %.2f\n", r->nproc, r->cpu, r->fs,
           r->loadavg[0], r->loadavg[1], r->loadavg[2]);
    if (r->o->pg)
        printf("store        PostgreSQL, the run's database %s\n", bench_pg_database(r->o->pg));
    else if (r->o->sqlite_dir)
        printf("store        SQLite in %s\n", r->o->sqlite_dir);
    if (r->have_ceil)
        printf("ceilings     Ed25519 verify %.0f/s, sign %.0f/s (one core); fdatasync %.0f/s\n",
               r->ceil.verify_per_s, r->ceil.sign_per_s, r->ceil.fsync_per_s);
    if (r->have_scale) {
        const struct scale_result *s = &r->scale;
        printf("store        %llu messages stored in %.1f s (%.0f/s), %.0f MB on disk\n",
               (unsigned long long)s->stored, s->fill_s, s->fill_s > 0 ? s->stored / s->fill_s : 0,
               s->db_bytes / 1e6);
        printf("start-up     %.0f ms, %.0f ms, %.0f ms (spawn -> first Hello answered)\n",
               s->startup_ms[0], s->startup_ms[1], s->startup_ms[2]);
        printf("list 100     first page p50 %.2f ms p99 %.2f ms; deep (queued, cursor %llu) "
               "p50 %.2f ms p99 %.2f ms; Hello p50 %.2f ms; in-process p50 %.3f ms max %.3f "
               "ms\n",
               s->list_first_p50_ms, s->list_first_p99_ms, (unsigned long long)(s->stored / 2),
               s->list_deep_p50_ms, s->list_deep_p99_ms, s->hello_p50_ms, s->store_list_p50_ms,
               s->store_list_max_ms);
        printf("rss          %.1f MB after start, %.1f MB after listing\n",
               s->rss_after_start_kb / 1024.0, s->rss_after_list_kb / 1024.0);
    }
    if (r->have_load) {
        const struct load_result *l = &r->load;
        if (o->rate > 0)
            printf("load         %zu connections, %.0f msg/s offered, %zu B envelopes, %zu "
                   "members, %.1f s\n",
                   o->connections, o->rate, l->envelope_bytes, o->members, l->elapsed_s);
        else
            printf("load         %zu connections x %zu in flight, %zu B envelopes, %zu members, "
                   "%.1f s\n",
                   o->connections, o->inflight, l->envelope_bytes, o->members, l->elapsed_s);
        printf("throughput   %.0f receipts/s (%llu sent, %llu receipts, %llu errors, %llu "
               "unanswered)%s\n",
               l->msgs_per_s, (unsigned long long)l->sent, (unsigned long long)l->receipts,
               (unsigned long long)l->errors, (unsigned long long)l->late,
               l->pool_exhausted ? " [pool exhausted: measured until then]" : "");
        printf("receipt      p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n", l->p50_ms,
               l->p99_ms, l->p999_ms, l->max_ms);
        printf("notice       p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms (%llu notices)\n",
               l->notice_p50_ms, l->notice_p99_ms, l->notice_p999_ms,
               (unsigned long long)l->notices);
        if (o->rate > 0)
            printf("schedule     sends p50 %.3f ms  p99 %.3f ms behind schedule (latencies count "
                   "from the schedule)\n",
                   l->send_late_p50_ms, l->send_late_p99_ms);
        printf("receipts     %llu verified (1 in 64), %llu failed\n",
               (unsigned long long)l->receipts_verified,
               (unsigned long long)l->receipt_verify_failures);
        if (r->have_ceil)
            printf("ratios       %.2f x verify/s (one core), %.2f x fsync/s\n",
                   l->msgs_per_s / r->ceil.verify_per_s, l->msgs_per_s / r->ceil.fsync_per_s);
        if (l->rss_max_kb)
            printf("broker       rss %.1f MB start, %.1f MB max, %.1f MB end; cpu %.1f s (%.0f "
                   "us/receipt), loop thread %.1f s (%.0f us/receipt)\n",
                   l->rss_start_kb / 1024.0, l->rss_max_kb / 1024.0, l->rss_end_kb / 1024.0,
                   l->broker_cpu_s, l->receipts ? l->broker_cpu_s * 1e6 / (double)l->receipts : 0,
                   l->broker_loop_cpu_s,
                   l->receipts ? l->broker_loop_cpu_s * 1e6 / (double)l->receipts : 0);
        print_writes(r);
        printf("bench        cpu %.1f s during the run; sealing %.1f s before it (not measured)\n",
               l->bench_cpu_s, l->seal_s);
    }
}

static void print_json(const struct report *r)
{
    const struct bench_opts *o = r->o;
    const struct load_result *l = &r->load;
    printf("{\"msgs_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
           "\"max_ms\":%.3f,\"notice_p50_ms\":%.3f,\"notice_p99_ms\":%.3f,"
           "\"notice_p999_ms\":%.3f,\"send_late_p50_ms\":%.3f,\"send_late_p99_ms\":%.3f",
           l->msgs_per_s, l->p50_ms, l->p99_ms, l->p999_ms, l->max_ms, l->notice_p50_ms,
           l->notice_p99_ms, l->notice_p999_ms, l->send_late_p50_ms, l->send_late_p99_ms);
    printf(",\"verify_per_s_one_core\":%.0f,\"sign_per_s_one_core\":%.0f,\"fsync_per_s\":%.0f",
           r->ceil.verify_per_s, r->ceil.sign_per_s, r->ceil.fsync_per_s);
    if (r->have_ceil && r->have_load)
        printf(",\"ratio_verify\":%.3f,\"ratio_fsync\":%.2f,\"target_msgs_per_s\":%.0f",
               l->msgs_per_s / r->ceil.verify_per_s, l->msgs_per_s / r->ceil.fsync_per_s,
               r->ceil.verify_per_s);
    printf(",\"mode\":\"%s\",\"rate\":%.0f,\"connections\":%zu,\"inflight\":%zu,"
           "\"members\":%zu,\"size\":%zu,\"envelope_bytes\":%zu,\"recipients\":%zu,"
           "\"duration_s\":%.2f,\"sent\":%llu,\"receipts\":%llu,\"errors\":%llu,"
           "\"unanswered\":%llu,\"notices\":%llu,\"pool_exhausted\":%s,"
           "\"receipts_verified\":%llu,\"receipt_verify_failures\":%llu",
           o->rate > 0 ? "rate" : "max", o->rate, o->connections, o->inflight, o->members, o->size,
           l->envelope_bytes, o->recipients, l->elapsed_s, (unsigned long long)l->sent,
           (unsigned long long)l->receipts, (unsigned long long)l->errors,
           (unsigned long long)l->late, (unsigned long long)l->notices,
           l->pool_exhausted ? "true" : "false", (unsigned long long)l->receipts_verified,
           (unsigned long long)l->receipt_verify_failures);
    printf(",\"rss_start_kb\":%llu,\"rss_max_kb\":%llu,\"rss_end_kb\":%llu,\"rss_kb\":[%s],"
           "\"broker_cpu_s\":%.2f,\"broker_loop_cpu_s\":%.2f,\"bench_cpu_s\":%.2f",
           (unsigned long long)l->rss_start_kb, (unsigned long long)l->rss_max_kb,
           (unsigned long long)l->rss_end_kb, l->rss_series ? l->rss_series : "", l->broker_cpu_s,
           l->broker_loop_cpu_s, l->bench_cpu_s);
    struct writes w = writes_of(r);
    json_num("broker_write_bytes_per_msg", w.write_bytes_per_msg, 0);
    json_num("broker_wchar_per_msg", w.wchar_per_msg, 0);
    json_num("commits_per_s", w.commits_per_s, 1);
    json_num("pages_per_commit", w.pages_per_commit, 2);
    json_num("msgs_per_commit", w.msgs_per_commit, 2);
    json_num("log_bytes_per_msg", w.log_bytes_per_msg, 0);
    printf(",\"page_size\":%u,\"store\":\"%s\"", r->page_size, o->pg ? "postgresql" : "sqlite");
    struct server_writes sw = server_writes_of(r);
    json_num("pg_wal_bytes_per_msg", sw.wal_bytes_per_msg, 0);
    json_num("pg_write_bytes_per_msg", sw.write_bytes_per_msg, 0);
    json_num("pg_cpu_us_per_msg", sw.cpu_us_per_msg, 0);
    json_num("pg_checkpoint_bytes_per_msg", sw.ckpt_bytes_per_msg, 0);
    if (r->have_scale) {
        const struct scale_result *s = &r->scale;
        printf(",\"scale\":{\"stored\":%llu,\"fill_s\":%.1f,\"db_bytes\":%llu,"
               "\"startup_ms\":[%.1f,%.1f,%.1f],\"list_first_p50_ms\":%.3f,"
               "\"list_first_p99_ms\":%.3f,\"list_deep_p50_ms\":%.3f,\"list_deep_p99_ms\":%.3f,"
               "\"hello_p50_ms\":%.3f,\"store_list_p50_ms\":%.4f,\"store_list_max_ms\":%.4f,"
               "\"rss_after_start_kb\":%llu,\"rss_after_list_kb\":%llu}",
               (unsigned long long)s->stored, s->fill_s, (unsigned long long)s->db_bytes,
               s->startup_ms[0], s->startup_ms[1], s->startup_ms[2], s->list_first_p50_ms,
               s->list_first_p99_ms, s->list_deep_p50_ms, s->list_deep_p99_ms, s->hello_p50_ms,
               s->store_list_p50_ms, s->store_list_max_ms,
               (unsigned long long)s->rss_after_start_kb, (unsigned long long)s->rss_after_list_kb);
    }
    printf(",\"machine\":{\"nproc\":%ld,\"cpu\":\"", r->nproc);
    for (const char *c = r->cpu; *c; c++)
        if (*c != '"' && *c != '\\' && (unsigned char)*c >= 0x20)
            putchar(*c);
    printf("\",\"fs\":\"%s\",\"loadavg\":[%.2f,%.2f,%.2f]}}\n", r->fs, r->loadavg[0], r->loadavg[1],
           r->loadavg[2]);
}

static bool parse_size(const char *v, size_t min, size_t max, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-' || n < min || n > max)
        return false;
    *out = (size_t)n;
    return true;
}

static bool parse_double(const char *v, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= min && d <= max))
        return false;
    *out = d;
    return true;
}

int main(int argc, char **argv)
{
    struct bench_opts o = {.members = 24,
                           .size = 2048,
                           .connections = 8,
                           .inflight = 32,
                           .duration = 10,
                           .warmup = 1,
                           .recipients = 1};
    bool init_only = false;
    enum {
        O_DURATION = 256,
        O_WARMUP,
        O_RATE,
        O_CONNECTIONS,
        O_INFLIGHT,
        O_MEMBERS,
        O_SIZE,
        O_RECIPIENTS,
        O_POOL,
        O_BATCH,
        O_LIMIT,
        O_SCALE,
        O_NOLOAD,
        O_NOCEIL,
        O_NETWORK,
        O_INIT,
        O_BROKER,
        O_BROKER_PID,
        O_CASENETD,
        O_STORE,
        O_WORKDIR,
        O_KEEP,
        O_JSON,
        O_HELP
    };
    static const struct option opts[] = {
        {"duration", required_argument, NULL, O_DURATION},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"rate", required_argument, NULL, O_RATE},
        {"connections", required_argument, NULL, O_CONNECTIONS},
        {"inflight", required_argument, NULL, O_INFLIGHT},
        {"members", required_argument, NULL, O_MEMBERS},
        {"size", required_argument, NULL, O_SIZE},
        {"recipients", required_argument, NULL, O_RECIPIENTS},
        {"pool", required_argument, NULL, O_POOL},
        {"batch-max", required_argument, NULL, O_BATCH},
        {"limit", required_argument, NULL, O_LIMIT},
        {"scale", required_argument, NULL, O_SCALE},
        {"no-load", no_argument, NULL, O_NOLOAD},
        {"no-ceilings", no_argument, NULL, O_NOCEIL},
        {"network", required_argument, NULL, O_NETWORK},
        {"init", no_argument, NULL, O_INIT},
        {"broker", required_argument, NULL, O_BROKER},
        {"broker-pid", required_argument, NULL, O_BROKER_PID},
        {"casenetd", required_argument, NULL, O_CASENETD},
        {"store", required_argument, NULL, O_STORE},
        {"workdir", required_argument, NULL, O_WORKDIR},
        {"keep", no_argument, NULL, O_KEEP},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    size_t tmp;
    int at = 0; /* the long option just parsed (opts[at]) */
    while ((c = getopt_long(argc, argv, "", opts, &at)) != -1) {
        bool ok = true;
        switch (c) {
        case O_DURATION:
            ok = parse_double(optarg, 0.1, 86400, &o.duration);
            break;
        case O_WARMUP:
            ok = parse_double(optarg, 0, 3600, &o.warmup);
            break;
        case O_RATE:
            ok = parse_double(optarg, 0, 1e7, &o.rate);
            break;
        case O_CONNECTIONS:
            ok = parse_size(optarg, 1, 1024, &o.connections);
            break;
        case O_INFLIGHT:
            ok = parse_size(optarg, 1, 100000, &o.inflight);
            break;
        case O_MEMBERS:
            ok = parse_size(optarg, 2, 10000, &o.members);
            break;
        case O_SIZE:
            ok = parse_size(optarg, 256, 64u * 1024u * 1024u, &o.size);
            break;
        case O_RECIPIENTS:
            ok = parse_size(optarg, 1, CASENET_MAX_RECIPIENTS, &o.recipients);
            break;
        case O_POOL:
            ok = parse_size(optarg, 1, 50000000, &o.pool);
            break;
        case O_BATCH:
            ok = parse_size(optarg, 1, 65536, &o.batch_max);
            break;
        case O_LIMIT:
            ok = o.n_limits < sizeof o.limits / sizeof o.limits[0] && strchr(optarg, '=') &&
                 !strchr(optarg, '\n');
            if (ok)
                o.limits[o.n_limits++] = optarg;
            break;
        case O_SCALE:
            ok = parse_size(optarg, 1, 1000000000, &tmp);
            o.scale = tmp;
            break;
        case O_NOLOAD:
            o.no_load = true;
            break;
        case O_NOCEIL:
            o.no_ceilings = true;
            break;
        case O_NETWORK:
            o.network_dir = optarg;
            break;
        case O_INIT:
            init_only = true;
            break;
        case O_BROKER:
            o.broker = optarg;
            ok = cn_endpoint_valid(optarg, false); /* tcp://HOST:PORT or ipc://PATH */
            break;
        case O_BROKER_PID:
            ok = parse_size(optarg, 1, 1u << 30, &tmp);
            o.broker_pid = (pid_t)tmp;
            break;
        case O_CASENETD:
            o.casenetd = optarg;
            break;
        case O_STORE:
            o.store = optarg;
            ok = bench_store_is_pg(optarg) || (strncmp(optarg, "sqlite:", 7) == 0 && optarg[7]);
            break;
        case O_WORKDIR:
            o.workdir = optarg;
            break;
        case O_KEEP:
            o.keep = true;
            break;
        case O_JSON:
            o.json = true;
            break;
        case O_HELP:
            fputs(usage, stdout);
            return 0;
        default: /* getopt_long said what */
            fputs("see 'casenet-bench --help'\n", stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "casenet-bench: bad value for --%s: '%s' (see --help)\n", opts[at].name,
                    optarg);
            return 2;
        }
    }
    if (optind < argc || (o.broker && !o.network_dir) || (init_only && !o.network_dir) ||
        (o.broker && o.scale) || (o.store && (o.broker || init_only))) {
        fprintf(stderr, "casenet-bench: %s; see 'casenet-bench --help'\n",
                optind < argc ? "unexpected argument"
                : o.store     ? "--store is the store of the casenetd casenet-bench starts: drop "
                                "--broker and --init (or give that casenetd its store)"
                : o.scale     ? "--scale starts its own casenetd: drop --broker"
                              : "--broker and --init need --network DIR");
        return 2;
    }
    if (casenet_init() != CASENET_OK) {
        fprintf(stderr, "casenet-bench: libsodium failed to initialise\n");
        return 1;
    }

    int exit_code = 1;
    char *tmpdir = NULL, *casenetd = NULL;
    struct bench_net *net = NULL;
    struct bench_broker broker = {0};
    struct report r = {.o = &o};
    const char *dir = o.network_dir;
    if (!dir) {
        const char *base = o.workdir ? o.workdir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        if (asprintf(&tmpdir, "%s/casenet-bench.XXXXXX", base) < 0 || !mkdtemp(tmpdir)) {
            fprintf(stderr, "casenet-bench: cannot create a directory in %s: %s\n", base,
                    strerror(errno));
            free(tmpdir);
            return 1;
        }
        dir = tmpdir;
    }
    if (bench_net_open(dir, o.members, tmpdir != NULL, &net) != CASENET_OK)
        goto cleanup;
    o.members = net->n;
    if (!o.broker || init_only) {
        casenetd = bench_find_casenetd(o.casenetd);
        if (!casenetd) {
            fprintf(stderr, "casenet-bench: casenetd not found%s%s; use --casenetd PATH\n",
                    o.casenetd ? " at " : "", o.casenetd ? o.casenetd : "");
            goto cleanup;
        }
    }
    if (init_only) {
        printf("%s --data %s --listen tcp://127.0.0.1:7400 --key %s --directory %s "
               "--authority %s\n",
               casenetd, net->data_dir, net->broker_key_path, net->directory_path,
               net->authority_path);
        exit_code = 0;
        goto cleanup;
    }
    if (open_store(&o, net) != CASENET_OK) /* with --broker: no --store, the network's data */
        goto cleanup;
    machine(&r, dir);
    if (!o.no_ceilings) {
        if (bench_ceilings(dir, &r.ceil) != CASENET_OK)
            goto cleanup;
        r.have_ceil = true;
    }
    if (o.scale) {
        if (!o.json)
            fprintf(stderr, "casenet-bench: storing %llu messages...\n",
                    (unsigned long long)o.scale);
        if (bench_fill(&o, net, o.scale, o.size, &r.scale) != CASENET_OK ||
            bench_scale_wire(&o, net, casenetd, &broker, &r.scale) != CASENET_OK)
            goto cleanup;
        r.have_scale = true;
        if (o.pg)
            r.scale.db_bytes = bench_pg_size(o.pg);
    } else if (!o.broker) {
        if (bench_broker_start(net, casenetd, &o, &broker) != CASENET_OK)
            goto cleanup;
    }
    if (!o.no_load) {
        const char *endpoint = o.broker ? o.broker : broker.endpoint;
        pid_t pid = o.broker ? o.broker_pid : broker.pid;
        if (bench_load(&o, net, endpoint, pid, &r.load) != CASENET_OK)
            goto cleanup;
        r.have_load = true;
        /* casenetd logs its stats every second: read after the window. */
        r.load.have_stats =
            bench_broker_stats(net->log_path, r.load.wall_t0_ms, r.load.wall_t1_ms, &r.load.stats);
        r.page_size = o.sqlite_dir ? bench_db_page_size(o.sqlite_dir) : 0;
        if (o.pg)
            r.have_ckpt = bench_pg_checkpoint(o.pg, &r.ckpt_bytes);
    }
    if (broker.pid && bench_broker_stop(&broker) != 0) {
        fprintf(stderr, "casenet-bench: casenetd exited with an error; see %s\n", net->log_path);
        goto cleanup;
    }
    print_table(&r);
    if (o.json)
        print_json(&r);
    fflush(stdout);
    exit_code = r.have_load && (r.load.errors || r.load.receipt_verify_failures) ? 3 : 0;
cleanup:
    if (broker.pid)
        (void)bench_broker_stop(&broker);
    bench_pg_close(o.pg, o.keep || exit_code != 0);
    if (exit_code != 0 && net)
        fprintf(stderr, "casenet-bench: files kept in %s (casenetd.log)\n", dir);
    else if (tmpdir && !o.keep)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (tmpdir)
        fprintf(stderr, "casenet-bench: files kept in %s\n", tmpdir);
    free(r.load.rss_series);
    bench_net_free(net);
    free(casenetd);
    free(tmpdir);
    return exit_code;
}
