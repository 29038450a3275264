/*
 * config.c - casenetd's options as one table, and everything the table
 * drives: the value parsers, the INI reader, defaults and --check-config's
 * listing (config.h); --help and the references are config_doc.c.
 */
#include "config.h"

#include "util.h"

#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MIB              (1024u * 1024u)
#define OFF(field)       offsetof(struct broker_config, field)
#define LIM(field)       offsetof(struct broker_config, limits.field)
#define RATE(cls)        LIM(rate[cls].per_min)
#define BURST(cls)       LIM(rate[cls].burst)
#define MAX_RATE_PER_MIN 60000000u /* 1,000,000/s */

/* One row per option; the order is --help's, --check-config's and the
 * reference's. Defaults are text parsed like a value from the file; a unit
 * test checks them against the macros the modules define. */
const struct config_option config_options[] = {
    {"broker", "data", "data", "DIR", CONFIG_PATH, OFF(data_dir), NULL, NULL, 0, 0, 0, true,
     "data directory (created 0700 if absent): casenet.db, directory.pb"},
    {"broker", "listen", "listen", "ENDPOINT", CONFIG_ENDPOINT, OFF(listen), NULL, NULL, 0, 0, 0,
     true, "ZeroMQ endpoint to bind, e.g. tcp://0.0.0.0:7400 (every interface) or ipc://PATH"},
    {"broker", "key", "key", "FILE", CONFIG_PATH, OFF(key_path), NULL, NULL, 0, 0, 0, true,
     "the broker's secret keyring (casenet keygen), mode 0600"},
    {"broker", "directory", "directory", "FILE", CONFIG_PATH, OFF(directory_path), NULL, NULL, 0, 0,
     0, true,
     "the authority-signed directory to start from (re-read on SIGHUP; a newer one published "
     "over the wire and stored under data wins)"},
    {"broker", "authority", "authority", "FILE", CONFIG_PATH, OFF(authority_path), NULL, NULL, 0, 0,
     0, true, "the network authority's public key file (pinned)"},
    {"broker", "policy", "policy", "FILE", CONFIG_PATH, OFF(policy_path), NULL, NULL, 0, 0, 0,
     false,
     "deadline policy per urgency (INI, see \"Policy file\"); the built-in defaults when not "
     "set"},
    {"broker", "admin", "admin", "HOST:PORT", CONFIG_STRING, OFF(admin), NULL, NULL, 0, 0, 0, false,
     "serve /metrics (Prometheus), /healthz and /readyz over plain HTTP on this loopback address, "
     "e.g. 127.0.0.1:9740 (off when not set; see docs/operations.md)"},
    {"broker", "store", "store", "SPEC", CONFIG_STRING, OFF(store_spec), NULL,
     "sqlite: followed by the data directory", 0, 0, 0, false,
     "the store: sqlite:DIR keeps the SQLite database DIR/casenet.db; postgresql://... a "
     "PostgreSQL database (docs/operations.md \"PostgreSQL\")"},
    {"limits", "max_envelope_bytes", "max-envelope-bytes", "SIZE", CONFIG_SIZE,
     LIM(max_envelope_bytes), "1048576", NULL, 1024, 64u * MIB, 1, false,
     "largest envelope accepted, in bytes"},
    {"limits", "max_recipients", "max-recipients", "N", CONFIG_U32, LIM(max_recipients), "256",
     NULL, 1, CASENET_MAX_RECIPIENTS, 0, false, "most recipients in one envelope"},
    {"limits", "clock_skew_s", "clock-skew", "DURATION", CONFIG_DURATION, LIM(clock_skew_s), "10m",
     NULL, 1, 86400, 0, false,
     "how far a message's created_at may be from the broker's clock (a bare number is seconds)"},
    {"limits", "batch_max", "batch-max", "N", CONFIG_U32, LIM(batch_max), "256", NULL, 1, 65536, 0,
     false, "most requests handled in one group-commit transaction"},
    {"limits", "batch_window_us", "batch-window-us", "N", CONFIG_U32, LIM(batch_window_us), "0",
     NULL, 0, 100000, 0, false,
     "microseconds the loop waits, once requests arrive after it was idle, for more to share "
     "their commit (0 = none; measured not to help, see README \"Performance\")"},
    {"limits", "verify_threads", "verify-threads", "N", CONFIG_U32, LIM(verify_threads), NULL,
     "one per core beyond the first, at most 4", 0, BROKER_MAX_VERIFY_THREADS, 0, false,
     "threads that verify Submit signatures off the event loop (0 = the loop verifies alone)"},
    {"limits", "submit_rate", "submit-rate", "RATE", CONFIG_RATE, RATE(LIMITS_SUBMIT), "60/min",
     NULL, 0, MAX_RATE_PER_MIN, 0, false,
     "Submits one member may make (a token bucket refilled at this rate; 0 = no limit); "
     "beyond it RATE_LIMITED with a retry-after"},
    {"limits", "submit_burst", "submit-burst", "N", CONFIG_U32, BURST(LIMITS_SUBMIT), "120",
     "120; one minute's worth when submit_rate is given alone", 1, 10000000, 0, false,
     "most Submit tokens one member's bucket holds"},
    {"limits", "fetch_rate", "fetch-rate", "RATE", CONFIG_RATE, RATE(LIMITS_FETCH), "600/min", NULL,
     0, MAX_RATE_PER_MIN, 0, false,
     "Fetches, and downloads of a blob's last chunk, one member may make (0 = no limit)"},
    {"limits", "fetch_burst", "fetch-burst", "N", CONFIG_U32, BURST(LIMITS_FETCH), "600",
     "600; one minute's worth when fetch_rate is given alone", 1, 10000000, 0, false,
     "most Fetch tokens one member's bucket holds"},
    {"limits", "receipt_rate", "receipt-rate", "RATE", CONFIG_RATE, RATE(LIMITS_RECEIPT), "600/min",
     NULL, 0, MAX_RATE_PER_MIN, 0, false, "receipts one member may send (0 = no limit)"},
    {"limits", "receipt_burst", "receipt-burst", "N", CONFIG_U32, BURST(LIMITS_RECEIPT), "600",
     "600; one minute's worth when receipt_rate is given alone", 1, 10000000, 0, false,
     "most receipt tokens one member's bucket holds"},
    {"limits", "audit_rate", "audit-rate", "RATE", CONFIG_RATE, RATE(LIMITS_AUDIT), "120/min", NULL,
     0, MAX_RATE_PER_MIN, 0, false,
     "audit queries and exports one member may make (each is itself an audit event; 0 = no "
     "limit)"},
    {"limits", "audit_burst", "audit-burst", "N", CONFIG_U32, BURST(LIMITS_AUDIT), "240",
     "240; one minute's worth when audit_rate is given alone", 1, 10000000, 0, false,
     "most audit tokens one member's bucket holds"},
    {"limits", "max_inbox_backlog", "max-inbox-backlog", "N", CONFIG_U32, LIM(max_inbox_backlog),
     "100000", NULL, 1, UINT32_MAX, 0, false,
     "unfetched messages one inbox may hold (all senders) before Submits to it answer "
     "UNAVAILABLE"},
    {"limits", "max_pair_backlog", "max-pair-backlog", "N", CONFIG_U32, LIM(max_pair_backlog),
     "1000", NULL, 0, UINT32_MAX, 0, false, "of them, from one sender (0 = no per-sender cap)"},
    {"limits", "emergency_reserve_pct", "emergency-reserve", "PERCENT", CONFIG_PERCENT,
     LIM(emergency_pct), "10", NULL, 0, 50, 0, false,
     "the last share of both backlog caps, which only EMERGENCY messages may take"},
    {"limits", "member_quota_mb", "member-quota", "SIZE", CONFIG_SIZE, LIM(quota_mb), "256", NULL,
     0, UINT32_MAX / 2, MIB, false,
     "MiB of envelopes one member may store as a sender (0 = no quota); beyond it Submit "
     "answers QUOTA_EXCEEDED. Size the data disk for quota x members"},
    {"limits", "fair_share", "fair-share", "N", CONFIG_U32, LIM(fair_share), "16", NULL, 1, 65536,
     0, false,
     "work of one member per batch while others wait, in cost units: 1 per request, more for "
     "ListSent, ListInbox and AuditQuery by the rows they may read, BlobPut and BlobStatus by "
     "the chunks they look at"},
    {"limits", "min_free_mb", "min-free", "SIZE", CONFIG_SIZE, LIM(min_free_mb), "64", NULL, 0,
     1024u * 1024u, MIB, false,
     "MiB kept free on the data disk (0 = no reserve): below it Submit answers UNAVAILABLE; "
     "below half of it audited fetches and audit queries, below a quarter receipts; the last "
     "quarter is for the broker's own deadlines, escalations and audit events"},
    {"limits", "max_pending", "max-pending", "N", CONFIG_U32, LIM(max_pending), "64", NULL, 1,
     65536, 0, false, "requests of one member waiting for a batch; beyond, RATE_LIMITED at once"},
    {"limits", "max_connections", "max-connections", "N", CONFIG_U32, LIM(max_connections), "32",
     NULL, 0, 65536, 0, false,
     "connections one member may hold; beyond, the handshake is refused (0 = no limit)"},
    {"limits", "escalation_budget", "escalation-budget", "N", CONFIG_U32, LIM(escalation_budget),
     "20", NULL, 0, 1000000, 0, false,
     "escalation notices about one sender's messages per escalation period, the last of them a "
     "summary of the rest (0 = no limit)"},
    {"limits", "escalation_period_s", "escalation-period", "DURATION", CONFIG_DURATION,
     LIM(escalation_period_s), "1h", NULL, 1, 30u * 86400u, 0, false,
     "the period of escalation_budget (a bare number is seconds)"},
    {"limits", "max_message_size", "max-message-size", "SIZE", CONFIG_SIZE, LIM(max_message_mb),
     "256MB", NULL, 1, 1024u * 1024u, MIB, false,
     "largest message with its attachments (envelope and blobs); a larger blob or Submit "
     "answers TOO_LARGE"},
    {"limits", "blob_quota", "blob-quota", "SIZE", CONFIG_SIZE, LIM(blob_quota_mb), "1GB", NULL, 0,
     UINT32_MAX / 2, MIB, false,
     "MiB of attachment blobs one member may hold at the broker (0 = no quota); beyond it "
     "BlobPut answers QUOTA_EXCEEDED"},
    {"limits", "blob_unreferenced", "blob-unreferenced", "DURATION", CONFIG_DURATION,
     LIM(blob_unreferenced_s), "24h", NULL, 0, 365u * 86400u, 0, false,
     "an uploaded blob no Submit references is deleted after this long (0 = never; swept when "
     "a member starts a new blob and in the broker's idle time)"},
};

