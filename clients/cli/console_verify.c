/* console_verify.c - the coordinator view's one adapter over libcasenet's
 * audit verifier (auditlog.h auditv_*, checkpoint.h, merkle.h): pulls the
 * broker's log page by page and verifies every signed head and the events
 * under it, and verifies inclusion proofs. When the verifier becomes a
 * public API, this is the only file to change. */
#include "auditlog.h"
#include "checkpoint.h"
#include "cli.h"
#include "console_coord.h"
#include "directory_impl.h"
#include "merkle.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PULL_PAGE 10000u

void coord_trust_clear(struct coord_trust *t)
{
    free(t->bytes);
    t->bytes = NULL;
    t->len = 0;
}

/* The broker key and origin from the verified directory. */
struct vkeys {
    char origin[CKPT_ORIGIN_MAX + 1];
    char broker_id[CASENET_MEMBER_ID_MAX + 1];
    uint8_t pk[CASENET_SIGN_PK_BYTES];
};

static int vkeys_of(const casenet_directory *dir, struct vkeys *k, char err[COORD_ERR_MAX])
{
    casenet_member b;
    if (casenet_directory_broker(dir, &b) != CASENET_OK || !b.sign_pk) {
        snprintf(err, COORD_ERR_MAX, "the directory lists no broker with a signing key");
        return CASENET_ENOTFOUND;
    }
    const char *network = cn_directory_audit_network(dir);
    if (!network || strlen(network) > AUDITV_NETWORK_MAX ||
        ckpt_origin(network, k->origin) != CASENET_OK) {
        snprintf(err, COORD_ERR_MAX, "the directory's network name is not a valid log origin");
        return CASENET_EBADREQ;
    }
    snprintf(k->broker_id, sizeof k->broker_id, "%s", b.id);
    memcpy(k->pk, b.sign_pk, sizeof k->pk);
    return CASENET_OK;
}

static int trust_decode(const struct coord_trust *t, struct auditv_state *st)
{
    if (!t || t->len == 0) {
        auditv_state_init(st);
        return CASENET_OK;
    }
    return auditv_state_decode(t->bytes, t->len, st);
}

int coord_trust_head(const struct coord_trust *t, struct coord_head *head)
{
    struct auditv_state *st = malloc(sizeof *st);
    if (!st)
        return CASENET_ENOMEM;
    memset(head, 0, sizeof *head);
    int rc = trust_decode(t, st);
    if (rc == CASENET_OK && st->size) {
        head->size = st->size;
        head->time_ms = st->time_ms;
        memcpy(head->root, st->root, sizeof head->root);
    }
    free(st);
    return rc;
}

struct page_head {
    uint64_t size;
    const casenet_buf *bytes;
};

static int cmp_head(const void *x, const void *y)
{
    const struct page_head *a = x, *b = y;
    return a->size < b->size ? -1 : a->size > b->size;
}

/* Feeds one page: each head right after the event completing its size, the
 * broker's latest head (extra) when the page reaches it. */
static int feed(struct auditv *v, const casenet_audit_export_page *p, uint64_t from,
                const casenet_buf *extra, uint64_t extra_size, bool *extra_fed,
                coord_event_fn on_event, void *ctx)
{
    struct page_head *hs = calloc(p->n_checkpoints + 1, sizeof *hs);
    if (!hs)
        return CASENET_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < p->n_checkpoints; i++) {
        struct ckpt_head h;
        hs[m].size = ckpt_parse(p->checkpoints[i].data, p->checkpoints[i].len, &h) == CASENET_OK
                         ? h.size
                         : 0;
        hs[m++].bytes = &p->checkpoints[i];
    }
    if (extra && !*extra_fed && extra_size > from && extra_size <= p->next_index) {
        hs[m].size = extra_size;
        hs[m++].bytes = extra;
        *extra_fed = true;
    }
    qsort(hs, m, sizeof *hs, cmp_head);
    int rc = CASENET_OK;
    size_t k = 0;
    for (; k < m && hs[k].size <= from && rc == CASENET_OK; k++)
        rc = auditv_checkpoint(v, hs[k].bytes->data, hs[k].bytes->len);
    for (size_t i = 0; i < p->n_events && rc == CASENET_OK; i++) {
        rc = auditv_event(v, p->events[i].data, p->events[i].len);
        if (rc == CASENET_OK && on_event)
            rc = on_event(ctx, from + i, p->events[i].data, p->events[i].len);
        for (; rc == CASENET_OK && k < m && hs[k].size <= from + i + 1; k++)
            rc = auditv_checkpoint(v, hs[k].bytes->data, hs[k].bytes->len);
    }
    for (; rc == CASENET_OK && k < m; k++)
        rc = auditv_checkpoint(v, hs[k].bytes->data, hs[k].bytes->len);
    free(hs);
    return rc;
}

