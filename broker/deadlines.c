/* deadlines.c - arming deadlines and the timer pass that escalates and
 * dead-letters (see deadlines.h). */
#include "deadlines.h"

#include "audit.h"
#include "casenet.pb-c.h"
#include "batch.h"
#include "directory_impl.h"
#include "inbox_row.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert((int)CASENET__V1__DEADLINE_KIND__DEADLINE_KIND_DELIVER ==
                   (int)CASENET__V1__NOTICE_REASON__NOTICE_REASON_DELIVER_OVERDUE,
               "DeadlineKind and NoticeReason share numbers");
_Static_assert((int)CASENET__V1__DEADLINE_KIND__DEADLINE_KIND_ACCEPT ==
                   (int)CASENET__V1__NOTICE_REASON__NOTICE_REASON_ACCEPT_OVERDUE,
               "DeadlineKind and NoticeReason share numbers");
_Static_assert((int)CASENET__V1__DEADLINE_KIND__DEADLINE_KIND_EXPIRE ==
                   (int)CASENET__V1__NOTICE_REASON__NOTICE_REASON_EXPIRED,
               "DeadlineKind and NoticeReason share numbers");

enum {
    DL_DELIVER = CASENET__V1__DEADLINE_KIND__DEADLINE_KIND_DELIVER,
    DL_ACCEPT = CASENET__V1__DEADLINE_KIND__DEADLINE_KIND_ACCEPT,
    DL_EXPIRE = CASENET__V1__DEADLINE_KIND__DEADLINE_KIND_EXPIRE,
    DS_MET = CASENET__V1__DEADLINE_STATE__DEADLINE_STATE_MET,
    DS_BREACHED = CASENET__V1__DEADLINE_STATE__DEADLINE_STATE_BREACHED,
    DS_VOID = CASENET__V1__DEADLINE_STATE__DEADLINE_STATE_VOID,
};

/* Kinds whose recipient is asked to act, and so to accept or decline. */
static bool takes_accept(int kind)
{
    return kind == CASENET_KIND_REFERRAL || kind == CASENET_KIND_INFO_REQUEST ||
           kind == CASENET_KIND_TAKEDOWN_REQUEST;
}

int deadlines_arm(struct broker *b, const struct store_inbox_row *row, int64_t expires_at_ms)
{
    struct store *s = b->store;
    if (row->kind == CASENET_KIND_RECEIPT || row->kind == CASENET_KIND_ESCALATION ||
        row->kind == CASENET_KIND_DEAD_LETTER)
        return CASENET_OK;
    const struct policy_entry *p = policy_for(&b->policy, row->urgency);
    int rc = CASENET_OK;
    if (p->deliver_ms > 0)
        rc = store_deadline_arm(s, row->seq, DL_DELIVER, row->received_at_ms + p->deliver_ms);
    if (rc == CASENET_OK && p->accept_ms > 0 && takes_accept(row->kind))
        rc = store_deadline_arm(s, row->seq, DL_ACCEPT, row->received_at_ms + p->accept_ms);
    if (rc == CASENET_OK && expires_at_ms > 0)
        rc = store_deadline_arm(s, row->seq, DL_EXPIRE, expires_at_ms);
    return rc;
}

/* ------------------------------------------------------------ notices */

/* Adds id to to[] when it is an active member with a box key whose inbox
 * holds fewer than max_inbox_backlog queued rows: a broker notice obeys the
 * backlog cap like any message (the breach is audited and listed by
 * ListOverdue all the same). Returns the store's error. */
