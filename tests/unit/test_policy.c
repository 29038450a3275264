/* test_policy.c - the broker's deadline policy (broker/policy.c) alone: the
 * defaults, every section and key, durations and their bounds, bad values,
 * unknown sections and keys, error messages that name the file and line,
 * and the policy left unchanged by a file that does not load. */
#include "testlib.h"

#include "casenet.h"
#include "policy.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S   1000LL
#define MIN (60 * S)
#define H   (60 * MIN)
#define D   (24 * H)

static const char *const section_names[] = {NULL, "emergency", "urgent-takedown", "standard",
                                            "info"};

/* ------------------------------------------------------------ durations */

static int64_t dur(const char *s)
{
    int64_t ms = -42;
    if (policy_parse_duration(s, &ms) != 0)
        fail_msg("'%s' refused", s);
    return ms;
}

static void refused(const char *s)
{
    int64_t ms = -42;
    if (policy_parse_duration(s, &ms) != -1)
        fail_msg("'%s' accepted as %lld ms", s ? s : "(null)", (long long)ms);
    assert_int_equal(ms, -42); /* untouched */
}

static void test_duration_units(void **state)
{
    (void)state;
    assert_int_equal(dur("90s"), 90 * S);
    assert_int_equal(dur("1s"), S);
    assert_int_equal(dur("15m"), 15 * MIN);
    assert_int_equal(dur("12h"), 12 * H);
    assert_int_equal(dur("2d"), 2 * D);
    assert_int_equal(dur("007m"), 7 * MIN);
    assert_int_equal(dur("0"), 0);
    assert_int_equal(dur("none"), 0);
}

static void test_duration_bounds(void **state)
{
    (void)state;
    /* At most POLICY_MAX_MS (366 days), in every unit. */
    assert_int_equal(dur("366d"), POLICY_MAX_MS);
    assert_int_equal(dur("8784h"), POLICY_MAX_MS);
    assert_int_equal(dur("527040m"), POLICY_MAX_MS);
    assert_int_equal(dur("31622400s"), POLICY_MAX_MS);
    refused("367d");
    refused("8785h");
    refused("527041m");
    refused("31622401s");
    /* Past every integer width: strtoull overflows, the multiplication
     * must not. */
    refused("18446744073709551615s");
    refused("18446744073709551616s");
    refused("99999999999999999999999999d");
    refused("9223372036854775807d");
    refused("213503982336d"); /* * 86400000 wraps a 64-bit integer */
}

static void test_duration_refused(void **state)
{
    (void)state;
    refused(NULL);
    refused("");
    refused("s");
    refused("15"); /* no unit */
    refused("0s"); /* zero is written 0 or none */
    refused("0m");
    refused("15ms"); /* two letters */
    refused("15x");
    refused("15M");  /* units are lowercase */
    refused("15 m"); /* inih trims the ends, not the middle */
    refused(" 15m");
    refused("15m ");
    refused("-15m");
    refused("+15m");
    refused("1.5h");
    refused("1e3s");
    refused("0x10s");
    refused("NONE");
    refused("none ");
    refused("00");
    refused("15m\n");
    refused("\xef\xbc\x91\x35m"); /* fullwidth digit one */
}

static void test_format(void **state)
{
    (void)state;
    char out[32];
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {0, "none"},     {-1, "none"},     {90 * S, "90s"}, {15 * MIN, "15m"}, {H, "1h"},
        {24 * H, "24h"}, {48 * H, "48h"},  {3 * D, "3d"},   {366 * D, "366d"}, {61 * S, "61s"},
        {25 * H, "25h"}, {1500, "1500ms"}, {1, "1ms"},      {90 * MIN, "90m"}, {73 * H, "73h"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        policy_format_duration(cases[i].ms, out, sizeof out);
        assert_string_equal(out, cases[i].text);
        /* What it writes reads back as the same delay (but ms, which a
         * policy file cannot hold). */
        if (cases[i].ms > 0 && cases[i].ms % S == 0)
            assert_int_equal(dur(out), cases[i].ms);
    }
    /* A short buffer is cut, never overrun. */
    char tiny[3] = {'x', 'x', 'x'};
    policy_format_duration(366 * D, tiny, sizeof tiny);
    assert_string_equal(tiny, "36");
}

/* ------------------------------------------------------------ defaults */

