/*
 * backup_blobs.h - the attachment blobs (blobs.h) in a backup file
 * (backup.h): one more table of the backup database,
 *   casenet_backup_blobs(blob TEXT, name TEXT, data BLOB NOT NULL,
 *                        PRIMARY KEY (blob, name))
 * one row per file of DATA/blobs/<blob>/ ("meta", "refs", "msgs" and each
 * chunk by its decimal index), the bytes as they are on disk: ciphertext
 * chunks, never keys (docs/operations.md, "Backup and restore").
 *
 * Which blobs: those whose "msgs" names a message of the snapshot (or that
 * have "refs" but no "msgs", kept before "msgs" existed). Left out: uploads
 * no Submit references yet (in progress or abandoned; their sender uploads
 * them again after a restore) and blobs referenced only by messages newer
 * than the snapshot (those messages are not in the backup either). The
 * broker deletes no blob while the copy holds the blobs lock shared
 * (blobs_lock), so that a blob a snapshot message references is still there.
 *
 * Each function prints what is wrong on stderr (prefixed "casenetd: ").
 */
#ifndef BROKER_BACKUP_BLOBS_H
#define BROKER_BACKUP_BLOBS_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define BACKUP_BLOBS_TABLE "casenet_backup_blobs"

/* Runs sql on db; prints the error and returns false when it fails (the
 * one SQL helper of backup.c and this file). */
bool backup_sql_exec(sqlite3 *db, const char *sql);

/* Copies into dst (the backup being written: the snapshot's copy, so its
 * messages table is the snapshot's) the blobs of data_dir its messages
 * reference. The caller holds the blobs lock shared from before the
 * snapshot until this returns. *n and *bytes: blobs and chunk bytes copied. */
bool backup_blobs_copy(sqlite3 *dst, const char *data_dir, uint64_t *n, uint64_t *bytes);

/* Checks the backup's blobs: each has its meta, its chunk count and sizes
 * agree with it (chunks are ciphertext: their contents cannot be checked
 * without the recipients' keys), and every blob a message still needs
 * (not purged, not expired at the snapshot, a recipient's row neither
 * completed nor dead) is present.
 * A backup without the table has no blobs. Prints each problem (up to 20)
 * and a summary line; false when any. */
bool backup_blobs_verify(sqlite3 *db, const char *file);

/* Writes the backup's blobs into data_dir/blobs (files 0600, directories
 * 0700, each fsync'd). *n = blobs written. */
bool backup_blobs_restore(sqlite3 *src, const char *data_dir, uint64_t *n);

/* Removes data_dir/blobs and everything in it (restore --force, or a
 * restore that failed). True when it is gone or never was. */
bool backup_blobs_remove(const char *data_dir);

#endif
