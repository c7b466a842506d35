/*
 * catalog.c — the router's catalog: shards, tables, partitioning, the
 * bucket -> shard map and the epoch, kept in one SQLite file and mirrored
 * in memory (see catalog.h for the contract, docs/routing.md for the hash).
 *
 * On-disk layout (SQLite, schema version 1):
 *
 *   sl_meta(key TEXT PRIMARY KEY, value INTEGER)
 *       'version' = 1, 'epoch' = current epoch,
 *       'placed'  = number of shards the initial bucket/range placement
 *                   spreads over (see "Placement" below)
 *   sl_shards(idx INTEGER PRIMARY KEY, addr TEXT NOT NULL)
 *   sl_tables(name TEXT PRIMARY KEY, partition INTEGER, partition_col
 *             INTEGER, created_epoch INTEGER)
 *   sl_columns(tbl, idx, name, kind, length, precision, scale, oid,
 *              not_null, primary_key)           PRIMARY KEY (tbl, idx)
 *   sl_splits(tbl, idx, value)                  PRIMARY KEY (tbl, idx)
 *       value is an INTEGER for integer keys, TEXT for text keys
 *   sl_buckets(bucket INTEGER PRIMARY KEY, shard INTEGER NOT NULL)
 *       exactly CATALOG_BUCKETS rows
 *
 * Every change runs in one BEGIN IMMEDIATE ... COMMIT that also increments
 * 'epoch'; the file runs with synchronous=FULL (WAL), so a change that
 * returned 0 survives a crash.  The in-memory mirror is updated only after
 * the COMMIT succeeded: memory never shows an uncommitted change.
 *
 * Placement.  While the catalog holds no table at all, adding a shard
 * re-spreads the buckets (bucket b -> shard b % nshards) and sets 'placed'
 * to nshards: nothing lives anywhere yet, so nothing moves.  Once a table
 * exists, adding a shard moves nothing (that is rebalancing); range i of a
 * RANGE table lives on shard i % placed.
 *
 * Invariants (checked on load): epoch >= 1; every bucket's owner is
 * < nshards (or 0 when there are no shards); 1 <= placed <= nshards when
 * nshards > 0; a table's partition column exists, has an integer or text
 * type and is part of its primary key; split points ascend strictly.
 */
#include "router/catalog.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/sql.h"
#include "txn/bucket.h"

#define CATALOG_VERSION 1

struct catalog {
	sqlite3 *db;
	uint64_t epoch;
	size_t placed;
	char **shards;
	size_t nshards;
	catalog_table **tables;
	size_t ntables;
	uint32_t bucket_shard[CATALOG_BUCKETS];
	bool *removed;         /* per shard: ALTER CLUSTER REMOVE SHARD done */
};

/* ---- hash: txn/bucket.c (shared with the shards' sl_bucket()) ------------- */

uint32_t catalog_hash(const void *bytes, size_t len)
{
	return sl_hash32(bytes, len);
}

/* ---- type facts ------------------------------------------------------------ */

static bool kind_is_int(sql_type_kind k)
{
	return k == SQL_TYPE_BIGINT || k == SQL_TYPE_INTEGER || k == SQL_TYPE_SMALLINT;
}

static bool kind_is_text(sql_type_kind k)
{
	return k == SQL_TYPE_TEXT || k == SQL_TYPE_VARCHAR || k == SQL_TYPE_CHAR;
}

/* PostgreSQL's format_type() name, as its error messages spell types. */
static const char *kind_sql_name(sql_type_kind k)
{
	switch (k) {
	case SQL_TYPE_BIGINT: return "bigint";
	case SQL_TYPE_INTEGER: return "integer";
	case SQL_TYPE_SMALLINT: return "smallint";
	case SQL_TYPE_TEXT: return "text";
	case SQL_TYPE_VARCHAR: return "character varying";
	case SQL_TYPE_CHAR: return "character";
	case SQL_TYPE_DOUBLE: return "double precision";
	case SQL_TYPE_REAL: return "real";
	case SQL_TYPE_NUMERIC: return "numeric";
	case SQL_TYPE_BOOLEAN: return "boolean";
	case SQL_TYPE_BYTEA: return "bytea";
	case SQL_TYPE_TIMESTAMP: return "timestamp without time zone";
	case SQL_TYPE_NONE: break;
	}
	return "unknown";
}

/* Strict int64 from text: optional blanks around, optional sign, digits. */
static int parse_int64(const char *s, size_t len, int64_t *out)
{
	char buf[64];
	while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
			   s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, s, len);
	buf[len] = 0;
	size_t i = (buf[0] == '-' || buf[0] == '+') ? 1 : 0;
	if (buf[i] == 0)
		return -1;
	for (; buf[i]; i++)
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
	errno = 0;
	char *end;
	long long v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != 0)
		return -1;
	*out = v;
	return 0;
}

/* ---- SQLite helpers -------------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "catalog: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void db_error(const catalog *cat, sql_error *err)
{
	sql_error_set(err, "58030", 0, "catalog write failed: %s", sqlite3_errmsg(cat->db));
}

/* Prepare, bind "i" (int64) / "t" (text) / "n" (null) arguments, step
 * through once; returns the step code (SQLITE_DONE / SQLITE_ROW) or an
 * error code.  The statement is finalized unless stmt_out is given. */
static int run(sqlite3 *db, sqlite3_stmt **stmt_out, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	va_list ap;
	va_start(ap, fmt);
	for (int i = 0; fmt[i]; i++) {
		if (fmt[i] == 'i') {
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
		} else if (fmt[i] == 't') {
			const char *s = va_arg(ap, const char *);
			rc = sqlite3_bind_text(st, i + 1, s, -1, SQLITE_STATIC);
		} else {
			rc = sqlite3_bind_null(st, i + 1);
		}
		if (rc != SQLITE_OK)
			break;
	}
	va_end(ap);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (stmt_out != NULL && rc == SQLITE_ROW) {
		*stmt_out = st;
		return rc;
	}
	sqlite3_finalize(st);
	return rc;
}

