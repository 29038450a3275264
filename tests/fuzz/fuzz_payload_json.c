/* fuzz_payload_json.c - libFuzzer harness: payload JSON text -> bytes -> JSON -> bytes. */
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
