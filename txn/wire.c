/*
 * wire.c — the codec for txn/wire.fbs on top of the generic txn/fb.c.
 *
 * Field ids below are the declaration order in wire.fbs and must never be
 * renumbered: they are the wire format.  Fields are added largest first so
 * tables carry the least padding; an absent field and a field equal to its
 * default mean the same thing (as in every FlatBuffers implementation).
 *
 * Invariants:
 *  - wire_decode() reads nothing from a buffer wire_verify() rejected, and
 *    wire_verify() checks every field the decoder reads.
 *  - Verification work and decode memory are linear in the buffer size: at
 *    most len/4 table visits are allowed (every honestly built table owns
 *    its 4-byte soffset, so a real message never comes near), which bounds
 *    the rows x columns a shared-offset buffer can make the decoder expand.
 *  - Encoding is the inverse of decoding for every valid struct: decode(
 *    encode(x)) == x field by field (doubles by bits, NULL vs "" strings
 *    kept), which tests/test_wire.c and fuzz/fuzz_wire.c assert.
 *
 * Value representation: TEXT always carries `s` and BLOB always carries
 * `b` (even when empty); a decoded TEXT/BLOB whose field is absent reads as
 * empty with p = "".  Fields that do not belong to the value's type are
 * verified but ignored.
 *
 * Response shape: `columns` is written when ncols > 0 or nrows > 0, so a
 * result with rows but zero columns survives; `types` when types != NULL and
 * ncols > 0.  On decode, `types` must have ncols entries when present, and
 * every Row exactly ncols values; rows without `columns` are rejected.
 */
#include "txn/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txn/fb.h"
#include "txn/frame.h"

#define WIRE_IDENT "SLW1"

enum { MSG_REQUEST = 0, MSG_RESPONSE = 1 };
enum { VAL_TYPE = 0, VAL_I = 1, VAL_R = 2, VAL_S = 3, VAL_B = 4 };
enum { ROW_VALUES = 0 };
enum {
	REQ_ID = 0, REQ_OP = 1, REQ_TXN = 2, REQ_TS = 3, REQ_SQL = 4,
	REQ_PARAMS = 5, REQ_READONLY = 6, REQ_EPOCH = 7, REQ_BUCKETS = 8, REQ_BEGIN = 9,
	REQ_STEP = 10, REQ_COMP = 11, REQ_COMP_PARAMS = 12, REQ_MODE = 13, REQ_SNAPSHOT = 14,
	REQ_UNLOCKED = 15, REQ_ENDED = 16, REQ_DECIDER = 17, REQ_EARLY = 18,
};
enum {
	RESP_ID = 0, RESP_STATUS = 1, RESP_SQLSTATE = 2, RESP_MESSAGE = 3,
	RESP_COLUMNS = 4, RESP_TYPES = 5, RESP_ROWS = 6, RESP_CHANGES = 7, RESP_WAITED = 8,
};

static const char *const op_names[] = {
	"Ping", "Exec", "Begin", "Prepare", "CommitPrepared",
	"RollbackPrepared", "Commit", "Rollback", "Status", "Assign",
	"SagaStep", "SagaUndo", "SagaEnd", "Resolve", "Forget",
};
_Static_assert(sizeof op_names / sizeof op_names[0] == WIRE_OP_MAX + 1, "a name per op");
static const char *const type_names[] = { "Null", "Int", "Real", "Text", "Blob" };
static const char *const status_names[] = { "Ok", "Error", "NotFound", "ReadOnly", "Started", "Waiting" };
_Static_assert(sizeof status_names / sizeof status_names[0] == WIRE_STATUS_MAX + 1, "a name per status");

const char *wire_op_name(wire_op op)
{
	return (unsigned)op <= WIRE_OP_MAX ? op_names[op] : "Unknown";
}

const char *wire_type_name(wire_type t)
{
	return (unsigned)t <= WIRE_BLOB ? type_names[t] : "Unknown";
}

const char *wire_status_name(wire_status s)
{
	return (unsigned)s <= WIRE_STATUS_MAX ? status_names[s] : "Unknown";
}

