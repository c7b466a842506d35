/*
 * test_sql.c — the SQL front end: tokenizer, grammar, tree, SQLite
 * rendering (router/sql.h).
 *
 * Every rendering check compares the exact SQLite text and then prepares
 * it in an in-memory SQLite database holding the fixture tables (created
 * from our own rendered CREATE TABLEs), so "SQLite accepts it" is tested
 * too.  Some checks run the rendered SQL to prove a PostgreSQL behaviour
 * survives (LIKE escapes, NULL ordering, varchar length, ...).  Errors are
 * checked for SQLSTATE, message and PostgreSQL's character position.  A
 * deterministic random section throws garbage and mutated statements at
 * the parser (the sanitizer build turns any memory error into a failure).
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/sql.h"
#include "router/sql_grammar.h"
#include "tests/tap.h"

static sqlite3 *db;

static sql_stmt_list *parse(const char *sql)
{
	sql_stmt_list *l = NULL;
	sql_error err;
	if (sql_parse(sql, strlen(sql), &l, &err) < 0) {
		diag("unexpected error for <%s>: %s %d %s", sql, err.sqlstate,
		     err.position, err.message);
		return NULL;
	}
	return l;
}

/* Render statement i of a list into a fresh malloc'd string. */
static char *render_stmt(const sql_stmt *s)
{
	sql_buf b;
	sql_buf_init(&b);
	if (sql_render_stmt(&b, s) < 0) {
		sql_buf_free(&b);
		return NULL;
	}
	return b.data;
}

