/*
 * backup.h - `casenetd backup`, `casenetd verify-backup` and `casenetd
 * restore FILE`: an online copy of the SQLite store with the data
 * directory's directory.pb, its offline check, and its restore into an empty
 * data directory, marked as restored so that the broker refuses to serve
 * until the operator decides how the audit log goes on (restore.h).
 *
 * The backup file is itself a SQLite database (docs/operations.md, "Backup
 * and restore"): the store's pages as SQLite's online backup API copied
 * them from one read snapshot, in rollback-journal mode, plus one table
 *   casenet_backup(name TEXT PRIMARY KEY, data BLOB NOT NULL)
 * with the rows "format" = "casenet-backup-v1", "directory.pb" = the data
 * directory's directory file (absent when the directory held none) and
 * "created_ms" = the time the snapshot was taken (decimal text). The
 * restore drops that table. Mode 0600, created with O_EXCL.
 *
 * Each *_main function takes the arguments after the subcommand's name
 * (argv[0] is the subcommand), prints what it did or what to do, and
 * returns the process's exit code.
 */
#ifndef BROKER_BACKUP_H
#define BROKER_BACKUP_H

#include "casenet.h"

#include <stdbool.h>
#include <stdint.h>

#define BACKUP_FORMAT "casenet-backup-v1"
/* Pages copied per step of the backup API, and the pause between steps:
 * the source is read from one snapshot (WAL mode: the broker's writer is
 * never blocked), the pause leaves the disk to the broker. */
#define BACKUP_STEP_PAGES 256
#define BACKUP_PAUSE_MS   2
#define BACKUP_SYNC_STEPS 16 /* 32 MiB */
/* Exit code of a broker whose store was restored and awaits the decision. */
#define BACKUP_EXIT_RESTORED 3

/* casenetd backup --data DIR --out FILE */
int backup_main(int argc, char **argv);
/* casenetd verify-backup FILE --authority FILE */
int backup_verify_main(int argc, char **argv);
/* casenetd restore FILE --data DIR [--force] */
int backup_restore_main(int argc, char **argv);

/* The restore marker of the store in data_dir (a row of table
 * restore_marker, written by the restore and deleted when the operator has
 * chosen, restore.h). */
struct backup_marker {
    uint64_t restored_size; /* the audit log's size in the backup */
    int64_t restored_at_ms;
};

/* Reads the marker of data_dir's store without creating anything.
 * CASENET_OK with *present; CASENET_EUNAVAIL when the database exists but
 * cannot be read. A data directory without a database has none. */
CASENET_NODISCARD int backup_marker_get(const char *data_dir, bool *present,
                                        struct backup_marker *m);
/* Deletes the marker (the operator's choice is recorded). */
CASENET_NODISCARD int backup_marker_clear(const char *data_dir);
/* Prints why the broker does not serve a restored store and what to run;
 * the caller exits with BACKUP_EXIT_RESTORED. */
void backup_marker_explain(const char *data_dir, const struct backup_marker *m);

#endif
