/* fuzz_checkpoint.c - libFuzzer harness: checkpoints, signed notes and
 * verifier keys from arbitrary bytes (common/checkpoint.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casenet.h"
#include "checkpoint.h"
#include "keys_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key of the seed corpus (tests/fuzz/corpus/checkpoint): member
 * "vn.broker", Ed25519 seed 32 x 0x42 (test_audit's test_fuzz_seeds). */
static casenet_keys *broker(void)
{
    static casenet_keys *k;
    if (!k) {
        uint8_t seed[32];
        memset(seed, 0x42, sizeof seed);
        if (casenet_init() != CASENET_OK ||
            cn_keys_from_secrets("vn.broker", seed, NULL, NULL, 0, &k) != CASENET_OK)
            abort();
    }
    return k;
}

/* Invariants: a checkpoint that verifies is the one ckpt_sign makes of its
 * head, byte for byte (one encoding per head); verification implies that
 * the unverified parse agrees; the generic note verifier accepts whatever
 * the strict one does. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    casenet_keys *k = broker();
    const uint8_t *pk = casenet_keys_sign_pk(k, NULL);
    struct ckpt_head h, p;

    int parsed = ckpt_parse(data, size, &p);
    if (ckpt_verify(data, size, "vn.broker", pk, NULL, &h) == CASENET_OK) {
        if (parsed != CASENET_OK || p.size != h.size || memcmp(p.root, h.root, 32) != 0 ||
            p.time_ms != h.time_ms || strcmp(p.origin, h.origin) != 0)
            abort();
        casenet_buf again = {0};
        if (ckpt_sign(k, &h, &again) != CASENET_OK || again.len != size ||
            memcmp(again.data, data, size) != 0) {
            fprintf(stderr, "a verified checkpoint is not canonical\n");
            abort();
        }
        casenet_buf_free(&again);
        size_t tlen = 0;
        if (ckpt_note_verify(data, size, "vn.broker", pk, &tlen) != CASENET_OK || tlen >= size)
            abort();
    }
    size_t tlen = 0;
    if (ckpt_note_verify(data, size, "vn.broker", pk, &tlen) == CASENET_OK && tlen >= size)
        abort();

    /* The same bytes as a verifier key string. */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char name[CKPT_KEY_NAME_MAX + 1];
    uint8_t vpk[32];
    if (ckpt_vkey_parse(s, name, vpk) == CASENET_OK && strlen(name) == 0)
        abort();
    free(s);
    return 0;
}
