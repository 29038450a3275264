/* backup_blobs.c - attachment blobs in a backup file: copy, check, restore
 * (backup_blobs.h). */
#include "backup_blobs.h"

#include "blobs.h"
#include "casenet.pb-c.h"
#include "hex.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_LEN     4096
#define LIST_MAX     (16u * 1024u * 1024u) /* a refs or msgs file */
#define META_MAX     512
#define REPORT_MAX   20 /* problems printed by the check */
#define HEX_ID_CHARS (2 * CASENET_BLOB_ID_BYTES)

bool backup_sql_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
        return true;
    fprintf(stderr, "casenetd: %s: %s\n", sql, err ? err : sqlite3_errmsg(db));
    sqlite3_free(err);
    return false;
}

static bool prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
        return true;
    fprintf(stderr, "casenetd: %s: %s\n", sql, sqlite3_errmsg(db));
    return false;
}

/* dir/name into out; false when too long. */
static bool join(char out[PATH_LEN], const char *dir, const char *name)
{
    int n = snprintf(out, PATH_LEN, "%s/%s", dir, name);
    return n > 0 && n < PATH_LEN;
}

/* A file name a blob may hold: meta, refs, msgs or a chunk's index. */
static bool blob_file_name(const char *name)
{
    if (strcmp(name, "meta") == 0 || strcmp(name, "refs") == 0 || strcmp(name, "msgs") == 0)
        return true;
    size_t n = strlen(name);
    return n > 0 && n <= 10 && strspn(name, "0123456789") == n;
}

/* ------------------------------------------------------------ copy */

/* True when the blob in dir is referenced by a message of dst (see
 * backup_blobs.h), its "msgs" read line by line. */
static bool wanted(sqlite3_stmt *in_snapshot, const char *dir)
{
    char path[PATH_LEN], line[80];
    FILE *f = join(path, dir, "msgs") ? fopen(path, "re") : NULL;
    if (!f)
        return join(path, dir, "refs") && access(path, F_OK) == 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        uint8_t msg[CASENET_MESSAGE_ID_BYTES];
        line[strcspn(line, "\n")] = '\0';
        if (!blobs_parse_id(line, msg))
            continue;
        sqlite3_reset(in_snapshot);
        sqlite3_bind_blob(in_snapshot, 1, msg, sizeof msg, SQLITE_TRANSIENT);
        found = sqlite3_step(in_snapshot) == SQLITE_ROW;
    }
    fclose(f);
    return found;
}

/* Inserts every file of the blob hex (directory dir) with ins. */
static bool copy_blob(sqlite3 *dst, sqlite3_stmt *ins, const char *hex, const char *dir,
                      uint64_t *bytes)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "casenetd: cannot read %s: %s\n", dir, strerror(errno));
        return false;
    }
    bool ok = true;
    struct dirent *e;
    char path[PATH_LEN];
    while (ok && (e = readdir(d)) != NULL) {
        if (!blob_file_name(e->d_name))
            continue; /* ".", "..", a chunk's temporary file */
        bool chunk = e->d_name[0] >= '0' && e->d_name[0] <= '9';
        casenet_buf b = {0};
        int rc = join(path, dir, e->d_name)
                     ? cn_read_file(path, chunk ? BLOBS_CHUNK_MAX : LIST_MAX, &b)
                     : CASENET_EIO;
        if (rc != CASENET_OK) {
            fprintf(stderr, "casenetd: cannot read %s: %s\n", path, casenet_strerror(rc));
            ok = false;
            break;
        }
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, hex, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, e->d_name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 3, b.len ? b.data : (const uint8_t *)"", (int)b.len, SQLITE_STATIC);
        ok = sqlite3_step(ins) == SQLITE_DONE;
        if (!ok)
            fprintf(stderr, "casenetd: backup: %s\n", sqlite3_errmsg(dst));
        if (chunk)
            *bytes += b.len;
        casenet_buf_free(&b);
    }
    closedir(d);
    return ok;
}

