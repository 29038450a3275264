/* test_audit_broker.c - the verifiable audit log of a real casenetd on
 * loopback: broker-generated inclusion proofs verify for every index of every
 * tree size from 1 to 300 (and consistency proofs between sizes); signed
 * heads verify and match the events; least visibility (a coordinator sees
 * events a plain member does not; a member cannot query another's traffic,
 * export the log or get proofs for others' events); queries are audited;
 * export pages verify offline, across a clean restart (the shutdown head) and
 * after a crash with refused requests rolled back. */
#include "network.h"
#include "testlib.h"

#include "auditlog.h"
#include "checkpoint.h"
#include "directory_impl.h"
#include "merkle.h"
#include "util.h"

#include <sodium.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOTLINE "vn.hotline111"
#define POLICE  "vn.police.a05"
#define MOLISA  "vn.molisa"
#define COORD   "vn.coord"

#define CALL_MS        10000
#define HEAD_WAIT_MS   30000
#define SWEEP_MAX_SIZE 300

static const char *const members[] = {
    HOTLINE ":intake",
    POLICE ":responder:police",
    MOLISA ":responder",
    COORD ":coordinator",
};

/* The network and every connection a test opens, so that a failing test
 * still closes them (an open socket would block the context's teardown). */
struct fixture {
    tn_network *tn;
    tn_conn *conns[16];
    size_t n_conns;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    fx->tn = tn_new(members, 4);
    /* The log is grown by hundreds of Submits in a few seconds. */
    static const char ini[] = "[limits]\nsubmit_rate = 0\n";
    fx->tn->config_path = tl_path(fx->tn->root, "casenetd.ini");
    tl_write_file(fx->tn->config_path, ini, strlen(ini), 0644);
    tn_start(fx->tn);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    for (size_t i = 0; i < fx->n_conns; i++)
        if (fx->conns[i])
            tn_close(fx->conns[i]);
    if (fx->tn->pid)
        assert_int_equal(tn_stop(fx->tn), 0);
    tn_free(fx->tn);
    free(fx);
    return 0;
}

/* A connection as member id, closed by teardown (or by disconnect). */
static tn_conn *conn(struct fixture *fx, const char *id)
{
    assert_true(fx->n_conns < sizeof fx->conns / sizeof fx->conns[0]);
    return fx->conns[fx->n_conns++] = tn_connect(fx->tn, tn_keys(fx->tn, id));
}

static void disconnect(struct fixture *fx, tn_conn *c)
{
    for (size_t i = 0; i < fx->n_conns; i++)
        if (fx->conns[i] == c)
            fx->conns[i] = NULL;
    tn_close(c);
}

static void rfree(Casenet__V1__Response *r)
{
    casenet__v1__response__free_unpacked(r, NULL);
}

/* ------------------------------------------------------------ requests */

static Casenet__V1__Response *call(tn_conn *c, Casenet__V1__Request *req)
{
    Casenet__V1__Response *r = tn_call(c, req, CALL_MS);
    assert_non_null(r);
    return r;
}

static Casenet__V1__Response *req_head(tn_conn *c)
{
    Casenet__V1__GetTreeHead g = CASENET__V1__GET_TREE_HEAD__INIT;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_GET_TREE_HEAD;
    req.get_tree_head = &g;
    return call(c, &req);
}

static Casenet__V1__Response *req_query(tn_conn *c, const char *member, const uint8_t *mid,
                                        int kind, uint64_t cursor, uint32_t limit)
{
    Casenet__V1__AuditQuery q = CASENET__V1__AUDIT_QUERY__INIT;
    q.member = (char *)(member ? member : "");
    if (mid) {
        q.message_id.data = (uint8_t *)mid;
        q.message_id.len = 16;
    }
    q.kind = (Casenet__V1__AuditKind)kind;
    q.cursor = cursor;
    q.limit = limit;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_QUERY;
    req.audit_query = &q;
    return call(c, &req);
}

static Casenet__V1__Response *req_inclusion(tn_conn *c, uint64_t index, uint64_t size)
{
    Casenet__V1__InclusionRequest ir = CASENET__V1__INCLUSION_REQUEST__INIT;
    ir.index = index;
    ir.tree_size = size;
    Casenet__V1__AuditProof p = CASENET__V1__AUDIT_PROOF__INIT;
    p.proof_case = CASENET__V1__AUDIT_PROOF__PROOF_INCLUSION;
    p.inclusion = &ir;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_PROOF;
    req.audit_proof = &p;
    return call(c, &req);
}

