/*
 * catalog.h — what the router knows about the cluster: the shards, the
 * tables and how each is partitioned, and the shard map with its epoch.
 * It lives in one SQLite file in the router's data directory
 * (DIR/catalog.db) and survives restarts; every change is one SQLite
 * transaction (fsynced) and increments the epoch.
 *
 * Partitioning (documented in docs/sql.md):
 *  - HASH: bucket = catalog_hash(canonical key bytes) % CATALOG_BUCKETS;
 *    the shard map assigns each bucket to a shard (initially bucket b ->
 *    shard b % nshards).
 *  - RANGE: split points v1 < v2 < ... cut the key space into n+1 ranges
 *    [-inf, v1), [v1, v2), ..., [vn, +inf); range i lives on shard
 *    i % nshards.
 *  - NONE: a reference table, copied to every shard.
 *
 * Canonical key bytes: integer types -> 8 bytes big-endian two's
 * complement of the int64 value; text types -> the UTF-8 bytes; other types
 * cannot be partition keys (42804).
 *
 * Invariants: epoch strictly increases with every committed change; every
 * bucket has exactly one owner; a table's partition column is part of its
 * primary key.
 */
#ifndef SHARDLITE_CATALOG_H
#define SHARDLITE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/sql_ast.h"
#include "txn/wire.h"

#define CATALOG_BUCKETS 4096

typedef struct catalog catalog;

typedef struct {
	const char *name;
	sql_type type;
	uint32_t oid;          /* PostgreSQL type OID (pgwire.h constants) */
	bool not_null;
	bool primary_key;
} catalog_column;

typedef struct {
	const char *name;
	size_t ncols;
	catalog_column *cols;
	sql_partition_kind partition;
	int partition_col;     /* index in cols, -1 for reference tables */
	size_t nsplits;        /* RANGE: split points, ascending */
	wire_value *splits;    /* WIRE_INT for integer keys, WIRE_TEXT for text */
	uint32_t *range_shard; /* RANGE: nsplits + 1 owners once a range was split or
				* moved; NULL: range i on shard i % placed */
	uint64_t created_epoch;
} catalog_table;

catalog *catalog_open(const char *path, char *err, size_t errlen);
void catalog_close(catalog *cat);

uint64_t catalog_epoch(const catalog *cat);

/* Shards, indexed 0..n-1 in the order they were added. */
size_t catalog_nshards(const catalog *cat);
const char *catalog_shard_addr(const catalog *cat, size_t shard);
/* Add a shard (no buckets move: that is rebalancing).  Returns its index,
 * or -1 with err. */
int catalog_add_shard(catalog *cat, const char *addr, sql_error *err);

/* Tables.  Pointers stay valid until the table is dropped or the catalog
 * closed. */
const catalog_table *catalog_table_get(const catalog *cat, const char *name);
size_t catalog_ntables(const catalog *cat);
const catalog_table *catalog_table_at(const catalog *cat, size_t i);
/* Record a table (after the shards created it).  Checks the partitioning
 * rules (partition column exists, is an integer or text type, is in the
 * primary key; every table has a primary key; split points ascending and of
 * the key's type).  0, or -1 with err (42P07 exists, 42P16 bad partitioning,
 * 42804 bad type). */
int catalog_table_create(catalog *cat, const sql_create_table *def, sql_error *err);
/* The same checks, without recording: run before touching the shards. */
int catalog_table_check(const catalog *cat, const sql_create_table *def, sql_error *err);
int catalog_table_drop(catalog *cat, const char *name, sql_error *err);

/* Routing. */
uint32_t catalog_hash(const void *bytes, size_t len);
/* Bucket of a key value for a table's partition column type; -1 with err
 * when the value cannot be converted to the key's type (22P02). */
int catalog_bucket_of(const catalog_table *t, const wire_value *key, sql_error *err);
size_t catalog_bucket_shard(const catalog *cat, uint32_t bucket);
/* Range index of a key in a RANGE table (0..nsplits). */
size_t catalog_range_of(const catalog_table *t, const wire_value *key);
size_t catalog_range_shard(const catalog *cat, const catalog_table *t, size_t range);
/* The RANGE table of that name, or NULL with err (42P01, 42P16). */
const catalog_table *catalog_range_table(const catalog *cat, const char *name, sql_error *err);
/* ALTER TABLE t SPLIT AT (v): range r holding v becomes [lo, v) and [v, hi),
 * both on r's shard (nothing moves).  0, or -1 with err (42P01, 42804 wrong
 * type, 42P16 v is a split point already). */
int catalog_split_range(catalog *cat, const char *table, const sql_expr *value, sql_error *err);

/*
 * Removed shards (ALTER CLUSTER REMOVE SHARD): they keep their index (so
 * shard numbers never change) but own nothing and receive no request.
 * catalog_remove_check(): the shard exists, is not the last, holds no
 * range of a RANGE table, and (buckets_too) owns no bucket.
 */
bool catalog_shard_removed(const catalog *cat, size_t shard);
/* The lowest-numbered shard not removed (reference reads, SELECT 1). */
size_t catalog_first_shard(const catalog *cat);
int catalog_remove_check(const catalog *cat, size_t shard, bool buckets_too, sql_error *err);
int catalog_remove_shard(catalog *cat, size_t shard, sql_error *err);

/*
 * The rebalancer's durable move log (sl_moves).  A move takes `buckets` from
 * shard src to shard dst; its phase is "copy" until the cutover flips the
 * map, "switch" from the durable flip until the data is switched on the
 * shards, then "done" (or "cancelled").  catalog_move_switch() assigns the
 * buckets to dst and sets "switch" in one catalog transaction (epoch + 1).
 */
typedef struct {
	int64_t id;
	size_t src, dst;
	char phase[16];
	uint32_t *buckets;     /* malloc'd */
	size_t nbuckets;
	char *table;           /* a range move: its table (malloc'd), else NULL */
	size_t range;
} catalog_move;
/* *id == 0: a new move, *id set; else updates the phase only. */
int catalog_move_put(catalog *cat, int64_t *id, const char *phase, size_t src, size_t dst, const uint32_t *buckets,
		     size_t n, const char *table, size_t range, sql_error *err);
/* Logs moves as "queued" in one transaction (one fsync), setting their ids. */
int catalog_moves_queue(catalog *cat, catalog_move *moves, size_t n, sql_error *err);
/* Gives the buckets (table == NULL) or the table's range to dst. */
int catalog_move_switch(catalog *cat, int64_t id, size_t dst, const uint32_t *buckets, size_t n, const char *table,
			size_t range, sql_error *err);
/* Unfinished moves, oldest first (free each buckets, then the array). */
size_t catalog_moves_load(catalog *cat, catalog_move **out);

#endif
