/* backup.c - online backup, its verification and its restore (backup.h). */
#include "backup.h"

#include "auditlog.h"
#include "backup_blobs.h"
#include "blobs.h"
#include "broker.h"
#include "checkpoint.h"
#include "directory_impl.h"
#include "store_sqlite_impl.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <sqlite3.h>

#define DB_NAME       "casenet.db"
#define DIRECTORY_MAX (16u * 1024u * 1024u)

/* ------------------------------------------------------------ helpers */

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* Creates path empty with mode 0600 whatever the umask; fails when it
 * exists (O_EXCL: never overwrites a file, never follows a link). */
static bool create_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "casenetd: cannot create %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (choose another name: a backup never overwrites a file)" : "");
        return false;
    }
    bool ok = fchmod(fd, 0600) == 0;
    close(fd);
    return ok;
}

static sqlite3 *db_open(const char *path, int flags)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        fprintf(stderr, "casenetd: cannot open %s: %s\n", path,
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* One integer from sql (its first column), or -1. */
static int64_t db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The blob of row name of casenet_backup into out (malloc'd).
 * CASENET_ENOTFOUND when absent. */
static int meta_get(sqlite3 *db, const char *name, casenet_buf *out)
{
    sqlite3_stmt *st = NULL;
    int rc = CASENET_EUNAVAIL;
    if (sqlite3_prepare_v2(db, "SELECT data FROM casenet_backup WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK)
        goto cleanup;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    rc = s == SQLITE_DONE ? CASENET_ENOTFOUND : CASENET_EUNAVAIL;
    if (s != SQLITE_ROW)
        goto cleanup;
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    out->data = malloc(n + 1);
    if (!out->data) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    if (n)
        memcpy(out->data, sqlite3_column_blob(st, 0), n);
    out->data[n] = 0;
    out->len = n;
    rc = CASENET_OK;
cleanup:
    sqlite3_finalize(st);
    return rc;
}

/* Copies every page of src into dst with the online backup API, in steps of
 * BACKUP_STEP_PAGES. The caller holds a read transaction on src, so that the
 * copy is of one snapshot and the broker's commits never restart it.
 * sync_fd (-1: none), a descriptor of dst's file, is flushed every
 * BACKUP_SYNC_STEPS steps: the disk then never holds more than that much of
 * the copy unwritten, which the broker's own fsyncs would wait behind. */
static bool copy_pages(sqlite3 *src, sqlite3 *dst, int sync_fd)
{
    sqlite3_backup *bk = sqlite3_backup_init(dst, "main", src, "main");
    if (!bk) {
        fprintf(stderr, "casenetd: backup: %s\n", sqlite3_errmsg(dst));
        return false;
    }
    int rc;
    for (unsigned step = 1; (rc = sqlite3_backup_step(bk, BACKUP_STEP_PAGES)) != SQLITE_DONE;
         step++) {
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            break;
        if (sync_fd >= 0 && step % BACKUP_SYNC_STEPS == 0)
            (void)fdatasync(sync_fd); /* pacing only: the commit's fsync is what counts */
        sqlite3_sleep(rc == SQLITE_OK ? BACKUP_PAUSE_MS : 20);
    }
    int frc = sqlite3_backup_finish(bk);
    if (rc != SQLITE_DONE || frc != SQLITE_OK) {
        fprintf(stderr, "casenetd: backup: %s\n", sqlite3_errstr(rc != SQLITE_DONE ? rc : frc));
        return false;
    }
    return true;
}

static bool meta_put(sqlite3 *db, const char *name, const void *data, size_t len)
{
    sqlite3_stmt *st = NULL;
    bool ok = sqlite3_prepare_v2(db, "INSERT INTO casenet_backup (name, data) VALUES (?, ?)", -1,
                                 &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, data, (int)len, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    if (!ok)
        fprintf(stderr, "casenetd: backup: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ok;
}

/* Turns the copy into a backup file: rollback journal (one file), and the
 * casenet_backup table with the format, the directory file and the time. */
static bool add_meta(sqlite3 *dst, const char *data_dir, int64_t created_ms)
{
    char *dirfile = path_join(data_dir, BROKER_DIRECTORY_FILE);
    casenet_buf dir = {0};
    char when[24];
    snprintf(when, sizeof when, "%" PRId64, created_ms);
    bool have_dir = dirfile && cn_read_file(dirfile, DIRECTORY_MAX, &dir) == CASENET_OK;
    bool ok = backup_sql_exec(dst, "PRAGMA journal_mode = DELETE") &&
              backup_sql_exec(dst, "BEGIN; CREATE TABLE casenet_backup (name TEXT PRIMARY KEY, "
                                   "data BLOB NOT NULL)") &&
              meta_put(dst, "format", BACKUP_FORMAT, strlen(BACKUP_FORMAT)) &&
              meta_put(dst, "created_ms", when, strlen(when)) &&
              (!have_dir || meta_put(dst, BROKER_DIRECTORY_FILE, dir.data, dir.len)) &&
              backup_sql_exec(dst, "COMMIT");
    if (!have_dir)
        fprintf(stderr,
                "casenetd: warning: %s is missing: the backup holds the store's newest "
                "directory only\n",
                dirfile ? dirfile : BROKER_DIRECTORY_FILE);
    casenet_buf_free(&dir);
    free(dirfile);
    return ok;
}

/* Writes the backup of data_dir's store and blobs to out (created here);
 * blobs[0], blobs[1]: the blobs copied and their chunk bytes. */
static bool take_backup(const char *data_dir, const char *out, uint64_t blobs[2])
{
    char *dbpath = path_join(data_dir, DB_NAME);
    sqlite3 *src = NULL, *dst = NULL;
    bool ok = false, created = false;
    int sync_fd = -1, lock = -1;
    if (!dbpath)
        return false;
    if (access(dbpath, F_OK) != 0) {
        fprintf(stderr,
                "casenetd: no store in %s (%s: %s); give --data the broker's data "
                "directory\n",
                data_dir, dbpath, strerror(errno));
        goto cleanup;
    }
    if (!(src = db_open(dbpath, SQLITE_OPEN_READONLY)) || !(created = create_private(out)) ||
        !(dst = db_open(out, SQLITE_OPEN_READWRITE)))
        goto cleanup;
    /* Before the snapshot, until the blobs are copied: the broker deletes
     * none of the blobs the snapshot's messages reference. */
    if ((lock = blobs_lock(data_dir, false, true)) < 0 && errno != ENOENT) {
        fprintf(stderr, "casenetd: cannot lock %s/%s/%s: %s; run the backup as the broker's user\n",
                data_dir, BLOBS_DIR, BLOBS_LOCK, strerror(errno));
        goto cleanup;
    }
    /* One read snapshot for the whole copy: in WAL mode it blocks no writer
     * and the broker's commits do not restart the copy. */
    if (!backup_sql_exec(src, "BEGIN") || db_int(src, "SELECT count(*) FROM sqlite_master") < 0)
        goto cleanup;
    int64_t created_ms = cn_now_ms();
    sync_fd = open(out, O_WRONLY | O_CLOEXEC);
    ok = copy_pages(src, dst, sync_fd);
    backup_sql_exec(src, "COMMIT");
    ok = ok && add_meta(dst, data_dir, created_ms) &&
         backup_blobs_copy(dst, data_dir, &blobs[0], &blobs[1]);
cleanup:
    if (lock >= 0)
        close(lock);
    sqlite3_close(src);
    if (dst && sqlite3_close(dst) != SQLITE_OK)
        ok = false;
    if (sync_fd >= 0) /* after SQLite's: a close drops the process's locks on the file */
        close(sync_fd);
    if (!ok && created)
        unlink(out);
    free(dbpath);
    return ok;
}

int backup_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'}, {"out", required_argument, NULL, 'o'}, {0}};
    const char *data = NULL, *out = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'd')
            data = optarg;
        else if (o == 'o')
            out = optarg;
        else
            return 2;
    }
    if (!data || !out || optind != argc) {
        fputs("usage: casenetd backup --data DIR --out FILE\n", stderr);
        return 2;
    }
    int64_t t0 = cn_mono_ms();
    uint64_t blobs[2] = {0};
    if (!take_backup(data, out, blobs))
        return 1;
    struct stat st;
    if (stat(out, &st) != 0)
        return 1;
    printf("casenetd: backup of %s written to %s (%lld bytes, %" PRIu64 " attachment blobs of "
           "%" PRIu64 " bytes, %.1f s); check it with casenetd verify-backup %s --authority FILE\n",
           data, out, (long long)st.st_size, blobs[0], blobs[1],
           (double)(cn_mono_ms() - t0) / 1000.0, out);
    return 0;
}

/* ------------------------------------------------------------ verify */

/* The one place the backup's log meets the verifier (auditlog.h): feeds
 * every event of db in index order, each head right after the event that
 * brings the log to its size, and finishes. counts: events, heads verified,
 * events after the last head. */
static int verify_log(sqlite3 *db, const struct auditv_config *cfg, uint64_t counts[3],
                      struct auditv_failure *fail)
{
    struct auditv *v = NULL;
    sqlite3_stmt *ev = NULL, *hd = NULL;
    int rc = auditv_new(cfg, NULL, 0, &v);
    if (rc != CASENET_OK)
        return rc;
    rc = CASENET_EUNAVAIL;
    if (sqlite3_prepare_v2(db, "SELECT event FROM audit ORDER BY idx", -1, &ev, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT size, checkpoint FROM tree_heads ORDER BY size", -1, &hd,
                           NULL) != SQLITE_OK)
        goto cleanup;
    uint64_t n = 0;
    int hs = sqlite3_step(hd), es;
    rc = CASENET_OK;
    while (rc == CASENET_OK && (es = sqlite3_step(ev)) == SQLITE_ROW) {
        rc = auditv_event(v, sqlite3_column_blob(ev, 0), (size_t)sqlite3_column_bytes(ev, 0));
        n++;
        for (; rc == CASENET_OK && hs == SQLITE_ROW && (uint64_t)sqlite3_column_int64(hd, 0) <= n;
             hs = sqlite3_step(hd))
            rc = auditv_checkpoint(v, sqlite3_column_blob(hd, 1),
                                   (size_t)sqlite3_column_bytes(hd, 1));
    }
    for (; rc == CASENET_OK && hs == SQLITE_ROW; hs = sqlite3_step(hd)) /* heads past the log */
        rc = auditv_checkpoint(v, sqlite3_column_blob(hd, 1), (size_t)sqlite3_column_bytes(hd, 1));
    if (rc == CASENET_OK)
        rc = auditv_finish(v, NULL);
    auditv_counts(v, &counts[0], &counts[1], &counts[2]);
    *fail = *auditv_failure(v);
cleanup:
    sqlite3_finalize(ev);
    sqlite3_finalize(hd);
    auditv_free(v);
    return rc;
}

/* The newest directory of the backup: its directory.pb, else the store's
 * latest row; verified with the authority key, expired or not. */
static int backup_directory(sqlite3 *db, const uint8_t authority_pk[32], casenet_directory **d)
{
    casenet_buf buf = {0};
    int rc = meta_get(db, BROKER_DIRECTORY_FILE, &buf);
    if (rc == CASENET_ENOTFOUND) {
        sqlite3_stmt *st = NULL;
        rc = CASENET_ENOTFOUND;
        if (sqlite3_prepare_v2(db, "SELECT signed FROM directories ORDER BY version DESC LIMIT 1",
                               -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            size_t n = (size_t)sqlite3_column_bytes(st, 0);
            if ((buf.data = malloc(n + 1)) != NULL) {
                memcpy(buf.data, sqlite3_column_blob(st, 0), n);
                buf.len = n;
                rc = CASENET_OK;
            }
        }
        sqlite3_finalize(st);
    }
    if (rc == CASENET_OK)
        rc = cn_directory_parse_ex(buf.data, buf.len, authority_pk, cn_now_ms(), 0, false, d);
    casenet_buf_free(&buf);
    return rc;
}

/* Integrity, format and schema version of an open backup; prints the
 * problem. quick: PRAGMA quick_check instead of integrity_check. */
static bool check_file(sqlite3 *db, const char *file, bool quick)
{
    sqlite3_stmt *st = NULL;
    bool ok = sqlite3_prepare_v2(db, quick ? "PRAGMA quick_check" : "PRAGMA integrity_check", -1,
                                 &st, NULL) == SQLITE_OK &&
              sqlite3_step(st) == SQLITE_ROW &&
              strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    if (!ok)
        fprintf(stderr, "casenetd: %s is damaged: %s\n", file,
                st && sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0)
                                                 : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!ok)
        return false;
    casenet_buf fmt = {0};
    ok = meta_get(db, "format", &fmt) == CASENET_OK && fmt.len == strlen(BACKUP_FORMAT) &&
         memcmp(fmt.data, BACKUP_FORMAT, fmt.len) == 0;
    casenet_buf_free(&fmt);
    if (!ok) {
        fprintf(stderr, "casenetd: %s is not a casenetd backup (%s)\n", file, BACKUP_FORMAT);
        return false;
    }
    int64_t version = db_int(db, "PRAGMA user_version"), known = 0;
    while (sq_migration_sql((size_t)known))
        known++;
    if (version < 1 || version > known) {
        fprintf(stderr,
                "casenetd: %s has schema version %lld; this casenetd knows 1 to %lld: "
                "restore it with the casenetd that wrote it\n",
                file, (long long)version, (long long)known);
        return false;
    }
    return true;
}

/* Checks the backup's audit log with the directory's broker key. */
static bool check_log(sqlite3 *db, const char *file, const casenet_directory *d)
{
    casenet_member me;
    char origin[CKPT_ORIGIN_MAX + 1];
    const char *network = cn_directory_audit_network(d);
    if (casenet_directory_broker(d, &me) != CASENET_OK || !me.sign_pk || !network ||
        ckpt_origin(network, origin) != CASENET_OK) {
        fprintf(stderr, "casenetd: the backup's directory names no broker signing key\n");
        return false;
    }
    struct auditv_config cfg = {.origin = origin, .key_name = me.id, .sign_pk = me.sign_pk};
    uint64_t counts[3] = {0};
    struct auditv_failure fail = {0};
    int rc = verify_log(db, &cfg, counts, &fail);
    if (rc != CASENET_OK) {
        fprintf(stderr, "casenetd: %s: the audit log does not verify: %s (%s)\n", file,
                fail.reason[0] ? fail.reason : casenet_strerror(rc), casenet_errname(rc));
        return false;
    }
    printf("casenetd: %s: audit log of %" PRIu64 " events verified against %" PRIu64
           " signed heads (%" PRIu64 " events after the last head)\n",
           file, counts[0], counts[1], counts[2]);
    return true;
}

int backup_verify_main(int argc, char **argv)
{
    static const struct option opts[] = {{"authority", required_argument, NULL, 'a'}, {0}};
    const char *authority = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o != 'a')
            return 2;
        authority = optarg;
    }
    if (!authority || optind != argc - 1) {
        fputs("usage: casenetd verify-backup FILE --authority FILE\n", stderr);
        return 2;
    }
    const char *file = argv[optind];
    uint8_t pk[32];
    int rc = casenet_authority_pk_load(authority, pk);
    if (rc != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot load the authority key %s: %s\n", authority,
                casenet_strerror(rc));
        return 1;
    }
    sqlite3 *db = db_open(file, SQLITE_OPEN_READONLY);
    casenet_directory *d = NULL;
    int exit_code = 1;
    if (!db || !check_file(db, file, false))
        goto cleanup;
    if ((rc = backup_directory(db, pk, &d)) != CASENET_OK) {
        fprintf(stderr, "casenetd: %s: no directory that verifies with %s: %s\n", file, authority,
                casenet_strerror(rc));
        goto cleanup;
    }
    if (!check_log(db, file, d) || !backup_blobs_verify(db, file))
        goto cleanup;
    printf("casenetd: %s is a good backup (schema version %lld, directory version %llu)\n", file,
           (long long)db_int(db, "PRAGMA user_version"),
           (unsigned long long)casenet_directory_version(d));
    exit_code = 0;
cleanup:
    casenet_directory_free(d);
    sqlite3_close(db);
    return exit_code;
}

