/* test_deadlines.c - referral lifecycle against a real casenetd run with a
 * policy of 2 s (deliver) and 4 s (accept) deadlines: escalations fire once
 * per breached deadline to the sender and every coordinator, as
 * broker-signed notices readable with casenet_open, never for a referral
 * taken in time, never again after a restart; exercise messages escalate
 * marked as such; an expiring message is dead-lettered; refused
 * transitions; group addressing; GetStatus / ListSent / ListOverdue and who
 * may see what. Each test runs a fresh network (tests/testlib/network.h). */
#include "network.h"
#include "testlib.h"

#include "envelope_impl.h"
#include "keys_impl.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOTLINE "vn.hotline111"
#define POLICE  "vn.police.a05"
#define POLICE2 "vn.police.pc02"
#define MOLISA  "vn.molisa"
#define COORD   "vn.coord"
#define COORD2  "vn.coord2"

#define DELIVER_MS 2000
#define ACCEPT_MS  4000
/* Generous: the timer ticks every second and the machine may be loaded. */
#define FIRE_TIMEOUT_MS 20000

static const char *const members[] = {
    HOTLINE ":intake",   POLICE ":responder:police", POLICE2 ":responder:police",
    MOLISA ":responder", COORD ":coordinator",       COORD2 ":coordinator",
};
#define N_MEMBERS (sizeof members / sizeof members[0])

static const char policy_text[] = "; 2 s deadlines for the tests\n"
                                  "[standard]\ndeliver_within = 2s\naccept_within = 4s\n"
                                  "[emergency]\ndeliver_within = 2s\naccept_within = 4s\n"
                                  "[info]\ndeliver_within = none\naccept_within = 0\n";

static int setup(void **state)
{
    tn_network *tn = tn_new(members, N_MEMBERS);
    char *policy = tl_path(tn->root, "policy.ini");
    tl_write_file(policy, policy_text, strlen(policy_text), 0644);
    tn->config_path = tl_path(tn->root, "casenetd.ini");
    char *ini = NULL;
    assert_true(asprintf(&ini, "[broker]\npolicy = %s\n", policy) > 0);
    tl_write_file(tn->config_path, ini, strlen(ini), 0644);
    free(ini);
    free(policy);
    tn_start(tn);
    *state = tn;
    return 0;
}

static int teardown(void **state)
{
    tn_network *tn = *state;
    assert_int_equal(tn_stop(tn), 0);
    tn_free(tn);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static casenet_client *connect_as(tn_network *tn, const char *id)
{
    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = 10000};
    casenet_client *c = NULL;
    int rc = casenet_client_connect(tn_keys(tn, id), tn->net->dir, &o, &c);
    if (rc != CASENET_OK)
        fail_msg("connect %s: %s", id, casenet_strerror(rc));
    return c;
}

/* Seals a referral and submits it as `from`; returns the envelope. */
static casenet_buf send_referral(tn_network *tn, const char *from, const char *const *to, size_t n,
                                 casenet_urgency urgency, casenet_msg_status status,
                                 int64_t expires_at_ms, uint8_t id[16])
{
    casenet_buf payload = tl_referral_payload_urgency("lifecycle test", urgency);
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL,
                           .urgency = urgency,
                           .status = status,
                           .to = to,
                           .n_to = n,
                           .expires_at_ms = expires_at_ms};
    casenet_buf env = {0};
    CN_OK(casenet_seal(tn_keys(tn, from), tn->net->dir, &o, payload.data, payload.len, &env, id));
    casenet_buf_free(&payload);
    casenet_client *c = connect_as(tn, from);
    casenet_submit_receipt r;
    int rc = casenet_client_submit(c, env.data, env.len, &r, NULL);
    if (rc != CASENET_OK)
        fail_msg("submit: %s: %s", casenet_strerror(rc), casenet_client_last_error(c));
    casenet_client_free(c);
    return env;
}

/* Signs and sends signer's receipt for message id; returns the broker's
 * answer (a casenet_err). */
static int send_receipt(tn_network *tn, const char *signer, const uint8_t id[16],
                        const casenet_buf *env, const char *sender, casenet_receipt_status st,
                        const char *reason, const char *outcome)
{
    casenet_receipt r = {0};
    memcpy(r.message_id, id, 16);
    cn_sha256(env->data, env->len, r.envelope_hash);
    snprintf(r.sender, sizeof r.sender, "%s", sender);
    snprintf(r.recipient, sizeof r.recipient, "%s", signer);
    r.status = st;
    snprintf(r.reason, sizeof r.reason, "%s", reason ? reason : "");
    if (outcome && casenet_outcome_parse(outcome, &r.outcome) != CASENET_OK)
        fail_msg("unknown outcome %s", outcome);
    r.signed_at_ms = cn_now_ms();
    /* Signed without the library's content rules: the broker must enforce
     * them itself. */
    casenet_buf signed_r = tl_sign_receipt_raw(tn_keys(tn, signer), &r);
    casenet_client *c = connect_as(tn, signer);
    int rc = casenet_client_send_receipt(c, signed_r.data, signed_r.len, NULL);
    casenet_client_free(c);
    casenet_buf_free(&signed_r);
    return rc;
}

/* Every inbox row of `member` of the given kind answering message id (any
 * message when id is NULL); their message ids into ids (up to 8). */
static size_t notices_about(tn_network *tn, const char *member, casenet_kind kind,
                            const uint8_t id[16], uint8_t ids[][16])
{
    casenet_client *c = connect_as(tn, member);
    size_t hits = 0;
    uint64_t cursor = 0;
    bool more = true;
    while (more) {
        casenet_inbox_entry *e = NULL;
        size_t n = 0;
        uint64_t next = 0;
        CN_OK(casenet_client_list(c, CASENET_INBOX_ANY, cursor, 100, &e, &n, &next, &more));
        for (size_t i = 0; i < n; i++) {
            if (e[i].kind == kind && e[i].has_in_reply_to &&
                (!id || memcmp(e[i].in_reply_to, id, 16) == 0)) {
                assert_string_equal(e[i].sender, TN_BROKER_ID);
                if (ids && hits < 8)
                    memcpy(ids[hits], e[i].message_id, 16);
                hits++;
            }
        }
        casenet_inbox_entries_free(e, n);
        if (n == 0)
            break;
        cursor = next;
    }
    casenet_client_free(c);
    return hits;
}

