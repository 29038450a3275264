/* test_limits.c - casenetd's per-member limits (broker/member_limits.h): the Submit
 * token bucket (RATE_LIMITED with a retry-after, one audit event per run of
 * refusals), the inbox backlog cap (UNAVAILABLE), and fairness: while one
 * member floods the broker far beyond its rate, another member's p99 submit
 * latency stays within 2x of its unloaded value. Denial of service by a
 * hostile member or a stranger: strangers handshaking with a fresh key each
 * grow the audit log by a bounded number of AUTH_DENIED events (one per
 * address, then a summary). */
#include "network.h"
#include "testlib.h"

#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define HOTLINE "vn.hotline111"
#define POLICE  "vn.police.a05"
#define MOLISA  "vn.molisa"
#define FLOODER "vn.flooder"
#define COORD   "vn.coord"
/* Generous bounds: the machine may be loaded. */
#define WAIT_MS 60000

/* Fairness: rounds of (unloaded, loaded) samples; the medians of the
 * rounds' p99 are compared. */
#define FAIR_ROUNDS  5
#define FAIR_SAMPLES 100
/* between the victim's submits: at most 83/s, under its 100/s even when a
 * submit takes no time */
#define FAIR_PACE_US     12000
#define FAIR_FLOOD_POOL  600 /* distinct envelopes; then duplicates */
#define FAIR_FLOOD_INFLY 64  /* the flooder's requests in flight */
/* A second measurement only when the first was quick: on a disk slowed
 * down by other work the test must still end in its time. */
#define FAIR_RETRY_BUDGET_MS 60000

static const char *const members[] = {
    HOTLINE ":intake", POLICE ":responder:police", MOLISA ":responder",
    FLOODER ":intake", COORD ":coordinator",
};
#define N_MEMBERS (sizeof members / sizeof members[0])

static tn_network *start_with(const char *ini)
{
    return tn_new_started(members, N_MEMBERS, ini);
}

static void stop(tn_network *tn)
{
    assert_int_equal(tn_stop(tn), 0);
    tn_free(tn);
}

static void rfree(Casenet__V1__Response *r)
{
    casenet__v1__response__free_unpacked(r, NULL);
}

static int audit_count(tn_network *tn, int kind)
{
    char *path = tl_path(tn->data_dir, "casenet.db");
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM audit WHERE kind = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int(st, 1, kind);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return n;
}

/* Submits env (and frees it); returns the answer's code. */
static int submit_env(tn_conn *c, casenet_buf env, uint32_t *retry_after)
{
    Casenet__V1__Response *r = tn_submit(c, env.data, env.len);
    int code = tn_code(r);
    if (retry_after)
        *retry_after = r->error ? r->error->retry_after_ms : 0;
    rfree(r);
    casenet_buf_free(&env);
    return code;
}

static int submit_to(tn_network *tn, tn_conn *c, const char *from, const char *to,
                     uint32_t *retry_after)
{
    const char *rcpt[] = {to};
    return submit_env(c, tn_seal(tn, from, rcpt, 1, "limits", NULL), retry_after);
}

/* ------------------------------------------------------------ rate */

static void test_submit_rate(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nsubmit_rate = 1\nsubmit_burst = 3\n");
    const char *to[] = {POLICE};
    casenet_buf env[6];
    for (int i = 0; i < 6; i++)
        env[i] = tn_seal(tn, HOTLINE, to, 1, "rate", NULL);
    int rejected0 = audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    for (int i = 0; i < 3; i++) {
        Casenet__V1__Response *r = tn_submit(h, env[i].data, env[i].len);
        assert_int_equal(tn_code(r), 0);
        rfree(r);
    }
    /* The bucket is empty: refused with a retry-after, twice. */
    uint32_t retry = 0;
    for (int i = 3; i < 5; i++) {
        Casenet__V1__Response *r = tn_submit(h, env[i].data, env[i].len);
        CN_ERR(tn_code(r), CASENET_ERATELIMIT);
        assert_true(r->error->retry_after_ms > 0 && r->error->retry_after_ms <= 1000);
        retry = r->error->retry_after_ms;
        rfree(r);
    }
    /* Only the first refusal of the run is audited. */
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED), rejected0 + 1);
    /* Another member is not affected. */
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    assert_int_equal(submit_to(tn, p, POLICE, HOTLINE, NULL), 0);
    tn_close(p);
    /* After the retry-after, a token is there again. */
    usleep((retry + 50) * 1000);
    Casenet__V1__Response *r = tn_submit(h, env[3].data, env[3].len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);

    /* The client library hands the code and the hint to its caller. */
    casenet_client_opts o = {.endpoint = tn->endpoint, .timeout_ms = 5000};
    casenet_client *c = NULL;
    CN_OK(casenet_client_connect(tn_keys(tn, HOTLINE), tn->net->dir, &o, &c));
    casenet_submit_receipt rc;
    CN_ERR(casenet_client_submit(c, env[5].data, env[5].len, &rc, NULL), CASENET_ERATELIMIT);
    assert_true(casenet_client_retry_after_ms(c) > 0);
    casenet_client_free(c);
    tn_close(h);
    for (int i = 0; i < 6; i++)
        casenet_buf_free(&env[i]);
    stop(tn);
}

