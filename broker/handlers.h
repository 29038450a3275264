/*
 * handlers.h - the broker's request handlers for the directory, Submit and
 * the inbox: one function per Request kind, each a req_handler_fn
 * (request.h) that the dispatcher's table names. Each runs inside the batch
 * transaction (in its own savepoint but for Submit), answers with
 * req_reply, or returns the casenet_err to answer with after req_fail
 * wrote a message that says what to do. Lifecycle queries are in
 * lifecycle.h, audit requests in audit_tree.h.
 */
#ifndef BROKER_HANDLERS_H
#define BROKER_HANDLERS_H

#include "request.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* handlers_directory.c: HelloReply, the signed directory, PublishReply,
 * SubscribeReply (sets r->subscribe). */
int handlers_hello(struct req *r, const Casenet__V1__Request *q);
int handlers_get_directory(struct req *r, const Casenet__V1__Request *q);
int handlers_publish_directory(struct req *r, const Casenet__V1__Request *q);
int handlers_subscribe(struct req *r, const Casenet__V1__Request *q);

/* handlers_submit.c: admission (size, signature, sender, roles, clock,
 * expiry), duplicates (a resend answered with its receipt), room (directory
 * in force, backlogs, quota), then the writes (message row, SUBMITTED
 * event, inbox rows with deadlines, the receipt signed before the commit). */
int handlers_submit(struct req *r, const Casenet__V1__Request *q);

/* handlers_inbox.c: ListInbox, Fetch, SendReceipt. */
int handlers_list_inbox(struct req *r, const Casenet__V1__Request *q);
int handlers_fetch(struct req *r, const Casenet__V1__Request *q);
int handlers_receipt(struct req *r, const Casenet__V1__Request *q);

/* Inserts an inbox row (in batch) and queues its notice in r->bt for after
 * the commit. CONFLICT when the recipient already holds the entry, else
 * the store's error through req_store_fail, CASENET_ENOMEM. */
int handlers_inbox_add(struct req *r, struct store_inbox_row *row);

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
 * msg. *version receives its version. Called by PublishDirectory and by the
 * loop on SIGHUP. */
int handlers_directory_accept(struct broker *b, struct batch *bt, const uint8_t *bytes, size_t len,
                              const char *actor, uint64_t *version, char *msg, size_t msglen);

#endif
