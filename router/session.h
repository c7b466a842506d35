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

#endif
