/*
 * conformance.c - the store conformance suite: every backend of
 * broker/store.h passes it (a driver per backend, e.g. sqlite.c). It holds
 * each operation to its contract as store.h states it, through store_open()
 * and the store_*() calls only: the answers ENOTFOUND / ECONFLICT, orders,
 * cursors and limits; the transaction (rollback, savepoints, the audit tree
 * after rollback_to); the refused pairs (an inbox row for a missing message,
 * duplicate ids, a deadline armed twice, a head of a size already signed);
 * the audit log's order and indexes; a reopen that rebuilds the same
 * tree; and casenetd migrate's copy into a fresh store.
 */
#include "conformance.h"
#include "rows.h"
#include "testlib.h"

#include "casenet.pb-c.h"
#include "merkle.h"
#include "migrate.h"
#include "store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOTLINE "vn.hotline"
#define POLICE  "vn.police"
#define MOLISA  "vn.molisa"

/* Fails with the error's name, not its number. */
#define IS(expr, want)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != (want))                                                                         \
            fail_msg("%s: %s, want %s", #expr, casenet_errname(rc_), casenet_errname(want));       \
    } while (0)
#define OK(expr) IS(expr, CASENET_OK)

static const struct conformance_backend *backend;

struct fx {
    char *spec;
    struct store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->spec = backend->fresh();
    OK(store_open(f->spec, &f->s));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    backend->discard(f->spec);
    free(f->spec);
    free(f);
    return 0;
}

static void reopen(struct fx *f)
{
    store_close(f->s);
    f->s = NULL;
    OK(store_open(f->spec, &f->s));
}

/* ------------------------------------------------------------ rows */

static struct store_message message(uint8_t id_byte, const char *sender)
{
    return store_test_message(id_byte, sender);
}

static struct store_inbox_row row_for(const char *recipient, uint8_t id_byte, int kind)
{
    return store_test_row(recipient, id_byte, kind, kind == STORE_KIND_RECEIPT ? POLICE : HOTLINE);
}

/* Stores message id_byte from HOTLINE and a QUEUED row of it for each
 * recipient, in the open batch; returns the last row's seq. */
static uint64_t deliver(struct store *s, uint8_t id_byte, const char *const *to, size_t n)
{
    struct store_message m = message(id_byte, HOTLINE);
    OK(store_message_insert(s, &m));
    uint64_t seq = 0;
    for (size_t i = 0; i < n; i++) {
        struct store_inbox_row r = row_for(to[i], id_byte, CASENET_KIND_REFERRAL);
        OK(store_inbox_insert(s, &r));
        seq = r.seq;
    }
    return seq;
}

static casenet_buf event(uint64_t index, int kind, const char *actor, uint8_t mid_byte)
{
    Casenet__V1__AuditEvent e = CASENET__V1__AUDIT_EVENT__INIT;
    uint8_t mid[CASENET_MESSAGE_ID_BYTES], case_ref[CASENET_CASE_REF_BYTES];
    memset(mid, mid_byte, sizeof mid);
    memset(case_ref, mid_byte ^ 0x55, sizeof case_ref);
    e.index = index;
    e.time_ms = 5000 + (int64_t)index;
    e.kind = (Casenet__V1__AuditKind)kind;
    e.actor = (char *)actor;
    if (mid_byte) {
        e.message_id.data = mid;
        e.message_id.len = sizeof mid;
        e.case_ref.data = case_ref;
        e.case_ref.len = sizeof case_ref;
    }
    casenet_buf b = {.len = casenet__v1__audit_event__get_packed_size(&e)};
    b.data = malloc(b.len);
    assert_non_null(b.data);
    casenet__v1__audit_event__pack(&e, b.data);
    return b;
}

/* Appends the next event (filed under actor and POLICE) in the open batch;
 * its index. */
static uint64_t append(struct store *s, int kind, const char *actor, uint8_t mid_byte)
{
    uint64_t idx = 0;
    OK(store_audit_next_index(s, &idx));
    casenet_buf b = event(idx, kind, actor, mid_byte);
    const char *parties[] = {actor, POLICE};
    OK(store_audit_append(s, idx, 5000 + (int64_t)idx, kind, parties, 2, b.data, b.len));
    casenet_buf_free(&b);
    return idx;
}

static void tree(struct store *s, uint64_t *size, uint8_t root[CASENET_HASH_BYTES])
{
    OK(store_audit_tree(s, size, root));
}

/* ------------------------------------------------------------ open */

static void test_open_refuses_unknown_scheme(void **state)
{
    (void)state;
    struct store *s = NULL;
    IS(store_open("nosuchdb://localhost/casenet", &s), CASENET_EINVAL);
    assert_null(s);
}

/* ------------------------------------------------------------ messages */

static void test_message_insert_get(void **state)
{
    struct fx *f = *state;
    struct store_message m = message(0x11, HOTLINE), got = {0};
    IS(store_message_get(f->s, m.message_id, true, &got), CASENET_ENOTFOUND);
    OK(store_begin(f->s));
    OK(store_message_insert(f->s, &m));
    assert_true(store_message_last_rowid(f->s) > 0);
    IS(store_message_insert(f->s, &m), CASENET_ECONFLICT);
    OK(store_commit(f->s));

    OK(store_message_get(f->s, m.message_id, true, &got));
    assert_string_equal(got.sender, HOTLINE);
    assert_int_equal(got.kind, m.kind);
    assert_int_equal(got.expires_at_ms, m.expires_at_ms);
    assert_true(got.has_case_ref && !got.has_in_reply_to);
    assert_memory_equal(got.case_ref, m.case_ref, sizeof m.case_ref);
    assert_int_equal(got.envelope.len, 3);
    assert_memory_equal(got.envelope.data, "env", 3);
    assert_int_equal(got.receipt.len, m.receipt.len);
    store_message_clear(&got);
    OK(store_message_get(f->s, m.message_id, false, &got));
    assert_int_equal(got.envelope.len, 0);
    store_message_clear(&got);
}

