/* console_stats.c - the coordinator's figures, from the verified audit
 * cache only (metadata: no content ever reaches a coordinator). One
 * function computes them for a time range; the console's network and
 * report pages and `casenet report` all call it, so they cannot disagree.
 *
 * What counts: messages whose SUBMITTED event lies in [from, to) and whose
 * status is actual (exercise and test are counted apart, in totals). A
 * (message, recipient) pair is delivered at the recipient's first receipt
 * (any status) and answered at its first accepted or declined receipt; it
 * is within the policy deadline unless the broker escalated that deadline
 * for it (the ESCALATED event names the recipient and the deadline). Days
 * and weeks (starting Monday) are UTC. */
#include "cli.h"
#include "console_coord.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS       86400000LL
#define TAKEDOWN_WIN DAY_MS

/* One (message, recipient) pair of an actual referral or takedown request. */
struct pair {
    char mid[33]; /* the message id, hex */
    char recipient[CASENET_MEMBER_ID_MAX + 1];
    int urgency, kind;
    int64_t sent, delivered, answered; /* 0 when it has not happened */
    bool esc_deliver, esc_accept;
    char outcome[64]; /* takedowns: completed outcome or "declined" within 24 h */
};

struct pairs {
    struct pair *v;
    size_t n, cap;
};

static json_t *count_json(json_int_t n, bool public)
{
    if (public && n > 0 && n < COORD_SMALL_CELL)
        return json_string("<"
                           "5");
    return json_integer(n);
}

/* Rows of a grouping query (text columns, last column the count) as
 * objects named by keys. */
static json_t *group_rows(sqlite3 *db, const char *sql, int64_t from, int64_t to,
                          const char *const *keys, int nkeys, bool public)
{
    json_t *arr = json_array();
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        json_decref(arr);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *o = json_object();
        for (int i = 0; i < nkeys; i++) {
            const char *s = (const char *)sqlite3_column_text(st, i);
            json_object_set_new(o, keys[i], json_string(s ? s : ""));
        }
        json_object_set_new(o, "count", count_json(sqlite3_column_int64(st, nkeys), public));
        json_array_append_new(arr, o);
    }
    sqlite3_finalize(st);
    return arr;
}

#define SUBMITTED_IN_RANGE "kind = 1 AND time_ms >= ?1 AND time_ms < ?2"

/* A count per key, for the groupings of submissions computed in the one
 * pass over them (load_pairs): a few hundred keys at most (days x kinds x
 * urgencies, sender x recipient), found by an open-addressing hash. */
struct tally_row {
    char s1[CASENET_MEMBER_ID_MAX + 1]; /* a day, a week or a sender */
    char s2[CASENET_MEMBER_ID_MAX + 1]; /* a recipient */
    int i1, i2;                         /* kind, urgency; status */
    json_int_t count;
};

struct tally {
    struct tally_row *v;
    size_t n, cap; /* cap a power of two; slot[h] = row + 1, 0 = empty */
    size_t *slot;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211u;
    return h;
}

static size_t tally_hash(const struct tally_row *r, size_t mask)
{
    uint64_t h = fnv(14695981039346656037u, r->s1, strlen(r->s1) + 1);
    h = fnv(h, r->s2, strlen(r->s2) + 1);
    h = fnv(h, &r->i1, sizeof r->i1);
    return (size_t)fnv(h, &r->i2, sizeof r->i2) & mask;
}

static bool tally_same(const struct tally_row *r, const char *s1, const char *s2, int i1, int i2)
{
    return r->i1 == i1 && r->i2 == i2 && strcmp(r->s1, s1) == 0 && strcmp(r->s2, s2) == 0;
}

