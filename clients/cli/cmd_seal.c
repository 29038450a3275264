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
        {"attach", required_argument, NULL, 'A'},   {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->status = CASENET_MSG_ACTUAL;
    a->timeout_ms = 10000;
    bool have_kind = false;
    int c;
    while ((c = cli_getopt(argc, argv, "H:T:k:u:s:c:r:e:b:t:A:qh", opts)) != -1) {
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
        case 'A':
            if (!net)
                return cli_usage_error("--attach is for 'casenet send' (the file is uploaded)");
            if (a->n_attach == CASENET_MAX_BLOBS)
                return cli_usage_error("too many --attach (at most %d)", CASENET_MAX_BLOBS);
            a->attach[a->n_attach++] = optarg;
            break;
        case 'q':
            if (!net)
                return cli_usage_error("--quiet is for 'casenet send'");
            a->quiet = true;
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

/* The rules sealing applies, checked first for a message that names what is
 * wrong: one urgency (the payload's, which --urgency may repeat but not
 * contradict), the fields the kind requires, the role matrix for the ids
 * named in --to. *urgency gets the message's urgency. */
static int payload_rules(const struct home *h, const struct seal_args *a,
                         const casenet_buf *payload, casenet_urgency *urgency, char *err,
                         size_t errlen)
{
    casenet_urgency stated = 0;
    int rc = casenet_payload_urgency(payload->data, payload->len, &stated);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot read the payload");
    if (stated && a->urgency && stated != a->urgency)
        return cli_fail(CLI_LOCAL, CASENET_EINVAL,
                        "drop --urgency: the payload's urgency is the one that counts",
                        "--urgency %s contradicts the payload's urgency %s",
                        casenet_urgency_name(a->urgency), casenet_urgency_name(stated));
    *urgency = stated ? stated : a->urgency;
    rc = casenet_payload_check(payload->data, payload->len, a->kind, *urgency, err, errlen);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, CASENET_EINVAL,
                        "see proto/PROTOCOL.md section 6 for each kind's required fields",
                        "invalid payload: %s", err);
    for (size_t i = 0; i < a->n_to; i++) {
        if (a->to[i][0] == '@')
            continue;
        rc = casenet_role_check(h->dir, h->member, a->kind, &a->to[i], 1, err, errlen);
        if (rc != CASENET_OK)
            return cli_fail(CLI_LOCAL, rc, "see the role matrix in proto/PROTOCOL.md section 6.1",
                            "%s", err);
    }
    return CLI_OK;
}

int seal_stdin(const struct home *h, const struct seal_args *a, casenet_buf *envelope,
               uint8_t message_id[CASENET_MESSAGE_ID_BYTES])
{
    int ex = check_recipients(h, a);
    if (ex != CLI_OK)
        return ex;
    casenet_buf own = {0}, payload = {0};
    casenet_buf *json = a->json ? a->json : &own;
    if (!json->data && isatty(STDIN_FILENO))
        return cli_usage_error("the payload JSON is read from stdin, which is a terminal: "
                               "redirect a file (< payload.json) or pipe it in");
    int rc = json->data ? CASENET_OK : cli_read_stream(stdin, JSON_MAX, json);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot read the payload JSON from stdin");
    char err[256] = "";
    rc = casenet_payload_from_json((const char *)json->data, json->len, a->kind, &payload, err,
                                   sizeof err);
    casenet_buf_free(&own);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, "see docs/cli.md for the payload format",
                        "invalid payload JSON: %s", err[0] ? err : casenet_strerror(rc));
    casenet_urgency urgency = 0;
    ex = payload_rules(h, a, &payload, &urgency, err, sizeof err);
    if (ex != CLI_OK) {
        casenet_buf_free(&payload);
        return ex;
    }
    uint8_t blob_ids[CASENET_MAX_BLOBS][CASENET_BLOB_ID_BYTES];
    if (a->atts && a->n_attach) {
        casenet_buf with = {0};
        rc =
            casenet_payload_add_attachments(payload.data, payload.len, a->atts, a->n_attach, &with);
        casenet_buf_free(&payload);
        if (rc != CASENET_OK)
            return cli_fail(CLI_LOCAL, rc, NULL, "cannot add the attachments to the payload");
        payload = with;
        for (size_t i = 0; i < a->n_attach; i++)
            memcpy(blob_ids[i], a->atts[i].blob_id, CASENET_BLOB_ID_BYTES);
    }

    int64_t now = cn_now_ms();
    casenet_seal_opts so = {
        .kind = a->kind,
        .urgency = urgency,
        .status = a->status,
        .to = a->to,
        .n_to = a->n_to,
        .in_reply_to = a->has_reply_to ? a->reply_to : NULL,
        .case_ref = a->has_case ? a->case_ref : NULL,
        .created_at_ms = now,
        .expires_at_ms = a->expires_in_ms ? now + a->expires_in_ms : 0,
        .blob_ids = a->atts ? (const uint8_t(*)[CASENET_BLOB_ID_BYTES])blob_ids : NULL,
        .n_blob_ids = a->atts ? a->n_attach : 0,
    };
    rc = casenet_seal(h->keys, h->dir, &so, payload.data, payload.len, envelope, message_id);
    casenet_buf_free(&payload);
    if (rc == CASENET_EUNKNOWNRCPT)
        return cli_fail(CLI_LOCAL, rc, "run 'casenet directory pull' or check the ids",
                        "a recipient (or every member of a group) is not an active member");
    if (rc == CASENET_EFORBIDDEN) {
        for (size_t i = 0; i < a->n_to; i++)
            if (strcmp(a->to[i], h->member) == 0)
                return cli_fail(CLI_LOCAL, rc, "remove your own id from --to",
                                "a member cannot address a message to itself (%s)", h->member);
        return cli_fail(CLI_LOCAL, rc, "see the role matrix in proto/PROTOCOL.md section 6.1",
                        "a member of a group you named may not receive a %s message from %s",
                        casenet_kind_name(a->kind), h->member);
    }
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot seal: %s", casenet_strerror(rc));
    return CLI_OK;
}

