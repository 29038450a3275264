/* fuzz_payload_json.c - libFuzzer harness: payload JSON text -> bytes -> JSON -> bytes,
 * and the payload rules (casenet_payload_check) on the raw bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casenet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever JSON text is accepted must come back from its own canonical JSON
 * to the same bytes; any other outcome is a bug in pbjson. The input is also
 * read as a serialised Payload, for the protobuf -> JSON direction. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    casenet_buf first = {0}, text = {0}, second = {0}, raw = {0};
    char err[256];

    if (casenet_payload_to_json(data, size, &raw) == CASENET_OK) {
        casenet_buf_free(&raw);
        /* The display form must succeed wherever the canonical one does. */
        if (casenet_payload_to_display_json(data, size, &raw) != CASENET_OK) {
            fprintf(stderr, "to_display_json failed on a payload to_json took\n");
            abort();
        }
        casenet_buf_free(&raw);
    }
    /* The payload rules read the same bytes (after decryption, in
     * casenet_open): whatever they answer, err is a terminated string. */
    for (int kind = CASENET_KIND_REFERRAL; kind <= CASENET_KIND_DEAD_LETTER; kind++) {
        err[0] = 'x';
        int prc = casenet_payload_check(data, size, (casenet_kind)kind, 0, err, sizeof err);
        if (!memchr(err, 0, sizeof err) || (prc == CASENET_OK && err[0] != 0)) {
            fprintf(stderr, "payload_check: rc %d, unterminated or stray message\n", prc);
            abort();
        }
    }
    casenet_urgency urgency;
    int urc = casenet_payload_urgency(data, size, &urgency);
    (void)urc;

    if (casenet_payload_from_json((const char *)data, size, 0, &first, err, sizeof(err)) !=
        CASENET_OK)
        return 0;
    if (casenet_payload_to_json(first.data, first.len, &text) != CASENET_OK) {
        fprintf(stderr, "to_json failed on accepted payload\n");
        abort();
    }
    int rc =
        casenet_payload_from_json((const char *)text.data, text.len, 0, &second, err, sizeof(err));
    if (rc == CASENET_ETOOLARGE && text.len > CASENET_MAX_PAYLOAD_BYTES)
        goto done; /* indentation made the canonical text outgrow the limit */
    if (rc != CASENET_OK) {
        fprintf(stderr, "canonical JSON refused (%d): %s\n%s\n", rc, err, (char *)text.data);
        abort();
    }
    if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0) {
        fprintf(stderr, "round trip changed the bytes\n%s\n", (char *)text.data);
        abort();
    }
done:
    casenet_buf_free(&first);
    casenet_buf_free(&text);
    casenet_buf_free(&second);
    return 0;
}