#define N_OPTIONS (sizeof config_options / sizeof config_options[0])
_Static_assert(N_OPTIONS <= CONFIG_OPTIONS_MAX, "raise CONFIG_OPTIONS_MAX");

size_t config_count(void)
{
    return N_OPTIONS;
}

const struct config_option *config_find(const char *section, const char *key)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strcmp(config_options[i].section, section) == 0 &&
            strcmp(config_options[i].key, key) == 0)
            return &config_options[i];
    }
    return NULL;
}

static void *slot(struct config *c, const struct config_option *o)
{
    return (char *)&c->values + o->offset;
}

static const void *cslot(const struct config *c, const struct config_option *o)
{
    return (const char *)&c->values + o->offset;
}

bool config_is_text(enum config_type t)
{
    return t == CONFIG_STRING || t == CONFIG_ENDPOINT || t == CONFIG_PATH;
}

void config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (config_is_text(config_options[i].type))
            free(*(char **)slot(c, &config_options[i]));
    }
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------ values */

/* A whole decimal number, digits only, into *n; the rest of s in *rest. */
static bool parse_digits(const char *s, uint64_t *n, const char **rest)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (p == s)
        return false;
    *n = v;
    *rest = p;
    return true;
}

/* s with a unit suffix from units[] (case-insensitive; "" for none) into
 * n * multiplier, false on anything else or overflow. */
