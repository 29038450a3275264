/* load.c - casenet-bench's load generator (see bench.h): pre-seals a pool of
 * envelopes, then offers them from C pipelined DEALER connections (each
 * keeping up to K Submits in flight, or on a fixed global schedule) while
 * one subscribed connection per member collects the pushed notices. One
 * thread drives every socket; the CURVE work is libzmq's I/O thread. */
#include "bench.h"

#include "util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zmq.h>

#define SEAL_THREADS      2
#define DRAIN_SECONDS     10.0 /* wait for answers still in flight after the run */
#define NOTICE_GRACE_S    0.5  /* then for the last notices */
#define VERIFY_EVERY      64   /* check one receipt in this many (signature, ids) */
#define RATE_MAX_INFLIGHT 100000
#define SAMPLE_PERIOD_S   1.0
#define CALL_TIMEOUT_MS   10000
/* Runs longer than this, at a fixed rate, date each envelope for when it
 * is due: the broker refuses a created_at more than its clock skew (10 min
 * by default) away from its clock. */
#define SPREAD_AFTER_S 240.0

/* One pre-built Submit and what happened to it. */
struct msg {
    uint8_t *frame; /* the packed Request */
    size_t len;
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    double sent, receipt, notice; /* monotonic seconds; 0 = not yet */
    double issued;                /* rate mode: when it really went out (sent = as scheduled) */
    uint32_t conn;
};

struct conn {
    void *sock;
    size_t member;
    size_t next, end; /* its slice of the pool: [next, end) still to send */
    size_t inflight;
};

struct load {
    const struct bench_opts *o;
    const struct bench_net *net;
    struct msg *msgs;
    size_t n_msgs;
    /* created_at of msgs[i] (rate mode, long runs): t0 + span * its place
     * in its connection's slice; 0 = sealed with the current time */
    int64_t created_t0_ms, created_span_ms;
    struct conn *conns;
    /* message id -> index + 1 (0 = empty), open addressing */
    uint32_t *table;
    size_t table_mask;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t id_key(const uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    uint64_t k;
    memcpy(&k, id, sizeof k); /* ids are random */
    return k;
}

static void table_put(struct load *l, size_t index)
{
    size_t h = (size_t)id_key(l->msgs[index].id) & l->table_mask;
    while (l->table[h])
        h = (h + 1) & l->table_mask;
    l->table[h] = (uint32_t)(index + 1);
}

static struct msg *table_get(struct load *l, const uint8_t *id)
{
    size_t h = (size_t)id_key(id) & l->table_mask;
    while (l->table[h]) {
        struct msg *m = &l->msgs[l->table[h] - 1];
        if (memcmp(m->id, id, CASENET_MESSAGE_ID_BYTES) == 0)
            return m;
        h = (h + 1) & l->table_mask;
    }
    return NULL;
}

/* ------------------------------------------------------------ sealing */

static int referral_payload(size_t text_len, casenet_buf *out)
{
    Casenet__V1__Referral r = CASENET__V1__REFERRAL__INIT;
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    Casenet__V1__LegalBasis lb = CASENET__V1__LEGAL_BASIS__INIT;
    Casenet__V1__HarmCategory harm = CASENET__V1__HARM_CATEGORY__HARM_CATEGORY_OTHER;
    char *text = malloc(text_len + 1);
    if (!text)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < text_len; i++)
        text[i] = (char)('a' + (char)(i % 26));
    text[text_len] = '\0';
    r.summary = text;
    r.case_id = (char *)"bench";
    /* Every field a referral requires (PROTOCOL.md §6). */
    r.urgency = CASENET__V1__URGENCY__URGENCY_STANDARD;
    r.n_harm_categories = 1;
    r.harm_categories = &harm;
    lb.kind = CASENET__V1__LEGAL_BASIS_KIND__LEGAL_BASIS_KIND_STATUTORY_DUTY;
    r.legal_basis = &lb;
    p.body_case = CASENET__V1__PAYLOAD__BODY_REFERRAL;
    p.referral = &r;
    out->len = casenet__v1__payload__get_packed_size(&p);
    out->data = malloc(out->len);
    if (!out->data) {
        free(text);
        return CASENET_ENOMEM;
    }
    casenet__v1__payload__pack(&p, out->data);
    free(text);
    return CASENET_OK;
}

