/*
 * store_pg.h - the PostgreSQL backend of the broker store (store_pg.c):
 * specs "postgresql://..." (or "postgres://..."), a libpq connection URI,
 * with synchronous_commit=on|remote_write|remote_apply among its query
 * parameters (default on). docs/operations.md "PostgreSQL".
 */
#ifndef BROKER_STORE_PG_H
#define BROKER_STORE_PG_H

#include "store.h"

extern const struct store_ops store_pg_ops;

#endif
