/* network.c - casenet-bench's network files, the casenetd it starts and its
 * DEALER connections (see bench.h). */
#include "bench.h"

#include "directory_impl.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define PORT_TRIES      8
#define PROBE_RESEND_MS 1000

static char *path_in(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

static char *key_path(const char *dir, const char *id, const char *ext)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s.%s", dir, id, ext) < 0)
        return NULL;
    return p;
}

void bench_net_free(struct bench_net *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->n; i++) {
        casenet_keys_free(net->keys ? net->keys[i] : NULL);
        free(net->ids ? net->ids[i] : NULL);
    }
    free(net->keys);
    free(net->ids);
    casenet_directory_free(net->directory);
    free(net->dir);
    free(net->data_dir);
    free(net->directory_path);
    free(net->authority_path);
    free(net->broker_key_path);
    free(net->log_path);
    free(net->config_path);
    free(net);
}

/* Generates the authority, the broker and n members, signs the directory
 * that lists them and writes every file. */
static int net_create(struct bench_net *net, size_t n)
{
    int rc;
    int64_t now = cn_now_ms();
    casenet_keys *authority = NULL, *broker = NULL;
    casenet_buf dir = {0}, pub = {0};
    char *auth_key = path_in(net->dir, "authority.key");
    char *broker_pub = key_path(net->dir, BENCH_BROKER_ID, "pub");
    static const char *const broker_roles[] = {"broker"};
    static const char *const member_roles[] = {"intake", "responder"};
    if (!auth_key || !broker_pub) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    if ((rc = casenet_keys_generate_authority(now, &authority)) != CASENET_OK ||
        (rc = casenet_keys_save(authority, auth_key, net->authority_path)) != CASENET_OK ||
        (rc = casenet_keys_generate(BENCH_BROKER_ID, now, &broker)) != CASENET_OK ||
        (rc = casenet_keys_save(broker, net->broker_key_path, broker_pub)) != CASENET_OK ||
        (rc = casenet_keys_public_file(broker, &pub)) != CASENET_OK)
        goto cleanup;
    casenet_member_spec bspec = {.roles = broker_roles, .n_roles = 1};
    if ((rc = casenet_directory_add_member(authority, NULL, 0, pub.data, pub.len, &bspec, now,
                                           BENCH_DIR_VALIDITY, &dir)) != CASENET_OK)
        goto cleanup;
    casenet_buf_free(&pub);
    net->ids = calloc(n, sizeof *net->ids);
    net->keys = calloc(n, sizeof *net->keys);
    if (!net->ids || !net->keys) {
        rc = CASENET_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        char id[CASENET_MEMBER_ID_MAX + 1];
        snprintf(id, sizeof id, BENCH_MEMBER_FMT, i + 1);
        net->ids[i] = strdup(id);
        net->n = i + 1;
        char *sk = key_path(net->dir, id, "key"), *pk = key_path(net->dir, id, "pub");
        casenet_buf next = {0};
        casenet_member_spec spec = {.roles = member_roles, .n_roles = 2};
        rc = !net->ids[i] || !sk || !pk ? CASENET_ENOMEM : CASENET_OK;
        if (rc == CASENET_OK)
            rc = casenet_keys_generate(id, now, &net->keys[i]);
        if (rc == CASENET_OK)
            rc = casenet_keys_save(net->keys[i], sk, pk);
        if (rc == CASENET_OK)
            rc = casenet_keys_public_file(net->keys[i], &pub);
        if (rc == CASENET_OK)
            rc = casenet_directory_add_member(authority, dir.data, dir.len, pub.data, pub.len,
                                              &spec, now, BENCH_DIR_VALIDITY, &next);
        free(sk);
        free(pk);
        casenet_buf_free(&pub);
        if (rc != CASENET_OK)
            goto cleanup;
        casenet_buf_free(&dir);
        dir = next;
    }
    rc = cn_write_file_atomic(net->directory_path, dir.data, dir.len, 0644, false);
cleanup:
    if (rc != CASENET_OK)
        fprintf(stderr, "casenet-bench: cannot create the network in %s: %s\n", net->dir,
                casenet_strerror(rc));
    casenet_keys_free(authority);
    casenet_keys_free(broker);
    casenet_buf_free(&dir);
    casenet_buf_free(&pub);
    free(auth_key);
    free(broker_pub);
    return rc;
}

