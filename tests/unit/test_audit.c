/*
 * test_audit.c - signed tree heads and audit log verification
 * (common/checkpoint.c, clients/auditlog.c): the public C2SP signed-note
 * vector, checkpoint round trips and strict rejections, and a synthetic log of
 * 3000 events with a head every 100 on which every kind of tampering (a
 * changed byte, a deleted, swapped or reordered event, a forged head, a
 * truncated file, a rewritten history) is caught and named precisely, from
 * an export file and fed live, from scratch and resumed from a remembered
 * state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auditlog.h"
#include "casenet.h"
#include "casenet.pb-c.h"
#include "checkpoint.h"
#include "crypto.h"
#include "keys_impl.h"
#include "merkle.h"
#include "testlib.h"

#define N_EVENTS   3000
#define HEAD_EVERY 100
#define NETWORK    "vn.cop"
#define BROKER     "vn.broker"
#define ORIGIN     "casenet.audit/vn.cop"
#define T0         1764000000000ll

/* ------------------------------------------------------------------ fixtures */

struct blob {
    uint8_t *p;
    size_t n;
};

struct head {
    uint64_t size;
    struct blob ck;
};

static casenet_keys *g_broker;                     /* the broker */
static casenet_keys *g_forger;                     /* another key under the broker's name */
static const uint8_t *g_pk;                        /* the broker's signing key */
static struct blob g_ev[N_EVENTS];                 /* log A */
static struct head g_heads[N_EVENTS / HEAD_EVERY]; /* its heads */
static size_t g_nheads;

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A synthetic AuditEvent at index i; variant changes its detail text (a
 * "rewritten" log has the same shape and different bytes). */
static struct blob make_event(uint64_t i, int variant)
{
    Casenet__V1__AuditEvent e = CASENET__V1__AUDIT_EVENT__INIT;
    char actor[] = "vn.police.a05";
    char *parties[2] = {actor, (char *)"vn.hotline111"};
    uint8_t mid[16];
    char detail[64];
    for (size_t k = 0; k < sizeof mid; k++)
        mid[k] = (uint8_t)(i * 31 + k);
    snprintf(detail, sizeof detail, "%s event %llu", variant ? "rewritten" : "synthetic",
             (unsigned long long)i);
    e.index = i;
    e.time_ms = T0 + (int64_t)i * 10;
    e.kind = (Casenet__V1__AuditKind)(1 + i % 12);
    e.actor = actor;
    e.n_parties = 2;
    e.parties = parties;
    e.message_id.data = mid;
    e.message_id.len = sizeof mid;
    e.message_kind = CASENET__V1__KIND__KIND_REFERRAL;
    e.detail = detail;
    e.size = (uint32_t)(1000 + i);
    struct blob b;
    b.n = casenet__v1__audit_event__get_packed_size(&e);
    b.p = malloc(b.n);
    assert_non_null(b.p);
    casenet__v1__audit_event__pack(&e, b.p);
    return b;
}

static struct blob sign_head(const casenet_keys *k, uint64_t size, const uint8_t root[32],
                             int64_t time_ms)
{
    struct ckpt_head h;
    memset(&h, 0, sizeof h);
    strcpy(h.origin, ORIGIN);
    h.size = size;
    memcpy(h.root, root, 32);
    h.time_ms = time_ms;
    casenet_buf out = {0};
    CN_OK(ckpt_sign(k, &h, &out));
    return (struct blob){out.data, out.len};
}

/* Heads every HEAD_EVERY events of ev[0..n), signed by k. */
static size_t make_heads(const struct blob *ev, size_t n, const casenet_keys *k, struct head *out)
{
    struct merkle_stack s;
    merkle_stack_init(&s);
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t leaf[32], root[32];
        merkle_leaf_hash(ev[i].p, ev[i].n, leaf);
        CN_OK(merkle_stack_push(&s, leaf, NULL, NULL));
        if ((i + 1) % HEAD_EVERY == 0) {
            merkle_stack_root(&s, root);
            out[nh].size = i + 1;
            out[nh].ck = sign_head(k, i + 1, root, T0 + (int64_t)i * 10 + 5);
            nh++;
        }
    }
    return nh;
}

static void blob_free(struct blob *b)
{
    free(b->p);
    b->p = NULL;
}

static int group_setup(void **state)
{
    (void)state;
    CN_OK(casenet_init());
    CN_OK(casenet_keys_generate(BROKER, T0, &g_broker));
    CN_OK(casenet_keys_generate(BROKER, T0, &g_forger));
    g_pk = casenet_keys_sign_pk(g_broker, NULL);
    for (size_t i = 0; i < N_EVENTS; i++)
        g_ev[i] = make_event(i, 0);
    g_nheads = make_heads(g_ev, N_EVENTS, g_broker, g_heads);
    assert_int_equal(g_nheads, N_EVENTS / HEAD_EVERY);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_EVENTS; i++)
        blob_free(&g_ev[i]);
    for (size_t i = 0; i < g_nheads; i++)
        blob_free(&g_heads[i].ck);
    casenet_keys_free(g_broker);
    casenet_keys_free(g_forger);
    return 0;
}

static struct auditv_config config(void)
{
    struct auditv_config c;
    memset(&c, 0, sizeof c);
    c.origin = ORIGIN;
    c.key_name = BROKER;
    c.sign_pk = g_pk;
    return c;
}

/* An export file in memory. */
struct file {
    char *data;
    size_t len;
    uint64_t ev_off[N_EVENTS + 1]; /* offset of the record of event i */
};

/* Writes header(from) and events ev[from..to) with every head of heads whose
 * size s has from < s <= to placed right after event s - 1 (and a head of
 * size from, when at_from, right after the header). */
static void write_file_skip(struct file *f, const struct blob *ev, uint64_t from, uint64_t to,
                            const struct head *heads, size_t nheads, bool at_from, uint64_t skip)
{
    FILE *fp = open_memstream(&f->data, &f->len);
    assert_non_null(fp);
    struct auditv_export_header h;
    memset(&h, 0, sizeof h);
    strcpy(h.network, NETWORK);
    strcpy(h.broker_id, BROKER);
    memcpy(h.broker_sign_pk, g_pk, 32);
    h.from_index = from;
    CN_OK(auditv_export_write_header(fp, &h));
    size_t hi = 0;
    while (hi < nheads && heads[hi].size < from)
        hi++;
    if (at_from && hi < nheads && heads[hi].size == from)
        assert_int_equal(auditv_export_write_checkpoint(fp, heads[hi].ck.p, heads[hi].ck.n), 0);
    while (hi < nheads && heads[hi].size <= from)
        hi++;
    for (uint64_t i = from; i < to; i++) {
        fflush(fp);
        f->ev_off[i] = f->len;
        if (i != skip)
            CN_OK(auditv_export_write_event(fp, ev[i].p, ev[i].n));
        while (hi < nheads && heads[hi].size == i + 1) {
            CN_OK(auditv_export_write_checkpoint(fp, heads[hi].ck.p, heads[hi].ck.n));
            hi++;
        }
    }
    assert_int_equal(fclose(fp), 0);
}

/* The same, every event written (skip = none). */
static void write_file(struct file *f, const struct blob *ev, uint64_t from, uint64_t to,
                       const struct head *heads, size_t nheads, bool at_from)
{
    write_file_skip(f, ev, from, to, heads, nheads, at_from, UINT64_MAX);
}

