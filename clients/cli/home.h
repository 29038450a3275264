/*
 * home.h - the member home of the casenet CLI (--home DIR, else
 * $CASENET_HOME, else ~/.casenet):
 *
 *   DIR/             mode 0700
 *   DIR/member.key   the member's secret keyring, 0600
 *   DIR/authority.pub  the pinned authority key (PublicKeyFile)
 *   DIR/directory    the last verified SignedDirectory
 *   DIR/state        key=value: member, directory_version (highest seen), broker
 *
 * Functions return CLI exit codes and report their own errors (cli_fail).
 */
#ifndef CASENET_CLI_HOME_H
#define CASENET_CLI_HOME_H

#include "casenet.h"

#include <stdbool.h>
#include <stdint.h>

#define HOME_KEY_FILE       "member.key"
#define HOME_AUTHORITY_FILE "authority.pub"
#define HOME_DIRECTORY_FILE "directory"
#define HOME_STATE_FILE     "state"
#define HOME_BROKER_MAX     256

struct home {
    char *path;
    casenet_keys *keys;
    uint8_t authority_pk[CASENET_SIGN_PK_BYTES];
    casenet_directory *dir;
    char member[CASENET_MEMBER_ID_MAX + 1];
    uint64_t directory_version; /* highest version seen */
    char broker[HOME_BROKER_MAX];
};

/* The home path: opt when not NULL, else $CASENET_HOME, else $HOME/.casenet.
 * malloc'd; NULL (reported) when none can be found. */
char *home_path(const char *opt);

/* Opens the home at path: loads the state, the keyring (refusing a group- or
 * world-readable key file), the pinned authority key and the stored
 * directory, verified against that key with min_version = the highest version
 * seen. An expired directory fails (exit 3) with a hint to pull. On success
 * *out is the caller's (home_free). */
int home_open(const char *path, struct home **out);
/* Like home_open, but an expired directory is loaded anyway (verified with
 * its signature only) and *expired set: for `directory update`/`pull`, which
 * are how an expired home recovers, and `directory show`. */
int home_open_allow_expired(const char *path, struct home **out, bool *expired);
void home_free(struct home *h);

/* Verifies bytes as a directory for h (pinned key, not expired, version >=
 * the highest seen; the same version only with the same bytes), stores it
 * atomically, records its version and replaces h->dir. *old_version (may be
 * NULL) gets the previous version. */
int home_store_directory(struct home *h, const uint8_t *bytes, size_t len, uint64_t *old_version);

/* Writes h's state file atomically (0600). */
int home_save_state(const struct home *h);

#endif
