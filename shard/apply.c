/*
 * apply.c — changeset applier with cached statements (see apply.h).
 *
 * Invariants:
 *  - A table entry describes the table as it was at schema generation
 *    a->gen; any DDL on the shard (store_schema_gen() moves) drops them all.
 *  - Statements come from the store's internal cache (store_internal()),
 *    which owns them; an entry keeps only the pointers.
 *  - A changeset whose tables do not match what table_info says (a table
 *    gone, a column count or primary key that differs) is handed whole to
 *    sqlite3changeset_apply(), before anything is applied here.
 *
 * Statements, for a table of n columns c1..cn:
 *   INSERT INTO t VALUES (?1, ..., ?n)
 *   DELETE FROM t WHERE pk IS ?k ... AND (?i IS NULL OR ci IS ?i) ...
 *   UPDATE t SET ci = CASE WHEN ?(3i-2) THEN ?(3i) ELSE ci END ...
 *     WHERE pk IS ?(3k-1) ... AND (?(3i-1) IS NULL OR ci IS ?(3i-1)) ...
 *   bound to the old values (DELETE), and for UPDATE ?(3i-2) says column i
 *   changed, ?(3i-1) is its old value and ?(3i) its new one (a changeset
 *   carries both only for changed columns; primary key columns never
 *   change in a changeset).
 *  - Old values are compared where the changeset has them, except NULLs:
 *    SQLite records NULL as the old value of a column that ALTER TABLE ADD
 *    COLUMN added after the row was written, although the row reads the
 *    column's DEFAULT (sqlite3changeset_apply then reports a conflict that
 *    is not one).  Row locks already keep other writers off these rows;
 *    the comparison is a second line of defence.
 */
#include "shard/apply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txn/hmap.h"

#define MAX_PASSES 8

typedef struct {
	int ncol;
	unsigned char *pk;        /* ncol flags */
	int ok;                   /* table exists and was described */
	sqlite3_stmt *ins, *del, *upd;
} table_entry;

struct shard_applier {
	shard_store *st;
	hmap tables;              /* table name -> table_entry */
	uint64_t gen;
};

shard_applier *applier_new(shard_store *st)
{
	shard_applier *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->st = st;
	hmap_init(&a->tables);
	a->gen = store_schema_gen(st);
	return a;
}

static void forget_tables(shard_applier *a)
{
	size_t it;
	for (hmap_entry *e = hmap_first(&a->tables, &it); e; e = hmap_next(&a->tables, e, &it)) {
		table_entry *t = e->value;
		free(t->pk);
		free(t);
	}
	hmap_free(&a->tables);
	hmap_init(&a->tables);
}

void applier_free(shard_applier *a)
{
	if (!a)
		return;
	forget_tables(a);
	free(a);
}

/* ---- describing a table ------------------------------------------------------------ */