/* ------------------------------------------------------------ backlog */

static void test_inbox_backlog(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nmax_inbox_backlog = 3\n");
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    const char *to[] = {POLICE};
    uint8_t first[16];
    casenet_buf env0 = tn_seal(tn, HOTLINE, to, 1, "backlog", first);
    Casenet__V1__Response *r = tn_submit(h, env0.data, env0.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    for (int i = 1; i < 3; i++)
        assert_int_equal(submit_to(tn, h, HOTLINE, POLICE, NULL), 0);
    /* POLICE's inbox holds 3 unfetched rows: full. */
    uint32_t retry = 0;
    CN_ERR(submit_to(tn, h, HOTLINE, POLICE, &retry), CASENET_EUNAVAIL);
    assert_int_equal(retry, 60000);
    /* A message for POLICE and MOLISA too; MOLISA alone is fine. */
    const char *both[] = {MOLISA, POLICE};
    casenet_buf env = tn_seal(tn, HOTLINE, both, 2, "two", NULL);
    r = tn_submit(h, env.data, env.len);
    CN_ERR(tn_code(r), CASENET_EUNAVAIL);
    rfree(r);
    casenet_buf_free(&env);
    assert_int_equal(submit_to(tn, h, HOTLINE, MOLISA, NULL), 0);
    /* The same bytes again still get their receipt (nothing new is queued). */
    r = tn_submit(h, env0.data, env0.len);
    assert_int_equal(tn_code(r), 0);
    assert_true(r->submit->duplicate);
    rfree(r);
    /* POLICE fetches one: room for one more. */
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    r = tn_fetch(p, first);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(p);
    assert_int_equal(submit_to(tn, h, HOTLINE, POLICE, NULL), 0);
    CN_ERR(submit_to(tn, h, HOTLINE, POLICE, NULL), CASENET_EUNAVAIL);
    /* The count survives a restart (it is in the store). */
    tn_close(h);
    assert_int_equal(tn_stop(tn), 0);
    tn_restart(tn);
    h = tn_connect(tn, tn_keys(tn, HOTLINE));
    CN_ERR(submit_to(tn, h, HOTLINE, POLICE, NULL), CASENET_EUNAVAIL);
    tn_close(h);
    casenet_buf_free(&env0);
    stop(tn);
}

/* ------------------------------------------------------------ one member's flood */

/* A referral from `from` to `to` of urgency u whose summary is text (the
 * payload's urgency agrees with the header's). */
static casenet_buf seal_urgency(tn_network *tn, const char *from, const char *to, casenet_urgency u,
                                const char *text, uint8_t id[16])
{
    casenet_buf plain = tl_referral_payload(text);
    Casenet__V1__Payload *p = casenet__v1__payload__unpack(NULL, plain.len, plain.data);
    assert_non_null(p);
    assert_non_null(p->referral);
    p->referral->urgency = (Casenet__V1__Urgency)u;
    casenet_buf_free(&plain);
    plain.len = casenet__v1__payload__get_packed_size(p);
    plain.data = malloc(plain.len);
    casenet__v1__payload__pack(p, plain.data);
    casenet__v1__payload__free_unpacked(p, NULL);
    const char *rcpt[] = {to};
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .urgency = u, .to = rcpt, .n_to = 1};
    casenet_buf env = {0};
    uint8_t mid[16];
    CN_OK(casenet_seal(tn_keys(tn, from), tn->net->dir, &o, plain.data, plain.len, &env, mid));
    if (id)
        memcpy(id, mid, 16);
    casenet_buf_free(&plain);
    return env;
}

static int submit_urgency(tn_network *tn, tn_conn *c, const char *from, const char *to,
                          casenet_urgency u)
{
    return submit_env(c, seal_urgency(tn, from, to, u, "flood", NULL), NULL);
}

/* Item 19 of issue 12: one member filled the police's inbox and the
 * helpline's emergency referral was refused. Only the inbox cap is set here
 * (as small as a test can fill): the defaults keep its last 10 % for
 * emergencies. */
static void test_flood_leaves_room_for_emergency(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nmax_inbox_backlog = 20\n");
    tn_conn *f = tn_connect(tn, tn_keys(tn, FLOODER));
    int accepted = 0, code = 0;
    while ((code = submit_urgency(tn, f, FLOODER, POLICE, CASENET_URGENCY_STANDARD)) == 0)
        accepted++;
    CN_ERR(code, CASENET_EUNAVAIL);
    assert_int_equal(accepted, 18); /* 20 less the emergency share */
    /* Another member's emergency referral still gets through, the flooder's
     * own emergencies only up to the cap. */
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    assert_int_equal(submit_urgency(tn, h, HOTLINE, POLICE, CASENET_URGENCY_EMERGENCY), 0);
    CN_ERR(submit_urgency(tn, h, HOTLINE, POLICE, CASENET_URGENCY_STANDARD), CASENET_EUNAVAIL);
    assert_int_equal(submit_urgency(tn, f, FLOODER, POLICE, CASENET_URGENCY_EMERGENCY), 0);
    CN_ERR(submit_urgency(tn, f, FLOODER, POLICE, CASENET_URGENCY_EMERGENCY), CASENET_EUNAVAIL);
    tn_close(h);
    tn_close(f);
    stop(tn);
}

