/* lifecycle.c - GetStatus, ListSent and ListOverdue (see lifecycle.h). */
#include "lifecycle.h"

#include "inbox_row.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT    100u
#define PAGE_MAX        1000u
#define SENT_SCAN_PAGES 8u /* ListSent examines at most this many times limit */

/* Everything a reply under construction points to, released at once. */
struct pool {
    void **ptrs;
    size_t n, cap;
    struct store_message *msgs[SENT_SCAN_PAGES]; /* sent_list pages */
    size_t n_msgs[SENT_SCAN_PAGES], n_pages;
    struct store_inbox_row *rows[SENT_SCAN_PAGES]; /* and their sent_rows */
    size_t n_rows[SENT_SCAN_PAGES];
    struct store_deadline *ds[SENT_SCAN_PAGES];
    size_t n_ds[SENT_SCAN_PAGES];
};

static void *pool_calloc(struct pool *p, size_t n, size_t size)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 32;
        void **q = realloc(p->ptrs, cap * sizeof *q);
        if (!q)
            return NULL;
        p->ptrs = q;
        p->cap = cap;
    }
    void *x = calloc(n ? n : 1, size);
    if (x)
        p->ptrs[p->n++] = x;
    return x;
}

/* Takes ownership of a malloc'd block (freed with the pool). */
static int pool_keep(struct pool *p, void *x)
{
    if (!x)
        return CASENET_OK;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 32;
        void **q = realloc(p->ptrs, cap * sizeof *q);
        if (!q) {
            free(x);
            return CASENET_ENOMEM;
        }
        p->ptrs = q;
        p->cap = cap;
    }
    p->ptrs[p->n++] = x;
    return CASENET_OK;
}

static void pool_free(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->ptrs[i]);
    free(p->ptrs);
    for (size_t i = 0; i < p->n_pages; i++) {
        store_messages_free(p->msgs[i], p->n_msgs[i]);
        store_inbox_rows_free(p->rows[i], p->n_rows[i]);
        free(p->ds[i]);
    }
    memset(p, 0, sizeof *p);
}

/* Hands an array of receipts and their buffers to the pool: the reply
 * points into the buffers. */
static int keep_recs(struct pool *p, struct store_receipt_rec *r, size_t n)
{
    int rc = CASENET_OK;
    for (size_t i = 0; i < n; i++) {
        if (rc == CASENET_OK)
            rc = pool_keep(p, r[i].signed_receipt.data);
        else
            casenet_buf_free(&r[i].signed_receipt);
    }
    if (rc != CASENET_OK) {
        free(r);
        return rc;
    }
    return pool_keep(p, r);
}

static int oom(struct req *c)
{
    return req_fail(c, CASENET_ENOMEM, "out of memory; retry later or ask for a smaller page");
}

static int store_err(struct req *c, int rc)
{
    if (rc == CASENET_ENOMEM)
        return oom(c);
    c->bt->store_failed = true;
    return req_fail(c, CASENET_EUNAVAIL, "the broker could not read its store; retry later");
}

/* The inbox state a receipt status moves a row to. */
static int receipt_state(int status)
{
    return status >= CASENET_RECEIPT_DELIVERED && status <= CASENET_RECEIPT_COMPLETED
               ? status + (CASENET_INBOX_DELIVERED - CASENET_RECEIPT_DELIVERED)
               : -1;
}

/* Deadlines read ahead for a page of rows (sent_rows), in (seq, kind)
 * order; NULL: each row's are read when needed. */
struct deadlines_ahead {
    const struct store_deadline *ds;
    size_t n;
};

/* Fills rs for row (of message m): state, deadlines (from ahead when not
 * NULL) and, with steps, every step with its signed receipt. Everything rs
 * points to is in the pool or in row / m / ahead (which must outlive the
 * reply). */