/* ------------------------------------------------------------ restore */

/* Makes dir an empty 0700 directory: refuses one holding anything unless
 * force, which removes the store's files and directory.pb only. */
static bool prepare_dir(const char *dir, bool force)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "casenetd: cannot create %s: %s\n", dir, strerror(errno));
        return false;
    }
    DIR *dp = opendir(dir);
    if (!dp || chmod(dir, 0700) != 0) {
        fprintf(stderr, "casenetd: cannot use %s: %s\n", dir, strerror(errno));
        if (dp)
            closedir(dp);
        return false;
    }
    bool empty = true;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(dp);
    if (empty)
        return true;
    if (!force) {
        fprintf(stderr,
                "casenetd: %s is not empty: stop the broker and restore into a new "
                "directory, or add --force to replace its store, directory.pb and blobs\n",
                dir);
        return false;
    }
    static const char *const files[] = {DB_NAME, DB_NAME "-wal", DB_NAME "-shm", DB_NAME "-journal",
                                        BROKER_DIRECTORY_FILE};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = path_join(dir, files[i]);
        if (!p || (unlink(p) != 0 && errno != ENOENT)) {
            fprintf(stderr, "casenetd: cannot remove %s: %s\n", p ? p : files[i], strerror(errno));
            free(p);
            return false;
        }
        free(p);
    }
    return backup_blobs_remove(dir);
}

