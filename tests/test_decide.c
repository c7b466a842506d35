/*
 * test_decide.c — a shard as the decider of a distributed transaction
 * (wire.fbs: Prepare/Commit `decider`, Resolve, Forget) on one real shard
 * process: a deciding Commit records its decision with the commit, Resolve
 * answers from it (and fences a transaction still active: rolled back, so a
 * late Commit commits nothing), Forget drops it, a prepared transaction
 * keeps its decider in Status and across kill -9, and so does a decision;
 * a prepare log written before deciders existed (no decider column) is
 * upgraded in place and its transaction still commits.  An early prepare is
 * un-prepared by its transaction's next Exec, has its decider rewritten by
 * a second Prepare (durably), and an older transaction's Exec that meets
 * its row is answered Waiting, naming it, while it waits; all of which
 * still holds after kill -9 (the flag is in _sl_prepared).
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/tap.h"

static th_shard S = {.id = 0, .extra = {"--lock-timeout-ms", "300", NULL}};

static int64_t bal(wire_client *c, int id)
{
	char q[128];
	snprintf(q, sizeof q, "SELECT bal FROM acct WHERE id = %d", id);
	return th_int(c, 0, q);
}

static char last_sqlstate[6];

/* One request with a decider; returns the status, -1 on transport error. */
static int call(wire_client *c, wire_op op, uint64_t txn, uint32_t decider)
{
	wire_request q = {.op = op, .txn = txn, .ts = txn, .decider = decider};
	wire_response r;
	char err[128];
	if (wire_client_call(c, &q, &r, err, sizeof err) != 0)
		return -1;
	snprintf(last_sqlstate, sizeof last_sqlstate, "%s", r.sqlstate ? r.sqlstate : "");
	return (int)r.status;
}

static int forget(wire_client *c, uint64_t txn)
{
	wire_request q = {.op = WIRE_OP_FORGET, .ended = &txn, .nended = 1};
	wire_response r;
	char err[128];
	if (wire_client_call(c, &q, &r, err, sizeof err) != 0)
		return -1;
	return (int)r.status;
}

/* Exec inside txn (opening it here). */
static int txn_exec(wire_client *c, uint64_t txn, const char *sql)
{
	wire_request q = {.op = WIRE_OP_EXEC, .txn = txn, .ts = txn, .sql = sql, .sql_len = (uint32_t)strlen(sql),
			  .begin = true};
	wire_response r;
	char err[128];
	if (wire_client_call(c, &q, &r, err, sizeof err) != 0)
		return -1;
	return (int)r.status;
}

/* The Status row of txn: its state and decider columns ("" if absent). */
static int status_of(wire_client *c, uint64_t txn, char *state, size_t slen, char *decider, size_t dlen)
{
	wire_response r;
	state[0] = decider[0] = 0;
	if (th_call(c, WIRE_OP_STATUS, 0, 0, NULL, &r) != 0 || r.status != WIRE_OK || r.ncols < 7)
		return -1;
	char want[24];
	snprintf(want, sizeof want, "%" PRIu64, txn);
	for (uint32_t i = 0; i < r.nrows; i++) {
		const wire_value *row = r.cells + (size_t)i * r.ncols;
		if (strcmp(row[0].p, want) == 0) {
			snprintf(state, slen, "%s", (const char *)row[1].p);
			snprintf(decider, dlen, "%s", (const char *)row[6].p);
		}
	}
	return 0;
}

/* An older transaction (txn = ts = older) sends sql on a connection of its
 * own: 1 if the first answer is an interim Waiting naming holder. */
static int older_waits(wire_client *old, uint64_t older, const char *sql, uint64_t holder)
{
	wire_request q = {.op = WIRE_OP_EXEC, .txn = older, .ts = older, .begin = true, .sql = sql};
	q.sql_len = (uint32_t)strlen(sql);
	wire_response r;
	char err[128];
	return old && wire_client_call(old, &q, &r, err, sizeof err) == 0 && r.status == WIRE_WAITING &&
	       r.changes == (int64_t)holder;
}

/* ... then its final answer is the lock timeout's 40001; it is rolled back
 * and its connection closed. */
