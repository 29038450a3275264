/* hashbank.c - the local hash bank in SQLite (see hashbank.h): applying
 * HASH_SHARE messages as PROTOCOL.md §6.2 says, and reading the bank back.
 * Entries are keyed (signal_type, value, contributor), so a lookup is a
 * prefix of the primary key; a retraction leaves a tombstone (retracted = 1)
 * so that an older add arriving later cannot bring the entry back. */
#include "hashbank.h"
#include "hashbank_impl.h"

#include "casenet.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA cache_size=-65536;" /* 64 MiB: a million random keys without thrashing */
    "CREATE TABLE IF NOT EXISTS applied(message_id BLOB PRIMARY KEY, sender TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, applied_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS entries(signal_type TEXT NOT NULL, value TEXT NOT NULL,"
    " contributor TEXT NOT NULL, category INTEGER NOT NULL, pdq_quality INTEGER NOT NULL,"
    " first_seen_ms INTEGER NOT NULL, reference TEXT NOT NULL, updated_ms INTEGER NOT NULL,"
    " retracted INTEGER NOT NULL, message_id BLOB NOT NULL,"
    " PRIMARY KEY(signal_type, value, contributor)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS feedback(message_id BLOB NOT NULL, item INTEGER NOT NULL,"
    " sender TEXT NOT NULL, created_ms INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " signal_type TEXT NOT NULL, value TEXT NOT NULL, match_count INTEGER NOT NULL,"
    " note TEXT NOT NULL, PRIMARY KEY(message_id, item));"
    "CREATE TABLE IF NOT EXISTS sources(name TEXT PRIMARY KEY, imported_ms INTEGER NOT NULL,"
    " redistribute TEXT NOT NULL);"
    /* version 2: the figures per source and category (kept by every apply),
     * the matches `casenet hashes match` found and the feedback sent */
    "CREATE TABLE IF NOT EXISTS counts(contributor TEXT NOT NULL, category INTEGER NOT NULL,"
    " live INTEGER NOT NULL, retracted INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY(contributor, category)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS matches(at_ms INTEGER NOT NULL, signal_type TEXT NOT NULL,"
    " value TEXT NOT NULL, category INTEGER NOT NULL, contributor TEXT NOT NULL,"
    " distance INTEGER NOT NULL, label TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS feedback_sent(message_id BLOB NOT NULL, item INTEGER NOT NULL,"
    " recipient TEXT NOT NULL, created_ms INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " signal_type TEXT NOT NULL, value TEXT NOT NULL, match_count INTEGER NOT NULL,"
    " note TEXT NOT NULL, PRIMARY KEY(message_id, item));";

/* Brings a bank of an older version (user_version 0: the banks made before
 * versions were recorded, with or without entries.imported_ms) to
 * HASHBANK_SCHEMA_VERSION in one transaction: the missing column (0 =
 * unknown), and the per-source counts computed once from the entries.
 * CASENET_EINVAL for a bank a newer casenet made. */
static int schema_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return version;
}

