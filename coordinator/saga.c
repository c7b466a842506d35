/*
 * saga.c — the saga engine (see saga.h for the model).
 *
 * Pieces:
 *   call     one request to one shard, retried with backoff and jitter
 *            while the failure is transient; goes through the shard's
 *            circuit breaker.
 *   breaker  per shard: CLOSED, or OPEN after 3 consecutive transport
 *            failures (calls fail fast) while a Ping probes the shard.
 *   ujob     the compensations of one saga on one shard, newest step
 *            first, one at a time; stops at a step that needs attention.
 *   sweep    every second: open steps of sagas not running here are
 *            compensated, or ended if the saga log says committed.
 *
 * Invariants:
 *  - A saga is in `running` from saga_begin() until its commit has been
 *    ended on every shard or its compensations have all been answered;
 *    the sweep never touches a saga in `running`, in `busy` (a sweep or
 *    resolve job is compensating it) or in `settled` (it left `running`
 *    after the sweep's listings were taken).
 *  - A step is registered in its saga before its request is sent, so a
 *    rollback also voids a step whose answer never came.
 *  - Every call's callback runs exactly once; `outstanding` counts calls
 *    and jobs not yet finished, so close frees nothing they still use.
 */
#include "coordinator/saga.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coordinator/decision_log.h"
#include "txn/failpoint.h"
#include "txn/hmap.h"

#define MAX_SHARDS 256
#define SWEEP_MS 1000
#define BREAKER_THRESHOLD 3
#define PROBE_MIN_MS 250
#define PROBE_MAX_MS 2000
#define BACKOFF_CAP_MS 1000
/* A committed saga's SagaEnd rides on the next step sent to its shard
 * (Request.ended), or goes alone after this long. */
#define END_DELAY_MS 5
#define ENDS_PER_STEP 512

typedef enum { SG_RUNNING = 1, SG_COMMITTING, SG_COMPENSATING } sg_state;

typedef struct {
	size_t shard;
	uint32_t step;
} sstep;

struct saga {
	saga_engine *e;
	uint64_t id;
	sg_state state;
	sstep *steps;
	size_t n, cap;
	uint32_t next_step;
	uint64_t started_ms;
	saga_done_cb cb;
	void *arg;
	int jobs;                /* compensation jobs / SagaEnd calls outstanding */
	int failed;              /* a job did not finish */
	int commit_failed;       /* COMMIT could not log the saga (sqlstate, message say
				  * why): it is compensated, and its client still hears
				  * that error, not COMMIT */
	char sqlstate[6];
	char message[600];
};

typedef struct {
	saga_engine *e;
	size_t shard;
	int fails;
	int open;
	uint64_t probe_ms;
	uv_timer_t timer;
	int timer_init;
} breaker;

typedef struct {
	uint64_t saga;
	size_t shard;
	char steps[160];
	char state[24];
	char detail[400];
	uint64_t age_ms;
} orphan;