static int add_if_active(struct broker *b, const char *id, const char **to, size_t *n)
{
    casenet_member m;
    if (casenet_directory_find(b->dir, id, &m) != CASENET_OK || m.status != CASENET_MEMBER_ACTIVE ||
        !m.box_pk)
        return CASENET_OK;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(to[i], m.id) == 0)
            return CASENET_OK;
    }
    uint32_t max = b->cfg->limits.max_inbox_backlog;
    uint64_t queued = 0;
    if (max) {
        int rc = store_inbox_backlog(b->store, m.id, b->broker_id, &queued, NULL);
        if (rc != CASENET_OK)
            return rc;
        if (queued >= max) {
            log_event(LOG_WARN, "notice_not_queued", "member", m.id, "queued", log_u64(queued),
                      "msg", "the inbox is at its backlog limit", NULL);
            return CASENET_OK;
        }
    }
    to[(*n)++] = m.id;
    return CASENET_OK;
}

/* The recipients of a notice about sender's message: the sender and every
 * active coordinator (add_if_active). *to is malloc'd. */
static int escalation_recipients(struct broker *b, const char *sender, const char ***to, size_t *n)
{
    *n = 0;
    *to = calloc(casenet_directory_count(b->dir) + 1, sizeof **to);
    if (!*to)
        return CASENET_ENOMEM;
    int rc = add_if_active(b, sender, *to, n);
    for (size_t i = 0; rc == CASENET_OK && i < casenet_directory_count(b->dir); i++) {
        casenet_member c;
        if (casenet_directory_at(b->dir, i, &c) == CASENET_OK &&
            casenet_member_has_role(&c, CN_ROLE_COORDINATOR))
            rc = add_if_active(b, c.id, *to, n);
    }
    return rc;
}

/* Seals payload as a broker notice of kind about m to the n members in to,
 * then stores it as a message with its inbox rows (queued, pushed after
 * commit). audit_index is the ESCALATED / DEAD_LETTERED event the notice
 * belongs to: the notice's own submit receipt names it. */
static int store_notice(struct broker *b, struct batch *bt, int64_t now, const casenet_buf *env,
                        const uint8_t id[CASENET_MESSAGE_ID_BYTES], uint64_t audit_index)
{
    struct store *s = b->store;
    casenet_message_info info = {0};
    casenet_buf receipt = {0};
    int rc = casenet_envelope_verify(b->dir, env->data, env->len, &info);
    if (rc != CASENET_OK) {
        log_event(LOG_ERROR, "notice_verify", "error", casenet_errname(rc), NULL);
        return rc == CASENET_ENOMEM ? rc : CASENET_EUNAVAIL;
    }
    casenet_submit_receipt sr = {0};
    memcpy(sr.message_id, id, sizeof sr.message_id);
    memcpy(sr.envelope_hash, info.envelope_hash, sizeof sr.envelope_hash);
    sr.accepted_at_ms = now;
    sr.audit_index = audit_index;
    snprintf(sr.broker_id, sizeof sr.broker_id, "%s", b->broker_id);
    if ((rc = casenet_submit_receipt_sign(b->keys, &sr, &receipt)) != CASENET_OK)
        goto cleanup;
    struct store_message m = {0};
    memcpy(m.message_id, id, sizeof m.message_id);
    snprintf(m.sender, sizeof m.sender, "%s", info.sender);
    m.kind = (int)info.kind;
    m.urgency = (int)info.urgency;
    m.msg_status = (int)info.status;
    m.created_at_ms = info.created_at_ms;
    m.expires_at_ms = 0;
    m.received_at_ms = now;
    m.has_in_reply_to = info.has_in_reply_to;
    memcpy(m.in_reply_to, info.in_reply_to, sizeof m.in_reply_to);
    m.has_case_ref = info.has_case_ref;
    memcpy(m.case_ref, info.case_ref, sizeof m.case_ref);
    memcpy(m.envelope_hash, info.envelope_hash, sizeof m.envelope_hash);
    m.size = env->len > UINT32_MAX ? UINT32_MAX : (uint32_t)env->len;
    m.audit_index = audit_index;
    m.envelope = *env;   /* borrowed */
    m.receipt = receipt; /* borrowed */
    if ((rc = store_message_insert(s, &m)) != CASENET_OK)
        goto cleanup;
    for (size_t i = 0; i < info.n_recipients; i++) {
        struct store_inbox_row row;
        inbox_row_for(&row, info.recipients[i], &m, now);
        if ((rc = store_inbox_insert(s, &row)) != CASENET_OK ||
            (rc = batch_queue_notice(bt, &row)) != CASENET_OK)
            goto cleanup;
    }
    rc = CASENET_OK;
cleanup:
    if (rc == CASENET_ECONFLICT)
        rc = CASENET_EUNAVAIL; /* a fresh random id cannot collide: the store is confused */
    casenet_buf_free(&receipt);
    casenet_message_info_clear(&info);
    return rc;
}

