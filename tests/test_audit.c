/*
 * test_audit.c — no fractured reads (issue 4): while clients move money
 * between accounts on different shards in 2PC transactions, an auditor runs
 * SELECT sum(balance) over all shards at least 10,000 times.  Every audit
 * must see the exact total: a read that saw a transfer on one shard and not
 * on the other would be off.  Real processes on 127.0.0.1, real libpq.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/tap.h"

#define ACCOUNTS 200
#define START 1000
#define AUDITS 10000
#define MOVERS 3

static char conninfo[256];
static atomic_int stop;
static atomic_long committed, retried;

static PGconn *connect_db(void)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		diag("connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

static int exec_ok(PGconn *c, const char *sql, char *state)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok && state) {
		const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(state, 6, "%s", st ? st : "?????");
	}
	PQclear(r);
	return ok;
}

static void *mover(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
	PGconn *c = connect_db();
	if (!c)
		return NULL;
	char sql[512], st[6];
	while (!atomic_load(&stop)) {
		int a = 1 + rand_r(&seed) % ACCOUNTS, b = 1 + rand_r(&seed) % ACCOUNTS, amt = 1 + rand_r(&seed) % 50;
		if (a == b)
			continue;
		snprintf(sql, sizeof sql,
			 "BEGIN; UPDATE accounts SET balance = balance - %d WHERE id = %d; "
			 "UPDATE accounts SET balance = balance + %d WHERE id = %d; COMMIT",
			 amt, a, amt, b);
		if (exec_ok(c, sql, st)) {
			atomic_fetch_add(&committed, 1);
		} else {
			exec_ok(c, "ROLLBACK", NULL);
			atomic_fetch_add(&retried, 1);
		}
	}
	PQfinish(c);
	return NULL;
}

int main(void)
{
	const char *bin = getenv("SHARDLITE");
	if (!bin)
		bail("SHARDLITE not set");
	const char *dir = th_tmpdir();
	int port = th_free_port_range(8);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "'%s' cluster start --dir '%s/c' --shards 4 --port %d >/dev/null", bin, dir, port);
	if (system(cmd) != 0)
		bail("cluster start failed");
	snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=audit dbname=shardlite connect_timeout=5", port);
	PGconn *c = connect_db();
	ok(c != NULL, "connected to the router");
	if (!c)
		bail("no connection");
	ok(exec_ok(c, "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)",
		   NULL),
	   "accounts created");
	char sql[16384];
	size_t len = (size_t)snprintf(sql, sizeof sql, "INSERT INTO accounts VALUES ");
	for (int i = 1; i <= ACCOUNTS; i++)
		len += (size_t)snprintf(sql + len, sizeof sql - len, "(%d, %d)%s", i, START, i < ACCOUNTS ? "," : "");
	ok(exec_ok(c, sql, NULL), "%d accounts loaded", ACCOUNTS);

	pthread_t th[MOVERS];
	for (int i = 0; i < MOVERS; i++)
		pthread_create(&th[i], NULL, mover, (void *)(uintptr_t)(i + 1));
	long wrong = 0, audits = 0, errors = 0;
	long long first_bad = 0;
	for (int i = 0; i < AUDITS; i++) {
		PGresult *r = PQexec(c, "SELECT sum(balance) FROM accounts");
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			errors++;
		} else {
			long long sum = atoll(PQgetvalue(r, 0, 0));
			audits++;
			if (sum != (long long)ACCOUNTS * START) {
				if (!wrong)
					first_bad = sum;
				wrong++;
			}
		}
		PQclear(r);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < MOVERS; i++)
		pthread_join(th[i], NULL);
	diag("%ld audits, %ld transfers committed, %ld rolled back (conflicts)", audits, atomic_load(&committed),
	     atomic_load(&retried));
	ok(audits == AUDITS && errors == 0, "%ld audits ran without errors", audits);
	ok(atomic_load(&committed) > 100, "transfers committed while the audits ran (%ld)", atomic_load(&committed));
	ok(wrong == 0, "no audit saw a wrong total (%ld wrong; first %lld)", wrong, first_bad);
	PGresult *r = PQexec(c, "SELECT sum(balance), count(*) FROM accounts");
	ok(PQresultStatus(r) == PGRES_TUPLES_OK && atoll(PQgetvalue(r, 0, 0)) == (long long)ACCOUNTS * START &&
		   atoi(PQgetvalue(r, 0, 1)) == ACCOUNTS,
	   "the final total is exact");
	PQclear(r);
	PQfinish(c);
	snprintf(cmd, sizeof cmd, "'%s' cluster stop --dir '%s/c' >/dev/null", bin, dir);
	ok(system(cmd) == 0, "cluster stopped");
	snprintf(cmd, sizeof cmd, "! grep -l 'Sanitizer\\|runtime error' '%s'/c/*.log", dir);
	ok(system(cmd) == 0, "no sanitizer report in the servers' logs");
	th_cleanup();
	return plan_done();
}
