/*
 * test_wire.c — the wire codec (txn/fb.c, txn/wire.c) and framing
 * (txn/frame.c), as a TAP program.
 *
 * What is asserted:
 *  - round trips: decode(encode(m)) equals m for every field and edge case
 *    (NULL vs "" strings, NUL bytes, integer and double extremes, NaN and
 *    -0.0 by bits, 0 and many rows, big params);
 *  - every hand-made malformed buffer is rejected with a reason naming the
 *    field and offset;
 *  - every truncation and every single-bit flip of valid buffers is either
 *    rejected or decodes to a message that re-encodes and decodes to itself;
 *    each mutant is copied into an exactly sized allocation so that, under
 *    -fsanitize=address, any read past the end is a crash;
 *  - the verifier's work limits (depth, table visits) hold;
 *  - the frame reader: byte-by-byte feeding, several frames per feed, bad
 *    lengths poison the stream, FRAME_MAX exactly is accepted.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tap.h"
#include "txn/fb.h"
#include "txn/frame.h"
#include "txn/wire.h"

static char err[512];

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (!d)
		bail("out of memory");
	if (n)
		memcpy(d, p, n);
	return d;
}

static int encode(const wire_message *m, uint8_t **out, size_t *len)
{
	return m->kind == WIRE_MSG_REQUEST ? wire_encode_request(&m->req, out, len)
					   : wire_encode_response(&m->resp, out, len);
}

/* Encode, decode, compare.  Returns the buffer (caller frees) or NULL. */
static uint8_t *roundtrip(const wire_message *m, size_t *len, const char *what)
{
	uint8_t *buf;
	wire_message back;
	if (!ok(encode(m, &buf, len) == 0, "%s: encodes", what))
		return NULL;
	int rc = wire_decode(buf, *len, &back, err, sizeof(err));
	if (!ok(rc == 0, "%s: decodes (%zu bytes)", what, *len)) {
		diag("%s", err);
		free(buf);
		return NULL;
	}
	ok(wire_message_equal(m, &back), "%s: round trip equal", what);
	wire_message_free(&back);
	return buf;
}

/* A decoded mutant must re-encode and decode to an equal message. */
static bool reencodes(const wire_message *m)
{
	uint8_t *buf;
	size_t len;
	wire_message back;
	if (encode(m, &buf, &len) < 0)
		return false;
	bool same = wire_decode(buf, len, &back, err, sizeof(err)) == 0 &&
		    wire_message_equal(m, &back);
	if (back.kind)
		wire_message_free(&back);
	free(buf);
	return same;
}

/* Every truncation and every single-bit flip of a valid buffer. */
static void mutate_all(const uint8_t *buf, size_t len, const wire_message *orig,
		       const char *what)
{
	size_t rejected = 0, accepted = 0, bad = 0, silent = 0;
	for (size_t l = 0; l < len; l++) {
		uint8_t *t = dup_exact(buf, l);
		wire_message m;
		err[0] = 0;
		if (wire_decode(t, l, &m, err, sizeof(err)) < 0) {
			rejected++;
			if (!err[0])
				silent++;
		} else {
			accepted++; /* only trailing padding may go */
			if (!wire_message_equal(&m, orig) || len - l >= 8)
				bad++;
			wire_message_free(&m);
		}
		free(t);
	}
	ok(bad == 0 && silent == 0 && rejected + accepted == len,
	   "%s: %zu truncations rejected with a reason, %zu cut only padding",
	   what, rejected, accepted);

	rejected = accepted = bad = silent = 0;
	for (size_t bit = 0; bit < len * 8; bit++) {
		uint8_t *t = dup_exact(buf, len);
		wire_message m;
		t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		err[0] = 0;
		if (wire_decode(t, len, &m, err, sizeof(err)) < 0) {
			rejected++;
			if (!err[0])
				silent++;
		} else {
			accepted++;
			if (!reencodes(&m))
				bad++;
			wire_message_free(&m);
		}
		free(t);
	}
	ok(bad == 0 && silent == 0 && rejected > 0,
	   "%s: %zu bit flips: %zu rejected with a reason, %zu decode and "
	   "re-encode", what, len * 8, rejected, accepted);
}

/* ---- round trips ---- */

static wire_value v_null(void) { return (wire_value){ .type = WIRE_NULL }; }
static wire_value v_int(int64_t i) { return (wire_value){ .type = WIRE_INT, .i = i }; }
static wire_value v_real(double r) { return (wire_value){ .type = WIRE_REAL, .r = r }; }
static wire_value v_text(const char *s, uint32_t n)
{
	return (wire_value){ .type = WIRE_TEXT, .p = s, .len = n };
}
static wire_value v_blob(const void *p, uint32_t n)
{
	return (wire_value){ .type = WIRE_BLOB, .p = p, .len = n };
}

