/*
 * console_attach.h - attachments in `casenet console` (issue 18): staff
 * upload files to the console in chunks, the send seals them like `casenet
 * send --attach` (hash-bank and media-policy checks, upload to the broker,
 * manifests in the payload), the case view lists a message's attachments
 * and a download fetches, decrypts and checks one here, next to the keys,
 * before a byte is served.
 *
 *   console_attach_req.c  what the browser sends (fuzzed): upload bodies,
 *                         the send's upload ids; a download's header value
 *   console_attach.c      the upload area in the home, the API, the send
 *                         and download paths
 *
 * Every file name and media type comes from a sender: hostile. The pages
 * show them as text; a download is served as application/octet-stream with
 * a sanitised Content-Disposition.
 */
#ifndef CASENET_CLI_CONSOLE_ATTACH_H
#define CASENET_CLI_CONSOLE_ATTACH_H

#include "cli.h"
#include "console.h"

#define CONSOLE_UPLOAD_MAX     (256ull * 1024u * 1024u) /* one file, as the broker's default */
#define CONSOLE_UPLOAD_CHUNK   (512u * 1024u)           /* bytes per chunk request */
#define CONSOLE_UPLOADS        64                       /* files held at once, all users */
#define CONSOLE_UPLOAD_IDLE_MS (60 * 60 * 1000)         /* an untouched upload is deleted */
#define CONSOLE_UPLOAD_DIR     "console-uploads"        /* under the home, mode 0700 */

/* ------------------------------------------------ requests (console_attach_req.c) */

/* name made safe to store and to name a download: '/', '\\', control
 * characters (C1 too), bidirectional marks, embeddings, overrides and
 * isolates, line and paragraph separators (and bytes that are not UTF-8)
 * become '_', a leading '.' too,
 * cut to CASENET_ATTACH_NAME_MAX bytes on a character boundary; empty
 * becomes "attachment". out has CASENET_ATTACH_NAME_MAX + 1 bytes. */
void console_attach_name(const char *name, char out[CASENET_ATTACH_NAME_MAX + 1]);

/* Parses POST /uploads {"name": text, "size": bytes}: the name made safe
 * (console_attach_name), 0 <= size <= CONSOLE_UPLOAD_MAX (413 beyond).
 * false with a 400 or 413 in err naming the field. */
bool console_parse_upload_new(const char *body, size_t len, char name[CASENET_ATTACH_NAME_MAX + 1],
                              uint64_t *size, struct console_resp *err);

/* Parses POST /uploads/{id} {"offset": bytes, "data": base64}: at most
 * CONSOLE_UPLOAD_CHUNK bytes, decoded into *data (malloc'd, the caller
 * frees; NULL when empty). false with a 400 in err naming the field. */
bool console_parse_upload_chunk(const char *body, size_t len, uint64_t *offset, uint8_t **data,
                                size_t *n, struct console_resp *err);

/* The "attachments" of a POST /messages body: upload ids (32 hex digits),
 * unique, at most CASENET_MAX_BLOBS; *n = 0 when the key is absent. false
 * with a 400 in err (field "attachments"). */
bool console_parse_attach_ids(const char *body, size_t len, uint8_t ids[CASENET_MAX_BLOBS][16],
                              size_t *n, struct console_resp *err);

/* The Content-Disposition value for a download of name (hostile):
 * `attachment; filename="..."; filename*=UTF-8''...` (RFC 6266, 5987): the
 * name made safe, non-ASCII as '_' and '"' '\\' escaped in the quoted
 * form, every byte but RFC 5987's attr-chars percent-encoded in the other.
 * out must hold CONSOLE_DISPOSITION_MAX bytes. */
#define CONSOLE_DISPOSITION_MAX                                                                    \
    (64 + 2 * (CASENET_ATTACH_NAME_MAX + 1) + 3 * CASENET_ATTACH_NAME_MAX)
void console_disposition(const char *name, char out[CONSOLE_DISPOSITION_MAX]);

/* ------------------------------------------------ API (console_attach.c) */

/* POST /uploads, POST|DELETE /uploads/{id} (caseworker): the upload area,
 * HOME/console-uploads/ID/NAME, each upload its user's only; emptied when
 * the console first uses it, an upload deleted after sending or after
 * CONSOLE_UPLOAD_IDLE_MS untouched. */
void console_attach_uploads(struct console *c, const struct console_req *r,
                            struct console_resp *out);

/* GET /messages/{id}/attachments/{n} (caseworker): fetches the message,
 * opens it, fetches attachment n's blob through the library, decrypts and
 * checks it (size, SHA-256 of the signed manifest) into a temporary file in
 * the home, writes `download:attachments[n]` to the ledger, then answers
 * the file (out->file). A mismatch is a 502 naming "attachment". */
void console_attach_download(struct console *c, const struct console_req *r, const uint8_t id[16],
                             unsigned n, struct console_resp *out);

/* The case view: replaces o's "payload"."attachments" (manifests, with
 * their keys) by o's "attachments": [{index, file_name, media_type, size,
 * sha256}]. payload is the opened message's. */
void console_attach_view(json_t *o, const casenet_buf *payload, const casenet_message_info *info);

/* The attachments of one send, between console_attach_seal and the submit. */
struct console_attach_pending {
    casenet_attachment *atts;
    size_t n;
    uint8_t uploads[CASENET_MAX_BLOBS][16];
    uint8_t blob_ids[CASENET_MAX_BLOBS][CASENET_BLOB_ID_BYTES];
};

/* Before sealing a send (under net_lock): the body's "attachments" (upload
 * ids of r's user, complete) checked like `casenet send --attach` (the
 * hash bank, the media policy: a 422 with "reason" hash_bank or
 * media_policy and "file"), uploaded to the broker, and added to s's
 * payload and blob ids. true to go on (nothing attached, or all of it);
 * false with out set. */
bool console_attach_seal(struct console *c, const struct console_req *r, struct console_send *s,
                         struct console_attach_pending *p, struct console_resp *out);
/* After the broker accepted message mid_hex: keeps the list of its
 * attachments (name, type, size, SHA-256) in HOME/console-sent/ID.json for
 * the sent view, and deletes its uploads. */
void console_attach_sent(struct console *c, struct console_attach_pending *p, const char *mid_hex);
/* The sent view (GET /messages/{id}/status): adds "attachments" to o when
 * this console sent message id with some. */
void console_attach_sent_view(struct console *c, const uint8_t id[16], json_t *o);
/* Wipes p's manifests (their keys). */
void console_attach_pending_clear(struct console_attach_pending *p);

#endif
