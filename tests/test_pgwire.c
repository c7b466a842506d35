/*
 * test_pgwire.c — router/pgwire: reader, decoders, builders, text helpers.
 *
 * Frontend bytes are assembled with a small test-local builder (tb_*);
 * backend bytes are checked against hand-written expected strings.  Every
 * body given to a decoder lives in a heap block of exactly its size, so
 * AddressSanitizer catches a read one byte past the end.
 */
#include "router/pgwire.h"
#include "tests/tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- test-local frontend byte builder ------------------------------------- */

typedef struct {
	uint8_t b[20000];
	size_t n;
} tb;

static void tb_raw(tb *t, const void *p, size_t n)
{
	if (t->n + n > sizeof t->b)
		bail("tb overflow");
	memcpy(t->b + t->n, p, n);
	t->n += n;
}

static void tb_u8(tb *t, uint8_t v)
{
	tb_raw(t, &v, 1);
}

static void tb_i16(tb *t, int v)
{
	uint8_t w[2] = { (uint8_t)((unsigned)v >> 8), (uint8_t)v };

	tb_raw(t, w, 2);
}

static void tb_i32(tb *t, int64_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t w[4] = { (uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u };

	tb_raw(t, w, 4);
}

static void tb_str(tb *t, const char *s)
{
	tb_raw(t, s, strlen(s) + 1);
}

/* Append a normal-phase message: type, length, body. */
static void tb_msg(tb *t, char type, const tb *body)
{
	tb_u8(t, (uint8_t)type);
	tb_i32(t, (int64_t)body->n + 4);
	tb_raw(t, body->b, body->n);
}

/* Append a startup-phase packet: length, then body (which starts with the code). */
static void tb_startup(tb *t, const tb *body)
{
	tb_i32(t, (int64_t)body->n + 4);
	tb_raw(t, body->b, body->n);
}

static uint8_t *dup_exact(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	if (d == NULL)
		bail("out of memory");
	if (n)
		memcpy(d, p, n);
	return d;
}

/* ---- decoder adapters with one signature ---------------------------------- */

typedef int (*decode_fn)(const uint8_t *body, size_t len, pgw_err *err);

static int dec_startup(const uint8_t *b, size_t n, pgw_err *e)
{
	pgw_startup s;
	return pgw_decode_startup(b, n, &s, e);
}

static int dec_cancel(const uint8_t *b, size_t n, pgw_err *e)
{
	pgw_cancel c;
	return pgw_decode_cancel(b, n, &c, e);
}

static int dec_query(const uint8_t *b, size_t n, pgw_err *e)
{
	pgw_query q;
	return pgw_decode_query(b, n, &q, e);
}

static int dec_parse(const uint8_t *b, size_t n, pgw_err *e)
{
	pgw_parse p;
	return pgw_decode_parse(b, n, &p, e);
}

static int dec_bind(const uint8_t *b, size_t n, pgw_err *e)
{
	pgw_bind x;
	return pgw_decode_bind(b, n, &x, e);
}

static int dec_describe(const uint8_t *b, size_t n, pgw_err *e)
{
	pgw_target t;
	return pgw_decode_describe(b, n, &t, e);
}

static int dec_close(const uint8_t *b, size_t n, pgw_err *e)
{
	pgw_target t;
	return pgw_decode_close(b, n, &t, e);
}

static int dec_execute(const uint8_t *b, size_t n, pgw_err *e)
{
	pgw_execute x;
	return pgw_decode_execute(b, n, &x, e);
}

/* A valid body must decode; each strict prefix and the body plus one byte
 * must fail with 08P01 and a message. */
static void check_truncations(const char *what, decode_fn fn, const tb *body)
{
	size_t k;
	int bad = 0, badstate = 0;
	pgw_err err;
	uint8_t *p;

	p = dup_exact(body->b, body->n);
	ok(fn(p, body->n, &err) == 0, "%s: valid body decodes", what);
	free(p);
	for (k = 0; k < body->n; k++) {
		p = dup_exact(body->b, k);
		memset(&err, 0, sizeof err);
		if (fn(p, k, &err) != -1 || err.msg[0] == '\0')
			bad++;
		else if (strcmp(err.sqlstate, "08P01") != 0)
			badstate++;
		free(p);
	}
	ok(bad == 0, "%s: all %zu truncations fail with a reason (%d did not)", what,
	   body->n, bad);
	ok(badstate == 0, "%s: truncations report 08P01 (%d did not)", what, badstate);
	p = dup_exact(body->b, body->n + 1);
	p[body->n] = 0;
	memcpy(p, body->b, body->n);
	ok(fn(p, body->n + 1, &err) == -1 && strstr(err.msg, "unexpected trailing") != NULL,
	   "%s: a trailing byte is rejected (%s)", what, err.msg);
	free(p);
}

/* Decode a body (held in an exact-size block) and return the status. */
static int decode_with(decode_fn fn, const tb *body, pgw_err *err)
{
	uint8_t *p = dup_exact(body->b, body->n);
	int rc;

	memset(err, 0, sizeof *err);
	rc = fn(p, body->n, err);
	free(p);
	return rc;
}

/* ---- fixtures ------------------------------------------------------------------ */

static void body_startup(tb *t)
{
	memset(t, 0, sizeof *t);
	tb_i32(t, 196608);
	tb_str(t, "user");
	tb_str(t, "alice");
	tb_str(t, "database");
	tb_str(t, "shop");
	tb_str(t, "application_name");
	tb_str(t, "psql");
	tb_str(t, "client_encoding");
	tb_str(t, "UTF8");
	tb_str(t, "options");
	tb_str(t, "-c x=1");
	tb_u8(t, 0);
}

static void body_parse(tb *t)
{
	memset(t, 0, sizeof *t);
	tb_str(t, "s1");
	tb_str(t, "SELECT $1, $2");
	tb_i16(t, 2);
	tb_i32(t, 23);
	tb_i32(t, 25);
}

static void body_bind(tb *t)
{
	memset(t, 0, sizeof *t);
	tb_str(t, "p1");
	tb_str(t, "s1");
	tb_i16(t, 2);
	tb_i16(t, 0);
	tb_i16(t, 1);
	tb_i16(t, 2);
	tb_i32(t, 2);
	tb_raw(t, "42", 2);
	tb_i32(t, -1);
	tb_i16(t, 1);
	tb_i16(t, 1);
}

/* A whole session's worth of frontend bytes. */
static void stream_session(tb *t)
{
	tb b;

	memset(t, 0, sizeof *t);
	body_startup(&b);
	tb_startup(t, &b);
	memset(&b, 0, sizeof b);
	tb_str(&b, "SELECT 1");
	tb_msg(t, 'Q', &b);
	body_parse(&b);
	tb_msg(t, 'P', &b);
	body_bind(&b);
	tb_msg(t, 'B', &b);
	memset(&b, 0, sizeof b);
	tb_u8(&b, 'P');
	tb_str(&b, "p1");
	tb_msg(t, 'D', &b);
	memset(&b, 0, sizeof b);
	tb_str(&b, "p1");
	tb_i32(&b, 0);
	tb_msg(t, 'E', &b);
	memset(&b, 0, sizeof b);
	tb_msg(t, 'H', &b);
	tb_msg(t, 'S', &b);
	tb_u8(&b, 'S');
	tb_str(&b, "s1");
	tb_msg(t, 'C', &b);
	memset(&b, 0, sizeof b);
	tb_msg(t, 'S', &b);
	tb_msg(t, 'X', &b);
}

static const char session_types[] = { 0, 'Q', 'P', 'B', 'D', 'E', 'H', 'S', 'C', 'S', 'X' };
#define SESSION_MSGS (sizeof session_types)

/* ---- reader tests ----------------------------------------------------------------- */

/* Drain everything; record types and bodies; return count or -1. */
static int drain(pgw_reader *r, pgw_msg *msgs, int max)
{
	int n = 0, rc;
	pgw_err err;

	while ((rc = pgw_reader_next(r, &msgs[n], &err)) == 1)
		if (++n == max)
			return n;
	return rc < 0 ? -1 : n;
}

static void test_reader_whole_stream(void)
{
	tb s;
	pgw_reader r;
	pgw_msg m[16];
	pgw_frontend f;
	pgw_err err;
	int n, i, decoded = 0;
	tb q;

	stream_session(&s);
	pgw_reader_init(&r);
	ok(r.phase == PGW_PHASE_STARTUP, "reader starts in the startup phase");
	ok(pgw_reader_feed(&r, s.b, s.n) == 0, "feed a whole session in one chunk");
	n = drain(&r, m, 16);
	ok(n == (int)SESSION_MSGS, "one chunk yields %d messages (got %d)", (int)SESSION_MSGS, n);
	for (i = 0; i < n && i < (int)SESSION_MSGS; i++)
		if (m[i].type != session_types[i])
			break;
	ok(i == (int)SESSION_MSGS, "message types in order");
	ok(r.phase == PGW_PHASE_NORMAL, "startup message moves the reader to the normal phase");
	body_startup(&q);
	ok(m[0].code == PGW_PROTOCOL_3_0 && m[0].len == q.n && memcmp(m[0].body, q.b, q.n) == 0,
	   "startup message: code 196608, body = everything after the length word");
	/* All messages since the last feed stay valid together. */
	for (i = 0; i < n; i++)
		if (pgw_decode(&m[i], &f, &err) == 0)
			decoded++;
	ok(decoded == n, "every message of the session decodes (%d of %d)", decoded, n);
	{
		static const pgw_fkind want[] = { PGW_F_STARTUP, PGW_F_QUERY, PGW_F_PARSE,
			PGW_F_BIND, PGW_F_DESCRIBE, PGW_F_EXECUTE, PGW_F_FLUSH, PGW_F_SYNC,
			PGW_F_CLOSE, PGW_F_SYNC, PGW_F_TERMINATE };
		int same = n == (int)(sizeof want / sizeof want[0]);

		for (i = 0; same && i < n; i++)
			same = pgw_decode(&m[i], &f, &err) == 0 && f.kind == want[i];
		ok(same, "pgw_decode dispatches each type to its kind");
		ok(pgw_decode(&m[8], &f, &err) == 0 && f.u.close.kind == 'S' &&
		   strcmp(f.u.close.name, "s1") == 0, "Close decoded through pgw_decode");
		ok(pgw_decode(&m[3], &f, &err) == 0 && f.u.bind.nparams == 2 &&
		   strcmp(f.u.bind.portal, "p1") == 0, "Bind decoded through pgw_decode");
	}
	memset(&q, 0, sizeof q);
	tb_str(&q, "SELECT 1");
	ok(m[1].len == q.n && memcmp(m[1].body, q.b, q.n) == 0, "Query body is zero-copy and exact");
	ok(pgw_reader_buffered(&r) == 0, "nothing left buffered");
	pgw_reader_free(&r);
}

static void test_reader_byte_by_byte(void)
{
	tb s;
	pgw_reader r;
	pgw_msg m;
	pgw_err err;
	size_t i;
	int got = 0, early = 0, wrong = 0, rc;

	stream_session(&s);
	pgw_reader_init(&r);
	for (i = 0; i < s.n; i++) {
		if (pgw_reader_feed(&r, s.b + i, 1) != 0)
			bail("feed failed");
		while ((rc = pgw_reader_next(&r, &m, &err)) == 1) {
			/* A message appears exactly when its last byte arrives. */
			if (m.body + m.len != r.buf + r.off || r.off != r.len)
				early++;
			if (got >= (int)SESSION_MSGS || m.type != session_types[got])
				wrong++;
			got++;
		}
		if (rc < 0)
			bail("reader failed: %s", err.msg);
	}
	ok(got == (int)SESSION_MSGS, "byte-by-byte feed yields %d messages (got %d)",
	   (int)SESSION_MSGS, got);
	ok(early == 0 && wrong == 0, "each message completes on its last byte, in order");
	pgw_reader_free(&r);
}

/* Every split of the stream into two chunks yields the same messages. */
static void test_reader_two_chunks(void)
{
	tb s;
	size_t cut;
	int bad = 0, n1, n2;
	pgw_reader r;
	pgw_msg m[16];

	stream_session(&s);
	for (cut = 0; cut <= s.n; cut++) {
		pgw_reader_init(&r);
		pgw_reader_feed(&r, s.b, cut);
		n1 = drain(&r, m, 16);
		pgw_reader_feed(&r, s.b + cut, s.n - cut);
		n2 = drain(&r, m, 16);
		if (n1 < 0 || n2 < 0 || n1 + n2 != (int)SESSION_MSGS)
			bad++;
		else if (n2 > 0 && m[n2 - 1].type != 'X')
			bad++;
		pgw_reader_free(&r);
	}
	ok(bad == 0, "all %zu two-chunk splits yield the whole session (%d bad)", s.n + 1, bad);
}

static void test_reader_ssl_then_startup(void)
{
	tb s, b;
	pgw_reader r;
	pgw_msg m;
	pgw_frontend f;
	pgw_err err;

	memset(&s, 0, sizeof s);
	memset(&b, 0, sizeof b);
	tb_i32(&b, 80877103);
	tb_startup(&s, &b);
	memset(&b, 0, sizeof b);
	tb_i32(&b, 80877104);
	tb_startup(&s, &b);
	body_startup(&b);
	tb_startup(&s, &b);
	pgw_reader_init(&r);
	pgw_reader_feed(&r, s.b, s.n);
	ok(pgw_reader_next(&r, &m, &err) == 1 && m.code == PGW_SSL_REQUEST_CODE && m.len == 4,
	   "SSLRequest read");
	ok(pgw_decode(&m, &f, &err) == 0 && f.kind == PGW_F_SSL_REQUEST, "SSLRequest decodes");
	ok(r.phase == PGW_PHASE_STARTUP, "still in startup phase after SSLRequest");
	ok(pgw_reader_next(&r, &m, &err) == 1 && m.code == PGW_GSSENC_REQUEST_CODE,
	   "GSSENCRequest read");
	ok(pgw_decode(&m, &f, &err) == 0 && f.kind == PGW_F_GSSENC_REQUEST,
	   "GSSENCRequest decodes");
	ok(r.phase == PGW_PHASE_STARTUP, "still in startup phase after GSSENCRequest");
	ok(pgw_reader_next(&r, &m, &err) == 1 && m.code == PGW_PROTOCOL_3_0, "StartupMessage read");
	ok(pgw_decode(&m, &f, &err) == 0 && f.kind == PGW_F_STARTUP &&
	   strcmp(f.u.startup.user, "alice") == 0, "StartupMessage decodes after SSL refusal");
	ok(r.phase == PGW_PHASE_NORMAL, "normal phase after StartupMessage");
	ok(pgw_reader_next(&r, &m, &err) == 0, "then nothing");
	pgw_reader_free(&r);

	/* An SSLRequest with extra bytes inside its length is malformed. */
	memset(&s, 0, sizeof s);
	memset(&b, 0, sizeof b);
	tb_i32(&b, 80877103);
	tb_i32(&b, 0);
	tb_startup(&s, &b);
	pgw_reader_init(&r);
	pgw_reader_feed(&r, s.b, s.n);
	ok(pgw_reader_next(&r, &m, &err) == 1, "12-byte SSLRequest is framed");
	ok(pgw_decode(&m, &f, &err) == -1 && strstr(err.msg, "SSLRequest") != NULL,
	   "12-byte SSLRequest is rejected: %s", err.msg);
	pgw_reader_free(&r);

	/* CancelRequest through the reader. */
	memset(&s, 0, sizeof s);
	memset(&b, 0, sizeof b);
	tb_i32(&b, 80877102);
	tb_i32(&b, 4242);
	tb_i32(&b, (int64_t)0xdeadbeef);
	tb_startup(&s, &b);
	pgw_reader_init(&r);
	pgw_reader_feed(&r, s.b, s.n);
	ok(pgw_reader_next(&r, &m, &err) == 1 && pgw_decode(&m, &f, &err) == 0 &&
	   f.kind == PGW_F_CANCEL && f.u.cancel.pid == 4242 && f.u.cancel.key == 0xdeadbeef,
	   "CancelRequest read and decoded");
	pgw_reader_free(&r);
}

/* Feed raw bytes to a fresh reader in the given phase; return next()'s rc. */
static int reader_once(pgw_phase phase, const tb *s, pgw_err *err, pgw_msg *m)
{
	pgw_reader r;
	pgw_msg mm;
	int rc;

	pgw_reader_init(&r);
	pgw_reader_set_phase(&r, phase);
	pgw_reader_feed(&r, s->b, s->n);
	memset(err, 0, sizeof *err);
	rc = pgw_reader_next(&r, m ? m : &mm, err);
	pgw_reader_free(&r);
	return rc;
}

static void test_reader_lengths(void)
{
	tb s, b;
	pgw_err err;
	pgw_reader r;
	pgw_msg m;
	static const int64_t bad_startup[] = { 0, 4, 7, -1, (int64_t)0x80000000 };
	static const int64_t bad_normal[] = { 0, 3, -1, -4, (int64_t)0x80000000 };
	size_t i;
	uint8_t *big;

	for (i = 0; i < sizeof bad_startup / sizeof bad_startup[0]; i++) {
		memset(&s, 0, sizeof s);
		tb_i32(&s, bad_startup[i]);
		tb_i32(&s, 196608);
		ok(reader_once(PGW_PHASE_STARTUP, &s, &err, NULL) == -1 &&
		   strcmp(err.sqlstate, "08P01") == 0 && strstr(err.msg, "invalid length") != NULL,
		   "startup length %lld rejected: %s", (long long)bad_startup[i], err.msg);
	}
	memset(&s, 0, sizeof s);
	tb_i32(&s, 10001);
	ok(reader_once(PGW_PHASE_STARTUP, &s, &err, NULL) == -1 &&
	   strcmp(err.sqlstate, "54000") == 0 && strstr(err.msg, "10000") != NULL,
	   "startup length 10001 rejected from the length word alone: %s", err.msg);

	/* Exactly 10,000 bytes is accepted. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_str(&b, "user");
	while (b.n < 10000 - 4 - 2)
		tb_u8(&b, 'a');
	tb_u8(&b, 0);
	tb_u8(&b, 0);
	memset(&s, 0, sizeof s);
	tb_startup(&s, &b);
	ok(s.n == 10000 && reader_once(PGW_PHASE_STARTUP, &s, &err, &m) == 1,
	   "startup packet of exactly 10000 bytes accepted");

	for (i = 0; i < sizeof bad_normal / sizeof bad_normal[0]; i++) {
		memset(&s, 0, sizeof s);
		tb_u8(&s, 'Q');
		tb_i32(&s, bad_normal[i]);
		ok(reader_once(PGW_PHASE_NORMAL, &s, &err, NULL) == -1 &&
		   strcmp(err.sqlstate, "08P01") == 0 && strstr(err.msg, "invalid message length") != NULL,
		   "message length %lld rejected: %s", (long long)bad_normal[i], err.msg);
	}
	memset(&s, 0, sizeof s);
	tb_u8(&s, 'Q');
	tb_i32(&s, (int64_t)PGW_MAX_MESSAGE + 1);
	ok(reader_once(PGW_PHASE_NORMAL, &s, &err, NULL) == -1 &&
	   strcmp(err.sqlstate, "54000") == 0 && strstr(err.msg, "16777216") != NULL,
	   "Query length 16 MiB + 1 rejected from the header: %s", err.msg);
	memset(&s, 0, sizeof s);
	tb_u8(&s, 'S');
	tb_i32(&s, 10001);
	ok(reader_once(PGW_PHASE_NORMAL, &s, &err, NULL) == -1 &&
	   strcmp(err.sqlstate, "54000") == 0 && strstr(err.msg, "Sync") != NULL,
	   "Sync length 10001 rejected: %s", err.msg);
	memset(&s, 0, sizeof s);
	tb_u8(&s, 'Q');
	tb_i32(&s, 10001);
	ok(reader_once(PGW_PHASE_NORMAL, &s, &err, NULL) == 0,
	   "Query length 10001 waits for its body");

	/* Exactly PGW_MAX_MESSAGE is accepted. */
	big = malloc(1 + PGW_MAX_MESSAGE);
	if (big == NULL)
		bail("out of memory");
	memset(big, 'x', 1 + PGW_MAX_MESSAGE);
	big[0] = 'Q';
	big[1] = 0x01;
	big[2] = big[3] = big[4] = 0;
	big[PGW_MAX_MESSAGE] = 0;
	pgw_reader_init(&r);
	pgw_reader_set_phase(&r, PGW_PHASE_NORMAL);
	pgw_reader_feed(&r, big, PGW_MAX_MESSAGE);
	ok(pgw_reader_next(&r, &m, &err) == 0, "16 MiB Query minus its last byte: waiting");
	pgw_reader_feed(&r, big + PGW_MAX_MESSAGE, 1);
	ok(pgw_reader_next(&r, &m, &err) == 1 && m.len == PGW_MAX_MESSAGE - 4,
	   "Query of exactly 16 MiB accepted");
	{
		pgw_query q;
		ok(pgw_decode_query(m.body, m.len, &q, &err) == 0 && q.len == PGW_MAX_MESSAGE - 5,
		   "16 MiB Query decodes");
	}
	pgw_reader_feed(&r, "S\0\0\0\x04", 5);
	ok(r.cap <= 64 * 1024 && pgw_reader_next(&r, &m, &err) == 1 && m.type == 'S',
	   "the 16 MiB buffer is released once drained (cap now %zu)", r.cap);
	pgw_reader_free(&r);
	free(big);

	/* A failed reader stays failed. */
	memset(&s, 0, sizeof s);
	tb_u8(&s, 'Q');
	tb_i32(&s, 2);
	pgw_reader_init(&r);
	pgw_reader_set_phase(&r, PGW_PHASE_NORMAL);
	pgw_reader_feed(&r, s.b, s.n);
	ok(pgw_reader_next(&r, &m, &err) == -1, "bad length fails the reader");
	memset(&err, 0, sizeof err);
	ok(pgw_reader_feed(&r, "S\0\0\0\x04", 5) == 0 && pgw_reader_next(&r, &m, &err) == -1 &&
	   strstr(err.msg, "invalid message length 2") != NULL,
	   "and keeps reporting the same error after more bytes");
	pgw_reader_free(&r);

	/* Partial header waits. */
	memset(&s, 0, sizeof s);
	tb_u8(&s, 'Q');
	tb_u8(&s, 0);
	tb_u8(&s, 0);
	tb_u8(&s, 0);
	ok(reader_once(PGW_PHASE_NORMAL, &s, &err, NULL) == 0, "4 header bytes: waiting");
	memset(&s, 0, sizeof s);
	tb_i32(&s, 8);
	tb_u8(&s, 0);
	ok(reader_once(PGW_PHASE_STARTUP, &s, &err, NULL) == 0, "partial startup packet: waiting");
	pgw_reader_init(&r);
	pgw_reader_feed(&r, s.b, s.n);
	pgw_reader_next(&r, &m, &err);
	ok(pgw_reader_buffered(&r) == 5, "buffered counts unconsumed bytes");
	pgw_reader_free(&r);
}

static void test_reader_unsupported(void)
{
	tb s, b;
	pgw_msg m;
	pgw_err err;
	pgw_frontend f;
	static const struct {
		char type;
		const char *want;
	} cases[] = {
		{ 'd', "unsupported message type 'd' (CopyData)" },
		{ 'c', "unsupported message type 'c' (CopyDone)" },
		{ 'f', "unsupported message type 'f' (CopyFail)" },
		{ 'F', "unsupported message type 'F' (FunctionCall)" },
		{ 'p', "unsupported message type 'p' (PasswordMessage)" },
		{ 'x', "unsupported message type 'x'" },
		{ 0x01, "unsupported message type 0x01" },
		{ (char)0xff, "unsupported message type 0xff" },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(&s, 0, sizeof s);
		memset(&b, 0, sizeof b);
		tb_raw(&b, "abc", 3);
		tb_msg(&s, cases[i].type, &b);
		ok(reader_once(PGW_PHASE_NORMAL, &s, &err, &m) == 1, "type 0x%02x is framed",
		   (unsigned char)cases[i].type);
	}
	/* reader_once frees the buffer; decode from a private copy instead. */
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		m.type = cases[i].type;
		m.code = 0;
		m.body = (const uint8_t *)"abc";
		m.len = 3;
		memset(&err, 0, sizeof err);
		ok(pgw_decode(&m, &f, &err) == -1 && f.kind == PGW_F_UNSUPPORTED &&
		   strcmp(err.msg, cases[i].want) == 0 && strcmp(err.sqlstate, "08P01") == 0,
		   "decode says \"%s\"", err.msg);
	}
	ok(pgw_frontend_type_name('Q') != NULL && strcmp(pgw_frontend_type_name('Q'), "Query") == 0 &&
	   pgw_frontend_type_name('x') == NULL, "frontend type names");
}

