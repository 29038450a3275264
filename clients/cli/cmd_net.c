/* cmd_net.c - the online subcommands, through the broker: `send` (seal and
 * submit, wait for the broker's verified receipt), `inbox`, `read` and `ack`
 * (the connection helpers every online subcommand shares: net.c). */
#include "cli.h"
#include "commands.h"
#include "home.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENVELOPE_MAX (CASENET_MAX_PAYLOAD_BYTES + 1024u * 1024u)
#define PAGE_MAX     100

/* An id in hex, as a value (for printf arguments). */
struct hex32 {
    char s[33];
};
static struct hex32 hex_of(const uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    struct hex32 h;
    cli_id16_hex(id, h.s);
    return h;
}

/* Options of inbox, read and ack. */
struct net_opts {
    const char *home;
    const char *broker;
    int timeout_ms;
};

/* ------------------------------------------------------------ send */

static const char send_usage[] =
    "usage: casenet send --to ID[,ID...|@group] --kind KIND [--urgency U]\n"
    "                    [--status actual|exercise|test] [--case HEX32]\n"
    "                    [--reply-to HEX32] [--expires-in DURATION] [--home DIR]\n"
    "                    [--broker ENDPOINT] [--timeout SECONDS] [--attach FILE]...\n"
    "                    [--quiet]\n"
    "                    < payload.json\n"
    "\n"
    "Seals the payload (protobuf JSON on stdin) like 'casenet seal' and submits it\n"
    "to the broker. Prints the message id (32 hex digits) on the first line of\n"
    "stdout only once the broker's signed receipt has been verified; on a timeout\n"
    "the same bytes are resent (the message id makes that safe). When the broker\n"
    "answers STALE_DIRECTORY (a recipient's key was replaced in a directory newer\n"
    "than the home's), it pulls the directory, seals the message again under a\n"
    "new message id and submits it once more, and says so on stderr. A payload\n"
    "without its kind's required fields, or a kind the sender's or a recipient's\n"
    "roles do not allow (proto/PROTOCOL.md section 6), is refused before sending.\n"
    "Each --attach FILE is encrypted with its own key, uploaded in 1 MiB chunks\n"
    "(resuming from what the broker holds if it goes away meanwhile) and named,\n"
    "with its SHA-256 and key, in the sealed payload; the message is submitted\n"
    "once every file is up. A file whose md5/sha1/sha256 is in the home's hash\n"
    "bank, or an image or video from a member without a role or group in\n"
    "$CASENET_ATTACH_MEDIA_ROLES (default police), is refused first (exit 3).\n"
    "While files upload, a progress bar (bytes, percent, MB/s) is redrawn on one\n"
    "line of stderr when stderr is a terminal; --quiet leaves it out.\n"
    "\n"
    "options:\n"
    "  -T, --to ID|@GROUP       recipients: member ids or @group (but you);\n"
    "                           comma-separated and/or repeated; never your own id\n"
    "  -k, --kind KIND          referral, status, info-request, info-response,\n"
    "                           takedown-request, takedown-result, correction,\n"
    "                           withdraw, erase (must match the payload)\n"
    "  -u, --urgency U          emergency, urgent-takedown, standard, info; a\n"
    "                           referral's comes from its payload (a different\n"
    "                           --urgency is refused), other kinds default to\n"
    "                           standard\n"
    "  -s, --status S           actual (default), exercise or test (drills)\n"
    "  -c, --case HEX32         case thread reference (32 hex digits)\n"
    "  -r, --reply-to HEX32     the message id this answers\n"
    "  -e, --expires-in DUR     dead-lettered if undelivered after 90s, 15m, 12h, 7d\n"
    "  -A, --attach FILE        attach a file (repeatable; evidence documents, never\n"
    "                           abusive media itself)\n"
    "  -q, --quiet              no upload progress bar on a terminal\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  id=$(casenet send --to vn.police.a05 --kind referral < referral.json)\n";

/* After STALE_DIRECTORY: pulls the broker's directory (verified, never
 * older than the home's), says so, and seals a's payload again into *env
 * (a new message id: the refused one was not stored). An exit code. */