int open_fail_detail(int err, const char *reader, const char *detail, const uint8_t *env,
                     size_t len)
{
    if (err == CASENET_EBADREQ && detail && *detail)
        return cli_fail(CLI_VERIFY, err, "ask the sender to correct and resend it",
                        "the message breaks the rules of its kind: %s", detail);
    return open_fail(err, reader, env, len);
}

int open_fail(int err, const char *reader, const uint8_t *env, size_t len)
{
    char key_id[CASENET_KEY_ID_CHARS + 1] = "?";
    switch (err) {
    case CASENET_EKEYRETIRED:
    case CASENET_EKEYUNKNOWN:
        if (casenet_envelope_box_key_id(env, len, reader, key_id) != CASENET_OK)
            strcpy(key_id, "?");
        if (err == CASENET_EKEYRETIRED)
            return cli_fail(CLI_VERIFY, err,
                            "the message is intact: restore a keyring that holds the key (the "
                            "old member.key), then rotate with 'casenet keygen --rotate', "
                            "which keeps retired keys",
                            "the message is wrapped to box key %s, a retired key of %s that "
                            "this keyring no longer holds",
                            key_id, reader);
        return cli_fail(CLI_VERIFY, err,
                        "the message is intact: this home's keyring is not the one the "
                        "authority admitted; use that keyring, or have the authority admit "
                        "this one's .pub",
                        "the message is wrapped to box key %s, which the keyring of %s never "
                        "held",
                        key_id, reader);
    case CASENET_ESTALEDIR:
        return cli_fail(CLI_VERIFY, err, "ask the sender to pull the directory and send it again",
                        "the message is wrapped to a recipient key replaced before it was "
                        "sealed: the sender used an out-of-date directory");
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

int print_opened(const casenet_message_info *info, const casenet_buf *payload, bool json_meta,
                 bool canonical)
{
    casenet_buf json = {0};
    int rc = canonical ? casenet_payload_to_json(payload->data, payload->len, &json)
                       : casenet_payload_to_display_json(payload->data, payload->len, &json);
    if (rc != CASENET_OK)
        return cli_fail(CLI_VERIFY, rc, NULL, "cannot convert the payload to JSON: %s",
                        casenet_strerror(rc));
    print_message_info(stderr, info, json_meta);
    rc = cli_write_stdout(json.data, json.len);
    if (rc == CASENET_OK && (json.len == 0 || json.data[json.len - 1] != '\n'))
        rc = cli_write_stdout("\n", 1);
    casenet_buf_free(&json);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot write the payload to stdout");
    return CLI_OK;
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
    fprintf(f, "  from     %s (signing key %s)\n", cli_safe(info->sender),
            cli_safe(info->sign_key_id));
    fprintf(f, "  to       ");
    for (size_t i = 0; i < info->n_recipients; i++)
        fprintf(f, "%s%s", i ? ", " : "", cli_safe(info->recipients[i]));
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
    "  -u, --urgency U         emergency, urgent-takedown, standard, info; a\n"
    "                          referral's comes from its payload (a different\n"
    "                          --urgency is refused), other kinds default to\n"
    "                          standard\n"
    "  -s, --status S          actual (default), exercise or test (drills)\n"
    "  -c, --case HEX32        case thread reference (32 hex digits)\n"
    "  -r, --reply-to HEX32    the message id this answers\n"
    "  -e, --expires-in DUR    undeliverable after 90s, 15m, 12h, 7d, ... (default never)\n"
    "  -H, --home DIR          the member home\n"
    "  -h, --help              this text\n"
    "\n"
    "Invalid payload JSON, a payload without its kind's required fields (each\n"
    "one named) and a kind the sender's or a recipient's roles do not allow\n"
    "(proto/PROTOCOL.md section 6) fail with exit 1.\n"
    "\n"
    "example:\n"
    "  casenet seal --to vn.police.a05 --kind referral < referral.json > referral.msg\n";

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
    "usage: casenet open [--home DIR] [--json] [--json-meta] < message > payload.json\n"
    "\n"
    "Verifies a message (stdin) against the sender's key in the home's directory,\n"
    "checks that this member is a recipient, decrypts it and prints the payload\n"
    "as JSON on stdout. The verified sender, kind, urgency and message id go to\n"
    "stderr. Anything that does not verify exits 3 and prints no payload, as does\n"
    "a payload without its kind's required fields or whose urgency is not the\n"
    "header's (the error names them); a message wrapped to a box key this\n"
    "keyring does not hold exits 1 and names the key (RETIRED_KEY_MISSING or\n"
    "UNKNOWN_KEY; see 'casenet keygen --help'). On a terminal ids and hashes\n"
    "show in hex and times as UTC dates; redirected (or with --json) the\n"
    "payload is protobuf's canonical JSON.\n"
    "\n"
    "options:\n"
    "  -H, --home DIR     the member home\n"
    "  -j, --json         canonical protobuf JSON even on a terminal\n"
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
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *home_opt = NULL;
    bool json_meta = false, canonical = !isatty(STDOUT_FILENO);
    int c;
    while ((c = cli_getopt(argc, argv, "H:mjh", opts)) != -1) {
        switch (c) {
        case 'j':
            canonical = true;
            break;
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
    casenet_buf env = {0}, payload = {0};
    casenet_message_info info = {0};
    int ex = home_open(path, &h);
    if (ex != CLI_OK)
        goto cleanup;
    int rc = cli_read_stream(stdin, ENVELOPE_MAX, &env);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot read the message from stdin");
        goto cleanup;
    }
    char why[256];
    rc = casenet_open_detail(h->keys, h->dir, env.data, env.len, &info, &payload, why, sizeof why);
    if (rc != CASENET_OK) {
        ex = open_fail_detail(rc, h->member, why, env.data, env.len);
        goto cleanup;
    }
    ex = print_opened(&info, &payload, json_meta, canonical);
cleanup:
    casenet_message_info_clear(&info);
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
    home_free(h);
    free(path);
    return ex;
}