/* ---- decoder tests ---------------------------------------------------------------- */

static void test_startup(void)
{
	tb b;
	pgw_startup s;
	pgw_err err;
	uint8_t *p;
	int i;

	body_startup(&b);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_startup(p, b.n, &s, &err) == 0, "StartupMessage decodes");
	ok(s.version == 196608, "version 3.0");
	ok(s.user && strcmp(s.user, "alice") == 0, "user");
	ok(s.database && strcmp(s.database, "shop") == 0, "database");
	ok(s.application_name && strcmp(s.application_name, "psql") == 0, "application_name");
	ok(s.client_encoding && strcmp(s.client_encoding, "UTF8") == 0, "client_encoding");
	ok(s.options && strcmp(s.options, "-c x=1") == 0, "options");
	ok(s.nparams == 5 && strcmp(s.params[1].name, "database") == 0 &&
	   strcmp(s.params[4].value, "-c x=1") == 0, "all parameters in wire order");
	ok((const uint8_t *)s.user > p && (const uint8_t *)s.user < p + b.n,
	   "strings point into the body");
	free(p);
	check_truncations("StartupMessage", dec_startup, &b);

	/* Only user: database etc. absent. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_str(&b, "user");
	tb_str(&b, "bob");
	tb_u8(&b, 0);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_startup(p, b.n, &s, &err) == 0 && s.database == NULL &&
	   s.options == NULL && s.nparams == 1, "absent parameters are NULL");
	free(p);

	/* 3.2 accepted, version reported. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, (3 << 16) | 2);
	tb_str(&b, "user");
	tb_str(&b, "bob");
	tb_str(&b, "_pq_.x");
	tb_str(&b, "1");
	tb_u8(&b, 0);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_startup(p, b.n, &s, &err) == 0 && PGW_PROTOCOL_MINOR(s.version) == 2 &&
	   strcmp(s.params[1].name, "_pq_.x") == 0, "protocol 3.2 decodes with its options");
	free(p);

	/* Protocol 2.0 is not supported. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, 2 << 16);
	tb_str(&b, "user");
	tb_str(&b, "bob");
	tb_u8(&b, 0);
	ok(decode_with(dec_startup, &b, &err) == -1 && strcmp(err.sqlstate, "0A000") == 0 &&
	   strstr(err.msg, "2.0") != NULL, "protocol 2.0 rejected: %s", err.msg);

	/* Missing or empty user. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_str(&b, "database");
	tb_str(&b, "x");
	tb_u8(&b, 0);
	ok(decode_with(dec_startup, &b, &err) == -1 && strcmp(err.sqlstate, "28000") == 0,
	   "missing user rejected: %s", err.msg);
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_str(&b, "user");
	tb_str(&b, "");
	tb_u8(&b, 0);
	ok(decode_with(dec_startup, &b, &err) == -1 && strcmp(err.sqlstate, "28000") == 0,
	   "empty user rejected");

	/* No terminator after the last pair. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_str(&b, "user");
	tb_str(&b, "bob");
	ok(decode_with(dec_startup, &b, &err) == -1 && strstr(err.msg, "NUL") != NULL,
	   "missing terminator rejected: %s", err.msg);

	/* Value not terminated. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_str(&b, "user");
	tb_raw(&b, "bob", 3);
	ok(decode_with(dec_startup, &b, &err) == -1 && strstr(err.msg, "parameter value") != NULL,
	   "unterminated value rejected: %s", err.msg);

	/* Duplicates: the later one wins. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_str(&b, "user");
	tb_str(&b, "a");
	tb_str(&b, "user");
	tb_str(&b, "b");
	tb_u8(&b, 0);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_startup(p, b.n, &s, &err) == 0 && strcmp(s.user, "b") == 0,
	   "duplicate parameter: the later wins");
	free(p);

	/* 64 parameters fit, 65 do not. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_str(&b, "user");
	tb_str(&b, "u");
	for (i = 1; i < 64; i++) {
		tb_str(&b, "k");
		tb_str(&b, "v");
	}
	tb_u8(&b, 0);
	ok(decode_with(dec_startup, &b, &err) == 0, "64 parameters accepted");
	b.n--;
	tb_str(&b, "k");
	tb_str(&b, "v");
	tb_u8(&b, 0);
	ok(decode_with(dec_startup, &b, &err) == -1 && strcmp(err.sqlstate, "54000") == 0,
	   "65 parameters rejected: %s", err.msg);

	/* Bytes after the terminator. */
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_str(&b, "user");
	tb_str(&b, "bob");
	tb_u8(&b, 0);
	tb_str(&b, "x");
	ok(decode_with(dec_startup, &b, &err) == -1 && strstr(err.msg, "unexpected trailing") != NULL,
	   "bytes after the terminator rejected");
}

