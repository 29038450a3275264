/* test_log.c - the broker's event log (common/log.c) alone: the line format,
 * levels, and the escaping log.h promises: every line splits into key=value
 * pairs unambiguously whatever the values hold (spaces, quotes, '=',
 * backslashes, control characters, bytes that are not UTF-8, values longer
 * than a line), and reads back to the values logged. */
#include "testlib.h"

#include "log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096 /* LOG_LINE_MAX in log.c */

/* ------------------------------------------------------------ capture */

static int saved_stderr = -1;
static FILE *capture;

static void capture_start(void)
{
    fflush(stderr);
    capture = tmpfile();
    assert_non_null(capture);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);
}

/* Restores stderr; returns everything written meanwhile (malloc'd). */
static char *capture_end(size_t *len)
{
    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    close(saved_stderr);
    long n = ftell(capture);
    assert_true(n >= 0);
    char *out = malloc((size_t)n + 1);
    assert_non_null(out);
    rewind(capture);
    assert_int_equal(fread(out, 1, (size_t)n, capture), (size_t)n);
    out[n] = '\0';
    fclose(capture);
    if (len)
        *len = (size_t)n;
    return out;
}

/* ------------------------------------------------------------ a reader */

#define MAX_PAIRS 16

struct pair {
    char key[64];
    char *value; /* malloc'd, unescaped */
    size_t value_len;
    bool quoted;
};

struct parsed {
    struct pair p[MAX_PAIRS];
    size_t n;
};

static void parsed_free(struct parsed *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->p[i].value);
    x->n = 0;
}

static int unhex1(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A strict reader of one line as log.h describes it: space-separated
 * key=value pairs, a value bare (no space, quote, '=', backslash or control
 * byte) or in double quotes with \" \\ and \xNN (lowercase) escapes only,
 * one '\n' at the very end. Fails the test on anything else. */
static void parse_line(const char *line, size_t len, struct parsed *out)
{
    memset(out, 0, sizeof *out);
    assert_true(len > 0);
    assert_int_equal(line[len - 1], '\n');
    assert_null(memchr(line, '\n', len - 1));
    size_t i = 0;
    while (i < len - 1) {
        assert_true(out->n < MAX_PAIRS);
        struct pair *p = &out->p[out->n++];
        size_t k = 0;
        while (i < len - 1 && line[i] != '=') {
            assert_true(isalnum((unsigned char)line[i]) || line[i] == '_');
            assert_true(k < sizeof p->key - 1);
            p->key[k++] = line[i++];
        }
        assert_true(k > 0);
        assert_int_equal(line[i], '=');
        i++;
        p->value = malloc(len + 1);
        assert_non_null(p->value);
        size_t v = 0;
        if (line[i] == '"') {
            p->quoted = true;
            i++;
            for (;;) {
                assert_true(i < len - 1); /* the closing quote is there */
                unsigned char c = (unsigned char)line[i];
                if (c == '"') {
                    i++;
                    break;
                }
                assert_true(c >= 0x20 && c != 0x7f);
                if (c == '\\') {
                    char e = line[i + 1];
                    if (e == '"' || e == '\\') {
                        p->value[v++] = e;
                        i += 2;
                    } else {
                        assert_int_equal(e, 'x');
                        int hi = unhex1(line[i + 2]), lo = unhex1(line[i + 3]);
                        assert_true(hi >= 0 && lo >= 0);
                        p->value[v++] = (char)(hi * 16 + lo);
                        i += 4;
                    }
                } else {
                    p->value[v++] = (char)c;
                    i++;
                }
            }
        } else {
            while (i < len - 1 && line[i] != ' ') {
                unsigned char c = (unsigned char)line[i];
                assert_true(c > ' ' && c != '"' && c != '=' && c != '\\' && c != 0x7f);
                p->value[v++] = (char)c;
                i++;
            }
            assert_true(v > 0); /* an empty value is written "" */
        }
        p->value[v] = '\0';
        p->value_len = v;
        if (i < len - 1) {
            assert_int_equal(line[i], ' ');
            i++;
            assert_true(line[i] != ' ' && line[i] != '\n');
        }
    }
}

/* Logs one event with one value at LOG_INFO and parses the line; the value
 * must read back exactly, the first three keys must be ts, level, event. */
static void check_value(const char *value)
{
    capture_start();
    log_event(LOG_INFO, "test_event", "k", value, NULL);
    size_t len = 0;
    char *line = capture_end(&len);
    struct parsed x;
    parse_line(line, len, &x);
    assert_int_equal(x.n, 4);
    assert_string_equal(x.p[0].key, "ts");
    assert_string_equal(x.p[1].key, "level");
    assert_string_equal(x.p[1].value, "info");
    assert_string_equal(x.p[2].key, "event");
    assert_string_equal(x.p[2].value, "test_event");
    assert_string_equal(x.p[3].key, "k");
    assert_int_equal(x.p[3].value_len, strlen(value));
    assert_memory_equal(x.p[3].value, value, strlen(value));
    parsed_free(&x);
    free(line);
}

/* ------------------------------------------------------------ tests */

static void test_format(void **state)
{
    (void)state;
    capture_start();
    log_event(LOG_WARN, "escalated", "msg", "00ff", "notified", "3", NULL);
    size_t len = 0;
    char *line = capture_end(&len);
    /* ts=2026-12-07T18:00:00.123Z */
    assert_int_equal(strncmp(line, "ts=", 3), 0);
    assert_true(len > 28);
    for (size_t i = 3; i < 27; i++) {
        static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
        if (shape[i - 3] == 'd')
            assert_true(isdigit((unsigned char)line[i]));
        else
            assert_int_equal(line[i], shape[i - 3]);
    }
    assert_string_equal(line + 27, " level=warn event=escalated msg=00ff notified=3\n");
    free(line);
}

static void test_levels_and_nulls(void **state)
{
    (void)state;
    capture_start();
    log_event(LOG_DEBUG, "hidden", NULL); /* below the default, info */
    log_event(LOG_INFO, "shown", "gone", NULL, "kept", "1", NULL);
    log_set_level(LOG_ERROR);
    log_event(LOG_WARN, "hidden", NULL);
    log_event(LOG_ERROR, "bad", NULL);
    log_set_level(LOG_DEBUG);
    log_event(LOG_DEBUG, "dbg", NULL);
    log_set_level(LOG_INFO);
    size_t len = 0;
    char *out = capture_end(&len);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, " level=info event=shown kept=1\n")); /* NULL value: no key */
    assert_null(strstr(out, "gone"));
    assert_non_null(strstr(out, " level=error event=bad\n"));
    assert_non_null(strstr(out, " level=debug event=dbg\n"));
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += out[i] == '\n';
    assert_int_equal(lines, 3);
    free(out);
}