static void test_message_receipt_sigs(void **state)
{
    struct fx *f = *state;
    struct store_message m = message(0x12, HOTLINE), got = {0};
    uint8_t sig[CASENET_SIGNATURE_BYTES];
    memset(sig, 0x5a, sizeof sig);
    OK(store_begin(f->s));
    OK(store_message_insert(f->s, &m));
    struct store_receipt_sig rs = {store_message_last_rowid(f->s), sig};
    OK(store_message_receipt_sigs(f->s, &rs, 1));
    struct store_receipt_sig missing = {rs.rowid + 1000, sig};
    IS(store_message_receipt_sigs(f->s, &missing, 1), CASENET_EUNAVAIL);
    store_rollback(f->s);
    OK(store_begin(f->s));
    OK(store_message_insert(f->s, &m));
    rs.rowid = store_message_last_rowid(f->s);
    OK(store_message_receipt_sigs(f->s, &rs, 1));
    OK(store_commit(f->s));
    OK(store_message_get(f->s, m.message_id, false, &got));
    assert_memory_equal(got.receipt.data + got.receipt.len - sizeof sig, sig, sizeof sig);
    assert_int_equal(got.receipt.data[0], 0xee);
    store_message_clear(&got);
}

static void test_sent_list_pages(void **state)
{
    struct fx *f = *state;
    OK(store_begin(f->s));
    for (uint8_t i = 1; i <= 3; i++) {
        struct store_message m = message(i, HOTLINE);
        OK(store_message_insert(f->s, &m));
    }
    struct store_message other = message(9, POLICE);
    OK(store_message_insert(f->s, &other));
    OK(store_commit(f->s));
    struct store_message *rows = NULL;
    size_t n = 0;
    bool more = false;
    OK(store_sent_list(f->s, HOTLINE, 0, 2, &rows, &n, &more));
    assert_int_equal(n, 2);
    assert_true(more);
    assert_int_equal(rows[0].message_id[0], 1);
    assert_int_equal(rows[1].message_id[0], 2);
    assert_true(rows[0].row < rows[1].row);
    uint64_t cursor = rows[1].row;
    store_messages_free(rows, n);
    OK(store_sent_list(f->s, HOTLINE, cursor, 2, &rows, &n, &more));
    assert_int_equal(n, 1);
    assert_false(more);
    assert_int_equal(rows[0].message_id[0], 3);
    assert_int_equal(rows[0].envelope.len, 0);
    store_messages_free(rows, n);
}

static void test_sent_rows(void **state)
{
    struct fx *f = *state;
    const char *to[] = {POLICE, MOLISA};
    OK(store_begin(f->s));
    uint64_t last = deliver(f->s, 0xe1, to, 2);
    OK(store_deadline_arm(f->s, last, STORE_DEADLINE_ACCEPT, 7000));
    OK(store_deadline_arm(f->s, last, STORE_DEADLINE_DELIVER, 6000));
    deliver(f->s, 0xe2, to, 1);
    OK(store_commit(f->s));
    struct store_message *msgs = NULL;
    size_t n_msgs = 0;
    bool more = false;
    OK(store_sent_list(f->s, HOTLINE, 0, 10, &msgs, &n_msgs, &more));
    assert_int_equal(n_msgs, 2);
    struct store_inbox_row *rows = NULL;
    struct store_deadline *ds = NULL;
    size_t n_rows = 0, n_ds = 0;
    OK(store_sent_rows(f->s, HOTLINE, 0, msgs[0].row, &rows, &n_rows, &ds, &n_ds));
    assert_int_equal(n_rows, 2); /* the first message's rows only */
    assert_string_equal(rows[0].recipient, POLICE);
    assert_string_equal(rows[1].recipient, MOLISA);
    assert_int_equal(rows[1].seq, last);
    assert_int_equal((uint64_t)rows[0].msg_row, msgs[0].row);
    assert_int_equal(n_ds, 2); /* (seq, kind) order */
    assert_int_equal(ds[0].kind, STORE_DEADLINE_DELIVER);
    assert_int_equal(ds[1].kind, STORE_DEADLINE_ACCEPT);
    store_inbox_rows_free(rows, n_rows);
    free(ds);
    OK(store_sent_rows(f->s, HOTLINE, msgs[0].row, msgs[1].row, &rows, &n_rows, &ds, &n_ds));
    assert_int_equal(n_rows, 1);
    assert_int_equal(n_ds, 0);
    store_inbox_rows_free(rows, n_rows);
    free(ds);
    store_messages_free(msgs, n_msgs);
}

static void test_member_bytes(void **state)
{
    struct fx *f = *state;
    uint64_t bytes = 99;
    OK(store_member_bytes(f->s, HOTLINE, &bytes));
    assert_int_equal(bytes, 0);
    OK(store_begin(f->s));
    OK(store_member_bytes_add(f->s, HOTLINE, 300));
    OK(store_member_bytes_add(f->s, HOTLINE, 20));
    OK(store_commit(f->s));
    OK(store_member_bytes(f->s, HOTLINE, &bytes));
    assert_int_equal(bytes, 320);
}

/* ------------------------------------------------------------ receipts */