/* Polls until `member` holds at least want notices about id (or the time
 * runs out); returns how many it holds. */
static size_t wait_notices(tn_network *tn, const char *member, casenet_kind kind,
                           const uint8_t id[16], size_t want)
{
    int64_t deadline = cn_mono_ms() + FIRE_TIMEOUT_MS;
    size_t n;
    while ((n = notices_about(tn, member, kind, id, NULL)) < want && cn_mono_ms() < deadline)
        usleep(200 * 1000);
    return n;
}

/* Waits until the broker has run a whole deadline pass that started after
 * this call, so a test can then check that nothing (more) fired: a sentinel
 * referral of info urgency (no deliver/accept deadline in this policy) to
 * POLICE2, expiring SENTINEL_MS from now, must be dead-lettered to HOTLINE.
 * Its dead letter is committed with everything else the same pass settled,
 * and any deadline wrongly still open is older than the sentinel's, so once
 * the notice is listed that pass has seen it. A bare sleep proved nothing on
 * a loaded machine: no pass might run during it. The sentinel adds only
 * DEAD_LETTER notices about its own id. */
#define SENTINEL_MS 1000
static void wait_deadline_pass(tn_network *tn)
{
    const char *to[] = {POLICE2};
    uint8_t id[16];
    casenet_buf env = send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_INFO, CASENET_MSG_TEST,
                                    cn_now_ms() + SENTINEL_MS, id);
    assert_int_equal(wait_notices(tn, HOTLINE, CASENET_KIND_DEAD_LETTER, id, 1), 1);
    casenet_buf_free(&env);
}

/* Fetches and opens notice nid as reader; checks it is the broker's, of
 * kind, answering id; returns the BrokerNotice inside (free the Payload with
 * casenet__v1__payload__free_unpacked on *payload). */
static const Casenet__V1__BrokerNotice *open_notice(tn_network *tn, const char *reader,
                                                    const uint8_t nid[16], casenet_kind kind,
                                                    casenet_msg_status status,
                                                    Casenet__V1__Payload **payload)
{
    casenet_client *c = connect_as(tn, reader);
    casenet_buf env = {0}, plain = {0};
    CN_OK(casenet_client_fetch(c, nid, &env));
    casenet_client_free(c);
    casenet_message_info info = {0};
    CN_OK(casenet_open(tn_keys(tn, reader), tn->net->dir, env.data, env.len, &info, &plain));
    assert_string_equal(info.sender, TN_BROKER_ID);
    assert_int_equal(info.kind, kind);
    assert_int_equal(info.status, status);
    *payload = casenet__v1__payload__unpack(NULL, plain.len, plain.data);
    assert_non_null(*payload);
    assert_int_equal((*payload)->body_case, CASENET__V1__PAYLOAD__BODY_NOTICE);
    casenet_message_info_clear(&info);
    casenet_buf_free(&plain);
    casenet_buf_free(&env);
    return (*payload)->notice;
}

/* Audit events of one kind; with id, only those about message id. With
 * status_out, the message_status of the last one. */
static int audit_events(tn_network *tn, int kind, const uint8_t *id, int *status_out)
{
    char *path = tl_path(tn->data_dir, "casenet.db");
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT event FROM audit WHERE kind = ?1 ORDER BY idx",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int(st, 1, kind);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        Casenet__V1__AuditEvent *ev = casenet__v1__audit_event__unpack(
            NULL, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 0));
        assert_non_null(ev);
        if (!id || (ev->message_id.len == 16 && memcmp(ev->message_id.data, id, 16) == 0)) {
            n++;
            if (status_out)
                *status_out = (int)ev->message_status;
        }
        casenet__v1__audit_event__free_unpacked(ev, NULL);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return n;
}

static const casenet_deadline *find_deadline(const casenet_recipient_status *r,
                                             casenet_deadline_kind k)
{
    for (size_t i = 0; i < r->n_deadlines; i++) {
        if (r->deadlines[i].kind == k)
            return &r->deadlines[i];
    }
    fail_msg("no %s deadline for %s", casenet_deadline_kind_name(k), r->recipient);
    return NULL;
}

static casenet_message_status status_as(tn_network *tn, const char *who, const uint8_t id[16])
{
    casenet_client *c = connect_as(tn, who);
    casenet_message_status s;
    int rc = casenet_client_status(c, id, &s);
    if (rc != CASENET_OK)
        fail_msg("status as %s: %s: %s", who, casenet_strerror(rc), casenet_client_last_error(c));
    casenet_client_free(c);
    return s;
}

static size_t overdue_about(tn_network *tn, const uint8_t id[16], casenet_deadline_kind k,
                            casenet_msg_status *status)
{
    casenet_client *c = connect_as(tn, COORD);
    casenet_overdue *o = NULL;
    size_t n = 0, hits = 0;
    bool more = false;
    CN_OK(casenet_client_list_overdue(c, 0, 1000, &o, &n, NULL, &more));
    assert_false(more);
    for (size_t i = 0; i < n; i++) {
        if (memcmp(o[i].message_id, id, 16) == 0 && o[i].deadline == k) {
            hits++;
            assert_string_equal(o[i].recipient, POLICE);
            assert_true(o[i].has_notice);
            if (status)
                *status = o[i].status;
        }
    }
    free(o);
    casenet_client_free(c);
    return hits;
}

/* ------------------------------------------------------------ escalation */