bool backup_blobs_copy(sqlite3 *dst, const char *data_dir, uint64_t *n, uint64_t *bytes)
{
    char top[PATH_LEN], dir[PATH_LEN];
    *n = *bytes = 0;
    DIR *d = join(top, data_dir, BLOBS_DIR) ? opendir(top) : NULL;
    if (!d && errno != ENOENT) {
        fprintf(stderr, "casenetd: cannot read %s: %s\n", top, strerror(errno));
        return false;
    }
    sqlite3_stmt *in_snapshot = NULL, *ins = NULL;
    bool ok =
        backup_sql_exec(dst, "BEGIN; CREATE TABLE " BACKUP_BLOBS_TABLE " (blob TEXT NOT NULL, "
                             "name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (blob, name))") &&
        prepare(dst, "SELECT 1 FROM messages WHERE message_id = ?", &in_snapshot) &&
        prepare(dst, "INSERT INTO " BACKUP_BLOBS_TABLE " (blob, name, data) VALUES (?, ?, ?)",
                &ins);
    struct dirent *e;
    while (ok && d && (e = readdir(d)) != NULL) {
        uint8_t id[CASENET_BLOB_ID_BYTES];
        if (!blobs_parse_id(e->d_name, id))
            continue;
        if (!join(dir, top, e->d_name) || !wanted(in_snapshot, dir))
            continue;
        ok = copy_blob(dst, ins, e->d_name, dir, bytes);
        *n += ok;
    }
    sqlite3_finalize(in_snapshot);
    sqlite3_finalize(ins);
    if (d)
        closedir(d);
    return ok && backup_sql_exec(dst, "COMMIT");
}

/* ------------------------------------------------------------ check */

struct check {
    const char *file;
    unsigned problems;
};

static void problem(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct check *c, const char *fmt, ...)
{
    if (c->problems++ >= REPORT_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "casenetd: %s: ", c->file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* One blob's chunks against its meta (hex, the meta's text). */
static bool check_blob(sqlite3 *db, struct check *c, const char *hex, const char *meta,
                       uint64_t *bytes)
{
    char owner[CASENET_MEMBER_ID_MAX + 1];
    uint32_t total = 0;
    uint64_t size = 0, sum = 0;
    long long created = 0;
    if (sscanf(meta, "%64s %" SCNu32 " %" SCNu64 " %lld", owner, &total, &size, &created) != 4 ||
        total == 0 || total > CASENET_ATTACH_MAX_CHUNKS) {
        problem(c, "blob %s: its meta is unreadable", hex);
        return true;
    }
    uint8_t *seen = calloc(total, 1);
    sqlite3_stmt *st = NULL;
    if (!seen || !prepare(db,
                          "SELECT name, length(data) FROM " BACKUP_BLOBS_TABLE
                          " WHERE blob = ? AND name NOT IN ('meta', 'refs', 'msgs')",
                          &st)) {
        free(seen);
        return false;
    }
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        uint64_t len = (uint64_t)sqlite3_column_int64(st, 1);
        unsigned long idx = strtoul(name, NULL, 10);
        if (!blob_file_name(name) || idx >= total) {
            problem(c, "blob %s: file %s is not one of its %" PRIu32 " chunks", hex, name, total);
            continue;
        }
        if (len < CASENET_ATTACH_ABYTES || len > BLOBS_CHUNK_MAX)
            problem(c, "blob %s: chunk %lu has %" PRIu64 " bytes (a chunk has %d to %d)", hex, idx,
                    len, CASENET_ATTACH_ABYTES, (int)BLOBS_CHUNK_MAX);
        seen[idx] = 1;
        sum += len;
    }
    sqlite3_finalize(st);
    uint32_t held = 0;
    for (uint32_t i = 0; i < total; i++) {
        if (!seen[i])
            problem(c, "blob %s: chunk %" PRIu32 " of %" PRIu32 " is missing", hex, i, total);
        held += seen[i];
    }
    if (held == total && sum != size)
        problem(c, "blob %s: its chunks hold %" PRIu64 " bytes, its meta says %" PRIu64, hex, sum,
                size);
    free(seen);
    *bytes += sum;
    return true;
}