static int verify_bytes(const void *data, size_t len, const struct auditv_state *trusted,
                        struct auditv_state *state, struct auditv_failure *fail)
{
    FILE *fp = fmemopen((void *)data, len, "rb");
    assert_non_null(fp);
    struct auditv_config c = config();
    int rc = auditv_verify_file(fp, &c, trusted, state, fail);
    fclose(fp);
    return rc;
}

static int verify_events(const struct blob *ev, uint64_t n, const struct head *heads, size_t nheads,
                         struct auditv_failure *fail)
{
    struct file f;
    write_file(&f, ev, 0, n, heads, nheads, false);
    int rc = verify_bytes(f.data, f.len, NULL, NULL, fail);
    free(f.data);
    return rc;
}

/* The root of ev[0..n). */
static void root_of(const struct blob *ev, uint64_t n, uint8_t root[32])
{
    struct merkle_stack s;
    merkle_stack_init(&s);
    for (uint64_t i = 0; i < n; i++) {
        uint8_t leaf[32];
        merkle_leaf_hash(ev[i].p, ev[i].n, leaf);
        CN_OK(merkle_stack_push(&s, leaf, NULL, NULL));
    }
    merkle_stack_root(&s, root);
}

/* Asserts that a change in event k was caught and named: either the event
 * itself (it no longer parses or names another index) or the first head
 * after it, with the interval between the heads around it. */
static void assert_caught_at(int rc, const struct auditv_failure *f, uint64_t k)
{
    assert_int_not_equal(rc, CASENET_OK);
    if (f->where == AUDITV_EVENT) {
        assert_int_equal(f->index, k);
        CN_ERR(rc, CASENET_EBADREQ);
    } else {
        assert_int_equal(f->where, AUDITV_HEAD);
        CN_ERR(rc, CASENET_EBADSIG);
        assert_int_equal(f->head_size, (k / HEAD_EVERY + 1) * HEAD_EVERY);
        assert_int_equal(f->index, k / HEAD_EVERY * HEAD_EVERY);
        assert_non_null(strstr(f->reason, "root mismatch"));
    }
}

/* ------------------------------------------------------------------ C2SP signed notes */

static void test_c2sp_vector(void **state)
{
    (void)state;
    json_t *v = tl_load_vector("c2sp-signed-note-example.json");
    assert_non_null(v); /* must fail, not skip, when the vectors are absent */
    const char *vkey = json_string_value(json_object_get(v, "vkey"));
    const char *note = json_string_value(json_object_get(v, "signed_note"));
    const char *text = json_string_value(json_object_get(v, "note_text"));
    const char *kname = json_string_value(json_object_get(v, "key_name"));
    const char *kid_hex = json_string_value(json_object_get(v, "key_id_hex"));
    assert_non_null(vkey);
    assert_non_null(note);
    assert_string_equal(json_string_value(json_object_get(v, "expected")), "valid");

    char name[CKPT_KEY_NAME_MAX + 1];
    uint8_t pk[32];
    CN_OK(ckpt_vkey_parse(vkey, name, pk));
    assert_string_equal(name, kname);
    uint8_t kid[4];
    char kid_got[9];
    ckpt_key_id(name, pk, kid);
    tl_hex(kid, 4, kid_got);
    assert_string_equal(kid_got, kid_hex);

    size_t nlen = strlen(note), tlen = 0;
    CN_OK(ckpt_note_verify((const uint8_t *)note, nlen, name, pk, &tlen));
    assert_int_equal(tlen, strlen(text));
    assert_memory_equal(note, text, tlen);

    /* Every single flipped bit of the note is refused. */
    uint8_t *m = malloc(nlen);
    assert_non_null(m);
    for (size_t i = 0; i < nlen; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(m, note, nlen);
            m[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(ckpt_note_verify(m, nlen, name, pk, NULL), CASENET_OK);
        }
    }
    /* A line by an unknown key is ignored; a bad line by this key is not. */
    char *two = NULL;
    assert_true(asprintf(&two, "%s— other.example/bar AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", note) >
                0);
    CN_OK(ckpt_note_verify((uint8_t *)two, strlen(two), name, pk, NULL));
    free(two);
    /* Another key name, a truncated note, no signature line. */
    CN_ERR(ckpt_note_verify((const uint8_t *)note, nlen, "example.com/bar", pk, NULL),
           CASENET_EBADSIG);
    CN_ERR(ckpt_note_verify((const uint8_t *)note, nlen - 1, name, pk, NULL), CASENET_EBADREQ);
    CN_ERR(ckpt_note_verify((const uint8_t *)text, strlen(text), name, pk, NULL), CASENET_EBADREQ);
    /* A verifier key whose id does not match its name and key. */
    char *bad = strdup(vkey);
    char *plus = strchr(bad, '+');
    plus[1] = plus[1] == '0' ? '1' : '0';
    CN_ERR(ckpt_vkey_parse(bad, name, pk), CASENET_EBADREQ);
    free(bad);
    free(m);
    json_decref(v);
}

/* ------------------------------------------------------------------ checkpoints */

/* A note over text signed with the broker key under name (a test fixture
 * that can sign what ckpt_sign never would). */
static char *note_signed(const char *text, const char *name, const casenet_keys *k)
{
    uint8_t blob[68];
    char b64[93];
    ckpt_key_id(name, casenet_keys_sign_pk(k, NULL), blob);
    cn_sign(blob + 4, (const uint8_t *)text, strlen(text), cn_keys_sign_sk(k, NULL));
    sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    char *out = NULL;
    assert_true(asprintf(&out, "%s\n— %s %s\n", text, name, b64) > 0);
    return out;
}

/* Copies fmt to out[cap] with its one "%s" replaced by arg. */
static void subst(char *out, size_t cap, const char *fmt, const char *arg)
{
    const char *p = strstr(fmt, "%s");
    assert_non_null(p);
    int n = snprintf(out, cap, "%.*s%s%s", (int)(p - fmt), fmt, arg, p + 2);
    assert_true(n > 0 && (size_t)n < cap);
}

static int verify_str(const char *s, struct ckpt_head *h)
{
    return ckpt_verify((const uint8_t *)s, strlen(s), BROKER, g_pk, ORIGIN, h);
}

static void test_checkpoint_roundtrip(void **state)
{
    (void)state;
    uint8_t root[32];
    for (size_t i = 0; i < 32; i++)
        root[i] = (uint8_t)(0xa0 + i);
    struct blob ck = sign_head(g_broker, 1234, root, 1764000000123ll);
    char b64[45];
    sodium_bin2base64(b64, sizeof b64, root, 32, sodium_base64_VARIANT_ORIGINAL);
    char *want_text = NULL;
    assert_true(
        asprintf(&want_text, ORIGIN "\n1234\n%s\ntime 1764000000123\n\n— " BROKER " ", b64) > 0);
    assert_true(ck.n > strlen(want_text));
    assert_memory_equal(ck.p, want_text, strlen(want_text));
    assert_int_equal(ck.n, strlen(want_text) + 92 + 1);

    struct ckpt_head h;
    CN_OK(ckpt_verify(ck.p, ck.n, BROKER, g_pk, ORIGIN, &h));
    assert_string_equal(h.origin, ORIGIN);
    assert_int_equal(h.size, 1234);
    assert_memory_equal(h.root, root, 32);
    assert_int_equal(h.time_ms, 1764000000123ll);
    CN_OK(ckpt_verify(ck.p, ck.n, BROKER, g_pk, NULL, &h));
    /* The same note through the generic verifier. */
    CN_OK(ckpt_note_verify(ck.p, ck.n, BROKER, g_pk, NULL));
    /* Signing is deterministic: the canonical bytes come back. */
    struct blob again = sign_head(g_broker, 1234, root, 1764000000123ll);
    assert_int_equal(again.n, ck.n);
    assert_memory_equal(again.p, ck.p, ck.n);
    /* Edge values. */
    struct blob z = sign_head(g_broker, 0, root, 0);
    CN_OK(ckpt_verify(z.p, z.n, BROKER, g_pk, ORIGIN, &h));
    assert_int_equal(h.size, 0);
    struct blob mx = sign_head(g_broker, UINT64_MAX, root, INT64_MAX);
    CN_OK(ckpt_verify(mx.p, mx.n, BROKER, g_pk, ORIGIN, &h));
    assert_true(h.size == UINT64_MAX && h.time_ms == INT64_MAX);
    /* Origins. */
    char o[CKPT_ORIGIN_MAX + 1];
    CN_OK(ckpt_origin(NETWORK, o));
    assert_string_equal(o, ORIGIN);
    CN_ERR(ckpt_origin("", o), CASENET_EINVAL);
    CN_ERR(ckpt_origin("vn cop", o), CASENET_EINVAL);
    CN_ERR(ckpt_origin("vn+cop", o), CASENET_EINVAL);
    struct ckpt_head bad = h;
    bad.time_ms = -1;
    casenet_buf out = {0};
    CN_ERR(ckpt_sign(g_broker, &bad, &out), CASENET_EINVAL);
    free(want_text);
    blob_free(&ck);
    blob_free(&again);
    blob_free(&z);
    blob_free(&mx);
}

