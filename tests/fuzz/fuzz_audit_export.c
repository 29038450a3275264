/* fuzz_audit_export.c - libFuzzer harness: the audit export reader and log
 * verifier, and the remembered-state decoder, on arbitrary bytes
 * (clients/auditlog.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog.h"
#include "casenet.h"
#include "keys_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key of the seed corpus (tests/fuzz/corpus/audit_export): member
 * "vn.broker", Ed25519 seed 32 x 0x42, network "vn.cop". */
static const uint8_t *broker_pk(void)
{
    static casenet_keys *k;
    if (!k) {
        uint8_t seed[32];
        memset(seed, 0x42, sizeof seed);
        if (casenet_init() != CASENET_OK ||
            cn_keys_from_secrets("vn.broker", seed, NULL, NULL, 0, &k) != CASENET_OK)
            abort();
    }
    return casenet_keys_sign_pk(k, NULL);
}

/* Invariants: a verdict is always given with a named place; a success
 * yields a state that encodes and decodes to itself; a decoded state
 * re-encodes to the same bytes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct auditv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.origin = "casenet.audit/vn.cop";
    cfg.key_name = "vn.broker";
    cfg.sign_pk = broker_pk();
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f)
        return 0;
    struct auditv_state st;
    struct auditv_failure fail;
    int rc = auditv_verify_file(f, &cfg, NULL, &st, &fail);
    fclose(f);
    if (rc == CASENET_OK) {
        casenet_buf enc = {0};
        struct auditv_state back;
        if (fail.where != AUDITV_OK || auditv_state_encode(&st, &enc) != CASENET_OK ||
            auditv_state_decode(enc.data, enc.len, &back) != CASENET_OK || back.size != st.size ||
            memcmp(back.root, st.root, sizeof st.root) != 0)
            abort();
        casenet_buf_free(&enc);
    } else if (rc != CASENET_ENOMEM && (fail.where == AUDITV_OK || fail.reason[0] == '\0')) {
        fprintf(stderr, "failure %d without a place\n", rc);
        abort();
    }

    struct auditv_state s;
    if (auditv_state_decode(data, size, &s) == CASENET_OK) {
        casenet_buf enc = {0};
        if (auditv_state_encode(&s, &enc) != CASENET_OK || enc.len != size ||
            memcmp(enc.data, data, size) != 0)
            abort();
        casenet_buf_free(&enc);
    }
    return 0;
}
