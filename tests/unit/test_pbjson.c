/* test_pbjson.c - the descriptor-driven JSON converter and the payload JSON API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "casenet.h"
#include "casenet.pb-c.h"
#include "pbjson.h"
#include "testlib.h"

/* ------------------------------------------------------------------ helpers */

static casenet_buf from_json_ok(const char *json, casenet_kind kind)
{
    casenet_buf out = {0};
    char err[256] = "unset";
    int rc = casenet_payload_from_json(json, strlen(json), kind, &out, err, sizeof(err));
    if (rc != CASENET_OK)
        fail_msg("from_json failed (%d): %s\n%s", rc, err, json);
    assert_string_equal(err, "");
    assert_non_null(out.data);
    assert_true(out.len > 0);
    return out;
}

static char *to_json_ok(const casenet_buf *payload)
{
    casenet_buf out = {0};
    CN_OK(casenet_payload_to_json(payload->data, payload->len, &out));
    assert_non_null(out.data);
    assert_int_equal(strlen((char *)out.data), out.len);
    return (char *)out.data;
}

/* Asserts that json is refused with code and an error message holding needle
 * (the field path). */
static void expect_error(const char *json, casenet_kind kind, int code, const char *needle)
{
    casenet_buf out = {0};
    char err[256] = "";
    int rc = casenet_payload_from_json(json, strlen(json), kind, &out, err, sizeof(err));
    if (rc != code)
        fail_msg("expected code %d, got %d (%s) for %s", code, rc, err, json);
    assert_null(out.data);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

static Casenet__V1__Payload *unpack(const casenet_buf *b)
{
    Casenet__V1__Payload *p = casenet__v1__payload__unpack(NULL, b->len, b->data);
    assert_non_null(p);
    return p;
}

/* JSON -> bytes -> JSON -> bytes: the bytes must be equal; returns the JSON. */
static json_t *round_trip(const char *json, casenet_kind kind, casenet_buf *bytes)
{
    casenet_buf b1 = from_json_ok(json, kind);
    char *text = to_json_ok(&b1);
    casenet_buf b2 = from_json_ok(text, kind);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.data, b2.data, b1.len);
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(j);
    free(text);
    casenet_buf_free(&b2);
    *bytes = b1;
    return j;
}

static const char *jstr(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("\"%s\" is not a string", key);
    return json_string_value(v);
}

/* ------------------------------------------------------------------ round trips */

static const char *const rich_referral =
    "{\"referral\": {"
    "  \"caseId\": \"VN-2025-000123\","
    "  \"parent_case_id\": \"VN-2025-000100\","
    "  \"intakeChannel\": \"INTAKE_CHANNEL_PHONE\","
    "  \"intakeReceivedAtMs\": \"1735689600123\","
    "  \"harmCategories\": [\"HARM_CATEGORY_GROOMING\", 4],"
    "  \"urgency\": \"URGENCY_EMERGENCY\","
    "  \"children\": ["
    "    {\"ageYears\": 13, \"birthDate\": \"2012-04-01\", \"sex\": \"SEX_FEMALE\","
    "     \"name\": \"Nguy\xe1\xbb\x85n Th\xe1\xbb\x8b A\"},"
    "    {\"ageYears\": \"9\", \"sex\": 2, \"birthDate\": \"\", \"name\": null}"
    "  ],"
    "  \"numberOfChildren\": 2,"
    "  \"place\": {\"provinceCode\": \"01\", \"commune_code\": \"00004\"},"
    "  \"currentCondition\": \"safe with a relative\","
    "  \"actionsTaken\": [\"called police\", \"\", \"informed school\"],"
    "  \"reporter\": {\"consentedToContact\": true, \"name\": \"Tr\xe1\xba\xa7n B\","
    "                \"phone\": \"+84900000000\", \"email\": \"b@example.org\"},"
    "  \"artefacts\": [{\"platform\": \"example-social\", \"url\": \"https://example.org/p/1\","
    "                  \"accountId\": \"u123\", \"contentHash\": \"sha256:00ff\","
    "                  \"firstSeenMs\": 1735600000000}],"
    "  \"requestedAction\": \"assess and protect\","
    "  \"actionDeadlineMs\": 1735776000000,"
    "  \"legalBasis\": {\"kind\": \"LEGAL_BASIS_KIND_VITAL_INTEREST\", \"reference\": \"art. 50\"},"
    "  \"crossBorder\": true,"
    "  \"language\": \"vi\","
    "  \"summary\": \"line one\\nline \\\"two\\\" \\u00e9\""
    "}}";

