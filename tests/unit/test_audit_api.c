/*
 * test_audit_api.c - the public audit log verifier of casenet.h
 * (clients/audit_verify.c): the broker's identity from a directory, runs fed
 * page by page with every callback, the trusted state through a file and
 * through bytes (saved only when it moved), an incremental run from the
 * trusted head, a changed event and a forged head named in the failure, an
 * export file read from a descriptor, and a head checked offline. The live
 * run and prove against a real broker: cli.audit and unit.audit_broker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auditlog.h"
#include "casenet.h"
#include "casenet.pb-c.h"
#include "checkpoint.h"
#include "directory_impl.h"
#include "merkle.h"
#include "testlib.h"
#include "tl_net.h"

#define N_EVENTS   250
#define HEAD_EVERY 50
#define N_HEADS    (N_EVENTS / HEAD_EVERY)
#define BROKER     "vn.broker"
#define T0         1764000000000ll

static tl_net *g_net;
static char g_origin[CKPT_ORIGIN_MAX + 1];
static casenet_buf g_ev[N_EVENTS];
static casenet_buf g_head[N_HEADS]; /* g_head[k] has size (k + 1) * HEAD_EVERY */

static casenet_buf make_event(uint64_t i)
{
    Casenet__V1__AuditEvent e = CASENET__V1__AUDIT_EVENT__INIT;
    char detail[64];
    snprintf(detail, sizeof detail, "event %llu", (unsigned long long)i);
    e.index = i;
    e.time_ms = T0 + (int64_t)i;
    e.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED;
    e.actor = (char *)"vn.police";
    e.detail = detail;
    casenet_buf b = {.len = casenet__v1__audit_event__get_packed_size(&e)};
    b.data = malloc(b.len);
    assert_non_null(b.data);
    casenet__v1__audit_event__pack(&e, b.data);
    return b;
}

