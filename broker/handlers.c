/* handlers.c - one handler per request kind and their dispatcher (see handlers.h). */
#include "handlers.h"

#include "audit.h"
#include "audit_tree.h"
#include "casenet.pb-c.h"
#include "deadlines.h"
#include "directory_impl.h"
#include "lifecycle.h"
#include "log.h"
#include "receipt_impl.h"
#include "text.h"
#include "util.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT_LIMIT 100u
#define LIST_MAX_LIMIT     1000u

/* One request being handled. */
struct hctx {
    struct broker *b;
    struct batch *bt;
    const char *member;
    uint64_t request_id;
    int64_t now_ms;
    char msg[320]; /* the error message for the client */
    /* Submit only: what is known of the envelope, for a REJECTED event. */
    bool have_info;
    casenet_message_info info;
    bool have_hash;
    uint8_t hash[CASENET_HASH_BYTES];
    uint32_t size;
    uint32_t retry_after_ms; /* for a RATE_LIMITED or UNAVAILABLE answer; 0 = default */
    uint64_t stale_version;  /* for a STALE_DIRECTORY answer: the directory served */
    bool no_audit;           /* a rejection not to audit (a rate-limited flood) */
};

__attribute__((format(printf, 3, 4))) static int fail(struct hctx *c, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    return err;
}

/* A store error: UNAVAILABLE for the client, batch rollback for the loop. */
static int store_fail(struct hctx *c, int err, const char *what)
{
    if (err == CASENET_EUNAVAIL)
        c->bt->store_failed = true;
    return fail(c, err == CASENET_ENOMEM ? CASENET_ENOMEM : CASENET_EUNAVAIL,
                "the broker could not %s; retry later", what);
}

int handlers_wire_code(int err)
{
    if ((err >= CASENET_EBADREQ && err <= CASENET_EVERSION) || err == CASENET_EDIREXPIRED ||
        err == CASENET_EQUOTA)
        return err;
    switch (err) {
    case CASENET_ESTALEDIR:
        return err;
    case CASENET_EEXPIRED:
    case CASENET_EINVAL:
    case CASENET_ENOTRECIPIENT:
    case CASENET_ECOMMIT:
    case CASENET_ECRYPTO:
    case CASENET_EPERM:
        return CASENET__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST;
    case CASENET_EROLLBACK:
        return CASENET__V1__ERROR_CODE__ERROR_CODE_CONFLICT;
    default:
        return CASENET__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
    }
}

static int pack_response(Casenet__V1__Response *r, casenet_buf *out)
{
    size_t len = casenet__v1__response__get_packed_size(r);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return CASENET_ENOMEM;
    casenet__v1__response__pack(r, buf);
    out->data = buf;
    out->len = len;
    return CASENET_OK;
}

int handlers_pack(Casenet__V1__Response *r, casenet_buf *out)
{
    return pack_response(r, out);
}

int handlers_error_reply(uint64_t request_id, int err, const char *message, casenet_buf *out)
{
    return handlers_error_reply_retry(request_id, err, message, 0, out);
}

/* An Error reply; stale_version is the directory version a STALE_DIRECTORY
 * answer names (Error.directory_version). */
static int error_reply(uint64_t request_id, int err, const char *message, uint32_t retry_after_ms,
                       uint64_t stale_version, casenet_buf *out)
{
    Casenet__V1__Response r = CASENET__V1__RESPONSE__INIT;
    Casenet__V1__Error e = CASENET__V1__ERROR__INIT;
    r.protocol_version = BROKER_PROTOCOL_VERSION;
    r.request_id = request_id;
    e.code = (Casenet__V1__ErrorCode)handlers_wire_code(err);
    e.message = (char *)(message && *message ? message : casenet_strerror(err));
    if (e.code == CASENET__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE ||
        e.code == CASENET__V1__ERROR_CODE__ERROR_CODE_RATE_LIMITED)
        e.retry_after_ms = retry_after_ms ? retry_after_ms : 1000;
    if (e.code == CASENET__V1__ERROR_CODE__ERROR_CODE_STALE_DIRECTORY)
        e.directory_version = stale_version;
    r.error = &e;
    return pack_response(&r, out);
}

int handlers_error_reply_retry(uint64_t request_id, int err, const char *message,
                               uint32_t retry_after_ms, casenet_buf *out)
{
    return error_reply(request_id, err, message, retry_after_ms, 0, out);
}

static void set_bytes(ProtobufCBinaryData *f, const uint8_t *p, size_t n)
{
    f->data = (uint8_t *)p;
    f->len = p ? n : 0;
}

/* Fills e from row; e borrows row's fields. */
static void entry_from_row(Casenet__V1__InboxEntry *e, const struct store_inbox_row *row)
{
    casenet__v1__inbox_entry__init(e);
    e->seq = row->seq;
    set_bytes(&e->message_id, row->message_id, sizeof row->message_id);
    e->sender = (char *)row->sender;
    e->kind = (Casenet__V1__Kind)row->kind;
    e->urgency = (Casenet__V1__Urgency)row->urgency;
    e->message_status = (Casenet__V1__MessageStatus)row->msg_status;
    e->state = (Casenet__V1__InboxState)row->state;
    e->received_at_ms = row->received_at_ms;
    e->created_at_ms = row->created_at_ms;
    e->size = row->size;
    if (row->has_in_reply_to)
        set_bytes(&e->in_reply_to, row->in_reply_to, sizeof row->in_reply_to);
    if (row->has_case_ref)
        set_bytes(&e->case_ref, row->case_ref, sizeof row->case_ref);
    e->receipt_status = (Casenet__V1__ReceiptStatus)row->receipt_status;
    set_bytes(&e->receipt, row->receipt.data, row->receipt.len);
}

/* Inserts an inbox row and queues its notice for after the commit. */
static int inbox_add(struct hctx *c, struct store_inbox_row *row)
{
    struct store *s = c->b->store;
    int rc = store_inbox_insert(s, row);
    if (rc == CASENET_ECONFLICT)
        return fail(c, CASENET_ECONFLICT, "%s already holds this entry", row->recipient);
    if (rc != CASENET_OK)
        return store_fail(c, rc, "store the inbox entry");
    if (handlers_queue_notice(c->bt, row) != CASENET_OK)
        return fail(c, CASENET_ENOMEM, "out of memory; retry later");
    return CASENET_OK;
}

int handlers_queue_notice(struct batch *bt, const struct store_inbox_row *row)
{
    Casenet__V1__Response r = CASENET__V1__RESPONSE__INIT;
    Casenet__V1__Notice n = CASENET__V1__NOTICE__INIT;
    Casenet__V1__InboxEntry e;
    entry_from_row(&e, row);
    n.entry = &e;
    r.protocol_version = BROKER_PROTOCOL_VERSION;
    r.request_id = 0;
    r.body_case = CASENET__V1__RESPONSE__BODY_NOTICE;
    r.notice = &n;
    casenet_buf packed = {0};
    int rc = pack_response(&r, &packed);
    if (rc == CASENET_OK)
        rc = batch_add_notice(bt, row->recipient, packed.data, packed.len);
    casenet_buf_free(&packed);
    return rc;
}

/* ------------------------------------------------------------ Hello */