static void test_referral_round_trip(void **state)
{
    (void)state;
    casenet_buf bytes;
    json_t *j = round_trip(rich_referral, CASENET_KIND_REFERRAL, &bytes);

    /* The binary form holds what the JSON said. */
    Casenet__V1__Payload *p = unpack(&bytes);
    assert_int_equal(p->body_case, CASENET__V1__PAYLOAD__BODY_REFERRAL);
    const Casenet__V1__Referral *r = p->referral;
    assert_string_equal(r->case_id, "VN-2025-000123");
    assert_string_equal(r->parent_case_id, "VN-2025-000100");
    assert_int_equal(r->intake_channel, CASENET__V1__INTAKE_CHANNEL__INTAKE_CHANNEL_PHONE);
    assert_true(r->intake_received_at_ms == 1735689600123LL);
    assert_int_equal(r->n_harm_categories, 2);
    assert_int_equal(r->harm_categories[0], CASENET__V1__HARM_CATEGORY__HARM_CATEGORY_GROOMING);
    assert_int_equal(r->harm_categories[1], CASENET__V1__HARM_CATEGORY__HARM_CATEGORY_SEXTORTION);
    assert_int_equal(r->urgency, CASENET__V1__URGENCY__URGENCY_EMERGENCY);
    assert_int_equal(r->n_children, 2);
    assert_int_equal(r->children[0]->age_years, 13);
    assert_string_equal(r->children[0]->name, "Nguy\xe1\xbb\x85n Th\xe1\xbb\x8b A");
    assert_int_equal(r->children[1]->age_years, 9);
    assert_int_equal(r->children[1]->sex, CASENET__V1__SEX__SEX_MALE);
    assert_string_equal(r->children[1]->name, "");
    assert_int_equal(r->number_of_children, 2);
    assert_string_equal(r->place->commune_code, "00004");
    assert_int_equal(r->n_actions_taken, 3);
    assert_string_equal(r->actions_taken[1], "");
    assert_true(r->reporter->consented_to_contact);
    assert_true(r->artefacts[0]->first_seen_ms == 1735600000000LL);
    assert_true(r->action_deadline_ms == 1735776000000LL);
    assert_int_equal(r->legal_basis->kind,
                     CASENET__V1__LEGAL_BASIS_KIND__LEGAL_BASIS_KIND_VITAL_INTEREST);
    assert_true(r->cross_border);
    assert_string_equal(r->summary, "line one\nline \"two\" \xc3\xa9");
    casenet__v1__payload__free_unpacked(p, NULL);

    /* The JSON form: lowerCamelCase, enum names, 64-bit integers as strings,
     * defaults omitted, fields in proto order. */
    const json_t *jr = json_object_get(j, "referral");
    assert_non_null(jr);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(jstr(jr, "parentCaseId"), "VN-2025-000100");
    assert_null(json_object_get(jr, "parent_case_id"));
    assert_string_equal(jstr(jr, "intakeChannel"), "INTAKE_CHANNEL_PHONE");
    assert_string_equal(jstr(jr, "intakeReceivedAtMs"), "1735689600123");
    assert_string_equal(jstr(jr, "actionDeadlineMs"), "1735776000000");
    const json_t *hc = json_object_get(jr, "harmCategories");
    assert_int_equal(json_array_size(hc), 2);
    assert_string_equal(json_string_value(json_array_get(hc, 1)), "HARM_CATEGORY_SEXTORTION");
    assert_int_equal(json_integer_value(json_object_get(jr, "numberOfChildren")), 2);
    const json_t *c1 = json_array_get(json_object_get(jr, "children"), 1);
    assert_string_equal(jstr(c1, "sex"), "SEX_MALE");
    assert_int_equal(json_integer_value(json_object_get(c1, "ageYears")), 9);
    assert_null(json_object_get(c1, "birthDate"));
    assert_null(json_object_get(c1, "name"));
    assert_int_equal(json_object_size(c1), 2);
    assert_string_equal(jstr(json_object_get(jr, "place"), "communeCode"), "00004");
    assert_true(
        json_is_true(json_object_get(json_object_get(jr, "reporter"), "consentedToContact")));
    assert_string_equal(jstr(json_array_get(json_object_get(jr, "artefacts"), 0), "firstSeenMs"),
                        "1735600000000");
    assert_true(json_is_true(json_object_get(jr, "crossBorder")));

    static const char *const order[] = {
        "caseId",         "parentCaseId",     "intakeChannel",    "intakeReceivedAtMs",
        "harmCategories", "urgency",          "children",         "numberOfChildren",
        "place",          "currentCondition", "actionsTaken",     "reporter",
        "artefacts",      "requestedAction",  "actionDeadlineMs", "legalBasis",
        "crossBorder",    "language",         "summary",
    };
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)jr, key, val)
    {
        (void)val;
        assert_true(i < sizeof(order) / sizeof(order[0]));
        assert_string_equal(key, order[i]);
        i++;
    }
    assert_int_equal(i, sizeof(order) / sizeof(order[0]));

    json_decref(j);
    casenet_buf_free(&bytes);
}

