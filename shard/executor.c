/*
 * executor.c — batches, private workspaces, prepare log, row locks
 * (see executor.h for the model and the state machine).
 *
 * Invariants (writer thread):
 *  - Outside a batch, every txn has pws == ws and pstate == state.  Inside a
 *    batch, requests see and change only pws/pstate ("pending"); the batch's
 *    COMMIT makes them real (commit_effects), a failed batch reverts them.
 *  - A txn holds a row lock for every row in its workspace.
 *  - A request is in exactly one place: the queue, the batch being run, the
 *    parked list (waiting for a lock), or the done queue.
 *  - batch_wrote is set iff some request made a durable change; only then
 *    does the batch end in COMMIT (and an fsync).  Otherwise it ends in
 *    ROLLBACK, which costs no I/O: savepoints that were rolled back still
 *    leave dirty pages that a COMMIT would write.
 */
#include "shard/executor.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shard/apply.h"
#include "shard/locks.h"
#include "shard/outbox.h"
#include "shard/sagastep.h"
#include "shard/store.h"
#include "txn/failpoint.h"
#include "txn/hmap.h"

typedef enum { TXN_ACTIVE = 1, TXN_PREPARED = 2, TXN_REMOVED = 3 } txn_state;

typedef struct shard_txn {
	uint64_t id;
	uint64_t conn_id;
	txn_state state, pstate;
	lock_holder locks;
	void *ws;                 /* sqlite3_malloc'd changeset, or NULL */
	int wslen;
	void *pws;
	int pwslen;
	uint64_t created_ms, active_ms;
	shard_req *parked;        /* a statement of this txn waiting for a lock */
	struct shard_txn *touched_next;
	int touched;
	int wounded;              /* rolled back by an older transaction */
	uint32_t decider;         /* prepared: the deciding shard + 1, 0 the router's log */
	int early;                /* prepared early (Request.early): an older txn's
				   * statement that meets its locks tells the router
				   * (Waiting), and an Exec of its own un-prepares it.
				   * Kept in its prepare record (_sl_prepared.early),
				   * so a restart keeps it too. */
} shard_txn;

#define txn_of(holder) ((shard_txn *)((char *)(holder) - offsetof(shard_txn, locks)))

typedef struct {
	pthread_t thread;
	shard_executor *ex;
	shard_store *st;
} reader;

struct shard_executor {
	shard_executor_config cfg;
	char *db_path;
	pthread_mutex_t mu;
	pthread_cond_t wcond, rcond;
	shard_req *wq, **wq_tail;     /* writer queue */
	shard_req *rq, **rq_tail;     /* reader queue */
	int stopping;

	/* whoever holds run_mu runs batches and sweeps: the writer thread, or
	 * the loop thread (shard_executor_pump); everything below that is not
	 * marked otherwise belongs to the holder */
	pthread_mutex_t run_mu;
	int pump_on;                  /* the loop may run batches (set at start) */
	int pumping;                  /* the loop is running one now */
	int writer_wanted;            /* (mu) with pump_on: the writer thread has work */
	uint64_t slow_sql[64];        /* hashes of statements too slow for the loop */
	uint64_t slow_since_ms;

	pthread_t writer;
	shard_store *st;
	shard_applier *applier;       /* applies workspaces with st */
	hmap txns;                    /* id (8 bytes) -> shard_txn */
	lock_table locks;
	shard_req *parked;            /* doubly linked through park_prev/next */
	shard_txn *touched;
	int batch_wrote;
	uint64_t last_sweep_ms, ts_counter, last_purge_ms;
	int batch_prepared, batch_committed_prepared, batch_decided;  /* for failpoints */
	/* statistics (writer) */
	uint64_t n_batches, n_fsync_batches, n_requests, n_commits, n_lock_waits, n_wounds;
	uint64_t n_saga_steps, n_saga_dups, n_saga_undos;
	uint64_t n_pumped, n_pump_heavy;  /* batches the loop ran; passes it left to the writer */
	_Atomic uint64_t n_pump_busy;     /* pump found the writer running */

	reader *readers;
	int nreaders;

	/* the shard map as assigned by the router (written by the writer,
	 * read by any thread) */
	_Atomic uint64_t map_epoch;      /* 0: never assigned */
	_Atomic uint64_t owned[4096 / 64];

	/* checkpointer */
	pthread_t checkpointer;
	int have_checkpointer;
	pthread_cond_t ccond;
	int checkpoint_wanted;
	_Atomic int checkpoint_tail;     /* the checkpointer caught up: the writer
					  * checkpoints the last frames itself */
	_Atomic uint64_t n_checkpoints;  /* written by the checkpointer */
};

#define CHECKPOINT_FRAMES 2000

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* this thread's CPU time */
static uint64_t cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void shard_req_free(shard_req *req)
{
	if (!req)
		return;
	if (req->kind == REQ_WIRE)
		wire_message_free(&req->msg);
	free(req->frame);
	free(req->out);
	outbox_unref(req->sink);
	free(req);
}

/* ---- answering -------------------------------------------------------------------- */

static void answer(shard_req *req, store_result *res)
{
	free(req->out);
	req->out = NULL;
	req->outlen = 0;
	if (store_result_encode(res, req->msg.req.id, &req->out, &req->outlen) != 0) {
		store_result res2;
		store_result_init(&res2);
		store_result_error(&res2, "54000", "response too large to encode");
		if (store_result_encode(&res2, req->msg.req.id, &req->out, &req->outlen) != 0)
			req->out = NULL;
		store_result_free(&res2);
	}
}

static void answer_status(shard_req *req, wire_status status)
{
	store_result res;
	store_result_init(&res);
	res.resp.status = status;
	answer(req, &res);
	store_result_free(&res);
}

