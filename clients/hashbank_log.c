/* hashbank_log.c - what a console page or `casenet hashes stats` reads from
 * the bank beyond its entries (see hashbank.h): the figures per source (the
 * counts table hashbank.c keeps on every apply), the matches `casenet hashes
 * match` recorded and the feedback sent and received, newest first, by page.
 * Nothing here holds file content: a match records the entry it hit. */
#include "hashbank.h"
#include "hashbank_impl.h"

#include <stdio.h>
#include <string.h>

int hashbank_each_source(hashbank *b, int (*fn)(const struct hashbank_source *, void *), void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (hashbank_prepare(b,
                         "SELECT contributor, category, live, retracted, updated_ms FROM counts"
                         " WHERE live > 0 OR retracted > 0 ORDER BY contributor, category",
                         &st) != CASENET_OK)
        return CASENET_EIO;
    /* rows come grouped by contributor: one callback when the name changes */
    char name[HASHBANK_SOURCE_MAX + CASENET_MEMBER_ID_MAX + 8] = "";
    struct hashbank_source s = {.source = name};
    bool have = false;
    int rc = CASENET_OK, src = SQLITE_DONE;
    while (rc == CASENET_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *who = (const char *)sqlite3_column_text(st, 0);
        if (have && strcmp(who, name) != 0) {
            rc = fn(&s, ctx);
            have = false;
        }
        if (rc != CASENET_OK)
            break;
        if (!have) {
            memset(&s, 0, sizeof s);
            s.source = name;
            snprintf(name, sizeof name, "%s", who);
            have = true;
        }
        int c = sqlite3_column_int(st, 1);
        uint64_t live = (uint64_t)sqlite3_column_int64(st, 2);
        if (c >= 1 && c <= 3)
            s.live[c] += live;
        s.live_total += live;
        s.retracted += (uint64_t)sqlite3_column_int64(st, 3);
        int64_t at = sqlite3_column_int64(st, 4);
        s.updated_ms = at > s.updated_ms ? at : s.updated_ms;
    }
    if (rc == CASENET_OK && src != SQLITE_DONE)
        rc = CASENET_EIO;
    if (rc == CASENET_OK && have)
        rc = fn(&s, ctx);
    sqlite3_finalize(st);
    return rc;
}