static void test_takedown_round_trip(void **state)
{
    (void)state;
    const char *json =
        "{\"takedownRequest\": {\"caseId\": \"VN-1\", \"items\": ["
        "  {\"itemId\": \"i1\", \"locator\": {\"platform\": \"p\", \"url\": \"https://x/1\","
        "   \"contentHash\": \"sha256:ab\"}, \"category\": "
        "   \"HARM_CATEGORY_SEXUAL_EXPLOITATION_MATERIAL\"},"
        "  {\"itemId\": \"i2\", \"locator\": {}, \"category\": 0}],"
        " \"legalBasis\": {\"kind\": \"LEGAL_BASIS_KIND_CRIME_PREVENTION\"},"
        " \"deadlineMs\": \"-1700000000000\"}}";
    casenet_buf bytes;
    json_t *j = round_trip(json, CASENET_KIND_TAKEDOWN_REQUEST, &bytes);
    Casenet__V1__Payload *p = unpack(&bytes);
    const Casenet__V1__TakedownRequest *t = p->takedown_request;
    assert_int_equal(p->body_case, CASENET__V1__PAYLOAD__BODY_TAKEDOWN_REQUEST);
    assert_int_equal(t->n_items, 2);
    assert_string_equal(t->items[0]->locator->content_hash, "sha256:ab");
    assert_non_null(t->items[1]->locator); /* present, empty */
    assert_true(t->deadline_ms == -1700000000000LL);
    casenet__v1__payload__free_unpacked(p, NULL);

    const json_t *jt = json_object_get(j, "takedownRequest");
    const json_t *items = json_object_get(jt, "items");
    assert_string_equal(jstr(json_array_get(items, 0), "category"),
                        "HARM_CATEGORY_SEXUAL_EXPLOITATION_MATERIAL");
    /* An empty sub-message stays present; a default enum is omitted. */
    const json_t *item1 = json_array_get(items, 1);
    assert_true(json_is_object(json_object_get(item1, "locator")));
    assert_int_equal(json_object_size(json_object_get(item1, "locator")), 0);
    assert_null(json_object_get(item1, "category"));
    assert_string_equal(jstr(jt, "deadlineMs"), "-1700000000000");
    json_decref(j);
    casenet_buf_free(&bytes);
}

static void test_bytes_and_notice(void **state)
{
    (void)state;
    /* 00 01 .. 0d fb ff: standard "+/" and URL-safe "-_" alphabets, padded or
     * not, give the same bytes; output is standard and padded. */
    static const uint8_t id[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0xfb, 0xff};
    const char *std = "{\"notice\": {\"reason\": \"NOTICE_REASON_EXPIRED\", \"messageId\": "
                      "\"AAECAwQFBgcICQoLDA37/w==\", \"dueAtMs\": \"-5\", \"messageStatus\": 3}}";
    const char *url = "{\"notice\": {\"reason\": \"NOTICE_REASON_EXPIRED\", \"message_id\": "
                      "\"AAECAwQFBgcICQoLDA37_w\", \"dueAtMs\": -5, \"messageStatus\": "
                      "\"MESSAGE_STATUS_TEST\"}}";
    casenet_buf bytes;
    json_t *j = round_trip(std, CASENET_KIND_ESCALATION, &bytes);
    casenet_buf b2 = from_json_ok(url, CASENET_KIND_DEAD_LETTER);
    assert_int_equal(bytes.len, b2.len);
    assert_memory_equal(bytes.data, b2.data, b2.len);

    Casenet__V1__Payload *p = unpack(&bytes);
    assert_int_equal(p->notice->message_id.len, sizeof(id));
    assert_memory_equal(p->notice->message_id.data, id, sizeof(id));
    assert_true(p->notice->due_at_ms == -5);
    casenet__v1__payload__free_unpacked(p, NULL);

    const json_t *jn = json_object_get(j, "notice");
    assert_string_equal(jstr(jn, "messageId"), "AAECAwQFBgcICQoLDA37/w==");
    assert_string_equal(jstr(jn, "messageStatus"), "MESSAGE_STATUS_TEST");
    assert_string_equal(jstr(jn, "dueAtMs"), "-5");
    json_decref(j);
    casenet_buf_free(&b2);
    casenet_buf_free(&bytes);
}