/* Seals a BrokerNotice about m to `to`. CASENET_OK with *env set, or the
 * seal error (logged). */
static int seal_notice(struct broker *b, int kind, const struct store_message *m,
                       const Casenet__V1__BrokerNotice *notice, const char *const *to, size_t n,
                       casenet_buf *env, uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    p.body_case = CASENET__V1__PAYLOAD__BODY_NOTICE;
    p.notice = (Casenet__V1__BrokerNotice *)notice;
    size_t len = casenet__v1__payload__get_packed_size(&p);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return CASENET_ENOMEM;
    casenet__v1__payload__pack(&p, buf);
    casenet_seal_opts o = {
        .kind = (casenet_kind)kind,
        .urgency = (casenet_urgency)m->urgency,
        .status = (casenet_msg_status)m->msg_status,
        .to = to,
        .n_to = n,
        .in_reply_to = m->message_id,
        .case_ref = m->has_case_ref ? m->case_ref : NULL,
    };
    int rc = casenet_seal(b->keys, b->dir, &o, buf, len, env, id);
    free(buf);
    if (rc != CASENET_OK)
        log_event(LOG_ERROR, "notice_unsealed", "msg",
                  log_hex(m->message_id, CASENET_MESSAGE_ID_BYTES), "error", casenet_errname(rc),
                  "hint", "is the broker listed in the directory with its current keys?", NULL);
    return rc;
}

/* ------------------------------------------------------------ escalation */

/* The first time one of the recipient's receipts met deadline kind, or -1. */
static int first_met_at(struct store *s, const struct store_message *m, const char *recipient,
                        int kind, int64_t *at)
{
    struct store_receipt_rec *recs = NULL;
    size_t n = 0;
    int rc = store_receipt_list(s, m->message_id, recipient, &recs, &n);
    if (rc != CASENET_OK)
        return rc;
    *at = -1;
    for (size_t i = 0; i < n; i++) {
        bool meets = kind == DL_DELIVER ? true
                                        : recs[i].status == CASENET_RECEIPT_ACCEPTED ||
                                              recs[i].status == CASENET_RECEIPT_DECLINED;
        if (meets && (*at < 0 || recs[i].received_at_ms < *at))
            *at = recs[i].received_at_ms;
    }
    store_receipt_recs_free(recs, n);
    return CASENET_OK;
}

