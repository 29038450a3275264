/* console_coord.c - the coordinator's API under /api/v1/coord/: only when
 * the home's member has role coordinator in its verified directory (every
 * endpoint answers FORBIDDEN otherwise, whoever the staff member is).
 *
 *   GET  /coord/overdue            the overdue board (the broker's rows)
 *   GET  /coord/network?from&to    figures from the verified cache
 *   GET  /coord/report?month&public&format=csv|html
 *   GET  /coord/audit?member&message&case&kind&from&to&before
 *   POST /coord/audit/verify       verify everything again (progress as SSE)
 *   GET  /coord/audit/prove?index  an event's inclusion proof
 *
 * Figures and audit rows come only from the cache (console_cache.c): each
 * request first brings it up to the broker's latest signed head, and a log
 * that does not verify answers 502 VERIFY_FAILED with the reason, never a
 * number. The notice thread calls console_coord_tick to tell pages when the
 * overdue board changed. */
#include "console.h"
#include "console_coord.h"

#include "cli.h"
#include "util.h"

#include <inttypes.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OVERDUE_CAP   20000
#define AUDIT_ROWS    200
#define TICK_EVERY_MS 1000

bool console_is_coordinator(const struct console *c)
{
    casenet_member m;
    return casenet_directory_find(c->home->dir, c->home->member, &m) == CASENET_OK &&
           casenet_member_has_role(&m, "coordinator");
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *qarg(const struct console_req *r, const char *name)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && v[0] ? v : NULL;
}

static int64_t qnum(const struct console_req *r, const char *name)
{
    const char *v = qarg(r, name);
    uint64_t n = 0;
    return v && cli_parse_uint(v, 0, INT64_MAX, &n) ? (int64_t)n : 0;
}

static const char *member_name(struct console *c, const char *id)
{
    casenet_member m;
    if (casenet_directory_find(c->home->dir, id, &m) == CASENET_OK && m.display_name)
        return m.display_name;
    return id;
}

/* ------------------------------------------------------------ overdue board */

/* Every overdue row from the broker. Under net_lock. */
static int overdue_all(casenet_client *cl, casenet_overdue **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    uint64_t cursor = 0;
    bool more = true;
    int rc = CASENET_OK;
    while (more && rc == CASENET_OK && *n < OVERDUE_CAP) {
        casenet_overdue *page = NULL;
        size_t got = 0;
        rc = casenet_client_list_overdue(cl, cursor, 500, &page, &got, &cursor, &more);
        if (rc == CASENET_OK && got) {
            casenet_overdue *all = realloc(*rows, (*n + got) * sizeof *all);
            if (!all)
                rc = CASENET_ENOMEM;
            else {
                memcpy(all + *n, page, got * sizeof *page);
                *rows = all;
                *n += got;
            }
        }
        free(page);
    }
    return rc;
}

static int cmp_overdue(const void *a, const void *b)
{
    const casenet_overdue *x = a, *y = b;
    int c = strcmp(x->recipient, y->recipient);
    if (c)
        return c;
    return x->due_at_ms < y->due_at_ms ? -1 : x->due_at_ms > y->due_at_ms;
}

static json_t *overdue_row(struct console *c, const casenet_overdue *o, int64_t now)
{
    char id[33], notice[33];
    cli_id16_hex(o->message_id, id);
    cli_id16_hex(o->notice_id, notice);
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s?}", "id", id, "sender",
        o->sender, "sender_name", member_name(c, o->sender), "kind", casenet_kind_name(o->kind),
        "urgency", o->urgency ? casenet_urgency_name(o->urgency) : "standard", "status",
        casenet_msg_status_name(o->status), "state", casenet_inbox_state_name(o->state), "deadline",
        casenet_deadline_kind_name(o->deadline), "received_at", (json_int_t)o->received_at_ms,
        "due_at", (json_int_t)o->due_at_ms, "overdue_ms", (json_int_t)(now - o->due_at_ms),
        "escalated_at", (json_int_t)o->escalated_at_ms, "notice", o->has_notice ? notice : NULL);
}

/* Groups by recipient (each oldest first), groups by their oldest row;
 * actual cases apart from exercise and test. */