static void test_receipts(void **state)
{
    struct fx *f = *state;
    struct store_message m = message(0x21, HOTLINE);
    uint8_t signed_receipt[] = "signed receipt";
    struct store_receipt r = {.recipient = POLICE,
                              .status = 3,
                              .received_at_ms = 2000,
                              .audit_index = 7,
                              .signed_receipt = signed_receipt,
                              .signed_len = sizeof signed_receipt};
    memset(r.receipt_hash, 0x33, sizeof r.receipt_hash);
    memcpy(r.message_id, m.message_id, sizeof r.message_id);
    uint64_t idx = 0;
    IS(store_receipt_find(f->s, r.receipt_hash, &idx), CASENET_ENOTFOUND);
    OK(store_begin(f->s));
    OK(store_message_insert(f->s, &m));
    OK(store_receipt_insert(f->s, &r));
    IS(store_receipt_insert(f->s, &r), CASENET_ECONFLICT);
    r.receipt_hash[0] ^= 1;
    r.status = 4;
    OK(store_receipt_insert(f->s, &r));
    OK(store_commit(f->s));
    OK(store_receipt_find(f->s, r.receipt_hash, &idx));
    assert_int_equal(idx, 7);
    struct store_receipt_rec *recs = NULL;
    size_t n = 0;
    OK(store_receipt_list(f->s, m.message_id, POLICE, &recs, &n));
    assert_int_equal(n, 2);
    assert_int_equal(recs[0].status, 3); /* oldest first */
    assert_int_equal(recs[1].status, 4);
    assert_int_equal(recs[0].signed_receipt.len, sizeof signed_receipt);
    store_receipt_recs_free(recs, n);
    OK(store_receipt_list(f->s, m.message_id, MOLISA, &recs, &n));
    assert_int_equal(n, 0);
    store_receipt_recs_free(recs, n);
}

/* ------------------------------------------------------------ inbox */

static void test_inbox_refused_pairs(void **state)
{
    struct fx *f = *state;
    OK(store_begin(f->s));
    /* A message row for a message not stored. */
    struct store_inbox_row r = row_for(POLICE, 0x31, CASENET_KIND_REFERRAL);
    IS(store_inbox_insert(f->s, &r), CASENET_ECONFLICT);
    struct store_message m = message(0x31, HOTLINE);
    OK(store_message_insert(f->s, &m));
    int64_t msg_row = store_message_last_rowid(f->s);
    /* Named by the wrong message row. */
    r.msg_row = msg_row + 1000;
    IS(store_inbox_insert(f->s, &r), CASENET_ECONFLICT);
    r.msg_row = msg_row;
    OK(store_inbox_insert(f->s, &r));
    /* The same pair twice, and a receipt row on a message's pair. */
    struct store_inbox_row again = row_for(POLICE, 0x31, CASENET_KIND_REFERRAL);
    IS(store_inbox_insert(f->s, &again), CASENET_ECONFLICT);
    struct store_inbox_row rcpt = row_for(POLICE, 0x31, STORE_KIND_RECEIPT);
    IS(store_inbox_insert(f->s, &rcpt), CASENET_ECONFLICT);
    /* A receipt row needs no message, and is unique per inbox. */
    bool taken = true;
    struct store_inbox_row own = row_for(HOTLINE, 0x32, STORE_KIND_RECEIPT);
    OK(store_inbox_receipt_row(f->s, HOTLINE, own.message_id, &taken));
    assert_false(taken);
    OK(store_inbox_insert(f->s, &own));
    OK(store_inbox_receipt_row(f->s, HOTLINE, own.message_id, &taken));
    assert_true(taken);
    IS(store_inbox_insert(f->s, &own), CASENET_ECONFLICT);
    /* ... and the message row of that id in that inbox is refused then. */
    struct store_message m2 = message(0x32, POLICE);
    OK(store_message_insert(f->s, &m2));
    struct store_inbox_row clash = row_for(HOTLINE, 0x32, CASENET_KIND_REFERRAL);
    IS(store_inbox_insert(f->s, &clash), CASENET_ECONFLICT);
    OK(store_commit(f->s));
}

static void test_inbox_list_order_cursor_limit(void **state)
{
    struct fx *f = *state;
    const char *to[] = {POLICE};
    uint64_t seqs[4];
    OK(store_begin(f->s));
    for (uint8_t i = 0; i < 4; i++)
        seqs[i] = deliver(f->s, (uint8_t)(0x41 + i), to, 1);
    OK(store_inbox_set_state(f->s, seqs[1], STORE_INBOX_FETCHED, 3000));
    IS(store_inbox_set_state(f->s, seqs[3] + 1000, STORE_INBOX_FETCHED, 3000), CASENET_ENOTFOUND);
    OK(store_commit(f->s));
    for (int i = 1; i < 4; i++)
        assert_true(seqs[i] > seqs[i - 1]);

    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    bool more = false;
    OK(store_inbox_list(f->s, POLICE, STORE_INBOX_ANY, 0, 3, &rows, &n, &more));
    assert_int_equal(n, 3);
    assert_true(more);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rows[i].seq, seqs[i]);
    assert_int_equal(rows[1].state, STORE_INBOX_FETCHED);
    uint64_t cursor = rows[2].seq;
    store_inbox_rows_free(rows, n);
    OK(store_inbox_list(f->s, POLICE, STORE_INBOX_ANY, cursor, 3, &rows, &n, &more));
    assert_int_equal(n, 1);
    assert_false(more);
    assert_int_equal(rows[0].seq, seqs[3]);
    store_inbox_rows_free(rows, n);
    OK(store_inbox_list(f->s, POLICE, STORE_INBOX_QUEUED, 0, 10, &rows, &n, &more));
    assert_int_equal(n, 3);
    assert_int_equal(rows[1].seq, seqs[2]);
    store_inbox_rows_free(rows, n);
    OK(store_inbox_list(f->s, MOLISA, STORE_INBOX_ANY, 0, 10, &rows, &n, &more));
    assert_int_equal(n, 0);
    assert_false(more);
    store_inbox_rows_free(rows, n);
}

