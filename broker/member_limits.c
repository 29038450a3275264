/* member_limits.c - per-member token buckets and the disk reserve's split (see member_limits.h). */
#include "member_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "log.h"
#include "util.h"

#define LIMITS_SLOTS 256u
/* Tokens are counted in sixty-thousandths: a rate of per_min tokens a
 * minute then adds exactly per_min units a millisecond. */
#define UNIT 60000

struct bucket {
    int64_t units;   /* 0 .. burst * UNIT */
    int64_t last_ms; /* when units was last brought up to date */
    bool limited;    /* refused since last admitted */
};

struct member_state {
    struct member_state *next;
    char member[CASENET_MEMBER_ID_MAX + 1];
    struct bucket b[LIMITS_BUCKETS_N];
    uint32_t pending; /* requests waiting for a batch (limits_pending) */
    /* The escalation period (broker time; 0 = none open). */
    int64_t esc_start_ms;
    uint32_t esc_notified, esc_summarized;
    uint8_t esc_last[CASENET_MESSAGE_ID_BYTES];
};

struct limits {
    struct limits_rate rate[LIMITS_BUCKETS_N];
    uint32_t esc_budget;
    int64_t esc_period_ms;
    struct member_state *slot[LIMITS_SLOTS];
};

struct limits *limits_new(const struct limits_rate *rates)
{
    struct limits *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    for (size_t i = 0; rates && i < LIMITS_BUCKETS_N; i++) {
        l->rate[i] = rates[i];
        if (l->rate[i].burst == 0)
            l->rate[i].burst = rates[i].per_min ? rates[i].per_min : 1;
    }
    return l;
}

void limits_free(struct limits *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < LIMITS_SLOTS; i++) {
        struct member_state *m = l->slot[i];
        while (m) {
            struct member_state *next = m->next;
            free(m);
            m = next;
        }
    }
    free(l);
}

const char *limits_class_name(enum limits_class cls)
{
    static const char *const names[] = {"submit", "fetch", "receipt", "audit", "broker"};
    return cls <= LIMITS_BROKER ? names[cls] : "unknown";
}

/* FNV-1a over the member id. */
static size_t slot_of(const char *member)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)member; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % LIMITS_SLOTS;
}

static struct member_state *find(const struct limits *l, const char *member)
{
    for (struct member_state *m = l->slot[slot_of(member)]; m; m = m->next)
        if (strcmp(m->member, member) == 0)
            return m;
    return NULL;
}

static struct member_state *lookup(struct limits *l, const char *member, int64_t now_ms)
{
    struct member_state *m = find(l, member);
    if (m)
        return m;
    if (!(m = calloc(1, sizeof *m)))
        return NULL;
    snprintf(m->member, sizeof m->member, "%s", member);
    for (size_t i = 0; i < LIMITS_BUCKETS_N; i++) {
        m->b[i].units = (int64_t)l->rate[i].burst * UNIT;
        m->b[i].last_ms = now_ms;
    }
    size_t i = slot_of(member);
    m->next = l->slot[i];
    l->slot[i] = m;
    return m;
}

/* The bucket's units at now_ms (refilled, capped at burst). */
static int64_t refilled(const struct limits_rate *r, const struct bucket *b, int64_t now_ms)
{
    int64_t cap = (int64_t)r->burst * UNIT, units = b->units;
    if (now_ms > b->last_ms) {
        int64_t add = (now_ms - b->last_ms) * (int64_t)r->per_min;
        units = add >= cap - units ? cap : units + add;
    }
    return units;
}

int limits_take(struct limits *l, enum limits_class cls, const char *member, int64_t now_ms,
                uint32_t *retry_after_ms, bool *first)
{
    *retry_after_ms = 0;
    *first = false;
    if (!l || cls >= LIMITS_BUCKETS_N || l->rate[cls].per_min == 0)
        return CASENET_OK;
    const struct limits_rate *r = &l->rate[cls];
    struct member_state *m = lookup(l, member, now_ms);
    if (!m)
        return CASENET_ENOMEM;
    struct bucket *b = &m->b[cls];
    b->units = refilled(r, b, now_ms);
    if (now_ms > b->last_ms)
        b->last_ms = now_ms;
    if (b->units >= UNIT) {
        b->units -= UNIT;
        b->limited = false;
        return CASENET_OK;
    }
    int64_t wait = (UNIT - b->units + r->per_min - 1) / r->per_min;
    *retry_after_ms = wait < 1 ? 1 : wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
    *first = !b->limited;
    b->limited = true;
    return CASENET_ERATELIMIT;
}

