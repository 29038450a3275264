/* test_config.c - casenetd's option table (broker/config.c): every value
 * type and its bounds, the INI reader's errors (unknown section and key, a
 * key given twice, syntax) with their lines, flags over the file, the
 * defaults against the modules' macros, --check-config's listing, and the
 * reference's formats (config_doc.c: --help-config=FORMAT). */
#include "config.h"
#include "testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static size_t index_of(const char *section, const char *key)
{
    const struct config_option *o = config_find(section, key);
    assert_non_null(o);
    return (size_t)(o - config_options);
}

/* The required options, as flags. */
static void set_required(struct config *c)
{
    char err[320];
    static const char *const req[][2] = {{"data", "/var/lib/casenetd"},
                                         {"listen", "tcp://0.0.0.0:7400"},
                                         {"key", "broker.key"},
                                         {"directory", "directory"},
                                         {"authority", "authority.pub"}};
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
        CN_OK(
            config_set(c, index_of("broker", req[i][0]), req[i][1], CONFIG_FLAG, err, sizeof err));
}

/* Loads text; returns its rc and leaves the message in err. */
static int load(struct config *c, const char *text, char *err, size_t errlen)
{
    err[0] = '\0';
    return config_load_string(c, text, "t.ini", err, errlen);
}

static void expect_error(const char *text, const char *want)
{
    struct config c;
    char err[320];
    config_init(&c);
    CN_ERR(load(&c, text, err, sizeof err), CASENET_EINVAL);
    if (!strstr(err, want))
        fail_msg("error '%s' does not contain '%s'", err, want);
    config_free(&c);
}

static uint64_t value_of(const char *section, const char *key, const char *text)
{
    uint64_t n = 0;
    char err[320];
    int rc = config_parse_value(config_find(section, key), text, &n, err, sizeof err);
    if (rc != CASENET_OK)
        fail_msg("%s = %s refused: %s", key, text, err);
    return n;
}

static void expect_refused(const char *section, const char *key, const char *text, const char *want)
{
    uint64_t n = 0;
    char err[320] = "";
    CN_ERR(config_parse_value(config_find(section, key), text, &n, err, sizeof err),
           CASENET_EINVAL);
    if (!strstr(err, want))
        fail_msg("%s = %s: error '%s' does not contain '%s'", key, text, err, want);
}

/* The table's defaults are the modules' constants. */
static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    char err[320];
    config_init(&c);
    set_required(&c);
    CN_OK(config_finish(&c, err, sizeof err));
    const struct broker_limits *l = &c.values.limits;
    assert_int_equal(l->max_envelope_bytes, BROKER_DEFAULT_MAX_ENVELOPE);
    assert_int_equal(l->max_recipients, BROKER_DEFAULT_MAX_RCPTS);
    assert_int_equal(l->clock_skew_s, BROKER_DEFAULT_CLOCK_SKEW_S);
    assert_int_equal(l->batch_max, BROKER_DEFAULT_BATCH_MAX);
    assert_true(l->verify_threads <= 4);
    assert_int_equal(l->rate[LIMITS_SUBMIT].per_min, LIMITS_DEFAULT_SUBMIT_PER_MIN);
    assert_int_equal(l->rate[LIMITS_SUBMIT].burst, LIMITS_DEFAULT_SUBMIT_BURST);
    assert_int_equal(l->rate[LIMITS_FETCH].per_min, LIMITS_DEFAULT_FETCH_PER_MIN);
    assert_int_equal(l->rate[LIMITS_FETCH].burst, LIMITS_DEFAULT_FETCH_BURST);
    assert_int_equal(l->rate[LIMITS_RECEIPT].per_min, LIMITS_DEFAULT_RECEIPT_PER_MIN);
    assert_int_equal(l->rate[LIMITS_RECEIPT].burst, LIMITS_DEFAULT_RECEIPT_BURST);
    assert_int_equal(l->rate[LIMITS_AUDIT].per_min, LIMITS_DEFAULT_AUDIT_PER_MIN);
    assert_int_equal(l->rate[LIMITS_AUDIT].burst, LIMITS_DEFAULT_AUDIT_BURST);
    assert_int_equal(l->max_inbox_backlog, LIMITS_DEFAULT_INBOX_BACKLOG);
    assert_int_equal(l->max_pair_backlog, LIMITS_DEFAULT_PAIR_BACKLOG);
    assert_int_equal(l->emergency_pct, LIMITS_DEFAULT_EMERGENCY_PCT);
    assert_int_equal(l->quota_mb, LIMITS_DEFAULT_QUOTA_MB);
    assert_int_equal(l->fair_share, LIMITS_DEFAULT_FAIR_SHARE);
    assert_int_equal(l->min_free_mb, LIMITS_DEFAULT_MIN_FREE_MB);
    assert_int_equal(l->max_pending, LIMITS_DEFAULT_MAX_PENDING);
    assert_int_equal(l->max_connections, LIMITS_DEFAULT_MAX_CONNECTIONS);
    assert_int_equal(l->escalation_budget, LIMITS_DEFAULT_ESC_BUDGET);
    assert_int_equal(l->escalation_period_s, LIMITS_DEFAULT_ESC_PERIOD_S);
    assert_string_equal(c.values.store_spec, "sqlite:/var/lib/casenetd");
    assert_null(c.values.policy_path);
    /* One "not set": the source. Everything but policy and admin (off by
     * default) has a value now. */
    for (size_t i = 0; i < config_count(); i++) {
        bool unset = strcmp(config_options[i].key, "policy") == 0 ||
                     strcmp(config_options[i].key, "admin") == 0;
        assert_int_equal(c.source[i] == CONFIG_UNSET, unset);
    }
    config_free(&c);
}

