/* cmd_hashes.c - `casenet hashes ...`: the member's local hash bank
 * (docs/hashbank.md, clients/hashbank.h): import of received HASH_SHARE
 * messages, list, stats, export; contribute and feedback are in
 * cmd_hashes_send.c. `casenet watch` applies what it receives through
 * hashes_apply_opened. */
#include "cli.h"
#include "cmd_hashes.h"
#include "commands.h"
#include "hashbank.h"
#include "util.h"

#include "casenet.pb-c.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hashes_bank_open(const struct home *h, hashbank **out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", h->path, HASHBANK_FILE);
    int rc = hashbank_open(path, out);
    if (rc == CASENET_EINVAL)
        return cli_fail(CLI_LOCAL, rc, "upgrade casenet to read it",
                        "the hash bank %s was made by a newer casenet", path);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, "check the home's permissions and free space",
                        "cannot open the hash bank %s", path);
    return CLI_OK;
}

/* Applies one opened message to b after the contributor rule; a line on
 * stderr says what happened. Returns a casenet code. */
static int apply_opened(const struct home *h, hashbank *b, const casenet_message_info *info,
                        const casenet_buf *payload, struct hashbank_result *res)
{
    char err[256], hex[33];
    cli_id16_hex(info->message_id, hex);
    int rc = casenet_hash_share_check(h->dir, info->sender, payload->data, payload->len, err,
                                      sizeof err);
    if (rc != CASENET_OK) {
        cli_warn("hash share %s ignored: %s", hex, err);
        return rc;
    }
    rc = hashbank_apply(b, info->message_id, info->sender, info->created_at_ms, payload->data,
                        payload->len, res);
    if (rc != CASENET_OK) {
        cli_warn("hash share %s not applied: %s", hex, casenet_strerror(rc));
        return rc;
    }
    if (res->already)
        fprintf(stderr, "hash share %s from %s: applied before\n", hex, info->sender);
    else
        fprintf(stderr,
                "hash share %s from %s: %zu added, %zu retracted, %zu older ignored, "
                "%zu feedback\n",
                hex, info->sender, res->added, res->retracted, res->ignored, res->feedback);
    return CASENET_OK;
}

void hashes_apply_opened(const struct home *h, const casenet_message_info *info,
                         const casenet_buf *payload)
{
    hashbank *b = NULL;
    struct hashbank_result res;
    if (hashes_bank_open(h, &b) == CLI_OK)
        (void)apply_opened(h, b, info, payload, &res);
    hashbank_free(b);
}

/* ------------------------------------------------------------ import */

static const char import_usage[] =
    "usage: casenet hashes import [--home DIR] [--broker ENDPOINT] [--timeout SECONDS]\n"
    "       casenet hashes import --csv LIST.csv --source NAME [--category CATEGORY]\n"
    "                             [--redistribute-to RECIPIENTS] [--home DIR]\n"
    "\n"
    "Fetches the HASH_SHARE messages of the inbox not yet in the bank, verifies\n"
    "and opens them, applies them in the order they were sealed (adds,\n"
    "retractions, category changes; each message once) and acknowledges each as\n"
    "delivered. Contributions from members that may not contribute are ignored.\n"
    "\n"
    "With --csv, imports a foreign list (signal_type,signal_value,category, e.g.\n"
    "from NCMEC or ThreatExchange; docs/hashbank.md maps their fields) into the\n"
    "bank as the entries of source NAME, recording when. It is not\n"
    "redistributed ('contribute --source NAME') except to the members or @groups\n"
    "of --redistribute-to, as the list's terms allow.\n"
    "\n"
    "options:\n"
    "  -C, --csv FILE           a list to import (- = stdin)\n"
    "  -S, --source NAME        the list's name (letters, digits, . _ -)\n"
    "  -c, --category CATEGORY  for rows without one\n"
    "  -r, --redistribute-to RECIPIENTS  member ids or @groups, comma-separated\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request (1..3600, default 10)\n"
    "  -h, --help               this text\n";

/* One fetched and opened message waiting to be applied. */
struct opened {
    casenet_message_info info;
    casenet_buf env, payload;
    casenet_inbox_state state;
};