static int tally_grow(struct tally *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct tally_row *v = realloc(t->v, cap * sizeof *v);
    size_t *slot = calloc(cap * 2, sizeof *slot);
    if (v)
        t->v = v;
    if (!v || !slot) {
        free(slot);
        return CASENET_ENOMEM;
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    for (size_t i = 0; i < t->n; i++) {
        size_t k = tally_hash(&t->v[i], cap * 2 - 1);
        while (slot[k])
            k = (k + 1) & (cap * 2 - 1);
        slot[k] = i + 1;
    }
    return CASENET_OK;
}

/* Counts one more under (s1, s2, i1, i2); s1 and s2 are cut to a member
 * id's length, as no key is longer. */
static int tally_add(struct tally *t, const char *s1, const char *s2, int i1, int i2)
{
    if (t->n == t->cap && tally_grow(t) != CASENET_OK)
        return CASENET_ENOMEM;
    struct tally_row key = {.i1 = i1, .i2 = i2};
    snprintf(key.s1, sizeof key.s1, "%s", s1);
    snprintf(key.s2, sizeof key.s2, "%s", s2);
    size_t mask = t->cap * 2 - 1, k = tally_hash(&key, mask);
    for (; t->slot[k]; k = (k + 1) & mask) {
        struct tally_row *r = &t->v[t->slot[k] - 1];
        if (tally_same(r, key.s1, key.s2, i1, i2)) {
            r->count++;
            return CASENET_OK;
        }
    }
    key.count = 1;
    t->v[t->n] = key;
    t->slot[k] = ++t->n;
    return CASENET_OK;
}

/* The order of the SQL it replaces: s1 (bytes), then i1, i2, then s2. */
static int cmp_tally(const void *a, const void *b)
{
    const struct tally_row *x = a, *y = b;
    int c = strcmp(x->s1, y->s1);
    if (!c)
        c = x->i1 != y->i1 ? (x->i1 < y->i1 ? -1 : 1) : 0;
    if (!c)
        c = x->i2 != y->i2 ? (x->i2 < y->i2 ? -1 : 1) : 0;
    return c ? c : strcmp(x->s2, y->s2);
}

static void tally_free(struct tally *t)
{
    free(t->v);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

/* The groupings of the submissions in range, counted in load_pairs. */
struct counts {
    struct tally totals, per_day, per_week, flows;
};

static void counts_free(struct counts *c)
{
    tally_free(&c->totals);
    tally_free(&c->per_day);
    tally_free(&c->per_week);
    tally_free(&c->flows);
}

/* The UTC day of t ("YYYY-MM-DD") and the Monday of its week. */
static void day_week(int64_t t_ms, char day[16], char week[16])
{
    int64_t s = t_ms / 1000; /* as SQLite's time_ms / 1000 */
    int64_t d = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int64_t wd = ((d + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; Monday = 0 */
    struct tm tm;
    time_t a = (time_t)(d * 86400), b = (time_t)((d - wd) * 86400);
    if (gmtime_r(&a, &tm))
        strftime(day, 16, "%Y-%m-%d", &tm);
    if (gmtime_r(&b, &tm))
        strftime(week, 16, "%Y-%m-%d", &tm);
}

/* Counts one submission (sender, its recipients comma-joined). */
static int counts_add(struct counts *c, int mstatus, int mkind, int urgency, int64_t t,
                      const char *sender, const char *rcpts)
{
    int rc = tally_add(&c->totals, "", "", mstatus, 0);
    if (rc != CASENET_OK || mstatus != CASENET_MSG_ACTUAL)
        return rc;
    char day[16] = "", week[16] = "";
    day_week(t, day, week);
    if ((rc = tally_add(&c->per_day, day, "", mkind, urgency)) != CASENET_OK ||
        (rc = tally_add(&c->per_week, week, "", mkind, urgency)) != CASENET_OK)
        return rc;
    for (const char *p = rcpts; p && rc == CASENET_OK;) {
        size_t n = strcspn(p, ",");
        char one[CASENET_MEMBER_ID_MAX + 1];
        snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one ? n : sizeof one - 1), p);
        rc = tally_add(&c->flows, sender ? sender : "", one, 0, 0);
        p = p[n] ? p + n + 1 : NULL;
    }
    return rc;
}

/* A tally as rows of objects: keys (NULL = none) for s1, i1, i2, s2. */
static json_t *tally_rows(struct tally *t, const char *k_s1, const char *k_i1,
                          const char *(*name_i1)(int), const char *k_i2,
                          const char *(*name_i2)(int), const char *k_s2, bool public)
{
    json_t *arr = json_array();
    if (t->n > 1)
        qsort(t->v, t->n, sizeof *t->v, cmp_tally);
    for (size_t i = 0; arr && i < t->n; i++) {
        const struct tally_row *r = &t->v[i];
        json_t *o = json_object();
        const char *n1 = k_i1 ? name_i1(r->i1) : NULL, *n2 = k_i2 ? name_i2(r->i2) : NULL;
        if (k_s1)
            json_object_set_new(o, k_s1, json_string(r->s1));
        if (k_i1)
            json_object_set_new(o, k_i1, json_string(n1 ? n1 : ""));
        if (k_i2)
            json_object_set_new(o, k_i2, json_string(n2 ? n2 : ""));
        if (k_s2)
            json_object_set_new(o, k_s2, json_string(r->s2));
        json_object_set_new(o, "count", count_json(r->count, public));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *counts_section(sqlite3 *db, struct counts *c, int64_t from, int64_t to, bool public)
{
    static const char *const dec_keys[] = {"reason"};
    json_t *o = json_object();
    json_object_set_new(
        o, "totals",
        tally_rows(&c->totals, NULL, "status", casenet_msg_status_name, NULL, NULL, NULL, public));
    json_object_set_new(o, "per_day",
                        tally_rows(&c->per_day, "day", "kind", casenet_kind_name, "urgency",
                                   casenet_urgency_name, NULL, public));
    json_object_set_new(o, "per_week",
                        tally_rows(&c->per_week, "week", "kind", casenet_kind_name, "urgency",
                                   casenet_urgency_name, NULL, public));
    json_object_set_new(o, "flows",
                        tally_rows(&c->flows, "from", NULL, NULL, NULL, NULL, "to", public));
    json_object_set_new(
        o, "declines",
        group_rows(db,
                   "SELECT detail, count(*) FROM events WHERE kind = 4 AND rstatus = 3 AND "
                   "mstatus = 1 AND time_ms >= ?1 AND time_ms < ?2 GROUP BY detail ORDER BY detail",
                   from, to, dec_keys, 1, public));
    return o;
}

static int pairs_add(struct pairs *p, const struct pair *x)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        struct pair *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return CASENET_ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = *x;
    return CASENET_OK;
}

/* One later event about a pair: a receipt (kind 4) or an escalation (5). */
static void pair_apply(struct pair *x, int kind, int rs, int64_t t, const char *dl,
                       const char *detail)
{
    if (kind == 5) { /* ESCALATED */
        x->esc_deliver |= dl && strcmp(dl, "deliver") == 0;
        x->esc_accept |= dl && strcmp(dl, "accept") == 0;
        return;
    }
    if (!x->delivered)
        x->delivered = t;
    if (!x->answered && (rs == CASENET_RECEIPT_ACCEPTED || rs == CASENET_RECEIPT_DECLINED))
        x->answered = t;
    if (x->kind == CASENET_KIND_TAKEDOWN_REQUEST && !x->outcome[0] && t - x->sent <= TAKEDOWN_WIN &&
        (rs == CASENET_RECEIPT_COMPLETED || rs == CASENET_RECEIPT_DECLINED))
        snprintf(x->outcome, sizeof x->outcome, "%s",
                 rs == CASENET_RECEIPT_DECLINED ? "declined" : (detail ? detail : ""));
}

/* An open-addressing index of the pairs by (message id, recipient). */
struct pair_index {
    size_t *slot; /* pair number + 1; 0 = empty */
    size_t mask;
};

static uint64_t pair_hash(const char *mid, const char *who)
{
    uint64_t h = 14695981039346656037u;
    for (const char *p = mid; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211u;
    for (const char *p = who; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211u;
    return h;
}

static int index_build(const struct pairs *ps, struct pair_index *ix)
{
    size_t cap = 16;
    while (cap < ps->n * 2)
        cap *= 2;
    ix->slot = calloc(cap, sizeof *ix->slot);
    ix->mask = cap - 1;
    if (!ix->slot)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < ps->n; i++) {
        size_t h = (size_t)pair_hash(ps->v[i].mid, ps->v[i].recipient) & ix->mask;
        while (ix->slot[h])
            h = (h + 1) & ix->mask;
        ix->slot[h] = i + 1;
    }
    return CASENET_OK;
}

static struct pair *index_find(const struct pairs *ps, const struct pair_index *ix, const char *mid,
                               const char *who)
{
    for (size_t h = (size_t)pair_hash(mid, who) & ix->mask; ix->slot[h]; h = (h + 1) & ix->mask) {
        struct pair *x = &ps->v[ix->slot[h] - 1];
        if (strcmp(x->mid, mid) == 0 && strcmp(x->recipient, who) == 0)
            return x;
    }
    return NULL;
}

/* The receipts and escalations after the first pair's submission, in log
 * order, each applied to its pair. */
static int follow_pairs(sqlite3 *db, struct pairs *ps, int64_t first_idx)
{
    struct pair_index ix = {0};
    sqlite3_stmt *q = NULL;
    int rc = index_build(ps, &ix);
    if (rc != CASENET_OK)
        return rc;
    if (sqlite3_prepare_v2(db,
                           "SELECT message_id, kind, actor, recipients, rstatus, time_ms, deadline,"
                           " detail FROM events WHERE idx > ?1 AND kind IN (4, 5) AND mstatus = 1"
                           " AND mkind IN (1, 5) ORDER BY idx",
                           -1, &q, NULL) != SQLITE_OK) {
        free(ix.slot);
        return CASENET_EIO;
    }
    sqlite3_bind_int64(q, 1, first_idx);
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *mid = (const char *)sqlite3_column_text(q, 0);
        int kind = sqlite3_column_int(q, 1);
        const char *who = (const char *)sqlite3_column_text(q, kind == 4 ? 2 : 3);
        struct pair *x = mid && who ? index_find(ps, &ix, mid, who) : NULL;
        if (x)
            pair_apply(x, kind, sqlite3_column_int(q, 4), sqlite3_column_int64(q, 5),
                       (const char *)sqlite3_column_text(q, 6),
                       (const char *)sqlite3_column_text(q, 7));
    }
    sqlite3_finalize(q);
    free(ix.slot);
    return CASENET_OK;
}

/* The one pass over the submissions in range: every one counted in c, and
 * each (message, recipient) pair of an actual referral or takedown request
 * followed through its receipts and escalations. */
static int load_pairs(sqlite3 *db, int64_t from, int64_t to, struct pairs *out, struct counts *c)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT message_id, recipients, urgency, mkind, time_ms, idx, mstatus,"
                           " actor FROM events WHERE " SUBMITTED_IN_RANGE " ORDER BY idx",
                           -1, &s, NULL) != SQLITE_OK)
        return CASENET_EIO;
    sqlite3_bind_int64(s, 1, from);
    sqlite3_bind_int64(s, 2, to);
    int rc = CASENET_OK;
    int64_t first_idx = -1;
    while (rc == CASENET_OK && sqlite3_step(s) == SQLITE_ROW) {
        const char *mid = (const char *)sqlite3_column_text(s, 0);
        const char *rcpts = (const char *)sqlite3_column_text(s, 1);
        int urgency = sqlite3_column_int(s, 2), mkind = sqlite3_column_int(s, 3);
        int mstatus = sqlite3_column_int(s, 6);
        int64_t t = sqlite3_column_int64(s, 4);
        rc = counts_add(c, mstatus, mkind, urgency, t, (const char *)sqlite3_column_text(s, 7),
                        rcpts);
        if (mstatus != CASENET_MSG_ACTUAL ||
            (mkind != CASENET_KIND_REFERRAL && mkind != CASENET_KIND_TAKEDOWN_REQUEST))
            continue;
        if (first_idx < 0)
            first_idx = sqlite3_column_int64(s, 5);
        for (const char *p = rcpts; mid && p && *p && rc == CASENET_OK;) {
            size_t n = strcspn(p, ",");
            struct pair x = {.urgency = urgency, .kind = mkind, .sent = t};
            snprintf(x.recipient, sizeof x.recipient, "%.*s", (int)n, p);
            snprintf(x.mid, sizeof x.mid, "%s", mid);
            rc = pairs_add(out, &x);
            p = p[n] ? p + n + 1 : NULL;
        }
    }
    sqlite3_finalize(s);
    if (rc == CASENET_OK && out->n)
        rc = follow_pairs(db, out, first_idx);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted durations, in seconds (3 decimals). */
static json_t *pct(const int64_t *v, size_t n, unsigned p, bool hide)
{
    if (n == 0 || hide)
        return json_null();
    size_t rank = (n * p + 99) / 100;
    return json_real((double)v[rank ? rank - 1 : 0] / 1000.0);
}

static json_t *share(size_t ok, size_t n, bool hide)
{
    return n == 0 || hide ? json_null() : json_real((double)ok / (double)n);
}

static int cmp_group(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->recipient, y->recipient);
    return c ? c : x->urgency - y->urgency;
}

