/* console_api.c - the console's JSON API under /api/v1/ (the same API its
 * pages use): inbox, message (fetched, verified and decrypted here, next to
 * the keys), sent, a message's status, directory, ledger, and the routing of
 * every API path (send, receipts and reveal are in console_actions.c).
 * One broker connection, used under net_lock. Every read of content by a
 * person and every receipt signed goes to the disclosure ledger first: when
 * the ledger cannot be written, nothing is disclosed or signed. */
#include "console.h"

#include "cli.h"
#include "console_attach.h"
#include "console_bank.h"
#include "console_coord.h"
#include "util.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define LIST_CAP 20000 /* inbox and sent rows read per request */
#define PAGE     500

/* The HTTP status of a casenet error, by the CLI's exit classes: usage and
 * local input 400, verification 502, file I/O 500, refused by the broker
 * 403/404/409/413/422, unreachable 503 (rate limited 429). */
unsigned console_http_status(int err, enum cli_origin origin)
{
    switch (cli_exit_code(err, origin)) {
    case CLI_ESECURITY:
        return MHD_HTTP_BAD_GATEWAY;
    case CLI_EIO:
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    case CLI_EUNREACH:
        return err == CASENET_ERATELIMIT ? MHD_HTTP_TOO_MANY_REQUESTS
                                         : MHD_HTTP_SERVICE_UNAVAILABLE;
    case CLI_EREFUSED:
        switch (err) {
        case CASENET_EFORBIDDEN:
            return MHD_HTTP_FORBIDDEN;
        case CASENET_ENOTFOUND:
            return MHD_HTTP_NOT_FOUND;
        case CASENET_ECONFLICT:
            return MHD_HTTP_CONFLICT;
        case CASENET_ETOOLARGE:
            return MHD_HTTP_CONTENT_TOO_LARGE;
        default:
            return MHD_HTTP_UNPROCESSABLE_CONTENT;
        }
    default:
        return MHD_HTTP_BAD_REQUEST;
    }
}

void console_ok(struct console_resp *out, json_t *o)
{
    out->status = MHD_HTTP_OK;
    out->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!out->body)
        console_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "NOMEM", "out of memory", NULL);
    json_decref(o);
}

