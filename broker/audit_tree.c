/* audit_tree.c - signed tree heads and the audit requests: GetTreeHead,
 * AuditQuery, AuditProof, AuditExport (see audit_tree.h). */
#include "audit_tree.h"

#include "audit.h"
#include "checkpoint.h"
#include "directory_impl.h"
#include "log.h"
#include "merkle.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_DEFAULT_LIMIT  100u
#define QUERY_MAX_LIMIT      1000u
#define QUERY_EXAMINE_MAX    10000u /* candidate rows one AuditQuery page examines */
#define EXPORT_DEFAULT_LIMIT 1000u
#define EXPORT_MAX_LIMIT     10000u
/* An export page stops adding events past this many bytes (at least one
 * event): well below the 16 MiB a client accepts. */
#define EXPORT_PAGE_BYTES (8u * 1024u * 1024u)
#define DETAIL_MAX        320

_Static_assert(CASENET_HASH_BYTES == MERKLE_HASH_BYTES, "a tree hash is a casenet hash");

/* ------------------------------------------------------------ heads */

int audit_tree_sign_head(struct broker *b)
{
    struct store *s = b->store;
    uint64_t size = 0;
    uint8_t root[MERKLE_HASH_BYTES];
    int rc = store_audit_tree(s, &size, root);
    if (rc != CASENET_OK || size == 0)
        return rc;
    struct store_head latest = {0};
    rc = store_head_latest(s, &latest);
    if (rc != CASENET_OK && rc != CASENET_ENOTFOUND)
        return rc;
    bool have = rc == CASENET_OK;
    int64_t prev_time = latest.time_ms;
    uint64_t prev_size = latest.size;
    store_head_clear(&latest);
    if (have && prev_size >= size)
        return CASENET_OK; /* nothing new (or a log cut short: wait until it passes) */

    struct ckpt_head h = {0};
    const char *network = cn_directory_audit_network(b->dir);
    if (!network || ckpt_origin(network, h.origin) != CASENET_OK) {
        log_event(LOG_ERROR, "tree_head", "error", "INVAL", "msg",
                  "the directory's network name is not a valid checkpoint origin", NULL);
        return CASENET_EINVAL;
    }
    h.size = size;
    memcpy(h.root, root, sizeof root);
    h.time_ms = cn_now_ms();
    if (have && h.time_ms < prev_time)
        h.time_ms = prev_time; /* heads never go back in time, even if the clock does */
    struct store_head sh = {.size = size, .time_ms = h.time_ms};
    memcpy(sh.root, root, sizeof root);
    if ((rc = ckpt_sign(b->keys, &h, &sh.checkpoint)) != CASENET_OK) {
        log_event(LOG_ERROR, "tree_head", "error", casenet_errname(rc), NULL);
        return rc;
    }
    if ((rc = store_begin(s)) == CASENET_OK) {
        rc = store_head_save(s, &sh);
        if (rc == CASENET_OK)
            rc = store_commit(s);
        else
            store_rollback(s);
    }
    if (rc == CASENET_OK)
        log_event(LOG_INFO, "tree_head", "size", log_u64(size), "root", log_hex(root, sizeof root),
                  NULL);
    else
        log_event(LOG_ERROR, "tree_head", "size", log_u64(size), "error", casenet_errname(rc),
                  NULL);
    casenet_buf_free(&sh.checkpoint);
    return rc;
}

/* ------------------------------------------------------------ helpers */

static int store_get_node(void *ctx, unsigned level, uint64_t index, uint8_t out[MERKLE_HASH_BYTES])
{
    struct store *s = ctx;
    return store_audit_node_get(s, level, index, out);
}

/* Records the read as an AUDIT_QUERIED event. */
static int audit_read(struct req *c, const uint8_t *message_id, const uint8_t *case_ref,
                      const char *detail)
{
    int rc = audit_queried(c->b->store, c->now_ms, c->member, message_id, case_ref, detail, NULL);
    return rc == CASENET_OK ? CASENET_OK : req_store_fail(c, rc, "append to the audit log");
}

/* ------------------------------------------------------------ GetTreeHead */