/* Every blob of the table against its meta; rows of a blob without one. */
static bool check_blobs(sqlite3 *db, struct check *c, uint64_t *n, uint64_t *bytes)
{
    sqlite3_stmt *st = NULL;
    if (!prepare(db,
                 "SELECT b.blob, m.data FROM (SELECT DISTINCT blob FROM " BACKUP_BLOBS_TABLE
                 ") b LEFT JOIN " BACKUP_BLOBS_TABLE
                 " m ON m.blob = b.blob AND m.name = 'meta' ORDER BY b.blob",
                 &st))
        return false;
    bool ok = true;
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(st, 0);
        char meta[META_MAX + 1];
        int len = sqlite3_column_bytes(st, 1);
        (*n)++;
        if (sqlite3_column_type(st, 1) == SQLITE_NULL || len > META_MAX) {
            problem(c, "blob %s: its meta is missing", hex);
            continue;
        }
        memcpy(meta, sqlite3_column_blob(st, 1), (size_t)len);
        meta[len] = '\0';
        ok = check_blob(db, c, hex, meta, bytes);
    }
    sqlite3_finalize(st);
    return ok;
}

/* The blob ids the envelope's header lists (NULL when none or unreadable). */
static Casenet__V1__Header *envelope_header(const uint8_t *env, size_t len)
{
    Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, len, env);
    Casenet__V1__Header *h =
        e ? casenet__v1__header__unpack(NULL, e->header.len, e->header.data) : NULL;
    if (e)
        casenet__v1__envelope__free_unpacked(e, NULL);
    return h;
}

/* Every blob a message still needs is in the table (has its meta): a
 * message not purged, not expired when the snapshot was taken (the broker
 * may delete the blobs of an expired message) and with a row neither
 * completed nor dead. */
static bool check_needed(sqlite3 *db, struct check *c, bool have_table)
{
    sqlite3_stmt *msgs = NULL, *has = NULL;
    bool ok =
        prepare(db,
                "SELECT m.message_id, m.envelope FROM messages m WHERE m.envelope IS NOT "
                "NULL AND (m.expires_at_ms <= 0 OR m.expires_at_ms > (SELECT CAST(CAST(data AS "
                "TEXT) AS INTEGER) FROM casenet_backup WHERE name = 'created_ms')) AND EXISTS "
                "(SELECT 1 FROM inbox i WHERE i.msg = m.id AND i.state "
                "NOT IN (" STORE_SQL(STORE_INBOX_COMPLETED) ", " STORE_SQL(STORE_INBOX_DEAD) "))",
                &msgs) &&
        (!have_table ||
         prepare(db, "SELECT 1 FROM " BACKUP_BLOBS_TABLE " WHERE blob = ? AND name = 'meta'",
                 &has));
    while (ok && sqlite3_step(msgs) == SQLITE_ROW) {
        Casenet__V1__Header *h =
            envelope_header(sqlite3_column_blob(msgs, 1), (size_t)sqlite3_column_bytes(msgs, 1));
        char hex[HEX_ID_CHARS + 1], mhex[2 * CASENET_MESSAGE_ID_BYTES + 1];
        for (size_t i = 0; h && i < h->n_blob_ids; i++) {
            if (h->blob_ids[i].len != CASENET_BLOB_ID_BYTES)
                continue;
            cn_hex(h->blob_ids[i].data, CASENET_BLOB_ID_BYTES, hex);
            bool present = false;
            if (has) {
                sqlite3_reset(has);
                sqlite3_bind_text(has, 1, hex, -1, SQLITE_STATIC);
                present = sqlite3_step(has) == SQLITE_ROW;
            }
            if (!present && sqlite3_column_bytes(msgs, 0) == CASENET_MESSAGE_ID_BYTES) {
                cn_hex(sqlite3_column_blob(msgs, 0), CASENET_MESSAGE_ID_BYTES, mhex);
                problem(c, "blob %s is missing (message %s, not yet completed, references it)", hex,
                        mhex);
            }
        }
        if (h)
            casenet__v1__header__free_unpacked(h, NULL);
    }
    sqlite3_finalize(msgs);
    sqlite3_finalize(has);
    return ok;
}

