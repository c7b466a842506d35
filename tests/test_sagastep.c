/*
 * test_sagastep.c — saga steps and compensations on one real shard process
 * (shard/sagastep.h): a step or compensation delivered twice is applied
 * once, a compensation that arrives before its step voids it, a derived
 * compensation stops at rows changed since the step (needs attention) and
 * OVERWRITE / ACCEPT resolve it, an explicit compensation runs with its
 * parameters, records survive kill -9, and SagaEnd makes steps final.
 */
#include <inttypes.h>
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

/* One saga request; returns the response status, -1 on transport error. */
static int saga_op(wire_client *c, wire_op op, uint64_t saga, uint32_t step, const char *sql, const char *comp,
		   const wire_value *cp, uint32_t ncp, uint8_t mode, wire_response *r)
{
	wire_request q = {.op = op, .txn = saga, .step = step, .sql = sql, .sql_len = sql ? (uint32_t)strlen(sql) : 0,
			  .comp = comp, .comp_len = comp ? (uint32_t)strlen(comp) : 0, .comp_params = (wire_value *)cp,
			  .ncomp_params = ncp, .mode = mode};
	char err[128];
	if (wire_client_call(c, &q, r, err, sizeof err) != 0)
		return -1;
	return (int)r->status;
}

static int step(wire_client *c, uint64_t saga, uint32_t n, const char *sql, wire_response *r)
{
	return saga_op(c, WIRE_OP_SAGA_STEP, saga, n, sql, NULL, NULL, 0, 0, r);
}

static int undo(wire_client *c, uint64_t saga, uint32_t n, uint8_t mode, wire_response *r)
{
	return saga_op(c, WIRE_OP_SAGA_UNDO, saga, n, NULL, NULL, NULL, 0, mode, r);
}

/* rows (saga, step, state, ...) of the shard's open steps for saga */
static int open_steps(wire_client *c, uint64_t saga, char *states, size_t len)
{
	wire_response r;
	int rc = th_call(c, WIRE_OP_STATUS, 0, 0, "sagas", &r);
	if (rc != 0 || r.status != WIRE_OK || r.ncols < 5)
		return -1;
	char want[24];
	snprintf(want, sizeof want, "%" PRIu64, saga);
	int n = 0;
	size_t l = 0;
	states[0] = 0;
	for (uint32_t i = 0; i < r.nrows; i++) {
		const wire_value *row = r.cells + (size_t)i * r.ncols;
		if (strcmp(row[0].p, want) != 0)
			continue;
		n++;
		l += (size_t)snprintf(states + l, len > l ? len - l : 0, "%s%s:%s", l ? "," : "", (const char *)row[1].p,
				      (const char *)row[2].p);
	}
	return n;
}

