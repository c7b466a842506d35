/*
 * store.c — a shard's SQLite connection: pragmas, authorizer, statement
 * cache, result building (see store.h for the contract).
 *
 * Durability: the writer runs in WAL mode with synchronous=FULL, so every
 * COMMIT that wrote pages fsyncs the WAL before it returns.  Readers open
 * the same file read-only and see the last committed snapshot.  All of
 * them open it through STORE_VFS (exclusive to this process).
 *
 * The authorizer is armed only while request SQL is being prepared
 * (st->checking); internal statements and statements SQLite re-prepares on
 * its own after a schema change run unchecked, because they were either
 * written here or already passed the check once.
 */
#include "shard/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txn/bucket.h"
#include "txn/hmap.h"
#include "txn/rowsum.h"

#define STMT_CACHE_MAX 512
#define MAX_WRITE_TABLES 8

struct store_arena_block {
	store_arena_block *next;
	size_t used, cap;
	unsigned char data[];
};

typedef struct {
	store_stmt s;
} cache_entry;

struct shard_store {
	sqlite3 *db;
	store_role role;
	hmap cache;          /* request sql text -> cache_entry */
	hmap icache;         /* internal sql text -> cache_entry (never cleared:
			      * SQLite re-prepares them after schema changes) */
	hmap pk_cache;       /* table name -> (void*)1 has pk / (void*)2 none */
	hmap uniq_cache;     /* table name -> (void*)1 secondary unique / (void*)2 none */
	/* authorizer state, valid while checking */
	int checking;
	int is_ddl, writes;
	const char *deny_reason;
	int schema_changed;  /* a DDL ran: cached per-statement facts are stale */
	uint64_t schema_gen; /* moves on every DDL */
	int nwrite_tables;
	char write_tables[MAX_WRITE_TABLES][128];
};

/* ---- arena --------------------------------------------------------------- */

