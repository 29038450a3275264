/* crash_db.c - the store after a crash run, read through SQLite (the broker's
 * casenet.db, read-only) or libpq (a PostgreSQL store): crash.h's crash_db. */
#include "crash.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t sq_scalar(void *h, const char *q)
{
    sqlite3 *db = h;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        fprintf(stderr, "crash_test: %s: %s\n", q, sqlite3_errmsg(db));
        exit(2);
    }
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void sq_each(void *h, const char *q, crash_row_fn *fn, void *arg)
{
    sqlite3 *db = h;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
        crash_die("prepare");
    int n = sqlite3_column_count(st);
    crash_col cols[4];
    if (n > 4)
        crash_die("too many columns");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < n; i++) {
            cols[i].p = sqlite3_column_blob(st, i);
            cols[i].len = (size_t)sqlite3_column_bytes(st, i);
        }
        fn(arg, cols);
    }
    if (rc != SQLITE_DONE)
        crash_die(sqlite3_errmsg(db));
    sqlite3_finalize(st);
}

static void sq_close(void *h)
{
    sqlite3_close(h);
}

crash_db crash_db_sqlite(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        crash_die("open the database");
    sqlite3_stmt *ic = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &ic, NULL) != SQLITE_OK ||
        sqlite3_step(ic) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(ic, 0), "ok") != 0)
        crash_fail("PRAGMA integrity_check is not ok");
    sqlite3_finalize(ic);
    return (crash_db){.h = db, .scalar = sq_scalar, .each = sq_each, .close = sq_close};
}

/* A query's result, or exit: text results for counts, binary ones (bytea
 * and text as their bytes) for rows. */
static PGresult *pg_exec(PGconn *c, const char *q, int format)
{
    PGresult *r = PQexecParams(c, q, 0, NULL, NULL, NULL, NULL, format);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "crash_test: %s: %s", q, PQerrorMessage(c));
        exit(2);
    }
    return r;
}

static int64_t pg_scalar(void *h, const char *q)
{
    PGresult *r = pg_exec(h, q, 0);
    if (PQntuples(r) != 1)
        crash_die("a count returned no row");
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void pg_each(void *h, const char *q, crash_row_fn *fn, void *arg)
{
    PGresult *r = pg_exec(h, q, 1);
    int n = PQnfields(r);
    crash_col cols[4];
    if (n > 4)
        crash_die("too many columns");
    for (int row = 0; row < PQntuples(r); row++) {
        for (int i = 0; i < n; i++) {
            cols[i].p = (const uint8_t *)PQgetvalue(r, row, i);
            cols[i].len = (size_t)PQgetlength(r, row, i);
        }
        fn(arg, cols);
    }
    PQclear(r);
}

static void pg_close(void *h)
{
    PQfinish(h);
}

crash_db crash_db_pg(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "crash_test: %s: %s", uri, PQerrorMessage(c));
        exit(2);
    }
    return (crash_db){.h = c, .scalar = pg_scalar, .each = pg_each, .close = pg_close};
}
