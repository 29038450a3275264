/* cmd_hashes_send.c - `casenet hashes contribute` and `feedback`: building
 * HASH_SHARE payloads (PROTOCOL.md §6.2) from files, a CSV list or one
 * signal, sealing and submitting them; and what the hashes subcommands share
 * (cmd_hashes.h). */
#include "cli.h"
#include "cmd_hashes.h"
#include "commands.h"
#include "hashbank_digest.h"
#include "util.h"

#include "casenet.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this many items per message (PROTOCOL.md §6.2). */
#define HASHES_BATCH 20000

int hashes_net_option(int c, const char *arg, struct hashes_net *o)
{
    if (c == 'H')
        o->home = arg;
    else if (c == 'b')
        o->broker = arg;
    else if (c == 't' && !net_parse_timeout(arg, &o->timeout_ms))
        return cli_usage_error("--timeout wants 1..3600 seconds, not '%s'", arg);
    else if (c != 't')
        return CLI_EUSAGE;
    return CLI_OK;
}

int hashes_parse_net(int argc, char **argv, const char *usage, struct hashes_net *o)
{
    static const struct option opts[] = {HASHES_NET_OPTS, {NULL, 0, NULL, 0}};
    int c;
    while ((c = cli_getopt(argc, argv, "H:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(usage);
        int ex = hashes_net_option(c, optarg, o);
        if (ex != CLI_OK)
            return ex;
    }
    return -1;
}

int hashes_ctx_open(const struct hashes_net *o, bool connect, struct hashes_ctx *x)
{
    memset(x, 0, sizeof *x);
    x->path = home_path(o->home);
    if (!x->path)
        return CLI_EFAIL;
    int ex = home_open(x->path, &x->h);
    if (ex == CLI_OK)
        ex = hashes_bank_open(x->h, &x->bank);
    if (ex == CLI_OK && connect)
        ex = net_connect(x->h, o->broker, o->timeout_ms ? o->timeout_ms : 10000, &x->c);
    return ex;
}

void hashes_ctx_close(struct hashes_ctx *x)
{
    casenet_client_free(x->c);
    hashbank_free(x->bank);
    home_free(x->h);
    free(x->path);
    memset(x, 0, sizeof *x);
}

/* ------------------------------------------------------------ sending */

/* Recipients of --to, split on commas (pointing into arg). */
struct recipients {
    const char *to[CASENET_MAX_RECIPIENTS];
    size_t n;
};

static int parse_to(char *arg, struct recipients *r)
{
    char *save = NULL;
    for (char *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (r->n == CASENET_MAX_RECIPIENTS)
            return cli_usage_error("--to names more than %d recipients", CASENET_MAX_RECIPIENTS);
        r->to[r->n++] = t;
    }
    return r->n ? CLI_OK : cli_usage_error("--to wants a member id or @group");
}

/* Checks, seals and submits payload p to r; prints the message id (and
 * copies it into id_out when not NULL). */
static int send_share(struct hashes_ctx *x, const struct recipients *r, Casenet__V1__Payload *p,
                      uint8_t *id_out)
{
    casenet_buf payload = {0}, env = {0};
    size_t len = casenet__v1__payload__get_packed_size(p);
    int ex = CLI_OK;
    char err[512] = "";
    payload.data = malloc(len ? len : 1);
    if (!payload.data)
        return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    payload.len = casenet__v1__payload__pack(p, payload.data);
    int rc = casenet_payload_check(payload.data, payload.len, CASENET_KIND_HASH_SHARE, 0, err,
                                   sizeof err);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, CASENET_EINVAL, "see proto/PROTOCOL.md section 6.2",
                      "invalid hash share: %s", err);
        goto cleanup;
    }
    rc = casenet_hash_share_check(x->h->dir, x->h->member, payload.data, payload.len, err,
                                  sizeof err);
    for (size_t i = 0; rc == CASENET_OK && i < r->n; i++) {
        if (r->to[i][0] != '@')
            rc = casenet_role_check(x->h->dir, x->h->member, CASENET_KIND_HASH_SHARE, &r->to[i], 1,
                                    err, sizeof err);
    }
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, "see who may contribute in docs/hashbank.md", "%s", err);
        goto cleanup;
    }
    casenet_seal_opts so = {.kind = CASENET_KIND_HASH_SHARE, .to = r->to, .n_to = r->n};
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    rc = casenet_seal(x->h->keys, x->h->dir, &so, payload.data, payload.len, &env, id);
    if (rc != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, rc, "check --to against 'casenet directory show'",
                      "cannot seal the hash share: %s", casenet_strerror(rc));
        goto cleanup;
    }
    casenet_submit_receipt receipt;
    bool duplicate = false;
    rc = casenet_client_submit(x->c, env.data, env.len, &receipt, &duplicate);
    if (rc != CASENET_OK) {
        ex = net_fail(x->c, rc, "the broker did not accept the hash share");
        goto cleanup;
    }
    char hex[33];
    cli_id16_hex(id, hex);
    printf("%s\n", hex);
    if (id_out)
        memcpy(id_out, id, sizeof id);
