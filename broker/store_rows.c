/* store_rows.c - releasing the rows the store returns (see store.h). A leaf:
 * the backends and the audit bookkeeping use it, it uses nothing of theirs. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

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
