/* console_cache.c - DIR/coord.db, the coordinator's local copy of the
 * broker's audit log: each event's metadata in columns (for the figures and
 * the audit page) and its exact bytes (for inclusion proofs), the trusted
 * head, and the first verification failure seen. Events enter only in the
 * transaction of a pull that verified; a failed pull rolls back and is
 * remembered, so no figure is ever computed from a log that did not
 * verify. One mutex: callable from any thread. */
#include "casenet.pb-c.h"
#include "cli.h"
#include "console_coord.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct coord_cache {
    sqlite3 *db;
    sqlite3_stmt *ins, *ins_raw;
    pthread_mutex_t lock;
    uint64_t generation; /* bumped by a pull that brought events the figures use */
    bool relevant;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS events(idx INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
    " kind INTEGER NOT NULL, actor TEXT NOT NULL, parties TEXT NOT NULL,"
    " recipients TEXT NOT NULL, message_id TEXT, case_ref TEXT, mkind INTEGER,"
    " urgency INTEGER, mstatus INTEGER, rstatus INTEGER, deadline TEXT, detail TEXT);"
    /* the exact bytes apart: the figures scan events, proofs read raw */
    "CREATE TABLE IF NOT EXISTS raw(idx INTEGER PRIMARY KEY, bytes BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS events_msg ON events(message_id);"
    "CREATE INDEX IF NOT EXISTS events_time ON events(time_ms);"
    "CREATE INDEX IF NOT EXISTS events_kind_time ON events(kind, time_ms);"
    /* the declines by reason: a few rows among every receipt */
    "CREATE INDEX IF NOT EXISTS events_kind_rstatus ON events(kind, rstatus, time_ms);"
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB);";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int coord_cache_open(const char *home_dir, coord_cache **out)
{
    char *path = cli_path(home_dir, COORD_DB_FILE);
    if (!path)
        return CASENET_ENOMEM;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    coord_cache *cc = calloc(1, sizeof *cc);
    int rc = CASENET_EIO;
    if (!cc || sqlite3_open(path, &cc->db) != SQLITE_OK ||
        sqlite3_exec(cc->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(cc->db,
                           "INSERT OR REPLACE INTO events VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
                           &cc->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(cc->db, "INSERT OR REPLACE INTO raw VALUES(?,?)", -1, &cc->ins_raw,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "casenet: cannot open the coordinator cache %s: %s\n", path,
                cc && cc->db ? sqlite3_errmsg(cc->db) : "out of memory");
        if (cc) {
            sqlite3_close(cc->db);
            free(cc);
        }
        free(path);
        return rc;
    }
    sqlite3_busy_timeout(cc->db, 5000);
    pthread_mutex_init(&cc->lock, NULL);
    cc->generation = 1;
    free(path);
    *out = cc;
    return CASENET_OK;
}

void coord_cache_close(coord_cache *cc)
{
    if (!cc)
        return;
    sqlite3_finalize(cc->ins);
    sqlite3_finalize(cc->ins_raw);
    sqlite3_close(cc->db);
    pthread_mutex_destroy(&cc->lock);
    free(cc);
}

sqlite3 *coord_cache_db(coord_cache *cc)
{
    return cc->db;
}

static int meta_get(coord_cache *cc, const char *k, casenet_buf *out)
{
    sqlite3_stmt *st = NULL;
    int rc = CASENET_ENOTFOUND;
    if (sqlite3_prepare_v2(cc->db, "SELECT v FROM meta WHERE k=?", -1, &st, NULL) != SQLITE_OK)
        return CASENET_EIO;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        out->data = malloc(n + 1);
        if (out->data) {
            if (n)
                memcpy(out->data, sqlite3_column_blob(st, 0), n);
            out->data[n] = 0;
            out->len = n;
            rc = CASENET_OK;
        } else {
            rc = CASENET_ENOMEM;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int meta_put(coord_cache *cc, const char *k, const void *v, size_t n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(cc->db, "INSERT OR REPLACE INTO meta VALUES(?,?)", -1, &st, NULL) !=
        SQLITE_OK)
        return CASENET_EIO;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, v, (int)n, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
    sqlite3_finalize(st);
    return rc;
}

static void bind_hex(sqlite3_stmt *st, int col, const ProtobufCBinaryData *b)
{
    if (!b->len || b->len > 32) {
        sqlite3_bind_null(st, col);
        return;
    }
    char h[65];
    sodium_bin2hex(h, sizeof h, b->data, b->len);
    sqlite3_bind_text(st, col, h, -1, SQLITE_TRANSIENT);
}

/* "a,b,c" of parties from `from` on, into out. */
static void join(char *const *p, size_t n, size_t from, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = from; i < n && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? "," : "", p[i]);
}

/* "key=value" out of an ESCALATED event's detail. */
static void detail_field(const char *detail, const char *key, char *out, size_t cap)
{
    out[0] = '\0';
    size_t kl = strlen(key);
    for (const char *p = detail; p && *p;) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, " ");
            snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p + kl + 1);
            return;
        }
        p = strchr(p, ' ');
        p = p ? p + 1 : NULL;
    }
}

