/* fuzz_envelope.c - libFuzzer harness: casenet_envelope_verify,
 * casenet_open and casenet_envelope_box_key_id on outside bytes, against the fixed network of
 * fuzz_net.h (built once in LLVMFuzzerInitialize, the same on every run).
 *
 * Every input is taken as an Envelope as it is, verified, and opened by the
 * first recipient its header names (the broker when none is a member). An
 * input whose first byte has the high bit set is also read as
 *   0b10ssssss clen(2 B, big-endian) ciphertext header - re-sign: the header
 *     bytes are signed with keyring s % FZ_N through cn_envelope_pack, so the
 *     checks behind the signature are reached (the header comes last, so
 *     that inserting or removing bytes in it keeps the layout);
 *   0b11bkkkkk payload - seal: the payload is sealed by cn_seal_raw with fixed
 *     keys and nonces as kind k, from vn.police (from the broker when b is
 *     set) to vn.hotline and platform.x, so decryption, the key commitment and
 *     the payload parser see fuzzed plaintexts.
 * The two checks must agree: open succeeds only where verify succeeds or
 * fails for an inactive recipient alone, and after a successful verify open
 * fails only on the reader's side. */
#include "casenet.pb-c.h"
#include "crypto.h"
#include "envelope_impl.h"
#include "fuzz_net.h"
#include "keys_impl.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MODE_FLAG 0x80
#define SEAL_FLAG 0x40

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_envelope: %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static tl_net *net;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    net = fz_net_new(NULL, NULL);
    return 0;
}

/* The keyring of the first wrapped key's recipient, else the broker's. */
static const casenet_keys *pick_reader(const uint8_t *buf, size_t len)
{
    const casenet_keys *k = net->keys[FZ_BROKER];
    Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, len, buf);
    Casenet__V1__Header *h =
        e ? casenet__v1__header__unpack(NULL, e->header.len, e->header.data) : NULL;
    if (h && h->n_wrapped_keys > 0) {
        for (size_t i = 0; i < net->n; i++) {
            if (strcmp(net->ids[i], h->wrapped_keys[0]->recipient) == 0) {
                k = net->keys[i];
                break;
            }
        }
    }
    casenet__v1__header__free_unpacked(h, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    return k;
}

static void check_info(const casenet_message_info *info, const uint8_t *buf, size_t len)
{
    uint8_t hash[CASENET_HASH_BYTES];
    cn_sha256(buf, len, hash);
    CHECK(memcmp(hash, info->envelope_hash, sizeof hash) == 0);
    CHECK(casenet_member_id_valid(info->sender));
    CHECK(strlen(info->sign_key_id) == CASENET_KEY_ID_CHARS);
    CHECK(info->n_recipients >= 1 && info->n_recipients <= CASENET_MAX_RECIPIENTS);
    for (size_t i = 0; i < info->n_recipients; i++)
        CHECK(casenet_member_id_valid(info->recipients[i]));
    CHECK(info->ciphertext_len >= 16);
    CHECK(info->urgency >= CASENET_URGENCY_EMERGENCY && info->urgency <= CASENET_URGENCY_INFO);
    CHECK(info->status >= CASENET_MSG_ACTUAL && info->status <= CASENET_MSG_TEST);
}

