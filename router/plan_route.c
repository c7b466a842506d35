/*
 * plan_route.c — which shards a statement goes to.
 *
 * At plan time (plan__route_extract) the WHERE clause is searched, through
 * AND only, for conjuncts on the partition column whose other side is a
 * literal or a parameter:
 *     col = v, v = col, col IN (v1, ...)      -> a set of values (EQ)
 *     col < v, <=, >, >=, col BETWEEN a AND b -> bounds (RANGE tables)
 * Anything under OR or NOT, or comparing with a column or an expression,
 * is ignored, which is always safe: routing only ever narrows the set of
 * shards to a superset of the ones holding matching rows.
 *
 * At request time (plan_requests) the operands get their values:
 *   HASH   the smallest EQ set: each value -> bucket -> owning shard;
 *   RANGE  bounds intersect into a range interval; an EQ set picks the
 *          ranges of its values inside it; range i -> shard;
 *   none   every shard (a reference table's read: one shard).
 * A predicate that no row can satisfy (col = NULL, an empty interval) still
 * gets one request, to one shard, so that aggregates over no rows answer as
 * they should (COUNT(*) = 0).  A value that does not convert to the key's
 * type falls back to every shard (no row can match it anyway).
 *
 * INSERT rows are grouped by the shard owning their key; each shard gets
 * one INSERT with only its rows, in the order written.  Parameters keep
 * their numbers (?3 stays ?3): a request passes parameters 1..k where k is
 * the highest number its own SQL uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plan_int.h"

/* ---- plan time ---------------------------------------------------------------- */

const wire_value *plan__operand_value(const plan_operand *o, const wire_value *params,
				      size_t nparams)
{
	static const wire_value null_value = {.type = WIRE_NULL};
	if (!o->is_param)
		return &o->lit;
	if (o->param < 1 || (size_t)o->param > nparams)
		return &null_value;
	return &params[o->param - 1];
}

bool plan__operand_of(plan_ctx *c, const sql_expr *e, plan_operand *out)
{
	memset(out, 0, sizeof *out);
	if (e == NULL)
		return false;
	if (e->kind == SQL_EXPR_CAST && e->left != NULL && e->left->kind == SQL_EXPR_PARAM) {
		/* $1::bigint: the parameter's type is the cast's. */
		sql_type_kind k = e->type.kind;
		bool keyish = k == SQL_TYPE_BIGINT || k == SQL_TYPE_INTEGER ||
			      k == SQL_TYPE_SMALLINT || k == SQL_TYPE_TEXT ||
			      k == SQL_TYPE_VARCHAR;
		if (!keyish)
			return false;
		e = e->left;
	}
	if (e->kind == SQL_EXPR_PARAM) {
		out->is_param = true;
		out->param = e->param;
		return true;
	}
	if (e->kind != SQL_EXPR_LITERAL)
		return false;
	wire_value *v = &out->lit;
	switch (e->lit.kind) {
	case SQL_LIT_NULL:
		v->type = WIRE_NULL;
		return true;
	case SQL_LIT_INT:
		v->type = WIRE_INT;
		v->i = e->lit.i;
		return true;
	case SQL_LIT_BOOL:
		v->type = WIRE_INT;
		v->i = e->lit.b;
		return true;
	case SQL_LIT_NUMERIC:
		v->type = WIRE_REAL;
		v->r = strtod(e->lit.str, NULL);
		return true;
	case SQL_LIT_STRING: {
		char *s = sql_arena_strndup(c->arena, e->lit.str, e->lit.len);
		if (s == NULL)
			return false;
		v->type = WIRE_TEXT;
		v->p = s;
		v->len = (uint32_t)e->lit.len;
		return true;
	}
	}
	return false;
}

typedef struct {
	plan_ctx *c;
	router_plan *p;
	const char *col;       /* partition column name */
	sql_buf text;
	size_t cap_conds, cap_ops;
	bool oom;
} extract_state;

static bool is_key(extract_state *st, const sql_expr *e)
{
	return e != NULL && e->kind == SQL_EXPR_COLUMN && strcmp(e->name, st->col) == 0;
}