struct saga_engine {
	uv_loop_t *loop;
	shard_pool *pool;
	const catalog *cat;
	decision_log *log;
	hmap running;            /* id -> saga* */
	hmap settled;            /* id -> (void*)1, while a sweep runs */
	hmap busy;               /* id -> job count, sweep/resolve compensations */
	uv_timer_t sweep;
	int sweeping;            /* Status answers outstanding */
	orphan *orphans, *next_orphans;
	size_t norphans, nnext, capnext;
	breaker br[MAX_SHARDS];
	int retries;
	unsigned backoff_ms;
	saga_stats stats;
	int outstanding;
	uint32_t undoing[MAX_SHARDS];  /* compensation jobs in flight per shard */
	int closing;
	/* completed sagas waiting for their SagaEnd, sent per shard in one
	 * request at the next turn of the loop */
	saga **ending[MAX_SHARDS];
	size_t nending[MAX_SHARDS], capending[MAX_SHARDS];
	uv_timer_t end_timer;
	int end_scheduled;
	int nhandles;            /* timers not yet closed (at close) */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void maybe_free_engine(saga_engine *e);

/* ---- circuit breaker ------------------------------------------------------------------- */

static void on_probe_timer(uv_timer_t *t);

static void on_probe_answer(void *arg, shard_answer *a, const char *error)
{
	breaker *b = arg;
	shard_answer_free(a);
	b->e->outstanding--;
	if (b->e->closing) {
		maybe_free_engine(b->e);
		return;
	}
	if (!error) {
		fprintf(stderr, "router: shard %zu answers again; circuit closed\n", b->shard);
		b->open = 0;
		b->fails = 0;
		b->probe_ms = 0;
		return;
	}
	b->probe_ms = b->probe_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : b->probe_ms * 2;
	uv_timer_start(&b->timer, on_probe_timer, b->probe_ms, 0);
}

static void on_probe_timer(uv_timer_t *t)
{
	breaker *b = t->data;
	if (b->e->closing)
		return;
	wire_request r = {.op = WIRE_OP_PING};
	b->e->outstanding++;
	if (shard_pool_send(b->e->pool, b->shard, &r, on_probe_answer, b) != 0) {
		b->e->outstanding--;
		uv_timer_start(&b->timer, on_probe_timer, b->probe_ms, 0);
	}
}

static void breaker_failure(saga_engine *e, size_t shard)
{
	if (shard >= MAX_SHARDS)
		return;
	breaker *b = &e->br[shard];
	if (b->open || ++b->fails < BREAKER_THRESHOLD)
		return;
	fprintf(stderr, "router: shard %zu failed %d times in a row; circuit open, probing\n", shard, b->fails);
	b->open = 1;
	b->probe_ms = PROBE_MIN_MS;
	if (!b->timer_init) {
		uv_timer_init(e->loop, &b->timer);
		b->timer.data = b;
		b->timer_init = 1;
	}
	uv_timer_start(&b->timer, on_probe_timer, b->probe_ms, 0);
}

static void breaker_success(saga_engine *e, size_t shard)
{
	if (shard < MAX_SHARDS && !e->br[shard].open)
		e->br[shard].fails = 0;
}

static bool breaker_open(const saga_engine *e, size_t shard)
{
	return shard < MAX_SHARDS && e->br[shard].open;
}

/* ---- call: one request, retried while the failure is transient ------------------------ */

typedef struct {
	saga_engine *e;
	size_t shard;
	wire_request req;
	int attempt, max_attempts;
	shard_cb cb;
	void *arg;
	uv_timer_t timer;
	int timer_init;
	char err[200];
} call;

static void on_call_closed(uv_handle_t *h)
{
	free(h->data);
}

static void call_free(call *c)
{
	if (c->timer_init)
		uv_close((uv_handle_t *)&c->timer, on_call_closed);
	else
		free(c);
}

static void call_finish(call *c, shard_answer *a, const char *error)
{
	saga_engine *e = c->e;
	c->cb(c->arg, a, error);
	call_free(c);
	e->outstanding--;
	maybe_free_engine(e);
}

static void call_send(call *c);

static void on_call_timer(uv_timer_t *t)
{
	call *c = t->data;
	if (c->err[0])
		call_finish(c, NULL, c->err);  /* a fast failure, delivered from the loop */
	else
		call_send(c);
}

static void call_later(call *c, uint64_t ms)
{
	if (!c->timer_init) {
		uv_timer_init(c->e->loop, &c->timer);
		c->timer.data = c;
		c->timer_init = 1;
	}
	uv_timer_start(&c->timer, on_call_timer, ms, 0);
}

static bool transient(const shard_answer *a, const char *error)
{
	if (error)
		return true;
	const wire_response *r = &a->msg.resp;
	return r->status == WIRE_ERROR && r->sqlstate && strcmp(r->sqlstate, "55P03") == 0;
}

static void on_call_answer(void *arg, shard_answer *a, const char *error)
{
	call *c = arg;
	saga_engine *e = c->e;
	if (error)
		breaker_failure(e, c->shard);
	else
		breaker_success(e, c->shard);
	if (!e->closing && transient(a, error) && c->attempt < c->max_attempts && !breaker_open(e, c->shard)) {
		shard_answer_free(a);
		/* exponential backoff with full jitter */
		uint64_t cap = (uint64_t)e->backoff_ms << (c->attempt < 16 ? c->attempt : 16);
		if (cap > BACKOFF_CAP_MS)
			cap = BACKOFF_CAP_MS;
		c->attempt++;
		e->stats.retries++;
		call_later(c, 1 + (uint64_t)rand() % (cap ? cap : 1));
		return;
	}
	call_finish(c, a, error);
}

static void call_send(call *c)
{
	saga_engine *e = c->e;
	if (breaker_open(e, c->shard)) {
		e->stats.fast_fails++;
		snprintf(c->err, sizeof c->err, "shard %zu is unavailable (circuit open; probing it)", c->shard);
		call_later(c, 0);
		return;
	}
	if (shard_pool_send(e->pool, c->shard, &c->req, on_call_answer, c) != 0) {
		snprintf(c->err, sizeof c->err, "cannot send to shard %zu", c->shard);
		call_later(c, 0);
	}
}

/* req is copied shallowly: its pointers must outlive the call. */
static void call_start(saga_engine *e, size_t shard, const wire_request *req, int max_attempts, shard_cb cb,
		       void *arg)
{
	call *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->e = e;
	c->shard = shard;
	c->req = *req;
	c->max_attempts = max_attempts;
	c->cb = cb;
	c->arg = arg;
	e->outstanding++;
	call_send(c);
}

/* ---- ujob: compensate one saga's steps on one shard, newest first ------------------------ */

typedef struct ujob ujob;
typedef void (*ujob_cb)(ujob *j, int status);  /* 0 done, 1 needs attention, 2 failed */

struct ujob {
	saga_engine *e;
	uint64_t saga;
	size_t shard;
	uint32_t *steps;          /* newest first */
	uint8_t *modes;
	size_t n, i;
	ujob_cb done;
	void *arg;
	char sqlstate[6];
	char msg[600];
};

static void ujob_next(ujob *j);

static void on_undo_answer(void *arg, shard_answer *a, const char *error)
{
	ujob *j = arg;
	if (!error && a->msg.resp.status == WIRE_OK) {
		shard_answer_free(a);
		j->i++;
		ujob_next(j);
		return;
	}
	const char *st = error ? "08006" : a->msg.resp.sqlstate ? a->msg.resp.sqlstate : "XX000";
	const char *m = error ? error : a->msg.resp.message ? a->msg.resp.message : "compensation failed";
	int attention = !error && strcmp(st, "SL002") == 0;
	snprintf(j->sqlstate, sizeof j->sqlstate, "%s", st);
	snprintf(j->msg, sizeof j->msg, "shard %zu: %s", j->shard, m);
	shard_answer_free(a);
	j->e->outstanding--;
	if (j->shard < MAX_SHARDS)
		j->e->undoing[j->shard]--;
	j->done(j, attention ? 1 : 2);
	free(j->steps);
	free(j->modes);
	free(j);
}

static void ujob_next(ujob *j)
{
	saga_engine *e = j->e;
	if (j->i == j->n) {
		e->outstanding--;
		if (j->shard < MAX_SHARDS)
			e->undoing[j->shard]--;
		j->done(j, 0);
		free(j->steps);
		free(j->modes);
		free(j);
		return;
	}
	FAILPOINT("router.saga.undo");
	wire_request r = {.op = WIRE_OP_SAGA_UNDO, .txn = j->saga, .step = j->steps[j->i],
			  .mode = j->modes ? j->modes[j->i] : WIRE_UNDO_NORMAL};
	/* compensations must happen: retry longer than steps */
	call_start(e, j->shard, &r, e->retries * 2 + 2, on_undo_answer, j);
}

static ujob *ujob_new(saga_engine *e, uint64_t id, size_t shard, size_t cap, ujob_cb done, void *arg)
{
	ujob *j = calloc(1, sizeof *j);
	if (!j || !(j->steps = calloc(cap ? cap : 1, sizeof *j->steps)) ||
	    !(j->modes = calloc(cap ? cap : 1, sizeof *j->modes)))
		abort();
	j->e = e;
	j->saga = id;
	j->shard = shard;
	j->done = done;
	j->arg = arg;
	e->outstanding++;
	if (shard < MAX_SHARDS)
		e->undoing[shard]++;
	return j;
}

/* ---- sagas ------------------------------------------------------------------------------ */

saga *saga_begin(saga_engine *e, uint64_t id)
{
	saga *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->e = e;
	s->id = id;
	s->state = SG_RUNNING;
	s->started_ms = now_ms();
	if (hmap_put(&e->running, &s->id, sizeof s->id, s) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

size_t saga_undoing_on(const saga_engine *e, size_t shard)
{
	return e && shard < MAX_SHARDS ? e->undoing[shard] : 0;
}

uint64_t saga_id(const saga *s)
{
	return s->id;
}

size_t saga_nsteps(const saga *s)
{
	return s->n;
}

static void end_done(saga *s, bool failed);
static void end_later(saga_engine *e, size_t shard, saga *s);

/* A step's call, with the committed sagas whose SagaEnd rides on it. */
typedef struct {
	saga_engine *e;
	size_t shard;
	saga **ended;
	uint64_t *ids;
	size_t n;
	shard_cb cb;
	void *arg;
} step_ctx;

static void on_step_answer(void *arg, shard_answer *a, const char *error)
{
	step_ctx *c = arg;
	saga_engine *e = c->e;
	/* only an Ok answer says the shard ran the step's batch with the ends
	 * (a refusal before it, e.g. a stale route, did not): else they go again */
	bool ended = !error && a->msg.resp.status == WIRE_OK;
	saga **sagas = c->ended;
	size_t n = c->n, shard = c->shard;
	shard_cb cb = c->cb;
	void *cbarg = c->arg;
	free(c->ids);
	free(c);
	cb(cbarg, a, error);
	for (size_t i = 0; i < n; i++) {
		if (ended)
			end_done(sagas[i], false);
		else if (!e->closing)
			end_later(e, shard, sagas[i]);
	}
	free(sagas);
}

void saga_step(saga_engine *e, saga *s, size_t shard, const wire_request *req, shard_cb cb, void *arg)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		sstep *n = realloc(s->steps, cap * sizeof *n);
		if (!n)
			abort();
		s->steps = n;
		s->cap = cap;
	}
	wire_request r = *req;
	r.op = WIRE_OP_SAGA_STEP;
	r.txn = s->id;
	r.step = ++s->next_step;
	r.ts = 0;
	r.readonly = false;
	r.begin = false;
	s->steps[s->n].shard = shard;
	s->steps[s->n].step = r.step;
	s->n++;
	step_ctx *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->e = e;
	c->shard = shard;
	c->cb = cb;
	c->arg = arg;
	size_t n = shard < MAX_SHARDS ? e->nending[shard] : 0;
	if (n > ENDS_PER_STEP)
		n = ENDS_PER_STEP;
	if (n) {
		/* take the newest n: what stays is still sent by the timer */
		size_t from = e->nending[shard] - n;
		if (!(c->ended = malloc(n * sizeof *c->ended)) || !(c->ids = malloc(n * sizeof *c->ids)))
			abort();
		memcpy(c->ended, e->ending[shard] + from, n * sizeof *c->ended);
		e->nending[shard] = from;
		for (size_t i = 0; i < n; i++)
			c->ids[i] = c->ended[i]->id;
		c->n = n;
		r.ended = c->ids;
		r.nended = (uint32_t)n;
	}
	call_start(e, shard, &r, e->retries + 1, on_step_answer, c);
}

/* The saga leaves `running`: the sweep may see it again, but not from a
 * listing taken before now. */
static void saga_finish(saga *s, int ok)
{
	saga_engine *e = s->e;
	hmap_del(&e->running, &s->id, sizeof s->id);
	if (e->sweeping)
		hmap_put(&e->settled, &s->id, sizeof s->id, (void *)1);
	if (s->cb)
		s->cb(s->arg, ok, s->sqlstate, s->message);
	free(s->steps);
	free(s);
	maybe_free_engine(e);
}

static void end_done(saga *s, bool failed)
{
	if (failed)
		s->failed = 1;
	if (--s->jobs > 0)
		return;
	if (!s->failed)
		dlog_done(s->e->log, s->id);  /* else the sweep ends it later */
	s->cb = NULL;                      /* the client heard already */
	saga_finish(s, 1);
}

static void on_end_answer(void *arg, shard_answer *a, const char *error)
{
	bool failed = error || a->msg.resp.status != WIRE_OK;
	shard_answer_free(a);
	end_done(arg, failed);
}

static size_t distinct_shards(const saga *s, uint16_t *out)
{
	bool seen[MAX_SHARDS] = {0};
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->steps[i].shard < MAX_SHARDS && !seen[s->steps[i].shard]) {
			seen[s->steps[i].shard] = true;
			out[n++] = (uint16_t)s->steps[i].shard;
		}
	return n;
}

