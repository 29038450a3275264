/* watch_json.c - the JSON documents `casenet watch` hands over (a verified
 * message with its payload, a forwarded receipt), which `casenet read`
 * prints too: ids in hex, times ISO 8601 UTC. */
#include "cli.h"
#include "commands.h"
#include "util.h"
#include "watch.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void set_iso(json_t *o, const char *key, int64_t ms)
{
    char iso[40];
    cli_format_iso(ms, iso, sizeof iso);
    json_object_set_new(o, key, json_string(iso));
}

static void set_id(json_t *o, const char *key, bool has, const uint8_t id[16])
{
    char hex[33];
    if (!has) {
        json_object_set_new(o, key, json_null());
        return;
    }
    cli_id16_hex(id, hex);
    json_object_set_new(o, key, json_string(hex));
}

/* Serialises doc (consumed) compactly with a final newline into *out. */
static int dump(json_t *doc, char **out, size_t *len)
{
    if (!doc)
        return CASENET_ENOMEM;
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text)
        return CASENET_ENOMEM;
    size_t n = strlen(text);
    char *with_nl = realloc(text, n + 2);
    if (!with_nl) {
        free(text);
        return CASENET_ENOMEM;
    }
    with_nl[n] = '\n';
    with_nl[n + 1] = '\0';
    *out = with_nl;
    *len = n + 1;
    return CASENET_OK;
}

int watch_message_json(const casenet_inbox_entry *e, const casenet_message_info *info,
                       const casenet_buf *payload_json, char **out, size_t *len)
{
    json_error_t jerr;
    json_t *payload = json_loadb((const char *)payload_json->data, payload_json->len, 0, &jerr);
    json_t *m = json_object(), *rcpt = json_array(), *doc = json_object();
    if (!payload || !m || !rcpt || !doc) {
        json_decref(payload);
        json_decref(m);
        json_decref(rcpt);
        json_decref(doc);
        return payload ? CASENET_ENOMEM : CASENET_EBADREQ;
    }
    char hex[33], hash[2 * CASENET_HASH_BYTES + 1];
    cli_id16_hex(info->message_id, hex);
    cn_hex(info->envelope_hash, sizeof info->envelope_hash, hash);
    json_object_set_new(m, "id", json_string(hex));
    json_object_set_new(m, "seq", json_integer((json_int_t)e->seq));
    json_object_set_new(m, "from", json_string(info->sender));
    json_object_set_new(m, "kind", json_string(casenet_kind_name(info->kind)));
    json_object_set_new(m, "urgency", json_string(casenet_urgency_name(info->urgency)));
    json_object_set_new(m, "status", json_string(casenet_msg_status_name(info->status)));
    set_iso(m, "created_at", info->created_at_ms);
    set_iso(m, "received_at", e->received_at_ms);
    if (info->expires_at_ms)
        set_iso(m, "expires_at", info->expires_at_ms);
    else
        json_object_set_new(m, "expires_at", json_null());
    set_id(m, "case", info->has_case_ref, info->case_ref);
    set_id(m, "in_reply_to", info->has_in_reply_to, info->in_reply_to);
    for (size_t i = 0; i < info->n_recipients; i++)
        json_array_append_new(rcpt, json_string(info->recipients[i]));
    json_object_set_new(m, "recipients", rcpt);
    json_object_set_new(m, "envelope_hash", json_string(hash));
    json_object_set_new(doc, "message", m);
    json_object_set_new(doc, "payload", payload);
    return dump(doc, out, len);
}

int receipt_json(const casenet_inbox_entry *e, const casenet_receipt *r, char **out, size_t *len)
{
    json_t *m = json_object(), *rj = json_object(), *doc = json_object();
    if (!m || !rj || !doc) {
        json_decref(m);
        json_decref(rj);
        json_decref(doc);
        return CASENET_ENOMEM;
    }
    char hex[33], hash[2 * CASENET_HASH_BYTES + 1];
    cli_id16_hex(e->message_id, hex);
    json_object_set_new(m, "id", json_string(hex));
    json_object_set_new(m, "seq", json_integer((json_int_t)e->seq));
    json_object_set_new(m, "from", json_string(r->recipient));
    json_object_set_new(m, "kind", json_string("receipt"));
    json_object_set_new(
        m, "urgency",
        json_string(casenet_urgency_name(e->urgency ? (int)e->urgency : CASENET_URGENCY_STANDARD)));
    json_object_set_new(
        m, "status",
        json_string(casenet_msg_status_name(e->status ? (int)e->status : CASENET_MSG_ACTUAL)));
    set_iso(m, "created_at", r->signed_at_ms);
    set_iso(m, "received_at", e->received_at_ms);
    set_id(m, "case", e->has_case_ref, e->case_ref);
    set_id(m, "in_reply_to", true, r->message_id);
    cli_id16_hex(r->message_id, hex);
    cn_hex(r->envelope_hash, sizeof r->envelope_hash, hash);
    json_object_set_new(rj, "message_id", json_string(hex));
    json_object_set_new(rj, "envelope_hash", json_string(hash));
    json_object_set_new(rj, "sender", json_string(r->sender));
    json_object_set_new(rj, "recipient", json_string(r->recipient));
    json_object_set_new(rj, "status", json_string(casenet_receipt_status_name(r->status)));
    json_object_set_new(rj, "reason", r->reason[0] ? json_string(r->reason) : json_null());
    json_object_set_new(rj, "outcome",
                        r->outcome ? json_string(casenet_outcome_name(r->outcome)) : json_null());
    set_id(rj, "note", r->has_note, r->note_id);
    set_iso(rj, "signed_at", r->signed_at_ms);
    json_object_set_new(doc, "message", m);
    json_object_set_new(doc, "receipt", rj);
    return dump(doc, out, len);
}
