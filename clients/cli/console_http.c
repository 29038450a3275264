/* console_http.c - the console's HTTP server (libmicrohttpd, one thread per
 * connection): checks the Host header against the listen address (DNS
 * rebinding), bounds request sizes, sets the security headers on every
 * answer, authenticates (session cookie or bearer token), enforces the CSRF
 * token on every state-changing request, serves the static pages and routes
 * /api/v1/. */
#include "console.h"
#include "console_bank.h"

#include "cli.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STATIC_MAX  (2u * 1024u * 1024u)
#define SESSION_MAX 4096u /* the login body */

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self'; connect-src 'self'; form-action 'self'; "
                          "frame-ancestors 'none'; base-uri 'none'";

/* Per-request state across the access handler's calls. */
struct reqctx {
    char *body;
    size_t len;
    bool too_large;
};

static void add_security_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Permissions-Policy", "camera=(), microphone=(), geolocation=()");
}

/* Queues body (malloc'd, ours from here on) with status and type. */
static enum MHD_Result send_body(struct MHD_Connection *conn, unsigned status, const char *type,
                                 char *body, size_t len, const char *set_cookie,
                                 unsigned retry_after_s)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body ? body : (char *)"", MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    add_security_headers(r);
    MHD_add_response_header(r, "Content-Type", type);
    if (set_cookie)
        MHD_add_response_header(r, "Set-Cookie", set_cookie);
    if (retry_after_s) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", retry_after_s);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, struct console_resp *resp,
                                 const char *set_cookie, unsigned retry_after_s)
{
    char *b = resp->body ? resp->body : strdup("{}");
    resp->body = NULL;
    return send_body(conn, resp->status,
                     resp->type ? resp->type : "application/json; charset=utf-8", b,
                     b ? strlen(b) : 0, set_cookie, retry_after_s);
}

/* A download (console_resp.file): the file as application/octet-stream,
 * never rendered by the browser. */
static enum MHD_Result send_file(struct MHD_Connection *conn, struct console_resp *resp)
{
    struct MHD_Response *r = MHD_create_response_from_fd64(resp->file_size, resp->file_fd);
    if (!r)
        close(resp->file_fd);
    free(resp->body);
    if (!r || !resp->disposition) {
        if (r)
            MHD_destroy_response(r); /* closes the file */
        free(resp->disposition);
        return MHD_NO;
    }
    add_security_headers(r);
    MHD_add_response_header(r, "Content-Type", "application/octet-stream");
    MHD_add_response_header(r, "Content-Disposition", resp->disposition);
    free(resp->disposition);
    enum MHD_Result ok = MHD_queue_response(conn, resp->status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *name,
                                  const char *msg)
{
    struct console_resp resp = {0};
    console_error(&resp, status, name, msg, NULL);
    return send_json(conn, &resp, NULL, 0);
}

/* ------------------------------------------------------------ static pages */

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json; charset=utf-8"},
        {".png", "image/png"},
        {".svg", "image/svg+xml"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    }
    return NULL;
}

