/*
 * store_pg.c - the PostgreSQL backend of the broker store (see store.h), for
 * brokers that stand on an existing PostgreSQL cluster (issue 17). The spec
 * is a libpq connection URI, "postgresql://user@host:port/db?...", given
 * whole to libpq, less one parameter of ours: synchronous_commit=on (the
 * default), remote_write or remote_apply, set on the session so that a
 * commit returns only once the server (and, with remote_apply, a synchronous
 * standby) has the batch. One connection; the schema is migrated at open
 * (store_pg_schema.c); every statement is prepared once per connection and
 * run with binary results. The batch is one transaction, each request a
 * savepoint. Unique keys are written with ON CONFLICT DO NOTHING and a row
 * count of 0 answers CASENET_ECONFLICT: a refused row raises no error, so
 * the transaction and the batch go on (a raised constraint error, SQLSTATE
 * class 23, is mapped to CASENET_ECONFLICT too). A lost connection is
 * CASENET_EUNAVAIL (logged); the next operation outside a transaction
 * reconnects and prepares again. This file holds the connection, the
 * transaction, the helpers, messages, receipts and directories.
 */
#include "store.h"

#include "log.h"
#include "store_pg.h"
#include "store_pg_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pg_store *P(struct store *s)
{
    return (struct pg_store *)s;
}

static int pg_open(const char *spec, struct store **out)
{
    return pq_open(spec, &store_pg_ops, out);
}

/* ------------------------------------------------------------ messages */

static int pg_message_insert(struct store *b, const struct store_message *m)
{
    struct pq_args a = {0};
    pq_blob(&a, m->message_id, sizeof m->message_id);
    pq_text(&a, m->sender);
    pq_i64(&a, m->kind);
    pq_i64(&a, m->urgency);
    pq_i64(&a, m->msg_status);
    pq_i64(&a, m->created_at_ms);
    pq_i64(&a, m->expires_at_ms);
    pq_i64(&a, m->received_at_ms);
    pq_blob(&a, m->has_in_reply_to ? m->in_reply_to : NULL, sizeof m->in_reply_to);
    pq_blob(&a, m->has_case_ref ? m->case_ref : NULL, sizeof m->case_ref);
    pq_blob(&a, m->envelope_hash, sizeof m->envelope_hash);
    pq_i64(&a, m->size);
    pq_u64(&a, m->audit_index);
    pq_blob(&a, m->envelope.data, m->envelope.len);
    pq_blob(&a, m->receipt.data, m->receipt.len);
    struct pg_store *s = P(b);
    int rc;
    if (s->pipe && s->absent && memcmp(s->absent_id, m->message_id, sizeof m->message_id) == 0) {
        /* message_get found no such id in this batch: no conflict, no wait */
        int64_t id = 0;
        s->absent = false;
        if ((rc = pq_reserve(b, false, &id)) != CASENET_OK)
            return rc;
        pq_i64(&a, id);
        if ((rc = pq_defer(b, PQ_MSG_INSERT_ID, NULL, &a, PQ_EXPECT_ONE, "message_insert")) ==
            CASENET_OK)
            s->last_id = id;
    } else {
        PGresult *r = NULL;
        if ((rc = pq_run(b, PQ_MSG_INSERT, &a, &r, "message_insert")) != CASENET_OK)
            return rc;
        rc = PQntuples(r) == 1 ? CASENET_OK : CASENET_ECONFLICT;
        if (rc == CASENET_OK)
            s->last_id = pq_col_i64(r, 0, 0);
        PQclear(r);
    }
    if (rc == CASENET_OK && s->pipe) {
        s->fresh_msg = s->last_id; /* no inbox row links to it yet */
        memcpy(s->fresh_msg_id, m->message_id, sizeof m->message_id);
    }
    return rc;
}

static int64_t pg_message_last_rowid(struct store *b)
{
    return P(b)->last_id;
}