int audit_tree_head(struct req *c, const Casenet__V1__Request *rq)
{
    (void)rq;
    struct store *s = c->b->store;
    struct store_head h = {0};
    int rc = store_head_latest(s, &h);
    if (rc == CASENET_ENOTFOUND)
        return req_fail(c, rc,
                        "the broker has not signed a tree head yet; ask again in a few seconds");
    if (rc != CASENET_OK)
        return req_store_fail(c, rc, "read the tree head");
    Casenet__V1__TreeHeadReply t = CASENET__V1__TREE_HEAD_REPLY__INIT;
    t.checkpoint.data = h.checkpoint.data;
    t.checkpoint.len = h.checkpoint.len;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_TREE_HEAD;
    c->resp.tree_head = &t;
    rc = req_reply(c);
    store_head_clear(&h);
    return rc;
}

/* ------------------------------------------------------------ AuditQuery */

/* Appends " key=value" to buf (cap bytes) when value is set. */
static void detail_add(char *buf, size_t cap, const char *key, const char *value)
{
    size_t n = strlen(buf);
    if (value && *value && n < cap)
        snprintf(buf + n, cap - n, " %s=%s", key, value);
}

int audit_tree_query(struct req *c, const Casenet__V1__Request *rq)
{
    const Casenet__V1__AuditQuery *q = rq->audit_query;
    bool coordinator = broker_is_coordinator(c->b, c->member);
    struct store *s = c->b->store;
    struct store_audit_filter f = {0};
    if (q->message_id.len != 0 && q->message_id.len != CASENET_MESSAGE_ID_BYTES)
        return req_fail(c, CASENET_EBADREQ, "message_id is %d bytes when set",
                        CASENET_MESSAGE_ID_BYTES);
    if (q->case_ref.len != 0 && q->case_ref.len != CASENET_CASE_REF_BYTES)
        return req_fail(c, CASENET_EBADREQ, "case_ref is %d bytes when set",
                        CASENET_CASE_REF_BYTES);
    if (!protobuf_c_enum_descriptor_get_value(&casenet__v1__audit_kind__descriptor, q->kind))
        return req_fail(c, CASENET_EBADREQ, "unknown audit event kind %d", (int)q->kind);
    if (q->from_ms < 0 || q->to_ms < 0)
        return req_fail(c, CASENET_EBADREQ,
                        "from_ms and to_ms are ms since the epoch (0 = unbounded)");
    if (q->member && *q->member && !casenet_member_id_valid(q->member))
        return req_fail(c, CASENET_EBADREQ,
                        "the member filter is not a member id ([a-z0-9][a-z0-9.-]{1,63})");
    const char *asked = q->member && *q->member ? q->member : NULL;
    if (!coordinator && asked && strcmp(asked, c->member) != 0)
        return req_fail(
            c, CASENET_EFORBIDDEN,
            "only coordinators may query another member's events; %s sees the events it "
            "is party to",
            c->member);
    /* Least visibility: a member that is not a coordinator is always
     * restricted to its own events, whatever it asked. */
    f.member = coordinator ? asked : c->member;
    /* ... and walks its own events only: a cursor that advanced over hidden
     * events would tell that, and when, others acted. */
    f.member_only = !coordinator;
    f.message_id = q->message_id.len ? q->message_id.data : NULL;
    f.case_ref = q->case_ref.len ? q->case_ref.data : NULL;
    f.from_ms = q->from_ms;
    f.to_ms = q->to_ms;
    f.kind = (int)q->kind;
    uint32_t limit = q->limit ? q->limit : QUERY_DEFAULT_LIMIT;
    if (limit > QUERY_MAX_LIMIT)
        limit = QUERY_MAX_LIMIT;

    struct store_audit_row *rows = NULL;
    size_t n = 0;
    uint64_t next = q->cursor;
    bool more = false;
    int rc = store_audit_query(s, &f, q->cursor, limit, QUERY_EXAMINE_MAX, &rows, &n, &next, &more);
    if (rc != CASENET_OK)
        return req_store_fail(c, rc, "query the audit log");
    Casenet__V1__AuditRecord *recs = calloc(n ? n : 1, sizeof *recs);
    Casenet__V1__AuditRecord **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!recs || !ptrs) {
        rc = req_fail(c, CASENET_ENOMEM, "out of memory; ask for a smaller page");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        casenet__v1__audit_record__init(&recs[i]);
        recs[i].index = rows[i].index;
        recs[i].event.data = rows[i].event.data;
        recs[i].event.len = rows[i].event.len;
        ptrs[i] = &recs[i];
    }
    char detail[DETAIL_MAX] = "audit_query";
    char num[3][24];
    snprintf(num[0], sizeof num[0], "%llu", (unsigned long long)q->cursor);
    snprintf(num[1], sizeof num[1], "%zu", n);
    detail_add(detail, sizeof detail, "member", asked);
    detail_add(detail, sizeof detail, "kind",
               q->kind ? protobuf_c_enum_descriptor_get_value(&casenet__v1__audit_kind__descriptor,
                                                              q->kind)
                             ->name
                       : NULL);
    if (q->from_ms) {
        snprintf(num[2], sizeof num[2], "%lld", (long long)q->from_ms);
        detail_add(detail, sizeof detail, "from_ms", num[2]);
    }
    if (q->to_ms) {
        snprintf(num[2], sizeof num[2], "%lld", (long long)q->to_ms);
        detail_add(detail, sizeof detail, "to_ms", num[2]);
    }
    detail_add(detail, sizeof detail, "cursor", num[0]);
    detail_add(detail, sizeof detail, "returned", num[1]);
    if ((rc = audit_read(c, f.message_id, f.case_ref, detail)) != CASENET_OK)
        goto cleanup;
    Casenet__V1__AuditPage page = CASENET__V1__AUDIT_PAGE__INIT;
    page.n_records = n;
    page.records = ptrs;
    page.next_cursor = next;
    page.more = more;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_AUDIT_PAGE;
    c->resp.audit_page = &page;
    rc = req_reply(c);
