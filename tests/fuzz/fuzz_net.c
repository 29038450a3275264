/* fuzz_net.c - the fixed test network of the fuzz harnesses (see fuzz_net.h). */
#include "fuzz_net.h"

#include "crypto.h"
#include "keys_impl.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, int rc)
{
    fprintf(stderr, "fuzz_net: %s: %s\n", what, casenet_strerror(rc));
    abort();
}

/* A fixed 32-byte secret: BLAKE2b-256 of "casenet.fuzz:<label>:<use>". */
static void secret(const char *label, const char *use, uint8_t out[32])
{
    char text[128];
    int n = snprintf(text, sizeof text, "casenet.fuzz:%s:%s", label, use);
    if (n < 0 || (size_t)n >= sizeof text)
        abort();
    crypto_generichash(out, 32, (const uint8_t *)text, (size_t)n, NULL, 0);
}

/* A keyring for id from the secrets named label, created at t. */
static casenet_keys *keyring(const char *id, const char *label, bool member, int64_t t)
{
    uint8_t sign[32], box[32], curve[32];
    secret(label, "sign", sign);
    secret(label, "box", box);
    secret(label, "curve", curve);
    casenet_keys *k = NULL;
    int rc = cn_keys_from_secrets(id, sign, member ? box : NULL, member ? curve : NULL, t, &k);
    sodium_memzero(sign, sizeof sign);
    sodium_memzero(box, sizeof box);
    sodium_memzero(curve, sizeof curve);
    if (rc != CASENET_OK)
        fail("keys_from_secrets", rc);
    return k;
}

casenet_keys *fz_authority(void)
{
    if (casenet_init() != CASENET_OK)
        abort();
    return keyring(CN_AUTHORITY_ID, "authority", false, FZ_T0_MS);
}

struct fz_member {
    const char *id;
    const char *label;
    const char *role;
    const char *group;
    int64_t created;
};

static const struct fz_member fz_members[FZ_N] = {
    [FZ_BROKER] = {"broker", "broker", "broker", NULL, FZ_T0_MS},
    [FZ_POLICE] = {"vn.police", "police", "responder", "police", FZ_T0_MS},
    [FZ_HOTLINE] = {"vn.hotline", "hotline.2", "intake", "hotlines", FZ_ROTATE_MS},
    [FZ_PLATFORM] = {"platform.x", "platform", "platform", "platforms", FZ_T0_MS},
    [FZ_COURT] = {"vn.court", "court", "responder", "police", FZ_T0_MS},
    [FZ_NGO] = {"old.ngo", "ngo", "intake", "hotlines", FZ_T0_MS},
    [FZ_HOTLINE_OLD] = {"vn.hotline", "hotline.1", "intake", "hotlines", FZ_T0_MS},
};

/* Replaces net->signed_dir with next and records it in the history. */
static void advance(tl_net *net, casenet_buf next, casenet_buf *history, size_t *n_history)
{
    casenet_buf_free(&net->signed_dir);
    net->signed_dir = next;
    if (!history)
        return;
    if (*n_history >= FZ_HISTORY_MAX)
        abort();
    casenet_buf *h = &history[(*n_history)++];
    h->data = malloc(next.len);
    if (!h->data)
        abort();
    memcpy(h->data, next.data, next.len);
    h->len = next.len;
}

static void add(tl_net *net, size_t i, int64_t t, casenet_buf *history, size_t *n_history)
{
    const struct fz_member *m = &fz_members[i];
    const char *roles[1] = {m->role}, *groups[1] = {m->group};
    casenet_member_spec spec = {NULL, roles, 1, groups, m->group ? 1 : 0};
    casenet_buf pub = {0}, out = {0};
    int rc = casenet_keys_public_file(net->keys[i], &pub);
    if (rc != CASENET_OK)
        fail("public_file", rc);
    rc = casenet_directory_add_member(net->authority, net->signed_dir.data, net->signed_dir.len,
                                      pub.data, pub.len, &spec, t, FZ_VALIDITY_MS, &out);
    if (rc != CASENET_OK)
        fail("add_member", rc);
    casenet_buf_free(&pub);
    advance(net, out, history, n_history);
}

static void set_status(tl_net *net, size_t i, casenet_member_status st, int64_t t,
                       casenet_buf *history, size_t *n_history)
{
    casenet_buf out = {0};
    int rc = casenet_directory_set_status(net->authority, net->signed_dir.data, net->signed_dir.len,
                                          fz_members[i].id, st, t, FZ_VALIDITY_MS, &out);
    if (rc != CASENET_OK)
        fail("set_status", rc);
    advance(net, out, history, n_history);
}

tl_net *fz_net_new(casenet_buf *history, size_t *n_history)
{
    size_t dummy = 0;
    if (!n_history)
        n_history = &dummy;
    *n_history = 0;
    tl_net *net = calloc(1, sizeof *net);
    if (!net)
        abort();
    net->authority = fz_authority();
    memcpy(net->authority_pk, casenet_keys_sign_pk(net->authority, NULL), 32);
    net->n = FZ_N;
    net->ids = calloc(FZ_N, sizeof *net->ids);
    net->keys = calloc(FZ_N, sizeof *net->keys);
    if (!net->ids || !net->keys)
        abort();
    for (size_t i = 0; i < FZ_N; i++) {
        const struct fz_member *m = &fz_members[i];
        net->ids[i] = strdup(m->id);
        if (!net->ids[i])
            abort();
        net->keys[i] = keyring(m->id, m->label, true, m->created);
    }
    /* Everyone joins at T0 (vn.hotline with its first keys), vn.hotline
     * rotates, then one member is suspended and one revoked. */
    for (size_t i = 0; i < FZ_N; i++) {
        if (i != FZ_HOTLINE)
            add(net, i, FZ_T0_MS, history, n_history);
    }
    add(net, FZ_HOTLINE, FZ_ROTATE_MS, history, n_history);
    set_status(net, FZ_COURT, CASENET_MEMBER_SUSPENDED, FZ_ROTATE_MS + 1000, history, n_history);
    set_status(net, FZ_NGO, CASENET_MEMBER_REVOKED, FZ_ROTATE_MS + 2000, history, n_history);
    net->now_ms = FZ_NOW_MS;
    int rc = casenet_directory_parse(net->signed_dir.data, net->signed_dir.len, net->authority_pk,
                                     FZ_NOW_MS, 0, &net->dir);
    if (rc != CASENET_OK)
        fail("directory_parse", rc);
    return net;
}

void fz_sign(const char *domain, const uint8_t *body, size_t len, const uint8_t *sign_sk,
             uint8_t sig[CASENET_SIGNATURE_BYTES])
{
    casenet_buf pae = {0};
    const uint8_t *parts[1] = {body};
    size_t lens[1] = {len};
    if (cn_pae(domain, 1, parts, lens, &pae) != CASENET_OK)
        abort();
    cn_sign(sig, pae.data, pae.len, sign_sk);
    casenet_buf_free(&pae);
}
