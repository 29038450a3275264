/* test_broker.c - casenetd on loopback: authentication, submit and receipts,
 * inboxes, fetch, member receipts, directory publication, limits, malformed
 * frames, crash recovery and concurrent submitters. Each test runs against a
 * fresh network and a real casenetd child process (tests/testlib/network.h). */
#include "network.h"
#include "testlib.h"

#include "keys_impl.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOTLINE  "vn.hotline111"
#define POLICE   "vn.police.a05"
#define MOLISA   "vn.molisa"
#define PLATFORM "vn.platform.x"

static const char *const members[] = {
    HOTLINE ":intake",
    POLICE ":responder:police",
    MOLISA ":responder",
    PLATFORM ":platform:platforms",
};

static int setup(void **state)
{
    tn_network *tn = tn_new(members, 4);
    tn_start(tn);
    *state = tn;
    return 0;
}

static int teardown(void **state)
{
    tn_network *tn = *state;
    assert_int_equal(tn_stop(tn), 0);
    tn_free(tn);
    return 0;
}

static void rfree(Casenet__V1__Response *r)
{
    casenet__v1__response__free_unpacked(r, NULL);
}

/* Counts audit events of one kind in the broker's database (read-only, the
 * broker may be running: WAL readers do not block it). */
static int audit_count(tn_network *tn, int kind)
{
    char *path = tl_path(tn->data_dir, "casenet.db");
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM audit WHERE kind = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int(st, 1, kind);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return n;
}

/* Submits env as `from` and asserts success; returns the response. */
static Casenet__V1__Response *submit_ok(tn_conn *c, const casenet_buf *env)
{
    Casenet__V1__Response *r = tn_submit(c, env->data, env->len);
    assert_non_null(r);
    if (r->error)
        fail_msg("submit failed: %d %s", r->error->code, r->error->message);
    assert_int_equal(r->body_case, CASENET__V1__RESPONSE__BODY_SUBMIT);
    return r;
}

/* Every inbox row of the connection's member, all pages. */
static size_t list_all(tn_conn *c, int state, Casenet__V1__InboxEntry ***out,
                       Casenet__V1__Response ***pages, size_t *n_pages)
{
    size_t n = 0, np = 0;
    Casenet__V1__InboxEntry **all = NULL;
    Casenet__V1__Response **keep = NULL;
    uint64_t cursor = 0;
    for (;;) {
        Casenet__V1__Response *r = tn_list(c, state, cursor, 7);
        assert_non_null(r);
        assert_int_equal(tn_code(r), 0);
        keep = realloc(keep, (np + 1) * sizeof *keep);
        keep[np++] = r;
        all = realloc(all, (n + r->inbox->n_entries + 1) * sizeof *all);
        for (size_t i = 0; i < r->inbox->n_entries; i++)
            all[n++] = r->inbox->entries[i];
        cursor = r->inbox->next_cursor;
        if (!r->inbox->more)
            break;
    }
    *out = all;
    *pages = keep;
    *n_pages = np;
    return n;
}

static void free_pages(Casenet__V1__InboxEntry **all, Casenet__V1__Response **pages, size_t np)
{
    for (size_t i = 0; i < np; i++)
        rfree(pages[i]);
    free(pages);
    free(all);
}

/* Number of rows of c's inbox for message id (any state, kind). */
static size_t inbox_rows_for(tn_conn *c, const uint8_t id[16])
{
    Casenet__V1__InboxEntry **all;
    Casenet__V1__Response **pages;
    size_t np, hits = 0;
    size_t n = list_all(c, 0, &all, &pages, &np);
    for (size_t i = 0; i < n; i++)
        if (all[i]->message_id.len == 16 && memcmp(all[i]->message_id.data, id, 16) == 0)
            hits++;
    free_pages(all, pages, np);
    return hits;
}

/* ------------------------------------------------------------ basics */

static void test_hello(void **state)
{
    tn_network *tn = *state;
    tn_conn *c = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_hello(c);
    assert_non_null(r);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->body_case, CASENET__V1__RESPONSE__BODY_HELLO);
    assert_string_equal(r->hello->member_id, POLICE);
    assert_string_equal(r->hello->broker_id, TN_BROKER_ID);
    assert_int_equal(r->hello->directory_version, casenet_directory_version(tn->net->dir));
    assert_int_equal(r->hello->max_envelope_bytes, 1024 * 1024);
    int64_t skew = r->hello->server_time_ms - cn_now_ms();
    assert_true(skew < 5000 && skew > -5000);
    rfree(r);
    tn_close(c);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_BROKER_START), 1);
}