struct unit {
    const char *suffix;
    uint64_t mult;
};

static bool parse_with_unit(const char *s, const struct unit *units, size_t n_units, uint64_t *out)
{
    uint64_t n = 0;
    const char *rest = NULL;
    if (!parse_digits(s, &n, &rest))
        return false;
    for (size_t i = 0; i < n_units; i++) {
        if (strcasecmp(rest, units[i].suffix) == 0) {
            if (n > UINT64_MAX / units[i].mult)
                return false;
            *out = n * units[i].mult;
            return true;
        }
    }
    return false;
}

static const struct unit duration_units[] = {
    {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400},
};

static const struct unit size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1024},
    {"kb", 1024},
    {"kib", 1024},
    {"m", MIB},
    {"mb", MIB},
    {"mib", MIB},
    {"g", 1024u * MIB},
    {"gb", 1024u * MIB},
    {"gib", 1024u * MIB},
};

/* A rate into tokens per minute: "N/min", "N/s" or a bare N (per second,
 * as before per-minute rates existed). */
static bool parse_rate(const char *s, uint64_t *per_min)
{
    uint64_t n = 0;
    const char *rest = NULL;
    if (!parse_digits(s, &n, &rest))
        return false;
    if (*rest == '\0' || strcmp(rest, "/s") == 0) {
        if (n > MAX_RATE_PER_MIN / 60)
            return false;
        *per_min = n * 60;
        return true;
    }
    if (strcmp(rest, "/min") != 0)
        return false;
    *per_min = n;
    return true;
}

