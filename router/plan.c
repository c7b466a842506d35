/*
 * plan.c — plan_build(): the statement's table, its parameters' types, the
 * kind-specific planning (plan_select.c, plan_write.c, DDL here), and the
 * plan's accessors, plan_apply_ddl() and plan_explain().
 *
 * Ownership: a plan allocates everything it keeps from its own arena and
 * never points into the statement after plan_build() returned (see
 * plan_int.h), so a prepared plan may outlive the parse tree.
 *
 * DDL plans: CREATE TABLE is checked against the catalog first
 * (catalog_table_check) and sent to every shard as CREATE TABLE IF NOT
 * EXISTS; DROP TABLE as DROP TABLE IF EXISTS; CREATE INDEX as CREATE INDEX
 * IF NOT EXISTS.  The IF [NOT] EXISTS forms make a DDL statement that failed
 * on some shards safe to run again.  plan_apply_ddl() records the change in
 * the catalog once every shard answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plan_int.h"

/* ---- DDL ------------------------------------------------------------------------- */

static char *dup_name(sql_arena *a, const char *s)
{
	return s ? sql_arena_strdup(a, s) : NULL;
}

static int copy_names(sql_arena *a, const sql_name_list *from, sql_name_list *to)
{
	memset(to, 0, sizeof *to);
	for (size_t i = 0; i < from->n; i++) {
		const char *n = dup_name(a, from->items[i]);
		if (n == NULL || SQL_LIST_PUSH(a, to, n) != 0)
			return -1;
	}
	return 0;
}

/* What the catalog needs of a CREATE TABLE, copied into the plan (no
 * defaults, no CHECKs: the shards enforce those). */
static sql_create_table *copy_create(sql_arena *a, const sql_create_table *def)
{
	sql_create_table *d = sql_arena_alloc(a, sizeof *d);
	if (d == NULL)
		return NULL;
	*d = *def;
	memset(&d->columns, 0, sizeof d->columns);
	memset(&d->checks, 0, sizeof d->checks);
	memset(&d->uniques, 0, sizeof d->uniques);
	memset(&d->split_points, 0, sizeof d->split_points);
	if ((d->name = dup_name(a, def->name)) == NULL)
		return NULL;
	if (def->partition_column && (d->partition_column = dup_name(a, def->partition_column)) == NULL)
		return NULL;
	for (size_t i = 0; i < def->columns.n; i++) {
		sql_column_def col = def->columns.items[i];
		col.default_value = NULL;
		memset(&col.checks, 0, sizeof col.checks);
		if ((col.name = dup_name(a, col.name)) == NULL || SQL_LIST_PUSH(a, &d->columns, col) != 0)
			return NULL;
	}
	if (copy_names(a, &def->primary_key, &d->primary_key) != 0)
		return NULL;
	for (size_t i = 0; i < def->uniques.n; i++) {
		sql_name_list l;
		if (copy_names(a, &def->uniques.items[i], &l) != 0 || SQL_LIST_PUSH(a, &d->uniques, l) != 0)
			return NULL;
	}
	for (size_t i = 0; i < def->split_points.n; i++) {
		const sql_expr *e = def->split_points.items[i];
		sql_expr *n = plan__copy_node(a, e);
		if (n == NULL)
			return NULL;
		if (e->kind == SQL_EXPR_LITERAL && e->lit.str != NULL &&
		    (n->lit.str = sql_arena_strndup(a, e->lit.str, e->lit.len)) == NULL)
			return NULL;
		if (e->left != NULL && (n->left = plan__copy_node(a, e->left)) == NULL)
			return NULL;
		if (sql_expr_list_push(a, &d->split_points, n) != 0)
			return NULL;
	}
	return d;
}

static int set_ddl_sql(plan_ctx *c, router_plan *p, sql_buf *b)
{
	p->sql_single = plan__buf_dup(c->arena, b);
	sql_buf_free(b);
	if (p->sql_single == NULL) {
		plan__oom(c);
		return -1;
	}
	return 0;
}

static int build_create_table(plan_ctx *c, const catalog *cat, router_plan *p,
			      const sql_create_table *def)
{
	if (catalog_table_check(cat, def, c->err) != 0) {
		if (c->err->position == 0 && strcmp(c->err->sqlstate, "42P07") != 0)
			c->err->position = plan__pos(c, strcmp(c->err->sqlstate, "42703") == 0
							       ? def->partition_pos
							       : def->pos);
		return -1;
	}
	if ((p->create_def = copy_create(c->arena, def)) == NULL ||
	    (p->table = dup_name(c->arena, def->name)) == NULL) {
		plan__oom(c);
		return -1;
	}
	sql_create_table shard = *def;
	shard.if_not_exists = true;
	sql_buf b;
	sql_buf_init(&b);
	sql_render_create_table(&b, &shard);
	return set_ddl_sql(c, p, &b);
}

