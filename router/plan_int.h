/*
 * plan_int.h — internals shared by the planner's modules; not a contract for
 * anyone outside router/plan*.c, router/merge.c and router/format.c.
 *
 *   plan.c         plan_build() dispatch, accessors, DDL, plan_apply_ddl(),
 *                  plan_explain()
 *   plan_expr.c    name resolution, type inference, parameter types,
 *                  literal coercion, tree helpers
 *   plan_select.c  SELECT: shard SQL for one shard and for a scatter, the
 *                  merge query (aggregate decomposition)
 *   plan_write.c   INSERT (rows grouped by shard), UPDATE, DELETE
 *   plan_route.c   routing keys from WHERE; plan_requests()
 *   merge.c        plan_merge(): pass-through or a merge in private SQLite
 *   format.c       plan_format_text(), plan_bind_text()
 *
 * A plan is self-contained once plan_build() returned: every string it needs
 * later (shard SQL, merge SQL, INSERT row texts, routing operands, a copy of
 * a CREATE TABLE definition) lives in plan->arena; it never looks at the
 * statement again.  The catalog is consulted again by plan_requests() (the
 * table may have moved shards or been dropped since the plan was built).
 *
 * Parameters: each request's params array always holds ALL of the plan's
 * parameter values (plan->nparams of them), while request.nparams is the
 * highest ?n its own SQL uses (SQLite and the shard demand exactly that).
 * merge.c relies on the full array to bind the merge query's LIMIT/OFFSET
 * and HAVING parameters.
 */
#ifndef SHARDLITE_PLAN_INT_H
#define SHARDLITE_PLAN_INT_H

#include "router/plan.h"

/* Type OIDs used by the planner (the same numbers as router/pgwire.h). */
enum {
	PLAN_OID_UNKNOWN = 705, /* an untyped literal or parameter */
	PLAN_OID_BOOL = 16,
	PLAN_OID_BYTEA = 17,
	PLAN_OID_INT8 = 20,
	PLAN_OID_INT2 = 21,
	PLAN_OID_INT4 = 23,
	PLAN_OID_TEXT = 25,
	PLAN_OID_FLOAT4 = 700,
	PLAN_OID_FLOAT8 = 701,
	PLAN_OID_BPCHAR = 1042,
	PLAN_OID_VARCHAR = 1043,
	PLAN_OID_TIMESTAMP = 1114,
	PLAN_OID_NUMERIC = 1700,
};

bool plan__oid_is_int(uint32_t oid);
bool plan__oid_is_float(uint32_t oid);
bool plan__oid_is_text(uint32_t oid);
/* PostgreSQL's name of a type in messages ("bigint", "boolean"...). */
const char *plan__oid_name(uint32_t oid);

/* Text input as PostgreSQL reads it (blanks around allowed):
 * plan__parse_int: 0, -1 bad syntax, -2 out of range for oid (int2/4/8);
 * plan__parse_bool: 1 true, 0 false, -1 invalid (t/true/yes/on/1,
 * f/false/no/off/0 and unambiguous prefixes, any case);
 * plan__decimal_syntax: [+-]digits[.digits][e[+-]digits]. */
int plan__parse_int(const char *s, size_t n, uint32_t oid, int64_t *out);
int plan__parse_bool(const char *s, size_t n);
bool plan__decimal_syntax(const char *s, size_t n);

/* A value known at plan time (literal, copied into the plan) or a
 * parameter ($param, 1-based). */
typedef struct {
	bool is_param;
	int param;
	wire_value lit;
} plan_operand;

/* One routing conjunct on the partition column. */
typedef struct {
	sql_op op;             /* SQL_OP_EQ: col = v / col IN (...): a set of
				* values; SQL_OP_LT/LE/GT/GE: a bound */
	size_t first, n;       /* operands ops[first .. first + n) */
} plan_cond;

typedef struct {
	plan_cond *conds;
	size_t nconds;
	plan_operand *ops;
	size_t nops;
	char *text;            /* the conjuncts as SQL, for EXPLAIN, or NULL */
} plan_route;

typedef struct {
	char *text;            /* "(v1, v2, ...)" */
	int max_param;
	plan_operand key;      /* partition key value (partitioned tables) */
} plan_row;

typedef enum {
	PLAN_TARGET_NONE = 0,  /* SELECT without FROM: one shard */
	PLAN_TARGET_REFERENCE, /* reference table: reads one shard, writes all */
	PLAN_TARGET_HASH,
	PLAN_TARGET_RANGE,
} plan_target;

struct router_plan {
	plan_kind kind;
	sql_arena *arena;

	/* target table */
	const char *table;     /* NULL for SELECT without FROM */
	plan_target target;
	uint64_t table_epoch;  /* its created_epoch when planned */

	/* parameters */
	size_t nparams;
	uint32_t *param_types;

	/* result columns */
	size_t ncols;
	const char **col_names;
	uint32_t *col_types;

	/* SELECT, UPDATE, DELETE: the SQL for a single target shard
	 * (SELECT: the whole query) and, for SELECT, the partial query for a
	 * scatter and the merge query over its rows (table "m" with columns
	 * "c0".."c<scatter_ncols-1>"). */
	const char *sql_single;
	int single_max_param;
	size_t single_extra_cols; /* hidden trailing columns of sql_single */
	const char *sql_scatter;
	int scatter_max_param;
	size_t scatter_ncols;
	const char *sql_merge;
	int merge_max_param;
	bool merge_concat;     /* the merge is a plain concatenation */

