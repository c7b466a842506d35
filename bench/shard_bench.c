/*
 * shard_bench.c — drives one shard over N concurrent connections, side by
 * side with plain SQLite on the same machine in the same run.
 *
 *   shard_bench --shard HOST:PORT [--conns 16] [--seconds 5] [--rows 100000]
 *               [--workload autocommit|2pc|all] [--sqlite-ref PATH]
 *
 * Workloads (closed loop, every connection waits for its answer):
 *   autocommit  UPDATE one random row, durable before the answer
 *   2pc         Exec UPDATE in a new txn (opens it), PREPARE, COMMIT PREPARED
 *   2pc-begin   the same with an explicit BEGIN round trip first
 * Reference:
 *   sqlite      plain SQLite, WAL, synchronous=FULL, one thread, one
 *               UPDATE per transaction (one fsync per commit)
 *
 * Reports throughput, p50/p99 latency of a whole unit (statement or
 * transaction) and fsyncs per commit as counted by the shard (batches that
 * ended in a COMMIT that wrote).
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "txn/client.h"

typedef struct {
	int idx;
	const char *workload;
	double *lat;
	size_t nlat, cap;
	uint64_t errors;
	uint32_t rng;
} worker;

static char host[256];
static int port;
static int rows = 100000;
static double seconds = 5;
static volatile int stop_flag;
static uint64_t txn_base;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void record(worker *w, double v)
{
	if (w->nlat == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 65536;
		w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
	}
	w->lat[w->nlat++] = v;
}

static int call(wire_client *c, wire_op op, uint64_t txn, const char *sql, wire_value *params,
		uint32_t np, wire_response *r)
{
	wire_request q = {.op = op, .txn = txn, .sql = sql, .sql_len = sql ? (uint32_t)strlen(sql) : 0,
			  .params = params, .nparams = np, .begin = op == WIRE_OP_EXEC && txn != 0};
	char err[128];
	if (wire_client_call(c, &q, r, err, sizeof err) != 0) {
		fprintf(stderr, "bench: %s\n", err);
		return -1;
	}
	return r->status == WIRE_ERROR ? 1 : 0;
}

static void *run_worker(void *arg)
{
	worker *w = arg;
	char err[128];
	wire_client *c = wire_client_connect(host, port, err, sizeof err);
	if (!c) {
		fprintf(stderr, "bench: %s\n", err);
		return NULL;
	}
	const char *upd = "UPDATE bench SET v = v + 1 WHERE k = ?1";
	uint64_t seq = 0;
	int twopc = strncmp(w->workload, "2pc", 3) == 0;
	int begin = strcmp(w->workload, "2pc-begin") == 0;
	while (!stop_flag) {
		wire_value p = {.type = WIRE_INT, .i = 1 + rnd(&w->rng) % (uint32_t)rows};
		wire_response r;
		double t0 = now_s();
		int rc;
		if (!twopc) {
			rc = call(c, WIRE_OP_EXEC, 0, upd, &p, 1, &r);
		} else {
			uint64_t txn = txn_base + ((uint64_t)w->idx << 40) + ++seq;
			rc = begin ? call(c, WIRE_OP_BEGIN, txn, NULL, NULL, 0, &r) : 0;
			if (rc == 0)
				rc = call(c, WIRE_OP_EXEC, txn, upd, &p, 1, &r);
			if (rc == 0)
				rc = call(c, WIRE_OP_PREPARE, txn, NULL, NULL, 0, &r);
			if (rc == 0)
				rc = call(c, WIRE_OP_COMMIT_PREPARED, txn, NULL, NULL, 0, &r);
			if (rc == 1)
				call(c, WIRE_OP_ROLLBACK, txn, NULL, NULL, 0, &r);
		}
		if (rc < 0)
			break;
		if (rc)
			w->errors++;
		else
			record(w, now_s() - t0);
	}
	wire_client_close(c);
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint64_t stat_of(const char *name)
{
	char err[128];
	wire_client *c = wire_client_connect(host, port, err, sizeof err);
	if (!c)
		return 0;
	wire_response r;
	uint64_t v = 0;
	if (call(c, WIRE_OP_STATUS, 0, "stats", NULL, 0, &r) == 0)
		for (uint32_t i = 0; i < r.nrows; i++)
			if (strcmp(r.cells[i * 2].p, name) == 0)
				v = strtoull(r.cells[i * 2 + 1].p, NULL, 10);
	wire_client_close(c);
	return v;
}

static void report(const char *name, int conns, double *lat, size_t n, double elapsed, uint64_t errors,
		   double fsyncs_per_commit)
{
	qsort(lat, n, sizeof *lat, cmp_d);
	double p50 = n ? lat[n / 2] * 1e3 : 0, p99 = n ? lat[(size_t)((double)n * 0.99)] * 1e3 : 0;
	printf("| %-11s | %5d | %10.0f | %8.3f | %8.3f | %7" PRIu64 " | ", name, conns, (double)n / elapsed, p50, p99,
	       errors);
	if (fsyncs_per_commit >= 0)
		printf("%6.3f |\n", fsyncs_per_commit);
	else
		printf("%6s |\n", "1");
	fflush(stdout);
}

static int run_shard(const char *workload, int conns)
{
	worker *ws = calloc((size_t)conns, sizeof *ws);
	pthread_t *th = calloc((size_t)conns, sizeof *th);
	uint64_t f0 = stat_of("fsync_batches"), c0 = stat_of("commits");
	stop_flag = 0;
	txn_base = (uint64_t)time(NULL) << 20;
	for (int i = 0; i < conns; i++) {
		ws[i].idx = i + 1;
		ws[i].workload = workload;
		ws[i].rng = 2463534242u + (uint32_t)i * 7919u;
		pthread_create(&th[i], NULL, run_worker, &ws[i]);
	}
	double t0 = now_s();
	struct timespec d = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};
	nanosleep(&d, NULL);
	stop_flag = 1;
	for (int i = 0; i < conns; i++)
		pthread_join(th[i], NULL);
	double elapsed = now_s() - t0;
	uint64_t f1 = stat_of("fsync_batches"), c1 = stat_of("commits");
	size_t total = 0;
	uint64_t errors = 0;
	for (int i = 0; i < conns; i++)
		total += ws[i].nlat, errors += ws[i].errors;
	double *all = malloc((total ? total : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < conns; i++) {
		memcpy(all + k, ws[i].lat, ws[i].nlat * sizeof *all);
		k += ws[i].nlat;
		free(ws[i].lat);
	}
	/* a 2PC transaction is two fsynced steps (PREPARE, COMMIT PREPARED) */
	report(workload, conns, all, total, elapsed, errors, c1 > c0 ? (double)(f1 - f0) / (double)(c1 - c0) : 0);
	free(all);
	free(ws);
	free(th);
	return 0;
}

