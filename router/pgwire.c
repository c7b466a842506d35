/*
 * pgwire.c — PostgreSQL frontend/backend protocol v3: frontend reader and
 * decoders, backend builders.  The contract is in pgwire.h.
 *
 * All integers on the wire are big-endian; Int16/Int32 are signed unless
 * noted; String is bytes up to and including a NUL.  "len" below is the
 * Int32 length word, which counts itself but not the type byte.
 *
 * Startup phase (no type byte):
 *
 *   offset  size  field
 *   0       4     len, 8 <= len <= PGW_MAX_STARTUP
 *   4       4     code
 *
 *   code = 80877103 SSLRequest, 80877104 GSSENCRequest: len == 8
 *   code = 80877102 CancelRequest: len == 16
 *     8     4     backend pid
 *     12    4     cancel key
 *   code = major<<16 | minor (3.0 = 196608) StartupMessage:
 *     8     ...   (String name, String value)*, then one NUL byte, which
 *                 must be the last byte of the packet
 *
 * Normal phase, frontend messages the router handles (offsets from the
 * start of the body, i.e. after type byte and length word):
 *
 *   'Q' Query      0  String  SQL text
 *   'P' Parse      0  String  statement name ("" = unnamed)
 *                     String  query
 *                     Int16   n parameter types (unsigned, 0..65535)
 *                     Int32*n parameter type OIDs (0 = unspecified)
 *   'B' Bind       0  String  portal name
 *                     String  statement name
 *                     Int16   f parameter format codes, f in {0, 1, n}
 *                     Int16*f format codes, each 0 (text) or 1 (binary)
 *                     Int16   n parameter values
 *                     n * (Int32 length, -1 = NULL; then length bytes)
 *                     Int16   r result format codes
 *                     Int16*r format codes, each 0 or 1
 *   'D' Describe   0  Byte1   'S' statement or 'P' portal
 *                  1  String  name
 *   'E' Execute    0  String  portal name
 *                     Int32   max rows (<= 0: no limit)
 *   'C' Close      0  Byte1   'S' or 'P'
 *                  1  String  name
 *   'S' Sync, 'H' Flush, 'X' Terminate: empty body
 *
 * Backend messages built here (type byte, then len, then):
 *
 *   'R' AuthenticationOk         Int32 0                      (len 8)
 *   'S' ParameterStatus          String name, String value
 *   'K' BackendKeyData           Int32 pid, Int32 key         (len 12)
 *   'Z' ReadyForQuery            Byte1 'I' | 'T' | 'E'        (len 5)
 *   'T' RowDescription           Int16 n, then per field: String name,
 *                                Int32 table OID, Int16 column, Int32
 *                                type OID, Int16 typlen, Int32 typmod,
 *                                Int16 format
 *   'D' DataRow                  Int16 n, then per column: Int32 length
 *                                (-1 = NULL), then length bytes
 *   'C' CommandComplete          String tag
 *   'I' EmptyQueryResponse       (len 4)
 *   'E' ErrorResponse,
 *   'N' NoticeResponse           (Byte1 field code, String value)*, then
 *                                a NUL; codes S V C M [D] [H] [P]
 *   '1' ParseComplete, '2' BindComplete, '3' CloseComplete, 'n' NoData,
 *   's' PortalSuspended          (len 4)
 *   't' ParameterDescription     Int16 n, Int32*n type OIDs
 *   'v' NegotiateProtocolVersion Int32 version, Int32 n, String*n options
 *   and the bare byte 'N' answering SSLRequest / GSSENCRequest.
 *
 * Invariants: a decoder reads only through a cursor whose every step checks
 * the bytes left first; a decoder succeeds only when the cursor ends
 * exactly at the end of the body.  The reader never looks past buf[len).
 */
#include "router/pgwire.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers larger than this are released when they empty, so a connection
 * that once moved a 16 MiB message does not keep 16 MiB for its lifetime. */
#define PGW_KEEP_BUFFER (64u * 1024u)

/* ---- errors ------------------------------------------------------------------ */

