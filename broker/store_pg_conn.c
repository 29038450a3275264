/*
 * store_pg_conn.c - the PostgreSQL store's connection (store_pg_impl.h):
 * the spec, the session (synchronous_commit, migrations, prepared
 * statements), running statements and mapping their failures, parameters
 * and result columns, and the transaction. Below every other store_pg file
 * but store_pg_pipe.c, which runs the batch's statements in pipeline mode
 * (the statements' SQL is data, store_pg_schema.c).
 */
#include "store.h"

#include "log.h"
#include "store_pg_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_PARAM "synchronous_commit="

static struct pg_store *P(struct store *s)
{
    return (struct pg_store *)s;
}

PGconn *pq_conn(struct store *s)
{
    return P(s)->conn;
}

/* ------------------------------------------------------------ parameters */

static void arg(struct pq_args *a, const char *v, int len, int fmt)
{
    if (a->n >= PQ_ARGS_MAX)
        abort(); /* a statement of this file has more: a bug */
    a->v[a->n] = v;
    a->len[a->n] = len;
    a->fmt[a->n] = fmt;
    a->n++;
}

void pq_i64(struct pq_args *a, int64_t x)
{
    int i = a->n;
    snprintf(a->num[i], sizeof a->num[i], "%lld", (long long)x);
    arg(a, a->num[i], 0, 0);
}

void pq_u64(struct pq_args *a, uint64_t x)
{
    pq_i64(a, x > INT64_MAX ? INT64_MAX : (int64_t)x);
}

void pq_text(struct pq_args *a, const char *t)
{
    arg(a, t, 0, 0);
}

void pq_blob(struct pq_args *a, const void *p, size_t n)
{
    arg(a, p ? (n ? p : "") : NULL, (int)n, 1);
}

/* ------------------------------------------------------------ columns */

int64_t pq_col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const uint8_t *p = (const uint8_t *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    uint64_t v = 0;
    for (int i = 0; i < len && i < 8; i++)
        v = v << 8 | p[i];
    if (len == 4)
        return (int32_t)(uint32_t)v;
    if (len == 2)
        return (int16_t)(uint16_t)v;
    return (int64_t)v; /* 8 bytes, or a boolean's 1 */
}

bool pq_col_fixed(const PGresult *r, int row, int col, uint8_t *out, size_t len)
{
    if (PQgetisnull(r, row, col) || (size_t)PQgetlength(r, row, col) != len)
        return false;
    memcpy(out, PQgetvalue(r, row, col), len);
    return true;
}

bool pq_col_text(const PGresult *r, int row, int col, char *out, size_t cap)
{
    size_t n = (size_t)PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col) || n >= cap)
        return false;
    memcpy(out, PQgetvalue(r, row, col), n);
    out[n] = '\0';
    return true;
}

int pq_col_buf(const PGresult *r, int row, int col, casenet_buf *out)
{
    out->data = NULL;
    out->len = 0;
    size_t n = (size_t)PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col) || n == 0)
        return CASENET_OK;
    if (!(out->data = malloc(n)))
        return CASENET_ENOMEM;
    memcpy(out->data, PQgetvalue(r, row, col), n);
    out->len = n;
    return CASENET_OK;
}

/* ------------------------------------------------------------ running */

/* Logs a failed result (or connection) and maps it. */
static int map_failure(struct pg_store *s, const PGresult *r, const char *what)
{
    if (PQstatus(s->conn) != CONNECTION_OK) {
        log_event(LOG_ERROR, "store_connection_lost", "op", what, "msg", PQerrorMessage(s->conn),
                  "hint", "check that PostgreSQL is up; the broker reconnects between batches",
                  NULL);
        return CASENET_EUNAVAIL;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strncmp(state, "23", 2) == 0)
        return CASENET_ECONFLICT;
    log_event(LOG_ERROR, "store_error", "op", what, "sqlstate", state ? state : "", "msg",
              r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), NULL);
    return CASENET_EUNAVAIL;
}

