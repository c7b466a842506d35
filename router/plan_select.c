/*
 * plan_select.c — SELECT: names and types, then three SQL texts.
 *
 *   sql_single   the whole query, for when one shard holds every row that
 *                can match (point lookups, reference tables, no FROM); its
 *                rows go to the client untouched.
 *   sql_scatter  what every shard runs when several do, producing rows of a
 *                table m(c0, c1, ...);
 *   sql_merge    what the router runs over the union of those rows, in a
 *                private in-memory SQLite database (merge.c).
 *
 * Plain queries without DISTINCT, ORDER BY, LIMIT or OFFSET need no merge
 * query: the answers are concatenated (plan->merge_concat).  Other plain
 * queries: shards return the output columns plus any ORDER BY key
 * that is not one of them; with LIMIT they also sort and return only
 * limit + offset rows (the global top rows are among the union of every
 * shard's top rows); DISTINCT is applied on both sides.  The merge query
 * re-applies DISTINCT, ORDER BY, LIMIT and OFFSET.
 *
 * Aggregate queries (GROUP BY, HAVING or an aggregate anywhere): shards
 * group by the GROUP BY keys plus the arguments of DISTINCT aggregates and
 * return partial aggregates; the merge query groups by the keys again and
 * combines them:
 *     count(x)  -> coalesce(sum(partial), 0)     sum -> sum(partial)
 *     min, max  -> min, max of partials           avg -> sum(s) / sum(n)
 *     string_agg(x, sep) -> string_agg(partial, sep)
 *     bool_and/every, bool_or -> themselves over partials
 *     agg(DISTINCT x) -> agg(DISTINCT x) over the x column
 * then applies HAVING, DISTINCT, ORDER BY, LIMIT and OFFSET.  Grouping the
 * shards by the distinct arguments too keeps the other aggregates exact:
 * partial sums and counts over finer groups still add up.
 *
 * Shard SQL never carries output aliases (results are positional), so an
 * alias can never capture a name in ORDER BY or GROUP BY on the shard; and
 * ORDER BY / GROUP BY positions are replaced by the expressions they name
 * (integer constants are wrapped in a CAST so SQLite does not read them as
 * positions again).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plan_int.h"

typedef struct {
	sql_expr *expr;
	const char *name;
	uint32_t type;
} out_col;

typedef struct {
	sql_expr *expr;        /* resolved */
	bool desc;
	sql_nulls nulls;
	int item;              /* output column it is, or -1 */
} order_key;

typedef struct {
	const sql_expr *call;  /* the aggregate call, as written (coerced) */
	sql_expr *merge;       /* its merge expression over m's columns */
} agg_info;

typedef struct {
	plan_ctx *c;
	const sql_select *s;
	out_col *cols;
	size_t ncols;
	sql_expr **groups;
	size_t ngroups;
	order_key *order;
	size_t norder;
	sql_expr *where, *having, *limit, *offset;
	bool agg;
	sql_expr *hidden;      /* a hidden last output column, or NULL */

	/* scatter shard items, in m's column order */
	sql_select_item_list shard_items;
	size_t *group_col;     /* m column of each group key */
	agg_info *aggs;
	size_t naggs, cap_aggs;
	sql_expr **dkeys;      /* DISTINCT aggregate arguments */
	size_t *dkey_col;
	size_t ndkeys, cap_dkeys;
} sel_state;

static sql_expr *mcol(sel_state *st, size_t i)
{
	char name[24];
	snprintf(name, sizeof name, "c%zu", i);
	return sql_expr_column(st->c->arena, NULL, name);
}

static int push_shard_item(sel_state *st, sql_expr *e, size_t *col)
{
	sql_select_item it = {e, NULL};
	*col = st->shard_items.n;
	return SQL_LIST_PUSH(st->c->arena, &st->shard_items, it);
}

/* An integer literal in GROUP BY / ORDER BY would be read as a position. */
static sql_expr *defuse(plan_ctx *c, sql_expr *e)
{
	if (e == NULL || e->kind != SQL_EXPR_LITERAL || e->lit.kind != SQL_LIT_INT)
		return e;
	sql_type t = {SQL_TYPE_BIGINT, -1, -1, -1};
	sql_expr *n = sql_expr_cast(c->arena, e, t);
	if (n == NULL)
		plan__oom(c);
	return n;
}

