/* migrate.h - `casenetd migrate`: a store copied into an empty store of
 * another backend (migrate.c). */
#ifndef BROKER_MIGRATE_H
#define BROKER_MIGRATE_H

/* Runs `casenetd migrate --from SPEC --to SPEC` (argv[0] is "migrate"):
 * refuses a target that holds an audit event or a directory, copies, then
 * reopens the target and compares its audit tree with the source's. Returns
 * the exit code: 0 copied and verified, 1 failed (said on stderr), 2 usage. */
int migrate_main(int argc, char **argv);

#endif