static void test_escalates_once_per_deadline(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    uint8_t id[16];
    int64_t before = cn_now_ms();
    casenet_buf env =
        send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_STANDARD, CASENET_MSG_ACTUAL, 0, id);

    /* Neither delivered nor accepted: the deliver escalation, then the
     * accept one; each to the sender and both coordinators. */
    assert_int_equal(wait_notices(tn, HOTLINE, CASENET_KIND_ESCALATION, id, 2), 2);
    assert_true(cn_now_ms() - before >= ACCEPT_MS);
    wait_deadline_pass(tn);
    uint8_t nids[8][16];
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_ESCALATION, id, nids), 2);
    assert_int_equal(notices_about(tn, COORD, CASENET_KIND_ESCALATION, id, NULL), 2);
    assert_int_equal(notices_about(tn, COORD2, CASENET_KIND_ESCALATION, id, NULL), 2);
    assert_int_equal(notices_about(tn, POLICE, CASENET_KIND_ESCALATION, id, NULL), 0);
    assert_int_equal(notices_about(tn, MOLISA, CASENET_KIND_ESCALATION, id, NULL), 0);
    int ev_status = 0;
    assert_int_equal(
        audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED, id, &ev_status), 2);
    assert_int_equal(ev_status, CASENET_MSG_ACTUAL);

    /* Signed by the broker, encrypted, readable, naming the referral. */
    casenet_message_status s = status_as(tn, HOTLINE, id);
    assert_int_equal(s.n_recipients, 1);
    const casenet_deadline *dd = find_deadline(&s.recipients[0], CASENET_DEADLINE_DELIVER);
    const casenet_deadline *da = find_deadline(&s.recipients[0], CASENET_DEADLINE_ACCEPT);
    assert_int_equal(dd->state, CASENET_DEADLINE_BREACHED);
    assert_int_equal(da->state, CASENET_DEADLINE_BREACHED);
    assert_int_equal(dd->due_at_ms, s.received_at_ms + DELIVER_MS);
    assert_int_equal(da->due_at_ms, s.received_at_ms + ACCEPT_MS);
    assert_true(dd->has_notice && da->has_notice);
    bool seen[3] = {false, false, false};
    for (size_t i = 0; i < 2; i++) {
        Casenet__V1__Payload *p = NULL;
        const Casenet__V1__BrokerNotice *n =
            open_notice(tn, HOTLINE, nids[i], CASENET_KIND_ESCALATION, CASENET_MSG_ACTUAL, &p);
        assert_int_equal(n->message_id.len, 16);
        assert_memory_equal(n->message_id.data, id, 16);
        assert_string_equal(n->sender, HOTLINE);
        assert_string_equal(n->recipient, POLICE);
        assert_int_equal(n->urgency, CASENET_URGENCY_STANDARD);
        assert_int_equal(n->message_status, CASENET_MSG_ACTUAL);
        assert_true(n->reason == CASENET__V1__NOTICE_REASON__NOTICE_REASON_DELIVER_OVERDUE ||
                    n->reason == CASENET__V1__NOTICE_REASON__NOTICE_REASON_ACCEPT_OVERDUE);
        const casenet_deadline *d = n->reason == 1 ? dd : da;
        assert_false(seen[n->reason]);
        seen[n->reason] = true;
        assert_int_equal(n->due_at_ms, d->due_at_ms);
        assert_true(n->raised_at_ms >= d->due_at_ms);
        assert_memory_equal(nids[i], d->notice_id, 16);
        casenet__v1__payload__free_unpacked(p, NULL);
    }
    casenet_message_status_clear(&s);
    /* A coordinator reads its copy too. */
    uint8_t cids[8][16];
    assert_int_equal(notices_about(tn, COORD, CASENET_KIND_ESCALATION, id, cids), 2);
    Casenet__V1__Payload *p = NULL;
    const Casenet__V1__BrokerNotice *n =
        open_notice(tn, COORD, cids[0], CASENET_KIND_ESCALATION, CASENET_MSG_ACTUAL, &p);
    assert_memory_equal(n->message_id.data, id, 16);
    casenet__v1__payload__free_unpacked(p, NULL);

    /* Overdue for coordinators; both deadlines. */
    assert_int_equal(overdue_about(tn, id, CASENET_DEADLINE_DELIVER, NULL), 1);
    assert_int_equal(overdue_about(tn, id, CASENET_DEADLINE_ACCEPT, NULL), 1);

    /* A restart does not fire again. */
    assert_int_equal(tn_stop(tn), 0);
    tn_restart(tn);
    wait_deadline_pass(tn);
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_ESCALATION, id, NULL), 2);
    assert_int_equal(notices_about(tn, COORD, CASENET_KIND_ESCALATION, id, NULL), 2);
    assert_int_equal(audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED, id, NULL), 2);

    /* Delivered late: no longer overdue for delivery, still for acceptance;
     * and nothing fires again. */
    CN_OK(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL));
    assert_int_equal(overdue_about(tn, id, CASENET_DEADLINE_DELIVER, NULL), 0);
    assert_int_equal(overdue_about(tn, id, CASENET_DEADLINE_ACCEPT, NULL), 1);
    CN_OK(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_DECLINED, "not-competent",
                       NULL));
    assert_int_equal(overdue_about(tn, id, CASENET_DEADLINE_ACCEPT, NULL), 0);
    wait_deadline_pass(tn);
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_ESCALATION, id, NULL), 2);
    casenet_buf_free(&env);
}

