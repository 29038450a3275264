/* client_lifecycle.c - libcasenet's requests on a message's life after
 * submission: GetStatus, ListSent, ListOverdue, and the checks on the
 * broker's untrusted records (the connection itself: client.c). */
#include "client_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ lifecycle */

static int copy_member(char out[CASENET_MEMBER_ID_MAX + 1], const char *in, bool may_be_empty)
{
    const char *s = in ? in : "";
    if (!s[0])
        return may_be_empty ? (out[0] = '\0', CASENET_OK) : CASENET_EBADREQ;
    if (strnlen(s, CASENET_MEMBER_ID_MAX + 1) > CASENET_MEMBER_ID_MAX ||
        !casenet_member_id_valid(s))
        return CASENET_EBADREQ;
    memcpy(out, s, strlen(s) + 1);
    return CASENET_OK;
}

static bool copy_id(uint8_t *out, size_t want, const ProtobufCBinaryData *b, bool *has)
{
    if (!client_id_bytes_ok(b, want, has != NULL))
        return false;
    if (has)
        *has = b->len != 0;
    if (b->len)
        memcpy(out, b->data, want);
    return true;
}

static bool valid_state(int s)
{
    return s >= CASENET_INBOX_QUEUED && s <= CASENET_INBOX_DEAD;
}

static bool valid_message_enums(int kind, int urgency, int status)
{
    return client_kind_known(kind) && kind != CASENET_KIND_RECEIPT && urgency >= 0 &&
           urgency <= CASENET_URGENCY_INFO && status >= 0 && status <= CASENET_MSG_TEST;
}

static void recipient_status_clear(casenet_recipient_status *r)
{
    for (size_t i = 0; r->steps && i < r->n_steps; i++)
        casenet_buf_free(&r->steps[i].receipt);
    free(r->steps);
    free(r->deadlines);
    memset(r, 0, sizeof *r);
}

void casenet_message_status_clear(casenet_message_status *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->recipients && i < s->n_recipients; i++)
        recipient_status_clear(&s->recipients[i]);
    free(s->recipients);
    casenet_buf_free(&s->broker_receipt);
    memset(s, 0, sizeof *s);
}

void casenet_message_statuses_free(casenet_message_status *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_message_status_clear(&s[i]);
    free(s);
}

static int recipient_from_pb(const Casenet__V1__RecipientStatus *pb, casenet_recipient_status *out)
{
    memset(out, 0, sizeof *out);
    if (!pb || copy_member(out->recipient, pb->recipient, false) != CASENET_OK ||
        !valid_state((int)pb->state))
        return CASENET_EBADREQ;
    out->state = (casenet_inbox_state)pb->state;
    int rc = CASENET_ENOMEM;
    out->deadlines = calloc(pb->n_deadlines ? pb->n_deadlines : 1, sizeof *out->deadlines);
    out->steps = calloc(pb->n_steps ? pb->n_steps : 1, sizeof *out->steps);
    if (!out->deadlines || !out->steps)
        goto fail;
    rc = CASENET_EBADREQ;
    for (size_t i = 0; i < pb->n_deadlines; i++) {
        const Casenet__V1__Deadline *d = pb->deadlines[i];
        casenet_deadline *o = &out->deadlines[i];
        if (!d || (int)d->kind < CASENET_DEADLINE_DELIVER ||
            (int)d->kind > CASENET_DEADLINE_EXPIRE || (int)d->state < CASENET_DEADLINE_PENDING ||
            (int)d->state > CASENET_DEADLINE_VOID ||
            !copy_id(o->notice_id, CASENET_MESSAGE_ID_BYTES, &d->notice_id, &o->has_notice))
            goto fail;
        o->kind = (casenet_deadline_kind)d->kind;
        o->state = (casenet_deadline_state)d->state;
        o->due_at_ms = d->due_at_ms;
        o->settled_at_ms = d->settled_at_ms;
        out->n_deadlines++;
    }
    for (size_t i = 0; i < pb->n_steps; i++) {
        const Casenet__V1__Step *st = pb->steps[i];
        casenet_step *o = &out->steps[i];
        if (!st || !valid_state((int)st->state) ||
            copy_member(o->actor, st->actor, true) != CASENET_OK)
            goto fail;
        o->state = (casenet_inbox_state)st->state;
        o->at_ms = st->at_ms;
        out->n_steps++;
        if ((rc = client_copy_bin(&st->receipt, &o->receipt)) != CASENET_OK)
            goto fail;
        rc = CASENET_EBADREQ;
    }
    return CASENET_OK;
fail:
    recipient_status_clear(out);
    return rc;
}

