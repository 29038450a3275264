/* cmd_cases.c - where referrals stand: `status ID` (one message's timeline
 * per recipient, each step with who signed it, verified here), `cases` (the
 * member's own sent messages) and `overdue` (the network's breached
 * deadlines, for coordinators). */
#include "cli.h"
#include "commands.h"
#include "home.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX 100

/* Options every command here takes. */
struct case_opts {
    const char *home;
    const char *broker;
    int timeout_ms;
    bool json, wide;
};

/* Handles --json, --home, --broker, --timeout; -1 when c was one of them
 * (or another option the caller handles: returns CLI_EUSAGE only for '?'). */
static int common_opt(int c, struct case_opts *o)
{
    switch (c) {
    case 'j':
        o->json = true;
        return -1;
    case 'w':
        o->wide = true;
        return -1;
    case 'H':
        o->home = optarg;
        return -1;
    case 'b':
        o->broker = optarg;
        return -1;
    case 't':
        if (!net_parse_timeout(optarg, &o->timeout_ms))
            return cli_usage_error("--timeout wants 1..3600 seconds, not '%s'", optarg);
        return -1;
    default:
        return CLI_EUSAGE;
    }
}

/* Opens the home and connects. */
static int open_and_connect(const struct case_opts *o, char **path, struct home **h,
                            casenet_client **cl)
{
    *path = home_path(o->home);
    if (!*path)
        return CLI_EFAIL;
    int ex = home_open(*path, h);
    if (ex != CLI_OK)
        return ex;
    return net_connect(*h, o->broker, o->timeout_ms, cl);
}

static void hex16(const uint8_t id[16], char out[33])
{
    cli_id16_hex(id, out);
}

static json_t *iso_or_null(int64_t ms)
{
    if (ms == 0)
        return json_null();
    char t[40];
    cli_format_iso(ms, t, sizeof t);
    return json_string(t);
}

static int print_json(json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text)
        return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "cannot build the JSON output");
    printf("%s\n", text);
    free(text);
    return CLI_OK;
}

/* A deadline in breach whose row has not been taken yet. */
static bool overdue_now(const casenet_recipient_status *r)
{
    for (size_t i = 0; i < r->n_deadlines; i++) {
        const casenet_deadline *d = &r->deadlines[i];
        if (d->state != CASENET_DEADLINE_BREACHED)
            continue;
        if (d->kind == CASENET_DEADLINE_DELIVER &&
            (r->state == CASENET_INBOX_QUEUED || r->state == CASENET_INBOX_FETCHED))
            return true;
        if (d->kind == CASENET_DEADLINE_ACCEPT && r->state <= CASENET_INBOX_DELIVERED)
            return true;
    }
    return false;
}

static json_t *deadlines_json(const casenet_recipient_status *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_deadlines; i++) {
        const casenet_deadline *d = &r->deadlines[i];
        char nid[33];
        if (d->has_notice)
            hex16(d->notice_id, nid);
        json_t *o = json_pack(
            "{s:s, s:o, s:s, s:o, s:s?}", "kind", casenet_deadline_kind_name(d->kind), "due_at",
            iso_or_null(d->due_at_ms), "state", casenet_deadline_state_name(d->state), "settled_at",
            iso_or_null(d->settled_at_ms), "notice", d->has_notice ? nid : NULL);
        json_array_append_new(a, o);
    }
    return a;
}

static void print_deadlines_text(const casenet_recipient_status *r)
{
    for (size_t i = 0; i < r->n_deadlines; i++) {
        const casenet_deadline *d = &r->deadlines[i];
        char due[64], at[64], nid[33];
        cli_format_time(d->due_at_ms, false, due, sizeof due);
        printf("    deadline %-8s due %s  %s", casenet_deadline_kind_name(d->kind), due,
               d->state == CASENET_DEADLINE_BREACHED ? "BREACHED"
                                                     : casenet_deadline_state_name(d->state));
        if (d->state == CASENET_DEADLINE_BREACHED) {
            cli_format_time(d->settled_at_ms, false, at, sizeof at);
            printf(" (escalated at %s", at);
            if (d->has_notice) {
                hex16(d->notice_id, nid);
                printf(", notice %s", nid);
            }
            printf(")");
        }
        printf("\n");
    }
}

/* ------------------------------------------------------------ status */

