/*
 * sql_render.c — the deparser: parse tree -> SQLite SQL text.
 *
 * What the rendering guarantees (docs/sql.md has the full table):
 *  - identifiers are always double-quoted ("t"."c"), strings single-quoted,
 *    so no name can be mistaken for a SQLite keyword;
 *  - every operator expression below the top of a clause is wrapped in
 *    parentheses and every binary operator has blanks around it, so SQLite's
 *    precedence never matters and "- -1" can never become a "--" comment;
 *  - TRUE/FALSE are 1/0, $n is ?n, ILIKE is lower(x) LIKE lower(p), LIKE
 *    gets PostgreSQL's default ESCAPE '\', ORDER BY items always say NULLS
 *    FIRST/LAST (PostgreSQL's defaults differ from SQLite's), OFFSET without
 *    LIMIT becomes LIMIT -1 OFFSET n, CURRENT_TIMESTAMP and now() become
 *    strftime('%Y-%m-%d %H:%M:%f', 'now'), casts map to SQLite affinities;
 *  - CREATE TABLE maps types to SQLite declared types and adds CHECKs that
 *    give PostgreSQL's behaviour (varchar length, boolean 0/1, int2/int4
 *    range) under reserved constraint names starting with '$';
 *  - recursion is bounded by RENDER_MAX_DEPTH, so a hand-built tree deeper
 *    than anything the parser accepts fails cleanly instead of overflowing.
 * Invariant of sql_buf: data[len] == 0 whenever data != NULL and !failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/sql.h"

#define RENDER_MAX_DEPTH (2 * SQL_MAX_DEPTH)

/* ---- buffer ------------------------------------------------------------------ */

void sql_buf_init(sql_buf *b)
{
	memset(b, 0, sizeof *b);
}

void sql_buf_free(sql_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void sql_buf_reset(sql_buf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data != NULL)
		b->data[0] = 0;
}