static int h_hello(struct hctx *c, Casenet__V1__Response *resp, casenet_buf *out)
{
    Casenet__V1__HelloReply h = CASENET__V1__HELLO_REPLY__INIT;
    h.member_id = (char *)c->member;
    h.directory_version = casenet_directory_version(c->b->dir);
    h.server_time_ms = c->now_ms;
    h.max_envelope_bytes = c->b->cfg->limits.max_envelope_bytes;
    h.broker_id = (char *)c->b->broker_id;
    resp->body_case = CASENET__V1__RESPONSE__BODY_HELLO;
    resp->hello = &h;
    return pack_response(resp, out);
}

/* ------------------------------------------------------------ directory */

static int h_get_directory(struct hctx *c, Casenet__V1__Response *resp, casenet_buf *out)
{
    Casenet__V1__DirectoryReply d = CASENET__V1__DIRECTORY_REPLY__INIT;
    size_t len = 0;
    const uint8_t *bytes = casenet_directory_bytes(c->b->dir, &len);
    set_bytes(&d.signed_directory, bytes, len);
    resp->body_case = CASENET__V1__RESPONSE__BODY_DIRECTORY;
    resp->directory = &d;
    return pack_response(resp, out);
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

static int h_publish_directory(struct hctx *c, const Casenet__V1__PublishDirectory *req,
                               Casenet__V1__Response *resp, casenet_buf *out)
{
    uint64_t version = 0;
    int rc = handlers_directory_accept(c->b, c->bt, req->signed_directory.data,
                                       req->signed_directory.len, c->member, &version, c->msg,
                                       sizeof c->msg);
    if (rc != CASENET_OK)
        return rc;
    Casenet__V1__PublishReply p = CASENET__V1__PUBLISH_REPLY__INIT;
    p.version = version;
    resp->body_case = CASENET__V1__RESPONSE__BODY_PUBLISH;
    resp->publish = &p;
    return pack_response(resp, out);
}

/* ------------------------------------------------------------ Submit */

/* Registers the deferred signature of receipt, packed with a zero signature
 * into the reply out: the receipt is the last bytes of its field, found once
 * in the packed reply (it holds the random message id and the envelope hash,
 * so nothing else there matches it). Takes *pae on success. CASENET_ENOMEM
 * when the batch has no room left, CASENET_EUNAVAIL when the receipt is not
 * in the reply (a bug). */
static int defer_sig(struct batch *bt, const uint8_t id[CASENET_MESSAGE_ID_BYTES], int64_t rowid,
                     casenet_buf *pae, const casenet_buf *out, const casenet_buf *receipt)
{
    if (bt->n_sigs >= bt->cap_sigs)
        return CASENET_ENOMEM;
    uint8_t *at = receipt->len < CASENET_SIGNATURE_BYTES
                      ? NULL
                      : memmem(out->data, out->len, receipt->data, receipt->len);
    if (!at)
        return CASENET_EUNAVAIL;
    struct batch_sig *g = &bt->sigs[bt->n_sigs++];
    memcpy(g->message_id, id, sizeof g->message_id);
    g->rowid = rowid;
    g->pae = *pae;
    *pae = (casenet_buf){0};
    g->reply_sig = at + receipt->len - CASENET_SIGNATURE_BYTES;
    memset(g->sig, 0, sizeof g->sig);
    return CASENET_OK;
}

static int submit_reply(Casenet__V1__Response *resp, const casenet_buf *receipt, bool duplicate,
                        casenet_buf *out)
{
    Casenet__V1__SubmitReply s = CASENET__V1__SUBMIT_REPLY__INIT;
    set_bytes(&s.receipt, receipt->data, receipt->len);
    s.duplicate = duplicate;
    resp->body_case = CASENET__V1__RESPONSE__BODY_SUBMIT;
    resp->submit = &s;
    return pack_response(resp, out);
}

static int verify_error(struct hctx *c, int rc)
{
    switch (rc) {
    case CASENET_EBADSIG:
        return fail(c, rc,
                    "the envelope's signature does not verify with the sender's directory key");
    case CASENET_EVERSION:
        return fail(c, rc, "unsupported envelope version; upgrade the client");
    case CASENET_EUNKNOWNRCPT:
        return fail(c, rc,
                    "a recipient is not an active member of directory version %llu; check the "
                    "recipients against the current directory",
                    (unsigned long long)casenet_directory_version(c->b->dir));
    case CASENET_EUNAUTH:
        return fail(c, rc, "the envelope's sender is not an active member of the directory");
    case CASENET_ESTALEDIR:
        c->stale_version = casenet_directory_version(c->b->dir);
        return fail(c, rc,
                    "the envelope is wrapped to a recipient box key that was replaced before "
                    "it was sealed: the sender's directory is older than version %llu, the "
                    "broker's; pull the directory and seal the message again",
                    (unsigned long long)c->stale_version);
    case CASENET_EFORBIDDEN:
        return fail(c, rc,
                    "kinds escalation and dead-letter are the broker's own notices; members "
                    "cannot send them");
    case CASENET_ENOMEM:
        return fail(c, rc, "out of memory; retry later");
    case CASENET_ETOOLARGE:
        return fail(c, rc,
                    "the envelope has more than %u recipients or a payload over the limit; "
                    "split the message",
                    (unsigned)CASENET_MAX_RECIPIENTS);
    default:
        return fail(c, CASENET_EBADREQ,
                    "the envelope is malformed or breaks a structural rule (%s); seal it with a "
                    "conforming client",
                    casenet_strerror(rc));
    }
}

/* casenet_envelope_verify, or its result for these exact bytes when the
 * loop had them checked before the batch (verify.h); takes that info. */
static int verify_envelope(struct hctx *c, const uint8_t *env, size_t len)
{
    struct preverified *p = c->bt->pre;
    if (p && p->envelope && env && p->len == len && memcmp(p->envelope, env, len) == 0) {
        int rc = p->rc;
        if (rc == CASENET_OK) {
            c->info = p->info;
            memset(&p->info, 0, sizeof p->info);
        }
        p->envelope = NULL;
        return rc;
    }
    return casenet_envelope_verify(c->b->dir, env, len, &c->info);
}

/* A new message needs a directory in force (checked at every Submit, not
 * when the directory was loaded): under an expired one the broker still
 * serves reads, receipts and resends of stored messages, but accepts
 * nothing new until a newer directory arrives (publish or SIGHUP). */
static int directory_unexpired(struct hctx *c)
{
    int64_t exp = casenet_directory_expires_at(c->b->dir);
    if (exp > c->now_ms)
        return CASENET_OK;
    return fail(c, CASENET_EDIREXPIRED,
                "the broker's directory version %llu expired at %s; no new messages until the "
                "network authority renews it ('casenet admin renew', then 'casenet directory "
                "publish'); reading and acknowledging still work",
                (unsigned long long)casenet_directory_version(c->b->dir), log_utc(exp));
}

/* The member's bucket of class cls (member_limits.h): RATE_LIMITED with a
 * retry-after. Only the first refusal of a run is audited (a Submit's
 * REJECTED event) or logged at info level. */
static int limits_request(struct hctx *c, enum limits_class cls)
{
    uint32_t retry = 0;
    bool first = false;
    int rc = limits_take(c->b->limits, cls, c->member, cn_mono_ms(), &retry, &first);
    if (rc == CASENET_OK)
        return rc;
    if (rc == CASENET_ENOMEM)
        return fail(c, rc, "out of memory; retry later");
    const struct limits_rate *r = &c->b->cfg->limits.rate[cls];
    c->retry_after_ms = retry;
    c->no_audit = !first;
    return fail(c, CASENET_ERATELIMIT,
                "more than %u %s requests per minute (burst %u) from %s; retry after %u ms",
                r->per_min, limits_class_name(cls), r->burst, c->member, retry);
}

/* Logs a low disk at most every 10 s. */
static void log_disk_low(uint64_t avail_kb, uint64_t floor_kb, enum limits_class cls)
{
    static int64_t last;
    int64_t now = cn_mono_ms();
    if (last && now - last < 10000)
        return;
    last = now;
    log_event(LOG_ERROR, "disk_low", "available_kb", log_u64(avail_kb), "floor_kb",
              log_u64(floor_kb), "class", limits_class_name(cls), "msg",
              "members' requests of this class refused until space is freed", NULL);
}

/* The disk reserve's share of class cls (limits_disk_floor_kb), free space
 * measured once per batch: UNAVAILABLE, not audited (the reserve is for the
 * writes that must go on). */
static int disk_check(struct hctx *c, enum limits_class cls)
{
    struct batch *bt = c->bt;
    const struct broker_limits *lim = &c->b->cfg->limits;
    if (lim->min_free_mb == 0)
        return CASENET_OK;
    if (!bt->disk_checked) {
        bt->disk_avail_kb = limits_disk_avail_kb(c->b->cfg->data_dir);
        bt->disk_checked = true;
    }
    uint64_t floor = limits_disk_floor_kb(lim->min_free_mb, cls);
    if (bt->disk_avail_kb >= floor)
        return CASENET_OK;
    c->retry_after_ms = LIMITS_DISK_RETRY_MS;
    c->no_audit = true;
    log_disk_low(bt->disk_avail_kb, floor, cls);
    return fail(c, CASENET_EUNAVAIL,
                "the broker's disk is nearly full; nothing was stored; retry later");
}

/* A cap less the share reserved for EMERGENCY messages (0 = no cap). */
static uint64_t cap_for(uint32_t cap, uint32_t emergency_pct, bool emergency)
{
    if (emergency || cap == 0)
        return cap;
    return (uint64_t)cap - (uint64_t)cap * emergency_pct / 100;
}

/* The backlog limits, per recipient: its inbox holds fewer than
 * max_inbox_backlog queued message rows, and fewer than max_pair_backlog of
 * them from this sender, so that one sender's flood leaves room for the
 * others; the last emergency_pct of each cap takes only EMERGENCY messages.
 * A full inbox is UNAVAILABLE (the sender can do nothing but wait for the
 * recipient to fetch), with a long retry-after. A resubmission of a stored
 * message never reaches here (it is answered with its receipt). */
static int limits_backlog(struct hctx *c, const casenet_message_info *info)
{
    struct store *s = c->b->store;
    const struct broker_limits *lim = &c->b->cfg->limits;
    bool emergency = info->urgency == CASENET_URGENCY_EMERGENCY;
    uint64_t max = cap_for(lim->max_inbox_backlog, lim->emergency_pct, emergency);
    uint64_t pair_max = cap_for(lim->max_pair_backlog, lim->emergency_pct, emergency);
    if (!max && !pair_max)
        return CASENET_OK;
    for (size_t i = 0; i < info->n_recipients; i++) {
        uint64_t queued = 0, mine = 0;
        int rc = store_inbox_backlog(s, info->recipients[i], c->member, &queued, &mine);
        if (rc != CASENET_OK)
            return store_fail(c, rc, "read the inbox backlog");
        if (pair_max && mine >= pair_max) {
            c->retry_after_ms = LIMITS_BACKLOG_RETRY_MS;
            return fail(c, CASENET_EUNAVAIL,
                        "%s has %llu unfetched messages from %s (the limit per sender is %llu%s); "
                        "retry later or reach the recipient another way",
                        info->recipients[i], (unsigned long long)mine, c->member,
                        (unsigned long long)pair_max,
                        emergency ? "" : ", the rest kept for EMERGENCY messages");
        }
        if (max && queued >= max) {
            c->retry_after_ms = LIMITS_BACKLOG_RETRY_MS;
            return fail(c, CASENET_EUNAVAIL,
                        "%s has %llu unfetched messages (the limit is %llu%s); retry later or "
                        "reach the recipient another way",
                        info->recipients[i], (unsigned long long)queued, (unsigned long long)max,
                        emergency ? "" : ", the rest kept for EMERGENCY messages");
        }
    }
    return CASENET_OK;
}

/* The role matrix (PROTOCOL.md §6.1, clients/rules.c) against the broker's
 * current directory: FORBIDDEN naming the roles, audited like every refused
 * Submit. */
static int submit_roles(struct hctx *c, const casenet_message_info *info)
{
    char why[256];
    int rc = casenet_role_check(c->b->dir, info->sender, (int)info->kind,
                                (const char *const *)info->recipients, info->n_recipients, why,
                                sizeof why);
    if (rc != CASENET_OK)
        return fail(c, rc, "%s; what each role may send to whom: PROTOCOL.md section 6.1", why);
    return CASENET_OK;
}

/* The answer to a resubmission: the stored message `old` has id; when its
 * envelope hash is hash (the same bytes), its receipt again with duplicate
 * set (signed with the first one's signature when that was accepted earlier
 * in this batch); else CONFLICT. */
static int submit_again(struct hctx *c, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                        const struct store_message *old, const uint8_t hash[CASENET_HASH_BYTES],
                        Casenet__V1__Response *resp, casenet_buf *out)
{
    if (sodium_memcmp(old->envelope_hash, hash, CASENET_HASH_BYTES) != 0)
        return fail(c, CASENET_ECONFLICT,
                    "message id %s was already accepted with other bytes; seal a new message "
                    "(fresh id) instead of reusing one",
                    log_hex(id, CASENET_MESSAGE_ID_BYTES));
    int rc = submit_reply(resp, &old->receipt, true, out);
    /* Accepted earlier in this batch: its stored receipt is not signed yet,
     * and this reply is signed with it. */
    const struct batch_sig *first = batch_find_sig(c->bt, id);
    if (rc == CASENET_OK && first) {
        casenet_buf copy = {.data = malloc(first->pae.len), .len = first->pae.len};
        rc = copy.data ? CASENET_OK : CASENET_ENOMEM;
        if (rc == CASENET_OK) {
            memcpy(copy.data, first->pae.data, copy.len);
            rc = defer_sig(c->bt, id, 0, &copy, out, &old->receipt);
        }
        if (rc != CASENET_OK) { /* nothing written: this request only */
            casenet_buf_free(&copy);
            casenet_buf_free(out);
            rc = store_fail(c, CASENET_ENOMEM, "queue the receipt's signature");
        }
    }
    return rc;
}

/* When the rate limit or the disk reserve refuses a Submit: if its bytes
 * are exactly those of a message this member already stored (a resend after
 * a lost answer), its receipt, so that a resend is never told that nothing
 * was stored. Only the header's message id is parsed (no signature check:
 * the bytes are compared by hash with what was verified when stored).
 * CASENET_ENOTFOUND when it is not such a resend. */
static int submit_resend(struct hctx *c, const uint8_t *env, size_t len,
                         Casenet__V1__Response *resp, casenet_buf *out)
{
    if (len > c->b->cfg->limits.max_envelope_bytes)
        return CASENET_ENOTFOUND;
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, len, env);
    Casenet__V1__Header *h =
        e ? casenet__v1__header__unpack(NULL, e->header.len, e->header.data) : NULL;
    bool have = h && h->message_id.len == sizeof id;
    if (have)
        memcpy(id, h->message_id.data, sizeof id);
    casenet__v1__header__free_unpacked(h, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    struct store_message old = {0};
    if (!have || store_message_get(c->b->store, id, false, &old) != CASENET_OK)
        return CASENET_ENOTFOUND;
    uint8_t hash[CASENET_HASH_BYTES];
    cn_sha256(env, len, hash);
    int rc = CASENET_ENOTFOUND;
    if (strcmp(old.sender, c->member) == 0 &&
        sodium_memcmp(old.envelope_hash, hash, CASENET_HASH_BYTES) == 0)
        rc = submit_again(c, id, &old, hash, resp, out);
    store_message_clear(&old);
    return rc;
}

/* The sender's byte quota: the envelopes it has stored (not purged) and
 * this one fit in quota_mb MiB. QUOTA_EXCEEDED otherwise. */
static int limits_quota(struct hctx *c)
{
    struct store *s = c->b->store;
    uint32_t quota_mb = c->b->cfg->limits.quota_mb;
    if (!quota_mb)
        return CASENET_OK;
    uint64_t stored = 0, quota = (uint64_t)quota_mb * 1024u * 1024u;
    int rc = store_member_bytes(s, c->member, &stored);
    if (rc != CASENET_OK)
        return store_fail(c, rc, "read the member's stored bytes");
    stored += batch_bytes_of(c->bt, c->member);
    if (stored + c->size > quota)
        return fail(c, CASENET_EQUOTA,
                    "%s already stores %llu bytes of messages at this broker; with this one "
                    "(%u bytes) it would exceed its quota of %u MiB; ask the broker's operator "
                    "to raise member_quota_mb",
                    c->member, (unsigned long long)stored, c->size, quota_mb);
    return CASENET_OK;
}

static int h_submit(struct hctx *c, const Casenet__V1__Submit *req, Casenet__V1__Response *resp,
                    casenet_buf *out)
{
    struct broker *b = c->b;
    struct store *s = b->store;
    const struct broker_limits *lim = &b->cfg->limits;
    const uint8_t *env = req->envelope.data;
    size_t len = req->envelope.len;
    struct store_message m = {0};
    struct store_message old = {0};
    casenet_buf receipt = {0}, pae = {0};
    int rc;

    c->size = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    /* The bucket first: a flood is refused before any costly work. */
    if ((rc = limits_request(c, LIMITS_SUBMIT)) != CASENET_OK ||
        (rc = disk_check(c, LIMITS_SUBMIT)) != CASENET_OK) {
        /* ... except a resend of what this member already stored. */
        int again = submit_resend(c, env, len, resp, out);
        return again == CASENET_ENOTFOUND ? rc : again;
    }
    struct batch *bt = c->bt;
    if (len > lim->max_envelope_bytes)
        return fail(c, CASENET_ETOOLARGE,
                    "the envelope is %zu bytes; this broker accepts at most %u; send large "
                    "content in smaller messages",
                    len, lim->max_envelope_bytes);
    if ((rc = verify_envelope(c, env, len)) != CASENET_OK)
        return verify_error(c, rc);
    c->have_info = true;
    casenet_message_info *info = &c->info;
    if (strcmp(info->sender, c->member) != 0)
        return fail(c, CASENET_EFORBIDDEN,
                    "the envelope's sender is %s but this connection is authenticated as %s; "
                    "sign with your own keys",
                    info->sender, c->member);
    /* A message to oneself would arm deadlines and escalate to every
     * coordinator for nothing (PROTOCOL.md §8, Submit). */
    for (size_t i = 0; i < info->n_recipients; i++)
        if (strcmp(info->recipients[i], c->member) == 0)
            return fail(c, CASENET_EFORBIDDEN,
                        "%s is among the recipients: a member cannot address a message to "
                        "itself; remove it and seal again",
                        c->member);
    if ((rc = submit_roles(c, info)) != CASENET_OK)
        return rc;
    if (info->n_recipients > lim->max_recipients)
        return fail(c, CASENET_ETOOLARGE,
                    "%zu recipients; this broker accepts at most %u per message; split the "
                    "message",
                    info->n_recipients, lim->max_recipients);
    int64_t skew = info->created_at_ms - c->now_ms;
    if (skew < 0)
        skew = -skew;
    if (skew > (int64_t)lim->clock_skew_s * 1000)
        return fail(c, CASENET_ECLOCKSKEW,
                    "created_at is %lld s away from the broker's clock (limit %u s); set the "
                    "sender's clock (NTP) and seal again",
                    (long long)(skew / 1000), lim->clock_skew_s);
    if (info->expires_at_ms != 0 && info->expires_at_ms <= c->now_ms)
        return fail(c, CASENET_EBADREQ, "the message expired before it reached the broker");

    rc = store_message_get(s, info->message_id, false, &old);
    if (rc == CASENET_OK) {
        rc = submit_again(c, info->message_id, &old, info->envelope_hash, resp, out);
        store_message_clear(&old);
        return rc;
    }
    if (rc != CASENET_ENOTFOUND)
        return store_fail(c, rc, "look the message up");
    if ((rc = directory_unexpired(c)) != CASENET_OK)
        return rc;
    if ((rc = limits_backlog(c, info)) != CASENET_OK || (rc = limits_quota(c)) != CASENET_OK)
        return rc;
    /* Every refusal before the first write (a Submit has no savepoint,
     * handlers_dispatch): the id may already name a receipt row in a
     * recipient's inbox, and whoever signed that receipt knows it. No
     * message has the id (message_get), so only receipt rows can. */
    for (size_t i = 0; i < info->n_recipients; i++) {
        bool taken = true;
        rc = store_inbox_receipt_row(s, info->recipients[i], info->message_id, &taken);
        if (rc != CASENET_OK)
            return store_fail(c, rc, "look the inbox up");
        if (taken)
            return fail(c, CASENET_ECONFLICT,
                        "message id %s already names an entry in %s's inbox; seal a new message",
                        log_hex(info->message_id, CASENET_MESSAGE_ID_BYTES), info->recipients[i]);
    }

    /* The message row first, then its SUBMITTED event at the index the
     * receipt names: the store keys the event by the stored message (an
     * index that grows with the log, not the client's random id). */
    uint64_t index = 0;
    uint64_t dir_version = casenet_directory_version(b->dir);
    if ((rc = store_audit_next_index(s, &index)) != CASENET_OK)
        return store_fail(c, rc, "read the audit log");
    casenet_submit_receipt sr = {0};
    memcpy(sr.message_id, info->message_id, sizeof sr.message_id);
    memcpy(sr.envelope_hash, info->envelope_hash, sizeof sr.envelope_hash);
    sr.accepted_at_ms = c->now_ms;
    sr.audit_index = index;
    snprintf(sr.broker_id, sizeof sr.broker_id, "%s", b->broker_id);
    /* Signed before the commit, off the loop thread (server.c), when the
     * batch has room for it; until then stored and packed with zeros. */
    bool defer = bt->n_sigs < bt->cap_sigs;
    rc = defer ? cn_submit_receipt_build(b->keys, &sr, &receipt, &pae)
               : casenet_submit_receipt_sign(b->keys, &sr, &receipt);
    if (rc != CASENET_OK) {
        log_event(LOG_ERROR, "receipt_sign", "error", casenet_errname(rc), NULL);
        return fail(c, CASENET_EUNAVAIL, "the broker could not sign a receipt; retry later");
    }

    memcpy(m.message_id, info->message_id, sizeof m.message_id);
    snprintf(m.sender, sizeof m.sender, "%s", info->sender);
    m.kind = (int)info->kind;
    m.urgency = (int)info->urgency;
    m.msg_status = (int)info->status;
    m.created_at_ms = info->created_at_ms;
    m.expires_at_ms = info->expires_at_ms;
    m.received_at_ms = c->now_ms;
    m.has_in_reply_to = info->has_in_reply_to;
    memcpy(m.in_reply_to, info->in_reply_to, sizeof m.in_reply_to);
    m.has_case_ref = info->has_case_ref;
    memcpy(m.case_ref, info->case_ref, sizeof m.case_ref);
    memcpy(m.envelope_hash, info->envelope_hash, sizeof m.envelope_hash);
    m.size = c->size;
    m.audit_index = index;
    m.envelope.data = (uint8_t *)env; /* borrowed: not cleared below */
    m.envelope.len = len;
    m.receipt = receipt;
    rc = store_message_insert(s, &m);
    if (rc == CASENET_ECONFLICT) {
        rc = fail(c, CASENET_ECONFLICT, "message id already used; seal a new message");
        goto cleanup;
    }
    if (rc != CASENET_OK) {
        rc = store_fail(c, rc, "store the message");
        goto cleanup;
    }
    int64_t rowid = store_message_last_rowid(s);
    if ((rc = batch_add_bytes(bt, c->member, len)) != CASENET_OK) {
        rc = store_fail(c, rc, "count the member's bytes");
        goto cleanup;
    }
    uint64_t appended = 0;
    if ((rc = audit_submitted(s, c->now_ms, info, c->size, dir_version, &appended)) != CASENET_OK) {
        rc = store_fail(c, rc, "append to the audit log");
        goto cleanup;
    }
    if (appended != index) { /* nothing else appends between: the store is confused */
        rc = store_fail(c, CASENET_EUNAVAIL, "append to the audit log");
        goto cleanup;
    }
    for (size_t i = 0; i < info->n_recipients; i++) {
        struct store_inbox_row row = {0};
        snprintf(row.recipient, sizeof row.recipient, "%s", info->recipients[i]);
        memcpy(row.message_id, m.message_id, sizeof row.message_id);
        snprintf(row.sender, sizeof row.sender, "%s", m.sender);
        row.kind = m.kind;
        row.urgency = m.urgency;
        row.msg_status = m.msg_status;
        row.state = CASENET_INBOX_QUEUED;
        row.received_at_ms = c->now_ms;
        row.created_at_ms = m.created_at_ms;
        row.size = m.size;
        row.has_in_reply_to = m.has_in_reply_to;
        memcpy(row.in_reply_to, m.in_reply_to, sizeof row.in_reply_to);
        row.has_case_ref = m.has_case_ref;
        memcpy(row.case_ref, m.case_ref, sizeof row.case_ref);
        row.msg_row = rowid; /* the store need not look the message up */
        if ((rc = inbox_add(c, &row)) != CASENET_OK)
            goto cleanup;
        if ((rc = deadlines_arm(b, &row, m.expires_at_ms)) != CASENET_OK) {
            rc = store_fail(c, rc, "arm the deadlines");
            goto cleanup;
        }
    }
    rc = submit_reply(resp, &receipt, false, out);
    if (rc == CASENET_OK && defer &&
        (rc = defer_sig(bt, m.message_id, rowid, &pae, out, &receipt)) != CASENET_OK) {
        casenet_buf_free(out);
        rc = store_fail(c, rc, "queue the receipt's signature");
    }
    if (rc == CASENET_OK)
        log_event(LOG_INFO, "submit", "member", c->member, "msg",
                  log_hex(m.message_id, sizeof m.message_id), "recipients",
                  log_u64(info->n_recipients), "size", log_u64(m.size), "audit_index",
                  log_u64(index), NULL);
cleanup:
    casenet_buf_free(&receipt);
    casenet_buf_free(&pae);
    return rc;
}

/* ------------------------------------------------------------ ListInbox */

static int h_list_inbox(struct hctx *c, const Casenet__V1__ListInbox *req,
                        Casenet__V1__Response *resp, casenet_buf *out)
{
    struct store *s = c->b->store;
    if ((int)req->state < CASENET_INBOX_ANY || (int)req->state > CASENET_INBOX_DEAD)
        return fail(c, CASENET_EBADREQ, "unknown inbox state %d", (int)req->state);
    uint32_t limit = req->limit ? req->limit : LIST_DEFAULT_LIMIT;
    if (limit > LIST_MAX_LIMIT)
        limit = LIST_MAX_LIMIT;
    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    bool more = false;
    int rc = store_inbox_list(s, c->member, (int)req->state, req->cursor, limit, &rows, &n, &more);
    if (rc != CASENET_OK)
        return store_fail(c, rc, "list the inbox");
    Casenet__V1__InboxEntry *entries = calloc(n ? n : 1, sizeof *entries);
    Casenet__V1__InboxEntry **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!entries || !ptrs) {
        rc = fail(c, CASENET_ENOMEM, "out of memory; ask for a smaller page");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        entry_from_row(&entries[i], &rows[i]);
        ptrs[i] = &entries[i];
    }
    Casenet__V1__InboxPage page = CASENET__V1__INBOX_PAGE__INIT;
    page.n_entries = n;
    page.entries = ptrs;
    page.next_cursor = n ? rows[n - 1].seq : req->cursor;
    page.more = more;
    resp->body_case = CASENET__V1__RESPONSE__BODY_INBOX;
    resp->inbox = &page;
    rc = pack_response(resp, out);
cleanup:
    free(ptrs);
    free(entries);
    store_inbox_rows_free(rows, n);
    return rc;
}

