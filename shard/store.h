/*
 * store.h — one SQLite connection of a shard, as the executor and the
 * readers use it: open with the shard's pragmas, prepare request SQL through
 * a statement cache and an authorizer, run it, and build the wire response.
 *
 * Contract:
 *  - A store belongs to one thread at a time.
 *  - Request SQL is one statement; it may not control transactions
 *    (BEGIN/COMMIT/SAVEPOINT), ATTACH, run PRAGMAs, or touch the shard's
 *    internal tables (named "_sl_*").  The executor owns transactions.
 *  - store_prepare() returns a cached statement; the cache entry records
 *    what the authorizer saw at prepare time (DDL or not, tables written),
 *    because cached statements are not re-authorized.
 *  - Errors are reported in the store_result as a PostgreSQL SQLSTATE and
 *    message (see store_sqlstate()).
 */
#ifndef SHARDLITE_STORE_H
#define SHARDLITE_STORE_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>

#include "txn/wire.h"

typedef struct shard_store shard_store;

/* Every connection to a shard's database (writer, readers, checkpointer)
 * opens it with this VFS: SQLite's unix VFS holding an exclusive lock on
 * the file for as long as the shard has it open, with the WAL index in
 * this process's memory instead of the -shm file.  The shard's threads
 * share it without a file-lock system call per transaction (they were
 * about 15 fcntl() per two-shard transfer), and no other process can read
 * or write a running shard's database under it: SQLITE_BUSY. */
#define STORE_VFS "unix-excl"

typedef enum { STORE_WRITER, STORE_READER } store_role;

/* A response being built.  Strings and cells are copied into an arena owned
 * by the result; store_result_reset() makes it reusable. */
typedef struct store_arena_block store_arena_block;
typedef struct {
	wire_response resp;
	uint32_t cap_cells;
	store_arena_block *arena;
	char sqlstate[6];
	char message[512];
} store_result;

void store_result_init(store_result *res);
void store_result_reset(store_result *res);
void store_result_free(store_result *res);
void store_result_error(store_result *res, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int store_result_failed(const store_result *res);
/* Encode as a wire Response with the given request id.  0 or -1. */
int store_result_encode(store_result *res, uint64_t id, uint8_t **out, size_t *outlen);
/* Append one row of text cells (used for STATUS listings). */
int store_result_columns(store_result *res, uint32_t ncols, const char *const *names);
int store_result_row_text(store_result *res, const char *const *cells);

typedef struct {
	sqlite3_stmt *stmt;
	int is_ddl;         /* CREATE/DROP/ALTER */
	int writes;         /* INSERT/UPDATE/DELETE seen by the authorizer */
	int writes_no_pk;   /* writes a table that has no PRIMARY KEY */
} store_stmt;

shard_store *store_open(const char *path, store_role role, char *err, size_t errlen);
void store_close(shard_store *st);
sqlite3 *store_db(shard_store *st);

/* Prepare request SQL (cached).  NULL on error, with res filled. */
store_stmt *store_prepare(shard_store *st, const char *sql, uint32_t len, store_result *res);

/* Bind params, run to completion collecting rows into res.  0, or -1 with
 * res holding the error.  Leaves the statement reset. */
int store_run(shard_store *st, store_stmt *s, const wire_value *params, uint32_t nparams,
	      store_result *res);

/* Run internal SQL (no authorizer) through the cache; 0 or -1 (err set). */
int store_exec(shard_store *st, const char *sql, char *err, size_t errlen);
/* Prepared internal statement from the cache (no authorizer); NULL on error. */
sqlite3_stmt *store_internal(shard_store *st, const char *sql);

/* A counter that moves whenever a request ran DDL (for callers that cache
 * what they learnt about tables). */
uint64_t store_schema_gen(const shard_store *st);

/* Does the table have a UNIQUE index besides its primary key?  (Only such
 * an index can make a locked transaction's changes conflict at commit.)
 * Cached until the next schema change. */
int store_has_secondary_unique(shard_store *st, const char *table);

/* Map the connection's last error to a PostgreSQL SQLSTATE. */
const char *store_sqlstate(sqlite3 *db, int rc);

/* Forget cached statements (after schema changes made elsewhere). */
void store_cache_clear(shard_store *st);

#endif