typedef struct {
	saga **sagas;
	wire_value *ids;
	size_t n;
} end_batch;

static void on_end_batch(void *arg, shard_answer *a, const char *error)
{
	end_batch *b = arg;
	bool failed = error || a->msg.resp.status != WIRE_OK;
	shard_answer_free(a);
	for (size_t i = 0; i < b->n; i++)
		end_done(b->sagas[i], failed);
	free(b->sagas);
	free(b->ids);
	free(b);
}

static void on_end_timer(uv_timer_t *t)
{
	saga_engine *e = t->data;
	e->end_scheduled = 0;
	for (size_t sh = 0; sh < MAX_SHARDS; sh++) {
		if (!e->nending[sh])
			continue;
		end_batch *b = calloc(1, sizeof *b);
		if (!b || !(b->ids = calloc(e->nending[sh], sizeof *b->ids)))
			abort();
		b->sagas = e->ending[sh];
		b->n = e->nending[sh];
		e->ending[sh] = NULL;
		e->nending[sh] = e->capending[sh] = 0;
		for (size_t i = 0; i < b->n; i++) {
			b->ids[i].type = WIRE_INT;
			b->ids[i].i = (int64_t)b->sagas[i]->id;
		}
		wire_request r = {.op = WIRE_OP_SAGA_END, .params = b->ids, .nparams = (uint32_t)b->n};
		call_start(e, sh, &r, e->retries + 1, on_end_batch, b);
	}
}