/* The restored store: marked, the backup's tables dropped (and the space
 * the blobs took given back), WAL mode. */
static bool mark_restored(sqlite3 *db)
{
    char sql[400];
    bool had_blobs =
        db_int(db, "SELECT count(*) FROM sqlite_master WHERE name = '" BACKUP_BLOBS_TABLE "'") > 0;
    snprintf(sql, sizeof sql,
             "BEGIN; DROP TABLE casenet_backup; DROP TABLE IF EXISTS " BACKUP_BLOBS_TABLE ";"
             "CREATE TABLE restore_marker ("
             " id INTEGER PRIMARY KEY CHECK (id = 1), restored_size INTEGER NOT NULL,"
             " restored_at_ms INTEGER NOT NULL);"
             "INSERT INTO restore_marker VALUES (1, (SELECT count(*) FROM audit), %" PRId64 ");"
             "COMMIT",
             cn_now_ms());
    return backup_sql_exec(db, sql) && (!had_blobs || backup_sql_exec(db, "VACUUM")) &&
           backup_sql_exec(db, "PRAGMA journal_mode = WAL");
}

/* Writes the backup's directory file into dir (0600, O_EXCL). */
static bool restore_directory(sqlite3 *src, const char *dir)
{
    casenet_buf buf = {0};
    int rc = meta_get(src, BROKER_DIRECTORY_FILE, &buf);
    if (rc == CASENET_ENOTFOUND)
        return true; /* the broker falls back to --directory and the store's copy */
    char *p = path_join(dir, BROKER_DIRECTORY_FILE);
    bool ok = rc == CASENET_OK && p && create_private(p);
    FILE *f = ok ? fopen(p, "wb") : NULL;
    ok = f && fwrite(buf.data, 1, buf.len, f) == buf.len;
    if (f && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        ok = false;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "casenetd: cannot write %s\n", p ? p : BROKER_DIRECTORY_FILE);
    casenet_buf_free(&buf);
    free(p);
    return ok;
}

