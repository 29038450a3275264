/* handlers_inbox.c - ListInbox, Fetch and SendReceipt, and the inbox row
 * every handler adds through here (see handlers.h). */
#include "handlers.h"

#include "audit.h"
#include "inbox_row.h"
#include "log.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT_LIMIT 100u
#define LIST_MAX_LIMIT     1000u

int handlers_inbox_add(struct req *c, struct store_inbox_row *row)
{
    struct store *s = c->b->store;
    int rc = store_inbox_insert(s, row);
    if (rc == CASENET_ECONFLICT)
        return req_fail(c, CASENET_ECONFLICT, "%s already holds this entry", row->recipient);
    if (rc != CASENET_OK)
        return req_store_fail(c, rc, "store the inbox entry");
    if (batch_queue_notice(c->bt, row) != CASENET_OK)
        return req_fail(c, CASENET_ENOMEM, "out of memory; retry later");
    return CASENET_OK;
}

/* ------------------------------------------------------------ ListInbox */

int handlers_list_inbox(struct req *c, const Casenet__V1__Request *q)
{
    const Casenet__V1__ListInbox *req = q->list_inbox;
    struct store *s = c->b->store;
    if ((int)req->state < CASENET_INBOX_ANY || (int)req->state > CASENET_INBOX_DEAD)
        return req_fail(c, CASENET_EBADREQ, "unknown inbox state %d", (int)req->state);
    uint32_t limit = req->limit ? req->limit : LIST_DEFAULT_LIMIT;
    if (limit > LIST_MAX_LIMIT)
        limit = LIST_MAX_LIMIT;
    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    bool more = false;
    int rc = store_inbox_list(s, c->member, (int)req->state, req->cursor, limit, &rows, &n, &more);
    if (rc != CASENET_OK)
        return req_store_fail(c, rc, "list the inbox");
    Casenet__V1__InboxEntry *entries = calloc(n ? n : 1, sizeof *entries);
    Casenet__V1__InboxEntry **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!entries || !ptrs) {
        rc = req_fail(c, CASENET_ENOMEM, "out of memory; ask for a smaller page");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        inbox_entry_from_row(&entries[i], &rows[i]);
        ptrs[i] = &entries[i];
    }
    Casenet__V1__InboxPage page = CASENET__V1__INBOX_PAGE__INIT;
    page.n_entries = n;
    page.entries = ptrs;
    page.next_cursor = n ? rows[n - 1].seq : req->cursor;
    page.more = more;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_INBOX;
    c->resp.inbox = &page;
    rc = req_reply(c);
cleanup:
    free(ptrs);
    free(entries);
    store_inbox_rows_free(rows, n);
    return rc;
}

/* ------------------------------------------------------------ Fetch */