static void answer_error(shard_req *req, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void answer_error(shard_req *req, const char *sqlstate, const char *fmt, ...)
{
	store_result res;
	store_result_init(&res);
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	store_result_error(&res, sqlstate, "%s", msg);
	answer(req, &res);
	store_result_free(&res);
}

static void deliver(shard_executor *ex, shard_req *list)
{
	if (list)
		ex->cfg.on_answers(ex->cfg.arg, list);
}

/* ---- queues -------------------------------------------------------------------------- */

void shard_executor_submit(shard_executor *ex, shard_req *req)
{
	req->next = NULL;
	int to_reader = ex->nreaders > 0 && req->kind == REQ_WIRE &&
			req->msg.req.op == WIRE_OP_EXEC && req->msg.req.txn == 0 &&
			req->msg.req.readonly;
	pthread_mutex_lock(&ex->mu);
	if (to_reader) {
		*ex->rq_tail = req;
		ex->rq_tail = &req->next;
		pthread_cond_signal(&ex->rcond);
	} else {
		*ex->wq_tail = req;
		ex->wq_tail = &req->next;
		/* the loop's pump runs it, or wakes the writer for it */
		if (!ex->pump_on)
			pthread_cond_signal(&ex->wcond);
	}
	pthread_mutex_unlock(&ex->mu);
}

/* Put woken requests at the head of the writer queue (writer thread). */
static void requeue_front(shard_executor *ex, shard_req *list)
{
	if (!list)
		return;
	shard_req *last = list;
	while (last->next)
		last = last->next;
	pthread_mutex_lock(&ex->mu);
	last->next = ex->wq;
	if (!ex->wq)
		ex->wq_tail = &last->next;
	ex->wq = list;
	pthread_mutex_unlock(&ex->mu);
}

/* ---- transactions --------------------------------------------------------------------- */

static shard_txn *txn_get(shard_executor *ex, uint64_t id)
{
	shard_txn *t = hmap_get(&ex->txns, &id, sizeof id);
	return (t && t->pstate != TXN_REMOVED) ? t : NULL;
}

static shard_txn *txn_create(shard_executor *ex, uint64_t id, uint64_t ts, uint64_t conn)
{
	shard_txn *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->id = id;
	t->conn_id = conn;
	t->state = t->pstate = TXN_ACTIVE;
	if (ts == 0)
		ts = wall_us() > ex->ts_counter ? wall_us() : ex->ts_counter + 1;
	ex->ts_counter = ts;
	t->locks.ts = ts;
	t->created_ms = t->active_ms = now_ms();
	if (hmap_put(&ex->txns, &t->id, sizeof t->id, t) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

static void touch(shard_executor *ex, shard_txn *t)
{
	if (!t->touched) {
		t->touched = 1;
		t->touched_next = ex->touched;
		ex->touched = t;
	}
}

static void set_pws(shard_txn *t, void *cs, int len)
{
	if (t->pws && t->pws != t->ws)
		sqlite3_free(t->pws);
	t->pws = cs;
	t->pwslen = len;
}

static void unpark(shard_executor *ex, shard_req *req)
{
	if (req->park_prev)
		req->park_prev->park_next = req->park_next;
	else if (ex->parked == req)
		ex->parked = req->park_next;
	if (req->park_next)
		req->park_next->park_prev = req->park_prev;
	req->park_prev = req->park_next = NULL;
	if (req->waiting_on)
		locks_unpark(req->waiting_on, req);
}

/* Drop a txn for good: release its locks (waiters go to *wake), answer a
 * statement of its that was still waiting. */
static void txn_destroy(shard_executor *ex, shard_txn *t, shard_req **wake, shard_req **done)
{
	if (t->parked) {
		shard_req *p = t->parked;
		unpark(ex, p);
		if (!p->woken) {
			answer_error(p, "40001", "transaction %" PRIu64 " was rolled back while waiting for a lock%s",
				     t->id, t->wounded ? " (wounded by an older transaction)" : "");
			p->next = *done;
			*done = p;
		}
		/* else its lock was released in this batch too: it is on the wake
		 * list already (linked by next) and, run again, finds its
		 * transaction gone (40001).  Putting it on *done as well linked it
		 * into two lists: a cycle that hung the writer. */
		t->parked = NULL;
	}
	locks_release_all(&ex->locks, &t->locks, wake);
	if (t->pws && t->pws != t->ws)
		sqlite3_free(t->pws);
	sqlite3_free(t->ws);
	hmap_del(&ex->txns, &t->id, sizeof t->id);
	free(t);
}

/* The batch committed: make pending state real. */
static void commit_effects(shard_executor *ex, shard_req **wake, shard_req **done)
{
	shard_txn *t = ex->touched;
	ex->touched = NULL;
	while (t) {
		shard_txn *n = t->touched_next;
		t->touched = 0;
		t->touched_next = NULL;
		if (t->pstate == TXN_REMOVED) {
			txn_destroy(ex, t, wake, done);
		} else {
			if (t->ws != t->pws)
				sqlite3_free(t->ws);
			t->ws = t->pws;
			t->wslen = t->pwslen;
			t->state = t->pstate;
		}
		t = n;
	}
}

/* The batch failed: forget pending state. */
static void revert_effects(shard_executor *ex)
{
	shard_txn *t = ex->touched;
	ex->touched = NULL;
	while (t) {
		shard_txn *n = t->touched_next;
		t->touched = 0;
		t->touched_next = NULL;
		set_pws(t, t->ws, t->wslen);
		t->pstate = t->state;
		t = n;
	}
}

/* ---- SQLite helpers --------------------------------------------------------------------- */

static int internal_exec(shard_executor *ex, const char *sql)
{
	char err[256];
	if (store_exec(ex->st, sql, err, sizeof err) != 0) {
		fprintf(stderr, "shard: %s\n", err);
		return -1;
	}
	return 0;
}

/* Apply a workspace to the database.  0, or -1 with res holding why. */
static int apply_ws(shard_executor *ex, void *cs, int len, store_result *res)
{
	int rc = SQLITE_OK;
	switch (applier_apply(ex->applier, cs, len, &rc)) {
	case APPLY_OK:
		return 0;
	case APPLY_CONSTRAINT:
		store_result_error(res, "23505", "transaction conflicts with a committed row (constraint)");
		return -1;
	case APPLY_CONFLICT:
		store_result_error(res, "40001", "could not serialize access: a row of the transaction changed underneath it");
		return -1;
	default:
		store_result_error(res, store_sqlstate(store_db(ex->st), rc), "applying the transaction: %s",
				   sqlite3_errmsg(store_db(ex->st)));
		return -1;
	}
}

/* ---- lock acquisition for a changeset --------------------------------------------------- */

typedef struct {
	shard_executor *ex;
	lock_holder *h;
	lock_entry *conflict;
	lock_result result;
	int oom;
} lock_walk;

static int lock_one(const void *key, size_t klen, void *arg)
{
	lock_walk *w = arg;
	lock_entry *e;
	lock_result r;
	if (locks_acquire(&w->ex->locks, key, klen, w->h, &e, &r) != 0) {
		w->oom = 1;
		return 1;
	}
	if (r != LOCK_GRANTED) {
		w->result = r;
		w->conflict = e;
		return 1;
	}
	return 0;
}

static void park(shard_executor *ex, shard_req *req, lock_entry *e)
{
	ex->n_lock_waits++;
	req->waited = 1;
	locks_park(e, req);
	if (req->deadline_ms == 0)
		req->deadline_ms = now_ms() + ex->cfg.lock_timeout_ms;
	req->park_prev = NULL;
	req->park_next = ex->parked;
	if (ex->parked)
		ex->parked->park_prev = req;
	ex->parked = req;
}

/* Mark the younger holder o wounded by txn `by` (its caller removes it). */
static void wound(shard_executor *ex, uint64_t by, shard_txn *o)
{
	fprintf(stderr, "shard: transaction %" PRIu64 " wounds younger %" PRIu64 "\n", by, o->id);
	ex->n_wounds++;
	o->wounded = 1;
}

/* An interim answer to req, which stays in flight (wire.fbs: Started,
 * Waiting), sent at once: it makes nothing durable.  Lost on out of memory
 * (the final answer still comes). */
static void send_interim(shard_executor *ex, const shard_req *req, wire_status status, int64_t changes)
{
	shard_req *w = calloc(1, sizeof *w);
	if (!w)
		return;
	w->kind = REQ_WIRE;
	w->conn_id = req->conn_id;
	w->sink = req->sink;
	if (w->sink)
		outbox_ref(w->sink);
	wire_response resp = {.id = req->msg.req.id, .status = status, .changes = changes};
	if (wire_encode_response(&resp, &w->out, &w->outlen) == 0)
		deliver(ex, w);
	else
		shard_req_free(w);
}

/* Requests whose lock was released leave the parked list and run again. */
static void requeue_woken(shard_executor *ex, shard_req *wake)
{
	for (shard_req *w = wake; w; w = w->next) {
		w->woken = 0;
		if (w->park_prev)
			w->park_prev->park_next = w->park_next;
		else if (ex->parked == w)
			ex->parked = w->park_next;
		if (w->park_next)
			w->park_next->park_prev = w->park_prev;
		w->park_prev = w->park_next = NULL;
		if (w->msg.req.txn) {
			shard_txn *t = txn_get(ex, w->msg.req.txn);
			if (t && t->parked == w)
				t->parked = NULL;
		}
	}
	requeue_front(ex, wake);
}

/* ---- request handlers (writer thread, inside a batch) --------------------------------- */

enum { DONE, PARKED };

/* Autocommit statement on the writer. */
static int do_exec_autocommit(shard_executor *ex, shard_req *req)
{
	wire_request *r = &req->msg.req;
	store_result res;
	store_result_init(&res);
	store_stmt *s = store_prepare(ex->st, r->sql, r->sql_len, &res);
	if (!s)
		goto out;
	/* an unlocked request's rows are out of every transaction's reach
	 * (the sender says so: the rebalancer's gated writes, wire.fbs) */
	int check_locks = ex->locks.nheld > 0 && s->writes && !r->unlocked;
	if (!check_locks) {
		/* A statement is atomic by itself (a failed one leaves nothing;
		 * one that ends the batch's transaction is caught by run_sub):
		 * the savepoint is only there to undo a statement that hit a
		 * locked row. */
		if (store_run(ex->st, s, r->params, r->nparams, &res) == 0 && (res.resp.changes > 0 || s->is_ddl)) {
			ex->batch_wrote = 1;
			ex->n_commits++;
		}
		goto out;
	}
	sqlite3 *db = store_db(ex->st);
	sqlite3_session *sess = NULL;
	if (internal_exec(ex, "SAVEPOINT req") != 0) {
		store_result_error(&res, "58030", "cannot open a savepoint");
		goto out;
	}
	if (sqlite3session_create(db, "main", &sess) != SQLITE_OK || sqlite3session_attach(sess, NULL) != SQLITE_OK) {
		store_result_error(&res, "53200", "cannot record changes");
		goto rollback;
	}
	if (store_run(ex->st, s, r->params, r->nparams, &res) != 0)
		goto rollback;
	if (sess) {
		int n = 0;
		void *cs = NULL;
		if (sqlite3session_changeset(sess, &n, &cs) != SQLITE_OK) {
			store_result_error(&res, "53200", "cannot record changes");
			goto rollback;
		}
		lock_walk w = {.ex = ex, .h = NULL};
		locks_each_changeset_key(cs, n, lock_one, &w);
		sqlite3_free(cs);
		if (w.oom) {
			store_result_error(&res, "53200", "out of memory taking row locks");
			goto rollback;
		}
		if (w.conflict) {
			/* A transaction holds one of these rows: undo, wait, run again. */
			sqlite3session_delete(sess);
			internal_exec(ex, "ROLLBACK TO req");
			internal_exec(ex, "RELEASE req");
			store_result_free(&res);
			park(ex, req, w.conflict);
			return PARKED;
		}
		sqlite3session_delete(sess);
		sess = NULL;
	}
	internal_exec(ex, "RELEASE req");
	if (res.resp.changes > 0 || s->is_ddl) {
		ex->batch_wrote = 1;
		ex->n_commits++;
	}
	goto out;
rollback:
	if (sess)
		sqlite3session_delete(sess);
	internal_exec(ex, "ROLLBACK TO req");
	internal_exec(ex, "RELEASE req");
out:
	answer(req, &res);
	store_result_free(&res);
	return DONE;
}

/* A statement inside transaction t: run it on top of t's workspace inside a
 * savepoint that is always rolled back, keep the resulting changeset. */
static int delete_prepared(shard_executor *ex, uint64_t id);

static int do_exec_txn(shard_executor *ex, shard_req *req, shard_txn *t)
{
	wire_request *r = &req->msg.req;
	store_result res;
	store_result_init(&res);
	if (t->pstate == TXN_PREPARED && t->early && !t->parked) {
		/* The transaction went on after its early prepare: it is active
		 * again.  The prepare record goes in this batch; if a crash comes
		 * first, the record names a decider that never decided, so recovery
		 * aborts it, as the crash aborted the transaction anyway. */
		if (delete_prepared(ex, t->id) != 0) {
			store_result_error(&res, "58030", "cannot clear the prepare log: %s",
					   sqlite3_errmsg(store_db(ex->st)));
			goto out;
		}
		touch(ex, t);
		t->pstate = TXN_ACTIVE;
		t->early = 0;
		if (t->conn_id == 0)  /* recovered after a restart: it had none */
			t->conn_id = req->conn_id;
		ex->batch_wrote = 1;
	}
	if (t->pstate != TXN_ACTIVE) {
		store_result_error(&res, "25000", "transaction %" PRIu64 " is prepared; no more statements", t->id);
		goto out;
	}
	if (t->parked && t->parked != req) {
		store_result_error(&res, "25000", "transaction %" PRIu64 " already has a statement waiting", t->id);
		goto out;
	}
	store_stmt *s = store_prepare(ex->st, r->sql, r->sql_len, &res);
	if (!s)
		goto out;
	if (s->is_ddl) {
		store_result_error(&res, "0A000", "DDL inside a transaction is not supported");
		goto out;
	}
	if (s->writes_no_pk) {
		store_result_error(&res, "0A000", "writing a table without a PRIMARY KEY inside a transaction is not supported");
		goto out;
	}
	int writes = !sqlite3_stmt_readonly(s->stmt);
	if (!writes && !t->pws) {
		store_run(ex->st, s, r->params, r->nparams, &res);
		goto out;
	}
	sqlite3 *db = store_db(ex->st);
	sqlite3_session *sess = NULL;
	void *cs = NULL;
	int n = 0;
	if (internal_exec(ex, "SAVEPOINT ws") != 0) {
		store_result_error(&res, "58030", "cannot open a savepoint");
		goto out;
	}
	if (writes && (sqlite3session_create(db, "main", &sess) != SQLITE_OK ||
		       sqlite3session_attach(sess, NULL) != SQLITE_OK)) {
		store_result_error(&res, "53200", "cannot record changes");
		goto undo;
	}
	if (apply_ws(ex, t->pws, t->pwslen, &res) != 0)
		goto undo;
	if (store_run(ex->st, s, r->params, r->nparams, &res) != 0)
		goto undo;
	if (sess && sqlite3session_changeset(sess, &n, &cs) != SQLITE_OK) {
		store_result_error(&res, "53200", "cannot record changes");
		cs = NULL;
	}
undo:
	if (sess)
		sqlite3session_delete(sess);
	internal_exec(ex, "ROLLBACK TO ws");
	internal_exec(ex, "RELEASE ws");
	if (store_result_failed(&res) || !writes) {
		sqlite3_free(cs);
		goto out;
	}
	lock_walk w = {.ex = ex, .h = &t->locks};
	locks_each_changeset_key(cs, n, lock_one, &w);
	if (w.oom) {
		sqlite3_free(cs);
		store_result_error(&res, "53200", "out of memory taking row locks");
		goto out;
	}
	if (w.conflict) {
		if (w.result == LOCK_WOUND) {
			/* wound-wait: roll the younger holder back, unless it is
			 * prepared (then it finishes soon and we wait for it); not
			 * at once but once it held us up wound_delay_ms (sweep) */
			shard_txn *o = txn_of(w.conflict->owner);
			int active = o->pstate == TXN_ACTIVE && o->state == TXN_ACTIVE;
			if (active || (o->pstate == TXN_PREPARED && o->early)) {
				uint64_t now = now_ms();
				if (req->wound_holder != o->id) {
					req->wound_holder = o->id;
					req->wound_at_ms = now + ex->cfg.wound_delay_ms;
					req->wound_due = 1;
				}
				if (now >= req->wound_at_ms) {
					req->wound_due = 0;
					if (active) {
						wound(ex, t->id, o);
						touch(ex, o);
						o->pstate = TXN_REMOVED;
					} else {
						/* prepared early, so possibly still
						 * waiting for us on another shard: only
						 * the router can wound it (if this
						 * interim answer is lost, the lock
						 * timeout ends the wait) */
						send_interim(ex, req, WIRE_WAITING, (int64_t)o->id);
					}
				}
			}
		}
		sqlite3_free(cs);
		store_result_free(&res);
		t->parked = req;
		park(ex, req, w.conflict);
		return PARKED;
	}
	if (n == 0) {
		sqlite3_free(cs);
		cs = NULL;
	}
	set_pws(t, cs, n);
	touch(ex, t);
out:
	t->active_ms = now_ms();
	res.resp.waited = req->waited != 0;
	answer(req, &res);
	store_result_free(&res);
	return DONE;
}

/* ---- saga steps (sagastep.h) ------------------------------------------------------------ */

/* Run one statement inside savepoint "step" with its changes recorded.
 * DONE with the savepoint open and cs/n set (the caller releases it), or
 * DONE with res failed and the savepoint gone, or PARKED (a transaction
 * holds one of the rows: run again once it is released). */
static int run_recorded(shard_executor *ex, shard_req *req, const char *sql, uint32_t len, const wire_value *params,
			uint32_t nparams, bool want_cs, store_result *res, void **cs, int *n)
{
	*cs = NULL;
	*n = 0;
	store_stmt *s = store_prepare(ex->st, sql, len, res);
	if (!s)
		return DONE;
	if (s->is_ddl) {
		store_result_error(res, "0A000", "DDL cannot be a saga step");
		return DONE;
	}
	sqlite3 *db = store_db(ex->st);
	sqlite3_session *sess = NULL;
	if (internal_exec(ex, "SAVEPOINT step") != 0) {
		store_result_error(res, "58030", "cannot open a savepoint");
		return DONE;
	}
	/* the changes are needed for a derived compensation, and to see
	 * whether a 2PC transaction holds one of the rows */
	if (!want_cs && ex->locks.nheld == 0) {
		if (store_run(ex->st, s, params, nparams, res) != 0)
			goto undo;
		return DONE;
	}
	if (sqlite3session_create(db, "main", &sess) != SQLITE_OK || sqlite3session_attach(sess, NULL) != SQLITE_OK) {
		store_result_error(res, "53200", "cannot record changes");
		goto undo;
	}
	if (store_run(ex->st, s, params, nparams, res) != 0)
		goto undo;
	if (sqlite3session_changeset(sess, n, cs) != SQLITE_OK) {
		store_result_error(res, "53200", "cannot record changes");
		*cs = NULL;
		goto undo;
	}
	sqlite3session_delete(sess);
	sess = NULL;
	if (ex->locks.nheld > 0 && *n > 0) {
		lock_walk w = {.ex = ex, .h = NULL};
		locks_each_changeset_key(*cs, *n, lock_one, &w);
		if (w.oom) {
			store_result_error(res, "53200", "out of memory taking row locks");
			goto undo;
		}
		if (w.conflict) {
			sqlite3_free(*cs);
			*cs = NULL;
			internal_exec(ex, "ROLLBACK TO step");
			internal_exec(ex, "RELEASE step");
			store_result_free(res);
			store_result_init(res);
			park(ex, req, w.conflict);
			return PARKED;
		}
	}
	return DONE;
undo:
	if (sess)
		sqlite3session_delete(sess);
	sqlite3_free(*cs);
	*cs = NULL;
	*n = 0;
	internal_exec(ex, "ROLLBACK TO step");
	internal_exec(ex, "RELEASE step");
	return DONE;
}

static void maybe_purge(shard_executor *ex)
{
	uint64_t now = now_ms();
	if (now - ex->last_purge_ms < 5000)
		return;
	ex->last_purge_ms = now;
	if (sagastep_purge(ex->st) > 0)
		ex->batch_wrote = 1;
}

/* The saga committed: its steps here become final.  0, or -1 with req
 * answered. */
static int end_saga(shard_executor *ex, shard_req *req, uint64_t id)
{
	if (sagastep_end(ex->st, id) != 0) {
		answer_error(req, "58030", "ending saga %" PRIu64 ": %s", id, sqlite3_errmsg(store_db(ex->st)));
		return -1;
	}
	if (sqlite3_changes(store_db(ex->st)) > 0)
		ex->batch_wrote = 1;
	return 0;
}

/* SagaStep: run the step once; a step id seen before answers what it did. */
static int do_saga_step(shard_executor *ex, shard_req *req)
{
	wire_request *r = &req->msg.req;
	FAILPOINT("shard.saga.step");
	/* sagas that committed, their SagaEnd riding along (wire.fbs) */
	if (r->nended)
		maybe_purge(ex);
	for (uint32_t i = 0; i < r->nended; i++)
		if (end_saga(ex, req, r->ended[i]) != 0)
			return DONE;
	sagastep_row row;
	if (sagastep_get(ex->st, r->txn, r->step, &row) != 0) {
		answer_error(req, "58030", "reading the saga record: %s", sqlite3_errmsg(store_db(ex->st)));
		return DONE;
	}
	if (row.state != SS_NONE) {
		sagastep_state st = row.state;
		int64_t changes = row.changes;
		sagastep_row_free(&row);
		ex->n_saga_dups++;
		if (st == SS_VOID) {
			answer_error(req, "40001", "saga %" PRIu64 " step %u was compensated before it ran; not running it",
				     r->txn, r->step);
			return DONE;
		}
		store_result res;
		store_result_init(&res);
		res.resp.changes = changes;   /* already applied: same outcome, no effect */
		answer(req, &res);
		store_result_free(&res);
		return DONE;
	}
	store_result res;
	store_result_init(&res);
	void *cs = NULL;
	int n = 0;
	if (run_recorded(ex, req, r->sql, r->sql_len, r->params, r->nparams, r->comp == NULL, &res, &cs, &n) == PARKED)
		return PARKED;
	if (!store_result_failed(&res)) {
		/* an explicit compensation needs no recorded changes */
		if (sagastep_record(ex->st, r, r->comp ? NULL : cs, r->comp ? 0 : n, res.resp.changes) != 0) {
			store_result_free(&res);
			store_result_init(&res);
			store_result_error(&res, "58030", "recording the saga step: %s", sqlite3_errmsg(store_db(ex->st)));
			internal_exec(ex, "ROLLBACK TO step");
		} else {
			ex->batch_wrote = 1;
			ex->n_saga_steps++;
		}
		internal_exec(ex, "RELEASE step");
	}
	sqlite3_free(cs);
	answer(req, &res);
	store_result_free(&res);
	return DONE;
}

static int mark_step(shard_executor *ex, shard_req *req, sagastep_state st, const char *message)
{
	wire_request *r = &req->msg.req;
	if (sagastep_set(ex->st, r->txn, r->step, st, message) != 0) {
		answer_error(req, "58030", "recording the compensation: %s", sqlite3_errmsg(store_db(ex->st)));
		return -1;
	}
	ex->batch_wrote = 1;
	return 0;
}

/* SagaUndo: compensate a step once (see sagastep.h for the states). */
static int do_saga_undo(shard_executor *ex, shard_req *req)
{
	wire_request *r = &req->msg.req;
	FAILPOINT("shard.saga.undo");
	maybe_purge(ex);
	sagastep_row row;
	if (sagastep_get(ex->st, r->txn, r->step, &row) != 0) {
		answer_error(req, "58030", "reading the saga record: %s", sqlite3_errmsg(store_db(ex->st)));
		return DONE;
	}
	if (row.state == SS_COMPENSATED || row.state == SS_VOID) {
		sagastep_row_free(&row);
		answer_status(req, WIRE_OK);
		return DONE;
	}
	if (row.state == SS_COMMITTED) {
		sagastep_row_free(&row);
		answer_error(req, "25000", "saga %" PRIu64 " committed; its step %u cannot be compensated", r->txn, r->step);
		return DONE;
	}
	if (row.state == SS_NONE) {
		/* never ran here: make sure a late copy never will */
		if (mark_step(ex, req, SS_VOID, NULL) == 0)
			answer_status(req, WIRE_OK);
		return DONE;
	}
	ex->n_saga_undos++;
	if (r->mode == WIRE_UNDO_ACCEPT) {
		sagastep_row_free(&row);
		if (mark_step(ex, req, SS_COMPENSATED, "accepted by an operator: rows left as they are") == 0)
			answer_status(req, WIRE_OK);
		return DONE;
	}
	store_result res;
	store_result_init(&res);
	char conflict[1024] = "";
	int rc = 0;
	if (row.has_comp) {
		/* explicit compensation: run it like a step */
		wire_message m;
		char err[256];
		memset(&m, 0, sizeof m);
		int bad = row.comp && (wire_decode(row.comp, row.complen, &m, err, sizeof err) != 0 ||
				       m.kind != WIRE_MSG_REQUEST);
		if (bad) {
			store_result_error(&res, "XX001", "saga %" PRIu64 " step %u: stored compensation unreadable",
					   r->txn, r->step);
			rc = -1;
		} else if (!row.comp || !m.req.sql || m.req.sql_len == 0) {
			/* an empty compensation: nothing to do */
			rc = internal_exec(ex, "SAVEPOINT step") != 0 ? -1 : 0;
			if (rc < 0)
				store_result_error(&res, "58030", "cannot open a savepoint");
		} else {
			void *cs = NULL;
			int n = 0;
			if (run_recorded(ex, req, m.req.sql, m.req.sql_len, m.req.params, m.req.nparams, false, &res, &cs,
					 &n) == PARKED) {
				wire_message_free(&m);
				sagastep_row_free(&row);
				return PARKED;
			}
			sqlite3_free(cs);
			rc = store_result_failed(&res) ? 2 : 0;
			if (rc == 2)
				snprintf(conflict, sizeof conflict, "the compensation failed: %s",
					 res.resp.message ? res.resp.message : "error");
		}
		wire_message_free(&m);
	} else {
		void *inv = NULL;
		int invlen = 0;
		if (row.cslen > 0 && sqlite3changeset_invert(row.cslen, row.changeset, &invlen, &inv) != SQLITE_OK) {
			store_result_error(&res, "53200", "cannot invert the step's changes");
			rc = -1;
		}
		if (rc == 0 && ex->locks.nheld > 0 && invlen > 0) {
			lock_walk w = {.ex = ex, .h = NULL};
			locks_each_changeset_key(inv, invlen, lock_one, &w);
			if (w.conflict) {
				sqlite3_free(inv);
				sagastep_row_free(&row);
				store_result_free(&res);
				park(ex, req, w.conflict);
				return PARKED;
			}
		}
		if (rc == 0 && internal_exec(ex, "SAVEPOINT step") != 0) {
			store_result_error(&res, "58030", "cannot open a savepoint");
			rc = -1;
		}
		if (rc == 0) {
			rc = sagastep_apply_inverse(ex->st, inv, invlen, r->mode, conflict, sizeof conflict, &res);
			if (rc < 0) {
				internal_exec(ex, "ROLLBACK TO step");
				internal_exec(ex, "RELEASE step");
			}
		}
		sqlite3_free(inv);
	}
	sagastep_row_free(&row);
	if (rc < 0) {
		answer(req, &res);
		store_result_free(&res);
		return DONE;
	}
	if (rc > 0) {
		/* rows changed since the step (or the compensation failed): undo
		 * nothing, stop, and say which rows */
		if (rc == 1) {  /* a failed explicit compensation has no savepoint left */
			internal_exec(ex, "ROLLBACK TO step");
			internal_exec(ex, "RELEASE step");
		}
		store_result_free(&res);
		char msg[1200];
		snprintf(msg, sizeof msg, "%s", conflict[0] ? conflict : "rows changed since the step");
		if (mark_step(ex, req, SS_ATTENTION, msg) == 0)
			answer_error(req, "SL002", "saga %" PRIu64 " step %u needs attention: %s", r->txn, r->step, msg);
		return DONE;
	}
	store_result_free(&res);
	const char *note = r->mode == WIRE_UNDO_OVERWRITE && conflict[0] ? conflict : NULL;
	if (mark_step(ex, req, SS_COMPENSATED, note) != 0) {
		internal_exec(ex, "ROLLBACK TO step");
		internal_exec(ex, "RELEASE step");
		return DONE;
	}
	internal_exec(ex, "RELEASE step");
	answer_status(req, WIRE_OK);
	return DONE;
}

/* SagaEnd: saga txn, or (txn 0) every saga whose id is an Int in params. */
static int do_saga_end(shard_executor *ex, shard_req *req)
{
	wire_request *r = &req->msg.req;
	maybe_purge(ex);
	for (uint32_t i = 0; i < (r->txn ? 1 : r->nparams); i++) {
		if (!r->txn && r->params[i].type != WIRE_INT) {
			answer_error(req, "58030", "ending sagas: the ids must be Ints");
			return DONE;
		}
		if (end_saga(ex, req, r->txn ? r->txn : (uint64_t)r->params[i].i) != 0)
			return DONE;
	}
	answer_status(req, WIRE_OK);
	return DONE;
}

/* Does any table the changeset touches have a secondary UNIQUE index? */
static int needs_unique_check(shard_executor *ex, void *cs, int len)
{
	sqlite3_changeset_iter *it = NULL;
	if (sqlite3changeset_start(&it, len, cs) != SQLITE_OK)
		return 1;
	int need = 0;
	while (!need && sqlite3changeset_next(it) == SQLITE_ROW) {
		const char *tab;
		int ncol, op, indirect;
		if (sqlite3changeset_op(it, &tab, &ncol, &op, &indirect) != SQLITE_OK) {
			need = 1;
			break;
		}
		need = store_has_secondary_unique(ex->st, tab);  /* cached */
	}
	sqlite3changeset_finalize(it);
	return need;
}

static int do_prepare(shard_executor *ex, shard_req *req, shard_txn *t)
{
	store_result res;
	store_result_init(&res);
	FAILPOINT("shard-before-prepare");
	if (t->pstate == TXN_PREPARED) {
		/* Prepare again: idempotent, except that it names the decider of
		 * now (a transaction that went on to other shards after its early
		 * prepare is decided elsewhere) and makes the prepare final. */
		if (t->decider != req->msg.req.decider || t->early != (int)req->msg.req.early) {
			sqlite3_stmt *q =
				store_internal(ex->st, "UPDATE _sl_prepared SET decider = ?2, early = ?3 WHERE txn = ?1");
			int rc = SQLITE_ERROR;
			if (q) {
				sqlite3_bind_int64(q, 1, (sqlite3_int64)t->id);
				sqlite3_bind_int64(q, 2, (sqlite3_int64)req->msg.req.decider);
				sqlite3_bind_int(q, 3, req->msg.req.early ? 1 : 0);
				rc = sqlite3_step(q);
				sqlite3_reset(q);
			}
			if (rc != SQLITE_DONE) {
				store_result_error(&res, "58030", "cannot log the prepared transaction: %s",
						   sqlite3_errmsg(store_db(ex->st)));
				goto out;
			}
			t->decider = req->msg.req.decider;
			ex->batch_wrote = 1;
			ex->batch_prepared = 1;
		}
		t->early = req->msg.req.early;
		goto out;
	}
	if (t->parked) {
		store_result_error(&res, "25000", "transaction %" PRIu64 " has a statement waiting", t->id);
		goto out;
	}
	touch(ex, t);
	if (!t->pws) {
		res.resp.status = WIRE_READ_ONLY;
		if (!req->msg.req.early)
			t->pstate = TXN_REMOVED;  /* an early one runs on: more may come */
		goto out;
	}
	/* Check the workspace still applies, so that COMMIT PREPARED cannot fail
	 * later.  Its rows are locked, so only a UNIQUE index besides the
	 * primary key (a row committed since with the same value) can make it
	 * fail: without one the check is skipped. */
	int bad = 0;
	if (needs_unique_check(ex, t->pws, t->pwslen)) {
		if (internal_exec(ex, "SAVEPOINT prep") != 0) {
			store_result_error(&res, "58030", "cannot open a savepoint");
			goto out;
		}
		bad = apply_ws(ex, t->pws, t->pwslen, &res);
		internal_exec(ex, "ROLLBACK TO prep");
		internal_exec(ex, "RELEASE prep");
	}
	if (!bad) {
		sqlite3_stmt *q = store_internal(ex->st,
			"INSERT INTO _sl_prepared(txn, ts, changeset, prepared_at, decider, early)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
		int rc = SQLITE_ERROR;
		if (q) {
			sqlite3_bind_int64(q, 1, (sqlite3_int64)t->id);
			sqlite3_bind_int64(q, 2, (sqlite3_int64)t->locks.ts);
			sqlite3_bind_blob(q, 3, t->pws, t->pwslen, SQLITE_STATIC);
			sqlite3_bind_int64(q, 4, (sqlite3_int64)(wall_us() / 1000));
			sqlite3_bind_int64(q, 5, (sqlite3_int64)req->msg.req.decider);
			sqlite3_bind_int(q, 6, req->msg.req.early ? 1 : 0);
			rc = sqlite3_step(q);
			sqlite3_reset(q);
			sqlite3_clear_bindings(q);
		}
		if (rc != SQLITE_DONE) {
			/* one statement: a failed INSERT left nothing */
			store_result_error(&res, "58030", "cannot log the prepared transaction: %s",
					   sqlite3_errmsg(store_db(ex->st)));
			bad = 1;
		}
	}
	if (bad) {
		t->pstate = TXN_REMOVED;  /* a NO vote aborts here */
		goto out;
	}
	t->pstate = TXN_PREPARED;
	t->decider = req->msg.req.decider;
	t->early = req->msg.req.early;
	ex->batch_wrote = 1;
	ex->batch_prepared = 1;
out:
	answer(req, &res);
	store_result_free(&res);
	return DONE;
}

/* One internal statement with the txn id as ?1, run to completion.  0 or -1. */
static int txn_row_exec(shard_executor *ex, const char *sql, uint64_t id)
{
	sqlite3_stmt *q = store_internal(ex->st, sql);
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int delete_prepared(shard_executor *ex, uint64_t id)
{
	return txn_row_exec(ex, "DELETE FROM _sl_prepared WHERE txn = ?1", id);
}

/* A txn prepared naming a decider ends only by a request that says its
 * sender knows the decider's answer (Request.decider set): an operator's
 * plain COMMIT/ROLLBACK PREPARED could otherwise contradict it. */
static int decider_refuses(shard_req *req, const shard_txn *t)
{
	if (t->pstate != TXN_PREPARED || t->decider == 0 || req->msg.req.decider != 0)
		return 0;
	answer_error(req, "55000",
		     "transaction %" PRIu64 " is decided by shard %" PRIu32 ": its outcome is that shard's, "
		     "and the router applies it by itself",
		     t->id, t->decider - 1);
	return 1;
}

/* The decision record of a one-phase commit that decides a distributed
 * transaction (Request.decider): written in the commit's savepoint, so it
 * exists iff the commit does. */
static int record_decision(shard_executor *ex, uint64_t id)
{
	return txn_row_exec(ex, "INSERT OR REPLACE INTO _sl_decided(txn) VALUES (?1)", id);
}

/* COMMIT PREPARED (prepared == 1) or one-phase COMMIT (prepared == 0),
 * which may be the decision of a distributed transaction (decider). */
static int do_commit(shard_executor *ex, shard_req *req, shard_txn *t, int prepared)
{
	store_result res;
	store_result_init(&res);
	int decides = !prepared && req->msg.req.decider != 0;
	if (prepared)
		FAILPOINT("shard-before-commit-prepared");
	if (decides)
		FAILPOINT("shard-before-decide");
	if (prepared && t->pstate != TXN_PREPARED) {
		store_result_error(&res, "55000", "transaction %" PRIu64 " is not prepared", t->id);
		goto out;
	}
	if (prepared && decider_refuses(req, t)) {
		store_result_free(&res);
		return DONE;
	}
	if (!prepared && t->pstate != TXN_ACTIVE) {
		store_result_error(&res, "55000", "transaction %" PRIu64 " is prepared: use COMMIT PREPARED", t->id);
		goto out;
	}
	if (t->parked) {
		store_result_error(&res, "25000", "transaction %" PRIu64 " has a statement waiting", t->id);
		goto out;
	}
	touch(ex, t);
	if (internal_exec(ex, "SAVEPOINT cmt") != 0) {
		store_result_error(&res, "58030", "cannot open a savepoint");
		goto out;
	}
	int bad = apply_ws(ex, t->pws, t->pwslen, &res);
	if (!bad && prepared && delete_prepared(ex, t->id) != 0) {
		store_result_error(&res, "58030", "cannot clear the prepare log: %s",
				   sqlite3_errmsg(store_db(ex->st)));
		bad = 1;
	}
	if (!bad && decides && record_decision(ex, t->id) != 0) {
		store_result_error(&res, "58030", "cannot record the commit decision: %s",
				   sqlite3_errmsg(store_db(ex->st)));
		bad = 1;
	}
	if (bad) {
		internal_exec(ex, "ROLLBACK TO cmt");
		internal_exec(ex, "RELEASE cmt");
		if (prepared)
			fprintf(stderr, "shard: COMMIT PREPARED of %" PRIu64 " failed: %s\n", t->id, res.message);
		else
			t->pstate = TXN_REMOVED;  /* a failed one-phase commit aborts */
		goto out;
	}
	internal_exec(ex, "RELEASE cmt");
	t->pstate = TXN_REMOVED;
	ex->batch_wrote = 1;
	ex->batch_committed_prepared |= prepared;
	ex->batch_decided |= decides;
	ex->n_commits++;
out:
	answer(req, &res);
	store_result_free(&res);
	return DONE;
}

static int do_rollback(shard_executor *ex, shard_req *req, shard_txn *t, shard_req **done)
{
	if (decider_refuses(req, t))
		return DONE;
	touch(ex, t);
	if (t->pstate == TXN_PREPARED) {
		if (delete_prepared(ex, t->id) != 0) {
			answer_error(req, "58030", "cannot clear the prepare log: %s",
				     sqlite3_errmsg(store_db(ex->st)));
			return DONE;
		}
		ex->batch_wrote = 1;
	}
	t->pstate = TXN_REMOVED;
	answer_status(req, WIRE_OK);
	return DONE;
}

/* Resolve: did this shard's decision commit txn?  A txn still active here
 * is rolled back first, so that a late decision finds nothing to commit and
 * the answer NotFound stays true. */
static int do_resolve(shard_executor *ex, shard_req *req)
{
	uint64_t id = req->msg.req.txn;
	FAILPOINT("shard-before-resolve");
	shard_txn *t = txn_get(ex, id);
	if (t && t->pstate == TXN_PREPARED) {
		answer_error(req, "55000", "transaction %" PRIu64 " is prepared here: another shard decides it", id);
		return DONE;
	}
	if (t) {
		if (t->parked) {
			answer_error(req, "55006", "transaction %" PRIu64 " has a statement waiting; ask again", id);
			return DONE;
		}
		touch(ex, t);
		t->pstate = TXN_REMOVED;
		fprintf(stderr, "shard: transaction %" PRIu64 " rolled back: its outcome was asked before its decision\n",
			id);
		answer_status(req, WIRE_NOT_FOUND);
		return DONE;
	}
	sqlite3_stmt *q = store_internal(ex->st, "SELECT 1 FROM _sl_decided WHERE txn = ?1");
	if (!q) {
		answer_error(req, "58030", "cannot read the decision records: %s", sqlite3_errmsg(store_db(ex->st)));
		return DONE;
	}
	sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		answer_error(req, "58030", "cannot read the decision records: %s", sqlite3_errmsg(store_db(ex->st)));
		return DONE;
	}
	answer_status(req, rc == SQLITE_ROW ? WIRE_OK : WIRE_NOT_FOUND);
	return DONE;
}

/* Forget: drop the decision records of r->ended (their transactions are
 * applied everywhere). */
static int do_forget(shard_executor *ex, shard_req *req)
{
	const wire_request *r = &req->msg.req;
	int rc = 0;
	for (uint32_t i = 0; rc == 0 && i < r->nended; i++)
		rc = txn_row_exec(ex, "DELETE FROM _sl_decided WHERE txn = ?1", r->ended[i]);
	if (rc != 0) {
		answer_error(req, "58030", "cannot drop decision records: %s", sqlite3_errmsg(store_db(ex->st)));
		return DONE;
	}
	ex->batch_wrote = 1;
	answer_status(req, WIRE_OK);
	return DONE;
}

/* Status rows: every transaction here, then (unless sql is "transactions")
 * the decision records (state "decided", at most DECIDED_LISTED of them). */
#define DECIDED_LISTED 10000

static int do_status(shard_executor *ex, shard_req *req)
{
	store_result res;
	store_result_init(&res);
	wire_request *r = &req->msg.req;
	char a[7][48];
	const char *cells[7];
	for (int i = 0; i < 7; i++)
		cells[i] = a[i];
	if (r->sql && strcmp(r->sql, "sagas") == 0) {
		if (sagastep_list(ex->st, &res) != 0) {
			store_result_free(&res);
			store_result_init(&res);
			store_result_error(&res, "58030", "listing saga steps: %s", sqlite3_errmsg(store_db(ex->st)));
		}
	} else if (r->sql && strcmp(r->sql, "stats") == 0) {
		static const char *cols[] = {"name", "value"};
		store_result_columns(&res, 2, cols);
		struct { const char *n; uint64_t v; } st[] = {
			{"batches", ex->n_batches},       {"fsync_batches", ex->n_fsync_batches},
			{"requests", ex->n_requests},     {"commits", ex->n_commits},
			{"lock_waits", ex->n_lock_waits}, {"wounded", ex->n_wounds},
			{"transactions", ex->txns.count}, {"locks_held", ex->locks.nheld},
			{"checkpoints", ex->n_checkpoints},
			{"pumped_batches", ex->n_pumped},  {"pump_busy", ex->n_pump_busy},
			{"pump_heavy", ex->n_pump_heavy},
			{"map_epoch", ex->map_epoch},
			{"saga_steps", ex->n_saga_steps}, {"saga_duplicates", ex->n_saga_dups},
			{"saga_compensations", ex->n_saga_undos},
		};
		for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
			snprintf(a[0], sizeof a[0], "%s", st[i].n);
			snprintf(a[1], sizeof a[1], "%" PRIu64, st[i].v);
			store_result_row_text(&res, cells);
		}
	} else {
		static const char *cols[] = {"txn", "state", "ts", "age_ms", "locks", "waiting", "decider"};
		store_result_columns(&res, 7, cols);
		uint64_t now = now_ms();
		size_t it;
		for (hmap_entry *e = hmap_first(&ex->txns, &it); e; e = hmap_next(&ex->txns, e, &it)) {
			shard_txn *t = e->value;
			snprintf(a[0], sizeof a[0], "%" PRIu64, t->id);
			snprintf(a[1], sizeof a[1], "%s", t->state == TXN_PREPARED ? "prepared" : "active");
			snprintf(a[2], sizeof a[2], "%" PRIu64, t->locks.ts);
			snprintf(a[3], sizeof a[3], "%" PRIu64, now - t->created_ms);
			snprintf(a[4], sizeof a[4], "%zu", t->locks.nheld);
			snprintf(a[5], sizeof a[5], "%s", t->parked ? "yes" : "no");
			if (t->state == TXN_PREPARED && t->decider)
				snprintf(a[6], sizeof a[6], "%" PRIu32, t->decider - 1);
			else
				a[6][0] = 0;
			store_result_row_text(&res, cells);
		}
		int with_decided = !(r->sql && strcmp(r->sql, "transactions") == 0);
		sqlite3_stmt *q = with_decided ? store_internal(ex->st, "SELECT txn FROM _sl_decided") : NULL;
		int n = 0;
		while (q && n++ < DECIDED_LISTED && sqlite3_step(q) == SQLITE_ROW) {
			snprintf(a[0], sizeof a[0], "%" PRIu64, (uint64_t)sqlite3_column_int64(q, 0));
			snprintf(a[1], sizeof a[1], "decided");
			a[2][0] = a[3][0] = a[4][0] = a[5][0] = a[6][0] = 0;
			store_result_row_text(&res, cells);
		}
		if (q)
			sqlite3_reset(q);
	}
	answer(req, &res);
	store_result_free(&res);
	return DONE;
}

/* The router's shard map: this shard owns r->buckets as of r->epoch.
 * Stored in _sl_map/_sl_meta in the batch, then published to the atomics. */
static int do_assign(shard_executor *ex, shard_req *req)
{
	wire_request *r = &req->msg.req;
	for (uint32_t i = 0; i < r->nbuckets; i++)
		if (r->buckets[i] >= 4096) {
			answer_error(req, "22023", "bucket %u out of range 0..4095", r->buckets[i]);
			return DONE;
		}
	char err[256];
	int bad = internal_exec(ex, "SAVEPOINT assign") != 0 ||
		  store_exec(ex->st, "DELETE FROM _sl_map", err, sizeof err) != 0;
	sqlite3_stmt *ins = bad ? NULL : store_internal(ex->st, "INSERT INTO _sl_map(bucket) VALUES (?1)");
	for (uint32_t i = 0; !bad && i < r->nbuckets; i++) {
		sqlite3_bind_int64(ins, 1, r->buckets[i]);
		bad = sqlite3_step(ins) != SQLITE_DONE;
		sqlite3_reset(ins);
	}
	sqlite3_stmt *ep = bad ? NULL : store_internal(ex->st,
		"INSERT OR REPLACE INTO _sl_meta(key, value) VALUES ('map_epoch', ?1)");
	if (ep) {
		sqlite3_bind_int64(ep, 1, (sqlite3_int64)r->epoch);
		bad = sqlite3_step(ep) != SQLITE_DONE;
		sqlite3_reset(ep);
	} else {
		bad = 1;
	}
	if (bad) {
		internal_exec(ex, "ROLLBACK TO assign");
		internal_exec(ex, "RELEASE assign");
		answer_error(req, "58030", "cannot store the shard map: %s", sqlite3_errmsg(store_db(ex->st)));
		return DONE;
	}
	internal_exec(ex, "RELEASE assign");
	ex->batch_wrote = 1;
	uint64_t words[4096 / 64] = {0};
	for (uint32_t i = 0; i < r->nbuckets; i++)
		words[r->buckets[i] / 64] |= (uint64_t)1 << (r->buckets[i] % 64);
	for (size_t w = 0; w < 4096 / 64; w++)
		ex->owned[w] = words[w];
	ex->map_epoch = r->epoch ? r->epoch : 1;
	answer_status(req, WIRE_OK);
	return DONE;
}

long shard_executor_foreign_bucket(shard_executor *ex, const uint32_t *buckets, uint32_t n, uint64_t *epoch)
{
	*epoch = ex->map_epoch;
	if (*epoch == 0)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t b = buckets[i];
		if (b >= 4096 || !(ex->owned[b / 64] & ((uint64_t)1 << (b % 64))))
			return (long)b;
	}
	return -1;
}

/* Connection gone: its unprepared transactions are rolled back. */
static void conn_closed(shard_executor *ex, uint64_t conn)
{
	size_t it;
	for (hmap_entry *e = hmap_first(&ex->txns, &it); e; e = hmap_next(&ex->txns, e, &it)) {
		shard_txn *t = e->value;
		if (t->conn_id == conn && t->pstate == TXN_ACTIVE) {
			touch(ex, t);
			t->pstate = TXN_REMOVED;
		}
	}
}

/* ---- light requests: run by the loop thread --------------------------------------------- */

/* A statement of a transaction that took more CPU than this on the loop
 * thread is left to the writer thread for a while (slow_sql, forgotten
 * every PUMP_FORGET_MS: a first run on a cold cache may be slow once). */
#define PUMP_SLOW_US 20000
#define PUMP_FORGET_MS 10000
/* A PREPARE or COMMIT of a workspace larger than this goes to the writer. */
#define PUMP_MAX_WS (64 * 1024)

static uint64_t sql_hash(const char *sql, uint32_t len)
{
	uint64_t h = 1469598103934665603ull;  /* FNV-1a */
	for (uint32_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)sql[i]) * 1099511628211ull;
	return h | 1;  /* never 0, the empty slot */
}

static uint64_t *slow_slot(shard_executor *ex, uint64_t h)
{
	return &ex->slow_sql[h % (sizeof ex->slow_sql / sizeof ex->slow_sql[0])];
}

static void remember_slow(shard_executor *ex, const char *sql, uint32_t len)
{
	uint64_t now = now_ms();
	if (now - ex->slow_since_ms > PUMP_FORGET_MS) {
		memset(ex->slow_sql, 0, sizeof ex->slow_sql);
		ex->slow_since_ms = now;
	}
	uint64_t h = sql_hash(sql, len);
	*slow_slot(ex, h) = h;
}

/* run_mu held.  Cheap and bounded enough to run on the loop thread: a
 * statement of a transaction or a saga step not known to be slow, BEGIN,
 * the end of a transaction with a small workspace, a saga's undo or end,
 * Resolve, Forget, Status, a closed connection.  Autocommit statements (any
 * size), Assign and shutdown stay on the writer thread. */
static int light(shard_executor *ex, const shard_req *req)
{
	if (req->kind == REQ_CONN_CLOSED)
		return 1;
	if (req->kind != REQ_WIRE)
		return 0;
	const wire_request *r = &req->msg.req;
	switch (r->op) {
	case WIRE_OP_EXEC:
	case WIRE_OP_SAGA_STEP: {
		if (r->op == WIRE_OP_EXEC && r->txn == 0)
			return 0;
		if (now_ms() - ex->slow_since_ms > PUMP_FORGET_MS)
			return 1;  /* the table is stale: forgotten at the next entry */
		uint64_t h = sql_hash(r->sql, r->sql_len);
		return *slow_slot(ex, h) != h;
	}
	case WIRE_OP_PREPARE:
	case WIRE_OP_COMMIT:
	case WIRE_OP_COMMIT_PREPARED: {
		const shard_txn *t = hmap_get(&ex->txns, &r->txn, sizeof r->txn);
		return !t || (t->pws ? t->pwslen : t->wslen) <= PUMP_MAX_WS;
	}
	case WIRE_OP_BEGIN:
	case WIRE_OP_ROLLBACK:
	case WIRE_OP_ROLLBACK_PREPARED:
	case WIRE_OP_SAGA_UNDO:
	case WIRE_OP_SAGA_END:
	case WIRE_OP_RESOLVE:
	case WIRE_OP_FORGET:
	case WIRE_OP_STATUS:
	case WIRE_OP_PING:
		return 1;
	default:
		return 0;
	}
}

static int handle_op(shard_executor *ex, shard_req *req, shard_req **done)
{
	wire_request *r = &req->msg.req;
	ex->n_requests++;
	if (r->op == WIRE_OP_EXEC && r->txn == 0)
		return do_exec_autocommit(ex, req);
	if (r->op == WIRE_OP_STATUS)
		return do_status(ex, req);
	if (r->op == WIRE_OP_PING) {
		answer_status(req, WIRE_OK);
		return DONE;
	}
	if (r->op == WIRE_OP_ASSIGN)
		return do_assign(ex, req);
	if (r->op == WIRE_OP_FORGET)
		return do_forget(ex, req);
	if (r->op == WIRE_OP_RESOLVE) {
		if (r->txn == 0) {
			answer_error(req, "08P01", "Resolve needs a transaction id");
			return DONE;
		}
		return do_resolve(ex, req);
	}
	if (r->op == WIRE_OP_SAGA_STEP || r->op == WIRE_OP_SAGA_UNDO || r->op == WIRE_OP_SAGA_END) {
		if (r->txn == 0 && !(r->op == WIRE_OP_SAGA_END && r->nparams > 0)) {
			answer_error(req, "08P01", "%s needs a saga id", wire_op_name(r->op));
			return DONE;
		}
		if (r->op != WIRE_OP_SAGA_END && r->step == 0) {
			answer_error(req, "08P01", "%s needs a step number", wire_op_name(r->op));
			return DONE;
		}
		if (r->op == WIRE_OP_SAGA_STEP && !r->sql) {
			answer_error(req, "08P01", "SagaStep needs sql");
			return DONE;
		}
		return r->op == WIRE_OP_SAGA_STEP ? do_saga_step(ex, req)
		       : r->op == WIRE_OP_SAGA_UNDO ? do_saga_undo(ex, req)
						    : do_saga_end(ex, req);
	}
	if (r->txn == 0) {
		answer_error(req, "08P01", "%s needs a transaction id", wire_op_name(r->op));
		return DONE;
	}
	shard_txn *t = txn_get(ex, r->txn);
	if (!t && (r->op == WIRE_OP_BEGIN || (r->op == WIRE_OP_EXEC && r->begin))) {
		t = txn_create(ex, r->txn, r->ts, req->conn_id);
		if (!t) {
			answer_error(req, "53200", "out of memory");
			return DONE;
		}
	}
	if (!t && r->op == WIRE_OP_EXEC) {
		/* The transaction was here and is gone (wounded, idle timeout,
		 * disconnect, restart): never start a fresh one in its name, which
		 * could commit part of it. */
		answer_error(req, "40001",
			     "transaction %" PRIu64 " was rolled back on this shard "
			     "(by an older conflicting transaction, an idle timeout or a restart)",
			     r->txn);
		return DONE;
	}
	if (!t) {
		answer_status(req, WIRE_NOT_FOUND);
		return DONE;
	}
	switch (r->op) {
	case WIRE_OP_BEGIN:
		t->active_ms = now_ms();
		answer_status(req, WIRE_OK);
		return DONE;
	case WIRE_OP_EXEC:
		return do_exec_txn(ex, req, t);
	case WIRE_OP_PREPARE:
		return do_prepare(ex, req, t);
	case WIRE_OP_COMMIT_PREPARED:
		return do_commit(ex, req, t, 1);
	case WIRE_OP_COMMIT:
		return do_commit(ex, req, t, 0);
	case WIRE_OP_ROLLBACK_PREPARED:
	case WIRE_OP_ROLLBACK:
		return do_rollback(ex, req, t, done);
	default:
		answer_error(req, "08P01", "unknown operation %d", (int)r->op);
		return DONE;
	}
}

/* One request.  On the loop thread, a statement of a transaction or a saga
 * step that took more CPU than PUMP_SLOW_US is remembered as slow (CPU
 * time, not wall time: being preempted on a busy machine does not make a
 * statement slow). */
static int handle(shard_executor *ex, shard_req *req, shard_req **done)
{
	const wire_request *r = &req->msg.req;
	if (!ex->pumping || req->kind != REQ_WIRE || !r->sql ||
	    !((r->op == WIRE_OP_EXEC && r->txn != 0) || r->op == WIRE_OP_SAGA_STEP))
		return handle_op(ex, req, done);
	uint64_t t0 = cpu_us();
	int rc = handle_op(ex, req, done);
	if (cpu_us() - t0 > PUMP_SLOW_US)
		remember_slow(ex, r->sql, r->sql_len);
	return rc;
}

/* Fail every answered request of a batch that did not commit. */
static void fail_answers(shard_req *list, const char *why)
{
	for (shard_req *r = list; r; r = r->next)
		if (r->kind == REQ_WIRE)
			answer_error(r, "58030", "%s", why);
}

static void run_sub(shard_executor *ex, shard_req *batch)
{
	shard_req *done = NULL, **done_tail = &done, *wake = NULL, *extra = NULL;
	int shutdown = 0;
	ex->n_batches++;
	ex->batch_wrote = 0;
	ex->batch_prepared = ex->batch_committed_prepared = ex->batch_decided = 0;
	if (internal_exec(ex, "BEGIN") != 0) {
		for (shard_req *r = batch; r; r = r->next)
			if (r->kind == REQ_WIRE)
				answer_error(r, "58030", "cannot begin a batch");
		deliver(ex, batch);
		return;
	}
	sqlite3 *db = store_db(ex->st);
	while (batch) {
		shard_req *req = batch;
		batch = batch->next;
		req->next = NULL;
		if (req->kind == REQ_CONN_CLOSED) {
			conn_closed(ex, req->conn_id);
			shard_req_free(req);
			continue;
		}
		if (req->kind == REQ_SHUTDOWN) {
			shutdown = 1;
			shard_req_free(req);
			continue;
		}
		if (handle(ex, req, &extra) == DONE) {
			*done_tail = req;
			done_tail = &req->next;
		}
		if (sqlite3_get_autocommit(db)) {
			/* A statement (e.g. INSERT OR ROLLBACK) ended the batch's
			 * transaction: nothing of it is durable.  Fail it, start over. */
			fail_answers(done, "the batch was rolled back by a statement; retry");
			revert_effects(ex);
			deliver(ex, done);
			done = NULL;
			done_tail = &done;
			ex->batch_wrote = 0;
			if (internal_exec(ex, "BEGIN") != 0)
				break;
		}
	}
	if (!sqlite3_get_autocommit(db)) {
		if (ex->batch_wrote) {
			ex->n_fsync_batches++;
			if (internal_exec(ex, "COMMIT") != 0) {
				internal_exec(ex, "ROLLBACK");
				fail_answers(done, "the shard could not make the batch durable");
				revert_effects(ex);
				goto deliver_out;
			}
		} else {
			internal_exec(ex, "ROLLBACK");
		}
	}
	commit_effects(ex, &wake, &extra);
	/* durable, not yet answered */
	if (ex->batch_prepared)
		FAILPOINT("shard-after-prepare");
	if (ex->batch_committed_prepared)
		FAILPOINT("shard-after-commit-prepared");
	if (ex->batch_decided)
		FAILPOINT("shard-after-decide");
deliver_out:
	requeue_woken(ex, wake);
	*done_tail = extra;
	deliver(ex, done);
	if (shutdown) {
		pthread_mutex_lock(&ex->mu);
		ex->stopping = 1;
		pthread_mutex_unlock(&ex->mu);
	}
}

/* Requests that never make anything durable: a statement inside a
 * transaction (its workspace is rolled back), BEGIN, Status, Ping. */
static int durable_free(const shard_req *r)
{
	if (r->kind != REQ_WIRE)
		return 0;
	const wire_request *q = &r->msg.req;
	return (q->op == WIRE_OP_EXEC && q->txn != 0) || q->op == WIRE_OP_BEGIN || q->op == WIRE_OP_STATUS ||
	       q->op == WIRE_OP_PING;
}

/* Split the batch: requests that make nothing durable run first, in their
 * own SQLite transaction, which ends in ROLLBACK: no I/O, and their answers
 * leave at once instead of waiting for other requests' fsync.  The rest
 * follow, group-committed.  Order is kept within each transaction: a
 * statement of a transaction that already has a durable request (PREPARE,
 * COMMIT...) earlier in the batch stays behind it.  Requests of different
 * transactions are concurrent, so any order between them is a valid one
 * (the router never pipelines one session's requests). */
static void run_batch(shard_executor *ex, shard_req *batch)
{
	shard_req *front = NULL, **ftail = &front, *back = NULL, **btail = &back;
	uint64_t durable_txns[64];
	size_t ndt = 0;
	int overflow = 0;
	while (batch) {
		shard_req *r = batch;
		batch = r->next;
		r->next = NULL;
		uint64_t txn = r->kind == REQ_WIRE ? r->msg.req.txn : 0;
		int txn_durable = overflow;
		for (size_t i = 0; i < ndt && !txn_durable; i++)
			txn_durable = txn != 0 && durable_txns[i] == txn;
		if (durable_free(r) && !txn_durable) {
			*ftail = r;
			ftail = &r->next;
		} else {
			if (txn != 0 && !txn_durable) {
				if (ndt < 64)
					durable_txns[ndt++] = txn;
				else
					overflow = 1;  /* keep everything after in order */
			}
			*btail = r;
			btail = &r->next;
		}
	}
	if (front)
		run_sub(ex, front);
	if (back)
		run_sub(ex, back);
}

/* Lock-wait timeouts and idle transactions (writer thread, between batches). */
static void sweep(shard_executor *ex)
{
	uint64_t now = now_ms();
	shard_req *done = NULL, *wake = NULL;
	for (shard_req *p = ex->parked; p;) {
		shard_req *n = p->park_next;
		if (p->deadline_ms <= now) {
			unpark(ex, p);
			if (p->msg.req.txn) {
				shard_txn *t = txn_get(ex, p->msg.req.txn);
				if (t && t->parked == p)
					t->parked = NULL;
			}
			/* a saga step is retried by the router: lock_not_available */
			answer_error(p, p->msg.req.op >= WIRE_OP_SAGA_STEP ? "55P03" : "40001",
				     "could not obtain a row lock within %u ms (lock wait timeout)",
				     ex->cfg.lock_timeout_ms);
			p->next = done;
			done = p;
		}
		p = n;
	}
	/* deferred wounds: the younger holder still holds the row, still
	 * active (not prepared), after the delay; one prepared early is
	 * the router's to wound: it hears of it now (Waiting) */
	shard_txn *wounded = NULL;
	for (shard_req *p = ex->parked; p; p = p->park_next) {
		if (!p->wound_due || p->wound_at_ms > now)
			continue;
		p->wound_due = 0;
		if (!p->waiting_on || !p->waiting_on->owner)
			continue;
		shard_txn *o = txn_of(p->waiting_on->owner);
		if (o->id != p->wound_holder)
			continue;
		if (o->state == TXN_PREPARED && o->pstate == TXN_PREPARED && o->early) {
			send_interim(ex, p, WIRE_WAITING, (int64_t)o->id);
			continue;
		}
		if (o->state != TXN_ACTIVE || o->pstate != TXN_ACTIVE || o->wounded)
			continue;
		wound(ex, p->msg.req.txn, o);
		o->touched_next = wounded;
		wounded = o;
	}
	while (wounded) {
		shard_txn *n = wounded->touched_next;
		wounded->touched_next = NULL;
		txn_destroy(ex, wounded, &wake, &done);
		wounded = n;
	}
	if (ex->cfg.idle_timeout_ms && now - ex->last_sweep_ms >= 100) {
		ex->last_sweep_ms = now;
		shard_txn *victims = NULL;
		size_t it;
		for (hmap_entry *e = hmap_first(&ex->txns, &it); e; e = hmap_next(&ex->txns, e, &it)) {
			shard_txn *t = e->value;
			if (t->state == TXN_ACTIVE && !t->parked &&
			    now - t->active_ms >= ex->cfg.idle_timeout_ms) {
				t->touched_next = victims;
				victims = t;
			}
		}
		while (victims) {
			shard_txn *n = victims->touched_next;
			fprintf(stderr, "shard: rolling back transaction %" PRIu64 " idle for %" PRIu64 " ms\n",
				victims->id, now - victims->active_ms);
			txn_destroy(ex, victims, &wake, &done);
			victims = n;
		}
	}
	requeue_woken(ex, wake);
	deliver(ex, done);
}

static uint64_t next_deadline(shard_executor *ex)
{
	uint64_t d = now_ms() + 100;
	for (shard_req *p = ex->parked; p; p = p->park_next) {
		if (p->deadline_ms < d)
			d = p->deadline_ms;
		if (p->wound_due && p->wound_at_ms < d)
			d = p->wound_at_ms;
	}
	return d;
}

static void checkpoint_tail(shard_executor *ex);

/* Wake the writer thread for work the loop leaves to it. */
static void want_writer(shard_executor *ex)
{
	pthread_mutex_lock(&ex->mu);
	ex->writer_wanted = 1;
	pthread_cond_signal(&ex->wcond);
	pthread_mutex_unlock(&ex->mu);
}

static int queued(shard_executor *ex)
{
	pthread_mutex_lock(&ex->mu);
	int any = ex->wq != NULL;
	pthread_mutex_unlock(&ex->mu);
	return any;
}

static void *writer_main(void *arg)
{
	shard_executor *ex = arg;
	for (;;) {
		pthread_mutex_lock(&ex->run_mu);
		uint64_t deadline = next_deadline(ex);
		pthread_mutex_unlock(&ex->run_mu);
		pthread_mutex_lock(&ex->mu);
		while (!(ex->pump_on ? ex->writer_wanted : ex->wq != NULL) && !ex->stopping) {
			uint64_t now = now_ms();
			if (now >= deadline)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t wait = deadline - now;
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&ex->wcond, &ex->mu, &ts);
		}
		ex->writer_wanted = 0;
		pthread_mutex_unlock(&ex->mu);
		/* the queue is taken only with run_mu held, so requests run in
		 * the order they came whichever thread runs them */
		pthread_mutex_lock(&ex->run_mu);
		pthread_mutex_lock(&ex->mu);
		shard_req *batch = ex->wq;
		ex->wq = NULL;
		ex->wq_tail = &ex->wq;
		int stop = ex->stopping;
		pthread_mutex_unlock(&ex->mu);
		if (batch)
			run_batch(ex, batch);
		checkpoint_tail(ex);
		sweep(ex);
		pthread_mutex_unlock(&ex->run_mu);
		/* what came meanwhile (or a sweep woke) is the loop's again */
		if (ex->pump_on && !stop && queued(ex))
			ex->cfg.kick(ex->cfg.arg);
		if (stop && !batch)
			break;
	}
	return NULL;
}

