/*
 * store_pg_lease.c - which of several brokers on one PostgreSQL database is
 * active (issue 17): a lease row (broker_lease) with its holder, a fencing
 * token that grows with every takeover, the holder's backend pid and an
 * expiry in the server's clock (so brokers' clocks need not agree). The
 * active broker renews it every tick; a standby takes it once it expired,
 * with the next token, and terminates the old holder's session, which rolls
 * back whatever batch that session still had open. Every batch of a store
 * that took a lease checks, inside its transaction and just before COMMIT,
 * that its token is still the current unexpired one (pq_lease_fence_sql): a
 * broker that was paused past its lease commits nothing. A broker that
 * stops cleanly hands the lease back (pq_lease_release): the standby takes
 * over at its next try, not after the TTL.
 */
#include "store.h"

#include "log.h"
#include "store_pg_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct pg_store *P(struct store *s)
{
    return (struct pg_store *)s;
}

/* Runs q with n text parameters (none: q may hold several statements);
 * *res as for pq_run. */
static int lease_exec(struct pg_store *s, const char *q, int n, const char *const *v,
                      PGresult **res, const char *what)
{
    PGresult *r = n ? PQexecParams(s->conn, q, n, NULL, v, NULL, NULL, 0) : PQexec(s->conn, q);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        log_event(LOG_ERROR, "store_lease", "step", what, "msg", PQresultErrorMessage(r), NULL);
        PQclear(r);
        return CASENET_EUNAVAIL;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return CASENET_OK;
}

/* Inside the lease transaction: the row as it stands (locked), then ours
 * written when it is free, expired or already ours. */
static int lease_step(struct pg_store *s, const char *ttl, bool *active, int64_t *old_pid)
{
    PGresult *r = NULL;
    int rc = lease_exec(s,
                        "SELECT token, pid, holder, expires_at < clock_timestamp(),"
                        " pg_backend_pid() FROM broker_lease FOR UPDATE",
                        0, NULL, &r, "read");
    if (rc != CASENET_OK)
        return rc;
    bool none = PQntuples(r) == 0;
    int64_t token = none ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    int64_t pid = none ? 0 : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    bool expired = none || strcmp(PQgetvalue(r, 0, 3), "t") == 0;
    int64_t me = none ? 0 : strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    PQclear(r);
    bool ours = s->lease_token != 0 && token == s->lease_token && (none || pid == me);
    if (s->lease_token != 0 && !ours) {
        s->lease_lost = true;
        return CASENET_ECONFLICT;
    }
    *active = ours || expired;
    if (!*active)
        return CASENET_OK;
    char next[24];
    snprintf(next, sizeof next, "%lld", (long long)(ours ? token : token + 1));
    const char *v[3] = {s->holder, next, ttl};
    rc = lease_exec(s,
                    "INSERT INTO broker_lease (holder, token, pid, expires_at)"
                    " VALUES ($1, $2::bigint, pg_backend_pid(),"
                    " clock_timestamp() + $3::bigint * interval '1 millisecond')"
                    " ON CONFLICT (one) DO UPDATE SET holder = excluded.holder,"
                    " token = excluded.token, pid = excluded.pid, expires_at = excluded.expires_at",
                    3, v, NULL, "write");
    if (rc != CASENET_OK)
        return rc;
    *old_pid = ours || none ? 0 : pid;
    s->lease_token = ours ? token : token + 1;
    return CASENET_OK;
}

/* Before taking an expired lease: ends the old holder's session, waiting up
 * to a second, so that a batch it still holds open (a paused broker) is
 * rolled back and its row locks freed before this broker writes. */
static void fence_expired(struct pg_store *s)
{
    (void)lease_exec(s,
                     "SELECT pg_terminate_backend(pid::integer, 1000) FROM broker_lease"
                     " WHERE expires_at < clock_timestamp() AND pid <> pg_backend_pid()"
                     " AND pid IN (SELECT pid FROM pg_stat_activity)",
                     0, NULL, NULL, "fence_old");
}

int pq_lease(struct store *b, uint32_t ttl_ms, bool *active)
{
    struct pg_store *s = P(b);
    *active = false;
    if (s->lease_lost)
        return CASENET_ECONFLICT;
    if (!s->holder[0]) {
        char host[64] = "?";
        (void)gethostname(host, sizeof host - 1);
        snprintf(s->holder, sizeof s->holder, "%s:%ld", host, (long)getpid());
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        pq_reconnect(b);
        if (PQstatus(s->conn) != CONNECTION_OK)
            return CASENET_EUNAVAIL;
    }
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%u", ttl_ms);
    if (s->lease_token == 0)
        fence_expired(s);
    int64_t old_pid = 0;
    int64_t had = s->lease_token;
    int rc = lease_exec(s, "BEGIN; SET LOCAL lock_timeout = '2s'", 0, NULL, NULL, "begin");
    if (rc == CASENET_OK)
        rc = lease_step(s, ttl, active, &old_pid);
    if (rc == CASENET_OK)
        rc = lease_exec(s, "COMMIT", 0, NULL, NULL, "commit");
    else if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    if (rc != CASENET_OK) {
        if (!s->lease_lost)
            s->lease_token = had;
        *active = false;
        if (s->lease_lost)
            log_event(LOG_ERROR, "lease_lost", "holder", s->holder, "msg",
                      "another broker took the lease over: this one stops", NULL);
        return rc;
    }
    if (had != s->lease_token) {
        char tok[24], pid[24];
        snprintf(tok, sizeof tok, "%lld", (long long)s->lease_token);
        snprintf(pid, sizeof pid, "%lld", (long long)old_pid);
        log_event(LOG_INFO, "lease_taken", "holder", s->holder, "token", tok, "fenced_pid", pid,
                  NULL);
    }
    return CASENET_OK;
}

/* One row (1) while the token is this session's and unexpired, locked
 * until the commit so that no standby takes the lease over meanwhile; else
 * 1 / 0: an error, which aborts the batch's transaction before its COMMIT
 * (sent in the same pipeline, it is then skipped). */
const char pq_lease_fence_sql[] =
    "SELECT 1 / count(*)::integer FROM (SELECT 1 FROM broker_lease WHERE token = $1::bigint"
    " AND pid = pg_backend_pid() AND expires_at > clock_timestamp() FOR SHARE) held";

void pq_lease_fence_failed(struct store *b)
{
    struct pg_store *s = P(b);
    char tok[24];
    snprintf(tok, sizeof tok, "%lld", (long long)s->lease_token);
    s->lease_lost = true;
    log_event(LOG_ERROR, "lease_lost", "holder", s->holder, "token", tok, "msg",
              "the lease expired or another broker took it over: the batch is rolled back and"
              " this broker stops",
              NULL);
}

void pq_lease_release(struct store *b)
{
    struct pg_store *s = P(b);
    if (s->lease_token == 0 || s->lease_lost || PQstatus(s->conn) != CONNECTION_OK ||
        PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF)
        return;
    char tok[24];
    snprintf(tok, sizeof tok, "%lld", (long long)s->lease_token);
    const char *v[1] = {tok};
    PGresult *r = NULL;
    if (lease_exec(s,
                   "UPDATE broker_lease SET expires_at = clock_timestamp()"
                   " WHERE token = $1::bigint AND pid = pg_backend_pid()",
                   1, v, &r, "release") != CASENET_OK)
        return;
    bool released = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (released)
        log_event(LOG_INFO, "lease_released", "holder", s->holder, "token", tok, NULL);
    s->lease_token = 0;
}
