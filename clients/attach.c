/* attach.c - attachments sealed end to end (PROTOCOL.md §4.9): a file's
 * manifest, its secretstream encryption chunk by chunk into a blob at the
 * broker (resumable), and its download, decryption and check into a
 * directory (see casenet.h, "attachments"). */
#include "attach_impl.h"
#include "casenet.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SS_ABYTES      crypto_secretstream_xchacha20poly1305_ABYTES
#define SS_TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define SS_TAG_FINAL   crypto_secretstream_xchacha20poly1305_TAG_FINAL

_Static_assert(CASENET_ATTACH_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES, "abytes");
_Static_assert(CASENET_ATTACH_KEY_BYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES, "key");
_Static_assert(CASENET_ATTACH_HEADER_BYTES == crypto_secretstream_xchacha20poly1305_HEADERBYTES,
               "header");

void casenet_attachment_clear(casenet_attachment *a)
{
    if (a)
        sodium_memzero(a, sizeof *a);
}

uint64_t casenet_attachment_blob_size(const casenet_attachment *a)
{
    return a->size + (uint64_t)a->chunk_count * CASENET_ATTACH_ABYTES;
}

static uint32_t chunks_for(uint64_t size)
{
    uint64_t n = (size + CASENET_ATTACH_CHUNK_BYTES - 1) / CASENET_ATTACH_CHUNK_BYTES;
    return n == 0 ? 1 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* A base name safe to create in any directory: no '/', no control byte, not
 * hidden (nor "." / ".."), at most CASENET_ATTACH_NAME_MAX bytes. */
static bool name_safe(const char *s)
{
    size_t n = strnlen(s, CASENET_ATTACH_NAME_MAX + 1);
    if (n == 0 || n > CASENET_ATTACH_NAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '\\')
            return false;
    return true;
}

static const char *guess_type(const char *name)
{
    static const char *const map[][2] = {
        {".pdf", "application/pdf"},   {".txt", "text/plain"},      {".csv", "text/csv"},
        {".json", "application/json"}, {".zip", "application/zip"}, {".png", "image/png"},
        {".jpg", "image/jpeg"},        {".jpeg", "image/jpeg"},     {".mp3", "audio/mpeg"},
        {".m4a", "audio/mp4"},         {".wav", "audio/wav"},       {".mp4", "video/mp4"},
        {".html", "text/html"},        {".eml", "message/rfc822"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(dot, map[i][0]) == 0)
            return map[i][1];
    return "application/octet-stream";
}

/* Reads up to len bytes (fewer only at the end of the file). */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int write_full(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CASENET_EIO;
        p += w;
        len -= (size_t)w;
    }
    return CASENET_OK;
}

/* The secretstream state of a's stream. init_pull derives exactly the
 * state init_push left (HChaCha20 of key and header, counter 1), so the
 * sender re-creates its push state from the manifest: an upload can then be
 * resumed by another call, or process, that holds only the manifest. */
int cn_attach_stream(const casenet_attachment *a, crypto_secretstream_xchacha20poly1305_state *st)
{
    return crypto_secretstream_xchacha20poly1305_init_pull(st, a->stream_header, a->key) == 0
               ? CASENET_OK
               : CASENET_ECRYPTO;
}

int casenet_attachment_prepare(const char *path, const char *media_type, casenet_attachment *a)
{
    if (!path || !a)
        return CASENET_EINVAL;
    memset(a, 0, sizeof *a);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *type = media_type ? media_type : guess_type(base);
    if (!name_safe(base) || strlen(type) > CASENET_ATTACH_TYPE_MAX || !*type)
        return CASENET_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CASENET_EIO;
    uint8_t *buf = malloc(CASENET_ATTACH_CHUNK_BYTES);
    int rc = CASENET_ENOMEM;
    if (!buf)
        goto cleanup;
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    ssize_t r;
    rc = CASENET_EIO;
    while ((r = read_full(fd, buf, CASENET_ATTACH_CHUNK_BYTES)) > 0) {
        crypto_hash_sha256_update(&h, buf, (size_t)r);
        a->size += (uint64_t)r;
    }
    if (r < 0)
        goto cleanup;
    crypto_hash_sha256_final(&h, a->sha256);
    rc = CASENET_ETOOLARGE;
    if (chunks_for(a->size) > CASENET_ATTACH_MAX_CHUNKS)
        goto cleanup;
    snprintf(a->file_name, sizeof a->file_name, "%s", base);
    snprintf(a->media_type, sizeof a->media_type, "%s", type);
    a->chunk_size = CASENET_ATTACH_CHUNK_BYTES;
    a->chunk_count = chunks_for(a->size);
    crypto_secretstream_xchacha20poly1305_state st;
    crypto_secretstream_xchacha20poly1305_keygen(a->key);
    crypto_secretstream_xchacha20poly1305_init_push(&st, a->stream_header, a->key);
    sodium_memzero(&st, sizeof st);
    randombytes_buf(a->blob_id, sizeof a->blob_id);
    rc = CASENET_OK;
cleanup:
    free(buf);
    close(fd);
    if (rc != CASENET_OK)
        casenet_attachment_clear(a);
    return rc;
}

/* The chunks the broker holds of a's blob, as flags (malloc'd). */
static int held_flags(casenet_client *c, const casenet_attachment *a, bool **flags)
{
    uint32_t *held = NULL;
    size_t n = 0;
    *flags = calloc(a->chunk_count, sizeof **flags);
    if (!*flags)
        return CASENET_ENOMEM;
    int rc = casenet_client_blob_status(c, a->blob_id, &held, &n, NULL);
    if (rc == CASENET_ENOTFOUND)
        return CASENET_OK;
    for (size_t i = 0; rc == CASENET_OK && i < n; i++)
        if (held[i] < a->chunk_count)
            (*flags)[held[i]] = true;
    free(held);
    return rc;
}

int casenet_attachment_upload(casenet_client *c, const char *path, const casenet_attachment *a,
                              uint32_t max_chunks, uint32_t *sent)
{
    return casenet_attachment_upload_progress(c, path, a, max_chunks, sent, NULL, NULL);
}

int casenet_attachment_upload_progress(casenet_client *c, const char *path,
                                       const casenet_attachment *a, uint32_t max_chunks,
                                       uint32_t *sent, casenet_progress_fn fn, void *ctx)
{
    if (!c || !path || !a || a->chunk_count == 0)
        return CASENET_EINVAL;
    uint32_t count = 0;
    bool *held = NULL;
    uint8_t *pt = NULL, *ct = NULL;
    crypto_secretstream_xchacha20poly1305_state st;
    crypto_hash_sha256_state h;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CASENET_EIO;
    int rc = held_flags(c, a, &held);
    if (rc != CASENET_OK || (rc = cn_attach_stream(a, &st)) != CASENET_OK)
        goto cleanup;
    rc = CASENET_ENOMEM;
    pt = sodium_malloc(a->chunk_size);
    ct = malloc((size_t)a->chunk_size + SS_ABYTES);
    if (!pt || !ct)
        goto cleanup;
    crypto_hash_sha256_init(&h);
    uint64_t total = casenet_attachment_blob_size(a), seen = 0;
    for (uint32_t i = 0; i < a->chunk_count; i++) {
        ssize_t r = read_full(fd, pt, a->chunk_size);
        bool last = i + 1 == a->chunk_count;
        rc = CASENET_ECONFLICT; /* the file changed since it was prepared */
        if (r < 0 || (!last && (size_t)r != a->chunk_size))
            goto cleanup;
        seen += (uint64_t)r;
        crypto_hash_sha256_update(&h, pt, (size_t)r);
        unsigned long long clen = 0;
        crypto_secretstream_xchacha20poly1305_push(&st, ct, &clen, pt, (size_t)r, NULL, 0,
                                                   last ? SS_TAG_FINAL : SS_TAG_MESSAGE);
        if (held[i]) {
            if (fn)
                fn(ctx, seen, a->size);
            continue;
        }
        if (max_chunks && count == max_chunks) {
            rc = CASENET_OK; /* the budget is spent: a later call resumes */
            goto cleanup;
        }
        rc = casenet_client_blob_put(c, a->blob_id, i, ct, (size_t)clen, a->chunk_count, total,
                                     NULL);
        if (rc != CASENET_OK)
            goto cleanup;
        count++;
        if (fn)
            fn(ctx, seen, a->size);
    }
    uint8_t digest[CASENET_HASH_BYTES], extra;
    crypto_hash_sha256_final(&h, digest);
    rc = seen == a->size && read_full(fd, &extra, 1) == 0 &&
                 sodium_memcmp(digest, a->sha256, sizeof digest) == 0
             ? CASENET_OK
             : CASENET_ECONFLICT;
cleanup:
    if (sent)
        *sent = count;
    sodium_memzero(&st, sizeof st);
    sodium_free(pt);
    free(ct);
    free(held);
    close(fd);
    return rc;
}

int cn_attach_chunk_open(crypto_secretstream_xchacha20poly1305_state *st,
                         const casenet_attachment *a, uint32_t index, const uint8_t *chunk,
                         size_t len, uint8_t *pt, size_t *mlen)
{
    unsigned long long n = 0;
    unsigned char tag = 0;
    bool last = index + 1 == a->chunk_count;
    if (len < SS_ABYTES || len > (size_t)a->chunk_size + SS_ABYTES ||
        crypto_secretstream_xchacha20poly1305_pull(st, pt, &n, &tag, chunk, len, NULL, 0) != 0 ||
        (tag == SS_TAG_FINAL) != last || (!last && tag != SS_TAG_MESSAGE))
        return CASENET_ECRYPTO;
    if (!last && n != a->chunk_size)
        return CASENET_ECOMMIT;
    *mlen = (size_t)n;
    return CASENET_OK;
}

/* Fetches, decrypts and checks every chunk of a into fd. */
static int download_into(casenet_client *c, const casenet_attachment *a, int fd)
{
    crypto_secretstream_xchacha20poly1305_state st;
    crypto_hash_sha256_state h;
    casenet_buf chunk = {0};
    uint64_t got = 0;
    uint8_t *pt = sodium_malloc(a->chunk_size);
    if (!pt)
        return CASENET_ENOMEM;
    int rc = cn_attach_stream(a, &st);
    crypto_hash_sha256_init(&h);
    for (uint32_t i = 0; rc == CASENET_OK && i < a->chunk_count; i++) {
        if ((rc = casenet_client_blob_get(c, a->blob_id, i, &chunk)) != CASENET_OK)
            break;
        size_t mlen = 0;
        rc = cn_attach_chunk_open(&st, a, i, chunk.data, chunk.len, pt, &mlen);
        casenet_buf_free(&chunk);
        if (rc != CASENET_OK)
            break;
        crypto_hash_sha256_update(&h, pt, (size_t)mlen);
        got += mlen;
        rc = write_full(fd, pt, (size_t)mlen);
    }
    if (rc == CASENET_OK) {
        uint8_t digest[CASENET_HASH_BYTES];
        crypto_hash_sha256_final(&h, digest);
        if (got != a->size || sodium_memcmp(digest, a->sha256, sizeof digest) != 0)
            rc = CASENET_ECOMMIT;
    }
    if (rc == CASENET_OK && fsync(fd) != 0)
        rc = CASENET_EIO;
    sodium_memzero(&st, sizeof st);
    sodium_free(pt);
    return rc;
}

int casenet_attachment_download(casenet_client *c, const casenet_attachment *a, const char *dir,
                                char *saved, size_t saved_len)
{
    if (!c || !a || !dir || !name_safe(a->file_name) || a->chunk_count == 0 ||
        a->chunk_size != CASENET_ATTACH_CHUNK_BYTES)
        return CASENET_EINVAL;
    char tmp[4096], dst[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.casenet-attach-XXXXXX", dir) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, a->file_name) >= (int)sizeof dst)
        return CASENET_EINVAL;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return CASENET_EIO;
    int rc = download_into(c, a, fd);
    if (close(fd) != 0 && rc == CASENET_OK)
        rc = CASENET_EIO;
    /* link, not rename: never replaces a file of that name. */
    if (rc == CASENET_OK && link(tmp, dst) != 0)
        rc = errno == EEXIST ? CASENET_ECONFLICT : CASENET_EIO;
    unlink(tmp);
    if (rc == CASENET_OK && saved && saved_len)
        snprintf(saved, saved_len, "%s", dst);
    return rc;
}

/* One manifest from the wire into a, checked. */
static int manifest_from_pb(const Casenet__V1__Attachment *p, casenet_attachment *a)
{
    memset(a, 0, sizeof *a);
    if (!name_safe(p->file_name) || !*p->media_type ||
        strlen(p->media_type) > CASENET_ATTACH_TYPE_MAX || p->sha256.len != CASENET_HASH_BYTES ||
        p->key.len != CASENET_ATTACH_KEY_BYTES ||
        p->stream_header.len != CASENET_ATTACH_HEADER_BYTES ||
        p->blob_id.len != CASENET_BLOB_ID_BYTES || p->chunk_size != CASENET_ATTACH_CHUNK_BYTES ||
        chunks_for(p->size) > CASENET_ATTACH_MAX_CHUNKS || p->chunk_count != chunks_for(p->size))
        return CASENET_EBADREQ;
    snprintf(a->file_name, sizeof a->file_name, "%s", p->file_name);
    snprintf(a->media_type, sizeof a->media_type, "%s", p->media_type);
    a->size = p->size;
    memcpy(a->sha256, p->sha256.data, sizeof a->sha256);
    memcpy(a->key, p->key.data, sizeof a->key);
    memcpy(a->stream_header, p->stream_header.data, sizeof a->stream_header);
    a->chunk_size = p->chunk_size;
    a->chunk_count = p->chunk_count;
    memcpy(a->blob_id, p->blob_id.data, sizeof a->blob_id);
    return CASENET_OK;
}

/* Blob ids unique, and with info exactly the header's (as a set). */
static bool blob_ids_match(const casenet_attachment *a, size_t n, const casenet_message_info *info)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            if (memcmp(a[i].blob_id, a[j].blob_id, CASENET_BLOB_ID_BYTES) == 0)
                return false;
        bool listed = !info;
        for (size_t j = 0; info && j < info->n_blob_ids && !listed; j++)
            listed = memcmp(a[i].blob_id, info->blob_ids[j], CASENET_BLOB_ID_BYTES) == 0;
        if (!listed)
            return false;
    }
    return !info || info->n_blob_ids == n;
}