static void end_later(saga_engine *e, size_t shard, saga *s)
{
	if (e->nending[shard] == e->capending[shard]) {
		size_t cap = e->capending[shard] ? e->capending[shard] * 2 : 16;
		saga **n = realloc(e->ending[shard], cap * sizeof *n);
		if (!n)
			abort();
		e->ending[shard] = n;
		e->capending[shard] = cap;
	}
	e->ending[shard][e->nending[shard]++] = s;
	if (!e->end_scheduled) {
		e->end_scheduled = 1;
		uv_timer_start(&e->end_timer, on_end_timer, END_DELAY_MS, 0);
	}
}

static void on_logged(void *arg, int status)
{
	saga *s = arg;
	saga_engine *e = s->e;
	if (status < 0) {
		s->commit_failed = 1;
		snprintf(s->sqlstate, sizeof s->sqlstate, "58030");
		snprintf(s->message, sizeof s->message, "the saga log could not be written");
		saga_rollback(e, s, s->cb, s->arg);
		return;
	}
	FAILPOINT("router.saga.logged");
	e->stats.committed++;
	if (s->cb)
		s->cb(s->arg, 1, NULL, NULL);
	s->cb = NULL;
	uint16_t shards[MAX_SHARDS];
	size_t n = distinct_shards(s, shards);
	s->jobs = (int)n;
	for (size_t i = 0; i < n; i++)
		end_later(e, shards[i], s);
}

void saga_commit(saga_engine *e, saga *s, saga_done_cb cb, void *arg)
{
	s->cb = cb;
	s->arg = arg;
	s->state = SG_COMMITTING;
	if (s->n == 0) {
		e->stats.committed++;
		saga_finish(s, 1);
		return;
	}
	FAILPOINT("router.saga.commit");
	uint16_t shards[MAX_SHARDS];
	size_t n = distinct_shards(s, shards);
	if (dlog_commit(e->log, s->id, shards, (uint16_t)n, on_logged, s) != 0) {
		s->commit_failed = 1;
		snprintf(s->sqlstate, sizeof s->sqlstate, "53200");
		snprintf(s->message, sizeof s->message, "out of memory logging the saga");
		saga_rollback(e, s, cb, arg);
	}
}

