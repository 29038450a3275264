/* metrics_render.c - snapshots as Prometheus text and health/readiness JSON (see metrics.h). */
#include "metrics.h"

#include "casenet.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const urgency_names[METRICS_URGENCIES] = {"unspecified", "emergency",
                                                             "urgent_takedown", "standard", "info"};

/* Writes v as a label value: backslash, double quote and newline escaped
 * (exposition format 0.0.4). */
static void label_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
    family(f, name, "gauge", help);
    fprintf(f, "%s %.17g\n", name, v);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
    family(f, name, "counter", help);
    fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

/* A request type's name: its field in casenet.v1.Request. */
static const char *kind_name(size_t k)
{
    const ProtobufCFieldDescriptor *fd =
        k ? protobuf_c_message_descriptor_get_field(&casenet__v1__request__descriptor, (unsigned)k)
          : NULL;
    return fd ? fd->name : "unknown";
}

static void histogram(FILE *f, const char *name, const char *help, const struct metrics_hot *hot,
                      enum metrics_hist_id id)
{
    size_t n;
    const double *bounds = metrics_hist_bounds(id, &n);
    const struct metrics_hist *h = &hot->hist[id];
    family(f, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += h->bucket[i];
        fprintf(f, "%s_bucket{le=\"%.17g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n%s_count %llu\n", name,
            (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
}

static void render_blobs(FILE *f, const struct metrics_hot *h)
{
    counter(f, "casenet_blob_chunks_uploaded_total",
            "Attachment chunks stored by BlobPut (a chunk sent again is not counted).",
            h->blob_chunks_up);
    counter(f, "casenet_blob_uploaded_bytes_total", "Bytes of the chunks stored by BlobPut.",
            h->blob_bytes_up);
    counter(f, "casenet_blob_chunks_downloaded_total", "Attachment chunks sent by BlobGet.",
            h->blob_chunks_down);
    counter(f, "casenet_blob_downloaded_bytes_total", "Bytes of the chunks sent by BlobGet.",
            h->blob_bytes_down);
    counter(f, "casenet_blob_quota_refusals_total",
            "BlobPuts refused QUOTA_EXCEEDED (a member's blob_quota).", h->blob_quota_refused);
    counter(f, "casenet_blobs_deleted_total",
            "Blobs the sweeps deleted (finished, or unreferenced and stale).", h->blobs_deleted);
    if (!h->blobs_valid)
        return;
    gauge(f, "casenet_blobs_stored", "Blobs held, complete or not, as of the last sweep pass.",
          (double)h->blobs_stored);
    gauge(f, "casenet_blob_stored_bytes",
          "Total size of the blobs held (as their uploads declared), as of the last sweep pass.",
          (double)h->blob_bytes_stored);
}

static void render_hot(FILE *f, const struct metrics_hot *h)
{
    family(f, "casenet_requests_total", "counter",
           "Requests handled, by type (Request field) and wire result code.");
    for (size_t k = 0; k < METRICS_KINDS; k++)
        for (size_t c = 0; c < METRICS_CODES; c++)
            if (h->requests[k][c])
                fprintf(f, "casenet_requests_total{type=\"%s\",code=\"%s\"} %llu\n", kind_name(k),
                        casenet_errname((int)c), (unsigned long long)h->requests[k][c]);
    counter(f, "casenet_rate_limited_total",
            "Requests answered RATE_LIMITED (by a handler or on receipt).", h->rate_limited);
    counter(f, "casenet_auth_denied_total", "CURVE handshakes refused by the ZAP handler.",
            h->auth_denied);
    counter(f, "casenet_escalations_sent_total", "Escalation notices sealed and queued.",
            h->escalations);
    counter(f, "casenet_batches_total", "Batches handled (one transaction each).", h->batches);
    counter(f, "casenet_batches_failed_total",
            "Batches rolled back, every request answered UNAVAILABLE.", h->batches_failed);
    histogram(f, "casenet_submit_commit_latency_seconds",
              "Time from receiving an accepted Submit to the commit that stored it.", h,
              METRICS_H_LATENCY);
    histogram(f, "casenet_batch_size", "Requests handled per batch.", h, METRICS_H_BATCH);
    histogram(f, "casenet_commit_duration_seconds", "Time each batch's commit took.", h,
              METRICS_H_COMMIT);
    histogram(f, "casenet_checkpoint_duration_seconds",
              "Time each WAL checkpoint the loop ran took.", h, METRICS_H_CHECKPOINT);
    gauge(f, "casenet_store_ok", "1 when the last commit succeeded, else 0.", h->store_ok);
    render_blobs(f, h);
}

static void render_members(FILE *f, const struct metrics_slow *s, const char *name,
                           const char *help, bool backlog)
{
    family(f, name, "gauge", help);
    for (size_t i = 0; i < s->n_members; i++) {
        fprintf(f, "%s{member=\"", name);
        label_value(f, s->members[i].id);
        fprintf(f, "\"} %llu\n",
                (unsigned long long)(backlog ? s->members[i].backlog : s->members[i].connections));
    }
}

static void render_slow(FILE *f, const struct metrics_slow *s, int64_t now_ms)
{
    gauge(f, "casenet_database_size_bytes", "Size of the database file.", (double)s->db_bytes);
    gauge(f, "casenet_wal_size_bytes", "Size of the write-ahead log file.", (double)s->wal_bytes);
    if (s->free_bytes != UINT64_MAX)
        gauge(f, "casenet_disk_free_bytes",
              "Space available to the broker on the data directory's file system.",
              (double)s->free_bytes);
    gauge(f, "casenet_disk_reserve_bytes",
          "Free space below which Submits are refused (min_free_mb).", (double)s->reserve_bytes);
    gauge(f, "casenet_inbox_backlog_messages", "Queued (never fetched) message rows, all inboxes.",
          (double)s->backlog_total);
    render_members(f, s, "casenet_member_inbox_backlog_messages",
                   "Queued (never fetched) message rows in each directory member's inbox.", true);
    render_members(f, s, "casenet_member_connections", "Open connections of each directory member.",
                   false);
    family(f, "casenet_overdue_deadlines", "gauge",
           "Breached deliver/accept deadlines whose message is still not taken, by urgency.");
    for (size_t u = 0; u < METRICS_URGENCIES; u++)
        fprintf(f, "casenet_overdue_deadlines{urgency=\"%s\"} %llu\n", urgency_names[u],
                (unsigned long long)s->overdue[u]);
    gauge(f, "casenet_overdue_deadlines_truncated",
          "1 when more overdue deadlines exist than were counted.", s->overdue_truncated);
    gauge(f, "casenet_directory_version", "Version of the directory in force.",
          (double)s->dir_version);
    gauge(f, "casenet_directory_expiry_seconds",
          "Seconds until the directory in force expires (negative: expired).",
          (double)(s->dir_expires_ms - now_ms) / 1000.0);
    gauge(f, "casenet_audit_tree_size", "Events in the audit log.", (double)s->tree_size);
    if (s->head_time_ms)
        gauge(f, "casenet_audit_head_age_seconds", "Seconds since the last signed tree head.",
              (double)(now_ms - s->head_time_ms) / 1000.0);
    gauge(f, "casenet_metrics_refresh_age_seconds",
          "Seconds since the loop refreshed the store-based figures.",
          (double)(now_ms - s->refreshed_ms) / 1000.0);
}

char *metrics_render(const struct metrics_hot *hot, const struct metrics_slow *slow, int64_t now_ms)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    render_hot(f, hot);
    if (slow->valid)
        render_slow(f, slow, now_ms);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *metrics_health(const struct metrics_hot *hot, int64_t now_mono_ms, bool *ok)
{
    char *out = NULL;
    int64_t age = now_mono_ms - hot->turned_mono_ms;
    *ok = age <= METRICS_HEALTH_STALL_MS;
    if (asprintf(&out, "{\"status\":\"%s\",\"loop_age_ms\":%lld,\"loop_stall_limit_ms\":%d%s}\n",
                 *ok ? "ok" : "fail", (long long)age, METRICS_HEALTH_STALL_MS,
                 *ok ? ""
                     : ",\"failing\":[\"loop: the event loop has not turned; see the log, "
                       "restart casenetd\"]") < 0)
        return NULL;
    return out;
}

/* Appends one failing check to the JSON array in f. */
static void failing(FILE *f, bool *first, const char *check, const char *detail)
{
    fprintf(f, "%s{\"check\":\"%s\",\"detail\":\"%s\"}", *first ? "" : ",", check, detail);
    *first = false;
}

char *metrics_ready(const struct metrics_hot *hot, const struct metrics_slow *slow, int64_t now_ms,
                    bool *ok)
{
    char *buf = NULL, detail[200];
    size_t len = 0;
    bool first = true;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fputs("{\"failing\":[", f);
    if (!hot->store_ok)
        failing(f, &first, "store", "the last commit failed; see the log (disk full or I/O error)");
    if (!slow->valid) {
        failing(f, &first, "starting", "the first figures are not read yet; retry in a moment");
    } else {
        int64_t left = slow->dir_expires_ms - now_ms;
        if (left <= METRICS_READY_DIR_MS) {
            snprintf(detail, sizeof detail,
                     "version %llu expires in %lld s; have the authority publish a new directory",
                     (unsigned long long)slow->dir_version, (long long)(left / 1000));
            failing(f, &first, "directory", detail);
        }
        if (slow->free_bytes != UINT64_MAX && slow->reserve_bytes &&
            slow->free_bytes <= slow->reserve_bytes) {
            snprintf(detail, sizeof detail,
                     "%llu bytes free, reserve %llu: Submits are refused; free disk space",
                     (unsigned long long)slow->free_bytes, (unsigned long long)slow->reserve_bytes);
            failing(f, &first, "disk", detail);
        }
    }
    *ok = first;
    fprintf(f, "],\"status\":\"%s\"}\n", *ok ? "ok" : "fail");
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
