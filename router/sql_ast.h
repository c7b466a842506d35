/*
 * sql_ast.h — the parse tree of shardlite's SQL subset, its arena, and the
 * constructors the parser and the planner use to build and rewrite it.
 *
 * Ownership.  Every node, list, name and string of one sql_parse() result
 * lives in one arena (sql_arena) owned by the sql_stmt_list; nothing in the
 * tree is malloc'd on its own and sql_stmt_list_free() releases it all at
 * once.  A planner that rewrites a tree allocates the new nodes from the
 * same arena (sql_stmt_list_arena()) or from an arena of its own that
 * outlives the rendering; it never frees a node.
 *
 * Invariants of a tree produced by sql_parse():
 *  - names (tables, columns, aliases, functions) are NUL-terminated, at most
 *    SQL_NAME_MAX bytes, already case-folded (unquoted names are lower case);
 *  - string literals are valid UTF-8 without NUL bytes; lit.len == strlen;
 *  - an expression's depth is at most SQL_MAX_DEPTH;
 *  - pos fields are byte offsets into the query text given to sql_parse(),
 *    or SQL_NO_POS for nodes built later (sql_char_position() converts a
 *    byte offset into PostgreSQL's 1-based character position).
 *
 * Which fields an expression uses depends on its kind (table below); the
 * others are zero.  Lists are arrays with a capacity: n items are valid,
 * cap is how many fit before SQL_LIST_PUSH reallocates.  A list copied by
 * value shares its array: push only onto one of the copies, or make a
 * private copy first with sql_expr_list_copy().
 */
#ifndef SHARDLITE_SQL_AST_H
#define SHARDLITE_SQL_AST_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits, documented in docs/sql.md. */
#define SQL_MAX_DEPTH 1000             /* expression / parenthesis nesting */
#define SQL_MAX_QUERY_LEN (64u << 20)  /* bytes in one query string */
#define SQL_NAME_MAX 63                /* bytes of an identifier (longer: truncated) */
#define SQL_NO_POS ((size_t)-1)

/* ---- errors -------------------------------------------------------------- */

/* A PostgreSQL-style error: SQLSTATE, message, cursor position. */
typedef struct {
	char sqlstate[6];
	char message[256];
	int position;          /* 1-based character position, 0 = none */
} sql_error;

/* ---- arena ------------------------------------------------------------- */

typedef struct sql_arena sql_arena;

/* A new empty arena, or NULL when out of memory. */
sql_arena *sql_arena_new(void);
void sql_arena_free(sql_arena *a);
/* Zeroed memory aligned for any type; NULL when out of memory. */
void *sql_arena_alloc(sql_arena *a, size_t size);
/* NUL-terminated copy of s[0..n); NULL when out of memory. */
char *sql_arena_strndup(sql_arena *a, const char *s, size_t n);
char *sql_arena_strdup(sql_arena *a, const char *s);

/* Make room for `want` items in a list; itemsp is the address of the
 * list's items pointer.  Returns 0, or -1 when out of memory. */
int sql_list_reserve(sql_arena *a, void *itemsp, size_t want, size_t *cap,
		     size_t elsize);

/* Append value to a list; evaluates to 0, or -1 when out of memory. */
#define SQL_LIST_PUSH(arena, list, value)                                     \
	(sql_list_reserve((arena), &(list)->items, (list)->n + 1, &(list)->cap, \
			  sizeof *(list)->items) == 0                           \
		 ? ((list)->items[(list)->n++] = (value), 0)                    \
		 : -1)

/* ---- types --------------------------------------------------------------- */