static int by_created(const void *a, const void *b)
{
    const struct opened *x = a, *y = b;
    if (x->info.created_at_ms != y->info.created_at_ms)
        return x->info.created_at_ms < y->info.created_at_ms ? -1 : 1;
    return memcmp(x->info.message_id, y->info.message_id, CASENET_MESSAGE_ID_BYTES);
}

/* Fetches message id over cl and opens it into o (o->state from row
 * state); a message that does not open is reported and o left empty. */
static int fetch_open(const struct home *h, casenet_client *cl, const uint8_t id[16],
                      casenet_inbox_state state, struct opened *o)
{
    memset(o, 0, sizeof *o);
    o->state = state;
    int rc = casenet_client_fetch(cl, id, &o->env);
    if (rc == CASENET_OK)
        rc = casenet_open(h->keys, h->dir, o->env.data, o->env.len, &o->info, &o->payload);
    if (rc != CASENET_OK) {
        char hex[33];
        cli_id16_hex(id, hex);
        cli_warn("message %s skipped: %s", hex, casenet_strerror(rc));
        casenet_message_info_clear(&o->info);
        casenet_buf_free(&o->env);
        casenet_buf_free(&o->payload);
    }
    return rc;
}

static void opened_clear(struct opened *o)
{
    casenet_message_info_clear(&o->info);
    casenet_buf_free(&o->env);
    casenet_buf_free(&o->payload);
}

/* Adds the inbox's HASH_SHARE rows not yet applied to *list, fetched and
 * opened; a message that does not open is reported and skipped. */
static int collect(const struct home *h, casenet_client *cl, hashbank *b, struct opened **list,
                   size_t *n)
{
    uint64_t cursor = 0;
    bool more = true;
    while (more) {
        casenet_inbox_entry *rows = NULL;
        size_t k = 0;
        uint64_t next = cursor;
        int rc = casenet_client_list(cl, CASENET_INBOX_ANY, cursor, 500, &rows, &k, &next, &more);
        if (rc != CASENET_OK)
            return net_fail(cl, rc, "ListInbox failed");
        for (size_t i = 0; i < k; i++) {
            if (rows[i].kind != CASENET_KIND_HASH_SHARE || hashbank_applied(b, rows[i].message_id))
                continue;
            struct opened *grown = realloc(*list, (*n + 1) * sizeof **list);
            if (!grown) {
                casenet_inbox_entries_free(rows, k);
                return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
            }
            *list = grown;
            if (fetch_open(h, cl, rows[i].message_id, rows[i].state, &(*list)[*n]) == CASENET_OK)
                (*n)++;
        }
        casenet_inbox_entries_free(rows, k);
        if (k == 0 || next <= cursor)
            break;
        cursor = next;
    }
    return CLI_OK;
}

/* Sends a DELIVERED receipt for o (once: only from queued or fetched). */
static void ack_delivered(const struct home *h, casenet_client *cl, const struct opened *o)
{
    if (o->state != CASENET_INBOX_QUEUED && o->state != CASENET_INBOX_FETCHED)
        return;
    casenet_receipt r = {0};
    casenet_buf signed_receipt = {0};
    memcpy(r.message_id, o->info.message_id, sizeof r.message_id);
    memcpy(r.envelope_hash, o->info.envelope_hash, sizeof r.envelope_hash);
    r.status = CASENET_RECEIPT_DELIVERED;
    r.signed_at_ms = cn_now_ms();
    uint64_t index = 0;
    int rc = cn_strlcpy(r.sender, o->info.sender, sizeof r.sender);
    if (rc == CASENET_OK)
        rc = cn_strlcpy(r.recipient, h->member, sizeof r.recipient);
    if (rc == CASENET_OK)
        rc = casenet_receipt_sign(h->keys, &r, &signed_receipt);
    if (rc == CASENET_OK)
        rc = casenet_client_send_receipt(cl, signed_receipt.data, signed_receipt.len, &index);
    if (rc != CASENET_OK)
        cli_warn("no delivered receipt sent: %s", casenet_strerror(rc));
    casenet_buf_free(&signed_receipt);
}

