/*
 * fuzz_pgwire.c — libFuzzer target for router/pgwire.
 *
 * Input byte 0 picks the starting phase (bit 0) and a chunking pattern
 * (bits 1..7); the rest is a client byte stream.  The stream is read twice:
 * once fed whole and once fed in chunks; both readings must yield the same
 * messages and end the same way.  Every yielded message body is copied to a
 * heap block of its exact size and given to pgw_decode() and to every
 * individual decoder, so a read past the body is an ASan report.  Decoded
 * results are checked for internal consistency, and backend messages built
 * from them are framed again by a reader as a round-trip check.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *       router/pgwire.c fuzz/fuzz_pgwire.c -o fuzz_pgwire
 *   ./fuzz_pgwire fuzz/corpus/pgwire
 */
#include "router/pgwire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSGS 256

#define CHECK(cond)                      \
	do {                             \
		if (!(cond))             \
			__builtin_trap(); \
	} while (0)

typedef struct {
	char type;
	size_t len;
	uint32_t sum;
} seen;

static uint32_t checksum(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static int inside(const void *ptr, const uint8_t *body, size_t len)
{
	const uint8_t *p = ptr;

	return p >= body && p <= body + len;
}

static int in_str(const char *s, const uint8_t *body, size_t len)
{
	return inside(s, body, len) && inside(s + strlen(s), body, len) &&
	       (const uint8_t *)s + strlen(s) < body + len;
}

/* Backend output must frame cleanly as messages. */
static void reframe(const pgw_buf *b)
{
	pgw_reader r;
	pgw_msg m;
	pgw_err err;
	int rc;

	if (pgw_buf_failed(b) || b->len == 0)
		return;
	pgw_reader_init(&r);
	pgw_reader_set_phase(&r, PGW_PHASE_NORMAL);
	CHECK(pgw_reader_feed(&r, b->data, b->len) == 0);
	while ((rc = pgw_reader_next(&r, &m, &err)) == 1)
		;
	CHECK(rc == 0 && pgw_reader_buffered(&r) == 0);
	pgw_reader_free(&r);
}

static void check_bind(const pgw_bind *b, const uint8_t *body, size_t len)
{
	pgw_bind_iter it;
	pgw_value v;
	pgw_value vals[64];
	uint16_t i = 0, n = 0;
	pgw_buf out;
	pgw_err err;

	CHECK(in_str(b->portal, body, len) && in_str(b->statement, body, len));
	pgw_bind_iter_init(b, &it);
	while (pgw_bind_iter_next(&it, &v)) {
		CHECK(v.len >= -1);
		if (v.len == -1) {
			CHECK(v.data == NULL);
		} else {
			CHECK(inside(v.data, body, len) && inside(v.data + v.len, body, len));
		}
		CHECK(pgw_bind_param_format(b, i) == 0 || pgw_bind_param_format(b, i) == 1);
		if (n < 64)
			vals[n++] = v;
		i++;
	}
	CHECK(i == b->nparams);
	for (i = 0; i < 4; i++) {
		int f = pgw_bind_result_format(b, i);
		CHECK(f >= -1 && f <= 1);
	}
	(void)pgw_bind_result_formats_fit(b, n, &err);
	pgw_buf_init(&out);
	pgw_put_data_row(&out, vals, n);
	pgw_put_bind_complete(&out);
	reframe(&out);
	pgw_buf_free(&out);
}

static void check_text(const char *s, size_t n)
{
	pgw_err err;
	uint8_t *dst = malloc(n ? n : 1);
	char *text;
	long got;
	uint8_t *back;

	if (dst == NULL)
		return;
	(void)pgw_utf8_check(s, n, &err);
	CHECK(pgw_char_position(s, n, n / 2) >= 1 && pgw_char_position(s, n, n) <= n + 1);
	got = pgw_bytea_from_text(s, n, dst, &err);
	CHECK(got >= -1 && got <= (long)n);
	if (got >= 0) {
		text = malloc(pgw_bytea_text_len((size_t)got));
		back = malloc(pgw_bytea_text_len((size_t)got));
		if (text != NULL && back != NULL) {
			pgw_bytea_to_text(dst, (size_t)got, text);
			CHECK(pgw_bytea_from_text(text, pgw_bytea_text_len((size_t)got), back,
						  &err) == got);
			CHECK(memcmp(back, dst, (size_t)got) == 0);
		}
		free(text);
		free(back);
	}
	free(dst);
}

/* Run every decoder on a copy of the body that has exactly its size. */
static void decode_all(const pgw_msg *orig)
{
	uint8_t *body = malloc(orig->len ? orig->len : 1);
	pgw_msg m = *orig;
	pgw_frontend f;
	pgw_startup s;
	pgw_cancel c;
	pgw_query q;
	pgw_parse p;
	pgw_bind b;
	pgw_target t;
	pgw_execute e;
	pgw_err err;
	pgw_buf out;
	uint16_t i;
	int rc;

	if (body == NULL)
		return;
	memcpy(body, orig->body, orig->len);
	m.body = body;
	pgw_buf_init(&out);

	memset(&err, 0, sizeof err);
	rc = pgw_decode(&m, &f, &err);
	CHECK(rc == 0 || rc == -1);
	if (rc < 0) {
		CHECK(strlen(err.sqlstate) == 5 && err.msg[0] != '\0');
		pgw_put_err(&out, "ERROR", &err);
	}

	if (pgw_decode_startup(body, m.len, &s, &err) == 0) {
		CHECK(s.user != NULL && s.nparams <= PGW_MAX_STARTUP_PARAMS);
		for (i = 0; i < s.nparams; i++) {
			CHECK(in_str(s.params[i].name, body, m.len));
			CHECK(in_str(s.params[i].value, body, m.len));
			pgw_put_parameter_status(&out, s.params[i].name, s.params[i].value);
		}
	}
	if (pgw_decode_cancel(body, m.len, &c, &err) == 0)
		pgw_put_backend_key_data(&out, c.pid, c.key);
	if (pgw_decode_query(body, m.len, &q, &err) == 0) {
		pgw_notice n = { "ERROR", "42601", q.sql, q.sql, NULL, 0 };

		CHECK(in_str(q.sql, body, m.len) && strlen(q.sql) == q.len);
		n.position = pgw_char_position(q.sql, q.len, q.len / 3);
		pgw_put_error_response(&out, &n);
		pgw_put_command_complete(&out, q.sql);
		check_text(q.sql, q.len);
	}
	if (pgw_decode_parse(body, m.len, &p, &err) == 0) {
		uint32_t oids[16];
		uint16_t k = 0;

		CHECK(in_str(p.name, body, m.len) && in_str(p.query, body, m.len));
		CHECK(strlen(p.query) == p.query_len);
		for (i = 0; i < p.nparams; i++) {
			uint32_t oid = pgw_parse_param_type(&p, i);
			if (k < 16)
				oids[k++] = oid;
		}
		pgw_put_parameter_description(&out, oids, k);
	}
	if (pgw_decode_bind(body, m.len, &b, &err) == 0)
		check_bind(&b, body, m.len);
	if (pgw_decode_describe(body, m.len, &t, &err) == 0) {
		CHECK((t.kind == 'S' || t.kind == 'P') && in_str(t.name, body, m.len));
		pgw_field fld = pgw_field_of(t.name, (uint32_t)m.len);
		pgw_put_row_description(&out, &fld, 1);
	}
	if (pgw_decode_close(body, m.len, &t, &err) == 0)
		pgw_put_close_complete(&out);
	if (pgw_decode_execute(body, m.len, &e, &err) == 0)
		CHECK(in_str(e.portal, body, m.len));
	if (pgw_decode_empty(body, m.len, "Sync", &err) == 0)
		CHECK(m.len == 0);
	reframe(&out);
	pgw_buf_free(&out);
	free(body);
}

/* Read data[0..n) with the given chunk pattern; record what comes out. */
static int run(const uint8_t *data, size_t n, pgw_phase phase, unsigned pattern, int decode,
	       seen *log, int *nlog)
{
	pgw_reader r;
	pgw_msg m;
	pgw_err err;
	size_t pos = 0, chunk;
	int rc = 0, k = 0;

	pgw_reader_init(&r);
	pgw_reader_set_phase(&r, phase);
	while (pos < n && rc >= 0) {
		if (pattern == 0)
			chunk = n - pos;
		else if (pattern == 1)
			chunk = 1;
		else
			chunk = 1 + (data[pos] % (pattern * 4u));
		if (chunk > n - pos)
			chunk = n - pos;
		CHECK(pgw_reader_feed(&r, data + pos, chunk) == 0);
		pos += chunk;
		while ((rc = pgw_reader_next(&r, &m, &err)) == 1) {
			CHECK(m.len <= PGW_MAX_MESSAGE);
			if (k < MAX_MSGS) {
				log[k].type = m.type;
				log[k].len = m.len;
				log[k].sum = checksum(m.body, m.len);
			}
			k++;
			if (decode)
				decode_all(&m);
		}
		if (rc < 0)
			CHECK(strlen(err.sqlstate) == 5 && err.msg[0] != '\0');
	}
	if (rc >= 0)
		rc = pgw_reader_next(&r, &m, &err);  /* 0 unless the tail is bad */
	pgw_reader_free(&r);
	*nlog = k;
	return rc < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static seen a[MAX_MSGS], b[MAX_MSGS];
	int na, nb, ra, rb, i;
	pgw_phase phase;
	unsigned pattern;

	if (size < 1)
		return 0;
	phase = (data[0] & 1) ? PGW_PHASE_NORMAL : PGW_PHASE_STARTUP;
	pattern = (unsigned)data[0] >> 1;
	data++;
	size--;

	ra = run(data, size, phase, 0, 1, a, &na);
	rb = run(data, size, phase, pattern == 0 ? 1 : pattern, 0, b, &nb);
	/* Chunking must not change the messages or the verdict. */
	CHECK(na == nb && ra == rb);
	for (i = 0; i < na && i < MAX_MSGS; i++)
		CHECK(a[i].type == b[i].type && a[i].len == b[i].len && a[i].sum == b[i].sum);
	return 0;
}