static int build_drop_table(plan_ctx *c, const catalog *cat, router_plan *p,
			    const sql_drop_table *d)
{
	p->table_known = catalog_table_get(cat, d->name) != NULL;
	p->if_exists = d->if_exists;
	if (!p->table_known && !d->if_exists) {
		sql_error_set(c->err, "42P01", plan__pos(c, d->pos), "table \"%s\" does not exist",
			      d->name);
		return -1;
	}
	if ((p->table = dup_name(c->arena, d->name)) == NULL) {
		plan__oom(c);
		return -1;
	}
	sql_drop_table shard = *d;
	shard.if_exists = true;
	sql_buf b;
	sql_buf_init(&b);
	sql_render_drop_table(&b, &shard);
	return set_ddl_sql(c, p, &b);
}

static int build_create_index(plan_ctx *c, const catalog *cat, router_plan *p,
			      const sql_create_index *ix)
{
	const catalog_table *t = catalog_table_get(cat, ix->table);
	if (t == NULL) {
		sql_error_set(c->err, "42P01", plan__pos(c, ix->table_pos),
			      "relation \"%s\" does not exist", ix->table);
		return -1;
	}
	bool has_key = false;
	for (size_t i = 0; i < ix->columns.n; i++) {
		const sql_index_column *col = &ix->columns.items[i];
		bool found = false;
		for (size_t j = 0; j < t->ncols; j++) {
			if (strcmp(t->cols[j].name, col->name) == 0) {
				found = true;
				has_key |= (int)j == t->partition_col;
			}
		}
		if (!found) {
			sql_error_set(c->err, "42703", plan__pos(c, col->pos),
				      "column \"%s\" does not exist", col->name);
			return -1;
		}
	}
	if (ix->unique && t->partition_col >= 0 && !has_key) {
		sql_error_set(c->err, "0A000", plan__pos(c, ix->table_pos),
			      "unique index on partitioned table must include all partitioning "
			      "columns");
		return -1;
	}
	if ((p->table = dup_name(c->arena, ix->table)) == NULL) {
		plan__oom(c);
		return -1;
	}
	sql_create_index shard = *ix;
	shard.if_not_exists = true;
	sql_buf b;
	sql_buf_init(&b);
	sql_render_create_index(&b, &shard);
	return set_ddl_sql(c, p, &b);
}

/* ---- plan_build ------------------------------------------------------------------------ */

/* Highest ?n in SQLite SQL, outside string literals and quoted names. */
static int sql_max_param(const char *s)
{
	int m = 0;
	if (s == NULL)
		return 0;
	for (const char *q = s; *q; q++) {
		if (*q == '\'' || *q == '"') {
			char quote = *q;
			for (q++; *q; q++)
				if (*q == quote) {
					if (q[1] == quote)
						q++;
					else
						break;
				}
			if (*q == 0)
				break;
		} else if (*q == '?') {
			long n = strtol(q + 1, NULL, 10);
			if (n > m && n <= 65535)
				m = (int)n;
		}
	}
	return m;
}

static int lookup_table(plan_ctx *c, const catalog *cat, router_plan *p, const char *name,
			size_t pos)
{
	const catalog_table *t = catalog_table_get(cat, name);
	if (t == NULL) {
		sql_error_set(c->err, "42P01", plan__pos(c, pos), "relation \"%s\" does not exist",
			      name);
		return -1;
	}
	c->table = t;
	if ((p->table = dup_name(c->arena, t->name)) == NULL) {
		plan__oom(c);
		return -1;
	}
	p->table_epoch = t->created_epoch;
	p->target = t->partition == SQL_PARTITION_HASH    ? PLAN_TARGET_HASH
		    : t->partition == SQL_PARTITION_RANGE ? PLAN_TARGET_RANGE
							  : PLAN_TARGET_REFERENCE;
	return 0;
}