static void *arena_alloc(store_result *res, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	store_arena_block *b = res->arena;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 16384 ? n : 16384;
		store_arena_block *nb = malloc(sizeof *nb + cap);
		if (!nb)
			return NULL;
		nb->used = 0;
		nb->cap = cap;
		nb->next = res->arena;
		res->arena = nb;
		b = nb;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

static char *arena_strdup(store_result *res, const char *s, size_t len)
{
	char *p = arena_alloc(res, len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = 0;
	return p;
}

void store_result_init(store_result *res)
{
	memset(res, 0, sizeof *res);
}

void store_result_reset(store_result *res)
{
	store_arena_block *b = res->arena;
	while (b) {
		store_arena_block *n = b->next;
		free(b);
		b = n;
	}
	free(res->resp.cells);
	memset(res, 0, sizeof *res);
}

void store_result_free(store_result *res)
{
	store_result_reset(res);
}

void store_result_error(store_result *res, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	snprintf(res->sqlstate, sizeof res->sqlstate, "%s", sqlstate);
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof res->message, fmt, ap);
	va_end(ap);
	res->resp.status = WIRE_ERROR;
	res->resp.sqlstate = res->sqlstate;
	res->resp.message = res->message;
	/* an error carries no rows */
	res->resp.nrows = 0;
	res->resp.ncols = 0;
	res->resp.columns = NULL;
	res->resp.types = NULL;
}

int store_result_failed(const store_result *res)
{
	return res->resp.status == WIRE_ERROR;
}

int store_result_encode(store_result *res, uint64_t id, uint8_t **out, size_t *outlen)
{
	res->resp.id = id;
	return wire_encode_response(&res->resp, out, outlen);
}

int store_result_columns(store_result *res, uint32_t ncols, const char *const *names)
{
	const char **cols = arena_alloc(res, ncols * sizeof *cols);
	const char **types = arena_alloc(res, ncols * sizeof *types);
	if (!cols || !types)
		return -1;
	for (uint32_t i = 0; i < ncols; i++) {
		cols[i] = names[i];
		types[i] = "TEXT";
	}
	res->resp.ncols = ncols;
	res->resp.columns = cols;
	res->resp.types = types;
	return 0;
}

static wire_value *add_row(store_result *res)
{
	uint32_t n = res->resp.ncols;
	size_t need = (size_t)(res->resp.nrows + 1) * n;
	if (need > res->cap_cells) {
		size_t cap = res->cap_cells ? res->cap_cells * 2 : 16 * (n ? n : 1);
		while (cap < need)
			cap *= 2;
		wire_value *c = realloc(res->resp.cells, cap * sizeof *c);
		if (!c)
			return NULL;
		res->resp.cells = c;
		res->cap_cells = (uint32_t)cap;
	}
	wire_value *row = res->resp.cells + (size_t)res->resp.nrows * n;
	res->resp.nrows++;
	return row;
}

int store_result_row_text(store_result *res, const char *const *cells)
{
	wire_value *row = add_row(res);
	if (!row)
		return -1;
	for (uint32_t i = 0; i < res->resp.ncols; i++) {
		memset(&row[i], 0, sizeof row[i]);
		if (!cells[i]) {
			row[i].type = WIRE_NULL;
			continue;
		}
		size_t len = strlen(cells[i]);
		row[i].type = WIRE_TEXT;
		row[i].p = arena_strdup(res, cells[i], len);
		row[i].len = (uint32_t)len;
		if (!row[i].p)
			return -1;
	}
	return 0;
}

/* ---- errors ---------------------------------------------------------------- */

const char *store_sqlstate(sqlite3 *db, int rc)
{
	int ext = db ? sqlite3_extended_errcode(db) : rc;
	const char *msg = db ? sqlite3_errmsg(db) : "";
	switch (ext) {
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
		return "23505";
	case SQLITE_CONSTRAINT_CHECK:
		/* CHECKs the router adds to emulate PostgreSQL types (sql_render.c) */
		if (strstr(msg, "$varchar(") || strstr(msg, "$char("))
			return "22001";
		if (strstr(msg, "$bool"))
			return "22P02";
		if (strstr(msg, "$int2") || strstr(msg, "$int4"))
			return "22003";
		return "23514";
	case SQLITE_CONSTRAINT_NOTNULL:
		return "23502";
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return "23503";
	}
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		return "23000";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "40001";
	case SQLITE_FULL:
		return "53100";
	case SQLITE_NOMEM:
		return "53200";
	case SQLITE_IOERR:
	case SQLITE_CORRUPT:
		return "58030";
	case SQLITE_TOOBIG:
		return "54000";
	case SQLITE_MISMATCH:
		return "42804";
	case SQLITE_RANGE:
		return "08P01";
	case SQLITE_AUTH:
		return "42501";
	case SQLITE_INTERRUPT:
		return "57014";
	case SQLITE_ERROR:
		if (strstr(msg, "no such table"))
			return "42P01";
		if (strstr(msg, "no such column"))
			return "42703";
		if (strstr(msg, "already exists"))
			return strstr(msg, "index") ? "42P07" : "42P07";
		if (strstr(msg, "syntax error") || strstr(msg, "incomplete input"))
			return "42601";
		if (strstr(msg, "no such function"))
			return "42883";
		return "XX000";
	}
	return "XX000";
}

/* ---- authorizer ------------------------------------------------------------ */

static int is_internal_table(const char *name)
{
	return name && strncmp(name, "_sl_", 4) == 0;
}