static int begin(catalog *cat, sql_error *err)
{
	if (sqlite3_exec(cat->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		db_error(cat, err);
		return -1;
	}
	return 0;
}

/* Bump the epoch and commit; on failure roll back.  *epoch gets the new
 * epoch (applied to memory by the caller once everything succeeded). */
static int commit_change(catalog *cat, uint64_t *epoch, sql_error *err)
{
	if (run(cat->db, NULL, "UPDATE sl_meta SET value = ? WHERE key = 'epoch'", "i",
		(int64_t)(cat->epoch + 1)) != SQLITE_DONE ||
	    sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_error(cat, err);
		sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	*epoch = cat->epoch + 1;
	return 0;
}

static void rollback(catalog *cat)
{
	sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- tables in memory ------------------------------------------------------- */

static void table_free(catalog_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->ncols; i++)
		free((char *)t->cols[i].name);
	free(t->cols);
	for (size_t i = 0; i < t->nsplits; i++)
		if (t->splits[i].type == WIRE_TEXT)
			free((void *)t->splits[i].p);
	free(t->splits);
	free(t->range_shard);
	free((char *)t->name);
	free(t);
}

static int set_text_value(wire_value *v, const char *s, size_t len)
{
	char *p = malloc(len + 1);
	if (p == NULL)
		return -1;
	memcpy(p, s, len);
	p[len] = 0;
	v->type = WIRE_TEXT;
	v->p = p;
	v->len = (uint32_t)len;
	return 0;
}

static const catalog_table *find_table(const catalog *cat, const char *name)
{
	for (size_t i = 0; i < cat->ntables; i++)
		if (strcmp(cat->tables[i]->name, name) == 0)
			return cat->tables[i];
	return NULL;
}

/* The same, to change it (ranges split or moved). */
static catalog_table *find_table_mut(catalog *cat, const char *name)
{
	for (size_t i = 0; i < cat->ntables; i++)
		if (strcmp(cat->tables[i]->name, name) == 0)
			return cat->tables[i];
	return NULL;
}

static int push_table(catalog *cat, catalog_table *t)
{
	catalog_table **n = realloc(cat->tables, (cat->ntables + 1) * sizeof *n);
	if (n == NULL)
		return -1;
	cat->tables = n;
	cat->tables[cat->ntables++] = t;
	return 0;
}

/* ---- load -------------------------------------------------------------------- */

static int load_meta(catalog *cat, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "SELECT key, value FROM sl_meta", -1, &st, NULL) !=
	    SQLITE_OK)
		goto fail;
	int64_t version = 0, epoch = 0, placed = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		int64_t v = sqlite3_column_int64(st, 1);
		if (k && strcmp(k, "version") == 0)
			version = v;
		else if (k && strcmp(k, "epoch") == 0)
			epoch = v;
		else if (k && strcmp(k, "placed") == 0)
			placed = v;
	}
	sqlite3_finalize(st);
	if (version != CATALOG_VERSION) {
		snprintf(err, errlen, "catalog: unsupported catalog version %lld",
			 (long long)version);
		return -1;
	}
	if (epoch < 1 || placed < 0) {
		snprintf(err, errlen, "catalog: corrupt meta (epoch %lld, placed %lld)",
			 (long long)epoch, (long long)placed);
		return -1;
	}
	cat->epoch = (uint64_t)epoch;
	cat->placed = (size_t)placed;
	return 0;
fail:
	snprintf(err, errlen, "catalog: %s", sqlite3_errmsg(cat->db));
	return -1;
}

static int load_shards(catalog *cat, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "SELECT idx, addr FROM sl_shards ORDER BY idx", -1, &st,
			       NULL) != SQLITE_OK) {
		snprintf(err, errlen, "catalog: %s", sqlite3_errmsg(cat->db));
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *addr = (const char *)sqlite3_column_text(st, 1);
		if (sqlite3_column_int64(st, 0) != (int64_t)cat->nshards || addr == NULL) {
			snprintf(err, errlen, "catalog: corrupt shard list at %zu", cat->nshards);
			sqlite3_finalize(st);
			return -1;
		}
		char **n = realloc(cat->shards, (cat->nshards + 1) * sizeof *n);
		char *a = strdup(addr);
		if (n != NULL)
			cat->shards = n;
		if (n == NULL || a == NULL) {
			free(a);
			sqlite3_finalize(st);
			snprintf(err, errlen, "catalog: out of memory");
			return -1;
		}
		cat->shards[cat->nshards++] = a;
	}
	sqlite3_finalize(st);
	if (cat->nshards > 0 && (cat->placed < 1 || cat->placed > cat->nshards)) {
		snprintf(err, errlen, "catalog: corrupt placement count %zu", cat->placed);
		return -1;
	}
	return 0;
}

static int load_buckets(catalog *cat, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	size_t n = 0;
	if (sqlite3_prepare_v2(cat->db, "SELECT bucket, shard FROM sl_buckets ORDER BY bucket",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "catalog: %s", sqlite3_errmsg(cat->db));
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t b = sqlite3_column_int64(st, 0), s = sqlite3_column_int64(st, 1);
		if (b != (int64_t)n || n >= CATALOG_BUCKETS || s < 0 ||
		    (cat->nshards > 0 ? s >= (int64_t)cat->nshards : s != 0)) {
			snprintf(err, errlen, "catalog: corrupt bucket map at bucket %zu", n);
			sqlite3_finalize(st);
			return -1;
		}
		cat->bucket_shard[n++] = (uint32_t)s;
	}
	sqlite3_finalize(st);
	if (n != CATALOG_BUCKETS) {
		snprintf(err, errlen, "catalog: bucket map has %zu buckets, want %d", n,
			 CATALOG_BUCKETS);
		return -1;
	}
	return 0;
}