static bool sqlite_accepts(const char *sql, char *why, size_t whylen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		snprintf(why, whylen, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_OK;
}

/* Parse one statement, render it, compare with expected, prepare it. */
static void check_render(const char *sql, const char *expected)
{
	sql_stmt_list *l = parse(sql);
	if (!ok(l != NULL && l->n == 1, "parses: %s", sql)) {
		sql_stmt_list_free(l);
		return;
	}
	char *got = render_stmt(l->items[0]);
	if (!ok(got != NULL && strcmp(got, expected) == 0, "renders: %s", sql)) {
		diag("got      <%s>", got ? got : "(null)");
		diag("expected <%s>", expected);
	}
	char why[256] = "";
	if (got != NULL && !ok(sqlite_accepts(got, why, sizeof why), "sqlite prepares: %s", got))
		diag("%s", why);
	free(got);
	sql_stmt_list_free(l);
}

/* Execute rendered SQL that must succeed (fixtures, data). */
static void exec_pg(const char *sql)
{
	sql_stmt_list *l = parse(sql);
	for (size_t i = 0; l != NULL && i < l->n; i++) {
		char *r = render_stmt(l->items[i]);
		char *msg = NULL;
		if (sqlite3_exec(db, r, NULL, NULL, &msg) != SQLITE_OK)
			bail("fixture <%s> failed: %s", r, msg);
		free(r);
	}
	if (l == NULL)
		bail("fixture does not parse: %s", sql);
	sql_stmt_list_free(l);
}

/* Run a rendered single-row, single-column query; return its text. */
static char *eval_pg(const char *sql, char *out, size_t outlen)
{
	sql_stmt_list *l = parse(sql);
	out[0] = 0;
	if (l == NULL || l->n != 1) {
		sql_stmt_list_free(l);
		return NULL;
	}
	char *r = render_stmt(l->items[0]);
	sqlite3_stmt *st = NULL;
	char *res = NULL;
	if (sqlite3_prepare_v2(db, r, -1, &st, NULL) == SQLITE_OK) {
		size_t n = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(st, 0);
			n += (size_t)snprintf(out + n, outlen - n, "%s%s", n ? "," : "",
					      t ? (const char *)t : "NULL");
			if (n >= outlen)
				break;
		}
		res = out;
	} else {
		snprintf(out, outlen, "ERROR %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	free(r);
	sql_stmt_list_free(l);
	return res;
}

static void check_eval(const char *sql, const char *expected)
{
	char out[512];
	eval_pg(sql, out, sizeof out);
	if (!ok(strcmp(out, expected) == 0, "evaluates to %s: %s", expected, sql))
		diag("got <%s>", out);
}

/* The rendered statement fails in SQLite with a message containing what. */
static void check_exec_fails(const char *sql, const char *what)
{
	sql_stmt_list *l = parse(sql);
	char *r = l != NULL && l->n == 1 ? render_stmt(l->items[0]) : NULL;
	char *msg = NULL;
	int rc = r != NULL ? sqlite3_exec(db, r, NULL, NULL, &msg) : SQLITE_OK;
	ok(rc != SQLITE_OK && msg != NULL && strstr(msg, what) != NULL,
	   "fails with '%s': %s", what, sql);
	if (msg != NULL)
		diag("sqlite: %s", msg);
	sqlite3_free(msg);
	free(r);
	sql_stmt_list_free(l);
}

static void check_error(const char *sql, const char *sqlstate, int position,
			const char *message)
{
	sql_stmt_list *l = NULL;
	sql_error err;
	int rc = sql_parse(sql, strlen(sql), &l, &err);
	if (!ok(rc < 0 && l == NULL && strcmp(err.sqlstate, sqlstate) == 0 &&
		err.position == position && strstr(err.message, message) != NULL,
		"%s at %d '%s': %.60s", sqlstate, position, message, sql))
		diag("got rc=%d %s at %d: %s", rc, err.sqlstate, err.position, err.message);
	sql_stmt_list_free(l);
}

/* ---- rendering of each statement kind --------------------------------------- */

static void test_fixtures(void)
{
	exec_pg("CREATE TABLE t (a INT PRIMARY KEY, b TEXT, c DOUBLE PRECISION, d BOOLEAN, "
		"e NUMERIC(10,2), f TIMESTAMP, g BYTEA, h VARCHAR(5), i BIGINT, j SMALLINT, "
		"k CHAR(2), l REAL)");
	exec_pg("CREATE TABLE u (id BIGINT PRIMARY KEY, name TEXT NOT NULL, key TEXT, level INT)");
	exec_pg("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL "
		"CHECK (balance >= 0)) PARTITION BY HASH (id)");
	ok(1, "fixture tables created from rendered DDL");
}

static void test_create_table(void)
{
	check_render("CREATE TABLE accounts2 (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL "
		     "CHECK (balance >= 0)) PARTITION BY HASH (id)",
		     "CREATE TABLE \"accounts2\" (\"id\" INTEGER NOT NULL, \"balance\" INTEGER "
		     "NOT NULL CONSTRAINT \"accounts2_balance_check\" CHECK (\"balance\" >= 0), "
		     "PRIMARY KEY (\"id\"))");
	check_render("create table if not exists R (K text, v varchar(10) not null default 'x', "
		     "primary key (k)) partition by range (k) split at ('g', 'p')",
		     "CREATE TABLE IF NOT EXISTS \"r\" (\"k\" TEXT NOT NULL, \"v\" TEXT NOT NULL "
		     "DEFAULT ('x') CONSTRAINT \"$varchar(10)\" CHECK (length(\"v\") <= 10), "
		     "PRIMARY KEY (\"k\"))");
	check_render("CREATE TABLE types (a INT8, b INTEGER, c INT4, d SMALLINT, e INT2, f TEXT, "
		     "g CHARACTER VARYING(3), h CHARACTER(4), i CHAR, j DOUBLE PRECISION, "
		     "k FLOAT8, l REAL, m FLOAT4, n FLOAT, o FLOAT(10), p NUMERIC, q DECIMAL(5,1), "
		     "r BOOL, s BYTEA, t TIMESTAMP WITHOUT TIME ZONE, u TIMESTAMP(3), "
		     "v VARCHAR, w INT)",
		     "CREATE TABLE \"types\" (\"a\" INTEGER, \"b\" INTEGER CONSTRAINT \"$int4\" CHECK "
		     "(\"b\" BETWEEN -2147483648 AND 2147483647), \"c\" INTEGER CONSTRAINT \"$int4\" "
		     "CHECK (\"c\" BETWEEN -2147483648 AND 2147483647), \"d\" INTEGER CONSTRAINT "
		     "\"$int2\" CHECK (\"d\" BETWEEN -32768 AND 32767), \"e\" INTEGER CONSTRAINT "
		     "\"$int2\" CHECK (\"e\" BETWEEN -32768 AND 32767), \"f\" TEXT, \"g\" TEXT "
		     "CONSTRAINT \"$varchar(3)\" CHECK (length(\"g\") <= 3), \"h\" TEXT CONSTRAINT "
		     "\"$char(4)\" CHECK (length(\"h\") <= 4), \"i\" TEXT CONSTRAINT \"$char(1)\" "
		     "CHECK (length(\"i\") <= 1), \"j\" REAL, \"k\" REAL, \"l\" REAL, \"m\" REAL, "
		     "\"n\" REAL, \"o\" REAL, \"p\" NUMERIC, \"q\" NUMERIC, \"r\" INTEGER CONSTRAINT "
		     "\"$bool\" CHECK (\"r\" IN (0, 1)), \"s\" BLOB, \"t\" TEXT, \"u\" TEXT, \"v\" TEXT, "
		     "\"w\" INTEGER CONSTRAINT \"$int4\" CHECK (\"w\" BETWEEN -2147483648 AND "
		     "2147483647))");
	check_render("CREATE TABLE c1 (a BIGINT CONSTRAINT pos CHECK (a > 0) UNIQUE NULL, "
		     "b BIGINT, c TIMESTAMP DEFAULT now(), d BIGINT DEFAULT -1 NOT NULL, "
		     "UNIQUE (b, d), CHECK (a < b), CONSTRAINT named CHECK (b <> d), CHECK (b > 1))",
		     "CREATE TABLE \"c1\" (\"a\" INTEGER UNIQUE CONSTRAINT \"pos\" CHECK (\"a\" > 0), "
		     "\"b\" INTEGER, \"c\" TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')), "
		     "\"d\" INTEGER NOT NULL DEFAULT (-1), UNIQUE (\"b\", \"d\"), "
		     "CONSTRAINT \"c1_check\" CHECK (\"a\" < \"b\"), CONSTRAINT \"named\" CHECK "
		     "(\"b\" <> \"d\"), CONSTRAINT \"c1_b_check\" CHECK (\"b\" > 1))");
	/* Default CHECK names avoid each other as PostgreSQL's do. */
	check_render("CREATE TABLE c2 (a INT8 CHECK (a > 0) CHECK (a < 9), b INT8, CHECK (a > 1))",
		     "CREATE TABLE \"c2\" (\"a\" INTEGER CONSTRAINT \"c2_a_check\" CHECK (\"a\" > 0) "
		     "CONSTRAINT \"c2_a_check1\" CHECK (\"a\" < 9), \"b\" INTEGER, "
		     "CONSTRAINT \"c2_a_check2\" CHECK (\"a\" > 1))");
	check_render("CREATE TABLE \"Mixed Case\" (\"Id\" BIGINT PRIMARY KEY, \"we\"\"ird\" TEXT)",
		     "CREATE TABLE \"Mixed Case\" (\"Id\" INTEGER NOT NULL, \"we\"\"ird\" TEXT, "
		     "PRIMARY KEY (\"Id\"))");
	check_render("CREATE TABLE kw (key TEXT, value TEXT, level BIGINT, time TEXT, zone TEXT, "
		     "first BIGINT, last BIGINT, set BIGINT, hash BIGINT, range BIGINT, saga TEXT, "
		     "PRIMARY KEY (key, level))",
		     "CREATE TABLE \"kw\" (\"key\" TEXT NOT NULL, \"value\" TEXT, \"level\" INTEGER "
		     "NOT NULL, \"time\" TEXT, \"zone\" TEXT, \"first\" INTEGER, \"last\" INTEGER, "
		     "\"set\" INTEGER, \"hash\" INTEGER, \"range\" INTEGER, \"saga\" TEXT, "
		     "PRIMARY KEY (\"key\", \"level\"))");

	/* Long names keep their suffix when cut to 63 bytes (this once looped). */
	sql_stmt_list *l = parse("CREATE TABLE aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
				 "(bbbbbbbbbb INT8 CHECK (bbbbbbbbbb > 0) CHECK (bbbbbbbbbb < 9)); "
				 "CREATE INDEX ON aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
				 "(bbbbbbbbbb)");
	const sql_column_def *cd = l ? &l->items[0]->create_table.columns.items[0] : NULL;
	ok(cd && cd->checks.n == 2 && strlen(cd->checks.items[0].name) == 63 &&
	   strlen(cd->checks.items[1].name) == 63 &&
	   strcmp(cd->checks.items[0].name + 57, "_check") == 0 &&
	   strcmp(cd->checks.items[1].name + 56, "_check1") == 0, "long default CHECK names keep suffixes");
	ok(l && strlen(l->items[1]->create_index.name) == 63 &&
	   strcmp(l->items[1]->create_index.name + 59, "_idx") == 0 &&
	   l->items[1]->create_index.name_generated, "long default index name keeps _idx");
	sql_stmt_list_free(l);

	l = parse("CREATE TABLE p (a BIGINT, b TEXT NOT NULL, c INT, "
				 "PRIMARY KEY (b, a)) PARTITION BY RANGE (a) SPLIT AT (-10, 0, 100)");
	const sql_create_table *ct = l ? &l->items[0]->create_table : NULL;
	ok(ct && ct->partition == SQL_PARTITION_RANGE && ct->partition_index == 0 &&
	   strcmp(ct->partition_column, "a") == 0, "range partition recorded");
	ok(ct && ct->split_points.n == 3 && ct->split_points.items[0]->lit.kind == SQL_LIT_INT &&
	   ct->split_points.items[0]->lit.i == -10 && ct->split_points.items[2]->lit.i == 100,
	   "split points are folded int literals");
	ok(ct && ct->primary_key.n == 2 && strcmp(ct->primary_key.items[0], "b") == 0 &&
	   ct->columns.items[0].primary_key && ct->columns.items[1].primary_key &&
	   !ct->columns.items[2].primary_key, "table-level primary key marks its columns");
	ok(ct && ct->columns.items[1].not_null && !ct->columns.items[0].not_null,
	   "NOT NULL recorded as written");
	ok(ct && ct->columns.items[2].type.kind == SQL_TYPE_INTEGER &&
	   ct->columns.items[1].type.kind == SQL_TYPE_TEXT, "column types recorded");
	sql_stmt_list_free(l);

	l = parse("CREATE TABLE q (a NUMERIC(12, 3), b VARCHAR(7), c TIMESTAMP(2), d CHAR, "
		  "e FLOAT(24), f FLOAT(25), g TEXT) ");
	ct = l ? &l->items[0]->create_table : NULL;
	ok(ct && ct->partition == SQL_PARTITION_NONE && ct->partition_index == -1 &&
	   ct->primary_key.n == 0, "reference table without a key");
	ok(ct && ct->columns.items[0].type.kind == SQL_TYPE_NUMERIC &&
	   ct->columns.items[0].type.precision == 12 && ct->columns.items[0].type.scale == 3,
	   "numeric precision and scale");
	ok(ct && ct->columns.items[1].type.length == 7 && ct->columns.items[3].type.length == 1 &&
	   ct->columns.items[6].type.length == -1, "char/varchar lengths");
	ok(ct && ct->columns.items[2].type.precision == 2, "timestamp precision");
	ok(ct && ct->columns.items[4].type.kind == SQL_TYPE_REAL &&
	   ct->columns.items[5].type.kind == SQL_TYPE_DOUBLE, "float(p) picks real or double");
	sql_stmt_list_free(l);
}

static void test_ddl_other(void)
{
	check_render("DROP TABLE u", "DROP TABLE \"u\"");
	check_render("drop table if exists u2", "DROP TABLE IF EXISTS \"u2\"");
	check_render("CREATE INDEX t_b ON t (b)", "CREATE INDEX \"t_b\" ON \"t\" (\"b\")");
	check_render("create unique index if not exists t_bc on t (b desc, c asc)",
		     "CREATE UNIQUE INDEX IF NOT EXISTS \"t_bc\" ON \"t\" (\"b\" DESC, \"c\")");
	check_render("CREATE INDEX ON t (b, c)", "CREATE INDEX \"t_b_c_idx\" ON \"t\" (\"b\", \"c\")");
}

static void test_insert(void)
{
	check_render("INSERT INTO t VALUES (1, 'x', 1.5, TRUE, 2.25, '2024-01-01 00:00:00', "
		     "'\\x00', 'abc', 9223372036854775807, 1, 'ab', -1.5e3)",
		     "INSERT INTO \"t\" VALUES (1, 'x', 1.5, 1, 2.25, '2024-01-01 00:00:00', '\\x00', "
		     "'abc', 9223372036854775807, 1, 'ab', -1.5e3)");
	check_render("insert into t (a, b) values (1, 'it''s'), ($1, $2), (-3, NULL)",
		     "INSERT INTO \"t\" (\"a\", \"b\") VALUES (1, 'it''s'), (?1, ?2), (-3, NULL)");
	check_render("INSERT INTO t (a, d) VALUES (2, false) COMPENSATE WITH DELETE FROM t WHERE a = 2",
		     "INSERT INTO \"t\" (\"a\", \"d\") VALUES (2, 0)");
	check_render("INSERT INTO u (id, name) VALUES (-9223372036854775808, E'tab\\there')",
		     "INSERT INTO \"u\" (\"id\", \"name\") VALUES (-9223372036854775808, 'tab\there')");

	sql_stmt_list *l = parse("INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
	const sql_insert *in = l ? &l->items[0]->insert : NULL;
	ok(in && in->rows.n == 3 && in->rows.items[2].n == 2 && in->columns.n == 2 &&
	   strcmp(in->columns.items[1], "b") == 0 && in->rows.items[1].items[0]->lit.i == 2,
	   "insert rows and columns recorded");
	/* The planner sends each shard its rows: render a copy with one row. */
	if (in != NULL) {
		sql_insert one = *in;
		sql_buf b;
		sql_buf_init(&b);
		one.rows.items = &in->rows.items[2];
		one.rows.n = 1;
		sql_render_insert(&b, &one);
		ok(strcmp(b.data, "INSERT INTO \"t\" (\"a\", \"b\") VALUES (3, 'c')") == 0,
		   "insert copy with a subset of rows renders");
		sql_buf_free(&b);
	}
	sql_stmt_list_free(l);
}

static void test_update_delete(void)
{
	check_render("UPDATE t SET b = 'y', c = c * 2 WHERE a = 1",
		     "UPDATE \"t\" SET \"b\" = 'y', \"c\" = \"c\" * 2 WHERE \"a\" = 1");
	check_render("update accounts set balance = balance - $1 where id = $2 and balance >= $1",
		     "UPDATE \"accounts\" SET \"balance\" = \"balance\" - ?1 WHERE (\"id\" = ?2) AND "
		     "(\"balance\" >= ?1)");
	check_render("UPDATE t SET d = NOT d", "UPDATE \"t\" SET \"d\" = NOT \"d\"");
	check_render("DELETE FROM t", "DELETE FROM \"t\"");
	check_render("delete from t where b is null or a in (1, 2, 3)",
		     "DELETE FROM \"t\" WHERE (\"b\" IS NULL) OR (\"a\" IN (1, 2, 3))");
	check_render("UPDATE t SET b = 'z' WHERE a = 5 COMPENSATE WITH UPDATE t SET b = 'y' WHERE a = 5",
		     "UPDATE \"t\" SET \"b\" = 'z' WHERE \"a\" = 5");
}

static void test_select(void)
{
	check_render("SELECT 1", "SELECT 1");
	check_render("select * from t", "SELECT * FROM \"t\"");
	check_render("SELECT x.*, x.b FROM t AS x", "SELECT \"x\".*, \"x\".\"b\" FROM \"t\" AS \"x\"");
	check_render("SELECT a AS \"A\", b bee FROM t x",
		     "SELECT \"a\" AS \"A\", \"b\" AS \"bee\" FROM \"t\" AS \"x\"");
	check_render("SELECT DISTINCT b FROM t", "SELECT DISTINCT \"b\" FROM \"t\"");
	check_render("SELECT ALL b FROM t", "SELECT \"b\" FROM \"t\"");
	check_render("SELECT b, count(*), sum(a), avg(c), min(a), max(b) FROM t GROUP BY b "
		     "HAVING count(*) > 1",
		     "SELECT \"b\", count(*), sum(\"a\"), avg(\"c\"), min(\"a\"), max(\"b\") FROM \"t\" "
		     "GROUP BY \"b\" HAVING count(*) > 1");
	check_render("SELECT count(DISTINCT b) FROM t", "SELECT count(DISTINCT \"b\") FROM \"t\"");
	check_render("SELECT a FROM t ORDER BY b, c DESC, a ASC NULLS FIRST, d DESC NULLS LAST",
		     "SELECT \"a\" FROM \"t\" ORDER BY \"b\" NULLS LAST, \"c\" DESC NULLS FIRST, "
		     "\"a\" NULLS FIRST, \"d\" DESC NULLS LAST");
	check_render("SELECT a FROM t ORDER BY 1 LIMIT 10 OFFSET 20",
		     "SELECT \"a\" FROM \"t\" ORDER BY 1 NULLS LAST LIMIT 10 OFFSET 20");
	check_render("SELECT a FROM t OFFSET 5 LIMIT $1",
		     "SELECT \"a\" FROM \"t\" LIMIT ?1 OFFSET 5");
	check_render("SELECT a FROM t OFFSET 5", "SELECT \"a\" FROM \"t\" LIMIT -1 OFFSET 5");
	check_render("SELECT a FROM t LIMIT ALL", "SELECT \"a\" FROM \"t\"");
	check_render("SELECT a FROM t WHERE a = 1 FOR UPDATE",
		     "SELECT \"a\" FROM \"t\" WHERE \"a\" = 1");
	check_render("SELECT key, level FROM u WHERE name = 'x'",
		     "SELECT \"key\", \"level\" FROM \"u\" WHERE \"name\" = 'x'");

	sql_stmt_list *l = parse("SELECT a FROM t FOR SHARE");
	ok(l && l->items[0]->select.lock == SQL_LOCK_SHARE, "FOR SHARE recorded");
	sql_stmt_list_free(l);
	l = parse("SELECT DISTINCT a, b AS x FROM t AS y WHERE a > 1 GROUP BY a, b "
		  "HAVING a < 9 ORDER BY b DESC LIMIT 3 OFFSET 1 FOR UPDATE");
	const sql_select *s = l ? &l->items[0]->select : NULL;
	ok(s && s->distinct && s->items.n == 2 && strcmp(s->items.items[1].alias, "x") == 0 &&
	   s->from && strcmp(s->from->name, "t") == 0 && strcmp(s->from->alias, "y") == 0 &&
	   s->where && s->group_by.n == 2 && s->having && s->order_by.n == 1 &&
	   s->order_by.items[0].desc && s->limit && s->limit->lit.i == 3 && s->offset &&
	   s->lock == SQL_LOCK_UPDATE, "select clauses recorded");
	sql_stmt_list_free(l);
}

static void test_expressions(void)
{
	check_render("SELECT 1 + 2 * 3, (1 + 2) * 3, 7 / 2 % 3, -a, +a, - -1 FROM t",
		     "SELECT 1 + (2 * 3), (1 + 2) * 3, (7 / 2) % 3, - \"a\", + \"a\", 1 FROM \"t\"");
	check_render("SELECT 'a' || 1 + 2, 'x' || b || 'y' FROM t",
		     "SELECT 'a' || (1 + 2), ('x' || \"b\") || 'y' FROM \"t\"");
	check_render("SELECT a FROM t WHERE NOT a = 1 AND b <> 'x' OR c != 2 AND a < 1 AND a <= 2 "
		     "AND a > 3 AND a >= 4",
		     "SELECT \"a\" FROM \"t\" WHERE ((NOT (\"a\" = 1)) AND (\"b\" <> 'x')) OR "
		     "(((((\"c\" <> 2) AND (\"a\" < 1)) AND (\"a\" <= 2)) AND (\"a\" > 3)) AND "
		     "(\"a\" >= 4))");
	check_render("SELECT a IS NULL, a IS NOT NULL, d IS TRUE, d IS NOT TRUE, d IS FALSE, "
		     "d IS NOT FALSE, d IS UNKNOWN FROM t",
		     "SELECT \"a\" IS NULL, \"a\" IS NOT NULL, \"d\" IS TRUE, \"d\" IS NOT TRUE, "
		     "\"d\" IS FALSE, \"d\" IS NOT FALSE, \"d\" IS NULL FROM \"t\"");
	check_render("SELECT a IS DISTINCT FROM b, a IS NOT DISTINCT FROM $1 FROM t",
		     "SELECT \"a\" IS NOT \"b\", \"a\" IS ?1 FROM \"t\"");
	check_render("SELECT a FROM t WHERE a NOT IN (1, 2) AND b IN ('x') AND a BETWEEN 1 AND 5 "
		     "AND a NOT BETWEEN -1 AND 0",
		     "SELECT \"a\" FROM \"t\" WHERE (((\"a\" NOT IN (1, 2)) AND (\"b\" IN ('x'))) AND "
		     "(\"a\" BETWEEN 1 AND 5)) AND (\"a\" NOT BETWEEN -1 AND 0)");
	check_render("SELECT a FROM t WHERE a BETWEEN 1 AND 2 AND b = 'x'",
		     "SELECT \"a\" FROM \"t\" WHERE (\"a\" BETWEEN 1 AND 2) AND (\"b\" = 'x')");
	check_render("SELECT b LIKE 'a%', b NOT LIKE '_b', b ILIKE 'A%', b NOT ILIKE $1, "
		     "b LIKE 'a!%' ESCAPE '!' FROM t",
		     "SELECT \"b\" LIKE 'a%' ESCAPE '\\', \"b\" NOT LIKE '_b' ESCAPE '\\', "
		     "lower(\"b\") LIKE lower('A%') ESCAPE '\\', lower(\"b\") NOT LIKE lower(?1) "
		     "ESCAPE '\\', \"b\" LIKE 'a!%' ESCAPE '!' FROM \"t\"");
	/* NOT LIKE binds like LIKE, tighter than = (PostgreSQL's NOT_LA). */
	check_render("SELECT d = b NOT LIKE 'x' FROM t",
		     "SELECT \"d\" = (\"b\" NOT LIKE 'x' ESCAPE '\\') FROM \"t\"");
	check_render("SELECT CAST(a AS TEXT), b::int, c::bigint, a::double precision, a::real, "
		     "b::numeric(5,2), a::boolean, b::bytea, b::timestamp, a::varchar(2), a::char(3), "
		     "a::varchar, $1::int8 FROM t",
		     "SELECT CAST(\"a\" AS TEXT), CAST(\"b\" AS INTEGER), CAST(\"c\" AS INTEGER), "
		     "CAST(\"a\" AS REAL), CAST(\"a\" AS REAL), CAST(\"b\" AS NUMERIC), "
		     "CAST(\"a\" AS INTEGER), CAST(\"b\" AS BLOB), CAST(\"b\" AS TEXT), "
		     "substr(CAST(\"a\" AS TEXT), 1, 2), substr(CAST(\"a\" AS TEXT), 1, 3), "
		     "CAST(\"a\" AS TEXT), CAST(?1 AS INTEGER) FROM \"t\"");
	check_render("SELECT CURRENT_TIMESTAMP, now(), TIMESTAMP '2024-01-02 03:04:05'",
		     "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', "
		     "'now'), CAST('2024-01-02 03:04:05' AS TEXT)");
	check_render("SELECT CASE WHEN a > 1 THEN 'big' WHEN a < 0 THEN 'neg' ELSE 'small' END, "
		     "CASE b WHEN 'x' THEN 1 END FROM t",
		     "SELECT CASE WHEN \"a\" > 1 THEN 'big' WHEN \"a\" < 0 THEN 'neg' ELSE 'small' END, "
		     "CASE \"b\" WHEN 'x' THEN 1 END FROM \"t\"");
	check_render("SELECT coalesce(b, 'x'), lower(b), length(b), abs(a), nullif(a, 0), "
		     "\"LOWER\"(b) FROM t WHERE 1 = 0",
		     "SELECT coalesce(\"b\", 'x'), lower(\"b\"), length(\"b\"), abs(\"a\"), "
		     "nullif(\"a\", 0), \"LOWER\"(\"b\") FROM \"t\" WHERE 1 = 0");
	check_render("SELECT string_agg(b, ','), bool_and(d), bool_or(d), every(d), "
		     "char_length(b), strpos(b, 'x'), substring(b, 1, 2), greatest(a, 1), "
		     "least(a, 2), ceiling(c) FROM t",
		     "SELECT group_concat(\"b\", ','), min(\"d\"), max(\"d\"), min(\"d\"), "
		     "length(\"b\"), instr(\"b\", 'x'), substr(\"b\", 1, 2), max(\"a\", 1), "
		     "min(\"a\", 2), ceil(\"c\") FROM \"t\"");
	check_render("SELECT TRUE, FALSE, NULL, 1.50, 1e3, .5, 99999999999999999999, "
		     "-9223372036854775808, $$dollar 'q'$$, $tag$a$b$tag$",
		     "SELECT 1, 0, NULL, 1.50, 1e3, .5, 99999999999999999999, -9223372036854775808, "
		     "'dollar ''q''', 'a$b'");
	check_render("SELECT 'con'\n  'cat', E'\\x41\\101\\u00e9\\'\\\\'",
		     "SELECT 'concat', 'AAé''\\'");
	check_render("SELECT \"Weird \"\" Name\" FROM t",
		     "SELECT \"Weird \"\" Name\" FROM \"t\"");
	check_render("SELECT a /* block /* nested */ comment */ -- line\n FROM t",
		     "SELECT \"a\" FROM \"t\"");
	check_render("SELECT a - -1, a - (-b), - (a + 1) FROM t",
		     "SELECT \"a\" - -1, \"a\" - (- \"b\"), - (\"a\" + 1) FROM \"t\"");
}

/* Rendered SQL keeps PostgreSQL's meaning where SQLite differs. */
static void test_semantics(void)
{
	exec_pg("INSERT INTO t (a, b, h, d) VALUES (1, 'a_c', 'abc', TRUE), (2, 'abc', NULL, FALSE), "
		"(3, NULL, 'x', NULL), (4, 'ABC', 'y', TRUE)");
	check_eval("SELECT a FROM t WHERE b LIKE 'a\\_c'", "1");
	check_eval("SELECT a FROM t WHERE b ILIKE 'abc' ORDER BY a", "2,4");
	check_eval("SELECT a FROM t WHERE b NOT LIKE 'a%' ORDER BY a", "4");
	check_eval("SELECT a FROM t ORDER BY b", "4,1,2,3");
	check_eval("SELECT a FROM t ORDER BY b DESC", "3,2,1,4");
	check_eval("SELECT a FROM t ORDER BY b NULLS FIRST", "3,4,1,2");
	check_eval("SELECT a FROM t ORDER BY a OFFSET 2", "3,4");
	check_eval("SELECT a FROM t WHERE d ORDER BY a", "1,4");
	check_eval("SELECT a FROM t WHERE d IS NOT TRUE ORDER BY a", "2,3");
	check_eval("SELECT a FROM t WHERE b IS DISTINCT FROM 'abc' ORDER BY a", "1,3,4");
	check_eval("SELECT a FROM t WHERE b IS NOT DISTINCT FROM NULL", "3");
	check_eval("SELECT 'abcdef'::varchar(3)", "abc");
	check_eval("SELECT 7 / 2, 7 % 3", "3");
	check_eval("SELECT random() >= 0 AND random() < 1", "1");
	check_eval("SELECT length(now()) = 23 AND now() LIKE '____-__-__ __:__:__.___'", "1");
	check_eval("SELECT 'a' || 1 + 2", "a3");
	check_eval("SELECT CASE WHEN 2 > 1 THEN 'y' ELSE 'n' END", "y");
	check_eval("SELECT string_agg(b, '+') FROM t WHERE a < 3", "a_c+abc");
	check_exec_fails("INSERT INTO t (a, h) VALUES (10, 'toolong')", "$varchar(5)");
	check_exec_fails("INSERT INTO t (a, d) VALUES (11, 2)", "$bool");
	check_exec_fails("INSERT INTO t (a, j) VALUES (12, 40000)", "$int2");
	check_exec_fails("INSERT INTO t (a) VALUES (2147483648)", "$int4");
	check_exec_fails("INSERT INTO accounts VALUES (1, -5)", "accounts_balance_check");
	check_exec_fails("INSERT INTO u (id, name) VALUES (1, NULL)", "NOT NULL");
	exec_pg("INSERT INTO t (a, k) VALUES (13, 'ab')");
	check_eval("SELECT count(*) FROM t", "5");
}

static void test_transactions_admin(void)
{
	static const struct {
		const char *sql;
		sql_stmt_kind kind;
		const char *tag;
	} cases[] = {
		{"BEGIN", SQL_STMT_BEGIN, "BEGIN"},
		{"begin transaction", SQL_STMT_BEGIN, "BEGIN"},
		{"BEGIN WORK ISOLATION LEVEL READ COMMITTED", SQL_STMT_BEGIN, "BEGIN"},
		{"START TRANSACTION READ ONLY", SQL_STMT_BEGIN, "START TRANSACTION"},
		{"BEGIN SAGA", SQL_STMT_BEGIN, "BEGIN"},
		{"COMMIT", SQL_STMT_COMMIT, "COMMIT"},
		{"commit work", SQL_STMT_COMMIT, "COMMIT"},
		{"END", SQL_STMT_COMMIT, "COMMIT"},
		{"END TRANSACTION", SQL_STMT_COMMIT, "COMMIT"},
		{"ROLLBACK", SQL_STMT_ROLLBACK, "ROLLBACK"},
		{"ABORT", SQL_STMT_ROLLBACK, "ROLLBACK"},
		{"SET transaction_mode = 'saga'", SQL_STMT_SET, "SET"},
		{"RESET transaction_mode", SQL_STMT_SET, "RESET"},
		{"SHOW TABLES", SQL_STMT_SHOW, "SHOW"},
		{"EXPLAIN SELECT 1", SQL_STMT_EXPLAIN, "EXPLAIN"},
		{"ALTER CLUSTER ADD SHARD '10.0.0.1:5433'", SQL_STMT_ADD_SHARD, "ALTER CLUSTER"},
		{"REBALANCE", SQL_STMT_REBALANCE, "REBALANCE"},
		{"RESOLVE SAGA '17' OVERWRITE", SQL_STMT_RESOLVE_SAGA, "RESOLVE SAGA"},
		{"resolve saga '17' accept", SQL_STMT_RESOLVE_SAGA, "RESOLVE SAGA"},
		{"SELECT 1", SQL_STMT_SELECT, "SELECT"},
		{"INSERT INTO t VALUES (1)", SQL_STMT_INSERT, "INSERT"},
		{"UPDATE t SET a = 1", SQL_STMT_UPDATE, "UPDATE"},
		{"DELETE FROM t", SQL_STMT_DELETE, "DELETE"},
		{"CREATE TABLE z (a INT)", SQL_STMT_CREATE_TABLE, "CREATE TABLE"},
		{"DROP TABLE z", SQL_STMT_DROP_TABLE, "DROP TABLE"},
		{"CREATE INDEX zi ON z (a)", SQL_STMT_CREATE_INDEX, "CREATE INDEX"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sql_stmt_list *l = parse(cases[i].sql);
		ok(l && l->n == 1 && l->items[0]->kind == cases[i].kind &&
		   strcmp(sql_stmt_tag(l->items[0]), cases[i].tag) == 0,
		   "kind and tag %s: %s", cases[i].tag, cases[i].sql);
		sql_stmt_list_free(l);
	}

	check_render("BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN");
	check_render("COMMIT", "COMMIT");
	check_render("ROLLBACK", "ROLLBACK");
	check_render("UPDATE t SET a = a - $1 WHERE id = $2 COMPENSATE WITH UPDATE t SET a = a + $1 WHERE id = $2",
		     "UPDATE \"t\" SET \"a\" = \"a\" - ?1 WHERE \"id\" = ?2");
	{
		/* router-only: rendered for logs, never sent to SQLite */
		sql_stmt_list *rl = parse("resolve saga '17' Overwrite; RESOLVE SAGA '18' ACCEPT");
		char *r0 = rl && rl->n == 2 ? render_stmt(rl->items[0]) : NULL;
		char *r1 = rl && rl->n == 2 ? render_stmt(rl->items[1]) : NULL;
		ok(r0 && r1 && strcmp(r0, "RESOLVE SAGA '17' OVERWRITE") == 0 && strcmp(r1, "RESOLVE SAGA '18' ACCEPT") == 0 &&
			   strcmp(rl->items[0]->prepared_gid, "17") == 0 && rl->items[1]->resolve_mode == 2,
		   "RESOLVE SAGA renders canonically");
		free(r0);
		free(r1);
		sql_stmt_list_free(rl);
		sql_error e = {0};
		sql_stmt_list *bad = NULL;
		ok(sql_parse("RESOLVE SAGA '1' LATER", 22, &bad, &e) != 0 && strcmp(e.sqlstate, "42601") == 0,
		   "RESOLVE SAGA with another word is a syntax error");
		sql_stmt_list_free(bad);
	}

	sql_stmt_list *l = parse("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY NOT DEFERRABLE; "
				 "START TRANSACTION ISOLATION LEVEL READ UNCOMMITTED READ WRITE DEFERRABLE; "
				 "BEGIN SAGA");
	ok(l && l->n == 3, "three transaction statements");
	if (l && l->n == 3) {
		const sql_begin *b0 = &l->items[0]->begin, *b1 = &l->items[1]->begin,
				*b2 = &l->items[2]->begin;
		ok(b0->isolation == SQL_ISO_REPEATABLE_READ && b0->access == SQL_ACCESS_READ_ONLY &&
		   b0->deferrable == -1 && !b0->saga && !b0->start, "BEGIN modes recorded");
		ok(b1->isolation == SQL_ISO_READ_UNCOMMITTED && b1->access == SQL_ACCESS_READ_WRITE &&
		   b1->deferrable == 1 && b1->start, "START TRANSACTION modes recorded");
		ok(b2->saga && b2->isolation == SQL_ISO_DEFAULT, "BEGIN SAGA recorded");
	}
	sql_stmt_list_free(l);

	l = parse("SET transaction_mode = 'saga'; SET SESSION transaction_mode TO '2pc'; "
		  "SET LOCAL x = 5; SET y TO -1.5; SET z = on; SET w = DEFAULT; SET v TO ident; "
		  "SET TIME ZONE 'UTC'; RESET ALL; RESET q");
	ok(l && l->n == 10, "ten SET statements");
	if (l && l->n == 10) {
		const sql_set *s0 = &l->items[0]->set;
		ok(strcmp(s0->name, "transaction_mode") == 0 && s0->kind == SQL_SET_STRING &&
		   strcmp(s0->value, "saga") == 0 && !s0->local, "SET name = 'string'");
		ok(strcmp(l->items[1]->set.value, "2pc") == 0, "SET SESSION name TO 'string'");
		ok(l->items[2]->set.local && l->items[2]->set.kind == SQL_SET_INT &&
		   strcmp(l->items[2]->set.value, "5") == 0, "SET LOCAL integer");
		ok(l->items[3]->set.kind == SQL_SET_NUMERIC &&
		   strcmp(l->items[3]->set.value, "-1.5") == 0, "SET negative numeric");
		ok(l->items[4]->set.kind == SQL_SET_BOOL && strcmp(l->items[4]->set.value, "on") == 0,
		   "SET on");
		ok(l->items[5]->set.kind == SQL_SET_DEFAULT && l->items[5]->set.value == NULL,
		   "SET DEFAULT");
		ok(l->items[6]->set.kind == SQL_SET_IDENT && strcmp(l->items[6]->set.value, "ident") == 0,
		   "SET identifier");
		ok(strcmp(l->items[7]->set.name, "timezone") == 0 &&
		   strcmp(l->items[7]->set.value, "UTC") == 0, "SET TIME ZONE");
		ok(l->items[8]->set.reset && l->items[8]->set.name == NULL, "RESET ALL");
		ok(l->items[9]->set.reset && strcmp(l->items[9]->set.name, "q") == 0 &&
		   l->items[9]->set.kind == SQL_SET_DEFAULT, "RESET name");
		char *r = render_stmt(l->items[0]);
		ok(r && strcmp(r, "SET \"transaction_mode\" TO 'saga'") == 0, "SET renders canonically");
		free(r);
	}
	sql_stmt_list_free(l);

	l = parse("SHOW TABLES; show shards; SHOW Transactions; SHOW SAGAS; SHOW REBALANCE; "
		  "SHOW server_version; SHOW ALL; SHOW TRANSACTION ISOLATION LEVEL; SHOW TIME ZONE");
	ok(l && l->n == 9, "nine SHOW statements");
	if (l && l->n == 9) {
		ok(l->items[0]->show.what == SQL_SHOW_TABLES && l->items[1]->show.what == SQL_SHOW_SHARDS &&
		   l->items[2]->show.what == SQL_SHOW_TRANSACTIONS &&
		   l->items[3]->show.what == SQL_SHOW_SAGAS &&
		   l->items[4]->show.what == SQL_SHOW_REBALANCE, "SHOW admin kinds");
		ok(l->items[5]->show.what == SQL_SHOW_VAR &&
		   strcmp(l->items[5]->show.name, "server_version") == 0, "SHOW variable");
		ok(strcmp(l->items[6]->show.name, "all") == 0 &&
		   strcmp(l->items[7]->show.name, "transaction_isolation") == 0 &&
		   strcmp(l->items[8]->show.name, "timezone") == 0, "SHOW special spellings");
	}
	sql_stmt_list_free(l);

	l = parse("EXPLAIN SELECT a FROM t WHERE a = $1; EXPLAIN ANALYZE VERBOSE DELETE FROM t "
		  "COMPENSATE WITH INSERT INTO t VALUES (1); ALTER CLUSTER ADD SHARD '127.0.0.1:6000'");
	ok(l && l->n == 3, "EXPLAIN and ALTER CLUSTER");
	if (l && l->n == 3) {
		const sql_explain *e = &l->items[0]->explain;
		ok(!e->analyze && !e->verbose && e->stmt->kind == SQL_STMT_SELECT &&
		   strcmp(e->stmt->sql, "SELECT a FROM t WHERE a = $1") == 0 &&
		   e->stmt->max_param == 1, "EXPLAIN's statement and its span");
		e = &l->items[1]->explain;
		ok(e->analyze && e->verbose && e->stmt->kind == SQL_STMT_DELETE &&
		   e->stmt->compensate && e->stmt->compensate->kind == SQL_STMT_INSERT,
		   "EXPLAIN ANALYZE VERBOSE of a saga step");
		ok(strcmp(l->items[2]->add_shard.address, "127.0.0.1:6000") == 0, "shard address");
		char *r = render_stmt(l->items[0]);
		ok(r && strcmp(r, "EXPLAIN SELECT \"a\" FROM \"t\" WHERE \"a\" = ?1") == 0,
		   "EXPLAIN renders its statement");
		free(r);
	}
	sql_stmt_list_free(l);
}

/* ---- lists, spans, parameters, names ------------------------------------------ */

static void test_lists_and_spans(void)
{
	const char *q = "  /* lead */ SELECT 1 ;;\n; INSERT INTO t VALUES ($2) COMPENSATE WITH "
			"DELETE FROM t WHERE a = $5 -- trailing\n;  ";
	sql_stmt_list *l = parse(q);
	ok(l && l->n == 2, "empty statements skipped, two statements");
	if (l && l->n == 2) {
		const sql_stmt *a = l->items[0], *b = l->items[1];
		ok(a->start == 13 && a->end == 21 && strcmp(a->sql, "SELECT 1") == 0,
		   "first span excludes comments and ';'");
		ok(strcmp(b->sql, "INSERT INTO t VALUES ($2) COMPENSATE WITH DELETE FROM t WHERE a = $5") == 0,
		   "second statement text");
		ok(b->compensate && strcmp(b->compensate->sql, "DELETE FROM t WHERE a = $5") == 0 &&
		   b->compensate->end == b->end, "compensation span");
		ok(a->max_param == 0 && b->max_param == 5 && l->max_param == 5, "max parameter");
		ok(memcmp(q + b->start, b->sql, b->end - b->start) == 0, "span points into the query");
	}
	sql_stmt_list_free(l);

	l = parse("");
	ok(l && l->n == 0, "empty string: no statements");
	sql_stmt_list_free(l);
	l = parse(" ; -- nothing\n ;/* */");
	ok(l && l->n == 0, "only separators and comments: no statements");
	sql_stmt_list_free(l);

	/* Names, literals and positions recorded in the tree. */
	l = parse("SELECT \"MiXed\", UPPER_case, t.\"Q\", $12, 'é' FROM tbl");
	const sql_select *s = l ? &l->items[0]->select : NULL;
	ok(s && strcmp(s->items.items[0].expr->name, "MiXed") == 0 &&
	   strcmp(s->items.items[1].expr->name, "upper_case") == 0 &&
	   strcmp(s->items.items[2].expr->table, "t") == 0 &&
	   strcmp(s->items.items[2].expr->name, "Q") == 0, "identifier folding and quoting");
	ok(s && s->items.items[3].expr->kind == SQL_EXPR_PARAM && s->items.items[3].expr->param == 12 &&
	   l->max_param == 12, "parameter number");
	ok(s && s->items.items[4].expr->lit.kind == SQL_LIT_STRING &&
	   strcmp(s->items.items[4].expr->lit.str, "é") == 0 && s->items.items[4].expr->lit.len == 2,
	   "string literal value");
	ok(s && s->items.items[1].expr->pos == 16 &&
	   sql_stmt_list_position(l, s->items.items[1].expr->pos) == 17 &&
	   s->from->pos == 50 && sql_stmt_list_position(l, s->from->pos) == 50,
	   "positions in characters");
	sql_stmt_list_free(l);

	/* Integer literals: int64, overflow to numeric, sign folding. */
	l = parse("SELECT 9223372036854775807, 9223372036854775808, -9223372036854775808, "
		  "-9223372036854775809, 1.5, -2.5");
	s = l ? &l->items[0]->select : NULL;
	ok(s && s->items.items[0].expr->lit.kind == SQL_LIT_INT &&
	   s->items.items[0].expr->lit.i == INT64_MAX, "int64 max is an integer");
	ok(s && s->items.items[1].expr->lit.kind == SQL_LIT_NUMERIC &&
	   strcmp(s->items.items[1].expr->lit.str, "9223372036854775808") == 0,
	   "beyond int64 is numeric");
	ok(s && s->items.items[2].expr->lit.kind == SQL_LIT_INT &&
	   s->items.items[2].expr->lit.i == INT64_MIN, "negated 2^63 is int64 min");
	ok(s && s->items.items[3].expr->lit.kind == SQL_LIT_NUMERIC &&
	   strcmp(s->items.items[3].expr->lit.str, "-9223372036854775809") == 0,
	   "below int64 min is numeric");
	ok(s && strcmp(s->items.items[5].expr->lit.str, "-2.5") == 0, "negative numeric folded");
	sql_stmt_list_free(l);

	/* Identifiers are cut to 63 bytes, at a character boundary. */
	char longq[200];
	snprintf(longq, sizeof longq, "SELECT %s, \"%s\"",
		 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcXYZ",
		 "ééééééééééééééééééééééééééééééééééé");
	l = parse(longq);
	s = l ? &l->items[0]->select : NULL;
	ok(s && strlen(s->items.items[0].expr->name) == 63 &&
	   strlen(s->items.items[1].expr->name) == 62, "long identifiers truncated");
	sql_stmt_list_free(l);
}

static void test_colnames(void)
{
	sql_stmt_list *l = parse("SELECT a, t.b, count(*), a + 1, CAST(a AS int), 'x'::text, 1::int, "
				 "true, now(), CURRENT_TIMESTAMP, CASE WHEN a THEN 1 END, "
				 "CASE WHEN a THEN 1 ELSE b END, x AS y, $1, sum(a)::numeric, "
				 "TIMESTAMP '2024-01-01', 'lit', a IS NULL FROM t");
	static const char *const want[] = {
		"a", "b", "count", "?column?", "a", "text", "int4", "bool", "now",
		"current_timestamp", "case", "b", "y", "?column?", "sum", "timestamp",
		"?column?", "?column?",
	};
	const sql_select *s = l ? &l->items[0]->select : NULL;
	ok(s && s->items.n == sizeof want / sizeof want[0], "all items parsed");
	for (size_t i = 0; s && i < s->items.n && i < sizeof want / sizeof want[0]; i++)
		ok(strcmp(sql_select_item_name(&s->items.items[i]), want[i]) == 0,
		   "column name %zu is %s (got %s)", i, want[i], sql_select_item_name(&s->items.items[i]));
	sql_stmt_list_free(l);

	ok(sql_type_pg_oid(SQL_TYPE_BIGINT) == 20 && sql_type_pg_oid(SQL_TYPE_INTEGER) == 23 &&
	   sql_type_pg_oid(SQL_TYPE_TEXT) == 25 && sql_type_pg_oid(SQL_TYPE_NUMERIC) == 1700 &&
	   sql_type_pg_oid(SQL_TYPE_BOOLEAN) == 16 && sql_type_pg_oid(SQL_TYPE_TIMESTAMP) == 1114 &&
	   sql_type_pg_oid(SQL_TYPE_VARCHAR) == 1043 && sql_type_pg_oid(SQL_TYPE_DOUBLE) == 701,
	   "type OIDs");
	ok(sql_func_is_aggregate("count") && sql_func_is_aggregate("avg") &&
	   sql_func_is_aggregate("string_agg") && !sql_func_is_aggregate("lower") &&
	   !sql_func_is_aggregate("now"), "aggregate functions known");
}

/* The planner's way of rewriting: shallow copies and new nodes. */
static void test_rewrite(void)
{
	sql_stmt_list *l = parse("SELECT b, avg(c) FROM t WHERE a > 1 GROUP BY b ORDER BY 2 LIMIT 5");
	if (!ok(l != NULL, "parse query to rewrite"))
		return;
	sql_arena *a = sql_stmt_list_arena(l);
	const sql_select *orig = &l->items[0]->select;
	sql_select s = *orig;
	sql_select_item items[3] = {orig->items.items[0], {NULL, NULL}, {NULL, NULL}};
	const sql_expr *avg = orig->items.items[1].expr;
	items[1].expr = sql_expr_func(a, "sum", avg->args.items, 1, false, false);
	items[2].expr = sql_expr_func(a, "count", avg->args.items, 1, false, false);
	items[2].alias = "n";
	s.items.items = items;
	s.items.n = 3;
	s.where = sql_expr_binary(a, SQL_OP_AND, orig->where,
				  sql_expr_binary(a, SQL_OP_EQ, sql_expr_column(a, NULL, "b"),
						  sql_expr_string(a, "it's", 4)));
	s.order_by.n = 0;
	s.limit = NULL;
	sql_buf b;
	sql_buf_init(&b);
	ok(sql_render_select(&b, &s) == 0 &&
	   strcmp(b.data, "SELECT \"b\", sum(\"c\"), count(\"c\") AS \"n\" FROM \"t\" WHERE "
			  "(\"a\" > 1) AND (\"b\" = 'it''s') GROUP BY \"b\"") == 0,
	   "rewritten copy renders");
	diag("%s", b.data);
	sql_buf_reset(&b);
	ok(sql_render_select(&b, orig) == 0 &&
	   strcmp(b.data, "SELECT \"b\", avg(\"c\") FROM \"t\" WHERE \"a\" > 1 GROUP BY \"b\" "
			  "ORDER BY 2 NULLS LAST LIMIT 5") == 0, "original untouched");
	sql_buf_reset(&b);
	sql_expr_list more = {0};
	ok(sql_expr_list_copy(a, &orig->group_by, &more) == 0 &&
	   sql_expr_list_push(a, &more, sql_expr_int(a, 7)) == 0 && more.n == 2 &&
	   orig->group_by.n == 1, "list copy and push");
	sql_buf_reset(&b);
	ok(sql_render_expr(&b, sql_expr_cast(a, sql_expr_null(a), (sql_type){SQL_TYPE_BIGINT, -1, -1, -1})) == 0 &&
	   strcmp(b.data, "CAST(NULL AS INTEGER)") == 0, "built cast renders");
	sql_buf_reset(&b);
	ok(sql_render_expr(&b, sql_expr_string(a, "a\0b", 3)) == 0 &&
	   strcmp(b.data, "('a' || char(0) || 'b')") == 0, "NUL in a built string is spliced");
	sql_buf_reset(&b);
	ok(sql_render_expr(&b, sql_expr_unary(a, SQL_OP_NEG, sql_expr_int(a, -1))) == 0 &&
	   strcmp(b.data, "- -1") == 0, "never renders a -- comment");

	/* A hand-built chain deeper than the render limit fails cleanly. */
	sql_expr *deep = sql_expr_int(a, 1);
	for (int i = 0; i < 3 * SQL_MAX_DEPTH; i++)
		deep = sql_expr_unary(a, SQL_OP_NOT, deep);
	sql_buf_reset(&b);
	ok(sql_render_expr(&b, deep) < 0 && b.failed, "too deep a built tree is refused");
	sql_buf_free(&b);
	sql_stmt_list_free(l);
}

/* ---- errors ------------------------------------------------------------------------ */

static void test_syntax_errors(void)
{
	check_error("SELEC 1", "42601", 1, "syntax error at or near \"SELEC\"");
	check_error("SELECT 1 +", "42601", 11, "syntax error at end of input");
	check_error("SELECT 1 +   -- comment", "42601", 24, "syntax error at end of input");
	check_error("SELECT 1 +; SELECT 2", "42601", 11, "syntax error at or near \";\"");
	check_error("SELECT 1; SELECT FROM WHERE", "42601", 18, "syntax error at or near \"FROM\"");
	check_error("SELECT 'é' ||| 1", "42601", 14, "syntax error at or near \"|\"");
	check_error("SELECT 'ééé', )", "42601", 15, "syntax error at or near \")\"");
	check_error("INSERT INTO t VALUES", "42601", 21, "syntax error at end of input");
	check_error("CREATE TABLE t (a INT,)", "42601", 23, "syntax error at or near \")\"");
	check_error("SELECT a FROM t WHERE", "42601", 22, "end of input");
	check_error("SELECT a = b = c", "42601", 14, "syntax error at or near \"=\"");
	check_error("UPDATE t SET a = 1 WHERE", "42601", 25, "end of input");
	check_error("SELECT 'abc", "42601", 8, "unterminated quoted string at or near \"'abc\"");
	check_error("SELECT \"abc", "42601", 8, "unterminated quoted identifier");
	check_error("SELECT 1 /* open", "42601", 10, "unterminated /* comment");
	check_error("SELECT \"\"", "42601", 8, "zero-length delimited identifier");
	check_error("SELECT $$x", "42601", 8, "unterminated dollar-quoted string");
	check_error("SELECT E'\\u12'", "22025", 10, "invalid Unicode escape");
	check_error("SELECT E'\\xff'", "22021", 8, "invalid byte sequence for encoding \"UTF8\": 0xff");
	check_error("SELECT E'\\0'", "22021", 8, "0x00");
	check_error("SELECT $0", "42P02", 8, "there is no parameter $0");
	check_error("SELECT $99999999", "42P02", 8, "there is no parameter $99999999");
	check_error("SELECT * FROM t WHERE a = ?", "42601", 27, "syntax error at or near \"?\"");
	check_error("SELECT a[1] FROM t", "0A000", 9, "arrays are not supported");
	check_error("CREATE TABLE t (a foo)", "42704", 19, "type \"foo\" does not exist");
	check_error("CREATE TABLE t (a int(3))", "42601", 19, "type modifier is not allowed for type \"int4\"");
	check_error("CREATE TABLE t (a varchar(0))", "22023", 19, "length for type varchar must be at least 1");
	check_error("CREATE TABLE t (a numeric(3, 4))", "22023", 19, "NUMERIC scale 4");
	check_error("SELECT x::double", "42704", 11, "type \"double\" does not exist");
	check_error("SELECT sum(*) FROM t", "42809", 8, "sum(*) specified");
	check_error("CREATE TABLE t (a INT, a TEXT)", "42701", 24, "column \"a\" specified more than once");
	check_error("CREATE TABLE t (a INT PRIMARY KEY, b INT, PRIMARY KEY (b))", "42P16", 43,
		    "multiple primary keys");
	check_error("CREATE TABLE t (a INT, PRIMARY KEY (a, zz))", "42703", 40,
		    "column \"zz\" named in key does not exist");
	check_error("CREATE TABLE t (a INT, PRIMARY KEY (a, a))", "42701", 40, "appears twice");
	check_error("CREATE TABLE t (a INT) PARTITION BY HASH (b)", "42703", 43,
		    "column \"b\" named in partition key does not exist");
	check_error("CREATE TABLE t (a INT PRIMARY KEY, b INT) PARTITION BY HASH (b)", "0A000", 62,
		    "unique constraint on partitioned table must include all partitioning columns");
	check_error("CREATE TABLE t (a INT, b INT UNIQUE) PARTITION BY HASH (a)", "0A000", 57,
		    "must include all partitioning columns");
	check_error("CREATE TABLE t (a INT, b INT, UNIQUE (b)) PARTITION BY HASH (a)", "0A000", 62,
		    "must include all partitioning columns");
	check_error("CREATE TABLE t (a INT) PARTITION BY RANGE (a) SPLIT AT (1, a + 1)", "42601", 62,
		    "SPLIT AT values must be constants");
	check_error("CREATE TABLE t (a INT NOT NULL NULL)", "42601", 32, "conflicting NULL/NOT NULL");
	check_error("CREATE TABLE t (a INT DEFAULT 1 DEFAULT 2)", "42601", 33, "multiple default values");
	check_error("CREATE INDEX IF NOT EXISTS ON t (a)", "42601", 1, "requires that you name the index");
	check_error("CREATE INDEX i ON t (a, a)", "42701", 25, "appears twice in index");
	check_error("INSERT INTO t (a, b) VALUES (1)", "42601", 19, "more target columns than expressions");
	check_error("INSERT INTO t (a) VALUES (1, 2)", "42601", 30, "more expressions than target columns");
	check_error("INSERT INTO t VALUES (1), (2, 3)", "42601", 28, "VALUES lists must all be the same length");
	check_error("INSERT INTO t (a, a) VALUES (1, 2)", "42701", 19, "specified more than once");
	check_error("UPDATE t SET a = 1, a = 2", "42601", 21, "multiple assignments to same column \"a\"");
	check_error("SELECT *", "42601", 8, "SELECT * with no tables specified is not valid");
	check_error("SELECT a, b FROM t ORDER BY 3", "42P10", 29, "ORDER BY position 3 is not in select list");
	check_error("SELECT a FROM t GROUP BY 0", "42P10", 26, "GROUP BY position 0 is not in select list");
	check_error("SELECT a FROM t LIMIT -1", "2201W", 23, "LIMIT must not be negative");
	check_error("SELECT a FROM t OFFSET -5", "2201X", 24, "OFFSET must not be negative");
	check_error("SELECT 1\xff", "22021", 0, "invalid byte sequence for encoding \"UTF8\": 0xff");
	check_error("SELECT '\xc3'", "22021", 0, "0xc3");
	check_error("SELECT 1; SELECT 'ok' FROM \xed\xa0\x80", "22021", 0, "0xed");
	{
		char q[] = "SELECT 1 x";
		q[8] = 0; /* a NUL byte inside the given length */
		sql_stmt_list *l = NULL;
		sql_error err;
		ok(sql_parse(q, sizeof q - 1, &l, &err) < 0 && strcmp(err.sqlstate, "22021") == 0 &&
		   strstr(err.message, "0x00") != NULL && l == NULL, "NUL byte rejected");
	}
}

static void test_unsupported(void)
{
	static const struct {
		const char *sql;
		int pos;
		const char *msg;
	} cases[] = {
		{"SELECT * FROM a JOIN b ON a.x = b.x", 17, "joins are not supported"},
		{"SELECT * FROM a LEFT JOIN b ON true", 22, "joins are not supported"},
		{"select * from a natural join b", 25, "joins are not supported"},
		{"SELECT * FROM a x FULL OUTER JOIN b ON true", 19, "joins are not supported"},
		{"SELECT * FROM a CROSS JOIN b", 23, "joins are not supported"},
		{"SELECT * FROM a, b", 16, "joins are not supported"},
		{"SELECT * FROM a AS x, b AS y", 21, "joins are not supported"},
		{"UPDATE a SET x = 1 FROM b", 20, "joins are not supported (UPDATE ... FROM)"},
		{"DELETE FROM a USING b", 15, "joins are not supported (DELETE ... USING)"},
		{"SELECT (SELECT 1)", 9, "subqueries are not supported"},
		{"SELECT * FROM t WHERE a IN (SELECT b FROM u)", 29, "subqueries are not supported"},
		{"SELECT * FROM t WHERE EXISTS (SELECT 1)", 31, "subqueries are not supported"},
		{"SELECT * FROM t WHERE NOT EXISTS (SELECT 1)", 35, "subqueries are not supported"},
		{"SELECT * FROM (SELECT 1) s", 16, "subqueries are not supported"},
		{"SELECT a = (SELECT max(a) FROM t) FROM t", 13, "subqueries are not supported"},
		{"WITH x AS (SELECT 1) SELECT * FROM x", 1, "WITH queries (common table expressions) are not supported"},
		{"SELECT 1 UNION SELECT 2", 10, "UNION is not supported"},
		{"SELECT 1 UNION ALL SELECT 2", 10, "UNION is not supported"},
		{"SELECT a FROM t INTERSECT SELECT a FROM u", 17, "INTERSECT is not supported"},
		{"SELECT a FROM t EXCEPT SELECT a FROM u", 17, "EXCEPT is not supported"},
		{"SELECT count(*) OVER () FROM t", 17, "window functions are not supported"},
		{"SELECT rank() OVER (ORDER BY a) FROM t", 15, "window functions are not supported"},
		{"SELECT sum(a) OVER w FROM t WINDOW w AS ()", 15, "window functions are not supported"},
		{"INSERT INTO t VALUES (1) RETURNING a", 26, "RETURNING is not supported"},
		{"UPDATE t SET a = 1 RETURNING *", 20, "RETURNING is not supported"},
		{"DELETE FROM t RETURNING a", 15, "RETURNING is not supported"},
		{"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", 26, "ON CONFLICT is not supported"},
		{"INSERT INTO t SELECT * FROM u", 15, "INSERT ... SELECT is not supported"},
		{"INSERT INTO t (a) SELECT 1", 19, "INSERT ... SELECT is not supported"},
		{"COPY t FROM STDIN", 1, "COPY is not supported"},
		{"ALTER TABLE t ADD COLUMN x INT", 7, "ALTER TABLE is not supported"},
		{"CREATE VIEW v AS SELECT 1", 8, "CREATE VIEW is not supported"},
		{"CREATE SEQUENCE s", 8, "CREATE SEQUENCE is not supported"},
		{"CREATE OR REPLACE VIEW v AS SELECT 1", 8, "CREATE OR REPLACE is not supported"},
		{"CREATE TEMP TABLE x (a INT)", 8, "temporary tables are not supported"},
		{"CREATE TABLE x AS SELECT 1", 16, "CREATE TABLE AS is not supported"},
		{"DROP INDEX i", 6, "DROP INDEX is not supported"},
		{"DROP VIEW v", 6, "DROP VIEW is not supported"},
		{"TRUNCATE t", 1, "TRUNCATE is not supported"},
		{"GRANT SELECT ON t TO bob", 1, "GRANT is not supported"},
		{"VACUUM", 1, "VACUUM is not supported"},
		{"PREPARE p AS SELECT 1", 1, "PREPARE is not supported"},
		{"SAVEPOINT a", 1, "savepoints are not supported"},
		{"ROLLBACK TO SAVEPOINT a", 10, "savepoints are not supported"},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 5, "SET TRANSACTION is not supported"},
		{"CREATE TABLE x (a INT REFERENCES y (id))", 23, "foreign keys are not supported"},
		{"CREATE TABLE x (a INT, FOREIGN KEY (a) REFERENCES y (id))", 24, "foreign keys are not supported"},
		{"SELECT a COLLATE \"C\" FROM t", 10, "COLLATE is not supported"},
		{"SELECT * FROM t WHERE a = ANY ($1)", 27, "ANY (array or subquery comparison) is not supported"},
		{"SELECT DISTINCT ON (a) a FROM t", 17, "DISTINCT ON is not supported"},
		{"SELECT a FROM t FOR NO KEY UPDATE", 21, "locking clause"},
		{"SELECT a FROM t FETCH FIRST 1 ROWS ONLY", 17, "FETCH FIRST is not supported"},
		{"CREATE TABLE x (a INT) PARTITION BY LIST (a)", 37, "PARTITION BY LIST is not supported"},
		{"CREATE TABLE x (a TIMESTAMP WITH TIME ZONE)", 29, "WITH TIME ZONE"},
		{"CREATE TABLE x (a SERIAL PRIMARY KEY)", 19, "type \"serial\" is not supported"},
		{"CREATE TABLE x (a JSONB)", 19, "type \"jsonb\" is not supported"},
		{"CREATE TABLE x (a DATE)", 19, "type \"date\" is not supported"},
		{"CREATE TABLE x (a INT GENERATED ALWAYS AS IDENTITY)", 23, "identity columns are not supported"},
		{"SELECT count(*) FILTER (WHERE a > 1) FROM t", 17, "FILTER"},
		{"INSERT INTO t VALUES (DEFAULT)", 23, "DEFAULT in INSERT is not supported"},
		{"SELECT * FROM t, LATERAL f(t.a)", 16, "joins are not supported"},
		{"SELECT ARRAY[1, 2]", 13, "arrays are not supported"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_error(cases[i].sql, "0A000", cases[i].pos, cases[i].msg);
}

static void test_limits(void)
{
	size_t n = SQL_MAX_DEPTH;
	char *q = malloc(3 * n + 64);
	/* Exactly the limit of parentheses is fine. */
	size_t k = (size_t)sprintf(q, "SELECT ");
	memset(q + k, '(', n);
	k += n;
	q[k++] = '1';
	memset(q + k, ')', n);
	k += n;
	q[k] = 0;
	sql_stmt_list *l = parse(q);
	ok(l != NULL, "%zu nested parentheses accepted", n);
	sql_buf b;
	sql_buf_init(&b);
	ok(l && sql_render_stmt(&b, l->items[0]) == 0 && strcmp(b.data, "SELECT 1") == 0,
	   "nested parentheses render flat");
	sql_buf_free(&b);
	sql_stmt_list_free(l);

	k = (size_t)sprintf(q, "SELECT ");
	memset(q + k, '(', n + 1);
	k += n + 1;
	q[k] = 0;
	check_error(q, "54001", (int)(8 + n), "statement too complex");

	/* Unparenthesised chains: NOT NOT ... and 1+1+... */
	char *big = malloc(40000);
	k = (size_t)sprintf(big, "SELECT ");
	for (int i = 0; i < 5000; i++)
		k += (size_t)sprintf(big + k, "NOT ");
	sprintf(big + k, "TRUE");
	sql_error err;
	l = NULL;
	ok(sql_parse(big, strlen(big), &l, &err) < 0 && strcmp(err.sqlstate, "54001") == 0,
	   "5000 NOTs: statement too complex");
	k = (size_t)sprintf(big, "SELECT 1");
	for (int i = 0; i < 5000; i++)
		k += (size_t)sprintf(big + k, "+1");
	ok(sql_parse(big, strlen(big), &l, &err) < 0 && strcmp(err.sqlstate, "54001") == 0,
	   "5000 additions: statement too complex");
	k = (size_t)sprintf(big, "SELECT ");
	for (int i = 0; i < 900; i++)
		k += (size_t)sprintf(big + k, "f(");
	big[k++] = '1';
	for (int i = 0; i < 900; i++)
		big[k++] = ')';
	big[k] = 0;
	l = parse(big);
	sql_buf_init(&b);
	ok(l && sql_render_stmt(&b, l->items[0]) == 0 && b.len > 900 * 3,
	   "900 nested calls accepted and rendered");
	sql_buf_free(&b);
	sql_stmt_list_free(l);

	/* A long flat statement: 20000 rows. */
	char *rows = malloc(1 << 20);
	k = (size_t)sprintf(rows, "INSERT INTO t (a, b) VALUES ");
	for (int i = 0; i < 20000; i++)
		k += (size_t)sprintf(rows + k, "%s(%d, 'v')", i ? "," : "", i);
	l = parse(rows);
	ok(l && l->items[0]->insert.rows.n == 20000, "20000-row INSERT parses");
	sql_stmt_list_free(l);

	/* PostgreSQL's list limits (they also keep duplicate checks cheap). */
	k = (size_t)sprintf(rows, "CREATE TABLE w (");
	for (int i = 0; i < 1601; i++)
		k += (size_t)sprintf(rows + k, "%sc%d INT8", i ? ", " : "", i);
	sprintf(rows + k, ")");
	ok(sql_parse(rows, strlen(rows), &l, &err) < 0 && strcmp(err.sqlstate, "54011") == 0 &&
	   strstr(err.message, "at most 1600 columns"), "1601 columns refused");
	k = (size_t)sprintf(rows, "UPDATE t SET ");
	for (int i = 0; i < 1665; i++)
		k += (size_t)sprintf(rows + k, "%sc%d = 1", i ? ", " : "", i);
	ok(sql_parse(rows, strlen(rows), &l, &err) < 0 && strcmp(err.sqlstate, "54011") == 0,
	   "1665 assignments refused");
	k = (size_t)sprintf(rows, "SELECT f(");
	for (int i = 0; i < 101; i++)
		k += (size_t)sprintf(rows + k, "%s%d", i ? ", " : "", i);
	sprintf(rows + k, ")");
	ok(sql_parse(rows, strlen(rows), &l, &err) < 0 && strcmp(err.sqlstate, "54023") == 0,
	   "101 function arguments refused");
	k = (size_t)sprintf(rows, "CREATE INDEX i ON t (");
	for (int i = 0; i < 33; i++)
		k += (size_t)sprintf(rows + k, "%sc%d", i ? ", " : "", i);
	sprintf(rows + k, ")");
	ok(sql_parse(rows, strlen(rows), &l, &err) < 0 && strcmp(err.sqlstate, "54011") == 0,
	   "33 index columns refused");
	/* Many unnamed CHECKs on one column: unique names, in linear time. */
	k = (size_t)sprintf(rows, "CREATE TABLE w (a INT8");
	for (int i = 0; i < 5000; i++)
		k += (size_t)sprintf(rows + k, " CHECK (a > %d)", i);
	sprintf(rows + k, ", CONSTRAINT w_a_check7 CHECK (a < 0))");
	l = parse(rows);
	const sql_check_list *cl = l ? &l->items[0]->create_table.columns.items[0].checks : NULL;
	ok(cl && cl->n == 5000 && strcmp(cl->items[0].name, "w_a_check") == 0 &&
	   strcmp(cl->items[7].name, "w_a_check8") == 0 &&
	   strcmp(cl->items[4999].name, "w_a_check5000") == 0,
	   "5000 default CHECK names skip the explicit one");
	sql_stmt_list_free(l);

	/* Too long a query is refused before scanning. */
	ok(sql_parse("SELECT 1", (size_t)SQL_MAX_QUERY_LEN + 1, &l, &err) < 0 &&
	   strcmp(err.sqlstate, "54000") == 0, "over-long query refused");
	free(rows);
	free(big);
	free(q);
}

/* Every keyword lexes as itself: the table is sorted and complete. */
static void test_keywords(void)
{
	static const char *const words[] = {
		"abort", "add", "all", "alter", "analyze", "and", "any", "as", "asc", "at",
		"begin", "between", "by", "case", "cast", "check", "cluster", "collate",
		"commit", "committed", "compensate", "constraint", "create",
		"current_timestamp", "default", "deferrable", "delete", "desc", "distinct",
		"drop", "else", "end", "escape", "except", "exists", "explain", "false",
		"fetch", "first", "for", "foreign", "from", "group", "hash", "having", "if",
		"ilike", "in", "index", "insert", "intersect", "into", "is", "isolation",
		"join", "key", "last", "lateral", "level", "like", "limit", "local", "not",
		"null", "nulls", "offset", "on", "only", "or", "order", "outer", "partition",
		"precision", "primary", "range", "read", "rebalance", "references",
		"repeatable", "reset", "returning", "rollback", "saga", "select",
		"serializable", "session", "set", "shard", "share", "show", "some", "split",
		"start", "table", "then", "time", "to", "transaction", "true", "uncommitted",
		"union", "unique", "unknown", "update", "using", "values", "varying",
		"verbose", "when", "where", "window", "with", "without", "work", "write", "zone",
	};
	int bad = 0;
	sql_arena *a = sql_arena_new();
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		char up[32];
		size_t n = strlen(words[i]);
		for (size_t j = 0; j <= n; j++)
			up[j] = (char)(words[i][j] >= 'a' && words[i][j] <= 'z' ? words[i][j] - 32 : words[i][j]);
		sql__lexer lx = {up, n, 0, a};
		sql__token tok;
		sql_error err = {{0}, {0}, 0};
		if (sql__lex(&lx, &tok, &err) < 0 || tok.code == TK_ID || tok.code == 0 ||
		    strcmp(tok.val, words[i]) != 0 || !tok.word) {
			diag("keyword %s lexes as code %d", words[i], tok.code);
			bad++;
		}
	}
	ok(bad == 0, "all %zu keywords are found", sizeof words / sizeof words[0]);
	sql__lexer lx = {"selectx", 7, 0, a};
	sql__token tok;
	sql_error err = {{0}, {0}, 0};
	ok(sql__lex(&lx, &tok, &err) == 0 && tok.code == TK_ID && strcmp(tok.val, "selectx") == 0,
	   "a keyword prefix is an identifier");
	sql_arena_free(a);
}

/* ---- garbage ---------------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}

static const char *const pieces[] = {
	"SELECT ", "INSERT INTO t ", "VALUES ", "(", ")", ",", ";", "*", "+", "-", "/", "%",
	"||", "::", "=", "<>", "<", ">=", "NOT ", "AND ", "OR ", "IS ", "NULL ", "TRUE ",
	"IN ", "BETWEEN ", "LIKE ", "ILIKE ", "ESCAPE ", "CASE ", "WHEN ", "THEN ", "ELSE ",
	"END ", "CAST", "AS ", "int ", "varchar(3) ", "FROM t ", "WHERE ", "GROUP BY ",
	"ORDER BY ", "DESC ", "NULLS FIRST ", "LIMIT ", "OFFSET ", "a ", "b.c ", "$1 ",
	"$7 ", "'str' ", "E'\\n' ", "$$d$$ ", "1 ", "-9223372036854775808 ", "1.5e3 ",
	"count(*) ", "f(", "DISTINCT ", "UPDATE t SET a = ", "DELETE FROM t ",
	"CREATE TABLE x (", "a int PRIMARY KEY", "CHECK (", "DEFAULT ", "PARTITION BY HASH (a)",
	"COMPENSATE WITH ", "BEGIN ", "COMMIT ", "SET x = ", "SHOW ", "EXPLAIN ", "JOIN ",
	"UNION ", "/* c */", "-- c\n", "\"q\"\"i\" ", "é", "\xff", "'", "\"", "$", "\\",
	"CURRENT_TIMESTAMP ", "IS NOT DISTINCT FROM ", "NOT IN ", "now() ", "SPLIT AT (1, 2)",
};

static void run_one(const char *q, size_t len, int *accepted, int *rejected)
{
	sql_stmt_list *l = NULL;
	sql_error err;
	if (sql_parse(q, len, &l, &err) < 0) {
		(*rejected)++;
		if (strlen(err.sqlstate) != 5 || err.message[0] == 0 || err.position < 0)
			bail("bad error for garbage: %s %s", err.sqlstate, err.message);
		return;
	}
	(*accepted)++;
	sql_buf b;
	sql_buf_init(&b);
	for (size_t i = 0; i < l->n; i++) {
		sql_buf_reset(&b);
		if (sql_render_stmt(&b, l->items[i]) < 0)
			bail("render failed for <%s>", l->items[i]->sql);
	}
	sql_buf_free(&b);
	sql_stmt_list_free(l);
}

static void test_garbage(void)
{
	int accepted = 0, rejected = 0;
	char q[1024];
	for (int iter = 0; iter < 30000; iter++) {
		size_t len = 0;
		int n = 1 + (int)(next_rand() % 24);
		if (iter % 3 == 0) {
			/* Raw bytes. */
			len = next_rand() % 200;
			for (size_t i = 0; i < len; i++)
				q[i] = (char)(next_rand() & 0xFF);
		} else {
			for (int i = 0; i < n; i++) {
				const char *p = pieces[next_rand() % (sizeof pieces / sizeof pieces[0])];
				size_t pl = strlen(p);
				if (len + pl >= sizeof q)
					break;
				memcpy(q + len, p, pl);
				len += pl;
			}
		}
		run_one(q, len, &accepted, &rejected);
	}
	ok(accepted + rejected == 30000, "30000 random inputs: %d accepted, %d rejected, no crash",
	   accepted, rejected);
	ok(accepted > 100, "some random token soups are valid SQL");

	/* Every prefix of a long valid script parses or fails cleanly. */
	const char *script =
		"CREATE TABLE a (id BIGINT PRIMARY KEY, v TEXT DEFAULT 'x' CHECK (v <> '')) "
		"PARTITION BY HASH (id); INSERT INTO a VALUES (1, E'\\t'), ($1, $$q$$) COMPENSATE "
		"WITH DELETE FROM a WHERE id = $1; SELECT DISTINCT v, count(*) AS n FROM a WHERE "
		"id NOT BETWEEN 1 AND 9 AND v NOT ILIKE 'a%' GROUP BY v HAVING count(*) > 1 ORDER "
		"BY 2 DESC NULLS LAST LIMIT 3 OFFSET 1; BEGIN SAGA; UPDATE a SET v = CASE WHEN id "
		"> 0 THEN v || '!' ELSE NULL END WHERE id IS NOT NULL; COMMIT; /* end */";
	int prefixes_ok = 0;
	for (size_t len = 0; len <= strlen(script); len++) {
		int acc = 0, rej = 0;
		run_one(script, len, &acc, &rej);
		prefixes_ok += acc + rej;
	}
	ok(prefixes_ok == (int)strlen(script) + 1, "every prefix of a script handled");
}

int main(void)
{
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		bail("cannot open sqlite");
	/* What docs/sql.md asks of shards: PostgreSQL's case-sensitive LIKE. */
	sqlite3_exec(db, "PRAGMA case_sensitive_like = ON", NULL, NULL, NULL);
	test_fixtures();
	test_create_table();
	test_ddl_other();
	test_insert();
	test_update_delete();
	test_select();
	test_expressions();
	test_semantics();
	test_transactions_admin();
	test_lists_and_spans();
	test_colnames();
	test_rewrite();
	test_syntax_errors();
	test_unsupported();
	test_limits();
	test_keywords();
	test_garbage();
	sqlite3_close(db);
	return plan_done();
}