static void test_cancel(void)
{
	tb b;
	pgw_cancel c;
	pgw_err err;
	uint8_t *p;
	size_t k;
	int bad = 0;

	memset(&b, 0, sizeof b);
	tb_i32(&b, 80877102);
	tb_i32(&b, 77);
	tb_i32(&b, (int64_t)0x80000001);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_cancel(p, b.n, &c, &err) == 0 && c.pid == 77 && c.key == 0x80000001,
	   "CancelRequest decodes pid and key");
	free(p);
	for (k = 0; k < b.n; k++) {
		p = dup_exact(b.b, k);
		if (pgw_decode_cancel(p, k, &c, &err) != -1)
			bad++;
		free(p);
	}
	ok(bad == 0, "CancelRequest: every truncation fails");
	tb_u8(&b, 0);
	ok(decode_with(dec_cancel, &b, &err) == -1 && strstr(err.msg, "expected 16") != NULL,
	   "CancelRequest with a trailing byte fails: %s", err.msg);
	memset(&b, 0, sizeof b);
	tb_i32(&b, 196608);
	tb_i32(&b, 1);
	tb_i32(&b, 2);
	ok(decode_with(dec_cancel, &b, &err) == -1, "CancelRequest with a wrong code fails");
}

static void test_query(void)
{
	tb b;
	pgw_query q;
	pgw_err err;
	uint8_t *p;

	memset(&b, 0, sizeof b);
	tb_str(&b, "SELECT 1");
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_query(p, b.n, &q, &err) == 0 && q.len == 8 && strcmp(q.sql, "SELECT 1") == 0 &&
	   (const uint8_t *)q.sql == p, "Query decodes zero-copy");
	free(p);
	check_truncations("Query", dec_query, &b);

	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_query(p, b.n, &q, &err) == 0 && q.len == 0, "empty Query decodes");
	free(p);

	memset(&b, 0, sizeof b);
	tb_raw(&b, "SELECT", 6);
	ok(decode_with(dec_query, &b, &err) == -1 && strstr(err.msg, "query string is not NUL-terminated") != NULL,
	   "Query without NUL: %s", err.msg);

	memset(&b, 0, sizeof b);
	tb_raw(&b, "SELECT\0 1\0", 10);
	ok(decode_with(dec_query, &b, &err) == -1 && strstr(err.msg, "3 unexpected trailing bytes") != NULL,
	   "Query with an embedded NUL: %s", err.msg);
}