static const char status_usage[] =
    "usage: casenet status ID [--json] [--home DIR] [--broker ENDPOINT]\n"
    "                         [--timeout SECONDS]\n"
    "\n"
    "Shows where message ID stands with each recipient: every step (queued,\n"
    "fetched, delivered, accepted or declined, completed, dead) with its time\n"
    "and who signed it, and the deadlines (met, pending, breached and when it\n"
    "was escalated). The broker's receipt of the submission and every\n"
    "recipient's signed receipt are verified against the directory; if one\n"
    "does not verify the output says so and the exit code is 3.\n"
    "\n"
    "The sender of the message and coordinators see every recipient; a\n"
    "recipient sees its own row; for anyone else the message does not exist.\n"
    "\n"
    "options:\n"
    "  -j, --json               one JSON object\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet status 3f2a9c0e5b7d41e8a6c2d9f0b1e4a7c3\n";

/* Verifies a step's receipt: signed by the row's recipient for this message
 * with the step's status. */
static bool step_receipt_ok(const struct home *h, const casenet_message_status *m,
                            const casenet_recipient_status *r, const casenet_step *st,
                            casenet_receipt *out)
{
    memset(out, 0, sizeof *out);
    if (st->receipt.len == 0)
        return false;
    return casenet_receipt_verify(h->dir, st->receipt.data, st->receipt.len, out) == CASENET_OK &&
           memcmp(out->message_id, m->message_id, sizeof out->message_id) == 0 &&
           memcmp(out->envelope_hash, m->envelope_hash, sizeof out->envelope_hash) == 0 &&
           strcmp(out->recipient, r->recipient) == 0 &&
           (int)out->status + (CASENET_INBOX_DELIVERED - CASENET_RECEIPT_DELIVERED) ==
               (int)st->state;
}

static bool broker_receipt_ok(const struct home *h, const casenet_message_status *m)
{
    casenet_submit_receipt sr;
    return m->broker_receipt.len > 0 &&
           casenet_submit_receipt_verify(h->dir, m->broker_receipt.data, m->broker_receipt.len,
                                         &sr) == CASENET_OK &&
           memcmp(sr.message_id, m->message_id, sizeof sr.message_id) == 0 &&
           memcmp(sr.envelope_hash, m->envelope_hash, sizeof sr.envelope_hash) == 0;
}

static bool needs_receipt(casenet_inbox_state s)
{
    return s >= CASENET_INBOX_DELIVERED && s <= CASENET_INBOX_COMPLETED;
}