static int fill_recipient(struct broker *b, struct pool *p, const struct store_message *m,
                          const struct store_inbox_row *row, bool steps,
                          const struct deadlines_ahead *ahead, Casenet__V1__RecipientStatus *rs)
{
    struct store *s = b->store;
    casenet__v1__recipient_status__init(rs);
    rs->recipient = (char *)row->recipient;
    rs->state = (Casenet__V1__InboxState)row->state;

    const struct store_deadline *ds = NULL;
    size_t nd = 0;
    int rc = CASENET_OK;
    if (ahead) {
        size_t lo = 0, hi = ahead->n; /* the first with seq >= row->seq */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ahead->ds[mid].seq < row->seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        ds = ahead->n ? ahead->ds + lo : NULL; /* none ahead: no array at all */
        while (lo + nd < ahead->n && ahead->ds[lo + nd].seq == row->seq)
            nd++;
    } else {
        struct store_deadline *own = NULL;
        if ((rc = store_deadline_list(s, row->seq, &own, &nd)) != CASENET_OK ||
            (rc = pool_keep(p, own)) != CASENET_OK)
            return rc;
        ds = own;
    }
    Casenet__V1__Deadline *dl = pool_calloc(p, nd, sizeof *dl);
    Casenet__V1__Deadline **dlp = pool_calloc(p, nd, sizeof *dlp);
    if (!dl || !dlp)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < nd; i++) {
        casenet__v1__deadline__init(&dl[i]);
        dl[i].kind = (Casenet__V1__DeadlineKind)ds[i].kind;
        dl[i].due_at_ms = ds[i].due_ms;
        dl[i].state = (Casenet__V1__DeadlineState)ds[i].state;
        dl[i].settled_at_ms = ds[i].settled_at_ms;
        if (ds[i].has_notice)
            pb_set_bytes(&dl[i].notice_id, ds[i].notice_id, sizeof ds[i].notice_id);
        dlp[i] = &dl[i];
    }
    rs->deadlines = dlp;
    rs->n_deadlines = nd;
    if (!steps)
        return CASENET_OK;

    struct store_step *st = NULL;
    size_t nst = 0;
    struct store_receipt_rec *recs = NULL;
    size_t nrec = 0;
    if ((rc = store_step_list(s, row->seq, &st, &nst)) != CASENET_OK ||
        (rc = pool_keep(p, st)) != CASENET_OK)
        return rc;
    if ((rc = store_receipt_list(s, m->message_id, row->recipient, &recs, &nrec)) != CASENET_OK ||
        (rc = keep_recs(p, recs, nrec)) != CASENET_OK)
        return rc;
    Casenet__V1__Step *sp = pool_calloc(p, nst + nrec + 1, sizeof *sp);
    Casenet__V1__Step **spp = pool_calloc(p, nst + nrec + 1, sizeof *spp);
    if (!sp || !spp)
        return CASENET_ENOMEM;
    size_t k = 0;
    casenet__v1__step__init(&sp[k]);
    sp[k].state = CASENET__V1__INBOX_STATE__INBOX_STATE_QUEUED;
    sp[k].at_ms = row->received_at_ms;
    sp[k].actor = (char *)m->sender;
    k++;
    for (size_t i = 0; i < nst; i++, k++) {
        casenet__v1__step__init(&sp[k]);
        sp[k].state = (Casenet__V1__InboxState)st[i].state;
        sp[k].at_ms = st[i].at_ms;
        sp[k].actor = (char *)(st[i].state == CASENET_INBOX_DEAD ? "" : row->recipient);
        for (size_t j = 0; j < nrec; j++) {
            if (receipt_state(recs[j].status) == st[i].state) {
                pb_set_bytes(&sp[k].receipt, recs[j].signed_receipt.data,
                             recs[j].signed_receipt.len);
                break;
            }
        }
    }
    /* Receipts recorded before steps were (an older schema): one step each. */
    for (size_t j = 0; j < nrec; j++) {
        bool shown = false;
        for (size_t i = 0; i < nst; i++)
            shown = shown || receipt_state(recs[j].status) == st[i].state;
        if (shown)
            continue;
        casenet__v1__step__init(&sp[k]);
        sp[k].state = (Casenet__V1__InboxState)receipt_state(recs[j].status);
        sp[k].at_ms = recs[j].received_at_ms;
        sp[k].actor = (char *)row->recipient;
        pb_set_bytes(&sp[k].receipt, recs[j].signed_receipt.data, recs[j].signed_receipt.len);
        k++;
    }
    for (size_t i = 0; i < k; i++)
        spp[i] = &sp[i];
    rs->steps = spp;
    rs->n_steps = k;
    return CASENET_OK;
}

