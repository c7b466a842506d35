/*
 * sql_ast.c — the arena, error helpers, node constructors and the facts
 * about the subset (types, aggregates, PostgreSQL's column names and
 * command tags) shared by the parser, the renderer and the planner.
 *
 * Arena layout: a singly linked list of blocks, the newest first; small
 * allocations bump `used` in the head block, allocations above BIG_ALLOC
 * get a block of their own linked behind the head so the head's free space
 * is not wasted.  Every allocation is zeroed and aligned to
 * alignof(max_align_t).  Invariant: head == NULL or head->used <= head->size.
 * During a parse (sql__arena_set_oom_jump) an allocation failure longjmps
 * to the parser, which then frees the whole arena: no caller in the parser
 * ever sees NULL.
 */
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/sql.h"

/* ---- arena ------------------------------------------------------------- */

typedef struct arena_block {
	struct arena_block *next;
	size_t size, used;
	max_align_t data[];
} arena_block;

struct sql_arena {
	arena_block *head;
	size_t next_size;
	jmp_buf *oom;
};

#define FIRST_BLOCK 4096u
#define MAX_BLOCK (64u * 1024u)
#define BIG_ALLOC 1024u

sql_arena *sql_arena_new(void)
{
	sql_arena *a = calloc(1, sizeof *a);
	if (a != NULL)
		a->next_size = FIRST_BLOCK;
	return a;
}

void sql_arena_free(sql_arena *a)
{
	if (a == NULL)
		return;
	arena_block *b = a->head;
	while (b != NULL) {
		arena_block *next = b->next;
		free(b);
		b = next;
	}
	free(a);
}

void sql__arena_set_oom_jump(sql_arena *a, jmp_buf *jb)
{
	a->oom = jb;
}

static void *arena_fail(sql_arena *a)
{
	if (a->oom != NULL)
		longjmp(*a->oom, 1);
	return NULL;
}

void *sql_arena_alloc(sql_arena *a, size_t size)
{
	const size_t align = alignof(max_align_t);
	if (size == 0)
		size = 1;
	if (size > SIZE_MAX / 2)
		return arena_fail(a);
	size = (size + align - 1) & ~(align - 1);

	arena_block *h = a->head;
	if (h != NULL && h->size - h->used >= size) {
		void *p = (char *)h->data + h->used;
		h->used += size;
		memset(p, 0, size);
		return p;
	}
	size_t bsize = size > BIG_ALLOC ? size : a->next_size;
	arena_block *b = malloc(sizeof *b + bsize);
	if (b == NULL)
		return arena_fail(a);
	b->size = bsize;
	b->used = size;
	if (size > BIG_ALLOC && h != NULL) {
		b->next = h->next;
		h->next = b;
	} else {
		b->next = h;
		a->head = b;
		if (size <= BIG_ALLOC && a->next_size < MAX_BLOCK)
			a->next_size *= 2;
	}
	memset(b->data, 0, size);
	return b->data;
}

