/* cmd_hashes_match.c - `casenet hashes match`: is a file or a hash in the
 * bank? Exact lookups for md5, sha1, sha256 and vendor types; PDQ by
 * Hamming distance (hashbank_pdq.c). Exit 0 when something matches, 1 when
 * nothing does, as grep does. */
#include "cli.h"
#include "cmd_hashes.h"
#include "hashbank_digest.h"

#include "casenet.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char match_usage[] =
    "usage: casenet hashes match [--max-distance N] [--min-quality Q] [--home DIR]\n"
    "                            [--no-record | --record-name]\n"
    "                            (FILE... | --hash TYPE:VALUE... | --stdin)\n"
    "\n"
    "Looks files (their md5, sha1 and sha256, computed here) or given hashes up\n"
    "in the bank's live entries: exact for md5, sha1, sha256 and vendor types;\n"
    "for pdq every entry within Hamming distance N (default 31, at most 31) whose\n"
    "quality is Q or more (default 50; entries that state none count). Prints one\n"
    "line per match: what was looked up, the entry and, for pdq, the distance.\n"
    "Exit 0 when something matched, 1 when nothing did (or on an error).\n"
    "With --stdin it answers TYPE:VALUE lines as they come (an upload path keeps\n"
    "one process, so the pdq index is built once): each answer ends with a line\n"
    "'TYPE:VALUE: N matched' (N entries: one per contributor) or 'TYPE:VALUE: no\n"
    "match' ('...: error: WHY' for a bad line), flushed.\n"
    "Each match is recorded in the bank (time, the entry hit, its category and\n"
    "source; never the file or its name unless --record-name), for `casenet\n"
    "hashes stats` and the console's bank page; the newest 10,000 are kept. A\n"
    "match that cannot be recorded (the bank busy with an import) is still\n"
    "answered, with a warning.\n"
    "\n"
    "options:\n"
    "  -x, --hash TYPE:VALUE    a hash to look up (repeatable)\n"
    "  -s, --stdin              answer TYPE:VALUE lines from stdin until its end\n"
    "  -d, --max-distance N     pdq: the largest Hamming distance (0..31)\n"
    "  -q, --min-quality Q      pdq: the lowest entry quality (0..100)\n"
    "  -n, --no-record          record nothing in the bank\n"
    "  -N, --record-name        record each matching FILE's name with its match\n"
    "  -H, --home DIR           the member home\n"
    "  -h, --help               this text\n";

struct matcher {
    struct hashes_ctx x;
    hashbank_pdq_index *pdq;
    unsigned distance, quality;
    size_t matched;
    bool record, record_name, record_failed;
};

/* Records a match of what (a FILE, --hash or stdin line) in the bank. */
static int record(struct matcher *m, const char *what, bool is_file, const char *type,
                  const char *value, unsigned distance)
{
    size_t n = 0;
    if (!m->record)
        return CLI_OK;
    int rc = hashbank_record_match(m->x.bank, type, value, distance,
                                   is_file && m->record_name ? what : NULL, &n);
    /* the answer matters more than its record: warn (once) and go on */
    if (rc != CASENET_OK && !m->record_failed)
        cli_warn("a match was not recorded in the hash bank (%s); the lookups go on",
                 rc == CASENET_ETIMEDOUT ? "it is busy: an import is running"
                                         : casenet_strerror(rc));
    m->record_failed = m->record_failed || rc != CASENET_OK;
    return CLI_OK;
}

static int exact(struct matcher *m, const char *what, bool is_file, const char *type,
                 const char *value, size_t *found)
{
    size_t n = 0;
    if (hashbank_lookup(m->x.bank, type, value, &n) != CASENET_OK)
        return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot read the hash bank");
    if (n) {
        printf("%s: %s:%s (%zu contributor%s)\n", what, type, value, n, n == 1 ? "" : "s");
        m->matched++;
    }
    *found = n;
    return n ? record(m, what, is_file, type, value, 0) : CLI_OK;
}

static int pdq(struct matcher *m, const char *what, const char *value, size_t *found)
{
    uint64_t q[4];
    struct hashbank_pdq_hit hits[16];
    if (hashbank_pdq_parse(value, q) != CASENET_OK)
        return cli_usage_error("not a pdq value: %s", value);
    if (!m->pdq && hashbank_pdq_load(m->x.bank, m->quality, &m->pdq) != CASENET_OK)
        return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot load the bank's pdq entries");
    size_t n = hashbank_pdq_match(m->pdq, q, m->distance, hits, 16);
    int ex = CLI_OK;
    for (size_t i = 0; i < n && i < 16; i++) {
        char hex[65];
        for (int w = 0; w < 4; w++)
            snprintf(hex + 16 * w, 17, "%016llx", (unsigned long long)hits[i].bits[w]);
        printf("%s: pdq:%s distance %u\n", what, hex, hits[i].distance);
        if (ex == CLI_OK)
            ex = record(m, what, false, "pdq", hex, hits[i].distance);
    }
    if (n > 16)
        printf("%s: and %zu more within distance %u\n", what, n - 16, m->distance);
    m->matched += n > 0;
    *found = n;
    return ex;
}