typedef struct {
	char *p;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

/* A quoted identifier: "name" with inner quotes doubled. */
static void sb_ident(sbuf *b, const char *name)
{
	sb_add(b, "\"");
	for (const char *q = name; *q; q++)
		sb_add(b, *q == '"' ? "\"\"" : "%c", *q);
	sb_add(b, "\"");
}

static sqlite3_stmt *prepare_sb(shard_applier *a, sbuf *b)
{
	sqlite3_stmt *s = b->oom ? NULL : store_internal(a->st, b->p);
	free(b->p);
	memset(b, 0, sizeof *b);
	return s;
}

static table_entry *describe(shard_applier *a, const char *table)
{
	table_entry *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	sqlite3_stmt *q = store_internal(a->st, "SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid");
	char **names = NULL;
	int ncol = 0, cap = 0;
	if (q) {
		sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
		while (sqlite3_step(q) == SQLITE_ROW) {
			if (ncol == cap) {
				cap = cap ? cap * 2 : 8;
				char **nn = realloc(names, (size_t)cap * sizeof *nn);
				unsigned char *np = realloc(t->pk, (size_t)cap);
				if (nn)
					names = nn;
				if (np)
					t->pk = np;
				if (!nn || !np)
					break;
			}
			const char *nm = (const char *)sqlite3_column_text(q, 0);
			names[ncol] = strdup(nm ? nm : "");
			t->pk[ncol] = sqlite3_column_int(q, 1) > 0;
			if (!names[ncol])
				break;
			ncol++;
		}
		sqlite3_reset(q);
		sqlite3_clear_bindings(q);
	}
	t->ncol = ncol;
	if (ncol > 0) {
		sbuf b = {0};
		sb_add(&b, "INSERT INTO main.");
		sb_ident(&b, table);
		sb_add(&b, " VALUES (");
		for (int i = 0; i < ncol; i++)
			sb_add(&b, "%s?%d", i ? ", " : "", i + 1);
		sb_add(&b, ")");
		t->ins = prepare_sb(a, &b);

		sb_add(&b, "DELETE FROM main.");
		sb_ident(&b, table);
		sb_add(&b, " WHERE ");
		for (int i = 0; i < ncol; i++) {
			sb_add(&b, "%s", i ? " AND " : "");
			if (t->pk[i]) {
				sb_ident(&b, names[i]);
				sb_add(&b, " IS ?%d", i + 1);
			} else {
				sb_add(&b, "(?%d IS NULL OR ", i + 1);
				sb_ident(&b, names[i]);
				sb_add(&b, " IS ?%d)", i + 1);
			}
		}
		t->del = prepare_sb(a, &b);

		sb_add(&b, "UPDATE main.");
		sb_ident(&b, table);
		sb_add(&b, " SET ");
		int nset = 0;
		for (int i = 0; i < ncol; i++) {
			if (t->pk[i])
				continue;
			sb_add(&b, "%s", nset++ ? ", " : "");
			sb_ident(&b, names[i]);
			sb_add(&b, " = CASE WHEN ?%d THEN ?%d ELSE ", 3 * i + 1, 3 * i + 3);
			sb_ident(&b, names[i]);
			sb_add(&b, " END");
		}
		sb_add(&b, " WHERE ");
		for (int i = 0; i < ncol; i++) {
			sb_add(&b, "%s", i ? " AND " : "");
			if (t->pk[i]) {
				sb_ident(&b, names[i]);
				sb_add(&b, " IS ?%d", 3 * i + 2);
			} else {
				sb_add(&b, "(?%d IS NULL OR ", 3 * i + 2);
				sb_ident(&b, names[i]);
				sb_add(&b, " IS ?%d)", 3 * i + 2);
			}
		}
		/* a table with only primary key columns has nothing to update */
		if (nset > 0)
			t->upd = prepare_sb(a, &b);
		else
			free(b.p);
		t->ok = t->ins && t->del && (t->upd || nset == 0);
	}
	for (int i = 0; i < ncol; i++)
		free(names[i]);
	free(names);
	return t;
}

static table_entry *table_get(shard_applier *a, const char *table)
{
	table_entry *t = hmap_get(&a->tables, table, strlen(table));
	if (t)
		return t;
	t = describe(a, table);
	if (t && hmap_put(&a->tables, table, strlen(table), t) != 0) {
		free(t->pk);
		free(t);
		t = NULL;
	}
	return t;
}

/* ---- applying ----------------------------------------------------------------------- */

/* Do the changeset's tables match their descriptions?  1 yes, 0 no. */
static int matches(shard_applier *a, const void *cs, int len)
{
	sqlite3_changeset_iter *it = NULL;
	if (sqlite3changeset_start(&it, len, (void *)cs) != SQLITE_OK)
		return 0;
	int ok = 1;
	while (ok && sqlite3changeset_next(it) == SQLITE_ROW) {
		const char *tab;
		int ncol, op, indirect;
		unsigned char *pk;
		int npk;
		if (sqlite3changeset_op(it, &tab, &ncol, &op, &indirect) != SQLITE_OK ||
		    sqlite3changeset_pk(it, &pk, &npk) != SQLITE_OK) {
			ok = 0;
			break;
		}
		table_entry *t = table_get(a, tab);
		if (!t || !t->ok || t->ncol != ncol || npk != ncol) {
			ok = 0;
			break;
		}
		for (int i = 0; i < ncol; i++)
			if ((pk[i] != 0) != (t->pk[i] != 0))
				ok = 0;
	}
	if (sqlite3changeset_finalize(it) != SQLITE_OK)
		ok = 0;
	return ok;
}

static int is_pk_conflict(int rc)
{
	return rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_ROWID;
}

/* Apply one change.  APPLY_OK, or what went wrong. */
static apply_result apply_one(shard_applier *a, sqlite3_changeset_iter *it, int *rc_out)
{
	const char *tab;
	int ncol, op, indirect;
	if (sqlite3changeset_op(it, &tab, &ncol, &op, &indirect) != SQLITE_OK)
		return APPLY_ERROR;
	table_entry *t = table_get(a, tab);
	if (!t || !t->ok)
		return APPLY_ERROR;
	sqlite3 *db = store_db(a->st);
	sqlite3_stmt *s;
	sqlite3_value *v;
	if (op == SQLITE_INSERT) {
		s = t->ins;
		for (int i = 0; i < ncol; i++)
			if (sqlite3changeset_new(it, i, &v) == SQLITE_OK && v)
				sqlite3_bind_value(s, i + 1, v);
	} else if (op == SQLITE_DELETE) {
		s = t->del;
		for (int i = 0; i < ncol; i++)
			if (sqlite3changeset_old(it, i, &v) == SQLITE_OK && v)
				sqlite3_bind_value(s, i + 1, v);
	} else {
		s = t->upd;
		if (!s)
			return APPLY_OK;  /* only primary key columns: nothing changes */
		for (int i = 0; i < ncol; i++) {
			sqlite3_value *nv = NULL, *ov = NULL;
			sqlite3changeset_new(it, i, &nv);
			sqlite3changeset_old(it, i, &ov);
			int changed = nv != NULL && !t->pk[i];
			sqlite3_bind_int(s, 3 * i + 1, changed);
			if (ov)
				sqlite3_bind_value(s, 3 * i + 2, ov);
			if (changed)
				sqlite3_bind_value(s, 3 * i + 3, nv);
		}
	}
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	else
		rc = sqlite3_reset(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_OK)
		return op != SQLITE_INSERT && sqlite3_changes(db) != 1 ? APPLY_CONFLICT : APPLY_OK;
	*rc_out = rc;
	if (is_pk_conflict(rc))
		return APPLY_CONFLICT;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return APPLY_CONSTRAINT;
	return APPLY_ERROR;
}

/* ---- the fallback ------------------------------------------------------------------- */

typedef struct {
	int conflict;
} fallback_ctx;

static int on_conflict(void *arg, int kind, sqlite3_changeset_iter *it)
{
	(void)it;
	((fallback_ctx *)arg)->conflict = kind;
	return SQLITE_CHANGESET_ABORT;
}

static apply_result fallback(shard_applier *a, const void *cs, int len, int *rc_out)
{
	fallback_ctx c = {0};
	int rc = sqlite3changeset_apply(store_db(a->st), len, (void *)cs, NULL, on_conflict, &c);
	if (rc == SQLITE_OK)
		return APPLY_OK;
	*rc_out = rc;
	if (c.conflict == SQLITE_CHANGESET_CONSTRAINT)
		return APPLY_CONSTRAINT;
	return c.conflict ? APPLY_CONFLICT : APPLY_ERROR;
}

apply_result applier_apply(shard_applier *a, const void *cs, int len, int *rc_out)
{
	*rc_out = SQLITE_OK;
	if (!cs || len <= 0)
		return APPLY_OK;
	uint64_t gen = store_schema_gen(a->st);
	if (gen != a->gen) {
		forget_tables(a);
		a->gen = gen;
	}
	if (!matches(a, cs, len))
		return fallback(a, cs, len, rc_out);

	/* Changes that hit a constraint are retried once everything else is
	 * in (two rows swapping a unique value), pass after pass while some
	 * make progress.  deferred[] holds their positions in the changeset. */
	int *deferred = NULL, ndeferred = 0, dcap = 0;
	int *retry = NULL, nretry = 0, rcap = 0;
	apply_result out = APPLY_OK;
	for (int pass = 0; pass < MAX_PASSES; pass++) {
		sqlite3_changeset_iter *it = NULL;
		if (sqlite3changeset_start(&it, len, (void *)cs) != SQLITE_OK) {
			out = APPLY_ERROR;
			break;
		}
		int pos = 0, r = 0, progress = 0;
		ndeferred = 0;
		while (out == APPLY_OK && sqlite3changeset_next(it) == SQLITE_ROW) {
			int mine = pass == 0;
			if (!mine) {
				while (r < nretry && retry[r] < pos)
					r++;
				mine = r < nretry && retry[r] == pos;
			}
			if (mine) {
				int rc = SQLITE_OK;
				apply_result ar = apply_one(a, it, &rc);
				if (ar == APPLY_CONSTRAINT) {
					if (ndeferred == dcap) {
						dcap = dcap ? dcap * 2 : 8;
						int *nd = realloc(deferred, (size_t)dcap * sizeof *nd);
						if (!nd) {
							out = APPLY_ERROR;
							*rc_out = SQLITE_NOMEM;
							break;
						}
						deferred = nd;
					}
					deferred[ndeferred++] = pos;
					*rc_out = rc;
				} else if (ar != APPLY_OK) {
					out = ar;
					*rc_out = rc;
				} else {
					progress = 1;
				}
			}
			pos++;
		}
		if (sqlite3changeset_finalize(it) != SQLITE_OK && out == APPLY_OK)
			out = APPLY_ERROR;
		if (out != APPLY_OK || ndeferred == 0)
			break;
		if (pass > 0 && !progress) {
			out = APPLY_CONSTRAINT;
			break;
		}
		int *tmp = retry, tcap = rcap;
		retry = deferred;
		rcap = dcap;
		nretry = ndeferred;
		deferred = tmp;
		dcap = tcap;
		if (pass == MAX_PASSES - 1)
			out = APPLY_CONSTRAINT;
	}
	free(deferred);
	free(retry);
	if (out == APPLY_OK)
		*rc_out = SQLITE_OK;
	return out;
}