static void test_requests(void)
{
	wire_message m;
	uint8_t *buf;
	size_t len;
	char what[64];

	for (int op = 0; op <= WIRE_OP_MAX; op++) {
		memset(&m, 0, sizeof(m));
		m.kind = WIRE_MSG_REQUEST;
		m.req.op = (wire_op)op;
		m.req.id = (uint64_t)op + 1;
		snprintf(what, sizeof(what), "request %s", wire_op_name((wire_op)op));
		free(roundtrip(&m, &len, what));
	}

	/* Everything at once, extremes included. */
	static const char blob[] = { 0, 1, 0, (char)0xff, 0 };
	static const char text_nul[] = "a\0b";
	uint32_t buckets[] = { 0, 1, 4095, UINT32_MAX };
	wire_value params[] = {
		v_null(), v_int(0), v_int(1), v_int(-1), v_int(INT64_MIN),
		v_int(INT64_MAX), v_real(0.0), v_real(-0.0), v_real(NAN),
		v_real(-NAN), v_real(INFINITY), v_real(-INFINITY),
		v_real(DBL_MIN / 4), v_real(DBL_MAX), v_real(0.1),
		v_text("", 0), v_text(NULL, 0), v_text("hello", 5),
		v_text(text_nul, 3), v_text("h\xc3\xa9", 3),
		v_blob(NULL, 0), v_blob(blob, sizeof(blob)),
	};
	memset(&m, 0, sizeof(m));
	m.kind = WIRE_MSG_REQUEST;
	m.req = (wire_request){
		.id = UINT64_MAX, .op = WIRE_OP_EXEC, .txn = UINT64_MAX - 1,
		.ts = 1, .epoch = 1u << 31, .readonly = true,
		.sql = "SELECT $1", .sql_len = 9, .params = params,
		.nparams = sizeof(params) / sizeof(params[0]),
		.buckets = buckets, .nbuckets = 4, .decider = UINT32_MAX, .early = true,
	};
	buf = roundtrip(&m, &len, "request with every field");
	if (buf) {
		wire_message d;
		wire_decode(buf, len, &d, err, sizeof(err));
		ok(d.req.params[16].type == WIRE_TEXT && d.req.params[16].p &&
		   d.req.params[16].len == 0, "NULL text decodes as \"\"");
		ok(d.req.params[18].len == 3 && memcmp(d.req.params[18].p, "a\0b", 4) == 0,
		   "text keeps its NUL byte and is NUL-terminated");
		ok(signbit(d.req.params[7].r) && d.req.params[7].r == 0,
		   "-0.0 keeps its sign");
		ok(isnan(d.req.params[8].r), "NaN survives");
		ok(d.req.sql[d.req.sql_len] == 0, "sql is NUL-terminated in place");
		ok(d.req.sql >= (const char *)buf && d.req.sql < (const char *)buf + len,
		   "sql is zero-copy");
		wire_message_free(&d);
		mutate_all(buf, len, &m, "full request");
		free(buf);
	}

	/* NULL sql vs empty sql vs sql with a NUL. */
	memset(&m, 0, sizeof(m));
	m.kind = WIRE_MSG_REQUEST;
	m.req.sql = "";
	free(roundtrip(&m, &len, "empty sql"));
	m.req.sql = "x\0y";
	m.req.sql_len = 3;
	free(roundtrip(&m, &len, "sql with a NUL byte"));
	m.req.sql = NULL;
	m.req.sql_len = 0;
	buf = roundtrip(&m, &len, "absent sql");
	if (buf) {
		wire_message d;
		wire_decode(buf, len, &d, err, sizeof(err));
		ok(d.req.sql == NULL && d.req.params == NULL && d.req.buckets == NULL,
		   "absent sql/params/buckets decode as NULL");
		wire_message_free(&d);
		mutate_all(buf, len, &m, "minimal request");
		free(buf);
	}

	/* Big params: 20000 values and a 1 MiB text. */
	enum { N = 20000 };
	wire_value *many = calloc(N, sizeof(*many));
	char *big = malloc(1 << 20);
	if (!many || !big)
		bail("out of memory");
	memset(big, 'q', 1 << 20);
	for (int i = 0; i < N; i++)
		many[i] = i % 3 == 0 ? v_int(i) : i % 3 == 1 ? v_real(i / 7.0)
							   : v_text("xy", 2);
	many[N / 2] = v_text(big, 1 << 20);
	memset(&m, 0, sizeof(m));
	m.kind = WIRE_MSG_REQUEST;
	m.req.params = many;
	m.req.nparams = N;
	free(roundtrip(&m, &len, "20000 params with a 1 MiB text"));
	free(many);
	free(big);
}