/* ------------------------------------------------------------ Fetch */

static int h_fetch(struct hctx *c, const Casenet__V1__Fetch *req, Casenet__V1__Response *resp,
                   casenet_buf *out)
{
    struct store *s = c->b->store;
    struct store_inbox_row row = {0};
    struct store_message m = {0};
    int rc;
    if ((rc = limits_request(c, LIMITS_FETCH)) != CASENET_OK)
        return rc;
    if (req->message_id.len != CASENET_MESSAGE_ID_BYTES)
        return fail(c, CASENET_EBADREQ, "a message id is %d bytes", CASENET_MESSAGE_ID_BYTES);
    /* Only a recipient's own inbox is consulted: for anyone else the message
     * does not exist (NOT_FOUND, never FORBIDDEN, which would confirm it). */
    rc = store_inbox_get(s, c->member, req->message_id.data, &row);
    if (rc == CASENET_ENOTFOUND)
        return fail(c, rc, "no message %s in your inbox",
                    log_hex(req->message_id.data, CASENET_MESSAGE_ID_BYTES));
    if (rc != CASENET_OK)
        return store_fail(c, rc, "read the inbox");
    if (row.state == CASENET_INBOX_DEAD) {
        /* The sender was told it was never delivered: keep it so. */
        rc = fail(c, CASENET_ENOTFOUND, "message %s expired before delivery (dead-lettered)",
                  log_hex(row.message_id, CASENET_MESSAGE_ID_BYTES));
        goto cleanup;
    }
    if (row.kind != CASENET_KIND_RECEIPT) {
        rc = store_message_get(s, row.message_id, true, &m);
        if (rc == CASENET_OK && m.envelope.len == 0)
            rc = fail(c, CASENET_ENOTFOUND, "message %s was purged after completion",
                      log_hex(row.message_id, CASENET_MESSAGE_ID_BYTES));
        else if (rc == CASENET_ENOTFOUND)
            rc = fail(c, rc, "no message %s in your inbox",
                      log_hex(row.message_id, CASENET_MESSAGE_ID_BYTES));
        else if (rc != CASENET_OK)
            rc = store_fail(c, rc, "read the message");
        if (rc != CASENET_OK)
            goto cleanup;
        bool moved = row.state == CASENET_INBOX_QUEUED, audited = false;
        if (moved) {
            if ((rc = store_inbox_set_state(s, row.seq, CASENET_INBOX_FETCHED, c->now_ms)) !=
                CASENET_OK) {
                rc = store_fail(c, rc, "update the inbox");
                goto cleanup;
            }
            row.state = CASENET_INBOX_FETCHED;
        }
        /* One FETCHED event per state of the row: a repeated fetch writes
         * nothing (and is refused nothing on a low disk; the savepoint undoes
         * a refused one). */
        if ((rc = store_inbox_fetch_mark(s, row.seq, row.state, &audited)) != CASENET_OK) {
            rc = store_fail(c, rc, "update the inbox");
            goto cleanup;
        }
        if ((moved || audited) && (rc = disk_check(c, LIMITS_FETCH)) != CASENET_OK)
            goto cleanup;
        if (audited && (rc = audit_fetched(s, c->now_ms, c->member, &m, NULL)) != CASENET_OK) {
            rc = store_fail(c, rc, "append to the audit log");
            goto cleanup;
        }
        log_event(audited ? LOG_INFO : LOG_DEBUG, "fetch", "member", c->member, "msg",
                  log_hex(m.message_id, sizeof m.message_id), NULL);
    } else if (row.state == CASENET_INBOX_QUEUED) {
        /* A forwarded receipt is settled once its member has seen it
         * (PROTOCOL.md section 8); the RECEIPT event already audits it. */
        if ((rc = store_inbox_set_state(s, row.seq, CASENET_INBOX_FETCHED, c->now_ms)) !=
            CASENET_OK) {
            rc = store_fail(c, rc, "update the inbox");
            goto cleanup;
        }
        row.state = CASENET_INBOX_FETCHED;
    }
    Casenet__V1__FetchReply f = CASENET__V1__FETCH_REPLY__INIT;
    Casenet__V1__InboxEntry e;
    entry_from_row(&e, &row);
    set_bytes(&f.envelope, m.envelope.data, m.envelope.len);
    f.entry = &e;
    resp->body_case = CASENET__V1__RESPONSE__BODY_FETCH;
    resp->fetch = &f;
    rc = pack_response(resp, out);
cleanup:
    store_inbox_row_clear(&row);
    store_message_clear(&m);
    return rc;
}