static bool parse_bool(const char *s, uint64_t *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* The shortest exact duration of secs ("90s", "15m", "2d"). */
static void format_duration(uint64_t secs, char *out, size_t cap)
{
    static const struct unit by_size[] = {{"d", 86400}, {"h", 3600}, {"m", 60}};
    for (size_t i = 0; i < 3; i++) {
        if (secs != 0 && secs % by_size[i].mult == 0) {
            snprintf(out, cap, "%llu%s", (unsigned long long)(secs / by_size[i].mult),
                     by_size[i].suffix);
            return;
        }
    }
    snprintf(out, cap, "%llus", (unsigned long long)secs);
}

/* What option o accepts, for messages and the reference. */
void config_describe_range(const struct config_option *o, char *out, size_t cap)
{
    char lo[32], hi[32];
    switch (o->type) {
    case CONFIG_DURATION:
        format_duration(o->min, lo, sizeof lo);
        format_duration(o->max, hi, sizeof hi);
        snprintf(out, cap, "a duration from %s to %s", lo, hi);
        break;
    case CONFIG_SIZE:
        snprintf(out, cap, "a size from %llu to %llu %s", (unsigned long long)o->min,
                 (unsigned long long)o->max, o->unit == MIB ? "MiB" : "bytes");
        break;
    case CONFIG_RATE:
        snprintf(out, cap, "a rate from 0 to %llu/min (or N/s)", (unsigned long long)o->max);
        break;
    case CONFIG_PERCENT:
        snprintf(out, cap, "a percentage from %llu to %llu", (unsigned long long)o->min,
                 (unsigned long long)o->max);
        break;
    case CONFIG_BOOL:
        snprintf(out, cap, "true or false");
        break;
    case CONFIG_ENDPOINT:
        snprintf(out, cap, "%s", CN_ENDPOINT_FORMS);
        break;
    case CONFIG_STRING:
    case CONFIG_PATH:
        snprintf(out, cap, "text, not empty");
        break;
    default:
        snprintf(out, cap, "a whole number from %llu to %llu", (unsigned long long)o->min,
                 (unsigned long long)o->max);
    }
}

/* A parsed value: n for the numeric types, s (borrowed) for strings. */
struct value {
    uint64_t n;
    const char *s;
};

/* Parses text for option o into *v. On failure writes what is wrong
 * (without the option's name) into why[cap]. */
static bool parse_value(const struct config_option *o, const char *text, struct value *v, char *why,
                        size_t cap)
{
    char range[160];
    config_describe_range(o, range, sizeof range);
    v->s = text;
    v->n = 0;
    bool ok = true;
    switch (o->type) {
    case CONFIG_STRING:
    case CONFIG_PATH:
        ok = text[0] != '\0';
        break;
    case CONFIG_ENDPOINT:
        if (!cn_endpoint_valid(text, true)) {
            snprintf(why, cap, "expected %s; every interface: tcp://0.0.0.0:7400", range);
            return false;
        }
        return true;
    case CONFIG_U32:
    case CONFIG_U64: {
        const char *rest = NULL;
        ok = parse_digits(text, &v->n, &rest) && *rest == '\0';
        break;
    }
    case CONFIG_DURATION:
        ok = parse_with_unit(text, duration_units, sizeof duration_units / sizeof *duration_units,
                             &v->n);
        break;
    case CONFIG_SIZE:
        ok = parse_with_unit(text, size_units, sizeof size_units / sizeof *size_units, &v->n);
        if (ok && text[strspn(text, "0123456789")] != '\0') { /* a suffix: bytes */
            ok = v->n % o->unit == 0;
            v->n /= o->unit;
        }
        break;
    case CONFIG_RATE:
        ok = parse_rate(text, &v->n);
        break;
    case CONFIG_PERCENT: {
        const char *rest = NULL;
        ok = parse_digits(text, &v->n, &rest) && (strcmp(rest, "") == 0 || strcmp(rest, "%") == 0);
        break;
    }
    case CONFIG_BOOL:
        return parse_bool(text, &v->n) || (snprintf(why, cap, "expected %s", range), false);
    }
    if (!ok) {
        snprintf(why, cap, "is not valid: expected %s", range);
        return false;
    }
    if (!config_is_text(o->type) && (v->n < o->min || v->n > o->max)) {
        snprintf(why, cap, "is out of range: expected %s", range);
        return false;
    }
    return true;
}

static int store_value(struct config *c, const struct config_option *o, const struct value *v)
{
    void *p = slot(c, o);
    switch (o->type) {
    case CONFIG_STRING:
    case CONFIG_ENDPOINT:
    case CONFIG_PATH: {
        char *copy = strdup(v->s);
        if (!copy)
            return CASENET_ENOMEM;
        free(*(char **)p);
        *(char **)p = copy;
        break;
    }
    case CONFIG_U64:
        *(uint64_t *)p = v->n;
        break;
    case CONFIG_BOOL:
        *(bool *)p = v->n != 0;
        break;
    default: /* every other type is stored as uint32_t, bounded by the table */
        assert(v->n <= UINT32_MAX);
        *(uint32_t *)p = (uint32_t)v->n;
    }
    return CASENET_OK;
}

/* "[section] key" in file messages, "--flag" in the command line's. */
static void option_name(const struct config_option *o, enum config_source src, char *out,
                        size_t cap)
{
    if (src == CONFIG_FLAG)
        snprintf(out, cap, "--%s", o->flag);
    else
        snprintf(out, cap, "[%s] %s", o->section, o->key);
}

/* Why value does not fit option o, as the message config_set returns. */
static bool check_value(const struct config_option *o, const char *value, enum config_source src,
                        struct value *v, char *err, size_t errlen)
{
    char why[256], name[96];
    if (parse_value(o, value, v, why, sizeof why))
        return true;
    option_name(o, src, name, sizeof name);
    if (o->type == CONFIG_ENDPOINT)
        snprintf(err, errlen, "invalid %s endpoint '%s': %s", o->key, value, why);
    else
        snprintf(err, errlen, "%s = %s %s", name, value, why);
    return false;
}

int config_parse_value(const struct config_option *o, const char *text, uint64_t *n, char *err,
                       size_t errlen)
{
    struct value v;
    if (!check_value(o, text, CONFIG_FILE, &v, err, errlen))
        return CASENET_EINVAL;
    *n = v.n;
    return CASENET_OK;
}

int config_set(struct config *c, size_t i, const char *value, enum config_source src, char *err,
               size_t errlen)
{
    assert(i < N_OPTIONS);
    const struct config_option *o = &config_options[i];
    struct value v;
    if (!check_value(o, value, src, &v, err, errlen))
        return CASENET_EINVAL;
    int rc = store_value(c, o, &v);
    if (rc != CASENET_OK) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    c->source[i] = src;
    return CASENET_OK;
}

/* ------------------------------------------------------------ INI */

/* Where inih reads from, counting lines so that each handler call knows
 * its line (the handler is called right after its line was read). */
struct ini_src {
    FILE *f;
    const char *s; /* with f NULL: the rest of the text */
    unsigned line, next;
    bool indented;     /* the line read last starts with a blank: inih continues
                        * the key above with it */
    unsigned too_long; /* the first line longer than inih's buffer, 0 = none */
    int max_line;      /* the longest line inih takes, in characters */
};

/* True when the line just read into str (num bytes of buffer, no newline in
 * it) goes on in the source: inih would read its rest as another line. A
 * newline right after a full buffer is taken here, so the line counts. */
static bool ini_cut(struct ini_src *src, const char *str, int num)
{
    if (strchr(str, '\n') || strlen(str) < (size_t)num - 1)
        return false;
    if (src->f) {
        int ch = fgetc(src->f);
        if (ch == EOF || ch == '\n')
            return false;
        ungetc(ch, src->f);
        return true;
    }
    if (*src->s == '\n') {
        src->s++;
        return false;
    }
    return *src->s != '\0';
}

static char *ini_read(char *str, int num, void *stream)
{
    struct ini_src *src = stream;
    if (num < 2)
        return NULL;
    if (src->f) {
        if (!fgets(str, num, src->f))
            return NULL;
    } else {
        if (!*src->s)
            return NULL;
        size_t n = 0;
        while (n < (size_t)num - 1 && src->s[n] && src->s[n] != '\n')
            n++;
        if (n < (size_t)num - 1 && src->s[n] == '\n')
            n++;
        memcpy(str, src->s, n);
        str[n] = '\0';
        src->s += n;
    }
    src->line = src->next;
    src->indented = str[0] == ' ' || str[0] == '\t';
    src->max_line = num - 1;
    bool ended = strchr(str, '\n') != NULL;
    if (!ended && ini_cut(src, str, num)) {
        src->too_long = src->line;
        return NULL; /* load() reports it; nothing after it is read */
    }
    if (ended || strlen(str) == (size_t)num - 1)
        src->next++;
    return str;
}

struct ini_state {
    struct config *c;
    struct ini_src *src;
    unsigned err_line; /* the line of the first error, 0 = none */
    char err[320];
};

static bool section_known(const char *section)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strcmp(config_options[i].section, section) == 0)
            return true;
    }
    return false;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct ini_state *st = user;
    char err[320];
    unsigned line = st->src->line;
    const struct config_option *o = config_find(section, name);
    if (!o) {
        if (!section_known(section))
            snprintf(err, sizeof err,
                     "unknown section [%s]: the sections are [broker] and [limits]", section);
        else
            snprintf(err, sizeof err,
                     "unknown key [%s] %s (casenetd --help-config lists every key)", section, name);
        goto fail;
    }
    size_t i = (size_t)(o - config_options);
    if (st->c->file_line[i] && st->src->indented) {
        snprintf(err, sizeof err,
                 "an indented line continues [%s] %s, and a value is one line: remove the "
                 "indentation",
                 section, name);
        goto fail;
    }
    if (st->c->file_line[i]) {
        snprintf(err, sizeof err, "[%s] %s is given twice (first on line %u): keep one", section,
                 name, st->c->file_line[i]);
        goto fail;
    }
    st->c->file_line[i] = line;
    struct value v;
    if (st->c->source[i] == CONFIG_FLAG) { /* the command line wins; the file is still checked */
        if (check_value(o, value, CONFIG_FILE, &v, err, sizeof err))
            return 1;
    } else if (config_set(st->c, i, value, CONFIG_FILE, err, sizeof err) == CASENET_OK) {
        return 1;
    }