/* One statement per row. */
static int receipt_sigs_each(struct store *b, const struct store_receipt_sig *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct pq_args a = {0};
        pq_i64(&a, rows[i].rowid);
        pq_blob(&a, rows[i].sig, CASENET_SIGNATURE_BYTES);
        uint64_t touched = 0;
        int rc = pq_write(b, PQ_MSG_SIG, &a, &touched, "message_receipt_sigs");
        if (rc == CASENET_OK && touched != 1) {
            log_event(LOG_ERROR, "store_corrupt", "table", "messages", "row",
                      log_u64((uint64_t)rows[i].rowid), "msg", "no receipt to sign", NULL);
            rc = CASENET_EUNAVAIL;
        }
        if (rc != CASENET_OK)
            return CASENET_EUNAVAIL;
    }
    return CASENET_OK;
}

/* A batch's signatures in one statement (one round trip, not one each):
 * the ids as a bigint[] literal, the signatures end to end. */
static int pg_message_receipt_sigs(struct store *b, const struct store_receipt_sig *rows, size_t n)
{
    if (n <= 1 || n > INT32_MAX / CASENET_SIGNATURE_BYTES)
        return receipt_sigs_each(b, rows, n);
    char *ids = malloc(n * 22 + 3);
    uint8_t *sigs = malloc(n * CASENET_SIGNATURE_BYTES);
    int rc = ids && sigs ? CASENET_OK : CASENET_ENOMEM;
    if (rc == CASENET_OK) {
        char *p = ids;
        *p++ = '{';
        for (size_t i = 0; i < n; i++) {
            p += sprintf(p, "%s%lld", i ? "," : "", (long long)rows[i].rowid);
            memcpy(sigs + i * CASENET_SIGNATURE_BYTES, rows[i].sig, CASENET_SIGNATURE_BYTES);
        }
        strcpy(p, "}");
        struct pq_args a = {0};
        pq_text(&a, ids);
        pq_blob(&a, sigs, n * CASENET_SIGNATURE_BYTES);
        uint64_t touched = 0;
        rc = pq_write(b, PQ_MSG_SIGS, &a, &touched, "message_receipt_sigs");
        if (rc == CASENET_OK && touched != n) {
            log_event(LOG_ERROR, "store_corrupt", "table", "messages", "rows", log_u64(n), "signed",
                      log_u64(touched), "msg", "a receipt to sign is missing", NULL);
            rc = CASENET_EUNAVAIL;
        }
    }
    free(ids);
    free(sigs);
    return rc == CASENET_OK ? CASENET_OK : CASENET_EUNAVAIL;
}

/* Reads a PQ_MESSAGE_COLS row into *m (zeroed first; envelope left empty). */
static int read_message_row(const PGresult *r, int row, struct store_message *m)
{
    memset(m, 0, sizeof *m);
    if (!pq_col_fixed(r, row, 0, m->message_id, sizeof m->message_id) ||
        !pq_col_text(r, row, 1, m->sender, sizeof m->sender) ||
        !pq_col_fixed(r, row, 10, m->envelope_hash, sizeof m->envelope_hash)) {
        log_event(LOG_ERROR, "store_corrupt", "table", "messages", "row",
                  log_u64((uint64_t)pq_col_i64(r, row, 14)), NULL);
        return CASENET_EUNAVAIL;
    }
    m->kind = (int)pq_col_i64(r, row, 2);
    m->urgency = (int)pq_col_i64(r, row, 3);
    m->msg_status = (int)pq_col_i64(r, row, 4);
    m->created_at_ms = pq_col_i64(r, row, 5);
    m->expires_at_ms = pq_col_i64(r, row, 6);
    m->received_at_ms = pq_col_i64(r, row, 7);
    m->has_in_reply_to = pq_col_fixed(r, row, 8, m->in_reply_to, sizeof m->in_reply_to);
    m->has_case_ref = pq_col_fixed(r, row, 9, m->case_ref, sizeof m->case_ref);
    m->size = (uint32_t)pq_col_i64(r, row, 11);
    m->audit_index = (uint64_t)pq_col_i64(r, row, 12);
    m->row = (uint64_t)pq_col_i64(r, row, 14);
    return pq_col_buf(r, row, 13, &m->receipt);
}