int backup_restore_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'}, {"force", no_argument, NULL, 'f'}, {0}};
    const char *data = NULL;
    bool force = false;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'd')
            data = optarg;
        else if (o == 'f')
            force = true;
        else
            return 2;
    }
    if (!data || optind != argc - 1) {
        fputs("usage: casenetd restore FILE --data DIR [--force]\n"
              "       casenetd restore --new-epoch|--replay EXPORT [--last-head FILE] "
              "--config FILE\n",
              stderr);
        return 2;
    }
    const char *file = argv[optind];
    char *dbpath = path_join(data, DB_NAME);
    sqlite3 *src = db_open(file, SQLITE_OPEN_READONLY), *dst = NULL;
    bool ok = false, created = false;
    if (!dbpath || !src || !check_file(src, file, true) || !prepare_dir(data, force) ||
        !(created = create_private(dbpath)) || !(dst = db_open(dbpath, SQLITE_OPEN_READWRITE)))
        goto cleanup;
    uint64_t n_blobs = 0;
    ok = copy_pages(src, dst, -1) && mark_restored(dst) && restore_directory(src, data) &&
         backup_blobs_restore(src, data, &n_blobs);
    struct backup_marker m = {0};
    if (ok) {
        m.restored_size = (uint64_t)db_int(dst, "SELECT restored_size FROM restore_marker");
        m.restored_at_ms = cn_now_ms();
    }
    if (sqlite3_close(dst) != SQLITE_OK)
        ok = false;
    dst = NULL;
    if (ok) {
        printf("casenetd: %s restored into %s (audit log of %" PRIu64 " events, %" PRIu64
               " attachment blobs)\n",
               file, data, m.restored_size, n_blobs);
        backup_marker_explain(data, &m);
    }