static void test_submit_receipt_and_inboxes(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE, MOLISA};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 2, "child at risk, Hanoi", id);
    tn_conn *c = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = submit_ok(c, &env);
    assert_false(r->submit->duplicate);
    casenet_submit_receipt sr;
    CN_OK(casenet_submit_receipt_verify(tn->net->dir, r->submit->receipt.data,
                                        r->submit->receipt.len, &sr));
    assert_memory_equal(sr.message_id, id, 16);
    uint8_t hash[32];
    cn_sha256(env.data, env.len, hash);
    assert_memory_equal(sr.envelope_hash, hash, 32);
    assert_string_equal(sr.broker_id, TN_BROKER_ID);
    int64_t age = cn_now_ms() - sr.accepted_at_ms;
    assert_true(age >= 0 && age < 10000);
    rfree(r);

    for (size_t i = 0; i < 2; i++) {
        tn_conn *rc = tn_connect(tn, tn_keys(tn, to[i]));
        Casenet__V1__Response *l = tn_list(rc, CASENET_INBOX_ANY, 0, 0);
        assert_int_equal(tn_code(l), 0);
        assert_int_equal(l->inbox->n_entries, 1);
        Casenet__V1__InboxEntry *e = l->inbox->entries[0];
        assert_memory_equal(e->message_id.data, id, 16);
        assert_string_equal(e->sender, HOTLINE);
        assert_int_equal(e->kind, CASENET_KIND_REFERRAL);
        assert_int_equal(e->state, CASENET_INBOX_QUEUED);
        assert_int_equal(e->size, env.len);
        assert_false(l->inbox->more);
        rfree(l);
        /* the state filter */
        l = tn_list(rc, CASENET_INBOX_FETCHED, 0, 0);
        assert_int_equal(l->inbox->n_entries, 0);
        rfree(l);
        tn_close(rc);
    }
    /* The sender's own inbox holds nothing; a third member's neither. */
    Casenet__V1__Response *l = tn_list(c, CASENET_INBOX_ANY, 0, 0);
    assert_int_equal(l->inbox->n_entries, 0);
    rfree(l);
    tn_close(c);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED), 1);
    casenet_buf_free(&env);
}

static void test_fetch_only_by_recipient(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "fetch me", id);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    rfree(submit_ok(h, &env));

    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_fetch(p, id);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->fetch->envelope.len, env.len);
    assert_memory_equal(r->fetch->envelope.data, env.data, env.len);
    assert_int_equal(r->fetch->entry->state, CASENET_INBOX_FETCHED);
    /* It opens for the recipient. */
    casenet_message_info info;
    casenet_buf payload = {0};
    CN_OK(casenet_open(tn_keys(tn, POLICE), tn->net->dir, r->fetch->envelope.data,
                       r->fetch->envelope.len, &info, &payload));
    casenet_message_info_clear(&info);
    casenet_buf_free(&payload);
    rfree(r);

    /* Anyone else, the sender included: NOT_FOUND, never FORBIDDEN. */
    tn_conn *x = tn_connect(tn, tn_keys(tn, PLATFORM));
    r = tn_fetch(x, id);
    CN_ERR(tn_code(r), CASENET_ENOTFOUND);
    rfree(r);
    r = tn_fetch(h, id);
    CN_ERR(tn_code(r), CASENET_ENOTFOUND);
    rfree(r);
    uint8_t other[16] = {1, 2, 3};
    r = tn_fetch(p, other);
    CN_ERR(tn_code(r), CASENET_ENOTFOUND);
    rfree(r);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_FETCHED), 1);
    tn_close(x);
    tn_close(p);
    tn_close(h);
    casenet_buf_free(&env);
}

/* True when the file at path contains needle. */
static bool file_contains(const char *path, const uint8_t *needle, size_t n)
{
    size_t len = 0;
    uint8_t *data = tl_read_file(path, &len);
    bool found = memmem(data, len, needle, n) != NULL;
    free(data);
    return found;
}

static void test_no_plaintext_in_data_dir(void **state)
{
    tn_network *tn = *state;
    uint8_t rnd[12];
    char hex[25], marker[64];
    randombytes_buf(rnd, sizeof rnd);
    tl_hex(rnd, sizeof rnd, hex);
    snprintf(marker, sizeof marker, "PLAINTEXT-MARKER-%s", hex);
    const char *to[] = {POLICE, MOLISA};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 2, marker, id);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    rfree(submit_ok(h, &env));
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_fetch(p, id);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(p);
    tn_close(h);
    assert_int_equal(tn_stop(tn), 0);

    /* The marker, and its base64 at each of the three alignments. */
    char b64[3][128];
    size_t b64_len[3];
    for (int shift = 0; shift < 3; shift++) {
        char padded[80];
        snprintf(padded, sizeof padded, "%.*s%s", shift, "xx", marker);
        char full[128];
        sodium_bin2base64(full, sizeof full, (const uint8_t *)padded, strlen(padded),
                          sodium_base64_VARIANT_ORIGINAL);
        /* drop the characters that depend on the neighbouring bytes */
        size_t flen = strlen(full);
        snprintf(b64[shift], sizeof b64[shift], "%.*s", (int)(flen - 8), full + 4);
        b64_len[shift] = strlen(b64[shift]);
    }
    DIR *d = opendir(tn->data_dir);
    assert_non_null(d);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *path = tl_path(tn->data_dir, de->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (S_ISREG(st.st_mode)) {
            files++;
            assert_false(file_contains(path, (const uint8_t *)marker, strlen(marker)));
            for (int s = 0; s < 3; s++)
                assert_false(file_contains(path, (const uint8_t *)b64[s], b64_len[s]));
            /* The ciphertext itself is there (the check is not vacuous). */
            if (strcmp(de->d_name, "casenet.db") == 0)
                assert_true(file_contains(path, env.data + env.len - 64, 64));
        }
        free(path);
    }
    closedir(d);
    assert_true(files >= 1);
    casenet_buf_free(&env);
}