const char *console_arg(const struct console_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *console_hex16(const uint8_t id[16])
{
    char h[33];
    cli_id16_hex(id, h);
    return json_string(h);
}

static const char *display_name(struct console *c, const char *id)
{
    casenet_member m;
    if (casenet_directory_find(c->home->dir, id, &m) == CASENET_OK && m.display_name)
        return m.display_name;
    return id;
}

int console_client(struct console *c)
{
    if (c->client)
        return CASENET_OK;
    casenet_client_opts o = {
        .endpoint = c->broker,
        .timeout_ms = 10000,
        .client_name = "casenet-console/" CASENET_VERSION,
    };
    return casenet_client_connect(c->home->keys, c->home->dir, &o, &c->client);
}

int console_fetch(struct console *c, const uint8_t id[16], casenet_buf *env,
                  struct console_resp *out)
{
    int rc = console_client(c);
    if (rc == CASENET_OK)
        rc = casenet_client_fetch(c->client, id, env);
    if (rc != CASENET_OK)
        console_fail(out, c, rc, CLI_BROKER, "cannot fetch the message");
    return rc;
}

void console_client_failed(struct console *c, int err)
{
    if (err == CASENET_ETIMEDOUT) {
        casenet_client_free(c->client);
        c->client = NULL;
    }
}

void console_fail(struct console_resp *out, struct console *c, int err, enum cli_origin origin,
                  const char *what)
{
    char msg[512];
    const char *detail =
        (origin == CLI_BROKER && c->client) ? casenet_client_last_error(c->client) : "";
    snprintf(msg, sizeof msg, "%s: %s", what, detail[0] ? detail : casenet_strerror(err));
    console_error(out, console_http_status(err, origin), casenet_errname(err), msg, NULL);
    if (origin == CLI_BROKER)
        console_client_failed(c, err);
}

bool console_need_role(struct console_resp *out, const struct console_req *r, enum console_role min)
{
    if (r->who->role >= min)
        return true;
    console_error(out, MHD_HTTP_FORBIDDEN, "FORBIDDEN",
                  min == ROLE_SUPERVISOR ? "only supervisors may do this"
                                         : "viewers may not read content, send or sign",
                  NULL);
    return false;
}

/* ------------------------------------------------------------ inbox */

static json_t *receipt_json(struct console *c, const casenet_buf *signed_receipt)
{
    casenet_receipt rc;
    if (signed_receipt->len == 0)
        return NULL;
    if (casenet_receipt_verify(c->home->dir, signed_receipt->data, signed_receipt->len, &rc) !=
        CASENET_OK)
        return json_pack("{s:b}", "verified", 0);
    json_t *o =
        json_pack("{s:b, s:s, s:s, s:s, s:I}", "verified", 1, "status",
                  casenet_receipt_status_name(rc.status), "signer", rc.recipient, "signer_name",
                  display_name(c, rc.recipient), "signed_at", (json_int_t)rc.signed_at_ms);
    if (o && rc.reason[0])
        json_object_set_new(o, "reason", json_string(rc.reason));
    if (o && rc.outcome != CASENET_OUTCOME_NONE)
        json_object_set_new(o, "outcome", json_string(casenet_outcome_name((int)rc.outcome)));
    if (o && rc.has_note)
        json_object_set_new(o, "note_id", console_hex16(rc.note_id));
    if (o)
        json_object_set_new(o, "message_id", console_hex16(rc.message_id));
    return o;
}

static json_t *entry_json(struct console *c, const casenet_inbox_entry *e)
{
    json_t *o =
        json_pack("{s:o, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id",
                  console_hex16(e->message_id), "seq", (json_int_t)e->seq, "from", e->sender,
                  "from_name", display_name(c, e->sender), "kind", casenet_kind_name(e->kind),
                  "urgency", e->urgency ? casenet_urgency_name(e->urgency) : "standard", "state",
                  casenet_inbox_state_name(e->state), "message_status",
                  casenet_msg_status_name(e->status ? (int)e->status : CASENET_MSG_ACTUAL),
                  "received_at", (json_int_t)e->received_at_ms, "created_at",
                  (json_int_t)e->created_at_ms, "size", (json_int_t)e->size);
    if (!o)
        return NULL;
    if (e->has_case_ref)
        json_object_set_new(o, "case", console_hex16(e->case_ref));
    if (e->has_in_reply_to)
        json_object_set_new(o, "in_reply_to", console_hex16(e->in_reply_to));
    if (e->kind == CASENET_KIND_RECEIPT) {
        json_t *r = receipt_json(c, &e->receipt);
        if (r)
            json_object_set_new(o, "receipt", r);
    }
    return o;
}

/* True when want is empty or one of its comma-separated names is have. */
static bool filter_match(const char *want, const char *have)
{
    if (!want || !want[0])
        return true;
    size_t n = strlen(have);
    for (const char *p = want; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, have, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

static void add_deadlines(struct console *c, json_t *rows);

static void api_inbox(struct console *c, const struct console_req *r, struct console_resp *out)
{
    const char *f_state = console_arg(r, "state"), *f_kind = console_arg(r, "kind");
    const char *f_urg = console_arg(r, "urgency"), *f_case = console_arg(r, "case");
    uint64_t limit = 50, offset = 0;
    const char *a = console_arg(r, "limit");
    if (a && !cli_parse_uint(a, 1, 1000, &limit))
        return console_error(out, 400, "BAD_REQUEST", "limit is 1..1000", "limit");
    a = console_arg(r, "offset");
    if (a && !cli_parse_uint(a, 0, LIST_CAP, &offset))
        return console_error(out, 400, "BAD_REQUEST", "offset is 0..20000", "offset");
    json_t *all = json_array();
    pthread_mutex_lock(&c->net_lock);
    int rc = console_client(c);
    uint64_t cursor = 0;
    bool more = rc == CASENET_OK;
    size_t seen = 0;
    while (rc == CASENET_OK && more && seen < LIST_CAP) {
        casenet_inbox_entry *rows = NULL;
        size_t n = 0;
        uint64_t next = cursor;
        rc = casenet_client_list(c->client, CASENET_INBOX_ANY, cursor, PAGE, &rows, &n, &next,
                                 &more);
        for (size_t i = 0; rc == CASENET_OK && i < n; i++, seen++) {
            const casenet_inbox_entry *e = &rows[i];
            char cref[33];
            cli_id16_hex(e->case_ref, cref);
            if (!filter_match(f_state, casenet_inbox_state_name(e->state)) ||
                !filter_match(f_kind, casenet_kind_name(e->kind)) ||
                !filter_match(f_urg, e->urgency ? casenet_urgency_name(e->urgency) : "standard") ||
                !filter_match(f_case, e->has_case_ref ? cref : ""))
                continue;
            json_array_append_new(all, entry_json(c, e));
        }
        casenet_inbox_entries_free(rows, n);
        if (n == 0 || next <= cursor)
            break;
        cursor = next;
    }
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_BROKER, "cannot list the inbox");
        pthread_mutex_unlock(&c->net_lock);
        json_decref(all);
        return;
    }
    pthread_mutex_unlock(&c->net_lock);
    /* newest first */
    size_t total = json_array_size(all);
    json_t *page = json_array();
    for (size_t i = offset; i < total && i < offset + limit; i++)
        json_array_append(page, json_array_get(all, total - 1 - i));
    json_decref(all);
    add_deadlines(c, page);
    console_ok(out, json_pack("{s:o, s:I}", "rows", page, "total", (json_int_t)total));
}

/* ------------------------------------------------------------ status, deadlines */

static json_t *deadlines_json(const casenet_deadline *d, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:I}", "kind",
                                             casenet_deadline_kind_name(d[i].kind), "due_at",
                                             (json_int_t)d[i].due_at_ms, "state",
                                             casenet_deadline_state_name(d[i].state), "settled_at",
                                             (json_int_t)d[i].settled_at_ms));
    return arr;
}

