/* migrate.c - `casenetd migrate --from SPEC --to SPEC`: copies a store into
 * an empty one of another backend (SQLite to PostgreSQL, issue 17) through
 * the store interface alone, so that it follows each backend's schema: the
 * latest directory, every message (with its envelope and receipt), every
 * inbox row at its own seq (the members' cursors), its steps, deadlines and
 * recipients' receipts, the members' stored byte counts, the audit log event
 * by event with its exact bytes and parties (the tree's subtrees follow),
 * and every signed tree head. Then reopens the target and checks that its
 * tree has the source's size and root. */
#include "migrate.h"

#include "casenet.pb-c.h"
#include "log.h"
#include "store.h"

#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE          256u
#define OPS_PER_BATCH 512u

/* What the audit pass found: members (every party) and message ids, in log
 * order. */
struct seen {
    char **members;
    size_t n_members, cap_members;
    uint8_t (*ids)[CASENET_MESSAGE_ID_BYTES];
    size_t n_ids, cap_ids;
};

/* The copy in flight: one open batch on the target, committed every
 * OPS_PER_BATCH writes. */
struct copy {
    struct store *src, *dst;
    unsigned ops;
    uint64_t messages, rows, receipts, events, heads;
};

static int step_batch(struct copy *c)
{
    if (++c->ops < OPS_PER_BATCH)
        return CASENET_OK;
    c->ops = 0;
    int rc = store_commit(c->dst);
    return rc == CASENET_OK ? store_begin(c->dst) : rc;
}

static int seen_member(struct seen *s, const char *m)
{
    if (!m || !*m)
        return CASENET_OK;
    for (size_t i = 0; i < s->n_members; i++)
        if (strcmp(s->members[i], m) == 0)
            return CASENET_OK;
    if (s->n_members == s->cap_members) {
        size_t cap = s->cap_members ? s->cap_members * 2 : 64;
        char **p = realloc(s->members, cap * sizeof *p);
        if (!p)
            return CASENET_ENOMEM;
        s->members = p;
        s->cap_members = cap;
    }
    if (!(s->members[s->n_members] = strdup(m)))
        return CASENET_ENOMEM;
    s->n_members++;
    return CASENET_OK;
}

static int seen_id(struct seen *s, const uint8_t *id)
{
    if (s->n_ids == s->cap_ids) {
        size_t cap = s->cap_ids ? s->cap_ids * 2 : 1024;
        void *p = realloc(s->ids, cap * sizeof *s->ids);
        if (!p)
            return CASENET_ENOMEM;
        s->ids = p;
        s->cap_ids = cap;
    }
    memcpy(s->ids[s->n_ids++], id, CASENET_MESSAGE_ID_BYTES);
    return CASENET_OK;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n_members; i++)
        free(s->members[i]);
    free(s->members);
    free(s->ids);
}

/* One event: appended to the target at its index, byte for byte; its
 * parties and, for SUBMITTED, its message id noted in *s when s is set. */
static int event_copy(struct copy *c, const struct store_audit_row *row, struct seen *s)
{
    Casenet__V1__AuditEvent *e =
        casenet__v1__audit_event__unpack(NULL, row->event.len, row->event.data);
    if (!e)
        return CASENET_EBADREQ;
    int rc = CASENET_OK;
    if (s) {
        for (size_t i = 0; rc == CASENET_OK && i < e->n_parties; i++)
            rc = seen_member(s, e->parties[i]);
        if (rc == CASENET_OK)
            rc = seen_member(s, e->actor);
        if (rc == CASENET_OK && e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED &&
            e->message_id.len == CASENET_MESSAGE_ID_BYTES)
            rc = seen_id(s, e->message_id.data);
    } else {
        rc = store_audit_append(c->dst, row->index, e->time_ms, (int)e->kind,
                                (const char *const *)e->parties, e->n_parties, row->event.data,
                                row->event.len);
        c->events++;
    }
    casenet__v1__audit_event__free_unpacked(e, NULL);
    return rc == CASENET_OK && !s ? step_batch(c) : rc;
}

/* Walks the source's log: with s, to note members and messages; without,
 * appending every event to the target. */
