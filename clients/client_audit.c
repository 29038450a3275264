/* client_audit.c - libcasenet's audit log requests: GetTreeHead,
 * AuditQuery, AuditProof (inclusion, consistency), AuditExport, each reply
 * checked for shape before it is handed out; the verification itself is
 * auditlog.c (the connection itself: client.c). */
#include "client_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ audit log */

#define CN_AUDIT_PROOF_MAX  65 /* hashes in the longest proof (merkle.h) */
#define CN_AUDIT_CKPT_MAX   1024
#define CN_AUDIT_EXPORT_MAX 10000u

void casenet_audit_records_free(casenet_audit_record *r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_buf_free(&r[i].event);
    free(r);
}

void casenet_audit_export_page_clear(casenet_audit_export_page *p)
{
    if (!p)
        return;
    if (p->events) {
        for (size_t i = 0; i < p->n_events; i++)
            casenet_buf_free(&p->events[i]);
        free(p->events);
    }
    if (p->checkpoints) {
        for (size_t i = 0; i < p->n_checkpoints; i++)
            casenet_buf_free(&p->checkpoints[i]);
        free(p->checkpoints);
    }
    memset(p, 0, sizeof *p);
}

int casenet_client_tree_head(casenet_client *c, casenet_buf *checkpoint)
{
    if (!c || !checkpoint)
        return CASENET_EINVAL;
    Casenet__V1__GetTreeHead g = CASENET__V1__GET_TREE_HEAD__INIT;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_GET_TREE_HEAD, &g,
                            CASENET__V1__RESPONSE__BODY_TREE_HEAD, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    const ProtobufCBinaryData *ck = &resp->tree_head->checkpoint;
    if (ck->len == 0 || ck->len > CN_AUDIT_CKPT_MAX) {
        client_set_error(c, "the broker returned an empty or oversized tree head");
        rc = CASENET_EBADREQ;
    } else {
        rc = client_copy_bin(ck, checkpoint);
    }
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_audit_query(casenet_client *c, const casenet_audit_filter *f, uint64_t cursor,
                               uint32_t limit, casenet_audit_record **records, size_t *n,
                               uint64_t *next_cursor, bool *more)
{
    if (!c || !records || !n ||
        (f && f->member && f->member[0] && !casenet_member_id_valid(f->member)))
        return CASENET_EINVAL;
    limit = client_page_limit(limit);
    Casenet__V1__AuditQuery q = CASENET__V1__AUDIT_QUERY__INIT;
    if (f) {
        q.member = (char *)(f->member ? f->member : "");
        if (f->message_id) {
            q.message_id.data = (uint8_t *)f->message_id;
            q.message_id.len = CASENET_MESSAGE_ID_BYTES;
        }
        if (f->case_ref) {
            q.case_ref.data = (uint8_t *)f->case_ref;
            q.case_ref.len = CASENET_CASE_REF_BYTES;
        }
        q.from_ms = f->from_ms;
        q.to_ms = f->to_ms;
        q.kind = (Casenet__V1__AuditKind)f->kind;
    }
    q.cursor = cursor;
    q.limit = limit;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_AUDIT_QUERY, &q,
                            CASENET__V1__RESPONSE__BODY_AUDIT_PAGE, true, &resp);
    if (rc != CASENET_OK)
        return rc;

    const Casenet__V1__AuditPage *page = resp->audit_page;
    casenet_audit_record *arr = NULL;
    size_t i = 0;
    rc = CASENET_EBADREQ;
    if (page->n_records > limit || page->next_cursor < cursor ||
        (page->more && page->next_cursor == cursor && page->n_records == 0)) {
        client_set_error(c, "malformed audit page from the broker");
        goto cleanup;
    }
    arr = calloc(page->n_records ? page->n_records : 1, sizeof *arr);
    if (!arr) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (; i < page->n_records; i++) {
        const Casenet__V1__AuditRecord *r = page->records[i];
        /* Ascending, from the cursor on, before next_cursor. */
        if (r->index < cursor || r->index >= page->next_cursor ||
            (i > 0 && r->index <= arr[i - 1].index) || r->event.len == 0) {
            client_set_error(c, "malformed audit record from the broker");
            rc = CASENET_EBADREQ;
            goto cleanup;
        }
        arr[i].index = r->index;
        if ((rc = client_copy_bin(&r->event, &arr[i].event)) != CASENET_OK)
            goto cleanup;
    }
    *records = arr;
    *n = page->n_records;
    if (next_cursor)
        *next_cursor = page->next_cursor;
    if (more)
        *more = page->more;
    arr = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_audit_records_free(arr, i);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

/* Sends an AuditProof and copies the reply's hashes (checked to be 32 bytes
 * each, at most CN_AUDIT_PROOF_MAX) and checkpoint. */
static int proof_call(casenet_client *c, Casenet__V1__AuditProof *p, casenet_buf *hashes,
                      casenet_buf *checkpoint)
{
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_AUDIT_PROOF, p,
                            CASENET__V1__RESPONSE__BODY_PROOF, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__ProofReply *pr = resp->proof;
    casenet_buf h = {0}, ck = {0};
    rc = CASENET_EBADREQ;
    if (pr->n_hashes > CN_AUDIT_PROOF_MAX || pr->checkpoint.len > CN_AUDIT_CKPT_MAX) {
        client_set_error(c, "malformed proof from the broker");
        goto cleanup;
    }
    for (size_t i = 0; i < pr->n_hashes; i++) {
        if (pr->hashes[i].len != CASENET_HASH_BYTES) {
            client_set_error(c, "a proof hash from the broker is not 32 bytes");
            goto cleanup;
        }
    }
    if (pr->n_hashes) {
        h.data = malloc(pr->n_hashes * CASENET_HASH_BYTES);
        if (!h.data) {
            rc = CASENET_ENOMEM;
            goto cleanup;
        }
        for (size_t i = 0; i < pr->n_hashes; i++)
            memcpy(h.data + i * CASENET_HASH_BYTES, pr->hashes[i].data, CASENET_HASH_BYTES);
        h.len = pr->n_hashes * CASENET_HASH_BYTES;
    }
    if ((rc = client_copy_bin(&pr->checkpoint, &ck)) != CASENET_OK)
        goto cleanup;
    *hashes = h;
    *checkpoint = ck;
    h.data = NULL;
    ck.data = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_buf_free(&h);
    casenet_buf_free(&ck);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_audit_inclusion(casenet_client *c, uint64_t index, uint64_t tree_size,
                                   casenet_buf *hashes, casenet_buf *checkpoint)
{
    if (!c || !hashes || !checkpoint || index >= tree_size)
        return CASENET_EINVAL;
    Casenet__V1__InclusionRequest ir = CASENET__V1__INCLUSION_REQUEST__INIT;
    ir.index = index;
    ir.tree_size = tree_size;
    Casenet__V1__AuditProof p = CASENET__V1__AUDIT_PROOF__INIT;
    p.proof_case = CASENET__V1__AUDIT_PROOF__PROOF_INCLUSION;
    p.inclusion = &ir;
    return proof_call(c, &p, hashes, checkpoint);
}

int casenet_client_audit_consistency(casenet_client *c, uint64_t size1, uint64_t size2,
                                     casenet_buf *hashes, casenet_buf *checkpoint)
{
    if (!c || !hashes || !checkpoint || size1 == 0 || size1 > size2)
        return CASENET_EINVAL;
    Casenet__V1__ConsistencyRequest cr = CASENET__V1__CONSISTENCY_REQUEST__INIT;
    cr.size1 = size1;
    cr.size2 = size2;
    Casenet__V1__AuditProof p = CASENET__V1__AUDIT_PROOF__INIT;
    p.proof_case = CASENET__V1__AUDIT_PROOF__PROOF_CONSISTENCY;
    p.consistency = &cr;
    return proof_call(c, &p, hashes, checkpoint);
}

/* Copies n binary fields into a fresh array of buffers. */
static int copy_bins(ProtobufCBinaryData *const src, size_t n, casenet_buf **out)
{
    *out = NULL;
    if (n == 0)
        return CASENET_OK;
    casenet_buf *arr = calloc(n, sizeof *arr);
    if (!arr)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (client_copy_bin(&src[i], &arr[i]) != CASENET_OK) {
            for (size_t k = 0; k < i; k++)
                casenet_buf_free(&arr[k]);
            free(arr);
            return CASENET_ENOMEM;
        }
    }
    *out = arr;
    return CASENET_OK;
}

int casenet_client_audit_export(casenet_client *c, uint64_t from_index, uint32_t limit,
                                casenet_audit_export_page *page)
{
    if (!c || !page)
        return CASENET_EINVAL;
    if (limit > CN_AUDIT_EXPORT_MAX)
        limit = CN_AUDIT_EXPORT_MAX;
    Casenet__V1__AuditExport x = CASENET__V1__AUDIT_EXPORT__INIT;
    x.from_index = from_index;
    x.limit = limit;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_AUDIT_EXPORT, &x,
                            CASENET__V1__RESPONSE__BODY_EXPORT_PAGE, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__ExportPage *ep = resp->export_page;
    casenet_audit_export_page p = {0};
    rc = CASENET_EBADREQ;
    if ((limit && ep->n_events > limit) || ep->n_events > CN_AUDIT_EXPORT_MAX ||
        ep->next_index != from_index + ep->n_events || ep->n_checkpoints > ep->n_events ||
        (ep->more && ep->n_events == 0)) {
        client_set_error(c, "malformed export page from the broker");
        goto cleanup;
    }
    for (size_t i = 0; i < ep->n_checkpoints; i++) {
        if (ep->checkpoints[i].len == 0 || ep->checkpoints[i].len > CN_AUDIT_CKPT_MAX) {
            client_set_error(c, "malformed checkpoint in an export page from the broker");
            goto cleanup;
        }
    }
    if ((rc = copy_bins(ep->events, ep->n_events, &p.events)) != CASENET_OK)
        goto cleanup;
    p.n_events = ep->n_events;
    if ((rc = copy_bins(ep->checkpoints, ep->n_checkpoints, &p.checkpoints)) != CASENET_OK)
        goto cleanup;
    p.n_checkpoints = ep->n_checkpoints;
    p.next_index = ep->next_index;
    p.more = ep->more;
    *page = p;
    memset(&p, 0, sizeof p);
    rc = CASENET_OK;
cleanup:
    casenet_audit_export_page_clear(&p);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}