/* The loop thread, after its I/O: run the queued requests here if they
 * are all light and the writer thread is not running a batch, which saves
 * two thread hand-offs per request; otherwise wake the writer thread. */
void shard_executor_pump(shard_executor *ex)
{
	if (!ex->pump_on)
		return;
	for (int round = 0; round < 4; round++) {
		if (pthread_mutex_trylock(&ex->run_mu) != 0) {
			ex->n_pump_busy++;
			return;  /* the writer runs; it kicks the loop when done */
		}
		pthread_mutex_lock(&ex->mu);
		int heavy = ex->stopping;
		for (shard_req *r = ex->wq; r && !heavy; r = r->next)
			heavy = !light(ex, r);
		shard_req *batch = heavy ? NULL : ex->wq;
		if (batch) {
			ex->wq = NULL;
			ex->wq_tail = &ex->wq;
		} else if (ex->wq) {
			ex->writer_wanted = 1;
			pthread_cond_signal(&ex->wcond);
		}
		pthread_mutex_unlock(&ex->mu);
		if (!batch) {
			ex->n_pump_heavy += heavy;
			pthread_mutex_unlock(&ex->run_mu);
			return;
		}
		ex->n_pumped++;
		uint64_t waits = ex->n_lock_waits;
		ex->pumping = 1;
		run_batch(ex, batch);
		ex->pumping = 0;
		int wake_writer = ex->n_lock_waits != waits || atomic_load(&ex->checkpoint_tail);
		pthread_mutex_unlock(&ex->run_mu);
		/* new deadlines (lock waits), or a checkpoint to finish: both
		 * are the writer thread's */
		if (wake_writer)
			want_writer(ex);
		if (!queued(ex))  /* else woken requests, requeued */
			return;
	}
	want_writer(ex);
}