static enum MHD_Result serve_static(struct console *c, struct MHD_Connection *conn, const char *url)
{
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    const char *type = content_type(url);
    if (!console_static_path_ok(url) || !type)
        return send_error(conn, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such page");
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s%s", c->assets, url) >= sizeof path)
        return send_error(conn, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such page");
    casenet_buf b = {0};
    if (cn_read_file(path, STATIC_MAX, &b) != CASENET_OK)
        return send_error(conn, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such page");
    /* ownership of the bytes moves to the response (freed with free()) */
    return send_body(conn, MHD_HTTP_OK, type, (char *)b.data, b.len, NULL, 0);
}

/* ------------------------------------------------------------ session endpoint */

static json_t *session_json(struct console *c, const struct console_session *s)
{
    casenet_member m;
    pthread_rwlock_rdlock(&c->dir_lock);
    const char *display = c->home->member;
    if (casenet_directory_find(c->home->dir, c->home->member, &m) == CASENET_OK && m.display_name)
        display = m.display_name;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "user", s->user, "role",
                          console_role_name(s->role), "csrf", s->machine ? "" : s->csrf, "member",
                          c->home->member, "member_name", display, "idle_timeout_s",
                          (json_int_t)(CONSOLE_IDLE_MS / 1000), "coordinator", c->coord != NULL);
    if (o)
        json_object_set_new(o, "bank", json_boolean(console_bank_held(c)));
    pthread_rwlock_unlock(&c->dir_lock);
    return o;
}

/* Wipes the password in the parsed login body, then releases it. */
static void drop_login(json_t *in, const char *pw)
{
    if (pw)
        sodium_memzero((char *)pw, strlen(pw));
    json_decref(in);
}

static enum MHD_Result do_login(struct console *c, struct MHD_Connection *conn,
                                const struct reqctx *rq)
{
    struct console_resp resp = {0};
    json_error_t jerr;
    json_t *in = json_loadb(rq->body ? rq->body : "", rq->len, JSON_REJECT_DUPLICATES, &jerr);
    const char *user = NULL, *pw = NULL;
    if (!in || json_unpack(in, "{s:s, s:s}", "username", &user, "password", &pw) != 0 ||
        !console_name_valid(user) || strlen(pw) > 1024) {
        drop_login(in, pw);
        return send_error(conn, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
                          "send JSON {\"username\": ..., \"password\": ...}");
    }
    unsigned retry = 0;
    enum console_role role = ROLE_NONE;
    int rc = CASENET_ERATELIMIT;
    if (console_login_allowed(c->sessions, user, &retry)) {
        rc = console_user_check(c->db, user, pw, &role);
        console_login_result(c->sessions, user, rc == CASENET_OK);
    }
    char id[65], cookie[160];
    struct console_session s;
    if (rc == CASENET_OK) {
        rc = console_session_create(c->sessions, user, role, id, &s);
        if (rc != CASENET_OK)
            rc = CASENET_EUNAVAIL;
    }
    fprintf(stderr, "console: login %s for '%s'\n", rc == CASENET_OK ? "accepted" : "refused",
            user);
    drop_login(in, pw); /* user pointed into it */
    if (rc == CASENET_ERATELIMIT) {
        console_error(&resp, MHD_HTTP_TOO_MANY_REQUESTS, "RATE_LIMITED",
                      "too many failed logins for this name: wait, then try again", NULL);
        return send_json(conn, &resp, NULL, retry);
    }
    if (rc == CASENET_EUNAVAIL)
        return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE",
                          "too many open sessions: try again later");
    if (rc != CASENET_OK)
        return send_error(conn, MHD_HTTP_UNAUTHORIZED, "UNAUTHENTICATED", "wrong name or password");
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict%s", c->cookie, id,
             c->tls || c->host_ok[2][0] ? "; Secure" : "");
    json_t *out = session_json(c, &s);
    resp.status = MHD_HTTP_OK;
    resp.body = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    enum MHD_Result ok = send_json(conn, &resp, cookie, 0);
    sodium_memzero(id, sizeof id);
    sodium_memzero(cookie, sizeof cookie);
    return ok;
}

/* ------------------------------------------------------------ events (SSE) */

