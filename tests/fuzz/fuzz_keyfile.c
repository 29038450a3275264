/* fuzz_keyfile.c - libFuzzer harness for key files: casenet_keys_load and
 * casenet_authority_pk_load on a file holding the input (mode 0600, at
 * /tmp/casenet-fuzz-keyfile.<pid>, rewritten for each input and removed at
 * exit), and casenet_directory_add_member with the input as the member's
 * PublicKeyFile (what the authority reads from a member), over the fixed
 * network of fuzz_net.h. A keyring that loads must give a public key file;
 * an authority keyring's public file must load back, through
 * casenet_authority_pk_load, to the same signing key; a directory the
 * authority issues must parse, one version up, with at most one member more. */
#include "casenet.h"
#include "fuzz_net.h"
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
static tl_net *net;

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
    net = fz_net_new(NULL, NULL);
    return 0;
}

static void add_member(const uint8_t *data, size_t size)
{
    static const char *const roles[1] = {"responder"};
    static const char *const groups[1] = {"police"};
    const casenet_member_spec spec = {NULL, roles, 1, groups, 1};
    casenet_buf out = {0};
    if (casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                     data, size, &spec, FZ_NOW_MS, FZ_VALIDITY_MS,
                                     &out) != CASENET_OK)
        return;
    casenet_directory *d = NULL;
    CHECK(casenet_directory_parse(out.data, out.len, net->authority_pk, FZ_NOW_MS, 0, &d) ==
          CASENET_OK);
    size_t n = casenet_directory_count(d), old = casenet_directory_count(net->dir);
    CHECK(casenet_directory_version(d) == casenet_directory_version(net->dir) + 1);
    CHECK(n == old || n == old + 1);
    casenet_directory_free(d);
    casenet_buf_free(&out);
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
    add_member(data, size);
    return 0;
}
