/*
 * sql_grammar.y — lemon grammar of shardlite's SQL subset, and sql_parse().
 *
 * The driver (sql_parse, at the end) splits the token stream at ';' and
 * runs one lemon parse per statement, so each statement's span is simply
 * its first and last token, and the end of a statement is reported "at or
 * near ";"" or "at end of input" as PostgreSQL does.  It also does two
 * things lemon cannot:
 *  - NOT followed by BETWEEN, IN, LIKE or ILIKE becomes NOT_LA, which binds
 *    like those operators (PostgreSQL's parser.c does the same), so that
 *    "a = b NOT LIKE c" is a = (b NOT LIKE c) and DEFAULT x NOT NULL works;
 *  - parentheses nested deeper than SQL_MAX_DEPTH stop the parse (54001)
 *    before the parser stack grows, and every expression node checks its
 *    depth, so no later recursion over the tree can overflow the C stack.
 *
 * Keywords: the reserved ones (PostgreSQL's reserved words that matter
 * here) are never identifiers; every other keyword falls back to ID
 * wherever the keyword itself is not valid (%fallback), so "key", "level",
 * "time" ... stay usable as column names.
 *
 * Unsupported features are found where they cause a syntax error: the
 * syntax-error hook looks at the offending token and its neighbours
 * (JOIN, UNION, a SELECT after '(', RETURNING, OVER ...) and turns the
 * error into 0A000 naming the feature (unsupported_feature()).  A comma in
 * FROM is the one case the grammar itself catches.
 *
 * Invariant: once ctx->err is set, the driver feeds no more tokens, and
 * the tree built so far is discarded with the arena; actions may therefore
 * keep building after flagging an error without any harm.
 */

%name sql__Parse
%token_prefix TK_
%token_type {sql__token}
%extra_argument {parse_ctx *ctx}
%stack_size 0

