/*
 * test_plan.c — the planner's results against plain SQLite, in process.
 *
 * A simulated cluster: the catalog in memory, four "shards" that are four
 * in-memory SQLite databases.  Every statement is planned, its requests run
 * on the named shard databases (parameters bound exactly as the shard
 * server binds them; the test fails if a request's nparams differs from
 * what its SQL needs, which the real shard rejects with 08P01), the
 * answers merged by plan_merge().  The same statement, rendered by
 * sql_render_stmt(), runs on ONE plain in-memory SQLite database.  Results
 * are compared after formatting with plan_format_text() (row order
 * normalised when the query has no ORDER BY).
 *
 * Also: routing (which shards get which request), error SQLSTATEs,
 * parameter and result type inference, text formatting and binding.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/catalog.h"
#include "router/plan.h"
#include "router/sql.h"
#include "txn/bucket.h"
#include "tests/tap.h"

#define NSHARDS 4

static catalog *cat;
static sqlite3 *shard_db[NSHARDS];

/* The shards' sl_bucket() for integer keys (shard/store.c has all types). */
static void fn_sl_bucket(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_INTEGER)
		sqlite3_result_int64(ctx, sl_bucket_of_int(sqlite3_value_int64(argv[0])));
	else if (sqlite3_value_type(argv[0]) == SQLITE_TEXT)
		sqlite3_result_int64(ctx, sl_bucket_of_bytes(sqlite3_value_text(argv[0]),
							     (size_t)sqlite3_value_bytes(argv[0])));
	else
		sqlite3_result_null(ctx);
}
static sqlite3 *plain;

/* ---- rows as strings --------------------------------------------------------- */

typedef struct {
	char **rows;
	size_t n, cap;
	char tag[64];
	int64_t changes;
} rowset;

static void rowset_free(rowset *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->rows[i]);
	free(r->rows);
	memset(r, 0, sizeof *r);
}

static void rowset_push(rowset *r, char *s)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->rows = realloc(r->rows, r->cap * sizeof *r->rows);
		if (r->rows == NULL)
			bail("out of memory");
	}
	r->rows[r->n++] = s;
}

static char *format_row(const router_plan *p, const wire_value *cells, size_t ncols)
{
	sql_buf b;
	sql_buf_init(&b);
	for (size_t c = 0; c < ncols; c++) {
		if (c > 0)
			sql_buf_puts(&b, "|");
		if (cells[c].type == WIRE_NULL)
			sql_buf_puts(&b, "<null>");
		else
			plan_format_text(plan_col_type(p, c), &cells[c], &b);
	}
	char *s = strdup(b.data ? b.data : "");
	sql_buf_free(&b);
	return s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- running SQL on a SQLite database -------------------------------------------- */

typedef struct {
	wire_value *cells;
	size_t n, cap;
	uint32_t ncols;
	sql_arena *arena;
} collected;

static void bind_all(sqlite3_stmt *st, const wire_value *params, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const wire_value *v = &params[i];
		switch (v->type) {
		case WIRE_INT: sqlite3_bind_int64(st, (int)i + 1, v->i); break;
		case WIRE_REAL: sqlite3_bind_double(st, (int)i + 1, v->r); break;
		case WIRE_TEXT: sqlite3_bind_text(st, (int)i + 1, v->p, (int)v->len, SQLITE_STATIC); break;
		case WIRE_BLOB: sqlite3_bind_blob(st, (int)i + 1, v->p, (int)v->len, SQLITE_STATIC); break;
		case WIRE_NULL: sqlite3_bind_null(st, (int)i + 1); break;
		}
	}
}

/* Run sql with params; rows into *out.  Returns 0, or -1 with a message. */
static int run_sql(sqlite3 *db, const char *sql, const wire_value *params, uint32_t nparams,
		   bool strict_params, collected *out, int64_t *changes, char *msg, size_t msglen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(msg, msglen, "prepare: %s: %s", sqlite3_errmsg(db), sql);
		return -1;
	}
	int want = sqlite3_bind_parameter_count(st);
	if (strict_params && want != (int)nparams) {
		snprintf(msg, msglen, "08P01: request has %u parameters, its SQL needs %d: %s",
			 nparams, want, sql);
		sqlite3_finalize(st);
		return -1;
	}
	bind_all(st, params, (uint32_t)want < nparams ? (uint32_t)want : nparams);
	out->ncols = (uint32_t)sqlite3_column_count(st);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (uint32_t c = 0; c < out->ncols; c++) {
			if (out->n == out->cap) {
				out->cap = out->cap ? out->cap * 2 : 256;
				out->cells = realloc(out->cells, out->cap * sizeof *out->cells);
			}
			wire_value *v = &out->cells[out->n++];
			memset(v, 0, sizeof *v);
			switch (sqlite3_column_type(st, (int)c)) {
			case SQLITE_INTEGER:
				v->type = WIRE_INT;
				v->i = sqlite3_column_int64(st, (int)c);
				break;
			case SQLITE_FLOAT:
				v->type = WIRE_REAL;
				v->r = sqlite3_column_double(st, (int)c);
				break;
			case SQLITE_TEXT:
			case SQLITE_BLOB: {
				bool text = sqlite3_column_type(st, (int)c) == SQLITE_TEXT;
				const void *d = text ? (const void *)sqlite3_column_text(st, (int)c)
						     : sqlite3_column_blob(st, (int)c);
				int len = sqlite3_column_bytes(st, (int)c);
				char *copy = sql_arena_strndup(out->arena, d ? d : "", (size_t)len);
				v->type = text ? WIRE_TEXT : WIRE_BLOB;
				v->p = copy;
				v->len = (uint32_t)len;
				break;
			}
			default:
				v->type = WIRE_NULL;
			}
		}
	}
	if (rc != SQLITE_DONE) {
		snprintf(msg, msglen, "step: %s: %s", sqlite3_errmsg(db), sql);
		sqlite3_finalize(st);
		return -1;
	}
	if (changes)
		*changes = sqlite3_stmt_readonly(st) ? 0 : sqlite3_changes64(db);
	sqlite3_finalize(st);
	return 0;
}

/* ---- the simulated cluster ----------------------------------------------------------- */

typedef struct {
	sql_stmt_list *list;
	router_plan *plan;
	sql_arena *arena;      /* bound parameter values */
	wire_value *params;
	size_t nparams;
	plan_batch batch;
	sql_error err;
} run_state;

static void run_free(run_state *rs)
{
	plan_batch_free(&rs->batch);
	plan_free(rs->plan);
	sql_stmt_list_free(rs->list);
	sql_arena_free(rs->arena);
	free(rs->params);
	memset(rs, 0, sizeof *rs);
}

/* Parse, plan, bind (text params, NULL = SQL NULL), route.  0 or -1 with
 * rs->err. */
static int prepare(run_state *rs, const char *sql, const char *const *params, size_t np,
		   const uint32_t *types, size_t ntypes)
{
	memset(rs, 0, sizeof *rs);
	if (sql_parse(sql, strlen(sql), &rs->list, &rs->err) != 0)
		return -1;
	if (rs->list->n != 1)
		bail("one statement expected: %s", sql);
	if (plan_build(cat, rs->list->items[0], types, ntypes, &rs->plan, &rs->err) != 0)
		return -1;
	rs->arena = sql_arena_new();
	rs->nparams = np;
	rs->params = calloc(np ? np : 1, sizeof *rs->params);
	for (size_t i = 0; i < np; i++) {
		const char *t = params[i];
		if (plan_bind_text(rs->plan, i, t, t ? strlen(t) : 0, rs->arena, &rs->params[i],
				   &rs->err) != 0)
			return -1;
	}
	return plan_requests(rs->plan, cat, rs->params, rs->nparams, &rs->batch, &rs->err);
}