static json_t *overdue_json(struct console *c, casenet_overdue *rows, size_t n)
{
    int64_t now = wall_ms();
    if (n > 1)
        qsort(rows, n, sizeof *rows, cmp_overdue);
    json_t *groups = json_array();
    for (size_t i = 0; i < n;) {
        size_t j = i;
        json_t *actual = json_array(), *other = json_array();
        for (; j < n && strcmp(rows[j].recipient, rows[i].recipient) == 0; j++)
            json_array_append_new(rows[j].status == CASENET_MSG_ACTUAL ? actual : other,
                                  overdue_row(c, &rows[j], now));
        json_array_append_new(
            groups, json_pack("{s:s, s:s, s:I, s:o, s:o}", "recipient", rows[i].recipient, "name",
                              member_name(c, rows[i].recipient), "oldest_due",
                              (json_int_t)rows[i].due_at_ms, "actual", actual, "other", other));
        i = j;
    }
    /* oldest group first: a stable insertion sort by oldest_due */
    size_t g = json_array_size(groups);
    for (size_t a = 1; a < g; a++) {
        for (size_t b = a; b > 0; b--) {
            json_t *x = json_array_get(groups, b - 1), *y = json_array_get(groups, b);
            if (json_integer_value(json_object_get(x, "oldest_due")) <=
                json_integer_value(json_object_get(y, "oldest_due")))
                break;
            json_incref(x);
            json_array_set(groups, b - 1, y);
            json_array_set_new(groups, b, x);
        }
    }
    return json_pack("{s:I, s:I, s:o}", "now", (json_int_t)now, "count", (json_int_t)n, "groups",
                     groups);
}

static void broker_error(struct console_resp *out, struct console *c, int err, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s", what,
             c->client && casenet_client_last_error(c->client)[0]
                 ? casenet_client_last_error(c->client)
                 : casenet_strerror(err));
    unsigned st = err == CASENET_EFORBIDDEN ? MHD_HTTP_FORBIDDEN : MHD_HTTP_SERVICE_UNAVAILABLE;
    console_error(out, st, casenet_errname(err), msg, NULL);
}

static void api_overdue(struct console *c, struct console_resp *out)
{
    casenet_overdue *rows = NULL;
    size_t n = 0;
    pthread_mutex_lock(&c->net_lock);
    int rc = console_client(c);
    if (rc == CASENET_OK)
        rc = overdue_all(c->client, &rows, &n);
    if (rc != CASENET_OK) {
        broker_error(out, c, rc, "the overdue rows");
        console_client_failed(c, rc);
    }
    pthread_mutex_unlock(&c->net_lock);
    if (rc == CASENET_OK)
        console_ok(out, overdue_json(c, rows, n));
    free(rows);
}

void console_coord_tick(struct console *c, casenet_client *cl)
{
    static int64_t last_ms;
    static uint64_t last_sig = UINT64_MAX;
    if (!c->coord || cn_mono_ms() - last_ms < TICK_EVERY_MS)
        return;
    last_ms = cn_mono_ms();
    casenet_overdue *rows = NULL;
    size_t n = 0;
    if (overdue_all(cl, &rows, &n) != CASENET_OK) {
        free(rows);
        return;
    }
    uint64_t sig = n;                /* what the board shows: which rows, which deadlines */
    for (size_t i = 0; i < n; i++) { /* FNV-1a over each row's id, deadline, notice */
        for (size_t k = 0; k < sizeof rows[i].message_id; k++)
            sig = (sig ^ rows[i].message_id[k]) * 1099511628211u;
        sig = (sig ^ ((uint64_t)rows[i].deadline | (uint64_t)rows[i].has_notice << 8)) *
              1099511628211u;
    }
    free(rows);
    if (sig == last_sig)
        return;
    last_sig = sig;
    char ev[64];
    snprintf(ev, sizeof ev, "{\"type\":\"overdue\",\"count\":%zu}", n);
    console_events_push(c, ev);
}

/* ------------------------------------------------------------ the verified cache */

struct verify_progress {
    struct console *c;
    int64_t last;
};

static void progress_event(void *ctx, uint64_t done, uint64_t total)
{
    struct verify_progress *p = ctx;
    if (p->last && cn_mono_ms() - p->last < 250 && done < total)
        return;
    p->last = cn_mono_ms();
    char ev[96];
    snprintf(ev, sizeof ev, "{\"type\":\"verify\",\"done\":%" PRIu64 ",\"total\":%" PRIu64 "}",
             done, total);
    console_events_push(p->c, ev);
}