/* import --csv: a foreign list into the bank, as source name. */
static int import_list(const struct hashes_net *o, const char *csv, const char *name, int category,
                       const char *redistribute)
{
    struct hashes_rows rows = {0};
    struct hashes_ctx x = {0};
    struct hashbank_result res;
    int ex = hashes_read_csv(csv, !category, &rows);
    if (ex == CLI_OK)
        ex = hashes_ctx_open(o, false, &x);
    int rc = ex == CLI_OK ? hashbank_import_list(x.bank, name, redistribute, rows.rows, rows.n,
                                                 category, &res)
                          : CASENET_OK;
    if (rc == CASENET_EINVAL)
        ex = cli_usage_error("--source wants 1..%d characters without ':', ',' or spaces",
                             HASHBANK_SOURCE_MAX);
    else if (rc != CASENET_OK)
        ex = cli_fail(CLI_LOCAL, rc, NULL, "the hash bank could not be written");
    if (ex == CLI_OK)
        printf("%zu entr%s imported from %s as list:%s (%zu unchanged); redistributed to: %s\n",
               res.added, res.added == 1 ? "y" : "ies", csv, name, res.ignored,
               redistribute && redistribute[0] ? redistribute : "nobody");
    hashes_ctx_close(&x);
    free(rows.rows);
    return ex;
}