static void test_inbox_reads(void **state)
{
    struct fx *f = *state;
    const char *to[] = {POLICE, MOLISA};
    OK(store_begin(f->s));
    uint64_t seq = deliver(f->s, 0x51, to, 2);
    OK(store_inbox_set_state(f->s, seq, STORE_INBOX_FETCHED, 3000));
    OK(store_inbox_set_state(f->s, seq, STORE_INBOX_DELIVERED, 3100));
    OK(store_commit(f->s));
    struct store_inbox_row r = {0};
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    memset(id, 0x51, sizeof id);
    OK(store_inbox_get(f->s, MOLISA, id, &r));
    assert_int_equal(r.seq, seq);
    assert_int_equal(r.state, STORE_INBOX_DELIVERED);
    assert_string_equal(r.sender, HOTLINE);
    store_inbox_row_clear(&r);
    IS(store_inbox_get(f->s, HOTLINE, id, &r), CASENET_ENOTFOUND);
    OK(store_inbox_get_seq(f->s, seq, &r));
    assert_string_equal(r.recipient, MOLISA);
    store_inbox_row_clear(&r);
    IS(store_inbox_get_seq(f->s, seq + 1000, &r), CASENET_ENOTFOUND);

    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    OK(store_inbox_of_message(f->s, id, &rows, &n));
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].recipient, POLICE);
    assert_string_equal(rows[1].recipient, MOLISA);
    store_inbox_rows_free(rows, n);

    struct store_step *steps = NULL;
    OK(store_step_list(f->s, seq, &steps, &n));
    assert_int_equal(n, 2);
    assert_int_equal(steps[0].state, STORE_INBOX_FETCHED);
    assert_int_equal(steps[0].at_ms, 3000);
    assert_int_equal(steps[1].state, STORE_INBOX_DELIVERED);
    free(steps);
}

static void test_inbox_backlog_and_fetch_mark(void **state)
{
    struct fx *f = *state;
    const char *to[] = {POLICE};
    OK(store_begin(f->s));
    uint64_t seq = deliver(f->s, 0x61, to, 1);
    deliver(f->s, 0x62, to, 1);
    struct store_inbox_row rcpt = row_for(POLICE, 0x63, STORE_KIND_RECEIPT);
    OK(store_inbox_insert(f->s, &rcpt)); /* forwarded receipts are not counted */
    uint64_t queued = 0, from = 0;
    OK(store_inbox_backlog(f->s, POLICE, HOTLINE, &queued, &from)); /* this batch's writes */
    assert_int_equal(queued, 2);
    assert_int_equal(from, 2);
    OK(store_inbox_set_state(f->s, seq, STORE_INBOX_FETCHED, 3000));
    bool first = false;
    OK(store_inbox_fetch_mark(f->s, seq, STORE_INBOX_FETCHED, &first));
    assert_true(first);
    OK(store_inbox_fetch_mark(f->s, seq, STORE_INBOX_FETCHED, &first));
    assert_false(first);
    OK(store_inbox_fetch_mark(f->s, seq, STORE_INBOX_DELIVERED, &first));
    assert_true(first);
    OK(store_commit(f->s));
    OK(store_inbox_backlog(f->s, POLICE, MOLISA, &queued, &from));
    assert_int_equal(queued, 1);
    assert_int_equal(from, 0);
}

/* ------------------------------------------------------------ deadlines */

static void test_deadlines(void **state)
{
    struct fx *f = *state;
    const char *to[] = {POLICE};
    OK(store_begin(f->s));
    uint64_t a = deliver(f->s, 0x71, to, 1), b = deliver(f->s, 0x72, to, 1);
    OK(store_deadline_arm(f->s, a, STORE_DEADLINE_DELIVER, 6000));
    OK(store_deadline_arm(f->s, a, STORE_DEADLINE_ACCEPT, 8000));
    OK(store_deadline_arm(f->s, b, STORE_DEADLINE_DELIVER, 5000));
    IS(store_deadline_arm(f->s, a, STORE_DEADLINE_DELIVER, 7000), CASENET_ECONFLICT);

    struct store_deadline *ds = NULL;
    size_t n = 0;
    OK(store_deadline_due(f->s, 4999, 10, &ds, &n));
    assert_int_equal(n, 0);
    free(ds);
    OK(store_deadline_due(f->s, 9000, 2, &ds, &n)); /* earliest first, at most limit */
    assert_int_equal(n, 2);
    assert_int_equal(ds[0].seq, b);
    assert_int_equal(ds[0].due_ms, 5000);
    assert_int_equal(ds[0].state, STORE_DEADLINE_PENDING);
    assert_int_equal(ds[1].seq, a);
    assert_int_equal(ds[1].kind, STORE_DEADLINE_DELIVER);
    uint64_t b_id = ds[0].id, a_id = ds[1].id;
    free(ds);

    uint8_t notice[CASENET_MESSAGE_ID_BYTES];
    memset(notice, 0x99, sizeof notice);
    OK(store_deadline_settle(f->s, b_id, STORE_DEADLINE_BREACHED, 5100, notice));
    IS(store_deadline_settle(f->s, b_id, STORE_DEADLINE_MET, 5200, NULL), CASENET_ENOTFOUND);
    OK(store_deadline_settle(f->s, a_id, STORE_DEADLINE_MET, 5300, NULL));
    OK(store_commit(f->s));

    OK(store_deadline_list(f->s, a, &ds, &n)); /* by kind */
    assert_int_equal(n, 2);
    assert_int_equal(ds[0].kind, STORE_DEADLINE_DELIVER);
    assert_int_equal(ds[0].state, STORE_DEADLINE_MET);
    assert_int_equal(ds[0].settled_at_ms, 5300);
    assert_int_equal(ds[1].kind, STORE_DEADLINE_ACCEPT);
    assert_int_equal(ds[1].state, STORE_DEADLINE_PENDING);
    free(ds);

    struct store_overdue *od = NULL;
    bool more = true;
    OK(store_overdue_list(f->s, 0, 10, &od, &n, &more));
    assert_int_equal(n, 1);
    assert_false(more);
    assert_int_equal(od[0].d.id, b_id);
    assert_true(od[0].d.has_notice);
    assert_memory_equal(od[0].d.notice_id, notice, sizeof notice);
    assert_int_equal(od[0].row.seq, b);
    store_overdue_free(od, n);
    OK(store_overdue_list(f->s, b_id, 10, &od, &n, &more)); /* the cursor is the id */
    assert_int_equal(n, 0);
    store_overdue_free(od, n);
}