/* ------------------------------------------------------------ refusals */

static void test_sender_must_be_connection(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {MOLISA};
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "forged", NULL);
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_submit(p, env.data, env.len);
    CN_ERR(tn_code(r), CASENET_EFORBIDDEN);
    assert_non_null(strstr(r->error->message, HOTLINE));
    rfree(r);
    tn_close(p);
    tn_conn *m = tn_connect(tn, tn_keys(tn, MOLISA));
    Casenet__V1__Response *l = tn_list(m, 0, 0, 0);
    assert_int_equal(l->inbox->n_entries, 0);
    rfree(l);
    tn_close(m);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED), 1);
    casenet_buf_free(&env);
}

static void test_unknown_key_refused(void **state)
{
    tn_network *tn = *state;
    casenet_keys *stranger = NULL;
    CN_OK(casenet_keys_generate("vn.stranger", cn_now_ms(), &stranger));
    tn_conn *s = tn_connect(tn, stranger);
    Casenet__V1__Response *r = tn_call(
        s,
        &(Casenet__V1__Request){.base = PROTOBUF_C_MESSAGE_INIT(&casenet__v1__request__descriptor),
                                .body_case = CASENET__V1__REQUEST__BODY_HELLO,
                                .hello = &(Casenet__V1__Hello)CASENET__V1__HELLO__INIT},
        1500);
    assert_null(r);
    tn_close(s);
    /* Others are still served, and the denial was logged and audited. */
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    r = tn_hello(h);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(h);
    assert_true(tn_log_contains(tn, "event=auth_denied"));
    assert_true(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_AUTH_DENIED) >= 1);
    casenet_keys_free(stranger);
}

static void test_revoked_member_refused(void **state)
{
    tn_network *tn = *state;
    tn_conn *old = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_hello(old);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tl_net_set_status(tn->net, POLICE, CASENET_MEMBER_REVOKED);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    r = tn_publish(h, tn->net->signed_dir.data, tn->net->signed_dir.len);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->publish->version, casenet_directory_version(tn->net->dir));
    rfree(r);
    /* A new connection fails the handshake ... */
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Hello hello = CASENET__V1__HELLO__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    req.hello = &hello;
    assert_null(tn_call(p, &req, 1500));
    tn_close(p);
    /* ... and the connection opened before is no longer served. */
    r = tn_hello(old);
    CN_ERR(tn_code(r), CASENET_EUNAUTH);
    rfree(r);
    tn_close(old);
    tn_close(h);
    assert_true(tn_log_contains(tn, "revoked"));
}

static void test_duplicate_and_conflict(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "once", id);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *a = submit_ok(h, &env);
    Casenet__V1__Response *b = submit_ok(h, &env);
    assert_false(a->submit->duplicate);
    assert_true(b->submit->duplicate);
    assert_int_equal(a->submit->receipt.len, b->submit->receipt.len);
    assert_memory_equal(a->submit->receipt.data, b->submit->receipt.data, a->submit->receipt.len);
    rfree(a);
    rfree(b);

    /* Same id, other bytes: re-sign a header with a changed created_at. */
    Casenet__V1__Envelope *e = casenet__v1__envelope__unpack(NULL, env.len, env.data);
    Casenet__V1__Header *hd = casenet__v1__header__unpack(NULL, e->header.len, e->header.data);
    assert_non_null(hd);
    hd->created_at_ms += 1;
    size_t hlen = casenet__v1__header__get_packed_size(hd);
    uint8_t *hbuf = malloc(hlen);
    casenet__v1__header__pack(hd, hbuf);
    const uint8_t *parts[1] = {hbuf};
    size_t lens[1] = {hlen};
    casenet_buf pae = {0};
    CN_OK(cn_pae("casenet.envelope.v1", 1, parts, lens, &pae));
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, pae.data, pae.len, cn_keys_sign_sk(tn_keys(tn, HOTLINE), NULL));
    Casenet__V1__Envelope e2 = CASENET__V1__ENVELOPE__INIT;
    e2.header.data = hbuf;
    e2.header.len = hlen;
    e2.signature.data = sig;
    e2.signature.len = 64;
    e2.ciphertext = e->ciphertext;
    size_t len2 = casenet__v1__envelope__get_packed_size(&e2);
    uint8_t *env2 = malloc(len2);
    casenet__v1__envelope__pack(&e2, env2);
    Casenet__V1__Response *c = tn_submit(h, env2, len2);
    CN_ERR(tn_code(c), CASENET_ECONFLICT);
    rfree(c);

    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    assert_int_equal(inbox_rows_for(p, id), 1);
    tn_close(p);
    tn_close(h);
    free(env2);
    casenet_buf_free(&pae);
    free(hbuf);
    casenet__v1__header__free_unpacked(hd, NULL);
    casenet__v1__envelope__free_unpacked(e, NULL);
    casenet_buf_free(&env);
}

