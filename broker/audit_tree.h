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

#include "request.h"

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

/* The four audit requests, each a req_handler_fn (request.h) run by the
 * dispatcher inside the request's savepoint: on success the reply is packed
 * (req_reply); on failure they return the casenet_err to answer with and a
 * message for the client (req_fail), and set the batch's store_failed when
 * the store failed. */
int audit_tree_head(struct req *r, const Casenet__V1__Request *q);
int audit_tree_query(struct req *r, const Casenet__V1__Request *q);
int audit_tree_proof(struct req *r, const Casenet__V1__Request *q);
int audit_tree_export(struct req *r, const Casenet__V1__Request *q);

#endif