struct seal_job {
    struct load *l;
    const casenet_buf *payload;
    size_t from, to; /* indexes of l->msgs to fill */
    struct conn *conns;
    int rc;
};

/* Seals msgs[from, to): sender = its connection's member, recipients drawn
 * at random among the others; packs each into a Submit Request whose
 * request id is its index + 1. */
static void *seal_range(void *p)
{
    struct seal_job *j = p;
    struct load *l = j->l;
    const struct bench_net *net = l->net;
    size_t nr = l->o->recipients;
    const char **to = calloc(nr, sizeof *to);
    if (!to) {
        j->rc = CASENET_ENOMEM;
        return NULL;
    }
    j->rc = CASENET_OK;
    for (size_t i = j->from; i < j->to && j->rc == CASENET_OK; i++) {
        struct msg *m = &l->msgs[i];
        size_t sender = j->conns[m->conn].member;
        for (size_t k = 0; k < nr; k++) {
            size_t r;
            bool again;
            do {
                r = randombytes_uniform((uint32_t)net->n);
                again = r == sender;
                for (size_t q = 0; q < k && !again; q++)
                    again = strcmp(to[q], net->ids[r]) == 0;
            } while (again);
            to[k] = net->ids[r];
        }
        casenet_seal_opts so = {
            .kind = CASENET_KIND_REFERRAL, .status = CASENET_MSG_TEST, .to = to, .n_to = nr};
        if (l->created_span_ms) {
            const struct conn *c = &j->conns[m->conn];
            double frac = (double)(i - c->next) / (double)(c->end - c->next);
            so.created_at_ms = l->created_t0_ms + (int64_t)(frac * (double)l->created_span_ms);
        }
        casenet_buf env = {0};
        j->rc = casenet_seal(net->keys[sender], net->directory, &so, j->payload->data,
                             j->payload->len, &env, m->id);
        if (j->rc != CASENET_OK)
            break;
        Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
        Casenet__V1__Submit s = CASENET__V1__SUBMIT__INIT;
        s.envelope.data = env.data;
        s.envelope.len = env.len;
        req.protocol_version = 1;
        req.request_id = i + 1;
        req.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
        req.submit = &s;
        m->len = casenet__v1__request__get_packed_size(&req);
        m->frame = malloc(m->len);
        if (!m->frame)
            j->rc = CASENET_ENOMEM;
        else
            casenet__v1__request__pack(&req, m->frame);
        casenet_buf_free(&env);
    }
    free(to);
    return NULL;
}

/* The summary length that gives envelopes of about o->size bytes. */
static int calibrate(struct load *l, struct conn *conns, size_t *text_len, size_t *env_len)
{
    size_t guess = l->o->size > 600 ? l->o->size - 500 : 16;
    for (int round = 0; round < 3; round++) {
        casenet_buf payload = {0};
        int rc = referral_payload(guess, &payload);
        if (rc != CASENET_OK)
            return rc;
        struct msg saved = l->msgs[0];
        struct seal_job j = {.l = l, .payload = &payload, .from = 0, .to = 1, .conns = conns};
        seal_range(&j);
        casenet_buf_free(&payload);
        if (j.rc != CASENET_OK)
            return j.rc;
        size_t got = l->msgs[0].len;
        free(l->msgs[0].frame);
        l->msgs[0] = saved;
        *env_len = got;
        if (got == l->o->size || (got > l->o->size && guess == 16))
            break;
        long next = (long)guess + ((long)l->o->size - (long)got);
        guess = next < 16 ? 16 : (size_t)next;
    }
    *text_len = guess;
    return CASENET_OK;
}

