/* zap.c - ZAP 1.0 handler mapping CURVE keys to directory members (see zap.h). */
#include "zap.h"

#include "audit.h"
#include "directory_impl.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_FRAMES_MAX  8
#define ZAP_FRAME_MAX   256
#define ZAP_PENDING_MAX 1024 /* queued audit events; beyond, only counted */
/* Distinct keys and addresses counted per summary period: open addressing
 * over SipHash values, full at three quarters (then "at least"). */
#define ZAP_DISTINCT_SLOTS 4096
#define ZAP_DISTINCT_FULL  (ZAP_DISTINCT_SLOTS / 4 * 3)

struct zap_denial {
    char address[64]; /* "" for a summary */
    char detail[192];
};

struct zap_slot {
    uint8_t key[CASENET_CURVE_KEY_BYTES];
    int64_t last_ms; /* monotonic; 0 = free */
    uint64_t suppressed;
};

struct zap_addr_slot {
    char address[64];
    int64_t last_ms; /* monotonic; 0 = free */
};

/* A set of 64-bit hashes (0 = empty slot). */
struct zap_distinct {
    uint64_t h[ZAP_DISTINCT_SLOTS];
    size_t n;
};

struct zap {
    void *rep;
    struct zap_denial *pending;
    size_t n_pending;
    uint64_t dropped;
    struct zap_slot slots[ZAP_THROTTLE_SLOTS];
    struct zap_addr_slot addrs[ZAP_THROTTLE_SLOTS];
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    /* The current summary period: individual events written in it, and the
     * denials that were not written one by one. */
    int64_t period_start_ms; /* monotonic; 0 = none open */
    uint32_t period_events;
    uint64_t period_denials;
    struct zap_distinct keys, addresses;
};

int zap_open(void *ctx, struct zap **out)
{
    struct zap *z = calloc(1, sizeof *z);
    if (!z)
        return CASENET_ENOMEM;
    z->pending = calloc(ZAP_PENDING_MAX, sizeof *z->pending);
    randombytes_buf(z->hash_key, sizeof z->hash_key);
    z->rep = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    if (!z->pending || !z->rep || zmq_setsockopt(z->rep, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(z->rep, ZAP_ENDPOINT) != 0) {
        log_event(LOG_ERROR, "zap_bind", "endpoint", ZAP_ENDPOINT, "zmq_error", zmq_strerror(errno),
                  NULL);
        zap_close(z);
        return CASENET_EIO;
    }
    *out = z;
    return CASENET_OK;
}

void zap_close(struct zap *z)
{
    if (!z)
        return;
    if (z->rep)
        zmq_close(z->rep);
    free(z->pending);
    free(z);
}

void *zap_socket(struct zap *z)
{
    return z->rep;
}

bool zap_has_pending(const struct zap *z)
{
    return z->n_pending > 0;
}

/* The key's throttle slot, or the oldest slot (to be reused) with *found
 * false. */
static struct zap_slot *key_slot(struct zap *z, const uint8_t k[CASENET_CURVE_KEY_BYTES],
                                 bool *found)
{
    struct zap_slot *oldest = &z->slots[0];
    for (size_t i = 0; i < ZAP_THROTTLE_SLOTS; i++) {
        struct zap_slot *sl = &z->slots[i];
        if (sl->last_ms && memcmp(sl->key, k, CASENET_CURVE_KEY_BYTES) == 0) {
            *found = true;
            return sl;
        }
        if (sl->last_ms < oldest->last_ms)
            oldest = sl;
    }
    *found = false;
    return oldest;
}

/* The address's throttle slot, or the oldest slot with *found false. */
static struct zap_addr_slot *addr_slot(struct zap *z, const char *address, bool *found)
{
    struct zap_addr_slot *oldest = &z->addrs[0];
    for (size_t i = 0; i < ZAP_THROTTLE_SLOTS; i++) {
        struct zap_addr_slot *sl = &z->addrs[i];
        if (sl->last_ms && strcmp(sl->address, address) == 0) {
            *found = true;
            return sl;
        }
        if (sl->last_ms < oldest->last_ms)
            oldest = sl;
    }
    *found = false;
    return oldest;
}

/* Adds a value to a distinct set (no-op once the set is full). */
static void distinct_add(struct zap *z, struct zap_distinct *d, const void *data, size_t len)
{
    if (d->n >= ZAP_DISTINCT_FULL)
        return;
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, data, len, z->hash_key);
    memcpy(&h, out, sizeof h);
    h |= 1; /* never 0, the empty slot */
    for (size_t i = h % ZAP_DISTINCT_SLOTS;; i = (i + 1) % ZAP_DISTINCT_SLOTS) {
        if (d->h[i] == h)
            return;
        if (d->h[i] == 0) {
            d->h[i] = h;
            d->n++;
            return;
        }
    }
}