static void test_clock_skew(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    casenet_buf payload = tl_referral_payload("late");
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL,
                           .to = to,
                           .n_to = 1,
                           .created_at_ms = cn_now_ms() + 3600 * 1000};
    casenet_buf env = {0};
    CN_OK(casenet_seal(tn_keys(tn, HOTLINE), tn->net->dir, &o, payload.data, payload.len, &env,
                       NULL));
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_submit(h, env.data, env.len);
    CN_ERR(tn_code(r), CASENET_ECLOCKSKEW);
    rfree(r);
    tn_close(h);
    casenet_buf_free(&env);
    casenet_buf_free(&payload);
}

static void test_oversize(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    /* Over the envelope limit, within the frame margin: TOO_LARGE. */
    size_t text_len = 1024 * 1024 + 1000;
    char *text = malloc(text_len + 1);
    memset(text, 'a', text_len);
    text[text_len] = 0;
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, text, NULL);
    assert_true(env.len > 1024 * 1024 && env.len < 1024 * 1024 + 60 * 1024);
    Casenet__V1__Response *r = tn_submit(h, env.data, env.len);
    CN_ERR(tn_code(r), CASENET_ETOOLARGE);
    rfree(r);
    casenet_buf_free(&env);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_REJECTED), 1);

    /* Over ZMQ_MAXMSGSIZE: libzmq drops the connection, no answer comes. */
    tn_conn *big = tn_connect(tn, tn_keys(tn, HOTLINE));
    r = tn_hello(big);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    memset(text, 'b', text_len);
    text = realloc(text, 2 * text_len + 1);
    memset(text, 'b', 2 * text_len);
    text[2 * text_len] = 0;
    env = tn_seal(tn, HOTLINE, to, 1, text, NULL);
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Submit s = CASENET__V1__SUBMIT__INIT;
    s.envelope.data = env.data;
    s.envelope.len = env.len;
    req.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    req.submit = &s;
    assert_null(tn_call(big, &req, 2000));
    tn_close(big);
    /* The other connection is still served. */
    r = tn_hello(h);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    r = tn_list(p, 0, 0, 0);
    assert_int_equal(r->inbox->n_entries, 0);
    rfree(r);
    tn_close(p);
    tn_close(h);
    casenet_buf_free(&env);
    free(text);
}

static void test_garbage_and_multiframe(void **state)
{
    tn_network *tn = *state;
    tn_conn *g = tn_connect(tn, tn_keys(tn, MOLISA));
    casenet_buf in = {0};

    const uint8_t junk[] = {0xff, 0xff, 0xff, 0x07, 0x01};
    const void *f1[1] = {junk};
    size_t l1[1] = {sizeof junk};
    tn_send_frames(g, f1, l1, 1);
    assert_true(tn_recv(g, 5000, &in));
    Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, in.len, in.data);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    assert_int_equal(r->request_id, 0);
    rfree(r);
    casenet_buf_free(&in);

    /* Two frames, each a valid Request: still one bad message. */
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
    req.protocol_version = 1;
    req.request_id = 77;
    req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    req.hello = &h;
    uint8_t buf[64];
    size_t len = casenet__v1__request__pack(&req, buf);
    const void *f2[2] = {buf, buf};
    size_t l2[2] = {len, len};
    tn_send_frames(g, f2, l2, 2);
    assert_true(tn_recv(g, 5000, &in));
    r = casenet__v1__response__unpack(NULL, in.len, in.data);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    assert_int_equal(r->request_id, 0); /* never parsed: 77 is not read (PROTOCOL.md 7) */
    rfree(r);
    casenet_buf_free(&in);

    /* An empty frame, and a wrong protocol version. */
    const void *f3[1] = {""};
    size_t l3[1] = {0};
    tn_send_frames(g, f3, l3, 1);
    assert_true(tn_recv(g, 5000, &in));
    r = casenet__v1__response__unpack(NULL, in.len, in.data);
    CN_ERR(tn_code(r), CASENET_EVERSION);
    assert_int_equal(r->request_id, 0);
    rfree(r);
    casenet_buf_free(&in);
    req.protocol_version = 2;
    req.request_id = 0;
    r = tn_call(g, &req, 5000);
    CN_ERR(tn_code(r), CASENET_EVERSION);
    assert_int_equal(r->request_id, req.request_id);
    rfree(r);

    /* The same connection and another one keep being served. */
    r = tn_hello(g);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_conn *o = tn_connect(tn, tn_keys(tn, POLICE));
    r = tn_hello(o);
    assert_int_equal(tn_code(r), 0);
    assert_string_equal(r->hello->member_id, POLICE);
    rfree(r);
    tn_close(o);
    tn_close(g);
}