static bool is_int_literal(const sql_expr *e, int64_t *v)
{
	if (e != NULL && e->kind == SQL_EXPR_LITERAL && e->lit.kind == SQL_LIT_INT) {
		*v = e->lit.i;
		return true;
	}
	return false;
}

/* ---- names ---------------------------------------------------------------------- */

static int expand_items(sel_state *st)
{
	plan_ctx *c = st->c;
	const sql_select *s = st->s;
	size_t n = 0;
	for (size_t i = 0; i < s->items.n; i++) {
		const sql_expr *e = s->items.items[i].expr;
		if (e->kind == SQL_EXPR_STAR) {
			if (c->table == NULL) {
				sql_error_set(c->err, "42601", plan__pos(c, e->pos),
					      "SELECT * with no tables specified is not valid");
				return -1;
			}
			if (e->table != NULL) {
				const char *visible = c->alias ? c->alias : c->table->name;
				if (strcmp(e->table, visible) != 0) {
					sql_error_set(c->err, "42P01", plan__pos(c, e->pos),
						      "missing FROM-clause entry for table \"%s\"",
						      e->table);
					return -1;
				}
			}
			n += c->table->ncols;
		} else {
			n++;
		}
	}
	st->cols = sql_arena_alloc(c->arena, (n ? n : 1) * sizeof *st->cols);
	if (st->cols == NULL)
		goto oom;
	for (size_t i = 0; i < s->items.n; i++) {
		const sql_select_item *it = &s->items.items[i];
		if (it->expr->kind == SQL_EXPR_STAR) {
			for (size_t j = 0; j < c->table->ncols; j++) {
				sql_expr *col = sql_expr_column(c->arena, NULL, c->table->cols[j].name);
				if (col == NULL)
					goto oom;
				col->pos = it->expr->pos;
				st->cols[st->ncols++] = (out_col){col, c->table->cols[j].name, 0};
			}
			continue;
		}
		if (plan__resolve(c, it->expr, PLAN_CLAUSE_SELECT) != 0)
			return -1;
		const char *name = sql_arena_strdup(c->arena, sql_select_item_name(it));
		if (name == NULL)
			goto oom;
		st->cols[st->ncols++] = (out_col){it->expr, name, 0};
	}
	return 0;
oom:
	plan__oom(c);
	return -1;
}

static int resolve_group_by(sel_state *st)
{
	plan_ctx *c = st->c;
	const sql_expr_list *g = &st->s->group_by;
	st->groups = sql_arena_alloc(c->arena, (g->n ? g->n : 1) * sizeof *st->groups);
	if (st->groups == NULL) {
		plan__oom(c);
		return -1;
	}
	for (size_t i = 0; i < g->n; i++) {
		sql_expr *e = g->items[i];
		int64_t k;
		if (is_int_literal(e, &k)) {
			if (k < 1 || (uint64_t)k > st->ncols) {
				sql_error_set(c->err, "42P10", plan__pos(c, e->pos),
					      "GROUP BY position %lld is not in select list", (long long)k);
				return -1;
			}
			e = st->cols[k - 1].expr;
			if (plan__has_aggregate(e)) {
				sql_error_set(c->err, "42803", plan__pos(c, g->items[i]->pos),
					      "aggregate functions are not allowed in GROUP BY");
				return -1;
			}
		} else if (e->kind == SQL_EXPR_COLUMN && e->table == NULL && c->table != NULL) {
			/* An input column first, then an output column name. */
			bool input = false;
			for (size_t j = 0; j < c->table->ncols; j++)
				input |= strcmp(c->table->cols[j].name, e->name) == 0;
			if (!input) {
				for (size_t j = 0; j < st->ncols; j++) {
					if (strcmp(st->cols[j].name, e->name) == 0) {
						e = st->cols[j].expr;
						break;
					}
				}
				if (plan__has_aggregate(e)) {
					sql_error_set(c->err, "42803", plan__pos(c, g->items[i]->pos),
						      "aggregate functions are not allowed in GROUP BY");
					return -1;
				}
			}
			if (e == g->items[i] && plan__resolve(c, e, PLAN_CLAUSE_GROUP_BY) != 0)
				return -1;
		} else if (plan__resolve(c, e, PLAN_CLAUSE_GROUP_BY) != 0) {
			return -1;
		}
		st->groups[st->ngroups++] = e;
	}
	return 0;
}

