/* console_actions.c - what staff sign and send from the console: receipts
 * (with a note sealed to the sender first), new referrals and takedown
 * requests from the forms, and the reveal of a sealed note. Each is a
 * disclosure-ledger entry before it happens. */
#include "console.h"

#include "cli.h"
#include "console_attach.h"
#include "util.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ receipts */

/* Seals note as the STATUS note that explains rec (cli_note_seal) for the
 * message in env and submits it; rec names it. The ledger records the send.
 * Under net_lock. false with out set. */
static bool receipt_note(struct console *c, const struct console_req *r, const casenet_buf *env,
                         const casenet_message_info *info, casenet_receipt *rec, const char *note,
                         struct console_resp *out)
{
    casenet_buf sealed = {0};
    enum cli_origin origin;
    char why[256], msg[320], hex[33];
    int rc = cli_note_seal(c->home->keys, c->home->dir, env, info, rec, note, &sealed, rec->note_id,
                           &origin, why, sizeof why);
    if (rc != CASENET_OK) {
        snprintf(msg, sizeof msg, "cannot build the note: %s; no receipt was sent", why);
        console_error(out, console_http_status(rc, origin), casenet_errname(rc), msg, "note");
        return false;
    }
    casenet_submit_receipt sr;
    rc = casenet_client_submit(c->client, sealed.data, sealed.len, &sr, NULL);
    casenet_buf_free(&sealed);
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_BROKER,
                     "the broker did not accept the note; no receipt was sent");
        return false;
    }
    rec->has_note = true;
    cli_id16_hex(rec->note_id, hex);
    if (console_ledger_add(c->db, r->who->user, "send", hex, NULL) != CASENET_OK)
        fprintf(stderr, "console: warning: ledger entry for sent note %s not written\n", hex);
    return true;
}

void console_api_receipt(struct console *c, const struct console_req *r, const uint8_t id[16],
                         struct console_resp *out)
{
    if (!console_need_role(out, r, ROLE_CASEWORKER))
        return;
    casenet_receipt rec = {0};
    char *note = NULL;
    if (!console_parse_receipt(r->body, r->body_len, &rec, &note, out))
        return;
    const char *status = casenet_receipt_status_name(rec.status);
    casenet_buf env = {0}, signed_receipt = {0};
    casenet_message_info info = {0};
    char idhex[33], cref[33], action[48];
    cli_id16_hex(id, idhex);
    pthread_mutex_lock(&c->net_lock);
    int rc = console_fetch(c, id, &env, out);
    if (rc != CASENET_OK) {
        goto unlock;
    }
    rc = casenet_envelope_verify(c->home->dir, env.data, env.len, &info);
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_VERIFY, "the message does not verify");
        goto unlock;
    }
    memcpy(rec.message_id, info.message_id, sizeof rec.message_id);
    memcpy(rec.envelope_hash, info.envelope_hash, sizeof rec.envelope_hash);
    rc = cn_strlcpy(rec.sender, info.sender, sizeof rec.sender);
    if (rc == CASENET_OK)
        rc = cn_strlcpy(rec.recipient, c->home->member, sizeof rec.recipient);
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_LOCAL, "cannot sign the receipt");
        goto unlock;
    }
    cli_id16_hex(info.case_ref, cref);
    snprintf(action, sizeof action, "receipt:%s", status);
    if (console_ledger_add(c->db, r->who->user, action, idhex, info.has_case_ref ? cref : NULL) !=
        CASENET_OK) {
        console_error(out, 500, "IO", "the disclosure ledger cannot be written: nothing signed",
                      NULL);
        goto unlock;
    }
    /* the words first, sealed to the sender: the receipt names them */
    if (note && !receipt_note(c, r, &env, &info, &rec, note, out)) {
        rc = CASENET_EINVAL; /* out is set */
        goto unlock;
    }
    rec.signed_at_ms = cn_now_ms();
    rc = casenet_receipt_sign(c->home->keys, &rec, &signed_receipt);
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_LOCAL, "cannot sign the receipt");
        goto unlock;
    }
    uint64_t audit_index = 0;
    rc = casenet_client_send_receipt(c->client, signed_receipt.data, signed_receipt.len,
                                     &audit_index);
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_BROKER, "the broker did not accept the receipt");
        goto unlock;
    }
    fprintf(stderr, "console: %s signed '%s' for %s\n", r->who->user, status, idhex);
    json_t *o = json_pack("{s:s, s:s, s:I}", "id", idhex, "status", status, "audit_index",
                          (json_int_t)audit_index);
    if (o && rec.outcome != CASENET_OUTCOME_NONE)
        json_object_set_new(o, "outcome", json_string(casenet_outcome_name((int)rec.outcome)));
    if (o && rec.has_note)
        json_object_set_new(o, "note_id", console_hex16(rec.note_id));
    console_ok(out, o);
unlock:
    console_client_failed(c, rc);
    pthread_mutex_unlock(&c->net_lock);
    free(note);
    casenet_message_info_clear(&info);
    casenet_buf_free(&signed_receipt);
    casenet_buf_free(&env);
}

/* ------------------------------------------------------------ send */

/* The remembered send of draft id, or NULL. Under net_lock. */
static struct console_draft *find_draft(struct console *c, const uint8_t draft[16])
{
    for (size_t i = 0; i < CONSOLE_DRAFTS; i++) {
        if (c->drafts[i].envelope.len && memcmp(c->drafts[i].draft, draft, 16) == 0)
            return &c->drafts[i];
    }
    return NULL;
}

