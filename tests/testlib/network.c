/* network.c - loopback casenet networks with a real casenetd (see network.h). */
#include "network.h"

#include "testlib.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define TN_START_TIMEOUT_MS 10000
#define TN_PORT_TRIES       8

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "network: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void check(int rc, const char *what)
{
    if (rc != CASENET_OK)
        die(what, casenet_strerror(rc));
}

static char *key_path(const tn_network *tn, const char *id, const char *ext)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s.%s", tn->root, id, ext) < 0)
        die("asprintf", NULL);
    return p;
}

tn_network *tn_new(const char *const *members, size_t n)
{
    tn_network *tn = calloc(1, sizeof *tn);
    const char **all = calloc(n + 1, sizeof *all);
    if (!tn || !all)
        die("calloc", NULL);
    all[0] = TN_BROKER_ID ":broker";
    for (size_t i = 0; i < n; i++)
        all[i + 1] = members[i];
    tn->net = tl_net_new(all, n + 1);
    free(all);
    tn->root = tl_tmpdir();
    tn->data_dir = tl_path(tn->root, "data");
    tn->directory_path = tl_path(tn->root, "directory.pb");
    tn->authority_path = tl_path(tn->root, "authority.pub");
    tn->log_path = tl_path(tn->root, "casenetd.log");
    char *auth_key = tl_path(tn->root, "authority.key");
    check(casenet_keys_save(tn->net->authority, auth_key, tn->authority_path), "save authority");
    free(auth_key);
    for (size_t i = 0; i < tn->net->n; i++) {
        char *sk = key_path(tn, tn->net->ids[i], "key");
        char *pk = key_path(tn, tn->net->ids[i], "pub");
        check(casenet_keys_save(tn->net->keys[i], sk, pk), "save keys");
        if (strcmp(tn->net->ids[i], TN_BROKER_ID) == 0)
            tn->broker_key_path = sk;
        else
            free(sk);
        free(pk);
    }
    tn_write_directory(tn);
    tn->zctx = zmq_ctx_new();
    if (!tn->zctx)
        die("zmq_ctx_new", NULL);
    return tn;
}

void tn_write_directory(tn_network *tn)
{
    tl_write_file(tn->directory_path, tn->net->signed_dir.data, tn->net->signed_dir.len, 0644);
}

