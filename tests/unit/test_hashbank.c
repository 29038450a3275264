/* test_hashbank.c - the local hash bank (clients/hashbank*.c): applying
 * shares in and out of order, idempotence, the retraction rule, feedback,
 * the CSV and TYPE:VALUE forms, the file digests' known answers, the
 * per-source counts (always equal to a scan of the entries), recorded
 * matches and feedback sent, and the migration of a version-0 bank file. */
#include "casenet.pb-c.h"
#include "hashbank.h"
#include "hashbank_digest.h"
#include "testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define V1 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A serialised share from JSON (asserts it converts and checks). */
static casenet_buf share(const char *json)
{
    casenet_buf b = {0};
    char err[256] = "";
    if (casenet_payload_from_json(json, strlen(json), CASENET_KIND_HASH_SHARE, &b, err,
                                  sizeof err) != CASENET_OK ||
        casenet_payload_check(b.data, b.len, CASENET_KIND_HASH_SHARE, 0, err, sizeof err) !=
            CASENET_OK)
        fail_msg("share %s: %s", json, err);
    return b;
}

static const char add_json[] =
    "{\"hashShare\": {\"entries\": [{\"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_SHA256\", "
    "\"value\": \"" V1 "\"}, \"category\": \"HASH_CATEGORY_BASELINE\", \"firstSeenMs\": \"5\"}]}}";
static const char retract_json[] =
    "{\"hashShare\": {\"retractions\": [{\"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_SHA256\", "
    "\"value\": \"" V1 "\"}}]}}";

static char *dir; /* this run's temporary directory */

static int group_setup(void **state)
{
    (void)state;
    dir = tl_tmpdir();
    return dir ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    tl_rmrf(dir);
    free(dir);
    return 0;
}

static hashbank *fresh(char *path, size_t len)
{
    snprintf(path, len, "%s/bank.sqlite", dir);
    unlink(path);
    hashbank *b = NULL;
    CN_OK(hashbank_open(path, &b));
    return b;
}

static size_t live(hashbank *b)
{
    size_t n = 99;
    CN_OK(hashbank_lookup(b, "sha256", V1, &n));
    return n;
}

