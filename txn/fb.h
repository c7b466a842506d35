/*
 * fb.h — schema-agnostic FlatBuffers primitives: builder, reader, verifier.
 *
 * flatcc is not packaged in Debian, so shardlite carries this small codec;
 * txn/wire.c applies it to txn/wire.fbs and tests/wire_flatc.sh checks the
 * result against the official implementation (flatc).  Only what the wire
 * schema needs is here: tables of scalars and references, strings, vectors
 * of scalars and of references.  No structs, unions or nested buffers.
 *
 * Binary layout (all integers little-endian; positions are byte offsets from
 * the start of the buffer, and every alignment is relative to that start):
 *
 *   Buffer
 *   offset  size  field
 *   0       4     uoffset of the root table (target = 0 + value)
 *   4       4     file identifier, 4 bytes (optional; "SLW1" for the wire)
 *   ...           tables, vtables, strings, vectors, in any order
 *
 *   Table at T (T % 4 == 0)
 *   T+0     4     soffset: the table's vtable is at T - soffset (signed: a
 *                 vtable may lie before or after its table, and be shared)
 *   T+4     ...   fields, each aligned to its own size, where the vtable says
 *
 *   Vtable at V (V % 2 == 0)
 *   V+0     2     vtable size in bytes, 4 + 2 * nslots (even, >= 4)
 *   V+2     2     table inline size in bytes, soffset included (>= 4)
 *   V+4+2i  2     offset of field id i from T; 0 = absent (default applies).
 *                 Ids past nslots are absent too (older writer).
 *
 *   Reference field at F (F % 4 == 0)
 *   F+0     4     uoffset: the string/vector/table is at F + value (> F)
 *
 *   String at S (S % 4 == 0)
 *   S+0     4     length n in bytes, NUL excluded
 *   S+4     n     bytes (UTF-8 by convention, not checked)
 *   S+4+n   1     NUL
 *
 *   Vector at W (W % 4 == 0 and W+4 aligned to the element size)
 *   W+0     4     element count n
 *   W+4     n*e   elements: scalars, or uoffsets each relative to its own
 *                 position (vectors of strings and of tables)
 *
 * Builder invariants.  The buffer is built back to front, as the official
 * implementation does: objects are appended at the front of the storage, so
 * a reference (fb_ref) is the object's distance from the END of the buffer,
 * which does not change as the buffer grows.  A child is always written
 * before its parent, so every uoffset points forward.  Alignment is tracked
 * relative to the end; fb_builder_finish() pads the front so the total size
 * is a multiple of the largest alignment used, which makes end-relative and
 * start-relative alignment agree.  Only one table is open at a time, and
 * strings/vectors/child tables must be made before their parent is started.
 * Any failure (out of memory, size limit, misuse) is sticky: every later
 * call is a no-op and fb_builder_finish() reports it.
 *
 * Scalar default elision: fb_add_*() omit a field equal to its default
 * (doubles compare by bits, so -0.0 and NaN are always written).
 * Identical vtables are shared among the last FB_VTABLE_DEDUP ones written.
 *
 * Reader invariant: fb_root_table() and the fb_table_* / fb_vec_* readers
 * do no bounds checks of their own; they may only be used on a buffer that
 * fb's verifier (driven by a schema, see txn/wire.c) has accepted, and only
 * for fields the verifier checked.
 *
 * Verifier hard limits, to bound the work on hostile input: buffers under
 * FB_MAX_BUFFER bytes, nesting at most max_depth tables deep (FB_MAX_DEPTH
 * by default), at most max_tables table visits in total (a table reached
 * twice through shared offsets counts twice).  Every error names the field
 * path and the buffer offset: "Message.request.sql: string not
 * NUL-terminated at offset 1234".
 */
