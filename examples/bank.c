/*
 * bank.c — the shardlite demo: a bank whose money must never be lost or
 * created while many clients move it between accounts on different shards.
 *
 *   1. setup   runs `shardlite cluster start` (a router and 4 shards on
 *              127.0.0.1), creates `accounts` partitioned by hash of id and
 *              loads N accounts with multi-row INSERTs (a progress bar).
 *   2. run     C client threads do transfers for S seconds, each one
 *                BEGIN; UPDATE accounts SET balance = balance - $1 WHERE id = $2;
 *                       UPDATE accounts SET balance = balance + $1 WHERE id = $2;
 *                COMMIT
 *              between random accounts (usually on two shards: a two-phase
 *              commit).  40001/40P01 (conflict, deadlock) are retried;
 *              23514 (the CHECK balance >= 0: insufficient funds) is an abort:
 *              rolled back, counted, not retried.  Meanwhile an auditor thread
 *              runs SELECT sum(balance), count(*) FROM accounts in a loop: a
 *              scatter read over every shard that must always see the exact
 *              total (no fractured reads).
 *   3. report  throughput, latency percentiles of committed transfers,
 *              retries, aborts, audits and wrong audits, the final total,
 *              every account's balance against the transfers acknowledged to
 *              the clients, and a PASS/FAIL line.
 *   4. end     `shardlite cluster stop`, unless --keep.
 *
 * Exit status: 0 PASS; 1 a cent was lost or created (final total or an
 * account's balance is wrong); 2 any other failure (an audit saw a wrong
 * total, unexpected errors, no transfer committed, setup failed).
 *
 * Money is in cents (int64).  Invariant checked at the end: the sum of all
 * balances equals accounts * initial balance, and when every COMMIT had a
 * definite outcome, each account's balance equals its initial balance plus
 * the net of the transfers whose COMMIT succeeded.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define INITIAL_BALANCE 10000 /* cents: $100.00 per account */
#define LOAD_BATCH 500        /* rows per INSERT while loading */
#define MAX_CLIENTS 256
#define MAX_RETRIES 1000      /* per transfer; then it counts as an error */
#define ERRORS_SHOWN 5

/* ---- options and shared state ---------------------------------------------- */

typedef struct {
	const char *shardlite;
	char dir[PATH_MAX];
	bool dir_is_temp;
	int port;
	int shards;
	long accounts;
	int clients;
	int seconds;
	bool keep;
	bool saga;          /* --mode saga: BEGIN SAGA, steps with COMPENSATE WITH */
	bool seeded;        /* --seed given: the same transfers run after run */
	uint64_t seed;
	const char *timeline;  /* --timeline FILE: one line per second */
	int audit_every_ms;    /* --audit-every MS: pause between audits (0: back to back) */
} options;

static options opt = {
	.port = 5433, .shards = 4, .accounts = 10000, .clients = 8, .seconds = 10,
};
static char conninfo[512];
static bool tty;

static atomic_int stop;             /* clients and auditor stop when set */
static volatile sig_atomic_t interrupted;

/* counters of the run */
static atomic_long n_committed, n_retries, n_aborts, n_errors, n_ambiguous;
static atomic_long n_audits, n_audits_wrong, n_audit_errors;
static atomic_llong audit_worst;    /* how far the farthest wrong audit total was off */
static _Atomic int64_t *net;        /* per account: net of acknowledged transfers */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static int errors_shown;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
	atomic_store(&stop, 1);
	signal(SIGINT, SIG_DFL); /* a second ^C ends the program at once */
}

/* Unexpected errors are shown (a few of them), never swallowed. */
static void report_error(const char *what, const char *state, const char *msg)
{
	pthread_mutex_lock(&err_lock);
	if (errors_shown++ < ERRORS_SHOWN) {
		size_t len = strlen(msg);
		while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
			len--;
		/* what may be a long SQL statement: its start is enough */
		fprintf(stderr, "%s%.60s%s: %s%s%.*s\n", tty ? "\r\033[K" : "", what, strlen(what) > 60 ? "..." : "",
			state ? state : "", state ? " " : "", (int)len, msg);
	}
	pthread_mutex_unlock(&err_lock);
}

/* ---- formatting --------------------------------------------------------------- */

/* 1234567 -> "1,234,567" into buf (at least 32 bytes) */
static const char *fmt_int(char *buf, long long v)
{
	char digits[32];
	int n = snprintf(digits, sizeof digits, "%lld", v < 0 ? -v : v);
	size_t o = 0;
	if (v < 0)
		buf[o++] = '-';
	for (int i = 0; i < n; i++) {
		buf[o++] = digits[i];
		if ((n - i - 1) % 3 == 0 && i != n - 1)
			buf[o++] = ',';
	}
	buf[o] = 0;
	return buf;
}

