/*
 * main.c - casenetd: the command line and config file (config.h), start-up
 * checks (keys, the pinned authority key, the directory, the data directory and its store),
 * signal set-up, then the event loop until SIGTERM or SIGINT.
 */
#include "admin.h"
#include "audit.h"
#include "backup.h"
#include "broker.h"
#include "config.h"
#include "casenet.pb-c.h"
#include "directory_impl.h"
#include "log.h"
#include "migrate.h"
#include "metrics.h"
#include "notify.h"
#include "restore.h"
#include "server.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static const char usage_head[] =
    "usage: casenetd --data DIR --listen ENDPOINT --key FILE --directory FILE\n"
    "                --authority FILE [--config FILE] [OPTION...]\n"
    "       casenetd --check-config [--config FILE] [OPTION...]\n"
    "       casenetd backup --data DIR --out FILE\n"
    "       casenetd verify-backup FILE --authority FILE\n"
    "       casenetd restore FILE --data DIR [--force]\n"
    "       casenetd restore --new-epoch|--replay EXPORT [--last-head FILE] --config FILE\n"
    "       casenetd migrate --from SPEC --to SPEC\n"
    "       casenetd --help | --help-config | --version\n"
    "\n"
    "  --config FILE           INI file: [broker] and [limits] with a key for every option\n"
    "                          below (casenetd --help-config prints the reference); the\n"
    "                          command line wins over it\n"
    "  --check-config          validate everything without side effects (no directory,\n"
    "                          database or audit event is created, nothing binds), print\n"
    "                          the options in effect, exit 0 (valid) or 1\n"
    "  --verbose               log debug events too\n"
    "  backup, verify-backup, restore: an online backup of the data directory (store,\n"
    "                          directory and attachment blobs), its check, and its\n"
    "                          restore; a restored store serves only after\n"
    "                          restore --replay or --new-epoch (docs/operations.md)\n"
    "  migrate                 copy a stopped broker's store into an empty one of another\n"
    "                          backend (sqlite:DIR to postgresql://...) and check its audit\n"
    "                          tree (docs/operations.md \"PostgreSQL\")\n"
    "  --help                  print this help\n"
    "  --help-config[=FORMAT]  print the INI reference: markdown (the default,\n"
    "                          docs/configuration.md), scdoc (casenetd.conf(5)) or\n"
    "                          scdoc-flags (casenetd(8)'s options)\n"
    "  --version               print the version and the libraries' versions\n"
    "\n"
    "Options (SIZE: 64KB, 1MB; DURATION: 90s, 15m, 12h, 2d; RATE: N/min or N/s):\n";

static const char usage_tail[] =
    "\n"
    "The policy file (--policy) is INI: a section per urgency ([emergency],\n"
    "[urgent-takedown], [standard], [info]) with deliver_within and accept_within, e.g. 90s,\n"
    "15m, 12h, 2d, or none. Defaults: emergency 15m/1h, urgent-takedown 1h/24h, standard\n"
    "24h/48h, info none/none.\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop cleanly; SIGHUP reloads the directory file.\n";

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
    if (b->store && /* NULL: --check-config before the first start */
        store_directory_latest(b->store, &buf, &stored_version) == CASENET_OK &&
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

/* --check-config's view of the data directory, creating nothing: it exists
 * and is writable, or its parent lets the start create it. */
static bool data_dir_checked(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
            fprintf(stderr, "casenetd: data directory %s is not a writable directory: %s\n", dir,
                    S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
            return false;
        }
        return true;
    }
    char *parent = strdup(dir);
    bool ok = parent && errno == ENOENT && access(dirname(parent), W_OK | X_OK) == 0;
    if (ok)
        printf("casenetd: data directory %s does not exist yet: the start creates it (0700)\n",
               dir);
    else
        fprintf(stderr, "casenetd: cannot create data directory %s: %s\n", dir, strerror(errno));
    free(parent);
    return ok;
}

/* The directory of a SQLite store spec (store_open's forms: "sqlite:DIR"
 * or DIR), "" for a PostgreSQL URI (no directory), or NULL with a message
 * when the spec names another backend. */
