/* cmd_seal.c - `casenet seal` and `casenet open`: the end-to-end envelope
 * offline, payload JSON in and out. Also what `send` and `read` reuse:
 * option parsing, sealing stdin, reporting a message that does not open. */
#include "cli.h"
#include "commands.h"
#include "home.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JSON_MAX     (2u * CASENET_MAX_PAYLOAD_BYTES)
#define ENVELOPE_MAX (CASENET_MAX_PAYLOAD_BYTES + 1024u * 1024u)

/* ------------------------------------------------------------ shared */

static bool add_recipients(char *s, struct seal_args *a)
{
    char *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (a->n_to == CASENET_MAX_RECIPIENTS)
            return false;
        a->to[a->n_to++] = t;
    }
    return true;
}

int seal_parse(int argc, char **argv, const char *usage, bool net, struct seal_args *a)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},     {"to", required_argument, NULL, 'T'},
        {"kind", required_argument, NULL, 'k'},     {"urgency", required_argument, NULL, 'u'},
        {"status", required_argument, NULL, 's'},   {"case", required_argument, NULL, 'c'},
        {"reply-to", required_argument, NULL, 'r'}, {"expires-in", required_argument, NULL, 'e'},
        {"broker", required_argument, NULL, 'b'},   {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->urgency = CASENET_URGENCY_STANDARD;
    a->status = CASENET_MSG_ACTUAL;
    a->timeout_ms = 10000;
    bool have_kind = false;
    int c;
    while ((c = cli_getopt(argc, argv, "H:T:k:u:s:c:r:e:b:t:h", opts)) != -1) {
        switch (c) {
        case 'H':
            a->home = optarg;
            break;
        case 'T':
            if (!add_recipients(optarg, a))
                return cli_usage_error("too many recipients (at most %d)", CASENET_MAX_RECIPIENTS);
            break;
        case 'k':
            if (casenet_kind_parse(optarg, &a->kind) != CASENET_OK ||
                a->kind == CASENET_KIND_RECEIPT || a->kind == CASENET_KIND_ESCALATION ||
                a->kind == CASENET_KIND_DEAD_LETTER)
                return cli_usage_error(
                    "unknown --kind '%s': referral, status, info-request, info-response, "
                    "takedown-request, takedown-result, correction, withdraw, erase",
                    optarg);
            have_kind = true;
            break;
        case 'u':
            if (casenet_urgency_parse(optarg, &a->urgency) != CASENET_OK)
                return cli_usage_error("unknown --urgency '%s': emergency, urgent-takedown, "
                                       "standard, info",
                                       optarg);
            break;
        case 's':
            if (casenet_msg_status_parse(optarg, &a->status) != CASENET_OK)
                return cli_usage_error("unknown --status '%s': actual, exercise, test", optarg);
            break;
        case 'c':
            if (!cli_parse_id16(optarg, a->case_ref))
                return cli_usage_error("--case wants 32 hex digits, not '%s'", optarg);
            a->has_case = true;
            break;
        case 'r':
            if (!cli_parse_id16(optarg, a->reply_to))
                return cli_usage_error("--reply-to wants a message id (32 hex digits), not '%s'",
                                       optarg);
            a->has_reply_to = true;
            break;
        case 'e':
            if (!cli_parse_duration(optarg, &a->expires_in_ms))
                return cli_usage_error("--expires-in wants a duration like 90s, 15m, 12h, 7d, "
                                       "not '%s'",
                                       optarg);
            break;
        case 'b':
        case 't':
            if (!net)
                return cli_usage_error("--broker and --timeout are for 'casenet send'");
            if (c == 'b')
                a->broker = optarg;
            else if (!net_parse_timeout(optarg, &a->timeout_ms))
                return cli_usage_error("--timeout wants 1..3600 seconds, not '%s'", optarg);
            break;
        case 'h':
            return cli_help(usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s' (the payload comes on stdin)",
                               argv[optind]);
    if (a->n_to == 0)
        return cli_usage_error("--to is required");
    if (!have_kind)
        return cli_usage_error("--kind is required");
    for (size_t i = 0; i < a->n_to; i++) {
        const char *id = a->to[i][0] == '@' ? a->to[i] + 1 : a->to[i];
        if (a->to[i][0] == '@' ? id[0] == '\0' : !casenet_member_id_valid(id))
            return cli_usage_error("invalid recipient '%s': a member id or @group", a->to[i]);
    }
    return -1;
}

/* Names the first listed recipient the directory cannot take, the way a case
 * worker can act on. Returns an exit code, CLI_OK when all look fine. */
static int check_recipients(const struct home *h, const struct seal_args *a)
{
    for (size_t i = 0; i < a->n_to; i++) {
        if (a->to[i][0] == '@')
            continue;
        casenet_member m;
        if (casenet_directory_find(h->dir, a->to[i], &m) != CASENET_OK)
            return cli_fail(CLI_LOCAL, CASENET_EUNKNOWNRCPT,
                            "run 'casenet directory pull' or check the id",
                            "recipient %s is not in the directory", a->to[i]);
        if (m.status != CASENET_MEMBER_ACTIVE)
            return cli_fail(CLI_LOCAL, CASENET_EUNKNOWNRCPT,
                            "ask the network coordinator who handles its cases now",
                            "recipient %s is %s", a->to[i],
                            m.status == CASENET_MEMBER_SUSPENDED ? "suspended" : "revoked");
    }
    return CLI_OK;
}

int seal_stdin(const struct home *h, const struct seal_args *a, casenet_buf *envelope,
               uint8_t message_id[CASENET_MESSAGE_ID_BYTES])
{
    int ex = check_recipients(h, a);
    if (ex != CLI_OK)
        return ex;
    casenet_buf json = {0}, payload = {0};
    int rc = cli_read_stream(stdin, JSON_MAX, &json);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot read the payload JSON from stdin");
    char err[256] = "";
    rc = casenet_payload_from_json((const char *)json.data, json.len, a->kind, &payload, err,
                                   sizeof err);
    casenet_buf_free(&json);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, "see docs/cli.md for the payload format",
                        "invalid payload JSON: %s", err[0] ? err : casenet_strerror(rc));

    int64_t now = cn_now_ms();
    casenet_seal_opts so = {
        .kind = a->kind,
        .urgency = a->urgency,
        .status = a->status,
        .to = a->to,
        .n_to = a->n_to,
        .in_reply_to = a->has_reply_to ? a->reply_to : NULL,
        .case_ref = a->has_case ? a->case_ref : NULL,
        .created_at_ms = now,
        .expires_at_ms = a->expires_in_ms ? now + a->expires_in_ms : 0,
    };
    rc = casenet_seal(h->keys, h->dir, &so, payload.data, payload.len, envelope, message_id);
    casenet_buf_free(&payload);
    if (rc == CASENET_EUNKNOWNRCPT)
        return cli_fail(CLI_LOCAL, rc, "run 'casenet directory pull' or check the ids",
                        "a recipient (or every member of a group) is not an active member");
    if (rc == CASENET_EFORBIDDEN)
        return cli_fail(CLI_LOCAL, rc, "remove your own id from --to",
                        "a member cannot address a message to itself (%s), and only the broker "
                        "sends notices",
                        casenet_keys_member_id(h->keys));
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot seal: %s", casenet_strerror(rc));
    return CLI_OK;
}

int open_fail(int err, const char *reader)
{
    switch (err) {
    case CASENET_ENOTRECIPIENT:
        return cli_fail(CLI_VERIFY, err, NULL, "this message is not addressed to %s", reader);
    case CASENET_EBADSIG:
        return cli_fail(CLI_VERIFY, err, "do not act on it",
                        "signature does not verify: the message was altered or is not from its "
                        "claimed sender");
    case CASENET_EUNAUTH:
        return cli_fail(CLI_VERIFY, err, "run 'casenet directory pull' if it is new",
                        "the sender is unknown, suspended or revoked in the directory");
    case CASENET_EUNKNOWNRCPT:
        return cli_fail(CLI_VERIFY, err, NULL,
                        "the message lists a recipient that is not an active member");
    case CASENET_ECRYPTO:
    case CASENET_ECOMMIT:
        return cli_fail(CLI_VERIFY, err, "do not act on it",
                        "the content does not decrypt or does not match its key commitment: "
                        "the message was altered");
    case CASENET_EBADREQ:
    case CASENET_EVERSION:
        return cli_fail(CLI_VERIFY, err, "do not act on it",
                        "the message is altered, truncated or malformed (it does not match its "
                        "signed header)");
    default:
        return cli_fail(CLI_LOCAL, err, NULL, "cannot open the message: %s", casenet_strerror(err));
    }
}

void print_message_info(FILE *f, const casenet_message_info *info, bool json)
{
    char id[33], reply[33], case_ref[33];
    cli_id16_hex(info->message_id, id);
    cli_id16_hex(info->in_reply_to, reply);
    cli_id16_hex(info->case_ref, case_ref);
    if (json) {
        char created[40], expires[40];
        cli_format_iso(info->created_at_ms, created, sizeof created);
        cli_format_iso(info->expires_at_ms, expires, sizeof expires);
        json_t *rcpts = json_array();
        for (size_t i = 0; rcpts && i < info->n_recipients; i++)
            json_array_append_new(rcpts, json_string(info->recipients[i]));
        json_t *o = json_pack(
            "{s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:o, s:I}", "id", id,
            "verified", 1, "from", info->sender, "sign_key_id", info->sign_key_id, "kind",
            casenet_kind_name(info->kind), "urgency", casenet_urgency_name(info->urgency), "status",
            casenet_msg_status_name(info->status), "created_at", created, "expires_at",
            info->expires_at_ms ? expires : NULL, "in_reply_to",
            info->has_in_reply_to ? reply : NULL, "case", info->has_case_ref ? case_ref : NULL,
            "to", rcpts ? rcpts : json_array(), "size", (json_int_t)info->ciphertext_len);
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            fprintf(f, "%s\n", text);
        free(text);
        json_decref(o);
        return;
    }
    char created[64], expires[64];
    cli_format_time(info->created_at_ms, false, created, sizeof created);
    cli_format_time(info->expires_at_ms, false, expires, sizeof expires);
    fprintf(f, "verified message %s\n", id);
    fprintf(f, "  from     %s (signing key %s)\n", info->sender, info->sign_key_id);
    fprintf(f, "  to       ");
    for (size_t i = 0; i < info->n_recipients; i++)
        fprintf(f, "%s%s", i ? ", " : "", info->recipients[i]);
    fprintf(f, "\n  kind     %s, urgency %s, status %s\n", casenet_kind_name(info->kind),
            casenet_urgency_name(info->urgency), casenet_msg_status_name(info->status));
    fprintf(f, "  created  %s\n", created);
    if (info->expires_at_ms)
        fprintf(f, "  expires  %s\n", expires);
    if (info->has_case_ref)
        fprintf(f, "  case     %s\n", case_ref);
    if (info->has_in_reply_to)
        fprintf(f, "  reply to %s\n", reply);
    if (info->status != CASENET_MSG_ACTUAL)
        fprintf(f, "  ** %s message: not a real case **\n", casenet_msg_status_name(info->status));
}

/* ------------------------------------------------------------ seal */

static const char seal_usage[] =
    "usage: casenet seal --to ID[,ID...|@group] --kind KIND [--urgency U]\n"
    "                    [--status actual|exercise|test] [--case HEX32]\n"
    "                    [--reply-to HEX32] [--expires-in DURATION] [--home DIR]\n"
    "                    < payload.json > message\n"
    "\n"
    "Seals the payload (protobuf JSON on stdin, e.g. {\"referral\": {...}}) into a\n"
    "message signed by this member and encrypted for each recipient with its key\n"
    "from the verified directory; writes it to stdout (binary). Offline: send it\n"
    "with 'casenet send' instead to go through the broker.\n"
    "\n"
    "options:\n"
    "  -T, --to ID|@GROUP      recipients: member ids or @group (its active\n"
    "                          members but you); comma-separated and/or repeated;\n"
    "                          never your own id\n"
    "  -k, --kind KIND         referral, status, info-request, info-response,\n"
    "                          takedown-request, takedown-result, correction,\n"
    "                          withdraw, erase (must match the payload)\n"
    "  -u, --urgency U         emergency, urgent-takedown, standard (default), info\n"
    "  -s, --status S          actual (default), exercise or test (drills)\n"
    "  -c, --case HEX32        case thread reference (32 hex digits)\n"
    "  -r, --reply-to HEX32    the message id this answers\n"
    "  -e, --expires-in DUR    undeliverable after 90s, 15m, 12h, 7d, ... (default never)\n"
    "  -H, --home DIR          the member home\n"
    "  -h, --help              this text\n"
    "\n"
    "Invalid payload JSON fails with exit 1 and names the field.\n"
    "\n"
    "example:\n"
    "  casenet seal --to vn.police.a05 --kind referral --urgency emergency \\\n"
    "      < referral.json > referral.msg\n";

int cmd_seal(int argc, char **argv)
{
    struct seal_args a;
    int ex = seal_parse(argc, argv, seal_usage, false, &a);
    if (ex >= 0)
        return ex;
    if (isatty(STDOUT_FILENO))
        return cli_usage_error("refusing to write a binary message to a terminal; redirect "
                               "stdout to a file");
    char *path = home_path(a.home);
    if (!path)
        return CLI_EFAIL;
    struct home *h = NULL;
    casenet_buf env = {0};
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    ex = home_open(path, &h);
    if (ex == CLI_OK)
        ex = seal_stdin(h, &a, &env, id);
    if (ex == CLI_OK) {
        int rc = cli_write_stdout(env.data, env.len);
        if (rc != CASENET_OK) {
            ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot write the message to stdout");
        } else {
            char hex[33];
            cli_id16_hex(id, hex);
            fprintf(stderr, "sealed message %s (%zu bytes) from %s\n", hex, env.len, h->member);
        }
    }
    casenet_buf_free(&env);
    home_free(h);
    free(path);
    return ex;
}

/* ------------------------------------------------------------ open */

static const char open_usage[] =
    "usage: casenet open [--home DIR] [--json-meta] < message > payload.json\n"
    "\n"
    "Verifies a message (stdin) against the sender's key in the home's directory,\n"
    "checks that this member is a recipient, decrypts it and prints the payload\n"
    "as JSON on stdout. The verified sender, kind, urgency and message id go to\n"
    "stderr. Anything that does not verify exits 3 and prints no payload.\n"
    "\n"
    "options:\n"
    "  -H, --home DIR     the member home\n"
    "  -m, --json-meta    metadata on stderr as one JSON object\n"
    "  -h, --help         this text\n"
    "\n"
    "example:\n"
    "  casenet open < referral.msg > referral.json\n";

int cmd_open(int argc, char **argv)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},
        {"json-meta", no_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *home_opt = NULL;
    bool json_meta = false;
    int c;
    while ((c = cli_getopt(argc, argv, "H:mh", opts)) != -1) {
        switch (c) {
        case 'H':
            home_opt = optarg;
            break;
        case 'm':
            json_meta = true;
            break;
        case 'h':
            return cli_help(open_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s' (the message comes on stdin)",
                               argv[optind]);
    char *path = home_path(home_opt);
    if (!path)
        return CLI_EFAIL;
    struct home *h = NULL;
    casenet_buf env = {0}, payload = {0}, json = {0};
    casenet_message_info info = {0};
    int ex = home_open(path, &h);
    if (ex != CLI_OK)
        goto cleanup;
    int rc = cli_read_stream(stdin, ENVELOPE_MAX, &env);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot read the message from stdin");
        goto cleanup;
    }
    rc = casenet_open(h->keys, h->dir, env.data, env.len, &info, &payload);
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
    home_free(h);
    free(path);
    return ex;
}