/* cents -> "$1,234.56" into buf (at least 40 bytes) */
static const char *fmt_money(char *buf, long long cents)
{
	char whole[32];
	long long a = cents < 0 ? -cents : cents;
	fmt_int(whole, a / 100);
	snprintf(buf, 40, "%s$%s.%02lld", cents < 0 ? "-" : "", whole, a % 100);
	return buf;
}

/* ---- the cluster: running the shardlite binary ------------------------------------------ */

/* The shardlite binary: --shardlite, else the one at the top of this
 * program's build tree (examples/bank -> ./shardlite), else next to this
 * program, else whatever PATH has. */
static const char *find_shardlite(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			char up[PATH_MAX];
			snprintf(up, sizeof up, "%.*s/../shardlite", (int)(sizeof up - 20), self);
			if (access(up, X_OK) == 0 && realpath(up, path))
				return path;
			snprintf(path, sizeof path, "%.*s/shardlite", (int)(sizeof path - 20), self);
			if (access(path, X_OK) == 0)
				return path;
		}
	}
	return "shardlite";
}

/* Runs `shardlite cluster VERB --dir DIR [...]`; its output is shown
 * indented (quiet: only when it fails).  Returns its exit status. */
static int run_cluster(const char *verb, bool quiet)
{
	char port[16], shards[16];
	snprintf(port, sizeof port, "%d", opt.port);
	snprintf(shards, sizeof shards, "%d", opt.shards);
	const char *argv[] = {opt.shardlite, "cluster", verb, "--dir", opt.dir, "--shards", shards, "--port", port, NULL};
	if (strcmp(verb, "start") != 0)
		argv[5] = NULL;
	int fd[2];
	if (pipe(fd) != 0)
		return -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	FILE *f = fdopen(fd[0], "r");
	char out[8192] = "";
	size_t len = 0;
	char line[1024];
	while (f && fgets(line, sizeof line, f)) {
		if (!quiet)
			printf("  | %s", line);
		else if (len + strlen(line) < sizeof out)
			len += (size_t)snprintf(out + len, sizeof out - len, "  | %s", line);
	}
	if (f)
		fclose(f);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	if (rc != 0 && quiet)
		fputs(out, stdout);
	fflush(stdout);
	return rc;
}

/* A DIR that already held a cluster keeps its port: read it back. */
static void read_cluster_port(void)
{
	char p[PATH_MAX + 32];
	snprintf(p, sizeof p, "%s/cluster.conf", opt.dir);
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	char line[128];
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "port=", 5) == 0)
			opt.port = atoi(line + 5);
		else if (strncmp(line, "shards=", 7) == 0)
			opt.shards = atoi(line + 7);
	}
	fclose(f);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

/* ---- SQL helpers -------------------------------------------------------------------------- */

static PGconn *connect_db(void)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		report_error("connect", NULL, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Runs a statement; on failure copies the SQLSTATE ("" if none) into state. */
static bool exec_sql(PGconn *c, const char *sql, char state[6])
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	bool good = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (state) {
		const char *s = good ? "" : PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(state, 6, "%s", s ? s : "");
		if (!good && !s)
			snprintf(state, 6, "08000"); /* no SQLSTATE: the connection broke */
	}
	if (!good && !state)
		report_error(sql, PQresultErrorField(r, PG_DIAG_SQLSTATE), PQresultErrorMessage(r));
	PQclear(r);
	return good;
}

static bool is_retryable(const char *state)
{
	return strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0;
}

static long long expected_total(void)
{
	return (long long)opt.accounts * INITIAL_BALANCE;
}

/* ---- setup -------------------------------------------------------------------------------------- */

static void progress(long done, long total, double t0)
{
	static int last_quarter; /* without a terminal: a line at 25, 50, 75, 100% */
	int pct = total ? (int)(done * 100 / total) : 100;
	char a[32], b[32];
	if (tty) {
		const int width = 40;
		int fill = total ? (int)(done * width / total) : width;
		printf("\r  [%.*s%.*s] %3d%%  %s/%s accounts  %.1f s", fill,
		       "########################################", width - fill,
		       "........................................", pct, fmt_int(a, done), fmt_int(b, total),
		       now_s() - t0);
		if (done == total)
			printf("\n");
		fflush(stdout);
	} else if (pct / 25 > last_quarter) {
		last_quarter = pct / 25;
		printf("  loaded %s/%s accounts (%d%%)\n", fmt_int(a, done), fmt_int(b, total), pct);
		fflush(stdout);
	}
}

