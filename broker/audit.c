/* audit.c - builds, serialises and appends audit events (see audit.h). */
#include "audit.h"

#include "casenet.pb-c.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maps a casenet_err to the wire ErrorCode recorded in events. */
static Casenet__V1__ErrorCode wire_code(int err)
{
    if ((err >= CASENET_EBADREQ && err <= CASENET_EVERSION) || err == CASENET_EQUOTA)
        return (Casenet__V1__ErrorCode)err;
    if (err == CASENET_ESTALEDIR)
        return CASENET__V1__ERROR_CODE__ERROR_CODE_STALE_DIRECTORY;
    if (err == CASENET_EEXPIRED || err == CASENET_EINVAL)
        return CASENET__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST;
    if (err == CASENET_EROLLBACK)
        return CASENET__V1__ERROR_CODE__ERROR_CODE_CONFLICT;
    return CASENET__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
}

/* Gives ev its index and time, serialises it and appends it. ev's string
 * and byte fields are borrowed. */
static int emit(struct store *s, int64_t now_ms, Casenet__V1__AuditEvent *ev, uint64_t *index)
{
    uint64_t idx = 0;
    int rc = store_audit_next_index(s, &idx);
    if (rc != CASENET_OK)
        return rc;
    ev->index = idx;
    ev->time_ms = now_ms;
    size_t len = casenet__v1__audit_event__get_packed_size(ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return CASENET_ENOMEM;
    casenet__v1__audit_event__pack(ev, buf);
    rc = store_audit_append(s, idx, now_ms, (int)ev->kind, (const char *const *)ev->parties,
                            ev->n_parties, buf, len);
    free(buf);
    if (rc == CASENET_OK && index)
        *index = idx;
    return rc;
}

static void set_bytes(ProtobufCBinaryData *f, const uint8_t *p, size_t n)
{
    f->data = (uint8_t *)p;
    f->len = p ? n : 0;
}

static void set_message(Casenet__V1__AuditEvent *ev, const casenet_message_info *info)
{
    set_bytes(&ev->message_id, info->message_id, sizeof info->message_id);
    if (info->has_case_ref)
        set_bytes(&ev->case_ref, info->case_ref, sizeof info->case_ref);
    ev->message_kind = (Casenet__V1__Kind)info->kind;
    ev->urgency = (Casenet__V1__Urgency)info->urgency;
    ev->message_status = (Casenet__V1__MessageStatus)info->status;
    set_bytes(&ev->envelope_hash, info->envelope_hash, sizeof info->envelope_hash);
}

static void set_stored(Casenet__V1__AuditEvent *ev, const struct store_message *m)
{
    set_bytes(&ev->message_id, m->message_id, sizeof m->message_id);
    if (m->has_case_ref)
        set_bytes(&ev->case_ref, m->case_ref, sizeof m->case_ref);
    ev->message_kind = (Casenet__V1__Kind)m->kind;
    ev->urgency = (Casenet__V1__Urgency)m->urgency;
    ev->message_status = (Casenet__V1__MessageStatus)m->msg_status;
    set_bytes(&ev->envelope_hash, m->envelope_hash, sizeof m->envelope_hash);
    ev->size = m->size;
}

int audit_submitted(struct store *s, int64_t now_ms, const casenet_message_info *info,
                    uint32_t size, uint64_t directory_version, uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    char **parties = calloc(info->n_recipients + 1, sizeof *parties);
    if (!parties)
        return CASENET_ENOMEM;
    parties[0] = (char *)info->sender;
    for (size_t i = 0; i < info->n_recipients; i++)
        parties[i + 1] = info->recipients[i];
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED;
    ev.actor = (char *)info->sender;
    ev.parties = parties;
    ev.n_parties = info->n_recipients + 1;
    set_message(&ev, info);
    ev.size = size;
    ev.directory_version = directory_version;
    int rc = emit(s, now_ms, &ev, index);
    free(parties);
    return rc;
}

int audit_rejected(struct store *s, int64_t now_ms, const char *actor,
                   const casenet_message_info *info, const uint8_t *hash, uint32_t size, int err,
                   const char *detail, uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    char *parties[1] = {(char *)actor};
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED;
    ev.actor = (char *)actor;
    ev.parties = parties;
    ev.n_parties = 1;
    if (info)
        set_message(&ev, info);
    else if (hash)
        set_bytes(&ev.envelope_hash, hash, CASENET_HASH_BYTES);
    ev.size = size;
    ev.error = wire_code(err);
    ev.detail = (char *)(detail ? detail : "");
    return emit(s, now_ms, &ev, index);
}

int audit_fetched(struct store *s, int64_t now_ms, const char *actor, const struct store_message *m,
                  uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    char *parties[2] = {(char *)m->sender, (char *)actor};
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED;
    ev.actor = (char *)actor;
    ev.parties = parties;
    ev.n_parties = 2;
    set_stored(&ev, m);
    return emit(s, now_ms, &ev, index);
}

int audit_receipt(struct store *s, int64_t now_ms, const casenet_receipt *r,
                  const struct store_message *m, uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    char *parties[2] = {(char *)m->sender, (char *)r->recipient};
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_RECEIPT;
    ev.actor = (char *)r->recipient;
    ev.parties = parties;
    ev.n_parties = 2;
    set_stored(&ev, m);
    ev.receipt_status = (Casenet__V1__ReceiptStatus)r->status;
    ev.detail = (char *)(r->status == CASENET_RECEIPT_DECLINED    ? r->reason
                         : r->status == CASENET_RECEIPT_COMPLETED ? casenet_outcome_name(r->outcome)
                                                                  : "");
    return emit(s, now_ms, &ev, index);
}

int audit_auth_denied(struct store *s, int64_t now_ms, const char *address, const char *detail,
                      uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    /* The peer's address stays out of the permanent log: nothing appended
     * can ever be erased, and an address identifies a person's connection.
     * The operator's log (zap.c) has it, under the operator's retention. */
    (void)address;
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUTH_DENIED;
    ev.error = CASENET__V1__ERROR_CODE__ERROR_CODE_UNAUTHENTICATED;
    ev.detail = (char *)(detail ? detail : "");
    return emit(s, now_ms, &ev, index);
}

int audit_directory(struct store *s, int64_t now_ms, const char *actor, uint64_t version,
                    const char *detail, uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    char *parties[1] = {(char *)actor};
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_DIRECTORY_PUBLISHED;
    ev.actor = (char *)(actor ? actor : "");
    if (actor && *actor) {
        ev.parties = parties;
        ev.n_parties = 1;
    }
    ev.directory_version = version;
    ev.detail = (char *)(detail ? detail : "");
    return emit(s, now_ms, &ev, index);
}

int audit_broker(struct store *s, int64_t now_ms, int kind, uint64_t directory_version,
                 const char *detail, uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    ev.kind = (Casenet__V1__AuditKind)kind;
    ev.directory_version = directory_version;
    ev.detail = (char *)(detail ? detail : "");
    return emit(s, now_ms, &ev, index);
}

int audit_queried(struct store *s, int64_t now_ms, const char *actor, const uint8_t *message_id,
                  const uint8_t *case_ref, const char *detail, uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    char *parties[1] = {(char *)actor};
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUDIT_QUERIED;
    ev.actor = (char *)actor;
    ev.parties = parties;
    ev.n_parties = 1;
    set_bytes(&ev.message_id, message_id, CASENET_MESSAGE_ID_BYTES);
    set_bytes(&ev.case_ref, case_ref, CASENET_CASE_REF_BYTES);
    ev.detail = (char *)(detail ? detail : "");
    return emit(s, now_ms, &ev, index);
}

static const char *deadline_name(int kind)
{
    switch (kind) {
    case CASENET__V1__DEADLINE_KIND__DEADLINE_KIND_DELIVER:
        return "deliver";
    case CASENET__V1__DEADLINE_KIND__DEADLINE_KIND_ACCEPT:
        return "accept";
    case CASENET__V1__DEADLINE_KIND__DEADLINE_KIND_EXPIRE:
        return "expire";
    default:
        return "unknown";
    }
}

/* An ESCALATED event about m, filed under m's sender and recipient (when
 * not NULL), with detail text (freed here, NULL when asprintf failed). */
static int emit_escalated(struct store *s, int64_t now_ms, const struct store_message *m,
                          const char *recipient, char *text, uint64_t *index)
{
    if (!text)
        return CASENET_ENOMEM;
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    char *parties[2] = {(char *)m->sender, (char *)recipient};
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED;
    ev.actor = (char *)"";
    ev.parties = parties;
    ev.n_parties = recipient ? 2 : 1;
    set_stored(&ev, m);
    ev.detail = text;
    int rc = emit(s, now_ms, &ev, index);
    free(text);
    return rc;
}

int audit_escalated(struct store *s, int64_t now_ms, const struct store_message *m,
                    const char *recipient, int kind, int64_t due_ms, const uint8_t *notice_id,
                    uint64_t *index)
{
    char *text = NULL;
    if (asprintf(&text, "deadline=%s recipient=%s due_at_ms=%lld notice=%s", deadline_name(kind),
                 recipient, (long long)due_ms,
                 notice_id ? log_hex(notice_id, CASENET_MESSAGE_ID_BYTES) : "-") < 0)
        text = NULL;
    return emit_escalated(s, now_ms, m, recipient, text, index);
}

int audit_escalation_summary(struct store *s, int64_t now_ms, const struct store_message *m,
                             uint32_t summarized, int64_t period_start_ms, const uint8_t *notice_id,
                             uint64_t *index)
{
    char *text = NULL;
    if (asprintf(&text, "summary sender=%s summarized=%u period_start_ms=%lld notice=%s", m->sender,
                 (unsigned)summarized, (long long)period_start_ms,
                 notice_id ? log_hex(notice_id, CASENET_MESSAGE_ID_BYTES) : "-") < 0)
        text = NULL;
    return emit_escalated(s, now_ms, m, NULL, text, index);
}

int audit_dead_lettered(struct store *s, int64_t now_ms, const struct store_message *m,
                        const char *const *recipients, size_t n, const uint8_t *notice_id,
                        uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    char **parties = calloc(n + 1, sizeof *parties);
    char *list = NULL, *text = NULL;
    size_t len = 1;
    int rc = CASENET_ENOMEM;
    for (size_t i = 0; i < n; i++)
        len += strlen(recipients[i]) + 1;
    list = calloc(1, len);
    if (!parties || !list)
        goto cleanup;
    parties[0] = (char *)m->sender;
    for (size_t i = 0; i < n; i++) {
        parties[i + 1] = (char *)recipients[i];
        if (i)
            strcat(list, ",");
        strcat(list, recipients[i]);
    }
    if (asprintf(&text, "expires_at_ms=%lld recipients=%s notice=%s", (long long)m->expires_at_ms,
                 list, notice_id ? log_hex(notice_id, CASENET_MESSAGE_ID_BYTES) : "-") < 0) {
        text = NULL;
        goto cleanup;
    }
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_DEAD_LETTERED;
    ev.actor = (char *)"";
    ev.parties = parties;
    ev.n_parties = n + 1;
    set_stored(&ev, m);
    ev.detail = text;
    rc = emit(s, now_ms, &ev, index);
cleanup:
    free(text);
    free(list);
    free(parties);
    return rc;
}

int audit_log_restored(struct store *s, int64_t now_ms, uint64_t directory_version,
                       uint64_t previous_size, const uint8_t *previous_root,
                       int64_t previous_time_ms, const char *detail, uint64_t *index)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    ev.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_LOG_RESTORED;
    ev.directory_version = directory_version;
    ev.detail = (char *)(detail ? detail : "");
    if (previous_size > 0) {
        ev.previous_size = previous_size;
        set_bytes(&ev.previous_root, previous_root, CASENET_HASH_BYTES);
        ev.previous_time_ms = previous_time_ms;
    }
    return emit(s, now_ms, &ev, index);
}

int audit_blob(struct store *s, int64_t now_ms, int kind, const char *actor, const char *owner,
               const uint8_t blob_id[CASENET_BLOB_ID_BYTES], uint64_t size)
{
    Casenet__V1__AuditEvent ev = CASENET__V1__AUDIT_EVENT__INIT;
    char *parties[2] = {(char *)actor, (char *)owner};
    ev.kind = (Casenet__V1__AuditKind)kind;
    ev.actor = (char *)actor;
    ev.parties = parties;
    ev.n_parties = strcmp(actor, owner) == 0 ? 1 : 2;
    set_bytes(&ev.blob_id, blob_id, CASENET_BLOB_ID_BYTES);
    ev.size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    return emit(s, now_ms, &ev, NULL);
}