/* ---- encode ---- */

static bool value_ok(const wire_value *v)
{
	if ((unsigned)v->type > WIRE_BLOB)
		return false;
	if ((v->type == WIRE_TEXT || v->type == WIRE_BLOB) && !v->p && v->len)
		return false;
	return true;
}

static fb_ref encode_value(fb_builder *b, const wire_value *v)
{
	fb_ref s = 0, blob = 0;
	if (v->type == WIRE_TEXT)
		s = fb_create_string(b, v->p ? v->p : "", v->len);
	else if (v->type == WIRE_BLOB)
		blob = fb_create_vector(b, v->p, v->len, 1);
	fb_table_start(b);
	if (v->type == WIRE_INT)
		fb_add_u64(b, VAL_I, (uint64_t)v->i, 0);
	else if (v->type == WIRE_REAL)
		fb_add_f64(b, VAL_R, v->r, 0.0);
	fb_add_ref(b, VAL_S, s);
	fb_add_ref(b, VAL_B, blob);
	fb_add_u8(b, VAL_TYPE, (uint8_t)v->type, WIRE_NULL);
	return fb_table_end(b);
}

/* A vector of n Value tables; 0 on failure (builder then failed too). */
static fb_ref encode_values(fb_builder *b, const wire_value *vals, uint32_t n,
			    fb_ref *refs)
{
	for (uint32_t i = 0; i < n && !b->failed; i++)
		refs[i] = encode_value(b, &vals[i]);
	if (b->failed)
		return 0;
	return fb_create_vector_refs(b, refs, n);
}

static int encode_message(fb_builder *b, unsigned field, fb_ref body,
			  uint8_t **out, size_t *outlen)
{
	fb_table_start(b);
	fb_add_ref(b, field, body);
	fb_ref msg = fb_table_end(b);
	int rc = fb_builder_finish(b, msg, WIRE_IDENT, out, outlen);
	fb_builder_free(b);
	return rc;
}

int wire_encode_request(const wire_request *r, uint8_t **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	if ((unsigned)r->op > WIRE_OP_MAX || (!r->sql && r->sql_len) ||
	    (!r->params && r->nparams) || (!r->buckets && r->nbuckets) || (!r->ended && r->nended) ||
	    (!r->comp && r->comp_len) || (!r->comp_params && r->ncomp_params))
		return -1;
	for (uint32_t i = 0; i < r->nparams; i++)
		if (!value_ok(&r->params[i]))
			return -1;
	for (uint32_t i = 0; i < r->ncomp_params; i++)
		if (!value_ok(&r->comp_params[i]))
			return -1;

	fb_builder b;
	fb_builder_init(&b, FRAME_MAX);
	fb_ref sql = r->sql ? fb_create_string(&b, r->sql, r->sql_len) : 0;
	fb_ref comp = r->comp ? fb_create_string(&b, r->comp, r->comp_len) : 0;
	fb_ref params = 0, buckets = 0, comp_params = 0, ended = 0;
	if (r->nparams) {
		fb_ref *refs = malloc(r->nparams * sizeof(*refs));
		if (!refs)
			goto fail;
		params = encode_values(&b, r->params, r->nparams, refs);
		free(refs);
	}
	if (r->ncomp_params) {
		fb_ref *refs = malloc(r->ncomp_params * sizeof(*refs));
		if (!refs)
			goto fail;
		comp_params = encode_values(&b, r->comp_params, r->ncomp_params, refs);
		free(refs);
	}
	if (r->nbuckets)
		buckets = fb_create_vector(&b, r->buckets, r->nbuckets,
					   sizeof(uint32_t));
	if (r->nended)
		ended = fb_create_vector(&b, r->ended, r->nended, sizeof(uint64_t));
	fb_table_start(&b);
	fb_add_u64(&b, REQ_ID, r->id, 0);
	fb_add_u64(&b, REQ_TXN, r->txn, 0);
	fb_add_u64(&b, REQ_TS, r->ts, 0);
	fb_add_u64(&b, REQ_EPOCH, r->epoch, 0);
	fb_add_ref(&b, REQ_SQL, sql);
	fb_add_ref(&b, REQ_PARAMS, params);
	fb_add_ref(&b, REQ_BUCKETS, buckets);
	fb_add_ref(&b, REQ_ENDED, ended);
	fb_add_ref(&b, REQ_COMP, comp);
	fb_add_ref(&b, REQ_COMP_PARAMS, comp_params);
	fb_add_u32(&b, REQ_STEP, r->step, 0);
	fb_add_u32(&b, REQ_DECIDER, r->decider, 0);
	fb_add_u8(&b, REQ_OP, (uint8_t)r->op, WIRE_OP_PING);
	fb_add_u8(&b, REQ_READONLY, r->readonly ? 1 : 0, 0);
	fb_add_u8(&b, REQ_BEGIN, r->begin ? 1 : 0, 0);
	fb_add_u8(&b, REQ_MODE, r->mode, 0);
	fb_add_u8(&b, REQ_SNAPSHOT, r->snapshot ? 1 : 0, 0);
	fb_add_u8(&b, REQ_UNLOCKED, r->unlocked ? 1 : 0, 0);
	fb_add_u8(&b, REQ_EARLY, r->early ? 1 : 0, 0);
	fb_ref req = fb_table_end(&b);
	return encode_message(&b, MSG_REQUEST, req, out, outlen);
fail:
	fb_builder_free(&b);
	return -1;
}

