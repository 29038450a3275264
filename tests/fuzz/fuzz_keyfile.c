/* fuzz_keyfile.c - libFuzzer harness: casenet_keys_load and
 * casenet_authority_pk_load on a file holding the input (mode 0600, at
 * /tmp/casenet-fuzz-keyfile.<pid>, rewritten for each input and removed at
 * exit). A keyring that loads
 * must give a public key file; an authority keyring's public file must load
 * back, through casenet_authority_pk_load, to the same signing key. */
#include "casenet.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_keyfile: %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char path[64], pub_path[64];

static void cleanup(void)
{
    unlink(path);
    unlink(pub_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (casenet_init() != CASENET_OK)
        abort();
    snprintf(path, sizeof path, "/tmp/casenet-fuzz-keyfile.%ld", (long)getpid());
    snprintf(pub_path, sizeof pub_path, "/tmp/casenet-fuzz-keyfile.%ld.pub", (long)getpid());
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tl_write_file(path, data, size, 0600);
    casenet_keys *k = NULL;
    if (casenet_keys_load(path, &k) == CASENET_OK) {
        const char *id = casenet_keys_member_id(k);
        CHECK(casenet_member_id_valid(id));
        const char *key_id = NULL;
        const uint8_t *sign_pk = casenet_keys_sign_pk(k, &key_id);
        CHECK(sign_pk && strlen(key_id) == 16);
        bool authority = strcmp(id, "authority") == 0;
        CHECK(authority || (casenet_keys_curve_pk(k) && casenet_keys_curve_sk(k)));
        casenet_buf pub = {0};
        CHECK(casenet_keys_public_file(k, &pub) == CASENET_OK);
        if (authority) {
            uint8_t pk[32];
            tl_write_file(pub_path, pub.data, pub.len, 0600);
            CHECK(casenet_authority_pk_load(pub_path, pk) == CASENET_OK);
            CHECK(memcmp(pk, sign_pk, sizeof pk) == 0);
        }
        casenet_buf_free(&pub);
        casenet_keys_free(k);
    }
    uint8_t pk[32];
    (void)casenet_authority_pk_load(path, pk);
    return 0;
}