static int seal_pool(struct load *l, struct conn *conns, size_t *env_len)
{
    size_t text_len = 0;
    double t_cal = mono_s();
    int rc = calibrate(l, conns, &text_len, env_len);
    casenet_buf payload = {0};
    if (rc != CASENET_OK || (rc = referral_payload(text_len, &payload)) != CASENET_OK)
        return rc;
    double run_s = l->o->warmup + l->o->duration;
    if (l->o->rate > 0 && run_s > SPREAD_AFTER_S) {
        /* The calibration sealed about three envelopes. */
        double seal_s = (mono_s() - t_cal) / 3.0 * (double)l->n_msgs / SEAL_THREADS;
        l->created_t0_ms = cn_now_ms() + (int64_t)((seal_s + 2.0) * 1e3);
        l->created_span_ms = (int64_t)(run_s * 1e3);
    } else if (run_s > SPREAD_AFTER_S && !l->o->json) {
        fprintf(stderr, "casenet-bench: envelopes are dated when sealed; a broker refuses them "
                        "once older than its clock skew (600 s by default)\n");
    }
    pthread_t th[SEAL_THREADS];
    struct seal_job jobs[SEAL_THREADS];
    size_t started = 0;
    for (size_t t = 0; t < SEAL_THREADS; t++) {
        jobs[t] = (struct seal_job){.l = l,
                                    .payload = &payload,
                                    .from = l->n_msgs * t / SEAL_THREADS,
                                    .to = l->n_msgs * (t + 1) / SEAL_THREADS,
                                    .conns = conns};
        if (pthread_create(&th[t], NULL, seal_range, &jobs[t]) != 0) {
            jobs[t].rc = CASENET_ENOMEM;
            break;
        }
        started++;
    }
    for (size_t t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    casenet_buf_free(&payload);
    for (size_t t = 0; t < SEAL_THREADS; t++)
        if (t >= started || jobs[t].rc != CASENET_OK)
            return t >= started ? CASENET_ENOMEM : jobs[t].rc;
    return CASENET_OK;
}

/* ------------------------------------------------------------ the run */

static bool send_frame(struct conn *c, struct msg *m)
{
    if (zmq_send(c->sock, m->frame, m->len, ZMQ_DONTWAIT) < 0)
        return false;
    c->inflight++;
    return true;
}

/* Handles one message received on a sender connection. */
static void on_reply(struct load *l, struct conn *c, const uint8_t *data, size_t len, double now,
                     struct load_result *res)
{
    Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, len, data);
    if (!r) {
        res->errors++;
        return;
    }
    if (r->request_id == 0 || r->request_id > l->n_msgs) {
        casenet__v1__response__free_unpacked(r, NULL);
        return; /* a notice or something unexpected: not ours */
    }
    struct msg *m = &l->msgs[r->request_id - 1];
    if (c->inflight)
        c->inflight--;
    if (r->error || r->body_case != CASENET__V1__RESPONSE__BODY_SUBMIT) {
        if (!res->first_error)
            res->first_error = r->error ? (int)r->error->code : -1;
        if (res->errors == 0 && r->error)
            fprintf(stderr, "casenet-bench: Submit refused: %s\n",
                    r->error->message ? r->error->message : "");
        res->errors++;
    } else if (!m->receipt) {
        m->receipt = now;
        res->receipts++;
        if (res->receipts % VERIFY_EVERY == 1) {
            casenet_submit_receipt sr;
            const ProtobufCBinaryData *b = &r->submit->receipt;
            if (casenet_submit_receipt_verify(l->net->directory, b->data, b->len, &sr) ==
                    CASENET_OK &&
                memcmp(sr.message_id, m->id, CASENET_MESSAGE_ID_BYTES) == 0)
                res->receipts_verified++;
            else
                res->receipt_verify_failures++;
        }
    }
    casenet__v1__response__free_unpacked(r, NULL);
}

static void on_notice(struct load *l, const uint8_t *data, size_t len, double now,
                      struct load_result *res)
{
    Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, len, data);
    if (!r)
        return;
    if (r->body_case == CASENET__V1__RESPONSE__BODY_NOTICE && r->notice->entry &&
        r->notice->entry->message_id.len == CASENET_MESSAGE_ID_BYTES) {
        struct msg *m = table_get(l, r->notice->entry->message_id.data);
        if (m && !m->notice) {
            m->notice = now;
            res->notices++;
        }
    }
    casenet__v1__response__free_unpacked(r, NULL);
}

