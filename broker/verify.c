/* verify.c - the verification pool: workers that check Submit envelopes
 * ahead of their batch, beside the loop thread (see verify.h). */
#include "verify.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct verify_pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job queued, or stop */
    pthread_cond_t done; /* a job finished */
    pthread_t *threads;
    unsigned n_threads;
    bool stop;
    unsigned waiting;               /* loop threads in cond_wait(done): 0 or 1 */
    struct verify_job *head, *tail; /* queued jobs, oldest first; under mu */
    /* The parallel loop (verify_pool_for_*), under mu: items below for_n are
     * ready, below for_next taken, for_done of them finished. */
    void (*for_fn)(void *arg, size_t i);
    void *for_arg;
    size_t for_n, for_next, for_done;
    bool for_ending; /* the loop waits in verify_pool_for_end */
};

bool verify_job_prepare(struct verify_job *j, const uint8_t *frame, size_t len,
                        uint32_t max_envelope)
{
    assert(j->state == VERIFY_IDLE && !j->req);
    j->req = casenet__v1__request__unpack(NULL, len, frame);
    if (!j->req || j->req->body_case != CASENET__V1__REQUEST__BODY_SUBMIT || !j->req->submit)
        return false;
    const ProtobufCBinaryData *e = &j->req->submit->envelope;
    if (!e->data || e->len > max_envelope)
        return false; /* the handler refuses it before verifying */
    j->result.envelope = e->data;
    j->result.len = e->len;
    return true;
}

static void run_job(struct verify_job *j)
{
    j->result.rc =
        casenet_envelope_verify(j->dir, j->result.envelope, j->result.len, &j->result.info);
}

/* Unlinks j from the queue; mu held. */
static void unlink_job(struct verify_pool *p, struct verify_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        p->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        p->tail = j->prev;
    j->prev = j->next = NULL;
}

/* Runs the queued job j with mu held on entry and on return. */
static void run_locked(struct verify_pool *p, struct verify_job *j)
{
    unlink_job(p, j);
    j->state = VERIFY_RUNNING;
    pthread_mutex_unlock(&p->mu);
    run_job(j);
    pthread_mutex_lock(&p->mu);
    j->state = VERIFY_DONE;
    if (p->waiting)
        pthread_cond_broadcast(&p->done);
}

/* Runs the next ready item of the parallel loop with mu held on entry and on
 * return. */
static void run_for_item(struct verify_pool *p)
{
    size_t i = p->for_next++;
    void (*fn)(void *, size_t) = p->for_fn;
    void *arg = p->for_arg;
    pthread_mutex_unlock(&p->mu);
    fn(arg, i);
    pthread_mutex_lock(&p->mu);
    if (++p->for_done == p->for_n && p->waiting)
        pthread_cond_broadcast(&p->done);
}

static void *worker(void *arg)
{
    struct verify_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        /* Jobs first (the loop waits for each in turn), the loop's items
         * when no job waits or the loop waits for them. */
        if (p->for_next < p->for_n && (p->for_ending || !p->head)) {
            run_for_item(p);
            continue;
        }
        if (!p->head) {
            pthread_cond_wait(&p->work, &p->mu);
            continue;
        }
        run_locked(p, p->head);
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
    /* Jobs still queued stay with their owner, unverified. */
    for (struct verify_job *j = p->head, *next; j; j = next) {
        next = j->next;
        j->prev = j->next = NULL;
        j->state = VERIFY_IDLE;
    }
    free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

unsigned verify_pool_threads(const struct verify_pool *p)
{
    return p->n_threads;
}

void verify_pool_submit(struct verify_pool *p, const casenet_directory *dir, struct verify_job *j)
{
    assert(j->result.envelope && j->state == VERIFY_IDLE);
    j->dir = dir;
    pthread_mutex_lock(&p->mu);
    j->state = VERIFY_QUEUED;
    j->next = NULL;
    j->prev = p->tail;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->work); /* no system call when no worker waits */
    pthread_mutex_unlock(&p->mu);
}

void verify_pool_wait(struct verify_pool *p, struct verify_job *j)
{
    pthread_mutex_lock(&p->mu);
    assert(j->state != VERIFY_IDLE);
    /* Not taken by a worker yet (none, all busy, or not awake yet): the
     * loop would only wait for one, so it checks the envelope itself. */
    if (j->state == VERIFY_QUEUED)
        run_locked(p, j);
    while (j->state != VERIFY_DONE) {
        p->waiting++;
        pthread_cond_wait(&p->done, &p->mu);
        p->waiting--;
    }
    pthread_mutex_unlock(&p->mu);
}

void verify_pool_cancel(struct verify_pool *p, struct verify_job *j)
{
    pthread_mutex_lock(&p->mu);
    if (j->state == VERIFY_QUEUED) {
        unlink_job(p, j);
        j->state = VERIFY_IDLE;
    }
    while (j->state == VERIFY_RUNNING) {
        p->waiting++;
        pthread_cond_wait(&p->done, &p->mu);
        p->waiting--;
    }
    pthread_mutex_unlock(&p->mu);
}

void verify_job_reset(struct verify_job *j)
{
    assert(j->state == VERIFY_IDLE || j->state == VERIFY_DONE);
    if (j->state == VERIFY_DONE && j->result.envelope && j->result.rc == CASENET_OK)
        casenet_message_info_clear(&j->result.info);
    memset(&j->result.info, 0, sizeof j->result.info);
    j->result.rc = 0;
    j->state = VERIFY_IDLE;
    j->dir = NULL;
}

void verify_job_clear(struct verify_job *j)
{
    if (!j)
        return;
    verify_job_reset(j);
    if (j->req)
        casenet__v1__request__free_unpacked(j->req, NULL);
    memset(j, 0, sizeof *j);
}

void verify_pool_for_begin(struct verify_pool *p, void (*fn)(void *arg, size_t i), void *arg)
{
    pthread_mutex_lock(&p->mu);
    assert(!p->for_fn);
    p->for_fn = fn;
    p->for_arg = arg;
    p->for_n = p->for_next = p->for_done = 0;
    pthread_mutex_unlock(&p->mu);
}

void verify_pool_for_grow(struct verify_pool *p, size_t n)
{
    pthread_mutex_lock(&p->mu);
    assert(p->for_fn && n >= p->for_n);
    bool more = n > p->for_n;
    p->for_n = n;
    if (more && p->n_threads)
        pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void verify_pool_for_end(struct verify_pool *p)
{
    pthread_mutex_lock(&p->mu);
    assert(p->for_fn);
    p->for_ending = true;
    while (p->for_next < p->for_n)
        run_for_item(p);
    while (p->for_done < p->for_n) {
        p->waiting++;
        pthread_cond_wait(&p->done, &p->mu);
        p->waiting--;
    }
    p->for_ending = false;
    p->for_fn = NULL;
    p->for_arg = NULL;
    p->for_n = p->for_next = p->for_done = 0;
    pthread_mutex_unlock(&p->mu);
}
