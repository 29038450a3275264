/* make_corpus.c - writes the seed corpora of the fuzz harnesses: valid
 * directories, envelopes, receipts and key files of the fixed network of
 * fuzz_net.h, each as it travels and (with a leading selector byte) in the
 * re-sign / seal forms the harnesses read. Deterministic: the same bytes on
 * every run, so the ctest fuzz.corpus can tell when the committed seeds are
 * stale.
 *   make_fuzz_corpus OUTDIR   (writes OUTDIR/{directory,envelope,receipt,keyfile,merkle}/)
 * To refresh the committed seeds: make_fuzz_corpus tests/fuzz/corpus */
#include "casenet.pb-c.h"
#include "envelope_impl.h"
#include "fuzz_net.h"
#include "keys_impl.h"
#include "merkle_mem.h"
#include "testlib.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *outdir;

static void fail(const char *what, int rc)
{
    fprintf(stderr, "make_corpus: %s: %s\n", what, casenet_strerror(rc));
    exit(1);
}

static void make_dir(const char *sub)
{
    char *p = tl_path(outdir, sub);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        perror(p);
        exit(1);
    }
    free(p);
}

/* Writes sel (when >= 0) followed by data to OUTDIR/sub/name. */
static void put(const char *sub, const char *name, int sel, const uint8_t *data, size_t len)
{
    char *dir = tl_path(outdir, sub), *p = tl_path(dir, name);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        exit(1);
    size_t n = 0;
    if (sel >= 0)
        buf[n++] = (uint8_t)sel;
    if (len)
        memcpy(buf + n, data, len);
    tl_write_file(p, buf, n + len, 0644);
    free(buf);
    free(p);
    free(dir);
}

/* A fixed value for label: BLAKE2b of "casenet.fuzz.corpus:<label>". */
static void fixed(const char *label, uint8_t *out, size_t len)
{
    char text[128];
    snprintf(text, sizeof text, "casenet.fuzz.corpus:%s", label);
    crypto_generichash(out, len, (const uint8_t *)text, strlen(text), NULL, 0);
}

/* ------------------------------------------------------------ directory */

static void directories(const casenet_buf *hist, size_t n)
{
    make_dir("directory");
    /* The first version, the one after the rotation, the last; each also in
     * the re-sign form (selector 0x80), and three with selector bits set:
     * min_version 2 (0x81), two days later (0x82), key ids rewritten (0x84). */
    const size_t pick[3] = {0, n - 3, n - 1};
    for (size_t i = 0; i < 3; i++) {
        char name[32];
        const casenet_buf *d = &hist[pick[i]];
        snprintf(name, sizeof name, "signed-v%zu", pick[i] + 1);
        put("directory", name, -1, d->data, d->len);
        Casenet__V1__SignedDirectory *sd =
            casenet__v1__signed_directory__unpack(NULL, d->len, d->data);
        if (!sd)
            fail("unpack directory", CASENET_EBADREQ);
        snprintf(name, sizeof name, "body-v%zu", pick[i] + 1);
        put("directory", name, 0x80, sd->body.data, sd->body.len);
        if (i == 0)
            put("directory", "body-v1-min2", 0x81, sd->body.data, sd->body.len);
        if (i == 2) {
            put("directory", "body-last-late", 0x82, sd->body.data, sd->body.len);
            put("directory", "body-last-fix-ids", 0x84, sd->body.data, sd->body.len);
        }
        casenet__v1__signed_directory__free_unpacked(sd, NULL);
    }
    /* Edit mode (selector 0x88): the harness's own body unchanged, and with
     * a few edits (op, target, value): suspend member 1, add a key to member
     * 2, give member 3 role intake, move member 4's first key to 2 s ago. */
    static const uint8_t edits[] = {9, 1, 2, 5, 2, 7, 10, 3, 5, 2, 4, 0xfe};
    put("directory", "edit-none", 0x88, NULL, 0);
    put("directory", "edit-some", 0x88, edits, sizeof edits);
}

/* ------------------------------------------------------------ envelopes */

struct msg {
    const char *name;
    size_t from;
    int64_t created;
    casenet_kind kind;
    casenet_urgency urgency;
    casenet_msg_status status;
    size_t to[3];
    size_t n_to;
    const char *json;
    bool reply, case_ref;
    int64_t expires;
};

