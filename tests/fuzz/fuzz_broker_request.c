/* fuzz_broker_request.c - libFuzzer harness over casenetd's request path:
 * req_dispatch (unpack, version and member checks, every handler, the
 * savepoint, the REJECTED audit event) on a real SQLite store in a temporary
 * directory, one batch transaction per input, as the loop runs it.
 *
 * The frame also goes through limits_request_peek, which the loop runs on
 * every frame it receives.
 *
 * Input: one byte choosing the connection's member (the ZAP User-Id: a
 * sender, a recipient, the broker itself, "" or an unknown id), then the
 * request frame. Invariants: every frame gets a Response that parses, with
 * protocol version 1 and, when the frame was a version-1 Request, its
 * request id; no input makes the store fail.
 *
 * Member keys are derived from fixed seeds and a submitted referral is sealed
 * deterministically, so the seed corpus (tests/fuzz/corpus/broker_request)
 * stays valid across runs: with CASENET_FUZZ_WRITE_SEEDS=DIR the harness
 * writes one seed per request kind into DIR at start-up. */
#include "broker.h"
#include "envelope_impl.h"
#include "handlers.h"
#include "keys_impl.h"
#include "member_limits.h"
#include "log.h"
#include "store.h"
#include "testlib.h"
#include "tl_net.h"
#include "util.h"

#include "casenet.pb-c.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KEYS_MS     1735689600000LL /* 2025-01-01: when the member keys were made */
#define FUZZ_SEALED_MS   1735776000000LL /* 2025-01-02: the sealed referral */
#define FUZZ_VALIDITY_MS (100LL * 365 * 24 * 3600 * 1000)
#define SENDER           "vn.hotline111"
#define RECIPIENT        "vn.police.a05"
#define BROKER_ID        "vn.broker"

static const char *const who[] = {SENDER, RECIPIENT, BROKER_ID, "", "vn.unknown"};
#define N_WHO (sizeof who / sizeof who[0])

static struct {
    tl_net *net;
    char *dir;
    struct broker_config cfg;
    struct broker b;
    casenet_buf sealed;  /* the deterministic referral SENDER -> RECIPIENT */
    casenet_buf receipt; /* RECIPIENT's DELIVERED receipt for it */
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
} F;

static void die(const char *what, int rc)
{
    fprintf(stderr, "fuzz_broker_request: %s: %s\n", what, casenet_strerror(rc));
    abort();
}

static void seed_bytes(const char *label, const char *id, uint8_t out[32])
{
    char in[128];
    snprintf(in, sizeof in, "casenet-fuzz:%s:%s", label, id);
    cn_sha256((const uint8_t *)in, strlen(in), out);
}

/* A network whose member keys are the same on every run, listed in a
 * directory issued at FUZZ_KEYS_MS (keys are valid from their listing) for a
 * century. */
static void build_network(void)
{
    static const char *const ids[] = {BROKER_ID, SENDER, RECIPIENT};
    static const char *const roles[] = {"broker", "intake", "responder"};
    tl_net *net = calloc(1, sizeof *net);
    int rc;
    if (!net)
        die("calloc", CASENET_ENOMEM);
    uint8_t auth_seed[32];
    seed_bytes("sign", CN_AUTHORITY_ID, auth_seed);
    if ((rc = cn_keys_from_secrets(CN_AUTHORITY_ID, auth_seed, NULL, NULL, FUZZ_KEYS_MS,
                                   &net->authority)) != CASENET_OK)
        die("authority", rc);
    memcpy(net->authority_pk, casenet_keys_sign_pk(net->authority, NULL), 32);
    net->n = 3;
    net->ids = calloc(3, sizeof *net->ids);
    net->keys = calloc(3, sizeof *net->keys);
    for (size_t i = 0; i < 3; i++) {
        net->ids[i] = strdup(ids[i]);
        uint8_t sign[32], box[32], curve[32];
        seed_bytes("sign", ids[i], sign);
        seed_bytes("box", ids[i], box);
        seed_bytes("curve", ids[i], curve);
        if ((rc = cn_keys_from_secrets(ids[i], sign, box, curve, FUZZ_KEYS_MS, &net->keys[i])) !=
            CASENET_OK)
            die("keys", rc);
        casenet_buf pub = {0}, out = {0};
        casenet_member_spec spec = {.roles = &roles[i], .n_roles = 1};
        if ((rc = casenet_keys_public_file(net->keys[i], &pub)) != CASENET_OK ||
            (rc = casenet_directory_add_member(net->authority, net->signed_dir.data,
                                               net->signed_dir.len, pub.data, pub.len, &spec,
                                               FUZZ_KEYS_MS, FUZZ_VALIDITY_MS, &out)) != CASENET_OK)
            die("add_member", rc);
        casenet_buf_free(&pub);
        casenet_buf_free(&net->signed_dir);
        net->signed_dir = out;
    }
    tl_net_reload(net);
    F.net = net;
}