typedef enum {
	SQL_TYPE_NONE = 0,
	SQL_TYPE_BIGINT,    /* BIGINT, INT8 */
	SQL_TYPE_INTEGER,   /* INTEGER, INT, INT4 */
	SQL_TYPE_SMALLINT,  /* SMALLINT, INT2 */
	SQL_TYPE_TEXT,      /* TEXT */
	SQL_TYPE_VARCHAR,   /* VARCHAR[(n)], CHARACTER VARYING[(n)] */
	SQL_TYPE_CHAR,      /* CHAR[(n)], CHARACTER[(n)]; n defaults to 1 */
	SQL_TYPE_DOUBLE,    /* DOUBLE PRECISION, FLOAT8, FLOAT, FLOAT(25..53) */
	SQL_TYPE_REAL,      /* REAL, FLOAT4, FLOAT(1..24) */
	SQL_TYPE_NUMERIC,   /* NUMERIC[(p[,s])], DECIMAL[(p[,s])] */
	SQL_TYPE_BOOLEAN,   /* BOOLEAN, BOOL */
	SQL_TYPE_BYTEA,     /* BYTEA */
	SQL_TYPE_TIMESTAMP, /* TIMESTAMP[(p)] [WITHOUT TIME ZONE] */
} sql_type_kind;

typedef struct {
	sql_type_kind kind;
	int32_t length;    /* VARCHAR/CHAR: n, or -1 (VARCHAR without n) */
	int32_t precision; /* NUMERIC p, TIMESTAMP p, or -1 */
	int32_t scale;     /* NUMERIC s, or -1 */
} sql_type;

/* ---- expressions --------------------------------------------------------- */

typedef struct sql_expr sql_expr;

typedef struct {
	sql_expr **items;
	size_t n, cap;
} sql_expr_list;

typedef struct {
	const char **items;
	size_t n, cap;
} sql_name_list;

typedef enum {
	SQL_LIT_NULL = 0,
	SQL_LIT_INT,     /* i */
	SQL_LIT_NUMERIC, /* str: decimal/float text as written, maybe with '-' */
	SQL_LIT_STRING,  /* str, len: decoded value */
	SQL_LIT_BOOL,    /* b */
} sql_lit_kind;

typedef struct {
	sql_lit_kind kind;
	int64_t i;
	bool b;
	const char *str;
	size_t len;
} sql_literal;

typedef enum {
	SQL_OP_NONE = 0,
	/* unary */
	SQL_OP_NEG, SQL_OP_POS, SQL_OP_NOT,
	/* binary */
	SQL_OP_ADD, SQL_OP_SUB, SQL_OP_MUL, SQL_OP_DIV, SQL_OP_MOD,
	SQL_OP_CONCAT,
	SQL_OP_EQ, SQL_OP_NE, SQL_OP_LT, SQL_OP_LE, SQL_OP_GT, SQL_OP_GE,
	SQL_OP_IS_DISTINCT, SQL_OP_IS_NOT_DISTINCT, /* IS [NOT] DISTINCT FROM */
	SQL_OP_AND, SQL_OP_OR,
} sql_op;

typedef enum {
	SQL_IS_NULL = 0, SQL_IS_TRUE, SQL_IS_FALSE, SQL_IS_UNKNOWN,
} sql_is_test;

typedef enum {
	SQL_EXPR_LITERAL = 1,
	SQL_EXPR_PARAM,
	SQL_EXPR_COLUMN,
	SQL_EXPR_STAR,
	SQL_EXPR_UNARY,
	SQL_EXPR_BINARY,
	SQL_EXPR_IS,
	SQL_EXPR_IN,
	SQL_EXPR_BETWEEN,
	SQL_EXPR_LIKE,
	SQL_EXPR_FUNC,
	SQL_EXPR_CAST,
	SQL_EXPR_CASE,
	SQL_EXPR_CURRENT_TIMESTAMP,
} sql_expr_kind;

/*
 *  kind               fields used
 *  LITERAL            lit
 *  PARAM              param ($n: n >= 1)
 *  COLUMN             table (qualifier or NULL), name
 *  STAR               table (t.* or NULL for *); only as a select item
 *  UNARY              op (NEG, POS, NOT), left
 *  BINARY             op, left, right
 *  IS                 is_test, negated, left            (x IS [NOT] NULL ...)
 *  IN                 negated, left, args               (x [NOT] IN (args))
 *  BETWEEN            negated, left, right = low, third = high
 *  LIKE               ilike, negated, left, right = pattern, third = ESCAPE
 *                     or NULL (PostgreSQL's default escape is backslash)
 *  FUNC               name (lower case), args, star (f(*)), distinct
 *  CAST               left, type                        (CAST(x AS t), x::t)
 *  CASE               left = operand or NULL, args = WHEN1, THEN1, WHEN2,
 *                     THEN2, ..., right = ELSE or NULL
 *  CURRENT_TIMESTAMP  nothing
 */
