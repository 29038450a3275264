/* pg.c - casenet-bench on a PostgreSQL store (see bench.h): the run's own
 * database, created empty on the server the --store URI names and dropped
 * at the end, and what the server wrote during the measured window (its
 * WAL position; the write_bytes of its processes when they are local and
 * readable). */
#include "bench.h"

#include <ctype.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SYNC_PARAM "synchronous_commit="

struct bench_pg {
    PGconn *conn;     /* to the URI's own database: samples, CREATE and DROP */
    char db[64];      /* the run's database */
    char *spec;       /* the URI with dbname=db, for casenetd --store */
    pid_t postmaster; /* 0: the server's processes are not readable here */
    bool created;
};

bool bench_store_is_pg(const char *spec)
{
    return spec &&
           (strncmp(spec, "postgresql://", 13) == 0 || strncmp(spec, "postgres://", 11) == 0);
}

/* uri without casenetd's own synchronous_commit parameter (libpq knows no
 * such parameter), malloc'd. */
static char *libpq_uri(const char *uri)
{
    const char *q = strchr(uri, '?');
    size_t head = q ? (size_t)(q - uri) : strlen(uri), n = head;
    char *out = malloc(strlen(uri) + 1);
    if (!out)
        return NULL;
    memcpy(out, uri, head);
    for (const char *p = q; p && *p;) {
        p++; /* past the '?' or '&' */
        size_t len = strcspn(p, "&");
        if (len && strncmp(p, SYNC_PARAM, strlen(SYNC_PARAM)) != 0) {
            char sep = n == head ? '?' : '&';
            out[n++] = sep;
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    out[n] = '\0';
    return out;
}

/* Runs q; its first row's first value into out (when given, at most size
 * bytes), "" when NULL or no row. False (printed) on an error. */
static bool query1(struct bench_pg *pg, const char *q, char *out, size_t size, const char *what)
{
    PGresult *r = PQexec(pg->conn, q);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "casenet-bench: PostgreSQL: %s: %s", what, PQresultErrorMessage(r));
    else if (out)
        snprintf(out, size, "%s",
                 PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return ok;
}

/* The parent pid and CPU seconds (utime + stime) in /proc/PID/stat; false
 * when unreadable. */
static bool stat_of(pid_t pid, pid_t *ppid, double *cpu_s)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    int parent = 0;
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &parent, &ut,
                     &st) != 3)
        return false;
    *ppid = (pid_t)parent;
    *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return true;
}

/* The postmaster of our session's backend, when it runs on this machine
 * and its files are ours to read: its working directory is the server's
 * data_directory (readable by a superuser or pg_read_all_settings). */
static pid_t find_postmaster(struct bench_pg *pg)
{
    char backend[32], data_dir[PATH_MAX], cwd[PATH_MAX], link[64];
    if (!query1(pg, "SELECT pg_backend_pid()", backend, sizeof backend, "backend pid") ||
        !query1(pg, "SELECT setting FROM pg_settings WHERE name = 'data_directory'", data_dir,
                sizeof data_dir, "data_directory") ||
        !*data_dir)
        return 0;
    pid_t pm = 0;
    double cpu;
    if (!stat_of((pid_t)atoi(backend), &pm, &cpu) || pm <= 1)
        return 0;
    snprintf(link, sizeof link, "/proc/%d/cwd", (int)pm);
    ssize_t n = readlink(link, cwd, sizeof cwd - 1);
    if (n <= 0)
        return 0;
    cwd[n] = '\0';
    char *real = realpath(data_dir, NULL);
    bool same = real && strcmp(real, cwd) == 0;
    free(real);
    return same ? pm : 0;
}