cleanup:
    free(ptrs);
    free(recs);
    store_audit_rows_free(rows, n);
    return rc;
}

/* ------------------------------------------------------------ AuditProof */

int audit_tree_proof(struct req *c, const Casenet__V1__Request *rq)
{
    const Casenet__V1__AuditProof *p = rq->audit_proof;
    bool coordinator = broker_is_coordinator(c->b, c->member);
    struct store *s = c->b->store;
    uint64_t log_size = 0;
    uint8_t root[MERKLE_HASH_BYTES];
    int rc = store_audit_tree(s, &log_size, root);
    if (rc != CASENET_OK)
        return req_store_fail(c, rc, "read the audit tree");
    uint8_t hashes[MERKLE_PROOF_MAX][MERKLE_HASH_BYTES];
    size_t n = 0;
    uint64_t at = 0;
    if (p->proof_case == CASENET__V1__AUDIT_PROOF__PROOF_INCLUSION) {
        const Casenet__V1__InclusionRequest *r = p->inclusion;
        if (r->index >= r->tree_size)
            return req_fail(c, CASENET_EBADREQ, "index %llu is not below tree_size %llu",
                            (unsigned long long)r->index, (unsigned long long)r->tree_size);
        if (r->tree_size > log_size)
            return req_fail(c, CASENET_ENOTFOUND,
                            "the log has %llu events, fewer than tree_size %llu; ask with the size "
                            "of a head you hold",
                            (unsigned long long)log_size, (unsigned long long)r->tree_size);
        if (!coordinator) {
            bool visible = false;
            if ((rc = store_audit_visible(s, c->member, r->index, &visible)) != CASENET_OK)
                return req_store_fail(c, rc, "read the audit log");
            if (!visible)
                return req_fail(
                    c, CASENET_EFORBIDDEN,
                    "event %llu is not one %s is party to; members get inclusion proofs "
                    "for their own events only",
                    (unsigned long long)r->index, c->member);
        }
        rc = merkle_inclusion_proof(store_get_node, s, r->index, r->tree_size, hashes,
                                    MERKLE_PROOF_MAX, &n);
        at = r->tree_size;
    } else if (p->proof_case == CASENET__V1__AUDIT_PROOF__PROOF_CONSISTENCY) {
        const Casenet__V1__ConsistencyRequest *r = p->consistency;
        if (r->size1 == 0 || r->size1 > r->size2)
            return req_fail(c, CASENET_EBADREQ, "a consistency proof needs 0 < size1 <= size2");
        if (r->size2 > log_size)
            return req_fail(
                c, CASENET_ENOTFOUND,
                "the log has %llu events, fewer than size2 %llu; ask with the size of a "
                "head you hold",
                (unsigned long long)log_size, (unsigned long long)r->size2);
        rc = merkle_consistency_proof(store_get_node, s, r->size1, r->size2, hashes,
                                      MERKLE_PROOF_MAX, &n);
        at = r->size2;
    } else {
        return req_fail(c, CASENET_EBADREQ, "AuditProof names neither inclusion nor consistency");
    }
    if (rc != CASENET_OK) {
        if (rc == CASENET_ENOTFOUND) /* a subtree of a size the log reached is missing */
            log_event(LOG_ERROR, "store_corrupt", "table", "audit_nodes", "size", log_u64(at),
                      NULL);
        return req_store_fail(c, rc == CASENET_ENOTFOUND ? CASENET_EIO : rc, "compute the proof");
    }
    struct store_head head = {0};
    rc = store_head_get(s, at, &head);
    if (rc != CASENET_OK && rc != CASENET_ENOTFOUND)
        return req_store_fail(c, rc, "read the tree head");
    ProtobufCBinaryData bin[MERKLE_PROOF_MAX];
    for (size_t i = 0; i < n; i++) {
        bin[i].data = hashes[i];
        bin[i].len = MERKLE_HASH_BYTES;
    }
    Casenet__V1__ProofReply pr = CASENET__V1__PROOF_REPLY__INIT;
    pr.n_hashes = n;
    pr.hashes = bin;
    pr.checkpoint.data = head.checkpoint.data;
    pr.checkpoint.len = head.checkpoint.len;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_PROOF;
    c->resp.proof = &pr;
    rc = req_reply(c);
    store_head_clear(&head);
    return rc;
}

