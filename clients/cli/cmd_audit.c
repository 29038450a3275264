/* cmd_audit.c - `casenet audit ...`: the broker's verifiable audit log
 * (PROTOCOL.md §10), one file per subcommand (cmd_audit_log.c, _verify.c,
 * _export.c, _prove.c); here what they share (cmd_audit.h) and the dispatch.
 * The broker's signing key and the log's origin come from the home's
 * verified directory, never from the broker. */
#include "cmd_audit.h"

#include "casenet.pb-c.h"
#include "cli.h"
#include "commands.h"
#include "directory_impl.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND_PREFIX        "AUDIT_KIND_"
#define PROGRESS_BAR_CHARS 30

/* ------------------------------------------------------------ context */

static void on_note(void *ctx, bool warning, const char *message)
{
    (void)ctx;
    if (warning)
        cli_warn("%s", message);
    else
        fprintf(stderr, "%s\n", message);
}

static void progress_cb(void *ctx, uint64_t done, uint64_t total);

void audit_ctx_close(struct audit_ctx *a)
{
    casenet_client_free(a->c);
    casenet_audit_verifier_free(a->v);
    home_free(a->h);
    free(a->state_path);
    free(a->path);
    memset(a, 0, sizeof *a);
}

int audit_ctx_open(const struct audit_opts *o, bool connect, struct audit_ctx *a)
{
    memset(a, 0, sizeof *a);
    a->pg.last_pct = -1;
    a->path = home_path(o->home);
    if (!a->path)
        return CLI_EFAIL;
    int ex = home_open(a->path, &a->h);
    if (ex != CLI_OK)
        return ex;
    casenet_audit_callbacks cb = {.progress = progress_cb, .note = on_note, .ctx = &a->pg};
    int rc = casenet_audit_verifier_new(a->h->dir, &cb, &a->v);
    if (rc == CASENET_ENOTFOUND)
        return cli_fail(CLI_LOCAL, CASENET_ENOTFOUND, "update the home's directory",
                        "the directory lists no broker with a signing key");
    if (rc == CASENET_EBADREQ)
        return cli_fail(CLI_VERIFY, CASENET_EBADREQ, NULL,
                        "the directory's network name is not a valid log origin");
    if (rc != CASENET_OK)
        return cli_fail(CLI_LOCAL, rc, NULL, "out of memory");
    casenet_member broker; /* the verifier found both */
    if (casenet_directory_broker(a->h->dir, &broker) != CASENET_OK)
        return cli_fail(CLI_LOCAL, CASENET_ENOTFOUND, NULL, "no broker in the directory");
    snprintf(a->network, sizeof a->network, "%s", cn_directory_audit_network(a->h->dir));
    snprintf(a->broker_id, sizeof a->broker_id, "%s", broker.id);
    memcpy(a->broker_pk, broker.sign_pk, sizeof a->broker_pk);
    a->state_path = cli_path(a->path, AUDIT_STATE_FILE);
    if (!a->state_path)
        return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
    if (connect)
        return net_connect(a->h, o->broker, o->timeout_ms, &a->c);
    return CLI_OK;
}

int audit_load_state(struct audit_ctx *a)
{
    int rc = casenet_audit_verifier_load_state(a->v, a->state_path);
    if (rc == CASENET_OK || rc == CASENET_ENOTFOUND)
        return CLI_OK;
    return cli_fail(CLI_LOCAL, rc, "remove it to start trusting from scratch",
                    "cannot read the remembered head %s", a->state_path);
}

int audit_failed(struct audit_ctx *a, int rc)
{
    const casenet_audit_failure *f = casenet_audit_verifier_failure(a->v);
    switch (f->where) {
    case CASENET_AUDIT_OK:
        return cli_fail(CLI_LOCAL, rc, NULL, "verification stopped");
    case CASENET_AUDIT_LOCAL:
        return cli_fail(CLI_LOCAL, f->err, NULL, "%s", f->reason);
    case CASENET_AUDIT_BROKER:
        return net_fail(a->c, f->err, f->reason);
    case CASENET_AUDIT_FILE:
        cli_fail(CLI_VERIFY, f->err, NULL, "byte offset %" PRIu64 ": %s", f->offset, f->reason);
        return CLI_ESECURITY;
    default:
        cli_fail(CLI_VERIFY, f->err, NULL, "%s", f->reason);
        return CLI_ESECURITY;
    }
}

int audit_shared_opt(int c, struct audit_opts *o)
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

/* "submitted", "directory-published", ... for an AuditKind. */
const char *audit_kind_name(int kind, char out[AUDIT_KIND_NAME_MAX])
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

/* ------------------------------------------------------------ progress */

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    struct audit_progress *p = ctx;
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

void audit_progress_end(struct audit_progress *p)
{
    if (p->drawn)
        fprintf(stderr, "\n");
    p->drawn = false;
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