uint32_t limits_pending(struct limits *l, const char *member, int delta)
{
    struct member_state *m = l ? lookup(l, member, cn_mono_ms()) : NULL;
    if (!m)
        return 0;
    if (delta < 0)
        m->pending = m->pending >= (uint32_t)-delta ? m->pending - (uint32_t)-delta : 0;
    else
        m->pending += (uint32_t)delta;
    return m->pending;
}

void limits_set_escalation(struct limits *l, uint32_t budget, int64_t period_ms)
{
    l->esc_budget = budget;
    l->esc_period_ms = period_ms > 0 ? period_ms : 1;
}

bool limits_take_escalation(struct limits *l, const char *sender,
                            const uint8_t id[CASENET_MESSAGE_ID_BYTES], int64_t now_ms)
{
    if (!l || l->esc_budget == 0)
        return true;
    struct member_state *m = lookup(l, sender, cn_mono_ms());
    if (!m)
        return true;
    if (m->esc_start_ms && now_ms - m->esc_start_ms >= l->esc_period_ms && !m->esc_summarized)
        m->esc_start_ms = 0; /* ended with nothing to summarise */
    if (!m->esc_start_ms) {
        m->esc_start_ms = now_ms;
        m->esc_notified = 0;
    }
    /* The budget's last notice is the summary's. */
    if (m->esc_summarized == 0 && m->esc_notified + 1 < l->esc_budget) {
        m->esc_notified++;
        return true;
    }
    m->esc_summarized++;
    memcpy(m->esc_last, id, sizeof m->esc_last);
    return false;
}

int limits_escalation_periods(struct limits *l, int64_t now_ms,
                              int (*fn)(void *arg, const struct limits_esc_summary *sum), void *arg)
{
    if (!l || l->esc_budget == 0)
        return CASENET_OK;
    for (size_t i = 0; i < LIMITS_SLOTS; i++) {
        for (struct member_state *m = l->slot[i]; m; m = m->next) {
            if (!m->esc_start_ms || now_ms - m->esc_start_ms < l->esc_period_ms)
                continue;
            if (m->esc_summarized) {
                struct limits_esc_summary sum = {.summarized = m->esc_summarized,
                                                 .period_start_ms = m->esc_start_ms};
                snprintf(sum.sender, sizeof sum.sender, "%s", m->member);
                memcpy(sum.last_id, m->esc_last, sizeof sum.last_id);
                int rc = fn(arg, &sum);
                if (rc != CASENET_OK)
                    return rc;
            }
            m->esc_start_ms = 0;
            m->esc_notified = m->esc_summarized = 0;
        }
    }
    return CASENET_OK;
}

uint32_t limits_tokens(const struct limits *l, enum limits_class cls, const char *member,
                       int64_t now_ms)
{
    if (!l || cls >= LIMITS_BUCKETS_N || l->rate[cls].per_min == 0)
        return UINT32_MAX;
    const struct member_state *m = find(l, member);
    if (!m)
        return l->rate[cls].burst;
    return (uint32_t)(refilled(&l->rate[cls], &m->b[cls], now_ms) / UNIT);
}

/* ------------------------------------------------------------ request cost */

/* Protocol Buffers wire format: a varint at *p (advanced); false when
 * truncated or longer than 10 bytes. */
static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Skips a field of wire type wt at *p; for a length-delimited one, *body
 * and *body_len (may be NULL) get its bytes. false when malformed. */
static bool wire_skip(const uint8_t **p, const uint8_t *end, unsigned wt, const uint8_t **body,
                      size_t *body_len)
{
    uint64_t v = 0;
    switch (wt) {
    case 0:
        return wire_varint(p, end, &v);
    case 1:
    case 5: {
        size_t n = wt == 1 ? 8 : 4;
        if ((size_t)(end - *p) < n)
            return false;
        *p += n;
        return true;
    }
    case 2:
        if (!wire_varint(p, end, &v) || v > (uint64_t)(end - *p))
            return false;
        if (body) {
            *body = *p;
            *body_len = (size_t)v;
        }
        *p += v;
        return true;
    default:
        return false;
    }
}

