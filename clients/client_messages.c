/* client_messages.c - libcasenet's requests on messages, the inbox and the
 * directory: Submit, ListInbox, Fetch, SendReceipt, GetDirectory,
 * PublishDirectory (the connection itself: client.c). */
#include "client_impl.h"

#include "util.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Reads the message id from a serialised Envelope (its Header). */
static int envelope_message_id(const uint8_t *env, size_t len, uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    int rc = CASENET_EINVAL;
    Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, len, env);
    if (!e)
        return CASENET_EINVAL;
    Casenet__V1__Header *h = casenet__v1__header__unpack(NULL, e->header.len, e->header.data);
    if (!h)
        goto cleanup;
    if (h->message_id.len != CASENET_MESSAGE_ID_BYTES)
        goto cleanup;
    memcpy(id, h->message_id.data, CASENET_MESSAGE_ID_BYTES);
    rc = CASENET_OK;
cleanup:
    casenet__v1__header__free_unpacked(h, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    return rc;
}

int client_entry_from_pb(const Casenet__V1__InboxEntry *pb, casenet_inbox_entry *out)
{
    if (!pb)
        return CASENET_EBADREQ;
    if (!client_id_bytes_ok(&pb->message_id, CASENET_MESSAGE_ID_BYTES, false) ||
        !client_id_bytes_ok(&pb->in_reply_to, CASENET_MESSAGE_ID_BYTES, true) ||
        !client_id_bytes_ok(&pb->case_ref, CASENET_CASE_REF_BYTES, true))
        return CASENET_EBADREQ;
    const char *sender = pb->sender ? pb->sender : "";
    if (strnlen(sender, CASENET_MEMBER_ID_MAX + 1) > CASENET_MEMBER_ID_MAX ||
        (sender[0] && !casenet_member_id_valid(sender)))
        return CASENET_EBADREQ;
    if (!client_kind_known((int)pb->kind) || (int)pb->urgency < 0 ||
        (int)pb->urgency > CASENET_URGENCY_INFO || (int)pb->message_status < 0 ||
        (int)pb->message_status > CASENET_MSG_TEST || (int)pb->state < CASENET_INBOX_QUEUED ||
        (int)pb->state > CASENET_INBOX_DEAD || (int)pb->receipt_status < 0 ||
        (int)pb->receipt_status > CASENET_RECEIPT_COMPLETED)
        return CASENET_EBADREQ;

    casenet_inbox_entry e;
    memset(&e, 0, sizeof e);
    if (client_copy_bin(&pb->receipt, &e.receipt) != CASENET_OK)
        return CASENET_ENOMEM;
    e.seq = pb->seq;
    memcpy(e.message_id, pb->message_id.data, CASENET_MESSAGE_ID_BYTES);
    memcpy(e.sender, sender, strlen(sender) + 1);
    e.kind = (casenet_kind)pb->kind;
    e.urgency = (casenet_urgency)pb->urgency;
    e.status = (casenet_msg_status)pb->message_status;
    e.state = (casenet_inbox_state)pb->state;
    e.received_at_ms = pb->received_at_ms;
    e.created_at_ms = pb->created_at_ms;
    e.size = pb->size;
    if (pb->in_reply_to.len) {
        e.has_in_reply_to = true;
        memcpy(e.in_reply_to, pb->in_reply_to.data, CASENET_MESSAGE_ID_BYTES);
    }
    if (pb->case_ref.len) {
        e.has_case_ref = true;
        memcpy(e.case_ref, pb->case_ref.data, CASENET_CASE_REF_BYTES);
    }
    e.receipt_status = (casenet_receipt_status)pb->receipt_status;
    *out = e;
    return CASENET_OK;
}

void casenet_inbox_entry_clear(casenet_inbox_entry *e)
{
    if (!e)
        return;
    casenet_buf_free(&e->receipt);
    memset(e, 0, sizeof *e);
}

void casenet_inbox_entries_free(casenet_inbox_entry *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_inbox_entry_clear(&e[i]);
    free(e);
}

/* ------------------------------------------------------------------ requests */

