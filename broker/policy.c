/* policy.c - the deadline policy file and its defaults (see policy.h). */
#include "policy.h"

#include "casenet.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_PER_S 1000LL

static const struct {
    const char *name;
    int urgency; /* proto Urgency */
} sections[] = {
    {"emergency", CASENET_URGENCY_EMERGENCY},
    {"urgent-takedown", CASENET_URGENCY_URGENT_TAKEDOWN},
    {"standard", CASENET_URGENCY_STANDARD},
    {"info", CASENET_URGENCY_INFO},
};
#define N_SECTIONS (sizeof sections / sizeof sections[0])

void policy_defaults(struct broker_policy *p)
{
    memset(p, 0, sizeof *p);
    const int64_t m = 60 * MS_PER_S, h = 60 * m;
    p->by_urgency[CASENET_URGENCY_EMERGENCY] = (struct policy_entry){15 * m, 1 * h};
    p->by_urgency[CASENET_URGENCY_URGENT_TAKEDOWN] = (struct policy_entry){1 * h, 24 * h};
    p->by_urgency[CASENET_URGENCY_STANDARD] = (struct policy_entry){24 * h, 48 * h};
    p->by_urgency[CASENET_URGENCY_INFO] = (struct policy_entry){0, 0};
}

const struct policy_entry *policy_for(const struct broker_policy *p, int urgency)
{
    if (urgency < CASENET_URGENCY_EMERGENCY || urgency > CASENET_URGENCY_INFO)
        urgency = CASENET_URGENCY_STANDARD;
    return &p->by_urgency[urgency];
}

int policy_parse_duration(const char *s, int64_t *ms)
{
    if (!s)
        return -1;
    if (strcmp(s, "0") == 0 || strcmp(s, "none") == 0) {
        *ms = 0;
        return 0;
    }
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || !end || end == s || n == 0 || end[0] == '\0' || end[1] != '\0')
        return -1;
    long long unit;
    switch (end[0]) {
    case 's':
        unit = MS_PER_S;
        break;
    case 'm':
        unit = 60 * MS_PER_S;
        break;
    case 'h':
        unit = 3600 * MS_PER_S;
        break;
    case 'd':
        unit = 86400 * MS_PER_S;
        break;
    default:
        return -1;
    }
    if (n > (unsigned long long)(POLICY_MAX_MS / unit))
        return -1;
    *ms = (int64_t)n * unit;
    return 0;
}

void policy_format_duration(int64_t ms, char *out, size_t cap)
{
    static const struct {
        long long unit;
        char suffix;
    } units[] = {{86400 * MS_PER_S, 'd'}, {3600 * MS_PER_S, 'h'}, {60 * MS_PER_S, 'm'}};
    if (ms <= 0) {
        snprintf(out, cap, "none");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        /* Days only from three on: "24h" and "48h" read better than "1d". */
        if (units[i].suffix == 'd' && ms < 3 * units[i].unit)
            continue;
        if (ms % units[i].unit == 0) {
            snprintf(out, cap, "%lld%c", (long long)(ms / units[i].unit), units[i].suffix);
            return;
        }
    }
    if (ms % MS_PER_S == 0)
        snprintf(out, cap, "%llds", (long long)(ms / MS_PER_S));
    else
        snprintf(out, cap, "%lldms", (long long)ms);
}

struct load_state {
    struct broker_policy p;
    char error[200];
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct load_state *st = user;
    int urgency = -1;
    for (size_t i = 0; i < N_SECTIONS; i++) {
        if (strcmp(section, sections[i].name) == 0)
            urgency = sections[i].urgency;
    }
    if (urgency < 0) {
        snprintf(st->error, sizeof st->error,
                 "unknown section [%s]; expected emergency, urgent-takedown, standard or info",
                 section);
        return 0;
    }
    int64_t *slot = strcmp(name, "deliver_within") == 0  ? &st->p.by_urgency[urgency].deliver_ms
                    : strcmp(name, "accept_within") == 0 ? &st->p.by_urgency[urgency].accept_ms
                                                         : NULL;
    if (!slot) {
        snprintf(st->error, sizeof st->error,
                 "unknown key [%s] %s; expected deliver_within or accept_within", section, name);
        return 0;
    }
    if (policy_parse_duration(value, slot) != 0) {
        snprintf(st->error, sizeof st->error,
                 "[%s] %s = '%s' is not a duration: write e.g. 90s, 15m, 12h, 2d (at most "
                 "366d), or none",
                 section, name, value);
        return 0;
    }
    return 1;
}

/* An fgets for ini_parse_stream that stops after `left` lines (inih counts
 * one line per call). */
struct line_reader {
    FILE *f;
    int left;
};

static char *read_lines(char *buf, int size, void *stream)
{
    struct line_reader *r = stream;
    if (r->left <= 0)
        return NULL;
    r->left--;
    return fgets(buf, size, r->f);
}

int policy_load(const char *path, struct broker_policy *p, char *err, size_t errlen)
{
    struct load_state st;
    st.p = *p;
    st.error[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read policy file %s: %s", path, strerror(errno));
        return CASENET_EIO;
    }
    int line = ini_parse_file(f, on_ini, &st);
    if (ferror(f)) { /* e.g. a directory: fopen succeeds, reading fails */
        fclose(f);
        snprintf(err, errlen, "cannot read policy file %s: not a readable file", path);
        return CASENET_EIO;
    }
    if (line > 0) {
        /* inih reports the first bad line but goes on parsing, so st.error
         * may describe a later one: read again up to that line only. */
        struct line_reader r = {.f = f, .left = line};
        rewind(f);
        st.p = *p;
        st.error[0] = '\0';
        (void)ini_parse_stream(read_lines, &r, on_ini, &st);
    }
    fclose(f);
    if (line != 0) {
        snprintf(err, errlen, "%s:%d: %s", path, line,
                 st.error[0] ? st.error : "syntax error (expected [section] or key = value)");
        return CASENET_EINVAL;
    }
    *p = st.p;
    return CASENET_OK;
}