/* The display form (pbjson_humanise): bytes in hex and *_ms times as UTC
 * dates, in nested and repeated messages too; everything else as canonical. */
static void test_display_form(void **state)
{
    (void)state;
    casenet_buf notice = from_json_ok(
        "{\"notice\": {\"reason\": \"NOTICE_REASON_EXPIRED\", \"messageId\": "
        "\"AAECAwQFBgcICQoLDA37/w==\", \"dueAtMs\": \"1735700000000\", \"raisedAtMs\": "
        "\"1735700000123\"}}",
        CASENET_KIND_DEAD_LETTER);
    casenet_buf text = {0};
    CN_OK(casenet_payload_to_display_json(notice.data, notice.len, &text));
    json_t *j = json_loads((const char *)text.data, 0, NULL);
    assert_non_null(j);
    const json_t *jn = json_object_get(j, "notice");
    assert_string_equal(jstr(jn, "messageId"), "000102030405060708090a0b0c0dfbff");
    assert_string_equal(jstr(jn, "dueAtMs"), "2025-01-01T02:53:20Z");
    assert_string_equal(jstr(jn, "raisedAtMs"), "2025-01-01T02:53:20.123Z");
    assert_string_equal(jstr(jn, "reason"), "NOTICE_REASON_EXPIRED");
    json_decref(j);
    casenet_buf_free(&text);
    casenet_buf_free(&notice);

    casenet_buf ref = from_json_ok("{\"referral\": {\"caseId\": \"c-1\", \"artefacts\": "
                                   "[{\"url\": \"u\"}, {\"firstSeenMs\": \"86400000\"}]}}",
                                   CASENET_KIND_REFERRAL);
    CN_OK(casenet_payload_to_display_json(ref.data, ref.len, &text));
    j = json_loads((const char *)text.data, 0, NULL);
    assert_non_null(j);
    const json_t *arts = json_object_get(json_object_get(j, "referral"), "artefacts");
    assert_string_equal(jstr(json_array_get(arts, 0), "url"), "u");
    assert_string_equal(jstr(json_array_get(arts, 1), "firstSeenMs"), "1970-01-02T00:00:00Z");
    json_decref(j);
    casenet_buf_free(&text);
    casenet_buf_free(&ref);
}

/* The exact text form: two-space indent, proto order, no defaults. */
static void test_output_text(void **state)
{
    (void)state;
    casenet_buf b = from_json_ok("{\"withdraw\":{\"reason\":\"duplicate\",\"case_id\":\"c-1\"}}",
                                 CASENET_KIND_WITHDRAW);
    char *text = to_json_ok(&b);
    assert_string_equal(text, "{\n  \"withdraw\": {\n    \"caseId\": \"c-1\",\n"
                              "    \"reason\": \"duplicate\"\n  }\n}");
    free(text);
    casenet_buf_free(&b);
}

/* Every default (0, "", false, [], null) is omitted on output and absent
 * from the bytes. */
