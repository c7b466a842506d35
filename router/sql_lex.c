/*
 * sql_lex.c — the tokenizer for shardlite's PostgreSQL-dialect SQL.
 *
 * It follows PostgreSQL's scanner (scan.l) for the parts of the language
 * the subset uses:
 *
 *   blanks          space \t \n \r \f \v
 *   comments        -- to end of line; nested block comments
 *   identifiers     [A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*, ASCII letters
 *                   folded to lower case; keywords looked up after folding
 *   quoted idents   "..." with "" for a quote; case kept; "" is an error
 *   strings         '...' with '' for a quote; E'...' with backslash
 *                   escapes; $$...$$ and $tag$...$tag$; two string pieces
 *                   separated by blanks holding a newline are one string
 *   numbers         digits -> INTEGER (NUMERIC when beyond int64),
 *                   digits.digits, .digits, exponents -> NUMERIC (as text)
 *   parameters      $digits -> PARAM
 *   operators       :: <> != <= >= || and + - * / % < > = ( ) , ; . [ ]
 *                   any other run of operator characters -> ILLEGAL
 *
 * Invariants: the input was checked to be valid UTF-8 without NUL bytes
 * before scanning (sql_parse does it), so every token boundary is a
 * character boundary and every decoded identifier is valid UTF-8.  Decoded
 * strings are checked again here, because escapes can produce any byte.
 * Token values are allocated in the lexer's arena; keywords point at the
 * static keyword table.  Names longer than SQL_NAME_MAX bytes are cut at a
 * character boundary, as PostgreSQL does.
 */
#include <stdlib.h>
#include <string.h>

#include "router/sql.h"
#include "router/sql_grammar.h"

typedef struct {
	const char *name; /* lower case */
	int code;
} keyword;