/* The counts table the bank keeps equals a scan of its entries. */
static void check_counts(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM (SELECT contributor, category,"
                           " sum(retracted = 0) AS l, sum(retracted != 0) AS r FROM entries"
                           " GROUP BY 1, 2) AS e FULL JOIN (SELECT * FROM counts"
                           " WHERE live > 0 OR retracted > 0) AS c USING (contributor, category)"
                           " WHERE e.l IS NOT c.live OR e.r IS NOT c.retracted",
                           -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void apply(hashbank *b, uint8_t idbyte, int64_t at, const casenet_buf *p,
                  struct hashbank_result *r)
{
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    memset(id, idbyte, sizeof id);
    CN_OK(hashbank_apply(b, id, "vn.hotline111", at, p->data, p->len, r));
}

/* In order, again (idempotent), and a retraction that arrives before the
 * older add it retracts: the add stays out. */
static void test_order(void **state)
{
    (void)state;
    char path[512];
    hashbank *b = fresh(path, sizeof path);
    casenet_buf add = share(add_json), del = share(retract_json);
    struct hashbank_result r;
    apply(b, 1, 100, &add, &r);
    assert_int_equal(r.added, 1);
    assert_int_equal(live(b), 1);
    apply(b, 1, 100, &add, &r);
    assert_true(r.already);
    apply(b, 2, 200, &del, &r);
    assert_int_equal(r.retracted, 1);
    assert_int_equal(live(b), 0);
    apply(b, 3, 150, &add, &r); /* older than the retraction, arriving late */
    assert_int_equal(r.ignored, 1);
    assert_int_equal(live(b), 0);
    apply(b, 4, 200, &add, &r); /* as old as the retraction: the retraction wins */
    assert_int_equal(live(b), 0);
    apply(b, 5, 300, &add, &r); /* newer: added again */
    assert_int_equal(live(b), 1);
    apply(b, 6, 250, &del, &r); /* a retraction older than that add loses */
    assert_int_equal(r.ignored, 1);
    assert_int_equal(live(b), 1);
    check_counts(path);
    hashbank_free(b);

    b = fresh(path, sizeof path); /* a retraction first, then its older add */
    apply(b, 7, 200, &del, &r);
    apply(b, 8, 100, &add, &r);
    assert_int_equal(live(b), 0);
    struct hashbank_stats s;
    CN_OK(hashbank_stats(b, &s));
    assert_int_equal(s.live, 0);
    assert_int_equal(s.retracted, 1);
    assert_int_equal(s.messages, 2);
    check_counts(path);
    hashbank_free(b);
    casenet_buf_free(&add);
    casenet_buf_free(&del);
}

static int count_feedback(const struct hashbank_feedback *f, void *ctx)
{
    size_t *n = ctx;
    assert_string_equal(f->sender, "vn.hotline111");
    assert_string_equal(f->signal_type, "sha256");
    (*n)++;
    return CASENET_OK;
}

static void test_feedback(void **state)
{
    (void)state;
    char path[512];
    hashbank *b = fresh(path, sizeof path);
    casenet_buf fb =
        share("{\"hashShare\": {\"feedback\": [{\"kind\": "
              "\"HASH_FEEDBACK_KIND_MATCH\", \"matchCount\": 7, \"signal\": "
              "{\"signalType\": \"HASH_SIGNAL_TYPE_SHA256\", \"value\": \"" V1 "\"}}]}}");
    struct hashbank_result r;
    apply(b, 9, 100, &fb, &r);
    assert_int_equal(r.feedback, 1);
    size_t n = 0;
    CN_OK(hashbank_each_feedback(b, count_feedback, &n));
    assert_int_equal(n, 1);
    struct hashbank_stats s;
    CN_OK(hashbank_stats(b, &s));
    assert_int_equal(s.matches, 7);
    uint8_t id[CASENET_MESSAGE_ID_BYTES] = {0};
    CN_ERR(hashbank_apply(b, id, "x", 1, (const uint8_t *)"\x0a\x00", 2, &r), CASENET_EBADREQ);
    hashbank_free(b);
    casenet_buf_free(&fb);
}

static void test_text_forms(void **state)
{
    (void)state;
    struct hashbank_row row;
    char err[256];
    const char ok[] = "SHA1,DA39A3EE5E6B4B0D3255BFEF95601890AFD80709,not-illegal\r";
    CN_OK(hashbank_csv_row(ok, strlen(ok), &row, err, sizeof err));
    assert_string_equal(row.value, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_int_equal(row.category, CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_NOT_ILLEGAL);
    const char vendor[] = "vendor:photodna,AbC=";
    CN_OK(hashbank_csv_row(vendor, strlen(vendor), &row, err, sizeof err));
    assert_string_equal(row.vendor, "photodna");
    assert_string_equal(row.value, "AbC=");
    const char *const bad[] = {"md5",
                               "md5,",
                               "md5,00,baseline",
                               "md5,d41d8cd98f00b204e9800998ecf8427e,x",
                               "md5,d41d8cd98f00b204e9800998ecf8427e,baseline,4",
                               "x,y,z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CN_ERR(hashbank_csv_row(bad[i], strlen(bad[i]), &row, err, sizeof err), CASENET_EINVAL);
    assert_true(hashbank_csv_header("signal_type,signal_value,category\r", 34));
    CN_OK(hashbank_signal_arg("vendor:x.y:a:b", &row, err, sizeof err));
    assert_string_equal(row.vendor, "x.y");
    assert_string_equal(row.value, "a:b");
    CN_ERR(hashbank_signal_arg("sha256", &row, err, sizeof err), CASENET_EINVAL);
}

/* RFC 1321 / RFC 3174 / FIPS 180 known answers, across a 64-byte boundary. */
static void test_digests(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/digest.bin", dir);
    struct hashbank_digests d;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    CN_OK(hashbank_digest_file(path, &d));
    assert_string_equal(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
    assert_string_equal(d.sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_string_equal(d.sha256, V1);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", f);
    fclose(f);
    CN_OK(hashbank_digest_file(path, &d));
    assert_string_equal(d.md5, "8215ef0796a20bcaaae116d3876c664a");
    assert_string_equal(d.sha1, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 1000000; i++)
        fputc('a', f);
    fclose(f);
    CN_OK(hashbank_digest_file(path, &d));
    assert_string_equal(d.md5, "7707d6ae4e027c70eea2a935c2296f21");
    assert_string_equal(d.sha1, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    unlink(path);
    CN_ERR(hashbank_digest_file(path, &d), CASENET_EIO);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* q with the bits of positions [0, flips) of a spread permutation flipped. */
static void flipped(const uint64_t q[4], unsigned flips, uint64_t out[4])
{
    memcpy(out, q, 4 * sizeof *q);
    for (unsigned i = 0; i < flips; i++) {
        unsigned bit = (i * 97) % 256; /* 97 is odd: 256 distinct positions */
        out[bit / 64] ^= 1ull << (bit % 64);
    }
}

/* Distance 31 matches, 32 does not, wherever the flipped bits fall; the
 * index finds exactly what a scan of every hash finds. */
static void test_pdq(void **state)
{
    (void)state;
    uint64_t q[4], near[4], far[4], none[4];
    CN_OK(
        hashbank_pdq_parse("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22", q));
    assert_true(q[0] == 0xf8f8f0cee0f4a84full && q[3] == 0x33e6b39c4e9c9b22ull);
    CN_ERR(hashbank_pdq_parse("F8f8", q), CASENET_EINVAL);
    CN_OK(
        hashbank_pdq_parse("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22", q));
    hashbank_pdq_index *ix = NULL;
    struct hashbank_pdq_hit hits[8];
    CN_OK(hashbank_pdq_new(&ix));
    assert_int_equal(hashbank_pdq_match(ix, q, 31, hits, 8), 0); /* not built */
    flipped(q, 31, near);
    flipped(q, 32, far);
    CN_OK(hashbank_pdq_add(ix, near));
    CN_OK(hashbank_pdq_add(ix, far));
    enum { RANDOM = 20000 };
    static uint64_t all[RANDOM][4];
    for (int i = 0; i < RANDOM; i++) {
        for (int w = 0; w < 4; w++)
            all[i][w] = rnd();
        if (i % 100 == 0) /* some near the query, at distances 0..40 */
            flipped(q, (unsigned)(i / 100) % 41, all[i]);
        CN_OK(hashbank_pdq_add(ix, all[i]));
    }
    CN_OK(hashbank_pdq_build(ix));
    CN_ERR(hashbank_pdq_add(ix, q), CASENET_EINVAL);
    /* near alone at 31 would be 1; the random ones near q add theirs */
    size_t brute = 0;
    for (int i = 0; i < RANDOM; i++) {
        unsigned d = 0;
        for (int w = 0; w < 4; w++)
            d += (unsigned)__builtin_popcountll(all[i][w] ^ q[w]);
        brute += d <= 31;
    }
    size_t n = hashbank_pdq_match(ix, q, 31, hits, 8);
    assert_int_equal(n, brute + 1);
    for (int w = 0; w < 4; w++)
        none[w] = ~q[w]; /* 256 from q, far from everything indexed */
    assert_int_equal(hashbank_pdq_match(ix, none, 31, hits, 8), 0);
    /* hits beyond max_hits are counted, not written */
    assert_int_equal(hashbank_pdq_match(ix, q, 31, hits, 1), brute + 1);
    /* far is 32 from q, near 31: from q at 31, near counts and far does not */
    uint64_t lone[4];
    hashbank_pdq_index *two = NULL;
    CN_OK(hashbank_pdq_new(&two));
    CN_OK(hashbank_pdq_add(two, near));
    CN_OK(hashbank_pdq_add(two, far));
    CN_OK(hashbank_pdq_build(two));
    assert_int_equal(hashbank_pdq_match(two, q, 31, hits, 8), 1);
    assert_int_equal(hits[0].distance, 31);
    assert_int_equal(hashbank_pdq_match(two, q, 32, hits, 8), 0); /* beyond the bound */
    for (unsigned d = 0; d <= 31; d++) {                          /* every distance up to 31 */
        flipped(q, d, lone);
        assert_int_equal(hashbank_pdq_match(two, lone, 31 - d, hits, 8), 1);
    }
    hashbank_pdq_free(two);
    hashbank_pdq_free(ix);
}

/* A foreign list: its entries under "list:NAME", imported now, a row's own
 * category kept; the redistribution policy as recorded at import. */
static int count_list(const struct hashbank_entry *e, void *ctx)
{
    size_t *n = ctx;
    if (strcmp(e->contributor, "list:ncmec") == 0) {
        assert_true(e->imported_ms > 0);
        assert_int_equal(e->first_seen_ms, e->imported_ms);
        (*n)++;
    }
    return CASENET_OK;
}

static void test_import_list(void **state)
{
    (void)state;
    char path[4096];
    hashbank *b = fresh(path, sizeof path);
    struct hashbank_row rows[2];
    char err[256];
    CN_OK(hashbank_signal_arg("sha256:" V1, &rows[0], err, sizeof err));
    CN_OK(hashbank_signal_arg("md5:00112233445566778899aabbccddeeff", &rows[1], err, sizeof err));
    rows[1].category = CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_NOT_ILLEGAL;
    struct hashbank_result r;
    CN_ERR(hashbank_import_list(b, "ncmec", NULL, rows, 2, 0, &r),
           CASENET_EINVAL); /* no category */
    CN_ERR(hashbank_import_list(b, "a:b", NULL, rows, 2, 1, &r), CASENET_EINVAL);
    assert_int_equal(live(b), 0);
    CN_OK(hashbank_import_list(b, "ncmec", NULL, rows, 2,
                               CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_BASELINE, &r));
    assert_int_equal(r.added, 2);
    assert_int_equal(live(b), 1);
    size_t n = 0;
    CN_OK(hashbank_each(b, CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_NOT_ILLEGAL, count_list, &n));
    assert_int_equal(n, 1);
    n = 0;
    CN_OK(hashbank_each(b, 0, count_list, &n));
    assert_int_equal(n, 2);
    bool ok = true;
    CN_OK(hashbank_source_allows(b, "ncmec", "@platforms", &ok));
    assert_false(ok);
    CN_ERR(hashbank_source_allows(b, "other", "@platforms", &ok), CASENET_ENOTFOUND);
    CN_OK(hashbank_import_list(b, "ncmec", "vn.police.a05,@platforms", rows, 2, 1, &r));
    CN_OK(hashbank_source_allows(b, "ncmec", "@platforms", &ok));
    assert_true(ok);
    CN_OK(hashbank_source_allows(b, "ncmec", "@platform", &ok));
    assert_false(ok);
    CN_OK(hashbank_source_allows(b, "ncmec", "vn.police.a05", &ok));
    assert_true(ok);
    check_counts(path);
    hashbank_free(b);
}

/* ------------------------------------------------------------ the bank's log */

struct seen {
    size_t n;
    char first[128];
    uint64_t live, retracted, baseline;
};

static int see_source(const struct hashbank_source *src, void *ctx)
{
    struct seen *s = ctx;
    if (s->n++ == 0)
        snprintf(s->first, sizeof s->first, "%s", src->source);
    s->live += src->live_total;
    s->retracted += src->retracted;
    s->baseline += src->live[CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_BASELINE];
    assert_true(src->updated_ms > 0);
    return CASENET_OK;
}

static int see_match(const struct hashbank_match *m, void *ctx)
{
    struct seen *s = ctx;
    if (s->n++ == 0)
        snprintf(s->first, sizeof s->first, "%s %s %s", m->contributor, m->signal_type, m->label);
    assert_int_equal(m->category, CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_BASELINE);
    return CASENET_OK;
}

static int see_feedback(const struct hashbank_feedback *f, void *ctx)
{
    struct seen *s = ctx;
    if (s->n++ == 0)
        snprintf(s->first, sizeof s->first, "%s|%s", f->recipient ? f->recipient : "-", f->note);
    return CASENET_OK;
}

static void test_sources_matches(void **state)
{
    (void)state;
    char path[512];
    hashbank *b = fresh(path, sizeof path);
    casenet_buf add = share(add_json), del = share(retract_json);
    struct hashbank_result r;
    apply(b, 1, 100, &add, &r);
    struct seen s = {0};
    CN_OK(hashbank_each_source(b, see_source, &s));
    assert_int_equal(s.n, 1);
    assert_string_equal(s.first, "vn.hotline111");
    assert_int_equal(s.live, 1);
    assert_int_equal(s.baseline, 1);
    /* a match records the entry hit, its source and category, the label asked */
    size_t n = 0;
    CN_OK(hashbank_record_match(b, "sha256", V1, 0, "upload-17.jpg", &n));
    assert_int_equal(n, 1);
    CN_OK(hashbank_record_match(b, "md5", "00112233445566778899aabbccddeeff", 0, NULL, &n));
    assert_int_equal(n, 0); /* not in the bank: nothing recorded */
    /* another process holding the write lock (an import): not recorded, at once */
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    CN_ERR(hashbank_record_match(b, "sha256", V1, 0, NULL, &n), CASENET_ETIMEDOUT);
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    uint64_t total = 0;
    memset(&s, 0, sizeof s);
    CN_OK(hashbank_each_match(b, 0, 10, see_match, &s, &total));
    assert_int_equal(total, 1);
    assert_string_equal(s.first, "vn.hotline111 sha256 upload-17.jpg");
    /* a retraction moves the entry from live to retracted */
    apply(b, 2, 200, &del, &r);
    memset(&s, 0, sizeof s);
    CN_OK(hashbank_each_source(b, see_source, &s));
    assert_int_equal(s.live, 0);
    assert_int_equal(s.retracted, 1);
    check_counts(path);
    /* feedback sent is kept apart from feedback received */
    uint8_t id[CASENET_MESSAGE_ID_BYTES];
    memset(id, 9, sizeof id);
    CN_OK(hashbank_record_sent_feedback(
        b, id, "vn.police.a05", 300,
        CASENET__V1__HASH_FEEDBACK_KIND__HASH_FEEDBACK_KIND_FALSE_POSITIVE, "sha256", V1, 0,
        "<b>logo</b>"));
    memset(&s, 0, sizeof s);
    CN_OK(hashbank_feedback_page(b, true, 0, 10, see_feedback, &s, &total));
    assert_int_equal(total, 1);
    assert_string_equal(s.first, "vn.police.a05|<b>logo</b>");
    CN_OK(hashbank_feedback_page(b, false, 0, 10, see_feedback, &s, &total));
    assert_int_equal(total, 0);
    /* only the newest HASHBANK_MATCHES_KEPT matches are kept (pruned once
     * in 256 inserts), newest first */
    apply(b, 3, 400, &add, &r);
    for (int i = 0; i < HASHBANK_MATCHES_KEPT + 300; i++)
        CN_OK(hashbank_record_match(b, "sha256", V1, 0,
                                    i == HASHBANK_MATCHES_KEPT + 299 ? "last" : NULL, &n));
    memset(&s, 0, sizeof s);
    CN_OK(hashbank_each_match(b, 0, 1, see_match, &s, &total));
    assert_true(total >= HASHBANK_MATCHES_KEPT && total < HASHBANK_MATCHES_KEPT + 256);
    assert_string_equal(s.first, "vn.hotline111 sha256 last");
    memset(&s, 0, sizeof s);
    CN_OK(hashbank_each_match(b, (size_t)total - 2, 10, see_match, &s, &total));
    assert_int_equal(s.n, 2);
    hashbank_free(b);
    casenet_buf_free(&add);
    casenet_buf_free(&del);
}

/* A bank file as casenet made it before schema versions (user_version 0,
 * without entries.imported_ms): opened, it is migrated in place, its counts
 * computed from its entries; a bank from a newer casenet is refused. */
static void test_migrate(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/old.sqlite", dir);
    unlink(path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "CREATE TABLE applied(message_id BLOB PRIMARY KEY, sender TEXT NOT NULL,"
            " created_ms INTEGER NOT NULL, applied_ms INTEGER NOT NULL);"
            "CREATE TABLE entries(signal_type TEXT NOT NULL, value TEXT NOT NULL,"
            " contributor TEXT NOT NULL, category INTEGER NOT NULL, pdq_quality INTEGER NOT NULL,"
            " first_seen_ms INTEGER NOT NULL, reference TEXT NOT NULL, updated_ms INTEGER NOT NULL,"
            " retracted INTEGER NOT NULL, message_id BLOB NOT NULL,"
            " PRIMARY KEY(signal_type, value, contributor)) WITHOUT ROWID;"
            "CREATE TABLE feedback(message_id BLOB NOT NULL, item INTEGER NOT NULL,"
            " sender TEXT NOT NULL, created_ms INTEGER NOT NULL, kind INTEGER NOT NULL,"
            " signal_type TEXT NOT NULL, value TEXT NOT NULL, match_count INTEGER NOT NULL,"
            " note TEXT NOT NULL, PRIMARY KEY(message_id, item));"
            "INSERT INTO applied VALUES (x'01', 'vn.hotline111', 100, 100);"
            "INSERT INTO entries VALUES ('sha256', 'aa', 'vn.hotline111', 1, 0, 1, '', 100, 0,"
            " x'01'), ('sha256', 'bb', 'vn.hotline111', 1, 0, 1, '', 100, 0, x'01'),"
            " ('md5', 'cc', 'vn.hotline111', 2, 0, 1, '', 100, 1, x'01'),"
            " ('pdq', 'dd', 'vn.police.a05', 3, 90, 1, 'ref', 150, 0, x'02');",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    hashbank *b = NULL;
    CN_OK(hashbank_open(path, &b));
    struct hashbank_stats st;
    CN_OK(hashbank_stats(b, &st));
    assert_int_equal(st.live, 3);
    assert_int_equal(st.retracted, 1);
    assert_int_equal(st.by_category[1], 2);
    assert_int_equal(st.contributors, 2);
    struct seen s = {0};
    CN_OK(hashbank_each_source(b, see_source, &s));
    assert_int_equal(s.n, 2);
    assert_string_equal(s.first, "vn.hotline111");
    size_t n = 0;
    CN_OK(hashbank_record_match(b, "pdq", "dd", 3, NULL, &n));
    assert_int_equal(n, 1);
    hashbank_free(b);
    check_counts(path);
    CN_OK(hashbank_open(path, &b)); /* once migrated, opens as it is */
    hashbank_free(b);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), HASHBANK_SCHEMA_VERSION);
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CN_ERR(hashbank_open(path, &b), CASENET_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_feedback),
        cmocka_unit_test(test_text_forms),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_pdq),
        cmocka_unit_test(test_import_list),
        cmocka_unit_test(test_sources_matches),
        cmocka_unit_test(test_migrate),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