static void test_taken_in_time_never_escalates(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    uint8_t a[16], b[16];
    casenet_buf ea =
        send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_STANDARD, CASENET_MSG_ACTUAL, 0, a);
    casenet_buf eb =
        send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_EMERGENCY, CASENET_MSG_ACTUAL, 0, b);
    /* a: delivered and accepted at once; b: delivered only. */
    CN_OK(send_receipt(tn, POLICE, a, &ea, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL));
    CN_OK(send_receipt(tn, POLICE, a, &ea, HOTLINE, CASENET_RECEIPT_ACCEPTED, NULL, NULL));
    CN_OK(send_receipt(tn, POLICE, b, &eb, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL));

    assert_int_equal(wait_notices(tn, HOTLINE, CASENET_KIND_ESCALATION, b, 1), 1);
    wait_deadline_pass(tn);
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_ESCALATION, a, NULL), 0);
    assert_int_equal(notices_about(tn, COORD, CASENET_KIND_ESCALATION, a, NULL), 0);
    uint8_t nids[8][16];
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_ESCALATION, b, nids), 1);
    assert_int_equal(audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED, NULL, NULL),
                     1);
    Casenet__V1__Payload *p = NULL;
    const Casenet__V1__BrokerNotice *n =
        open_notice(tn, HOTLINE, nids[0], CASENET_KIND_ESCALATION, CASENET_MSG_ACTUAL, &p);
    assert_int_equal(n->reason, CASENET__V1__NOTICE_REASON__NOTICE_REASON_ACCEPT_OVERDUE);
    assert_int_equal(n->urgency, CASENET_URGENCY_EMERGENCY);
    casenet__v1__payload__free_unpacked(p, NULL);

    casenet_message_status s = status_as(tn, HOTLINE, a);
    assert_int_equal(find_deadline(&s.recipients[0], CASENET_DEADLINE_DELIVER)->state,
                     CASENET_DEADLINE_MET);
    assert_int_equal(find_deadline(&s.recipients[0], CASENET_DEADLINE_ACCEPT)->state,
                     CASENET_DEADLINE_MET);
    casenet_message_status_clear(&s);
    s = status_as(tn, HOTLINE, b);
    assert_int_equal(find_deadline(&s.recipients[0], CASENET_DEADLINE_DELIVER)->state,
                     CASENET_DEADLINE_MET);
    assert_int_equal(find_deadline(&s.recipients[0], CASENET_DEADLINE_ACCEPT)->state,
                     CASENET_DEADLINE_BREACHED);
    casenet_message_status_clear(&s);
    casenet_buf_free(&ea);
    casenet_buf_free(&eb);
}

static void test_due_while_down_fires_once(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf env =
        send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_STANDARD, CASENET_MSG_ACTUAL, 0, id);
    assert_int_equal(tn_stop(tn), 0);
    usleep((ACCEPT_MS + 500) * 1000); /* both deadlines fall due while it is down */
    tn_restart(tn);
    assert_int_equal(wait_notices(tn, HOTLINE, CASENET_KIND_ESCALATION, id, 2), 2);
    /* Killed right after: the escalations were committed, never repeated. */
    tn_kill(tn);
    tn_restart(tn);
    wait_deadline_pass(tn);
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_ESCALATION, id, NULL), 2);
    assert_int_equal(notices_about(tn, COORD2, CASENET_KIND_ESCALATION, id, NULL), 2);
    assert_int_equal(audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED, id, NULL), 2);
    casenet_buf_free(&env);
}

static void test_exercise_escalates_as_exercise(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    uint8_t x[16], r[16];
    casenet_buf ex =
        send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_STANDARD, CASENET_MSG_EXERCISE, 0, x);
    casenet_buf er =
        send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_STANDARD, CASENET_MSG_ACTUAL, 0, r);
    assert_int_equal(wait_notices(tn, COORD, CASENET_KIND_ESCALATION, x, 2), 2);
    assert_int_equal(wait_notices(tn, COORD, CASENET_KIND_ESCALATION, r, 2), 2);
    uint8_t nids[8][16];
    assert_int_equal(notices_about(tn, COORD, CASENET_KIND_ESCALATION, x, nids), 2);
    Casenet__V1__Payload *p = NULL;
    const Casenet__V1__BrokerNotice *n =
        open_notice(tn, COORD, nids[0], CASENET_KIND_ESCALATION, CASENET_MSG_EXERCISE, &p);
    assert_int_equal(n->message_status, CASENET_MSG_EXERCISE);
    casenet__v1__payload__free_unpacked(p, NULL);
    int st = 0;
    assert_int_equal(audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED, x, &st), 2);
    assert_int_equal(st, CASENET_MSG_EXERCISE);
    assert_int_equal(audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED, r, &st), 2);
    assert_int_equal(st, CASENET_MSG_ACTUAL);
    casenet_msg_status os = 0;
    assert_int_equal(overdue_about(tn, x, CASENET_DEADLINE_DELIVER, &os), 1);
    assert_int_equal(os, CASENET_MSG_EXERCISE);
    assert_int_equal(overdue_about(tn, r, CASENET_DEADLINE_DELIVER, &os), 1);
    assert_int_equal(os, CASENET_MSG_ACTUAL);
    casenet_buf_free(&ex);
    casenet_buf_free(&er);
}

/* ------------------------------------------------------------ dead letter */

