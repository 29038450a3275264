/* handlers_submit.c - Submit: admit -> duplicate -> room -> write (see handlers.h). */
#include "handlers.h"
#include "handlers_blob.h"

#include "audit.h"
#include "deadlines.h"
#include "inbox_row.h"
#include "log.h"
#include "receipt_impl.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int submit_reply(struct req *c, const casenet_buf *receipt, bool duplicate)
{
    Casenet__V1__SubmitReply s = CASENET__V1__SUBMIT_REPLY__INIT;
    pb_set_bytes(&s.receipt, receipt->data, receipt->len);
    s.duplicate = duplicate;
    c->resp.body_case = CASENET__V1__RESPONSE__BODY_SUBMIT;
    c->resp.submit = &s;
    return req_reply(c);
}

static int verify_error(struct req *c, int rc)
{
    switch (rc) {
    case CASENET_EBADSIG:
        return req_fail(c, rc,
                        "the envelope's signature does not verify with the sender's directory key");
    case CASENET_EVERSION:
        return req_fail(c, rc, "unsupported envelope version; upgrade the client");
    case CASENET_EUNKNOWNRCPT:
        return req_fail(c, rc,
                        "a recipient is not an active member of directory version %llu; check the "
                        "recipients against the current directory",
                        (unsigned long long)casenet_directory_version(c->b->dir));
    case CASENET_EUNAUTH:
        return req_fail(c, rc, "the envelope's sender is not an active member of the directory");
    case CASENET_ESTALEDIR:
        c->stale_version = casenet_directory_version(c->b->dir);
        return req_fail(c, rc,
                        "the envelope is wrapped to a recipient box key that was replaced before "
                        "it was sealed: the sender's directory is older than version %llu, the "
                        "broker's; pull the directory and seal the message again",
                        (unsigned long long)c->stale_version);
    case CASENET_EFORBIDDEN:
        return req_fail(c, rc,
                        "kinds escalation and dead-letter are the broker's own notices; members "
                        "cannot send them");
    case CASENET_ENOMEM:
        return req_fail(c, rc, "out of memory; retry later");
    case CASENET_ETOOLARGE:
        return req_fail(c, rc,
                        "the envelope has more than %u recipients or a payload over the limit; "
                        "split the message",
                        (unsigned)CASENET_MAX_RECIPIENTS);
    default:
        return req_fail(
            c, CASENET_EBADREQ,
            "the envelope is malformed or breaks a structural rule (%s); seal it with a "
            "conforming client",
            casenet_strerror(rc));
    }
}

/* casenet_envelope_verify, or its result for these exact bytes when the
 * loop had them checked before the batch (verify.h); takes that info. */
static int verify_envelope(struct req *c, const uint8_t *env, size_t len)
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
static int directory_unexpired(struct req *c)
{
    int64_t exp = casenet_directory_expires_at(c->b->dir);
    if (exp > c->now_ms)
        return CASENET_OK;
    return req_fail(c, CASENET_EDIREXPIRED,
                    "the broker's directory version %llu expired at %s; no new messages until the "
                    "network authority renews it ('casenet admin renew', then 'casenet directory "
                    "publish'); reading and acknowledging still work",
                    (unsigned long long)casenet_directory_version(c->b->dir), log_utc(exp));
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
static int limits_backlog(struct req *c, const casenet_message_info *info)
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
            return req_store_fail(c, rc, "read the inbox backlog");
        if (pair_max && mine >= pair_max) {
            c->retry_after_ms = LIMITS_BACKLOG_RETRY_MS;
            return req_fail(
                c, CASENET_EUNAVAIL,
                "%s has %llu unfetched messages from %s (the limit per sender is %llu%s); "
                "retry later or reach the recipient another way",
                info->recipients[i], (unsigned long long)mine, c->member,
                (unsigned long long)pair_max,
                emergency ? "" : ", the rest kept for EMERGENCY messages");
        }
        if (max && queued >= max) {
            c->retry_after_ms = LIMITS_BACKLOG_RETRY_MS;
            return req_fail(c, CASENET_EUNAVAIL,
                            "%s has %llu unfetched messages (the limit is %llu%s); retry later or "
                            "reach the recipient another way",
                            info->recipients[i], (unsigned long long)queued,
                            (unsigned long long)max,
                            emergency ? "" : ", the rest kept for EMERGENCY messages");
        }
    }
    return CASENET_OK;
}

/* The role matrix (PROTOCOL.md §6.1, clients/rules.c) against the broker's
 * current directory: FORBIDDEN naming the roles, audited like every refused
 * Submit. */