/* Fills rec for m with the given rows (borrowed: must outlive the reply);
 * ahead as for fill_recipient. */
static int fill_record(struct broker *b, struct pool *p, const struct store_message *m,
                       const struct store_inbox_row *rows, const size_t *which, size_t n,
                       bool steps, const struct deadlines_ahead *ahead,
                       Casenet__V1__MessageRecord *rec)
{
    casenet__v1__message_record__init(rec);
    pb_set_bytes(&rec->message_id, m->message_id, sizeof m->message_id);
    rec->sender = (char *)m->sender;
    rec->kind = (Casenet__V1__Kind)m->kind;
    rec->urgency = (Casenet__V1__Urgency)m->urgency;
    rec->message_status = (Casenet__V1__MessageStatus)m->msg_status;
    rec->created_at_ms = m->created_at_ms;
    rec->received_at_ms = m->received_at_ms;
    rec->expires_at_ms = m->expires_at_ms;
    if (m->has_in_reply_to)
        pb_set_bytes(&rec->in_reply_to, m->in_reply_to, sizeof m->in_reply_to);
    if (m->has_case_ref)
        pb_set_bytes(&rec->case_ref, m->case_ref, sizeof m->case_ref);
    pb_set_bytes(&rec->envelope_hash, m->envelope_hash, sizeof m->envelope_hash);
    pb_set_bytes(&rec->broker_receipt, m->receipt.data, m->receipt.len);
    rec->cursor = m->row;
    Casenet__V1__RecipientStatus *rs = pool_calloc(p, n, sizeof *rs);
    Casenet__V1__RecipientStatus **rsp = pool_calloc(p, n, sizeof *rsp);
    if (!rs || !rsp)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = fill_recipient(b, p, m, &rows[which[i]], steps, ahead, &rs[i]);
        if (rc != CASENET_OK)
            return rc;
        rsp[i] = &rs[i];
    }
    rec->recipients = rsp;
    rec->n_recipients = n;
    return CASENET_OK;
}

/* ------------------------------------------------------------ GetStatus */

int lifecycle_get_status(struct req *c, const Casenet__V1__Request *q)
{
    struct broker *b = c->b;
    const char *member = c->member;
    const Casenet__V1__GetStatus *req = q->get_status;
    Casenet__V1__Response *resp = &c->resp;
    struct store *s = b->store;
    struct store_message m = {0};
    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    struct pool p = {0};
    if (req->message_id.len != CASENET_MESSAGE_ID_BYTES) {
        return req_fail(c, CASENET_EBADREQ, "a message id is %d bytes", CASENET_MESSAGE_ID_BYTES);
    }
    int rc = store_message_get(s, req->message_id.data, false, &m);
    if (rc == CASENET_OK)
        rc = store_inbox_of_message(s, m.message_id, &rows, &n);
    if (rc != CASENET_OK && rc != CASENET_ENOTFOUND) {
        rc = store_err(c, rc);
        goto cleanup;
    }
    size_t *which = rc == CASENET_OK ? pool_calloc(&p, n, sizeof *which) : NULL;
    size_t shown = 0;
    if (rc == CASENET_OK && !which) {
        rc = oom(c);
        goto cleanup;
    }
    if (rc == CASENET_OK) {
        bool all = strcmp(member, m.sender) == 0 || broker_is_coordinator(b, member);
        for (size_t i = 0; i < n; i++) {
            if (all || strcmp(rows[i].recipient, member) == 0)
                which[shown++] = i;
        }
        if (!all && shown == 0)
            rc = CASENET_ENOTFOUND;
    }
    if (rc == CASENET_ENOTFOUND) {
        rc = req_fail(c, rc, "no message %s that you sent, received or may see as a coordinator",
                      log_hex(req->message_id.data, CASENET_MESSAGE_ID_BYTES));
        goto cleanup;
    }
    Casenet__V1__MessageRecord rec;
    if ((rc = fill_record(b, &p, &m, rows, which, shown, true, NULL, &rec)) != CASENET_OK) {
        rc = store_err(c, rc);
        goto cleanup;
    }
    Casenet__V1__StatusReply reply = CASENET__V1__STATUS_REPLY__INIT;
    reply.message = &rec;
    resp->body_case = CASENET__V1__RESPONSE__BODY_STATUS;
    resp->status = &reply;
    rc = req_reply(c);
cleanup:
    pool_free(&p);
    store_inbox_rows_free(rows, n);
    store_message_clear(&m);
    return rc;
}

