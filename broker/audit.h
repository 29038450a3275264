/*
 * audit.h - the broker's audit events: builds each AuditEvent protobuf,
 * serialises it with the index the store assigns (the index is part of the
 * hashed bytes) and appends those exact bytes through the store.
 *
 * Every function here runs inside the batch transaction (store "in batch"):
 * an event is durable exactly when the batch commits. Each returns the
 * store's casenet_err (CASENET_EUNAVAIL when the store failed) and, when
 * index is not NULL, the event's index. Borrowed arguments only.
 */
#ifndef BROKER_AUDIT_H
#define BROKER_AUDIT_H

#include "casenet.h"
#include "store.h"

#include <stdint.h>

/* SUBMITTED: actor = sender; parties = sender + recipients. Appended after
 * the message row (store.h audit_append: the store then indexes the event by
 * the stored message rather than by its random id). */
int audit_submitted(struct store *s, int64_t now_ms, const casenet_message_info *info,
                    uint32_t size, uint64_t directory_version, uint64_t *index);

/* REJECTED: a Submit refused with err (a casenet_err) and detail. info is
 * what was learnt of the envelope before it was refused (NULL when it did
 * not parse); hash is the SHA-256 of the bytes received (may be NULL). */
int audit_rejected(struct store *s, int64_t now_ms, const char *actor,
                   const casenet_message_info *info, const uint8_t *hash, uint32_t size, int err,
                   const char *detail, uint64_t *index);

/* FETCHED: actor = the recipient; parties = sender + recipient. */
int audit_fetched(struct store *s, int64_t now_ms, const char *actor, const struct store_message *m,
                  uint64_t *index);

/* RECEIPT: actor = the receipt's signer; parties = sender + signer. */
int audit_receipt(struct store *s, int64_t now_ms, const casenet_receipt *r,
                  const struct store_message *m, uint64_t *index);

/* AUTH_DENIED: a CURVE key refused by ZAP. detail names the key and the
 * reason; address (the peer's IP address) is never written to the log: it
 * belongs in the operator's log only, which has a retention (PROTOCOL.md
 * §10.1). NULL for a summary of many
 * denials, whose detail is the whole text. No parties (coordinators). */
int audit_auth_denied(struct store *s, int64_t now_ms, const char *address, const char *detail,
                      uint64_t *index);

/* DIRECTORY_PUBLISHED: actor = who published it ("" for the operator:
 * start-up or SIGHUP). */
int audit_directory(struct store *s, int64_t now_ms, const char *actor, uint64_t version,
                    const char *detail, uint64_t *index);

/* ESCALATED: deadline kind (proto DeadlineKind: deliver or accept) of
 * recipient's copy of m was breached; actor "" (the broker); parties = the
 * sender and recipient; message fields of m (message_status keeps exercise
 * and test apart); detail = "deadline=KIND recipient=ID due_at_ms=N
 * notice=HEX" (notice "-" when none could be sealed). */
int audit_escalated(struct store *s, int64_t now_ms, const struct store_message *m,
                    const char *recipient, int kind, int64_t due_ms, const uint8_t *notice_id,
                    uint64_t *index);

/* ESCALATED, for the summary of sender's breaches beyond its escalation
 * budget (deadlines.h): m is the last of them; parties = the sender;
 * detail = "summary sender=ID summarized=N period_start_ms=N notice=HEX"
 * (notice "-" when none could be sealed). */
int audit_escalation_summary(struct store *s, int64_t now_ms, const struct store_message *m,
                             uint32_t summarized, int64_t period_start_ms, const uint8_t *notice_id,
                             uint64_t *index);

/* DEAD_LETTERED: m expired before it was delivered to the n recipients;
 * actor ""; parties = the sender and those recipients; detail =
 * "expires_at_ms=N recipients=A,B notice=HEX". */
int audit_dead_lettered(struct store *s, int64_t now_ms, const struct store_message *m,
                        const char *const *recipients, size_t n, const uint8_t *notice_id,
                        uint64_t *index);

/* BROKER_START / BROKER_STOP (kind is the proto AuditKind). */
int audit_broker(struct store *s, int64_t now_ms, int kind, uint64_t directory_version,
                 const char *detail, uint64_t *index);

/* LOG_RESTORED: the first event of a new epoch after a restore (restore.h,
 * PROTOCOL.md §10.1); actor "", no parties (coordinators). previous_size > 0
 * names the newest head of the log before the restore (previous_root: 32
 * bytes, and its time); 0 when the operator proved none. */
int audit_log_restored(struct store *s, int64_t now_ms, uint64_t directory_version,
                       uint64_t previous_size, const uint8_t *previous_root,
                       int64_t previous_time_ms, const char *detail, uint64_t *index);

/* AUDIT_QUERIED: a member read the audit log (a query or an export).
 * actor = parties = that member; message_id and case_ref (NULL when the
 * query did not name one, else 16 bytes) are the filters it used, so that a
 * query about a message is found with the message; detail describes the
 * request. */
int audit_queried(struct store *s, int64_t now_ms, const char *actor, const uint8_t *message_id,
                  const uint8_t *case_ref, const char *detail, uint64_t *index);

/* BLOB_STORED (the last chunk of a blob arrived: actor = owner) or
 * BLOB_FETCHED (actor fetched the last chunk of owner's blob); kind is the
 * proto AuditKind; parties = actor and owner; size = the blob's bytes. No
 * content: the blob id and its size only. */
int audit_blob(struct store *s, int64_t now_ms, int kind, const char *actor, const char *owner,
               const uint8_t blob_id[CASENET_BLOB_ID_BYTES], uint64_t size);

#endif
