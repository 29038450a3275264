/* migrate.h - `casenetd migrate`: a store copied into an empty store of
 * another backend (migrate.c). */
#ifndef BROKER_MIGRATE_H
#define BROKER_MIGRATE_H

#include "store.h"

/* What migrate_copy copied. */
struct migrate_counts {
    uint64_t messages, rows, receipts, events, heads;
};

/* Outside a transaction on both. Copies everything src holds into dst
 * through the store interface (the file comment of migrate.c says what),
 * committing every few hundred writes; out (may be NULL) gets the counts.
 * CASENET_ECONFLICT when dst holds an audit event or a directory (nothing
 * written) or when src's inbox rows cannot keep their numbers in dst (said
 * on stderr; what was committed stays: drop dst); else the stores' errors.
 * Compares no tree: the caller reopens dst and compares. */
int migrate_copy(struct store *src, struct store *dst, struct migrate_counts *out);

/* Runs `casenetd migrate --from SPEC --to SPEC` (argv[0] is "migrate"):
 * refuses a target that holds an audit event or a directory, copies, then
 * reopens the target and compares its audit tree with the source's. Returns
 * the exit code: 0 copied and verified, 1 failed (said on stderr), 2 usage. */
int migrate_main(int argc, char **argv);

#endif