/* Brings the cache up to the broker's head (everything again with full).
 * false with the answer set when the log does not verify (502
 * VERIFY_FAILED) or the broker cannot be asked (the cache's figures are
 * then still shown: stale is told by the head's time). */
static bool sync_cache(struct console *c, bool full, struct console_resp *out, bool *stale)
{
    char err[COORD_ERR_MAX];
    *stale = false;
    struct verify_progress p = {.c = c};
    pthread_mutex_lock(&c->net_lock);
    int rc = console_client(c);
    if (rc == CASENET_OK)
        rc = coord_cache_sync(c->coord, c->client, c->home->dir, full, progress_event, &p, err);
    else
        snprintf(err, sizeof err, "broker: %s", casenet_strerror(rc));
    if (rc != CASENET_OK)
        console_client_failed(c, rc);
    pthread_mutex_unlock(&c->net_lock);
    if (rc == CASENET_OK)
        return true;
    if (strncmp(err, "broker:", 7) == 0 && !coord_cache_failure(c->coord, err, NULL)) {
        *stale = true;
        return true;
    }
    console_error(out, MHD_HTTP_BAD_GATEWAY, "VERIFY_FAILED", err, NULL);
    return false;
}

static json_t *head_json(struct console *c)
{
    struct coord_head h;
    int64_t at;
    coord_cache_head(c->coord, &h, &at);
    char root[65];
    cn_hex(h.root, sizeof h.root, root);
    return json_pack("{s:I, s:s, s:I, s:I}", "size", (json_int_t)h.size, "root", root, "time",
                     (json_int_t)h.time_ms, "verified_at", (json_int_t)at);
}

/* The last figures computed, reused while no pull brought an event they
 * use (the head they state is the one they were computed at). One console
 * per process. */
static struct {
    pthread_mutex_t lock;
    int64_t from, to;
    bool public;
    uint64_t generation;
    json_t *fig;
} memo = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The figures (the caller's copy) for [from, to). */
static json_t *figures(struct console *c, int64_t from, int64_t to, bool public)
{
    uint64_t gen = coord_cache_generation(c->coord);
    pthread_mutex_lock(&memo.lock);
    json_t *out = NULL;
    if (memo.fig && memo.from == from && memo.to == to && memo.public == public &&
        memo.generation == gen) {
        out = json_deep_copy(memo.fig);
    } else {
        struct coord_head h;
        int64_t at;
        coord_cache_head(c->coord, &h, &at);
        json_t *fig = coord_figures(coord_cache_db(c->coord), from, to, public, &h);
        if (fig) {
            json_decref(memo.fig);
            memo.fig = fig;
            memo.from = from;
            memo.to = to;
            memo.public = public;
            memo.generation = gen;
            out = json_deep_copy(fig);
        }
    }
    pthread_mutex_unlock(&memo.lock);
    return out;
}

static void api_network(struct console *c, const struct console_req *r, struct console_resp *out)
{
    bool stale;
    if (!sync_cache(c, false, out, &stale))
        return;
    int64_t to = qnum(r, "to"), from = qnum(r, "from");
    if (!to) /* the end of this minute: the same range for a minute's reloads */
        to = (wall_ms() / 60000 + 1) * 60000;
    if (!from)
        from = to - 28 * 86400000LL;
    json_t *fig = figures(c, from, to, false);
    if (!fig)
        return console_error(out, 500, "IO", "cannot compute the figures", NULL);
    json_object_set_new(fig, "stale", json_boolean(stale));
    console_ok(out, fig);
}

static void api_report(struct console *c, const struct console_req *r, struct console_resp *out)
{
    int64_t from, to;
    const char *month = qarg(r, "month"), *format = qarg(r, "format");
    if (!coord_month(month, &from, &to))
        return console_error(out, 400, "BAD_REQUEST", "give the month as YYYY-MM", "month");
    bool stale;
    if (!sync_cache(c, false, out, &stale))
        return;
    json_t *fig = figures(c, from, to, qarg(r, "public") != NULL);
    if (!fig)
        return console_error(out, 500, "IO", "cannot compute the figures", NULL);
    json_object_set_new(fig, "month", json_string(month));
    json_object_set_new(fig, "stale", json_boolean(stale));
    if (!format || strcmp(format, "json") == 0)
        return console_ok(out, fig);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    int rc = m && strcmp(format, "csv") == 0 ? coord_figures_csv(fig, m) : CASENET_EINVAL;
    if (m)
        fclose(m);
    json_decref(fig);
    if (rc != CASENET_OK) {
        free(buf);
        return console_error(out, 400, "BAD_REQUEST", "format is json or csv", "format");
    }
    out->status = MHD_HTTP_OK;
    out->body = buf;
    out->type = "text/csv; charset=utf-8";
}

static void api_audit(struct console *c, const struct console_req *r, struct console_resp *out)
{
    bool stale;
    if (!sync_cache(c, false, out, &stale))
        return;
    const char *msg = qarg(r, "message"), *cse = qarg(r, "case"), *kind = qarg(r, "kind");
    if ((msg && strlen(msg) != 32) || (cse && strlen(cse) != 32))
        return console_error(out, 400, "BAD_REQUEST", "ids are 32 hex digits",
                             msg && strlen(msg) != 32 ? "message" : "case");
    int k = 0;
    if (kind) {
        uint64_t v = 0;
        if (!cli_parse_uint(kind, 1, 12, &v))
            return console_error(out, 400, "BAD_REQUEST", "kind is an audit kind number", "kind");
        k = (int)v;
    }
    json_t *rows = coord_cache_list(c->coord, qarg(r, "member"), msg, cse, k, qnum(r, "from"),
                                    qnum(r, "to"), (uint64_t)qnum(r, "before"), AUDIT_ROWS);
    console_ok(out,
               json_pack("{s:o, s:o, s:b}", "head", head_json(c), "rows", rows, "stale", stale));
}

static void api_verify(struct console *c, struct console_resp *out)
{
    bool stale;
    if (!sync_cache(c, true, out, &stale))
        return;
    if (stale)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE",
                             "the broker cannot be reached: try again later", NULL);
    console_ok(out, json_pack("{s:b, s:o}", "ok", 1, "head", head_json(c)));
}