static bool load_accounts(PGconn *c)
{
	if (!exec_sql(c, "DROP TABLE IF EXISTS accounts", NULL) ||
	    !exec_sql(c,
		      "CREATE TABLE accounts (id BIGINT PRIMARY KEY, "
		      "balance BIGINT NOT NULL CHECK (balance >= 0)) PARTITION BY HASH (id)",
		      NULL))
		return false;
	char a[40], b[40], m[40];
	printf("Loading %s accounts with %s each\n", fmt_int(a, opt.accounts), fmt_money(m, INITIAL_BALANCE));
	size_t cap = LOAD_BATCH * 40 + 64;
	char *sql = malloc(cap);
	if (!sql)
		return false;
	double t0 = now_s();
	progress(0, opt.accounts, t0);
	for (long first = 1; first <= opt.accounts && !interrupted; first += LOAD_BATCH) {
		long last = first + LOAD_BATCH - 1 < opt.accounts ? first + LOAD_BATCH - 1 : opt.accounts;
		size_t len = (size_t)snprintf(sql, cap, "INSERT INTO accounts (id, balance) VALUES ");
		for (long id = first; id <= last; id++)
			len += (size_t)snprintf(sql + len, cap - len, "(%ld, %d)%s", id, INITIAL_BALANCE, id < last ? "," : "");
		if (!exec_sql(c, sql, NULL)) {
			free(sql);
			return false;
		}
		progress(last, opt.accounts, t0);
	}
	free(sql);
	if (interrupted)
		return false;
	double dt = now_s() - t0;
	/* Read back before any transfer: this scatter read runs at a
	 * consistent cut, so it also waits until every INSERT (a two-phase
	 * commit over the shards) is applied on all of them. */
	PGresult *r = PQexec(c, "SELECT sum(balance), count(*) FROM accounts");
	bool good = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		    atoll(PQgetvalue(r, 0, 0)) == expected_total() && atol(PQgetvalue(r, 0, 1)) == opt.accounts;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		report_error("SELECT sum(balance), count(*)", PQresultErrorField(r, PG_DIAG_SQLSTATE),
			     PQresultErrorMessage(r));
	else if (!good)
		printf("  read back: %s accounts, total %s: wrong\n", PQgetvalue(r, 0, 1),
		       fmt_money(m, atoll(PQgetvalue(r, 0, 0))));
	PQclear(r);
	if (!good)
		return false;
	printf("  loaded in %.1f s (%s rows/s); read back: %s accounts, total %s\n\n", dt,
	       fmt_int(a, (long long)(opt.accounts / (dt > 0 ? dt : 1))), fmt_int(b, opt.accounts),
	       fmt_money(m, expected_total()));
	return true;
}

/* ---- the clients --------------------------------------------------------------------------------- */

typedef struct {
	int id;
	pthread_t th;
	uint64_t rng;
	uint32_t *lat_us;        /* latency of each committed transfer */
	uint32_t *lat_sec;       /* ... and the second of the run it ended in */
	size_t nlat, caplat;
} client;

static double run_t0;        /* when the transfers started */

static uint64_t rnd(client *cl)
{
	/* xorshift64* */
	cl->rng ^= cl->rng >> 12;
	cl->rng ^= cl->rng << 25;
	cl->rng ^= cl->rng >> 27;
	return cl->rng * 2685821657736338717ULL;
}

static PGconn *client_connect(void)
{
	PGconn *c = connect_db();
	if (!c)
		return NULL;
	static const char *const stmts[][2] = {
		{"debit", "UPDATE accounts SET balance = balance - $1 WHERE id = $2"},
		{"credit", "UPDATE accounts SET balance = balance + $1 WHERE id = $2"},
	};
	/* in a saga each step says how to undo it: concurrent transfers
	 * change the same rows, so "put the old value back" would be wrong */
	static const char *const saga_stmts[][2] = {
		{"debit", "UPDATE accounts SET balance = balance - $1 WHERE id = $2"
			  " COMPENSATE WITH UPDATE accounts SET balance = balance + $1 WHERE id = $2"},
		{"credit", "UPDATE accounts SET balance = balance + $1 WHERE id = $2"
			   " COMPENSATE WITH UPDATE accounts SET balance = balance - $1 WHERE id = $2"},
	};
	for (size_t i = 0; i < 2; i++) {
		const char *const *st = opt.saga ? saga_stmts[i] : stmts[i];
		PGresult *r = PQprepare(c, st[0], st[1], 2, NULL);
		bool good = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!good)
			report_error("prepare", PQresultErrorField(r, PG_DIAG_SQLSTATE), PQresultErrorMessage(r));
		PQclear(r);
		if (!good) {
			PQfinish(c);
			return NULL;
		}
	}
	return c;
}

/* One UPDATE of a transfer; false with state set on failure.  It must
 * touch exactly one row: the account exists. */