/* Queues one AUTH_DENIED event (counted as dropped when the queue is full). */
static void queue_event(struct zap *z, const char *address, const char *detail)
{
    if (z->n_pending >= ZAP_PENDING_MAX) {
        z->dropped++;
        return;
    }
    struct zap_denial *d = &z->pending[z->n_pending++];
    snprintf(d->address, sizeof d->address, "%s", address);
    snprintf(d->detail, sizeof d->detail, "%s", detail);
}

void zap_summarize(struct zap *z, int64_t now_mono_ms, bool final)
{
    if (!z->period_start_ms || (!final && now_mono_ms - z->period_start_ms < ZAP_SUMMARY_MS))
        return;
    if (z->period_denials > 0) {
        char detail[192];
        snprintf(detail, sizeof detail,
                 "summary period_ms=%lld denials=%llu distinct_keys=%zu%s "
                 "distinct_addresses=%zu%s",
                 (long long)(now_mono_ms - z->period_start_ms),
                 (unsigned long long)z->period_denials, z->keys.n,
                 z->keys.n >= ZAP_DISTINCT_FULL ? "+" : "", z->addresses.n,
                 z->addresses.n >= ZAP_DISTINCT_FULL ? "+" : "");
        queue_event(z, "", detail);
        log_event(LOG_WARN, "auth_denied_summary", "detail", detail, NULL);
    }
    z->period_start_ms = 0;
    z->period_events = 0;
    z->period_denials = 0;
    memset(&z->keys, 0, sizeof z->keys);
    memset(&z->addresses, 0, sizeof z->addresses);
}

/* Logs a denial and decides how it is audited: one AUTH_DENIED event of its
 * own when neither its key nor its address had one in the last
 * ZAP_THROTTLE_MS and fewer than ZAP_EVENTS_PER_PERIOD were written in the
 * current period; otherwise it is counted into the period's summary. */
static void deny(struct zap *z, const char *address, const uint8_t *key, size_t key_len,
                 const char *why)
{
    int64_t now = cn_mono_ms();
    metrics_auth_denied();
    zap_summarize(z, now, false);
    if (!z->period_start_ms)
        z->period_start_ms = now;
    uint8_t k[CASENET_CURVE_KEY_BYTES] = {0};
    memcpy(k, key, key_len < sizeof k ? key_len : sizeof k);
    bool key_known = false, addr_known = false;
    struct zap_slot *ks = key_slot(z, k, &key_known);
    struct zap_addr_slot *as = addr_slot(z, address, &addr_known);
    bool own_event = (!key_known || now - ks->last_ms >= ZAP_THROTTLE_MS) &&
                     (!addr_known || now - as->last_ms >= ZAP_THROTTLE_MS) &&
                     z->period_events < ZAP_EVENTS_PER_PERIOD;
    const char *hex = log_hex(key, key_len);
    /* Each is logged; those counted into the summary at info level, so that
     * a flood of strangers does not bury the operator's warnings. */
    log_event(own_event ? LOG_WARN : LOG_INFO, "auth_denied", "address", address, "curve_key", hex,
              "reason", why, "audited", own_event ? "event" : "summary", NULL);
    if (!own_event) {
        if (key_known)
            ks->suppressed++;
        z->period_denials++;
        distinct_add(z, &z->keys, k, sizeof k);
        distinct_add(z, &z->addresses, address, strlen(address));
        return;
    }
    uint64_t suppressed = key_known ? ks->suppressed : 0;
    memcpy(ks->key, k, sizeof k);
    ks->last_ms = now;
    ks->suppressed = 0;
    snprintf(as->address, sizeof as->address, "%s", address);
    as->last_ms = now;
    z->period_events++;
    char detail[192];
    snprintf(detail, sizeof detail, "curve_key=%s reason=\"%s\" suppressed=%llu", hex, why,
             (unsigned long long)suppressed);
    queue_event(z, address, detail);
}