/* Every row is well formed: a flag, help, a default that parses and lies
 * within its bounds, and a required option has none. */
static void test_table(void **state)
{
    (void)state;
    assert_true(config_count() <= CONFIG_OPTIONS_MAX);
    for (size_t i = 0; i < config_count(); i++) {
        const struct config_option *o = &config_options[i];
        assert_non_null(o->flag);
        assert_non_null(o->arg);
        assert_non_null(o->help);
        assert_true(!o->required || (!o->def && !o->def_doc));
        assert_true(o->min <= o->max);
        assert_ptr_equal(config_find(o->section, o->key), o);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(config_options[j].flag, o->flag);
        if (o->def) {
            uint64_t n;
            char err[320];
            CN_OK(config_parse_value(o, o->def, &n, err, sizeof err));
        }
    }
}

static void test_numbers(void **state)
{
    (void)state;
    assert_int_equal(value_of("limits", "batch_max", "1"), 1);
    assert_int_equal(value_of("limits", "batch_max", "65536"), 65536);
    expect_refused("limits", "batch_max", "0",
                   "[limits] batch_max = 0 is out of range: expected a whole number from 1 to "
                   "65536");
    expect_refused("limits", "batch_max", "65537", "from 1 to 65536");
    expect_refused("limits", "batch_max", "zero", "is not valid");
    expect_refused("limits", "batch_max", "-1", "is not valid");
    expect_refused("limits", "batch_max", "12 ", "is not valid");
    expect_refused("limits", "batch_max", "", "is not valid");
    expect_refused("limits", "max_inbox_backlog", "4294967296", "out of range");
    expect_refused("limits", "max_inbox_backlog", "99999999999999999999999", "is not valid");
    assert_int_equal(value_of("limits", "max_inbox_backlog", "4294967295"), UINT32_MAX);
    /* percentages */
    assert_int_equal(value_of("limits", "emergency_reserve_pct", "20"), 20);
    assert_int_equal(value_of("limits", "emergency_reserve_pct", "20%"), 20);
    expect_refused("limits", "emergency_reserve_pct", "51%", "a percentage from 0 to 50");
    expect_refused("limits", "emergency_reserve_pct", "5 %", "is not valid");
}

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(value_of("limits", "clock_skew_s", "600"), 600);
    assert_int_equal(value_of("limits", "clock_skew_s", "90s"), 90);
    assert_int_equal(value_of("limits", "clock_skew_s", "15m"), 900);
    assert_int_equal(value_of("limits", "clock_skew_s", "12h"), 43200);
    assert_int_equal(value_of("limits", "clock_skew_s", "1d"), 86400);
    expect_refused("limits", "clock_skew_s", "2d", "a duration from 1s to 1d");
    expect_refused("limits", "clock_skew_s", "0", "out of range");
    expect_refused("limits", "clock_skew_s", "5w", "is not valid");
    expect_refused("limits", "clock_skew_s", "m", "is not valid");
    assert_int_equal(value_of("limits", "escalation_period_s", "30d"), 30 * 86400);
    expect_refused("limits", "escalation_period_s", "99999999999999999d", "is not valid");
}

