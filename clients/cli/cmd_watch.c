/* cmd_watch.c - `casenet watch`, the unattended agent of one member: it
 * subscribes to the broker's push notices, lists its inbox after every
 * (re)connect and periodically (pushes are hints, not a delivery channel),
 * fetches, verifies and decrypts each message, hands it to the agency (a
 * spool file and/or a command) and only then sends a signed `delivered`
 * receipt. The journal in the home (watch.h) makes each hand-over happen
 * once across crashes of watch or of the broker. */
#include "cli.h"
#include "cmd_hashes.h"
#include "commands.h"
#include "home.h"
#include "log.h"
#include "util.h"
#include "watch.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WATCH_PAGE              100
#define WATCH_NOTICE_SLICE_MS   250 /* how often a waiting watch looks at its stop flag */
#define WATCH_BACKOFF_MIN_MS    500
#define WATCH_BACKOFF_MAX_MS    30000
#define WATCH_RETRY_MIN_MS      1000   /* a failed hand-over: first retry */
#define WATCH_RETRY_MAX_MS      300000 /* ... doubling up to five minutes */
#define WATCH_DIR_REFRESH_MS    300000 /* pull the broker's directory this often */
#define WATCH_DEFAULT_RESCAN_S  30
#define WATCH_DEFAULT_EXEC_S    600
#define WATCH_DEFAULT_TIMEOUT_S 10
#define WATCH_ENVELOPE_MAX      (CASENET_MAX_PAYLOAD_BYTES + 1024u * 1024u)

static const char watch_usage[] =
    "usage: casenet watch (--spool DIR | --exec CMD | both) [--once] [--home DIR]\n"
    "                     [--broker ENDPOINT] [--timeout SECONDS] [--rescan SECONDS]\n"
    "                     [--exec-timeout SECONDS]\n"
    "\n"
    "Runs unattended for one member: waits for the broker's push notices (and\n"
    "lists the inbox after every reconnect and every --rescan seconds, since\n"
    "pushes can be missed), fetches each new message, verifies and decrypts it,\n"
    "hands it to the agency and only then sends a signed 'delivered' receipt.\n"
    "Forwarded receipts and broker notices (escalation, dead-letter) are handed\n"
    "over too; a forwarded receipt gets no receipt back.\n"
    "A hash-share is applied to the member's hash bank (casenet hashes) and\n"
    "handed over too.\n"
    "\n"
    "What is handed over is one JSON object per message:\n"
    "  {\"message\": {\"id\", \"seq\", \"from\", \"kind\", \"urgency\", \"status\",\n"
    "               \"created_at\", \"received_at\", \"expires_at\", \"case\",\n"
    "               \"in_reply_to\", \"recipients\", \"envelope_hash\"},\n"
    "   \"payload\": {...the decrypted payload...}}\n"
    "and for a forwarded receipt \"receipt\": {\"message_id\", \"envelope_hash\",\n"
    "\"sender\", \"recipient\", \"status\", \"reason\", \"outcome\" (a code), \"note\" (the id\n"
    "of the signer's encrypted STATUS note, or null), \"signed_at\"} (its signature\n"
    "verified) instead of \"payload\".\n"
    "\n"
    "When the agency has taken a message:\n"
    "  --spool only   the file DIR/<id>.json is in place: written as\n"
    "                 DIR/.<id>.json.tmp, fsynced, renamed, directory fsynced.\n"
    "                 Take *.json files only; each appears once, even if watch\n"
    "                 is killed midway.\n"
    "  --exec only    CMD (run by /bin/sh with the JSON on stdin) exited 0.\n"
    "  both           the spool file is in place AND CMD exited 0 (CMD runs\n"
    "                 after the file is in place; CASENET_SPOOL_FILE names it).\n"
    "CMD also gets CASENET_MESSAGE_ID, CASENET_MESSAGE_KIND, CASENET_MESSAGE_FROM.\n"
    "Attachments are saved first, each checked against the signed manifest, into\n"
    "DIR/<id>.attachments/ (without --spool: HOME/attachments/<id>/); CMD then gets\n"
    "CASENET_ATTACHMENT_DIR and CASENET_ATTACHMENTS (their paths, one per line).\n"
    "A CMD that fails (non-zero exit, killed, or over --exec-timeout) has not\n"
    "taken the message: no receipt; it is retried after 1 s, 2 s, 4 s ... up to\n"
    "5 min. If watch itself is killed while CMD runs, CMD runs again for that\n"
    "message on restart (nobody can know whether it finished): make it\n"
    "idempotent by CASENET_MESSAGE_ID. Once taken, a message is never handed\n"
    "over again; its receipt is sent, after a restart if need be.\n"
    "\n"
    "The journal HOME/watch.db remembers every message by id; one watch runs per\n"
    "home (HOME/watch.lock). One key=value log line per message on stderr.\n"
    "SIGTERM or SIGINT: finish the message in hand (hand-over and receipt), exit\n"
    "0; a second signal exits at once.\n"
    "\n"
    "options:\n"
    "  -s, --spool DIR          hand over as files in DIR (created if missing)\n"
    "  -x, --exec CMD           hand over by running CMD with the JSON on stdin\n"
    "  -1, --once               catch up, hand over everything pending, exit:\n"
    "                           0 all done, 1 a hand-over failed, 3 a message did\n"
    "                           not verify, 6 broker unreachable (for cron, tests)\n"
    "  -H, --home DIR           the member home\n"
    "  -b, --broker ENDPOINT    override the home's broker endpoint\n"
    "  -t, --timeout SECONDS    per broker request, including retries (default 10)\n"
    "  -r, --rescan SECONDS     list the inbox this often as a safety net\n"
    "                           (default 30)\n"
    "  -e, --exec-timeout SECONDS  kill CMD after this long (default 600)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  casenet watch --home /var/lib/casenet/vn.police.a05 \\\n"
    "      --spool /var/spool/casenet/vn.police.a05 --exec '/usr/local/bin/import-case'\n";