/* Prints the status; *bad set when a signature does not verify. */
static int print_status(const struct home *h, const casenet_message_status *m, bool json, bool *bad)
{
    char id[33], ref[33];
    hex16(m->message_id, id);
    bool broker_ok = broker_receipt_ok(h, m);
    *bad = !broker_ok;
    const char *urgency = m->urgency ? casenet_urgency_name(m->urgency) : "standard";
    const char *mstatus = casenet_msg_status_name(m->status ? (int)m->status : CASENET_MSG_ACTUAL);
    json_t *recips = json ? json_array() : NULL;
    if (!json) {
        char when[64];
        cli_format_time(m->received_at_ms, false, when, sizeof when);
        printf("message %s  %s  %s%s%s%s\n", id, casenet_kind_name(m->kind), urgency,
               m->status > CASENET_MSG_ACTUAL ? "  [" : "",
               m->status > CASENET_MSG_ACTUAL ? mstatus : "",
               m->status > CASENET_MSG_ACTUAL ? "]" : "");
        printf("from %s, accepted by the broker at %s (broker receipt %s)\n", cli_safe(m->sender),
               when, broker_ok ? "verified" : "INVALID");
        if (m->has_case_ref) {
            hex16(m->case_ref, ref);
            printf("case %s\n", ref);
        }
        if (m->has_in_reply_to) {
            hex16(m->in_reply_to, ref);
            printf("in reply to %s\n", ref);
        }
        if (m->expires_at_ms) {
            cli_format_time(m->expires_at_ms, false, when, sizeof when);
            printf("expires %s\n", when);
        }
    }
    for (size_t i = 0; i < m->n_recipients; i++) {
        const casenet_recipient_status *r = &m->recipients[i];
        json_t *steps = json ? json_array() : NULL;
        if (!json)
            printf("\n%s: %s%s\n", cli_safe(r->recipient), casenet_inbox_state_name(r->state),
                   overdue_now(r) ? "  (OVERDUE)" : "");
        for (size_t j = 0; j < r->n_steps; j++) {
            const casenet_step *st = &r->steps[j];
            casenet_receipt rc;
            bool signed_step = needs_receipt(st->state);
            bool ok = signed_step && step_receipt_ok(h, m, r, st, &rc);
            if (signed_step && !ok)
                *bad = true;
            const char *actor = st->actor[0] ? cli_safe(st->actor) : "the broker";
            if (json) {
                json_t *o = json_pack(
                    "{s:s, s:o, s:s?}", "state", casenet_inbox_state_name(st->state), "at",
                    iso_or_null(st->at_ms), "actor", st->actor[0] ? st->actor : NULL);
                if (o && signed_step) {
                    json_object_set_new(o, "signed_by",
                                        ok ? json_string(rc.recipient) : json_null());
                    json_object_set_new(o, "receipt_verified", json_boolean(ok));
                    if (ok && rc.reason[0])
                        json_object_set_new(o, "reason", json_string(rc.reason));
                    if (ok && rc.outcome)
                        json_object_set_new(o, "outcome",
                                            json_string(casenet_outcome_name(rc.outcome)));
                    if (ok && rc.has_note) {
                        char note[33];
                        cli_id16_hex(rc.note_id, note);
                        json_object_set_new(o, "note", json_string(note));
                    }
                }
                if (o && j == 0 && st->state == CASENET_INBOX_QUEUED)
                    json_object_set_new(o, "broker_receipt_verified", json_boolean(broker_ok));
                json_array_append_new(steps, o);
                continue;
            }
            char at[64];
            cli_format_time(st->at_ms, false, at, sizeof at);
            printf("    %s  %-9s ", at, casenet_inbox_state_name(st->state));
            if (signed_step)
                printf("signed by %s (%s)", ok ? rc.recipient : actor,
                       ok ? "verified" : "receipt INVALID");
            else if (st->state == CASENET_INBOX_QUEUED)
                printf("sent by %s, receipt signed by the broker", actor);
            else if (st->state == CASENET_INBOX_DEAD)
                printf("expired undelivered (the broker)");
            else
                printf("by %s", actor);
            if (ok && rc.reason[0])
                printf(": %s", rc.reason);
            if (ok && rc.outcome)
                printf(": %s", casenet_outcome_name(rc.outcome));
            if (ok && rc.has_note) {
                char note[33];
                cli_id16_hex(rc.note_id, note);
                printf(" (note %s)", note);
            }
            printf("\n");
        }
        if (json) {
            json_t *o = json_pack("{s:s, s:s, s:b, s:o, s:o}", "recipient", r->recipient, "state",
                                  casenet_inbox_state_name(r->state), "overdue", overdue_now(r),
                                  "steps", steps, "deadlines", deadlines_json(r));
            json_array_append_new(recips, o);
        } else {
            print_deadlines_text(r);
        }
    }
    if (!json)
        return CLI_OK;
    char ref2[33];
    if (m->has_in_reply_to)
        hex16(m->in_reply_to, ref2);
    if (m->has_case_ref)
        hex16(m->case_ref, ref);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s?, s:s?, s:b, s:o}", "id", id, "from",
        m->sender, "kind", casenet_kind_name(m->kind), "urgency", urgency, "message_status",
        mstatus, "created_at", iso_or_null(m->created_at_ms), "received_at",
        iso_or_null(m->received_at_ms), "expires_at", iso_or_null(m->expires_at_ms), "case",
        m->has_case_ref ? ref : NULL, "in_reply_to", m->has_in_reply_to ? ref2 : NULL,
        "broker_receipt_verified", broker_ok, "recipients", recips);
    return print_json(o);
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},         {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct case_opts o = {.timeout_ms = 10000};
    int c;
    while ((c = cli_getopt(argc, argv, "jH:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(status_usage);
        int ex = common_opt(c, &o);
        if (ex >= 0)
            return ex;
    }
    if (optind != argc - 1)
        return cli_usage_error("expected exactly one message ID");
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    if (!cli_id_arg_ok(argv[optind]))
        return cli_usage_error(ID_ARG_WANTED, argv[optind]);
    char *path = NULL;
    struct home *h = NULL;
    casenet_client *cl = NULL;
    casenet_message_status m = {0};
    int ex = open_and_connect(&o, &path, &h, &cl);
    if (ex == CLI_OK)
        ex = net_resolve_id(cl, argv[optind], true, id);
    if (ex != CLI_OK)
        goto cleanup;
    int rc = casenet_client_status(cl, id, &m);
    if (rc != CASENET_OK) {
        ex = net_fail(cl, rc, "GetStatus failed");
        goto cleanup;
    }
    bool bad = false;
    ex = print_status(h, &m, o.json, &bad);
    if (fflush(stdout) != 0) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot write to stdout");
        goto cleanup;
    }
    if (ex == CLI_OK && bad)
        ex = cli_fail(CLI_VERIFY, CASENET_EBADSIG, "the broker or a member may be lying",
                      "a receipt in the timeline does not verify against the directory");
cleanup:
    casenet_message_status_clear(&m);
    casenet_client_free(cl);
    home_free(h);
    free(path);
    return ex;
}

/* ------------------------------------------------------------ cases */

static const char cases_usage[] =
    "usage: casenet cases [--open] [--kind KIND] [--json] [--wide] [--home DIR]\n"
    "                     [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Lists the messages this member sent, oldest first, and where each stands\n"
    "with every recipient. A recipient marked '!' has a breached deadline and\n"
    "has still not taken the message (see 'casenet status ID').\n"
    "\n"
    "options:\n"
    "  -o, --open               only messages a recipient has not settled yet\n"
    "                           (referrals, info and takedown requests: until\n"
    "                           declined or completed; other kinds: until delivered)\n"
    "  -k, --kind KIND          only this kind (referral, takedown-request, ...)\n"
    "  -w, --wide               whole ids and times, one line per message\n"
    "                           (else 100 columns, recipients wrapped)\n"
    "  -j, --json               JSON Lines: id, kind, urgency, message_status,\n"
    "                           sent_at, case, recipients [{recipient, state,\n"
    "                           overdue, deadlines}]\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet cases --open --kind referral\n";

static void print_case(const casenet_message_status *m, bool json, bool wide)
{
    char id[33], ref[33];
    hex16(m->message_id, id);
    const char *urgency = m->urgency ? casenet_urgency_name(m->urgency) : "standard";
    const char *mstatus = casenet_msg_status_name(m->status ? (int)m->status : CASENET_MSG_ACTUAL);
    if (json) {
        json_t *rs = json_array();
        for (size_t i = 0; rs && i < m->n_recipients; i++) {
            const casenet_recipient_status *r = &m->recipients[i];
            json_array_append_new(rs,
                                  json_pack("{s:s, s:s, s:b, s:o}", "recipient", r->recipient,
                                            "state", casenet_inbox_state_name(r->state), "overdue",
                                            overdue_now(r), "deadlines", deadlines_json(r)));
        }
        if (m->has_case_ref)
            hex16(m->case_ref, ref);
        (void)print_json(json_pack("{s:s, s:s, s:s, s:s, s:o, s:s?, s:o}", "id", id, "kind",
                                   casenet_kind_name(m->kind), "urgency", urgency, "message_status",
                                   mstatus, "sent_at", iso_or_null(m->received_at_ms), "case",
                                   m->has_case_ref ? ref : NULL, "recipients", rs));
        return;
    }
    /* The recipients follow; past CLI_TABLE_WIDTH (unless wide) they go on
     * on indented lines, so that none is cut off. */
    char when[64], line[CLI_TABLE_WIDTH * 4];
    cli_table_time(m->received_at_ms, wide, when, sizeof when);
    cli_table_id(m->message_id, wide, id);
    int len =
        snprintf(line, sizeof line, "%-*s  %-16s  %-15s  %-11s ", wide ? 32 : CLI_TABLE_ID_DIGITS,
                 id, casenet_kind_name(m->kind), urgency, when);
    fputs(line, stdout);
    size_t col = len > 0 ? (size_t)len : 0;
    for (size_t i = 0; i < m->n_recipients; i++) {
        const casenet_recipient_status *r = &m->recipients[i];
        len = snprintf(line, sizeof line, " %s=%s%s", cli_safe(r->recipient),
                       casenet_inbox_state_name(r->state), overdue_now(r) ? "!" : "");
        if (!wide && col > 4 && col + (size_t)len > CLI_TABLE_WIDTH) {
            fputs("\n    ", stdout);
            col = 4;
        }
        fputs(line, stdout);
        col += len > 0 ? (size_t)len : 0;
    }
    if (m->status == CASENET_MSG_EXERCISE || m->status == CASENET_MSG_TEST)
        printf("%s[%s]", !wide && col + strlen(mstatus) + 4 > CLI_TABLE_WIDTH ? "\n    " : "  ",
               mstatus);
    printf("\n");
}

int cmd_cases(int argc, char **argv)
{
    static const struct option opts[] = {
        {"open", no_argument, NULL, 'o'},
        {"kind", required_argument, NULL, 'k'},
        {"wide", no_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'},
        {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct case_opts o = {.timeout_ms = 10000};
    bool open_only = false;
    casenet_kind kind = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "ok:jwH:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(cases_usage);
        if (c == 'o') {
            open_only = true;
            continue;
        }
        if (c == 'k') {
            if (casenet_kind_parse(optarg, &kind) != CASENET_OK || kind == CASENET_KIND_RECEIPT)
                return cli_usage_error("unknown --kind '%s'", optarg);
            continue;
        }
        int ex = common_opt(c, &o);
        if (ex >= 0)
            return ex;
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    char *path = NULL;
    struct home *h = NULL;
    casenet_client *cl = NULL;
    int ex = open_and_connect(&o, &path, &h, &cl);
    if (ex != CLI_OK)
        goto cleanup;
    if (!o.json)
        cli_table_line(o.wide, "%-*s  %-16s  %-15s  %-*s  %s", o.wide ? 32 : CLI_TABLE_ID_DIGITS,
                       "ID", "KIND", "URGENCY", o.wide ? 23 : 11, "SENT", "RECIPIENTS");
    uint64_t cursor = 0, shown = 0;
    bool more = true;
    while (more) {
        casenet_message_status *m = NULL;
        size_t n = 0;
        uint64_t next = cursor;
        int rc =
            casenet_client_list_sent(cl, open_only, kind, cursor, PAGE_MAX, &m, &n, &next, &more);
        if (rc != CASENET_OK) {
            ex = net_fail(cl, rc, "ListSent failed");
            goto cleanup;
        }
        for (size_t i = 0; i < n; i++, shown++)
            print_case(&m[i], o.json, o.wide);
        casenet_message_statuses_free(m, n);
        if (next <= cursor)
            break; /* no progress: never loop forever on a confused broker */
        cursor = next;
    }
    if (fflush(stdout) != 0) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot write to stdout");
        goto cleanup;
    }
    if (!o.json && shown == 0)
        fprintf(stderr, "(no %smessages sent)\n", open_only ? "open " : "");
    ex = CLI_OK;
cleanup:
    casenet_client_free(cl);
    home_free(h);
    free(path);
    return ex;
}

/* ------------------------------------------------------------ overdue */

static const char overdue_usage[] =
    "usage: casenet overdue [--json] [--wide] [--home DIR] [--broker ENDPOINT]\n"
    "                       [--timeout SECONDS]\n"
    "\n"
    "Coordinators: lists every referral whose deliver or accept deadline was\n"
    "breached (and escalated) and that its recipient has still not taken.\n"
    "Actual cases come first; exercise and test messages are counted apart.\n"
    "Other members are refused (exit 5).\n"
    "\n"
    "options:\n"
    "  -w, --wide               every column in full (100 columns otherwise)\n"
    "  -j, --json               JSON Lines: id, recipient, from, kind, urgency,\n"
    "                           message_status, deadline, due_at, escalated_at,\n"
    "                           state, notice, case\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet overdue --json | jq 'select(.message_status == \"actual\")'\n";

static void print_overdue(const casenet_overdue *e, bool json, bool wide)
{
    char id[33], nid[33], ref[33];
    hex16(e->message_id, id);
    if (e->has_notice)
        hex16(e->notice_id, nid);
    if (e->has_case_ref)
        hex16(e->case_ref, ref);
    const char *urgency = e->urgency ? casenet_urgency_name(e->urgency) : "standard";
    const char *mstatus = casenet_msg_status_name(e->status ? (int)e->status : CASENET_MSG_ACTUAL);
    if (json) {
        (void)print_json(json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s?, s:s?}", "id", id, "recipient",
            e->recipient, "from", e->sender, "kind", casenet_kind_name(e->kind), "urgency", urgency,
            "message_status", mstatus, "deadline", casenet_deadline_kind_name(e->deadline),
            "due_at", iso_or_null(e->due_at_ms), "escalated_at", iso_or_null(e->escalated_at_ms),
            "state", casenet_inbox_state_name(e->state), "notice", e->has_notice ? nid : NULL,
            "case", e->has_case_ref ? ref : NULL));
        return;
    }
    char due[64], rcpt[40], from[40];
    cli_format_time(e->due_at_ms, false, due, sizeof due);
    if (wide) {
        printf("%-32s  %-20s  %-20s  %-16s  %-15s  %-8s  %-23s  %s\n", id, cli_safe(e->recipient),
               cli_safe(e->sender), casenet_kind_name(e->kind), urgency,
               casenet_deadline_kind_name(e->deadline), due, casenet_inbox_state_name(e->state));
        return;
    }
    cli_table_time(e->due_at_ms, false, due, sizeof due);
    cli_cell(cli_safe(e->recipient), 14, rcpt, sizeof rcpt);
    cli_cell(cli_safe(e->sender), 14, from, sizeof from);
    id[CLI_TABLE_ID_DIGITS] = '\0';
    cli_table_line(false, "%-10s  %s  %s  %-16s  %-8s  %-11s  %s", id, rcpt, from,
                   casenet_kind_name(e->kind), casenet_deadline_kind_name(e->deadline), due,
                   casenet_inbox_state_name(e->state));
}

int cmd_overdue(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"wide", no_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct case_opts o = {.timeout_ms = 10000};
    int c;
    while ((c = cli_getopt(argc, argv, "jwH:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(overdue_usage);
        int ex = common_opt(c, &o);
        if (ex >= 0)
            return ex;
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    char *path = NULL;
    struct home *h = NULL;
    casenet_client *cl = NULL;
    casenet_overdue *all = NULL;
    size_t n_all = 0;
    int ex = open_and_connect(&o, &path, &h, &cl);
    if (ex != CLI_OK)
        goto cleanup;
    /* Everything first, so that actual rows and drills print apart. */
    uint64_t cursor = 0;
    bool more = true;
    while (more) {
        casenet_overdue *page = NULL;
        size_t n = 0;
        uint64_t next = cursor;
        int rc = casenet_client_list_overdue(cl, cursor, PAGE_MAX, &page, &n, &next, &more);
        if (rc != CASENET_OK) {
            ex = net_fail(cl, rc, "ListOverdue failed");
            goto cleanup;
        }
        casenet_overdue *grown = n ? realloc(all, (n_all + n) * sizeof *all) : all;
        if (n && !grown) {
            free(page);
            ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
            goto cleanup;
        }
        all = grown;
        if (n)
            memcpy(all + n_all, page, n * sizeof *page);
        n_all += n;
        free(page);
        if (next <= cursor)
            break;
        cursor = next;
    }
    size_t n_drill = 0;
    for (size_t i = 0; i < n_all; i++)
        n_drill += all[i].status == CASENET_MSG_EXERCISE || all[i].status == CASENET_MSG_TEST;
    for (int drill = 0; drill < 2; drill++) {
        if (!o.json) {
            printf("%s%s (%zu)\n", drill ? "\n" : "", drill ? "exercise and test" : "actual",
                   drill ? n_drill : n_all - n_drill);
            if (o.wide)
                printf("%-32s  %-20s  %-20s  %-16s  %-15s  %-8s  %-23s  %s\n", "ID", "RECIPIENT",
                       "FROM", "KIND", "URGENCY", "DEADLINE", "DUE", "STATE");
            else
                cli_table_line(false, "%-10s  %-14s  %-14s  %-16s  %-8s  %-11s  %s", "ID",
                               "RECIPIENT", "FROM", "KIND", "DEADLINE", "DUE", "STATE");
        }
        for (size_t i = 0; i < n_all; i++) {
            bool is_drill =
                all[i].status == CASENET_MSG_EXERCISE || all[i].status == CASENET_MSG_TEST;
            if (is_drill == (drill == 1))
                print_overdue(&all[i], o.json, o.wide);
        }
    }
    if (fflush(stdout) != 0) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot write to stdout");
        goto cleanup;
    }
    ex = CLI_OK;
cleanup:
    free(all);
    casenet_client_free(cl);
    home_free(h);
    free(path);
    return ex;
}
