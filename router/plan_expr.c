/*
 * plan_expr.c — what the planner knows about expressions: name resolution
 * against the one table in FROM, where aggregates may appear, result types
 * (PostgreSQL OIDs), types of untyped parameters from their context, and
 * the rewriting of untyped string literals into typed ones.
 *
 * Type rules (docs/routing.md has the table):
 *   integer literal       int4 when it fits, else int8; larger -> numeric
 *   decimal literal       numeric          'string'  unknown (text on output)
 *   TRUE/FALSE            bool             NULL      unknown
 *   column                the catalog column's type
 *   + - * / % on ints     int8; with a float -> float8; with numeric -> numeric
 *   ||                    text             comparisons, AND/OR/NOT, IS,
 *   CAST(x AS t)          t                IN, BETWEEN, LIKE -> bool
 *   count                 int8             sum(int) int8, sum(float) float8,
 *   avg(float)            float8           sum/avg(other) numeric
 *   min/max               the argument's   CURRENT_TIMESTAMP, now() timestamp
 *
 * An untyped parameter takes the type of what it is compared with, combined
 * with, inserted into or assigned to; LIMIT/OFFSET make it int8; anything
 * else leaves it unknown, and plan_build() finally makes it text.
 *
 * Invariant: nothing here modifies the parse tree; rewrites build new nodes
 * in the plan's arena (copy on write) and share unchanged subtrees.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plan_int.h"

/* ---- type facts ------------------------------------------------------------- */

bool plan__oid_is_int(uint32_t oid)
{
	return oid == PLAN_OID_INT2 || oid == PLAN_OID_INT4 || oid == PLAN_OID_INT8;
}

bool plan__oid_is_float(uint32_t oid)
{
	return oid == PLAN_OID_FLOAT4 || oid == PLAN_OID_FLOAT8;
}

bool plan__oid_is_text(uint32_t oid)
{
	return oid == PLAN_OID_TEXT || oid == PLAN_OID_VARCHAR || oid == PLAN_OID_BPCHAR;
}

const char *plan__oid_name(uint32_t oid)
{
	switch (oid) {
	case PLAN_OID_BOOL: return "boolean";
	case PLAN_OID_BYTEA: return "bytea";
	case PLAN_OID_INT8: return "bigint";
	case PLAN_OID_INT2: return "smallint";
	case PLAN_OID_INT4: return "integer";
	case PLAN_OID_TEXT: return "text";
	case PLAN_OID_FLOAT4: return "real";
	case PLAN_OID_FLOAT8: return "double precision";
	case PLAN_OID_BPCHAR: return "character";
	case PLAN_OID_VARCHAR: return "character varying";
	case PLAN_OID_TIMESTAMP: return "timestamp without time zone";
	case PLAN_OID_NUMERIC: return "numeric";
	default: return "unknown";
	}
}

uint32_t plan__final_type(uint32_t oid)
{
	return oid == PLAN_OID_UNKNOWN || oid == 0 ? PLAN_OID_TEXT : oid;
}

/* ---- small helpers ------------------------------------------------------------ */

int plan__pos(const plan_ctx *c, size_t off)
{
	if (off == SQL_NO_POS || c->stmt == NULL || c->stmt->sql == NULL)
		return 0;
	size_t start = c->stmt->start;
	if (off < start)
		return (int)off + 1;
	/* Bytes before the statement are counted as one character each (the
	 * statement does not carry the text before it). */
	size_t n = off - start, chars = 0;
	const unsigned char *s = (const unsigned char *)c->stmt->sql;
	for (size_t i = 0; i < n && s[i]; i++)
		if ((s[i] & 0xC0) != 0x80)
			chars++;
	size_t pos = start + chars + 1;
	return pos > INT32_MAX ? INT32_MAX : (int)pos;
}

void plan__oom(plan_ctx *c)
{
	sql_error_set(c->err, "53200", 0, "out of memory");
}

const char *plan__buf_dup(sql_arena *a, const sql_buf *b)
{
	if (b->failed)
		return NULL;
	return sql_arena_strndup(a, b->data ? b->data : "", b->len);
}