casenet_keys *tn_keys(const tn_network *tn, const char *id)
{
    return tl_net_keys(tn->net, id);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("free port", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* Under a wrapper (valgrind) the broker starts several times slower. */
static int64_t start_timeout_ms(void)
{
    return getenv("CASENET_BROKER_WRAPPER") ? 6 * TN_START_TIMEOUT_MS : TN_START_TIMEOUT_MS;
}

static pid_t spawn(tn_network *tn)
{
    const char *bin_dir = getenv("CASENET_BINARY_DIR");
    if (!bin_dir)
        die("CASENET_BINARY_DIR is not set", NULL);
    char *bin = NULL;
    if (asprintf(&bin, "%s/broker/casenetd", bin_dir) < 0)
        die("asprintf", NULL);
    /* CASENET_BROKER_WRAPPER (e.g. "valgrind --error-exitcode=1") is split
     * on spaces and put in front of the broker's command line. */
    const char *argv[48];
    int a = 0;
    char *wrapper =
        getenv("CASENET_BROKER_WRAPPER") ? strdup(getenv("CASENET_BROKER_WRAPPER")) : NULL;
    char *save = NULL;
    for (char *w = wrapper ? strtok_r(wrapper, " ", &save) : NULL; w && a < 32;
         w = strtok_r(NULL, " ", &save))
        argv[a++] = w;
    argv[a++] = bin;
    argv[a++] = "--data";
    argv[a++] = tn->data_dir;
    argv[a++] = "--listen";
    argv[a++] = tn->endpoint;
    argv[a++] = "--key";
    argv[a++] = tn->broker_key_path;
    argv[a++] = "--directory";
    argv[a++] = tn->directory_path;
    argv[a++] = "--authority";
    argv[a++] = tn->authority_path;
    if (tn->config_path) {
        argv[a++] = "--config";
        argv[a++] = tn->config_path;
    }
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        die("fork", strerror(errno));
    if (pid == 0) {
        /* The broker dies with the test process: a test that aborts must
         * not leave a casenetd behind holding ctest's output pipe open
         * (ctest would then wait for its timeout). */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(tn->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        if (wrapper)
            execvp(argv[0], (char *const *)argv);
        else
            execv(bin, (char *const *)argv);
        _exit(127);
    }
    free(wrapper);
    free(bin);
    return pid;
}

void tn_start(tn_network *tn)
{
    if (tn->pid)
        die("tn_start", "already running");
    for (int attempt = 0; attempt < TN_PORT_TRIES; attempt++) {
        snprintf(tn->endpoint, sizeof tn->endpoint, "tcp://127.0.0.1:%d", free_port());
        tn->pid = spawn(tn);
        int64_t deadline = cn_mono_ms() + start_timeout_ms();
        bool exited = false;
        while (cn_mono_ms() < deadline) {
            int st;
            if (waitpid(tn->pid, &st, WNOHANG) == tn->pid) {
                exited = true;
                break;
            }
            tn_conn *c = tn_connect(tn, tn_keys(tn, TN_BROKER_ID));
            Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
            Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
            req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
            req.hello = &h;
            Casenet__V1__Response *r = tn_call(c, &req, 200);
            tn_close(c);
            if (r) {
                casenet__v1__response__free_unpacked(r, NULL);
                return;
            }
        }
        if (!exited) {
            kill(tn->pid, SIGKILL);
            waitpid(tn->pid, NULL, 0);
            die("casenetd did not answer in time; see", tn->log_path);
        }
        tn->pid = 0; /* probably lost the port race: try another one */
    }
    die("casenetd failed to start; see", tn->log_path);
}

int tn_stop(tn_network *tn)
{
    if (!tn->pid)
        return 0;
    int st = 0;
    kill(tn->pid, SIGTERM);
    if (waitpid(tn->pid, &st, 0) != tn->pid)
        die("waitpid", strerror(errno));
    tn->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tn_kill(tn_network *tn)
{
    if (!tn->pid)
        return;
    kill(tn->pid, SIGKILL);
    waitpid(tn->pid, NULL, 0);
    tn->pid = 0;
}

void tn_signal(tn_network *tn, int sig)
{
    if (tn->pid)
        kill(tn->pid, sig);
}

bool tn_log_contains(const tn_network *tn, const char *needle)
{
    size_t len = 0;
    if (access(tn->log_path, R_OK) != 0)
        return false;
    uint8_t *text = tl_read_file(tn->log_path, &len);
    bool found = strstr((const char *)text, needle) != NULL;
    free(text);
    return found;
}

tn_network *tn_new_started(const char *const *members, size_t n, const char *ini)
{
    tn_network *tn = tn_new(members, n);
    if (ini) {
        tn->config_path = tl_path(tn->root, "casenetd.ini");
        tl_write_file(tn->config_path, ini, strlen(ini), 0644);
    }
    tn_start(tn);
    return tn;
}

void tn_free(tn_network *tn)
{
    if (!tn)
        return;
    if (tn->pid) {
        int st = tn_stop(tn);
        if (st != 0)
            die("casenetd exited with an error; see", tn->log_path);
    }
    if (tn->zctx)
        zmq_ctx_term(tn->zctx);
    if (!getenv("CASENET_KEEP_TMP"))
        tl_rmrf(tn->root);
    free(tn->root);
    free(tn->data_dir);
    free(tn->directory_path);
    free(tn->authority_path);
    free(tn->broker_key_path);
    free(tn->log_path);
    free(tn->config_path);
    tl_net_free(tn->net);
    free(tn);
}

/* ------------------------------------------------------------ connections */

tn_conn *tn_connect_curve(tn_network *tn, const uint8_t pk[32], const uint8_t sk[32])
{
    casenet_member broker;
    check(casenet_directory_broker(tn->net->dir, &broker), "directory broker");
    tn_conn *c = calloc(1, sizeof *c);
    if (!c)
        die("calloc", NULL);
    c->tn = tn;
    c->next_id = 1;
    c->sock = zmq_socket(tn->zctx, ZMQ_DEALER);
    int zero = 0;
    if (!c->sock || zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, broker.curve_pk, 32) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pk, 32) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, sk, 32) != 0 ||
        zmq_connect(c->sock, tn->endpoint) != 0)
        die("dealer", zmq_strerror(errno));
    return c;
}

tn_conn *tn_connect(tn_network *tn, const casenet_keys *k)
{
    return tn_connect_curve(tn, casenet_keys_curve_pk(k), casenet_keys_curve_sk(k));
}

void tn_close(tn_conn *c)
{
    if (!c)
        return;
    zmq_close(c->sock);
    for (size_t i = 0; i < c->n_notices; i++)
        casenet_buf_free(&c->notices[i]);
    free(c->notices);
    free(c);
}

void tn_send_frames(tn_conn *c, const void *const frames[], const size_t lens[], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (zmq_send(c->sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            die("zmq_send", zmq_strerror(errno));
    }
}

bool tn_recv(tn_conn *c, int timeout_ms, casenet_buf *out)
{
    zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};
    int64_t deadline = cn_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - cn_mono_ms();
        if (left < 0)
            left = 0;
        int n = zmq_poll(&it, 1, (long)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("zmq_poll", zmq_strerror(errno));
        if (n == 0)
            return false;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, 0) < 0)
            die("zmq_msg_recv", zmq_strerror(errno));
        out->len = zmq_msg_size(&m);
        out->data = malloc(out->len + 1);
        memcpy(out->data, zmq_msg_data(&m), out->len);
        bool more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        if (more)
            die("tn_recv", "the broker sent more than one frame");
        return true;
    }
}

