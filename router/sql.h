/*
 * sql.h — the SQL front end's contract: parse a PostgreSQL-dialect query
 * string into statements, free them, render them as SQLite SQL.
 *
 * The subset, its grammar, type mapping, rejected features and limits are
 * described in docs/sql.md; the tree itself in router/sql_ast.h.
 *
 * Parsing.  sql_parse() takes the whole query string of a Query message
 * (several statements separated by ';', empty ones skipped) and returns
 * either every statement or an error, never a prefix: nothing is executed
 * before the whole string parsed.  Errors carry a SQLSTATE (42601 syntax,
 * 0A000 unsupported feature, 54001 too complex, 54000 too long, 54011 /
 * 54023 list limits, and 42704 42701 42703 42809 42P02 42P10 42P16 22021
 * 22023 22025 2201W 2201X for the checks listed in docs/sql.md), a message
 * and PostgreSQL's 1-based character position.  Any byte string is a valid input: the parser never
 * crashes, recursion is bounded and nothing leaks.
 *
 * Rendering.  The sql_render_* functions append SQLite SQL to a sql_buf.
 * The tree is plain data and may be rewritten before rendering: replace
 * select.where, select.items, order_by, limit, insert.rows ... in place or,
 * better, in a shallow copy of the statement struct, and render that:
 *
 *     sql_select s = stmt->select;        // shallow copy
 *     s.where = sql_expr_binary(a, SQL_OP_AND, s.where, extra);
 *     sql_render_select(&buf, &s);
 *
 * New nodes come from the constructors in sql_ast.h, allocated in
 * sql_stmt_list_arena(list) so that sql_stmt_list_free() releases them.
 * Each render function returns 0, or -1 when out of memory or when a
 * hand-built tree is deeper than 2 * SQL_MAX_DEPTH; after -1 the buffer
 * holds garbage and buf->failed is set.
 *
 * Thread safety: none needed; every call works only on its arguments.
 */
#ifndef SHARDLITE_SQL_H
#define SHARDLITE_SQL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "router/sql_ast.h"

typedef struct {
	sql_stmt **items;
	size_t n;
	int max_param;         /* highest $n over all statements, 0 if none */
	const char *text;      /* NUL-terminated copy of the query */
	size_t text_len;
	sql_arena *arena;      /* owns everything above */
} sql_stmt_list;

/* Parse text[0..len).  Returns 0 with *out set (possibly 0 statements: an
 * empty or comment-only query), or -1 with *out NULL and err filled. */
int sql_parse(const char *text, size_t len, sql_stmt_list **out,
	      sql_error *err);
void sql_stmt_list_free(sql_stmt_list *list);
sql_arena *sql_stmt_list_arena(sql_stmt_list *list);

/* PostgreSQL's cursor position (1-based, in characters) for a byte offset
 * in the list's query text; 0 for SQL_NO_POS. */
int sql_stmt_list_position(const sql_stmt_list *list, size_t pos);

/* Fill err: sqlstate (5 chars), position (0 = none), printf message. */
void sql_error_set(sql_error *err, const char *sqlstate, int position,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- rendering ------------------------------------------------------------- */

typedef struct {
	char *data;            /* NUL-terminated when len > 0 and !failed */
	size_t len, cap;
	bool failed;           /* an append ran out of memory */
} sql_buf;

void sql_buf_init(sql_buf *b);
void sql_buf_free(sql_buf *b);
void sql_buf_reset(sql_buf *b);          /* len = 0, failed = false */
int sql_buf_append(sql_buf *b, const char *s, size_t n);
int sql_buf_puts(sql_buf *b, const char *s);
int sql_buf_printf(sql_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "name" with embedded quotes doubled. */
int sql_render_ident(sql_buf *b, const char *name);
/* 'text' with embedded quotes doubled. */
int sql_render_string(sql_buf *b, const char *s, size_t len);
/* SQLite declared type of a column of this type: INTEGER, TEXT, REAL,
 * NUMERIC or BLOB. */
const char *sql_type_sqlite(sql_type_kind kind);
int sql_render_expr(sql_buf *b, const sql_expr *e);

/* Whole statements, without the trailing ';'.  A COMPENSATE WITH clause is
 * not rendered (stmt->compensate is a statement of its own).  Router-only
 * statements (BEGIN SAGA, SET, SHOW, EXPLAIN, ALTER CLUSTER, REBALANCE)
 * render in shardlite's canonical PostgreSQL spelling, for logs and
 * EXPLAIN; BEGIN, COMMIT and ROLLBACK render as SQLite accepts them. */
int sql_render_stmt(sql_buf *b, const sql_stmt *s);
int sql_render_select(sql_buf *b, const sql_select *s);
int sql_render_insert(sql_buf *b, const sql_insert *s);
int sql_render_update(sql_buf *b, const sql_update *s);
int sql_render_delete(sql_buf *b, const sql_delete *s);
/* The same with `filter`, a raw SQLite predicate (or NULL), ANDed to the
 * WHERE clause: the router's shard-side row filters (plan.h). */
int sql_render_select_filtered(sql_buf *b, const sql_select *s, const char *filter);
int sql_render_update_filtered(sql_buf *b, const sql_update *s, const char *filter);
int sql_render_delete_filtered(sql_buf *b, const sql_delete *s, const char *filter);
int sql_render_create_table(sql_buf *b, const sql_create_table *s);
int sql_render_create_index(sql_buf *b, const sql_create_index *s);
int sql_render_drop_table(sql_buf *b, const sql_drop_table *s);

/* Parts of a SELECT, for planners that assemble their own statements:
 * "expr [AS "alias"]" items separated by ", "; ORDER BY items with
 * explicit NULLS FIRST/LAST matching PostgreSQL's defaults. */
int sql_render_select_items(sql_buf *b, const sql_select_item_list *items);
int sql_render_order_by(sql_buf *b, const sql_order_list *order);

#endif
