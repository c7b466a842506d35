/*
 * test_shard.c — the shard server end to end: real processes on 127.0.0.1,
 * the real wire protocol, kill -9 for crashes.
 */
#include <inttypes.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tests/harness.h"
#include "tests/tap.h"
#include "txn/rowsum.h"

#define OK_ WIRE_OK

static th_shard S = {.id = 0,
		     .extra = {"--lock-timeout-ms", "400", "--idle-timeout-ms", "800", "--wound-delay-ms", "250", NULL}};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t bal(wire_client *c, int id)
{
	char q[128];
	snprintf(q, sizeof q, "SELECT bal FROM acct WHERE id = %d", id);
	return th_int(c, 0, q);
}

static void test_basics(wire_client *c)
{
	ok(th_status(c, WIRE_OP_EXEC, 0, 0,
		     "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0))") == OK_,
	   "CREATE TABLE");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0,
		     "INSERT INTO acct VALUES (1,100),(2,100),(3,100),(4,100),(5,100),(6,100)") == OK_,
	   "INSERT six accounts");
	ok(th_int(c, 0, "SELECT sum(bal) FROM acct") == 600, "sum is 600");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = bal - 500 WHERE id = 1") == WIRE_ERROR &&
		   strcmp(th_last_sqlstate(), "23514") == 0,
	   "CHECK violation is 23514 (%s)", th_last_sqlstate());
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "INSERT INTO acct VALUES (1, 1)") == WIRE_ERROR &&
		   strcmp(th_last_sqlstate(), "23505") == 0,
	   "duplicate key is 23505");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "SELECT * FROM nope") == WIRE_ERROR &&
		   strcmp(th_last_sqlstate(), "42P01") == 0,
	   "unknown table is 42P01");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "BEGIN") == WIRE_ERROR &&
		   strcmp(th_last_sqlstate(), "0A000") == 0,
	   "transaction control in request SQL is refused");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "DELETE FROM _sl_prepared") == WIRE_ERROR,
	   "internal tables cannot be written");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "SELECT 1; DELETE FROM acct") == WIRE_ERROR &&
		   bal(c, 1) == 100,
	   "a second statement in one request is refused and not run");
	ok(th_int(c, 0, "SELECT count(*) FROM acct") == 6, "session still usable after errors");
}

/* sl_checksum() is txn/rowsum.h's checksum, the one the router computes
 * over wire values to verify a bucket move: every value type, rows in any
 * order. */
static void test_checksum(wire_client *c)
{
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE ck(i, r, t, b, n)") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 0, 0,
			     "INSERT INTO ck VALUES (-7, 2.5, 'héllo', x'00ff10', NULL), (9, -0.25, '', x'', NULL)") == OK_,
	   "a table with every value type");
	uint64_t h1 = rowsum_start(), h2 = rowsum_start();
	h1 = rowsum_value(h1, ROWSUM_INTEGER, -7, 0, NULL, 0);
	h1 = rowsum_value(h1, ROWSUM_REAL, 0, 2.5, NULL, 0);
	h1 = rowsum_value(h1, ROWSUM_TEXT, 0, 0, "h\xc3\xa9llo", 6);
	h1 = rowsum_value(h1, ROWSUM_BLOB, 0, 0, "\x00\xff\x10", 3);
	h1 = rowsum_value(h1, ROWSUM_NULL, 0, 0, NULL, 0);
	h2 = rowsum_value(h2, ROWSUM_INTEGER, 9, 0, NULL, 0);
	h2 = rowsum_value(h2, ROWSUM_REAL, 0, -0.25, NULL, 0);
	h2 = rowsum_value(h2, ROWSUM_TEXT, 0, 0, "", 0);
	h2 = rowsum_value(h2, ROWSUM_BLOB, 0, 0, NULL, 0);
	h2 = rowsum_value(h2, ROWSUM_NULL, 0, 0, NULL, 0);
	int64_t want = (int64_t)(h1 + h2);
	ok(th_int(c, 0, "SELECT sl_checksum(i, r, t, b, n) FROM ck") == want &&
		   th_int(c, 0, "SELECT sl_checksum(i, r, t, b, n) FROM (SELECT * FROM ck ORDER BY i DESC)") == want,
	   "sl_checksum is the sum of the rows' rowsum hashes, in any order");
	ok(th_int(c, 0, "SELECT sl_checksum(i, r, t, b, n) FROM ck WHERE i = 9") == (int64_t)h2 &&
		   th_int(c, 0, "SELECT sl_checksum(i) FROM ck WHERE i > 100") == 0,
	   "one row: its hash; no rows: 0");
	ok(th_int(c, 0, "SELECT sl_checksum(i, r, t, b, n) FROM (SELECT 9 AS i, -0.25 AS r, '' AS t, x'' AS b, 1 AS n)") !=
		   (int64_t)h2,
	   "a changed value changes the checksum");
}

