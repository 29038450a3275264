/* watch_handover.c - how `casenet watch` hands a message to the agency: a
 * file in a spool directory (temporary name, fsync, journal, rename, fsync),
 * and/or a command run with the message JSON on its stdin (see watch.h). */
#include "watch.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WH_SPOOL_MODE    0640
#define WH_WAIT_MIN_US   1000
#define WH_WAIT_MAX_US   5000
#define WH_POLL_MAX_MS   1000
#define WH_ENV_EXTRA     6
#define WH_ENV_VALUE_MAX (CASENET_MEMBER_ID_MAX + 64)

extern char **environ;

volatile sig_atomic_t wh_exec_child = 0;

/* ------------------------------------------------------------ spool */

char *wh_spool_path(const char *spool, const uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    char hex[33], name[48];
    cli_id16_hex(id, hex);
    snprintf(name, sizeof name, "%s.json", hex);
    return cli_path(spool, name);
}

static char *tmp_path(const char *spool, const uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    char hex[33], name[56];
    cli_id16_hex(id, hex);
    /* A dot file: consumers take *.json only, and never see it half-written. */
    snprintf(name, sizeof name, ".%s.json.tmp", hex);
    return cli_path(spool, name);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return CASENET_EIO;
    int rc = fsync(fd) == 0 ? CASENET_OK : CASENET_EIO;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Writes data to path (created or truncated) and fsyncs it. */
static int write_durable(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, WH_SPOOL_MODE);
    if (fd < 0)
        return CASENET_EIO;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            errno = e ? e : EIO;
            return CASENET_EIO;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return CASENET_EIO;
    }
    return close(fd) == 0 ? CASENET_OK : CASENET_EIO;
}

/* Renames tmp to final and makes the rename durable. */
static int move_into_place(const char *spool, const char *tmp, const char *final)
{
    if (rename(tmp, final) != 0)
        return CASENET_EIO;
    return fsync_dir(spool);
}

int wh_spool(wj *j, const char *spool, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
             struct wj_row *row, const char *json, size_t len, char *err, size_t errlen)
{
    if (row->state >= WJ_SPOOLED)
        return CASENET_OK;
    char *final = wh_spool_path(spool, id), *tmp = tmp_path(spool, id);
    int rc = CASENET_ENOMEM;
    if (!final || !tmp) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    if (row->state == WJ_SPOOLING) {
        /* A previous run recorded the durable temporary file; whether it also
         * renamed it shows in whether the temporary file is still there. */
        if (cli_exists(tmp)) {
            rc = move_into_place(spool, tmp, final);
            if (rc != CASENET_OK) {
                snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
                goto cleanup;
            }
        }
        row->state = WJ_SPOOLED;
        rc = CASENET_OK;
        goto cleanup;
    }
    rc = write_durable(tmp, json, len);
    if (rc == CASENET_OK)
        rc = fsync_dir(spool); /* the temporary name must be durable before SPOOLING */
    if (rc != CASENET_OK) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto cleanup;
    }
    struct wj_row next = *row;
    next.state = WJ_SPOOLING;
    rc = wj_put(j, id, &next);
    if (rc != CASENET_OK) {
        snprintf(err, errlen, "cannot record the spool file in the journal");
        unlink(tmp);
        goto cleanup;
    }
    row->state = WJ_SPOOLING;
    rc = move_into_place(spool, tmp, final);
    if (rc != CASENET_OK) {
        /* Left SPOOLING with the temporary file: the next attempt renames. */
        snprintf(err, errlen, "cannot move %s into place: %s", final, strerror(errno));
        goto cleanup;
    }
    row->state = WJ_SPOOLED;
    rc = CASENET_OK;
cleanup:
    free(final);
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------ exec */

/* environ plus our variables (which replace inherited ones of the same
 * name). The strings of extra are borrowed; the array is malloc'd. */