fail:
    if (!st->err_line) {
        st->err_line = line;
        snprintf(st->err, sizeof st->err, "%s", err);
    }
    return 0;
}

static int load(struct config *c, struct ini_src *src, const char *origin, char *err, size_t errlen)
{
    struct ini_state st = {.c = c, .src = src};
    src->next = 1;
    int line = ini_parse_stream(ini_read, src, on_ini, &st);
    if (src->too_long && (line == 0 || (unsigned)line >= src->too_long)) {
        snprintf(err, errlen,
                 "%s:%u: the line is longer than the %d characters a line may hold: shorten it "
                 "(a long store URI: leave out options that have their default)",
                 origin, src->too_long, src->max_line);
        return CASENET_EINVAL;
    }
    if (line == 0)
        return CASENET_OK;
    if (line < 0) {
        snprintf(err, errlen, "%s: out of memory", origin);
        return CASENET_ENOMEM;
    }
    if (st.err_line == (unsigned)line)
        snprintf(err, errlen, "%s:%d: %s", origin, line, st.err);
    else
        snprintf(err, errlen, "%s:%d: syntax error: expected [section], key = value or a ; comment",
                 origin, line);
    return CASENET_EINVAL;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    struct ini_src src = {.f = fopen(path, "r")};
    if (!src.f) {
        snprintf(err, errlen, "cannot read config %s: %s", path, strerror(errno));
        return CASENET_EIO;
    }
    int rc = load(c, &src, path, err, errlen);
    fclose(src.f);
    return rc;
}