static void test_dead_letter(void **state)
{
    tn_network *tn = *state;
    /* Info urgency: no deliver/accept deadline in this policy, only expiry. */
    const char *to[] = {POLICE, MOLISA};
    uint8_t id[16];
    casenet_buf env = send_referral(tn, HOTLINE, to, 2, CASENET_URGENCY_INFO, CASENET_MSG_TEST,
                                    cn_now_ms() + 4000, id);
    CN_OK(send_receipt(tn, MOLISA, id, &env, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL));
    assert_int_equal(wait_notices(tn, HOTLINE, CASENET_KIND_DEAD_LETTER, id, 1), 1);
    wait_deadline_pass(tn);
    uint8_t nids[8][16];
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_DEAD_LETTER, id, nids), 1);
    assert_int_equal(notices_about(tn, COORD, CASENET_KIND_DEAD_LETTER, id, NULL), 0);
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_ESCALATION, id, NULL), 0);
    int st = 0;
    assert_int_equal(audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_DEAD_LETTERED, id, &st),
                     1);
    assert_int_equal(st, CASENET_MSG_TEST);
    Casenet__V1__Payload *p = NULL;
    const Casenet__V1__BrokerNotice *n =
        open_notice(tn, HOTLINE, nids[0], CASENET_KIND_DEAD_LETTER, CASENET_MSG_TEST, &p);
    assert_int_equal(n->reason, CASENET__V1__NOTICE_REASON__NOTICE_REASON_EXPIRED);
    assert_memory_equal(n->message_id.data, id, 16);
    assert_int_equal(n->n_recipients, 1);
    assert_string_equal(n->recipients[0], POLICE);
    assert_string_equal(n->recipient, POLICE);
    casenet_message_status s = status_as(tn, HOTLINE, id);
    assert_int_equal(n->due_at_ms, s.expires_at_ms);
    casenet__v1__payload__free_unpacked(p, NULL);
    for (size_t i = 0; i < s.n_recipients; i++) {
        const casenet_recipient_status *r = &s.recipients[i];
        const casenet_deadline *e = find_deadline(r, CASENET_DEADLINE_EXPIRE);
        assert_int_equal(r->n_deadlines, 1);
        if (strcmp(r->recipient, POLICE) == 0) {
            assert_int_equal(r->state, CASENET_INBOX_DEAD);
            assert_int_equal(e->state, CASENET_DEADLINE_BREACHED);
            assert_memory_equal(e->notice_id, nids[0], 16);
            assert_int_equal(r->n_steps, 2); /* queued, dead */
            assert_int_equal(r->steps[1].state, CASENET_INBOX_DEAD);
            assert_string_equal(r->steps[1].actor, "");
        } else {
            assert_int_equal(r->state, CASENET_INBOX_DELIVERED);
            assert_int_equal(e->state, CASENET_DEADLINE_MET);
        }
    }
    casenet_message_status_clear(&s);
    /* A dead row cannot be fetched any more, nor take a receipt. */
    casenet_client *pc = connect_as(tn, POLICE);
    casenet_buf late = {0};
    CN_ERR(casenet_client_fetch(pc, id, &late), CASENET_ENOTFOUND);
    casenet_client_free(pc);
    CN_ERR(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL),
           CASENET_ECONFLICT);
    casenet_buf_free(&env);
}

/* ------------------------------------------------------------ transitions */

static void test_refused_transitions(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE, POLICE2};
    uint8_t id[16];
    casenet_buf env =
        send_referral(tn, HOTLINE, to, 2, CASENET_URGENCY_INFO, CASENET_MSG_ACTUAL, 0, id);
    /* Completed before accepted. */
    CN_ERR(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_COMPLETED, NULL, "resolved"),
           CASENET_ECONFLICT);
    /* A receipt for a message the member did not receive. */
    CN_ERR(send_receipt(tn, MOLISA, id, &env, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL),
           CASENET_ENOTFOUND);
    CN_OK(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL));
    CN_OK(send_receipt(tn, POLICE2, id, &env, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL));
    /* Declined without a reason, or with an unknown one. */
    CN_ERR(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_DECLINED, NULL, NULL),
           CASENET_EBADREQ);
    CN_ERR(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_DECLINED, "too-busy", NULL),
           CASENET_EBADREQ);
    CN_OK(
        send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_DECLINED, "redirected", NULL));
    /* Declined is final. */
    CN_ERR(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_ACCEPTED, NULL, NULL),
           CASENET_ECONFLICT);
    CN_ERR(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_COMPLETED, NULL, "resolved"),
           CASENET_ECONFLICT);
    /* Completed needs an outcome. */
    CN_OK(send_receipt(tn, POLICE2, id, &env, HOTLINE, CASENET_RECEIPT_ACCEPTED, NULL, NULL));
    CN_ERR(send_receipt(tn, POLICE2, id, &env, HOTLINE, CASENET_RECEIPT_COMPLETED, NULL, NULL),
           CASENET_EBADREQ);
    CN_OK(send_receipt(tn, POLICE2, id, &env, HOTLINE, CASENET_RECEIPT_COMPLETED, NULL,
                       "no-action-needed"));
    casenet_message_status s = status_as(tn, HOTLINE, id);
    assert_int_equal(s.n_recipients, 2);
    assert_int_equal(s.recipients[0].state, CASENET_INBOX_DECLINED);
    assert_int_equal(s.recipients[1].state, CASENET_INBOX_COMPLETED);
    casenet_message_status_clear(&s);
    casenet_buf_free(&env);
}

/* ------------------------------------------------------------ visibility */

