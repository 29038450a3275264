/*
 * amqp_bench.c - the RabbitMQ side of tests/bench/vs-rabbitmq.sh: publishes
 * persistent messages of SIZE bytes to a durable queue (classic or quorum)
 * with publisher confirms, keeping K unconfirmed, and measures confirmed
 * messages per second and publish->confirm latency over the measured
 * window (the warm-up's messages are not counted). One JSON object on
 * stdout. Built by the script (librabbitmq-dev), not by the project's CMake:
 *     amqp_bench HOST PORT classic|quorum INFLIGHT SECONDS WARMUP SIZE
 * The queue is declared, then deleted at the end.
 */
#define _POSIX_C_SOURCE 200809L
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSGS 4000000u

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "amqp_bench: %s\n", what);
    exit(1);
}

static void check_reply(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    fprintf(stderr, "amqp_bench: %s failed (reply type %d", what, (int)r.reply_type);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        fprintf(stderr, ": %s", amqp_error_string2(r.library_error));
    else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *c = r.reply.decoded;
        fprintf(stderr, ": %.*s", (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    }
    fprintf(stderr, ")\n");
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

int main(int argc, char **argv)
{
    if (argc != 8)
        die("usage: amqp_bench HOST PORT classic|quorum INFLIGHT SECONDS WARMUP SIZE");
    const char *host = argv[1], *type = argv[3];
    int port = atoi(argv[2]);
    size_t inflight = strtoul(argv[4], NULL, 10), size = strtoul(argv[7], NULL, 10);
    double duration = strtod(argv[5], NULL), warmup = strtod(argv[6], NULL);
    if (port <= 0 || inflight == 0 || size == 0 || duration <= 0 || warmup < 0 ||
        (strcmp(type, "classic") != 0 && strcmp(type, "quorum") != 0))
        die("bad arguments (see the header of amqp_bench.c)");

    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (!sock || amqp_socket_open(sock, host, port) != AMQP_STATUS_OK)
        die("cannot connect to RabbitMQ");
    check_reply(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                "login");
    amqp_channel_open(conn, 1);
    check_reply(amqp_get_rpc_reply(conn), "channel.open");
    amqp_confirm_select(conn, 1);
    check_reply(amqp_get_rpc_reply(conn), "confirm.select");

    char qname[64];
    snprintf(qname, sizeof qname, "bench-%s-%ld", type, (long)getpid());
    amqp_table_entry_t e = {
        .key = amqp_cstring_bytes("x-queue-type"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(type)}};
    amqp_table_t args = {.num_entries = 1, .entries = &e};
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(qname), 0, 1, 0, 0, args);
    check_reply(amqp_get_rpc_reply(conn), "queue.declare");

    char *body = malloc(size);
    double *sent = calloc(MAX_MSGS + 1, sizeof *sent);
    bool *done = calloc(MAX_MSGS + 1, sizeof *done);
    double *lat = malloc(MAX_MSGS * sizeof *lat);
    if (!body || !sent || !done || !lat)
        die("out of memory");
    memset(body, 'x', size);
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG,
        .delivery_mode = 2,
        .content_type = amqp_cstring_bytes("application/octet-stream")};
    amqp_bytes_t msg = {.len = size, .bytes = body};

    double start = mono_s(), t0 = start + warmup, t1 = t0 + duration;
    /* Delivery tags are 1, 2, ...: every tag <= low is confirmed, n_done
     * of them in all. */
    uint64_t next = 1, low = 0, n_done = 0;
    size_t n_lat = 0;
    uint64_t in_window = 0, nacks = 0;
    for (;;) {
        double now = mono_s();
        bool sending = now < t1 && next <= MAX_MSGS;
        while (sending && next - 1 - n_done < inflight) {
            sent[next] = mono_s();
            if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(qname), 0, 0,
                                   &props, msg) != AMQP_STATUS_OK)
                die("basic.publish failed");
            next++;
        }
        if (!sending && n_done + 1 >= next)
            break;
        amqp_frame_t f;
        struct timeval tv = {.tv_sec = 10};
        int rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            die("no confirm for 10 s");
        if (rc != AMQP_STATUS_OK)
            die(amqp_error_string2(rc));
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        uint64_t tag;
        bool multiple;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            const amqp_basic_ack_t *a = f.payload.method.decoded;
            tag = a->delivery_tag;
            multiple = a->multiple;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            const amqp_basic_nack_t *a = f.payload.method.decoded;
            tag = a->delivery_tag;
            multiple = a->multiple;
            nacks++;
        } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                   f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            die("the server closed the channel (see its log)");
        } else {
            continue;
        }
        double at = mono_s();
        for (uint64_t t = multiple ? low + 1 : tag; t <= tag && t < next; t++) {
            if (done[t])
                continue;
            done[t] = true;
            n_done++;
            if (sent[t] >= t0 && sent[t] < t1)
                lat[n_lat++] = (at - sent[t]) * 1e3;
            if (at >= t0 && at < t1)
                in_window++;
        }
        while (low + 1 < next && done[low + 1])
            low++;
    }
    qsort(lat, n_lat, sizeof *lat, cmp_double);
    printf("{\"queue\":\"%s\",\"inflight\":%zu,\"size\":%zu,\"msgs_per_s\":%.1f,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"confirmed\":%llu,\"nacks\":%llu}\n",
           type, inflight, size, (double)in_window / duration, percentile(lat, n_lat, 0.50),
           percentile(lat, n_lat, 0.99), (unsigned long long)(next - 1), (unsigned long long)nacks);
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(qname), 0, 0);
    (void)amqp_get_rpc_reply(conn);
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    free(body);
    free(sent);
    free(done);
    free(lat);
    return 0;
}
