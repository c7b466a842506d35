/*
 * sagastep.c — the _sl_saga table (see sagastep.h).
 *
 * Invariant: every statement here is an internal one (no authorizer), run
 * by the writer thread inside the batch's transaction, and reset after use.
 */
#include "shard/sagastep.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const state_names[] = {
	"none", "done", "attention", "compensated", "void", "committed",
};

const char *sagastep_state_name(sagastep_state s)
{
	return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "unknown";
}

static sagastep_state state_of(const unsigned char *t)
{
	for (size_t i = 1; t && i < sizeof state_names / sizeof state_names[0]; i++)
		if (strcmp((const char *)t, state_names[i]) == 0)
			return (sagastep_state)i;
	return SS_NONE;
}

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int sagastep_init(shard_store *st, char *err, size_t errlen)
{
	if (store_exec(st,
		       "CREATE TABLE IF NOT EXISTS _sl_saga("
		       " saga INTEGER NOT NULL, step INTEGER NOT NULL, state TEXT NOT NULL,"
		       " changes INTEGER NOT NULL DEFAULT 0, changeset BLOB, comp BLOB,"
		       " message TEXT, at INTEGER NOT NULL, PRIMARY KEY(saga, step)) WITHOUT ROWID",
		       err, errlen) != 0 ||
	    store_exec(st,
		       "CREATE INDEX IF NOT EXISTS _sl_saga_open ON _sl_saga(saga)"
		       " WHERE state IN ('done', 'attention')",
		       err, errlen) != 0 ||
	    store_exec(st, "DROP INDEX IF EXISTS _sl_saga_at", err, errlen) != 0)
		return -1;
	return 0;
}

void sagastep_row_free(sagastep_row *row)
{
	sqlite3_free(row->changeset);
	free(row->comp);
	memset(row, 0, sizeof *row);
}

int sagastep_get(shard_store *st, uint64_t saga, uint32_t step, sagastep_row *row)
{
	memset(row, 0, sizeof *row);
	sqlite3_stmt *q = store_internal(st,
		"SELECT state, changes, changeset, comp, comp IS NOT NULL FROM _sl_saga WHERE saga = ?1 AND step = ?2");
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)saga);
	sqlite3_bind_int64(q, 2, step);
	int rc = sqlite3_step(q), ok = 0;
	if (rc == SQLITE_ROW) {
		row->state = state_of(sqlite3_column_text(q, 0));
		row->changes = sqlite3_column_int64(q, 1);
		int n = sqlite3_column_bytes(q, 2);
		if (n > 0 && (row->changeset = sqlite3_malloc(n)) != NULL) {
			memcpy(row->changeset, sqlite3_column_blob(q, 2), (size_t)n);
			row->cslen = n;
		} else if (n > 0) {
			ok = -1;
		}
		row->has_comp = sqlite3_column_int(q, 4);
		size_t m = (size_t)sqlite3_column_bytes(q, 3);
		if (m > 0 && (row->comp = malloc(m)) != NULL) {
			memcpy(row->comp, sqlite3_column_blob(q, 3), m);
			row->complen = m;
		} else if (m > 0) {
			ok = -1;
		}
	} else if (rc != SQLITE_DONE) {
		ok = -1;
	}
	sqlite3_reset(q);
	if (ok != 0)
		sagastep_row_free(row);
	return ok;
}

int sagastep_record(shard_store *st, const wire_request *r, const void *cs, int cslen, int64_t changes)
{
	uint8_t *comp = NULL;
	size_t complen = 0;
	if (r->comp) {
		/* the compensation is kept as a Request (sql + params) */
		wire_request c = {.op = WIRE_OP_EXEC, .sql = r->comp, .sql_len = r->comp_len,
				  .params = r->comp_params, .nparams = r->ncomp_params};
		if (wire_encode_request(&c, &comp, &complen) != 0)
			return -1;
	}
	sqlite3_stmt *q = store_internal(st,
		"INSERT INTO _sl_saga(saga, step, state, changes, changeset, comp, at)"
		" VALUES (?1, ?2, 'done', ?3, ?4, ?5, ?6)");
	if (!q) {
		free(comp);
		return -1;
	}
	sqlite3_bind_int64(q, 1, (sqlite3_int64)r->txn);
	sqlite3_bind_int64(q, 2, r->step);
	sqlite3_bind_int64(q, 3, changes);
	if (cs && cslen > 0)
		sqlite3_bind_blob(q, 4, cs, cslen, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 4);
	if (comp)
		sqlite3_bind_blob(q, 5, comp, (int)complen, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 5);
	sqlite3_bind_int64(q, 6, wall_us());
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	free(comp);
	return rc == SQLITE_DONE ? 0 : -1;
}

