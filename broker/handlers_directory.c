/* handlers_directory.c - Hello, GetDirectory, PublishDirectory (and a
 * directory from SIGHUP) and Subscribe (see handlers.h). */
#include "handlers.h"

#include "audit.h"
#include "directory_impl.h"
#include "inbox_row.h"
#include "log.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ Hello */

int handlers_hello(struct req *c, const Casenet__V1__Request *q)
{
    (void)q;
    Casenet__V1__HelloReply h = CASENET__V1__HELLO_REPLY__INIT;
    h.member_id = (char *)c->member;
    h.directory_version = casenet_directory_version(c->b->dir);
    h.server_time_ms = c->now_ms;
    h.max_envelope_bytes = c->b->cfg->limits.max_envelope_bytes;
    h.broker_id = (char *)c->b->broker_id;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_HELLO;
    c->resp.hello = &h;
    return req_reply(c);
}

/* ------------------------------------------------------------ directory */

int handlers_get_directory(struct req *c, const Casenet__V1__Request *q)
{
    (void)q;
    Casenet__V1__DirectoryReply d = CASENET__V1__DIRECTORY_REPLY__INIT;
    size_t len = 0;
    const uint8_t *bytes = casenet_directory_bytes(c->b->dir, &len);
    pb_set_bytes(&d.signed_directory, bytes, len);
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_DIRECTORY;
    c->resp.directory = &d;
    return req_reply(c);
}

int handlers_directory_accept(struct broker *b, struct batch *bt, const uint8_t *bytes, size_t len,
                              const char *actor, uint64_t *version, char *msg, size_t msglen)
{
    int64_t now = cn_now_ms();
    uint64_t current =
        bt->new_dir ? casenet_directory_version(bt->new_dir) : casenet_directory_version(b->dir);
    casenet_directory *d = NULL;
    char *path = NULL;
    int rc = casenet_directory_parse(bytes, len, b->authority_pk, now, current + 1, &d);
    switch (rc) {
    case CASENET_OK:
        break;
    case CASENET_EBADSIG:
        snprintf(msg, msglen,
                 "the directory's signature does not verify with the pinned authority key; "
                 "sign it with the network authority's key");
        return rc;
    case CASENET_EEXPIRED:
        snprintf(msg, msglen, "the directory has expired; re-issue it with a later expiry");
        return rc;
    case CASENET_EROLLBACK:
        snprintf(msg, msglen, "the broker serves directory version %llu; publish a higher version",
                 (unsigned long long)current);
        return rc;
    default:
        snprintf(msg, msglen, "the directory is malformed (%s)", casenet_strerror(rc));
        return rc == CASENET_ENOMEM ? rc : CASENET_EBADREQ;
    }
    /* Against the directory this one follows (revocation is final, the
     * audit network fixed). */
    if ((rc = cn_directory_check_successor(bt->new_dir ? bt->new_dir : b->dir, d, msg, msglen)) !=
        CASENET_OK)
        goto cleanup;
    casenet_member me;
    if (casenet_directory_broker(d, &me) != CASENET_OK || strcmp(me.id, b->broker_id) != 0 ||
        !me.curve_pk || me.status != CASENET_MEMBER_ACTIVE ||
        sodium_memcmp(me.curve_pk, casenet_keys_curve_pk(b->keys), CASENET_CURVE_KEY_BYTES) != 0) {
        snprintf(msg, msglen,
                 "the directory does not list this broker (%s), active, with its current CURVE "
                 "key; add the broker's public keys before publishing (its entry is never "
                 "suspended or revoked)",
                 b->broker_id);
        rc = CASENET_EBADREQ;
        goto cleanup;
    }
    uint64_t v = casenet_directory_version(d);
    if (asprintf(&path, "%s/%s", b->cfg->data_dir, BROKER_DIRECTORY_FILE) < 0) {
        path = NULL;
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    if ((rc = cn_write_file_atomic(path, bytes, len, 0644, false)) != CASENET_OK) {
        log_event(LOG_ERROR, "directory_write", "path", path, "error", casenet_errname(rc), NULL);
        snprintf(msg, msglen, "the broker could not save the directory; retry later");
        rc = CASENET_EUNAVAIL;
        goto cleanup;
    }
    rc = store_directory_save(b->store, v, bytes, len, now);
    if (rc == CASENET_OK)
        rc = audit_directory(b->store, now, actor, v, "", NULL);
    if (rc != CASENET_OK) {
        if (rc == CASENET_EUNAVAIL)
            bt->store_failed = true;
        snprintf(msg, msglen, "the broker could not record the directory; retry later");
        rc = rc == CASENET_ECONFLICT ? CASENET_ECONFLICT : CASENET_EUNAVAIL;
        goto cleanup;
    }
    casenet_directory_free(bt->new_dir);
    bt->new_dir = d;
    d = NULL;
    *version = v;
    log_event(LOG_INFO, "directory_accepted", "version", log_u64(v), "actor",
              actor && *actor ? actor : "operator", NULL);
    rc = CASENET_OK;
cleanup:
    casenet_directory_free(d);
    free(path);
    return rc;
}

int handlers_publish_directory(struct req *c, const Casenet__V1__Request *q)
{
    const Casenet__V1__PublishDirectory *req = q->publish_directory;
    uint64_t version = 0;
    int rc = handlers_directory_accept(c->b, c->bt, req->signed_directory.data,
                                       req->signed_directory.len, c->member, &version, c->msg,
                                       sizeof c->msg);
    if (rc != CASENET_OK)
        return rc;
    Casenet__V1__PublishReply p = CASENET__V1__PUBLISH_REPLY__INIT;
    p.version = version;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_PUBLISH;
    c->resp.publish = &p;
    return req_reply(c);
}

/* ------------------------------------------------------------ Subscribe */

int handlers_subscribe(struct req *c, const Casenet__V1__Request *q)
{
    (void)q;
    Casenet__V1__SubscribeReply sub = CASENET__V1__SUBSCRIBE_REPLY__INIT;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_SUBSCRIBE;
    c->resp.subscribe = &sub;
    c->subscribe = true;
    return req_reply(c);
}
