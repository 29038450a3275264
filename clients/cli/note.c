/* note.c - the encrypted STATUS note that carries the words of a receipt
 * (PROTOCOL.md section 5.1): a receipt is kept in clear forever and carries
 * codes only, so what explains it is sealed to the sender first and the
 * receipt names the note's id. Shared by `casenet ack --note` and the
 * console's receipts. */
#include "cli.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The case id the opened payload states (every kind carries one) into out. */
static int payload_case_id(const casenet_buf *payload, char *out, size_t cap)
{
    casenet_buf json = {0};
    int rc = casenet_payload_to_json(payload->data, payload->len, &json);
    json_t *doc = rc == CASENET_OK ? json_loadb((const char *)json.data, json.len, 0, NULL) : NULL;
    const char *key;
    json_t *body, *id = NULL;
    json_object_foreach(doc, key, body) id = json_object_get(body, "caseId");
    rc = json_is_string(id) && json_string_length(id) > 0
             ? cn_strlcpy(out, json_string_value(id), cap)
             : CASENET_EBADREQ;
    json_decref(doc);
    casenet_buf_free(&json);
    return rc;
}

/* The StatusNote JSON for receipt r: its state, with the reason or outcome
 * that state requires (PROTOCOL.md section 6). NULL for a delivered receipt,
 * which carries no note, or out of memory. */
static json_t *note_doc(const casenet_receipt *r, const char *case_id, const char *text)
{
    switch (r->status) {
    case CASENET_RECEIPT_ACCEPTED:
        return json_pack("{s:{s:s, s:s, s:s}}", "status", "caseId", case_id, "status",
                         "CASE_STATUS_ACCEPTED", "note", text);
    case CASENET_RECEIPT_DECLINED:
        return json_pack("{s:{s:s, s:s, s:s, s:s}}", "status", "caseId", case_id, "status",
                         "CASE_STATUS_DECLINED", "reason", r->reason, "note", text);
    case CASENET_RECEIPT_COMPLETED:
        return json_pack("{s:{s:s, s:s, s:s, s:s}}", "status", "caseId", case_id, "status",
                         "CASE_STATUS_CLOSED", "outcome", casenet_outcome_name((int)r->outcome),
                         "note", text);
    default:
        return NULL;
    }
}

int cli_note_seal(const casenet_keys *keys, const casenet_directory *dir, const casenet_buf *orig,
                  const casenet_message_info *info, const casenet_receipt *r, const char *text,
                  casenet_buf *note, uint8_t id[CASENET_MESSAGE_ID_BYTES], enum cli_origin *origin,
                  char *why, size_t whylen)
{
    casenet_message_info oinfo = {0};
    casenet_buf payload = {0};
    char case_id[256];
    *origin = CLI_VERIFY;
    why[0] = '\0';
    int rc = casenet_open_detail(keys, dir, orig->data, orig->len, &oinfo, &payload, why, whylen);
    casenet_message_info_clear(&oinfo);
    if (rc != CASENET_OK)
        goto cleanup;
    *origin = CLI_LOCAL;
    rc = payload_case_id(&payload, case_id, sizeof case_id);
    casenet_buf_free(&payload);
    if (rc != CASENET_OK) {
        snprintf(why, whylen, "the message states no usable case id to answer with a note");
        goto cleanup;
    }
    json_t *doc = note_doc(r, case_id, text);
    char *json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!json) {
        rc = r->status == CASENET_RECEIPT_DELIVERED ? CASENET_EINVAL : CASENET_ENOMEM;
        snprintf(why, whylen, "%s",
                 rc == CASENET_EINVAL ? "a note goes with accepted, declined or completed"
                                      : "out of memory");
        goto cleanup;
    }
    rc = casenet_payload_from_json(json, strlen(json), CASENET_KIND_STATUS, &payload, why, whylen);
    free(json);
    if (rc != CASENET_OK)
        goto cleanup;
    const char *to[1] = {info->sender};
    casenet_seal_opts so = {.kind = CASENET_KIND_STATUS,
                            .urgency = info->urgency,
                            .status = info->status,
                            .to = to,
                            .n_to = 1,
                            .in_reply_to = info->message_id,
                            .case_ref = info->has_case_ref ? info->case_ref : NULL};
    rc = casenet_seal(keys, dir, &so, payload.data, payload.len, note, id);
cleanup:
    if (rc != CASENET_OK && !why[0])
        snprintf(why, whylen, "%s", casenet_strerror(rc));
    casenet_buf_free(&payload);
    return rc;
}
