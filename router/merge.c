/*
 * merge.c — from the shards' answers to the client's result.
 *
 *   SELECT, one request     the shard ran the whole query: rows copied as
 *                           they are.
 *   SELECT, several, no     the answers' rows one after the other.
 *   ORDER/LIMIT/DISTINCT
 *   SELECT, several         every shard ran plan->sql_scatter; their rows
 *                           are loaded into table m(c0, ..., cN) of a
 *                           private in-memory SQLite database and
 *                           plan->sql_merge runs over it (plan_select.c
 *                           says what that query does).  The database lives
 *                           for one plan_merge() call.
 *   INSERT/UPDATE/DELETE    changes summed over the requests; for a
 *                           reference table every shard applied the same
 *                           write, so the first answer's count is the count.
 *   DDL                     the command tag only.
 *
 * Values keep their SQLite storage class end to end (an INTEGER stays an
 * INTEGER through m), so the merge query orders and compares them as the
 * shards did.  A plan_result owns its cells: text and blobs are copied into
 * result->storage (an sql_arena) and stay valid after the answers are freed.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plan_int.h"

static int copy_value(sql_arena *a, const wire_value *from, wire_value *to)
{
	*to = *from;
	if (from->type == WIRE_TEXT || from->type == WIRE_BLOB) {
		char *p = sql_arena_alloc(a, (size_t)from->len + 1);
		if (p == NULL)
			return -1;
		if (from->len)
			memcpy(p, from->p, from->len);
		p[from->len] = 0;
		to->p = p;
	}
	return 0;
}

static int alloc_cells(plan_result *out, size_t ncols, size_t nrows)
{
	sql_arena *a = out->storage;
	out->ncols = ncols;
	if (ncols == 0 || nrows == 0)
		return 0;
	if (nrows > SIZE_MAX / ncols / sizeof(wire_value))
		return -1;
	out->cells = sql_arena_alloc(a, ncols * nrows * sizeof *out->cells);
	return out->cells ? 0 : -1;
}

static int pass_through(const router_plan *p, const wire_response *r, plan_result *out,
			sql_error *err)
{
	size_t width = p->ncols + p->single_extra_cols;
	if (r->ncols != width && r->nrows > 0) {
		sql_error_set(err, "XX000", 0, "shard returned %u columns, expected %zu", r->ncols,
			      width);
		return -1;
	}
	if (alloc_cells(out, p->ncols, r->nrows) != 0)
		goto oom;
	/* Hidden trailing columns (plan_select.c) are dropped. */
	for (size_t row = 0; row < r->nrows; row++)
		for (size_t c = 0; c < p->ncols; c++)
			if (copy_value(out->storage, &r->cells[row * width + c],
				       &out->cells[row * p->ncols + c]) != 0)
				goto oom;
	out->nrows = r->nrows;
	return 0;
oom:
	sql_error_set(err, "53200", 0, "out of memory");
	return -1;
}

/* Every answer's rows one after the other (plan->merge_concat). */
static int concat_rows(const router_plan *p, const plan_batch *b,
		       const wire_response *const *answers, plan_result *out, sql_error *err)
{
	size_t nrows = 0;
	for (size_t a = 0; a < b->n; a++) {
		if (answers[a]->nrows > 0 && answers[a]->ncols != p->ncols) {
			sql_error_set(err, "XX000", 0, "shard %zu returned %u columns, expected %zu",
				      b->reqs[a].shard, answers[a]->ncols, p->ncols);
			return -1;
		}
		nrows += answers[a]->nrows;
	}
	if (alloc_cells(out, p->ncols, nrows) != 0)
		goto oom;
	size_t k = 0;
	for (size_t a = 0; a < b->n; a++) {
		size_t n = (size_t)answers[a]->nrows * p->ncols;
		for (size_t i = 0; i < n; i++)
			if (copy_value(out->storage, &answers[a]->cells[i], &out->cells[k++]) != 0)
				goto oom;
	}
	out->nrows = nrows;
	return 0;
oom:
	sql_error_set(err, "53200", 0, "out of memory");
	return -1;
}

