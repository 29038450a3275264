/*
 * console.h - `casenet console`: the agency's web console, an HTTP server
 * (libmicrohttpd, one thread per connection) inside the agency's own casenet,
 * next to its home and keys. Built only on the public library (casenet.h)
 * and the CLI's home code, in four parts:
 *
 *   console_db.c      DIR/console.db: staff accounts, machine tokens and the
 *                     local disclosure ledger; in-memory sessions and the
 *                     login rate limit
 *   console_http.c    the server: Host check, security headers, size limits,
 *                     authentication, CSRF, static pages, routing
 *   console_api.c     the JSON API under /api/v1/ over one broker connection
 *   console_events.c  a second broker connection subscribed to push notices,
 *                     fanned out to the pages as Server-Sent Events
 *
 * Nothing here logs a password, a token, a session id or message content.
 */
#ifndef CASENET_CLI_CONSOLE_H
#define CASENET_CLI_CONSOLE_H

#include "casenet.h"
#include "cli.h"
#include "home.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_DB_FILE       "console.db"
#define CONSOLE_NAME_MAX      64 /* staff user and token names: [a-z0-9._-]{1,64} */
#define CONSOLE_MAX_SESSIONS  256
#define CONSOLE_IDLE_MS       (30 * 60 * 1000)
#define CONSOLE_LOGIN_FAILS   5      /* failures per name before a lock */
#define CONSOLE_LOGIN_LOCK_MS 300000 /* how long the lock lasts */
#define CONSOLE_EVENTS        256    /* ring of recent events for SSE */
#define CONSOLE_DRAFTS        128    /* remembered sends (double-submit guard) */
#define CONSOLE_BODY_MAX      (1024u * 1024u)

enum console_role {
    ROLE_NONE = 0,
    ROLE_VIEWER = 1,     /* lists and metadata; no content, no signing */
    ROLE_CASEWORKER = 2, /* reads content, sends, signs receipts */
    ROLE_SUPERVISOR = 3, /* also the disclosure ledger */
};

const char *console_role_name(enum console_role r);
/* ROLE_NONE for an unknown name. */
enum console_role console_role_parse(const char *name);
/* True when name matches [a-z0-9][a-z0-9._-]{0,63}. */
bool console_name_valid(const char *name);

/* ------------------------------------------------------------ db (console_db.c) */

typedef struct console_db console_db;

/* Opens (creating, mode 0600) DIR/console.db. CASENET_EIO, reported on
 * stderr. *out is the caller's (console_db_close). The handle is used under
 * its own mutex: callable from any thread. */
CASENET_NODISCARD int console_db_open(const char *home_dir, console_db **out);
void console_db_close(console_db *db);

/* Adds a user with an Argon2id hash of password (crypto_pwhash_str).
 * CASENET_ECONFLICT when the name exists, CASENET_ENOMEM when hashing cannot
 * get its memory, CASENET_EIO. */
CASENET_NODISCARD int console_user_add(console_db *db, const char *name, enum console_role role,
                                       const char *password);
/* Disables a user (and ends its sessions in a running console at its next
 * request). CASENET_ENOTFOUND. */
CASENET_NODISCARD int console_user_disable(console_db *db, const char *name);
/* Checks name and password: CASENET_OK with *role, CASENET_EUNAUTH for an
 * unknown or disabled name or a wrong password (the same time either way). */
CASENET_NODISCARD int console_user_check(console_db *db, const char *name, const char *password,
                                         enum console_role *role);
/* The role of an enabled user; ROLE_NONE when unknown or disabled. */
enum console_role console_user_role(console_db *db, const char *name);
/* Prints the users (name, role, state, created) on stdout. */
int console_user_print(console_db *db);

/* Adds a machine token; writes the token (64 hex digits, shown once) into
 * token_out. Only its SHA-256 is stored. CASENET_ECONFLICT, CASENET_EIO. */
CASENET_NODISCARD int console_token_add(console_db *db, const char *name, enum console_role role,
                                        char token_out[65]);
/* The token's name and role when token is an enabled token; else ROLE_NONE. */
enum console_role console_token_check(console_db *db, const char *token,
                                      char name[CONSOLE_NAME_MAX + 1]);

/* Appends to the disclosure ledger: who (user), what (action: "read",
 * "receipt:accepted", "send", ...), which message (hex, may be NULL), which
 * case (hex, may be NULL). CASENET_EIO when it cannot be written: the
 * caller must then not disclose. */