/* ------------------------------------------------------------ SendReceipt */

static int target_state(int status)
{
    switch (status) {
    case CASENET_RECEIPT_DELIVERED:
        return CASENET_INBOX_DELIVERED;
    case CASENET_RECEIPT_ACCEPTED:
        return CASENET_INBOX_ACCEPTED;
    case CASENET_RECEIPT_DECLINED:
        return CASENET_INBOX_DECLINED;
    case CASENET_RECEIPT_COMPLETED:
        return CASENET_INBOX_COMPLETED;
    default:
        return -1;
    }
}

/* The inbox state machine: queued -> fetched -> delivered -> accepted |
 * declined, accepted -> completed. A receipt may skip "fetched" (delivered
 * from queued) and "delivered" (accepted/declined from fetched). */
static bool transition_ok(int from, int to)
{
    switch (to) {
    case CASENET_INBOX_DELIVERED:
        return from == CASENET_INBOX_QUEUED || from == CASENET_INBOX_FETCHED;
    case CASENET_INBOX_ACCEPTED:
    case CASENET_INBOX_DECLINED:
        return from == CASENET_INBOX_DELIVERED || from == CASENET_INBOX_FETCHED;
    case CASENET_INBOX_COMPLETED:
        return from == CASENET_INBOX_ACCEPTED;
    default:
        return false;
    }
}

