/* store.c - helpers shared by every store backend (see store.h). */
#include "store.h"

#include "log.h"
#include "store_audit.h"
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The backends of this build, by scheme. */
static const struct store_backend store_backends[] = {
    {"sqlite", false, &store_sqlite_ops},
    {"postgresql", true, &store_pg_ops},
    {"postgres", true, &store_pg_ops},
};
#define N_BACKENDS (sizeof store_backends / sizeof store_backends[0])

/* The backend spec names and what its open gets: "SCHEME:REST" for a
 * registered scheme; else a spec with "://" names a backend this build does
 * not have (NULL); anything else is a SQLite data directory. */
static const struct store_backend *backend_for(const char *spec, const char **arg)
{
    size_t scheme_len = strcspn(spec, ":/");
    for (size_t i = 0; spec[scheme_len] == ':' && i < N_BACKENDS; i++) {
        const struct store_backend *b = &store_backends[i];
        if (strlen(b->scheme) == scheme_len && strncmp(spec, b->scheme, scheme_len) == 0) {
            *arg = b->whole_spec ? spec : spec + scheme_len + 1;
            return b;
        }
    }
    if (strstr(spec, "://"))
        return NULL;
    *arg = spec;
    return &store_backends[0];
}

int store_open(const char *spec, struct store **out)
{
    const char *arg = NULL;
    const struct store_backend *b = backend_for(spec, &arg);
    if (!b) {
        char scheme[32];
        snprintf(scheme, sizeof scheme, "%.*s", (int)strcspn(spec, ":"), spec);
        log_event(LOG_ERROR, "store_unknown_backend", "scheme", scheme, "msg",
                  "this build serves \"sqlite:DIR\" (or a bare DIR) and \"postgresql://...\":"
                  " fix the store setting",
                  NULL);
        return CASENET_EINVAL;
    }
    struct store *s = NULL;
    int rc = b->ops->admin->open(arg, &s);
    if (rc != CASENET_OK)
        return rc;
    if ((rc = store_log_open(s, &s->log)) != CASENET_OK) {
        s->ops->admin->close(s);
        return rc;
    }
    *out = s;
    return CASENET_OK;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    store_log_free(s->log);
    s->log = NULL;
    s->ops->admin->close(s);
}

/* The transaction: the backend's operation, then the audit log's tree kept
 * in step with it (store_audit.c). */
int store_begin(struct store *s)
{
    int rc = s->ops->admin->begin(s);
    if (rc == CASENET_OK)
        store_log_begin(s->log);
    return rc;
}

int store_commit(struct store *s)
{
    if (store_log_torn(s->log)) {
        s->ops->admin->rollback(s);
        store_log_rolled_back(s->log);
        return CASENET_EUNAVAIL;
    }
    int rc = s->ops->admin->commit(s);
    if (rc != CASENET_OK) {
        store_log_rolled_back(s->log);
        return CASENET_EUNAVAIL;
    }
    return CASENET_OK;
}

void store_rollback(struct store *s)
{
    s->ops->admin->rollback(s);
    store_log_rolled_back(s->log);
}

int store_savepoint(struct store *s)
{
    if (!store_log_can_savepoint(s->log))
        return CASENET_EUNAVAIL;
    int rc = s->ops->admin->savepoint(s);
    if (rc == CASENET_OK)
        store_log_savepoint(s->log);
    return rc;
}

int store_release(struct store *s)
{
    store_log_release(s->log);
    return s->ops->admin->release(s);
}

void store_rollback_to(struct store *s)
{
    store_log_rolled_back_to(s->log, s->ops->admin->rollback_to(s) == CASENET_OK);
}

void store_message_clear(struct store_message *m)
{
    if (!m)
        return;
    casenet_buf_free(&m->envelope);
    casenet_buf_free(&m->receipt);
    memset(m, 0, sizeof *m);
}

void store_inbox_row_clear(struct store_inbox_row *r)
{
    if (!r)
        return;
    casenet_buf_free(&r->receipt);
    memset(r, 0, sizeof *r);
}

void store_inbox_rows_free(struct store_inbox_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        store_inbox_row_clear(&rows[i]);
    free(rows);
}

void store_messages_free(struct store_message *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        store_message_clear(&rows[i]);
    free(rows);
}

void store_receipt_recs_free(struct store_receipt_rec *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_buf_free(&rows[i].signed_receipt);
    free(rows);
}

void store_overdue_free(struct store_overdue *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        store_inbox_row_clear(&rows[i].row);
    free(rows);
}

void store_audit_rows_free(struct store_audit_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        casenet_buf_free(&rows[i].event);
    free(rows);
}

void store_head_clear(struct store_head *h)
{
    if (!h)
        return;
    casenet_buf_free(&h->checkpoint);
    memset(h, 0, sizeof *h);
}

void store_heads_free(struct store_head *heads, size_t n)
{
    if (!heads)
        return;
    for (size_t i = 0; i < n; i++)
        store_head_clear(&heads[i]);
    free(heads);
}