bool plan_render_hidden_filter(sql_buf *b, const catalog_table *t)
{
	if (t == NULL || t->partition != SQL_PARTITION_HASH || t->partition_col < 0)
		return false;
	sql_buf_puts(b, "(NOT EXISTS (SELECT 1 FROM _slhidden) OR sl_bucket(");
	sql_render_ident(b, t->cols[t->partition_col].name);
	sql_buf_puts(b, ") NOT IN (SELECT bucket FROM _slhidden))");
	return true;
}

const char *plan__hidden_filter(plan_ctx *c)
{
	sql_buf b;
	sql_buf_init(&b);
	if (!plan_render_hidden_filter(&b, c->table)) {
		sql_buf_free(&b);
		return NULL;
	}
	const char *s = plan__buf_dup(c->arena, &b);
	sql_buf_free(&b);
	if (s == NULL)
		plan__oom(c);
	return s;
}

const char *plan__render_expr(plan_ctx *c, const sql_expr *e)
{
	sql_buf b;
	sql_buf_init(&b);
	sql_render_expr(&b, e);
	const char *s = plan__buf_dup(c->arena, &b);
	sql_buf_free(&b);
	if (s == NULL)
		plan__oom(c);
	return s;
}

sql_expr *plan__copy_node(sql_arena *a, const sql_expr *e)
{
	sql_expr *n = sql_arena_alloc(a, sizeof *n);
	if (n == NULL)
		return NULL;
	*n = *e;
	n->args.items = NULL;
	n->args.n = n->args.cap = 0;
	if (e->args.n > 0 && sql_expr_list_copy(a, &e->args, &n->args) != 0)
		return NULL;
	return n;
}

bool plan__is_aggregate(const sql_expr *e)
{
	return e != NULL && e->kind == SQL_EXPR_FUNC && sql_func_is_aggregate(e->name);
}

