/*
 * locks.c — row locks with wound-wait (see locks.h for the rules).
 *
 * Canonical key of a row, built from a changeset entry:
 *
 *   table name bytes, 0x00, then per primary-key column in table order:
 *     'N'                       NULL
 *     'I' + 8 bytes big-endian  INTEGER
 *     'R' + 8 bytes (IEEE bits) REAL
 *     'T' + u32 BE len + bytes  TEXT
 *     'B' + u32 BE len + bytes  BLOB
 */
#include "shard/locks.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "shard/request.h"

void locks_init(lock_table *lt)
{
	hmap_init(&lt->map);
	lt->nheld = 0;
}

void locks_free(lock_table *lt)
{
	size_t it;
	for (hmap_entry *e = hmap_first(&lt->map, &it); e; e = hmap_next(&lt->map, e, &it))
		free(e->value);
	hmap_free(&lt->map);
	lt->nheld = 0;
}

int locks_acquire(lock_table *lt, const void *key, size_t klen, lock_holder *h,
		  lock_entry **conflict, lock_result *out)
{
	lock_entry *e = hmap_get(&lt->map, key, klen);
	*conflict = NULL;
	if (e) {
		if (e->owner == h) {
			*out = LOCK_GRANTED;
			return 0;
		}
		*conflict = e;
		/* wound-wait: an older requester wounds, everyone else waits */
		*out = (h && h->ts < e->owner->ts) ? LOCK_WOUND : LOCK_WAIT;
		return 0;
	}
	if (!h) {
		*out = LOCK_GRANTED;
		return 0;
	}
	e = calloc(1, sizeof *e + klen);
	if (!e)
		return -1;
	e->owner = h;
	e->klen = klen;
	memcpy(e->key, key, klen);
	if (hmap_put(&lt->map, key, klen, e) != 0) {
		free(e);
		return -1;
	}
	e->holder_next = h->held;
	h->held = e;
	h->nheld++;
	lt->nheld++;
	*out = LOCK_GRANTED;
	return 0;
}

void locks_park(lock_entry *e, shard_req *req)
{
	req->wait_next = NULL;
	shard_req **pp = &e->waiters;
	while (*pp)
		pp = &(*pp)->wait_next;
	*pp = req;
	req->waiting_on = e;
}

void locks_unpark(lock_entry *e, shard_req *req)
{
	for (shard_req **pp = &e->waiters; *pp; pp = &(*pp)->wait_next) {
		if (*pp == req) {
			*pp = req->wait_next;
			break;
		}
	}
	req->wait_next = NULL;
	req->waiting_on = NULL;
}

void locks_release_all(lock_table *lt, lock_holder *h, shard_req **wake)
{
	shard_req **tail = wake;
	while (*tail)
		tail = &(*tail)->next;
	lock_entry *e = h->held;
	while (e) {
		lock_entry *next = e->holder_next;
		for (shard_req *w = e->waiters; w;) {
			shard_req *wn = w->wait_next;
			w->wait_next = NULL;
			w->waiting_on = NULL;
			w->next = NULL;
			w->woken = 1;
			*tail = w;
			tail = &w->next;
			w = wn;
		}
		hmap_del(&lt->map, e->key, e->klen);
		free(e);
		lt->nheld--;
		e = next;
	}
	h->held = NULL;
	h->nheld = 0;
}

/* ---- keys from changesets --------------------------------------------------- */

typedef struct {
	unsigned char *p;
	size_t len, cap;
	int oom;
} keybuf;

static void kb_put(keybuf *kb, const void *d, size_t n)
{
	if (kb->oom)
		return;
	if (kb->len + n > kb->cap) {
		size_t cap = kb->cap ? kb->cap * 2 : 256;
		while (cap < kb->len + n)
			cap *= 2;
		unsigned char *p = realloc(kb->p, cap);
		if (!p) {
			kb->oom = 1;
			return;
		}
		kb->p = p;
		kb->cap = cap;
	}
	memcpy(kb->p + kb->len, d, n);
	kb->len += n;
}

static void kb_u64(keybuf *kb, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
	kb_put(kb, b, 8);
}

static void kb_bytes(keybuf *kb, char tag, const void *d, int n)
{
	unsigned char h[5] = {(unsigned char)tag, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
			      (unsigned char)(n >> 8), (unsigned char)n};
	kb_put(kb, h, 5);
	kb_put(kb, d, (size_t)n);
}

static void kb_value(keybuf *kb, sqlite3_value *v)
{
	switch (v ? sqlite3_value_type(v) : SQLITE_NULL) {
	case SQLITE_INTEGER:
		kb_put(kb, "I", 1);
		kb_u64(kb, (uint64_t)sqlite3_value_int64(v));
		break;
	case SQLITE_FLOAT: {
		double d = sqlite3_value_double(v);
		uint64_t bits;
		memcpy(&bits, &d, 8);
		kb_put(kb, "R", 1);
		kb_u64(kb, bits);
		break;
	}
	case SQLITE_TEXT:
		kb_bytes(kb, 'T', sqlite3_value_text(v), sqlite3_value_bytes(v));
		break;
	case SQLITE_BLOB:
		kb_bytes(kb, 'B', sqlite3_value_blob(v), sqlite3_value_bytes(v));
		break;
	default:
		kb_put(kb, "N", 1);
	}
}

int locks_each_changeset_key(const void *cs, int cslen,
			     int (*fn)(const void *key, size_t klen, void *arg), void *arg)
{
	sqlite3_changeset_iter *it = NULL;
	if (sqlite3changeset_start(&it, cslen, (void *)cs) != SQLITE_OK)
		return -1;
	keybuf kb = {0};
	int rc = 0;
	while (rc == 0 && sqlite3changeset_next(it) == SQLITE_ROW) {
		const char *tab;
		int ncol, op, indirect;
		unsigned char *pk;
		int npk;
		if (sqlite3changeset_op(it, &tab, &ncol, &op, &indirect) != SQLITE_OK ||
		    sqlite3changeset_pk(it, &pk, &npk) != SQLITE_OK) {
			rc = -1;
			break;
		}
		kb.len = 0;
		kb_put(&kb, tab, strlen(tab) + 1);
		for (int i = 0; i < ncol; i++) {
			if (!pk[i])
				continue;
			sqlite3_value *v = NULL;
			if (op == SQLITE_INSERT)
				sqlite3changeset_new(it, i, &v);
			else
				sqlite3changeset_old(it, i, &v);
			kb_value(&kb, v);
		}
		if (kb.oom) {
			rc = -1;
			break;
		}
		rc = fn(kb.p, kb.len, arg);
	}
	if (sqlite3changeset_finalize(it) != SQLITE_OK && rc == 0)
		rc = -1;
	free(kb.p);
	return rc;
}