struct sql_expr {
	sql_expr_kind kind;
	size_t pos;   /* where PostgreSQL would point: operator, name, literal */
	int depth;    /* 1 + depth of the deepest child */
	sql_op op;
	bool negated;
	bool ilike;
	bool star;
	bool distinct;
	sql_is_test is_test;
	int param;
	sql_literal lit;
	const char *table;
	const char *name;
	sql_type type;
	sql_expr *left, *right, *third;
	sql_expr_list args;
};

/* ---- statements ------------------------------------------------------------ */

typedef struct {
	const char *name; /* CONSTRAINT name, or the PostgreSQL-style default */
	sql_expr *expr;
} sql_check;

typedef struct {
	sql_check *items;
	size_t n, cap;
} sql_check_list;

typedef struct {
	const char *name;
	size_t pos;
	sql_type type;
	bool primary_key;      /* listed in sql_create_table.primary_key too */
	bool not_null;         /* NOT NULL written (PRIMARY KEY implies it too) */
	bool unique;           /* column-level UNIQUE */
	sql_expr *default_value;
	sql_check_list checks; /* column-level CHECKs */
} sql_column_def;

typedef struct {
	sql_column_def *items;
	size_t n, cap;
} sql_column_list;

typedef struct {
	sql_name_list *items;
	size_t n, cap;
} sql_name_list_list;

typedef enum {
	SQL_PARTITION_NONE = 0, /* reference table, copied to every shard */
	SQL_PARTITION_HASH,
	SQL_PARTITION_RANGE,
} sql_partition_kind;

typedef struct {
	const char *name;
	size_t pos;
	bool if_not_exists;
	sql_column_list columns;
	sql_name_list primary_key;   /* column- or table-level; empty if none */
	sql_name_list_list uniques;  /* table-level UNIQUE (cols) */
	sql_check_list checks;       /* table-level CHECKs */
	sql_partition_kind partition;
	const char *partition_column;
	size_t partition_pos;
	int partition_index;         /* index in columns, -1 when NONE */
	sql_expr_list split_points;  /* RANGE ... SPLIT AT: literal nodes */
} sql_create_table;

typedef struct {
	const char *name;
	size_t pos;
	bool if_exists;
} sql_drop_table;

typedef struct {
	const char *name;
	size_t pos;
	bool desc;
} sql_index_column;

typedef struct {
	sql_index_column *items;
	size_t n, cap;
} sql_index_column_list;

typedef struct {
	const char *name;      /* given, or PostgreSQL's default t_col_idx/_key */
	bool name_generated;
	const char *table;
	size_t table_pos;
	bool unique;
	bool if_not_exists;
	sql_index_column_list columns;
} sql_create_index;

typedef struct {
	sql_expr_list *items;  /* each row is a list of n_columns expressions */
	size_t n, cap;
} sql_row_list;

typedef struct {
	const char *table;
	size_t table_pos;
	sql_name_list columns; /* empty: all columns in table order */
	sql_row_list rows;     /* all rows have the same length */
} sql_insert;

typedef struct {
	sql_expr *expr;        /* kind STAR for * and t.* */
	const char *alias;     /* AS alias, or NULL */
} sql_select_item;

typedef struct {
	sql_select_item *items;
	size_t n, cap;
} sql_select_item_list;

typedef enum {
	SQL_NULLS_DEFAULT = 0, /* PostgreSQL: last for ASC, first for DESC */
	SQL_NULLS_FIRST,
	SQL_NULLS_LAST,
} sql_nulls;

