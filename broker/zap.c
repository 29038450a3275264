/* zap.c - ZAP 1.0 handler mapping CURVE keys to directory members (see zap.h). */
#include "zap.h"

#include "audit.h"
#include "directory_impl.h"
#include "log.h"
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

struct zap_denial {
    char address[64];
    char detail[192];
};

struct zap_slot {
    uint8_t key[CASENET_CURVE_KEY_BYTES];
    int64_t last_ms; /* monotonic; 0 = free */
    uint64_t suppressed;
};

struct zap {
    void *rep;
    struct zap_denial *pending;
    size_t n_pending;
    uint64_t dropped;
    struct zap_slot slots[ZAP_THROTTLE_SLOTS];
};

int zap_open(void *ctx, struct zap **out)
{
    struct zap *z = calloc(1, sizeof *z);
    if (!z)
        return CASENET_ENOMEM;
    z->pending = calloc(ZAP_PENDING_MAX, sizeof *z->pending);
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

/* Decides whether a denial of key is logged now, returning the number of
 * denials of that key suppressed since it was last logged (or -1 to
 * suppress this one). */
static int64_t throttle(struct zap *z, const uint8_t *key, size_t key_len)
{
    int64_t now = cn_mono_ms();
    uint8_t k[CASENET_CURVE_KEY_BYTES] = {0};
    memcpy(k, key, key_len < sizeof k ? key_len : sizeof k);
    struct zap_slot *oldest = &z->slots[0];
    for (size_t i = 0; i < ZAP_THROTTLE_SLOTS; i++) {
        struct zap_slot *sl = &z->slots[i];
        if (sl->last_ms && memcmp(sl->key, k, sizeof k) == 0) {
            if (now - sl->last_ms < ZAP_THROTTLE_MS) {
                sl->suppressed++;
                return -1;
            }
            int64_t n = (int64_t)sl->suppressed;
            sl->suppressed = 0;
            sl->last_ms = now;
            return n;
        }
        if (sl->last_ms < oldest->last_ms)
            oldest = sl;
    }
    memcpy(oldest->key, k, sizeof k);
    oldest->last_ms = now;
    oldest->suppressed = 0;
    return 0;
}

static void deny(struct zap *z, const char *address, const uint8_t *key, size_t key_len,
                 const char *why)
{
    int64_t suppressed = throttle(z, key, key_len);
    if (suppressed < 0)
        return;
    const char *hex = log_hex(key, key_len);
    log_event(LOG_WARN, "auth_denied", "address", address, "curve_key", hex, "reason", why,
              "suppressed", log_u64((uint64_t)suppressed), NULL);
    if (z->n_pending >= ZAP_PENDING_MAX) {
        z->dropped++;
        return;
    }
    struct zap_denial *d = &z->pending[z->n_pending++];
    snprintf(d->address, sizeof d->address, "%s", address);
    snprintf(d->detail, sizeof d->detail, "curve_key=%s reason=\"%s\" suppressed=%lld", hex, why,
             (long long)suppressed);
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

int zap_handle(struct zap *z, const casenet_directory *dir)
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
        if (!domain_ok) {
            deny(z, address, key, CASENET_CURVE_KEY_BYTES, "wrong ZAP domain");
            (void)send_reply(z->rep, f[1], len[1], "400", "wrong domain", "");
        } else if (!dir || casenet_directory_find_curve(dir, key, &m) != CASENET_OK) {
            deny(z, address, key, CASENET_CURVE_KEY_BYTES, "key not in the directory");
            (void)send_reply(z->rep, f[1], len[1], "400", "unknown key", "");
        } else if (m.status != CASENET_MEMBER_ACTIVE) {
            char why[128];
            snprintf(why, sizeof why, "member %s is %s", m.id,
                     m.status == CASENET_MEMBER_REVOKED ? "revoked" : "suspended");
            deny(z, address, key, CASENET_CURVE_KEY_BYTES, why);
            (void)send_reply(z->rep, f[1], len[1], "400", "member not active", "");
        } else if (!cn_directory_has_curve_key(dir, m.id, m.curve_key_id, cn_now_ms())) {
            /* The directory was parsed while the key was valid: its window
             * is checked again now, at every handshake. */
            char why[128];
            snprintf(why, sizeof why, "key %s of member %s is outside its validity", m.curve_key_id,
                     m.id);
            deny(z, address, key, CASENET_CURVE_KEY_BYTES, why);
            (void)send_reply(z->rep, f[1], len[1], "400", "key not valid now", "");
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
        rc = audit_auth_denied(s, now_ms, z->pending[i].address, z->pending[i].detail, NULL);
    z->n_pending = 0;
    if (z->dropped) {
        log_event(LOG_WARN, "auth_denied_dropped", "count", log_u64(z->dropped), NULL);
        z->dropped = 0;
    }
    return rc;
}
