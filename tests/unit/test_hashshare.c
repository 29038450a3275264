/* test_hashshare.c - the HASH_SHARE payload's rules (PROTOCOL.md §6.2):
 * required fields, values per signal type, bounds, and who may contribute. */
#include "testlib.h"
#include "tl_net.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const members[] = {
    "vn.hotline111:intake:helpline",
    "vn.police.a05:responder:police",
    "vn.platform.x:platform:platforms",
    "vn.coord:coordinator",
    "vn.broker:broker",
};

static int setup(void **state)
{
    *state = tl_net_new(members, sizeof members / sizeof members[0]);
    return 0;
}

static int teardown(void **state)
{
    tl_net_free(*state);
    return 0;
}

static casenet_buf json_payload(const char *json)
{
    casenet_buf b = {0};
    char err[256] = "";
    if (casenet_payload_from_json(json, strlen(json), CASENET_KIND_HASH_SHARE, &b, err,
                                  sizeof err) != CASENET_OK)
        fail_msg("payload JSON %s: %s", json, err);
    return b;
}

#define SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ENTRY(type, value, extra)                                                                  \
    "{\"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_" type "\", \"value\": \"" value "\"}, "     \
    "\"category\": \"HASH_CATEGORY_BASELINE\", \"firstSeenMs\": \"1\"" extra "}"

