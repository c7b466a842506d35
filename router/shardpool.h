/*
 * shardpool.h — the router's connections to its shards, on the router's
 * libuv loop.  One connection per shard carries any number of requests at
 * once (request ids multiplex it); answers come back through callbacks, in
 * any order.
 *
 * Contract:
 *  - shard_pool_send() copies the request (it is encoded at once); the
 *    callback runs exactly once, on the loop thread, either with an answer
 *    (owned by the callee: free it with shard_answer_free) or with ans ==
 *    NULL and a transport error ("connection to shard 2 (127.0.0.1:5436)
 *    lost: ...").  It never runs from inside shard_pool_send().
 *  - A lost connection fails every request in flight on it; the next send
 *    reconnects.
 */
#ifndef SHARDLITE_SHARDPOOL_H
#define SHARDLITE_SHARDPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "txn/wire.h"

typedef struct shard_pool shard_pool;

typedef struct {
	uint8_t *frame;        /* the payload the message points into */
	wire_message msg;      /* msg.resp is the answer */
} shard_answer;

typedef void (*shard_cb)(void *arg, shard_answer *ans, const char *error);

shard_pool *shard_pool_new(uv_loop_t *loop);
/* Set shard i's address (adding shards as needed). */
int shard_pool_set_addr(shard_pool *p, size_t shard, const char *addr);
size_t shard_pool_size(const shard_pool *p);
int shard_pool_send(shard_pool *p, size_t shard, wire_request *req, shard_cb cb, void *arg);
/* The same for a request flagged `snapshot` (wire.fbs): started(arg) runs
 * when the shard's interim Started answer arrives (at most once, always
 * before cb; never if the final answer or an error comes first). */
typedef void (*shard_started_cb)(void *arg);
int shard_pool_send_ex(shard_pool *p, size_t shard, wire_request *req, shard_cb cb, shard_started_cb started,
		       void *arg);
/* Interim Waiting answers (wire.fbs): a statement on `shard` waits for a
 * row lock of the early-prepared transaction `txn`.  waiting(arg, shard,
 * txn) runs for each, on the loop thread; the request stays in flight. */
typedef void (*shard_waiting_cb)(void *arg, size_t shard, uint64_t txn);
void shard_pool_on_waiting(shard_pool *p, shard_waiting_cb waiting, void *arg);
/* Close every connection (their requests fail) and free the pool once the
 * loop has closed the handles. */
void shard_pool_close(shard_pool *p);

void shard_answer_free(shard_answer *a);

#endif