static void test_checkpoint_strict(void **state)
{
    (void)state;
    struct ckpt_head h;
    const char *R = "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=";
    char good[512];
    snprintf(good, sizeof good, ORIGIN "\n1234\n%s\ntime 1764000000123\n", R);
    char *n = note_signed(good, BROKER, g_broker);
    CN_OK(verify_str(n, &h));
    free(n);

    /* Texts that are well signed but not a casenet checkpoint. */
    static const char *const texts[] = {
        "\n1234\n%s\ntime 5\n",                          /* empty origin */
        "casenet.audit/vn cop\n1234\n%s\ntime 5\n",      /* space in origin */
        "casenet.audit/vn+cop\n1234\n%s\ntime 5\n",      /* plus in origin */
        ORIGIN "\n01234\n%s\ntime 5\n",                  /* leading zero */
        ORIGIN "\n+1234\n%s\ntime 5\n",                  /* sign */
        ORIGIN "\n 1234\n%s\ntime 5\n",                  /* space */
        ORIGIN "\n\n%s\ntime 5\n",                       /* empty size */
        ORIGIN "\n18446744073709551616\n%s\ntime 5\n",   /* 2^64 */
        ORIGIN "\n12a4\n%s\ntime 5\n",                   /* not decimal */
        ORIGIN "\n1234\n%s \ntime 5\n",                  /* trailing space */
        ORIGIN "\n1234\n%s\ntime 05\n",                  /* leading zero */
        ORIGIN "\n1234\n%s\ntime -5\n",                  /* negative */
        ORIGIN "\n1234\n%s\ntime  5\n",                  /* two spaces */
        ORIGIN "\n1234\n%s\nTime 5\n",                   /* case */
        ORIGIN "\n1234\n%s\ntime 9223372036854775808\n", /* > INT64_MAX */
        ORIGIN "\n1234\n%s\ntime\n",                     /* no value */
        ORIGIN "\n1234\n%s\n",                           /* no time line */
        ORIGIN "\n1234\n%s\ntime 5\nextra line\n",       /* extra extension */
        ORIGIN "\n1234\n%s\ntime 5\ntime 6\n",           /* two times */
        ORIGIN "\r\n1234\n%s\ntime 5\n",                 /* CR */
        ORIGIN "\n1234\n%s\ntime 5\n\n",                 /* blank line in text */
        ORIGIN "\n1234\n%s",                             /* missing lines */
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        char t[512];
        subst(t, sizeof t, texts[i], R);
        n = note_signed(t, BROKER, g_broker);
        int rc = verify_str(n, &h);
        if (rc != CASENET_EBADREQ)
            fail_msg("text %zu accepted or misjudged (%d): %s", i, rc, t);
        CN_ERR(ckpt_parse((const uint8_t *)n, strlen(n), &h), CASENET_EBADREQ);
        free(n);
    }
    /* Roots: non-canonical base64 (unused bits set), unpadded, short, long,
     * URL alphabet. */
    static const char *const roots[] = {
        "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr9=",
        "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8",
        "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vg==",
        "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr+/AAAA",
        "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr-=",
        "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9v\x01=",
    };
    for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
        char t[512];
        snprintf(t, sizeof t, ORIGIN "\n1234\n%s\ntime 5\n", roots[i]);
        n = note_signed(t, BROKER, g_broker);
        if (verify_str(n, &h) != CASENET_EBADREQ)
            fail_msg("root %zu accepted", i);
        free(n);
    }

    /* Signature lines: build from a good checkpoint. */
    uint8_t root[32] = {1};
    struct blob ck = sign_head(g_broker, 77, root, 5);
    char *s = strndup((const char *)ck.p, ck.n);
    char *sig = strstr(s, "\n\n") + 2;
    char *text = strndup(s, (size_t)(sig - s));
    char *sigline = strdup(sig);
    /* The line twice; as signed (control); an extra blank line; a trailing
     * blank line; no final newline; a text that lost its newline. */
    const int want[6] = {CASENET_EBADREQ, CASENET_OK,      CASENET_EBADREQ,
                         CASENET_EBADREQ, CASENET_EBADREQ, CASENET_EBADREQ};
    for (size_t i = 0; i < 6; i++) {
        char *m = NULL;
        int r = -1;
        switch (i) {
        case 0:
            r = asprintf(&m, "%s%s%s", text, sigline, sigline);
            break;
        case 1:
            r = asprintf(&m, "%s%s", text, sigline);
            break;
        case 2:
            r = asprintf(&m, "%s\n%s", text, sigline);
            break;
        case 3:
            r = asprintf(&m, "%s%s\n", text, sigline);
            break;
        case 4:
            r = asprintf(&m, "%s%.*s", text, (int)strlen(sigline) - 1, sigline);
            break;
        default:
            r = asprintf(&m, "%.*s%s", (int)strlen(text) - 1, text, sigline);
            break;
        }
        assert_true(r > 0);
        int rc = verify_str(m, &h);
        if (rc != want[i])
            fail_msg("signature case %zu: %d", i, rc);
        free(m);
    }
    /* Hyphen instead of em dash; no space after the name; signature of the
     * wrong length; non-canonical signature base64. */
    char *m = strdup(s);
    char *dash = strstr(m, "\xe2\x80\x94");
    memcpy(dash, "--- ", 4);
    CN_ERR(verify_str(m, &h), CASENET_EBADREQ);
    free(m);
    m = strdup(s);
    *strstr(strstr(m, BROKER), " ") = '_';
    CN_ERR(verify_str(m, &h), CASENET_EBADREQ);
    free(m);
    m = strdup(s);
    char *eq = strrchr(m, '=');
    eq[-1] = eq[-1] == 'A' ? 'B' : 'A'; /* sets unused bits or changes a byte */
    assert_int_not_equal(verify_str(m, &h), CASENET_OK);
    free(m);
    m = NULL;
    assert_true(asprintf(&m, "%s\xe2\x80\x94 " BROKER " AAAA\n", text) > 0);
    CN_ERR(verify_str(m, &h), CASENET_EBADREQ);
    free(m);
    /* NUL and other control bytes anywhere. */
    m = strdup(s);
    m[3] = '\t';
    CN_ERR(verify_str(m, &h), CASENET_EBADREQ);
    CN_ERR(ckpt_verify((const uint8_t *)s, strlen(s) + 1, BROKER, g_pk, ORIGIN, &h),
           CASENET_EBADREQ);
    free(m);
    /* Too long. */
    uint8_t big[CKPT_MAX_BYTES + 1];
    memset(big, 'a', sizeof big);
    CN_ERR(ckpt_verify(big, sizeof big, BROKER, g_pk, ORIGIN, &h), CASENET_EBADREQ);

    /* Right format, wrong signer: another key under the broker's name, the
     * right key under another name, a changed text, a changed signature. */
    struct blob f = sign_head(g_forger, 77, root, 5);
    CN_ERR(ckpt_verify(f.p, f.n, BROKER, g_pk, ORIGIN, &h), CASENET_EBADSIG);
    CN_OK(ckpt_parse(f.p, f.n, &h)); /* well formed */
    char *signed_text = strndup(text, strlen(text) - 1);
    n = note_signed(signed_text, "vn.other", g_broker);
    free(signed_text);
    CN_ERR(verify_str(n, &h), CASENET_EBADSIG);
    free(n);
    m = strdup(s);
    strstr(m, "\n77\n")[1] = '8'; /* size 87 */
    CN_ERR(verify_str(m, &h), CASENET_EBADSIG);
    free(m);
    m = strdup(s);
    char *b = strstr(m, BROKER " ") + strlen(BROKER " ") + 20;
    *b = *b == 'Q' ? 'R' : 'Q';
    CN_ERR(verify_str(m, &h), CASENET_EBADSIG);
    free(m);
    /* Another origin, well signed. */
    CN_ERR(ckpt_verify(ck.p, ck.n, BROKER, g_pk, "casenet.audit/other", &h), CASENET_EBADREQ);

    blob_free(&f);
    blob_free(&ck);
    free(s);
    free(text);
    free(sigline);
}

