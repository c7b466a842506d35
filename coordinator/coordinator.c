/*
 * coordinator.c — two-phase commit and in-doubt resolution (see
 * coordinator.h for the state machine).
 *
 * Invariants:
 *  - a txn is in `inflight` from coord_commit() until its last phase-two
 *    answer; the sweep never resolves an inflight txn;
 *  - a COMMIT record exists (dlog_is_committed) from before the client is
 *    told "committed" until every participant acknowledged COMMIT PREPARED,
 *    or, for a txn with a decider, the decider's record (_sl_decided) does,
 *    from its Ok answer until a Forget sent only once no participant holds
 *    the txn prepared;
 *  - a txn whose deciding COMMIT was sent is never aborted without a
 *    definite answer (an error or NotFound to the COMMIT or to a Resolve);
 *  - every callback to the session runs exactly once;
 *  - a txn with acked != 0 (its client was told "committed", or it was
 *    recovered from the log) is counted in `unapplied` until it is freed;
 *    its participants still to apply it are those with vote V_OK.
 */
#include "coordinator/coordinator.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/decision_log.h"
#include "txn/failpoint.h"
#include "txn/hmap.h"

#define SWEEP_MS 1000
/* Sweeps list decision records (Status) once in this many, the first one
 * after a start included. */
#define DECIDED_EVERY 10
/* A sweep still waiting for a shard's Status after this long is abandoned
 * (a hung shard must not stop the recovery of the others). */
#define SWEEP_TIMEOUT_MS 5000
#define COMMIT_LATENCIES 16384
/* Reads wait for the first sweep after a start at most this long. */
#define RECOVER_WAIT_MS 3000
/* A participant that accepted PREPARE but has not voted after this long is
 * counted as a NO: the transaction is rolled back and its client told so,
 * rather than waiting forever for a hung shard. */
#define PREPARE_TIMEOUT_MS 10000

typedef enum {
	C_PREPARING = 1, C_LOGGING, C_HELD, C_COMMITTING, C_ABORTING, C_RECOVERING,
	C_HELD_DECIDE,   /* all prepared, the decision held for an older read */
	C_DECIDING,      /* the decider's one-phase Commit (or Resolve) outstanding */
	C_EARLY,         /* prepared early, the transaction still running */
} cstate;

static const char *state_name(cstate s)
{
	switch (s) {
	case C_PREPARING: return "preparing";
	case C_LOGGING: return "logging decision";
	case C_HELD: return "committed, phase two held for a read";
	case C_COMMITTING: return "committing";
	case C_ABORTING: return "aborting";
	case C_RECOVERING: return "recovering (commit)";
	case C_HELD_DECIDE: return "prepared, decision held for a read";
	case C_DECIDING: return "deciding (one-phase commit)";
	case C_EARLY: return "prepared early, running";
	}
	return "?";
}

/* V_APPLIED: a V_OK participant that answered COMMIT PREPARED (or was given
 * up on after COMMIT_RETRIES). */
enum { V_NONE = 0, V_OK, V_READONLY, V_NO, V_APPLIED };

typedef struct ctxn {
	coordinator *c;
	uint64_t txn, ts;
	cstate state;
	size_t n;
	size_t *shards;
	int *vote;
	size_t pending;       /* phase two / rollback answers outstanding */
	size_t prepare_out;   /* PREPARE answers outstanding */
	uv_timer_t *prepare_timer;
	coord_done_cb cb;
	void *arg;
	uint64_t started_ms;
	uint64_t started_us;  /* for the commit latency */
	char sqlstate[6];
	char message[256];
	size_t next_commit;   /* sequential phase two (failpoint testing) */
	int commit_failures;
	uint64_t epoch;       /* set when the decision is durable */
	uint64_t acked;       /* order of acknowledgment, 0 before */
	struct ctxn *held_next;
	size_t decider;       /* index of the deciding participant, NO_DECIDER:
			       * the decision log decides */
	int resolve_tries;    /* Resolve asked after a lost decision answer */
	uv_timer_t *decide_timer;  /* the client's wait for the decision */
	int gave_up;          /* phase two left to the sweep */
	/* an early prepare (coord_prepare_early): participant 0 prepared
	 * naming participant 1 while the session still runs the transaction */
	int early;            /* the session still holds it (no commit or abort yet) */
	int early_out;        /* the early PREPARE's answer outstanding */
	int early_vote;       /* its answer: V_OK or V_NO (sqlstate says why) */
	int early_stale;      /* the transaction went on beyond its two shards */
	int wounded;          /* rolled back for an older transaction */
	size_t early_shard;   /* the shard prepared early */
} ctxn;

#define NO_DECIDER ((size_t)-1)

/* A statement waiting for earlier commits to be applied on its shards. */
typedef struct visible_waiter {
	struct visible_waiter *next;
	uint64_t upto;        /* commits acknowledged up to this one */
	size_t *shards;
	size_t n;
	coord_read_cb cb;
	void *arg;
} visible_waiter;

struct coord_read {
	coord_read *next;
	uint64_t epoch;
	int ready;
	coord_read_cb cb;
	void *arg;
};

/* A change applied at the cut (coord_apply_begin): ordered like phase two. */
struct coord_apply {
	coord_apply *next;
	uint64_t epoch;
	int ready;            /* 0: held behind an older read */
	coord_read_cb cb;
	void *arg;
};

struct coordinator {
	uv_loop_t *loop;
	shard_pool *pool;
	const catalog *cat;
	decision_log *log;
	hmap inflight;        /* txn -> ctxn */
	uv_timer_t sweep;
	int sweeping;         /* STATUS answers outstanding */
	uint64_t nsweeps;     /* sweeps begun (the current one's number) */
	uint64_t sweep_started_ms;
	size_t stale_status;  /* answers of abandoned sweeps still outstanding */
	/* this sweep: decisions settled before it asked, prepared txns seen */
	uint64_t *settled;
	size_t nsettled;
	hmap seen_prepared;   /* txn -> bitmap of shards holding it (this sweep) */
	int sweep_failed;
	/* decision log lost: in-doubt transactions wait for an operator */
	int log_lost;
	hmap doubt;           /* txn -> bitmap (the last complete sweep) */
	/* the consistent cut */
	uint64_t epoch;
	coord_read *reads;    /* reads begun and not yet ended */
	ctxn *held;           /* committed, phase two waiting for older reads */
	size_t committing;    /* transactions in phase two */
	coord_apply *applies; /* begun and not yet ended (held or running) */
	/* visibility of acknowledged commits (coord_on_visible) */
	uint64_t acked;       /* the last ctxn.acked given */
	size_t unapplied;     /* acknowledged, phase two not over */
	visible_waiter *visible;
	/* decisions by the last writer (SHARDLITE_2PC_DECIDER=shard) */
	int shard_decides;
	int early_on;         /* early prepares (SHARDLITE_2PC_EARLY, on by default) */
	hmap lpo_prepared;    /* this sweep: txn -> decider + 1, prepared somewhere */
	hmap lpo_last;        /* the same, of the last complete sweep */
	hmap lpo_on, lpo_on_last;  /* txn -> bitmap of the shards holding it so */
	hmap decided_seen;    /* this sweep: txn -> shard + 1 holding its record */
	hmap gc_candidates;   /* decision records seen, not in flight, last sweep */
	struct forget_item { size_t shard; uint64_t txn; } *forget;
	size_t nforget, capforget;
	/* the latencies of the last COMMIT_LATENCIES commits, in µs */
	uint32_t latency[COMMIT_LATENCIES];
	size_t nlatency, latency_next;
	/* until the first sweep and what it resolved are done, reads wait:
	 * a decided transaction may still be prepared on some participants */
	int recovering;
	size_t recover_ops;   /* the first sweep's resolutions outstanding */
	uint64_t opened_ms;
};