static int resolve_order_by(sel_state *st)
{
	plan_ctx *c = st->c;
	const sql_order_list *o = &st->s->order_by;
	st->order = sql_arena_alloc(c->arena, (o->n ? o->n : 1) * sizeof *st->order);
	if (st->order == NULL) {
		plan__oom(c);
		return -1;
	}
	for (size_t i = 0; i < o->n; i++) {
		sql_expr *e = o->items[i].expr;
		int item = -1;
		int64_t k;
		if (is_int_literal(e, &k)) {
			if (k < 1 || (uint64_t)k > st->ncols) {
				sql_error_set(c->err, "42P10", plan__pos(c, e->pos),
					      "ORDER BY position %lld is not in select list", (long long)k);
				return -1;
			}
			item = (int)(k - 1);
		} else if (e->kind == SQL_EXPR_COLUMN && e->table == NULL) {
			/* An output column name first (PostgreSQL's rule). */
			for (size_t j = 0; j < st->ncols; j++) {
				if (strcmp(st->cols[j].name, e->name) == 0) {
					item = (int)j;
					break;
				}
			}
		}
		if (item < 0 && plan__resolve(c, e, PLAN_CLAUSE_SELECT) != 0)
			return -1;
		st->order[st->norder++] =
			(order_key){item >= 0 ? st->cols[item].expr : e, o->items[i].desc,
				    o->items[i].nulls, item};
	}
	return 0;
}

static int check_limit(sel_state *st, sql_expr **slot, const char *what, const char *state)
{
	plan_ctx *c = st->c;
	sql_expr *e = *slot;
	if (e == NULL)
		return 0;
	if (plan__resolve(c, e, PLAN_CLAUSE_LIMIT) != 0)
		return -1;
	plan__expect(c, e, PLAN_OID_INT8);
	plan__type_of(c, e);
	if ((e = plan__coerce_to(c, e, PLAN_OID_INT8)) == NULL)
		return -1;
	if (e->kind == SQL_EXPR_LITERAL && e->lit.kind == SQL_LIT_NULL) {
		*slot = NULL; /* LIMIT NULL: no limit; OFFSET NULL: none */
		return 0;
	}
	int64_t v;
	if (is_int_literal(e, &v) && v < 0) {
		sql_error_set(c->err, state, plan__pos(c, e->pos), "%s must not be negative", what);
		return -1;
	}
	*slot = e;
	return 0;
}

/* ---- aggregates --------------------------------------------------------------------- */

static sql_expr *func1(sel_state *st, const char *name, sql_expr *arg, bool distinct)
{
	return sql_expr_func(st->c->arena, name, &arg, 1, false, distinct);
}

