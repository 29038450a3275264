/* member_limits.c - per-member token buckets for Submit (see member_limits.h). */
#include "member_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "log.h"
#include "util.h"

#define LIMITS_BUCKETS 256u
#define MILLI          1000 /* tokens are counted in thousandths */

struct member_state {
    struct member_state *next;
    char member[CASENET_MEMBER_ID_MAX + 1];
    int64_t tokens_milli; /* 0 .. burst * MILLI */
    int64_t last_ms;      /* when tokens_milli was last brought up to date */
    bool limited;         /* refused since last admitted */
    uint32_t pending;     /* requests waiting for a batch (limits_pending) */
    /* The escalation period (broker time; 0 = none open). */
    int64_t esc_start_ms;
    uint32_t esc_notified, esc_summarized;
    uint8_t esc_last[CASENET_MESSAGE_ID_BYTES];
};

struct limits {
    uint32_t rate, burst;
    uint32_t esc_budget;
    int64_t esc_period_ms;
    struct member_state *bucket[LIMITS_BUCKETS];
};

struct limits *limits_new(uint32_t submit_rate, uint32_t submit_burst)
{
    struct limits *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->rate = submit_rate;
    l->burst = submit_burst ? submit_burst : submit_rate;
    if (l->burst == 0)
        l->burst = 1;
    return l;
}

void limits_free(struct limits *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < LIMITS_BUCKETS; i++) {
        struct member_state *m = l->bucket[i];
        while (m) {
            struct member_state *next = m->next;
            free(m);
            m = next;
        }
    }
    free(l);
}

/* FNV-1a over the member id. */
static size_t slot(const char *member)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)member; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % LIMITS_BUCKETS;
}

static struct member_state *lookup(struct limits *l, const char *member, int64_t now_ms)
{
    size_t i = slot(member);
    for (struct member_state *m = l->bucket[i]; m; m = m->next)
        if (strcmp(m->member, member) == 0)
            return m;
    struct member_state *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    snprintf(m->member, sizeof m->member, "%s", member);
    m->tokens_milli = (int64_t)l->burst * MILLI;
    m->last_ms = now_ms;
    m->next = l->bucket[i];
    l->bucket[i] = m;
    return m;
}

int limits_take_submit(struct limits *l, const char *member, int64_t now_ms,
                       uint32_t *retry_after_ms, bool *first)
{
    *retry_after_ms = 0;
    *first = false;
    if (!l || l->rate == 0)
        return CASENET_OK;
    struct member_state *m = lookup(l, member, now_ms);
    if (!m)
        return CASENET_ENOMEM;
    int64_t cap = (int64_t)l->burst * MILLI;
    if (now_ms > m->last_ms) {
        /* rate tokens per second = rate thousandths per millisecond */
        int64_t add = (now_ms - m->last_ms) * (int64_t)l->rate;
        m->tokens_milli = add >= cap - m->tokens_milli ? cap : m->tokens_milli + add;
        m->last_ms = now_ms;
    }
    if (m->tokens_milli >= MILLI) {
        m->tokens_milli -= MILLI;
        m->limited = false;
        return CASENET_OK;
    }
    int64_t need = MILLI - m->tokens_milli;
    int64_t wait = (need + l->rate - 1) / l->rate;
    *retry_after_ms = wait < 1 ? 1 : (uint32_t)wait;
    *first = !m->limited;
    m->limited = true;
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
    for (size_t i = 0; i < LIMITS_BUCKETS; i++) {
        for (struct member_state *m = l->bucket[i]; m; m = m->next) {
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

uint32_t limits_submit_tokens(const struct limits *l, const char *member, int64_t now_ms)
{
    if (!l || l->rate == 0)
        return UINT32_MAX;
    for (const struct member_state *m = l->bucket[slot(member)]; m; m = m->next) {
        if (strcmp(m->member, member) != 0)
            continue;
        int64_t cap = (int64_t)l->burst * MILLI, tokens = m->tokens_milli;
        if (now_ms > m->last_ms) {
            int64_t add = (now_ms - m->last_ms) * (int64_t)l->rate;
            tokens = add >= cap - tokens ? cap : tokens + add;
        }
        return (uint32_t)(tokens / MILLI);
    }
    return l->burst;
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
    default:
        break;
    }
    *cost = 1 + (uint32_t)(rows / LIMITS_COST_ROWS);
}

bool limits_disk_ok(const char *dir, uint32_t min_free_mb, uint64_t *avail_mb)
{
    *avail_mb = UINT64_MAX;
    if (min_free_mb == 0)
        return true;
    struct statvfs v;
    if (statvfs(dir, &v) != 0) {
        log_event(LOG_WARN, "statvfs_failed", "path", dir, NULL);
        return true;
    }
    *avail_mb = (uint64_t)v.f_bavail * v.f_frsize / (1024u * 1024u);
    return *avail_mb >= min_free_mb;
}