/* A vector of n strings (NULL entries written as ""). */
static fb_ref encode_strings(fb_builder *b, const char *const *s, uint32_t n,
			     fb_ref *refs)
{
	for (uint32_t i = 0; i < n && !b->failed; i++) {
		const char *p = s[i] ? s[i] : "";
		refs[i] = fb_create_string(b, p, strlen(p));
	}
	if (b->failed)
		return 0;
	return fb_create_vector_refs(b, refs, n);
}

int wire_encode_response(const wire_response *r, uint8_t **out,
			 size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	if ((unsigned)r->status > WIRE_STATUS_MAX || (!r->columns && r->ncols) ||
	    (!r->cells && r->ncols && r->nrows))
		return -1;
	size_t ncells = (size_t)r->nrows * r->ncols;
	for (size_t i = 0; i < ncells; i++)
		if (!value_ok(&r->cells[i]))
			return -1;

	fb_builder b;
	fb_builder_init(&b, FRAME_MAX);
	fb_ref *refs = NULL, *rowrefs = NULL;
	fb_ref sqlstate = 0, message = 0, columns = 0, types = 0, rows = 0;
	if (r->sqlstate)
		sqlstate = fb_create_string(&b, r->sqlstate, strlen(r->sqlstate));
	if (r->message)
		message = fb_create_string(&b, r->message, strlen(r->message));
	refs = malloc((r->ncols ? r->ncols : 1) * sizeof(*refs));
	if (!refs)
		goto fail;
	if (r->ncols || r->nrows)
		columns = encode_strings(&b, r->columns, r->ncols, refs);
	if (r->types && r->ncols)
		types = encode_strings(&b, r->types, r->ncols, refs);
	if (r->nrows) {
		rowrefs = malloc(r->nrows * sizeof(*rowrefs));
		if (!rowrefs)
			goto fail;
		for (uint32_t i = 0; i < r->nrows && !b.failed; i++) {
			fb_ref vals = encode_values(
				&b, r->cells ? r->cells + (size_t)i * r->ncols : NULL,
				r->ncols, refs);
			fb_table_start(&b);
			fb_add_ref(&b, ROW_VALUES, vals);
			rowrefs[i] = fb_table_end(&b);
		}
		if (!b.failed)
			rows = fb_create_vector_refs(&b, rowrefs, r->nrows);
	}
	free(refs);
	free(rowrefs);
	fb_table_start(&b);
	fb_add_u64(&b, RESP_ID, r->id, 0);
	fb_add_u64(&b, RESP_CHANGES, (uint64_t)r->changes, 0);
	fb_add_ref(&b, RESP_SQLSTATE, sqlstate);
	fb_add_ref(&b, RESP_MESSAGE, message);
	fb_add_ref(&b, RESP_COLUMNS, columns);
	fb_add_ref(&b, RESP_TYPES, types);
	fb_add_ref(&b, RESP_ROWS, rows);
	fb_add_u8(&b, RESP_STATUS, (uint8_t)r->status, WIRE_OK);
	fb_add_u8(&b, RESP_WAITED, r->waited ? 1 : 0, 0);
	fb_ref resp = fb_table_end(&b);
	return encode_message(&b, MSG_RESPONSE, resp, out, outlen);
fail:
	free(refs);
	free(rowrefs);
	fb_builder_free(&b);
	return -1;
}