static bool step(PGconn *c, const char *name, const char *amount, const char *account, char state[6])
{
	const char *params[2] = {amount, account};
	PGresult *r = PQexecPrepared(c, name, 2, params, NULL, NULL, 0);
	bool good = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (good && strcmp(PQcmdTuples(r), "1") != 0) {
		report_error(name, NULL, "the UPDATE did not touch exactly one row");
		snprintf(state, 6, "XX000");
		good = false;
	} else if (!good) {
		const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(state, 6, "%s", s ? s : "08000");
		if (!is_retryable(state) && strcmp(state, "23514") != 0)
			report_error(name, s, PQresultErrorMessage(r));
	}
	PQclear(r);
	return good;
}

typedef enum { T_COMMITTED, T_RETRY, T_ABORTED, T_ERROR, T_AMBIGUOUS } outcome;

static outcome transfer_once(PGconn *c, long from, long to, long amount)
{
	char amt[24], a[24], b[24], state[6], rb_state[6];
	snprintf(amt, sizeof amt, "%ld", amount);
	snprintf(a, sizeof a, "%ld", from);
	snprintf(b, sizeof b, "%ld", to);
	if (!exec_sql(c, opt.saga ? "BEGIN SAGA" : "BEGIN", state)) {
		report_error("BEGIN", state, "failed");
		return is_retryable(state) ? T_RETRY : T_ERROR;
	}
	if (!step(c, "debit", amt, a, state) || !step(c, "credit", amt, b, state)) {
		if (!exec_sql(c, "ROLLBACK", rb_state))
			report_error("ROLLBACK", rb_state, "failed");
		if (is_retryable(state))
			return T_RETRY;
		return strcmp(state, "23514") == 0 ? T_ABORTED : T_ERROR;
	}
	PGresult *r = PQexec(c, "COMMIT");
	ExecStatusType st = PQresultStatus(r);
	const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	outcome out = T_COMMITTED;
	if (st != PGRES_COMMAND_OK) {
		if (s && is_retryable(s))
			out = T_RETRY;    /* the commit was refused: nothing applied */
		else {
			/* the connection broke or an unknown error: committed or not, we
			 * cannot tell, so the per-account check is off */
			report_error("COMMIT", s, PQresultErrorMessage(r));
			out = T_AMBIGUOUS;
		}
	} else if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		/* PostgreSQL answers ROLLBACK to a COMMIT of a failed transaction */
		out = T_ERROR;
		report_error("COMMIT", NULL, "answered ROLLBACK");
	}
	PQclear(r);
	return out;
}

static void record_latency(client *cl, double seconds)
{
	if (cl->nlat == cl->caplat) {
		size_t cap = cl->caplat ? cl->caplat * 2 : 4096;
		uint32_t *p = realloc(cl->lat_us, cap * sizeof *p);
		if (!p)
			return;
		cl->lat_us = p;
		uint32_t *q = realloc(cl->lat_sec, cap * sizeof *q);
		if (!q)
			return;
		cl->lat_sec = q;
		cl->caplat = cap;
	}
	double us = seconds * 1e6;
	cl->lat_sec[cl->nlat] = (uint32_t)(now_s() - run_t0) + 1;  /* the timeline's numbering */
	cl->lat_us[cl->nlat++] = us > 4e9 ? UINT32_MAX : (uint32_t)us;
}

/* Connect again after the router went away (a crash demo restarts it):
 * every 100 ms until it answers or the run ends. */
static PGconn *reconnect(PGconn *(*connect)(void))
{
	PGconn *c = connect();
	while (!c && !atomic_load(&stop)) {
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
		c = connect();
	}
	return c;
}

static void *client_main(void *arg)
{
	client *cl = arg;
	PGconn *c = reconnect(client_connect);
	while (c && !atomic_load(&stop)) {
		long from = 1 + (long)(rnd(cl) % (uint64_t)opt.accounts);
		long to = 1 + (long)(rnd(cl) % (uint64_t)opt.accounts);
		if (from == to)
			continue;
		/* mostly small amounts; one in 20 is large and may find too little
		 * money on the account: the CHECK refuses it (an abort) */
		long amount = rnd(cl) % 20 == 0 ? 1 + (long)(rnd(cl) % (2 * INITIAL_BALANCE))
					       : 1 + (long)(rnd(cl) % (INITIAL_BALANCE / 5));
		double t0 = now_s();
		for (int attempt = 0;; attempt++) {
			outcome o = transfer_once(c, from, to, amount);
			if (o == T_COMMITTED) {
				atomic_fetch_add(&n_committed, 1);
				atomic_fetch_sub(&net[from], amount);
				atomic_fetch_add(&net[to], amount);
				record_latency(cl, now_s() - t0);
			} else if (o == T_ABORTED) {
				atomic_fetch_add(&n_aborts, 1);
			} else if (o == T_AMBIGUOUS) {
				atomic_fetch_add(&n_ambiguous, 1);
			} else if (o == T_ERROR) {
				atomic_fetch_add(&n_errors, 1);
			}
			if (o != T_RETRY)
				break;
			atomic_fetch_add(&n_retries, 1);
			if (atomic_load(&stop) || attempt == MAX_RETRIES) {
				if (attempt == MAX_RETRIES) {
					report_error("transfer", NULL, "still conflicting after many retries; given up");
					atomic_fetch_add(&n_errors, 1);
				}
				break;
			}
			/* back off a little, more after each conflict */
			struct timespec ts = {0, (long)(rnd(cl) % (uint64_t)(100000 * (attempt < 10 ? attempt + 1 : 10)))};
			nanosleep(&ts, NULL);
		}
		if (PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			c = reconnect(client_connect);
		}
	}
	PQfinish(c);
	return NULL;
}