static const char *store_dir(const char *spec)
{
    if (strncmp(spec, "sqlite:", 7) == 0 && spec[7] != '\0')
        return spec + 7;
    if (strncmp(spec, "postgresql://", 13) == 0 || strncmp(spec, "postgres://", 11) == 0)
        return "";
    if (!strstr(spec, "://") && strncmp(spec, "sqlite:", 7) != 0)
        return spec;
    fprintf(stderr, "casenetd: store = %s: unknown store; use sqlite:DIR or postgresql://...\n",
            spec);
    return NULL;
}

/* Opens the store of cfg->store_spec into b->store. With check (for
 * --check-config) only a database that exists already, read to compare
 * directory versions, and b->store stays NULL otherwise. */
static bool open_store(struct broker *b, bool check)
{
    const char *spec = b->cfg->store_spec, *dir = store_dir(spec);
    if (!dir)
        return false;
    if (check && !*dir)
        return true; /* PostgreSQL: not opened by --check-config */
    if (check) {
        char *db = NULL;
        if (asprintf(&db, "%s/casenet.db", dir) < 0)
            return false;
        bool exists = access(db, F_OK) == 0;
        free(db);
        if (!exists)
            return true;
    }
    int rc = store_open(spec, &b->store);
    if (rc != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot open the store %s: %s\n", spec, casenet_strerror(rc));
        return false;
    }
    return true;
}

static void print_version(void)
{
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    printf("casenetd %s\nlibzmq %d.%d.%d, libsodium %s, SQLite %s\n", CASENET_VERSION_STRING, major,
           minor, patch, sodium_version_string(), sqlite3_libversion());
}

enum {
    OPT_CONFIG = 1000,
    OPT_CHECK,
    OPT_VERBOSE,
    OPT_HELP,
    OPT_HELP_CONFIG,
    OPT_VERSION,
    OPT_NEW_EPOCH,
    OPT_REPLAY,
    OPT_LAST_HEAD
};

/* The command line into conf (the table's flags) and the rest. Returns -1
 * to go on, or the exit code. */
static int parse_args(int argc, char **argv, struct config *conf, const char **config_path,
                      bool *check, struct restore_choice *restore)
{
    static struct option opts[CONFIG_OPTIONS_MAX + 10];
    static const struct option fixed[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"help", no_argument, NULL, OPT_HELP},
        {"help-config", optional_argument, NULL, OPT_HELP_CONFIG},
        {"version", no_argument, NULL, OPT_VERSION},
        {"new-epoch", no_argument, NULL, OPT_NEW_EPOCH},
        {"replay", required_argument, NULL, OPT_REPLAY},
        {"last-head", required_argument, NULL, OPT_LAST_HEAD},
    };
    size_t n = config_count();
    for (size_t i = 0; i < n; i++)
        opts[i] = (struct option){config_options[i].flag, required_argument, NULL, (int)i};
    memcpy(&opts[n], fixed, sizeof fixed);
    opts[n + sizeof fixed / sizeof fixed[0]] = (struct option){0};
    int o;
    char err[320];
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o >= 0 && (size_t)o < n) {
            if (config_set(conf, (size_t)o, optarg, CONFIG_FLAG, err, sizeof err) != CASENET_OK) {
                fprintf(stderr, "casenetd: %s\n", err);
                return 1;
            }
            continue;
        }
        switch (o) {
        case OPT_CONFIG:
            *config_path = optarg;
            break;
        case OPT_CHECK:
            *check = true;
            break;
        case OPT_VERBOSE:
            log_set_level(LOG_DEBUG);
            break;
        case OPT_HELP:
            fputs(usage_head, stdout);
            config_print_help(stdout);
            fputs(usage_tail, stdout);
            return 0;
        case OPT_HELP_CONFIG: {
            enum config_doc fmt;
            if (config_doc_parse(optarg, &fmt) != CASENET_OK) {
                fputs("casenetd: --help-config=FORMAT: markdown, scdoc or scdoc-flags\n", stderr);
                return 2;
            }
            config_print_reference(stdout, fmt);
            return 0;
        }
        case OPT_VERSION:
            print_version();
            return 0;
        case OPT_NEW_EPOCH:
        case OPT_REPLAY:
        case OPT_LAST_HEAD:
            if (!restore) {
                fputs("casenetd: --new-epoch, --replay and --last-head go with casenetd restore\n",
                      stderr);
                return 2;
            }
            restore->new_epoch |= o == OPT_NEW_EPOCH;
            if (o == OPT_REPLAY)
                restore->replay = optarg;
            if (o == OPT_LAST_HEAD)
                restore->last_head = optarg;
            break;
        default:
            fputs("casenetd --help lists the options\n", stderr);
            return 2;
        }
    }
    if (restore && restore->new_epoch == !!restore->replay) {
        fputs("casenetd: restore: choose one of --new-epoch and --replay EXPORT\n", stderr);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "casenetd: unexpected argument %s; casenetd --help lists the options\n",
                argv[optind]);
        return 2;
    }
    return -1;
}

