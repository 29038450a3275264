/* blob_io.c - the blob writer: chunk writes on a thread beside the loop
 * (see blob_io.h). */
#include "blob_io.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifdef CASENET_TEST_HOOKS
#include <time.h>
#endif

struct blob_io {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job queued, or stop */
    pthread_t thread;
    int efd; /* eventfd: written jobs wait */
    bool stop;
    uint64_t written; /* jobs written so far: each done job's order */
    char *data_dir;
    struct blob_job *head, *tail; /* every job held, in submission order; under mu */
};

void blob_job_free(struct blob_job *j)
{
    if (!j)
        return;
    casenet_buf_free(&j->chunk);
    free(j);
}

/* The queued job to write next: the lowest round, then the oldest; mu
 * held. NULL when none is queued. */
static struct blob_job *next_job(struct blob_io *io)
{
    struct blob_job *best = NULL;
    for (struct blob_job *j = io->head; j; j = j->next)
        if (!j->done && !j->writing && (!best || j->round < best->round))
            best = j;
    return best;
}

#ifdef CASENET_TEST_HOOKS
/* Waits while the gate file exists (or until stop): a slow disk, for the
 * tests. */
static void test_gate(struct blob_io *io)
{
    const char *gate = getenv("CASENETD_TEST_BLOB_WRITE_GATE");
    struct timespec ts = {.tv_nsec = 10 * 1000 * 1000};
    for (;;) {
        pthread_mutex_lock(&io->mu);
        bool stop = io->stop;
        pthread_mutex_unlock(&io->mu);
        if (stop || !gate || !*gate || access(gate, F_OK) != 0)
            return;
        nanosleep(&ts, NULL);
    }
}
#endif

/* Writes j's chunk and reads what its blob then holds. */
static void write_job(struct blob_io *io, struct blob_job *j)
{
#ifdef CASENET_TEST_HOOKS
    test_gate(io);
#endif
    j->rc =
        blobs_chunk_write(io->data_dir, j->id, j->index, j->chunk.data, j->chunk.len, &j->fresh);
    if (j->rc == CASENET_OK &&
        blobs_held(io->data_dir, j->id, &j->meta, NULL, &j->held) != CASENET_OK)
        j->rc = CASENET_EIO;
    casenet_buf_free(&j->chunk);
}

/* Makes the eventfd readable. */
static void wake(struct blob_io *io)
{
    uint64_t one = 1;
    while (write(io->efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void *writer(void *arg)
{
    struct blob_io *io = arg;
    pthread_mutex_lock(&io->mu);
    for (;;) {
        struct blob_job *j = NULL;
        while (!io->stop && !(j = next_job(io)))
            pthread_cond_wait(&io->work, &io->mu);
        if (io->stop)
            break;
        j->writing = true;
        pthread_mutex_unlock(&io->mu);
        write_job(io, j);
        pthread_mutex_lock(&io->mu);
        j->writing = false;
        j->done = true;
        j->done_seq = ++io->written;
        wake(io);
    }
    pthread_mutex_unlock(&io->mu);
    return NULL;
}

int blob_io_new(const char *data_dir, struct blob_io **out)
{
    *out = NULL;
    struct blob_io *io = calloc(1, sizeof *io);
    if (!io || !(io->data_dir = strdup(data_dir))) {
        free(io);
        return CASENET_ENOMEM;
    }
    io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (io->efd < 0) {
        free(io->data_dir);
        free(io);
        return CASENET_EIO;
    }
    pthread_mutex_init(&io->mu, NULL);
    pthread_cond_init(&io->work, NULL);
    if (pthread_create(&io->thread, NULL, writer, io) != 0) {
        pthread_cond_destroy(&io->work);
        pthread_mutex_destroy(&io->mu);
        close(io->efd);
        free(io->data_dir);
        free(io);
        return CASENET_EIO;
    }
    *out = io;
    return CASENET_OK;
}

void blob_io_free(struct blob_io *io)
{
    if (!io)
        return;
    pthread_mutex_lock(&io->mu);
    io->stop = true;
    pthread_cond_signal(&io->work);
    pthread_mutex_unlock(&io->mu);
    pthread_join(io->thread, NULL);
    while (io->head) {
        struct blob_job *j = io->head;
        io->head = j->next;
        blob_job_free(j);
    }
    pthread_cond_destroy(&io->work);
    pthread_mutex_destroy(&io->mu);
    close(io->efd);
    free(io->data_dir);
    free(io);
}

int blob_io_fd(const struct blob_io *io)
{
    return io->efd;
}

void blob_io_submit(struct blob_io *io, struct blob_job *j)
{
    j->done = j->writing = false;
    j->next = NULL;
    j->round = 0;
    pthread_mutex_lock(&io->mu);
    for (struct blob_job *k = io->head; k; k = k->next)
        j->round += !k->done && strcmp(k->member, j->member) == 0;
    if (io->tail)
        io->tail->next = j;
    else
        io->head = j;
    io->tail = j;
    pthread_cond_signal(&io->work);
    pthread_mutex_unlock(&io->mu);
}

struct blob_job *blob_io_take(struct blob_io *io)
{
    uint64_t n;
    while (read(io->efd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&io->mu);
    struct blob_job *prev = NULL, *j = NULL;
    for (struct blob_job *p = NULL, *k = io->head; k; p = k, k = k->next)
        if (k->done && (!j || k->done_seq < j->done_seq)) {
            prev = p;
            j = k;
        }
    if (j) {
        if (prev)
            prev->next = j->next;
        else
            io->head = j->next;
        if (io->tail == j)
            io->tail = prev;
        j->next = NULL;
        /* More written ones wait: readable again. */
        for (struct blob_job *k = io->head; k; k = k->next)
            if (k->done) {
                wake(io);
                break;
            }
    }
    pthread_mutex_unlock(&io->mu);
    return j;
}

bool blob_io_pending(struct blob_io *io, const uint8_t id[CASENET_BLOB_ID_BYTES], uint32_t index,
                     uint32_t *n, uint64_t *bytes)
{
    bool resend = false;
    pthread_mutex_lock(&io->mu);
    for (struct blob_job *j = io->head; j; j = j->next) {
        if (memcmp(j->id, id, CASENET_BLOB_ID_BYTES) != 0)
            continue;
        resend = resend || j->index == index;
        bool first = !j->done;
        for (struct blob_job *k = io->head; k != j && first; k = k->next)
            first =
                k->done || k->index != j->index || memcmp(k->id, id, CASENET_BLOB_ID_BYTES) != 0;
        if (first) {
            (*n)++;
            *bytes += j->chunk_len;
        }
    }
    pthread_mutex_unlock(&io->mu);
    return resend;
}

bool blob_io_busy(struct blob_io *io, const uint8_t id[CASENET_BLOB_ID_BYTES])
{
    bool busy = false;
    pthread_mutex_lock(&io->mu);
    for (struct blob_job *j = io->head; j && !busy; j = j->next)
        busy = memcmp(j->id, id, CASENET_BLOB_ID_BYTES) == 0;
    pthread_mutex_unlock(&io->mu);
    return busy;
}