static void test_defaults_omitted(void **state)
{
    (void)state;
    casenet_buf full = from_json_ok(
        "{\"referral\": {\"caseId\": \"\", \"intakeReceivedAtMs\": \"0\", \"harmCategories\": [],"
        " \"urgency\": \"URGENCY_UNSPECIFIED\", \"numberOfChildren\": 0, \"crossBorder\": false,"
        " \"place\": null, \"children\": null, \"summary\": \"s\"}}",
        0);
    casenet_buf minimal = from_json_ok("{\"referral\": {\"summary\": \"s\"}}", 0);
    assert_int_equal(full.len, minimal.len);
    assert_memory_equal(full.data, minimal.data, full.len);
    char *text = to_json_ok(&full);
    assert_string_equal(text, "{\n  \"referral\": {\n    \"summary\": \"s\"\n  }\n}");
    free(text);

    /* An empty referral is still a set oneof member. */
    casenet_buf empty = from_json_ok("{\"referral\": {}}", CASENET_KIND_REFERRAL);
    text = to_json_ok(&empty);
    assert_string_equal(text, "{\n  \"referral\": {}\n}");
    free(text);
    casenet_buf_free(&empty);
    casenet_buf_free(&full);
    casenet_buf_free(&minimal);
}

/* Generic over descriptors: uint64 extremes, int64 minimum, bytes, nested
 * repeated messages of another message type. */
static void test_generic_descriptor(void **state)
{
    (void)state;
    const char *text = "{\"version\": \"18446744073709551615\", \"issuedAtMs\": "
                       "\"-9223372036854775808\", \"network\": \"vn.cop\", \"members\": [{\"id\": "
                       "\"vn.a\", \"roles\": [\"intake\"], \"status\": \"MEMBER_STATUS_ACTIVE\", "
                       "\"keys\": [{\"use\": \"KEY_USE_SIGN\", \"key\": \"AQID\", \"validFromMs\": "
                       "7}]}]}";
    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr);
    ProtobufCMessage *m = NULL;
    char err[128];
    assert_non_null(in);
    CN_OK(pbjson_from_json(&casenet__v1__directory_body__descriptor, in, &m, err, sizeof(err)));
    const Casenet__V1__DirectoryBody *d = (const Casenet__V1__DirectoryBody *)m;
    assert_true(d->version == UINT64_MAX);
    assert_true(d->issued_at_ms == INT64_MIN);
    assert_int_equal(d->members[0]->keys[0]->key.len, 3);
    assert_int_equal(d->members[0]->keys[0]->key.data[2], 3);

    json_t *outj = pbjson_to_json(m);
    assert_non_null(outj);
    assert_string_equal(jstr(outj, "version"), "18446744073709551615");
    assert_string_equal(jstr(outj, "issuedAtMs"), "-9223372036854775808");
    const json_t *k = json_array_get(
        json_object_get(json_array_get(json_object_get(outj, "members"), 0), "keys"), 0);
    assert_string_equal(jstr(k, "key"), "AQID");
    assert_string_equal(jstr(k, "validFromMs"), "7");
    assert_string_equal(jstr(k, "use"), "KEY_USE_SIGN");

    /* Re-parse the output: the same message bytes. */
    ProtobufCMessage *m2 = NULL;
    CN_OK(pbjson_from_json(&casenet__v1__directory_body__descriptor, outj, &m2, err, sizeof(err)));
    size_t n1 = protobuf_c_message_get_packed_size(m);
    size_t n2 = protobuf_c_message_get_packed_size(m2);
    assert_int_equal(n1, n2);
    uint8_t *p1 = malloc(n1), *p2 = malloc(n2);
    assert_non_null(p1);
    assert_non_null(p2);
    protobuf_c_message_pack(m, p1);
    protobuf_c_message_pack(m2, p2);
    assert_memory_equal(p1, p2, n1);
    free(p1);
    free(p2);
    json_decref(outj);
    json_decref(in);
    protobuf_c_message_free_unpacked(m, NULL); /* hand-built: freed like unpacked */
    pbjson_free(m2);
}

/* ------------------------------------------------------------------ errors */

static void test_error_unknown_field(void **state)
{
    (void)state;
    expect_error("{\"bogus\": {}}", 0, CASENET_EINVAL, "bogus: unknown field");
    expect_error("{\"referral\": {\"children\": [{}, {\"agee\": 1}]}}", 0, CASENET_EINVAL,
                 "referral.children[1].agee: unknown field");
    expect_error("{\"referral\": {\"place\": {\"provinceCode\": \"01\", \"zip\": 1}}}", 0,
                 CASENET_EINVAL, "referral.place.zip: unknown field");
}