/* ------------------------------------------------------------------ the log */

static void test_verify_ok(void **state)
{
    (void)state;
    struct file f;
    write_file(&f, g_ev, 0, N_EVENTS, g_heads, g_nheads, false);
    struct auditv_state st;
    struct auditv_failure fail;
    CN_OK(verify_bytes(f.data, f.len, NULL, &st, &fail));
    assert_int_equal(fail.where, AUDITV_OK);
    assert_int_equal(st.size, N_EVENTS);
    uint8_t root[32];
    root_of(g_ev, N_EVENTS, root);
    assert_memory_equal(st.root, root, 32);
    assert_int_equal(st.checkpoint_len, g_heads[g_nheads - 1].ck.n);
    assert_memory_equal(st.checkpoint, g_heads[g_nheads - 1].ck.p, st.checkpoint_len);

    /* Reading back record by record gives what was written. */
    FILE *fp = fmemopen(f.data, f.len, "rb");
    struct auditv_reader *rd = NULL;
    struct auditv_export_header h;
    CN_OK(auditv_reader_open(fp, &h, &rd, NULL));
    assert_string_equal(h.network, NETWORK);
    assert_string_equal(h.broker_id, BROKER);
    assert_memory_equal(h.broker_sign_pk, g_pk, 32);
    assert_int_equal(h.from_index, 0);
    size_t nev = 0, nck = 0;
    for (;;) {
        enum auditv_record_type t;
        casenet_buf rec = {0};
        bool eof;
        CN_OK(auditv_reader_next(rd, &t, &rec, &eof, NULL));
        if (eof)
            break;
        if (t == AUDITV_REC_EVENT) {
            assert_int_equal(rec.len, g_ev[nev].n);
            assert_memory_equal(rec.data, g_ev[nev].p, rec.len);
            nev++;
        } else {
            assert_int_equal(t, AUDITV_REC_CHECKPOINT);
            assert_int_equal(nev, g_heads[nck].size); /* right after its last event */
            nck++;
        }
        casenet_buf_free(&rec);
    }
    assert_int_equal(nev, N_EVENTS);
    assert_int_equal(nck, g_nheads);
    auditv_reader_free(rd);
    fclose(fp);
    free(f.data);
}

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    uint64_t *seen = ctx;
    assert_true(done >= seen[0]);
    seen[0] = done;
    seen[1] = total;
    seen[2]++;
}

/* Live mode: a page's checkpoints are fed before its events. */
static void test_live_feed(void **state)
{
    (void)state;
    uint64_t seen[3] = {0, 0, 0};
    struct auditv_config c = config();
    c.progress = progress_cb;
    c.progress_ctx = seen;
    c.total = N_EVENTS;
    struct auditv *v = NULL;
    CN_OK(auditv_new(&c, NULL, 0, &v));
    const uint64_t page = 700;
    size_t hi = 0;
    for (uint64_t a = 0; a < N_EVENTS; a += page) {
        uint64_t b = a + page < N_EVENTS ? a + page : N_EVENTS;
        while (hi < g_nheads && g_heads[hi].size <= b) {
            assert_int_equal(auditv_checkpoint(v, g_heads[hi].ck.p, g_heads[hi].ck.n), 0);
            hi++;
        }
        for (uint64_t i = a; i < b; i++)
            CN_OK(auditv_event(v, g_ev[i].p, g_ev[i].n));
    }
    uint64_t events, heads, tail;
    auditv_counts(v, &events, &heads, &tail);
    assert_int_equal(events, N_EVENTS);
    assert_int_equal(heads, g_nheads);
    assert_int_equal(tail, 0);
    struct auditv_state st;
    CN_OK(auditv_finish(v, &st));
    assert_int_equal(st.size, N_EVENTS);
    assert_int_equal(seen[0], N_EVENTS);
    assert_int_equal(seen[1], N_EVENTS);
    assert_true(seen[2] >= N_EVENTS / AUDITV_PROGRESS_EVERY);
    CN_ERR(auditv_finish(v, NULL), CASENET_EINVAL); /* once */
    auditv_free(v);

    /* A head fed after more events than its size is out of order. */
    CN_OK(auditv_new(&c, NULL, 0, &v));
    for (uint64_t i = 0; i < 150; i++)
        CN_OK(auditv_event(v, g_ev[i].p, g_ev[i].n));
    CN_ERR(auditv_checkpoint(v, g_heads[0].ck.p, g_heads[0].ck.n), CASENET_ECONFLICT);
    assert_int_equal(auditv_failure(v)->where, AUDITV_HEAD);
    assert_int_equal(auditv_failure(v)->head_size, 100);
    /* Sticky: everything after the first failure returns it. */
    CN_ERR(auditv_event(v, g_ev[150].p, g_ev[150].n), CASENET_ECONFLICT);
    CN_ERR(auditv_finish(v, NULL), CASENET_ECONFLICT);
    auditv_free(v);

    /* Heads whose size goes down. */
    CN_OK(auditv_new(&c, NULL, 0, &v));
    CN_OK(auditv_checkpoint(v, g_heads[2].ck.p, g_heads[2].ck.n));
    CN_ERR(auditv_checkpoint(v, g_heads[1].ck.p, g_heads[1].ck.n), CASENET_ECONFLICT);
    assert_int_equal(auditv_failure(v)->head_size, 200);
    auditv_free(v);

    /* Time going backwards. */
    uint8_t root[32];
    root_of(g_ev, 100, root);
    struct blob early = sign_head(g_broker, 100, root, T0 - 1);
    CN_OK(auditv_new(&c, NULL, 0, &v));
    CN_OK(auditv_checkpoint(v, g_heads[0].ck.p, g_heads[0].ck.n));
    CN_ERR(auditv_checkpoint(v, early.p, early.n), CASENET_ECONFLICT);
    assert_int_equal(auditv_failure(v)->head_size, 100);
    auditv_free(v);
    blob_free(&early);

    /* A start that is neither 0 nor the remembered size. */
    CN_ERR(auditv_new(&c, NULL, 5, &v), CASENET_EINVAL);
}