Casenet__V1__Response *tn_call(tn_conn *c, Casenet__V1__Request *req, int timeout_ms)
{
    if (!req->protocol_version)
        req->protocol_version = 1;
    if (!req->request_id)
        req->request_id = c->next_id++;
    size_t len = casenet__v1__request__get_packed_size(req);
    uint8_t *buf = malloc(len + 1);
    casenet__v1__request__pack(req, buf);
    const void *frames[1] = {buf};
    tn_send_frames(c, frames, &len, 1);
    free(buf);
    int64_t deadline = cn_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - cn_mono_ms();
        casenet_buf in = {0};
        if (left <= 0 || !tn_recv(c, (int)left, &in))
            return NULL;
        Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, in.len, in.data);
        if (!r)
            die("tn_call", "unparsable response");
        if (r->request_id == req->request_id) {
            casenet_buf_free(&in);
            return r;
        }
        if (r->body_case == CASENET__V1__RESPONSE__BODY_NOTICE) {
            c->notices = realloc(c->notices, (c->n_notices + 1) * sizeof *c->notices);
            c->notices[c->n_notices++] = in;
        } else {
            casenet_buf_free(&in); /* a late answer to an earlier request */
        }
        casenet__v1__response__free_unpacked(r, NULL);
    }
}

Casenet__V1__Response *tn_next_notice(tn_conn *c, int timeout_ms)
{
    casenet_buf in = {0};
    if (c->n_notices) {
        in = c->notices[0];
        memmove(c->notices, c->notices + 1, --c->n_notices * sizeof *c->notices);
    } else if (!tn_recv(c, timeout_ms, &in)) {
        return NULL;
    }
    Casenet__V1__Response *r = casenet__v1__response__unpack(NULL, in.len, in.data);
    casenet_buf_free(&in);
    return r;
}

Casenet__V1__Response *tn_hello(tn_conn *c)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
    h.client = (char *)"network-fixture";
    req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    req.hello = &h;
    return tn_call(c, &req, 5000);
}

Casenet__V1__Response *tn_submit(tn_conn *c, const uint8_t *env, size_t len)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Submit s = CASENET__V1__SUBMIT__INIT;
    s.envelope.data = (uint8_t *)env;
    s.envelope.len = len;
    req.body_case = CASENET__V1__REQUEST__BODY_SUBMIT;
    req.submit = &s;
    return tn_call(c, &req, 10000);
}

Casenet__V1__Response *tn_list(tn_conn *c, int state, uint64_t cursor, uint32_t limit)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__ListInbox l = CASENET__V1__LIST_INBOX__INIT;
    l.state = (Casenet__V1__InboxState)state;
    l.cursor = cursor;
    l.limit = limit;
    req.body_case = CASENET__V1__REQUEST__BODY_LIST_INBOX;
    req.list_inbox = &l;
    return tn_call(c, &req, 5000);
}

Casenet__V1__Response *tn_fetch(tn_conn *c, const uint8_t id[16])
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Fetch f = CASENET__V1__FETCH__INIT;
    f.message_id.data = (uint8_t *)id;
    f.message_id.len = 16;
    req.body_case = CASENET__V1__REQUEST__BODY_FETCH;
    req.fetch = &f;
    return tn_call(c, &req, 5000);
}

