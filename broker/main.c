/*
 * main.c - casenetd: options and config file, start-up checks (keys, the
 * pinned authority key, the directory, the data directory and its store),
 * signal set-up, then the event loop until SIGTERM or SIGINT.
 */
#include "audit.h"
#include "broker.h"
#include "casenet.pb-c.h"
#include "directory_impl.h"
#include "log.h"
#include "server.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: casenetd --data DIR --listen ENDPOINT --key broker.key --directory FILE\n"
    "                --authority authority.pub [--policy FILE] [--config FILE]\n"
    "                [--check-config] [--verbose] [--help] [--version]\n"
    "\n"
    "  --data DIR         data directory (created 0700 if absent): casenet.db, directory.pb\n"
    "  --listen ENDPOINT  ZeroMQ endpoint to bind, e.g. tcp://0.0.0.0:7400\n"
    "  --key FILE         the broker's secret keyring (mode 0600)\n"
    "  --directory FILE   the signed directory (re-read on SIGHUP)\n"
    "  --authority FILE   the network authority's public key file (pinned)\n"
    "  --policy FILE      deadline policy, INI: a section per urgency ([emergency],\n"
    "                     [urgent-takedown], [standard], [info]) with deliver_within and\n"
    "                     accept_within, e.g. 90s, 15m, 12h, 2d, or none. Defaults:\n"
    "                     emergency 15m/1h, urgent-takedown 1h/24h, standard 24h/48h,\n"
    "                     info none/none\n"
    "  --config FILE      INI file: [broker] with the keys above (data, listen, key,\n"
    "                     directory, authority, policy), [limits] with max_envelope_bytes,\n"
    "                     max_recipients, clock_skew_s, batch_max, verify_threads (Submit\n"
    "                     verification off the loop; default one per core beyond the\n"
    "                     first, at most 4), per member: submit_rate, fetch_rate,\n"
    "                     receipt_rate, audit_rate (N/min or N/s; 0 = unlimited) and\n"
    "                     their _burst, max_inbox_backlog, max_pair_backlog (queued\n"
    "                     rows per sender and inbox), emergency_reserve_pct,\n"
    "                     member_quota_mb (stored envelopes per sender), fair_share,\n"
    "                     min_free_mb (disk reserve: Submit refused below it, the rest\n"
    "                     split per class; 0 = off).\n"
    "                     max_pending (requests of one member waiting for a batch),\n"
    "                     max_connections (per member; 0 = off), escalation_budget\n"
    "                     (notices about one sender's messages per\n"
    "                     escalation_period_s; 0 = off). Options override it.\n"
    "  --check-config     validate everything, print the result, exit 0 (valid) or 1\n"
    "  --verbose          log debug events too\n"
    "  --version          print the version and exit\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop cleanly; SIGHUP reloads the directory file.\n";

struct ini_state {
    struct broker_config *cfg;
    char error[256];
};

static void set_str(char **dst, const char *v)
{
    if (*dst)
        return; /* the command line wins */
    *dst = strdup(v);
}

static bool parse_u32(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || !end || *end || end == v || *v == '-' || n < min || n > max)
        return false;
    *out = (uint32_t)n;
    return true;
}

/* A rate: "N/min", "N/s" or a bare N (per second, as before per-minute
 * rates), into tokens per minute. 0 turns the bucket off. */
static bool parse_rate(const char *v, uint32_t *per_min)
{
    char num[16];
    const char *slash = strchr(v, '/');
    size_t n = slash ? (size_t)(slash - v) : strlen(v);
    uint32_t x = 0;
    if (n == 0 || n >= sizeof num)
        return false;
    memcpy(num, v, n);
    num[n] = '\0';
    if (!slash || strcmp(slash, "/s") == 0) {
        if (!parse_u32(num, 0, 1000000, &x))
            return false;
        *per_min = x * 60u;
        return true;
    }
    if (strcmp(slash, "/min") != 0 || !parse_u32(num, 0, 60000000, &x))
        return false;
    *per_min = x;
    return true;
}

/* [limits] <class>_rate and <class>_burst (member_limits.h). Returns 1
 * handled, 0 not a rate key; *ok tells whether the value parsed. */