cleanup:
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
    return ex;
}

int hashes_rows_add(struct hashes_rows *b, const struct hashbank_row *row)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        struct hashbank_row *grown = realloc(b->rows, cap * sizeof *grown);
        if (!grown)
            return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        b->rows = grown, b->cap = cap;
    }
    b->rows[b->n++] = *row;
    return CLI_OK;
}

struct contribution {
    int category;
    const char *reference;
    bool retract;
};

/* Sends rows [from, to) of b as one message. */
static int send_rows(struct hashes_ctx *x, const struct recipients *r, const struct hashes_rows *b,
                     size_t from, size_t to, const struct contribution *k)
{
    size_t n = to - from;
    Casenet__V1__HashSignal *sig = calloc(n, sizeof *sig);
    Casenet__V1__HashEntry *ent = calloc(n, sizeof *ent), **pe = calloc(n, sizeof *pe);
    Casenet__V1__HashRetraction *ret = calloc(n, sizeof *ret), **pr = calloc(n, sizeof *pr);
    int ex = CLI_OK;
    if (!sig || !ent || !pe || !ret || !pr) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        goto cleanup;
    }
    int64_t now = cn_now_ms();
    for (size_t i = 0; i < n; i++) {
        struct hashbank_row *row = &b->rows[from + i];
        casenet__v1__hash_signal__init(&sig[i]);
        sig[i].signal_type = (Casenet__V1__HashSignalType)row->type;
        sig[i].vendor_type = row->vendor;
        sig[i].value = row->value;
        casenet__v1__hash_entry__init(&ent[i]);
        ent[i].signal = &sig[i];
        ent[i].category = (Casenet__V1__HashCategory)(row->category ? row->category : k->category);
        ent[i].first_seen_ms = now;
        ent[i].reference = (char *)(k->reference ? k->reference : "");
        pe[i] = &ent[i];
        casenet__v1__hash_retraction__init(&ret[i]);
        ret[i].signal = &sig[i];
        pr[i] = &ret[i];
    }
    Casenet__V1__HashShare hs = CASENET__V1__HASH_SHARE__INIT;
    if (k->retract)
        hs.n_retractions = n, hs.retractions = pr;
    else
        hs.n_entries = n, hs.entries = pe;
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    p.body_case = CASENET__V1__PAYLOAD__BODY_HASH_SHARE;
    p.hash_share = &hs;
    ex = send_share(x, r, &p, NULL);
cleanup:
    free(sig), free(ent), free(pe), free(ret), free(pr);
    return ex;
}

int hashes_read_csv(const char *path, bool need_category, struct hashes_rows *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f)
        return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int ex = CLI_OK;
    while (ex == CLI_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || (len == 1 && line[0] == '\r') ||
            (lineno == 1 && hashbank_csv_header(line, (size_t)len)))
            continue;
        struct hashbank_row row;
        char err[256];
        if (hashbank_csv_row(line, (size_t)len, &row, err, sizeof err) != CASENET_OK)
            ex = cli_fail(CLI_LOCAL, CASENET_EINVAL, "nothing was sent", "%s:%zu: %s", path, lineno,
                          err);
        else if (!row.category && need_category)
            ex = cli_fail(CLI_LOCAL, CASENET_EINVAL, "add the category or pass --category",
                          "%s:%zu: no category", path, lineno);
        else
            ex = hashes_rows_add(b, &row);
    }
    if (ex == CLI_OK && ferror(f))
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot read %s", path);
    free(line);
    if (f != stdin)
        fclose(f);
    return ex;
}

