/* cli.c - shared helpers of the casenet CLI: exit codes, error reporting,
 * option and argument parsing, time formatting and small file helpers. */
#include "cli.h"

#include "hex.h"
#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *cli_cmd_name = "casenet";

int cli_exit_code(int err, enum cli_origin origin)
{
    switch (err) {
    case CASENET_OK:
        return CLI_OK;
    case CASENET_EBADSIG:
    case CASENET_EEXPIRED:
    case CASENET_EROLLBACK:
    case CASENET_ECOMMIT:
    case CASENET_ECRYPTO:
    case CASENET_ENOTRECIPIENT:
    case CASENET_EUNAUTH:
    case CASENET_EPERM:
        return CLI_ESECURITY;
    case CASENET_EIO:
        return CLI_EIO;
    case CASENET_ETIMEDOUT:
    case CASENET_EUNAVAIL:
    case CASENET_ERATELIMIT:
        return CLI_EUNREACH;
    default:
        break;
    }
    bool wire = err >= CASENET_EBADREQ && err <= CASENET_EVERSION;
    wire |= err == CASENET_ESTALEDIR;
    wire |= err == CASENET_EDIREXPIRED;
    wire |= err == CASENET_EQUOTA;
    if (origin == CLI_BROKER && wire)
        return CLI_EREFUSED;
    if (origin == CLI_VERIFY &&
        (err == CASENET_EBADREQ || err == CASENET_EVERSION || err == CASENET_EUNKNOWNRCPT))
        return CLI_ESECURITY;
    return CLI_EFAIL;
}

const char *cli_safe(const char *s)
{
    static char slots[CLI_SAFE_SLOTS][1024];
    static unsigned next;
    char *out = slots[next++ % CLI_SAFE_SLOTS];
    return cn_text_escape(s ? s : "", out, sizeof slots[0]);
}

/* Prints the formatted message to stderr escaped (cli_safe): messages carry
 * text from outside, such as the broker's error message. */
__attribute__((format(printf, 1, 0))) static void print_escaped(const char *fmt, va_list ap)
{
    char msg[2048], esc[4 * sizeof msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fputs(cn_text_escape(msg, esc, sizeof esc), stderr);
}

int cli_fail(enum cli_origin origin, int err, const char *hint, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "casenet: %s: ", cli_cmd_name);
    va_start(ap, fmt);
    print_escaped(fmt, ap);
    va_end(ap);
    fprintf(stderr, " (%s)", casenet_errname(err));
    if (hint)
        fprintf(stderr, "; %s", hint);
    fputc('\n', stderr);
    return cli_exit_code(err, origin);
}

int cli_file_fail(int rc, const char *path, const char *what)
{
    struct stat st;
    if (rc == CASENET_EIO && lstat(path, &st) != 0 && errno == ENOENT)
        return cli_fail(CLI_LOCAL, rc, "check the path", "cannot read %s: no such file: %s", what,
                        path);
    if (rc == CASENET_EIO)
        return cli_fail(CLI_LOCAL, rc, NULL, "cannot read %s %s", what, path);
    return cli_fail(CLI_LOCAL, rc, NULL, "cannot read %s %s: %s", what, path, casenet_strerror(rc));
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "casenet: %s: ", cli_cmd_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee 'casenet %s --help'\n", cli_cmd_name);
    return CLI_EUSAGE;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "casenet: %s: warning: ", cli_cmd_name);
    va_start(ap, fmt);
    print_escaped(fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void list_group(FILE *f, const char *group, const struct cli_cmd *table, size_t n)
{
    fprintf(f, "usage: casenet %s SUBCOMMAND [OPTIONS]\n\nsubcommands:\n", group);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-10s %s\n", table[i].name, table[i].help);
    fprintf(f, "\n'casenet %s SUBCOMMAND --help' shows the options of one.\n", group);
}

int cli_dispatch(const char *group, const struct cli_cmd *table, size_t n, int argc, char **argv)
{
    if (argc < 2) {
        list_group(stderr, group, table, n);
        return CLI_EUSAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        list_group(stdout, group, table, n);
        return CLI_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], table[i].name) == 0) {
            static char name[64];
            snprintf(name, sizeof name, "%s %s", group, table[i].name);
            cli_cmd_name = name;
            return table[i].handler(argc - 1, argv + 1);
        }
    }
    cli_cmd_name = group;
    return cli_usage_error("unknown subcommand '%s'", argv[1]);
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    static char **last_argv;
    if (argv != last_argv) {
        last_argv = argv;
        optind = 0; /* GNU: full re-initialisation for a new argument vector */
    }
    opterr = 0;
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c == '?' || c == ':') {
        const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        cli_usage_error("unknown option or missing argument: '%s'", arg);
        return '?';
    }
    return c;
}

int cli_help(const char *usage)
{
    fputs(usage, stdout);
    return fflush(stdout) == 0 ? CLI_OK : CLI_EIO;
}

bool cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_duration(const char *s, int64_t *out_ms)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    uint64_t unit;
    if (end[0] == '\0' || strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        unit = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        unit = 86400 * 1000;
    else
        return false;
    const uint64_t max_ms = 10ull * 366 * 86400 * 1000;
    if (v == 0 || v > max_ms / unit)
        return false;
    *out_ms = (int64_t)(v * unit);
    return true;
}

