/* test_input.c - what a member with a valid key can make a real casenetd
 * on loopback reveal or accept (issue 12, items 26 to 30): a resend of a
 * stored message gets its receipt even when the rate limit or the disk
 * reserve refuses new work; a peer cannot choose its ZeroMQ routing id;
 * a refused handshake's audit event holds no address; strings that are not
 * UTF-8 are refused and never echoed. */
#include "network.h"
#include "testlib.h"

#include "text.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define HOTLINE "vn.hotline111"
#define POLICE  "vn.police.a05"
#define MOLISA  "vn.molisa"

static const char *const members[] = {
    HOTLINE ":intake",
    POLICE ":responder:police",
    MOLISA ":responder",
};

static tn_network *start_with(const char *ini)
{
    return tn_new_started(members, sizeof members / sizeof members[0], ini);
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

/* Seals and submits one referral from HOTLINE to POLICE; the error code. */
static int submit_one(tn_network *tn, tn_conn *c)
{
    const char *to[] = {POLICE};
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "input", NULL);
    Casenet__V1__Response *r = tn_submit(c, env.data, env.len);
    int code = tn_code(r);
    rfree(r);
    casenet_buf_free(&env);
    return code;
}

/* ------------------------------------------------------------ item 28 */

/* A resend after a lost answer, while the member's bucket is empty, still
 * gets the original receipt (duplicate set): it is never told that nothing
 * was stored. A new message in the same state is RATE_LIMITED. */
static void test_resend_gets_receipt_when_rate_limited(void **state)
{
    (void)state;
    tn_network *tn = start_with("[limits]\nsubmit_rate = 1\nsubmit_burst = 1\n");
    const char *to[] = {POLICE};
    casenet_buf first = tn_seal(tn, HOTLINE, to, 1, "first", NULL);
    casenet_buf second = tn_seal(tn, HOTLINE, to, 1, "second", NULL);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_submit(h, first.data, first.len);
    assert_int_equal(tn_code(r), 0);
    assert_false(r->submit->duplicate);
    casenet_buf receipt = {0};
    receipt.len = r->submit->receipt.len;
    receipt.data = malloc(receipt.len);
    memcpy(receipt.data, r->submit->receipt.data, receipt.len);
    rfree(r);
    /* The bucket is empty now. */
    r = tn_submit(h, second.data, second.len);
    CN_ERR(tn_code(r), CASENET_ERATELIMIT);
    rfree(r);
    r = tn_submit(h, first.data, first.len);
    assert_int_equal(tn_code(r), 0);
    assert_true(r->submit->duplicate);
    assert_int_equal(r->submit->receipt.len, receipt.len);
    assert_memory_equal(r->submit->receipt.data, receipt.data, receipt.len);
    rfree(r);
    /* Another member resending those bytes gets no receipt. */
    tn_conn *m = tn_connect(tn, tn_keys(tn, MOLISA));
    r = tn_submit(m, first.data, first.len);
    CN_ERR(tn_code(r), CASENET_EFORBIDDEN);
    rfree(r);
    tn_close(m);
    tn_close(h);
    casenet_buf_free(&receipt);
    casenet_buf_free(&first);
    casenet_buf_free(&second);
    stop(tn);
}

/* ------------------------------------------------------------ item 30 */

/* A DEALER as member id announcing routing id rid (ZMQ_ROUTING_ID). */
static tn_conn *connect_with_rid(tn_network *tn, const char *id, const void *rid, size_t len)
{
    const casenet_keys *k = tn_keys(tn, id);
    casenet_member broker;
    CN_OK(casenet_directory_broker(tn->net->dir, &broker));
    tn_conn *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->tn = tn;
    c->next_id = 1;
    c->sock = zmq_socket(tn->zctx, ZMQ_DEALER);
    int zero = 0;
    assert_non_null(c->sock);
    assert_int_equal(zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, rid, len), 0);
    assert_int_equal(zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, broker.curve_pk, 32), 0);
    assert_int_equal(zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, casenet_keys_curve_pk(k), 32), 0);
    assert_int_equal(zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, casenet_keys_curve_sk(k), 32), 0);
    assert_int_equal(zmq_connect(c->sock, tn->endpoint), 0);
    return c;
}

/* Peers announce routing ids equal to those libzmq 4.3 generates itself (a
 * zero byte and a 32-bit counter that starts at a rand()-based value: with
 * an unseeded rand() the same in every process), and a name of their own.
 * The broker never uses a peer's choice: a later connection that would get
 * a colliding generated id would abort libzmq's ROUTER on an assertion.
 * Every member connecting afterwards is served, the peers that announced
 * ids are either served under an id the broker chose or refused
 * BAD_REQUEST, and the broker stops cleanly. */
