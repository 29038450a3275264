/* cmd_audit_prove.c - `casenet audit prove`: a member's own events are
 * included in the broker's log under a signed head, checked with
 * libcasenet's verifier against the head remembered in the home. */
#include "cmd_audit.h"

#include "casenet.pb-c.h"
#include "cli.h"
#include "commands.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROVE_HEAD_WAIT_MS 15000 /* how long `prove` waits for a head covering its events */
#define PROVE_EVENTS_MAX   1000u

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
        int rc =
            casenet_client_audit_query(a->c, by_index ? NULL : &f, cursor,
                                       by_index ? 1 : AUDIT_LOG_PAGE, &page, &got, &next, &more);
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
 * the broker's timer up to PROVE_HEAD_WAIT_MS), then checked against the
 * remembered head. Returns an exit code. */
static int prove_head(struct audit_ctx *a, uint64_t size, casenet_audit_head *h)
{
    int64_t until = cn_mono_ms() + PROVE_HEAD_WAIT_MS;
    casenet_buf ck = {0};
    int ex = CLI_OK;
    for (;;) {
        casenet_buf_free(&ck);
        int rc = casenet_client_tree_head(a->c, &ck);
        if (rc != CASENET_OK && rc != CASENET_ENOTFOUND) {
            ex = net_fail(a->c, rc, "GetTreeHead failed");
            break;
        }
        if (rc == CASENET_OK) {
            rc = casenet_audit_verifier_check_head(a->v, NULL, ck.data, ck.len, h);
            if (rc != CASENET_OK) {
                ex = audit_failed(a, rc);
                break;
            }
            if (h->size >= size) {
                rc = casenet_audit_verifier_check_head(a->v, a->c, ck.data, ck.len, h);
                ex = rc == CASENET_OK ? CLI_OK : audit_failed(a, rc);
                break;
            }
        }
        if (cn_mono_ms() >= until) {
            ex = cli_fail(CLI_BROKER, CASENET_ENOTFOUND, "retry in a minute",
                          "no signed head covers index %" PRIu64 " yet", size - 1);
            break;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    casenet_buf_free(&ck);
    return ex;
}

/* Proves each event included under h, printing a line per event. Returns an
 * exit code. */
static int prove_events(struct audit_ctx *a, const uint8_t *mid, const casenet_audit_record *recs,
                        size_t n, const casenet_audit_head *h)
{
    char when[64];
    cli_format_time(h->time_ms, false, when, sizeof when);
    for (size_t i = 0; i < n; i++) {
        Casenet__V1__AuditEvent *e =
            casenet__v1__audit_event__unpack(NULL, recs[i].event.len, recs[i].event.data);
        bool ok = e && e->index == recs[i].index &&
                  (!mid || (e->message_id.len == CASENET_MESSAGE_ID_BYTES &&
                            memcmp(e->message_id.data, mid, CASENET_MESSAGE_ID_BYTES) == 0));
        char kind[AUDIT_KIND_NAME_MAX] = "?";
        if (e)
            audit_kind_name((int)e->kind, kind);
        casenet__v1__audit_event__free_unpacked(e, NULL);
        if (!ok)
            return cli_fail(CLI_VERIFY, CASENET_EBADREQ, NULL,
                            "the broker returned a malformed or unrelated event at index %" PRIu64,
                            recs[i].index);
        int rc = casenet_audit_verifier_prove(a->v, a->c, h, recs[i].index, recs[i].event.data,
                                              recs[i].event.len);
        if (rc == CASENET_EBADSIG &&
            casenet_audit_verifier_failure(a->v)->where == CASENET_AUDIT_EVENT)
            return cli_fail(CLI_VERIFY, CASENET_EBADSIG, NULL,
                            "event %" PRIu64 " (%s): its inclusion proof under the head of size "
                            "%" PRIu64 " does not verify",
                            recs[i].index, kind, h->size);
        if (rc != CASENET_OK)
            return audit_failed(a, rc);
        printf("event %-8" PRIu64 " %-19s included under the signed head of size %" PRIu64
               " (%s)\n",
               recs[i].index, kind, h->size, when);
    }
    casenet_audit_head t;
    casenet_audit_verifier_trusted(a->v, &t);
    if (t.size)
        printf("that head is consistent with the remembered head of size %" PRIu64 "\n", t.size);
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "stdout");
}

int audit_prove(int argc, char **argv)
{
    static const struct option opts[] = {
        {"index", required_argument, NULL, 'i'},
        AUDIT_SHARED_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct audit_opts o = {.timeout_ms = AUDIT_DEFAULT_TIMEOUT_MS};
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
            int ex = audit_shared_opt(c, &o);
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
    casenet_audit_record *recs = NULL;
    size_t n = 0;
    casenet_audit_head h;
    int ex = audit_ctx_open(&o, true, &a);
    if (ex == CLI_OK && !by_index)
        ex = net_resolve_id(a.c, argv[optind], true, mid);
    if (ex == CLI_OK)
        ex = audit_load_state(&a);
    if (ex == CLI_OK)
        ex = prove_collect(&a, by_index ? NULL : mid, by_index, index, &recs, &n);
    if (ex == CLI_OK)
        ex = prove_head(&a, recs[n - 1].index + 1, &h);
    if (ex == CLI_OK)
        ex = prove_events(&a, by_index ? NULL : mid, recs, n, &h);
    casenet_audit_records_free(recs, n);
    audit_ctx_close(&a);
    return ex;
}