static Casenet__V1__Response *req_consistency(tn_conn *c, uint64_t s1, uint64_t s2)
{
    Casenet__V1__ConsistencyRequest cr = CASENET__V1__CONSISTENCY_REQUEST__INIT;
    cr.size1 = s1;
    cr.size2 = s2;
    Casenet__V1__AuditProof p = CASENET__V1__AUDIT_PROOF__INIT;
    p.proof_case = CASENET__V1__AUDIT_PROOF__PROOF_CONSISTENCY;
    p.consistency = &cr;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_PROOF;
    req.audit_proof = &p;
    return call(c, &req);
}

static Casenet__V1__Response *req_export(tn_conn *c, uint64_t from, uint32_t limit)
{
    Casenet__V1__AuditExport x = CASENET__V1__AUDIT_EXPORT__INIT;
    x.from_index = from;
    x.limit = limit;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_EXPORT;
    req.audit_export = &x;
    return call(c, &req);
}

/* ------------------------------------------------------------ helpers */

/* Submits n referrals from `from` to `to`; returns the last message id. */
static void grow(tn_network *tn, tn_conn *c, const char *from, const char *to, size_t n,
                 uint8_t last_id[16])
{
    const char *rcpt[1] = {to};
    for (size_t i = 0; i < n; i++) {
        uint8_t id[16];
        casenet_buf env = tn_seal(tn, from, rcpt, 1, "audit test", id);
        Casenet__V1__Response *r = tn_submit(c, env.data, env.len);
        assert_non_null(r);
        if (r->error)
            fail_msg("submit: %d %s", r->error->code, r->error->message);
        rfree(r);
        casenet_buf_free(&env);
        if (last_id)
            memcpy(last_id, id, 16);
    }
}

/* What verifying a head needs. */
struct keyinfo {
    char origin[CKPT_ORIGIN_MAX + 1];
    uint8_t pk[32];
};

static void keyinfo(tn_network *tn, struct keyinfo *k)
{
    CN_OK(ckpt_origin(cn_directory_audit_network(tn->net->dir), k->origin));
    const char *kid = NULL;
    memcpy(k->pk, casenet_keys_sign_pk(tn_keys(tn, TN_BROKER_ID), &kid), 32);
}

/* Waits for a signed head of at least min_size and verifies it. */
static void wait_head(tn_conn *c, const struct keyinfo *k, uint64_t min_size, struct ckpt_head *h)
{
    int64_t until = cn_mono_ms() + HEAD_WAIT_MS;
    for (;;) {
        Casenet__V1__Response *r = req_head(c);
        if (tn_code(r) == 0) {
            const ProtobufCBinaryData *ck = &r->tree_head->checkpoint;
            CN_OK(ckpt_verify(ck->data, ck->len, TN_BROKER_ID, k->pk, k->origin, h));
            rfree(r);
            if (h->size >= min_size)
                return;
        } else {
            CN_ERR(tn_code(r), CASENET_ENOTFOUND);
            rfree(r);
        }
        if (cn_mono_ms() > until)
            fail_msg("no tree head of size %llu within %d ms", (unsigned long long)min_size,
                     HEAD_WAIT_MS);
        usleep(200 * 1000);
    }
}

/* The whole log as a coordinator exports it (small pages, to page). */
struct dump {
    casenet_buf *ev;
    size_t n;
    casenet_buf *ck;
    size_t n_ck;
};

static void dump_free(struct dump *d)
{
    for (size_t i = 0; i < d->n; i++)
        casenet_buf_free(&d->ev[i]);
    for (size_t i = 0; i < d->n_ck; i++)
        casenet_buf_free(&d->ck[i]);
    free(d->ev);
    free(d->ck);
    memset(d, 0, sizeof *d);
}

static void copy_into(casenet_buf *b, const ProtobufCBinaryData *src)
{
    b->len = src->len;
    b->data = malloc(src->len ? src->len : 1);
    assert_non_null(b->data);
    memcpy(b->data, src->data, src->len);
}