/* The config file over the flags, then the defaults. */
static bool configure(struct config *conf, const char *config_path)
{
    char err[400];
    if ((config_path && config_load_file(conf, config_path, err, sizeof err) != CASENET_OK) ||
        config_finish(conf, err, sizeof err) != CASENET_OK) {
        fprintf(stderr, "casenetd: %s\n", err);
        return false;
    }
    return true;
}

/* The broker's keyring and the pinned authority key. */
static bool load_identity(struct broker *b)
{
    const struct broker_config *cfg = b->cfg;
    int rc = casenet_keys_load(cfg->key_path, &b->keys);
    if (rc != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot load the broker key %s: %s%s\n", cfg->key_path,
                load_error(rc, cfg->key_path), rc == CASENET_EPERM ? " (chmod 600 it)" : "");
        return false;
    }
    b->broker_id = casenet_keys_member_id(b->keys);
    if (!casenet_keys_curve_sk(b->keys)) {
        fprintf(stderr, "casenetd: %s holds no CURVE transport key\n", cfg->key_path);
        return false;
    }
    if ((rc = casenet_authority_pk_load(cfg->authority_path, b->authority_pk)) != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot load the authority key %s: %s\n", cfg->authority_path,
                load_error(rc, cfg->authority_path));
        return false;
    }
    return true;
}

/* False (with the explanation printed) when the store in the data
 * directory was restored and the operator has not decided yet. */
static bool not_restored(const char *data_dir)
{
    bool present = false;
    struct backup_marker m;
    if (backup_marker_get(data_dir, &present, &m) != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot read the store in %s\n", data_dir);
        return false;
    }
    if (present) {
        log_event(LOG_ERROR, "store_restored", "data", data_dir, "restored_size",
                  log_u64(m.restored_size), "msg",
                  "restored from a backup: run casenetd restore --replay or --new-epoch", NULL);
        backup_marker_explain(data_dir, &m);
    }
    return !present;
}

/* casenetd restore --new-epoch | --replay: the decision on a restored
 * store (restore.h). Returns the exit code. */
static int resolve(struct broker *b, const struct restore_choice *c)
{
    if (!store_dir(b->cfg->store_spec) || !data_dir_checked(b->cfg->data_dir) ||
        !open_store(b, false) || choose_directory(b) != CASENET_OK)
        return 1;
    return restore_resolve(b, c);
}

/* --check-config: everything a start checks, without its side effects.
 * Returns the exit code. */
static int check_config(struct broker *b, const struct config *conf)
{
    const struct broker_config *cfg = b->cfg;
    if (!data_dir_checked(cfg->data_dir))
        return 1;
    if (!not_restored(cfg->data_dir))
        return BACKUP_EXIT_RESTORED;
    if (!open_store(b, true) || choose_directory(b) != CASENET_OK)
        return 1;
    broker_warn_expiry(b->dir, true);
    printf("casenetd: configuration OK: broker %s, directory version %llu (expires %s), "
           "data %s, listen %s\n",
           b->broker_id, (unsigned long long)casenet_directory_version(b->dir),
           log_utc(casenet_directory_expires_at(b->dir)), cfg->data_dir, cfg->listen);
    print_policy(&b->policy, cfg->policy_path);
    config_print_effective(conf, stdout);
    return 0;
}

/* Starts the broker and runs its loop until a signal stops it. Binds
 * before recording the start, so that a start that fails writes no
 * broker-start event. Returns the exit code. */
