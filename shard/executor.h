/*
 * executor.h — where a shard's SQL runs: the writer thread, readers, and
 * the loop thread for light requests (shard_executor_pump).
 *
 * One read-write SQLite connection, the transaction table and the lock
 * table belong to whoever holds the right to run batches: the writer
 * thread, or the loop thread when every queued request is light (see
 * shard_executor_pump).  It takes every queued request at once and runs
 * them as one *batch*: one SQLite transaction and so at most one fsync
 * (group commit).  A failing statement never undoes another request's
 * work: a statement is atomic by itself, and requests of several steps run
 * in their own savepoint (docs/shard.md).  Answers leave the
 * executor only after the batch's COMMIT returned, so nothing is
 * acknowledged before it is durable.
 *
 * Reader threads own read-only connections and run autocommit requests the
 * sender flagged readonly, against the last committed snapshot.
 *
 * Transactions (ids chosen by the sender) keep their writes in a private
 * workspace, a changeset invisible to others:
 *
 *      Exec(txn)               Prepare (fsync)         CommitPrepared (fsync)
 *   ∅ ──────────► ACTIVE ────────────────► PREPARED ─────────────────► ∅ (applied)
 *                   │ Commit (1PC, fsync): applied      │ RollbackPrepared
 *                   │ Rollback / conn closed / idle     ▼
 *                   └──────────────────────────────►  ∅ (dropped)
 *                   ▲                          │
 *                   └─── Exec, if prepared early (Request.early): the
 *                        record is deleted, the workspace kept
 *
 * An early-prepared transaction is never wounded here: an older txn's Exec
 * that meets one of its locks parks as for any prepared holder and, after
 * the wound delay below if still parked on it, gets an interim Waiting
 * answer naming it, so the router can roll it back.  A
 * Prepare of a prepared transaction rewrites its decider.
 *
 * Wounds are deferred (wound_delay_ms): an older txn that meets a younger,
 * active holder parks first, and wounds it only if that same holder still
 * holds the row and is still active once the delay is over.  Most holders
 * finish (or prepare) within it, so a hot row costs waits, not rollbacks;
 * a real deadlock lasts at most the delay.  0 wounds at once.  The Waiting
 * answer about an early-prepared holder waits the same delay.
 *
 * PREPARED transactions live in the table _sl_prepared (txn, ts, changeset)
 * of the shard's own database: PREPARE inserts the row and COMMIT PREPARED
 * applies the changeset and deletes the row in one SQLite transaction, so
 * a crash can never apply a transaction twice or lose a prepared one.  On
 * start they are loaded back with their row locks.  ACTIVE transactions are
 * memory only: a crash forgets them, which is an abort.
 */
#ifndef SHARDLITE_EXECUTOR_H
#define SHARDLITE_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "shard/request.h"

typedef struct shard_executor shard_executor;

typedef struct {
	const char *db_path;
	int nreaders;                 /* reader threads (0: all on the writer) */
	uint32_t lock_timeout_ms;     /* longest wait for a row lock */
	uint32_t idle_timeout_ms;     /* unprepared txn idle this long is rolled back */
	uint32_t wound_delay_ms;      /* an older txn waits this long before wounding */
	int pump;                     /* the loop thread calls shard_executor_pump() */
	/* with pump: from the writer thread, when requests wait in the queue
	 * after its turn: the loop should call shard_executor_pump() soon */
	void (*kick)(void *arg);
	/* called from the thread that ran them, with answered requests
	 * (list through ->next), which it takes over and frees */
	void (*on_answers)(void *arg, shard_req *list);
	void *arg;
} shard_executor_config;

/* Opens the database, recovers prepared transactions, starts the threads. */
shard_executor *shard_executor_start(const shard_executor_config *cfg, char *err, size_t errlen);
/* Hand a request over (any thread).  The executor owns it until it comes
 * back through on_answers (or is freed unanswered by _stop). */
void shard_executor_submit(shard_executor *ex, shard_req *req);
/* With cfg.pump, submitted requests do not wake the writer thread: the
 * thread that submits them (the server's loop) calls this after each turn
 * of its I/O.  If every queued request is light (a statement of a
 * transaction or a saga step, a PREPARE or COMMIT of a small workspace,
 * BEGIN, ROLLBACK, a saga's undo or end, Resolve, Forget, Status; not an
 * autocommit statement, or a statement that recently took more than 20 ms
 * of CPU here) and the writer thread is
 * not running a batch, the batch runs right here, fsync included: two
 * thread hand-offs fewer per request.  Otherwise it wakes the writer
 * thread.  Lock-wait deadlines, wounds, idle timeouts and checkpoints stay
 * with the writer thread.  Either way requests run in the order they came:
 * the queue is only taken by whoever holds the right to run batches. */
void shard_executor_pump(shard_executor *ex);

/* Finish the current batch, stop threads, close the database. */
void shard_executor_stop(shard_executor *ex);

void shard_req_free(shard_req *req);

/* Bucket ownership (the router's Assign): the shard refuses a request routed
 * for a bucket it does not own.  Callable from any thread.  Returns -1 if
 * all are owned (or no map was ever assigned), else the first foreign
 * bucket; *epoch is the map's epoch. */
long shard_executor_foreign_bucket(shard_executor *ex, const uint32_t *buckets, uint32_t n, uint64_t *epoch);

#endif
