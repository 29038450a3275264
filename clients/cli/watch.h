/*
 * watch.h - the parts of `casenet watch` (cmd_watch.c) that stand alone: the
 * hand-over journal in the member home (watch_journal.c) and the hand-over
 * itself, to a spool directory and/or a command (watch_handover.c).
 *
 * The journal is what makes the hand-over happen once: a row per inbox row
 * (message id) that watch has started to hand over, moving through
 *
 *   PENDING  --spool tmp durable-->  SPOOLING  --rename-->  SPOOLED
 *      \________________ taken (spool in place, exec exit 0) ________> HANDED
 *   HANDED  --the broker accepted the receipt (or none is due)-->  DONE
 *   REJECTED: did not verify; retried only under a newer directory
 *
 * Every write is one committed SQLite transaction (WAL, synchronous=FULL),
 * so a state, once written, survives a crash of watch or of the machine.
 */
#ifndef CASENET_CLI_WATCH_H
#define CASENET_CLI_WATCH_H

#include "casenet.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WATCH_JOURNAL_FILE "watch.db"
#define WATCH_LOCK_FILE    "watch.lock"

/* ------------------------------------------------------------ journal */

enum wj_state {
    WJ_NONE = 0,     /* not in the journal (never written) */
    WJ_PENDING = 1,  /* a hand-over failed (exec); retry at next_try_ms */
    WJ_SPOOLING = 2, /* the spool's temporary file is durable; rename maybe done */
    WJ_SPOOLED = 3,  /* the spool file is in place; the exec is still due */
    WJ_HANDED = 4,   /* taken by the agency; the receipt (if any) is still due */
    WJ_DONE = 5,     /* taken, and the receipt accepted by the broker (or none due) */
    WJ_REJECTED = 6, /* did not verify under directory dir_version: not handed over */
};

/* One journal row. receipt is the signed `delivered` receipt to send (empty
 * for rows that get none: forwarded receipts, or not yet signed). */
struct wj_row {
    enum wj_state state;
    uint64_t seq;
    int kind;
    uint32_t attempts;   /* failed hand-overs so far */
    int64_t next_try_ms; /* wall clock; 0 = now */
    uint64_t dir_version;
    char sender[CASENET_MEMBER_ID_MAX + 1]; /* for log lines of resumed rows */
    casenet_buf receipt;
};

typedef struct wj wj;

/* Opens (creating if needed, mode 0600) the journal DIR/watch.db of the home
 * at dir and takes an exclusive lock on DIR/watch.lock, so that one watch
 * runs per home. CASENET_ECONFLICT when another process holds the lock,
 * CASENET_EIO when a file cannot be opened or the database is unusable (a
 * message is printed on stderr). *out is the caller's (wj_close). */
CASENET_NODISCARD int wj_open(const char *dir, wj **out);
/* Closes the journal and releases the lock. Accepts NULL. */
void wj_close(wj *j);

/* Reads the row of message id into *row (row->receipt malloc'd: release with
 * wj_row_clear). A message not in the journal gives CASENET_OK with
 * row->state = WJ_NONE. CASENET_EIO on a database error. */
CASENET_NODISCARD int wj_get(wj *j, const uint8_t id[CASENET_MESSAGE_ID_BYTES], struct wj_row *row);
/* Writes the row of message id (insert or replace) and commits it durably
 * before returning. CASENET_EIO on a database error (nothing written). */
CASENET_NODISCARD int wj_put(wj *j, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                             const struct wj_row *row);
/* Lists the ids of every row in the given state, oldest first: *ids is a
 * malloc'd array of n ids (free()). CASENET_EIO, CASENET_ENOMEM. */
CASENET_NODISCARD int wj_list_state(wj *j, enum wj_state state,
                                    uint8_t (**ids)[CASENET_MESSAGE_ID_BYTES], size_t *n);
/* Releases row->receipt and zeroes *row. */
void wj_row_clear(struct wj_row *row);
/* A short name of the state ("pending", "spooling", ...). */
const char *wj_state_name(enum wj_state s);

/* ------------------------------------------------------------ hand-over */