static int reseal_stale(struct home *h, casenet_client *c, const struct seal_args *a,
                        casenet_buf *env, uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    uint64_t served = casenet_client_stale_directory_version(c), old = 0;
    int ex = net_pull_directory(h, c, &old);
    if (ex != CLI_OK)
        return ex;
    fprintf(stderr,
            "casenet: send: the broker refused the message as sealed with an out-of-date "
            "directory (STALE_DIRECTORY: a recipient's key was replaced; the broker serves "
            "version %llu); pulled directory version %llu (was %llu) and sealed the message "
            "again under a new id\n",
            (unsigned long long)served, (unsigned long long)casenet_directory_version(h->dir),
            (unsigned long long)old);
    casenet_buf_free(env);
    return seal_stdin(h, a, env, id);
}

int cmd_send(int argc, char **argv)
{
    struct seal_args a;
    int ex = seal_parse(argc, argv, send_usage, true, &a);
    if (ex >= 0)
        return ex;
    char *path = home_path(a.home);
    if (!path)
        return CLI_EFAIL;
    struct home *h = NULL;
    casenet_client *c = NULL;
    casenet_buf env = {0}, json = {0};
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    a.json = &json;
    casenet_attachment *atts = NULL;
    ex = home_open(path, &h);
    if (ex != CLI_OK || (ex = attach_prepare(h, &a, &atts)) != CLI_OK)
        goto cleanup;
    a.atts = atts;
    ex = seal_stdin(h, &a, &env, id);
    if (ex != CLI_OK)
        goto cleanup;
    ex = net_connect(h, a.broker, a.timeout_ms, &c);
    if (ex != CLI_OK || (ex = attach_upload(c, &a)) != CLI_OK)
        goto cleanup;
    casenet_submit_receipt receipt;
    bool duplicate = false;
    int rc = casenet_client_submit(c, env.data, env.len, &receipt, &duplicate);
    if (rc == CASENET_ESTALEDIR) {
        ex = reseal_stale(h, c, &a, &env, id);
        if (ex != CLI_OK)
            goto cleanup;
        rc = casenet_client_submit(c, env.data, env.len, &receipt, &duplicate);
    }
    if (rc != CASENET_OK) {
        ex = net_fail(c, rc, "the broker did not accept the message");
        goto cleanup;
    }
    char hex[33], when[64];
    cli_id16_hex(receipt.message_id, hex);
    cli_format_time(receipt.accepted_at_ms, false, when, sizeof when);
    printf("%s\n", hex);
    if (fflush(stdout) != 0) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot write to stdout");
        goto cleanup;
    }
    fprintf(stderr, "accepted by %s at %s, audit index %llu%s\n", receipt.broker_id, when,
            (unsigned long long)receipt.audit_index, duplicate ? " (already submitted)" : "");
    ex = CLI_OK;
cleanup:
    attach_free(atts, a.n_attach);
    casenet_client_free(c);
    casenet_buf_free(&json);
    casenet_buf_free(&env);
    home_free(h);
    free(path);
    return ex;
}

/* ------------------------------------------------------------ inbox */

static const char inbox_usage[] =
    "usage: casenet inbox [--state STATE|any] [--json] [--wide] [--limit N]\n"
    "                     [--home DIR] [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Lists this member's inbox at the broker, oldest first, in 100 columns:\n"
    "message id (its first 10 digits, which read, ack and status accept),\n"
    "sender (its display name), kind, urgency, state and local time received.\n"
    "Receipts from recipients of what this member sent show kind 'receipt', the\n"
    "message they answer and their status; their signatures are verified\n"
    "against the directory. A\n"
    "receipt is settled (state fetched) once read ('casenet read ID', 'ack ID'\n"
    "or watch): settled receipts are left out unless --state is given.\n"
    "\n"
    "options:\n"
    "  -S, --state STATE        queued, fetched, delivered, accepted, declined,\n"
    "                           completed, dead or any (every row, settled\n"
    "                           receipts too); default: all but settled receipts\n"
    "  -w, --wide               every column in full: whole ids, sender id and\n"
    "                           name, full times\n"
    "  -j, --json               JSON Lines: id, from, kind, urgency, state,\n"
    "                           received_at (ISO 8601 UTC), in_reply_to, status, ...\n"
    "  -n, --limit N            at most N rows (default: all)\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet inbox --state queued\n";