static void test_sizes(void **state)
{
    (void)state;
    assert_int_equal(value_of("limits", "max_envelope_bytes", "1500"), 1500);
    assert_int_equal(value_of("limits", "max_envelope_bytes", "64KB"), 65536);
    assert_int_equal(value_of("limits", "max_envelope_bytes", "1MiB"), 1048576);
    assert_int_equal(value_of("limits", "max_envelope_bytes", "64mb"), 64u << 20);
    expect_refused("limits", "max_envelope_bytes", "65MB", "a size from 1024 to 67108864 bytes");
    expect_refused("limits", "max_envelope_bytes", "1000", "out of range");
    expect_refused("limits", "max_envelope_bytes", "10TB", "is not valid");
    /* MiB options: a bare number is MiB; a suffix must come to whole MiB */
    assert_int_equal(value_of("limits", "member_quota_mb", "256"), 256);
    assert_int_equal(value_of("limits", "member_quota_mb", "1GB"), 1024);
    assert_int_equal(value_of("limits", "member_quota_mb", "0"), 0);
    expect_refused("limits", "member_quota_mb", "1500KB", "is not valid");
    expect_refused("limits", "min_free_mb", "2048GB", "a size from 0 to 1048576 MiB");
}

static void test_rates(void **state)
{
    (void)state;
    assert_int_equal(value_of("limits", "submit_rate", "60/min"), 60);
    assert_int_equal(value_of("limits", "submit_rate", "10/s"), 600);
    assert_int_equal(value_of("limits", "submit_rate", "5"), 300); /* bare: per second */
    assert_int_equal(value_of("limits", "submit_rate", "0"), 0);
    assert_int_equal(value_of("limits", "submit_rate", "1000000/s"), 60000000);
    expect_refused("limits", "submit_rate", "1000001/s", "a rate from 0 to 60000000/min");
    expect_refused("limits", "submit_rate", "60000001/min", "out of range");
    expect_refused("limits", "submit_rate", "5/h", "is not valid");
    expect_refused("limits", "submit_rate", "/min", "is not valid");
}

static void test_strings_endpoints_bools(void **state)
{
    (void)state;
    expect_refused("broker", "data", "", "[broker] data =  is not valid");
    assert_int_equal(value_of("broker", "listen", "tcp://127.0.0.1:7400"), 0);
    assert_int_equal(value_of("broker", "listen", "ipc:///run/casenetd.sock"), 0);
    expect_refused("broker", "listen", "127.0.0.1:7400",
                   "invalid listen endpoint '127.0.0.1:7400': expected tcp://HOST:PORT");
    expect_refused("broker", "listen", "tcp://host:99999", "invalid listen endpoint");
    /* No option is a bool yet: a row of that type on its own. */
    const struct config_option b = {"broker", "flag", "flag", "BOOL", CONFIG_BOOL, 0,       "false",
                                    NULL,     0,      1,      0,      false,       "a bool"};
    uint64_t n = 9;
    char err[320];
    const char *yes[] = {"true", "yes", "on", "1", "TRUE"}, *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 5; i++) {
        CN_OK(config_parse_value(&b, yes[i], &n, err, sizeof err));
        assert_int_equal(n, 1);
    }
    for (size_t i = 0; i < 4; i++) {
        CN_OK(config_parse_value(&b, no[i], &n, err, sizeof err));
        assert_int_equal(n, 0);
    }
    CN_ERR(config_parse_value(&b, "maybe", &n, err, sizeof err), CASENET_EINVAL);
    assert_non_null(strstr(err, "true or false"));
    /* A u64 row. */
    const struct config_option u = {"broker", "big", "big",      "N", CONFIG_U64, 0,      NULL,
                                    NULL,     1,     UINT64_MAX, 0,   false,      "a u64"};
    CN_OK(config_parse_value(&u, "18446744073709551615", &n, err, sizeof err));
    assert_true(n == UINT64_MAX);
    CN_ERR(config_parse_value(&u, "18446744073709551616", &n, err, sizeof err), CASENET_EINVAL);
}