static int setup(void)
{
	char err[128];
	wire_client *c = wire_client_connect(host, port, err, sizeof err);
	if (!c) {
		fprintf(stderr, "bench: %s\n", err);
		return -1;
	}
	wire_response r;
	call(c, WIRE_OP_EXEC, 0, "DROP TABLE IF EXISTS bench", NULL, 0, &r);
	if (call(c, WIRE_OP_EXEC, 0, "CREATE TABLE bench(k INTEGER PRIMARY KEY, v INTEGER NOT NULL)", NULL, 0, &r) != 0) {
		fprintf(stderr, "bench: create: %s\n", r.message ? r.message : "?");
		return -1;
	}
	char sql[128];
	snprintf(sql, sizeof sql,
		 "INSERT INTO bench SELECT value, 0 FROM generate_series(1, %d)", rows);
	if (call(c, WIRE_OP_EXEC, 0, sql, NULL, 0, &r) != 0) {
		/* generate_series is not in every SQLite: fall back to a CTE */
		snprintf(sql, sizeof sql,
			 "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < %d) "
			 "INSERT INTO bench SELECT i, 0 FROM s", rows);
		if (call(c, WIRE_OP_EXEC, 0, sql, NULL, 0, &r) != 0) {
			fprintf(stderr, "bench: load: %s\n", r.message ? r.message : "?");
			return -1;
		}
	}
	wire_client_close(c);
	return 0;
}

static int run_sqlite_ref(const char *path)
{
	remove(path);
	char wal[4200];
	snprintf(wal, sizeof wal, "%s-wal", path);
	remove(wal);
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	char sql[256];
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "CREATE TABLE bench(k INTEGER PRIMARY KEY, v INTEGER NOT NULL)", NULL, NULL, NULL);
	snprintf(sql, sizeof sql,
		 "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < %d) "
		 "INSERT INTO bench SELECT i, 0 FROM s", rows);
	sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "UPDATE bench SET v = v + 1 WHERE k = ?1", -1, &st, NULL);
	worker w = {.rng = 88172645u};
	double t0 = now_s(), end = t0 + seconds;
	uint64_t errors = 0;
	while (now_s() < end) {
		double s = now_s();
		sqlite3_bind_int(st, 1, 1 + (int)(rnd(&w.rng) % (uint32_t)rows));
		if (sqlite3_step(st) != SQLITE_DONE)
			errors++;
		sqlite3_reset(st);
		record(&w, now_s() - s);
	}
	double elapsed = now_s() - t0;
	report("sqlite", 1, w.lat, w.nlat, elapsed, errors, -1);
	free(w.lat);
	sqlite3_finalize(st);
	sqlite3_close(db);
	remove(path);
	remove(wal);
	return 0;
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *workload = "all", *ref = NULL;
	int conns = 16;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--shard") == 0 && i + 1 < argc)
			addr = argv[++i];
		else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
			conns = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
			rows = atoi(argv[++i]);
		else if (strcmp(argv[i], "--workload") == 0 && i + 1 < argc)
			workload = argv[++i];
		else if (strcmp(argv[i], "--sqlite-ref") == 0 && i + 1 < argc)
			ref = argv[++i];
		else {
			fprintf(stderr, "usage: shard_bench --shard HOST:PORT [--conns N] [--seconds S] [--rows N]\n"
					"                   [--workload autocommit|2pc|2pc-begin|all] [--sqlite-ref PATH]\n");
			return 2;
		}
	}
	if (!addr || wire_parse_addr(addr, host, sizeof host, &port) != 0 || conns < 1 || rows < 1) {
		fprintf(stderr, "shard_bench: --shard HOST:PORT is required\n");
		return 2;
	}
	if (setup() != 0)
		return 1;
	printf("| workload    | conns | units/s    | p50 ms   | p99 ms   | errors  | fsyncs/commit |\n");
	printf("|-------------|-------|------------|----------|----------|---------|---------------|\n");
	int all = strcmp(workload, "all") == 0;
	if (all || strcmp(workload, "autocommit") == 0)
		run_shard("autocommit", conns);
	if (all || strcmp(workload, "2pc") == 0)
		run_shard("2pc", conns);
	if (all || strcmp(workload, "2pc-begin") == 0)
		run_shard("2pc-begin", conns);
	if (ref)
		run_sqlite_ref(ref);
	return 0;
}