static void on_rollback_job(ujob *j, int status)
{
	saga *s = j->arg;
	saga_engine *e = s->e;
	if (status != 0 && !s->failed) {
		s->failed = status;
		if (status == 1)
			e->stats.attention++;
		snprintf(s->sqlstate, sizeof s->sqlstate, "%s", status == 1 ? "25000" : j->sqlstate);
		snprintf(s->message, sizeof s->message,
			 status == 1 ? "saga %" PRIu64 " could not be fully compensated and needs attention: %s "
				       "(see SHOW SAGAS; RESOLVE SAGA '%" PRIu64 "' OVERWRITE | ACCEPT)"
				     : "saga %" PRIu64 " is not fully compensated yet: %s; the recovery sweep "
				       "finishes it when the shard is back (saga %" PRIu64 ")",
			 s->id, j->msg, s->id);
	}
	if (--s->jobs > 0)
		return;
	if (!s->failed)
		e->stats.compensated++;
	saga_finish(s, !s->failed && !s->commit_failed);
}

void saga_rollback(saga_engine *e, saga *s, saga_done_cb cb, void *arg)
{
	s->cb = cb;
	s->arg = arg;
	s->state = SG_COMPENSATING;
	s->failed = 0;
	ujob *jobs[MAX_SHARDS] = {0};
	size_t order[MAX_SHARDS], nj = 0;
	for (size_t k = s->n; k-- > 0;) {
		size_t sh = s->steps[k].shard;
		if (sh >= MAX_SHARDS)
			continue;
		if (!jobs[sh]) {
			jobs[sh] = ujob_new(e, s->id, sh, s->n, on_rollback_job, s);
			order[nj++] = sh;
		}
		jobs[sh]->steps[jobs[sh]->n++] = s->steps[k].step;
	}
	if (nj == 0) {
		e->stats.compensated++;
		saga_finish(s, !s->commit_failed);
		return;
	}
	s->jobs = (int)nj;
	for (size_t i = 0; i < nj; i++)
		ujob_next(jobs[order[i]]);
}

/* ---- the sweep: recovery of sagas not running here ------------------------------------- */

typedef struct {
	saga_engine *e;
	size_t shard;
} status_ctx;

static void busy_add(saga_engine *e, uint64_t id, int d)
{
	intptr_t n = (intptr_t)hmap_get(&e->busy, &id, sizeof id) + d;
	if (n > 0)
		hmap_put(&e->busy, &id, sizeof id, (void *)n);
	else
		hmap_del(&e->busy, &id, sizeof id);
}

static void on_sweep_job(ujob *j, int status)
{
	if (status == 0)
		j->e->stats.compensated++;
	else if (status == 1)
		j->e->stats.attention++;
	busy_add(j->e, j->saga, -1);
}

static void on_ended(void *arg, shard_answer *a, const char *error)
{
	(void)arg;
	(void)error;
	shard_answer_free(a);
}

static void add_orphan(saga_engine *e, const orphan *o)
{
	if (e->nnext == e->capnext) {
		size_t cap = e->capnext ? e->capnext * 2 : 16;
		orphan *n = realloc(e->next_orphans, cap * sizeof *n);
		if (!n)
			return;
		e->next_orphans = n;
		e->capnext = cap;
	}
	e->next_orphans[e->nnext++] = *o;
}

/* One saga's open steps on one shard (rows [from, to) of a listing). */
static void sweep_saga(saga_engine *e, size_t shard, const wire_response *r, uint32_t from, uint32_t to)
{
	const wire_value *first = r->cells + (size_t)from * r->ncols;
	uint64_t id = strtoull(first[0].p, NULL, 10);
	if (hmap_get(&e->running, &id, sizeof id) || hmap_get(&e->settled, &id, sizeof id) ||
	    hmap_get(&e->busy, &id, sizeof id))
		return;
	if (dlog_is_committed(e->log, id, NULL)) {
		wire_request q = {.op = WIRE_OP_SAGA_END, .txn = id};
		call_start(e, shard, &q, 1, on_ended, NULL);
		return;
	}
	orphan o;
	memset(&o, 0, sizeof o);
	o.saga = id;
	o.shard = shard;
	size_t sl = 0;
	int attention = 0;
	uint64_t age = 0;
	for (uint32_t i = from; i < to; i++) {
		const wire_value *row = r->cells + (size_t)i * r->ncols;
		if (strcmp(row[2].p, "attention") == 0) {
			attention = 1;
			if (!o.detail[0])
				snprintf(o.detail, sizeof o.detail, "step %s: %s", (const char *)row[1].p,
					 row[3].type == WIRE_TEXT ? (const char *)row[3].p : "");
		}
		if (sl < sizeof o.steps)
			sl += (size_t)snprintf(o.steps + sl, sizeof o.steps - sl, "%s%s@%zu %s", sl ? ", " : "",
					       (const char *)row[1].p, shard, (const char *)row[2].p);
		uint64_t a = strtoull(row[4].p, NULL, 10);
		age = a > age ? a : age;
	}
	o.age_ms = age;
	snprintf(o.state, sizeof o.state, "%s", attention ? "needs attention" : "compensating");
	add_orphan(e, &o);
	if (attention)
		return;  /* an operator decides (RESOLVE SAGA) */
	ujob *j = ujob_new(e, id, shard, to - from, on_sweep_job, NULL);
	for (uint32_t i = to; i-- > from;)
		j->steps[j->n++] = (uint32_t)strtoul(r->cells[(size_t)i * r->ncols + 1].p, NULL, 10);
	busy_add(e, id, 1);
	fprintf(stderr, "router: saga %" PRIu64 " was not finished: compensating its %zu step(s) on shard %zu\n", id,
		j->n, shard);
	ujob_next(j);
}

