/*
 * admin.h - the admin listener (--admin, INI [broker] admin): plain HTTP on
 * a loopback address, served by libmicrohttpd from one thread of its own
 * that reads only the metrics snapshots (metrics.h), never the store.
 *   GET /metrics  Prometheus text exposition format 0.0.4
 *   GET /healthz  200 while the loop turns, else 503 (JSON)
 *   GET /readyz   200 when the store commits, the directory is valid for
 *                 more than a day and the disk is above the reserve, else
 *                 503 with the failing checks (JSON)
 * Other paths 404, other methods 405.
 */
#ifndef BROKER_ADMIN_H
#define BROKER_ADMIN_H

#include <stddef.h>
#include <sys/socket.h>

struct admin;

/* Parses "HOST:PORT" ("127.0.0.1:9740", "[::1]:9740", "localhost:9740")
 * into ss. Only loopback addresses are accepted: the listener has no TLS.
 * Returns 0, or -1 with a message saying what to do in err. */
int admin_parse(const char *spec, struct sockaddr_storage *ss, char *err, size_t err_len);

/* Parses spec as above and starts serving on it. The metrics module must be
 * initialised (metrics_init) and outlive the listener. Returns 0 and *out,
 * or -1 with the reason in err. */
int admin_start(const char *spec, struct admin **out, char *err, size_t err_len);

/* Stops the thread and closes the socket. Accepts NULL. */
void admin_stop(struct admin *a);

#endif
