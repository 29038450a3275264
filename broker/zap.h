/*
 * zap.h - the broker's ZAP handler (RFC 27/ZAP 1.0): a REP socket on
 * inproc://zeromq.zap.01 that admits a CURVE client only when its public key
 * is the CURVE key of an active member of the current directory and valid at
 * the handshake (its valid_until checked now, not when the directory was
 * parsed), and sets the connection's User-Id to that member id, and its
 * routing id to one the broker chose (never the peer's). Everyone else gets
 * "400".
 *
 * It must be bound before the ROUTER binds (libzmq asks it during every
 * handshake) and is polled by the broker loop in the same thread.
 */
#ifndef BROKER_ZAP_H
#define BROKER_ZAP_H

#include "casenet.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN   "casenet"
/* The audit log's share of refused handshakes (PROTOCOL.md §7): an
 * AUTH_DENIED event of its own at most once per ZAP_THROTTLE_MS per key and
 * per source address, and at most ZAP_EVENTS_PER_PERIOD per ZAP_SUMMARY_MS
 * in all; every other denial is counted into one summary event per period.
 * Strangers with a fresh key per handshake grow the log by a bounded amount. */
#define ZAP_THROTTLE_MS       60000
#define ZAP_THROTTLE_SLOTS    128
#define ZAP_SUMMARY_MS        60000
#define ZAP_EVENTS_PER_PERIOD 16
/* Routing ids: the broker chooses every connection's (section 7 of
 * PROTOCOL.md): the prefix byte and 16 random bytes, unguessable, so that
 * no peer can take or pre-empt another connection's id. */
#define ZAP_ROUTING_ID_PREFIX 'c'
#define ZAP_ROUTING_ID_BYTES  17
#define ZAP_LIBZMQ_ID_BYTES   5 /* libzmq's own: a zero byte and a counter */
#define ZAP_METADATA_BYTES    (1 + 8 + 4 + ZAP_ROUTING_ID_BYTES)

struct zap;

/* Creates and binds the handler's REP socket in ctx. CASENET_EIO when the
 * endpoint cannot be bound (another handler in this context). */
int zap_open(void *ctx, struct zap **out);
/* Closes the socket. Accepts NULL. */
void zap_close(struct zap *z);
/* The REP socket, for zmq_poll. Borrowed. */
void *zap_socket(struct zap *z);

/* Asked once a key is found to be an active member's: NULL admits the
 * handshake; a reason (borrowed until the next call) refuses it like an
 * unknown key. address is the peer's IP address. */
typedef const char *(*zap_admit_fn)(void *arg, const char *member, const char *address);

/* Answers every pending ZAP request without blocking, looking keys up in
 * dir (borrowed; may be NULL: then everyone is refused) and asking admit
 * (may be NULL) about every active member's handshake. Every denial is
 * logged; it is queued for the audit log as an event of its own or counted
 * into the period's summary (see ZAP_THROTTLE_MS). Malformed requests get
 * "500". Returns the number of requests answered. */
int zap_handle(struct zap *z, const casenet_directory *dir, zap_admit_fn admit, void *arg);

/* True when a request's routing id is one the broker assigned: the ZAP
 * handler's (ZAP_ROUTING_ID_PREFIX, ZAP_ROUTING_ID_BYTES) or libzmq's own
 * (used when the handshake's ZAP reply was read before the peer's metadata;
 * the broker seeds libzmq's counter at random, server_open). Anything else
 * was announced by the peer (ZMQ_ROUTING_ID) and is refused by the server. */
bool zap_routing_id_assigned(const uint8_t *rid, size_t len);

/* Inside the batch transaction: appends an AUTH_DENIED event for every
 * queued denial, then forgets them. Returns the store's error; the queue is
 * emptied either way (denials are also on stderr). */
int zap_flush_audit(struct zap *z, struct store *s, int64_t now_ms);
/* Closes the summary period when it is ZAP_SUMMARY_MS old (or at once
 * with final, when the broker stops): queues one AUTH_DENIED summary event
 * (denials, distinct keys, distinct addresses, period) if any denial was
 * counted into it. now_mono_ms is cn_mono_ms(). */
void zap_summarize(struct zap *z, int64_t now_mono_ms, bool final);
/* True when denials wait for zap_flush_audit. */
bool zap_has_pending(const struct zap *z);

#endif