static void set_err(pgw_err *err, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(pgw_err *err, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	memcpy(err->sqlstate, sqlstate, 5);
	err->sqlstate[5] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
}

/* ---- big-endian helpers ------------------------------------------------------ */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32_at(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- message type names ------------------------------------------------------- */

const char *pgw_frontend_type_name(char type)
{
	switch (type) {
	case 'Q': return "Query";
	case 'P': return "Parse";
	case 'B': return "Bind";
	case 'D': return "Describe";
	case 'E': return "Execute";
	case 'C': return "Close";
	case 'S': return "Sync";
	case 'H': return "Flush";
	case 'X': return "Terminate";
	case 'd': return "CopyData";
	case 'c': return "CopyDone";
	case 'f': return "CopyFail";
	case 'F': return "FunctionCall";
	case 'p': return "PasswordMessage";
	default: return NULL;
	}
}

/* "'Q' (Query)", "'x'" or "0x01": a type byte as a user should see it. */
static const char *type_desc(char type, char *out, size_t outlen)
{
	const char *name = pgw_frontend_type_name(type);
	unsigned char c = (unsigned char)type;

	if (name != NULL)
		snprintf(out, outlen, "'%c' (%s)", type, name);
	else if (c >= 0x21 && c <= 0x7e)
		snprintf(out, outlen, "'%c'", type);
	else
		snprintf(out, outlen, "0x%02x", c);
	return out;
}

/* Messages whose body is at most a name and a few integers. */
static int is_small_type(char type)
{
	return type == 'D' || type == 'C' || type == 'E' || type == 'S' ||
	       type == 'H' || type == 'X';
}

/* ---- reader ---------------------------------------------------------------------- */

void pgw_reader_init(pgw_reader *r)
{
	memset(r, 0, sizeof *r);
	r->phase = PGW_PHASE_STARTUP;
}

void pgw_reader_free(pgw_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = r->off = 0;
}

void pgw_reader_set_phase(pgw_reader *r, pgw_phase phase)
{
	r->phase = phase;
}

size_t pgw_reader_buffered(const pgw_reader *r)
{
	return r->len - r->off;
}

static int reader_fail(pgw_reader *r, pgw_err *err)
{
	r->failed = 1;
	if (err != NULL)
		*err = r->err;
	return -1;
}

int pgw_reader_feed(pgw_reader *r, const void *data, size_t n)
{
	size_t need, cap;
	uint8_t *nb;

	if (r->failed)
		return 0;  /* the stream is dead; next() keeps reporting why */
	if (r->off > 0) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len == 0 && r->cap > PGW_KEEP_BUFFER) {
		/* Do not hold on to the memory of one large message forever. */
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
	if (n == 0)
		return 0;
	if (n > SIZE_MAX / 2 - r->len)
		goto oom;
	need = r->len + n;
	if (need > r->cap) {
		cap = r->cap ? r->cap : 4096;
		while (cap < need)
			cap *= 2;
		nb = realloc(r->buf, cap);
		if (nb == NULL)
			goto oom;
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	return 0;
oom:
	set_err(&r->err, PGW_ERRCODE_OUT_OF_MEMORY,
		"out of memory buffering %zu bytes from the client", n);
	r->failed = 1;
	return -1;
}

static int next_startup(pgw_reader *r, pgw_msg *m, pgw_err *err)
{
	const uint8_t *p;
	size_t avail = r->len - r->off;
	uint32_t len;

	if (avail < 4)
		return 0;
	p = r->buf + r->off;  /* buf is not NULL once bytes are held */
	len = get32(p);
	if ((int32_t)len < 8) {
		set_err(&r->err, PGW_ERRCODE_PROTOCOL_VIOLATION,
			"invalid length of startup packet: %d (minimum 8)", (int32_t)len);
		return reader_fail(r, err);
	}
	if (len > PGW_MAX_STARTUP) {
		set_err(&r->err, PGW_ERRCODE_PROGRAM_LIMIT_EXCEEDED,
			"startup packet length %u exceeds the limit of %u bytes",
			len, PGW_MAX_STARTUP);
		return reader_fail(r, err);
	}
	if (avail < len)
		return 0;
	m->type = 0;
	m->code = get32(p + 4);
	m->body = p + 4;
	m->len = len - 4;
	r->off += len;
	if (m->code != PGW_SSL_REQUEST_CODE && m->code != PGW_GSSENC_REQUEST_CODE)
		r->phase = PGW_PHASE_NORMAL;
	return 1;
}

static int next_normal(pgw_reader *r, pgw_msg *m, pgw_err *err)
{
	const uint8_t *p;
	size_t avail = r->len - r->off;
	uint32_t len, limit;
	char td[48];

	if (avail < 5)
		return 0;
	p = r->buf + r->off;  /* buf is not NULL once bytes are held */
	len = get32(p + 1);
	if ((int32_t)len < 4) {
		set_err(&r->err, PGW_ERRCODE_PROTOCOL_VIOLATION,
			"invalid message length %d for message type %s (minimum 4)",
			(int32_t)len, type_desc((char)p[0], td, sizeof td));
		return reader_fail(r, err);
	}
	limit = is_small_type((char)p[0]) ? PGW_MAX_SMALL_MESSAGE : PGW_MAX_MESSAGE;
	if (len > limit) {
		set_err(&r->err, PGW_ERRCODE_PROGRAM_LIMIT_EXCEEDED,
			"message type %s length %u exceeds the limit of %u bytes",
			type_desc((char)p[0], td, sizeof td), len, limit);
		return reader_fail(r, err);
	}
	if (avail - 1 < len)
		return 0;
	m->type = (char)p[0];
	m->code = 0;
	m->body = p + 5;
	m->len = len - 4;
	r->off += 1 + (size_t)len;
	return 1;
}

int pgw_reader_next(pgw_reader *r, pgw_msg *m, pgw_err *err)
{
	if (r->failed)
		return reader_fail(r, err);
	if (r->phase == PGW_PHASE_STARTUP)
		return next_startup(r, m, err);
	return next_normal(r, m, err);
}

/* ---- decoding cursor ------------------------------------------------------------ */

typedef struct {
	const uint8_t *p;
	const uint8_t *end;
	const char *msg;  /* message name for errors */
	pgw_err *err;
} cursor;

static size_t cur_left(const cursor *c)
{
	return (size_t)(c->end - c->p);
}

static int cur_short(cursor *c, const char *field, size_t need)
{
	set_err(c->err, PGW_ERRCODE_PROTOCOL_VIOLATION,
		"%s message is truncated: %s needs %zu bytes, %zu left",
		c->msg, field, need, cur_left(c));
	return -1;
}

static int cur_u8(cursor *c, const char *field, uint8_t *v)
{
	if (cur_left(c) < 1)
		return cur_short(c, field, 1);
	*v = *c->p++;
	return 0;
}

static int cur_u16(cursor *c, const char *field, uint16_t *v)
{
	if (cur_left(c) < 2)
		return cur_short(c, field, 2);
	*v = get16(c->p);
	c->p += 2;
	return 0;
}

static int cur_u32(cursor *c, const char *field, uint32_t *v)
{
	if (cur_left(c) < 4)
		return cur_short(c, field, 4);
	*v = get32(c->p);
	c->p += 4;
	return 0;
}

/* A NUL-terminated string lying wholly inside the body. */
static int cur_str(cursor *c, const char *field, const char **s, size_t *slen)
{
	const uint8_t *nul = memchr(c->p, 0, cur_left(c));

	if (nul == NULL) {
		set_err(c->err, PGW_ERRCODE_PROTOCOL_VIOLATION,
			"%s message is malformed: %s is not NUL-terminated within the message",
			c->msg, field);
		return -1;
	}
	*s = (const char *)c->p;
	if (slen != NULL)
		*slen = (size_t)(nul - c->p);
	c->p = nul + 1;
	return 0;
}

/* n Int16 codes, each 0 or 1; *at points at them. */
static int cur_formats(cursor *c, const char *field, uint16_t n, const uint8_t **at)
{
	uint16_t i;
	uint16_t f;

	if (cur_left(c) < 2u * n)
		return cur_short(c, field, 2u * n);
	*at = c->p;
	for (i = 0; i < n; i++) {
		f = get16(c->p + 2u * i);
		if (f != 0 && f != 1) {
			set_err(c->err, PGW_ERRCODE_INVALID_PARAMETER_VALUE,
				"%s message: unsupported format code %d in %s (entry %u)",
				c->msg, (int16_t)f, field, (unsigned)i + 1);
			return -1;
		}
	}
	c->p += 2u * n;
	return 0;
}

static int cur_end(cursor *c)
{
	if (c->p != c->end) {
		set_err(c->err, PGW_ERRCODE_PROTOCOL_VIOLATION,
			"%s message is malformed: %zu unexpected trailing byte%s",
			c->msg, cur_left(c), cur_left(c) == 1 ? "" : "s");
		return -1;
	}
	return 0;
}

static void cur_init(cursor *c, const uint8_t *body, size_t len, const char *msg,
		     pgw_err *err)
{
	static const uint8_t none[1];

	if (body == NULL) {  /* an empty body may come as NULL; never do NULL + 0 */
		body = none;
		len = 0;
	}
	c->p = body;
	c->end = body + len;
	c->msg = msg;
	c->err = err;
}

/* ---- decoders --------------------------------------------------------------------- */

int pgw_decode_startup(const uint8_t *body, size_t len, pgw_startup *out, pgw_err *err)
{
	cursor c;
	const char *name, *value;
	size_t nlen;

	cur_init(&c, body, len, "StartupMessage", err);
	memset(out, 0, sizeof *out);
	if (cur_u32(&c, "protocol version", &out->version) < 0)
		return -1;
	if (PGW_PROTOCOL_MAJOR(out->version) != 3) {
		set_err(err, PGW_ERRCODE_FEATURE_NOT_SUPPORTED,
			"unsupported frontend protocol %u.%u: server supports 3.0",
			PGW_PROTOCOL_MAJOR(out->version), PGW_PROTOCOL_MINOR(out->version));
		return -1;
	}
	for (;;) {
		if (cur_str(&c, "parameter name", &name, &nlen) < 0)
			return -1;
		if (nlen == 0)
			break;  /* the terminator */
		if (cur_str(&c, "parameter value", &value, NULL) < 0)
			return -1;
		if (out->nparams == PGW_MAX_STARTUP_PARAMS) {
			set_err(err, PGW_ERRCODE_PROGRAM_LIMIT_EXCEEDED,
				"StartupMessage has more than %d parameters",
				PGW_MAX_STARTUP_PARAMS);
			return -1;
		}
		out->params[out->nparams].name = name;
		out->params[out->nparams].value = value;
		out->nparams++;
		if (strcmp(name, "user") == 0)
			out->user = value;
		else if (strcmp(name, "database") == 0)
			out->database = value;
		else if (strcmp(name, "options") == 0)
			out->options = value;
		else if (strcmp(name, "application_name") == 0)
			out->application_name = value;
		else if (strcmp(name, "client_encoding") == 0)
			out->client_encoding = value;
	}
	if (cur_end(&c) < 0)
		return -1;
	if (out->user == NULL || out->user[0] == '\0') {
		set_err(err, PGW_ERRCODE_INVALID_AUTHORIZATION,
			"no user name specified in startup packet");
		return -1;
	}
	return 0;
}

int pgw_decode_cancel(const uint8_t *body, size_t len, pgw_cancel *out, pgw_err *err)
{
	if (len != 12 || get32(body) != PGW_CANCEL_REQUEST_CODE) {
		set_err(err, PGW_ERRCODE_PROTOCOL_VIOLATION,
			"CancelRequest is malformed: length %zu, expected 16", len + 4);
		return -1;
	}
	out->pid = get32(body + 4);
	out->key = get32(body + 8);
	return 0;
}

int pgw_decode_query(const uint8_t *body, size_t len, pgw_query *out, pgw_err *err)
{
	cursor c;

	cur_init(&c, body, len, "Query", err);
	if (cur_str(&c, "query string", &out->sql, &out->len) < 0)
		return -1;
	return cur_end(&c);
}

int pgw_decode_parse(const uint8_t *body, size_t len, pgw_parse *out, pgw_err *err)
{
	cursor c;

	cur_init(&c, body, len, "Parse", err);
	if (cur_str(&c, "statement name", &out->name, NULL) < 0 ||
	    cur_str(&c, "query string", &out->query, &out->query_len) < 0 ||
	    cur_u16(&c, "parameter type count", &out->nparams) < 0)
		return -1;
	if (cur_left(&c) < 4u * out->nparams)
		return cur_short(&c, "parameter types", 4u * out->nparams);
	out->param_types = c.p;
	c.p += 4u * out->nparams;
	return cur_end(&c);
}

uint32_t pgw_parse_param_type(const pgw_parse *p, uint16_t i)
{
	assert(i < p->nparams);
	return get32(p->param_types + 4u * i);
}

int pgw_decode_bind(const uint8_t *body, size_t len, pgw_bind *out, pgw_err *err)
{
	cursor c;
	uint16_t i;
	uint32_t vlen;

	cur_init(&c, body, len, "Bind", err);
	if (cur_str(&c, "portal name", &out->portal, NULL) < 0 ||
	    cur_str(&c, "statement name", &out->statement, NULL) < 0 ||
	    cur_u16(&c, "parameter format count", &out->nformats) < 0 ||
	    cur_formats(&c, "parameter format codes", out->nformats, &out->formats) < 0 ||
	    cur_u16(&c, "parameter count", &out->nparams) < 0)
		return -1;
	if (out->nformats > 1 && out->nformats != out->nparams) {
		set_err(err, PGW_ERRCODE_PROTOCOL_VIOLATION,
			"Bind message has %u parameter formats but %u parameters",
			out->nformats, out->nparams);
		return -1;
	}
	out->values = c.p;
	for (i = 0; i < out->nparams; i++) {
		if (cur_u32(&c, "parameter length", &vlen) < 0)
			return -1;
		if ((int32_t)vlen == -1)
			continue;
		if ((int32_t)vlen < -1) {
			set_err(err, PGW_ERRCODE_PROTOCOL_VIOLATION,
				"Bind message: parameter %u has invalid length %d",
				(unsigned)i + 1, (int32_t)vlen);
			return -1;
		}
		if (vlen > cur_left(&c)) {
			set_err(err, PGW_ERRCODE_PROTOCOL_VIOLATION,
				"Bind message is truncated: parameter %u length %u, %zu bytes left",
				(unsigned)i + 1, vlen, cur_left(&c));
			return -1;
		}
		c.p += vlen;
	}
	if (cur_u16(&c, "result format count", &out->nresult_formats) < 0 ||
	    cur_formats(&c, "result format codes", out->nresult_formats,
			&out->result_formats) < 0)
		return -1;
	return cur_end(&c);
}

int pgw_bind_param_format(const pgw_bind *b, uint16_t i)
{
	assert(i < b->nparams);
	if (b->nformats == 0)
		return 0;
	if (b->nformats == 1)
		return get16(b->formats);
	return get16(b->formats + 2u * i);
}

int pgw_bind_result_format(const pgw_bind *b, uint16_t col)
{
	if (b->nresult_formats == 0)
		return 0;
	if (b->nresult_formats == 1)
		return get16(b->result_formats);
	if (col < b->nresult_formats)
		return get16(b->result_formats + 2u * col);
	return -1;
}

int pgw_bind_result_formats_fit(const pgw_bind *b, uint16_t ncols, pgw_err *err)
{
	if (b->nresult_formats > 1 && b->nresult_formats != ncols) {
		set_err(err, PGW_ERRCODE_PROTOCOL_VIOLATION,
			"bind message has %u result formats but query has %u columns",
			b->nresult_formats, ncols);
		return -1;
	}
	return 0;
}

void pgw_bind_iter_init(const pgw_bind *b, pgw_bind_iter *it)
{
	it->pos = b->values;
	it->left = b->nparams;
}

/* The bytes were validated by pgw_decode_bind(). */
int pgw_bind_iter_next(pgw_bind_iter *it, pgw_value *v)
{
	int32_t len;

	if (it->left == 0)
		return 0;
	len = (int32_t)get32(it->pos);
	it->pos += 4;
	v->len = len;
	if (len < 0) {
		v->data = NULL;
	} else {
		v->data = it->pos;
		it->pos += len;
	}
	it->left--;
	return 1;
}

static int decode_target(const uint8_t *body, size_t len, const char *msg,
			 pgw_target *out, pgw_err *err)
{
	cursor c;
	uint8_t kind;

	cur_init(&c, body, len, msg, err);
	if (cur_u8(&c, "target kind", &kind) < 0)
		return -1;
	if (kind != 'S' && kind != 'P') {
		set_err(err, PGW_ERRCODE_PROTOCOL_VIOLATION,
			"%s message has invalid target kind 0x%02x (expected 'S' or 'P')",
			msg, kind);
		return -1;
	}
	out->kind = (char)kind;
	if (cur_str(&c, "name", &out->name, NULL) < 0)
		return -1;
	return cur_end(&c);
}

int pgw_decode_describe(const uint8_t *body, size_t len, pgw_target *out, pgw_err *err)
{
	return decode_target(body, len, "Describe", out, err);
}

int pgw_decode_close(const uint8_t *body, size_t len, pgw_target *out, pgw_err *err)
{
	return decode_target(body, len, "Close", out, err);
}

int pgw_decode_execute(const uint8_t *body, size_t len, pgw_execute *out, pgw_err *err)
{
	cursor c;
	uint32_t max_rows;

	cur_init(&c, body, len, "Execute", err);
	if (cur_str(&c, "portal name", &out->portal, NULL) < 0 ||
	    cur_u32(&c, "max rows", &max_rows) < 0)
		return -1;
	out->max_rows = (int32_t)max_rows;
	return cur_end(&c);
}

int pgw_decode_empty(const uint8_t *body, size_t len, const char *name, pgw_err *err)
{
	cursor c;

	cur_init(&c, body, len, name, err);
	return cur_end(&c);
}

int pgw_decode(const pgw_msg *m, pgw_frontend *out, pgw_err *err)
{
	char td[48];

	if (m->type == 0) {
		if (m->len < 4) {  /* the reader never yields this */
			out->kind = PGW_F_UNSUPPORTED;
			set_err(err, PGW_ERRCODE_PROTOCOL_VIOLATION,
				"startup packet has no code (length %zu)", m->len + 4);
			return -1;
		}
		switch (get32(m->body)) {
		case PGW_SSL_REQUEST_CODE:
			out->kind = PGW_F_SSL_REQUEST;
			return pgw_decode_empty(m->body + 4, m->len - 4, "SSLRequest", err);
		case PGW_GSSENC_REQUEST_CODE:
			out->kind = PGW_F_GSSENC_REQUEST;
			return pgw_decode_empty(m->body + 4, m->len - 4, "GSSENCRequest", err);
		case PGW_CANCEL_REQUEST_CODE:
			out->kind = PGW_F_CANCEL;
			return pgw_decode_cancel(m->body, m->len, &out->u.cancel, err);
		default:
			out->kind = PGW_F_STARTUP;
			return pgw_decode_startup(m->body, m->len, &out->u.startup, err);
		}
	}
	switch (m->type) {
	case 'Q':
		out->kind = PGW_F_QUERY;
		return pgw_decode_query(m->body, m->len, &out->u.query, err);
	case 'P':
		out->kind = PGW_F_PARSE;
		return pgw_decode_parse(m->body, m->len, &out->u.parse, err);
	case 'B':
		out->kind = PGW_F_BIND;
		return pgw_decode_bind(m->body, m->len, &out->u.bind, err);
	case 'D':
		out->kind = PGW_F_DESCRIBE;
		return pgw_decode_describe(m->body, m->len, &out->u.describe, err);
	case 'E':
		out->kind = PGW_F_EXECUTE;
		return pgw_decode_execute(m->body, m->len, &out->u.execute, err);
	case 'C':
		out->kind = PGW_F_CLOSE;
		return pgw_decode_close(m->body, m->len, &out->u.close, err);
	case 'S':
		out->kind = PGW_F_SYNC;
		return pgw_decode_empty(m->body, m->len, "Sync", err);
	case 'H':
		out->kind = PGW_F_FLUSH;
		return pgw_decode_empty(m->body, m->len, "Flush", err);
	case 'X':
		out->kind = PGW_F_TERMINATE;
		return pgw_decode_empty(m->body, m->len, "Terminate", err);
	default:
		out->kind = PGW_F_UNSUPPORTED;
		set_err(err, PGW_ERRCODE_PROTOCOL_VIOLATION, "unsupported message type %s",
			type_desc(m->type, td, sizeof td));
		return -1;
	}
}

/* ---- output buffer ------------------------------------------------------------------ */

void pgw_buf_init(pgw_buf *b)
{
	memset(b, 0, sizeof *b);
}

void pgw_buf_free(pgw_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void pgw_buf_reset(pgw_buf *b)
{
	if (b->cap > PGW_KEEP_BUFFER) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
	b->len = 0;
	b->failed = 0;
}

int pgw_buf_failed(const pgw_buf *b)
{
	return b->failed;
}

/* Room for n more bytes; 0, or -1 with failed set. */
static int buf_reserve(pgw_buf *b, size_t n)
{
	size_t cap;
	uint8_t *nd;

	if (b->failed)
		return -1;
	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len)
		goto fail;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	nd = realloc(b->data, cap);
	if (nd == NULL)
		goto fail;
	b->data = nd;
	b->cap = cap;
	return 0;
fail:
	b->failed = 1;
	return -1;
}

void pgw_buf_put_bytes(pgw_buf *b, const void *p, size_t n)
{
	if (n == 0 || buf_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void pgw_buf_put_byte(pgw_buf *b, uint8_t v)
{
	pgw_buf_put_bytes(b, &v, 1);
}

void pgw_buf_put_int16(pgw_buf *b, int16_t v)
{
	uint8_t w[2] = { (uint8_t)((uint16_t)v >> 8), (uint8_t)v };

	pgw_buf_put_bytes(b, w, 2);
}

void pgw_buf_put_int32(pgw_buf *b, int32_t v)
{
	uint8_t w[4];

	put32_at(w, (uint32_t)v);
	pgw_buf_put_bytes(b, w, 4);
}

void pgw_buf_put_str(pgw_buf *b, const char *s)
{
	pgw_buf_put_bytes(b, s, strlen(s) + 1);
}

size_t pgw_msg_begin(pgw_buf *b, char type)
{
	size_t at = b->len;

	pgw_buf_put_byte(b, (uint8_t)type);
	pgw_buf_put_int32(b, 0);
	return at;
}

void pgw_msg_end(pgw_buf *b, size_t at)
{
	size_t mlen;

	if (b->failed)
		return;
	assert(at + 5 <= b->len);
	mlen = b->len - at - 1;
	if (mlen > INT32_MAX) {
		b->failed = 1;
		return;
	}
	put32_at(b->data + at + 1, (uint32_t)mlen);
}

/* A message with an empty body. */
static void put_empty(pgw_buf *b, char type)
{
	pgw_msg_end(b, pgw_msg_begin(b, type));
}

/* ---- backend messages --------------------------------------------------------------- */

void pgw_put_auth_ok(pgw_buf *b)
{
	size_t at = pgw_msg_begin(b, 'R');

	pgw_buf_put_int32(b, 0);
	pgw_msg_end(b, at);
}

void pgw_put_parameter_status(pgw_buf *b, const char *name, const char *value)
{
	size_t at = pgw_msg_begin(b, 'S');

	pgw_buf_put_str(b, name);
	pgw_buf_put_str(b, value);
	pgw_msg_end(b, at);
}

void pgw_put_backend_key_data(pgw_buf *b, uint32_t pid, uint32_t key)
{
	size_t at = pgw_msg_begin(b, 'K');

	pgw_buf_put_int32(b, (int32_t)pid);
	pgw_buf_put_int32(b, (int32_t)key);
	pgw_msg_end(b, at);
}

void pgw_put_ready_for_query(pgw_buf *b, char status)
{
	size_t at;

	assert(status == 'I' || status == 'T' || status == 'E');
	at = pgw_msg_begin(b, 'Z');
	pgw_buf_put_byte(b, (uint8_t)status);
	pgw_msg_end(b, at);
}

void pgw_put_row_description(pgw_buf *b, const pgw_field *fields, uint16_t n)
{
	size_t at = pgw_msg_begin(b, 'T');
	uint16_t i;

	pgw_buf_put_int16(b, (int16_t)n);
	for (i = 0; i < n; i++) {
		pgw_buf_put_str(b, fields[i].name);
		pgw_buf_put_int32(b, 0);  /* table OID */
		pgw_buf_put_int16(b, 0);  /* column number */
		pgw_buf_put_int32(b, (int32_t)fields[i].type_oid);
		pgw_buf_put_int16(b, fields[i].typlen);
		pgw_buf_put_int32(b, fields[i].typmod);
		pgw_buf_put_int16(b, fields[i].format);
	}
	pgw_msg_end(b, at);
}

void pgw_put_data_row(pgw_buf *b, const pgw_value *values, uint16_t n)
{
	size_t at = pgw_msg_begin(b, 'D');
	uint16_t i;

	pgw_buf_put_int16(b, (int16_t)n);
	for (i = 0; i < n; i++) {
		assert(values[i].len >= -1);
		assert(values[i].len <= 0 || values[i].data != NULL);
		pgw_buf_put_int32(b, values[i].len);
		if (values[i].len > 0)
			pgw_buf_put_bytes(b, values[i].data, (size_t)values[i].len);
	}
	pgw_msg_end(b, at);
}

void pgw_put_command_complete(pgw_buf *b, const char *tag)
{
	size_t at = pgw_msg_begin(b, 'C');

	pgw_buf_put_str(b, tag);
	pgw_msg_end(b, at);
}

void pgw_put_empty_query_response(pgw_buf *b)
{
	put_empty(b, 'I');
}

static void put_field(pgw_buf *b, char code, const char *value)
{
	if (value == NULL)
		return;
	pgw_buf_put_byte(b, (uint8_t)code);
	pgw_buf_put_str(b, value);
}

static void put_error_or_notice(pgw_buf *b, char type, const pgw_notice *e)
{
	size_t at = pgw_msg_begin(b, type);
	char pos[16];

	assert(e->severity != NULL && e->sqlstate != NULL && e->message != NULL);
	assert(strlen(e->sqlstate) == 5);
	put_field(b, 'S', e->severity);
	put_field(b, 'V', e->severity);
	put_field(b, 'C', e->sqlstate);
	put_field(b, 'M', e->message);
	put_field(b, 'D', e->detail);
	put_field(b, 'H', e->hint);
	if (e->position > 0) {
		snprintf(pos, sizeof pos, "%u", e->position);
		put_field(b, 'P', pos);
	}
	pgw_buf_put_byte(b, 0);
	pgw_msg_end(b, at);
}

void pgw_put_error_response(pgw_buf *b, const pgw_notice *e)
{
	put_error_or_notice(b, 'E', e);
}

void pgw_put_notice_response(pgw_buf *b, const pgw_notice *n)
{
	put_error_or_notice(b, 'N', n);
}

void pgw_put_err(pgw_buf *b, const char *severity, const pgw_err *err)
{
	pgw_notice e = {
		.severity = severity,
		.sqlstate = err->sqlstate,
		.message = err->msg,
	};

	pgw_put_error_response(b, &e);
}

void pgw_put_parse_complete(pgw_buf *b)
{
	put_empty(b, '1');
}

void pgw_put_bind_complete(pgw_buf *b)
{
	put_empty(b, '2');
}

void pgw_put_close_complete(pgw_buf *b)
{
	put_empty(b, '3');
}

void pgw_put_no_data(pgw_buf *b)
{
	put_empty(b, 'n');
}

void pgw_put_portal_suspended(pgw_buf *b)
{
	put_empty(b, 's');
}

void pgw_put_parameter_description(pgw_buf *b, const uint32_t *oids, uint16_t n)
{
	size_t at = pgw_msg_begin(b, 't');
	uint16_t i;

	pgw_buf_put_int16(b, (int16_t)n);
	for (i = 0; i < n; i++)
		pgw_buf_put_int32(b, (int32_t)oids[i]);
	pgw_msg_end(b, at);
}

void pgw_put_negotiate_protocol_version(pgw_buf *b, uint32_t version,
					const char *const *unrecognized, uint16_t n)
{
	size_t at = pgw_msg_begin(b, 'v');
	uint16_t i;

	pgw_buf_put_int32(b, (int32_t)version);
	pgw_buf_put_int32(b, n);
	for (i = 0; i < n; i++)
		pgw_buf_put_str(b, unrecognized[i]);
	pgw_msg_end(b, at);
}

void pgw_put_encryption_refused(pgw_buf *b)
{
	pgw_buf_put_byte(b, 'N');
}

/* ---- types -------------------------------------------------------------------------- */

static const struct {
	uint32_t oid;
	int16_t len;
	const char *name;
} pgw_types[] = {
	{ PGW_BOOLOID, 1, "bool" },
	{ PGW_BYTEAOID, -1, "bytea" },
	{ PGW_CHAROID, 1, "char" },
	{ PGW_NAMEOID, 64, "name" },
	{ PGW_INT8OID, 8, "int8" },
	{ PGW_INT2OID, 2, "int2" },
	{ PGW_INT4OID, 4, "int4" },
	{ PGW_TEXTOID, -1, "text" },
	{ PGW_OIDOID, 4, "oid" },
	{ PGW_JSONOID, -1, "json" },
	{ PGW_FLOAT4OID, 4, "float4" },
	{ PGW_FLOAT8OID, 8, "float8" },
	{ PGW_UNKNOWNOID, -2, "unknown" },
	{ PGW_BPCHAROID, -1, "bpchar" },
	{ PGW_VARCHAROID, -1, "varchar" },
	{ PGW_DATEOID, 4, "date" },
	{ PGW_TIMEOID, 8, "time" },
	{ PGW_TIMESTAMPOID, 8, "timestamp" },
	{ PGW_TIMESTAMPTZOID, 8, "timestamptz" },
	{ PGW_NUMERICOID, -1, "numeric" },
	{ PGW_UUIDOID, 16, "uuid" },
	{ PGW_JSONBOID, -1, "jsonb" },
};

int16_t pgw_type_len(uint32_t oid)
{
	size_t i;

	for (i = 0; i < sizeof pgw_types / sizeof pgw_types[0]; i++)
		if (pgw_types[i].oid == oid)
			return pgw_types[i].len;
	return -1;
}

const char *pgw_type_name(uint32_t oid)
{
	size_t i;

	for (i = 0; i < sizeof pgw_types / sizeof pgw_types[0]; i++)
		if (pgw_types[i].oid == oid)
			return pgw_types[i].name;
	return NULL;
}

pgw_field pgw_field_of(const char *name, uint32_t type_oid)
{
	pgw_field f = {
		.name = name,
		.type_oid = type_oid,
		.typlen = pgw_type_len(type_oid),
		.typmod = -1,
		.format = 0,
	};

	return f;
}

/* ---- text helpers ------------------------------------------------------------------- */

size_t pgw_bytea_text_len(size_t n)
{
	return 2 + 2 * n;
}

void pgw_bytea_to_text(const uint8_t *src, size_t n, char *dst)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	*dst++ = '\\';
	*dst++ = 'x';
	for (i = 0; i < n; i++) {
		*dst++ = hex[src[i] >> 4];
		*dst++ = hex[src[i] & 0xf];
	}
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int is_bytea_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static void bad_hex_digit(pgw_err *err, char ch)
{
	unsigned char c = (unsigned char)ch;

	if (c >= 0x20 && c <= 0x7e)
		set_err(err, PGW_ERRCODE_INVALID_PARAMETER_VALUE,
			"invalid hexadecimal digit: \"%c\"", ch);
	else
		set_err(err, PGW_ERRCODE_INVALID_PARAMETER_VALUE,
			"invalid hexadecimal digit: byte 0x%02x", c);
}

long pgw_bytea_from_text(const char *text, size_t len, uint8_t *dst, pgw_err *err)
{
	size_t i = 0, o = 0;
	int hi, lo;

	if (len >= 2 && text[0] == '\\' && text[1] == 'x') {
		for (i = 2; i < len; i++) {
			if (is_bytea_space(text[i]))
				continue;
			hi = hex_value(text[i]);
			if (hi < 0) {
				bad_hex_digit(err, text[i]);
				return -1;
			}
			if (++i == len) {
				set_err(err, PGW_ERRCODE_INVALID_PARAMETER_VALUE,
					"invalid hexadecimal data: odd number of digits");
				return -1;
			}
			lo = hex_value(text[i]);
			if (lo < 0) {
				bad_hex_digit(err, text[i]);
				return -1;
			}
			dst[o++] = (uint8_t)(hi << 4 | lo);
		}
		return (long)o;
	}
	while (i < len) {
		if (text[i] != '\\') {
			dst[o++] = (uint8_t)text[i++];
		} else if (len - i >= 4 && text[i + 1] >= '0' && text[i + 1] <= '3' &&
			   text[i + 2] >= '0' && text[i + 2] <= '7' &&
			   text[i + 3] >= '0' && text[i + 3] <= '7') {
			dst[o++] = (uint8_t)((text[i + 1] - '0') << 6 |
					     (text[i + 2] - '0') << 3 | (text[i + 3] - '0'));
			i += 4;
		} else if (len - i >= 2 && text[i + 1] == '\\') {
			dst[o++] = '\\';
			i += 2;
		} else {
			set_err(err, PGW_ERRCODE_INVALID_TEXT_REPRESENTATION,
				"invalid input syntax for type bytea");
			return -1;
		}
	}
	return (long)o;
}

uint32_t pgw_char_position(const char *s, size_t len, size_t off)
{
	uint32_t chars = 0;
	size_t i;

	if (off > len)
		off = len;
	while (off > 0 && off < len && ((unsigned char)s[off] & 0xc0) == 0x80)
		off--;
	for (i = 0; i < off; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			chars++;
	return chars + 1;
}

/* Length of the well-formed UTF-8 sequence at s[0..left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n, k;
	unsigned char lo = 0x80, hi = 0xbf;  /* bounds for the second byte */

	if (c >= 0x01 && c <= 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;  /* NUL, continuation, overlong lead, or > U+10FFFF */
	if (c == 0xe0)
		lo = 0xa0;  /* overlong */
	else if (c == 0xed)
		hi = 0x9f;  /* surrogates */
	else if (c == 0xf0)
		lo = 0x90;  /* overlong */
	else if (c == 0xf4)
		hi = 0x8f;  /* > U+10FFFF */
	if (left < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (k = 2; k < n; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return n;
}

int pgw_utf8_check(const char *s, size_t len, pgw_err *err)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n, k;
	char shown[32];
	int w = 0;

	while (i < len) {
		n = utf8_seq(u + i, len - i);
		if (n == 0) {
			/* Show the bytes the lead byte claims, as PostgreSQL does. */
			n = u[i] >= 0xf0 && u[i] <= 0xf7 ? 4 : u[i] >= 0xe0 && u[i] <= 0xef ? 3 :
			    u[i] >= 0xc0 && u[i] <= 0xdf ? 2 : 1;
			shown[0] = '\0';
			for (k = 0; k < n && i + k < len; k++)
				w += snprintf(shown + w, sizeof shown - (size_t)w, "%s0x%02x",
					      k ? " " : "", u[i + k]);
			set_err(err, PGW_ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
				"invalid byte sequence for encoding \"UTF8\": %s", shown);
			return -1;
		}
		i += n;
	}
	return 0;
}