/* Sorted by name (bsearch): keep it sorted. */
static const keyword keywords[] = {
	{"abort", TK_ABORT},
	{"add", TK_ADD},
	{"all", TK_ALL},
	{"alter", TK_ALTER},
	{"analyze", TK_ANALYZE},
	{"and", TK_AND},
	{"any", TK_ANY},
	{"as", TK_AS},
	{"asc", TK_ASC},
	{"at", TK_AT},
	{"begin", TK_BEGIN},
	{"between", TK_BETWEEN},
	{"bucket", TK_BUCKET},
	{"by", TK_BY},
	{"cancel", TK_CANCEL},
	{"case", TK_CASE},
	{"cast", TK_CAST},
	{"check", TK_CHECK},
	{"cluster", TK_CLUSTER},
	{"collate", TK_COLLATE},
	{"commit", TK_COMMIT},
	{"committed", TK_COMMITTED},
	{"compensate", TK_COMPENSATE},
	{"constraint", TK_CONSTRAINT},
	{"create", TK_CREATE},
	{"current_timestamp", TK_CURRENT_TIMESTAMP},
	{"default", TK_DEFAULT},
	{"deferrable", TK_DEFERRABLE},
	{"delete", TK_DELETE},
	{"desc", TK_DESC},
	{"distinct", TK_DISTINCT},
	{"drop", TK_DROP},
	{"else", TK_ELSE},
	{"end", TK_END},
	{"escape", TK_ESCAPE},
	{"except", TK_EXCEPT},
	{"exists", TK_EXISTS},
	{"explain", TK_EXPLAIN},
	{"false", TK_FALSE},
	{"fetch", TK_FETCH},
	{"first", TK_FIRST},
	{"for", TK_FOR},
	{"foreign", TK_FOREIGN},
	{"from", TK_FROM},
	{"group", TK_GROUP},
	{"hash", TK_HASH},
	{"having", TK_HAVING},
	{"if", TK_IF},
	{"ilike", TK_ILIKE},
	{"in", TK_IN},
	{"index", TK_INDEX},
	{"insert", TK_INSERT},
	{"intersect", TK_INTERSECT},
	{"into", TK_INTO},
	{"is", TK_IS},
	{"isolation", TK_ISOLATION},
	{"join", TK_JOIN},
	{"key", TK_KEY},
	{"last", TK_LAST},
	{"lateral", TK_LATERAL},
	{"level", TK_LEVEL},
	{"like", TK_LIKE},
	{"limit", TK_LIMIT},
	{"local", TK_LOCAL},
	{"move", TK_MOVE},
	{"not", TK_NOT},
	{"null", TK_NULL},
	{"nulls", TK_NULLS},
	{"offset", TK_OFFSET},
	{"on", TK_ON},
	{"only", TK_ONLY},
	{"or", TK_OR},
	{"order", TK_ORDER},
	{"outer", TK_OUTER},
	{"partition", TK_PARTITION},
	{"precision", TK_PRECISION},
	{"prepared", TK_PREPARED},
	{"primary", TK_PRIMARY},
	{"range", TK_RANGE},
	{"read", TK_READ},
	{"rebalance", TK_REBALANCE},
	{"references", TK_REFERENCES},
	{"remove", TK_REMOVE},
	{"repeatable", TK_REPEATABLE},
	{"reset", TK_RESET},
	{"resolve", TK_RESOLVE},
	{"returning", TK_RETURNING},
	{"rollback", TK_ROLLBACK},
	{"saga", TK_SAGA},
	{"select", TK_SELECT},
	{"serializable", TK_SERIALIZABLE},
	{"session", TK_SESSION},
	{"set", TK_SET},
	{"shard", TK_SHARD},
	{"share", TK_SHARE},
	{"show", TK_SHOW},
	{"some", TK_SOME},
	{"split", TK_SPLIT},
	{"start", TK_START},
	{"table", TK_TABLE},
	{"then", TK_THEN},
	{"time", TK_TIME},
	{"to", TK_TO},
	{"transaction", TK_TRANSACTION},
	{"true", TK_TRUE},
	{"uncommitted", TK_UNCOMMITTED},
	{"union", TK_UNION},
	{"unique", TK_UNIQUE},
	{"unknown", TK_UNKNOWN},
	{"update", TK_UPDATE},
	{"using", TK_USING},
	{"values", TK_VALUES},
	{"varying", TK_VARYING},
	{"verbose", TK_VERBOSE},
	{"when", TK_WHEN},
	{"where", TK_WHERE},
	{"window", TK_WINDOW},
	{"with", TK_WITH},
	{"without", TK_WITHOUT},
	{"work", TK_WORK},
	{"write", TK_WRITE},
	{"zone", TK_ZONE},
};

#define KEYWORD_MAXLEN 17 /* "current_timestamp" */

static int keyword_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const keyword *)elem)->name);
}

static const keyword *keyword_find(const char *lower)
{
	return bsearch(lower, keywords, sizeof keywords / sizeof keywords[0],
		       sizeof keywords[0], keyword_cmp);
}

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

static bool is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c >= 0x80;
}

static bool is_ident_cont(unsigned char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* PostgreSQL's operator characters. */
static bool is_op_char(unsigned char c)
{
	return c != 0 && strchr("+-*/<>=~!@#%^&|`?", c) != NULL;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Bytes in the UTF-8 sequence starting with c (input is valid UTF-8). */
static size_t utf8_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c < 0xE0)
		return 2;
	if (c < 0xF0)
		return 3;
	return 4;
}

/* Length of the longest valid UTF-8 prefix of s[0..n) no longer than max. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	size_t i = 0;
	while (i < n) {
		size_t l = utf8_len((unsigned char)s[i]);
		if (i + l > max || i + l > n)
			break;
		i += l;
	}
	return i;
}

/* Error "<what> at or near "<text from off to the end, shortened>"". */
static int lex_error(sql__lexer *lx, sql_error *err, const char *sqlstate,
		     size_t off, const char *what)
{
	size_t n = utf8_cut(lx->text + off, lx->len - off, 64);
	sql__error_set(err, sqlstate,
		       sql__char_position(lx->text, lx->len, off),
		       "%s at or near \"%.*s\"", what, (int)n, lx->text + off);
	return -1;
}