static casenet_buf sign_head(const casenet_keys *k, uint64_t size, const uint8_t root[32])
{
    struct ckpt_head h;
    memset(&h, 0, sizeof h);
    strcpy(h.origin, g_origin);
    h.size = size;
    memcpy(h.root, root, 32);
    h.time_ms = T0 + (int64_t)size;
    casenet_buf out = {0};
    assert_int_equal(ckpt_sign(k, &h, &out), CASENET_OK);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    const char *members[] = {BROKER ":broker", "vn.coord:coordinator", "vn.police:responder"};
    g_net = tl_net_new(members, 3);
    assert_int_equal(ckpt_origin(cn_directory_audit_network(g_net->dir), g_origin), CASENET_OK);
    struct merkle_stack s;
    merkle_stack_init(&s);
    for (uint64_t i = 0; i < N_EVENTS; i++) {
        g_ev[i] = make_event(i);
        uint8_t leaf[32], root[32];
        merkle_leaf_hash(g_ev[i].data, g_ev[i].len, leaf);
        assert_int_equal(merkle_stack_push(&s, leaf, NULL, NULL), CASENET_OK);
        if ((i + 1) % HEAD_EVERY == 0) {
            merkle_stack_root(&s, root);
            g_head[i / HEAD_EVERY] = sign_head(tl_net_keys(g_net, BROKER), i + 1, root);
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_EVENTS; i++)
        casenet_buf_free(&g_ev[i]);
    for (size_t i = 0; i < N_HEADS; i++)
        casenet_buf_free(&g_head[i]);
    tl_net_free(g_net);
    return 0;
}

/* What the callbacks saw. */
struct seen {
    uint64_t events, next_index, heads, last_head, progress_done;
    bool out_of_order;
};

static void on_event(void *ctx, uint64_t index, const uint8_t *ev, size_t len)
{
    struct seen *s = ctx;
    if (index != s->next_index || len != g_ev[index].len || memcmp(ev, g_ev[index].data, len))
        s->out_of_order = true;
    s->next_index = index + 1;
    s->events++;
}

static void on_head(void *ctx, uint64_t size, int64_t time_ms, const uint8_t *ck, size_t len)
{
    struct seen *s = ctx;
    (void)ck;
    (void)len;
    if (size <= s->last_head || time_ms != T0 + (int64_t)size)
        s->out_of_order = true;
    s->last_head = size;
    s->heads++;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct seen *s = ctx;
    assert_true(total == N_EVENTS || total == 0); /* a file run: unknown */
    s->progress_done = done;
}

static casenet_audit_verifier *new_verifier(struct seen *s)
{
    casenet_audit_callbacks cb = {
        .progress = on_progress, .event = on_event, .head = on_head, .ctx = s};
    casenet_audit_verifier *v = NULL;
    assert_int_equal(casenet_audit_verifier_new(g_net->dir, &cb, &v), CASENET_OK);
    return v;
}

/* An export page of events [from, to) with the heads of sizes in (from, to]. */
static casenet_audit_export_page page(uint64_t from, uint64_t to, bool more)
{
    casenet_audit_export_page p = {.next_index = to, .more = more};
    p.events = &g_ev[from];
    p.n_events = to - from;
    size_t first = from / HEAD_EVERY, last = to / HEAD_EVERY;
    p.checkpoints = &g_head[first];
    p.n_checkpoints = last - first;
    return p;
}

/* Feeds events [from, N_EVENTS) in two pages from a begin at from. */
static int run_from(casenet_audit_verifier *v, uint64_t from)
{
    int rc = casenet_audit_verifier_begin(v, from, N_EVENTS);
    if (rc != CASENET_OK)
        return rc;
    uint64_t mid = from + (N_EVENTS - from) / 2 / HEAD_EVERY * HEAD_EVERY;
    casenet_audit_export_page p1 = page(from, mid, true), p2 = page(mid, N_EVENTS, false);
    if ((rc = casenet_audit_verifier_feed_page(v, &p1, from)) != CASENET_OK ||
        (rc = casenet_audit_verifier_feed_page(v, &p2, mid)) != CASENET_OK)
        return rc;
    return casenet_audit_verifier_finish(v);
}

static void test_new(void **state)
{
    (void)state;
    casenet_audit_verifier *v = NULL;
    assert_int_equal(casenet_audit_verifier_new(NULL, NULL, &v), CASENET_EINVAL);
    const char *members[] = {"vn.police:responder"};
    tl_net *nobroker = tl_net_new(members, 1);
    assert_int_equal(casenet_audit_verifier_new(nobroker->dir, NULL, &v), CASENET_ENOTFOUND);
    tl_net_free(nobroker);
    assert_int_equal(casenet_audit_verifier_new(g_net->dir, NULL, &v), CASENET_OK);
    casenet_audit_head t;
    casenet_audit_verifier_trusted(v, &t);
    assert_int_equal(t.size, 0);
    assert_int_equal(casenet_audit_verifier_failure(v)->where, CASENET_AUDIT_OK);
    /* feeding without begin is a caller error */
    casenet_audit_export_page p = page(0, HEAD_EVERY, false);
    assert_int_equal(casenet_audit_verifier_feed_page(v, &p, 0), CASENET_EINVAL);
    assert_int_equal(casenet_audit_verifier_finish(v), CASENET_EINVAL);
    casenet_audit_verifier_free(v);
    casenet_audit_verifier_free(NULL);
}

static void test_fed_run(void **state)
{
    (void)state;
    struct seen s = {0};
    casenet_audit_verifier *v = new_verifier(&s);
    assert_int_equal(run_from(v, 0), CASENET_OK);
    assert_int_equal(s.events, N_EVENTS);
    assert_int_equal(s.heads, N_HEADS);
    assert_int_equal(s.last_head, N_EVENTS);
    assert_int_equal(s.progress_done, N_EVENTS);
    assert_false(s.out_of_order);
    uint64_t events, heads, tail;
    casenet_audit_verifier_counts(v, &events, &heads, &tail);
    assert_int_equal(events, N_EVENTS);
    assert_int_equal(heads, N_HEADS);
    assert_int_equal(tail, 0);
    casenet_audit_head t;
    casenet_audit_verifier_trusted(v, &t);
    assert_int_equal(t.size, N_EVENTS);
    assert_int_equal(t.time_ms, T0 + N_EVENTS);
    assert_int_equal(casenet_audit_verifier_failure(v)->where, CASENET_AUDIT_OK);
    /* a page that does not continue the last one */
    assert_int_equal(casenet_audit_verifier_begin(v, N_EVENTS, 0), CASENET_OK);
    casenet_audit_export_page p = page(0, HEAD_EVERY, false);
    assert_int_equal(casenet_audit_verifier_feed_page(v, &p, 0), CASENET_EINVAL);
    casenet_audit_verifier_free(v);
}

static void test_state(void **state)
{
    (void)state;
    char *dir = tl_tmpdir();
    char *path = tl_path(dir, "audit.state");
    struct seen s = {0};
    casenet_audit_verifier *v = new_verifier(&s);
    assert_int_equal(casenet_audit_verifier_load_state(v, path), CASENET_ENOTFOUND);
    assert_int_equal(casenet_audit_verifier_save_state(v, path), CASENET_OK);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* nothing moved: nothing written */
    assert_int_equal(run_from(v, 0), CASENET_OK);
    assert_int_equal(casenet_audit_verifier_save_state(v, path), CASENET_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    unlink(path);
    assert_int_equal(casenet_audit_verifier_save_state(v, path), CASENET_OK);
    assert_int_not_equal(stat(path, &st), 0); /* saved already */

    casenet_buf bytes = {0};
    assert_int_equal(casenet_audit_verifier_encode_state(v, &bytes), CASENET_OK);
    struct seen s2 = {0};
    casenet_audit_verifier *w = new_verifier(&s2);
    assert_int_equal(casenet_audit_verifier_decode_state(w, bytes.data, bytes.len), CASENET_OK);
    casenet_audit_head a, b;
    casenet_audit_verifier_trusted(v, &a);
    casenet_audit_verifier_trusted(w, &b);
    assert_memory_equal(&a, &b, sizeof a);
    bytes.data[bytes.len / 2] ^= 1;
    assert_int_equal(casenet_audit_verifier_decode_state(w, bytes.data, bytes.len),
                     CASENET_EBADREQ);
    casenet_buf_free(&bytes);
    casenet_audit_verifier_free(w);
    casenet_audit_verifier_free(v);
    free(path);
    tl_rmrf(dir);
    free(dir);
}

static void test_incremental(void **state)
{
    (void)state;
    struct seen s = {0};
    casenet_audit_verifier *v = new_verifier(&s);
    /* trust the first two heads, then continue from there */
    assert_int_equal(casenet_audit_verifier_begin(v, 0, N_EVENTS), CASENET_OK);
    casenet_audit_export_page p = page(0, 2 * HEAD_EVERY, true);
    assert_int_equal(casenet_audit_verifier_feed_page(v, &p, 0), CASENET_OK);
    assert_int_equal(casenet_audit_verifier_finish(v), CASENET_OK);
    memset(&s, 0, sizeof s);
    s.next_index = 2 * HEAD_EVERY;
    s.last_head = 2 * HEAD_EVERY;
    assert_int_equal(run_from(v, 2 * HEAD_EVERY), CASENET_OK);
    assert_int_equal(s.events, N_EVENTS - 2 * HEAD_EVERY);
    assert_false(s.out_of_order);
    /* from scratch below the trusted head: recomputed and compared */
    assert_int_equal(run_from(v, 0), CASENET_OK);
    /* any other start is refused, and said so */
    assert_int_equal(casenet_audit_verifier_begin(v, 7, 0), CASENET_EINVAL);
    assert_int_equal(casenet_audit_verifier_failure(v)->where, CASENET_AUDIT_LOCAL);
    casenet_audit_verifier_free(v);
}

static void test_tampered(void **state)
{
    (void)state;
    struct seen s = {0};
    casenet_audit_verifier *v = new_verifier(&s);
    uint8_t keep = g_ev[120].data[g_ev[120].len - 1];
    g_ev[120].data[g_ev[120].len - 1] ^= 0x20; /* a letter of its detail */
    int rc = run_from(v, 0);
    g_ev[120].data[g_ev[120].len - 1] = keep;
    assert_int_equal(rc, CASENET_EBADSIG);
    const casenet_audit_failure *f = casenet_audit_verifier_failure(v);
    assert_int_equal(f->where, CASENET_AUDIT_HEAD);
    assert_int_equal(f->err, CASENET_EBADSIG);
    assert_int_equal(f->index, 100);
    assert_int_equal(f->head_size, 150);
    assert_non_null(strstr(f->reason, "root mismatch"));
    casenet_audit_head t;
    casenet_audit_verifier_trusted(v, &t);
    assert_int_equal(t.size, 0); /* the run failed: nothing newly trusted */

    /* a head signed by another key under the broker's name */
    casenet_keys *forger = NULL;
    assert_int_equal(casenet_keys_generate(BROKER, T0, &forger), CASENET_OK);
    casenet_buf forged = sign_head(forger, 1, (const uint8_t[32]){0});
    casenet_audit_head h;
    assert_int_equal(casenet_audit_verifier_check_head(v, NULL, forged.data, forged.len, &h),
                     CASENET_EBADSIG);
    assert_int_equal(casenet_audit_verifier_failure(v)->where, CASENET_AUDIT_HEAD);
    assert_non_null(strstr(casenet_audit_verifier_failure(v)->reason, "forged or altered"));
    casenet_buf_free(&forged);
    casenet_keys_free(forger);
    /* the real one verifies offline */
    assert_int_equal(casenet_audit_verifier_check_head(v, NULL, g_head[1].data, g_head[1].len, &h),
                     CASENET_OK);
    assert_int_equal(h.size, 2 * HEAD_EVERY);
    assert_int_equal(casenet_audit_verifier_failure(v)->where, CASENET_AUDIT_OK);
    casenet_audit_verifier_free(v);
}

/* Writes an export file of the whole log to path; cut bytes short of its end. */
static void write_export(const char *path, size_t cut)
{
    char *data = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&data, &len);
    assert_non_null(fp);
    struct auditv_export_header h;
    memset(&h, 0, sizeof h);
    snprintf(h.network, sizeof h.network, "%s", cn_directory_audit_network(g_net->dir));
    strcpy(h.broker_id, BROKER);
    memcpy(h.broker_sign_pk, casenet_keys_sign_pk(tl_net_keys(g_net, BROKER), NULL), 32);
    assert_int_equal(auditv_export_write_header(fp, &h), CASENET_OK);
    for (size_t i = 0; i < N_EVENTS; i++) {
        assert_int_equal(auditv_export_write_event(fp, g_ev[i].data, g_ev[i].len), CASENET_OK);
        if ((i + 1) % HEAD_EVERY == 0)
            assert_int_equal(auditv_export_write_checkpoint(fp, g_head[i / HEAD_EVERY].data,
                                                            g_head[i / HEAD_EVERY].len),
                             CASENET_OK);
    }
    assert_int_equal(fclose(fp), 0);
    tl_write_file(path, data, len - cut, 0600);
    free(data);
}

static void test_file(void **state)
{
    (void)state;
    char *dir = tl_tmpdir();
    char *path = tl_path(dir, "log.export");
    struct seen s = {0};
    casenet_audit_verifier *v = new_verifier(&s);
    write_export(path, 0);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(casenet_audit_verify_file(v, fd), CASENET_OK);
    close(fd);
    assert_int_equal(s.events, N_EVENTS);
    assert_int_equal(s.heads, N_HEADS);
    casenet_audit_head t;
    casenet_audit_verifier_trusted(v, &t);
    assert_int_equal(t.size, N_EVENTS);

    write_export(path, 3);
    casenet_audit_verifier_free(v);
    memset(&s, 0, sizeof s);
    v = new_verifier(&s);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(casenet_audit_verify_file(v, fd), CASENET_EBADREQ);
    close(fd);
    assert_int_equal(casenet_audit_verifier_failure(v)->where, CASENET_AUDIT_FILE);
    assert_true(casenet_audit_verifier_failure(v)->offset > 0);
    assert_int_equal(casenet_audit_verify_file(v, -1), CASENET_EINVAL);
    casenet_audit_verifier_free(v);
    free(path);
    tl_rmrf(dir);
    free(dir);
}

/* prove_path's caller errors leave its outputs alone (a real proof runs
 * against a broker: console.coord's /coord/audit/prove, cli.audit). */
static void test_prove_path_args(void **state)
{
    (void)state;
    casenet_audit_verifier *v = NULL;
    assert_int_equal(casenet_audit_verifier_new(g_net->dir, NULL, &v), CASENET_OK);
    casenet_audit_head h = {.size = 4};
    uint8_t leaf[CASENET_HASH_BYTES] = {7}, ev[] = {1, 2, 3};
    casenet_buf path = {0};
    assert_int_equal(casenet_audit_verifier_prove_path(v, NULL, &h, 0, ev, sizeof ev, leaf, &path),
                     CASENET_EINVAL);
    assert_int_equal(
        casenet_audit_verifier_prove_path(NULL, NULL, &h, 0, ev, sizeof ev, leaf, &path),
        CASENET_EINVAL);
    assert_int_equal(leaf[0], 7);
    assert_null(path.data);
    casenet_audit_verifier_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new),
        cmocka_unit_test(test_fed_run),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_prove_path_args),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