int main(void)
{
	if (th_shard_start(&S) != 0)
		bail("cannot start a shard (is $SHARDLITE set?)");
	wire_client *c = th_connect(&S), *d = th_connect(&S);
	if (!c || !d)
		bail("cannot connect");
	wire_response r;
	char states[256];
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0))") == WIRE_OK &&
		   th_status(c, WIRE_OP_EXEC, 0, 0, "INSERT INTO acct VALUES (1, 100), (2, 100), (3, 100)") == WIRE_OK,
	   "setup");

	/* exactly once */
	ok(step(c, 11, 1, "UPDATE acct SET bal = bal - 10 WHERE id = 1", &r) == WIRE_OK && r.changes == 1, "step 1 runs");
	ok(step(c, 11, 1, "UPDATE acct SET bal = bal - 10 WHERE id = 1", &r) == WIRE_OK && r.changes == 1,
	   "the same step again answers the same outcome");
	ok(bal(c, 1) == 90, "... and is applied once (balance %" PRId64 ")", bal(c, 1));
	ok(step(c, 11, 2, "UPDATE acct SET bal = bal + 10 WHERE id = 2", &r) == WIRE_OK, "step 2 runs");
	ok(open_steps(c, 11, states, sizeof states) == 2 && strcmp(states, "1:done,2:done") == 0,
	   "both steps are open: %s", states);
	ok(undo(c, 11, 2, 0, &r) == WIRE_OK && bal(c, 2) == 100, "compensating step 2 restores its row");
	ok(undo(c, 11, 2, 0, &r) == WIRE_OK && bal(c, 2) == 100, "compensating it again changes nothing");
	ok(step(c, 11, 2, "UPDATE acct SET bal = bal + 10 WHERE id = 2", &r) == WIRE_OK && bal(c, 2) == 100,
	   "a late copy of a compensated step is not applied again");
	ok(undo(c, 11, 1, 0, &r) == WIRE_OK && bal(c, 1) == 100, "compensating step 1");
	ok(open_steps(c, 11, states, sizeof states) == 0, "nothing of saga 11 is open");

	/* a compensation before its step voids it */
	ok(undo(c, 12, 1, 0, &r) == WIRE_OK, "compensating a step that never ran succeeds");
	int st = step(c, 12, 1, "UPDATE acct SET bal = bal - 50 WHERE id = 3", &r);
	char msg[512], state[6];
	snprintf(msg, sizeof msg, "%s", r.message ? r.message : "");
	ok(st == WIRE_ERROR && bal(c, 3) == 100, "the step arriving afterwards is refused and not applied: %s", msg);

	/* a failing step records nothing */
	st = step(c, 13, 1, "UPDATE acct SET bal = bal - 500 WHERE id = 3", &r);
	snprintf(state, sizeof state, "%s", r.sqlstate ? r.sqlstate : "");
	ok(st == WIRE_ERROR && strcmp(state, "23514") == 0 && bal(c, 3) == 100,
	   "a step violating a CHECK fails with 23514 and changes nothing");
	ok(open_steps(c, 13, states, sizeof states) == 0, "... and leaves no record");

	/* INSERT and DELETE steps are undone too */
	ok(step(c, 14, 1, "INSERT INTO acct VALUES (7, 70)", &r) == WIRE_OK &&
		   step(c, 14, 2, "DELETE FROM acct WHERE id = 3", &r) == WIRE_OK,
	   "an INSERT and a DELETE step");
	ok(undo(c, 14, 2, 0, &r) == WIRE_OK && undo(c, 14, 1, 0, &r) == WIRE_OK && bal(c, 3) == 100 &&
		   th_int(c, 0, "SELECT count(*) FROM acct WHERE id = 7") == 0,
	   "undone newest first: the row is back, the inserted one gone");

	/* rows changed since the step: needs attention, then resolved */
	ok(step(c, 15, 1, "UPDATE acct SET bal = bal + 5 WHERE id = 1", &r) == WIRE_OK, "step changes row 1 to 105");
	ok(th_status(d, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 42 WHERE id = 1") == WIRE_OK, "someone else sets it to 42");
	st = undo(c, 15, 1, 0, &r);
	snprintf(state, sizeof state, "%s", r.sqlstate ? r.sqlstate : "");
	snprintf(msg, sizeof msg, "%s", r.message ? r.message : "");
	ok(st == WIRE_ERROR && strcmp(state, "SL002") == 0 && bal(c, 1) == 42,
	   "the derived compensation stops and overwrites nothing: %s", msg);
	ok(strstr(msg, "acct(1)") && strstr(msg, "now (1, 42)"), "the conflict names the row and its values");
	ok(open_steps(c, 15, states, sizeof states) == 1 && strcmp(states, "1:attention") == 0,
	   "the step is listed as needing attention");
	ok(undo(c, 15, 1, 0, &r) == WIRE_ERROR && bal(c, 1) == 42, "asked again, it still refuses");
	ok(undo(c, 15, 1, WIRE_UNDO_OVERWRITE, &r) == WIRE_OK && bal(c, 1) == 100,
	   "OVERWRITE writes the before-image (100) over the row");
	ok(step(c, 16, 1, "UPDATE acct SET bal = bal + 5 WHERE id = 2", &r) == WIRE_OK &&
		   th_status(d, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 1 WHERE id = 2") == WIRE_OK &&
		   undo(c, 16, 1, 0, &r) == WIRE_ERROR,
	   "another conflict");
	ok(undo(c, 16, 1, WIRE_UNDO_ACCEPT, &r) == WIRE_OK && bal(c, 2) == 1 && open_steps(c, 16, states, sizeof states) == 0,
	   "ACCEPT keeps the rows as they are and closes the step");
	ok(th_status(d, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 100 WHERE id = 2") == WIRE_OK, "reset row 2");

	/* explicit compensation, with parameters */
	wire_value p[2] = {{.type = WIRE_INT, .i = 30}, {.type = WIRE_INT, .i = 2}};
	ok(saga_op(c, WIRE_OP_SAGA_STEP, 17, 1, "UPDATE acct SET bal = bal - 30 WHERE id = 2",
		   "UPDATE acct SET bal = bal + ?1 WHERE id = ?2", p, 2, 0, &r) == WIRE_OK && bal(c, 2) == 70,
	   "a step with an explicit compensation");
	ok(th_status(d, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = bal + 1 WHERE id = 2") == WIRE_OK, "the row changes meanwhile (71)");
	ok(undo(c, 17, 1, 0, &r) == WIRE_OK && bal(c, 2) == 101,
	   "the explicit compensation runs as written, on top of the change (%" PRId64 ")", bal(c, 2));
	ok(undo(c, 17, 1, 0, &r) == WIRE_OK && bal(c, 2) == 101, "and only once");
	ok(saga_op(c, WIRE_OP_SAGA_STEP, 18, 1, "UPDATE acct SET bal = bal - 1 WHERE id = 2", "", NULL, 0, 0, &r) == WIRE_OK &&
		   undo(c, 18, 1, 0, &r) == WIRE_OK && bal(c, 2) == 100,
	   "an empty explicit compensation does nothing");
	ok(th_status(d, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 100 WHERE id = 2") == WIRE_OK, "reset row 2");

	/* a SagaEnd riding on a step (Request.ended) */
	ok(th_status(d, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 100 WHERE id = 1") == WIRE_OK &&
		   step(c, 25, 1, "UPDATE acct SET bal = bal - 1 WHERE id = 1", &r) == WIRE_OK &&
		   open_steps(c, 25, states, sizeof states) == 1,
	   "saga 25: a step, open");
	uint64_t ended[] = {25, 99999};
	const char *sql = "UPDATE acct SET bal = bal + 1 WHERE id = 1";
	wire_request q = {.op = WIRE_OP_SAGA_STEP, .txn = 26, .step = 1, .sql = sql, .sql_len = (uint32_t)strlen(sql),
			  .ended = ended, .nended = 2};
	char err[128];
	ok(wire_client_call(c, &q, &r, err, sizeof err) == 0 && r.status == WIRE_OK && r.changes == 1 &&
		   open_steps(c, 25, states, sizeof states) == 0 && open_steps(c, 26, states, sizeof states) == 1,
	   "a step of saga 26 carrying saga 25 as ended: 25's step is final, 26's open");
	ok(undo(c, 25, 1, 0, &r) == WIRE_ERROR && bal(c, 1) == 100, "saga 25's step is never compensated");
	ok(undo(c, 26, 1, 0, &r) == WIRE_OK && bal(c, 1) == 99 && th_status(d, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 100 WHERE id = 1") == WIRE_OK,
	   "saga 26 compensated; row 1 reset");
	q.txn = 27;
	q.sql = "UPDATE acct SET bal = bal - 1000 WHERE id = 1";
	q.sql_len = (uint32_t)strlen(q.sql);
	ended[0] = 26;
	q.nended = 1;
	ok(wire_client_call(c, &q, &r, err, sizeof err) == 0 && r.status == WIRE_ERROR && bal(c, 1) == 100,
	   "a step that fails (CHECK) with an ended saga riding on it fails alone");

	/* durability and SagaEnd */
	ok(step(c, 19, 1, "UPDATE acct SET bal = bal - 1 WHERE id = 1", &r) == WIRE_OK &&
		   step(c, 20, 1, "UPDATE acct SET bal = bal - 1 WHERE id = 2", &r) == WIRE_OK,
	   "two sagas with a step each");
	wire_client_close(c);
	wire_client_close(d);
	th_shard_kill9(&S);
	ok(th_shard_start(&S) == 0, "kill -9 and restart");
	c = th_connect(&S);
	ok(c && open_steps(c, 19, states, sizeof states) == 1 && open_steps(c, 20, states, sizeof states) == 1,
	   "the step records survived");
	ok(step(c, 19, 1, "UPDATE acct SET bal = bal - 1 WHERE id = 1", &r) == WIRE_OK && bal(c, 1) == 99,
	   "a retry after the crash is not applied twice");
	ok(saga_op(c, WIRE_OP_SAGA_END, 19, 0, NULL, NULL, NULL, 0, 0, &r) == WIRE_OK &&
		   open_steps(c, 19, states, sizeof states) == 0,
	   "SagaEnd: the committed saga's steps are final");
	ok(undo(c, 19, 1, 0, &r) == WIRE_ERROR && bal(c, 1) == 99, "a committed step is never compensated");
	ok(undo(c, 20, 1, 0, &r) == WIRE_OK && bal(c, 2) == 100, "the other is compensated after the crash");
	ok(step(c, 0, 1, "SELECT 1", &r) == WIRE_ERROR && step(c, 5, 0, "SELECT 1", &r) == WIRE_ERROR,
	   "a step without saga id or step number is refused");
	wire_client_close(c);
	ok(th_shard_term(&S) == 0, "SIGTERM: clean exit");
	th_cleanup();
	return plan_done();
}