static void test_flipped_byte(void **state)
{
    (void)state;
    static struct blob ev[N_EVENTS];
    uint64_t ks[12] = {0, 1, 99, 100, 101, 1234, 1299, 2999};
    for (size_t i = 8; i < 12; i++)
        ks[i] = rng() % N_EVENTS;
    size_t by_event = 0, by_head = 0;
    for (size_t t = 0; t < 12; t++) {
        uint64_t k = ks[t];
        size_t n = g_ev[k].n;
        size_t pos[6] = {0, 1, 2, n / 2, n - 1, (size_t)(rng() % n)};
        for (size_t p = 0; p < 6; p++) {
            memcpy(ev, g_ev, sizeof ev);
            uint8_t *m = malloc(n);
            memcpy(m, g_ev[k].p, n);
            m[pos[p]] ^= (uint8_t)(1u << (rng() % 8));
            ev[k].p = m;
            struct auditv_failure fail;
            int rc = verify_events(ev, N_EVENTS, g_heads, g_nheads, &fail);
            assert_caught_at(rc, &fail, k);
            if (fail.where == AUDITV_EVENT)
                by_event++;
            else
                by_head++;
            free(m);
        }
    }
    /* Both detections happen (a flip in the index field or the framing, a
     * flip anywhere else). */
    assert_true(by_event > 0);
    assert_true(by_head > 0);
}

static void test_deleted_swapped(void **state)
{
    (void)state;
    static struct blob ev[N_EVENTS];
    struct auditv_failure fail;

    /* The last event's record deleted: the final head cannot be reached. */
    struct file f;
    write_file_skip(&f, g_ev, 0, N_EVENTS, g_heads, g_nheads, false, N_EVENTS - 1);
    int rc = verify_bytes(f.data, f.len, NULL, NULL, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_HEAD);
    assert_int_equal(fail.head_size, N_EVENTS);
    assert_int_equal(fail.index, N_EVENTS - 1);
    assert_non_null(strstr(fail.reason, "missing"));
    free(f.data);

    /* An event in the middle deleted: the next event is at the wrong place. */
    write_file_skip(&f, g_ev, 0, N_EVENTS, g_heads, g_nheads, false, 1500);
    rc = verify_bytes(f.data, f.len, NULL, NULL, &fail);
    CN_ERR(rc, CASENET_EBADREQ);
    assert_int_equal(fail.where, AUDITV_EVENT);
    assert_int_equal(fail.index, 1500);
    assert_non_null(strstr(fail.reason, "index field says 1501"));
    free(f.data);

    /* Two events swapped, as stored: the first names the other index. */
    const uint64_t pairs[][2] = {{10, 20}, {1234, 2345}, {2998, 2999}, {0, 2999}};
    for (size_t i = 0; i < 4; i++) {
        uint64_t a = pairs[i][0], b = pairs[i][1];
        memcpy(ev, g_ev, sizeof ev);
        ev[a] = g_ev[b];
        ev[b] = g_ev[a];
        rc = verify_events(ev, N_EVENTS, g_heads, g_nheads, &fail);
        CN_ERR(rc, CASENET_EBADREQ);
        assert_int_equal(fail.where, AUDITV_EVENT);
        assert_int_equal(fail.index, a);
        char want[64];
        snprintf(want, sizeof want, "event %llu: its index field says %llu", (unsigned long long)a,
                 (unsigned long long)b);
        assert_non_null(strstr(fail.reason, want));

        /* Swapped with their index fields rewritten to fit: the root. */
        memcpy(ev, g_ev, sizeof ev);
        Casenet__V1__AuditEvent *ea = casenet__v1__audit_event__unpack(NULL, g_ev[a].n, g_ev[a].p);
        Casenet__V1__AuditEvent *eb = casenet__v1__audit_event__unpack(NULL, g_ev[b].n, g_ev[b].p);
        ea->index = b;
        eb->index = a;
        struct blob na = {malloc(casenet__v1__audit_event__get_packed_size(eb)), 0};
        struct blob nb = {malloc(casenet__v1__audit_event__get_packed_size(ea)), 0};
        na.n = casenet__v1__audit_event__pack(eb, na.p);
        nb.n = casenet__v1__audit_event__pack(ea, nb.p);
        ev[a] = na;
        ev[b] = nb;
        rc = verify_events(ev, N_EVENTS, g_heads, g_nheads, &fail);
        assert_caught_at(rc, &fail, a);
        assert_int_equal(fail.where, AUDITV_HEAD);
        casenet__v1__audit_event__free_unpacked(ea, NULL);
        casenet__v1__audit_event__free_unpacked(eb, NULL);
        free(na.p);
        free(nb.p);
    }
}

static void test_forged_heads(void **state)
{
    (void)state;
    static struct head heads[N_EVENTS / HEAD_EVERY];
    struct auditv_failure fail;
    const size_t j = 14; /* the head of size 1500 */
    uint8_t root[32];
    root_of(g_ev, 1500, root);

    /* Re-signed with another key under the broker's name. */
    memcpy(heads, g_heads, sizeof heads);
    heads[j].ck = sign_head(g_forger, 1500, root, T0 + 14995);
    int rc = verify_events(g_ev, N_EVENTS, heads, g_nheads, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_HEAD);
    assert_int_equal(fail.head_size, 1500);
    assert_non_null(strstr(fail.reason, "not signed by the broker key"));
    blob_free(&heads[j].ck);

    /* Root changed in the text, old signature. */
    memcpy(heads, g_heads, sizeof heads);
    char *s = strndup((const char *)g_heads[j].ck.p, g_heads[j].ck.n);
    char *r = strstr(s, "\n1500\n") + 6;
    r[3] = r[3] == 'A' ? 'B' : 'A';
    heads[j].ck = (struct blob){(uint8_t *)s, strlen(s)};
    rc = verify_events(g_ev, N_EVENTS, heads, g_nheads, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_HEAD);
    assert_int_equal(fail.head_size, 1500);

    /* Size changed in the text, old signature: named by the size it claims. */
    memcpy(s, g_heads[j].ck.p, g_heads[j].ck.n);
    memcpy(strstr(s, "\n1500\n"), "\n1550\n", 6);
    rc = verify_events(g_ev, N_EVENTS, heads, g_nheads, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_HEAD);
    assert_int_equal(fail.head_size, 1550);
    free(s);

    /* The broker itself signs a root that is not its log's. */
    memcpy(heads, g_heads, sizeof heads);
    uint8_t other[32];
    root_of(g_ev, 1499, other);
    heads[j].ck = sign_head(g_broker, 1500, other, T0 + 14995);
    rc = verify_events(g_ev, N_EVENTS, heads, g_nheads, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_HEAD);
    assert_int_equal(fail.head_size, 1500);
    assert_int_equal(fail.index, 1400);
    assert_non_null(strstr(fail.reason, "at or before index 1499"));
    blob_free(&heads[j].ck);

    /* ... or a size other than where it stands: a head of size 1600 with
     * the root at 1500, placed after event 1499. */
    memcpy(heads, g_heads, sizeof heads);
    struct blob wrong = sign_head(g_broker, 1600, root, T0 + 14995);
    struct file f;
    FILE *fp = open_memstream(&f.data, &f.len);
    struct auditv_export_header h;
    memset(&h, 0, sizeof h);
    strcpy(h.network, NETWORK);
    strcpy(h.broker_id, BROKER);
    memcpy(h.broker_sign_pk, g_pk, 32);
    CN_OK(auditv_export_write_header(fp, &h));
    size_t hi = 0;
    for (uint64_t i = 0; i < N_EVENTS; i++) {
        CN_OK(auditv_export_write_event(fp, g_ev[i].p, g_ev[i].n));
        if (i + 1 == 1500) {
            CN_OK(auditv_export_write_checkpoint(fp, wrong.p, wrong.n));
            hi++;
            continue;
        }
        if (hi < g_nheads && g_heads[hi].size == i + 1) {
            assert_int_equal(auditv_export_write_checkpoint(fp, g_heads[hi].ck.p, g_heads[hi].ck.n),
                             0);
            hi++;
        }
    }
    fclose(fp);
    rc = verify_bytes(f.data, f.len, NULL, NULL, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_HEAD);
    assert_int_equal(fail.head_size, 1600);
    free(f.data);
    blob_free(&wrong);
}

