/* console_req.c - the console's checks of what a browser or a machine sends
 * it, apart from the server so that a fuzzer can drive them: the static page
 * paths, the body of a send and of a receipt. Each refusal is a 400 answer
 * naming the field. */
#include "console.h"

#include "cli.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void console_error(struct console_resp *out, unsigned status, const char *name, const char *msg,
                   const char *field)
{
    json_t *o = json_pack("{s:s, s:s}", "error", name, "message", msg);
    if (o && field)
        json_object_set_new(o, "field", json_string(field));
    free(out->body);
    out->status = status;
    out->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
}

bool console_static_path_ok(const char *url)
{
    size_t n = strlen(url), segs = 0;
    if (n < 2 || n > 128 || url[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = url[i];
        if (ch == '/') {
            if (++segs > 2 || url[i + 1] == '.' || url[i + 1] == '\0' || url[i + 1] == '/')
                return false;
            continue;
        }
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

bool console_parse_receipt(const char *body, size_t len, casenet_receipt *rec, char **note,
                           struct console_resp *err)
{
    json_t *in = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *status = NULL, *reason = NULL, *outcome = NULL, *text = NULL;
    memset(rec, 0, sizeof *rec);
    *note = NULL;
    if (!in ||
        json_unpack(in, "{s:s, s?s, s?s, s?s}", "status", &status, "reason", &reason, "outcome",
                    &outcome, "note", &text) != 0 ||
        casenet_receipt_status_parse(status, &rec->status) != CASENET_OK) {
        json_decref(in);
        console_error(err, 400, "BAD_REQUEST",
                      "send {\"status\": delivered|accepted|declined|completed, \"reason\", "
                      "\"outcome\", \"note\"}",
                      "status");
        return false;
    }
    if (reason && !reason[0])
        reason = NULL;
    if (outcome && !outcome[0])
        outcome = NULL;
    if (text && !text[0])
        text = NULL;
    const char *bad = NULL, *field = NULL;
    if (rec->status == CASENET_RECEIPT_DECLINED &&
        (!reason || !casenet_decline_reason_valid(reason)))
        bad = "a decline needs a reason: not-competent, duplicate, insufficient-information, "
              "redirected",
        field = "reason";
    else if (rec->status != CASENET_RECEIPT_DECLINED && reason)
        bad = "a reason goes with declined only", field = "reason";
    else if (rec->status == CASENET_RECEIPT_COMPLETED && !outcome)
        bad = "completing needs an outcome", field = "outcome";
    else if (rec->status != CASENET_RECEIPT_COMPLETED && outcome)
        bad = "an outcome goes with completed only", field = "outcome";
    else if (outcome && casenet_outcome_parse(outcome, &rec->outcome) != CASENET_OK)
        bad = "the outcome is a code: resolved, referred-onward, no-action-needed, "
              "unable-to-act, withdrawn (words go in a status note)",
        field = "outcome";
    else if (reason && cn_strlcpy(rec->reason, reason, sizeof rec->reason) != CASENET_OK)
        bad = "too long", field = "reason";
    else if (text && rec->status == CASENET_RECEIPT_DELIVERED)
        bad = "a note goes with accepted, declined or completed", field = "note";
    else if (text && strlen(text) > CONSOLE_NOTE_MAX)
        bad = "the note is too long", field = "note";
    else if (text && !(*note = strdup(text)))
        bad = "out of memory", field = "note";
    json_decref(in);
    if (bad) {
        console_error(err, 400, "BAD_REQUEST", bad, field);
        return false;
    }
    return true;
}

static const char *const urgency_enum[] = {
    [CASENET_URGENCY_EMERGENCY] = "URGENCY_EMERGENCY",
    [CASENET_URGENCY_URGENT_TAKEDOWN] = "URGENCY_URGENT_TAKEDOWN",
    [CASENET_URGENCY_STANDARD] = "URGENCY_STANDARD",
    [CASENET_URGENCY_INFO] = "URGENCY_INFO",
};

/* The object in payload that states an urgency: a referral's, or the
 * referral a correction carries (PROTOCOL.md section 6, one urgency). */
static json_t *urgency_holder(json_t *payload, casenet_kind kind)
{
    if (kind == CASENET_KIND_REFERRAL)
        return json_object_get(payload, "referral");
    if (kind == CASENET_KIND_CORRECTION)
        return json_object_get(json_object_get(payload, "correction"), "referral");
    return NULL;
}

/* The urgency is chosen once, and the payload states it: a referral chosen
 * with an urgency gets it in its payload; one whose payload names another is
 * refused. Without a chosen urgency the header takes the payload's. */
static const char *apply_urgency(json_t *payload, casenet_kind kind, casenet_urgency urgency)
{
    json_t *ref = urgency_holder(payload, kind);
    if (kind == CASENET_KIND_REFERRAL && !json_is_object(ref))
        return "payload.referral";
    if (!json_is_object(ref) || urgency == 0)
        return NULL;
    json_t *u = json_object_get(ref, "urgency");
    if (!u) {
        json_object_set_new(ref, "urgency", json_string(urgency_enum[urgency]));
        return NULL;
    }
    if (!json_is_string(u) || strcmp(json_string_value(u), urgency_enum[urgency]) != 0)
        return kind == CASENET_KIND_REFERRAL ? "payload.referral.urgency"
                                             : "payload.correction.referral.urgency";
    return NULL;
}

/* A 400 for a payload casenet_payload_check refused, with its sentence (the
 * library's: "the referral lacks caseId, summary") and, in "fields", the
 * path of every missing field ("payload.referral.caseId"); "field" is the
 * first. */
static void payload_refused(struct console_resp *err, const char *msg)
{
    json_t *fields = json_array();
    const char *what = strstr(msg, "the "), *lacks = strstr(msg, " lacks ");
    if (what == msg && lacks) {
        int wl = (int)(lacks - (msg + 4));
        for (const char *p = lacks + 7; *p;) {
            size_t n = strcspn(p, ", ");
            char path[160];
            if (n > 0 && n < 100) {
                snprintf(path, sizeof path, "payload.%.*s.%.*s", wl, msg + 4, (int)n, p);
                json_array_append_new(fields, json_string(path));
            }
            p += n;
            p += strcspn(p, ","); /* skip " (or a note)" */
            p += strspn(p, ", ");
        }
    }
    json_t *first = json_array_get(fields, 0);
    console_error(err, 400, "BAD_REQUEST", msg, first ? json_string_value(first) : "payload");
    json_t *o = err->body ? json_loads(err->body, 0, NULL) : NULL;
    if (o) {
        json_object_set_new(o, "fields", fields);
        fields = NULL;
        free(err->body);
        err->body = json_dumps(o, JSON_COMPACT);
    }
    json_decref(o);
    json_decref(fields);
}

void console_send_clear(struct console_send *s)
{
    casenet_buf_free(&s->payload);
    json_decref(s->in);
    memset(s, 0, sizeof *s);
}

/* Checks an id field: absent, or 32 hex digits into out. */
static bool id_field(const char *hex, uint8_t out[16], bool *has)
{
    *has = hex != NULL;
    return !hex || cli_parse_id16(hex, out);
}

bool console_parse_send(const char *body, size_t len, struct console_send *s,
                        struct console_resp *err)
{
    memset(s, 0, sizeof *s);
    const char *kind_s = NULL, *urg_s = NULL, *status_s = "actual", *draft_s = NULL;
    const char *reply_s = NULL;
    json_t *to = NULL, *payload = NULL;
    char *pjson = NULL, perr[256] = "";
    const char *msg = NULL, *field = NULL;
    bool has_case = false, has_reply = false;
    s->in = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!s->in ||
        json_unpack(s->in, "{s:s, s:o, s:o, s?s, s?s, s?s, s?s, s?s}", "kind", &kind_s, "to", &to,
                    "payload", &payload, "urgency", &urg_s, "status", &status_s, "draft_id",
                    &draft_s, "case", &s->case_hex, "reply_to", &reply_s) != 0) {
        msg = "send {\"kind\", \"to\": [...], \"urgency\", \"payload\": {...}, \"draft_id\"}";
        goto refuse;
    }
    casenet_seal_opts *so = &s->so;
    if (casenet_kind_parse(kind_s, &so->kind) != CASENET_OK ||
        so->kind == CASENET_KIND_ESCALATION || so->kind == CASENET_KIND_DEAD_LETTER ||
        so->kind == CASENET_KIND_RECEIPT) {
        msg = "unknown kind", field = "kind";
        goto refuse;
    }
    so->urgency = 0;
    if (urg_s && casenet_urgency_parse(urg_s, &so->urgency) != CASENET_OK) {
        msg = "unknown urgency", field = "urgency";
        goto refuse;
    }
    if (casenet_msg_status_parse(status_s, &so->status) != CASENET_OK) {
        msg = "status is actual, exercise or test", field = "status";
        goto refuse;
    }
    if (!json_is_array(to) || json_array_size(to) == 0 ||
        json_array_size(to) > CASENET_MAX_RECIPIENTS) {
        msg = "choose at least one recipient", field = "to";
        goto refuse;
    }
    for (size_t i = 0; i < json_array_size(to); i++) {
        const char *t = json_string_value(json_array_get(to, i));
        if (!t || !(casenet_member_id_valid(t) || (t[0] == '@' && t[1]))) {
            msg = "a recipient is not a member id or @group", field = "to";
            goto refuse;
        }
        s->to_ids[i] = t;
    }
    so->to = s->to_ids;
    so->n_to = json_array_size(to);
    if (!id_field(draft_s, s->draft, &s->has_draft))
        field = "draft_id";
    else if (!id_field(s->case_hex, s->case_ref, &has_case))
        field = "case";
    else if (!id_field(reply_s, s->reply_to, &has_reply))
        field = "reply_to";
    if (field) {
        msg = "ids are 32 hex digits";
        goto refuse;
    }
    so->case_ref = has_case ? s->case_ref : NULL;
    so->in_reply_to = has_reply ? s->reply_to : NULL;
    if (!json_is_object(payload)) {
        msg = "payload must be an object", field = "payload";
        goto refuse;
    }
    field = apply_urgency(payload, so->kind, so->urgency);
    if (field) {
        msg = "the payload must be a referral whose urgency is the one chosen";
        goto refuse;
    }
    pjson = json_dumps(payload, JSON_COMPACT);
    int rc = pjson ? casenet_payload_from_json(pjson, strlen(pjson), so->kind, &s->payload, perr,
                                               sizeof perr)
                   : CASENET_ENOMEM;
    free(pjson);
    if (rc != CASENET_OK) {
        /* the converter's message starts with the field path */
        char path[128] = "payload";
        size_t fl = strcspn(perr, ": ");
        if (fl > 0 && fl < sizeof path - 8)
            snprintf(path, sizeof path, "payload.%.*s", (int)fl, perr);
        console_error(err, 400, "BAD_REQUEST", perr[0] ? perr : casenet_strerror(rc), path);
        console_send_clear(s);
        return false;
    }
    /* the header takes the urgency the payload states; then every field
     * the kind requires, as casenet_seal will check */
    casenet_urgency stated = 0;
    if (so->urgency == 0 &&
        casenet_payload_urgency(s->payload.data, s->payload.len, &stated) == CASENET_OK)
        so->urgency = stated ? stated : CASENET_URGENCY_STANDARD;
    if (so->urgency == 0)
        so->urgency = CASENET_URGENCY_STANDARD;
    if (casenet_payload_check(s->payload.data, s->payload.len, so->kind, so->urgency, perr,
                              sizeof perr) != CASENET_OK) {
        payload_refused(err, perr[0] ? perr : "the payload breaks the rules of its kind");
        console_send_clear(s);
        return false;
    }
    return true;
refuse:
    console_error(err, 400, "BAD_REQUEST", msg, field);
    console_send_clear(s);
    return false;
}