static int on_rate_key(struct broker_limits *l, const char *name, const char *value, bool *ok)
{
    for (int i = 0; i < LIMITS_BUCKETS_N; i++) {
        const char *cls = limits_class_name((enum limits_class)i);
        size_t n = strlen(cls);
        if (strncmp(name, cls, n) != 0)
            continue;
        if (strcmp(name + n, "_rate") == 0) {
            *ok = l->rate_set[i] = parse_rate(value, &l->rate[i].per_min);
            return 1;
        }
        if (strcmp(name + n, "_burst") == 0) {
            *ok = parse_u32(value, 1, 10000000, &l->rate[i].burst);
            return 1;
        }
    }
    return 0;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct ini_state *st = user;
    struct broker_config *c = st->cfg;
    if (strcmp(section, "broker") == 0) {
        char **slot = strcmp(name, "data") == 0        ? &c->data_dir
                      : strcmp(name, "listen") == 0    ? &c->listen
                      : strcmp(name, "key") == 0       ? &c->key_path
                      : strcmp(name, "directory") == 0 ? &c->directory_path
                      : strcmp(name, "authority") == 0 ? &c->authority_path
                      : strcmp(name, "policy") == 0    ? &c->policy_path
                                                       : NULL;
        if (!slot) {
            snprintf(st->error, sizeof st->error, "unknown key [broker] %s", name);
            return 0;
        }
        set_str(slot, value);
        return 1;
    }
    if (strcmp(section, "limits") == 0) {
        struct broker_limits *l = &c->limits;
        bool ok;
        if (strcmp(name, "max_envelope_bytes") == 0)
            ok = parse_u32(value, 1024, 64u * 1024u * 1024u, &l->max_envelope_bytes);
        else if (strcmp(name, "max_recipients") == 0)
            ok = parse_u32(value, 1, CASENET_MAX_RECIPIENTS, &l->max_recipients);
        else if (strcmp(name, "clock_skew_s") == 0)
            ok = parse_u32(value, 1, 86400, &l->clock_skew_s);
        else if (strcmp(name, "batch_max") == 0)
            ok = parse_u32(value, 1, 65536, &l->batch_max);
        else if (strcmp(name, "verify_threads") == 0)
            ok = parse_u32(value, 0, BROKER_MAX_VERIFY_THREADS, &l->verify_threads);
        else if (on_rate_key(l, name, value, &ok))
            ;
        else if (strcmp(name, "max_inbox_backlog") == 0)
            ok = parse_u32(value, 1, UINT32_MAX, &l->max_inbox_backlog);
        else if (strcmp(name, "max_pair_backlog") == 0)
            ok = (l->pair_set = parse_u32(value, 0, UINT32_MAX, &l->max_pair_backlog));
        else if (strcmp(name, "emergency_reserve_pct") == 0)
            ok = (l->emergency_set = parse_u32(value, 0, 50, &l->emergency_pct));
        else if (strcmp(name, "member_quota_mb") == 0)
            ok = (l->quota_set = parse_u32(value, 0, UINT32_MAX / 2, &l->quota_mb));
        else if (strcmp(name, "fair_share") == 0)
            ok = parse_u32(value, 1, 65536, &l->fair_share);
        else if (strcmp(name, "min_free_mb") == 0)
            ok = (l->min_free_set = parse_u32(value, 0, 1024u * 1024u, &l->min_free_mb));
        else if (strcmp(name, "max_pending") == 0)
            ok = parse_u32(value, 1, 65536, &l->max_pending);
        else if (strcmp(name, "max_connections") == 0)
            ok = (l->max_connections_set = parse_u32(value, 0, 65536, &l->max_connections));
        else if (strcmp(name, "escalation_budget") == 0)
            ok = (l->escalation_budget_set = parse_u32(value, 0, 1000000, &l->escalation_budget));
        else if (strcmp(name, "escalation_period_s") == 0)
            ok = parse_u32(value, 1, 30u * 86400u, &l->escalation_period_s);
        else {
            snprintf(st->error, sizeof st->error, "unknown key [limits] %s", name);
            return 0;
        }
        if (!ok)
            snprintf(st->error, sizeof st->error, "[limits] %s = %s is not a valid number in range",
                     name, value);
        return ok;
    }
    snprintf(st->error, sizeof st->error, "unknown section [%s]", section);
    return 0;
}

static void config_free(struct broker_config *c)
{
    free(c->data_dir);
    free(c->listen);
    free(c->key_path);
    free(c->directory_path);
    free(c->authority_path);
    free(c->policy_path);
}

