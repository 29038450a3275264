/*
 * bench.h - casenet-bench, the load generator and measuring tool of casenet:
 * the network it builds (authority, broker, members, signed directory), the
 * casenetd it starts, the load it offers over pipelined CURVE DEALER
 * connections, the machine ceilings it measures and the store-scale checks.
 * Internal to the tool; every function reports failures on stderr and
 * returns a casenet_err.
 */
#ifndef CASENET_BENCH_H
#define CASENET_BENCH_H

#include "casenet.h"
#include "casenet.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_BROKER_ID     "bench.broker"
#define BENCH_MEMBER_FMT    "bench.m%03zu"
#define BENCH_DIR_VALIDITY  (30LL * 24 * 3600 * 1000)
#define BENCH_START_TIMEOUT 60000 /* ms for casenetd to answer its first Hello */

/* Everything the command line sets. */
struct bench_opts {
    size_t members;          /* N */
    size_t size;             /* S: target envelope bytes */
    size_t connections;      /* C */
    size_t inflight;         /* requests in flight per connection (fast mode) */
    double rate;             /* msg/s offered in total; 0 = as fast as confirmed */
    double duration;         /* measured seconds */
    double warmup;           /* seconds of load before measuring */
    size_t recipients;       /* per message */
    size_t pool;             /* envelopes to pre-build; 0 = estimated */
    const char *broker;      /* endpoint of a running broker, or NULL to start one */
    const char *network_dir; /* where the network files are (created if absent) */
    const char *casenetd;    /* path of casenetd, or NULL to search */
    const char *workdir;     /* base for the temporary directory */
    size_t batch_max;        /* casenetd [limits] batch_max; 0 = its default */
    const char *limits[16];  /* more "key = value" lines for casenetd's [limits] */
    size_t n_limits;
    pid_t broker_pid; /* with --broker: the process to sample (RSS, CPU) */
    uint64_t scale;   /* scale mode: messages to store before starting */
    bool json, keep, verbose, no_load, no_ceilings;

    const char *store; /* --store: sqlite:DIR or postgresql://...; NULL: the data directory */
    /* Set from store by main: the --store casenetd gets (NULL: none; on
     * PostgreSQL the run's database), the SQLite store's directory (NULL on
     * PostgreSQL) and the run's PostgreSQL database. */
    const char *broker_store;
    const char *sqlite_dir;
    struct bench_pg *pg;
};

/* ------------------------------------------------------------ network */

/* The members and broker of a bench network, their keys and the directory. */
struct bench_net {
    char *dir; /* the directory holding every file below */
    char *data_dir, *directory_path, *authority_path, *broker_key_path, *log_path, *config_path;
    size_t n;
    char **ids;
    casenet_keys **keys;
    casenet_directory *directory;
    uint8_t broker_curve_pk[CASENET_CURVE_KEY_BYTES];
    bool created_dir; /* dir was made by us (removed unless --keep) */
};

/* Creates a network of n members under dir (which must not hold one), or
 * loads the one already there (n is then what it holds). */
int bench_net_open(const char *dir, size_t n, bool created_dir, struct bench_net **out);
void bench_net_free(struct bench_net *net);

/* A casenetd child process on loopback. */
struct bench_broker {
    pid_t pid;
    char endpoint[64];
    double startup_ms; /* spawn -> first Hello answered */
};

/* Finds casenetd: opts path, next to this program (installed or in the build
 * tree), then PATH. Returns a malloc'd path or NULL. */
char *bench_find_casenetd(const char *given);
/* Writes net->config_path for this casenetd (batch_max and --limit lines;
 * per-member limits off when the broker knows them) and starts it on a free loopback port
 * (with --store o->broker_store when set); waits for a Hello answer. */
int bench_broker_start(const struct bench_net *net, const char *casenetd,
                       const struct bench_opts *o, struct bench_broker *out);
/* SIGTERM and wait. Returns the exit status (-1 when killed). */
int bench_broker_stop(struct bench_broker *b);

/* Opens a CURVE DEALER to endpoint as keys (void * is a ZeroMQ socket). */
void *bench_dealer(void *zctx, const char *endpoint, const uint8_t server_pk[32],
                   const casenet_keys *keys);
/* One request/response round trip on a DEALER (notices are skipped). Returns
 * the unpacked Response (free with casenet__v1__response__free_unpacked) or
 * NULL after timeout_ms. */
Casenet__V1__Response *bench_call(void *sock, Casenet__V1__Request *req, int timeout_ms);

/* ------------------------------------------------------------ measures */

/* Samples of a process: resident set size and CPU time (from /proc). */
struct proc_sample {
    uint64_t rss_kb;
    double cpu_s;      /* every thread */
    double loop_cpu_s; /* the main thread (casenetd's loop) */
};
bool bench_proc_sample(pid_t pid, struct proc_sample *out);

/* The bytes a process has caused to be written: write_bytes (to storage,
 * counted as its pages are dirtied) and wchar (passed to write calls) of
 * /proc/PID/io. False when unreadable (another user's process). */
struct proc_io {
    uint64_t write_bytes, wchar;
};
bool bench_proc_io(pid_t pid, struct proc_io *out);

/* casenetd's counts from its debug "stats" lines (logged every second with
 * --verbose): the first line at or after t0_ms and the last at or before
 * t1_ms (wall-clock ms), their difference and the time between them.
 * False when the log holds no such pair. */