int bench_pg_open(const char *uri, struct bench_pg **out)
{
    struct bench_pg *pg = calloc(1, sizeof *pg);
    char *conninfo = libpq_uri(uri);
    int rc = CASENET_ENOMEM;
    if (!pg || !conninfo)
        goto cleanup;
    rc = CASENET_EUNAVAIL;
    pg->conn = PQconnectdb(conninfo);
    if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
        fprintf(stderr,
                "casenet-bench: cannot connect to %s: %scheck the URI and that the server "
                "is up\n",
                uri, pg->conn ? PQerrorMessage(pg->conn) : "out of memory; ");
        goto cleanup;
    }
    PQclear(PQexec(pg->conn, "SET client_min_messages TO warning"));
    snprintf(pg->db, sizeof pg->db, "casenet_bench_%d_%lld", (int)getpid(), (long long)time(NULL));
    char q[160];
    snprintf(q, sizeof q, "CREATE DATABASE %s", pg->db);
    if (!query1(pg, q, NULL, 0, "CREATE DATABASE")) {
        fprintf(stderr, "casenet-bench: a run needs an empty database of its own: give the URI's "
                        "user CREATEDB (ALTER ROLE ... CREATEDB)\n");
        goto cleanup;
    }
    pg->created = true;
    if (asprintf(&pg->spec, "%s%sdbname=%s", uri, strchr(uri, '?') ? "&" : "?", pg->db) < 0) {
        pg->spec = NULL;
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    pg->postmaster = find_postmaster(pg);
    /* The pages CREATE DATABASE dirtied go now, not in the run's checkpoint
     * (bench_pg_checkpoint); refused without the right: it then measures
     * nothing. */
    PQclear(PQexec(pg->conn, "CHECKPOINT"));
    *out = pg;
    pg = NULL;
    rc = CASENET_OK;
cleanup:
    bench_pg_close(pg, false);
    free(conninfo);
    return rc;
}

const char *bench_pg_spec(const struct bench_pg *pg)
{
    return pg->spec;
}

const char *bench_pg_database(const struct bench_pg *pg)
{
    return pg->db;
}

uint64_t bench_pg_size(struct bench_pg *pg)
{
    char q[160], v[32];
    snprintf(q, sizeof q, "SELECT pg_database_size('%s')", pg->db);
    return query1(pg, q, v, sizeof v, "database size") ? strtoull(v, NULL, 10) : 0;
}

/* write_bytes and CPU time of the postmaster and every child of it. */
static bool server_io(pid_t postmaster, struct pg_sample *out)
{
    DIR *d = opendir("/proc");
    if (!d)
        return false;
    bool any = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(e->d_name), ppid = 0;
        double cpu = 0;
        struct proc_io io;
        if (stat_of(pid, &ppid, &cpu) && (pid == postmaster || ppid == postmaster) &&
            bench_proc_io(pid, &io)) {
            out->write_bytes += io.write_bytes;
            out->cpu_s += cpu;
            any |= pid == postmaster;
        }
    }
    closedir(d);
    return any;
}

bool bench_pg_sample(struct bench_pg *pg, struct pg_sample *out)
{
    char lsn[32];
    memset(out, 0, sizeof *out);
    if (!query1(pg, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint", lsn, sizeof lsn,
                "WAL position") ||
        !*lsn)
        return false;
    out->wal_lsn = strtoull(lsn, NULL, 10);
    out->have_io = pg->postmaster > 0 && server_io(pg->postmaster, out);
    return true;
}

bool bench_pg_checkpoint(struct bench_pg *pg, uint64_t *bytes)
{
    struct pg_sample a = {0}, b = {0};
    if (!pg->postmaster || !server_io(pg->postmaster, &a) ||
        !query1(pg, "CHECKPOINT", NULL, 0, "CHECKPOINT") || !server_io(pg->postmaster, &b) ||
        b.write_bytes < a.write_bytes)
        return false;
    *bytes = b.write_bytes - a.write_bytes;
    return true;
}

void bench_pg_close(struct bench_pg *pg, bool keep)
{
    if (!pg)
        return;
    if (pg->created && keep) {
        fprintf(stderr, "casenet-bench: the run's database %s is kept\n", pg->db);
    } else if (pg->created) {
        char q[160];
        snprintf(q, sizeof q, "DROP DATABASE %s WITH (FORCE)", pg->db);
        if (!query1(pg, q, NULL, 0, "DROP DATABASE"))
            fprintf(stderr, "casenet-bench: drop the run's database %s by hand\n", pg->db);
    }
    PQfinish(pg->conn);
    free(pg->spec);
    free(pg);
}