static char **build_env(char *const extra[], size_t n_extra)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + n_extra + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t x = 0; x < n_extra && !replaced; x++) {
            size_t name_len = (size_t)(strchr(extra[x], '=') - extra[x]) + 1;
            replaced = strncmp(environ[i], extra[x], name_len) == 0;
        }
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t x = 0; x < n_extra; x++)
        env[k++] = extra[x];
    env[k] = NULL;
    return env;
}

/* An unlinked in-memory file holding json, positioned at its start. */
static int stdin_file(const char *json, size_t len, int *fd_out)
{
    int fd = memfd_create("casenet-watch-message", MFD_CLOEXEC);
    if (fd < 0)
        return CASENET_EIO;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, json + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return CASENET_EIO;
        }
        off += (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return CASENET_EIO;
    }
    *fd_out = fd;
    return CASENET_OK;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reaps pid; kills its process group at deadline (monotonic ms). Waits on a
 * pidfd (woken the moment it exits) or, on kernels without one, polls. */
static int wait_child(pid_t pid, int64_t deadline, struct wh_exec_result *res)
{
    int pidfd = pidfd_open(pid, 0);
    useconds_t nap = WH_WAIT_MIN_US;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        int64_t left = deadline - mono_ms();
        if (!res->timedout && left <= 0) {
            res->timedout = true;
            kill(-pid, SIGKILL);
        }
        if (pidfd >= 0) {
            struct pollfd p = {.fd = pidfd, .events = POLLIN};
            int ms = res->timedout ? 100 : (int)(left > WH_POLL_MAX_MS ? WH_POLL_MAX_MS : left);
            if (poll(&p, 1, ms < 0 ? 0 : ms) < 0 && errno != EINTR)
                usleep(nap);
        } else {
            usleep(nap);
            if (nap < WH_WAIT_MAX_US)
                nap *= 2;
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return status;
}

int wh_exec(const char *cmd, const char *json, size_t len, const char *id_hex, const char *kind,
            const char *from, const char *spool_file, const char *attach_dir,
            const char *attach_paths, int timeout_ms, struct wh_exec_result *res)
{
    memset(res, 0, sizeof *res);
    res->status = -1;
    char v_id[WH_ENV_VALUE_MAX], v_kind[WH_ENV_VALUE_MAX], v_from[WH_ENV_VALUE_MAX];
    char *v_spool = NULL, *v_adir = NULL, *v_apaths = NULL;
    snprintf(v_id, sizeof v_id, "CASENET_MESSAGE_ID=%s", id_hex);
    snprintf(v_kind, sizeof v_kind, "CASENET_MESSAGE_KIND=%s", kind);
    snprintf(v_from, sizeof v_from, "CASENET_MESSAGE_FROM=%s", from);
    char *extra[WH_ENV_EXTRA] = {v_id, v_kind, v_from, NULL};
    size_t n_extra = 3;
    int fd = -1, rc = CASENET_ENOMEM;
    char **env = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_init = false, attr_init = false;
    if (spool_file) {
        if (asprintf(&v_spool, "CASENET_SPOOL_FILE=%s", spool_file) < 0) {
            v_spool = NULL;
            goto cleanup;
        }
        extra[n_extra++] = v_spool;
    }
    if (attach_dir) {
        if (asprintf(&v_adir, "CASENET_ATTACHMENT_DIR=%s", attach_dir) < 0) {
            v_adir = NULL;
            goto cleanup;
        }
        extra[n_extra++] = v_adir;
        if (asprintf(&v_apaths, "CASENET_ATTACHMENTS=%s", attach_paths ? attach_paths : "") < 0) {
            v_apaths = NULL;
            goto cleanup;
        }
        extra[n_extra++] = v_apaths;
    }
    env = build_env(extra, n_extra);
    if (!env)
        goto cleanup;
    rc = stdin_file(json, len, &fd);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = CASENET_EIO;
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto cleanup;
    fa_init = true;
    if (posix_spawnattr_init(&attr) != 0)
        goto cleanup;
    attr_init = true;
    /* Its own process group: a terminal's ^C or a signal to watch does not
     * cut the command short (watch finishes the message in hand), and watch
     * can kill the whole group on a timeout. Signals reset to their defaults,
     * none blocked. */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGPIPE);
    if (posix_spawn_file_actions_adddup2(&fa, fd, STDIN_FILENO) != 0 ||
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF) != 0 ||
        posix_spawnattr_setpgroup(&attr, 0) != 0 || posix_spawnattr_setsigmask(&attr, &none) != 0 ||
        posix_spawnattr_setsigdefault(&attr, &defaults) != 0)
        goto cleanup;
    char sh[] = "/bin/sh", dash_c[] = "-c";
    char *argv[] = {sh, dash_c, (char *)cmd, NULL};
    pid_t pid;
    int serr = posix_spawn(&pid, sh, &fa, &attr, argv, env);
    if (serr != 0) {
        errno = serr;
        goto cleanup;
    }
    wh_exec_child = (sig_atomic_t)pid;
    int status = wait_child(pid, mono_ms() + timeout_ms, res);
    wh_exec_child = 0;
    if (WIFEXITED(status))
        res->status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        res->signal = WTERMSIG(status);
    res->taken = !res->timedout && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    rc = CASENET_OK;