static int hashes_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"csv", required_argument, NULL, 'C'},
        {"source", required_argument, NULL, 'S'},
        {"category", required_argument, NULL, 'c'},
        {"redistribute-to", required_argument, NULL, 'r'},
        HASHES_NET_OPTS,
        {NULL, 0, NULL, 0},
    };
    struct hashes_net o = {.timeout_ms = 10000};
    const char *csv = NULL, *source = NULL, *redistribute = NULL;
    int c, ex, category = 0;
    while ((c = cli_getopt(argc, argv, "C:S:c:r:H:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(import_usage);
        if (c == 'c' && hashbank_category_parse(optarg, &category) != CASENET_OK)
            return cli_usage_error("unknown --category '%s': baseline, nationally-illegal, "
                                   "not-illegal",
                                   optarg);
        csv = c == 'C' ? optarg : csv;
        source = c == 'S' ? optarg : source;
        redistribute = c == 'r' ? optarg : redistribute;
        if (!strchr("CScr", c) && (ex = hashes_net_option(c, optarg, &o)) != CLI_OK)
            return ex;
    }
    if (!csv != !source || (!csv && (category || redistribute)))
        return cli_usage_error("--csv and --source go together (--category and "
                               "--redistribute-to with them)");
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (csv)
        return import_list(&o, csv, source, category, redistribute);
    struct hashes_ctx x;
    size_t applied = 0;
    ex = hashes_ctx_open(&o, true, &x);
    if (ex == CLI_OK)
        ex = hashes_import_pending(x.h, x.c, x.bank, &applied);
    if (ex == CLI_OK)
        printf("%zu hash share message%s applied\n", applied, applied == 1 ? "" : "s");
    hashes_ctx_close(&x);
    return ex;
}

int hashes_import_pending(const struct home *h, casenet_client *cl, hashbank *b, size_t *applied)
{
    struct opened *list = NULL;
    size_t n = 0;
    *applied = 0;
    int ex = collect(h, cl, b, &list, &n);
    if (ex == CLI_OK && n > 1)
        qsort(list, n, sizeof *list, by_created);
    for (size_t i = 0; ex == CLI_OK && i < n; i++) {
        struct hashbank_result res;
        int rc = apply_opened(h, b, &list[i].info, &list[i].payload, &res);
        if (rc == CASENET_EIO) {
            ex = cli_fail(CLI_LOCAL, rc, NULL, "the hash bank could not be written");
            break;
        }
        *applied += rc == CASENET_OK && !res.already;
        ack_delivered(h, cl, &list[i]);
    }
    for (size_t i = 0; i < n; i++)
        opened_clear(&list[i]);
    free(list);
    return ex;
}

int hashes_import_one(const struct home *h, casenet_client *cl, hashbank *b,
                      const casenet_inbox_entry *row)
{
    if (row->kind != CASENET_KIND_HASH_SHARE || hashbank_applied(b, row->message_id))
        return CASENET_OK;
    struct opened o;
    struct hashbank_result res;
    int rc = fetch_open(h, cl, row->message_id, row->state, &o);
    if (rc == CASENET_OK)
        rc = apply_opened(h, b, &o.info, &o.payload, &res);
    if (rc == CASENET_OK || (rc != CASENET_EIO && o.env.len))
        ack_delivered(h, cl, &o); /* applied, or ignored for good (not a contributor) */
    opened_clear(&o);
    return rc;
}

/* ------------------------------------------------------------ list, export */

static const char list_usage[] =
    "usage: casenet hashes list [--category CATEGORY] [--json] [--home DIR]\n"
    "       casenet hashes list --feedback [--json] [--home DIR]\n"
    "\n"
    "Lists the bank's live entries (TYPE, VALUE, CATEGORY, CONTRIBUTOR, FIRST SEEN,\n"
    "REFERENCE), or with --feedback the feedback received on this member's\n"
    "contributions. CATEGORY: baseline, nationally-illegal, not-illegal.\n"
    "\n"
    "options:\n"
    "  -c, --category CATEGORY  only the entries of this category\n"
    "  -j, --json               one JSON object per line\n"
    "  -f, --feedback           the feedback received instead of the entries\n"
    "  -H, --home DIR           the member home\n"
    "  -h, --help               this text\n";

static const char export_usage[] =
    "usage: casenet hashes export [--format csv|jsonl] [--category CATEGORY] [--home DIR]\n"
    "\n"
    "Writes the bank's live entries on stdout: CSV with the header\n"
    "signal_type,signal_value,category (the common exchange format), or JSON Lines\n"
    "with the contributor, first-seen time, reference and PDQ quality too. An\n"
    "entry held from several contributors is written once per contributor in\n"
    "JSON Lines, once in CSV.\n"
    "\n"
    "options:\n"
    "  -F, --format FORMAT      csv (the default) or jsonl\n"
    "  -c, --category CATEGORY  only the entries of this category\n"
    "  -H, --home DIR           the member home\n"
    "  -h, --help               this text\n";

enum out_form { OUT_TABLE, OUT_JSON, OUT_CSV };

struct printer {
    enum out_form form;
    char last_type[HASHBANK_TYPE_MAX], last_value[HASHBANK_VALUE_MAX];
};

/* Prints o on one line and releases it. */
static int print_json(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return CASENET_ENOMEM;
    printf("%s\n", s);
    free(s);
    return CASENET_OK;
}

static int print_entry(const struct hashbank_entry *e, void *ctx)
{
    struct printer *p = ctx;
    char when[64];
    if (p->form == OUT_CSV) {
        if (strcmp(p->last_type, e->signal_type) == 0 && strcmp(p->last_value, e->value) == 0)
            return CASENET_OK;
        snprintf(p->last_type, sizeof p->last_type, "%s", e->signal_type);
        snprintf(p->last_value, sizeof p->last_value, "%s", e->value);
        printf("%s,%s,%s\n", e->signal_type, e->value, hashbank_category_name(e->category));
        return CASENET_OK;
    }
    cli_format_time(e->first_seen_ms, false, when, sizeof when);
    if (p->form == OUT_TABLE) {
        printf("%-8s %s %-18s %-16s %s %s\n", e->signal_type, e->value,
               hashbank_category_name(e->category), e->contributor, when,
               e->reference[0] ? e->reference : "-");
        return CASENET_OK;
    }
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "signal_type", e->signal_type, "signal_value",
                  e->value, "category", hashbank_category_name(e->category), "contributor",
                  e->contributor, "first_seen", when, "reference", e->reference);
    if (o && e->pdq_quality)
        json_object_set_new(o, "pdq_quality", json_integer(e->pdq_quality));
    if (o && e->imported_ms) {
        cli_format_time(e->imported_ms, false, when, sizeof when);
        json_object_set_new(o, "imported", json_string(when));
    }
    return print_json(o);
}