int casenet_client_submit(casenet_client *c, const uint8_t *envelope, size_t len,
                          casenet_submit_receipt *receipt, bool *duplicate)
{
    if (!c || !envelope || len == 0 || !receipt)
        return CASENET_EINVAL;
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    uint8_t hash[CASENET_HASH_BYTES];
    int rc = envelope_message_id(envelope, len, id);
    if (rc != CASENET_OK)
        return rc;
    if (c->max_envelope_bytes && len > c->max_envelope_bytes) {
        client_begin(c);
        client_set_error(c, "envelope larger than the broker accepts");
        return CASENET_ETOOLARGE;
    }
    cn_sha256(envelope, len, hash);

    Casenet__V1__Submit sub = CASENET__V1__SUBMIT__INIT;
    sub.envelope.data = (uint8_t *)envelope;
    sub.envelope.len = len;
    Casenet__V1__Response *resp = NULL;
    rc = client_request(c, CASENET__V1__REQUEST__BODY_SUBMIT, &sub,
                        CASENET__V1__RESPONSE__BODY_SUBMIT, true, &resp);
    if (rc != CASENET_OK)
        return rc;

    casenet_submit_receipt r;
    rc = casenet_submit_receipt_verify(c->dir, resp->submit->receipt.data,
                                       resp->submit->receipt.len, &r);
    if (rc != CASENET_OK) {
        client_set_error(c, "the broker's receipt does not verify");
        goto cleanup;
    }
    if (sodium_memcmp(r.message_id, id, sizeof id) != 0 ||
        sodium_memcmp(r.envelope_hash, hash, sizeof hash) != 0) {
        client_set_error(c, "the broker's receipt names another message");
        rc = CASENET_EBADSIG;
        goto cleanup;
    }
    *receipt = r;
    if (duplicate)
        *duplicate = resp->submit->duplicate;
    rc = CASENET_OK;
cleanup:
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_list(casenet_client *c, casenet_inbox_state state, uint64_t cursor,
                        uint32_t limit, casenet_inbox_entry **entries, size_t *n,
                        uint64_t *next_cursor, bool *more)
{
    if (!c || !entries || !n || (int)state < CASENET_INBOX_ANY || (int)state > CASENET_INBOX_DEAD)
        return CASENET_EINVAL;
    limit = client_page_limit(limit);
    Casenet__V1__ListInbox li = CASENET__V1__LIST_INBOX__INIT;
    li.state = (Casenet__V1__InboxState)state;
    li.cursor = cursor;
    li.limit = limit;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_LIST_INBOX, &li,
                            CASENET__V1__RESPONSE__BODY_INBOX, true, &resp);
    if (rc != CASENET_OK)
        return rc;

    const Casenet__V1__InboxPage *page = resp->inbox;
    casenet_inbox_entry *arr = NULL;
    size_t i = 0;
    rc = CASENET_EBADREQ;
    if (!client_page_ok(c, "inbox", page->n_entries, limit, page->more, page->next_cursor, cursor))
        goto cleanup;
    arr = calloc(page->n_entries ? page->n_entries : 1, sizeof *arr);
    if (!arr) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (; i < page->n_entries; i++) {
        rc = client_entry_from_pb(page->entries[i], &arr[i]);
        if (rc != CASENET_OK) {
            client_set_error(c, "malformed inbox entry from the broker");
            goto cleanup;
        }
    }
    *entries = arr;
    *n = page->n_entries;
    if (next_cursor)
        *next_cursor = page->next_cursor;
    if (more)
        *more = page->more;
    arr = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_inbox_entries_free(arr, i);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_fetch(casenet_client *c, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                         casenet_buf *envelope)
{
    if (!envelope)
        return CASENET_EINVAL;
    casenet_inbox_entry e;
    casenet_buf env = {0};
    int rc = casenet_client_fetch_row(c, id, &env, &e);
    if (rc != CASENET_OK)
        return rc;
    if (e.kind == CASENET_KIND_RECEIPT) {
        client_set_error(c, "this inbox row is a forwarded receipt, not a message");
        rc = CASENET_EBADREQ;
    } else {
        *envelope = env;
        env = (casenet_buf){0};
    }
    casenet_inbox_entry_clear(&e);
    casenet_buf_free(&env);
    return rc;
}

int casenet_client_fetch_row(casenet_client *c, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                             casenet_buf *envelope, casenet_inbox_entry *entry)
{
    if (!c || !id || !envelope || !entry)
        return CASENET_EINVAL;
    Casenet__V1__Fetch f = CASENET__V1__FETCH__INIT;
    f.message_id.data = (uint8_t *)id;
    f.message_id.len = CASENET_MESSAGE_ID_BYTES;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_FETCH, &f,
                            CASENET__V1__RESPONSE__BODY_FETCH, true, &resp);
    if (rc != CASENET_OK)
        return rc;

    const ProtobufCBinaryData *env = &resp->fetch->envelope;
    casenet_inbox_entry e;
    uint8_t got_id[CASENET_MESSAGE_ID_BYTES];
    rc = client_entry_from_pb(resp->fetch->entry, &e);
    if (rc == CASENET_EBADREQ || (rc == CASENET_OK && memcmp(e.message_id, id, sizeof got_id))) {
        client_set_error(c, "the broker returned another or a malformed inbox row");
        if (rc == CASENET_OK)
            casenet_inbox_entry_clear(&e);
        rc = CASENET_EBADREQ;
    }
    if (rc != CASENET_OK)
        goto cleanup;
    bool receipt_row = e.kind == CASENET_KIND_RECEIPT;
    if (receipt_row
            ? env->len != 0 || e.receipt.len == 0
            : env->len == 0 || envelope_message_id(env->data, env->len, got_id) != CASENET_OK ||
                  memcmp(got_id, id, sizeof got_id) != 0) {
        client_set_error(c, "the broker returned another or a malformed envelope");
        casenet_inbox_entry_clear(&e);
        rc = CASENET_EBADREQ;
        goto cleanup;
    }
    if ((rc = client_copy_bin(env, envelope)) != CASENET_OK) {
        casenet_inbox_entry_clear(&e);
        goto cleanup;
    }
    *entry = e;
cleanup:
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_send_receipt(casenet_client *c, const uint8_t *receipt, size_t len,
                                uint64_t *audit_index)
{
    if (!c || !receipt || len == 0)
        return CASENET_EINVAL;
    Casenet__V1__SendReceipt sr = CASENET__V1__SEND_RECEIPT__INIT;
    sr.signed_receipt.data = (uint8_t *)receipt;
    sr.signed_receipt.len = len;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_RECEIPT, &sr,
                            CASENET__V1__RESPONSE__BODY_RECEIPT, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    if (audit_index)
        *audit_index = resp->receipt->audit_index;
    casenet__v1__response__free_unpacked(resp, NULL);
    return CASENET_OK;
}

int casenet_client_get_directory(casenet_client *c, casenet_buf *out)
{
    if (!c || !out)
        return CASENET_EINVAL;
    Casenet__V1__GetDirectory gd = CASENET__V1__GET_DIRECTORY__INIT;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_GET_DIRECTORY, &gd,
                            CASENET__V1__RESPONSE__BODY_DIRECTORY, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    const ProtobufCBinaryData *d = &resp->directory->signed_directory;
    rc = CASENET_EBADREQ;
    if (d->len == 0) {
        client_set_error(c, "the broker returned an empty directory");
        goto cleanup;
    }
    rc = client_copy_bin(d, out);
cleanup:
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}

int casenet_client_publish_directory(casenet_client *c, const uint8_t *signed_dir, size_t len,
                                     uint64_t *version)
{
    if (!c || !signed_dir || len == 0)
        return CASENET_EINVAL;
    Casenet__V1__PublishDirectory pd = CASENET__V1__PUBLISH_DIRECTORY__INIT;
    pd.signed_directory.data = (uint8_t *)signed_dir;
    pd.signed_directory.len = len;
    Casenet__V1__Response *resp = NULL;
    /* Not idempotent: a second copy would be refused as an old version. */
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_PUBLISH_DIRECTORY, &pd,
                            CASENET__V1__RESPONSE__BODY_PUBLISH, false, &resp);
    if (rc != CASENET_OK)
        return rc;
    if (version)
        *version = resp->publish->version;
    casenet__v1__response__free_unpacked(resp, NULL);
    return CASENET_OK;
}