static void test_file_framing(void **state)
{
    (void)state;
    struct file f;
    write_file(&f, g_ev, 0, N_EVENTS, g_heads, g_nheads, false);
    struct auditv_failure fail;

    /* Cut inside a record: named by the record's offset. */
    const uint64_t cuts[] = {0, 1, 500, 1500, 2999};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        uint64_t off = f.ev_off[cuts[i]];
        for (size_t into = 1; into <= 3; into++) {
            size_t len = off + (into == 3 ? g_ev[cuts[i]].n / 2 : into);
            int rc = verify_bytes(f.data, len, NULL, NULL, &fail);
            CN_ERR(rc, CASENET_EBADREQ);
            assert_int_equal(fail.where, AUDITV_FILE);
            assert_int_equal(fail.offset, off);
            assert_non_null(strstr(fail.reason, "truncated"));
        }
    }
    /* Cut inside the header, and an empty file. */
    CN_ERR(verify_bytes(f.data, 10, NULL, NULL, &fail), CASENET_EBADREQ);
    assert_int_equal(fail.where, AUDITV_FILE);
    assert_int_equal(fail.offset, 0);
    char empty = 0;
    CN_ERR(verify_bytes(&empty, 1, NULL, NULL, &fail), CASENET_EBADREQ);

    /* A length over the limit, an overlong varint, a record with nothing. */
    uint64_t off = f.ev_off[700];
    const uint8_t bad[][5] = {{0xff, 0xff, 0xff, 0x7f, 0},
                              {0x80, 0x80, 0x80, 0x80, 0x01},
                              {0x80, 0x00, 0, 0, 0},
                              {0x00, 0, 0, 0, 0}};
    for (size_t i = 0; i < 4; i++) {
        char *m = malloc(off + 5);
        memcpy(m, f.data, off);
        memcpy(m + off, bad[i], 5);
        int rc = verify_bytes(m, off + 5, NULL, NULL, &fail);
        CN_ERR(rc, CASENET_EBADREQ);
        assert_int_equal(fail.where, AUDITV_FILE);
        assert_int_equal(fail.offset, off);
        free(m);
    }
    /* A second header. */
    {
        char *m = malloc(f.len + f.ev_off[0]);
        memcpy(m, f.data, f.ev_off[5]);
        memcpy(m + f.ev_off[5], f.data, f.ev_off[0]);
        memcpy(m + f.ev_off[5] + f.ev_off[0], f.data + f.ev_off[5], f.len - f.ev_off[5]);
        int rc = verify_bytes(m, f.len + f.ev_off[0], NULL, NULL, &fail);
        CN_ERR(rc, CASENET_EBADREQ);
        assert_int_equal(fail.where, AUDITV_FILE);
        assert_int_equal(fail.offset, f.ev_off[5]);
        assert_non_null(strstr(fail.reason, "second header"));
        free(m);
    }
    /* Any flipped byte after the header is caught (200 random positions). */
    char *m = malloc(f.len);
    for (size_t i = 0; i < 200; i++) {
        memcpy(m, f.data, f.len);
        size_t pos = f.ev_off[0] + (size_t)(rng() % (f.len - f.ev_off[0]));
        m[pos] ^= (char)(1u << (rng() % 8));
        if (verify_bytes(m, f.len, NULL, NULL, &fail) == CASENET_OK)
            fail_msg("flip at byte %zu accepted", pos);
        assert_int_not_equal(fail.where, AUDITV_OK);
    }
    /* Every flipped byte of the header is caught. */
    for (size_t pos = 0; pos < f.ev_off[0]; pos++) {
        memcpy(m, f.data, f.len);
        m[pos] ^= 0x01;
        if (verify_bytes(m, f.len, NULL, NULL, &fail) == CASENET_OK)
            fail_msg("header flip at byte %zu accepted", pos);
    }
    free(m);
    free(f.data);

    /* A header naming another broker key. */
    FILE *fp = open_memstream(&f.data, &f.len);
    struct auditv_export_header h;
    memset(&h, 0, sizeof h);
    strcpy(h.network, NETWORK);
    strcpy(h.broker_id, BROKER);
    memcpy(h.broker_sign_pk, casenet_keys_sign_pk(g_forger, NULL), 32);
    CN_OK(auditv_export_write_header(fp, &h));
    fclose(fp);
    CN_ERR(verify_bytes(f.data, f.len, NULL, NULL, &fail), CASENET_EBADREQ);
    assert_int_equal(fail.where, AUDITV_FILE);
    assert_int_equal(fail.offset, 0);
    free(f.data);
    strcpy(h.network, "bad network");
    CN_ERR(auditv_export_write_header(stdout, &h), CASENET_EINVAL);
}

/* Verifies ev[0..n) with heads from scratch and returns the state. */
static struct auditv_state state_after(const struct blob *ev, uint64_t n, const struct head *heads,
                                       size_t nheads)
{
    struct file f;
    write_file(&f, ev, 0, n, heads, nheads, false);
    struct auditv_state st;
    struct auditv_failure fail;
    CN_OK(verify_bytes(f.data, f.len, NULL, &st, &fail));
    free(f.data);
    return st;
}