int casenet_payload_attachments(const uint8_t *payload, size_t len,
                                const casenet_message_info *info, casenet_attachment **out,
                                size_t *n)
{
    if (!payload || !out || !n)
        return CASENET_EINVAL;
    *out = NULL;
    *n = 0;
    Casenet__V1__Payload *p = casenet__v1__payload__unpack(NULL, len, payload);
    if (!p)
        return CASENET_EBADREQ;
    int rc = CASENET_EBADREQ;
    casenet_attachment *a = NULL;
    size_t k = p->n_attachments;
    if (k > CASENET_MAX_BLOBS)
        goto cleanup;
    rc = CASENET_ENOMEM;
    if (k && !(a = calloc(k, sizeof *a)))
        goto cleanup;
    rc = CASENET_OK;
    for (size_t i = 0; rc == CASENET_OK && i < k; i++)
        rc = manifest_from_pb(p->attachments[i], &a[i]);
    if (rc == CASENET_OK && !blob_ids_match(a, k, info))
        rc = CASENET_EBADREQ;
    if (rc == CASENET_OK) {
        *out = a;
        *n = k;
        a = NULL;
    }
cleanup:
    if (a) {
        sodium_memzero(a, k * sizeof *a);
        free(a);
    }
    casenet__v1__payload__free_unpacked(p, NULL);
    return rc;
}