/* Register one aggregate call: its partial columns and merge expression. */
static int add_aggregate(sel_state *st, const sql_expr *call)
{
	plan_ctx *c = st->c;
	sql_arena *a = c->arena;
	for (size_t i = 0; i < st->naggs; i++)
		if (plan__expr_equal(st->aggs[i].call, call))
			return 0;
	if (st->naggs == st->cap_aggs) {
		size_t cap = st->cap_aggs ? st->cap_aggs * 2 : 8;
		agg_info *n = sql_arena_alloc(a, cap * sizeof *n);
		if (n == NULL)
			goto oom;
		if (st->naggs)
			memcpy(n, st->aggs, st->naggs * sizeof *n);
		st->aggs = n;
		st->cap_aggs = cap;
	}
	const char *f = call->name;
	sql_expr *arg = call->args.n > 0 ? call->args.items[0] : NULL;
	sql_expr *merge = NULL, *partial;
	size_t col, col2;

	if (call->distinct) {
		/* The argument becomes a shard grouping key. */
		size_t k;
		for (k = 0; k < st->ndkeys; k++)
			if (plan__expr_equal(st->dkeys[k], arg))
				break;
		if (k == st->ndkeys) {
			if (st->ndkeys == st->cap_dkeys) {
				size_t cap = st->cap_dkeys ? st->cap_dkeys * 2 : 4;
				sql_expr **nk = sql_arena_alloc(a, cap * sizeof *nk);
				size_t *nc = sql_arena_alloc(a, cap * sizeof *nc);
				if (nk == NULL || nc == NULL)
					goto oom;
				if (st->ndkeys) {
					memcpy(nk, st->dkeys, st->ndkeys * sizeof *nk);
					memcpy(nc, st->dkey_col, st->ndkeys * sizeof *nc);
				}
				st->dkeys = nk;
				st->dkey_col = nc;
				st->cap_dkeys = cap;
			}
			if (push_shard_item(st, arg, &col) != 0)
				goto oom;
			st->dkeys[st->ndkeys] = arg;
			st->dkey_col[st->ndkeys++] = col;
		}
		sql_expr *kc = mcol(st, st->dkey_col[k]);
		if (kc == NULL)
			goto oom;
		bool keep_distinct = strcmp(f, "min") != 0 && strcmp(f, "max") != 0;
		merge = func1(st, f, kc, keep_distinct);
	} else if (strcmp(f, "count") == 0) {
		partial = call->star ? sql_expr_func(a, "count", NULL, 0, true, false)
				     : func1(st, "count", arg, false);
		if (partial == NULL || push_shard_item(st, partial, &col) != 0)
			goto oom;
		sql_expr *zero = sql_expr_int(a, 0), *sum = func1(st, "sum", mcol(st, col), false);
		sql_expr *args[2] = {sum, zero};
		if (zero == NULL || sum == NULL)
			goto oom;
		merge = sql_expr_func(a, "coalesce", args, 2, false, false);
	} else if (strcmp(f, "avg") == 0) {
		sql_expr *s = func1(st, "sum", arg, false), *n = func1(st, "count", arg, false);
		if (s == NULL || n == NULL || push_shard_item(st, s, &col) != 0 ||
		    push_shard_item(st, n, &col2) != 0)
			goto oom;
		sql_type dbl = {SQL_TYPE_DOUBLE, -1, -1, -1};
		sql_expr *ms = func1(st, "sum", mcol(st, col), false);
		sql_expr *mn = func1(st, "sum", mcol(st, col2), false);
		sql_expr *cast = ms ? sql_expr_cast(a, ms, dbl) : NULL;
		if (mn == NULL || cast == NULL)
			goto oom;
		merge = sql_expr_binary(a, SQL_OP_DIV, cast, mn);
	} else if (strcmp(f, "string_agg") == 0) {
		sql_expr *sep = call->args.items[1];
		if (push_shard_item(st, (sql_expr *)call, &col) != 0)
			goto oom;
		sql_expr *args[2] = {mcol(st, col), sep};
		if (args[0] == NULL)
			goto oom;
		merge = sql_expr_func(a, "string_agg", args, 2, false, false);
	} else {
		/* sum, min, max, bool_and, bool_or, every: the same function
		 * over the partials. */
		if (push_shard_item(st, (sql_expr *)call, &col) != 0)
			goto oom;
		merge = func1(st, f, mcol(st, col), false);
	}
	if (merge == NULL)
		goto oom;
	st->aggs[st->naggs++] = (agg_info){call, merge};
	return 0;
oom:
	plan__oom(c);
	return -1;
}

static int collect_aggregates(sel_state *st, const sql_expr *e)
{
	if (e == NULL)
		return 0;
	if (plan__is_aggregate(e))
		return add_aggregate(st, e);
	if (collect_aggregates(st, e->left) || collect_aggregates(st, e->right) ||
	    collect_aggregates(st, e->third))
		return -1;
	for (size_t i = 0; i < e->args.n; i++)
		if (collect_aggregates(st, e->args.items[i]))
			return -1;
	return 0;
}