/* ---- verify ---- */

/* A ubyte enum field in 0..max. */
static int verify_enum(fb_verifier *v, const fb_table *t, unsigned id,
		       const char *name, const char *type, unsigned max)
{
	if (fb_verify_scalar(v, t, id, 1, name) < 0)
		return -1;
	unsigned x = fb_table_u8(t, id, 0);
	if (x > max)
		return fb_fail(v, name, t->pos + (size_t)fb_field_off(t, id),
			       "%s %u out of range 0..%u", type, x, max);
	return 0;
}

static int verify_value(fb_verifier *v, const fb_table *t)
{
	fb_vec blob;
	if (verify_enum(v, t, VAL_TYPE, "type", "ValueType", WIRE_BLOB) < 0 ||
	    fb_verify_scalar(v, t, VAL_I, 8, "i") < 0 ||
	    fb_verify_scalar(v, t, VAL_R, 8, "r") < 0 ||
	    fb_verify_string(v, t, VAL_S, "s", false) < 0 ||
	    fb_verify_vector(v, t, VAL_B, 1, "b", false, &blob) < 0)
		return -1;
	return 0;
}

/* Vector field `name` of t holding Value tables. */
static int verify_values(fb_verifier *v, const fb_table *t, unsigned id,
			 const char *name, bool required)
{
	fb_vec vec;
	if (fb_verify_vector(v, t, id, 4, name, required, &vec) < 0)
		return -1;
	size_t vmark = fb_path_push(v, ".%s", name);
	for (uint32_t i = 0; i < vec.n; i++) {
		fb_table val;
		size_t mark;
		if (fb_verify_vec_table(v, &vec, i, &val, &mark) < 0)
			goto fail;
		int rc = verify_value(v, &val);
		fb_verify_leave(v, mark);
		if (rc < 0)
			goto fail;
	}
	fb_path_pop(v, vmark);
	return 0;
fail:
	fb_path_pop(v, vmark);
	return -1;
}

static int verify_request(fb_verifier *v, const fb_table *t)
{
	fb_vec buckets, ended;
	if (fb_verify_scalar(v, t, REQ_ID, 8, "id") < 0 ||
	    verify_enum(v, t, REQ_OP, "op", "Op", WIRE_OP_MAX) < 0 ||
	    fb_verify_scalar(v, t, REQ_TXN, 8, "txn") < 0 ||
	    fb_verify_scalar(v, t, REQ_TS, 8, "ts") < 0 ||
	    fb_verify_string(v, t, REQ_SQL, "sql", false) < 0 ||
	    verify_values(v, t, REQ_PARAMS, "params", false) < 0 ||
	    fb_verify_scalar(v, t, REQ_READONLY, 1, "readonly") < 0 ||
	    fb_verify_scalar(v, t, REQ_EPOCH, 8, "epoch") < 0 ||
	    fb_verify_vector(v, t, REQ_BUCKETS, 4, "buckets", false, &buckets) < 0 ||
	    fb_verify_scalar(v, t, REQ_BEGIN, 1, "begin") < 0 ||
	    fb_verify_scalar(v, t, REQ_STEP, 4, "step") < 0 ||
	    fb_verify_string(v, t, REQ_COMP, "comp", false) < 0 ||
	    verify_values(v, t, REQ_COMP_PARAMS, "comp_params", false) < 0 ||
	    fb_verify_scalar(v, t, REQ_MODE, 1, "mode") < 0 ||
	    fb_verify_scalar(v, t, REQ_SNAPSHOT, 1, "snapshot") < 0 ||
	    fb_verify_scalar(v, t, REQ_UNLOCKED, 1, "unlocked") < 0 ||
	    fb_verify_vector(v, t, REQ_ENDED, 8, "ended", false, &ended) < 0 ||
	    fb_verify_scalar(v, t, REQ_DECIDER, 4, "decider") < 0 ||
	    fb_verify_scalar(v, t, REQ_EARLY, 1, "early") < 0)
		return -1;
	return 0;
}