/* A receipt row's verified content; *ok false when it does not verify. */
static void check_receipt(const struct home *h, const casenet_inbox_entry *e, casenet_receipt *r,
                          bool *ok)
{
    *ok = false;
    memset(r, 0, sizeof *r);
    if (e->receipt.len == 0)
        return;
    *ok = casenet_receipt_verify(h->dir, e->receipt.data, e->receipt.len, r) == CASENET_OK;
}

static void print_row(const struct home *h, const casenet_inbox_entry *e, bool json, bool wide)
{
    char id[33], reply[33], case_ref[33];
    cli_id16_hex(e->message_id, id);
    bool is_receipt = e->kind == CASENET_KIND_RECEIPT;
    casenet_receipt r;
    bool receipt_ok = false;
    if (is_receipt)
        check_receipt(h, e, &r, &receipt_ok);
    const uint8_t *answers = e->has_in_reply_to ? e->in_reply_to : NULL;
    if (is_receipt && receipt_ok)
        answers = r.message_id;
    if (answers)
        cli_id16_hex(answers, reply);
    cli_id16_hex(e->case_ref, case_ref);
    const char *rstatus = NULL;
    if (is_receipt)
        rstatus = casenet_receipt_status_name(receipt_ok ? (int)r.status : (int)e->receipt_status);
    const char *urgency = e->urgency ? casenet_urgency_name(e->urgency) : "-";

    if (json) {
        char received[40], created[40];
        cli_format_iso(e->received_at_ms, received, sizeof received);
        cli_format_iso(e->created_at_ms, created, sizeof created);
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:I, s:I}", "id", id,
                      "from", e->sender, "kind", casenet_kind_name(e->kind), "urgency", urgency,
                      "state", casenet_inbox_state_name(e->state), "received_at", received,
                      "in_reply_to", answers ? reply : NULL, "status", rstatus, "message_status",
                      casenet_msg_status_name(e->status ? (int)e->status : CASENET_MSG_ACTUAL),
                      "case", e->has_case_ref ? case_ref : NULL, "size", (json_int_t)e->size, "seq",
                      (json_int_t)e->seq);
        if (o && is_receipt) {
            json_object_set_new(o, "receipt_verified", json_boolean(receipt_ok));
            if (receipt_ok && r.reason[0])
                json_object_set_new(o, "reason", json_string(r.reason));
            if (receipt_ok && r.outcome)
                json_object_set_new(o, "outcome", json_string(casenet_outcome_name(r.outcome)));
            if (receipt_ok && r.has_note) {
                char note[33];
                cli_id16_hex(r.note_id, note);
                json_object_set_new(o, "note", json_string(note));
            }
        }
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(o);
        return;
    }
    char received[64], from[160], from_cell[200];
    cli_table_time(e->received_at_ms, wide, received, sizeof received);
    cli_member_label(h->dir, e->sender, wide, from, sizeof from);
    cli_cell(cli_safe(from), wide ? 40 : 16, from_cell, sizeof from_cell);
    const char *drill = e->status == CASENET_MSG_EXERCISE || e->status == CASENET_MSG_TEST
                            ? casenet_msg_status_name(e->status)
                            : NULL;
    char tail[160] = "";
    if (receipt_ok && r.reason[0])
        snprintf(tail, sizeof tail, " (%s)", cli_safe(r.reason));
    if (drill)
        snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "  [%s]", drill);
    const char *invalid = e->receipt.len && !receipt_ok ? " (receipt signature INVALID)" : "";
    if (wide) {
        cli_table_line(true, "%-32s  %s  %-16s  %-15s  %-9s  %s%s%s%s%s%s%s%s", id, from_cell,
                       casenet_kind_name(e->kind), urgency, casenet_inbox_state_name(e->state),
                       received, is_receipt ? "  re " : "", is_receipt && answers ? reply : "",
                       is_receipt && !answers ? "?" : "", is_receipt ? " " : "",
                       is_receipt ? rstatus : "", invalid, tail);
        return;
    }
    /* 100 columns: a receipt row shows "receipt STATUS" as its kind and the
     * message it answers where a message has its urgency. */
    char kind[32], kind_cell[80], urg[48], urg_cell[80];
    cli_table_id(e->message_id, false, id);
    if (answers)
        cli_table_id(answers, false, reply);
    snprintf(kind, sizeof kind, "%s%s%s", casenet_kind_name(e->kind), is_receipt ? " " : "",
             is_receipt ? rstatus : "");
    snprintf(urg, sizeof urg, "%s%s", is_receipt ? "re " : "",
             is_receipt ? (answers ? reply : "?") : urgency);
    cli_cell(kind, 17, kind_cell, sizeof kind_cell);
    cli_cell(urg, 15, urg_cell, sizeof urg_cell);
    cli_table_line(false, "%-10s  %s  %s  %s  %-9s  %-11s%s%s", id, from_cell, kind_cell, urg_cell,
                   casenet_inbox_state_name(e->state), received, invalid, tail);
}