static int authorize(void *ctx, int action, const char *a1, const char *a2,
		     const char *db, const char *trigger)
{
	shard_store *st = ctx;
	if (!st->checking)
		return SQLITE_OK;
	switch (action) {
	case SQLITE_TRANSACTION:
	case SQLITE_SAVEPOINT:
		st->deny_reason = "transaction control statements are not accepted by a shard";
		return SQLITE_DENY;
	case SQLITE_ATTACH:
	case SQLITE_DETACH:
		st->deny_reason = "ATTACH and DETACH are not supported";
		return SQLITE_DENY;
	case SQLITE_PRAGMA:
		st->deny_reason = "PRAGMA is not accepted by a shard";
		return SQLITE_DENY;
	case SQLITE_CREATE_INDEX: case SQLITE_CREATE_TABLE:
	case SQLITE_CREATE_TEMP_INDEX: case SQLITE_CREATE_TEMP_TABLE:
	case SQLITE_CREATE_TEMP_TRIGGER: case SQLITE_CREATE_TEMP_VIEW:
	case SQLITE_CREATE_TRIGGER: case SQLITE_CREATE_VIEW:
	case SQLITE_DROP_INDEX: case SQLITE_DROP_TABLE:
	case SQLITE_DROP_TEMP_INDEX: case SQLITE_DROP_TEMP_TABLE:
	case SQLITE_DROP_TEMP_TRIGGER: case SQLITE_DROP_TEMP_VIEW:
	case SQLITE_DROP_TRIGGER: case SQLITE_DROP_VIEW:
	case SQLITE_ALTER_TABLE: case SQLITE_CREATE_VTABLE: case SQLITE_DROP_VTABLE:
	case SQLITE_REINDEX: case SQLITE_ANALYZE:
		st->is_ddl = 1;
		if (is_internal_table(a1) || is_internal_table(a2)) {
			st->deny_reason = "the shard's internal tables cannot be changed";
			return SQLITE_DENY;
		}
		return SQLITE_OK;
	case SQLITE_INSERT:
	case SQLITE_UPDATE:
	case SQLITE_DELETE:
		if (is_internal_table(a1)) {
			st->deny_reason = "the shard's internal tables cannot be changed";
			return SQLITE_DENY;
		}
		if (a1 && strncmp(a1, "sqlite_", 7) != 0) {
			st->writes = 1;
			int dup = 0;
			for (int i = 0; i < st->nwrite_tables; i++)
				if (strcmp(st->write_tables[i], a1) == 0)
					dup = 1;
			if (!dup && st->nwrite_tables < MAX_WRITE_TABLES)
				snprintf(st->write_tables[st->nwrite_tables++], 128, "%s", a1);
			/* IGNORE on a DELETE keeps the delete but turns off SQLite's
			 * truncate optimization, which would erase the table without
			 * the pre-update hook: the session would record nothing and
			 * the row locks would see nothing.  Not for DROP TABLE, which
			 * asks about SQLITE_DELETE too (after SQLITE_DROP_TABLE) and
			 * silently drops nothing when told IGNORE. */
			if (action == SQLITE_DELETE && !st->is_ddl)
				return SQLITE_IGNORE;
		}
		return SQLITE_OK;
	}
	return SQLITE_OK;
}

/* ---- open/close -------------------------------------------------------------- */

sqlite3 *store_db(shard_store *st)
{
	return st->db;
}

/* sl_bucket(key): the hash bucket of a partition key, as the router computes
 * it (txn/bucket.h): integers by their int64 value, text by its bytes, an
 * integral real as that integer; NULL for anything else.  The rebalancer
 * finds a bucket's rows with it. */
static void fn_sl_bucket(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	sqlite3_value *v = argv[0];
	switch (sqlite3_value_type(v)) {
	case SQLITE_INTEGER:
		sqlite3_result_int64(ctx, sl_bucket_of_int(sqlite3_value_int64(v)));
		return;
	case SQLITE_TEXT: {
		const unsigned char *t = sqlite3_value_text(v);
		sqlite3_result_int64(ctx, sl_bucket_of_bytes(t, (size_t)sqlite3_value_bytes(v)));
		return;
	}
	case SQLITE_FLOAT: {
		double d = sqlite3_value_double(v);
		if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(int64_t)d) {
			sqlite3_result_int64(ctx, sl_bucket_of_int((int64_t)d));
			return;
		}
	}
	/* fall through */
	default:
		sqlite3_result_null(ctx);
	}
}

/* sl_checksum(c1, c2, ...): the checksum of txn/rowsum.h over the rows
 * aggregated.  The rebalancer compares a move's rows on the source with
 * the staged copy on the target by it (docs/rebalance.md). */
static void fn_sl_checksum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	uint64_t *sum = sqlite3_aggregate_context(ctx, sizeof *sum);
	if (!sum) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	uint64_t h = rowsum_start();
	for (int k = 0; k < argc; k++) {
		sqlite3_value *v = argv[k];
		int type = sqlite3_value_type(v);
		const void *p = NULL;
		uint32_t n = 0;
		if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
			p = type == SQLITE_TEXT ? (const void *)sqlite3_value_text(v) : sqlite3_value_blob(v);
			n = (uint32_t)sqlite3_value_bytes(v);
		}
		h = rowsum_value(h, type, type == SQLITE_INTEGER ? sqlite3_value_int64(v) : 0,
				 type == SQLITE_FLOAT ? sqlite3_value_double(v) : 0, p, n);
	}
	*sum += h;
}