/* What handling one row came to, for the loop. */
enum outcome {
    H_OK = 0, /* nothing more to do now (done, deferred, failed hand-over, rejected) */
    H_RETRY,  /* the broker is unreachable or busy: back off, then list again */
    H_FATAL,  /* the journal failed: exactly-once can no longer be promised */
};

struct watch {
    struct home *h;
    casenet_client *c;
    wj *j;
    const char *spool, *exec_cmd, *broker;
    int timeout_ms, exec_timeout_ms;
    int64_t rescan_ms;
    bool once;
    uint64_t disconnects;
    int64_t dir_refreshed_ms; /* monotonic; 0 = never */
    int64_t next_retry_ms;    /* wall clock of the earliest deferred hand-over; 0 = none */
    bool failed, rejected;    /* during this run: for --once's exit code */
};

static volatile sig_atomic_t stop_signals = 0;

static void on_signal(int sig)
{
    if (stop_signals++ == 0)
        return;
    /* A second signal: leave at once (the journal is crash-safe). */
    pid_t child = (pid_t)wh_exec_child;
    if (child > 0)
        kill(-child, SIGKILL);
    _exit(128 + sig);
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: waits return early and look at the flag */
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return CASENET_EIO;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL) == 0 ? CASENET_OK : CASENET_EIO;
}

static bool stopping(void)
{
    return stop_signals > 0;
}

