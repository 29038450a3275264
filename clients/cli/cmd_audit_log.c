/* cmd_audit_log.c - `casenet audit log`: the broker's audit events, filtered,
 * as a table or JSON Lines (what the broker says: verify and prove check). */
#include "cmd_audit.h"

#include "casenet.pb-c.h"
#include "cli.h"
#include "commands.h"
#include "util.h"

#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An event by the name audit log prints ("escalated") or by the name users
 * see for the same thing elsewhere: the inbox's kinds and the verbs. */
static bool kind_parse(const char *name, int *kind)
{
    static const struct {
        const char *alias, *event;
    } aliases[] = {
        {"escalation", "escalated"},
        {"dead-letter", "dead-lettered"},
        {"submit", "submitted"},
        {"reject", "rejected"},
        {"fetch", "fetched"},
        {"directory", "directory-published"},
        {"publish", "directory-published"},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcmp(name, aliases[i].alias) == 0)
            name = aliases[i].event;
    }
    char buf[AUDIT_KIND_NAME_MAX];
    for (unsigned i = 0; i < casenet__v1__audit_kind__descriptor.n_values; i++) {
        int v = casenet__v1__audit_kind__descriptor.values[i].value;
        if (v != 0 && strcmp(audit_kind_name(v, buf), name) == 0) {
            *kind = v;
            return true;
        }
    }
    return false;
}

/* A time for --since / --until: YYYY-MM-DD[THH:MM[:SS]][Z] in UTC, or a
 * duration ("15m", "7d") meaning that long ago. */
static bool parse_when(const char *s, int64_t *ms)
{
    int64_t ago = 0;
    if (cli_parse_duration(s, &ago)) {
        *ms = cn_now_ms() - ago;
        return *ms > 0;
    }
    struct tm tm;
    const char *forms[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%MZ",
                           "%Y-%m-%dT%H:%M",     "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(s, forms[i], &tm);
        if (end && *end == '\0') {
            time_t t = timegm(&tm);
            if (t <= 0)
                return false;
            *ms = (int64_t)t * 1000;
            return true;
        }
    }
    return false;
}

static const char log_usage[] =
    "usage: casenet audit log [--member ID] [--message HEX32] [--case HEX32]\n"
    "                         [--kind KIND] [--since TIME] [--until TIME]\n"
    "                         [--limit N] [--json] [--wide] [--home DIR]\n"
    "                         [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Lists the broker's audit events, oldest first: index, time (UTC), event,\n"
    "actor, message id (first 10 digits), status and parties, in 100 columns\n"
    "(--wide: every column in full, local time too). A coordinator sees every\n"
    "event; any other member only the events it is actor or party of. The\n"
    "query itself is recorded as an audit-queried event. The events are what\n"
    "the broker says; 'casenet audit verify' and 'casenet audit prove' check them.\n"
    "\n"
    "options:\n"
    "  -m, --member ID          events that member is actor or party of\n"
    "                           (coordinators only, for another member than you)\n"
    "  -M, --message HEX32      events about that message id (or a unique prefix\n"
    "                           of one this member sent or received)\n"
    "  -c, --case HEX32         events of that case thread\n"
    "  -k, --kind KIND          submitted, rejected, fetched, receipt, escalated\n"
    "                           (or escalation), dead-lettered (or dead-letter),\n"
    "                           directory-published, auth-denied, audit-queried,\n"
    "                           purged, broker-start, broker-stop, log-restored\n"
    "  -s, --since TIME         from TIME on: YYYY-MM-DD[THH:MM[:SS]] (UTC) or a\n"
    "                           duration ago (90s, 15m, 12h, 7d)\n"
    "  -u, --until TIME         before TIME (same forms)\n"
    "  -n, --limit N            at most N events (default: all)\n"
    "  -w, --wide               every column in full\n"
    "  -j, --json               JSON Lines, one event per line\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet audit log --kind submitted --since 1d\n";

/* The status column: the error of a refusal, a receipt's status, else ok. */
static const char *event_status(const Casenet__V1__AuditEvent *e)
{
    if (e->error)
        return casenet_errname((int)e->error);
    if (e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_RECEIPT && e->receipt_status)
        return casenet_receipt_status_name((int)e->receipt_status);
    return "ok";
}

static void hex_of(const ProtobufCBinaryData *b, char *out, size_t cap)
{
    if (b->len == 0 || cap < 2 * b->len + 1) {
        snprintf(out, cap, "-");
        return;
    }
    sodium_bin2hex(out, cap, b->data, b->len);
}

