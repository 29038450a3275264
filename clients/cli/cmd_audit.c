/* cmd_audit.c - `casenet audit ...`: the broker's verifiable audit log (PROTOCOL.md
 * §10): `log` (a filtered table or JSON Lines), `verify` (live or an export
 * file, from the head remembered in the home), `export` (the export file on
 * stdout) and `prove` (a member's own events are included under a signed
 * head). The broker's signing key and the log's origin come from the home's
 * verified directory, never from the broker. */
#include "auditlog.h"
#include "casenet.pb-c.h"
#include "checkpoint.h"
#include "cli.h"
#include "commands.h"
#include "directory_impl.h"
#include "home.h"
#include "merkle.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_STATE_FILE    "audit.state" /* in the home: the last head verified */
#define LOG_PAGE            1000u
#define EXPORT_PAGE         10000u
#define PROVE_HEAD_WAIT_MS  15000 /* how long `prove` waits for a head covering its events */
#define PROVE_EVENTS_MAX    1000u
#define PROGRESS_BAR_CHARS  30
#define DEFAULT_TIMEOUT_MS  10000
#define KIND_PREFIX         "AUDIT_KIND_"
#define AUDIT_KIND_NAME_MAX 64

/* ------------------------------------------------------------ shared */

/* Options every audit subcommand takes. */
struct audit_opts {
    const char *home;
    const char *broker;
    int timeout_ms;
};

/* What verifying needs, from the home's directory. */
struct audit_ctx {
    char *path; /* the home */
    struct home *h;
    char *state_path;
    char origin[CKPT_ORIGIN_MAX + 1];
    char network[AUDITV_NETWORK_MAX + 1];
    char broker_id[CASENET_MEMBER_ID_MAX + 1];
    uint8_t broker_pk[CASENET_SIGN_PK_BYTES];
    casenet_client *c;
};

static void ctx_close(struct audit_ctx *a)
{
    casenet_client_free(a->c);
    home_free(a->h);
    free(a->state_path);
    free(a->path);
    memset(a, 0, sizeof *a);
}

/* Opens the home and takes the broker's id, key and the log's origin from
 * its directory; connects unless offline. Returns an exit code. */
static int ctx_open(const struct audit_opts *o, bool connect, struct audit_ctx *a)
{
    memset(a, 0, sizeof *a);
    a->path = home_path(o->home);
    if (!a->path)
        return CLI_EFAIL;
    int ex = home_open(a->path, &a->h);
    if (ex != CLI_OK)
        return ex;
    casenet_member broker;
    if (casenet_directory_broker(a->h->dir, &broker) != CASENET_OK || !broker.sign_pk)
        return cli_fail(CLI_LOCAL, CASENET_ENOTFOUND, "update the home's directory",
                        "the directory lists no broker with a signing key");
    const char *network = cn_directory_audit_network(a->h->dir);
    if (!network || strlen(network) > AUDITV_NETWORK_MAX ||
        ckpt_origin(network, a->origin) != CASENET_OK)
        return cli_fail(CLI_VERIFY, CASENET_EBADREQ, NULL,
                        "the directory's network name is not a valid log origin");
    snprintf(a->network, sizeof a->network, "%s", network);
    snprintf(a->broker_id, sizeof a->broker_id, "%s", broker.id);
    memcpy(a->broker_pk, broker.sign_pk, sizeof a->broker_pk);
    a->state_path = cli_path(a->path, AUDIT_STATE_FILE);
    if (!a->state_path)
        return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    if (connect)
        return net_connect(a->h, o->broker, o->timeout_ms, &a->c);
    return CLI_OK;
}

/* The remembered head (the empty state when none). Returns an exit code. */
static int load_state(const struct audit_ctx *a, struct auditv_state *st)
{
    int rc = auditv_state_load(a->state_path, st);
    if (rc == CASENET_ENOTFOUND) {
        auditv_state_init(st);
        return CLI_OK;
    }
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, "remove it to start trusting from scratch",
                        "cannot read the remembered head %s", a->state_path);
    return CLI_OK;
}