typedef struct {
	sql_expr *expr;
	bool desc;
	sql_nulls nulls;
} sql_order_item;

typedef struct {
	sql_order_item *items;
	size_t n, cap;
} sql_order_list;

typedef struct {
	const char *name;
	const char *alias;     /* or NULL */
	size_t pos;
} sql_table_ref;

typedef enum {
	SQL_LOCK_NONE = 0, SQL_LOCK_UPDATE, SQL_LOCK_SHARE,
} sql_lock_mode;

typedef struct {
	bool distinct;
	sql_select_item_list items;
	sql_table_ref *from;   /* NULL: SELECT without FROM */
	sql_expr *where;
	sql_expr_list group_by;
	sql_expr *having;
	sql_order_list order_by;
	sql_expr *limit;       /* NULL: none (or LIMIT ALL) */
	sql_expr *offset;
	sql_lock_mode lock;    /* FOR UPDATE / FOR SHARE, recorded only */
} sql_select;

typedef struct {
	const char *column;
	size_t pos;
	sql_expr *value;
} sql_assignment;

typedef struct {
	sql_assignment *items;
	size_t n, cap;
} sql_assignment_list;

typedef struct {
	const char *table;
	size_t table_pos;
	sql_assignment_list set;
	sql_expr *where;
} sql_update;

typedef struct {
	const char *table;
	size_t table_pos;
	sql_expr *where;
} sql_delete;

typedef enum {
	SQL_ISO_DEFAULT = 0,
	SQL_ISO_READ_UNCOMMITTED,
	SQL_ISO_READ_COMMITTED,
	SQL_ISO_REPEATABLE_READ,
	SQL_ISO_SERIALIZABLE,
} sql_isolation;

typedef enum {
	SQL_ACCESS_DEFAULT = 0, SQL_ACCESS_READ_WRITE, SQL_ACCESS_READ_ONLY,
} sql_access;

typedef struct {
	bool saga;             /* BEGIN SAGA */
	bool start;            /* written START TRANSACTION */
	sql_isolation isolation;
	sql_access access;
	int deferrable;        /* -1 NOT DEFERRABLE, 0 unspecified, 1 DEFERRABLE */
} sql_begin;

typedef enum {
	SQL_SET_DEFAULT = 0,   /* SET x = DEFAULT, SET x TO DEFAULT, RESET x */
	SQL_SET_STRING,        /* 'text' */
	SQL_SET_INT,           /* 42, -1 */
	SQL_SET_NUMERIC,       /* 1.5 */
	SQL_SET_IDENT,         /* an identifier or keyword, lower-cased */
	SQL_SET_BOOL,          /* TRUE, FALSE, ON */
} sql_set_kind;

typedef struct {
	const char *name;      /* lower case; "timezone" for SET TIME ZONE;
				* NULL for RESET ALL */
	bool local;            /* SET LOCAL */
	bool reset;            /* written RESET */
	sql_set_kind kind;
	const char *value;     /* the value as text ("on"/"off" for BOOL), or
				* NULL for DEFAULT */
} sql_set;

typedef enum {
	SQL_SHOW_VAR = 0,      /* SHOW name: name is set */
	SQL_SHOW_TABLES,
	SQL_SHOW_SHARDS,
	SQL_SHOW_TRANSACTIONS,
	SQL_SHOW_SAGAS,
	SQL_SHOW_REBALANCE,
	SQL_SHOW_RANGES,
} sql_show_kind;

typedef struct {
	sql_show_kind what;
	const char *name;      /* VAR: lower case ("all" for SHOW ALL,
				* "transaction_isolation", "timezone") */
} sql_show;

typedef struct sql_stmt sql_stmt;

typedef struct {
	bool analyze, verbose;
	sql_stmt *stmt;        /* SELECT, INSERT, UPDATE or DELETE */
} sql_explain;

typedef struct {
	const char *address;   /* 'host:port' as written */
	size_t pos;
} sql_add_shard;