static int receipt_reply(Casenet__V1__Response *resp, uint64_t index, int state, casenet_buf *out)
{
    Casenet__V1__ReceiptReply r = CASENET__V1__RECEIPT_REPLY__INIT;
    r.audit_index = index;
    r.state = (Casenet__V1__InboxState)state;
    resp->body_case = CASENET__V1__RESPONSE__BODY_RECEIPT;
    resp->receipt = &r;
    return pack_response(resp, out);
}

static int h_receipt(struct hctx *c, const Casenet__V1__SendReceipt *req,
                     Casenet__V1__Response *resp, casenet_buf *out)
{
    struct store *s = c->b->store;
    const uint8_t *bytes = req->signed_receipt.data;
    size_t len = req->signed_receipt.len;
    casenet_receipt r;
    struct store_inbox_row row = {0};
    struct store_message m = {0};
    uint8_t rhash[CASENET_HASH_BYTES];
    int rc = limits_request(c, LIMITS_RECEIPT);
    if (rc != CASENET_OK)
        return rc;
    rc = casenet_receipt_verify(c->b->dir, bytes ? bytes : (const uint8_t *)"", len, &r);
    if (rc == CASENET_EBADSIG)
        return fail(c, rc, "the receipt's signature does not verify with the signer's key");
    if (rc == CASENET_ENOMEM)
        return fail(c, rc, "out of memory; retry later");
    if (rc != CASENET_OK)
        return fail(c, rc == CASENET_EUNAUTH || rc == CASENET_ENOTFOUND ? rc : CASENET_EBADREQ,
                    "the receipt is malformed or its signer unknown (%s); a declined receipt "
                    "needs a reason (not-competent, duplicate, insufficient-information, "
                    "redirected), a completed one an outcome code, no other status either",
                    casenet_strerror(rc));
    if (strcmp(r.recipient, c->member) != 0)
        return fail(c, CASENET_EFORBIDDEN,
                    "the receipt is signed by %s but this connection is %s; send only your own "
                    "receipts",
                    r.recipient, c->member);
    int to = target_state((int)r.status);
    if (to < 0)
        return fail(c, CASENET_EBADREQ, "unknown receipt status %d", (int)r.status);
    rc = store_inbox_get(s, c->member, r.message_id, &row);
    if (rc == CASENET_OK && row.kind == CASENET_KIND_RECEIPT)
        rc = CASENET_ENOTFOUND;
    if (rc == CASENET_ENOTFOUND) {
        rc = fail(c, rc, "no message %s in your inbox",
                  log_hex(r.message_id, CASENET_MESSAGE_ID_BYTES));
        goto cleanup;
    }
    if (rc != CASENET_OK) {
        rc = store_fail(c, rc, "read the inbox");
        goto cleanup;
    }
    if ((rc = store_message_get(s, r.message_id, false, &m)) != CASENET_OK) {
        rc = rc == CASENET_ENOTFOUND ? fail(c, rc, "no such message")
                                     : store_fail(c, rc, "read the message");
        goto cleanup;
    }
    if (crypto_verify_32(m.envelope_hash, r.envelope_hash) != 0) {
        rc = fail(c, CASENET_ECONFLICT,
                  "the receipt's envelope hash differs from the envelope the broker holds; "
                  "fetch the message again and sign over its hash");
        goto cleanup;
    }
    if (strcmp(r.sender, m.sender) != 0) {
        rc = fail(c, CASENET_EBADREQ, "the receipt names sender %s but the message is from %s",
                  r.sender, m.sender);
        goto cleanup;
    }
    cn_sha256(bytes, len, rhash);
    uint64_t index = 0;
    rc = store_receipt_find(s, rhash, &index);
    if (rc == CASENET_OK) { /* the same receipt again: idempotent */
        rc = receipt_reply(resp, index, row.state, out);
        goto cleanup;
    }
    if (rc != CASENET_ENOTFOUND) {
        rc = store_fail(c, rc, "look the receipt up");
        goto cleanup;
    }
    if (!transition_ok(row.state, to)) {
        rc = fail(c, CASENET_ECONFLICT,
                  "cannot go from %s to %s; the state machine is queued, "
                  "fetched, delivered, accepted or declined, completed (after accepted)",
                  casenet_inbox_state_name(row.state), casenet_inbox_state_name(to));
        goto cleanup;
    }
    if ((rc = disk_check(c, LIMITS_RECEIPT)) != CASENET_OK)
        goto cleanup;
    if ((rc = audit_receipt(s, c->now_ms, &r, &m, &index)) != CASENET_OK) {
        rc = store_fail(c, rc, "append to the audit log");
        goto cleanup;
    }
    struct store_receipt sr = {0};
    memcpy(sr.receipt_hash, rhash, sizeof rhash);
    memcpy(sr.message_id, r.message_id, sizeof sr.message_id);
    snprintf(sr.recipient, sizeof sr.recipient, "%s", c->member);
    sr.status = (int)r.status;
    sr.received_at_ms = c->now_ms;
    sr.audit_index = index;
    sr.signed_receipt = bytes;
    sr.signed_len = len;
    if ((rc = store_receipt_insert(s, &sr)) != CASENET_OK ||
        (rc = store_inbox_set_state(s, row.seq, to, c->now_ms)) != CASENET_OK) {
        rc = store_fail(c, rc, "record the receipt");
        goto cleanup;
    }
    /* Forward to the sender's inbox; the row's own id is derived from the
     * receipt bytes so that each distinct receipt is one row. */
    struct store_inbox_row fwd = {0};
    snprintf(fwd.recipient, sizeof fwd.recipient, "%s", m.sender);
    memcpy(fwd.message_id, rhash, sizeof fwd.message_id);
    snprintf(fwd.sender, sizeof fwd.sender, "%s", c->member);
    fwd.kind = CASENET_KIND_RECEIPT;
    fwd.urgency = m.urgency;
    fwd.msg_status = m.msg_status;
    fwd.state = CASENET_INBOX_QUEUED;
    fwd.received_at_ms = c->now_ms;
    fwd.created_at_ms = r.signed_at_ms;
    fwd.size = (uint32_t)len;
    fwd.has_in_reply_to = true;
    memcpy(fwd.in_reply_to, m.message_id, sizeof fwd.in_reply_to);
    fwd.has_case_ref = m.has_case_ref;
    memcpy(fwd.case_ref, m.case_ref, sizeof fwd.case_ref);
    fwd.receipt_status = (int)r.status;
    fwd.receipt.data = (uint8_t *)bytes; /* borrowed */
    fwd.receipt.len = len;
    if ((rc = inbox_add(c, &fwd)) != CASENET_OK)
        goto cleanup;
    log_event(LOG_INFO, "receipt", "member", c->member, "msg",
              log_hex(m.message_id, sizeof m.message_id), "status",
              casenet_receipt_status_name((int)r.status), "audit_index", log_u64(index), NULL);
    rc = receipt_reply(resp, index, to, out);
cleanup:
    store_inbox_row_clear(&row);
    store_message_clear(&m);
    return rc;
}