static void test_resume(void **state)
{
    (void)state;
    struct auditv_failure fail;
    /* 1234 events known: the trusted state is the head of size 1200. */
    struct auditv_state st = state_after(g_ev, 1234, g_heads, g_nheads);
    assert_int_equal(st.size, 1200);
    assert_int_equal(st.range.size, 1200);

    /* Remembered on disk and back. */
    char *dir = tl_tmpdir();
    char *path = tl_path(dir, "audit.state");
    struct auditv_state back;
    CN_ERR(auditv_state_load(path, &back), CASENET_ENOTFOUND);
    CN_OK(auditv_state_save(path, &st));
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    CN_OK(auditv_state_load(path, &back));
    assert_int_equal(back.size, 1200);
    assert_memory_equal(back.root, st.root, 32);
    assert_int_equal(back.time_ms, st.time_ms);
    assert_int_equal(back.checkpoint_len, st.checkpoint_len);

    /* Continue with the events from 1200 only. */
    struct file f;
    write_file(&f, g_ev, 1200, N_EVENTS, g_heads, g_nheads, false);
    struct auditv_state st2;
    CN_OK(verify_bytes(f.data, f.len, &back, &st2, &fail));
    assert_int_equal(st2.size, N_EVENTS);
    uint8_t root[32];
    root_of(g_ev, N_EVENTS, root);
    assert_memory_equal(st2.root, root, 32);
    /* The same export does not fit another remembered size. */
    struct auditv_state st1000 = state_after(g_ev, 1000, g_heads, g_nheads);
    CN_ERR(verify_bytes(f.data, f.len, &st1000, NULL, &fail), CASENET_EBADREQ);
    assert_int_equal(fail.where, AUDITV_FILE);
    free(f.data);
    /* With the head of size 1200 repeated at the start: same root, fine. */
    write_file(&f, g_ev, 1200, N_EVENTS, g_heads, g_nheads, true);
    CN_OK(verify_bytes(f.data, f.len, &back, NULL, &fail));
    free(f.data);
    /* From scratch against the remembered state. */
    write_file(&f, g_ev, 0, N_EVENTS, g_heads, g_nheads, false);
    CN_OK(verify_bytes(f.data, f.len, &back, &st2, &fail));
    assert_int_equal(st2.size, N_EVENTS);
    free(f.data);
    /* An export from 1200 does not fit a home that remembers 3000. */
    write_file(&f, g_ev, 1200, N_EVENTS, g_heads, g_nheads, false);
    CN_ERR(verify_bytes(f.data, f.len, &st2, NULL, &fail), CASENET_EBADREQ);
    free(f.data);

    /* A remembered state with nothing new: fine, and unchanged. */
    write_file(&f, g_ev, N_EVENTS, N_EVENTS, g_heads, g_nheads, false);
    struct auditv_state st3;
    CN_OK(verify_bytes(f.data, f.len, &st2, &st3, &fail));
    assert_int_equal(st3.size, N_EVENTS);
    assert_memory_equal(st3.root, st2.root, 32);
    free(f.data);

    /* The state file is strict. */
    casenet_buf enc = {0};
    CN_OK(auditv_state_encode(&st, &enc));
    struct auditv_state x;
    CN_OK(auditv_state_decode(enc.data, enc.len, &x));
    CN_ERR(auditv_state_decode(enc.data, enc.len - 1, &x), CASENET_EBADREQ);
    for (size_t i = 0; i < enc.len; i += 7) {
        enc.data[i] ^= 0x10;
        if (auditv_state_decode(enc.data, enc.len, &x) == CASENET_OK)
            fail_msg("state flip at %zu accepted", i);
        enc.data[i] ^= 0x10;
    }
    casenet_buf_free(&enc);
    struct auditv_state empty;
    auditv_state_init(&empty);
    CN_OK(auditv_state_encode(&empty, &enc));
    CN_OK(auditv_state_decode(enc.data, enc.len, &x));
    assert_int_equal(x.size, 0);
    casenet_buf_free(&enc);

    tl_rmrf(dir);
    free(path);
    free(dir);
}

/* A broker restarted on a rewritten database: log B has other events and
 * heads signed with the same key, consistent in themselves. */
static void test_rewritten_history(void **state)
{
    (void)state;
    static struct blob evb[N_EVENTS];
    static struct head hb[N_EVENTS / HEAD_EVERY];
    for (size_t i = 0; i < N_EVENTS; i++)
        evb[i] = i < 700 ? g_ev[i] : make_event(i, 1); /* rewritten from 700 on */
    size_t nhb = make_heads(evb, N_EVENTS, g_broker, hb);
    struct auditv_failure fail;
    struct file f;

    /* B alone verifies: only the remembered head can tell. */
    CN_OK(verify_events(evb, N_EVENTS, hb, nhb, &fail));

    struct auditv_state st = state_after(g_ev, 1000, g_heads, g_nheads);
    assert_int_equal(st.size, 1000);

    /* Resumed: the first head after the remembered one does not match. */
    write_file(&f, evb, 1000, N_EVENTS, hb, nhb, false);
    int rc = verify_bytes(f.data, f.len, &st, NULL, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_HEAD);
    assert_int_equal(fail.head_size, 1100);
    assert_int_equal(fail.index, 1000);
    assert_non_null(strstr(fail.reason, "remembered head"));
    free(f.data);

    /* From scratch: B's own heads hold, the remembered root does not. */
    write_file(&f, evb, 0, N_EVENTS, hb, nhb, false);
    rc = verify_bytes(f.data, f.len, &st, NULL, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_REMEMBERED);
    assert_int_equal(fail.head_size, 1000);
    free(f.data);

    /* Same size: B's head of size 1000 against the remembered one. */
    write_file(&f, evb, 1000, 1000, hb, nhb, true);
    rc = verify_bytes(f.data, f.len, &st, NULL, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_HEAD);
    assert_int_equal(fail.head_size, 1000);
    free(f.data);

    /* Cut short below the remembered size. */
    write_file(&f, evb, 0, 500, hb, nhb, false);
    rc = verify_bytes(f.data, f.len, &st, NULL, &fail);
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(fail.where, AUDITV_REMEMBERED);
    assert_int_equal(fail.head_size, 1000);
    assert_int_equal(fail.index, 500);
    assert_non_null(strstr(fail.reason, "cut short"));
    free(f.data);

    /* Live: the broker's current head (size 3000 of B) fed first, then the
     * events from the remembered size. */
    struct auditv_config c = config();
    struct auditv *v = NULL;
    CN_OK(auditv_new(&c, &st, st.size, &v));
    CN_OK(auditv_checkpoint(v, hb[nhb - 1].ck.p, hb[nhb - 1].ck.n));
    uint64_t e = st.size;
    for (rc = CASENET_OK; e < N_EVENTS && rc == CASENET_OK; e++)
        rc = auditv_event(v, evb[e].p, evb[e].n);
    /* Caught with the last event, which completes the head's size. */
    CN_ERR(rc, CASENET_EBADSIG);
    assert_int_equal(e, N_EVENTS);
    assert_int_equal(auditv_failure(v)->index, 1000);
    assert_int_equal(auditv_failure(v)->where, AUDITV_HEAD);
    assert_int_equal(auditv_failure(v)->head_size, N_EVENTS);
    auditv_free(v);

    for (size_t i = 700; i < N_EVENTS; i++)
        blob_free(&evb[i]);
    for (size_t i = 0; i < nhb; i++)
        blob_free(&hb[i].ck);
}

/* A LOG_RESTORED event at index i naming the previous head (size, root). */
static struct blob make_restored(uint64_t i, uint64_t prev_size, const uint8_t *prev_root)
{
    Casenet__V1__AuditEvent e = CASENET__V1__AUDIT_EVENT__INIT;
    e.index = i;
    e.time_ms = T0 + 100000;
    e.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_LOG_RESTORED;
    e.detail = (char *)"log restored from backup";
    e.previous_size = prev_size;
    e.previous_root.data = (uint8_t *)prev_root;
    e.previous_root.len = prev_root ? 32 : 0;
    struct blob b;
    b.n = casenet__v1__audit_event__get_packed_size(&e);
    b.p = malloc(b.n);
    assert_non_null(b.p);
    casenet__v1__audit_event__pack(&e, b.p);
    return b;
}

/* Verifies the log of g_ev[0..700), LOG_RESTORED(prev_size, prev_root),
 * then new events up to 1500 (heads every 100), from 0 against trusted. */
