/*
 * lifecycle.h - the lifecycle queries (PROTOCOL.md §8.1): GetStatus (one
 * message's per-recipient timeline with the signed receipts and deadlines),
 * ListSent (a member's own submissions and where each stands) and
 * ListOverdue (breached deadlines still not taken; coordinators only).
 *
 * Each is a req_handler_fn (request.h): it runs inside the request's
 * savepoint (read-only), answers with req_reply, or returns a casenet_err
 * with a message for the client (req_fail). A store failure returns
 * CASENET_EUNAVAIL and sets the batch's store_failed.
 *
 * Visibility (least visibility, and never a confirmation that a message
 * exists to someone not party to it): GetStatus shows every recipient to the
 * message's sender and to coordinators, only its own row to a recipient, and
 * NOT_FOUND to anyone else; ListSent lists only the caller's own
 * submissions; ListOverdue is FORBIDDEN to non-coordinators.
 */
#ifndef BROKER_LIFECYCLE_H
#define BROKER_LIFECYCLE_H

#include "request.h"

int lifecycle_get_status(struct req *r, const Casenet__V1__Request *q);
int lifecycle_list_sent(struct req *r, const Casenet__V1__Request *q);
int lifecycle_list_overdue(struct req *r, const Casenet__V1__Request *q);

#endif
