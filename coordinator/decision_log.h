/*
 * decision_log.h — the coordinator's durable record of commit decisions.
 *
 * Presumed abort: only COMMIT decisions are logged.  A transaction whose
 * decision is not in the log is aborted, whoever asks.  The client's COMMIT
 * is acknowledged only after its decision is on disk (fdatasync); decisions
 * arriving together share one write and one fdatasync (group commit), done
 * on libuv's thread pool so the loop never waits for the disk.
 *
 * File format (DIR/decisions.log), little-endian, records back to back:
 *
 *   offset  size  field
 *   0       4     body length B
 *   4       4     CRC-32 (zlib) of the body
 *   8       B     body: u8 kind (1 = COMMIT, 2 = DONE), u64 txn,
 *                 u16 n, n x u16 participant shard indexes
 *
 * A torn or corrupt tail (short record, bad CRC) is where the log ends:
 * such a record was never acknowledged.  On open the log is compacted to
 * the decisions not yet DONE.
 *
 * Invariant: a txn is in `pending` iff a durable COMMIT record exists and no
 * DONE record was written for it.
 */
#ifndef SHARDLITE_DECISION_LOG_H
#define SHARDLITE_DECISION_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct decision_log decision_log;

typedef struct {
	uint64_t txn;
	uint16_t n;
	uint16_t *shards;
} dlog_decision;

/* Called once the COMMIT record is durable (status 0) or could not be made
 * durable (status < 0: the transaction must be treated as aborted). */
typedef void (*dlog_cb)(void *arg, int status);

decision_log *dlog_open(uv_loop_t *loop, const char *path, char *err, size_t errlen);
/* Closes the file; pending callbacks are not called. */
void dlog_close(decision_log *d);

int dlog_commit(decision_log *d, uint64_t txn, const uint16_t *shards, uint16_t n, dlog_cb cb, void *arg);
/* Phase two finished everywhere: forget the decision (written lazily). */
void dlog_done(decision_log *d, uint64_t txn);

/* Committed and not yet done?  With its participants if out != NULL. */
bool dlog_is_committed(const decision_log *d, uint64_t txn, dlog_decision *out);
/* All decisions not yet done (for recovery).  Returns how many were stored. */
size_t dlog_pending(const decision_log *d, dlog_decision *out, size_t max);
size_t dlog_npending(const decision_log *d);

uint64_t dlog_fsyncs(const decision_log *d);

#endif