static int escalate(struct broker *b, struct batch *bt, int64_t now, const struct store_deadline *d,
                    const struct store_inbox_row *row, const struct store_message *m)
{
    struct store *s = b->store;
    const char **to = NULL;
    size_t n = 0;
    /* Beyond the sender's budget the breach is audited, settled and listed
     * by ListOverdue, and notified in the period's summary. */
    bool notify = limits_take_escalation(b->limits, m->sender, m->message_id, now);
    int rc = notify ? escalation_recipients(b, m->sender, &to, &n) : CASENET_OK;
    if (rc != CASENET_OK) {
        free(to);
        return rc;
    }
    Casenet__V1__BrokerNotice notice = CASENET__V1__BROKER_NOTICE__INIT;
    notice.reason = (Casenet__V1__NoticeReason)d->kind;
    notice.message_id.data = (uint8_t *)m->message_id;
    notice.message_id.len = sizeof m->message_id;
    notice.sender = (char *)m->sender;
    notice.recipient = (char *)row->recipient;
    notice.urgency = (Casenet__V1__Urgency)m->urgency;
    notice.due_at_ms = d->due_ms;
    notice.raised_at_ms = now;
    notice.message_status = (Casenet__V1__MessageStatus)m->msg_status;
    casenet_buf env = {0};
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    bool sealed = false;
    if (n > 0) {
        rc = seal_notice(b, CASENET_KIND_ESCALATION, m, &notice, to, n, &env, id);
        if (rc == CASENET_ENOMEM)
            goto cleanup;
        sealed = rc == CASENET_OK;
    }
    uint64_t index = 0;
    if ((rc = audit_escalated(s, now, m, row->recipient, d->kind, d->due_ms, sealed ? id : NULL,
                              &index)) != CASENET_OK)
        goto cleanup;
    if (sealed && (rc = store_notice(b, bt, now, &env, id, index)) != CASENET_OK)
        goto cleanup;
    rc = store_deadline_settle(s, d->id, DS_BREACHED, now, sealed ? id : NULL);
    metrics_escalated_if(rc == CASENET_OK && sealed);
    if (rc == CASENET_OK)
        log_event(LOG_WARN, "escalated", "msg", log_hex(m->message_id, CASENET_MESSAGE_ID_BYTES),
                  "recipient", row->recipient, "deadline",
                  d->kind == DL_DELIVER ? "deliver" : "accept", "status",
                  casenet_msg_status_name(m->msg_status), "notified", log_u64(sealed ? n : 0),
                  "summarized", notify ? NULL : "yes", "audit_index", log_u64(index), NULL);
cleanup:
    casenet_buf_free(&env);
    free(to);
    return rc;
}

/* What a summary needs besides the period (limits_escalation_periods). */
struct summary_ctx {
    struct broker *b;
    struct batch *bt;
    int64_t now;
};

/* One ESCALATION_SUMMARY notice for a sender's period: to the sender and
 * the coordinators, about the last breach it counts (its message gives the
 * notice's urgency, status and case), with an ESCALATED event. */
static int escalation_summary(void *arg, const struct limits_esc_summary *sum)
{
    const struct summary_ctx *x = arg;
    struct broker *b = x->b;
    struct store *s = b->store;
    struct store_message m = {0};
    const char **to = NULL;
    size_t n = 0;
    casenet_buf env = {0};
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    bool sealed = false;
    int rc = store_message_get(s, sum->last_id, false, &m);
    if (rc == CASENET_ENOTFOUND)
        return CASENET_OK; /* purged meanwhile: its breaches are in the log */
    if (rc != CASENET_OK || (rc = escalation_recipients(b, sum->sender, &to, &n)) != CASENET_OK)
        goto cleanup;
    Casenet__V1__BrokerNotice notice = CASENET__V1__BROKER_NOTICE__INIT;
    notice.reason = CASENET__V1__NOTICE_REASON__NOTICE_REASON_ESCALATION_SUMMARY;
    notice.message_id.data = m.message_id;
    notice.message_id.len = sizeof m.message_id;
    notice.sender = m.sender;
    notice.urgency = (Casenet__V1__Urgency)m.urgency;
    notice.raised_at_ms = x->now;
    notice.message_status = (Casenet__V1__MessageStatus)m.msg_status;
    notice.summarized = sum->summarized;
    notice.period_start_ms = sum->period_start_ms;
    if (n > 0) {
        rc = seal_notice(b, CASENET_KIND_ESCALATION, &m, &notice, to, n, &env, id);
        if (rc == CASENET_ENOMEM)
            goto cleanup;
        sealed = rc == CASENET_OK;
    }
    uint64_t index = 0;
    if ((rc = audit_escalation_summary(s, x->now, &m, sum->summarized, sum->period_start_ms,
                                       sealed ? id : NULL, &index)) != CASENET_OK)
        goto cleanup;
    if (sealed && (rc = store_notice(b, x->bt, x->now, &env, id, index)) != CASENET_OK)
        goto cleanup;
    log_event(LOG_WARN, "escalation_summary", "sender", sum->sender, "summarized",
              log_u64(sum->summarized), "notified", log_u64(sealed ? n : 0), "audit_index",
              log_u64(index), NULL);
cleanup:
    casenet_buf_free(&env);
    free(to);
    store_message_clear(&m);
    return rc;
}