/* ------------------------------------------------------------ dispatch */

static const char *body_name(Casenet__V1__Request__BodyCase k)
{
    switch (k) {
    case CASENET__V1__REQUEST__BODY_HELLO:
        return "hello";
    case CASENET__V1__REQUEST__BODY_GET_DIRECTORY:
        return "get_directory";
    case CASENET__V1__REQUEST__BODY_PUBLISH_DIRECTORY:
        return "publish_directory";
    case CASENET__V1__REQUEST__BODY_SUBMIT:
        return "submit";
    case CASENET__V1__REQUEST__BODY_LIST_INBOX:
        return "list_inbox";
    case CASENET__V1__REQUEST__BODY_FETCH:
        return "fetch";
    case CASENET__V1__REQUEST__BODY_RECEIPT:
        return "receipt";
    case CASENET__V1__REQUEST__BODY_SUBSCRIBE:
        return "subscribe";
    case CASENET__V1__REQUEST__BODY_GET_TREE_HEAD:
        return "get_tree_head";
    case CASENET__V1__REQUEST__BODY_AUDIT_QUERY:
        return "audit_query";
    case CASENET__V1__REQUEST__BODY_AUDIT_PROOF:
        return "audit_proof";
    case CASENET__V1__REQUEST__BODY_AUDIT_EXPORT:
        return "audit_export";
    case CASENET__V1__REQUEST__BODY_GET_STATUS:
        return "get_status";
    case CASENET__V1__REQUEST__BODY_LIST_SENT:
        return "list_sent";
    case CASENET__V1__REQUEST__BODY_LIST_OVERDUE:
        return "list_overdue";
    default:
        return "unknown";
    }
}