struct broker_stats {
    double span_s;
    uint64_t requests, batches, commits, log_pages;
};
bool bench_broker_stats(const char *log_path, int64_t t0_ms, int64_t t1_ms,
                        struct broker_stats *out);
/* The page size of the SQLite database in data_dir (its header), or 0. */
uint32_t bench_db_page_size(const char *data_dir);

/* ------------------------------------------------------------ PostgreSQL */

/* True when spec names a PostgreSQL store (postgresql:// or postgres://). */
bool bench_store_is_pg(const char *spec);

/* A run on PostgreSQL: connects to the server uri names (through the URI's
 * own database) and creates the run's database there, empty, named
 * casenet_bench_PID_TIME (the URI's user needs CREATEDB). */
struct bench_pg;
int bench_pg_open(const char *uri, struct bench_pg **out);
/* The URI casenetd gets: uri with dbname= the run's database. */
const char *bench_pg_spec(const struct bench_pg *pg);
const char *bench_pg_database(const struct bench_pg *pg);

/* The run's database's size in bytes (0 when unknown). */
uint64_t bench_pg_size(struct bench_pg *pg);

/* The server's WAL position (bytes since 0/0) and, when its processes run on
 * this machine and /proc/PID/io is readable for them (same user, or root),
 * the write_bytes and CPU time of the postmaster and its children (have_io).
 * False when the position cannot be read. */
struct pg_sample {
    uint64_t wal_lsn, write_bytes;
    double cpu_s;
    bool have_io;
};
bool bench_pg_sample(struct bench_pg *pg, struct pg_sample *out);
/* After a run: CHECKPOINT, and the write_bytes of the server's processes
 * meanwhile (the data pages the run dirtied, written to their files). False
 * when not measured (processes not readable, or no right to CHECKPOINT:
 * superuser or pg_checkpoint). */
bool bench_pg_checkpoint(struct bench_pg *pg, uint64_t *bytes);
/* Drops the run's database (keep: says its name instead) and frees pg.
 * Accepts NULL. */
void bench_pg_close(struct bench_pg *pg, bool keep);

/* Sorted-copy percentiles of n values (q in 0..1). */
double bench_percentile(double *sorted, size_t n, double q);
void bench_sort(double *v, size_t n);

/* Machine ceilings: Ed25519 verify and sign per second on one core, and
 * fdatasync per second of a 4 KiB overwrite on the filesystem of dir. */
struct ceilings {
    double verify_per_s, sign_per_s, fsync_per_s;
};
int bench_ceilings(const char *dir, struct ceilings *out);

/* ------------------------------------------------------------ load */

struct load_result {
    double elapsed_s;
    uint64_t sent, receipts, errors, notices, late;
    uint64_t receipts_verified, receipt_verify_failures;
    double msgs_per_s;
    double p50_ms, p99_ms, p999_ms, max_ms;
    double notice_p50_ms, notice_p99_ms, notice_p999_ms;
    double send_late_p50_ms, send_late_p99_ms; /* rate mode: sends behind their schedule */
    double offered_per_s;
    bool pool_exhausted;
    size_t envelope_bytes;
    double seal_s; /* time spent pre-building envelopes */
    uint64_t rss_start_kb, rss_max_kb, rss_end_kb;
    double broker_cpu_s, broker_loop_cpu_s;
    double bench_cpu_s; /* this process during the run (sealing excluded) */
    char *rss_series;   /* JSON array of KiB, one per sample; malloc'd */
    int first_error;    /* wire code of the first error seen */
    /* What the broker wrote during the measured window: /proc io (when
     * have_io) and its stats lines (when have_stats), see measure.c. */
    bool have_io, have_stats;
    struct proc_io io;
    struct broker_stats stats;
    /* On PostgreSQL: the server's WAL bytes (have_pg) and its processes'
     * write_bytes (have_pg_io) over the same window. */
    bool have_pg, have_pg_io;
    uint64_t pg_wal_bytes, pg_write_bytes;
    double pg_cpu_s;
    uint64_t window_receipts;       /* receipts that arrived inside the window */
    int64_t wall_t0_ms, wall_t1_ms; /* the window, wall clock */
};

int bench_load(const struct bench_opts *o, const struct bench_net *net, const char *endpoint,
               pid_t broker_pid, struct load_result *out);

/* ------------------------------------------------------------ scale */

struct scale_result {
    uint64_t stored;
    double fill_s;
    double startup_ms[3];
    double list_first_p50_ms, list_first_p99_ms, list_deep_p50_ms, list_deep_p99_ms;
    double hello_p50_ms;
    double store_list_p50_ms, store_list_max_ms; /* in-process inbox_list of 100 */
    uint64_t rss_after_start_kb, rss_after_list_kb;
    uint64_t db_bytes;
};

/* Fills the store (o->broker_store, or net's data directory) with n synthetic messages queued for
 * the first member (through the broker's store operations, in transactions of many rows), then
 * measures store-level listing. */
int bench_fill(const struct bench_opts *o, const struct bench_net *net, uint64_t n, size_t size,
               struct scale_result *out);
/* With the store filled: measures casenetd start-up (three times) and
 * ListInbox pages of 100 over the wire, first page and deep in the backlog.
 * Leaves casenetd running in *b for the load that may follow. */
int bench_scale_wire(const struct bench_opts *o, const struct bench_net *net, const char *casenetd,
                     struct bench_broker *b, struct scale_result *out);

#endif
