/* cmd_net.c - the online subcommands, through the broker: `send` (seal and
 * submit, wait for the broker's verified receipt), `inbox`, `read` and `ack`;
 * and the connection helpers the directory subcommands share. */
#include "cli.h"
#include "commands.h"
#include "home.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ENVELOPE_MAX (CASENET_MAX_PAYLOAD_BYTES + 1024u * 1024u)
#define PAGE_MAX     100

/* ------------------------------------------------------------ shared */

bool net_parse_timeout(const char *s, int *ms)
{
    uint64_t secs = 0;
    if (!cli_parse_uint(s, 1, 3600, &secs))
        return false;
    *ms = (int)secs * 1000;
    return true;
}

int net_fail(casenet_client *c, int err, const char *what)
{
    const char *msg = c ? casenet_client_last_error(c) : "";
    char hint[160];
    const char *h = NULL;
    switch (err) {
    case CASENET_ETIMEDOUT:
        h = "is casenetd running at that endpoint? (a broker that refuses this member's key "
            "also looks like a timeout)";
        break;
    case CASENET_ERATELIMIT:
    case CASENET_EUNAVAIL: {
        uint32_t ms = c ? casenet_client_retry_after_ms(c) : 0;
        if (ms) {
            snprintf(hint, sizeof hint, "retry in %u s", (ms + 999) / 1000);
            h = hint;
        } else {
            h = "retry later";
        }
        break;
    }
    case CASENET_EUNAUTH:
        h = "the broker does not accept this member's key (unknown, suspended or revoked)";
        break;
    case CASENET_ECLOCKSKEW:
        h = "check this machine's clock";
        break;
    default:
        break;
    }
    if (msg && msg[0])
        return cli_fail(CLI_BROKER, err, h, "%s: %s", what, msg);
    return cli_fail(CLI_BROKER, err, h, "%s: %s", what, casenet_strerror(err));
}

int net_connect(struct home *h, const char *endpoint, int timeout_ms, casenet_client **out)
{
    const char *ep = endpoint && endpoint[0] ? endpoint : h->broker;
    if (!ep || !ep[0])
        return cli_usage_error("no broker endpoint: pass --broker ENDPOINT (or set it with "
                               "'casenet init --broker')");
    casenet_member broker;
    if (casenet_directory_broker(h->dir, &broker) != CASENET_OK)
        return cli_fail(CLI_LOCAL, CASENET_ENOTFOUND,
                        "run 'casenet directory update' with a "
                        "directory that lists the broker",
                        "the directory lists no broker (a member with role 'broker')");
    casenet_client_opts opts = {
        .endpoint = ep,
        .timeout_ms = timeout_ms,
        .client_name = "casenet-cli/" CASENET_VERSION,
    };
    int rc = casenet_client_connect(h->keys, h->dir, &opts, out);
    if (rc != CASENET_OK) {
        char what[HOME_BROKER_MAX + 32];
        snprintf(what, sizeof what, "cannot connect to %s", ep);
        return net_fail(NULL, rc, what);
    }
    return CLI_OK;
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
    "                    [--broker ENDPOINT] [--timeout SECONDS] < payload.json\n"
    "\n"
    "Seals the payload (protobuf JSON on stdin) like 'casenet seal' and submits it\n"
    "to the broker. Prints the message id (32 hex digits) on the first line of\n"
    "stdout only once the broker's signed receipt has been verified; on a timeout\n"
    "the same bytes are resent (the message id makes that safe).\n"
    "\n"
    "options:\n"
    "  -T, --to ID|@GROUP       recipients: member ids or @group (but you);\n"
    "                           comma-separated and/or repeated; never your own id\n"
    "  -k, --kind KIND          referral, status, info-request, info-response,\n"
    "                           takedown-request, takedown-result, correction,\n"
    "                           withdraw, erase (must match the payload)\n"
    "  -u, --urgency U          emergency, urgent-takedown, standard (default), info\n"
    "  -s, --status S           actual (default), exercise or test (drills)\n"
    "  -c, --case HEX32         case thread reference (32 hex digits)\n"
    "  -r, --reply-to HEX32     the message id this answers\n"
    "  -e, --expires-in DUR     dead-lettered if undelivered after 90s, 15m, 12h, 7d\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  id=$(casenet send --to vn.police.a05 --kind referral --urgency emergency \\\n"
    "      < referral.json)\n";

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
    casenet_buf env = {0};
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    ex = home_open(path, &h);
    if (ex != CLI_OK)
        goto cleanup;
    ex = seal_stdin(h, &a, &env, id);
    if (ex != CLI_OK)
        goto cleanup;
    ex = net_connect(h, a.broker, a.timeout_ms, &c);
    if (ex != CLI_OK)
        goto cleanup;
    casenet_submit_receipt receipt;
    bool duplicate = false;
    int rc = casenet_client_submit(c, env.data, env.len, &receipt, &duplicate);
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
    casenet_client_free(c);
    casenet_buf_free(&env);
    home_free(h);
    free(path);
    return ex;
}

