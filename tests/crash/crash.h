/* crash.h - what the crash test's parts share (crash_test.c: the senders
 * and the SQLite run; crash_pg.c: two brokers on PostgreSQL; crash_check.c:
 * the checks on the store after a run, whatever its backend; crash_db.c: the
 * backends, read through SQLite or libpq). A test fixture: every function
 * exits the process (status 2) on an unexpected failure of the harness. */
#ifndef CASENET_TESTS_CRASH_H
#define CASENET_TESTS_CRASH_H

#include "network.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRASH_RCPTS        3
#define CRASH_MAX_SENDERS  32
#define CRASH_KILL_MIN_MS  50
#define CRASH_KILL_MAX_MS  500
#define CRASH_NETWORK_NAME "crash-test"

extern const char *const crash_rcpt_ids[CRASH_RCPTS];

/* One message a sender sealed, recorded before it was sent. */
struct attempt {
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    unsigned mask; /* bit i: crash_rcpt_ids[i] is a recipient */
    bool receipted;
    uint8_t rows[CRASH_RCPTS]; /* inbox rows found per recipient (crash_check) */
};

/* What the senders did, once stopped: every attempt of every sender sorted
 * by id (unique), and the counts. */
struct crash_load {
    struct attempt *all;
    size_t n;
    uint64_t receipts, timeouts, errors;
};

/* Starts k sender threads, each a libcasenet client of `endpoint` (one
 * endpoint or a comma-separated list) submitting referrals to random
 * recipients as fast as it can. */
void crash_senders_start(tn_network *tn, const char *endpoint, int k, unsigned seed);
/* Stops and joins them; *out as above (free out->all). */
void crash_senders_stop(struct crash_load *out);
/* Arms the takeover watch: the first receipt signed after wall time
 * after_wall_ms (cn_now_ms) is noted with its arrival time (cn_mono_ms). */
void crash_watch_arm(int64_t after_wall_ms);
/* That arrival time, 0 while no such receipt arrived. */
int64_t crash_watch_seen(void);

void crash_die(const char *what) __attribute__((noreturn));
/* Counts a failed check and prints it (the first 20). */
void crash_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* How many checks failed so far. */
int crash_failures(void);

/* A store read after the run, through its own engine. Queries are written
 * once for both (standard SQL, the same table and column names). */
typedef struct crash_col {
    const uint8_t *p; /* a BLOB / bytea or TEXT value, not terminated */
    size_t len;
} crash_col;
typedef void crash_row_fn(void *arg, const crash_col *cols);
typedef struct crash_db {
    void *h;
    /* The one integer of a query's one row. */
    int64_t (*scalar)(void *h, const char *q);
    /* Calls fn for each row of q (BLOB / TEXT columns only). */
    void (*each)(void *h, const char *q, crash_row_fn *fn, void *arg);
    void (*close)(void *h);
} crash_db;

/* The broker's SQLite database, read-only; checks PRAGMA integrity_check. */
crash_db crash_db_sqlite(const char *path);
/* A PostgreSQL store by its conninfo URI. */
crash_db crash_db_pg(const char *uri);

/* What crash_check found. */
struct crash_figures {
    uint64_t stored, losses, events;
    int64_t starts; /* BROKER_STARTED events */
};

/* Every check on the store against the attempts (crash_test.c's header
 * comment lists them); failures through crash_fail. */
void crash_check(crash_db *db, tn_network *tn, struct crash_load *load, struct crash_figures *f);

/* The PostgreSQL run (crash_pg.c): pg_server is tests/store/pg_server.sh.
 * Returns the exit status: 0 all checks held, 1 a check failed, 77
 * PostgreSQL 15 is not installed. */
int crash_pg_run(const char *pg_server, int cycles, int senders, unsigned seed);

/* Builds the network of k senders and the recipients, with a config file
 * without per-member limits (not started). */
tn_network *crash_network(int k);

#endif