/* Receives everything pending on sock; sender connections get on_reply,
 * subscriber sockets on_notice. */
static void drain_socket(struct load *l, void *sock, struct conn *c, struct load_result *res)
{
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        double now = mono_s();
        const uint8_t *data = zmq_msg_data(&m);
        size_t len = zmq_msg_size(&m);
        if (c)
            on_reply(l, c, data, len, now, res);
        else
            on_notice(l, data, len, now, res);
        zmq_msg_close(&m);
    }
}

struct series {
    char *buf;
    size_t len, cap;
};

static void series_add(struct series *s, uint64_t v)
{
    if (s->cap - s->len < 32) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        char *n = realloc(s->buf, cap);
        if (!n)
            return;
        s->buf = n;
        s->cap = cap;
    }
    s->len += (size_t)snprintf(s->buf + s->len, s->cap - s->len, "%s%llu", s->len ? "," : "",
                               (unsigned long long)v);
}

/* What the broker (and on PostgreSQL its server) had written at the
 * start of the measured window. */
struct window_at {
    struct proc_io io;
    struct pg_sample pg;
};

/* The broker's /proc io counts (and the server's WAL position and writes on
 * PostgreSQL) at one edge of the measured window (start: kept in *at; end:
 * the difference goes to res), with the wall clock. */
static void window_edge(struct bench_pg *pg, pid_t pid, bool start, struct window_at *at,
                        struct load_result *res)
{
    struct proc_io now = {0};
    struct pg_sample pnow = {0};
    bool ok = pid > 0 && bench_proc_io(pid, &now);
    bool pg_ok = pg && bench_pg_sample(pg, &pnow);
    if (start) {
        res->wall_t0_ms = cn_now_ms();
        res->have_io = ok;
        res->have_pg = pg_ok;
        res->have_pg_io = pg_ok && pnow.have_io;
        at->io = now;
        at->pg = pnow;
        return;
    }
    res->wall_t1_ms = cn_now_ms();
    res->have_io =
        res->have_io && ok && now.write_bytes >= at->io.write_bytes && now.wchar >= at->io.wchar;
    if (res->have_io) {
        res->io.write_bytes = now.write_bytes - at->io.write_bytes;
        res->io.wchar = now.wchar - at->io.wchar;
    }
    res->have_pg = res->have_pg && pg_ok && pnow.wal_lsn >= at->pg.wal_lsn;
    res->have_pg_io = res->have_pg && res->have_pg_io && pnow.have_io &&
                      pnow.write_bytes >= at->pg.write_bytes && pnow.cpu_s >= at->pg.cpu_s;
    if (res->have_pg)
        res->pg_wal_bytes = pnow.wal_lsn - at->pg.wal_lsn;
    if (res->have_pg_io) {
        res->pg_write_bytes = pnow.write_bytes - at->pg.write_bytes;
        res->pg_cpu_s = pnow.cpu_s - at->pg.cpu_s;
    }
}