static void test_error_wrong_type(void **state)
{
    (void)state;
    expect_error("{\"referral\": {\"children\": [{}, {\"ageYears\": \"x\"}]}}", 0, CASENET_EINVAL,
                 "referral.children[1].ageYears: expected a number, got string");
    expect_error("{\"referral\": {\"children\": [{}, {\"ageYears\": true}]}}", 0, CASENET_EINVAL,
                 "referral.children[1].ageYears: expected a number, got boolean");
    expect_error("{\"referral\": {\"crossBorder\": 1}}", 0, CASENET_EINVAL,
                 "referral.crossBorder: expected a boolean, got number");
    expect_error("{\"referral\": {\"summary\": 5}}", 0, CASENET_EINVAL,
                 "referral.summary: expected a string, got number");
    expect_error("{\"referral\": {\"children\": {}}}", 0, CASENET_EINVAL,
                 "referral.children: expected an array, got object");
    expect_error("{\"referral\": {\"place\": []}}", 0, CASENET_EINVAL,
                 "referral.place: expected an object, got array");
    expect_error("{\"referral\": {\"actionsTaken\": [\"a\", null]}}", 0, CASENET_EINVAL,
                 "referral.actionsTaken[1]: null is not allowed");
    expect_error("{\"referral\": {\"intakeReceivedAtMs\": 1.5}}", 0, CASENET_EINVAL,
                 "referral.intakeReceivedAtMs: not an exact integer");
    expect_error("[1, 2]", 0, CASENET_EINVAL, "expected an object, got array");
}

static void test_error_enum(void **state)
{
    (void)state;
    expect_error("{\"referral\": {\"urgency\": \"URGENCY_PANIC\"}}", 0, CASENET_EINVAL,
                 "referral.urgency: unknown value \"URGENCY_PANIC\"");
    expect_error("{\"referral\": {\"harmCategories\": [1, \"GROOMING\"]}}", 0, CASENET_EINVAL,
                 "referral.harmCategories[1]: unknown value");
    expect_error("{\"referral\": {\"urgency\": 99}}", 0, CASENET_EINVAL,
                 "referral.urgency: unknown value 99");
    expect_error("{\"referral\": {\"urgency\": 1.0}}", 0, CASENET_EINVAL,
                 "referral.urgency: expected an enum name or number, got number");
}

static void test_error_range(void **state)
{
    (void)state;
    expect_error("{\"referral\": {\"children\": [{\"ageYears\": 4294967296}]}}", 0, CASENET_EINVAL,
                 "referral.children[0].ageYears: number out of range for uint32");
    expect_error("{\"referral\": {\"numberOfChildren\": -1}}", 0, CASENET_EINVAL,
                 "referral.numberOfChildren: number out of range for uint32");
    expect_error("{\"referral\": {\"numberOfChildren\": \"-1\"}}", 0, CASENET_EINVAL,
                 "referral.numberOfChildren: number out of range for uint32");
    expect_error("{\"referral\": {\"intakeReceivedAtMs\": \"9223372036854775808\"}}", 0,
                 CASENET_EINVAL, "referral.intakeReceivedAtMs: number out of range for int64");
    expect_error("{\"referral\": {\"intakeReceivedAtMs\": \" 12\"}}", 0, CASENET_EINVAL,
                 "referral.intakeReceivedAtMs: expected a number, got string");
}

static void test_error_base64(void **state)
{
    (void)state;
    expect_error("{\"notice\": {\"messageId\": \"!!!!\"}}", 0, CASENET_EINVAL,
                 "notice.messageId: invalid base64");
    expect_error("{\"notice\": {\"messageId\": \"AAE=A\"}}", 0, CASENET_EINVAL,
                 "notice.messageId: invalid base64");
    /* Non-canonical trailing bits ("AB==" decodes like "AA==") are refused,
     * so every accepted text maps to one byte string. */
    expect_error("{\"notice\": {\"messageId\": \"AB==\"}}", 0, CASENET_EINVAL,
                 "notice.messageId: invalid base64");
    expect_error("{\"notice\": {\"messageId\": 12}}", 0, CASENET_EINVAL,
                 "notice.messageId: expected a base64 string, got number");
}