static void test_file_errors(void **state)
{
    (void)state;
    expect_error("[broker]\nlisten = tcp://127.0.0.1:1\n[limits]\nnope = 1\n",
                 "t.ini:4: unknown key [limits] nope");
    expect_error("; c\n[extras]\nx = 1\n", "t.ini:3: unknown section [extras]");
    expect_error("[limits]\nbatch_max = 4\n\nbatch_max = 5\n",
                 "t.ini:4: [limits] batch_max is given twice (first on line 2)");
    expect_error("[limits]\nbatch_max = 0\n", "t.ini:2: [limits] batch_max = 0 is out of range: "
                                              "expected a whole number from 1 to 65536");
    expect_error("[limits]\nbatch_max = zero\n", "t.ini:2: [limits] batch_max = zero is not valid");
    expect_error("[broker]\nlisten = 127.0.0.1:7400\n", "t.ini:2: invalid listen endpoint");
    expect_error("[limits]\nbatch_max = 4\n  5\n", "t.ini:3: an indented line continues "
                                                   "[limits] batch_max");
    expect_error("[limits\nbatch_max = 4\n", "t.ini:1: syntax error");
    expect_error("[limits]\nbatch_max\n", "t.ini:2: syntax error");
    expect_error("batch_max = 4\n", "t.ini:1: unknown section []");
    /* The first error is the one reported. */
    expect_error("[limits]\nbatch_max = 0\nnope = 1\n", "t.ini:2: [limits] batch_max");
    expect_error("[limits\nnope = 1\n", "t.ini:1: syntax error");
}

static void test_file_values(void **state)
{
    (void)state;
    struct config c;
    char err[320];
    config_init(&c);
    const char *text = "; comment\n[broker]\ndata = /srv/casenet ; inline comment\n"
                       "store = sqlite:/srv/db\n[limits]\nbatch_max = 3\nfetch_rate = 2/s\n"
                       "clock_skew_s = 5m\nmax_envelope_bytes = 64KB\naudit_rate = 0\n"
                       "receipt_rate = 200000/s\n";
    CN_OK(load(&c, text, err, sizeof err));
    set_required(&c); /* data from the flag replaces the file's */
    CN_OK(config_finish(&c, err, sizeof err));
    assert_string_equal(c.values.data_dir, "/var/lib/casenetd");
    assert_string_equal(c.values.store_spec, "sqlite:/srv/db");
    assert_int_equal(c.values.limits.batch_max, 3);
    assert_int_equal(c.values.limits.clock_skew_s, 300);
    assert_int_equal(c.values.limits.max_envelope_bytes, 65536);
    /* a rate given alone: its burst is one minute's worth */
    assert_int_equal(c.values.limits.rate[LIMITS_FETCH].per_min, 120);
    assert_int_equal(c.values.limits.rate[LIMITS_FETCH].burst, 120);
    assert_int_equal(c.values.limits.rate[LIMITS_SUBMIT].burst, LIMITS_DEFAULT_SUBMIT_BURST);
    /* ... within the burst's bounds: 12,000,000 a minute is more than a
     * burst may be (found by fuzz_config: the listing did not parse back) */
    assert_int_equal(c.values.limits.rate[LIMITS_RECEIPT].burst, 10000000);
    /* a rate of 0 (no bucket) leaves its burst at the default, which parses */
    assert_int_equal(c.values.limits.rate[LIMITS_AUDIT].per_min, 0);
    assert_int_equal(c.values.limits.rate[LIMITS_AUDIT].burst, LIMITS_DEFAULT_AUDIT_BURST);
    assert_int_equal(c.source[index_of("limits", "batch_max")], CONFIG_FILE);
    assert_int_equal(c.source[index_of("broker", "store")], CONFIG_FILE);
    assert_int_equal(c.source[index_of("limits", "fair_share")], CONFIG_DEFAULT);
    config_free(&c);
}