typedef struct {
	uint32_t *items;
	size_t n;
} sql_bucket_list;

typedef struct {
	uint32_t *buckets;     /* MOVE BUCKET b, ... TO SHARD n */
	size_t nbuckets;
	uint32_t shard;
} sql_move_bucket;

typedef struct {
	const char *table;     /* REBALANCE TABLE t, else NULL */
} sql_rebalance;

typedef struct {
	const char *table;     /* ALTER TABLE t SPLIT AT (v) / MOVE RANGE r TO SHARD n */
	sql_expr *value;       /* SPLIT AT: a literal */
	uint32_t range, shard; /* MOVE RANGE */
} sql_alter_range;

typedef enum {
	SQL_STMT_SELECT = 1,
	SQL_STMT_INSERT,
	SQL_STMT_UPDATE,
	SQL_STMT_DELETE,
	SQL_STMT_CREATE_TABLE,
	SQL_STMT_DROP_TABLE,
	SQL_STMT_CREATE_INDEX,
	SQL_STMT_BEGIN,
	SQL_STMT_COMMIT,       /* COMMIT, END */
	SQL_STMT_ROLLBACK,     /* ROLLBACK, ABORT */
	SQL_STMT_SET,          /* SET, RESET */
	SQL_STMT_SHOW,
	SQL_STMT_EXPLAIN,
	SQL_STMT_ADD_SHARD,    /* ALTER CLUSTER ADD SHARD 'host:port' */
	SQL_STMT_REBALANCE,    /* REBALANCE [TABLE t] */
	SQL_STMT_MOVE_BUCKET,
	SQL_STMT_REMOVE_SHARD, /* ALTER CLUSTER REMOVE SHARD n (move.shard) */
	SQL_STMT_SPLIT_RANGE,  /* ALTER TABLE t SPLIT AT (v) (alter_range) */
	SQL_STMT_MOVE_RANGE,   /* ALTER TABLE t MOVE RANGE r TO SHARD n (alter_range) */
	SQL_STMT_CANCEL_REBALANCE,
	SQL_STMT_RESOLVE_SAGA, /* RESOLVE SAGA 'id' OVERWRITE | ACCEPT */
} sql_stmt_kind;

struct sql_stmt {
	sql_stmt_kind kind;
	/* Source span: text[start, end) runs from the first token to the end
	 * of the last one (no ';', no surrounding blanks or comments).  For a
	 * nested statement (EXPLAIN's, COMPENSATE WITH's) the span is its own
	 * part of the outer statement.  sql is a NUL-terminated copy. */
	size_t start, end;
	const char *sql;
	int max_param;         /* highest $n in the whole top-level statement */
	sql_stmt *compensate;  /* INSERT/UPDATE/DELETE ... COMPENSATE WITH */
	bool keyword_alias;    /* END for COMMIT, ABORT for ROLLBACK */
	const char *prepared_gid; /* COMMIT/ROLLBACK PREPARED 'gid', RESOLVE SAGA 'id', else NULL */
	int resolve_mode;      /* RESOLVE SAGA: 1 OVERWRITE, 2 ACCEPT */
	union {
		sql_select select;
		sql_insert insert;
		sql_update update;
		sql_delete delete_;
		sql_create_table create_table;
		sql_drop_table drop_table;
		sql_create_index create_index;
		sql_begin begin;
		sql_set set;
		sql_show show;
		sql_explain explain;
		sql_add_shard add_shard;
		sql_move_bucket move;
		sql_rebalance rebalance;
		sql_alter_range alter_range;
	};
};

/* ---- constructors (NULL when out of memory) ------------------------------ */

sql_expr *sql_expr_new(sql_arena *a, sql_expr_kind kind, size_t pos);
sql_expr *sql_expr_int(sql_arena *a, int64_t v);
sql_expr *sql_expr_string(sql_arena *a, const char *s, size_t len);
sql_expr *sql_expr_null(sql_arena *a);
sql_expr *sql_expr_column(sql_arena *a, const char *table, const char *name);
sql_expr *sql_expr_unary(sql_arena *a, sql_op op, sql_expr *operand);
sql_expr *sql_expr_binary(sql_arena *a, sql_op op, sql_expr *l, sql_expr *r);
/* f(args...) with n args copied from args; star for f(*). */
sql_expr *sql_expr_func(sql_arena *a, const char *name, sql_expr *const *args,
			size_t n, bool star, bool distinct);
