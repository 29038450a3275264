/*
 * verify.h - checks the Submit envelopes of a batch on worker threads, with
 * the loop thread, before its handlers run, so that Ed25519 verification and
 * the envelope hashes (a third of the loop's time per Submit, measured) are
 * shared out instead of all falling on the loop.
 *
 * The loop hands every request frame of the batch to verify_pool_run, which
 * returns once each Submit has been checked (the loop thread takes its share
 * of the work). The handler then takes the result for the exact bytes it is
 * about to check (handlers.c compares them), so what a handler decides is
 * the same as if it had verified the envelope itself. The directory used is
 * the broker's current one, as in the handler (a directory published in the
 * batch is swapped in only after commit).
 */
#ifndef BROKER_VERIFY_H
#define BROKER_VERIFY_H

#include "broker.h"
#include "casenet.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* One request frame of the batch and, for a Submit, its envelope's check. */
struct verify_job {
    const uint8_t *frame; /* borrowed: the request as received */
    size_t len;
    Casenet__V1__Request *req; /* the unpacked frame (owned; NULL when unparsable) */
    struct preverified result; /* set when result.envelope is not NULL */
};

struct verify_pool;

/* Starts threads workers (0: the loop thread verifies alone, in
 * verify_pool_run). CASENET_ENOMEM, or CASENET_EIO when a thread cannot be
 * created. */
int verify_pool_new(unsigned threads, struct verify_pool **out);
/* Stops and joins the workers. Accepts NULL. */
void verify_pool_free(struct verify_pool *p);

/* Unpacks j->frame (NULL: nothing to do) and, for a Submit envelope of at
 * most max_envelope bytes, points j->result.envelope at it: the job is then
 * selected for verification. The caller may deselect it (result.envelope =
 * NULL), e.g. for a Submit its handler will refuse before verifying. A job
 * that is not a Submit, or not parsable, is left unselected: its handler
 * does all the checking itself. Runs on the loop thread. */
void verify_job_prepare(struct verify_job *j, uint32_t max_envelope);

/* Verifies each selected job's envelope against dir (borrowed, unchanged
 * meanwhile), on the workers and the calling thread; returns when every one
 * is done. */
void verify_pool_run(struct verify_pool *p, const casenet_directory *dir, struct verify_job *jobs,
                     size_t n);

/* Releases what a job holds (the unpacked request, an info not taken by a
 * handler) and zeroes it. */
void verify_job_clear(struct verify_job *j);

#endif