/* ---- readers ---------------------------------------------------------------------------- */

/* A read at a consistent cut (wire.fbs: Request.snapshot): open a read
 * transaction and read the schema, which fixes its WAL snapshot, then tell
 * the sender (an interim Started answer) before the statement runs in that
 * snapshot: commits applied from now on are invisible to it, so the router
 * may let them apply without waiting for the rows.  1 if the transaction
 * is open (the caller ends it), 0 if not (the statement then runs in its own
 * snapshot and only its final answer counts). */
static int take_snapshot(shard_executor *ex, reader *rd, shard_req *req)
{
	char err[256];
	if (store_exec(rd->st, "BEGIN", err, sizeof err) != 0)
		return 0;
	sqlite3_stmt *q = store_internal(rd->st, "SELECT count(*) FROM sqlite_schema");
	int rc = q ? sqlite3_step(q) : SQLITE_ERROR;
	if (q)
		sqlite3_reset(q);
	if (rc != SQLITE_ROW) {
		store_exec(rd->st, "ROLLBACK", err, sizeof err);
		return 0;
	}
	send_interim(ex, req, WIRE_STARTED, 0);
	FAILPOINT("shard-read-after-snapshot");
	return 1;
}

static void *reader_main(void *arg)
{
	reader *rd = arg;
	shard_executor *ex = rd->ex;
	for (;;) {
		pthread_mutex_lock(&ex->mu);
		while (!ex->rq && !ex->stopping)
			pthread_cond_wait(&ex->rcond, &ex->mu);
		shard_req *req = ex->rq;
		if (!req) {
			pthread_mutex_unlock(&ex->mu);
			break;
		}
		ex->rq = req->next;
		if (!ex->rq)
			ex->rq_tail = &ex->rq;
		pthread_mutex_unlock(&ex->mu);
		req->next = NULL;

		wire_request *r = &req->msg.req;
		store_result res;
		store_result_init(&res);
		store_stmt *s = store_prepare(rd->st, r->sql, r->sql_len, &res);
		int in_txn = 0;
		if (s && !sqlite3_stmt_readonly(s->stmt))
			store_result_error(&res, "25006", "a request flagged read-only carries a write statement");
		else if (s && r->snapshot)
			in_txn = take_snapshot(ex, rd, req);
		if (s && !store_result_failed(&res))
			store_run(rd->st, s, r->params, r->nparams, &res);
		if (in_txn) {
			char err[256];
			if (store_exec(rd->st, "COMMIT", err, sizeof err) != 0)
				fprintf(stderr, "shard: ending a read: %s\n", err);
		}
		answer(req, &res);
		store_result_free(&res);
		deliver(ex, req);
	}
	return NULL;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

/* The WAL only starts over (and stops growing) when the writer begins a
 * transaction with every frame already copied back to the database.  The
 * checkpointer copies the bulk while the writer goes on appending, so on
 * its own it never catches up under a steady load: the WAL passed 100 MB
 * in a few seconds and the checkpointer never stopped.  Once it has copied what
 * was there, the writer copies the few frames appended meanwhile, between
 * two batches (writer thread, no transaction open); its next transaction
 * then restarts the WAL. */
static void checkpoint_tail(shard_executor *ex)
{
	if (!atomic_exchange(&ex->checkpoint_tail, 0))
		return;
	int log = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(store_db(ex->st), NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		fprintf(stderr, "shard: checkpoint failed: %s\n", sqlite3_errmsg(store_db(ex->st)));
}

/* Writer thread, after each commit: ask for a checkpoint past the mark. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
	shard_executor *ex = arg;
	if (frames >= CHECKPOINT_FRAMES) {
		pthread_mutex_lock(&ex->mu);
		if (!ex->checkpoint_wanted) {
			ex->checkpoint_wanted = 1;
			pthread_cond_signal(&ex->ccond);
		}
		pthread_mutex_unlock(&ex->mu);
	}
	return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
	shard_executor *ex = arg;
	char err[256];
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(ex->db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, STORE_VFS) != SQLITE_OK) {
		fprintf(stderr, "shard: checkpointer cannot open the database: %s\n", db ? sqlite3_errmsg(db) : "?");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 1000);
	sqlite3_exec(db, "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;", NULL, NULL, NULL);
	(void)err;
	for (;;) {
		pthread_mutex_lock(&ex->mu);
		while (!ex->checkpoint_wanted && !ex->stopping)
			pthread_cond_wait(&ex->ccond, &ex->mu);
		int stop = ex->stopping;
		ex->checkpoint_wanted = 0;
		pthread_mutex_unlock(&ex->mu);
		if (stop)
			break;
		int log = 0, done = 0;
		int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			fprintf(stderr, "shard: checkpoint failed: %s\n", sqlite3_errmsg(db));
		if (rc == SQLITE_OK && done == log)
			atomic_store(&ex->checkpoint_tail, 1);
		ex->n_checkpoints++;
	}
	sqlite3_close(db);
	return NULL;
}

/* ---- start / stop -------------------------------------------------------------------------- */

typedef struct {
	shard_executor *ex;
	shard_txn *t;
} recover_ctx;

static int relock(const void *key, size_t klen, void *arg)
{
	recover_ctx *c = arg;
	lock_entry *e;
	lock_result r;
	if (locks_acquire(&c->ex->locks, key, klen, &c->t->locks, &e, &r) != 0)
		return -1;
	if (r != LOCK_GRANTED) {
		fprintf(stderr, "shard: two prepared transactions hold the same row\n");
		return -1;
	}
	return 0;
}

static int recover(shard_executor *ex, char *err, size_t errlen)
{
	if (store_exec(ex->st,
		       "CREATE TABLE IF NOT EXISTS _sl_prepared("
		       " txn INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
		       " changeset BLOB NOT NULL, prepared_at INTEGER NOT NULL,"
		       " decider INTEGER NOT NULL DEFAULT 0, early INTEGER NOT NULL DEFAULT 0)",
		       err, errlen) != 0 ||
	    store_exec(ex->st, "CREATE TABLE IF NOT EXISTS _sl_decided(txn INTEGER PRIMARY KEY)", err, errlen) != 0)
		return -1;
	/* a prepare log of before deciders (or early prepares) existed gets
	 * the columns */
	static const char *const added[] = {"decider", "early"};
	for (size_t i = 0; i < sizeof added / sizeof added[0]; i++) {
		char probe_sql[64], alter[128];
		snprintf(probe_sql, sizeof probe_sql, "SELECT %s FROM _sl_prepared", added[i]);
		snprintf(alter, sizeof alter, "ALTER TABLE _sl_prepared ADD COLUMN %s INTEGER NOT NULL DEFAULT 0", added[i]);
		sqlite3_stmt *probe = NULL;
		int missing = sqlite3_prepare_v2(store_db(ex->st), probe_sql, -1, &probe, NULL) != SQLITE_OK;
		sqlite3_finalize(probe);
		if (missing && store_exec(ex->st, alter, err, errlen) != 0)
			return -1;
	}
	if (sagastep_init(ex->st, err, errlen) != 0)
		return -1;
	/* _slhidden: buckets whose rows this shard holds but must not show
	 * (a move's copy before its switch, the source's rows after it, until
	 * deleted); the router's scatter statements on HASH tables leave them
	 * out (plan.h), reading it in their own snapshot.  The rebalancer
	 * writes it with ordinary statements, hence no _sl_ prefix. */
	if (store_exec(ex->st, "CREATE TABLE IF NOT EXISTS _slhidden(bucket INTEGER PRIMARY KEY)", err, errlen) != 0 ||
	    store_exec(ex->st, "CREATE TABLE IF NOT EXISTS _sl_map(bucket INTEGER PRIMARY KEY)", err, errlen) != 0 ||
	    store_exec(ex->st, "CREATE TABLE IF NOT EXISTS _sl_meta(key TEXT PRIMARY KEY, value)", err, errlen) != 0)
		return -1;
	sqlite3_stmt *m = store_internal(ex->st, "SELECT value FROM _sl_meta WHERE key = 'map_epoch'");
	if (m && sqlite3_step(m) == SQLITE_ROW)
		ex->map_epoch = (uint64_t)sqlite3_column_int64(m, 0);
	if (m)
		sqlite3_reset(m);
	m = store_internal(ex->st, "SELECT bucket FROM _sl_map");
	while (m && sqlite3_step(m) == SQLITE_ROW) {
		int64_t b = sqlite3_column_int64(m, 0);
		if (b >= 0 && b < 4096)
			ex->owned[b / 64] |= (uint64_t)1 << (b % 64);
	}
	if (m)
		sqlite3_reset(m);
	sqlite3_stmt *q = store_internal(ex->st, "SELECT txn, ts, changeset, decider, early FROM _sl_prepared");
	if (!q) {
		snprintf(err, errlen, "reading the prepare log: %s", sqlite3_errmsg(store_db(ex->st)));
		return -1;
	}
	int n = 0, rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(q, 0);
		shard_txn *t = txn_create(ex, id, (uint64_t)sqlite3_column_int64(q, 1), 0);
		int len = sqlite3_column_bytes(q, 2);
		void *cs = len > 0 ? sqlite3_malloc(len) : NULL;
		if (!t || (len > 0 && !cs)) {
			sqlite3_reset(q);
			snprintf(err, errlen, "out of memory recovering prepared transactions");
			return -1;
		}
		if (len > 0)
			memcpy(cs, sqlite3_column_blob(q, 2), (size_t)len);
		t->ws = t->pws = cs;
		t->wslen = t->pwslen = len;
		t->state = t->pstate = TXN_PREPARED;
		t->decider = (uint32_t)sqlite3_column_int64(q, 3);
		t->early = sqlite3_column_int(q, 4) != 0;
		recover_ctx c = {ex, t};
		if (locks_each_changeset_key(cs, len, relock, &c) != 0) {
			sqlite3_reset(q);
			snprintf(err, errlen, "cannot re-take the row locks of prepared transaction %" PRIu64, id);
			return -1;
		}
		n++;
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "reading the prepare log: %s", sqlite3_errmsg(store_db(ex->st)));
		return -1;
	}
	if (n)
		fprintf(stderr, "shard: recovered %d prepared transaction(s), waiting for their decision\n", n);
	return 0;
}