static void test_isolation(wire_client *c, wire_client *c2)
{
	ok(th_status(c, WIRE_OP_EXEC, 10, 0, "UPDATE acct SET bal = bal + 7 WHERE id = 2") == OK_,
	   "txn 10 updates row 2");
	ok(th_int(c, 10, "SELECT bal FROM acct WHERE id = 2") == 107, "txn 10 reads its own write");
	ok(bal(c2, 2) == 100, "others do not see the uncommitted write");
	wire_response r;
	wire_request rq = {.op = WIRE_OP_EXEC, .readonly = true, .sql = "SELECT bal FROM acct WHERE id = 2"};
	rq.sql_len = (uint32_t)strlen(rq.sql);
	char err[128];
	ok(wire_client_call(c2, &rq, &r, err, sizeof err) == 0 && r.nrows == 1 && r.cells[0].i == 100,
	   "a reader thread does not see it either");
	ok(th_status(c, WIRE_OP_EXEC, 10, 0, "INSERT INTO acct VALUES (7, 1)") == OK_ &&
		   th_int(c, 10, "SELECT count(*) FROM acct") == 7 && th_int(c2, 0, "SELECT count(*) FROM acct") == 6,
	   "an insert in a txn is private too");
	ok(th_status(c, WIRE_OP_EXEC, 10, 0, "CREATE TABLE t2(x INTEGER PRIMARY KEY)") == WIRE_ERROR &&
		   strcmp(th_last_sqlstate(), "0A000") == 0,
	   "DDL inside a transaction is refused (0A000)");
	ok(th_status(c, WIRE_OP_COMMIT, 10, 0, NULL) == OK_, "one-phase COMMIT");
	ok(bal(c2, 2) == 107 && th_int(c2, 0, "SELECT count(*) FROM acct") == 7, "now everyone sees both writes");
	ok(th_status(c, WIRE_OP_COMMIT, 10, 0, NULL) == WIRE_NOT_FOUND, "COMMIT of a finished txn is NotFound");
	th_status(c, WIRE_OP_EXEC, 0, 0, "DELETE FROM acct WHERE id = 7");
	th_status(c, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 100 WHERE id = 2");

	/* DELETE without WHERE must be recorded row by row (no truncate) */
	th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE hist(h INTEGER PRIMARY KEY, v INTEGER)");
	th_status(c, WIRE_OP_EXEC, 0, 0, "INSERT INTO hist(v) VALUES (1), (2), (3)");
	ok(th_status(c, WIRE_OP_EXEC, 13, 0, "DELETE FROM hist") == OK_ &&
		   th_status(c, WIRE_OP_PREPARE, 13, 0, NULL) == OK_ &&
		   th_status(c, WIRE_OP_COMMIT_PREPARED, 13, 0, NULL) == OK_ &&
		   th_int(c2, 0, "SELECT count(*) FROM hist") == 0,
	   "a DELETE without WHERE in a txn is prepared and committed (not taken for read-only)");

	/* PREPARE still checks a secondary UNIQUE index: a row committed after
	 * the statement ran, with another key, can collide */
	th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE uq(k INTEGER PRIMARY KEY, u TEXT UNIQUE)");
	ok(th_status(c, WIRE_OP_EXEC, 14, 0, "INSERT INTO uq VALUES (1, 'x')") == OK_ &&
		   th_status(c2, WIRE_OP_EXEC, 0, 0, "INSERT INTO uq VALUES (2, 'x')") == OK_,
	   "a txn and then an autocommit insert the same unique value under different keys");
	ok(th_status(c, WIRE_OP_PREPARE, 14, 0, NULL) == WIRE_ERROR && strcmp(th_last_sqlstate(), "23505") == 0,
	   "PREPARE votes no with 23505: the unique index is checked (%s)", th_last_sqlstate());
	ok(th_status(c, WIRE_OP_COMMIT_PREPARED, 14, 0, NULL) == WIRE_NOT_FOUND &&
		   th_int(c2, 0, "SELECT count(*) FROM uq") == 1,
	   "the failed PREPARE rolled the txn back");

	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE nopk(x INTEGER)") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 11, 0, "INSERT INTO nopk VALUES (1)") == WIRE_ERROR &&
		   strcmp(th_last_sqlstate(), "0A000") == 0,
	   "writing a table without a primary key inside a txn is refused");
	th_status(c, WIRE_OP_ROLLBACK, 11, 0, NULL);

	ok(th_status(c, WIRE_OP_EXEC, 12, 0, "SELECT bal FROM acct WHERE id = 3") == OK_ &&
		   th_status(c, WIRE_OP_PREPARE, 12, 0, NULL) == WIRE_READ_ONLY,
	   "PREPARE of a read-only txn votes ReadOnly");
	ok(th_status(c, WIRE_OP_COMMIT_PREPARED, 12, 0, NULL) == WIRE_NOT_FOUND,
	   "a read-only txn needs no second phase (gone)");
}

/* Committing a workspace (shard/apply.c): unique values that only fit once
 * every change is in, odd identifiers, a column added between two commits,
 * and all three kinds of change in one transaction. */
static void test_apply(wire_client *c, wire_client *c2)
{
	th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE ua(k INTEGER PRIMARY KEY, u TEXT UNIQUE)");
	th_status(c, WIRE_OP_EXEC, 0, 0, "INSERT INTO ua VALUES (1, 'a'), (2, 'b'), (5, 'e')");
	ok(th_status(c, WIRE_OP_EXEC, 30, 0, "UPDATE ua SET u = 'x' WHERE k = 1") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 30, 0, "UPDATE ua SET u = 'a' WHERE k = 2") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 30, 0, "DELETE FROM ua WHERE k = 5") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 30, 0, "INSERT INTO ua VALUES (6, 'e')") == OK_,
	   "a txn moves unique values between rows (2 takes 1's, 6 takes deleted 5's)");
	ok(th_status(c, WIRE_OP_PREPARE, 30, 0, NULL) == OK_ &&
		   th_status(c, WIRE_OP_COMMIT_PREPARED, 30, 0, NULL) == OK_,
	   "it prepares and commits (%s)", th_last_message());
	ok(th_int(c2, 0, "SELECT count(*) FROM ua WHERE (k, u) IN (VALUES (1, 'x'), (2, 'a'), (6, 'e'))") == 3 &&
		   th_int(c2, 0, "SELECT count(*) FROM ua") == 3,
	   "every change is in, whatever order the changeset holds them in");

	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE \"we\"\"ird\"(\"k k\" INTEGER PRIMARY KEY, \"v\"\"\" TEXT)") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 0, 0, "INSERT INTO \"we\"\"ird\" VALUES (1, 'one'), (2, 'two')") == OK_,
	   "a table and columns whose names need quoting");
	ok(th_status(c, WIRE_OP_EXEC, 31, 0, "UPDATE \"we\"\"ird\" SET \"v\"\"\" = 'ONE' WHERE \"k k\" = 1") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 31, 0, "DELETE FROM \"we\"\"ird\" WHERE \"k k\" = 2") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 31, 0, "INSERT INTO \"we\"\"ird\" VALUES (3, NULL)") == OK_ &&
		   th_status(c, WIRE_OP_COMMIT, 31, 0, NULL) == OK_,
	   "update, delete and insert on it commit");
	ok(th_int(c2, 0, "SELECT count(*) FROM \"we\"\"ird\" WHERE (\"k k\" = 1 AND \"v\"\"\" = 'ONE') "
			 "OR (\"k k\" = 3 AND \"v\"\"\" IS NULL)") == 2 &&
		   th_int(c2, 0, "SELECT count(*) FROM \"we\"\"ird\"") == 2,
	   "and read back as written");

	th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE grow(k INTEGER PRIMARY KEY, v INTEGER)");
	th_status(c, WIRE_OP_EXEC, 0, 0, "INSERT INTO grow VALUES (1, 1)");
	ok(th_status(c, WIRE_OP_EXEC, 32, 0, "UPDATE grow SET v = 2 WHERE k = 1") == OK_ &&
		   th_status(c, WIRE_OP_COMMIT, 32, 0, NULL) == OK_,
	   "a commit on a table");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "ALTER TABLE grow ADD COLUMN w INTEGER DEFAULT 5") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 33, 0, "UPDATE grow SET v = 3 WHERE k = 1") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 33, 0, "INSERT INTO grow VALUES (2, 20, 21)") == OK_ &&
		   th_status(c, WIRE_OP_PREPARE, 33, 0, NULL) == OK_ &&
		   th_status(c, WIRE_OP_COMMIT_PREPARED, 33, 0, NULL) == OK_,
	   "after ALTER TABLE ADD COLUMN the next transaction commits (%s)", th_last_message());
	ok(th_int(c2, 0, "SELECT v * 100 + w FROM grow WHERE k = 1") == 305 &&
		   th_int(c2, 0, "SELECT v * 100 + w FROM grow WHERE k = 2") == 2021,
	   "with the new column's values");
}

