/*
 * coordinator.h — two-phase commit across shards, inside the router.
 *
 * State machine of one distributed transaction (ctxn):
 *
 *   coord_commit()
 *        │ PREPARE to every participant
 *        ▼
 *   PREPARING ──any NO / lost participant / timeout──► ABORTING ──► forgotten
 *        │ all YES (Ok or ReadOnly)                   (ROLLBACK PREPARED to all)
 *        ▼
 *   LOGGING  (COMMIT record, group-committed fdatasync)
 *        │ durable: the client's COMMIT returns
 *        ▼
 *   COMMITTING (COMMIT PREPARED to every YES-with-writes participant)
 *        │ all acknowledged (Ok or NotFound)
 *        ▼
 *   DONE record, forgotten
 *
 * With SHARDLITE_2PC_DECIDER=shard (the default) a transaction with two or
 * more participants and a writer among them is decided by its last writer
 * instead of the log (docs/transactions.md):
 *
 *   PREPARING (PREPARE naming the decider to every other participant)
 *        │ all YES
 *        ▼
 *   [HELD_DECIDE while an older read runs] ──► DECIDING: the decider's
 *        one-phase COMMIT, which records the decision with the commit
 *        │ Ok: the client's COMMIT returns      │ error / NotFound: ABORTING
 *        │ no answer: Resolve until it answers (08007 to the client after 10 s)
 *        ▼
 *   COMMITTING (COMMIT PREPARED to the others) ──► Forget to the decider
 *
 * With early prepare (on by default, coord_prepare_early below) the first
 * shard of a two-shard transaction is PREPAREd naming the second while the
 * transaction still runs (EARLY); coord_commit() then starts from there:
 *
 *   EARLY ──coord_commit──► PREPARING (only the early vote outstanding, or
 *     │                      in; grown: every participant prepared again)
 *     └──coord_early_abort, or wounded for an older transaction──► ABORTING
 *
 * Presumed abort: nothing is logged for aborts.  A prepared transaction that
 * a shard holds and that is neither in flight here nor committed in the
 * decision log is aborted; one that names a decider is resolved by asking
 * the decider (Resolve), whatever the log says.  Recovery needs no
 * operator: at start and then every second, the coordinator asks every
 * shard for its prepared transactions and resolves each, and drives every
 * logged decision to completion; after a start, reads wait for the first
 * such sweep (at most 3 s).
 */
#ifndef SHARDLITE_COORDINATOR_H
#define SHARDLITE_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "router/catalog.h"
#include "router/shardpool.h"

typedef struct coordinator coordinator;

/* committed: 1 committed, 0 rolled back (sqlstate/message say why). */
typedef void (*coord_done_cb)(void *arg, int committed, const char *sqlstate, const char *message);

/* had_catalog: the router has run here before, so a missing decision log
 * means it was lost (see coord_force). */
coordinator *coord_open(uv_loop_t *loop, shard_pool *pool, const catalog *cat, const char *data_dir,
			bool had_catalog, char *err, size_t errlen);
void coord_close(coordinator *c);

/* Commit txn on its participants (shards[i] wrote there iff wrote[i]).
 * The callback runs once the outcome is decided: for a commit, once the
 * decision is durable; phase two continues afterwards.  hot: a shard where
 * the transaction waited for a row lock (SIZE_MAX: none); if it wrote
 * there, that shard decides, so its rows, which others want, are released
 * at the decision rather than a round trip later by COMMIT PREPARED. */
void coord_commit(coordinator *c, uint64_t txn, uint64_t ts, const size_t *shards, const bool *wrote,
		  size_t n, size_t hot, coord_done_cb cb, void *arg);

/*
 * Early prepare (on unless SHARDLITE_2PC_EARLY=0; only when the last writer
 * decides).  A transaction that wrote on `shard` and now sends its first
 * write to `decider` gets `shard` PREPAREd at once, naming `decider`, while
 * the statement runs there; coord_commit() then adopts it, and a commit
 * that still has exactly those two writers only needs the decider's
 * commit.  From this call on the session must end the transaction through
 * the coordinator: coord_commit(), or coord_early_abort() for a rollback, a
 * failure or a disconnect (which rolls `shard` back; the session rolls back
 * the others).  coord_early_stale() tells it that a statement went to
 * another shard than `decider` (`shard` is un-prepared by its next Exec;
 * the commit then prepares every participant but a new decider again).
 * An older transaction that waits for a row it holds on `shard` wounds it
 * (the shard's Waiting answer): `shard` is rolled back and COMMIT answers
 * 40001.  -1: not done (off, out of memory, already in flight).
 */
int coord_prepare_early(coordinator *c, uint64_t txn, uint64_t ts, size_t shard, size_t decider);
void coord_early_stale(coordinator *c, uint64_t txn);
void coord_early_abort(coordinator *c, uint64_t txn);