shard_executor *shard_executor_start(const shard_executor_config *cfg, char *err, size_t errlen)
{
	shard_executor *ex = calloc(1, sizeof *ex);
	if (!ex) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ex->cfg = *cfg;
	ex->db_path = strdup(cfg->db_path);
	pthread_mutex_init(&ex->mu, NULL);
	pthread_mutex_init(&ex->run_mu, NULL);
	ex->pump_on = cfg->pump;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ex->wcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&ex->rcond, NULL);
	pthread_cond_init(&ex->ccond, NULL);
	ex->wq_tail = &ex->wq;
	ex->rq_tail = &ex->rq;
	hmap_init(&ex->txns);
	locks_init(&ex->locks);
	ex->st = store_open(cfg->db_path, STORE_WRITER, err, errlen);
	if (!ex->st)
		goto fail;
	if (!(ex->applier = applier_new(ex->st))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (recover(ex, err, errlen) != 0)
		goto fail;
	/* checkpoints leave the writer: see the top of this file */
	if (store_exec(ex->st, "PRAGMA wal_autocheckpoint=0", err, errlen) != 0)
		goto fail;
	sqlite3_wal_hook(store_db(ex->st), on_wal, ex);
	if (pthread_create(&ex->checkpointer, NULL, checkpointer_main, ex) == 0)
		ex->have_checkpointer = 1;
	if (pthread_create(&ex->writer, NULL, writer_main, ex) != 0) {
		snprintf(err, errlen, "cannot start the writer thread");
		goto fail;
	}
	ex->readers = calloc((size_t)(cfg->nreaders > 0 ? cfg->nreaders : 1), sizeof *ex->readers);
	for (int i = 0; ex->readers && i < cfg->nreaders; i++) {
		reader *rd = &ex->readers[i];
		rd->ex = ex;
		rd->st = store_open(cfg->db_path, STORE_READER, err, errlen);
		if (!rd->st)
			break;
		if (pthread_create(&rd->thread, NULL, reader_main, rd) != 0) {
			store_close(rd->st);
			break;
		}
		ex->nreaders++;
	}
	return ex;
fail:
	applier_free(ex->applier);
	store_close(ex->st);
	locks_free(&ex->locks);
	hmap_free(&ex->txns);
	free(ex->db_path);
	free(ex);
	return NULL;
}