/* Adds the md5, sha1 and sha256 of the file at path to b. */
static int add_file(const char *path, struct hashes_rows *b)
{
    struct hashbank_digests d;
    if (hashbank_digest_file(path, &d) != CASENET_OK)
        return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot read %s: %s", path, strerror(errno));
    const char *values[] = {d.md5, d.sha1, d.sha256};
    const int types[] = {CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_MD5,
                         CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_SHA1,
                         CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_SHA256};
    int ex = CLI_OK;
    for (int i = 0; ex == CLI_OK && i < 3; i++) {
        struct hashbank_row row = {.type = types[i]};
        snprintf(row.value, sizeof row.value, "%s", values[i]);
        ex = hashes_rows_add(b, &row);
    }
    return ex;
}

/* Collects the live entries of imported list name (contributor "list:NAME"). */
struct from_source {
    char who[HASHBANK_SOURCE_MAX + 8];
    struct hashes_rows *b;
};

static int source_row(const struct hashbank_entry *e, void *ctx)
{
    const struct from_source *fs = ctx;
    struct hashbank_row row = {.category = e->category};
    const char *vendor = NULL;
    if (strcmp(e->contributor, fs->who) != 0 ||
        hashbank_type_parse(e->signal_type, &row.type, &vendor) != CASENET_OK)
        return CASENET_OK;
    snprintf(row.vendor, sizeof row.vendor, "%s", vendor ? vendor : "");
    snprintf(row.value, sizeof row.value, "%s", e->value);
    return hashes_rows_add(fs->b, &row) == CLI_OK ? CASENET_OK : CASENET_ENOMEM;
}

/* Checks that the imported list name may go to every recipient of r (the
 * policy recorded at import) and collects its entries into b. */
static int source_rows(struct hashes_ctx *x, const char *name, const struct recipients *r,
                       struct hashes_rows *b)
{
    for (size_t i = 0; i < r->n; i++) {
        bool ok = false;
        int rc = hashbank_source_allows(x->bank, name, r->to[i], &ok);
        if (rc == CASENET_ENOTFOUND)
            return cli_fail(CLI_LOCAL, rc, "see 'casenet hashes stats' for the imported lists",
                            "no imported list is called '%s'", name);
        if (rc != CASENET_OK)
            return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot read the hash bank");
        if (!ok)
            return cli_fail(
                CLI_LOCAL, CASENET_EFORBIDDEN,
                "import it again with --redistribute-to naming them, if its terms allow",
                "the list '%s' may not be redistributed to %s", name, r->to[i]);
    }
    struct from_source fs = {.b = b};
    snprintf(fs.who, sizeof fs.who, "list:%s", name);
    if (hashbank_each(x->bank, 0, source_row, &fs) != CASENET_OK)
        return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot read the hash bank");
    if (b->n == 0)
        return cli_fail(CLI_LOCAL, CASENET_EINVAL, NULL, "the list '%s' holds no live entries",
                        name);
    return CLI_OK;
}

static const char contribute_usage[] =
    "usage: casenet hashes contribute --to MEMBER[,MEMBER|@GROUP] --category CATEGORY\n"
    "                                 [--reference REF] FILE...\n"
    "       casenet hashes contribute --to ... [--category CATEGORY] --csv LIST.csv\n"
    "       casenet hashes contribute --to ... --source NAME\n"
    "       casenet hashes contribute --to ... --retract (FILE... | --csv LIST.csv)\n"
    "                                 [--home DIR] [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Sends hashes to the recipients' banks in HASH_SHARE messages (20000 items\n"
    "each): the md5, sha1 and sha256 of each FILE, computed here (the files never\n"
    "leave this machine), or the rows of a CSV list signal_type,signal_value,category\n"
    "(a header line is skipped; --category fills rows without one). With --retract\n"
    "the same hashes are withdrawn from the recipients' banks. CATEGORY: baseline,\n"
    "nationally-illegal, not-illegal. Only the hotline (intake), the police\n"
    "(responder) and gateways may contribute. --source sends the entries of a list\n"
    "imported with 'casenet hashes import --csv FILE --source NAME', only to the\n"
    "recipients that import named in --redistribute-to (none by default).\n"
    "Prints each message id.\n"
    "\n"
    "options:\n"
    "  -T, --to RECIPIENTS      member ids or @group, comma-separated\n"
    "  -c, --category CATEGORY  of the files' hashes, or of CSV rows without one\n"
    "  -r, --reference REF      your reference for the entries (<= 128 bytes)\n"
    "  -C, --csv FILE           a list signal_type,signal_value,category (- = stdin)\n"
    "  -S, --source NAME        the entries of the imported list NAME\n"
    "  -R, --retract            withdraw these hashes instead\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request (1..3600, default 10)\n"
    "  -h, --help               this text\n";