/* Row locks: wound-wait, waiting then re-running, lock-wait timeout. */
static void test_locks(wire_client *a, wire_client *b, wire_client *d)
{
	char err[128];
	wire_response r;
	/* older txn 21 (ts 2000) takes row 3; a younger one waits for it */
	ok(th_status(a, WIRE_OP_EXEC, 21, 2000, "UPDATE acct SET bal = bal + 10 WHERE id = 3") == OK_,
	   "txn 21 (older) locks row 3");
	wire_request rq = {.op = WIRE_OP_EXEC, .txn = 22, .ts = 3000, .begin = true,
			   .sql = "UPDATE acct SET bal = bal + 1 WHERE id = 3"};
	rq.sql_len = (uint32_t)strlen(rq.sql);
	ok(wire_client_send(b, &rq) == 0, "younger txn 22 sends its update");
	ok(wire_client_recv(b, &r, 150, err, sizeof err) != 0 && strcmp(err, "timeout") == 0,
	   "the younger txn waits for the lock (%s)", err);
	ok(th_status(a, WIRE_OP_COMMIT, 21, 0, NULL) == OK_, "txn 21 commits");
	ok(wire_client_recv(b, &r, 2000, err, sizeof err) == 0 && r.status == WIRE_OK && r.changes == 1 && r.waited,
	   "the waiting update ran after the release, and its answer says it waited (Response.waited)");
	int committed = th_status(b, WIRE_OP_COMMIT, 22, 0, NULL) == OK_;
	int64_t b3 = bal(a, 3);
	ok(committed && b3 == 111, "no lost update: 100 + 10 + 1 = %" PRId64, b3);

	/* a younger txn 24 holds row 5; an older txn 23 wounds it once it has
	 * waited the wound delay (250 ms here) */
	{
		wire_request q = {.op = WIRE_OP_EXEC, .txn = 24, .ts = 9000, .begin = true,
				  .sql = "UPDATE acct SET bal = bal + 1000 WHERE id = 5"};
		q.sql_len = (uint32_t)strlen(q.sql);
		int qrc = wire_client_call(d, &q, &r, err, sizeof err);
		ok(qrc == 0 && r.status == WIRE_OK && !r.waited,
		   "younger txn 24 locks row 5 (an answer that did not wait says so)");
	}
	uint64_t t0 = mono_ms();
	ok(th_status(a, WIRE_OP_EXEC, 23, 8000, "UPDATE acct SET bal = bal + 1 WHERE id = 5") == OK_,
	   "older txn 23 takes row 5: the younger holder is wounded");
	uint64_t waited = mono_ms() - t0;
	ok(waited >= 240 && waited < 400, "... after the wound delay, not at once (%" PRIu64 " ms)", waited);
	/* the router sends later statements of a txn without the begin flag */
	wire_request next = {.op = WIRE_OP_EXEC, .txn = 24, .ts = 9000, .sql = "UPDATE acct SET bal = 0 WHERE id = 6"};
	next.sql_len = (uint32_t)strlen(next.sql);
	int rc = wire_client_call(d, &next, &r, err, sizeof err);
	ok(rc == 0 && r.status == WIRE_ERROR && r.sqlstate && strcmp(r.sqlstate, "40001") == 0,
	   "the wounded txn's next statement gets 40001: %s", rc == 0 && r.message ? r.message : err);
	ok(bal(a, 6) == 100, "...and never reopens the rolled-back txn (row 6 untouched)");
	ok(th_status(d, WIRE_OP_COMMIT, 24, 0, NULL) == WIRE_NOT_FOUND, "its COMMIT finds nothing to commit");
	ok(th_status(a, WIRE_OP_COMMIT, 23, 0, NULL) == OK_ && bal(a, 5) == 101,
	   "the older txn committed; the wounded one left no trace (bal %" PRId64 ")", bal(a, 5));
	th_status(a, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 100 WHERE id = 5");

	/* a younger holder that commits within the wound delay is not wounded:
	 * the older txn only waits (a hot row costs waits, not rollbacks) */
	{
		int64_t b0 = bal(a, 2);
		ok(th_status(d, WIRE_OP_EXEC, 28, 9500, "UPDATE acct SET bal = bal + 1 WHERE id = 2") == OK_,
		   "younger txn 28 locks row 2");
		wire_request q = {.op = WIRE_OP_EXEC, .txn = 27, .ts = 8500, .begin = true,
				  .sql = "UPDATE acct SET bal = bal + 2 WHERE id = 2"};
		q.sql_len = (uint32_t)strlen(q.sql);
		ok(wire_client_send(a, &q) == 0, "older txn 27 sends its update of row 2");
		ok(wire_client_recv(a, &r, 40, err, sizeof err) != 0 && strcmp(err, "timeout") == 0,
		   "... and waits for the wound delay (%s)", err);
		ok(th_status(d, WIRE_OP_COMMIT, 28, 0, NULL) == OK_,
		   "the younger txn commits within the delay: it was not wounded");
		ok(wire_client_recv(a, &r, 2000, err, sizeof err) == 0 && r.status == WIRE_OK && r.changes == 1 && r.waited,
		   "the older txn's update ran after the release");
		ok(th_status(a, WIRE_OP_COMMIT, 27, 0, NULL) == OK_ && bal(a, 2) == b0 + 3,
		   "both updates are there: %" PRId64 " + 1 + 2 = %" PRId64, b0, bal(a, 2));
	}

	/* autocommit statements wait for a txn's lock, then time out */
	ok(th_status(a, WIRE_OP_EXEC, 25, 0, "UPDATE acct SET bal = 0 WHERE id = 4") == OK_, "txn 25 locks row 4");
	ok(th_status(b, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = bal + 5 WHERE id = 4") == WIRE_ERROR &&
		   strcmp(th_last_sqlstate(), "40001") == 0 && strstr(th_last_message(), "timeout"),
	   "autocommit write on a locked row times out with 40001 (%s)", th_last_message());
	ok(th_status(b, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = bal + 5 WHERE id = 5") == OK_,
	   "other rows stay writable");
	/* Request.unlocked: the sender vouches that no transaction can hold
	 * these rows (the rebalancer's gated writes), so the shard does not
	 * look: such a write on row 4 is not held back by txn 25's lock */
	{
		const char *sql = "UPDATE acct SET bal = bal + 0 WHERE id = 4";
		wire_request ur = {.op = WIRE_OP_EXEC, .sql = sql, .sql_len = (uint32_t)strlen(sql), .unlocked = true};
		wire_response uresp;
		char uerr[256];
		int urc = wire_client_call(b, &ur, &uresp, uerr, sizeof uerr);
		ok(urc == 0 && uresp.status == WIRE_OK && uresp.changes == 1,
		   "an unlocked autocommit write is not held back by a row lock (%s)",
		   urc ? uerr : uresp.message ? uresp.message : "ok");
	}
	ok(th_status(a, WIRE_OP_ROLLBACK, 25, 0, NULL) == OK_ && bal(b, 4) == 100, "rollback leaves row 4 at 100");
	ok(th_status(b, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = bal - 5 WHERE id = 5") == OK_ && bal(b, 5) == 100,
	   "row 5 restored");
}

/* A lock holder and a transaction waiting for its lock both end in the
 * same batch, in either order: the waiter is answered once and the writer
 * goes on (it once linked the waiter into two lists and spun forever). */
static void test_both_end_in_one_batch(wire_client *a, wire_client *b, wire_client *d)
{
	char err[128];
	wire_response r;
	for (int order = 0; order < 2; order++) {
		uint64_t holder = 41 + 2 * (uint64_t)order, waiter = holder + 1;
		ok(th_status(a, WIRE_OP_EXEC, holder, 2000, "UPDATE acct SET bal = bal + 1 WHERE id = 2") == OK_,
		   "order %d: txn %" PRIu64 " locks row 2", order, holder);
		wire_request w = {.op = WIRE_OP_EXEC, .txn = waiter, .ts = 3000, .begin = true,
				  .sql = "UPDATE acct SET bal = bal + 1 WHERE id = 2"};
		w.sql_len = (uint32_t)strlen(w.sql);
		ok(wire_client_send(b, &w) == 0 && wire_client_recv(b, &r, 150, err, sizeof err) != 0,
		   "order %d: txn %" PRIu64 " waits for the lock", order, waiter);
		/* both rollbacks pipelined on one connection: one batch */
		wire_request r1 = {.op = WIRE_OP_ROLLBACK, .txn = order ? waiter : holder};
		wire_request r2 = {.op = WIRE_OP_ROLLBACK, .txn = order ? holder : waiter};
		int sent = wire_client_send(d, &r1) == 0 && wire_client_send(d, &r2) == 0;
		int got = sent && wire_client_recv(d, &r, 2000, err, sizeof err) == 0 &&
			  wire_client_recv(d, &r, 2000, err, sizeof err) == 0;
		ok(got, "order %d: both rollbacks answered", order);
		ok(wire_client_recv(b, &r, 2000, err, sizeof err) == 0, "order %d: the waiter is answered (%s)", order,
		   r.status == WIRE_ERROR && r.sqlstate ? r.sqlstate : "ok");
		/* with a timeout: a writer stuck in a loop must fail the test, not hang it */
		wire_request u = {.op = WIRE_OP_EXEC, .sql = "UPDATE acct SET bal = 100 WHERE id = 2"};
		u.sql_len = (uint32_t)strlen(u.sql);
		int served = wire_client_send(a, &u) == 0 && wire_client_recv(a, &r, 3000, err, sizeof err) == 0 &&
			     r.status == WIRE_OK && r.changes == 1;
		ok(served, "order %d: the shard goes on serving writes", order);
		if (!served) {
			th_shard_kill9(&S);
			th_cleanup();
			bail("the shard's writer is stuck");
		}
	}
}

static void test_disconnect_and_idle(wire_client *b)
{
	wire_client *x = th_connect(&S);
	ok(th_status(x, WIRE_OP_EXEC, 30, 0, "UPDATE acct SET bal = bal + 1 WHERE id = 6") == OK_, "txn 30 locks row 6");
	wire_client_close(x);
	ok(th_status(b, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = bal + 2 WHERE id = 6") == OK_ && bal(b, 6) == 102,
	   "a dropped connection's txn is rolled back and its lock freed");
	ok(th_status(b, WIRE_OP_EXEC, 31, 0, "UPDATE acct SET bal = bal - 2 WHERE id = 6") == OK_, "txn 31 idles");
	th_sleep_ms(1300);
	ok(th_status(b, WIRE_OP_COMMIT, 31, 0, NULL) == WIRE_NOT_FOUND && bal(b, 6) == 102,
	   "an idle unprepared txn is rolled back after the idle timeout");
	th_status(b, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 100 WHERE id = 6");
}

/* Group commit: pipelined requests share batches; one failure undoes no other. */
static void test_group_commit(wire_client *c)
{
	th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE g(k INTEGER PRIMARY KEY, v TEXT)");
	wire_response r;
	th_call(c, WIRE_OP_STATUS, 0, 0, "stats", &r);
	uint64_t fs0 = 0;
	for (uint32_t i = 0; i < r.nrows; i++)
		if (strcmp(r.cells[i * 2].p, "fsync_batches") == 0)
			fs0 = strtoull(r.cells[i * 2 + 1].p, NULL, 10);
	enum { N = 60 };
	char sql[N][96];
	for (int i = 0; i < N; i++) {
		snprintf(sql[i], sizeof sql[i], "INSERT INTO g VALUES (%d, 'v%d')", i == 30 ? 7 : i, i);
		wire_request rq = {.op = WIRE_OP_EXEC, .sql = sql[i], .sql_len = (uint32_t)strlen(sql[i])};
		wire_client_send(c, &rq);
	}
	int oks = 0, dup = 0;
	char err[128];
	for (int i = 0; i < N; i++) {
		if (wire_client_recv(c, &r, 5000, err, sizeof err) != 0)
			break;
		if (r.status == WIRE_OK)
			oks++;
		else if (r.sqlstate && strcmp(r.sqlstate, "23505") == 0)
			dup++;
	}
	ok(oks == N - 1 && dup == 1, "pipelined inserts: %d ok, %d duplicate", oks, dup);
	ok(th_int(c, 0, "SELECT count(*) FROM g") == N - 1, "the failing insert undid nothing else");
	th_call(c, WIRE_OP_STATUS, 0, 0, "stats", &r);
	uint64_t fs1 = 0;
	for (uint32_t i = 0; i < r.nrows; i++)
		if (strcmp(r.cells[i * 2].p, "fsync_batches") == 0)
			fs1 = strtoull(r.cells[i * 2 + 1].p, NULL, 10);
	ok(fs1 - fs0 < N - 1, "group commit: %d commits took %" PRIu64 " fsyncs", N - 1, fs1 - fs0);
}

/* The WAL's header counts how often the log started over (its checkpoint
 * sequence number, big-endian at offset 12); -1 if unreadable. */
static long wal_restarts(const char *wal)
{
	FILE *f = fopen(wal, "rb");
	unsigned char h[16];
	long n = -1;
	if (f && fread(h, 1, sizeof h, f) == sizeof h)
		n = (long)((uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 8 | h[15]);
	if (f)
		fclose(f);
	return n;
}

/* The WAL stays bounded under a steady stream of writes: the checkpointer
 * copies pages back while the writer goes on appending, and the WAL must
 * still start over (it grew without end before: every commit kept the
 * checkpointer busy and nothing ever restarted the log). */
static void test_wal_bounded(wire_client *c)
{
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "CREATE TABLE big(k INTEGER PRIMARY KEY, pad TEXT)") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 0, 0,
			     "INSERT INTO big SELECT i, printf('%0200d', i) FROM "
			     "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
			     "SELECT i FROM n)") == OK_,
	   "a table of 20,000 rows (about 1,000 pages)");
	char wal[600];
	snprintf(wal, sizeof wal, "%s/shard.db-wal", S.dir);
	long r0 = wal_restarts(wal);
	int fails = 0;
	/* 60: the checkpointer catches up between some commits only, and
	 * under a sanitizer on a busy machine 30 rounds saw a single restart */
	enum { ROUNDS = 60 };
	for (int i = 0; i < ROUNDS; i++) {
		char sql[96];
		snprintf(sql, sizeof sql, "UPDATE big SET pad = printf('%%0200d', k + %d)", i + 1);
		if (th_status(c, WIRE_OP_EXEC, 0, 0, sql) != OK_)
			fails++;
	}
	long r1 = wal_restarts(wal);
	struct stat sb;
	long long size = stat(wal, &sb) == 0 ? (long long)sb.st_size : -1;
	/* 60 commits of ~1,000 pages each write ~60,000 frames (240 MB); a log
	 * that never starts over holds them all (134 MB was seen after 30) */
	ok(fails == 0 && r0 >= 0 && r1 - r0 >= 2,
	   "%d commits rewriting every page: the WAL started over %ld times (now %lld bytes)", ROUNDS - fails,
	   r1 - r0, size);
	ok(th_int(c, 0, "SELECT count(*) FROM big WHERE pad = printf('%0200d', k + 60)") == 20000,
	   "and every row has its last value");
}

/* A read at a consistent cut (Request.snapshot): a scan that leaves the
 * loop thread for a reader answers Started first, then its rows, under the
 * same id; a read finished on the loop thread answers only once. */
static void test_snapshot_reads(wire_client *c)
{
	wire_request rq = {.op = WIRE_OP_EXEC, .readonly = true, .snapshot = true,
			   .sql = "SELECT count(*), sum(length(pad)) FROM big"};
	rq.sql_len = (uint32_t)strlen(rq.sql);
	char err[128];
	wire_response r;
	ok(wire_client_send(c, &rq) == 0 && wire_client_recv(c, &r, 5000, err, sizeof err) == 0 &&
		   r.status == WIRE_STARTED && r.id == rq.id && r.nrows == 0,
	   "a scan of 20,000 rows at a cut: Started comes first, with the request's id");
	ok(wire_client_recv(c, &r, 5000, err, sizeof err) == 0 && r.status == WIRE_OK && r.id == rq.id &&
		   r.nrows == 1 && r.cells[0].i == 20000,
	   "then its rows, under the same id");
	wire_request pt = {.op = WIRE_OP_EXEC, .readonly = true, .snapshot = true,
			   .sql = "SELECT pad FROM big WHERE k = 7"};
	pt.sql_len = (uint32_t)strlen(pt.sql);
	ok(wire_client_send(c, &pt) == 0 && wire_client_recv(c, &r, 5000, err, sizeof err) == 0 &&
		   r.status == WIRE_OK && r.id == pt.id && r.nrows == 1,
	   "a point read at a cut finishes on the loop thread: one answer, no Started");
	ok(th_int(c, 0, "SELECT 41 + 1") == 42, "the connection is in step afterwards");
}

/* The same-machine socket (txn/localsock.h) serves the same protocol, and
 * a bad frame on it closes only that connection. */
static void test_local_socket(wire_client *tcp)
{
	char err[256];
	wire_client *l = wire_client_connect_local("127.0.0.1", S.port, err, sizeof err);
	ok(l != NULL, "a shard on 127.0.0.1 answers on its abstract Unix socket (%s)", l ? "connected" : err);
	if (!l)
		return;
	ok(th_int(l, 0, "SELECT count(*) FROM acct") == th_int(tcp, 0, "SELECT count(*) FROM acct"),
	   "it reads what TCP reads");
	ok(th_status(l, WIRE_OP_EXEC, 50, 0, "UPDATE acct SET bal = bal + 1 WHERE id = 1") == OK_ &&
		   th_status(l, WIRE_OP_PREPARE, 50, 0, NULL) == OK_ &&
		   th_status(tcp, WIRE_OP_COMMIT_PREPARED, 50, 0, NULL) == OK_ &&
		   th_status(l, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = bal - 1 WHERE id = 1") == OK_,
	   "a transaction prepared over it commits over TCP (ids are the shard's, not the connection's)");
	static const unsigned char junk[] = {0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4};
	wire_client_send_raw(l, junk, sizeof junk);
	wire_response r;
	ok(wire_client_recv(l, &r, 3000, err, sizeof err) != 0, "an oversize frame closes that connection (%s)", err);
	wire_client_close(l);
	ok(th_int(tcp, 0, "SELECT 7") == 7, "and the shard serves the others");
	ok(wire_client_connect_local("127.0.0.1", S.port + 1 == 65536 ? 1 : S.port + 1, err, sizeof err) == NULL,
	   "no socket where no shard listens: the caller falls back to TCP");
}

/* SQLite work never stalls the loop: a ping and a read are answered while a
 * slow statement runs on the writer. */
static void test_loop_not_stalled(wire_client *a, wire_client *b)
{
	const char *slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000000) "
			   "SELECT count(*) FROM n";
	wire_request rq = {.op = WIRE_OP_EXEC, .sql = slow, .sql_len = (uint32_t)strlen(slow)};
	wire_client_send(a, &rq);
	th_sleep_ms(30);
	wire_response r;
	ok(th_call(b, WIRE_OP_PING, 0, 0, NULL, &r) == 0 && r.status == WIRE_OK, "ping answered");
	wire_request rd = {.op = WIRE_OP_EXEC, .readonly = true, .sql = "SELECT bal FROM acct WHERE id = 1"};
	rd.sql_len = (uint32_t)strlen(rd.sql);
	char err[128];
	int read_ok = wire_client_call(b, &rd, &r, err, sizeof err) == 0 && r.status == WIRE_OK;
	struct pollfd p = {.fd = wire_client_fd(a), .events = POLLIN};
	int slow_pending = poll(&p, 1, 0) == 0;
	ok(read_ok, "a read-only request is answered by a reader");
	ok(slow_pending, "...while the slow statement is still running on the writer");
	ok(wire_client_recv(a, &r, 30000, err, sizeof err) == 0 && r.status == WIRE_OK && r.cells[0].i == 4000000,
	   "the slow statement finishes");
}

/* One of the shard's counters (Status "stats"). */
static uint64_t stat_of(wire_client *c, const char *name)
{
	wire_response r;
	if (th_call(c, WIRE_OP_STATUS, 0, 0, "stats", &r) != 0)
		return 0;
	for (uint32_t i = 0; i < r.nrows; i++)
		if (strcmp(r.cells[i * 2].p, name) == 0)
			return strtoull(r.cells[i * 2 + 1].p, NULL, 10);
	return 0;
}

/* Light requests run on the loop thread (executor.h, the pump); a
 * statement of a transaction that proved slow there goes to the writer
 * thread the next time, so the loop answers meanwhile. */
static void test_pump(wire_client *a, wire_client *b)
{
	uint64_t p0 = stat_of(b, "pumped_batches");
	ok(th_status(a, WIRE_OP_EXEC, 61, 0, "UPDATE acct SET bal = bal + 1 WHERE id = 1") == OK_ &&
		   th_status(a, WIRE_OP_ROLLBACK, 61, 0, NULL) == OK_,
	   "a statement of a transaction and its rollback");
	uint64_t p1 = stat_of(b, "pumped_batches");
	ok(p1 >= p0 + 2, "... ran on the loop thread (pumped batches %" PRIu64 " -> %" PRIu64 ")", p0, p1);
	const char *slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "
			   "SELECT count(*) FROM n";
	wire_request rq = {.op = WIRE_OP_EXEC, .txn = 62, .begin = true, .sql = slow, .sql_len = (uint32_t)strlen(slow)};
	wire_response r;
	char err[128];
	ok(wire_client_call(a, &rq, &r, err, sizeof err) == 0 && r.status == WIRE_OK && r.cells[0].i == 1000000,
	   "a slow statement of a transaction runs (on the loop, once)");
	rq.begin = false;
	wire_client_send(a, &rq);
	th_sleep_ms(20);
	ok(th_call(b, WIRE_OP_PING, 0, 0, NULL, &r) == 0 && r.status == WIRE_OK, "ping answered");
	struct pollfd p = {.fd = wire_client_fd(a), .events = POLLIN};
	ok(poll(&p, 1, 0) == 0, "...while the same statement runs again, now on the writer thread");
	ok(wire_client_recv(a, &r, 30000, err, sizeof err) == 0 && r.status == WIRE_OK && r.cells[0].i == 1000000,
	   "the slow statement finishes");
	ok(th_status(a, WIRE_OP_ROLLBACK, 62, 0, NULL) == OK_, "its transaction ends");
}

/* Answers bigger than the socket takes at once (shard/outbox.h): the
 * writer writes what fits, the loop the rest, and every answer arrives
 * whole, later ones of the same writer after it, while the client reads
 * nothing for a while. */
static void test_big_answers(wire_client *c)
{
	const char *big = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
			  "SELECT i, printf('%0500d', i) FROM n";
	wire_request q1 = {.id = 9101, .op = WIRE_OP_EXEC, .sql = big, .sql_len = (uint32_t)strlen(big)};
	wire_request q2 = {.id = 9102, .op = WIRE_OP_EXEC, .readonly = true, .sql = "SELECT 42", .sql_len = 9};
	wire_request q3 = {.id = 9103, .op = WIRE_OP_EXEC, .sql = "SELECT 43", .sql_len = 9};
	ok(wire_client_send(c, &q1) == 0 && wire_client_send(c, &q2) == 0 && wire_client_send(c, &q3) == 0,
	   "a 10 MB answer and two small ones requested");
	th_sleep_ms(300);  /* the socket fills; the rest waits in the outbox */
	int got1 = 0, got2 = 0, got3 = 0, order_ok = 1;
	char err[128];
	for (int k = 0; k < 3; k++) {
		wire_response r;
		if (wire_client_recv(c, &r, 10000, err, sizeof err) != 0)
			break;
		if (r.id == 9101)
			got1 = r.status == WIRE_OK && r.nrows == 20000 && r.ncols == 2 && r.cells[2 * 19999].i == 20000 &&
			       r.cells[2 * 19999 + 1].len == 500 && memcmp(r.cells[2 * 19999 + 1].p, "0000", 4) == 0;
		else if (r.id == 9102)
			got2 = r.status == WIRE_OK && r.nrows == 1 && r.cells[0].i == 42;
		else if (r.id == 9103) {
			got3 = r.status == WIRE_OK && r.nrows == 1 && r.cells[0].i == 43;
			order_ok = got1;
		}
	}
	ok(got1, "the big answer arrives whole (20,000 rows of 500 bytes)");
	ok(got2 && got3, "the small answers arrive");
	ok(order_ok, "the writer's later answer leaves after the big one");
	ok(th_int(c, 0, "SELECT 7") == 7, "the connection goes on");
}

static void test_prepare_crash(void)
{
	wire_client *c = th_connect(&S);
	ok(th_status(c, WIRE_OP_EXEC, 40, 500, "UPDATE acct SET bal = bal - 30 WHERE id = 1") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 40, 500, "UPDATE acct SET bal = bal + 30 WHERE id = 2") == OK_,
	   "txn 40 moves 30 from 1 to 2");
	ok(th_status(c, WIRE_OP_PREPARE, 40, 0, NULL) == OK_, "PREPARE acknowledged");
	ok(th_status(c, WIRE_OP_EXEC, 41, 0, "UPDATE acct SET bal = bal + 1 WHERE id = 5") == OK_,
	   "txn 41 is active but not prepared");
	wire_client_close(c);
	th_shard_kill9(&S);
	ok(th_shard_start(&S) == 0, "shard restarted after kill -9");
	c = th_connect(&S);
	wire_response r;
	int prepared40 = 0, has41 = 0;
	if (th_call(c, WIRE_OP_STATUS, 0, 0, NULL, &r) == 0)
		for (uint32_t i = 0; i < r.nrows; i++) {
			if (strcmp(r.cells[i * r.ncols].p, "40") == 0 && strcmp(r.cells[i * r.ncols + 1].p, "prepared") == 0)
				prepared40 = 1;
			if (strcmp(r.cells[i * r.ncols].p, "41") == 0)
				has41 = 1;
		}
	ok(prepared40, "txn 40 is still prepared after the crash");
	ok(!has41, "txn 41 (never prepared) is gone");
	ok(th_status(c, WIRE_OP_COMMIT, 41, 0, NULL) == WIRE_NOT_FOUND && bal(c, 5) == 100,
	   "txn 41's write never happened");
	ok(bal(c, 1) == 100 && bal(c, 2) == 100, "prepared writes are not visible yet");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "UPDATE acct SET bal = 0 WHERE id = 1") == WIRE_ERROR &&
		   strcmp(th_last_sqlstate(), "40001") == 0,
	   "a conflicting write waits and fails: the lock was re-taken");
	ok(th_status(c, WIRE_OP_EXEC, 42, 100, "UPDATE acct SET bal = 0 WHERE id = 2") == WIRE_ERROR,
	   "a conflicting txn cannot take the row either");
	th_status(c, WIRE_OP_ROLLBACK, 42, 0, NULL);
	ok(th_status(c, WIRE_OP_COMMIT_PREPARED, 40, 0, NULL) == OK_, "COMMIT PREPARED");
	int64_t b1 = bal(c, 1), b2 = bal(c, 2);
	ok(b1 == 70 && b2 == 130, "the transfer is visible (%" PRId64 ", %" PRId64 ")", b1, b2);
	ok(th_status(c, WIRE_OP_COMMIT_PREPARED, 40, 0, NULL) == WIRE_NOT_FOUND, "a second COMMIT PREPARED is NotFound");

	/* rollback prepared, and durability of a prepared rollback across a crash */
	ok(th_status(c, WIRE_OP_EXEC, 43, 0, "UPDATE acct SET bal = bal + 30 WHERE id = 1") == OK_ &&
		   th_status(c, WIRE_OP_EXEC, 43, 0, "UPDATE acct SET bal = bal - 30 WHERE id = 2") == OK_ &&
		   th_status(c, WIRE_OP_PREPARE, 43, 0, NULL) == OK_,
	   "txn 43 prepared");
	ok(th_status(c, WIRE_OP_ROLLBACK_PREPARED, 43, 0, NULL) == OK_, "ROLLBACK PREPARED");
	wire_client_close(c);
	th_shard_kill9(&S);
	ok(th_shard_start(&S) == 0, "restarted again");
	c = th_connect(&S);
	ok(bal(c, 1) == 70 && bal(c, 2) == 130 && th_status(c, WIRE_OP_COMMIT_PREPARED, 43, 0, NULL) == WIRE_NOT_FOUND,
	   "the rolled-back txn stays rolled back");
	ok(th_status(c, WIRE_OP_EXEC, 0, 0, "INSERT INTO acct VALUES (99, 5)") == OK_, "autocommit insert acknowledged");
	wire_client_close(c);
	th_shard_kill9(&S);
	th_shard_start(&S);
	c = th_connect(&S);
	ok(bal(c, 99) == 5, "an acknowledged autocommit write survives kill -9");
	wire_client_close(c);
}

/* The router's shard map: owned buckets are checked on routed requests and
 * survive a crash. */
static int exec_routed(wire_client *c, uint32_t bucket, wire_response *r)
{
	const char *sql = "SELECT count(*) FROM acct";
	wire_request q = {.op = WIRE_OP_EXEC, .readonly = true, .sql = sql, .sql_len = (uint32_t)strlen(sql),
			  .epoch = 7, .buckets = &bucket, .nbuckets = 1};
	char err[128];
	return wire_client_call(c, &q, r, err, sizeof err);
}

static void test_bucket_map(void)
{
	wire_client *c = th_connect(&S);
	wire_response r;
	ok(exec_routed(c, 5, &r) == 0 && r.status == WIRE_OK, "before any map, routed requests are served");
	uint32_t mine[] = {1, 2, 3, 4095};
	wire_request a = {.op = WIRE_OP_ASSIGN, .epoch = 7, .buckets = mine, .nbuckets = 4};
	char err[128];
	ok(wire_client_call(c, &a, &r, err, sizeof err) == 0 && r.status == WIRE_OK, "Assign: buckets 1, 2, 3, 4095");
	ok(exec_routed(c, 2, &r) == 0 && r.status == WIRE_OK, "a request routed for an owned bucket is served");
	ok(exec_routed(c, 5, &r) == 0 && r.status == WIRE_ERROR && strcmp(r.sqlstate, "SL001") == 0,
	   "a request routed for a foreign bucket is refused: %s", r.message ? r.message : "");
	uint32_t bad = 5000;
	wire_request a2 = {.op = WIRE_OP_ASSIGN, .epoch = 8, .buckets = &bad, .nbuckets = 1};
	ok(wire_client_call(c, &a2, &r, err, sizeof err) == 0 && r.status == WIRE_ERROR, "a bucket out of range is refused");
	ok(th_int(c, 0, "SELECT count(*) FROM acct") > 0, "requests without buckets are not checked");
	wire_client_close(c);
	th_shard_kill9(&S);
	ok(th_shard_start(&S) == 0, "restarted after kill -9");
	c = th_connect(&S);
	ok(exec_routed(c, 4095, &r) == 0 && r.status == WIRE_OK && exec_routed(c, 6, &r) == 0 &&
		   r.status == WIRE_ERROR && strcmp(r.sqlstate, "SL001") == 0,
	   "the map survived the crash");
	wire_client_close(c);
}

/* Another process cannot open a running shard's database (store.h:
 * STORE_VFS), for reading or for writing; once the shard is gone it can.
 * The SQLite result of opening it with flags and running sql. */
static int outside(const char *dir, int flags, const char *sql)
{
	char path[700];
	snprintf(path, sizeof path, "%s/shard.db", dir);
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

#define OUTSIDE_READ(dir) outside(dir, SQLITE_OPEN_READONLY, "SELECT count(*) FROM sqlite_schema")
#define OUTSIDE_WRITE(dir) outside(dir, SQLITE_OPEN_READWRITE, "BEGIN IMMEDIATE; ROLLBACK")

static void test_db_exclusive(wire_client *c)
{
	int r = OUTSIDE_READ(S.dir), w = OUTSIDE_WRITE(S.dir);
	ok(r == SQLITE_BUSY && w == SQLITE_BUSY,
	   "another process can neither read nor write a running shard's database (%d, %d)", r, w);
	ok(bal(c, 1) >= 0, "... and the shard goes on serving");
}

int main(void)
{
	if (th_shard_start(&S) != 0)
		bail("cannot start a shard (is $SHARDLITE set?)");
	wire_client *a = th_connect(&S), *b = th_connect(&S), *d = th_connect(&S);
	if (!a || !b || !d)
		bail("cannot connect");
	test_basics(a);
	test_isolation(a, b);
	test_apply(a, b);
	test_checksum(a);
	test_locks(a, b, d);
	test_both_end_in_one_batch(a, b, d);
	test_disconnect_and_idle(b);
	test_group_commit(a);
	test_wal_bounded(a);
	test_snapshot_reads(a);
	test_loop_not_stalled(a, b);
	test_pump(a, b);
	test_big_answers(b);
	test_local_socket(a);
	wire_client_close(a);
	wire_client_close(b);
	wire_client_close(d);
	test_prepare_crash();
	test_bucket_map();
	wire_client *e = th_connect(&S);
	if (!e)
		bail("cannot connect");
	test_db_exclusive(e);
	wire_client_close(e);
	ok(th_shard_term(&S) == 0, "SIGTERM: clean exit with status 0");
	ok(OUTSIDE_READ(S.dir) == SQLITE_OK && OUTSIDE_WRITE(S.dir) == SQLITE_OK,
	   "once the shard stopped, the same reads and writes work");
	th_cleanup();
	return plan_done();
}