static void fn_sl_checksum_final(sqlite3_context *ctx)
{
	uint64_t *sum = sqlite3_aggregate_context(ctx, 0);
	sqlite3_result_int64(ctx, sum ? (int64_t)*sum : 0);
}

shard_store *store_open(const char *path, store_role role, char *err, size_t errlen)
{
	shard_store *st = calloc(1, sizeof *st);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->role = role;
	hmap_init(&st->cache);
	hmap_init(&st->icache);
	hmap_init(&st->pk_cache);
	hmap_init(&st->uniq_cache);
	int flags = SQLITE_OPEN_NOMUTEX |
		    (role == STORE_WRITER ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
					  : SQLITE_OPEN_READONLY);
	int rc = sqlite3_open_v2(path, &st->db, flags, STORE_VFS);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "open %s: %s", path,
			 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		store_close(st);
		return NULL;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, 5000);
	const char *pragmas = role == STORE_WRITER
		? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
		  "PRAGMA cache_size=-65536; PRAGMA case_sensitive_like=ON;"
		: "PRAGMA query_only=1; PRAGMA cache_size=-32768; PRAGMA case_sensitive_like=ON;";
	char *emsg = NULL;
	if (sqlite3_exec(st->db, pragmas, NULL, NULL, &emsg) != SQLITE_OK) {
		snprintf(err, errlen, "pragmas on %s: %s", path, emsg ? emsg : "?");
		sqlite3_free(emsg);
		store_close(st);
		return NULL;
	}
	sqlite3_create_function(st->db, "sl_bucket", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_sl_bucket,
				NULL, NULL);
	sqlite3_create_function(st->db, "sl_checksum", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, NULL,
				fn_sl_checksum_step, fn_sl_checksum_final);
	sqlite3_set_authorizer(st->db, authorize, st);
	return st;
}

static void cache_free(hmap *m)
{
	size_t it;
	for (hmap_entry *e = hmap_first(m, &it); e; e = hmap_next(m, e, &it)) {
		cache_entry *ce = e->value;
		sqlite3_finalize(ce->s.stmt);
		free(ce);
	}
	hmap_free(m);
	hmap_init(m);
}

void store_cache_clear(shard_store *st)
{
	cache_free(&st->cache);
	hmap_free(&st->pk_cache);
	hmap_init(&st->pk_cache);
	hmap_free(&st->uniq_cache);
	hmap_init(&st->uniq_cache);
}

/* A yes/no fact about a table, from a count(*) query over ?1 = the table,
 * cached in `cache` (the caches are dropped on schema changes).  When the
 * query cannot run, the answer is `unsure`. */
static int table_fact(shard_store *st, hmap *cache, const char *sql, const char *table, int unsure)
{
	void *v = hmap_get(cache, table, strlen(table));
	if (v)
		return v == (void *)1;
	sqlite3_stmt *q = store_internal(st, sql);
	int has = unsure;
	if (q) {
		sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			has = sqlite3_column_int(q, 0) > 0;
		sqlite3_reset(q);
		sqlite3_clear_bindings(q);
	}
	hmap_put(cache, table, strlen(table), has ? (void *)1 : (void *)2);
	return has;
}

int store_has_secondary_unique(shard_store *st, const char *table)
{
	if (st->schema_changed) {
		hmap_free(&st->uniq_cache);
		hmap_init(&st->uniq_cache);
	}
	/* when unsure, say yes: the caller then checks */
	return table_fact(st, &st->uniq_cache,
			  "SELECT count(*) FROM pragma_index_list(?1) WHERE \"unique\" = 1 AND origin <> 'pk'", table, 1);
}

void store_close(shard_store *st)
{
	if (!st)
		return;
	store_cache_clear(st);
	cache_free(&st->icache);
	if (st->db)
		sqlite3_close_v2(st->db);
	free(st);
}

/* ---- statements --------------------------------------------------------------- */