char *sql_arena_strndup(sql_arena *a, const char *s, size_t n)
{
	char *p = sql_arena_alloc(a, n + 1);
	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

char *sql_arena_strdup(sql_arena *a, const char *s)
{
	return sql_arena_strndup(a, s, strlen(s));
}

int sql_list_reserve(sql_arena *a, void *itemsp, size_t want, size_t *cap,
		     size_t elsize)
{
	if (want <= *cap)
		return 0;
	size_t ncap = *cap < 4 ? 8 : *cap * 2;
	if (ncap < want)
		ncap = want;
	if (ncap > SIZE_MAX / 4 / elsize) {
		arena_fail(a);
		return -1;
	}
	void *old;
	memcpy(&old, itemsp, sizeof old);
	void *p = sql_arena_alloc(a, ncap * elsize);
	if (p == NULL)
		return -1;
	if (old != NULL && *cap > 0)
		memcpy(p, old, *cap * elsize);
	memcpy(itemsp, &p, sizeof p);
	*cap = ncap;
	return 0;
}

/* ---- errors -------------------------------------------------------------- */

static void error_vset(sql_error *err, const char *sqlstate, int position,
		       const char *fmt, va_list ap)
{
	memset(err, 0, sizeof *err);
	snprintf(err->sqlstate, sizeof err->sqlstate, "%s", sqlstate);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	err->position = position;
}

void sql_error_set(sql_error *err, const char *sqlstate, int position,
		   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(err, sqlstate, position, fmt, ap);
	va_end(ap);
}

void sql__error_set(sql_error *err, const char *sqlstate, int position,
		    const char *fmt, ...)
{
	va_list ap;
	if (err->sqlstate[0] != 0)
		return; /* the first error wins */
	va_start(ap, fmt);
	error_vset(err, sqlstate, position, fmt, ap);
	va_end(ap);
}

int sql__char_position(const char *text, size_t len, size_t off)
{
	if (off == SQL_NO_POS)
		return 0;
	if (off > len)
		off = len;
	size_t chars = 0;
	for (size_t i = 0; i < off; i++)
		if (((unsigned char)text[i] & 0xC0) != 0x80)
			chars++;
	return chars >= (size_t)INT32_MAX ? INT32_MAX : (int)chars + 1;
}

/* ---- constructors ---------------------------------------------------------- */

void sql_expr_update_depth(sql_expr *e)
{
	int d = 0;
	if (e->left != NULL && e->left->depth > d)
		d = e->left->depth;
	if (e->right != NULL && e->right->depth > d)
		d = e->right->depth;
	if (e->third != NULL && e->third->depth > d)
		d = e->third->depth;
	for (size_t i = 0; i < e->args.n; i++)
		if (e->args.items[i] != NULL && e->args.items[i]->depth > d)
			d = e->args.items[i]->depth;
	e->depth = d + 1;
}

sql_expr *sql_expr_new(sql_arena *a, sql_expr_kind kind, size_t pos)
{
	sql_expr *e = sql_arena_alloc(a, sizeof *e);
	if (e != NULL) {
		e->kind = kind;
		e->pos = pos;
		e->depth = 1;
	}
	return e;
}

sql_expr *sql_expr_int(sql_arena *a, int64_t v)
{
	sql_expr *e = sql_expr_new(a, SQL_EXPR_LITERAL, SQL_NO_POS);
	if (e != NULL) {
		e->lit.kind = SQL_LIT_INT;
		e->lit.i = v;
	}
	return e;
}

sql_expr *sql_expr_string(sql_arena *a, const char *s, size_t len)
{
	sql_expr *e = sql_expr_new(a, SQL_EXPR_LITERAL, SQL_NO_POS);
	if (e == NULL)
		return NULL;
	e->lit.kind = SQL_LIT_STRING;
	e->lit.str = sql_arena_strndup(a, s, len);
	e->lit.len = len;
	return e->lit.str != NULL ? e : NULL;
}

sql_expr *sql_expr_null(sql_arena *a)
{
	return sql_expr_new(a, SQL_EXPR_LITERAL, SQL_NO_POS);
}

sql_expr *sql_expr_column(sql_arena *a, const char *table, const char *name)
{
	sql_expr *e = sql_expr_new(a, SQL_EXPR_COLUMN, SQL_NO_POS);
	if (e == NULL)
		return NULL;
	e->table = table != NULL ? sql_arena_strdup(a, table) : NULL;
	e->name = sql_arena_strdup(a, name);
	if (e->name == NULL || (table != NULL && e->table == NULL))
		return NULL;
	return e;
}

sql_expr *sql_expr_unary(sql_arena *a, sql_op op, sql_expr *operand)
{
	sql_expr *e = sql_expr_new(a, SQL_EXPR_UNARY, SQL_NO_POS);
	if (e != NULL) {
		e->op = op;
		e->left = operand;
		sql_expr_update_depth(e);
	}
	return e;
}

sql_expr *sql_expr_binary(sql_arena *a, sql_op op, sql_expr *l, sql_expr *r)
{
	sql_expr *e = sql_expr_new(a, SQL_EXPR_BINARY, SQL_NO_POS);
	if (e != NULL) {
		e->op = op;
		e->left = l;
		e->right = r;
		sql_expr_update_depth(e);
	}
	return e;
}

sql_expr *sql_expr_func(sql_arena *a, const char *name, sql_expr *const *args,
			size_t n, bool star, bool distinct)
{
	sql_expr *e = sql_expr_new(a, SQL_EXPR_FUNC, SQL_NO_POS);
	if (e == NULL || (e->name = sql_arena_strdup(a, name)) == NULL)
		return NULL;
	e->star = star;
	e->distinct = distinct;
	for (size_t i = 0; i < n; i++)
		if (SQL_LIST_PUSH(a, &e->args, args[i]) < 0)
			return NULL;
	sql_expr_update_depth(e);
	return e;
}

sql_expr *sql_expr_cast(sql_arena *a, sql_expr *operand, sql_type type)
{
	sql_expr *e = sql_expr_new(a, SQL_EXPR_CAST, SQL_NO_POS);
	if (e != NULL) {
		e->left = operand;
		e->type = type;
		sql_expr_update_depth(e);
	}
	return e;
}

int sql_expr_list_copy(sql_arena *a, const sql_expr_list *from,
		       sql_expr_list *to)
{
	sql_expr_list l = {0};
	for (size_t i = 0; i < from->n; i++)
		if (SQL_LIST_PUSH(a, &l, from->items[i]) < 0)
			return -1;
	*to = l;
	return 0;
}

int sql_expr_list_push(sql_arena *a, sql_expr_list *l, sql_expr *e)
{
	return SQL_LIST_PUSH(a, l, e);
}

/* ---- types ------------------------------------------------------------------- */

static const struct {
	const char *name;
	sql_type_kind kind;
} type_names[] = {
	{"bigint", SQL_TYPE_BIGINT},     {"int8", SQL_TYPE_BIGINT},
	{"integer", SQL_TYPE_INTEGER},   {"int", SQL_TYPE_INTEGER},
	{"int4", SQL_TYPE_INTEGER},      {"smallint", SQL_TYPE_SMALLINT},
	{"int2", SQL_TYPE_SMALLINT},     {"text", SQL_TYPE_TEXT},
	{"varchar", SQL_TYPE_VARCHAR},   {"character varying", SQL_TYPE_VARCHAR},
	{"char", SQL_TYPE_CHAR},         {"character", SQL_TYPE_CHAR},
	{"bpchar", SQL_TYPE_CHAR},       {"double precision", SQL_TYPE_DOUBLE},
	{"float8", SQL_TYPE_DOUBLE},     {"float", SQL_TYPE_DOUBLE},
	{"real", SQL_TYPE_REAL},         {"float4", SQL_TYPE_REAL},
	{"numeric", SQL_TYPE_NUMERIC},   {"decimal", SQL_TYPE_NUMERIC},
	{"boolean", SQL_TYPE_BOOLEAN},   {"bool", SQL_TYPE_BOOLEAN},
	{"bytea", SQL_TYPE_BYTEA},       {"timestamp", SQL_TYPE_TIMESTAMP},
	{"timestamp without time zone", SQL_TYPE_TIMESTAMP},
};

/* PostgreSQL types that exist but that the subset does not support. */
static const char *const unsupported_types[] = {
	"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial",
	"date", "time", "timetz", "timestamptz", "interval", "json", "jsonb",
	"uuid", "money", "inet", "cidr", "macaddr", "macaddr8", "bit",
	"varbit", "bit varying", "xml", "point", "line", "lseg", "box", "path",
	"polygon", "circle", "tsvector", "tsquery", "oid", "name", "regclass",
	"int4range", "int8range", "numrange", "tsrange", "tstzrange",
	"daterange", "time without time zone", "pg_lsn", "txid_snapshot",
};

int sql__type_resolve(const char *const *words, int nwords, const int64_t *mods,
		      int nmods, sql_type *out, sql_error *err, int pos)
{
	char name[160];
	if (nwords == 2)
		snprintf(name, sizeof name, "%s %s", words[0], words[1]);
	else
		snprintf(name, sizeof name, "%s", words[0]);

	memset(out, 0, sizeof *out);
	out->length = out->precision = out->scale = -1;
	for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
		if (strcmp(name, type_names[i].name) == 0)
			out->kind = type_names[i].kind;
	if (out->kind == SQL_TYPE_NONE) {
		for (size_t i = 0; i < sizeof unsupported_types / sizeof unsupported_types[0]; i++) {
			if (strcmp(name, unsupported_types[i]) == 0) {
				sql__error_set(err, "0A000", pos,
					       "type \"%s\" is not supported", name);
				return -1;
			}
		}
		sql__error_set(err, "42704", pos, "type \"%s\" does not exist", name);
		return -1;
	}

	const char *pgname = sql_type_pg_name(out->kind);
	switch (out->kind) {
	case SQL_TYPE_VARCHAR:
	case SQL_TYPE_CHAR:
		if (nmods > 1)
			goto bad_mods;
		if (nmods == 1) {
			if (mods[0] < 1) {
				sql__error_set(err, "22023", pos,
					       "length for type %s must be at least 1", pgname);
				return -1;
			}
			if (mods[0] > 10485760) {
				sql__error_set(err, "22023", pos,
					       "length for type %s cannot exceed 10485760", pgname);
				return -1;
			}
			out->length = (int32_t)mods[0];
		} else if (out->kind == SQL_TYPE_CHAR) {
			out->length = 1;
		}
		return 0;
	case SQL_TYPE_NUMERIC:
		if (nmods > 2)
			goto bad_mods;
		if (nmods >= 1) {
			if (mods[0] < 1 || mods[0] > 1000) {
				sql__error_set(err, "22023", pos,
					       "NUMERIC precision %lld must be between 1 and 1000",
					       (long long)mods[0]);
				return -1;
			}
			out->precision = (int32_t)mods[0];
			out->scale = 0;
		}
		if (nmods == 2) {
			if (mods[1] < 0 || mods[1] > mods[0]) {
				sql__error_set(err, "22023", pos,
					       "NUMERIC scale %lld must be between 0 and precision %lld",
					       (long long)mods[1], (long long)mods[0]);
				return -1;
			}
			out->scale = (int32_t)mods[1];
		}
		return 0;
	case SQL_TYPE_TIMESTAMP:
		if (nmods > 1)
			goto bad_mods;
		if (nmods == 1) {
			if (mods[0] < 0 || mods[0] > 6) {
				sql__error_set(err, "22023", pos,
					       "TIMESTAMP(%lld) precision must be between 0 and 6",
					       (long long)mods[0]);
				return -1;
			}
			out->precision = (int32_t)mods[0];
		}
		return 0;
	case SQL_TYPE_DOUBLE:
		if (strcmp(words[0], "float") == 0 && nmods == 1) {
			if (mods[0] < 1 || mods[0] > 53) {
				sql__error_set(err, "22023", pos,
					       "precision for type float must be between 1 and 53 bits");
				return -1;
			}
			if (mods[0] <= 24)
				out->kind = SQL_TYPE_REAL;
			return 0;
		}
		break;
	default:
		break;
	}
	if (nmods == 0)
		return 0;
bad_mods:
	sql__error_set(err, "42601", pos, "type modifier is not allowed for type \"%s\"",
		       pgname);
	return -1;
}

const char *sql_type_pg_name(sql_type_kind kind)
{
	switch (kind) {
	case SQL_TYPE_BIGINT: return "int8";
	case SQL_TYPE_INTEGER: return "int4";
	case SQL_TYPE_SMALLINT: return "int2";
	case SQL_TYPE_TEXT: return "text";
	case SQL_TYPE_VARCHAR: return "varchar";
	case SQL_TYPE_CHAR: return "bpchar";
	case SQL_TYPE_DOUBLE: return "float8";
	case SQL_TYPE_REAL: return "float4";
	case SQL_TYPE_NUMERIC: return "numeric";
	case SQL_TYPE_BOOLEAN: return "bool";
	case SQL_TYPE_BYTEA: return "bytea";
	case SQL_TYPE_TIMESTAMP: return "timestamp";
	case SQL_TYPE_NONE: break;
	}
	return "unknown";
}

uint32_t sql_type_pg_oid(sql_type_kind kind)
{
	switch (kind) {
	case SQL_TYPE_BIGINT: return 20;
	case SQL_TYPE_INTEGER: return 23;
	case SQL_TYPE_SMALLINT: return 21;
	case SQL_TYPE_TEXT: return 25;
	case SQL_TYPE_VARCHAR: return 1043;
	case SQL_TYPE_CHAR: return 1042;
	case SQL_TYPE_DOUBLE: return 701;
	case SQL_TYPE_REAL: return 700;
	case SQL_TYPE_NUMERIC: return 1700;
	case SQL_TYPE_BOOLEAN: return 16;
	case SQL_TYPE_BYTEA: return 17;
	case SQL_TYPE_TIMESTAMP: return 1114;
	case SQL_TYPE_NONE: break;
	}
	return 705; /* unknown */
}

/* ---- facts ----------------------------------------------------------------- */

bool sql_func_is_aggregate(const char *name)
{
	static const char *const aggs[] = {
		"count", "sum", "avg", "min", "max", "string_agg", "bool_and",
		"bool_or", "every",
	};
	for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++)
		if (strcmp(name, aggs[i]) == 0)
			return true;
	return false;
}