struct sse {
    struct console *c;
    char sid[65]; /* the session it belongs to ("" for a token) */
    uint64_t seen;
    bool hello;
};

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct sse *s = cls;
    struct console *c = s->c;
    struct console_session who;
    if (c->stopping || (s->sid[0] && !console_session_get(c->sessions, s->sid, false, &who)))
        return MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&c->ev_lock);
    if (!s->hello) {
        s->hello = true;
        int n = snprintf(buf, max, "retry: 3000\nevent: broker\ndata: {\"up\":%s}\n\n",
                         c->broker_up ? "true" : "false");
        pthread_mutex_unlock(&c->ev_lock);
        return n;
    }
    if (s->seen == c->ev_count) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 15;
        pthread_cond_timedwait(&c->ev_cond, &c->ev_lock, &ts);
    }
    ssize_t n;
    if (c->stopping) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (s->seen == c->ev_count) {
        n = snprintf(buf, max, ": keep-alive\n\n");
    } else if (c->ev_count - s->seen > CONSOLE_EVENTS) {
        s->seen = c->ev_count; /* fell behind: the page reloads its lists */
        n = snprintf(buf, max, "event: resync\ndata: {}\n\n");
    } else {
        const struct console_event *e = &c->events[s->seen % CONSOLE_EVENTS];
        s->seen++;
        n = snprintf(buf, max, "id: %llu\nevent: notice\ndata: %s\n\n", (unsigned long long)e->n,
                     e->json);
    }
    pthread_mutex_unlock(&c->ev_lock);
    if (n > 0 && (size_t)n >= max)
        n = snprintf(buf, max, "event: resync\ndata: {}\n\n");
    return n;
}

static void sse_free(void *cls)
{
    free(cls);
}

static enum MHD_Result do_events(struct console *c, struct MHD_Connection *conn, const char *sid)
{
    struct sse *s = calloc(1, sizeof *s);
    if (!s)
        return MHD_NO;
    s->c = c;
    snprintf(s->sid, sizeof s->sid, "%s", sid ? sid : "");
    pthread_mutex_lock(&c->ev_lock);
    s->seen = c->ev_count;
    pthread_mutex_unlock(&c->ev_lock);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    add_security_headers(r);
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* ------------------------------------------------------------ dispatch */

static bool host_ok(const struct console *c, struct MHD_Connection *conn)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (!host)
        return false;
    for (size_t i = 0; i < 3; i++) {
        if (c->host_ok[i][0] && strcasecmp(host, c->host_ok[i]) == 0)
            return true;
    }
    return false;
}

/* An Origin header, when sent, must be this console's own origin. */
static bool origin_ok(const struct console *c, struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return true;
    for (size_t i = 0; i < 3; i++) {
        /* the public host is reached through a proxy's HTTPS */
        const char *scheme = c->tls || i == 2 ? "https://" : "http://";
        size_t sl = strlen(scheme);
        if (c->host_ok[i][0] && strncmp(origin, scheme, sl) == 0 &&
            strcasecmp(origin + sl, c->host_ok[i]) == 0)
            return true;
    }
    return false;
}

static bool state_changing(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* Authenticates the request: a bearer token or a live session cookie. The
 * session id is copied to sid ("" for a token). */
static bool authenticate(struct console *c, struct MHD_Connection *conn, bool touch,
                         struct console_session *who, char sid[65])
{
    sid[0] = '\0';
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (auth && strncmp(auth, "Bearer ", 7) == 0) {
        memset(who, 0, sizeof *who);
        who->role = console_token_check(c->db, auth + 7, who->user);
        who->machine = true;
        return who->role != ROLE_NONE;
    }
    const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, c->cookie);
    if (!cookie || !console_session_get(c->sessions, cookie, touch, who))
        return false;
    /* a disabled account loses its sessions at once */
    if (console_user_role(c->db, who->user) == ROLE_NONE) {
        console_session_end(c->sessions, cookie);
        return false;
    }
    snprintf(sid, 65, "%s", cookie);
    return true;
}