static void dump_log(tn_conn *coord, struct dump *d)
{
    memset(d, 0, sizeof *d);
    uint64_t from = 0;
    for (;;) {
        Casenet__V1__Response *r = req_export(coord, from, 97);
        assert_int_equal(tn_code(r), 0);
        const Casenet__V1__ExportPage *p = r->export_page;
        assert_int_equal(p->next_index, from + p->n_events);
        d->ev = realloc(d->ev, (d->n + p->n_events + 1) * sizeof *d->ev);
        d->ck = realloc(d->ck, (d->n_ck + p->n_checkpoints + 1) * sizeof *d->ck);
        for (size_t i = 0; i < p->n_events; i++)
            copy_into(&d->ev[d->n++], &p->events[i]);
        for (size_t i = 0; i < p->n_checkpoints; i++)
            copy_into(&d->ck[d->n_ck++], &p->checkpoints[i]);
        bool more = p->more;
        from = p->next_index;
        rfree(r);
        if (!more)
            break;
    }
}

/* Roots of every prefix: roots[n] for n = 1..d->n (roots[0] unused). */
static uint8_t (*prefix_roots(const struct dump *d))[32]
{
    uint8_t(*roots)[32] = calloc(d->n + 1, 32);
    assert_non_null(roots);
    struct merkle_stack st;
    merkle_stack_init(&st);
    for (size_t i = 0; i < d->n; i++) {
        uint8_t leaf[32];
        merkle_leaf_hash(d->ev[i].data, d->ev[i].len, leaf);
        CN_OK(merkle_stack_push(&st, leaf, NULL, NULL));
        merkle_stack_root(&st, roots[i + 1]);
    }
    return roots;
}

/* Runs the offline verifier over a dump (each head after the event that
 * completes it), from trusted (NULL = scratch). */
static int verify_dump(const struct dump *d, const struct keyinfo *k,
                       const struct auditv_state *trusted, uint64_t start, struct auditv_state *out,
                       struct auditv_failure *fail)
{
    struct auditv_config cfg = {.origin = k->origin, .key_name = TN_BROKER_ID, .sign_pk = k->pk};
    struct auditv *v = NULL;
    CN_OK(auditv_new(&cfg, trusted, start, &v));
    size_t ci = 0;
    struct ckpt_head h;
    int rc = CASENET_OK;
    for (; ci < d->n_ck && rc == CASENET_OK; ci++) {
        CN_OK(ckpt_parse(d->ck[ci].data, d->ck[ci].len, &h));
        if (h.size > start)
            break;
    }
    for (size_t i = start; i < d->n && rc == CASENET_OK; i++) {
        rc = auditv_event(v, d->ev[i].data, d->ev[i].len);
        while (rc == CASENET_OK && ci < d->n_ck &&
               ckpt_parse(d->ck[ci].data, d->ck[ci].len, &h) == CASENET_OK && h.size == i + 1) {
            rc = auditv_checkpoint(v, d->ck[ci].data, d->ck[ci].len);
            ci++;
        }
    }
    if (rc == CASENET_OK)
        rc = auditv_finish(v, out);
    if (fail)
        *fail = *auditv_failure(v);
    auditv_free(v);
    return rc;
}