bool plan__has_aggregate(const sql_expr *e)
{
	if (e == NULL)
		return false;
	if (plan__is_aggregate(e))
		return true;
	if (plan__has_aggregate(e->left) || plan__has_aggregate(e->right) ||
	    plan__has_aggregate(e->third))
		return true;
	for (size_t i = 0; i < e->args.n; i++)
		if (plan__has_aggregate(e->args.items[i]))
			return true;
	return false;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

bool plan__expr_equal(const sql_expr *a, const sql_expr *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (a->kind != b->kind || a->op != b->op || a->negated != b->negated ||
	    a->ilike != b->ilike || a->star != b->star || a->distinct != b->distinct ||
	    a->is_test != b->is_test || a->param != b->param)
		return false;
	switch (a->kind) {
	case SQL_EXPR_LITERAL:
		if (a->lit.kind != b->lit.kind)
			return false;
		switch (a->lit.kind) {
		case SQL_LIT_INT: return a->lit.i == b->lit.i;
		case SQL_LIT_BOOL: return a->lit.b == b->lit.b;
		case SQL_LIT_NUMERIC: return str_eq(a->lit.str, b->lit.str);
		case SQL_LIT_STRING:
			return a->lit.len == b->lit.len && memcmp(a->lit.str, b->lit.str, a->lit.len) == 0;
		case SQL_LIT_NULL: return true;
		}
		return false;
	case SQL_EXPR_COLUMN:
		return str_eq(a->name, b->name); /* one table: qualifiers do not matter */
	case SQL_EXPR_CAST:
		if (a->type.kind != b->type.kind || a->type.length != b->type.length ||
		    a->type.precision != b->type.precision || a->type.scale != b->type.scale)
			return false;
		break;
	case SQL_EXPR_FUNC:
		if (!str_eq(a->name, b->name))
			return false;
		break;
	default:
		break;
	}
	if (!plan__expr_equal(a->left, b->left) || !plan__expr_equal(a->right, b->right) ||
	    !plan__expr_equal(a->third, b->third) || a->args.n != b->args.n)
		return false;
	for (size_t i = 0; i < a->args.n; i++)
		if (!plan__expr_equal(a->args.items[i], b->args.items[i]))
			return false;
	return true;
}

int plan__max_param(const sql_expr *e)
{
	if (e == NULL)
		return 0;
	int m = e->kind == SQL_EXPR_PARAM ? e->param : 0, x;
	if ((x = plan__max_param(e->left)) > m)
		m = x;
	if ((x = plan__max_param(e->right)) > m)
		m = x;
	if ((x = plan__max_param(e->third)) > m)
		m = x;
	for (size_t i = 0; i < e->args.n; i++)
		if ((x = plan__max_param(e->args.items[i])) > m)
			m = x;
	return m;
}

/* ---- names ------------------------------------------------------------------------ */

int plan__column_of(plan_ctx *c, const sql_expr *col)
{
	const catalog_table *t = c->table;
	if (col->table != NULL) {
		const char *visible = c->alias != NULL ? c->alias : (t ? t->name : NULL);
		if (visible == NULL || strcmp(col->table, visible) != 0) {
			if (t != NULL && c->alias != NULL && strcmp(col->table, t->name) == 0)
				sql_error_set(c->err, "42P01", plan__pos(c, col->pos),
					      "invalid reference to FROM-clause entry for table \"%s\"",
					      col->table);
			else
				sql_error_set(c->err, "42P01", plan__pos(c, col->pos),
					      "missing FROM-clause entry for table \"%s\"", col->table);
			return -1;
		}
	}
	if (t != NULL)
		for (size_t i = 0; i < t->ncols; i++)
			if (strcmp(t->cols[i].name, col->name) == 0)
				return (int)i;
	if (col->table != NULL)
		sql_error_set(c->err, "42703", plan__pos(c, col->pos), "column %s.%s does not exist",
			      col->table, col->name);
	else
		sql_error_set(c->err, "42703", plan__pos(c, col->pos), "column \"%s\" does not exist",
			      col->name);
	return -1;
}

static const char *clause_name(plan_clause cl)
{
	switch (cl) {
	case PLAN_CLAUSE_WHERE: return "WHERE";
	case PLAN_CLAUSE_GROUP_BY: return "GROUP BY";
	case PLAN_CLAUSE_LIMIT: return "LIMIT";
	case PLAN_CLAUSE_VALUES: return "VALUES";
	case PLAN_CLAUSE_UPDATE: return "UPDATE";
	default: return "this clause";
	}
}

static int check_aggregate_args(plan_ctx *c, const sql_expr *e)
{
	size_t want = strcmp(e->name, "string_agg") == 0 ? 2 : 1;
	bool ok = e->star ? strcmp(e->name, "count") == 0 : e->args.n == want;
	if (!ok) {
		sql_error_set(c->err, "42883", plan__pos(c, e->pos),
			      "function %s with %zu argument%s does not exist", e->name,
			      e->args.n, e->args.n == 1 ? "" : "s");
		return -1;
	}
	if (e->distinct && strcmp(e->name, "string_agg") == 0) {
		sql_error_set(c->err, "0A000", plan__pos(c, e->pos),
			      "string_agg(DISTINCT ...) is not supported");
		return -1;
	}
	return 0;
}

static int resolve(plan_ctx *c, const sql_expr *e, plan_clause cl, bool in_agg)
{
	if (e == NULL)
		return 0;
	switch (e->kind) {
	case SQL_EXPR_COLUMN:
		if (cl == PLAN_CLAUSE_VALUES || cl == PLAN_CLAUSE_LIMIT || c->table == NULL) {
			if (e->table != NULL && c->table == NULL)
				sql_error_set(c->err, "42P01", plan__pos(c, e->pos),
					      "missing FROM-clause entry for table \"%s\"", e->table);
			else
				sql_error_set(c->err, "42703", plan__pos(c, e->pos),
					      "column \"%s\" does not exist", e->name);
			return -1;
		}
		return plan__column_of(c, e) < 0 ? -1 : 0;
	case SQL_EXPR_STAR:
		sql_error_set(c->err, "42601", plan__pos(c, e->pos), "syntax error at or near \"*\"");
		return -1;
	case SQL_EXPR_FUNC:
		if (sql_func_is_aggregate(e->name)) {
			if (cl != PLAN_CLAUSE_SELECT) {
				sql_error_set(c->err, "42803", plan__pos(c, e->pos),
					      "aggregate functions are not allowed in %s",
					      clause_name(cl));
				return -1;
			}
			if (in_agg) {
				sql_error_set(c->err, "42803", plan__pos(c, e->pos),
					      "aggregate function calls cannot be nested");
				return -1;
			}
			if (check_aggregate_args(c, e) != 0)
				return -1;
			in_agg = true;
		}
		break;
	default:
		break;
	}
	if (resolve(c, e->left, cl, in_agg) || resolve(c, e->right, cl, in_agg) ||
	    resolve(c, e->third, cl, in_agg))
		return -1;
	for (size_t i = 0; i < e->args.n; i++)
		if (resolve(c, e->args.items[i], cl, in_agg))
			return -1;
	return 0;
}

int plan__resolve(plan_ctx *c, const sql_expr *e, plan_clause clause)
{
	return resolve(c, e, clause, false);
}

/* ---- types ------------------------------------------------------------------------ */

static void set_param(plan_ctx *c, int param, uint32_t oid)
{
	if (param < 1 || (size_t)param > c->nptypes || oid == 0 || oid == PLAN_OID_UNKNOWN)
		return;
	if (c->ptypes[param - 1] == 0)
		c->ptypes[param - 1] = oid;
}

void plan__expect(plan_ctx *c, const sql_expr *e, uint32_t want)
{
	if (e == NULL)
		return;
	if (e->kind == SQL_EXPR_PARAM)
		set_param(c, e->param, want);
	else if (e->kind == SQL_EXPR_UNARY && e->op != SQL_OP_NOT)
		plan__expect(c, e->left, want);
}

static bool is_comparison(sql_op op)
{
	return op == SQL_OP_EQ || op == SQL_OP_NE || op == SQL_OP_LT || op == SQL_OP_LE ||
	       op == SQL_OP_GT || op == SQL_OP_GE || op == SQL_OP_IS_DISTINCT ||
	       op == SQL_OP_IS_NOT_DISTINCT;
}

static bool is_arith(sql_op op)
{
	return op == SQL_OP_ADD || op == SQL_OP_SUB || op == SQL_OP_MUL || op == SQL_OP_DIV ||
	       op == SQL_OP_MOD;
}

static uint32_t arith_type(uint32_t l, uint32_t r)
{
	if (l == PLAN_OID_UNKNOWN)
		l = r;
	if (r == PLAN_OID_UNKNOWN)
		r = l;
	if (plan__oid_is_float(l) || plan__oid_is_float(r))
		return PLAN_OID_FLOAT8;
	if (plan__oid_is_int(l) && plan__oid_is_int(r))
		return PLAN_OID_INT8;
	if (l == PLAN_OID_UNKNOWN)
		return PLAN_OID_UNKNOWN;
	return PLAN_OID_NUMERIC;
}

/* The first known type among a list, or UNKNOWN. */
static uint32_t common_type(const uint32_t *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (t[i] != PLAN_OID_UNKNOWN)
			return t[i];
	return PLAN_OID_UNKNOWN;
}

static bool name_in(const char *name, const char *const *names)
{
	for (; *names; names++)
		if (strcmp(name, *names) == 0)
			return true;
	return false;
}

static uint32_t func_type(plan_ctx *c, const sql_expr *e)
{
	static const char *const text_funcs[] = {
		"lower", "upper", "btrim", "trim", "ltrim", "rtrim", "replace", "substr",
		"substring", "concat", "left", "right", "lpad", "rpad", "repeat", "reverse",
		"initcap", "md5", "translate", "quote_ident", "quote_literal", "to_char",
		"string_agg", "hex", "typeof", "printf", "format", NULL,
	};
	static const char *const int4_funcs[] = {
		"length", "char_length", "character_length", "octet_length", "strpos",
		"instr", "position", NULL,
	};
	static const char *const float_funcs[] = {
		"random", "power", "pow", "sqrt", "exp", "ln", "log", "log10", "pi", "degrees",
		"radians", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", NULL,
	};
	static const char *const same_funcs[] = {
		"abs", "ceil", "ceiling", "floor", "sign", "min", "max", NULL,
	};
	static const char *const common_funcs[] = {
		"coalesce", "nullif", "greatest", "least", "ifnull", NULL,
	};
	size_t n = e->args.n;
	uint32_t small[8], *t = n <= 8 ? small : malloc(n * sizeof *t);
	uint32_t r = PLAN_OID_TEXT;
	if (t == NULL) {
		plan__oom(c);
		return PLAN_OID_UNKNOWN;
	}
	for (size_t i = 0; i < n; i++)
		t[i] = plan__type_of(c, e->args.items[i]);
	uint32_t a0 = n > 0 ? t[0] : PLAN_OID_UNKNOWN;
	const char *f = e->name;

	if (strcmp(f, "count") == 0) {
		r = PLAN_OID_INT8;
	} else if (strcmp(f, "sum") == 0) {
		r = plan__oid_is_int(a0)     ? PLAN_OID_INT8
		    : plan__oid_is_float(a0) ? PLAN_OID_FLOAT8
					     : PLAN_OID_NUMERIC;
	} else if (strcmp(f, "avg") == 0) {
		r = plan__oid_is_float(a0) ? PLAN_OID_FLOAT8 : PLAN_OID_NUMERIC;
	} else if (strcmp(f, "bool_and") == 0 || strcmp(f, "bool_or") == 0 ||
		   strcmp(f, "every") == 0) {
		for (size_t i = 0; i < n; i++)
			plan__expect(c, e->args.items[i], PLAN_OID_BOOL);
		r = PLAN_OID_BOOL;
	} else if (name_in(f, text_funcs)) {
		if (n > 0)
			plan__expect(c, e->args.items[0], PLAN_OID_TEXT);
		if (strcmp(f, "string_agg") == 0 && n > 1)
			plan__expect(c, e->args.items[1], PLAN_OID_TEXT);
		r = PLAN_OID_TEXT;
	} else if (name_in(f, int4_funcs)) {
		if (n > 0)
			plan__expect(c, e->args.items[0], PLAN_OID_TEXT);
		r = PLAN_OID_INT4;
	} else if (name_in(f, float_funcs)) {
		r = PLAN_OID_FLOAT8;
	} else if (strcmp(f, "round") == 0 || strcmp(f, "trunc") == 0) {
		r = plan__oid_is_float(a0) ? PLAN_OID_FLOAT8 : PLAN_OID_NUMERIC;
	} else if (strcmp(f, "mod") == 0) {
		r = arith_type(a0, n > 1 ? t[1] : PLAN_OID_UNKNOWN);
	} else if (strcmp(f, "now") == 0) {
		r = PLAN_OID_TIMESTAMP;
	} else if (name_in(f, same_funcs) || name_in(f, common_funcs)) {
		r = common_type(t, n);
		for (size_t i = 0; i < n; i++)
			if (t[i] == PLAN_OID_UNKNOWN)
				plan__expect(c, e->args.items[i], r);
	}
	if (t != small)
		free(t);
	return r;
}

uint32_t plan__type_of(plan_ctx *c, const sql_expr *e)
{
	uint32_t l, r, h, t;
	if (e == NULL)
		return PLAN_OID_UNKNOWN;
	switch (e->kind) {
	case SQL_EXPR_LITERAL:
		switch (e->lit.kind) {
		case SQL_LIT_INT:
			return e->lit.i >= INT32_MIN && e->lit.i <= INT32_MAX ? PLAN_OID_INT4
									      : PLAN_OID_INT8;
		case SQL_LIT_NUMERIC: return PLAN_OID_NUMERIC;
		case SQL_LIT_BOOL: return PLAN_OID_BOOL;
		default: return PLAN_OID_UNKNOWN;
		}
	case SQL_EXPR_PARAM:
		if (e->param >= 1 && (size_t)e->param <= c->nptypes && c->ptypes[e->param - 1] != 0)
			return c->ptypes[e->param - 1];
		return PLAN_OID_UNKNOWN;
	case SQL_EXPR_COLUMN:
		if (c->table != NULL)
			for (size_t i = 0; i < c->table->ncols; i++)
				if (strcmp(c->table->cols[i].name, e->name) == 0)
					return c->table->cols[i].oid;
		return PLAN_OID_UNKNOWN;
	case SQL_EXPR_UNARY:
		if (e->op == SQL_OP_NOT) {
			plan__expect(c, e->left, PLAN_OID_BOOL);
			plan__type_of(c, e->left);
			return PLAN_OID_BOOL;
		}
		return plan__type_of(c, e->left);
	case SQL_EXPR_BINARY:
		if (e->op == SQL_OP_AND || e->op == SQL_OP_OR) {
			plan__expect(c, e->left, PLAN_OID_BOOL);
			plan__expect(c, e->right, PLAN_OID_BOOL);
			plan__type_of(c, e->left);
			plan__type_of(c, e->right);
			return PLAN_OID_BOOL;
		}
		if (e->op == SQL_OP_CONCAT) {
			l = plan__type_of(c, e->left);
			r = plan__type_of(c, e->right);
			if (l == PLAN_OID_UNKNOWN)
				plan__expect(c, e->left, PLAN_OID_TEXT);
			if (r == PLAN_OID_UNKNOWN)
				plan__expect(c, e->right, PLAN_OID_TEXT);
			return PLAN_OID_TEXT;
		}
		l = plan__type_of(c, e->left);
		r = plan__type_of(c, e->right);
		if (l == PLAN_OID_UNKNOWN)
			plan__expect(c, e->left, r);
		if (r == PLAN_OID_UNKNOWN)
			plan__expect(c, e->right, l);
		if (is_comparison(e->op))
			return PLAN_OID_BOOL;
		return arith_type(l, r);
	case SQL_EXPR_IS:
		if (e->is_test != SQL_IS_NULL)
			plan__expect(c, e->left, PLAN_OID_BOOL);
		plan__type_of(c, e->left);
		return PLAN_OID_BOOL;
	case SQL_EXPR_IN: {
		t = plan__type_of(c, e->left);
		for (size_t i = 0; i < e->args.n; i++) {
			uint32_t a = plan__type_of(c, e->args.items[i]);
			if (t == PLAN_OID_UNKNOWN)
				t = a;
		}
		plan__expect(c, e->left, t);
		for (size_t i = 0; i < e->args.n; i++)
			plan__expect(c, e->args.items[i], t);
		return PLAN_OID_BOOL;
	}
	case SQL_EXPR_BETWEEN: {
		uint32_t ts[3] = {plan__type_of(c, e->left), plan__type_of(c, e->right),
				  plan__type_of(c, e->third)};
		t = common_type(ts, 3);
		plan__expect(c, e->left, t);
		plan__expect(c, e->right, t);
		plan__expect(c, e->third, t);
		return PLAN_OID_BOOL;
	}
	case SQL_EXPR_LIKE:
		plan__expect(c, e->left, PLAN_OID_TEXT);
		plan__expect(c, e->right, PLAN_OID_TEXT);
		plan__expect(c, e->third, PLAN_OID_TEXT);
		plan__type_of(c, e->left);
		plan__type_of(c, e->right);
		plan__type_of(c, e->third);
		return PLAN_OID_BOOL;
	case SQL_EXPR_FUNC:
		return func_type(c, e);
	case SQL_EXPR_CAST:
		t = sql_type_pg_oid(e->type.kind);
		plan__expect(c, e->left, t);
		plan__type_of(c, e->left);
		return t;
	case SQL_EXPR_CASE: {
		if (e->left != NULL) {
			l = plan__type_of(c, e->left);
			for (size_t i = 0; i + 1 < e->args.n; i += 2) {
				h = plan__type_of(c, e->args.items[i]);
				if (l == PLAN_OID_UNKNOWN)
					l = h;
			}
			plan__expect(c, e->left, l);
			for (size_t i = 0; i + 1 < e->args.n; i += 2)
				plan__expect(c, e->args.items[i], l);
		} else {
			for (size_t i = 0; i + 1 < e->args.n; i += 2) {
				plan__expect(c, e->args.items[i], PLAN_OID_BOOL);
				plan__type_of(c, e->args.items[i]);
			}
		}
		r = PLAN_OID_UNKNOWN;
		for (size_t i = 1; i < e->args.n; i += 2) {
			h = plan__type_of(c, e->args.items[i]);
			if (r == PLAN_OID_UNKNOWN)
				r = h;
		}
		h = plan__type_of(c, e->right);
		if (r == PLAN_OID_UNKNOWN)
			r = h;
		for (size_t i = 1; i < e->args.n; i += 2)
			plan__expect(c, e->args.items[i], r);
		plan__expect(c, e->right, r);
		return r;
	}
	case SQL_EXPR_CURRENT_TIMESTAMP:
		return PLAN_OID_TIMESTAMP;
	case SQL_EXPR_STAR:
		break;
	}
	return PLAN_OID_UNKNOWN;
}

/* ---- literal coercion ------------------------------------------------------------- */

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && isspace((unsigned char)**s))
		(*s)++, (*len)--;
	while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

