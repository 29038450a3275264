/* verify.c - the verification pool: workers that check the Submit
 * envelopes of a batch in parallel with the loop thread (see verify.h). */
#include "verify.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct verify_pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a batch to share, or stop */
    pthread_cond_t done; /* the last job of the batch finished */
    pthread_t *threads;
    unsigned n_threads;
    bool stop;
    /* The batch being shared, under mu. */
    const casenet_directory *dir;
    struct verify_job *jobs;
    size_t n_jobs, next, finished;
};

void verify_job_prepare(struct verify_job *j, uint32_t max_envelope)
{
    if (!j->frame)
        return; /* answered on receipt: never dispatched */
    j->req = casenet__v1__request__unpack(NULL, j->len, j->frame);
    if (!j->req || j->req->body_case != CASENET__V1__REQUEST__BODY_SUBMIT || !j->req->submit)
        return;
    const ProtobufCBinaryData *e = &j->req->submit->envelope;
    if (!e->data || e->len > max_envelope)
        return; /* the handler refuses it before verifying */
    j->result.envelope = e->data;
    j->result.len = e->len;
}

static void run_job(const casenet_directory *dir, struct verify_job *j)
{
    if (j->result.envelope)
        j->result.rc =
            casenet_envelope_verify(dir, j->result.envelope, j->result.len, &j->result.info);
}

/* Takes jobs until none is left; called and returns with mu held. */
static void take_jobs(struct verify_pool *p)
{
    while (p->jobs && p->next < p->n_jobs) {
        struct verify_job *j = &p->jobs[p->next++];
        const casenet_directory *dir = p->dir;
        pthread_mutex_unlock(&p->mu);
        run_job(dir, j);
        pthread_mutex_lock(&p->mu);
        if (++p->finished == p->n_jobs)
            pthread_cond_signal(&p->done);
    }
}

static void *worker(void *arg)
{
    struct verify_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (!p->jobs || p->next >= p->n_jobs) {
            pthread_cond_wait(&p->work, &p->mu);
            continue;
        }
        take_jobs(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int verify_pool_new(unsigned threads, struct verify_pool **out)
{
    struct verify_pool *p = calloc(1, sizeof *p);
    if (!p)
        return CASENET_ENOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return CASENET_ENOMEM;
    }
    if (pthread_cond_init(&p->work, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return CASENET_ENOMEM;
    }
    if (pthread_cond_init(&p->done, NULL) != 0) {
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return CASENET_ENOMEM;
    }
    if (threads) {
        p->threads = calloc(threads, sizeof *p->threads);
        if (!p->threads) {
            verify_pool_free(p);
            return CASENET_ENOMEM;
        }
    }
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            verify_pool_free(p);
            return CASENET_EIO;
        }
        p->n_threads = i + 1;
    }
    *out = p;
    return CASENET_OK;
}

void verify_pool_free(struct verify_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void verify_pool_run(struct verify_pool *p, const casenet_directory *dir, struct verify_job *jobs,
                     size_t n)
{
    size_t selected = 0;
    for (size_t i = 0; i < n; i++)
        selected += jobs[i].result.envelope != NULL;
    if (selected == 0)
        return;
    if (p->n_threads == 0 || selected == 1) {
        /* Nothing to share: no hand-off (and its latency) for a lone
         * Submit. */
        for (size_t i = 0; i < n; i++)
            run_job(dir, &jobs[i]);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->dir = dir;
    p->jobs = jobs;
    p->n_jobs = n;
    p->next = 0;
    p->finished = 0;
    pthread_cond_broadcast(&p->work);
    take_jobs(p);
    while (p->finished < p->n_jobs)
        pthread_cond_wait(&p->done, &p->mu);
    p->jobs = NULL;
    p->n_jobs = 0;
    pthread_mutex_unlock(&p->mu);
}

void verify_job_clear(struct verify_job *j)
{
    if (!j)
        return;
    if (j->result.envelope && j->result.rc == CASENET_OK)
        casenet_message_info_clear(&j->result.info);
    if (j->req)
        casenet__v1__request__free_unpacked(j->req, NULL);
    memset(j, 0, sizeof *j);
}