/* Settles a forwarded receipt row shown to a person: fetching it moves it
 * from queued to fetched at the broker (PROTOCOL.md section 8), as `casenet
 * watch` does once it handed one over. A failure leaves it queued, to be
 * settled when next shown. Under net_lock. */
static int settle_receipt(struct console *c, json_t *row, const uint8_t id[16])
{
    casenet_buf env = {0};
    casenet_inbox_entry got = {0};
    int rc = casenet_client_fetch_row(c->client, id, &env, &got);
    if (rc == CASENET_OK)
        json_object_set_new(row, "state",
                            json_string(casenet_inbox_state_name(CASENET_INBOX_FETCHED)));
    casenet_inbox_entry_clear(&got);
    casenet_buf_free(&env);
    return rc;
}

/* Settles the queued forwarded receipts of a page (settle_receipt) and adds
 * "deadlines" to its rows that still owe a receipt (this member's own row:
 * one GetStatus each, at most a page of them), for the inbox's countdowns. A
 * row whose status cannot be read goes without. */
static void add_deadlines(struct console *c, json_t *rows)
{
    pthread_mutex_lock(&c->net_lock);
    for (size_t i = 0; c->client && i < json_array_size(rows); i++) {
        json_t *row = json_array_get(rows, i);
        const char *state = json_string_value(json_object_get(row, "state"));
        const char *kind = json_string_value(json_object_get(row, "kind"));
        uint8_t id[16];
        if (state && kind && strcmp(kind, "receipt") == 0 && strcmp(state, "queued") == 0 &&
            cli_parse_id16(json_string_value(json_object_get(row, "id")), id)) {
            if (settle_receipt(c, row, id) == CASENET_ETIMEDOUT) {
                console_client_failed(c, CASENET_ETIMEDOUT);
                break;
            }
            continue;
        }
        if (!state || !kind || strcmp(kind, "receipt") == 0 || strcmp(kind, "escalation") == 0 ||
            strcmp(kind, "dead-letter") == 0 ||
            !(strcmp(state, "queued") == 0 || strcmp(state, "fetched") == 0 ||
              strcmp(state, "delivered") == 0) ||
            !cli_parse_id16(json_string_value(json_object_get(row, "id")), id))
            continue;
        casenet_message_status st = {0};
        int rc = casenet_client_status(c->client, id, &st);
        if (rc == CASENET_OK && st.n_recipients == 1)
            json_object_set_new(
                row, "deadlines",
                deadlines_json(st.recipients[0].deadlines, st.recipients[0].n_deadlines));
        casenet_message_status_clear(&st);
        if (rc == CASENET_ETIMEDOUT) {
            console_client_failed(c, rc);
            break;
        }
    }
    pthread_mutex_unlock(&c->net_lock);
}