bool plan__decimal_syntax(const char *s, size_t n)
{
	size_t i = 0, digits = 0;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	while (i < n && isdigit((unsigned char)s[i]))
		i++, digits++;
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && isdigit((unsigned char)s[i]))
			i++, digits++;
	}
	if (digits == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t ed = 0;
		while (i < n && isdigit((unsigned char)s[i]))
			i++, ed++;
		if (ed == 0)
			return false;
	}
	return i == n;
}

int plan__parse_int(const char *s, size_t n, uint32_t oid, int64_t *out)
{
	char buf[32];
	trim(&s, &n);
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	if (n <= i)
		return -1;
	for (size_t j = i; j < n; j++)
		if (!isdigit((unsigned char)s[j]))
			return -1;
	if (n >= sizeof buf)
		return -2;
	memcpy(buf, s, n);
	buf[n] = 0;
	errno = 0;
	long long v = strtoll(buf, NULL, 10);
	if (errno != 0 || (oid == PLAN_OID_INT4 && (v < INT32_MIN || v > INT32_MAX)) ||
	    (oid == PLAN_OID_INT2 && (v < INT16_MIN || v > INT16_MAX)))
		return -2;
	*out = v;
	return 0;
}

static bool prefix_of(const char *s, size_t n, const char *word, size_t min)
{
	if (n < min || n > strlen(word))
		return false;
	for (size_t i = 0; i < n; i++)
		if (tolower((unsigned char)s[i]) != word[i])
			return false;
	return true;
}

