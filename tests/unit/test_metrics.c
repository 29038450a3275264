/* test_metrics.c - the broker's metrics (broker/metrics.c, metrics_render.c)
 * and the admin address check (broker/admin.c): counters reach the snapshot
 * the admin thread reads, a reader racing the loop always sees a whole
 * snapshot, the text is exposition format 0.0.4 (cumulative buckets ending
 * in +Inf, escaped label values), /healthz fails on a stalled loop and
 * /readyz names each failing check; only loopback admin addresses pass;
 * the blob counters, and the blob gauges only once a sweep pass ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "admin.h"
#include "casenet.pb-c.h"
#include "metrics.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SUBMIT CASENET__V1__REQUEST__BODY_SUBMIT

static void counters_reach_snapshot(void **state)
{
    (void)state;
    struct metrics_hot hot;
    struct metrics_slow slow;
    assert_int_equal(metrics_init(), CASENET_OK);
    metrics_request_begin(metrics_now_us());
    for (int i = 0; i < 3; i++)
        metrics_request(SUBMIT, CASENET_OK);
    metrics_request(SUBMIT, CASENET_ERATELIMIT);
    metrics_rate_limited();
    metrics_auth_denied();
    metrics_escalated_if(true);
    metrics_escalated_if(false);
    metrics_commit_begin();
    metrics_batch_done(true, 4);
    metrics_read(&hot, &slow);
    assert_int_equal(hot.batches, 0); /* not published yet */
    metrics_publish();
    metrics_read(&hot, &slow);
    assert_int_equal(hot.requests[SUBMIT][CASENET_OK], 3);
    assert_int_equal(hot.requests[SUBMIT][CASENET_ERATELIMIT], 1);
    assert_int_equal(hot.rate_limited, 2);
    assert_int_equal(hot.auth_denied, 1);
    assert_int_equal(hot.escalations, 1);
    assert_int_equal(hot.batches, 1);
    assert_int_equal(hot.hist[METRICS_H_LATENCY].count, 3);
    assert_int_equal(hot.hist[METRICS_H_BATCH].count, 1);
    assert_false(slow.valid);
    char *text = metrics_render(&hot, &slow, cn_now_ms());
    assert_non_null(text);
    assert_non_null(strstr(text, "casenet_requests_total{type=\"submit\",code=\"OK\"} 3\n"));
    assert_non_null(
        strstr(text, "casenet_requests_total{type=\"submit\",code=\"RATE_LIMITED\"} 1\n"));
    assert_non_null(strstr(text, "# TYPE casenet_batch_size histogram\n"));
    assert_non_null(strstr(text, "casenet_batch_size_bucket{le=\"4\"} 1\n"));
    assert_non_null(strstr(text, "casenet_batch_size_bucket{le=\"2\"} 0\n"));
    assert_non_null(strstr(text, "casenet_batch_size_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(text, "casenet_batch_size_count 1\n"));
    free(text);
    metrics_shutdown();
}

static void blob_figures(void **state)
{
    (void)state;
    struct metrics_hot hot;
    struct metrics_slow slow;
    assert_int_equal(metrics_init(), CASENET_OK);
    metrics_blob_chunk_uploaded(1000);
    metrics_blob_chunk_uploaded(17);
    metrics_blob_chunk_downloaded(1000);
    metrics_blob_quota_refused();
    metrics_blobs_deleted(2);
    metrics_publish();
    metrics_read(&hot, &slow);
    char *text = metrics_render(&hot, &slow, cn_now_ms());
    assert_non_null(text);
    assert_non_null(strstr(text, "\ncasenet_blob_chunks_uploaded_total 2\n"));
    assert_non_null(strstr(text, "\ncasenet_blob_uploaded_bytes_total 1017\n"));
    assert_non_null(strstr(text, "\ncasenet_blob_chunks_downloaded_total 1\n"));
    assert_non_null(strstr(text, "\ncasenet_blob_downloaded_bytes_total 1000\n"));
    assert_non_null(strstr(text, "\ncasenet_blob_quota_refusals_total 1\n"));
    assert_non_null(strstr(text, "\ncasenet_blobs_deleted_total 2\n"));
    assert_null(strstr(text, "casenet_blobs_stored")); /* no pass ended yet */
    free(text);
    metrics_blobs_stored(3, 3000);
    metrics_publish();
    metrics_read(&hot, &slow);
    text = metrics_render(&hot, &slow, cn_now_ms());
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE casenet_blobs_stored gauge\ncasenet_blobs_stored 3\n"));
    assert_non_null(strstr(text, "\ncasenet_blob_stored_bytes 3000\n"));
    free(text);
    metrics_shutdown();
}

static atomic_bool stop_writer;

static void *writer(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_writer)) {
        metrics_rate_limited();
        metrics_batch_done(true, 1); /* batches == rate_limited in every snapshot */
        metrics_publish();
    }
    return NULL;
}