/* Times per recipient and urgency (pairs sorted by it). */
static json_t *times_section(struct pairs *ps, bool public)
{
    json_t *arr = json_array();
    if (ps->n > 1)
        qsort(ps->v, ps->n, sizeof *ps->v, cmp_group);
    int64_t *d = malloc((ps->n + 1) * sizeof *d), *a = malloc((ps->n + 1) * sizeof *a);
    for (size_t i = 0; d && a && i < ps->n;) {
        size_t j = i, nd = 0, na = 0, okd = 0, oka = 0;
        for (; j < ps->n && cmp_group(&ps->v[i], &ps->v[j]) == 0; j++) {
            const struct pair *x = &ps->v[j];
            if (x->delivered)
                d[nd++] = x->delivered - x->sent;
            if (x->answered)
                a[na++] = x->answered - x->sent;
            okd += !x->esc_deliver;
            oka += !x->esc_accept;
        }
        size_t n = j - i;
        bool hide = public && n < COORD_SMALL_CELL;
        qsort(d, nd, sizeof *d, cmp_i64);
        qsort(a, na, sizeof *a, cmp_i64);
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "recipient",
                      ps->v[i].recipient, "urgency", casenet_urgency_name(ps->v[i].urgency),
                      "messages", count_json((json_int_t)n, public), "delivered",
                      count_json((json_int_t)nd, public), "delivered_p50_s", pct(d, nd, 50, hide),
                      "delivered_p90_s", pct(d, nd, 90, hide), "delivered_within",
                      share(okd, n, hide), "answered", count_json((json_int_t)na, public),
                      "answered_p50_s", pct(a, na, 50, hide), "answered_p90_s",
                      pct(a, na, 90, hide), "answered_within", share(oka, n, hide)));
        i = j;
    }
    free(d);
    free(a);
    return arr;
}