int plan__parse_bool(const char *s, size_t n)
{
	trim(&s, &n);
	if (n == 1 && s[0] == '1')
		return 1;
	if (n == 1 && s[0] == '0')
		return 0;
	if (prefix_of(s, n, "true", 1) || prefix_of(s, n, "yes", 1) || prefix_of(s, n, "on", 2))
		return 1;
	if (prefix_of(s, n, "false", 1) || prefix_of(s, n, "no", 1) || prefix_of(s, n, "off", 2))
		return 0;
	return -1;
}

/* A new literal of type oid from string literal e, or e unchanged when
 * the type takes strings as they are.  NULL with err. */
static sql_expr *convert_string(plan_ctx *c, const sql_expr *e, uint32_t oid)
{
	const char *s = e->lit.str;
	size_t n = e->lit.len;
	sql_expr *r;
	if (plan__oid_is_int(oid)) {
		int64_t v;
		int rc = plan__parse_int(s, n, oid, &v);
		if (rc == -1) {
			sql_error_set(c->err, "22P02", plan__pos(c, e->pos),
				      "invalid input syntax for type %s: \"%s\"", plan__oid_name(oid),
				      e->lit.str);
			return NULL;
		}
		if (rc == -2) {
			sql_error_set(c->err, "22003", plan__pos(c, e->pos),
				      "value \"%s\" is out of range for type %s", e->lit.str,
				      plan__oid_name(oid));
			return NULL;
		}
		if ((r = sql_expr_int(c->arena, v)) == NULL)
			goto oom;
		r->pos = e->pos;
		return r;
	}
	if (plan__oid_is_float(oid) || oid == PLAN_OID_NUMERIC) {
		trim(&s, &n);
		const char *special = NULL;
		if (plan__oid_is_float(oid)) {
			if (n == 8 && strncasecmp(s, "infinity", 8) == 0)
				special = "9e999";
			else if ((n == 9 && strncasecmp(s, "+infinity", 9) == 0))
				special = "9e999";
			else if (n == 9 && strncasecmp(s, "-infinity", 9) == 0)
				special = "-9e999";
		}
		if (special == NULL && !plan__decimal_syntax(s, n)) {
			sql_error_set(c->err, "22P02", plan__pos(c, e->pos),
				      "invalid input syntax for type %s: \"%s\"", plan__oid_name(oid),
				      e->lit.str);
			return NULL;
		}
		if ((r = sql_expr_new(c->arena, SQL_EXPR_LITERAL, e->pos)) == NULL)
			goto oom;
		r->lit.kind = SQL_LIT_NUMERIC;
		r->lit.str = special ? special : sql_arena_strndup(c->arena, s[0] == '+' ? s + 1 : s,
								      s[0] == '+' ? n - 1 : n);
		if (r->lit.str == NULL)
			goto oom;
		r->lit.len = strlen(r->lit.str);
		return r;
	}
	if (oid == PLAN_OID_BOOL) {
		int b = plan__parse_bool(s, n);
		if (b < 0) {
			sql_error_set(c->err, "22P02", plan__pos(c, e->pos),
				      "invalid input syntax for type boolean: \"%s\"", e->lit.str);
			return NULL;
		}
		if ((r = sql_expr_new(c->arena, SQL_EXPR_LITERAL, e->pos)) == NULL)
			goto oom;
		r->lit.kind = SQL_LIT_BOOL;
		r->lit.b = b == 1;
		return r;
	}
	return (sql_expr *)e;
oom:
	plan__oom(c);
	return NULL;
}

