/* watch_journal.c - the hand-over journal of `casenet watch` (see watch.h):
 * one SQLite table in the member home, one committed transaction per state
 * change, and a lock file so that one watch runs per home.
 *
 * Why SQLite rather than an append-only file: a commit is atomic and durable
 * (WAL with synchronous=FULL) without a torn-record recovery of our own, the
 * lookup by message id is an index, and the project already depends on it. */
#include "watch.h"

#include "cli.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define WJ_BUSY_TIMEOUT_MS 5000
#define WJ_RECEIPT_MAX     4096

struct wj {
    sqlite3 *db;
    int lock_fd;
    sqlite3_stmt *get, *put, *list;
};

/* The schema, one step per user_version; append steps, never edit one. */
static const char *const migrations[] = {
    "CREATE TABLE handover ("
    "  message_id  BLOB PRIMARY KEY,"
    "  seq         INTEGER NOT NULL,"
    "  kind        INTEGER NOT NULL,"
    "  state       INTEGER NOT NULL,"
    "  attempts    INTEGER NOT NULL DEFAULT 0,"
    "  next_try_ms INTEGER NOT NULL DEFAULT 0,"
    "  dir_version INTEGER NOT NULL DEFAULT 0,"
    "  sender      TEXT NOT NULL DEFAULT '',"
    "  receipt     BLOB,"
    "  updated_ms  INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX handover_state ON handover (state, seq);",
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

const char *wj_state_name(enum wj_state s)
{
    switch (s) {
    case WJ_NONE:
        return "none";
    case WJ_PENDING:
        return "pending";
    case WJ_SPOOLING:
        return "spooling";
    case WJ_SPOOLED:
        return "spooled";
    case WJ_HANDED:
        return "handed";
    case WJ_DONE:
        return "done";
    case WJ_REJECTED:
        return "rejected";
    }
    return "unknown";
}

static int db_fail(wj *j, const char *what)
{
    fprintf(stderr, "casenet: watch: journal: %s: %s\n", what, sqlite3_errmsg(j->db));
    return CASENET_EIO;
}

static int exec_sql(wj *j, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(j->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "casenet: watch: journal: %s: %s\n", what, msg ? msg : "?");
        sqlite3_free(msg);
        return CASENET_EIO;
    }
    return CASENET_OK;
}

static int migrate(wj *j)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return db_fail(j, "user_version");
    int64_t version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (version < 0)
        return db_fail(j, "user_version");
    if ((uint64_t)version > N_MIGRATIONS) {
        fprintf(stderr,
                "casenet: watch: journal: schema version %lld is newer than this casenet "
                "knows (%zu)\n",
                (long long)version, N_MIGRATIONS);
        return CASENET_EVERSION;
    }
    for (size_t v = (size_t)version; v < N_MIGRATIONS; v++) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %zu", v + 1);
        int rc = exec_sql(j, "BEGIN IMMEDIATE", "begin");
        if (rc == CASENET_OK)
            rc = exec_sql(j, migrations[v], "migration");
        if (rc == CASENET_OK)
            rc = exec_sql(j, set, "user_version");
        if (rc == CASENET_OK)
            rc = exec_sql(j, "COMMIT", "commit");
        if (rc != CASENET_OK) {
            int ignored = exec_sql(j, "ROLLBACK", "rollback");
            (void)ignored;
            return rc;
        }
    }
    return CASENET_OK;
}

/* Takes the home's watch lock (a second watch on the same home would hand
 * messages over twice). The descriptor stays open for the process's life. */