/* ------------------------------------------------------------ ListSent */

/* A message is open while a recipient has not settled it: for kinds that ask
 * to act, until declined, completed or dead; for the others, until
 * delivered or dead. */
static bool is_open(int kind, const struct store_inbox_row *rows, size_t n)
{
    bool act = kind == CASENET_KIND_REFERRAL || kind == CASENET_KIND_INFO_REQUEST ||
               kind == CASENET_KIND_TAKEDOWN_REQUEST;
    for (size_t i = 0; i < n; i++) {
        int st = rows[i].state;
        if (st == CASENET_INBOX_QUEUED || st == CASENET_INBOX_FETCHED)
            return true;
        if (act && (st == CASENET_INBOX_DELIVERED || st == CASENET_INBOX_ACCEPTED))
            return true;
    }
    return false;
}

struct sent_item {
    const struct store_message *m;
    const struct store_inbox_row *rows; /* in its page's sent_rows */
    size_t n_rows;
    const struct deadlines_ahead *ahead;
};

int lifecycle_list_sent(struct req *c, const Casenet__V1__Request *q)
{
    struct broker *b = c->b;
    const char *member = c->member;
    const Casenet__V1__ListSent *req = q->list_sent;
    Casenet__V1__Response *resp = &c->resp;
    struct store *s = b->store;
    struct pool p = {0};
    struct deadlines_ahead ahead[SENT_SCAN_PAGES];
    uint32_t limit = req->limit ? req->limit : PAGE_DEFAULT;
    if (limit > PAGE_MAX)
        limit = PAGE_MAX;
    struct sent_item *items = calloc(limit, sizeof *items);
    Casenet__V1__MessageRecord *recs = calloc(limit, sizeof *recs);
    Casenet__V1__MessageRecord **recp = calloc(limit, sizeof *recp);
    size_t n_items = 0;
    uint64_t cursor = req->cursor;
    bool more = true;
    int rc = CASENET_OK;
    if (!items || !recs || !recp) {
        rc = oom(c);
        goto cleanup;
    }
    /* Pages of the sender's messages, filtered, until the page is full, the
     * list ends, or enough was examined (the cursor then continues). Each
     * page's rows and deadlines are read at once (sent_rows), not per
     * message. */
    while (n_items < limit && more && p.n_pages < SENT_SCAN_PAGES) {
        size_t pg = p.n_pages;
        uint64_t after = cursor;
        rc = store_sent_list(s, member, cursor, limit, &p.msgs[pg], &p.n_msgs[pg], &more);
        if (rc == CASENET_OK && p.n_msgs[pg] > 0)
            rc = store_sent_rows(s, member, after, p.msgs[pg][p.n_msgs[pg] - 1].row, &p.rows[pg],
                                 &p.n_rows[pg], &p.ds[pg], &p.n_ds[pg]);
        p.n_pages++;
        if (rc != CASENET_OK) {
            rc = store_err(c, rc);
            goto cleanup;
        }
        ahead[pg] = (struct deadlines_ahead){p.ds[pg], p.n_ds[pg]};
        const struct store_inbox_row *rows = p.rows[pg];
        size_t nm = p.n_msgs[pg], nr = p.n_rows[pg], r = 0, i = 0;
        for (; i < nm && n_items < limit; i++) {
            const struct store_message *m = &p.msgs[pg][i];
            cursor = m->row;
            while (r < nr && (uint64_t)rows[r].msg_row < m->row)
                r++;
            size_t first = r;
            while (r < nr && (uint64_t)rows[r].msg_row == m->row)
                r++;
            if (req->kind && (int)req->kind != m->kind)
                continue;
            if (req->open_only && !is_open(m->kind, rows + first, r - first))
                continue;
            items[n_items++] = (struct sent_item){m, rows + first, r - first, &ahead[pg]};
        }
        if (i < nm)
            more = true; /* stopped inside this page */
    }
    for (size_t i = 0; i < n_items; i++) {
        size_t *which = pool_calloc(&p, items[i].n_rows, sizeof *which);
        if (!which) {
            rc = oom(c);
            goto cleanup;
        }
        for (size_t j = 0; j < items[i].n_rows; j++)
            which[j] = j;
        rc = fill_record(b, &p, items[i].m, items[i].rows, which, items[i].n_rows, false,
                         items[i].ahead, &recs[i]);
        if (rc != CASENET_OK) {
            rc = store_err(c, rc);
            goto cleanup;
        }
        recp[i] = &recs[i];
    }
    Casenet__V1__SentPage page = CASENET__V1__SENT_PAGE__INIT;
    page.messages = recp;
    page.n_messages = n_items;
    page.next_cursor = cursor;
    page.more = more;
    resp->body_case = CASENET__V1__RESPONSE__BODY_SENT;
    resp->sent = &page;
    rc = req_reply(c);
cleanup:
    free(items);
    free(recs);
    free(recp);
    pool_free(&p);
    return rc;
}

