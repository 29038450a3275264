/* log.c - one key=value line per broker event on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    min_level = level;
}

static const char *level_name(enum log_level l)
{
    switch (l) {
    case LOG_DEBUG:
        return "debug";
    case LOG_INFO:
        return "info";
    case LOG_WARN:
        return "warn";
    case LOG_ERROR:
        return "error";
    }
    return "info";
}

/* Appends s[0..len) when it fits whole in line[*n..cap) with `keep` bytes to
 * spare; otherwise appends nothing and returns false. */
static bool put(char *line, size_t *n, size_t cap, size_t keep, const char *s, size_t len)
{
    if (len + keep > cap - *n)
        return false;
    memcpy(line + *n, s, len);
    *n += len;
    return true;
}

static bool needs_quotes(const char *v)
{
    if (!*v)
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    return false;
}

/* Appends v, quoted and escaped when needed, into line[*n..cap), which must
 * have room for two bytes. A value too long is cut between characters or
 * escapes, keeping its closing quote; returns false when it was cut. */
static bool put_value(char *line, size_t *n, size_t cap, const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    if (!needs_quotes(v)) {
        for (; *p; p++)
            if (!put(line, n, cap, 0, (const char *)p, 1))
                return false;
        return true;
    }
    bool whole = put(line, n, cap, 1, "\"", 1);
    for (; *p && whole; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            whole = put(line, n, cap, 1, esc, 2);
        } else if (*p < ' ' || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            whole = put(line, n, cap, 1, esc, 4);
        } else {
            whole = put(line, n, cap, 1, (const char *)p, 1);
        }
    }
    (void)put(line, n, cap, 0, "\"", 1);
    return whole;
}

void log_event(enum log_level level, const char *event, ...)
{
    if (level < min_level)
        return;
    char line[LOG_LINE_MAX];
    size_t n = 0;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int w = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_name(level));
    if (w < 0 || (size_t)w >= sizeof line - 1)
        return;
    n = (size_t)w;
    /* Room is kept for the newline; once a value is cut, later pairs are
     * left out rather than cut too, so the line still splits into pairs. */
    const size_t cap = sizeof line - 1;
    bool whole = put_value(line, &n, cap, event);
    va_list ap;
    va_start(ap, event);
    while (whole) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        const char *val = va_arg(ap, const char *);
        if (!val)
            continue;
        /* " key=" and at least two bytes of value, or nothing. */
        whole = put(line, &n, cap, strlen(key) + 3, " ", 1) &&
                put(line, &n, cap, 3, key, strlen(key)) && put(line, &n, cap, 2, "=", 1) &&
                put_value(line, &n, cap, val);
    }
    va_end(ap);
    line[n++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
}

const char *log_hex(const uint8_t *in, size_t len)
{
    static _Thread_local char bufs[4][129];
    static _Thread_local unsigned next;
    static const char digits[] = "0123456789abcdef";
    char *out = bufs[next++ % 4];
    if (len > 64)
        len = 64;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

const char *log_u64(uint64_t v)
{
    static _Thread_local char bufs[LOG_U64_BUFS][24];
    static _Thread_local unsigned next;
    char *out = bufs[next++ % LOG_U64_BUFS];
    snprintf(out, sizeof bufs[0], "%llu", (unsigned long long)v);
    return out;
}

const char *log_utc(int64_t ms)
{
    static _Thread_local char bufs[4][80];
    static _Thread_local unsigned next;
    char *out = bufs[next++ % 4];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || !gmtime_r(&t, &tm))
        snprintf(out, sizeof bufs[0], "%lld ms", (long long)ms);
    else
        snprintf(out, sizeof bufs[0], "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return out;
}