static int take_lock(const char *dir, int *fd_out)
{
    char *path = cli_path(dir, WATCH_LOCK_FILE);
    if (!path)
        return CASENET_ENOMEM;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "casenet: watch: cannot open %s: %s\n", path, strerror(errno));
        free(path);
        return CASENET_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            fprintf(stderr,
                    "casenet: watch: another casenet watch is running on this home "
                    "(%s is locked)\n",
                    path);
        else
            fprintf(stderr, "casenet: watch: cannot lock %s: %s\n", path, strerror(e));
        close(fd);
        free(path);
        return e == EWOULDBLOCK ? CASENET_ECONFLICT : CASENET_EIO;
    }
    free(path);
    *fd_out = fd;
    return CASENET_OK;
}

void wj_close(wj *j)
{
    if (!j)
        return;
    sqlite3_finalize(j->get);
    sqlite3_finalize(j->put);
    sqlite3_finalize(j->list);
    sqlite3_close(j->db);
    if (j->lock_fd >= 0)
        close(j->lock_fd);
    free(j);
}

int wj_open(const char *dir, wj **out)
{
    wj *j = calloc(1, sizeof *j);
    if (!j)
        return CASENET_ENOMEM;
    j->lock_fd = -1;
    char *path = NULL;
    int rc = take_lock(dir, &j->lock_fd);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = CASENET_ENOMEM;
    path = cli_path(dir, WATCH_JOURNAL_FILE);
    if (!path)
        goto cleanup;
    /* Created 0600 whatever the umask: it names every message received. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        fprintf(stderr, "casenet: watch: cannot create %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        rc = CASENET_EIO;
        goto cleanup;
    }
    close(fd);
    rc = CASENET_EIO;
    if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        fprintf(stderr, "casenet: watch: cannot open %s: %s\n", path,
                j->db ? sqlite3_errmsg(j->db) : "out of memory");
        goto cleanup;
    }
    sqlite3_busy_timeout(j->db, WJ_BUSY_TIMEOUT_MS);
    if ((rc = exec_sql(j, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", "pragma")) !=
        CASENET_OK)
        goto cleanup;
    if ((rc = migrate(j)) != CASENET_OK)
        goto cleanup;
    rc = CASENET_EIO;
    if (sqlite3_prepare_v2(
            j->db,
            "SELECT state, seq, kind, attempts, next_try_ms, dir_version, receipt, sender "
            "FROM handover WHERE message_id = ?1",
            -1, &j->get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(j->db,
                           "INSERT OR REPLACE INTO handover (message_id, seq, kind, state, "
                           "attempts, next_try_ms, dir_version, receipt, sender, updated_ms) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                           "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
                           -1, &j->put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(j->db, "SELECT message_id FROM handover WHERE state = ?1 ORDER BY seq",
                           -1, &j->list, NULL) != SQLITE_OK) {
        rc = db_fail(j, "prepare");
        goto cleanup;
    }
    *out = j;
    j = NULL;
    rc = CASENET_OK;
cleanup:
    free(path);
    wj_close(j);
    return rc;
}

void wj_row_clear(struct wj_row *row)
{
    if (!row)
        return;
    casenet_buf_free(&row->receipt);
    memset(row, 0, sizeof *row);
}

int wj_get(wj *j, const uint8_t id[CASENET_MESSAGE_ID_BYTES], struct wj_row *row)
{
    memset(row, 0, sizeof *row);
    sqlite3_stmt *st = j->get;
    sqlite3_reset(st);
    if (sqlite3_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC) != SQLITE_OK)
        return db_fail(j, "bind");
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        sqlite3_reset(st);
        return CASENET_OK;
    }
    if (src != SQLITE_ROW) {
        int rc = db_fail(j, "read");
        sqlite3_reset(st);
        return rc;
    }
    int64_t state = sqlite3_column_int64(st, 0);
    int rc = CASENET_OK;
    if (state < WJ_PENDING || state > WJ_REJECTED) {
        fprintf(stderr, "casenet: watch: journal: unknown state %lld\n", (long long)state);
        rc = CASENET_EIO;
        goto done;
    }
    row->state = (enum wj_state)state;
    row->seq = (uint64_t)sqlite3_column_int64(st, 1);
    row->kind = (int)sqlite3_column_int64(st, 2);
    row->attempts = (uint32_t)sqlite3_column_int64(st, 3);
    row->next_try_ms = sqlite3_column_int64(st, 4);
    row->dir_version = (uint64_t)sqlite3_column_int64(st, 5);
    const unsigned char *sender = sqlite3_column_text(st, 7);
    if (sender && cn_strlcpy(row->sender, (const char *)sender, sizeof row->sender) != CASENET_OK)
        row->sender[0] = '\0';
    const void *blob = sqlite3_column_blob(st, 6);
    int blen = sqlite3_column_bytes(st, 6);
    if (blob && blen > 0) {
        if (blen > WJ_RECEIPT_MAX) {
            rc = CASENET_EIO;
            goto done;
        }
        row->receipt.data = malloc((size_t)blen);
        if (!row->receipt.data) {
            rc = CASENET_ENOMEM;
            goto done;
        }
        memcpy(row->receipt.data, blob, (size_t)blen);
        row->receipt.len = (size_t)blen;
    }
done:
    sqlite3_reset(st);
    if (rc != CASENET_OK)
        wj_row_clear(row);
    return rc;
}

int wj_put(wj *j, const uint8_t id[CASENET_MESSAGE_ID_BYTES], const struct wj_row *row)
{
    sqlite3_stmt *st = j->put;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (row->receipt.len > WJ_RECEIPT_MAX)
        return CASENET_EINVAL;
    bool ok = sqlite3_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_int64(st, 2, (sqlite3_int64)row->seq) == SQLITE_OK &&
              sqlite3_bind_int64(st, 3, row->kind) == SQLITE_OK &&
              sqlite3_bind_int64(st, 4, row->state) == SQLITE_OK &&
              sqlite3_bind_int64(st, 5, row->attempts) == SQLITE_OK &&
              sqlite3_bind_int64(st, 6, row->next_try_ms) == SQLITE_OK &&
              sqlite3_bind_int64(st, 7, (sqlite3_int64)row->dir_version) == SQLITE_OK &&
              (row->receipt.len ? sqlite3_bind_blob(st, 8, row->receipt.data, (int)row->receipt.len,
                                                    SQLITE_STATIC)
                                : sqlite3_bind_null(st, 8)) == SQLITE_OK &&
              sqlite3_bind_text(st, 9, row->sender, -1, SQLITE_STATIC) == SQLITE_OK;
    if (!ok)
        return db_fail(j, "bind");
    /* Autocommit: one statement is one durable transaction. */
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? CASENET_OK : db_fail(j, "write");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int wj_list_state(wj *j, enum wj_state state, uint8_t (**ids)[CASENET_MESSAGE_ID_BYTES], size_t *n)
{
    sqlite3_stmt *st = j->list;
    sqlite3_reset(st);
    if (sqlite3_bind_int64(st, 1, state) != SQLITE_OK)
        return db_fail(j, "bind");
    uint8_t(*out)[CASENET_MESSAGE_ID_BYTES] = NULL;
    size_t len = 0, cap = 0;
    int rc = CASENET_OK;
    for (;;) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            break;
        if (src != SQLITE_ROW) {
            rc = db_fail(j, "list");
            break;
        }
        if (sqlite3_column_bytes(st, 0) != CASENET_MESSAGE_ID_BYTES)
            continue; /* not ours: never written by wj_put */
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *bigger = realloc(out, ncap * sizeof *out);
            if (!bigger) {
                rc = CASENET_ENOMEM;
                break;
            }
            out = bigger;
            cap = ncap;
        }
        memcpy(out[len++], sqlite3_column_blob(st, 0), CASENET_MESSAGE_ID_BYTES);
    }
    sqlite3_reset(st);
    if (rc != CASENET_OK) {
        free(out);
        return rc;
    }
    *ids = out;
    *n = len;
    return CASENET_OK;
}
