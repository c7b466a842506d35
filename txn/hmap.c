/*
 * hmap.c — chained hash map (see hmap.h for the contract).
 * Hash: 64-bit FNV-1a followed by a murmur-style finalizer, so that keys
 * differing only in low bytes spread over the power-of-two bucket array.
 */
#include "txn/hmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t hmap_hash(const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < klen; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

void hmap_init(hmap *m)
{
	m->buckets = NULL;
	m->nbuckets = 0;
	m->count = 0;
}

void hmap_free(hmap *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		hmap_entry *e = m->buckets[i];
		while (e) {
			hmap_entry *n = e->next;
			free(e);
			e = n;
		}
	}
	free(m->buckets);
	hmap_init(m);
}

static hmap_entry **find(const hmap *m, const void *key, size_t klen, uint64_t h)
{
	if (m->nbuckets == 0)
		return NULL;
	hmap_entry **pp = &m->buckets[h & (m->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->next) {
		hmap_entry *e = *pp;
		if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return pp;
	}
	return pp;
}

void *hmap_get(const hmap *m, const void *key, size_t klen)
{
	hmap_entry **pp = find(m, key, klen, hmap_hash(key, klen));
	return (pp && *pp) ? (*pp)->value : NULL;
}

static int grow(hmap *m)
{
	size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
	hmap_entry **b = calloc(n, sizeof *b);
	if (!b)
		return -1;
	for (size_t i = 0; i < m->nbuckets; i++) {
		hmap_entry *e = m->buckets[i];
		while (e) {
			hmap_entry *next = e->next;
			size_t j = e->hash & (n - 1);
			e->next = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
	return 0;
}

int hmap_put(hmap *m, const void *key, size_t klen, void *value)
{
	uint64_t h = hmap_hash(key, klen);
	hmap_entry **pp = find(m, key, klen, h);
	if (pp && *pp) {
		(*pp)->value = value;
		return 0;
	}
	if (m->count + 1 > 2 * m->nbuckets) {
		if (grow(m) != 0)
			return -1;
	}
	hmap_entry *e = malloc(sizeof *e + klen);
	if (!e)
		return -1;
	e->hash = h;
	e->klen = klen;
	e->value = value;
	memcpy(e->key, key, klen);
	size_t j = h & (m->nbuckets - 1);
	e->next = m->buckets[j];
	m->buckets[j] = e;
	m->count++;
	return 0;
}

void *hmap_del(hmap *m, const void *key, size_t klen)
{
	hmap_entry **pp = find(m, key, klen, hmap_hash(key, klen));
	if (!pp || !*pp)
		return NULL;
	hmap_entry *e = *pp;
	void *v = e->value;
	*pp = e->next;
	free(e);
	m->count--;
	return v;
}

hmap_entry *hmap_first(const hmap *m, size_t *it)
{
	for (*it = 0; *it < m->nbuckets; (*it)++)
		if (m->buckets[*it])
			return m->buckets[*it];
	return NULL;
}

hmap_entry *hmap_next(const hmap *m, hmap_entry *e, size_t *it)
{
	if (e->next)
		return e->next;
	for ((*it)++; *it < m->nbuckets; (*it)++)
		if (m->buckets[*it])
			return m->buckets[*it];
	return NULL;
}