static void test_parse(void)
{
	tb b;
	pgw_parse x;
	pgw_err err;
	uint8_t *p;

	body_parse(&b);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_parse(p, b.n, &x, &err) == 0, "Parse decodes");
	ok(strcmp(x.name, "s1") == 0 && strcmp(x.query, "SELECT $1, $2") == 0 && x.query_len == 13,
	   "Parse name and query");
	ok(x.nparams == 2 && pgw_parse_param_type(&x, 0) == 23 && pgw_parse_param_type(&x, 1) == 25,
	   "Parse parameter types");
	free(p);
	check_truncations("Parse", dec_parse, &b);

	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "SELECT 1");
	tb_i16(&b, 0);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_parse(p, b.n, &x, &err) == 0 && x.nparams == 0 && x.name[0] == '\0',
	   "Parse unnamed with no parameter types");
	free(p);

	memset(&b, 0, sizeof b);
	tb_str(&b, "s");
	tb_str(&b, "q");
	tb_i16(&b, 3);
	tb_i32(&b, 23);
	tb_i32(&b, 23);
	ok(decode_with(dec_parse, &b, &err) == -1 && strstr(err.msg, "parameter types needs 12 bytes, 8 left") != NULL,
	   "Parse count larger than the body: %s", err.msg);

	memset(&b, 0, sizeof b);
	tb_str(&b, "s");
	tb_str(&b, "q");
	tb_i16(&b, 0xffff);
	ok(decode_with(dec_parse, &b, &err) == -1, "Parse with 65535 types and no bytes fails");

	memset(&b, 0, sizeof b);
	tb_str(&b, "s");
	tb_raw(&b, "q", 1);
	ok(decode_with(dec_parse, &b, &err) == -1 && strstr(err.msg, "query string") != NULL,
	   "Parse with unterminated query: %s", err.msg);
}