static void api_prove(struct console *c, const struct console_req *r, struct console_resp *out)
{
    const char *ix = qarg(r, "index");
    uint64_t index = 0;
    if (!ix || !cli_parse_uint(ix, 0, UINT64_MAX - 1, &index))
        return console_error(out, 400, "BAD_REQUEST", "give the event's index", "index");
    struct coord_head h;
    int64_t at;
    coord_cache_head(c->coord, &h, &at);
    casenet_buf ev = {0};
    if (index >= h.size || coord_cache_event(c->coord, index, &ev) != CASENET_OK)
        return console_error(out, 404, "NOT_FOUND",
                             "no such event under the verified head: verify first", "index");
    char err[COORD_ERR_MAX];
    json_t *proof = NULL;
    pthread_mutex_lock(&c->net_lock);
    int rc = console_client(c);
    if (rc == CASENET_OK)
        rc = coord_prove(c->client, c->home->dir, index, ev.data, ev.len, &h, &proof, err);
    else
        snprintf(err, sizeof err, "broker: %s", casenet_strerror(rc));
    if (rc != CASENET_OK)
        console_client_failed(c, rc);
    pthread_mutex_unlock(&c->net_lock);
    casenet_buf_free(&ev);
    if (rc != CASENET_OK)
        return console_error(
            out,
            strncmp(err, "broker:", 7) == 0 ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_BAD_GATEWAY,
            strncmp(err, "broker:", 7) == 0 ? "UNAVAILABLE" : "VERIFY_FAILED", err, NULL);
    console_ok(out, proof);
}

void console_coord_api(struct console *c, const struct console_req *r, struct console_resp *out)
{
    if (!c->coord)
        return console_error(out, MHD_HTTP_FORBIDDEN, "FORBIDDEN",
                             "only a coordinator's console has these pages", NULL);
    bool get = strcmp(r->method, "GET") == 0, post = strcmp(r->method, "POST") == 0;
    const char *p = r->path + strlen("/coord");
    if (get && strcmp(p, "/overdue") == 0)
        return api_overdue(c, out);
    if (get && strcmp(p, "/network") == 0)
        return api_network(c, r, out);
    if (get && strcmp(p, "/report") == 0)
        return api_report(c, r, out);
    if (get && strcmp(p, "/audit") == 0)
        return api_audit(c, r, out);
    if (post && strcmp(p, "/audit/verify") == 0)
        return api_verify(c, out);
    if (get && strcmp(p, "/audit/prove") == 0)
        return api_prove(c, r, out);
    console_error(out, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such API endpoint", NULL);
}
