/*
 * apply.h — apply a changeset (a transaction's private workspace) to the
 * shard's database with the store's cached statements.
 *
 * Why not sqlite3changeset_apply(): it runs "PRAGMA defer_foreign_keys" on
 * every call, and that pragma expires every prepared statement of the
 * connection, so after each COMMIT PREPARED every cached statement of the
 * shard was compiled again.  This applier prepares one INSERT, UPDATE and
 * DELETE per table once and keeps them.
 *
 * Contract (same outcome as sqlite3changeset_apply with a conflict handler
 * that aborts on any conflict):
 *  - INSERT of a row whose primary key exists, UPDATE or DELETE of a row
 *    that is missing or whose old values differ: APPLY_CONFLICT (NULL old
 *    values are not compared: see apply.c).
 *  - A constraint violation (UNIQUE, CHECK, NOT NULL) that does not go away
 *    once every other change of the changeset is in (a swap of two unique
 *    values applies): APPLY_CONSTRAINT.
 *  - Any other failure: APPLY_ERROR, with the SQLite code in *rc_out.
 *  - The caller runs it inside a savepoint and rolls back on failure: a
 *    failed apply leaves whatever it applied so far.
 *  - The writer thread owns the applier, like the store it uses.
 */
#ifndef SHARDLITE_APPLY_H
#define SHARDLITE_APPLY_H

#include "shard/store.h"

typedef enum { APPLY_OK = 0, APPLY_CONFLICT, APPLY_CONSTRAINT, APPLY_ERROR } apply_result;

typedef struct shard_applier shard_applier;

shard_applier *applier_new(shard_store *st);
void applier_free(shard_applier *a);

apply_result applier_apply(shard_applier *a, const void *cs, int len, int *rc_out);

#endif
