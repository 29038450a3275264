/*
 * store_audit.h - the audit log's bookkeeping over any store backend: the
 * Merkle tree's compact range in memory, its copies per transaction and
 * savepoint, the "torn" state of a transaction that holds a partly written
 * event, and the tree's load (or rebuild) at open. It keeps the log's
 * invariants once for every backend: the tree never runs ahead of the event
 * rows, and no transaction holding a partly written event commits. A
 * backend only stores rows (struct store_audit_ops).
 *
 * Internal to the store: store_handle.c calls these around the backend's
 * transaction operations; the broker calls store_audit_*() (store.h).
 */
#ifndef BROKER_STORE_AUDIT_H
#define BROKER_STORE_AUDIT_H

#include "store.h"

/* Loads the tree of s's audit log from its stored subtrees (popcount(size)
 * reads), completing it from the events first when subtrees or index keys
 * are missing (a store of schema < 3, a tree that cannot be loaded), in one
 * transaction of its own. Outside a transaction. *out is malloc'd (free
 * with store_log_free). CASENET_EUNAVAIL (logged) when events are missing or
 * unreadable; CASENET_ENOMEM. */
CASENET_NODISCARD int store_log_open(struct store *s, struct store_log **out);
/* Accepts NULL. */
void store_log_free(struct store_log *log);

/* Transaction hooks, called by store_handle.c after the backend's operation
 * succeeded (begin, savepoint, release), or with its outcome. */
void store_log_begin(struct store_log *log);
/* Whether commit must be refused: the batch holds a partly written event
 * (logged). */
bool store_log_torn(struct store_log *log);
/* The batch was rolled back or its commit failed: the tree goes back to
 * what it was at begin. */
void store_log_rolled_back(struct store_log *log);
/* Whether another savepoint may open (logged when not). */
bool store_log_can_savepoint(struct store_log *log);
void store_log_savepoint(struct store_log *log);
void store_log_release(struct store_log *log);
/* The request savepoint was rolled back (undone true) or could not be
 * (undone false: its rows stay until the batch's rollback). */
void store_log_rolled_back_to(struct store_log *log, bool undone);

#endif