static int verify_epoch(const struct auditv_state *trusted, uint64_t prev_size,
                        const uint8_t *prev_root, struct auditv_epoch *ep, struct auditv_state *out,
                        struct auditv_failure *fail)
{
    static struct blob evc[1500];
    static struct head hc[1500 / HEAD_EVERY];
    for (size_t i = 0; i < 1500; i++)
        evc[i] = i < 700    ? g_ev[i]
                 : i == 700 ? make_restored(700, prev_size, prev_root)
                            : make_event(i, 1);
    size_t nh = make_heads(evc, 1500, g_broker, hc);
    struct file f;
    write_file(&f, evc, 0, 1500, hc, nh, false);
    FILE *fp = fmemopen(f.data, f.len, "rb");
    assert_non_null(fp);
    struct auditv_config c = config();
    memset(ep, 0, sizeof *ep);
    c.epoch = ep;
    int rc = auditv_verify_file(fp, &c, trusted, out, fail);
    fclose(fp);
    free(f.data);
    for (size_t i = 700; i < 1500; i++)
        blob_free(&evc[i]);
    for (size_t i = 0; i < nh; i++)
        blob_free(&hc[i].ck);
    return rc;
}

/* A restored broker's new epoch (PROTOCOL.md §10.1, §10.4): accepted when
 * its LOG_RESTORED event names the remembered head (or a later one, or
 * none), reported with the events lost; refused when it names an older or
 * another head; an ordinary event without a remembered head beyond it. */
static void test_epoch_change(void **state)
{
    (void)state;
    struct auditv_state st = state_after(g_ev, 1000, g_heads, g_nheads), out;
    struct auditv_failure fail;
    struct auditv_epoch ep;
    uint8_t other[32];
    memset(other, 0x5a, sizeof other);

    assert_int_equal(verify_epoch(&st, 1000, st.root, &ep, &out, &fail), CASENET_OK);
    assert_true(ep.changed);
    assert_int_equal(ep.restored_size, 700);
    assert_int_equal(ep.previous_size, 1000);
    assert_int_equal(ep.remembered_size, 1000);
    assert_int_equal(out.size, 1500); /* the new epoch's last head */

    assert_int_equal(verify_epoch(&st, 1300, other, &ep, &out, &fail), CASENET_OK);
    assert_true(ep.changed);
    assert_int_equal(ep.previous_size, 1300);
    assert_int_equal(verify_epoch(&st, 0, NULL, &ep, &out, &fail), CASENET_OK);
    assert_true(ep.changed);
    assert_int_equal(ep.previous_size, 0);

    assert_int_equal(verify_epoch(&st, 900, other, &ep, &out, &fail), CASENET_EROLLBACK);
    assert_int_equal(fail.where, AUDITV_REMEMBERED);
    assert_int_equal(fail.head_size, 1000);
    assert_int_equal(fail.index, 700);
    assert_non_null(strstr(fail.reason, "restored from a backup"));
    assert_false(ep.changed);
    assert_int_equal(verify_epoch(&st, 1000, other, &ep, &out, &fail), CASENET_EROLLBACK);

    /* Nothing remembered: an ordinary event. */
    assert_int_equal(verify_epoch(NULL, 1000, st.root, &ep, &out, &fail), CASENET_OK);
    assert_false(ep.changed);
    /* Remembered below the restore point: an ordinary event too. */
    struct auditv_state low = state_after(g_ev, 600, g_heads, g_nheads);
    assert_int_equal(verify_epoch(&low, 1000, st.root, &ep, &out, &fail), CASENET_OK);
    assert_false(ep.changed);
}

/* The fuzzers' key and their seed corpus: the committed seeds must be what
 * they claim (valid ones verify). CASENET_AUDIT_SEEDS_OUT=dir rewrites them. */
static void test_fuzz_seeds(void **state)
{
    (void)state;
    uint8_t seed[32];
    memset(seed, 0x42, sizeof seed);
    casenet_keys *k = NULL;
    CN_OK(cn_keys_from_secrets(BROKER, seed, NULL, NULL, T0, &k));
    const uint8_t *pk = casenet_keys_sign_pk(k, NULL);
    static struct blob ev[40];
    static struct head heads[4];
    for (size_t i = 0; i < 40; i++)
        ev[i] = g_ev[i];
    struct merkle_stack s;
    merkle_stack_init(&s);
    size_t nh = 0;
    for (size_t i = 0; i < 40; i++) {
        uint8_t leaf[32], root[32];
        merkle_leaf_hash(ev[i].p, ev[i].n, leaf);
        CN_OK(merkle_stack_push(&s, leaf, NULL, NULL));
        if ((i + 1) % 10 == 0) {
            merkle_stack_root(&s, root);
            heads[nh].size = i + 1;
            heads[nh].ck = sign_head(k, i + 1, root, T0 + (int64_t)i);
            nh++;
        }
    }
    char *data = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&data, &len);
    struct auditv_export_header h;
    memset(&h, 0, sizeof h);
    strcpy(h.network, NETWORK);
    strcpy(h.broker_id, BROKER);
    memcpy(h.broker_sign_pk, pk, 32);
    CN_OK(auditv_export_write_header(fp, &h));
    for (size_t i = 0, hi = 0; i < 40; i++) {
        CN_OK(auditv_export_write_event(fp, ev[i].p, ev[i].n));
        if (hi < nh && heads[hi].size == i + 1) {
            assert_int_equal(auditv_export_write_checkpoint(fp, heads[hi].ck.p, heads[hi].ck.n), 0);
            hi++;
        }
    }
    fclose(fp);

    const char *out = getenv("CASENET_AUDIT_SEEDS_OUT");
    if (out) {
        char *p = NULL;
        assert_true(asprintf(&p, "%s/audit_export/valid-40.bin", out) > 0);
        tl_write_file(p, data, len, 0644);
        free(p);
        assert_true(asprintf(&p, "%s/checkpoint/valid-10.txt", out) > 0);
        tl_write_file(p, heads[0].ck.p, heads[0].ck.n, 0644);
        free(p);
    }
    /* The committed seeds: the valid export verifies with the fuzzers' key,
     * the valid checkpoint too. */
    const char *src = getenv("CASENET_SOURCE_DIR");
    assert_non_null(src);
    char *p = NULL;
    assert_true(asprintf(&p, "%s/tests/fuzz/corpus/audit_export/valid-40.bin", src) > 0);
    size_t flen;
    uint8_t *fdata = tl_read_file(p, &flen);
    assert_int_equal(flen, len);
    assert_memory_equal(fdata, data, len);
    free(fdata);
    free(p);
    assert_true(asprintf(&p, "%s/tests/fuzz/corpus/checkpoint/valid-10.txt", src) > 0);
    fdata = tl_read_file(p, &flen);
    struct ckpt_head ch;
    CN_OK(ckpt_verify(fdata, flen, BROKER, pk, ORIGIN, &ch));
    assert_int_equal(ch.size, 10);
    free(fdata);
    free(p);

    free(data);
    for (size_t i = 0; i < nh; i++)
        blob_free(&heads[i].ck);
    casenet_keys_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c2sp_vector),       cmocka_unit_test(test_checkpoint_roundtrip),
        cmocka_unit_test(test_checkpoint_strict), cmocka_unit_test(test_verify_ok),
        cmocka_unit_test(test_live_feed),         cmocka_unit_test(test_flipped_byte),
        cmocka_unit_test(test_deleted_swapped),   cmocka_unit_test(test_forged_heads),
        cmocka_unit_test(test_file_framing),      cmocka_unit_test(test_resume),
        cmocka_unit_test(test_rewritten_history), cmocka_unit_test(test_fuzz_seeds),
        cmocka_unit_test(test_epoch_change),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
