/* console_db.c - the console's accounts, machine tokens and disclosure ledger
 * in DIR/console.db, and its in-memory sessions and login throttle. */
#include "console.h"

#include "util.h"

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct console_db {
    sqlite3 *db;
    pthread_mutex_t lock;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, role TEXT NOT NULL,"
    " hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tokens(name TEXT PRIMARY KEY, role TEXT NOT NULL,"
    " sha256 TEXT NOT NULL UNIQUE, disabled INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ledger(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL,"
    " user TEXT NOT NULL, action TEXT NOT NULL, message_id TEXT, case_ref TEXT);";

const char *console_role_name(enum console_role r)
{
    switch (r) {
    case ROLE_VIEWER:
        return "viewer";
    case ROLE_CASEWORKER:
        return "caseworker";
    case ROLE_SUPERVISOR:
        return "supervisor";
    default:
        return "none";
    }
}

enum console_role console_role_parse(const char *name)
{
    if (!name)
        return ROLE_NONE;
    for (int r = ROLE_VIEWER; r <= ROLE_SUPERVISOR; r++) {
        if (strcmp(name, console_role_name((enum console_role)r)) == 0)
            return (enum console_role)r;
    }
    return ROLE_NONE;
}

bool console_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > CONSOLE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  (i > 0 && (ch == '.' || ch == '_' || ch == '-'));
        if (!ok)
            return false;
    }
    return true;
}

int console_db_open(const char *home_dir, console_db **out)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", home_dir, CONSOLE_DB_FILE) >= sizeof path)
        return CASENET_EINVAL;
    console_db *d = calloc(1, sizeof *d);
    if (!d)
        return CASENET_ENOMEM;
    mode_t old = umask(077);
    int rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    umask(old);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(d->db, 5000);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(d->db, schema, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "casenet: console: cannot open %s: %s\n", path,
                d->db ? sqlite3_errmsg(d->db) : "out of memory");
        sqlite3_close(d->db);
        free(d);
        return CASENET_EIO;
    }
    pthread_mutex_init(&d->lock, NULL);
    *out = d;
    return CASENET_OK;
}

void console_db_close(console_db *d)
{
    if (!d)
        return;
    sqlite3_close(d->db);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* Runs sql with text parameters (NULL binds NULL) and an optional integer
 * last; returns the sqlite step result (SQLITE_DONE or SQLITE_ROW). With
 * row_text set, copies column 0 of the first row (cap bytes). */
static int exec_text(console_db *d, const char *sql, const char *const *args, size_t n,
                     char *row_text, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
        rc = sqlite3_bind_text(st, (int)i + 1, args[i], -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) > (int)n)
        rc = sqlite3_bind_int64(st, (int)n + 1, cn_now_ms());
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && row_text) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(row_text, cap, "%s", t ? (const char *)t : "");
    }
    sqlite3_finalize(st);
    return rc;
}

int console_user_add(console_db *d, const char *name, enum console_role role, const char *password)
{
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return CASENET_ENOMEM;
    const char *args[] = {name, console_role_name(role), hash};
    pthread_mutex_lock(&d->lock);
    int rc = exec_text(d, "INSERT INTO users(name, role, hash, created_ms) VALUES(?, ?, ?, ?)",
                       args, 3, NULL, 0);
    pthread_mutex_unlock(&d->lock);
    sodium_memzero(hash, sizeof hash);
    if (rc == SQLITE_CONSTRAINT)
        return CASENET_ECONFLICT;
    return rc == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
}

int console_user_disable(console_db *d, const char *name)
{
    const char *args[] = {name};
    pthread_mutex_lock(&d->lock);
    int rc = exec_text(d, "UPDATE users SET disabled = 1 WHERE name = ?", args, 1, NULL, 0);
    int changed = sqlite3_changes(d->db);
    pthread_mutex_unlock(&d->lock);
    if (rc != SQLITE_DONE)
        return CASENET_EIO;
    return changed ? CASENET_OK : CASENET_ENOTFOUND;
}

/* A hash of a password nobody has, verified for unknown names so that an
 * unknown name costs the same time as a wrong password. */