static int record_from_pb(const Casenet__V1__MessageRecord *pb, casenet_message_status *out)
{
    casenet_message_status m;
    memset(&m, 0, sizeof m);
    int rc = CASENET_EBADREQ;
    if (!pb || !copy_id(m.message_id, CASENET_MESSAGE_ID_BYTES, &pb->message_id, NULL) ||
        !copy_id(m.in_reply_to, CASENET_MESSAGE_ID_BYTES, &pb->in_reply_to, &m.has_in_reply_to) ||
        !copy_id(m.case_ref, CASENET_CASE_REF_BYTES, &pb->case_ref, &m.has_case_ref) ||
        !copy_id(m.envelope_hash, CASENET_HASH_BYTES, &pb->envelope_hash, NULL) ||
        copy_member(m.sender, pb->sender, false) != CASENET_OK ||
        !valid_message_enums((int)pb->kind, (int)pb->urgency, (int)pb->message_status))
        return CASENET_EBADREQ;
    m.kind = (casenet_kind)pb->kind;
    m.urgency = (casenet_urgency)pb->urgency;
    m.status = (casenet_msg_status)pb->message_status;
    m.created_at_ms = pb->created_at_ms;
    m.received_at_ms = pb->received_at_ms;
    m.expires_at_ms = pb->expires_at_ms;
    m.cursor = pb->cursor;
    if (pb->n_recipients > CASENET_MAX_RECIPIENTS)
        return CASENET_EBADREQ;
    m.recipients = calloc(pb->n_recipients ? pb->n_recipients : 1, sizeof *m.recipients);
    if (!m.recipients || client_copy_bin(&pb->broker_receipt, &m.broker_receipt) != CASENET_OK) {
        rc = CASENET_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < pb->n_recipients; i++) {
        if ((rc = recipient_from_pb(pb->recipients[i], &m.recipients[i])) != CASENET_OK)
            goto fail;
        m.n_recipients++;
    }
    *out = m;
    return CASENET_OK;
fail:
    casenet_message_status_clear(&m);
    return rc;
}