int sagastep_set(shard_store *st, uint64_t saga, uint32_t step, sagastep_state s, const char *message)
{
	int final = s == SS_COMPENSATED || s == SS_VOID || s == SS_COMMITTED;
	sqlite3_stmt *q = store_internal(st,
		final ? "INSERT INTO _sl_saga(saga, step, state, message, at) VALUES (?1, ?2, ?3, ?4, ?5)"
			" ON CONFLICT(saga, step) DO UPDATE SET state = ?3, message = ?4, at = ?5,"
			" changeset = NULL, comp = NULL"
		      : "INSERT INTO _sl_saga(saga, step, state, message, at) VALUES (?1, ?2, ?3, ?4, ?5)"
			" ON CONFLICT(saga, step) DO UPDATE SET state = ?3, message = ?4, at = ?5");
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)saga);
	sqlite3_bind_int64(q, 2, step);
	sqlite3_bind_text(q, 3, sagastep_state_name(s), -1, SQLITE_STATIC);
	if (message)
		sqlite3_bind_text(q, 4, message, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(q, 4);
	sqlite3_bind_int64(q, 5, wall_us());
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

int sagastep_end(shard_store *st, uint64_t saga)
{
	sqlite3_stmt *q = store_internal(st,
		"UPDATE _sl_saga SET state = 'committed', changeset = NULL, comp = NULL, at = ?2"
		" WHERE saga = ?1 AND state IN ('done', 'attention')");
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)saga);
	sqlite3_bind_int64(q, 2, wall_us());
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

int sagastep_purge(shard_store *st)
{
	/* saga ids are the router's wall-clock microseconds (router_new_txn):
	 * old sagas are a range of the primary key */
	sqlite3_stmt *q = store_internal(st,
		"DELETE FROM _sl_saga WHERE saga < ?1 AND at < ?1 AND state IN ('compensated', 'void', 'committed')");
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, wall_us() - (int64_t)SAGASTEP_KEEP_US);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? sqlite3_changes(sqlite3_db_handle(q)) : -1;
}