static int push_op(extract_state *st, const plan_operand *o)
{
	plan_route *r = &st->p->route;
	if (r->nops == st->cap_ops) {
		size_t cap = st->cap_ops ? st->cap_ops * 2 : 8;
		plan_operand *n = sql_arena_alloc(st->c->arena, cap * sizeof *n);
		if (n == NULL)
			return -1;
		if (r->nops)
			memcpy(n, r->ops, r->nops * sizeof *n);
		r->ops = n;
		st->cap_ops = cap;
	}
	r->ops[r->nops++] = *o;
	return 0;
}

static int push_cond(extract_state *st, sql_op op, size_t first, size_t n, const sql_expr *e)
{
	plan_route *r = &st->p->route;
	if (r->nconds == st->cap_conds) {
		size_t cap = st->cap_conds ? st->cap_conds * 2 : 4;
		plan_cond *nc = sql_arena_alloc(st->c->arena, cap * sizeof *nc);
		if (nc == NULL)
			return -1;
		if (r->nconds)
			memcpy(nc, r->conds, r->nconds * sizeof *nc);
		r->conds = nc;
		st->cap_conds = cap;
	}
	r->conds[r->nconds++] = (plan_cond){op, first, n};
	if (e != NULL) {
		if (st->text.len > 0)
			sql_buf_puts(&st->text, " AND ");
		sql_render_expr(&st->text, e);
	}
	return 0;
}

static sql_op flip(sql_op op)
{
	switch (op) {
	case SQL_OP_LT: return SQL_OP_GT;
	case SQL_OP_LE: return SQL_OP_GE;
	case SQL_OP_GT: return SQL_OP_LT;
	case SQL_OP_GE: return SQL_OP_LE;
	default: return op;
	}
}

static int extract(extract_state *st, const sql_expr *e)
{
	plan_operand o, o2;
	if (e == NULL)
		return 0;
	if (e->kind == SQL_EXPR_BINARY && e->op == SQL_OP_AND)
		return extract(st, e->left) || extract(st, e->right) ? -1 : 0;
	if (e->kind == SQL_EXPR_BINARY &&
	    (e->op == SQL_OP_EQ || e->op == SQL_OP_LT || e->op == SQL_OP_LE ||
	     e->op == SQL_OP_GT || e->op == SQL_OP_GE)) {
		sql_op op = e->op;
		const sql_expr *other;
		if (is_key(st, e->left))
			other = e->right;
		else if (is_key(st, e->right))
			other = e->left, op = flip(op);
		else
			return 0;
		if (!plan__operand_of(st->c, other, &o))
			return 0;
		size_t first = st->p->route.nops;
		return push_op(st, &o) || push_cond(st, op, first, 1, e) ? -1 : 0;
	}
	if (e->kind == SQL_EXPR_IN && !e->negated && is_key(st, e->left)) {
		for (size_t i = 0; i < e->args.n; i++)
			if (!plan__operand_of(st->c, e->args.items[i], &o))
				return 0;
		size_t first = st->p->route.nops;
		for (size_t i = 0; i < e->args.n; i++) {
			plan__operand_of(st->c, e->args.items[i], &o);
			if (push_op(st, &o) != 0)
				return -1;
		}
		return push_cond(st, SQL_OP_EQ, first, e->args.n, e);
	}
	if (e->kind == SQL_EXPR_BETWEEN && !e->negated && is_key(st, e->left) &&
	    plan__operand_of(st->c, e->right, &o) && plan__operand_of(st->c, e->third, &o2)) {
		size_t first = st->p->route.nops;
		if (push_op(st, &o) || push_op(st, &o2) ||
		    push_cond(st, SQL_OP_GE, first, 1, e) ||
		    push_cond(st, SQL_OP_LE, first + 1, 1, NULL))
			return -1;
	}
	return 0;
}

/* SQLite's ?n back to PostgreSQL's $n (outside quotes), for EXPLAIN. */
static void pg_params(char *s)
{
	for (char *q = s; *q; q++) {
		if (*q == '\'' || *q == '"') {
			char quote = *q;
			for (q++; *q && *q != quote; q++)
				;
			if (*q == 0)
				break;
		} else if (*q == '?' && q[1] >= '0' && q[1] <= '9') {
			*q = '$';
		}
	}
}