/* ------------------------------------------------------------ dead letters */

static int dead_letter(struct broker *b, struct batch *bt, int64_t now,
                       const struct store_message *m)
{
    struct store *s = b->store;
    struct store_inbox_row *rows = NULL;
    size_t n_rows = 0, n_dead = 0;
    const char **dead = NULL;
    casenet_buf env = {0};
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    bool sealed = false;
    int rc = store_inbox_of_message(s, m->message_id, &rows, &n_rows);
    if (rc != CASENET_OK)
        return rc;
    rc = CASENET_ENOMEM;
    dead = calloc(n_rows + 1, sizeof *dead);
    if (!dead)
        goto cleanup;
    for (size_t i = 0; i < n_rows; i++) {
        if (rows[i].state == CASENET_INBOX_QUEUED || rows[i].state == CASENET_INBOX_FETCHED)
            dead[n_dead++] = rows[i].recipient;
    }
    rc = CASENET_OK;
    if (n_dead == 0)
        goto cleanup;

    const char *to[1];
    size_t n_to = 0;
    if ((rc = add_if_active(b, m->sender, to, &n_to)) != CASENET_OK)
        goto cleanup;
    if (n_to > 0) {
        Casenet__V1__BrokerNotice notice = CASENET__V1__BROKER_NOTICE__INIT;
        notice.reason = CASENET__V1__NOTICE_REASON__NOTICE_REASON_EXPIRED;
        notice.message_id.data = (uint8_t *)m->message_id;
        notice.message_id.len = sizeof m->message_id;
        notice.sender = (char *)m->sender;
        notice.recipient = (char *)dead[0];
        notice.recipients = (char **)dead;
        notice.n_recipients = n_dead;
        notice.urgency = (Casenet__V1__Urgency)m->urgency;
        notice.due_at_ms = m->expires_at_ms;
        notice.raised_at_ms = now;
        notice.message_status = (Casenet__V1__MessageStatus)m->msg_status;
        rc = seal_notice(b, CASENET_KIND_DEAD_LETTER, m, &notice, to, n_to, &env, id);
        if (rc == CASENET_ENOMEM)
            goto cleanup;
        sealed = rc == CASENET_OK;
    }
    uint64_t index = 0;
    if ((rc = audit_dead_lettered(s, now, m, dead, n_dead, sealed ? id : NULL, &index)) !=
        CASENET_OK)
        goto cleanup;
    if (sealed && (rc = store_notice(b, bt, now, &env, id, index)) != CASENET_OK)
        goto cleanup;
    for (size_t i = 0; i < n_rows; i++) {
        if (rows[i].state != CASENET_INBOX_QUEUED && rows[i].state != CASENET_INBOX_FETCHED)
            continue;
        if ((rc = store_inbox_set_state(s, rows[i].seq, CASENET_INBOX_DEAD, now)) != CASENET_OK)
            goto cleanup;
        struct store_deadline *ds = NULL;
        size_t nd = 0;
        if ((rc = store_deadline_list(s, rows[i].seq, &ds, &nd)) != CASENET_OK)
            goto cleanup;
        /* The row is dead: its expiry was breached, and a deliver or accept
         * deadline still pending can no longer be met or missed (void). */
        for (size_t j = 0; j < nd && rc == CASENET_OK; j++) {
            if (ds[j].kind != DL_EXPIRE)
                rc = store_deadline_settle(s, ds[j].id, DS_VOID, now, NULL);
            else
                rc = store_deadline_settle(s, ds[j].id, DS_BREACHED, now, sealed ? id : NULL);
            if (rc == CASENET_ENOTFOUND)
                rc = CASENET_OK; /* already settled */
        }
        free(ds);
        if (rc != CASENET_OK)
            goto cleanup;
    }
    log_event(LOG_WARN, "dead_lettered", "msg", log_hex(m->message_id, CASENET_MESSAGE_ID_BYTES),
              "recipients", log_u64(n_dead), "status", casenet_msg_status_name(m->msg_status),
              "audit_index", log_u64(index), NULL);
    rc = CASENET_OK;
cleanup:
    casenet_buf_free(&env);
    free(dead);
    store_inbox_rows_free(rows, n_rows);
    return rc;
}