/* Handles the options shared by every subcommand; -1 when c was one. */
static int shared_opt(int c, struct audit_opts *o)
{
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

#define SHARED_LONGOPTS                                                                            \
    {"home", required_argument, NULL, 'H'}, {"broker", required_argument, NULL, 'b'},              \
        {"timeout", required_argument, NULL, 't'},                                                 \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* "submitted", "directory-published", ... for an AuditKind. */
static const char *kind_name(int kind, char out[AUDIT_KIND_NAME_MAX])
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&casenet__v1__audit_kind__descriptor, kind);
    if (!v || strncmp(v->name, KIND_PREFIX, strlen(KIND_PREFIX)) != 0) {
        snprintf(out, AUDIT_KIND_NAME_MAX, "kind-%d", kind);
        return out;
    }
    size_t i = 0;
    for (const char *p = v->name + strlen(KIND_PREFIX); *p && i + 1 < AUDIT_KIND_NAME_MAX; p++)
        out[i++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    out[i] = '\0';
    return out;
}

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
        if (v != 0 && strcmp(kind_name(v, buf), name) == 0) {
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

/* Verifies a checkpoint from the broker with the directory's broker key.
 * Returns an exit code (3 when it does not verify). */
static int verify_head(const struct audit_ctx *a, const casenet_buf *ck, struct ckpt_head *h,
                       const char *what)
{
    int rc = ckpt_verify(ck->data, ck->len, a->broker_id, a->broker_pk, a->origin, h);
    if (rc == CASENET_OK)
        return CLI_OK;
    struct ckpt_head u; /* unverified: only to name it */
    if (ckpt_parse(ck->data, ck->len, &u) == CASENET_OK)
        return cli_fail(CLI_VERIFY, rc, NULL,
                        "head of size %" PRIu64 " (%s) does not verify with the directory's key "
                        "of %s (origin %s): forged or altered",
                        u.size, what, a->broker_id, a->origin);
    return cli_fail(CLI_VERIFY, rc, NULL, "%s is not a valid checkpoint", what);
}

/* Checks a verified head h against the remembered state st: not smaller,
 * the same root at the same size, else a consistency proof from the broker
 * that verifies. Returns an exit code. When deferred is not NULL, a proof
 * that does not verify is only warned about and *deferred set: the caller
 * recomputes the log, which names the place of the change, and fails
 * afterwards. */
static int check_against_remembered(struct audit_ctx *a, const struct auditv_state *st,
                                    const struct ckpt_head *h, bool *deferred)
{
    if (st->size == 0)
        return CLI_OK;
    if (h->size < st->size)
        return cli_fail(CLI_VERIFY, CASENET_EBADSIG, NULL,
                        "remembered head of size %" PRIu64 ": the broker's latest head has only "
                        "%" PRIu64
                        " events: its history was cut short or rewritten (after a restore "
                        "from a backup, 'casenet audit verify --full' reports the epoch change)",
                        st->size, h->size);
    if (h->size == st->size) {
        if (sodium_memcmp(h->root, st->root, MERKLE_HASH_BYTES) != 0)
            return cli_fail(CLI_VERIFY, CASENET_EBADSIG, NULL,
                            "remembered head of size %" PRIu64 ": the broker now signs another "
                            "root at that size: its history in [0, %" PRIu64 ") was rewritten",
                            st->size, st->size);
        return CLI_OK;
    }
    casenet_buf hashes = {0}, ck = {0};
    int rc = casenet_client_audit_consistency(a->c, st->size, h->size, &hashes, &ck);
    casenet_buf_free(&ck);
    if (rc != CASENET_OK) {
        casenet_buf_free(&hashes);
        return net_fail(a->c, rc, "AuditProof (consistency) failed");
    }
    rc = merkle_verify_consistency(st->size, h->size,
                                   (const uint8_t(*)[MERKLE_HASH_BYTES])hashes.data,
                                   hashes.len / MERKLE_HASH_BYTES, st->root, h->root);
    casenet_buf_free(&hashes);
    if (rc == CASENET_OK)
        return CLI_OK;
    if (deferred) {
        cli_warn("remembered head of size %" PRIu64 ": the broker's head of size %" PRIu64
                 " is not consistent with it (its consistency proof does not verify); "
                 "recomputing the log to find where",
                 st->size, h->size);
        *deferred = true;
        return CLI_OK;
    }
    return cli_fail(CLI_VERIFY, CASENET_EBADSIG, NULL,
                    "remembered head of size %" PRIu64 ": the broker's head of size %" PRIu64
                    " is not consistent with it (no valid consistency proof): the history in "
                    "[0, %" PRIu64 ") was rewritten, or the log since changed",
                    st->size, h->size, st->size);
}

/* ------------------------------------------------------------ progress */

struct progress {
    bool on;
    bool drawn;
    int last_pct;
};

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    struct progress *p = ctx;
    if (!p->on)
        return;
    if (total == 0 || done > total) {
        fprintf(stderr, "\r  verifying  %" PRIu64 " events", done);
        p->drawn = true;
        return;
    }
    int pct = (int)(done * 100 / total);
    if (pct == p->last_pct && done != total)
        return;
    p->last_pct = pct;
    char bar[PROGRESS_BAR_CHARS + 1];
    int fill = pct * PROGRESS_BAR_CHARS / 100;
    for (int i = 0; i < PROGRESS_BAR_CHARS; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[PROGRESS_BAR_CHARS] = '\0';
    fprintf(stderr, "\r  verifying [%s] %3d%%  %" PRIu64 "/%" PRIu64 " events", bar, pct, done,
            total);
    p->drawn = true;
}

static void progress_end(struct progress *p)
{
    if (p->drawn)
        fprintf(stderr, "\n");
    p->drawn = false;
}

/* ------------------------------------------------------------ log */

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
    kind_name((int)e->kind, kind);
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

static int audit_log(int argc, char **argv)
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
        SHARED_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct audit_opts o = {.timeout_ms = DEFAULT_TIMEOUT_MS};
    casenet_audit_filter f = {0};
    uint8_t mid[CASENET_MESSAGE_ID_BYTES], cref[CASENET_CASE_REF_BYTES];
    uint64_t limit = 0;
    bool json = false, wide = false;
    const char *message_arg = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "m:M:c:k:s:u:n:jwH:b:t:h", opts)) != -1) {
        switch (c) {
        case 'w':
            wide = true;
            break;
        case 'm':
            if (!casenet_member_id_valid(optarg))
                return cli_usage_error("--member wants a member id, not '%s'", optarg);
            f.member = optarg;
            break;
        case 'M':
            if (!cli_id_arg_ok(optarg))
                return cli_usage_error("--message: " ID_ARG_WANTED, optarg);
            message_arg = optarg; /* resolved once connected: it may be a prefix */
            break;
        case 'c':
            if (!cli_parse_id16(optarg, cref))
                return cli_usage_error("--case wants 32 hex digits, not '%s'", optarg);
            f.case_ref = cref;
            break;
        case 'k':
            if (!kind_parse(optarg, &f.kind))
                return cli_usage_error("unknown --kind '%s': submitted, rejected, fetched, "
                                       "receipt, escalated (escalation), dead-lettered "
                                       "(dead-letter), directory-published, auth-denied, "
                                       "audit-queried, purged, broker-start, broker-stop, "
                                       "log-restored",
                                       optarg);
            break;
        case 's':
            if (!parse_when(optarg, &f.from_ms))
                return cli_usage_error("--since wants YYYY-MM-DD[THH:MM[:SS]] or a duration, not "
                                       "'%s'",
                                       optarg);
            break;
        case 'u':
            if (!parse_when(optarg, &f.to_ms))
                return cli_usage_error("--until wants YYYY-MM-DD[THH:MM[:SS]] or a duration, not "
                                       "'%s'",
                                       optarg);
            break;
        case 'n':
            if (!cli_parse_uint(optarg, 1, UINT32_MAX, &limit))
                return cli_usage_error("--limit wants a positive number, not '%s'", optarg);
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            return cli_help(log_usage);
        default: {
            int ex = shared_opt(c, &o);
            if (ex >= 0)
                return ex;
        }
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    struct audit_ctx a;
    int ex = ctx_open(&o, true, &a);
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
        uint32_t page = LOG_PAGE;
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
    ctx_close(&a);
    return ex;
}

/* ------------------------------------------------------------ verify */

static const char verify_usage[] =
    "usage: casenet audit verify [--file EXPORT] [--full] [--home DIR]\n"
    "                            [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Verifies the broker's audit log (coordinators: the live log needs the\n"
    "export right). Starting from the head remembered in the home (DIR/audit.state),\n"
    "it fetches every event since, recomputes the Merkle roots, checks every\n"
    "signed head against the broker key of the home's directory, the consistency\n"
    "between consecutive heads and with the remembered head, then remembers the\n"
    "newest head. With --file it does the same offline on an export file\n"
    "('casenet audit export'), which may start at 0 or at the remembered size.\n"
    "A progress bar is drawn on stderr when it is a terminal.\n"
    "\n"
    "Exit 0 only when everything holds; otherwise exit 3, naming the first bad\n"
    "event index, the bad head's size or the byte offset of a malformed record.\n"
    "\n"
    "options:\n"
    "  -f, --file EXPORT        verify an export file instead of the live broker\n"
    "  -F, --full               live: fetch and recompute the whole log from index 0\n"
    "                           (also catches changes to events before the\n"
    "                           remembered head that left the broker's tree intact)\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet audit verify && casenet audit export > audit-$(date +%F).export\n";

/* A head of an export page, parsed (unverified) for ordering. */
struct page_head {
    uint64_t size;
    const casenet_buf *bytes;
};

static int cmp_head(const void *x, const void *y)
{
    const struct page_head *a = x, *b = y;
    return a->size < b->size ? -1 : a->size > b->size;
}

/* Feeds one export page to v: each head right after the event that brings
 * the log to its size (so no head waits long), the head `extra` too when
 * the page covers its size and does not carry the same bytes. */
static int feed_page(struct auditv *v, const casenet_audit_export_page *p, uint64_t from,
                     const casenet_buf *extra, uint64_t extra_size, bool *extra_fed)
{
    size_t n = p->n_checkpoints;
    struct page_head *hs = calloc(n + 1, sizeof *hs);
    if (!hs)
        return CASENET_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        struct ckpt_head h;
        /* A malformed one goes first: the verifier names it. */
        hs[m].size = ckpt_parse(p->checkpoints[i].data, p->checkpoints[i].len, &h) == CASENET_OK
                         ? h.size
                         : 0;
        hs[m++].bytes = &p->checkpoints[i];
        if (extra && !*extra_fed && hs[m - 1].size == extra_size &&
            p->checkpoints[i].len == extra->len &&
            memcmp(p->checkpoints[i].data, extra->data, extra->len) == 0)
            *extra_fed = true;
    }
    if (extra && !*extra_fed && extra_size > from && extra_size <= p->next_index) {
        hs[m].size = extra_size;
        hs[m++].bytes = extra;
        *extra_fed = true;
    }
    qsort(hs, m, sizeof *hs, cmp_head);
    int rc = CASENET_OK;
    size_t k = 0;
    for (; k < m && hs[k].size <= from && rc == CASENET_OK; k++)
        rc = auditv_checkpoint(v, hs[k].bytes->data, hs[k].bytes->len);
    for (size_t i = 0; i < p->n_events && rc == CASENET_OK; i++) {
        rc = auditv_event(v, p->events[i].data, p->events[i].len);
        for (; rc == CASENET_OK && k < m && hs[k].size <= from + i + 1; k++)
            rc = auditv_checkpoint(v, hs[k].bytes->data, hs[k].bytes->len);
    }
    for (; rc == CASENET_OK && k < m; k++)
        rc = auditv_checkpoint(v, hs[k].bytes->data, hs[k].bytes->len);
    free(hs);
    return rc;
}