static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static void make_dummy(void)
{
    char pw[32];
    randombytes_buf(pw, sizeof pw);
    if (crypto_pwhash_str(dummy_hash, pw, sizeof pw, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        dummy_hash[0] = '\0';
}

int console_user_check(console_db *d, const char *name, const char *password,
                       enum console_role *role)
{
    char row[crypto_pwhash_STRBYTES + 64] = "";
    const char *args[] = {name};
    pthread_mutex_lock(&d->lock);
    int rc = exec_text(d, "SELECT role || ' ' || hash FROM users WHERE name = ? AND disabled = 0",
                       args, 1, row, sizeof row);
    pthread_mutex_unlock(&d->lock);
    char *sp = strchr(row, ' ');
    if (rc != SQLITE_ROW || !sp) {
        pthread_once(&dummy_once, make_dummy);
        if (dummy_hash[0] && crypto_pwhash_str_verify(dummy_hash, password, strlen(password)) == 0)
            abort(); /* nobody knows the dummy password */
        return CASENET_EUNAUTH;
    }
    *sp = '\0';
    bool ok = crypto_pwhash_str_verify(sp + 1, password, strlen(password)) == 0;
    enum console_role r = console_role_parse(row);
    sodium_memzero(row, sizeof row);
    if (!ok || r == ROLE_NONE)
        return CASENET_EUNAUTH;
    *role = r;
    return CASENET_OK;
}

enum console_role console_user_role(console_db *d, const char *name)
{
    char row[32] = "";
    const char *args[] = {name};
    pthread_mutex_lock(&d->lock);
    int rc = exec_text(d, "SELECT role FROM users WHERE name = ? AND disabled = 0", args, 1, row,
                       sizeof row);
    pthread_mutex_unlock(&d->lock);
    return rc == SQLITE_ROW ? console_role_parse(row) : ROLE_NONE;
}

int console_user_print(console_db *d)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&d->lock);
    int rc = sqlite3_prepare_v2(
        d->db, "SELECT name, role, disabled, created_ms FROM users ORDER BY name", -1, &st, NULL);
    if (rc == SQLITE_OK)
        printf("%-24s  %-10s  %-8s  %s\n", "NAME", "ROLE", "STATE", "CREATED (UTC)");
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        time_t secs = (time_t)(sqlite3_column_int64(st, 3) / 1000);
        struct tm tm;
        char when[32] = "-";
        if (gmtime_r(&secs, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        printf("%-24s  %-10s  %-8s  %s\n", (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1),
               sqlite3_column_int(st, 2) ? "disabled" : "active", when);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->lock);
    return rc == SQLITE_OK ? CASENET_OK : CASENET_EIO;
}

static void token_digest(const char *token, char hex[65])
{
    uint8_t h[CASENET_HASH_BYTES];
    cn_sha256((const uint8_t *)token, strlen(token), h);
    cn_hex(h, sizeof h, hex);
}

int console_token_add(console_db *d, const char *name, enum console_role role, char token_out[65])
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    cn_hex(raw, sizeof raw, token_out);
    sodium_memzero(raw, sizeof raw);
    char digest[65];
    token_digest(token_out, digest);
    const char *args[] = {name, console_role_name(role), digest};
    pthread_mutex_lock(&d->lock);
    int rc = exec_text(d, "INSERT INTO tokens(name, role, sha256, created_ms) VALUES(?, ?, ?, ?)",
                       args, 3, NULL, 0);
    pthread_mutex_unlock(&d->lock);
    if (rc == SQLITE_CONSTRAINT)
        return CASENET_ECONFLICT;
    return rc == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
}

enum console_role console_token_check(console_db *d, const char *token,
                                      char name[CONSOLE_NAME_MAX + 1])
{
    if (strlen(token) != 64)
        return ROLE_NONE;
    char digest[65], row[CONSOLE_NAME_MAX + 32] = "";
    token_digest(token, digest);
    const char *args[] = {digest};
    pthread_mutex_lock(&d->lock);
    int rc =
        exec_text(d, "SELECT role || ' ' || name FROM tokens WHERE sha256 = ? AND disabled = 0",
                  args, 1, row, sizeof row);
    pthread_mutex_unlock(&d->lock);
    char *sp = strchr(row, ' ');
    if (rc != SQLITE_ROW || !sp)
        return ROLE_NONE;
    *sp = '\0';
    snprintf(name, CONSOLE_NAME_MAX + 1, "%s", sp + 1);
    return console_role_parse(row);
}

int console_ledger_add(console_db *d, const char *user, const char *action, const char *message_hex,
                       const char *case_hex)
{
    const char *args[] = {user, action, message_hex, case_hex};
    pthread_mutex_lock(&d->lock);
    int rc = exec_text(d,
                       "INSERT INTO ledger(user, action, message_id, case_ref, at_ms) "
                       "VALUES(?, ?, ?, ?, ?)",
                       args, 4, NULL, 0);
    pthread_mutex_unlock(&d->lock);
    return rc == SQLITE_DONE ? CASENET_OK : CASENET_EIO;
}

char *console_ledger_json(console_db *d, size_t limit)
{
    json_t *arr = json_array();
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&d->lock);
    int rc = sqlite3_prepare_v2(d->db,
                                "SELECT id, at_ms, user, action, message_id, case_ref FROM ledger "
                                "ORDER BY id DESC LIMIT ?",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 1, limit > INT64_MAX ? -1 : (sqlite3_int64)limit); /* -1: all */
    while (rc == SQLITE_OK && arr && sqlite3_step(st) == SQLITE_ROW) {
        const char *mid = (const char *)sqlite3_column_text(st, 4);
        const char *cref = (const char *)sqlite3_column_text(st, 5);
        json_array_append_new(arr, json_pack("{s:I, s:I, s:s, s:s, s:s?, s:s?}", "id",
                                             (json_int_t)sqlite3_column_int64(st, 0), "at",
                                             (json_int_t)sqlite3_column_int64(st, 1), "user",
                                             (const char *)sqlite3_column_text(st, 2), "action",
                                             (const char *)sqlite3_column_text(st, 3), "message_id",
                                             mid, "case", cref));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->lock);
    char *s = (rc == SQLITE_OK && arr) ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return s;
}