bool cli_parse_id16(const char *s, uint8_t out[16])
{
    return s && cn_unhex(s, out, 16) == CASENET_OK;
}

bool cli_id_arg_ok(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++) {
        if (cn_hex_digit(s[i]) < 0)
            return false;
    }
    return len >= 1 && len <= 32;
}

void cli_id16_hex(const uint8_t id[16], char out[33])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 16; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[32] = '\0';
}

void cli_format_time(int64_t ms, bool utc, char *out, size_t cap)
{
    if (ms == 0) {
        snprintf(out, cap, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    bool ok = utc ? gmtime_r(&t, &tm) != NULL : localtime_r(&t, &tm) != NULL;
    if (!ok || strftime(out, cap, utc ? "%Y-%m-%d %H:%M:%S UTC" : "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
        snprintf(out, cap, "@%lld", (long long)ms);
}

void cli_format_iso(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    if (!gmtime_r(&t, &tm) || strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, cap, "@%lld", (long long)ms);
        return;
    }
    snprintf(out, cap, "%s.%03dZ", base, (int)(ms % 1000 < 0 ? 0 : ms % 1000));
}

int cli_read_stream(FILE *f, size_t max, casenet_buf *out)
{
    size_t cap = 4096, len = 0;
    uint8_t *data = malloc(cap);
    if (!data)
        return CASENET_ENOMEM;
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                free(data);
                return CASENET_ETOOLARGE;
            }
            uint8_t *bigger = realloc(data, cap * 2);
            if (!bigger) {
                free(data);
                return CASENET_ENOMEM;
            }
            data = bigger;
            cap *= 2;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                free(data);
                return CASENET_EIO;
            }
            break;
        }
    }
    if (len > max) {
        free(data);
        return CASENET_ETOOLARGE;
    }
    out->data = data;
    out->len = len;
    return CASENET_OK;
}

int cli_write_stdout(const void *data, size_t len)
{
    if (len > 0 && fwrite(data, 1, len, stdout) != len)
        return CASENET_EIO;
    return fflush(stdout) == 0 ? CASENET_OK : CASENET_EIO;
}

char *cli_path(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

static int mkdir_one(const char *dir)
{
    if (mkdir(dir, 0700) == 0)
        return CASENET_OK;
    struct stat st;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return CASENET_OK;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return CASENET_EIO;
}

int cli_mkdir(const char *dir)
{
    char *copy = strdup(dir);
    if (!copy)
        return CASENET_ENOMEM;
    int rc = CASENET_OK;
    for (char *p = copy + 1; *p && rc == CASENET_OK; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        rc = mkdir_one(copy);
        *p = '/';
    }
    if (rc == CASENET_OK)
        rc = mkdir_one(copy);
    free(copy);
    return rc;
}

bool cli_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Bytes of the first n UTF-8 characters of s (or all of it), and their
 * count in *chars. */
static size_t utf8_prefix(const char *s, size_t n, size_t *chars)
{
    size_t i = 0, c = 0;
    while (s[i]) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (c == n)
                break;
            c++;
        }
        i++;
    }
    *chars = c;
    return i;
}

void cli_cell(const char *s, size_t width, char *out, size_t cap)
{
    size_t chars = 0, len = utf8_prefix(s, width + 1, &chars);
    bool cut = chars > width;
    if (cut)
        len = utf8_prefix(s, width - 1, &chars);
    if (len + (width - chars) + 1 > cap) {
        snprintf(out, cap, "%s", "");
        return;
    }
    memcpy(out, s, len);
    size_t pad = width - chars - (cut ? 1 : 0);
    if (cut)
        out[len++] = '~';
    memset(out + len, ' ', pad);
    out[len + pad] = '\0';
}

void cli_table_line(bool wide, const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t chars = 0, len = utf8_prefix(line, CLI_TABLE_WIDTH + 1, &chars);
    while (len > 0 && line[len - 1] == ' ')
        len--; /* padding of the last cell */
    if (!wide && chars > CLI_TABLE_WIDTH) {
        len = utf8_prefix(line, CLI_TABLE_WIDTH - 1, &chars);
        line[len++] = '~';
    } else if (wide) {
        len = strlen(line);
    }
    fwrite(line, 1, len, stdout);
    fputc('\n', stdout);
    free(line);
}

void cli_member_label(const casenet_directory *dir, const char *id, bool wide, char *out,
                      size_t cap)
{
    casenet_member m;
    bool named = dir && casenet_directory_find(dir, id, &m) == CASENET_OK && m.display_name &&
                 m.display_name[0] && strcmp(m.display_name, id) != 0;
    if (!named)
        snprintf(out, cap, "%s", id);
    else if (wide)
        snprintf(out, cap, "%s (%s)", id, m.display_name);
    else
        snprintf(out, cap, "%s", m.display_name);
}

void cli_table_time(int64_t ms, bool wide, char *out, size_t cap)
{
    if (wide || ms == 0) {
        cli_format_time(ms, false, out, cap);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, cap, "%m-%d %H:%M", &tm) == 0)
        snprintf(out, cap, "@%lld", (long long)ms);
}

void cli_table_id(const uint8_t id[16], bool wide, char out[33])
{
    cli_id16_hex(id, out);
    if (!wide)
        out[CLI_TABLE_ID_DIGITS] = '\0';
}