/* Reports a verifier failure (exit 3). */
static int verify_failed(const struct auditv_failure *f, int rc)
{
    if (f->where == AUDITV_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "verification stopped");
    if (f->where == AUDITV_FILE)
        cli_fail(CLI_VERIFY, f->err, NULL, "byte offset %" PRIu64 ": %s", f->offset, f->reason);
    else
        cli_fail(CLI_VERIFY, f->err, NULL, "%s", f->reason);
    return CLI_ESECURITY;
}

/* Reports an epoch change the verifier accepted (PROTOCOL.md §10.1,
 * LOG_RESTORED). */
static void print_epoch(const struct auditv_epoch *e)
{
    if (!e->changed)
        return;
    uint64_t n = e->restored_size,
             end = e->previous_size > e->remembered_size ? e->previous_size : e->remembered_size;
    printf("epoch change: the broker's log was restored from a backup at size %" PRIu64 "; %" PRIu64
           " events lost (%" PRIu64 "..%" PRIu64 ")%s\n",
           n, end - n, n, end - 1,
           e->previous_size ? "" : ", or more: the broker's operator named no previous head");
}

/* Saves the new trusted state when it moved; prints the trusted head. */
static int verify_done(const struct audit_ctx *a, const struct auditv_state *old,
                       const struct auditv_state *st, uint64_t tail)
{
    if (st->size != old->size || st->time_ms != old->time_ms ||
        st->checkpoint_len != old->checkpoint_len) {
        int rc = auditv_state_save(a->state_path, st);
        if (rc != CASENET_OK)
            return cli_fail(CLI_LOCAL, rc, NULL, "cannot remember the head in %s", a->state_path);
    }
    char when[64];
    cli_format_time(st->time_ms, false, when, sizeof when);
    if (st->size)
        printf("trusted head: size %" PRIu64 ", signed %s by %s\n", st->size, when, a->broker_id);
    else
        printf("no signed head yet: nothing is trusted\n");
    if (tail)
        printf("%" PRIu64 " later events are not yet under a signed head\n", tail);
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "stdout");
}