static json_t *recipients_json(struct console *c, const casenet_message_status *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < s->n_recipients; i++) {
        const casenet_recipient_status *rs = &s->recipients[i];
        json_t *steps = json_array();
        for (size_t k = 0; k < rs->n_steps; k++) {
            const casenet_step *st = &rs->steps[k];
            json_t *so = json_pack("{s:s, s:I, s:s}", "state", casenet_inbox_state_name(st->state),
                                   "at", (json_int_t)st->at_ms, "actor", st->actor);
            json_t *rj = receipt_json(c, &st->receipt);
            if (so && rj) {
                /* the receipt must name this message and this recipient */
                casenet_receipt chk;
                bool match = casenet_receipt_verify(c->home->dir, st->receipt.data, st->receipt.len,
                                                    &chk) == CASENET_OK &&
                             memcmp(chk.message_id, s->message_id, 16) == 0 &&
                             strcmp(chk.recipient, rs->recipient) == 0;
                if (!match)
                    json_object_set_new(rj, "verified", json_false());
                json_object_set_new(so, "receipt", rj);
            } else {
                json_decref(rj);
            }
            json_array_append_new(steps, so);
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", rs->recipient,
                                             "name", display_name(c, rs->recipient), "state",
                                             casenet_inbox_state_name(rs->state), "steps", steps,
                                             "deadlines",
                                             deadlines_json(rs->deadlines, rs->n_deadlines)));
    }
    return arr;
}

static bool overdue(const casenet_message_status *s, int64_t now)
{
    for (size_t i = 0; i < s->n_recipients; i++) {
        for (size_t k = 0; k < s->recipients[i].n_deadlines; k++) {
            const casenet_deadline *d = &s->recipients[i].deadlines[k];
            if (d->kind == CASENET_DEADLINE_EXPIRE)
                continue;
            if (d->state == CASENET_DEADLINE_BREACHED ||
                (d->state == CASENET_DEADLINE_PENDING && d->due_at_ms < now))
                return true;
        }
    }
    return false;
}

static json_t *status_json(struct console *c, const casenet_message_status *s)
{
    casenet_submit_receipt br;
    bool br_ok = s->broker_receipt.len &&
                 casenet_submit_receipt_verify(c->home->dir, s->broker_receipt.data,
                                               s->broker_receipt.len, &br) == CASENET_OK &&
                 memcmp(br.message_id, s->message_id, 16) == 0;
    json_t *o = json_pack(
        "{s:o, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:b, s:o}", "id", console_hex16(s->message_id),
        "sender", s->sender, "kind", casenet_kind_name(s->kind), "urgency",
        s->urgency ? casenet_urgency_name(s->urgency) : "standard", "message_status",
        casenet_msg_status_name(s->status ? (int)s->status : CASENET_MSG_ACTUAL), "created_at",
        (json_int_t)s->created_at_ms, "received_at", (json_int_t)s->received_at_ms,
        "broker_receipt_verified", br_ok, "overdue", overdue(s, cn_now_ms()), "recipients",
        recipients_json(c, s));
    if (o && s->has_case_ref)
        json_object_set_new(o, "case", console_hex16(s->case_ref));
    if (o && br_ok)
        json_object_set_new(o, "audit_index", json_integer((json_int_t)br.audit_index));
    return o;
}

