/* scale.c - casenet-bench's store-scale checks (see bench.h): fills a data
 * directory with many stored messages through the broker's own store
 * operations (the format casenetd reads), then measures casenetd's start-up
 * and the cost of listing a page of the inbox whatever the backlog.
 *
 * The stored messages are synthetic: random ids, hashes and filler bytes of
 * the envelope's size, marked as TEST traffic, with a real SUBMITTED audit
 * event each. They exercise storage and indexes as real ones do, but are not
 * openable envelopes (sealing a million real ones would take minutes of
 * signing and is not what is measured here). */
#include "audit.h"
#include "bench.h"
#include "store.h"

#include "util.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#define FILL_CHUNK      20000 /* rows per transaction */
#define LIST_PAGE       100
#define LIST_CALLS      200
#define STORE_LIST_RUNS 50
#define RECEIPT_FILLER  170 /* about a BrokerReceipt's size */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t file_size(const char *dir, const char *name)
{
    char *p = NULL;
    struct stat st;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return 0;
    uint64_t n = stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
    free(p);
    return n;
}

/* One synthetic submission: message, audit event, inbox row (the order of
 * the broker's Submit handler). */
static int fill_one(struct store *s, const struct bench_net *net, uint64_t dir_version, int64_t now,
                    const uint8_t *filler, size_t size, const uint8_t *receipt)
{
    struct store_message m = {0};
    randombytes_buf(m.message_id, sizeof m.message_id);
    randombytes_buf(m.envelope_hash, sizeof m.envelope_hash);
    snprintf(m.sender, sizeof m.sender, "%s", net->ids[1]);
    m.kind = CASENET_KIND_REFERRAL;
    m.urgency = CASENET_URGENCY_STANDARD;
    m.msg_status = CASENET_MSG_TEST;
    m.created_at_ms = m.received_at_ms = now;
    m.size = (uint32_t)size;

    char *rcpt[1] = {net->ids[0]};
    casenet_message_info info = {0};
    memcpy(info.message_id, m.message_id, sizeof info.message_id);
    memcpy(info.envelope_hash, m.envelope_hash, sizeof info.envelope_hash);
    snprintf(info.sender, sizeof info.sender, "%s", m.sender);
    info.kind = CASENET_KIND_REFERRAL;
    info.urgency = CASENET_URGENCY_STANDARD;
    info.status = CASENET_MSG_TEST;
    info.created_at_ms = now;
    info.n_recipients = 1;
    info.recipients = rcpt;
    int rc = store_audit_next_index(s, &m.audit_index);
    if (rc != CASENET_OK)
        return rc;
    m.envelope.data = (uint8_t *)filler; /* borrowed: the store copies */
    m.envelope.len = size;
    m.receipt.data = (uint8_t *)receipt;
    m.receipt.len = RECEIPT_FILLER;
    if ((rc = store_message_insert(s, &m)) != CASENET_OK ||
        (rc = audit_submitted(s, now, &info, m.size, dir_version, NULL)) != CASENET_OK)
        return rc;
    struct store_inbox_row row = {0};
    snprintf(row.recipient, sizeof row.recipient, "%s", net->ids[0]);
    memcpy(row.message_id, m.message_id, sizeof row.message_id);
    snprintf(row.sender, sizeof row.sender, "%s", m.sender);
    row.kind = m.kind;
    row.urgency = m.urgency;
    row.msg_status = m.msg_status;
    row.state = CASENET_INBOX_QUEUED;
    row.received_at_ms = row.created_at_ms = now;
    row.size = m.size;
    return store_inbox_insert(s, &row);
}

/* p50 and max of STORE_LIST_RUNS in-process inbox_list calls. */
static int time_store_list(struct store *s, const char *recipient, int state, uint64_t cursor,
                           double *p50, double *max)
{
    double t[STORE_LIST_RUNS];
    for (int i = 0; i < STORE_LIST_RUNS; i++) {
        struct store_inbox_row *rows = NULL;
        size_t n = 0;
        bool more = false;
        double a = mono_s();
        int rc = store_inbox_list(s, recipient, state, cursor, LIST_PAGE, &rows, &n, &more);
        t[i] = (mono_s() - a) * 1e3;
        store_inbox_rows_free(rows, n);
        if (rc != CASENET_OK)
            return rc;
        if (n != LIST_PAGE) {
            fprintf(stderr, "casenet-bench: inbox_list returned %zu rows, not %d\n", n, LIST_PAGE);
            return CASENET_EUNAVAIL;
        }
    }
    bench_sort(t, STORE_LIST_RUNS);
    *p50 = bench_percentile(t, STORE_LIST_RUNS, 0.5);
    *max = t[STORE_LIST_RUNS - 1];
    return CASENET_OK;
}