static int verify_file(struct audit_ctx *a, const char *file, const struct auditv_state *st,
                       struct progress *pg)
{
    struct auditv_epoch epoch = {0};
    FILE *fp = fopen(file, "rb");
    if (!fp)
        return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot open %s: %s", file, strerror(errno));
    struct auditv_config cfg = {
        .origin = a->origin,
        .key_name = a->broker_id,
        .sign_pk = a->broker_pk,
        .progress = progress_cb,
        .progress_ctx = pg,
        .epoch = &epoch,
    };
    struct auditv_state nst;
    struct auditv_failure fail = {0};
    int rc = auditv_verify_file(fp, &cfg, st, &nst, &fail);
    fclose(fp);
    progress_end(pg);
    if (rc != CASENET_OK) {
        if (fail.where == AUDITV_OK && rc == CASENET_EIO)
            return cli_file_fail(rc, file, "the audit export");
        return verify_failed(&fail, rc);
    }
    printf("export file %s verified\n", file);
    print_epoch(&epoch);
    return verify_done(a, st, &nst, 0);
}

static int verify_live(struct audit_ctx *a, const struct auditv_state *st, bool full,
                       struct progress *pg)
{
    casenet_buf head = {0};
    struct ckpt_head h0 = {0};
    bool have_head = false, proof_bad = false;
    struct auditv *v = NULL;
    struct auditv_epoch epoch = {0};
    int ex = CLI_EFAIL;
    int rc = casenet_client_tree_head(a->c, &head);
    if (rc == CASENET_OK) {
        if ((ex = verify_head(a, &head, &h0, "the broker's latest tree head")) != CLI_OK)
            goto cleanup;
        have_head = true;
        /* --full below the remembered size: the recomputation compares with
         * the remembered root, or accepts a declared epoch change. */
        if (!(full && h0.size <= st->size) &&
            (ex = check_against_remembered(a, st, &h0, &proof_bad)) != CLI_OK)
            goto cleanup;
    } else if (rc == CASENET_ENOTFOUND && st->size == 0) {
        fprintf(stderr, "the broker has not signed a tree head yet\n");
    } else if (rc == CASENET_ENOTFOUND) {
        ex = cli_fail(CLI_VERIFY, CASENET_EBADSIG, NULL,
                      "remembered head of size %" PRIu64 ": the broker has no signed head at "
                      "all: its history was lost or rewritten",
                      st->size);
        goto cleanup;
    } else {
        ex = net_fail(a->c, rc, "GetTreeHead failed");
        goto cleanup;
    }
    uint64_t from = full ? 0 : st->size;
    struct auditv_config cfg = {
        .origin = a->origin,
        .key_name = a->broker_id,
        .sign_pk = a->broker_pk,
        .progress = progress_cb,
        .progress_ctx = pg,
        .total = have_head ? h0.size : 0,
        .epoch = &epoch,
    };
    if ((rc = auditv_new(&cfg, st, from, &v)) != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot start the verifier");
        goto cleanup;
    }
    bool head_fed = false;
    if (have_head && h0.size == from) { /* nothing new: compare with the remembered root */
        if ((rc = auditv_checkpoint(v, head.data, head.len)) != CASENET_OK)
            goto failed;
        head_fed = true;
    }
    uint64_t next = from;
    bool more = true;
    while (more) {
        casenet_audit_export_page p = {0};
        rc = casenet_client_audit_export(a->c, next, EXPORT_PAGE, &p);
        if (rc == CASENET_ENOTFOUND && next > 0) {
            progress_end(pg);
            ex = cli_fail(CLI_VERIFY, CASENET_EBADSIG, NULL,
                          "the broker's log ends before index %" PRIu64
                          " (remembered or already verified): it was cut short",
                          next);
            goto cleanup;
        }
        if (rc != CASENET_OK) {
            progress_end(pg);
            ex = net_fail(a->c, rc, "AuditExport failed");
            goto cleanup;
        }
        rc = feed_page(v, &p, next, have_head ? &head : NULL, h0.size, &head_fed);
        more = p.more;
        uint64_t got = p.next_index;
        casenet_audit_export_page_clear(&p);
        if (rc != CASENET_OK)
            goto failed;
        if (got <= next && more) {
            progress_end(pg);
            ex = cli_fail(CLI_VERIFY, CASENET_EBADREQ, NULL,
                          "the broker's export makes no progress at index %" PRIu64, next);
            goto cleanup;
        }
        next = got;
    }
    if (have_head && !head_fed) {
        /* The head we were given lies beyond every event exported. */
        if ((rc = auditv_checkpoint(v, head.data, head.len)) != CASENET_OK)
            goto failed;
    }
    struct auditv_state nst;
    if ((rc = auditv_finish(v, &nst)) != CASENET_OK)
        goto failed;
    progress_end(pg);
    if (proof_bad && !epoch.changed) { /* every root recomputed matched, yet the proof failed */
        ex = cli_fail(CLI_VERIFY, CASENET_EBADSIG, NULL,
                      "remembered head of size %" PRIu64 ": the broker cannot prove its head of "
                      "size %" PRIu64 " consistent with it (its stored tree differs from its "
                      "events)",
                      st->size, h0.size);
        goto cleanup;
    }
    uint64_t events = 0, heads = 0, tail = 0;
    auditv_counts(v, &events, &heads, &tail);
    printf("audit log verified: %" PRIu64 " events checked (index %" PRIu64 " to %" PRIu64
           "), %" PRIu64 " signed heads\n",
           events - from, from, events ? events - 1 : 0, heads);
    print_epoch(&epoch);
    ex = verify_done(a, st, &nst, tail);
    goto cleanup;
failed:
    progress_end(pg);
    ex = verify_failed(auditv_failure(v), rc);
    if (!full && st->size > 0)
        cli_warn("if the broker was restored from a backup, 'casenet audit verify --full' "
                 "reports the epoch change");
cleanup:
    auditv_free(v);
    casenet_buf_free(&head);
    return ex;
}

