/*
 * store_sql.h - for the store's unit tests: a count query run on the SQLite
 * store's own connection, so that it sees the open transaction. Test
 * fixture: a query that fails to prepare or returns no row fails the test.
 */
#ifndef CASENET_TEST_STORE_SQL_H
#define CASENET_TEST_STORE_SQL_H

#include "store.h"

#include <stdint.h>

/* The first column of the one row q returns (SELECT count(*) FROM ...). */
int64_t store_sql_count(struct store *s, const char *q);

#endif