static bool has_party(const Casenet__V1__AuditEvent *e, const char *m)
{
    for (size_t i = 0; i < e->n_parties; i++)
        if (strcmp(e->parties[i], m) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------ tests */

static void test_proofs_every_index_sizes_1_to_300(void **state)
{
    struct fixture *fx = *state;
    tn_network *tn = fx->tn;
    struct keyinfo k;
    keyinfo(tn, &k);
    tn_conn *hot = conn(fx, HOTLINE);
    tn_conn *coord = conn(fx, COORD);
    grow(tn, hot, HOTLINE, POLICE, SWEEP_MAX_SIZE, NULL); /* + start events: > 300 */
    struct dump d;
    dump_log(coord, &d);
    assert_true(d.n > SWEEP_MAX_SIZE);
    uint8_t(*roots)[32] = prefix_roots(&d);

    size_t proofs = 0;
    for (uint64_t n = 1; n <= SWEEP_MAX_SIZE; n++) {
        for (uint64_t i = 0; i < n; i++) {
            Casenet__V1__Response *r = req_inclusion(coord, i, n);
            assert_int_equal(tn_code(r), 0);
            const Casenet__V1__ProofReply *p = r->proof;
            assert_int_equal(p->n_hashes, merkle_proof_len_inclusion(i, n));
            uint8_t hs[MERKLE_PROOF_MAX][32];
            for (size_t j = 0; j < p->n_hashes; j++) {
                assert_int_equal(p->hashes[j].len, 32);
                memcpy(hs[j], p->hashes[j].data, 32);
            }
            uint8_t leaf[32];
            merkle_leaf_hash(d.ev[i].data, d.ev[i].len, leaf);
            CN_OK(merkle_verify_inclusion(leaf, i, n, (const uint8_t(*)[32])hs, p->n_hashes,
                                          roots[n]));
            if (p->checkpoint.len) { /* a head at exactly n: it must say the same root */
                struct ckpt_head h;
                CN_OK(ckpt_verify(p->checkpoint.data, p->checkpoint.len, TN_BROKER_ID, k.pk,
                                  k.origin, &h));
                assert_int_equal(h.size, n);
                assert_memory_equal(h.root, roots[n], 32);
            }
            rfree(r);
            proofs++;
        }
        /* Consistency from a few older sizes, the equal size included. */
        const uint64_t olds[] = {1, n / 3, n / 2, n - 1, n};
        for (size_t j = 0; j < sizeof olds / sizeof olds[0]; j++) {
            uint64_t m = olds[j];
            if (m == 0)
                continue;
            Casenet__V1__Response *r = req_consistency(coord, m, n);
            assert_int_equal(tn_code(r), 0);
            const Casenet__V1__ProofReply *p = r->proof;
            uint8_t hs[MERKLE_PROOF_MAX][32];
            assert_true(p->n_hashes <= MERKLE_PROOF_MAX);
            for (size_t q = 0; q < p->n_hashes; q++) {
                assert_int_equal(p->hashes[q].len, 32);
                memcpy(hs[q], p->hashes[q].data, 32);
            }
            CN_OK(merkle_verify_consistency(m, n, (const uint8_t(*)[32])hs, p->n_hashes, roots[m],
                                            roots[n]));
            rfree(r);
        }
    }
    assert_int_equal(proofs, SWEEP_MAX_SIZE * (SWEEP_MAX_SIZE + 1) / 2);

    /* Sizes the log has not reached, impossible requests. */
    Casenet__V1__Response *r = req_inclusion(coord, 0, 1u << 30);
    CN_ERR(tn_code(r), CASENET_ENOTFOUND);
    rfree(r);
    r = req_inclusion(coord, 5, 5);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    rfree(r);
    r = req_consistency(coord, 0, 5);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    rfree(r);
    r = req_consistency(coord, 6, 5);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    rfree(r);

    /* The signed heads: every one verifies and says the root of its size. */
    struct ckpt_head h;
    wait_head(coord, &k, d.n, &h);
    free(roots);
    dump_free(&d);
    dump_log(coord, &d);
    roots = prefix_roots(&d);
    assert_true(h.size <= d.n);
    assert_memory_equal(h.root, roots[h.size], 32);
    assert_true(d.n_ck > 0);
    for (size_t i = 0; i < d.n_ck; i++) {
        struct ckpt_head x;
        CN_OK(ckpt_verify(d.ck[i].data, d.ck[i].len, TN_BROKER_ID, k.pk, k.origin, &x));
        assert_memory_equal(x.root, roots[x.size], 32);
    }
    struct auditv_state st;
    CN_OK(verify_dump(&d, &k, NULL, 0, &st, NULL));
    assert_true(st.size >= h.size);
    free(roots);
    dump_free(&d);
    disconnect(fx, hot);
    disconnect(fx, coord);
}

static void test_least_visibility(void **state)
{
    struct fixture *fx = *state;
    tn_network *tn = fx->tn;
    tn_conn *hot = conn(fx, HOTLINE);
    tn_conn *pol = conn(fx, POLICE);
    tn_conn *mol = conn(fx, MOLISA);
    tn_conn *coord = conn(fx, COORD);
    uint8_t hot_id[16], mol_id[16];
    grow(tn, hot, HOTLINE, POLICE, 3, hot_id);
    grow(tn, mol, MOLISA, POLICE, 2, mol_id);
    Casenet__V1__Response *r = tn_fetch(pol, hot_id);
    assert_int_equal(tn_code(r), 0);
    rfree(r);

    /* The coordinator sees everything, broker events included. */
    r = req_query(coord, NULL, NULL, 0, 0, 1000);
    assert_int_equal(tn_code(r), 0);
    size_t all = r->audit_page->n_records;
    assert_true(all >= 2 + 3 + 2 + 1);
    bool saw_start = false;
    for (size_t i = 0; i < all; i++) {
        const Casenet__V1__AuditRecord *rec = r->audit_page->records[i];
        Casenet__V1__AuditEvent *e =
            casenet__v1__audit_event__unpack(NULL, rec->event.len, rec->event.data);
        assert_non_null(e);
        assert_int_equal(e->index, rec->index);
        saw_start |= e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_BROKER_START;
        casenet__v1__audit_event__free_unpacked(e, NULL);
    }
    assert_true(saw_start);
    rfree(r);

    /* A plain member sees only what it is party to, whatever it asks. */
    r = req_query(mol, NULL, NULL, 0, 0, 1000);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->audit_page->n_records, 2);
    for (size_t i = 0; i < r->audit_page->n_records; i++) {
        const Casenet__V1__AuditRecord *rec = r->audit_page->records[i];
        Casenet__V1__AuditEvent *e =
            casenet__v1__audit_event__unpack(NULL, rec->event.len, rec->event.data);
        assert_non_null(e);
        assert_true(has_party(e, MOLISA));
        assert_int_equal(e->kind, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED);
        casenet__v1__audit_event__free_unpacked(e, NULL);
    }
    rfree(r);
    r = req_query(mol, NULL, NULL, CASENET__V1__AUDIT_KIND__AUDIT_KIND_BROKER_START, 0, 100);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->audit_page->n_records, 0);
    rfree(r);
    r = req_query(mol, NULL, hot_id, 0, 0, 100); /* another member's message */
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->audit_page->n_records, 0);
    rfree(r);

    /* Naming another member: FORBIDDEN; naming oneself is fine. */
    r = req_query(hot, POLICE, NULL, 0, 0, 100);
    CN_ERR(tn_code(r), CASENET_EFORBIDDEN);
    rfree(r);
    r = req_query(hot, HOTLINE, NULL, 0, 0, 100);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->audit_page->n_records, 3 + 1); /* its submits, the fetch of one */
    rfree(r);

    /* The recipient sees the submission and its own fetch. */
    r = req_query(pol, NULL, hot_id, 0, 0, 100);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->audit_page->n_records, 2);
    uint64_t submitted_at = r->audit_page->records[0]->index;
    rfree(r);

    /* A coordinator may name a member: exactly that member's events. */
    r = req_query(coord, POLICE, NULL, 0, 0, 1000);
    assert_int_equal(tn_code(r), 0);
    /* the hotline's and social services' submits, a fetch, its query */
    assert_int_equal(r->audit_page->n_records, 3 + 2 + 1 + 1);
    rfree(r);

    /* Every query is itself an event, filed under who asked. */
    r = req_query(coord, MOLISA, NULL, CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUDIT_QUERIED, 0, 100);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->audit_page->n_records, 3);
    Casenet__V1__AuditEvent *qe = casenet__v1__audit_event__unpack(
        NULL, r->audit_page->records[2]->event.len, r->audit_page->records[2]->event.data);
    assert_non_null(qe);
    assert_string_equal(qe->actor, MOLISA);
    assert_int_equal(qe->message_id.len, 16);
    assert_memory_equal(qe->message_id.data, hot_id, 16);
    assert_non_null(strstr(qe->detail, "audit_query"));
    casenet__v1__audit_event__free_unpacked(qe, NULL);
    rfree(r);

    /* Paging: one record per page, cursors advance. */
    uint64_t cursor = 0;
    size_t seen = 0;
    for (;;) {
        r = req_query(hot, NULL, NULL, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED, cursor, 1);
        assert_int_equal(tn_code(r), 0);
        seen += r->audit_page->n_records;
        bool more = r->audit_page->more;
        assert_true(r->audit_page->next_cursor > cursor || !more);
        cursor = r->audit_page->next_cursor;
        rfree(r);
        if (!more)
            break;
    }
    assert_int_equal(seen, 3);

    /* Export: coordinators only. Inclusion proofs: own events only. */
    r = req_export(hot, 0, 10);
    CN_ERR(tn_code(r), CASENET_EFORBIDDEN);
    rfree(r);
    r = req_export(coord, 0, 10);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    r = req_export(coord, 1u << 30, 10);
    CN_ERR(tn_code(r), CASENET_ENOTFOUND);
    rfree(r);
    r = req_inclusion(mol, submitted_at, submitted_at + 1);
    CN_ERR(tn_code(r), CASENET_EFORBIDDEN);
    rfree(r);
    r = req_inclusion(pol, submitted_at, submitted_at + 1);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    r = req_consistency(mol, 1, submitted_at + 1);
    assert_int_equal(tn_code(r), 0);
    rfree(r);

    /* Malformed filters. */
    Casenet__V1__AuditQuery q = CASENET__V1__AUDIT_QUERY__INIT;
    uint8_t five[5] = {0};
    q.message_id.data = five;
    q.message_id.len = 5;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_QUERY;
    req.audit_query = &q;
    r = call(coord, &req);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    rfree(r);
    q.message_id.len = 0;
    q.kind = (Casenet__V1__AuditKind)77;
    r = call(coord, &req);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    rfree(r);

    disconnect(fx, hot);
    disconnect(fx, pol);
    disconnect(fx, mol);
    disconnect(fx, coord);
}