/* Execute the batch on the shard databases and merge. */
static int execute(run_state *rs, rowset *out, char *msg, size_t msglen)
{
	size_t n = rs->batch.n;
	collected *col = calloc(n ? n : 1, sizeof *col);
	wire_response *resp = calloc(n ? n : 1, sizeof *resp);
	const wire_response **answers = calloc(n ? n : 1, sizeof *answers);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const plan_request *r = &rs->batch.reqs[i];
		col[i].arena = sql_arena_new();
		int64_t changes = 0;
		if (r->shard >= NSHARDS) {
			snprintf(msg, msglen, "request to unknown shard %zu", r->shard);
			rc = -1;
			break;
		}
		rc = run_sql(shard_db[r->shard], r->sql, r->params, r->nparams, true, &col[i],
			     &changes, msg, msglen);
		resp[i].status = WIRE_OK;
		resp[i].ncols = col[i].ncols;
		resp[i].nrows = col[i].ncols ? (uint32_t)(col[i].n / col[i].ncols) : 0;
		resp[i].cells = col[i].cells;
		resp[i].changes = changes;
		answers[i] = &resp[i];
	}
	plan_result res;
	if (rc == 0) {
		if (plan_merge(rs->plan, &rs->batch, answers, &res, &rs->err) != 0) {
			snprintf(msg, msglen, "merge: %s %s", rs->err.sqlstate, rs->err.message);
			rc = -1;
		} else {
			for (size_t r = 0; r < res.nrows; r++)
				rowset_push(out, format_row(rs->plan, res.cells + r * res.ncols, res.ncols));
			snprintf(out->tag, sizeof out->tag, "%s", res.tag);
			out->changes = res.changes;
			plan_result_free(&res);
			if (plan_kind_of(rs->plan) >= PLAN_CREATE_TABLE &&
			    plan_apply_ddl(rs->plan, cat, &rs->err) != 0) {
				snprintf(msg, msglen, "apply: %s %s", rs->err.sqlstate, rs->err.message);
				rc = -1;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(col[i].cells);
		sql_arena_free(col[i].arena);
	}
	free(col);
	free(resp);
	free(answers);
	return rc;
}

/* When set, the plain database runs this SQL instead of the rendering of
 * the cluster's statement (for PostgreSQL behaviour plain SQLite lacks,
 * such as 'true' meaning TRUE for a boolean column). */
static const char *plain_override;

/* The same statement on the plain database. */
static int execute_plain(run_state *rs, rowset *out, char *msg, size_t msglen)
{
	sql_buf b;
	sql_buf_init(&b);
	if (plain_override != NULL)
		sql_buf_puts(&b, plain_override);
	else
		sql_render_stmt(&b, rs->list->items[0]);
	collected col = {.arena = sql_arena_new()};
	int64_t changes = 0;
	int rc = run_sql(plain, b.data, rs->params, (uint32_t)rs->nparams, false, &col, &changes, msg,
			 msglen);
	if (rc == 0 && col.ncols > 0)
		for (size_t r = 0; r < col.n / col.ncols; r++)
			rowset_push(out, format_row(rs->plan, col.cells + r * col.ncols, col.ncols));
	out->changes = changes;
	free(col.cells);
	sql_arena_free(col.arena);
	sql_buf_free(&b);
	return rc;
}

static bool has_order_by(const run_state *rs)
{
	const sql_stmt *s = rs->list->items[0];
	return s->kind == SQL_STMT_SELECT && s->select.order_by.n > 0;
}

/* Run on both; compare rows (and write counts).  Returns the number of
 * requests the statement made, -1 on failure. */
static int both_p(const char *sql, const char *const *params, size_t np)
{
	run_state rs;
	rowset a = {0}, b = {0};
	char msg[512] = "";
	int result = -1;
	if (prepare(&rs, sql, params, np, NULL, 0) != 0) {
		ok(0, "%s: %s %s", sql, rs.err.sqlstate, rs.err.message);
		goto out;
	}
	if (execute(&rs, &a, msg, sizeof msg) != 0 || execute_plain(&rs, &b, msg, sizeof msg) != 0) {
		ok(0, "%s: %s", sql, msg);
		goto out;
	}
	if (!has_order_by(&rs)) {
		if (a.n > 1)
			qsort(a.rows, a.n, sizeof *a.rows, cmp_str);
		if (b.n > 1)
			qsort(b.rows, b.n, sizeof *b.rows, cmp_str);
	}
	bool same = a.n == b.n && a.changes == b.changes;
	size_t first = 0;
	for (size_t i = 0; same && i < a.n; i++, first++)
		same = strcmp(a.rows[i], b.rows[i]) == 0;
	if (same && plan_kind_of(rs.plan) == PLAN_SELECT) {
		char want[64];
		snprintf(want, sizeof want, "SELECT %zu", b.n);
		same = strcmp(a.tag, want) == 0;
	}
	ok(same, "%.150s%s [%zu rows, %zu requests, %s]", sql, strlen(sql) > 150 ? "..." : "", a.n,
	   rs.batch.n, a.tag);
	if (!same) {
		diag("cluster %zu rows (changes %lld), plain %zu rows (changes %lld)", a.n,
		     (long long)a.changes, b.n, (long long)b.changes);
		if (first < a.n || first < b.n)
			diag("first difference at row %zu: cluster [%s] plain [%s]", first,
			     first < a.n ? a.rows[first] : "-", first < b.n ? b.rows[first] : "-");
	}
	result = (int)rs.batch.n;
out:
	rowset_free(&a);
	rowset_free(&b);
	run_free(&rs);
	return result;
}

static int both(const char *sql)
{
	return both_p(sql, NULL, 0);
}

/* The cluster runs sql, the plain database plain_sql: same result. */
static int both_as(const char *sql, const char *plain_sql)
{
	plain_override = plain_sql;
	int rc = both_p(sql, NULL, 0);
	plain_override = NULL;
	return rc;
}

/* A statement that must fail with this SQLSTATE (at any step). */
static void fails(const char *sql, const char *const *params, size_t np, const char *state,
		  int position)
{
	run_state rs;
	int rc = prepare(&rs, sql, params, np, NULL, 0);
	bool good = rc != 0 && strcmp(rs.err.sqlstate, state) == 0 &&
		    (position < 0 || rs.err.position == position);
	ok(good, "%s -> %s at %d (%s)", sql, rs.err.sqlstate, rs.err.position, rs.err.message);
	if (!good)
		diag("wanted %s at %d", state, position);
	run_free(&rs);
}

/* ---- data ------------------------------------------------------------------------------- */

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void load_accounts(void)
{
	static const char *const owners[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace"};
	bool all = true;
	for (int chunk = 0; chunk < 20; chunk++) {
		sql_buf b;
		sql_buf_init(&b);
		sql_buf_puts(&b, "INSERT INTO accounts (id, owner, balance, flag, score) VALUES ");
		for (int i = 0; i < 500; i++) {
			int id = chunk * 500 + i + 1;
			uint64_t r = next_rand();
			const char *owner = r % 13 == 0 ? NULL : owners[r % 7];
			char score[32];
			if (r % 11 == 0)
				snprintf(score, sizeof score, "NULL");
			else
				snprintf(score, sizeof score, "%d.%02d", (int)(r >> 20) % 1000,
					 (int)(r >> 40) % 100);
			sql_buf_printf(&b, "%s(%d, %s%s%s, %d, %s, %s)", i ? ", " : "", id,
				       owner ? "'" : "", owner ? owner : "NULL", owner ? "'" : "",
				       (int)((r >> 8) % 1000),
				       r % 5 == 0 ? "NULL" : (r % 2 ? "TRUE" : "FALSE"), score);
		}
		run_state rs;
		rowset a = {0}, p = {0};
		char msg[512] = "";
		if (prepare(&rs, b.data, NULL, 0, NULL, 0) != 0 || execute(&rs, &a, msg, sizeof msg) != 0 ||
		    execute_plain(&rs, &p, msg, sizeof msg) != 0 || a.changes != 500 || p.changes != 500 ||
		    strcmp(a.tag, "INSERT 0 500") != 0) {
			diag("chunk %d: %s %s %s (%s)", chunk, rs.err.sqlstate, rs.err.message, msg, a.tag);
			all = false;
		}
		if (chunk == 0)
			ok(rs.batch.n == NSHARDS, "500 rows spread over %zu shard requests", rs.batch.n);
		rowset_free(&a);
		rowset_free(&p);
		run_free(&rs);
		sql_buf_free(&b);
	}
	ok(all, "10000 accounts inserted in 20 multi-row INSERTs, tags INSERT 0 500");

	/* Every row is on the shard that owns its bucket. */
	const catalog_table *t = catalog_table_get(cat, "accounts");
	size_t total = 0, misplaced = 0;
	for (int s = 0; s < NSHARDS; s++) {
		sqlite3_stmt *st;
		sqlite3_prepare_v2(shard_db[s], "SELECT id FROM accounts", -1, &st, NULL);
		while (sqlite3_step(st) == SQLITE_ROW) {
			wire_value k = {.type = WIRE_INT, .i = sqlite3_column_int64(st, 0)};
			sql_error err;
			int bkt = catalog_bucket_of(t, &k, &err);
			misplaced += catalog_bucket_shard(cat, (uint32_t)bkt) != (size_t)s;
			total++;
		}
		sqlite3_finalize(st);
	}
	ok(total == 10000 && misplaced == 0, "%zu rows on the shards, %zu misplaced", total, misplaced);
}

static void load_events(void)
{
	static const char *const kinds[] = {"click", "view", "buy", "refund"};
	bool all = true;
	for (int chunk = 0; chunk < 20; chunk++) {
		sql_buf b;
		sql_buf_init(&b);
		sql_buf_puts(&b, "INSERT INTO events VALUES ");
		for (int i = 0; i < 500; i++) {
			int id = chunk * 500 + i;
			uint64_t r = next_rand();
			sql_buf_printf(&b, "%s(%d, '%s', %d)", i ? ", " : "", id, kinds[r % 4],
				       (int)(r % 200) - 50);
		}
		run_state rs;
		rowset a = {0}, p = {0};
		char msg[512] = "";
		if (prepare(&rs, b.data, NULL, 0, NULL, 0) != 0 || execute(&rs, &a, msg, sizeof msg) != 0 ||
		    execute_plain(&rs, &p, msg, sizeof msg) != 0 || a.changes != 500) {
			diag("events chunk %d: %s %s", chunk, rs.err.message, msg);
			all = false;
		}
		/* ids 0..2499 are range 0, 2500..4999 range 1 ...: one shard per chunk */
		if (rs.batch.n != 1)
			all = false;
		rowset_free(&a);
		rowset_free(&p);
		run_free(&rs);
		sql_buf_free(&b);
	}
	ok(all, "10000 events inserted, each 500-row chunk to exactly one range shard");
	sqlite3_stmt *st;
	bool placed = true;
	for (int s = 0; s < NSHARDS; s++) {
		sqlite3_prepare_v2(shard_db[s], "SELECT min(id), max(id), count(*) FROM events", -1, &st,
				   NULL);
		sqlite3_step(st);
		placed &= sqlite3_column_int64(st, 0) == s * 2500 &&
			  sqlite3_column_int64(st, 1) == s * 2500 + 2499 &&
			  sqlite3_column_int64(st, 2) == 2500;
		sqlite3_finalize(st);
	}
	ok(placed, "range i = [2500i, 2500(i+1)) lives on shard i");
}

/* ---- tests ------------------------------------------------------------------------------- */

static void ddl(const char *sql)
{
	run_state rs;
	rowset a = {0}, p = {0};
	char msg[512] = "";
	int rc = prepare(&rs, sql, NULL, 0, NULL, 0);
	if (rc == 0)
		rc = execute(&rs, &a, msg, sizeof msg);
	if (rc == 0)
		rc = execute_plain(&rs, &p, msg, sizeof msg);
	ok(rc == 0 && rs.batch.n == NSHARDS, "%s [%s, %zu requests] %s%s", sql, a.tag, rs.batch.n,
	   rs.err.message, msg);
	rowset_free(&a);
	rowset_free(&p);
	run_free(&rs);
}

static void test_ddl(void)
{
	ddl("CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner TEXT, balance BIGINT NOT NULL, "
	    "flag BOOLEAN, score DOUBLE PRECISION) PARTITION BY HASH (id)");
	ddl("CREATE TABLE events (id BIGINT PRIMARY KEY, kind TEXT NOT NULL, amount INTEGER) "
	    "PARTITION BY RANGE (id) SPLIT AT (2500, 5000, 7500)");
	ddl("CREATE TABLE currencies (code TEXT PRIMARY KEY, name TEXT, rate NUMERIC)");
	ddl("CREATE TABLE users (name TEXT PRIMARY KEY, age INTEGER, data BYTEA) PARTITION BY HASH (name)");
	ddl("CREATE INDEX accounts_owner ON accounts (owner)");
	ddl("CREATE TABLE IF NOT EXISTS currencies (code TEXT PRIMARY KEY)");

	run_state rs;
	prepare(&rs, "CREATE TABLE t2 (id BIGINT PRIMARY KEY)", NULL, 0, NULL, 0);
	ok(rs.batch.n == NSHARDS && strstr(rs.batch.reqs[0].sql, "IF NOT EXISTS") != NULL,
	   "shards get CREATE TABLE IF NOT EXISTS: %s", rs.batch.n ? rs.batch.reqs[0].sql : "");
	run_free(&rs);
	prepare(&rs, "DROP TABLE IF EXISTS nosuch", NULL, 0, NULL, 0);
	ok(rs.err.sqlstate[0] == 0 && rs.batch.n == NSHARDS &&
		   strstr(rs.batch.reqs[0].sql, "DROP TABLE IF EXISTS") != NULL,
	   "DROP TABLE IF EXISTS of an unknown table: fine, sent to every shard");
	run_free(&rs);
	fails("DROP TABLE nosuch", NULL, 0, "42P01", 12);
	fails("CREATE TABLE accounts (id BIGINT PRIMARY KEY)", NULL, 0, "42P07", -1);
	fails("CREATE TABLE nopk (a BIGINT, b TEXT)", NULL, 0, "42P16", -1);
	fails("CREATE INDEX ON nosuch (a)", NULL, 0, "42P01", -1);
	fails("CREATE INDEX i1 ON accounts (nosuch)", NULL, 0, "42703", -1);
	fails("CREATE UNIQUE INDEX i2 ON accounts (owner)", NULL, 0, "0A000", -1);

	uint64_t e0 = catalog_epoch(cat);
	ddl("CREATE TABLE scratch (id INTEGER PRIMARY KEY, v TEXT) PARTITION BY HASH (id)");
	ok(catalog_table_get(cat, "scratch") != NULL && catalog_epoch(cat) == e0 + 1,
	   "plan_apply_ddl recorded the table, epoch +1");
	/* A prepared plan whose table was dropped since. */
	run_state old;
	prepare(&old, "SELECT * FROM scratch WHERE id = 1", NULL, 0, NULL, 0);
	ddl("DROP TABLE scratch");
	ok(catalog_table_get(cat, "scratch") == NULL, "DROP TABLE removed it from the catalog");
	plan_batch b;
	sql_error err;
	ok(plan_requests(old.plan, cat, NULL, 0, &b, &err) == -1 && strcmp(err.sqlstate, "42P01") == 0,
	   "a plan of a dropped table: 42P01 at plan_requests");
	run_free(&old);
}

static void test_reads(void)
{
	both("SELECT * FROM accounts WHERE id = 42");
	both("SELECT id, balance FROM accounts WHERE id IN (1, 2, 3, 5000, 9999, 123456)");
	both("SELECT * FROM accounts WHERE balance > 900 AND flag");
	both("SELECT * FROM accounts WHERE owner = 'alice' AND balance BETWEEN 100 AND 120");
	both("SELECT id FROM accounts WHERE owner IS NULL AND score IS NULL");
	both("SELECT id, owner FROM accounts WHERE owner LIKE 'c%' AND id < 300");
	both("SELECT * FROM accounts WHERE id = 42 OR id = 43");
	both_as("SELECT * FROM accounts WHERE flag = 'true' AND id < 100",
		"SELECT * FROM accounts WHERE flag = 1 AND id < 100");
	both_as("SELECT * FROM accounts WHERE id = '77'", "SELECT * FROM accounts WHERE id = 77");

	/* ORDER BY, LIMIT, OFFSET */
	both("SELECT id, balance FROM accounts ORDER BY balance DESC, id LIMIT 10 OFFSET 5");
	both("SELECT id, score FROM accounts ORDER BY score NULLS FIRST, id LIMIT 20");
	both("SELECT id, score FROM accounts ORDER BY score DESC, id LIMIT 20");
	both("SELECT id, score FROM accounts ORDER BY score ASC NULLS FIRST, id DESC LIMIT 15");
	both("SELECT id, owner FROM accounts ORDER BY owner DESC NULLS LAST, id LIMIT 30");
	both("SELECT id FROM accounts ORDER BY balance DESC, id LIMIT 7");
	both("SELECT id, balance AS b FROM accounts WHERE id <= 50 ORDER BY b, 1");
	both("SELECT id, balance FROM accounts ORDER BY 2 DESC, 1 OFFSET 9990");
	both("SELECT owner, id FROM accounts WHERE id < 200 ORDER BY owner, id");

	/* expressions and aliases */
	both("SELECT id * 2 AS double_id, balance + 1, balance - id, -balance FROM accounts WHERE id < 100 ORDER BY 1");
	both("SELECT owner || '!' AS o, balance FROM accounts WHERE id BETWEEN 10 AND 20 ORDER BY o, balance");
	both("SELECT id, CASE WHEN balance > 500 THEN 'rich' ELSE 'poor' END AS class FROM accounts WHERE id < 60");
	both("SELECT id, balance % 7, balance / 3, CAST(balance AS TEXT) FROM accounts WHERE id > 9950");
	both("SELECT upper(owner), length(owner), coalesce(owner, 'nobody') FROM accounts WHERE id < 40");
	both("SELECT id, score * 2, score > 500.5 FROM accounts WHERE id < 80");

	/* DISTINCT */
	both("SELECT DISTINCT owner FROM accounts");
	both("SELECT DISTINCT owner FROM accounts ORDER BY owner NULLS FIRST LIMIT 3");
	both("SELECT DISTINCT flag, owner FROM accounts ORDER BY owner, flag");
	both("SELECT DISTINCT balance % 10 FROM accounts ORDER BY 1 DESC LIMIT 4 OFFSET 2");

	/* parameters in WHERE, LIMIT, OFFSET, HAVING */
	const char *p1[] = {"990", "5"};
	both_p("SELECT id, balance FROM accounts WHERE balance > $1 ORDER BY id LIMIT $2", p1, 2);
	const char *p2[] = {"9995"};
	both_p("SELECT id FROM accounts ORDER BY id OFFSET $1", p2, 1);
	const char *p3[] = {"3", "2"};
	both_p("SELECT id FROM accounts ORDER BY balance, id LIMIT $1 OFFSET $2", p3, 2);
	const char *p4[] = {"1400", "x"};
	both_p("SELECT owner, count(*) FROM accounts WHERE owner <> $2 GROUP BY owner HAVING count(*) > $1", p4, 2);
	both("SELECT * FROM events WHERE id > 7000 ORDER BY amount DESC, id LIMIT 10");
	both("SELECT kind, id FROM events WHERE kind = 'buy' ORDER BY id DESC LIMIT 5 OFFSET 1000");

	/* SELECT without FROM */
	both("SELECT 1 + 2, 'x', NULL, TRUE, 2.5");
}

static void test_aggregates(void)
{
	both("SELECT count(*) FROM accounts");
	both("SELECT count(owner), sum(balance), min(balance), max(balance), avg(balance) FROM accounts");
	both("SELECT count(*), sum(balance), avg(score), min(score), max(score) FROM accounts WHERE balance < 0");
	both("SELECT count(*) FROM accounts WHERE id = -1");
	both("SELECT sum(balance), count(*) FROM accounts WHERE id = 77");
	both("SELECT owner, count(*), sum(balance) FROM accounts GROUP BY owner");
	both("SELECT owner, count(*) AS n FROM accounts GROUP BY owner HAVING count(*) > 1300 ORDER BY n DESC, owner");
	/* float sums depend on the order of addition: compare rounded */
	both("SELECT owner, round(avg(score), 6), min(score) FROM accounts GROUP BY owner ORDER BY owner NULLS LAST");
	both("SELECT max(owner), min(score), max(flag) FROM accounts");
	both("SELECT count(DISTINCT owner) FROM accounts");
	both("SELECT owner, count(DISTINCT balance % 10), sum(balance) FROM accounts GROUP BY owner");
	both("SELECT count(DISTINCT owner), count(DISTINCT flag), count(*) FROM accounts");
	both("SELECT sum(DISTINCT balance), avg(DISTINCT balance % 100) FROM accounts");
	both("SELECT balance % 3, flag, count(*) FROM accounts GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST");
	both("SELECT owner, sum(balance) AS total FROM accounts GROUP BY owner ORDER BY total DESC LIMIT 3");
	both("SELECT owner, sum(balance) FROM accounts GROUP BY owner ORDER BY 2 LIMIT 2 OFFSET 1");
	both("SELECT owner, max(balance) - min(balance) AS spread, count(*) * 2 FROM accounts GROUP BY owner");
	both("SELECT upper(owner) AS u, count(*) FROM accounts GROUP BY upper(owner) ORDER BY u NULLS FIRST");
	both("SELECT count(*) FROM accounts HAVING count(*) > 5");
	/* HAVING without GROUP BY: one group, even over no rows */
	both_as("SELECT 1 FROM accounts HAVING 2 > 1", "SELECT 1");
	both_as("SELECT 'x' FROM accounts WHERE id < 0 HAVING count(*) = 0", "SELECT 'x'");
	both_as("SELECT 'y' FROM accounts WHERE id = 5 HAVING count(*) = 1", "SELECT 'y'");
	both_as("SELECT 'z' FROM accounts HAVING count(*) < 10", "SELECT 'z' WHERE 0");
	both("SELECT owner FROM accounts GROUP BY owner HAVING sum(balance) > 700000");
	both("SELECT DISTINCT count(*) FROM accounts GROUP BY owner");
	both("SELECT bool_and(flag), bool_or(flag), every(balance >= 0) FROM accounts");
	both("SELECT owner, avg(balance) FROM accounts WHERE id IN (1, 2, 3, 4, 5, 6, 7, 8, 9) GROUP BY owner");
	both("SELECT kind, sum(amount), count(*) FROM events GROUP BY kind ORDER BY kind");
	both("SELECT count(*), min(id), max(id) FROM events WHERE id BETWEEN 100 AND 7000");
	both("SELECT avg(amount) FROM events WHERE id >= 2500 AND id < 5000");
}

/* ---- random queries, cluster against plain -------------------------------------------- */

typedef struct {
	const char *table;
	const char *const *items;    /* plain select items */
	const char *const *aggs;     /* aggregate items */
	const char *const *groups;   /* grouping expressions */
	const char *const *wheres;
	const char *key;             /* unique column */
} pool;

static const char *pick(const char *const *list)
{
	size_t n = 0;
	while (list[n])
		n++;
	return list[next_rand() % n];
}

static void random_query(const pool *pl, sql_buf *q)
{
	int mode = (int)(next_rand() % 4); /* 0 plain, 1 distinct, 2 grouped, 3 aggregate only */
	const char *where = pick(pl->wheres);
	size_t nitems = 1 + next_rand() % 3;
	bool ordered = next_rand() % 3 != 0;
	sql_buf_puts(q, mode == 1 ? "SELECT DISTINCT " : "SELECT ");
	size_t ncols = 0;
	if (mode == 0 || mode == 1) {
		for (size_t i = 0; i < nitems; i++)
			sql_buf_printf(q, "%s%s", ncols++ ? ", " : "", pick(pl->items));
		if (mode == 0)
			sql_buf_printf(q, ", %s", pl->key), ncols++;
	} else {
		if (mode == 2)
			sql_buf_printf(q, "%s", pick(pl->groups)), ncols++;
		const char *g = mode == 2 ? q->data + strlen(mode == 1 ? "SELECT DISTINCT " : "SELECT ") : NULL;
		char group[128] = "";
		if (g != NULL)
			snprintf(group, sizeof group, "%s", g);
		for (size_t i = 0; i < nitems; i++)
			sql_buf_printf(q, "%s%s", ncols++ ? ", " : "", pick(pl->aggs));
		sql_buf_printf(q, " FROM %s%s%s", pl->table, where, mode == 2 ? " GROUP BY " : "");
		if (mode == 2) {
			sql_buf_puts(q, group);
			if (next_rand() % 3 == 0)
				sql_buf_printf(q, " HAVING count(*) > %d", (int)(next_rand() % 400));
		}
		if (mode == 2 && ordered) {
			sql_buf_printf(q, " ORDER BY 1%s NULLS %s", next_rand() % 2 ? " DESC" : "",
				       next_rand() % 2 ? "FIRST" : "LAST");
			if (next_rand() % 2)
				sql_buf_printf(q, " LIMIT %d", (int)(next_rand() % 5));
			if (next_rand() % 3 == 0)
				sql_buf_printf(q, " OFFSET %d", (int)(next_rand() % 3));
		}
		return;
	}
	sql_buf_printf(q, " FROM %s%s", pl->table, where);
	if (ordered) {
		/* every output column, in a random order: a total order */
		size_t perm[8];
		for (size_t i = 0; i < ncols; i++)
			perm[i] = i + 1;
		for (size_t i = ncols; i > 1; i--) {
			size_t j = next_rand() % i, t = perm[i - 1];
			perm[i - 1] = perm[j];
			perm[j] = t;
		}
		sql_buf_puts(q, " ORDER BY ");
		for (size_t i = 0; i < ncols; i++)
			sql_buf_printf(q, "%s%zu%s%s", i ? ", " : "", perm[i],
				       next_rand() % 2 ? " DESC" : "",
				       next_rand() % 3 == 0 ? " NULLS FIRST" : "");
		if (next_rand() % 2)
			sql_buf_printf(q, " LIMIT %d", (int)(next_rand() % 30));
		if (next_rand() % 2)
			sql_buf_printf(q, " OFFSET %d", (int)(next_rand() % 50));
	}
}

static void test_random(void)
{
	static const char *const acc_items[] = {
		"id", "owner", "balance", "flag", "score", "balance % 10 AS m", "owner || '-' || balance",
		"id * 2", "CASE WHEN balance > 500 THEN 'hi' ELSE 'lo' END AS c", "upper(owner)",
		"balance - id", "flag IS NULL", "coalesce(owner, 'none')", NULL};
	static const char *const acc_aggs[] = {
		"count(*)", "count(owner)", "sum(balance)", "min(balance)", "max(owner)",
		"count(DISTINCT balance % 7)", "max(balance) - min(balance)", "bool_or(flag)",
		"min(score)", "count(DISTINCT owner)", "sum(DISTINCT balance % 13)", "avg(balance % 4)", NULL};
	static const char *const acc_groups[] = {"owner", "flag", "balance % 5", "upper(owner)", NULL};
	static const char *const acc_wheres[] = {
		"", "", " WHERE id < 500", " WHERE balance BETWEEN 100 AND 300", " WHERE owner = 'bob'",
		" WHERE flag", " WHERE id IN (3, 77, 1000, 4242, 9001)", " WHERE id = 99",
		" WHERE owner IS NULL OR balance > 900", " WHERE id >= 1000 AND id < 1200",
		" WHERE NOT flag AND score > 0", " WHERE balance < 0", NULL};
	static const char *const ev_items[] = {"id", "kind", "amount", "amount * 3", "kind || amount",
					       "amount > 0", NULL};
	static const char *const ev_aggs[] = {"count(*)", "sum(amount)", "min(id)", "max(kind)",
					      "count(DISTINCT amount % 9)", "avg(amount % 2)", NULL};
	static const char *const ev_groups[] = {"kind", "amount % 3", "amount > 0", NULL};
	static const char *const ev_wheres[] = {
		"", " WHERE id < 2500", " WHERE id BETWEEN 2400 AND 2600", " WHERE id >= 7400",
		" WHERE id > 5000 AND kind = 'buy'", " WHERE id IN (1, 2501, 9999)", " WHERE amount > 140",
		NULL};
	const pool pools[] = {
		{"accounts", acc_items, acc_aggs, acc_groups, acc_wheres, "id"},
		{"events", ev_items, ev_aggs, ev_groups, ev_wheres, "id"},
	};
	int failures = 0, n = 0;
	for (int i = 0; i < 300; i++) {
		sql_buf q;
		sql_buf_init(&q);
		random_query(&pools[i % 2], &q);
		int before = tap_failed;
		both(q.data);
		failures += tap_failed > before;
		n++;
		sql_buf_free(&q);
	}
	diag("%d random queries, %d failed", n, failures);
}

static void expect_shards(const char *sql, const char *const *params, size_t np, size_t n,
			  const size_t *want)
{
	run_state rs;
	prepare(&rs, sql, params, np, NULL, 0);
	bool good = rs.batch.n == n;
	for (size_t i = 0; good && i < n; i++)
		good = rs.batch.reqs[i].shard == want[i];
	ok(good, "%s -> %zu request%s (%s)", sql, rs.batch.n, rs.batch.n == 1 ? "" : "s",
	   rs.batch.why ? rs.batch.why : rs.err.message);
	run_free(&rs);
}

static size_t owner_of(int64_t id)
{
	wire_value k = {.type = WIRE_INT, .i = id};
	sql_error err;
	return catalog_bucket_shard(cat, (uint32_t)catalog_bucket_of(catalog_table_get(cat, "accounts"),
								      &k, &err));
}

static void test_routing(void)
{
	size_t s42 = owner_of(42);
	expect_shards("SELECT * FROM accounts WHERE id = 42", NULL, 0, 1, &s42);
	expect_shards("SELECT * FROM accounts WHERE 42 = id AND balance > 3", NULL, 0, 1, &s42);
	const char *p42[] = {"42"};
	expect_shards("SELECT * FROM accounts WHERE id = $1", p42, 1, 1, &s42);
	expect_shards("UPDATE accounts SET balance = balance WHERE id = $1", p42, 1, 1, &s42);
	expect_shards("DELETE FROM accounts WHERE id = 42 AND id = 42", NULL, 0, 1, &s42);
	expect_shards("SELECT * FROM accounts WHERE id = $1::bigint", p42, 1, 1, &s42);

	run_state rs;
	prepare(&rs, "SELECT * FROM accounts WHERE id = 42", NULL, 0, NULL, 0);
	wire_value k = {.type = WIRE_INT, .i = 42};
	sql_error err;
	int b42 = catalog_bucket_of(catalog_table_get(cat, "accounts"), &k, &err);
	ok(rs.batch.n == 1 && rs.batch.reqs[0].nbuckets == 1 && rs.batch.reqs[0].buckets[0] == (uint32_t)b42 &&
		   rs.batch.reqs[0].readonly && !rs.batch.all_shards,
	   "point query carries its bucket %d, read-only", b42);
	sql_buf ex;
	sql_buf_init(&ex);
	plan_explain(rs.plan, &rs.batch, cat, &ex);
	char line[64];
	snprintf(line, sizeof line, "Shard %zu (127.0.0.1:%zu): SELECT", s42, 5434 + s42);
	ok(ex.data && strncmp(ex.data, line, strlen(line)) == 0 && strstr(ex.data, "bucket") &&
		   strchr(ex.data, '\n') == ex.data + ex.len - 1,
	   "EXPLAIN: one line naming shard, address, SQL, bucket: %s", ex.data ? ex.data : "");
	sql_buf_free(&ex);
	run_free(&rs);

	prepare(&rs, "SELECT * FROM accounts WHERE id IN (1, 2, 3)", NULL, 0, NULL, 0);
	bool good = rs.batch.n >= 1 && rs.batch.n <= 3;
	size_t buckets = 0;
	for (size_t i = 0; i < rs.batch.n; i++) {
		buckets += rs.batch.reqs[i].nbuckets;
		for (uint32_t j = 0; j < rs.batch.reqs[i].nbuckets; j++)
			good &= catalog_bucket_shard(cat, rs.batch.reqs[i].buckets[j]) == rs.batch.reqs[i].shard;
	}
	ok(good && buckets == 3, "IN (1, 2, 3): %zu requests, each with only its own buckets", rs.batch.n);
	run_free(&rs);

	prepare(&rs, "SELECT * FROM accounts WHERE balance = 3 OR id = 4", NULL, 0, NULL, 0);
	ok(rs.batch.n == NSHARDS && rs.batch.all_shards, "OR: scatter to all %d shards", NSHARDS);
	run_free(&rs);

	size_t r1[] = {1}, r01[] = {0, 1}, r123[] = {1, 2, 3}, r3[] = {3}, r0[] = {0};
	expect_shards("SELECT * FROM events WHERE id >= 2500 AND id < 5000", NULL, 0, 1, r1);
	expect_shards("SELECT * FROM events WHERE id BETWEEN 100 AND 3000", NULL, 0, 2, r01);
	expect_shards("SELECT * FROM events WHERE id > 2499 AND id <= 9000", NULL, 0, 3, r123);
	expect_shards("SELECT * FROM events WHERE id >= 7500", NULL, 0, 1, r3);
	expect_shards("SELECT * FROM events WHERE id < 2500", NULL, 0, 1, r0);
	expect_shards("SELECT * FROM events WHERE id IN (1, 6000, 7000)", NULL, 0, 2, (size_t[]){0, 2});
	expect_shards("SELECT * FROM events WHERE id = 5000", NULL, 0, 1, (size_t[]){2});
	expect_shards("SELECT count(*) FROM events WHERE id > 10 AND id < 5", NULL, 0, 1, r0);
	const char *range_params[] = {"2600", "4000"};
	expect_shards("SELECT * FROM events WHERE id BETWEEN $1 AND $2", range_params, 2, 1, r1);

	size_t all[] = {0, 1, 2, 3};
	expect_shards("SELECT * FROM currencies", NULL, 0, 1, r0);
	expect_shards("INSERT INTO currencies VALUES ('EUR', 'euro', 1.0)", NULL, 0, NSHARDS, all);
	expect_shards("SELECT 1", NULL, 0, 1, r0);

	/* INSERT with parameters: each shard's request passes exactly the
	 * parameters its SQL uses (the highest ?n). */
	const char *ins[] = {"1", "x", "2", "y", "3", "z"};
	prepare(&rs, "INSERT INTO users (name, age) VALUES ($2, 10), ($4, 20), ($6, 30)", ins, 6,
		NULL, 0);
	good = rs.batch.n >= 1;
	for (size_t i = 0; i < rs.batch.n; i++) {
		const char *sql = rs.batch.reqs[i].sql;
		int want = strstr(sql, "?6") ? 6 : strstr(sql, "?4") ? 4 : 2;
		good &= (int)rs.batch.reqs[i].nparams == want;
	}
	ok(good, "per-shard INSERT nparams = highest ?n of its own rows (%zu requests)", rs.batch.n);
	run_free(&rs);
}

/* A shard's hidden buckets (_slhidden, as a bucket move leaves them): scatter
 * statements leave their rows out, a key's owner still answers for it. */
static int copy_bucket(int from, int to, uint32_t bucket)
{
	sqlite3_stmt *r, *w;
	sqlite3_prepare_v2(shard_db[from], "SELECT * FROM accounts WHERE sl_bucket(id) = ?1", -1, &r, NULL);
	sqlite3_bind_int64(r, 1, bucket);
	sqlite3_prepare_v2(shard_db[to], "INSERT INTO accounts VALUES (?1, ?2, ?3, ?4, ?5)", -1, &w, NULL);
	int n = 0;
	for (; sqlite3_step(r) == SQLITE_ROW; n++) {
		for (int c = 0; c < 5; c++)
			sqlite3_bind_value(w, c + 1, sqlite3_column_value(r, c));
		if (sqlite3_step(w) != SQLITE_DONE)
			bail("copy: %s", sqlite3_errmsg(shard_db[to]));
		sqlite3_reset(w);
	}
	sqlite3_finalize(r);
	sqlite3_finalize(w);
	return n;
}

static void hide(int shard, uint32_t bucket, bool on)
{
	char sql[96];
	snprintf(sql, sizeof sql, on ? "INSERT INTO _slhidden VALUES (%u)" : "DELETE FROM _slhidden WHERE bucket = %u",
		 bucket);
	if (sqlite3_exec(shard_db[shard], sql, NULL, NULL, NULL) != SQLITE_OK)
		bail("hide: %s", sqlite3_errmsg(shard_db[shard]));
}

static void test_hidden(void)
{
	const int64_t id = 43;
	uint32_t b = sl_bucket_of_int(id);
	int src = (int)catalog_bucket_shard(cat, b), dst = (src + 1) % NSHARDS;
	/* a move's copy on the target, hidden there */
	int n = copy_bucket(src, dst, b);
	ok(n >= 1, "bucket %u: %d rows copied from shard %d to %d", b, n, src, dst);
	hide(dst, b, true);
	both("SELECT count(*), sum(balance) FROM accounts");
	both("SELECT * FROM accounts WHERE balance > 0 ORDER BY id LIMIT 50");
	both("SELECT owner, count(*) FROM accounts GROUP BY owner");
	both("SELECT * FROM accounts WHERE id = 43");
	both("SELECT * FROM accounts WHERE id IN (43, 44, 45, 46)");
	both("UPDATE accounts SET balance = balance + 3 WHERE balance >= 0");
	both("UPDATE accounts SET balance = balance + 1 WHERE id = 43");
	/* the final sync: the writes above went to the source only */
	char sql[96];
	snprintf(sql, sizeof sql, "DELETE FROM accounts WHERE sl_bucket(id) = %u", b);
	if (sqlite3_exec(shard_db[dst], sql, NULL, NULL, NULL) != SQLITE_OK || copy_bucket(src, dst, b) != n)
		bail("sync: %s", sqlite3_errmsg(shard_db[dst]));
	/* its switch: the target owns the bucket and shows it, the source hides
	 * its rows until it deletes them */
	sql_error err;
	int64_t mid = 0;
	if (catalog_move_put(cat, &mid, "copy", (size_t)src, (size_t)dst, &b, 1, NULL, 0, &err) != 0 ||
	    catalog_move_switch(cat, mid, (size_t)dst, &b, 1, NULL, 0, &err) != 0)
		bail("switch: %s", err.message);
	hide(src, b, true);
	hide(dst, b, false);
	run_state rs;
	ok(prepare(&rs, "SELECT * FROM accounts WHERE id = 43", NULL, 0, NULL, 0) == 0 && rs.batch.n == 1 &&
		   rs.batch.reqs[0].shard == (size_t)dst,
	   "after the switch, id 43 is routed to shard %d", dst);
	run_free(&rs);
	both("SELECT count(*), sum(balance) FROM accounts");
	both("UPDATE accounts SET balance = balance - 3 WHERE balance >= 0");
	both("DELETE FROM accounts WHERE id % 1000 = 43");
	both("SELECT * FROM accounts WHERE id = 43");
	/* the source's rows deleted, nothing hidden any more */
	if (sqlite3_exec(shard_db[src], sql, NULL, NULL, NULL) != SQLITE_OK)
		bail("delete: %s", sqlite3_errmsg(shard_db[src]));
	hide(src, b, false);
	both("SELECT count(*), sum(balance) FROM accounts");
	ok(catalog_move_put(cat, &mid, "done", (size_t)src, (size_t)dst, &b, 1, NULL, 0, &err) == 0, "move done");
}

static void test_writes(void)
{
	both("UPDATE accounts SET balance = balance + 1 WHERE id < 100");
	both("SELECT sum(balance), count(*) FROM accounts");
	both_as("UPDATE accounts SET owner = 'zed', flag = 'yes' WHERE id = 5",
		"UPDATE accounts SET owner = 'zed', flag = 1 WHERE id = 5");
	both("SELECT * FROM accounts WHERE id = 5");
	both("UPDATE accounts SET score = score * 2 WHERE owner = 'bob' AND score < 10");
	both("DELETE FROM accounts WHERE id % 7 = 0");
	both("DELETE FROM accounts WHERE id = 14");
	both("DELETE FROM accounts WHERE id IN (15, 16, 17)");
	both("SELECT count(*), sum(balance) FROM accounts");
	both("UPDATE events SET amount = amount * 2 WHERE id BETWEEN 2000 AND 3000");
	both("SELECT kind, sum(amount) FROM events WHERE id BETWEEN 1990 AND 3010 GROUP BY kind");

	/* multi-row INSERT over several shards, with parameters */
	const char *p[] = {"20001", "pia", "5", "t", "1.25", "20002", "quinn", "6", "off", NULL};
	both_p("INSERT INTO accounts (id, owner, balance, flag, score) VALUES ($1, $2, $3, $4, $5), "
	       "($6, $7, $8, $9, $10), (20003, 'rob', 7, NULL, 0.1)",
	       p, 10);
	both("SELECT * FROM accounts WHERE id > 20000 ORDER BY id");

	/* reference table: every row to every shard, counted once */
	both("INSERT INTO currencies VALUES ('USD', 'dollar', 1.08), ('GBP', 'pound', 0.85), ('JPY', 'yen', 160)");
	both("UPDATE currencies SET rate = rate * 2 WHERE code <> 'EUR'");
	both("SELECT * FROM currencies ORDER BY code");
	bool same = true;
	for (int s = 1; s < NSHARDS; s++) {
		sqlite3_stmt *st;
		sqlite3_prepare_v2(shard_db[s], "SELECT group_concat(code || rate) FROM (SELECT * FROM currencies ORDER BY code)", -1, &st, NULL);
		sqlite3_step(st);
		const char *x = (const char *)sqlite3_column_text(st, 0);
		sqlite3_stmt *st0;
		sqlite3_prepare_v2(shard_db[0], "SELECT group_concat(code || rate) FROM (SELECT * FROM currencies ORDER BY code)", -1, &st0, NULL);
		sqlite3_step(st0);
		const char *y = (const char *)sqlite3_column_text(st0, 0);
		same &= x && y && strcmp(x, y) == 0;
		sqlite3_finalize(st);
		sqlite3_finalize(st0);
	}
	ok(same, "reference table identical on every shard");
	both("DELETE FROM currencies WHERE code = 'GBP'");

	/* text partition key */
	both("INSERT INTO users VALUES ('ann', 31, NULL), ('ben', 42, NULL), ('cat', 27, NULL), ('dan', 55, NULL), ('eve', 19, NULL)");
	both("SELECT * FROM users WHERE name = 'cat'");
	both("SELECT name, age FROM users WHERE name IN ('ann', 'eve', 'zoe') ORDER BY age");
	both("SELECT avg(age), max(name) FROM users");
	const char *bin[] = {"bin", "\\xdeadBEEF"};
	both_p("INSERT INTO users (name, data) VALUES ($1, $2)", bin, 2);
	both("SELECT name, data FROM users WHERE name = 'bin'");
}

static void test_errors(void)
{
	fails("SELECT * FROM nosuch", NULL, 0, "42P01", 15);
	fails("SELECT nosuch FROM accounts", NULL, 0, "42703", 8);
	fails("SELECT id FROM accounts WHERE nosuch = 1", NULL, 0, "42703", 31);
	fails("SELECT x.id FROM accounts", NULL, 0, "42P01", 8);
	fails("SELECT a.id FROM accounts AS a ORDER BY accounts.id", NULL, 0, "42P01", -1);
	fails("INSERT INTO nosuch VALUES (1)", NULL, 0, "42P01", 13);
	fails("INSERT INTO accounts (id, nosuch) VALUES (1, 2)", NULL, 0, "42703", -1);
	fails("UPDATE accounts SET nosuch = 1", NULL, 0, "42703", 21);
	fails("UPDATE accounts SET id = 5 WHERE id = 4", NULL, 0, "0A000", 21);
	fails("UPDATE accounts SET balance = 1, id = id + 1", NULL, 0, "0A000", -1);
	fails("INSERT INTO accounts (owner, balance) VALUES ('x', 1)", NULL, 0, "23502", -1);
	fails("INSERT INTO accounts (id, balance) VALUES (NULL, 1)", NULL, 0, "23502", -1);
	const char *null_id[] = {NULL};
	fails("INSERT INTO accounts (id, balance) VALUES ($1, 1)", null_id, 1, "23502", -1);
	fails("INSERT INTO accounts (id, balance) VALUES (1 + 1, 1)", NULL, 0, "0A000", -1);
	fails("INSERT INTO accounts (id, balance) VALUES ('abc', 1)", NULL, 0, "22P02", -1);
	fails("SELECT * FROM accounts WHERE flag = 'maybe'", NULL, 0, "22P02", -1);
	fails("SELECT owner, balance FROM accounts GROUP BY owner", NULL, 0, "42803", 15);
	fails("SELECT id FROM accounts WHERE count(*) > 1", NULL, 0, "42803", -1);
	fails("SELECT sum(count(*)) FROM accounts", NULL, 0, "42803", -1);
	fails("SELECT id FROM accounts ORDER BY 3", NULL, 0, "42P10", -1);
	fails("SELECT DISTINCT owner FROM accounts ORDER BY balance", NULL, 0, "42P10", -1);
	fails("SELECT * FROM accounts LIMIT -1", NULL, 0, "2201W", -1);
	fails("SELECT *", NULL, 0, "42601", -1);
	fails("SELECT string_agg(DISTINCT owner, ',') FROM accounts", NULL, 0, "0A000", -1);

	const char *bad[] = {"abc"};
	fails("SELECT * FROM accounts WHERE id = $1", bad, 1, "22P02", -1);
	run_state rs;
	prepare(&rs, "SELECT * FROM accounts WHERE id = $1", bad, 1, NULL, 0);
	ok(strcmp(rs.err.message, "invalid input syntax for type bigint: \"abc\"") == 0,
	   "message: %s", rs.err.message);
	run_free(&rs);
	const char *big[] = {"3000000000"};
	fails("SELECT * FROM events WHERE amount = $1", big, 1, "22003", -1);
	const char *maybe[] = {"maybe"};
	fails("SELECT * FROM accounts WHERE flag = $1", maybe, 1, "22P02", -1);
	const char *badf[] = {"1.5x"};
	fails("SELECT * FROM accounts WHERE score = $1", badf, 1, "22P02", -1);
	const char *badb[] = {"\\xZZ"};
	fails("SELECT * FROM users WHERE data = $1", badb, 1, "22P02", -1);
	fails("SELECT * FROM accounts WHERE id = $2", bad, 1, "08P01", -1);
}

static void check_types(const char *sql, const uint32_t *declared, size_t ndeclared,
			const uint32_t *params, size_t np, const uint32_t *cols, size_t nc)
{
	sql_stmt_list *l;
	sql_error err;
	router_plan *p = NULL;
	bool good = sql_parse(sql, strlen(sql), &l, &err) == 0 &&
		    plan_build(cat, l->items[0], declared, ndeclared, &p, &err) == 0 &&
		    plan_nparams(p) == np && plan_ncols(p) == nc;
	char got[256] = "";
	size_t off = 0;
	for (size_t i = 0; good && i < np; i++) {
		good &= plan_param_type(p, i) == params[i];
		off += (size_t)snprintf(got + off, sizeof got - off, "$%zu:%u ", i + 1, plan_param_type(p, i));
	}
	for (size_t i = 0; good && i < nc; i++) {
		good &= plan_col_type(p, i) == cols[i];
		off += (size_t)snprintf(got + off, sizeof got - off, "%s:%u ", plan_col_name(p, i),
					plan_col_type(p, i));
	}
	ok(good, "types of %s: %s%s", sql, got, p ? "" : err.message);
	plan_free(p);
	sql_stmt_list_free(l);
}

static void test_types(void)
{
	check_types("SELECT * FROM accounts WHERE id = $1", NULL, 0, (uint32_t[]){20}, 1,
		    (uint32_t[]){20, 25, 20, 16, 701}, 5);
	check_types("SELECT $1", NULL, 0, (uint32_t[]){25}, 1, (uint32_t[]){25}, 1);
	check_types("SELECT id FROM accounts LIMIT $1 OFFSET $2", NULL, 0, (uint32_t[]){20, 20}, 2,
		    (uint32_t[]){20}, 1);
	check_types("INSERT INTO accounts (id, owner, balance, flag, score) VALUES ($1, $2, $3, $4, $5)",
		    NULL, 0, (uint32_t[]){20, 25, 20, 16, 701}, 5, NULL, 0);
	check_types("UPDATE accounts SET flag = $1 WHERE owner = $2", NULL, 0, (uint32_t[]){16, 25}, 2,
		    NULL, 0);
	check_types("SELECT id FROM accounts WHERE score > $1 AND owner LIKE $2 AND amount_is($3)",
		    NULL, 0, (uint32_t[]){701, 25, 25}, 3, (uint32_t[]){20}, 1);
	check_types("SELECT id FROM accounts WHERE id = $1", (uint32_t[]){23}, 1, (uint32_t[]){23}, 1,
		    (uint32_t[]){20}, 1);
	check_types("SELECT * FROM events WHERE id BETWEEN $1 AND $2 AND amount IN ($3, 4)", NULL, 0,
		    (uint32_t[]){20, 20, 23}, 3, (uint32_t[]){20, 25, 23}, 3);
	check_types("SELECT count(*), sum(balance), avg(balance), min(owner), max(score), sum(score), avg(score) FROM accounts",
		    NULL, 0, NULL, 0, (uint32_t[]){20, 20, 1700, 25, 701, 701, 701}, 7);
	check_types("SELECT id, balance > 5, owner || 'x', 1, 3000000000, 1.5, 'a', CURRENT_TIMESTAMP, "
		    "id + 1, flag, score + 1, CAST(id AS TEXT), NULL, balance * 2.5 FROM accounts",
		    NULL, 0, NULL, 0,
		    (uint32_t[]){20, 16, 25, 23, 20, 1700, 25, 1114, 20, 16, 701, 25, 25, 1700}, 14);
	check_types("SELECT amount + 1, amount * amount, -amount, abs(amount), coalesce(amount, $1) FROM events",
		    NULL, 0, (uint32_t[]){23}, 1, (uint32_t[]){20, 20, 23, 23, 23}, 5);
	check_types("SELECT CASE WHEN $1 THEN $2 ELSE kind END FROM events", NULL, 0,
		    (uint32_t[]){16, 25}, 2, (uint32_t[]){25}, 1);
	check_types("SELECT $1::int + $2", NULL, 0, (uint32_t[]){23, 23}, 2, (uint32_t[]){20}, 1);
	run_state rs;
	prepare(&rs, "SELECT * FROM accounts WHERE id = $1", NULL, 0, (uint32_t[]){20, 25}, 2);
	ok(plan_nparams(rs.plan) == 2, "declared parameter count wins over the highest $n");
	run_free(&rs);
}

static void test_format(void)
{
	static const struct {
		uint32_t oid;
		wire_value v;
		const char *want;
	} cases[] = {
		{701, {.type = WIRE_REAL, .r = 0.1}, "0.1"},
		{701, {.type = WIRE_REAL, .r = 1.0 / 3}, "0.3333333333333333"},
		{701, {.type = WIRE_REAL, .r = 2.0 / 3}, "0.6666666666666666"},
		{701, {.type = WIRE_REAL, .r = 123456.789}, "123456.789"},
		{701, {.type = WIRE_REAL, .r = 1e15}, "1e+15"},
		{701, {.type = WIRE_REAL, .r = 123456789012345.0}, "123456789012345"},
		{701, {.type = WIRE_REAL, .r = 1.5e-5}, "1.5e-05"},
		{701, {.type = WIRE_REAL, .r = 0.0001}, "0.0001"},
		{701, {.type = WIRE_REAL, .r = -2.5}, "-2.5"},
		{701, {.type = WIRE_REAL, .r = 100}, "100"},
		{701, {.type = WIRE_REAL, .r = 5e-324}, "5e-324"},
		{701, {.type = WIRE_REAL, .r = 1.7976931348623157e308}, "1.7976931348623157e+308"},
		{701, {.type = WIRE_REAL, .r = -0.0}, "-0"},
		{701, {.type = WIRE_REAL, .r = INFINITY}, "Infinity"},
		{701, {.type = WIRE_REAL, .r = -INFINITY}, "-Infinity"},
		{701, {.type = WIRE_REAL, .r = NAN}, "NaN"},
		{700, {.type = WIRE_REAL, .r = (double)0.1f}, "0.1"},
		{700, {.type = WIRE_REAL, .r = 1e6}, "1e+06"},
		{701, {.type = WIRE_INT, .i = 3}, "3"},
		{16, {.type = WIRE_INT, .i = 1}, "t"},
		{16, {.type = WIRE_INT, .i = 0}, "f"},
		{17, {.type = WIRE_BLOB, .p = "\xde\xad\x00\x01", .len = 4}, "\\xdead0001"},
		{17, {.type = WIRE_BLOB, .p = "", .len = 0}, "\\x"},
		{1700, {.type = WIRE_TEXT, .p = "1.50", .len = 4}, "1.50"},
		{1700, {.type = WIRE_REAL, .r = 1e20}, "100000000000000000000"},
		{1700, {.type = WIRE_REAL, .r = 2.5}, "2.5"},
		{1700, {.type = WIRE_INT, .i = -7}, "-7"},
		{20, {.type = WIRE_INT, .i = INT64_MIN}, "-9223372036854775808"},
		{20, {.type = WIRE_REAL, .r = 12.0}, "12"},
		{1114, {.type = WIRE_TEXT, .p = "2024-01-02 03:04:05", .len = 19}, "2024-01-02 03:04:05"},
		{25, {.type = WIRE_TEXT, .p = "h\xc3\xa9", .len = 3}, "h\xc3\xa9"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sql_buf b;
		sql_buf_init(&b);
		plan_format_text(cases[i].oid, &cases[i].v, &b);
		ok(b.data && strcmp(b.data, cases[i].want) == 0, "format oid %u -> %s (got %s)",
		   cases[i].oid, cases[i].want, b.data ? b.data : "");
		sql_buf_free(&b);
	}
	/* Every float8 text round-trips, and is never longer than %.17g. */
	bool round = true;
	for (int i = 0; i < 20000 && round; i++) {
		double d;
		uint64_t bits = next_rand();
		memcpy(&d, &bits, sizeof d);
		if (!isfinite(d))
			continue;
		wire_value v = {.type = WIRE_REAL, .r = d};
		sql_buf b;
		sql_buf_init(&b);
		plan_format_text(701, &v, &b);
		round = strtod(b.data, NULL) == d;
		if (!round)
			diag("%.17g printed as %s", d, b.data);
		sql_buf_free(&b);
	}
	ok(round, "20000 random doubles round-trip through their text");

	/* Binding text parameters. */
	run_state rs;
	prepare(&rs, "SELECT * FROM users WHERE data = $1 AND age = $2 AND name = $3", NULL, 0, NULL, 0);
	sql_arena *a = sql_arena_new();
	wire_value v;
	sql_error err;
	ok(plan_bind_text(rs.plan, 0, "\\x00FF10", 8, a, &v, &err) == 0 && v.type == WIRE_BLOB &&
		   v.len == 3 && memcmp(v.p, "\x00\xff\x10", 3) == 0,
	   "bytea hex input");
	ok(plan_bind_text(rs.plan, 0, "a\\\\b\\001", 8, a, &v, &err) == 0 && v.type == WIRE_BLOB &&
		   v.len == 4 && memcmp(v.p, "a\\b\x01", 4) == 0,
	   "bytea escape input");
	ok(plan_bind_text(rs.plan, 1, " -12 ", 5, a, &v, &err) == 0 && v.type == WIRE_INT && v.i == -12,
	   "int4 with blanks");
	ok(plan_bind_text(rs.plan, 1, "2147483648", 10, a, &v, &err) == -1 &&
		   strcmp(err.sqlstate, "22003") == 0,
	   "int4 out of range: 22003");
	ok(plan_bind_text(rs.plan, 1, NULL, 0, a, &v, &err) == 0 && v.type == WIRE_NULL, "NULL");
	ok(plan_bind_text(rs.plan, 2, "it's", 4, a, &v, &err) == 0 && v.type == WIRE_TEXT &&
		   strcmp(v.p, "it's") == 0,
	   "text as is");
	run_free(&rs);
	prepare(&rs, "SELECT * FROM accounts WHERE flag = $1 AND score = $2 AND id = $3", NULL, 0, NULL, 0);
	static const char *const yes[] = {"t", "TRUE", "yes", "on", "1", " y "};
	static const char *const no[] = {"f", "false", "NO", "off", "0"};
	bool bools = true;
	for (size_t i = 0; i < 6; i++)
		bools &= plan_bind_text(rs.plan, 0, yes[i], strlen(yes[i]), a, &v, &err) == 0 && v.i == 1;
	for (size_t i = 0; i < 5; i++)
		bools &= plan_bind_text(rs.plan, 0, no[i], strlen(no[i]), a, &v, &err) == 0 && v.i == 0;
	ok(bools, "boolean spellings");
	ok(plan_bind_text(rs.plan, 1, "-Infinity", 9, a, &v, &err) == 0 && isinf(v.r) && v.r < 0,
	   "float -Infinity");
	ok(plan_bind_text(rs.plan, 1, "1e400", 5, a, &v, &err) == -1 && strcmp(err.sqlstate, "22003") == 0,
	   "float overflow: 22003");
	ok(plan_bind_text(rs.plan, 1, "0x10", 4, a, &v, &err) == -1 && strcmp(err.sqlstate, "22P02") == 0,
	   "hex float refused: 22P02");
	ok(plan_bind_text(rs.plan, 2, "9223372036854775807", 19, a, &v, &err) == 0 && v.i == INT64_MAX,
	   "int8 max");
	ok(plan_bind_text(rs.plan, 2, "9223372036854775808", 19, a, &v, &err) == -1 &&
		   strcmp(err.sqlstate, "22003") == 0,
	   "int8 overflow: 22003");
	run_free(&rs);
	sql_arena_free(a);
}

int main(void)
{
	char e[128];
	cat = catalog_open(":memory:", e, sizeof e);
	if (cat == NULL)
		bail("catalog: %s", e);
	for (int i = 0; i < NSHARDS; i++) {
		char addr[32];
		sql_error err;
		snprintf(addr, sizeof addr, "127.0.0.1:%d", 5434 + i);
		if (catalog_add_shard(cat, addr, &err) != i)
			bail("add shard: %s", err.message);
		if (sqlite3_open(":memory:", &shard_db[i]) != SQLITE_OK ||
		    sqlite3_create_function(shard_db[i], "sl_bucket", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
					    fn_sl_bucket, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(shard_db[i], "CREATE TABLE _slhidden(bucket INTEGER PRIMARY KEY)", NULL, NULL,
				 NULL) != SQLITE_OK)
			bail("sqlite");
	}
	if (sqlite3_open(":memory:", &plain) != SQLITE_OK)
		bail("sqlite");

	test_ddl();
	load_accounts();
	load_events();
	test_reads();
	test_aggregates();
	test_random();
	test_routing();
	test_writes();
	test_hidden();
	test_errors();
	test_types();
	test_format();

	for (int i = 0; i < NSHARDS; i++)
		sqlite3_close(shard_db[i]);
	sqlite3_close(plain);
	catalog_close(cat);
	return plan_done();
}