static const struct {
    const char *json;
    int code;
    const char *want; /* contained in the message; NULL: none */
} cases[] = {
    {"{\"hashShare\": {}}", CASENET_EBADREQ,
     "the hashShare lacks entries (or retractions, or feedback)"},
    {"{\"hashShare\": {\"entries\": [{}]}}", CASENET_EBADREQ,
     "the hashShare lacks entries[0].signal.signalType, entries[0].signal.value, "
     "entries[0].category, entries[0].firstSeenMs"},
    {"{\"hashShare\": {\"entries\": [" ENTRY("SHA256", SHA256, "") "]}}", CASENET_OK, NULL},
    {"{\"hashShare\": {\"entries\": [" ENTRY("MD5", "d41d8cd98f00b204e9800998ecf8427e", "") "]}}",
     CASENET_OK, NULL},
    {"{\"hashShare\": {\"entries\": [" ENTRY("SHA1", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                                             ", \"reference\": \"HN-1\"") "]}}",
     CASENET_OK, NULL},
    {"{\"hashShare\": {\"entries\": [" ENTRY("PDQ", SHA256, ", \"pdqQuality\": 100") "]}}",
     CASENET_OK, NULL},
    {"{\"hashShare\": {\"entries\": [" ENTRY("SHA256", SHA256, "") ", " ENTRY(
         "SHA256", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "") "]}}",
     CASENET_EBADREQ, "hashShare entries[1] is refused: a sha256 value is 64 lowercase hex digits"},
    {"{\"hashShare\": {\"entries\": [" ENTRY("MD5", "d41d8cd98f00b204e9800998ecf8427", "") "]}}",
     CASENET_EBADREQ, "entries[0] is refused: an md5 value is 32 lowercase hex digits"},
    {"{\"hashShare\": {\"entries\": [" ENTRY("SHA1", SHA256, "") "]}}", CASENET_EBADREQ,
     "a sha1 value is 40 lowercase hex digits"},
    {"{\"hashShare\": {\"entries\": [" ENTRY("PDQ", "00", "") "]}}", CASENET_EBADREQ,
     "a pdq value is 64 lowercase hex digits"},
    {"{\"hashShare\": {\"entries\": [" ENTRY("PDQ", SHA256, ", \"pdqQuality\": 101") "]}}",
     CASENET_EBADREQ, "pdqQuality is 1 to 100"},
    {"{\"hashShare\": {\"entries\": [" ENTRY("SHA256", SHA256, ", \"pdqQuality\": 50") "]}}",
     CASENET_EBADREQ, "only a pdq entry states a pdqQuality"},
    {"{\"hashShare\": {\"entries\": [" ENTRY("VENDOR", "abc", "") "]}}", CASENET_EBADREQ,
     "the hashShare lacks entries[0].signal.vendorType"},
    {"{\"hashShare\": {\"entries\": [{\"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_VENDOR\", "
     "\"vendorType\": \"photodna\", \"value\": \"a,b\"}, \"category\": \"HASH_CATEGORY_BASELINE\", "
     "\"firstSeenMs\": \"1\"}]}}",
     CASENET_EBADREQ, "a vendor value is 1 to 256 printable ASCII characters"},
    {"{\"hashShare\": {\"entries\": [{\"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_VENDOR\", "
     "\"vendorType\": \"Photo DNA\", \"value\": \"ab\"}, \"category\": \"HASH_CATEGORY_BASELINE\", "
     "\"firstSeenMs\": \"1\"}]}}",
     CASENET_EBADREQ, "a vendor type is 1 to 64 of a-z"},
    {"{\"hashShare\": {\"entries\": [{\"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_VENDOR\", "
     "\"vendorType\": \"photodna\", \"value\": \"ab/c=\"}, \"category\": "
     "\"HASH_CATEGORY_NOT_ILLEGAL\", \"firstSeenMs\": \"1\"}]}}",
     CASENET_OK, NULL},
    {"{\"hashShare\": {\"entries\": [{\"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_MD5\", "
     "\"vendorType\": \"x\", \"value\": \"d41d8cd98f00b204e9800998ecf8427e\"}, \"category\": "
     "\"HASH_CATEGORY_BASELINE\", \"firstSeenMs\": \"1\"}]}}",
     CASENET_EBADREQ, "only a vendor signal names a vendorType"},
    {"{\"hashShare\": {\"retractions\": [{\"signal\": {\"signalType\": "
     "\"HASH_SIGNAL_TYPE_SHA256\", \"value\": \"" SHA256 "\"}}]}}",
     CASENET_OK, NULL},
    {"{\"hashShare\": {\"retractions\": [{}]}}", CASENET_EBADREQ,
     "the hashShare lacks retractions[0].signal.signalType, retractions[0].signal.value"},
    {"{\"hashShare\": {\"feedback\": [{\"kind\": \"HASH_FEEDBACK_KIND_MATCH\", \"signal\": "
     "{\"signalType\": \"HASH_SIGNAL_TYPE_SHA256\", \"value\": \"" SHA256 "\"}}]}}",
     CASENET_EBADREQ, "the hashShare lacks feedback[0].matchCount"},
    {"{\"hashShare\": {\"feedback\": [{\"kind\": \"HASH_FEEDBACK_KIND_FALSE_POSITIVE\", "
     "\"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_SHA256\", \"value\": \"" SHA256 "\"}}]}}",
     CASENET_EBADREQ, "the hashShare lacks feedback[0].note"},
    {"{\"hashShare\": {\"feedback\": [{\"kind\": \"HASH_FEEDBACK_KIND_MATCH\", \"matchCount\": 3, "
     "\"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_SHA256\", \"value\": \"" SHA256 "\"}}]}}",
     CASENET_OK, NULL},
    {"{\"hashShare\": {\"entries\": [" ENTRY("SHA256", SHA256,
                                             "") "], \"feedback\": [{\"kind\": "
                                                 "\"HASH_FEEDBACK_KIND_MATCH\", \"matchCount\": 3, "
                                                 "\"signal\": {\"signalType\": "
                                                 "\"HASH_SIGNAL_TYPE_SHA256\", \"value\": "
                                                 "\"" SHA256 "\"}}]}}",
     CASENET_EBADREQ, "mixes feedback with entries or retractions"},
};

/* Required fields and values per type, the first bad item named. */
static void test_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        casenet_buf b = json_payload(cases[i].json);
        char err[512] = "x";
        int rc = casenet_payload_check(b.data, b.len, CASENET_KIND_HASH_SHARE, 0, err, sizeof err);
        const char *want = cases[i].want;
        if (rc != cases[i].code || (want && !strstr(err, want)) || (!want && err[0]))
            fail_msg("case %zu: got %s \"%s\", want %s \"%s\"", i, casenet_errname(rc), err,
                     casenet_errname(cases[i].code), want ? want : "");
        casenet_buf_free(&b);
    }
}