/* The merge form of an expression of the aggregate query: group keys and
 * aggregate calls become expressions over m's columns.  NULL with err. */
static sql_expr *to_merge(sel_state *st, sql_expr *e)
{
	plan_ctx *c = st->c;
	if (e == NULL)
		return NULL;
	for (size_t i = 0; i < st->ngroups; i++) {
		if (plan__expr_equal(st->groups[i], e)) {
			sql_expr *m = mcol(st, st->group_col[i]);
			if (m == NULL)
				plan__oom(c);
			return m;
		}
	}
	if (plan__is_aggregate(e)) {
		for (size_t i = 0; i < st->naggs; i++)
			if (plan__expr_equal(st->aggs[i].call, e))
				return st->aggs[i].merge;
		sql_error_set(c->err, "XX000", 0, "internal error: aggregate not collected");
		return NULL;
	}
	if (e->kind == SQL_EXPR_COLUMN) {
		sql_error_set(c->err, "42803", plan__pos(c, e->pos),
			      "column \"%s.%s\" must appear in the GROUP BY clause or be used in "
			      "an aggregate function",
			      c->alias ? c->alias : c->table->name, e->name);
		return NULL;
	}
	sql_expr *n = plan__copy_node(c->arena, e);
	if (n == NULL) {
		plan__oom(c);
		return NULL;
	}
	if ((e->left && !(n->left = to_merge(st, e->left))) ||
	    (e->right && !(n->right = to_merge(st, e->right))) ||
	    (e->third && !(n->third = to_merge(st, e->third))))
		return NULL;
	for (size_t i = 0; i < e->args.n; i++)
		if (!(n->args.items[i] = to_merge(st, e->args.items[i])))
			return NULL;
	sql_expr_update_depth(n);
	return n;
}

/* ---- SQL -------------------------------------------------------------------------------- */

static const char *render_select_filtered(plan_ctx *c, const sql_select *q, const char *filter)
{
	sql_buf b;
	sql_buf_init(&b);
	sql_render_select_filtered(&b, q, filter);
	const char *s = plan__buf_dup(c->arena, &b);
	sql_buf_free(&b);
	if (s == NULL)
		plan__oom(c);
	return s;
}

static const char *render_select(plan_ctx *c, const sql_select *q)
{
	return render_select_filtered(c, q, NULL);
}

/* A scatter's partial query: without the rows its shard hides. */
static const char *render_scatter(plan_ctx *c, const sql_select *q)
{
	const char *filter = plan__hidden_filter(c);
	if (filter == NULL && c->err->sqlstate[0])
		return NULL;
	return render_select_filtered(c, q, filter);
}

static int order_list(sel_state *st, sql_order_list *out, bool merge_side, const size_t *key_col)
{
	plan_ctx *c = st->c;
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < st->norder; i++) {
		const order_key *k = &st->order[i];
		sql_expr *e;
		if (!merge_side)
			e = defuse(c, k->expr);
		else if (st->agg)
			e = defuse(c, to_merge(st, k->expr));
		else
			e = mcol(st, key_col[i]);
		if (e == NULL)
			return -1;
		sql_order_item it = {e, k->desc, k->nulls};
		if (SQL_LIST_PUSH(c->arena, out, it) != 0) {
			plan__oom(c);
			return -1;
		}
	}
	return 0;
}

static int items_list(sel_state *st, sql_select_item_list *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < st->ncols; i++) {
		sql_select_item it = {st->cols[i].expr, NULL};
		if (SQL_LIST_PUSH(st->c->arena, out, it) != 0) {
			plan__oom(st->c);
			return -1;
		}
	}
	return 0;
}

static int group_list(sel_state *st, sql_expr_list *out, bool with_dkeys)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < st->ngroups; i++) {
		sql_expr *e = defuse(st->c, st->groups[i]);
		if (e == NULL || sql_expr_list_push(st->c->arena, out, e) != 0)
			goto oom;
	}
	for (size_t i = 0; with_dkeys && i < st->ndkeys; i++) {
		sql_expr *e = defuse(st->c, st->dkeys[i]);
		if (e == NULL || sql_expr_list_push(st->c->arena, out, e) != 0)
			goto oom;
	}
	return 0;