static int verify_rows(fb_verifier *v, const fb_table *t)
{
	fb_vec rows;
	if (fb_verify_vector(v, t, RESP_ROWS, 4, "rows", false, &rows) < 0)
		return -1;
	size_t vmark = fb_path_push(v, ".rows");
	for (uint32_t i = 0; i < rows.n; i++) {
		fb_table row;
		size_t mark;
		if (fb_verify_vec_table(v, &rows, i, &row, &mark) < 0)
			goto fail;
		int rc = verify_values(v, &row, ROW_VALUES, "values", true);
		fb_verify_leave(v, mark);
		if (rc < 0)
			goto fail;
	}
	fb_path_pop(v, vmark);
	return 0;
fail:
	fb_path_pop(v, vmark);
	return -1;
}

static int verify_response(fb_verifier *v, const fb_table *t)
{
	fb_vec columns, types;
	if (fb_verify_scalar(v, t, RESP_ID, 8, "id") < 0 ||
	    verify_enum(v, t, RESP_STATUS, "status", "Status", WIRE_STATUS_MAX) < 0 ||
	    fb_verify_string(v, t, RESP_SQLSTATE, "sqlstate", false) < 0 ||
	    fb_verify_string(v, t, RESP_MESSAGE, "message", false) < 0 ||
	    fb_verify_vector(v, t, RESP_COLUMNS, 4, "columns", false, &columns) < 0 ||
	    fb_verify_vec_strings(v, &columns, "columns") < 0 ||
	    fb_verify_vector(v, t, RESP_TYPES, 4, "types", false, &types) < 0 ||
	    fb_verify_vec_strings(v, &types, "types") < 0 ||
	    verify_rows(v, t) < 0 ||
	    fb_verify_scalar(v, t, RESP_CHANGES, 8, "changes") < 0 ||
	    fb_verify_scalar(v, t, RESP_WAITED, 1, "waited") < 0)
		return -1;
	return 0;
}

int wire_verify(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	fb_verifier v;
	fb_table root, body;
	size_t mark;
	int rc;

	fb_verifier_init(&v, buf, len, FB_MAX_DEPTH, len / 4, err, errlen);
	if (len > FRAME_MAX) {
		fb_path_push(&v, "Message");
		return fb_fail(&v, NULL, 0, "buffer of %zu bytes exceeds FRAME_MAX (%u)",
			       len, FRAME_MAX);
	}
	if (fb_verify_root(&v, WIRE_IDENT, "Message", &root) < 0)
		return -1;
	rc = fb_verify_table_field(&v, &root, MSG_REQUEST, "request", false,
				   &body, &mark);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		rc = verify_request(&v, &body);
		fb_verify_leave(&v, mark);
		if (rc < 0)
			return -1;
	}
	rc = fb_verify_table_field(&v, &root, MSG_RESPONSE, "response", false,
				   &body, &mark);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		rc = verify_response(&v, &body);
		fb_verify_leave(&v, mark);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ---- decode (verified buffers only) ---- */

static int decode_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int decode_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void decode_value(const fb_table *t, wire_value *out)
{
	fb_vec blob;
	uint32_t len;
	const char *s;

	memset(out, 0, sizeof(*out));
	out->type = (wire_type)fb_table_u8(t, VAL_TYPE, WIRE_NULL);
	switch (out->type) {
	case WIRE_INT:
		out->i = (int64_t)fb_table_u64(t, VAL_I, 0);
		break;
	case WIRE_REAL:
		out->r = fb_table_f64(t, VAL_R, 0.0);
		break;
	case WIRE_TEXT:
		out->p = "";
		if (fb_table_string(t, VAL_S, &s, &len)) {
			out->p = s;
			out->len = len;
		}
		break;
	case WIRE_BLOB:
		out->p = "";
		if (fb_table_vec(t, VAL_B, &blob)) {
			out->p = fb_vec_data(&blob);
			out->len = blob.n;
		}
		break;
	case WIRE_NULL:
		break;
	}
}