static void test_routing_ids_chosen_by_peers(void **state)
{
    (void)state;
    tn_network *tn = start_with(NULL);
    enum { STARTS = 4, STEPS = 4, HONEST = 8 };
    tn_conn *peers[STARTS * STEPS + 1];
    size_t n_peers = 0;
    srand(1);
    for (int k = 0; k < STARTS; k++) {
        uint32_t low = (uint32_t)rand();
        uint32_t high = (uint32_t)rand();
        uint32_t start = (high << 31) | low;
        for (uint32_t step = 0; step < STEPS; step++) {
            uint32_t v = start + step;
            uint8_t rid[5] = {0, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                              (uint8_t)v};
            peers[n_peers++] = connect_with_rid(tn, MOLISA, rid, sizeof rid);
        }
    }
    peers[n_peers++] = connect_with_rid(tn, MOLISA, "peer", 4);
    for (size_t i = 0; i < n_peers; i++) {
        Casenet__V1__Response *r = tn_hello(peers[i]);
        assert_non_null(r);
        assert_true(tn_code(r) == 0 || tn_code(r) == CASENET_EBADREQ);
        rfree(r);
    }
    for (int i = 0; i < HONEST; i++) {
        tn_conn *h = tn_connect(tn, tn_keys(tn, i % 2 ? HOTLINE : POLICE));
        Casenet__V1__Response *r = tn_hello(h);
        assert_non_null(r);
        assert_int_equal(tn_code(r), 0);
        assert_string_equal(r->hello->member_id, i % 2 ? HOTLINE : POLICE);
        rfree(r);
        tn_close(h);
    }
    for (size_t i = 0; i < n_peers; i++)
        tn_close(peers[i]);
    stop(tn);
}

/* ------------------------------------------------------------ item 29 */

/* The detail of the first AUTH_DENIED event of the broker's log, waiting up
 * to 20 s for the loop to write it; NULL when none came. malloc'd. */
static char *auth_denied_detail(tn_network *tn)
{
    char *path = tl_path(tn->data_dir, "casenet.db");
    char *detail = NULL;
    int64_t until = cn_mono_ms() + 20000;
    while (!detail && cn_mono_ms() < until) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        assert_int_equal(
            sqlite3_prepare_v2(db, "SELECT event FROM audit WHERE kind = ?1", -1, &st, NULL),
            SQLITE_OK);
        sqlite3_bind_int(st, 1, CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUTH_DENIED);
        if (sqlite3_step(st) == SQLITE_ROW) {
            Casenet__V1__AuditEvent *e = casenet__v1__audit_event__unpack(
                NULL, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 0));
            assert_non_null(e);
            detail = strdup(e->detail);
            casenet__v1__audit_event__free_unpacked(e, NULL);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (!detail)
            usleep(100 * 1000); /* polling the condition, bounded above */
    }
    free(path);
    return detail;
}

/* A refused handshake is audited without the peer's address: nothing in the
 * append-only log can be erased. The operator's log keeps the address. */
static void test_auth_denied_keeps_no_address(void **state)
{
    (void)state;
    tn_network *tn = start_with(NULL);
    uint8_t pk[32], sk[32];
    crypto_box_keypair(pk, sk);
    tn_conn *stranger = tn_connect_curve(tn, pk, sk);
    Casenet__V1__GetTreeHead g = CASENET__V1__GET_TREE_HEAD__INIT;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_GET_TREE_HEAD;
    req.get_tree_head = &g;
    assert_null(tn_call(stranger, &req, 500)); /* refused: no answer */
    tn_close(stranger);
    /* Something to commit, so that the denial is flushed to the log. */
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    assert_int_equal(submit_one(tn, h), 0);
    char *detail = auth_denied_detail(tn);
    assert_non_null(detail);
    assert_non_null(strstr(detail, "curve_key="));
    assert_null(strstr(detail, "address"));
    assert_null(strstr(detail, "127.0.0.1"));
    free(detail);
    tn_close(h);
    assert_true(tn_log_contains(tn, "address=127.0.0.1"));
    stop(tn);
}

/* ------------------------------------------------------------ item 27 */

/* Strings that are not UTF-8 are refused at the broker, BAD_REQUEST, and
 * the answer never echoes them: an AuditQuery member (which the broker
 * echoed), a Hello client name (which it accepted), a receipt's key id. */
static void test_strings_not_utf8_refused(void **state)
{
    (void)state;
    tn_network *tn = start_with(NULL);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    static const char bad[] = "vn.\xff\xfe\x1b[2J";
    Casenet__V1__AuditQuery q = CASENET__V1__AUDIT_QUERY__INIT;
    q.member = (char *)bad;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_QUERY;
    req.audit_query = &q;
    Casenet__V1__Response *r = tn_call(h, &req, 5000);
    assert_non_null(r);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    assert_null(strstr(r->error->message, "\xff"));
    assert_true(cn_text_valid(r->error->message));
    rfree(r);
    Casenet__V1__Hello hello = CASENET__V1__HELLO__INIT;
    hello.client = (char *)"casenet \xc0\x80";
    req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    req.hello = &hello;
    r = tn_call(h, &req, 5000);
    assert_non_null(r);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    rfree(r);
    /* The connection stays usable. */
    r = tn_hello(h);
    assert_non_null(r);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(h);
    stop(tn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resend_gets_receipt_when_rate_limited),
        cmocka_unit_test(test_routing_ids_chosen_by_peers),
        cmocka_unit_test(test_auth_denied_keeps_no_address),
        cmocka_unit_test(test_strings_not_utf8_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
