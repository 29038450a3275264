/* test_text.c - strings from outside (common/text.h): strict UTF-8,
 * control characters, every string field of a protobuf message (nested and
 * repeated, in a oneof), and escaping for a terminal. */
#include "testlib.h"

#include "casenet.pb-c.h"
#include "text.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

static bool utf8(const char *s)
{
    return cn_utf8_valid(s, strlen(s));
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(utf8(""));
    assert_true(utf8("vn.police.a05"));
    assert_true(utf8("C\xc3\xb4ng an H\xc3\xa0 N\xe1\xbb\x99i")); /* Công an Hà Nội */
    assert_true(utf8("\xf0\x9f\x98\x80"));                        /* U+1F600 */
    assert_true(utf8("\xf4\x8f\xbf\xbf"));                        /* U+10FFFF */
    assert_true(utf8("\x1b[2J"));                                 /* valid, if unwelcome */
    assert_false(utf8("\xff\xfe"));
    assert_false(utf8("\xc3\x28"));         /* bad continuation */
    assert_false(utf8("\xc0\x80"));         /* overlong NUL */
    assert_false(utf8("\xe0\x80\xaf"));     /* overlong '/' */
    assert_false(utf8("\xed\xa0\x80"));     /* surrogate */
    assert_false(utf8("\xf4\x90\x80\x80")); /* above U+10FFFF */
    assert_false(utf8("\xe1\xbb"));         /* cut short */
    assert_false(cn_utf8_valid("\xe1\xbb\x99", 2));
}

static void test_text(void **state)
{
    (void)state;
    assert_true(cn_text_valid("Child helpline 111"));
    assert_true(cn_text_valid("C\xc3\xb4ng an"));
    assert_false(cn_text_valid("a\x1b]0;pwned\x07"));
    assert_false(cn_text_valid("line\nbreak"));
    assert_false(cn_text_valid("tab\t"));
    assert_false(cn_text_valid("del\x7f"));
    assert_false(cn_text_valid("csi\xc2\x9b"
                               "2J")); /* C1 CSI */
    assert_false(cn_text_valid("\xff"));
}

static void test_escape(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(cn_text_escape("plain", out, sizeof out), "plain");
    assert_string_equal(cn_text_escape("C\xc3\xb4ng", out, sizeof out), "C\xc3\xb4ng");
    assert_string_equal(cn_text_escape("a\x1b]0;x\x07", out, sizeof out), "a\\x1b]0;x\\x07");
    assert_string_equal(cn_text_escape("\xc2\x9b"
                                       "2J",
                                       out, sizeof out),
                        "\\xc2\\x9b2J");
    assert_string_equal(cn_text_escape("\xff\xfe", out, sizeof out), "\\xff\\xfe");
    assert_string_equal(cn_text_escape("x\x7f", out, sizeof out), "x\\x7f");
    assert_true(cn_text_valid(cn_text_escape("\x1b\x9b\xc3", out, sizeof out)));
    /* Cut at a character boundary, with a mark. */
    char small[8];
    assert_string_equal(cn_text_escape("abcdefghij", small, sizeof small), "abcd...");
    assert_string_equal(cn_text_escape("\x1b\x1b", small, sizeof small), "\\x1b...");
    assert_string_equal(cn_text_escape("abc", small, sizeof small), "abc");
}

static void test_json_controls(void **state)
{
    (void)state;
    static const char in[] = "{\"note\": \"a\x7f b\xc2\x9b"
                             "2J c\xc3\xb4 \\u001b\"}";
    casenet_buf out = {0};
    CN_OK(cn_json_escape_controls(in, sizeof in - 1, &out));
    assert_string_equal((const char *)out.data,
                        "{\"note\": \"a\\u007f b\\u009b2J c\xc3\xb4 \\u001b\"}");
    assert_int_equal(out.len, strlen((const char *)out.data));
    casenet_buf_free(&out);
    /* A payload with such text converts to JSON a terminal can show, and
     * back to the same bytes. */
    casenet_buf payload = {0}, json = {0}, again = {0};
    static const char doc[] = "{\"status\": {\"note\": \"x\\u009b2Jy\\u007f\"}}";
    char err[128];
    CN_OK(casenet_payload_from_json(doc, sizeof doc - 1, CASENET_KIND_STATUS, &payload, err,
                                    sizeof err));
    CN_OK(casenet_payload_to_json(payload.data, payload.len, &json));
    assert_non_null(strstr((const char *)json.data, "x\\u009b2Jy\\u007f"));
    CN_OK(casenet_payload_from_json((const char *)json.data, json.len, CASENET_KIND_STATUS, &again,
                                    err, sizeof err));
    assert_int_equal(again.len, payload.len);
    assert_memory_equal(again.data, payload.data, payload.len);
    casenet_buf_free(&payload);
    casenet_buf_free(&json);
    casenet_buf_free(&again);
}

static void test_protobuf_strings(void **state)
{
    (void)state;
    /* A string in a oneof member of the request. */
    Casenet__V1__AuditQuery q = CASENET__V1__AUDIT_QUERY__INIT;
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_AUDIT_QUERY;
    req.audit_query = &q;
    q.member = (char *)"vn.police.a05";
    assert_true(cn_pb_strings_valid(&req.base));
    q.member = (char *)"\xff\xfe";
    assert_false(cn_pb_strings_valid(&req.base));
    /* Another oneof member is set: that one is not read. */
    Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
    h.client = (char *)"casenet 1.0";
    req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    req.hello = &h;
    assert_true(cn_pb_strings_valid(&req.base));
    h.client = (char *)"\xc0\x80";
    assert_false(cn_pb_strings_valid(&req.base));
    /* Repeated strings. */
    Casenet__V1__Header hd = CASENET__V1__HEADER__INIT;
    char *rcpt[2] = {(char *)"vn.police.a05", (char *)"vn.molisa"};
    hd.recipients = rcpt;
    hd.n_recipients = 2;
    hd.sender = (char *)"vn.hotline111";
    assert_true(cn_pb_strings_valid(&hd.base));
    rcpt[1] = (char *)"vn.\xed\xa0\x80";
    assert_false(cn_pb_strings_valid(&hd.base));
    /* Strings of repeated messages. */
    Casenet__V1__Member m = CASENET__V1__MEMBER__INIT;
    Casenet__V1__Member *members[1] = {&m};
    Casenet__V1__DirectoryBody body = CASENET__V1__DIRECTORY_BODY__INIT;
    body.members = members;
    body.n_members = 1;
    m.id = (char *)"vn.police.a05";
    m.display_name = (char *)"C\xc3\xb4ng an";
    assert_true(cn_pb_strings_valid(&body.base));
    m.display_name = (char *)"C\xc3";
    assert_false(cn_pb_strings_valid(&body.base));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_json_controls),
        cmocka_unit_test(test_protobuf_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