int handlers_fetch(struct req *c, const Casenet__V1__Request *q)
{
    const Casenet__V1__Fetch *req = q->fetch;
    struct store *s = c->b->store;
    struct store_inbox_row row = {0};
    struct store_message m = {0};
    int rc;
    if ((rc = req_limits(c, LIMITS_FETCH)) != CASENET_OK)
        return rc;
    if (req->message_id.len != CASENET_MESSAGE_ID_BYTES)
        return req_fail(c, CASENET_EBADREQ, "a message id is %d bytes", CASENET_MESSAGE_ID_BYTES);
    /* Only a recipient's own inbox is consulted: for anyone else the message
     * does not exist (NOT_FOUND, never FORBIDDEN, which would confirm it). */
    rc = store_inbox_get(s, c->member, req->message_id.data, &row);
    if (rc == CASENET_ENOTFOUND)
        return req_fail(c, rc, "no message %s in your inbox",
                        log_hex(req->message_id.data, CASENET_MESSAGE_ID_BYTES));
    if (rc != CASENET_OK)
        return req_store_fail(c, rc, "read the inbox");
    if (row.state == CASENET_INBOX_DEAD) {
        /* The sender was told it was never delivered: keep it so. */
        rc = req_fail(c, CASENET_ENOTFOUND, "message %s expired before delivery (dead-lettered)",
                      log_hex(row.message_id, CASENET_MESSAGE_ID_BYTES));
        goto cleanup;
    }
    if (row.kind != CASENET_KIND_RECEIPT) {
        rc = store_message_get(s, row.message_id, true, &m);
        if (rc == CASENET_OK && m.envelope.len == 0)
            rc = req_fail(c, CASENET_ENOTFOUND, "message %s was purged after completion",
                          log_hex(row.message_id, CASENET_MESSAGE_ID_BYTES));
        else if (rc == CASENET_ENOTFOUND)
            rc = req_fail(c, rc, "no message %s in your inbox",
                          log_hex(row.message_id, CASENET_MESSAGE_ID_BYTES));
        else if (rc != CASENET_OK)
            rc = req_store_fail(c, rc, "read the message");
        if (rc != CASENET_OK)
            goto cleanup;
        bool moved = row.state == CASENET_INBOX_QUEUED, audited = false;
        if (moved) {
            if ((rc = store_inbox_set_state(s, row.seq, CASENET_INBOX_FETCHED, c->now_ms)) !=
                CASENET_OK) {
                rc = req_store_fail(c, rc, "update the inbox");
                goto cleanup;
            }
            row.state = CASENET_INBOX_FETCHED;
        }
        /* One FETCHED event per state of the row: a repeated fetch writes
         * nothing (and is refused nothing on a low disk; the savepoint undoes
         * a refused one). */
        if ((rc = store_inbox_fetch_mark(s, row.seq, row.state, &audited)) != CASENET_OK) {
            rc = req_store_fail(c, rc, "update the inbox");
            goto cleanup;
        }
        if ((moved || audited) && (rc = req_disk_check(c, LIMITS_FETCH)) != CASENET_OK)
            goto cleanup;
        if (audited && (rc = audit_fetched(s, c->now_ms, c->member, &m, NULL)) != CASENET_OK) {
            rc = req_store_fail(c, rc, "append to the audit log");
            goto cleanup;
        }
        log_event(audited ? LOG_INFO : LOG_DEBUG, "fetch", "member", c->member, "msg",
                  log_hex(m.message_id, sizeof m.message_id), NULL);
    } else if (row.state == CASENET_INBOX_QUEUED) {
        /* A forwarded receipt is settled once its member has seen it
         * (PROTOCOL.md section 8); the RECEIPT event already audits it. */
        if ((rc = store_inbox_set_state(s, row.seq, CASENET_INBOX_FETCHED, c->now_ms)) !=
            CASENET_OK) {
            rc = req_store_fail(c, rc, "update the inbox");
            goto cleanup;
        }
        row.state = CASENET_INBOX_FETCHED;
    }
    Casenet__V1__FetchReply f = CASENET__V1__FETCH_REPLY__INIT;
    Casenet__V1__InboxEntry e;
    inbox_entry_from_row(&e, &row);
    pb_set_bytes(&f.envelope, m.envelope.data, m.envelope.len);
    f.entry = &e;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_FETCH;
    c->resp.fetch = &f;
    rc = req_reply(c);
cleanup:
    store_inbox_row_clear(&row);
    store_message_clear(&m);
    return rc;
}

/* ------------------------------------------------------------ SendReceipt */

static int target_state(int status)
{
    switch (status) {
    case CASENET_RECEIPT_DELIVERED:
        return CASENET_INBOX_DELIVERED;
    case CASENET_RECEIPT_ACCEPTED:
        return CASENET_INBOX_ACCEPTED;
    case CASENET_RECEIPT_DECLINED:
        return CASENET_INBOX_DECLINED;
    case CASENET_RECEIPT_COMPLETED:
        return CASENET_INBOX_COMPLETED;
    default:
        return -1;
    }
}

/* The inbox state machine: queued -> fetched -> delivered -> accepted |
 * declined, accepted -> completed. A receipt may skip "fetched" (delivered
 * from queued) and "delivered" (accepted/declined from fetched). */