%include {
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/sql.h"
#include "router/sql_grammar.h"

#define YYNOERRORRECOVERY 1
#define sql__Parse_ENGINEALWAYSONSTACK 1
#define SQL_MAX_PARAM 65535
/* PostgreSQL's limits, which also keep the duplicate checks below cheap. */
#define MAX_COLUMNS 1600   /* columns of a table */
#define MAX_TARGETS 1664   /* select list, INSERT columns and values, SET */
#define MAX_KEY_COLUMNS 32 /* columns of a key or index */
#define MAX_FUNC_ARGS 100

typedef struct {
	const char *name;
	size_t pos;
} namepos;

typedef struct {
	namepos *items;
	size_t n, cap;
} namepos_list;

typedef struct {
	const char *name;      /* CONSTRAINT name or NULL */
	int kind;              /* CC_* */
	size_t pos;
	sql_expr *expr;
	namepos_list cols;     /* table constraints */
} cons;

enum { CC_PRIMARY = 1, CC_NOT_NULL, CC_NULL, CC_UNIQUE, CC_CHECK, CC_DEFAULT };

typedef struct {
	sql_partition_kind kind;
	sql__token col;
	sql_expr_list splits;
} partition;

typedef struct {
	sql_expr *limit, *offset;
} limits;

typedef struct {
	bool distinct;
	sql_expr_list args;
	bool star;
} fargs;

typedef struct parse_ctx {
	sql__lexer lx;
	sql_error *err;
	sql_arena *arena;
	void *engine;          /* the lemon parser (yyParser) */
	bool engine_live;      /* ParseInit done, ParseFinalize pending */
	sql_stmt *result;
	int max_param;         /* of the current statement */
	/* Context for error messages: the statement's first two tokens, the
	 * token before the current one, the current one's index (1-based). */
	sql__token first, second, prev;
	int ntok;
	sql__token peeked;
	bool have_peeked;
	/* Create-table state shared by its rules. */
	namepos_list *pk_cols;
	size_t pk_pos;
	int n_pk;
	/* Table-level UNIQUE lists with positions, checked at the end. */
	struct {
		namepos_list **items;
		size_t n, cap;
	} uniques;
} parse_ctx;

static void *ALLOC(parse_ctx *c, size_t n)
{
	return sql_arena_alloc(c->arena, n); /* never NULL: longjmps instead */
}

static int charpos(parse_ctx *c, size_t off)
{
	return sql__char_position(c->lx.text, c->lx.len, off);
}

static void fail(parse_ctx *c, const char *sqlstate, size_t off,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fail(parse_ctx *c, const char *sqlstate, size_t off,
		 const char *fmt, ...)
{
	char msg[sizeof c->err->message];
	va_list ap;
	if (c->err->sqlstate[0] != 0)
		return; /* the first error wins; do not even count characters */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sql__error_set(c->err, sqlstate, off == SQL_NO_POS ? 0 : charpos(c, off),
		       "%s", msg);
}

static bool failed(parse_ctx *c)
{
	return c->err->sqlstate[0] != 0;
}

static sql_expr *node(parse_ctx *c, sql_expr_kind kind, size_t pos)
{
	return sql_expr_new(c->arena, kind, pos);
}

/* Finish a node: depth, and the nesting limit. */
static sql_expr *done(parse_ctx *c, sql_expr *e)
{
	sql_expr_update_depth(e);
	if (e->depth > SQL_MAX_DEPTH)
		fail(c, "54001", e->pos,
		     "statement too complex: expressions nested deeper than %d levels",
		     SQL_MAX_DEPTH);
	return e;
}

static sql_expr *binary(parse_ctx *c, sql_op op, sql_expr *l, sql_expr *r,
			const sql__token *optok)
{
	sql_expr *e = node(c, SQL_EXPR_BINARY, optok->off);
	e->op = op;
	e->left = l;
	e->right = r;
	return done(c, e);
}

static sql_expr *unary(parse_ctx *c, sql_op op, sql_expr *x,
		       const sql__token *optok)
{
	sql_expr *e = node(c, SQL_EXPR_UNARY, optok->off);
	e->op = op;
	e->left = x;
	return done(c, e);
}

/* Unary minus; folded into a literal operand as PostgreSQL does, so that
 * -9223372036854775808 is an int64 and -5 a literal the planner can use. */
static sql_expr *negate(parse_ctx *c, sql_expr *x, const sql__token *optok)
{
	if (x->kind == SQL_EXPR_LITERAL && x->lit.kind == SQL_LIT_INT &&
	    x->lit.i != INT64_MIN) {
		x->lit.i = -x->lit.i;
		x->pos = optok->off;
		return x;
	}
	if (x->kind == SQL_EXPR_LITERAL && x->lit.kind == SQL_LIT_NUMERIC) {
		const char *t = x->lit.str;
		if (t[0] == '-') {
			x->lit.str = t + 1;
		} else if (strcmp(t, "9223372036854775808") == 0) {
			x->lit.kind = SQL_LIT_INT;
			x->lit.i = INT64_MIN;
			x->lit.str = NULL;
		} else {
			size_t n = strlen(t);
			char *s = ALLOC(c, n + 2);
			s[0] = '-';
			memcpy(s + 1, t, n + 1);
			x->lit.str = s;
		}
		x->lit.len = x->lit.str != NULL ? strlen(x->lit.str) : 0;
		x->pos = optok->off;
		return x;
	}
	return unary(c, SQL_OP_NEG, x, optok);
}

static sql_expr *in_expr(parse_ctx *c, sql_expr *x, bool negated,
			 const sql__token *optok, const sql_expr_list *l)
{
	sql_expr *e = node(c, SQL_EXPR_IN, optok->off);
	e->left = x;
	e->negated = negated;
	e->args = *l;
	return done(c, e);
}

static sql_expr *between(parse_ctx *c, sql_expr *x, bool negated,
			 const sql__token *optok, sql_expr *lo, sql_expr *hi)
{
	sql_expr *e = node(c, SQL_EXPR_BETWEEN, optok->off);
	e->left = x;
	e->negated = negated;
	e->right = lo;
	e->third = hi;
	return done(c, e);
}

static sql_expr *like(parse_ctx *c, sql_expr *x, bool negated,
		      const sql__token *optok, sql_expr *pattern, sql_expr *esc)
{
	sql_expr *e = node(c, SQL_EXPR_LIKE, optok->off);
	e->left = x;
	e->negated = negated;
	e->ilike = optok->code == TK_ILIKE;
	e->right = pattern;
	e->third = esc;
	return done(c, e);
}

static sql_expr *literal(parse_ctx *c, const sql__token *t, sql_lit_kind kind)
{
	sql_expr *e = node(c, SQL_EXPR_LITERAL, t->off);
	e->lit.kind = kind;
	switch (kind) {
	case SQL_LIT_INT:
		e->lit.i = t->ival;
		break;
	case SQL_LIT_NUMERIC:
	case SQL_LIT_STRING:
		e->lit.str = t->val;
		e->lit.len = t->vlen;
		break;
	case SQL_LIT_BOOL:
		e->lit.b = t->code == TK_TRUE;
		break;
	case SQL_LIT_NULL:
		break;
	}
	return e;
}

static void push_expr(parse_ctx *c, sql_expr_list *l, sql_expr *e)
{
	SQL_LIST_PUSH(c->arena, l, e);
}

static void push_name(parse_ctx *c, namepos_list *l, const sql__token *t)
{
	namepos np = {t->val, t->off};
	SQL_LIST_PUSH(c->arena, l, np);
}

static sql_name_list names_of(parse_ctx *c, const namepos_list *l)
{
	sql_name_list out = {0};
	for (size_t i = 0; i < l->n; i++)
		SQL_LIST_PUSH(c->arena, &out, l->items[i].name);
	return out;
}

/* Type from words and modifiers; on error a TEXT type and ctx->err set. */
static sql_type mktype(parse_ctx *c, const sql__token *name, const char *word2,
		       const sql__token *m1, const sql__token *m2)
{
	const char *words[2] = {name->val, word2};
	int64_t mods[2] = {m1 ? m1->ival : 0, m2 ? m2->ival : 0};
	sql_type t;
	if (sql__type_resolve(words, word2 ? 2 : 1, mods, m2 ? 2 : m1 ? 1 : 0,
			      &t, c->err, charpos(c, name->off)) < 0)
		t.kind = SQL_TYPE_TEXT;
	return t;
}

/* A bucket or shard number of MOVE BUCKET: 0..65535 here, checked
 * against the cluster by the rebalancer. */
static uint32_t bucket_number(parse_ctx *c, const sql__token *t)
{
	char *end = NULL;
	unsigned long v = strtoul(t->val, &end, 10);
	if (!end || *end || v > 65535) {
		fail(c, "22003", t->off, "bucket or shard number out of range: %s", t->val);
		return 0;
	}
	return (uint32_t)v;
}

static void bucket_push(parse_ctx *c, sql_bucket_list *l, uint32_t b)
{
	if (l->n % 16 == 0) {
		uint32_t *n = ALLOC(c, (l->n + 16) * sizeof *n);
		if (l->n)
			memcpy(n, l->items, l->n * sizeof *n);
		l->items = n;
	}
	l->items[l->n++] = b;
}

static sql_stmt *new_stmt(parse_ctx *c, sql_stmt_kind kind,
			  const sql__token *first)
{
	sql_stmt *s = ALLOC(c, sizeof *s);
	s->kind = kind;
	s->start = first->off;
	s->end = first->off + first->len;
	return s;
}

/* base + suffix, with base cut (at a character boundary) so that the whole
 * fits SQL_NAME_MAX bytes and the suffix survives, as PostgreSQL's
 * makeObjectName does. */
static const char *object_name(parse_ctx *c, const char *base, const char *suffix)
{
	size_t sl = strlen(suffix), bl = strlen(base);
	size_t room = SQL_NAME_MAX > sl ? SQL_NAME_MAX - sl : 0;
	if (bl > room) {
		bl = room;
		while (bl > 0 && ((unsigned char)base[bl] & 0xC0) == 0x80)
			bl--;
	}
	char *out = ALLOC(c, bl + sl + 1);
	memcpy(out, base, bl);
	memcpy(out + bl, suffix, sl + 1);
	return out;
}

static bool tok_is(const sql__token *t, const char *word)
{
	return t->word && strcmp(t->val, word) == 0;
}

static void syntax_error(parse_ctx *c, const sql__token *t);
static void finish_create_table(parse_ctx *c, sql_create_table *ct,
				const partition *p);
static void finish_insert(parse_ctx *c, sql_insert *ins,
			  const namepos_list *cols, const sql__token *lp);
static void reset_create_state(parse_ctx *c);
static void check_select(parse_ctx *c, const sql_select *s);
static void add_column_constraint(parse_ctx *c, sql_column_def *col,
				  const cons *k);
static void add_table_constraint(parse_ctx *c, sql_create_table *ct,
				 const cons *k);
}

%syntax_error { syntax_error(ctx, &TOKEN); }
%token_destructor { (void)ctx; (void)yypminor; }
%stack_overflow { sql__error_set(ctx->err, "53200", 0, "out of memory"); }

/* Tokens the lexer produces that no rule uses: they are syntax errors (or
 * unsupported features) wherever they appear. */
%token SEMI ILLEGAL LBRACKET RBRACKET
       ANY COLLATE EXCEPT FETCH FOREIGN INTERSECT JOIN LATERAL OUTER
       REFERENCES RETURNING SOME UNION USING WINDOW.

%fallback ID
  ABORT ADD ALTER ANALYZE AT BEGIN BUCKET BY CANCEL CLUSTER COMMIT COMMITTED COMPENSATE
  DEFERRABLE DELETE DROP ESCAPE EXISTS EXPLAIN FIRST HASH IF INDEX INSERT
  ISOLATION KEY LAST LEVEL LOCAL MOVE NULLS ONLY PARTITION PRECISION PREPARED RANGE READ
  REBALANCE REMOVE REPEATABLE RESET RESOLVE ROLLBACK SAGA SERIALIZABLE SESSION SET SHARD
  SHARE SHOW SPLIT START TIME TRANSACTION UNCOMMITTED UNKNOWN UPDATE VALUES
  VARYING VERBOSE WITHOUT WORK WRITE ZONE.

%left OR.
%left AND.
%right NOT.
%nonassoc IS.
%nonassoc EQ NE LT LE GT GE.
%nonassoc BETWEEN IN LIKE ILIKE NOT_LA.
%right ESCAPE.
%left CONCAT.
%left PLUS MINUS.
%left STAR SLASH PERCENT.
%right UMINUS.
%left COLONCOLON.

cmd ::= stmt(S). { ctx->result = S; }

%type stmt {sql_stmt *}
%type select {sql_stmt *}
%type dml {sql_stmt *}
%type dmlstmt {sql_stmt *}
%type explainable {sql_stmt *}
%type compensate_opt {sql_stmt *}

stmt(A) ::= select(S). { A = S; }
stmt(A) ::= dmlstmt(S). { A = S; }

dmlstmt(A) ::= dml(D) compensate_opt(C). { A = D; A->compensate = C; }
compensate_opt(A) ::= . { A = NULL; }
compensate_opt(A) ::= COMPENSATE WITH dml(D). { A = D; }

dml(A) ::= insert(S). { A = S; }
dml(A) ::= update(S). { A = S; }
dml(A) ::= delete(S). { A = S; }

/* ---- names ----------------------------------------------------------------- */

%type nm {sql__token}
nm(A) ::= ID(X). { A = X; }

%type namelist {namepos_list}
namelist(A) ::= nm(N). { memset(&A, 0, sizeof A); push_name(ctx, &A, &N); }
namelist(A) ::= namelist(A) COMMA nm(N). { push_name(ctx, &A, &N); }

/* ---- types ------------------------------------------------------------------- */

%type typename {sql_type}
typename(A) ::= nm(N). { A = mktype(ctx, &N, NULL, NULL, NULL); }
typename(A) ::= nm(N) LP INTEGER(P) RP. { A = mktype(ctx, &N, NULL, &P, NULL); }
typename(A) ::= nm(N) LP INTEGER(P) COMMA INTEGER(S) RP.
	{ A = mktype(ctx, &N, NULL, &P, &S); }
typename(A) ::= nm(N) PRECISION. { A = mktype(ctx, &N, "precision", NULL, NULL); }
typename(A) ::= nm(N) VARYING. { A = mktype(ctx, &N, "varying", NULL, NULL); }
typename(A) ::= nm(N) VARYING LP INTEGER(P) RP.
	{ A = mktype(ctx, &N, "varying", &P, NULL); }
typename(A) ::= nm(N) WITHOUT TIME ZONE.
	{ A = mktype(ctx, &N, "without time zone", NULL, NULL); }
typename(A) ::= nm(N) LP INTEGER(P) RP WITHOUT TIME ZONE.
	{ A = mktype(ctx, &N, "without time zone", &P, NULL); }

/* ---- expressions --------------------------------------------------------------- */

%type expr {sql_expr *}
%type exprlist {sql_expr_list}

exprlist(A) ::= expr(E). { memset(&A, 0, sizeof A); push_expr(ctx, &A, E); }
exprlist(A) ::= exprlist(A) COMMA expr(E). { push_expr(ctx, &A, E); }

expr(A) ::= LP expr(E) RP. { A = E; }

expr(A) ::= INTEGER(X). { A = literal(ctx, &X, SQL_LIT_INT); }
expr(A) ::= NUMERIC(X). { A = literal(ctx, &X, SQL_LIT_NUMERIC); }
expr(A) ::= STRING(X). { A = literal(ctx, &X, SQL_LIT_STRING); }
expr(A) ::= TRUE(X). { A = literal(ctx, &X, SQL_LIT_BOOL); }
expr(A) ::= FALSE(X). { A = literal(ctx, &X, SQL_LIT_BOOL); }
expr(A) ::= NULL(X). { A = literal(ctx, &X, SQL_LIT_NULL); }
expr(A) ::= PARAM(X). {
	A = node(ctx, SQL_EXPR_PARAM, X.off);
	if (X.ival < 1 || X.ival > SQL_MAX_PARAM)
		fail(ctx, "42P02", X.off, "there is no parameter %.*s",
		     (int)(X.len > 20 ? 20 : X.len), ctx->lx.text + X.off);
	A->param = (int)(X.ival > SQL_MAX_PARAM ? SQL_MAX_PARAM : X.ival);
	if (A->param > ctx->max_param)
		ctx->max_param = A->param;
}
expr(A) ::= CURRENT_TIMESTAMP(X). { A = node(ctx, SQL_EXPR_CURRENT_TIMESTAMP, X.off); }

expr(A) ::= nm(X). {
	A = node(ctx, SQL_EXPR_COLUMN, X.off);
	A->name = X.val;
}
expr(A) ::= nm(T) DOT nm(X). {
	A = node(ctx, SQL_EXPR_COLUMN, T.off);
	A->table = T.val;
	A->name = X.val;
}

/* Typed literal: TIMESTAMP '2024-01-01 00:00:00', INTEGER '5'. */
expr(A) ::= nm(T) STRING(S). {
	A = node(ctx, SQL_EXPR_CAST, T.off);
	A->type = mktype(ctx, &T, NULL, NULL, NULL);
	A->left = literal(ctx, &S, SQL_LIT_STRING);
	A = done(ctx, A);
}

%type fargs {fargs}
fargs(A) ::= . { memset(&A, 0, sizeof A); }
fargs(A) ::= STAR. { memset(&A, 0, sizeof A); A.star = true; }
fargs(A) ::= exprlist(L). { memset(&A, 0, sizeof A); A.args = L; }
fargs(A) ::= DISTINCT exprlist(L). { memset(&A, 0, sizeof A); A.args = L; A.distinct = true; }
fargs(A) ::= ALL exprlist(L). { memset(&A, 0, sizeof A); A.args = L; }

expr(A) ::= nm(F) LP fargs(X) RP. {
	A = node(ctx, SQL_EXPR_FUNC, F.off);
	A->name = F.val;
	A->args = X.args;
	A->star = X.star;
	A->distinct = X.distinct;
	if (X.args.n > MAX_FUNC_ARGS)
		fail(ctx, "54023", F.off, "cannot pass more than %d arguments to a function",
		     MAX_FUNC_ARGS);
	if (X.star && strcmp(F.val, "count") != 0)
		fail(ctx, "42809", F.off, "%s(*) specified, but %s is not an aggregate function",
		     F.val, F.val);
	A = done(ctx, A);
}

expr(A) ::= CAST(K) LP expr(E) AS typename(T) RP. {
	A = node(ctx, SQL_EXPR_CAST, K.off);
	A->left = E;
	A->type = T;
	A = done(ctx, A);
}
expr(A) ::= expr(E) COLONCOLON(K) typename(T). {
	A = node(ctx, SQL_EXPR_CAST, K.off);
	A->left = E;
	A->type = T;
	A = done(ctx, A);
}

%type case_operand {sql_expr *}
%type case_whens {sql_expr_list}
%type case_else {sql_expr *}
expr(A) ::= CASE(K) case_operand(O) case_whens(W) case_else(E) END. {
	A = node(ctx, SQL_EXPR_CASE, K.off);
	A->left = O;
	A->args = W;
	A->right = E;
	A = done(ctx, A);
}
case_operand(A) ::= . { A = NULL; }
case_operand(A) ::= expr(E). { A = E; }
case_whens(A) ::= WHEN expr(W) THEN expr(T).
	{ memset(&A, 0, sizeof A); push_expr(ctx, &A, W); push_expr(ctx, &A, T); }
case_whens(A) ::= case_whens(A) WHEN expr(W) THEN expr(T).
	{ push_expr(ctx, &A, W); push_expr(ctx, &A, T); }
case_else(A) ::= . { A = NULL; }
case_else(A) ::= ELSE expr(E). { A = E; }

expr(A) ::= MINUS(O) expr(X). [UMINUS] { A = negate(ctx, X, &O); }
expr(A) ::= PLUS(O) expr(X). [UMINUS] { A = unary(ctx, SQL_OP_POS, X, &O); }
expr(A) ::= NOT(O) expr(X). { A = unary(ctx, SQL_OP_NOT, X, &O); }

expr(A) ::= expr(L) PLUS(O) expr(R). { A = binary(ctx, SQL_OP_ADD, L, R, &O); }
expr(A) ::= expr(L) MINUS(O) expr(R). { A = binary(ctx, SQL_OP_SUB, L, R, &O); }
expr(A) ::= expr(L) STAR(O) expr(R). { A = binary(ctx, SQL_OP_MUL, L, R, &O); }
expr(A) ::= expr(L) SLASH(O) expr(R). { A = binary(ctx, SQL_OP_DIV, L, R, &O); }
expr(A) ::= expr(L) PERCENT(O) expr(R). { A = binary(ctx, SQL_OP_MOD, L, R, &O); }
expr(A) ::= expr(L) CONCAT(O) expr(R). { A = binary(ctx, SQL_OP_CONCAT, L, R, &O); }
expr(A) ::= expr(L) EQ(O) expr(R). { A = binary(ctx, SQL_OP_EQ, L, R, &O); }
expr(A) ::= expr(L) NE(O) expr(R). { A = binary(ctx, SQL_OP_NE, L, R, &O); }
expr(A) ::= expr(L) LT(O) expr(R). { A = binary(ctx, SQL_OP_LT, L, R, &O); }
expr(A) ::= expr(L) LE(O) expr(R). { A = binary(ctx, SQL_OP_LE, L, R, &O); }
expr(A) ::= expr(L) GT(O) expr(R). { A = binary(ctx, SQL_OP_GT, L, R, &O); }
expr(A) ::= expr(L) GE(O) expr(R). { A = binary(ctx, SQL_OP_GE, L, R, &O); }
expr(A) ::= expr(L) AND(O) expr(R). { A = binary(ctx, SQL_OP_AND, L, R, &O); }
expr(A) ::= expr(L) OR(O) expr(R). { A = binary(ctx, SQL_OP_OR, L, R, &O); }

%type is_test {int}
is_test(A) ::= NULL. { A = SQL_IS_NULL; }
is_test(A) ::= TRUE. { A = SQL_IS_TRUE; }
is_test(A) ::= FALSE. { A = SQL_IS_FALSE; }
is_test(A) ::= UNKNOWN. { A = SQL_IS_UNKNOWN; }

expr(A) ::= expr(X) IS(O) is_test(T). {
	A = node(ctx, SQL_EXPR_IS, O.off);
	A->left = X;
	A->is_test = (sql_is_test)T;
	A = done(ctx, A);
}
expr(A) ::= expr(X) IS(O) NOT is_test(T). {
	A = node(ctx, SQL_EXPR_IS, O.off);
	A->left = X;
	A->is_test = (sql_is_test)T;
	A->negated = true;
	A = done(ctx, A);
}
expr(A) ::= expr(L) IS(O) DISTINCT FROM expr(R). [IS]
	{ A = binary(ctx, SQL_OP_IS_DISTINCT, L, R, &O); }
expr(A) ::= expr(L) IS(O) NOT DISTINCT FROM expr(R). [IS]
	{ A = binary(ctx, SQL_OP_IS_NOT_DISTINCT, L, R, &O); }

expr(A) ::= expr(X) IN(O) LP exprlist(L) RP. { A = in_expr(ctx, X, false, &O, &L); }
expr(A) ::= expr(X) NOT_LA IN(O) LP exprlist(L) RP. [NOT_LA]
	{ A = in_expr(ctx, X, true, &O, &L); }
expr(A) ::= expr(X) BETWEEN(O) expr(L) AND expr(H). [BETWEEN]
	{ A = between(ctx, X, false, &O, L, H); }
expr(A) ::= expr(X) NOT_LA BETWEEN(O) expr(L) AND expr(H). [BETWEEN]
	{ A = between(ctx, X, true, &O, L, H); }
expr(A) ::= expr(X) LIKE(O) expr(P). [LIKE] { A = like(ctx, X, false, &O, P, NULL); }
expr(A) ::= expr(X) LIKE(O) expr(P) ESCAPE expr(E). [LIKE] { A = like(ctx, X, false, &O, P, E); }
expr(A) ::= expr(X) NOT_LA LIKE(O) expr(P). [LIKE] { A = like(ctx, X, true, &O, P, NULL); }
expr(A) ::= expr(X) NOT_LA LIKE(O) expr(P) ESCAPE expr(E). [LIKE] { A = like(ctx, X, true, &O, P, E); }
expr(A) ::= expr(X) ILIKE(O) expr(P). [LIKE] { A = like(ctx, X, false, &O, P, NULL); }
expr(A) ::= expr(X) ILIKE(O) expr(P) ESCAPE expr(E). [LIKE] { A = like(ctx, X, false, &O, P, E); }
expr(A) ::= expr(X) NOT_LA ILIKE(O) expr(P). [LIKE] { A = like(ctx, X, true, &O, P, NULL); }
expr(A) ::= expr(X) NOT_LA ILIKE(O) expr(P) ESCAPE expr(E). [LIKE] { A = like(ctx, X, true, &O, P, E); }

/* ---- SELECT ------------------------------------------------------------------ */

%type distinct_opt {bool}
distinct_opt(A) ::= . { A = false; }
distinct_opt(A) ::= DISTINCT. { A = true; }
distinct_opt(A) ::= ALL. { A = false; }

%type selitem {sql_select_item}
%type selitems {sql_select_item_list}
selitem(A) ::= STAR(S). { A.expr = node(ctx, SQL_EXPR_STAR, S.off); A.alias = NULL; }
selitem(A) ::= nm(T) DOT STAR. {
	A.expr = node(ctx, SQL_EXPR_STAR, T.off);
	A.expr->table = T.val;
	A.alias = NULL;
}
selitem(A) ::= expr(E). { A.expr = E; A.alias = NULL; }
selitem(A) ::= expr(E) AS nm(N). { A.expr = E; A.alias = N.val; }
selitem(A) ::= expr(E) ID(N). { A.expr = E; A.alias = N.val; }
selitems(A) ::= selitem(I). { memset(&A, 0, sizeof A); SQL_LIST_PUSH(ctx->arena, &A, I); }
selitems(A) ::= selitems(A) COMMA selitem(I). { SQL_LIST_PUSH(ctx->arena, &A, I); }

%type tref {sql_table_ref *}
tref(A) ::= nm(N). { A = ALLOC(ctx, sizeof *A); A->name = N.val; A->pos = N.off; }
tref(A) ::= nm(N) AS nm(X). { A = ALLOC(ctx, sizeof *A); A->name = N.val; A->pos = N.off; A->alias = X.val; }
tref(A) ::= nm(N) ID(X). { A = ALLOC(ctx, sizeof *A); A->name = N.val; A->pos = N.off; A->alias = X.val; }

%type from_opt {sql_table_ref *}
from_opt(A) ::= . { A = NULL; }
from_opt(A) ::= FROM tref(T). { A = T; }
from_opt(A) ::= FROM tref(T) join_comma. { A = T; }
join_comma ::= COMMA(C). { fail(ctx, "0A000", C.off, "joins are not supported"); }

%type where_opt {sql_expr *}
where_opt(A) ::= . { A = NULL; }
where_opt(A) ::= WHERE expr(E). { A = E; }

%type groupby_opt {sql_expr_list}
groupby_opt(A) ::= . { memset(&A, 0, sizeof A); }
groupby_opt(A) ::= GROUP BY exprlist(L). { A = L; }

%type having_opt {sql_expr *}
having_opt(A) ::= . { A = NULL; }
having_opt(A) ::= HAVING expr(E). { A = E; }

%type orderby_opt {sql_order_list}
%type olist {sql_order_list}
%type oitem {sql_order_item}
%type dir_opt {bool}
%type nulls_opt {sql_nulls}
orderby_opt(A) ::= . { memset(&A, 0, sizeof A); }
orderby_opt(A) ::= ORDER BY olist(L). { A = L; }
olist(A) ::= oitem(I). { memset(&A, 0, sizeof A); SQL_LIST_PUSH(ctx->arena, &A, I); }
olist(A) ::= olist(A) COMMA oitem(I). { SQL_LIST_PUSH(ctx->arena, &A, I); }
oitem(A) ::= expr(E) dir_opt(D) nulls_opt(N). { A.expr = E; A.desc = D; A.nulls = N; }
dir_opt(A) ::= . { A = false; }
dir_opt(A) ::= ASC. { A = false; }
dir_opt(A) ::= DESC. { A = true; }
nulls_opt(A) ::= . { A = SQL_NULLS_DEFAULT; }
nulls_opt(A) ::= NULLS FIRST. { A = SQL_NULLS_FIRST; }
nulls_opt(A) ::= NULLS LAST. { A = SQL_NULLS_LAST; }

%type limit_opt {limits}
%type lim {sql_expr *}
%type off {sql_expr *}
limit_opt(A) ::= . { A.limit = NULL; A.offset = NULL; }
limit_opt(A) ::= lim(L). { A.limit = L; A.offset = NULL; }
limit_opt(A) ::= off(O). { A.limit = NULL; A.offset = O; }
limit_opt(A) ::= lim(L) off(O). { A.limit = L; A.offset = O; }
limit_opt(A) ::= off(O) lim(L). { A.limit = L; A.offset = O; }
lim(A) ::= LIMIT expr(E). { A = E; }
lim(A) ::= LIMIT ALL. { A = NULL; }
off(A) ::= OFFSET expr(E). { A = E; }

%type lock_opt {sql_lock_mode}
lock_opt(A) ::= . { A = SQL_LOCK_NONE; }
lock_opt(A) ::= FOR UPDATE. { A = SQL_LOCK_UPDATE; }
lock_opt(A) ::= FOR SHARE. { A = SQL_LOCK_SHARE; }

select(A) ::= SELECT(K) distinct_opt(D) selitems(I) from_opt(F) where_opt(W)
	      groupby_opt(G) having_opt(H) orderby_opt(O) limit_opt(L) lock_opt(X). {
	A = new_stmt(ctx, SQL_STMT_SELECT, &K);
	if (I.n > MAX_TARGETS)
		fail(ctx, "54011", K.off, "target lists can have at most %d entries", MAX_TARGETS);
	A->select.distinct = D;
	A->select.items = I;
	A->select.from = F;
	A->select.where = W;
	A->select.group_by = G;
	A->select.having = H;
	A->select.order_by = O;
	A->select.limit = L.limit;
	A->select.offset = L.offset;
	A->select.lock = X;
	check_select(ctx, &A->select);
}

/* ---- INSERT / UPDATE / DELETE ---------------------------------------------------- */

%type insert {sql_stmt *}
%type cols_opt {namepos_list}
%type rows {sql_row_list}
insert(A) ::= INSERT(K) INTO nm(T) cols_opt(C) VALUES(V) rows(R). {
	A = new_stmt(ctx, SQL_STMT_INSERT, &K);
	A->insert.table = T.val;
	A->insert.table_pos = T.off;
	A->insert.rows = R;
	finish_insert(ctx, &A->insert, &C, &V);
}
cols_opt(A) ::= . { memset(&A, 0, sizeof A); }
cols_opt(A) ::= LP namelist(L) RP. { A = L; }
rows(A) ::= LP exprlist(L) RP. { memset(&A, 0, sizeof A); SQL_LIST_PUSH(ctx->arena, &A, L); }
rows(A) ::= rows(A) COMMA LP exprlist(L) RP. { SQL_LIST_PUSH(ctx->arena, &A, L); }

%type update {sql_stmt *}
%type setlist {sql_assignment_list}
update(A) ::= UPDATE(K) nm(T) SET setlist(L) where_opt(W). {
	A = new_stmt(ctx, SQL_STMT_UPDATE, &K);
	A->update.table = T.val;
	A->update.table_pos = T.off;
	A->update.set = L;
	A->update.where = W;
	if (L.n > MAX_TARGETS)
		fail(ctx, "54011", L.items[MAX_TARGETS].pos,
		     "target lists can have at most %d entries", MAX_TARGETS);
	for (size_t i = 1; i < L.n && !failed(ctx); i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(L.items[i].column, L.items[j].column) == 0) {
				fail(ctx, "42601", L.items[i].pos,
				     "multiple assignments to same column \"%s\"", L.items[i].column);
				break;
			}
}
setlist(A) ::= nm(C) EQ expr(E). {
	sql_assignment as = {C.val, C.off, E};
	memset(&A, 0, sizeof A);
	SQL_LIST_PUSH(ctx->arena, &A, as);
}
setlist(A) ::= setlist(A) COMMA nm(C) EQ expr(E). {
	sql_assignment as = {C.val, C.off, E};
	SQL_LIST_PUSH(ctx->arena, &A, as);
}

%type delete {sql_stmt *}
delete(A) ::= DELETE(K) FROM nm(T) where_opt(W). {
	A = new_stmt(ctx, SQL_STMT_DELETE, &K);
	A->delete_.table = T.val;
	A->delete_.table_pos = T.off;
	A->delete_.where = W;
}

/* ---- CREATE TABLE ---------------------------------------------------------------- */

%type ifnotexists {bool}
ifnotexists(A) ::= . { A = false; }
ifnotexists(A) ::= IF NOT EXISTS. { A = true; }
%type ifexists {bool}
ifexists(A) ::= . { A = false; }
ifexists(A) ::= IF EXISTS. { A = true; }

%type cname {const char *}
cname(A) ::= . { A = NULL; }
cname(A) ::= CONSTRAINT nm(N). { A = N.val; }

%type coldef {sql_column_def *}
coldef(A) ::= nm(N) typename(T). {
	A = ALLOC(ctx, sizeof *A);
	A->name = N.val;
	A->pos = N.off;
	A->type = T;
}
coldef(A) ::= coldef(A) colcons(K). { add_column_constraint(ctx, A, &K); }

%type colcons {cons}
%type ccbody {cons}
colcons(A) ::= cname(N) ccbody(B). { A = B; A.name = N; }
ccbody(A) ::= PRIMARY(K) KEY. { memset(&A, 0, sizeof A); A.kind = CC_PRIMARY; A.pos = K.off; }
ccbody(A) ::= NOT(K) NULL. { memset(&A, 0, sizeof A); A.kind = CC_NOT_NULL; A.pos = K.off; }
ccbody(A) ::= NULL(K). { memset(&A, 0, sizeof A); A.kind = CC_NULL; A.pos = K.off; }
ccbody(A) ::= UNIQUE(K). { memset(&A, 0, sizeof A); A.kind = CC_UNIQUE; A.pos = K.off; }
ccbody(A) ::= CHECK(K) LP expr(E) RP.
	{ memset(&A, 0, sizeof A); A.kind = CC_CHECK; A.pos = K.off; A.expr = E; }
ccbody(A) ::= DEFAULT(K) expr(E).
	{ memset(&A, 0, sizeof A); A.kind = CC_DEFAULT; A.pos = K.off; A.expr = E; }

%type tcons {cons}
tcons(A) ::= cname(N) PRIMARY(K) KEY LP namelist(L) RP.
	{ memset(&A, 0, sizeof A); A.name = N; A.kind = CC_PRIMARY; A.pos = K.off; A.cols = L; }
tcons(A) ::= cname(N) UNIQUE(K) LP namelist(L) RP.
	{ memset(&A, 0, sizeof A); A.name = N; A.kind = CC_UNIQUE; A.pos = K.off; A.cols = L; }
tcons(A) ::= cname(N) CHECK(K) LP expr(E) RP.
	{ memset(&A, 0, sizeof A); A.name = N; A.kind = CC_CHECK; A.pos = K.off; A.expr = E; }

%type telems {sql_create_table *}
telems(A) ::= coldef(C). {
	A = ALLOC(ctx, sizeof *A);
	SQL_LIST_PUSH(ctx->arena, &A->columns, *C);
}
telems(A) ::= tcons(K). {
	A = ALLOC(ctx, sizeof *A);
	add_table_constraint(ctx, A, &K);
}
telems(A) ::= telems(A) COMMA coldef(C). { SQL_LIST_PUSH(ctx->arena, &A->columns, *C); }
telems(A) ::= telems(A) COMMA tcons(K). { add_table_constraint(ctx, A, &K); }

%type partition_opt {partition}
partition_opt(A) ::= . { memset(&A, 0, sizeof A); }
partition_opt(A) ::= PARTITION BY HASH LP nm(C) RP.
	{ memset(&A, 0, sizeof A); A.kind = SQL_PARTITION_HASH; A.col = C; }
partition_opt(A) ::= PARTITION BY RANGE LP nm(C) RP.
	{ memset(&A, 0, sizeof A); A.kind = SQL_PARTITION_RANGE; A.col = C; }
partition_opt(A) ::= PARTITION BY RANGE LP nm(C) RP SPLIT AT LP exprlist(L) RP.
	{ memset(&A, 0, sizeof A); A.kind = SQL_PARTITION_RANGE; A.col = C; A.splits = L; }

stmt(A) ::= CREATE(K) TABLE ifnotexists(I) nm(N) LP telems(E) RP partition_opt(P). {
	A = new_stmt(ctx, SQL_STMT_CREATE_TABLE, &K);
	A->create_table = *E;
	A->create_table.name = N.val;
	A->create_table.pos = N.off;
	A->create_table.if_not_exists = I;
	finish_create_table(ctx, &A->create_table, &P);
}

stmt(A) ::= DROP(K) TABLE ifexists(I) nm(N). {
	A = new_stmt(ctx, SQL_STMT_DROP_TABLE, &K);
	A->drop_table.name = N.val;
	A->drop_table.pos = N.off;
	A->drop_table.if_exists = I;
}

/* ---- CREATE INDEX ---------------------------------------------------------------- */

%type unique_opt {bool}
unique_opt(A) ::= . { A = false; }
unique_opt(A) ::= UNIQUE. { A = true; }
%type idxname_opt {sql__token}
idxname_opt(A) ::= . { memset(&A, 0, sizeof A); }
idxname_opt(A) ::= nm(N). { A = N; }
%type idxcols {sql_index_column_list}
%type idxcol {sql_index_column}
idxcol(A) ::= nm(N) dir_opt(D). { A.name = N.val; A.pos = N.off; A.desc = D; }
idxcols(A) ::= idxcol(C). { memset(&A, 0, sizeof A); SQL_LIST_PUSH(ctx->arena, &A, C); }
idxcols(A) ::= idxcols(A) COMMA idxcol(C). { SQL_LIST_PUSH(ctx->arena, &A, C); }

stmt(A) ::= CREATE(K) unique_opt(U) INDEX ifnotexists(I) idxname_opt(N) ON nm(T)
	    LP idxcols(C) RP. {
	A = new_stmt(ctx, SQL_STMT_CREATE_INDEX, &K);
	sql_create_index *ci = &A->create_index;
	ci->unique = U;
	ci->if_not_exists = I;
	ci->table = T.val;
	ci->table_pos = T.off;
	ci->columns = C;
	if (C.n > MAX_KEY_COLUMNS) {
		fail(ctx, "54011", C.items[MAX_KEY_COLUMNS].pos,
		     "cannot use more than %d columns in an index", MAX_KEY_COLUMNS);
		C.n = 0; /* skip the checks below */
	}
	if (N.val != NULL) {
		ci->name = N.val;
	} else {
		/* PostgreSQL's default: table_col1_col2_idx. */
		char buf[512];
		size_t n = (size_t)snprintf(buf, sizeof buf, "%s", T.val);
		for (size_t i = 0; i < C.n && n < sizeof buf; i++)
			n += (size_t)snprintf(buf + n, sizeof buf - n, "_%s", C.items[i].name);
		ci->name = object_name(ctx, buf, "_idx");
		ci->name_generated = true;
		if (I)
			fail(ctx, "42601", K.off, "IF NOT EXISTS requires that you name the index");
	}
	for (size_t i = 0; i < C.n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(C.items[i].name, C.items[j].name) == 0)
				fail(ctx, "42701", C.items[i].pos,
				     "column \"%s\" appears twice in index", C.items[i].name);
}

/* ---- transactions ---------------------------------------------------------------- */

%type txn_modes {sql_begin}
%type txn_list {sql_begin}
%type txn_mode {sql_begin}
%type iso {sql_isolation}
trans_opt ::= .
trans_opt ::= TRANSACTION.
trans_opt ::= WORK.

txn_mode(A) ::= ISOLATION LEVEL iso(I). { memset(&A, 0, sizeof A); A.isolation = I; }
txn_mode(A) ::= READ WRITE. { memset(&A, 0, sizeof A); A.access = SQL_ACCESS_READ_WRITE; }
txn_mode(A) ::= READ ONLY. { memset(&A, 0, sizeof A); A.access = SQL_ACCESS_READ_ONLY; }
txn_mode(A) ::= DEFERRABLE. { memset(&A, 0, sizeof A); A.deferrable = 1; }
txn_mode(A) ::= NOT DEFERRABLE. { memset(&A, 0, sizeof A); A.deferrable = -1; }
iso(A) ::= SERIALIZABLE. { A = SQL_ISO_SERIALIZABLE; }
iso(A) ::= REPEATABLE READ. { A = SQL_ISO_REPEATABLE_READ; }
iso(A) ::= READ COMMITTED. { A = SQL_ISO_READ_COMMITTED; }
iso(A) ::= READ UNCOMMITTED. { A = SQL_ISO_READ_UNCOMMITTED; }

txn_modes(A) ::= . { memset(&A, 0, sizeof A); }
txn_modes(A) ::= txn_list(L). { A = L; }
txn_list(A) ::= txn_mode(M). { A = M; }
txn_list(A) ::= txn_list(A) txn_mode(M). {
	if (M.isolation) A.isolation = M.isolation;
	if (M.access) A.access = M.access;
	if (M.deferrable) A.deferrable = M.deferrable;
}
txn_list(A) ::= txn_list(A) COMMA txn_mode(M). {
	if (M.isolation) A.isolation = M.isolation;
	if (M.access) A.access = M.access;
	if (M.deferrable) A.deferrable = M.deferrable;
}

stmt(A) ::= BEGIN(K) trans_opt txn_modes(M). {
	A = new_stmt(ctx, SQL_STMT_BEGIN, &K);
	A->begin = M;
}
stmt(A) ::= BEGIN(K) SAGA. {
	A = new_stmt(ctx, SQL_STMT_BEGIN, &K);
	A->begin.saga = true;
}
stmt(A) ::= START(K) TRANSACTION txn_modes(M). {
	A = new_stmt(ctx, SQL_STMT_BEGIN, &K);
	A->begin = M;
	A->begin.start = true;
}
stmt(A) ::= COMMIT(K) trans_opt. { A = new_stmt(ctx, SQL_STMT_COMMIT, &K); }
stmt(A) ::= END(K) trans_opt. { A = new_stmt(ctx, SQL_STMT_COMMIT, &K); A->keyword_alias = true; }
stmt(A) ::= ROLLBACK(K) trans_opt. { A = new_stmt(ctx, SQL_STMT_ROLLBACK, &K); }
stmt(A) ::= ABORT(K) trans_opt. { A = new_stmt(ctx, SQL_STMT_ROLLBACK, &K); A->keyword_alias = true; }
/* The operator's resolution of an in-doubt transaction (docs/transactions.md). */
stmt(A) ::= COMMIT(K) PREPARED STRING(S). { A = new_stmt(ctx, SQL_STMT_COMMIT, &K); A->prepared_gid = S.val; }
stmt(A) ::= ROLLBACK(K) PREPARED STRING(S). { A = new_stmt(ctx, SQL_STMT_ROLLBACK, &K); A->prepared_gid = S.val; }
/* The operator's resolution of a saga that needs attention. */
stmt(A) ::= RESOLVE(K) SAGA STRING(S) ID(M). {
	A = new_stmt(ctx, SQL_STMT_RESOLVE_SAGA, &K);
	A->prepared_gid = S.val;
	if (strcasecmp(M.val, "overwrite") == 0)
		A->resolve_mode = 1;
	else if (strcasecmp(M.val, "accept") == 0)
		A->resolve_mode = 2;
	else
		fail(ctx, "42601", M.off, "RESOLVE SAGA takes OVERWRITE or ACCEPT");
}

/* ---- SET / RESET / SHOW ------------------------------------------------------------ */

%type set_scope {bool}
set_scope(A) ::= . { A = false; }
set_scope(A) ::= SESSION. { A = false; }
set_scope(A) ::= LOCAL. { A = true; }

%type set_value {sql_set}
set_value(A) ::= STRING(S). { memset(&A, 0, sizeof A); A.kind = SQL_SET_STRING; A.value = S.val; }
set_value(A) ::= INTEGER(S). { memset(&A, 0, sizeof A); A.kind = SQL_SET_INT; A.value = S.val; }
set_value(A) ::= NUMERIC(S). { memset(&A, 0, sizeof A); A.kind = SQL_SET_NUMERIC; A.value = S.val; }
set_value(A) ::= MINUS INTEGER(S). {
	memset(&A, 0, sizeof A);
	A.kind = SQL_SET_INT;
	char *v = ALLOC(ctx, S.vlen + 2);
	v[0] = '-';
	memcpy(v + 1, S.val, S.vlen + 1);
	A.value = v;
}
set_value(A) ::= MINUS NUMERIC(S). {
	memset(&A, 0, sizeof A);
	A.kind = SQL_SET_NUMERIC;
	char *v = ALLOC(ctx, S.vlen + 2);
	v[0] = '-';
	memcpy(v + 1, S.val, S.vlen + 1);
	A.value = v;
}
set_value(A) ::= nm(S). { memset(&A, 0, sizeof A); A.kind = SQL_SET_IDENT; A.value = S.val; }
set_value(A) ::= TRUE. { memset(&A, 0, sizeof A); A.kind = SQL_SET_BOOL; A.value = "on"; }
set_value(A) ::= ON. { memset(&A, 0, sizeof A); A.kind = SQL_SET_BOOL; A.value = "on"; }
set_value(A) ::= FALSE. { memset(&A, 0, sizeof A); A.kind = SQL_SET_BOOL; A.value = "off"; }
set_value(A) ::= DEFAULT. { memset(&A, 0, sizeof A); A.kind = SQL_SET_DEFAULT; }

set_to ::= TO.
set_to ::= EQ.

stmt(A) ::= SET(K) set_scope(L) nm(N) set_to set_value(V). {
	A = new_stmt(ctx, SQL_STMT_SET, &K);
	A->set = V;
	A->set.name = N.val;
	A->set.local = L;
}
stmt(A) ::= SET(K) set_scope(L) TIME ZONE set_value(V). {
	A = new_stmt(ctx, SQL_STMT_SET, &K);
	A->set = V;
	A->set.name = "timezone";
	A->set.local = L;
}
stmt(A) ::= RESET(K) nm(N). {
	A = new_stmt(ctx, SQL_STMT_SET, &K);
	A->set.name = N.val;
	A->set.reset = true;
}
stmt(A) ::= RESET(K) TIME ZONE. {
	A = new_stmt(ctx, SQL_STMT_SET, &K);
	A->set.name = "timezone";
	A->set.reset = true;
}
stmt(A) ::= RESET(K) ALL. {
	A = new_stmt(ctx, SQL_STMT_SET, &K);
	A->set.reset = true;
}

stmt(A) ::= SHOW(K) nm(N). {
	static const struct { const char *w; sql_show_kind k; } special[] = {
		{"tables", SQL_SHOW_TABLES}, {"shards", SQL_SHOW_SHARDS},
		{"transactions", SQL_SHOW_TRANSACTIONS}, {"sagas", SQL_SHOW_SAGAS},
		{"rebalance", SQL_SHOW_REBALANCE}, {"ranges", SQL_SHOW_RANGES},
	};
	A = new_stmt(ctx, SQL_STMT_SHOW, &K);
	A->show.what = SQL_SHOW_VAR;
	A->show.name = N.val;
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
		if (strcmp(N.val, special[i].w) == 0) {
			A->show.what = special[i].k;
			A->show.name = NULL;
		}
}
stmt(A) ::= SHOW(K) ALL. { A = new_stmt(ctx, SQL_STMT_SHOW, &K); A->show.name = "all"; }
stmt(A) ::= SHOW(K) TIME ZONE. { A = new_stmt(ctx, SQL_STMT_SHOW, &K); A->show.name = "timezone"; }
stmt(A) ::= SHOW(K) TRANSACTION ISOLATION LEVEL.
	{ A = new_stmt(ctx, SQL_STMT_SHOW, &K); A->show.name = "transaction_isolation"; }

/* ---- EXPLAIN and cluster administration ------------------------------------------ */

%type explain_opts {int}
explain_opts(A) ::= . { A = 0; }
explain_opts(A) ::= ANALYZE. { A = 1; }
explain_opts(A) ::= VERBOSE. { A = 2; }
explain_opts(A) ::= ANALYZE VERBOSE. { A = 3; }
explainable(A) ::= select(S). { A = S; }
explainable(A) ::= dmlstmt(S). { A = S; }

stmt(A) ::= EXPLAIN(K) explain_opts(O) explainable(S). {
	A = new_stmt(ctx, SQL_STMT_EXPLAIN, &K);
	A->explain.analyze = (O & 1) != 0;
	A->explain.verbose = (O & 2) != 0;
	A->explain.stmt = S;
}

stmt(A) ::= ALTER(K) CLUSTER ADD SHARD STRING(S). {
	A = new_stmt(ctx, SQL_STMT_ADD_SHARD, &K);
	A->add_shard.address = S.val;
	A->add_shard.pos = S.off;
}
stmt(A) ::= REBALANCE(K). { A = new_stmt(ctx, SQL_STMT_REBALANCE, &K); }
stmt(A) ::= REBALANCE(K) TABLE nm(N). {
	A = new_stmt(ctx, SQL_STMT_REBALANCE, &K);
	A->rebalance.table = N.val;
}
stmt(A) ::= ALTER(K) CLUSTER REMOVE SHARD INTEGER(S). {
	A = new_stmt(ctx, SQL_STMT_REMOVE_SHARD, &K);
	A->move.shard = bucket_number(ctx, &S);
}
stmt(A) ::= ALTER(K) TABLE nm(N) SPLIT AT LP expr(V) RP. {
	A = new_stmt(ctx, SQL_STMT_SPLIT_RANGE, &K);
	A->alter_range.table = N.val;
	A->alter_range.value = V;
}
stmt(A) ::= ALTER(K) TABLE nm(N) MOVE RANGE INTEGER(R) TO SHARD INTEGER(S). {
	A = new_stmt(ctx, SQL_STMT_MOVE_RANGE, &K);
	A->alter_range.table = N.val;
	A->alter_range.range = bucket_number(ctx, &R);
	A->alter_range.shard = bucket_number(ctx, &S);
}
stmt(A) ::= CANCEL(K) REBALANCE. { A = new_stmt(ctx, SQL_STMT_CANCEL_REBALANCE, &K); }
stmt(A) ::= MOVE(K) BUCKET bucketlist(L) TO SHARD INTEGER(S). {
	A = new_stmt(ctx, SQL_STMT_MOVE_BUCKET, &K);
	A->move.buckets = L.items;
	A->move.nbuckets = L.n;
	A->move.shard = bucket_number(ctx, &S);
}
%type bucketlist {sql_bucket_list}
bucketlist(A) ::= INTEGER(B). {
	A.n = 0;
	A.items = NULL;
	bucket_push(ctx, &A, bucket_number(ctx, &B));
}
bucketlist(A) ::= bucketlist(L) COMMA INTEGER(B). {
	A = L;
	bucket_push(ctx, &A, bucket_number(ctx, &B));
}

%code {

/* ---- create-table checks ---------------------------------------------------------- */

static void reset_create_state(parse_ctx *c)
{
	c->pk_cols = NULL;
	c->pk_pos = 0;
	c->n_pk = 0;
	memset(&c->uniques, 0, sizeof c->uniques);
}

static void add_column_constraint(parse_ctx *c, sql_column_def *col,
				  const cons *k)
{
	switch (k->kind) {
	case CC_PRIMARY:
		col->primary_key = true;
		if (++c->n_pk > 1)
			c->pk_pos = k->pos;
		break;
	case CC_NOT_NULL:
		col->not_null = true;
		break;
	case CC_NULL:
		if (col->not_null)
			fail(c, "42601", k->pos,
			     "conflicting NULL/NOT NULL declarations for column \"%s\"",
			     col->name);
		break;
	case CC_UNIQUE:
		col->unique = true;
		break;
	case CC_CHECK: {
		sql_check ck = {k->name, k->expr};
		SQL_LIST_PUSH(c->arena, &col->checks, ck);
		break;
	}
	case CC_DEFAULT:
		if (col->default_value != NULL)
			fail(c, "42601", k->pos,
			     "multiple default values specified for column \"%s\"",
			     col->name);
		col->default_value = k->expr;
		break;
	}
}

static void add_table_constraint(parse_ctx *c, sql_create_table *ct,
				 const cons *k)
{
	namepos_list *cols = ALLOC(c, sizeof *cols);
	*cols = k->cols;
	switch (k->kind) {
	case CC_PRIMARY:
		c->pk_cols = cols;
		if (++c->n_pk > 1)
			c->pk_pos = k->pos;
		break;
	case CC_UNIQUE:
		SQL_LIST_PUSH(c->arena, &c->uniques, cols);
		break;
	case CC_CHECK: {
		sql_check ck = {k->name, k->expr};
		SQL_LIST_PUSH(c->arena, &ct->checks, ck);
		break;
	}
	}
}

static int column_index(const sql_create_table *ct, const char *name)
{
	for (size_t i = 0; i < ct->columns.n; i++)
		if (strcmp(ct->columns.items[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Check a key's columns exist and are distinct; returns its name list. */
static sql_name_list key_columns(parse_ctx *c, const sql_create_table *ct,
				 const namepos_list *cols, const char *what)
{
	if (cols->n > MAX_KEY_COLUMNS) {
		fail(c, "54011", cols->items[MAX_KEY_COLUMNS].pos,
		     "cannot use more than %d columns in an index", MAX_KEY_COLUMNS);
		return names_of(c, cols);
	}
	for (size_t i = 0; i < cols->n && !failed(c); i++) {
		if (column_index(ct, cols->items[i].name) < 0)
			fail(c, "42703", cols->items[i].pos,
			     "column \"%s\" named in key does not exist",
			     cols->items[i].name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(cols->items[i].name, cols->items[j].name) == 0)
				fail(c, "42701", cols->items[i].pos,
				     "column \"%s\" appears twice in %s constraint",
				     cols->items[i].name, what);
	}
	return names_of(c, cols);
}

static bool names_contain(const sql_name_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], name) == 0)
			return true;
	return false;
}

/* Collect the distinct column names an expression refers to (at most 2:
 * only "one or more than one" matters).  Depth is bounded by the parser. */
static void expr_columns(const sql_expr *e, const char **names, int *n)
{
	if (e == NULL || *n > 1)
		return;
	if (e->kind == SQL_EXPR_COLUMN) {
		for (int i = 0; i < *n; i++)
			if (strcmp(names[i], e->name) == 0)
				return;
		names[(*n)++] = e->name;
		return;
	}
	expr_columns(e->left, names, n);
	expr_columns(e->right, names, n);
	expr_columns(e->third, names, n);
	for (size_t i = 0; i < e->args.n; i++)
		expr_columns(e->args.items[i], names, n);
}

/* A string -> int map in the arena (open addressing, power-of-two size),
 * so naming n CHECKs costs O(n) whatever names the user picked. */
typedef struct {
	const char **keys;
	size_t *vals;
	size_t cap, n;
} strmap;

static size_t str_hash(const char *s)
{
	size_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

/* The value slot for key, inserting it (value 0) when absent. */
static size_t *strmap_get(parse_ctx *c, strmap *m, const char *key, bool *found)
{
	if (2 * (m->n + 1) > m->cap) {
		strmap old = *m;
		m->cap = old.cap ? old.cap * 2 : 64;
		m->keys = ALLOC(c, m->cap * sizeof *m->keys);
		m->vals = ALLOC(c, m->cap * sizeof *m->vals);
		m->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.keys[i] != NULL) {
				bool f;
				*strmap_get(c, m, old.keys[i], &f) = old.vals[i];
			}
	}
	size_t i = str_hash(key) & (m->cap - 1);
	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	*found = m->keys[i] != NULL;
	if (!*found) {
		m->keys[i] = key;
		m->n++;
	}
	return &m->vals[i];
}

/* PostgreSQL's default CHECK name: table_col_check when the expression
 * uses exactly one column, else table_check; with the smallest number
 * appended that makes it unique in the table. */
static const char *check_name(parse_ctx *c, const sql_create_table *ct,
			      const sql_expr *e, strmap *used, strmap *next)
{
	const char *cols[2];
	int n = 0;
	char base[256], suffix[32];
	bool found;
	expr_columns(e, cols, &n);
	if (n == 1)
		snprintf(base, sizeof base, "%s_%s", ct->name, cols[0]);
	else
		snprintf(base, sizeof base, "%s", ct->name);
	/* Numbers below next[base] are all taken already. */
	size_t *k = strmap_get(c, next, sql_arena_strdup(c->arena, base), &found);
	for (;; (*k)++) {
		if (*k == 0)
			snprintf(suffix, sizeof suffix, "_check");
		else
			snprintf(suffix, sizeof suffix, "_check%zu", *k);
		const char *name = object_name(c, base, suffix);
		strmap_get(c, used, name, &found);
		if (!found) {
			(*k)++;
			return name;
		}
	}
}

static void name_checks(parse_ctx *c, sql_create_table *ct)
{
	strmap used = {0}, next = {0};
	bool found;
	/* Explicit names first, so defaults avoid them. */
	for (size_t i = 0; i < ct->columns.n; i++)
		for (size_t j = 0; j < ct->columns.items[i].checks.n; j++)
			if (ct->columns.items[i].checks.items[j].name != NULL)
				strmap_get(c, &used, ct->columns.items[i].checks.items[j].name, &found);
	for (size_t j = 0; j < ct->checks.n; j++)
		if (ct->checks.items[j].name != NULL)
			strmap_get(c, &used, ct->checks.items[j].name, &found);
	for (size_t i = 0; i < ct->columns.n; i++)
		for (size_t j = 0; j < ct->columns.items[i].checks.n; j++) {
			sql_check *ck = &ct->columns.items[i].checks.items[j];
			if (ck->name == NULL)
				ck->name = check_name(c, ct, ck->expr, &used, &next);
		}
	for (size_t j = 0; j < ct->checks.n; j++) {
		sql_check *ck = &ct->checks.items[j];
		if (ck->name == NULL)
			ck->name = check_name(c, ct, ck->expr, &used, &next);
	}
}

/* The catalog checks the split points against the key's type and order;
 * here only that they are constants (literal nodes, folded signs). */
static void check_splits(parse_ctx *c, const sql_create_table *ct)
{
	for (size_t i = 0; i < ct->split_points.n; i++) {
		const sql_expr *e = ct->split_points.items[i];
		if (e->kind != SQL_EXPR_LITERAL || e->lit.kind == SQL_LIT_NULL) {
			fail(c, "42601", e->pos, "SPLIT AT values must be constants");
			return;
		}
	}
}

static void finish_create_table(parse_ctx *c, sql_create_table *ct,
				const partition *p)
{
	sql_column_list *cols = &ct->columns;
	ct->partition_index = -1;

	if (cols->n > MAX_COLUMNS) {
		fail(c, "54011", cols->items[MAX_COLUMNS].pos,
		     "tables can have at most %d columns", MAX_COLUMNS);
		return;
	}
	for (size_t i = 0; i < cols->n && !failed(c); i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(cols->items[i].name, cols->items[j].name) == 0)
				fail(c, "42701", cols->items[i].pos,
				     "column \"%s\" specified more than once",
				     cols->items[i].name);
	if (c->n_pk > 1)
		fail(c, "42P16", c->pk_pos,
		     "multiple primary keys for table \"%s\" are not allowed", ct->name);

	/* The primary key, whichever way it was written. */
	if (c->pk_cols != NULL) {
		ct->primary_key = key_columns(c, ct, c->pk_cols, "primary key");
	} else {
		for (size_t i = 0; i < cols->n; i++)
			if (cols->items[i].primary_key)
				SQL_LIST_PUSH(c->arena, &ct->primary_key, cols->items[i].name);
	}
	for (size_t i = 0; i < cols->n; i++)
		if (names_contain(&ct->primary_key, cols->items[i].name))
			cols->items[i].primary_key = true;
	for (size_t i = 0; i < c->uniques.n; i++) {
		sql_name_list l = key_columns(c, ct, c->uniques.items[i], "unique");
		SQL_LIST_PUSH(c->arena, &ct->uniques, l);
	}

	/* Partitioning. */
	ct->partition = p->kind;
	if (p->kind != SQL_PARTITION_NONE) {
		ct->partition_column = p->col.val;
		ct->partition_pos = p->col.off;
		ct->partition_index = column_index(ct, p->col.val);
		ct->split_points = p->splits;
		if (ct->partition_index < 0) {
			fail(c, "42703", p->col.off,
			     "column \"%s\" named in partition key does not exist",
			     p->col.val);
		} else {
			/* A unique constraint can only be enforced shard by
			 * shard if it contains the partitioning column. */
			bool ok = ct->primary_key.n == 0 ||
				  names_contain(&ct->primary_key, p->col.val);
			for (size_t i = 0; i < ct->uniques.n; i++)
				ok = ok && names_contain(&ct->uniques.items[i], p->col.val);
			for (size_t i = 0; i < cols->n; i++)
				if (cols->items[i].unique &&
				    strcmp(cols->items[i].name, p->col.val) != 0)
					ok = false;
			if (!ok)
				fail(c, "0A000", p->col.off,
				     "unique constraint on partitioned table must include all partitioning columns");
			check_splits(c, ct);
		}
	}
	name_checks(c, ct);
}

static void finish_insert(parse_ctx *c, sql_insert *ins,
			  const namepos_list *cols, const sql__token *values)
{
	ins->columns = names_of(c, cols);
	if (cols->n > MAX_TARGETS || ins->rows.items[0].n > MAX_TARGETS) {
		fail(c, "54011", values->off, "target lists can have at most %d entries",
		     MAX_TARGETS);
		return;
	}
	for (size_t i = 0; i < cols->n && !failed(c); i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(cols->items[i].name, cols->items[j].name) == 0)
				fail(c, "42701", cols->items[i].pos,
				     "column \"%s\" specified more than once",
				     cols->items[i].name);
	size_t width = ins->rows.items[0].n;
	for (size_t r = 1; r < ins->rows.n; r++)
		if (ins->rows.items[r].n != width)
			fail(c, "42601", ins->rows.items[r].items[0]->pos,
			     "VALUES lists must all be the same length");
	if (cols->n > 0 && width > cols->n)
		fail(c, "42601", ins->rows.items[0].items[cols->n]->pos,
		     "INSERT has more expressions than target columns");
	if (cols->n > 0 && width < cols->n)
		fail(c, "42601", cols->items[width].pos,
		     "INSERT has more target columns than expressions");
}

/* ---- SELECT checks ------------------------------------------------------------------ */

/* An integer constant in GROUP BY / ORDER BY is a select-list position. */
static void check_position(parse_ctx *c, const sql_select *s, const sql_expr *e,
			   bool has_star, const char *clause)
{
	if (e->kind != SQL_EXPR_LITERAL || e->lit.kind != SQL_LIT_INT || has_star)
		return;
	if (e->lit.i < 1 || (uint64_t)e->lit.i > s->items.n)
		fail(c, "42P10", e->pos, "%s position %lld is not in select list", clause,
		     (long long)e->lit.i);
}

static void check_select(parse_ctx *c, const sql_select *s)
{
	bool has_star = false;
	for (size_t i = 0; i < s->items.n; i++) {
		const sql_expr *e = s->items.items[i].expr;
		if (e->kind == SQL_EXPR_STAR) {
			has_star = true;
			if (s->from == NULL)
				fail(c, "42601", e->pos, "SELECT * with no tables specified is not valid");
		}
	}
	for (size_t i = 0; i < s->group_by.n; i++)
		check_position(c, s, s->group_by.items[i], has_star, "GROUP BY");
	for (size_t i = 0; i < s->order_by.n; i++)
		check_position(c, s, s->order_by.items[i].expr, has_star, "ORDER BY");
	if (s->limit != NULL && s->limit->kind == SQL_EXPR_LITERAL &&
	    s->limit->lit.kind == SQL_LIT_INT && s->limit->lit.i < 0)
		fail(c, "2201W", s->limit->pos, "LIMIT must not be negative");
	if (s->offset != NULL && s->offset->kind == SQL_EXPR_LITERAL &&
	    s->offset->lit.kind == SQL_LIT_INT && s->offset->lit.i < 0)
		fail(c, "2201X", s->offset->pos, "OFFSET must not be negative");
}

/* ---- error messages -------------------------------------------------------------- */

static bool lex_peek(parse_ctx *c, sql__token *out);

static bool word_in(const sql__token *t, const char *const *words)
{
	for (size_t i = 0; t->word && words[i] != NULL; i++)
		if (strcmp(t->val, words[i]) == 0)
			return true;
	return false;
}

static void upper(char *dst, size_t cap, const char *src)
{
	size_t i = 0;
	for (; src[i] != 0 && i + 1 < cap; i++)
		dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? (char)(src[i] - 32) : src[i];
	dst[i] = 0;
}

/* When the token t that caused a syntax error marks a PostgreSQL feature
 * outside the subset, fill msg and *off and return true. */
static bool unsupported_feature(parse_ctx *c, const sql__token *t,
				char *msg, size_t cap, size_t *off)
{
	static const char *const join_words[] = {
		"left", "right", "full", "inner", "cross", "natural", NULL};
	static const char *const stmt_words[] = {
		"truncate", "grant", "revoke", "copy", "vacuum", "analyze", "cluster",
		"reindex", "listen", "notify", "unlisten", "prepare", "execute",
		"deallocate", "declare", "fetch", "move", "close", "lock", "do", "call",
		"checkpoint", "comment", "discard", "refresh", "merge", "import",
		"load", "security", "reassign", "values", "table", NULL};
	static const char *const create_words[] = {
		"view", "sequence", "function", "procedure", "schema", "database",
		"trigger", "type", "extension", "role", "user", "domain", "rule",
		"policy", "aggregate", "operator", "tablespace", "server",
		"publication", "subscription", "collation", "cast", "conversion",
		"language", "statistics", "event", "foreign", "access", "transform",
		"group", "materialized", "recursive", "temp", "temporary",
		"unlogged", "or", "global", "local", NULL};
	static const char *const alter_drop_words[] = {
		"table", "index", "view", "sequence", "function", "procedure",
		"schema", "database", "trigger", "type", "extension", "role", "user",
		"domain", "rule", "policy", "aggregate", "operator", "tablespace",
		"server", "publication", "subscription", "collation", "cast",
		"materialized", "system", "default", "owned", "group", "language",
		"statistics", "event", "foreign", NULL};
	const sql__token *p = c->ntok > 1 ? &c->prev : NULL;
	const sql__token *first = &c->first;
	sql__token nx = {0};
	bool has_next = t->code != 0 && t->code != TK_SEMI && lex_peek(c, &nx);
	char W[64];

	*off = t->off;
	if (p != NULL && tok_is(p, "over") && (t->code == TK_LP || t->code == TK_ID)) {
		*off = p->off;
		snprintf(msg, cap, "window functions are not supported");
		return true;
	}
	if (p != NULL && tok_is(p, "filter") && t->code == TK_LP) {
		*off = p->off;
		snprintf(msg, cap, "aggregate FILTER clauses are not supported");
		return true;
	}
	if (t->code == TK_LP && has_next && tok_is(&nx, "select")) {
		*off = nx.off;
		snprintf(msg, cap, "subqueries are not supported");
		return true;
	}
	if (t->code == TK_LBRACKET) {
		snprintf(msg, cap, "arrays are not supported");
		return true;
	}
	if (!t->word)
		return false;
	upper(W, sizeof W, t->val);

	if (tok_is(t, "join") || tok_is(t, "outer") || tok_is(t, "lateral") ||
	    (word_in(t, join_words) && has_next &&
	     (tok_is(&nx, "join") || tok_is(&nx, "outer")))) {
		snprintf(msg, cap, "joins are not supported");
		return true;
	}
	if (tok_is(t, "union") || tok_is(t, "intersect") || tok_is(t, "except")) {
		snprintf(msg, cap, "%s is not supported", W);
		return true;
	}
	if (tok_is(t, "select") || tok_is(t, "values")) {
		if (p != NULL && p->code == TK_LP) {
			snprintf(msg, cap, "subqueries are not supported");
			return true;
		}
		if (tok_is(first, "insert")) {
			snprintf(msg, cap, "INSERT ... SELECT is not supported");
			return true;
		}
	}
	if (tok_is(t, "with")) {
		if (c->ntok == 1) {
			snprintf(msg, cap, "WITH queries (common table expressions) are not supported");
			return true;
		}
		if (p != NULL && (tok_is(p, "timestamp") || tok_is(p, "time") ||
				  p->code == TK_RP)) {
			snprintf(msg, cap, "time zones (WITH TIME ZONE) are not supported");
			return true;
		}
	}
	if (tok_is(t, "returning")) {
		snprintf(msg, cap, "RETURNING is not supported");
		return true;
	}
	if (tok_is(t, "on")) {
		if (p != NULL && tok_is(p, "distinct")) {
			snprintf(msg, cap, "DISTINCT ON is not supported");
			return true;
		}
		if (tok_is(first, "insert")) {
			snprintf(msg, cap, "ON CONFLICT is not supported");
			return true;
		}
	}
	if (tok_is(t, "over") || tok_is(t, "window")) {
		snprintf(msg, cap, "window functions are not supported");
		return true;
	}
	if (tok_is(t, "references") || tok_is(t, "foreign")) {
		snprintf(msg, cap, "foreign keys are not supported");
		return true;
	}
	if (tok_is(t, "collate")) {
		snprintf(msg, cap, "COLLATE is not supported");
		return true;
	}
	if (tok_is(t, "any") || tok_is(t, "some") ||
	    (tok_is(t, "all") && has_next && nx.code == TK_LP)) {
		snprintf(msg, cap, "%s (array or subquery comparison) is not supported", W);
		return true;
	}
	if (tok_is(t, "array")) {
		snprintf(msg, cap, "arrays are not supported");
		return true;
	}
	if (tok_is(first, "select") &&
	    (tok_is(t, "for") || (p != NULL && tok_is(p, "for")) || tok_is(t, "nowait") ||
	     tok_is(t, "skip") || tok_is(t, "of"))) {
		snprintf(msg, cap, "this locking clause is not supported (only FOR UPDATE and FOR SHARE)");
		return true;
	}
	if (tok_is(t, "fetch") && c->ntok > 1) {
		snprintf(msg, cap, "FETCH FIRST is not supported, use LIMIT");
		return true;
	}
	if (tok_is(t, "from") && tok_is(first, "update")) {
		snprintf(msg, cap, "joins are not supported (UPDATE ... FROM)");
		return true;
	}
	if (tok_is(t, "using") && tok_is(first, "delete")) {
		snprintf(msg, cap, "joins are not supported (DELETE ... USING)");
		return true;
	}
	if (tok_is(t, "using") && tok_is(first, "create")) {
		snprintf(msg, cap, "index access methods (USING) are not supported");
		return true;
	}
	if (tok_is(t, "default") && (tok_is(first, "insert") || tok_is(first, "update"))) {
		snprintf(msg, cap, "DEFAULT in %s is not supported", tok_is(first, "insert") ? "INSERT" : "UPDATE");
		return true;
	}
	if (tok_is(t, "as") && tok_is(first, "create") && tok_is(&c->second, "table")) {
		snprintf(msg, cap, "CREATE TABLE AS is not supported");
		return true;
	}
	if (tok_is(t, "list") && p != NULL && tok_is(p, "by")) {
		snprintf(msg, cap, "PARTITION BY LIST is not supported");
		return true;
	}
	if (tok_is(t, "generated")) {
		snprintf(msg, cap, "generated and identity columns are not supported");
		return true;
	}
	if (tok_is(t, "inherits")) {
		snprintf(msg, cap, "table inheritance is not supported");
		return true;
	}
	if ((c->ntok == 1 && (tok_is(t, "savepoint") || tok_is(t, "release"))) ||
	    (tok_is(t, "to") && tok_is(first, "rollback"))) {
		snprintf(msg, cap, "savepoints are not supported");
		return true;
	}
	if (tok_is(first, "set") &&
	    (tok_is(&c->second, "transaction") || (p != NULL && tok_is(p, "characteristics")))) {
		*off = c->second.off;
		snprintf(msg, cap, "SET TRANSACTION is not supported; use BEGIN ISOLATION LEVEL ...");
		return true;
	}
	if (c->ntok == 1 && word_in(t, stmt_words)) {
		snprintf(msg, cap, "%s is not supported", W);
		return true;
	}
	if (c->ntok == 2 && tok_is(first, "create") && word_in(t, create_words)) {
		if (tok_is(t, "temp") || tok_is(t, "temporary") || tok_is(t, "global") ||
		    tok_is(t, "local"))
			snprintf(msg, cap, "temporary tables are not supported");
		else if (tok_is(t, "unlogged"))
			snprintf(msg, cap, "unlogged tables are not supported");
		else if (tok_is(t, "or"))
			snprintf(msg, cap, "CREATE OR REPLACE is not supported");
		else if (tok_is(t, "materialized"))
			snprintf(msg, cap, "CREATE MATERIALIZED VIEW is not supported");
		else
			snprintf(msg, cap, "CREATE %s is not supported", W);
		return true;
	}
	if (c->ntok == 4 && tok_is(first, "alter") && t->code != TK_SPLIT && t->code != TK_MOVE) {
		/* ALTER TABLE t <anything but SPLIT AT / MOVE RANGE> */
		size_t o = first->off + first->len;
		while (o < c->lx.len && (c->lx.text[o] == ' ' || c->lx.text[o] == '\t' || c->lx.text[o] == '\n' ||
					 c->lx.text[o] == '\r'))
			o++;
		if (o + 5 <= c->lx.len && strncasecmp(c->lx.text + o, "table", 5) == 0) {
			*off = o;
			snprintf(msg, cap, "ALTER TABLE is not supported, except ALTER TABLE ... SPLIT AT (v) and "
					   "ALTER TABLE ... MOVE RANGE r TO SHARD n");
			return true;
		}
	}
	if (c->ntok == 2 && (tok_is(first, "alter") || tok_is(first, "drop")) &&
	    word_in(t, alter_drop_words)) {
		snprintf(msg, cap, "%s %s is not supported", tok_is(first, "alter") ? "ALTER" : "DROP", W);
		return true;
	}
	return false;
}

static void syntax_error(parse_ctx *c, const sql__token *t)
{
	char msg[sizeof c->err->message];
	size_t off;
	if (failed(c))
		return;
	if (t->code == 0) {
		/* PostgreSQL points one past the last character. */
		fail(c, "42601", c->lx.len, "syntax error at end of input");
		return;
	}
	if (unsupported_feature(c, t, msg, sizeof msg, &off)) {
		fail(c, "0A000", off, "%s", msg);
		return;
	}
	size_t n = t->len, cut = 0;
	const char *s = c->lx.text + t->off;
	while (cut < n && cut < 64) {
		unsigned char b = (unsigned char)s[cut];
		size_t l = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
		if (cut + l > 64)
			break;
		cut += l;
	}
	fail(c, "42601", t->off, "syntax error at or near \"%.*s\"", (int)cut, s);
}

/* ---- driver ------------------------------------------------------------------------ */

static bool lex_peek(parse_ctx *c, sql__token *out)
{
	if (!c->have_peeked) {
		sql_error scratch;
		memset(&scratch, 0, sizeof scratch);
		size_t save = c->lx.pos;
		if (sql__lex(&c->lx, &c->peeked, &scratch) < 0) {
			c->lx.pos = save;
			return false;
		}
		c->have_peeked = true;
	}
	*out = c->peeked;
	return true;
}

static int lex_next(parse_ctx *c, sql__token *out)
{
	if (c->have_peeked) {
		*out = c->peeked;
		c->have_peeked = false;
		return 0;
	}
	return sql__lex(&c->lx, out, c->err);
}

/* Copy text[start, end) of the query as a statement's own SQL text. */
static void set_span(parse_ctx *c, sql_stmt *s, size_t start, size_t end, int max_param)
{
	s->start = start;
	s->end = end;
	s->sql = sql_arena_strndup(c->arena, c->lx.text + start, end - start);
	s->max_param = max_param;
}

/* Parse statements until the end of input; push them onto list. */
static int parse_all(parse_ctx *c, sql_stmt_list *list)
{
	yyParser *engine = c->engine;
	struct {
		sql_stmt **items;
		size_t n, cap;
	} stmts = {0};

	for (;;) {
		sql__token tok, term;
		if (lex_next(c, &tok) < 0)
			return -1;
		if (tok.code == TK_SEMI)
			continue; /* empty statement */
		if (tok.code == 0)
			break;

		sql__ParseInit(engine);
		c->engine_live = true;
		c->result = NULL;
		c->max_param = 0;
		c->ntok = 0;
		c->first = tok;
		memset(&c->second, 0, sizeof c->second);
		reset_create_state(c);
		int depth = 0;
		size_t start = tok.off, end = tok.off;

		for (;;) {
			sql__token nx = {0};
			if (tok.code == TK_NOT && lex_peek(c, &nx) &&
			    (nx.code == TK_BETWEEN || nx.code == TK_IN ||
			     nx.code == TK_LIKE || nx.code == TK_ILIKE))
				tok.code = TK_NOT_LA;
			c->ntok++;
			if (c->ntok == 2)
				c->second = tok;
			if (tok.code == TK_LP && ++depth > SQL_MAX_DEPTH) {
				fail(c, "54001", tok.off,
				     "statement too complex: parentheses nested deeper than %d levels",
				     SQL_MAX_DEPTH);
				return -1;
			}
			if (tok.code == TK_RP)
				depth--;
			sql__Parse(engine, tok.code, tok, c);
			if (failed(c))
				return -1;
			c->prev = tok;
			end = tok.off + tok.len;
			if (lex_next(c, &tok) < 0)
				return -1;
			if (tok.code == TK_SEMI || tok.code == 0)
				break;
		}
		term = tok;
		c->ntok++;
		sql__Parse(engine, 0, term, c);
		sql__ParseFinalize(engine);
		c->engine_live = false;
		if (failed(c))
			return -1;
		if (c->result == NULL) {
			fail(c, "XX000", start, "internal error: statement not built");
			return -1;
		}
		sql_stmt *s = c->result;
		set_span(c, s, start, end, c->max_param);
		if (s->compensate != NULL)
			set_span(c, s->compensate, s->compensate->start, end, c->max_param);
		if (s->kind == SQL_STMT_EXPLAIN) {
			sql_stmt *in = s->explain.stmt;
			set_span(c, in, in->start, end, c->max_param);
			if (in->compensate != NULL)
				set_span(c, in->compensate, in->compensate->start, end, c->max_param);
		}
		if (c->max_param > list->max_param)
			list->max_param = c->max_param;
		SQL_LIST_PUSH(c->arena, &stmts, s);
		if (term.code == 0)
			break;
	}
	list->items = stmts.items;
	list->n = stmts.n;
	return 0;
}

/* Everything after setjmp lives behind pointers set before it, so nothing
 * needs to be volatile. */
static int parse_guarded(parse_ctx *c, sql_stmt_list *list)
{
	jmp_buf jb;
	if (setjmp(jb) != 0) {
		if (c->engine_live)
			sql__ParseFinalize(c->engine);
		c->engine_live = false;
		sql__arena_set_oom_jump(c->arena, NULL);
		memset(c->err, 0, sizeof *c->err);
		sql__error_set(c->err, "53200", 0, "out of memory");
		return -1;
	}
	sql__arena_set_oom_jump(c->arena, &jb);
	int rc = parse_all(c, list);
	if (c->engine_live)
		sql__ParseFinalize(c->engine);
	c->engine_live = false;
	sql__arena_set_oom_jump(c->arena, NULL);
	return rc;
}

int sql_parse(const char *text, size_t len, sql_stmt_list **out, sql_error *err)
{
	memset(err, 0, sizeof *err);
	*out = NULL;
	if (text == NULL)
		len = 0;
	if (len > SQL_MAX_QUERY_LEN) {
		sql__error_set(err, "54000", 0,
			       "statement too long: %zu bytes (the limit is %u)",
			       len, SQL_MAX_QUERY_LEN);
		return -1;
	}
	size_t bad = sql__utf8_check(text, len);
	if (bad < len) {
		sql__error_set(err, "22021", 0,
			       "invalid byte sequence for encoding \"UTF8\": 0x%02x",
			       (unsigned char)text[bad]);
		return -1;
	}
	sql_arena *arena = sql_arena_new();
	if (arena == NULL) {
		sql__error_set(err, "53200", 0, "out of memory");
		return -1;
	}
	sql_stmt_list *list = sql_arena_alloc(arena, sizeof *list);
	parse_ctx *c = sql_arena_alloc(arena, sizeof *c);
	void *engine = sql_arena_alloc(arena, sizeof(yyParser));
	char *copy = sql_arena_strndup(arena, len > 0 ? text : "", len);
	if (list == NULL || c == NULL || engine == NULL || copy == NULL) {
		sql_arena_free(arena);
		sql__error_set(err, "53200", 0, "out of memory");
		return -1;
	}
	list->arena = arena;
	list->text = copy;
	list->text_len = len;
	c->lx.text = copy;
	c->lx.len = len;
	c->lx.arena = arena;
	c->err = err;
	c->arena = arena;
	c->engine = engine;
	if (parse_guarded(c, list) < 0) {
		sql_arena_free(arena);
		return -1;
	}
	*out = list;
	return 0;
}

void sql_stmt_list_free(sql_stmt_list *list)
{
	if (list != NULL)
		sql_arena_free(list->arena);
}

sql_arena *sql_stmt_list_arena(sql_stmt_list *list)
{
	return list->arena;
}

int sql_stmt_list_position(const sql_stmt_list *list, size_t pos)
{
	return sql__char_position(list->text, list->text_len, pos);
}

} /* %code */