/* Sleeps ms, returning early when asked to stop. */
static void nap(int64_t ms)
{
    int64_t until = cn_mono_ms() + ms;
    while (!stopping()) {
        int64_t left = until - cn_mono_ms();
        if (left <= 0)
            return;
        if (left > WATCH_NOTICE_SLICE_MS)
            left = WATCH_NOTICE_SLICE_MS;
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Doubles *backoff_ms within [min, max] and returns the wait, with +-20 %
 * jitter so that many agents do not return to a restarted broker at once. */
static int64_t next_backoff(int64_t *backoff_ms)
{
    if (*backoff_ms < WATCH_BACKOFF_MIN_MS)
        *backoff_ms = WATCH_BACKOFF_MIN_MS;
    else if (*backoff_ms < WATCH_BACKOFF_MAX_MS)
        *backoff_ms =
            *backoff_ms * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : *backoff_ms * 2;
    int64_t span = *backoff_ms / 5;
    return *backoff_ms - span + (int64_t)randombytes_uniform((uint32_t)(2 * span + 1));
}

static bool transient(int rc)
{
    return rc == CASENET_ETIMEDOUT || rc == CASENET_EUNAVAIL || rc == CASENET_ERATELIMIT ||
           rc == CASENET_EIO || rc == CASENET_ENOMEM || rc == CASENET_EUNAUTH;
}

/* ------------------------------------------------------------ logging */

/* The one line per message. */
static void log_message(enum log_level level, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                        const char *from, int kind, const char *outcome, const char *k1,
                        const char *v1, const char *k2, const char *v2)
{
    char hex[33];
    cli_id16_hex(id, hex);
    log_event(level, "message", "msg", hex, "from", from && from[0] ? from : NULL, "kind",
              kind ? casenet_kind_name(kind) : NULL, "outcome", outcome, k1 ? k1 : "-", v1,
              k2 ? k2 : "-", v2, NULL);
}

/* ------------------------------------------------------------ directory */

/* Takes the broker's directory when it is newer than the home's: verified
 * with the pinned key, stored in the home, used from now on. Failures are
 * logged and leave the current directory. */
static void refresh_directory(struct watch *w)
{
    w->dir_refreshed_ms = cn_mono_ms();
    casenet_buf b = {0};
    int rc = casenet_client_get_directory(w->c, &b);
    if (rc != CASENET_OK) {
        log_event(LOG_WARN, "directory", "outcome", "unavailable", "error", casenet_errname(rc),
                  NULL);
        return;
    }
    size_t cur_len = 0;
    const uint8_t *cur = casenet_directory_bytes(w->h->dir, &cur_len);
    casenet_directory *d = NULL;
    if (cur_len == b.len && memcmp(cur, b.data, b.len) == 0)
        goto done;
    rc = casenet_directory_parse(b.data, b.len, w->h->authority_pk, cn_now_ms(), 0, &d);
    if (rc != CASENET_OK) {
        log_event(LOG_WARN, "directory", "outcome", "rejected", "error", casenet_errname(rc), NULL);
        goto done;
    }
    uint64_t version = casenet_directory_version(d);
    if (version <= w->h->directory_version)
        goto done; /* not newer than one this home has seen */
    if (home_store_directory(w->h, b.data, b.len, NULL) != CLI_OK) {
        log_event(LOG_WARN, "directory", "outcome", "not-stored", "version", log_u64(version),
                  NULL);
        goto done;
    }
    /* home_store_directory freed the directory the client borrowed. */
    casenet_client_set_directory(w->c, w->h->dir);
    log_event(LOG_INFO, "directory", "outcome", "updated", "version", log_u64(version), NULL);
done:
    casenet_directory_free(d);
    casenet_buf_free(&b);
}

/* ------------------------------------------------------------ receipts */

/* Sends the journal row's stored receipt (the same bytes every time, which
 * the broker answers idempotently) and records DONE once it is accepted. */
static enum outcome send_receipt(struct watch *w, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                 struct wj_row *row, bool resumed)
{
    uint64_t audit_index = 0;
    int rc = casenet_client_send_receipt(w->c, row->receipt.data, row->receipt.len, &audit_index);
    if (rc != CASENET_OK && transient(rc)) {
        log_message(LOG_WARN, id, row->sender, row->kind, "receipt-pending", "error",
                    casenet_errname(rc), NULL, NULL);
        return H_RETRY;
    }
    const char *outcome = resumed ? "acknowledged-after-restart" : "acknowledged";
    if (rc != CASENET_OK) {
        /* Refused for good (the row moved on without us, was purged, ...):
         * resending would be refused again. */
        log_message(LOG_WARN, id, row->sender, row->kind, "receipt-refused", "error",
                    casenet_errname(rc), "detail", casenet_client_last_error(w->c));
        outcome = NULL;
    }
    casenet_buf_free(&row->receipt);
    row->state = WJ_DONE;
    if (wj_put(w->j, id, row) != CASENET_OK)
        return H_FATAL;
    if (outcome)
        log_message(LOG_INFO, id, row->sender, row->kind, outcome, "audit_index",
                    log_u64(audit_index), NULL, NULL);
    return H_OK;
}

/* Sends the receipts of messages taken but not yet acknowledged (a previous
 * run was killed, or the broker went away, between hand-over and receipt). */
static enum outcome flush_receipts(struct watch *w, bool resumed)
{
    uint8_t(*ids)[CASENET_MESSAGE_ID_BYTES] = NULL;
    size_t n = 0;
    if (wj_list_state(w->j, WJ_HANDED, &ids, &n) != CASENET_OK)
        return H_FATAL;
    enum outcome out = H_OK;
    for (size_t i = 0; i < n && out == H_OK; i++) {
        struct wj_row row;
        if (wj_get(w->j, ids[i], &row) != CASENET_OK) {
            out = H_FATAL;
            break;
        }
        if (row.state == WJ_HANDED && row.receipt.len)
            out = send_receipt(w, ids[i], &row, resumed);
        wj_row_clear(&row);
    }
    free(ids);
    return out;
}

/* ------------------------------------------------------------ one row */

/* Records a failed hand-over and when to try again. */
static enum outcome defer(struct watch *w, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                          struct wj_row *row, const char *outcome, const char *k, const char *v)
{
    row->attempts++;
    int64_t delay = WATCH_RETRY_MIN_MS;
    for (uint32_t i = 1; i < row->attempts && delay < WATCH_RETRY_MAX_MS; i++)
        delay *= 2;
    if (delay > WATCH_RETRY_MAX_MS)
        delay = WATCH_RETRY_MAX_MS;
    row->next_try_ms = cn_now_ms() + delay;
    if (row->state < WJ_PENDING)
        row->state = WJ_PENDING;
    if (wj_put(w->j, id, row) != CASENET_OK)
        return H_FATAL;
    if (!w->next_retry_ms || row->next_try_ms < w->next_retry_ms)
        w->next_retry_ms = row->next_try_ms;
    w->failed = true;
    log_message(LOG_WARN, id, row->sender, row->kind, outcome, k, v, "attempts",
                log_u64(row->attempts));
    return H_OK;
}

static enum outcome reject(struct watch *w, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                           struct wj_row *row, int rc, const char *why)
{
    row->state = WJ_REJECTED;
    row->dir_version = casenet_directory_version(w->h->dir);
    if (wj_put(w->j, id, row) != CASENET_OK)
        return H_FATAL;
    w->rejected = true;
    log_message(LOG_ERROR, id, row->sender, row->kind, "rejected", "error", casenet_errname(rc),
                "detail", why);
    return H_OK;
}

/* A verification failure that a newer directory may cure (a sender's new
 * key, a member admitted since): pull it, at most once a minute. */
static bool directory_may_help(struct watch *w, int rc)
{
    if (rc != CASENET_EUNAUTH && rc != CASENET_EBADSIG && rc != CASENET_EUNKNOWNRCPT &&
        rc != CASENET_ENOTRECIPIENT && rc != CASENET_ECRYPTO)
        return false;
    if (w->dir_refreshed_ms && cn_mono_ms() - w->dir_refreshed_ms < 60000)
        return false;
    uint64_t before = casenet_directory_version(w->h->dir);
    refresh_directory(w);
    return casenet_directory_version(w->h->dir) != before;
}

/* Hands json over as configured, advancing row. H_OK with row->state ==
 * WJ_HANDED when taken; H_OK with the row deferred otherwise. */
static enum outcome hand_over(struct watch *w, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                              struct wj_row *row, const char *json, size_t len,
                              const char *attach_dir, const char *attach_paths)
{
    char *spool_file = NULL;
    if (w->spool) {
        char err[512];
        int rc = wh_spool(w->j, w->spool, id, row, json, len, err, sizeof err);
        if (rc != CASENET_OK)
            return defer(w, id, row, "spool-failed", "error", err);
        spool_file = wh_spool_path(w->spool, id);
        if (!spool_file)
            return defer(w, id, row, "spool-failed", "error", "out of memory");
    }
    if (w->exec_cmd) {
        if (row->state == WJ_SPOOLED && w->spool) {
            /* Recorded before the command runs: a crash now must not write
             * the spool file a second time. */
            if (wj_put(w->j, id, row) != CASENET_OK) {
                free(spool_file);
                return H_FATAL;
            }
        }
        char hex[33];
        cli_id16_hex(id, hex);
        struct wh_exec_result res;
        int rc = wh_exec(w->exec_cmd, json, len, hex, casenet_kind_name(row->kind), row->sender,
                         spool_file, attach_dir, attach_paths, w->exec_timeout_ms, &res);
        free(spool_file);
        spool_file = NULL;
        if (rc != CASENET_OK)
            return defer(w, id, row, "exec-failed", "error", "cannot start the command");
        if (!res.taken) {
            char why[64];
            if (res.timedout)
                snprintf(why, sizeof why, "timeout");
            else if (res.signal)
                snprintf(why, sizeof why, "signal %d", res.signal);
            else
                snprintf(why, sizeof why, "exit %d", res.status);
            return defer(w, id, row, "exec-failed", "error", why);
        }
    }
    free(spool_file);
    row->state = WJ_HANDED;
    return H_OK;
}

/* Saves the attachments of an opened message before it is handed over
 * (wh_save_attachments): *dir and *paths are malloc'd, both NULL for a
 * message without attachments. *go is false when the row was deferred,
 * rejected or must wait for the broker: the outcome is then the row's. */
static enum outcome save_attachments(struct watch *w, struct wj_row *row,
                                     const casenet_message_info *info, const casenet_buf *payload,
                                     char **dir, char **paths, bool *go)
{
    *go = false;
    *paths = NULL;
    *dir = wh_attachments_dir(w->spool, w->h->path, info->message_id);
    if (!*dir)
        return defer(w, info->message_id, row, "attachments-failed", "error", "out of memory");
    char err[512];
    size_t n = 0;
    int rc = wh_save_attachments(w->c, info, payload, *dir, paths, &n, err, sizeof err);
    if (rc == CASENET_ECRYPTO || rc == CASENET_ECOMMIT || rc == CASENET_EBADREQ)
        return reject(w, info->message_id, row, rc, err);
    if (rc != CASENET_OK && transient(rc)) {
        log_event(LOG_WARN, "attachments", "msg", log_hex(info->message_id, 16), "error",
                  casenet_errname(rc), NULL);
        return H_RETRY;
    }
    if (rc != CASENET_OK)
        return defer(w, info->message_id, row, "attachments-failed", "error", err);
    if (n == 0) {
        free(*dir);
        *dir = NULL;
    }
    *go = true;
    return H_OK;
}

/* Settles a forwarded receipt row that was handed over: fetching it moves it
 * from queued to fetched at the broker (PROTOCOL.md section 8). A failure
 * only leaves it queued: it is tried again when next listed. */
static void settle_receipt_row(struct watch *w, const casenet_inbox_entry *e)
{
    if (e->state != CASENET_INBOX_QUEUED)
        return;
    casenet_buf env = {0};
    casenet_inbox_entry got;
    int rc = casenet_client_fetch_row(w->c, e->message_id, &env, &got);
    if (rc != CASENET_OK) {
        log_message(LOG_WARN, e->message_id, e->sender, e->kind, "settle-failed", "error",
                    casenet_errname(rc), NULL, NULL);
        return;
    }
    casenet_inbox_entry_clear(&got);
    casenet_buf_free(&env);
}

/* Verifies a forwarded receipt row and hands it over; no receipt goes back. */
static enum outcome handle_receipt_row(struct watch *w, const casenet_inbox_entry *e,
                                       struct wj_row *row)
{
    casenet_receipt r;
    int rc = e->receipt.len ? casenet_receipt_verify(w->h->dir, e->receipt.data, e->receipt.len, &r)
                            : CASENET_EBADREQ;
    if (rc != CASENET_OK && directory_may_help(w, rc))
        rc = casenet_receipt_verify(w->h->dir, e->receipt.data, e->receipt.len, &r);
    if (rc == CASENET_OK && strcmp(r.sender, w->h->member) != 0)
        rc = CASENET_EBADREQ; /* a receipt for somebody else's message */
    if (rc != CASENET_OK)
        return reject(w, e->message_id, row, rc, "forwarded receipt does not verify");
    char *json = NULL;
    size_t len = 0;
    rc = receipt_json(e, &r, &json, &len);
    if (rc != CASENET_OK)
        return defer(w, e->message_id, row, "json-failed", "error", casenet_errname(rc));
    enum outcome out = hand_over(w, e->message_id, row, json, len, NULL, NULL);
    free(json);
    if (out != H_OK || row->state != WJ_HANDED)
        return out;
    row->state = WJ_DONE;
    if (wj_put(w->j, e->message_id, row) != CASENET_OK)
        return H_FATAL;
    char re[33];
    cli_id16_hex(r.message_id, re);
    log_message(LOG_INFO, e->message_id, row->sender, row->kind, "handed-over", "re", re, "status",
                casenet_receipt_status_name(r.status));
    settle_receipt_row(w, e);
    return H_OK;
}

/* Fetches, opens and hands over a message, then acknowledges it. */
static enum outcome handle_message_row(struct watch *w, const casenet_inbox_entry *e,
                                       struct wj_row *row)
{
    casenet_buf env = {0}, payload = {0}, pjson = {0}, signed_receipt = {0};
    casenet_message_info info = {0};
    char *json = NULL, *attach_dir = NULL, *attach_paths = NULL;
    size_t len = 0;
    enum outcome out = H_OK;
    int rc = casenet_client_fetch(w->c, e->message_id, &env);
    if (rc != CASENET_OK) {
        if (transient(rc)) {
            out = H_RETRY;
            log_event(LOG_WARN, "fetch", "msg", log_hex(e->message_id, 16), "error",
                      casenet_errname(rc), NULL);
        } else {
            /* Gone (purged, or the row was never ours): nothing to hand over. */
            log_message(LOG_WARN, e->message_id, row->sender, row->kind, "not-fetched", "error",
                        casenet_errname(rc), NULL, NULL);
        }
        goto cleanup;
    }
    rc = casenet_open(w->h->keys, w->h->dir, env.data, env.len, &info, &payload);
    if (rc != CASENET_OK && directory_may_help(w, rc)) {
        casenet_message_info_clear(&info);
        rc = casenet_open(w->h->keys, w->h->dir, env.data, env.len, &info, &payload);
    }
    if (rc == CASENET_OK && sodium_memcmp(info.message_id, e->message_id, 16) != 0)
        rc = CASENET_EBADREQ; /* the broker answered with another message */
    if (rc != CASENET_OK) {
        out = reject(w, e->message_id, row, rc,
                     rc == CASENET_EKEYRETIRED || rc == CASENET_EKEYUNKNOWN
                         ? "the keyring lacks the box key the message is wrapped to (intact, "
                           "not altered); restore the keyring that holds it"
                         : "message does not verify");
        goto cleanup;
    }
    /* From here on the signed header, not the broker's listing, names it. */
    if (cn_strlcpy(row->sender, info.sender, sizeof row->sender) != CASENET_OK)
        row->sender[0] = '\0';
    row->kind = info.kind;
    if (info.kind == CASENET_KIND_HASH_SHARE)
        hashes_apply_opened(w->h, &info, &payload); /* then handed over as any message */
    rc = casenet_payload_to_json(payload.data, payload.len, &pjson);
    if (rc == CASENET_OK)
        rc = watch_message_json(e, &info, &pjson, &json, &len);
    if (rc == CASENET_EBADREQ || rc == CASENET_EINVAL) {
        out = reject(w, e->message_id, row, rc, "payload cannot be converted to JSON");
        goto cleanup;
    }
    if (rc != CASENET_OK) {
        out = defer(w, e->message_id, row, "json-failed", "error", casenet_errname(rc));
        goto cleanup;
    }
    bool go = false;
    out = save_attachments(w, row, &info, &payload, &attach_dir, &attach_paths, &go);
    if (go)
        out = hand_over(w, e->message_id, row, json, len, attach_dir, attach_paths);
    if (!go || out != H_OK || row->state != WJ_HANDED)
        goto cleanup;

    /* Taken: sign the receipt and record it with HANDED in one commit, so
     * that a restart resends these very bytes instead of handing over again. */
    casenet_receipt r = {0};
    memcpy(r.message_id, info.message_id, sizeof r.message_id);
    memcpy(r.envelope_hash, info.envelope_hash, sizeof r.envelope_hash);
    r.status = CASENET_RECEIPT_DELIVERED;
    r.signed_at_ms = cn_now_ms();
    rc = cn_strlcpy(r.sender, info.sender, sizeof r.sender);
    if (rc == CASENET_OK)
        rc = cn_strlcpy(r.recipient, w->h->member, sizeof r.recipient);
    if (rc == CASENET_OK)
        rc = casenet_receipt_sign(w->h->keys, &r, &signed_receipt);
    if (rc != CASENET_OK) {
        /* Taken but cannot be acknowledged: record it so it is never handed
         * over again, and say so loudly. */
        row->state = WJ_DONE;
        out = wj_put(w->j, e->message_id, row) == CASENET_OK ? H_OK : H_FATAL;
        log_message(LOG_ERROR, e->message_id, row->sender, row->kind, "receipt-unsigned", "error",
                    casenet_errname(rc), NULL, NULL);
        goto cleanup;
    }
    row->receipt = signed_receipt;
    signed_receipt = (casenet_buf){0};
    if (wj_put(w->j, e->message_id, row) != CASENET_OK) {
        out = H_FATAL;
        goto cleanup;
    }
    out = send_receipt(w, e->message_id, row, false);
cleanup:
    free(json);
    free(attach_dir);
    free(attach_paths);
    casenet_message_info_clear(&info);
    casenet_buf_free(&signed_receipt);
    casenet_buf_free(&pjson);
    casenet_buf_free(&payload);
    casenet_buf_free(&env);
    return out;
}

/* Whatever an inbox row (listed or pushed) needs next, by its journal row. */
static enum outcome handle_entry(struct watch *w, const casenet_inbox_entry *e)
{
    if (e->state != CASENET_INBOX_QUEUED && e->state != CASENET_INBOX_FETCHED)
        return H_OK; /* acknowledged already (by watch or by hand) or dead */
    struct wj_row row;
    if (wj_get(w->j, e->message_id, &row) != CASENET_OK)
        return H_FATAL;
    enum outcome out = H_OK;
    switch (row.state) {
    case WJ_DONE:
        if (e->kind == CASENET_KIND_RECEIPT)
            settle_receipt_row(w, e); /* handed over before receipts were settled */
        goto done;
    case WJ_REJECTED:
        if (row.dir_version >= casenet_directory_version(w->h->dir))
            goto done; /* retried only under a newer directory */
        row.state = WJ_NONE;
        break;
    case WJ_HANDED:
        out = row.receipt.len ? send_receipt(w, e->message_id, &row, true) : H_OK;
        goto done;
    case WJ_PENDING:
    case WJ_SPOOLING:
    case WJ_SPOOLED:
        if (!w->once && row.next_try_ms > cn_now_ms()) {
            if (!w->next_retry_ms || row.next_try_ms < w->next_retry_ms)
                w->next_retry_ms = row.next_try_ms;
            goto done;
        }
        break;
    case WJ_NONE:
        break;
    }
    row.seq = e->seq;
    if (row.state == WJ_NONE) {
        row.kind = e->kind;
        if (cn_strlcpy(row.sender, e->sender, sizeof row.sender) != CASENET_OK)
            row.sender[0] = '\0';
    }
    if (e->kind == CASENET_KIND_RECEIPT)
        out = handle_receipt_row(w, e, &row);
    else
        out = handle_message_row(w, e, &row);
done:
    wj_row_clear(&row);
    return out;
}

/* ------------------------------------------------------------ catching up */

/* Sends pending receipts, then lists the inbox (fetched rows first: those a
 * previous run was handling, then queued) and handles every row. */
static enum outcome catch_up(struct watch *w, bool first)
{
    w->next_retry_ms = 0;
    enum outcome out = flush_receipts(w, first);
    if (out != H_OK)
        return out;
    static const casenet_inbox_state states[] = {CASENET_INBOX_FETCHED, CASENET_INBOX_QUEUED};
    for (size_t s = 0; s < 2; s++) {
        uint64_t cursor = 0;
        bool more = true;
        while (more && !stopping()) {
            casenet_inbox_entry *rows = NULL;
            size_t n = 0;
            uint64_t next = cursor;
            int rc =
                casenet_client_list(w->c, states[s], cursor, WATCH_PAGE, &rows, &n, &next, &more);
            if (rc != CASENET_OK) {
                /* Whatever the broker said, listing again later is all we can do. */
                log_event(LOG_WARN, "list", "error", casenet_errname(rc), "detail",
                          casenet_client_last_error(w->c), NULL);
                return H_RETRY;
            }
            for (size_t i = 0; i < n && out == H_OK && !stopping(); i++)
                out = handle_entry(w, &rows[i]);
            casenet_inbox_entries_free(rows, n);
            if (out != H_OK)
                return out;
            if (n == 0 || next <= cursor)
                break; /* no progress: never loop on a confused broker */
            cursor = next;
        }
    }
    return H_OK;
}

/* ------------------------------------------------------------ the loop */

static int connect_broker(struct watch *w)
{
    const char *ep = w->broker && w->broker[0] ? w->broker : w->h->broker;
    casenet_client_opts opts = {
        .endpoint = ep,
        .timeout_ms = w->timeout_ms,
        .client_name = "casenet-watch/" CASENET_VERSION,
    };
    int rc = casenet_client_connect(w->h->keys, w->h->dir, &opts, &w->c);
    if (rc != CASENET_OK) {
        log_event(LOG_WARN, "connect", "broker", ep, "outcome", "failed", "error",
                  casenet_errname(rc), NULL);
        return rc;
    }
    w->disconnects = casenet_client_disconnects(w->c);
    log_event(LOG_INFO, "connect", "broker", ep, "member", w->h->member, "outcome", "connected",
              NULL);
    return CASENET_OK;
}

static int exit_for_once(const struct watch *w, enum outcome out)
{
    if (out == H_FATAL)
        return CLI_EIO;
    if (out == H_RETRY)
        return CLI_EUNREACH;
    if (w->rejected)
        return CLI_ESECURITY;
    if (w->failed)
        return CLI_EFAIL;
    return CLI_OK;
}

static int run(struct watch *w)
{
    int64_t backoff = 0;
    bool first = true, need_scan = true, subscribed = false;
    int64_t next_scan = 0;
    while (!stopping()) {
        if (!w->c) {
            int rc = connect_broker(w);
            if (rc != CASENET_OK) {
                if (w->once)
                    return CLI_EUNREACH;
                nap(next_backoff(&backoff));
                continue;
            }
            need_scan = true;
        }
        if (!w->once && !subscribed) {
            int rc = casenet_client_subscribe(w->c);
            if (rc != CASENET_OK) {
                log_event(LOG_WARN, "subscribe", "error", casenet_errname(rc), NULL);
                nap(next_backoff(&backoff));
                continue;
            }
            subscribed = true; /* the library re-subscribes after reconnects */
        }
        int64_t now = cn_mono_ms();
        bool retry_due = w->next_retry_ms && cn_now_ms() >= w->next_retry_ms;
        if (need_scan || now >= next_scan || retry_due) {
            if (!w->dir_refreshed_ms || now - w->dir_refreshed_ms >= WATCH_DIR_REFRESH_MS)
                refresh_directory(w);
            enum outcome out = catch_up(w, first);
            if (w->once)
                return exit_for_once(w, out);
            if (out == H_FATAL)
                return CLI_EIO;
            if (out == H_RETRY) {
                need_scan = true;
                nap(next_backoff(&backoff));
                continue;
            }
            first = false;
            backoff = 0;
            need_scan = false;
            next_scan = cn_mono_ms() + w->rescan_ms;
        }
        int64_t wait = next_scan - cn_mono_ms();
        if (w->next_retry_ms) {
            int64_t until_retry = w->next_retry_ms - cn_now_ms();
            if (until_retry < wait)
                wait = until_retry;
        }
        if (wait > WATCH_NOTICE_SLICE_MS)
            wait = WATCH_NOTICE_SLICE_MS;
        if (wait < 0)
            wait = 0;
        casenet_inbox_entry e;
        memset(&e, 0, sizeof e);
        int rc = casenet_client_wait_notice(w->c, (int)wait, &e);
        uint64_t d = casenet_client_disconnects(w->c);
        if (d != w->disconnects) {
            /* Pushes are not resent: list what arrived while away. */
            w->disconnects = d;
            need_scan = true;
            log_event(LOG_INFO, "connect", "outcome", "lost", "action", "rescan", NULL);
        }
        if (rc == CASENET_OK) {
            enum outcome out = handle_entry(w, &e);
            casenet_inbox_entry_clear(&e);
            if (out == H_FATAL)
                return CLI_EIO;
            if (out == H_RETRY) {
                need_scan = true;
                nap(next_backoff(&backoff));
            }
        } else if (rc != CASENET_ETIMEDOUT) {
            log_event(LOG_WARN, "wait", "error", casenet_errname(rc), NULL);
            need_scan = true;
            nap(next_backoff(&backoff));
        }
    }
    return CLI_OK;
}

int cmd_watch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"spool", required_argument, NULL, 's'},  {"exec", required_argument, NULL, 'x'},
        {"once", no_argument, NULL, '1'},         {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'}, {"timeout", required_argument, NULL, 't'},
        {"rescan", required_argument, NULL, 'r'}, {"exec-timeout", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct watch w = {
        .timeout_ms = WATCH_DEFAULT_TIMEOUT_S * 1000,
        .exec_timeout_ms = WATCH_DEFAULT_EXEC_S * 1000,
        .rescan_ms = WATCH_DEFAULT_RESCAN_S * 1000,
    };
    const char *home_opt = NULL;
    uint64_t v = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "s:x:1H:b:t:r:e:h", opts)) != -1) {
        switch (c) {
        case 's':
            w.spool = optarg;
            break;
        case 'x':
            w.exec_cmd = optarg;
            break;
        case '1':
            w.once = true;
            break;
        case 'H':
            home_opt = optarg;
            break;
        case 'b':
            w.broker = optarg;
            break;
        case 't':
            if (!net_parse_timeout(optarg, &w.timeout_ms))
                return cli_usage_error("--timeout wants 1..3600 seconds, not '%s'", optarg);
            break;
        case 'r':
            if (!cli_parse_uint(optarg, 1, 86400, &v))
                return cli_usage_error("--rescan wants 1..86400 seconds, not '%s'", optarg);
            w.rescan_ms = (int64_t)v * 1000;
            break;
        case 'e':
            if (!cli_parse_uint(optarg, 1, 86400, &v))
                return cli_usage_error("--exec-timeout wants 1..86400 seconds, not '%s'", optarg);
            w.exec_timeout_ms = (int)v * 1000;
            break;
        case 'h':
            return cli_help(watch_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!w.spool && !w.exec_cmd)
        return cli_usage_error("say how to hand messages over: --spool DIR, --exec CMD or both");
    if (w.spool && !w.spool[0])
        return cli_usage_error("--spool wants a directory");
    if (w.exec_cmd && !w.exec_cmd[0])
        return cli_usage_error("--exec wants a command");

    char *path = home_path(home_opt);
    if (!path)
        return CLI_EFAIL;
    int ex = home_open(path, &w.h);
    if (ex != CLI_OK)
        goto cleanup;
    if (!(w.broker && w.broker[0]) && !w.h->broker[0]) {
        ex = cli_usage_error("no broker endpoint: pass --broker ENDPOINT (or set it with "
                             "'casenet init --broker')");
        goto cleanup;
    }
    if (w.spool) {
        int rc = cli_mkdir(w.spool);
        if (rc != CASENET_OK) {
            ex = cli_fail(CLI_LOCAL, rc, NULL, "cannot create the spool directory %s: %s", w.spool,
                          strerror(errno));
            goto cleanup;
        }
    }
    int rc = wj_open(path, &w.j);
    if (rc != CASENET_OK) {
        ex = rc == CASENET_ECONFLICT ? CLI_EFAIL : cli_exit_code(rc, CLI_LOCAL);
        goto cleanup;
    }
    if (install_signals() != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot install signal handlers");
        goto cleanup;
    }
    log_event(LOG_INFO, "start", "member", w.h->member, "spool", w.spool, "exec",
              w.exec_cmd ? "yes" : NULL, "mode", w.once ? "once" : "watch", NULL);
    ex = run(&w);
    log_event(ex == CLI_OK ? LOG_INFO : LOG_WARN, "stop", "exit", log_u64((uint64_t)ex), "signal",
              stopping() ? "yes" : NULL, NULL);
cleanup:
    casenet_client_free(w.c);
    wj_close(w.j);
    home_free(w.h);
    free(path);
    return ex;
}
