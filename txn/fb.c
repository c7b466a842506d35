/*
 * fb.c — FlatBuffers builder, reader and verifier (layout: see fb.h).
 *
 * Builder: all writes go through fb_prep()/fb_push(), which keep the
 * invariant that buf[cap-size, cap) holds the built bytes and that the
 * distance of every object from the end is aligned to the object's own
 * alignment.  Growth doubles the storage and moves the built bytes to the
 * end of the new storage.
 *
 * Verifier: positions are computed in uint64_t from 32-bit values, so no
 * check can wrap; every byte read is bounds-checked before it is read.
 * A table is accepted only if its soffset, vtable (size, even, inside the
 * buffer) and inline size are sane; a field only if it lies inside the
 * table's inline size after the soffset and is aligned to its size.
 */
#include "txn/fb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- builder ---- */

void fb_builder_init(fb_builder *b, size_t max_size)
{
	memset(b, 0, sizeof(*b));
	b->max_size = max_size < FB_MAX_BUFFER ? max_size : FB_MAX_BUFFER;
	b->minalign = 1;
}

void fb_builder_free(fb_builder *b)
{
	free(b->buf);
	b->buf = NULL;
	b->cap = b->size = 0;
}

/* Make room for n more bytes at the front.  Returns false on failure. */
static bool fb_reserve(fb_builder *b, size_t n)
{
	if (b->failed)
		return false;
	if (n > b->max_size - b->size) {
		b->failed = true;
		return false;
	}
	if (b->buf && b->cap - b->size >= n)
		return true;
	size_t want = b->size + n;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	uint8_t *nb = malloc(cap);
	if (!nb) {
		b->failed = true;
		return false;
	}
	if (b->size)
		memcpy(nb + cap - b->size, b->buf + b->cap - b->size, b->size);
	free(b->buf);
	b->buf = nb;
	b->cap = cap;
	return true;
}

/* Front of the built bytes (valid until the next reserve). */
static uint8_t *fb_front(fb_builder *b)
{
	return b->buf + b->cap - b->size;
}

/* Pad with zeros so that after `additional` more bytes the size is a
 * multiple of align (a power of two <= 8). */
static bool fb_prep(fb_builder *b, size_t align, size_t additional)
{
	if (b->failed)
		return false;
	if (align > b->minalign)
		b->minalign = align;
	size_t pad = (size_t)(-(b->size + additional)) & (align - 1);
	if (!fb_reserve(b, pad + additional))
		return false;
	b->size += pad;
	if (pad)
		memset(fb_front(b), 0, pad);
	return true;
}

/* Push n bytes (room already reserved by fb_prep). */
static uint8_t *fb_push(fb_builder *b, size_t n)
{
	b->size += n;
	return fb_front(b);
}

static void fb_misuse(fb_builder *b)
{
	b->failed = true;
}

static void fb_put_scalar(uint8_t *p, const void *src, size_t size)
{
	switch (size) {
	case 1: p[0] = *(const uint8_t *)src; break;
	case 2: { uint16_t x; memcpy(&x, src, 2); fb_put_u16(p, x); break; }
	case 4: { uint32_t x; memcpy(&x, src, 4); fb_put_u32(p, x); break; }
	default: { uint64_t x; memcpy(&x, src, 8); fb_put_u64(p, x); break; }
	}
}

fb_ref fb_create_string(fb_builder *b, const void *s, size_t len)
{
	if (b->in_table || len > FB_MAX_BUFFER)
		fb_misuse(b);
	/* Bytes and NUL end 4-aligned, right before the next object. */
	if (!fb_prep(b, 4, len + 1))
		return 0;
	uint8_t *p = fb_push(b, len + 1);
	if (len)
		memcpy(p, s, len);
	p[len] = 0;
	if (!fb_prep(b, 4, 4))
		return 0;
	fb_put_u32(fb_push(b, 4), (uint32_t)len);
	return (fb_ref)b->size;
}