void shard_executor_stop(shard_executor *ex)
{
	if (!ex)
		return;
	pthread_mutex_lock(&ex->mu);
	ex->stopping = 1;
	pthread_cond_broadcast(&ex->wcond);
	pthread_cond_broadcast(&ex->rcond);
	pthread_cond_broadcast(&ex->ccond);
	pthread_mutex_unlock(&ex->mu);
	pthread_join(ex->writer, NULL);
	if (ex->have_checkpointer)
		pthread_join(ex->checkpointer, NULL);
	for (int i = 0; i < ex->nreaders; i++) {
		pthread_join(ex->readers[i].thread, NULL);
		store_close(ex->readers[i].st);
	}
	free(ex->readers);
	/* requests still parked or queued are dropped with their connections */
	for (shard_req *p = ex->parked; p;) {
		shard_req *n = p->park_next;
		shard_req_free(p);
		p = n;
	}
	for (shard_req *lists[2] = {ex->wq, ex->rq}, **l = lists; l < lists + 2; l++)
		for (shard_req *r = *l; r;) {
			shard_req *n = r->next;
			shard_req_free(r);
			r = n;
		}
	size_t it;
	for (hmap_entry *e = hmap_first(&ex->txns, &it); e; e = hmap_next(&ex->txns, e, &it)) {
		shard_txn *t = e->value;
		if (t->pws != t->ws)
			sqlite3_free(t->pws);
		sqlite3_free(t->ws);
		free(t);
	}
	hmap_free(&ex->txns);
	locks_free(&ex->locks);
	applier_free(ex->applier);
	store_close(ex->st);
	pthread_mutex_destroy(&ex->mu);
	pthread_mutex_destroy(&ex->run_mu);
	pthread_cond_destroy(&ex->wcond);
	pthread_cond_destroy(&ex->rcond);
	pthread_cond_destroy(&ex->ccond);
	free(ex->db_path);
	free(ex);
}