static int run_handler(struct hctx *c, const Casenet__V1__Request *req, casenet_buf *out,
                       bool *subscribe)
{
    Casenet__V1__Response resp = CASENET__V1__RESPONSE__INIT;
    resp.protocol_version = BROKER_PROTOCOL_VERSION;
    resp.request_id = req->request_id;
    /* Audit reads append an AUDIT_QUERIED event each. */
    if (req->body_case == CASENET__V1__REQUEST__BODY_AUDIT_QUERY ||
        req->body_case == CASENET__V1__REQUEST__BODY_AUDIT_EXPORT) {
        int rc = limits_request(c, LIMITS_AUDIT);
        if (rc != CASENET_OK || (rc = disk_check(c, LIMITS_AUDIT)) != CASENET_OK)
            return rc;
    }
    switch (req->body_case) {
    case CASENET__V1__REQUEST__BODY_HELLO:
        return h_hello(c, &resp, out);
    case CASENET__V1__REQUEST__BODY_GET_DIRECTORY:
        return h_get_directory(c, &resp, out);
    case CASENET__V1__REQUEST__BODY_PUBLISH_DIRECTORY:
        return h_publish_directory(c, req->publish_directory, &resp, out);
    case CASENET__V1__REQUEST__BODY_SUBMIT:
        return h_submit(c, req->submit, &resp, out);
    case CASENET__V1__REQUEST__BODY_LIST_INBOX:
        return h_list_inbox(c, req->list_inbox, &resp, out);
    case CASENET__V1__REQUEST__BODY_FETCH:
        return h_fetch(c, req->fetch, &resp, out);
    case CASENET__V1__REQUEST__BODY_RECEIPT:
        return h_receipt(c, req->receipt, &resp, out);
    case CASENET__V1__REQUEST__BODY_SUBSCRIBE: {
        Casenet__V1__SubscribeReply sub = CASENET__V1__SUBSCRIBE_REPLY__INIT;
        resp.body_case = CASENET__V1__RESPONSE__BODY_SUBSCRIBE;
        resp.subscribe = &sub;
        *subscribe = true;
        return pack_response(&resp, out);
    }
    case CASENET__V1__REQUEST__BODY_GET_TREE_HEAD:
    case CASENET__V1__REQUEST__BODY_AUDIT_QUERY:
    case CASENET__V1__REQUEST__BODY_AUDIT_PROOF:
    case CASENET__V1__REQUEST__BODY_AUDIT_EXPORT:
        return audit_tree_request(c->b, c->bt, c->member, c->now_ms, req, &resp, out, c->msg,
                                  sizeof c->msg);
    case CASENET__V1__REQUEST__BODY_GET_STATUS:
        return lifecycle_get_status(c->b, c->bt, c->member, req->get_status, &resp, out, c->msg,
                                    sizeof c->msg);
    case CASENET__V1__REQUEST__BODY_LIST_SENT:
        return lifecycle_list_sent(c->b, c->bt, c->member, req->list_sent, &resp, out, c->msg,
                                   sizeof c->msg);
    case CASENET__V1__REQUEST__BODY_LIST_OVERDUE:
        return lifecycle_list_overdue(c->b, c->bt, c->member, req->list_overdue, &resp, out, c->msg,
                                      sizeof c->msg);
    default:
        return fail(c, CASENET_EBADREQ,
                    "the request has no body this broker knows; upgrade the broker or the "
                    "client");
    }
}