int plan_build(const catalog *cat, const sql_stmt *stmt, const uint32_t *param_types,
	       size_t nparam_types, router_plan **out, sql_error *err)
{
	*out = NULL;
	memset(err, 0, sizeof *err);
	router_plan *p = calloc(1, sizeof *p);
	if (p == NULL || (p->arena = sql_arena_new()) == NULL) {
		free(p);
		sql_error_set(err, "53200", 0, "out of memory");
		return -1;
	}
	size_t np = (size_t)(stmt->max_param > 0 ? stmt->max_param : 0);
	if (nparam_types > np)
		np = nparam_types;
	p->nparams = np;
	p->param_types = sql_arena_alloc(p->arena, (np ? np : 1) * sizeof *p->param_types);
	plan_ctx c = {.stmt = stmt, .arena = p->arena, .ptypes = p->param_types, .nptypes = np,
		      .err = err};
	if (p->param_types == NULL) {
		plan__oom(&c);
		goto fail;
	}
	for (size_t i = 0; i < nparam_types && i < np; i++)
		p->param_types[i] = param_types[i];

	int rc;
	switch (stmt->kind) {
	case SQL_STMT_SELECT:
		p->kind = PLAN_SELECT;
		if (stmt->select.from != NULL) {
			if (lookup_table(&c, cat, p, stmt->select.from->name, stmt->select.from->pos))
				goto fail;
			c.alias = stmt->select.from->alias;
		}
		rc = plan__build_select(&c, p, &stmt->select);
		break;
	case SQL_STMT_INSERT:
		p->kind = PLAN_INSERT;
		rc = lookup_table(&c, cat, p, stmt->insert.table, stmt->insert.table_pos) ||
		     plan__build_insert(&c, p, &stmt->insert);
		break;
	case SQL_STMT_UPDATE:
		p->kind = PLAN_UPDATE;
		rc = lookup_table(&c, cat, p, stmt->update.table, stmt->update.table_pos) ||
		     plan__build_update(&c, p, &stmt->update);
		break;
	case SQL_STMT_DELETE:
		p->kind = PLAN_DELETE;
		rc = lookup_table(&c, cat, p, stmt->delete_.table, stmt->delete_.table_pos) ||
		     plan__build_delete(&c, p, &stmt->delete_);
		break;
	case SQL_STMT_CREATE_TABLE:
		p->kind = PLAN_CREATE_TABLE;
		rc = build_create_table(&c, cat, p, &stmt->create_table);
		break;
	case SQL_STMT_DROP_TABLE:
		p->kind = PLAN_DROP_TABLE;
		rc = build_drop_table(&c, cat, p, &stmt->drop_table);
		break;
	case SQL_STMT_CREATE_INDEX:
		p->kind = PLAN_CREATE_INDEX;
		rc = build_create_index(&c, cat, p, &stmt->create_index);
		break;
	default:
		sql_error_set(err, "0A000", 0, "%s is not a statement the planner handles",
			      sql_stmt_tag(stmt));
		goto fail;
	}
	if (rc != 0)
		goto fail;
	for (size_t i = 0; i < np; i++)
		p->param_types[i] = plan__final_type(p->param_types[i]);
	p->single_max_param = sql_max_param(p->sql_single);
	p->scatter_max_param = sql_max_param(p->sql_scatter);
	p->merge_max_param = sql_max_param(p->sql_merge);
	*out = p;
	return 0;
fail:
	if (err->sqlstate[0] == 0)
		sql_error_set(err, "XX000", 0, "internal error while planning");
	plan_free(p);
	return -1;
}

void plan_free(router_plan *p)
{
	if (p == NULL)
		return;
	sql_arena_free(p->arena);
	free(p);
}

/* ---- accessors ----------------------------------------------------------------------------- */

plan_kind plan_kind_of(const router_plan *p)
{
	return p->kind;
}

const char *plan_table_name(const router_plan *p)
{
	return p->table;
}

bool plan_writes(const router_plan *p)
{
	return p->kind != PLAN_SELECT;
}

size_t plan_nparams(const router_plan *p)
{
	return p->nparams;
}

uint32_t plan_param_type(const router_plan *p, size_t i)
{
	return i < p->nparams ? p->param_types[i] : PLAN_OID_TEXT;
}

size_t plan_ncols(const router_plan *p)
{
	return p->ncols;
}

const char *plan_col_name(const router_plan *p, size_t i)
{
	return i < p->ncols ? p->col_names[i] : NULL;
}

uint32_t plan_col_type(const router_plan *p, size_t i)
{
	return i < p->ncols ? p->col_types[i] : PLAN_OID_TEXT;
}

/* ---- after DDL ----------------------------------------------------------------------------- */

int plan_apply_ddl(const router_plan *p, catalog *cat, sql_error *err)
{
	switch (p->kind) {
	case PLAN_CREATE_TABLE:
		return catalog_table_create(cat, p->create_def, err);
	case PLAN_DROP_TABLE:
		if (catalog_table_get(cat, p->table) == NULL)
			return 0; /* IF EXISTS, or dropped meanwhile */
		return catalog_table_drop(cat, p->table, err);
	case PLAN_CREATE_INDEX:
		return 0; /* indexes live only on the shards */
	default:
		return 0;
	}
}

/* ---- EXPLAIN ------------------------------------------------------------------------------ */

int plan_explain(const router_plan *p, const plan_batch *b, const catalog *cat, sql_buf *out)
{
	for (size_t i = 0; i < b->n; i++) {
		const plan_request *r = &b->reqs[i];
		const char *addr = catalog_shard_addr(cat, r->shard);
		sql_buf_printf(out, "Shard %zu (%s): %s -- %s", r->shard, addr ? addr : "?", r->sql,
			       b->why ? b->why : "");
		if (r->nbuckets > 0) {
			sql_buf_printf(out, "; bucket%s", r->nbuckets == 1 ? "" : "s");
			for (uint32_t k = 0; k < r->nbuckets && k < 16; k++)
				sql_buf_printf(out, "%s %u", k ? "," : "", r->buckets[k]);
			if (r->nbuckets > 16)
				sql_buf_printf(out, ", ... (%u)", r->nbuckets);
		}
		sql_buf_puts(out, "\n");
	}
	if (p->kind == PLAN_SELECT && b->n > 1 && p->merge_concat)
		sql_buf_printf(out, "Router merge of %zu shards: concatenation\n", b->n);
	else if (p->kind == PLAN_SELECT && b->n > 1 && p->sql_merge != NULL)
		sql_buf_printf(out, "Router merge of %zu shards: %s\n", b->n, p->sql_merge);
	return out->failed ? -1 : 0;
}