/* ------------------------------------------------------------ transactions */

static void test_rollback_undoes_the_batch(void **state)
{
    struct fx *f = *state;
    struct store_message m = message(0x81, HOTLINE), got = {0};
    uint64_t size0 = 0, size = 0;
    uint8_t root0[CASENET_HASH_BYTES], root[CASENET_HASH_BYTES];
    tree(f->s, &size0, root0);
    uint64_t changes = store_changes(f->s);
    OK(store_begin(f->s));
    OK(store_message_insert(f->s, &m));
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED, HOTLINE, 0x81);
    assert_true(store_changes(f->s) > changes);
    store_rollback(f->s);
    IS(store_message_get(f->s, m.message_id, false, &got), CASENET_ENOTFOUND);
    tree(f->s, &size, root);
    assert_int_equal(size, size0);
    assert_memory_equal(root, root0, sizeof root);
    uint64_t count = 9;
    OK(store_audit_count(f->s, &count));
    assert_int_equal(count, 0);
}

static void test_savepoints(void **state)
{
    struct fx *f = *state;
    struct store_message a = message(0x91, HOTLINE), b = message(0x92, HOTLINE), got = {0};
    OK(store_begin(f->s));
    OK(store_savepoint(f->s));
    OK(store_message_insert(f->s, &a));
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED, HOTLINE, 0x91);
    OK(store_release(f->s));
    uint64_t size1 = 0, size = 0, next = 0;
    uint8_t root1[CASENET_HASH_BYTES], root[CASENET_HASH_BYTES];
    tree(f->s, &size1, root1);
    assert_int_equal(size1, 1);

    /* A request rolled back: its rows and its leaves go, the batch stays. */
    OK(store_savepoint(f->s));
    OK(store_message_insert(f->s, &b));
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED, HOTLINE, 0x92);
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED, POLICE, 0x92);
    store_rollback_to(f->s);
    tree(f->s, &size, root);
    assert_int_equal(size, size1);
    assert_memory_equal(root, root1, sizeof root);
    OK(store_audit_next_index(f->s, &next));
    assert_int_equal(next, 1);
    IS(store_message_get(f->s, b.message_id, false, &got), CASENET_ENOTFOUND);

    /* The next request takes the freed index. */
    OK(store_savepoint(f->s));
    assert_int_equal(append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED, POLICE, 0x93), 1);
    OK(store_release(f->s));
    OK(store_commit(f->s));
    OK(store_message_get(f->s, a.message_id, false, &got));
    store_message_clear(&got);
    IS(store_message_get(f->s, b.message_id, false, &got), CASENET_ENOTFOUND);
    uint64_t count = 0;
    OK(store_audit_count(f->s, &count));
    assert_int_equal(count, 2);
}

static void test_savepoint_depth(void **state)
{
    struct fx *f = *state;
    OK(store_begin(f->s));
    for (int i = 0; i < STORE_SAVEPOINTS_MAX; i++)
        OK(store_savepoint(f->s));
    IS(store_savepoint(f->s), CASENET_EUNAVAIL);
    for (int i = 0; i < STORE_SAVEPOINTS_MAX; i++)
        OK(store_release(f->s));
    OK(store_commit(f->s));
}

/* ------------------------------------------------------------ audit log */