bool backup_blobs_verify(sqlite3 *db, const char *file)
{
    struct check c = {.file = file};
    uint64_t n = 0, bytes = 0;
    sqlite3_stmt *st = NULL;
    bool have =
        prepare(db, "SELECT count(*) FROM sqlite_master WHERE name = '" BACKUP_BLOBS_TABLE "'",
                &st) &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
    sqlite3_finalize(st);
    if ((have && !check_blobs(db, &c, &n, &bytes)) || !check_needed(db, &c, have))
        return false;
    if (c.problems > REPORT_MAX)
        fprintf(stderr, "casenetd: %s: %u more problems with attachment blobs\n", file,
                c.problems - REPORT_MAX);
    if (c.problems) {
        fprintf(stderr,
                "casenetd: %s: the attachment blobs are incomplete: restoring it, the "
                "recipients cannot download those attachments (take a new backup)\n",
                file);
        return false;
    }
    printf("casenetd: %s: %" PRIu64 " attachment blobs (%" PRIu64 " bytes of chunks) agree with "
           "their metas; their contents are ciphertext, checked by the recipients only\n",
           file, n, bytes);
    return true;
}

/* ------------------------------------------------------------ restore */

bool backup_blobs_restore(sqlite3 *src, const char *data_dir, uint64_t *n)
{
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (!prepare(src, "SELECT count(*) FROM sqlite_master WHERE name = '" BACKUP_BLOBS_TABLE "'",
                 &st))
        return false;
    bool have = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
    sqlite3_finalize(st);
    if (!have)
        return true;
    if (!prepare(src, "SELECT blob, name, data FROM " BACKUP_BLOBS_TABLE " ORDER BY blob", &st))
        return false;
    bool ok = true;
    char last[HEX_ID_CHARS + 1] = "";
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        uint8_t id[CASENET_BLOB_ID_BYTES];
        if (!hex || !name || !blobs_parse_id(hex, id) || !blob_file_name(name)) {
            fprintf(stderr, "casenetd: the backup holds a blob file it may not: %s/%s\n",
                    hex ? hex : "?", name ? name : "?");
            ok = false;
            break;
        }
        int rc = blobs_file_put(data_dir, id, name, sqlite3_column_blob(st, 2),
                                (size_t)sqlite3_column_bytes(st, 2));
        if (rc != CASENET_OK) {
            fprintf(stderr, "casenetd: cannot write blob %s/%s into %s: %s\n", hex, name, data_dir,
                    casenet_strerror(rc));
            ok = false;
        }
        if (strcmp(last, hex) != 0) {
            snprintf(last, sizeof last, "%s", hex);
            (*n)++;
        }
    }
    sqlite3_finalize(st);
    return ok;
}

/* Removes dir and what it holds (files, and directories of files). */
static bool remove_flat(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT;
    struct dirent *e;
    char path[PATH_LEN];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (join(path, dir, e->d_name) && unlink(path) != 0 && errno == EISDIR)
            (void)remove_flat(path);
    }
    closedir(d);
    return rmdir(dir) == 0;
}

bool backup_blobs_remove(const char *data_dir)
{
    char top[PATH_LEN];
    if (join(top, data_dir, BLOBS_DIR) && remove_flat(top))
        return true;
    fprintf(stderr, "casenetd: cannot remove %s: %s\n", top, strerror(errno));
    return false;
}