int casenet_client_status(casenet_client *c, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                          casenet_message_status *out)
{
    if (!c || !id || !out)
        return CASENET_EINVAL;
    Casenet__V1__GetStatus gs = CASENET__V1__GET_STATUS__INIT;
    gs.message_id.data = (uint8_t *)id;
    gs.message_id.len = CASENET_MESSAGE_ID_BYTES;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_GET_STATUS, &gs,
                            CASENET__V1__RESPONSE__BODY_STATUS, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    casenet_message_status m;
    rc = record_from_pb(resp->status->message, &m);
    if (rc == CASENET_OK && memcmp(m.message_id, id, CASENET_MESSAGE_ID_BYTES) != 0) {
        casenet_message_status_clear(&m);
        rc = CASENET_EBADREQ;
    }
    if (rc == CASENET_EBADREQ)
        client_set_error(c, "malformed or mismatched status from the broker");
    if (rc == CASENET_OK)
        *out = m;
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_list_sent(casenet_client *c, bool open_only, casenet_kind kind, uint64_t cursor,
                             uint32_t limit, casenet_message_status **out, size_t *n,
                             uint64_t *next_cursor, bool *more)
{
    if (!c || !out || !n || (kind != 0 && !client_kind_known((int)kind)))
        return CASENET_EINVAL;
    limit = client_page_limit(limit);
    Casenet__V1__ListSent ls = CASENET__V1__LIST_SENT__INIT;
    ls.open_only = open_only;
    ls.kind = (Casenet__V1__Kind)kind;
    ls.cursor = cursor;
    ls.limit = limit;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_LIST_SENT, &ls,
                            CASENET__V1__RESPONSE__BODY_SENT, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__SentPage *page = resp->sent;
    casenet_message_status *arr = NULL;
    size_t i = 0;
    rc = CASENET_EBADREQ;
    if (!client_page_ok(c, "sent", page->n_messages, limit, page->more, page->next_cursor, cursor))
        goto cleanup;
    arr = calloc(page->n_messages ? page->n_messages : 1, sizeof *arr);
    if (!arr) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (; i < page->n_messages; i++) {
        if ((rc = record_from_pb(page->messages[i], &arr[i])) != CASENET_OK) {
            client_set_error(c, "malformed message record from the broker");
            goto cleanup;
        }
    }
    *out = arr;
    *n = page->n_messages;
    if (next_cursor)
        *next_cursor = page->next_cursor;
    if (more)
        *more = page->more;
    arr = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_message_statuses_free(arr, i);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_list_overdue(casenet_client *c, uint64_t cursor, uint32_t limit,
                                casenet_overdue **out, size_t *n, uint64_t *next_cursor, bool *more)
{
    if (!c || !out || !n)
        return CASENET_EINVAL;
    limit = client_page_limit(limit);
    Casenet__V1__ListOverdue lo = CASENET__V1__LIST_OVERDUE__INIT;
    lo.cursor = cursor;
    lo.limit = limit;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_LIST_OVERDUE, &lo,
                            CASENET__V1__RESPONSE__BODY_OVERDUE, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__OverduePage *page = resp->overdue;
    casenet_overdue *arr = NULL;
    rc = CASENET_EBADREQ;
    if (!client_page_ok(c, "overdue", page->n_entries, limit, page->more, page->next_cursor,
                        cursor))
        goto cleanup;
    arr = calloc(page->n_entries ? page->n_entries : 1, sizeof *arr);
    if (!arr) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < page->n_entries; i++) {
        const Casenet__V1__OverdueEntry *e = page->entries[i];
        casenet_overdue *o = &arr[i];
        if (!e || !copy_id(o->message_id, CASENET_MESSAGE_ID_BYTES, &e->message_id, NULL) ||
            !copy_id(o->notice_id, CASENET_MESSAGE_ID_BYTES, &e->notice_id, &o->has_notice) ||
            !copy_id(o->case_ref, CASENET_CASE_REF_BYTES, &e->case_ref, &o->has_case_ref) ||
            copy_member(o->sender, e->sender, false) != CASENET_OK ||
            copy_member(o->recipient, e->recipient, false) != CASENET_OK ||
            !valid_message_enums((int)e->kind, (int)e->urgency, (int)e->message_status) ||
            !valid_state((int)e->state) || (int)e->deadline < CASENET_DEADLINE_DELIVER ||
            (int)e->deadline > CASENET_DEADLINE_EXPIRE)
            goto malformed;
        o->kind = (casenet_kind)e->kind;
        o->urgency = (casenet_urgency)e->urgency;
        o->status = (casenet_msg_status)e->message_status;
        o->state = (casenet_inbox_state)e->state;
        o->deadline = (casenet_deadline_kind)e->deadline;
        o->received_at_ms = e->received_at_ms;
        o->due_at_ms = e->due_at_ms;
        o->escalated_at_ms = e->escalated_at_ms;
    }
    *out = arr;
    *n = page->n_entries;
    if (next_cursor)
        *next_cursor = page->next_cursor;
    if (more)
        *more = page->more;
    arr = NULL;
    rc = CASENET_OK;
    goto cleanup;
malformed:
    client_set_error(c, "malformed overdue page from the broker");
cleanup:
    free(arr);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}