/* ------------------------------------------------------------ AuditExport */

int audit_tree_export(struct req *c, const Casenet__V1__Request *rq)
{
    const Casenet__V1__AuditExport *x = rq->audit_export;
    bool coordinator = broker_is_coordinator(c->b, c->member);
    struct store *s = c->b->store;
    if (!coordinator)
        return req_fail(c, CASENET_EFORBIDDEN,
                        "only coordinators may export the audit log; check your own events with "
                        "AuditQuery and AuditProof ('casenet audit prove')");
    uint64_t log_size = 0;
    uint8_t root[MERKLE_HASH_BYTES];
    int rc = store_audit_tree(s, &log_size, root);
    if (rc != CASENET_OK)
        return req_store_fail(c, rc, "read the audit tree");
    if (x->from_index > log_size)
        return req_fail(c, CASENET_ENOTFOUND, "the log has %llu events; from_index %llu is past it",
                        (unsigned long long)log_size, (unsigned long long)x->from_index);
    uint32_t limit = x->limit ? x->limit : EXPORT_DEFAULT_LIMIT;
    if (limit > EXPORT_MAX_LIMIT)
        limit = EXPORT_MAX_LIMIT;
    if (limit > log_size - x->from_index)
        limit = (uint32_t)(log_size - x->from_index);
    struct store_audit_row *rows = NULL;
    struct store_head *heads = NULL;
    size_t n = 0, n_heads = 0;
    ProtobufCBinaryData *evs = NULL, *cks = NULL;
    if ((rc = store_audit_range(s, x->from_index, limit, &rows, &n)) != CASENET_OK)
        return req_store_fail(c, rc, "read the audit log");
    size_t bytes = 0, keep = 0;
    while (keep < n && (keep == 0 || bytes + rows[keep].event.len <= EXPORT_PAGE_BYTES))
        bytes += rows[keep++].event.len;
    uint64_t next = x->from_index + keep;
    if (keep > 0 && (rc = store_head_list(s, x->from_index, next, (uint32_t)keep, &heads,
                                          &n_heads)) != CASENET_OK) {
        rc = req_store_fail(c, rc, "read the tree heads");
        goto cleanup;
    }
    evs = calloc(keep ? keep : 1, sizeof *evs);
    cks = calloc(n_heads ? n_heads : 1, sizeof *cks);
    if (!evs || !cks) {
        rc = req_fail(c, CASENET_ENOMEM, "out of memory; ask for a smaller page");
        goto cleanup;
    }
    for (size_t i = 0; i < keep; i++) {
        evs[i].data = rows[i].event.data;
        evs[i].len = rows[i].event.len;
    }
    for (size_t i = 0; i < n_heads; i++) {
        cks[i].data = heads[i].checkpoint.data;
        cks[i].len = heads[i].checkpoint.len;
    }
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof detail, "audit_export from=%llu events=%zu",
             (unsigned long long)x->from_index, keep);
    if ((rc = audit_read(c, NULL, NULL, detail)) != CASENET_OK)
        goto cleanup;
    Casenet__V1__ExportPage page = CASENET__V1__EXPORT_PAGE__INIT;
    page.n_events = keep;
    page.events = evs;
    page.n_checkpoints = n_heads;
    page.checkpoints = cks;
    page.next_index = next;
    page.more = next < log_size;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_EXPORT_PAGE;
    c->resp.export_page = &page;
    rc = req_reply(c);
cleanup:
    free(evs);
    free(cks);
    store_heads_free(heads, n_heads);
    store_audit_rows_free(rows, n);
    return rc;
}