int pq_map_failure(struct store *s, const PGresult *r, const char *what)
{
    return map_failure(P(s), r, what);
}

int pq_exec(struct store *b, const char *q, const char *what)
{
    struct pg_store *s = P(b);
    PGresult *r = NULL;
    if (s->pipe) {
        int rc = pq_pipe_run(b, PQ_STMT_COUNT, q, NULL, &r, what);
        if (rc != CASENET_OK) {
            PQclear(r);
            return rc;
        }
    } else {
        r = PQexec(s->conn, q);
    }
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? CASENET_OK : map_failure(s, r, what);
    PQclear(r);
    return rc;
}

/* Prepares every statement on the connection. */
static int prepare_all(struct pg_store *s)
{
    for (int i = 0; i < PQ_STMT_COUNT; i++) {
        char name[16];
        snprintf(name, sizeof name, "cn%d", i);
        PGresult *r = PQprepare(s->conn, name, pq_sql((enum pq_stmt)i), 0, NULL);
        int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? CASENET_OK
                                                       : map_failure(s, r, pq_sql((enum pq_stmt)i));
        PQclear(r);
        if (rc != CASENET_OK)
            return rc == CASENET_ECONFLICT ? CASENET_EUNAVAIL : rc;
    }
    s->prepared = true;
    return CASENET_OK;
}

/* The stored schema version (0 before the first step); *out. */
static int stored_version(struct store *s, PGconn *conn, int64_t *out)
{
    (void)s;
    PGresult *r = PQexec(conn, "SELECT max(version) FROM casenet_schema");
    int rc = CASENET_EUNAVAIL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        *out = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        rc = CASENET_OK;
    } else {
        log_event(LOG_ERROR, "store_error", "op", "schema_version", "msg", PQresultErrorMessage(r),
                  NULL);
    }
    PQclear(r);
    return rc;
}

/* Runs step v (v -> v + 1) in one transaction, under a lock that makes a
 * second broker migrating at the same time wait and then skip it. */
static int run_step(struct store *s, PGconn *conn, int64_t v, bool *done)
{
    int rc = pq_exec(s, "BEGIN; LOCK TABLE casenet_schema IN EXCLUSIVE MODE", "migrate");
    if (rc != CASENET_OK)
        return rc;
    int64_t now = 0;
    if ((rc = stored_version(s, conn, &now)) != CASENET_OK)
        goto rollback;
    if (now > v) { /* another broker ran it */
        *done = false;
        return pq_exec(s, "COMMIT", "migrate");
    }
    char set[96];
    snprintf(set, sizeof set, "INSERT INTO casenet_schema (version) VALUES (%lld)",
             (long long)(v + 1));
    if ((rc = pq_exec(s, pq_migration_sql((size_t)v), "migrate")) != CASENET_OK ||
        (rc = pq_exec(s, set, "migrate")) != CASENET_OK ||
        (rc = pq_exec(s, "COMMIT", "migrate")) != CASENET_OK)
        goto rollback;
    *done = true;
    return CASENET_OK;
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}

static int pq_migrate(struct store *s)
{
    PGconn *conn = pq_conn(s);
    int rc = pq_exec(s, "CREATE TABLE IF NOT EXISTS casenet_schema (version BIGINT NOT NULL)",
                     "migrate");
    int64_t version = 0;
    if (rc == CASENET_OK)
        rc = stored_version(s, conn, &version);
    if (rc != CASENET_OK)
        return rc;
    if (version > PQ_SCHEMA_VERSION) {
        log_event(LOG_ERROR, "store_schema_newer", "found", log_u64((uint64_t)version), "supported",
                  log_u64(PQ_SCHEMA_VERSION), "msg",
                  "upgrade casenetd or point it at another database", NULL);
        return CASENET_EVERSION;
    }
    for (int64_t v = version; v < PQ_SCHEMA_VERSION; v++) {
        bool done = false;
        if ((rc = run_step(s, conn, v, &done)) != CASENET_OK)
            return rc;
        if (done)
            log_event(LOG_INFO, "store_migrated", "backend", "postgresql", "schema_version",
                      log_u64((uint64_t)(v + 1)), NULL);
    }
    return CASENET_OK;
}