int plan__route_extract(plan_ctx *c, router_plan *p, const sql_expr *where)
{
	memset(&p->route, 0, sizeof p->route);
	if (c->table == NULL || c->table->partition_col < 0 || where == NULL)
		return 0;
	extract_state st = {.c = c, .p = p, .col = c->table->cols[c->table->partition_col].name};
	sql_buf_init(&st.text);
	int rc = extract(&st, where);
	if (rc == 0 && st.text.len > 0) {
		if ((p->route.text = (char *)plan__buf_dup(c->arena, &st.text)) == NULL)
			rc = -1;
		else
			pg_params(p->route.text);
	}
	sql_buf_free(&st.text);
	if (rc != 0)
		plan__oom(c);
	return rc;
}

/* ---- request time: targets --------------------------------------------------------- */

typedef struct {
	const catalog *cat;
	size_t nshards;
	bool *hit;             /* per shard */
	uint8_t *bucket_bits;  /* per shard, CATALOG_BUCKETS bits, or NULL */
	size_t *nrows;         /* INSERT: rows per shard */
	sql_buf why;
	bool all;
} targets;

static int targets_init(targets *t, const catalog *cat, size_t nshards, bool buckets)
{
	memset(t, 0, sizeof *t);
	t->cat = cat;
	t->nshards = nshards;
	t->hit = calloc(nshards, sizeof *t->hit);
	t->nrows = calloc(nshards, sizeof *t->nrows);
	if (buckets)
		t->bucket_bits = calloc(nshards, CATALOG_BUCKETS / 8);
	sql_buf_init(&t->why);
	return t->hit && t->nrows && (!buckets || t->bucket_bits) ? 0 : -1;
}

static void targets_free(targets *t)
{
	free(t->hit);
	free(t->bucket_bits);
	free(t->nrows);
	sql_buf_free(&t->why);
}

/* Every shard that is still in the cluster (not removed). */
static void hit_all(targets *t)
{
	for (size_t i = 0; i < t->nshards; i++)
		t->hit[i] = !catalog_shard_removed(t->cat, i);
	t->all = true;
}

static void hit_bucket(targets *t, const catalog *cat, uint32_t bucket)
{
	size_t s = catalog_bucket_shard(cat, bucket);
	if (s >= t->nshards)
		return;
	t->hit[s] = true;
	if (t->bucket_bits)
		t->bucket_bits[s * (CATALOG_BUCKETS / 8) + bucket / 8] |= (uint8_t)(1u << (bucket % 8));
}

static size_t count_hits(const targets *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->nshards; i++)
		n += t->hit[i];
	return n;
}

static void why_value(sql_buf *b, const wire_value *v)
{
	switch (v->type) {
	case WIRE_NULL: sql_buf_puts(b, "NULL"); break;
	case WIRE_INT: sql_buf_printf(b, "%lld", (long long)v->i); break;
	case WIRE_REAL: sql_buf_printf(b, "%.17g", v->r); break;
	case WIRE_TEXT:
		sql_render_string(b, v->p, v->len > 40 ? 40 : v->len);
		break;
	case WIRE_BLOB: sql_buf_puts(b, "<bytea>"); break;
	}
}

/* A key value in the form the catalog compares for a RANGE key: integer
 * keys take integers (or reals), text keys take text.  false when the
 * value cannot be one (then it constrains nothing). */
static bool range_value(const catalog_table *t, const wire_value *v, wire_value *out, char *num,
			size_t numlen)
{
	const catalog_column *col = &t->cols[t->partition_col];
	*out = *v;
	if (plan__oid_is_int(col->oid)) {
		if (v->type == WIRE_INT || v->type == WIRE_REAL)
			return true;
		if (v->type == WIRE_TEXT) {
			char *end;
			long long x = strtoll(v->p, &end, 10);
			if (v->len == 0 || *end != 0)
				return false;
			out->type = WIRE_INT;
			out->i = x;
			return true;
		}
		return false;
	}
	if (v->type == WIRE_TEXT)
		return true;
	if (v->type == WIRE_INT) {
		int n = snprintf(num, numlen, "%lld", (long long)v->i);
		out->type = WIRE_TEXT;
		out->p = num;
		out->len = (uint32_t)n;
		return true;
	}
	return false;
}