int config_load_string(struct config *c, const char *text, const char *origin, char *err,
                       size_t errlen)
{
    struct ini_src src = {.s = text};
    return load(c, &src, origin, err, errlen);
}

/* ------------------------------------------------------------ defaults */

/* Defaults that depend on other values or on the machine. */
static int derive_defaults(struct config *c)
{
    struct broker_config *v = &c->values;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct config_option *o = &config_options[i];
        if (c->source[i] != CONFIG_UNSET)
            continue;
        if (o->offset == OFF(store_spec) && v->data_dir) {
            if (asprintf(&v->store_spec, "sqlite:%s", v->data_dir) < 0) {
                v->store_spec = NULL;
                return CASENET_ENOMEM;
            }
            c->source[i] = CONFIG_DEFAULT;
        } else if (o->offset == LIM(verify_threads)) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            v->limits.verify_threads = cores > 5 ? 4u : cores > 1 ? (uint32_t)(cores - 1) : 0u;
            c->source[i] = CONFIG_DEFAULT;
        }
        /* A burst left out beside a rate given: one minute's worth, within
         * the burst's own bounds (a rate given per second can pass them). */
        for (int cls = 0; cls < LIMITS_BUCKETS_N; cls++) {
            if (o->offset != BURST(cls))
                continue;
            const struct config_option *rate = o - 1;
            assert(rate->offset == RATE(cls));
            /* (a rate of 0 has no bucket: its burst does not matter) */
            if (c->source[rate - config_options] == CONFIG_UNSET ||
                v->limits.rate[cls].per_min == 0)
                break;
            uint64_t minute = v->limits.rate[cls].per_min;
            v->limits.rate[cls].burst = (uint32_t)(minute > o->max ? o->max : minute);
            c->source[i] = CONFIG_DEFAULT;
        }
    }
    return CASENET_OK;
}

