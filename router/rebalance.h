/*
 * rebalance.h — online rebalancing inside the router: adding shards and
 * moving hash buckets between shards while transactions run.
 *
 * A move takes a set of buckets B of every HASH table from shard S to shard
 * T (docs/rebalance.md):
 *
 *   copy      rows of B on S are copied into private staging tables on T
 *             ("_slmove_<move id>_<table>"), invisible to every query; then
 *             caught up again (a row-by-row diff of S against the rows last
 *             written there);
 *   cutover   the gate closes for B: statements that would reach B (and
 *             scatter writes and DDL) wait in the router; transactions that
 *             already touched S finish; a final diff runs at a consistent cut
 *             and the staging copy is verified (T's own row count and
 *             checksum equal to those of the rows read from S);
 *   switch    the catalog gives B to T (durably, epoch + 1), both shards get
 *             their new bucket lists, T inserts the staged rows and S deletes
 *             B's rows (two autocommit statements, ordered at the consistent
 *             cut as one coord_apply, so no reader ever sees the rows twice
 *             or not at all);
 *   done      the gate opens; waiting statements are planned again with the
 *             new map and go to T.
 *
 * Crash safety: the move is logged in the catalog (sl_moves).  A move found
 * in "copy" at start begins again (copying is idempotent); one found in
 * "switch" keeps its buckets gated (and scatter reads of S and T held) and
 * redoes the switch, whose statements are idempotent, until both succeed.
 *
 * Invariants: moves run on at most NLANES lanes at once, on disjoint buckets;
 * the gate is held by at most one lane; while it is closed no statement
 * reaches B except those of transactions that touched S before it closed,
 * and the switch starts only once those have ended.
 */
#ifndef SHARDLITE_REBALANCE_H
#define SHARDLITE_REBALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/plan.h"
#include "router/sql.h"

struct router_server;
typedef struct rebalancer rebalancer;

rebalancer *rebalance_open(struct router_server *srv);
void rebalance_close(rebalancer *rb);

/* ---- the gate ---------------------------------------------------------------- */

/* Nonzero while a cutover holds its gate closed: the generation sessions use
 * to tell whether they were part of the drain (session.c). */
uint64_t rebalance_gate_gen(const rebalancer *rb);
/* The shard being drained while the gate is closed. */
size_t rebalance_gate_src(const rebalancer *rb);
/* Would this batch (of a statement on table, NULL if none) have to wait for
 * the gate? */
bool rebalance_blocks(const rebalancer *rb, const plan_batch *b, const char *table, bool writes, bool ddl);
/* Does an in-flight batch still hold the cutover back? */
bool rebalance_holds(const rebalancer *rb, const plan_batch *b, const char *table, bool writes);
/* Park until the gate opens: wake(arg) runs once, later, from the loop.
 * rebalance_unwait() forgets a parked waiter (its session closed). */
int rebalance_wait(rebalancer *rb, void (*wake)(void *arg), void *arg);
void rebalance_unwait(rebalancer *rb, void *arg);

/* ---- administration ------------------------------------------------------------- */

typedef void (*rebalance_cb)(void *arg, int ok, const char *sqlstate, const char *message);

/* ALTER CLUSTER ADD SHARD 'host:port': copies the schema and the reference
 * tables to the new shard, then registers it (it owns no bucket yet). */
void rebalance_add_shard(rebalancer *rb, const char *addr, rebalance_cb done, void *arg);
/* ALTER CLUSTER REMOVE SHARD n: queues moves of all its buckets to the other
 * shards (fewest buckets first); once they are done, the shard is drained
 * (nothing may reach it, transactions that touched it finish) and marked
 * removed in the catalog.  done() once the moves are queued. */
void rebalance_remove_shard(rebalancer *rb, size_t shard, rebalance_cb done, void *arg);
bool rebalance_draining(const rebalancer *rb, size_t shard);
/* ALTER TABLE t MOVE RANGE r TO SHARD n: queues a move of one range of a
 * RANGE table (the same phases; its gate stops that table's statements on
 * the two shards). */
int rebalance_move_range(rebalancer *rb, const char *table, size_t range, size_t dst, sql_error *err);
/* A range move of this table is queued or running (SPLIT AT must wait). */
bool rebalance_table_busy(const rebalancer *rb, const char *table);
/* MOVE BUCKET b[, ...] TO SHARD n: queues one move. */
int rebalance_move(rebalancer *rb, const uint32_t *buckets, size_t n, size_t dst, sql_error *err);
/* REBALANCE [TABLE t]: plans moves that even out the shards' rows (t's rows
 * only, if given; buckets count when no table has rows); done() once planned,
 * with the number of moves in the message. */
void rebalance_start(rebalancer *rb, const char *table, rebalance_cb done, void *arg);
/* CANCEL REBALANCE: drops queued moves and stops the running one unless it
 * is already switching.  Returns how many moves were cancelled. */
size_t rebalance_cancel(rebalancer *rb);

/* SHOW REBALANCE */
typedef struct {
	char id[24], buckets[64], from[8], to[8], phase[24], rows[24], rate[24], eta[24], pause_ms[24],
		verified[160];
} rebalance_row;
size_t rebalance_list(rebalancer *rb, rebalance_row *rows, size_t max);
/* The longest time a client statement waited at a gate, and the longest a
 * gate was closed, in ms, since the router started (SHOW
 * rebalance_max_wait_ms / rebalance_max_pause_ms). */
double rebalance_max_wait_ms(const rebalancer *rb);
double rebalance_max_pause_ms(const rebalancer *rb);

#endif