/* Asks for and verifies the broker's latest head. *have false when the
 * broker signed none yet (only acceptable while nothing is trusted). */
static int latest_head(casenet_client *cl, const struct vkeys *k, const struct auditv_state *st,
                       casenet_buf *head, struct ckpt_head *h, bool *have, char err[COORD_ERR_MAX])
{
    *have = false;
    int rc = casenet_client_tree_head(cl, head);
    if (rc == CASENET_ENOTFOUND && st->size == 0)
        return CASENET_OK;
    if (rc == CASENET_ENOTFOUND) {
        snprintf(err, COORD_ERR_MAX,
                 "the broker has no signed head, yet a head of size %" PRIu64
                 " was verified: its history was lost or rewritten",
                 st->size);
        return CASENET_EBADSIG;
    }
    if (rc != CASENET_OK) {
        snprintf(err, COORD_ERR_MAX, "broker: %s", casenet_client_last_error(cl));
        return rc;
    }
    if ((rc = ckpt_verify(head->data, head->len, k->broker_id, k->pk, k->origin, h)) !=
        CASENET_OK) {
        snprintf(err, COORD_ERR_MAX,
                 "the broker's latest tree head does not verify with the directory's key of %s",
                 k->broker_id);
        return rc;
    }
    if (h->size < st->size) {
        snprintf(err, COORD_ERR_MAX,
                 "the broker's latest head (size %" PRIu64 ") is smaller than the verified head "
                 "(size %" PRIu64 "): its log was cut short",
                 h->size, st->size);
        return CASENET_ECONFLICT;
    }
    *have = true;
    return CASENET_OK;
}

/* Pulls pages from `from` until the end, feeding v. */
static int pull_pages(casenet_client *cl, struct auditv *v, uint64_t from, const casenet_buf *head,
                      uint64_t head_size, bool *head_fed, coord_event_fn on_event,
                      coord_progress_fn progress, void *ctx, char err[COORD_ERR_MAX])
{
    uint64_t next = from;
    bool more = true;
    while (more) {
        casenet_audit_export_page p = {0};
        int rc = casenet_client_audit_export(cl, next, PULL_PAGE, &p);
        if (rc == CASENET_ENOTFOUND && next > 0 && next >= head_size)
            return CASENET_OK; /* nothing after the head */
        if (rc == CASENET_ENOTFOUND && next > 0) {
            snprintf(err, COORD_ERR_MAX,
                     "the broker's log ends before index %" PRIu64 ": it was cut short", next);
            return CASENET_EBADSIG;
        }
        if (rc != CASENET_OK) {
            snprintf(err, COORD_ERR_MAX, "broker: %s", casenet_client_last_error(cl));
            return rc;
        }
        rc = feed(v, &p, next, head, head_size, head_fed, on_event, ctx);
        more = p.more;
        uint64_t got = p.next_index;
        casenet_audit_export_page_clear(&p);
        if (rc != CASENET_OK)
            return rc;
        if (got <= next && more) {
            snprintf(err, COORD_ERR_MAX, "the broker's export makes no progress at %" PRIu64, next);
            return CASENET_EBADREQ;
        }
        next = got;
        if (progress)
            progress(ctx, next, head_size);
    }
    return CASENET_OK;
}

static void failure_text(const struct auditv *v, int rc, char err[COORD_ERR_MAX])
{
    const struct auditv_failure *f = auditv_failure(v);
    if (f->where != AUDITV_OK)
        snprintf(err, COORD_ERR_MAX, "%s", f->reason);
    else if (!err[0])
        snprintf(err, COORD_ERR_MAX, "verification stopped: %s", casenet_strerror(rc));
}