CASENET_NODISCARD int console_ledger_add(console_db *db, const char *user, const char *action,
                                         const char *message_hex, const char *case_hex);
/* The ledger, newest first, at most limit rows, as a malloc'd JSON array
 * string (NULL on failure). */
char *console_ledger_json(console_db *db, size_t limit);

/* ------------------------------------------------------------ sessions (console_db.c) */

struct console_session {
    char user[CONSOLE_NAME_MAX + 1];
    enum console_role role;
    char csrf[65];
    bool machine; /* a bearer token: no cookie, no CSRF */
};

typedef struct console_sessions console_sessions;

console_sessions *console_sessions_new(int64_t idle_ms);
void console_sessions_free(console_sessions *s);
/* Creates a session; writes its id (64 hex digits, the cookie) into id_out
 * and its copy into *out. CASENET_ENOMEM when full of live sessions. */
CASENET_NODISCARD int console_session_create(console_sessions *s, const char *user,
                                             enum console_role role, char id_out[65],
                                             struct console_session *out);
/* Looks up a live session and refreshes its idle timer (touch). false when
 * unknown or idle too long (then it is removed). */
bool console_session_get(console_sessions *s, const char *id, bool touch,
                         struct console_session *out);
void console_session_end(console_sessions *s, const char *id);
/* Login throttle by attempted name: false (with *retry_s) while locked. */
bool console_login_allowed(console_sessions *s, const char *name, unsigned *retry_s);
/* Records the outcome of a login for name. */
void console_login_result(console_sessions *s, const char *name, bool ok);

/* ------------------------------------------------------------ the running console */

struct console_event {
    uint64_t n; /* 1, 2, ...: the SSE id */
    char json[512];
};

struct console {
    struct home *home;
    console_db *db;
    console_sessions *sessions;
    const char *assets; /* directory of the static pages */
    /* accepted Host header values: the listen address, localhost on
     * loopback, and the --public-host a TLS reverse proxy forwards */
    char host_ok[3][300];
    char cookie[32]; /* the session cookie's name: cn_session_PORT */
    bool tls;
    volatile int stopping;

    /* home->dir: read-locked by every API request, write-locked by the
     * notice thread when it stores a newer directory. Taken before net_lock. */
    pthread_rwlock_t dir_lock;
    pthread_mutex_t net_lock; /* the broker connection below and the drafts */
    casenet_client *client;   /* NULL until connected */
    const char *broker;       /* endpoint */
    struct console_draft {
        uint8_t draft[16];
        uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
        casenet_buf envelope;
    } drafts[CONSOLE_DRAFTS];
    size_t next_draft;

    pthread_mutex_t ev_lock; /* the ring below */
    pthread_cond_t ev_cond;
    struct console_event events[CONSOLE_EVENTS];
    uint64_t ev_count;
    bool broker_up;
    pthread_t ev_thread;

    /* the coordinator's view (console_coord.h): set when the home's member
     * has role coordinator, else NULL */
    struct coord_cache *coord;
};

/* console_events.c: starts the notice thread (a second broker connection,
 * subscribed, which also takes a newer directory from the broker every 10
 * minutes); stop with console_events_stop. */
CASENET_NODISCARD int console_events_start(struct console *c);
void console_events_stop(struct console *c);
/* Appends an event (a JSON object) to the ring and wakes SSE readers. */
void console_events_push(struct console *c, const char *json);

/* console_http.c: runs the server until SIGINT/SIGTERM. Returns an exit
 * code. listen is "ADDR:PORT"; tls_cert/tls_key may be NULL. */
int console_serve(struct console *c, const char *listen, const char *tls_cert, const char *tls_key);

/* ------------------------------------------------------------ API (console_api.c) */

/* One API request, as console_http.c hands it over. */
struct console_req {
    const char *method;
    const char *path; /* after /api/v1 */
    const char *body;
    size_t body_len;
    const struct console_session *who;
    void *conn; /* struct MHD_Connection, for query arguments */
};

/* A JSON answer: HTTP status and a malloc'd body. */
struct console_resp {
    unsigned status;
    char *body;
    const char *type; /* NULL: JSON; else a static Content-Type (CSV, HTML) */
    /* file: a download instead of body: file_size bytes of file_fd (closed
     * by the server), named by the Content-Disposition disposition
     * (malloc'd), served as application/octet-stream */
    bool file;
    int file_fd;
    uint64_t file_size;
    char *disposition;
};

