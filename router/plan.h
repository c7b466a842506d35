/*
 * plan.h — from one parsed statement and the catalog to the requests sent to
 * shards, and from their answers to the client's result.
 *
 * Life of a statement (the router's session drives it):
 *
 *   plan_build()      once per Parse (extended protocol) or per statement
 *                     (simple protocol): checks names against the catalog
 *                     (42P01, 42703), infers parameter and result types,
 *                     renders the SQLite SQL for shards, decides how results
 *                     are merged.  Does not look at parameter values.
 *   plan_bind_text()  converts the client's text-format parameter values
 *                     into typed values for the plan's parameter types
 *                     (22P02 on bad input).
 *   plan_requests()   with parameter values: which shards get which request.
 *                     Equality or IN on a HASH key -> the owning shards;
 *                     a range predicate on a RANGE key -> overlapping
 *                     shards; INSERT rows grouped by owning shard; writes to
 *                     reference tables and everything else -> all shards.
 *   plan_merge()      combines the answers into the client's rows or count.
 *
 * Merging: results from several shards are combined by running a merge
 * query over the partial rows in a private in-memory SQLite database
 * (ORDER BY, LIMIT/OFFSET, DISTINCT, aggregates, GROUP BY, HAVING; AVG from
 * SUM and COUNT).  A single-request SELECT passes rows through untouched.
 *
 * Ownership: a router_plan owns everything it returns; a plan_batch owns
 * its SQL strings and parameter arrays (values may point into the params
 * passed to plan_requests(), which must outlive the batch); a plan_result
 * owns its cells.
 */
#ifndef SHARDLITE_PLAN_H
#define SHARDLITE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/catalog.h"
#include "router/sql.h"
#include "txn/wire.h"

typedef struct router_plan router_plan;

typedef enum {
	PLAN_SELECT = 1,
	PLAN_INSERT,
	PLAN_UPDATE,
	PLAN_DELETE,
	PLAN_CREATE_TABLE,
	PLAN_DROP_TABLE,
	PLAN_CREATE_INDEX,
} plan_kind;

/* Build the plan of a SELECT, INSERT, UPDATE, DELETE, CREATE TABLE,
 * DROP TABLE or CREATE INDEX.  param_types[i] is the OID the client gave
 * for $i+1 (0 = unspecified: inferred from context, e.g. the column it is
 * compared with or inserted into; TEXT when nothing tells).  0, or -1 with
 * err (SQLSTATE, message, position). */
int plan_build(const catalog *cat, const sql_stmt *stmt, const uint32_t *param_types,
	       size_t nparam_types, router_plan **out, sql_error *err);
void plan_free(router_plan *p);

plan_kind plan_kind_of(const router_plan *p);
/* True when the statement writes (INSERT/UPDATE/DELETE/DDL). */
bool plan_writes(const router_plan *p);

size_t plan_nparams(const router_plan *p);
uint32_t plan_param_type(const router_plan *p, size_t i);

/* Result columns (RowDescription): 0 for statements without rows. */
size_t plan_ncols(const router_plan *p);
const char *plan_col_name(const router_plan *p, size_t i);
/* The table the statement reads or writes (NULL without FROM). */
const char *plan_table_name(const router_plan *p);
uint32_t plan_col_type(const router_plan *p, size_t i);

/* Client text (or NULL for SQL NULL) -> typed value for parameter i.
 * Text/blob values point into storage owned by `arena`.  0 or -1 (22P02). */
int plan_bind_text(const router_plan *p, size_t i, const char *text, size_t len,
		   sql_arena *arena, wire_value *out, sql_error *err);

typedef struct {
	size_t shard;          /* catalog shard index */
	char *sql;             /* SQLite SQL, NUL-terminated */
	wire_value *params;    /* for ?1..?n in sql */
	uint32_t nparams;
	bool readonly;
	uint32_t *buckets;     /* HASH buckets this request was routed for */
	uint32_t nbuckets;
} plan_request;

typedef struct {
	plan_request *reqs;
	size_t n;
	bool all_shards;       /* sent everywhere (no routing key found) */
	const char *why;       /* for EXPLAIN: "id = $1 -> bucket 812" ... */
} plan_batch;

int plan_requests(const router_plan *p, const catalog *cat, const wire_value *params,
		  size_t nparams, plan_batch *out, sql_error *err);
void plan_batch_free(plan_batch *b);

typedef struct {
	size_t ncols;
	size_t nrows;
	wire_value *cells;     /* nrows * ncols, row-major */
	int64_t changes;       /* rows written (INSERT/UPDATE/DELETE) */
	char tag[64];          /* CommandComplete: "SELECT 3", "INSERT 0 2",
				* "UPDATE 1", "DELETE 0", "CREATE TABLE"... */
	void *storage;         /* private */
} plan_result;

/* answers[i] answers b->reqs[i]; all have status WIRE_OK. */
int plan_merge(const router_plan *p, const plan_batch *b, const wire_response *const *answers,
	       plan_result *out, sql_error *err);
void plan_result_free(plan_result *r);

/* After every shard executed a DDL plan: record it in the catalog. */
int plan_apply_ddl(const router_plan *p, catalog *cat, sql_error *err);

/* Text form of a value in a column of this type, for DataRow: booleans
 * t/f, bytea \x hex, floats in shortest round-trip form (PostgreSQL's
 * extra_float_digits=1 behaviour), numeric exactly as stored, integers in
 * decimal.  Appends to out; 0 or -1 (out of memory). */
int plan_format_text(uint32_t type_oid, const wire_value *v, sql_buf *out);

/* Append the row filter that leaves out a move's hidden rows on a shard
 * (rows of the buckets in its _slhidden table; see plan_int.h's
 * plan__hidden_filter) for table t, parenthesized; false (nothing
 * appended) unless t is a HASH table. */
bool plan_render_hidden_filter(sql_buf *b, const catalog_table *t);

/* EXPLAIN text: one line per row, e.g.
 *   "Shard 2 (127.0.0.1:5436): SELECT ... -- id = 42 -> bucket 812 -> shard 2" */
int plan_explain(const router_plan *p, const plan_batch *b, const catalog *cat, sql_buf *out);

#endif