/* The per-sender cap: a flooder stops well below the inbox cap, others keep
 * sending; the last share of the sender's cap is for its emergencies; a
 * recipient fetching makes room; the counts survive a restart. */
static void test_pair_backlog(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nmax_inbox_backlog = 100\nmax_pair_backlog = 5\n"
                                "emergency_reserve_pct = 20\n");
    tn_conn *f = tn_connect(tn, tn_keys(tn, FLOODER));
    uint8_t first[16];
    casenet_buf env0 = seal_urgency(tn, FLOODER, POLICE, CASENET_URGENCY_STANDARD, "one", first);
    Casenet__V1__Response *r = tn_submit(f, env0.data, env0.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    casenet_buf_free(&env0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(submit_urgency(tn, f, FLOODER, POLICE, CASENET_URGENCY_STANDARD), 0);
    uint32_t retry = 0;
    casenet_buf env = seal_urgency(tn, FLOODER, POLICE, CASENET_URGENCY_STANDARD, "five", NULL);
    r = tn_submit(f, env.data, env.len);
    CN_ERR(tn_code(r), CASENET_EUNAVAIL);
    retry = r->error->retry_after_ms;
    assert_non_null(strstr(r->error->message, FLOODER));
    rfree(r);
    casenet_buf_free(&env);
    assert_int_equal(retry, 60000);
    /* Its emergency share: one more. */
    assert_int_equal(submit_urgency(tn, f, FLOODER, POLICE, CASENET_URGENCY_EMERGENCY), 0);
    CN_ERR(submit_urgency(tn, f, FLOODER, POLICE, CASENET_URGENCY_EMERGENCY), CASENET_EUNAVAIL);
    /* To another recipient, and other senders to POLICE: not affected. */
    assert_int_equal(submit_urgency(tn, f, FLOODER, MOLISA, CASENET_URGENCY_STANDARD), 0);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    assert_int_equal(submit_urgency(tn, h, HOTLINE, POLICE, CASENET_URGENCY_STANDARD), 0);
    /* POLICE fetches one of the flooder's: room for one more (emergency). */
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    r = tn_fetch(p, first);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(p);
    assert_int_equal(submit_urgency(tn, f, FLOODER, POLICE, CASENET_URGENCY_EMERGENCY), 0);
    /* The counts are in the store. */
    tn_close(h);
    tn_close(f);
    assert_int_equal(tn_stop(tn), 0);
    tn_restart(tn);
    f = tn_connect(tn, tn_keys(tn, FLOODER));
    CN_ERR(submit_urgency(tn, f, FLOODER, POLICE, CASENET_URGENCY_EMERGENCY), CASENET_EUNAVAIL);
    tn_close(f);
    stop(tn);
}

/* Item 20: a member over its byte quota is refused QUOTA_EXCEEDED (and
 * audited), another member is served; a resend of a stored message still
 * gets its receipt; the count survives a restart. */
static void test_byte_quota(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nmember_quota_mb = 1\n");
    size_t big = 600u * 1024u;
    char *text = malloc(big + 1);
    memset(text, 'q', big);
    text[big] = 0;
    casenet_buf a = seal_urgency(tn, FLOODER, POLICE, CASENET_URGENCY_STANDARD, text, NULL);
    casenet_buf b = seal_urgency(tn, FLOODER, POLICE, CASENET_URGENCY_STANDARD, text, NULL);
    casenet_buf c = seal_urgency(tn, HOTLINE, POLICE, CASENET_URGENCY_STANDARD, text, NULL);
    int rejected0 = audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED);
    tn_conn *f = tn_connect(tn, tn_keys(tn, FLOODER));
    Casenet__V1__Response *r = tn_submit(f, a.data, a.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    r = tn_submit(f, b.data, b.len);
    CN_ERR(tn_code(r), CASENET_EQUOTA);
    assert_int_equal(r->error->code, 15);
    assert_non_null(strstr(r->error->message, "member_quota_mb"));
    rfree(r);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED), rejected0 + 1);
    r = tn_submit(f, a.data, a.len); /* the stored one again: its receipt */
    assert_int_equal(tn_code(r), 0);
    assert_true(r->submit->duplicate);
    rfree(r);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    r = tn_submit(h, c.data, c.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(h);
    tn_close(f);
    assert_int_equal(tn_stop(tn), 0);
    tn_restart(tn);
    f = tn_connect(tn, tn_keys(tn, FLOODER));
    r = tn_submit(f, b.data, b.len);
    CN_ERR(tn_code(r), CASENET_EQUOTA);
    rfree(r);
    /* The client library names the code. */
    assert_string_equal(casenet_errname(CASENET_EQUOTA), "QUOTA_EXCEEDED");
    tn_close(f);
    casenet_buf_free(&a);
    casenet_buf_free(&b);
    casenet_buf_free(&c);
    free(text);
    stop(tn);
}

