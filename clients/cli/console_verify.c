/* console_verify.c - the coordinator view's one adapter over libcasenet's
 * public audit verifier (casenet.h, casenet_audit_verifier_*,
 * docs/library.md): a live run from the cache's trusted state, its failure
 * as one sentence, and inclusion proofs. */
#include "cli.h"
#include "console_coord.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void coord_trust_clear(struct coord_trust *t)
{
    free(t->bytes);
    t->bytes = NULL;
    t->len = 0;
}

/* What a run hands the cache: each event to on_event until one fails (the
 * public callbacks cannot stop a run: the first error is kept and returned
 * after it). */
struct pull_ctx {
    coord_event_fn on_event;
    coord_progress_fn progress;
    void *ctx;
    int event_rc;
};

static void pull_event(void *ctx, uint64_t index, const uint8_t *ev, size_t len)
{
    struct pull_ctx *p = ctx;
    if (p->event_rc == CASENET_OK && p->on_event)
        p->event_rc = p->on_event(p->ctx, index, ev, len);
}

static void pull_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct pull_ctx *p = ctx;
    if (p->progress)
        p->progress(p->ctx, done, total);
}

/* A verifier for dir's broker, or err says why there is none. */
static int verifier_of(const casenet_directory *dir, const casenet_audit_callbacks *cb,
                       casenet_audit_verifier **v, char err[COORD_ERR_MAX])
{
    int rc = casenet_audit_verifier_new(dir, cb, v);
    if (rc == CASENET_ENOTFOUND)
        snprintf(err, COORD_ERR_MAX, "the directory lists no broker with a signing key");
    else if (rc == CASENET_EBADREQ)
        snprintf(err, COORD_ERR_MAX, "the directory's network name is not a valid log origin");
    else if (rc != CASENET_OK)
        snprintf(err, COORD_ERR_MAX, "cannot start the verifier: %s", casenet_strerror(rc));
    return rc;
}

/* The run's failure as one sentence; a broker that failed to answer reads
 * "broker: ..." (not a verdict on the log). */
static void failure_text(casenet_client *cl, const casenet_audit_verifier *v, int rc,
                         char err[COORD_ERR_MAX])
{
    const casenet_audit_failure *f = casenet_audit_verifier_failure(v);
    if (f->where == CASENET_AUDIT_BROKER)
        snprintf(err, COORD_ERR_MAX, "broker: %s", casenet_client_last_error(cl));
    else if (f->where != CASENET_AUDIT_OK && f->where != CASENET_AUDIT_LOCAL)
        snprintf(err, COORD_ERR_MAX, "%s", f->reason);
    else
        snprintf(err, COORD_ERR_MAX, "verification stopped: %s", casenet_strerror(rc));
}

int coord_verify_pull(casenet_client *cl, const casenet_directory *dir,
                      const struct coord_trust *trusted, bool full, coord_event_fn on_event,
                      coord_progress_fn progress, void *ctx, struct coord_trust *next,
                      struct coord_head *head, char err[COORD_ERR_MAX])
{
    err[0] = '\0';
    struct pull_ctx pc = {on_event, progress, ctx, CASENET_OK};
    casenet_audit_callbacks cb = {.progress = pull_progress, .event = pull_event, .ctx = &pc};
    casenet_audit_verifier *v = NULL;
    casenet_buf enc = {0};
    int rc = verifier_of(dir, &cb, &v, err);
    if (rc != CASENET_OK)
        return rc;
    if (trusted && trusted->len &&
        (rc = casenet_audit_verifier_decode_state(v, trusted->bytes, trusted->len)) != CASENET_OK) {
        snprintf(err, COORD_ERR_MAX, "the cache's trusted head is damaged: remove coord.db");
        goto cleanup;
    }
    if ((rc = casenet_audit_verify_live(v, cl, full)) != CASENET_OK) {
        failure_text(cl, v, rc, err);
        goto cleanup;
    }
    /* A declared restore (LOG_RESTORED) verifies, but the cache holds events
     * the new epoch no longer has: figures from it could not be proved
     * against any head the broker now signs, so they are not shown. */
    casenet_audit_epoch ep;
    casenet_audit_verifier_epoch(v, &ep);
    if (ep.changed) {
        rc = CASENET_EROLLBACK;
        snprintf(err, COORD_ERR_MAX,
                 "the broker's log was restored from a backup of %llu events (the last head "
                 "before it had %llu): figures from the cache are no longer provable; remove "
                 "coord.db to start the figures again from the new epoch",
                 (unsigned long long)ep.restored_size,
                 (unsigned long long)(ep.previous_size > ep.remembered_size ? ep.previous_size
                                                                            : ep.remembered_size));
        goto cleanup;
    }
    if ((rc = pc.event_rc) != CASENET_OK) {
        snprintf(err, COORD_ERR_MAX, "verification stopped: an event could not be cached: %s",
                 casenet_strerror(rc));
        goto cleanup;
    }
    if ((rc = casenet_audit_verifier_encode_state(v, &enc)) != CASENET_OK) {
        snprintf(err, COORD_ERR_MAX, "verification stopped: %s", casenet_strerror(rc));
        goto cleanup;
    }
    casenet_audit_head h;
    casenet_audit_verifier_trusted(v, &h);
    next->bytes = enc.data;
    next->len = enc.len;
    enc.data = NULL;
    memset(head, 0, sizeof *head);
    head->size = h.size;
    head->time_ms = h.time_ms;
    memcpy(head->root, h.root, sizeof head->root);
cleanup:
    casenet_buf_free(&enc);
    casenet_audit_verifier_free(v);
    return rc;
}

static json_t *hex_json(const uint8_t *b, size_t n)
{
    char h[2 * CASENET_HASH_BYTES + 1];
    sodium_bin2hex(h, sizeof h, b, n);
    return json_string(h);
}

int coord_prove(casenet_client *cl, const casenet_directory *dir, uint64_t index, const uint8_t *ev,
                size_t len, const struct coord_head *head, json_t **out, char err[COORD_ERR_MAX])
{
    err[0] = '\0';
    casenet_audit_verifier *v = NULL;
    int rc = verifier_of(dir, NULL, &v, err);
    if (rc != CASENET_OK)
        return rc;
    casenet_audit_head h = {.size = head->size, .time_ms = head->time_ms};
    memcpy(h.root, head->root, sizeof h.root);
    uint8_t leaf[CASENET_HASH_BYTES];
    casenet_buf path = {0};
    rc = casenet_audit_verifier_prove_path(v, cl, &h, index, ev, len, leaf, &path);
    if (rc != CASENET_OK) {
        failure_text(cl, v, rc, err);
        goto cleanup;
    }
    json_t *proof = json_array();
    for (size_t i = 0; proof && i + CASENET_HASH_BYTES <= path.len; i += CASENET_HASH_BYTES)
        json_array_append_new(proof, hex_json(path.data + i, CASENET_HASH_BYTES));
    *out = json_pack("{s:I, s:I, s:o, s:I, s:o, s:o, s:b}", "index", (json_int_t)index, "tree_size",
                     (json_int_t)h.size, "root", hex_json(h.root, sizeof h.root), "head_time",
                     (json_int_t)h.time_ms, "leaf_hash", hex_json(leaf, sizeof leaf), "proof",
                     proof, "verified", 1);
    rc = *out ? CASENET_OK : CASENET_ENOMEM;
cleanup:
    casenet_buf_free(&path);
    casenet_audit_verifier_free(v);
    return rc;
}