/* The referral and its receipt, byte for byte the same on every run. */
static void build_sealed(void)
{
    casenet_member r;
    const char *key_id = NULL;
    const casenet_keys *k = tl_net_keys(F.net, SENDER);
    const uint8_t *sign_sk = cn_keys_sign_sk(k, &key_id);
    if (casenet_directory_find(F.net->dir, RECIPIENT, &r) != CASENET_OK)
        die("recipient", CASENET_ENOTFOUND);
    uint8_t nonce[32], content[32], eph_sk[32], eph_pk[32], mid[32];
    seed_bytes("nonce", "", nonce);
    seed_bytes("content", "", content);
    seed_bytes("eph", "", eph_sk);
    seed_bytes("id", "", mid);
    crypto_scalarmult_base(eph_pk, eph_sk);
    memcpy(F.message_id, mid, sizeof F.message_id);
    struct cn_seal_recipient rc1 = {RECIPIENT, r.box_key_id, r.box_pk, eph_pk, eph_sk};
    casenet_buf payload = tl_referral_payload("a fuzzing referral");
    struct cn_seal_params p = {.sender = SENDER,
                               .sign_key_id = key_id,
                               .sign_sk = sign_sk,
                               .kind = CASENET_KIND_REFERRAL,
                               .urgency = CASENET_URGENCY_STANDARD,
                               .status = CASENET_MSG_ACTUAL,
                               .created_at_ms = FUZZ_SEALED_MS,
                               .message_id = F.message_id,
                               .nonce = nonce,
                               .content_key = content,
                               .n_recipients = 1,
                               .recipients = &rc1,
                               .payload = payload.data,
                               .payload_len = payload.len};
    int rc = cn_seal_raw(&p, &F.sealed);
    casenet_buf_free(&payload);
    if (rc != CASENET_OK)
        die("seal", rc);
    casenet_message_info info;
    if ((rc = casenet_envelope_verify(F.net->dir, F.sealed.data, F.sealed.len, &info)) !=
        CASENET_OK)
        die("verify", rc);
    casenet_receipt rec = {0};
    memcpy(rec.message_id, F.message_id, sizeof rec.message_id);
    memcpy(rec.envelope_hash, info.envelope_hash, sizeof rec.envelope_hash);
    snprintf(rec.sender, sizeof rec.sender, "%s", SENDER);
    snprintf(rec.recipient, sizeof rec.recipient, "%s", RECIPIENT);
    rec.status = CASENET_RECEIPT_DELIVERED;
    rec.signed_at_ms = FUZZ_SEALED_MS + 1000;
    casenet_message_info_clear(&info);
    if ((rc = casenet_receipt_sign(tl_net_keys(F.net, RECIPIENT), &rec, &F.receipt)) != CASENET_OK)
        die("receipt", rc);
}

static void cleanup(void)
{
    if (F.b.store)
        store_close(F.b.store);
    casenet_directory_free(F.b.dir);
    limits_free(F.b.limits);
    if (F.dir) {
        tl_rmrf(F.dir);
        free(F.dir);
    }
    free(F.cfg.data_dir);
    casenet_buf_free(&F.sealed);
    casenet_buf_free(&F.receipt);
    tl_net_free(F.net);
}

/* One input, as the loop handles a batch of one. Returns the reply. */
static casenet_buf run_one(const char *member, const uint8_t *frame, size_t len)
{
    struct store *st = F.b.store;
    struct batch bt = {0};
    casenet_buf reply = {0};
    bool subscribe = false;
    int rc = store_begin(st);
    if (rc != CASENET_OK)
        die("begin", rc);
    rc = req_dispatch(&F.b, &bt, member, frame, len, &reply, &subscribe);
    if (rc == CASENET_ENOMEM && !reply.data)
        die("dispatch: out of memory without a reply", rc);
    if (bt.store_failed) {
        store_rollback(st);
        die("an input made the store fail", CASENET_EUNAVAIL);
    }
    if ((rc = store_commit(st)) != CASENET_OK)
        die("commit", rc);
    if (bt.new_dir) {
        casenet_directory_free(F.b.dir);
        F.b.dir = bt.new_dir;
        bt.new_dir = NULL;
    }
    batch_clear(&bt);
    return reply;
}