fb_ref fb_create_vector(fb_builder *b, const void *elems, size_t n,
			size_t elemsize)
{
	if (b->in_table || (elemsize != 1 && elemsize != 2 && elemsize != 4 &&
			    elemsize != 8) || n > FB_MAX_BUFFER / elemsize)
		fb_misuse(b);
	size_t bytes = n * elemsize;
	/* The count must end up 4-aligned right before 4- or 8-aligned data. */
	if (!fb_prep(b, 4, bytes) || !fb_prep(b, elemsize, bytes))
		return 0;
	uint8_t *p = fb_push(b, bytes);
	const uint8_t *src = elems;
	for (size_t i = 0; i < n; i++)
		fb_put_scalar(p + i * elemsize, src + i * elemsize, elemsize);
	if (!fb_prep(b, 4, 4))
		return 0;
	fb_put_u32(fb_push(b, 4), (uint32_t)n);
	return (fb_ref)b->size;
}

/* Write a uoffset at the front to an object already built. */
static bool fb_push_uoffset(fb_builder *b, fb_ref ref)
{
	if (!fb_prep(b, 4, 4))
		return false;
	if (ref == 0 || ref > b->size) {
		fb_misuse(b);
		return false;
	}
	/* The field will sit at distance size+4 from the end; ref is further
	 * from the start, i.e. nearer the end: the offset is positive. */
	uint32_t off = (uint32_t)(b->size + 4 - ref);
	fb_put_u32(fb_push(b, 4), off);
	return true;
}

fb_ref fb_create_vector_refs(fb_builder *b, const fb_ref *refs, size_t n)
{
	if (b->in_table || n > FB_MAX_BUFFER / 4)
		fb_misuse(b);
	if (!fb_prep(b, 4, n * 4))
		return 0;
	for (size_t i = n; i-- > 0;)
		if (!fb_push_uoffset(b, refs[i]))
			return 0;
	if (!fb_prep(b, 4, 4))
		return 0;
	fb_put_u32(fb_push(b, 4), (uint32_t)n);
	return (fb_ref)b->size;
}

void fb_table_start(fb_builder *b)
{
	if (b->in_table)
		fb_misuse(b);
	b->in_table = true;
	b->table_start = b->size;
	b->field_set = 0;
	b->nfields = 0;
}

static bool fb_field_begin(fb_builder *b, unsigned id)
{
	if (!b->in_table || id >= FB_MAX_FIELDS ||
	    (b->field_set & (UINT64_C(1) << id))) {
		fb_misuse(b);
		return false;
	}
	return !b->failed;
}

static void fb_field_done(fb_builder *b, unsigned id)
{
	b->field_set |= UINT64_C(1) << id;
	b->fields[b->nfields].id = (uint16_t)id;
	b->fields[b->nfields].ref = (uint32_t)b->size;
	b->nfields++;
}

static void fb_add_scalar(fb_builder *b, unsigned id, const void *v,
			  size_t size)
{
	if (!fb_field_begin(b, id) || !fb_prep(b, size, size))
		return;
	fb_put_scalar(fb_push(b, size), v, size);
	fb_field_done(b, id);
}

void fb_add_u8(fb_builder *b, unsigned id, uint8_t v, uint8_t def)
{
	if (v != def)
		fb_add_scalar(b, id, &v, 1);
}

void fb_add_u32(fb_builder *b, unsigned id, uint32_t v, uint32_t def)
{
	if (v != def)
		fb_add_scalar(b, id, &v, 4);
}

void fb_add_u64(fb_builder *b, unsigned id, uint64_t v, uint64_t def)
{
	if (v != def)
		fb_add_scalar(b, id, &v, 8);
}

void fb_add_f64(fb_builder *b, unsigned id, double v, double def)
{
	/* By bits: -0.0 == 0.0 and NaN != NaN would lose or repeat values. */
	if (memcmp(&v, &def, sizeof(v)) != 0)
		fb_add_scalar(b, id, &v, 8);
}

void fb_add_ref(fb_builder *b, unsigned id, fb_ref ref)
{
	if (ref == 0)
		return;
	if (!fb_field_begin(b, id) || !fb_push_uoffset(b, ref))
		return;
	fb_field_done(b, id);
}

