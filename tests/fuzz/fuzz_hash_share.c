/* fuzz_hash_share.c - libFuzzer harness: a decrypted HASH_SHARE payload
 * through the rules (casenet_payload_check) and, when they pass, applied to
 * an in-memory hash bank (clients/hashbank.c) twice: the second time must be
 * a no-op. */
#include "hashbank.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (casenet_payload_check(data, size, CASENET_KIND_HASH_SHARE, 0, err, sizeof err) !=
        CASENET_OK)
        return 0;
    hashbank *b = NULL;
    if (hashbank_open(":memory:", &b) != CASENET_OK)
        abort();
    uint8_t id[CASENET_MESSAGE_ID_BYTES] = {1};
    struct hashbank_result r;
    if (hashbank_apply(b, id, "vn.hotline111", 1000, data, size, &r) != CASENET_OK ||
        hashbank_apply(b, id, "vn.hotline111", 1000, data, size, &r) != CASENET_OK || !r.already) {
        fprintf(stderr, "a valid share was not applied exactly once\n");
        abort();
    }
    struct hashbank_stats s;
    if (hashbank_stats(b, &s) != CASENET_OK)
        abort();
    hashbank_free(b);
    return 0;
}