static void decode_values(const fb_vec *vec, wire_value *out)
{
	for (uint32_t i = 0; i < vec->n; i++) {
		fb_table t;
		fb_vec_table(vec, i, &t);
		decode_value(&t, &out[i]);
	}
}

static int decode_request(const fb_table *t, wire_request *r, char *err,
			  size_t errlen)
{
	fb_vec vec;
	r->id = fb_table_u64(t, REQ_ID, 0);
	r->op = (wire_op)fb_table_u8(t, REQ_OP, WIRE_OP_PING);
	r->txn = fb_table_u64(t, REQ_TXN, 0);
	r->ts = fb_table_u64(t, REQ_TS, 0);
	r->epoch = fb_table_u64(t, REQ_EPOCH, 0);
	r->readonly = fb_table_u8(t, REQ_READONLY, 0) != 0;
	r->begin = fb_table_u8(t, REQ_BEGIN, 0) != 0;
	r->step = fb_table_u32(t, REQ_STEP, 0);
	r->decider = fb_table_u32(t, REQ_DECIDER, 0);
	r->mode = fb_table_u8(t, REQ_MODE, 0);
	r->snapshot = fb_table_u8(t, REQ_SNAPSHOT, 0) != 0;
	r->unlocked = fb_table_u8(t, REQ_UNLOCKED, 0) != 0;
	r->early = fb_table_u8(t, REQ_EARLY, 0) != 0;
	if (!fb_table_string(t, REQ_SQL, &r->sql, &r->sql_len)) {
		r->sql = NULL;
		r->sql_len = 0;
	}
	if (!fb_table_string(t, REQ_COMP, &r->comp, &r->comp_len)) {
		r->comp = NULL;
		r->comp_len = 0;
	}
	if (fb_table_vec(t, REQ_COMP_PARAMS, &vec) && vec.n) {
		r->comp_params = calloc(vec.n, sizeof(*r->comp_params));
		if (!r->comp_params)
			return decode_fail(err, errlen, "Message.request.comp_params: "
					   "out of memory for %u values", vec.n);
		r->ncomp_params = vec.n;
		decode_values(&vec, r->comp_params);
	}
	if (fb_table_vec(t, REQ_PARAMS, &vec) && vec.n) {
		r->params = calloc(vec.n, sizeof(*r->params));
		if (!r->params)
			return decode_fail(err, errlen, "Message.request.params: "
					   "out of memory for %u values", vec.n);
		r->nparams = vec.n;
		decode_values(&vec, r->params);
	}
	if (fb_table_vec(t, REQ_BUCKETS, &vec) && vec.n) {
		r->buckets = malloc(vec.n * sizeof(*r->buckets));
		if (!r->buckets)
			return decode_fail(err, errlen, "Message.request.buckets: "
					   "out of memory for %u buckets", vec.n);
		r->nbuckets = vec.n;
		for (uint32_t i = 0; i < vec.n; i++)
			r->buckets[i] = fb_vec_u32(&vec, i);
	}
	if (fb_table_vec(t, REQ_ENDED, &vec) && vec.n) {
		r->ended = malloc(vec.n * sizeof(*r->ended));
		if (!r->ended)
			return decode_fail(err, errlen, "Message.request.ended: "
					   "out of memory for %u sagas", vec.n);
		r->nended = vec.n;
		const uint8_t *d = fb_vec_data(&vec);
		for (uint32_t i = 0; i < vec.n; i++)
			r->ended[i] = fb_get_u64(d + (size_t)i * 8);
	}
	return 0;
}

