/* store.c - helpers shared by every store backend (see store.h). */
#include "store.h"

#include "casenet.pb-c.h"

#include <stdlib.h>
#include <string.h>

int store_open(const char *spec, struct store **out)
{
    static const char sqlite_scheme[] = "sqlite:";
    if (strncmp(spec, sqlite_scheme, sizeof sqlite_scheme - 1) == 0)
        return store_sqlite_ops.open(spec + sizeof sqlite_scheme - 1, out);
    if (strstr(spec, "://"))
        return CASENET_EINVAL;
    return store_sqlite_ops.open(spec, out);
}

void store_message_clear(struct store_message *m)
{
    if (!m)
        return;
    casenet_buf_free(&m->envelope);
    casenet_buf_free(&m->receipt);
    memset(m, 0, sizeof *m);
}

void store_inbox_row_clear(struct store_inbox_row *r)
{
    if (!r)
        return;
    casenet_buf_free(&r->receipt);
    memset(r, 0, sizeof *r);
}

void store_inbox_rows_free(struct store_inbox_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        store_inbox_row_clear(&rows[i]);
    free(rows);
}

void store_messages_free(struct store_message *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        store_message_clear(&rows[i]);
    free(rows);
}

void store_receipt_recs_free(struct store_receipt_rec *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_buf_free(&rows[i].signed_receipt);
    free(rows);
}

void store_overdue_free(struct store_overdue *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        store_inbox_row_clear(&rows[i].row);
    free(rows);
}

void store_audit_rows_free(struct store_audit_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_buf_free(&rows[i].event);
    free(rows);
}

void store_head_clear(struct store_head *h)
{
    if (!h)
        return;
    casenet_buf_free(&h->checkpoint);
    memset(h, 0, sizeof *h);
}

void store_heads_free(struct store_head *heads, size_t n)
{
    if (!heads)
        return;
    for (size_t i = 0; i < n; i++)
        store_head_clear(&heads[i]);
    free(heads);
}

int store_audit_keys(const uint8_t *event, size_t len, bool *has_message_id,
                     uint8_t message_id[CASENET_MESSAGE_ID_BYTES], bool *has_case_ref,
                     uint8_t case_ref[CASENET_CASE_REF_BYTES])
{
    Casenet__V1__AuditEvent *e = casenet__v1__audit_event__unpack(NULL, len, event);
    if (!e)
        return CASENET_EBADREQ;
    *has_message_id = e->message_id.len == CASENET_MESSAGE_ID_BYTES;
    if (*has_message_id)
        memcpy(message_id, e->message_id.data, CASENET_MESSAGE_ID_BYTES);
    *has_case_ref = e->case_ref.len == CASENET_CASE_REF_BYTES;
    if (*has_case_ref)
        memcpy(case_ref, e->case_ref.data, CASENET_CASE_REF_BYTES);
    casenet__v1__audit_event__free_unpacked(e, NULL);
    return CASENET_OK;
}
