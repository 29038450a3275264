/* store_handle.c - the store handle every caller holds: a backend opened by
 * the scheme of its spec, closed, and the transaction calls, which keep the
 * audit log's bookkeeping (store_audit.c) in step with the backend's
 * transaction (see store.h). */
#include "store.h"

#include "log.h"
#include "store_audit.h"
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int store_wait_active(struct store *s, uint32_t ttl_ms, uint32_t poll_ms)
{
    bool active = false, waited = false;
    for (;;) {
        int rc = store_lease(s, ttl_ms, &active);
        if (rc == CASENET_ECONFLICT)
            return rc;
        if (rc == CASENET_OK && active)
            break;
        if (!waited)
            log_event(LOG_INFO, "standby", "msg",
                      "another broker holds the store's lease: waiting to take over", NULL);
        waited = true;
        struct timespec ts = {.tv_sec = poll_ms / 1000u,
                              .tv_nsec = (long)(poll_ms % 1000u) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!s->ops->admin->lease)
        return CASENET_OK;
    /* The log may have grown under the broker that was active until the
     * lease was taken (even one that expired just now, after store_open
     * loaded the tree): load its tree again. */
    struct store_log *log = NULL;
    int rc = store_log_open(s, &log);
    if (rc != CASENET_OK)
        return rc;
    store_log_free(s->log);
    s->log = log;
    return CASENET_OK;
}