static void test_bind(void)
{
	tb b;
	pgw_bind x;
	pgw_err err;
	pgw_bind_iter it;
	pgw_value v[3];
	uint8_t *p;
	int n = 0;

	body_bind(&b);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_bind(p, b.n, &x, &err) == 0, "Bind decodes: %s", x.portal ? "" : err.msg);
	ok(strcmp(x.portal, "p1") == 0 && strcmp(x.statement, "s1") == 0, "Bind portal and statement");
	ok(x.nformats == 2 && pgw_bind_param_format(&x, 0) == 0 && pgw_bind_param_format(&x, 1) == 1,
	   "Bind parameter formats");
	pgw_bind_iter_init(&x, &it);
	while (n < 3 && pgw_bind_iter_next(&it, &v[n]))
		n++;
	ok(n == 2, "Bind has 2 values");
	ok(v[0].len == 2 && memcmp(v[0].data, "42", 2) == 0, "first value '42'");
	ok(v[1].len == -1 && v[1].data == NULL, "second value NULL");
	ok(x.nresult_formats == 1 && pgw_bind_result_format(&x, 0) == 1 &&
	   pgw_bind_result_format(&x, 7) == 1, "one result format applies to all columns");
	ok(pgw_bind_result_formats_fit(&x, 5, &err) == 0, "one result format fits any column count");
	free(p);
	check_truncations("Bind", dec_bind, &b);

	/* Minimal Bind: no formats, no params, no result formats. */
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 0);
	tb_i16(&b, 0);
	tb_i16(&b, 0);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_bind(p, b.n, &x, &err) == 0 && x.nparams == 0 && x.nformats == 0 &&
	   pgw_bind_result_format(&x, 3) == 0, "minimal Bind decodes; default text results");
	pgw_bind_iter_init(&x, &it);
	ok(pgw_bind_iter_next(&it, &v[0]) == 0, "minimal Bind has no values");
	free(p);

	/* One format code applies to all; a zero-length value is not NULL. */
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 1);
	tb_i16(&b, 1);
	tb_i16(&b, 2);
	tb_i32(&b, 0);
	tb_i32(&b, 1);
	tb_u8(&b, 7);
	tb_i16(&b, 2);
	tb_i16(&b, 0);
	tb_i16(&b, 1);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_bind(p, b.n, &x, &err) == 0 && pgw_bind_param_format(&x, 1) == 1,
	   "one parameter format applies to all parameters");
	pgw_bind_iter_init(&x, &it);
	ok(pgw_bind_iter_next(&it, &v[0]) == 1 && v[0].len == 0 && v[0].data != NULL,
	   "zero-length value is empty, not NULL");
	ok(pgw_bind_iter_next(&it, &v[1]) == 1 && v[1].len == 1 && v[1].data[0] == 7,
	   "binary one-byte value");
	ok(pgw_bind_result_format(&x, 1) == 1 && pgw_bind_result_format(&x, 2) == -1,
	   "per-column result formats; out of range is -1");
	ok(pgw_bind_result_formats_fit(&x, 2, &err) == 0 &&
	   pgw_bind_result_formats_fit(&x, 3, &err) == -1 && strstr(err.msg, "2 result formats") != NULL,
	   "result format count checked against the column count: %s", err.msg);
	free(p);

	/* No format codes: every parameter is text. */
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 0);
	tb_i16(&b, 1);
	tb_i32(&b, 1);
	tb_u8(&b, '9');
	tb_i16(&b, 0);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_bind(p, b.n, &x, &err) == 0 && x.nparams == 1 &&
	   pgw_bind_param_format(&x, 0) == 0, "no format codes: parameters are text");
	free(p);

	/* Negative lengths other than -1. */
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 0);
	tb_i16(&b, 1);
	tb_i32(&b, -2);
	tb_i16(&b, 0);
	ok(decode_with(dec_bind, &b, &err) == -1 && strstr(err.msg, "invalid length -2") != NULL,
	   "Bind value length -2: %s", err.msg);
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 0);
	tb_i16(&b, 1);
	tb_i32(&b, (int64_t)INT32_MIN);
	tb_i16(&b, 0);
	ok(decode_with(dec_bind, &b, &err) == -1 && strstr(err.msg, "invalid length") != NULL,
	   "Bind value length INT32_MIN: %s", err.msg);

	/* A value longer than the body. */
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 0);
	tb_i16(&b, 1);
	tb_i32(&b, 100);
	tb_raw(&b, "abc", 3);
	tb_i16(&b, 0);
	ok(decode_with(dec_bind, &b, &err) == -1 && strstr(err.msg, "length 100, 5 bytes left") != NULL,
	   "Bind value longer than the body: %s", err.msg);

	/* Parameter count larger than the body. */
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 0);
	tb_i16(&b, 0xffff);
	tb_i32(&b, -1);
	tb_i16(&b, 0);
	ok(decode_with(dec_bind, &b, &err) == -1, "Bind with 65535 parameters and 1 value fails: %s",
	   err.msg);

	/* Format count neither 0, 1 nor n. */
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 2);
	tb_i16(&b, 0);
	tb_i16(&b, 0);
	tb_i16(&b, 3);
	tb_i32(&b, -1);
	tb_i32(&b, -1);
	tb_i32(&b, -1);
	tb_i16(&b, 0);
	ok(decode_with(dec_bind, &b, &err) == -1 &&
	   strstr(err.msg, "2 parameter formats but 3 parameters") != NULL, "Bind: %s", err.msg);

	/* Format count larger than the body. */
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 500);
	tb_i16(&b, 0);
	ok(decode_with(dec_bind, &b, &err) == -1 && strstr(err.msg, "needs 1000 bytes") != NULL,
	   "Bind format count larger than the body: %s", err.msg);

	/* Bad format codes. */
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 1);
	tb_i16(&b, 2);
	tb_i16(&b, 0);
	tb_i16(&b, 0);
	ok(decode_with(dec_bind, &b, &err) == -1 && strcmp(err.sqlstate, "22023") == 0 &&
	   strstr(err.msg, "format code 2") != NULL, "Bind parameter format 2: %s", err.msg);
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_str(&b, "");
	tb_i16(&b, 0);
	tb_i16(&b, 0);
	tb_i16(&b, 1);
	tb_i16(&b, -1);
	ok(decode_with(dec_bind, &b, &err) == -1 && strstr(err.msg, "format code -1") != NULL,
	   "Bind result format -1: %s", err.msg);

	/* Missing portal terminator. */
	memset(&b, 0, sizeof b);
	tb_raw(&b, "portal", 6);
	ok(decode_with(dec_bind, &b, &err) == -1 && strstr(err.msg, "portal name") != NULL,
	   "Bind unterminated portal: %s", err.msg);
}