/* Latency statistics of the messages sent inside [t0, t1). */
static void summarise(struct load *l, double t0, double t1, struct load_result *res)
{
    double *lat = malloc((l->n_msgs ? l->n_msgs : 1) * sizeof *lat);
    double *nlat = malloc((l->n_msgs ? l->n_msgs : 1) * sizeof *nlat);
    double *slat = malloc((l->n_msgs ? l->n_msgs : 1) * sizeof *slat);
    size_t n = 0, nn = 0, ns = 0;
    uint64_t in_window = 0;
    for (size_t i = 0; lat && nlat && slat && i < l->n_msgs; i++) {
        const struct msg *m = &l->msgs[i];
        if (m->receipt >= t0 && m->receipt < t1)
            in_window++;
        if (!m->sent || m->sent < t0 || m->sent >= t1)
            continue;
        if (m->receipt)
            lat[n++] = (m->receipt - m->sent) * 1e3;
        else
            res->late++;
        if (m->notice)
            nlat[nn++] = (m->notice - m->sent) * 1e3;
        if (m->issued)
            slat[ns++] = (m->issued - m->sent) * 1e3;
    }
    res->window_receipts = in_window;
    res->msgs_per_s = (double)in_window / (t1 - t0);
    bench_sort(lat, n);
    bench_sort(nlat, nn);
    res->p50_ms = bench_percentile(lat, n, 0.50);
    res->p99_ms = bench_percentile(lat, n, 0.99);
    res->p999_ms = bench_percentile(lat, n, 0.999);
    res->max_ms = n ? lat[n - 1] : 0;
    res->notice_p50_ms = bench_percentile(nlat, nn, 0.50);
    res->notice_p99_ms = bench_percentile(nlat, nn, 0.99);
    res->notice_p999_ms = bench_percentile(nlat, nn, 0.999);
    bench_sort(slat, ns);
    res->send_late_p50_ms = bench_percentile(slat, ns, 0.50);
    res->send_late_p99_ms = bench_percentile(slat, ns, 0.99);
    free(lat);
    free(nlat);
    free(slat);
}

static size_t pool_size(const struct bench_opts *o)
{
    if (o->pool)
        return o->pool;
    double seconds = o->duration + o->warmup;
    if (o->rate > 0)
        return (size_t)ceil(o->rate * seconds * 1.02) + 16;
    /* As fast as confirmed: 2-core machines reach a few thousand per
     * second; bounded so that sealing stays short. A run that exhausts the
     * pool reports it and measures over the time it lasted. */
    double est = 6000.0 * seconds;
    return (size_t)(est > 400000 ? 400000 : est);
}