static void test_defaults(void **state)
{
    (void)state;
    struct broker_policy p;
    memset(&p, 0x5a, sizeof p);
    policy_defaults(&p);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_EMERGENCY].deliver_ms, 15 * MIN);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_EMERGENCY].accept_ms, H);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_URGENT_TAKEDOWN].deliver_ms, H);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_URGENT_TAKEDOWN].accept_ms, 24 * H);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_STANDARD].deliver_ms, 24 * H);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_STANDARD].accept_ms, 48 * H);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_INFO].deliver_ms, 0);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_INFO].accept_ms, 0);
    assert_int_equal(p.by_urgency[0].deliver_ms, 0);
    assert_int_equal(p.by_urgency[0].accept_ms, 0);
    /* Unknown or unspecified urgencies get the standard entry. */
    for (int u = 1; u <= 4; u++)
        assert_ptr_equal(policy_for(&p, u), &p.by_urgency[u]);
    static const int unknown[] = {0, -1, 5, 99, -2147483647 - 1, 2147483647};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_ptr_equal(policy_for(&p, unknown[i]), &p.by_urgency[CASENET_URGENCY_STANDARD]);
}

/* ------------------------------------------------------------ files */

struct fixture {
    char *dir;
    char *path;
    char err[512];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tl_tmpdir();
    f->path = tl_path(f->dir, "policy.ini");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_rmrf(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* Loads text over the defaults; returns policy_load's result. */
static int load(struct fixture *f, const char *text, struct broker_policy *p)
{
    tl_write_file(f->path, text, strlen(text), 0644);
    policy_defaults(p);
    f->err[0] = '\0';
    return policy_load(f->path, p, f->err, sizeof f->err);
}

/* text must not load: EINVAL, p left at the defaults, and the message names
 * the file, the line and contains want. */
static void bad_file(struct fixture *f, const char *text, int line, const char *want)
{
    struct broker_policy p, d;
    policy_defaults(&d);
    CN_ERR(load(f, text, &p), CASENET_EINVAL);
    assert_memory_equal(&p, &d, sizeof p);
    char where[600];
    snprintf(where, sizeof where, "%s:%d: ", f->path, line);
    if (strncmp(f->err, where, strlen(where)) != 0 || !strstr(f->err, want))
        fail_msg("for\n%s\nwant \"%s...%s\", got \"%s\"", text, where, want, f->err);
}

static void test_every_key(void **state)
{
    struct fixture *f = *state;
    struct broker_policy p;
    char text[256];
    for (int u = 1; u <= 4; u++) {
        for (int k = 0; k < 2; k++) {
            snprintf(text, sizeof text, "[%s]\n%s = 7m\n", section_names[u],
                     k ? "accept_within" : "deliver_within");
            CN_OK(load(f, text, &p));
            struct broker_policy want;
            policy_defaults(&want);
            if (k)
                want.by_urgency[u].accept_ms = 7 * MIN;
            else
                want.by_urgency[u].deliver_ms = 7 * MIN;
            assert_memory_equal(&p, &want, sizeof p); /* that one slot only */
        }
    }
}

static void test_whole_file(void **state)
{
    struct fixture *f = *state;
    struct broker_policy p, d;
    /* The defaults written out load as the defaults. */
    CN_OK(load(f, POLICY_DEFAULT_TEXT, &p));
    policy_defaults(&d);
    assert_memory_equal(&p, &d, sizeof p);
    /* Empty, comments only: the defaults. */
    CN_OK(load(f, "", &p));
    assert_memory_equal(&p, &d, sizeof p);
    CN_OK(load(f, "; nothing\n# here\n\n", &p));
    assert_memory_equal(&p, &d, sizeof p);
    /* Comments, blank lines, spaces, none and 0, the last value winning. */
    CN_OK(load(f,
               "; test policy\n[emergency]\n  deliver_within   =   2s  \naccept_within=none\n\n"
               "[info]\ndeliver_within = 1d\ndeliver_within = 3d ; the last one counts\n"
               "[emergency]\naccept_within = 0\n",
               &p));
    assert_int_equal(p.by_urgency[CASENET_URGENCY_EMERGENCY].deliver_ms, 2 * S);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_EMERGENCY].accept_ms, 0);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_INFO].deliver_ms, 3 * D);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_INFO].accept_ms, 0);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_STANDARD].deliver_ms, 24 * H);
    /* Loaded over what p held, not over the defaults. */
    p.by_urgency[CASENET_URGENCY_STANDARD].accept_ms = 5 * S;
    tl_write_file(f->path, "[info]\naccept_within = 1h\n", 26, 0644);
    CN_OK(policy_load(f->path, &p, f->err, sizeof f->err));
    assert_int_equal(p.by_urgency[CASENET_URGENCY_STANDARD].accept_ms, 5 * S);
    assert_int_equal(p.by_urgency[CASENET_URGENCY_INFO].accept_ms, H);
}