static void test_describe_close_execute(void)
{
	tb b;
	pgw_target t;
	pgw_execute e;
	pgw_err err;
	uint8_t *p;

	memset(&b, 0, sizeof b);
	tb_u8(&b, 'S');
	tb_str(&b, "s1");
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_describe(p, b.n, &t, &err) == 0 && t.kind == 'S' && strcmp(t.name, "s1") == 0,
	   "Describe statement");
	free(p);
	check_truncations("Describe", dec_describe, &b);
	check_truncations("Close", dec_close, &b);

	memset(&b, 0, sizeof b);
	tb_u8(&b, 'P');
	tb_str(&b, "");
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_close(p, b.n, &t, &err) == 0 && t.kind == 'P' && t.name[0] == '\0',
	   "Close unnamed portal");
	free(p);

	memset(&b, 0, sizeof b);
	tb_u8(&b, 'X');
	tb_str(&b, "s1");
	ok(decode_with(dec_describe, &b, &err) == -1 && strstr(err.msg, "Describe") != NULL &&
	   strstr(err.msg, "0x58") != NULL, "Describe kind 'X': %s", err.msg);
	ok(decode_with(dec_close, &b, &err) == -1 && strstr(err.msg, "Close") != NULL,
	   "Close kind 'X': %s", err.msg);

	memset(&b, 0, sizeof b);
	tb_str(&b, "p1");
	tb_i32(&b, 10);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_execute(p, b.n, &e, &err) == 0 && strcmp(e.portal, "p1") == 0 && e.max_rows == 10,
	   "Execute portal and max rows");
	free(p);
	check_truncations("Execute", dec_execute, &b);
	memset(&b, 0, sizeof b);
	tb_str(&b, "");
	tb_i32(&b, -5);
	p = dup_exact(b.b, b.n);
	ok(pgw_decode_execute(p, b.n, &e, &err) == 0 && e.max_rows == -5,
	   "Execute negative max rows is reported as is (no limit)");
	free(p);
}

static void test_empty_messages(void)
{
	pgw_msg m;
	pgw_frontend f;
	pgw_err err;
	static const char types[] = { 'S', 'H', 'X' };
	static const pgw_fkind kinds[] = { PGW_F_SYNC, PGW_F_FLUSH, PGW_F_TERMINATE };
	size_t i;
	uint8_t *p = dup_exact("z", 1);

	for (i = 0; i < 3; i++) {
		m.type = types[i];
		m.code = 0;
		m.body = p;
		m.len = 0;
		ok(pgw_decode(&m, &f, &err) == 0 && f.kind == kinds[i], "'%c' with empty body", types[i]);
		m.len = 1;
		ok(pgw_decode(&m, &f, &err) == -1 && strstr(err.msg, "1 unexpected trailing byte") != NULL,
		   "'%c' with a body byte: %s", types[i], err.msg);
	}
	free(p);

	/* An empty body may be passed as NULL. */
	m.type = 'S';
	m.body = NULL;
	m.len = 0;
	ok(pgw_decode(&m, &f, &err) == 0 && f.kind == PGW_F_SYNC, "Sync with a NULL empty body");
	ok(pgw_decode_query(NULL, 0, &(pgw_query){ 0 }, &err) == -1,
	   "Query with a NULL empty body fails cleanly");
	/* A hand-made startup-phase message too short to hold a code. */
	m.type = 0;
	m.body = (const uint8_t *)"ab";
	m.len = 2;
	ok(pgw_decode(&m, &f, &err) == -1 && f.kind == PGW_F_UNSUPPORTED,
	   "startup-phase message without a code: %s", err.msg);
}

static void test_failure_paths(void)
{
	pgw_buf b;
	pgw_reader r;
	pgw_msg m;
	pgw_err err;
	static const char byte = 'x';

	/* An impossible size fails the way out-of-memory does, without allocating. */
	pgw_buf_init(&b);
	pgw_put_no_data(&b);
	pgw_buf_put_bytes(&b, &byte, SIZE_MAX);
	ok(pgw_buf_failed(&b), "an allocation failure marks the buffer failed");
	pgw_put_no_data(&b);
	ok(pgw_buf_failed(&b) && b.len == 5, "later puts are no-ops");
	pgw_buf_free(&b);

	pgw_reader_init(&r);
	ok(pgw_reader_feed(&r, &byte, SIZE_MAX) == -1, "reader feed reports out of memory");
	ok(pgw_reader_next(&r, &m, &err) == -1 && strcmp(err.sqlstate, "53200") == 0,
	   "and the reader is failed with 53200: %s", err.msg);
	ok(pgw_reader_feed(&r, "S\0\0\0\x04", 5) == 0 && pgw_reader_next(&r, &m, &err) == -1,
	   "a failed reader ignores more bytes");
	pgw_reader_free(&r);
}

/* ---- builder tests ----------------------------------------------------------------- */