void pq_reconnect(struct store *b)
{
    struct pg_store *s = P(b);
    s->prepared = false;
    s->pipe = false;
    s->n_deferred = 0;
    if (s->conn && PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF) {
        PQfinish(s->conn); /* PQreset keeps the mode; a fresh one has none */
        s->conn = NULL;
    }
    if (s->conn)
        PQreset(s->conn);
    else
        s->conn = PQconnectdb(s->conninfo);
}

/* Connects (or reconnects) and sets the session up: synchronous_commit and
 * the prepared statements. migrate: run the migrations first (open). */
static int session(struct pg_store *s, bool migrate)
{
    pq_reconnect(&s->base);
    if (!s->conn)
        return CASENET_ENOMEM;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        log_event(LOG_ERROR, "store_connect", "backend", "postgresql", "msg",
                  PQerrorMessage(s->conn), "hint",
                  "check the store URI (postgresql://user@host:port/db) and that the server is up",
                  NULL);
        return CASENET_EUNAVAIL;
    }
    char q[128];
    snprintf(q, sizeof q, "SET synchronous_commit TO %s; SET client_min_messages TO warning",
             s->sync);
    int rc = pq_exec(&s->base, q, "synchronous_commit");
    if (rc == CASENET_OK && migrate)
        rc = pq_migrate(&s->base);
    if (rc == CASENET_OK)
        rc = prepare_all(s);
    return rc;
}

int pq_run(struct store *b, enum pq_stmt which, const struct pq_args *a, PGresult **res,
           const char *what)
{
    struct pg_store *s = P(b);
    if (!s->tx && (!s->prepared || PQstatus(s->conn) != CONNECTION_OK)) {
        int rc = session(s, false);
        if (rc != CASENET_OK)
            return rc;
    }
    PGresult *r = NULL;
    if (s->pipe) {
        int rc = pq_pipe_run(b, which, NULL, a, &r, what);
        if (rc != CASENET_OK) {
            PQclear(r);
            return rc;
        }
    } else {
        char name[16];
        snprintf(name, sizeof name, "cn%d", (int)which);
        r = a ? PQexecPrepared(s->conn, name, a->n, a->v, a->len, a->fmt, 1)
              : PQexecPrepared(s->conn, name, 0, NULL, NULL, NULL, 1);
    }
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int rc = map_failure(s, r, what);
        PQclear(r);
        return rc;
    }
    const char *touched = PQcmdTuples(r);
    if (*touched && strncmp(PQcmdStatus(r), "SELECT", 6) != 0)
        s->changes += strtoull(touched, NULL, 10);
    if (res)
        *res = r;
    else
        PQclear(r);
    return CASENET_OK;
}