static void test_responses(void)
{
	wire_message m;
	uint8_t *buf;
	size_t len;

	for (int s = 0; s <= WIRE_STATUS_MAX; s++) {
		char what[64];
		memset(&m, 0, sizeof(m));
		m.kind = WIRE_MSG_RESPONSE;
		m.resp.status = (wire_status)s;
		m.resp.id = 77;
		snprintf(what, sizeof(what), "response %s",
			 wire_status_name((wire_status)s));
		free(roundtrip(&m, &len, what));
	}

	memset(&m, 0, sizeof(m));
	m.kind = WIRE_MSG_RESPONSE;
	m.resp = (wire_response){ .id = 5, .status = WIRE_ERROR,
				  .sqlstate = "23505", .message = "duplicate key",
				  .changes = INT64_MIN };
	buf = roundtrip(&m, &len, "error response");
	if (buf) {
		mutate_all(buf, len, &m, "error response");
		free(buf);
	}
	m.resp.sqlstate = "";
	m.resp.message = "";
	m.resp.changes = INT64_MAX;
	free(roundtrip(&m, &len, "empty sqlstate and message"));

	/* Rows of every value type, with and without declared types. */
	static const uint8_t blob[] = { 0, 0, 0x80 };
	const char *cols[] = { "n", "i", "r", "t", "b" };
	const char *types[] = { "", "INTEGER", "REAL", "TEXT", "BLOB" };
	wire_value cells[] = {
		v_null(), v_int(INT64_MIN), v_real(-INFINITY), v_text("", 0), v_blob(blob, 0),
		v_null(), v_int(INT64_MAX), v_real(NAN), v_text("a\"b\\c", 5), v_blob(blob, 3),
		v_int(7), v_null(), v_text("x", 1), v_blob(blob, 1), v_real(1.5),
	};
	memset(&m, 0, sizeof(m));
	m.kind = WIRE_MSG_RESPONSE;
	m.resp = (wire_response){ .id = 9, .ncols = 5, .columns = cols,
				  .types = types, .nrows = 3, .cells = cells,
				  .changes = 3 };
	buf = roundtrip(&m, &len, "rows of every type");
	if (buf) {
		mutate_all(buf, len, &m, "rows of every type");
		free(buf);
	}
	m.resp.types = NULL;
	buf = roundtrip(&m, &len, "rows without declared types");
	if (buf) {
		wire_message d;
		wire_decode(buf, len, &d, err, sizeof(err));
		ok(d.resp.types == NULL, "absent types decode as NULL");
		wire_message_free(&d);
		free(buf);
	}

	/* Columns and 0 rows. */
	m.resp.nrows = 0;
	m.resp.cells = NULL;
	buf = roundtrip(&m, &len, "columns and no rows");
	if (buf) {
		wire_message d;
		wire_decode(buf, len, &d, err, sizeof(err));
		ok(d.resp.ncols == 5 && d.resp.nrows == 0 && d.resp.cells == NULL,
		   "0 rows decode as nrows 0, cells NULL");
		wire_message_free(&d);
		free(buf);
	}

	/* Rows with zero columns keep their count. */
	memset(&m, 0, sizeof(m));
	m.kind = WIRE_MSG_RESPONSE;
	m.resp.nrows = 4;
	free(roundtrip(&m, &len, "4 rows of 0 columns"));

	/* NULL entries of types read back as "". */
	const char *holes[] = { NULL, "TEXT" };
	memset(&m, 0, sizeof(m));
	m.kind = WIRE_MSG_RESPONSE;
	m.resp = (wire_response){ .ncols = 2, .columns = cols, .types = holes };
	if (encode(&m, &buf, &len) == 0) {
		wire_message d;
		ok(wire_decode(buf, len, &d, err, sizeof(err)) == 0 &&
		   strcmp(d.resp.types[0], "") == 0 &&
		   strcmp(d.resp.types[1], "TEXT") == 0,
		   "a NULL type is sent as \"\"");
		wire_message_free(&d);
		free(buf);
	} else {
		ok(0, "a NULL type is sent as \"\"");
	}

	/* Many rows. */
	enum { R = 3000, C = 4 };
	wire_value *many = calloc((size_t)R * C, sizeof(*many));
	if (!many)
		bail("out of memory");
	for (int i = 0; i < R * C; i++)
		many[i] = i % C == 0 ? v_int(i) : i % C == 1 ? v_text("row", 3)
			: i % C == 2 ? v_null() : v_real(i * 0.5);
	memset(&m, 0, sizeof(m));
	m.kind = WIRE_MSG_RESPONSE;
	m.resp = (wire_response){ .ncols = C, .columns = cols, .nrows = R,
				  .cells = many };
	free(roundtrip(&m, &len, "3000 rows x 4 columns"));
	free(many);
}

static void test_encode_errors(void)
{
	uint8_t *buf = (uint8_t *)"x";
	size_t len = 1;
	wire_request q = { .op = (wire_op)(WIRE_OP_MAX + 1) };
	ok(wire_encode_request(&q, &buf, &len) < 0 && buf == NULL && len == 0,
	   "encode rejects an op out of range");
	wire_value bad = { .type = (wire_type)5 };
	q = (wire_request){ .params = &bad, .nparams = 1 };
	ok(wire_encode_request(&q, &buf, &len) < 0, "encode rejects value type 5");
	bad = v_text(NULL, 3);
	ok(wire_encode_request(&q, &buf, &len) < 0, "encode rejects NULL text of length 3");
	q = (wire_request){ .sql = NULL, .sql_len = 2 };
	ok(wire_encode_request(&q, &buf, &len) < 0, "encode rejects NULL sql of length 2");
	wire_response r = { .status = (wire_status)6 };
	ok(wire_encode_response(&r, &buf, &len) < 0, "encode rejects status 6");
	r = (wire_response){ .ncols = 2, .columns = NULL };
	ok(wire_encode_response(&r, &buf, &len) < 0, "encode rejects ncols without columns");

	/* Bigger than FRAME_MAX. */
	char *big = malloc(FRAME_MAX);
	if (!big)
		bail("out of memory");
	memset(big, 'z', FRAME_MAX);
	q = (wire_request){ .sql = big, .sql_len = FRAME_MAX };
	ok(wire_encode_request(&q, &buf, &len) < 0, "encode refuses a message over FRAME_MAX");
	q.sql_len = FRAME_MAX - 64;
	int rc = wire_encode_request(&q, &buf, &len);
	ok(rc == 0 && len <= FRAME_MAX,
	   "a message just under FRAME_MAX encodes (%zu bytes)", len);
	free(buf);
	free(big);

	ok(strcmp(wire_op_name(WIRE_OP_COMMIT_PREPARED), "CommitPrepared") == 0 &&
	   strcmp(wire_op_name((wire_op)99), "Unknown") == 0 &&
	   strcmp(wire_type_name(WIRE_BLOB), "Blob") == 0 &&
	   strcmp(wire_status_name(WIRE_READ_ONLY), "ReadOnly") == 0,
	   "names match the schema");
}