/* ------------------------------------------------------------ inbox */

static const char inbox_usage[] =
    "usage: casenet inbox [--state STATE|any] [--json] [--limit N] [--home DIR]\n"
    "                     [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Lists this member's inbox at the broker, oldest first: message id, sender,\n"
    "kind, urgency, state and local time received. Receipts from recipients of\n"
    "what this member sent show kind 'receipt', the message they answer and\n"
    "their status; their signatures are verified against the directory.\n"
    "\n"
    "options:\n"
    "  -S, --state STATE        queued, fetched, delivered, accepted, declined,\n"
    "                           completed, dead or any (default)\n"
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

static void print_row(const struct home *h, const casenet_inbox_entry *e, bool json)
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
            if (receipt_ok && r.outcome[0])
                json_object_set_new(o, "outcome", json_string(r.outcome));
        }
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(o);
        return;
    }
    char received[64];
    cli_format_time(e->received_at_ms, false, received, sizeof received);
    printf("%-32s  %-20s  %-16s  %-15s  %-9s  %s", id, e->sender, casenet_kind_name(e->kind),
           urgency, casenet_inbox_state_name(e->state), received);
    if (is_receipt) {
        printf("  re %s %s%s", answers ? reply : "?", rstatus,
               e->receipt.len && !receipt_ok ? " (receipt signature INVALID)" : "");
        if (receipt_ok && r.reason[0])
            printf(" (%s)", r.reason);
    }
    if (e->status == CASENET_MSG_EXERCISE || e->status == CASENET_MSG_TEST)
        printf("  [%s]", casenet_msg_status_name(e->status));
    printf("\n");
}