int bench_fill(const struct bench_opts *o, const struct bench_net *net, uint64_t n, size_t size,
               struct scale_result *out)
{
    const char *spec = o->broker_store ? o->broker_store : net->data_dir;
    struct store *s = NULL;
    uint8_t *filler = malloc(size ? size : 1);
    uint8_t receipt[RECEIPT_FILLER];
    int rc = CASENET_ENOMEM;
    if (!filler)
        return rc;
    randombytes_buf(filler, size);
    randombytes_buf(receipt, sizeof receipt);
    if (o->sqlite_dir && mkdir(o->sqlite_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "casenet-bench: cannot create %s: %s\n", o->sqlite_dir, strerror(errno));
        free(filler);
        return CASENET_EIO;
    }
    if ((rc = store_open(spec, &s)) != CASENET_OK) {
        fprintf(stderr, "casenet-bench: cannot open the store %s: %s\n", spec,
                casenet_strerror(rc));
        free(filler);
        return rc;
    }
    uint64_t dir_version = casenet_directory_version(net->directory);
    int64_t now = cn_now_ms();
    double t0 = mono_s();
    uint64_t done = 0;
    while (done < n && rc == CASENET_OK) {
        if ((rc = store_begin(s)) != CASENET_OK)
            break;
        uint64_t end = done + FILL_CHUNK < n ? done + FILL_CHUNK : n;
        for (; done < end && rc == CASENET_OK; done++)
            rc = fill_one(s, net, dir_version, now, filler, size, receipt);
        if (rc == CASENET_OK)
            rc = store_commit(s);
        else
            store_rollback(s);
    }
    out->fill_s = mono_s() - t0;
    out->stored = done;
    if (rc == CASENET_OK && n >= LIST_PAGE * 2) {
        double p50a, maxa, p50b, maxb;
        rc = time_store_list(s, net->ids[0], 0, 0, &p50a, &maxa);
        if (rc == CASENET_OK)
            rc = time_store_list(s, net->ids[0], CASENET_INBOX_QUEUED, n / 2, &p50b, &maxb);
        if (rc == CASENET_OK) {
            out->store_list_p50_ms = p50a > p50b ? p50a : p50b;
            out->store_list_max_ms = maxa > maxb ? maxa : maxb;
        }
    }
    store_close(s);
    free(filler);
    if (o->sqlite_dir) /* PostgreSQL: the database's size, measured by main */
        out->db_bytes =
            file_size(o->sqlite_dir, "casenet.db") + file_size(o->sqlite_dir, "casenet.db-wal");
    if (rc != CASENET_OK)
        fprintf(stderr, "casenet-bench: filling the store failed after %llu messages: %s\n",
                (unsigned long long)done, casenet_strerror(rc));
    return rc;
}

/* p50 and p99 round trips of LIST_CALLS identical requests. */
static int time_calls(void *sock, Casenet__V1__Request *req, double *p50, double *p99)
{
    double t[LIST_CALLS];
    for (int i = 0; i < LIST_CALLS; i++) {
        req->request_id++;
        double a = mono_s();
        Casenet__V1__Response *r = bench_call(sock, req, 10000);
        t[i] = (mono_s() - a) * 1e3;
        bool ok = r && !r->error;
        if (ok && req->body_case == CASENET__V1__REQUEST__BODY_LIST_INBOX)
            ok = r->body_case == CASENET__V1__RESPONSE__BODY_INBOX &&
                 r->inbox->n_entries == req->list_inbox->limit;
        if (r)
            casenet__v1__response__free_unpacked(r, NULL);
        if (!ok) {
            fprintf(stderr, "casenet-bench: a timed request failed or came back short\n");
            return CASENET_EUNAVAIL;
        }
    }
    bench_sort(t, LIST_CALLS);
    *p50 = bench_percentile(t, LIST_CALLS, 0.5);
    if (p99)
        *p99 = bench_percentile(t, LIST_CALLS, 0.99);
    return CASENET_OK;
}

int bench_scale_wire(const struct bench_opts *o, const struct bench_net *net, const char *casenetd,
                     struct bench_broker *b, struct scale_result *out)
{
    int rc = CASENET_OK;
    for (int i = 0; i < 3 && rc == CASENET_OK; i++) {
        if (i > 0 && bench_broker_stop(b) != 0) {
            fprintf(stderr, "casenet-bench: casenetd exited with an error; see %s\n",
                    net->log_path);
            return CASENET_EIO;
        }
        rc = bench_broker_start(net, casenetd, o, b);
        out->startup_ms[i] = b->startup_ms;
    }
    if (rc != CASENET_OK)
        return rc;
    struct proc_sample ps;
    if (bench_proc_sample(b->pid, &ps))
        out->rss_after_start_kb = ps.rss_kb;
    void *zctx = zmq_ctx_new();
    if (!zctx)
        return CASENET_ENOMEM;
    void *sock = bench_dealer(zctx, b->endpoint, net->broker_curve_pk, net->keys[0]);
    rc = sock ? CASENET_OK : CASENET_EIO;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
    Casenet__V1__ListInbox li = CASENET__V1__LIST_INBOX__INIT;
    req.protocol_version = 1;
    req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    req.hello = &h;
    if (rc == CASENET_OK)
        rc = time_calls(sock, &req, &out->hello_p50_ms, NULL);
    req.body_case = CASENET__V1__REQUEST__BODY_LIST_INBOX;
    req.list_inbox = &li;
    li.limit = LIST_PAGE;
    if (rc == CASENET_OK)
        rc = time_calls(sock, &req, &out->list_first_p50_ms, &out->list_first_p99_ms);
    li.state = CASENET__V1__INBOX_STATE__INBOX_STATE_QUEUED;
    li.cursor = out->stored / 2;
    if (rc == CASENET_OK)
        rc = time_calls(sock, &req, &out->list_deep_p50_ms, &out->list_deep_p99_ms);
    if (sock)
        zmq_close(sock);
    zmq_ctx_term(zctx);
    if (bench_proc_sample(b->pid, &ps))
        out->rss_after_list_kb = ps.rss_kb;
    return rc;
}