static int run(struct broker *b)
{
    const struct broker_config *cfg = b->cfg;
    int exit_code = 1, sigfd = -1, rc;
    struct server *srv = NULL;
    struct admin *adm = NULL;
    char admin_err[400] = "out of memory";
    if (!store_dir(cfg->store_spec) || !data_dir_ready(cfg->data_dir))
        return 1;
    if (!not_restored(cfg->data_dir))
        return BACKUP_EXIT_RESTORED;
    if (!open_store(b, false))
        return 1;
    /* Several brokers on one PostgreSQL database: a standby waits here,
     * bound to nothing, until it holds the lease (docs/operations.md "High
     * availability"). */
    if ((rc = store_wait_active(b->store, STORE_LEASE_TTL_MS, STORE_LEASE_POLL_MS)) != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot become the active broker: %s\n", casenet_strerror(rc));
        return 1;
    }
    if (choose_directory(b) != CASENET_OK)
        return 1;
    broker_warn_expiry(b->dir, false);
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
    if ((rc = server_open(b, sigfd, &srv)) != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot listen on %s (see the log above)\n", cfg->listen);
        goto cleanup;
    }
    if ((rc = record_start(b)) != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot write to the store: %s\n", casenet_strerror(rc));
        goto cleanup;
    }
    if (metrics_init() != CASENET_OK ||
        (cfg->admin && admin_start(cfg->admin, &adm, admin_err, sizeof admin_err) != 0)) {
        fprintf(stderr, "casenetd: %s\n", admin_err);
        goto cleanup;
    }
    b->on_done = metrics_on_done;
    notify_init();
    notify_ready("serving");
    exit_code = server_run(srv) == CASENET_OK ? 0 : 1;
cleanup:
    admin_stop(adm);
    server_close(srv);
    metrics_shutdown();
    if (sigfd >= 0)
        close(sigfd);
    return exit_code;
}

/* Whether `casenetd restore` is the decision (--new-epoch, --replay) rather
 * than the restore of a file. */
static bool restore_chosen(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--new-epoch") == 0 || strncmp(argv[i], "--replay", 8) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    struct config conf;
    config_init(&conf);
    struct broker b = {.cfg = &conf.values};
    const char *config_path = NULL;
    bool check = false;
    struct restore_choice choice = {0}, *restore = NULL;
    if (argc > 1 && strcmp(argv[1], "backup") == 0)
        return backup_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "migrate") == 0)
        return migrate_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "verify-backup") == 0)
        return backup_verify_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "restore") == 0) {
        if (!restore_chosen(argc, argv))
            return backup_restore_main(argc - 1, argv + 1);
        restore = &choice;
        argc--;
        argv++;
    }
    int exit_code = parse_args(argc, argv, &conf, &config_path, &check, restore);
    if (exit_code >= 0) {
        config_free(&conf);
        return exit_code;
    }
    exit_code = 1;
    if (!configure(&conf, config_path))
        goto cleanup;
    struct sockaddr_storage admin_ss;
    char admin_err[400];
    if (conf.values.admin &&
        admin_parse(conf.values.admin, &admin_ss, admin_err, sizeof admin_err)) {
        fprintf(stderr, "casenetd: %s\n", admin_err);
        goto cleanup;
    }
    policy_defaults(&b.policy);
    if (conf.values.policy_path) {
        char err[320];
        if (policy_load(conf.values.policy_path, &b.policy, err, sizeof err) != CASENET_OK) {
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
    if (!load_identity(&b))
        goto cleanup;
    if (!(b.limits = limits_new(conf.values.limits.rate))) {
        fprintf(stderr, "casenetd: out of memory\n");
        goto cleanup;
    }
    limits_set_escalation(b.limits, conf.values.limits.escalation_budget,
                          (int64_t)conf.values.limits.escalation_period_s * 1000);
    exit_code = check ? check_config(&b, &conf) : restore ? resolve(&b, restore) : run(&b);
cleanup:
    if (b.store)
        store_close(b.store);
    casenet_directory_free(b.dir);
    casenet_keys_free(b.keys);
    limits_free(b.limits);
    config_free(&conf);
    return exit_code;
}