/* ---- the auditor ----------------------------------------------------------------------------- */

static void *auditor_main(void *arg)
{
	(void)arg;
	PGconn *c = connect_db();
	while (c && !atomic_load(&stop)) {
		PGresult *r = PQexec(c, "SELECT sum(balance), count(*) FROM accounts");
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
			long long sum = atoll(PQgetvalue(r, 0, 0));
			long count = atol(PQgetvalue(r, 0, 1));
			atomic_fetch_add(&n_audits, 1);
			if (sum != expected_total() || count != opt.accounts) {
				atomic_fetch_add(&n_audits_wrong, 1);
				long long worst = atomic_load(&audit_worst), dev = sum - expected_total();
				if (llabs(dev) > llabs(worst))
					atomic_store(&audit_worst, dev);
			}
		} else {
			const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			atomic_fetch_add(&n_audit_errors, 1);
			if (!s || !is_retryable(s))
				report_error("audit", s, PQresultErrorMessage(r));
		}
		PQclear(r);
		if (PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			c = reconnect(connect_db);
		}
		for (int waited = 0; waited < opt.audit_every_ms && !atomic_load(&stop); waited += 10)
			usleep(10000);
	}
	PQfinish(c);
	return NULL;
}

/* ---- the run ---------------------------------------------------------------------------------- */