int handlers_dispatch(struct broker *b, struct batch *bt, const char *member, const uint8_t *frame,
                      size_t len, casenet_buf *reply, bool *subscribe)
{
    struct store *s = b->store;
    struct hctx c = {.b = b, .bt = bt, .member = member, .now_ms = cn_now_ms()};
    *subscribe = false;
    Casenet__V1__Request *req = casenet__v1__request__unpack(NULL, len, frame);
    if (!req)
        return handlers_error_reply(0, CASENET_EBADREQ,
                                    "the frame is not a serialised Request; send exactly one "
                                    "frame holding a casenet.v1.Request",
                                    reply);
    c.request_id = req->request_id;
    int rc;
    if (req->protocol_version != BROKER_PROTOCOL_VERSION) {
        rc = handlers_error_reply(req->request_id, CASENET_EVERSION,
                                  "this broker speaks protocol version 1", reply);
        casenet__v1__request__free_unpacked(req, NULL);
        return rc;
    }
    if (!cn_pb_strings_valid(&req->base)) {
        /* Never echoed: the bytes are not text. */
        rc = handlers_error_reply(req->request_id, CASENET_EBADREQ,
                                  "a string field of the request is not valid UTF-8 (protobuf "
                                  "strings must be); fix the client",
                                  reply);
        casenet__v1__request__free_unpacked(req, NULL);
        return rc;
    }
    if (!member || !*member || !broker_member_active(b, member)) {
        rc = handlers_error_reply(req->request_id, CASENET_EUNAUTH,
                                  "this connection's member is not active in the current "
                                  "directory; contact the network authority",
                                  reply);
        casenet__v1__request__free_unpacked(req, NULL);
        return rc;
    }
    /* A request runs in a savepoint of its own, so that a refusal undoes
     * what it wrote, except a Submit: every refusal a client can cause is
     * decided before its first write, and a savepoint copies each page the
     * request touches (about a tenth of the loop's time at full load). A
     * Submit that fails after writing all the same (out of memory, say)
     * fails its whole batch: rolled back, every request answered
     * UNAVAILABLE, resent by its client. */
    bool own_savepoint = req->body_case != CASENET__V1__REQUEST__BODY_SUBMIT;
    uint64_t changes_before = store_changes(s);
    if (own_savepoint && (rc = store_savepoint(s)) != CASENET_OK) {
        bt->store_failed = true;
        rc = handlers_error_reply(req->request_id, CASENET_EUNAVAIL,
                                  "the broker's store failed; retry later", reply);
        casenet__v1__request__free_unpacked(req, NULL);
        return rc;
    }
    casenet_buf out = {0};
    rc = run_handler(&c, req, &out, subscribe);
    if (rc == CASENET_OK) {
        if (own_savepoint && store_release(s) != CASENET_OK)
            bt->store_failed = true;
        *reply = out;
    } else {
        casenet_buf_free(&out);
        *subscribe = false;
        if (own_savepoint) {
            store_rollback_to(s);
        } else if (store_changes(s) != changes_before && !bt->store_failed) {
            log_event(LOG_ERROR, "request_failed_after_write", "member", member, "request",
                      body_name(req->body_case), "error", casenet_errname(rc), "msg",
                      "the batch is rolled back", NULL);
            bt->store_failed = true;
        }
        if (req->body_case == CASENET__V1__REQUEST__BODY_SUBMIT && !bt->store_failed &&
            !c.no_audit) {
            /* The hash of the bytes refused, when they did not parse far
             * enough to give info (computed here, not for every Submit:
             * verification hashes the envelope already). */
            if (!c.have_info && req->submit) {
                const ProtobufCBinaryData *e = &req->submit->envelope;
                cn_sha256(e->data ? e->data : (const uint8_t *)"", e->len, c.hash);
                c.have_hash = true;
            }
            int arc = audit_rejected(s, c.now_ms, member, c.have_info ? &c.info : NULL,
                                     c.have_hash ? c.hash : NULL, c.size, rc, c.msg, NULL);
            if (arc == CASENET_EUNAVAIL)
                bt->store_failed = true;
        }
        /* A rate-limited flood is logged at debug level after its first
         * refusal, like its audit events. */
        log_event(c.no_audit ? LOG_DEBUG : LOG_INFO, "rejected", "member", member, "request",
                  body_name(req->body_case), "error", casenet_errname(handlers_wire_code(rc)),
                  "msg", c.have_info ? log_hex(c.info.message_id, CASENET_MESSAGE_ID_BYTES) : NULL,
                  "detail", c.msg, NULL);
        rc = error_reply(req->request_id, rc, c.msg, c.retry_after_ms, c.stale_version, reply);
    }
    if (c.have_info)
        casenet_message_info_clear(&c.info);
    casenet__v1__request__free_unpacked(req, NULL);
    return rc;
}