/* More than 20000 items in one message is refused. */
static void test_bound(void **state)
{
    (void)state;
    size_t n = 20001, one = strlen(ENTRY("SHA256", SHA256, "")) + 2;
    char *json = malloc(n * one + 64);
    assert_non_null(json);
    size_t at = (size_t)sprintf(json, "{\"hashShare\": {\"entries\": [");
    for (size_t i = 0; i < n; i++)
        at += (size_t)sprintf(json + at, "%s%s", i ? ", " : "", ENTRY("SHA256", SHA256, ""));
    sprintf(json + at, "]}}");
    casenet_buf b = json_payload(json);
    char err[256];
    CN_ERR(casenet_payload_check(b.data, b.len, CASENET_KIND_HASH_SHARE, 0, err, sizeof err),
           CASENET_EBADREQ);
    assert_non_null(strstr(err, "holds 20001 items; at most 20000"));
    casenet_buf_free(&b);
    free(json);
}

/* The hotline and the police contribute; a platform sends feedback only. */
static void test_who_contributes(void **state)
{
    tl_net *net = *state;
    casenet_buf add =
        json_payload("{\"hashShare\": {\"entries\": [" ENTRY("SHA256", SHA256, "") "]}}");
    casenet_buf fb = json_payload(
        "{\"hashShare\": {\"feedback\": [{\"kind\": \"HASH_FEEDBACK_KIND_FALSE_POSITIVE\", "
        "\"note\": \"a logo\", \"signal\": {\"signalType\": \"HASH_SIGNAL_TYPE_SHA256\", "
        "\"value\": \"" SHA256 "\"}}]}}");
    const char *to_plat[] = {"vn.platform.x"}, *to_hot[] = {"vn.hotline111"},
               *to_coord[] = {"vn.coord"};
    casenet_seal_opts o = {.kind = CASENET_KIND_HASH_SHARE, .to = to_plat, .n_to = 1};
    casenet_buf env = {0};
    CN_OK(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, add.data, add.len, &env,
                       NULL));
    casenet_buf_free(&env);
    CN_OK(casenet_seal(tl_net_keys(net, "vn.police.a05"), net->dir, &o, add.data, add.len, &env,
                       NULL));
    casenet_buf_free(&env);
    o.to = to_hot;
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.platform.x"), net->dir, &o, add.data, add.len, &env,
                        NULL),
           CASENET_EFORBIDDEN);
    CN_OK(
        casenet_seal(tl_net_keys(net, "vn.platform.x"), net->dir, &o, fb.data, fb.len, &env, NULL));
    casenet_buf_free(&env);
    o.to = to_coord;
    CN_ERR(casenet_seal(tl_net_keys(net, "vn.hotline111"), net->dir, &o, add.data, add.len, &env,
                        NULL),
           CASENET_EFORBIDDEN);
    char err[256];
    CN_ERR(casenet_hash_share_check(net->dir, "vn.platform.x", add.data, add.len, err, sizeof err),
           CASENET_EFORBIDDEN);
    assert_string_equal(err, "vn.platform.x (platform) may not contribute hashes: only intake, "
                             "responder or gateway may; it may send feedback");
    CN_OK(casenet_hash_share_check(net->dir, "vn.platform.x", fb.data, fb.len, err, sizeof err));
    CN_OK(casenet_hash_share_check(net->dir, "vn.police.a05", add.data, add.len, err, sizeof err));
    CN_ERR(casenet_hash_share_check(net->dir, "vn.nobody", add.data, add.len, err, sizeof err),
           CASENET_EUNAUTH);
    casenet_buf_free(&add);
    casenet_buf_free(&fb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_bound),
        cmocka_unit_test_setup_teardown(test_who_contributes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