static bool is_string_literal(const sql_expr *e)
{
	return e != NULL && e->kind == SQL_EXPR_LITERAL && e->lit.kind == SQL_LIT_STRING;
}

static bool coercible(uint32_t oid)
{
	return plan__oid_is_int(oid) || plan__oid_is_float(oid) || oid == PLAN_OID_NUMERIC ||
	       oid == PLAN_OID_BOOL;
}

/* Coerce e if it is a string literal facing type `other`. */
static sql_expr *coerce_side(plan_ctx *c, sql_expr *e, uint32_t other)
{
	if (is_string_literal(e) && coercible(other))
		return convert_string(c, e, other);
	return e;
}

sql_expr *plan__coerce(plan_ctx *c, sql_expr *e)
{
	if (e == NULL)
		return NULL;
	sql_expr *l = e->left, *r = e->right, *t = e->third;
	bool changed = false;
	sql_expr_list args = e->args;
	bool args_copied = false;

#define SUB(x)                                          \
	do {                                            \
		if ((x) != NULL) {                      \
			sql_expr *nx = plan__coerce(c, (x)); \
			if (nx == NULL)                 \
				return NULL;            \
			if (nx != (x)) {                \
				(x) = nx;               \
				changed = true;         \
			}                               \
		}                                       \
	} while (0)

	SUB(l);
	SUB(r);
	SUB(t);
	for (size_t i = 0; i < e->args.n; i++) {
		sql_expr *a = e->args.items[i];
		sql_expr *na = plan__coerce(c, a);
		if (na == NULL)
			return NULL;
		if (na != a) {
			if (!args_copied) {
				if (sql_expr_list_copy(c->arena, &e->args, &args) != 0) {
					plan__oom(c);
					return NULL;
				}
				args_copied = true;
			}
			args.items[i] = na;
			changed = true;
		}
	}

	/* Untyped literal facing a typed operand. */
	if (e->kind == SQL_EXPR_BINARY && (is_comparison(e->op) || is_arith(e->op))) {
		uint32_t lt = plan__type_of(c, l), rt = plan__type_of(c, r);
		sql_expr *nl = coerce_side(c, l, rt), *nr = nl ? coerce_side(c, r, lt) : NULL;
		if (nl == NULL || nr == NULL)
			return NULL;
		changed |= nl != l || nr != r;
		l = nl;
		r = nr;
	} else if (e->kind == SQL_EXPR_IN || e->kind == SQL_EXPR_BETWEEN) {
		uint32_t lt = plan__type_of(c, l);
		if (e->kind == SQL_EXPR_BETWEEN) {
			sql_expr *nr = coerce_side(c, r, lt), *nt = nr ? coerce_side(c, t, lt) : NULL;
			if (nr == NULL || nt == NULL)
				return NULL;
			changed |= nr != r || nt != t;
			r = nr;
			t = nt;
		} else {
			for (size_t i = 0; i < args.n; i++) {
				sql_expr *a = args.items[i], *na = coerce_side(c, a, lt);
				if (na == NULL)
					return NULL;
				if (na != a) {
					if (!args_copied) {
						if (sql_expr_list_copy(c->arena, &e->args, &args) != 0) {
							plan__oom(c);
							return NULL;
						}
						args_copied = true;
					}
					args.items[i] = na;
					changed = true;
				}
			}
		}
	}
#undef SUB
	if (!changed)
		return e;
	sql_expr *n = plan__copy_node(c->arena, e);
	if (n == NULL) {
		plan__oom(c);
		return NULL;
	}
	n->left = l;
	n->right = r;
	n->third = t;
	if (args_copied)
		n->args = args;
	sql_expr_update_depth(n);
	return n;
}

sql_expr *plan__coerce_to(plan_ctx *c, sql_expr *e, uint32_t oid)
{
	if (is_string_literal(e) && coercible(oid))
		return convert_string(c, e, oid);
	return plan__coerce(c, e);
}