static void api_status(struct console *c, const uint8_t id[16], struct console_resp *out)
{
    casenet_message_status s = {0};
    pthread_mutex_lock(&c->net_lock);
    int rc = console_client(c);
    if (rc == CASENET_OK)
        rc = casenet_client_status(c->client, id, &s);
    if (rc != CASENET_OK)
        console_fail(out, c, rc, CLI_BROKER, "cannot get the message's status");
    pthread_mutex_unlock(&c->net_lock);
    json_t *o = rc == CASENET_OK ? status_json(c, &s) : NULL;
    if (o)
        console_attach_sent_view(c, id, o);
    if (rc == CASENET_OK)
        console_ok(out, o);
    casenet_message_status_clear(&s);
}

/* ------------------------------------------------------------ sent */

static int cmp_sent(const void *a, const void *b)
{
    json_t *const *x = a, *const *y = b;
    int ox = json_is_true(json_object_get(*x, "overdue")),
        oy = json_is_true(json_object_get(*y, "overdue"));
    if (ox != oy)
        return oy - ox;
    json_int_t cx = json_integer_value(json_object_get(*x, "created_at")),
               cy = json_integer_value(json_object_get(*y, "created_at"));
    return cx < cy ? 1 : cx > cy ? -1 : 0;
}

static void api_sent(struct console *c, const struct console_req *r, struct console_resp *out)
{
    bool open_only = console_arg(r, "open") && strcmp(console_arg(r, "open"), "1") == 0;
    size_t cap = 0, n_all = 0;
    json_t **all = NULL;
    pthread_mutex_lock(&c->net_lock);
    int rc = console_client(c);
    uint64_t cursor = 0;
    bool more = rc == CASENET_OK;
    while (rc == CASENET_OK && more && n_all < LIST_CAP) {
        casenet_message_status *rows = NULL;
        size_t n = 0;
        uint64_t next = cursor;
        rc = casenet_client_list_sent(c->client, open_only, 0, cursor, PAGE, &rows, &n, &next,
                                      &more);
        for (size_t i = 0; rc == CASENET_OK && i < n; i++) {
            if (n_all == cap) {
                size_t nc = cap ? cap * 2 : 64;
                json_t **na = realloc(all, nc * sizeof *na);
                if (!na) {
                    rc = CASENET_ENOMEM;
                    break;
                }
                all = na;
                cap = nc;
            }
            all[n_all++] = status_json(c, &rows[i]);
        }
        casenet_message_statuses_free(rows, n);
        if (next <= cursor)
            break;
        cursor = next;
    }
    if (rc != CASENET_OK)
        console_fail(out, c, rc, CLI_BROKER, "cannot list the sent messages");
    pthread_mutex_unlock(&c->net_lock);
    if (rc == CASENET_OK) {
        if (n_all > 1)
            qsort(all, n_all, sizeof *all, cmp_sent);
        json_t *arr = json_array();
        for (size_t i = 0; i < n_all && i < 500; i++)
            json_array_append(arr, all[i]);
        console_ok(out, json_pack("{s:o, s:I}", "rows", arr, "total", (json_int_t)n_all));
    }
    for (size_t i = 0; i < n_all; i++)
        json_decref(all[i]);
    free(all);
}

/* ------------------------------------------------------------ one message */