static int print_feedback(const struct hashbank_feedback *f, void *ctx)
{
    const struct printer *p = ctx;
    char when[64];
    cli_format_time(f->created_ms, false, when, sizeof when);
    bool fp = f->kind == CASENET__V1__HASH_FEEDBACK_KIND__HASH_FEEDBACK_KIND_FALSE_POSITIVE;
    if (p->form == OUT_TABLE) {
        if (fp)
            printf("%s %-16s false-positive %s:%s  %s\n", when, cli_safe(f->sender), f->signal_type,
                   cli_safe(f->value), cli_safe(f->note));
        else
            printf("%s %-16s match x%u %s:%s\n", when, cli_safe(f->sender), f->match_count,
                   f->signal_type, cli_safe(f->value));
        return CASENET_OK;
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", when, "from", f->sender, "kind",
                          fp ? "false-positive" : "match", "signal_type", f->signal_type,
                          "signal_value", f->value);
    if (o)
        json_object_set_new(o, fp ? "note" : "match_count",
                            fp ? json_string(f->note) : json_integer(f->match_count));
    return print_json(o);
}

/* list and export: options, then every entry (or feedback) through p. */
static int list_or_export(int argc, char **argv, bool export)
{
    static const struct option list_opts[] = {
        {"category", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
        {"feedback", no_argument, NULL, 'f'},       {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    static const struct option export_opts[] = {
        {"category", required_argument, NULL, 'c'},
        {"format", required_argument, NULL, 'F'},
        {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct hashes_net o = {0};
    struct printer p = {.form = export ? OUT_CSV : OUT_TABLE};
    int category = 0, c;
    bool feedback = false;
    while ((c = cli_getopt(argc, argv, export ? "c:F:H:h" : "c:jfH:h",
                           export ? export_opts : list_opts)) != -1) {
        if (c == 'h')
            return cli_help(export ? export_usage : list_usage);
        if (c == 'c' && hashbank_category_parse(optarg, &category) != CASENET_OK)
            return cli_usage_error("unknown --category '%s': baseline, nationally-illegal, "
                                   "not-illegal",
                                   optarg);
        if (c == 'j' && !export)
            p.form = OUT_JSON;
        else if (c == 'f' && !export)
            feedback = true;
        else if (c == 'F' && export && strcmp(optarg, "csv") == 0)
            p.form = OUT_CSV;
        else if (c == 'F' && export && strcmp(optarg, "jsonl") == 0)
            p.form = OUT_JSON;
        else if (c == 'F')
            return cli_usage_error("unknown --format '%s': csv or jsonl", optarg);
        else if (c == 'H')
            o.home = optarg;
        else if (c != 'c')
            return CLI_EUSAGE;
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    struct hashes_ctx x;
    int ex = hashes_ctx_open(&o, false, &x);
    if (ex == CLI_OK) {
        if (p.form == OUT_CSV)
            printf("signal_type,signal_value,category\n");
        int rc = feedback ? hashbank_each_feedback(x.bank, print_feedback, &p)
                          : hashbank_each(x.bank, category, print_entry, &p);
        if (rc != CASENET_OK || fflush(stdout) != 0)
            ex = cli_fail(CLI_LOCAL, rc ? rc : CASENET_EIO, NULL, "cannot list the hash bank");
    }
    hashes_ctx_close(&x);
    return ex;
}

static int hashes_list(int argc, char **argv)
{
    return list_or_export(argc, argv, false);
}

static int hashes_export(int argc, char **argv)
{
    return list_or_export(argc, argv, true);
}

/* ------------------------------------------------------------ stats */

static const char stats_usage[] =
    "usage: casenet hashes stats [--json] [--home DIR]\n"
    "\n"
    "The bank's figures: live entries by category, retracted, contributors,\n"
    "messages applied, feedback received, last update; then per source (a\n"
    "contributing member, or list:NAME for an imported list) its live entries\n"
    "by category, retracted entries and last update.\n"
    "\n"
    "options:\n"
    "  -j, --json               one JSON object (the sources in \"sources\")\n"
    "  -H, --home DIR           the member home\n"
    "  -h, --help               this text\n";

/* The figures of s as "name  value" lines, or into the JSON object o. */
static void print_stats(const struct hashbank_stats *s, const char *when, json_t *o)
{
    const struct {
        const char *key, *label;
        uint64_t v;
    } rows[] = {
        {"live", "entries", s->live},
        {"baseline", "  baseline", s->by_category[1]},
        {"nationally_illegal", "  nationally-illegal", s->by_category[2]},
        {"not_illegal", "  not-illegal", s->by_category[3]},
        {"retracted", "retracted", s->retracted},
        {"contributors", "contributors", s->contributors},
        {"messages", "messages applied", s->messages},
        {"matches", "matches reported", s->matches},
        {"false_positives", "false positives", s->false_positives},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (o)
            json_object_set_new(o, rows[i].key, json_integer((json_int_t)rows[i].v));
        else
            printf("%-20s %llu\n", rows[i].label, (unsigned long long)rows[i].v);
    }
    if (o)
        json_object_set_new(o, "last_update", json_string(when));
    else
        printf("%-20s %s\n", "last update", when);
}

/* One source: a table row, or an object appended to the JSON array ctx. */
static int print_source(const struct hashbank_source *src, void *ctx)
{
    json_t *arr = ctx;
    char when[64] = "never";
    if (src->updated_ms)
        cli_format_time(src->updated_ms, false, when, sizeof when);
    if (!arr) {
        printf("%-24s %8llu %8llu %8llu %8llu %9llu  %s\n", cli_safe(src->source),
               (unsigned long long)src->live_total, (unsigned long long)src->live[1],
               (unsigned long long)src->live[2], (unsigned long long)src->live[3],
               (unsigned long long)src->retracted, when);
        return CASENET_OK;
    }
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "source", src->source, "live",
                          (json_int_t)src->live_total, "baseline", (json_int_t)src->live[1],
                          "nationally_illegal", (json_int_t)src->live[2], "not_illegal",
                          (json_int_t)src->live[3], "retracted", (json_int_t)src->retracted,
                          "last_update", when);
    return o && json_array_append_new(arr, o) == 0 ? CASENET_OK : CASENET_ENOMEM;
}

static int hashes_stats(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct hashes_net o = {0};
    bool json = false;
    int c;
    while ((c = cli_getopt(argc, argv, "jH:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(stats_usage);
        if (c == 'j')
            json = true;
        else if (c == 'H')
            o.home = optarg;
        else
            return CLI_EUSAGE;
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    struct hashes_ctx x;
    struct hashbank_stats s;
    json_t *obj = json ? json_object() : NULL, *sources = json ? json_array() : NULL;
    int ex = hashes_ctx_open(&o, false, &x);
    if (ex == CLI_OK && hashbank_stats(x.bank, &s) != CASENET_OK)
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot read the hash bank");
    if (ex == CLI_OK && json && (!obj || !sources))
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    if (ex == CLI_OK) {
        char when[64] = "never";
        if (s.last_update_ms)
            cli_format_time(s.last_update_ms, false, when, sizeof when);
        print_stats(&s, when, obj);
        if (!json)
            printf("\n%-24s %8s %8s %8s %8s %9s  %s\n", "SOURCE", "LIVE", "BASELINE", "NATIONAL",
                   "NOT-ILL.", "RETRACTED", "LAST UPDATE");
        int rc = hashbank_each_source(x.bank, print_source, sources);
        if (rc != CASENET_OK)
            ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot read the hash bank's sources");
    }
    if (ex == CLI_OK && json) {
        json_object_set(obj, "sources", sources);
        ex = print_json(json_incref(obj)) == CASENET_OK
                 ? CLI_OK
                 : cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    }
    json_decref(sources);
    json_decref(obj);
    hashes_ctx_close(&x);
    return ex;
}

static const struct cli_cmd hashes_cmds[] = {
    {"import", hashes_import, "apply the HASH_SHARE messages of the inbox to the bank"},
    {"list", hashes_list, "list the bank's entries, or --feedback received"},
    {"stats", hashes_stats, "the bank's figures by category"},
    {"export", hashes_export, "write the bank as CSV or JSON Lines"},
    {"contribute", hashes_contribute, "send hashes of files or a CSV list (or --retract them)"},
    {"feedback", hashes_feedback, "tell a contributor of a match or a false positive"},
    {"match", hashes_match, "look files or hashes up (pdq by distance); exit 1 if none"},
};

int cmd_hashes(int argc, char **argv)
{
    return cli_dispatch("hashes", hashes_cmds, sizeof hashes_cmds / sizeof hashes_cmds[0], argc,
                        argv);
}