/* The smallest EQ condition, or NULL. */
static const plan_cond *smallest_set(const plan_route *r)
{
	const plan_cond *best = NULL;
	for (size_t i = 0; i < r->nconds; i++)
		if (r->conds[i].op == SQL_OP_EQ && (best == NULL || r->conds[i].n < best->n))
			best = &r->conds[i];
	return best;
}

static int route_hash(const router_plan *p, const catalog *cat, const catalog_table *t,
		      const wire_value *params, size_t nparams, targets *tg)
{
	const plan_cond *set = smallest_set(&p->route);
	if (set == NULL) {
		hit_all(tg);
		sql_buf_printf(&tg->why, "no equality on partition key \"%s\": all %zu shards",
			       t->cols[t->partition_col].name, tg->nshards);
		return 0;
	}
	sql_buf_printf(&tg->why, "%s ->", p->route.text ? p->route.text : "key");
	size_t shown = 0;
	for (size_t i = 0; i < set->n; i++) {
		const wire_value *v = plan__operand_value(&p->route.ops[set->first + i], params, nparams);
		if (v->type == WIRE_NULL)
			continue;
		sql_error e;
		int b = catalog_bucket_of(t, v, &e);
		if (b < 0) {
			memset(tg->hit, 0, tg->nshards * sizeof *tg->hit);
			hit_all(tg);
			sql_buf_reset(&tg->why);
			sql_buf_printf(&tg->why, "key value does not convert to the key's type: all %zu shards",
				       tg->nshards);
			if (tg->bucket_bits)
				memset(tg->bucket_bits, 0, tg->nshards * (CATALOG_BUCKETS / 8));
			return 0;
		}
		hit_bucket(tg, cat, (uint32_t)b);
		if (shown++ < 8) {
			sql_buf_puts(&tg->why, shown > 1 ? ", " : " ");
			why_value(&tg->why, v);
			sql_buf_printf(&tg->why, " -> bucket %d -> shard %zu", b,
				       catalog_bucket_shard(cat, (uint32_t)b));
		}
	}
	if (shown > 8)
		sql_buf_printf(&tg->why, ", ... (%zu values)", shown);
	if (count_hits(tg) == 0) {
		tg->hit[catalog_first_shard(cat)] = true;
		sql_buf_printf(&tg->why, " no value can match: shard %zu", catalog_first_shard(cat));
	}
	return 0;
}

