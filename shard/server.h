/*
 * server.h — `shardlite shard`: one libuv event loop serving one SQLite
 * database over the wire protocol (txn/wire.h in txn/frame.h frames).
 *
 * The loop thread only moves bytes: it reads frames, verifies and decodes
 * them and hands requests to the executor (shard/executor.h); the thread
 * that ran a request writes its answer to the socket itself
 * (shard/outbox.h), so an answer costs no wake-up of the loop.  A bad frame closes that
 * connection only, with its reason logged; everyone else keeps being
 * served.  SIGTERM or SIGINT: finish the batch in progress, close, exit 0.
 */
#ifndef SHARDLITE_SERVER_H
#define SHARDLITE_SERVER_H

#include <stdint.h>

typedef struct {
	int id;
	const char *host;
	int port;
	const char *data_dir;
	int nreaders;
	uint32_t lock_timeout_ms;
	uint32_t idle_timeout_ms;
	uint32_t wound_delay_ms;
} shard_server_config;

/* Runs until a signal stops it.  Returns the process exit status. */
int shard_server_run(const shard_server_config *cfg);

#endif
