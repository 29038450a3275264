/* test_input.c - what a member with a valid key can make a real casenetd
 * on loopback reveal or accept (issue 12, items 26 to 30): a resend of a
 * stored message gets its receipt even when the rate limit or the disk
 * reserve refuses new work, and a peer cannot choose its ZeroMQ routing
 * id. */
#include "network.h"
#include "testlib.h"

#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    tn_network *tn = tn_new(members, 3);
    if (ini) {
        tn->config_path = tl_path(tn->root, "casenetd.ini");
        tl_write_file(tn->config_path, ini, strlen(ini), 0644);
    }
    tn_start(tn);
    return tn;
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
    assert_int_equal(tn_code(r), CASENET_ERATELIMIT);
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
    assert_int_equal(tn_code(r), CASENET_EFORBIDDEN);
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
    assert_int_equal(casenet_directory_broker(tn->net->dir, &broker), CASENET_OK);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resend_gets_receipt_when_rate_limited),
        cmocka_unit_test(test_routing_ids_chosen_by_peers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