/* A flag wins over the file, whose value is still checked. */
static void test_flags_over_file(void **state)
{
    (void)state;
    struct config c;
    char err[320];
    config_init(&c);
    size_t bm = index_of("limits", "batch_max");
    CN_OK(config_set(&c, bm, "7", CONFIG_FLAG, err, sizeof err));
    CN_OK(load(&c, "[limits]\nbatch_max = 9\n", err, sizeof err));
    assert_int_equal(c.values.limits.batch_max, 7);
    assert_int_equal(c.source[bm], CONFIG_FLAG);
    config_free(&c);
    config_init(&c);
    CN_OK(config_set(&c, bm, "7", CONFIG_FLAG, err, sizeof err));
    CN_ERR(load(&c, "[limits]\nbatch_max = 0\n", err, sizeof err), CASENET_EINVAL);
    assert_non_null(strstr(err, "t.ini:2: [limits] batch_max = 0 is out of range"));
    /* a bad flag is named as the flag */
    CN_ERR(config_set(&c, bm, "0", CONFIG_FLAG, err, sizeof err), CASENET_EINVAL);
    assert_non_null(strstr(err, "--batch-max = 0 is out of range"));
    config_free(&c);
}

static void test_required(void **state)
{
    (void)state;
    struct config c;
    char err[320];
    config_init(&c);
    CN_ERR(config_finish(&c, err, sizeof err), CASENET_EINVAL);
    assert_string_equal(err, "--data is required (on the command line or in --config)");
    config_free(&c);
    config_init(&c);
    CN_OK(load(&c, "[broker]\ndata = d\nlisten = tcp://127.0.0.1:1\nkey = k\n", err, sizeof err));
    CN_ERR(config_finish(&c, err, sizeof err), CASENET_EINVAL);
    assert_string_equal(err, "--directory is required (on the command line or in --config)");
    config_free(&c);
}

/* --check-config's listing: every option, its value (as it parses back)
 * and its source. */
static void test_effective_listing(void **state)
{
    (void)state;
    struct config c;
    char err[320];
    config_init(&c);
    CN_OK(load(&c, "[limits]\nbatch_max = 3\nclock_skew_s = 120\n", err, sizeof err));
    set_required(&c);
    CN_OK(config_finish(&c, err, sizeof err));
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    config_print_effective(&c, f);
    fclose(f);
    size_t lines = 0;
    for (char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, config_count() + 1);
    static const char *const want[] = {
        "[limits] batch_max             = 3                        (file)",
        "[limits] clock_skew_s          = 2m                       (file)",
        "[broker] data                  = /var/lib/casenetd        (command line)",
        "[broker] policy                = (not set)\n",
        "[limits] submit_rate           = 60/min                   (default)",
        "[broker] store                 = sqlite:/var/lib/casenetd (default)",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(out, want[i]))
            fail_msg("listing lacks '%s':\n%s", want[i], out);
    }
    /* Every value printed parses back to itself. */
    for (size_t i = 0; i < config_count(); i++) {
        char text[512];
        uint64_t n;
        if (c.source[i] == CONFIG_UNSET)
            continue;
        config_format(&c, i, text, sizeof text);
        CN_OK(config_parse_value(&config_options[i], text, &n, err, sizeof err));
    }
    free(out);
    config_free(&c);
}