static void test_bad_files(void **state)
{
    struct fixture *f = *state;
    /* Unknown sections: the urgency names only, exactly. */
    bad_file(f, "[urgent]\ndeliver_within = 1h\n", 2, "unknown section [urgent]");
    bad_file(f, "[Emergency]\ndeliver_within = 1h\n", 2, "unknown section [Emergency]");
    bad_file(f, "[broker]\npolicy = x\n", 2, "unknown section [broker]");
    bad_file(f, "deliver_within = 1h\n", 1, "unknown section []");
    /* Unknown keys. */
    bad_file(f, "[standard]\ndeliver = 1h\n", 2, "unknown key [standard] deliver");
    bad_file(f, "[standard]\nDeliver_Within = 1h\n", 2, "expected deliver_within or accept_within");
    /* Bad values, the bounds included. */
    bad_file(f, "[info]\n\naccept_within = 15\n", 3,
             "[info] accept_within = '15' is not a duration");
    bad_file(f, "[info]\naccept_within = 367d\n", 2, "at most 366d");
    bad_file(f, "[info]\naccept_within =\n", 2, "is not a duration");
    bad_file(f, "[info]\naccept_within = -1h\n", 2, "is not a duration");
    /* Syntax. */
    bad_file(f, "[standard\ndeliver_within = 1h\n", 1, "syntax error");
    bad_file(f, "[standard]\ndeliver_within 1h\n", 2, "syntax error");
    /* A good first half is not applied either (bad_file checks p). */
    bad_file(f, "[standard]\ndeliver_within = 1m\naccept_within = 2m\n[info]\nx = 1\n", 5,
             "unknown key [info] x");
}

/* Two mistakes: the message is the first one's, at the first one's line. */
static void test_first_error_reported(void **state)
{
    struct fixture *f = *state;
    bad_file(f, "[standard]\ndeliver_within = soon\naccept_within = later\n", 2, "'soon'");
    bad_file(f, "[nope]\nx = 1\n[standard]\nbogus = 1h\n", 2, "unknown section [nope]");
    /* A section is checked at its first key (inih calls no handler for a
     * header alone): an empty unknown section is harmless. */
    bad_file(f, "[nope]\n[standard]\nbogus = 1h\n", 3, "unknown key [standard] bogus");
    bad_file(f, "[standard]\nno equals sign\n[info]\nbogus = 1h\n", 2, "syntax error");
}

static void test_unreadable(void **state)
{
    struct fixture *f = *state;
    struct broker_policy p, d;
    policy_defaults(&p);
    policy_defaults(&d);
    char *missing = tl_path(f->dir, "missing.ini");
    CN_ERR(policy_load(missing, &p, f->err, sizeof f->err), CASENET_EIO);
    assert_non_null(strstr(f->err, "cannot read policy file"));
    assert_non_null(strstr(f->err, missing));
    assert_memory_equal(&p, &d, sizeof p);
    /* A directory is not a policy file either. */
    int rc = policy_load(f->dir, &p, f->err, sizeof f->err);
    assert_true(rc == CASENET_EIO || rc == CASENET_EINVAL);
    assert_memory_equal(&p, &d, sizeof p);
    /* A short error buffer is cut, never overrun. */
    char small[8];
    memset(small, 'x', sizeof small);
    CN_ERR(policy_load(missing, &p, small, sizeof small), CASENET_EIO);
    assert_int_equal(strlen(small), sizeof small - 1);
    free(missing);
}

/* Lines longer than inih's buffer must not load silently as something
 * else. */
static void test_long_lines(void **state)
{
    struct fixture *f = *state;
    struct broker_policy p;
    char text[2048];
    int n = snprintf(text, sizeof text, "[standard]\ndeliver_within = 1m%*s\n", 600, "; c");
    assert_true(n > 0 && (size_t)n < sizeof text);
    int rc = load(f, text, &p);
    if (rc == CASENET_OK)
        assert_int_equal(p.by_urgency[CASENET_URGENCY_STANDARD].deliver_ms, MIN);
    else
        CN_ERR(rc, CASENET_EINVAL);
    char key[700];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    snprintf(text, sizeof text, "[standard]\n%s = 1m\n", key);
    CN_ERR(load(f, text, &p), CASENET_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_bounds),
        cmocka_unit_test(test_duration_refused),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_error_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