static int load_table(catalog *cat, sqlite3_stmt *ts, char *err, size_t errlen)
{
	catalog_table *t = calloc(1, sizeof *t);
	sqlite3_stmt *st = NULL;
	const char *name = (const char *)sqlite3_column_text(ts, 0);
	if (t == NULL || name == NULL || (t->name = strdup(name)) == NULL)
		goto oom;
	t->partition = (sql_partition_kind)sqlite3_column_int(ts, 1);
	t->partition_col = sqlite3_column_int(ts, 2);
	t->created_epoch = (uint64_t)sqlite3_column_int64(ts, 3);

	if (sqlite3_prepare_v2(cat->db,
			       "SELECT name, kind, length, precision, scale, oid, not_null, "
			       "primary_key FROM sl_columns WHERE tbl = ? ORDER BY idx",
			       -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		catalog_column *c = realloc(t->cols, (t->ncols + 1) * sizeof *c);
		if (c == NULL)
			goto oom;
		t->cols = c;
		c = &t->cols[t->ncols];
		memset(c, 0, sizeof *c);
		const char *cn = (const char *)sqlite3_column_text(st, 0);
		if (cn == NULL || (c->name = strdup(cn)) == NULL)
			goto oom;
		t->ncols++;
		c->type.kind = (sql_type_kind)sqlite3_column_int(st, 1);
		c->type.length = sqlite3_column_int(st, 2);
		c->type.precision = sqlite3_column_int(st, 3);
		c->type.scale = sqlite3_column_int(st, 4);
		c->oid = (uint32_t)sqlite3_column_int64(st, 5);
		c->not_null = sqlite3_column_int(st, 6) != 0;
		c->primary_key = sqlite3_column_int(st, 7) != 0;
	}
	sqlite3_finalize(st);
	st = NULL;

	if (sqlite3_prepare_v2(cat->db, "SELECT value FROM sl_splits WHERE tbl = ? ORDER BY idx",
			       -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		wire_value *v = realloc(t->splits, (t->nsplits + 1) * sizeof *v);
		if (v == NULL)
			goto oom;
		t->splits = v;
		v = &t->splits[t->nsplits];
		memset(v, 0, sizeof *v);
		if (sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
			v->type = WIRE_INT;
			v->i = sqlite3_column_int64(st, 0);
		} else {
			const char *s = (const char *)sqlite3_column_text(st, 0);
			if (s == NULL ||
			    set_text_value(v, s, (size_t)sqlite3_column_bytes(st, 0)) != 0)
				goto oom;
		}
		t->nsplits++;
	}
	sqlite3_finalize(st);
	st = NULL;

	bool ok = t->ncols > 0 &&
		  (t->partition == SQL_PARTITION_NONE
			   ? t->partition_col == -1
			   : (t->partition == SQL_PARTITION_HASH ||
			      t->partition == SQL_PARTITION_RANGE) &&
				     t->partition_col >= 0 &&
				     (size_t)t->partition_col < t->ncols);
	if (!ok) {
		snprintf(err, errlen, "catalog: corrupt definition of table \"%s\"", t->name);
		table_free(t);
		return -1;
	}
	if (push_table(cat, t) != 0)
		goto oom;
	return 0;
oom:
	snprintf(err, errlen, "catalog: out of memory");
	goto out;
dberr:
	snprintf(err, errlen, "catalog: %s", sqlite3_errmsg(cat->db));
out:
	sqlite3_finalize(st);
	table_free(t);
	return -1;
}

static int load_tables(catalog *cat, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db,
			       "SELECT name, partition, partition_col, created_epoch "
			       "FROM sl_tables ORDER BY created_epoch, name",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "catalog: %s", sqlite3_errmsg(cat->db));
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (load_table(cat, st, err, errlen) != 0) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS sl_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS sl_shards(idx INTEGER PRIMARY KEY, addr TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS sl_tables(name TEXT PRIMARY KEY, partition INTEGER "
	"NOT NULL, partition_col INTEGER NOT NULL, created_epoch INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS sl_columns(tbl TEXT NOT NULL, idx INTEGER NOT NULL, "
	"name TEXT NOT NULL, kind INTEGER NOT NULL, length INTEGER NOT NULL, precision "
	"INTEGER NOT NULL, scale INTEGER NOT NULL, oid INTEGER NOT NULL, not_null INTEGER "
	"NOT NULL, primary_key INTEGER NOT NULL, PRIMARY KEY(tbl, idx));"
	"CREATE TABLE IF NOT EXISTS sl_splits(tbl TEXT NOT NULL, idx INTEGER NOT NULL, "
	"value, PRIMARY KEY(tbl, idx));"
	"CREATE TABLE IF NOT EXISTS sl_buckets(bucket INTEGER PRIMARY KEY, shard INTEGER "
	"NOT NULL);"
	"CREATE TABLE IF NOT EXISTS sl_removed(idx INTEGER PRIMARY KEY);"
	"CREATE TABLE IF NOT EXISTS sl_moves(id INTEGER PRIMARY KEY, src INTEGER NOT NULL, "
	"dst INTEGER NOT NULL, phase TEXT NOT NULL, buckets TEXT NOT NULL, tbl TEXT, rng INTEGER);"
	"CREATE TABLE IF NOT EXISTS sl_ranges(tbl TEXT NOT NULL, idx INTEGER NOT NULL, "
	"shard INTEGER NOT NULL, PRIMARY KEY(tbl, idx));";

/* A fresh file: schema, meta rows, 4096 buckets owned by shard 0. */
static int init_schema(catalog *cat, char *err, size_t errlen)
{
	if (exec_sql(cat->db, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	if (exec_sql(cat->db, schema_sql, err, errlen) != 0)
		goto fail;
	sqlite3_stmt *st;
	int rc = run(cat->db, &st, "SELECT count(*) FROM sl_meta", "");
	if (rc != SQLITE_ROW)
		goto dbfail;
	int64_t nmeta = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (nmeta == 0) {
		if (exec_sql(cat->db,
			     "INSERT INTO sl_meta VALUES ('version', 1), ('epoch', 1), "
			     "('placed', 0);"
			     "WITH RECURSIVE b(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM b "
			     "WHERE n < 4095) INSERT INTO sl_buckets SELECT n, 0 FROM b;",
			     err, errlen) != 0)
			goto fail;
	}
	if (exec_sql(cat->db, "COMMIT", err, errlen) != 0)
		goto fail;
	return 0;
dbfail:
	snprintf(err, errlen, "catalog: %s", sqlite3_errmsg(cat->db));
fail:
	sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

_Static_assert(CATALOG_BUCKETS == 4096, "init_schema's bucket count");

static int load_removed(catalog *cat, char *err, size_t errlen)
{
	cat->removed = calloc(cat->nshards + 1, sizeof *cat->removed);
	if (!cat->removed) {
		snprintf(err, errlen, "catalog: out of memory");
		return -1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "SELECT idx FROM sl_removed", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "catalog: %s", sqlite3_errmsg(cat->db));
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t i = sqlite3_column_int64(st, 0);
		if (i >= 0 && (size_t)i < cat->nshards)
			cat->removed[i] = true;
	}
	sqlite3_finalize(st);
	return 0;
}

static int range_shards_materialize(const catalog *cat, catalog_table *t)
{
	if (t->range_shard)
		return 0;
	t->range_shard = malloc((t->nsplits + 1) * sizeof *t->range_shard);
	if (!t->range_shard)
		return -1;
	for (size_t r = 0; r <= t->nsplits; r++)
		t->range_shard[r] = (uint32_t)catalog_range_shard(cat, NULL, r);
	return 0;
}

/* sl_ranges: owners of ranges that were split or moved. */
static int load_ranges(catalog *cat, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "SELECT tbl, idx, shard FROM sl_ranges", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "catalog: %s", sqlite3_errmsg(cat->db));
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		catalog_table *t = find_table_mut(cat, (const char *)sqlite3_column_text(st, 0));
		int64_t i = sqlite3_column_int64(st, 1), sh = sqlite3_column_int64(st, 2);
		if (!t || t->partition != SQL_PARTITION_RANGE || i < 0 || (size_t)i > t->nsplits || sh < 0 ||
		    (size_t)sh >= cat->nshards) {
			snprintf(err, errlen, "catalog: corrupt range owner (%s, %lld)",
				 (const char *)sqlite3_column_text(st, 0), (long long)i);
			sqlite3_finalize(st);
			return -1;
		}
		if (range_shards_materialize(cat, t) != 0) {
			sqlite3_finalize(st);
			snprintf(err, errlen, "catalog: out of memory");
			return -1;
		}
		t->range_shard[i] = (uint32_t)sh;
	}
	sqlite3_finalize(st);
	return 0;
}

catalog *catalog_open(const char *path, char *err, size_t errlen)
{
	catalog *cat = calloc(1, sizeof *cat);
	if (cat == NULL) {
		snprintf(err, errlen, "catalog: out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &cat->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "catalog %s: %s", path,
			 cat->db ? sqlite3_errmsg(cat->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(cat->db, 5000);
	if (exec_sql(cat->db,
		     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
		     "PRAGMA foreign_keys=OFF;",
		     err, errlen) != 0 ||
	    init_schema(cat, err, errlen) != 0 || load_meta(cat, err, errlen) != 0 ||
	    load_shards(cat, err, errlen) != 0 || load_removed(cat, err, errlen) != 0 ||
	    load_buckets(cat, err, errlen) != 0 ||
	    load_tables(cat, err, errlen) != 0 || load_ranges(cat, err, errlen) != 0)
		goto fail;
	return cat;
fail:
	catalog_close(cat);
	return NULL;
}

void catalog_close(catalog *cat)
{
	if (cat == NULL)
		return;
	for (size_t i = 0; i < cat->ntables; i++)
		table_free(cat->tables[i]);
	free(cat->tables);
	for (size_t i = 0; i < cat->nshards; i++)
		free(cat->shards[i]);
	free(cat->shards);
	free(cat->removed);
	sqlite3_close(cat->db);
	free(cat);
}

uint64_t catalog_epoch(const catalog *cat)
{
	return cat->epoch;
}

/* ---- shards ------------------------------------------------------------------ */

size_t catalog_nshards(const catalog *cat)
{
	return cat->nshards;
}

const char *catalog_shard_addr(const catalog *cat, size_t shard)
{
	return shard < cat->nshards ? cat->shards[shard] : NULL;
}

int catalog_add_shard(catalog *cat, const char *addr, sql_error *err)
{
	if (addr == NULL || addr[0] == 0 || strlen(addr) > 255) {
		sql_error_set(err, "22023", 0, "invalid shard address");
		return -1;
	}
	for (size_t i = 0; i < cat->nshards; i++) {
		if (strcmp(cat->shards[i], addr) == 0) {
			sql_error_set(err, "42710", 0, "shard \"%s\" is already in the cluster",
				      addr);
			return -1;
		}
	}
	char *copy = strdup(addr);
	char **n = realloc(cat->shards, (cat->nshards + 1) * sizeof *n);
	if (n != NULL)
		cat->shards = n;
	if (copy == NULL || n == NULL) {
		free(copy);
		sql_error_set(err, "53200", 0, "out of memory");
		return -1;
	}
	size_t idx = cat->nshards;
	bool respread = cat->ntables == 0;
	uint64_t epoch;
	if (begin(cat, err) != 0)
		goto fail;
	if (run(cat->db, NULL, "INSERT INTO sl_shards(idx, addr) VALUES (?, ?)", "it",
		(int64_t)idx, addr) != SQLITE_DONE)
		goto dbfail;
	if (respread) {
		if (run(cat->db, NULL, "UPDATE sl_buckets SET shard = bucket % ?", "i",
			(int64_t)(idx + 1)) != SQLITE_DONE ||
		    run(cat->db, NULL, "UPDATE sl_meta SET value = ? WHERE key = 'placed'", "i",
			(int64_t)(idx + 1)) != SQLITE_DONE)
			goto dbfail;
	} else if (cat->placed == 0) {
		/* Not reachable through the public API (tables need shards),
		 * but keep the invariant placed >= 1 when nshards > 0. */
		if (run(cat->db, NULL, "UPDATE sl_meta SET value = 1 WHERE key = 'placed'", "") !=
		    SQLITE_DONE)
			goto dbfail;
	}
	if (commit_change(cat, &epoch, err) != 0)
		goto fail;
	bool *rm = realloc(cat->removed, (cat->nshards + 2) * sizeof *rm);
	if (rm) {
		cat->removed = rm;
		rm[cat->nshards] = false;
	}
	cat->shards[cat->nshards++] = copy;
	cat->epoch = epoch;
	if (respread) {
		cat->placed = cat->nshards;
		for (uint32_t b = 0; b < CATALOG_BUCKETS; b++)
			cat->bucket_shard[b] = b % (uint32_t)cat->nshards;
	} else if (cat->placed == 0) {
		cat->placed = 1;
	}
	return (int)idx;
dbfail:
	db_error(cat, err);
	rollback(cat);
fail:
	free(copy);
	return -1;
}

/* ---- tables -------------------------------------------------------------------- */

const catalog_table *catalog_table_get(const catalog *cat, const char *name)
{
	return name != NULL ? find_table(cat, name) : NULL;
}

size_t catalog_ntables(const catalog *cat)
{
	return cat->ntables;
}

const catalog_table *catalog_table_at(const catalog *cat, size_t i)
{
	return i < cat->ntables ? cat->tables[i] : NULL;
}

static bool name_in(const sql_name_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], name) == 0)
			return true;
	return false;
}

/* The partition column's index, or -1 for NONE. */
static int partition_index(const sql_create_table *def)
{
	if (def->partition == SQL_PARTITION_NONE || def->partition_column == NULL)
		return -1;
	for (size_t i = 0; i < def->columns.n; i++)
		if (strcmp(def->columns.items[i].name, def->partition_column) == 0)
			return (int)i;
	return -1;
}

/* A split point literal as a value of the key's type: 0, or -1 with err. */
static int split_value(const sql_expr *e, sql_type_kind key, wire_value *out, sql_error *err)
{
	memset(out, 0, sizeof *out);
	const sql_expr *x = e;
	bool neg = false;
	if (x != NULL && x->kind == SQL_EXPR_UNARY && x->op == SQL_OP_NEG &&
	    x->left != NULL && x->left->kind == SQL_EXPR_LITERAL && x->left->lit.kind == SQL_LIT_INT) {
		neg = true;
		x = x->left;
	}
	if (x == NULL || x->kind != SQL_EXPR_LITERAL) {
		sql_error_set(err, "42P16", 0, "split points must be literals");
		return -1;
	}
	switch (x->lit.kind) {
	case SQL_LIT_NULL:
		sql_error_set(err, "42P16", 0, "split points cannot be NULL");
		return -1;
	case SQL_LIT_INT:
		if (!kind_is_int(key))
			break;
		out->type = WIRE_INT;
		if (neg && x->lit.i == INT64_MIN) {
			sql_error_set(err, "22003", 0, "bigint out of range");
			return -1;
		}
		out->i = neg ? -x->lit.i : x->lit.i;
		return 0;
	case SQL_LIT_STRING:
		if (kind_is_int(key)) {
			/* '100' is an integer literal for an integer key, as in
			 * PostgreSQL's unknown-typed literals. */
			if (parse_int64(x->lit.str, x->lit.len, &out->i) != 0) {
				sql_error_set(err, "22P02", 0,
					      "invalid input syntax for type %s: \"%s\"",
					      kind_sql_name(key), x->lit.str);
				return -1;
			}
			out->type = WIRE_INT;
			return 0;
		}
		out->type = WIRE_TEXT;
		out->p = x->lit.str;
		out->len = (uint32_t)x->lit.len;
		return 0;
	default:
		break;
	}
	sql_error_set(err, "42804", 0, "split point is not of the partition key's type %s",
		      kind_sql_name(key));
	return -1;
}

static int compare_values(const wire_value *a, const wire_value *b);

int catalog_table_check(const catalog *cat, const sql_create_table *def, sql_error *err)
{
	if (find_table(cat, def->name) != NULL && !def->if_not_exists) {
		sql_error_set(err, "42P07", 0, "relation \"%s\" already exists",
			      def->name);
		return -1;
	}
	if (def->columns.n == 0) {
		sql_error_set(err, "42P16", 0,
			      "table \"%s\" must have at least one column", def->name);
		return -1;
	}
	if (def->primary_key.n == 0) {
		sql_error_set(err, "42P16", 0,
			      "table \"%s\" must have a PRIMARY KEY (shardlite locks and moves "
			      "rows by primary key)",
			      def->name);
		return -1;
	}
	for (size_t i = 0; i < def->primary_key.n; i++) {
		bool found = false;
		for (size_t j = 0; j < def->columns.n; j++)
			found |= strcmp(def->columns.items[j].name, def->primary_key.items[i]) == 0;
		if (!found) {
			sql_error_set(err, "42703", 0,
				      "column \"%s\" named in key does not exist",
				      def->primary_key.items[i]);
			return -1;
		}
	}
	if (def->partition == SQL_PARTITION_NONE)
		return 0;

	int pi = partition_index(def);
	if (pi < 0) {
		sql_error_set(err, "42703", 0,
			      "column \"%s\" named in partition key does not exist",
			      def->partition_column ? def->partition_column : "");
		return -1;
	}
	const sql_column_def *pc = &def->columns.items[pi];
	if (!kind_is_int(pc->type.kind) && !kind_is_text(pc->type.kind)) {
		sql_error_set(err, "42804", 0,
			      "partition column \"%s\" has type %s; only integer and text types "
			      "can be partition keys",
			      pc->name, kind_sql_name(pc->type.kind));
		return -1;
	}
	if (!name_in(&def->primary_key, pc->name)) {
		sql_error_set(err, "42P16", 0,
			      "PRIMARY KEY of partitioned table \"%s\" must include the partition "
			      "column \"%s\"",
			      def->name, pc->name);
		return -1;
	}
	/* A UNIQUE constraint without the partition column could only be
	 * enforced across shards, which shardlite does not do. */
	for (size_t i = 0; i < def->columns.n; i++) {
		if (def->columns.items[i].unique && (int)i != pi) {
			sql_error_set(err, "42P16", 0,
				      "UNIQUE constraint on partitioned table \"%s\" must include "
				      "the partition column \"%s\"",
				      def->name, pc->name);
			return -1;
		}
	}
	for (size_t i = 0; i < def->uniques.n; i++) {
		if (!name_in(&def->uniques.items[i], pc->name)) {
			sql_error_set(err, "42P16", 0,
				      "UNIQUE constraint on partitioned table \"%s\" must include "
				      "the partition column \"%s\"",
				      def->name, pc->name);
			return -1;
		}
	}
	if (def->partition == SQL_PARTITION_HASH) {
		if (def->split_points.n > 0) {
			sql_error_set(err, "42P16", 0,
				      "SPLIT AT is only valid with PARTITION BY RANGE");
			return -1;
		}
		return 0;
	}
	wire_value prev = {0};
	for (size_t i = 0; i < def->split_points.n; i++) {
		wire_value v;
		if (split_value(def->split_points.items[i], pc->type.kind, &v, err) != 0)
			return -1;
		if (i > 0 && compare_values(&prev, &v) >= 0) {
			sql_error_set(err, "42P16", 0,
				      "split points must be in strictly ascending order");
			return -1;
		}
		prev = v;
	}
	return 0;
}

int catalog_table_create(catalog *cat, const sql_create_table *def, sql_error *err)
{
	if (catalog_table_check(cat, def, err) != 0)
		return -1;
	if (find_table(cat, def->name) != NULL)
		return 0; /* IF NOT EXISTS on an existing table: nothing changes */

	int pi = partition_index(def);
	catalog_table *t = calloc(1, sizeof *t);
	if (t == NULL || (t->name = strdup(def->name)) == NULL ||
	    (t->cols = calloc(def->columns.n, sizeof *t->cols)) == NULL)
		goto oom;
	t->partition = def->partition;
	t->partition_col = def->partition == SQL_PARTITION_NONE ? -1 : pi;
	for (size_t i = 0; i < def->columns.n; i++) {
		const sql_column_def *cd = &def->columns.items[i];
		catalog_column *c = &t->cols[i];
		if ((c->name = strdup(cd->name)) == NULL)
			goto oom;
		t->ncols++;
		c->type = cd->type;
		c->oid = sql_type_pg_oid(cd->type.kind);
		c->primary_key = cd->primary_key || name_in(&def->primary_key, cd->name);
		c->not_null = cd->not_null || c->primary_key;
	}
	if (def->split_points.n > 0) {
		t->splits = calloc(def->split_points.n, sizeof *t->splits);
		if (t->splits == NULL)
			goto oom;
		for (size_t i = 0; i < def->split_points.n; i++) {
			wire_value v;
			if (split_value(def->split_points.items[i], t->cols[pi].type.kind, &v, err) !=
			    0)
				goto fail;
			if (v.type == WIRE_TEXT) {
				if (set_text_value(&t->splits[i], v.p, v.len) != 0)
					goto oom;
			} else {
				t->splits[i] = v;
			}
			t->nsplits++;
		}
	}

	uint64_t epoch;
	if (begin(cat, err) != 0)
		goto fail;
	if (run(cat->db, NULL, "INSERT INTO sl_tables VALUES (?, ?, ?, ?)", "tiii", t->name,
		(int64_t)t->partition, (int64_t)t->partition_col,
		(int64_t)(cat->epoch + 1)) != SQLITE_DONE)
		goto dbfail;
	for (size_t i = 0; i < t->ncols; i++) {
		const catalog_column *c = &t->cols[i];
		if (run(cat->db, NULL, "INSERT INTO sl_columns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			"titiiiiiii", t->name, (int64_t)i, c->name, (int64_t)c->type.kind,
			(int64_t)c->type.length, (int64_t)c->type.precision,
			(int64_t)c->type.scale, (int64_t)c->oid, (int64_t)c->not_null,
			(int64_t)c->primary_key) != SQLITE_DONE)
			goto dbfail;
	}
	for (size_t i = 0; i < t->nsplits; i++) {
		const wire_value *v = &t->splits[i];
		int rc = v->type == WIRE_INT
				 ? run(cat->db, NULL, "INSERT INTO sl_splits VALUES (?, ?, ?)", "tii",
				       t->name, (int64_t)i, v->i)
				 : run(cat->db, NULL, "INSERT INTO sl_splits VALUES (?, ?, ?)", "tit",
				       t->name, (int64_t)i, (const char *)v->p);
		if (rc != SQLITE_DONE)
			goto dbfail;
	}
	if (cat->placed == 0 && cat->nshards > 0 &&
	    run(cat->db, NULL, "UPDATE sl_meta SET value = ? WHERE key = 'placed'", "i",
		(int64_t)cat->nshards) != SQLITE_DONE)
		goto dbfail;
	if (commit_change(cat, &epoch, err) != 0)
		goto fail;
	t->created_epoch = epoch;
	if (push_table(cat, t) != 0) {
		/* Committed but not mirrored: memory would lie.  Reload is the
		 * honest answer; report it as an internal error. */
		table_free(t);
		cat->epoch = epoch;
		sql_error_set(err, "53200", 0, "out of memory (catalog needs a reload)");
		return -1;
	}
	cat->epoch = epoch;
	if (cat->placed == 0 && cat->nshards > 0)
		cat->placed = cat->nshards;
	return 0;
oom:
	sql_error_set(err, "53200", 0, "out of memory");
	goto fail;
dbfail:
	db_error(cat, err);
	rollback(cat);
fail:
	table_free(t);
	return -1;
}

int catalog_table_drop(catalog *cat, const char *name, sql_error *err)
{
	size_t idx = cat->ntables;
	for (size_t i = 0; i < cat->ntables; i++)
		if (strcmp(cat->tables[i]->name, name) == 0)
			idx = i;
	if (idx == cat->ntables) {
		sql_error_set(err, "42P01", 0, "table \"%s\" does not exist", name);
		return -1;
	}
	uint64_t epoch;
	if (begin(cat, err) != 0)
		return -1;
	if (run(cat->db, NULL, "DELETE FROM sl_tables WHERE name = ?", "t", name) != SQLITE_DONE ||
	    run(cat->db, NULL, "DELETE FROM sl_columns WHERE tbl = ?", "t", name) != SQLITE_DONE ||
	    run(cat->db, NULL, "DELETE FROM sl_splits WHERE tbl = ?", "t", name) != SQLITE_DONE ||
	    run(cat->db, NULL, "DELETE FROM sl_ranges WHERE tbl = ?", "t", name) != SQLITE_DONE) {
		db_error(cat, err);
		rollback(cat);
		return -1;
	}
	if (commit_change(cat, &epoch, err) != 0)
		return -1;
	table_free(cat->tables[idx]);
	memmove(&cat->tables[idx], &cat->tables[idx + 1],
		(cat->ntables - idx - 1) * sizeof *cat->tables);
	cat->ntables--;
	cat->epoch = epoch;
	return 0;
}

/* ---- routing --------------------------------------------------------------------- */

static void put_be64(unsigned char *b, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 7; i >= 0; i--) {
		b[i] = (unsigned char)(u & 0xff);
		u >>= 8;
	}
}

int catalog_bucket_of(const catalog_table *t, const wire_value *key, sql_error *err)
{
	if (t->partition_col < 0) {
		sql_error_set(err, "42P16", 0, "table \"%s\" is not partitioned", t->name);
		return -1;
	}
	const catalog_column *c = &t->cols[t->partition_col];
	sql_type_kind kind = c->type.kind;
	unsigned char buf[8];
	const void *bytes;
	size_t len;
	char num[32];

	if (key->type == WIRE_NULL) {
		sql_error_set(err, "23502", 0,
			      "null value in partition column \"%s\" of relation \"%s\"", c->name,
			      t->name);
		return -1;
	}
	if (kind_is_int(kind)) {
		int64_t v;
		switch (key->type) {
		case WIRE_INT:
			v = key->i;
			break;
		case WIRE_TEXT:
			if (parse_int64(key->p, key->len, &v) != 0)
				goto bad;
			break;
		case WIRE_REAL:
			if (!(key->r >= -9223372036854775808.0 && key->r < 9223372036854775808.0) ||
			    key->r != floor(key->r))
				goto bad;
			v = (int64_t)key->r;
			break;
		default:
			goto bad;
		}
		put_be64(buf, v);
		bytes = buf;
		len = 8;
	} else {
		switch (key->type) {
		case WIRE_TEXT:
			bytes = key->p;
			len = key->len;
			break;
		case WIRE_INT:
			len = (size_t)snprintf(num, sizeof num, "%lld", (long long)key->i);
			bytes = num;
			break;
		default:
			goto bad;
		}
	}
	return (int)(catalog_hash(bytes, len) % CATALOG_BUCKETS);
bad:
	if (key->type == WIRE_TEXT)
		sql_error_set(err, "22P02", 0, "invalid input syntax for type %s: \"%.*s\"",
			      kind_sql_name(kind), (int)(key->len > 64 ? 64 : key->len),
			      (const char *)key->p);
	else if (key->type == WIRE_REAL)
		sql_error_set(err, "22P02", 0, "invalid input syntax for type %s: \"%g\"",
			      kind_sql_name(kind), key->r);
	else
		sql_error_set(err, "22P02", 0, "invalid value for partition column \"%s\" of type %s",
			      c->name, kind_sql_name(kind));
	return -1;
}

size_t catalog_bucket_shard(const catalog *cat, uint32_t bucket)
{
	return cat->bucket_shard[bucket % CATALOG_BUCKETS];
}

/* Order of two key values: integers numerically (reals compare with them
 * numerically), text bytewise (SQLite's BINARY collation, which is what the
 * shards sort by).  Text sorts after numbers, as in SQLite. */
static int compare_values(const wire_value *a, const wire_value *b)
{
	bool an = a->type == WIRE_INT || a->type == WIRE_REAL;
	bool bn = b->type == WIRE_INT || b->type == WIRE_REAL;
	if (an && bn) {
		if (a->type == WIRE_INT && b->type == WIRE_INT)
			return a->i < b->i ? -1 : a->i > b->i;
		double x = a->type == WIRE_INT ? (double)a->i : a->r;
		double y = b->type == WIRE_INT ? (double)b->i : b->r;
		return x < y ? -1 : x > y;
	}
	if (an != bn)
		return an ? -1 : 1;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->p, b->p, n) : 0;
	if (c != 0)
		return c < 0 ? -1 : 1;
	return a->len < b->len ? -1 : a->len > b->len;
}

size_t catalog_range_of(const catalog_table *t, const wire_value *key)
{
	/* Number of split points <= key: range i holds [v_i, v_{i+1}). */
	wire_value k = *key;
	int64_t iv;
	if (t->nsplits > 0 && t->splits[0].type == WIRE_INT && k.type == WIRE_TEXT &&
	    parse_int64(k.p, k.len, &iv) == 0) {
		k.type = WIRE_INT;
		k.i = iv;
	}
	size_t lo = 0, hi = t->nsplits;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (compare_values(&t->splits[mid], &k) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t catalog_range_shard(const catalog *cat, const catalog_table *t, size_t range)
{
	if (t && t->range_shard && range <= t->nsplits)
		return t->range_shard[range];
	size_t n = cat->placed > 0 ? cat->placed : cat->nshards;
	return n > 0 ? range % n : 0;
}

/* Rewrite a table's split points and range owners (inside a transaction). */
static int persist_ranges(catalog *cat, const catalog_table *t)
{
	if (run(cat->db, NULL, "DELETE FROM sl_splits WHERE tbl = ?", "t", t->name) != SQLITE_DONE ||
	    run(cat->db, NULL, "DELETE FROM sl_ranges WHERE tbl = ?", "t", t->name) != SQLITE_DONE)
		return -1;
	for (size_t i = 0; i < t->nsplits; i++) {
		const wire_value *v = &t->splits[i];
		int rc = v->type == WIRE_INT ? run(cat->db, NULL, "INSERT INTO sl_splits VALUES (?, ?, ?)", "tii",
						   t->name, (int64_t)i, v->i)
					     : run(cat->db, NULL, "INSERT INTO sl_splits VALUES (?, ?, ?)", "tit",
						   t->name, (int64_t)i, (const char *)v->p);
		if (rc != SQLITE_DONE)
			return -1;
	}
	for (size_t r = 0; t->range_shard && r <= t->nsplits; r++)
		if (run(cat->db, NULL, "INSERT INTO sl_ranges VALUES (?, ?, ?)", "tii", t->name, (int64_t)r,
			(int64_t)t->range_shard[r]) != SQLITE_DONE)
			return -1;
	return 0;
}

const catalog_table *catalog_range_table(const catalog *cat, const char *name, sql_error *err)
{
	const catalog_table *t = find_table(cat, name);
	if (!t) {
		sql_error_set(err, "42P01", 0, "relation \"%s\" does not exist", name);
		return NULL;
	}
	if (t->partition != SQL_PARTITION_RANGE) {
		sql_error_set(err, "42P16", 0, "table \"%s\" is not partitioned by range", name);
		return NULL;
	}
	return t;
}

int catalog_split_range(catalog *cat, const char *table, const sql_expr *value, sql_error *err)
{
	if (!catalog_range_table(cat, table, err))
		return -1;
	catalog_table *t = find_table_mut(cat, table);
	wire_value v;
	if (split_value(value, t->cols[t->partition_col].type.kind, &v, err) != 0)
		return -1;
	size_t r = catalog_range_of(t, &v);
	if (r > 0 && compare_values(&t->splits[r - 1], &v) == 0) {
		sql_error_set(err, "42P16", 0, "table \"%s\" is split at that value already (range %zu starts there)",
			      table, r);
		return -1;
	}
	wire_value copy = v;
	if (v.type == WIRE_TEXT && set_text_value(&copy, v.p, v.len) != 0)
		goto oom;
	if (range_shards_materialize(cat, t) != 0)
		goto oom_copy;
	wire_value *ns = malloc((t->nsplits + 1) * sizeof *ns);
	uint32_t *nr = malloc((t->nsplits + 2) * sizeof *nr);
	if (!ns || !nr) {
		free(ns);
		free(nr);
		goto oom_copy;
	}
	/* splits: v goes at index r; ranges: r splits into r and r + 1 */
	for (size_t i = 0, j = 0; i <= t->nsplits; i++) {
		if (i == r)
			ns[j++] = copy;
		if (i < t->nsplits)
			ns[j++] = t->splits[i];
	}
	for (size_t i = 0, j = 0; i <= t->nsplits; i++) {
		nr[j++] = t->range_shard[i];
		if (i == r)
			nr[j++] = t->range_shard[i];
	}
	wire_value *old_s = t->splits;
	uint32_t *old_r = t->range_shard;
	size_t old_n = t->nsplits;
	t->splits = ns;
	t->range_shard = nr;
	t->nsplits++;
	uint64_t epoch;
	if (begin(cat, err) != 0 || persist_ranges(cat, t) != 0 || commit_change(cat, &epoch, err) != 0) {
		if (!err->sqlstate[0])
			db_error(cat, err);
		rollback(cat);
		t->splits = old_s;
		t->range_shard = old_r;
		t->nsplits = old_n;
		free(ns);
		free(nr);
		if (copy.type == WIRE_TEXT)
			free((void *)copy.p);
		return -1;
	}
	cat->epoch = epoch;
	free(old_s);
	free(old_r);
	return 0;
oom_copy:
	if (copy.type == WIRE_TEXT)
		free((void *)copy.p);
oom:
	sql_error_set(err, "53200", 0, "out of memory");
	return -1;
}

/* ---- bucket moves (the rebalancer's durable log) --------------------------------- */

static int buckets_text(const uint32_t *b, size_t n, char **out)
{
	char *t = malloc(n * 6 + 1);
	if (!t)
		return -1;
	size_t len = 0;
	t[0] = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(t + len, 7, "%s%u", i ? "," : "", b[i] % CATALOG_BUCKETS);
	*out = t;
	return 0;
}

int catalog_move_put(catalog *cat, int64_t *id, const char *phase, size_t src, size_t dst, const uint32_t *buckets,
		     size_t n, const char *table, size_t range, sql_error *err)
{
	char *text = NULL;
	if (buckets_text(buckets, n, &text) != 0) {
		sql_error_set(err, "53200", 0, "out of memory");
		return -1;
	}
	if (begin(cat, err) != 0) {
		free(text);
		return -1;
	}
	int rc;
	if (*id == 0)
		rc = table ? run(cat->db, NULL,
				 "INSERT INTO sl_moves(src, dst, phase, buckets, tbl, rng) VALUES (?, ?, ?, ?, ?, ?)",
				 "iittti", (int64_t)src, (int64_t)dst, phase, text, table, (int64_t)range)
			   : run(cat->db, NULL, "INSERT INTO sl_moves(src, dst, phase, buckets) VALUES (?, ?, ?, ?)",
				 "iitt", (int64_t)src, (int64_t)dst, phase, text);
	else
		rc = run(cat->db, NULL, "UPDATE sl_moves SET phase = ? WHERE id = ?", "ti", phase, *id);
	free(text);
	if (rc != SQLITE_DONE || sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_error(cat, err);
		rollback(cat);
		return -1;
	}
	if (*id == 0)
		*id = sqlite3_last_insert_rowid(cat->db);
	return 0;
}

int catalog_moves_queue(catalog *cat, catalog_move *moves, size_t n, sql_error *err)
{
	if (n == 0)
		return 0;
	if (begin(cat, err) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		catalog_move *m = &moves[i];
		char *text = NULL;
		if (buckets_text(m->buckets, m->nbuckets, &text) != 0) {
			rollback(cat);
			sql_error_set(err, "53200", 0, "out of memory");
			return -1;
		}
		int rc = m->table ? run(cat->db, NULL,
					"INSERT INTO sl_moves(src, dst, phase, buckets, tbl, rng) "
					"VALUES (?, ?, 'queued', ?, ?, ?)",
					"iitti", (int64_t)m->src, (int64_t)m->dst, text, m->table, (int64_t)m->range)
				  : run(cat->db, NULL,
					"INSERT INTO sl_moves(src, dst, phase, buckets) VALUES (?, ?, 'queued', ?)", "iit",
					(int64_t)m->src, (int64_t)m->dst, text);
		free(text);
		if (rc != SQLITE_DONE) {
			db_error(cat, err);
			rollback(cat);
			return -1;
		}
		m->id = sqlite3_last_insert_rowid(cat->db);
	}
	if (sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_error(cat, err);
		rollback(cat);
		for (size_t i = 0; i < n; i++)
			moves[i].id = 0;
		return -1;
	}
	return 0;
}

int catalog_move_switch(catalog *cat, int64_t id, size_t dst, const uint32_t *buckets, size_t n, const char *table,
			size_t range, sql_error *err)
{
	if (dst >= cat->nshards) {
		sql_error_set(err, "22023", 0, "shard %zu does not exist", dst);
		return -1;
	}
	catalog_table *t = table ? find_table_mut(cat, table) : NULL;
	if (table && (!t || range > t->nsplits || range_shards_materialize(cat, t) != 0)) {
		sql_error_set(err, "42P01", 0, "range %zu of \"%s\" does not exist", range, table);
		return -1;
	}
	if (begin(cat, err) != 0)
		return -1;
	if (run(cat->db, NULL, "UPDATE sl_moves SET phase = 'switch' WHERE id = ?", "i", id) != SQLITE_DONE)
		goto dbfail;
	if (t) {
		uint32_t old = t->range_shard[range];
		t->range_shard[range] = (uint32_t)dst;
		uint64_t e2;
		if (persist_ranges(cat, t) != 0) {
			t->range_shard[range] = old;
			goto dbfail;
		}
		if (commit_change(cat, &e2, err) != 0) {
			t->range_shard[range] = old;
			return -1;
		}
		cat->epoch = e2;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (run(cat->db, NULL, "UPDATE sl_buckets SET shard = ? WHERE bucket = ?", "ii", (int64_t)dst,
			(int64_t)(buckets[i] % CATALOG_BUCKETS)) != SQLITE_DONE)
			goto dbfail;
	uint64_t epoch;
	if (commit_change(cat, &epoch, err) != 0)
		return -1;
	cat->epoch = epoch;
	for (size_t i = 0; i < n; i++)
		cat->bucket_shard[buckets[i] % CATALOG_BUCKETS] = (uint32_t)dst;
	return 0;
dbfail:
	db_error(cat, err);
	rollback(cat);
	return -1;
}

size_t catalog_moves_load(catalog *cat, catalog_move **out)
{
	*out = NULL;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db,
			       "SELECT id, src, dst, phase, buckets, tbl, rng FROM sl_moves "
			       "WHERE phase NOT IN ('done', 'cancelled') ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	size_t n = 0, cap = 0;
	catalog_move *v = NULL;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			catalog_move *nv = realloc(v, cap * sizeof *nv);
			if (!nv)
				break;
			v = nv;
		}
		catalog_move *m = &v[n];
		memset(m, 0, sizeof *m);
		m->id = sqlite3_column_int64(st, 0);
		m->src = (size_t)sqlite3_column_int64(st, 1);
		m->dst = (size_t)sqlite3_column_int64(st, 2);
		snprintf(m->phase, sizeof m->phase, "%s", (const char *)sqlite3_column_text(st, 3));
		if (sqlite3_column_type(st, 5) == SQLITE_TEXT) {
			m->table = strdup((const char *)sqlite3_column_text(st, 5));
			m->range = (size_t)sqlite3_column_int64(st, 6);
		}
		const char *t = (const char *)sqlite3_column_text(st, 4);
		m->buckets = malloc(CATALOG_BUCKETS * sizeof *m->buckets);
		if (!m->buckets)
			break;
		while (t && *t && m->nbuckets < CATALOG_BUCKETS) {
			m->buckets[m->nbuckets++] = (uint32_t)strtoul(t, (char **)&t, 10) % CATALOG_BUCKETS;
			if (*t == ',')
				t++;
		}
		n++;
	}
	sqlite3_finalize(st);
	*out = v;
	return n;
}

/* ---- removed shards --------------------------------------------------------------- */

bool catalog_shard_removed(const catalog *cat, size_t shard)
{
	return shard < cat->nshards && cat->removed && cat->removed[shard];
}

size_t catalog_first_shard(const catalog *cat)
{
	for (size_t i = 0; i < cat->nshards; i++)
		if (!catalog_shard_removed(cat, i))
			return i;
	return 0;
}

int catalog_remove_check(const catalog *cat, size_t shard, bool buckets_too, sql_error *err)
{
	if (shard >= cat->nshards || catalog_shard_removed(cat, shard)) {
		sql_error_set(err, "22023", 0, "shard %zu is not in the cluster", shard);
		return -1;
	}
	size_t active = 0;
	for (size_t i = 0; i < cat->nshards; i++)
		active += !catalog_shard_removed(cat, i);
	if (active < 2) {
		sql_error_set(err, "55000", 0, "shard %zu is the cluster's last shard", shard);
		return -1;
	}
	for (size_t i = 0; i < cat->ntables; i++) {
		const catalog_table *t = cat->tables[i];
		if (t->partition != SQL_PARTITION_RANGE)
			continue;
		for (size_t r = 0; r <= t->nsplits; r++)
			if (catalog_range_shard(cat, t, r) == shard) {
				sql_error_set(err, "55000", 0,
					      "shard %zu holds range %zu of RANGE table \"%s\": move it first "
					      "(ALTER TABLE %s MOVE RANGE %zu TO SHARD n)", shard, r, t->name, t->name, r);
				return -1;
			}
	}
	for (uint32_t b = 0; buckets_too && b < CATALOG_BUCKETS; b++)
		if (cat->bucket_shard[b] == shard) {
			sql_error_set(err, "55000", 0, "shard %zu still owns bucket %u", shard, b);
			return -1;
		}
	return 0;
}

int catalog_remove_shard(catalog *cat, size_t shard, sql_error *err)
{
	if (catalog_remove_check(cat, shard, true, err) != 0)
		return -1;
	if (begin(cat, err) != 0)
		return -1;
	if (run(cat->db, NULL, "INSERT OR IGNORE INTO sl_removed(idx) VALUES (?)", "i", (int64_t)shard) !=
	    SQLITE_DONE) {
		db_error(cat, err);
		rollback(cat);
		return -1;
	}
	uint64_t epoch;
	if (commit_change(cat, &epoch, err) != 0)
		return -1;
	cat->epoch = epoch;
	cat->removed[shard] = true;
	return 0;
}
