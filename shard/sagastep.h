/*
 * sagastep.h — a shard's record of saga steps (table _sl_saga), the basis
 * of exactly-once steps and compensations.
 *
 * One row per (saga, step) this shard has seen:
 *
 *   state        meaning                                  final?
 *   done         the step ran and committed here           no
 *   attention    its compensation found rows changed       no (an operator
 *                since the step, and stopped                  decides)
 *   compensated  its compensation ran (or was accepted)    yes
 *   void         compensated before it ever ran: a late    yes
 *                copy of the step must not run
 *   committed    the saga committed                        yes
 *
 * Invariants:
 *  - A step's row is written in the same SQLite transaction as the step's
 *    effects, a compensation's state change in the same transaction as the
 *    compensation's effects: a retry finds the row and does nothing twice.
 *  - `changeset` (the step's row changes, for a derived compensation) and
 *    `comp` (an explicit compensation: a wire-encoded Request with sql and
 *    params) are kept only while the step is not final.
 *  - Final rows are purged after SAGASTEP_KEEP_US: long after any late copy
 *    of a request could still arrive.  Saga ids are the router's wall-clock
 *    microseconds, so the purge walks a range of the primary key.
 *
 * All functions run on the writer thread inside its batch transaction.
 */
#ifndef SHARDLITE_SAGASTEP_H
#define SHARDLITE_SAGASTEP_H

#include <stdint.h>

#include "shard/store.h"
#include "txn/wire.h"

#define SAGASTEP_KEEP_US (120ull * 1000000)

typedef enum {
	SS_NONE = 0, SS_DONE, SS_ATTENTION, SS_COMPENSATED, SS_VOID, SS_COMMITTED
} sagastep_state;

typedef struct {
	sagastep_state state;
	int64_t changes;
	void *changeset;        /* sqlite3_malloc'd, or NULL */
	int cslen;
	uint8_t *comp;          /* malloc'd encoded Request, or NULL (derived) */
	size_t complen;
	int has_comp;           /* an explicit compensation was given (maybe empty) */
} sagastep_row;

int sagastep_init(shard_store *st, char *err, size_t errlen);

/* Load (saga, step); row->state is SS_NONE when absent.  0 or -1. */
int sagastep_get(shard_store *st, uint64_t saga, uint32_t step, sagastep_row *row);
void sagastep_row_free(sagastep_row *row);

/* Record a step that just ran: r carries the step's comp/comp_params. */
int sagastep_record(shard_store *st, const wire_request *r, const void *cs, int cslen, int64_t changes);
/* Set a step's state (message for attention); creates the row if absent. */
int sagastep_set(shard_store *st, uint64_t saga, uint32_t step, sagastep_state s, const char *message);
/* The saga committed: every step of it here becomes final. */
int sagastep_end(shard_store *st, uint64_t saga);
/* Drop final rows older than SAGASTEP_KEEP_US. */
int sagastep_purge(shard_store *st);
/* Open steps as rows (saga, step, state, message, age_ms). */
int sagastep_list(shard_store *st, store_result *res);

/*
 * Apply the inverse of a step's changes.  mode WIRE_UNDO_NORMAL stops at
 * the first row that no longer holds the step's after-image (returns 1,
 * conflict names the rows, nothing applied); WIRE_UNDO_OVERWRITE writes
 * the before-image over such rows.  0 applied, -1 error (res filled).
 */
int sagastep_apply_inverse(shard_store *st, const void *inv, int invlen, int mode, char *conflict,
			   size_t conflictlen, store_result *res);

const char *sagastep_state_name(sagastep_state s);

#endif
