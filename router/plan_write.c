/*
 * plan_write.c — INSERT, UPDATE and DELETE plans.
 *
 * INSERT: every value is checked and typed against its target column (an
 * untyped string literal becomes a literal of the column's type, 22P02 if
 * it does not convert; an untyped parameter takes the column's type).  The
 * statement is kept as a prefix ("INSERT INTO "t" ("a", "b") VALUES ") and
 * one rendered "(...)" text per row, plus each row's partition key operand
 * (a literal or a parameter), so that plan_requests() can send every shard
 * an INSERT holding only its own rows.  A partitioned table's key column
 * must be given (23502 otherwise, or when it is NULL), as a literal or a
 * parameter (0A000 for a computed key: the router must know its value).
 *
 * UPDATE / DELETE: one SQL text for every target shard; routing comes from
 * WHERE exactly as for SELECT.  Assigning the partition key is refused
 * (0A000): the row would have to move to another shard.
 *
 * Invariant: the SQL sent to shards names every target column explicitly,
 * so it does not depend on the shard's column order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plan_int.h"

static int column_index(const catalog_table *t, const char *name)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return (int)i;
	return -1;
}

static bool is_null_literal(const sql_expr *e)
{
	return e->kind == SQL_EXPR_LITERAL && e->lit.kind == SQL_LIT_NULL;
}

int plan__build_insert(plan_ctx *c, router_plan *p, const sql_insert *s)
{
	const catalog_table *t = c->table;
	size_t width = s->rows.n > 0 ? s->rows.items[0].n : 0;
	size_t ncols = s->columns.n > 0 ? s->columns.n : width;
	int *idx = sql_arena_alloc(c->arena, (ncols ? ncols : 1) * sizeof *idx);
	if (idx == NULL)
		goto oom;
	if (s->columns.n == 0 && width > t->ncols) {
		sql_error_set(c->err, "42601", plan__pos(c, s->rows.items[0].items[t->ncols]->pos),
			      "INSERT has more expressions than target columns");
		return -1;
	}
	for (size_t i = 0; i < ncols; i++) {
		const char *name = s->columns.n > 0 ? s->columns.items[i] : t->cols[i].name;
		if ((idx[i] = column_index(t, name)) < 0) {
			sql_error_set(c->err, "42703", plan__pos(c, s->table_pos),
				      "column \"%s\" of relation \"%s\" does not exist", name, t->name);
			return -1;
		}
	}
	int key = -1;
	if (t->partition_col >= 0) {
		for (size_t i = 0; i < ncols; i++)
			if (idx[i] == t->partition_col)
				key = (int)i;
		if (key < 0) {
			sql_error_set(c->err, "23502", 0,
				      "null value in column \"%s\" of relation \"%s\" violates not-null "
				      "constraint (the partition key must be given)",
				      t->cols[t->partition_col].name, t->name);
			return -1;
		}
	}

	sql_buf b;
	sql_buf_init(&b);
	sql_buf_puts(&b, "INSERT INTO ");
	sql_render_ident(&b, t->name);
	sql_buf_puts(&b, " (");
	for (size_t i = 0; i < ncols; i++) {
		if (i > 0)
			sql_buf_puts(&b, ", ");
		sql_render_ident(&b, t->cols[idx[i]].name);
	}
	sql_buf_puts(&b, ") VALUES ");
	p->insert_prefix = plan__buf_dup(c->arena, &b);
	sql_buf_free(&b);
	if (p->insert_prefix == NULL)
		goto oom;

	p->nrows = s->rows.n;
	p->rows = sql_arena_alloc(c->arena, (p->nrows ? p->nrows : 1) * sizeof *p->rows);
	if (p->rows == NULL)
		goto oom;
	/* Types first (a parameter may appear in several rows). */
	for (size_t r = 0; r < s->rows.n; r++) {
		const sql_expr_list *row = &s->rows.items[r];
		for (size_t i = 0; i < row->n; i++) {
			if (plan__resolve(c, row->items[i], PLAN_CLAUSE_VALUES) != 0)
				return -1;
			plan__expect(c, row->items[i], t->cols[idx[i]].oid);
			plan__type_of(c, row->items[i]);
		}
	}
	for (size_t r = 0; r < s->rows.n; r++) {
		const sql_expr_list *row = &s->rows.items[r];
		plan_row *pr = &p->rows[r];
		sql_buf_init(&b);
		sql_buf_puts(&b, "(");
		for (size_t i = 0; i < row->n; i++) {
			sql_expr *v = plan__coerce_to(c, row->items[i], t->cols[idx[i]].oid);
			if (v == NULL) {
				sql_buf_free(&b);
				return -1;
			}
			if ((int)i == key) {
				if (is_null_literal(v)) {
					sql_error_set(c->err, "23502", plan__pos(c, v->pos),
						      "null value in column \"%s\" of relation \"%s\" "
						      "violates not-null constraint",
						      t->cols[t->partition_col].name, t->name);
					sql_buf_free(&b);
					return -1;
				}
				if (!plan__operand_of(c, v, &pr->key)) {
					sql_error_set(c->err, "0A000", plan__pos(c, v->pos),
						      "a computed value for partition column \"%s\" is "
						      "not supported; give a literal or a parameter",
						      t->cols[t->partition_col].name);
					sql_buf_free(&b);
					return -1;
				}
			}
			if (i > 0)
				sql_buf_puts(&b, ", ");
			sql_render_expr(&b, v);
			int mp = plan__max_param(v);
			if (mp > pr->max_param)
				pr->max_param = mp;
		}
		sql_buf_puts(&b, ")");
		pr->text = (char *)plan__buf_dup(c->arena, &b);
		sql_buf_free(&b);
		if (pr->text == NULL)
			goto oom;
	}
	return 0;
