/*
 * server.h — `shardlite router`: the PostgreSQL-protocol front end.
 *
 * One libuv loop serves every client session; statements are parsed
 * (router/sql.h), planned against the catalog (router/plan.h), sent to the
 * shards (router/shardpool.h) and their answers merged.  Nothing blocks the
 * loop: catalog writes (DDL only) are the one synchronous disk access.
 */
#ifndef SHARDLITE_ROUTER_SERVER_H
#define SHARDLITE_ROUTER_SERVER_H

#include <stddef.h>

typedef struct {
	const char *host;
	int port;
	const char *data_dir;
	const char *const *shards;  /* addresses for a new catalog, or NULL */
	size_t nshards;
} router_config;

/* Runs until SIGTERM/SIGINT.  Returns the exit status. */
int router_run(const router_config *cfg);

#endif