oom:
	plan__oom(st->c);
	return -1;
}

static int build_single(sel_state *st, router_plan *p)
{
	sql_select q = *st->s;
	q.where = st->where;
	q.having = st->having;
	q.limit = st->limit;
	q.offset = st->offset;
	q.lock = SQL_LOCK_NONE;
	if (items_list(st, &q.items) || group_list(st, &q.group_by, false) ||
	    order_list(st, &q.order_by, false, NULL))
		return -1;
	sql_select_item hidden = {st->hidden, NULL};
	if (st->hidden != NULL && SQL_LIST_PUSH(st->c->arena, &q.items, hidden) != 0) {
		plan__oom(st->c);
		return -1;
	}
	return (p->sql_single = render_select(st->c, &q)) ? 0 : -1;
}

/* limit + offset for the shards (NULL: no limit). */
static sql_expr *shard_limit(sel_state *st)
{
	int64_t l, o;
	if (st->limit == NULL)
		return NULL;
	if (st->offset == NULL)
		return st->limit;
	if (is_int_literal(st->limit, &l) && is_int_literal(st->offset, &o)) {
		int64_t sum;
		if (__builtin_add_overflow(l, o, &sum))
			sum = INT64_MAX;
		return sql_expr_int(st->c->arena, sum);
	}
	return sql_expr_binary(st->c->arena, SQL_OP_ADD, st->limit, st->offset);
}

static int build_scatter_plain(sel_state *st, router_plan *p)
{
	plan_ctx *c = st->c;
	size_t *key_col = sql_arena_alloc(c->arena, (st->norder ? st->norder : 1) * sizeof *key_col);
	if (key_col == NULL)
		goto oom;
	memset(&st->shard_items, 0, sizeof st->shard_items);
	for (size_t i = 0; i < st->ncols; i++) {
		size_t col;
		if (push_shard_item(st, st->cols[i].expr, &col) != 0)
			goto oom;
	}
	for (size_t i = 0; i < st->norder; i++) {
		const order_key *k = &st->order[i];
		int item = k->item;
		for (size_t j = 0; item < 0 && j < st->ncols; j++)
			if (plan__expr_equal(st->cols[j].expr, k->expr))
				item = (int)j;
		if (item >= 0) {
			key_col[i] = (size_t)item;
		} else if (push_shard_item(st, k->expr, &key_col[i]) != 0) {
			goto oom;
		}
	}
	sql_select q = {0};
	q.distinct = st->s->distinct;
	q.items = st->shard_items;
	q.from = st->s->from;
	q.where = st->where;
	if (st->limit != NULL) {
		if (order_list(st, &q.order_by, false, NULL) != 0)
			return -1;
		if ((q.limit = shard_limit(st)) == NULL)
			goto oom;
	}
	if ((p->sql_scatter = render_scatter(c, &q)) == NULL)
		return -1;
	p->scatter_ncols = st->shard_items.n;

	sql_select m = {0};
	sql_table_ref from = {"m", NULL, SQL_NO_POS};
	m.distinct = st->s->distinct;
	m.from = &from;
	for (size_t i = 0; i < st->ncols; i++) {
		sql_select_item it = {mcol(st, i), NULL};
		if (it.expr == NULL || SQL_LIST_PUSH(c->arena, &m.items, it) != 0)
			goto oom;
	}
	if (order_list(st, &m.order_by, true, key_col) != 0)
		return -1;
	m.limit = st->limit;
	m.offset = st->offset;
	return (p->sql_merge = render_select(c, &m)) ? 0 : -1;
oom:
	plan__oom(c);
	return -1;
}