static int bind_value(sqlite3_stmt *st, int i, const wire_value *v)
{
	switch (v->type) {
	case WIRE_INT: return sqlite3_bind_int64(st, i, v->i);
	case WIRE_REAL: return sqlite3_bind_double(st, i, v->r);
	case WIRE_TEXT: return sqlite3_bind_text(st, i, v->p, (int)v->len, SQLITE_STATIC);
	case WIRE_BLOB: return sqlite3_bind_blob(st, i, v->p, (int)v->len, SQLITE_STATIC);
	case WIRE_NULL: break;
	}
	return sqlite3_bind_null(st, i);
}

static void merge_error(sqlite3 *db, sql_error *err)
{
	const char *msg = db ? sqlite3_errmsg(db) : "out of memory";
	const char *state = strstr(msg, "integer overflow") ? "22003" : "XX000";
	sql_error_set(err, state, 0, "merging shard results failed: %s", msg);
}

/* Load every answer into m, run the merge query, collect its rows. */
static int merge_rows(const router_plan *p, const plan_batch *b,
		      const wire_response *const *answers, plan_result *out, sql_error *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL, *q = NULL;
	sql_buf sql;
	sql_buf_init(&sql);
	size_t nc = p->scatter_ncols;
	int rc = -1;

	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK)
		goto dberr;
	sql_buf_puts(&sql, "CREATE TABLE m(");
	for (size_t i = 0; i < nc; i++)
		sql_buf_printf(&sql, "%sc%zu", i ? ", " : "", i);
	sql_buf_puts(&sql, ")");
	if (sql.failed)
		goto oom;
	if (sqlite3_exec(db, sql.data, NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	sql_buf_reset(&sql);
	sql_buf_puts(&sql, "INSERT INTO m VALUES (");
	for (size_t i = 0; i < nc; i++)
		sql_buf_puts(&sql, i ? ", ?" : "?");
	sql_buf_puts(&sql, ")");
	if (sql.failed)
		goto oom;
	if (sqlite3_prepare_v2(db, sql.data, -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	for (size_t a = 0; a < b->n; a++) {
		const wire_response *r = answers[a];
		if (r->nrows > 0 && r->ncols != nc) {
			sql_error_set(err, "XX000", 0, "shard %zu returned %u columns, expected %zu",
				      b->reqs[a].shard, r->ncols, nc);
			goto out;
		}
		for (uint32_t row = 0; row < r->nrows; row++) {
			const wire_value *cells = r->cells + (size_t)row * nc;
			for (size_t i = 0; i < nc; i++)
				if (bind_value(ins, (int)i + 1, &cells[i]) != SQLITE_OK)
					goto dberr;
			if (sqlite3_step(ins) != SQLITE_DONE)
				goto dberr;
			sqlite3_reset(ins);
		}
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;

	if (sqlite3_prepare_v2(db, p->sql_merge, -1, &q, NULL) != SQLITE_OK)
		goto dberr;
	/* The merge query's parameters (LIMIT, OFFSET, HAVING ...) are among
	 * the plan's: every request carries all of them (plan_int.h). */
	if (p->merge_max_param > 0) {
		if (b->n == 0 || (size_t)p->merge_max_param > p->nparams) {
			sql_error_set(err, "08P01", 0, "merge query needs %d parameters",
				      p->merge_max_param);
			goto out;
		}
		for (int i = 0; i < p->merge_max_param; i++)
			if (bind_value(q, i + 1, &b->reqs[0].params[i]) != SQLITE_OK)
				goto dberr;
	}
	size_t ncols = p->ncols, cap = 0, nrows = 0;
	wire_value *cells = NULL;
	int step;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if (nrows == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			wire_value *n = realloc(cells, ncap * (ncols ? ncols : 1) * sizeof *n);
			if (n == NULL) {
				free(cells);
				goto oom;
			}
			cells = n;
			cap = ncap;
		}
		for (size_t i = 0; i < ncols; i++) {
			wire_value v = {0};
			int t = sqlite3_column_type(q, (int)i);
			if (t == SQLITE_INTEGER) {
				v.type = WIRE_INT;
				v.i = sqlite3_column_int64(q, (int)i);
			} else if (t == SQLITE_FLOAT) {
				v.type = WIRE_REAL;
				v.r = sqlite3_column_double(q, (int)i);
			} else if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
				const void *d = t == SQLITE_TEXT ? (const void *)sqlite3_column_text(q, (int)i)
								 : sqlite3_column_blob(q, (int)i);
				wire_value tmp = {.type = t == SQLITE_TEXT ? WIRE_TEXT : WIRE_BLOB,
						  .p = d ? d : "",
						  .len = (uint32_t)sqlite3_column_bytes(q, (int)i)};
				if (copy_value(out->storage, &tmp, &v) != 0) {
					free(cells);
					goto oom;
				}
			}
			cells[nrows * ncols + i] = v;
		}
		nrows++;
	}
	if (step != SQLITE_DONE) {
		free(cells);
		goto dberr;
	}
	if (alloc_cells(out, ncols, nrows) != 0) {
		free(cells);
		goto oom;
	}
	if (nrows && ncols)
		memcpy(out->cells, cells, nrows * ncols * sizeof *cells);
	free(cells);
	out->nrows = nrows;
	rc = 0;
	goto out;
oom:
	sql_error_set(err, "53200", 0, "out of memory");
	goto out;
dberr:
	merge_error(db, err);
out:
	sql_buf_free(&sql);
	sqlite3_finalize(ins);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return rc;
}

int plan_merge(const router_plan *p, const plan_batch *b, const wire_response *const *answers,
	       plan_result *out, sql_error *err)
{
	memset(out, 0, sizeof *out);
	if ((out->storage = sql_arena_new()) == NULL) {
		sql_error_set(err, "53200", 0, "out of memory");
		return -1;
	}
	int64_t changes = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (answers[i] == NULL || answers[i]->status != WIRE_OK) {
			sql_error_set(err, "XX000", 0, "shard %zu did not answer OK", b->reqs[i].shard);
			goto fail;
		}
		changes += answers[i]->changes;
	}
	if (p->target == PLAN_TARGET_REFERENCE && p->kind != PLAN_SELECT && b->n > 0)
		changes = answers[0]->changes;

	switch (p->kind) {
	case PLAN_SELECT:
		out->ncols = p->ncols;
		if (b->n == 1) {
			if (pass_through(p, answers[0], out, err) != 0)
				goto fail;
		} else if (b->n > 1) {
			if ((p->merge_concat ? concat_rows(p, b, answers, out, err)
					     : merge_rows(p, b, answers, out, err)) != 0)
				goto fail;
		}
		snprintf(out->tag, sizeof out->tag, "SELECT %zu", out->nrows);
		return 0;
	case PLAN_INSERT:
		out->changes = changes;
		snprintf(out->tag, sizeof out->tag, "INSERT 0 %lld", (long long)changes);
		return 0;
	case PLAN_UPDATE:
		out->changes = changes;
		snprintf(out->tag, sizeof out->tag, "UPDATE %lld", (long long)changes);
		return 0;
	case PLAN_DELETE:
		out->changes = changes;
		snprintf(out->tag, sizeof out->tag, "DELETE %lld", (long long)changes);
		return 0;
	case PLAN_CREATE_TABLE:
		snprintf(out->tag, sizeof out->tag, "CREATE TABLE");
		return 0;
	case PLAN_DROP_TABLE:
		snprintf(out->tag, sizeof out->tag, "DROP TABLE");
		return 0;
	case PLAN_CREATE_INDEX:
		snprintf(out->tag, sizeof out->tag, "CREATE INDEX");
		return 0;
	}
	sql_error_set(err, "XX000", 0, "unknown plan kind");
fail:
	plan_result_free(out);
	return -1;
}

void plan_result_free(plan_result *r)
{
	if (r == NULL)
		return;
	sql_arena_free(r->storage);
	memset(r, 0, sizeof *r);
}