/* A listing of open steps: rows (saga, step, state, message, age_ms), by saga. */
static bool listing_ok(const shard_answer *a, const char *error)
{
	if (error || a->msg.resp.status != WIRE_OK || a->msg.resp.ncols < 5)
		return false;
	const wire_response *r = &a->msg.resp;
	for (uint32_t i = 0; i < r->nrows; i++)
		for (uint32_t c = 0; c < 5; c++)
			if (c != 3 && r->cells[(size_t)i * r->ncols + c].type != WIRE_TEXT)
				return false;
	return true;
}

static void sweep_end(saga_engine *e)
{
	free(e->orphans);
	e->orphans = e->next_orphans;
	e->norphans = e->nnext;
	e->next_orphans = NULL;
	e->nnext = e->capnext = 0;
	hmap_free(&e->settled);
	hmap_init(&e->settled);
}

static void on_listing(void *arg, shard_answer *a, const char *error)
{
	status_ctx *c = arg;
	saga_engine *e = c->e;
	if (!error && c->shard < MAX_SHARDS && e->br[c->shard].open) {
		/* the shard answers again: the sweep is a probe too */
		fprintf(stderr, "router: shard %zu answers again; circuit closed\n", c->shard);
		e->br[c->shard].open = 0;
		e->br[c->shard].fails = 0;
	}
	if (!e->closing && listing_ok(a, error)) {
		const wire_response *r = &a->msg.resp;
		uint32_t from = 0;
		while (from < r->nrows) {
			uint32_t to = from + 1;
			while (to < r->nrows && strcmp(r->cells[(size_t)to * r->ncols].p,
						       r->cells[(size_t)from * r->ncols].p) == 0)
				to++;
			sweep_saga(e, c->shard, r, from, to);
			from = to;
		}
	}
	shard_answer_free(a);
	free(c);
	e->outstanding--;
	if (--e->sweeping == 0)
		sweep_end(e);
	maybe_free_engine(e);
}

static void on_sweep(uv_timer_t *t)
{
	saga_engine *e = t->data;
	if (e->sweeping || e->closing)
		return;
	/* committed sagas whose steps were not all ended yet */
	size_t np = dlog_npending(e->log);
	if (np) {
		dlog_decision *d = calloc(np, sizeof *d);
		size_t got = d ? dlog_pending(e->log, d, np) : 0;
		for (size_t i = 0; i < got; i++) {
			if (hmap_get(&e->running, &d[i].txn, sizeof d[i].txn))
				continue;
			saga *s = calloc(1, sizeof *s);
			if (!s)
				break;
			s->e = e;
			s->id = d[i].txn;
			s->state = SG_COMMITTING;
			s->started_ms = now_ms();
			s->steps = calloc(d[i].n ? d[i].n : 1, sizeof *s->steps);
			for (uint16_t k = 0; s->steps && k < d[i].n; k++)
				s->steps[s->n++].shard = d[i].shards[k];
			hmap_put(&e->running, &s->id, sizeof s->id, s);
			s->jobs = (int)s->n;
			for (size_t k = 0; k < s->n; k++) {
				wire_request r = {.op = WIRE_OP_SAGA_END, .txn = s->id};
				call_start(e, s->steps[k].shard, &r, 1, on_end_answer, s);
			}
			if (s->n == 0) {
				dlog_done(e->log, s->id);
				saga_finish(s, 1);
			}
		}
		free(d);
	}
	size_t n = catalog_nshards(e->cat);
	e->sweeping = (int)n + 1;  /* +1 until every request is out */
	for (size_t i = 0; i < n; i++) {
		status_ctx *c = catalog_shard_removed(e->cat, i) ? NULL : malloc(sizeof *c);
		if (!c) {
			e->sweeping--;
			continue;
		}
		c->e = e;
		c->shard = i;
		wire_request r = {.op = WIRE_OP_STATUS, .sql = "sagas", .sql_len = 5};
		e->outstanding++;
		if (shard_pool_send(e->pool, i, &r, on_listing, c) != 0) {
			free(c);
			e->outstanding--;
			e->sweeping--;
		}
	}
	if (--e->sweeping == 0)
		sweep_end(e);
}

/* ---- RESOLVE SAGA -------------------------------------------------------------------------- */