/* Growable byte buffer in the arena for decoding strings. */
typedef struct {
	char *p;
	size_t n, cap;
	sql_arena *a;
} dbuf;

static void dbuf_init(dbuf *b, sql_arena *a, size_t hint)
{
	b->a = a;
	b->n = 0;
	b->cap = hint + 1;
	b->p = sql_arena_alloc(a, b->cap); /* longjmps on failure in a parse */
}

static int dbuf_put(dbuf *b, const char *s, size_t n)
{
	if (b->p == NULL)
		return -1;
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->n + n + 1) * 2;
		char *p = sql_arena_alloc(b->a, cap);
		if (p == NULL)
			return -1;
		memcpy(p, b->p, b->n);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
	return 0;
}

static int dbuf_putc(dbuf *b, unsigned char c)
{
	char ch = (char)c;
	return dbuf_put(b, &ch, 1);
}

static int put_utf8(dbuf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return dbuf_put(b, (const char *)u, n);
}

/* Offset of the first invalid byte of s[0..n) as UTF-8 without NUL, or n. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t l;
		uint32_t cp, min;
		if (c == 0)
			return i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			l = 2; cp = c & 0x1F; min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			l = 3; cp = c & 0x0F; min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			l = 4; cp = c & 0x07; min = 0x10000;
		} else {
			return i;
		}
		if (i + l > n)
			return i;
		for (size_t k = 1; k < l; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += l;
	}
	return n;
}

/* After a closing quote at *p: if blanks holding a newline and another
 * quote follow, PostgreSQL continues the same string.  Returns true and
 * moves *p past the new opening quote. */
static bool string_continues(const sql__lexer *lx, size_t *p)
{
	size_t i = *p;
	bool newline = false;
	while (i < lx->len && is_blank((unsigned char)lx->text[i])) {
		if (lx->text[i] == '\n' || lx->text[i] == '\r')
			newline = true;
		i++;
	}
	if (newline && i < lx->len && lx->text[i] == '\'') {
		*p = i + 1;
		return true;
	}
	return false;
}

/* One backslash escape of an E'' string at text[*p] (just after the
 * backslash).  Returns 0, or -1 with err set. */
static int lex_escape(sql__lexer *lx, size_t *p, dbuf *b, sql_error *err)
{
	const unsigned char *t = (const unsigned char *)lx->text;
	size_t i = *p, start = i - 1;
	unsigned char c = t[i];
	uint32_t v = 0;
	int k;

	switch (c) {
	case 'b': *p = i + 1; return dbuf_putc(b, '\b');
	case 'f': *p = i + 1; return dbuf_putc(b, '\f');
	case 'n': *p = i + 1; return dbuf_putc(b, '\n');
	case 'r': *p = i + 1; return dbuf_putc(b, '\r');
	case 't': *p = i + 1; return dbuf_putc(b, '\t');
	case 'x':
		if (i + 1 < lx->len && hexval(t[i + 1]) >= 0) {
			i++;
			for (k = 0; k < 2 && i < lx->len && hexval(t[i]) >= 0; k++)
				v = v * 16 + (uint32_t)hexval(t[i++]);
			*p = i;
			return dbuf_putc(b, (unsigned char)v);
		}
		break;
	case 'u':
	case 'U': {
		int nd = c == 'u' ? 4 : 8;
		i++;
		for (k = 0; k < nd; k++, i++) {
			if (i >= lx->len || hexval(t[i]) < 0)
				return lex_error(lx, err, "22025", start,
						 "invalid Unicode escape");
			v = v * 16 + (uint32_t)hexval(t[i]);
		}
		if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
			return lex_error(lx, err, "22025", start,
					 "invalid Unicode escape value");
		*p = i;
		return put_utf8(b, v);
	}
	default:
		if (c >= '0' && c <= '7') {
			for (k = 0; k < 3 && i < lx->len && t[i] >= '0' && t[i] <= '7'; k++)
				v = v * 8 + (uint32_t)(t[i++] - '0');
			*p = i;
			return dbuf_putc(b, (unsigned char)v);
		}
		break;
	}
	/* Any other character stands for itself (\\, \', \"). */
	{
		size_t l = utf8_len(c);
		*p = i + l;
		return dbuf_put(b, lx->text + i, l);
	}
}