/* PostgreSQL's FigureColnameInternal: returns a strength (0 none, 1 a
 * fallback name, 2 a real name) and sets *name. */
static int figure_colname(const sql_expr *e, const char **name)
{
	int strength;
	if (e == NULL)
		return 0;
	switch (e->kind) {
	case SQL_EXPR_COLUMN:
	case SQL_EXPR_FUNC:
		*name = e->name;
		return 2;
	case SQL_EXPR_CURRENT_TIMESTAMP:
		*name = "current_timestamp";
		return 2;
	case SQL_EXPR_CAST:
		strength = figure_colname(e->left, name);
		if (strength <= 1) {
			*name = sql_type_pg_name(e->type.kind);
			return 1;
		}
		return strength;
	case SQL_EXPR_CASE:
		strength = figure_colname(e->right, name);
		if (strength <= 1) {
			*name = "case";
			return 1;
		}
		return strength;
	case SQL_EXPR_LITERAL:
		/* PostgreSQL parses TRUE/FALSE as 't'::bool. */
		if (e->lit.kind == SQL_LIT_BOOL) {
			*name = "bool";
			return 1;
		}
		return 0;
	default:
		return 0;
	}
}

const char *sql_expr_colname(const sql_expr *e)
{
	const char *name = "?column?";
	figure_colname(e, &name);
	return name;
}