sql_expr *sql_expr_cast(sql_arena *a, sql_expr *operand, sql_type type);
/* Recompute e->depth from its children (after editing them by hand). */
void sql_expr_update_depth(sql_expr *e);
/* A private copy of the list's array (items shared). 0 or -1. */
int sql_expr_list_copy(sql_arena *a, const sql_expr_list *from,
		       sql_expr_list *to);
int sql_expr_list_push(sql_arena *a, sql_expr_list *l, sql_expr *e);

/* ---- facts about the subset ------------------------------------------------ */

/* True for count, sum, avg, min, max, string_agg, bool_and, bool_or, every. */
bool sql_func_is_aggregate(const char *name);
/* PostgreSQL's name for a type (int8, int4, ..., "varchar", "bpchar"). */
const char *sql_type_pg_name(sql_type_kind kind);
/* PostgreSQL's type OID (20 int8, 23 int4, 25 text, 1700 numeric, ...). */
uint32_t sql_type_pg_oid(sql_type_kind kind);
/* The column name PostgreSQL gives an unaliased select-list expression
 * (FigureColname): "count", "x", "?column?", "case", "int4", ... */
const char *sql_expr_colname(const sql_expr *e);
/* Output column name of a select item: the alias, else sql_expr_colname. */
const char *sql_select_item_name(const sql_select_item *it);
/* "SELECT", "INSERT", "CREATE TABLE", ..., "START TRANSACTION", "COMMIT",
 * "RESET": the word(s) PostgreSQL puts in CommandComplete. */
const char *sql_stmt_tag(const sql_stmt *s);

/* ---- front-end internals (sql_lex.c, sql_ast.c, sql_grammar.y) ----------- */

typedef struct {
	int code;              /* TK_* from sql_grammar.h; 0 = end of input */
	uint32_t off, len;     /* raw bytes text[off, off + len) */
	const char *val;       /* identifier (folded), keyword (lower case),
				* string (decoded), number (as written) */
	size_t vlen;
	int64_t ival;          /* INTEGER value, PARAM number */
	bool word;             /* an unquoted keyword or identifier */
} sql__token;

typedef struct {
	const char *text;
	size_t len;
	size_t pos;            /* next byte to scan */
	sql_arena *arena;
} sql__lexer;

/* Scan the next token.  Returns 0 (tok->code == 0 at end of input), or -1
 * with err filled on a lexical error (unterminated string, bad escape). */
int sql__lex(sql__lexer *lx, sql__token *tok, sql_error *err);

/* Offset of the first byte of s[0..n) that is not valid UTF-8 or is NUL,
 * or n when the whole string is valid. */
size_t sql__utf8_check(const char *s, size_t n);

/* Set err (if not yet set) with a printf-style message. */
void sql__error_set(sql_error *err, const char *sqlstate, int position,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Character position (1-based) of byte offset off in text[0..len). */
int sql__char_position(const char *text, size_t len, size_t off);

/* Arena behaviour during a parse: on allocation failure, longjmp(*jb, 1)
 * instead of returning NULL (NULL jb restores the default). */
void sql__arena_set_oom_jump(sql_arena *a, jmp_buf *jb);

/* Type from its PostgreSQL spelling: words[0..nwords) lower case ("double",
 * "precision"), mods[0..nmods) the (n[, m]) modifiers.  Returns 0, or -1
 * with err set (42704 unknown type, 0A000 unsupported type, 22023 bad
 * modifier) at position pos. */
int sql__type_resolve(const char *const *words, int nwords, const int64_t *mods,
		      int nmods, sql_type *out, sql_error *err, int pos);

#endif