/* ------------------------------------------------------------ directory */

static void test_publish_directory(void **state)
{
    tn_network *tn = *state;
    casenet_buf v_old = {malloc(tn->net->signed_dir.len), tn->net->signed_dir.len};
    memcpy(v_old.data, tn->net->signed_dir.data, v_old.len);
    casenet_keys *ngo = NULL;
    CN_OK(casenet_keys_generate("vn.ngo.safe", cn_now_ms(), &ngo));
    tl_net_add(tn->net, "vn.ngo.safe:responder", ngo);
    uint64_t v_new = casenet_directory_version(tn->net->dir);

    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_publish(h, tn->net->signed_dir.data, tn->net->signed_dir.len);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->publish->version, v_new);
    rfree(r);
    r = tn_get_directory(h);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->directory->signed_directory.len, tn->net->signed_dir.len);
    assert_memory_equal(r->directory->signed_directory.data, tn->net->signed_dir.data,
                        tn->net->signed_dir.len);
    rfree(r);
    r = tn_hello(h);
    assert_int_equal(r->hello->directory_version, v_new);
    rfree(r);
    /* The new member can now connect. */
    tn_conn *n = tn_connect(tn, ngo);
    r = tn_hello(n);
    assert_int_equal(tn_code(r), 0);
    assert_string_equal(r->hello->member_id, "vn.ngo.safe");
    rfree(r);
    tn_close(n);

    /* Older, same version again, bad signature, expired: refused. */
    r = tn_publish(h, v_old.data, v_old.len);
    CN_ERR(tn_code(r), CASENET_ECONFLICT);
    rfree(r);
    r = tn_publish(h, tn->net->signed_dir.data, tn->net->signed_dir.len);
    CN_ERR(tn_code(r), CASENET_ECONFLICT);
    rfree(r);
    casenet_buf expired = {0};
    CN_OK(casenet_directory_set_status(tn->net->authority, tn->net->signed_dir.data,
                                       tn->net->signed_dir.len, MOLISA, CASENET_MEMBER_ACTIVE,
                                       cn_now_ms() - 7200000, 3600000, &expired));
    r = tn_publish(h, expired.data, expired.len);
    CN_ERR(tn_code(r), CASENET_EBADREQ);
    assert_non_null(strstr(r->error->message, "expired"));
    rfree(r);
    casenet_buf next = {0};
    CN_OK(casenet_directory_set_status(tn->net->authority, tn->net->signed_dir.data,
                                       tn->net->signed_dir.len, MOLISA, CASENET_MEMBER_ACTIVE,
                                       cn_now_ms(), 3600000, &next));
    Casenet__V1__SignedDirectory *sd =
        casenet__v1__signed_directory__unpack(NULL, next.len, next.data);
    sd->signature.data[0] ^= 1;
    casenet__v1__signed_directory__pack(sd, next.data);
    casenet__v1__signed_directory__free_unpacked(sd, NULL);
    r = tn_publish(h, next.data, next.len);
    CN_ERR(tn_code(r), CASENET_EBADSIG);
    rfree(r);
    r = tn_hello(h);
    assert_int_equal(r->hello->directory_version, v_new);
    rfree(r);
    tn_close(h);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_DIRECTORY_PUBLISHED),
                     2); /* the start-up one and v_new */

    /* The accepted version survives a restart even though --directory
     * still names the old file. */
    assert_int_equal(tn_stop(tn), 0);
    tl_write_file(tn->directory_path, v_old.data, v_old.len, 0644);
    tn_start(tn);
    h = tn_connect(tn, tn_keys(tn, HOTLINE));
    r = tn_hello(h);
    assert_int_equal(r->hello->directory_version, v_new);
    rfree(r);
    tn_close(h);
    casenet_buf_free(&expired);
    casenet_buf_free(&next);
    casenet_buf_free(&v_old);
    casenet_keys_free(ngo);
}

static void test_sighup_reload(void **state)
{
    tn_network *tn = *state;
    tl_net_set_status(tn->net, PLATFORM, CASENET_MEMBER_SUSPENDED);
    tn_write_directory(tn);
    tn_signal(tn, SIGHUP);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    uint64_t want = casenet_directory_version(tn->net->dir);
    uint64_t got = 0;
    for (int i = 0; i < 50 && got != want; i++) {
        Casenet__V1__Response *r = tn_hello(h);
        got = r->hello->directory_version;
        rfree(r);
        if (got != want)
            usleep(100 * 1000);
    }
    assert_int_equal(got, want);
    tn_close(h);
}