static void test_group_status_and_visibility(void **state)
{
    tn_network *tn = *state;
    /* @police names both police members explicitly in the header. */
    const char *to[] = {"@police"};
    uint8_t id[16];
    casenet_buf env =
        send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_STANDARD, CASENET_MSG_ACTUAL, 0, id);
    casenet_message_info info = {0};
    CN_OK(casenet_envelope_verify(tn->net->dir, env.data, env.len, &info));
    assert_int_equal(info.n_recipients, 2);
    assert_string_equal(info.recipients[0], POLICE);
    assert_string_equal(info.recipients[1], POLICE2);
    casenet_message_info_clear(&info);

    /* POLICE: fetch, delivered, accepted. */
    casenet_client *pc = connect_as(tn, POLICE);
    casenet_buf got = {0};
    CN_OK(casenet_client_fetch(pc, id, &got));
    casenet_buf_free(&got);
    casenet_client_free(pc);
    CN_OK(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL));
    CN_OK(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_ACCEPTED, NULL, NULL));

    /* The sender and the coordinators see both rows; the timeline of POLICE
     * with the signed receipts and the broker's receipt. */
    const char *all[] = {HOTLINE, COORD};
    for (size_t w = 0; w < 2; w++) {
        casenet_message_status s = status_as(tn, all[w], id);
        assert_memory_equal(s.message_id, id, 16);
        assert_string_equal(s.sender, HOTLINE);
        assert_int_equal(s.kind, CASENET_KIND_REFERRAL);
        assert_int_equal(s.n_recipients, 2);
        casenet_submit_receipt br;
        CN_OK(casenet_submit_receipt_verify(tn->net->dir, s.broker_receipt.data,
                                            s.broker_receipt.len, &br));
        assert_memory_equal(br.message_id, id, 16);
        const casenet_recipient_status *r = &s.recipients[0];
        assert_string_equal(r->recipient, POLICE);
        assert_int_equal(r->state, CASENET_INBOX_ACCEPTED);
        assert_int_equal(r->n_steps, 4);
        int want[4] = {CASENET_INBOX_QUEUED, CASENET_INBOX_FETCHED, CASENET_INBOX_DELIVERED,
                       CASENET_INBOX_ACCEPTED};
        for (size_t i = 0; i < 4; i++) {
            assert_int_equal(r->steps[i].state, want[i]);
            assert_string_equal(r->steps[i].actor, i == 0 ? HOTLINE : POLICE);
            if (i >= 2) {
                casenet_receipt rc;
                CN_OK(casenet_receipt_verify(tn->net->dir, r->steps[i].receipt.data,
                                             r->steps[i].receipt.len, &rc));
                assert_string_equal(rc.recipient, POLICE);
                assert_memory_equal(rc.message_id, id, 16);
                assert_int_equal((int)rc.status + 2, want[i]);
            } else {
                assert_int_equal(r->steps[i].receipt.len, 0);
            }
            if (i > 0)
                assert_true(r->steps[i].at_ms >= r->steps[i - 1].at_ms);
        }
        assert_string_equal(s.recipients[1].recipient, POLICE2);
        assert_int_equal(s.recipients[1].state, CASENET_INBOX_QUEUED);
        assert_int_equal(s.recipients[1].n_steps, 1);
        casenet_message_status_clear(&s);
    }
    /* A recipient sees its own row only. */
    casenet_message_status s = status_as(tn, POLICE2, id);
    assert_int_equal(s.n_recipients, 1);
    assert_string_equal(s.recipients[0].recipient, POLICE2);
    casenet_message_status_clear(&s);
    /* Anyone else: NOT_FOUND, as for an id that does not exist. */
    casenet_client *mc = connect_as(tn, MOLISA);
    CN_ERR(casenet_client_status(mc, id, &s), CASENET_ENOTFOUND);
    uint8_t none[16] = {0};
    CN_ERR(casenet_client_status(mc, none, &s), CASENET_ENOTFOUND);
    /* Overdue is for coordinators. */
    casenet_overdue *o = NULL;
    size_t n = 0;
    CN_ERR(casenet_client_list_overdue(mc, 0, 0, &o, &n, NULL, NULL), CASENET_EFORBIDDEN);
    /* MOLISA sent nothing. */
    casenet_message_status *sent = NULL;
    bool more = true;
    CN_OK(casenet_client_list_sent(mc, false, 0, 0, 0, &sent, &n, NULL, &more));
    assert_int_equal(n, 0);
    assert_false(more);
    casenet_message_statuses_free(sent, n);
    casenet_client_free(mc);
    casenet_buf_free(&env);
}

static void test_list_sent(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    uint8_t ids[3][16];
    casenet_buf envs[3];
    for (size_t i = 0; i < 3; i++)
        envs[i] =
            send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_INFO, CASENET_MSG_ACTUAL, 0, ids[i]);
    /* The first is settled (delivered, accepted, then completed). */
    CN_OK(
        send_receipt(tn, POLICE, ids[0], &envs[0], HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL));
    CN_OK(
        send_receipt(tn, POLICE, ids[0], &envs[0], HOTLINE, CASENET_RECEIPT_ACCEPTED, NULL, NULL));
    CN_OK(send_receipt(tn, POLICE, ids[0], &envs[0], HOTLINE, CASENET_RECEIPT_COMPLETED, NULL,
                       "resolved"));
    casenet_client *c = connect_as(tn, HOTLINE);
    casenet_message_status *m = NULL;
    size_t n = 0;
    bool more = false;
    CN_OK(casenet_client_list_sent(c, false, 0, 0, 0, &m, &n, NULL, &more));
    assert_int_equal(n, 3);
    assert_false(more);
    for (size_t i = 0; i < 3; i++) {
        assert_memory_equal(m[i].message_id, ids[i], 16);
        assert_int_equal(m[i].n_recipients, 1);
        assert_int_equal(m[i].recipients[0].n_steps, 0);
    }
    assert_int_equal(m[0].recipients[0].state, CASENET_INBOX_COMPLETED);
    casenet_message_statuses_free(m, n);
    CN_OK(casenet_client_list_sent(c, true, 0, 0, 0, &m, &n, NULL, &more));
    assert_int_equal(n, 2);
    assert_memory_equal(m[0].message_id, ids[1], 16);
    assert_memory_equal(m[1].message_id, ids[2], 16);
    casenet_message_statuses_free(m, n);
    /* Paging, one at a time. */
    uint64_t cursor = 0;
    size_t seen = 0;
    more = true;
    while (more) {
        uint64_t next = 0;
        CN_OK(casenet_client_list_sent(c, false, 0, cursor, 1, &m, &n, &next, &more));
        assert_true(n <= 1);
        if (n)
            assert_memory_equal(m[0].message_id, ids[seen], 16);
        seen += n;
        casenet_message_statuses_free(m, n);
        cursor = next;
    }
    assert_int_equal(seen, 3);
    /* Open ones one at a time: the settled first is skipped, not returned. */
    cursor = 0;
    seen = 0;
    more = true;
    while (more) {
        uint64_t next = 0;
        CN_OK(casenet_client_list_sent(c, true, 0, cursor, 1, &m, &n, &next, &more));
        assert_true(n <= 1);
        if (n)
            assert_memory_equal(m[0].message_id, ids[1 + seen], 16);
        seen += n;
        casenet_message_statuses_free(m, n);
        assert_true(next > cursor || !more);
        cursor = next;
    }
    assert_int_equal(seen, 2);
    /* A kind filter. */
    CN_OK(casenet_client_list_sent(c, false, CASENET_KIND_STATUS, 0, 0, &m, &n, NULL, &more));
    assert_int_equal(n, 0);
    casenet_message_statuses_free(m, n);
    casenet_client_free(c);
    for (size_t i = 0; i < 3; i++)
        casenet_buf_free(&envs[i]);
}

