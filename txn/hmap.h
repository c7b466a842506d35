/*
 * hmap.h — a small chained hash map from byte-string keys to pointers.
 *
 * Used for the shard's lock table (key = table + primary key bytes), its
 * transaction table (key = txn id) and statement caches.  Keys are copied
 * into the map; values are the caller's.  Not thread-safe: each map belongs
 * to one thread.
 * Invariants: count == number of entries; nbuckets is a power of two and
 * count <= 2 * nbuckets after every insert (the table doubles to keep it).
 */
#ifndef SHARDLITE_HMAP_H
#define SHARDLITE_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmap_entry {
	struct hmap_entry *next;
	uint64_t hash;
	size_t klen;
	void *value;
	unsigned char key[];
} hmap_entry;

typedef struct {
	hmap_entry **buckets;
	size_t nbuckets;
	size_t count;
} hmap;

void hmap_init(hmap *m);
/* Frees the entries, not the values. */
void hmap_free(hmap *m);
void *hmap_get(const hmap *m, const void *key, size_t klen);
/* Inserts or replaces.  Returns 0, or -1 on out of memory. */
int hmap_put(hmap *m, const void *key, size_t klen, void *value);
/* Removes and returns the value (NULL if absent). */
void *hmap_del(hmap *m, const void *key, size_t klen);

/* Iteration: for (hmap_entry *e = hmap_first(m, &i); e; e = hmap_next(m, e, &i)).
 * Deleting the current entry during iteration is not allowed. */
hmap_entry *hmap_first(const hmap *m, size_t *it);
hmap_entry *hmap_next(const hmap *m, hmap_entry *e, size_t *it);

uint64_t hmap_hash(const void *key, size_t klen);

#endif