/* Stores one event (in the pull's transaction). */
static int on_event(void *ctx, uint64_t index, const uint8_t *raw, size_t len)
{
    coord_cache *cc = ctx;
    Casenet__V1__AuditEvent *e = casenet__v1__audit_event__unpack(NULL, len, raw);
    if (!e)
        return CASENET_EBADREQ;
    cc->relevant |= e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED ||
                    e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_RECEIPT ||
                    e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED;
    char parties[2048], rcpt[2048], deadline[16] = "";
    join(e->parties, e->n_parties, 0, parties, sizeof parties);
    if (e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED)
        join(e->parties, e->n_parties, 1, rcpt, sizeof rcpt);
    else if (e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED) {
        detail_field(e->detail, "recipient", rcpt, sizeof rcpt);
        detail_field(e->detail, "deadline", deadline, sizeof deadline);
    } else
        rcpt[0] = '\0';
    sqlite3_stmt *st = cc->ins;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    sqlite3_bind_int64(st, 2, e->time_ms);
    sqlite3_bind_int(st, 3, (int)e->kind);
    sqlite3_bind_text(st, 4, e->actor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, parties, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, rcpt, -1, SQLITE_TRANSIENT);
    bind_hex(st, 7, &e->message_id);
    bind_hex(st, 8, &e->case_ref);
    sqlite3_bind_int(st, 9, (int)e->message_kind);
    sqlite3_bind_int(st, 10, (int)e->urgency);
    sqlite3_bind_int(st, 11, (int)e->message_status);
    sqlite3_bind_int(st, 12, (int)e->receipt_status);
    sqlite3_bind_text(st, 13, deadline, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 14, e->detail, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
    sqlite3_reset(st);
    sqlite3_reset(cc->ins_raw);
    sqlite3_bind_int64(cc->ins_raw, 1, (sqlite3_int64)index);
    sqlite3_bind_blob(cc->ins_raw, 2, raw, (int)len, SQLITE_STATIC);
    if (rc == CASENET_OK && sqlite3_step(cc->ins_raw) != SQLITE_DONE)
        rc = CASENET_EIO;
    sqlite3_reset(cc->ins_raw);
    casenet__v1__audit_event__free_unpacked(e, NULL);
    return rc;
}

/* What a pull's callbacks get: the cache, and the caller's progress. */
struct sync_ctx {
    coord_cache *cc;
    coord_progress_fn progress;
    void *ctx;
};

static int sync_event(void *ctx, uint64_t index, const uint8_t *raw, size_t len)
{
    return on_event(((struct sync_ctx *)ctx)->cc, index, raw, len);
}

static void sync_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct sync_ctx *s = ctx;
    if (s->progress)
        s->progress(s->ctx, done, total);
}

static bool failure_locked(coord_cache *cc, char err[COORD_ERR_MAX], int64_t *at)
{
    casenet_buf b = {0};
    if (meta_get(cc, "failure", &b) != CASENET_OK)
        return false;
    snprintf(err, COORD_ERR_MAX, "%s", b.data ? (char *)b.data : "");
    casenet_buf_free(&b);
    if (at) {
        casenet_buf t = {0};
        *at = meta_get(cc, "failure_at", &t) == CASENET_OK ? strtoll((char *)t.data, NULL, 10) : 0;
        casenet_buf_free(&t);
    }
    return true;
}

/* The trusted head beside the verifier's state, which only a verifier
 * reads: size and time (little-endian 64-bit), then the root. */
#define HEAD_BYTES (16 + 32)

