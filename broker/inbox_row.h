/*
 * inbox_row.h - an inbox row and its wire form: the one place that fills a
 * store_inbox_row from a stored message (Submit, forwarded receipts, broker
 * notices) and an InboxEntry from a row (ListInbox, Fetch, notices).
 */
#ifndef BROKER_INBOX_ROW_H
#define BROKER_INBOX_ROW_H

#include "casenet.pb-c.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* Fills *row (zeroed first) as a QUEUED row of message m for recipient,
 * received at received_at_ms: id, sender, kind, urgency, status, creation
 * time, size, in-reply-to and case reference are m's. The caller sets what
 * differs (msg_row, or a forwarded receipt's own fields). */
void inbox_row_for(struct store_inbox_row *row, const char *recipient,
                   const struct store_message *m, int64_t received_at_ms);

/* Fills e from row; e borrows row's fields. */
void inbox_entry_from_row(Casenet__V1__InboxEntry *e, const struct store_inbox_row *row);

/* Points f at n bytes of p (NULL: empty); f borrows p. */
void pb_set_bytes(ProtobufCBinaryData *f, const uint8_t *p, size_t n);

#endif
