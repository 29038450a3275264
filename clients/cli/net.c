/* net.c - the connection helpers every online subcommand shares (commands.h):
 * timeouts, the broker's errors as exit codes and hints, connecting with the
 * home's keys and directory, pulling the directory, and message ids from a
 * unique prefix. */
#include "cli.h"
#include "commands.h"
#include "home.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define PAGE_MAX 100
/* Candidate ids for a prefix, at most CANDIDATES_MAX kept. */
#define CANDIDATES_MAX 8

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
    if (!cn_endpoint_list_valid(ep))
        return cli_usage_error("invalid broker endpoint '%s'%s: expected " CN_ENDPOINT_LIST_FORMS,
                               ep, endpoint && endpoint[0] ? "" : " (in the home's state file)");
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

int net_pull_directory(struct home *h, casenet_client *c, uint64_t *old_version)
{
    casenet_buf bytes = {0};
    int rc = casenet_client_get_directory(c, &bytes);
    if (rc != CASENET_OK)
        return net_fail(c, rc, "GetDirectory failed");
    int ex = home_store_directory(h, bytes.data, bytes.len, old_version);
    casenet_client_set_directory(c, h->dir);
    casenet_buf_free(&bytes);
    return ex;
}

struct candidates {
    const char *prefix;
    size_t n; /* all matches, even those not kept */
    uint8_t id[CANDIDATES_MAX][CASENET_MESSAGE_ID_BYTES];
};

static void candidate(struct candidates *k, const uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    char hex[33];
    cli_id16_hex(id, hex);
    if (strncmp(hex, k->prefix, strlen(k->prefix)) != 0)
        return;
    for (size_t i = 0; i < k->n && i < CANDIDATES_MAX; i++) {
        if (memcmp(k->id[i], id, CASENET_MESSAGE_ID_BYTES) == 0)
            return; /* the same message, e.g. sent to oneself */
    }
    if (k->n < CANDIDATES_MAX)
        memcpy(k->id[k->n], id, CASENET_MESSAGE_ID_BYTES);
    k->n++;
}

/* Adds the matching ids of every inbox row and, with sent, of every message
 * sent; a casenet_err. */
static int collect_candidates(casenet_client *c, bool sent, struct candidates *k)
{
    for (uint64_t cursor = 0, next = 0;; cursor = next) {
        casenet_inbox_entry *rows = NULL;
        size_t n = 0;
        bool more = false;
        int rc =
            casenet_client_list(c, CASENET_INBOX_ANY, cursor, PAGE_MAX, &rows, &n, &next, &more);
        if (rc != CASENET_OK)
            return rc;
        for (size_t i = 0; i < n; i++)
            candidate(k, rows[i].message_id);
        casenet_inbox_entries_free(rows, n);
        if (!more || next <= cursor)
            break;
    }
    for (uint64_t cursor = 0, next = 0; sent; cursor = next) {
        casenet_message_status *m = NULL;
        size_t n = 0;
        bool more = false;
        int rc = casenet_client_list_sent(c, false, 0, cursor, PAGE_MAX, &m, &n, &next, &more);
        if (rc != CASENET_OK)
            return rc;
        for (size_t i = 0; i < n; i++)
            candidate(k, m[i].message_id);
        casenet_message_statuses_free(m, n);
        if (!more || next <= cursor)
            break;
    }
    return CASENET_OK;
}

int net_resolve_id(casenet_client *c, const char *arg, bool sent, uint8_t out[16])
{
    size_t len = strlen(arg);
    if (!cli_id_arg_ok(arg))
        return cli_usage_error(ID_ARG_WANTED, arg);
    char prefix[33];
    for (size_t i = 0; i < len; i++)
        prefix[i] = (char)(arg[i] | 0x20); /* lowercase; digits keep their value */
    if (len == 32 && cli_parse_id16(arg, out))
        return CLI_OK;
    prefix[len] = '\0';
    struct candidates k = {.prefix = prefix};
    int rc = collect_candidates(c, sent, &k);
    if (rc != CASENET_OK)
        return net_fail(c, rc, "cannot list the messages to match the id prefix");
    if (k.n == 0)
        return cli_fail(CLI_BROKER, CASENET_ENOTFOUND,
                        sent ? "see 'casenet inbox' and 'casenet cases'" : "see 'casenet inbox'",
                        "no message id starting with %s in this member's inbox%s", prefix,
                        sent ? " or sent messages" : "");
    if (k.n == 1) {
        memcpy(out, k.id[0], CASENET_MESSAGE_ID_BYTES);
        return CLI_OK;
    }
    fprintf(stderr, "casenet: %s: id prefix %s is ambiguous, %zu messages match:\n", cli_cmd_name,
            prefix, k.n);
    for (size_t i = 0; i < k.n && i < CANDIDATES_MAX; i++) {
        char h[33];
        cli_id16_hex(k.id[i], h);
        fprintf(stderr, "  %s\n", h);
    }
    if (k.n > CANDIDATES_MAX)
        fprintf(stderr, "  ...\n");
    fprintf(stderr, "type more digits of the id\n");
    return CLI_EUSAGE;
}