static void put_u64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static int head_put(coord_cache *cc, const struct coord_head *h)
{
    uint8_t b[HEAD_BYTES];
    put_u64(b, h->size);
    put_u64(b + 8, (uint64_t)h->time_ms);
    memcpy(b + 16, h->root, sizeof h->root);
    return meta_put(cc, "head", b, sizeof b);
}

static int sync_locked(coord_cache *cc, casenet_client *cl, const casenet_directory *dir, bool full,
                       coord_progress_fn progress, void *ctx, char err[COORD_ERR_MAX])
{
    if (failure_locked(cc, err, NULL))
        return CASENET_EBADSIG;
    casenet_buf tb = {0};
    int rc = meta_get(cc, "trust", &tb);
    if (rc != CASENET_OK && rc != CASENET_ENOTFOUND) {
        snprintf(err, COORD_ERR_MAX, "cannot read the cache");
        return rc;
    }
    struct coord_trust trusted = {tb.data, tb.len}, next = {0};
    struct coord_head head;
    if (sqlite3_exec(cc->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        casenet_buf_free(&tb);
        snprintf(err, COORD_ERR_MAX, "cannot write the cache: %s", sqlite3_errmsg(cc->db));
        return CASENET_EIO;
    }
    struct sync_ctx sc = {cc, progress, ctx};
    cc->relevant = false;
    rc = coord_verify_pull(cl, dir, &trusted, full, sync_event, sync_progress, &sc, &next, &head,
                           err);
    if (rc == CASENET_OK) {
        char sql[160], at[32];
        snprintf(sql, sizeof sql,
                 "DELETE FROM events WHERE idx >= %" PRIu64
                 "; DELETE FROM raw WHERE idx >= %" PRIu64,
                 head.size, head.size);
        snprintf(at, sizeof at, "%lld", (long long)now_ms());
        if (sqlite3_exec(cc->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
            meta_put(cc, "trust", next.bytes, next.len) != CASENET_OK ||
            head_put(cc, &head) != CASENET_OK ||
            meta_put(cc, "verified_at", at, strlen(at)) != CASENET_OK ||
            sqlite3_exec(cc->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(err, COORD_ERR_MAX, "cannot write the cache: %s", sqlite3_errmsg(cc->db));
            rc = CASENET_EIO;
        } else if (cc->relevant) {
            cc->generation++;
        }
    }
    if (rc != CASENET_OK) {
        sqlite3_exec(cc->db, "ROLLBACK", NULL, NULL, NULL);
        /* A log that does not verify is remembered; the broker being
         * unreachable or refusing is not. */
        if (strncmp(err, "broker:", 7) != 0 && rc != CASENET_EIO && rc != CASENET_ENOMEM) {
            char at[32];
            snprintf(at, sizeof at, "%lld", (long long)now_ms());
            if (meta_put(cc, "failure", err, strlen(err) + 1) != CASENET_OK ||
                meta_put(cc, "failure_at", at, strlen(at) + 1) != CASENET_OK)
                fprintf(stderr, "casenet: cannot remember the verification failure\n");
        }
    }
    coord_trust_clear(&next);
    casenet_buf_free(&tb);
    return rc;
}

int coord_cache_sync(coord_cache *cc, casenet_client *cl, const casenet_directory *dir, bool full,
                     coord_progress_fn progress, void *ctx, char err[COORD_ERR_MAX])
{
    err[0] = '\0';
    pthread_mutex_lock(&cc->lock);
    int rc = sync_locked(cc, cl, dir, full, progress, ctx, err);
    pthread_mutex_unlock(&cc->lock);
    return rc;
}

bool coord_cache_failure(coord_cache *cc, char err[COORD_ERR_MAX], int64_t *at_ms)
{
    pthread_mutex_lock(&cc->lock);
    bool f = failure_locked(cc, err, at_ms);
    pthread_mutex_unlock(&cc->lock);
    if (!f)
        err[0] = '\0';
    return f;
}

void coord_cache_head(coord_cache *cc, struct coord_head *head, int64_t *verified_at_ms)
{
    memset(head, 0, sizeof *head);
    *verified_at_ms = 0;
    pthread_mutex_lock(&cc->lock);
    casenet_buf hb = {0}, at = {0};
    if (meta_get(cc, "head", &hb) == CASENET_OK && hb.len == HEAD_BYTES) {
        head->size = get_u64(hb.data);
        head->time_ms = (int64_t)get_u64(hb.data + 8);
        memcpy(head->root, hb.data + 16, sizeof head->root);
    }
    if (meta_get(cc, "verified_at", &at) == CASENET_OK)
        *verified_at_ms = strtoll((char *)at.data, NULL, 10);
    pthread_mutex_unlock(&cc->lock);
    casenet_buf_free(&hb);
    casenet_buf_free(&at);
}

uint64_t coord_cache_generation(coord_cache *cc)
{
    pthread_mutex_lock(&cc->lock);
    uint64_t g = cc->generation;
    pthread_mutex_unlock(&cc->lock);
    return g;
}

int coord_cache_event(coord_cache *cc, uint64_t index, casenet_buf *out)
{
    pthread_mutex_lock(&cc->lock);
    sqlite3_stmt *st = NULL;
    int rc = CASENET_EIO;
    if (sqlite3_prepare_v2(cc->db, "SELECT bytes FROM raw WHERE idx=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
        rc = CASENET_ENOTFOUND;
        if (sqlite3_step(st) == SQLITE_ROW) {
            size_t n = (size_t)sqlite3_column_bytes(st, 0);
            out->data = malloc(n ? n : 1);
            out->len = n;
            rc = out->data ? CASENET_OK : CASENET_ENOMEM;
            if (out->data && n)
                memcpy(out->data, sqlite3_column_blob(st, 0), n);
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&cc->lock);
    return rc;
}

static const char *audit_kind_name(int kind)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&casenet__v1__audit_kind__descriptor, kind);
    return v ? v->name + strlen("AUDIT_KIND_") : "UNSPECIFIED";
}

static json_t *list_row(sqlite3_stmt *st)
{
    const char *mid = (const char *)sqlite3_column_text(st, 6);
    const char *cref = (const char *)sqlite3_column_text(st, 7);
    return json_pack(
        "{s:I, s:I, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s, s:s, s:s, s:s}", "index",
        (json_int_t)sqlite3_column_int64(st, 0), "time", (json_int_t)sqlite3_column_int64(st, 1),
        "kind", audit_kind_name(sqlite3_column_int(st, 2)), "actor",
        (const char *)sqlite3_column_text(st, 3), "parties",
        (const char *)sqlite3_column_text(st, 4), "message_id", mid, "case_ref", cref,
        "message_kind",
        sqlite3_column_int(st, 8) ? casenet_kind_name(sqlite3_column_int(st, 8)) : "", "urgency",
        sqlite3_column_int(st, 9) ? casenet_urgency_name(sqlite3_column_int(st, 9)) : "", "status",
        sqlite3_column_int(st, 10) ? casenet_msg_status_name(sqlite3_column_int(st, 10)) : "",
        "receipt",
        sqlite3_column_int(st, 11) ? casenet_receipt_status_name(sqlite3_column_int(st, 11)) : "",
        "detail", (const char *)sqlite3_column_text(st, 13));
}

json_t *coord_cache_list(coord_cache *cc, const char *member, const char *message_hex,
                         const char *case_hex, int kind, int64_t from_ms, int64_t to_ms,
                         uint64_t before, unsigned limit)
{
    static const char sql[] =
        "SELECT idx, time_ms, kind, actor, parties, recipients, message_id, case_ref, mkind,"
        " urgency, mstatus, rstatus, deadline, detail FROM events"
        " WHERE (?1 IS NULL OR actor = ?1 OR ','||parties||',' LIKE '%,'||?1||',%')"
        " AND (?2 IS NULL OR message_id = lower(?2)) AND (?3 IS NULL OR case_ref = lower(?3))"
        " AND (?4 = 0 OR kind = ?4) AND (?5 = 0 OR time_ms >= ?5) AND (?6 = 0 OR time_ms < ?6)"
        " AND (?7 = 0 OR idx < ?7) ORDER BY idx DESC LIMIT ?8";
    json_t *arr = json_array();
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&cc->lock);
    if (arr && sqlite3_prepare_v2(cc->db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, member, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, message_hex, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, case_hex, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, kind);
        sqlite3_bind_int64(st, 5, from_ms);
        sqlite3_bind_int64(st, 6, to_ms);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)before);
        sqlite3_bind_int(st, 8, (int)limit);
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(arr, list_row(st));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&cc->lock);
    return arr;
}