static int all_space(const char *p, const char *end)
{
	for (; p < end && *p; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';')
			return 0;
	return 1;
}

/* Does the table have an explicit PRIMARY KEY?  Sessions ignore tables
 * without one, so a transaction may not write them. */
static int table_has_pk(shard_store *st, const char *table)
{
	return table_fact(st, &st->pk_cache, "SELECT count(*) FROM pragma_table_info(?1) WHERE pk > 0", table, 0);
}

static cache_entry *prepare_cached(shard_store *st, const char *sql, uint32_t len, int internal,
				   store_result *res)
{
	hmap *cache = internal ? &st->icache : &st->cache;
	if (!internal && (st->schema_changed || st->cache.count >= STMT_CACHE_MAX)) {
		/* Safe here: no request statement is in use between requests. */
		st->schema_changed = 0;
		store_cache_clear(st);
	}
	cache_entry *ce = hmap_get(cache, sql, len);
	if (ce)
		return ce;
	sqlite3_stmt *stmt = NULL;
	const char *tail = NULL;
	st->checking = !internal;
	st->is_ddl = st->writes = st->nwrite_tables = 0;
	st->deny_reason = NULL;
	int rc = sqlite3_prepare_v3(st->db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
	st->checking = 0;
	if (rc != SQLITE_OK) {
		if (res) {
			if ((rc & 0xff) == SQLITE_AUTH && st->deny_reason)
				store_result_error(res, "0A000", "%s", st->deny_reason);
			else
				store_result_error(res, store_sqlstate(st->db, rc), "%s", sqlite3_errmsg(st->db));
		}
		sqlite3_finalize(stmt);
		return NULL;
	}
	if (!stmt) {
		if (res)
			store_result_error(res, "42601", "empty statement");
		return NULL;
	}
	if (!internal && tail && !all_space(tail, sql + len)) {
		if (res)
			store_result_error(res, "42601", "a shard request carries exactly one statement");
		sqlite3_finalize(stmt);
		return NULL;
	}
	ce = calloc(1, sizeof *ce);
	if (!ce) {
		sqlite3_finalize(stmt);
		if (res)
			store_result_error(res, "53200", "out of memory");
		return NULL;
	}
	ce->s.stmt = stmt;
	ce->s.is_ddl = st->is_ddl;
	ce->s.writes = st->writes;
	int ntab = st->nwrite_tables;
	char tabs[MAX_WRITE_TABLES][128];
	memcpy(tabs, st->write_tables, sizeof tabs);
	for (int i = 0; i < ntab && !ce->s.is_ddl; i++)
		if (!table_has_pk(st, tabs[i]))
			ce->s.writes_no_pk = 1;
	if (hmap_put(cache, sql, len, ce) != 0) {
		sqlite3_finalize(stmt);
		free(ce);
		if (res)
			store_result_error(res, "53200", "out of memory");
		return NULL;
	}
	return ce;
}

store_stmt *store_prepare(shard_store *st, const char *sql, uint32_t len, store_result *res)
{
	if (!sql) {
		store_result_error(res, "42601", "request carries no SQL");
		return NULL;
	}
	cache_entry *ce = prepare_cached(st, sql, len, 0, res);
	return ce ? &ce->s : NULL;
}

uint64_t store_schema_gen(const shard_store *st)
{
	return st->schema_gen;
}

sqlite3_stmt *store_internal(shard_store *st, const char *sql)
{
	cache_entry *ce = prepare_cached(st, sql, (uint32_t)strlen(sql), 1, NULL);
	return ce ? ce->s.stmt : NULL;
}

int store_exec(shard_store *st, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *s = store_internal(st, sql);
	if (!s) {
		snprintf(err, errlen, "%s: %s", sql, sqlite3_errmsg(st->db));
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s: %s", sql, sqlite3_errmsg(st->db));
		return -1;
	}
	return 0;
}

static int bind_value(sqlite3_stmt *s, int i, const wire_value *v)
{
	switch (v->type) {
	case WIRE_NULL:
		return sqlite3_bind_null(s, i);
	case WIRE_INT:
		return sqlite3_bind_int64(s, i, v->i);
	case WIRE_REAL:
		return sqlite3_bind_double(s, i, v->r);
	case WIRE_TEXT:
		return sqlite3_bind_text(s, i, v->p ? v->p : "", (int)v->len, SQLITE_STATIC);
	case WIRE_BLOB:
		return sqlite3_bind_blob(s, i, v->p ? v->p : "", (int)v->len, SQLITE_STATIC);
	}
	return SQLITE_MISMATCH;
}

static int set_columns(store_result *res, sqlite3_stmt *s)
{
	int n = sqlite3_column_count(s);
	if (n <= 0)
		return 0;
	const char **cols = arena_alloc(res, (size_t)n * sizeof *cols);
	const char **types = arena_alloc(res, (size_t)n * sizeof *types);
	if (!cols || !types)
		return -1;
	for (int i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(s, i);
		const char *type = sqlite3_column_decltype(s, i);
		cols[i] = arena_strdup(res, name ? name : "?column?", name ? strlen(name) : 8);
		types[i] = arena_strdup(res, type ? type : "", type ? strlen(type) : 0);
		if (!cols[i] || !types[i])
			return -1;
	}
	res->resp.ncols = (uint32_t)n;
	res->resp.columns = cols;
	res->resp.types = types;
	return 0;
}

static int copy_row(store_result *res, sqlite3_stmt *s)
{
	wire_value *row = add_row(res);
	if (!row)
		return -1;
	for (uint32_t i = 0; i < res->resp.ncols; i++) {
		wire_value *v = &row[i];
		memset(v, 0, sizeof *v);
		switch (sqlite3_column_type(s, (int)i)) {
		case SQLITE_INTEGER:
			v->type = WIRE_INT;
			v->i = sqlite3_column_int64(s, (int)i);
			break;
		case SQLITE_FLOAT:
			v->type = WIRE_REAL;
			v->r = sqlite3_column_double(s, (int)i);
			break;
		case SQLITE_TEXT: {
			const unsigned char *t = sqlite3_column_text(s, (int)i);
			int n = sqlite3_column_bytes(s, (int)i);
			v->type = WIRE_TEXT;
			v->p = arena_strdup(res, (const char *)t, (size_t)n);
			v->len = (uint32_t)n;
			if (!v->p)
				return -1;
			break;
		}
		case SQLITE_BLOB: {
			const void *b = sqlite3_column_blob(s, (int)i);
			int n = sqlite3_column_bytes(s, (int)i);
			v->type = WIRE_BLOB;
			void *p = arena_alloc(res, (size_t)n + 1);
			if (!p)
				return -1;
			if (n)
				memcpy(p, b, (size_t)n);
			v->p = p;
			v->len = (uint32_t)n;
			break;
		}
		default:
			v->type = WIRE_NULL;
		}
	}
	return 0;
}

int store_run(shard_store *st, store_stmt *ss, const wire_value *params, uint32_t nparams,
	      store_result *res)
{
	sqlite3_stmt *s = ss->stmt;
	int want = sqlite3_bind_parameter_count(s);
	if ((int)nparams != want) {
		store_result_error(res, "08P01",
				   "bind message supplies %u parameters, but the statement requires %d",
				   nparams, want);
		return -1;
	}
	for (uint32_t i = 0; i < nparams; i++) {
		if (bind_value(s, (int)i + 1, &params[i]) != SQLITE_OK) {
			store_result_error(res, "08P01", "cannot bind parameter $%u", i + 1);
			sqlite3_clear_bindings(s);
			return -1;
		}
	}
	if (set_columns(res, s) != 0) {
		store_result_error(res, "53200", "out of memory");
		sqlite3_clear_bindings(s);
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (copy_row(res, s) != 0) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			store_result_error(res, "53200", "out of memory building the result");
			return -1;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = sqlite3_reset(s);
		store_result_error(res, store_sqlstate(st->db, rc), "%s", sqlite3_errmsg(st->db));
		sqlite3_clear_bindings(s);
		return -1;
	}
	if (!sqlite3_stmt_readonly(s))
		res->resp.changes = sqlite3_changes64(st->db);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (ss->is_ddl) {
		st->schema_changed = 1;
		st->schema_gen++;
	}
	return 0;
}