int cmd_inbox(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"wide", no_argument, NULL, 'w'},
        {"limit", required_argument, NULL, 'n'},
        {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct net_opts o = {.timeout_ms = 10000};
    casenet_inbox_state state = CASENET_INBOX_ANY;
    bool json = false, all = false, wide = false;
    uint64_t limit = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "S:jwn:H:b:t:h", opts)) != -1) {
        switch (c) {
        case 'w':
            wide = true;
            break;
        case 'S':
            if (casenet_inbox_state_parse(optarg, &state) != CASENET_OK)
                return cli_usage_error("unknown --state '%s': queued, fetched, delivered, "
                                       "accepted, declined, completed, dead, any",
                                       optarg);
            all = true;
            break;
        case 'j':
            json = true;
            break;
        case 'n':
            if (!cli_parse_uint(optarg, 1, UINT32_MAX, &limit))
                return cli_usage_error("--limit wants a positive number, not '%s'", optarg);
            break;
        case 'H':
            o.home = optarg;
            break;
        case 'b':
            o.broker = optarg;
            break;
        case 't':
            if (!net_parse_timeout(optarg, &o.timeout_ms))
                return cli_usage_error("--timeout wants 1..3600 seconds, not '%s'", optarg);
            break;
        case 'h':
            return cli_help(inbox_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    char *path = home_path(o.home);
    if (!path)
        return CLI_EFAIL;
    struct home *h = NULL;
    casenet_client *cl = NULL;
    int ex = home_open(path, &h);
    if (ex != CLI_OK)
        goto cleanup;
    ex = net_connect(h, o.broker, o.timeout_ms, &cl);
    if (ex != CLI_OK)
        goto cleanup;
    if (!json)
        cli_table_line(wide, "%-*s  %-*s  %-*s  %-15s  %-9s  %s", wide ? 32 : CLI_TABLE_ID_DIGITS,
                       "ID", wide ? 40 : 16, "FROM", wide ? 16 : 17, "KIND", "URGENCY", "STATE",
                       "RECEIVED");
    uint64_t cursor = 0, shown = 0, hidden = 0;
    bool more = true;
    while (more && (limit == 0 || shown < limit)) {
        casenet_inbox_entry *rows = NULL;
        size_t n = 0;
        uint32_t page = PAGE_MAX;
        if (limit && limit - shown < page)
            page = (uint32_t)(limit - shown);
        uint64_t next = cursor;
        int rc = casenet_client_list(cl, state, cursor, page, &rows, &n, &next, &more);
        if (rc != CASENET_OK) {
            ex = net_fail(cl, rc, "ListInbox failed");
            goto cleanup;
        }
        for (size_t i = 0; i < n && (limit == 0 || shown < limit); i++) {
            if (!all && rows[i].kind == CASENET_KIND_RECEIPT &&
                rows[i].state != CASENET_INBOX_QUEUED) {
                hidden++; /* a settled receipt: seen already */
                continue;
            }
            print_row(h, &rows[i], json, wide);
            shown++;
        }
        casenet_inbox_entries_free(rows, n);
        if (n == 0 || next <= cursor)
            break; /* no progress: never loop forever on a confused broker */
        cursor = next;
    }
    if (fflush(stdout) != 0) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot write to stdout");
        goto cleanup;
    }
    if (!json && shown == 0)
        fprintf(stderr, "(inbox empty%s%s)\n", state ? " in state " : "",
                state ? casenet_inbox_state_name(state) : "");
    if (!json && hidden)
        fprintf(stderr, "(%llu settled receipt%s not shown: --state any shows them)\n",
                (unsigned long long)hidden, hidden == 1 ? "" : "s");
    ex = CLI_OK;
cleanup:
    casenet_client_free(cl);
    home_free(h);
    free(path);
    return ex;
}

/* ------------------------------------------------------------ read, ack */

/* Parses the options shared by read and ack plus their own (extra, a
 * getopt_long table fragment handled by on_extra). */
static int parse_net(int argc, char **argv, int c, struct net_opts *o)
{
    (void)argc;
    (void)argv;
    switch (c) {
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

/* Opens the home, connects and fetches the inbox row id_hex: *env is its
 * envelope, empty for a forwarded receipt, *row the row (cleared by the
 * caller). */
static int fetch(const struct net_opts *o, const char *id_hex, char **path, struct home **h,
                 casenet_client **cl, casenet_buf *env, casenet_inbox_entry *row)
{
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    if (!cli_id_arg_ok(id_hex))
        return cli_usage_error(ID_ARG_WANTED, id_hex);
    *path = home_path(o->home);
    if (!*path)
        return CLI_EFAIL;
    int ex = home_open(*path, h);
    if (ex != CLI_OK)
        return ex;
    ex = net_connect(*h, o->broker, o->timeout_ms, cl);
    if (ex != CLI_OK)
        return ex;
    ex = net_resolve_id(*cl, id_hex, false, id);
    if (ex != CLI_OK)
        return ex;
    char hex[33];
    cli_id16_hex(id, hex);
    int rc = casenet_client_fetch_row(*cl, id, env, row);
    if (rc == CASENET_ENOTFOUND)
        return cli_fail(CLI_BROKER, rc, "see 'casenet inbox'",
                        "message %s is not in the inbox of %s", hex, (*h)->member);
    if (rc != CASENET_OK)
        return net_fail(*cl, rc, "Fetch failed");
    return CLI_OK;
}

/* Verifies a forwarded receipt row e (the broker settled it by the fetch)
 * and prints it: the receipt as JSON on stdout (watch's hand-over form: ids
 * in hex, times in UTC), a line on stderr. Exit 3 when it does not verify
 * or answers a message this member did not send. */
static int print_receipt_row(const struct home *h, const casenet_inbox_entry *e)
{
    casenet_receipt r;
    int rc = casenet_receipt_verify(h->dir, e->receipt.data, e->receipt.len, &r);
    if (rc == CASENET_OK && strcmp(r.sender, h->member) != 0)
        rc = CASENET_EBADREQ;
    if (rc != CASENET_OK)
        return cli_fail(CLI_VERIFY, rc, "do not rely on it",
                        "the forwarded receipt does not verify or is for another sender");
    char *text = NULL, *pretty = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    rc = receipt_json(e, &r, &text, &len);
    if (rc == CASENET_OK && (!(doc = json_loadb(text, len, 0, NULL)) ||
                             !(pretty = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER))))
        rc = CASENET_ENOMEM;
    json_decref(doc);
    free(text);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot build the receipt's JSON");
    char re[33], at[64];
    cli_id16_hex(r.message_id, re);
    cli_format_time(r.signed_at_ms, false, at, sizeof at);
    fprintf(stderr, "forwarded receipt: %s signed '%s' for message %s at %s (signature verified)\n",
            r.recipient, casenet_receipt_status_name(r.status), re, at);
    rc = cli_write_stdout(pretty, strlen(pretty));
    if (rc == CASENET_OK)
        rc = cli_write_stdout("\n", 1);
    free(pretty);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot write to stdout");
    return CLI_OK;
}

static const char read_usage[] =
    "usage: casenet read ID [--json] [--json-meta] [--save-attachments DIR]\n"
    "                       [--home DIR] [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Fetches message ID from the inbox, verifies it against the directory,\n"
    "decrypts it and prints the payload JSON on stdout; the verified metadata\n"
    "(sender, kind, urgency, ...) goes to stderr. Anything that does not verify\n"
    "exits 3, as does a payload without its kind's required fields or whose\n"
    "urgency is not the header's. Reading does not acknowledge: see 'casenet ack'.\n"
    "On a terminal the payload is shown for people: ids and hashes in hex, times\n"
    "as UTC dates; redirected (or with --json) it is protobuf's canonical JSON,\n"
    "which 'casenet send' takes back. A forwarded receipt prints the verified\n"
    "receipt. With --save-attachments, every attachment is downloaded, decrypted\n"
    "chunk by chunk and checked against the signed manifest (SHA-256, size)\n"
    "before it is renamed into DIR under its file name; a mismatch exits 3 and\n"
    "keeps nothing.\n"
    "\n"
    "options:\n"
    "  -j, --json               canonical protobuf JSON even on a terminal\n"
    "  -S, --save-attachments DIR  save the attachments into DIR (never replacing)\n"
    "  -m, --json-meta          metadata on stderr as one JSON object\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet read 3f2a9c0e5b7d41e8a6c2d9f0b1e4a7c3 > case.json\n";

int cmd_read(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json-meta", no_argument, NULL, 'm'},
        {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"save-attachments", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct net_opts o = {.timeout_ms = 10000};
    bool json_meta = false, canonical = !isatty(STDOUT_FILENO);
    const char *save_dir = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "mjS:H:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(read_usage);
        if (c == 'S') {
            save_dir = optarg;
            continue;
        }
        if (c == 'm' || c == 'j') {
            json_meta |= c == 'm';
            canonical |= c == 'j';
            continue;
        }
        int ex = parse_net(argc, argv, c, &o);
        if (ex >= 0)
            return ex;
    }
    if (optind != argc - 1)
        return cli_usage_error("expected exactly one message ID");
    char *path = NULL;
    struct home *h = NULL;
    casenet_client *cl = NULL;
    casenet_buf env = {0}, payload = {0};
    casenet_message_info info = {0};
    casenet_inbox_entry row = {0};
    int ex = fetch(&o, argv[optind], &path, &h, &cl, &env, &row);
    if (ex != CLI_OK)
        goto cleanup;
    if (row.kind == CASENET_KIND_RECEIPT) {
        ex = print_receipt_row(h, &row);
        goto cleanup;
    }
    char why[256];
    int rc =
        casenet_open_detail(h->keys, h->dir, env.data, env.len, &info, &payload, why, sizeof why);
    if (rc != CASENET_OK) {
        ex = open_fail_detail(rc, h->member, why, env.data, env.len);
        goto cleanup;
    }
    ex = print_opened(&info, &payload, json_meta, canonical);
    if (ex == CLI_OK && save_dir)
        ex = attach_save(cl, &info, &payload, save_dir);
cleanup:
    casenet_inbox_entry_clear(&row);
    casenet_message_info_clear(&info);
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
    casenet_client_free(cl);
    home_free(h);
    free(path);
    return ex;
}

static const char ack_usage[] =
    "usage: casenet ack ID [--status delivered|accepted|declined|completed]\n"
    "                      [--reason CODE] [--outcome CODE] [--note TEXT]\n"
    "                      [--home DIR] [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Signs a receipt for message ID and sends it through the broker to the\n"
    "sender (and the audit log). The receipt names the hash of the exact message\n"
    "received, so ack fetches and verifies the message first. A receipt is kept\n"
    "in clear by the broker and in its audit log forever: it carries codes only.\n"
    "Words go in --note, sent first as an encrypted STATUS message to the sender\n"
    "(in reply to ID) whose id the receipt names.\n"
    "\n"
    "options:\n"
    "  -s, --status S           delivered (default), accepted, declined, completed\n"
    "  -r, --reason CODE        with declined: not-competent, duplicate,\n"
    "                           insufficient-information, redirected\n"
    "  -o, --outcome CODE       with completed (required): resolved, referred-onward,\n"
    "                           no-action-needed, unable-to-act, withdrawn\n"
    "  -n, --note TEXT          with accepted, declined or completed: an explanation,\n"
    "                           sealed to the sender only\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet ack 3f2a9c0e5b7d41e8a6c2d9f0b1e4a7c3 --status accepted\n"
    "  casenet ack 3f2a9c0e5b7d41e8a6c2d9f0b1e4a7c3 --status completed \\\n"
    "      --outcome resolved --note 'child placed with relatives'\n";

/* Seals text as a STATUS note to the sender of the message in orig (info,
 * its verified metadata), in reply to it (cli_note_seal), and submits it;
 * its id in id. An exit code, the failure reported. */
static int send_note(struct home *h, casenet_client *cl, const casenet_buf *orig,
                     const casenet_message_info *info, const casenet_receipt *r, const char *text,
                     uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    casenet_buf env = {0};
    enum cli_origin origin;
    char why[256];
    int rc =
        cli_note_seal(h->keys, h->dir, orig, info, r, text, &env, id, &origin, why, sizeof why);
    if (rc != CASENET_OK && origin == CLI_VERIFY)
        return open_fail_detail(rc, h->member, why, orig->data, orig->len);
    if (rc != CASENET_OK)
        return cli_fail(origin, rc, NULL, "cannot build the note: %s", why);
    int ex = CLI_OK;
    casenet_submit_receipt sr;
    rc = casenet_client_submit(cl, env.data, env.len, &sr, NULL);
    if (rc != CASENET_OK)
        ex = net_fail(cl, rc, "the broker did not accept the note; no receipt was sent");
    casenet_buf_free(&env);
    return ex;
}

/* The receipt's options go together as PROTOCOL.md §5.1 says: a reason only
 * with declined, an outcome only with (and always with) completed, a note
 * only with a decision. Copies the reason into r; CLI_OK or CLI_EUSAGE. */
static int ack_check(casenet_receipt *r, const char *reason, const char *outcome, const char *note)
{
    if (r->status == CASENET_RECEIPT_DECLINED && !reason)
        return cli_usage_error("--status declined needs --reason");
    if (reason && r->status != CASENET_RECEIPT_DECLINED)
        return cli_usage_error("--reason goes with --status declined");
    if (reason && !casenet_decline_reason_valid(reason))
        return cli_usage_error("unknown --reason '%s': not-competent, duplicate, "
                               "insufficient-information, redirected",
                               reason);
    if (outcome && r->status != CASENET_RECEIPT_COMPLETED)
        return cli_usage_error("--outcome goes with --status completed");
    if (!outcome && r->status == CASENET_RECEIPT_COMPLETED)
        return cli_usage_error("--status completed needs --outcome CODE");
    if (outcome && casenet_outcome_parse(outcome, &r->outcome) != CASENET_OK)
        return cli_usage_error("unknown --outcome '%s': resolved, referred-onward, "
                               "no-action-needed, unable-to-act, withdrawn (words go in --note)",
                               outcome);
    if (note && (r->status == CASENET_RECEIPT_DELIVERED || !note[0]))
        return cli_usage_error("--note goes with --status accepted, declined or completed, and "
                               "is not empty");
    if (reason && cn_strlcpy(r->reason, reason, sizeof r->reason) != CASENET_OK)
        return cli_usage_error("--reason is too long");

    return CLI_OK;
}

int cmd_ack(int argc, char **argv)
{
    static const struct option opts[] = {
        {"status", required_argument, NULL, 's'},
        {"reason", required_argument, NULL, 'r'},
        {"outcome", required_argument, NULL, 'o'},
        {"note", required_argument, NULL, 'n'},
        {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct net_opts o = {.timeout_ms = 10000};
    casenet_receipt r = {0};
    r.status = CASENET_RECEIPT_DELIVERED;
    const char *reason = NULL, *outcome = NULL, *note = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "s:r:o:n:H:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(ack_usage);
        if (c == 's') {
            if (casenet_receipt_status_parse(optarg, &r.status) != CASENET_OK)
                return cli_usage_error("unknown --status '%s': delivered, accepted, declined, "
                                       "completed",
                                       optarg);
            continue;
        }
        if (c == 'r') {
            reason = optarg;
            continue;
        }
        if (c == 'o') {
            outcome = optarg;
            continue;
        }
        if (c == 'n') {
            note = optarg;
            continue;
        }
        int ex = parse_net(argc, argv, c, &o);
        if (ex >= 0)
            return ex;
    }
    if (optind != argc - 1)
        return cli_usage_error("expected exactly one message ID");
    int usage = ack_check(&r, reason, outcome, note);
    if (usage != CLI_OK)
        return usage;

    char *path = NULL;
    struct home *h = NULL;
    casenet_client *cl = NULL;
    casenet_buf env = {0}, signed_receipt = {0};
    casenet_message_info info = {0};
    casenet_inbox_entry row = {0};
    int ex = fetch(&o, argv[optind], &path, &h, &cl, &env, &row);
    if (ex != CLI_OK)
        goto cleanup;
    if (row.kind == CASENET_KIND_RECEIPT) {
        /* Receipts get no receipt back; the fetch settled the row. */
        printf("%s is a forwarded receipt from %s: settled (receipts are not acknowledged)\n",
               hex_of(row.message_id).s, row.sender);
        ex = CLI_OK;
        goto cleanup;
    }
    int rc = casenet_envelope_verify(h->dir, env.data, env.len, &info);
    if (rc != CASENET_OK) {
        ex = open_fail(rc, h->member, env.data, env.len);
        goto cleanup;
    }
    memcpy(r.message_id, info.message_id, sizeof r.message_id);
    memcpy(r.envelope_hash, info.envelope_hash, sizeof r.envelope_hash);
    rc = cn_strlcpy(r.sender, info.sender, sizeof r.sender);
    if (rc == CASENET_OK)
        rc = cn_strlcpy(r.recipient, h->member, sizeof r.recipient);
    if (rc == CASENET_OK && note) {
        if ((ex = send_note(h, cl, &env, &info, &r, note, r.note_id)) != CLI_OK)
            goto cleanup;
        r.has_note = true;
    }
    r.signed_at_ms = cn_now_ms();
    if (rc == CASENET_OK)
        rc = casenet_receipt_sign(h->keys, &r, &signed_receipt);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot sign the receipt: %s", casenet_strerror(rc));
        goto cleanup;
    }
    uint64_t audit_index = 0;
    rc = casenet_client_send_receipt(cl, signed_receipt.data, signed_receipt.len, &audit_index);
    if (rc != CASENET_OK) {
        ex = net_fail(cl, rc, "the broker did not accept the receipt");
        goto cleanup;
    }
    printf("receipt '%s' for %s from %s recorded (audit index %llu)\n",
           casenet_receipt_status_name(r.status), hex_of(info.message_id).s, info.sender,
           (unsigned long long)audit_index);
    if (r.has_note) {
        char hex[33];
        cli_id16_hex(r.note_id, hex);
        printf("note %s sealed to %s\n", hex, info.sender);
    }
    ex = CLI_OK;
cleanup:
    casenet_inbox_entry_clear(&row);
    casenet_message_info_clear(&info);
    casenet_buf_free(&signed_receipt);
    casenet_buf_free(&env);
    casenet_client_free(cl);
    home_free(h);
    free(path);
    return ex;
}
