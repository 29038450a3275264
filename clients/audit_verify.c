/* audit_verify.c - the public audit log verifier (casenet.h, "audit log
 * verification"): the broker's identity from the directory, the trusted
 * state, the live run that fetches the broker's head and its export pages,
 * and the offline run over an export file. The checks themselves are
 * auditlog.c's engine (auditv_*). */
#include "auditlog.h"
#include "casenet.h"
#include "checkpoint.h"
#include "directory_impl.h"
#include "merkle.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT_PAGE 10000u /* events per AuditExport request */

struct casenet_audit_verifier {
    casenet_audit_callbacks cb;
    char origin[CKPT_ORIGIN_MAX + 1];
    char broker_id[CASENET_MEMBER_ID_MAX + 1];
    uint8_t broker_pk[CASENET_SIGN_PK_BYTES];
    struct auditv_state trusted;
    struct auditv_state saved; /* as loaded, decoded or saved: save only a change */
    struct auditv *run;        /* begin .. finish */
    uint64_t page_next;        /* the index the next fed page must start at */
    /* the last run's counts, from the engine's hooks */
    uint64_t events, heads, last_head;
    struct auditv_epoch epoch; /* the last run's accepted epoch change */
    casenet_audit_failure fail;
};

/* Records a failure of the current run and returns err. */
__attribute__((format(printf, 4, 0))) static int
vfail(casenet_audit_verifier *v, casenet_audit_where where, int err, const char *fmt, va_list ap)
{
    v->fail.where = where;
    v->fail.err = err;
    vsnprintf(v->fail.reason, sizeof v->fail.reason, fmt, ap);
    return err;
}

__attribute__((format(printf, 4, 5))) static int
fail_set(casenet_audit_verifier *v, casenet_audit_where where, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(v, where, err, fmt, ap);
    va_end(ap);
    return err;
}

/* A failure against the trusted head (CASENET_AUDIT_REMEMBERED). */
__attribute__((format(printf, 3, 4))) static int fail_remembered(casenet_audit_verifier *v, int err,
                                                                 const char *fmt, ...)
{
    v->fail.head_size = v->trusted.size;
    va_list ap;
    va_start(ap, fmt);
    vfail(v, CASENET_AUDIT_REMEMBERED, err, fmt, ap);
    va_end(ap);
    return err;
}

/* Takes the engine's failure (none recorded: a local failure, e.g. out of
 * memory, which is no verdict on the log). */
static int fail_from_engine(casenet_audit_verifier *v, const struct auditv_failure *f, int rc)
{
    static const casenet_audit_where where[] = {
        [AUDITV_OK] = CASENET_AUDIT_LOCAL,  [AUDITV_EVENT] = CASENET_AUDIT_EVENT,
        [AUDITV_HEAD] = CASENET_AUDIT_HEAD, [AUDITV_REMEMBERED] = CASENET_AUDIT_REMEMBERED,
        [AUDITV_FILE] = CASENET_AUDIT_FILE,
    };
    if (f->where == AUDITV_OK)
        return fail_set(v, CASENET_AUDIT_LOCAL, rc, "verification stopped");
    v->fail.where = where[f->where];
    v->fail.err = f->err;
    v->fail.index = f->index;
    v->fail.head_size = f->head_size;
    v->fail.offset = f->offset;
    snprintf(v->fail.reason, sizeof v->fail.reason, "%s", f->reason);
    return f->err;
}