int config_finish(struct config *c, char *err, size_t errlen)
{
    int rc = derive_defaults(c);
    if (rc != CASENET_OK) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct config_option *o = &config_options[i];
        if (c->source[i] != CONFIG_UNSET)
            continue;
        if (o->required) {
            snprintf(err, errlen, "--%s is required (on the command line or in --config)", o->flag);
            return CASENET_EINVAL;
        }
        if (o->def && (rc = config_set(c, i, o->def, CONFIG_DEFAULT, err, errlen)) != CASENET_OK)
            return rc; /* a bad default in the table aborts in the unit test */
    }
    return CASENET_OK;
}

/* ------------------------------------------------------------ output */

void config_format(const struct config *c, size_t i, char *out, size_t cap)
{
    assert(i < N_OPTIONS);
    const struct config_option *o = &config_options[i];
    const void *p = cslot(c, o);
    if (c->source[i] == CONFIG_UNSET) {
        snprintf(out, cap, "(not set)");
        return;
    }
    switch (o->type) {
    case CONFIG_STRING:
    case CONFIG_ENDPOINT:
    case CONFIG_PATH:
        snprintf(out, cap, "%s", *(char *const *)p);
        break;
    case CONFIG_U64:
        snprintf(out, cap, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case CONFIG_BOOL:
        snprintf(out, cap, "%s", *(const bool *)p ? "true" : "false");
        break;
    case CONFIG_DURATION:
        format_duration(*(const uint32_t *)p, out, cap);
        break;
    case CONFIG_RATE:
        snprintf(out, cap, "%u/min", *(const uint32_t *)p);
        break;
    default:
        snprintf(out, cap, "%u", *(const uint32_t *)p);
    }
}

void config_print_effective(const struct config *c, FILE *f)
{
    static const char *const sources[] = {"", "default", "file", "command line"};
    char key[64], value[512];
    fprintf(f, "casenetd: options in effect (and where each comes from):\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct config_option *o = &config_options[i];
        snprintf(key, sizeof key, "[%s] %s", o->section, o->key);
        config_format(c, i, value, sizeof value);
        if (c->source[i] == CONFIG_UNSET)
            fprintf(f, "  %-30s = %s\n", key, value);
        else
            fprintf(f, "  %-30s = %-24s (%s)\n", key, value, sources[c->source[i]]);
    }
}