int sql_buf_append(sql_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return -1;
	if (n >= SIZE_MAX / 2 - b->len) {
		b->failed = true;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap < 64 ? 64 : b->cap;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (p == NULL) {
			b->failed = true;
			return -1;
		}
		b->data = p;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int sql_buf_puts(sql_buf *b, const char *s)
{
	return sql_buf_append(b, s, strlen(s));
}

int sql_buf_printf(sql_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return -1;
	}
	if ((size_t)n < sizeof small)
		return sql_buf_append(b, small, (size_t)n);
	char *big = malloc((size_t)n + 1);
	if (big == NULL) {
		b->failed = true;
		return -1;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int rc = sql_buf_append(b, big, (size_t)n);
	free(big);
	return rc;
}

/* ---- names and literals -------------------------------------------------------- */

int sql_render_ident(sql_buf *b, const char *name)
{
	sql_buf_append(b, "\"", 1);
	for (const char *p = name;;) {
		const char *q = strchr(p, '"');
		if (q == NULL) {
			sql_buf_puts(b, p);
			break;
		}
		sql_buf_append(b, p, (size_t)(q - p) + 1);
		sql_buf_append(b, "\"", 1);
		p = q + 1;
	}
	return sql_buf_append(b, "\"", 1);
}

/* One quoted piece without NULs. */
static void render_quoted(sql_buf *b, const char *s, size_t len)
{
	sql_buf_append(b, "'", 1);
	size_t i = 0;
	while (i < len) {
		const char *q = memchr(s + i, '\'', len - i);
		size_t n = q != NULL ? (size_t)(q - (s + i)) + 1 : len - i;
		sql_buf_append(b, s + i, n);
		if (q != NULL)
			sql_buf_append(b, "'", 1);
		i += n;
	}
	sql_buf_append(b, "'", 1);
}

int sql_render_string(sql_buf *b, const char *s, size_t len)
{
	/* A SQLite literal cannot hold NUL: splice char(0) in (only trees built
	 * by hand can contain one; the parser rejects NUL). */
	if (memchr(s, 0, len) == NULL) {
		render_quoted(b, s, len);
		return b->failed ? -1 : 0;
	}
	sql_buf_append(b, "(", 1);
	size_t i = 0;
	for (;;) {
		const char *z = memchr(s + i, 0, len - i);
		size_t n = z != NULL ? (size_t)(z - (s + i)) : len - i;
		render_quoted(b, s + i, n);
		if (z == NULL)
			break;
		sql_buf_puts(b, " || char(0) || ");
		i += n + 1;
	}
	return sql_buf_append(b, ")", 1);
}

const char *sql_type_sqlite(sql_type_kind kind)
{
	switch (kind) {
	case SQL_TYPE_BIGINT:
	case SQL_TYPE_INTEGER:
	case SQL_TYPE_SMALLINT:
	case SQL_TYPE_BOOLEAN:
		return "INTEGER";
	case SQL_TYPE_DOUBLE:
	case SQL_TYPE_REAL:
		return "REAL";
	case SQL_TYPE_NUMERIC:
		return "NUMERIC";
	case SQL_TYPE_BYTEA:
		return "BLOB";
	case SQL_TYPE_TEXT:
	case SQL_TYPE_VARCHAR:
	case SQL_TYPE_CHAR:
	case SQL_TYPE_TIMESTAMP:
	case SQL_TYPE_NONE:
		break;
	}
	return "TEXT";
}

/* ---- expressions ----------------------------------------------------------------- */

static int render(sql_buf *b, const sql_expr *e, int depth, bool top);

static const char *binary_op(sql_op op)
{
	switch (op) {
	case SQL_OP_ADD: return " + ";
	case SQL_OP_SUB: return " - ";
	case SQL_OP_MUL: return " * ";
	case SQL_OP_DIV: return " / ";
	case SQL_OP_MOD: return " % ";
	case SQL_OP_CONCAT: return " || ";
	case SQL_OP_EQ: return " = ";
	case SQL_OP_NE: return " <> ";
	case SQL_OP_LT: return " < ";
	case SQL_OP_LE: return " <= ";
	case SQL_OP_GT: return " > ";
	case SQL_OP_GE: return " >= ";
	case SQL_OP_IS_DISTINCT: return " IS NOT ";
	case SQL_OP_IS_NOT_DISTINCT: return " IS ";
	case SQL_OP_AND: return " AND ";
	case SQL_OP_OR: return " OR ";
	default: return NULL;
	}
}

static bool plain_name(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

#define NOW_SQL "strftime('%Y-%m-%d %H:%M:%f', 'now')"

static int render_list(sql_buf *b, const sql_expr_list *l, int depth)
{
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			sql_buf_append(b, ", ", 2);
		if (render(b, l->items[i], depth, true) < 0)
			return -1;
	}
	return b->failed ? -1 : 0;
}

/* PostgreSQL function names that SQLite spells differently. */
static const struct {
	const char *pg, *sqlite;
} func_renames[] = {
	{"string_agg", "group_concat"}, {"bool_and", "min"}, {"every", "min"},
	{"bool_or", "max"}, {"char_length", "length"},
	{"character_length", "length"}, {"strpos", "instr"},
	{"substring", "substr"}, {"greatest", "max"}, {"least", "min"},
	{"ceiling", "ceil"},
};

static int render_func(sql_buf *b, const sql_expr *e, int depth)
{
	const char *name = e->name;
	if (e->args.n == 0 && !e->star) {
		if (strcmp(name, "now") == 0)
			return sql_buf_puts(b, NOW_SQL);
		if (strcmp(name, "random") == 0) /* PostgreSQL: a double in [0, 1) */
			return sql_buf_puts(b, "((random() & 9223372036854775807) / 9223372036854775808.0)");
	}
	for (size_t i = 0; i < sizeof func_renames / sizeof func_renames[0]; i++)
		if (strcmp(name, func_renames[i].pg) == 0)
			name = func_renames[i].sqlite;
	if (plain_name(name))
		sql_buf_puts(b, name);
	else
		sql_render_ident(b, name);
	sql_buf_append(b, "(", 1);
	if (e->star) {
		sql_buf_append(b, "*", 1);
	} else {
		if (e->distinct)
			sql_buf_puts(b, "DISTINCT ");
		if (render_list(b, &e->args, depth + 1) < 0)
			return -1;
	}
	return sql_buf_append(b, ")", 1);
}

/* A string literal cast to bytea is decoded here, as PostgreSQL's input
 * function does: '\x0600ff'::bytea is the 3 bytes 06 00 ff (an SQLite blob
 * literal X'0600ff'), and other text stands for its own bytes.  Returns 1
 * when it rendered, 0 when the caller should render a plain CAST. */
static int render_bytea_literal(sql_buf *b, const sql_expr *e)
{
	const sql_expr *l = e->left;
	if (e->type.kind != SQL_TYPE_BYTEA || l == NULL || l->kind != SQL_EXPR_LITERAL ||
	    l->lit.kind != SQL_LIT_STRING)
		return 0;
	const char *str = l->lit.str;
	size_t len = l->lit.len;
	static const char hex[] = "0123456789abcdef";
	if (len >= 2 && str[0] == '\\' && (str[1] == 'x' || str[1] == 'X')) {
		if ((len - 2) % 2 != 0)
			return 0;
		for (size_t i = 2; i < len; i++)
			if (!strchr("0123456789abcdefABCDEF", str[i]))
				return 0;
		sql_buf_puts(b, "X'");
		sql_buf_append(b, str + 2, len - 2);
		sql_buf_puts(b, "'");
		return 1;
	}
	if (memchr(str, '\\', len))
		return 0;  /* the escape format is not decoded: keep the text */
	sql_buf_puts(b, "X'");
	for (size_t i = 0; i < len; i++) {
		char two[2] = {hex[(unsigned char)str[i] >> 4], hex[(unsigned char)str[i] & 15]};
		sql_buf_append(b, two, 2);
	}
	sql_buf_puts(b, "'");
	return 1;
}

static int render_cast(sql_buf *b, const sql_expr *e, int depth)
{
	const sql_type *t = &e->type;
	if (render_bytea_literal(b, e))
		return b->failed ? -1 : 0;
	bool cut = (t->kind == SQL_TYPE_VARCHAR || t->kind == SQL_TYPE_CHAR) &&
		   t->length > 0;
	/* PostgreSQL's cast to varchar(n)/char(n) truncates to n characters. */
	if (cut)
		sql_buf_puts(b, "substr(");
	sql_buf_puts(b, "CAST(");
	if (render(b, e->left, depth + 1, true) < 0)
		return -1;
	sql_buf_printf(b, " AS %s)", sql_type_sqlite(t->kind));
	if (cut)
		sql_buf_printf(b, ", 1, %" PRId32 ")", t->length);
	return b->failed ? -1 : 0;
}

static int render_literal(sql_buf *b, const sql_literal *l)
{
	switch (l->kind) {
	case SQL_LIT_NULL:
		return sql_buf_puts(b, "NULL");
	case SQL_LIT_INT:
		return sql_buf_printf(b, "%" PRId64, l->i);
	case SQL_LIT_NUMERIC:
		return sql_buf_puts(b, l->str);
	case SQL_LIT_STRING:
		return sql_render_string(b, l->str, l->len);
	case SQL_LIT_BOOL:
		return sql_buf_puts(b, l->b ? "1" : "0");
	}
	b->failed = true;
	return -1;
}

static int render(sql_buf *b, const sql_expr *e, int depth, bool top)
{
	const char *op;
	if (e == NULL || depth > RENDER_MAX_DEPTH || b->failed) {
		b->failed = true;
		return -1;
	}
	switch (e->kind) {
	case SQL_EXPR_LITERAL:
		return render_literal(b, &e->lit);
	case SQL_EXPR_PARAM:
		return sql_buf_printf(b, "?%d", e->param);
	case SQL_EXPR_COLUMN:
		if (e->table != NULL) {
			sql_render_ident(b, e->table);
			sql_buf_append(b, ".", 1);
		}
		return sql_render_ident(b, e->name);
	case SQL_EXPR_STAR:
		if (e->table != NULL) {
			sql_render_ident(b, e->table);
			sql_buf_append(b, ".", 1);
		}
		return sql_buf_append(b, "*", 1);
	case SQL_EXPR_CURRENT_TIMESTAMP:
		return sql_buf_puts(b, NOW_SQL);
	case SQL_EXPR_FUNC:
		return render_func(b, e, depth);
	case SQL_EXPR_CAST:
		return render_cast(b, e, depth);
	case SQL_EXPR_CASE:
		sql_buf_puts(b, "CASE");
		if (e->left != NULL) {
			sql_buf_append(b, " ", 1);
			if (render(b, e->left, depth + 1, false) < 0)
				return -1;
		}
		for (size_t i = 0; i + 1 < e->args.n; i += 2) {
			sql_buf_puts(b, " WHEN ");
			if (render(b, e->args.items[i], depth + 1, true) < 0)
				return -1;
			sql_buf_puts(b, " THEN ");
			if (render(b, e->args.items[i + 1], depth + 1, true) < 0)
				return -1;
		}
		if (e->right != NULL) {
			sql_buf_puts(b, " ELSE ");
			if (render(b, e->right, depth + 1, true) < 0)
				return -1;
		}
		return sql_buf_puts(b, " END");
	default:
		break;
	}

	/* Operators: parenthesised unless at the top of a clause. */
	if (!top)
		sql_buf_append(b, "(", 1);
	switch (e->kind) {
	case SQL_EXPR_UNARY:
		sql_buf_puts(b, e->op == SQL_OP_NOT ? "NOT " : e->op == SQL_OP_NEG ? "- " : "+ ");
		if (render(b, e->left, depth + 1, false) < 0)
			return -1;
		break;
	case SQL_EXPR_BINARY:
		op = binary_op(e->op);
		if (op == NULL) {
			b->failed = true;
			return -1;
		}
		if (render(b, e->left, depth + 1, false) < 0)
			return -1;
		sql_buf_puts(b, op);
		if (render(b, e->right, depth + 1, false) < 0)
			return -1;
		break;
	case SQL_EXPR_IS:
		if (render(b, e->left, depth + 1, false) < 0)
			return -1;
		sql_buf_puts(b, e->negated ? " IS NOT " : " IS ");
		sql_buf_puts(b, e->is_test == SQL_IS_TRUE    ? "TRUE"
				: e->is_test == SQL_IS_FALSE ? "FALSE"
							     : "NULL");
		break;
	case SQL_EXPR_IN:
		if (render(b, e->left, depth + 1, false) < 0)
			return -1;
		sql_buf_puts(b, e->negated ? " NOT IN (" : " IN (");
		if (render_list(b, &e->args, depth + 1) < 0)
			return -1;
		sql_buf_append(b, ")", 1);
		break;
	case SQL_EXPR_BETWEEN:
		if (render(b, e->left, depth + 1, false) < 0)
			return -1;
		sql_buf_puts(b, e->negated ? " NOT BETWEEN " : " BETWEEN ");
		if (render(b, e->right, depth + 1, false) < 0)
			return -1;
		sql_buf_puts(b, " AND ");
		if (render(b, e->third, depth + 1, false) < 0)
			return -1;
		break;
	case SQL_EXPR_LIKE:
		/* ILIKE: fold both sides, correct whatever the shard's
		 * case_sensitive_like setting is. */
		if (e->ilike)
			sql_buf_puts(b, "lower(");
		if (render(b, e->left, depth + 1, !!e->ilike) < 0)
			return -1;
		sql_buf_puts(b, e->ilike ? ")" : "");
		sql_buf_puts(b, e->negated ? " NOT LIKE " : " LIKE ");
		if (e->ilike)
			sql_buf_puts(b, "lower(");
		if (render(b, e->right, depth + 1, !!e->ilike) < 0)
			return -1;
		sql_buf_puts(b, e->ilike ? ")" : "");
		sql_buf_puts(b, " ESCAPE ");
		if (e->third == NULL)
			sql_buf_puts(b, "'\\'");
		else if (render(b, e->third, depth + 1, false) < 0)
			return -1;
		break;
	default:
		b->failed = true;
		return -1;
	}
	if (!top)
		sql_buf_append(b, ")", 1);
	return b->failed ? -1 : 0;
}

int sql_render_expr(sql_buf *b, const sql_expr *e)
{
	return render(b, e, 0, true);
}

/* ---- statements ---------------------------------------------------------------------- */

int sql_render_select_items(sql_buf *b, const sql_select_item_list *items)
{
	for (size_t i = 0; i < items->n; i++) {
		if (i > 0)
			sql_buf_append(b, ", ", 2);
		if (render(b, items->items[i].expr, 0, true) < 0)
			return -1;
		if (items->items[i].alias != NULL) {
			sql_buf_puts(b, " AS ");
			sql_render_ident(b, items->items[i].alias);
		}
	}
	return b->failed ? -1 : 0;
}

int sql_render_order_by(sql_buf *b, const sql_order_list *order)
{
	for (size_t i = 0; i < order->n; i++) {
		const sql_order_item *o = &order->items[i];
		sql_nulls nulls = o->nulls;
		if (nulls == SQL_NULLS_DEFAULT)
			nulls = o->desc ? SQL_NULLS_FIRST : SQL_NULLS_LAST;
		if (i > 0)
			sql_buf_append(b, ", ", 2);
		if (render(b, o->expr, 0, true) < 0)
			return -1;
		sql_buf_puts(b, o->desc ? " DESC" : "");
		sql_buf_puts(b, nulls == SQL_NULLS_FIRST ? " NULLS FIRST" : " NULLS LAST");
	}
	return b->failed ? -1 : 0;
}

/* " WHERE where", with `filter` (raw SQLite, or NULL) ANDed to it. */
static int render_where(sql_buf *b, const sql_expr *where, const char *filter)
{
	if (where == NULL && filter == NULL)
		return 0;
	sql_buf_puts(b, " WHERE ");
	if (where == NULL) {
		sql_buf_puts(b, filter);
		return b->failed ? -1 : 0;
	}
	if (filter == NULL)
		return render(b, where, 0, true);
	sql_buf_puts(b, "(");
	if (render(b, where, 0, true) < 0)
		return -1;
	sql_buf_puts(b, ") AND ");
	sql_buf_puts(b, filter);
	return b->failed ? -1 : 0;
}

int sql_render_select(sql_buf *b, const sql_select *s)
{
	return sql_render_select_filtered(b, s, NULL);
}

int sql_render_select_filtered(sql_buf *b, const sql_select *s, const char *filter)
{
	sql_buf_puts(b, s->distinct ? "SELECT DISTINCT " : "SELECT ");
	if (sql_render_select_items(b, &s->items) < 0)
		return -1;
	if (s->from != NULL) {
		sql_buf_puts(b, " FROM ");
		sql_render_ident(b, s->from->name);
		if (s->from->alias != NULL) {
			sql_buf_puts(b, " AS ");
			sql_render_ident(b, s->from->alias);
		}
	}
	if (render_where(b, s->where, filter) < 0)
		return -1;
	if (s->group_by.n > 0) {
		sql_buf_puts(b, " GROUP BY ");
		if (render_list(b, &s->group_by, 0) < 0)
			return -1;
	}
	if (s->having != NULL) {
		sql_buf_puts(b, " HAVING ");
		if (render(b, s->having, 0, true) < 0)
			return -1;
	}
	if (s->order_by.n > 0) {
		sql_buf_puts(b, " ORDER BY ");
		if (sql_render_order_by(b, &s->order_by) < 0)
			return -1;
	}
	if (s->limit != NULL || s->offset != NULL) {
		sql_buf_puts(b, " LIMIT ");
		if (s->limit == NULL)
			sql_buf_puts(b, "-1");
		else if (render(b, s->limit, 0, true) < 0)
			return -1;
		if (s->offset != NULL) {
			sql_buf_puts(b, " OFFSET ");
			if (render(b, s->offset, 0, true) < 0)
				return -1;
		}
	}
	return b->failed ? -1 : 0;
}

static void render_names(sql_buf *b, const sql_name_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			sql_buf_append(b, ", ", 2);
		sql_render_ident(b, l->items[i]);
	}
}

int sql_render_insert(sql_buf *b, const sql_insert *s)
{
	sql_buf_puts(b, "INSERT INTO ");
	sql_render_ident(b, s->table);
	if (s->columns.n > 0) {
		sql_buf_puts(b, " (");
		render_names(b, &s->columns);
		sql_buf_append(b, ")", 1);
	}
	sql_buf_puts(b, " VALUES ");
	for (size_t r = 0; r < s->rows.n; r++) {
		sql_buf_puts(b, r > 0 ? ", (" : "(");
		if (render_list(b, &s->rows.items[r], 0) < 0)
			return -1;
		sql_buf_append(b, ")", 1);
	}
	return b->failed ? -1 : 0;
}

int sql_render_update(sql_buf *b, const sql_update *s)
{
	return sql_render_update_filtered(b, s, NULL);
}

int sql_render_update_filtered(sql_buf *b, const sql_update *s, const char *filter)
{
	sql_buf_puts(b, "UPDATE ");
	sql_render_ident(b, s->table);
	sql_buf_puts(b, " SET ");
	for (size_t i = 0; i < s->set.n; i++) {
		if (i > 0)
			sql_buf_append(b, ", ", 2);
		sql_render_ident(b, s->set.items[i].column);
		sql_buf_puts(b, " = ");
		if (render(b, s->set.items[i].value, 0, true) < 0)
			return -1;
	}
	if (render_where(b, s->where, filter) < 0)
		return -1;
	return b->failed ? -1 : 0;
}

int sql_render_delete(sql_buf *b, const sql_delete *s)
{
	return sql_render_delete_filtered(b, s, NULL);
}

int sql_render_delete_filtered(sql_buf *b, const sql_delete *s, const char *filter)
{
	sql_buf_puts(b, "DELETE FROM ");
	sql_render_ident(b, s->table);
	if (render_where(b, s->where, filter) < 0)
		return -1;
	return b->failed ? -1 : 0;
}

static int render_check(sql_buf *b, const char *name, const sql_expr *e)
{
	if (name != NULL) {
		sql_buf_puts(b, " CONSTRAINT ");
		sql_render_ident(b, name);
	}
	sql_buf_puts(b, " CHECK (");
	if (render(b, e, 0, true) < 0)
		return -1;
	return sql_buf_append(b, ")", 1);
}

static int render_column(sql_buf *b, const sql_column_def *c)
{
	const sql_type *t = &c->type;
	sql_render_ident(b, c->name);
	sql_buf_printf(b, " %s", sql_type_sqlite(t->kind));
	if (c->not_null || c->primary_key)
		sql_buf_puts(b, " NOT NULL");
	if (c->unique)
		sql_buf_puts(b, " UNIQUE");
	if (c->default_value != NULL) {
		sql_buf_puts(b, " DEFAULT (");
		if (render(b, c->default_value, 0, true) < 0)
			return -1;
		sql_buf_append(b, ")", 1);
	}
	for (size_t i = 0; i < c->checks.n; i++)
		if (render_check(b, c->checks.items[i].name, c->checks.items[i].expr) < 0)
			return -1;
	/* PostgreSQL behaviour SQLite lacks, as CHECKs with reserved names
	 * the router maps back to PostgreSQL's errors (docs/sql.md). */
	switch (t->kind) {
	case SQL_TYPE_VARCHAR:
	case SQL_TYPE_CHAR:
		if (t->length > 0) {
			sql_buf_printf(b, " CONSTRAINT \"$%s(%" PRId32 ")\" CHECK (length(",
				       t->kind == SQL_TYPE_VARCHAR ? "varchar" : "char", t->length);
			sql_render_ident(b, c->name);
			sql_buf_printf(b, ") <= %" PRId32 ")", t->length);
		}
		break;
	case SQL_TYPE_BOOLEAN:
		sql_buf_puts(b, " CONSTRAINT \"$bool\" CHECK (");
		sql_render_ident(b, c->name);
		sql_buf_puts(b, " IN (0, 1))");
		break;
	case SQL_TYPE_SMALLINT:
	case SQL_TYPE_INTEGER: {
		bool small = t->kind == SQL_TYPE_SMALLINT;
		sql_buf_printf(b, " CONSTRAINT \"$%s\" CHECK (", small ? "int2" : "int4");
		sql_render_ident(b, c->name);
		sql_buf_puts(b, small ? " BETWEEN -32768 AND 32767)"
				      : " BETWEEN -2147483648 AND 2147483647)");
		break;
	}
	default:
		break;
	}
	return b->failed ? -1 : 0;
}

int sql_render_create_table(sql_buf *b, const sql_create_table *s)
{
	sql_buf_puts(b, s->if_not_exists ? "CREATE TABLE IF NOT EXISTS " : "CREATE TABLE ");
	sql_render_ident(b, s->name);
	sql_buf_puts(b, " (");
	bool first = true;
	for (size_t i = 0; i < s->columns.n; i++, first = false) {
		if (!first)
			sql_buf_append(b, ", ", 2);
		if (render_column(b, &s->columns.items[i]) < 0)
			return -1;
	}
	if (s->primary_key.n > 0) {
		sql_buf_puts(b, first ? "PRIMARY KEY (" : ", PRIMARY KEY (");
		render_names(b, &s->primary_key);
		sql_buf_append(b, ")", 1);
		first = false;
	}
	for (size_t i = 0; i < s->uniques.n; i++, first = false) {
		sql_buf_puts(b, first ? "UNIQUE (" : ", UNIQUE (");
		render_names(b, &s->uniques.items[i]);
		sql_buf_append(b, ")", 1);
	}
	for (size_t i = 0; i < s->checks.n; i++, first = false) {
		if (!first)
			sql_buf_append(b, ",", 1);
		if (render_check(b, s->checks.items[i].name, s->checks.items[i].expr) < 0)
			return -1;
	}
	return sql_buf_append(b, ")", 1);
}

int sql_render_create_index(sql_buf *b, const sql_create_index *s)
{
	sql_buf_puts(b, s->unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
	if (s->if_not_exists)
		sql_buf_puts(b, "IF NOT EXISTS ");
	sql_render_ident(b, s->name);
	sql_buf_puts(b, " ON ");
	sql_render_ident(b, s->table);
	sql_buf_puts(b, " (");
	for (size_t i = 0; i < s->columns.n; i++) {
		if (i > 0)
			sql_buf_append(b, ", ", 2);
		sql_render_ident(b, s->columns.items[i].name);
		if (s->columns.items[i].desc)
			sql_buf_puts(b, " DESC");
	}
	return sql_buf_append(b, ")", 1);
}

int sql_render_drop_table(sql_buf *b, const sql_drop_table *s)
{
	sql_buf_puts(b, s->if_exists ? "DROP TABLE IF EXISTS " : "DROP TABLE ");
	return sql_render_ident(b, s->name);
}

static int render_set(sql_buf *b, const sql_set *s)
{
	if (s->reset) {
		sql_buf_puts(b, "RESET ");
		if (s->name == NULL)
			return sql_buf_puts(b, "ALL");
		return sql_render_ident(b, s->name);
	}
	sql_buf_puts(b, s->local ? "SET LOCAL " : "SET ");
	sql_render_ident(b, s->name);
	sql_buf_puts(b, " TO ");
	switch (s->kind) {
	case SQL_SET_DEFAULT:
		return sql_buf_puts(b, "DEFAULT");
	case SQL_SET_INT:
	case SQL_SET_NUMERIC:
		return sql_buf_puts(b, s->value);
	case SQL_SET_STRING:
	case SQL_SET_IDENT:
	case SQL_SET_BOOL:
		break;
	}
	return sql_render_string(b, s->value, strlen(s->value));
}

static int render_show(sql_buf *b, const sql_show *s)
{
	static const char *const names[] = {
		[SQL_SHOW_TABLES] = "TABLES", [SQL_SHOW_SHARDS] = "SHARDS",
		[SQL_SHOW_TRANSACTIONS] = "TRANSACTIONS", [SQL_SHOW_SAGAS] = "SAGAS",
		[SQL_SHOW_REBALANCE] = "REBALANCE",
		[SQL_SHOW_RANGES] = "RANGES",
	};
	sql_buf_puts(b, "SHOW ");
	if (s->what == SQL_SHOW_VAR)
		return sql_render_ident(b, s->name);
	return sql_buf_puts(b, names[s->what]);
}

int sql_render_stmt(sql_buf *b, const sql_stmt *s)
{
	switch (s->kind) {
	case SQL_STMT_SELECT: return sql_render_select(b, &s->select);
	case SQL_STMT_INSERT: return sql_render_insert(b, &s->insert);
	case SQL_STMT_UPDATE: return sql_render_update(b, &s->update);
	case SQL_STMT_DELETE: return sql_render_delete(b, &s->delete_);
	case SQL_STMT_CREATE_TABLE: return sql_render_create_table(b, &s->create_table);
	case SQL_STMT_DROP_TABLE: return sql_render_drop_table(b, &s->drop_table);
	case SQL_STMT_CREATE_INDEX: return sql_render_create_index(b, &s->create_index);
	case SQL_STMT_BEGIN: return sql_buf_puts(b, s->begin.saga ? "BEGIN SAGA" : "BEGIN");
	case SQL_STMT_COMMIT:
	case SQL_STMT_ROLLBACK:
		sql_buf_puts(b, s->kind == SQL_STMT_COMMIT ? "COMMIT" : "ROLLBACK");
		if (s->prepared_gid) {
			sql_buf_puts(b, " PREPARED ");
			sql_render_string(b, s->prepared_gid, strlen(s->prepared_gid));
		}
		return b->failed ? -1 : 0;
	case SQL_STMT_SET: return render_set(b, &s->set);
	case SQL_STMT_SHOW: return render_show(b, &s->show);
	case SQL_STMT_EXPLAIN:
		sql_buf_puts(b, "EXPLAIN ");
		if (s->explain.analyze)
			sql_buf_puts(b, "ANALYZE ");
		if (s->explain.verbose)
			sql_buf_puts(b, "VERBOSE ");
		return sql_render_stmt(b, s->explain.stmt);
	case SQL_STMT_ADD_SHARD:
		sql_buf_puts(b, "ALTER CLUSTER ADD SHARD ");
		return sql_render_string(b, s->add_shard.address, strlen(s->add_shard.address));
	case SQL_STMT_REBALANCE:
		sql_buf_puts(b, "REBALANCE");
		if (s->rebalance.table) {
			sql_buf_puts(b, " TABLE ");
			sql_render_ident(b, s->rebalance.table);
		}
		return b->failed ? -1 : 0;
	case SQL_STMT_MOVE_BUCKET:
		sql_buf_puts(b, "MOVE BUCKET ");
		for (size_t i = 0; i < s->move.nbuckets; i++)
			sql_buf_printf(b, "%s%u", i ? ", " : "", s->move.buckets[i]);
		sql_buf_printf(b, " TO SHARD %u", s->move.shard);
		return b->failed ? -1 : 0;
	case SQL_STMT_CANCEL_REBALANCE:
		return sql_buf_puts(b, "CANCEL REBALANCE");
	case SQL_STMT_SPLIT_RANGE:
		sql_buf_puts(b, "ALTER TABLE ");
		sql_render_ident(b, s->alter_range.table);
		sql_buf_puts(b, " SPLIT AT (");
		sql_render_expr(b, s->alter_range.value);
		sql_buf_puts(b, ")");
		return b->failed ? -1 : 0;
	case SQL_STMT_MOVE_RANGE:
		sql_buf_puts(b, "ALTER TABLE ");
		sql_render_ident(b, s->alter_range.table);
		sql_buf_printf(b, " MOVE RANGE %u TO SHARD %u", s->alter_range.range, s->alter_range.shard);
		return b->failed ? -1 : 0;
	case SQL_STMT_REMOVE_SHARD:
		sql_buf_printf(b, "ALTER CLUSTER REMOVE SHARD %u", s->move.shard);
		return b->failed ? -1 : 0;
	case SQL_STMT_RESOLVE_SAGA:
		sql_buf_puts(b, "RESOLVE SAGA ");
		sql_render_string(b, s->prepared_gid, strlen(s->prepared_gid));
		sql_buf_puts(b, s->resolve_mode == 1 ? " OVERWRITE" : " ACCEPT");
		return b->failed ? -1 : 0;
	}
	b->failed = true;
	return -1;
}
