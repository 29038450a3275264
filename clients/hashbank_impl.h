/*
 * hashbank_impl.h - what the files of the hash bank share inside it
 * (hashbank.c: schema and applying shares; hashbank_log.c: per-source
 * figures, recorded matches and feedback, read back by page). Not for the
 * CLI: it uses hashbank.h.
 */
#ifndef CASENET_HASHBANK_IMPL_H
#define CASENET_HASHBANK_IMPL_H

#include "hashbank.h"

#include <sqlite3.h>

/* How long a statement waits for another process's write lock, and how
 * long recording a match does (a lookup must not stall behind an import). */
#define HASHBANK_BUSY_MS        5000
#define HASHBANK_RECORD_WAIT_MS 50

struct hashbank {
    sqlite3 *db;
    sqlite3_stmt *get, *put, *feedback, *lookup;
};

/* Prepares sql on b's database: CASENET_OK or CASENET_EIO. */
int hashbank_prepare(hashbank *b, const char *sql, sqlite3_stmt **st);
/* The wall clock in milliseconds. */
int64_t hashbank_now_ms(void);

#endif