/* The message's envelope hash, from a Fetch answer. */
static void fetched_hash(const Casenet__V1__Response *r, uint8_t hash[32])
{
    assert_int_equal(tn_code(r), 0);
    cn_sha256(r->fetch->envelope.data, r->fetch->envelope.len, hash);
}

/* Item 20: fetching one message again and again appends one FETCHED event
 * per state of the row, not one per fetch. */
static void test_fetch_flood_coalesced(void **state)
{
    (void)state;
    tn_network *tn = tn_new(members, 4); /* the defaults (their fetch burst is 600) */
    tn_start(tn);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    uint8_t id[16];
    casenet_buf env = seal_urgency(tn, HOTLINE, POLICE, CASENET_URGENCY_STANDARD, "x", id);
    Casenet__V1__Response *r = tn_submit(h, env.data, env.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    casenet_buf_free(&env);
    int fetched0 = audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED);
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    uint8_t hash[32];
    for (int i = 0; i < 200; i++) {
        r = tn_fetch(p, id);
        assert_int_equal(tn_code(r), 0);
        assert_true(r->fetch->envelope.len > 0);
        if (i == 0)
            fetched_hash(r, hash);
        rfree(r);
    }
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED), fetched0 + 1);
    /* After a state change, the next fetch is audited again, once. */
    casenet_buf rc =
        tn_sign_receipt(tn, POLICE, id, hash, HOTLINE, CASENET_RECEIPT_DELIVERED, cn_now_ms());
    r = tn_send_receipt(p, rc.data, rc.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    casenet_buf_free(&rc);
    for (int i = 0; i < 20; i++) {
        r = tn_fetch(p, id);
        assert_int_equal(tn_code(r), 0);
        rfree(r);
    }
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED), fetched0 + 2);
    tn_close(p);
    tn_close(h);
    stop(tn);
}

static Casenet__V1__Response *audit_query(tn_conn *c)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__AuditQuery q = CASENET__V1__AUDIT_QUERY__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_QUERY;
    req.audit_query = &q;
    return tn_call(c, &req, 5000);
}

/* Item 20: every request that writes has a bucket, not only Submit: Fetch,
 * Receipt and AuditQuery (which appends AUDIT_QUERIED) are refused
 * RATE_LIMITED past theirs, without an audit event; other members and
 * other classes go on. */
static void test_write_buckets(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nfetch_rate = 1/min\nfetch_burst = 3\n"
                                "receipt_rate = 1/min\nreceipt_burst = 1\n"
                                "audit_rate = 1/min\naudit_burst = 2\n");
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    uint8_t id[16], id2[16];
    casenet_buf env = seal_urgency(tn, HOTLINE, POLICE, CASENET_URGENCY_STANDARD, "x", id);
    casenet_buf env2 = seal_urgency(tn, HOTLINE, POLICE, CASENET_URGENCY_STANDARD, "y", id2);
    Casenet__V1__Response *r = tn_submit(h, env.data, env.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    r = tn_submit(h, env2.data, env2.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    uint8_t hash[32], hash2[32];
    r = tn_fetch(p, id);
    fetched_hash(r, hash);
    rfree(r);
    r = tn_fetch(p, id2);
    fetched_hash(r, hash2);
    rfree(r);
    r = tn_fetch(p, id);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    int audited = audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUDIT_QUERIED) +
                  audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED);
    r = tn_fetch(p, id);
    CN_ERR(tn_code(r), CASENET_ERATELIMIT);
    assert_true(r->error->retry_after_ms > 1000 && r->error->retry_after_ms <= 60000);
    assert_non_null(strstr(r->error->message, "fetch"));
    rfree(r);
    /* Receipts: one, then refused. */
    casenet_buf rc =
        tn_sign_receipt(tn, POLICE, id, hash, HOTLINE, CASENET_RECEIPT_DELIVERED, cn_now_ms());
    casenet_buf rc2 =
        tn_sign_receipt(tn, POLICE, id2, hash2, HOTLINE, CASENET_RECEIPT_DELIVERED, cn_now_ms());
    r = tn_send_receipt(p, rc.data, rc.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    r = tn_send_receipt(p, rc2.data, rc2.len);
    CN_ERR(tn_code(r), CASENET_ERATELIMIT);
    rfree(r);
    /* Audit queries: two, then refused, and the refusal is not audited. */
    for (int i = 0; i < 2; i++) {
        r = audit_query(p);
        assert_int_equal(tn_code(r), 0);
        rfree(r);
    }
    r = audit_query(p);
    CN_ERR(tn_code(r), CASENET_ERATELIMIT);
    rfree(r);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUDIT_QUERIED) +
                         audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED),
                     audited + 2);
    /* Another member's buckets are its own. */
    r = audit_query(h);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    casenet_buf_free(&rc);
    casenet_buf_free(&rc2);
    casenet_buf_free(&env);
    casenet_buf_free(&env2);
    tn_close(p);
    tn_close(h);
    stop(tn);
}

/* ------------------------------------------------------------ fairness */