static void test_audit_append_order_and_index(void **state)
{
    struct fx *f = *state;
    uint64_t next = 99;
    OK(store_begin(f->s));
    OK(store_audit_next_index(f->s, &next));
    assert_int_equal(next, 0);
    casenet_buf b = event(1, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED, HOTLINE, 0xa1);
    const char *parties[] = {HOTLINE};
    IS(store_audit_append(f->s, 1, 5000, 1, parties, 1, b.data, b.len), CASENET_ECONFLICT);
    casenet_buf_free(&b);
    struct store_message m = message(0xa1, HOTLINE);
    OK(store_message_insert(f->s, &m)); /* SUBMITTED follows its message */
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED, HOTLINE, 0xa1);
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED, MOLISA, 0xa1);
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED, HOTLINE, 0xa2);
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_DIRECTORY_PUBLISHED, MOLISA, 0);
    OK(store_commit(f->s));

    struct store_audit_row *rows = NULL;
    size_t n = 0;
    OK(store_audit_range(f->s, 1, 2, &rows, &n));
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].index, 1);
    assert_int_equal(rows[1].index, 2);
    Casenet__V1__AuditEvent *e =
        casenet__v1__audit_event__unpack(NULL, rows[0].event.len, rows[0].event.data);
    assert_non_null(e);
    assert_int_equal(e->index, 1);
    assert_string_equal(e->actor, MOLISA);
    casenet__v1__audit_event__free_unpacked(e, NULL);
    store_audit_rows_free(rows, n);

    uint64_t cursor = 0;
    bool more = true, visible = false;
    uint8_t mid[CASENET_MESSAGE_ID_BYTES];
    memset(mid, 0xa1, sizeof mid);
    struct store_audit_filter by_msg = {.message_id = mid};
    OK(store_audit_query(f->s, &by_msg, 0, 10, 100, &rows, &n, &cursor, &more));
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].index, 0);
    assert_int_equal(rows[1].index, 1);
    assert_false(more);
    store_audit_rows_free(rows, n);
    struct store_audit_filter by_kind = {.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED};
    OK(store_audit_query(f->s, &by_kind, 0, 10, 100, &rows, &n, &cursor, &more));
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].index, 2);
    store_audit_rows_free(rows, n);
    struct store_audit_filter mine = {.member = MOLISA, .member_only = true};
    OK(store_audit_query(f->s, &mine, 0, 1, 100, &rows, &n, &cursor, &more));
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].index, 1);
    assert_true(more);
    store_audit_rows_free(rows, n);
    OK(store_audit_query(f->s, &mine, cursor, 1, 100, &rows, &n, &cursor, &more));
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].index, 3);
    store_audit_rows_free(rows, n);
    struct store_audit_filter in_time = {.from_ms = 5001, .to_ms = 5003};
    OK(store_audit_query(f->s, &in_time, 0, 10, 100, &rows, &n, &cursor, &more));
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].index, 1);
    store_audit_rows_free(rows, n);

    OK(store_audit_visible(f->s, MOLISA, 1, &visible));
    assert_true(visible);
    OK(store_audit_visible(f->s, POLICE, 1, &visible)); /* a party */
    assert_true(visible);
    OK(store_audit_visible(f->s, MOLISA, 0, &visible));
    assert_false(visible);
}

static void test_audit_query_examined_cap(void **state)
{
    struct fx *f = *state;
    OK(store_begin(f->s));
    for (uint8_t i = 0; i < 4; i++) /* time_ms 5000 + index */
        append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED, HOTLINE, (uint8_t)(0xd0 + i));
    OK(store_commit(f->s));
    struct store_audit_row *rows = NULL;
    size_t n = 0;
    uint64_t next = 99;
    bool more = false;
    struct store_audit_filter late = {.from_ms = 5003};
    OK(store_audit_query(f->s, &late, 0, 10, 2, &rows, &n, &next, &more));
    assert_int_equal(n, 0); /* examined 0 and 1 only */
    assert_int_equal(next, 2);
    assert_true(more);
    OK(store_audit_query(f->s, &late, next, 10, 2, &rows, &n, &next, &more));
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].index, 3);
    assert_int_equal(next, 4);
    assert_false(more);
    store_audit_rows_free(rows, n);
    OK(store_audit_query(f->s, &late, 4, 10, 2, &rows, &n, &next, &more));
    assert_int_equal(n, 0);
    assert_int_equal(next, 4); /* none examined: the cursor */
    assert_false(more);
    struct store_audit_filter any = {0};
    OK(store_audit_query(f->s, &any, 0, 3, 100, &rows, &n, &next, &more));
    assert_int_equal(n, 3); /* at most limit */
    assert_int_equal(next, 3);
    assert_true(more);
    store_audit_rows_free(rows, n);
}

static void test_audit_tree_and_nodes(void **state)
{
    struct fx *f = *state;
    struct merkle_stack want;
    merkle_stack_init(&want);
    OK(store_begin(f->s));
    for (uint8_t i = 0; i < 5; i++) {
        uint64_t idx = append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED, HOTLINE,
                              (uint8_t)(0xb0 + i));
        casenet_buf b =
            event(idx, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED, HOTLINE, (uint8_t)(0xb0 + i));
        uint8_t leaf[MERKLE_HASH_BYTES];
        merkle_leaf_hash(b.data, b.len, leaf);
        OK(merkle_stack_push(&want, leaf, NULL, NULL));
        if (i == 0) {
            uint8_t node[CASENET_HASH_BYTES];
            OK(store_audit_node_get(f->s, 0, 0, node));
            assert_memory_equal(node, leaf, sizeof node);
        }
        casenet_buf_free(&b);
    }
    OK(store_commit(f->s));
    uint64_t size = 0;
    uint8_t root[CASENET_HASH_BYTES], want_root[CASENET_HASH_BYTES], node[CASENET_HASH_BYTES];
    tree(f->s, &size, root);
    merkle_stack_root(&want, want_root);
    assert_int_equal(size, 5);
    assert_memory_equal(root, want_root, sizeof root);
    OK(store_audit_node_get(f->s, 2, 0, node)); /* leaves 0..3 */
    IS(store_audit_node_get(f->s, 2, 1, node), CASENET_ENOTFOUND);

    /* Reopened, the tree is rebuilt equal. */
    reopen(f);
    uint8_t again[CASENET_HASH_BYTES];
    tree(f->s, &size, again);
    assert_int_equal(size, 5);
    assert_memory_equal(again, root, sizeof root);
    OK(store_begin(f->s));
    uint64_t next = 0;
    OK(store_audit_next_index(f->s, &next));
    assert_int_equal(next, 5);
    store_rollback(f->s);
}