static int route_range(const router_plan *p, const catalog *cat, const catalog_table *t,
		       const wire_value *params, size_t nparams, targets *tg)
{
	const plan_route *r = &p->route;
	bool is_int = plan__oid_is_int(t->cols[t->partition_col].oid);
	size_t lo = 0, hi = t->nsplits;
	bool empty = false;
	char num[32];
	wire_value v;

	for (size_t i = 0; i < r->nconds; i++) {
		const plan_cond *cd = &r->conds[i];
		if (cd->op == SQL_OP_EQ)
			continue;
		const wire_value *raw = plan__operand_value(&r->ops[cd->first], params, nparams);
		if (raw->type == WIRE_NULL) {
			empty = true;
			continue;
		}
		if (!range_value(t, raw, &v, num, sizeof num))
			continue;
		/* For integer keys, col > v is col >= v + 1 and col < v is
		 * col <= v - 1, which keeps "< split point" off the next range. */
		if (is_int && v.type == WIRE_INT && cd->op == SQL_OP_GT && v.i < INT64_MAX)
			v.i++;
		if (is_int && v.type == WIRE_INT && cd->op == SQL_OP_LT && v.i > INT64_MIN)
			v.i--;
		size_t ri = catalog_range_of(t, &v);
		if (cd->op == SQL_OP_GT || cd->op == SQL_OP_GE) {
			if (ri > lo)
				lo = ri;
		} else if (ri < hi) {
			hi = ri;
		}
	}
	const plan_cond *set = smallest_set(r);
	if (r->nconds == 0) {
		sql_buf_printf(&tg->why, "no range on partition key \"%s\": all %zu shards",
			       t->cols[t->partition_col].name, tg->nshards);
		hit_all(tg);
		return 0;
	}
	sql_buf_printf(&tg->why, "%s ->", r->text ? r->text : "key");
	if (!empty && lo <= hi) {
		if (set != NULL) {
			size_t shown = 0;
			for (size_t i = 0; i < set->n; i++) {
				const wire_value *raw =
					plan__operand_value(&r->ops[set->first + i], params, nparams);
				if (raw->type == WIRE_NULL)
					continue;
				if (!range_value(t, raw, &v, num, sizeof num)) {
					memset(tg->hit, 0, tg->nshards * sizeof *tg->hit);
					sql_buf_reset(&tg->why);
					sql_buf_printf(&tg->why, "key value does not convert to the key's type: all %zu shards",
						       tg->nshards);
					hit_all(tg);
					return 0;
				}
				size_t ri = catalog_range_of(t, &v);
				if (ri < lo || ri > hi)
					continue;
				size_t s = catalog_range_shard(cat, t, ri);
				if (s < tg->nshards)
					tg->hit[s] = true;
				if (shown++ < 8)
					sql_buf_printf(&tg->why, "%s range %zu -> shard %zu",
						       shown > 1 ? "," : "", ri, s);
			}
		} else {
			for (size_t ri = lo; ri <= hi; ri++) {
				size_t s = catalog_range_shard(cat, t, ri);
				if (s < tg->nshards)
					tg->hit[s] = true;
				if (count_hits(tg) == tg->nshards)
					break;
			}
			sql_buf_printf(&tg->why, " ranges %zu..%zu", lo, hi);
		}
	}
	if (count_hits(tg) == 0) {
		size_t s = catalog_range_shard(cat, t, lo < t->nsplits ? lo : t->nsplits);
		tg->hit[s < tg->nshards ? s : 0] = true;
		sql_buf_puts(&tg->why, " no value can match: one shard");
	}
	return 0;
}

/* ---- request time: the batch ----------------------------------------------------------- */

static char *buf_take(sql_buf *b)
{
	if (b->failed)
		return NULL;
	char *s = b->data ? b->data : strdup("");
	sql_buf_init(b);
	return s;
}

/* Append a request for shard s; takes ownership of sql. */
static int add_request(plan_batch *out, size_t *cap, const router_plan *p, size_t shard, char *sql,
		       int max_param, const wire_value *params, bool readonly, const targets *tg)
{
	if (sql == NULL)
		return -1;
	if (out->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		plan_request *n = realloc(out->reqs, ncap * sizeof *n);
		if (n == NULL) {
			free(sql);
			return -1;
		}
		out->reqs = n;
		*cap = ncap;
	}
	plan_request *r = &out->reqs[out->n];
	memset(r, 0, sizeof *r);
	r->shard = shard;
	r->sql = sql;
	r->readonly = readonly;
	out->n++;
	/* The whole parameter array (see plan_int.h); nparams = what the SQL
	 * uses. */
	size_t np = p->nparams;
	r->params = calloc(np ? np : 1, sizeof *r->params);
	if (r->params == NULL)
		return -1;
	if (np)
		memcpy(r->params, params, np * sizeof *r->params);
	r->nparams = (uint32_t)(max_param > 0 ? max_param : 0);
	if (tg != NULL && tg->bucket_bits != NULL) {
		/* a byte at a time: point queries set one bit in 4096 */
		const uint8_t *bits = tg->bucket_bits + shard * (CATALOG_BUCKETS / 8);
		uint32_t nb = 0;
		for (uint32_t i = 0; i < CATALOG_BUCKETS / 8; i++)
			if (bits[i])
				nb += (uint32_t)__builtin_popcount(bits[i]);
		if (nb > 0) {
			r->buckets = malloc(nb * sizeof *r->buckets);
			if (r->buckets == NULL)
				return -1;
			for (uint32_t i = 0; i < CATALOG_BUCKETS / 8; i++)
				for (unsigned v = bits[i]; v; v &= v - 1)
					r->buckets[r->nbuckets++] = i * 8 + (uint32_t)__builtin_ctz(v);
		}
	}
	return 0;
}

