/*
 * zap.h - the broker's ZAP handler (RFC 27/ZAP 1.0): a REP socket on
 * inproc://zeromq.zap.01 that admits a CURVE client only when its public key
 * is the CURVE key of an active member of the current directory and valid at
 * the handshake (its valid_until checked now, not when the directory was
 * parsed), and sets the connection's User-Id to that member id. Everyone else
 * gets "400".
 *
 * It must be bound before the ROUTER binds (libzmq asks it during every
 * handshake) and is polled by the broker loop in the same thread.
 */
#ifndef BROKER_ZAP_H
#define BROKER_ZAP_H

#include "casenet.h"
#include "store.h"

#include <stdint.h>

#define ZAP_ENDPOINT       "inproc://zeromq.zap.01"
#define ZAP_DOMAIN         "casenet"
#define ZAP_THROTTLE_MS    60000 /* one logged denial per key per minute */
#define ZAP_THROTTLE_SLOTS 128

struct zap;

/* Creates and binds the handler's REP socket in ctx. CASENET_EIO when the
 * endpoint cannot be bound (another handler in this context). */
int zap_open(void *ctx, struct zap **out);
/* Closes the socket. Accepts NULL. */
void zap_close(struct zap *z);
/* The REP socket, for zmq_poll. Borrowed. */
void *zap_socket(struct zap *z);

/* Answers every pending ZAP request without blocking, looking keys up in
 * dir (borrowed; may be NULL: then everyone is refused). Denials are logged
 * (throttled per key) and queued for the audit log. Malformed requests get
 * "500". Returns the number of requests answered. */
int zap_handle(struct zap *z, const casenet_directory *dir);

/* Inside the batch transaction: appends an AUTH_DENIED event for every
 * queued denial, then forgets them. Returns the store's error; the queue is
 * emptied either way (denials are also on stderr). */
int zap_flush_audit(struct zap *z, struct store *s, int64_t now_ms);
/* True when denials wait for zap_flush_audit. */
bool zap_has_pending(const struct zap *z);

#endif