static int pg_message_get(struct store *b, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                          bool with_envelope, struct store_message *out)
{
    struct pq_args a = {0};
    pq_blob(&a, id, CASENET_MESSAGE_ID_BYTES);
    pq_i64(&a, with_envelope);
    PGresult *r = NULL;
    int rc = pq_run(b, PQ_MSG_GET, &a, &r, "message_get");
    if (rc != CASENET_OK)
        return rc;
    struct store_message m = {0};
    if (PQntuples(r) == 0) {
        struct pg_store *s = P(b);
        s->absent = s->pipe; /* for message_insert, until the batch's end */
        memcpy(s->absent_id, id, CASENET_MESSAGE_ID_BYTES);
        rc = CASENET_ENOTFOUND;
        goto cleanup;
    }
    if ((rc = read_message_row(r, 0, &m)) != CASENET_OK ||
        (rc = pq_col_buf(r, 0, PQ_MESSAGE_NCOLS, &m.envelope)) != CASENET_OK)
        goto cleanup;
    *out = m;
    memset(&m, 0, sizeof m);
cleanup:
    store_message_clear(&m);
    PQclear(r);
    return rc;
}

static int pg_sent_list(struct store *b, const char *sender, uint64_t cursor, uint32_t limit,
                        struct store_message **rows, size_t *n, bool *more)
{
    struct pq_args a = {0};
    pq_text(&a, sender);
    pq_u64(&a, cursor);
    pq_i64(&a, (int64_t)limit + 1);
    PGresult *r = NULL;
    int rc = pq_run(b, PQ_SENT, &a, &r, "sent_list");
    if (rc != CASENET_OK)
        return rc;
    int got = PQntuples(r);
    size_t count = got > (int)limit ? limit : (size_t)got;
    struct store_message *out = count ? calloc(count, sizeof *out) : NULL;
    size_t done = 0;
    rc = count && !out ? CASENET_ENOMEM : CASENET_OK;
    for (; rc == CASENET_OK && done < count; done++)
        rc = read_message_row(r, (int)done, &out[done]);
    if (rc == CASENET_OK) {
        *rows = out;
        *n = count;
        *more = (size_t)got > count;
        out = NULL;
    }
    store_messages_free(out, done);
    PQclear(r);
    return rc;
}

/* ------------------------------------------------------------ receipts */

static int pg_receipt_insert(struct store *b, const struct store_receipt *rc_)
{
    struct pq_args a = {0};
    pq_blob(&a, rc_->receipt_hash, sizeof rc_->receipt_hash);
    pq_blob(&a, rc_->message_id, sizeof rc_->message_id);
    pq_text(&a, rc_->recipient);
    pq_i64(&a, rc_->status);
    pq_i64(&a, rc_->received_at_ms);
    pq_u64(&a, rc_->audit_index);
    pq_blob(&a, rc_->signed_receipt, rc_->signed_len);
    uint64_t touched = 0;
    int rc = pq_write(b, PQ_RECEIPT_INSERT, &a, &touched, "receipt_insert");
    return rc == CASENET_OK && touched == 0 ? CASENET_ECONFLICT : rc;
}