static void test_error_utf8(void **state)
{
    (void)state;
    /* In JSON text, jansson refuses it while parsing, with a position. */
    expect_error("{\"referral\": {\"summary\": \"a\xff\"}}", 0, CASENET_EINVAL, "line 1 column");
    expect_error("{\"referral\": {\"summary\": \"\xed\xa0\x80\"}}", 0, CASENET_EINVAL,
                 "line 1 column");
    /* A json_t built without checks reaches pbjson, which names the field. */
    static const char *const bad[] = {"a\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "\xe2\x82"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *in = json_pack("{s:{s:[s,o]}}", "referral", "actionsTaken", "ok",
                               json_stringn_nocheck(bad[i], strlen(bad[i])));
        ProtobufCMessage *m = NULL;
        char err[128] = "";
        assert_non_null(in);
        CN_ERR(pbjson_from_json(&casenet__v1__payload__descriptor, in, &m, err, sizeof(err)),
               CASENET_EINVAL);
        assert_null(m);
        assert_string_equal(err, "referral.actionsTaken[1]: string is not valid UTF-8");
        json_decref(in);
    }
    /* An embedded NUL is refused too. */
    json_t *in = json_pack("{s:{s:s%}}", "referral", "summary", "a\0b", (size_t)3);
    ProtobufCMessage *m = NULL;
    char err[128] = "";
    assert_non_null(in);
    CN_ERR(pbjson_from_json(&casenet__v1__payload__descriptor, in, &m, err, sizeof(err)),
           CASENET_EINVAL);
    assert_string_equal(err, "referral.summary: string holds a NUL character");
    json_decref(in);
}

static void test_error_oneof_and_kind(void **state)
{
    (void)state;
    expect_error("{\"referral\": {}, \"status\": {}}", 0, CASENET_EINVAL,
                 "status: only one member of a oneof may be set, referral is set too");
    expect_error("{\"referral\": {\"caseId\": \"c\"}}", CASENET_KIND_STATUS, CASENET_EINVAL,
                 "referral: does not match the message kind, which needs status");
    expect_error("{\"notice\": {}}", CASENET_KIND_REFERRAL, CASENET_EINVAL,
                 "notice: does not match the message kind, which needs referral");
    expect_error("{\"referral\": {}}", CASENET_KIND_RECEIPT, CASENET_EINVAL,
                 "kind 20 carries no payload");
    expect_error("{}", 0, CASENET_EINVAL, "empty payload");
    expect_error("{\"referral\": null}", 0, CASENET_EINVAL, "empty payload");
}

static void test_error_syntax(void **state)
{
    (void)state;
    expect_error("{\"referral\": {}} x", 0, CASENET_EINVAL, "line 1 column 18");
    expect_error("{\"referral\": {}}{}", 0, CASENET_EINVAL, "end of file expected");
    expect_error("{\"referral\": {\"caseId\": \"a\", \"caseId\": \"b\"}}", 0, CASENET_EINVAL,
                 "duplicate object key near '\"caseId\"'");
    expect_error("{\"referral\": {\"caseId\": \"a\", \"case_id\": \"b\"}}", 0, CASENET_EINVAL,
                 "referral.caseId: field given more than once");
    expect_error("", 0, CASENET_EINVAL, "line 1");

    /* Hostile nesting in the text is refused by the parser, without a crash. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    expect_error(deep, 0, CASENET_EINVAL, "line 1 column");
    free(deep);
}

static void test_error_too_large(void **state)
{
    (void)state;
    size_t n = CASENET_MAX_PAYLOAD_BYTES + 1;
    char *big = malloc(n);
    casenet_buf out = {0};
    char err[128] = "";
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"referral\":{}}", 15);
    CN_ERR(casenet_payload_from_json(big, n, 0, &out, err, sizeof(err)), CASENET_ETOOLARGE);
    assert_null(out.data);
    assert_non_null(strstr(err, "larger than"));
    /* One byte less is accepted (trailing whitespace is fine). */
    CN_OK(casenet_payload_from_json(big, n - 1, 0, &out, err, sizeof(err)));
    casenet_buf_free(&out);
    free(big);
}

static void test_to_json_malformed(void **state)
{
    (void)state;
    static const uint8_t junk[] = {0x0a, 0x05, 0x0a, 0x01}; /* truncated length */
    casenet_buf out = {0};
    CN_ERR(casenet_payload_to_json(junk, sizeof(junk), &out), CASENET_EBADREQ);
    assert_null(out.data);
    static const uint8_t bad_utf8[] = {0x0a, 0x04, 0x9a, 0x01, 0x01, 0xff}; /* summary "\xff" */
    CN_ERR(casenet_payload_to_json(bad_utf8, sizeof(bad_utf8), &out), CASENET_EBADREQ);
    assert_null(out.data);
}