/* Loads directory.pb and the keyring of every member it lists. */
static int net_load(struct bench_net *net)
{
    uint8_t apk[CASENET_SIGN_PK_BYTES];
    casenet_buf buf = {0};
    int rc = casenet_authority_pk_load(net->authority_path, apk);
    if (rc == CASENET_OK)
        rc = cn_read_file(net->directory_path, DIRECTORY_MAX, &buf);
    if (rc == CASENET_OK)
        rc = casenet_directory_parse(buf.data, buf.len, apk, cn_now_ms(), 0, &net->directory);
    casenet_buf_free(&buf);
    if (rc != CASENET_OK) {
        fprintf(stderr, "casenet-bench: cannot load the network in %s: %s\n", net->dir,
                casenet_strerror(rc));
        return rc;
    }
    size_t count = casenet_directory_count(net->directory);
    net->ids = calloc(count ? count : 1, sizeof *net->ids);
    net->keys = calloc(count ? count : 1, sizeof *net->keys);
    if (!net->ids || !net->keys)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        casenet_member m;
        if (casenet_directory_at(net->directory, i, &m) != CASENET_OK)
            return CASENET_EBADREQ;
        if (casenet_member_has_role(&m, "broker")) {
            if (!m.curve_pk)
                return CASENET_EBADREQ;
            memcpy(net->broker_curve_pk, m.curve_pk, CASENET_CURVE_KEY_BYTES);
            continue;
        }
        char *sk = key_path(net->dir, m.id, "key");
        if (!sk)
            return CASENET_ENOMEM;
        net->ids[net->n] = strdup(m.id);
        rc = net->ids[net->n] ? casenet_keys_load(sk, &net->keys[net->n]) : CASENET_ENOMEM;
        if (rc != CASENET_OK) {
            fprintf(stderr, "casenet-bench: cannot load %s: %s\n", sk, casenet_strerror(rc));
            free(sk);
            free(net->ids[net->n]);
            net->ids[net->n] = NULL;
            return rc;
        }
        free(sk);
        net->n++;
    }
    if (net->n < 2) {
        fprintf(stderr, "casenet-bench: the network in %s has fewer than two members\n", net->dir);
        return CASENET_EBADREQ;
    }
    return CASENET_OK;
}

int bench_net_open(const char *dir, size_t n, bool created_dir, struct bench_net **out)
{
    int rc = CASENET_ENOMEM;
    struct bench_net *net = calloc(1, sizeof *net);
    if (!net)
        return CASENET_ENOMEM;
    net->created_dir = created_dir;
    net->dir = strdup(dir);
    net->data_dir = path_in(dir, "data");
    net->directory_path = path_in(dir, "directory.pb");
    net->authority_path = path_in(dir, "authority.pub");
    net->broker_key_path = key_path(dir, BENCH_BROKER_ID, "key");
    net->log_path = path_in(dir, "casenetd.log");
    net->config_path = path_in(dir, "casenetd.ini");
    if (!net->dir || !net->data_dir || !net->directory_path || !net->authority_path ||
        !net->broker_key_path || !net->log_path || !net->config_path)
        goto cleanup;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "casenet-bench: cannot create %s: %s\n", dir, strerror(errno));
        rc = CASENET_EIO;
        goto cleanup;
    }
    if (access(net->directory_path, F_OK) != 0 && (rc = net_create(net, n)) != CASENET_OK)
        goto cleanup;
    /* Loaded back from the files in both cases: one code path. */
    for (size_t i = 0; i < net->n; i++) {
        casenet_keys_free(net->keys[i]);
        free(net->ids[i]);
    }
    free(net->keys);
    free(net->ids);
    net->keys = NULL;
    net->ids = NULL;
    net->n = 0;
    if ((rc = net_load(net)) != CASENET_OK)
        goto cleanup;
    *out = net;
    net = NULL;
    rc = CASENET_OK;
