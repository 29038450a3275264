/* inbox_row.c - inbox rows from messages, wire entries from rows (see inbox_row.h). */
#include "inbox_row.h"

#include <stdio.h>
#include <string.h>

void pb_set_bytes(ProtobufCBinaryData *f, const uint8_t *p, size_t n)
{
    f->data = (uint8_t *)p;
    f->len = p ? n : 0;
}

void inbox_row_for(struct store_inbox_row *row, const char *recipient,
                   const struct store_message *m, int64_t received_at_ms)
{
    memset(row, 0, sizeof *row);
    snprintf(row->recipient, sizeof row->recipient, "%s", recipient);
    memcpy(row->message_id, m->message_id, sizeof row->message_id);
    snprintf(row->sender, sizeof row->sender, "%s", m->sender);
    row->kind = m->kind;
    row->urgency = m->urgency;
    row->msg_status = m->msg_status;
    row->state = CASENET_INBOX_QUEUED;
    row->received_at_ms = received_at_ms;
    row->created_at_ms = m->created_at_ms;
    row->size = m->size;
    row->has_in_reply_to = m->has_in_reply_to;
    memcpy(row->in_reply_to, m->in_reply_to, sizeof row->in_reply_to);
    row->has_case_ref = m->has_case_ref;
    memcpy(row->case_ref, m->case_ref, sizeof row->case_ref);
}

void inbox_entry_from_row(Casenet__V1__InboxEntry *e, const struct store_inbox_row *row)
{
    casenet__v1__inbox_entry__init(e);
    e->seq = row->seq;
    pb_set_bytes(&e->message_id, row->message_id, sizeof row->message_id);
    e->sender = (char *)row->sender;
    e->kind = (Casenet__V1__Kind)row->kind;
    e->urgency = (Casenet__V1__Urgency)row->urgency;
    e->message_status = (Casenet__V1__MessageStatus)row->msg_status;
    e->state = (Casenet__V1__InboxState)row->state;
    e->received_at_ms = row->received_at_ms;
    e->created_at_ms = row->created_at_ms;
    e->size = row->size;
    if (row->has_in_reply_to)
        pb_set_bytes(&e->in_reply_to, row->in_reply_to, sizeof row->in_reply_to);
    if (row->has_case_ref)
        pb_set_bytes(&e->case_ref, row->case_ref, sizeof row->case_ref);
    e->receipt_status = (Casenet__V1__ReceiptStatus)row->receipt_status;
    pb_set_bytes(&e->receipt, row->receipt.data, row->receipt.len);
}