static int events_walk(struct copy *c, struct seen *s)
{
    for (uint64_t from = 0;;) {
        struct store_audit_row *rows = NULL;
        size_t n = 0;
        int rc = store_audit_range(c->src, from, PAGE, &rows, &n);
        for (size_t i = 0; rc == CASENET_OK && i < n; i++)
            rc = event_copy(c, &rows[i], s);
        if (n)
            from = rows[n - 1].index + 1;
        store_audit_rows_free(rows, n);
        if (rc != CASENET_OK || n < PAGE)
            return rc;
    }
}

static int messages_copy(struct copy *c, const struct seen *s)
{
    for (size_t i = 0; i < s->n_ids; i++) {
        struct store_message m = {0};
        int rc = store_message_get(c->src, s->ids[i], true, &m);
        if (rc == CASENET_ENOTFOUND)
            continue; /* a SUBMITTED event of a message since removed */
        if (rc == CASENET_OK)
            rc = store_message_insert(c->dst, &m);
        store_message_clear(&m);
        if (rc == CASENET_OK)
            rc = step_batch(c);
        if (rc != CASENET_OK)
            return rc;
        c->messages++;
    }
    return CASENET_OK;
}

static int by_seq(const void *a, const void *b)
{
    const struct store_inbox_row *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every inbox row of every member, in seq order. */
static int rows_collect(struct copy *c, const struct seen *s, struct store_inbox_row **all,
                        size_t *n_all)
{
    size_t cap = 0;
    for (size_t i = 0; i < s->n_members; i++) {
        bool more = true;
        for (uint64_t cursor = 0; more;) {
            struct store_inbox_row *rows = NULL;
            size_t n = 0;
            int rc = store_inbox_list(c->src, s->members[i], STORE_INBOX_ANY, cursor, PAGE, &rows,
                                      &n, &more);
            if (rc == CASENET_OK && *n_all + n > cap) {
                cap = (*n_all + n) * 2;
                void *p = realloc(*all, cap * sizeof **all);
                if (!p)
                    rc = CASENET_ENOMEM;
                else
                    *all = p;
            }
            if (rc != CASENET_OK) {
                store_inbox_rows_free(rows, n);
                return rc;
            }
            if (n) /* the rows' buffers move */
                memcpy(*all + *n_all, rows, n * sizeof *rows);
            *n_all += n;
            if (n)
                cursor = rows[n - 1].seq;
            free(rows);
            more = more && n > 0;
        }
    }
    if (*n_all)
        qsort(*all, *n_all, sizeof **all, by_seq);
    return CASENET_OK;
}

/* The steps (replayed: each sets the state and records itself), deadlines
 * and, for a message row, the recipient's receipts of row r. */
static int row_history(struct copy *c, const struct store_inbox_row *r)
{
    struct store_step *steps = NULL;
    struct store_deadline *ds = NULL;
    struct store_receipt_rec *recs = NULL;
    size_t n_steps = 0, n_ds = 0, n_recs = 0;
    int rc = store_step_list(c->src, r->seq, &steps, &n_steps);
    for (size_t i = 0; rc == CASENET_OK && i < n_steps; i++)
        rc = store_inbox_set_state(c->dst, r->seq, steps[i].state, steps[i].at_ms);
    if (rc == CASENET_OK)
        rc = store_deadline_list(c->src, r->seq, &ds, &n_ds);
    for (size_t i = 0; rc == CASENET_OK && i < n_ds; i++) {
        rc = store_deadline_arm(c->dst, r->seq, ds[i].kind, ds[i].due_ms);
        if (rc != CASENET_OK || ds[i].state == STORE_DEADLINE_PENDING)
            continue;
        struct store_deadline *mine = NULL;
        size_t n_mine = 0;
        rc = store_deadline_list(c->dst, r->seq, &mine, &n_mine);
        for (size_t j = 0; rc == CASENET_OK && j < n_mine; j++)
            if (mine[j].kind == ds[i].kind)
                rc = store_deadline_settle(c->dst, mine[j].id, ds[i].state, ds[i].settled_at_ms,
                                           ds[i].has_notice ? ds[i].notice_id : NULL);
        free(mine);
    }
    if (rc == CASENET_OK && r->kind != STORE_KIND_RECEIPT)
        rc = store_receipt_list(c->src, r->message_id, r->recipient, &recs, &n_recs);
    for (size_t i = 0; rc == CASENET_OK && i < n_recs; i++) {
        struct store_receipt rec = {.status = recs[i].status,
                                    .received_at_ms = recs[i].received_at_ms,
                                    .signed_receipt = recs[i].signed_receipt.data,
                                    .signed_len = recs[i].signed_receipt.len};
        memcpy(rec.message_id, r->message_id, sizeof rec.message_id);
        snprintf(rec.recipient, sizeof rec.recipient, "%s", r->recipient);
        crypto_hash_sha256(rec.receipt_hash, rec.signed_receipt, rec.signed_len);
        rc = store_receipt_find(c->src, rec.receipt_hash, &rec.audit_index);
        if (rc == CASENET_OK)
            rc = store_receipt_insert(c->dst, &rec);
        c->receipts++;
    }
    free(steps);
    free(ds);
    store_receipt_recs_free(recs, n_recs);
    return rc;
}

/* Every inbox row at its own seq: the target numbers rows in insertion
 * order, so a source whose seqs have gaps cannot be copied this way
 * (CASENET_ECONFLICT, said). */
static int rows_copy(struct copy *c, const struct seen *s)
{
    struct store_inbox_row *all = NULL;
    size_t n = 0;
    int rc = rows_collect(c, s, &all, &n);
    for (size_t i = 0; rc == CASENET_OK && i < n; i++) {
        struct store_inbox_row r = all[i];
        uint64_t want = r.seq;
        r.msg_row = 0;
        r.state = STORE_INBOX_QUEUED;
        rc = store_inbox_insert(c->dst, &r);
        if (rc == CASENET_OK && r.seq != want) {
            fprintf(stderr,
                    "casenetd migrate: inbox row %" PRIu64 " would become %" PRIu64
                    " (the source's rows are not numbered without gaps): nothing committed "
                    "beyond the last batch; drop the target database and report this\n",
                    want, r.seq);
            rc = CASENET_ECONFLICT;
        }
        if (rc == CASENET_OK)
            rc = row_history(c, &all[i]);
        if (rc == CASENET_OK)
            rc = step_batch(c);
        c->rows++;
    }
    store_inbox_rows_free(all, n);
    return rc;
}

static int rest_copy(struct copy *c, const struct seen *s)
{
    int rc = CASENET_OK;
    for (size_t i = 0; rc == CASENET_OK && i < s->n_members; i++) {
        uint64_t bytes = 0;
        rc = store_member_bytes(c->src, s->members[i], &bytes);
        if (rc == CASENET_OK && bytes)
            rc = store_member_bytes_add(c->dst, s->members[i], bytes);
    }
    for (uint64_t after = 0; rc == CASENET_OK;) {
        struct store_head *h = NULL;
        size_t n = 0;
        rc = store_head_list(c->src, after, UINT64_MAX, PAGE, &h, &n);
        for (size_t i = 0; rc == CASENET_OK && i < n; i++) {
            rc = store_head_save(c->dst, &h[i]);
            after = h[i].size;
            c->heads++;
        }
        store_heads_free(h, n);
        if (n < PAGE)
            break;
    }
    casenet_buf dir = {0};
    uint64_t version = 0;
    int drc = rc == CASENET_OK ? store_directory_latest(c->src, &dir, &version) : rc;
    if (drc == CASENET_OK)
        rc = store_directory_save(c->dst, version, dir.data, dir.len, (int64_t)time(NULL) * 1000);
    else if (drc != CASENET_ENOTFOUND)
        rc = drc;
    casenet_buf_free(&dir);
    return rc;
}

/* An empty target: no event, no directory. */
static bool target_empty(struct store *dst)
{
    uint64_t events = 0, version = 0;
    casenet_buf dir = {0};
    int drc = store_directory_latest(dst, &dir, &version);
    casenet_buf_free(&dir);
    return store_audit_count(dst, &events) == CASENET_OK && events == 0 && drc == CASENET_ENOTFOUND;
}

static int copy_all(struct copy *c)
{
    if (!target_empty(c->dst))
        return CASENET_ECONFLICT;
    struct seen s = {0};
    int rc = events_walk(c, &s);
    if (rc == CASENET_OK)
        rc = store_begin(c->dst);
    if (rc != CASENET_OK) {
        seen_free(&s);
        return rc;
    }
    rc = messages_copy(c, &s);
    if (rc == CASENET_OK)
        rc = rows_copy(c, &s);
    if (rc == CASENET_OK)
        rc = events_walk(c, NULL);
    if (rc == CASENET_OK)
        rc = rest_copy(c, &s);
    if (rc == CASENET_OK)
        rc = store_commit(c->dst);
    else
        store_rollback(c->dst);
    seen_free(&s);
    return rc;
}

int migrate_copy(struct store *src, struct store *dst, struct migrate_counts *out)
{
    struct copy c = {.src = src, .dst = dst};
    int rc = copy_all(&c);
    if (out)
        *out = (struct migrate_counts){c.messages, c.rows, c.receipts, c.events, c.heads};
    return rc;
}

/* The target reopened: its tree must be the source's. */
static int compare_trees(struct store *src, const char *to)
{
    struct store *dst = NULL;
    uint64_t n1 = 0, n2 = 0;
    uint8_t r1[CASENET_HASH_BYTES] = {0}, r2[CASENET_HASH_BYTES] = {0};
    int rc = store_open(to, &dst);
    if (rc == CASENET_OK)
        rc = store_audit_tree(src, &n1, r1);
    if (rc == CASENET_OK)
        rc = store_audit_tree(dst, &n2, r2);
    store_close(dst);
    if (rc != CASENET_OK)
        return rc;
    char hex[2 * CASENET_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, r1, sizeof r1);
    if (n1 != n2 || sodium_memcmp(r1, r2, sizeof r1) != 0) {
        fprintf(stderr,
                "casenetd migrate: the target's audit tree differs from the source's (size %" PRIu64
                " vs %" PRIu64 "): do not use it; drop it and report this\n",
                n2, n1);
        return CASENET_ECONFLICT;
    }
    printf("audit tree verified: size %" PRIu64 ", root %s\n", n1, hex);
    return CASENET_OK;
}

static const char migrate_usage[] =
    "usage: casenetd migrate --from SPEC --to SPEC\n"
    "\n"
    "Copies a stopped broker's store into an empty store of another backend,\n"
    "e.g. --from sqlite:/var/lib/casenetd --to postgresql://casenet@db1/casenet,\n"
    "then checks that the target's audit tree has the source's size and root.\n"
    "Stop casenetd first; start it again with --store set to the target.\n";

int migrate_main(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    static const struct option longopts[] = {
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "f:t:h", longopts, NULL)) != -1) {
        if (ch == 'f')
            from = optarg;
        else if (ch == 't')
            to = optarg;
        else {
            fputs(migrate_usage, ch == 'h' ? stdout : stderr);
            return ch == 'h' ? 0 : 2;
        }
    }
    if (!from || !to || optind != argc) {
        fputs(migrate_usage, stderr);
        return 2;
    }
    if (casenet_init() != CASENET_OK)
        return 1;
    struct store *src = NULL, *dst = NULL;
    struct migrate_counts n = {0};
    int rc = store_open(from, &src);
    if (rc == CASENET_OK && (rc = store_open(to, &dst)) == CASENET_OK && !target_empty(dst)) {
        fprintf(stderr,
                "casenetd migrate: the target %s is not empty: migrate into a new, "
                "empty database\n",
                to);
        rc = CASENET_ECONFLICT;
    } else if (rc == CASENET_OK) {
        rc = migrate_copy(src, dst, &n);
    }
    store_close(dst);
    if (rc == CASENET_OK) {
        printf("copied %" PRIu64 " messages, %" PRIu64 " inbox rows, %" PRIu64 " receipts, %" PRIu64
               " audit events, %" PRIu64 " signed heads\n",
               n.messages, n.rows, n.receipts, n.events, n.heads);
        rc = compare_trees(src, to);
    } else if (rc != CASENET_ECONFLICT) {
        fprintf(stderr, "casenetd migrate: %s (see the log above)\n", casenet_strerror(rc));
    }
    store_close(src);
    return rc == CASENET_OK ? 0 : 1;
}