/*
 * Consistent cut for statements that read several shards.  No such read
 * may see some but not all of a distributed transaction's writes.  Phase
 * two is the only moment a transaction is visible on some participants and
 * not yet on others, so:
 *
 *  - every committed transaction gets the coordinator's epoch when its
 *    decision becomes durable; every read gets the current epoch when it
 *    begins, and the epoch then advances;
 *  - a read starts only once every transaction of an epoch <= its own has
 *    finished phase two (acknowledged by all participants): it sees all of
 *    them, entirely;
 *  - a transaction starts phase two only when no read of a smaller epoch is
 *    still running: those reads see none of it.
 *
 * Waits always point from a newer epoch to an older one, so they end.
 * coord_read_begin() never calls back from inside itself: if the read may
 * run at once, coord_read_ready() says so; otherwise ready() is called
 * later, once.  coord_read_end() must follow once the read can no longer
 * see anything new: when every shard it reads has fixed its snapshot (an
 * interim Started answer, wire.fbs) or answered, or it is abandoned.
 */
typedef struct coord_read coord_read;
typedef void (*coord_read_cb)(void *arg);
coord_read *coord_read_begin(coordinator *c, coord_read_cb ready, void *arg);
bool coord_read_ready(const coord_read *r);
void coord_read_end(coordinator *c, coord_read *r);

/*
 * Visibility of acknowledged commits.  A client hears "committed" before
 * phase two is done, so a statement that starts afterwards, in any session,
 * could reach a participant that still holds the transaction prepared: it
 * would miss the transaction's rows there, and a write would miss them
 * without waiting for their locks (an UPDATE of a row the transaction
 * inserts finds no row), which can commit half of a transfer.
 *
 * coord_on_visible() returns true if every commit acknowledged so far is
 * applied on shards[0..n); otherwise false, and ready(arg) runs once, when
 * those commits (not later ones) are.  A read at a consistent cut needs no
 * such wait: its cut covers every acknowledged commit.
 */
bool coord_on_visible(coordinator *c, const size_t *shards, size_t n, coord_read_cb ready, void *arg);

/*
 * A change on several shards that is not a 2PC transaction but must still
 * be seen whole by reads at a consistent cut: a rebalance switch, whose
 * statements (insert the staged rows on the target, delete them on the
 * source) each commit on their own shard.  It is ordered like a commit's
 * phase two: it gets an epoch when it begins, runs (ready) only once no
 * read of an older epoch is still fixing its snapshots, and reads that
 * begin later wait until coord_apply_end(), so each read sees all of it
 * or none of it.  Like coord_read_begin(), coord_apply_begin() never calls
 * back from inside itself: coord_apply_ready() says whether it may run at
 * once.  NULL on out of memory.
 */
typedef struct coord_apply coord_apply;
coord_apply *coord_apply_begin(coordinator *c, coord_read_cb ready, void *arg);
bool coord_apply_ready(const coord_apply *a);
void coord_apply_end(coordinator *c, coord_apply *a);

/*
 * Operator resolution, `COMMIT PREPARED 'txn'` / `ROLLBACK PREPARED 'txn'`.
 *
 * Presumed abort is only right while the decision log is intact: if it is
 * lost (the router's data directory still has its catalog but no
 * decisions.log), a prepared transaction may have committed on other
 * shards already.  Then the coordinator resolves nothing by itself: it lists
 * the in-doubt transactions in SHOW TRANSACTIONS and waits for an operator
 * to decide each one (after looking at the shards), and returns to
 * automatic recovery once a sweep finds none left.
 *
 * coord_force() commits (the decision is logged first, so a crash half-way
 * finishes the job) or rolls back txn on every shard.  Rolling back a
 * transaction with a logged commit decision is refused.  done(arg, ok,
 * sqlstate, message) reports how many shards held it.
 */
typedef void (*coord_force_cb)(void *arg, int ok, const char *sqlstate, const char *message);
void coord_force(coordinator *c, uint64_t txn, bool commit, coord_force_cb done, void *arg);

/* SHOW TRANSACTIONS: rows of (txn, state, participants, age_ms) as text. */
typedef struct {
	char txn[24];
	char state[48];
	char participants[96];
	char age_ms[24];
} coord_row;
size_t coord_list(coordinator *c, coord_row *rows, size_t max);

/* Statistics for benchmarks. */
uint64_t coord_decision_fsyncs(const coordinator *c);
/* Commit latency of the last 16,384 distributed commits (coord_commit() to
 * the decision, the client's COMMIT answer then leaving): median and 99th
 * percentile in ms; returns how many commits they cover (0: none yet). */
size_t coord_commit_latency(const coordinator *c, double *p50_ms, double *p99_ms);

#endif
