/*
 * lifecycle.h - the lifecycle queries (PROTOCOL.md §8.1): GetStatus (one
 * message's per-recipient timeline with the signed receipts and deadlines),
 * ListSent (a member's own submissions and where each stands) and
 * ListOverdue (breached deadlines still not taken; coordinators only).
 *
 * Each handler runs inside the request's savepoint (read-only), packs its
 * reply into *out (owned by the caller) with resp's request id, or returns
 * a casenet_err with a message for the client in msg. A store failure
 * returns CASENET_EUNAVAIL and sets bt->store_failed.
 *
 * Visibility (least visibility, and never a confirmation that a message
 * exists to someone not party to it): GetStatus shows every recipient to the
 * message's sender and to coordinators, only its own row to a recipient, and
 * NOT_FOUND to anyone else; ListSent lists only the caller's own
 * submissions; ListOverdue is FORBIDDEN to non-coordinators.
 */
#ifndef BROKER_LIFECYCLE_H
#define BROKER_LIFECYCLE_H

#include "broker.h"
#include "casenet.pb-c.h"

#include <stddef.h>

int lifecycle_get_status(struct broker *b, struct batch *bt, const char *member,
                         const Casenet__V1__GetStatus *req, Casenet__V1__Response *resp,
                         casenet_buf *out, char *msg, size_t msglen);
int lifecycle_list_sent(struct broker *b, struct batch *bt, const char *member,
                        const Casenet__V1__ListSent *req, Casenet__V1__Response *resp,
                        casenet_buf *out, char *msg, size_t msglen);
int lifecycle_list_overdue(struct broker *b, struct batch *bt, const char *member,
                           const Casenet__V1__ListOverdue *req, Casenet__V1__Response *resp,
                           casenet_buf *out, char *msg, size_t msglen);

#endif