static json_t *info_json(struct console *c, const casenet_message_info *info)
{
    json_t *rcpts = json_array();
    for (size_t i = 0; i < info->n_recipients; i++)
        json_array_append_new(rcpts, json_pack("{s:s, s:s}", "id", info->recipients[i], "name",
                                               display_name(c, info->recipients[i])));
    char hash[65];
    cn_hex(info->envelope_hash, sizeof info->envelope_hash, hash);
    json_t *o = json_pack(
        "{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:s}", "id",
        console_hex16(info->message_id), "from", info->sender, "from_name",
        display_name(c, info->sender), "sign_key_id", info->sign_key_id, "signature", "verified",
        "kind", casenet_kind_name(info->kind), "urgency",
        info->urgency ? casenet_urgency_name(info->urgency) : "standard", "message_status",
        casenet_msg_status_name(info->status ? (int)info->status : CASENET_MSG_ACTUAL),
        "created_at", (json_int_t)info->created_at_ms, "expires_at",
        (json_int_t)info->expires_at_ms, "recipients", rcpts, "envelope_hash", hash);
    if (o && info->has_case_ref)
        json_object_set_new(o, "case", console_hex16(info->case_ref));
    if (o && info->has_in_reply_to)
        json_object_set_new(o, "in_reply_to", console_hex16(info->in_reply_to));
    return o;
}

static void api_message(struct console *c, const struct console_req *r, const uint8_t id[16],
                        struct console_resp *out)
{
    if (!console_need_role(out, r, ROLE_CASEWORKER))
        return;
    casenet_buf env = {0}, payload = {0}, pj = {0};
    casenet_message_info info = {0};
    casenet_message_status st = {0};
    bool have_status = false;
    pthread_mutex_lock(&c->net_lock);
    int rc = console_fetch(c, id, &env, out);
    if (rc != CASENET_OK) {
    } else {
        have_status = casenet_client_status(c->client, id, &st) == CASENET_OK;
    }
    pthread_mutex_unlock(&c->net_lock);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = casenet_open(c->home->keys, c->home->dir, env.data, env.len, &info, &payload);
    if (rc == CASENET_OK)
        rc = casenet_payload_to_json(payload.data, payload.len, &pj);
    if (rc != CASENET_OK) {
        console_fail(out, c, rc, CLI_VERIFY, "the message does not verify or cannot be opened");
        goto cleanup;
    }
    char idhex[33], cref[33];
    cli_id16_hex(id, idhex);
    cli_id16_hex(info.case_ref, cref);
    if (console_ledger_add(c->db, r->who->user, "read", idhex, info.has_case_ref ? cref : NULL) !=
        CASENET_OK) {
        console_error(out, 500, "IO", "the disclosure ledger cannot be written: nothing shown",
                      NULL);
        goto cleanup;
    }
    json_t *o = info_json(c, &info);
    json_t *p = json_loadb((const char *)pj.data, pj.len, 0, NULL);
    if (o && p)
        json_object_set_new(o, "payload", p);
    else
        json_decref(p);
    if (o && have_status) {
        json_object_set_new(o, "recipients_status", recipients_json(c, &st));
    }
    if (o)
        console_attach_view(o, &payload, &info);
    console_ok(out, o);
cleanup:
    casenet_message_status_clear(&st);
    casenet_message_info_clear(&info);
    casenet_buf_free(&pj);
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
}

/* ------------------------------------------------------------ directory, ledger */

/* The kinds a person may send through the console, for "may_send". */
static const casenet_kind sendable[] = {
    CASENET_KIND_REFERRAL,      CASENET_KIND_STATUS,           CASENET_KIND_INFO_REQUEST,
    CASENET_KIND_INFO_RESPONSE, CASENET_KIND_TAKEDOWN_REQUEST, CASENET_KIND_TAKEDOWN_RESULT,
    CASENET_KIND_CORRECTION,    CASENET_KIND_WITHDRAW,         CASENET_KIND_ERASE,
};

/* The kinds this member may send to m by the role matrix (PROTOCOL.md
 * section 6.1): none to itself, none to an inactive member. */
static json_t *may_send_json(struct console *c, const casenet_member *self, bool have_self,
                             const casenet_member *m)
{
    json_t *arr = json_array();
    if (!have_self || strcmp(m->id, c->home->member) == 0 || m->status != CASENET_MEMBER_ACTIVE)
        return arr;
    for (size_t k = 0; k < sizeof sendable / sizeof sendable[0]; k++) {
        if (casenet_role_may_send(self, (int)sendable[k], m))
            json_array_append_new(arr, json_string(casenet_kind_name(sendable[k])));
    }
    return arr;
}