/* Takedown requests and what came of them within 24 h. */
static json_t *takedowns_section(const struct pairs *ps, bool public)
{
    json_t *by = json_object();
    json_int_t requests = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->v[i].kind != CASENET_KIND_TAKEDOWN_REQUEST)
            continue;
        requests++;
        const char *k = ps->v[i].outcome[0] ? ps->v[i].outcome : "none";
        json_t *c = json_object_get(by, k);
        json_object_set_new(by, k, json_integer(c ? json_integer_value(c) + 1 : 1));
    }
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(by, k, v)
    {
        json_array_append_new(arr, json_pack("{s:s, s:o}", "outcome", k, "count",
                                             count_json(json_integer_value(v), public)));
    }
    json_decref(by);
    return json_pack("{s:o, s:o}", "requests", count_json(requests, public), "outcomes_24h", arr);
}

json_t *coord_figures(sqlite3 *db, int64_t from_ms, int64_t to_ms, bool public,
                      const struct coord_head *head)
{
    struct pairs ps = {0};
    struct counts c = {0};
    if (load_pairs(db, from_ms, to_ms, &ps, &c) != CASENET_OK) {
        free(ps.v);
        counts_free(&c);
        return NULL;
    }
    json_t *o = counts_section(db, &c, from_ms, to_ms, public);
    counts_free(&c);
    char root[65];
    sodium_bin2hex(root, sizeof root, head->root, sizeof head->root);
    json_object_set_new(o, "times", times_section(&ps, public));
    json_object_set_new(o, "takedowns", takedowns_section(&ps, public));
    json_object_set_new(o, "from", json_integer(from_ms));
    json_object_set_new(o, "to", json_integer(to_ms));
    json_object_set_new(o, "public", json_boolean(public));
    json_object_set_new(o, "head",
                        json_pack("{s:I, s:s, s:I}", "size", (json_int_t)head->size, "root", root,
                                  "time", (json_int_t)head->time_ms));
    free(ps.v);
    return o;
}