static int older_times_out(wire_client *old, uint64_t older)
{
	wire_response r;
	char err[128];
	int timed_out = old && wire_client_recv(old, &r, 2000, err, sizeof err) == 0 && r.status == WIRE_ERROR &&
			r.sqlstate && strcmp(r.sqlstate, "40001") == 0;
	if (old) {
		th_call(old, WIRE_OP_ROLLBACK, older, older, NULL, &r);
		wire_client_close(old);
	}
	return timed_out;
}

int main(void)
{
	if (th_shard_start(&S) != 0)
		bail("cannot start a shard (is $SHARDLITE set?)");
	wire_client *c = th_connect(&S);
	if (!c)
		bail("cannot connect");
	char state[32], dec[32];
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)") == WIRE_OK &&
		   th_status(c, WIRE_OP_EXEC, 0, 0, "INSERT INTO acct VALUES (1, 100), (2, 100), (3, 100)") == WIRE_OK,
	   "setup");

	/* the deciding commit */
	ok(txn_exec(c, 101, "UPDATE acct SET bal = bal - 10 WHERE id = 1") == WIRE_OK, "txn 101 writes");
	ok(call(c, WIRE_OP_RESOLVE, 999, 0) == WIRE_NOT_FOUND, "Resolve of an unknown txn: NotFound");
	ok(call(c, WIRE_OP_COMMIT, 101, 1) == WIRE_OK && bal(c, 1) == 90, "a deciding Commit commits");
	ok(call(c, WIRE_OP_RESOLVE, 101, 0) == WIRE_OK, "Resolve: committed");
	ok(status_of(c, 101, state, sizeof state, dec, sizeof dec) == 0 && strcmp(state, "decided") == 0,
	   "Status lists the decision record (%s)", state);
	ok(call(c, WIRE_OP_RESOLVE, 0, 0) == WIRE_ERROR, "Resolve without a txn is refused");

	/* an ordinary one-phase commit records nothing */
	ok(txn_exec(c, 102, "UPDATE acct SET bal = bal + 1 WHERE id = 2") == WIRE_OK &&
		   call(c, WIRE_OP_COMMIT, 102, 0) == WIRE_OK && bal(c, 2) == 101,
	   "a Commit without decider commits");
	ok(call(c, WIRE_OP_RESOLVE, 102, 0) == WIRE_NOT_FOUND, "... and leaves no decision record");

	/* the fence: Resolve before the Commit */
	ok(txn_exec(c, 103, "UPDATE acct SET bal = bal + 5 WHERE id = 3") == WIRE_OK, "txn 103 writes");
	ok(call(c, WIRE_OP_RESOLVE, 103, 0) == WIRE_NOT_FOUND, "Resolve of a txn still active: NotFound");
	ok(call(c, WIRE_OP_COMMIT, 103, 1) == WIRE_NOT_FOUND && bal(c, 3) == 100,
	   "... it was rolled back: the late Commit commits nothing");
	ok(call(c, WIRE_OP_RESOLVE, 103, 0) == WIRE_NOT_FOUND, "... and Resolve still says NotFound");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = bal WHERE id = 3") == WIRE_OK,
	   "... and its row lock is gone");

	/* a participant prepared with its decider */
	ok(txn_exec(c, 104, "UPDATE acct SET bal = bal + 7 WHERE id = 3") == WIRE_OK &&
		   call(c, WIRE_OP_PREPARE, 104, 6) == WIRE_OK,
	   "txn 104 prepared, decided by shard 5");
	ok(status_of(c, 104, state, sizeof state, dec, sizeof dec) == 0 && strcmp(state, "prepared") == 0 &&
		   strcmp(dec, "5") == 0,
	   "Status: prepared, decider 5 (%s, %s)", state, dec);
	ok(call(c, WIRE_OP_RESOLVE, 104, 0) == WIRE_ERROR, "Resolve of a txn prepared here is refused");

	/* an early prepare (Request.early): un-prepared by the txn's next Exec,
	 * its decider rewritten by a second Prepare; an older txn meeting its
	 * row is parked and told (interim Waiting naming it) */
	wire_request ep = {.op = WIRE_OP_PREPARE, .txn = 107, .ts = 107, .decider = 6, .early = true};
	wire_response er;
	char eerr[128];
	ok(txn_exec(c, 107, "UPDATE acct SET bal = bal + 3 WHERE id = 1") == WIRE_OK &&
		   wire_client_call(c, &ep, &er, eerr, sizeof eerr) == 0 && er.status == WIRE_OK &&
		   status_of(c, 107, state, sizeof state, dec, sizeof dec) == 0 && strcmp(state, "prepared") == 0,
	   "txn 107 prepared early (%s)", state);
	ok(txn_exec(c, 107, "UPDATE acct SET bal = bal + 1 WHERE id = 1") == WIRE_OK &&
		   status_of(c, 107, state, sizeof state, dec, sizeof dec) == 0 && strcmp(state, "active") == 0,
	   "its next Exec un-prepares it and runs (%s)", state);
	ok(wire_client_call(c, &ep, &er, eerr, sizeof eerr) == 0 && er.status == WIRE_OK, "prepared early again");
	wire_client *old = th_connect(&S);
	ok(older_waits(old, 50, "UPDATE acct SET bal = bal + 100 WHERE id = 1", 107),
	   "an older txn's Exec on its row waits, answered Waiting naming txn 107 first");
	ok(call(c, WIRE_OP_PREPARE, 107, 8) == WIRE_OK && status_of(c, 107, state, sizeof state, dec, sizeof dec) == 0 &&
		   strcmp(state, "prepared") == 0 && strcmp(dec, "7") == 0,
	   "a second Prepare rewrites its decider (%s, decider %s)", state, dec);
	ok(call(c, WIRE_OP_ROLLBACK_PREPARED, 107, 0) == WIRE_ERROR && strcmp(last_sqlstate, "55000") == 0,
	   "... and only a sender that knows the new decider ends it");
	ok(older_times_out(old, 50), "the older txn, no longer wounding a prepared one, times out waiting (40001)");

	/* kill -9: the decision and the prepared decider survive */
	wire_client_close(c);
	th_shard_kill9(&S);
	ok(th_shard_start(&S) == 0, "kill -9 and restart");
	c = th_connect(&S);
	if (!c)
		bail("cannot reconnect");
	ok(call(c, WIRE_OP_RESOLVE, 101, 0) == WIRE_OK, "the decision record survived");
	ok(status_of(c, 104, state, sizeof state, dec, sizeof dec) == 0 && strcmp(state, "prepared") == 0 &&
		   strcmp(dec, "5") == 0,
	   "the prepared txn kept its decider (%s, %s)", state, dec);
	ok(call(c, WIRE_OP_ROLLBACK_PREPARED, 104, 0) == WIRE_ERROR && strcmp(last_sqlstate, "55000") == 0,
	   "a ROLLBACK PREPARED that does not know the decider's answer is refused");
	ok(call(c, WIRE_OP_COMMIT_PREPARED, 104, 0) == WIRE_ERROR && bal(c, 3) == 100,
	   "... so is such a COMMIT PREPARED");
	ok(call(c, WIRE_OP_COMMIT_PREPARED, 104, 6) == WIRE_OK && bal(c, 3) == 107,
	   "a COMMIT PREPARED with the decider's answer commits");
	ok(status_of(c, 107, state, sizeof state, dec, sizeof dec) == 0 && strcmp(state, "prepared") == 0 &&
		   strcmp(dec, "7") == 0,
	   "the early-prepared txn kept its rewritten decider (%s, %s)", state, dec);
	ok(call(c, WIRE_OP_COMMIT_PREPARED, 107, 8) == WIRE_OK && bal(c, 1) == 94, "... and commits (both its writes)");

	/* an early prepare survives kill -9 as an early prepare
	 * (_sl_prepared.early): an older txn meeting its row is answered
	 * Waiting, naming it, and its own next Exec un-prepares it */
	int64_t b2 = bal(c, 2);
	wire_request ep8 = {.op = WIRE_OP_PREPARE, .txn = 108, .ts = 108, .decider = 6, .early = true};
	ok(txn_exec(c, 108, "UPDATE acct SET bal = bal + 1 WHERE id = 2") == WIRE_OK &&
		   wire_client_call(c, &ep8, &er, eerr, sizeof eerr) == 0 && er.status == WIRE_OK,
	   "txn 108 prepared early");
	wire_client_close(c);
	th_shard_kill9(&S);
	ok(th_shard_start(&S) == 0 && (c = th_connect(&S)) != NULL, "kill -9 and restart");
	if (!c)
		bail("cannot reconnect");
	ok(status_of(c, 108, state, sizeof state, dec, sizeof dec) == 0 && strcmp(state, "prepared") == 0 &&
		   strcmp(dec, "5") == 0,
	   "txn 108 is prepared after the restart, decider 5 (%s, %s)", state, dec);
	old = th_connect(&S);
	ok(older_waits(old, 52, "UPDATE acct SET bal = bal + 100 WHERE id = 2", 108),
	   "an older txn's Exec on its row is answered Waiting naming txn 108: still an early prepare");
	ok(older_times_out(old, 52), "... (nobody wounds it here: the older one times out, 40001)");
	ok(txn_exec(c, 108, "UPDATE acct SET bal = bal + 1 WHERE id = 2") == WIRE_OK &&
		   status_of(c, 108, state, sizeof state, dec, sizeof dec) == 0 && strcmp(state, "active") == 0,
	   "txn 108's next Exec un-prepares it and runs (%s)", state);
	ok(call(c, WIRE_OP_ROLLBACK, 108, 0) == WIRE_OK && bal(c, 2) == b2 &&
		   status_of(c, 108, state, sizeof state, dec, sizeof dec) == 0 && state[0] == 0,
	   "... and its ROLLBACK leaves nothing (balance %" PRId64 ")", b2);

	/* Forget */
	ok(forget(c, 101) == WIRE_OK, "Forget");
	ok(call(c, WIRE_OP_RESOLVE, 101, 0) == WIRE_NOT_FOUND, "... the record is gone");
	ok(status_of(c, 101, state, sizeof state, dec, sizeof dec) == 0 && state[0] == 0, "... from Status too");
	wire_client_close(c);
	th_shard_kill9(&S);
	ok(th_shard_start(&S) == 0 && (c = th_connect(&S)) != NULL && call(c, WIRE_OP_RESOLVE, 101, 0) == WIRE_NOT_FOUND,
	   "... durably");
	/* a prepare log of before deciders: txn 105 prepared in the old format */
	ok(c && txn_exec(c, 105, "UPDATE acct SET bal = bal + 1 WHERE id = 2") == WIRE_OK &&
		   call(c, WIRE_OP_PREPARE, 105, 0) == WIRE_OK,
	   "txn 105 prepared without a decider");
	if (c)
		wire_client_close(c);
	ok(th_shard_term(&S) == 0, "SIGTERM: clean exit");
	char db[700];
	snprintf(db, sizeof db, "%s/shard.db", S.dir);
	sqlite3 *h = NULL;
	int rc = sqlite3_open(db, &h);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(h,
				  "CREATE TABLE old_prep AS SELECT txn, ts, changeset, prepared_at FROM _sl_prepared;"
				  "DROP TABLE _sl_prepared;"
				  "CREATE TABLE _sl_prepared(txn INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
				  " changeset BLOB NOT NULL, prepared_at INTEGER NOT NULL);"
				  "INSERT INTO _sl_prepared SELECT * FROM old_prep; DROP TABLE old_prep;",
				  NULL, NULL, NULL);
	sqlite3_close(h);
	ok(rc == SQLITE_OK, "the prepare log rewritten in the old format (no decider column)");
	ok(th_shard_start(&S) == 0 && (c = th_connect(&S)) != NULL, "the shard starts on it");
	ok(c && status_of(c, 105, state, sizeof state, dec, sizeof dec) == 0 && strcmp(state, "prepared") == 0 &&
		   dec[0] == 0,
	   "txn 105 is recovered prepared, without a decider (%s, '%s')", state, dec);
	ok(c && call(c, WIRE_OP_COMMIT_PREPARED, 105, 0) == WIRE_OK && bal(c, 2) == 102,
	   "... and a plain COMMIT PREPARED commits it");
	ok(c && txn_exec(c, 106, "UPDATE acct SET bal = bal + 1 WHERE id = 1") == WIRE_OK &&
		   call(c, WIRE_OP_PREPARE, 106, 3) == WIRE_OK && status_of(c, 106, state, sizeof state, dec, sizeof dec) == 0 &&
		   strcmp(dec, "2") == 0 && call(c, WIRE_OP_ROLLBACK_PREPARED, 106, 3) == WIRE_OK,
	   "the upgraded log stores deciders");
	if (c)
		wire_client_close(c);
	ok(th_shard_term(&S) == 0, "SIGTERM: clean exit");
	th_cleanup();
	return plan_done();
}