static const char referral_json[] =
    "{\"referral\":{\"caseId\":\"VN-1\",\"intakeChannel\":\"INTAKE_CHANNEL_PHONE\","
    "\"harmCategories\":[\"HARM_CATEGORY_GROOMING\"],\"urgency\":\"URGENCY_EMERGENCY\","
    "\"children\":[{\"ageYears\":13}],"
    "\"legalBasis\":{\"kind\":\"LEGAL_BASIS_KIND_VITAL_INTEREST\"},\"summary\":\"s\"}}";
static const char takedown_json[] =
    "{\"takedownRequest\":{\"caseId\":\"VN-1\",\"items\":[{\"itemId\":\"i1\",\"locator\":"
    "{\"platform\":\"p\",\"url\":\"https://x/1\"}}],\"deadlineMs\":\"1767312000000\","
    "\"legalBasis\":{\"kind\":\"LEGAL_BASIS_KIND_CRIME_PREVENTION\"}}}";
static const char notice_json[] =
    "{\"notice\":{\"reason\":\"NOTICE_REASON_EXPIRED\",\"messageId\":\"AAECAwQFBgcICQoLDA0ODw==\","
    "\"sender\":\"vn.hotline\","
    "\"recipient\":\"vn.police\",\"urgency\":1,\"raisedAtMs\":\"1767225660000\"}}";
static const char status_json[] =
    "{\"status\":{\"caseId\":\"c\",\"status\":\"CASE_STATUS_REDIRECTED\",\"redirectedTo\":"
    "\"vn.police\"}}";
static const char info_json[] = "{\"infoRequest\":{\"caseId\":\"c\",\"questions\":[\"q1\"]}}";
static const char erase_json[] =
    "{\"erase\":{\"caseId\":\"c\",\"reason\":\"ERASE_REASON_LEGAL_ORDER\"}}";

static const struct msg msgs[] = {
    {"referral",
     FZ_HOTLINE,
     FZ_NOW_MS,
     CASENET_KIND_REFERRAL,
     CASENET_URGENCY_EMERGENCY,
     CASENET_MSG_ACTUAL,
     {FZ_POLICE},
     1,
     referral_json,
     false,
     true,
     0},
    {"takedown",
     FZ_POLICE,
     FZ_NOW_MS,
     CASENET_KIND_TAKEDOWN_REQUEST,
     CASENET_URGENCY_URGENT_TAKEDOWN,
     CASENET_MSG_ACTUAL,
     {FZ_PLATFORM, FZ_HOTLINE},
     2,
     takedown_json,
     true,
     true,
     FZ_NOW_MS + FZ_VALIDITY_MS},
    {"escalation",
     FZ_BROKER,
     FZ_NOW_MS,
     CASENET_KIND_ESCALATION,
     CASENET_URGENCY_EMERGENCY,
     CASENET_MSG_ACTUAL,
     {FZ_POLICE},
     1,
     notice_json,
     true,
     false,
     0},
    {"to-suspended",
     FZ_POLICE,
     FZ_NOW_MS,
     CASENET_KIND_STATUS,
     CASENET_URGENCY_STANDARD,
     CASENET_MSG_EXERCISE,
     {FZ_COURT, FZ_HOTLINE},
     2,
     status_json,
     false,
     false,
     0},
    {"old-key",
     FZ_HOTLINE_OLD,
     FZ_T0_MS + 500,
     CASENET_KIND_INFO_REQUEST,
     CASENET_URGENCY_INFO,
     CASENET_MSG_TEST,
     {FZ_POLICE},
     1,
     info_json,
     false,
     false,
     0},
    {"erase",
     FZ_PLATFORM,
     FZ_NOW_MS,
     CASENET_KIND_ERASE,
     CASENET_URGENCY_STANDARD,
     CASENET_MSG_ACTUAL,
     {FZ_POLICE, FZ_HOTLINE, FZ_PLATFORM},
     3,
     erase_json,
     false,
     false,
     0},
};

static casenet_buf payload(const char *json)
{
    casenet_buf out = {0};
    char err[128];
    int rc = casenet_payload_from_json(json, strlen(json), 0, &out, err, sizeof err);
    if (rc != CASENET_OK) {
        fprintf(stderr, "make_corpus: %s\n", err);
        fail("payload_from_json", rc);
    }
    return out;
}

