/*
 * locks.h — the shard's row-lock table.
 *
 * A lock names one row: the key is the table name, a NUL, then the row's
 * primary-key values in the canonical form of locks_key_from_changeset().
 * Locks are exclusive, taken by transactions for the rows they write, and
 * held until the transaction commits or aborts (strict two-phase locking).
 *
 * Deadlock prevention is wound-wait on transaction age (ts, smaller =
 * older): a younger requester waits for an older holder; an older requester
 * *wounds* a younger holder (the executor rolls the holder back, unless it
 * is already prepared, in which case the older one waits for it: a prepared
 * transaction waits for nothing and finishes).  Waits therefore point from
 * younger to older transactions, or to prepared ones, so no cycle can form,
 * on one shard or across shards, as long as every shard sees the same ts
 * for a transaction (the router assigns it).  The executor lets a wound
 * wait (its wound_delay_ms): meanwhile an older transaction waits for a
 * younger one, so a cycle can last that long, never longer, since every
 * cycle has such an edge and its wound then breaks it.  A wounded transaction retried
 * by its client gets a new ts but only ever waits, so it cannot starve (it
 * grows older than everyone else).  Autocommit statements hold nothing
 * while they wait, so they may always wait.
 *
 * Invariants: an entry exists iff it has an owner; an entry is on exactly its
 * owner's held list; a parked request is on exactly one entry's waiter list.
 * The table belongs to the executor thread.
 */
#ifndef SHARDLITE_LOCKS_H
#define SHARDLITE_LOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "txn/hmap.h"

struct shard_req;
typedef struct lock_entry lock_entry;

/* Embedded in a transaction: who it is for the lock table. */
typedef struct lock_holder {
	uint64_t ts;
	lock_entry *held;   /* list through lock_entry.holder_next */
	size_t nheld;
} lock_holder;

struct lock_entry {
	lock_holder *owner;
	lock_entry *holder_next;
	struct shard_req *waiters;  /* through shard_req.wait_next */
	size_t klen;
	unsigned char key[];
};

typedef struct {
	hmap map;           /* key -> lock_entry */
	size_t nheld;       /* total locks held */
} lock_table;

typedef enum { LOCK_GRANTED, LOCK_WAIT, LOCK_WOUND } lock_result;

void locks_init(lock_table *lt);
void locks_free(lock_table *lt);

/* Take the row for h (h == NULL: an autocommit statement that only checks).
 * GRANTED: h owns it now (or already did; with h == NULL: nobody owns it).
 * WAIT: *conflict is the entry to park on.  WOUND: h is older than the
 * owner: roll the owner back if it can be, then park on *conflict.
 * Returns -1 on out of memory. */
int locks_acquire(lock_table *lt, const void *key, size_t klen, lock_holder *h,
		  lock_entry **conflict, lock_result *out);

/* Park req on e until its owner releases it. */
void locks_park(lock_entry *e, struct shard_req *req);
/* Remove a parked req from e's waiters (timeout or abort). */
void locks_unpark(lock_entry *e, struct shard_req *req);

/* Release everything h holds; their waiters are appended to *wake. */
void locks_release_all(lock_table *lt, lock_holder *h, struct shard_req **wake);

/* Build lock keys from a changeset: calls fn(key, klen, arg) for every row it
 * touches.  Returns 0, -1 on a bad changeset, or fn's non-zero result. */
int locks_each_changeset_key(const void *cs, int cslen,
			     int (*fn)(const void *key, size_t klen, void *arg), void *arg);

#endif
