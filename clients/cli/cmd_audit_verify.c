/* cmd_audit_verify.c - `casenet audit verify`: the broker's audit log, live or
 * an export file, from the head remembered in the home, through libcasenet's
 * verifier (casenet_audit_verify_live / _file). */
#include "cmd_audit.h"

#include "cli.h"
#include "commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* Saves the new trusted state when it moved; prints an accepted epoch
 * change (PROTOCOL.md §10.1, LOG_RESTORED) and the trusted head. */
static int verify_done(struct audit_ctx *a, uint64_t tail)
{
    casenet_audit_epoch e;
    casenet_audit_verifier_epoch(a->v, &e);
    if (e.changed) {
        uint64_t n = e.restored_size,
                 end = e.previous_size > e.remembered_size ? e.previous_size : e.remembered_size;
        printf("epoch change: the broker's log was restored from a backup at size %" PRIu64
               "; %" PRIu64 " events lost (%" PRIu64 "..%" PRIu64 ")%s\n",
               n, end - n, n, end - 1,
               e.previous_size ? "" : ", or more: the broker's operator named no previous head");
    }
    int rc = casenet_audit_verifier_save_state(a->v, a->state_path);
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot remember the head in %s", a->state_path);
    casenet_audit_head t;
    casenet_audit_verifier_trusted(a->v, &t);
    char when[64];
    cli_format_time(t.time_ms, false, when, sizeof when);
    if (t.size)
        printf("trusted head: size %" PRIu64 ", signed %s by %s\n", t.size, when, a->broker_id);
    else
        printf("no signed head yet: nothing is trusted\n");
    if (tail)
        printf("%" PRIu64 " later events are not yet under a signed head\n", tail);
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "stdout");
}

static int verify_file(struct audit_ctx *a, const char *file)
{
    FILE *fp = fopen(file, "rb");
    if (!fp)
        return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot open %s: %s", file, strerror(errno));
    int rc = casenet_audit_verify_file(a->v, fileno(fp));
    fclose(fp);
    audit_progress_end(&a->pg);
    if (rc != CASENET_OK) {
        const casenet_audit_failure *f = casenet_audit_verifier_failure(a->v);
        if (f->where == CASENET_AUDIT_LOCAL && rc == CASENET_EIO)
            return cli_file_fail(rc, file, "the audit export");
        return audit_failed(a, rc);
    }
    printf("export file %s verified\n", file);
    return verify_done(a, 0);
}

static int verify_live(struct audit_ctx *a, bool full)
{
    casenet_audit_head old;
    casenet_audit_verifier_trusted(a->v, &old);
    int rc = casenet_audit_verify_live(a->v, a->c, full);
    audit_progress_end(&a->pg);
    if (rc != CASENET_OK) {
        int ex = audit_failed(a, rc);
        if (!full && old.size > 0)
            cli_warn("if the broker was restored from a backup, 'casenet audit verify --full' "
                     "reports the epoch change");
        return ex;
    }
    uint64_t from = full ? 0 : old.size, events = 0, heads = 0, tail = 0;
    casenet_audit_verifier_counts(a->v, &events, &heads, &tail);
    printf("audit log verified: %" PRIu64 " events checked (index %" PRIu64 " to %" PRIu64
           "), %" PRIu64 " signed heads\n",
           events - from, from, events ? events - 1 : 0, heads);
    return verify_done(a, tail);
}

int audit_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"full", no_argument, NULL, 'F'},
        AUDIT_SHARED_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct audit_opts o = {.timeout_ms = AUDIT_DEFAULT_TIMEOUT_MS};
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
            int ex = audit_shared_opt(c, &o);
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
    int ex = audit_ctx_open(&o, file == NULL, &a);
    a.pg.on = isatty(STDERR_FILENO) == 1;
    if (ex == CLI_OK)
        ex = audit_load_state(&a);
    if (ex == CLI_OK)
        ex = file ? verify_file(&a, file) : verify_live(&a, full);
    audit_ctx_close(&a);
    return ex;
}
