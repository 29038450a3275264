/*
 * handlers.h - the broker's request handlers: one function per Request kind,
 * behind one dispatcher that unpacks a frame, checks the protocol version,
 * runs the handler in a savepoint of the batch transaction and packs the
 * Response (a reply or an error with a stable code and a message that says
 * what to do).
 *
 * Attribution: `member` is always the connection's ZAP User-Id, never the
 * routing id and never a name the request claims.
 */
#ifndef BROKER_HANDLERS_H
#define BROKER_HANDLERS_H

#include "broker.h"
#include "casenet.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Handles one request frame inside the batch transaction (the caller has
 * called begin). Always produces a packed Response in *reply (owned by the
 * caller) unless it returns CASENET_ENOMEM. Sets bt->store_failed when the
 * store failed (the batch must then be rolled back and every request answered
 * UNAVAILABLE), queues inbox notices in bt, and sets *subscribe when the
 * request was a successful Subscribe (the caller records the connection).
 * The reply is only to be sent after the batch commits: a Submit's receipt
 * exists only for committed data. */
int handlers_dispatch(struct broker *b, struct batch *bt, const char *member, const uint8_t *frame,
                      size_t len, casenet_buf *reply, bool *subscribe);

/* Packs an error Response for request_id (0 when unknown) with the wire code
 * of err (a casenet_err) and message. CASENET_ENOMEM. */
int handlers_error_reply(uint64_t request_id, int err, const char *message, casenet_buf *out);
/* The same with a retry-after for RATE_LIMITED and UNAVAILABLE answers (0 =
 * the default of 1000 ms). */
int handlers_error_reply_retry(uint64_t request_id, int err, const char *message,
                               uint32_t retry_after_ms, casenet_buf *out);

/* Accepts a signed directory (inside the batch transaction): verifies it
 * with the pinned authority key, refuses an expired one (CASENET_EEXPIRED),
 * one not higher than the current or already pending version
 * (CASENET_EROLLBACK), a bad signature (CASENET_EBADSIG), one that
 * re-activates a member the current one revokes or changes the audit
 * network (CASENET_ECONFLICT, cn_directory_check_successor) or one that does
 * not list this broker with its keys (CASENET_EBADREQ); then writes it atomically
 * to the data directory, records it in the store, appends a
 * DIRECTORY_PUBLISHED event by actor ("" for the operator) and leaves it in
 * bt->new_dir for the loop to swap in after commit. A reason is written to
 * msg. *version receives its version. */
int handlers_directory_accept(struct broker *b, struct batch *bt, const uint8_t *bytes, size_t len,
                              const char *actor, uint64_t *version, char *msg, size_t msglen);

/* Packs r into out (malloc'd). CASENET_ENOMEM. */
int handlers_pack(Casenet__V1__Response *r, casenet_buf *out);

/* Queues a Notice of the new inbox row (already inserted) for its
 * recipient's subscribed connections, pushed after the batch commits.
 * CASENET_ENOMEM. */
int handlers_queue_notice(struct batch *bt, const struct store_inbox_row *row);

/* The wire ErrorCode for a casenet_err: 1..12 and 14 (DIRECTORY_EXPIRED)
 * map to themselves, expired
 * directory and invalid input to BAD_REQUEST, rollback to CONFLICT, every
 * local failure to UNAVAILABLE. */
int handlers_wire_code(int err);

#endif