/* ------------------------------------------------------------ durability */

static void test_sigkill_after_receipt(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {MOLISA};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "survive a crash", id);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    rfree(submit_ok(h, &env));
    tn_close(h);
    tn_kill(tn);
    tn_start(tn);
    tn_conn *m = tn_connect(tn, tn_keys(tn, MOLISA));
    assert_int_equal(inbox_rows_for(m, id), 1);
    Casenet__V1__Response *r = tn_fetch(m, id);
    assert_int_equal(tn_code(r), 0);
    assert_memory_equal(r->fetch->envelope.data, env.data, env.len);
    rfree(r);
    tn_close(m);
    /* Submitting it again after the crash: the original receipt. */
    h = tn_connect(tn, tn_keys(tn, HOTLINE));
    r = submit_ok(h, &env);
    assert_true(r->submit->duplicate);
    rfree(r);
    tn_close(h);
    casenet_buf_free(&env);
}

/* ------------------------------------------------------------ receipts */

static void test_receipts_state_machine(void **state)
{
    tn_network *tn = *state;
    const char *to[] = {POLICE};
    uint8_t id[16], hash[32];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "receipts", id);
    cn_sha256(env.data, env.len, hash);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_subscribe(h);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    rfree(submit_ok(h, &env));
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    int64_t t = cn_now_ms();

    casenet_buf completed =
        tn_sign_receipt(tn, POLICE, id, hash, HOTLINE, CASENET_RECEIPT_COMPLETED, t);
    casenet_buf delivered =
        tn_sign_receipt(tn, POLICE, id, hash, HOTLINE, CASENET_RECEIPT_DELIVERED, t);
    casenet_buf accepted =
        tn_sign_receipt(tn, POLICE, id, hash, HOTLINE, CASENET_RECEIPT_ACCEPTED, t + 1);
    casenet_buf completed2 =
        tn_sign_receipt(tn, POLICE, id, hash, HOTLINE, CASENET_RECEIPT_COMPLETED, t + 2);

    r = tn_send_receipt(p, completed.data, completed.len); /* before accepted */
    CN_ERR(tn_code(r), CASENET_ECONFLICT);
    rfree(r);
    r = tn_send_receipt(p, delivered.data, delivered.len);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->receipt->state, CASENET_INBOX_DELIVERED);
    rfree(r);
    r = tn_send_receipt(p, completed.data, completed.len); /* still before accepted */
    CN_ERR(tn_code(r), CASENET_ECONFLICT);
    rfree(r);
    r = tn_send_receipt(p, accepted.data, accepted.len);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->receipt->state, CASENET_INBOX_ACCEPTED);
    uint64_t accepted_index = r->receipt->audit_index;
    rfree(r);
    r = tn_send_receipt(p, accepted.data, accepted.len); /* repeated: idempotent */
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->receipt->audit_index, accepted_index);
    rfree(r);
    r = tn_send_receipt(p, completed2.data, completed2.len);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->receipt->state, CASENET_INBOX_COMPLETED);
    rfree(r);
    r = tn_send_receipt(p, delivered.data, delivered.len); /* already past delivered */
    assert_int_equal(tn_code(r), 0); /* the same bytes as recorded: idempotent */
    rfree(r);

    /* A member that did not receive the message: NOT_FOUND; someone else's
     * receipt relayed: FORBIDDEN; a wrong envelope hash: CONFLICT. */
    casenet_buf stranger =
        tn_sign_receipt(tn, MOLISA, id, hash, HOTLINE, CASENET_RECEIPT_DELIVERED, t);
    tn_conn *m = tn_connect(tn, tn_keys(tn, MOLISA));
    r = tn_send_receipt(m, stranger.data, stranger.len);
    CN_ERR(tn_code(r), CASENET_ENOTFOUND);
    rfree(r);
    r = tn_send_receipt(m, delivered.data, delivered.len);
    CN_ERR(tn_code(r), CASENET_EFORBIDDEN);
    rfree(r);
    tn_close(m);

    /* The sender's inbox holds the three receipts, kind RECEIPT, pushed too. */
    Casenet__V1__Response *l = tn_list(h, CASENET_INBOX_ANY, 0, 0);
    assert_int_equal(tn_code(l), 0);
    assert_int_equal(l->inbox->n_entries, 3);
    int want[3] = {CASENET_RECEIPT_DELIVERED, CASENET_RECEIPT_ACCEPTED, CASENET_RECEIPT_COMPLETED};
    for (size_t i = 0; i < 3; i++) {
        Casenet__V1__InboxEntry *e = l->inbox->entries[i];
        assert_int_equal(e->kind, CASENET_KIND_RECEIPT);
        assert_string_equal(e->sender, POLICE);
        assert_memory_equal(e->in_reply_to.data, id, 16);
        assert_int_equal(e->receipt_status, want[i]);
        casenet_receipt got;
        CN_OK(casenet_receipt_verify(tn->net->dir, e->receipt.data, e->receipt.len, &got));
        assert_int_equal(got.status, want[i]);
    }
    rfree(l);
    int notices = 0;
    Casenet__V1__Response *n;
    while ((n = tn_next_notice(h, 2000)) && notices < 3) {
        assert_int_equal(n->body_case, CASENET__V1__RESPONSE__BODY_NOTICE);
        assert_int_equal(n->request_id, 0);
        assert_int_equal(n->notice->entry->kind, CASENET_KIND_RECEIPT);
        notices++;
        rfree(n);
        if (notices == 3)
            break;
    }
    assert_int_equal(notices, 3);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_RECEIPT), 3);
    tn_close(p);
    tn_close(h);
    casenet_buf_free(&completed);
    casenet_buf_free(&completed2);
    casenet_buf_free(&delivered);
    casenet_buf_free(&accepted);
    casenet_buf_free(&stranger);
    casenet_buf_free(&env);
}