bool coord_month(const char *month, int64_t *from_ms, int64_t *to_ms)
{
    int y = 0, m = 0;
    char end;
    if (!month || strlen(month) != 7 || sscanf(month, "%4d-%2d%c", &y, &m, &end) != 2 ||
        month[4] != '-' || y < 1970 || y > 9999 || m < 1 || m > 12)
        return false;
    struct tm a = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 1};
    struct tm b = {.tm_year = (m == 12 ? y + 1 : y) - 1900, .tm_mon = m % 12, .tm_mday = 1};
    *from_ms = (int64_t)timegm(&a) * 1000;
    *to_ms = (int64_t)timegm(&b) * 1000;
    return true;
}

/* One CSV field, quoted when it needs it. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static bool is_metric(const json_t *v)
{
    return json_is_number(v) || json_is_null(v) || json_is_boolean(v) ||
           (json_is_string(v) && strcmp(json_string_value(v), "<5") == 0);
}

static void csv_value(FILE *f, const json_t *v)
{
    if (json_is_integer(v))
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        fprintf(f, "%.3f", json_real_value(v));
    else if (json_is_string(v))
        csv_field(f, json_string_value(v));
    else if (json_is_boolean(v))
        fputs(json_is_true(v) ? "true" : "false", f);
}

/* One row per metric of o: section, its up to three key fields, metric,
 * value. */