/* ------------------------------------------------------------ sessions */

struct slot {
    bool used;
    char id[65];
    int64_t last_ms;
    struct console_session s;
};

struct throttle {
    char name[CONSOLE_NAME_MAX + 1];
    unsigned fails;
    int64_t locked_until_ms;
    int64_t last_ms;
};

#define THROTTLE_SLOTS 512

struct console_sessions {
    pthread_mutex_t lock;
    int64_t idle_ms;
    struct slot slots[CONSOLE_MAX_SESSIONS];
    struct throttle throttle[THROTTLE_SLOTS];
};

console_sessions *console_sessions_new(int64_t idle_ms)
{
    console_sessions *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->idle_ms = idle_ms;
    return s;
}

void console_sessions_free(console_sessions *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    sodium_memzero(s, sizeof *s);
    free(s);
}

int console_session_create(console_sessions *s, const char *user, enum console_role role,
                           char id_out[65], struct console_session *out)
{
    uint8_t raw[32];
    int64_t now = cn_mono_ms();
    pthread_mutex_lock(&s->lock);
    struct slot *free_slot = NULL;
    for (size_t i = 0; i < CONSOLE_MAX_SESSIONS; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->used && now - sl->last_ms > s->idle_ms)
            sodium_memzero(sl, sizeof *sl);
        if (!sl->used && !free_slot)
            free_slot = sl;
    }
    if (!free_slot) {
        pthread_mutex_unlock(&s->lock);
        return CASENET_ENOMEM;
    }
    free_slot->used = true;
    free_slot->last_ms = now;
    randombytes_buf(raw, sizeof raw);
    cn_hex(raw, sizeof raw, free_slot->id);
    randombytes_buf(raw, sizeof raw);
    cn_hex(raw, sizeof raw, free_slot->s.csrf);
    sodium_memzero(raw, sizeof raw);
    snprintf(free_slot->s.user, sizeof free_slot->s.user, "%s", user);
    free_slot->s.role = role;
    memcpy(id_out, free_slot->id, 65);
    *out = free_slot->s;
    pthread_mutex_unlock(&s->lock);
    return CASENET_OK;
}

static struct slot *find_slot(console_sessions *s, const char *id)
{
    if (!id || strlen(id) != 64)
        return NULL;
    for (size_t i = 0; i < CONSOLE_MAX_SESSIONS; i++) {
        if (s->slots[i].used && sodium_memcmp(s->slots[i].id, id, 64) == 0)
            return &s->slots[i];
    }
    return NULL;
}

bool console_session_get(console_sessions *s, const char *id, bool touch,
                         struct console_session *out)
{
    int64_t now = cn_mono_ms();
    pthread_mutex_lock(&s->lock);
    struct slot *sl = find_slot(s, id);
    bool ok = false;
    if (sl && now - sl->last_ms > s->idle_ms) {
        sodium_memzero(sl, sizeof *sl);
    } else if (sl) {
        if (touch)
            sl->last_ms = now;
        *out = sl->s;
        ok = true;
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void console_session_end(console_sessions *s, const char *id)
{
    pthread_mutex_lock(&s->lock);
    struct slot *sl = find_slot(s, id);
    if (sl)
        sodium_memzero(sl, sizeof *sl);
    pthread_mutex_unlock(&s->lock);
}

/* The throttle row of name, recycling the oldest when full. Under lock. */
static struct throttle *throttle_row(console_sessions *s, const char *name)
{
    struct throttle *oldest = &s->throttle[0];
    for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
        struct throttle *t = &s->throttle[i];
        if (t->name[0] && strcmp(t->name, name) == 0)
            return t;
        if (t->last_ms < oldest->last_ms)
            oldest = t;
    }
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->name, sizeof oldest->name, "%s", name);
    return oldest;
}

bool console_login_allowed(console_sessions *s, const char *name, unsigned *retry_s)
{
    int64_t now = cn_mono_ms();
    pthread_mutex_lock(&s->lock);
    struct throttle *t = throttle_row(s, name);
    t->last_ms = now;
    bool ok = t->locked_until_ms <= now;
    if (!ok)
        *retry_s = (unsigned)((t->locked_until_ms - now + 999) / 1000);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void console_login_result(console_sessions *s, const char *name, bool ok)
{
    int64_t now = cn_mono_ms();
    pthread_mutex_lock(&s->lock);
    struct throttle *t = throttle_row(s, name);
    t->last_ms = now;
    if (ok) {
        t->fails = 0;
    } else if (++t->fails >= CONSOLE_LOGIN_FAILS) {
        t->fails = 0;
        t->locked_until_ms = now + CONSOLE_LOGIN_LOCK_MS;
    }
    pthread_mutex_unlock(&s->lock);
}
