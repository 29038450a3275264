/* fuzz_console_request.c - libFuzzer harness: what a browser or machine sends
 * `casenet console` (clients/cli/console_req.c, console_attach_req.c). The
 * first byte picks the parser: a static page path, a send body, a receipt
 * body, an upload's start or chunk, a send's upload ids, or a file name
 * made safe for a download header. Every answer must be either accepted
 * (then consistent) or a 400 (413) that names its error. */
#include "console.h"
#include "console_attach.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct console_resp err = {0};
    switch (data[0] % 7) {
    case 0: {
        char *url = strndup(body, len);
        if (url && console_static_path_ok(url) && (strstr(url, "/.") || strstr(url, "//")))
            abort(); /* a path that could leave the assets directory */
        free(url);
        break;
    }
    case 1: {
        struct console_send s;
        if (console_parse_send(body, len, &s, &err)) {
            if (s.so.n_to == 0 || s.so.n_to > CASENET_MAX_RECIPIENTS || s.payload.len == 0)
                abort();
            console_send_clear(&s);
        } else if (err.status != 400 || !err.body) {
            abort();
        }
        break;
    }
    case 3: {
        char name[CASENET_ATTACH_NAME_MAX + 1];
        uint64_t n = 0;
        if (console_parse_upload_new(body, len, name, &n, &err)) {
            if (n > CONSOLE_UPLOAD_MAX || !name[0] || name[0] == '.' || strchr(name, '/'))
                abort();
        } else if ((err.status != 400 && err.status != 413) || !err.body) {
            abort();
        }
        break;
    }
    case 4: {
        uint64_t off = 0;
        uint8_t *chunk = NULL;
        size_t n = 0;
        if (console_parse_upload_chunk(body, len, &off, &chunk, &n, &err)) {
            if (n > CONSOLE_UPLOAD_CHUNK || (n == 0) != (chunk == NULL))
                abort();
        } else if (err.status != 400 || !err.body || chunk) {
            abort();
        }
        free(chunk);
        break;
    }
    case 5: {
        uint8_t ids[CASENET_MAX_BLOBS][16];
        size_t n = 0;
        if (console_parse_attach_ids(body, len, ids, &n, &err)) {
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++)
                    if (memcmp(ids[i], ids[j], 16) == 0)
                        abort();
        } else if (err.status != 400 || !err.body || n) {
            abort();
        }
        break;
    }
    case 6: {
        /* a sender's file name, as a download's header: no path, no
         * control byte, no unescaped quote */
        char *name = strndup(body, len), disp[CONSOLE_DISPOSITION_MAX];
        if (!name)
            break;
        console_disposition(name, disp);
        for (const char *p = disp; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '/' || (unsigned char)*p >= 0x80)
                abort();
        /* the last one: the name may hold the same text, escaped */
        const char *q = strchr(disp, '"') + 1, *end = NULL;
        for (const char *f = q; (f = strstr(f, "\"; filename*=")) != NULL; f++)
            end = f;
        for (const char *p = q; end && p < end; p++) {
            if (*p == '"')
                abort(); /* a quote that ends the name early */
            if (*p == '\\' && (p + 1 == end || (p[1] != '"' && p[1] != '\\')))
                abort();
            if (*p == '\\')
                p++;
        }
        if (!end)
            abort();
        free(name);
        break;
    }
    default: {
        casenet_receipt r;
        char *note = NULL;
        if (console_parse_receipt(body, len, &r, &note, &err)) {
            if ((r.status == CASENET_RECEIPT_DECLINED) != (r.reason[0] != '\0'))
                abort();
            if ((r.status == CASENET_RECEIPT_COMPLETED) != (r.outcome != CASENET_OUTCOME_NONE))
                abort();
            if (note && (r.status == CASENET_RECEIPT_DELIVERED || !note[0]))
                abort();
            free(note);
        } else if (err.status != 400 || !err.body || note) {
            abort();
        }
        break;
    }
    }
    free(err.body);
    return 0;
}