typedef struct {
	ctxn *t;
	size_t i;
} slot;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* A commit was decided: its latency from coord_commit(). */
static void record_latency(coordinator *c, uint64_t started_us)
{
	uint64_t d = now_us() - started_us;
	c->latency[c->latency_next] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	c->latency_next = (c->latency_next + 1) % COMMIT_LATENCIES;
	if (c->nlatency < COMMIT_LATENCIES)
		c->nlatency++;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

size_t coord_commit_latency(const coordinator *c, double *p50_ms, double *p99_ms)
{
	*p50_ms = *p99_ms = 0;
	size_t n = c->nlatency;
	uint32_t *v = n ? malloc(n * sizeof *v) : NULL;
	if (!v)
		return 0;
	memcpy(v, c->latency, n * sizeof *v);
	qsort(v, n, sizeof *v, cmp_u32);
	*p50_ms = v[(n - 1) / 2] / 1000.0;
	*p99_ms = v[(n - 1) * 99 / 100] / 1000.0;
	free(v);
	return n;
}

static void ctxn_free(ctxn *t)
{
	hmap_del(&t->c->inflight, &t->txn, sizeof t->txn);
	if (t->acked)
		t->c->unapplied--;
	free(t->shards);
	free(t->vote);
	free(t);
}

/* A send that failed at once is reported on a later loop turn, like any
 * transport error, so callers never see their callback run inside the
 * loop that is still sending. */
typedef struct {
	uv_timer_t timer;
	shard_cb cb;
	slot *s;
} late_failure;

static void on_late_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_late_failure(uv_timer_t *timer)
{
	late_failure *lf = timer->data;
	lf->cb(lf->s, NULL, "cannot send to the shard");
	uv_close((uv_handle_t *)timer, on_late_closed);
}

static void send_op(ctxn *t, size_t i, wire_op op, shard_cb cb)
{
	wire_request r = {.op = op, .txn = t->txn, .ts = t->ts};
	r.early = op == WIRE_OP_PREPARE && t->state == C_EARLY;
	if (t->decider != NO_DECIDER && op != WIRE_OP_RESOLVE)
		r.decider = (uint32_t)t->shards[t->decider] + 1;
	slot *s = malloc(sizeof *s);
	if (!s)
		abort();  /* cannot even record the failure: nothing safe remains */
	s->t = t;
	s->i = i;
	if (shard_pool_send(t->c->pool, t->shards[i], &r, cb, s) == 0)
		return;
	late_failure *lf = calloc(1, sizeof *lf);
	if (!lf)
		abort();
	lf->cb = cb;
	lf->s = s;
	uv_timer_init(t->c->loop, &lf->timer);
	lf->timer.data = lf;
	uv_timer_start(&lf->timer, on_late_failure, 0, 0);
}

/* ---- the consistent cut ------------------------------------------------------- */

static void phase_two(ctxn *t);
static void start_decide(ctxn *t);

/* Is a read of an epoch smaller than e still running? */
static int older_read_running(const coordinator *c, uint64_t e)
{
	for (const coord_read *r = c->reads; r; r = r->next)
		if (r->epoch < e)
			return 1;
	return 0;
}

/* Has every transaction of epoch <= e finished phase two? */
static int phase_two_done_upto(const coordinator *c, uint64_t e)
{
	for (const coord_apply *a = c->applies; a; a = a->next)
		if (a->epoch <= e)
			return 0;
	if (c->recovering)
		return 0;
	if (c->committing == 0 && !c->held)
		return 1;
	size_t it;
	for (hmap_entry *en = hmap_first(&c->inflight, &it); en; en = hmap_next(&c->inflight, en, &it)) {
		const ctxn *t = en->value;
		if ((t->state == C_COMMITTING || t->state == C_HELD || t->state == C_HELD_DECIDE ||
		     t->state == C_DECIDING) && t->epoch <= e)
			return 0;
	}
	return 1;
}

static void wake_reads(coordinator *c)
{
	for (coord_read *r = c->reads; r; r = r->next) {
		if (r->ready || !phase_two_done_upto(c, r->epoch))
			continue;
		r->ready = 1;
		r->cb(r->arg);
		/* the callback may have ended reads: start over */
		wake_reads(c);
		return;
	}
}

coord_read *coord_read_begin(coordinator *c, coord_read_cb ready, void *arg)
{
	coord_read *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->epoch = c->epoch++;
	r->cb = ready;
	r->arg = arg;
	r->next = c->reads;
	c->reads = r;
	r->ready = phase_two_done_upto(c, r->epoch);
	return r;
}

bool coord_read_ready(const coord_read *r)
{
	return r->ready;
}

void coord_read_end(coordinator *c, coord_read *r)
{
	for (coord_read **pp = &c->reads; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	free(r);
	/* held changes no older read waits for may go on */
restart:
	for (coord_apply *a = c->applies; a; a = a->next)
		if (!a->ready && !older_read_running(c, a->epoch)) {
			a->ready = 1;
			a->cb(a->arg);
			goto restart;  /* the callback may have ended applies */
		}
	ctxn **pp = &c->held;
	while (*pp) {
		ctxn *t = *pp;
		if (!older_read_running(c, t->epoch)) {
			*pp = t->held_next;
			t->held_next = NULL;
			if (t->state == C_HELD_DECIDE)
				start_decide(t);
			else
				phase_two(t);
		} else {
			pp = &t->held_next;
		}
	}
}

coord_apply *coord_apply_begin(coordinator *c, coord_read_cb ready, void *arg)
{
	coord_apply *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->epoch = c->epoch;  /* as a decision becoming durable now (on_durable) */
	a->cb = ready;
	a->arg = arg;
	a->ready = !older_read_running(c, a->epoch);
	a->next = c->applies;
	c->applies = a;
	return a;
}

bool coord_apply_ready(const coord_apply *a)
{
	return a->ready;
}

void coord_apply_end(coordinator *c, coord_apply *a)
{
	for (coord_apply **pp = &c->applies; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	free(a);
	wake_reads(c);
}

/* ---- visibility of acknowledged commits ---------------------------------------- */

/* Is a commit acknowledged up to `upto` still to be applied on one of
 * shards[0..n)? */
static int unapplied_on(const coordinator *c, uint64_t upto, const size_t *shards, size_t n)
{
	if (c->recovering)
		return 1;
	if (c->unapplied == 0)
		return 0;
	size_t it;
	for (hmap_entry *en = hmap_first(&c->inflight, &it); en; en = hmap_next(&c->inflight, en, &it)) {
		const ctxn *t = en->value;
		if (!t->acked || t->acked > upto)
			continue;
		for (size_t i = 0; i < t->n; i++) {
			if (t->vote[i] != V_OK)
				continue;
			for (size_t j = 0; j < n; j++)
				if (shards[j] == t->shards[i])
					return 1;
		}
	}
	return 0;
}

static void wake_visible(coordinator *c)
{
	for (visible_waiter **pp = &c->visible; *pp; pp = &(*pp)->next) {
		visible_waiter *w = *pp;
		if (unapplied_on(c, w->upto, w->shards, w->n))
			continue;
		*pp = w->next;
		w->cb(w->arg);
		free(w->shards);
		free(w);
		/* the callback may have added waiters: start over */
		wake_visible(c);
		return;
	}
}

bool coord_on_visible(coordinator *c, const size_t *shards, size_t n, coord_read_cb ready, void *arg)
{
	if (!unapplied_on(c, c->acked, shards, n))
		return true;
	visible_waiter *w = calloc(1, sizeof *w);
	if (w)
		w->shards = malloc(n * sizeof *shards);
	if (!w || !w->shards) {
		free(w);
		return true;  /* cannot wait: go on (the statement may then miss a commit) */
	}
	memcpy(w->shards, shards, n * sizeof *shards);
	w->n = n;
	w->upto = c->acked;
	w->cb = ready;
	w->arg = arg;
	w->next = c->visible;
	c->visible = w;
	return false;
}

/* ---- forgetting decision records -------------------------------------------------- */

#define FORGET_BATCH 512

/* For requests whose answer changes nothing: a Forget (a record left
 * behind is dropped by a later sweep), the end of an early prepare that
 * found nothing written. */
static void ignore_answer(void *arg, shard_answer *a, const char *error)
{
	(void)arg;
	(void)error;
	shard_answer_free(a);
}

/* Send the queued Forgets, one request per deciding shard. */
static void flush_forget(coordinator *c)
{
	while (c->nforget) {
		size_t shard = c->forget[0].shard, k = 0, keep = 0;
		uint64_t *ids = malloc(c->nforget * sizeof *ids);
		for (size_t i = 0; i < c->nforget; i++) {
			if (c->forget[i].shard == shard) {
				if (ids)
					ids[k++] = c->forget[i].txn;
			} else {
				c->forget[keep++] = c->forget[i];
			}
		}
		c->nforget = keep;
		if (!ids)
			continue;
		wire_request r = {.op = WIRE_OP_FORGET, .ended = ids, .nended = (uint32_t)k};
		shard_pool_send(c->pool, shard, &r, ignore_answer, NULL);
		free(ids);
	}
}

static void queue_forget(coordinator *c, size_t shard, uint64_t txn)
{
	if (c->nforget == c->capforget) {
		size_t cap = c->capforget ? c->capforget * 2 : 64;
		struct forget_item *f = realloc(c->forget, cap * sizeof *f);
		if (!f)
			return;  /* the sweep drops the record later */
		c->forget = f;
		c->capforget = cap;
	}
	c->forget[c->nforget].shard = shard;
	c->forget[c->nforget++].txn = txn;
	if (c->nforget >= FORGET_BATCH)
		flush_forget(c);
}

/* Phase two is over (or was not needed): forget t. */
static void finish(ctxn *t)
{
	coordinator *c = t->c;
	/* Applied everywhere: no participant holds it prepared, so no one will
	 * ask its decider about it again. */
	if (t->decider != NO_DECIDER && !t->gave_up)
		queue_forget(c, t->shards[t->decider], t->txn);
	ctxn_free(t);
	wake_reads(c);
	wake_visible(c);
}

/* ---- phase two ---------------------------------------------------------------- */

static void on_commit_answer(void *arg, shard_answer *a, const char *error);

static void commit_next(ctxn *t)
{
	while (t->next_commit < t->n && t->vote[t->next_commit] != V_OK)
		t->next_commit++;
	if (t->next_commit < t->n)
		send_op(t, t->next_commit++, WIRE_OP_COMMIT_PREPARED, on_commit_answer);
}

/* Phase two is retried by the transaction itself, which stays in flight
 * meanwhile, so reads at a consistent cut wait for it instead of seeing it
 * applied on some shards only.  After COMMIT_RETRIES failures (a shard that
 * cannot apply it: see shard.md's known limits) it is left to the sweep and
 * logged loudly rather than holding reads forever. */
#define COMMIT_RETRY_MS 200
#define COMMIT_RETRIES 50

typedef struct {
	uv_timer_t timer;
	ctxn *t;
	size_t i;
} commit_retry;

static void on_retry_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_commit_retry(uv_timer_t *timer)
{
	commit_retry *r = timer->data;
	send_op(r->t, r->i, WIRE_OP_COMMIT_PREPARED, on_commit_answer);
	uv_close((uv_handle_t *)timer, on_retry_closed);
}

static void on_commit_answer(void *arg, shard_answer *a, const char *error)
{
	slot *s = arg;
	if (!s)
		return;
	ctxn *t = s->t;
	size_t i = s->i;
	free(s);
	int ok = a && (a->msg.resp.status == WIRE_OK || a->msg.resp.status == WIRE_NOT_FOUND);
	if (!ok) {
		const char *why = error ? error : (a && a->msg.resp.message ? a->msg.resp.message : "error");
		commit_retry *r = ++t->commit_failures <= COMMIT_RETRIES ? calloc(1, sizeof *r) : NULL;
		if (r) {
			fprintf(stderr, "coordinator: COMMIT PREPARED of %" PRIu64 " on shard %zu failed (%s); retrying\n",
				t->txn, t->shards[i], why);
			shard_answer_free(a);
			r->t = t;
			r->i = i;
			uv_timer_init(t->c->loop, &r->timer);
			r->timer.data = r;
			uv_timer_start(&r->timer, on_commit_retry, COMMIT_RETRY_MS, 0);
			return;
		}
		fprintf(stderr, "coordinator: COMMIT PREPARED of %" PRIu64 " on shard %zu keeps failing (%s); "
				"leaving it to the recovery sweep\n", t->txn, t->shards[i], why);
		t->gave_up = 1;
	}
	shard_answer_free(a);
	t->vote[i] = V_APPLIED;
	FAILPOINT("coord-between-commits");
	coordinator *c = t->c;
	if (--t->pending > 0) {
		if (failpoints_armed)
			commit_next(t);
		wake_visible(c);
		return;
	}
	/* The decision stays in the log; the sweep retires it once no shard
	 * holds the transaction prepared (and commits it where one still does). */
	FAILPOINT("coord-after-commits");
	c->committing--;
	finish(t);
}

static void phase_two(ctxn *t)
{
	t->state = C_COMMITTING;
	t->pending = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->vote[i] == V_OK)
			t->pending++;
	if (t->pending == 0) {
		finish(t);  /* the decider was the only writer */
		return;
	}
	t->c->committing++;
	t->next_commit = 0;
	if (failpoints_armed) {
		/* one at a time, so that a crash between them is a real state */
		commit_next(t);
		return;
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->vote[i] == V_OK)
			send_op(t, i, WIRE_OP_COMMIT_PREPARED, on_commit_answer);
}

static void on_durable(void *arg, int status)
{
	ctxn *t = arg;
	coordinator *c = t->c;
	FAILPOINT("coord-after-decision");
	record_latency(c, t->started_us);
	t->epoch = c->epoch;
	t->acked = ++c->acked;
	c->unapplied++;
	coord_done_cb cb = t->cb;
	void *cb_arg = t->arg;
	t->cb = NULL;
	if (older_read_running(c, t->epoch)) {
		t->state = C_HELD;
		t->held_next = c->held;
		c->held = t;
	} else {
		phase_two(t);
	}
	/* Only now, held or in phase two, is t seen by what the client sends
	 * next, even from inside this callback: its reads wait for t. */
	cb(cb_arg, 1, NULL, NULL);
}

/* ---- abort ------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
	free(h);
}

/* t's one-shot timers (prepare_timer, decide_timer): *tp NULL when none,
 * or when out of memory (the timeout then never fires). */
static void start_timer(ctxn *t, uv_timer_t **tp, uv_timer_cb cb, uint64_t ms)
{
	*tp = malloc(sizeof **tp);
	if (*tp) {
		uv_timer_init(t->c->loop, *tp);
		(*tp)->data = t;
		uv_timer_start(*tp, cb, ms, 0);
	}
}

static void stop_timer(uv_timer_t **tp)
{
	if (*tp) {
		uv_timer_stop(*tp);
		uv_close((uv_handle_t *)*tp, on_timer_closed);
		*tp = NULL;
	}
}

/* An aborted transaction is forgotten once every answer it waits for, to
 * its PREPAREs (after a timeout) and to its ROLLBACK PREPAREDs, is in. */
static void abort_done_check(ctxn *t)
{
	if (t->pending == 0 && t->prepare_out == 0 && !t->early)
		ctxn_free(t);
}

static void on_abort_answer(void *arg, shard_answer *a, const char *error)
{
	slot *s = arg;
	shard_answer_free(a);
	if (!s)
		return;
	ctxn *t = s->t;
	free(s);
	t->pending--;
	abort_done_check(t);
}

static void abort_all(ctxn *t)
{
	t->state = C_ABORTING;
	stop_timer(&t->prepare_timer);
	if (t->cb) {
		t->cb(t->arg, 0, t->sqlstate[0] ? t->sqlstate : "40001",
		      t->message[0] ? t->message : "the transaction was rolled back");
		t->cb = NULL;
	}
	size_t k = 0;  /* (a wound's ROLLBACK PREPARED may still be pending) */
	for (size_t i = 0; i < t->n; i++)
		if (t->vote[i] != V_READONLY)
			k++;
	t->pending += k;
	if (k == 0) {
		abort_done_check(t);
		return;
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->vote[i] != V_READONLY)
			send_op(t, i, WIRE_OP_ROLLBACK_PREPARED, on_abort_answer);
}

static void on_prepare_timeout(uv_timer_t *timer)
{
	ctxn *t = timer->data;
	if (t->state != C_PREPARING)
		return;
	for (size_t i = 0; i < t->n; i++)
		if (t->vote[i] == V_NONE && i != t->decider) {
			t->vote[i] = V_NO;
			if (!t->sqlstate[0]) {
				snprintf(t->sqlstate, sizeof t->sqlstate, "40001");
				snprintf(t->message, sizeof t->message,
					 "shard %zu did not answer PREPARE within %d ms; the transaction was rolled back",
					 t->shards[i], PREPARE_TIMEOUT_MS);
			}
		}
	fprintf(stderr, "coordinator: transaction %" PRIu64 ": %s\n", t->txn, t->message);
	/* A late YES is harmless: the ROLLBACK PREPARED sent now follows the
	 * PREPARE on the same connection. */
	abort_all(t);
}

/* ---- the decision by the last writer -------------------------------------------------
 *
 * Every other participant is prepared (each knows the decider); the
 * decider's one-phase Commit, which records the decision in the same local
 * transaction, is the commit point.  Its commit makes the transaction
 * visible there, so it is ordered like phase two: it has an epoch and waits
 * for older reads.  Once sent, its outcome is never guessed: without an
 * answer the decider is asked (Resolve), which rolls the transaction back
 * if the Commit has not arrived, so the answer stays true. */

#define RESOLVE_RETRY_MS 200
#define RESOLVE_RETRIES 50

static void on_decide_answer(void *arg, shard_answer *a, const char *error);

/* A decider that takes this long to answer leaves its client with 08007
 * (the outcome is not known yet); the transaction stays in flight until
 * the answer comes, and ends as it says. */
#define DECIDE_TIMEOUT_MS 10000

/* The client hears that the outcome is not known (yet). */
static void tell_unknown(ctxn *t)
{
	if (t->cb)
		t->cb(t->arg, 0, "08007", "transaction resolution unknown: the deciding shard does not answer");
	t->cb = NULL;
}

static void on_decide_timeout(uv_timer_t *timer)
{
	ctxn *t = timer->data;
	stop_timer(&t->decide_timer);
	fprintf(stderr, "coordinator: shard %zu has not answered the commit of transaction %" PRIu64
			" for %d ms; its client is told the outcome is unknown\n",
		t->shards[t->decider], t->txn, DECIDE_TIMEOUT_MS);
	tell_unknown(t);
}

static void decided(ctxn *t)
{
	coordinator *c = t->c;
	FAILPOINT("coord-after-decide");
	stop_timer(&t->decide_timer);
	if (t->cb)
		record_latency(c, t->started_us);
	c->committing--;
	t->vote[t->decider] = V_APPLIED;
	t->acked = ++c->acked;
	c->unapplied++;
	coord_done_cb cb = t->cb;
	void *cb_arg = t->arg;
	t->cb = NULL;
	phase_two(t);  /* may free t */
	if (cb)
		cb(cb_arg, 1, NULL, NULL);
}

static void not_decided(ctxn *t, const char *sqlstate, const char *message)
{
	coordinator *c = t->c;
	stop_timer(&t->decide_timer);
	c->committing--;
	if (!t->sqlstate[0]) {
		snprintf(t->sqlstate, sizeof t->sqlstate, "%s", sqlstate);
		snprintf(t->message, sizeof t->message, "%s", message);
	}
	abort_all(t);
	wake_reads(c);
}

static void on_resolve_retry(uv_timer_t *timer)
{
	ctxn *t = timer->data;
	uv_close((uv_handle_t *)timer, on_timer_closed);
	send_op(t, t->decider, WIRE_OP_RESOLVE, on_decide_answer);
}

/* The Commit or a Resolve went unanswered (or Resolve could not tell). */
static void ask_decider(ctxn *t, const char *why)
{
	coordinator *c = t->c;
	if (++t->resolve_tries > RESOLVE_RETRIES) {
		fprintf(stderr, "coordinator: the outcome of transaction %" PRIu64 " is unknown (shard %zu: %s); "
				"the recovery sweep resolves it once the shard answers\n",
			t->txn, t->shards[t->decider], why);
		c->committing--;
		stop_timer(&t->decide_timer);
		tell_unknown(t);
		ctxn_free(t);
		wake_reads(c);
		wake_visible(c);
		return;
	}
	uv_timer_t *timer = malloc(sizeof *timer);
	if (!timer)
		abort();
	uv_timer_init(c->loop, timer);
	timer->data = t;
	uv_timer_start(timer, on_resolve_retry, t->resolve_tries == 1 ? 0 : RESOLVE_RETRY_MS, 0);
}

static void on_decide_answer(void *arg, shard_answer *a, const char *error)
{
	slot *s = arg;
	if (!s)
		return;
	ctxn *t = s->t;
	free(s);
	if (!a) {
		ask_decider(t, error ? error : "no answer");
		return;
	}
	wire_status st = a->msg.resp.status;
	char sqlstate[6], message[256];
	snprintf(sqlstate, sizeof sqlstate, "%s", a->msg.resp.sqlstate ? a->msg.resp.sqlstate : "40001");
	snprintf(message, sizeof message, "%s", a->msg.resp.message ? a->msg.resp.message : "");
	shard_answer_free(a);
	if (st == WIRE_OK) {
		decided(t);
	} else if (st == WIRE_NOT_FOUND) {
		char m[256];
		snprintf(m, sizeof m, "shard %zu no longer knows the transaction (a conflict, idle timeout or restart)",
			 t->shards[t->decider]);
		not_decided(t, "40001", m);
	} else if (t->resolve_tries) {
		ask_decider(t, message);  /* Resolve could not tell yet */
	} else {
		not_decided(t, sqlstate, message[0] ? message : "COMMIT failed");
	}
}

static void start_decide(ctxn *t)
{
	t->state = C_DECIDING;
	t->c->committing++;
	start_timer(t, &t->decide_timer, on_decide_timeout, DECIDE_TIMEOUT_MS);
	send_op(t, t->decider, WIRE_OP_COMMIT, on_decide_answer);
}

static void decide(ctxn *t)
{
	coordinator *c = t->c;
	t->epoch = c->epoch;
	if (older_read_running(c, t->epoch)) {
		t->state = C_HELD_DECIDE;
		t->held_next = c->held;
		c->held = t;
		return;
	}
	start_decide(t);
}

/* ---- phase one ---------------------------------------------------------------- */

static void phase_one_done(ctxn *t);

/* A NO vote: keep the first reason. */
static void vote_no(ctxn *t, size_t i, shard_answer *a, const char *error)
{
	if (t->sqlstate[0])
		return;
	if (error) {
		snprintf(t->sqlstate, sizeof t->sqlstate, "08006");
		snprintf(t->message, sizeof t->message, "%s", error);
	} else if (a->msg.resp.status == WIRE_NOT_FOUND) {
		snprintf(t->sqlstate, sizeof t->sqlstate, "40001");
		snprintf(t->message, sizeof t->message,
			 "shard %zu no longer knows the transaction (idle timeout or restart)", t->shards[i]);
	} else {
		snprintf(t->sqlstate, sizeof t->sqlstate, "%s", a->msg.resp.sqlstate ? a->msg.resp.sqlstate : "40001");
		snprintf(t->message, sizeof t->message, "%s", a->msg.resp.message ? a->msg.resp.message : "PREPARE failed");
	}
}

static void on_prepare_answer(void *arg, shard_answer *a, const char *error)
{
	slot *s = arg;
	if (!s)
		return;
	ctxn *t = s->t;
	size_t i = s->i;
	free(s);
	t->prepare_out--;
	if (t->state != C_PREPARING) {
		/* timed out: the outcome is already decided (abort) */
		shard_answer_free(a);
		abort_done_check(t);
		return;
	}
	if (a && a->msg.resp.status == WIRE_OK) {
		t->vote[i] = V_OK;
	} else if (a && a->msg.resp.status == WIRE_READ_ONLY) {
		t->vote[i] = V_READONLY;
	} else {
		t->vote[i] = V_NO;
		vote_no(t, i, a, error);
	}
	shard_answer_free(a);
	if (t->prepare_out > 0)
		return;
	phase_one_done(t);
}

/* Every PREPARE answered (state C_PREPARING): decide, or abort. */
static void phase_one_done(ctxn *t)
{
	stop_timer(&t->prepare_timer);
	FAILPOINT("coord-after-prepare");
	int all_yes = 1, writers = 0;
	for (size_t j = 0; j < t->n; j++) {
		if (t->vote[j] == V_NO)
			all_yes = 0;
		if (t->vote[j] == V_OK)
			writers++;
	}
	if (!all_yes) {
		abort_all(t);
		return;
	}
	if (t->decider != NO_DECIDER) {
		decide(t);
		return;
	}
	if (writers == 0) {
		t->cb(t->arg, 1, NULL, NULL);
		ctxn_free(t);
		return;
	}
	t->state = C_LOGGING;
	uint16_t *ok = calloc(t->n, sizeof *ok);
	uint16_t k = 0;
	for (size_t j = 0; ok && j < t->n; j++)
		if (t->vote[j] == V_OK)
			ok[k++] = (uint16_t)t->shards[j];
	if (!ok || dlog_commit(t->c->log, t->txn, ok, k, on_durable, t) != 0) {
		free(ok);
		snprintf(t->sqlstate, sizeof t->sqlstate, "53200");
		snprintf(t->message, sizeof t->message, "out of memory logging the decision");
		abort_all(t);
		return;
	}
	free(ok);
}

/* ---- early prepare ------------------------------------------------------------------
 *
 * A transaction that wrote on one shard A and sends its next write to a
 * second shard B has its PREPARE of A sent at once, naming B the decider,
 * while B runs the statement: at COMMIT only B's deciding commit is left,
 * one durable write on the commit path instead of two.  Until the session
 * commits or aborts, the ctxn is C_EARLY and stays in flight (so no sweep
 * resolves A's record behind the session's back).
 *
 * A prepared transaction cannot be wounded by the shard, and this one may
 * still wait for a lock on B held by an older transaction O that now waits
 * for its row on A: a cycle wound-wait no longer breaks by itself.  So A
 * tells the router (an interim Waiting answer to O's statement) and the
 * router wounds it here: ROLLBACK PREPARED on A, which frees O, and the
 * session's COMMIT answers 40001.  Once COMMIT has arrived (C_EARLY is
 * over) nothing is wounded: the transaction waits for nothing any more, and
 * O waits for its phase two as for any prepared transaction.
 *
 *   coord_prepare_early ─► C_EARLY ──coord_commit, still {A, B}──► C_PREPARING
 *        │                    │            (A's vote is the early answer)
 *        │                    ├─coord_commit, grown or back on A──► C_PREPARING
 *        │                    │   (every participant but a new decider, A
 *        │                    │    included, prepared again: A's decider
 *        │                    │    is rewritten before anyone decides)
 *        │                    └─coord_early_abort, or wounded then any end
 *        │                                                       ──► C_ABORTING
 */

/* The participant whose one-phase commit decides: shard `hot` if it wrote
 * (the transaction waited for a row lock there: others may be waiting for
 * its rows, which the decider releases first), else the last writer;
 * never shard `not` (one prepared early).  NO_DECIDER: the decision log
 * decides. */
static size_t pick_decider(const coordinator *c, const size_t *shards, const bool *wrote, size_t n, size_t not,
			   size_t hot)
{
	size_t d = NO_DECIDER;
	if (c->shard_decides && n >= 2)
		for (size_t i = 0; i < n; i++)
			if (wrote[i] && shards[i] != not && (d == NO_DECIDER || shards[d] != hot))
				d = i;
	return d;
}

/* At COMMIT, A's early prepare found nothing written (ReadOnly): the shard
 * kept the transaction running there, in case more came; end it. */
static void early_vote_taken(ctxn *t)
{
	t->vote[0] = t->early_vote;
	if (t->early_vote == V_READONLY) {
		wire_request r = {.op = WIRE_OP_ROLLBACK, .txn = t->txn, .ts = t->ts};
		shard_pool_send(t->c->pool, t->shards[0], &r, ignore_answer, NULL);
	}
}

static void on_early_answer(void *arg, shard_answer *a, const char *error)
{
	slot *s = arg;
	ctxn *t = s->t;
	free(s);
	t->early_out = 0;
	t->prepare_out--;
	if (a && (a->msg.resp.status == WIRE_OK || a->msg.resp.status == WIRE_READ_ONLY)) {
		t->early_vote = a->msg.resp.status == WIRE_OK ? V_OK : V_READONLY;
	} else {
		t->early_vote = V_NO;
		if (!t->early_stale)  /* else A's second PREPARE answers for it */
			vote_no(t, 0, a, error);
	}
	shard_answer_free(a);
	if (t->early_vote == V_OK && t->state != C_ABORTING)
		FAILPOINT("coord-after-early-prepare");  /* before COMMIT or after it */
	if (t->state == C_EARLY)
		return;  /* the session has not ended the transaction yet */
	if (t->state == C_ABORTING) {
		abort_done_check(t);
		return;
	}
	if (t->state != C_PREPARING)
		return;
	if (!t->early_stale)
		early_vote_taken(t);  /* else A was prepared again: that answer counts */
	if (t->prepare_out == 0)
		phase_one_done(t);
}

int coord_prepare_early(coordinator *c, uint64_t txn, uint64_t ts, size_t shard, size_t decider)
{
	if (!c->early_on || shard == decider || hmap_get(&c->inflight, &txn, sizeof txn))
		return -1;
	ctxn *t = calloc(1, sizeof *t);
	if (t) {
		t->shards = calloc(2, sizeof *t->shards);
		t->vote = calloc(2, sizeof *t->vote);
	}
	if (!t || !t->shards || !t->vote || hmap_put(&c->inflight, &txn, sizeof txn, t) != 0) {
		if (t) {
			free(t->shards);
			free(t->vote);
		}
		free(t);
		return -1;
	}
	t->c = c;
	t->txn = txn;
	t->ts = ts;
	t->n = 2;
	t->shards[0] = shard;
	t->shards[1] = decider;
	t->decider = 1;
	t->state = C_EARLY;
	t->early = 1;
	t->early_out = 1;
	t->early_shard = shard;
	t->prepare_out = 1;
	t->started_ms = now_ms();
	FAILPOINT("coord-before-prepare");
	send_op(t, 0, WIRE_OP_PREPARE, on_early_answer);
	return 0;
}

void coord_early_stale(coordinator *c, uint64_t txn)
{
	ctxn *t = hmap_get(&c->inflight, &txn, sizeof txn);
	if (t && t->early)
		t->early_stale = 1;
}

/* Roll A back now; the ctxn stays for the session to end. */
static void wound(ctxn *t)
{
	fprintf(stderr, "coordinator: transaction %" PRIu64 ", prepared early on shard %zu, wounded: an older "
			"transaction waits for its row there\n", t->txn, t->early_shard);
	t->wounded = 1;
	t->pending++;
	send_op(t, 0, WIRE_OP_ROLLBACK_PREPARED, on_abort_answer);
}

static void on_pool_waiting(void *arg, size_t shard, uint64_t txn)
{
	coordinator *c = arg;
	ctxn *t = hmap_get(&c->inflight, &txn, sizeof txn);
	if (t && t->early && !t->wounded && t->early_shard == shard)
		wound(t);
}

void coord_early_abort(coordinator *c, uint64_t txn)
{
	ctxn *t = hmap_get(&c->inflight, &txn, sizeof txn);
	if (!t || !t->early)
		return;
	t->early = 0;
	t->state = C_ABORTING;
	if (!t->wounded) {
		t->pending++;
		send_op(t, 0, WIRE_OP_ROLLBACK_PREPARED, on_abort_answer);
	}
	abort_done_check(t);
}

/* coord_commit() of a transaction prepared early. */
static void early_commit(ctxn *t, const size_t *shards, const bool *wrote, size_t n, size_t hot, coord_done_cb cb,
			 void *arg)
{
	coordinator *c = t->c;
	t->early = 0;
	t->cb = cb;
	t->arg = arg;
	t->started_ms = now_ms();
	t->started_us = now_us();
	int fast = !t->early_stale && !t->wounded && n == 2 && wrote[0] && wrote[1] &&
		   ((shards[0] == t->shards[0] && shards[1] == t->shards[1]) ||
		    (shards[1] == t->shards[0] && shards[0] == t->shards[1]));
	if (fast) {
		t->state = C_PREPARING;
		if (t->early_out) {
			start_timer(t, &t->prepare_timer, on_prepare_timeout, PREPARE_TIMEOUT_MS);
			return;  /* on_early_answer goes on */
		}
		early_vote_taken(t);
		phase_one_done(t);
		return;
	}
	/* Every participant of now, A among them. */
	size_t *sh = calloc(n ? n : 1, sizeof *sh);
	int *vote = calloc(n ? n : 1, sizeof *vote);
	if (!sh || !vote) {
		free(sh);
		free(vote);
		snprintf(t->sqlstate, sizeof t->sqlstate, "53200");
		snprintf(t->message, sizeof t->message, "out of memory");
		abort_all(t);  /* A and B, at least */
		return;
	}
	memcpy(sh, shards, n * sizeof *sh);
	free(t->shards);
	free(t->vote);
	t->shards = sh;
	t->vote = vote;
	t->n = n;
	t->early_stale = 1;  /* the early answer no longer counts */
	if (t->wounded) {
		if (!t->sqlstate[0] || strcmp(t->sqlstate, "40001") != 0) {
			snprintf(t->sqlstate, sizeof t->sqlstate, "40001");
			snprintf(t->message, sizeof t->message,
				 "transaction rolled back: an older transaction needed one of its rows (wound-wait)");
		}
		abort_all(t);
		return;
	}
	t->sqlstate[0] = 0;
	t->message[0] = 0;
	/* the decider: the last writer that was not prepared early */
	t->decider = pick_decider(c, shards, wrote, n, t->early_shard, hot);
	t->state = C_PREPARING;
	FAILPOINT("coord-before-prepare");
	t->prepare_out = (size_t)t->early_out + (t->decider == NO_DECIDER ? n : n - 1);
	start_timer(t, &t->prepare_timer, on_prepare_timeout, PREPARE_TIMEOUT_MS);
	for (size_t i = 0; i < n; i++)
		if (i != t->decider)
			send_op(t, i, WIRE_OP_PREPARE, on_prepare_answer);
}

void coord_commit(coordinator *c, uint64_t txn, uint64_t ts, const size_t *shards, const bool *wrote,
		  size_t n, size_t hot, coord_done_cb cb, void *arg)
{
	ctxn *t = hmap_get(&c->inflight, &txn, sizeof txn);
	if (t && t->early) {
		early_commit(t, shards, wrote, n, hot, cb, arg);
		return;
	}
	t = calloc(1, sizeof *t);
	if (t) {
		t->shards = calloc(n ? n : 1, sizeof *t->shards);
		t->vote = calloc(n ? n : 1, sizeof *t->vote);
	}
	if (!t || !t->shards || !t->vote || hmap_put(&c->inflight, &txn, sizeof txn, t) != 0) {
		if (t) {
			free(t->shards);
			free(t->vote);
		}
		free(t);
		cb(arg, 0, "53200", "out of memory");
		return;
	}
	t->c = c;
	t->txn = txn;
	t->ts = ts;
	t->cb = cb;
	t->arg = arg;
	t->n = n;
	t->state = C_PREPARING;
	t->started_ms = now_ms();
	t->started_us = now_us();
	memcpy(t->shards, shards, n * sizeof *shards);
	t->decider = pick_decider(c, shards, wrote, n, SIZE_MAX, hot);
	FAILPOINT("coord-before-prepare");
	t->prepare_out = t->decider == NO_DECIDER ? n : n - 1;
	start_timer(t, &t->prepare_timer, on_prepare_timeout, PREPARE_TIMEOUT_MS);
	for (size_t i = 0; i < n; i++)
		if (i != t->decider)
			send_op(t, i, WIRE_OP_PREPARE, on_prepare_answer);
}

/* ---- recovery: the sweep ------------------------------------------------------- */

typedef struct {
	coordinator *c;
	size_t shard;
	uint64_t txn;
} sweep_ctx;

static void recover_op_done(coordinator *c);

static void on_resolved(void *arg, shard_answer *a, const char *error)
{
	sweep_ctx *s = arg;
	coordinator *c = s->c;
	shard_answer_free(a);
	free(s);
	recover_op_done(c);
}

/* decider: the deciding shard + 1 whose answer this applies, 0 none */
static void resolve(coordinator *c, size_t shard, uint64_t txn, int commit, uint32_t decider)
{
	fprintf(stderr, "coordinator: resolving in-doubt transaction %" PRIu64 " on shard %zu: %s\n", txn, shard,
		commit ? "COMMIT (decision logged)" : "ROLLBACK (no commit decision: presumed abort)");
	sweep_ctx *s = malloc(sizeof *s);
	if (!s)
		return;
	s->c = c;
	s->shard = shard;
	s->txn = txn;
	wire_request r = {.op = commit ? WIRE_OP_COMMIT_PREPARED : WIRE_OP_ROLLBACK_PREPARED, .txn = txn,
			  .decider = decider};
	if (c->recovering)
		c->recover_ops++;
	if (shard_pool_send(c->pool, shard, &r, on_resolved, s) != 0) {
		free(s);
		recover_op_done(c);
	}
}

static void end_recovery(coordinator *c)
{
	c->recovering = 0;
	wake_reads(c);
	wake_visible(c);
}

/* Reads may go once the first sweep and the resolutions it started are
 * done (recovering 2: the sweep is over). */
static void recover_check(coordinator *c)
{
	if (c->recovering == 2 && c->recover_ops == 0)
		end_recovery(c);
}

/* A resolution started while recovering has its answer. */
static void recover_op_done(coordinator *c)
{
	if (c->recovering && c->recover_ops > 0)
		c->recover_ops--;
	recover_check(c);
}

/* A transaction prepared on `shard` whose decider is another shard: ask
 * the decider what became of it, then resolve it here. */
typedef struct {
	coordinator *c;
	size_t shard;
	uint64_t txn;
	size_t decider;
} ask_ctx;

static void on_asked(void *arg, shard_answer *a, const char *error)
{
	ask_ctx *q = arg;
	coordinator *c = q->c;
	if (a && (a->msg.resp.status == WIRE_OK || a->msg.resp.status == WIRE_NOT_FOUND)) {
		int commit = a->msg.resp.status == WIRE_OK;
		if (!hmap_get(&c->inflight, &q->txn, sizeof q->txn))
			resolve(c, q->shard, q->txn, commit, (uint32_t)q->decider + 1);
	} else {
		fprintf(stderr, "coordinator: cannot learn the outcome of transaction %" PRIu64
				" from its deciding shard %zu (%s); asking again at the next sweep\n",
			q->txn, q->decider,
			error ? error : (a && a->msg.resp.message ? a->msg.resp.message : "error"));
	}
	shard_answer_free(a);
	free(q);
	recover_op_done(c);
}

static void ask_and_resolve(coordinator *c, size_t shard, uint64_t txn, size_t decider)
{
	ask_ctx *q = malloc(sizeof *q);
	if (!q)
		return;
	q->c = c;
	q->shard = shard;
	q->txn = txn;
	q->decider = decider;
	wire_request r = {.op = WIRE_OP_RESOLVE, .txn = txn};
	if (c->recovering)
		c->recover_ops++;
	if (shard_pool_send(c->pool, decider, &r, on_asked, q) != 0) {
		free(q);
		recover_op_done(c);
	}
}

typedef struct {
	coordinator *c;
	size_t shard;
	uint64_t sweep;       /* nsweeps when sent */
} status_ctx;

/* A logged decision is finished when no participant still holds it
 * prepared.  Only decisions already settled (not in flight) when the sweep
 * sent its STATUS requests can be judged by their answers. */
static void sweep_finish(coordinator *c)
{
	if (!c->sweep_failed) {
		/* Decision records seen by the last sweep, whose transactions were
		 * then no longer in flight: if no shard holds one prepared now, none
		 * ever will again, and no one will ask for it. */
		size_t it;
		hmap keep;
		hmap_init(&keep);
		for (hmap_entry *e = hmap_first(&c->gc_candidates, &it); e; e = hmap_next(&c->gc_candidates, e, &it)) {
			uint64_t txn;
			memcpy(&txn, e->key, sizeof txn);
			if (!hmap_get(&c->lpo_prepared, &txn, sizeof txn) && !hmap_get(&c->inflight, &txn, sizeof txn))
				queue_forget(c, (size_t)((uintptr_t)e->value - 1), txn);
			else
				hmap_put(&keep, &txn, sizeof txn, e->value);  /* still prepared somewhere */
		}
		flush_forget(c);
		hmap_free(&c->gc_candidates);
		c->gc_candidates = keep;
		for (hmap_entry *e = hmap_first(&c->decided_seen, &it); e; e = hmap_next(&c->decided_seen, e, &it))
			hmap_put(&c->gc_candidates, e->key, sizeof(uint64_t), e->value);
		hmap_free(&c->lpo_last);
		c->lpo_last = c->lpo_prepared;
		hmap_init(&c->lpo_prepared);
		hmap_free(&c->lpo_on_last);
		c->lpo_on_last = c->lpo_on;
		hmap_init(&c->lpo_on);
		for (size_t i = 0; i < c->nsettled; i++)
			if (!hmap_get(&c->seen_prepared, &c->settled[i], sizeof c->settled[i]))
				dlog_done(c->log, c->settled[i]);
		/* what is in doubt now: prepared, not in flight, no logged decision */
		hmap_free(&c->doubt);
		hmap_init(&c->doubt);
		for (hmap_entry *e = hmap_first(&c->seen_prepared, &it); e; e = hmap_next(&c->seen_prepared, e, &it)) {
			uint64_t txn;
			memcpy(&txn, e->key, sizeof txn);
			if (!hmap_get(&c->inflight, &txn, sizeof txn) && !dlog_is_committed(c->log, txn, NULL))
				hmap_put(&c->doubt, &txn, sizeof txn, e->value);
		}
		if (c->log_lost && c->doubt.count == 0) {
			c->log_lost = 0;
			fprintf(stderr, "coordinator: every transaction in doubt since the decision log was lost is "
					"resolved; automatic recovery resumes\n");
		}
	}
	free(c->settled);
	c->settled = NULL;
	c->nsettled = 0;
	hmap_free(&c->seen_prepared);
	hmap_init(&c->seen_prepared);
	hmap_free(&c->lpo_prepared);
	hmap_init(&c->lpo_prepared);
	hmap_free(&c->lpo_on);
	hmap_init(&c->lpo_on);
	hmap_free(&c->decided_seen);
	hmap_init(&c->decided_seen);
	c->sweep_failed = 0;
	if (c->recovering == 1) {
		c->recovering = 2;  /* the first sweep is over: its resolutions remain */
		recover_check(c);
	}
}

static void on_status(void *arg, shard_answer *a, const char *error)
{
	status_ctx *s = arg;
	coordinator *c = s->c;
	if (s->sweep != c->nsweeps || !c->sweeping) {
		/* the answer of an abandoned sweep */
		c->stale_status--;
		shard_answer_free(a);
		free(s);
		return;
	}
	if (!a || a->msg.resp.status != WIRE_OK) {
		c->sweep_failed = 1;
	} else {
		wire_response *r = &a->msg.resp;
		for (uint32_t i = 0; i < r->nrows && r->ncols >= 2; i++) {
			const wire_value *row = r->cells + (size_t)i * r->ncols;
			if (row[0].type != WIRE_TEXT || row[1].type != WIRE_TEXT)
				continue;
			uint64_t txn = strtoull(row[0].p, NULL, 10);
			if (strcmp(row[1].p, "decided") == 0) {
				if (!hmap_get(&c->inflight, &txn, sizeof txn))
					hmap_put(&c->decided_seen, &txn, sizeof txn, (void *)(uintptr_t)(s->shard + 1));
				continue;
			}
			if (strcmp(row[1].p, "prepared") != 0)
				continue;
			if (r->ncols >= 7 && row[6].type == WIRE_TEXT && ((const char *)row[6].p)[0]) {
				/* decided by another shard's commit: ask it */
				size_t decider = (size_t)strtoull(row[6].p, NULL, 10);
				hmap_put(&c->lpo_prepared, &txn, sizeof txn, (void *)(uintptr_t)(decider + 1));
				uintptr_t on = (uintptr_t)hmap_get(&c->lpo_on, &txn, sizeof txn);
				on |= (uintptr_t)1 << (s->shard % (sizeof(uintptr_t) * 8));
				hmap_put(&c->lpo_on, &txn, sizeof txn, (void *)on);
				if (hmap_get(&c->inflight, &txn, sizeof txn))
					continue;
				ask_and_resolve(c, s->shard, txn, decider);
				continue;
			}
			uintptr_t bits = (uintptr_t)hmap_get(&c->seen_prepared, &txn, sizeof txn);
			bits |= (uintptr_t)1 << (s->shard % (sizeof(uintptr_t) * 8));
			hmap_put(&c->seen_prepared, &txn, sizeof txn, (void *)bits);
			if (hmap_get(&c->inflight, &txn, sizeof txn))
				continue;
			int committed = dlog_is_committed(c->log, txn, NULL);
			if (c->log_lost && !committed)
				continue;  /* the operator decides (coord_force) */
			resolve(c, s->shard, txn, committed, 0);
		}
	}
	shard_answer_free(a);
	free(s);
	if (--c->sweeping == 0)
		sweep_finish(c);
}

static void on_sweep(uv_timer_t *timer)
{
	coordinator *c = timer->data;
	flush_forget(c);
	if (c->recovering && now_ms() - c->opened_ms > RECOVER_WAIT_MS) {
		/* a shard that does not answer must not stop every read */
		fprintf(stderr, "coordinator: the first recovery sweep is not over after %d ms; "
				"reads no longer wait for it\n", RECOVER_WAIT_MS);
		end_recovery(c);
	}
	if (c->sweeping && now_ms() - c->sweep_started_ms > SWEEP_TIMEOUT_MS) {
		fprintf(stderr, "coordinator: %d shard(s) have not answered the recovery sweep for %d ms; "
				"starting another\n", c->sweeping, SWEEP_TIMEOUT_MS);
		c->stale_status += (size_t)c->sweeping;
		c->sweeping = 0;
		c->sweep_failed = 1;
		sweep_finish(c);
	}
	if (c->sweeping)
		return;
	size_t np = dlog_npending(c->log);
	if (np) {
		dlog_decision *decs = calloc(np, sizeof *decs);
		c->settled = calloc(np, sizeof *c->settled);
		size_t got = decs ? dlog_pending(c->log, decs, np) : 0;
		for (size_t i = 0; c->settled && i < got; i++)
			if (!hmap_get(&c->inflight, &decs[i].txn, sizeof decs[i].txn))
				c->settled[c->nsettled++] = decs[i].txn;
		free(decs);
	}
	size_t n = catalog_nshards(c->cat);
	c->sweeping = (int)n;
	c->nsweeps++;
	c->sweep_started_ms = now_ms();
	if (n == 0) {
		sweep_finish(c);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (catalog_shard_removed(c->cat, i)) {
			/* a removed shard was drained before it left */
			if (--c->sweeping == 0)
				sweep_finish(c);
			continue;
		}
		status_ctx *s = malloc(sizeof *s);
		/* decision records only every DECIDED_EVERY sweeps (they are for
		 * the leftovers of a crash; others are forgotten as they finish) */
		wire_request r = {.op = WIRE_OP_STATUS};
		if ((c->nsweeps - 1) % DECIDED_EVERY != 0) {
			r.sql = "transactions";
			r.sql_len = (uint32_t)strlen(r.sql);
		}
		if (!s || shard_pool_send(c->pool, i, &r, on_status, s) != 0) {
			free(s);
			c->sweep_failed = 1;
			if (--c->sweeping == 0)
				sweep_finish(c);
			continue;
		}
		s->c = c;
		s->shard = i;
		s->sweep = c->nsweeps;
	}
}

static void recover_decision(coordinator *c, const dlog_decision *d)
{
	ctxn *t = calloc(1, sizeof *t);
	if (t) {
		t->shards = calloc(d->n ? d->n : 1, sizeof *t->shards);
		t->vote = calloc(d->n ? d->n : 1, sizeof *t->vote);
	}
	if (!t || !t->shards || !t->vote || hmap_put(&c->inflight, &d->txn, sizeof d->txn, t) != 0) {
		if (t) {
			free(t->shards);
			free(t->vote);
		}
		free(t);
		return;  /* the sweep still commits it */
	}
	t->c = c;
	t->txn = d->txn;
	t->n = d->n;
	for (size_t i = 0; i < d->n; i++) {
		t->shards[i] = d->shards[i];
		t->vote[i] = V_OK;
	}
	t->epoch = 0;
	t->acked = ++c->acked;  /* perhaps acknowledged before the restart */
	c->unapplied++;
	t->started_ms = now_ms();
	phase_two(t);
}

coordinator *coord_open(uv_loop_t *loop, shard_pool *pool, const catalog *cat, const char *data_dir,
			bool had_catalog, char *err, size_t errlen)
{
	coordinator *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->loop = loop;
	c->pool = pool;
	c->cat = cat;
	hmap_init(&c->inflight);
	hmap_init(&c->seen_prepared);
	c->epoch = 1;
	hmap_init(&c->doubt);
	hmap_init(&c->lpo_prepared);
	hmap_init(&c->lpo_last);
	hmap_init(&c->lpo_on);
	hmap_init(&c->lpo_on_last);
	hmap_init(&c->decided_seen);
	hmap_init(&c->gc_candidates);
	c->recovering = 1;
	c->opened_ms = now_ms();
	const char *mode = getenv("SHARDLITE_2PC_DECIDER");
	c->shard_decides = !mode || !*mode || strcmp(mode, "shard") == 0;
	if (mode && *mode && strcmp(mode, "shard") != 0 && strcmp(mode, "router") != 0) {
		snprintf(err, errlen, "SHARDLITE_2PC_DECIDER=%s: expected shard or router", mode);
		free(c);
		return NULL;
	}
	const char *early = getenv("SHARDLITE_2PC_EARLY");
	if (early && *early && strcmp(early, "0") != 0 && strcmp(early, "1") != 0) {
		snprintf(err, errlen, "SHARDLITE_2PC_EARLY=%s: expected 0 or 1", early);
		free(c);
		return NULL;
	}
	c->early_on = c->shard_decides && !(early && strcmp(early, "0") == 0);
	shard_pool_on_waiting(pool, on_pool_waiting, c);
	char path[4096];
	snprintf(path, sizeof path, "%s/decisions.log", data_dir);
	if (had_catalog && access(path, F_OK) != 0) {
		c->log_lost = 1;
		fprintf(stderr, "coordinator: the decision log %s is missing although this router has run before: "
				"in-doubt transactions will NOT be resolved automatically; resolve each with "
				"COMMIT PREPARED 'txn' or ROLLBACK PREPARED 'txn' (SHOW TRANSACTIONS lists them)\n",
			path);
	}
	c->log = dlog_open(loop, path, err, errlen);
	if (!c->log) {
		free(c);
		return NULL;
	}
	size_t np = dlog_npending(c->log);
	if (np) {
		/* Decisions of before the restart: drive them to completion as
		 * transactions in phase two, of an epoch older than any read, so
		 * no read sees one of them on some shards only. */
		fprintf(stderr, "coordinator: %zu commit decision(s) to drive to completion\n", np);
		dlog_decision *decs = calloc(np, sizeof *decs);
		size_t got = decs ? dlog_pending(c->log, decs, np) : 0;
		for (size_t i = 0; i < got; i++)
			recover_decision(c, &decs[i]);
		free(decs);
	}
	uv_timer_init(loop, &c->sweep);
	c->sweep.data = c;
	uv_timer_start(&c->sweep, on_sweep, 0, SWEEP_MS);
	return c;
}

static void on_sweep_closed(uv_handle_t *h)
{
	coordinator *c = h->data;
	hmap_free(&c->inflight);
	free(c);
}

void coord_close(coordinator *c)
{
	if (!c)
		return;
	uv_timer_stop(&c->sweep);
	flush_forget(c);
	free(c->forget);
	c->forget = NULL;
	c->nforget = c->capforget = 0;
	free(c->settled);
	hmap_free(&c->seen_prepared);
	hmap_free(&c->doubt);
	hmap_free(&c->lpo_prepared);
	hmap_free(&c->lpo_last);
	hmap_free(&c->lpo_on);
	hmap_free(&c->lpo_on_last);
	hmap_free(&c->decided_seen);
	hmap_free(&c->gc_candidates);
	/* Transactions still in flight are left to recovery; their callbacks may
	 * still arrive while the loop winds down, so then nothing is freed. */
	if (c->inflight.count == 0 && !c->sweeping && !c->stale_status) {
		dlog_close(c->log);
		c->log = NULL;
		uv_close((uv_handle_t *)&c->sweep, on_sweep_closed);
	} else {
		uv_close((uv_handle_t *)&c->sweep, NULL);
	}
}

/* "0,2,5" from a bitmap of shards */
static void shard_list(char *out, size_t outlen, uintptr_t bits)
{
	out[0] = 0;
	for (size_t i = 0; i < sizeof bits * 8; i++)
		if (bits & ((uintptr_t)1 << i)) {
			size_t len = strlen(out);
			snprintf(out + len, outlen - len, "%s%zu", len ? "," : "", i);
		}
}

size_t coord_list(coordinator *c, coord_row *rows, size_t max)
{
	size_t n = 0, it;
	uint64_t now = now_ms();
	for (hmap_entry *e = hmap_first(&c->inflight, &it); e && n < max; e = hmap_next(&c->inflight, e, &it)) {
		ctxn *t = e->value;
		coord_row *r = &rows[n++];
		snprintf(r->txn, sizeof r->txn, "%" PRIu64, t->txn);
		snprintf(r->state, sizeof r->state, "%s", state_name(t->state));
		r->participants[0] = 0;
		for (size_t i = 0; i < t->n; i++) {
			size_t len = strlen(r->participants);
			snprintf(r->participants + len, sizeof r->participants - len, "%s%zu", i ? "," : "", t->shards[i]);
		}
		snprintf(r->age_ms, sizeof r->age_ms, "%" PRIu64, now - t->started_ms);
	}
	dlog_decision decs[256];
	size_t nd = dlog_pending(c->log, decs, 256);
	for (size_t i = 0; i < nd && n < max; i++) {
		if (hmap_get(&c->inflight, &decs[i].txn, sizeof decs[i].txn))
			continue;
		coord_row *r = &rows[n++];
		snprintf(r->txn, sizeof r->txn, "%" PRIu64, decs[i].txn);
		snprintf(r->state, sizeof r->state, "in-doubt: commit");
		r->participants[0] = 0;
		for (size_t j = 0; j < decs[i].n; j++) {
			size_t len = strlen(r->participants);
			snprintf(r->participants + len, sizeof r->participants - len, "%s%u", j ? "," : "", decs[i].shards[j]);
		}
		snprintf(r->age_ms, sizeof r->age_ms, "?");
	}
	for (hmap_entry *e = hmap_first(&c->doubt, &it); e && n < max; e = hmap_next(&c->doubt, e, &it)) {
		uint64_t txn;
		memcpy(&txn, e->key, sizeof txn);
		uintptr_t bits = (uintptr_t)e->value;
		coord_row *r = &rows[n++];
		snprintf(r->txn, sizeof r->txn, "%" PRIu64, txn);
		snprintf(r->state, sizeof r->state, "%s",
			 c->log_lost ? "in-doubt: decision log lost" : "in-doubt: prepared");
		shard_list(r->participants, sizeof r->participants, bits);
		snprintf(r->age_ms, sizeof r->age_ms, "?");
	}
	for (hmap_entry *e = hmap_first(&c->lpo_last, &it); e && n < max; e = hmap_next(&c->lpo_last, e, &it)) {
		uint64_t txn;
		memcpy(&txn, e->key, sizeof txn);
		if (hmap_get(&c->inflight, &txn, sizeof txn))
			continue;
		coord_row *r = &rows[n++];
		snprintf(r->txn, sizeof r->txn, "%" PRIu64, txn);
		snprintf(r->state, sizeof r->state, "in-doubt: asking shard %zu", (size_t)((uintptr_t)e->value - 1));
		uintptr_t bits = (uintptr_t)hmap_get(&c->lpo_on_last, &txn, sizeof txn);
		shard_list(r->participants, sizeof r->participants, bits);
		snprintf(r->age_ms, sizeof r->age_ms, "?");
	}
	return n;
}

typedef struct {
	coordinator *c;
	uint64_t txn;
	bool commit;
	size_t pending, held, failed, refused;
	uint32_t decider;     /* + 1, when its answer was asked (on_force_asked) */
	char why[256];        /* a shard's refusal */
	coord_force_cb done;
	void *arg;
} force_op;

static void force_finish(force_op *f)
{
	char msg[256];
	fprintf(stderr, "coordinator: operator %s transaction %" PRIu64 " on %zu shard(s)\n",
		f->commit ? "committed" : "rolled back", f->txn, f->held);
	if (f->refused) {
		f->done(f->arg, 0, "55000", f->why);
	} else if (f->failed) {
		snprintf(msg, sizeof msg, "%zu shard(s) could not be reached; run the statement again", f->failed);
		f->done(f->arg, 0, "08006", msg);
	} else if (f->held == 0 && !f->commit) {
		snprintf(msg, sizeof msg, "prepared transaction with identifier \"%" PRIu64 "\" does not exist", f->txn);
		f->done(f->arg, 0, "42704", msg);
	} else {
		snprintf(msg, sizeof msg, "%zu shard(s)", f->held);
		f->done(f->arg, 1, NULL, msg);
	}
	free(f);
}

static void on_force_answer(void *arg, shard_answer *a, const char *error)
{
	force_op *f = arg;
	if (a && a->msg.resp.status == WIRE_OK) {
		f->held++;
	} else if (a && a->msg.resp.status == WIRE_ERROR && a->msg.resp.sqlstate &&
		   strcmp(a->msg.resp.sqlstate, "55000") == 0) {
		f->refused++;
		snprintf(f->why, sizeof f->why, "%s", a->msg.resp.message ? a->msg.resp.message : "refused by a shard");
	} else if (!a || a->msg.resp.status != WIRE_NOT_FOUND) {
		f->failed++;
	}
	shard_answer_free(a);
	if (--f->pending == 0)
		force_finish(f);
}

/* Sends never call back from inside shard_pool_send(), so pending only
 * reaches zero here if every send failed at once. */
static void force_send(force_op *f)
{
	size_t n = catalog_nshards(f->c->cat);
	f->pending = n + 1;  /* + 1 while sending */
	for (size_t i = 0; i < n; i++) {
		wire_request r = {.op = f->commit ? WIRE_OP_COMMIT_PREPARED : WIRE_OP_ROLLBACK_PREPARED, .txn = f->txn,
				  .decider = f->decider};
		if (shard_pool_send(f->c->pool, i, &r, on_force_answer, f) != 0) {
			f->failed++;
			f->pending--;
		}
	}
	if (--f->pending == 0)
		force_finish(f);
}

static void on_force_logged(void *arg, int status)
{
	force_send(arg);
}

static void force_go(force_op *f);

/* The last sweep saw txn prepared with a deciding shard: its decision
 * stands, whatever the operator asks. */
static void on_force_asked(void *arg, shard_answer *a, const char *error)
{
	force_op *f = arg;
	int st = a ? (int)a->msg.resp.status : -1;
	shard_answer_free(a);
	if (st != WIRE_OK && st != WIRE_NOT_FOUND) {
		f->done(f->arg, 0, "08006", "the transaction's deciding shard cannot be reached; run the statement again");
		free(f);
		return;
	}
	if ((st == WIRE_OK) != f->commit) {
		f->done(f->arg, 0, "55000",
			st == WIRE_OK ? "the transaction was committed by its deciding shard; it cannot be rolled back"
				      : "the transaction was not committed by its deciding shard; it cannot be committed");
		free(f);
		return;
	}
	force_go(f);
}

void coord_force(coordinator *c, uint64_t txn, bool commit, coord_force_cb done, void *arg)
{
	if (hmap_get(&c->inflight, &txn, sizeof txn)) {
		done(arg, 0, "55006", "the transaction is in flight on this router; its outcome is being decided");
		return;
	}
	if (!commit && dlog_is_committed(c->log, txn, NULL)) {
		done(arg, 0, "55000",
		     "the transaction has a logged commit decision: recovery commits it; it cannot be rolled back");
		return;
	}
	force_op *f = calloc(1, sizeof *f);
	if (!f) {
		done(arg, 0, "53200", "out of memory");
		return;
	}
	f->c = c;
	f->txn = txn;
	f->commit = commit;
	f->done = done;
	f->arg = arg;
	uintptr_t decider = (uintptr_t)hmap_get(&c->lpo_last, &txn, sizeof txn);
	if (decider) {
		f->decider = (uint32_t)decider;
		wire_request r = {.op = WIRE_OP_RESOLVE, .txn = txn};
		if (shard_pool_send(c->pool, decider - 1, &r, on_force_asked, f) != 0) {
			free(f);
			done(arg, 0, "08006", "the transaction's deciding shard cannot be reached; run the statement again");
		}
		return;
	}
	force_go(f);
}

static void force_go(force_op *f)
{
	coordinator *c = f->c;
	uint64_t txn = f->txn;
	bool commit = f->commit;
	coord_force_cb done = f->done;
	void *arg = f->arg;
	if (commit && !dlog_is_committed(c->log, txn, NULL)) {
		/* log the decision first: a crash half-way then finishes the commit */
		size_t n = catalog_nshards(c->cat);
		uint16_t *all = calloc(n ? n : 1, sizeof *all);
		for (size_t i = 0; all && i < n; i++)
			all[i] = (uint16_t)i;
		int rc = all ? dlog_commit(c->log, txn, all, (uint16_t)n, on_force_logged, f) : -1;
		free(all);
		if (rc != 0) {
			free(f);
			done(arg, 0, "53200", "out of memory logging the decision");
		}
		return;
	}
	force_send(f);
}

uint64_t coord_decision_fsyncs(const coordinator *c)
{
	return dlog_fsyncs(c->log);
}