fb_ref fb_table_end(fb_builder *b)
{
	if (!b->in_table)
		fb_misuse(b);
	b->in_table = false;
	if (!fb_prep(b, 4, 4))
		return 0;
	fb_push(b, 4); /* soffset, patched below */
	uint32_t tpos = (uint32_t)b->size;
	size_t tsize = tpos - b->table_start;
	if (tsize > UINT16_MAX) {
		fb_misuse(b);
		return 0;
	}
	unsigned nslots = 0;
	for (unsigned i = 0; i < b->nfields; i++)
		if (b->fields[i].id + 1u > nslots)
			nslots = b->fields[i].id + 1u;
	size_t vsize = 4 + 2 * (size_t)nslots;
	uint8_t vt[4 + 2 * FB_MAX_FIELDS];
	memset(vt, 0, vsize);
	fb_put_u16(vt, (uint16_t)vsize);
	fb_put_u16(vt + 2, (uint16_t)tsize);
	for (unsigned i = 0; i < b->nfields; i++)
		fb_put_u16(vt + 4 + 2 * b->fields[i].id,
			   (uint16_t)(tpos - b->fields[i].ref));

	uint32_t vpos = 0;
	unsigned nkept = b->nvtables < FB_VTABLE_DEDUP ? b->nvtables
						       : FB_VTABLE_DEDUP;
	for (unsigned i = 0; i < nkept; i++) {
		uint32_t cand = b->vtables[i];
		const uint8_t *p = b->buf + b->cap - cand;
		if (fb_get_u16(p) == vsize && memcmp(p, vt, vsize) == 0) {
			vpos = cand;
			break;
		}
	}
	if (!vpos) {
		if (!fb_reserve(b, vsize))
			return 0;
		memcpy(fb_push(b, vsize), vt, vsize);
		vpos = (uint32_t)b->size;
		b->vtables[b->nvtables++ % FB_VTABLE_DEDUP] = vpos;
	}
	/* soffset = table position - vtable position (start-relative), i.e.
	 * vpos - tpos in end-relative distances; negative for a shared vtable
	 * written earlier (nearer the end). */
	int64_t soff = (int64_t)vpos - (int64_t)tpos;
	fb_put_u32(b->buf + b->cap - tpos, (uint32_t)(int32_t)soff);
	return (fb_ref)tpos;
}

int fb_builder_finish(fb_builder *b, fb_ref root, const char *ident,
		      uint8_t **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	if (b->in_table)
		fb_misuse(b);
	size_t hdr = 4 + (ident ? FB_IDENT_LEN : 0);
	if (fb_prep(b, b->minalign > 4 ? b->minalign : 4, hdr)) {
		if (ident)
			memcpy(fb_push(b, FB_IDENT_LEN), ident, FB_IDENT_LEN);
		if (root == 0 || root > b->size) {
			fb_misuse(b);
		} else {
			uint32_t off = (uint32_t)(b->size + 4 - root);
			fb_put_u32(fb_push(b, 4), off);
		}
	}
	if (b->failed) {
		fb_builder_free(b);
		return -1;
	}
	memmove(b->buf, fb_front(b), b->size);
	*out = b->buf;
	*outlen = b->size;
	b->buf = NULL;
	b->cap = b->size = 0;
	return 0;
}

/* ---- reader ---- */

void fb_table_at(const uint8_t *buf, uint32_t pos, fb_table *t)
{
	int32_t soff = (int32_t)fb_get_u32(buf + pos);
	t->buf = buf;
	t->pos = pos;
	t->vt = (uint32_t)((int64_t)pos - soff);
	t->vsize = fb_get_u16(buf + t->vt);
	t->tsize = fb_get_u16(buf + t->vt + 2);
}

void fb_root_table(const uint8_t *buf, fb_table *t)
{
	fb_table_at(buf, fb_get_u32(buf), t);
}

uint16_t fb_field_off(const fb_table *t, unsigned id)
{
	size_t slot = 4 + 2 * (size_t)id;
	if (slot + 2 > t->vsize)
		return 0;
	return fb_get_u16(t->buf + t->vt + slot);
}

uint8_t fb_table_u8(const fb_table *t, unsigned id, uint8_t def)
{
	uint16_t off = fb_field_off(t, id);
	return off ? t->buf[t->pos + off] : def;
}

uint32_t fb_table_u32(const fb_table *t, unsigned id, uint32_t def)
{
	uint16_t off = fb_field_off(t, id);
	return off ? fb_get_u32(t->buf + t->pos + off) : def;
}

uint64_t fb_table_u64(const fb_table *t, unsigned id, uint64_t def)
{
	uint16_t off = fb_field_off(t, id);
	return off ? fb_get_u64(t->buf + t->pos + off) : def;
}