static void print_event(uint64_t index, const Casenet__V1__AuditEvent *e, bool json, bool wide)
{
    char kind[AUDIT_KIND_NAME_MAX], mid[65], cref[65], ehash[65];
    audit_kind_name((int)e->kind, kind);
    hex_of(&e->message_id, mid, sizeof mid);
    hex_of(&e->case_ref, cref, sizeof cref);
    hex_of(&e->envelope_hash, ehash, sizeof ehash);
    if (json) {
        char iso[40];
        cli_format_iso(e->time_ms, iso, sizeof iso);
        json_t *parties = json_array();
        for (size_t i = 0; parties && i < e->n_parties; i++)
            json_array_append_new(parties, json_string(e->parties[i]));
        json_t *o = json_pack("{s:I, s:s, s:I, s:s, s:s, s:o, s:s}", "index", (json_int_t)index,
                              "time", iso, "time_ms", (json_int_t)e->time_ms, "event", kind,
                              "actor", e->actor ? e->actor : "", "parties",
                              parties ? parties : json_array(), "status", event_status(e));
        if (o) {
            if (e->message_id.len)
                json_object_set_new(o, "message_id", json_string(mid));
            if (e->case_ref.len)
                json_object_set_new(o, "case", json_string(cref));
            if (e->message_kind)
                json_object_set_new(o, "message_kind",
                                    json_string(casenet_kind_name((int)e->message_kind)));
            if (e->urgency)
                json_object_set_new(o, "urgency",
                                    json_string(casenet_urgency_name((int)e->urgency)));
            if (e->message_status)
                json_object_set_new(o, "message_status",
                                    json_string(casenet_msg_status_name((int)e->message_status)));
            if (e->envelope_hash.len)
                json_object_set_new(o, "envelope_hash", json_string(ehash));
            if (e->receipt_status)
                json_object_set_new(
                    o, "receipt_status",
                    json_string(casenet_receipt_status_name((int)e->receipt_status)));
            if (e->error)
                json_object_set_new(o, "error", json_string(casenet_errname((int)e->error)));
            if (e->detail && e->detail[0])
                json_object_set_new(o, "detail", json_string(e->detail));
            if (e->directory_version)
                json_object_set_new(o, "directory_version",
                                    json_integer((json_int_t)e->directory_version));
            if (e->size)
                json_object_set_new(o, "size", json_integer((json_int_t)e->size));
        }
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(o);
        return;
    }
    char local[64], utc[64], parties[256] = "";
    cli_format_time(e->time_ms, false, local, sizeof local);
    cli_format_time(e->time_ms, true, utc, sizeof utc);
    size_t off = 0;
    for (size_t i = 0; i < e->n_parties && off + 1 < sizeof parties; i++) {
        int w = snprintf(parties + off, sizeof parties - off, "%s%s", i ? "," : "", e->parties[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (off >= sizeof parties)
        memcpy(parties + sizeof parties - 4, "...", 4);
    if (wide) {
        printf("%-8" PRIu64 "  %-23s  %-23s  %-19s  %-20s  %-32s  %-12s  %s\n", index, local, utc,
               kind, e->actor && e->actor[0] ? cli_safe(e->actor) : "(broker)", mid,
               event_status(e), parties[0] ? cli_safe(parties) : "-");
        return;
    }
    /* 100 columns: UTC time to the second, the id's first digits. */
    char actor[40];
    cli_cell(e->actor && e->actor[0] ? cli_safe(e->actor) : "(broker)", 14, actor, sizeof actor);
    mid[CLI_TABLE_ID_DIGITS] = '\0';
    cli_table_line(false, "%-7" PRIu64 " %-19.19s  %-19s  %s  %-10s  %-12s  %s", index, utc, kind,
                   actor, mid, event_status(e), parties[0] ? cli_safe(parties) : "-");
}

/* What `audit log` was asked. */
struct log_args {
    struct audit_opts o;
    casenet_audit_filter f;
    uint8_t cref[CASENET_CASE_REF_BYTES];
    uint64_t limit;
    bool json, wide;
    const char *message_arg; /* resolved once connected: it may be a prefix */
};

/* Parses the options into *la; -1 to go on, else the exit code. */
static int log_parse(int argc, char **argv, struct log_args *la)
{
    static const struct option opts[] = {
        {"member", required_argument, NULL, 'm'},
        {"message", required_argument, NULL, 'M'},
        {"case", required_argument, NULL, 'c'},
        {"kind", required_argument, NULL, 'k'},
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"wide", no_argument, NULL, 'w'},
        AUDIT_SHARED_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    *la = (struct log_args){.o = {.timeout_ms = AUDIT_DEFAULT_TIMEOUT_MS}};
    int c;
    while ((c = cli_getopt(argc, argv, "m:M:c:k:s:u:n:jwH:b:t:h", opts)) != -1) {
        switch (c) {
        case 'w':
            la->wide = true;
            break;
        case 'm':
            if (!casenet_member_id_valid(optarg))
                return cli_usage_error("--member wants a member id, not '%s'", optarg);
            la->f.member = optarg;
            break;
        case 'M':
            if (!cli_id_arg_ok(optarg))
                return cli_usage_error("--message: " ID_ARG_WANTED, optarg);
            la->message_arg = optarg; /* resolved once connected: it may be a prefix */
            break;
        case 'c':
            if (!cli_parse_id16(optarg, la->cref))
                return cli_usage_error("--case wants 32 hex digits, not '%s'", optarg);
            la->f.case_ref = la->cref;
            break;
        case 'k':
            if (!kind_parse(optarg, &la->f.kind))
                return cli_usage_error("unknown --kind '%s': submitted, rejected, fetched, "
                                       "receipt, escalated (escalation), dead-lettered "
                                       "(dead-letter), directory-published, auth-denied, "
                                       "audit-queried, purged, broker-start, broker-stop, "
                                       "log-restored",
                                       optarg);
            break;
        case 's':
            if (!parse_when(optarg, &la->f.from_ms))
                return cli_usage_error("--since wants YYYY-MM-DD[THH:MM[:SS]] or a duration, not "
                                       "'%s'",
                                       optarg);
            break;
        case 'u':
            if (!parse_when(optarg, &la->f.to_ms))
                return cli_usage_error("--until wants YYYY-MM-DD[THH:MM[:SS]] or a duration, not "
                                       "'%s'",
                                       optarg);
            break;
        case 'n':
            if (!cli_parse_uint(optarg, 1, UINT32_MAX, &la->limit))
                return cli_usage_error("--limit wants a positive number, not '%s'", optarg);
            break;
        case 'j':
            la->json = true;
            break;
        case 'h':
            return cli_help(log_usage);
        default: {
            int ex = audit_shared_opt(c, &la->o);
            if (ex >= 0)
                return ex;
        }
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    return -1;
}

int audit_log(int argc, char **argv)
{
    struct log_args la;
    int ex = log_parse(argc, argv, &la);
    if (ex >= 0)
        return ex;
    casenet_audit_filter f = la.f;
    uint8_t mid[CASENET_MESSAGE_ID_BYTES];
    uint64_t limit = la.limit;
    bool json = la.json, wide = la.wide;
    const char *message_arg = la.message_arg;
    struct audit_ctx a;
    ex = audit_ctx_open(&la.o, true, &a);
    if (ex == CLI_OK && message_arg) {
        ex = net_resolve_id(a.c, message_arg, true, mid);
        f.message_id = mid;
    }
    if (ex != CLI_OK)
        goto cleanup;
    if (!json)
        cli_table_line(wide,
                       wide ? "%-8s  %-23s  %-23s  %-19s  %-20s  %-32s  %-12s  %s"
                            : "%-7s %-19s  %-19s  %-14s  %-10s  %-12s  %s",
                       "INDEX", wide ? "TIME (LOCAL)" : "TIME (UTC)", wide ? "TIME (UTC)" : "EVENT",
                       wide ? "EVENT" : "ACTOR", wide ? "ACTOR" : "MESSAGE",
                       wide ? "MESSAGE" : "STATUS", wide ? "STATUS" : "PARTIES",
                       wide ? "PARTIES" : "");
    uint64_t cursor = 0, shown = 0;
    bool more = true;
    while (more && (limit == 0 || shown < limit)) {
        casenet_audit_record *recs = NULL;
        size_t n = 0;
        uint64_t next = cursor;
        uint32_t page = AUDIT_LOG_PAGE;
        if (limit && limit - shown < page)
            page = (uint32_t)(limit - shown);
        int rc = casenet_client_audit_query(a.c, &f, cursor, page, &recs, &n, &next, &more);
        if (rc != CASENET_OK) {
            ex = net_fail(a.c, rc, "AuditQuery failed");
            goto cleanup;
        }
        for (size_t i = 0; i < n && (limit == 0 || shown < limit); i++) {
            Casenet__V1__AuditEvent *e =
                casenet__v1__audit_event__unpack(NULL, recs[i].event.len, recs[i].event.data);
            if (!e || e->index != recs[i].index) {
                casenet__v1__audit_event__free_unpacked(e, NULL);
                casenet_audit_records_free(recs, n);
                ex = cli_fail(CLI_VERIFY, CASENET_EBADREQ, NULL,
                              "the broker returned a malformed event at index %" PRIu64,
                              recs[i].index);
                goto cleanup;
            }
            print_event(recs[i].index, e, json, wide);
            casenet__v1__audit_event__free_unpacked(e, NULL);
            shown++;
        }
        casenet_audit_records_free(recs, n);
        if (next <= cursor)
            break; /* no progress: never loop forever on a confused broker */
        cursor = next;
    }
    if (fflush(stdout) != 0) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot write to stdout");
        goto cleanup;
    }
    if (!json && shown == 0)
        fprintf(stderr, "(no audit events match)\n");
    ex = CLI_OK;
cleanup:
    audit_ctx_close(&a);
    return ex;
}