/* Item 24 of issue 12: for a member that is not a coordinator, events it is
 * not party to change nothing of a query's answer, next_cursor and more
 * included: another member's message id answers like a random id, and on a
 * shared message the cursor does not move when another party acts. */
static void test_query_cursor_ignores_hidden_events(void **state)
{
    struct fixture *fx = *state;
    tn_network *tn = fx->tn;
    tn_conn *hot = conn(fx, HOTLINE);
    tn_conn *pol = conn(fx, POLICE);
    tn_conn *mol = conn(fx, MOLISA);
    uint8_t theirs[16], shared[16], random_id[16];
    grow(tn, hot, HOTLINE, POLICE, 1, theirs);
    randombytes_buf(random_id, sizeof random_id);

    /* Another member's message id, asked before the member has any event
     * of its own, answers like a random id: nothing, cursor 0. */
    Casenet__V1__Response *r = req_query(mol, NULL, theirs, 0, 0, 100);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->audit_page->n_records, 0);
    assert_int_equal(r->audit_page->next_cursor, 0);
    assert_false(r->audit_page->more);
    rfree(r);
    /* Later, from cursor 1: one past its own last AUDIT_QUERIED event, for
     * that id and for a random one alike, whatever the sender's events. */
    uint64_t next[2];
    const uint8_t *ids[2] = {theirs, random_id};
    for (int i = 0; i < 2; i++) {
        r = req_query(mol, NULL, ids[i], 0, 1, 100);
        assert_int_equal(tn_code(r), 0);
        assert_int_equal(r->audit_page->n_records, 1 - i); /* its first query named theirs */
        assert_false(r->audit_page->more);
        next[i] = r->audit_page->next_cursor;
        rfree(r);
    }
    assert_true(next[0] > 1);
    assert_int_equal(next[1], next[0] + 1); /* the query for theirs is its only new event */

    /* A message to both: the police's fetch is not the ministry's event. */
    const char *both[2] = {POLICE, MOLISA};
    casenet_buf env = tn_seal(tn, HOTLINE, both, 2, "shared case", shared);
    r = tn_submit(hot, env.data, env.len);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    casenet_buf_free(&env);
    r = req_query(mol, NULL, shared, 0, 0, 100);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->audit_page->n_records, 1); /* SUBMITTED */
    uint64_t first = r->audit_page->next_cursor;
    assert_int_equal(first, r->audit_page->records[0]->index + 1);
    rfree(r);
    r = tn_fetch(pol, shared);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    /* From the first answer's cursor: only its own AUDIT_QUERIED event is
     * new to it, and the cursor stops right after that event. */
    r = req_query(mol, NULL, shared, 0, first, 100);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->audit_page->n_records, 1);
    Casenet__V1__AuditEvent *e = casenet__v1__audit_event__unpack(
        NULL, r->audit_page->records[0]->event.len, r->audit_page->records[0]->event.data);
    assert_non_null(e);
    assert_int_equal(e->kind, CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUDIT_QUERIED);
    assert_string_equal(e->actor, MOLISA);
    casenet__v1__audit_event__free_unpacked(e, NULL);
    assert_int_equal(r->audit_page->next_cursor, r->audit_page->records[0]->index + 1);
    assert_false(r->audit_page->more);
    rfree(r);

    disconnect(fx, hot);
    disconnect(fx, pol);
    disconnect(fx, mol);
}