static casenet_buf seal(const tl_net *net, const struct msg *m)
{
    char label[64];
    uint8_t mid[16], nonce[24], key[32], reply[16], ref[16], eph_sk[3][32], eph_pk[3][32];
    snprintf(label, sizeof label, "%s:mid", m->name);
    fixed(label, mid, sizeof mid);
    snprintf(label, sizeof label, "%s:nonce", m->name);
    fixed(label, nonce, sizeof nonce);
    snprintf(label, sizeof label, "%s:key", m->name);
    fixed(label, key, sizeof key);
    fixed("reply", reply, sizeof reply);
    fixed("case", ref, sizeof ref);
    struct cn_seal_recipient r[3];
    for (size_t i = 0; i < m->n_to; i++) {
        casenet_member mem;
        if (casenet_directory_find(net->dir, net->ids[m->to[i]], &mem) != CASENET_OK)
            fail("find", CASENET_ENOTFOUND);
        snprintf(label, sizeof label, "%s:eph%zu", m->name, i);
        fixed(label, eph_sk[i], 32);
        crypto_scalarmult_base(eph_pk[i], eph_sk[i]);
        r[i] = (struct cn_seal_recipient){mem.id, mem.box_key_id, mem.box_pk, eph_pk[i], eph_sk[i]};
    }
    const casenet_keys *from = net->keys[m->from];
    const char *key_id = NULL;
    casenet_buf pl = payload(m->json), env = {0};
    struct cn_seal_params p = {
        .sender = casenet_keys_member_id(from),
        .sign_sk = cn_keys_sign_sk(from, &key_id),
        .kind = m->kind,
        .urgency = m->urgency,
        .status = m->status,
        .created_at_ms = m->created,
        .expires_at_ms = m->expires,
        .in_reply_to = m->reply ? reply : NULL,
        .case_ref = m->case_ref ? ref : NULL,
        .message_id = mid,
        .nonce = nonce,
        .content_key = key,
        .n_recipients = m->n_to,
        .recipients = r,
        .payload = pl.data,
        .payload_len = pl.len,
    };
    p.sign_key_id = key_id;
    int rc = cn_seal_raw(&p, &env);
    if (rc != CASENET_OK)
        fail("seal", rc);
    casenet_buf_free(&pl);
    return env;
}

static void envelopes(const tl_net *net)
{
    make_dir("envelope");
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        const struct msg *m = &msgs[i];
        casenet_buf env = seal(net, m);
        put("envelope", m->name, -1, env.data, env.len);
        /* Re-sign form: 0b10ssssss clen ciphertext header. */
        Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, env.len, env.data);
        if (!e || e->ciphertext.len > 0xffff)
            fail("unpack envelope", CASENET_EBADREQ);
        size_t len = 2 + e->ciphertext.len + e->header.len;
        uint8_t *buf = malloc(len);
        if (!buf)
            exit(1);
        buf[0] = (uint8_t)(e->ciphertext.len >> 8);
        buf[1] = (uint8_t)e->ciphertext.len;
        memcpy(buf + 2, e->ciphertext.data, e->ciphertext.len);
        memcpy(buf + 2 + e->ciphertext.len, e->header.data, e->header.len);
        char name[64];
        snprintf(name, sizeof name, "resign-%s", m->name);
        put("envelope", name, 0x80 | (int)m->from, buf, len);
        free(buf);
        casenet__v1__envelope__free_unpacked(e, NULL);
        /* Seal form: 0b11bkkkkk payload, from the broker for its kinds. */
        casenet_buf pl = payload(m->json);
        snprintf(name, sizeof name, "seal-%s", m->name);
        put("envelope", name, 0xc0 | (m->from == FZ_BROKER ? 0x20 : 0) | (int)m->kind, pl.data,
            pl.len);
        casenet_buf_free(&pl);
        casenet_buf_free(&env);
    }
}

/* ------------------------------------------------------------ receipts */

