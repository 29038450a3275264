/* store.c - helpers shared by every store backend (see store.h). */
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