static void test_export_restart_and_client_api(void **state)
{
    struct fixture *fx = *state;
    tn_network *tn = fx->tn;
    struct keyinfo k;
    keyinfo(tn, &k);
    tn_conn *hot = conn(fx, HOTLINE);
    grow(tn, hot, HOTLINE, POLICE, 40, NULL);
    disconnect(fx, hot);

    casenet_client_opts opts = {.endpoint = tn->endpoint, .timeout_ms = CALL_MS};
    casenet_client *c = NULL;
    CN_OK(casenet_client_connect(tn_keys(tn, COORD), tn->net->dir, &opts, &c));
    casenet_buf ck = {0};
    struct ckpt_head h;
    int64_t until = cn_mono_ms() + HEAD_WAIT_MS;
    for (;;) {
        int rc = casenet_client_tree_head(c, &ck);
        if (rc == CASENET_OK) {
            CN_OK(ckpt_verify(ck.data, ck.len, TN_BROKER_ID, k.pk, k.origin, &h));
            casenet_buf_free(&ck);
            if (h.size >= 42)
                break;
        } else {
            CN_ERR(rc, CASENET_ENOTFOUND);
        }
        assert_true(cn_mono_ms() < until);
        usleep(200 * 1000);
    }

    /* Export through the library into a file; verify it offline. */
    FILE *f = tmpfile();
    assert_non_null(f);
    struct auditv_export_header hdr = {.from_index = 0};
    snprintf(hdr.network, sizeof hdr.network, "%s", cn_directory_audit_network(tn->net->dir));
    snprintf(hdr.broker_id, sizeof hdr.broker_id, "%s", TN_BROKER_ID);
    memcpy(hdr.broker_sign_pk, k.pk, 32);
    CN_OK(auditv_export_write_header(f, &hdr));
    uint64_t from = 0;
    bool more = true;
    while (more) {
        casenet_audit_export_page p = {0};
        CN_OK(casenet_client_audit_export(c, from, 7, &p));
        assert_true(p.n_events <= 7);
        size_t ci = 0;
        for (size_t i = 0; i < p.n_events; i++) {
            CN_OK(auditv_export_write_event(f, p.events[i].data, p.events[i].len));
            struct ckpt_head x;
            while (ci < p.n_checkpoints &&
                   ckpt_parse(p.checkpoints[ci].data, p.checkpoints[ci].len, &x) == CASENET_OK &&
                   x.size == from + i + 1) {
                CN_OK(auditv_export_write_checkpoint(f, p.checkpoints[ci].data,
                                                     p.checkpoints[ci].len));
                ci++;
            }
        }
        assert_int_equal(ci, p.n_checkpoints);
        more = p.more;
        from = p.next_index;
        casenet_audit_export_page_clear(&p);
    }
    rewind(f);
    struct auditv_config cfg = {.origin = k.origin, .key_name = TN_BROKER_ID, .sign_pk = k.pk};
    struct auditv_state s1;
    struct auditv_failure fail;
    if (auditv_verify_file(f, &cfg, NULL, &s1, &fail) != CASENET_OK)
        fail_msg("export does not verify: %s", fail.reason);
    fclose(f);
    assert_true(s1.size >= h.size);

    /* Queries and proofs through the library. */
    casenet_audit_filter filt = {.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED};
    casenet_audit_record *recs = NULL;
    size_t n = 0;
    uint64_t next = 0;
    CN_OK(casenet_client_audit_query(c, &filt, 0, 100, &recs, &n, &next, &more));
    assert_int_equal(n, 40);
    casenet_buf hashes = {0}, hck = {0};
    CN_OK(casenet_client_audit_inclusion(c, recs[7].index, s1.size, &hashes, &hck));
    assert_true(hck.len > 0); /* s1 is the size of a signed head */
    uint8_t leaf[32];
    merkle_leaf_hash(recs[7].event.data, recs[7].event.len, leaf);
    CN_OK(merkle_verify_inclusion(leaf, recs[7].index, s1.size, (const uint8_t(*)[32])hashes.data,
                                  hashes.len / 32, s1.root));
    casenet_buf_free(&hashes);
    casenet_buf_free(&hck);
    casenet_audit_records_free(recs, n);
    casenet_client_free(c);
    c = NULL;

    /* A member cannot ask for another member's traffic through the library. */
    CN_OK(casenet_client_connect(tn_keys(tn, POLICE), tn->net->dir, &opts, &c));
    casenet_audit_filter other = {.member = HOTLINE};
    CN_ERR(casenet_client_audit_query(c, &other, 0, 10, &recs, &n, &next, &more),
           CASENET_EFORBIDDEN);
    casenet_audit_export_page p = {0};
    CN_ERR(casenet_client_audit_export(c, 0, 10, &p), CASENET_EFORBIDDEN);
    casenet_client_free(c);

    /* A clean stop signs a last head over BROKER_STOP; continuing from s1
     * after the restart verifies. */
    assert_int_equal(tn_stop(tn), 0);
    tn_restart(tn);
    tn_conn *coord = conn(fx, COORD);
    struct dump d;
    dump_log(coord, &d);
    size_t stop_at = 0;
    for (size_t i = 0; i < d.n; i++) {
        Casenet__V1__AuditEvent *e =
            casenet__v1__audit_event__unpack(NULL, d.ev[i].len, d.ev[i].data);
        assert_non_null(e);
        if (e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_BROKER_STOP)
            stop_at = i;
        casenet__v1__audit_event__free_unpacked(e, NULL);
    }
    assert_true(stop_at > 0);
    bool stop_head = false;
    for (size_t i = 0; i < d.n_ck; i++) {
        struct ckpt_head x;
        CN_OK(ckpt_parse(d.ck[i].data, d.ck[i].len, &x));
        stop_head |= x.size == stop_at + 1;
    }
    assert_true(stop_head);
    struct auditv_state s2;
    CN_OK(verify_dump(&d, &k, &s1, s1.size, &s2, &fail));
    assert_true(s2.size >= stop_at + 1);
    dump_free(&d);
    disconnect(fx, coord);
}

