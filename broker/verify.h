/*
 * verify.h - checks Submit envelopes on worker threads ahead of their batch,
 * so that Ed25519 verification and the envelope hashes (a third of the
 * loop's time per Submit, measured) run beside the loop's database work
 * instead of on the loop thread.
 *
 * The loop prepares a job for each Submit as it receives it, and hands it to
 * the pool at once (verify_pool_submit): while the loop runs a batch's
 * transaction and commit, the workers check the envelopes of the requests
 * waiting for the next one. When the loop reaches the request in its batch
 * it waits for that job only (verify_pool_wait), or, when no worker has
 * taken it yet, verifies it itself rather than wait for one to wake. The handler then takes the
 * result for the exact bytes it is about to check (handlers_submit.c
 * compares them), so what a handler decides is the same as if it had
 * verified the envelope itself.
 *
 * The directory is the broker's current one when the job is submitted; the
 * loop cancels and resubmits the jobs still waiting when it swaps in a new
 * directory (a directory published in a batch is swapped in only after
 * commit), and frees the old one only once no worker uses it.
 *
 * Threads: every function is called by the loop thread only; the pool's
 * workers touch a job only between submit and the end of wait or cancel.
 */
#ifndef BROKER_VERIFY_H
#define BROKER_VERIFY_H

#include "batch.h"
#include "casenet.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A job's state, under the pool's lock. */
enum verify_state { VERIFY_IDLE, VERIFY_QUEUED, VERIFY_RUNNING, VERIFY_DONE };

/* One Submit's envelope check. Zero-initialise; the memory must stay put
 * from verify_pool_submit to the end of verify_pool_wait / cancel. */
struct verify_job {
    Casenet__V1__Request *req;    /* the unpacked request frame (owned) */
    struct preverified result;    /* result.envelope points into req */
    const casenet_directory *dir; /* borrowed from submit */
    enum verify_state state;
    struct verify_job *prev, *next; /* the pool's queue */
};

struct verify_pool;

/* Starts threads workers (0: no worker; verify_pool_wait verifies on the
 * calling thread). CASENET_ENOMEM, or CASENET_EIO when a thread cannot be
 * created. */
int verify_pool_new(unsigned threads, struct verify_pool **out);
/* Stops and joins the workers (a job being verified is finished first; jobs
 * still queued are left as they are, for verify_job_clear). Accepts NULL. */
void verify_pool_free(struct verify_pool *p);
/* The number of workers. */
unsigned verify_pool_threads(const struct verify_pool *p);

/* Unpacks the request frame (borrowed) into an idle, cleared job j and, for
 * a Submit envelope of at most max_envelope bytes, selects it: points
 * j->result.envelope at the envelope and returns true. Otherwise (not a
 * Submit, unparsable, oversized: its handler does all the checking, or
 * refuses it before verifying) returns false; the caller clears j. */
bool verify_job_prepare(struct verify_job *j, const uint8_t *frame, size_t len,
                        uint32_t max_envelope);

/* Queues a selected, idle job, to be verified against dir (borrowed: it must
 * outlive the job's wait or cancel), in submission order. */
void verify_pool_submit(struct verify_pool *p, const casenet_directory *dir, struct verify_job *j);
/* Returns once the queued job j is verified (j->result.rc and info set):
 * by a worker that took it, or here on the calling thread when none has. */
void verify_pool_wait(struct verify_pool *p, struct verify_job *j);
/* Takes j out of the queue if no worker took it yet (the job is idle again,
 * unverified), or waits until its worker is done. No-op for an idle or
 * verified job. After it no worker touches j. */
void verify_pool_cancel(struct verify_pool *p, struct verify_job *j);

/* A parallel loop beside the jobs, for work the loop thread must finish
 * before its commit (the batch's receipt signatures, server.c): fn(arg, i)
 * for every i below a count the caller raises as items become ready
 * (verify_pool_for_grow), run by the workers ahead of queued jobs. At most
 * one loop at a time; items published with grow must not move or change
 * until verify_pool_for_end, which runs on the calling thread what no worker
 * took (everything when the pool has none) and returns once every fn has
 * returned. fn must not call the pool. */
void verify_pool_for_begin(struct verify_pool *p, void (*fn)(void *arg, size_t i), void *arg);
/* Makes items [0, n) available (n never decreases within a loop). */
void verify_pool_for_grow(struct verify_pool *p, size_t n);
void verify_pool_for_end(struct verify_pool *p);

/* Drops the result of a verified job (idle, still selected): to submit it
 * again, e.g. against a new directory. Not for a queued or running job. */
void verify_job_reset(struct verify_job *j);
/* Releases what a job holds (the unpacked request, an info not taken by a
 * handler) and zeroes it. Not for a queued or running job. Accepts NULL. */
void verify_job_clear(struct verify_job *j);

#endif