/* Writes json (len bytes) as SPOOL/<idhex>.json for the journal row *row of
 * message id, resuming what a killed watch left:
 *  - state below SPOOLING: writes SPOOL/.<idhex>.json.tmp, fsyncs it and the
 *    directory, records SPOOLING, renames it into place and fsyncs the
 *    directory again;
 *  - SPOOLING: if the temporary file is still there the rename had not
 *    happened: it is done now; if it is gone, the file was already moved into
 *    place (and perhaps already taken by the agency): nothing is written;
 *  - SPOOLED and later: nothing to do.
 * On success row->state is at least WJ_SPOOLED in memory (the caller records
 * the next state). On failure (CASENET_EIO, CASENET_ENOMEM or a journal
 * error) err (errlen bytes) receives a short reason with strerror(errno);
 * a SPOOLING row whose rename failed stays SPOOLING and is resumed. */
CASENET_NODISCARD int wh_spool(wj *j, const char *spool, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                               struct wj_row *row, const char *json, size_t len, char *err,
                               size_t errlen);

/* The path of message id's file in spool: malloc'd, NULL on out of memory. */
char *wh_spool_path(const char *spool, const uint8_t id[CASENET_MESSAGE_ID_BYTES]);

/* What a command run learns, for the log. */
struct wh_exec_result {
    bool taken;    /* exit status 0 */
    int status;    /* exit status, or -1 */
    int signal;    /* the signal that ended it, or 0 */
    bool timedout; /* killed by watch after timeout_ms */
};

/* Saves the attachments of an opened message (payload, info) into dir
 * (created when missing; nothing is created for a message without any),
 * each checked against the signed manifest before it is renamed into place
 * (casenet_attachment_download). A file already there under its name counts
 * as saved: only watch writes into dir, and only checked files get a name,
 * so a resumed hand-over does not download it again. *paths (malloc'd, NULL
 * when none) is the saved paths, one per line; *n their number. On failure
 * err receives the file name and why: CASENET_ECRYPTO/ECOMMIT when a file
 * does not match its manifest, CASENET_EBADREQ for a bad manifest, the
 * client's error (transient ones included) for a failed download. */
CASENET_NODISCARD int wh_save_attachments(casenet_client *c, const casenet_message_info *info,
                                          const casenet_buf *payload, const char *dir, char **paths,
                                          size_t *n, char *err, size_t errlen);

/* The attachments directory of message id: SPOOL/<idhex>.attachments with
 * a spool, else HOME/attachments/<idhex>. malloc'd, NULL on out of memory. */
char *wh_attachments_dir(const char *spool, const char *home,
                         const uint8_t id[CASENET_MESSAGE_ID_BYTES]);

/* Runs `/bin/sh -c cmd` in its own process group with json on its stdin (a
 * sealed in-memory file, so a command that does not read it cannot block
 * watch), stdout and stderr inherited, and in its environment
 * CASENET_MESSAGE_ID, CASENET_MESSAGE_KIND, CASENET_MESSAGE_FROM, when
 * spool_file is not NULL, CASENET_SPOOL_FILE and, when attach_dir is not
 * NULL, CASENET_ATTACHMENT_DIR and CASENET_ATTACHMENTS (attach_paths: the
 * saved files' paths, one per line). Waits for it up to timeout_ms
 * (then kills its process group). While it runs, wh_exec_child holds its
 * pid (for a signal handler that must kill it). CASENET_OK with *res filled
 * whenever the command could be started; CASENET_EIO/ENOMEM otherwise. */
CASENET_NODISCARD int wh_exec(const char *cmd, const char *json, size_t len, const char *id_hex,
                              const char *kind, const char *from, const char *spool_file,
                              const char *attach_dir, const char *attach_paths, int timeout_ms,
                              struct wh_exec_result *res);

/* The process group of the running command, 0 when none. */
extern volatile sig_atomic_t wh_exec_child;

/* ------------------------------------------------------------ hand-over JSON */

/* The hand-over JSON of a verified message e with its header info and its
 * payload as JSON ({"message": {...}, "payload": {...}}): only what the
 * sender signed (the header) and the broker's own facts (seq, received_at).
 * *out is malloc'd (with a final newline). CASENET_EBADREQ when payload_json
 * does not parse, CASENET_ENOMEM. (receipt_json, in commands.h, is its
 * sibling for receipt rows.) */
int watch_message_json(const casenet_inbox_entry *e, const casenet_message_info *info,
                       const casenet_buf *payload_json, char **out, size_t *len);

#endif