struct flood {
    tn_network *tn;
    casenet_buf *pool;
    atomic_bool stop;
    atomic_bool flooding;
    uint64_t sent, limited, accepted;
    atomic_uint_fast64_t answered; /* read by the measuring thread too */
    uint64_t resent;               /* answered with the receipt of a stored message */
};

/* Sends req (version 1, request id id) without waiting for its answer. */
static void send_request(void *sock, Casenet__V1__Request *req, uint64_t id)
{
    req->protocol_version = 1;
    req->request_id = id;
    size_t len = casenet__v1__request__get_packed_size(req);
    uint8_t *buf = malloc(len);
    casenet__v1__request__pack(req, buf);
    (void)zmq_send(sock, buf, len, 0);
    free(buf);
}

static void flood_send(void *sock, const casenet_buf *env, uint64_t id)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Submit s = CASENET__V1__SUBMIT__INIT;
    s.envelope.data = env->data;
    s.envelope.len = env->len;
    req.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    req.submit = &s;
    send_request(sock, &req, id);
}

/* Keeps FAIR_FLOOD_INFLY submits in flight until told to stop. */
static void *flooder(void *arg)
{
    struct flood *f = arg;
    tn_conn *c = tn_connect(f->tn, tn_keys(f->tn, FLOODER));
    uint64_t inflight = 0;
    while (!atomic_load(&f->stop)) {
        bool on = atomic_load(&f->flooding);
        while (on && inflight < FAIR_FLOOD_INFLY) {
            flood_send(c->sock, &f->pool[f->sent % FAIR_FLOOD_POOL], f->sent + 1);
            f->sent++;
            inflight++;
        }
        zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 20) <= 0) {
            inflight = 0; /* 20 ms of silence: whatever was in flight is lost */
            continue;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, 0) >= 0) {
            Casenet__V1__Response *r =
                casenet__v1__response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
            if (r) {
                f->answered++;
                inflight--;
                if (r->error && r->error->code == CASENET__V1__ERROR_CODE__ERROR_CODE_RATE_LIMITED)
                    f->limited++;
                else if (!r->error && r->submit && r->submit->duplicate)
                    f->resent++; /* a resend gets its receipt whatever the bucket says */
                else if (!r->error)
                    f->accepted++;
                rfree(r);
            }
        }
        zmq_msg_close(&m);
    }
    tn_close(c);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The p99 (in microseconds) of FAIR_SAMPLES sequential submits. */
static int64_t victim_p99(tn_network *tn, tn_conn *v, casenet_buf *envs)
{
    int64_t lat[FAIR_SAMPLES];
    for (int i = 0; i < FAIR_SAMPLES; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        Casenet__V1__Response *r = tn_submit(v, envs[i].data, envs[i].len);
        clock_gettime(CLOCK_MONOTONIC, &b);
        assert_int_equal(tn_code(r), 0);
        rfree(r);
        lat[i] = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
        usleep(FAIR_PACE_US);
    }
    (void)tn;
    qsort(lat, FAIR_SAMPLES, sizeof lat[0], cmp_i64);
    return lat[(FAIR_SAMPLES * 99 + 99) / 100 - 1];
}

/* One measurement: the medians over FAIR_ROUNDS of the victim's p99,
 * unloaded and under the flood (microseconds). */
static void measure(tn_network *tn, struct flood *f, int64_t *u, int64_t *l)
{
    const char *to[] = {POLICE};
    size_t n = (size_t)FAIR_ROUNDS * 2 * FAIR_SAMPLES;
    casenet_buf *envs = calloc(n, sizeof *envs);
    assert_non_null(envs);
    for (size_t i = 0; i < n; i++)
        envs[i] = tn_seal(tn, HOTLINE, to, 1, "victim", NULL);
    tn_conn *v = tn_connect(tn, tn_keys(tn, HOTLINE));
    int64_t unloaded[FAIR_ROUNDS], loaded[FAIR_ROUNDS];
    casenet_buf *next = envs;
    for (int r = 0; r < FAIR_ROUNDS; r++) {
        unloaded[r] = victim_p99(tn, v, next);
        next += FAIR_SAMPLES;
        /* The flood is on once the broker answers it: a whole window of
         * its requests answered since it was let go (a fixed 200 ms could
         * pass, on a loaded machine, before the flood reached the broker,
         * and the "loaded" round would then measure no load at all). */
        uint64_t answered0 = atomic_load(&f->answered);
        atomic_store(&f->flooding, true);
        int64_t until = cn_mono_ms() + 30000;
        while (atomic_load(&f->answered) < answered0 + FAIR_FLOOD_INFLY && cn_mono_ms() < until)
            usleep(1000);
        assert_true(atomic_load(&f->answered) >= answered0 + FAIR_FLOOD_INFLY);
        loaded[r] = victim_p99(tn, v, next);
        next += FAIR_SAMPLES;
        atomic_store(&f->flooding, false);
        usleep(300 * 1000); /* let it drain */
    }
    tn_close(v);
    qsort(unloaded, FAIR_ROUNDS, sizeof unloaded[0], cmp_i64);
    qsort(loaded, FAIR_ROUNDS, sizeof loaded[0], cmp_i64);
    *u = unloaded[FAIR_ROUNDS / 2];
    *l = loaded[FAIR_ROUNDS / 2];
    fprintf(stderr,
            "fairness: victim p99 unloaded %lld us, under flood %lld us (medians of %d rounds "
            "of %d); flooder so far: sent %llu, answered %llu, accepted %llu, resent %llu, "
            "rate-limited %llu\n",
            (long long)*u, (long long)*l, FAIR_ROUNDS, FAIR_SAMPLES, (unsigned long long)f->sent,
            (unsigned long long)f->answered, (unsigned long long)f->accepted,
            (unsigned long long)f->resent, (unsigned long long)f->limited);
    for (size_t i = 0; i < n; i++)
        casenet_buf_free(&envs[i]);
    free(envs);
}