double fb_table_f64(const fb_table *t, unsigned id, double def)
{
	uint16_t off = fb_field_off(t, id);
	if (!off)
		return def;
	uint64_t bits = fb_get_u64(t->buf + t->pos + off);
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

/* Target of the reference field id, or 0 when absent. */
static uint32_t fb_table_target(const fb_table *t, unsigned id)
{
	uint16_t off = fb_field_off(t, id);
	if (!off)
		return 0;
	uint32_t at = t->pos + off;
	return at + fb_get_u32(t->buf + at);
}

bool fb_table_table(const fb_table *t, unsigned id, fb_table *out)
{
	uint32_t pos = fb_table_target(t, id);
	if (!pos)
		return false;
	fb_table_at(t->buf, pos, out);
	return true;
}

bool fb_table_string(const fb_table *t, unsigned id, const char **s,
		     uint32_t *len)
{
	uint32_t pos = fb_table_target(t, id);
	if (!pos)
		return false;
	*len = fb_get_u32(t->buf + pos);
	*s = (const char *)t->buf + pos + 4;
	return true;
}

bool fb_table_vec(const fb_table *t, unsigned id, fb_vec *out)
{
	uint32_t pos = fb_table_target(t, id);
	if (!pos)
		return false;
	out->buf = t->buf;
	out->n = fb_get_u32(t->buf + pos);
	out->pos = pos + 4;
	return true;
}

uint32_t fb_vec_u32(const fb_vec *v, uint32_t i)
{
	return fb_get_u32(v->buf + v->pos + 4 * (size_t)i);
}

const uint8_t *fb_vec_data(const fb_vec *v)
{
	return v->buf + v->pos;
}

static uint32_t fb_vec_target(const fb_vec *v, uint32_t i)
{
	uint32_t at = v->pos + 4 * i;
	return at + fb_get_u32(v->buf + at);
}

void fb_vec_table(const fb_vec *v, uint32_t i, fb_table *out)
{
	fb_table_at(v->buf, fb_vec_target(v, i), out);
}

const char *fb_vec_string(const fb_vec *v, uint32_t i, uint32_t *len)
{
	uint32_t pos = fb_vec_target(v, i);
	*len = fb_get_u32(v->buf + pos);
	return (const char *)v->buf + pos + 4;
}

/* ---- verifier ---- */

void fb_verifier_init(fb_verifier *v, const uint8_t *buf, size_t len,
		      unsigned max_depth, size_t max_tables, char *err,
		      size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->buf = buf;
	v->len = len;
	v->max_depth = max_depth;
	v->max_tables = max_tables;
	v->err = err;
	v->errlen = errlen;
	if (err && errlen)
		err[0] = 0;
}

int fb_fail(fb_verifier *v, const char *field, size_t off, const char *fmt, ...)
{
	if (!v->err || !v->errlen)
		return -1;
	int n = snprintf(v->err, v->errlen, "%s%s%s: ", v->path,
			 field && v->pathlen ? "." : "", field ? field : "");
	if (n < 0 || (size_t)n >= v->errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(v->err + n, v->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) >= v->errlen)
		return -1;
	snprintf(v->err + n + m, v->errlen - (size_t)(n + m), " at offset %zu",
		 off);
	return -1;
}

size_t fb_path_push(fb_verifier *v, const char *fmt, ...)
{
	size_t mark = v->pathlen;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(v->path + mark, sizeof(v->path) - mark, fmt, ap);
	va_end(ap);
	if (n > 0) {
		v->pathlen += (size_t)n;
		if (v->pathlen >= sizeof(v->path))
			v->pathlen = sizeof(v->path) - 1; /* truncated */
	}
	return mark;
}

void fb_path_pop(fb_verifier *v, size_t mark)
{
	v->pathlen = mark;
	v->path[mark] = 0;
}

/* Is [pos, pos+size) inside the buffer? */
static bool fb_in(const fb_verifier *v, uint64_t pos, uint64_t size)
{
	return pos <= v->len && size <= v->len - pos;
}

/* Check the table header at pos (path already names the table) and
 * account for depth and count. */
static int fb_enter_table(fb_verifier *v, uint64_t pos, fb_table *t)
{
	if (v->depth >= v->max_depth)
		return fb_fail(v, NULL, pos, "tables nested deeper than %u",
			       v->max_depth);
	if (v->tables >= v->max_tables)
		return fb_fail(v, NULL, pos, "more than %zu tables",
			       v->max_tables);
	if (pos % 4)
		return fb_fail(v, NULL, pos, "table misaligned");
	if (!fb_in(v, pos, 4))
		return fb_fail(v, NULL, pos, "table outside the buffer (%zu bytes)",
			       v->len);
	int32_t soff = (int32_t)fb_get_u32(v->buf + pos);
	int64_t vt = (int64_t)pos - soff;
	if (vt < 0 || !fb_in(v, (uint64_t)vt, 4))
		return fb_fail(v, NULL, pos, "vtable offset %d points outside the buffer",
			       (int)soff);
	if (vt % 2)
		return fb_fail(v, NULL, (size_t)vt, "vtable misaligned");
	uint16_t vsize = fb_get_u16(v->buf + vt);
	uint16_t tsize = fb_get_u16(v->buf + vt + 2);
	if (vsize < 4 || vsize % 2)
		return fb_fail(v, NULL, (size_t)vt, "bad vtable size %u", vsize);
	if (!fb_in(v, (uint64_t)vt, vsize))
		return fb_fail(v, NULL, (size_t)vt,
			       "vtable of %u bytes overruns the buffer", vsize);
	if (tsize < 4)
		return fb_fail(v, NULL, pos, "bad table size %u", tsize);
	if (!fb_in(v, pos, tsize))
		return fb_fail(v, NULL, pos,
			       "table of %u bytes overruns the buffer", tsize);
	v->depth++;
	v->tables++;
	t->buf = v->buf;
	t->pos = (uint32_t)pos;
	t->vt = (uint32_t)vt;
	t->vsize = vsize;
	t->tsize = tsize;
	return 0;
}

void fb_verify_leave(fb_verifier *v, size_t mark)
{
	v->depth--;
	fb_path_pop(v, mark);
}

int fb_verify_root(fb_verifier *v, const char *ident, const char *name,
		   fb_table *root)
{
	size_t hdr = 4 + (ident ? FB_IDENT_LEN : 0);
	fb_path_pop(v, 0);
	fb_path_push(v, "%s", name);
	if (v->len > FB_MAX_BUFFER)
		return fb_fail(v, NULL, 0, "buffer of %zu bytes too large", v->len);
	if (v->len < hdr + 4)
		return fb_fail(v, NULL, 0, "buffer of %zu bytes too short", v->len);
	if (ident && memcmp(v->buf + 4, ident, FB_IDENT_LEN) != 0) {
		const uint8_t *p = v->buf + 4;
		return fb_fail(v, NULL, 4,
			       "file identifier %02x%02x%02x%02x is not \"%.4s\"",
			       p[0], p[1], p[2], p[3], ident);
	}
	uint32_t pos = fb_get_u32(v->buf);
	if (pos < hdr)
		return fb_fail(v, NULL, 0, "root offset %u inside the header", pos);
	return fb_enter_table(v, pos, root);
}

/* Position of field id if present (0 absent), checking that size bytes
 * there lie inside the table after its soffset and are aligned. */
static int fb_field_pos(fb_verifier *v, const fb_table *t, unsigned id,
			size_t size, const char *name, uint64_t *at)
{
	uint16_t off = fb_field_off(t, id);
	*at = 0;
	if (!off)
		return 0;
	if (off < 4 || off + size > t->tsize)
		return fb_fail(v, name, t->pos + (size_t)off,
			       "field offset %u outside the %u-byte table", off,
			       t->tsize);
	*at = (uint64_t)t->pos + off;
	if (*at % size)
		return fb_fail(v, name, (size_t)*at, "field misaligned");
	return 0;
}

int fb_verify_scalar(fb_verifier *v, const fb_table *t, unsigned id,
		     size_t size, const char *name)
{
	uint64_t at;
	return fb_field_pos(v, t, id, size, name, &at);
}

/* Follow the uoffset at `at` (4 bytes, in bounds and aligned). */
static int fb_follow(fb_verifier *v, uint64_t at, const char *name,
		     uint64_t *target)
{
	uint32_t off = fb_get_u32(v->buf + at);
	*target = 0;
	if (off == 0 || off > FB_MAX_BUFFER)
		return fb_fail(v, name, (size_t)at, "bad offset %u", off);
	*target = at + off;
	if (!fb_in(v, *target, 4))
		return fb_fail(v, name, (size_t)at,
			       "offset %u points outside the buffer", off);
	return 0;
}

/* Reference field id: 1 with *target set, 0 absent, -1 error. */
static int fb_ref_field(fb_verifier *v, const fb_table *t, unsigned id,
			const char *name, bool required, uint64_t *target)
{
	uint64_t at;
	if (fb_field_pos(v, t, id, 4, name, &at) < 0)
		return -1;
	if (!at) {
		if (required)
			return fb_fail(v, name, t->pos, "required field missing");
		return 0;
	}
	return fb_follow(v, at, name, target) < 0 ? -1 : 1;
}

static int fb_check_string(fb_verifier *v, uint64_t pos, const char *name)
{
	if (pos % 4)
		return fb_fail(v, name, (size_t)pos, "string misaligned");
	/* pos + 4 is in bounds: fb_follow checked it. */
	uint32_t n = fb_get_u32(v->buf + pos);
	if (!fb_in(v, pos + 4, (uint64_t)n + 1))
		return fb_fail(v, name, (size_t)pos,
			       "string of %u bytes overruns the buffer", n);
	if (v->buf[pos + 4 + n] != 0)
		return fb_fail(v, name, (size_t)(pos + 4 + n),
			       "string not NUL-terminated");
	return 0;
}

int fb_verify_string(fb_verifier *v, const fb_table *t, unsigned id,
		     const char *name, bool required)
{
	uint64_t pos = 0;
	int rc = fb_ref_field(v, t, id, name, required, &pos);
	if (rc <= 0)
		return rc;
	return fb_check_string(v, pos, name);
}

int fb_verify_vector(fb_verifier *v, const fb_table *t, unsigned id,
		     size_t elemsize, const char *name, bool required,
		     fb_vec *out)
{
	uint64_t pos;
	out->buf = v->buf;
	out->pos = 0;
	out->n = 0;
	int rc = fb_ref_field(v, t, id, name, required, &pos);
	if (rc <= 0)
		return rc;
	if (pos % 4 || (pos + 4) % (elemsize < 8 ? elemsize : 8))
		return fb_fail(v, name, (size_t)pos, "vector misaligned");
	uint32_t n = fb_get_u32(v->buf + pos);
	if (n > (v->len - pos - 4) / elemsize)
		return fb_fail(v, name, (size_t)pos,
			       "vector of %u elements of %zu bytes overruns the buffer",
			       n, elemsize);
	out->pos = (uint32_t)pos + 4;
	out->n = n;
	return 0;
}

int fb_verify_vec_strings(fb_verifier *v, const fb_vec *vec,
			  const char *name)
{
	for (uint32_t i = 0; i < vec->n; i++) {
		uint64_t at = (uint64_t)vec->pos + 4 * (uint64_t)i, pos = 0;
		size_t mark = fb_path_push(v, "%s%s[%u]", v->pathlen ? "." : "",
					   name, i);
		int rc = fb_follow(v, at, NULL, &pos);
		if (rc == 0)
			rc = fb_check_string(v, pos, NULL);
		fb_path_pop(v, mark);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int fb_verify_table_field(fb_verifier *v, const fb_table *t, unsigned id,
			  const char *name, bool required, fb_table *out,
			  size_t *mark)
{
	uint64_t pos = 0;
	int rc = fb_ref_field(v, t, id, name, required, &pos);
	if (rc <= 0)
		return rc;
	*mark = fb_path_push(v, "%s%s", v->pathlen ? "." : "", name);
	if (fb_enter_table(v, pos, out) < 0) {
		fb_path_pop(v, *mark);
		return -1;
	}
	return 1;
}

int fb_verify_vec_table(fb_verifier *v, const fb_vec *vec, uint32_t i,
			fb_table *out, size_t *mark)
{
	uint64_t at = (uint64_t)vec->pos + 4 * (uint64_t)i, pos = 0;
	*mark = fb_path_push(v, "[%u]", i);
	if (fb_follow(v, at, NULL, &pos) < 0 ||
	    fb_enter_table(v, pos, out) < 0) {
		fb_path_pop(v, *mark);
		return -1;
	}
	return 1;
}