static int build_scatter_agg(sel_state *st, router_plan *p)
{
	plan_ctx *c = st->c;
	memset(&st->shard_items, 0, sizeof st->shard_items);
	st->group_col = sql_arena_alloc(c->arena, (st->ngroups ? st->ngroups : 1) * sizeof(size_t));
	if (st->group_col == NULL)
		goto oom;
	for (size_t i = 0; i < st->ngroups; i++)
		if (push_shard_item(st, st->groups[i], &st->group_col[i]) != 0)
			goto oom;
	for (size_t i = 0; i < st->ncols; i++)
		if (collect_aggregates(st, st->cols[i].expr) != 0)
			return -1;
	if (collect_aggregates(st, st->having) != 0 || collect_aggregates(st, st->hidden) != 0)
		return -1;
	for (size_t i = 0; i < st->norder; i++)
		if (collect_aggregates(st, st->order[i].expr) != 0)
			return -1;
	if (st->shard_items.n == 0) {
		/* e.g. SELECT 1 FROM t HAVING true: a row per shard that has
		 * any row is enough to tell whether the table is empty. */
		sql_expr *one = func1(st, "count", sql_expr_int(c->arena, 1), false);
		size_t col;
		if (one == NULL || push_shard_item(st, one, &col) != 0)
			goto oom;
	}

	sql_select q = {0};
	q.items = st->shard_items;
	q.from = st->s->from;
	q.where = st->where;
	if (group_list(st, &q.group_by, true) != 0)
		return -1;
	if ((p->sql_scatter = render_scatter(c, &q)) == NULL)
		return -1;
	p->scatter_ncols = st->shard_items.n;

	sql_select m = {0};
	sql_table_ref from = {"m", NULL, SQL_NO_POS};
	m.distinct = st->s->distinct;
	m.from = &from;
	for (size_t i = 0; i < st->ncols; i++) {
		sql_select_item it = {to_merge(st, st->cols[i].expr), NULL};
		if (it.expr == NULL)
			return -1;
		if (SQL_LIST_PUSH(c->arena, &m.items, it) != 0)
			goto oom;
	}
	if (st->hidden != NULL) {
		sql_select_item it = {to_merge(st, st->hidden), NULL};
		if (it.expr == NULL)
			return -1;
		if (SQL_LIST_PUSH(c->arena, &m.items, it) != 0)
			goto oom;
	}
	for (size_t i = 0; i < st->ngroups; i++) {
		sql_expr *g = mcol(st, st->group_col[i]);
		if (g == NULL || sql_expr_list_push(c->arena, &m.group_by, g) != 0)
			goto oom;
	}
	if (st->having != NULL && (m.having = to_merge(st, st->having)) == NULL)
		return -1;
	if (order_list(st, &m.order_by, true, NULL) != 0)
		return -1;
	m.limit = st->limit;
	m.offset = st->offset;
	return (p->sql_merge = render_select(c, &m)) ? 0 : -1;
oom:
	plan__oom(c);
	return -1;
}

/* ---- entry ------------------------------------------------------------------------------- */

