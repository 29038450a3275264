/* blob_tally.c - the blob bytes each member holds (see blob_tally.h). */
#include "blob_tally.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds bytes to owner's row of *rows (a row is added when absent); false
 * when out of memory. */
static bool owner_add(struct blob_tally_owner **rows, size_t *n, size_t *cap, const char *owner,
                      uint64_t bytes)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*rows)[i].id, owner) == 0) {
            (*rows)[i].bytes += bytes;
            return true;
        }
    }
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        struct blob_tally_owner *r = realloc(*rows, c * sizeof *r);
        if (!r)
            return false;
        *rows = r;
        *cap = c;
    }
    snprintf((*rows)[*n].id, sizeof(*rows)[*n].id, "%s", owner);
    (*rows)[(*n)++].bytes = bytes;
    return true;
}

void blob_tally_on_kept(const uint8_t *id, const struct blob_meta *m, void *ctx)
{
    struct blob_tally *t = ctx;
    if (!id) { /* a pass starts */
        t->n_next = 0;
        t->broken = false;
        for (size_t i = 0; i < t->n_made; i++)
            t->made[i].visited = false;
        return;
    }
    for (size_t i = 0; i < t->n_made; i++)
        if (memcmp(t->made[i].id, id, CASENET_BLOB_ID_BYTES) == 0)
            t->made[i].visited = true;
    if (!owner_add(&t->next, &t->n_next, &t->cap_next, m->owner, m->total_size))
        t->broken = true;
}

void blob_tally_pass_end(struct blob_tally *t)
{
    for (size_t i = 0; i < t->n_made && !t->broken; i++)
        if (!t->made[i].visited &&
            !owner_add(&t->next, &t->n_next, &t->cap_next, t->made[i].owner, t->made[i].size))
            t->broken = true;
    struct blob_tally_owner *old = t->held;
    size_t cap = t->cap_held;
    t->held = t->next;
    t->n_held = t->n_next;
    t->cap_held = t->cap_next;
    t->next = old;
    t->cap_next = cap;
    t->n_next = 0;
    t->n_made = 0;
    t->known = !t->broken;
}

void blob_tally_created(struct blob_tally *t, const uint8_t id[CASENET_BLOB_ID_BYTES],
                        const char *owner, uint64_t size)
{
    if (t->n_made == t->cap_made) {
        size_t c = t->cap_made ? 2 * t->cap_made : 16;
        struct blob_tally_made *r = realloc(t->made, c * sizeof *r);
        if (!r) { /* unknown until a pass ends with memory to spare */
            t->known = false;
            t->broken = true;
            return;
        }
        t->made = r;
        t->cap_made = c;
    }
    struct blob_tally_made *x = &t->made[t->n_made++];
    memcpy(x->id, id, CASENET_BLOB_ID_BYTES);
    snprintf(x->owner, sizeof x->owner, "%s", owner);
    x->size = size;
    x->visited = false;
}

bool blob_tally_owned(const struct blob_tally *t, const char *owner, uint64_t *bytes)
{
    *bytes = 0;
    if (!t->known)
        return false;
    for (size_t i = 0; i < t->n_held; i++)
        if (strcmp(t->held[i].id, owner) == 0)
            *bytes += t->held[i].bytes;
    for (size_t i = 0; i < t->n_made; i++)
        if (strcmp(t->made[i].owner, owner) == 0)
            *bytes += t->made[i].size;
    return true;
}

void blob_tally_clear(struct blob_tally *t)
{
    free(t->held);
    free(t->next);
    free(t->made);
    memset(t, 0, sizeof *t);
}