int casenet_payload_add_attachments(const uint8_t *payload, size_t len,
                                    const casenet_attachment *atts, size_t n, casenet_buf *out)
{
    if (!payload || (!atts && n) || !out)
        return CASENET_EINVAL;
    Casenet__V1__Payload *p = casenet__v1__payload__unpack(NULL, len, payload);
    if (!p)
        return CASENET_EBADREQ;
    int rc = CASENET_ETOOLARGE;
    size_t old = p->n_attachments, total = old + n;
    Casenet__V1__Attachment **keep = p->attachments, **list = NULL, *pb = NULL;
    uint8_t *buf = NULL;
    if (total > CASENET_MAX_BLOBS)
        goto cleanup;
    rc = CASENET_ENOMEM;
    list = calloc(total + 1, sizeof *list);
    pb = calloc(n + 1, sizeof *pb);
    if (!list || !pb)
        goto cleanup;
    for (size_t i = 0; i < old; i++)
        list[i] = keep[i];
    for (size_t i = 0; i < n; i++) {
        const casenet_attachment *a = &atts[i];
        Casenet__V1__Attachment *m = &pb[i];
        casenet__v1__attachment__init(m);
        m->file_name = (char *)a->file_name;
        m->media_type = (char *)a->media_type;
        m->size = a->size;
        m->sha256 = (ProtobufCBinaryData){sizeof a->sha256, (uint8_t *)a->sha256};
        m->key = (ProtobufCBinaryData){sizeof a->key, (uint8_t *)a->key};
        m->stream_header =
            (ProtobufCBinaryData){sizeof a->stream_header, (uint8_t *)a->stream_header};
        m->chunk_size = a->chunk_size;
        m->chunk_count = a->chunk_count;
        m->blob_id = (ProtobufCBinaryData){sizeof a->blob_id, (uint8_t *)a->blob_id};
        list[old + i] = m;
    }
    p->attachments = list;
    p->n_attachments = total;
    size_t plen = casenet__v1__payload__get_packed_size(p);
    if (!(buf = malloc(plen ? plen : 1)))
        goto restore;
    casenet__v1__payload__pack(p, buf);
    out->data = buf;
    out->len = plen;
    rc = CASENET_OK;
restore:
    p->attachments = keep;
    p->n_attachments = old;
cleanup:
    free(list);
    free(pb);
    casenet__v1__payload__free_unpacked(p, NULL);
    return rc;
}