/* ---- malformed buffers ---- */

/*
 * A hand-laid request, to corrupt one field at a time:
 *
 *   0   u32  root = 16
 *   4        "SLW1"
 *   8   vtable of Message: size 6, table 8, request @4; 2 bytes pad
 *   16  Message table: soffset 8 (vtable at 8); request uoffset 20 -> 40
 *   24  vtable of Request: size 14, table 20, id @8, op @16, txn 0,
 *       ts 0, sql @4; 2 bytes pad
 *   40  Request table: soffset 16 (vtable at 24)
 *   44    sql uoffset 16 -> 60
 *   48    id u64 = 42
 *   56    op u8 = 1 (Exec); 3 bytes pad
 *   60  string: length 5, "hello", NUL at 69; 2 bytes pad
 *   72  end
 */
static void hand_request(uint8_t b[72])
{
	memset(b, 0, 72);
	fb_put_u32(b + 0, 16);
	memcpy(b + 4, "SLW1", 4);
	fb_put_u16(b + 8, 6);
	fb_put_u16(b + 10, 8);
	fb_put_u16(b + 12, 4);
	fb_put_u32(b + 16, 8);
	fb_put_u32(b + 20, 20);
	fb_put_u16(b + 24, 14);
	fb_put_u16(b + 26, 20);
	fb_put_u16(b + 28, 8);
	fb_put_u16(b + 30, 16);
	fb_put_u16(b + 36, 4);
	fb_put_u32(b + 40, 16);
	fb_put_u32(b + 44, 16);
	fb_put_u64(b + 48, 42);
	b[56] = 1;
	fb_put_u32(b + 60, 5);
	memcpy(b + 64, "hello", 5);
}

typedef void (*corrupt_fn)(uint8_t *b);

static void c_ident(uint8_t *b) { b[7] = '2'; }
static void c_root_hdr(uint8_t *b) { fb_put_u32(b, 4); }
static void c_root_odd(uint8_t *b) { fb_put_u32(b, 18); }
static void c_root_out(uint8_t *b) { fb_put_u32(b, 1000); }
static void c_soff_out(uint8_t *b) { fb_put_u32(b + 16, (uint32_t)-1000); }
static void c_soff_odd(uint8_t *b) { fb_put_u32(b + 16, 9); }
static void c_vsize_odd(uint8_t *b) { fb_put_u16(b + 8, 5); }
static void c_vsize_small(uint8_t *b) { fb_put_u16(b + 8, 2); }
static void c_vsize_big(uint8_t *b) { fb_put_u16(b + 8, 200); }
static void c_tsize_small(uint8_t *b) { fb_put_u16(b + 10, 2); }
static void c_tsize_big(uint8_t *b) { fb_put_u16(b + 26, 1000); }
static void c_field_out(uint8_t *b) { fb_put_u16(b + 28, 16); }
static void c_field_soff(uint8_t *b) { fb_put_u16(b + 36, 2); }
static void c_field_mis(uint8_t *b) { fb_put_u16(b + 28, 12); }
static void c_req_off0(uint8_t *b) { fb_put_u32(b + 20, 0); }
static void c_req_out(uint8_t *b) { fb_put_u32(b + 20, 0x7ffffff0); }
static void c_sql_off0(uint8_t *b) { fb_put_u32(b + 44, 0); }
static void c_sql_odd(uint8_t *b) { fb_put_u32(b + 44, 17); }
static void c_sql_nonul(uint8_t *b) { b[69] = '!'; }
static void c_sql_long(uint8_t *b) { fb_put_u32(b + 60, 8); }
static void c_sql_short(uint8_t *b) { fb_put_u32(b + 60, 4); }
static void c_sql_huge(uint8_t *b) { fb_put_u32(b + 60, UINT32_MAX); }
static void c_op_range(uint8_t *b) { b[56] = WIRE_OP_MAX + 1; }
static void c_msg_none(uint8_t *b) { fb_put_u16(b + 12, 0); }

