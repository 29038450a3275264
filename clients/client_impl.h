/*
 * client_impl.h - what the files of libcasenet's broker connection share
 * (client.c: the socket, the round trip and notices; client_messages.c,
 * client_lifecycle.c, client_audit.c: the requests). Internal.
 */
#ifndef CASENET_CLIENT_IMPL_H
#define CASENET_CLIENT_IMPL_H

#include "casenet.h"
#include "casenet.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CN_LAST_ERROR_MAX     256
#define CN_LIST_DEFAULT_LIMIT 100
#define CN_LIST_MAX_LIMIT     1000

struct casenet_client {
    void *ctx;
    void *sock;
    void *mon;
    const casenet_keys *keys;
    const casenet_directory *dir;
    char *endpoint;
    char *client_name;
    int timeout_ms;
    uint64_t next_request_id;

    /* Connection state, from monitor events. */
    bool connected;         /* a CURVE handshake succeeded and no disconnect since */
    bool lost_connection;   /* a disconnect happened since the last handshake */
    uint64_t disconnects;   /* counts disconnects: a request sent before one is resent */
    uint32_t auth_failed;   /* ZAP status of a refused handshake (0 = none) */
    int handshake_failures; /* since the last success, for error messages */
    bool subscribed;        /* casenet_client_subscribe succeeded once */
    bool resubscribe;       /* reconnected while subscribed: Subscribe again */

    char last_error[CN_LAST_ERROR_MAX];
    uint32_t retry_after_ms;
    uint64_t stale_version; /* of the last STALE_DIRECTORY answer */

    /* What the broker said in Hello. */
    char broker_id[CASENET_MEMBER_ID_MAX + 1];
    uint32_t max_envelope_bytes;

    /* Pushed notices not yet returned by wait_notice: a ring. */
    casenet_inbox_entry *queue;
    size_t q_head, q_len, q_cap;
};

/*
 * The one request helper every casenet_client_* request goes through: starts
 * a call (catches up on monitor events, reconnects after a ZAP refusal,
 * re-subscribes, clears the last call's error state), wraps body (a pointer to
 * the Casenet__V1__<body_case> message, left with the caller) in a Request and
 * runs the round trip until the client's timeout.
 *
 * On success *out is the Response (free with
 * casenet__v1__response__free_unpacked), error unset and body_case == expect
 * with its body present. Failures: the broker's error code (its message in
 * casenet_client_last_error), CASENET_ETIMEDOUT, CASENET_EUNAUTH (the
 * broker's ZAP refused our key), CASENET_EUNAVAIL, CASENET_EVERSION,
 * CASENET_EBADREQ (a reply of the wrong kind), CASENET_ENOMEM, CASENET_EIO.
 * Only idempotent requests are resent after a disconnect or on a doubling
 * interval (everything but PublishDirectory).
 */
CASENET_NODISCARD int client_request(casenet_client *c, Casenet__V1__Request__BodyCase body_case,
                                     void *body, Casenet__V1__Response__BodyCase expect,
                                     bool idempotent, Casenet__V1__Response **out);
/* Starts a call without a request: for one refused before it is sent, so
 * that its error state replaces the last call's. */
void client_begin(casenet_client *c);

/* Stores a printable copy of msg (control bytes become '?'), truncated, as
 * the text casenet_client_last_error returns. */
void client_set_error(casenet_client *c, const char *msg);

/* limit as the list requests send it: 0 means CN_LIST_DEFAULT_LIMIT, at
 * most CN_LIST_MAX_LIMIT. */
uint32_t client_page_limit(uint32_t limit);

/* True when a cursor-paged answer is well formed: at most limit entries, and
 * a cursor that moves forward when there is more. Otherwise sets
 * "malformed WHAT page from the broker" as c's error and returns false. */
bool client_page_ok(casenet_client *c, const char *what, size_t n, uint32_t limit, bool more,
                    uint64_t next_cursor, uint64_t cursor);

/* True when b is exactly want bytes, or empty and optional. */
bool client_id_bytes_ok(const ProtobufCBinaryData *b, size_t want, bool optional);
/* True for a kind a message or an inbox row may have. */
bool client_kind_known(int k);
/* Copies b into out (malloc'd; an empty b gives an empty out).
 * CASENET_ENOMEM leaves out empty. */
CASENET_NODISCARD int client_copy_bin(const ProtobufCBinaryData *b, casenet_buf *out);

/* Converts an InboxEntry from the (untrusted) broker into *out (which owns a
 * copy of its receipt). CASENET_EBADREQ for a wrong-sized id, an over-long or
 * invalid sender, an unknown enum value; CASENET_ENOMEM. */
CASENET_NODISCARD int client_entry_from_pb(const Casenet__V1__InboxEntry *pb,
                                           casenet_inbox_entry *out);

#endif
