/*
 * server.h - the broker's event loop: one ROUTER socket (CURVE server) for
 * members, the ZAP handler and a signal fd, polled together with one
 * periodic timer. Each turn drains every ready request (up to batch_max) into
 * a batch, handles the batch in one store transaction, commits once and only
 * then sends the replies and pushes inbox notices to subscribed connections.
 * If the commit fails every request of the batch is answered UNAVAILABLE: no
 * receipt ever exists for uncommitted data.
 */
#ifndef BROKER_SERVER_H
#define BROKER_SERVER_H

#include "broker.h"

struct server;

/* Creates the ZeroMQ context, binds the ZAP handler, then the ROUTER on
 * b->cfg->listen with the broker's CURVE secret key and every safety option
 * (ZAP domain enforced, ROUTER_MANDATORY, MAXMSGSIZE, heartbeats, handshake
 * timeout, HWMs). sigfd is a signalfd for SIGTERM, SIGINT and SIGHUP (or -1).
 * b is borrowed and must outlive the server. CASENET_EIO when an endpoint
 * cannot be bound (the reason is logged). */
int server_open(struct broker *b, int sigfd, struct server **out);

/* Runs until SIGTERM or SIGINT: then finishes the batch in hand, appends a
 * BROKER_STOP audit event, signs a last tree head over it and returns
 * CASENET_OK. The timer signs a tree head every AUDIT_HEAD_INTERVAL_MS when
 * the log grew. SIGHUP re-reads the
 * directory file given by --directory and swaps it in when it verifies, has
 * not expired and is of a higher version. Returns an error only when the
 * loop cannot go on (poll failed). */
int server_run(struct server *s);

/* Closes the sockets (after a short linger so the last replies leave) and
 * the context. Accepts NULL. */
void server_close(struct server *s);

#endif