#ifndef SHARDLITE_FB_H
#define SHARDLITE_FB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FB_MAX_BUFFER 0x7fffffffu /* FlatBuffers' own limit: 2 GiB - 1 */
#define FB_MAX_DEPTH 64u          /* default nesting limit */
#define FB_MAX_FIELDS 64u         /* builder: field ids 0..63 */
#define FB_VTABLE_DEDUP 32u       /* builder: vtables remembered for sharing */
#define FB_IDENT_LEN 4u
#define FB_PATH_MAX 256u          /* verifier: longest field path kept */

/* ---- little-endian scalar access (any alignment, any host) ---- */

static inline uint16_t fb_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t fb_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t fb_get_u64(const uint8_t *p)
{
	return (uint64_t)fb_get_u32(p) | (uint64_t)fb_get_u32(p + 4) << 32;
}

static inline void fb_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void fb_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void fb_put_u64(uint8_t *p, uint64_t v)
{
	fb_put_u32(p, (uint32_t)v);
	fb_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* ---- builder ---- */

/* Distance of a finished object from the end of the buffer; 0 = none. */
typedef uint32_t fb_ref;

typedef struct {
	uint8_t *buf;        /* storage; the built bytes are buf[cap-size, cap) */
	size_t cap;
	size_t size;         /* bytes built so far */
	size_t max_size;     /* fail rather than grow past this */
	size_t minalign;     /* largest alignment used so far */
	bool failed;         /* sticky */
	bool in_table;
	size_t table_start;  /* size when the open table was started */
	uint64_t field_set;  /* ids added to the open table */
	unsigned nfields;
	struct {
		uint16_t id;
		uint32_t ref;  /* field's distance from the end */
	} fields[FB_MAX_FIELDS];
	unsigned nvtables;   /* vtables remembered, ring of FB_VTABLE_DEDUP */
	uint32_t vtables[FB_VTABLE_DEDUP];
} fb_builder;

/* max_size: the largest finished buffer accepted (at most FB_MAX_BUFFER). */
void fb_builder_init(fb_builder *b, size_t max_size);
void fb_builder_free(fb_builder *b);

/* A string of len bytes (a NUL is appended).  Returns 0 on failure. */
fb_ref fb_create_string(fb_builder *b, const void *s, size_t len);

/* A vector of n host-order scalars of elemsize 1, 2, 4 or 8 bytes, stored
 * little-endian and aligned to elemsize.  Returns 0 on failure. */
fb_ref fb_create_vector(fb_builder *b, const void *elems, size_t n,
			size_t elemsize);

/* A vector of n references (strings or tables).  Returns 0 on failure. */
fb_ref fb_create_vector_refs(fb_builder *b, const fb_ref *refs, size_t n);

void fb_table_start(fb_builder *b);
/* Add a field to the open table unless it equals its default.  Larger
 * scalars first wastes the least padding. */
void fb_add_u8(fb_builder *b, unsigned id, uint8_t v, uint8_t def);
void fb_add_u32(fb_builder *b, unsigned id, uint32_t v, uint32_t def);
void fb_add_u64(fb_builder *b, unsigned id, uint64_t v, uint64_t def);
void fb_add_f64(fb_builder *b, unsigned id, double v, double def);
/* A reference field; ref 0 adds nothing (absent). */
void fb_add_ref(fb_builder *b, unsigned id, fb_ref ref);
/* Close the table, write or share its vtable.  Returns 0 on failure. */
fb_ref fb_table_end(fb_builder *b);

/* Write the root offset and identifier (4 bytes, or NULL for none) and hand
 * the buffer to the caller (free() it).  Returns 0, or -1 if any step
 * failed; the builder is then empty and must still be freed. */
int fb_builder_finish(fb_builder *b, fb_ref root, const char *ident,
		      uint8_t **out, size_t *outlen);

/* ---- reader (verified buffers only) ---- */

typedef struct {
	const uint8_t *buf;
	uint32_t pos;    /* table start */
	uint32_t vt;     /* vtable start */
	uint16_t vsize;  /* vtable size in bytes */
	uint16_t tsize;  /* table inline size in bytes */
} fb_table;

typedef struct {
	const uint8_t *buf;
	uint32_t pos;    /* first element */
	uint32_t n;      /* element count */
} fb_vec;

void fb_root_table(const uint8_t *buf, fb_table *t);
void fb_table_at(const uint8_t *buf, uint32_t pos, fb_table *t);
/* Offset of field id from the table start, 0 when absent. */
uint16_t fb_field_off(const fb_table *t, unsigned id);
uint8_t fb_table_u8(const fb_table *t, unsigned id, uint8_t def);
uint32_t fb_table_u32(const fb_table *t, unsigned id, uint32_t def);
uint64_t fb_table_u64(const fb_table *t, unsigned id, uint64_t def);
double fb_table_f64(const fb_table *t, unsigned id, double def);
/* Reference fields: return false (and leave *out alone) when absent. */
bool fb_table_table(const fb_table *t, unsigned id, fb_table *out);
bool fb_table_string(const fb_table *t, unsigned id, const char **s,
		     uint32_t *len);
bool fb_table_vec(const fb_table *t, unsigned id, fb_vec *out);
uint32_t fb_vec_u32(const fb_vec *v, uint32_t i);
const uint8_t *fb_vec_data(const fb_vec *v);
void fb_vec_table(const fb_vec *v, uint32_t i, fb_table *out);
const char *fb_vec_string(const fb_vec *v, uint32_t i, uint32_t *len);

/* ---- verifier ---- */

typedef struct {
	const uint8_t *buf;
	size_t len;
	unsigned depth, max_depth;
	size_t tables, max_tables;
	char *err;
	size_t errlen;
	size_t pathlen;
	char path[FB_PATH_MAX];  /* e.g. "Message.response.rows[3]" */
} fb_verifier;

void fb_verifier_init(fb_verifier *v, const uint8_t *buf, size_t len,
		      unsigned max_depth, size_t max_tables, char *err,
		      size_t errlen);

/* Record an error "<path>[.field]: <what> at offset <off>" and return -1.
 * field may be NULL. */
int fb_fail(fb_verifier *v, const char *field, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Extend / restore the field path used in error messages.  fb_path_push
 * returns the mark to restore. */
size_t fb_path_push(fb_verifier *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void fb_path_pop(fb_verifier *v, size_t mark);

/* Check the header (root offset, identifier unless NULL) and enter the root
 * table, whose name starts the path.  Returns 0 or -1. */
int fb_verify_root(fb_verifier *v, const char *ident, const char *name,
		   fb_table *root);

/* Enter the table a reference field points to.  Returns 1 entered (depth
 * and path extended: call fb_verify_leave(v, *mark) when its fields are
 * checked), 0 absent and not required, -1 error. */
int fb_verify_table_field(fb_verifier *v, const fb_table *t, unsigned id,
			  const char *name, bool required, fb_table *out,
			  size_t *mark);
/* Same for element i of a verified vector of tables ("[i]" on the path).
 * Returns 1 or -1. */
int fb_verify_vec_table(fb_verifier *v, const fb_vec *vec, uint32_t i,
			fb_table *out, size_t *mark);
void fb_verify_leave(fb_verifier *v, size_t mark);

/* A scalar field of size 1, 2, 4 or 8: inside the table and aligned. */
int fb_verify_scalar(fb_verifier *v, const fb_table *t, unsigned id,
		     size_t size, const char *name);
int fb_verify_string(fb_verifier *v, const fb_table *t, unsigned id,
		     const char *name, bool required);
/* A vector of elemsize-byte elements (4 for references).  *out is set
 * (n = 0 when absent). */
int fb_verify_vector(fb_verifier *v, const fb_table *t, unsigned id,
		     size_t elemsize, const char *name, bool required,
		     fb_vec *out);
/* Every element of a verified reference vector is a valid string. */
int fb_verify_vec_strings(fb_verifier *v, const fb_vec *vec,
			  const char *name);

#endif