static void test_crash_and_rollbacks_keep_tree(void **state)
{
    struct fixture *fx = *state;
    tn_network *tn = fx->tn;
    struct keyinfo k;
    keyinfo(tn, &k);
    tn_conn *hot = conn(fx, HOTLINE);
    tn_conn *mol = conn(fx, MOLISA);
    const char *rcpt[1] = {POLICE};
    for (int i = 0; i < 15; i++) {
        grow(tn, hot, HOTLINE, POLICE, 1, NULL);
        /* Refused after parsing (sender is not the connection): the
         * request's savepoint rolls back, a REJECTED event follows. */
        casenet_buf env = tn_seal(tn, HOTLINE, rcpt, 1, "not yours", NULL);
        Casenet__V1__Response *r = tn_submit(mol, env.data, env.len);
        CN_ERR(tn_code(r), CASENET_EFORBIDDEN);
        rfree(r);
        casenet_buf_free(&env);
    }
    disconnect(fx, hot);
    disconnect(fx, mol);
    tn_kill(tn); /* no BROKER_STOP, no last head */
    tn_restart(tn);
    hot = conn(fx, HOTLINE);
    grow(tn, hot, HOTLINE, POLICE, 5, NULL);
    disconnect(fx, hot);
    tn_conn *coord = conn(fx, COORD);
    struct ckpt_head h;
    wait_head(coord, &k, 2 + 30 + 1 + 5, &h); /* start, 15 + 15, restart, 5 */
    struct dump d;
    dump_log(coord, &d);
    struct auditv_state st;
    struct auditv_failure fail;
    if (verify_dump(&d, &k, NULL, 0, &st, &fail) != CASENET_OK)
        fail_msg("%s", fail.reason);
    assert_true(st.size >= h.size);
    uint8_t(*roots)[32] = prefix_roots(&d);
    for (uint64_t i = 0; i < h.size; i++) {
        Casenet__V1__Response *r = req_inclusion(coord, i, h.size);
        assert_int_equal(tn_code(r), 0);
        uint8_t hs[MERKLE_PROOF_MAX][32];
        for (size_t j = 0; j < r->proof->n_hashes; j++)
            memcpy(hs[j], r->proof->hashes[j].data, 32);
        uint8_t leaf[32];
        merkle_leaf_hash(d.ev[i].data, d.ev[i].len, leaf);
        CN_OK(merkle_verify_inclusion(leaf, i, h.size, (const uint8_t(*)[32])hs, r->proof->n_hashes,
                                      h.root));
        assert_memory_equal(h.root, roots[h.size], 32);
        rfree(r);
    }
    free(roots);
    dump_free(&d);
    disconnect(fx, coord);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_proofs_every_index_sizes_1_to_300, setup, teardown),
        cmocka_unit_test_setup_teardown(test_least_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_cursor_ignores_hidden_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_restart_and_client_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_and_rollbacks_keep_tree, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