static const char **decode_strings(const fb_vec *vec)
{
	const char **s = malloc(vec->n * sizeof(*s));
	if (!s)
		return NULL;
	for (uint32_t i = 0; i < vec->n; i++) {
		uint32_t len;
		s[i] = fb_vec_string(vec, i, &len);
	}
	return s;
}

static int decode_response(const fb_table *t, wire_response *r, char *err,
			   size_t errlen)
{
	fb_vec columns, types, rows;
	bool has_columns, has_types, has_rows;
	uint32_t len;

	r->id = fb_table_u64(t, RESP_ID, 0);
	r->status = (wire_status)fb_table_u8(t, RESP_STATUS, WIRE_OK);
	r->changes = (int64_t)fb_table_u64(t, RESP_CHANGES, 0);
	r->waited = fb_table_u8(t, RESP_WAITED, 0) != 0;
	if (!fb_table_string(t, RESP_SQLSTATE, &r->sqlstate, &len))
		r->sqlstate = NULL;
	if (!fb_table_string(t, RESP_MESSAGE, &r->message, &len))
		r->message = NULL;

	has_columns = fb_table_vec(t, RESP_COLUMNS, &columns);
	has_types = fb_table_vec(t, RESP_TYPES, &types);
	has_rows = fb_table_vec(t, RESP_ROWS, &rows);
	uint32_t ncols = has_columns ? columns.n : 0;
	if (has_types && types.n != ncols)
		return decode_fail(err, errlen, "Message.response.types: %u types "
				   "for %u columns at offset %u", types.n, ncols,
				   types.pos - 4);
	if (has_rows && rows.n && !has_columns)
		return decode_fail(err, errlen, "Message.response.rows: %u rows "
				   "without columns at offset %u", rows.n,
				   rows.pos - 4);
	if (has_rows) {
		/* Widths first: the cell array is sized by them. */
		for (uint32_t i = 0; i < rows.n; i++) {
			fb_table row;
			fb_vec vals;
			fb_vec_table(&rows, i, &row);
			fb_table_vec(&row, ROW_VALUES, &vals); /* required */
			if (vals.n != ncols)
				return decode_fail(err, errlen,
					"Message.response.rows[%u].values: %u "
					"values for %u columns at offset %u",
					i, vals.n, ncols, vals.pos - 4);
		}
	}
	if (ncols) {
		r->columns = decode_strings(&columns);
		if (!r->columns)
			return decode_fail(err, errlen, "Message.response.columns: "
					   "out of memory for %u columns", ncols);
		r->ncols = ncols;
		if (has_types) {
			r->types = decode_strings(&types);
			if (!r->types)
				return decode_fail(err, errlen,
					"Message.response.types: out of memory "
					"for %u types", ncols);
		}
	}
	if (has_rows && rows.n) {
		size_t ncells = (size_t)rows.n * ncols;
		if (ncols && rows.n > SIZE_MAX / sizeof(wire_value) / ncols)
			return decode_fail(err, errlen, "Message.response.rows: "
					   "%u x %u cells too many", rows.n, ncols);
		if (ncells) {
			r->cells = calloc(ncells, sizeof(*r->cells));
			if (!r->cells)
				return decode_fail(err, errlen,
					"Message.response.rows: out of memory "
					"for %zu cells", ncells);
		}
		r->nrows = rows.n;
		for (uint32_t i = 0; i < rows.n && ncols; i++) {
			fb_table row;
			fb_vec vals;
			fb_vec_table(&rows, i, &row);
			fb_table_vec(&row, ROW_VALUES, &vals);
			decode_values(&vals, r->cells + (size_t)i * ncols);
		}
	}
	return 0;
}

