/*
 * saga.h — saga transactions: steps that commit on their shard at once,
 * compensations that undo them, and recovery that needs no operator.
 *
 * Where each fact is durable:
 *  - a step, with its id, its row changes and its explicit compensation, in
 *    the shard's _sl_saga table, in the same SQLite transaction as the
 *    step's effects (shard/sagastep.h); a compensation likewise.  So a
 *    step or compensation delivered twice is applied once, and a
 *    compensation that arrives before its step voids it.
 *  - a saga's COMMIT, in the router's saga log (DATA/sagas.log, the
 *    decision log format of decision_log.h) before the client hears it.
 *
 * Presumed abort, as for two-phase commit: a step that a shard holds open
 * ("done") whose saga is neither running here nor committed in the log is
 * compensated.  A sweep every second asks every shard for open steps, so
 * after a router crash every unfinished saga is compensated and every
 * committed one completed, with no operator action.  Compensations run
 * per shard in reverse step order (steps on different shards touch
 * different rows, so only the order on one shard matters).
 *
 * A derived compensation applies only if the rows still hold the step's
 * after-image; otherwise the step stops in "needs attention" (durable on
 * the shard, listed by SHOW SAGAS with the rows) and nothing retries it
 * until an operator runs RESOLVE SAGA 'id' OVERWRITE | ACCEPT.
 *
 * Transient failures (shard unreachable, lock wait timeout) are retried
 * with exponential backoff and full jitter: SHARDLITE_SAGA_RETRIES
 * attempts after the first (default 4), starting at
 * SHARDLITE_SAGA_BACKOFF_MS (default 20 ms), doubling, capped at 1 s.
 * A circuit breaker per shard opens after 3 consecutive transport
 * failures: steps for that shard then fail at once (08006) while a Ping
 * probes it, every 250 ms doubling to 2 s, until it (or the sweep's
 * listing) gets an answer.
 */
#ifndef SHARDLITE_SAGA_H
#define SHARDLITE_SAGA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "router/catalog.h"
#include "router/shardpool.h"

typedef struct saga_engine saga_engine;
typedef struct saga saga;

/* ok: 1 committed / compensated; 0 failed (sqlstate, message say why). */
typedef void (*saga_done_cb)(void *arg, int ok, const char *sqlstate, const char *message);

saga_engine *saga_open(uv_loop_t *loop, shard_pool *pool, const catalog *cat, const char *data_dir, char *err,
		       size_t errlen);
void saga_close(saga_engine *e);

/* A running saga with this (unique) id. */
saga *saga_begin(saga_engine *e, uint64_t id);
uint64_t saga_id(const saga *s);
/* Compensation jobs in flight to a shard (the rebalancer's drain waits for
 * them: a compensation must land before its rows move). */
size_t saga_undoing_on(const saga_engine *e, size_t shard);
size_t saga_nsteps(const saga *s);

/* Run req (its sql, params, buckets, comp) as the saga's next step on
 * shard: op, txn and step are set here.  The request's pointers must stay
 * valid until cb runs.  cb runs exactly once, never from inside. */
void saga_step(saga_engine *e, saga *s, size_t shard, const wire_request *req, shard_cb cb, void *arg);

/* Log the commit durably, answer, then end the steps on their shards.
 * The saga is freed (cb runs after). */
void saga_commit(saga_engine *e, saga *s, saga_done_cb cb, void *arg);
/* Compensate every step, per shard newest first; cb (may be NULL) says
 * whether everything was compensated.  The saga is freed. */
void saga_rollback(saga_engine *e, saga *s, saga_done_cb cb, void *arg);

/* RESOLVE SAGA 'id' OVERWRITE (mode 1) | ACCEPT (mode 2). */
void saga_resolve(saga_engine *e, uint64_t id, int mode, saga_done_cb cb, void *arg);

/* SHOW SAGAS. */
typedef struct {
	char saga[24];
	char state[24];
	char steps[160];
	char detail[400];
	char age_ms[24];
} saga_row;
size_t saga_list(saga_engine *e, saga_row *rows, size_t max);

/* Counters for benchmarks and tests. */
typedef struct {
	uint64_t committed, compensated, attention, retries, fast_fails;
} saga_stats;
saga_stats saga_get_stats(const saga_engine *e);

#endif