int cmd_inbox(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, 'S'},  {"json", no_argument, NULL, 'j'},
        {"limit", required_argument, NULL, 'n'},  {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct net_opts o = {.timeout_ms = 10000};
    casenet_inbox_state state = CASENET_INBOX_ANY;
    bool json = false;
    uint64_t limit = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "S:jn:H:b:t:h", opts)) != -1) {
        switch (c) {
        case 'S':
            if (casenet_inbox_state_parse(optarg, &state) != CASENET_OK)
                return cli_usage_error("unknown --state '%s': queued, fetched, delivered, "
                                       "accepted, declined, completed, dead, any",
                                       optarg);
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
        printf("%-32s  %-20s  %-16s  %-15s  %-9s  %s\n", "ID", "FROM", "KIND", "URGENCY", "STATE",
               "RECEIVED");
    uint64_t cursor = 0, shown = 0;
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
        for (size_t i = 0; i < n && (limit == 0 || shown < limit); i++, shown++)
            print_row(h, &rows[i], json);
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

/* Opens the home, connects and fetches the message id_hex. */
static int fetch(const struct net_opts *o, const char *id_hex, char **path, struct home **h,
                 casenet_client **cl, casenet_buf *env)
{
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    if (!cli_parse_id16(id_hex, id))
        return cli_usage_error("expected a message id of 32 hex digits, not '%s'", id_hex);
    *path = home_path(o->home);
    if (!*path)
        return CLI_EFAIL;
    int ex = home_open(*path, h);
    if (ex != CLI_OK)
        return ex;
    ex = net_connect(*h, o->broker, o->timeout_ms, cl);
    if (ex != CLI_OK)
        return ex;
    int rc = casenet_client_fetch(*cl, id, env);
    if (rc == CASENET_ENOTFOUND)
        return cli_fail(CLI_BROKER, rc, "see 'casenet inbox'",
                        "message %s is not in the inbox of %s", id_hex, (*h)->member);
    if (rc != CASENET_OK)
        return net_fail(*cl, rc, "Fetch failed");
    return CLI_OK;
}

static const char read_usage[] =
    "usage: casenet read ID [--json-meta] [--home DIR] [--broker ENDPOINT]\n"
    "                       [--timeout SECONDS]\n"
    "\n"
    "Fetches message ID from the inbox, verifies it against the directory,\n"
    "decrypts it and prints the payload JSON on stdout; the verified metadata\n"
    "(sender, kind, urgency, ...) goes to stderr. Anything that does not verify\n"
    "exits 3. Reading does not acknowledge: see 'casenet ack'.\n"
    "\n"
    "options:\n"
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
        {"json-meta", no_argument, NULL, 'm'},    {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct net_opts o = {.timeout_ms = 10000};
    bool json_meta = false;
    int c;
    while ((c = cli_getopt(argc, argv, "mH:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(read_usage);
        if (c == 'm') {
            json_meta = true;
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
    casenet_buf env = {0}, payload = {0}, json = {0};
    casenet_message_info info = {0};
    int ex = fetch(&o, argv[optind], &path, &h, &cl, &env);
    if (ex != CLI_OK)
        goto cleanup;
    int rc = casenet_open(h->keys, h->dir, env.data, env.len, &info, &payload);
    if (rc != CASENET_OK) {
        ex = open_fail(rc, h->member);
        goto cleanup;
    }
    rc = casenet_payload_to_json(payload.data, payload.len, &json);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_VERIFY, rc, NULL, "cannot convert the payload to JSON: %s",
                      casenet_strerror(rc));
        goto cleanup;
    }
    print_message_info(stderr, &info, json_meta);
    rc = cli_write_stdout(json.data, json.len);
    if (rc == CASENET_OK && (json.len == 0 || json.data[json.len - 1] != '\n'))
        rc = cli_write_stdout("\n", 1);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot write the payload to stdout");
        goto cleanup;
    }
    ex = CLI_OK;
cleanup:
    casenet_message_info_clear(&info);
    casenet_buf_free(&json);
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
    casenet_client_free(cl);
    home_free(h);
    free(path);
    return ex;
}

static const char ack_usage[] =
    "usage: casenet ack ID [--status delivered|accepted|declined|completed]\n"
    "                      [--reason CODE] [--outcome TEXT] [--home DIR]\n"
    "                      [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Signs a receipt for message ID and sends it through the broker to the\n"
    "sender (and the audit log). The receipt names the hash of the exact message\n"
    "received, so ack fetches and verifies the message first.\n"
    "\n"
    "options:\n"
    "  -s, --status S           delivered (default), accepted, declined, completed\n"
    "  -r, --reason CODE        with declined: not-competent, duplicate,\n"
    "                           insufficient-information, redirected\n"
    "  -o, --outcome TEXT       with completed (required): the outcome, free text\n"
    "                           (no names)\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet ack 3f2a9c0e5b7d41e8a6c2d9f0b1e4a7c3 --status accepted\n";

int cmd_ack(int argc, char **argv)
{
    static const struct option opts[] = {
        {"status", required_argument, NULL, 's'},  {"reason", required_argument, NULL, 'r'},
        {"outcome", required_argument, NULL, 'o'}, {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'},  {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    struct net_opts o = {.timeout_ms = 10000};
    casenet_receipt r = {0};
    r.status = CASENET_RECEIPT_DELIVERED;
    const char *reason = NULL, *outcome = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "s:r:o:H:b:t:h", opts)) != -1) {
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
        int ex = parse_net(argc, argv, c, &o);
        if (ex >= 0)
            return ex;
    }
    if (optind != argc - 1)
        return cli_usage_error("expected exactly one message ID");
    if (r.status == CASENET_RECEIPT_DECLINED && !reason)
        return cli_usage_error("--status declined needs --reason");
    if (reason && r.status != CASENET_RECEIPT_DECLINED)
        return cli_usage_error("--reason goes with --status declined");
    if (reason && !casenet_decline_reason_valid(reason))
        return cli_usage_error("unknown --reason '%s': not-competent, duplicate, "
                               "insufficient-information, redirected",
                               reason);
    if (outcome && r.status != CASENET_RECEIPT_COMPLETED)
        return cli_usage_error("--outcome goes with --status completed");
    if (!outcome && r.status == CASENET_RECEIPT_COMPLETED)
        return cli_usage_error("--status completed needs --outcome TEXT");
    if (reason && cn_strlcpy(r.reason, reason, sizeof r.reason) != CASENET_OK)
        return cli_usage_error("--reason is too long");
    if (outcome && cn_strlcpy(r.outcome, outcome, sizeof r.outcome) != CASENET_OK)
        return cli_usage_error("--outcome is too long (at most %zu bytes)", sizeof r.outcome - 1);

    char *path = NULL;
    struct home *h = NULL;
    casenet_client *cl = NULL;
    casenet_buf env = {0}, signed_receipt = {0};
    casenet_message_info info = {0};
    int ex = fetch(&o, argv[optind], &path, &h, &cl, &env);
    if (ex != CLI_OK)
        goto cleanup;
    int rc = casenet_envelope_verify(h->dir, env.data, env.len, &info);
    if (rc != CASENET_OK) {
        ex = open_fail(rc, h->member);
        goto cleanup;
    }
    memcpy(r.message_id, info.message_id, sizeof r.message_id);
    memcpy(r.envelope_hash, info.envelope_hash, sizeof r.envelope_hash);
    rc = cn_strlcpy(r.sender, info.sender, sizeof r.sender);
    if (rc == CASENET_OK)
        rc = cn_strlcpy(r.recipient, h->member, sizeof r.recipient);
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
           casenet_receipt_status_name(r.status), argv[optind], info.sender,
           (unsigned long long)audit_index);
    ex = CLI_OK;
cleanup:
    casenet_message_info_clear(&info);
    casenet_buf_free(&signed_receipt);
    casenet_buf_free(&env);
    casenet_client_free(cl);
    home_free(h);
    free(path);
    return ex;
}
