/*
 * request.h — one request travelling through a shard: decoded on the loop
 * thread, executed on the executor or a reader thread (or inline on the
 * loop), answered from that thread through its sink (shard/outbox.h).
 *
 * Ownership: the request owns its frame payload (the decoded message points
 * into it) and, once executed, its encoded response.  Exactly one thread
 * touches a request at a time; hand-offs go through mutex-protected queues.
 */
#ifndef SHARDLITE_REQUEST_H
#define SHARDLITE_REQUEST_H

#include <stdint.h>

#include "txn/wire.h"

struct lock_entry;
struct outbox;

typedef enum {
	REQ_WIRE = 0,        /* a request from a client */
	REQ_CONN_CLOSED,     /* internal: connection conn_id went away */
	REQ_SHUTDOWN,        /* internal: stop the executor */
} shard_req_kind;

typedef struct shard_req {
	struct shard_req *next;        /* queue link */
	shard_req_kind kind;
	uint64_t conn_id;
	struct outbox *sink;           /* where the answer goes (a reference), or NULL */
	uint8_t *frame;                /* owned payload */
	wire_message msg;              /* decoded from frame */

	/* executor bookkeeping while parked on a row lock */
	struct shard_req *wait_next;   /* on lock_entry.waiters */
	struct shard_req *park_prev, *park_next; /* executor's parked list */
	struct lock_entry *waiting_on;
	uint64_t deadline_ms;
	uint64_t wound_holder;         /* the younger holder it may wound (executor.h) */
	uint64_t wound_at_ms;          /* ... once it has held the row this long */
	int wound_due;                 /* the writer must wake at wound_at_ms */
	int waited;                    /* it was parked at least once */
	int woken;                     /* on a batch's wake list (next links it there) */

	/* the answer */
	uint8_t *out;
	size_t outlen;
} shard_req;

#endif