void console_api_send(struct console *c, const struct console_req *r, struct console_resp *out)
{
    if (!console_need_role(out, r, ROLE_CASEWORKER))
        return;
    struct console_send sp;
    struct console_attach_pending ap = {0};
    casenet_buf env = {0};
    if (!console_parse_send(r->body, r->body_len, &sp, out))
        return;
    int rc;
    pthread_mutex_lock(&c->net_lock);
    struct console_draft *d = sp.has_draft ? find_draft(c, sp.draft) : NULL;
    uint8_t mid[CASENET_MESSAGE_ID_BYTES];
    if (d) {
        memcpy(mid, d->message_id, sizeof mid);
        rc = CASENET_OK;
    } else if (!console_attach_seal(c, r, &sp, &ap, out)) {
        pthread_mutex_unlock(&c->net_lock);
        goto cleanup;
    } else {
        rc = casenet_seal(c->home->keys, c->home->dir, &sp.so, sp.payload.data, sp.payload.len,
                          &env, mid);
        if (rc == CASENET_OK && sp.has_draft) {
            d = &c->drafts[c->next_draft++ % CONSOLE_DRAFTS];
            casenet_buf_free(&d->envelope);
            memcpy(d->draft, sp.draft, 16);
            memcpy(d->message_id, mid, sizeof mid);
            d->envelope = env;
            env = (casenet_buf){0};
        }
    }
    if (rc != CASENET_OK) {
        pthread_mutex_unlock(&c->net_lock);
        char why[256] = "", msg[320];
        bool self = false;
        for (size_t i = 0; i < sp.so.n_to; i++)
            self = self || strcmp(sp.so.to[i], c->home->member) == 0;
        if (rc == CASENET_EFORBIDDEN && self) {
            console_error(out, MHD_HTTP_FORBIDDEN, "FORBIDDEN",
                          "nobody addresses a message to itself: choose another member", "to");
        } else if (rc == CASENET_EFORBIDDEN &&
                   casenet_role_check(c->home->dir, c->home->member, (int)sp.so.kind, sp.so.to,
                                      sp.so.n_to, why, sizeof why) != CASENET_OK &&
                   why[0]) {
            /* the role matrix (PROTOCOL.md section 6.1), named for the person */
            snprintf(msg, sizeof msg, "cannot send this to them: %s", why);
            console_error(out, MHD_HTTP_FORBIDDEN, "FORBIDDEN", msg, "to");
        } else {
            console_fail(out, c, rc, CLI_LOCAL, "cannot seal the message");
        }
        goto cleanup;
    }
    const casenet_buf *bytes = d ? &d->envelope : &env;
    casenet_submit_receipt rcpt;
    bool dup = false;
    rc = console_client(c);
    if (rc == CASENET_OK)
        rc = casenet_client_submit(c->client, bytes->data, bytes->len, &rcpt, &dup);
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_BROKER, "the broker did not accept the message");
        pthread_mutex_unlock(&c->net_lock);
        goto cleanup;
    }
    pthread_mutex_unlock(&c->net_lock);
    char idhex[33];
    cli_id16_hex(mid, idhex);
    console_attach_sent(c, &ap, idhex);
    if (console_ledger_add(c->db, r->who->user, "send", idhex, sp.case_hex) != CASENET_OK)
        fprintf(stderr, "console: warning: ledger entry for sent %s not written\n", idhex);
    fprintf(stderr, "console: %s sent %s %s\n", r->who->user, casenet_kind_name(sp.so.kind), idhex);
    console_ok(out, json_pack("{s:s, s:b, s:{s:b, s:s, s:I, s:I}}", "id", idhex, "duplicate", dup,
                              "receipt", "verified", 1, "broker", rcpt.broker_id, "accepted_at",
                              (json_int_t)rcpt.accepted_at_ms, "audit_index",
                              (json_int_t)rcpt.audit_index));
cleanup:
    console_attach_pending_clear(&ap);
    casenet_buf_free(&env);
    console_send_clear(&sp);
}

/* ------------------------------------------------------------ reveal */

/* A person asked to see an identifying field (a child's name, a reporter's
 * contact) of a message already read: the page shows it only after this
 * ledger entry is written. */
void console_api_reveal(struct console *c, const struct console_req *r, const uint8_t id[16],
                        struct console_resp *out)
{
    if (!console_need_role(out, r, ROLE_CASEWORKER))
        return;
    json_t *in = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
    const char *field = NULL;
    bool ok = in && json_unpack(in, "{s:s}", "field", &field) == 0 && field[0] &&
              strlen(field) <= 64 &&
              strspn(field, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "0123456789_.[]") == strlen(field);
    char action[96], idhex[33];
    if (ok) {
        snprintf(action, sizeof action, "reveal:%s", field);
        cli_id16_hex(id, idhex);
    }
    json_decref(in);
    if (!ok)
        return console_error(out, 400, "BAD_REQUEST", "send {\"field\": \"children[0].name\"}",
                             "field");
    if (console_ledger_add(c->db, r->who->user, action, idhex, NULL) != CASENET_OK)
        return console_error(out, 500, "IO", "the disclosure ledger cannot be written", NULL);
    console_ok(out, json_pack("{s:b}", "ok", 1));
}