int sagastep_list(shard_store *st, store_result *res)
{
	static const char *cols[] = {"saga", "step", "state", "message", "age_ms"};
	store_result_columns(res, 5, cols);
	sqlite3_stmt *q = store_internal(st,
		"SELECT saga, step, state, message, at FROM _sl_saga INDEXED BY _sl_saga_open"
		" WHERE state IN ('done', 'attention') ORDER BY saga, step");
	if (!q)
		return -1;
	int64_t now = wall_us();
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		char a[5][40];
		const char *cells[5] = {a[0], a[1], a[2], (const char *)sqlite3_column_text(q, 3), a[4]};
		snprintf(a[0], sizeof a[0], "%" PRIu64, (uint64_t)sqlite3_column_int64(q, 0));
		snprintf(a[1], sizeof a[1], "%" PRId64, (int64_t)sqlite3_column_int64(q, 1));
		snprintf(a[2], sizeof a[2], "%s", (const char *)sqlite3_column_text(q, 2));
		snprintf(a[4], sizeof a[4], "%lld", (long long)((now - sqlite3_column_int64(q, 4)) / 1000));
		store_result_row_text(res, cells);
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- the derived compensation ---------------------------------------------------------- */

typedef struct {
	int mode;
	int conflicts;
	char *out;
	size_t outlen, used;
} undo_ctx;

static void describe_value(char *buf, size_t len, sqlite3_value *v)
{
	if (!v) {
		snprintf(buf, len, "?");
		return;
	}
	switch (sqlite3_value_type(v)) {
	case SQLITE_NULL:
		snprintf(buf, len, "NULL");
		break;
	case SQLITE_INTEGER:
		snprintf(buf, len, "%lld", (long long)sqlite3_value_int64(v));
		break;
	case SQLITE_FLOAT:
		snprintf(buf, len, "%g", sqlite3_value_double(v));
		break;
	case SQLITE_TEXT:
		snprintf(buf, len, "'%.40s'", (const char *)sqlite3_value_text(v));
		break;
	default:
		snprintf(buf, len, "<blob>");
		break;
	}
}

/* "accounts(1): row is now (1, 150), the step left (1, 200)" */
static void describe_conflict(undo_ctx *c, int kind, sqlite3_changeset_iter *it)
{
	const char *tab;
	int ncol, op, ind;
	unsigned char *pk;
	if (sqlite3changeset_op(it, &tab, &ncol, &op, &ind) != SQLITE_OK ||
	    sqlite3changeset_pk(it, &pk, &ncol) != SQLITE_OK)
		return;
	char key[128] = "", now[256] = "", was[256] = "";
	size_t kl = 0, nl = 0, wl = 0;
	for (int i = 0; i < ncol; i++) {
		char v[64];
		sqlite3_value *cur = NULL, *exp = NULL;
		if (kind == SQLITE_CHANGESET_DATA || kind == SQLITE_CHANGESET_CONFLICT)
			sqlite3changeset_conflict(it, i, &cur);
		/* the inverse's old values are the step's after-image */
		if (op == SQLITE_INSERT)
			sqlite3changeset_new(it, i, &exp);
		else
			sqlite3changeset_old(it, i, &exp);
		if (pk[i] && kl < sizeof key) {
			describe_value(v, sizeof v, exp ? exp : cur);
			kl += (size_t)snprintf(key + kl, sizeof key - kl, "%s%s", kl ? ", " : "", v);
		}
		if (cur && nl < sizeof now) {
			describe_value(v, sizeof v, cur);
			nl += (size_t)snprintf(now + nl, sizeof now - nl, "%s%s", i ? ", " : "", v);
		}
		if (wl < sizeof was) {
			describe_value(v, sizeof v, exp);
			wl += (size_t)snprintf(was + wl, sizeof was - wl, "%s%s", i ? ", " : "", v);
		}
	}
	if (c->used >= c->outlen)
		return;
	const char *what;
	if (kind == SQLITE_CHANGESET_NOTFOUND)
		what = "row is gone";
	else if (kind == SQLITE_CHANGESET_CONFLICT)
		what = "a row with this key was inserted";
	else if (kind == SQLITE_CHANGESET_CONSTRAINT)
		what = "restoring it violates a constraint";
	else
		what = "row changed";
	int n;
	if (nl)
		n = snprintf(c->out + c->used, c->outlen - c->used, "%s%s(%s): %s: now (%s), the step left (%s)",
			     c->used ? "; " : "", tab, key, what, now, was);
	else
		n = snprintf(c->out + c->used, c->outlen - c->used, "%s%s(%s): %s", c->used ? "; " : "", tab, key,
			     what);
	if (n > 0)
		c->used += (size_t)n;
}

static int on_undo_conflict(void *arg, int kind, sqlite3_changeset_iter *it)
{
	undo_ctx *c = arg;
	c->conflicts++;
	describe_conflict(c, kind, it);
	if (c->mode == WIRE_UNDO_OVERWRITE) {
		if (kind == SQLITE_CHANGESET_DATA || kind == SQLITE_CHANGESET_CONFLICT)
			return SQLITE_CHANGESET_REPLACE;
		if (kind == SQLITE_CHANGESET_NOTFOUND)
			return SQLITE_CHANGESET_OMIT;
		return SQLITE_CHANGESET_ABORT;
	}
	/* go on collecting (OMIT), but report failure: nothing is kept */
	return kind == SQLITE_CHANGESET_CONSTRAINT || kind == SQLITE_CHANGESET_FOREIGN_KEY ? SQLITE_CHANGESET_ABORT
											 : SQLITE_CHANGESET_OMIT;
}

int sagastep_apply_inverse(shard_store *st, const void *inv, int invlen, int mode, char *conflict,
			   size_t conflictlen, store_result *res)
{
	if (conflictlen)
		conflict[0] = 0;
	if (!inv || invlen == 0)
		return 0;
	undo_ctx c = {.mode = mode, .out = conflict, .outlen = conflictlen};
	sqlite3 *db = store_db(st);
	int rc = sqlite3changeset_apply(db, invlen, (void *)inv, NULL, on_undo_conflict, &c);
	if (rc != SQLITE_OK && rc != SQLITE_ABORT) {
		store_result_error(res, store_sqlstate(db, rc), "compensating: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (mode != WIRE_UNDO_OVERWRITE && (c.conflicts || rc == SQLITE_ABORT))
		return 1;
	if (rc == SQLITE_ABORT)
		return 1;
	return 0;
}