static int one_hash(struct matcher *m, const char *arg)
{
    struct hashbank_row row;
    char err[256], type[HASHBANK_TYPE_MAX];
    if (hashbank_signal_arg(arg, &row, err, sizeof err) != CASENET_OK)
        return cli_usage_error("--hash %s: %s", arg, err);
    size_t n = 0;
    if (row.type == CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_PDQ)
        return pdq(m, arg, row.value, &n);
    return exact(m, arg, false, hashbank_type_text(row.type, row.vendor, type), row.value, &n);
}

static int one_file(struct matcher *m, const char *path)
{
    struct hashbank_digests d;
    if (hashbank_digest_file(path, &d) != CASENET_OK)
        return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot read %s: %s", path, strerror(errno));
    size_t n = 0;
    int ex = exact(m, path, true, "md5", d.md5, &n);
    if (ex == CLI_OK)
        ex = exact(m, path, true, "sha1", d.sha1, &n);
    if (ex == CLI_OK)
        ex = exact(m, path, true, "sha256", d.sha256, &n);
    return ex;
}

/* --stdin: one query per line, each answer closed by a summary line. */
static int stream(struct matcher *m)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int ex = CLI_OK;
    while (ex == CLI_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        struct hashbank_row row;
        char err[256], type[HASHBANK_TYPE_MAX];
        size_t n = 0;
        if (hashbank_signal_arg(line, &row, err, sizeof err) != CASENET_OK) {
            printf("%s: error: %s\n", line, err);
        } else {
            bool is_pdq = row.type == CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_PDQ;
            ex = is_pdq ? pdq(m, line, row.value, &n)
                        : exact(m, line, false, hashbank_type_text(row.type, row.vendor, type),
                                row.value, &n);
            if (ex == CLI_OK && n)
                printf("%s: %zu matched\n", line, n);
            else if (ex == CLI_OK)
                printf("%s: no match\n", line);
        }
        if (ex == CLI_OK && fflush(stdout) != 0)
            ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot write to stdout");
    }
    free(line);
    return ex;
}

int hashes_match(int argc, char **argv)
{
    static const struct option opts[] = {
        {"hash", required_argument, NULL, 'x'},
        {"stdin", no_argument, NULL, 's'},
        {"max-distance", required_argument, NULL, 'd'},
        {"min-quality", required_argument, NULL, 'q'},
        {"no-record", no_argument, NULL, 'n'},
        {"record-name", no_argument, NULL, 'N'},
        {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct matcher m = {
        .distance = HASHBANK_PDQ_DISTANCE, .quality = HASHBANK_PDQ_MIN_QUALITY, .record = true};
    struct hashes_net o = {0};
    const char **hashes = calloc((size_t)argc, sizeof *hashes);
    size_t n_hashes = 0;
    bool from_stdin = false;
    uint64_t v;
    int c, ex = CLI_OK;
    if (!hashes)
        return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    while (ex == CLI_OK && (c = cli_getopt(argc, argv, "x:sd:q:nNH:h", opts)) != -1) {
        if (c == 'h') {
            free(hashes);
            return cli_help(match_usage);
        }
        if (c == 'x')
            hashes[n_hashes++] = optarg;
        else if (c == 's')
            from_stdin = true;
        else if (c == 'n')
            m.record = false;
        else if (c == 'N')
            m.record_name = true;
        else if (c == 'd' && cli_parse_uint(optarg, 0, HASHBANK_PDQ_MAX_DISTANCE, &v))
            m.distance = (unsigned)v;
        else if (c == 'q' && cli_parse_uint(optarg, 0, 100, &v))
            m.quality = (unsigned)v;
        else if (c == 'H')
            o.home = optarg;
        else
            ex = c == 'd' || c == 'q'
                     ? cli_usage_error("--%s wants 0..%d, not '%s'",
                                       c == 'd' ? "max-distance" : "min-quality",
                                       c == 'd' ? HASHBANK_PDQ_MAX_DISTANCE : 100, optarg)
                     : CLI_EUSAGE;
    }
    if (ex == CLI_OK && (n_hashes != 0) + (optind != argc) + from_stdin != 1)
        ex = cli_usage_error("give FILE..., --hash TYPE:VALUE or --stdin (one of them)");
    if (ex == CLI_OK && !m.record && m.record_name)
        ex = cli_usage_error("--record-name records with the match: drop --no-record");
    if (ex == CLI_OK)
        ex = hashes_ctx_open(&o, false, &m.x);
    if (ex == CLI_OK && from_stdin)
        ex = stream(&m);
    for (size_t i = 0; ex == CLI_OK && i < n_hashes; i++)
        ex = one_hash(&m, hashes[i]);
    for (int i = optind; ex == CLI_OK && n_hashes == 0 && i < argc; i++)
        ex = one_file(&m, argv[i]);
    if (ex == CLI_OK && fflush(stdout) != 0)
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot write to stdout");
    if (ex == CLI_OK && m.matched == 0)
        ex = CLI_EFAIL; /* nothing matched: grep's 1, silently */
    hashbank_pdq_free(m.pdq);
    hashes_ctx_close(&m.x);
    free(hashes);
    return ex;
}
