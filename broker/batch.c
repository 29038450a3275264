/* batch.c - the work a batch leaves for the loop after its commit (see batch.h). */
#include "batch.h"

#include "broker.h"
#include "casenet.pb-c.h"
#include "inbox_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int batch_add_notice(struct batch *bt, const char *member, const uint8_t *resp, size_t len)
{
    if (bt->n_notices == bt->cap_notices) {
        size_t cap = bt->cap_notices ? 2 * bt->cap_notices : 16;
        struct batch_notice *n = realloc(bt->notices, cap * sizeof *n);
        if (!n)
            return CASENET_ENOMEM;
        bt->notices = n;
        bt->cap_notices = cap;
    }
    struct batch_notice *n = &bt->notices[bt->n_notices];
    n->response.data = malloc(len ? len : 1);
    if (!n->response.data)
        return CASENET_ENOMEM;
    memcpy(n->response.data, resp, len);
    n->response.len = len;
    snprintf(n->member, sizeof n->member, "%s", member);
    bt->n_notices++;
    return CASENET_OK;
}

int batch_queue_notice(struct batch *bt, const struct store_inbox_row *row)
{
    Casenet__V1__Response r = CASENET__V1__RESPONSE__INIT;
    Casenet__V1__Notice n = CASENET__V1__NOTICE__INIT;
    Casenet__V1__InboxEntry e;
    inbox_entry_from_row(&e, row);
    n.entry = &e;
    r.protocol_version = BROKER_PROTOCOL_VERSION;
    r.request_id = 0;
    r.body_case = CASENET__V1__RESPONSE__BODY_NOTICE;
    r.notice = &n;
    size_t len = casenet__v1__response__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return CASENET_ENOMEM;
    casenet__v1__response__pack(&r, buf);
    int rc = batch_add_notice(bt, row->recipient, buf, len);
    free(buf);
    return rc;
}

const struct batch_sig *batch_find_sig(const struct batch *bt,
                                       const uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    for (size_t i = 0; i < bt->n_sigs; i++)
        if (memcmp(bt->sigs[i].message_id, id, CASENET_MESSAGE_ID_BYTES) == 0)
            return &bt->sigs[i];
    return NULL;
}

static struct batch_bytes *bytes_find(const struct batch *bt, const char *member)
{
    for (size_t i = 0; i < bt->n_bytes; i++)
        if (strcmp(bt->bytes[i].member, member) == 0)
            return &bt->bytes[i];
    return NULL;
}

int batch_add_bytes(struct batch *bt, const char *member, uint64_t n)
{
    struct batch_bytes *b = bytes_find(bt, member);
    if (!b) {
        if (bt->n_bytes == bt->cap_bytes) {
            size_t cap = bt->cap_bytes ? 2 * bt->cap_bytes : 16;
            struct batch_bytes *m = realloc(bt->bytes, cap * sizeof *m);
            if (!m)
                return CASENET_ENOMEM;
            bt->bytes = m;
            bt->cap_bytes = cap;
        }
        b = &bt->bytes[bt->n_bytes++];
        snprintf(b->member, sizeof b->member, "%s", member);
        b->bytes = 0;
    }
    b->bytes += n;
    return CASENET_OK;
}

uint64_t batch_bytes_of(const struct batch *bt, const char *member)
{
    const struct batch_bytes *b = bytes_find(bt, member);
    return b ? b->bytes : 0;
}

int batch_flush_bytes(const struct batch *bt, struct store *st)
{
    for (size_t i = 0; i < bt->n_bytes; i++) {
        int rc = store_member_bytes_add(st, bt->bytes[i].member, bt->bytes[i].bytes);
        if (rc != CASENET_OK)
            return rc;
    }
    return CASENET_OK;
}

void batch_clear(struct batch *bt)
{
    free(bt->bytes);
    for (size_t i = 0; i < bt->n_sigs; i++)
        casenet_buf_free(&bt->sigs[i].pae);
    free(bt->sigs);
    for (size_t i = 0; i < bt->n_notices; i++)
        casenet_buf_free(&bt->notices[i].response);
    free(bt->notices);
    casenet_directory_free(bt->new_dir);
    memset(bt, 0, sizeof *bt);
}