static enum MHD_Result route(struct console *c, struct MHD_Connection *conn, const char *url,
                             const char *method, struct reqctx *rq)
{
    if (strncmp(url, "/api/v1/", 8) != 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "BAD_REQUEST",
                              "pages are read with GET");
        return serve_static(c, conn, url);
    }
    const char *path = url + 7; /* "/session", "/inbox", ... */
    if (state_changing(method)) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (strcmp(method, "POST") == 0 && (!ct || strncmp(ct, "application/json", 16) != 0))
            return send_error(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "BAD_REQUEST",
                              "send the body as application/json");
        if (!origin_ok(c, conn))
            return send_error(conn, MHD_HTTP_FORBIDDEN, "FORBIDDEN",
                              "cross-origin request refused");
    }
    if (strcmp(path, "/session") == 0 && strcmp(method, "POST") == 0)
        return do_login(c, conn, rq);

    struct console_session who;
    char sid[65];
    bool is_events = strcmp(path, "/events") == 0;
    if (!authenticate(c, conn, !is_events, &who, sid))
        return send_error(conn, MHD_HTTP_UNAUTHORIZED, "UNAUTHENTICATED",
                          "log in first (or your session ended after 30 minutes idle)");
    if (state_changing(method) && !who.machine) {
        const char *tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");
        if (!tok || strlen(tok) != 64 || sodium_memcmp(tok, who.csrf, 64) != 0)
            return send_error(conn, MHD_HTTP_FORBIDDEN, "FORBIDDEN",
                              "missing or wrong X-CSRF-Token: reload the page");
    }
    if (strcmp(path, "/session") == 0) {
        struct console_resp resp = {.status = MHD_HTTP_OK};
        if (strcmp(method, "DELETE") == 0) {
            console_session_end(c->sessions, sid);
            resp.body = strdup("{\"ok\":true}");
            char gone[96];
            snprintf(gone, sizeof gone, "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
                     c->cookie);
            return send_json(conn, &resp, gone, 0);
        }
        json_t *o = session_json(c, &who);
        resp.body = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return send_json(conn, &resp, NULL, 0);
    }
    if (is_events && strcmp(method, "GET") == 0)
        return do_events(c, conn, sid);

    struct console_req req = {
        .method = method,
        .path = path,
        .body = rq->body ? rq->body : "",
        .body_len = rq->len,
        .who = &who,
        .conn = conn,
    };
    struct console_resp resp = {0};
    pthread_rwlock_rdlock(&c->dir_lock);
    console_api(c, &req, &resp);
    pthread_rwlock_unlock(&c->dir_lock);
    if (resp.file)
        return send_file(conn, &resp);
    return send_json(conn, &resp, NULL, 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct console *c = cls;
    struct reqctx *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        if (!host_ok(c, conn))
            return send_error(conn, MHD_HTTP_MISDIRECTED_REQUEST, "FORBIDDEN",
                              "unexpected Host header: use the console's own address");
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        size_t max = strcmp(url, "/api/v1/session") == 0 ? SESSION_MAX : CONSOLE_BODY_MAX;
        if (cl && strtoull(cl, NULL, 10) > max)
            return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "TOO_LARGE",
                              "request body too large");
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t max = strcmp(url, "/api/v1/session") == 0 ? SESSION_MAX : CONSOLE_BODY_MAX;
        if (!rq->too_large && rq->len + *upload_data_size <= max) {
            char *nb = realloc(rq->body, rq->len + *upload_data_size + 1);
            if (!nb)
                return MHD_NO;
            memcpy(nb + rq->len, upload_data, *upload_data_size);
            rq->body = nb;
            rq->len += *upload_data_size;
            rq->body[rq->len] = '\0';
        } else {
            rq->too_large = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->too_large)
        return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "TOO_LARGE", "request body too large");
    return route(c, conn, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct reqctx *rq = *con_cls;
    if (!rq)
        return;
    if (rq->body)
        sodium_memzero(rq->body, rq->len); /* may hold a password or a payload */
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

/* ------------------------------------------------------------ serve */

/* Splits "ADDR:PORT" or "[ADDR]:PORT" into a socket address. */
static bool parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sl,
                         char host[256], uint16_t *port, bool *loopback)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return false;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 256)
        return false;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    uint64_t p = 0;
    if (!cli_parse_uint(colon + 1, 0, 65535, &p))
        return false;
    *port = (uint16_t)p;
    char addr[256];
    snprintf(addr, sizeof addr, "%s", host);
    if (addr[0] == '[' && hl > 2 && addr[hl - 1] == ']') {
        memmove(addr, addr + 1, hl - 2);
        addr[hl - 2] = '\0';
    }
    if (strcmp(addr, "localhost") == 0)
        snprintf(addr, sizeof addr, "127.0.0.1");
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(*port);
        *sl = sizeof *v4;
        *loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(*port);
        *sl = sizeof *v6;
        *loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    } else {
        return false;
    }
    return true;
}