	/* routing */
	plan_route route;

	/* INSERT */
	const char *insert_prefix; /* INSERT INTO "t" ("a", "b") VALUES  */
	plan_row *rows;
	size_t nrows;

	/* DDL */
	sql_create_table *create_def; /* deep copy (CREATE TABLE) */
	bool if_exists;               /* DROP TABLE IF EXISTS */
	bool table_known;             /* DROP: the table was in the catalog */
};

/* ---- plan_expr.c ---------------------------------------------------------- */

typedef enum {
	PLAN_CLAUSE_SELECT = 1, /* select list, HAVING, ORDER BY: aggregates ok */
	PLAN_CLAUSE_WHERE,      /* no aggregates */
	PLAN_CLAUSE_GROUP_BY,   /* no aggregates */
	PLAN_CLAUSE_LIMIT,      /* no columns, no aggregates */
	PLAN_CLAUSE_VALUES,     /* INSERT VALUES: no columns, no aggregates */
	PLAN_CLAUSE_UPDATE,     /* UPDATE SET / WHERE: no aggregates */
} plan_clause;

typedef struct {
	const sql_stmt *stmt;        /* for error positions */
	const catalog_table *table;  /* or NULL */
	const char *alias;           /* FROM alias or NULL */
	sql_arena *arena;            /* the plan's */
	uint32_t *ptypes;            /* nptypes entries, 0 = not known yet */
	size_t nptypes;
	sql_error *err;
} plan_ctx;

/* PostgreSQL cursor position of byte offset off of the statement text. */
int plan__pos(const plan_ctx *c, size_t off);
void plan__oom(plan_ctx *c);

/* Column index of a reference in the table, or -1 with err (42703 /
 * 42P01 for a wrong qualifier). */
int plan__column_of(plan_ctx *c, const sql_expr *col);
/* Check names and where aggregates may appear. 0 or -1 with err. */
int plan__resolve(plan_ctx *c, const sql_expr *e, plan_clause clause);
/* Result type of an expression; assigns unknown parameter types from
 * their context along the way.  PLAN_OID_UNKNOWN for untyped literals. */
uint32_t plan__type_of(plan_ctx *c, const sql_expr *e);
/* Give an untyped parameter (or every untyped parameter inside e that the
 * context decides) the type `want`. */
void plan__expect(plan_ctx *c, const sql_expr *e, uint32_t want);
/* PLAN_OID_UNKNOWN -> TEXT, the type PostgreSQL gives unknown results. */
uint32_t plan__final_type(uint32_t oid);
/* Rewrite untyped string literals compared with / combined with typed
 * expressions into literals of that type (PostgreSQL's unknown-literal
 * resolution): 'true' = b, id = '42'.  Returns e itself when nothing
 * changed, a new tree from c->arena otherwise, NULL with err (22P02). */
sql_expr *plan__coerce(plan_ctx *c, sql_expr *e);
/* A value for a column of type oid: a string literal becomes a literal of
 * that type (22P02 when it does not convert); others are coerced inside. */
sql_expr *plan__coerce_to(plan_ctx *c, sql_expr *e, uint32_t oid);

bool plan__is_aggregate(const sql_expr *e);
bool plan__has_aggregate(const sql_expr *e);
/* Same tree, ignoring positions and column qualifiers. */
bool plan__expr_equal(const sql_expr *a, const sql_expr *b);
int plan__max_param(const sql_expr *e);
/* A shallow copy of e in the arena (args array private). */
sql_expr *plan__copy_node(sql_arena *a, const sql_expr *e);

/* Render e into a NUL-terminated arena string; NULL when out of memory. */
const char *plan__render_expr(plan_ctx *c, const sql_expr *e);
/* Copy buf into the arena (NULL if the buffer failed or memory ran out). */
const char *plan__buf_dup(sql_arena *a, const sql_buf *b);

/* The row filter of a scatter statement on a HASH table (NULL for other
 * tables, or when out of memory: check c->err): leaves out the rows of the
 * buckets the shard lists in its _slhidden table, rows it holds for a bucket
 * move but does not own (before the move's switch on the target, after it
 * on the source until deleted).  Read in the statement's own snapshot, so a
 * switch at the consistent cut moves visibility atomically; free while the
 * list is empty (SQLite evaluates the NOT EXISTS once per statement). */
const char *plan__hidden_filter(plan_ctx *c);

/* ---- plan_select.c, plan_write.c, plan_route.c ----------------------------- */

int plan__build_select(plan_ctx *c, router_plan *p, const sql_select *s);
int plan__build_insert(plan_ctx *c, router_plan *p, const sql_insert *s);
int plan__build_update(plan_ctx *c, router_plan *p, const sql_update *s);
int plan__build_delete(plan_ctx *c, router_plan *p, const sql_delete *s);

/* Collect the routing conjuncts of a WHERE clause on the partition column
 * into p->route.  0 or -1 (out of memory). */
int plan__route_extract(plan_ctx *c, router_plan *p, const sql_expr *where);
/* The operand's value for a key: a literal, or params[param - 1]. */
const wire_value *plan__operand_value(const plan_operand *o, const wire_value *params,
				      size_t nparams);
/* A literal or parameter operand from an expression (through casts to
 * integer or text types); false when e is anything else. */
bool plan__operand_of(plan_ctx *c, const sql_expr *e, plan_operand *out);

#endif