static void write_seed(const char *dir, const char *name, uint8_t who_index,
                       const Casenet__V1__Request *req)
{
    size_t len = casenet__v1__request__get_packed_size(req);
    uint8_t *buf = malloc(len + 1);
    buf[0] = who_index;
    casenet__v1__request__pack(req, buf + 1);
    char *path = tl_path(dir, name);
    tl_write_file(path, buf, len + 1, 0644);
    free(path);
    free(buf);
}

static void write_seeds(const char *dir)
{
    Casenet__V1__Request r = CASENET__V1__REQUEST__INIT;
    r.protocol_version = 1;
    r.request_id = 7;

    Casenet__V1__Hello hello = CASENET__V1__HELLO__INIT;
    hello.client = (char *)"fuzz";
    r.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    r.hello = &hello;
    write_seed(dir, "hello.bin", 0, &r);

    Casenet__V1__GetDirectory gd = CASENET__V1__GET_DIRECTORY__INIT;
    r.body_case = CASENET__V1__REQUEST__BODY_GET_DIRECTORY;
    r.get_directory = &gd;
    write_seed(dir, "get_directory.bin", 1, &r);

    /* The next version: the broker listed again, a moment later. */
    casenet_buf pub = {0}, next = {0};
    const char *broker_role[] = {"broker"};
    casenet_member_spec spec = {.roles = broker_role, .n_roles = 1};
    if (casenet_keys_public_file(tl_net_keys(F.net, BROKER_ID), &pub) != CASENET_OK ||
        casenet_directory_add_member(F.net->authority, F.net->signed_dir.data,
                                     F.net->signed_dir.len, pub.data, pub.len, &spec,
                                     FUZZ_KEYS_MS + 1000, FUZZ_VALIDITY_MS, &next) != CASENET_OK)
        die("next directory", CASENET_EINVAL);
    Casenet__V1__PublishDirectory pd = CASENET__V1__PUBLISH_DIRECTORY__INIT;
    pd.signed_directory.data = next.data;
    pd.signed_directory.len = next.len;
    r.body_case = CASENET__V1__REQUEST__BODY_PUBLISH_DIRECTORY;
    r.publish_directory = &pd;
    write_seed(dir, "publish_directory.bin", 2, &r);
    casenet_buf_free(&pub);
    casenet_buf_free(&next);

    Casenet__V1__Submit sub = CASENET__V1__SUBMIT__INIT;
    sub.envelope.data = F.sealed.data;
    sub.envelope.len = F.sealed.len;
    r.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    r.submit = &sub;
    write_seed(dir, "submit.bin", 0, &r);

    Casenet__V1__ListInbox li = CASENET__V1__LIST_INBOX__INIT;
    li.limit = 10;
    r.body_case = CASENET__V1__REQUEST__BODY_LIST_INBOX;
    r.list_inbox = &li;
    write_seed(dir, "list_inbox.bin", 1, &r);

    Casenet__V1__Fetch fe = CASENET__V1__FETCH__INIT;
    fe.message_id.data = F.message_id;
    fe.message_id.len = sizeof F.message_id;
    r.body_case = CASENET__V1__REQUEST__BODY_FETCH;
    r.fetch = &fe;
    write_seed(dir, "fetch.bin", 1, &r);

    Casenet__V1__SendReceipt sr = CASENET__V1__SEND_RECEIPT__INIT;
    sr.signed_receipt.data = F.receipt.data;
    sr.signed_receipt.len = F.receipt.len;
    r.body_case = CASENET__V1__REQUEST__BODY_RECEIPT;
    r.receipt = &sr;
    write_seed(dir, "receipt.bin", 1, &r);

    Casenet__V1__Subscribe su = CASENET__V1__SUBSCRIBE__INIT;
    r.body_case = CASENET__V1__REQUEST__BODY_SUBSCRIBE;
    r.subscribe = &su;
    write_seed(dir, "subscribe.bin", 1, &r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (casenet_init() != CASENET_OK)
        die("casenet_init", CASENET_ECRYPTO);
    log_set_level(LOG_ERROR);
    /* The store commits with fsync: keep it in memory-backed storage. */
    if (access("/dev/shm", W_OK) == 0)
        setenv("TMPDIR", "/dev/shm", 1);
    build_network();
    build_sealed();
    F.dir = tl_tmpdir();
    F.cfg.data_dir = strdup(F.dir);
    F.cfg.limits = (struct broker_limits){
        .max_envelope_bytes = BROKER_DEFAULT_MAX_ENVELOPE,
        .max_recipients = BROKER_DEFAULT_MAX_RCPTS,
        .clock_skew_s = 4000000000u, /* the seeds are sealed at a fixed time */
        .batch_max = BROKER_DEFAULT_BATCH_MAX,
        .max_inbox_backlog = LIMITS_DEFAULT_INBOX_BACKLOG,
        .fair_share = LIMITS_DEFAULT_FAIR_SHARE,
        .min_free_mb = 0,
        .max_message_mb = 256, /* max_message_size and blob_quota as the table defaults them */
        .blob_quota_mb = 1024,
    };
    F.b.cfg = &F.cfg;
    policy_defaults(&F.b.policy);
    F.b.keys = tl_net_keys(F.net, BROKER_ID);
    F.b.broker_id = BROKER_ID;
    memcpy(F.b.authority_pk, F.net->authority_pk, sizeof F.b.authority_pk);
    F.b.limits = limits_new(NULL); /* no bucket: every input reaches the handlers */
    int rc = casenet_directory_parse(F.net->signed_dir.data, F.net->signed_dir.len,
                                     F.net->authority_pk, cn_now_ms(), 0, &F.b.dir);
    if (rc != CASENET_OK)
        die("directory", rc);
    if ((rc = store_open(F.dir, &F.b.store)) != CASENET_OK)
        die("store", rc);
    atexit(cleanup);
    /* The referral is in the recipient's inbox from the start, so that
     * Fetch and receipt inputs reach their handlers' depths. */
    Casenet__V1__Request r = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Submit sub = CASENET__V1__SUBMIT__INIT;
    sub.envelope.data = F.sealed.data;
    sub.envelope.len = F.sealed.len;
    r.protocol_version = 1;
    r.request_id = 1;
    r.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    r.submit = &sub;
    size_t len = casenet__v1__request__get_packed_size(&r);
    uint8_t *buf = malloc(len);
    casenet__v1__request__pack(&r, buf);
    casenet_buf reply = run_one(SENDER, buf, len);
    Casenet__V1__Response *resp = casenet__v1__response__unpack(NULL, reply.len, reply.data);
    if (!resp || resp->error)
        die("the sealed referral was refused", resp && resp->error ? (int)resp->error->code : -1);
    casenet__v1__response__free_unpacked(resp, NULL);
    casenet_buf_free(&reply);
    free(buf);
    const char *seeds = getenv("CASENET_FUZZ_WRITE_SEEDS");
    if (seeds)
        write_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *member = who[data[0] % N_WHO];
    const uint8_t *frame = data + 1;
    size_t len = size - 1;
    casenet_buf reply = run_one(member, frame, len);
    Casenet__V1__Response *resp = casenet__v1__response__unpack(NULL, reply.len, reply.data);
    if (!resp || resp->protocol_version != BROKER_PROTOCOL_VERSION) {
        fprintf(stderr, "the reply is not a version-1 Response\n");
        abort();
    }
    Casenet__V1__Request *req = casenet__v1__request__unpack(NULL, len, frame);
    if (req && req->protocol_version == BROKER_PROTOCOL_VERSION &&
        resp->request_id != req->request_id) {
        fprintf(stderr, "the reply does not carry the request's id\n");
        abort();
    }
    /* The loop's look at the frame before its batch (fair batches, the
     * pending cap): never fails, and its cost stays within the dearest
     * request's. */
    uint32_t cost = 0;
    uint64_t peeked_id = 0;
    limits_request_peek(frame, len, &cost, &peeked_id);
    if (cost < 1 || cost > LIMITS_COST_MAX) {
        fprintf(stderr, "request cost %u out of range\n", (unsigned)cost);
        abort();
    }
    if (resp->error && (resp->error->code <= 0 || (int)resp->error->code > CASENET_EDIREXPIRED)) {
        fprintf(stderr, "unknown error code %d\n", (int)resp->error->code);
        abort();
    }
    if (resp->error && resp->error->directory_version &&
        resp->error->code != CASENET__V1__ERROR_CODE__ERROR_CODE_STALE_DIRECTORY) {
        fprintf(stderr, "directory_version with error code %d\n", (int)resp->error->code);
        abort();
    }
    if (req)
        casenet__v1__request__free_unpacked(req, NULL);
    casenet__v1__response__free_unpacked(resp, NULL);
    casenet_buf_free(&reply);
    return 0;
}