static void receipts(const tl_net *net)
{
    struct {
        const char *name;
        size_t signer;
        casenet_receipt_status status;
        const char *reason;
        casenet_outcome outcome;
        int64_t at;
    } rs[] = {
        {"delivered", FZ_POLICE, CASENET_RECEIPT_DELIVERED, "", 0, FZ_NOW_MS},
        {"accepted", FZ_POLICE, CASENET_RECEIPT_ACCEPTED, "", 0, FZ_NOW_MS + 1},
        {"declined", FZ_PLATFORM, CASENET_RECEIPT_DECLINED, "redirected", 0, FZ_NOW_MS},
        {"completed", FZ_HOTLINE, CASENET_RECEIPT_COMPLETED, "", CASENET_OUTCOME_RESOLVED,
         FZ_NOW_MS},
        {"old-key", FZ_HOTLINE_OLD, CASENET_RECEIPT_ACCEPTED, "", 0, FZ_T0_MS + 500},
    };
    make_dir("receipt");
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
        casenet_receipt r;
        memset(&r, 0, sizeof r);
        fixed("referral:mid", r.message_id, sizeof r.message_id);
        fixed("referral:hash", r.envelope_hash, sizeof r.envelope_hash);
        strcpy(r.sender, "vn.police");
        strcpy(r.recipient, casenet_keys_member_id(net->keys[rs[i].signer]));
        r.status = rs[i].status;
        strcpy(r.reason, rs[i].reason);
        r.outcome = rs[i].outcome;
        r.signed_at_ms = rs[i].at;
        casenet_buf out = {0};
        int rc = casenet_receipt_sign(net->keys[rs[i].signer], &r, &out);
        if (rc != CASENET_OK)
            fail("receipt_sign", rc);
        put("receipt", rs[i].name, -1, out.data, out.len);
        Casenet__V1__SignedReceipt *s =
            casenet__v1__signed_receipt__unpack(NULL, out.len, out.data);
        if (!s)
            fail("unpack receipt", CASENET_EBADREQ);
        char name[64];
        snprintf(name, sizeof name, "resign-%s", rs[i].name);
        put("receipt", name, 0x80 | (int)rs[i].signer, s->body.data, s->body.len);
        casenet__v1__signed_receipt__free_unpacked(s, NULL);
        casenet_buf_free(&out);
    }
    casenet_submit_receipt sr;
    memset(&sr, 0, sizeof sr);
    fixed("referral:mid", sr.message_id, sizeof sr.message_id);
    fixed("referral:hash", sr.envelope_hash, sizeof sr.envelope_hash);
    sr.accepted_at_ms = FZ_NOW_MS;
    sr.audit_index = 7;
    casenet_buf out = {0};
    int rc = casenet_submit_receipt_sign(net->keys[FZ_BROKER], &sr, &out);
    if (rc != CASENET_OK)
        fail("submit_receipt_sign", rc);
    put("receipt", "submit", -1, out.data, out.len);
    Casenet__V1__BrokerReceipt *b = casenet__v1__broker_receipt__unpack(NULL, out.len, out.data);
    if (!b)
        fail("unpack broker receipt", CASENET_EBADREQ);
    put("receipt", "resign-submit", 0xc0 | FZ_BROKER, b->body.data, b->body.len);
    casenet__v1__broker_receipt__free_unpacked(b, NULL);
    casenet_buf_free(&out);
}

/* ------------------------------------------------------------ key files */

static void save(const char *tmp, const casenet_keys *k, const char *name)
{
    char sec_name[80], pub_name[80];
    snprintf(sec_name, sizeof sec_name, "%s.key", name);
    snprintf(pub_name, sizeof pub_name, "%s.pub", name);
    char *sec = tl_path(tmp, sec_name), *pub = tl_path(tmp, pub_name);
    int rc = casenet_keys_save(k, sec, pub);
    if (rc != CASENET_OK)
        fail("keys_save", rc);
    size_t len = 0;
    uint8_t *data = tl_read_file(sec, &len);
    put("keyfile", sec_name, -1, data, len);
    free(data);
    data = tl_read_file(pub, &len);
    put("keyfile", pub_name, -1, data, len);
    free(data);
    free(sec);
    free(pub);
}