static void note(const casenet_audit_verifier *v, bool warning, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(const casenet_audit_verifier *v, bool warning, const char *fmt, ...)
{
    if (!v->cb.note)
        return;
    char msg[CASENET_AUDIT_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->cb.note(v->cb.ctx, warning, msg);
}

/* ------------------------------------------------------------------ the engine's hooks */

static void on_event(void *ctx, uint64_t index, const uint8_t *ev, size_t len)
{
    casenet_audit_verifier *v = ctx;
    v->events = index + 1;
    if (v->cb.event)
        v->cb.event(v->cb.ctx, index, ev, len);
}

static void on_head(void *ctx, uint64_t size, int64_t time_ms, const uint8_t *ckpt, size_t len)
{
    casenet_audit_verifier *v = ctx;
    v->heads++;
    v->last_head = size;
    if (v->cb.head)
        v->cb.head(v->cb.ctx, size, time_ms, ckpt, len);
}

/* The engine's configuration for a run (borrows v). */
static struct auditv_config run_config(casenet_audit_verifier *v, uint64_t total)
{
    return (struct auditv_config){
        .origin = v->origin,
        .key_name = v->broker_id,
        .sign_pk = v->broker_pk,
        .progress = v->cb.progress,
        .progress_ctx = v->cb.ctx,
        .total = total,
        .on_event = on_event,
        .on_head = on_head,
        .hooks_ctx = v,
        .epoch = &v->epoch,
    };
}

/* Forgets the last run: its failure, counts and engine. */
static void run_reset(casenet_audit_verifier *v, uint64_t start)
{
    auditv_free(v->run);
    v->run = NULL;
    memset(&v->fail, 0, sizeof v->fail);
    memset(&v->epoch, 0, sizeof v->epoch);
    v->events = start;
    v->last_head = start;
    v->heads = 0;
}

/* ------------------------------------------------------------------ the verifier and its state */

int casenet_audit_verifier_new(const casenet_directory *dir, const casenet_audit_callbacks *cb,
                               casenet_audit_verifier **out)
{
    if (!dir || !out)
        return CASENET_EINVAL;
    casenet_member broker;
    if (casenet_directory_broker(dir, &broker) != CASENET_OK || !broker.sign_pk)
        return CASENET_ENOTFOUND;
    const char *network = cn_directory_audit_network(dir);
    char origin[CKPT_ORIGIN_MAX + 1];
    if (!network || strlen(network) > AUDITV_NETWORK_MAX ||
        ckpt_origin(network, origin) != CASENET_OK)
        return CASENET_EBADREQ;
    casenet_audit_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return CASENET_ENOMEM;
    if (cb)
        v->cb = *cb;
    memcpy(v->origin, origin, sizeof origin);
    snprintf(v->broker_id, sizeof v->broker_id, "%s", broker.id);
    memcpy(v->broker_pk, broker.sign_pk, sizeof v->broker_pk);
    auditv_state_init(&v->trusted);
    v->saved = v->trusted;
    *out = v;
    return CASENET_OK;
}

void casenet_audit_verifier_free(casenet_audit_verifier *v)
{
    if (!v)
        return;
    auditv_free(v->run);
    free(v);
}

int casenet_audit_verifier_load_state(casenet_audit_verifier *v, const char *path)
{
    if (!v || !path)
        return CASENET_EINVAL;
    struct auditv_state st;
    int rc = auditv_state_load(path, &st);
    if (rc == CASENET_OK) {
        v->trusted = st;
        v->saved = st;
    }
    return rc;
}

int casenet_audit_verifier_save_state(casenet_audit_verifier *v, const char *path)
{
    if (!v || !path)
        return CASENET_EINVAL;
    const struct auditv_state *t = &v->trusted, *s = &v->saved;
    if (t->size == s->size && t->time_ms == s->time_ms && t->checkpoint_len == s->checkpoint_len)
        return CASENET_OK;
    int rc = auditv_state_save(path, t);
    if (rc == CASENET_OK)
        v->saved = *t;
    return rc;
}

int casenet_audit_verifier_encode_state(const casenet_audit_verifier *v, casenet_buf *out)
{
    if (!v || !out)
        return CASENET_EINVAL;
    return auditv_state_encode(&v->trusted, out);
}

int casenet_audit_verifier_decode_state(casenet_audit_verifier *v, const uint8_t *buf, size_t len)
{
    if (!v || !buf)
        return CASENET_EINVAL;
    struct auditv_state st;
    int rc = auditv_state_decode(buf, len, &st);
    if (rc == CASENET_OK) {
        v->trusted = st;
        v->saved = st;
    }
    return rc;
}

void casenet_audit_verifier_trusted(const casenet_audit_verifier *v, casenet_audit_head *out)
{
    out->size = v->trusted.size;
    out->time_ms = v->trusted.time_ms;
    memcpy(out->root, v->trusted.root, sizeof out->root);
}

const casenet_audit_failure *casenet_audit_verifier_failure(const casenet_audit_verifier *v)
{
    return &v->fail;
}

void casenet_audit_verifier_epoch(const casenet_audit_verifier *v, casenet_audit_epoch *out)
{
    *out = (casenet_audit_epoch){.changed = v->epoch.changed,
                                 .restored_size = v->epoch.restored_size,
                                 .previous_size = v->epoch.previous_size,
                                 .remembered_size = v->epoch.remembered_size};
}

void casenet_audit_verifier_counts(const casenet_audit_verifier *v, uint64_t *events,
                                   uint64_t *heads, uint64_t *tail)
{
    if (events)
        *events = v->events;
    if (heads)
        *heads = v->heads;
    if (tail)
        *tail = v->events - v->last_head;
}

/* ------------------------------------------------------------------ runs fed by the caller */

/* Feeds one export page to the run: each head right after the event that
 * brings the log to its size (so no head waits long), the head `extra` too
 * when the page covers its size and does not carry the same bytes. */
static int feed_page(struct auditv *run, const casenet_audit_export_page *p, uint64_t from,
                     const casenet_buf *extra, uint64_t extra_size, bool *extra_fed)
{
    struct auditv_page_head *hs = NULL;
    int rc = auditv_page_heads(p, &hs);
    if (rc != CASENET_OK)
        return rc;
    size_t m = p->n_checkpoints;
    for (size_t i = 0; extra && !*extra_fed && i < m; i++) {
        if (hs[i].size == extra_size && hs[i].bytes->len == extra->len &&
            memcmp(hs[i].bytes->data, extra->data, extra->len) == 0)
            *extra_fed = true;
    }
    if (extra && !*extra_fed && extra_size > from && extra_size <= p->next_index) {
        hs[m].size = extra_size;
        hs[m++].bytes = extra;
        *extra_fed = true;
    }
    auditv_page_heads_sort(hs, m);
    size_t k = 0;
    for (; k < m && hs[k].size <= from && rc == CASENET_OK; k++)
        rc = auditv_checkpoint(run, hs[k].bytes->data, hs[k].bytes->len);
    for (size_t i = 0; i < p->n_events && rc == CASENET_OK; i++) {
        rc = auditv_event(run, p->events[i].data, p->events[i].len);
        for (; rc == CASENET_OK && k < m && hs[k].size <= from + i + 1; k++)
            rc = auditv_checkpoint(run, hs[k].bytes->data, hs[k].bytes->len);
    }
    for (; rc == CASENET_OK && k < m; k++)
        rc = auditv_checkpoint(run, hs[k].bytes->data, hs[k].bytes->len);
    free(hs);
    return rc;
}

int casenet_audit_verifier_begin(casenet_audit_verifier *v, uint64_t start, uint64_t total)
{
    if (!v)
        return CASENET_EINVAL;
    run_reset(v, start);
    struct auditv_config cfg = run_config(v, total);
    int rc = auditv_new(&cfg, &v->trusted, start, &v->run);
    if (rc != CASENET_OK)
        return fail_set(v, CASENET_AUDIT_LOCAL, rc, "cannot start the verifier");
    v->page_next = start;
    return CASENET_OK;
}

int casenet_audit_verifier_feed_page(casenet_audit_verifier *v,
                                     const casenet_audit_export_page *page, uint64_t from)
{
    if (!v || !page || !v->run || from != v->page_next)
        return CASENET_EINVAL;
    int rc = feed_page(v->run, page, from, NULL, 0, NULL);
    if (rc != CASENET_OK)
        return fail_from_engine(v, auditv_failure(v->run), rc);
    v->page_next = from + page->n_events;
    return CASENET_OK;
}

/* Ends the run; with commit, the trusted state moves to its newest head. */
static int finish_run(casenet_audit_verifier *v, bool commit)
{
    struct auditv_state st;
    int rc = auditv_finish(v->run, &st);
    if (rc != CASENET_OK)
        return fail_from_engine(v, auditv_failure(v->run), rc);
    if (commit)
        v->trusted = st;
    return CASENET_OK;
}

int casenet_audit_verifier_finish(casenet_audit_verifier *v)
{
    if (!v || !v->run)
        return CASENET_EINVAL;
    int rc = finish_run(v, true);
    auditv_free(v->run);
    v->run = NULL;
    return rc;
}

/* ------------------------------------------------------------------ live */

/* Verifies the broker's latest head with the directory's broker key. */
static int live_head(casenet_audit_verifier *v, const casenet_buf *ck, struct ckpt_head *h)
{
    static const char what[] = "the broker's latest tree head";
    int rc = ckpt_verify(ck->data, ck->len, v->broker_id, v->broker_pk, v->origin, h);
    if (rc == CASENET_OK)
        return CASENET_OK;
    struct ckpt_head u; /* unverified: only to name it */
    if (ckpt_parse(ck->data, ck->len, &u) != CASENET_OK)
        return fail_set(v, CASENET_AUDIT_HEAD, rc, "%s is not a valid checkpoint", what);
    v->fail.head_size = u.size;
    return fail_set(v, CASENET_AUDIT_HEAD, rc,
                    "head of size %" PRIu64 " (%s) does not verify with the directory's key "
                    "of %s (origin %s): forged or altered",
                    u.size, what, v->broker_id, v->origin);
}

/* Checks the broker's verified head h against the trusted state: not
 * smaller, the same root at the same size, else a consistency proof from
 * the broker that verifies. With deferred, a proof that does not verify is
 * only noted and *deferred set: the run recomputes the log, which names the
 * place of the change, and fails afterwards. */
static int live_remembered(casenet_audit_verifier *v, casenet_client *c, const struct ckpt_head *h,
                           bool *deferred)
{
    const struct auditv_state *st = &v->trusted;
    if (st->size == 0)
        return CASENET_OK;
    if (h->size < st->size)
        return fail_remembered(
            v, CASENET_EBADSIG,
            "remembered head of size %" PRIu64 ": the broker's latest head has only "
            "%" PRIu64 " events: its history was cut short or rewritten (after a "
            "restore from a backup, verify from index 0 to see the epoch "
            "change)",
            st->size, h->size);
    if (h->size == st->size) {
        if (sodium_memcmp(h->root, st->root, MERKLE_HASH_BYTES) != 0)
            return fail_remembered(
                v, CASENET_EBADSIG,
                "remembered head of size %" PRIu64 ": the broker now signs another "
                "root at that size: its history in [0, %" PRIu64 ") was rewritten",
                st->size, st->size);
        return CASENET_OK;
    }
    casenet_buf hashes = {0}, ck = {0};
    int rc = casenet_client_audit_consistency(c, st->size, h->size, &hashes, &ck);
    casenet_buf_free(&ck);
    if (rc != CASENET_OK) {
        casenet_buf_free(&hashes);
        return fail_set(v, CASENET_AUDIT_BROKER, rc, "AuditProof (consistency) failed");
    }
    rc = merkle_verify_consistency(st->size, h->size,
                                   (const uint8_t(*)[MERKLE_HASH_BYTES])hashes.data,
                                   hashes.len / MERKLE_HASH_BYTES, st->root, h->root);
    casenet_buf_free(&hashes);
    if (rc == CASENET_OK)
        return CASENET_OK;
    if (!deferred)
        return fail_remembered(v, CASENET_EBADSIG,
                               "remembered head of size %" PRIu64 ": the broker's head of size "
                               "%" PRIu64 " is not consistent with it (no valid consistency "
                               "proof): the history in [0, %" PRIu64
                               ") was rewritten, or the log since changed",
                               st->size, h->size, st->size);
    note(v, true,
         "remembered head of size %" PRIu64 ": the broker's head of size %" PRIu64
         " is not consistent with it (its consistency proof does not verify); "
         "recomputing the log to find where",
         st->size, h->size);
    *deferred = true;
    return CASENET_OK;
}

/* Fetches the export pages from index from on and feeds them to the run,
 * with the broker's head (head may be NULL) where its size falls. */
static int live_pages(casenet_audit_verifier *v, casenet_client *c, uint64_t from,
                      const casenet_buf *head, uint64_t head_size)
{
    bool head_fed = false;
    int rc;
    if (head && head_size == from) { /* nothing new: compare with the remembered root */
        if ((rc = auditv_checkpoint(v->run, head->data, head->len)) != CASENET_OK)
            return fail_from_engine(v, auditv_failure(v->run), rc);
        head_fed = true;
    }
    uint64_t next = from;
    for (bool more = true; more;) {
        casenet_audit_export_page p = {0};
        rc = casenet_client_audit_export(c, next, EXPORT_PAGE, &p);
        if (rc == CASENET_ENOTFOUND && next > 0) {
            v->fail.index = next;
            return fail_remembered(v, CASENET_EBADSIG,
                                   "the broker's log ends before index %" PRIu64
                                   " (remembered or already verified): it was cut short",
                                   next);
        }
        if (rc != CASENET_OK)
            return fail_set(v, CASENET_AUDIT_BROKER, rc, "AuditExport failed");
        rc = feed_page(v->run, &p, next, head, head_size, &head_fed);
        more = p.more;
        uint64_t got = p.next_index;
        casenet_audit_export_page_clear(&p);
        if (rc != CASENET_OK)
            return fail_from_engine(v, auditv_failure(v->run), rc);
        if (got <= next && more) {
            v->fail.index = next;
            return fail_set(v, CASENET_AUDIT_EVENT, CASENET_EBADREQ,
                            "the broker's export makes no progress at index %" PRIu64, next);
        }
        next = got;
    }
    if (head && !head_fed) {
        /* The head we were given lies beyond every event exported. */
        if ((rc = auditv_checkpoint(v->run, head->data, head->len)) != CASENET_OK)
            return fail_from_engine(v, auditv_failure(v->run), rc);
    }
    return CASENET_OK;
}

int casenet_audit_verify_live(casenet_audit_verifier *v, casenet_client *c, bool full)
{
    if (!v || !c)
        return CASENET_EINVAL;
    run_reset(v, full ? 0 : v->trusted.size);
    casenet_buf head = {0};
    struct ckpt_head h0 = {0};
    bool have_head = false, proof_bad = false;
    int rc = casenet_client_tree_head(c, &head);
    if (rc == CASENET_OK) {
        if ((rc = live_head(v, &head, &h0)) != CASENET_OK)
            goto cleanup;
        have_head = true;
        /* full below the remembered size: the run from 0 compares with the
         * remembered root, or accepts a declared epoch change. */
        if (!(full && h0.size <= v->trusted.size) &&
            (rc = live_remembered(v, c, &h0, &proof_bad)) != CASENET_OK)
            goto cleanup;
    } else if (rc == CASENET_ENOTFOUND && v->trusted.size == 0) {
        note(v, false, "the broker has not signed a tree head yet");
    } else if (rc == CASENET_ENOTFOUND) {
        rc =
            fail_remembered(v, CASENET_EBADSIG,
                            "remembered head of size %" PRIu64 ": the broker has no signed head at "
                            "all: its history was lost or rewritten",
                            v->trusted.size);
        goto cleanup;
    } else {
        rc = fail_set(v, CASENET_AUDIT_BROKER, rc, "GetTreeHead failed");
        goto cleanup;
    }
    uint64_t from = full ? 0 : v->trusted.size;
    if ((rc = casenet_audit_verifier_begin(v, from, have_head ? h0.size : 0)) != CASENET_OK)
        goto cleanup;
    if ((rc = live_pages(v, c, from, have_head ? &head : NULL, h0.size)) != CASENET_OK)
        goto cleanup;
    if ((rc = finish_run(v, !proof_bad || v->epoch.changed)) != CASENET_OK)
        goto cleanup;
    if (proof_bad && !v->epoch.changed) { /* every root matched, yet the proof failed */
        rc = fail_remembered(
            v, CASENET_EBADSIG,
            "remembered head of size %" PRIu64 ": the broker cannot prove its head of "
            "size %" PRIu64 " consistent with it (its stored tree differs from its "
            "events)",
            v->trusted.size, h0.size);
    }
cleanup:
    auditv_free(v->run);
    v->run = NULL;
    casenet_buf_free(&head);
    return rc;
}

int casenet_audit_verifier_check_head(casenet_audit_verifier *v, casenet_client *c,
                                      const uint8_t *checkpoint, size_t len,
                                      casenet_audit_head *out)
{
    if (!v || !checkpoint || !out)
        return CASENET_EINVAL;
    memset(&v->fail, 0, sizeof v->fail);
    casenet_buf ck = {.data = (uint8_t *)checkpoint, .len = len};
    struct ckpt_head h;
    int rc = live_head(v, &ck, &h);
    if (rc == CASENET_OK && c)
        rc = live_remembered(v, c, &h, NULL);
    if (rc != CASENET_OK)
        return rc;
    out->size = h.size;
    out->time_ms = h.time_ms;
    memcpy(out->root, h.root, sizeof out->root);
    return CASENET_OK;
}

int casenet_audit_verifier_prove(casenet_audit_verifier *v, casenet_client *c,
                                 const casenet_audit_head *head, uint64_t index,
                                 const uint8_t *event, size_t len)
{
    return casenet_audit_verifier_prove_path(v, c, head, index, event, len, NULL, NULL);
}

int casenet_audit_verifier_prove_path(casenet_audit_verifier *v, casenet_client *c,
                                      const casenet_audit_head *head, uint64_t index,
                                      const uint8_t *event, size_t len,
                                      uint8_t leaf[CASENET_HASH_BYTES], casenet_buf *path)
{
    if (!v || !c || !head || !event || index >= head->size)
        return CASENET_EINVAL;
    memset(&v->fail, 0, sizeof v->fail);
    casenet_buf hashes = {0}, hck = {0};
    int rc = casenet_client_audit_inclusion(c, index, head->size, &hashes, &hck);
    casenet_buf_free(&hck);
    if (rc != CASENET_OK)
        return fail_set(v, CASENET_AUDIT_BROKER, rc, "AuditProof (inclusion) failed");
    uint8_t h[MERKLE_HASH_BYTES];
    merkle_leaf_hash(event, len, h);
    rc = merkle_verify_inclusion(h, index, head->size,
                                 (const uint8_t(*)[MERKLE_HASH_BYTES])hashes.data,
                                 hashes.len / MERKLE_HASH_BYTES, head->root);
    if (rc == CASENET_OK) {
        if (leaf)
            memcpy(leaf, h, sizeof h);
        if (path) {
            *path = hashes;
            hashes = (casenet_buf){0};
        }
        casenet_buf_free(&hashes);
        return CASENET_OK;
    }
    casenet_buf_free(&hashes);
    v->fail.index = index;
    v->fail.head_size = head->size;
    return fail_set(v, CASENET_AUDIT_EVENT, CASENET_EBADSIG,
                    "event %" PRIu64 ": its inclusion proof under the head of size %" PRIu64
                    " does not verify",
                    index, head->size);
}

/* ------------------------------------------------------------------ export file */

int casenet_audit_verify_file(casenet_audit_verifier *v, int fd)
{
    if (!v || fd < 0)
        return CASENET_EINVAL;
    run_reset(v, 0);
    int own = dup(fd);
    FILE *f = own >= 0 ? fdopen(own, "rb") : NULL;
    if (!f) {
        if (own >= 0)
            close(own);
        return fail_set(v, CASENET_AUDIT_LOCAL, CASENET_EIO, "cannot read the export file");
    }
    struct auditv_config cfg = run_config(v, 0);
    struct auditv_state st;
    struct auditv_failure af = {0};
    int rc = auditv_verify_file(f, &cfg, &v->trusted, &st, &af);
    fclose(f);
    if (rc != CASENET_OK)
        return fail_from_engine(v, &af, rc);
    v->trusted = st;
    return CASENET_OK;
}
