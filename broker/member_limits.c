/* member_limits.c - per-member token buckets and the disk reserve's split (see member_limits.h). */
#include "member_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "log.h"

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
};

struct limits {
    struct limits_rate rate[LIMITS_BUCKETS_N];
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