/* ------------------------------------------------------------ policy */

static void test_bad_policy_refused(void **state)
{
    tn_network *tn = *state;
    assert_int_equal(tn_stop(tn), 0);
    const char *bin_dir = getenv("CASENET_BINARY_DIR");
    static const char *const bad[] = {
        "[emergency]\ndeliver_within = 15x\n", "[emergency]\ndeliver_within = -5m\n",
        "[urgent]\ndeliver_within = 1h\n",     "[standard]\nack_within = 1h\n",
        "[info]\naccept_within = 400d\n",
    };
    char *path = tl_path(tn->root, "bad.ini");
    char *out = tl_path(tn->root, "check.out");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tl_write_file(path, bad[i], strlen(bad[i]), 0644);
        char *cmd = NULL;
        assert_true(asprintf(&cmd,
                             "%s/broker/casenetd --check-config --policy %s --data %s --listen "
                             "tcp://127.0.0.1:1 --key %s --directory %s --authority %s >%s 2>&1",
                             bin_dir, path, tn->data_dir, tn->broker_key_path, tn->directory_path,
                             tn->authority_path, out) > 0);
        int st = system(cmd);
        free(cmd);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        size_t len = 0;
        char *text = (char *)tl_read_file(out, &len);
        assert_non_null(strstr(text, "bad.ini:"));
        free(text);
    }
    /* A good one is printed back. */
    const char *good = "[urgent-takedown]\naccept_within = 12h\n";
    tl_write_file(path, good, strlen(good), 0644);
    char *cmd = NULL;
    assert_true(asprintf(&cmd,
                         "%s/broker/casenetd --check-config --policy %s --data %s --listen "
                         "tcp://127.0.0.1:1 --key %s --directory %s --authority %s >%s 2>&1",
                         bin_dir, path, tn->data_dir, tn->broker_key_path, tn->directory_path,
                         tn->authority_path, out) > 0);
    int st = system(cmd);
    free(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    size_t len = 0;
    char *text = (char *)tl_read_file(out, &len);
    assert_non_null(strstr(text, "urgent-takedown  deliver_within = 1h     accept_within = 12h"));
    assert_non_null(strstr(text, "emergency        deliver_within = 15m    accept_within = 1h"));
    free(text);
    free(path);
    free(out);
    tn_start(tn); /* teardown stops it */
}

/* ------------------------------------------------------------ floods */

/* An emergency referral from `from` to itself, sealed and signed by hand
 * (casenet_seal refuses it): what a hostile client can send. */
static casenet_buf seal_to_self(tn_network *tn, const char *from)
{
    casenet_member me;
    CN_OK(casenet_directory_find(tn->net->dir, from, &me));
    const char *key_id = NULL;
    const uint8_t *sk = cn_keys_sign_sk(tn_keys(tn, from), &key_id);
    uint8_t id[16], nonce[24], key[32], eph_pk[32], eph_sk[32];
    randombytes_buf(id, sizeof id);
    randombytes_buf(nonce, sizeof nonce);
    randombytes_buf(key, sizeof key);
    crypto_box_keypair(eph_pk, eph_sk);
    struct cn_seal_recipient r = {.id = me.id,
                                  .box_key_id = me.box_key_id,
                                  .box_pk = me.box_pk,
                                  .eph_pk = eph_pk,
                                  .eph_sk = eph_sk};
    casenet_buf payload = tl_referral_payload("to myself");
    struct cn_seal_params p = {.sender = from,
                               .sign_key_id = key_id,
                               .sign_sk = sk,
                               .kind = CASENET_KIND_REFERRAL,
                               .urgency = CASENET_URGENCY_EMERGENCY,
                               .status = CASENET_MSG_ACTUAL,
                               .created_at_ms = cn_now_ms(),
                               .message_id = id,
                               .nonce = nonce,
                               .content_key = key,
                               .n_recipients = 1,
                               .recipients = &r,
                               .payload = payload.data,
                               .payload_len = payload.len};
    casenet_buf env = {0};
    CN_OK(cn_seal_raw(&p, &env));
    casenet_buf_free(&payload);
    return env;
}

#define SELF_FLOOD 200

static void restart_with(tn_network *tn, const char *more_ini);

static void test_self_addressed_refused(void **state)
{
    tn_network *tn = *state;
    /* 200 Submits in a row: no rate limit in the way. */
    restart_with(tn, "[limits]\nsubmit_rate = 0\n");
    /* The library refuses to seal it... */
    const char *self[] = {HOTLINE};
    casenet_buf payload = tl_referral_payload("to myself");
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = self, .n_to = 1};
    casenet_buf env = {0};
    CN_ERR(
        casenet_seal(tn_keys(tn, HOTLINE), tn->net->dir, &o, payload.data, payload.len, &env, NULL),
        CASENET_EFORBIDDEN);
    /* ...and a group leaves the sender out. */
    const char *group[] = {"@police"};
    o.to = group;
    uint8_t gid[16];
    CN_OK(
        casenet_seal(tn_keys(tn, POLICE), tn->net->dir, &o, payload.data, payload.len, &env, gid));
    casenet_message_info info = {0};
    CN_OK(casenet_envelope_verify(tn->net->dir, env.data, env.len, &info));
    assert_int_equal(info.n_recipients, 1);
    assert_string_equal(info.recipients[0], POLICE2);
    casenet_message_info_clear(&info);
    casenet_buf_free(&env);
    casenet_buf_free(&payload);

    /* The broker refuses every one of a flood of them. */
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    int forbidden = 0;
    for (int i = 0; i < SELF_FLOOD; i++) {
        casenet_buf e = seal_to_self(tn, HOTLINE);
        Casenet__V1__Response *r = tn_submit(h, e.data, e.len);
        forbidden += tn_code(r) == CASENET_EFORBIDDEN;
        casenet__v1__response__free_unpacked(r, NULL);
        casenet_buf_free(&e);
    }
    tn_close(h); /* before asserting: an open socket would hold the context */
    assert_int_equal(forbidden, SELF_FLOOD);
    /* An honest emergency sent after them escalates: every escalation the
     * coordinator holds is about it, none about the flood. */
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf sent =
        send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_EMERGENCY, CASENET_MSG_ACTUAL, 0, id);
    assert_true(wait_notices(tn, COORD, CASENET_KIND_ESCALATION, id, 1) >= 1);
    size_t all = notices_about(tn, COORD, CASENET_KIND_ESCALATION, NULL, NULL);
    assert_int_equal(all, notices_about(tn, COORD, CASENET_KIND_ESCALATION, id, NULL));
    casenet_buf_free(&sent);
}