static bool transition_ok(int from, int to)
{
    switch (to) {
    case CASENET_INBOX_DELIVERED:
        return from == CASENET_INBOX_QUEUED || from == CASENET_INBOX_FETCHED;
    case CASENET_INBOX_ACCEPTED:
    case CASENET_INBOX_DECLINED:
        return from == CASENET_INBOX_DELIVERED || from == CASENET_INBOX_FETCHED;
    case CASENET_INBOX_COMPLETED:
        return from == CASENET_INBOX_ACCEPTED;
    default:
        return false;
    }
}

static int receipt_reply(struct req *c, uint64_t index, int state)
{
    Casenet__V1__ReceiptReply r = CASENET__V1__RECEIPT_REPLY__INIT;
    r.audit_index = index;
    r.state = (Casenet__V1__InboxState)state;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_RECEIPT;
    c->resp.receipt = &r;
    return req_reply(c);
}

/* Records receipt r (bytes, hashed rhash) of message m, moves the
 * recipient's row to state `to` and forwards the receipt to the sender's
 * inbox; the forwarded row's own id is derived from the receipt bytes so
 * that each distinct receipt is one row. */
static int receipt_record(struct req *c, const casenet_receipt *rp, const struct store_message *mp,
                          const struct store_inbox_row *row,
                          const uint8_t rhash[CASENET_HASH_BYTES], const uint8_t *bytes, size_t len,
                          int to, uint64_t index)
{
    struct store *s = c->b->store;
    int rc;
    struct store_receipt sr = {0};
    memcpy(sr.receipt_hash, rhash, CASENET_HASH_BYTES);
    memcpy(sr.message_id, rp->message_id, sizeof sr.message_id);
    snprintf(sr.recipient, sizeof sr.recipient, "%s", c->member);
    sr.status = (int)rp->status;
    sr.received_at_ms = c->now_ms;
    sr.audit_index = index;
    sr.signed_receipt = bytes;
    sr.signed_len = len;
    if ((rc = store_receipt_insert(s, &sr)) != CASENET_OK ||
        (rc = store_inbox_set_state(s, row->seq, to, c->now_ms)) != CASENET_OK)
        return req_store_fail(c, rc, "record the receipt");
    struct store_inbox_row fwd;
    inbox_row_for(&fwd, mp->sender, mp, c->now_ms);
    memcpy(fwd.message_id, rhash, sizeof fwd.message_id);
    snprintf(fwd.sender, sizeof fwd.sender, "%s", c->member);
    fwd.kind = CASENET_KIND_RECEIPT;
    fwd.created_at_ms = rp->signed_at_ms;
    fwd.size = (uint32_t)len;
    fwd.has_in_reply_to = true;
    memcpy(fwd.in_reply_to, mp->message_id, sizeof fwd.in_reply_to);
    fwd.receipt_status = (int)rp->status;
    fwd.receipt.data = (uint8_t *)bytes; /* borrowed */
    fwd.receipt.len = len;
    return handlers_inbox_add(c, &fwd);
}