static void test_heads(void **state)
{
    struct fx *f = *state;
    struct store_head h = {0};
    IS(store_head_latest(f->s, &h), CASENET_ENOTFOUND);
    OK(store_begin(f->s));
    for (uint64_t size = 1; size <= 3; size += 2) {
        struct store_head s = {.size = size, .time_ms = 1000 + (int64_t)size};
        memset(s.root, (int)size, sizeof s.root);
        s.checkpoint.data = (uint8_t *)"checkpoint";
        s.checkpoint.len = 10;
        OK(store_head_save(f->s, &s));
        IS(store_head_save(f->s, &s), CASENET_ECONFLICT);
    }
    OK(store_commit(f->s));
    OK(store_head_latest(f->s, &h));
    assert_int_equal(h.size, 3);
    assert_int_equal(h.root[0], 3);
    assert_int_equal(h.checkpoint.len, 10);
    store_head_clear(&h);
    OK(store_head_get(f->s, 1, &h));
    assert_int_equal(h.time_ms, 1001);
    store_head_clear(&h);
    IS(store_head_get(f->s, 2, &h), CASENET_ENOTFOUND);
    struct store_head *hs = NULL;
    size_t n = 0;
    OK(store_head_list(f->s, 0, 10, 10, &hs, &n));
    assert_int_equal(n, 2);
    assert_int_equal(hs[0].size, 1);
    assert_int_equal(hs[1].size, 3);
    store_heads_free(hs, n);
    OK(store_head_list(f->s, 1, 3, 1, &hs, &n)); /* after < size <= upto */
    assert_int_equal(n, 1);
    assert_int_equal(hs[0].size, 3);
    store_heads_free(hs, n);
}

/* ------------------------------------------------------------ directories */

static void test_directories(void **state)
{
    struct fx *f = *state;
    casenet_buf out = {0};
    uint64_t version = 0;
    IS(store_directory_latest(f->s, &out, &version), CASENET_ENOTFOUND);
    OK(store_begin(f->s));
    OK(store_directory_save(f->s, 1, (const uint8_t *)"one", 3, 1000));
    OK(store_directory_save(f->s, 2, (const uint8_t *)"two!", 4, 2000));
    IS(store_directory_save(f->s, 2, (const uint8_t *)"again", 5, 3000), CASENET_ECONFLICT);
    OK(store_commit(f->s));
    OK(store_directory_latest(f->s, &out, &version));
    assert_int_equal(version, 2);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "two!", 4);
    casenet_buf_free(&out);
}

static void test_reopen_keeps_rows(void **state)
{
    struct fx *f = *state;
    const char *to[] = {POLICE};
    OK(store_begin(f->s));
    uint64_t seq = deliver(f->s, 0xc1, to, 1);
    OK(store_deadline_arm(f->s, seq, STORE_DEADLINE_EXPIRE, 9000));
    OK(store_commit(f->s));
    reopen(f);
    struct store_inbox_row r = {0};
    OK(store_inbox_get_seq(f->s, seq, &r));
    store_inbox_row_clear(&r);
    struct store_deadline *ds = NULL;
    size_t n = 0;
    OK(store_deadline_list(f->s, seq, &ds, &n));
    assert_int_equal(n, 1);
    assert_int_equal(ds[0].kind, STORE_DEADLINE_EXPIRE);
    free(ds);
    uint32_t pending = 0;
    OK(store_checkpoint(f->s, 1, &pending));
}

/* ------------------------------------------------------------ migrate */

/* Compares what two stores hold for member: its inbox rows (seq, state,
 * id), each row's steps and deadlines, and for message rows the receipts. */
static void same_inbox(struct store *a, struct store *b, const char *member, size_t want)
{
    struct store_inbox_row *ra = NULL, *rb = NULL;
    size_t na = 0, nb = 0;
    bool more = false;
    OK(store_inbox_list(a, member, STORE_INBOX_ANY, 0, 100, &ra, &na, &more));
    OK(store_inbox_list(b, member, STORE_INBOX_ANY, 0, 100, &rb, &nb, &more));
    assert_int_equal(na, want);
    assert_int_equal(nb, na);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(rb[i].seq, ra[i].seq);
        assert_int_equal(rb[i].state, ra[i].state);
        assert_int_equal(rb[i].kind, ra[i].kind);
        assert_memory_equal(rb[i].message_id, ra[i].message_id, CASENET_MESSAGE_ID_BYTES);
        struct store_step *sa = NULL, *sb = NULL;
        size_t nsa = 0, nsb = 0;
        OK(store_step_list(a, ra[i].seq, &sa, &nsa));
        OK(store_step_list(b, ra[i].seq, &sb, &nsb));
        assert_int_equal(nsb, nsa);
        if (nsa)
            assert_memory_equal(sb, sa, nsa * sizeof *sa);
        free(sa);
        free(sb);
        struct store_deadline *da = NULL, *db = NULL;
        OK(store_deadline_list(a, ra[i].seq, &da, &nsa));
        OK(store_deadline_list(b, ra[i].seq, &db, &nsb));
        assert_int_equal(nsb, nsa);
        for (size_t j = 0; j < nsa; j++) {
            assert_int_equal(db[j].kind, da[j].kind);
            assert_int_equal(db[j].state, da[j].state);
            assert_int_equal(db[j].due_ms, da[j].due_ms);
            assert_int_equal(db[j].settled_at_ms, da[j].settled_at_ms);
        }
        free(da);
        free(db);
        struct store_receipt_rec *ca = NULL, *cb = NULL;
        OK(store_receipt_list(a, ra[i].message_id, member, &ca, &nsa));
        OK(store_receipt_list(b, ra[i].message_id, member, &cb, &nsb));
        assert_int_equal(nsb, nsa);
        for (size_t j = 0; j < nsa; j++)
            assert_int_equal(cb[j].signed_receipt.len, ca[j].signed_receipt.len);
        store_receipt_recs_free(ca, nsa);
        store_receipt_recs_free(cb, nsb);
    }
    store_inbox_rows_free(ra, na);
    store_inbox_rows_free(rb, nb);
}