/* Built with AddressSanitizer, every request costs the broker several times
 * its real price, the flooder's refused ones included: latency ratios then
 * say nothing about the broker's fairness. The criterion is asserted in the
 * plain build (tests/run.sh runs both). */
#if defined(__SANITIZE_ADDRESS__)
#define FAIRNESS_TIMING_MEANINGFUL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAIRNESS_TIMING_MEANINGFUL 0
#endif
#endif
#ifndef FAIRNESS_TIMING_MEANINGFUL
#define FAIRNESS_TIMING_MEANINGFUL 1
#endif

static void test_fairness_under_flood(void **state)
{
    (void)state;
    if (!FAIRNESS_TIMING_MEANINGFUL) {
        fprintf(stderr, "fairness: skipped under AddressSanitizer (asserted in the plain build)\n");
        skip();
    }
    /* The flooder may submit 100/s; it tries some 20000/s. The victim
     * submits sequentially at well under 100/s. */
    tn_network *tn = start_with("[limits]\nsubmit_rate = 100\nsubmit_burst = 10\nfair_share = 16\n"
                                "max_pair_backlog = 0\n"); /* the victim queues 1,000 for POLICE */
    const char *to[] = {POLICE};
    struct flood f = {.tn = tn};
    f.pool = calloc(FAIR_FLOOD_POOL, sizeof *f.pool);
    assert_non_null(f.pool);
    for (int i = 0; i < FAIR_FLOOD_POOL; i++)
        f.pool[i] = tn_seal(tn, FLOODER, to, 1, "flood", NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flooder, &f), 0);
    int64_t u = 0, l = 0;
    /* The disk is shared with whatever else runs on the machine: one more
     * measurement before concluding that the flood hurt the victim. */
    int64_t t0 = cn_mono_ms();
    for (int attempt = 0; attempt < 2; attempt++) {
        measure(tn, &f, &u, &l);
        if (l <= 2 * u || cn_mono_ms() - t0 > FAIR_RETRY_BUDGET_MS)
            break;
    }
    atomic_store(&f.stop, true);
    pthread_join(th, NULL);
    /* The flood went far beyond the flooder's rate... */
    assert_true(f.limited > 10 * f.accepted);
    /* ...and the victim hardly noticed. */
    assert_true(l <= 2 * u);
    for (int i = 0; i < FAIR_FLOOD_POOL; i++)
        casenet_buf_free(&f.pool[i]);
    free(f.pool);
    stop(tn);
}

/* The details of the log's AUTH_DENIED events (at most max), read over the
 * wire with AuditExport as the coordinator (first 10000 events). */
static size_t auth_denied_events(tn_network *tn, char details[][256], size_t max)
{
    tn_conn *c = tn_connect(tn, tn_keys(tn, COORD));
    Casenet__V1__AuditExport ex = CASENET__V1__AUDIT_EXPORT__INIT;
    ex.limit = 10000;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_EXPORT;
    req.audit_export = &ex;
    Casenet__V1__Response *r = tn_call(c, &req, WAIT_MS);
    assert_int_equal(tn_code(r), 0);
    size_t n = 0;
    for (size_t i = 0; i < r->export_page->n_events; i++) {
        const ProtobufCBinaryData *b = &r->export_page->events[i];
        Casenet__V1__AuditEvent *ev = casenet__v1__audit_event__unpack(NULL, b->len, b->data);
        assert_non_null(ev);
        if (ev->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUTH_DENIED) {
            if (n < max)
                snprintf(details[n], 256, "%s", ev->detail ? ev->detail : "");
            n++;
        }
        casenet__v1__audit_event__free_unpacked(ev, NULL);
    }
    rfree(r);
    tn_close(c);
    return n;
}