static void reader_sees_whole_snapshots(void **state)
{
    (void)state;
    assert_int_equal(metrics_init(), CASENET_OK);
    atomic_store(&stop_writer, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer, NULL), 0);
    uint64_t last = 0;
    for (int i = 0; i < 200000; i++) {
        struct metrics_hot hot;
        struct metrics_slow slow;
        metrics_read(&hot, &slow);
        assert_int_equal(hot.batches, hot.rate_limited);
        assert_true(hot.batches >= last); /* never an older snapshot */
        last = hot.batches;
    }
    atomic_store(&stop_writer, true);
    pthread_join(t, NULL);
    metrics_shutdown();
}

static void labels_escaped(void **state)
{
    (void)state;
    struct metrics_hot hot = {.store_ok = true};
    struct metrics_member m[1] = {{.id = "a\"b\\c\nd", .backlog = 5, .connections = 2}};
    struct metrics_slow slow = {.valid = true, .members = m, .n_members = 1};
    int64_t now = cn_now_ms();
    slow.refreshed_ms = now;
    slow.dir_expires_ms = now + 3600 * 1000;
    char *text = metrics_render(&hot, &slow, now);
    assert_non_null(text);
    assert_non_null(
        strstr(text, "casenet_member_inbox_backlog_messages{member=\"a\\\"b\\\\c\\nd\"} 5\n"));
    assert_non_null(strstr(text, "casenet_member_connections{member=\"a\\\"b\\\\c\\nd\"} 2\n"));
    assert_non_null(strstr(text, "casenet_directory_expiry_seconds 3600\n"));
    free(text);
}

static void health_and_readiness(void **state)
{
    (void)state;
    bool ok = true;
    int64_t now = cn_now_ms(), mono = cn_mono_ms();
    struct metrics_hot hot = {.store_ok = true, .turned_mono_ms = mono};
    char *body = metrics_health(&hot, mono + 500, &ok);
    assert_true(ok);
    free(body);
    body = metrics_health(&hot, mono + METRICS_HEALTH_STALL_MS + 1, &ok);
    assert_false(ok);
    assert_non_null(strstr(body, "\"failing\""));
    free(body);

    struct metrics_slow slow = {.valid = true, .free_bytes = 10u << 30, .reserve_bytes = 64u << 20};
    slow.dir_expires_ms = now + 2 * METRICS_READY_DIR_MS;
    body = metrics_ready(&hot, &slow, now, &ok);
    assert_true(ok);
    assert_string_equal(body, "{\"failing\":[],\"status\":\"ok\"}\n");
    free(body);
    slow.dir_expires_ms = now + 3600 * 1000;
    slow.free_bytes = slow.reserve_bytes - 1;
    hot.store_ok = false;
    body = metrics_ready(&hot, &slow, now, &ok);
    assert_false(ok);
    assert_non_null(strstr(body, "\"check\":\"directory\""));
    assert_non_null(strstr(body, "\"check\":\"disk\""));
    assert_non_null(strstr(body, "\"check\":\"store\""));
    free(body);
}

static void admin_addresses(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    char err[400];
    assert_int_equal(admin_parse("127.0.0.1:9740", &ss, err, sizeof err), 0);
    assert_int_equal(admin_parse("127.0.0.2:9740", &ss, err, sizeof err), 0);
    assert_int_equal(admin_parse("[::1]:9740", &ss, err, sizeof err), 0);
    assert_int_equal(admin_parse("localhost:9740", &ss, err, sizeof err), 0);
    assert_int_equal(admin_parse("0.0.0.0:9740", &ss, err, sizeof err), -1);
    assert_non_null(strstr(err, "TLS is not configured"));
    assert_int_equal(admin_parse("[::]:9740", &ss, err, sizeof err), -1);
    assert_int_equal(admin_parse("10.1.2.3:9740", &ss, err, sizeof err), -1);
    assert_int_equal(admin_parse("127.0.0.1", &ss, err, sizeof err), -1);
    assert_non_null(strstr(err, "HOST:PORT"));
    assert_int_equal(admin_parse("127.0.0.1:0", &ss, err, sizeof err), -1);
    assert_int_equal(admin_parse("127.0.0.1:70000", &ss, err, sizeof err), -1);
    assert_int_equal(admin_parse(":9740", &ss, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_reach_snapshot), cmocka_unit_test(reader_sees_whole_snapshots),
        cmocka_unit_test(labels_escaped),          cmocka_unit_test(health_and_readiness),
        cmocka_unit_test(admin_addresses),         cmocka_unit_test(blob_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
