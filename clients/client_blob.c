/* client_blob.c - libcasenet's blob requests: BlobPut, BlobStatus, BlobGet
 * (PROTOCOL.md §8.2; the connection itself: client.c). */
#include "client_impl.h"

#include <stdlib.h>
#include <string.h>

int casenet_client_blob_put(casenet_client *c, const uint8_t id[CASENET_BLOB_ID_BYTES],
                            uint32_t index, const uint8_t *chunk, size_t len, uint32_t total_chunks,
                            uint64_t total_size, uint32_t *held)
{
    if (!c || !id || !chunk)
        return CASENET_EINVAL;
    Casenet__V1__BlobPut p = CASENET__V1__BLOB_PUT__INIT;
    p.blob_id.data = (uint8_t *)id;
    p.blob_id.len = CASENET_BLOB_ID_BYTES;
    p.chunk_index = index;
    p.chunk.data = (uint8_t *)chunk;
    p.chunk.len = len;
    p.total_chunks = total_chunks;
    p.total_size = total_size;
    Casenet__V1__Response *resp = NULL;
    /* Idempotent: the same chunk again is answered OK. */
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_BLOB_PUT, &p,
                            CASENET__V1__RESPONSE__BODY_BLOB_PUT, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    if (held)
        *held = resp->blob_put->chunks_held;
    casenet__v1__response__free_unpacked(resp, NULL);
    return CASENET_OK;
}

int casenet_client_blob_status(casenet_client *c, const uint8_t id[CASENET_BLOB_ID_BYTES],
                               uint32_t **held, size_t *n, uint32_t *total_chunks)
{
    if (!c || !id || !held || !n)
        return CASENET_EINVAL;
    *held = NULL;
    *n = 0;
    Casenet__V1__BlobStatus p = CASENET__V1__BLOB_STATUS__INIT;
    p.blob_id.data = (uint8_t *)id;
    p.blob_id.len = CASENET_BLOB_ID_BYTES;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_BLOB_STATUS, &p,
                            CASENET__V1__RESPONSE__BODY_BLOB_STATUS, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__BlobStatusReply *s = resp->blob_status;
    uint32_t *list = malloc((s->n_held ? s->n_held : 1) * sizeof *list);
    if (!list) {
        casenet__v1__response__free_unpacked(resp, NULL);
        return CASENET_ENOMEM;
    }
    if (s->n_held)
        memcpy(list, s->held, s->n_held * sizeof *list);
    *held = list;
    *n = s->n_held;
    if (total_chunks)
        *total_chunks = s->total_chunks;
    casenet__v1__response__free_unpacked(resp, NULL);
    return CASENET_OK;
}

int casenet_client_blob_get(casenet_client *c, const uint8_t id[CASENET_BLOB_ID_BYTES],
                            uint32_t index, casenet_buf *chunk)
{
    if (!c || !id || !chunk)
        return CASENET_EINVAL;
    Casenet__V1__BlobGet p = CASENET__V1__BLOB_GET__INIT;
    p.blob_id.data = (uint8_t *)id;
    p.blob_id.len = CASENET_BLOB_ID_BYTES;
    p.chunk_index = index;
    Casenet__V1__Response *resp = NULL;
    int rc = client_request(c, CASENET__V1__REQUEST__BODY_BLOB_GET, &p,
                            CASENET__V1__RESPONSE__BODY_BLOB_GET, true, &resp);
    if (rc != CASENET_OK)
        return rc;
    rc = client_copy_bin(&resp->blob_get->chunk, chunk);
    casenet__v1__response__free_unpacked(resp, NULL);
    return rc;
}
