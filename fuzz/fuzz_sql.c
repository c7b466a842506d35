/*
 * fuzz_sql.c — libFuzzer target for the SQL front end (router/sql_*.c).
 *
 * Input: a query string, as a client would send it.  Every accepted
 * statement is rendered (with its compensation and EXPLAIN's statement),
 * its output column names and tag computed.  Oracles, any failure aborts:
 *  - an error has a 5-character SQLSTATE, a message, and a position in
 *    0 .. characters + 1;
 *  - rendering an accepted statement never fails;
 *  - each statement's own text (stmt->sql) parses again on its own into
 *    exactly one statement that renders to the same SQLite SQL;
 *  - spans lie inside the query and nested spans inside their statement.
 * The sanitizers catch memory errors and leaks; recursion limits keep the
 * stack bounded whatever the nesting.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_sql: %s: %s\n", what, detail != NULL ? detail : "");
	abort();
}

static int chars(const uint8_t *s, size_t n)
{
	int c = 0;
	for (size_t i = 0; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

static void render_one(sql_buf *b, const sql_stmt *s)
{
	sql_buf_reset(b);
	if (sql_render_stmt(b, s) < 0 || b->data == NULL)
		fail("render failed", s->sql);
	if (s->kind == SQL_STMT_SELECT)
		for (size_t i = 0; i < s->select.items.n; i++)
			if (sql_select_item_name(&s->select.items.items[i]) == NULL)
				fail("no column name", s->sql);
	if (sql_stmt_tag(s)[0] == 0)
		fail("no tag", s->sql);
}

/* The statement's own text must give the same statement again. */
static void reparse(const sql_stmt *s, const char *rendered)
{
	sql_stmt_list *again;
	sql_error err;
	sql_buf b;
	if (sql_parse(s->sql, strlen(s->sql), &again, &err) < 0)
		fail("statement text does not parse again", err.message);
	if (again->n != 1)
		fail("statement text is not one statement", s->sql);
	sql_buf_init(&b);
	if (sql_render_stmt(&b, again->items[0]) < 0 || strcmp(b.data, rendered) != 0)
		fail("statement text renders differently", s->sql);
	sql_buf_free(&b);
	sql_stmt_list_free(again);
}

static void check_span(const sql_stmt *outer, const sql_stmt *s, size_t len)
{
	if (s->start > s->end || s->end > len || s->sql == NULL ||
	    strlen(s->sql) != s->end - s->start)
		fail("bad span", s->sql);
	if (outer != NULL && (s->start < outer->start || s->end > outer->end))
		fail("nested span outside its statement", s->sql);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sql_stmt_list *list;
	sql_error err;
	sql_buf b;

	if (sql_parse((const char *)data, size, &list, &err) < 0) {
		if (strlen(err.sqlstate) != 5 || err.message[0] == 0)
			fail("bad error", err.message);
		if (err.position < 0 || err.position > chars(data, size) + 1)
			fail("error position out of range", err.message);
		return 0;
	}
	sql_buf_init(&b);
	for (size_t i = 0; i < list->n; i++) {
		const sql_stmt *s = list->items[i];
		check_span(NULL, s, size);
		render_one(&b, s);
		reparse(s, b.data);
		if (s->compensate != NULL) {
			check_span(s, s->compensate, size);
			render_one(&b, s->compensate);
		}
		if (s->kind == SQL_STMT_EXPLAIN) {
			check_span(s, s->explain.stmt, size);
			render_one(&b, s->explain.stmt);
		}
	}
	sql_buf_free(&b);
	sql_stmt_list_free(list);
	return 0;
}