int wire_decode(const uint8_t *buf, size_t len, wire_message *msg,
		char *err, size_t errlen)
{
	fb_table root, req, resp;
	int rc;

	memset(msg, 0, sizeof(*msg));
	if (wire_verify(buf, len, err, errlen) < 0)
		return -1;
	fb_root_table(buf, &root);
	bool has_req = fb_table_table(&root, MSG_REQUEST, &req);
	bool has_resp = fb_table_table(&root, MSG_RESPONSE, &resp);
	if (has_req && has_resp)
		return decode_fail(err, errlen, "Message: both request and "
				   "response present at offset %u", root.pos);
	if (!has_req && !has_resp)
		return decode_fail(err, errlen, "Message: neither request nor "
				   "response present at offset %u", root.pos);
	if (has_req) {
		msg->kind = WIRE_MSG_REQUEST;
		rc = decode_request(&req, &msg->req, err, errlen);
	} else {
		msg->kind = WIRE_MSG_RESPONSE;
		rc = decode_response(&resp, &msg->resp, err, errlen);
	}
	if (rc < 0) {
		wire_message_free(msg);
		return -1;
	}
	return 0;
}

void wire_message_free(wire_message *msg)
{
	free(msg->req.params);
	free(msg->req.buckets);
	free(msg->req.ended);
	free(msg->req.comp_params);
	free(msg->resp.columns);
	free(msg->resp.types);
	free(msg->resp.cells);
	memset(msg, 0, sizeof(*msg));
}

/* ---- equality ---- */

bool wire_value_equal(const wire_value *a, const wire_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case WIRE_INT:
		return a->i == b->i;
	case WIRE_REAL:
		return memcmp(&a->r, &b->r, sizeof(a->r)) == 0;
	case WIRE_TEXT:
	case WIRE_BLOB:
		return a->len == b->len &&
		       (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
	default:
		return true;
	}
}

static bool cstr_equal(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool request_equal(const wire_request *a, const wire_request *b)
{
	if (a->id != b->id || a->op != b->op || a->txn != b->txn ||
	    a->ts != b->ts || a->epoch != b->epoch ||
	    a->readonly != b->readonly || a->begin != b->begin || a->snapshot != b->snapshot ||
	    a->unlocked != b->unlocked || a->early != b->early ||
	    a->nparams != b->nparams ||
	    a->nbuckets != b->nbuckets || a->nended != b->nended || !a->sql != !b->sql ||
	    a->sql_len != b->sql_len || a->step != b->step || a->decider != b->decider || a->mode != b->mode ||
	    !a->comp != !b->comp || a->comp_len != b->comp_len || a->ncomp_params != b->ncomp_params)
		return false;
	if (a->sql && a->sql_len && memcmp(a->sql, b->sql, a->sql_len) != 0)
		return false;
	if (a->comp && a->comp_len && memcmp(a->comp, b->comp, a->comp_len) != 0)
		return false;
	for (uint32_t i = 0; i < a->ncomp_params; i++)
		if (!wire_value_equal(&a->comp_params[i], &b->comp_params[i]))
			return false;
	for (uint32_t i = 0; i < a->nparams; i++)
		if (!wire_value_equal(&a->params[i], &b->params[i]))
			return false;
	for (uint32_t i = 0; i < a->nbuckets; i++)
		if (a->buckets[i] != b->buckets[i])
			return false;
	for (uint32_t i = 0; i < a->nended; i++)
		if (a->ended[i] != b->ended[i])
			return false;
	return true;
}

static bool response_equal(const wire_response *a, const wire_response *b)
{
	if (a->id != b->id || a->status != b->status ||
	    a->changes != b->changes || a->waited != b->waited || a->ncols != b->ncols ||
	    a->nrows != b->nrows || !cstr_equal(a->sqlstate, b->sqlstate) ||
	    !cstr_equal(a->message, b->message) || !a->types != !b->types)
		return false;
	for (uint32_t c = 0; c < a->ncols; c++)
		if (!cstr_equal(a->columns[c], b->columns[c]) ||
		    (a->types && !cstr_equal(a->types[c], b->types[c])))
			return false;
	size_t ncells = (size_t)a->nrows * a->ncols;
	for (size_t i = 0; i < ncells; i++)
		if (!wire_value_equal(&a->cells[i], &b->cells[i]))
			return false;
	return true;
}

bool wire_message_equal(const wire_message *a, const wire_message *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == WIRE_MSG_REQUEST)
		return request_equal(&a->req, &b->req);
	if (a->kind == WIRE_MSG_RESPONSE)
		return response_equal(&a->resp, &b->resp);
	return true;
}