int hashbank_record_match(hashbank *b, const char *signal_type, const char *value,
                          unsigned distance, const char *label, size_t *n)
{
    *n = 0;
    char cut[HASHBANK_LABEL_MAX + 1];
    snprintf(cut, sizeof cut, "%s", label ? label : "");
    sqlite3_stmt *st = NULL;
    /* a lookup must not wait for a long import holding the write lock */
    sqlite3_busy_timeout(b->db, HASHBANK_RECORD_WAIT_MS);
    int began = sqlite3_exec(b->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_busy_timeout(b->db, HASHBANK_BUSY_MS);
    if (began != SQLITE_OK)
        return CASENET_ETIMEDOUT;
    int rc = hashbank_prepare(b,
                              "INSERT INTO matches SELECT ?, signal_type, value, category,"
                              " contributor, ?, ? FROM entries WHERE signal_type = ?"
                              " AND value = ? AND retracted = 0",
                              &st);
    if (rc == CASENET_OK) {
        sqlite3_bind_int64(st, 1, hashbank_now_ms());
        sqlite3_bind_int(st, 2, (int)distance);
        sqlite3_bind_text(st, 3, cut, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, signal_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, value, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
        *n = rc == CASENET_OK ? (size_t)sqlite3_changes(b->db) : 0;
    }
    sqlite3_finalize(st);
    /* keep the newest HASHBANK_MATCHES_KEPT (rowids only grow), pruned
     * once in 256 inserts: a bank holds at most 255 rows over for a while */
    if (rc == CASENET_OK && *n && sqlite3_last_insert_rowid(b->db) % 256 < (sqlite3_int64)*n &&
        sqlite3_exec(b->db,
                     "DELETE FROM matches WHERE rowid <= (SELECT max(rowid) FROM matches) - 10000",
                     NULL, NULL, NULL) != SQLITE_OK)
        rc = CASENET_EIO;
    if (rc == CASENET_OK && sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return CASENET_OK;
    sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
    *n = 0;
    return CASENET_EIO;
}
_Static_assert(HASHBANK_MATCHES_KEPT == 10000, "the DELETE above keeps 10000");

static int total_of(hashbank *b, const char *sql, uint64_t *total)
{
    sqlite3_stmt *st = NULL;
    int rc = hashbank_prepare(b, sql, &st);
    if (rc == CASENET_OK && sqlite3_step(st) == SQLITE_ROW)
        *total = (uint64_t)sqlite3_column_int64(st, 0);
    else
        rc = CASENET_EIO;
    sqlite3_finalize(st);
    return rc;
}

int hashbank_each_match(hashbank *b, size_t offset, size_t limit,
                        int (*fn)(const struct hashbank_match *, void *), void *ctx,
                        uint64_t *total)
{
    sqlite3_stmt *st = NULL;
    *total = 0;
    if (total_of(b, "SELECT count(*) FROM matches", total) != CASENET_OK ||
        hashbank_prepare(b,
                         "SELECT at_ms, signal_type, value, contributor, label, category, distance"
                         " FROM matches ORDER BY rowid DESC LIMIT ? OFFSET ?",
                         &st) != CASENET_OK)
        return CASENET_EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)offset);
    int rc = CASENET_OK, src = SQLITE_DONE;
    while (rc == CASENET_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        struct hashbank_match m = {
            .at_ms = sqlite3_column_int64(st, 0),
            .signal_type = (const char *)sqlite3_column_text(st, 1),
            .value = (const char *)sqlite3_column_text(st, 2),
            .contributor = (const char *)sqlite3_column_text(st, 3),
            .label = (const char *)sqlite3_column_text(st, 4),
            .category = sqlite3_column_int(st, 5),
            .distance = (unsigned)sqlite3_column_int(st, 6),
        };
        rc = fn(&m, ctx);
    }
    if (rc == CASENET_OK && src != SQLITE_DONE)
        rc = CASENET_EIO;
    sqlite3_finalize(st);
    return rc;
}

int hashbank_record_sent_feedback(hashbank *b, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                  const char *recipients, int64_t created_ms, int kind,
                                  const char *signal_type, const char *value, uint32_t match_count,
                                  const char *note)
{
    sqlite3_stmt *st = NULL;
    if (hashbank_prepare(b,
                         "INSERT OR IGNORE INTO feedback_sent VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?)",
                         &st) != CASENET_OK)
        return CASENET_EIO;
    sqlite3_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, recipients, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, created_ms);
    sqlite3_bind_int(st, 4, kind);
    sqlite3_bind_text(st, 5, signal_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, match_count);
    sqlite3_bind_text(st, 8, note ? note : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
    sqlite3_finalize(st);
    return rc;
}

int hashbank_feedback_page(hashbank *b, bool sent, size_t offset, size_t limit,
                           int (*fn)(const struct hashbank_feedback *, void *), void *ctx,
                           uint64_t *total)
{
    sqlite3_stmt *st = NULL;
    *total = 0;
    if (total_of(b, sent ? "SELECT count(*) FROM feedback_sent" : "SELECT count(*) FROM feedback",
                 total) != CASENET_OK ||
        hashbank_prepare(b,
                         sent ? "SELECT recipient, signal_type, value, note, kind, match_count,"
                                " created_ms FROM feedback_sent"
                                " ORDER BY created_ms DESC, message_id, item LIMIT ? OFFSET ?"
                              : "SELECT sender, signal_type, value, note, kind, match_count,"
                                " created_ms FROM feedback"
                                " ORDER BY created_ms DESC, message_id, item LIMIT ? OFFSET ?",
                         &st) != CASENET_OK)
        return CASENET_EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)offset);
    int rc = CASENET_OK, src = SQLITE_DONE;
    while (rc == CASENET_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *peer = (const char *)sqlite3_column_text(st, 0);
        struct hashbank_feedback f = {
            .sender = sent ? NULL : peer,
            .recipient = sent ? peer : NULL,
            .signal_type = (const char *)sqlite3_column_text(st, 1),
            .value = (const char *)sqlite3_column_text(st, 2),
            .note = (const char *)sqlite3_column_text(st, 3),
            .kind = sqlite3_column_int(st, 4),
            .match_count = (uint32_t)sqlite3_column_int64(st, 5),
            .created_ms = sqlite3_column_int64(st, 6),
        };
        rc = fn(&f, ctx);
    }
    if (rc == CASENET_OK && src != SQLITE_DONE)
        rc = CASENET_EIO;
    sqlite3_finalize(st);
    return rc;
}