/* How many times needle occurs in the broker's log. */
static size_t log_count(const tn_network *tn, const char *needle)
{
    size_t len = 0, n = 0;
    uint8_t *text = tl_read_file(tn->log_path, &len);
    for (const char *p = (const char *)text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(text);
    return n;
}

/* ------------------------------------------------------------ dear requests */

#define LS_SENT     2000 /* the hostile member's messages, all still open */
#define LS_CONNS    12   /* its connections */
#define LS_INFLY    16   /* ListSent in flight on each */
#define LS_SAMPLES  20   /* the victim's Hellos */
#define LS_BOUND_MS 1000 /* generous: measured 20-120 ms; before 1.8 s */
#define LS_P50_MS   250  /* measured 12-15 ms; before 1 s */
#define LS_WINDOW   50   /* Submits pipelined at once while filling (below max_pending) */

struct ls_flood {
    tn_conn *conns[LS_CONNS];
    atomic_bool stop;
    atomic_uint_fast64_t pages;   /* ListSent pages answered */
    atomic_uint_fast64_t limited; /* refused beyond max_pending */
};

static void send_list_sent(void *sock, uint64_t id)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__ListSent ls = CASENET__V1__LIST_SENT__INIT;
    ls.open_only = true;
    ls.limit = 1000;
    req.body_case = CASENET__V1__REQUEST__BODY_LIST_SENT;
    req.list_sent = &ls;
    send_request(sock, &req, id);
}

/* Keeps LS_INFLY of the dearest legal ListSent in flight on every
 * connection, resending one for each answer (whatever it says). */
static void *list_sent_flooder(void *arg)
{
    struct ls_flood *f = arg;
    zmq_pollitem_t items[LS_CONNS];
    uint64_t id = 1;
    for (int c = 0; c < LS_CONNS; c++) {
        items[c] = (zmq_pollitem_t){.socket = f->conns[c]->sock, .events = ZMQ_POLLIN};
        for (int k = 0; k < LS_INFLY; k++)
            send_list_sent(f->conns[c]->sock, id++);
    }
    while (!atomic_load(&f->stop)) {
        if (zmq_poll(items, LS_CONNS, 20) <= 0)
            continue;
        for (int c = 0; c < LS_CONNS; c++) {
            if (!(items[c].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, items[c].socket, ZMQ_DONTWAIT) >= 0) {
                Casenet__V1__Response *r =
                    casenet__v1__response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
                if (r && r->body_case == CASENET__V1__RESPONSE__BODY_SENT)
                    atomic_fetch_add(&f->pages, 1);
                if (r && r->error &&
                    r->error->code == CASENET__V1__ERROR_CODE__ERROR_CODE_RATE_LIMITED)
                    atomic_fetch_add(&f->limited, 1);
                if (r)
                    rfree(r);
                send_list_sent(items[c].socket, id++);
            }
            zmq_msg_close(&m);
        }
    }
    return NULL;
}

/* A member with many open sent messages keeps its connections full of
 * ListSent, the dearest legal request; another member's Hello is still
 * answered within a bound (before: several seconds). */
static void test_dear_requests_do_not_starve(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nsubmit_rate = 0\nmax_pair_backlog = 0\n");
    const char *to[] = {POLICE};
    tn_conn *h = tn_connect(tn, tn_keys(tn, FLOODER));
    for (int done = 0; done < LS_SENT; done += LS_WINDOW) {
        for (int i = 0; i < LS_WINDOW; i++) {
            casenet_buf env = tn_seal(tn, FLOODER, to, 1, "open", NULL);
            flood_send(h->sock, &env, (uint64_t)(done + i + 1));
            casenet_buf_free(&env);
        }
        for (int i = 0; i < LS_WINDOW; i++) {
            casenet_buf in = {0};
            assert_true(tn_recv(h, WAIT_MS, &in));
            Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, in.len, in.data);
            assert_int_equal(tn_code(r), 0);
            rfree(r);
            casenet_buf_free(&in);
        }
    }
    tn_close(h);

    struct ls_flood f = {0};
    for (int c = 0; c < LS_CONNS; c++)
        f.conns[c] = tn_connect(tn, tn_keys(tn, FLOODER));
    tn_conn *v = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_hello(v); /* connected before the flood */
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, list_sent_flooder, &f), 0);
    int64_t t0 = cn_mono_ms();
    while (atomic_load(&f.pages) < 2 * LS_CONNS && cn_mono_ms() - t0 < WAIT_MS)
        usleep(10 * 1000);
    uint64_t pages0 = atomic_load(&f.pages);
    int64_t lat[LS_SAMPLES];
    for (int i = 0; i < LS_SAMPLES; i++) {
        int64_t a = cn_mono_ms();
        r = tn_call(v,
                    &(Casenet__V1__Request){
                        .base = PROTOBUF_C_MESSAGE_INIT(&casenet__v1__request__descriptor),
                        .body_case = CASENET__V1__REQUEST__BODY_HELLO,
                        .hello = &(Casenet__V1__Hello)CASENET__V1__HELLO__INIT},
                    WAIT_MS);
        lat[i] = cn_mono_ms() - a;
        assert_int_equal(tn_code(r), 0);
        rfree(r);
        usleep(20 * 1000);
    }
    uint64_t pages = atomic_load(&f.pages) - pages0;
    atomic_store(&f.stop, true);
    pthread_join(th, NULL);
    qsort(lat, LS_SAMPLES, sizeof lat[0], cmp_i64);
    fprintf(stderr,
            "dear requests: the victim's Hello p50 %lld ms, max %lld ms while %llu ListSent "
            "pages of up to 1000 open messages were answered\n",
            (long long)lat[LS_SAMPLES / 2], (long long)lat[LS_SAMPLES - 1],
            (unsigned long long)pages);
    for (int c = 0; c < LS_CONNS; c++)
        tn_close(f.conns[c]);
    tn_close(v);
    /* The flood went on all along, beyond max_pending (64 < 12 x 16)... */
    assert_true(pages >= LS_SAMPLES / 2);
    assert_true(atomic_load(&f.limited) > 0);
    /* ...and the victim was answered within the bounds. */
    assert_true(lat[LS_SAMPLES / 2] < LS_P50_MS);
    assert_true(lat[LS_SAMPLES - 1] < LS_BOUND_MS);
    stop(tn);
}

