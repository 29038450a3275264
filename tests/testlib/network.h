/*
 * network.h - a loopback casenet network for integration tests: a temporary
 * directory holding an authority key, a broker keyring, member keyrings and
 * the signed directory (built on tl_net), a real casenetd child process on
 * 127.0.0.1, and raw CURVE DEALER connections that speak Request/Response.
 * Every function aborts the test process on an unexpected failure (a fixture,
 * not production code).
 *
 * Files under tn->root: authority.key/.pub, <id>.key/.pub for the broker and
 * every member, directory.pb (what --directory names), data/ (--data),
 * casenetd.log (the broker's stderr, appended across restarts).
 */
#ifndef CASENET_TESTLIB_NETWORK_H
#define CASENET_TESTLIB_NETWORK_H

#include "casenet.h"
#include "casenet.pb-c.h"
#include "tl_net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TN_BROKER_ID "vn.broker"

typedef struct tn_network {
    tl_net *net;    /* authority, keyrings (the broker is TN_BROKER_ID), directory */
    char *root;     /* the temporary directory */
    char *data_dir; /* root/data */
    char *directory_path;
    char *authority_path;
    char *broker_key_path;
    char *log_path;
    char *config_path; /* NULL, or an INI file passed with --config */
    char endpoint[64]; /* tcp://127.0.0.1:PORT of the running broker */
    pid_t pid;         /* 0 when not running */
    void *zctx;        /* ZeroMQ context for tn_conn */
} tn_network;

/* Builds a network of the broker plus members given as in tl_net_new
 * ("id[:role,role[:group,group]]") and writes every file. Does not start the
 * broker. */
tn_network *tn_new(const char *const *members, size_t n);
/* tn_new, then (when ini is not NULL) writes ini to root/casenetd.ini as
 * tn->config_path, then tn_start: a running broker with extra config. */
tn_network *tn_new_started(const char *const *members, size_t n, const char *ini);
/* Stops the broker if it runs (asserting a clean exit), removes root. */
void tn_free(tn_network *tn);

/* (Re)writes directory.pb from tn->net->signed_dir. */
void tn_write_directory(tn_network *tn);
/* Starts casenetd ($CASENET_BINARY_DIR/broker/casenetd) on a free loopback
 * port with --data/--key/--directory/--authority (and --config when set)
 * and waits until it answers a Hello (10 s at most, 60 s under a wrapper).
 * $CASENET_BROKER_WRAPPER, when set, is a command (split on spaces) run
 * with the broker's command line appended, e.g. valgrind; its exit status
 * is what tn_stop returns. */
void tn_start(tn_network *tn);
/* Starts casenetd again on the endpoint of the previous tn_start (clients
 * that stay connected across a restart reconnect to the same address). */
void tn_restart(tn_network *tn);
/* SIGTERM, waits, and returns the exit status (-1 if killed by a signal). */
int tn_stop(tn_network *tn);
/* SIGKILL and waits: a crash. */
void tn_kill(tn_network *tn);
/* Sends a signal to the running broker (e.g. SIGHUP). */
void tn_signal(tn_network *tn, int sig);
/* True when the broker's log (stderr) contains needle. */
bool tn_log_contains(const tn_network *tn, const char *needle);
/* The keyring of a member (or of TN_BROKER_ID). */
casenet_keys *tn_keys(const tn_network *tn, const char *id);

/* A CURVE DEALER connection as one member (or as arbitrary CURVE keys). */
typedef struct tn_conn {
    tn_network *tn;
    void *sock;
    uint64_t next_id;
    casenet_buf *notices; /* Notice responses received out of turn */
    size_t n_notices;
} tn_conn;

tn_conn *tn_connect(tn_network *tn, const casenet_keys *k);
tn_conn *tn_connect_curve(tn_network *tn, const uint8_t pk[32], const uint8_t sk[32]);
void tn_close(tn_conn *c);

/* Sends n frames as one message. */
void tn_send_frames(tn_conn *c, const void *const frames[], const size_t lens[], size_t n);
/* Receives one single-frame message within timeout_ms: true and *out
 * (malloc'd) on success, false on timeout. */
bool tn_recv(tn_conn *c, int timeout_ms, casenet_buf *out);

/* Sends req (protocol_version 1 when 0; request_id assigned when 0) and
 * returns the Response with its request id, or NULL on timeout. Notices
 * arriving meanwhile are queued for tn_next_notice. Free the result with
 * casenet__v1__response__free_unpacked(r, NULL). */
Casenet__V1__Response *tn_call(tn_conn *c, Casenet__V1__Request *req, int timeout_ms);
/* The next pushed Notice response (queued or received within timeout_ms),
 * or NULL. */
Casenet__V1__Response *tn_next_notice(tn_conn *c, int timeout_ms);

/* Convenience requests; each returns the Response (NULL on timeout). */
Casenet__V1__Response *tn_hello(tn_conn *c);
Casenet__V1__Response *tn_submit(tn_conn *c, const uint8_t *env, size_t len);
Casenet__V1__Response *tn_list(tn_conn *c, int state, uint64_t cursor, uint32_t limit);
Casenet__V1__Response *tn_fetch(tn_conn *c, const uint8_t id[16]);
Casenet__V1__Response *tn_send_receipt(tn_conn *c, const uint8_t *r, size_t len);
Casenet__V1__Response *tn_publish(tn_conn *c, const uint8_t *dir, size_t len);
Casenet__V1__Response *tn_get_directory(tn_conn *c);
Casenet__V1__Response *tn_subscribe(tn_conn *c);

/* The response's error code (0 = OK). Aborts on NULL. */
int tn_code(const Casenet__V1__Response *r);

/* Seals a referral whose summary is text from `from` to the n members `to`
 * with the network's current directory. *id (may be NULL) gets its id. */
casenet_buf tn_seal(tn_network *tn, const char *from, const char *const *to, size_t n,
                    const char *text, uint8_t id[16]);

/* A receipt of status st for message id (envelope hash), sent by sender,
 * signed at `at` by signer, its recipient, with signer's keys (a COMPLETED
 * receipt carries an outcome). */
casenet_buf tn_sign_receipt(tn_network *tn, const char *signer, const uint8_t id[16],
                            const uint8_t hash[32], const char *sender, casenet_receipt_status st,
                            int64_t at);

#endif