int plan__build_select(plan_ctx *c, router_plan *p, const sql_select *s)
{
	sel_state st = {.c = c, .s = s, .limit = s->limit, .offset = s->offset};

	if (expand_items(&st) || resolve_group_by(&st) || resolve_order_by(&st))
		return -1;
	if (s->where != NULL && plan__resolve(c, s->where, PLAN_CLAUSE_WHERE) != 0)
		return -1;
	if (s->having != NULL && plan__resolve(c, s->having, PLAN_CLAUSE_SELECT) != 0)
		return -1;
	if (check_limit(&st, &st.limit, "LIMIT", "2201W") ||
	    check_limit(&st, &st.offset, "OFFSET", "2201X"))
		return -1;

	/* Types twice: a parameter typed late in the first pass can type
	 * another one in the second ($1 = $2 AND $1 = id). */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < st.ncols; i++)
			plan__type_of(c, st.cols[i].expr);
		plan__expect(c, s->where, PLAN_OID_BOOL);
		plan__type_of(c, s->where);
		plan__expect(c, s->having, PLAN_OID_BOOL);
		plan__type_of(c, s->having);
		for (size_t i = 0; i < st.ngroups; i++)
			plan__type_of(c, st.groups[i]);
		for (size_t i = 0; i < st.norder; i++)
			plan__type_of(c, st.order[i].expr);
	}

	/* Untyped literals -> typed (keeping order keys that name output
	 * columns pointing at the coerced output expression). */
	for (size_t i = 0; i < st.ncols; i++) {
		sql_expr *old = st.cols[i].expr;
		if ((st.cols[i].expr = plan__coerce(c, old)) == NULL)
			return -1;
		for (size_t j = 0; j < st.ngroups; j++)
			if (st.groups[j] == old)
				st.groups[j] = st.cols[i].expr;
	}
	for (size_t j = 0; j < st.ngroups; j++)
		if ((st.groups[j] = plan__coerce(c, st.groups[j])) == NULL)
			return -1;
	for (size_t i = 0; i < st.norder; i++) {
		order_key *k = &st.order[i];
		if (k->item >= 0)
			k->expr = st.cols[k->item].expr;
		else if ((k->expr = plan__coerce(c, k->expr)) == NULL)
			return -1;
	}
	if (s->where && (st.where = plan__coerce(c, s->where)) == NULL)
		return -1;
	if (s->having && (st.having = plan__coerce(c, s->having)) == NULL)
		return -1;

	if (s->distinct) {
		for (size_t i = 0; i < st.norder; i++) {
			bool found = st.order[i].item >= 0;
			for (size_t j = 0; !found && j < st.ncols; j++)
				found = plan__expr_equal(st.cols[j].expr, st.order[i].expr);
			if (!found) {
				sql_error_set(c->err, "42P10", plan__pos(c, st.order[i].expr->pos),
					      "for SELECT DISTINCT, ORDER BY expressions must appear in "
					      "select list");
				return -1;
			}
		}
	}

	st.agg = st.ngroups > 0 || st.having != NULL;
	for (size_t i = 0; i < st.ncols && !st.agg; i++)
		st.agg = plan__has_aggregate(st.cols[i].expr);
	for (size_t i = 0; i < st.norder && !st.agg; i++)
		st.agg = plan__has_aggregate(st.order[i].expr);

	/* HAVING without GROUP BY, or an aggregate only in HAVING or ORDER
	 * BY, makes the query an aggregate one (one group) in PostgreSQL;
	 * SQLite wants an aggregate in the select list for that, so a hidden
	 * count(*) is added after the output columns (plan->single_extra_cols;
	 * the merge reads only ncols columns). */
	if (st.agg && st.ngroups == 0) {
		bool any = false;
		for (size_t i = 0; i < st.ncols && !any; i++)
			any = plan__has_aggregate(st.cols[i].expr);
		if (!any) {
			st.hidden = sql_expr_func(c->arena, "count", NULL, 0, true, false);
			if (st.hidden == NULL) {
				plan__oom(c);
				return -1;
			}
			p->single_extra_cols = 1;
		}
	}

	/* Result columns. */
	p->ncols = st.ncols;
	p->col_names = sql_arena_alloc(c->arena, (st.ncols ? st.ncols : 1) * sizeof *p->col_names);
	p->col_types = sql_arena_alloc(c->arena, (st.ncols ? st.ncols : 1) * sizeof *p->col_types);
	if (p->col_names == NULL || p->col_types == NULL) {
		plan__oom(c);
		return -1;
	}
	for (size_t i = 0; i < st.ncols; i++) {
		p->col_names[i] = st.cols[i].name;
		p->col_types[i] = plan__final_type(plan__type_of(c, st.cols[i].expr));
	}

	if (build_single(&st, p) != 0)
		return -1;
	if (c->table == NULL) {
		p->sql_scatter = p->sql_single;
		p->sql_merge = NULL;
		return 0;
	}
	if ((st.agg ? build_scatter_agg(&st, p) : build_scatter_plain(&st, p)) != 0)
		return -1;
	/* Nothing to re-apply over the union: merge.c concatenates. */
	p->merge_concat = !st.agg && !s->distinct && st.norder == 0 && st.limit == NULL &&
			  st.offset == NULL && p->scatter_ncols == p->ncols;
	return plan__route_extract(c, p, st.where);
}