/* ------------------------------------------------------------ connections */

static void test_connection_cap(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nmax_connections = 3\n");
    tn_conn *c[4];
    for (int i = 0; i < 3; i++) {
        c[i] = tn_connect(tn, tn_keys(tn, FLOODER));
        Casenet__V1__Response *r = tn_hello(c[i]);
        assert_int_equal(tn_code(r), 0);
        rfree(r);
    }
    /* A fourth is refused at the handshake: no answer at all. */
    c[3] = tn_connect(tn, tn_keys(tn, FLOODER));
    assert_null(tn_call(
        c[3],
        &(Casenet__V1__Request){.base = PROTOBUF_C_MESSAGE_INIT(&casenet__v1__request__descriptor),
                                .body_case = CASENET__V1__REQUEST__BODY_HELLO,
                                .hello = &(Casenet__V1__Hello)CASENET__V1__HELLO__INIT},
        1500));
    tn_close(c[3]);
    assert_true(tn_log_contains(tn, "holds 3 connections (max_connections 3)"));
    /* Other members are not affected. */
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_hello(p);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(p);
    /* A connection closed frees its place. */
    tn_close(c[0]);
    c[0] = tn_connect(tn, tn_keys(tn, FLOODER));
    r = tn_call(
        c[0],
        &(Casenet__V1__Request){.base = PROTOBUF_C_MESSAGE_INIT(&casenet__v1__request__descriptor),
                                .body_case = CASENET__V1__REQUEST__BODY_HELLO,
                                .hello = &(Casenet__V1__Hello)CASENET__V1__HELLO__INIT},
        WAIT_MS);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    for (int i = 0; i < 3; i++)
        tn_close(c[i]);
    stop(tn);
}

/* ------------------------------------------------------------ strangers */

#define STRANGERS 200

static void test_strangers_bounded_audit(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\n");
    tn_conn *conns[STRANGERS];
    for (int i = 0; i < STRANGERS; i++) {
        uint8_t pk[32], sk[32];
        crypto_box_keypair(pk, sk);
        conns[i] = tn_connect_curve(tn, pk, sk);
    }
    /* Every stranger's handshake was refused (each one logged)... */
    int64_t t0 = cn_mono_ms();
    while (log_count(tn, "event=auth_denied ") < STRANGERS && cn_mono_ms() - t0 < WAIT_MS)
        usleep(50 * 1000);
    assert_true(log_count(tn, "event=auth_denied ") >= STRANGERS);
    for (int i = 0; i < STRANGERS; i++)
        tn_close(conns[i]);
    /* ...and a member is still served. */
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_hello(h);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(h);
    assert_int_equal(tn_stop(tn), 0);
    tn_restart(tn);
    /* The log holds one event for the address (which it does not name:
     * addresses stay out of the permanent log), then summaries (one per
     * minute at most, the last written at stop) counting the rest. */
    char details[8][256];
    size_t n = auth_denied_events(tn, details, 8);
    assert_true(n >= 2 && n <= 4);
    assert_true(strncmp(details[0], "curve_key=", 10) == 0);
    assert_null(strstr(details[0], "127.0.0.1"));
    unsigned long long denials = 0;
    unsigned keys = 0;
    for (size_t i = 1; i < n && i < 8; i++) {
        const char *d = strstr(details[i], "summary period_ms=");
        assert_non_null(d);
        unsigned long long dn = 0;
        unsigned k = 0;
        assert_non_null(strstr(d, "denials="));
        assert_int_equal(sscanf(strstr(d, "denials="), "denials=%llu distinct_keys=%u", &dn, &k),
                         2);
        assert_non_null(strstr(d, "distinct_addresses=1"));
        denials += dn;
        keys += k;
    }
    assert_true(denials >= STRANGERS - 1);
    assert_true(keys >= STRANGERS - 1);
    stop(tn);
}

int main(void)
{
    if (getenv("CASENET_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CASENET_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_rate),
        cmocka_unit_test(test_inbox_backlog),
        cmocka_unit_test(test_flood_leaves_room_for_emergency),
        cmocka_unit_test(test_pair_backlog),
        cmocka_unit_test(test_byte_quota),
        cmocka_unit_test(test_fetch_flood_coalesced),
        cmocka_unit_test(test_write_buckets),
        cmocka_unit_test(test_fairness_under_flood),
        cmocka_unit_test(test_strangers_bounded_audit),
        cmocka_unit_test(test_dear_requests_do_not_starve),
        cmocka_unit_test(test_connection_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