static void status_line(double t, double elapsed_run, long committed_before)
{
	char a[32], b[32], c2[32], d[32];
	long committed = atomic_load(&n_committed);
	printf("%s  %3.0fs  %s transfers/s  retries %s  aborts %s  audits %s (wrong %ld)%s", tty ? "\r\033[K" : "",
	       elapsed_run, fmt_int(a, (long long)((double)(committed - committed_before) / (t > 0 ? t : 1))),
	       fmt_int(b, atomic_load(&n_retries)), fmt_int(c2, atomic_load(&n_aborts)),
	       fmt_int(d, atomic_load(&n_audits)), atomic_load(&n_audits_wrong), tty ? "" : "\n");
	fflush(stdout);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double percentile_ms(const uint32_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

/* Final check: every account's balance equals its initial balance plus the
 * net of the acknowledged transfers.  Returns the number of mismatches (-1
 * if the query failed). */
static long check_accounts(PGconn *c, long *rows)
{
	PGresult *r = PQexec(c, "SELECT id, balance FROM accounts");
	*rows = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		report_error("check", PQresultErrorField(r, PG_DIAG_SQLSTATE), PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	long bad = 0;
	*rows = PQntuples(r);
	for (long i = 0; i < *rows; i++) {
		long id = atol(PQgetvalue(r, (int)i, 0));
		long long bal = atoll(PQgetvalue(r, (int)i, 1));
		if (id < 1 || id > opt.accounts || bal != INITIAL_BALANCE + atomic_load(&net[id])) {
			if (bad < 3)
				fprintf(stderr, "account %ld: balance %lld, expected %lld\n", id, bal,
					id >= 1 && id <= opt.accounts ? (long long)INITIAL_BALANCE + atomic_load(&net[id]) : 0);
			bad++;
		}
	}
	PQclear(r);
	return bad;
}

static int run_and_report(PGconn *c)
{
	char a[40], b[40], m1[40], m2[40];
	client *cls = calloc((size_t)opt.clients, sizeof *cls);
	if (!cls)
		return 2;
	printf("Running %d clients for %d s: %s transfers between random accounts, 1 auditor summing all balances\n",
	       opt.clients, opt.seconds, opt.saga ? "saga" : "2PC");
	fflush(stdout);
	pthread_t auditor;
	double t0 = now_s();
	run_t0 = t0;
	int started = 0;
	for (int i = 0; i < opt.clients; i++) {
		cls[i].id = i;
		cls[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^
			     (opt.seeded ? opt.seed : (uint64_t)time(NULL) ^ (uint64_t)getpid());
		if (!cls[i].rng)
			cls[i].rng = 1;
		if (pthread_create(&cls[i].th, NULL, client_main, &cls[i]) != 0)
			break;
		started++;
	}
	bool have_auditor = pthread_create(&auditor, NULL, auditor_main, NULL) == 0;
	/* a status line every second on a terminal, a few lines otherwise */
	int every = tty ? 1 : (opt.seconds >= 5 ? (opt.seconds + 4) / 5 : 1);
	long committed_before = 0;
	double last = t0;
	FILE *tl = opt.timeline ? fopen(opt.timeline, "w") : NULL;
	if (opt.timeline && !tl)
		fprintf(stderr, "bank: cannot write %s: %s\n", opt.timeline, strerror(errno));
	if (tl)
		fprintf(tl, "second committed wrong_audits audits errors\n");
	long tl_committed = 0, tl_wrong = 0, tl_audits = 0, tl_errors = 0;
	for (int sec = 1; sec <= opt.seconds && !interrupted; sec++) {
		double until = t0 + sec;
		while (now_s() < until && !interrupted) {
			struct timespec ts = {0, 20 * 1000000};
			nanosleep(&ts, NULL);
		}
		if (tl) {
			long cm = atomic_load(&n_committed), w = atomic_load(&n_audits_wrong);
			long au = atomic_load(&n_audits);
			long er = atomic_load(&n_errors) + atomic_load(&n_ambiguous) + atomic_load(&n_audit_errors);
			fprintf(tl, "%d %ld %ld %ld %ld\n", sec, cm - tl_committed, w - tl_wrong, au - tl_audits,
				er - tl_errors);
			fflush(tl);
			tl_committed = cm;
			tl_wrong = w;
			tl_audits = au;
			tl_errors = er;
		}
		if (sec % every == 0 || sec == opt.seconds) {
			double t = now_s();
			status_line(t - last, t - t0, committed_before);
			committed_before = atomic_load(&n_committed);
			last = t;
		}
	}
	if (tl)
		fclose(tl);
	atomic_store(&stop, 1);
	for (int i = 0; i < started; i++)
		pthread_join(cls[i].th, NULL);
	if (have_auditor)
		pthread_join(auditor, NULL);
	double elapsed = now_s() - t0;
	if (tty)
		printf("\n");
	if (interrupted)
		printf("  (interrupted)\n");

	/* each committed transfer's second and latency, for latency before,
	 * during and after something that happened in the run */
	if (opt.timeline) {
		char path[PATH_MAX + 8];
		snprintf(path, sizeof path, "%s.lat", opt.timeline);
		FILE *lf = fopen(path, "w");
		for (int i = 0; lf && i < started; i++)
			for (size_t j = 0; j < cls[i].nlat; j++)
				fprintf(lf, "%u %u\n", cls[i].lat_sec[j], cls[i].lat_us[j]);
		if (lf)
			fclose(lf);
		else
			fprintf(stderr, "bank: cannot write %s: %s\n", path, strerror(errno));
	}
	for (int i = 0; i < started; i++)
		free(cls[i].lat_sec);

	/* latencies of all clients together */
	size_t nlat = 0;
	for (int i = 0; i < started; i++)
		nlat += cls[i].nlat;
	uint32_t *lat = malloc((nlat + 1) * sizeof *lat);
	size_t k = 0;
	for (int i = 0; i < started; i++) {
		if (lat)
			memcpy(lat + k, cls[i].lat_us, cls[i].nlat * sizeof *lat);
		k += cls[i].nlat;
		free(cls[i].lat_us);
	}
	free(cls);
	if (lat)
		qsort(lat, nlat, sizeof *lat, cmp_u32);
	else
		nlat = 0;

	/* the final audit, with every client stopped, on a fresh connection
	 * (the first one dies with a router that crashed meanwhile) */
	PGconn *fresh = connect_db();
	if (fresh)
		c = fresh;
	long long final_sum = -1;
	long final_count = -1;
	PGresult *r = PQexec(c, "SELECT sum(balance), count(*) FROM accounts");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		final_sum = atoll(PQgetvalue(r, 0, 0));
		final_count = atol(PQgetvalue(r, 0, 1));
	} else {
		report_error("final audit", PQresultErrorField(r, PG_DIAG_SQLSTATE), PQresultErrorMessage(r));
	}
	PQclear(r);
	long rows = 0, mismatched = -2; /* -2: not checked */
	if (atomic_load(&n_ambiguous) == 0)
		mismatched = check_accounts(c, &rows);
	PQfinish(fresh);

	long committed = atomic_load(&n_committed), wrong = atomic_load(&n_audits_wrong);
	printf("\nResults\n");
	printf("  transfers committed   %s in %.1f s: %s per second\n", fmt_int(a, committed), elapsed,
	       fmt_int(b, (long long)((double)committed / (elapsed > 0 ? elapsed : 1))));
	printf("  latency (committed)   p50 %.2f ms   p95 %.2f ms   p99 %.2f ms   max %.2f ms\n",
	       percentile_ms(lat, nlat, 0.50), percentile_ms(lat, nlat, 0.95), percentile_ms(lat, nlat, 0.99),
	       percentile_ms(lat, nlat, 1.0));
	free(lat);
	printf("  retries               %s (40001 conflict / 40P01 deadlock, retried)\n",
	       fmt_int(a, atomic_load(&n_retries)));
	printf("  aborts                %s (23514 insufficient funds: rolled back, not retried)\n",
	       fmt_int(a, atomic_load(&n_aborts)));
	printf("  unexpected errors     %s", fmt_int(a, atomic_load(&n_errors)));
	if (atomic_load(&n_ambiguous))
		printf(" + %ld COMMITs with an unknown outcome", atomic_load(&n_ambiguous));
	printf("\n");
	printf("  audits                %s, %s with a wrong total", fmt_int(a, atomic_load(&n_audits)), fmt_int(b, wrong));
	if (wrong)
		printf(" (the farthest off by %s)", fmt_money(m1, atomic_load(&audit_worst)));
	if (atomic_load(&n_audit_errors))
		printf(", %ld failed", atomic_load(&n_audit_errors));
	printf("\n");
	printf("  final total           %s, expected %s (%s accounts, expected %s)\n", fmt_money(m1, final_sum),
	       fmt_money(m2, expected_total()), fmt_int(a, final_count), fmt_int(b, opt.accounts));
	if (mismatched >= 0)
		printf("  every account         %s of %s balances match the committed transfers\n",
		       fmt_int(a, rows - mismatched), fmt_int(b, opt.accounts));
	else if (mismatched == -2)
		printf("  every account         not checked: a COMMIT's outcome is unknown\n");

	/* mismatched: -2 not checked (a COMMIT's outcome is unknown), -1 the
	 * check failed, else the accounts that differ */
	bool money_ok = final_sum == expected_total() && final_count == opt.accounts && mismatched <= 0;
	/* a saga's intermediate states are visible: wrong audits are its
	 * documented price, reported but not a failure */
	bool other_ok = (wrong == 0 || opt.saga) && atomic_load(&n_errors) == 0 && atomic_load(&n_ambiguous) == 0 &&
			committed > 0 && mismatched != -1;
	printf("\n");
	if (!money_ok) {
		long long diff = final_sum - expected_total();
		if (diff != 0 || final_count != opt.accounts)
			printf("FAIL: money was %s: final total %s, expected %s (off by %s), %s accounts\n",
			       diff < 0 ? "lost" : diff > 0 ? "created" : "misplaced", fmt_money(m1, final_sum),
			       fmt_money(m2, expected_total()), fmt_money(a, diff), fmt_int(b, final_count));
		else
			printf("FAIL: the total is right, but %s accounts do not hold what the acknowledged transfers "
			       "say: a COMMIT was reported and not applied, or applied and reported failed\n",
			       fmt_int(a, mismatched));
		return 1;
	}
	if (!other_ok) {
		printf("FAIL: no cent lost or created (total %s), but", fmt_money(m1, final_sum));
		const char *sep = " ";
		if (wrong && !opt.saga) {
			printf("%s%ld audits saw a wrong total (fractured reads: a scatter read saw part of a "
			       "transfer)", sep, wrong);
			sep = "; ";
		}
		if (atomic_load(&n_errors) || atomic_load(&n_ambiguous)) {
			printf("%s%ld unexpected errors", sep, atomic_load(&n_errors) + atomic_load(&n_ambiguous));
			sep = "; ";
		}
		if (committed == 0) {
			printf("%sno transfer committed", sep);
			sep = "; ";
		}
		if (mismatched == -1)
			printf("%sthe per-account check failed", sep);
		printf("\n");
		return 2;
	}
	if (opt.saga)
		printf("PASS: %s saga transfers committed, no cent lost or created (total %s); %s audits saw an "
		       "intermediate total (sagas expose them; 2PC does not)\n",
		       fmt_int(a, committed), fmt_money(m1, final_sum), fmt_int(b, wrong));
	else
		printf("PASS: %s transfers committed, no cent lost or created (total %s), every audit exact\n",
		       fmt_int(a, committed), fmt_money(m1, final_sum));
	return 0;
}

/* ---- main ----------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bank [options]\n"
		"\n"
		"The shardlite demo: starts a local cluster, loads accounts, runs concurrent\n"
		"transfers between them (two-phase commits across shards) while an auditor\n"
		"sums all balances, and checks that no cent was lost or created.\n"
		"\n"
		"  --shardlite PATH  the shardlite binary (default: the one in this build tree, or PATH)\n"
		"  --dir DIR         cluster directory (default: a new temporary directory)\n"
		"  --port P          router port (default 5433; shards on P+1..P+N)\n"
		"  --shards N        shards at the cluster's first start (default 4)\n"
		"  --accounts N      accounts to load (default 10000)\n"
		"  --clients C       client threads doing transfers (default 8)\n"
		"  --seconds S       how long the transfers run (default 10)\n"
		"  --mode 2pc|saga   transfers as two-phase commits (default) or as sagas\n"
		"                    (BEGIN SAGA, each step with COMPENSATE WITH)\n"
		"  --seed N          seed the clients' random transfers (default: time and pid)\n"
		"  --timeline FILE   write per-second counts (committed, wrong audits, audits, errors),\n"
		"                    and FILE.lat: each committed transfer's second and latency (us)\n"
		"  --audit-every MS  wait MS between two audits (default 0: back to back)\n"
		"  --keep            leave the cluster running at the end\n"
		"  --help            this text\n"
		"\n"
		"Exit status: 0 PASS; 1 a cent was lost or created; 2 any other failure.\n");
}

static long parse_num(const char *s, const char *what, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "bank: %s must be a number from %ld to %ld\n", what, min, max);
		exit(2);
	}
	return v;
}

static void parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"shardlite", required_argument, NULL, 'b'}, {"dir", required_argument, NULL, 'd'},
		{"port", required_argument, NULL, 'p'},      {"shards", required_argument, NULL, 'n'},
		{"accounts", required_argument, NULL, 'a'},  {"clients", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'},   {"keep", no_argument, NULL, 'k'},
		{"mode", required_argument, NULL, 'm'},      {"seed", required_argument, NULL, 'S'},
		{"timeline", required_argument, NULL, 't'}, {"audit-every", required_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b': opt.shardlite = optarg; break;
		case 'd': snprintf(opt.dir, sizeof opt.dir, "%s", optarg); break;
		case 'p': opt.port = (int)parse_num(optarg, "--port", 1, 65535 - 257); break;
		case 'n': opt.shards = (int)parse_num(optarg, "--shards", 1, 256); break;
		case 'a': opt.accounts = parse_num(optarg, "--accounts", 2, 100000000); break;
		case 'c': opt.clients = (int)parse_num(optarg, "--clients", 1, MAX_CLIENTS); break;
		case 's': opt.seconds = (int)parse_num(optarg, "--seconds", 1, 86400); break;
		case 'k': opt.keep = true; break;
		case 'S':
			opt.seeded = true;
			opt.seed = (uint64_t)parse_num(optarg, "--seed", 0, LONG_MAX);
			break;
		case 't': opt.timeline = optarg; break;
		case 'A': opt.audit_every_ms = (int)parse_num(optarg, "--audit-every", 0, 3600000); break;
		case 'm':
			if (strcmp(optarg, "saga") != 0 && strcmp(optarg, "2pc") != 0) {
				fprintf(stderr, "bank: --mode must be 2pc or saga\n");
				exit(2);
			}
			opt.saga = strcmp(optarg, "saga") == 0;
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bank: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	tty = isatty(1);
	if (!opt.shardlite)
		opt.shardlite = find_shardlite();
	if (!opt.dir[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(opt.dir, sizeof opt.dir, "%s/shardlite-bank-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(opt.dir)) {
			fprintf(stderr, "bank: cannot create a directory in %s: %s\n", tmp ? tmp : "/tmp", strerror(errno));
			return 2;
		}
		opt.dir_is_temp = true;
	}
	net = calloc((size_t)opt.accounts + 1, sizeof *net);
	if (!net) {
		fprintf(stderr, "bank: out of memory\n");
		return 2;
	}
	signal(SIGINT, on_sigint);

	printf("shardlite bank demo\n\nStarting a local cluster (%s cluster start --dir %s)\n", opt.shardlite, opt.dir);
	if (run_cluster("start", false) != 0) {
		fprintf(stderr, "bank: the cluster did not start (are ports %d..%d free? try --port); logs in %s\n",
			opt.port, opt.port + opt.shards, opt.dir);
		run_cluster("stop", true);
		return 2;
	}
	read_cluster_port();
	snprintf(conninfo, sizeof conninfo,
		 "host=127.0.0.1 port=%d user=bank dbname=shardlite application_name=bank connect_timeout=10", opt.port);
	printf("\n");

	int rc = 2;
	PGconn *c = connect_db();
	if (c && load_accounts(c))
		rc = run_and_report(c);
	else if (interrupted)
		printf("\n(interrupted)\n");
	PQfinish(c);

	printf("\n");
	if (opt.keep) {
		printf("The cluster is still running (data and logs in %s). Connect with:\n"
		       "  psql -h 127.0.0.1 -p %d -U bank shardlite\n"
		       "and stop it with:\n"
		       "  %s cluster stop --dir %s\n",
		       opt.dir, opt.port, opt.shardlite, opt.dir);
		return rc;
	}
	printf("Stopping the cluster\n");
	run_cluster("stop", true);
	if (opt.dir_is_temp && rc == 0)
		nftw(opt.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else if (rc != 0)
		printf("Its data and logs are kept in %s\n", opt.dir);
	return rc;
}