static int pg_receipt_find(struct store *b, const uint8_t hash[CASENET_HASH_BYTES],
                           uint64_t *audit_index)
{
    struct pq_args a = {0};
    pq_blob(&a, hash, CASENET_HASH_BYTES);
    PGresult *r = NULL;
    int rc = pq_run(b, PQ_RECEIPT_FIND, &a, &r, "receipt_find");
    if (rc != CASENET_OK)
        return rc;
    if (PQntuples(r) == 0)
        rc = CASENET_ENOTFOUND;
    else
        *audit_index = (uint64_t)pq_col_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

static int pg_receipt_list(struct store *b, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                           const char *recipient, struct store_receipt_rec **rows, size_t *n)
{
    struct pq_args a = {0};
    pq_blob(&a, id, CASENET_MESSAGE_ID_BYTES);
    pq_text(&a, recipient);
    PGresult *r = NULL;
    int rc = pq_run(b, PQ_RECEIPTS, &a, &r, "receipt_list");
    if (rc != CASENET_OK)
        return rc;
    size_t count = (size_t)PQntuples(r), done = 0;
    struct store_receipt_rec *out = count ? calloc(count, sizeof *out) : NULL;
    rc = count && !out ? CASENET_ENOMEM : CASENET_OK;
    for (; rc == CASENET_OK && done < count; done++) {
        out[done].status = (int)pq_col_i64(r, (int)done, 0);
        out[done].received_at_ms = pq_col_i64(r, (int)done, 1);
        rc = pq_col_buf(r, (int)done, 2, &out[done].signed_receipt);
    }
    if (rc == CASENET_OK) {
        *rows = out;
        *n = count;
        out = NULL;
    }
    store_receipt_recs_free(out, done);
    PQclear(r);
    return rc;
}

/* ------------------------------------------------------------ directories */

static int pg_directory_save(struct store *b, uint64_t version, const uint8_t *bytes, size_t len,
                             int64_t now_ms)
{
    if (version > INT64_MAX)
        return CASENET_EBADREQ;
    struct pq_args a = {0};
    pq_u64(&a, version);
    pq_blob(&a, bytes, len);
    pq_i64(&a, now_ms);
    uint64_t touched = 0;
    int rc = pq_write(b, PQ_DIR_SAVE, &a, &touched, "directory_save");
    return rc == CASENET_OK && touched == 0 ? CASENET_ECONFLICT : rc;
}

static int pg_directory_latest(struct store *b, casenet_buf *out, uint64_t *version)
{
    PGresult *r = NULL;
    int rc = pq_run(b, PQ_DIR_LATEST, NULL, &r, "directory_latest");
    if (rc != CASENET_OK)
        return rc;
    if (PQntuples(r) == 0) {
        rc = CASENET_ENOTFOUND;
    } else {
        casenet_buf buf;
        if ((rc = pq_col_buf(r, 0, 1, &buf)) == CASENET_OK) {
            *version = (uint64_t)pq_col_i64(r, 0, 0);
            *out = buf;
        }
    }
    PQclear(r);
    return rc;
}

static const struct store_admin_ops pg_admin = {
    .name = "postgresql",
    .open = pg_open,
    .close = pq_close,
    .begin = pq_begin,
    .commit = pq_commit,
    .rollback = pq_rollback,
    .savepoint = pq_savepoint,
    .release = pq_release,
    .rollback_to = pq_rollback_to,
    .in_transaction = pq_in_transaction,
    .changes = pq_changes,
    .directory_save = pg_directory_save,
    .directory_latest = pg_directory_latest,
    .checkpoint = pq_checkpoint,
    .lease = pq_lease,
};

static const struct store_message_ops pg_message = {
    .message_insert = pg_message_insert,
    .message_last_rowid = pg_message_last_rowid,
    .message_receipt_sigs = pg_message_receipt_sigs,
    .message_get = pg_message_get,
    .receipt_insert = pg_receipt_insert,
    .receipt_find = pg_receipt_find,
    .receipt_list = pg_receipt_list,
    .sent_list = pg_sent_list,
    .sent_rows = pq_sent_rows,
    .member_bytes = pq_member_bytes,
    .member_bytes_add = pq_member_bytes_add,
};

const struct store_ops store_pg_ops = {
    .name = "postgresql",
    .admin = &pg_admin,
    .message = &pg_message,
    .inbox = &pq_inbox_ops,
    .deadline = &pq_deadline_ops,
    .audit = &pq_audit_ops,
};