#define EXPECT(b, lit, what)                                                          \
	ok((b)->len == sizeof(lit) - 1 && memcmp((b)->data, lit, sizeof(lit) - 1) == 0 && \
	   !pgw_buf_failed(b), "%s: %zu bytes, byte-exact", what, (b)->len)

static void test_builders(void)
{
	pgw_buf b;
	pgw_field fields[2];
	pgw_value vals[3] = {
		{ (const uint8_t *)"42", 2 },
		{ NULL, -1 },
		{ (const uint8_t *)"", 0 },
	};
	uint32_t oids[2] = { 23, 25 };
	const char *unrec[1] = { "_pq_.foo" };
	pgw_notice e = { "ERROR", "42601", "bad", "d1", "h1", 8 };
	pgw_notice n = { "NOTICE", "00000", "hi", NULL, NULL, 0 };
	pgw_err err;
	size_t at;

	pgw_buf_init(&b);
	pgw_put_auth_ok(&b);
	EXPECT(&b, "R\0\0\0\x08\0\0\0\0", "AuthenticationOk");
	pgw_buf_reset(&b);
	pgw_put_parameter_status(&b, "client_encoding", "UTF8");
	EXPECT(&b, "S\0\0\0\x19" "client_encoding\0UTF8\0", "ParameterStatus");
	pgw_buf_reset(&b);
	pgw_put_backend_key_data(&b, 1234, 0xdeadbeef);
	EXPECT(&b, "K\0\0\0\x0c\0\0\x04\xd2\xde\xad\xbe\xef", "BackendKeyData");
	pgw_buf_reset(&b);
	pgw_put_ready_for_query(&b, 'I');
	pgw_put_ready_for_query(&b, 'T');
	pgw_put_ready_for_query(&b, 'E');
	EXPECT(&b, "Z\0\0\0\x05I" "Z\0\0\0\x05T" "Z\0\0\0\x05" "E", "ReadyForQuery I, T, E");
	pgw_buf_reset(&b);
	fields[0] = pgw_field_of("id", PGW_INT4OID);
	fields[1] = pgw_field_of("name", PGW_TEXTOID);
	pgw_put_row_description(&b, fields, 2);
	EXPECT(&b, "T\0\0\0\x32\0\x02"
		   "id\0" "\0\0\0\0" "\0\0" "\0\0\0\x17" "\0\x04" "\xff\xff\xff\xff" "\0\0"
		   "name\0" "\0\0\0\0" "\0\0" "\0\0\0\x19" "\xff\xff" "\xff\xff\xff\xff" "\0\0",
	       "RowDescription");
	pgw_buf_reset(&b);
	fields[0].format = 1;
	fields[0].typmod = 7;
	pgw_put_row_description(&b, fields, 1);
	EXPECT(&b, "T\0\0\0\x1b\0\x01"
		   "id\0" "\0\0\0\0" "\0\0" "\0\0\0\x17" "\0\x04" "\0\0\0\x07" "\0\x01",
	       "RowDescription with binary format and typmod");
	pgw_buf_reset(&b);
	pgw_put_row_description(&b, NULL, 0);
	EXPECT(&b, "T\0\0\0\x06\0\0", "RowDescription with no fields");
	pgw_buf_reset(&b);
	pgw_put_data_row(&b, vals, 3);
	EXPECT(&b, "D\0\0\0\x14\0\x03" "\0\0\0\x02" "42" "\xff\xff\xff\xff" "\0\0\0\0", "DataRow");
	pgw_buf_reset(&b);
	at = pgw_msg_begin(&b, 'D');
	pgw_buf_put_int16(&b, 3);
	pgw_buf_put_int32(&b, 2);
	pgw_buf_put_bytes(&b, "42", 2);
	pgw_buf_put_int32(&b, -1);
	pgw_buf_put_int32(&b, 0);
	pgw_msg_end(&b, at);
	EXPECT(&b, "D\0\0\0\x14\0\x03" "\0\0\0\x02" "42" "\xff\xff\xff\xff" "\0\0\0\0",
	       "DataRow built piecewise");
	pgw_buf_reset(&b);
	pgw_put_command_complete(&b, "SELECT 1");
	EXPECT(&b, "C\0\0\0\x0dSELECT 1\0", "CommandComplete");
	pgw_buf_reset(&b);
	pgw_put_empty_query_response(&b);
	EXPECT(&b, "I\0\0\0\x04", "EmptyQueryResponse");
	pgw_buf_reset(&b);
	pgw_put_error_response(&b, &e);
	EXPECT(&b, "E\0\0\0\x2a" "SERROR\0" "VERROR\0" "C42601\0" "Mbad\0" "Dd1\0" "Hh1\0" "P8\0" "\0",
	       "ErrorResponse with detail, hint, position");
	pgw_buf_reset(&b);
	pgw_put_notice_response(&b, &n);
	EXPECT(&b, "N\0\0\0\x20" "SNOTICE\0" "VNOTICE\0" "C00000\0" "Mhi\0" "\0",
	       "NoticeResponse without optional fields");
	pgw_buf_reset(&b);
	memcpy(err.sqlstate, "08P01", 6);
	strcpy(err.msg, "boom");
	pgw_put_err(&b, "FATAL", &err);
	EXPECT(&b, "E\0\0\0\x20" "SFATAL\0" "VFATAL\0" "C08P01\0" "Mboom\0" "\0",
	       "ErrorResponse from a pgw_err");
	pgw_buf_reset(&b);
	pgw_put_parse_complete(&b);
	pgw_put_bind_complete(&b);
	pgw_put_close_complete(&b);
	pgw_put_no_data(&b);
	pgw_put_portal_suspended(&b);
	EXPECT(&b, "1\0\0\0\x04" "2\0\0\0\x04" "3\0\0\0\x04" "n\0\0\0\x04" "s\0\0\0\x04",
	       "ParseComplete BindComplete CloseComplete NoData PortalSuspended");
	pgw_buf_reset(&b);
	pgw_put_parameter_description(&b, oids, 2);
	EXPECT(&b, "t\0\0\0\x0e\0\x02\0\0\0\x17\0\0\0\x19", "ParameterDescription");
	pgw_buf_reset(&b);
	pgw_put_negotiate_protocol_version(&b, PGW_PROTOCOL_3_0, unrec, 1);
	EXPECT(&b, "v\0\0\0\x15\0\x03\0\0\0\0\0\x01_pq_.foo\0", "NegotiateProtocolVersion");
	pgw_buf_reset(&b);
	pgw_put_encryption_refused(&b);
	EXPECT(&b, "N", "SSL/GSSENC refusal");

	/* A failed buffer ignores puts until reset. */
	pgw_buf_reset(&b);
	b.failed = 1;
	pgw_put_command_complete(&b, "SELECT 1");
	ok(b.len == 0 && pgw_buf_failed(&b), "a failed buffer ignores puts");
	pgw_buf_reset(&b);
	ok(!pgw_buf_failed(&b), "reset clears failed");
	pgw_put_no_data(&b);
	EXPECT(&b, "n\0\0\0\x04", "usable after reset");

	/* Growth across many messages keeps earlier bytes. */
	pgw_buf_reset(&b);
	{
		int i, same = 1;
		for (i = 0; i < 10000; i++)
			pgw_put_command_complete(&b, "INSERT 0 1");
		for (i = 0; i < 10000; i++)
			if (memcmp(b.data + (size_t)i * 16, "C\0\0\0\x0fINSERT 0 1\0", 16) != 0)
				same = 0;
		ok(b.len == 160000 && same && !pgw_buf_failed(&b), "10000 messages appended intact");
	}
	pgw_buf_reset(&b);
	ok(b.len == 0 && b.cap <= 64 * 1024, "reset releases a large buffer (cap now %zu)", b.cap);
	pgw_put_no_data(&b);
	EXPECT(&b, "n\0\0\0\x04", "usable after releasing");
	pgw_buf_free(&b);
	ok(b.data == NULL && b.len == 0, "free empties the buffer");
}