static void check(const uint8_t *buf, size_t len)
{
    casenet_message_info vinfo, oinfo;
    memset(&vinfo, 0, sizeof vinfo);
    memset(&oinfo, 0, sizeof oinfo);
    int vrc = casenet_envelope_verify(net->dir, buf, len, &vinfo);
    if (vrc == CASENET_OK)
        check_info(&vinfo, buf, len);

    casenet_buf payload = {0};
    const casenet_keys *reader = pick_reader(buf, len);
    int orc = casenet_open(reader, net->dir, buf, len, &oinfo, &payload);
    if (orc == CASENET_OK) {
        CHECK(vrc == CASENET_OK || vrc == CASENET_EUNKNOWNRCPT);
        check_info(&oinfo, buf, len);
        CHECK(payload.len + 16 == oinfo.ciphertext_len);
        if (vrc == CASENET_OK)
            CHECK(memcmp(vinfo.message_id, oinfo.message_id, sizeof vinfo.message_id) == 0 &&
                  strcmp(vinfo.sender, oinfo.sender) == 0 &&
                  vinfo.n_recipients == oinfo.n_recipients);
        bool listed = false;
        for (size_t i = 0; i < oinfo.n_recipients; i++)
            listed |= strcmp(oinfo.recipients[i], casenet_keys_member_id(reader)) == 0;
        CHECK(listed);
        casenet_buf json = {0};
        if (casenet_payload_to_json(payload.data, payload.len, &json) == CASENET_OK)
            casenet_buf_free(&json);
        casenet_buf_free(&payload);
    } else if (vrc == CASENET_OK) {
        CHECK(orc == CASENET_ENOTRECIPIENT || orc == CASENET_ECRYPTO || orc == CASENET_ECOMMIT ||
              orc == CASENET_EBADREQ || orc == CASENET_ENOMEM || orc == CASENET_EKEYRETIRED ||
              orc == CASENET_EKEYUNKNOWN);
    }
    /* The key id a missing-key error names comes from the same bytes. */
    char key_id[CASENET_KEY_ID_CHARS + 1];
    int krc = casenet_envelope_box_key_id(buf, len, casenet_keys_member_id(reader), key_id);
    if (krc == CASENET_OK)
        CHECK(strlen(key_id) == CASENET_KEY_ID_CHARS);
    if (orc == CASENET_EKEYRETIRED || orc == CASENET_EKEYUNKNOWN)
        CHECK(krc == CASENET_OK && !cn_keys_box_sk(reader, key_id, NULL));
    casenet_message_info_clear(&vinfo);
    casenet_message_info_clear(&oinfo);
}

static void resign(uint8_t sel, const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    size_t clen = ((size_t)data[0] << 8) | data[1];
    data += 2;
    size -= 2;
    if (clen > size)
        clen = size;
    const casenet_keys *signer = net->keys[(sel & 0x3f) % net->n];
    casenet_buf env = {0};
    if (cn_envelope_pack(data + clen, size - clen, cn_keys_sign_sk(signer, NULL), data, clen,
                         &env) != CASENET_OK)
        abort();
    check(env.data, env.len);
    casenet_buf_free(&env);
}

static void seal(uint8_t sel, const uint8_t *payload, size_t len)
{
    static const uint8_t mid[16] = "fuzz-message-id";
    static const uint8_t nonce[24] = "fuzz-nonce-24-bytes-long";
    static const uint8_t ckey[32] = "fuzz-content-key-32-bytes-long!";
    static const uint8_t eph_sk[2][32] = {"fuzz-ephemeral-secret-key-one!!",
                                          "fuzz-ephemeral-secret-key-two!!"};
    static const char *const to[2] = {"vn.hotline", "platform.x"};
    const casenet_keys *sender = net->keys[(sel & 0x20) ? FZ_BROKER : FZ_POLICE];
    struct cn_seal_recipient r[2];
    uint8_t eph_pk[2][32];
    for (int i = 0; i < 2; i++) {
        casenet_member m;
        if (casenet_directory_find(net->dir, to[i], &m) != CASENET_OK)
            abort();
        cn_x25519_base(eph_pk[i], eph_sk[i]);
        r[i] = (struct cn_seal_recipient){m.id, m.box_key_id, m.box_pk, eph_pk[i], eph_sk[i]};
    }
    const char *key_id = NULL;
    struct cn_seal_params p = {
        .sender = casenet_keys_member_id(sender),
        .sign_sk = cn_keys_sign_sk(sender, &key_id),
        .kind = (casenet_kind)(sel & 0x1f),
        .urgency = CASENET_URGENCY_STANDARD,
        .status = CASENET_MSG_ACTUAL,
        .created_at_ms = FZ_NOW_MS,
        .message_id = mid,
        .nonce = nonce,
        .content_key = ckey,
        .n_recipients = 2,
        .recipients = r,
        .payload = payload,
        .payload_len = len,
    };
    p.sign_key_id = key_id;
    casenet_buf env = {0};
    if (cn_seal_raw(&p, &env) != CASENET_OK)
        abort();
    check(env.data, env.len);
    casenet_buf_free(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    if (size >= 1 && (data[0] & MODE_FLAG)) {
        if (data[0] & SEAL_FLAG)
            seal(data[0], data + 1, size - 1);
        else
            resign(data[0], data + 1, size - 1);
    }
    return 0;
}
