/*
 * restore.h - the operator's decision after `casenetd restore FILE`
 * (backup.h): how the restored audit log goes on, so that the broker never
 * signs an index again with other contents (PROTOCOL.md §10.1, LOG_RESTORED;
 * docs/operations.md, "Backup and restore").
 *
 * The restored log has N events. The newest head a coordinator holds
 * (--last-head: the home's audit.state or a checkpoint) has size M, signed
 * by this broker:
 *   - M <= N: its root must equal the restored tree's root at M; nothing was
 *     lost and the marker is cleared;
 *   - --replay EXPORT: the events N..M-1 of a coordinator's export file are
 *     re-appended byte for byte; the root at M must equal the head's, which
 *     is then stored; every deliver/accept deadline whose ESCALATED event is
 *     in that tail is settled as breached with its notice, and every row a
 *     DEAD_LETTERED event of the tail names goes dead with its expiry
 *     deadline settled with that notice (neither is sent again). No epoch;
 *   - --new-epoch: every pending deadline due at or before the previous
 *     head's time (without --last-head: now) is settled without a new
 *     notice (its escalation or dead letter may have gone out after the
 *     backup): deliver/accept ones as breached; expiry ones by the dead
 *     letter, the row dead and the deadline breached, or met when the row
 *     was taken. Then a LOG_RESTORED event at index N names the previous
 *     head (size, root, time; none without --last-head) and a head is
 *     signed over it.
 * Each path clears the restore marker last; a path whose events committed
 * but whose marker stayed (a crash in between) is recognised by the log
 * being longer than the marker's size, and only clears it.
 */
#ifndef BROKER_RESTORE_H
#define BROKER_RESTORE_H

#include "broker.h"

#include <stdbool.h>

struct restore_choice {
    bool new_epoch;
    const char *replay;    /* export file, or NULL */
    const char *last_head; /* audit.state or checkpoint file, or NULL */
};

/* Carries out c on b (store open, directory chosen, keys loaded; not
 * serving). Prints what it did or what is wrong; returns the exit code. */
int restore_resolve(struct broker *b, const struct restore_choice *c);

#endif