oom:
	plan__oom(c);
	return -1;
}

static int where_clause(plan_ctx *c, const sql_expr *where, sql_expr **out)
{
	*out = NULL;
	if (where == NULL)
		return 0;
	if (plan__resolve(c, where, PLAN_CLAUSE_WHERE) != 0)
		return -1;
	for (int pass = 0; pass < 2; pass++) {
		plan__expect(c, where, PLAN_OID_BOOL);
		plan__type_of(c, where);
	}
	return (*out = plan__coerce(c, (sql_expr *)where)) ? 0 : -1;
}

/* b: the statement for one shard; fb: the same with the scatter's row
 * filter (plan__hidden_filter), for several. */
static int finish(plan_ctx *c, router_plan *p, sql_buf *b, sql_buf *fb, const sql_expr *where)
{
	p->sql_single = plan__buf_dup(c->arena, b);
	p->sql_scatter = fb->len ? plan__buf_dup(c->arena, fb) : p->sql_single;
	sql_buf_free(b);
	sql_buf_free(fb);
	if (p->sql_single == NULL || p->sql_scatter == NULL) {
		plan__oom(c);
		return -1;
	}
	return plan__route_extract(c, p, where);
}

int plan__build_update(plan_ctx *c, router_plan *p, const sql_update *s)
{
	const catalog_table *t = c->table;
	sql_update u = *s;
	memset(&u.set, 0, sizeof u.set);
	for (size_t i = 0; i < s->set.n; i++) {
		const sql_assignment *as = &s->set.items[i];
		int ci = column_index(t, as->column);
		if (ci < 0) {
			sql_error_set(c->err, "42703", plan__pos(c, as->pos),
				      "column \"%s\" of relation \"%s\" does not exist", as->column,
				      t->name);
			return -1;
		}
		if (ci == t->partition_col) {
			sql_error_set(c->err, "0A000", plan__pos(c, as->pos),
				      "updating the partition key \"%s\" of table \"%s\" is not "
				      "supported (delete the row and insert it again)",
				      as->column, t->name);
			return -1;
		}
		if (plan__resolve(c, as->value, PLAN_CLAUSE_UPDATE) != 0)
			return -1;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < s->set.n; i++) {
			int ci = column_index(t, s->set.items[i].column);
			plan__expect(c, s->set.items[i].value, t->cols[ci].oid);
			plan__type_of(c, s->set.items[i].value);
		}
		if (s->where) {
			plan__expect(c, s->where, PLAN_OID_BOOL);
			plan__type_of(c, s->where);
		}
	}
	for (size_t i = 0; i < s->set.n; i++) {
		sql_assignment as = s->set.items[i];
		int ci = column_index(t, as.column);
		if ((as.value = plan__coerce_to(c, as.value, t->cols[ci].oid)) == NULL)
			return -1;
		if (SQL_LIST_PUSH(c->arena, &u.set, as) != 0) {
			plan__oom(c);
			return -1;
		}
	}
	if (where_clause(c, s->where, &u.where) != 0)
		return -1;
	const char *filter = plan__hidden_filter(c);
	if (filter == NULL && c->err->sqlstate[0])
		return -1;
	sql_buf b, fb;
	sql_buf_init(&b);
	sql_buf_init(&fb);
	sql_render_update(&b, &u);
	if (filter)
		sql_render_update_filtered(&fb, &u, filter);
	return finish(c, p, &b, &fb, u.where);
}

int plan__build_delete(plan_ctx *c, router_plan *p, const sql_delete *s)
{
	sql_delete d = *s;
	if (where_clause(c, s->where, &d.where) != 0)
		return -1;
	const char *filter = plan__hidden_filter(c);
	if (filter == NULL && c->err->sqlstate[0])
		return -1;
	sql_buf b, fb;
	sql_buf_init(&b);
	sql_buf_init(&fb);
	sql_render_delete(&b, &d);
	if (filter)
		sql_render_delete_filtered(&fb, &d, filter);
	return finish(c, p, &b, &fb, d.where);
}
