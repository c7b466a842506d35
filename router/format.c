/*
 * format.c — values between PostgreSQL's text format and the wire's typed
 * values: plan_bind_text() (client parameter text -> value of the
 * parameter's type) and plan_format_text() (result value -> DataRow text).
 *
 * Output, per column type:
 *   bool        t / f (SQLite keeps 1 / 0)
 *   bytea       \x and lowercase hex
 *   float4/8    shortest text that reads back to the same value (the
 *               fewest digits 1..17 — 1..9 for float4 — that round-trip),
 *               written like PostgreSQL: exponent form when the decimal
 *               exponent is < -4 or >= 15 (float4: 6), "1e+20", "1.5e-05";
 *               Infinity, -Infinity, NaN
 *   numeric     text as stored; an integer in decimal; a double (SQLite
 *               has no decimal type) in its shortest round-trip digits,
 *               never in exponent form
 *   integers    decimal
 *   others      text as stored (timestamps are stored as text)
 * Input: integers strictly (22P02 bad syntax, 22003 out of range), booleans
 * as PostgreSQL's boolin, floats via strtod (no hex), numeric checked and
 * kept as text, bytea in hex (\x...) or escape format, anything else as is.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plan_int.h"

/* ---- output -------------------------------------------------------------------- */

/* Shortest round-trip digits of a finite non-zero v: digits[] (no sign,
 * no dot, no trailing zeros) and the decimal exponent of the first digit. */
static void shortest(double v, bool single, char *digits, int *exp10)
{
	char buf[40];
	int maxp = single ? 9 : 17;
	for (int prec = 1; prec <= maxp; prec++) {
		snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
		double back = strtod(buf, NULL);
		if (single ? (float)back == (float)v : back == v)
			break;
	}
	/* buf is [-]d[.ddd]e[+-]xx */
	const char *p = buf + (buf[0] == '-');
	size_t n = 0;
	for (; *p && *p != 'e'; p++)
		if (isdigit((unsigned char)*p))
			digits[n++] = *p;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = 0;
	*exp10 = *p == 'e' ? atoi(p + 1) : 0;
}

static int format_double(sql_buf *out, double v, bool single, bool never_exp)
{
	if (isnan(v))
		return sql_buf_puts(out, "NaN");
	if (isinf(v))
		return sql_buf_puts(out, v < 0 ? "-Infinity" : "Infinity");
	if (v == 0)
		return sql_buf_puts(out, signbit(v) ? "-0" : "0");
	char d[24];
	int x;
	shortest(v, single, d, &x);
	size_t n = strlen(d);
	if (v < 0)
		sql_buf_append(out, "-", 1);
	if (!never_exp && (x < -4 || x >= (single ? 6 : 15))) {
		sql_buf_append(out, d, 1);
		if (n > 1) {
			sql_buf_append(out, ".", 1);
			sql_buf_append(out, d + 1, n - 1);
		}
		return sql_buf_printf(out, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
	}
	if (x < 0) {
		sql_buf_puts(out, "0.");
		for (int i = 0; i < -x - 1; i++)
			sql_buf_append(out, "0", 1);
		return sql_buf_append(out, d, n);
	}
	size_t ip = (size_t)x + 1; /* integer digits */
	if (n <= ip) {
		sql_buf_append(out, d, n);
		for (size_t i = n; i < ip; i++)
			sql_buf_append(out, "0", 1);
		return out->failed ? -1 : 0;
	}
	sql_buf_append(out, d, ip);
	sql_buf_append(out, ".", 1);
	return sql_buf_append(out, d + ip, n - ip);
}

static int format_hex(sql_buf *out, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	sql_buf_puts(out, "\\x");
	char chunk[128];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		chunk[k++] = hex[p[i] >> 4];
		chunk[k++] = hex[p[i] & 15];
		if (k == sizeof chunk) {
			sql_buf_append(out, chunk, k);
			k = 0;
		}
	}
	return sql_buf_append(out, chunk, k);
}

static int format_int(sql_buf *out, int64_t i)
{
	return sql_buf_printf(out, "%lld", (long long)i);
}

int plan_format_text(uint32_t type_oid, const wire_value *v, sql_buf *out)
{
	switch (v->type) {
	case WIRE_NULL:
		return 0;
	case WIRE_INT:
		if (type_oid == PLAN_OID_BOOL)
			return sql_buf_puts(out, v->i ? "t" : "f");
		if (type_oid == PLAN_OID_BYTEA) {
			char tmp[24];
			int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v->i);
			return format_hex(out, (const unsigned char *)tmp, (size_t)n);
		}
		return format_int(out, v->i);
	case WIRE_REAL:
		if (type_oid == PLAN_OID_BOOL)
			return sql_buf_puts(out, v->r != 0 ? "t" : "f");
		if (plan__oid_is_int(type_oid) && v->r == floor(v->r) && fabs(v->r) < 9.2e18)
			return format_int(out, (int64_t)v->r);
		return format_double(out, v->r, type_oid == PLAN_OID_FLOAT4,
				     type_oid == PLAN_OID_NUMERIC);
	case WIRE_TEXT:
		if (type_oid == PLAN_OID_BOOL) {
			int b = plan__parse_bool(v->p, v->len);
			if (b >= 0)
				return sql_buf_puts(out, b ? "t" : "f");
		}
		if (type_oid == PLAN_OID_BYTEA)
			return format_hex(out, v->p, v->len);
		return sql_buf_append(out, v->p, v->len);
	case WIRE_BLOB:
		if (type_oid == PLAN_OID_BYTEA || !plan__oid_is_text(type_oid))
			return format_hex(out, v->p, v->len);
		return sql_buf_append(out, v->p, v->len);
	}
	return 0;
}