static int build_insert(const router_plan *p, const catalog *cat, const catalog_table *t,
			const wire_value *params, size_t nparams, plan_batch *out, targets *tg,
			size_t *cap, sql_error *err)
{
	size_t nsh = tg->nshards;
	size_t *row_shard = malloc((p->nrows ? p->nrows : 1) * sizeof *row_shard);
	if (row_shard == NULL)
		goto oom;
	if (p->target == PLAN_TARGET_REFERENCE) {
		hit_all(tg);
		sql_buf_printf(&tg->why, "reference table: every row to all %zu shards", nsh);
	} else {
		const catalog_column *kc = &t->cols[t->partition_col];
		for (size_t i = 0; i < p->nrows; i++) {
			const wire_value *v = plan__operand_value(&p->rows[i].key, params, nparams);
			if (v->type == WIRE_NULL) {
				sql_error_set(err, "23502", 0,
					      "null value in column \"%s\" of relation \"%s\" violates "
					      "not-null constraint",
					      kc->name, t->name);
				goto fail;
			}
			if (p->target == PLAN_TARGET_HASH) {
				int b = catalog_bucket_of(t, v, err);
				if (b < 0)
					goto fail;
				row_shard[i] = catalog_bucket_shard(cat, (uint32_t)b);
				hit_bucket(tg, cat, (uint32_t)b);
			} else {
				wire_value rv;
				char num[32];
				if (!range_value(t, v, &rv, num, sizeof num)) {
					sql_error_set(err, "22P02", 0,
						      "invalid value for partition column \"%s\" of type %s",
						      kc->name, plan__oid_name(kc->oid));
					goto fail;
				}
				row_shard[i] = catalog_range_shard(cat, t, catalog_range_of(t, &rv));
			}
			if (row_shard[i] >= nsh)
				row_shard[i] = 0;
			tg->hit[row_shard[i]] = true;
			tg->nrows[row_shard[i]]++;
		}
		sql_buf_printf(&tg->why, "%zu row%s by \"%s\" ->", p->nrows, p->nrows == 1 ? "" : "s",
			       kc->name);
		bool first = true;
		for (size_t s = 0; s < nsh; s++) {
			if (!tg->nrows[s])
				continue;
			sql_buf_printf(&tg->why, "%s shard %zu (%zu row%s)", first ? "" : ",", s,
				       tg->nrows[s], tg->nrows[s] == 1 ? "" : "s");
			first = false;
		}
	}
	for (size_t s = 0; s < nsh; s++) {
		if (!tg->hit[s])
			continue;
		sql_buf b;
		sql_buf_init(&b);
		sql_buf_puts(&b, p->insert_prefix);
		int maxp = 0;
		bool first = true;
		for (size_t i = 0; i < p->nrows; i++) {
			if (p->target != PLAN_TARGET_REFERENCE && row_shard[i] != s)
				continue;
			if (!first)
				sql_buf_append(&b, ", ", 2);
			first = false;
			sql_buf_puts(&b, p->rows[i].text);
			if (p->rows[i].max_param > maxp)
				maxp = p->rows[i].max_param;
		}
		char *sql = buf_take(&b);
		sql_buf_free(&b);
		if (add_request(out, cap, p, s, sql, maxp, params, false, tg) != 0)
			goto oom;
	}
	free(row_shard);
	return 0;
oom:
	sql_error_set(err, "53200", 0, "out of memory");
fail:
	free(row_shard);
	return -1;
}