static int migrate(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int version = schema_version(db), has_imported = 0, rc = CASENET_EIO;
    /* the usual case reads only: no write lock, so a long import elsewhere
     * does not hold up a lookup or a page that opens the bank */
    if (version == HASHBANK_SCHEMA_VERSION)
        return CASENET_OK;
    if (version > HASHBANK_SCHEMA_VERSION)
        return CASENET_EINVAL;
    version = -1;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return CASENET_EIO;
    if (sqlite3_prepare_v2(db,
                           "SELECT (SELECT user_version FROM pragma_user_version),"
                           " (SELECT count(*) FROM pragma_table_info('entries')"
                           " WHERE name = 'imported_ms')",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
        has_imported = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    if (version < 0)
        goto rollback;
    if (version > HASHBANK_SCHEMA_VERSION) {
        rc = CASENET_EINVAL;
        goto rollback;
    }
    if (version == HASHBANK_SCHEMA_VERSION) {
        rc = CASENET_OK;
        goto rollback; /* migrated by another process meanwhile */
    }
    if ((!has_imported && sqlite3_exec(db,
                                       "ALTER TABLE entries ADD COLUMN imported_ms INTEGER"
                                       " NOT NULL DEFAULT 0",
                                       NULL, NULL, NULL) != SQLITE_OK) ||
        sqlite3_exec(db,
                     "DELETE FROM counts;"
                     "INSERT INTO counts SELECT contributor, category, sum(retracted = 0),"
                     " sum(retracted != 0), max(updated_ms) FROM entries"
                     " GROUP BY contributor, category;"
                     "PRAGMA user_version = 2;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto rollback;
    return CASENET_OK;
rollback:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
_Static_assert(HASHBANK_SCHEMA_VERSION == 2, "migrate() sets user_version = 2");

int hashbank_prepare(hashbank *b, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(b->db, sql, -1, st, NULL) == SQLITE_OK ? CASENET_OK : CASENET_EIO;
}
#define prepare hashbank_prepare

int hashbank_open(const char *path, hashbank **out)
{
    hashbank *b = calloc(1, sizeof *b);
    if (!b)
        return CASENET_ENOMEM;
    int rc = CASENET_EIO;
    mode_t old = umask(077);
    int src = sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    umask(old);
    if (src != SQLITE_OK)
        goto cleanup;
    sqlite3_busy_timeout(b->db, HASHBANK_BUSY_MS);
    if (sqlite3_exec(b->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        (rc = migrate(b->db)) != CASENET_OK)
        goto cleanup;
    rc = CASENET_EIO;
    if (prepare(b,
                "SELECT updated_ms, retracted, category FROM entries"
                " WHERE signal_type = ? AND value = ? AND contributor = ?",
                &b->get) != CASENET_OK ||
        prepare(b,
                "INSERT OR REPLACE INTO entries(signal_type, value, contributor, category,"
                " pdq_quality, first_seen_ms, reference, updated_ms, retracted, message_id,"
                " imported_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &b->put) != CASENET_OK ||
        prepare(b, "INSERT OR IGNORE INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &b->feedback) != CASENET_OK ||
        prepare(b,
                "SELECT count(*) FROM entries WHERE signal_type = ? AND value = ?"
                " AND retracted = 0",
                &b->lookup) != CASENET_OK)
        goto cleanup;
    *out = b;
    return CASENET_OK;
cleanup:
    hashbank_free(b);
    return rc;
}

void hashbank_free(hashbank *b)
{
    if (!b)
        return;
    sqlite3_finalize(b->get);
    sqlite3_finalize(b->put);
    sqlite3_finalize(b->feedback);
    sqlite3_finalize(b->lookup);
    sqlite3_close(b->db);
    free(b);
}

bool hashbank_applied(hashbank *b, const uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    sqlite3_stmt *st = NULL;
    bool found = false;
    if (prepare(b, "SELECT 1 FROM applied WHERE message_id = ?", &st) == CASENET_OK &&
        sqlite3_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC) == SQLITE_OK)
        found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

/* What the bank holds for one signal of one contributor. */
struct held {
    bool exists, retracted;
    int64_t updated_ms;
    int category;
};

static int get(hashbank *b, const char *type, const char *value, const char *who, struct held *h)
{
    sqlite3_stmt *st = b->get;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, who, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    memset(h, 0, sizeof *h);
    if (src == SQLITE_ROW) {
        h->exists = true;
        h->updated_ms = sqlite3_column_int64(st, 0);
        h->retracted = sqlite3_column_int(st, 1) != 0;
        h->category = sqlite3_column_int(st, 2);
        return CASENET_OK;
    }
    return src == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
}

/* The event one entry or retraction applies. */
struct event {
    const char *type, *value, *who, *reference;
    int category;
    unsigned quality;
    int64_t first_seen_ms, at_ms, imported_ms;
    bool retract;
    const uint8_t *id;
};

static int put(hashbank *b, const struct event *e)
{
    sqlite3_stmt *st = b->put;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, e->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->value, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->who, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, e->category);
    sqlite3_bind_int(st, 5, (int)e->quality);
    sqlite3_bind_int64(st, 6, e->first_seen_ms);
    sqlite3_bind_text(st, 7, e->reference ? e->reference : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, e->at_ms);
    sqlite3_bind_int(st, 9, e->retract);
    sqlite3_bind_blob(st, 10, e->id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, e->imported_ms);
    return sqlite3_step(st) == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
}

/* What one message (or list import) changed in the counts of its one
 * contributor, by category (0: a retraction that came before its add):
 * written to the counts table once, at the end (flush_tally). */
struct tally {
    int64_t live[4], retracted[4], last_ms[4];
    bool touched[4];
};

static void tally_add(struct tally *t, int category, bool retracted, int d, int64_t at)
{
    if (category < 0 || category > 3)
        category = 0; /* unreachable: the payload check bounds categories */
    (retracted ? t->retracted : t->live)[category] += d;
    t->touched[category] = true;
    if (d > 0 && at > t->last_ms[category])
        t->last_ms[category] = at;
}

static int flush_tally(hashbank *b, const char *who, const struct tally *t)
{
    sqlite3_stmt *st = NULL;
    if (prepare(b,
                "INSERT INTO counts VALUES (?, ?, ?, ?, ?) ON CONFLICT(contributor, category)"
                " DO UPDATE SET live = live + excluded.live,"
                " retracted = retracted + excluded.retracted,"
                " updated_ms = max(updated_ms, excluded.updated_ms)",
                &st) != CASENET_OK)
        return CASENET_EIO;
    int rc = CASENET_OK;
    for (int c = 0; rc == CASENET_OK && c < 4; c++) {
        if (!t->touched[c])
            continue;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, who, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, c);
        sqlite3_bind_int64(st, 3, t->live[c]);
        sqlite3_bind_int64(st, 4, t->retracted[c]);
        sqlite3_bind_int64(st, 5, t->last_ms[c]);
        rc = sqlite3_step(st) == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Applies one event unless the bank holds a newer one for its signal: an add
 * loses to a retraction as new as itself, a retraction to a newer add only.
 * What it changed goes to t. */
static int apply_event(hashbank *b, struct event *e, struct hashbank_result *res, struct tally *t)
{
    struct held h;
    int rc = get(b, e->type, e->value, e->who, &h);
    if (rc != CASENET_OK)
        return rc;
    bool newer = h.exists && (h.updated_ms > e->at_ms ||
                              (h.updated_ms == e->at_ms && h.retracted && !e->retract));
    if (newer) {
        res->ignored++;
        return CASENET_OK;
    }
    if (e->retract) {
        e->category = h.category;
        res->retracted++;
    } else {
        res->added++;
    }
    rc = put(b, e);
    if (rc == CASENET_OK && h.exists)
        tally_add(t, h.category, h.retracted, -1, 0);
    if (rc == CASENET_OK)
        tally_add(t, e->category, e->retract, +1, e->at_ms);
    return rc;
}

static void signal_text(const Casenet__V1__HashSignal *s, char type[HASHBANK_TYPE_MAX])
{
    hashbank_type_text((int)s->signal_type, s->vendor_type, type);
}

static int apply_feedback(hashbank *b, const uint8_t *id, const char *sender, int64_t at,
                          const Casenet__V1__HashShare *hs, struct hashbank_result *res)
{
    for (size_t i = 0; i < hs->n_feedback; i++) {
        const Casenet__V1__HashFeedback *f = hs->feedback[i];
        char type[HASHBANK_TYPE_MAX];
        signal_text(f->signal, type);
        sqlite3_stmt *st = b->feedback;
        sqlite3_reset(st);
        sqlite3_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sqlite3_bind_text(st, 3, sender, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, at);
        sqlite3_bind_int(st, 5, (int)f->kind);
        sqlite3_bind_text(st, 6, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, f->signal->value, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, f->match_count);
        sqlite3_bind_text(st, 9, f->note, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return CASENET_EIO;
        res->feedback++;
    }
    return CASENET_OK;
}

#define now_ms hashbank_now_ms

static int apply_share(hashbank *b, const uint8_t *id, const char *sender, int64_t at,
                       const Casenet__V1__HashShare *hs, struct hashbank_result *res)
{
    int rc = CASENET_OK;
    int64_t now = now_ms();
    struct tally t = {0};
    for (size_t i = 0; rc == CASENET_OK && i < hs->n_entries; i++) {
        const Casenet__V1__HashEntry *en = hs->entries[i];
        char type[HASHBANK_TYPE_MAX];
        signal_text(en->signal, type);
        struct event e = {.type = type,
                          .value = en->signal->value,
                          .who = sender,
                          .reference = en->reference,
                          .category = (int)en->category,
                          .quality = en->pdq_quality,
                          .first_seen_ms = en->first_seen_ms,
                          .at_ms = at,
                          .imported_ms = now,
                          .id = id};
        rc = apply_event(b, &e, res, &t);
    }
    for (size_t i = 0; rc == CASENET_OK && i < hs->n_retractions; i++) {
        const Casenet__V1__HashSignal *s = hs->retractions[i]->signal;
        char type[HASHBANK_TYPE_MAX];
        signal_text(s, type);
        struct event e = {.type = type,
                          .value = s->value,
                          .who = sender,
                          .at_ms = at,
                          .imported_ms = now,
                          .retract = true,
                          .id = id};
        rc = apply_event(b, &e, res, &t);
    }
    if (rc == CASENET_OK)
        rc = flush_tally(b, sender, &t);
    return rc == CASENET_OK ? apply_feedback(b, id, sender, at, hs, res) : rc;
}

int64_t hashbank_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hashbank_apply(hashbank *b, const uint8_t id[CASENET_MESSAGE_ID_BYTES], const char *sender,
                   int64_t created_ms, const uint8_t *payload, size_t len,
                   struct hashbank_result *res)
{
    memset(res, 0, sizeof *res);
    Casenet__V1__Payload *p =
        casenet__v1__payload__unpack(NULL, len, payload ? payload : (const uint8_t *)"");
    if (!p || p->body_case != CASENET__V1__PAYLOAD__BODY_HASH_SHARE) {
        casenet__v1__payload__free_unpacked(p, NULL);
        return CASENET_EBADREQ;
    }
    int rc = CASENET_EIO;
    if (sqlite3_exec(b->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto cleanup;
    if (hashbank_applied(b, id)) {
        res->already = true;
        rc = CASENET_OK;
        goto rollback;
    }
    sqlite3_stmt *st = NULL;
    if (prepare(b, "INSERT INTO applied VALUES (?, ?, ?, ?)", &st) != CASENET_OK)
        goto rollback;
    sqlite3_bind_blob(st, 1, id, CASENET_MESSAGE_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, created_ms);
    sqlite3_bind_int64(st, 4, now_ms());
    int src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE ||
        apply_share(b, id, sender, created_ms, p->hash_share, res) != CASENET_OK)
        goto rollback;
    if (sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto rollback;
    rc = CASENET_OK;
    goto cleanup;
rollback:
    sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != CASENET_OK)
        memset(res, 0, sizeof *res);
cleanup:
    casenet__v1__payload__free_unpacked(p, NULL);
    return rc;
}

int hashbank_each(hashbank *b, int category, int (*fn)(const struct hashbank_entry *, void *),
                  void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (prepare(b,
                "SELECT contributor, signal_type, value, reference, category, pdq_quality,"
                " first_seen_ms, updated_ms, imported_ms FROM entries WHERE retracted = 0"
                " AND (?1 = 0 OR category = ?1) ORDER BY signal_type, value, contributor",
                &st) != CASENET_OK)
        return CASENET_EIO;
    sqlite3_bind_int(st, 1, category);
    int rc = CASENET_OK, src = SQLITE_DONE;
    while (rc == CASENET_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        struct hashbank_entry e = {
            .contributor = (const char *)sqlite3_column_text(st, 0),
            .signal_type = (const char *)sqlite3_column_text(st, 1),
            .value = (const char *)sqlite3_column_text(st, 2),
            .reference = (const char *)sqlite3_column_text(st, 3),
            .category = sqlite3_column_int(st, 4),
            .pdq_quality = (unsigned)sqlite3_column_int(st, 5),
            .first_seen_ms = sqlite3_column_int64(st, 6),
            .updated_ms = sqlite3_column_int64(st, 7),
            .imported_ms = sqlite3_column_int64(st, 8),
        };
        rc = fn(&e, ctx);
    }
    if (rc == CASENET_OK && src != SQLITE_DONE)
        rc = CASENET_EIO;
    sqlite3_finalize(st);
    return rc;
}

int hashbank_lookup(hashbank *b, const char *signal_type, const char *value, size_t *n)
{
    sqlite3_stmt *st = b->lookup;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, signal_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW)
        return CASENET_EIO;
    *n = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return CASENET_OK;
}

int hashbank_each_feedback(hashbank *b, int (*fn)(const struct hashbank_feedback *, void *),
                           void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (prepare(b,
                "SELECT sender, signal_type, value, note, kind, match_count, created_ms"
                " FROM feedback ORDER BY created_ms, message_id, item",
                &st) != CASENET_OK)
        return CASENET_EIO;
    int rc = CASENET_OK, src = SQLITE_DONE;
    while (rc == CASENET_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        struct hashbank_feedback f = {
            .sender = (const char *)sqlite3_column_text(st, 0),
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

static int count(hashbank *b, const char *sql, uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    if (prepare(b, sql, &st) != CASENET_OK)
        return CASENET_EIO;
    int rc = CASENET_EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = (uint64_t)sqlite3_column_int64(st, 0);
        rc = CASENET_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int hashbank_stats(hashbank *b, struct hashbank_stats *s)
{
    memset(s, 0, sizeof *s);
    static const char *const by_cat[] = {
        NULL,
        "SELECT coalesce(sum(live), 0) FROM counts WHERE category = 1",
        "SELECT coalesce(sum(live), 0) FROM counts WHERE category = 2",
        "SELECT coalesce(sum(live), 0) FROM counts WHERE category = 3",
    };
    int rc = CASENET_OK;
    for (int c = 1; rc == CASENET_OK && c <= 3; c++)
        rc = count(b, by_cat[c], &s->by_category[c]);
    uint64_t last = 0;
    if (rc == CASENET_OK)
        rc = count(b, "SELECT coalesce(sum(live), 0) FROM counts", &s->live);
    if (rc == CASENET_OK)
        rc = count(b, "SELECT coalesce(sum(retracted), 0) FROM counts", &s->retracted);
    if (rc == CASENET_OK)
        rc = count(b, "SELECT count(*) FROM applied", &s->messages);
    if (rc == CASENET_OK)
        rc = count(b, "SELECT count(DISTINCT contributor) FROM counts WHERE live > 0",
                   &s->contributors);
    if (rc == CASENET_OK)
        rc = count(b, "SELECT coalesce(sum(match_count), 0) FROM feedback WHERE kind = 1",
                   &s->matches);
    if (rc == CASENET_OK)
        rc = count(b, "SELECT count(*) FROM feedback WHERE kind = 2", &s->false_positives);
    if (rc == CASENET_OK)
        rc = count(b,
                   "SELECT max((SELECT coalesce(max(created_ms), 0) FROM applied),"
                   " (SELECT coalesce(max(updated_ms), 0) FROM counts))",
                   &last);
    s->last_update_ms = (int64_t)last;
    return rc;
}

/* ------------------------------------------------------------ imported lists */

int hashbank_import_list(hashbank *b, const char *name, const char *redistribute,
                         const struct hashbank_row *rows, size_t n, int category,
                         struct hashbank_result *res)
{
    memset(res, 0, sizeof *res);
    char who[HASHBANK_SOURCE_MAX + 8];
    if (!name[0] || strlen(name) > HASHBANK_SOURCE_MAX || strpbrk(name, ":, \t\n"))
        return CASENET_EINVAL;
    snprintf(who, sizeof who, "list:%s", name);
    if (sqlite3_exec(b->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return CASENET_EIO;
    int64_t now = now_ms();
    uint8_t id[CASENET_MESSAGE_ID_BYTES] = {0}; /* no message: a local import */
    int rc = CASENET_OK;
    struct tally t = {0};
    for (size_t i = 0; rc == CASENET_OK && i < n; i++) {
        char type[HASHBANK_TYPE_MAX];
        hashbank_type_text(rows[i].type, rows[i].vendor, type);
        struct event e = {.type = type,
                          .value = rows[i].value,
                          .who = who,
                          .category = rows[i].category ? rows[i].category : category,
                          .first_seen_ms = now,
                          .at_ms = now,
                          .imported_ms = now,
                          .id = id};
        rc = e.category ? apply_event(b, &e, res, &t) : CASENET_EINVAL;
    }
    if (rc == CASENET_OK)
        rc = flush_tally(b, who, &t);
    sqlite3_stmt *st = NULL;
    if (rc == CASENET_OK &&
        (rc = prepare(b, "INSERT OR REPLACE INTO sources VALUES (?, ?, ?)", &st)) == CASENET_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, redistribute ? redistribute : "", -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
    }
    sqlite3_finalize(st);
    if (rc == CASENET_OK && sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return CASENET_OK;
    sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
    memset(res, 0, sizeof *res);
    return rc == CASENET_OK ? CASENET_EIO : rc;
}

int hashbank_source_allows(hashbank *b, const char *name, const char *recipient, bool *allowed)
{
    *allowed = false;
    sqlite3_stmt *st = NULL;
    if (prepare(b, "SELECT redistribute FROM sources WHERE name = ?", &st) != CASENET_OK)
        return CASENET_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(st), rc = CASENET_OK;
    if (src == SQLITE_ROW) {
        const char *list = (const char *)sqlite3_column_text(st, 0);
        size_t len = strlen(recipient);
        for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
            if (strncmp(p, recipient, len) == 0 && (p[len] == ',' || p[len] == '\0'))
                *allowed = true;
        }
    } else {
        rc = src == SQLITE_DONE ? CASENET_ENOTFOUND : CASENET_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}