static void keyfiles(const tl_net *net)
{
    make_dir("keyfile");
    char *tmp = tl_tmpdir();
    save(tmp, net->authority, "authority");
    save(tmp, net->keys[FZ_POLICE], "vn.police");
    save(tmp, net->keys[FZ_BROKER], "broker");
    /* Public files for the authority's add-member: a re-admission with the
     * keys from before a rotation, and a new member. */
    save(tmp, net->keys[FZ_HOTLINE_OLD], "vn.hotline.old");
    uint8_t sign[32], box[32], curve[32];
    fixed("new.member:sign", sign, sizeof sign);
    fixed("new.member:box", box, sizeof box);
    fixed("new.member:curve", curve, sizeof curve);
    casenet_keys *k = NULL;
    int rc = cn_keys_from_secrets("new.member", sign, box, curve, FZ_NOW_MS, &k);
    if (rc != CASENET_OK)
        fail("keys_from_secrets", rc);
    save(tmp, k, "new.member");
    casenet_keys_free(k);
    tl_rmrf(tmp);
    free(tmp);
}

/* ------------------------------------------------------------ merkle */

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* op a b h1 h2 proof..., as fuzz_merkle reads it. */
static void merkle_seed(const char *name, uint8_t op, uint64_t a, uint64_t b, const uint8_t *h1,
                        const uint8_t *h2, const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t n)
{
    uint8_t buf[1 + 16 + 64 + MERKLE_PROOF_MAX * MERKLE_HASH_BYTES];
    le64(buf, a);
    le64(buf + 8, b);
    memcpy(buf + 16, h1, MERKLE_HASH_BYTES);
    memcpy(buf + 16 + MERKLE_HASH_BYTES, h2, MERKLE_HASH_BYTES);
    if (n)
        memcpy(buf + 16 + 2 * MERKLE_HASH_BYTES, proof, n * MERKLE_HASH_BYTES);
    put("merkle", name, op, buf, 16 + 2 * MERKLE_HASH_BYTES + n * MERKLE_HASH_BYTES);
}

static void merkle(void)
{
    struct merkle_mem m;
    uint8_t proof[MERKLE_PROOF_MAX][MERKLE_HASH_BYTES], h1[MERKLE_HASH_BYTES],
        h2[MERKLE_HASH_BYTES];
    size_t n = 0;
    make_dir("merkle");
    mm_init(&m, 64);
    mm_append(&m, 13);
    mm_reset(&m, 13);
    /* Inclusion of leaf 5 in 13 leaves; consistency from 6 to 13 and 4 to 13. */
    mm_leaf(5, h1);
    if (merkle_root_at(mm_get, &m, 13, h2) != CASENET_OK ||
        merkle_inclusion_proof(mm_get, &m, 5, 13, proof, MERKLE_PROOF_MAX, &n) != CASENET_OK)
        fail("inclusion proof", CASENET_EINVAL);
    merkle_seed("inclusion-5-13", 0, 5, 13, h1, h2, (const uint8_t(*)[32])proof, n);
    const uint64_t from[2] = {6, 4};
    for (int i = 0; i < 2; i++) {
        if (merkle_root_at(mm_get, &m, from[i], h1) != CASENET_OK ||
            merkle_consistency_proof(mm_get, &m, from[i], 13, proof, MERKLE_PROOF_MAX, &n) !=
                CASENET_OK)
            fail("consistency proof", CASENET_EINVAL);
        char name[32];
        snprintf(name, sizeof name, "consistency-%u-13", (unsigned)from[i]);
        merkle_seed(name, 1, from[i], 13, h1, h2, (const uint8_t(*)[32])proof, n);
    }
    /* Tree mode: sizes reduced into the harness's own tree. */
    memset(h1, 0x5a, sizeof h1);
    merkle_seed("tree-inclusion", 2, 77, 250, h1, h2, NULL, 0);
    merkle_seed("tree-consistency", 3, 100, 299, h1, h2, NULL, 0);
    mm_free(&m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        perror(outdir);
        return 1;
    }
    casenet_buf hist[FZ_HISTORY_MAX];
    size_t n = 0;
    tl_net *net = fz_net_new(hist, &n);
    directories(hist, n);
    envelopes(net);
    receipts(net);
    keyfiles(net);
    merkle();
    for (size_t i = 0; i < n; i++)
        casenet_buf_free(&hist[i]);
    tl_net_free(net);
    return 0;
}