int bench_load(const struct bench_opts *o, const struct bench_net *net, const char *endpoint,
               pid_t broker_pid, struct load_result *res)
{
    int rc = CASENET_ENOMEM;
    struct load l = {.o = o, .net = net};
    size_t nc = o->connections, nsub = net->n;
    struct conn *conns = calloc(nc, sizeof *conns);
    void **subs = calloc(nsub, sizeof *subs);
    zmq_pollitem_t *items = calloc(nc + nsub, sizeof *items);
    struct series rss = {0};
    void *zctx = zmq_ctx_new();
    memset(res, 0, sizeof *res);
    if (!conns || !subs || !items || !zctx)
        goto cleanup;
    if (o->recipients >= net->n) {
        fprintf(stderr, "casenet-bench: %zu recipients need more than %zu members\n", o->recipients,
                net->n);
        rc = CASENET_EINVAL;
        goto cleanup;
    }

    /* The pool, split evenly between the connections. */
    l.n_msgs = pool_size(o);
    if (l.n_msgs > UINT32_MAX - 1)
        l.n_msgs = UINT32_MAX - 1;
    l.msgs = calloc(l.n_msgs, sizeof *l.msgs);
    size_t tsize = 1;
    while (tsize < 2 * l.n_msgs)
        tsize <<= 1;
    l.table = calloc(tsize, sizeof *l.table);
    l.table_mask = tsize - 1;
    if (!l.msgs || !l.table)
        goto cleanup;
    for (size_t c = 0; c < nc; c++) {
        conns[c].member = c % net->n;
        conns[c].next = l.n_msgs * c / nc;
        conns[c].end = l.n_msgs * (c + 1) / nc;
        for (size_t i = conns[c].next; i < conns[c].end; i++)
            l.msgs[i].conn = (uint32_t)c;
    }
    double t = mono_s();
    if (!o->json)
        fprintf(stderr, "casenet-bench: sealing %zu envelopes...\n", l.n_msgs);
    if ((rc = seal_pool(&l, conns, &res->envelope_bytes)) != CASENET_OK) {
        fprintf(stderr, "casenet-bench: sealing failed: %s\n", casenet_strerror(rc));
        goto cleanup;
    }
    res->seal_s = mono_s() - t;
    for (size_t i = 0; i < l.n_msgs; i++)
        table_put(&l, i);

    /* Connections: subscribers first (one per member), then senders, each
     * answered once before the clock starts (CURVE handshakes done). */
    rc = CASENET_EIO;
    for (size_t i = 0; i < nsub; i++) {
        subs[i] = bench_dealer(zctx, endpoint, net->broker_curve_pk, net->keys[i]);
        if (!subs[i])
            goto cleanup;
        Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
        Casenet__V1__Subscribe s = CASENET__V1__SUBSCRIBE__INIT;
        req.request_id = UINT64_MAX - i;
        req.body_case = CASENET__V1__REQUEST__BODY_SUBSCRIBE;
        req.subscribe = &s;
        Casenet__V1__Response *r = bench_call(subs[i], &req, CALL_TIMEOUT_MS);
        bool ok = r && !r->error;
        if (r)
            casenet__v1__response__free_unpacked(r, NULL);
        if (!ok) {
            fprintf(stderr, "casenet-bench: Subscribe as %s failed\n", net->ids[i]);
            goto cleanup;
        }
    }
    for (size_t c = 0; c < nc; c++) {
        conns[c].sock =
            bench_dealer(zctx, endpoint, net->broker_curve_pk, net->keys[conns[c].member]);
        if (!conns[c].sock)
            goto cleanup;
        Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
        Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
        h.client = (char *)"casenet-bench";
        req.request_id = UINT64_MAX - c;
        req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
        req.hello = &h;
        Casenet__V1__Response *r = bench_call(conns[c].sock, &req, CALL_TIMEOUT_MS);
        bool ok = r && !r->error;
        if (r)
            casenet__v1__response__free_unpacked(r, NULL);
        if (!ok) {
            fprintf(stderr, "casenet-bench: Hello as %s failed\n", net->ids[conns[c].member]);
            goto cleanup;
        }
    }
    for (size_t c = 0; c < nc; c++)
        items[c] = (zmq_pollitem_t){.socket = conns[c].sock, .events = ZMQ_POLLIN};
    for (size_t i = 0; i < nsub; i++)
        items[nc + i] = (zmq_pollitem_t){.socket = subs[i], .events = ZMQ_POLLIN};

    struct proc_sample ps0 = {0}, ps = {0};
    bool sampling = broker_pid > 0 && bench_proc_sample(broker_pid, &ps0);
    if (sampling) {
        res->rss_start_kb = res->rss_max_kb = ps0.rss_kb;
        series_add(&rss, ps0.rss_kb);
    }

    /* The run. */
    double cpu0 = self_cpu_s();
    double start = mono_s();
    double t0 = start + o->warmup, t1 = t0 + o->duration;
    double next_sample = start + SAMPLE_PERIOD_S;
    uint64_t scheduled = 0; /* rate mode: messages due so far */
    size_t rr = 0;          /* rate mode: next connection */
    bool sending = true;
    int window = 0; /* 0: before the measured window, 1: in it, 2: after it */
    double drain_until = 0;
    struct window_at at0 = {0};
    for (;;) {
        double now = mono_s();
        if (window == 0 && now >= t0) {
            window = 1;
            window_edge(o->pg, broker_pid, true, &at0, res);
        }
        if (sending && now >= t1) {
            sending = false;
            drain_until = now + DRAIN_SECONDS;
            if (window == 1)
                window_edge(o->pg, broker_pid, false, &at0, res);
            window = 2;
        }
        if (sending) {
            if (o->rate > 0) {
                uint64_t due = (uint64_t)((now - start) * o->rate) + 1;
                while (scheduled < due) {
                    struct conn *c = NULL;
                    for (size_t k = 0; k < nc && !c; k++) {
                        struct conn *x = &conns[(rr + k) % nc];
                        if (x->next < x->end && x->inflight < RATE_MAX_INFLIGHT)
                            c = x;
                    }
                    if (!c) {
                        res->pool_exhausted = true;
                        break;
                    }
                    rr = (size_t)(c - conns) + 1;
                    struct msg *m = &l.msgs[c->next];
                    if (!send_frame(c, m))
                        break;
                    m->sent = start + (double)scheduled / o->rate; /* as scheduled */
                    m->issued = mono_s();
                    c->next++;
                    scheduled++;
                    res->sent++;
                }
            } else {
                bool any = false;
                for (size_t k = 0; k < nc; k++) {
                    struct conn *c = &conns[k];
                    while (c->inflight < o->inflight && c->next < c->end) {
                        struct msg *m = &l.msgs[c->next];
                        if (!send_frame(c, m))
                            break;
                        m->sent = mono_s();
                        c->next++;
                        res->sent++;
                    }
                    any |= c->next < c->end;
                }
                if (!any && !res->pool_exhausted) {
                    res->pool_exhausted = true;
                    t1 = mono_s();
                    if (t1 < t0)
                        t0 = start;
                    if (window == 1) /* else unmeasured: the pool ran out in the warm-up */
                        window_edge(o->pg, broker_pid, false, &at0, res);
                    window = 2;
                }
            }
        }
        size_t inflight = 0;
        for (size_t k = 0; k < nc; k++)
            inflight += conns[k].inflight;
        if (!sending && (inflight == 0 || now >= drain_until))
            break;
        if (sending && res->pool_exhausted && o->rate <= 0 && inflight == 0)
            break;
        /* Wait for answers, or until the next scheduled send. */
        double wake = sending ? t1 : drain_until;
        if (sending && o->rate > 0) {
            double due = start + (double)scheduled / o->rate;
            if (due < wake)
                wake = due;
        }
        if (next_sample < wake)
            wake = next_sample;
        long timeout_ms = (long)ceil((wake - mono_s()) * 1e3);
        if (timeout_ms < 0)
            timeout_ms = 0;
        if (zmq_poll(items, (int)(nc + nsub), timeout_ms) < 0 && errno != EINTR) {
            fprintf(stderr, "casenet-bench: zmq_poll: %s\n", zmq_strerror(errno));
            goto cleanup;
        }
        for (size_t k = 0; k < nc + nsub; k++) {
            if (items[k].revents & ZMQ_POLLIN)
                drain_socket(&l, items[k].socket, k < nc ? &conns[k] : NULL, res);
        }
        now = mono_s();
        if (now >= next_sample) {
            next_sample += SAMPLE_PERIOD_S;
            if (sampling && bench_proc_sample(broker_pid, &ps)) {
                if (ps.rss_kb > res->rss_max_kb)
                    res->rss_max_kb = ps.rss_kb;
                series_add(&rss, ps.rss_kb);
            }
        }
    }
    /* The last notices. */
    double grace = mono_s() + NOTICE_GRACE_S;
    while (mono_s() < grace) {
        if (zmq_poll(items + nc, (int)nsub, 50) > 0)
            for (size_t i = 0; i < nsub; i++)
                if (items[nc + i].revents & ZMQ_POLLIN)
                    drain_socket(&l, subs[i], NULL, res);
    }
    if (sampling && bench_proc_sample(broker_pid, &ps)) {
        res->rss_end_kb = ps.rss_kb;
        if (ps.rss_kb > res->rss_max_kb)
            res->rss_max_kb = ps.rss_kb;
        res->broker_cpu_s = ps.cpu_s - ps0.cpu_s;
        res->broker_loop_cpu_s = ps.loop_cpu_s - ps0.loop_cpu_s;
    }
    res->bench_cpu_s = self_cpu_s() - cpu0;
    res->elapsed_s = t1 - t0;
    res->offered_per_s = o->rate;
    summarise(&l, t0, t1, res);
    if (rss.buf) {
        res->rss_series = rss.buf;
        rss.buf = NULL;
    }
    rc = CASENET_OK;
cleanup:
    for (size_t c = 0; conns && c < nc; c++)
        if (conns[c].sock)
            zmq_close(conns[c].sock);
    for (size_t i = 0; subs && i < nsub; i++)
        if (subs[i])
            zmq_close(subs[i]);
    if (zctx)
        zmq_ctx_term(zctx);
    for (size_t i = 0; l.msgs && i < l.n_msgs; i++)
        free(l.msgs[i].frame);
    free(l.msgs);
    free(l.table);
    free(conns);
    free(subs);
    free(items);
    free(rss.buf);
    return rc;
}