/* Fails with a message naming the first missing required setting. */
static bool config_complete(const struct broker_config *c)
{
    const char *missing = !c->data_dir         ? "--data"
                          : !c->listen         ? "--listen"
                          : !c->key_path       ? "--key"
                          : !c->directory_path ? "--directory"
                          : !c->authority_path ? "--authority"
                                               : NULL;
    if (missing) {
        fprintf(stderr, "casenetd: %s is required (on the command line or in --config)\n%s",
                missing, usage);
        return false;
    }
    return true;
}

/* Creates the data directory (0700) if absent and checks that it is
 * writable by creating and removing a file in it. */
static bool data_dir_ready(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "casenetd: cannot create data directory %s: %s\n", dir, strerror(errno));
        return false;
    }
    char *probe = NULL;
    if (asprintf(&probe, "%s/.casenetd-write-test", dir) < 0)
        return false;
    FILE *f = fopen(probe, "w");
    bool ok = f != NULL;
    if (f)
        fclose(f);
    if (ok)
        unlink(probe);
    else
        fprintf(stderr, "casenetd: data directory %s is not writable: %s\n", dir, strerror(errno));
    free(probe);
    return ok;
}

/* Parses one candidate, expired or not (an expired directory still starts
 * the broker: it serves reads and receipts, not new Submits); NULL when it
 * does not verify. */
static casenet_directory *candidate(struct broker *b, const char *what, const uint8_t *bytes,
                                    size_t len)
{
    casenet_directory *d = NULL;
    int rc = cn_directory_parse_ex(bytes, len, b->authority_pk, cn_now_ms(), 0, false, &d);
    if (rc != CASENET_OK) {
        log_event(LOG_WARN, "directory_candidate_refused", "source", what, "error",
                  casenet_errname(rc), "msg", casenet_strerror(rc), NULL);
        return NULL;
    }
    return d;
}

/* Keeps d in *best when it is newer; frees it otherwise. */
static void consider(casenet_directory *d, casenet_directory **best)
{
    if (!d)
        return;
    if (*best && casenet_directory_version(*best) >= casenet_directory_version(d)) {
        casenet_directory_free(d);
        return;
    }
    casenet_directory_free(*best);
    *best = d;
}

/* Chooses the directory to serve: the highest version that verifies among
 * the --directory file, the copy in the data directory and the store,
 * expired or not. Never one below the highest version the store accepted
 * (a restart must not roll back a revocation), and it must follow the
 * store's (cn_directory_check_successor) and list this broker with its
 * CURVE key. */
static int choose_directory(struct broker *b)
{
    casenet_directory *best = NULL, *stored = NULL;
    casenet_buf buf = {0};
    uint64_t stored_version = 0;
    char why[320];
    int rc = cn_read_file(b->cfg->directory_path, DIRECTORY_MAX, &buf);
    if (rc == CASENET_OK)
        consider(candidate(b, b->cfg->directory_path, buf.data, buf.len), &best);
    else
        fprintf(stderr, "casenetd: cannot read directory %s: %s\n", b->cfg->directory_path,
                casenet_strerror(rc));
    casenet_buf_free(&buf);
    char *copy = NULL;
    if (asprintf(&copy, "%s/%s", b->cfg->data_dir, BROKER_DIRECTORY_FILE) < 0)
        copy = NULL;
    if (copy && access(copy, F_OK) == 0 && cn_read_file(copy, DIRECTORY_MAX, &buf) == CASENET_OK)
        consider(candidate(b, copy, buf.data, buf.len), &best);
    casenet_buf_free(&buf);
    if (store_directory_latest(b->store, &buf, &stored_version) == CASENET_OK &&
        (stored = candidate(b, "store", buf.data, buf.len)) &&
        casenet_directory_version(stored) != stored_version) {
        casenet_directory_free(stored); /* a row whose bytes are another version */
        stored = NULL;
    }
    casenet_buf_free(&buf);
    rc = CASENET_EBADREQ;
    if (!best && !stored) {
        fprintf(stderr,
                "casenetd: no valid directory: it must verify with the authority key %s "
                "(see the log above)\n",
                b->cfg->authority_path);
        goto cleanup;
    }
    uint64_t v = best ? casenet_directory_version(best) : 0;
    if (stored && v <= stored_version) {
        casenet_directory_free(best);
        best = stored;
        stored = NULL;
    } else if (v < stored_version) {
        rc = CASENET_EROLLBACK;
        fprintf(stderr,
                "casenetd: the store accepted directory version %llu, but the newest directory "
                "that verifies is version %llu (%s, %s): the broker never starts from an older "
                "one; give --directory a directory of version %llu or higher signed by the "
                "authority key %s\n",
                (unsigned long long)stored_version, (unsigned long long)v, b->cfg->directory_path,
                copy ? copy : BROKER_DIRECTORY_FILE, (unsigned long long)stored_version,
                b->cfg->authority_path);
        goto cleanup;
    } else if (stored &&
               cn_directory_check_successor(stored, best, why, sizeof why) != CASENET_OK) {
        rc = CASENET_ECONFLICT;
        fprintf(stderr, "casenetd: refusing directory version %llu (%s): %s\n",
                (unsigned long long)v, b->cfg->directory_path, why);
        goto cleanup;
    }
    casenet_member me;
    if (casenet_directory_broker(best, &me) != CASENET_OK || strcmp(me.id, b->broker_id) != 0 ||
        !me.curve_pk || me.status != CASENET_MEMBER_ACTIVE ||
        memcmp(me.curve_pk, casenet_keys_curve_pk(b->keys), CASENET_CURVE_KEY_BYTES) != 0) {
        fprintf(stderr,
                "casenetd: directory version %llu does not list this broker (%s), active, with "
                "the CURVE key of %s; add the broker to the directory\n",
                (unsigned long long)casenet_directory_version(best), b->broker_id,
                b->cfg->key_path);
        goto cleanup;
    }
    b->dir = best;
    best = NULL;
    rc = CASENET_OK;
cleanup:
    casenet_directory_free(stored);
    casenet_directory_free(best);
    free(copy);
    return rc;
}