static void test_subscribe_push(void **state)
{
    tn_network *tn = *state;
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_subscribe(p);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    const char *to[] = {POLICE};
    uint8_t id[16];
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "push", id);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    rfree(submit_ok(h, &env));
    Casenet__V1__Response *n = tn_next_notice(p, 5000);
    assert_non_null(n);
    assert_int_equal(n->body_case, CASENET__V1__RESPONSE__BODY_NOTICE);
    assert_memory_equal(n->notice->entry->message_id.data, id, 16);
    assert_int_equal(n->notice->entry->state, CASENET_INBOX_QUEUED);
    rfree(n);
    /* A connection that is gone loses its subscription; the broker keeps
     * serving (ROUTER_MANDATORY reports the peer unreachable). */
    tn_close(p);
    casenet_buf env2 = tn_seal(tn, HOTLINE, to, 1, "push 2", NULL);
    rfree(submit_ok(h, &env2));
    r = tn_hello(h);
    assert_int_equal(tn_code(r), 0);
    rfree(r);
    tn_close(h);
    casenet_buf_free(&env);
    casenet_buf_free(&env2);
}

/* ------------------------------------------------------------ concurrency */

#define CONC_MEMBERS  24
#define CONC_MESSAGES 6

struct conc_sent {
    uint8_t id[16];
    size_t n_to;
    char to[3][32];
};

struct conc_arg {
    tn_network *tn;
    int me;
    struct conc_sent sent[CONC_MESSAGES];
    int failures;
};

static char conc_ids[CONC_MEMBERS][32];
static char conc_specs[CONC_MEMBERS][48];

static void *conc_worker(void *p)
{
    struct conc_arg *a = p;
    tn_conn *c = tn_connect(a->tn, tn_keys(a->tn, conc_ids[a->me]));
    unsigned seed = (unsigned)a->me * 7919u + 17u;
    for (int k = 0; k < CONC_MESSAGES; k++) {
        struct conc_sent *s = &a->sent[k];
        s->n_to = 1 + (size_t)(rand_r(&seed) % 3);
        const char *to[3];
        for (size_t j = 0; j < s->n_to; j++) {
            int other;
            bool dup;
            do {
                other = rand_r(&seed) % CONC_MEMBERS;
                dup = other == a->me;
                for (size_t q = 0; q < j; q++)
                    dup = dup || strcmp(s->to[q], conc_ids[other]) == 0;
            } while (dup);
            snprintf(s->to[j], sizeof s->to[j], "%s", conc_ids[other]);
            to[j] = s->to[j];
        }
        casenet_buf env = tn_seal(a->tn, conc_ids[a->me], to, s->n_to, "concurrent", s->id);
        Casenet__V1__Response *r = tn_submit(c, env.data, env.len);
        if (!r || r->error)
            a->failures++;
        else {
            casenet_submit_receipt sr;
            if (casenet_submit_receipt_verify(a->tn->net->dir, r->submit->receipt.data,
                                              r->submit->receipt.len, &sr) != CASENET_OK ||
                memcmp(sr.message_id, s->id, 16) != 0)
                a->failures++;
        }
        if (r)
            casenet__v1__response__free_unpacked(r, NULL);
        casenet_buf_free(&env);
    }
    tn_close(c);
    return NULL;
}