static void test_malformed(void)
{
	uint8_t good[72];
	wire_message m, gm;
	hand_request(good);
	int rc = wire_decode(good, sizeof(good), &gm, err, sizeof(err));
	if (!ok(rc == 0 && gm.kind == WIRE_MSG_REQUEST && gm.req.id == 42 &&
		gm.req.op == WIRE_OP_EXEC && gm.req.sql_len == 5 &&
		strcmp(gm.req.sql, "hello") == 0, "hand-laid request decodes"))
		bail("hand-laid request: %s", err);

	static const struct {
		corrupt_fn fn;
		const char *what, *expect;
	} cases[] = {
		{ c_ident, "wrong file identifier", "Message: file identifier 534c5732 is not \"SLW1\" at offset 4" },
		{ c_root_hdr, "root inside the header", "Message: root offset 4 inside the header at offset 0" },
		{ c_root_odd, "root misaligned", "Message: table misaligned at offset 18" },
		{ c_root_out, "root outside", "Message: table outside the buffer (72 bytes) at offset 1000" },
		{ c_soff_out, "vtable outside", "Message: vtable offset -1000 points outside the buffer at offset 16" },
		{ c_soff_odd, "vtable misaligned", "Message: vtable misaligned at offset 7" },
		{ c_vsize_odd, "odd vtable size", "Message: bad vtable size 5 at offset 8" },
		{ c_vsize_small, "vtable size below 4", "Message: bad vtable size 2 at offset 8" },
		{ c_vsize_big, "vtable overruns", "Message: vtable of 200 bytes overruns the buffer at offset 8" },
		{ c_tsize_small, "table size below 4", "Message: bad table size 2 at offset 16" },
		{ c_tsize_big, "table overruns", "Message.request: table of 1000 bytes overruns the buffer at offset 40" },
		{ c_field_out, "field past the table", "Message.request.id: field offset 16 outside the 20-byte table at offset 56" },
		{ c_field_soff, "field over the soffset", "Message.request.sql: field offset 2 outside the 20-byte table at offset 42" },
		{ c_field_mis, "u64 misaligned", "Message.request.id: field misaligned at offset 52" },
		{ c_req_off0, "uoffset 0", "Message.request: bad offset 0 at offset 20" },
		{ c_req_out, "uoffset outside", "Message.request: offset 2147483632 points outside the buffer at offset 20" },
		{ c_sql_off0, "string uoffset 0", "Message.request.sql: bad offset 0 at offset 44" },
		{ c_sql_odd, "string misaligned", "Message.request.sql: string misaligned at offset 61" },
		{ c_sql_nonul, "string without NUL", "Message.request.sql: string not NUL-terminated at offset 69" },
		{ c_sql_long, "string past the end", "Message.request.sql: string of 8 bytes overruns the buffer at offset 60" },
		{ c_sql_short, "string NUL misplaced", "Message.request.sql: string not NUL-terminated at offset 68" },
		{ c_sql_huge, "string length huge", "Message.request.sql: string of 4294967295 bytes overruns the buffer at offset 60" },
		{ c_op_range, "op out of range", "Message.request.op: Op 15 out of range 0..14 at offset 56" },
		{ c_msg_none, "neither request nor response", "Message: neither request nor response present at offset 16" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *b = dup_exact(good, sizeof(good));
		cases[i].fn(b);
		err[0] = 0;
		rc = wire_decode(b, sizeof(good), &m, err, sizeof(err));
		ok(rc < 0 && strcmp(err, cases[i].expect) == 0 && m.kind == 0,
		   "%s: rejected", cases[i].what);
		if (rc == 0 || strcmp(err, cases[i].expect) != 0)
			diag("got \"%s\"\n#  want \"%s\"", rc ? err : "success",
			     cases[i].expect);
		if (rc == 0)
			wire_message_free(&m);
		free(b);
	}
	ok(wire_verify(NULL, 0, err, sizeof(err)) < 0 &&
	   strcmp(err, "Message: buffer of 0 bytes too short at offset 0") == 0,
	   "empty buffer rejected");
	ok(wire_decode(good, 11, &m, err, sizeof(err)) < 0 && strstr(err, "too short"),
	   "11-byte buffer rejected");
	mutate_all(good, sizeof(good), &gm, "hand-laid request");
	wire_message_free(&gm);

	/* Size limit: FRAME_MAX + 1 bytes are refused before being read. */
	uint8_t *huge = calloc(FRAME_MAX + 1, 1);
	if (!huge)
		bail("out of memory");
	memcpy(huge, good, sizeof(good));
	ok(wire_verify(huge, FRAME_MAX + 1, err, sizeof(err)) < 0 &&
	   strstr(err, "exceeds FRAME_MAX"), "buffer over FRAME_MAX rejected");
	ok(wire_verify(huge, FRAME_MAX, err, sizeof(err)) == 0,
	   "valid message padded to FRAME_MAX accepted");
	free(huge);

	/* A tiny error buffer truncates, never overflows. */
	char small[8];
	ok(wire_decode(good, 3, &m, small, sizeof(small)) < 0 &&
	   strlen(small) < sizeof(small), "error text truncated to its buffer");
}

/* Build Messages the encoder refuses to make, with the generic builder. */
static fb_ref b_value_int(fb_builder *b, int64_t i)
{
	fb_table_start(b);
	fb_add_u64(b, 1, (uint64_t)i, 0);
	fb_add_u8(b, 0, WIRE_INT, 0);
	return fb_table_end(b);
}

static fb_ref b_row(fb_builder *b, int nvals)
{
	fb_ref vals[8];
	for (int i = 0; i < nvals; i++)
		vals[i] = b_value_int(b, i);
	fb_ref vec = fb_create_vector_refs(b, vals, (size_t)nvals);
	fb_table_start(b);
	fb_add_ref(b, 0, vec);
	return fb_table_end(b);
}

static fb_ref b_columns(fb_builder *b, int n)
{
	fb_ref names[8];
	for (int i = 0; i < n; i++)
		names[i] = fb_create_string(b, "c", 1);
	return fb_create_vector_refs(b, names, (size_t)n);
}

/* kind: which schema violation the Response carries. */
static int build_bad_response(int kind, uint8_t **out, size_t *len)
{
	fb_builder b;
	fb_builder_init(&b, FRAME_MAX);
	fb_ref cols = 0, types = 0, rows = 0, req = 0;
	fb_ref rowrefs[2];
	uint8_t status = 0;
	switch (kind) {
	case 0: /* row width 1 for 2 columns */
		cols = b_columns(&b, 2);
		rowrefs[0] = b_row(&b, 2);
		rowrefs[1] = b_row(&b, 1);
		rows = fb_create_vector_refs(&b, rowrefs, 2);
		break;
	case 1: /* rows without columns */
		rowrefs[0] = b_row(&b, 1);
		rows = fb_create_vector_refs(&b, rowrefs, 1);
		break;
	case 2: /* 1 type for 2 columns */
		cols = b_columns(&b, 2);
		types = b_columns(&b, 1);
		break;
	case 3: /* Row without its required values */
		cols = b_columns(&b, 1);
		fb_table_start(&b);
		rowrefs[0] = fb_table_end(&b);
		rows = fb_create_vector_refs(&b, rowrefs, 1);
		break;
	case 4: /* both request and response */
		fb_table_start(&b);
		req = fb_table_end(&b);
		break;
	case 5: /* status out of range */
		status = 6;
		break;
	case 6: /* a value type out of range */
		cols = b_columns(&b, 1);
		fb_table_start(&b);
		fb_add_u8(&b, 0, 5, 0);
		rowrefs[0] = fb_table_end(&b);
		rowrefs[0] = fb_create_vector_refs(&b, rowrefs, 1);
		fb_table_start(&b);
		fb_add_ref(&b, 0, rowrefs[0]);
		rowrefs[0] = fb_table_end(&b);
		rows = fb_create_vector_refs(&b, rowrefs, 1);
		break;
	}
	fb_table_start(&b);
	fb_add_ref(&b, 4, cols);
	fb_add_ref(&b, 5, types);
	fb_add_ref(&b, 6, rows);
	fb_add_u8(&b, 1, status, 0);
	fb_ref resp = fb_table_end(&b);
	fb_table_start(&b);
	fb_add_ref(&b, 0, req);
	fb_add_ref(&b, 1, resp);
	fb_ref msg = fb_table_end(&b);
	int rc = fb_builder_finish(&b, msg, "SLW1", out, len);
	fb_builder_free(&b);
	return rc;
}

static void test_schema_violations(void)
{
	static const char *const expect[] = {
		"Message.response.rows[1].values: 1 values for 2 columns at offset ",
		"Message.response.rows: 1 rows without columns at offset ",
		"Message.response.types: 1 types for 2 columns at offset ",
		"Message.response.rows[0].values: required field missing at offset ",
		"Message: both request and response present at offset ",
		"Message.response.status: Status 6 out of range 0..5 at offset ",
		"Message.response.rows[0].values[0].type: ValueType 5 out of range 0..4 at offset ",
	};
	for (int k = 0; k < (int)(sizeof(expect) / sizeof(expect[0])); k++) {
		uint8_t *buf;
		size_t len;
		wire_message m;
		if (!ok(build_bad_response(k, &buf, &len) == 0, "bad response %d builds", k))
			continue;
		err[0] = 0;
		int rc = wire_decode(buf, len, &m, err, sizeof(err));
		ok(rc < 0 && strncmp(err, expect[k], strlen(expect[k])) == 0 &&
		   m.kind == 0, "rejected: %s...", expect[k]);
		if (rc == 0)
			wire_message_free(&m);
		else if (strncmp(err, expect[k], strlen(expect[k])) != 0)
			diag("got \"%s\"", err);
		free(buf);
	}
}

/* ---- generic verifier limits ---- */

/* A chain of `depth` tables, each holding the next in field 0. */
static int build_chain(int depth, uint8_t **out, size_t *len)
{
	fb_builder b;
	fb_builder_init(&b, 1 << 20);
	fb_ref child = 0;
	for (int i = 0; i < depth; i++) {
		fb_table_start(&b);
		fb_add_ref(&b, 0, child);
		fb_add_u32(&b, 1, (uint32_t)i, 0);
		child = fb_table_end(&b);
	}
	int rc = fb_builder_finish(&b, child, NULL, out, len);
	fb_builder_free(&b);
	return rc;
}

static int verify_chain(const uint8_t *buf, size_t len, unsigned max_depth,
			int *levels)
{
	fb_verifier v;
	fb_table t, next;
	size_t marks[80];
	int rc, n = 0;
	fb_verifier_init(&v, buf, len, max_depth, 1000, err, sizeof(err));
	if (fb_verify_root(&v, NULL, "Chain", &t) < 0)
		return -1;
	for (;;) {
		n++;
		if (fb_verify_scalar(&v, &t, 1, 4, "n") < 0)
			return -1;
		rc = fb_verify_table_field(&v, &t, 0, "next", false, &next,
					   &marks[n]);
		if (rc < 0)
			return -1;
		if (rc == 0)
			break;
		t = next;
	}
	*levels = n;
	while (n > 1)
		fb_verify_leave(&v, marks[--n]);
	return 0;
}

static void test_limits(void)
{
	uint8_t *buf;
	size_t len;
	int levels = 0;
	ok(build_chain(20, &buf, &len) == 0, "chain of 20 tables builds");
	ok(verify_chain(buf, len, FB_MAX_DEPTH, &levels) == 0 && levels == 20,
	   "depth 20 verifies under the default limit");
	ok(verify_chain(buf, len, 20, &levels) == 0, "depth 20 verifies at limit 20");
	ok(verify_chain(buf, len, 19, &levels) < 0 &&
	   strstr(err, "tables nested deeper than 19") &&
	   strncmp(err, "Chain.next.next.next", 20) == 0,
	   "depth 20 rejected at limit 19 (%s)", err);
	free(buf);

	/* Shared offsets: K rows all pointing at one Row of M values all
	 * pointing at one Value.  About 4(K+M) bytes, K*(M+1) table visits. */
	enum { K = 2000, M = 2000 };
	fb_builder b;
	fb_builder_init(&b, FRAME_MAX);
	fb_ref *refs = malloc(sizeof(fb_ref) * (K > M ? K : M));
	fb_ref cols[M];
	if (!refs)
		bail("out of memory");
	fb_ref name = fb_create_string(&b, "c", 1);
	for (int i = 0; i < M; i++)
		cols[i] = name;
	fb_ref columns = fb_create_vector_refs(&b, cols, M);
	fb_ref val = b_value_int(&b, 1);
	for (int i = 0; i < M; i++)
		refs[i] = val;
	fb_ref vals = fb_create_vector_refs(&b, refs, M);
	fb_table_start(&b);
	fb_add_ref(&b, 0, vals);
	fb_ref row = fb_table_end(&b);
	for (int i = 0; i < K; i++)
		refs[i] = row;
	fb_ref rows = fb_create_vector_refs(&b, refs, K);
	fb_table_start(&b);
	fb_add_ref(&b, 4, columns);
	fb_add_ref(&b, 6, rows);
	fb_ref resp = fb_table_end(&b);
	fb_table_start(&b);
	fb_add_ref(&b, 1, resp);
	fb_ref msg = fb_table_end(&b);
	int rc = fb_builder_finish(&b, msg, "SLW1", &buf, &len);
	ok(rc == 0, "shared-offset bomb builds (%zu bytes)", len);
	fb_builder_free(&b);
	free(refs);
	wire_message m;
	char want[64];
	snprintf(want, sizeof(want), "more than %zu tables", len / 4);
	ok(wire_decode(buf, len, &m, err, sizeof(err)) < 0 && strstr(err, want),
	   "4M table visits from %zu bytes refused (%s)", len, err);
	free(buf);
}

/* ---- builder details ---- */

static void test_builder(void)
{
	uint8_t *buf;
	size_t len;
	wire_value vals[50];
	for (int i = 0; i < 50; i++)
		vals[i] = v_int(i + 1);
	wire_request q = { .params = vals, .nparams = 50 };
	int rc = wire_encode_request(&q, &buf, &len);
	if (!ok(rc == 0 && len % 8 == 0,
		"buffer size is a multiple of the largest alignment (%zu)", len))
		return;
	/* 50 Value tables of 16 bytes (soffset, type, pad, i64) and their
	 * 4-byte offsets; unshared 8-byte vtables would add 400 bytes. */
	ok(len <= 50 * 20 + 128, "Value vtables are shared (%zu bytes)", len);
	fb_table root;
	fb_root_table(buf, &root);
	ok(memcmp(buf + 4, "SLW1", 4) == 0, "file identifier at offset 4");
	ok(fb_field_off(&root, 0) != 0 && fb_field_off(&root, 1) == 0 &&
	   fb_field_off(&root, 40) == 0, "Message has request only");
	free(buf);

	/* Defaults are elided: an all-default request is just the tables. */
	q = (wire_request){ 0 };
	rc = wire_encode_request(&q, &buf, &len);
	ok(rc == 0 && len <= 32,
	   "all-default request is tiny (%zu bytes)", len);
	free(buf);

	/* Misuse is sticky and reported at finish. */
	fb_builder b;
	fb_builder_init(&b, 1024);
	fb_table_start(&b);
	fb_create_string(&b, "x", 1); /* not allowed inside a table */
	fb_ref t = fb_table_end(&b);
	ok(fb_builder_finish(&b, t, NULL, &buf, &len) < 0 && buf == NULL,
	   "string inside an open table fails the build");
	fb_builder_free(&b);
	fb_builder_init(&b, 1024);
	fb_table_start(&b);
	fb_add_u32(&b, 3, 1, 0);
	fb_add_u32(&b, 3, 2, 0);
	t = fb_table_end(&b);
	ok(fb_builder_finish(&b, t, NULL, &buf, &len) < 0, "a field added twice fails");
	fb_builder_free(&b);
	fb_builder_init(&b, 64);
	fb_create_string(&b, "0123456789012345678901234567890123456789"
			     "0123456789012345678901234567890123456789", 80);
	fb_table_start(&b);
	t = fb_table_end(&b);
	ok(fb_builder_finish(&b, t, NULL, &buf, &len) < 0, "max_size enforced");
	fb_builder_free(&b);
}

/* ---- frames ---- */

static void frame_push(uint8_t **s, size_t *n, const void *p, uint32_t len)
{
	*s = realloc(*s, *n + FRAME_HEADER + len);
	if (!*s)
		bail("out of memory");
	frame_header_put(*s + *n, len);
	memcpy(*s + *n + FRAME_HEADER, p, len);
	*n += FRAME_HEADER + len;
}

static void test_frames(void)
{
	uint8_t hdr[4];
	frame_header_put(hdr, 0x01020304);
	ok(hdr[0] == 4 && hdr[1] == 3 && hdr[2] == 2 && hdr[3] == 1 &&
	   frame_header_get(hdr) == 0x01020304, "header is u32 little-endian");

	/* A stream of three wire messages and a 1-byte frame. */
	uint8_t *stream = NULL;
	size_t slen = 0;
	uint8_t *msgs[3];
	size_t mlen[3];
	wire_request q = { .id = 1, .op = WIRE_OP_EXEC, .sql = "SELECT 1", .sql_len = 8 };
	wire_response r = { .id = 1, .changes = 2 };
	wire_request p = { .id = 2, .op = WIRE_OP_PING };
	if (wire_encode_request(&q, &msgs[0], &mlen[0]) ||
	    wire_encode_response(&r, &msgs[1], &mlen[1]) ||
	    wire_encode_request(&p, &msgs[2], &mlen[2]))
		bail("encode failed");
	for (int i = 0; i < 3; i++)
		frame_push(&stream, &slen, msgs[i], (uint32_t)mlen[i]);
	frame_push(&stream, &slen, "!", 1);

	/* Byte by byte: each frame appears exactly when its last byte does. */
	frame_reader fr;
	frame_reader_init(&fr);
	const uint8_t *pl;
	size_t plen, ends[4], got = 0;
	bool order = true, early = false;
	size_t at = 0;
	for (int i = 0; i < 4; i++) {
		at += FRAME_HEADER + (i < 3 ? mlen[i] : 1);
		ends[i] = at;
	}
	for (size_t i = 0; i < slen; i++) {
		frame_reader_feed(&fr, stream + i, 1);
		int rc;
		while ((rc = frame_reader_next(&fr, &pl, &plen, err, sizeof(err))) == 1) {
			if (got >= 4 || ends[got] != i + 1)
				early = true;
			size_t want = got < 3 ? mlen[got] : 1;
			const uint8_t *wp = got < 3 ? msgs[got] : (const uint8_t *)"!";
			if (plen != want || memcmp(pl, wp, want) != 0)
				order = false;
			got++;
		}
		if (rc < 0)
			early = true;
	}
	ok(got == 4 && order && !early, "byte-by-byte: 4 frames, in order, on time");
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 0 &&
	   pl == NULL && plen == 0, "then no more frames");
	frame_reader_free(&fr);

	/* The whole stream in one feed; frames decode. */
	frame_reader_init(&fr);
	ok(frame_reader_feed(&fr, stream, slen) == 0, "one feed of %zu bytes", slen);
	int decoded = 0;
	for (int i = 0; i < 3; i++) {
		wire_message m;
		if (frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 1 &&
		    wire_decode(pl, plen, &m, err, sizeof(err)) == 0) {
			decoded += (i == 1) == (m.kind == WIRE_MSG_RESPONSE);
			wire_message_free(&m);
		}
	}
	ok(decoded == 3, "three frames from one feed decode");
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 1 && plen == 1 &&
	   pl[0] == '!', "fourth frame of 1 byte");
	ok(fr.off == fr.len, "everything consumed");
	ok(frame_reader_feed(&fr, "", 0) == 0 &&
	   frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 0,
	   "feeding 0 bytes is harmless");
	frame_reader_free(&fr);

	/* Frames fed split across a header: 2 + rest. */
	frame_reader_init(&fr);
	frame_reader_feed(&fr, stream, 2);
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 0, "half a header: wait");
	frame_reader_feed(&fr, stream + 2, FRAME_HEADER + mlen[0] - 3);
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 0, "one byte short: wait");
	frame_reader_feed(&fr, stream + FRAME_HEADER + mlen[0] - 1, 6);
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 1 && plen == mlen[0] &&
	   memcmp(pl, msgs[0], plen) == 0, "complete: frame");
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 0, "next partial: wait");
	frame_reader_feed(&fr, stream + FRAME_HEADER + mlen[0] + 5,
			  slen - (FRAME_HEADER + mlen[0] + 5));
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 1 && plen == mlen[1] &&
	   memcmp(pl, msgs[1], plen) == 0, "after compaction: next frame intact");
	frame_reader_free(&fr);

	/* Length 0 poisons the stream, reported on every call. */
	frame_reader_init(&fr);
	uint8_t zero[8] = { 0 };
	frame_reader_feed(&fr, zero, sizeof(zero));
	err[0] = 0;
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) < 0 &&
	   strcmp(err, "frame header: length 0 is empty (must be 1..16777216)") == 0,
	   "length 0 rejected (%s)", err);
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) < 0,
	   "and still rejected on the next call");
	frame_reader_free(&fr);

	/* Oversize lengths: rejected from the header alone. */
	uint32_t bad[] = { FRAME_MAX + 1, UINT32_MAX };
	for (int i = 0; i < 2; i++) {
		frame_reader_init(&fr);
		frame_header_put(hdr, bad[i]);
		frame_reader_feed(&fr, hdr, 4);
		err[0] = 0;
		ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) < 0 &&
		   strstr(err, "exceeds FRAME_MAX"), "length %u rejected (%s)", bad[i], err);
		frame_reader_free(&fr);
	}
	/* FRAME_MAX exactly is accepted. */
	uint8_t *max = calloc(FRAME_HEADER + FRAME_MAX, 1);
	if (!max)
		bail("out of memory");
	frame_header_put(max, FRAME_MAX);
	max[FRAME_HEADER + FRAME_MAX - 1] = 0xab;
	frame_reader_init(&fr);
	frame_reader_feed(&fr, max, FRAME_HEADER + FRAME_MAX - 1);
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 0,
	   "FRAME_MAX frame one byte short: wait");
	frame_reader_feed(&fr, max + FRAME_HEADER + FRAME_MAX - 1, 1);
	ok(frame_reader_next(&fr, &pl, &plen, err, sizeof(err)) == 1 &&
	   plen == FRAME_MAX && pl[FRAME_MAX - 1] == 0xab, "FRAME_MAX frame accepted");
	frame_reader_free(&fr);
	free(max);

	for (int i = 0; i < 3; i++)
		free(msgs[i]);
	free(stream);
}

int main(void)
{
	test_requests();
	test_responses();
	test_encode_errors();
	test_malformed();
	test_schema_violations();
	test_limits();
	test_builder();
	test_frames();
	return plan_done();
}