int pq_write(struct store *b, enum pq_stmt which, const struct pq_args *a, uint64_t *touched,
             const char *what)
{
    PGresult *r = NULL;
    int rc = pq_run(b, which, a, &r, what);
    if (rc == CASENET_OK) {
        *touched = strtoull(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    return rc;
}

/* ------------------------------------------------------------ open / close */

void pq_close(struct store *b)
{
    if (!b)
        return;
    struct pg_store *s = P(b);
    if (s->pipe || (s->conn && PQtransactionStatus(s->conn) != PQTRANS_IDLE))
        pq_rollback(b);
    pq_lease_release(b);
    PQfinish(s->conn);
    free(s->conninfo);
    free(s);
}

/* Copies spec into s->conninfo without our synchronous_commit parameter,
 * whose value goes to s->sync. CASENET_EINVAL (logged) for a value other
 * than on, remote_write or remote_apply. */
static int parse_spec(struct pg_store *s, const char *spec)
{
    snprintf(s->sync, sizeof s->sync, "on");
    if (!(s->conninfo = strdup(spec)))
        return CASENET_ENOMEM;
    char *q = strchr(s->conninfo, '?');
    if (!q)
        return CASENET_OK;
    for (char *p = q + 1; *p;) {
        size_t len = strcspn(p, "&");
        if (strncmp(p, SYNC_PARAM, strlen(SYNC_PARAM)) != 0) {
            p += len + (p[len] == '&');
            continue;
        }
        snprintf(s->sync, sizeof s->sync, "%.*s", (int)(len - strlen(SYNC_PARAM)),
                 p + strlen(SYNC_PARAM));
        memmove(p, p + len + (p[len] == '&'), strlen(p + len + (p[len] == '&')) + 1);
    }
    size_t n = strlen(s->conninfo);
    while (n && (s->conninfo[n - 1] == '?' || s->conninfo[n - 1] == '&'))
        s->conninfo[--n] = '\0';
    if (strcmp(s->sync, "on") && strcmp(s->sync, "remote_write") &&
        strcmp(s->sync, "remote_apply")) {
        log_event(LOG_ERROR, "store_bad_spec", "synchronous_commit", s->sync, "msg",
                  "synchronous_commit must be on, remote_write or remote_apply", NULL);
        return CASENET_EINVAL;
    }
    return CASENET_OK;
}

int pq_open(const char *spec, const struct store_ops *ops, struct store **out)
{
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s)
        return CASENET_ENOMEM;
    s->base.ops = ops;
    int rc = parse_spec(s, spec);
    if (rc == CASENET_OK)
        rc = session(s, true);
    if (rc != CASENET_OK) {
        pq_close(&s->base);
        return rc;
    }
    log_event(LOG_INFO, "store_open", "backend", "postgresql", "host", PQhost(s->conn), "db",
              PQdb(s->conn), "synchronous_commit", s->sync, NULL);
    *out = &s->base;
    return CASENET_OK;
}

/* ------------------------------------------------------------ transactions */

int pq_begin(struct store *b)
{
    struct pg_store *s = P(b);
    if (!s->prepared || PQstatus(s->conn) != CONNECTION_OK) {
        int rc = session(s, false);
        if (rc != CASENET_OK)
            return rc;
    }
    int rc = pq_pipe_begin(b);
    s->tx = rc == CASENET_OK;
    return rc;
}

int pq_commit(struct store *b)
{
    P(b)->tx = false;
    return pq_pipe_commit(b);
}

void pq_rollback(struct store *b)
{
    P(b)->tx = false;
    pq_pipe_rollback(b);
}

/* A request's savepoint and its release: sent, answered at the next sync. */
int pq_savepoint(struct store *b)
{
    return pq_defer(b, PQ_STMT_COUNT, "SAVEPOINT request", NULL, PQ_EXPECT_DONE, "savepoint");
}

int pq_release(struct store *b)
{
    return pq_defer(b, PQ_STMT_COUNT, "RELEASE SAVEPOINT request", NULL, PQ_EXPECT_DONE, "release");
}

/* Sent too: a failure fails the batch, whose rollback undoes the rows. */
int pq_rollback_to(struct store *b)
{
    pq_pipe_forget(b); /* the rows may be gone */
    int rc = pq_defer(b, PQ_STMT_COUNT, "ROLLBACK TO SAVEPOINT request", NULL, PQ_EXPECT_DONE,
                      "rollback_to");
    if (rc == CASENET_OK)
        (void)pq_defer(b, PQ_STMT_COUNT, "RELEASE SAVEPOINT request", NULL, PQ_EXPECT_DONE,
                       "release");
    return rc;
}

bool pq_in_transaction(struct store *b)
{
    struct pg_store *s = P(b);
    PGTransactionStatusType t = PQtransactionStatus(s->conn);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

uint64_t pq_changes(struct store *b)
{
    return P(b)->changes;
}

/* No log of its own to copy: PostgreSQL checkpoints by itself. */
int pq_checkpoint(struct store *b, uint32_t min_frames, uint32_t *pending)
{
    (void)b;
    (void)min_frames;
    if (pending)
        *pending = 0;
    return CASENET_OK;
}