/* A '...' or E'...' string; text[off] is the opening quote (after E). */
static int lex_string(sql__lexer *lx, sql__token *tok, size_t start, size_t off,
		      bool escapes, sql_error *err)
{
	size_t i = off + 1;
	dbuf b;
	dbuf_init(&b, lx->arena, 16);
	for (;;) {
		if (i >= lx->len)
			return lex_error(lx, err, "42601", start,
					 "unterminated quoted string");
		char c = lx->text[i];
		if (c == '\'') {
			if (i + 1 < lx->len && lx->text[i + 1] == '\'') {
				dbuf_putc(&b, '\'');
				i += 2;
				continue;
			}
			i++;
			if (string_continues(lx, &i))
				continue;
			break;
		}
		if (c == '\\' && escapes) {
			i++;
			if (i >= lx->len)
				return lex_error(lx, err, "42601", start,
						 "unterminated quoted string");
			if (lex_escape(lx, &i, &b, err) < 0)
				return -1;
			continue;
		}
		size_t run = i;
		while (run < lx->len && lx->text[run] != '\'' &&
		       !(escapes && lx->text[run] == '\\'))
			run++;
		dbuf_put(&b, lx->text + i, run - i);
		i = run;
	}
	if (b.p == NULL)
		return -1;
	if (escapes) {
		size_t bad = utf8_invalid_at((const unsigned char *)b.p, b.n);
		if (bad < b.n) {
			sql__error_set(err, "22021",
				       sql__char_position(lx->text, lx->len, start),
				       "invalid byte sequence for encoding \"UTF8\": 0x%02x",
				       (unsigned char)b.p[bad]);
			return -1;
		}
	}
	tok->code = TK_STRING;
	tok->val = b.p;
	tok->vlen = b.n;
	lx->pos = i;
	return 0;
}

/* $tag$ ... $tag$ starting at text[off] == '$'.  Returns 1 when it was a
 * dollar quote (token set), 0 when text[off] does not start one, -1 error. */
static int lex_dollar(sql__lexer *lx, sql__token *tok, size_t off,
		      sql_error *err)
{
	size_t i = off + 1;
	const char *t = lx->text;
	if (i < lx->len && is_ident_start((unsigned char)t[i])) {
		while (i < lx->len && is_ident_cont((unsigned char)t[i]) &&
		       t[i] != '$')
			i++;
	}
	if (i >= lx->len || t[i] != '$')
		return 0;
	size_t taglen = i + 1 - off; /* "$tag$" */
	size_t body = i + 1;
	for (size_t j = body; j + taglen <= lx->len; j++) {
		if (t[j] == '$' && memcmp(t + j, t + off, taglen) == 0) {
			tok->code = TK_STRING;
			tok->val = sql_arena_strndup(lx->arena, t + body, j - body);
			tok->vlen = j - body;
			lx->pos = j + taglen;
			return 1;
		}
	}
	lex_error(lx, err, "42601", off, "unterminated dollar-quoted string");
	return -1;
}

/* Copy a name, cut to SQL_NAME_MAX bytes at a character boundary. */
static const char *name_copy(sql__lexer *lx, const char *s, size_t n,
			     size_t *outlen)
{
	n = utf8_cut(s, n, SQL_NAME_MAX);
	*outlen = n;
	return sql_arena_strndup(lx->arena, s, n);
}

