/*
 * audit_tree.h - the verifiable audit log on the wire (PROTOCOL.md §10.2 to
 * §10.4): signed tree heads, written by the loop's timer when the log grew
 * and once more at shutdown, and the handlers of GetTreeHead, AuditQuery,
 * AuditProof and AuditExport.
 *
 * Who may read what (least visibility): any member gets the latest head and
 * consistency proofs (subtree hashes only); a coordinator (directory role
 * "coordinator") queries every event, gets any inclusion proof and exports
 * the log; any other member queries only events it is actor or party of
 * and gets inclusion proofs only for those. AuditQuery and AuditExport
 * append an AUDIT_QUERIED event in the same transaction as the read.
 */
#ifndef BROKER_AUDIT_TREE_H
#define BROKER_AUDIT_TREE_H

#include "broker.h"
#include "casenet.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How often the loop looks whether a new head is due ("every few seconds
 * when the log grew"). */
#define AUDIT_HEAD_INTERVAL_MS 2000

/* Signs a tree head for the log's committed size and root, when the log is
 * not empty and larger than the latest stored head, and stores it in its
 * own transaction (outside any batch). Its time is the broker's clock, never
 * below the previous head's. CASENET_OK also when no head was due; else the
 * store's error or CASENET_EINVAL when the directory gives no valid origin
 * (logged). */
int audit_tree_sign_head(struct broker *b);

/* True when body_case (a Casenet__V1__Request__BodyCase) is one of the four
 * audit requests handled here. */
bool audit_tree_handles(int body_case);

/* Handles one audit request for member inside the batch transaction (the
 * dispatcher's savepoint). On success packs resp (whose protocol version
 * and request id are set) with the reply into *out. On failure returns the
 * casenet_err to answer with and a message for the client in msg; sets
 * bt->store_failed when the store failed. */
int audit_tree_request(struct broker *b, struct batch *bt, const char *member, int64_t now_ms,
                       const Casenet__V1__Request *req, Casenet__V1__Response *resp,
                       casenet_buf *out, char *msg, size_t msglen);

#endif