/* ------------------------------------------------------------ ListOverdue */

int lifecycle_list_overdue(struct req *c, const Casenet__V1__Request *q)
{
    struct broker *b = c->b;
    const char *member = c->member;
    const Casenet__V1__ListOverdue *req = q->list_overdue;
    Casenet__V1__Response *resp = &c->resp;
    struct store *s = b->store;
    if (!broker_is_coordinator(b, member)) {
        return req_fail(c, CASENET_EFORBIDDEN,
                        "only coordinators see the network's overdue referrals; see your own "
                        "with ListSent (casenet cases)");
    }
    uint32_t limit = req->limit ? req->limit : PAGE_DEFAULT;
    if (limit > PAGE_MAX)
        limit = PAGE_MAX;
    struct store_overdue *rows = NULL;
    size_t n = 0;
    bool more = false;
    int rc = store_overdue_list(s, req->cursor, limit, &rows, &n, &more);
    if (rc != CASENET_OK)
        return store_err(c, rc);
    Casenet__V1__OverdueEntry *e = calloc(n ? n : 1, sizeof *e);
    Casenet__V1__OverdueEntry **ep = calloc(n ? n : 1, sizeof *ep);
    if (!e || !ep) {
        rc = oom(c);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        const struct store_overdue *o = &rows[i];
        casenet__v1__overdue_entry__init(&e[i]);
        pb_set_bytes(&e[i].message_id, o->row.message_id, sizeof o->row.message_id);
        e[i].sender = (char *)o->row.sender;
        e[i].recipient = (char *)o->row.recipient;
        e[i].kind = (Casenet__V1__Kind)o->row.kind;
        e[i].urgency = (Casenet__V1__Urgency)o->row.urgency;
        e[i].message_status = (Casenet__V1__MessageStatus)o->row.msg_status;
        e[i].state = (Casenet__V1__InboxState)o->row.state;
        e[i].deadline = (Casenet__V1__DeadlineKind)o->d.kind;
        e[i].received_at_ms = o->row.received_at_ms;
        e[i].due_at_ms = o->d.due_ms;
        e[i].escalated_at_ms = o->d.settled_at_ms;
        if (o->d.has_notice)
            pb_set_bytes(&e[i].notice_id, o->d.notice_id, sizeof o->d.notice_id);
        if (o->row.has_case_ref)
            pb_set_bytes(&e[i].case_ref, o->row.case_ref, sizeof o->row.case_ref);
        ep[i] = &e[i];
    }
    Casenet__V1__OverduePage page = CASENET__V1__OVERDUE_PAGE__INIT;
    page.entries = ep;
    page.n_entries = n;
    page.next_cursor = n ? rows[n - 1].d.id : req->cursor;
    page.more = more;
    resp->body_case = CASENET__V1__RESPONSE__BODY_OVERDUE;
    resp->overdue = &page;
    rc = req_reply(c);
cleanup:
    free(e);
    free(ep);
    store_overdue_free(rows, n);
    return rc;
}