static void test_escaping(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        const char *written; /* as it appears after k= */
    } cases[] = {
        {"plain", "plain"},
        {"", "\"\""},
        {"two words", "\"two words\""},
        {"a=b", "\"a=b\""},
        {"say \"hi\"", "\"say \\\"hi\\\"\""},
        {"back\\slash", "\"back\\\\slash\""},
        {"new\nline", "\"new\\x0aline\""},
        {"cr\rtab\t", "\"cr\\x0dtab\\x09\""},
        {"\x01\x1b[2J\x7f", "\"\\x01\\x1b[2J\\x7f\""},
        {"k2=v2 k3=v3", "\"k2=v2 k3=v3\""}, /* no forged pairs */
        {"\"", "\"\\\"\""},
        {"trailing\\", "\"trailing\\\\\""},
        /* Bytes from 0x80 up are copied as they are: UTF-8 stays readable,
         * and bytes that are not UTF-8 cannot break the split, which looks
         * at ASCII only. */
        {"C\xc3\xb4ng_an", "C\xc3\xb4ng_an"},
        {"H\xc3\xa0 N\xe1\xbb\x99i", "\"H\xc3\xa0 N\xe1\xbb\x99i\""},
        {"\xff\xfe\xc0\x80", "\xff\xfe\xc0\x80"},
        {"\xe2\x80\xa8sep", "\xe2\x80\xa8sep"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_value(cases[i].value);
        capture_start();
        log_event(LOG_INFO, "e", "k", cases[i].value, NULL);
        char *line = capture_end(NULL);
        char want[256];
        snprintf(want, sizeof want, " event=e k=%s\n", cases[i].written);
        if (!strstr(line, want))
            fail_msg("case %zu: want \"%s\" in \"%s\"", i, want, line);
        free(line);
    }
    /* The event name is escaped like a value. */
    capture_start();
    log_event(LOG_INFO, "bad event\n", NULL);
    char *line = capture_end(NULL);
    assert_non_null(strstr(line, " event=\"bad event\\x0a\"\n"));
    free(line);
}

