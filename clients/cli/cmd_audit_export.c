/* cmd_audit_export.c - `casenet audit export`: the broker's log as an export
 * file (PROTOCOL.md §10.4) on stdout, nothing verified on the way. */
#include "cmd_audit.h"

#include "checkpoint.h"
#include "cli.h"
#include "commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT_PAGE 10000u

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
    struct auditv_page_head *hs = NULL;
    int rc = auditv_page_heads(p, &hs);
    if (rc != CASENET_OK)
        return rc;
    size_t n = p->n_checkpoints, k = 0;
    auditv_page_heads_sort(hs, n);
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

int audit_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},
        AUDIT_SHARED_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct audit_opts o = {.timeout_ms = AUDIT_DEFAULT_TIMEOUT_MS};
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
            int ex = audit_shared_opt(c, &o);
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
    int ex = audit_ctx_open(&o, true, &a);
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
    audit_ctx_close(&a);
    return ex;
}