/* ------------------------------------------------------------ the pass */

static int settle_one(struct broker *b, struct batch *bt, int64_t now,
                      const struct store_deadline *d)
{
    struct store *s = b->store;
    struct store_inbox_row row = {0};
    struct store_message m = {0};
    int rc = store_inbox_get_seq(s, d->seq, &row);
    if (rc == CASENET_OK)
        rc = store_message_get(s, row.message_id, false, &m);
    if (rc == CASENET_ENOTFOUND) {
        rc = store_deadline_settle(s, d->id, DS_VOID, now, NULL);
        goto cleanup;
    }
    if (rc != CASENET_OK)
        goto cleanup;
    if (d->kind == DL_EXPIRE) {
        if (row.state == CASENET_INBOX_QUEUED || row.state == CASENET_INBOX_FETCHED)
            rc = dead_letter(b, bt, now, &m); /* settles d with the others */
        else
            rc = store_deadline_settle(s, d->id, row.state == CASENET_INBOX_DEAD ? DS_VOID : DS_MET,
                                       now, NULL);
        goto cleanup;
    }
    if (row.state == CASENET_INBOX_DEAD || (d->kind != DL_DELIVER && d->kind != DL_ACCEPT)) {
        rc = store_deadline_settle(s, d->id, DS_VOID, now, NULL);
        goto cleanup;
    }
    bool reached = d->kind == DL_DELIVER ? row.state >= CASENET_INBOX_DELIVERED
                                         : row.state >= CASENET_INBOX_ACCEPTED;
    if (reached) {
        int64_t at = -1;
        if ((rc = first_met_at(s, &m, row.recipient, d->kind, &at)) != CASENET_OK)
            goto cleanup;
        if (at >= 0 && at <= d->due_ms) {
            rc = store_deadline_settle(s, d->id, DS_MET, now, NULL);
            goto cleanup;
        }
    }
    rc = escalate(b, bt, now, d, &row, &m);
cleanup:
    if (rc == CASENET_ENOTFOUND)
        rc = CASENET_OK; /* settled meanwhile (e.g. by its message's dead letter) */
    store_inbox_row_clear(&row);
    store_message_clear(&m);
    return rc;
}

int deadlines_run(struct broker *b, struct batch *bt, int64_t now_ms, uint32_t limit,
                  size_t *settled)
{
    struct store *s = b->store;
    struct store_deadline *due = NULL;
    size_t n = 0;
    *settled = 0;
    struct summary_ctx sc = {.b = b, .bt = bt, .now = now_ms};
    int rc = limits_escalation_periods(b->limits, now_ms, escalation_summary, &sc);
    if (rc == CASENET_OK)
        rc = store_deadline_due(s, now_ms, limit, &due, &n);
    for (size_t i = 0; rc == CASENET_OK && i < n; i++)
        rc = settle_one(b, bt, now_ms, &due[i]);
    free(due);
    if (rc == CASENET_EUNAVAIL)
        bt->store_failed = true;
    if (rc == CASENET_OK)
        *settled = n;
    return rc;
}