static int audit_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"full", no_argument, NULL, 'F'},
        SHARED_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct audit_opts o = {.timeout_ms = DEFAULT_TIMEOUT_MS};
    const char *file = NULL;
    bool full = false;
    int c;
    while ((c = cli_getopt(argc, argv, "f:FH:b:t:h", opts)) != -1) {
        switch (c) {
        case 'f':
            file = optarg;
            break;
        case 'F':
            full = true;
            break;
        case 'h':
            return cli_help(verify_usage);
        default: {
            int ex = shared_opt(c, &o);
            if (ex >= 0)
                return ex;
        }
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (file && (full || o.broker))
        return cli_usage_error("--file verifies offline: --full and --broker do not apply");
    struct audit_ctx a;
    struct auditv_state st;
    struct progress pg = {.on = isatty(STDERR_FILENO) == 1, .last_pct = -1};
    int ex = ctx_open(&o, file == NULL, &a);
    if (ex == CLI_OK)
        ex = load_state(&a, &st);
    if (ex == CLI_OK)
        ex = file ? verify_file(&a, file, &st, &pg) : verify_live(&a, &st, full, &pg);
    ctx_close(&a);
    return ex;
}

/* ------------------------------------------------------------ export */

static const char export_usage[] =
    "usage: casenet audit export [--from INDEX] [--home DIR] [--broker ENDPOINT]\n"
    "                            [--timeout SECONDS] > FILE\n"
    "\n"
    "Writes the broker's audit log as an export file (PROTOCOL.md §10.4) to stdout:\n"
    "a header naming the network, the broker and its key (from the home's\n"
    "directory), then every event from INDEX on with each signed head right after\n"
    "the event that completes it. Coordinators only. Verify it offline with\n"
    "'casenet audit verify --file FILE'; nothing is verified while exporting.\n"
    "\n"
    "options:\n"
    "  -f, --from INDEX         first event (default 0: the whole log)\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet audit export > audit.export && casenet audit verify --file audit.export\n";

/* Writes one page: each checkpoint after the event completing its size. */
static int write_page(FILE *out, const casenet_audit_export_page *p, uint64_t from)
{
    size_t n = p->n_checkpoints;
    struct page_head *hs = calloc(n ? n : 1, sizeof *hs);
    if (!hs)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct ckpt_head h;
        hs[i].size = ckpt_parse(p->checkpoints[i].data, p->checkpoints[i].len, &h) == CASENET_OK
                         ? h.size
                         : 0;
        hs[i].bytes = &p->checkpoints[i];
    }
    qsort(hs, n, sizeof *hs, cmp_head);
    int rc = CASENET_OK;
    size_t k = 0;
    for (size_t i = 0; i < p->n_events && rc == CASENET_OK; i++) {
        rc = auditv_export_write_event(out, p->events[i].data, p->events[i].len);
        for (; rc == CASENET_OK && k < n && hs[k].size <= from + i + 1; k++)
            rc = auditv_export_write_checkpoint(out, hs[k].bytes->data, hs[k].bytes->len);
    }
    for (; rc == CASENET_OK && k < n; k++)
        rc = auditv_export_write_checkpoint(out, hs[k].bytes->data, hs[k].bytes->len);
    free(hs);
    return rc;
}