static void test_doc_formats(void **state)
{
    (void)state;
    enum config_doc fmt = CONFIG_DOC_SCDOC;
    CN_OK(config_doc_parse(NULL, &fmt)); /* --help-config alone */
    assert_int_equal(fmt, CONFIG_DOC_MARKDOWN);
    CN_OK(config_doc_parse("markdown", &fmt));
    assert_int_equal(fmt, CONFIG_DOC_MARKDOWN);
    CN_OK(config_doc_parse("scdoc", &fmt));
    assert_int_equal(fmt, CONFIG_DOC_SCDOC);
    CN_OK(config_doc_parse("scdoc-flags", &fmt));
    assert_int_equal(fmt, CONFIG_DOC_SCDOC_FLAGS);
    static const char *const bad[] = {"",       "bogus",      "Markdown",     "md",
                                      "scdoc-", "scdoc-flag", "scdoc-flags ", "man"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fmt = CONFIG_DOC_SCDOC_FLAGS;
        CN_ERR(config_doc_parse(bad[i], &fmt), CASENET_EINVAL);
        assert_int_equal(fmt, CONFIG_DOC_SCDOC_FLAGS); /* untouched */
    }
}

/* The reference in fmt (the caller frees it). */
static char *reference(enum config_doc fmt)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    config_print_reference(f, fmt);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(strlen(out), len); /* text, no NUL inside */
    return out;
}

/* text with scdoc's * _ \ escaped, as config_doc.c writes a key. */
static void scd_escaped(const char *text, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        assert_true(n + 3 < cap);
        if (*p == '*' || *p == '_' || *p == '\\')
            out[n++] = '\\';
        out[n++] = *p;
    }
    out[n] = '\0';
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void expect_row(const char *out, const char *row, const char *fmt)
{
    if (count_of(out, row) != 1)
        fail_msg("%s reference has '%s' %zu times, not once", fmt, row, count_of(out, row));
}

static void test_doc_rows(void **state)
{
    (void)state;
    char *md = reference(CONFIG_DOC_MARKDOWN);
    char *scd = reference(CONFIG_DOC_SCDOC);
    char *flags = reference(CONFIG_DOC_SCDOC_FLAGS);
    char row[256], key[128];
    for (size_t i = 0; i < config_count(); i++) {
        const struct config_option *o = &config_options[i];
        /* the flags and argument names go out unescaped: no markup in them */
        assert_null(strpbrk(o->flag, "*_\\|`"));
        assert_null(strpbrk(o->arg, "*_\\|`"));
        snprintf(row, sizeof row, "\n| `%s` | `--%s %s` | ", o->key, o->flag, o->arg);
        expect_row(md, row, "markdown");
        snprintf(row, sizeof row, "\n## [%s]\n", o->section);
        assert_non_null(strstr(md, row));
        scd_escaped(o->key, key, sizeof key);
        snprintf(row, sizeof row, "\n*%s* = _%s_\n\t", key, o->arg);
        expect_row(scd, row, "scdoc");
        snprintf(row, sizeof row, " (*--%s*; ", o->flag);
        expect_row(scd, row, "scdoc");
        snprintf(row, sizeof row, "## [%s]\n\n", o->section);
        assert_non_null(strstr(scd, row));
        snprintf(row, sizeof row, "*--%s* _%s_\n\t", o->flag, o->arg);
        expect_row(flags, row, "scdoc-flags");
        snprintf(row, sizeof row, " ([%s] %s; ", o->section, key);
        expect_row(flags, row, "scdoc-flags");
    }
    /* one row per option, nothing else counted as one */
    assert_int_equal(count_of(md, "\n| `"), config_count());
    assert_int_equal(count_of(scd, "* = _"), config_count());
    assert_int_equal(count_of(flags, "\n\t"), config_count());
    /* the prose: markdown's as written, scdoc's sections in capitals; the
     * flags page (casenetd(8)) has only the options */
    assert_non_null(strstr(md, "# casenetd configuration\n"));
    assert_non_null(strstr(md, "\n## Values\n"));
    assert_non_null(strstr(md, "\n## Policy file\n"));
    assert_non_null(strstr(scd, "\n# VALUES\n"));
    assert_non_null(strstr(scd, "\n# POLICY FILE\n"));
    assert_null(strstr(scd, "](")); /* links reduced to their text */
    assert_null(strstr(flags, "VALUES"));
    assert_null(strstr(flags, "## ["));
    free(md);
    free(scd);
    free(flags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_strings_endpoints_bools),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_flags_over_file),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_effective_listing),
        cmocka_unit_test(test_doc_formats),
        cmocka_unit_test(test_doc_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
