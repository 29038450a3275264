/* fuzz_console_request.c - libFuzzer harness: what a browser or machine sends
 * `casenet console` (clients/cli/console_req.c). The first byte picks the
 * parser: a static page path, a send body or a receipt body. Every answer
 * must be either accepted (then consistent) or a 400 that names its error. */
#include "console.h"

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
    switch (data[0] % 3) {
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
