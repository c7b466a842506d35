/*
 * server.c — the router process: catalog, shard pool, listener, signals
 * (see server.h).  Sessions live in session.c.
 */
#include "router/server.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include <uv.h>

#include "coordinator/coordinator.h"
#include "router/catalog.h"
#include "router/rebalance.h"
#include "router/session.h"
#include "router/shardpool.h"

typedef struct {
	router_server srv;
	uv_tcp_t listener;
	uv_signal_t sigterm, sigint;
} router_proc;

static void on_assigned(void *arg, shard_answer *a, const char *error)
{
	size_t shard = (size_t)(uintptr_t)arg;
	if (!a || a->msg.resp.status != WIRE_OK)
		fprintf(stderr, "router: could not give shard %zu its bucket map: %s\n", shard,
			error ? error : (a && a->msg.resp.message ? a->msg.resp.message : "error"));
	shard_answer_free(a);
}

/* Tell every shard which buckets it owns, as of the catalog's epoch: shards
 * refuse requests routed for buckets that are not theirs. */
static void assign_buckets(router_server *srv)
{
	size_t n = catalog_nshards(srv->cat);
	uint32_t *buckets = malloc(CATALOG_BUCKETS * sizeof *buckets);
	if (!buckets)
		return;
	for (size_t i = 0; i < n; i++) {
		if (catalog_shard_removed(srv->cat, i))
			continue;
		uint32_t k = 0;
		for (uint32_t b = 0; b < CATALOG_BUCKETS; b++)
			if (catalog_bucket_shard(srv->cat, b) == i)
				buckets[k++] = b;
		wire_request r = {.op = WIRE_OP_ASSIGN, .epoch = catalog_epoch(srv->cat), .buckets = buckets,
				  .nbuckets = k};
		shard_pool_send(srv->pool, i, &r, on_assigned, (void *)(uintptr_t)i);
	}
	free(buckets);
}

static void on_connection(uv_stream_t *l, int status)
{
	router_proc *rp = l->data;
	if (status < 0 || rp->srv.stopping)
		return;
	session_accept(&rp->srv, l);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	router_proc *rp = sig->data;
	if (rp->srv.stopping)
		return;
	rp->srv.stopping = 1;
	fprintf(stderr, "router: signal %d, shutting down\n", signum);
	session_close_all(&rp->srv);
	rebalance_close(rp->srv.rb);
	rp->srv.rb = NULL;
	coord_close(rp->srv.coord);
	saga_close(rp->srv.sagas);
	uv_close((uv_handle_t *)&rp->listener, NULL);
	uv_close((uv_handle_t *)&rp->sigterm, NULL);
	uv_close((uv_handle_t *)&rp->sigint, NULL);
	shard_pool_close(rp->srv.pool);
	rp->srv.pool = NULL;
}

int router_run(const router_config *cfg)
{
	router_proc rp;
	memset(&rp, 0, sizeof rp);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	if (mkdir(cfg->data_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "router: cannot create %s: %s\n", cfg->data_dir, strerror(errno));
		return 1;
	}
	char path[4096], err[512];
	snprintf(path, sizeof path, "%s/catalog.db", cfg->data_dir);
	rp.srv.cat = catalog_open(path, err, sizeof err);
	if (!rp.srv.cat) {
		fprintf(stderr, "router: %s\n", err);
		return 1;
	}
	bool had_catalog = catalog_nshards(rp.srv.cat) > 0;
	if (catalog_nshards(rp.srv.cat) == 0) {
		for (size_t i = 0; i < cfg->nshards; i++) {
			sql_error e = {0};
			if (catalog_add_shard(rp.srv.cat, cfg->shards[i], &e) < 0) {
				fprintf(stderr, "router: adding shard %s: %s\n", cfg->shards[i], e.message);
				catalog_close(rp.srv.cat);
				return 1;
			}
		}
	} else if (cfg->nshards) {
		fprintf(stderr, "router: the catalog already lists %zu shard(s); --shards is ignored\n",
			catalog_nshards(rp.srv.cat));
	}
	if (catalog_nshards(rp.srv.cat) == 0) {
		fprintf(stderr, "router: no shards: give --shards HOST:PORT,... on the first start\n");
		catalog_close(rp.srv.cat);
		return 1;
	}
	rp.srv.loop = uv_default_loop();
	rp.srv.pool = shard_pool_new(rp.srv.loop);
	for (size_t i = 0; rp.srv.pool && i < catalog_nshards(rp.srv.cat); i++)
		shard_pool_set_addr(rp.srv.pool, i, catalog_shard_addr(rp.srv.cat, i));
	rp.srv.coord = coord_open(rp.srv.loop, rp.srv.pool, rp.srv.cat, cfg->data_dir, had_catalog, err, sizeof err);
	if (!rp.srv.coord) {
		fprintf(stderr, "router: coordinator: %s\n", err);
		catalog_close(rp.srv.cat);
		return 1;
	}
	rp.srv.sagas = saga_open(rp.srv.loop, rp.srv.pool, rp.srv.cat, cfg->data_dir, err, sizeof err);
	if (!rp.srv.sagas) {
		fprintf(stderr, "router: saga engine: %s\n", err);
		catalog_close(rp.srv.cat);
		return 1;
	}
	rp.srv.rb = rebalance_open(&rp.srv);
	if (!rp.srv.rb) {
		fprintf(stderr, "router: rebalancer: out of memory\n");
		catalog_close(rp.srv.cat);
		return 1;
	}
	struct sockaddr_in addr;
	int rc = uv_ip4_addr(cfg->host, cfg->port, &addr);
	if (rc == 0)
		rc = uv_tcp_init(rp.srv.loop, &rp.listener);
	rp.listener.data = &rp;
	if (rc == 0)
		rc = uv_tcp_bind(&rp.listener, (const struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&rp.listener, 511, on_connection);
	if (rc != 0) {
		fprintf(stderr, "router: cannot listen on %s:%d: %s\n", cfg->host, cfg->port, uv_strerror(rc));
		catalog_close(rp.srv.cat);
		return 1;
	}
	assign_buckets(&rp.srv);
	uv_signal_init(rp.srv.loop, &rp.sigterm);
	uv_signal_init(rp.srv.loop, &rp.sigint);
	rp.sigterm.data = rp.sigint.data = &rp;
	uv_signal_start(&rp.sigterm, on_signal, SIGTERM);
	uv_signal_start(&rp.sigint, on_signal, SIGINT);
	fprintf(stderr, "router: serving PostgreSQL protocol on %s:%d, %zu shard(s), catalog %s\n", cfg->host,
		cfg->port, catalog_nshards(rp.srv.cat), path);
	uv_run(rp.srv.loop, UV_RUN_DEFAULT);
	uv_loop_close(rp.srv.loop);
	catalog_close(rp.srv.cat);
	fprintf(stderr, "router: stopped\n");
	return 0;
}