int handlers_receipt(struct req *c, const Casenet__V1__Request *q)
{
    const Casenet__V1__SendReceipt *req = q->receipt;
    struct store *s = c->b->store;
    const uint8_t *bytes = req->signed_receipt.data;
    size_t len = req->signed_receipt.len;
    casenet_receipt r;
    struct store_inbox_row row = {0};
    struct store_message m = {0};
    uint8_t rhash[CASENET_HASH_BYTES];
    int rc = req_limits(c, LIMITS_RECEIPT);
    if (rc != CASENET_OK)
        return rc;
    rc = casenet_receipt_verify(c->b->dir, bytes ? bytes : (const uint8_t *)"", len, &r);
    if (rc == CASENET_EBADSIG)
        return req_fail(c, rc, "the receipt's signature does not verify with the signer's key");
    if (rc == CASENET_ENOMEM)
        return req_fail(c, rc, "out of memory; retry later");
    if (rc != CASENET_OK)
        return req_fail(c, rc == CASENET_EUNAUTH || rc == CASENET_ENOTFOUND ? rc : CASENET_EBADREQ,
                        "the receipt is malformed or its signer unknown (%s); a declined receipt "
                        "needs a reason (not-competent, duplicate, insufficient-information, "
                        "redirected), a completed one an outcome code, no other status either",
                        casenet_strerror(rc));
    if (strcmp(r.recipient, c->member) != 0)
        return req_fail(c, CASENET_EFORBIDDEN,
                        "the receipt is signed by %s but this connection is %s; send only your own "
                        "receipts",
                        r.recipient, c->member);
    int to = target_state((int)r.status);
    if (to < 0)
        return req_fail(c, CASENET_EBADREQ, "unknown receipt status %d", (int)r.status);
    rc = store_inbox_get(s, c->member, r.message_id, &row);
    if (rc == CASENET_OK && row.kind == CASENET_KIND_RECEIPT)
        rc = CASENET_ENOTFOUND;
    if (rc == CASENET_ENOTFOUND) {
        rc = req_fail(c, rc, "no message %s in your inbox",
                      log_hex(r.message_id, CASENET_MESSAGE_ID_BYTES));
        goto cleanup;
    }
    if (rc != CASENET_OK) {
        rc = req_store_fail(c, rc, "read the inbox");
        goto cleanup;
    }
    if ((rc = store_message_get(s, r.message_id, false, &m)) != CASENET_OK) {
        rc = rc == CASENET_ENOTFOUND ? req_fail(c, rc, "no such message")
                                     : req_store_fail(c, rc, "read the message");
        goto cleanup;
    }
    if (crypto_verify_32(m.envelope_hash, r.envelope_hash) != 0) {
        rc = req_fail(c, CASENET_ECONFLICT,
                      "the receipt's envelope hash differs from the envelope the broker holds; "
                      "fetch the message again and sign over its hash");
        goto cleanup;
    }
    if (strcmp(r.sender, m.sender) != 0) {
        rc = req_fail(c, CASENET_EBADREQ, "the receipt names sender %s but the message is from %s",
                      r.sender, m.sender);
        goto cleanup;
    }
    cn_sha256(bytes, len, rhash);
    uint64_t index = 0;
    rc = store_receipt_find(s, rhash, &index);
    if (rc == CASENET_OK) { /* the same receipt again: idempotent */
        rc = receipt_reply(c, index, row.state);
        goto cleanup;
    }
    if (rc != CASENET_ENOTFOUND) {
        rc = req_store_fail(c, rc, "look the receipt up");
        goto cleanup;
    }
    if (!transition_ok(row.state, to)) {
        rc = req_fail(c, CASENET_ECONFLICT,
                      "cannot go from %s to %s; the state machine is queued, "
                      "fetched, delivered, accepted or declined, completed (after accepted)",
                      casenet_inbox_state_name(row.state), casenet_inbox_state_name(to));
        goto cleanup;
    }
    if ((rc = req_disk_check(c, LIMITS_RECEIPT)) != CASENET_OK)
        goto cleanup;
    if ((rc = audit_receipt(s, c->now_ms, &r, &m, &index)) != CASENET_OK) {
        rc = req_store_fail(c, rc, "append to the audit log");
        goto cleanup;
    }
    if ((rc = receipt_record(c, &r, &m, &row, rhash, bytes, len, to, index)) != CASENET_OK)
        goto cleanup;
    log_event(LOG_INFO, "receipt", "member", c->member, "msg",
              log_hex(m.message_id, sizeof m.message_id), "status",
              casenet_receipt_status_name((int)r.status), "audit_index", log_u64(index), NULL);
    rc = receipt_reply(c, index, to);
cleanup:
    store_inbox_row_clear(&row);
    store_message_clear(&m);
    return rc;
}