cleanup:
    sqlite3_close(dst);
    sqlite3_close(src);
    if (!ok && created && prepare_dir(data, true)) /* nothing half-restored stays */
        fprintf(stderr, "casenetd: nothing was restored into %s\n", data);
    free(dbpath);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------ marker */

int backup_marker_get(const char *data_dir, bool *present, struct backup_marker *m)
{
    *present = false;
    char *dbpath = path_join(data_dir, DB_NAME);
    if (!dbpath)
        return CASENET_ENOMEM;
    if (access(dbpath, F_OK) != 0) {
        free(dbpath);
        return CASENET_OK;
    }
    sqlite3 *db = db_open(dbpath, SQLITE_OPEN_READWRITE);
    free(dbpath);
    if (!db)
        return CASENET_EUNAVAIL;
    int rc = CASENET_EUNAVAIL;
    sqlite3_stmt *st = NULL;
    if (db_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'restore_marker'") == 0) {
        rc = CASENET_OK;
    } else if (sqlite3_prepare_v2(db, "SELECT restored_size, restored_at_ms FROM restore_marker",
                                  -1, &st, NULL) == SQLITE_OK) {
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            m->restored_size = (uint64_t)sqlite3_column_int64(st, 0);
            m->restored_at_ms = sqlite3_column_int64(st, 1);
            *present = true;
        }
        rc = s == SQLITE_ROW || s == SQLITE_DONE ? CASENET_OK : CASENET_EUNAVAIL;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int backup_marker_clear(const char *data_dir)
{
    char *dbpath = path_join(data_dir, DB_NAME);
    sqlite3 *db = dbpath ? db_open(dbpath, SQLITE_OPEN_READWRITE) : NULL;
    bool ok = db && backup_sql_exec(db, "DROP TABLE IF EXISTS restore_marker");
    sqlite3_close(db);
    free(dbpath);
    return ok ? CASENET_OK : CASENET_EUNAVAIL;
}

void backup_marker_explain(const char *data_dir, const struct backup_marker *m)
{
    fprintf(stderr,
            "casenetd: the store in %s was restored from a backup (audit log of %" PRIu64
            " events) and does not serve until you decide how its log goes on, so that it "
            "never signs an index again with other events:\n"
            "  from a coordinator, take the newest head it holds (the file audit.state of its\n"
            "  home, written by casenet audit verify) and its export (casenet audit export), then\n"
            "    casenetd restore --replay EXPORT --last-head audit.state --config FILE\n"
            "  re-appends the events lost since the backup, byte for byte, or\n"
            "    casenetd restore --new-epoch --last-head audit.state --config FILE\n"
            "  starts a new epoch: the events after %" PRIu64 " are recorded as lost.\n"
            "  docs/operations.md, \"Backup and restore\", explains both.\n",
            data_dir, m->restored_size, m->restored_size);
}
