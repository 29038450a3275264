/* pg.c - the store conformance suite on the PostgreSQL backend: starts a
 * real PostgreSQL 15 server in a temporary directory (pg_server.sh, its path
 * argv[1]), a fresh database per test, and stops and removes the server at
 * exit. Exits 77 (skipped) when PostgreSQL 15 is not installed. */
#include "conformance.h"
#include "testlib.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *script;
static char *server_dir;
static char admin_uri[512];
static unsigned databases;

static void stop_server(void)
{
    if (!server_dir)
        return;
    char *cmd = NULL;
    if (asprintf(&cmd, "'%s' stop '%s'", script, server_dir) >= 0 && system(cmd) != 0)
        fprintf(stderr, "pg.c: stopping the server in %s failed\n", server_dir);
    free(cmd);
    free(server_dir);
    server_dir = NULL;
}

static void on_signal(int sig)
{
    stop_server();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Starts the server; its URI (database postgres) into admin_uri. */
static void start_server(void)
{
    server_dir = tl_tmpdir();
    char *cmd = NULL;
    if (asprintf(&cmd, "'%s' start '%s'", script, server_dir) < 0)
        abort();
    atexit(stop_server);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p || !fgets(admin_uri, sizeof admin_uri, p) || pclose(p) != 0) {
        fprintf(stderr, "pg.c: could not start PostgreSQL (see above)\n");
        exit(1);
    }
    admin_uri[strcspn(admin_uri, "\n")] = '\0';
}

/* Runs one statement on the server's postgres database; aborts on failure. */
static void admin(const char *q)
{
    PGconn *c = PQconnectdb(admin_uri);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "pg.c: %s: %s", q, PQerrorMessage(c));
        abort();
    }
    PQclear(r);
    PQfinish(c);
}

/* The admin URI with database name db instead of postgres. */
static char *uri_for(const char *db)
{
    const char *at = strstr(admin_uri, "/postgres?");
    if (!at)
        abort();
    char *spec = NULL;
    if (asprintf(&spec, "%.*s/%s%s", (int)(at - admin_uri), admin_uri, db,
                 at + strlen("/postgres")) < 0)
        abort();
    return spec;
}

static char *fresh(void)
{
    char db[32], q[64];
    snprintf(db, sizeof db, "casenet_%u", ++databases);
    snprintf(q, sizeof q, "CREATE DATABASE %s", db);
    admin(q);
    return uri_for(db);
}

/* The spec's database (between the last '/' before '?' and the '?'). */
static void discard(const char *spec)
{
    const char *end = strchr(spec, '?');
    const char *start = end;
    while (start > spec && start[-1] != '/')
        start--;
    char q[96];
    snprintf(q, sizeof q, "DROP DATABASE %.*s", (int)(end - start), start);
    admin(q);
}

int main(int argc, char **argv)
{
    const char *bin = getenv("PG_BIN") ? getenv("PG_BIN") : "/usr/lib/postgresql/15/bin";
    char *initdb = tl_path(bin, "initdb");
    if (access(initdb, X_OK) != 0) {
        fprintf(stderr, "pg.c: %s not found: install PostgreSQL 15 (deploy/setup-debian.sh)\n",
                initdb);
        free(initdb);
        return 77;
    }
    free(initdb);
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/pg_server.sh\n", argv[0]);
        return 2;
    }
    script = argv[1];
    start_server();
    static const struct conformance_backend pg = {"postgresql", fresh, discard};
    return conformance_run(&pg);
}
