/*
 * session.h — one client connection of the router: the PostgreSQL protocol
 * state machine and statement execution.  Internal to router/.
 */
#ifndef SHARDLITE_SESSION_H
#define SHARDLITE_SESSION_H

#include <stdint.h>
#include <uv.h>

#include "coordinator/coordinator.h"
#include "coordinator/saga.h"
#include "router/catalog.h"
#include "router/shardpool.h"

typedef struct router_server {
	uv_loop_t *loop;
	catalog *cat;
	shard_pool *pool;
	coordinator *coord;
	saga_engine *sagas;
	uint64_t next_txn;      /* last transaction id handed out */
	uint32_t next_pid;
	struct session *sessions;  /* all live sessions */
	struct rebalancer *rb;     /* online rebalancing (router/rebalance.h) */
	size_t zombies;            /* sessions closed while a statement was in flight */
	int stopping;
} router_server;

typedef struct session session;

/* Accept a client on the listener. */
void session_accept(router_server *srv, uv_stream_t *listener);
/* Close every session (shutdown). */
void session_close_all(router_server *srv);
/* A fresh transaction id: strictly increasing, unique across restarts
 * (wall-clock microseconds, bumped past the last one).  Also the
 * transaction's age for wait-die. */
uint64_t router_new_txn(router_server *srv);

/* For the rebalancer's cutover (router/rebalance.h).  mark: the sessions
 * whose open transaction touched shard src (or that run a saga) may go on
 * through the gate of generation gen.  count: sessions that still hold the
 * cutover back: such a transaction still open, or a statement in flight that
 * the gate would stop. */
struct rebalancer;
void session_drain_mark(router_server *srv, size_t src, uint64_t gen);
size_t session_drain_count(router_server *srv, const struct rebalancer *rb);
/* A shard_cb that drops the answer (fire-and-forget requests). */
void session_ignore_shard_answer(void *arg, shard_answer *a, const char *err);

#endif
