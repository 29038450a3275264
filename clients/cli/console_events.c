/* console_events.c - the console's notice thread: its own broker connection
 * (a casenet_client is not thread safe, and waiting for notices blocks),
 * subscribed to push notices, reconnecting after a drop; each notice becomes
 * an event of metadata only (never content) for the pages' SSE streams. */
#include "console.h"

#include "cli.h"
#include "console_bank.h"
#include "console_coord.h"
#include "util.h"

#include <jansson.h>
#include <string.h>

void console_events_push(struct console *c, const char *json)
{
    pthread_mutex_lock(&c->ev_lock);
    struct console_event *e = &c->events[c->ev_count % CONSOLE_EVENTS];
    e->n = ++c->ev_count;
    snprintf(e->json, sizeof e->json, "%s", json);
    pthread_cond_broadcast(&c->ev_cond);
    pthread_mutex_unlock(&c->ev_lock);
}

static void push_broker_state(struct console *c, bool up)
{
    pthread_mutex_lock(&c->ev_lock);
    bool changed = c->broker_up != up;
    c->broker_up = up;
    pthread_mutex_unlock(&c->ev_lock);
    if (changed)
        console_events_push(c, up ? "{\"type\":\"broker\",\"up\":true}"
                                  : "{\"type\":\"broker\",\"up\":false}");
}

static void push_entry(struct console *c, const casenet_inbox_entry *e)
{
    char id[33], reply[33];
    cli_id16_hex(e->message_id, id);
    cli_id16_hex(e->in_reply_to, reply);
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:s?}", "type", "inbox", "id", id,
                  "seq", (json_int_t)e->seq, "from", e->sender, "kind", casenet_kind_name(e->kind),
                  "urgency", e->urgency ? casenet_urgency_name(e->urgency) : "standard", "state",
                  casenet_inbox_state_name(e->state), "received_at", (json_int_t)e->received_at_ms,
                  "in_reply_to", e->has_in_reply_to ? reply : NULL);
    if (o && e->kind == CASENET_KIND_RECEIPT)
        json_object_set_new(o, "receipt_status",
                            json_string(casenet_receipt_status_name(e->receipt_status)));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s && strlen(s) < sizeof c->events[0].json)
        console_events_push(c, s);
    free(s);
    json_decref(o);
}

/* Sleeps up to ms, waking early when the console stops. */
static void nap(struct console *c, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->ev_lock);
    if (!c->stopping)
        pthread_cond_timedwait(&c->ev_cond, &c->ev_lock, &ts);
    pthread_mutex_unlock(&c->ev_lock);
}

#define DIRECTORY_EVERY_MS (10 * 60 * 1000)

/* Takes the broker's directory when it differs from the home's:
 * home_store_directory verifies it (pinned key, expiry, no rollback) and
 * stores it; both connections then use it. Failures are reported on stderr
 * and leave the current directory. Only this thread writes home->dir. */
static void refresh_directory(struct console *c, casenet_client *cl)
{
    casenet_buf b = {0};
    if (casenet_client_get_directory(cl, &b) != CASENET_OK)
        return;
    size_t cur_len = 0;
    const uint8_t *cur = casenet_directory_bytes(c->home->dir, &cur_len);
    if (cur_len != b.len || memcmp(cur, b.data, b.len) != 0) {
        pthread_rwlock_wrlock(&c->dir_lock);
        if (home_store_directory(c->home, b.data, b.len, NULL) == CLI_OK) {
            /* the old directory is freed: both clients borrow the new one */
            casenet_client_set_directory(cl, c->home->dir);
            pthread_mutex_lock(&c->net_lock);
            if (c->client)
                casenet_client_set_directory(c->client, c->home->dir);
            pthread_mutex_unlock(&c->net_lock);
            fprintf(stderr, "console: directory updated to version %llu\n",
                    (unsigned long long)casenet_directory_version(c->home->dir));
        }
        pthread_rwlock_unlock(&c->dir_lock);
    }
    casenet_buf_free(&b);
}

static void *events_main(void *arg)
{
    struct console *c = arg;
    casenet_client *cl = NULL;
    uint64_t drops = 0;
    int64_t dir_checked = 0;
    while (!c->stopping) {
        if (!cl) {
            casenet_client_opts o = {
                .endpoint = c->broker,
                .timeout_ms = 5000,
                .client_name = "casenet-console/" CASENET_VERSION,
            };
            if (casenet_client_connect(c->home->keys, c->home->dir, &o, &cl) != CASENET_OK ||
                casenet_client_subscribe(cl) != CASENET_OK) {
                casenet_client_free(cl);
                cl = NULL;
                push_broker_state(c, false);
                nap(c, 2000);
                continue;
            }
            drops = casenet_client_disconnects(cl);
            push_broker_state(c, true);
            refresh_directory(c, cl);
            dir_checked = cn_mono_ms();
            console_bank_notice(c, cl, NULL); /* hash shares that came while away */
        }
        if (cn_mono_ms() - dir_checked > DIRECTORY_EVERY_MS) {
            refresh_directory(c, cl);
            dir_checked = cn_mono_ms();
        }
        casenet_inbox_entry e = {0};
        int rc = casenet_client_wait_notice(cl, 1000, &e);
        if (rc == CASENET_OK)
            push_entry(c, &e);
        if (rc == CASENET_OK)
            console_bank_notice(c, cl, &e);
        casenet_inbox_entry_clear(&e);
        if (rc == CASENET_OK || rc == CASENET_ETIMEDOUT)
            console_coord_tick(c, cl);
        uint64_t now_drops = casenet_client_disconnects(cl);
        if (now_drops != drops) {
            /* notices are not resent after a reconnect: the pages reload */
            drops = now_drops;
            console_events_push(c, "{\"type\":\"resync\"}");
            console_bank_notice(c, cl, NULL);
        }
        if (rc != CASENET_OK && rc != CASENET_ETIMEDOUT) {
            casenet_client_free(cl);
            cl = NULL;
            push_broker_state(c, false);
            nap(c, 1000);
        }
    }
    casenet_client_free(cl);
    return NULL;
}

int console_events_start(struct console *c)
{
    return pthread_create(&c->ev_thread, NULL, events_main, c) == 0 ? CASENET_OK : CASENET_ENOMEM;
}

void console_events_stop(struct console *c)
{
    pthread_mutex_lock(&c->ev_lock);
    c->stopping = 1;
    pthread_cond_broadcast(&c->ev_cond);
    pthread_mutex_unlock(&c->ev_lock);
    pthread_join(c->ev_thread, NULL);
}