/* casenetd migrate's copy (broker/migrate.c), through the store interface
 * only, into a fresh store of the same backend: rows keep their numbers and
 * history, the reopened copy has the same tree, heads, directory and byte
 * counts, and a second copy into it is refused. */
static void test_migrate_copy(void **state)
{
    struct fx *f = *state;
    const char *to[] = {POLICE};
    OK(store_begin(f->s));
    uint64_t a = deliver(f->s, 0xd1, to, 1);
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED, HOTLINE, 0xd1);
    uint64_t b = deliver(f->s, 0xd2, to, 1);
    append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED, HOTLINE, 0xd2);
    struct store_inbox_row rr = row_for(HOTLINE, 0xd3, STORE_KIND_RECEIPT);
    OK(store_inbox_insert(f->s, &rr));
    OK(store_inbox_set_state(f->s, a, STORE_INBOX_FETCHED, 3000));
    OK(store_inbox_set_state(f->s, a, STORE_INBOX_ACCEPTED, 3100));
    OK(store_deadline_arm(f->s, a, STORE_DEADLINE_DELIVER, 6000));
    OK(store_deadline_arm(f->s, b, STORE_DEADLINE_ACCEPT, 7000));
    struct store_deadline *ds = NULL;
    size_t n = 0;
    OK(store_deadline_list(f->s, a, &ds, &n));
    OK(store_deadline_settle(f->s, ds[0].id, STORE_DEADLINE_MET, 3000, NULL));
    free(ds);
    uint8_t signed_receipt[] = "signed receipt of d1";
    struct store_receipt r = {.recipient = POLICE,
                              .status = 4,
                              .received_at_ms = 3100,
                              .signed_receipt = signed_receipt,
                              .signed_len = sizeof signed_receipt};
    memset(r.message_id, 0xd1, sizeof r.message_id);
    crypto_hash_sha256(r.receipt_hash, signed_receipt, sizeof signed_receipt);
    r.audit_index = append(f->s, CASENET__V1__AUDIT_KIND__AUDIT_KIND_RECEIPT, POLICE, 0xd1);
    OK(store_receipt_insert(f->s, &r));
    struct store_head h = {.time_ms = 4000, .checkpoint = {(uint8_t *)"checkpoint", 10}};
    tree(f->s, &h.size, h.root);
    OK(store_head_save(f->s, &h));
    OK(store_directory_save(f->s, 3, (const uint8_t *)"dir3", 4, 1000));
    OK(store_member_bytes_add(f->s, HOTLINE, 6));
    OK(store_commit(f->s));

    char *spec = backend->fresh();
    struct store *d = NULL;
    OK(store_open(spec, &d));
    struct migrate_counts c = {0};
    OK(migrate_copy(f->s, d, &c));
    assert_int_equal(c.messages, 2);
    assert_int_equal(c.rows, 3);
    assert_int_equal(c.events, 3);
    assert_int_equal(c.heads, 1);
    store_close(d);
    OK(store_open(spec, &d));
    uint64_t size = 0, size2 = 0;
    uint8_t root[CASENET_HASH_BYTES], root2[CASENET_HASH_BYTES];
    tree(f->s, &size, root);
    tree(d, &size2, root2);
    assert_int_equal(size2, size);
    assert_memory_equal(root2, root, sizeof root);
    same_inbox(f->s, d, POLICE, 2);
    same_inbox(f->s, d, HOTLINE, 1);
    struct store_head got = {0};
    OK(store_head_latest(d, &got));
    assert_int_equal(got.size, h.size);
    assert_memory_equal(got.root, h.root, sizeof h.root);
    store_head_clear(&got);
    casenet_buf dir = {0};
    uint64_t version = 0, bytes = 0;
    OK(store_directory_latest(d, &dir, &version));
    assert_int_equal(version, 3);
    casenet_buf_free(&dir);
    OK(store_member_bytes(d, HOTLINE, &bytes));
    assert_int_equal(bytes, 6);
    uint64_t idx = 0;
    OK(store_receipt_find(d, r.receipt_hash, &idx));
    assert_int_equal(idx, r.audit_index);
    IS(migrate_copy(f->s, d, &c), CASENET_ECONFLICT);
    store_close(d);
    backend->discard(spec);
    free(spec);
}

int conformance_run(const struct conformance_backend *b)
{
    backend = b;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_refuses_unknown_scheme),
        T(test_message_insert_get),
        T(test_message_receipt_sigs),
        T(test_sent_list_pages),
        T(test_sent_rows),
        T(test_member_bytes),
        T(test_receipts),
        T(test_inbox_refused_pairs),
        T(test_inbox_list_order_cursor_limit),
        T(test_inbox_reads),
        T(test_inbox_backlog_and_fetch_mark),
        T(test_deadlines),
        T(test_rollback_undoes_the_batch),
        T(test_savepoints),
        T(test_savepoint_depth),
        T(test_audit_append_order_and_index),
        T(test_audit_query_examined_cap),
        T(test_audit_tree_and_nodes),
        T(test_heads),
        T(test_directories),
        T(test_reopen_keeps_rows),
        T(test_migrate_copy),
    };
#undef T
    return _cmocka_run_group_tests(b->name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