static void test_concurrent_submitters(void **state)
{
    (void)state;
    const char *specs[CONC_MEMBERS];
    for (int i = 0; i < CONC_MEMBERS; i++) {
        snprintf(conc_ids[i], sizeof conc_ids[i], "vn.member%02d", i);
        snprintf(conc_specs[i], sizeof conc_specs[i], "%s:responder", conc_ids[i]);
        specs[i] = conc_specs[i];
    }
    tn_network *tn = tn_new(specs, CONC_MEMBERS);
    tn_start(tn);
    struct conc_arg args[CONC_MEMBERS];
    pthread_t th[CONC_MEMBERS];
    for (int i = 0; i < CONC_MEMBERS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].tn = tn;
        args[i].me = i;
        assert_int_equal(pthread_create(&th[i], NULL, conc_worker, &args[i]), 0);
    }
    for (int i = 0; i < CONC_MEMBERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    /* Every recipient's inbox holds each message addressed to it exactly
     * once, and nothing else. */
    size_t expected_total = 0;
    for (int m = 0; m < CONC_MEMBERS; m++) {
        tn_conn *c = tn_connect(tn, tn_keys(tn, conc_ids[m]));
        Casenet__V1__InboxEntry **all;
        Casenet__V1__Response **pages;
        size_t np;
        size_t n = list_all(c, 0, &all, &pages, &np);
        size_t expected = 0;
        for (int s = 0; s < CONC_MEMBERS; s++)
            for (int k = 0; k < CONC_MESSAGES; k++)
                for (size_t j = 0; j < args[s].sent[k].n_to; j++) {
                    if (strcmp(args[s].sent[k].to[j], conc_ids[m]) != 0)
                        continue;
                    expected++;
                    size_t hits = 0;
                    for (size_t e = 0; e < n; e++)
                        if (memcmp(all[e]->message_id.data, args[s].sent[k].id, 16) == 0)
                            hits++;
                    assert_int_equal(hits, 1);
                }
        assert_int_equal(n, expected);
        /* seq increases along the pages */
        for (size_t e = 1; e < n; e++)
            assert_true(all[e]->seq > all[e - 1]->seq);
        expected_total += expected;
        free_pages(all, pages, np);
        tn_close(c);
    }
    assert_true(expected_total >= CONC_MEMBERS * CONC_MESSAGES);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED),
                     CONC_MEMBERS * CONC_MESSAGES);
    assert_int_equal(tn_stop(tn), 0);
    tn_free(tn);
}

/* ------------------------------------------------------------ config */

static void test_check_config_and_stop_event(void **state)
{
    tn_network *tn = *state;
    assert_int_equal(tn_stop(tn), 0);
    assert_int_equal(audit_count(tn, CASENET__V1__AUDIT_KIND__AUDIT_KIND_BROKER_STOP), 1);
    const char *bin_dir = getenv("CASENET_BINARY_DIR");
    char *cmd = NULL;
    assert_true(asprintf(&cmd,
                         "%s/broker/casenetd --check-config --data %s --listen tcp://127.0.0.1:1 "
                         "--key %s --directory %s --authority %s >/dev/null 2>&1",
                         bin_dir, tn->data_dir, tn->broker_key_path, tn->directory_path,
                         tn->authority_path) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    /* A config file with a broken limit is refused. */
    char *ini = tl_path(tn->root, "bad.ini");
    const char *text = "[broker]\nlisten = tcp://127.0.0.1:1\n[limits]\nbatch_max = zero\n";
    tl_write_file(ini, text, strlen(text), 0644);
    assert_true(asprintf(&cmd,
                         "%s/broker/casenetd --check-config --config %s --data %s --key %s "
                         "--directory %s --authority %s >/dev/null 2>&1",
                         bin_dir, ini, tn->data_dir, tn->broker_key_path, tn->directory_path,
                         tn->authority_path) > 0);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    free(cmd);
    /* A directory signed by another authority is refused. */
    char *other = tl_path(tn->root, "other.pub");
    char *other_key = tl_path(tn->root, "other.key");
    casenet_keys *auth2 = NULL;
    CN_OK(casenet_keys_generate_authority(cn_now_ms(), &auth2));
    CN_OK(casenet_keys_save(auth2, other_key, other));
    char *data2 = tl_path(tn->root, "data2");
    assert_true(asprintf(&cmd,
                         "%s/broker/casenetd --check-config --data %s --listen tcp://127.0.0.1:1 "
                         "--key %s --directory %s --authority %s >/dev/null 2>&1",
                         bin_dir, data2, tn->broker_key_path, tn->directory_path, other) > 0);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    free(cmd);
    casenet_keys_free(auth2);
    free(data2);
    free(other);
    free(other_key);
    free(ini);

    /* A config file's limits apply (and the command line still wins for the
     * paths the fixture passes). */
    tn->config_path = tl_path(tn->root, "casenetd.ini");
    const char *good = "; test\n[broker]\nlisten = tcp://127.0.0.1:1\n[limits]\n"
                       "max_envelope_bytes = 4096\nbatch_max = 3\n";
    tl_write_file(tn->config_path, good, strlen(good), 0644);
    tn_start(tn);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_hello(h);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->hello->max_envelope_bytes, 4096);
    rfree(r);
    tn_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_receipt_and_inboxes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_only_by_recipient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_plaintext_in_data_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_must_be_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_member_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_skew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_and_multiframe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_after_receipt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipts_state_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_config_and_stop_event, setup, teardown),
        cmocka_unit_test(test_concurrent_submitters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