/* ---- types and text helpers -------------------------------------------------------- */

static void test_types(void)
{
	pgw_field f;

	ok(PGW_BOOLOID == 16 && PGW_BYTEAOID == 17 && PGW_INT8OID == 20 && PGW_INT2OID == 21 &&
	   PGW_INT4OID == 23 && PGW_TEXTOID == 25 && PGW_FLOAT4OID == 700 &&
	   PGW_FLOAT8OID == 701 && PGW_UNKNOWNOID == 705 && PGW_BPCHAROID == 1042 &&
	   PGW_VARCHAROID == 1043 && PGW_TIMESTAMPOID == 1114 && PGW_NUMERICOID == 1700,
	   "type OIDs match pg_type");
	ok(pgw_type_len(PGW_BOOLOID) == 1 && pgw_type_len(PGW_INT2OID) == 2 &&
	   pgw_type_len(PGW_INT4OID) == 4 && pgw_type_len(PGW_INT8OID) == 8 &&
	   pgw_type_len(PGW_FLOAT8OID) == 8 && pgw_type_len(PGW_TEXTOID) == -1 &&
	   pgw_type_len(PGW_UNKNOWNOID) == -2 && pgw_type_len(PGW_TIMESTAMPOID) == 8 &&
	   pgw_type_len(99999) == -1, "type lengths");
	ok(strcmp(pgw_type_name(PGW_NUMERICOID), "numeric") == 0 && pgw_type_name(99999) == NULL,
	   "type names");
	f = pgw_field_of("x", PGW_INT8OID);
	ok(f.typlen == 8 && f.typmod == -1 && f.format == 0 && f.type_oid == 20 &&
	   strcmp(f.name, "x") == 0, "pgw_field_of");
}

static void test_bytea(void)
{
	static const uint8_t raw[] = { 0x00, 0xde, 0xad, 0xff, 0x5c };
	char text[64];
	uint8_t out[600], all[256];
	char alltext[600];
	pgw_err err;
	long n;
	int i;

	ok(pgw_bytea_text_len(5) == 12, "hex text length 2 + 2n");
	pgw_bytea_to_text(raw, 5, text);
	ok(memcmp(text, "\\x00deadff5c", 12) == 0, "bytea to hex text");
	pgw_bytea_to_text(raw, 0, text);
	ok(memcmp(text, "\\x", 2) == 0 && pgw_bytea_text_len(0) == 2, "empty bytea is \\x");

	n = pgw_bytea_from_text("\\x00DEadfF5c", 12, out, &err);
	ok(n == 5 && memcmp(out, raw, 5) == 0, "hex text parsed, either case");
	n = pgw_bytea_from_text("\\x 00 de\nad\tff\r5c ", 18, out, &err);
	ok(n == 5 && memcmp(out, raw, 5) == 0, "whitespace between hex pairs allowed");
	n = pgw_bytea_from_text("\\x", 2, out, &err);
	ok(n == 0, "\\x alone is empty");
	n = pgw_bytea_from_text("\\x0", 3, out, &err);
	ok(n == -1 && strstr(err.msg, "odd number") != NULL && strcmp(err.sqlstate, "22023") == 0,
	   "odd digit count: %s", err.msg);
	n = pgw_bytea_from_text("\\x0g", 4, out, &err);
	ok(n == -1 && strstr(err.msg, "\"g\"") != NULL, "bad hex digit: %s", err.msg);
	n = pgw_bytea_from_text("\\xa\x01", 4, out, &err);
	ok(n == -1 && strstr(err.msg, "0x01") != NULL, "bad second digit, unprintable: %s", err.msg);
	n = pgw_bytea_from_text("\\x0 0", 5, out, &err);
	ok(n == -1, "whitespace inside a pair rejected: %s", err.msg);

	n = pgw_bytea_from_text("a\\\\b\\001\\377z", 13, out, &err);
	ok(n == 6 && memcmp(out, "a\\b\x01\xff" "z", 6) == 0, "escape format parsed");
	n = pgw_bytea_from_text("abc", 3, out, &err);
	ok(n == 3 && memcmp(out, "abc", 3) == 0, "plain text is its bytes");
	n = pgw_bytea_from_text("a\\9", 3, out, &err);
	ok(n == -1 && strcmp(err.sqlstate, "22P02") == 0, "bad escape rejected: %s", err.msg);
	n = pgw_bytea_from_text("\\", 1, out, &err);
	ok(n == -1, "lone backslash rejected");
	n = pgw_bytea_from_text("\\400", 4, out, &err);
	ok(n == -1, "octal above 377 rejected");

	for (i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	pgw_bytea_to_text(all, 256, alltext);
	n = pgw_bytea_from_text(alltext, pgw_bytea_text_len(256), out, &err);
	ok(n == 256 && memcmp(out, all, 256) == 0, "all 256 byte values round-trip");
}

static void test_char_position(void)
{
	static const char q[] = "SELECT 'h\xc3\xa9' FRM";  /* é is two bytes */
	size_t len = sizeof q - 1;

	ok(pgw_char_position("SELECT FRM", 10, 7) == 8, "ASCII: byte 7 is character 8");
	ok(pgw_char_position("SELECT FRM", 10, 0) == 1, "first byte is character 1");
	ok(pgw_char_position(q, len, 13) == 13, "after a 2-byte character: byte 13 is character 13 (got %u)",
	   pgw_char_position(q, len, 13));
	ok(pgw_char_position(q, len, 10) == 10 && pgw_char_position(q, len, 9) == 10,
	   "both bytes of the 2-byte character map to it");
	ok(pgw_char_position(q, len, len) == 16 && pgw_char_position(q, len, len + 5) == 16,
	   "end of input is one past the last character");
}

static void test_utf8(void)
{
	pgw_err err;

	ok(pgw_utf8_check("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12, &err) == 0,
	   "valid UTF-8 accepted");
	ok(pgw_utf8_check("a\xc3\x28", 3, &err) == -1 && strcmp(err.sqlstate, "22021") == 0 &&
	   strstr(err.msg, "0xc3 0x28") != NULL, "bad continuation: %s", err.msg);
	ok(pgw_utf8_check("\xc0\xaf", 2, &err) == -1, "overlong rejected");
	ok(pgw_utf8_check("\xe0\x80\xaf", 3, &err) == -1, "3-byte overlong rejected");
	ok(pgw_utf8_check("\xed\xa0\x80", 3, &err) == -1, "surrogate rejected");
	ok(pgw_utf8_check("\xf4\x90\x80\x80", 4, &err) == -1, "above U+10FFFF rejected");
	ok(pgw_utf8_check("\xe2\x82", 2, &err) == -1 && strstr(err.msg, "0xe2 0x82") != NULL,
	   "truncated sequence: %s", err.msg);
	ok(pgw_utf8_check("a\0b", 3, &err) == -1 && strstr(err.msg, "0x00") != NULL,
	   "NUL rejected");
}

int main(void)
{
	test_reader_whole_stream();
	test_reader_byte_by_byte();
	test_reader_two_chunks();
	test_reader_ssl_then_startup();
	test_reader_lengths();
	test_reader_unsupported();
	test_startup();
	test_cancel();
	test_query();
	test_parse();
	test_bind();
	test_describe_close_execute();
	test_empty_messages();
	test_failure_paths();
	test_builders();
	test_types();
	test_bytea();
	test_char_position();
	test_utf8();
	return plan_done();
}