#define WIRE_FIELDS 9 /* the varint fields 1..8 of a request body */

/* The varint fields 1..8 of a message (the last of each wins, as when
 * unpacking); stops at the first malformed byte. */
static void wire_varints(const uint8_t *p, const uint8_t *end, uint64_t v[WIRE_FIELDS])
{
    while (p < end) {
        uint64_t key = 0;
        if (!wire_varint(&p, end, &key))
            return;
        uint64_t f = key >> 3;
        unsigned wt = (unsigned)(key & 7);
        if (wt == 0 && f < WIRE_FIELDS) {
            if (!wire_varint(&p, end, &v[f]))
                return;
        } else if (!wire_skip(&p, end, wt, NULL, NULL)) {
            return;
        }
    }
}

/* A page limit as the handlers read it: 0 = def, at most max. */
static uint64_t page(uint64_t limit, uint64_t def, uint64_t max)
{
    return limit == 0 ? def : limit > max ? max : limit;
}

void limits_request_peek(const uint8_t *frame, size_t len, uint32_t *cost, uint64_t *request_id)
{
    *cost = 1;
    *request_id = 0;
    const uint8_t *p = frame, *end = frame + len, *body = NULL;
    size_t body_len = 0;
    uint64_t body_field = 0;
    while (frame && p < end) {
        uint64_t key = 0, v = 0;
        if (!wire_varint(&p, end, &key))
            return;
        uint64_t f = key >> 3;
        unsigned wt = (unsigned)(key & 7);
        if (f == 2 && wt == 0) {
            if (!wire_varint(&p, end, &v))
                return;
            *request_id = v;
            continue;
        }
        const uint8_t *b = NULL;
        size_t bl = 0;
        if (!wire_skip(&p, end, wt, &b, &bl))
            return;
        if (wt == 2 && f >= 10) {
            body_field = f;
            body = b;
            body_len = bl;
        }
    }
    uint64_t v[WIRE_FIELDS] = {0}, rows = 0;
    if (body)
        wire_varints(body, body + body_len, v);
    switch (body_field) {
    case 14: /* ListInbox{state, cursor, limit = 3} */
        rows = page(v[3], 100, 1000);
        break;
    case 21: /* AuditQuery: its filters decide, up to the examined bound */
        rows = LIMITS_AUDIT_QUERY_ROWS;
        break;
    case 23: /* AuditExport{from_index, limit = 2} */
        rows = page(v[2], 1000, 10000);
        break;
    case 25: /* ListSent{open_only = 1, kind = 2, cursor, limit = 4}: filtered,
              * up to eight pages are examined */
        rows = page(v[4], 100, 1000) * (v[1] || v[2] ? 8 : 1);
        break;
    case 26: /* ListOverdue{cursor, limit = 2} */
        rows = page(v[2], 100, 1000);
        break;
    case 40: /* BlobPut{..., total_chunks = 4}: looks at each chunk's file */
        rows = v[4] < CASENET_ATTACH_MAX_CHUNKS ? v[4] : CASENET_ATTACH_MAX_CHUNKS;
        break;
    case 41: /* BlobStatus: the same, its chunk count unknown until the meta */
        rows = CASENET_ATTACH_MAX_CHUNKS;
        break;
    default:
        break;
    }
    *cost = 1 + (uint32_t)(rows / LIMITS_COST_ROWS);
}
_Static_assert(LIMITS_AUDIT_QUERY_ROWS <= CASENET_ATTACH_MAX_CHUNKS,
               "LIMITS_COST_MAX is a BlobStatus's cost");

uint64_t limits_disk_avail_kb(const char *dir)
{
    struct statvfs v;
    if (statvfs(dir, &v) != 0) {
        log_event(LOG_WARN, "statvfs_failed", "path", dir, NULL);
        return UINT64_MAX;
    }
    return (uint64_t)v.f_bavail * v.f_frsize / 1024u;
}

uint64_t limits_disk_floor_kb(uint32_t min_free_mb, enum limits_class cls)
{
    uint64_t kb = (uint64_t)min_free_mb * 1024u;
    switch (cls) {
    case LIMITS_SUBMIT:
        return kb;
    case LIMITS_FETCH:
    case LIMITS_AUDIT:
        return kb / 2;
    case LIMITS_RECEIPT:
        return kb / 4;
    default:
        return 0;
    }
}