static void test_every_byte(void **state)
{
    (void)state;
    char v[256];
    for (int i = 1; i < 256; i++)
        v[i - 1] = (char)i;
    v[255] = '\0';
    check_value(v);
    for (int i = 1; i < 256; i++) {
        char one[2] = {(char)i, '\0'};
        check_value(one);
    }
}

/* Values longer than a line: the line is cut, but still one line, at most
 * LINE_MAX_BYTES, and every pair in it still reads (a closing quote is never
 * cut off, nor an escape halved). */
static void test_long_values(void **state)
{
    (void)state;
    static const char *const fills[] = {"a", " ", "\"", "\\", "\x01", "\xc3\xa0", "=", "ab c\n"};
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
        for (size_t total = LINE_MAX_BYTES - 80; total < 3 * LINE_MAX_BYTES;
             total += LINE_MAX_BYTES / 7 + 1) {
            size_t fl = strlen(fills[f]);
            char *v = malloc(total + fl + 1);
            assert_non_null(v);
            size_t n = 0;
            while (n < total) {
                memcpy(v + n, fills[f], fl);
                n += fl;
            }
            v[n] = '\0';
            capture_start();
            log_event(LOG_INFO, "long", "first", v, "second", "after", NULL);
            size_t len = 0;
            char *line = capture_end(&len);
            assert_true(len <= LINE_MAX_BYTES);
            struct parsed x;
            parse_line(line, len, &x);
            assert_true(x.n >= 4);
            assert_string_equal(x.p[3].key, "first");
            /* What is kept is a prefix of the value. */
            assert_true(x.p[3].value_len <= n);
            assert_memory_equal(x.p[3].value, v, x.p[3].value_len);
            if (x.n == 5) {
                assert_string_equal(x.p[4].key, "second");
                assert_string_equal(x.p[4].value, "after");
            }
            parsed_free(&x);
            free(line);
            free(v);
        }
    }
    /* Many pairs: cut between or inside pairs, never leaving half a key. */
    capture_start();
    const char *big = "0123456789012345678901234567890123456789012345678901234567890123456789";
    log_event(LOG_INFO, "many", "k01", big, "k02", big, "k03", big, "k04", big, "k05", big, "k06",
              big, "k07", big, "k08", big, "k09", big, "k10", big, "k11", big, "k12", big, NULL);
    size_t len = 0;
    char *line = capture_end(&len);
    struct parsed x;
    parse_line(line, len, &x);
    assert_int_equal(x.n, 15);
    parsed_free(&x);
    free(line);
}

static void test_helpers(void **state)
{
    (void)state;
    uint8_t b[80];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)(i * 37 + 1);
    assert_string_equal(log_hex(b, 0), "");
    assert_string_equal(log_hex((const uint8_t *)"\x00\xff\x10", 3), "00ff10");
    assert_int_equal(strlen(log_hex(b, 64)), 128);
    assert_int_equal(strlen(log_hex(b, 80)), 128); /* cut at 64 bytes */
    /* Four rotating buffers: four results live at once. */
    const char *h[4];
    for (int i = 0; i < 4; i++)
        h[i] = log_hex(b + i, 1);
    char want[3];
    for (int i = 0; i < 4; i++) {
        snprintf(want, sizeof want, "%02x", b[i]);
        assert_string_equal(h[i], want);
    }
    assert_string_equal(log_u64(0), "0");
    assert_string_equal(log_u64(UINT64_MAX), "18446744073709551615");
    /* LOG_U64_BUFS values in one call stay apart (the stats line has five) */
    const char *u[LOG_U64_BUFS];
    for (unsigned i = 0; i < LOG_U64_BUFS; i++)
        u[i] = log_u64(i + 1);
    for (unsigned i = 0; i < LOG_U64_BUFS; i++) {
        char num[4];
        snprintf(num, sizeof num, "%u", i + 1);
        assert_string_equal(u[i], num);
    }
    assert_string_equal(log_utc(0), "1970-01-01T00:00:00Z");
    assert_string_equal(log_utc(1796666400123LL), "2026-12-07T18:00:00Z");
    assert_string_equal(log_utc(-5), "-5 ms");
    assert_non_null(log_utc(INT64_MAX)); /* out of gmtime's range: some text */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),      cmocka_unit_test(test_levels_and_nulls),
        cmocka_unit_test(test_escaping),    cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_long_values), cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