/* The ZMTP metadata frame of an accepted handshake: the property
 * "Identity" = a routing id the broker chose (ZAP_ROUTING_ID_BYTES: the
 * prefix and 16 random bytes). libzmq uses the property as the peer's routing
 * id, in place of the one the peer announced (ZMQ_ROUTING_ID) whenever the
 * reply is read after the peer's own metadata, which is how libzmq 4.3
 * orders a handshake but for a reply already waiting when the request is
 * sent (see zap_routing_id_assigned for that case). Returns the length. */
static size_t routing_metadata(uint8_t out[ZAP_METADATA_BYTES])
{
    static const char name[] = "Identity";
    size_t n = 0;
    out[n++] = (uint8_t)(sizeof name - 1);
    memcpy(out + n, name, sizeof name - 1);
    n += sizeof name - 1;
    out[n++] = 0;
    out[n++] = 0;
    out[n++] = 0;
    out[n++] = ZAP_ROUTING_ID_BYTES;
    out[n++] = ZAP_ROUTING_ID_PREFIX;
    randombytes_buf(out + n, ZAP_ROUTING_ID_BYTES - 1);
    return n + ZAP_ROUTING_ID_BYTES - 1;
}

static int send_reply(void *rep, const char *req_id, size_t req_id_len, const char *code,
                      const char *text, const char *user_id)
{
    uint8_t md[ZAP_METADATA_BYTES];
    size_t md_len = user_id[0] ? routing_metadata(md) : 0;
    if (zmq_send(rep, "1.0", 3, ZMQ_SNDMORE) < 0 ||
        zmq_send(rep, req_id, req_id_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(rep, code, strlen(code), ZMQ_SNDMORE) < 0 ||
        zmq_send(rep, text, strlen(text), ZMQ_SNDMORE) < 0 ||
        zmq_send(rep, user_id, strlen(user_id), ZMQ_SNDMORE) < 0 ||
        zmq_send(rep, md, md_len, 0) < 0) {
        log_event(LOG_ERROR, "zap_reply", "zmq_error", zmq_strerror(errno), NULL);
        return CASENET_EIO;
    }
    return CASENET_OK;
}

/* Receives one whole request into frames; returns the frame count, 0 when
 * nothing is pending, -1 on error. Frames beyond the maximum are counted but
 * not kept; frames are truncated to ZAP_FRAME_MAX bytes (lengths record the
 * real size). */
static int recv_request(void *rep, char frames[ZAP_FRAMES_MAX][ZAP_FRAME_MAX],
                        size_t lens[ZAP_FRAMES_MAX])
{
    int n = 0;
    for (;;) {
        char scratch[ZAP_FRAME_MAX];
        char *dst = n < ZAP_FRAMES_MAX ? frames[n] : scratch;
        int got = zmq_recv(rep, dst, ZAP_FRAME_MAX, n == 0 ? ZMQ_DONTWAIT : 0);
        if (got < 0)
            return (n == 0 && errno == EAGAIN) ? 0 : -1;
        if (n < ZAP_FRAMES_MAX)
            lens[n] = (size_t)got;
        n++;
        int more = 0;
        size_t sz = sizeof more;
        if (zmq_getsockopt(rep, ZMQ_RCVMORE, &more, &sz) != 0 || !more)
            return n;
    }
}

int zap_handle(struct zap *z, const casenet_directory *dir, zap_admit_fn admit, void *arg)
{
    int answered = 0;
    for (;;) {
        char f[ZAP_FRAMES_MAX][ZAP_FRAME_MAX];
        size_t len[ZAP_FRAMES_MAX] = {0};
        int n = recv_request(z->rep, f, len);
        if (n <= 0)
            return answered;
        answered++;
        /* version, request id, domain, address, identity, mechanism,
         * credentials (one frame for CURVE). */
        if (n < 6 || len[0] != 3 || memcmp(f[0], "1.0", 3) != 0 || len[1] > ZAP_FRAME_MAX) {
            (void)send_reply(z->rep, n > 1 ? f[1] : "", n > 1 ? len[1] : 0, "500",
                             "malformed ZAP request", "");
            continue;
        }
        char address[64];
        snprintf(address, sizeof address, "%.*s", (int)(len[3] < 63 ? len[3] : 63), f[3]);
        bool is_curve = len[5] == 5 && memcmp(f[5], "CURVE", 5) == 0;
        if (!is_curve || n != 7 || len[6] != CASENET_CURVE_KEY_BYTES) {
            deny(z, address, (const uint8_t *)"", 0, "not a CURVE handshake");
            (void)send_reply(z->rep, f[1], len[1], "400", "CURVE required", "");
            continue;
        }
        bool domain_ok = len[2] == strlen(ZAP_DOMAIN) && memcmp(f[2], ZAP_DOMAIN, len[2]) == 0;
        const uint8_t *key = (const uint8_t *)f[6];
        casenet_member m;
        const char *why = NULL;
        if (!domain_ok) {
            deny(z, address, key, CASENET_CURVE_KEY_BYTES, "wrong ZAP domain");
            (void)send_reply(z->rep, f[1], len[1], "400", "wrong domain", "");
        } else if (!dir || casenet_directory_find_curve(dir, key, &m) != CASENET_OK) {
            deny(z, address, key, CASENET_CURVE_KEY_BYTES, "key not in the directory");
            (void)send_reply(z->rep, f[1], len[1], "400", "unknown key", "");
        } else if (m.status != CASENET_MEMBER_ACTIVE) {
            char status[128];
            snprintf(status, sizeof status, "member %s is %s", m.id,
                     m.status == CASENET_MEMBER_REVOKED ? "revoked" : "suspended");
            deny(z, address, key, CASENET_CURVE_KEY_BYTES, status);
            (void)send_reply(z->rep, f[1], len[1], "400", "member not active", "");
        } else if (!cn_directory_has_curve_key(dir, m.id, m.curve_key_id, cn_now_ms())) {
            /* The directory was parsed while the key was valid: its window
             * is checked again now, at every handshake. */
            char validity[128];
            snprintf(validity, sizeof validity, "key %s of member %s is outside its validity",
                     m.curve_key_id, m.id);
            deny(z, address, key, CASENET_CURVE_KEY_BYTES, validity);
            (void)send_reply(z->rep, f[1], len[1], "400", "key not valid now", "");
        } else if (admit && (why = admit(arg, m.id, address)) != NULL) {
            deny(z, address, key, CASENET_CURVE_KEY_BYTES, why);
            (void)send_reply(z->rep, f[1], len[1], "400", "too many connections", "");
        } else {
            log_event(LOG_DEBUG, "auth_ok", "address", address, "member", m.id, NULL);
            (void)send_reply(z->rep, f[1], len[1], "200", "OK", m.id);
        }
    }
}

bool zap_routing_id_assigned(const uint8_t *rid, size_t len)
{
    return (len == ZAP_ROUTING_ID_BYTES && rid[0] == ZAP_ROUTING_ID_PREFIX) ||
           (len == ZAP_LIBZMQ_ID_BYTES && rid[0] == 0);
}

int zap_flush_audit(struct zap *z, struct store *s, int64_t now_ms)
{
    int rc = CASENET_OK;
    for (size_t i = 0; i < z->n_pending && rc == CASENET_OK; i++)
        rc = audit_auth_denied(s, now_ms, z->pending[i].address[0] ? z->pending[i].address : NULL,
                               z->pending[i].detail, NULL);
    z->n_pending = 0;
    if (z->dropped) {
        log_event(LOG_WARN, "auth_denied_dropped", "count", log_u64(z->dropped), NULL);
        z->dropped = 0;
    }
    return rc;
}