int plan_requests(const router_plan *p, const catalog *cat, const wire_value *params,
		  size_t nparams, plan_batch *out, sql_error *err)
{
	memset(out, 0, sizeof *out);
	size_t cap = 0;
	targets tg;
	const catalog_table *t = NULL;
	size_t nsh = catalog_nshards(cat);

	if (nparams < p->nparams) {
		sql_error_set(err, "08P01",
			      0, "bind message supplies %zu parameters, but prepared statement "
			      "requires %zu",
			      nparams, p->nparams);
		return -1;
	}
	if (nsh == 0) {
		sql_error_set(err, "55000", 0, "the cluster has no shards");
		return -1;
	}
	bool ddl = p->kind >= PLAN_CREATE_TABLE;
	if (p->table != NULL && !ddl) {
		t = catalog_table_get(cat, p->table);
		if (t == NULL) {
			sql_error_set(err, "42P01", 0, "relation \"%s\" does not exist", p->table);
			return -1;
		}
		if (t->created_epoch != p->table_epoch) {
			sql_error_set(err, "0A000", 0,
				      "cached plan must not change result type (table \"%s\" was "
				      "re-created; prepare the statement again)",
				      p->table);
			return -1;
		}
	}
	if (targets_init(&tg, cat, nsh, p->target == PLAN_TARGET_HASH) != 0)
		goto oom;

	int rc = 0;
	switch (p->kind) {
	case PLAN_INSERT:
		rc = build_insert(p, cat, t, params, nparams, out, &tg, &cap, err);
		break;
	case PLAN_SELECT:
	case PLAN_UPDATE:
	case PLAN_DELETE: {
		bool reads = p->kind == PLAN_SELECT;
		switch (p->target) {
		case PLAN_TARGET_NONE:
			tg.hit[catalog_first_shard(cat)] = true;
			sql_buf_printf(&tg.why, "no table: shard %zu", catalog_first_shard(cat));
			break;
		case PLAN_TARGET_REFERENCE:
			if (reads) {
				tg.hit[catalog_first_shard(cat)] = true;
				sql_buf_printf(&tg.why, "reference table: read from shard %zu", catalog_first_shard(cat));
			} else {
				hit_all(&tg);
				sql_buf_printf(&tg.why, "reference table: write to all %zu shards", nsh);
			}
			break;
		case PLAN_TARGET_HASH:
			rc = route_hash(p, cat, t, params, nparams, &tg);
			break;
		case PLAN_TARGET_RANGE:
			rc = route_range(p, cat, t, params, nparams, &tg);
			break;
		}
		if (rc != 0)
			break;
		/* several shards: the scatter form, which leaves out the rows a
		 * shard hides (only a key's owner gets a single request) */
		bool scatter = count_hits(&tg) > 1 && p->sql_scatter != NULL;
		const char *sql = scatter ? p->sql_scatter : p->sql_single;
		int maxp = scatter ? p->scatter_max_param : p->single_max_param;
		for (size_t s = 0; s < nsh && rc == 0; s++) {
			if (!tg.hit[s])
				continue;
			char *copy = strdup(sql);
			if (add_request(out, &cap, p, s, copy, maxp, params, reads, &tg) != 0) {
				sql_error_set(err, "53200", 0, "out of memory");
				rc = -1;
			}
		}
		break;
	}
	case PLAN_CREATE_TABLE:
	case PLAN_DROP_TABLE:
	case PLAN_CREATE_INDEX:
		hit_all(&tg);
		sql_buf_printf(&tg.why, "DDL: all %zu shards", nsh);
		for (size_t s = 0; s < nsh && rc == 0; s++) {
			char *copy = strdup(p->sql_single);
			if (add_request(out, &cap, p, s, copy, 0, params, false, NULL) != 0) {
				sql_error_set(err, "53200", 0, "out of memory");
				rc = -1;
			}
		}
		break;
	}
	if (rc != 0) {
		targets_free(&tg);
		plan_batch_free(out);
		return -1;
	}
	out->all_shards = count_hits(&tg) == nsh && nsh > 1 && tg.all;
	out->why = buf_take(&tg.why);
	targets_free(&tg);
	if (out->why == NULL) {
		plan_batch_free(out);
		goto oom_noinit;
	}
	return 0;
oom:
	targets_free(&tg);
	plan_batch_free(out);
oom_noinit:
	sql_error_set(err, "53200", 0, "out of memory");
	return -1;
}

void plan_batch_free(plan_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->reqs[i].sql);
		free(b->reqs[i].params);
		free(b->reqs[i].buckets);
	}
	free(b->reqs);
	free((char *)b->why);
	memset(b, 0, sizeof *b);
}