typedef struct {
	saga_engine *e;
	uint64_t id;
	int mode;
	saga_done_cb cb;
	void *arg;
	int listings, jobs;
	int found, attention_left, failed;
	size_t compensated;
	char sqlstate[6];
	char msg[700];
} resolve_ctx;

static void resolve_finish(resolve_ctx *r)
{
	if (r->listings || r->jobs)
		return;
	saga_engine *e = r->e;
	busy_add(e, r->id, -1);
	char m[800];
	if (r->failed) {
		r->cb(r->arg, 0, r->sqlstate, r->msg);
	} else if (!r->found) {
		snprintf(m, sizeof m, "saga %" PRIu64 " has no open steps on any reachable shard", r->id);
		r->cb(r->arg, 0, "42704", m);
	} else {
		snprintf(m, sizeof m, "saga %" PRIu64 " resolved (%s): %zu step(s) compensated", r->id,
			 r->mode == WIRE_UNDO_OVERWRITE ? "overwrite" : "accept", r->compensated);
		r->cb(r->arg, 1, NULL, m);
	}
	free(r);
	e->outstanding--;
	maybe_free_engine(e);
}

static void on_resolve_job(ujob *j, int status)
{
	resolve_ctx *r = j->arg;
	r->compensated += status == 0 ? j->n : j->i;
	if (status != 0 && !r->failed) {
		r->failed = 1;
		snprintf(r->sqlstate, sizeof r->sqlstate, "%s", status == 1 ? "25000" : j->sqlstate);
		snprintf(r->msg, sizeof r->msg, "saga %" PRIu64 ": %s", r->id, j->msg);
	}
	r->jobs--;
	resolve_finish(r);
}

typedef struct {
	resolve_ctx *r;
	size_t shard;
} rlist_ctx;

static void on_resolve_listing(void *arg, shard_answer *a, const char *error)
{
	rlist_ctx *c = arg;
	resolve_ctx *r = c->r;
	size_t shard = c->shard;
	free(c);
	saga_engine *e = r->e;
	if (!listing_ok(a, error)) {
		if (!r->failed) {
			r->failed = 1;
			snprintf(r->sqlstate, sizeof r->sqlstate, "08006");
			snprintf(r->msg, sizeof r->msg, "shard %zu could not list its saga steps: %s", shard,
				 error ? error : "error");
		}
	} else {
		const wire_response *w = &a->msg.resp;
		char want[24];
		snprintf(want, sizeof want, "%" PRIu64, r->id);
		ujob *j = NULL;
		for (uint32_t i = w->nrows; i-- > 0;) {
			const wire_value *row = w->cells + (size_t)i * w->ncols;
			if (strcmp(row[0].p, want) != 0)
				continue;
			if (!j)
				j = ujob_new(e, r->id, shard, w->nrows, on_resolve_job, r);
			j->modes[j->n] = strcmp(row[2].p, "attention") == 0 ? (uint8_t)r->mode : WIRE_UNDO_NORMAL;
			j->steps[j->n++] = (uint32_t)strtoul(row[1].p, NULL, 10);
		}
		if (j) {
			r->found = 1;
			r->jobs++;
			ujob_next(j);
		}
	}
	shard_answer_free(a);
	r->listings--;
	resolve_finish(r);
}

void saga_resolve(saga_engine *e, uint64_t id, int mode, saga_done_cb cb, void *arg)
{
	char m[200];
	if (hmap_get(&e->running, &id, sizeof id)) {
		snprintf(m, sizeof m, "saga %" PRIu64 " is still running or being compensated by its session", id);
		cb(arg, 0, "55006", m);
		return;
	}
	if (hmap_get(&e->busy, &id, sizeof id)) {
		snprintf(m, sizeof m, "saga %" PRIu64 " is being compensated by the recovery sweep; try again", id);
		cb(arg, 0, "55006", m);
		return;
	}
	if (dlog_is_committed(e->log, id, NULL)) {
		snprintf(m, sizeof m, "saga %" PRIu64 " committed; there is nothing to compensate", id);
		cb(arg, 0, "25000", m);
		return;
	}
	resolve_ctx *r = calloc(1, sizeof *r);
	if (!r) {
		cb(arg, 0, "53200", "out of memory");
		return;
	}
	r->e = e;
	r->id = id;
	r->mode = mode;
	r->cb = cb;
	r->arg = arg;
	busy_add(e, id, 1);
	e->outstanding++;
	size_t n = catalog_nshards(e->cat);
	r->listings = (int)n + 1;
	for (size_t i = 0; i < n; i++) {
		if (catalog_shard_removed(e->cat, i)) {
			r->listings--;
			continue;
		}
		rlist_ctx *c = malloc(sizeof *c);
		if (!c)
			abort();
		c->r = r;
		c->shard = i;
		wire_request q = {.op = WIRE_OP_STATUS, .sql = "sagas", .sql_len = 5};
		if (shard_pool_send(e->pool, i, &q, on_resolve_listing, c) != 0) {
			free(c);
			r->listings--;
		}
	}
	r->listings--;
	resolve_finish(r);
}

/* ---- SHOW SAGAS ---------------------------------------------------------------------------- */

static const char *state_name(sg_state s)
{
	return s == SG_RUNNING ? "running" : s == SG_COMMITTING ? "committing" : "compensating";
}