cleanup:
    bench_net_free(net);
    return rc;
}

/* ------------------------------------------------------------ casenetd */

static bool executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

char *bench_find_casenetd(const char *given)
{
    if (given)
        return executable(given) ? strdup(given) : NULL;
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            /* installed side by side, or the build tree (clients/bench). */
            static const char *const rel[] = {"casenetd", "../../broker/casenetd"};
            for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
                char *p = path_in(self, rel[i]);
                if (p && executable(p))
                    return p;
                free(p);
            }
        }
    }
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *copy = strdup(path), *save = NULL;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
        char *p = path_in(*d ? d : ".", "casenetd");
        if (p && executable(p)) {
            free(copy);
            return p;
        }
        free(p);
    }
    free(copy);
    return NULL;
}

/* True when `casenetd --help` mentions word (a config key this version
 * knows). */
static bool casenetd_knows(const char *casenetd, const char *word)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(casenetd, casenetd, "--help", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char text[8192];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof text - 1 && (r = read(fds[0], text + got, sizeof text - 1 - got)) > 0)
        got += (size_t)r;
    text[got] = '\0';
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return strstr(text, word) != NULL;
}

static int write_config(const struct bench_net *net, const char *casenetd,
                        const struct bench_opts *o)
{
    char ini[4096];
    int len = snprintf(ini, sizeof ini, "# written by casenet-bench\n[limits]\n");
    if (o->batch_max)
        len += snprintf(ini + len, sizeof ini - (size_t)len, "batch_max = %zu\n", o->batch_max);
    for (size_t i = 0; i < o->n_limits && (size_t)len < sizeof ini; i++)
        len += snprintf(ini + len, sizeof ini - (size_t)len, "%s\n", o->limits[i]);
    if ((size_t)len >= sizeof ini - 128)
        return CASENET_ETOOLARGE;
    /* Throughput is measured here, not the per-member limits. */
    if (casenetd_knows(casenetd, "submit_rate"))
        len += snprintf(ini + len, sizeof ini - (size_t)len, "submit_rate = 0\n");
    if (casenetd_knows(casenetd, "max_inbox_backlog"))
        len += snprintf(ini + len, sizeof ini - (size_t)len, "max_inbox_backlog = 4000000000\n");
    if (casenetd_knows(casenetd, "max_pending"))
        len += snprintf(ini + len, sizeof ini - (size_t)len, "max_pending = 65536\n");
    if (casenetd_knows(casenetd, "max_connections"))
        len += snprintf(ini + len, sizeof ini - (size_t)len, "max_connections = 0\n");
    if (casenetd_knows(casenetd, "max_pair_backlog"))
        len += snprintf(ini + len, sizeof ini - (size_t)len, "max_pair_backlog = 0\n");
    if (casenetd_knows(casenetd, "member_quota_mb"))
        len += snprintf(ini + len, sizeof ini - (size_t)len, "member_quota_mb = 0\n");
    return cn_write_file_atomic(net->config_path, ini, (size_t)len, 0644, false);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static pid_t spawn(const struct bench_net *net, const char *casenetd, const char *endpoint,
                   const char *store)
{
    const char *argv[] = {casenetd,
                          "--data",
                          net->data_dir,
                          "--listen",
                          endpoint,
                          "--key",
                          net->broker_key_path,
                          "--directory",
                          net->directory_path,
                          "--authority",
                          net->authority_path,
                          "--config",
                          net->config_path,
                          NULL, /* --verbose: the stats lines (bench_broker_stats) */
                          NULL, /* --store SPEC */
                          NULL,
                          NULL};
    size_t at = sizeof argv / sizeof *argv - 4;
    if (casenetd_knows(casenetd, "--verbose"))
        argv[at++] = "--verbose";
    if (store) {
        argv[at++] = "--store";
        argv[at] = store;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(net->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execv(casenetd, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends Hello on a fresh DEALER (quick reconnects) until answered. */
static bool wait_hello(const struct bench_net *net, const char *endpoint, pid_t pid, double t0,
                       double *answered_at)
{
    void *ctx = zmq_ctx_new();
    if (!ctx)
        return false;
    void *sock = bench_dealer(ctx, endpoint, net->broker_curve_pk, net->keys[0]);
    bool ok = false;
    if (sock) {
        int ivl = 2;
        (void)zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
        Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
        Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
        h.client = (char *)"casenet-bench";
        req.protocol_version = 1;
        req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
        req.hello = &h;
        while (mono_s() - t0 < BENCH_START_TIMEOUT / 1e3) {
            Casenet__V1__Response *r = bench_call(sock, &req, PROBE_RESEND_MS);
            if (r) {
                *answered_at = mono_s();
                ok = !r->error;
                casenet__v1__response__free_unpacked(r, NULL);
                break;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break;
            req.request_id++;
        }
        zmq_close(sock);
    }
    zmq_ctx_term(ctx);
    return ok;
}

int bench_broker_start(const struct bench_net *net, const char *casenetd,
                       const struct bench_opts *o, struct bench_broker *out)
{
    int rc = write_config(net, casenetd, o);
    if (rc != CASENET_OK) {
        fprintf(stderr, "casenet-bench: cannot write %s: %s\n", net->config_path,
                casenet_strerror(rc));
        return rc;
    }
    for (int attempt = 0; attempt < PORT_TRIES; attempt++) {
        int port = free_port();
        if (port < 0)
            return CASENET_EIO;
        snprintf(out->endpoint, sizeof out->endpoint, "tcp://127.0.0.1:%d", port);
        double t0 = mono_s(), t1 = 0;
        pid_t pid = spawn(net, casenetd, out->endpoint, o->broker_store);
        if (pid < 0)
            return CASENET_EIO;
        if (wait_hello(net, out->endpoint, pid, t0, &t1)) {
            out->pid = pid;
            out->startup_ms = (t1 - t0) * 1e3;
            return CASENET_OK;
        }
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == 0) { /* still running (wait_hello reaps an exit) */
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fprintf(stderr, "casenet-bench: casenetd did not answer in time; see %s\n",
                    net->log_path);
            return CASENET_ETIMEDOUT;
        }
        /* It exited: probably lost the port race; another port. */
    }
    fprintf(stderr, "casenet-bench: casenetd failed to start; see %s\n", net->log_path);
    return CASENET_EIO;
}

int bench_broker_stop(struct bench_broker *b)
{
    if (b->pid <= 0)
        return 0;
    int st = 0;
    kill(b->pid, SIGTERM);
    waitpid(b->pid, &st, 0);
    b->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------ connections */

void *bench_dealer(void *zctx, const char *endpoint, const uint8_t server_pk[32],
                   const casenet_keys *keys)
{
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    int zero = 0, hwm = 0;
    if (!s)
        return NULL;
    if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pk, 32) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, casenet_keys_curve_pk(keys), 32) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, casenet_keys_curve_sk(keys), 32) != 0 ||
        zmq_connect(s, endpoint) != 0) {
        fprintf(stderr, "casenet-bench: connect %s: %s\n", endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

Casenet__V1__Response *bench_call(void *sock, Casenet__V1__Request *req, int timeout_ms)
{
    if (!req->protocol_version)
        req->protocol_version = 1;
    size_t len = casenet__v1__request__get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    casenet__v1__request__pack(req, buf);
    int sent = zmq_send(sock, buf, len, 0);
    free(buf);
    if (sent < 0)
        return NULL;
    int64_t deadline = cn_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - cn_mono_ms();
        if (left < 0)
            return NULL;
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        int n = zmq_poll(&it, 1, (long)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            return NULL;
        }
        Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, zmq_msg_size(&m),
                                                                 (const uint8_t *)zmq_msg_data(&m));
        zmq_msg_close(&m);
        if (r && r->request_id == req->request_id &&
            r->body_case != CASENET__V1__RESPONSE__BODY_NOTICE)
            return r;
        if (r)
            casenet__v1__response__free_unpacked(r, NULL);
    }
}