/* ---- input ---------------------------------------------------------------------- */

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* bytea input: \x hex (pairs, blanks allowed between them) or the escape
 * format (\\ and \ooo; other bytes as they are).  Length or -1. */
static long decode_bytea(const char *s, size_t n, unsigned char *out)
{
	size_t k = 0;
	if (n >= 2 && s[0] == '\\' && (s[1] == 'x' || s[1] == 'X')) {
		for (size_t i = 2; i < n;) {
			if (isspace((unsigned char)s[i])) {
				i++;
				continue;
			}
			int hi = hexval((unsigned char)s[i]);
			int lo = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			out[k++] = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		return (long)k;
	}
	for (size_t i = 0; i < n;) {
		if (s[i] != '\\') {
			out[k++] = (unsigned char)s[i++];
		} else if (i + 1 < n && s[i + 1] == '\\') {
			out[k++] = '\\';
			i += 2;
		} else if (i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
			   s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[k++] = (unsigned char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
						   (s[i + 3] - '0'));
			i += 4;
		} else {
			return -1;
		}
	}
	return (long)k;
}

static int bad_input(sql_error *err, uint32_t oid, const char *text, size_t len)
{
	sql_error_set(err, "22P02", 0, "invalid input syntax for type %s: \"%.*s\"",
		      plan__oid_name(oid), (int)(len > 100 ? 100 : len), text);
	return -1;
}

int plan_bind_text(const router_plan *p, size_t i, const char *text, size_t len,
		   sql_arena *arena, wire_value *out, sql_error *err)
{
	memset(out, 0, sizeof *out);
	if (text == NULL) {
		out->type = WIRE_NULL;
		return 0;
	}
	uint32_t oid = plan_param_type(p, i);
	if (len > UINT32_MAX - 1) {
		sql_error_set(err, "54000", 0, "parameter $%zu is too long", i + 1);
		return -1;
	}
	if (plan__oid_is_int(oid)) {
		int64_t v;
		int rc = plan__parse_int(text, len, oid, &v);
		if (rc == -1)
			return bad_input(err, oid, text, len);
		if (rc == -2) {
			sql_error_set(err, "22003", 0, "value \"%.*s\" is out of range for type %s",
				      (int)(len > 100 ? 100 : len), text, plan__oid_name(oid));
			return -1;
		}
		out->type = WIRE_INT;
		out->i = v;
		return 0;
	}
	if (oid == PLAN_OID_BOOL) {
		int b = plan__parse_bool(text, len);
		if (b < 0)
			return bad_input(err, oid, text, len);
		out->type = WIRE_INT;
		out->i = b;
		return 0;
	}
	if (plan__oid_is_float(oid)) {
		char buf[128];
		const char *s = text;
		size_t n = len;
		while (n > 0 && isspace((unsigned char)*s))
			s++, n--;
		while (n > 0 && isspace((unsigned char)s[n - 1]))
			n--;
		if (n == 0 || n >= sizeof buf || memchr(s, 'x', n) || memchr(s, 'X', n))
			return bad_input(err, oid, text, len);
		memcpy(buf, s, n);
		buf[n] = 0;
		char *end;
		errno = 0;
		double d = strtod(buf, &end);
		if (*end != 0)
			return bad_input(err, oid, text, len);
		/* Overflow, or underflow to zero, is an error; a denormal
		 * result is kept, as PostgreSQL does. */
		bool range = (errno == ERANGE && (isinf(d) || d == 0)) ||
			     (oid == PLAN_OID_FLOAT4 && isfinite(d) && fabs(d) > FLT_MAX);
		if (range) {
			sql_error_set(err, "22003", 0, "\"%s\" is out of range for type %s", buf,
				      plan__oid_name(oid));
			return -1;
		}
		out->type = WIRE_REAL;
		out->r = d;
		return 0;
	}
	if (oid == PLAN_OID_NUMERIC) {
		const char *s = text;
		size_t n = len;
		while (n > 0 && isspace((unsigned char)*s))
			s++, n--;
		while (n > 0 && isspace((unsigned char)s[n - 1]))
			n--;
		if (!plan__decimal_syntax(s, n) && !(n == 3 && strncasecmp(s, "nan", 3) == 0))
			return bad_input(err, oid, text, len);
		text = s;
		len = n;
	}
	if (oid == PLAN_OID_BYTEA) {
		unsigned char *b = sql_arena_alloc(arena, len + 1);
		if (b == NULL)
			goto oom;
		long n = decode_bytea(text, len, b);
		if (n < 0)
			return bad_input(err, oid, text, len);
		b[n] = 0;
		out->type = WIRE_BLOB;
		out->p = b;
		out->len = (uint32_t)n;
		return 0;
	}
	char *copy = sql_arena_strndup(arena, text, len);
	if (copy == NULL)
		goto oom;
	out->type = WIRE_TEXT;
	out->p = copy;
	out->len = (uint32_t)len;
	return 0;
oom:
	sql_error_set(err, "53200", 0, "out of memory");
	return -1;
}