/* Why a file given on the command line did not load: "no such file" when it
 * does not exist rather than the I/O error it reads as. */
static const char *load_error(int rc, const char *path)
{
    struct stat st;
    if (rc == CASENET_EIO && stat(path, &st) != 0 && errno == ENOENT)
        return "no such file";
    return casenet_strerror(rc);
}

/* Prints the deadlines in force, one urgency a line (--check-config). */
static void print_policy(const struct broker_policy *p, const char *path)
{
    static const char *const names[] = {"", "emergency", "urgent-takedown", "standard", "info"};
    printf("casenetd: deadlines (%s):\n", path ? path : "defaults");
    for (int u = CASENET_URGENCY_EMERGENCY; u <= CASENET_URGENCY_INFO; u++) {
        char d[32], a[32];
        policy_format_duration(p->by_urgency[u].deliver_ms, d, sizeof d);
        policy_format_duration(p->by_urgency[u].accept_ms, a, sizeof a);
        printf("  %-16s deliver_within = %-6s accept_within = %s\n", names[u], d, a);
    }
}

/* Records the start (and a directory the store did not hold yet). */
static int record_start(struct broker *b)
{
    struct store *s = b->store;
    casenet_buf latest = {0};
    uint64_t stored = 0;
    int rc = store_directory_latest(s, &latest, &stored);
    casenet_buf_free(&latest);
    if (rc != CASENET_OK && rc != CASENET_ENOTFOUND)
        return rc;
    uint64_t v = casenet_directory_version(b->dir);
    int64_t now = cn_now_ms();
    if ((rc = store_begin(s)) != CASENET_OK)
        return rc;
    if (v > stored) {
        size_t len = 0;
        const uint8_t *bytes = casenet_directory_bytes(b->dir, &len);
        rc = store_directory_save(s, v, bytes, len, now);
        if (rc == CASENET_OK)
            rc = audit_directory(s, now, "", v, "loaded at start-up", NULL);
    }
    if (rc == CASENET_OK)
        rc = audit_broker(s, now, CASENET__V1__AUDIT_KIND__AUDIT_KIND_BROKER_START, v,
                          "casenetd " CASENET_VERSION_STRING, NULL);
    if (rc == CASENET_OK)
        return store_commit(s);
    store_rollback(s);
    return rc;
}