static int lex_quoted_ident(sql__lexer *lx, sql__token *tok, size_t off,
			    sql_error *err)
{
	size_t i = off + 1;
	dbuf b;
	dbuf_init(&b, lx->arena, 16);
	for (;;) {
		if (i >= lx->len)
			return lex_error(lx, err, "42601", off,
					 "unterminated quoted identifier");
		if (lx->text[i] == '"') {
			if (i + 1 < lx->len && lx->text[i + 1] == '"') {
				dbuf_putc(&b, '"');
				i += 2;
				continue;
			}
			i++;
			break;
		}
		size_t run = i;
		while (run < lx->len && lx->text[run] != '"')
			run++;
		dbuf_put(&b, lx->text + i, run - i);
		i = run;
	}
	if (b.p == NULL)
		return -1;
	if (b.n == 0)
		return lex_error(lx, err, "42601", off,
				 "zero-length delimited identifier");
	tok->code = TK_ID;
	tok->val = name_copy(lx, b.p, b.n, &tok->vlen);
	lx->pos = i;
	return 0;
}

static void lex_word(sql__lexer *lx, sql__token *tok, size_t off)
{
	size_t i = off;
	char lower[KEYWORD_MAXLEN + 1];
	while (i < lx->len && is_ident_cont((unsigned char)lx->text[i]))
		i++;
	size_t n = i - off;
	lx->pos = i;
	tok->word = true;
	if (n <= KEYWORD_MAXLEN) {
		for (size_t k = 0; k < n; k++) {
			char c = lx->text[off + k];
			lower[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
		lower[n] = 0;
		const keyword *kw = keyword_find(lower);
		if (kw != NULL) {
			tok->code = kw->code;
			tok->val = kw->name;
			tok->vlen = n;
			return;
		}
	}
	char *v = (char *)name_copy(lx, lx->text + off, n, &tok->vlen);
	for (size_t k = 0; v != NULL && k < tok->vlen; k++)
		if (v[k] >= 'A' && v[k] <= 'Z')
			v[k] = (char)(v[k] + 32);
	tok->code = TK_ID;
	tok->val = v;
}

static void lex_number(sql__lexer *lx, sql__token *tok, size_t off)
{
	const char *t = lx->text;
	size_t i = off;
	bool integer = true;
	while (i < lx->len && is_digit((unsigned char)t[i]))
		i++;
	/* "1..2" is 1 followed by "..": PostgreSQL keeps the dots apart. */
	if (i < lx->len && t[i] == '.' && !(i + 1 < lx->len && t[i + 1] == '.')) {
		integer = false;
		i++;
		while (i < lx->len && is_digit((unsigned char)t[i]))
			i++;
	}
	if (i < lx->len && (t[i] == 'e' || t[i] == 'E')) {
		size_t j = i + 1;
		if (j < lx->len && (t[j] == '+' || t[j] == '-'))
			j++;
		if (j < lx->len && is_digit((unsigned char)t[j])) {
			integer = false;
			i = j;
			while (i < lx->len && is_digit((unsigned char)t[i]))
				i++;
		}
	}
	lx->pos = i;
	tok->val = sql_arena_strndup(lx->arena, t + off, i - off);
	tok->vlen = i - off;
	if (integer) {
		uint64_t v = 0;
		for (size_t k = off; k < i; k++) {
			unsigned d = (unsigned)(t[k] - '0');
			if (v > (UINT64_C(9223372036854775807) - d) / 10) {
				integer = false;
				break;
			}
			v = v * 10 + d;
		}
		if (integer) {
			tok->code = TK_INTEGER;
			tok->ival = (int64_t)v;
			return;
		}
	}
	tok->code = TK_NUMERIC;
}

/* Skip blanks and comments.  Returns 0, or -1 on an unterminated comment. */
static int skip_space(sql__lexer *lx, sql_error *err)
{
	const char *t = lx->text;
	while (lx->pos < lx->len) {
		unsigned char c = (unsigned char)t[lx->pos];
		if (is_blank(c)) {
			lx->pos++;
		} else if (c == '-' && lx->pos + 1 < lx->len && t[lx->pos + 1] == '-') {
			while (lx->pos < lx->len && t[lx->pos] != '\n' && t[lx->pos] != '\r')
				lx->pos++;
		} else if (c == '/' && lx->pos + 1 < lx->len && t[lx->pos + 1] == '*') {
			size_t start = lx->pos;
			int depth = 0;
			do {
				if (lx->pos + 1 >= lx->len)
					return lex_error(lx, err, "42601", start,
							 "unterminated /* comment");
				if (t[lx->pos] == '/' && t[lx->pos + 1] == '*') {
					depth++;
					lx->pos += 2;
				} else if (t[lx->pos] == '*' && t[lx->pos + 1] == '/') {
					depth--;
					lx->pos += 2;
				} else {
					lx->pos++;
				}
			} while (depth > 0);
		} else {
			break;
		}
	}
	return 0;
}

int sql__lex(sql__lexer *lx, sql__token *tok, sql_error *err)
{
	memset(tok, 0, sizeof *tok);
	if (skip_space(lx, err) < 0)
		return -1;
	size_t off = lx->pos;
	const char *t = lx->text;
	tok->off = (uint32_t)off;
	if (off >= lx->len) {
		tok->code = 0;
		return 0;
	}
	unsigned char c = (unsigned char)t[off];
	unsigned char n1 = off + 1 < lx->len ? (unsigned char)t[off + 1] : 0;
	int rc = 0;

	if ((c == 'e' || c == 'E') && n1 == '\'') {
		rc = lex_string(lx, tok, off, off + 1, true, err);
	} else if (is_ident_start(c)) {
		lex_word(lx, tok, off);
	} else if (is_digit(c) || (c == '.' && is_digit(n1))) {
		lex_number(lx, tok, off);
	} else if (c == '\'') {
		rc = lex_string(lx, tok, off, off, false, err);
	} else if (c == '"') {
		rc = lex_quoted_ident(lx, tok, off, err);
	} else if (c == '$' && is_digit(n1)) {
		size_t i = off + 1;
		int64_t v = 0;
		while (i < lx->len && is_digit((unsigned char)t[i])) {
			if (v <= 1000000)
				v = v * 10 + (t[i] - '0');
			i++;
		}
		tok->code = TK_PARAM;
		tok->ival = v;
		lx->pos = i;
	} else if (c == '$') {
		int r = lex_dollar(lx, tok, off, err);
		if (r < 0)
			return -1;
		if (r == 0) {
			tok->code = TK_ILLEGAL;
			lx->pos = off + 1;
		}
	} else {
		/* Punctuation and operators. */
		static const struct {
			char s[3];
			int code;
		} two[] = {
			{"::", TK_COLONCOLON}, {"<>", TK_NE}, {"!=", TK_NE},
			{"<=", TK_LE}, {">=", TK_GE}, {"||", TK_CONCAT},
		};
		static const struct {
			char c;
			int code;
		} one[] = {
			{'(', TK_LP}, {')', TK_RP}, {',', TK_COMMA}, {';', TK_SEMI},
			{'.', TK_DOT}, {'*', TK_STAR}, {'+', TK_PLUS},
			{'-', TK_MINUS}, {'/', TK_SLASH}, {'%', TK_PERCENT},
			{'<', TK_LT}, {'>', TK_GT}, {'=', TK_EQ},
			{'[', TK_LBRACKET}, {']', TK_RBRACKET},
		};
		size_t k;
		tok->code = 0;
		for (k = 0; k < sizeof two / sizeof two[0]; k++) {
			if (c == (unsigned char)two[k].s[0] &&
			    n1 == (unsigned char)two[k].s[1]) {
				tok->code = two[k].code;
				lx->pos = off + 2;
				break;
			}
		}
		for (k = 0; tok->code == 0 && k < sizeof one / sizeof one[0]; k++) {
			if (c == (unsigned char)one[k].c) {
				tok->code = one[k].code;
				lx->pos = off + 1;
			}
		}
		if (tok->code == 0) {
			size_t i = off;
			if (is_op_char(c)) {
				while (i < lx->len && is_op_char((unsigned char)t[i]))
					i++;
			} else {
				i += utf8_len(c);
			}
			tok->code = TK_ILLEGAL;
			lx->pos = i;
		}
	}
	if (rc < 0)
		return -1;
	tok->len = (uint32_t)(lx->pos - off);
	return 0;
}

size_t sql__utf8_check(const char *s, size_t n)
{
	return utf8_invalid_at((const unsigned char *)s, n);
}