int coord_verify_pull(casenet_client *cl, const casenet_directory *dir,
                      const struct coord_trust *trusted, bool full, coord_event_fn on_event,
                      coord_progress_fn progress, void *ctx, struct coord_trust *next,
                      struct coord_head *head, char err[COORD_ERR_MAX])
{
    err[0] = '\0';
    struct vkeys k;
    int rc = vkeys_of(dir, &k, err);
    if (rc != CASENET_OK)
        return rc;
    struct auditv_state *st = malloc(sizeof *st), *nst = malloc(sizeof *nst);
    casenet_buf hb = {0}, enc = {0};
    struct ckpt_head h0 = {0};
    struct auditv *v = NULL;
    bool have = false, fed = false;
    rc = CASENET_ENOMEM;
    if (!st || !nst)
        goto cleanup;
    if ((rc = trust_decode(trusted, st)) != CASENET_OK) {
        snprintf(err, COORD_ERR_MAX, "the cache's trusted head is damaged: remove coord.db");
        goto cleanup;
    }
    if ((rc = latest_head(cl, &k, st, &hb, &h0, &have, err)) != CASENET_OK)
        goto cleanup;
    uint64_t from = full ? 0 : st->size;
    struct auditv_config cfg = {.origin = k.origin, .key_name = k.broker_id, .sign_pk = k.pk};
    if ((rc = auditv_new(&cfg, st, from, &v)) != CASENET_OK)
        goto cleanup;
    if (have && h0.size == from) {
        if ((rc = auditv_checkpoint(v, hb.data, hb.len)) != CASENET_OK)
            goto failed;
        fed = true;
    }
    if (have && h0.size > from) {
        rc = pull_pages(cl, v, from, &hb, h0.size, &fed, on_event, progress, ctx, err);
        if (rc != CASENET_OK && err[0])
            goto cleanup;
        if (rc != CASENET_OK)
            goto failed;
    }
    if (have && !fed && (rc = auditv_checkpoint(v, hb.data, hb.len)) != CASENET_OK)
        goto failed;
    if ((rc = auditv_finish(v, nst)) != CASENET_OK)
        goto failed;
    if ((rc = auditv_state_encode(nst, &enc)) != CASENET_OK)
        goto cleanup;
    next->bytes = enc.data;
    next->len = enc.len;
    enc.data = NULL;
    memset(head, 0, sizeof *head);
    head->size = nst->size;
    head->time_ms = nst->time_ms;
    memcpy(head->root, nst->root, sizeof head->root);
    rc = CASENET_OK;
    goto cleanup;
failed:
    failure_text(v, rc, err);
cleanup:
    auditv_free(v);
    casenet_buf_free(&hb);
    casenet_buf_free(&enc);
    free(st);
    free(nst);
    return rc;
}

static json_t *hex_json(const uint8_t *b, size_t n)
{
    char h[2 * MERKLE_HASH_BYTES + 1];
    sodium_bin2hex(h, sizeof h, b, n);
    return json_string(h);
}

int coord_prove(casenet_client *cl, const casenet_directory *dir, uint64_t index, const uint8_t *ev,
                size_t len, uint64_t tree_size, json_t **out, char err[COORD_ERR_MAX])
{
    err[0] = '\0';
    struct vkeys k;
    int rc = vkeys_of(dir, &k, err);
    if (rc != CASENET_OK)
        return rc;
    casenet_buf hashes = {0}, ck = {0};
    if ((rc = casenet_client_audit_inclusion(cl, index, tree_size, &hashes, &ck)) != CASENET_OK) {
        snprintf(err, COORD_ERR_MAX, "broker: %s", casenet_client_last_error(cl));
        goto cleanup;
    }
    struct ckpt_head h;
    rc = CASENET_EBADSIG;
    if (ck.len == 0 ||
        ckpt_verify(ck.data, ck.len, k.broker_id, k.pk, k.origin, &h) != CASENET_OK ||
        h.size != tree_size) {
        snprintf(err, COORD_ERR_MAX,
                 "the broker's head of size %" PRIu64 " is missing or does not verify", tree_size);
        goto cleanup;
    }
    size_t n = hashes.len / MERKLE_HASH_BYTES;
    uint8_t leaf[MERKLE_HASH_BYTES];
    merkle_leaf_hash(ev, len, leaf);
    if (hashes.len % MERKLE_HASH_BYTES || n > MERKLE_PROOF_MAX ||
        merkle_verify_inclusion(leaf, index, tree_size,
                                (const uint8_t(*)[MERKLE_HASH_BYTES])hashes.data, n,
                                h.root) != CASENET_OK) {
        snprintf(err, COORD_ERR_MAX,
                 "event %" PRIu64 " is not included under the signed head of size %" PRIu64, index,
                 tree_size);
        goto cleanup;
    }
    json_t *proof = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(proof,
                              hex_json(hashes.data + i * MERKLE_HASH_BYTES, MERKLE_HASH_BYTES));
    *out = json_pack("{s:I, s:I, s:o, s:I, s:o, s:o, s:b}", "index", (json_int_t)index, "tree_size",
                     (json_int_t)tree_size, "root", hex_json(h.root, sizeof h.root), "head_time",
                     (json_int_t)h.time_ms, "leaf_hash", hex_json(leaf, sizeof leaf), "proof",
                     proof, "verified", 1);
    rc = *out ? CASENET_OK : CASENET_ENOMEM;
cleanup:
    casenet_buf_free(&hashes);
    casenet_buf_free(&ck);
    return rc;
}