/* ------------------------------------------------------------ requests (console_req.c) */

/* True for "/a.ext" or "/dir/a.ext" made of [A-Za-z0-9_.-], no segment
 * starting with a dot: nothing can leave the assets directory. */
bool console_static_path_ok(const char *url);

/* A checked POST /messages body. The strings point into in. */
struct console_send {
    json_t *in;
    casenet_seal_opts so; /* so.to points into to_ids, so.case_ref/in_reply_to below */
    const char *to_ids[CASENET_MAX_RECIPIENTS];
    bool has_draft;
    uint8_t draft[16], case_ref[16], reply_to[16];
    const char *case_hex; /* NULL when none */
    casenet_buf payload;  /* the serialised Payload */
};

/* Parses and checks a send body (kind, recipients, urgency, status, ids,
 * the payload converted by casenet_payload_from_json, the urgency chosen
 * once). true with *s filled (console_send_clear); false with a 400 in err
 * naming the field. */
bool console_parse_send(const char *body, size_t len, struct console_send *s,
                        struct console_resp *err);
void console_send_clear(struct console_send *s);
/* The longest note a receipt may carry, in bytes. */
#define CONSOLE_NOTE_MAX 4000
/* Parses a receipt body {status, reason?, outcome?, note?} into rec's status,
 * reason and outcome code, and *note (malloc'd, the caller frees; NULL when
 * none): the words sealed to the sender as a STATUS note with accepted,
 * declined or completed. false with a 400 in err naming the field, *note
 * NULL. */
bool console_parse_receipt(const char *body, size_t len, casenet_receipt *rec, char **note,
                           struct console_resp *err);

/* Handles an authenticated API request (everything but the session itself
 * and the events stream). */
void console_api(struct console *c, const struct console_req *r, struct console_resp *out);
/* Sets out to 200 with o (consumed) as its body; 500 NOMEM when o is NULL. */
void console_ok(struct console_resp *out, json_t *o);
/* Sets out to the error err from origin: "WHAT: reason" (the broker's own
 * reason when it gave one) with the HTTP status of err's class; after a
 * broker error also does console_client_failed. */
void console_fail(struct console_resp *out, struct console *c, int err, enum cli_origin origin,
                  const char *what);
/* console_actions.c: POST /messages (a referral or takedown request from
 * the forms, with uploaded attachments), POST /messages/{id}/receipts (a
 * signed receipt, its note sealed to the sender first) and POST
 * /messages/{id}/reveal (opens a sealed note). Caseworkers and up; each a
 * ledger entry before it happens. */
void console_api_send(struct console *c, const struct console_req *r, struct console_resp *out);
void console_api_receipt(struct console *c, const struct console_req *r, const uint8_t id[16],
                         struct console_resp *out);
void console_api_reveal(struct console *c, const struct console_req *r, const uint8_t id[16],
                        struct console_resp *out);
/* The HTTP status of a casenet error from origin (by the CLI's exit
 * classes). */
unsigned console_http_status(int err, enum cli_origin origin);
/* True when r's user has at least role min; else a 403 in out. */
bool console_need_role(struct console_resp *out, const struct console_req *r,
                       enum console_role min);
/* The query argument name of r, or NULL. */
const char *console_arg(const struct console_req *r, const char *name);
/* id as 32 lowercase hex digits (a new JSON string; NULL on no memory). */
json_t *console_hex16(const uint8_t id[16]);
/* The shared broker connection, connected when needed (CASENET_OK), and the
 * clean-up after a failed call on it. Both under net_lock. */
CASENET_NODISCARD int console_client(struct console *c);
void console_client_failed(struct console *c, int err);
/* Fetches message id's envelope into *env through the shared connection
 * (connected when needed); on failure sets out ("cannot fetch the
 * message: reason") and returns the error. Under net_lock. */
CASENET_NODISCARD int console_fetch(struct console *c, const uint8_t id[16], casenet_buf *env,
                                    struct console_resp *out);
/* Sets out to {"error": name, "message": msg, "field": field?}. */
void console_error(struct console_resp *out, unsigned status, const char *name, const char *msg,
                   const char *field);

#endif