size_t saga_list(saga_engine *e, saga_row *rows, size_t max)
{
	size_t n = 0, it;
	uint64_t now = now_ms();
	for (hmap_entry *h = hmap_first(&e->running, &it); h && n < max; h = hmap_next(&e->running, h, &it)) {
		saga *s = h->value;
		saga_row *r = &rows[n++];
		memset(r, 0, sizeof *r);
		snprintf(r->saga, sizeof r->saga, "%" PRIu64, s->id);
		snprintf(r->state, sizeof r->state, "%s", state_name(s->state));
		size_t l = 0;
		for (size_t k = 0; k < s->n && l < sizeof r->steps; k++)
			l += (size_t)snprintf(r->steps + l, sizeof r->steps - l, "%s%u@%zu", k ? ", " : "",
					      s->steps[k].step, s->steps[k].shard);
		snprintf(r->age_ms, sizeof r->age_ms, "%" PRIu64, now - s->started_ms);
	}
	for (size_t i = 0; i < e->norphans && n < max; i++) {
		const orphan *o = &e->orphans[i];
		if (hmap_get(&e->running, &o->saga, sizeof o->saga))
			continue;
		saga_row *r = &rows[n++];
		memset(r, 0, sizeof *r);
		snprintf(r->saga, sizeof r->saga, "%" PRIu64, o->saga);
		snprintf(r->state, sizeof r->state, "%s", o->state);
		snprintf(r->steps, sizeof r->steps, "%s", o->steps);
		snprintf(r->detail, sizeof r->detail, "%s", o->detail);
		snprintf(r->age_ms, sizeof r->age_ms, "%" PRIu64, o->age_ms);
	}
	return n;
}

saga_stats saga_get_stats(const saga_engine *e)
{
	return e->stats;
}

/* ---- open / close ---------------------------------------------------------------------------- */

static int env_int(const char *name, int def, int lo, int hi)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	long x = strtol(v, &end, 10);
	if (*end || x < lo || x > hi) {
		fprintf(stderr, "router: %s=%s out of range %d..%d; using %d\n", name, v, lo, hi, def);
		return def;
	}
	return (int)x;
}

saga_engine *saga_open(uv_loop_t *loop, shard_pool *pool, const catalog *cat, const char *data_dir, char *err,
		       size_t errlen)
{
	saga_engine *e = calloc(1, sizeof *e);
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/sagas.log", data_dir);
	e->log = dlog_open(loop, path, err, errlen);
	if (!e->log) {
		free(e);
		return NULL;
	}
	e->loop = loop;
	e->pool = pool;
	e->cat = cat;
	e->retries = env_int("SHARDLITE_SAGA_RETRIES", 4, 0, 100);
	e->backoff_ms = (unsigned)env_int("SHARDLITE_SAGA_BACKOFF_MS", 20, 1, 60000);
	for (size_t i = 0; i < MAX_SHARDS; i++) {
		e->br[i].e = e;
		e->br[i].shard = i;
	}
	hmap_init(&e->running);
	hmap_init(&e->settled);
	hmap_init(&e->busy);
	uv_timer_init(loop, &e->sweep);
	e->sweep.data = e;
	uv_timer_init(loop, &e->end_timer);
	e->end_timer.data = e;
	uv_timer_start(&e->sweep, on_sweep, 0, SWEEP_MS);
	return e;
}

static void maybe_free_engine(saga_engine *e)
{
	if (!e->closing || e->outstanding > 0 || e->nhandles > 0 || e->closing == 2)
		return;
	e->closing = 2;
	dlog_close(e->log);
	size_t it;
	for (hmap_entry *h = hmap_first(&e->running, &it); h; h = hmap_next(&e->running, h, &it)) {
		saga *s = h->value;  /* left to recovery: the sweep at the next start */
		free(s->steps);
		free(s);
	}
	hmap_free(&e->running);
	hmap_free(&e->settled);
	hmap_free(&e->busy);
	free(e->orphans);
	free(e->next_orphans);
	for (size_t i = 0; i < MAX_SHARDS; i++)
		free(e->ending[i]);
	free(e);
}

static void on_handle_closed(uv_handle_t *h)
{
	saga_engine *e = h->data;
	if (h->type == UV_TIMER && h != (uv_handle_t *)&e->sweep && h != (uv_handle_t *)&e->end_timer)
		e = ((breaker *)h->data)->e;  /* a breaker's timer */
	e->nhandles--;
	maybe_free_engine(e);
}

void saga_close(saga_engine *e)
{
	if (!e)
		return;
	e->closing = 1;
	e->nhandles = 2;
	uv_timer_stop(&e->sweep);
	uv_close((uv_handle_t *)&e->sweep, on_handle_closed);
	uv_timer_stop(&e->end_timer);
	uv_close((uv_handle_t *)&e->end_timer, on_handle_closed);
	for (size_t i = 0; i < MAX_SHARDS; i++)
		if (e->br[i].timer_init) {
			e->nhandles++;
			uv_timer_stop(&e->br[i].timer);
			uv_close((uv_handle_t *)&e->br[i].timer, on_handle_closed);
		}
}