static void api_directory(struct console *c, struct console_resp *out)
{
    json_t *arr = json_array();
    casenet_member self;
    bool have_self = casenet_directory_find(c->home->dir, c->home->member, &self) == CASENET_OK;
    size_t n = casenet_directory_count(c->home->dir);
    for (size_t i = 0; i < n; i++) {
        casenet_member m;
        if (casenet_directory_at(c->home->dir, i, &m) != CASENET_OK)
            continue;
        json_t *roles = json_array(), *groups = json_array();
        for (size_t k = 0; k < m.n_roles; k++)
            json_array_append_new(roles, json_string(m.roles[k]));
        for (size_t k = 0; k < m.n_groups; k++)
            json_array_append_new(groups, json_string(m.groups[k]));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "id", m.id, "name",
                                             m.display_name ? m.display_name : m.id, "status",
                                             m.status == CASENET_MEMBER_ACTIVE      ? "active"
                                             : m.status == CASENET_MEMBER_SUSPENDED ? "suspended"
                                                                                    : "revoked",
                                             "roles", roles, "groups", groups, "may_send",
                                             may_send_json(c, &self, have_self, &m)));
    }
    console_ok(out,
               json_pack("{s:s, s:I, s:I, s:o}", "self", c->home->member, "version",
                         (json_int_t)casenet_directory_version(c->home->dir), "expires_at",
                         (json_int_t)casenet_directory_expires_at(c->home->dir), "members", arr));
}

static void api_ledger(struct console *c, const struct console_req *r, struct console_resp *out)
{
    if (!console_need_role(out, r, ROLE_SUPERVISOR))
        return;
    char *rows = console_ledger_json(c->db, 10000);
    json_t *arr = rows ? json_loads(rows, 0, NULL) : NULL;
    free(rows);
    if (!arr)
        return console_error(out, 500, "IO", "cannot read the ledger", NULL);
    console_ok(out, json_pack("{s:o}", "rows", arr));
}

/* ------------------------------------------------------------ routing */

void console_api(struct console *c, const struct console_req *r, struct console_resp *out)
{
    bool get = strcmp(r->method, "GET") == 0, post = strcmp(r->method, "POST") == 0;
    const char *p = r->path;
    if (get && strcmp(p, "/inbox") == 0)
        return api_inbox(c, r, out);
    if (get && strcmp(p, "/sent") == 0)
        return api_sent(c, r, out);
    if (get && strcmp(p, "/directory") == 0)
        return api_directory(c, out);
    if (get && strcmp(p, "/ledger") == 0)
        return api_ledger(c, r, out);
    if (post && strcmp(p, "/messages") == 0)
        return console_api_send(c, r, out);
    if (strncmp(p, "/coord/", 7) == 0)
        return console_coord_api(c, r, out);
    if (strncmp(p, "/uploads", 8) == 0)
        return console_attach_uploads(c, r, out);
    if (strcmp(p, "/bank") == 0)
        return console_bank_api(c, r, out);
    if (strncmp(p, "/messages/", 10) == 0 && strlen(p) >= 42) {
        char hex[33];
        memcpy(hex, p + 10, 32);
        hex[32] = '\0';
        uint8_t id[16];
        const char *rest = p + 42;
        if (cli_parse_id16(hex, id)) {
            if (get && rest[0] == '\0')
                return api_message(c, r, id, out);
            if (get && strcmp(rest, "/status") == 0)
                return api_status(c, id, out);
            if (post && strcmp(rest, "/receipts") == 0)
                return console_api_receipt(c, r, id, out);
            if (post && strcmp(rest, "/reveal") == 0)
                return console_api_reveal(c, r, id, out);
            uint64_t k = 0;
            if (get && strncmp(rest, "/attachments/", 13) == 0 &&
                cli_parse_uint(rest + 13, 0, CASENET_MAX_BLOBS - 1, &k))
                return console_attach_download(c, r, id, (unsigned)k, out);
        }
    }
    console_error(out, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such API endpoint", NULL);
}