const char *sql_select_item_name(const sql_select_item *it)
{
	return it->alias != NULL ? it->alias : sql_expr_colname(it->expr);
}

const char *sql_stmt_tag(const sql_stmt *s)
{
	switch (s->kind) {
	case SQL_STMT_SELECT: return "SELECT";
	case SQL_STMT_INSERT: return "INSERT";
	case SQL_STMT_UPDATE: return "UPDATE";
	case SQL_STMT_DELETE: return "DELETE";
	case SQL_STMT_CREATE_TABLE: return "CREATE TABLE";
	case SQL_STMT_DROP_TABLE: return "DROP TABLE";
	case SQL_STMT_CREATE_INDEX: return "CREATE INDEX";
	case SQL_STMT_BEGIN: return s->begin.start ? "START TRANSACTION" : "BEGIN";
	case SQL_STMT_COMMIT: return "COMMIT";
	case SQL_STMT_ROLLBACK: return "ROLLBACK";
	case SQL_STMT_SET: return s->set.reset ? "RESET" : "SET";
	case SQL_STMT_SHOW: return "SHOW";
	case SQL_STMT_EXPLAIN: return "EXPLAIN";
	case SQL_STMT_ADD_SHARD: return "ALTER CLUSTER";
	case SQL_STMT_REBALANCE: return "REBALANCE";
	case SQL_STMT_MOVE_BUCKET: return "MOVE BUCKET";
	case SQL_STMT_REMOVE_SHARD: return "ALTER CLUSTER";
	case SQL_STMT_SPLIT_RANGE:
	case SQL_STMT_MOVE_RANGE: return "ALTER TABLE";
	case SQL_STMT_CANCEL_REBALANCE: return "CANCEL REBALANCE";
	case SQL_STMT_RESOLVE_SAGA: return "RESOLVE SAGA";
	}
	return "";
}
