/*
 * deadlines.h - deadlines, escalation and dead letters.
 *
 * At submit, each recipient's row gets its deadlines from the policy of the
 * message's urgency, counted from the broker's received_at (the intake time
 * inside the payload is invisible to the broker): deliver (every kind a
 * member sends) and accept (kinds that ask the recipient to act: referral,
 * info-request, takedown-request), plus expire when the header has an
 * expires_at. A deadline's due time is fixed when it is armed: a later
 * policy change applies to later messages only.
 *
 * The loop's timer settles each due deadline exactly once (store
 * deadline_settle refuses a second time, across restarts):
 *  - deliver: met when the recipient's first receipt (delivered or later)
 *    was recorded by the due time; accept: met when its accepted or declined
 *    receipt was. A row that died first is void.
 *  - otherwise breached, even when the receipt came after the due time but
 *    before the timer looked: one ESCALATION notice, sealed and signed by the
 *    broker with a BrokerNotice payload naming the message, addressed to the
 *    sender and every active coordinator, stored and pushed like any message
 *    (readable with `casenet read`), and one ESCALATED audit event. Exercise
 *    and test messages escalate too; the notice's header status and the
 *    event's message_status say which. A sender's escalation budget
 *    (member_limits.h) bounds the notices: beyond it a breach is audited
 *    without a notice and counted into one ESCALATION_SUMMARY notice when
 *    the sender's period ends. A member whose inbox is at its backlog cap
 *    is left out of a notice's recipients.
 *  - expire: if the row is still queued or fetched, every undelivered row of
 *    the message becomes DEAD, the sender gets one DEAD_LETTER notice listing
 *    those recipients, and a DEAD_LETTERED event is appended.
 */
#ifndef BROKER_DEADLINES_H
#define BROKER_DEADLINES_H

#include "batch.h"
#include "broker.h"

#include <stddef.h>
#include <stdint.h>

/* In batch. Arms the deadlines of row (a message row just inserted, with its
 * seq) from b->policy; expires_at_ms is the message's (0 = never). Broker
 * notices and receipt rows get none. Returns the store's error. */
int deadlines_arm(struct broker *b, const struct store_inbox_row *row, int64_t expires_at_ms);

/* In batch (the caller begins, commits, then pushes bt's notices). Settles
 * up to limit deadlines due at now_ms, earliest first; *settled receives how
 * many (equal to limit: more may be due). Returns CASENET_EUNAVAIL (and sets
 * bt->store_failed) when the store failed, CASENET_ENOMEM: the caller rolls
 * back and retries at the next tick. A notice that cannot be sealed (the
 * broker's key missing from the directory) is logged; the deadline is still
 * settled and audited. */
int deadlines_run(struct broker *b, struct batch *bt, int64_t now_ms, uint32_t limit,
                  size_t *settled);

#endif
