/*
 * cmd_audit.h - what the `casenet audit` subcommands share (cmd_audit.c):
 * their common options, the context opened from the home (the broker's
 * identity from its verified directory, the audit log verifier of
 * libcasenet with the head remembered in the home, a connection), event kind
 * names, the progress bar and the report of a verifier failure. One file per
 * subcommand: cmd_audit_log.c, _verify.c, _export.c, _prove.c.
 */
#ifndef CASENET_CMD_AUDIT_H
#define CASENET_CMD_AUDIT_H

#include "auditlog.h"
#include "casenet.h"
#include "home.h"

#include <stdbool.h>
#include <stdint.h>

#define AUDIT_STATE_FILE         "audit.state" /* in the home: the last head verified */
#define AUDIT_LOG_PAGE           1000u
#define AUDIT_DEFAULT_TIMEOUT_MS 10000
#define AUDIT_KIND_NAME_MAX      64

/* Options every audit subcommand takes. */
struct audit_opts {
    const char *home;
    const char *broker;
    int timeout_ms;
};

/* The progress bar on stderr (drawn only when on). */
struct audit_progress {
    bool on;
    bool drawn;
    int last_pct;
};

/* What the subcommands need, from the home and its directory. */
struct audit_ctx {
    char *path; /* the home */
    struct home *h;
    char *state_path;
    char network[AUDITV_NETWORK_MAX + 1];
    char broker_id[CASENET_MEMBER_ID_MAX + 1];
    uint8_t broker_pk[CASENET_SIGN_PK_BYTES];
    casenet_audit_verifier *v; /* its progress and notes go to pg and stderr */
    struct audit_progress pg;
    casenet_client *c;
};

/* Opens the home, takes the broker's id, key and the log's network from its
 * directory, starts the verifier and connects unless offline. Returns an
 * exit code; audit_ctx_close releases a in every case. */
int audit_ctx_open(const struct audit_opts *o, bool connect, struct audit_ctx *a);
void audit_ctx_close(struct audit_ctx *a);
/* Loads the remembered head into the verifier (none: nothing trusted yet).
 * Returns an exit code. */
int audit_load_state(struct audit_ctx *a);
/* Reports the verifier's last failure (rc: what the run returned) and
 * returns the exit code: 3 for a verdict on the log, the broker's or a local
 * error's otherwise. */
int audit_failed(struct audit_ctx *a, int rc);
/* Ends the progress bar's line when one was drawn. */
void audit_progress_end(struct audit_progress *p);

/* Handles the options shared by every subcommand; -1 when c was one. */
int audit_shared_opt(int c, struct audit_opts *o);
#define AUDIT_SHARED_LONGOPTS                                                                      \
    {"home", required_argument, NULL, 'H'}, {"broker", required_argument, NULL, 'b'},              \
        {"timeout", required_argument, NULL, 't'},                                                 \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* "submitted", "directory-published", ... for an AuditKind. */
const char *audit_kind_name(int kind, char out[AUDIT_KIND_NAME_MAX]);

/* The subcommands. */
int audit_log(int argc, char **argv);
int audit_verify(int argc, char **argv);
int audit_export(int argc, char **argv);
int audit_prove(int argc, char **argv);

#endif
