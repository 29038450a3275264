/* admin.c - the admin listener: /metrics, /healthz, /readyz over loopback HTTP (see admin.h). */
#include "admin.h"

#include "metrics.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_CONNECTIONS 16
#define ADMIN_TIMEOUT_S   10

struct admin {
    struct MHD_Daemon *d;
};

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

int admin_parse(const char *spec, struct sockaddr_storage *ss, char *err, size_t err_len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    const char *h = spec;
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        h = spec + 1;
        hl -= 2;
    }
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || hl == 0 || hl >= sizeof host || !end || *end || end == colon + 1 || port < 1 ||
        port > 65535) {
        snprintf(err, err_len,
                 "invalid admin address '%s': expected HOST:PORT, e.g. 127.0.0.1:9740", spec);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai) {
        snprintf(err, err_len, "admin address '%s': cannot resolve '%s'; use 127.0.0.1:PORT", spec,
                 host);
        return -1;
    }
    memset(ss, 0, sizeof *ss);
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    if (!is_loopback(ss)) {
        snprintf(err, err_len,
                 "admin address '%s' is not a loopback address: the admin listener speaks plain "
                 "HTTP (TLS is not configured in this build); bind it to 127.0.0.1:PORT or "
                 "[::1]:PORT and scrape through a local agent or an SSH tunnel",
                 spec);
        return -1;
    }
    return 0;
}

/* Queues body (malloc'd, taken; NULL: out of memory) with status. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, char *body,
                               const char *type)
{
    if (!body)
        return MHD_NO; /* closes the connection: out of memory */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        (void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **state)
{
    (void)cls, (void)version, (void)upload_data, (void)upload_size, (void)state;
    static const char json[] = "application/json";
    bool known =
        strcmp(url, "/metrics") == 0 || strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0;
    if (!known)
        return respond(conn, MHD_HTTP_NOT_FOUND,
                       strdup("{\"error\":\"not found: use /metrics, /healthz or /readyz\"}\n"),
                       json);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                       strdup("{\"error\":\"method not allowed: use GET\"}\n"), json);
    /* One MHD thread serves every connection: the only reader of the
     * snapshots, as metrics_read requires. */
    struct metrics_hot hot;
    struct metrics_slow slow;
    metrics_read(&hot, &slow);
    bool ok = true;
    if (url[1] == 'm')
        return respond(conn, MHD_HTTP_OK, metrics_render(&hot, &slow, cn_now_ms()),
                       "text/plain; version=0.0.4; charset=utf-8");
    char *body = url[1] == 'h' ? metrics_health(&hot, cn_mono_ms(), &ok)
                               : metrics_ready(&hot, &slow, cn_now_ms(), &ok);
    return respond(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body, json);
}

int admin_start(const char *spec, struct admin **out, char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    if (admin_parse(spec, &ss, err, err_len) != 0)
        return -1;
    struct admin *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    uint16_t port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
    /* One internal thread polls every connection (no thread per
     * connection): metrics_read has a single reader. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    a->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)ADMIN_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)ADMIN_TIMEOUT_S, MHD_OPTION_END);
    if (!a->d) {
        snprintf(err, err_len,
                 "cannot listen on admin address %s: %s; choose a free port or drop --admin", spec,
                 errno ? strerror(errno) : "libmicrohttpd failed");
        free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void admin_stop(struct admin *a)
{
    if (!a)
        return;
    MHD_stop_daemon(a->d);
    free(a);
}