static int audit_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},
        SHARED_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct audit_opts o = {.timeout_ms = DEFAULT_TIMEOUT_MS};
    uint64_t from = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "f:H:b:t:h", opts)) != -1) {
        switch (c) {
        case 'f':
            if (!cli_parse_uint(optarg, 0, INT64_MAX, &from))
                return cli_usage_error("--from wants an event index, not '%s'", optarg);
            break;
        case 'h':
            return cli_help(export_usage);
        default: {
            int ex = shared_opt(c, &o);
            if (ex >= 0)
                return ex;
        }
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (isatty(STDOUT_FILENO) == 1)
        return cli_usage_error("the export is binary: redirect stdout to a file");
    struct audit_ctx a;
    int ex = ctx_open(&o, true, &a);
    if (ex != CLI_OK)
        goto cleanup;
    struct auditv_export_header hdr = {.from_index = from};
    snprintf(hdr.network, sizeof hdr.network, "%s", a.network);
    snprintf(hdr.broker_id, sizeof hdr.broker_id, "%s", a.broker_id);
    memcpy(hdr.broker_sign_pk, a.broker_pk, sizeof hdr.broker_sign_pk);
    int rc = auditv_export_write_header(stdout, &hdr);
    uint64_t next = from, events = 0, heads = 0;
    bool more = true;
    while (rc == CASENET_OK && more) {
        casenet_audit_export_page p = {0};
        rc = casenet_client_audit_export(a.c, next, EXPORT_PAGE, &p);
        if (rc != CASENET_OK) {
            ex = net_fail(a.c, rc, "AuditExport failed");
            goto cleanup;
        }
        rc = write_page(stdout, &p, next);
        more = p.more && p.next_index > next;
        events += p.n_events;
        heads += p.n_checkpoints;
        next = p.next_index;
        casenet_audit_export_page_clear(&p);
    }
    if (rc != CASENET_OK || fflush(stdout) != 0) {
        ex = cli_fail(CLI_LOCAL, rc == CASENET_OK ? CASENET_EIO : rc, NULL,
                      "cannot write the export to stdout");
        goto cleanup;
    }
    fprintf(stderr, "exported events %" PRIu64 "..%" PRIu64 " and %" PRIu64 " signed heads\n", from,
            next ? next - 1 : 0, heads);
    (void)events;
    ex = CLI_OK;
cleanup:
    ctx_close(&a);
    return ex;
}

/* ------------------------------------------------------------ prove */

static const char prove_usage[] =
    "usage: casenet audit prove MESSAGE_ID | --index N  [--home DIR]\n"
    "                           [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Proves that the audit events of a message this member sent or received (its\n"
    "submission, fetches and receipts), or the event at index N (a submit\n"
    "receipt's audit index), are included in the broker's log under a signed\n"
    "tree head: it verifies the head with the broker key of the home's directory,\n"
    "its consistency with the head remembered by 'casenet audit verify' (when\n"
    "there is one), and an inclusion proof for each event. Waits a few seconds\n"
    "for a head when the events are newer than the latest one.\n"
    "\n"
    "Exit 0 when every event is proven; 3 when a proof or a head does not verify.\n"
    "\n"
    "options:\n"
    "  -i, --index N            prove the event at log index N instead\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request, including retries (default 10)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet audit prove 3f2a9c0b4d5e6f708192a3b4c5d6e7f8\n";

/* Collects the events to prove: the message's (every page) or the one at
 * index. Returns an exit code; *recs is the caller's. */
static int prove_collect(struct audit_ctx *a, const uint8_t *mid, bool by_index, uint64_t index,
                         casenet_audit_record **recs, size_t *n)
{
    casenet_audit_filter f = {.message_id = mid};
    casenet_audit_record *all = NULL;
    size_t count = 0;
    uint64_t cursor = by_index ? index : 0;
    bool more = true;
    while (more && count < PROVE_EVENTS_MAX) {
        casenet_audit_record *page = NULL;
        size_t got = 0;
        uint64_t next = cursor;
        int rc = casenet_client_audit_query(a->c, by_index ? NULL : &f, cursor,
                                            by_index ? 1 : LOG_PAGE, &page, &got, &next, &more);
        if (rc != CASENET_OK) {
            casenet_audit_records_free(all, count);
            return net_fail(a->c, rc, "AuditQuery failed");
        }
        if (by_index) {
            /* A member only sees its own events: the first one it gets from
             * index on must be that one. */
            if (got > 0 && page[0].index == index) {
                *recs = page;
                *n = 1;
                casenet_audit_records_free(all, count);
                return CLI_OK;
            }
            casenet_audit_records_free(page, got);
            if (got > 0 || next > index)
                break;
            if (next <= cursor)
                break;
            cursor = next;
            continue;
        }
        casenet_audit_record *grown = realloc(all, (count + got + 1) * sizeof *grown);
        if (!grown) {
            casenet_audit_records_free(page, got);
            casenet_audit_records_free(all, count);
            return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        }
        all = grown;
        memcpy(all + count, page, got * sizeof *page);
        count += got;
        free(page); /* its buffers moved to all */
        if (next <= cursor)
            break;
        cursor = next;
    }
    if (count == 0) {
        free(all);
        if (by_index)
            return cli_fail(CLI_BROKER, CASENET_ENOTFOUND, NULL,
                            "no audit event at index %" PRIu64 " that this member is party to",
                            index);
        char hex[33];
        cli_id16_hex(mid, hex);
        return cli_fail(CLI_BROKER, CASENET_ENOTFOUND, NULL,
                        "no audit event of message %s that this member is party to", hex);
    }
    *recs = all;
    *n = count;
    return CLI_OK;
}

/* The latest head, verified, covering at least size events (waiting for
 * the broker's timer up to PROVE_HEAD_WAIT_MS). Returns an exit code. */
static int prove_head(struct audit_ctx *a, uint64_t size, casenet_buf *ck, struct ckpt_head *h)
{
    int64_t until = cn_mono_ms() + PROVE_HEAD_WAIT_MS;
    for (;;) {
        casenet_buf_free(ck);
        int rc = casenet_client_tree_head(a->c, ck);
        if (rc != CASENET_OK && rc != CASENET_ENOTFOUND)
            return net_fail(a->c, rc, "GetTreeHead failed");
        if (rc == CASENET_OK) {
            int ex = verify_head(a, ck, h, "the broker's latest tree head");
            if (ex != CLI_OK)
                return ex;
            if (h->size >= size)
                return CLI_OK;
        }
        if (cn_mono_ms() >= until)
            return cli_fail(CLI_BROKER, CASENET_ENOTFOUND, "retry in a minute",
                            "no signed head covers index %" PRIu64 " yet", size - 1);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int audit_prove(int argc, char **argv)
{
    static const struct option opts[] = {
        {"index", required_argument, NULL, 'i'},
        SHARED_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct audit_opts o = {.timeout_ms = DEFAULT_TIMEOUT_MS};
    bool by_index = false;
    uint64_t index = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "i:H:b:t:h", opts)) != -1) {
        switch (c) {
        case 'i':
            if (!cli_parse_uint(optarg, 0, INT64_MAX, &index))
                return cli_usage_error("--index wants an event index, not '%s'", optarg);
            by_index = true;
            break;
        case 'h':
            return cli_help(prove_usage);
        default: {
            int ex = shared_opt(c, &o);
            if (ex >= 0)
                return ex;
        }
        }
    }
    uint8_t mid[CASENET_MESSAGE_ID_BYTES];
    if (by_index ? optind != argc : optind + 1 != argc)
        return cli_usage_error(by_index ? "--index and a message id exclude each other"
                                        : "expected one message id (32 hex digits)");
    if (!by_index && !cli_id_arg_ok(argv[optind]))
        return cli_usage_error(ID_ARG_WANTED, argv[optind]);
    struct audit_ctx a;
    struct auditv_state st;
    casenet_audit_record *recs = NULL;
    size_t n = 0;
    casenet_buf ck = {0};
    struct ckpt_head h;
    int ex = ctx_open(&o, true, &a);
    if (ex == CLI_OK && !by_index)
        ex = net_resolve_id(a.c, argv[optind], true, mid);
    if (ex == CLI_OK)
        ex = load_state(&a, &st);
    if (ex == CLI_OK)
        ex = prove_collect(&a, by_index ? NULL : mid, by_index, index, &recs, &n);
    if (ex != CLI_OK)
        goto cleanup;
    uint64_t last = recs[n - 1].index;
    if ((ex = prove_head(&a, last + 1, &ck, &h)) != CLI_OK ||
        (ex = check_against_remembered(&a, &st, &h, NULL)) != CLI_OK)
        goto cleanup;
    char when[64];
    cli_format_time(h.time_ms, false, when, sizeof when);
    for (size_t i = 0; i < n; i++) {
        Casenet__V1__AuditEvent *e =
            casenet__v1__audit_event__unpack(NULL, recs[i].event.len, recs[i].event.data);
        bool ok = e && e->index == recs[i].index &&
                  (by_index || (e->message_id.len == sizeof mid &&
                                memcmp(e->message_id.data, mid, sizeof mid) == 0));
        char kind[AUDIT_KIND_NAME_MAX] = "?";
        if (e)
            kind_name((int)e->kind, kind);
        casenet__v1__audit_event__free_unpacked(e, NULL);
        if (!ok) {
            ex = cli_fail(CLI_VERIFY, CASENET_EBADREQ, NULL,
                          "the broker returned a malformed or unrelated event at index %" PRIu64,
                          recs[i].index);
            goto cleanup;
        }
        casenet_buf hashes = {0}, hck = {0};
        int rc = casenet_client_audit_inclusion(a.c, recs[i].index, h.size, &hashes, &hck);
        casenet_buf_free(&hck);
        if (rc != CASENET_OK) {
            ex = net_fail(a.c, rc, "AuditProof (inclusion) failed");
            goto cleanup;
        }
        uint8_t leaf[MERKLE_HASH_BYTES];
        merkle_leaf_hash(recs[i].event.data, recs[i].event.len, leaf);
        rc = merkle_verify_inclusion(leaf, recs[i].index, h.size,
                                     (const uint8_t(*)[MERKLE_HASH_BYTES])hashes.data,
                                     hashes.len / MERKLE_HASH_BYTES, h.root);
        casenet_buf_free(&hashes);
        if (rc != CASENET_OK) {
            ex = cli_fail(CLI_VERIFY, CASENET_EBADSIG, NULL,
                          "event %" PRIu64 " (%s): its inclusion proof under the head of size "
                          "%" PRIu64 " does not verify",
                          recs[i].index, kind, h.size);
            goto cleanup;
        }
        printf("event %-8" PRIu64 " %-19s included under the signed head of size %" PRIu64
               " (%s)\n",
               recs[i].index, kind, h.size, when);
    }
    if (st.size)
        printf("that head is consistent with the remembered head of size %" PRIu64 "\n", st.size);
    ex = fflush(stdout) == 0 ? CLI_OK : cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "stdout");
cleanup:
    casenet_buf_free(&ck);
    casenet_audit_records_free(recs, n);
    ctx_close(&a);
    return ex;
}

/* ------------------------------------------------------------ dispatch */

static const struct cli_cmd audit_cmds[] = {
    {"log", audit_log, "list audit events (filters; table or --json)"},
    {"verify", audit_verify, "verify the log (live or --file) from the remembered head"},
    {"export", audit_export, "write the log as an export file to stdout (coordinators)"},
    {"prove", audit_prove, "prove a message's events are included under a signed head"},
};

int cmd_audit(int argc, char **argv)
{
    return cli_dispatch("audit", audit_cmds, sizeof audit_cmds / sizeof audit_cmds[0], argc, argv);
}