int main(int argc, char **argv)
{
    struct broker_config cfg = {0};
    struct broker b = {.cfg = &cfg};
    const char *config_path = NULL;
    bool check = false;
    int exit_code = 1;
    int sigfd = -1;
    struct server *srv = NULL;
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"key", required_argument, NULL, 'k'},
        {"directory", required_argument, NULL, 'D'},
        {"authority", required_argument, NULL, 'a'},
        {"policy", required_argument, NULL, 'p'},
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("casenetd %s\n", CASENET_VERSION_STRING);
        return 0;
    }
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            free(cfg.data_dir);
            cfg.data_dir = strdup(optarg);
            break;
        case 'l':
            free(cfg.listen);
            cfg.listen = strdup(optarg);
            break;
        case 'k':
            free(cfg.key_path);
            cfg.key_path = strdup(optarg);
            break;
        case 'D':
            free(cfg.directory_path);
            cfg.directory_path = strdup(optarg);
            break;
        case 'a':
            free(cfg.authority_path);
            cfg.authority_path = strdup(optarg);
            break;
        case 'p':
            free(cfg.policy_path);
            cfg.policy_path = strdup(optarg);
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'C':
            check = true;
            break;
        case 'v':
            log_set_level(LOG_DEBUG);
            break;
        case 'h':
            fputs(usage, stdout);
            config_free(&cfg);
            return 0;
        default:
            fputs(usage, stderr);
            config_free(&cfg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "casenetd: unexpected argument %s\n%s", argv[optind], usage);
        config_free(&cfg);
        return 2;
    }
    cfg.limits.verify_threads = UINT32_MAX; /* not given */
    if (config_path) {
        struct ini_state st = {.cfg = &cfg};
        int line = ini_parse(config_path, on_ini, &st);
        if (line != 0) {
            if (line < 0)
                fprintf(stderr, "casenetd: cannot read config %s\n", config_path);
            else
                fprintf(stderr, "casenetd: %s:%d: %s\n", config_path, line,
                        st.error[0] ? st.error : "syntax error");
            goto cleanup;
        }
    }
    if (!cfg.limits.max_envelope_bytes)
        cfg.limits.max_envelope_bytes = BROKER_DEFAULT_MAX_ENVELOPE;
    if (!cfg.limits.max_recipients)
        cfg.limits.max_recipients = BROKER_DEFAULT_MAX_RCPTS;
    if (!cfg.limits.clock_skew_s)
        cfg.limits.clock_skew_s = BROKER_DEFAULT_CLOCK_SKEW_S;
    if (!cfg.limits.batch_max)
        cfg.limits.batch_max = BROKER_DEFAULT_BATCH_MAX;
    if (cfg.limits.verify_threads == UINT32_MAX) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.limits.verify_threads = cores > 5 ? 4u : cores > 1 ? (uint32_t)(cores - 1) : 0u;
    }
    static const struct limits_rate default_rates[LIMITS_BUCKETS_N] = {
        [LIMITS_SUBMIT] = {LIMITS_DEFAULT_SUBMIT_PER_MIN, LIMITS_DEFAULT_SUBMIT_BURST},
        [LIMITS_FETCH] = {LIMITS_DEFAULT_FETCH_PER_MIN, LIMITS_DEFAULT_FETCH_BURST},
        [LIMITS_RECEIPT] = {LIMITS_DEFAULT_RECEIPT_PER_MIN, LIMITS_DEFAULT_RECEIPT_BURST},
        [LIMITS_AUDIT] = {LIMITS_DEFAULT_AUDIT_PER_MIN, LIMITS_DEFAULT_AUDIT_BURST},
    };
    for (int i = 0; i < LIMITS_BUCKETS_N; i++) {
        struct limits_rate *r = &cfg.limits.rate[i];
        if (!cfg.limits.rate_set[i])
            r->per_min = default_rates[i].per_min;
        if (!r->burst) /* a rate given alone: one minute's worth */
            r->burst = cfg.limits.rate_set[i] ? r->per_min : default_rates[i].burst;
    }
    if (!cfg.limits.max_inbox_backlog)
        cfg.limits.max_inbox_backlog = LIMITS_DEFAULT_INBOX_BACKLOG;
    if (!cfg.limits.pair_set)
        cfg.limits.max_pair_backlog = LIMITS_DEFAULT_PAIR_BACKLOG;
    if (!cfg.limits.emergency_set)
        cfg.limits.emergency_pct = LIMITS_DEFAULT_EMERGENCY_PCT;
    if (!cfg.limits.quota_set)
        cfg.limits.quota_mb = LIMITS_DEFAULT_QUOTA_MB;
    if (!cfg.limits.fair_share)
        cfg.limits.fair_share = LIMITS_DEFAULT_FAIR_SHARE;
    if (!cfg.limits.min_free_set)
        cfg.limits.min_free_mb = LIMITS_DEFAULT_MIN_FREE_MB;
    if (!cfg.limits.max_pending)
        cfg.limits.max_pending = LIMITS_DEFAULT_MAX_PENDING;
    if (!cfg.limits.max_connections_set)
        cfg.limits.max_connections = LIMITS_DEFAULT_MAX_CONNECTIONS;
    if (!cfg.limits.escalation_budget_set)
        cfg.limits.escalation_budget = LIMITS_DEFAULT_ESC_BUDGET;
    if (!cfg.limits.escalation_period_s)
        cfg.limits.escalation_period_s = LIMITS_DEFAULT_ESC_PERIOD_S;
    if (!config_complete(&cfg))
        goto cleanup;
    if (!cn_endpoint_valid(cfg.listen, true)) {
        fprintf(stderr,
                "casenetd: invalid listen endpoint '%s': expected " CN_ENDPOINT_FORMS
                "; every interface: tcp://0.0.0.0:7400\n",
                cfg.listen);
        goto cleanup;
    }
    policy_defaults(&b.policy);
    if (cfg.policy_path) {
        char err[320];
        if (policy_load(cfg.policy_path, &b.policy, err, sizeof err) != CASENET_OK) {
            fprintf(stderr, "casenetd: %s\n", err);
            goto cleanup;
        }
    }
    if (casenet_init() != CASENET_OK) {
        fprintf(stderr, "casenetd: libsodium failed to initialise\n");
        goto cleanup;
    }
    umask(077);
    signal(SIGPIPE, SIG_IGN);

    int rc = casenet_keys_load(cfg.key_path, &b.keys);
    if (rc != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot load the broker key %s: %s%s\n", cfg.key_path,
                load_error(rc, cfg.key_path), rc == CASENET_EPERM ? " (chmod 600 it)" : "");
        goto cleanup;
    }
    b.broker_id = casenet_keys_member_id(b.keys);
    if (!casenet_keys_curve_sk(b.keys)) {
        fprintf(stderr, "casenetd: %s holds no CURVE transport key\n", cfg.key_path);
        goto cleanup;
    }
    if ((rc = casenet_authority_pk_load(cfg.authority_path, b.authority_pk)) != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot load the authority key %s: %s\n", cfg.authority_path,
                load_error(rc, cfg.authority_path));
        goto cleanup;
    }
    if (!(b.limits = limits_new(cfg.limits.rate))) {
        fprintf(stderr, "casenetd: out of memory\n");
        goto cleanup;
    }
    limits_set_escalation(b.limits, cfg.limits.escalation_budget,
                          (int64_t)cfg.limits.escalation_period_s * 1000);
    if (!data_dir_ready(cfg.data_dir))
        goto cleanup;
    if ((rc = store_open(cfg.data_dir, &b.store)) != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot open the store in %s: %s\n", cfg.data_dir,
                casenet_strerror(rc));
        goto cleanup;
    }
    if (choose_directory(&b) != CASENET_OK)
        goto cleanup;
    broker_warn_expiry(b.dir, check);
    if (check) {
        printf("casenetd: configuration OK: broker %s, directory version %llu (expires %s), "
               "data %s, listen %s\n",
               b.broker_id, (unsigned long long)casenet_directory_version(b.dir),
               log_utc(casenet_directory_expires_at(b.dir)), cfg.data_dir, cfg.listen);
        print_policy(&b.policy, cfg.policy_path);
        exit_code = 0;
        goto cleanup;
    }

    /* Signals go to a signalfd polled by the loop. Blocked before the
     * ZeroMQ context exists, so its threads inherit the mask. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        fprintf(stderr, "casenetd: signalfd: %s\n", strerror(errno));
        goto cleanup;
    }
    if ((rc = record_start(&b)) != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot write to the store: %s\n", casenet_strerror(rc));
        goto cleanup;
    }
    if ((rc = server_open(&b, sigfd, &srv)) != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot listen on %s (see the log above)\n", cfg.listen);
        goto cleanup;
    }
    exit_code = server_run(srv) == CASENET_OK ? 0 : 1;
cleanup:
    server_close(srv);
    if (sigfd >= 0)
        close(sigfd);
    if (b.store)
        store_close(b.store);
    casenet_directory_free(b.dir);
    casenet_keys_free(b.keys);
    limits_free(b.limits);
    config_free(&cfg);
    return exit_code;
}