/* Restarts the broker with more lines in its config file. */
static void restart_with(tn_network *tn, const char *more_ini)
{
    assert_int_equal(tn_stop(tn), 0);
    size_t len = 0;
    char *ini = (char *)tl_read_file(tn->config_path, &len);
    char *more = NULL;
    assert_true(asprintf(&more, "%.*s\n%s", (int)len, ini, more_ini) > 0);
    tl_write_file(tn->config_path, more, strlen(more), 0644);
    free(more);
    free(ini);
    tn_start(tn);
}

#define BUDGET_SENT 10 /* each breaches deliver and accept: 20 breaches */

static void test_escalation_budget(void **state)
{
    tn_network *tn = *state;
    /* The test's deadlines with a budget of 3 notices per 8 s. */
    restart_with(tn, "[limits]\nescalation_budget = 3\nescalation_period_s = 8\n");

    const char *to[] = {POLICE};
    for (int i = 0; i < BUDGET_SENT; i++) {
        casenet_buf env = send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_EMERGENCY,
                                        CASENET_MSG_ACTUAL, 0, NULL);
        casenet_buf_free(&env);
    }
    /* Every breach is audited, then the period's summary. */
    int64_t deadline = cn_mono_ms() + 3 * FIRE_TIMEOUT_MS;
    while (audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED, NULL, NULL) <
               2 * BUDGET_SENT + 1 &&
           cn_mono_ms() < deadline)
        usleep(200 * 1000);
    assert_int_equal(audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED, NULL, NULL),
                     2 * BUDGET_SENT + 1);
    /* Each coordinator and the sender got the budget: two notices and the
     * summary of the other 18 breaches. */
    uint8_t nids[8][16];
    assert_int_equal(notices_about(tn, COORD, CASENET_KIND_ESCALATION, NULL, nids), 3);
    assert_int_equal(notices_about(tn, COORD2, CASENET_KIND_ESCALATION, NULL, NULL), 3);
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_ESCALATION, NULL, NULL), 3);
    int summaries = 0;
    for (size_t i = 0; i < 3; i++) {
        Casenet__V1__Payload *p = NULL;
        const Casenet__V1__BrokerNotice *n =
            open_notice(tn, COORD, nids[i], CASENET_KIND_ESCALATION, CASENET_MSG_ACTUAL, &p);
        assert_string_equal(n->sender, HOTLINE);
        if (n->reason == CASENET__V1__NOTICE_REASON__NOTICE_REASON_ESCALATION_SUMMARY) {
            summaries++;
            assert_int_equal(n->summarized, 2 * BUDGET_SENT - 2);
            assert_true(n->period_start_ms > 0 && n->period_start_ms <= n->raised_at_ms);
        }
        casenet__v1__payload__free_unpacked(p, NULL);
    }
    assert_int_equal(summaries, 1);
}

/* A broker notice obeys the backlog cap: a member whose inbox is full is
 * left out of it; the others still get it. */
static void test_notice_obeys_backlog(void **state)
{
    tn_network *tn = *state;
    /* The hotline's inbox is full: a referral from the police waits in it
     * (forwarded receipts do not count against the cap); urgency info, so
     * that it arms no deadline and the coordinators' inboxes stay empty. */
    restart_with(tn, "[limits]\nmax_inbox_backlog = 1\nemergency_reserve_pct = 0\n");
    const char *hotline[] = {HOTLINE};
    casenet_buf filler =
        send_referral(tn, POLICE, hotline, 1, CASENET_URGENCY_INFO, CASENET_MSG_ACTUAL, 0, NULL);
    casenet_buf_free(&filler);
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf env =
        send_referral(tn, HOTLINE, to, 1, CASENET_URGENCY_EMERGENCY, CASENET_MSG_ACTUAL, 0, id);
    /* Delivered in time. */
    CN_OK(send_receipt(tn, POLICE, id, &env, HOTLINE, CASENET_RECEIPT_DELIVERED, NULL, NULL));
    /* Never accepted: the accept escalation reaches the coordinators only. */
    assert_int_equal(wait_notices(tn, COORD, CASENET_KIND_ESCALATION, id, 1), 1);
    assert_int_equal(notices_about(tn, COORD2, CASENET_KIND_ESCALATION, id, NULL), 1);
    assert_int_equal(notices_about(tn, HOTLINE, CASENET_KIND_ESCALATION, id, NULL), 0);
    assert_int_equal(audit_events(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED, id, NULL), 1);
    assert_true(tn_log_contains(tn, "event=notice_not_queued member=" HOTLINE));
    casenet_buf_free(&env);
}

int main(void)
{
    if (getenv("CASENET_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CASENET_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_escalates_once_per_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_in_time_never_escalates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_while_down_fires_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exercise_escalates_as_exercise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_status_and_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_policy_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_addressed_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escalation_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notice_obeys_backlog, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