Casenet__V1__Response *tn_send_receipt(tn_conn *c, const uint8_t *r, size_t len)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__SendReceipt s = CASENET__V1__SEND_RECEIPT__INIT;
    s.signed_receipt.data = (uint8_t *)r;
    s.signed_receipt.len = len;
    req.body_case = CASENET__V1__REQUEST__BODY_RECEIPT;
    req.receipt = &s;
    return tn_call(c, &req, 5000);
}

Casenet__V1__Response *tn_publish(tn_conn *c, const uint8_t *dir, size_t len)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__PublishDirectory p = CASENET__V1__PUBLISH_DIRECTORY__INIT;
    p.signed_directory.data = (uint8_t *)dir;
    p.signed_directory.len = len;
    req.body_case = CASENET__V1__REQUEST__BODY_PUBLISH_DIRECTORY;
    req.publish_directory = &p;
    return tn_call(c, &req, 5000);
}

Casenet__V1__Response *tn_get_directory(tn_conn *c)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__GetDirectory g = CASENET__V1__GET_DIRECTORY__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_GET_DIRECTORY;
    req.get_directory = &g;
    return tn_call(c, &req, 5000);
}

Casenet__V1__Response *tn_subscribe(tn_conn *c)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Subscribe s = CASENET__V1__SUBSCRIBE__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_SUBSCRIBE;
    req.subscribe = &s;
    return tn_call(c, &req, 5000);
}

int tn_code(const Casenet__V1__Response *r)
{
    if (!r)
        die("tn_code", "no response (timeout)");
    return r->error ? (int)r->error->code : 0;
}

casenet_buf tn_seal(tn_network *tn, const char *from, const char *const *to, size_t n,
                    const char *text, uint8_t id[16])
{
    casenet_buf payload = tl_referral_payload(text);
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = n};
    casenet_buf env = {0};
    uint8_t mid[16];
    check(casenet_seal(tn_keys(tn, from), tn->net->dir, &o, payload.data, payload.len, &env, mid),
          "seal");
    if (id)
        memcpy(id, mid, 16);
    casenet_buf_free(&payload);
    return env;
}

casenet_buf tn_sign_receipt(tn_network *tn, const char *signer, const uint8_t id[16],
                            const uint8_t hash[32], const char *sender, casenet_receipt_status st,
                            int64_t at)
{
    casenet_receipt rc = {0};
    memcpy(rc.message_id, id, 16);
    memcpy(rc.envelope_hash, hash, 32);
    snprintf(rc.sender, sizeof rc.sender, "%s", sender);
    snprintf(rc.recipient, sizeof rc.recipient, "%s", signer);
    rc.status = st;
    if (st == CASENET_RECEIPT_COMPLETED)
        rc.outcome = CASENET_OUTCOME_RESOLVED;
    rc.signed_at_ms = at;
    casenet_buf out = {0};
    check(casenet_receipt_sign(tn_keys(tn, signer), &rc, &out), "receipt_sign");
    return out;
}

void tn_restart(tn_network *tn)
{
    if (tn->pid)
        die("tn_restart", "already running");
    if (!tn->endpoint[0])
        die("tn_restart", "never started");
    /* The old listener is gone (ZeroMQ binds with SO_REUSEADDR), but retry in
     * case the port is briefly unavailable. */
    for (int attempt = 0; attempt < TN_PORT_TRIES; attempt++) {
        tn->pid = spawn(tn);
        int64_t deadline = cn_mono_ms() + start_timeout_ms();
        while (cn_mono_ms() < deadline) {
            int st;
            if (waitpid(tn->pid, &st, WNOHANG) == tn->pid)
                break;
            tn_conn *c = tn_connect(tn, tn_keys(tn, TN_BROKER_ID));
            Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
            Casenet__V1__Hello h = CASENET__V1__HELLO__INIT;
            req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
            req.hello = &h;
            Casenet__V1__Response *r = tn_call(c, &req, 200);
            tn_close(c);
            if (r) {
                casenet__v1__response__free_unpacked(r, NULL);
                return;
            }
        }
        if (waitpid(tn->pid, NULL, WNOHANG) == 0) {
            kill(tn->pid, SIGKILL);
            waitpid(tn->pid, NULL, 0);
            die("casenetd did not answer in time; see", tn->log_path);
        }
        tn->pid = 0;
        usleep(200 * 1000);
    }
    die("casenetd failed to restart on its endpoint; see", tn->log_path);
}