static int submit_roles(struct req *c, const casenet_message_info *info)
{
    char why[256];
    int rc = casenet_role_check(c->b->dir, info->sender, (int)info->kind,
                                (const char *const *)info->recipients, info->n_recipients, why,
                                sizeof why);
    if (rc != CASENET_OK)
        return req_fail(c, rc, "%s; what each role may send to whom: PROTOCOL.md section 6.1", why);
    return CASENET_OK;
}

/* The answer to a resubmission: the stored message `old` has id; when its
 * envelope hash is hash (the same bytes), its receipt again with duplicate
 * set (signed with the first one's signature when that was accepted earlier
 * in this batch); else CONFLICT. */
static int submit_again(struct req *c, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                        const struct store_message *old, const uint8_t hash[CASENET_HASH_BYTES])
{
    if (sodium_memcmp(old->envelope_hash, hash, CASENET_HASH_BYTES) != 0)
        return req_fail(c, CASENET_ECONFLICT,
                        "message id %s was already accepted with other bytes; seal a new message "
                        "(fresh id) instead of reusing one",
                        log_hex(id, CASENET_MESSAGE_ID_BYTES));
    int rc = submit_reply(c, &old->receipt, true);
    /* Accepted earlier in this batch: its stored receipt is not signed yet,
     * and this reply is signed with it. */
    const struct batch_sig *first = batch_find_sig(c->bt, id);
    if (rc == CASENET_OK && first) {
        casenet_buf copy = {.data = malloc(first->pae.len), .len = first->pae.len};
        rc = copy.data ? CASENET_OK : CASENET_ENOMEM;
        if (rc == CASENET_OK) {
            memcpy(copy.data, first->pae.data, copy.len);
            rc = defer_sig(c->bt, id, 0, &copy, &c->out, &old->receipt);
        }
        if (rc != CASENET_OK) { /* nothing written: this request only */
            casenet_buf_free(&copy);
            casenet_buf_free(&c->out);
            rc = req_store_fail(c, CASENET_ENOMEM, "queue the receipt's signature");
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
static int submit_resend(struct req *c, const uint8_t *env, size_t len)
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
        rc = submit_again(c, id, &old, hash);
    store_message_clear(&old);
    return rc;
}

/* The sender's byte quota: the envelopes it has stored (not purged) and
 * this one fit in quota_mb MiB. QUOTA_EXCEEDED otherwise. */
static int limits_quota(struct req *c)
{
    struct store *s = c->b->store;
    uint32_t quota_mb = c->b->cfg->limits.quota_mb;
    if (!quota_mb)
        return CASENET_OK;
    uint64_t stored = 0, quota = (uint64_t)quota_mb * 1024u * 1024u;
    int rc = store_member_bytes(s, c->member, &stored);
    if (rc != CASENET_OK)
        return req_store_fail(c, rc, "read the member's stored bytes");
    stored += batch_bytes_of(c->bt, c->member);
    if (stored + c->size > quota)
        return req_fail(c, CASENET_EQUOTA,
                        "%s already stores %llu bytes of messages at this broker; with this one "
                        "(%u bytes) it would exceed its quota of %u MiB; ask the broker's operator "
                        "to raise member_quota_mb",
                        c->member, (unsigned long long)stored, c->size, quota_mb);
    return CASENET_OK;
}

/* Step 1, admission: the envelope's size, its signature and structure
 * (verify.h), then the rules on sender, recipients, clock and expiry. No
 * store access. On success c->info holds the verified envelope. */
static int submit_admit(struct req *c, const uint8_t *env, size_t len)
{
    const struct broker_limits *lim = &c->b->cfg->limits;
    int rc;
    if (len > lim->max_envelope_bytes)
        return req_fail(c, CASENET_ETOOLARGE,
                        "the envelope is %zu bytes; this broker accepts at most %u; send large "
                        "content in smaller messages",
                        len, lim->max_envelope_bytes);
    if ((rc = verify_envelope(c, env, len)) != CASENET_OK)
        return verify_error(c, rc);
    c->have_info = true;
    const casenet_message_info *info = &c->info;
    if (strcmp(info->sender, c->member) != 0)
        return req_fail(c, CASENET_EFORBIDDEN,
                        "the envelope's sender is %s but this connection is authenticated as "
                        "%s; sign with your own keys",
                        info->sender, c->member);
    /* A message to oneself would arm deadlines and escalate to every
     * coordinator for nothing (PROTOCOL.md §8, Submit). */
    for (size_t i = 0; i < info->n_recipients; i++)
        if (strcmp(info->recipients[i], c->member) == 0)
            return req_fail(c, CASENET_EFORBIDDEN,
                            "%s is among the recipients: a member cannot address a message to "
                            "itself; remove it and seal again",
                            c->member);
    if ((rc = submit_roles(c, info)) != CASENET_OK)
        return rc;
    if (info->n_recipients > lim->max_recipients)
        return req_fail(c, CASENET_ETOOLARGE,
                        "%zu recipients; this broker accepts at most %u per message; split the "
                        "message",
                        info->n_recipients, lim->max_recipients);
    int64_t skew = info->created_at_ms - c->now_ms;
    if (skew < 0)
        skew = -skew;
    if (skew > (int64_t)lim->clock_skew_s * 1000)
        return req_fail(c, CASENET_ECLOCKSKEW,
                        "created_at is %lld s away from the broker's clock (limit %u s); set the "
                        "sender's clock (NTP) and seal again",
                        (long long)(skew / 1000), lim->clock_skew_s);
    if (info->expires_at_ms != 0 && info->expires_at_ms <= c->now_ms)
        return req_fail(c, CASENET_EBADREQ, "the message expired before it reached the broker");
    return CASENET_OK;
}

/* Step 2, duplicates: a message already stored under this id is answered
 * here (its receipt again, or CONFLICT) and *answered set. */
static int submit_duplicate(struct req *c, bool *answered)
{
    struct store_message old = {0};
    int rc = store_message_get(c->b->store, c->info.message_id, false, &old);
    if (rc == CASENET_OK) {
        *answered = true;
        rc = submit_again(c, c->info.message_id, &old, c->info.envelope_hash);
        store_message_clear(&old);
        return rc;
    }
    if (rc != CASENET_ENOTFOUND)
        return req_store_fail(c, rc, "look the message up");
    return CASENET_OK;
}

/* Step 3, room for a new message: a directory in force, the recipients'
 * backlogs, the sender's quota, and an id no receipt row holds. Every
 * refusal comes before the first write (a Submit has no savepoint,
 * request.h). */
static int submit_room(struct req *c)
{
    const casenet_message_info *info = &c->info;
    int rc;
    if ((rc = directory_unexpired(c)) != CASENET_OK)
        return rc;
    if ((rc = limits_backlog(c, info)) != CASENET_OK || (rc = limits_quota(c)) != CASENET_OK)
        return rc;
    /* The id may already name a receipt row in a recipient's inbox, and
     * whoever signed that receipt knows it. No message has the id
     * (message_get), so only receipt rows can. */
    for (size_t i = 0; i < info->n_recipients; i++) {
        bool taken = true;
        rc = store_inbox_receipt_row(c->b->store, info->recipients[i], info->message_id, &taken);
        if (rc != CASENET_OK)
            return req_store_fail(c, rc, "look the inbox up");
        if (taken)
            return req_fail(c, CASENET_ECONFLICT,
                            "message id %s already names an entry in %s's inbox; seal a new "
                            "message",
                            log_hex(info->message_id, CASENET_MESSAGE_ID_BYTES),
                            info->recipients[i]);
    }
    return CASENET_OK;
}

/* The messages row of the verified envelope env, accepted now at audit
 * index `index` with receipt (borrowed, like env). */
static void submit_message_row(struct req *c, const uint8_t *env, size_t len, uint64_t index,
                               const casenet_buf *receipt, struct store_message *m)
{
    const casenet_message_info *info = &c->info;
    memcpy(m->message_id, info->message_id, sizeof m->message_id);
    snprintf(m->sender, sizeof m->sender, "%s", info->sender);
    m->kind = (int)info->kind;
    m->urgency = (int)info->urgency;
    m->msg_status = (int)info->status;
    m->created_at_ms = info->created_at_ms;
    m->expires_at_ms = info->expires_at_ms;
    m->received_at_ms = c->now_ms;
    m->has_in_reply_to = info->has_in_reply_to;
    memcpy(m->in_reply_to, info->in_reply_to, sizeof m->in_reply_to);
    m->has_case_ref = info->has_case_ref;
    memcpy(m->case_ref, info->case_ref, sizeof m->case_ref);
    memcpy(m->envelope_hash, info->envelope_hash, sizeof m->envelope_hash);
    m->size = c->size;
    m->audit_index = index;
    m->envelope.data = (uint8_t *)env; /* borrowed: not cleared */
    m->envelope.len = len;
    m->receipt = *receipt;
}

/* The message's SUBMITTED event (at index, which its receipt names) and
 * one queued inbox row per recipient with its deadlines. */
static int submit_fan_out(struct req *c, const struct store_message *m, int64_t rowid,
                          uint64_t index)
{
    const casenet_message_info *info = &c->info;
    uint64_t appended = 0;
    uint64_t dir_version = casenet_directory_version(c->b->dir);
    int rc = audit_submitted(c->b->store, c->now_ms, info, c->size, dir_version, &appended);
    if (rc != CASENET_OK)
        return req_store_fail(c, rc, "append to the audit log");
    if (appended != index) /* nothing else appends between: the store is confused */
        return req_store_fail(c, CASENET_EUNAVAIL, "append to the audit log");
    for (size_t i = 0; i < info->n_recipients; i++) {
        struct store_inbox_row row;
        inbox_row_for(&row, info->recipients[i], m, c->now_ms);
        row.msg_row = rowid; /* the store need not look the message up */
        if ((rc = handlers_inbox_add(c, &row)) != CASENET_OK)
            return rc;
        if ((rc = deadlines_arm(c->b, &row, m->expires_at_ms)) != CASENET_OK)
            return req_store_fail(c, rc, "arm the deadlines");
    }
    return CASENET_OK;
}

/* Step 4, the writes: the message row first, then its SUBMITTED event at
 * the index the receipt names (the store keys the event by the stored
 * message: an index that grows with the log, not the client's random id),
 * the inbox rows and deadlines, and the reply with the receipt (signed
 * before the commit, off the loop thread, when the batch has room). */
static int submit_write(struct req *c, const uint8_t *env, size_t len)
{
    struct broker *b = c->b;
    struct batch *bt = c->bt;
    struct store *s = b->store;
    struct store_message m = {0};
    casenet_buf receipt = {0}, pae = {0};
    uint64_t index = 0;
    int rc;
    if ((rc = store_audit_next_index(s, &index)) != CASENET_OK)
        return req_store_fail(c, rc, "read the audit log");
    casenet_submit_receipt sr = {0};
    memcpy(sr.message_id, c->info.message_id, sizeof sr.message_id);
    memcpy(sr.envelope_hash, c->info.envelope_hash, sizeof sr.envelope_hash);
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
        return req_fail(c, CASENET_EUNAVAIL, "the broker could not sign a receipt; retry later");
    }
    submit_message_row(c, env, len, index, &receipt, &m);
    rc = store_message_insert(s, &m);
    if (rc == CASENET_ECONFLICT) {
        rc = req_fail(c, CASENET_ECONFLICT, "message id already used; seal a new message");
        goto cleanup;
    }
    if (rc != CASENET_OK) {
        rc = req_store_fail(c, rc, "store the message");
        goto cleanup;
    }
    int64_t rowid = store_message_last_rowid(s);
    if ((rc = batch_add_bytes(bt, c->member, len)) != CASENET_OK) {
        rc = req_store_fail(c, rc, "count the member's bytes");
        goto cleanup;
    }
    if ((rc = submit_fan_out(c, &m, rowid, index)) != CASENET_OK)
        goto cleanup;
    rc = submit_reply(c, &receipt, false);
    if (rc == CASENET_OK && defer &&
        (rc = defer_sig(bt, m.message_id, rowid, &pae, &c->out, &receipt)) != CASENET_OK) {
        casenet_buf_free(&c->out);
        rc = req_store_fail(c, rc, "queue the receipt's signature");
    }
    if (rc == CASENET_OK)
        log_event(LOG_INFO, "submit", "member", c->member, "msg",
                  log_hex(m.message_id, sizeof m.message_id), "recipients",
                  log_u64(c->info.n_recipients), "size", log_u64(m.size), "audit_index",
                  log_u64(index), NULL);
cleanup:
    casenet_buf_free(&receipt);
    casenet_buf_free(&pae);
    return rc;
}

int handlers_submit(struct req *c, const Casenet__V1__Request *q)
{
    const Casenet__V1__Submit *req = q->submit;
    const uint8_t *env = req->envelope.data;
    size_t len = req->envelope.len;
    int rc;
    c->size = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    /* The bucket first: a flood is refused before any costly work. */
    if ((rc = req_limits(c, LIMITS_SUBMIT)) != CASENET_OK ||
        (rc = req_disk_check(c, LIMITS_SUBMIT)) != CASENET_OK) {
        /* ... except a resend of what this member already stored. */
        int again = submit_resend(c, env, len);
        return again == CASENET_ENOTFOUND ? rc : again;
    }
    if ((rc = submit_admit(c, env, len)) != CASENET_OK)
        return rc;
    bool answered = false;
    if ((rc = submit_duplicate(c, &answered)) != CASENET_OK || answered)
        return rc;
    if ((rc = submit_room(c)) != CASENET_OK ||
        (rc = handlers_blob_submit_check(c, len)) != CASENET_OK)
        return rc;
    if ((rc = submit_write(c, env, len)) != CASENET_OK)
        return rc;
    return handlers_blob_submit_reference(c);
}