cleanup:
    if (attr_init)
        posix_spawnattr_destroy(&attr);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (fd >= 0)
        close(fd);
    free(env);
    free(v_spool);
    free(v_adir);
    free(v_apaths);
    return rc;
}

/* ------------------------------------------------------------ attachments */

char *wh_attachments_dir(const char *spool, const char *home,
                         const uint8_t id[CASENET_MESSAGE_ID_BYTES])
{
    char hex[33], name[64];
    cli_id16_hex(id, hex);
    if (spool) {
        snprintf(name, sizeof name, "%s.attachments", hex);
        return cli_path(spool, name);
    }
    snprintf(name, sizeof name, "attachments/%s", hex);
    return cli_path(home, name);
}

/* Appends path and a newline to the list *out of *len bytes. */
static int list_add(char **out, size_t *len, const char *path)
{
    size_t n = strlen(path);
    char *grown = realloc(*out, *len + n + 2);
    if (!grown)
        return CASENET_ENOMEM;
    memcpy(grown + *len, path, n);
    grown[*len + n] = '\n';
    grown[*len + n + 1] = '\0';
    *out = grown;
    *len += n + 1;
    return CASENET_OK;
}

int wh_save_attachments(casenet_client *c, const casenet_message_info *info,
                        const casenet_buf *payload, const char *dir, char **paths, size_t *n,
                        char *err, size_t errlen)
{
    *paths = NULL;
    *n = 0;
    casenet_attachment *atts = NULL;
    size_t count = 0, len = 0;
    int rc = casenet_payload_attachments(payload->data, payload->len, info, &atts, &count);
    if (rc != CASENET_OK) {
        snprintf(err, errlen, "the attachment manifest is malformed or does not match the header");
        return rc;
    }
    if (count > 0) {
        rc = cli_mkdir(dir);
        if (rc != CASENET_OK)
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
    }
    for (size_t i = 0; i < count && rc == CASENET_OK; i++) {
        char saved[4096];
        rc = casenet_attachment_download(c, &atts[i], dir, saved, sizeof saved);
        if (rc == CASENET_ECONFLICT) { /* saved, checked, by an earlier attempt */
            snprintf(saved, sizeof saved, "%s/%s", dir, atts[i].file_name);
            rc = CASENET_OK;
        }
        if (rc == CASENET_OK)
            rc = list_add(paths, &len, saved);
        else
            snprintf(err, errlen, "attachment %s: %s", atts[i].file_name,
                     rc == CASENET_ECRYPTO || rc == CASENET_ECOMMIT
                         ? "does not match the signed manifest (altered or truncated at the "
                           "broker)"
                         : casenet_errname(rc));
        if (rc == CASENET_OK)
            (*n)++;
    }
    for (size_t i = 0; i < count; i++)
        casenet_attachment_clear(&atts[i]);
    free(atts);
    if (rc != CASENET_OK) {
        free(*paths);
        *paths = NULL;
        *n = 0;
    }
    return rc;
}