/* ------------------------------------------------------------------ depth */

/* A recursive message, described by hand the way protoc-c would, to reach the
 * depth limit (the casenet schema nests only a few levels). */
typedef struct TestNode {
    ProtobufCMessage base;
    struct TestNode *child;
    uint32_t n;
} TestNode;

static const ProtobufCMessageDescriptor test_node_descriptor;

static void test_node_init(ProtobufCMessage *m)
{
    memset(m, 0, sizeof(TestNode));
    m->descriptor = &test_node_descriptor;
}

static const ProtobufCFieldDescriptor test_node_fields[2] = {
    {"child", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_MESSAGE, 0, offsetof(TestNode, child),
     &test_node_descriptor, NULL, 0, 0, NULL, NULL},
    {"n", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_UINT32, 0, offsetof(TestNode, n), NULL, NULL, 0,
     0, NULL, NULL},
};
static const unsigned test_node_by_name[] = {0, 1};
static const ProtobufCIntRange test_node_ranges[2] = {{1, 0}, {0, 2}};
static const ProtobufCMessageDescriptor test_node_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.Node",
    "Node",
    "Test__Node",
    "test",
    sizeof(TestNode),
    2,
    test_node_fields,
    test_node_by_name,
    1,
    test_node_ranges,
    test_node_init,
    NULL,
    NULL,
    NULL};

static json_t *nested_nodes(int levels)
{
    json_t *j = json_pack("{s:i}", "n", levels);
    for (int i = 1; i < levels; i++)
        j = json_pack("{s:o}", "child", j);
    assert_non_null(j);
    return j;
}

static void test_depth_limit(void **state)
{
    (void)state;
    ProtobufCMessage *m = NULL;
    char err[512] = "";

    json_t *ok = nested_nodes(PBJSON_MAX_DEPTH);
    CN_OK(pbjson_from_json(&test_node_descriptor, ok, &m, err, sizeof(err)));
    json_t *back = NULL;
    CN_OK(pbjson_encode(m, &back));
    assert_true(json_equal(ok, back));
    json_decref(back);

    /* One level more, built by hand, cannot be encoded either. */
    TestNode *top = malloc(sizeof(*top));
    assert_non_null(top);
    test_node_init(&top->base);
    top->child = (TestNode *)m;
    CN_ERR(pbjson_encode(&top->base, &back), CASENET_EBADREQ);
    assert_null(pbjson_to_json(&top->base));
    protobuf_c_message_free_unpacked(&top->base, NULL);
    json_decref(ok);

    json_t *deep = nested_nodes(PBJSON_MAX_DEPTH + 1);
    m = NULL;
    CN_ERR(pbjson_from_json(&test_node_descriptor, deep, &m, err, sizeof(err)), CASENET_EINVAL);
    assert_null(m);
    assert_non_null(strstr(err, "child.child.child"));
    assert_non_null(strstr(err, ": messages nested deeper than 32 levels"));
    json_decref(deep);

    json_t *hostile = nested_nodes(5000);
    CN_ERR(pbjson_from_json(&test_node_descriptor, hostile, &m, err, sizeof(err)), CASENET_EINVAL);
    assert_non_null(strstr(err, "nested deeper"));
    json_decref(hostile);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_referral_round_trip),  cmocka_unit_test(test_takedown_round_trip),
        cmocka_unit_test(test_bytes_and_notice),     cmocka_unit_test(test_output_text),
        cmocka_unit_test(test_defaults_omitted),     cmocka_unit_test(test_generic_descriptor),
        cmocka_unit_test(test_error_unknown_field),  cmocka_unit_test(test_error_wrong_type),
        cmocka_unit_test(test_error_enum),           cmocka_unit_test(test_error_range),
        cmocka_unit_test(test_error_base64),         cmocka_unit_test(test_error_utf8),
        cmocka_unit_test(test_error_oneof_and_kind), cmocka_unit_test(test_error_syntax),
        cmocka_unit_test(test_error_too_large),      cmocka_unit_test(test_to_json_malformed),
        cmocka_unit_test(test_depth_limit),          cmocka_unit_test(test_display_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