static void csv_object(FILE *f, const char *section, const json_t *o)
{
    const char *keys[3] = {"", "", ""};
    int nk = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (!is_metric(v) && json_is_string(v) && nk < 3)
            keys[nk++] = json_string_value(v);
    }
    json_object_foreach((json_t *)o, k, v)
    {
        if (!is_metric(v))
            continue;
        csv_field(f, section);
        for (int i = 0; i < 3; i++) {
            fputc(',', f);
            csv_field(f, keys[i]);
        }
        fprintf(f, ",%s,", k);
        csv_value(f, v);
        fputc('\n', f);
    }
}

int coord_figures_csv(const json_t *fig, FILE *f)
{
    static const char *const sections[] = {"totals", "per_day", "per_week",
                                           "flows",  "times",   "declines"};
    fputs("section,key1,key2,key3,metric,value\n", f);
    const json_t *h = json_object_get(fig, "head");
    fprintf(f,
            "head,,,,size,%" JSON_INTEGER_FORMAT
            "\nhead,,,,root,%s\nhead,,,,time,%" JSON_INTEGER_FORMAT "\n",
            json_integer_value(json_object_get(h, "size")),
            json_string_value(json_object_get(h, "root")),
            json_integer_value(json_object_get(h, "time")));
    json_t *range = json_pack("{s:O, s:O, s:O}", "from", json_object_get(fig, "from"), "to",
                              json_object_get(fig, "to"), "public", json_object_get(fig, "public"));
    if (range)
        csv_object(f, "range", range);
    json_decref(range);
    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(fig, sections[s]), i, row)
            csv_object(f, sections[s], row);
    }
    const json_t *td = json_object_get(fig, "takedowns");
    json_t *req = json_pack("{s:O}", "requests", json_object_get(td, "requests"));
    if (req)
        csv_object(f, "takedowns", req);
    json_decref(req);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(td, "outcomes_24h"), i, row)
        csv_object(f, "takedowns_24h", row);
    return ferror(f) ? CASENET_EIO : CASENET_OK;
}