int hashes_contribute(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 'T'},
        {"category", required_argument, NULL, 'c'},
        {"reference", required_argument, NULL, 'r'},
        {"csv", required_argument, NULL, 'C'},
        {"retract", no_argument, NULL, 'R'},
        {"source", required_argument, NULL, 'S'},
        HASHES_NET_OPTS,
        {NULL, 0, NULL, 0},
    };
    struct hashes_net o = {0};
    struct recipients r = {.n = 0};
    struct contribution k = {0};
    const char *csv = NULL, *source = NULL;
    int c, ex;
    while ((c = cli_getopt(argc, argv, "T:c:r:C:RS:H:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(contribute_usage);
        if (c == 'T' && (ex = parse_to(optarg, &r)) != CLI_OK)
            return ex;
        if (c == 'c' && hashbank_category_parse(optarg, &k.category) != CASENET_OK)
            return cli_usage_error("unknown --category '%s': baseline, nationally-illegal, "
                                   "not-illegal",
                                   optarg);
        if (c == 'r' && strlen(optarg) > 128)
            return cli_usage_error("--reference is at most 128 bytes");
        k.reference = c == 'r' ? optarg : k.reference;
        csv = c == 'C' ? optarg : csv;
        source = c == 'S' ? optarg : source;
        k.retract = k.retract || c == 'R';
        if (!strchr("TcrCRS", c) && (ex = hashes_net_option(c, optarg, &o)) != CLI_OK)
            return ex;
    }
    if (r.n == 0)
        return cli_usage_error("--to is required: the members (or @group) to share with");
    if ((csv != NULL) + (source != NULL) + (optind != argc) != 1 || (source && k.retract))
        return cli_usage_error("give FILE..., --csv LIST.csv or --source NAME (one of them)");
    if (!csv && !source && !k.retract && !k.category)
        return cli_usage_error("--category is required with files");
    struct hashes_rows b = {0};
    ex = CLI_OK;
    for (int i = optind; ex == CLI_OK && i < argc; i++)
        ex = add_file(argv[i], &b);
    if (ex == CLI_OK && csv)
        ex = hashes_read_csv(csv, !k.category && !k.retract, &b);
    if (ex == CLI_OK && b.n == 0 && !source)
        ex = cli_fail(CLI_LOCAL, CASENET_EINVAL, NULL, "%s holds no hashes", csv);
    struct hashes_ctx x = {0};
    if (ex == CLI_OK)
        ex = hashes_ctx_open(&o, false, &x);
    char ref[HASHBANK_SOURCE_MAX + 8];
    if (ex == CLI_OK && source) {
        ex = source_rows(&x, source, &r, &b);
        snprintf(ref, sizeof ref, "list:%s", source);
        k.reference = k.reference ? k.reference : ref; /* the list's name travels along */
    }
    if (ex == CLI_OK)
        ex = net_connect(x.h, o.broker, o.timeout_ms ? o.timeout_ms : 10000, &x.c);
    for (size_t at = 0; ex == CLI_OK && at < b.n; at += HASHES_BATCH)
        ex = send_rows(&x, &r, &b, at, at + HASHES_BATCH < b.n ? at + HASHES_BATCH : b.n, &k);
    if (ex == CLI_OK)
        fprintf(stderr, "%s %zu hash%s to %zu recipient%s\n",
                k.retract ? "retracted" : "contributed", b.n, b.n == 1 ? "" : "es", r.n,
                r.n == 1 ? "" : "s");
    hashes_ctx_close(&x);
    free(b.rows);
    return ex;
}

/* ------------------------------------------------------------ feedback */

static const char feedback_usage[] =
    "usage: casenet hashes feedback --to CONTRIBUTOR --match TYPE:VALUE [--count N]\n"
    "       casenet hashes feedback --to CONTRIBUTOR --false-positive TYPE:VALUE --note TEXT\n"
    "                               [--home DIR] [--broker ENDPOINT] [--timeout SECONDS]\n"
    "\n"
    "Tells the member that contributed a hash that it matched N times (no content\n"
    "is sent) or that it matched something that is not abuse material (--note\n"
    "says what, e.g. 'a stock logo'). TYPE: md5, sha1, sha256, pdq, vendor:NAME.\n"
    "\n"
    "options:\n"
    "  -T, --to CONTRIBUTOR     the member that contributed the hash\n"
    "  -m, --match TYPE:VALUE   the hash matched\n"
    "  -n, --count N            how many times (default 1)\n"
    "  -f, --false-positive TYPE:VALUE  it matched something that is not abuse\n"
    "  -N, --note TEXT          what the false positive was\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per request (1..3600, default 10)\n"
    "  -h, --help               this text\n";

int hashes_feedback(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 'T'},
        {"match", required_argument, NULL, 'm'},
        {"count", required_argument, NULL, 'n'},
        {"false-positive", required_argument, NULL, 'f'},
        {"note", required_argument, NULL, 'N'},
        HASHES_NET_OPTS,
        {NULL, 0, NULL, 0},
    };
    struct hashes_net o = {0};
    struct recipients r = {.n = 0};
    const char *signal = NULL, *note = NULL;
    bool fp = false;
    uint64_t count = 1;
    int c, ex;
    while ((c = cli_getopt(argc, argv, "T:m:n:f:N:H:b:t:h", opts)) != -1) {
        if (c == 'h')
            return cli_help(feedback_usage);
        if (c == 'T' && (ex = parse_to(optarg, &r)) != CLI_OK)
            return ex;
        if (c == 'n' && !cli_parse_uint(optarg, 1, UINT32_MAX, &count))
            return cli_usage_error("--count wants a positive number, not '%s'", optarg);
        if ((c == 'm' || c == 'f') && signal)
            return cli_usage_error("give one of --match or --false-positive, once");
        signal = c == 'm' || c == 'f' ? optarg : signal;
        fp = fp || c == 'f';
        note = c == 'N' ? optarg : note;
        if (!strchr("TmnfN", c) && (ex = hashes_net_option(c, optarg, &o)) != CLI_OK)
            return ex;
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (r.n == 0 || !signal)
        return cli_usage_error("--to and one of --match or --false-positive are required");
    if (fp && !note)
        return cli_usage_error("--false-positive needs --note saying what the match was");
    struct hashbank_row row;
    char err[256];
    if (hashbank_signal_arg(signal, &row, err, sizeof err) != CASENET_OK)
        return cli_usage_error("%s", err);
    Casenet__V1__HashSignal sig = CASENET__V1__HASH_SIGNAL__INIT;
    sig.signal_type = (Casenet__V1__HashSignalType)row.type;
    sig.vendor_type = row.vendor;
    sig.value = row.value;
    Casenet__V1__HashFeedback f = CASENET__V1__HASH_FEEDBACK__INIT, *pf = &f;
    f.kind = fp ? CASENET__V1__HASH_FEEDBACK_KIND__HASH_FEEDBACK_KIND_FALSE_POSITIVE
                : CASENET__V1__HASH_FEEDBACK_KIND__HASH_FEEDBACK_KIND_MATCH;
    f.signal = &sig;
    f.match_count = fp ? 0 : (uint32_t)count;
    f.note = (char *)(note ? note : "");
    Casenet__V1__HashShare hs = CASENET__V1__HASH_SHARE__INIT;
    hs.n_feedback = 1;
    hs.feedback = &pf;
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    p.body_case = CASENET__V1__PAYLOAD__BODY_HASH_SHARE;
    p.hash_share = &hs;
    struct hashes_ctx x;
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    ex = hashes_ctx_open(&o, true, &x);
    if (ex == CLI_OK)
        ex = send_share(&x, &r, &p, id);
    if (ex == CLI_OK) {
        /* sent: kept in the bank for the bank page (a failure only warns) */
        char type[HASHBANK_TYPE_MAX], to[CASENET_MAX_RECIPIENTS * (CASENET_MEMBER_ID_MAX + 2)] = "";
        for (size_t i = 0; i < r.n; i++)
            snprintf(to + strlen(to), sizeof to - strlen(to), "%s%s", i ? "," : "", r.to[i]);
        if (hashbank_record_sent_feedback(x.bank, id, to, cn_now_ms(), (int)f.kind,
                                          hashbank_type_text(row.type, row.vendor, type), row.value,
                                          f.match_count, f.note) != CASENET_OK)
            cli_warn("the feedback was sent but not recorded in the hash bank");
    }
    hashes_ctx_close(&x);
    return ex;
}