int console_serve(struct console *c, const char *listen, const char *tls_cert, const char *tls_key)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    char host[256];
    uint16_t port = 0;
    bool loopback = false;
    if (!parse_listen(listen, &ss, &sl, host, &port, &loopback))
        return cli_usage_error("--listen wants ADDRESS:PORT (e.g. 127.0.0.1:8111), not '%s'",
                               listen);
    if ((tls_cert == NULL) != (tls_key == NULL))
        return cli_usage_error("--tls-cert and --tls-key go together");
    c->tls = tls_cert != NULL;
    if (!loopback && !c->tls)
        return cli_fail(CLI_LOCAL, CASENET_EFORBIDDEN,
                        "serve on 127.0.0.1, or pass --tls-cert FILE and --tls-key FILE",
                        "refusing to serve %s without TLS: it is not a loopback address", listen);
    casenet_buf cert = {0}, key = {0};
    if (c->tls) {
        if (cn_read_file(tls_cert, 1u << 20, &cert) != CASENET_OK ||
            cn_read_file(tls_key, 1u << 20, &key) != CASENET_OK) {
            casenet_buf_free(&cert);
            return cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot read %s or %s", tls_cert,
                            tls_key);
        }
        /* PEM text for libmicrohttpd: NUL-terminate */
        uint8_t *cz = realloc(cert.data, cert.len + 1), *kz = NULL;
        if (cz) {
            cert.data = cz;
            cz[cert.len] = 0;
            kz = sodium_malloc(key.len + 1);
        }
        if (!cz || !kz) {
            casenet_buf_free(&cert);
            casenet_buf_free(&key);
            return cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "out of memory");
        }
        memcpy(kz, key.data, key.len);
        kz[key.len] = 0;
        casenet_buf_free(&key);
        key.data = kz;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | (c->tls ? MHD_USE_TLS : 0);
    struct MHD_OptionItem tls_opts[] = {
        {c->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert.data},
        {c->tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key.data},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, c, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)48,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(64 * 1024), MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_ARRAY,
        tls_opts, MHD_OPTION_END);
    casenet_buf_free(&cert);
    if (key.data)
        sodium_free(key.data);
    if (!d)
        return cli_fail(CLI_LOCAL, CASENET_EIO, "is the port in use?", "cannot listen on %s: %s",
                        listen, strerror(errno));
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        port = info->port;
    snprintf(c->host_ok[0], sizeof c->host_ok[0], "%s:%u", host, port);
    /* cookies ignore ports: two consoles on one host must not share one */
    snprintf(c->cookie, sizeof c->cookie, "cn_session_%u", port);
    if (loopback && strcmp(host, "localhost") != 0)
        snprintf(c->host_ok[1], sizeof c->host_ok[1], "localhost:%u", port);

    int ex = CLI_OK;
    if (console_events_start(c) != CASENET_OK) {
        ex = cli_fail(CLI_LOCAL, CASENET_ENOMEM, NULL, "cannot start the notice thread");
        MHD_stop_daemon(d);
        return ex;
    }
    printf("console of %s listening on %s://%s/\n", c->home->member, c->tls ? "https" : "http",
           c->host_ok[0]);
    fflush(stdout);
    int sig = 0;
    while (sigwait(&sigs, &sig) == 0 && sig == SIGPIPE) {
    }
    fprintf(stderr, "console: stopping (signal %d)\n", sig);
    pthread_mutex_lock(&c->ev_lock);
    c->stopping = 1;
    pthread_cond_broadcast(&c->ev_cond);
    pthread_mutex_unlock(&c->ev_lock);
    MHD_stop_daemon(d);
    console_events_stop(c);
    return ex;
}
