/* auditlog.c - the audit log verifier, its remembered state and the export
 * file (see auditlog.h and PROTOCOL.md §10.3, §10.4). */
#include "auditlog.h"

#include "casenet.pb-c.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC     "casenet-audit-state-v1\n"
#define STATE_MAGIC_LEN (sizeof STATE_MAGIC - 1)
/* A varint of a length up to AUDITV_RECORD_MAX needs at most 4 bytes; read
 * at most 10 (any uint64) and refuse what is too large. */
#define VARINT_MAX_BYTES 10

_Static_assert(AUDITV_RECORD_MAX < (1u << 28), "record lengths fit 4 varint bytes");

/* ------------------------------------------------------------------ failures */

static void set_fail(struct auditv_failure *f, enum auditv_where where, int err, uint64_t index,
                     uint64_t head_size, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void set_fail(struct auditv_failure *f, enum auditv_where where, int err, uint64_t index,
                     uint64_t head_size, const char *fmt, ...)
{
    if (!f)
        return;
    f->where = where;
    f->err = err;
    f->index = index;
    f->head_size = head_size;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof f->reason, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ state */

void auditv_state_init(struct auditv_state *s)
{
    memset(s, 0, sizeof *s);
    merkle_stack_init(&s->range);
    merkle_empty_root(s->root);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* True when s's range, root and checkpoint agree. */
static bool state_consistent(const struct auditv_state *s)
{
    uint8_t root[MERKLE_HASH_BYTES];
    if (merkle_stack_size(&s->range) != s->size || s->checkpoint_len > sizeof s->checkpoint ||
        s->time_ms < 0)
        return false;
    merkle_stack_root(&s->range, root);
    if (sodium_memcmp(root, s->root, sizeof root) != 0)
        return false;
    if (s->checkpoint_len == 0)
        return s->size == 0 && s->time_ms == 0;
    struct ckpt_head h;
    return ckpt_parse(s->checkpoint, s->checkpoint_len, &h) == CASENET_OK && h.size == s->size &&
           h.time_ms == s->time_ms && sodium_memcmp(h.root, s->root, sizeof h.root) == 0;
}

int auditv_state_encode(const struct auditv_state *s, casenet_buf *out)
{
    if (!state_consistent(s))
        return CASENET_EINVAL;
    size_t levels = (size_t)__builtin_popcountll(s->size);
    size_t len = STATE_MAGIC_LEN + 8 + 8 + MERKLE_HASH_BYTES + levels * MERKLE_HASH_BYTES + 2 +
                 s->checkpoint_len + CASENET_HASH_BYTES;
    uint8_t *buf = malloc(len), *p = buf;
    if (!buf)
        return CASENET_ENOMEM;
    memcpy(p, STATE_MAGIC, STATE_MAGIC_LEN), p += STATE_MAGIC_LEN;
    put_be64(p, s->size), p += 8;
    put_be64(p, (uint64_t)s->time_ms), p += 8;
    memcpy(p, s->root, MERKLE_HASH_BYTES), p += MERKLE_HASH_BYTES;
    for (int l = MERKLE_STACK_LEVELS - 1; l >= 0; l--) {
        if (s->size >> l & 1) {
            memcpy(p, s->range.hash[l], MERKLE_HASH_BYTES);
            p += MERKLE_HASH_BYTES;
        }
    }
    *p++ = (uint8_t)(s->checkpoint_len >> 8);
    *p++ = (uint8_t)s->checkpoint_len;
    memcpy(p, s->checkpoint, s->checkpoint_len);
    p += s->checkpoint_len;
    cn_sha256(buf, (size_t)(p - buf), p);
    out->data = buf;
    out->len = len;
    return CASENET_OK;
}

int auditv_state_decode(const uint8_t *buf, size_t len, struct auditv_state *out)
{
    size_t fixed = STATE_MAGIC_LEN + 8 + 8 + MERKLE_HASH_BYTES;
    uint8_t sum[CASENET_HASH_BYTES];
    if (len < fixed + 2 + sizeof sum || memcmp(buf, STATE_MAGIC, STATE_MAGIC_LEN) != 0)
        return CASENET_EBADREQ;
    len -= sizeof sum;
    cn_sha256(buf, len, sum);
    if (memcmp(sum, buf + len, sizeof sum) != 0)
        return CASENET_EBADREQ;
    struct auditv_state s;
    auditv_state_init(&s);
    const uint8_t *p = buf + STATE_MAGIC_LEN;
    s.size = get_be64(p), p += 8;
    uint64_t t = get_be64(p);
    p += 8;
    if (t > INT64_MAX)
        return CASENET_EBADREQ;
    s.time_ms = (int64_t)t;
    memcpy(s.root, p, MERKLE_HASH_BYTES), p += MERKLE_HASH_BYTES;
    size_t levels = (size_t)__builtin_popcountll(s.size);
    if (len - fixed - 2 < levels * MERKLE_HASH_BYTES)
        return CASENET_EBADREQ;
    s.range.size = s.size;
    for (int l = MERKLE_STACK_LEVELS - 1; l >= 0; l--) {
        if (s.size >> l & 1) {
            memcpy(s.range.hash[l], p, MERKLE_HASH_BYTES);
            p += MERKLE_HASH_BYTES;
        }
    }
    s.checkpoint_len = (size_t)p[0] << 8 | p[1];
    p += 2;
    if (s.checkpoint_len > sizeof s.checkpoint || (size_t)(buf + len - p) != s.checkpoint_len)
        return CASENET_EBADREQ;
    memcpy(s.checkpoint, p, s.checkpoint_len);
    if (!state_consistent(&s))
        return CASENET_EBADREQ;
    *out = s;
    return CASENET_OK;
}

int auditv_state_save(const char *path, const struct auditv_state *s)
{
    casenet_buf b = {0};
    int rc = auditv_state_encode(s, &b);
    if (rc != CASENET_OK)
        return rc;
    rc = cn_write_file_atomic(path, b.data, b.len, 0600, false);
    casenet_buf_free(&b);
    return rc;
}

int auditv_state_load(const char *path, struct auditv_state *out)
{
    casenet_buf b = {0};
    errno = 0;
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return errno == ENOENT ? CASENET_ENOTFOUND : CASENET_EIO;
    fclose(probe);
    int rc = cn_read_file(path, 64u * 1024u, &b);
    if (rc != CASENET_OK)
        return rc;
    rc = auditv_state_decode(b.data, b.len, out);
    casenet_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ verifier */

/* A head verified in form and signature, waiting for its size. */
struct pending {
    struct ckpt_head h;
    size_t len;
    uint8_t bytes[CKPT_MAX_BYTES];
};

struct auditv {
    struct auditv_config cfg;
    struct auditv_state trusted;
    bool scratch;       /* started at 0 below a remembered size */
    bool remembered_ok; /* scratch: the remembered root was reached and matched */
    bool finished;
    struct merkle_stack stack; /* the events consumed */
    uint64_t next;             /* index of the next event */
    struct auditv_state last;  /* the last verified head (the start point before any) */
    uint64_t heads;
    struct auditv_epoch epoch; /* an accepted epoch change */
    uint64_t fed_size;         /* largest head size fed so far (order check) */
    int64_t fed_time;          /* time of the last head fed (order check) */
    struct pending *pend;      /* FIFO: [pend_first, pend_n) wait */
    size_t pend_first, pend_n, pend_cap;
    struct auditv_failure fail;
};

int auditv_new(const struct auditv_config *cfg, const struct auditv_state *trusted, uint64_t start,
               struct auditv **out)
{
    struct auditv_state empty;
    auditv_state_init(&empty);
    if (!trusted)
        trusted = &empty;
    if (!cfg->origin || !cfg->key_name || !cfg->sign_pk || (start != 0 && start != trusted->size) ||
        !state_consistent(trusted))
        return CASENET_EINVAL;
    struct auditv *v = calloc(1, sizeof *v);
    if (!v)
        return CASENET_ENOMEM;
    v->cfg = *cfg;
    v->trusted = *trusted;
    if (start == trusted->size) {
        v->stack = trusted->range;
        v->last = *trusted;
        v->fed_size = trusted->size;
        v->fed_time = trusted->time_ms;
    } else {
        v->scratch = true;
        merkle_stack_init(&v->stack);
        auditv_state_init(&v->last);
        v->fed_size = 0;
        v->fed_time = INT64_MIN;
    }
    v->next = start;
    *out = v;
    return CASENET_OK;
}

void auditv_free(struct auditv *v)
{
    if (!v)
        return;
    free(v->pend);
    free(v);
}

const struct auditv_failure *auditv_failure(const struct auditv *v)
{
    return &v->fail;
}

void auditv_counts(const struct auditv *v, uint64_t *events, uint64_t *heads,
                   uint64_t *unsigned_tail)
{
    if (events)
        *events = v->next;
    if (heads)
        *heads = v->heads;
    if (unsigned_tail)
        *unsigned_tail = v->next - v->last.size;
}

/* Checks head h (size == v->next) against the recomputed root. */
static int check_head(struct auditv *v, const struct ckpt_head *h, const uint8_t *bytes, size_t len)
{
    uint8_t root[MERKLE_HASH_BYTES];
    merkle_stack_root(&v->stack, root);
    if (sodium_memcmp(root, h->root, sizeof root) != 0) {
        uint64_t a = v->last.size;
        const char *before = !v->scratch && a == v->trusted.size && a > 0
                                 ? "the history before the remembered head"
                                 : "the history before";
        set_fail(&v->fail, AUDITV_HEAD, CASENET_EBADSIG, a, h->size,
                 "head of size %" PRIu64 ": root mismatch: an event in [%" PRIu64 ", %" PRIu64
                 ") was changed, or %s of size %" PRIu64
                 " was rewritten (the log was rewritten at or before index %" PRIu64 ")",
                 h->size, a, h->size, before, a, h->size - 1);
        return CASENET_EBADSIG;
    }
    v->last.size = h->size;
    v->last.time_ms = h->time_ms;
    memcpy(v->last.root, root, sizeof root);
    v->last.range = v->stack;
    memcpy(v->last.checkpoint, bytes, len);
    v->last.checkpoint_len = len;
    v->heads++;
    if (v->cfg.on_head)
        v->cfg.on_head(v->cfg.hooks_ctx, h->size, h->time_ms, bytes, len);
    return CASENET_OK;
}

/* Scratch mode: once exactly trusted.size events are in, their root must be
 * the remembered one. */
static int check_remembered(struct auditv *v)
{
    if (!v->scratch || v->remembered_ok || v->next != v->trusted.size)
        return CASENET_OK;
    uint8_t root[MERKLE_HASH_BYTES];
    merkle_stack_root(&v->stack, root);
    if (sodium_memcmp(root, v->trusted.root, sizeof root) != 0) {
        set_fail(&v->fail, AUDITV_REMEMBERED, CASENET_EBADSIG, 0, v->trusted.size,
                 "remembered head of size %" PRIu64 ": the log's first %" PRIu64
                 " events do not have its root: the history in [0, %" PRIu64
                 ") was rewritten since it was remembered",
                 v->trusted.size, v->trusted.size, v->trusted.size);
        return CASENET_EBADSIG;
    }
    v->remembered_ok = true;
    return CASENET_OK;
}

static void progress(struct auditv *v)
{
    if (v->cfg.progress)
        v->cfg.progress(v->cfg.progress_ctx, v->next, v->cfg.total);
}

/* A LOG_RESTORED event e at index i: in scratch mode below the remembered
 * head, accepts the epoch change it declares or fails (see the header). */
static int check_epoch(struct auditv *v, const Casenet__V1__AuditEvent *e, uint64_t i)
{
    if (!v->scratch || v->remembered_ok || v->trusted.size <= i)
        return CASENET_OK; /* nothing remembered beyond it: an ordinary event */
    uint64_t m = v->trusted.size, p = e->previous_size;
    bool named = p > m || p == 0 ||
                 (p == m && e->previous_root.len == MERKLE_HASH_BYTES &&
                  sodium_memcmp(e->previous_root.data, v->trusted.root, MERKLE_HASH_BYTES) == 0);
    if (!named) {
        set_fail(&v->fail, AUDITV_REMEMBERED, CASENET_EROLLBACK, i, m,
                 "remembered head of size %" PRIu64 ": the broker was restored from a backup at "
                 "size %" PRIu64 " (event %" PRIu64 ") naming %s head of size %" PRIu64
                 ", not the one remembered here: tell the broker's operator to run the restore "
                 "again with this head (--last-head)",
                 m, i, i, p == m ? "another" : "an older", p);
        return CASENET_EROLLBACK;
    }
    v->epoch = (struct auditv_epoch){
        .changed = true, .restored_size = i, .previous_size = p, .remembered_size = m};
    auditv_state_init(&v->trusted); /* the remembered head belongs to the old epoch */
    v->remembered_ok = true;
    if (v->cfg.epoch)
        *v->cfg.epoch = v->epoch;
    return CASENET_OK;
}

int auditv_event(struct auditv *v, const uint8_t *ev, size_t len)
{
    if (v->fail.where != AUDITV_OK)
        return v->fail.err;
    if (v->finished)
        return CASENET_EINVAL;
    int rc = check_remembered(v);
    if (rc != CASENET_OK)
        return rc;
    uint64_t i = v->next;
    if (len > AUDITV_RECORD_MAX || i == UINT64_MAX) {
        set_fail(&v->fail, AUDITV_EVENT, CASENET_ETOOLARGE, i, 0,
                 "event %" PRIu64 ": %zu bytes, over the limit", i, len);
        return CASENET_ETOOLARGE;
    }
    Casenet__V1__AuditEvent *e = casenet__v1__audit_event__unpack(NULL, len, ev);
    if (!e) {
        set_fail(&v->fail, AUDITV_EVENT, CASENET_EBADREQ, i, 0,
                 "event %" PRIu64 ": not a valid AuditEvent", i);
        return CASENET_EBADREQ;
    }
    uint64_t claimed = e->index;
    if (claimed == i && e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_LOG_RESTORED)
        rc = check_epoch(v, e, i);
    casenet__v1__audit_event__free_unpacked(e, NULL);
    if (rc != CASENET_OK)
        return rc;
    if (claimed != i) {
        set_fail(&v->fail, AUDITV_EVENT, CASENET_EBADREQ, i, 0,
                 "event %" PRIu64 ": its index field says %" PRIu64
                 " (events missing, duplicated or reordered)",
                 i, claimed);
        return CASENET_EBADREQ;
    }
    uint8_t leaf[MERKLE_HASH_BYTES];
    merkle_leaf_hash(ev, len, leaf);
    rc = merkle_stack_push(&v->stack, leaf, NULL, NULL);
    if (rc != CASENET_OK) {
        set_fail(&v->fail, AUDITV_EVENT, rc, i, 0, "event %" PRIu64 ": log full", i);
        return rc;
    }
    v->next++;
    if (v->cfg.on_event)
        v->cfg.on_event(v->cfg.hooks_ctx, i, ev, len);
    while (v->pend_first < v->pend_n && v->pend[v->pend_first].h.size == v->next) {
        struct pending *p = &v->pend[v->pend_first++];
        rc = check_head(v, &p->h, p->bytes, p->len);
        if (rc != CASENET_OK)
            return rc;
    }
    if (v->pend_first == v->pend_n)
        v->pend_first = v->pend_n = 0;
    if (v->next % AUDITV_PROGRESS_EVERY == 0)
        progress(v);
    return CASENET_OK;
}

int auditv_checkpoint(struct auditv *v, const uint8_t *ckpt, size_t len)
{
    if (v->fail.where != AUDITV_OK)
        return v->fail.err;
    if (v->finished)
        return CASENET_EINVAL;
    struct ckpt_head h;
    int rc = ckpt_parse(ckpt, len, &h);
    if (rc != CASENET_OK) {
        set_fail(&v->fail, AUDITV_HEAD, rc, v->next, 0,
                 "the head fed after %" PRIu64 " events is not a valid checkpoint", v->next);
        return rc;
    }
    rc = ckpt_verify(ckpt, len, v->cfg.key_name, v->cfg.sign_pk, v->cfg.origin, &h);
    if (rc == CASENET_EBADREQ) {
        set_fail(&v->fail, AUDITV_HEAD, rc, v->last.size, h.size,
                 "head of size %" PRIu64 ": origin \"%s\" is not \"%s\"", h.size, h.origin,
                 v->cfg.origin);
        return rc;
    }
    if (rc != CASENET_OK) {
        set_fail(&v->fail, AUDITV_HEAD, rc, v->last.size, h.size,
                 "head of size %" PRIu64 ": not signed by the broker key of %s (forged or "
                 "altered)",
                 h.size, v->cfg.key_name);
        return rc;
    }
    if (h.size < v->fed_size || h.size < v->next) {
        bool below_trusted = !v->scratch && h.size < v->trusted.size;
        set_fail(&v->fail, AUDITV_HEAD, CASENET_ECONFLICT, v->last.size, h.size,
                 "head of size %" PRIu64 ": out of order (%s %" PRIu64 ")", h.size,
                 below_trusted          ? "below the remembered head of size"
                 : h.size < v->fed_size ? "after a head of size"
                                        : "after event",
                 below_trusted          ? v->trusted.size
                 : h.size < v->fed_size ? v->fed_size
                                        : v->next - 1);
        return CASENET_ECONFLICT;
    }
    if (h.time_ms < v->fed_time || (h.size > v->trusted.size && h.time_ms < v->trusted.time_ms)) {
        set_fail(&v->fail, AUDITV_HEAD, CASENET_ECONFLICT, v->last.size, h.size,
                 "head of size %" PRIu64 ": time %" PRId64 " is before an earlier head's %" PRId64,
                 h.size, h.time_ms, h.time_ms < v->fed_time ? v->fed_time : v->trusted.time_ms);
        return CASENET_ECONFLICT;
    }
    v->fed_size = h.size;
    v->fed_time = h.time_ms;
    if (h.size == v->next)
        return check_head(v, &h, ckpt, len);
    if (v->pend_n - v->pend_first >= AUDITV_PENDING_MAX) {
        set_fail(&v->fail, AUDITV_HEAD, CASENET_ETOOLARGE, v->last.size, h.size,
                 "head of size %" PRIu64 ": more than %d heads ahead of the events", h.size,
                 AUDITV_PENDING_MAX);
        return CASENET_ETOOLARGE;
    }
    if (v->pend_n == v->pend_cap) {
        size_t cap = v->pend_cap ? v->pend_cap * 2 : 16;
        struct pending *p = realloc(v->pend, cap * sizeof *p);
        if (!p)
            return CASENET_ENOMEM; /* not a verdict: the caller may retry */
        v->pend = p;
        v->pend_cap = cap;
    }
    struct pending *p = &v->pend[v->pend_n++];
    p->h = h;
    p->len = len;
    memcpy(p->bytes, ckpt, len);
    return CASENET_OK;
}

int auditv_finish(struct auditv *v, struct auditv_state *state)
{
    if (v->fail.where != AUDITV_OK)
        return v->fail.err;
    if (v->finished)
        return CASENET_EINVAL;
    if (v->pend_first < v->pend_n) {
        const struct ckpt_head *h = &v->pend[v->pend_first].h;
        set_fail(&v->fail, AUDITV_HEAD, CASENET_EBADSIG, v->next, h->size,
                 "head of size %" PRIu64 ": the log ends after %" PRIu64 " events (events [%" PRIu64
                 ", %" PRIu64 ") are missing)",
                 h->size, v->next, v->next, h->size);
        return CASENET_EBADSIG;
    }
    int rc = check_remembered(v);
    if (rc != CASENET_OK)
        return rc;
    if (v->scratch && !v->remembered_ok) {
        set_fail(&v->fail, AUDITV_REMEMBERED, CASENET_EBADSIG, v->next, v->trusted.size,
                 "remembered head of size %" PRIu64 ": the log ends after %" PRIu64
                 " events: it was cut short",
                 v->trusted.size, v->next);
        return CASENET_EBADSIG;
    }
    v->finished = true;
    progress(v);
    if (state) {
        const struct auditv_state *t = &v->trusted, *l = &v->last;
        bool later = l->size > t->size ||
                     (l->size == t->size && l->time_ms >= t->time_ms && l->checkpoint_len > 0);
        *state = later ? *l : *t;
    }
    return CASENET_OK;
}

static int cmp_page_head(const void *x, const void *y)
{
    const struct auditv_page_head *a = x, *b = y;
    return a->size < b->size ? -1 : a->size > b->size;
}

void auditv_page_heads_sort(struct auditv_page_head *hs, size_t n)
{
    if (n > 1)
        qsort(hs, n, sizeof *hs, cmp_page_head);
}

int auditv_page_heads(const casenet_audit_export_page *p, struct auditv_page_head **out)
{
    size_t n = p->n_checkpoints;
    struct auditv_page_head *hs = calloc(n + 1, sizeof *hs);
    if (!hs)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct ckpt_head h;
        hs[i].size = ckpt_parse(p->checkpoints[i].data, p->checkpoints[i].len, &h) == CASENET_OK
                         ? h.size
                         : 0;
        hs[i].bytes = &p->checkpoints[i];
    }
    *out = hs;
    return CASENET_OK;
}

/* ------------------------------------------------------------------ export file */

static int write_record(FILE *f, const Casenet__V1__AuditExportRecord *r)
{
    size_t len = casenet__v1__audit_export_record__get_packed_size(r);
    if (len > AUDITV_RECORD_MAX)
        return CASENET_EINVAL;
    uint8_t pre[VARINT_MAX_BYTES];
    size_t n = 0;
    for (size_t v = len;; v >>= 7) {
        pre[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return CASENET_ENOMEM;
    casenet__v1__audit_export_record__pack(r, buf);
    int rc = fwrite(pre, 1, n, f) == n && fwrite(buf, 1, len, f) == len ? CASENET_OK : CASENET_EIO;
    free(buf);
    return rc;
}

static bool network_ok(const char *network)
{
    char origin[CKPT_ORIGIN_MAX + 1];
    return strlen(network) <= AUDITV_NETWORK_MAX && ckpt_origin(network, origin) == CASENET_OK;
}

int auditv_export_write_header(FILE *f, const struct auditv_export_header *h)
{
    if (!network_ok(h->network) || !casenet_member_id_valid(h->broker_id))
        return CASENET_EINVAL;
    Casenet__V1__AuditExportHeader hdr = CASENET__V1__AUDIT_EXPORT_HEADER__INIT;
    hdr.format = (char *)AUDITV_EXPORT_FORMAT;
    hdr.network = (char *)h->network;
    hdr.broker_id = (char *)h->broker_id;
    hdr.broker_sign_pk.data = (uint8_t *)h->broker_sign_pk;
    hdr.broker_sign_pk.len = CASENET_SIGN_PK_BYTES;
    hdr.from_index = h->from_index;
    Casenet__V1__AuditExportRecord r;
    casenet__v1__audit_export_record__init(&r);
    r.record_case = CASENET__V1__AUDIT_EXPORT_RECORD__RECORD_HEADER;
    r.header = &hdr;
    return write_record(f, &r);
}

int auditv_export_write_event(FILE *f, const uint8_t *ev, size_t len)
{
    Casenet__V1__AuditExportRecord r;
    casenet__v1__audit_export_record__init(&r);
    r.record_case = CASENET__V1__AUDIT_EXPORT_RECORD__RECORD_EVENT;
    r.event.data = (uint8_t *)ev;
    r.event.len = len;
    return write_record(f, &r);
}

int auditv_export_write_checkpoint(FILE *f, const uint8_t *ckpt, size_t len)
{
    Casenet__V1__AuditExportRecord r;
    casenet__v1__audit_export_record__init(&r);
    r.record_case = CASENET__V1__AUDIT_EXPORT_RECORD__RECORD_CHECKPOINT;
    r.checkpoint.data = (uint8_t *)ckpt;
    r.checkpoint.len = len;
    return write_record(f, &r);
}

struct auditv_reader {
    FILE *f;
    uint64_t offset; /* bytes consumed so far */
    uint64_t records;
};

static void file_fail(struct auditv_failure *fail, int err, uint64_t offset, const char *what)
{
    if (!fail)
        return;
    set_fail(fail, AUDITV_FILE, err, 0, 0, "export file, byte %" PRIu64 ": %s", offset, what);
    fail->offset = offset;
}

/* Reads one framed record: CASENET_OK with *r (unpacked) or *eof. */
static int read_record(struct auditv_reader *rd, Casenet__V1__AuditExportRecord **out, bool *eof,
                       struct auditv_failure *fail)
{
    uint64_t start = rd->offset;
    uint64_t len = 0;
    size_t n = 0;
    *eof = false;
    for (;;) {
        int c = fgetc(rd->f);
        if (c == EOF) {
            if (ferror(rd->f)) {
                file_fail(fail, CASENET_EIO, start, "read error");
                return CASENET_EIO;
            }
            if (n == 0) {
                *eof = true;
                return CASENET_OK;
            }
            file_fail(fail, CASENET_EBADREQ, start, "truncated record length");
            return CASENET_EBADREQ;
        }
        rd->offset++;
        len |= (uint64_t)(c & 0x7f) << (7 * n);
        n++;
        if (!(c & 0x80)) {
            if (c == 0 && n > 1) {
                file_fail(fail, CASENET_EBADREQ, start, "overlong record length");
                return CASENET_EBADREQ;
            }
            break;
        }
        if (n == 4) { /* a fifth byte would mean >= 2^28 > AUDITV_RECORD_MAX */
            file_fail(fail, CASENET_EBADREQ, start, "record length over the limit");
            return CASENET_EBADREQ;
        }
    }
    if (len > AUDITV_RECORD_MAX) {
        file_fail(fail, CASENET_EBADREQ, start, "record length over the limit");
        return CASENET_EBADREQ;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return CASENET_ENOMEM;
    size_t got = fread(buf, 1, len, rd->f);
    rd->offset += got;
    if (got != len) {
        free(buf);
        if (ferror(rd->f)) {
            file_fail(fail, CASENET_EIO, start, "read error");
            return CASENET_EIO;
        }
        char what[96];
        snprintf(what, sizeof what, "truncated record (%zu of %" PRIu64 " bytes)", got, len);
        file_fail(fail, CASENET_EBADREQ, start, what);
        return CASENET_EBADREQ;
    }
    Casenet__V1__AuditExportRecord *r = casenet__v1__audit_export_record__unpack(NULL, len, buf);
    free(buf);
    /* Exactly one field, in the canonical encoding: re-packing gives the same
     * length only without unknown, repeated or overlong fields. */
    bool ok = r && r->base.n_unknown_fields == 0 &&
              r->record_case != CASENET__V1__AUDIT_EXPORT_RECORD__RECORD__NOT_SET &&
              casenet__v1__audit_export_record__get_packed_size(r) == len &&
              (r->record_case != CASENET__V1__AUDIT_EXPORT_RECORD__RECORD_HEADER ||
               r->header->base.n_unknown_fields == 0);
    if (!ok) {
        if (r)
            casenet__v1__audit_export_record__free_unpacked(r, NULL);
        file_fail(fail, CASENET_EBADREQ, start, "not a valid AuditExportRecord");
        return CASENET_EBADREQ;
    }
    rd->records++;
    *out = r;
    return CASENET_OK;
}

int auditv_reader_open(FILE *f, struct auditv_export_header *hdr, struct auditv_reader **out,
                       struct auditv_failure *fail)
{
    struct auditv_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return CASENET_ENOMEM;
    rd->f = f;
    Casenet__V1__AuditExportRecord *r = NULL;
    bool eof;
    int rc = read_record(rd, &r, &eof, fail);
    if (rc == CASENET_OK && eof) {
        file_fail(fail, CASENET_EBADREQ, 0, "empty file");
        rc = CASENET_EBADREQ;
    }
    if (rc != CASENET_OK)
        goto cleanup;
    rc = CASENET_EBADREQ;
    const Casenet__V1__AuditExportHeader *h = r->header;
    if (r->record_case != CASENET__V1__AUDIT_EXPORT_RECORD__RECORD_HEADER ||
        strcmp(h->format, AUDITV_EXPORT_FORMAT) != 0) {
        file_fail(fail, rc, 0, "not a casenet audit export (no " AUDITV_EXPORT_FORMAT " header)");
        goto cleanup;
    }
    if (!network_ok(h->network) || !casenet_member_id_valid(h->broker_id) ||
        h->broker_sign_pk.len != CASENET_SIGN_PK_BYTES) {
        file_fail(fail, rc, 0, "invalid header (network, broker id or key)");
        goto cleanup;
    }
    struct auditv_export_header out_h;
    memset(&out_h, 0, sizeof out_h);
    strcpy(out_h.network, h->network);
    strcpy(out_h.broker_id, h->broker_id);
    memcpy(out_h.broker_sign_pk, h->broker_sign_pk.data, CASENET_SIGN_PK_BYTES);
    out_h.from_index = h->from_index;
    *hdr = out_h;
    *out = rd;
    rd = NULL;
    rc = CASENET_OK;
cleanup:
    if (r)
        casenet__v1__audit_export_record__free_unpacked(r, NULL);
    free(rd);
    return rc;
}

void auditv_reader_free(struct auditv_reader *r)
{
    free(r);
}

int auditv_reader_next(struct auditv_reader *rd, enum auditv_record_type *type, casenet_buf *rec,
                       bool *eof, struct auditv_failure *fail)
{
    uint64_t start = rd->offset;
    Casenet__V1__AuditExportRecord *r = NULL;
    int rc = read_record(rd, &r, eof, fail);
    if (rc != CASENET_OK || *eof)
        return rc;
    const ProtobufCBinaryData *b;
    enum auditv_record_type t;
    switch (r->record_case) {
    case CASENET__V1__AUDIT_EXPORT_RECORD__RECORD_EVENT:
        b = &r->event, t = AUDITV_REC_EVENT;
        break;
    case CASENET__V1__AUDIT_EXPORT_RECORD__RECORD_CHECKPOINT:
        b = &r->checkpoint, t = AUDITV_REC_CHECKPOINT;
        break;
    default:
        casenet__v1__audit_export_record__free_unpacked(r, NULL);
        file_fail(fail, CASENET_EBADREQ, start, "a second header");
        return CASENET_EBADREQ;
    }
    uint8_t *copy = malloc(b->len ? b->len : 1);
    if (!copy) {
        casenet__v1__audit_export_record__free_unpacked(r, NULL);
        return CASENET_ENOMEM;
    }
    if (b->len)
        memcpy(copy, b->data, b->len);
    rec->data = copy;
    rec->len = b->len;
    *type = t;
    casenet__v1__audit_export_record__free_unpacked(r, NULL);
    return CASENET_OK;
}

int auditv_verify_file(FILE *f, const struct auditv_config *cfg, const struct auditv_state *trusted,
                       struct auditv_state *state, struct auditv_failure *fail)
{
    struct auditv_failure local;
    if (!fail)
        fail = &local;
    memset(fail, 0, sizeof *fail);
    struct auditv_reader *rd = NULL;
    struct auditv *v = NULL;
    struct auditv_export_header h;
    casenet_buf rec = {0};
    int rc = auditv_reader_open(f, &h, &rd, fail);
    if (rc != CASENET_OK)
        return rc;
    char origin[CKPT_ORIGIN_MAX + 1];
    uint64_t tsize = trusted ? trusted->size : 0;
    rc = CASENET_EBADREQ;
    if (ckpt_origin(h.network, origin) != CASENET_OK || strcmp(origin, cfg->origin) != 0 ||
        strcmp(h.broker_id, cfg->key_name) != 0 ||
        sodium_memcmp(h.broker_sign_pk, cfg->sign_pk, CASENET_SIGN_PK_BYTES) != 0) {
        file_fail(fail, rc, 0, "the header names another network, broker or broker key");
        goto cleanup;
    }
    if (h.from_index != 0 && h.from_index != tsize) {
        char what[160];
        snprintf(what, sizeof what,
                 "the export starts at event %" PRIu64 ", the remembered head is at %" PRIu64
                 ": export from 0 or from %" PRIu64,
                 h.from_index, tsize, tsize);
        file_fail(fail, rc, 0, what);
        goto cleanup;
    }
    rc = auditv_new(cfg, trusted, h.from_index, &v);
    if (rc != CASENET_OK)
        goto cleanup;
    for (;;) {
        enum auditv_record_type t;
        bool eof;
        uint64_t at = rd->offset;
        rc = auditv_reader_next(rd, &t, &rec, &eof, fail);
        if (rc != CASENET_OK || eof)
            break;
        rc = t == AUDITV_REC_EVENT ? auditv_event(v, rec.data, rec.len)
                                   : auditv_checkpoint(v, rec.data, rec.len);
        casenet_buf_free(&rec);
        if (rc != CASENET_OK) {
            if (v->fail.where != AUDITV_OK) {
                *fail = v->fail;
                fail->offset = at;
            }
            goto cleanup;
        }
    }
    if (rc != CASENET_OK)
        goto cleanup;
    rc = auditv_finish(v, state);
    if (rc != CASENET_OK && v->fail.where != AUDITV_OK)
        *fail = v->fail;
cleanup:
    casenet_buf_free(&rec);
    auditv_free(v);
    auditv_reader_free(rd);
    return rc;
}
