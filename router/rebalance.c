/*
 * rebalance.c — online bucket moves and shard additions (see rebalance.h,
 * docs/rebalance.md).
 *
 * Everything runs on the router's loop.  The work is done by lanes (struct
 * lane): each runs one job at a time as a sequence of rounds of shard
 * requests; a round's continuation runs once every answer is in, and its
 * answers are dropped if the job was abandoned meanwhile (generation check).
 * Moves run on every lane (disjoint buckets); shard additions, planning and
 * removals on lane 0 while the others are idle (dispatch()).  In every
 * function taking a lane, `rb` is the lane and `rb->g` the rebalancer.
 *
 * Invariants: lane->busy iff that lane runs a job; the gate is closed only
 * by the lane that owns it (gate_owner; NULL only at start, for a switch to
 * redo, until a lane takes that move) and always opened, waking every parked
 * statement, before that lane's job ends; a move's catalog phase only moves
 * forward (queued/copy -> switch -> done), except that a cancel turns
 * queued/copy into cancelled.
 */
#include "router/rebalance.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "coordinator/coordinator.h"
#include "router/catalog.h"
#include "router/session.h"
#include "router/shardpool.h"
#include "txn/bucket.h"
#include "txn/failpoint.h"
#include "txn/hmap.h"
#include "txn/rowsum.h"

#define MOVE_CHUNK 64          /* at most this many buckets per planned move */
#define MOVE_ROWS 10000        /* ... and about this many rows: the cutover pause
				* grows with a move's rows (docs/rebalance.md) */
#define ROWS_PER_INSERT 400    /* rows per statement into a staging table */
#define PARAMS_PER_WRITE 6000  /* ... into a client table: 3,000 rows of two
				* columns.  Each statement commits on its own
				* and its rows land all over the table's
				* indexes (random keys): a small one rewrites
				* most index pages in the WAL for a few rows; a
				* huge one holds the target's writer (and
				* another lane's switch behind it) too long */
#define SYNC_WINDOW 2          /* a sync's writes in flight at once, per move */
#define DRAIN_TIMEOUT_MS 2000
#define CATCHUP_ROUNDS 4
#define CATCHUP_SMALL 200      /* rows changed in a round: small enough to cut over */
#define CATCHUP_QUICK_MS 250   /* a first copy this quick needs no catch-up round */
#define HISTORY 32
#define SWITCH_RETRY_MS 200    /* a switch (or a cleanup) that failed runs again */
#define SWITCH_RETRIES 25

typedef struct move {
	int64_t id;
	size_t src, dst;
	char *table;           /* a range move: the RANGE table (plain name), else NULL */
	size_t range;
	uint32_t *buckets;
	size_t n;
	uint64_t mask[SL_BUCKETS / 64];
	char phase[16];        /* queued copy catchup cutover switch cleanup done,
				* or cancelling cancelled */
	uint64_t rows_copied, rows_src;
	uint64_t t_start, t_done;
	double pause_ms;
	uint64_t t_mark;       /* cutover: when the last part below began */
	double drain_ms, sync_ms, flip_ms, commit_ms;  /* the last cutover's parts */
	double cleanup_ms;     /* deleting the source's rows, after the pause */
	size_t final_buckets;  /* buckets the final sync found changed and read */
	double round_ms[CATCHUP_ROUNDS + 1];           /* copy and catch-up rounds */
	int rounds, attempts;
	char verified[96];
	char note[160];
	struct move *next;
} move;

typedef struct add_job {
	char addr[256];
	size_t idx;
	rebalance_cb done;
	void *arg;
	struct add_job *next;
} add_job;

typedef struct {
	char *name, *stage;    /* quoted identifiers */
	char *key;             /* quoted partition column (hash tables) */
	char *bkt_index;       /* quoted "_slbkt_<table>": its bucket index */
	size_t ncols;
	char **cols;           /* quoted */
	size_t npk;
	size_t *pk;            /* column indexes of the primary key */
	size_t keycol;         /* column index of the partition key (hash tables) */
} tinfo;

typedef struct waiter {
	void (*wake)(void *);
	void *arg;
	uint64_t since;
	struct waiter *next;
} waiter;

typedef enum { GATE_OPEN = 0, GATE_MOVE, GATE_REF, GATE_SHARD, GATE_RANGE } gate_kind;

typedef struct lane lane;

/* One worker of the rebalancer: runs one job at a time, with its own round
 * of requests.  Moves run on every lane at once (up to NLANES, on disjoint
 * buckets); the gate is held by one lane at a time, so cutovers take turns
 * while the other lanes copy.  Shard additions, planning and removals run
 * on lane 0 alone, while no other lane is busy. */
#define NLANES 2

struct lane {
	rebalancer *g;
	size_t plan_shard;     /* planning: the shard whose indexes are built */
	router_server *srv;
	int idx;
	uv_timer_t timer;
	int busy;
	/* the current round */
	uint64_t gen;
	shard_answer **ans;
	size_t nans, pending;
	int failed;
	char err[256];
	void (*next)(lane *);
	/* the job */
	move *cur;
	add_job *add_cur;
	/* the table set of the running job */
	tinfo *tabs;
	size_t ntabs;
	int final_sync;
	int by_bucket;         /* this final sync compares per-bucket checksums first */
	uint64_t dirty[SL_BUCKETS / 64];  /* ... and these buckets differed */
	uint64_t full_rows, full_sum;     /* ... the source's rows of all of B */
	uint64_t delta;
	coord_read *cut;
	shard_answer **model;  /* per table: the source rows last written to the
				* target, so a catch-up round reads the source only */
	uint64_t src_rows, src_sum;  /* the final read of the source: rows, checksum */
	/* a sync's writes, sent SYNC_WINDOW at a time (the target's writer also
	 * serves clients); their params point into the answers in wkeep */
	wire_request *wq;
	size_t nwq, wq_sent;
	shard_answer **wkeep;
	size_t nwkeep;
	/* the switch (move_switch) */
	coord_apply *apply;    /* its statements, ordered at the consistent cut */
	int switch_tries, switch_step;
	shard_answer *schema_ans;  /* shard 0's schema, for a new shard */
};

struct rebalancer {
	router_server *srv;
	uv_timer_t kick_timer;
	int closing, nclosed;
	lane lanes[NLANES];
	/* jobs */
	move *queue;           /* queued moves, in order */
	move *history;         /* finished, newest first */
	add_job *adds;
	int cancel;
	/* the gate */
	gate_kind gate;
	lane *gate_owner;      /* the lane that closed it (NULL: closed at start
				* for a switch to redo, until a lane takes it) */
	uint64_t gate_gen, gen_counter;
	size_t gate_src, gate_dst;
	uint64_t gate_mask[SL_BUCKETS / 64];
	const char *gate_table;  /* GATE_RANGE: the moving range's table */
	uint64_t gate_since;
	waiter *waiters;
	double max_wait_ms, max_pause_ms;
	int switching;         /* also hold scatter reads of gate_src/gate_dst */
	/* deleting moves' hidden rows, one statement at a time, in order */
	struct cleanup_job *cleanups;
	uv_timer_t clean_timer;
	/* shards being drained for removal, and those whose removal waits */
	bool draining[256];
	/* shards known to have their bucket indexes: building one holds the
	 * shard's writer for a while (every client transaction there waits), so
	 * REBALANCE's planning builds them on every shard, one at a time, and a
	 * move that must still build one (a drain's) runs alone, not beside
	 * another move's cutover, whose drain would wait for those transactions */
	bool bkt_indexed[256];
	/* planning */
	rebalance_cb plan_done;
	void *plan_arg;
	char *plan_table;
};

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000;
}

/* ---- rounds of requests ------------------------------------------------------------ */

typedef struct {
	lane *rb;
	size_t slot;
	uint64_t gen;
} rtoken;

static void round_free(lane *rb)
{
	for (size_t i = 0; i < rb->nans; i++)
		shard_answer_free(rb->ans[i]);
	free(rb->ans);
	rb->ans = NULL;
	rb->nans = rb->pending = 0;
}

static void on_timer_next(uv_timer_t *t)
{
	lane *rb = t->data;
	void (*next)(lane *) = rb->next;
	rb->next = NULL;
	if (next && !rb->g->closing)
		next(rb);
}

static void after(lane *rb, uint64_t ms, void (*next)(lane *))
{
	rb->next = next;
	uv_timer_start(&rb->timer, on_timer_next, ms, 0);
}

static void fail_round(lane *rb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The round failed; the first reason is kept. */
static void fail_round(lane *rb, const char *fmt, ...)
{
	if (rb->failed)
		return;
	rb->failed = 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rb->err, sizeof rb->err, fmt, ap);
	va_end(ap);
}

static void round_send(lane *rb, size_t slot, size_t shard, wire_request *r);
static size_t sync_dst(const lane *rb);

/* A sync's queued writes: all sent and answered (or the lane closing). */
static void writes_free(lane *rb)
{
	for (size_t i = 0; i < rb->nwq; i++) {
		free((char *)rb->wq[i].sql);
		free(rb->wq[i].params);
	}
	free(rb->wq);
	rb->wq = NULL;
	rb->nwq = rb->wq_sent = 0;
	for (size_t i = 0; i < rb->nwkeep; i++)
		shard_answer_free(rb->wkeep[i]);
	free(rb->wkeep);
	rb->wkeep = NULL;
	rb->nwkeep = 0;
}

/* Send the next queued write of a sync, if any; after a failure, give up
 * the rest (the round ends once the writes sent are answered). */
static void writes_next(lane *rb)
{
	if (rb->failed && rb->wq_sent < rb->nwq) {
		rb->pending -= rb->nwq - rb->wq_sent;
		rb->wq_sent = rb->nwq;
		if (rb->pending == 0)
			after(rb, 0, rb->next);
		return;
	}
	if (rb->wq_sent < rb->nwq) {
		size_t i = rb->wq_sent++;
		round_send(rb, i, sync_dst(rb), &rb->wq[i]);
	}
}

static void on_answer(void *arg, shard_answer *a, const char *error)
{
	rtoken *t = arg;
	lane *rb = t->rb;
	size_t slot = t->slot;
	uint64_t gen = t->gen;
	free(t);
	if (gen != rb->gen || rb->g->closing) {
		shard_answer_free(a);
		return;
	}
	if (error)
		fail_round(rb, "%s", error);
	else if (a->msg.resp.status == WIRE_ERROR)
		fail_round(rb, "%s: %s", a->msg.resp.sqlstate ? a->msg.resp.sqlstate : "XX000",
			   a->msg.resp.message ? a->msg.resp.message : "error on a shard");
	rb->ans[slot] = a;
	if (--rb->pending == 0)
		after(rb, 0, rb->next);
	else
		writes_next(rb);
}

/* Start a round of n requests; next runs once all are answered. */
static int round_begin(lane *rb, size_t n, void (*next)(lane *))
{
	round_free(rb);
	rb->gen++;
	rb->failed = 0;
	rb->err[0] = 0;
	rb->ans = calloc(n ? n : 1, sizeof *rb->ans);
	if (!rb->ans)
		return -1;
	rb->nans = n;
	rb->pending = n;
	rb->next = next;
	return 0;
}

static void round_send(lane *rb, size_t slot, size_t shard, wire_request *r)
{
	rtoken *t = malloc(sizeof *t);
	if (t) {
		t->rb = rb;
		t->slot = slot;
		t->gen = rb->gen;
	}
	if (!t || shard_pool_send(rb->srv->pool, shard, r, on_answer, t) != 0) {
		free(t);
		fail_round(rb, "cannot reach shard %zu", shard);
		if (--rb->pending == 0)
			after(rb, 0, rb->next);
	}
}

static void round_exec(lane *rb, size_t slot, size_t shard, const char *sql, const wire_value *params,
		       uint32_t np, bool readonly)
{
	wire_request r = {.op = WIRE_OP_EXEC, .sql = sql, .sql_len = (uint32_t)strlen(sql),
			  .params = (wire_value *)params, .nparams = np, .readonly = readonly};
	round_send(rb, slot, shard, &r);
}

/* A write to rows behind the gate (a move's staging table, or B's rows in
 * the switch): no transaction holds or can take a lock on them, so the
 * shard need not look (wire.fbs: Request.unlocked). */
static void round_exec_gated(lane *rb, size_t slot, size_t shard, const char *sql, const wire_value *params,
			     uint32_t np)
{
	wire_request r = {.op = WIRE_OP_EXEC, .sql = sql, .sql_len = (uint32_t)strlen(sql),
			  .params = (wire_value *)params, .nparams = np, .unlocked = true};
	round_send(rb, slot, shard, &r);
}

/* A round with nothing to send still continues, from the loop. */
static void round_end_empty(lane *rb)
{
	if (rb->pending == 0)
		after(rb, 0, rb->next);
}

/* ---- tables ------------------------------------------------------------------------ */

static char *quote(const char *name)
{
	sql_buf b;
	sql_buf_init(&b);
	sql_render_ident(&b, name);
	if (b.failed) {
		sql_buf_free(&b);
		return NULL;
	}
	return b.data;
}

static void models_free(lane *rb)
{
	if (rb->model)
		for (size_t i = 0; i < rb->ntabs; i++)
			shard_answer_free(rb->model[i]);
	free(rb->model);
	rb->model = NULL;
}

static void tabs_free(lane *rb)
{
	models_free(rb);
	for (size_t i = 0; i < rb->ntabs; i++) {
		tinfo *t = &rb->tabs[i];
		free(t->name);
		free(t->stage);
		free(t->key);
		free(t->bkt_index);
		for (size_t c = 0; c < t->ncols; c++)
			free(t->cols[c]);
		free(t->cols);
		free(t->pk);
	}
	free(rb->tabs);
	rb->tabs = NULL;
	rb->ntabs = 0;
}

/* The catalog's HASH tables (hash = true) or reference tables. */
static int tabs_load(lane *rb, bool hash)
{
	tabs_free(rb);
	const catalog *cat = rb->srv->cat;
	size_t n = catalog_ntables(cat);
	rb->tabs = calloc(n ? n : 1, sizeof *rb->tabs);
	if (!rb->tabs)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const catalog_table *ct = catalog_table_at(cat, i);
		if (rb->cur && rb->cur->table) {
			if (strcmp(ct->name, rb->cur->table) != 0)
				continue;
		} else if (hash ? ct->partition != SQL_PARTITION_HASH : ct->partition != SQL_PARTITION_NONE) {
			continue;
		}
		tinfo *t = &rb->tabs[rb->ntabs++];
		char stage[300];
		if (rb->cur)  /* one per move: moves to one target may run at once */
			snprintf(stage, sizeof stage, "_slmove_%" PRId64 "_%s", rb->cur->id, ct->name);
		else
			snprintf(stage, sizeof stage, "_slmove_%s", ct->name);
		t->name = quote(ct->name);
		t->stage = quote(stage);
		snprintf(stage, sizeof stage, "_slbkt_%s", ct->name);
		t->bkt_index = quote(stage);
		t->key = ct->partition_col >= 0 ? quote(ct->cols[ct->partition_col].name) : NULL;
		t->keycol = ct->partition_col >= 0 ? (size_t)ct->partition_col : 0;
		t->cols = calloc(ct->ncols, sizeof *t->cols);
		t->pk = calloc(ct->ncols, sizeof *t->pk);
		if (!t->name || !t->stage || !t->bkt_index || !t->cols || !t->pk || (ct->partition_col >= 0 && !t->key))
			return -1;
		t->ncols = ct->ncols;
		for (size_t c = 0; c < ct->ncols; c++) {
			t->cols[c] = quote(ct->cols[c].name);
			if (!t->cols[c])
				return -1;
			if (ct->cols[c].primary_key)
				t->pk[t->npk++] = c;
		}
	}
	return 0;
}

static void put_bucket_list(sql_buf *b, const uint32_t *buckets, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sql_buf_printf(b, "%s%u", i ? ", " : "", buckets[i]);
}

/* Hide a move's buckets on a shard (its _slhidden, plan.h), or show them. */
static void hidden_sql(const move *m, sql_buf *b, bool hide)
{
	if (hide) {
		sql_buf_puts(b, "INSERT OR IGNORE INTO _slhidden(bucket) VALUES ");
		for (size_t i = 0; i < m->n; i++)
			sql_buf_printf(b, "%s(%u)", i ? ", " : "", m->buckets[i]);
	} else {
		sql_buf_puts(b, "DELETE FROM _slhidden WHERE bucket IN (");
		put_bucket_list(b, m->buckets, m->n);
		sql_buf_puts(b, ")");
	}
}

/* ---- rows: keys, equality, checksums ---------------------------------------------- */

static void key_put(sql_buf *b, const wire_value *v)
{
	char tag = (char)('0' + v->type);
	sql_buf_append(b, &tag, 1);
	switch (v->type) {
	case WIRE_INT:
		sql_buf_append(b, (const char *)&v->i, sizeof v->i);
		break;
	case WIRE_REAL:
		sql_buf_append(b, (const char *)&v->r, sizeof v->r);
		break;
	case WIRE_TEXT:
	case WIRE_BLOB:
		sql_buf_append(b, (const char *)&v->len, sizeof v->len);
		sql_buf_append(b, v->p, v->len);
		break;
	default:
		break;
	}
}

/* The rowsum.h checksum of one row (a term of the shards' sl_checksum). */
static uint64_t row_sum(const wire_value *row, uint32_t ncols)
{
	uint64_t h = rowsum_start();
	for (uint32_t c = 0; c < ncols; c++) {
		const wire_value *v = &row[c];
		int type = v->type == WIRE_INT ? ROWSUM_INTEGER : v->type == WIRE_REAL ? ROWSUM_REAL
			 : v->type == WIRE_TEXT ? ROWSUM_TEXT : v->type == WIRE_BLOB ? ROWSUM_BLOB : ROWSUM_NULL;
		h = rowsum_value(h, type, v->i, v->r, v->p, v->len);
	}
	return h;
}

/* ... of a response's rows (the shards' sl_checksum). */
static uint64_t rows_checksum(const wire_response *r)
{
	uint64_t sum = 0;
	for (uint32_t k = 0; k < r->nrows; k++)
		sum += row_sum(&r->cells[(size_t)k * r->ncols], r->ncols);
	return sum;
}

/* The bucket of a stored key, as the shards' sl_bucket() computes it
 * (shard/store.c); -1 for a value it gives none. */
static int value_bucket(const wire_value *v)
{
	switch (v->type) {
	case WIRE_INT:
		return (int)sl_bucket_of_int(v->i);
	case WIRE_TEXT:
		return (int)sl_bucket_of_bytes(v->p, v->len);
	case WIRE_REAL:
		if (v->r >= -9223372036854775808.0 && v->r < 9223372036854775808.0 && v->r == (double)(int64_t)v->r)
			return (int)sl_bucket_of_int((int64_t)v->r);
		return -1;
	default:
		return -1;
	}
}

/* ---- the gate ------------------------------------------------------------------------ */

uint64_t rebalance_gate_gen(const rebalancer *rb)
{
	return rb && rb->gate != GATE_OPEN ? rb->gate_gen : 0;
}

size_t rebalance_gate_src(const rebalancer *rb)
{
	return rb->gate_src;
}

static bool req_in_gate(const rebalancer *rb, const plan_request *r, const char *table, bool writes)
{
	if (rb->gate == GATE_RANGE)
		return table && strcmp(table, rb->gate_table) == 0 && (r->shard == rb->gate_src || r->shard == rb->gate_dst);
	if (rb->gate == GATE_REF)
		return writes && r->nbuckets == 0;
	if (rb->gate == GATE_SHARD)
		return r->shard == rb->gate_src;
	if (rb->switching && r->nbuckets == 0 && (r->shard == rb->gate_src || r->shard == rb->gate_dst))
		return true;  /* a switch half done: B's rows may be on both shards */
	for (uint32_t i = 0; i < r->nbuckets; i++) {
		uint32_t b = r->buckets[i] % SL_BUCKETS;
		if (rb->gate_mask[b / 64] & (1ull << (b % 64)))
			return true;
	}
	return writes && r->nbuckets == 0 && (r->shard == rb->gate_src || r->shard == rb->gate_dst);
}

bool rebalance_blocks(const rebalancer *rb, const plan_batch *b, const char *table, bool writes, bool ddl)
{
	if (!rb || rb->gate == GATE_OPEN)
		return false;
	if (ddl)
		return true;
	for (size_t i = 0; i < b->n; i++)
		if (req_in_gate(rb, &b->reqs[i], table, writes))
			return true;
	return false;
}

bool rebalance_holds(const rebalancer *rb, const plan_batch *b, const char *table, bool writes)
{
	return rebalance_blocks(rb, b, table, writes, false);
}

int rebalance_wait(rebalancer *rb, void (*wake)(void *), void *arg)
{
	waiter *w = malloc(sizeof *w);
	if (!w)
		return -1;
	w->wake = wake;
	w->arg = arg;
	w->since = uv_hrtime();
	w->next = rb->waiters;
	rb->waiters = w;
	return 0;
}

void rebalance_unwait(rebalancer *rb, void *arg)
{
	for (waiter **pp = &rb->waiters; *pp;) {
		waiter *w = *pp;
		if (w->arg == arg) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

double rebalance_max_wait_ms(const rebalancer *rb)
{
	return rb->max_wait_ms;
}

double rebalance_max_pause_ms(const rebalancer *rb)
{
	return rb->max_pause_ms;
}

static void gate_close(lane *rb, gate_kind kind, size_t src, size_t dst, const uint64_t *mask)
{
	rb->g->gate = kind;
	rb->g->gate_owner = rb;
	rb->g->gate_gen = ++rb->g->gen_counter;
	rb->g->gate_src = src;
	rb->g->gate_dst = dst;
	if (mask)
		memcpy(rb->g->gate_mask, mask, sizeof rb->g->gate_mask);
	else
		memset(rb->g->gate_mask, 0, sizeof rb->g->gate_mask);
	rb->g->gate_table = kind == GATE_RANGE && rb->cur ? rb->cur->table : NULL;
	rb->g->gate_since = now_ms();
	session_drain_mark(rb->srv, src, rb->g->gate_gen);
}

static void on_clean_timer(uv_timer_t *t);

/* Open the gate; every parked statement runs again (planned anew). */
static bool holds_gate(const lane *rb)
{
	return rb->g->gate != GATE_OPEN && rb->g->gate_owner == rb;
}

/* Open the gate if this lane holds it. */
static double gate_open(lane *rb)
{
	if (!holds_gate(rb))
		return 0;
	double held = (double)(now_ms() - rb->g->gate_since);
	if (held > rb->g->max_pause_ms)
		rb->g->max_pause_ms = held;
	rb->g->gate = GATE_OPEN;
	rb->g->gate_owner = NULL;
	uv_timer_start(&rb->g->clean_timer, on_clean_timer, 0, 0);  /* cleanups may go on */
	rb->g->gate_gen = 0;
	rb->g->switching = 0;
	waiter *w = rb->g->waiters;
	rb->g->waiters = NULL;
	/* oldest first */
	waiter *rev = NULL;
	while (w) {
		waiter *n = w->next;
		w->next = rev;
		rev = w;
		w = n;
	}
	uint64_t t = uv_hrtime();
	while (rev) {
		waiter *n = rev->next;
		double ms = (double)(t - rev->since) / 1e6;
		if (ms > rb->g->max_wait_ms)
			rb->g->max_wait_ms = ms;
		rev->wake(rev->arg);
		free(rev);
		rev = n;
	}
	return held;
}

/* ---- syncing rows: source query -> target table, by diff -------------------------- */

static void sync_diffed(lane *rb);
static void sync_written(lane *rb);
static void sync_verified(lane *rb);
static void move_after_sync(lane *rb);
static void add_after_sync(lane *rb);
static void move_failed(lane *rb);

/* " WHERE ..." selecting the moving rows of table i: the move's buckets,
 * or its range (bounds as parameters ?1, ?2 in params). */
static void move_pred(lane *rb, size_t i, sql_buf *b, wire_value *params, uint32_t *np)
{
	tinfo *t = &rb->tabs[i];
	move *m = rb->cur;
	*np = 0;
	if (!m->table) {
		sql_buf_printf(b, " WHERE sl_bucket(%s) IN (", t->key);
		put_bucket_list(b, m->buckets, m->n);
		sql_buf_puts(b, ")");
		return;
	}
	const catalog_table *ct = catalog_table_get(rb->srv->cat, m->table);
	bool lo = ct && m->range > 0 && m->range - 1 < ct->nsplits, hi = ct && m->range < ct->nsplits;
	if (!lo && !hi)
		return;
	sql_buf_puts(b, " WHERE ");
	if (lo) {
		params[(*np)++] = ct->splits[m->range - 1];
		sql_buf_printf(b, "%s >= ?%u", t->key, *np);
	}
	if (hi) {
		params[(*np)++] = ct->splits[m->range];
		sql_buf_printf(b, "%s%s < ?%u", lo ? " AND " : "", t->key, *np);
	}
}

/* The source query of table i: a move's rows, or everything (reference
 * tables for a new shard). */
static void source_sql(lane *rb, size_t i, sql_buf *b, wire_value *params, uint32_t *np)
{
	tinfo *t = &rb->tabs[i];
	sql_buf_printf(b, "SELECT * FROM %s", t->name);
	*np = 0;
	if (rb->cur)
		move_pred(rb, i, b, params, np);
}

static size_t sync_src(const lane *rb)
{
	return rb->cur ? rb->cur->src : catalog_first_shard(rb->srv->cat);
}

static size_t sync_dst(const lane *rb)
{
	return rb->cur ? rb->cur->dst : rb->add_cur->idx;
}

/* A bucket move copies straight into the target's table, where the rows
 * stay hidden (_slhidden, plan.h) until the switch; a range move stages
 * them in a table of its own. */
static bool direct(const lane *rb)
{
	return rb->cur && !rb->cur->table;
}

static const char *sync_target(const lane *rb, size_t i)
{
	return rb->cur && !direct(rb) ? rb->tabs[i].stage : rb->tabs[i].name;
}

/* The target's copy of table i: all of sync_target(), or (a bucket move)
 * its rows of the move's buckets.  No parameters. */
static void dirty_pred(const lane *rb, size_t i, sql_buf *b)
{
	const move *m = rb->cur;
	sql_buf_printf(b, " WHERE sl_bucket(%s) IN (", rb->tabs[i].key);
	size_t k2 = 0;
	for (size_t k = 0; k < m->n; k++) {
		uint32_t bk = m->buckets[k] % SL_BUCKETS;
		if (rb->dirty[bk / 64] & (1ull << (bk % 64)))
			sql_buf_printf(b, "%s%u", k2++ ? ", " : "", bk);
	}
	sql_buf_puts(b, ")");
}

static void target_rows(lane *rb, size_t i, sql_buf *b)
{
	sql_buf_printf(b, " FROM %s", sync_target(rb, i));
	if (direct(rb) && rb->final_sync && rb->by_bucket) {
		dirty_pred(rb, i, b);  /* the final sync checked the others */
	} else if (direct(rb)) {
		wire_value none[2];
		uint32_t np;
		move_pred(rb, i, b, none, &np);
	}
}

static void sync_send_reads(lane *rb)
{
	sql_buf b;
	sql_buf_init(&b);
	for (size_t i = 0; i < rb->ntabs; i++) {
		sql_buf_reset(&b);
		wire_value params[2];
		uint32_t np;
		source_sql(rb, i, &b, params, &np);
		round_exec(rb, 2 * i, sync_src(rb), b.data, params, np, true);
		sql_buf_reset(&b);
		/* with a model, the target holds what it says: no need to read it */
		if (rb->model) {
			sql_buf_puts(&b, "SELECT 1");
		} else {
			sql_buf_puts(&b, "SELECT *");
			target_rows(rb, i, &b);
		}
		round_exec(rb, 2 * i + 1, sync_dst(rb), b.data, NULL, 0, true);
	}
	sql_buf_free(&b);
	round_end_empty(rb);
}

/*
 * The final sync of a bucket move that has a model: source and target
 * both answer each bucket's row count and checksum (one scan where the
 * rows are, nothing shipped, the two at once); the target must match the
 * model (what was written to it), and only the buckets where the source
 * differs from it are read, synced and verified again.  With none, the
 * move is verified there and then.  The gate is closed and drained, so
 * after the cut B cannot change on the source: the second read needs no
 * cut of its own.
 */
static void final_counted(lane *rb);

static void sync_send_sums(lane *rb)
{
	sql_buf b;
	sql_buf_init(&b);
	for (size_t i = 0; i < rb->ntabs; i++) {
		tinfo *t = &rb->tabs[i];
		wire_value none[2];
		uint32_t np;
		sql_buf_reset(&b);
		sql_buf_printf(&b, "SELECT sl_bucket(%s), count(*), sl_checksum(", t->key);
		for (size_t c = 0; c < t->ncols; c++)
			sql_buf_printf(&b, "%s%s", c ? ", " : "", t->cols[c]);
		sql_buf_printf(&b, ") FROM %s", t->name);
		move_pred(rb, i, &b, none, &np);
		sql_buf_puts(&b, " GROUP BY 1");
		round_exec(rb, 2 * i, sync_src(rb), b.data, NULL, 0, true);
		round_exec(rb, 2 * i + 1, sync_dst(rb), b.data, NULL, 0, true);
	}
	sql_buf_free(&b);
	round_end_empty(rb);
}

static void on_cut(void *arg)
{
	lane *rb = arg;
	if (rb->by_bucket)
		sync_send_sums(rb);
	else
		sync_send_reads(rb);
}

/* Read source and target of every table; the final sync reads the source
 * at a consistent cut, so it holds every committed transaction whole. */
static void sync_start(lane *rb, int final)
{
	rb->final_sync = final;
	rb->by_bucket = final && rb->model && direct(rb);
	if (final && rb->cur)
		rb->cur->final_buckets = rb->cur->n;  /* unless by_bucket finds fewer */
	if (round_begin(rb, 2 * rb->ntabs, rb->by_bucket ? final_counted : sync_diffed) != 0) {
		fail_round(rb, "out of memory");
		after(rb, 0, rb->cur ? move_failed : add_after_sync);
		return;
	}
	if (final) {
		rb->cut = coord_read_begin(rb->srv->coord, on_cut, rb);
		if (rb->cut && coord_read_ready(rb->cut))
			on_cut(rb);
		return;
	}
	sync_send_reads(rb);
}

static void end_cut(lane *rb)
{
	if (rb->cut) {
		coord_read_end(rb->srv->coord, rb->cut);
		rb->cut = NULL;
	}
}

/* Append an Exec of b's SQL (taken over) with params (taken over) to a
 * growing request array; on out of memory both are freed and -1 returned. */
static int push_exec(wire_request **out, size_t *nout, size_t *cap, sql_buf *b, wire_value *params, uint32_t np)
{
	if (*nout == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		wire_request *n = realloc(*out, ncap * sizeof *n);
		if (!n || b->failed) {
			sql_buf_free(b);
			free(params);
			if (n)
				*out = n;
			return -1;
		}
		*out = n;
		*cap = ncap;
	}
	wire_request *r = &(*out)[(*nout)++];
	memset(r, 0, sizeof *r);
	r->op = WIRE_OP_EXEC;
	r->sql = b->data;
	r->sql_len = (uint32_t)b->len;
	r->params = params;
	r->nparams = np;
	return 0;
}

/* " ON CONFLICT (pk) DO UPDATE SET every other column" */
static void upsert_tail(const tinfo *t, sql_buf *b)
{
	sql_buf_puts(b, " ON CONFLICT (");
	for (size_t p = 0; p < t->npk; p++)
		sql_buf_printf(b, "%s%s", p ? ", " : "", t->cols[t->pk[p]]);
	sql_buf_puts(b, ") DO ");
	bool first = true;
	for (size_t c = 0; c < t->ncols; c++) {
		bool pk = false;
		for (size_t p = 0; p < t->npk; p++)
			pk = pk || t->pk[p] == c;
		if (pk)
			continue;
		sql_buf_printf(b, "%s%s = excluded.%s", first ? "UPDATE SET " : ", ", t->cols[c], t->cols[c]);
		first = false;
	}
	if (first)
		sql_buf_puts(b, "NOTHING");
}

/* Writes for one table: upserts of source rows missing or different on the
 * target, deletes of target rows the source no longer has. */
static void diff_table(lane *rb, size_t i, const wire_response *src, const wire_response *dst, wire_request **out,
		       size_t *nout, size_t *cap)
{
	tinfo *t = &rb->tabs[i];
	const char *target = sync_target(rb, i);
	hmap have;
	hmap_init(&have);
	sql_buf k;
	sql_buf_init(&k);
	uint32_t nc = dst->ncols;
	for (uint32_t r = 0; r < dst->nrows; r++) {
		sql_buf_reset(&k);
		for (size_t p = 0; p < t->npk; p++)
			key_put(&k, &dst->cells[(size_t)r * nc + t->pk[p]]);
		hmap_put(&have, k.data, k.len, (void *)(uintptr_t)(r + 1));
	}
	/* upserts */
	uint32_t *up = malloc((src->nrows + 1) * sizeof *up);
	size_t nup = 0;
	for (uint32_t r = 0; up && r < src->nrows; r++) {
		const wire_value *row = &src->cells[(size_t)r * src->ncols];
		sql_buf_reset(&k);
		for (size_t p = 0; p < t->npk; p++)
			key_put(&k, &row[t->pk[p]]);
		uintptr_t at = (uintptr_t)hmap_del(&have, k.data, k.len);
		bool same = false;
		if (at && src->ncols == nc) {
			const wire_value *o = &dst->cells[(size_t)(at - 1) * nc];
			same = true;
			for (uint32_t c = 0; c < nc && same; c++)
				same = wire_value_equal(&row[c], &o[c]);
		}
		if (!same)
			up[nup++] = r;
	}
	rb->delta += nup + have.count;
	if (rb->cur)
		rb->cur->rows_copied += nup;
	/* upsert statements */
	size_t per = direct(rb) && src->ncols ? PARAMS_PER_WRITE / src->ncols : ROWS_PER_INSERT;
	if (src->ncols && per * src->ncols > PARAMS_PER_WRITE)
		per = PARAMS_PER_WRITE / src->ncols;
	for (size_t at = 0; at < nup; at += per) {
		size_t m = nup - at < per ? nup - at : per;
		sql_buf b;
		sql_buf_init(&b);
		/* into a table of clients' rows: an upsert on the primary key
		 * (a conflict on another UNIQUE index fails the move, where OR
		 * REPLACE would delete a row of the target's own) */
		sql_buf_printf(&b, direct(rb) ? "INSERT INTO %s VALUES " : "INSERT OR REPLACE INTO %s VALUES ", target);
		wire_value *params = malloc(m * src->ncols * sizeof *params + 1);
		if (!params) {
			sql_buf_free(&b);
			break;
		}
		/* anonymous parameters, in order: SQLite looks up the name of
		 * every numbered one (?NNN) in a list as it compiles it, which
		 * grows quadratic with thousands of them */
		uint32_t np = 0;
		for (size_t j = 0; j < m; j++) {
			sql_buf_puts(&b, j ? ", (" : "(");
			for (uint32_t c = 0; c < src->ncols; c++) {
				params[np] = src->cells[(size_t)up[at + j] * src->ncols + c];
				np++;
				sql_buf_puts(&b, c ? ", ?" : "?");
			}
			sql_buf_puts(&b, ")");
		}
		if (direct(rb))
			upsert_tail(t, &b);
		if (push_exec(out, nout, cap, &b, params, np) != 0)
			break;
	}
	free(up);
	/* deletes of what is left in `have` */
	size_t it;
	hmap_entry *e = hmap_first(&have, &it);
	while (e) {
		sql_buf b;
		sql_buf_init(&b);
		sql_buf_printf(&b, "DELETE FROM %s WHERE (", target);
		for (size_t p = 0; p < t->npk; p++)
			sql_buf_printf(&b, "%s%s", p ? ", " : "", t->cols[t->pk[p]]);
		sql_buf_puts(&b, ") IN (VALUES ");
		wire_value *params = malloc(ROWS_PER_INSERT * t->npk * sizeof *params + 1);
		uint32_t np = 0;
		size_t m = 0;
		for (; e && m < ROWS_PER_INSERT && params; m++, e = hmap_next(&have, e, &it)) {
			uintptr_t at = (uintptr_t)e->value;
			sql_buf_puts(&b, m ? ", (" : "(");
			for (size_t p = 0; p < t->npk; p++) {
				params[np] = dst->cells[(size_t)(at - 1) * nc + t->pk[p]];
				np++;
				sql_buf_puts(&b, p ? ", ?" : "?");
			}
			sql_buf_puts(&b, ")");
		}
		sql_buf_puts(&b, ")");
		if (!params) {
			sql_buf_free(&b);
			break;
		}
		if (push_exec(out, nout, cap, &b, params, np) != 0)
			break;
	}
	sql_buf_free(&k);
	hmap_free(&have);
}

/* The reads are in: write the differences to the target.  The source rows
 * read become the model of the target for the next round. */
static void sync_diffed(lane *rb)
{
	if (rb->failed) {
		end_cut(rb);
		models_free(rb);
		if (rb->cur)
			move_failed(rb);
		else
			add_after_sync(rb);
		return;
	}
	rb->delta = 0;
	wire_request *reqs = NULL;
	size_t n = 0, cap = 0;
	uint64_t src_rows = 0, src_sum = 0;
	shard_answer **old = rb->model;
	shard_answer **model = calloc(rb->ntabs ? rb->ntabs : 1, sizeof *model);
	for (size_t i = 0; i < rb->ntabs; i++) {
		const wire_response *s = &rb->ans[2 * i]->msg.resp;
		const wire_response *d = old ? &old[i]->msg.resp : &rb->ans[2 * i + 1]->msg.resp;
		src_rows += s->nrows;
		if (rb->final_sync)
			src_sum += rows_checksum(s);  /* verified against the target */
		diff_table(rb, i, s, d, &reqs, &n, &cap);
	}
	rb->src_rows = src_rows;
	rb->src_sum = src_sum;
	if (rb->cur)
		rb->cur->rows_src = src_rows;
	/* the answers (and the params pointing into them) live until the
	 * round below is sent: the requests are encoded at once */
	shard_answer **keep = rb->ans;
	size_t nkeep = rb->nans;
	rb->ans = NULL;
	rb->nans = 0;
	rb->model = NULL;
	end_cut(rb);
	/* the source rows are what the target holds once the writes are in
	 * (a failed write drops the model: sync_written); the other answers
	 * and the old model live until every write is sent */
	writes_free(rb);
	size_t nold = old ? rb->ntabs : 0;
	rb->wkeep = calloc(nkeep + nold + 1, sizeof *rb->wkeep);
	for (size_t i = 0; i < nkeep; i++) {
		if (model && i % 2 == 0)
			model[i / 2] = keep[i];
		else if (rb->wkeep)
			rb->wkeep[rb->nwkeep++] = keep[i];
		else
			shard_answer_free(keep[i]);
	}
	for (size_t i = 0; i < nold; i++) {
		if (rb->wkeep)
			rb->wkeep[rb->nwkeep++] = old[i];
		else
			shard_answer_free(old[i]);
	}
	free(keep);
	free(old);
	rb->model = model;
	rb->wq = reqs;
	rb->nwq = n;
	rb->wq_sent = 0;
	for (size_t i = 0; i < n; i++)
		reqs[i].unlocked = rb->cur != NULL;  /* a move's rows, behind the gate or hidden */
	if (!rb->wkeep || round_begin(rb, n, sync_written) != 0) {
		fail_round(rb, "out of memory");
		after(rb, 0, sync_written);
		return;
	}
	for (size_t i = 0; i < SYNC_WINDOW; i++)
		writes_next(rb);
	round_end_empty(rb);
}

static void final_read(lane *rb);

/* Subtract a per-bucket count/checksum answer from cnt/sum; 0 or -1. */
static int sub_sums(const shard_answer *ans, uint64_t *cnt, uint64_t *sum, uint64_t *rows, uint64_t *total)
{
	const wire_response *a = &ans->msg.resp;
	for (uint32_t r = 0; r < a->nrows; r++) {
		const wire_value *v = &a->cells[(size_t)r * a->ncols];
		if (a->ncols != 3 || v[0].type != WIRE_INT || v[0].i < 0 || v[0].i >= SL_BUCKETS || v[1].type != WIRE_INT ||
		    v[2].type != WIRE_INT)
			return -1;
		cnt[v[0].i] -= (uint64_t)v[1].i;
		sum[v[0].i] -= (uint64_t)v[2].i;
		if (rows) {
			rows[v[0].i] += (uint64_t)v[1].i;
			total[v[0].i] += (uint64_t)v[2].i;
		}
	}
	return 0;
}

/* Both sides' per-bucket counts and checksums are in: read the buckets
 * where the source differs from the model, if any. */
static void final_counted(lane *rb)
{
	end_cut(rb);
	if (rb->failed) {
		models_free(rb);
		move_failed(rb);
		return;
	}
	move *m = rb->cur;
	uint64_t *buf = calloc(6 * (size_t)SL_BUCKETS, sizeof *buf);
	if (!buf) {
		fail_round(rb, "out of memory");
		models_free(rb);
		move_failed(rb);
		return;
	}
	uint64_t *cs = buf, *ss = buf + SL_BUCKETS;              /* model - source */
	uint64_t *ct = buf + 2 * SL_BUCKETS, *st = buf + 3 * SL_BUCKETS;  /* model - target */
	uint64_t *rows = buf + 4 * SL_BUCKETS, *sums = buf + 5 * SL_BUCKETS;  /* the source's */
	memset(rb->dirty, 0, sizeof rb->dirty);
	for (size_t i = 0; i < rb->ntabs && !rb->failed; i++) {
		const tinfo *t = &rb->tabs[i];
		const wire_response *md = &rb->model[i]->msg.resp;
		memset(buf, 0, 4 * (size_t)SL_BUCKETS * sizeof *buf);
		for (uint32_t r = 0; r < md->nrows; r++) {
			const wire_value *row = &md->cells[(size_t)r * md->ncols];
			int b = value_bucket(&row[t->keycol]);
			if (b < 0) {
				memcpy(rb->dirty, m->mask, sizeof rb->dirty);  /* cannot tell: read all */
				continue;
			}
			uint64_t h = row_sum(row, md->ncols);
			cs[b]++, ct[b]++;
			ss[b] += h, st[b] += h;
		}
		if (sub_sums(rb->ans[2 * i], cs, ss, rows, sums) != 0 || sub_sums(rb->ans[2 * i + 1], ct, st, NULL, NULL) != 0) {
			fail_round(rb, "final sync: unexpected answer to a checksum query");
			break;
		}
		for (size_t k = 0; k < m->n; k++) {
			uint32_t b = m->buckets[k] % SL_BUCKETS;
			if (ct[b] || st[b]) {
				fail_round(rb, "final sync: the target's rows of bucket %u are not what was written there", b);
				break;
			}
			if (cs[b] || ss[b])
				rb->dirty[b / 64] |= 1ull << (b % 64);
		}
	}
	uint64_t all_rows = 0, all_sum = 0, d_rows = 0, d_sum = 0;
	size_t ndirty = 0;
	for (size_t k = 0; k < m->n; k++) {
		uint32_t b = m->buckets[k] % SL_BUCKETS;
		all_rows += rows[b];
		all_sum += sums[b];
		if (rb->dirty[b / 64] & (1ull << (b % 64))) {
			ndirty++;
			d_rows += rows[b];
			d_sum += sums[b];
		}
	}
	free(buf);
	if (rb->failed) {
		models_free(rb);
		move_failed(rb);
		return;
	}
	m->rows_src = all_rows;
	m->final_buckets = ndirty;
	rb->full_rows = all_rows;
	rb->full_sum = all_sum;
	rb->src_rows = d_rows;  /* what the target's dirty buckets must hold */
	rb->src_sum = d_sum;
	rb->delta = 0;
	if (ndirty == 0) {
		/* the target holds exactly the source's rows: verified */
		models_free(rb);
		snprintf(m->verified, sizeof m->verified, "%" PRIu64 " rows, checksum %016" PRIx64, all_rows, all_sum);
		move_after_sync(rb);
		return;
	}
	if (round_begin(rb, rb->ntabs, final_read) != 0) {
		fail_round(rb, "out of memory");
		models_free(rb);
		after(rb, 0, move_failed);
		return;
	}
	sql_buf b;
	sql_buf_init(&b);
	for (size_t i = 0; i < rb->ntabs; i++) {
		sql_buf_reset(&b);
		sql_buf_printf(&b, "SELECT * FROM %s", rb->tabs[i].name);
		dirty_pred(rb, i, &b);
		round_exec(rb, i, sync_src(rb), b.data, NULL, 0, true);
	}
	sql_buf_free(&b);
	round_end_empty(rb);
}

/* The differing buckets' source rows are in: write their differences
 * from the model (restricted to those buckets) to the target. */
static void final_read(lane *rb)
{
	if (rb->failed) {
		models_free(rb);
		move_failed(rb);
		return;
	}
	wire_request *reqs = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < rb->ntabs; i++) {
		const wire_response *md = &rb->model[i]->msg.resp;
		wire_response part = *md;
		part.cells = malloc(((size_t)md->nrows * md->ncols + 1) * sizeof *part.cells);
		if (!part.cells) {
			fail_round(rb, "out of memory");
			break;
		}
		part.nrows = 0;
		for (uint32_t r = 0; r < md->nrows; r++) {
			const wire_value *row = &md->cells[(size_t)r * md->ncols];
			int b = value_bucket(&row[rb->tabs[i].keycol]);
			if (b < 0 || (rb->dirty[b / 64] & (1ull << (b % 64))))
				memcpy(&part.cells[(size_t)part.nrows++ * md->ncols], row, md->ncols * sizeof *row);
		}
		diff_table(rb, i, &rb->ans[i]->msg.resp, &part, &reqs, &n, &cap);
		free(part.cells);
	}
	/* the writes' params point into the source's answers and the model */
	writes_free(rb);
	rb->wkeep = calloc(rb->nans + rb->ntabs + 1, sizeof *rb->wkeep);
	if (rb->wkeep) {
		for (size_t i = 0; i < rb->nans; i++)
			rb->wkeep[rb->nwkeep++] = rb->ans[i];
		for (size_t i = 0; i < rb->ntabs; i++)
			rb->wkeep[rb->nwkeep++] = rb->model[i];
		free(rb->ans);
		rb->ans = NULL;
		rb->nans = 0;
		free(rb->model);
		rb->model = NULL;
	}
	models_free(rb);
	rb->wq = reqs;
	rb->nwq = n;
	rb->wq_sent = 0;
	for (size_t i = 0; i < n; i++)
		reqs[i].unlocked = true;
	bool failed = rb->failed;
	if (!rb->wkeep || round_begin(rb, n, sync_written) != 0) {
		fail_round(rb, "out of memory");
		after(rb, 0, sync_written);
		return;
	}
	if (failed) {
		fail_round(rb, "out of memory");
		after(rb, 0, sync_written);
		return;
	}
	for (size_t i = 0; i < SYNC_WINDOW; i++)
		writes_next(rb);
	round_end_empty(rb);
}

static void sync_written(lane *rb)
{
	writes_free(rb);
	if (rb->failed) {
		models_free(rb);  /* the target may hold part of the writes */
		if (rb->cur)
			move_failed(rb);
		else
			add_after_sync(rb);
		return;
	}
	if (!rb->final_sync) {
		if (rb->cur)
			move_after_sync(rb);
		else
			add_after_sync(rb);
		return;
	}
	/* verify: the target now holds exactly the source's rows, by count and
	 * checksum (the target's computed where its rows are: sl_checksum) */
	if (round_begin(rb, rb->ntabs, sync_verified) != 0) {
		fail_round(rb, "out of memory");
		after(rb, 0, rb->cur ? move_failed : add_after_sync);
		return;
	}
	sql_buf b;
	sql_buf_init(&b);
	for (size_t i = 0; i < rb->ntabs; i++) {
		tinfo *t = &rb->tabs[i];
		sql_buf_reset(&b);
		sql_buf_puts(&b, "SELECT count(*), sl_checksum(");
		for (size_t c = 0; c < t->ncols; c++)
			sql_buf_printf(&b, "%s%s", c ? ", " : "", t->cols[c]);
		sql_buf_puts(&b, ")");
		target_rows(rb, i, &b);
		round_exec(rb, i, sync_dst(rb), b.data, NULL, 0, true);
	}
	sql_buf_free(&b);
	round_end_empty(rb);
}

static int count_and_sum(const shard_answer *a, uint64_t *rows, uint64_t *sum)
{
	const wire_response *r = &a->msg.resp;
	if (r->nrows != 1 || r->ncols != 2 || r->cells[0].type != WIRE_INT || r->cells[1].type != WIRE_INT)
		return -1;
	*rows += (uint64_t)r->cells[0].i;
	*sum += (uint64_t)r->cells[1].i;
	return 0;
}

static void sync_verified(lane *rb)
{
	if (!rb->failed) {
		uint64_t rows = 0, sum = 0;
		for (size_t i = 0; i < rb->ntabs && !rb->failed; i++)
			if (count_and_sum(rb->ans[i], &rows, &sum) != 0)
				fail_round(rb, "verification: unexpected answer to a checksum query");
		if (!rb->failed && (rows != rb->src_rows || sum != rb->src_sum))
			fail_round(rb,
				   "verification failed: source %" PRIu64 " rows checksum %016" PRIx64
				   ", target %" PRIu64 " rows checksum %016" PRIx64,
				   rb->src_rows, rb->src_sum, rows, sum);
		else if (!rb->failed && rb->cur && rb->by_bucket)  /* the other buckets matched already */
			snprintf(rb->cur->verified, sizeof rb->cur->verified, "%" PRIu64 " rows, checksum %016" PRIx64,
				 rb->full_rows, rb->full_sum);
		else if (!rb->failed && rb->cur)
			snprintf(rb->cur->verified, sizeof rb->cur->verified, "%" PRIu64 " rows, checksum %016" PRIx64,
				 rows, sum);
	}
	if (rb->failed)
		models_free(rb);
	if (rb->cur) {
		if (rb->failed)
			move_failed(rb);
		else
			move_after_sync(rb);
	} else {
		add_after_sync(rb);
	}
}

/* ---- moves ----------------------------------------------------------------------------- */

static void kick(lane *rb);
static void kick_soon(rebalancer *g);
static void move_copy(lane *rb);
static void move_switch(lane *rb);
static void drain_poll(lane *rb);

static void set_phase(move *m, const char *phase)
{
	snprintf(m->phase, sizeof m->phase, "%s", phase);
}

static void log_phase(lane *rb, move *m, const char *phase)
{
	sql_error err = {0};
	if (catalog_move_put(rb->srv->cat, &m->id, phase, m->src, m->dst, m->buckets, m->n, m->table, m->range, &err) != 0)
		fprintf(stderr, "router: rebalance: cannot log move %" PRId64 ": %s\n", m->id, err.message);
}

static void move_free(move *m)
{
	free(m->buckets);
	free(m->table);
	free(m);
}

static void history_add(lane *rb, move *m)
{
	m->next = rb->g->history;
	rb->g->history = m;
	size_t k = 0;
	for (move *h = rb->g->history; h; h = h->next)
		if (++k == HISTORY && h->next) {
			move *rest = h->next;
			h->next = NULL;
			while (rest) {
				move *n = rest->next;
				move_free(rest);
				rest = n;
			}
			break;
		}
}

static void on_dropped(void *arg, shard_answer *a, const char *error)
{
	(void)arg;
	if (error || (a && a->msg.resp.status == WIRE_ERROR))
		fprintf(stderr, "router: rebalance: dropping a staging table: %s\n",
			error ? error : a->msg.resp.message ? a->msg.resp.message : "error");
	shard_answer_free(a);
}

static void cleanup_queue(lane *rb, size_t shard, const char *phase);

/* The running move ends (done or cancelled, or its cleanup queued: phase
 * cleanup or cancelling until that is done): the lane takes its next job. */
static void move_finish(lane *rb, const char *phase)
{
	move *m = rb->cur;
	rb->cur = NULL;
	end_cut(rb);
	double held = gate_open(rb);
	if (held > m->pause_ms && strcmp(phase, "done") == 0)
		m->pause_ms = held;
	set_phase(m, phase);
	if (strcmp(phase, "cleanup") != 0 && strcmp(phase, "cancelling") != 0)
		log_phase(rb, m, phase);  /* else when its cleanup is done */
	m->t_done = now_ms();
	/* the staging tables are no longer needed */
	sql_buf b;
	sql_buf_init(&b);
	for (size_t i = 0; m->table && i < rb->ntabs; i++) {
		sql_buf_reset(&b);
		sql_buf_printf(&b, "DROP TABLE IF EXISTS %s", rb->tabs[i].stage);
		wire_request r = {.op = WIRE_OP_EXEC, .sql = b.data, .sql_len = (uint32_t)b.len};
		shard_pool_send(rb->srv->pool, m->dst, &r, on_dropped, NULL);
	}
	sql_buf_free(&b);
	fprintf(stderr, "router: rebalance: move %" PRId64 " (%zu buckets, shard %zu -> %zu) %s: %s; %.0f ms: rounds",
		m->id, m->n, m->src, m->dst, phase, m->verified[0] ? m->verified : m->note,
		(double)(m->t_done - m->t_start));
	for (int r = 0; r < m->rounds && r <= CATCHUP_ROUNDS; r++)
		fprintf(stderr, " %.0f", m->round_ms[r]);
	fprintf(stderr, ", pause: drain %.0f + sync %.0f + flip %.0f + switch %.0f ms (final sync read %zu of %zu buckets)\n",
		m->drain_ms, m->sync_ms, m->flip_ms, m->commit_ms, m->final_buckets, m->n);
	history_add(rb, m);
	rb->busy = 0;
	after(rb, 0, kick);
}

/* The running move ends.  A cancelled bucket move's copy on the target
 * (hidden meanwhile) is deleted behind it. */
static void move_end(lane *rb, const char *phase)
{
	move *m = rb->cur;
	if (direct(rb) && strcmp(phase, "cancelled") == 0 && rb->ntabs > 0) {
		end_cut(rb);
		gate_open(rb);
		/* durably cancelled first: after a crash the copy stays hidden,
		 * harmless (a later move of these buckets to this shard syncs
		 * over it), rather than the move resuming */
		log_phase(rb, m, "cancelled");
		cleanup_queue(rb, m->dst, "cancelled");
		move_finish(rb, "cancelling");
		return;
	}
	move_finish(rb, phase);
}

/* ---- deleting a bucket move's rows where they are hidden ---------------------------- */

/*
 * After a switch the source's rows of B, after a cancel the target's copy:
 * hidden on that shard (its _slhidden), so no client statement reaches them
 * and they are deleted without the gate, behind the moves: the lanes go on
 * with the next moves meanwhile.  Cleanups run one statement at a time, in
 * order, only while no lane runs a move: once every queued move is done, or
 * when the next one waits for a cleanup (no move may take a bucket whose
 * cleanup is pending).  Deleting random keys rewrites most of the source's
 * index pages and costs its writer about twice what copying them cost (and
 * a cutover's drain and switch would wait behind the delete in the shard's
 * writer), so the copies go first and the deletes follow in one stretch.
 * The rows go in autocommit statements of up to CLEANUP_CHUNK rows, then
 * the buckets leave _slhidden, then the move is logged done (a
 * router crash before that redoes the switch and its cleanup).  A shard that
 * stays unreachable keeps the rows hidden, which is harmless: the scatter
 * filter leaves them out, and a later move of those buckets to that shard
 * reads what is there and syncs over it.
 */
#define CLEANUP_CHUNK 20000    /* a move's rows, mostly in one statement: small
				* chunks of random keys rewrite most index pages
				* each (see PARAMS_PER_WRITE) */
#define CLEANUP_RETRIES 25

typedef struct cleanup_job {
	int64_t id;            /* the move */
	size_t src, dst, shard;
	uint32_t *buckets;
	size_t n;
	uint64_t mask[SL_BUCKETS / 64];
	const char *phase;     /* "done" or "cancelled" when finished */
	char **sql;            /* per table: delete a chunk of B's rows */
	size_t nsql, at;       /* at == nsql: the _slhidden statement */
	char *unhide;
	int tries, inflight;
	uint64_t t0;
	struct cleanup_job *next;
} cleanup_job;

static void cleanup_free(cleanup_job *j)
{
	for (size_t i = 0; i < j->nsql; i++)
		free(j->sql[i]);
	free(j->sql);
	free(j->unhide);
	free(j->buckets);
	free(j);
}

static bool cleaning(const rebalancer *g)
{
	return g->cleanups && g->cleanups->inflight;
}

/* Do pending cleanups keep m off its buckets? */
static bool cleanup_blocks(const rebalancer *g, const move *m)
{
	for (const cleanup_job *j = g->cleanups; j && !m->table; j = j->next)
		for (size_t w = 0; w < SL_BUCKETS / 64; w++)
			if (j->mask[w] & m->mask[w])
				return true;
	return false;
}

static void cleanup_pump(rebalancer *g);
static bool lanes_idle(const rebalancer *g);

static void on_clean_timer(uv_timer_t *t)
{
	cleanup_pump(t->data);
}

/* The head job is finished (or given up): the move is done. */
static void cleanup_done(rebalancer *g, const char *problem)
{
	cleanup_job *j = g->cleanups;
	g->cleanups = j->next;
	double ms = (double)(now_ms() - j->t0);
	for (move *h = g->history; h; h = h->next) {
		if (h->id != j->id)
			continue;
		h->cleanup_ms = ms;
		set_phase(h, j->phase);
		if (problem)
			snprintf(h->note, sizeof h->note, "rows of the moved buckets left hidden on shard %zu: %.100s",
				 j->shard, problem);
	}
	if (strcmp(j->phase, "done") == 0) {
		sql_error err = {0};
		int64_t id = j->id;
		if (catalog_move_put(g->srv->cat, &id, "done", j->src, j->dst, j->buckets, j->n, NULL, 0, &err) != 0)
			fprintf(stderr, "router: rebalance: cannot log move %" PRId64 ": %s\n", j->id, err.message);
	}
	if (problem)
		fprintf(stderr, "router: rebalance: move %" PRId64 ": rows left hidden on shard %zu: %s\n", j->id, j->shard,
			problem);
	else
		fprintf(stderr, "router: rebalance: move %" PRId64 " %s: cleanup on shard %zu %.0f ms\n", j->id, j->phase,
			j->shard, ms);
	cleanup_free(j);
	kick_soon(g);  /* moves kept off these buckets may start */
}

static void on_cleaned(void *arg, shard_answer *a, const char *error)
{
	rebalancer *g = arg;
	if (g->closing || !g->cleanups) {
		shard_answer_free(a);
		return;
	}
	cleanup_job *j = g->cleanups;
	j->inflight = 0;
	const char *problem = error ? error
			    : a && a->msg.resp.status == WIRE_ERROR ? (a->msg.resp.message ? a->msg.resp.message : "error")
			    : NULL;
	if (problem) {
		if (++j->tries >= CLEANUP_RETRIES) {
			char msg[160];
			snprintf(msg, sizeof msg, "%s", problem);
			shard_answer_free(a);
			cleanup_done(g, msg);
			cleanup_pump(g);
			return;
		}
		shard_answer_free(a);
		uv_timer_start(&g->clean_timer, on_clean_timer, SWITCH_RETRY_MS, 0);
		return;
	}
	if (j->at < j->nsql) {
		if (a->msg.resp.changes < CLEANUP_CHUNK)
			j->at++;  /* this table is done */
	} else {
		shard_answer_free(a);
		cleanup_done(g, NULL);
		cleanup_pump(g);
		return;
	}
	shard_answer_free(a);
	cleanup_pump(g);
}

/* Send the head job's next statement, unless one is in flight or a lane
 * holds the gate (gate_open pumps again). */
static void cleanup_pump(rebalancer *g)
{
	cleanup_job *j = g->cleanups;
	if (g->closing || !j || j->inflight || g->gate != GATE_OPEN || !lanes_idle(g))
		return;
	const char *sql = j->at < j->nsql ? j->sql[j->at] : j->unhide;
	wire_request r = {.op = WIRE_OP_EXEC, .sql = sql, .sql_len = (uint32_t)strlen(sql), .unlocked = true};
	j->inflight = 1;
	if (shard_pool_send(g->srv->pool, j->shard, &r, on_cleaned, g) != 0) {
		j->inflight = 0;
		if (++j->tries >= CLEANUP_RETRIES) {
			cleanup_done(g, "cannot reach the shard");
			cleanup_pump(g);
			return;
		}
		uv_timer_start(&g->clean_timer, on_clean_timer, SWITCH_RETRY_MS, 0);
	}
}

/* Queue the deletion of the running move's rows of B on `shard`. */
static void cleanup_queue(lane *rb, size_t shard, const char *phase)
{
	move *m = rb->cur;
	cleanup_job *j = calloc(1, sizeof *j);
	if (j) {
		j->buckets = malloc((m->n ? m->n : 1) * sizeof *j->buckets);
		j->sql = calloc(rb->ntabs ? rb->ntabs : 1, sizeof *j->sql);
	}
	if (!j || !j->buckets || !j->sql) {
		if (j)
			cleanup_free(j);
		fprintf(stderr, "router: rebalance: move %" PRId64 ": out of memory: rows left hidden on shard %zu\n",
			m->id, shard);
		return;
	}
	j->id = m->id;
	j->src = m->src;
	j->dst = m->dst;
	j->shard = shard;
	memcpy(j->buckets, m->buckets, m->n * sizeof *j->buckets);
	j->n = m->n;
	memcpy(j->mask, m->mask, sizeof j->mask);
	j->phase = phase;
	j->t0 = now_ms();
	sql_buf b;
	sql_buf_init(&b);
	for (size_t i = 0; i < rb->ntabs; i++) {
		tinfo *t = &rb->tabs[i];
		wire_value none[2];
		uint32_t np;
		sql_buf_reset(&b);
		sql_buf_printf(&b, "DELETE FROM %s WHERE rowid IN (SELECT rowid FROM %s", t->name, t->name);
		move_pred(rb, i, &b, none, &np);
		sql_buf_printf(&b, " LIMIT %d)", CLEANUP_CHUNK);
		j->sql[j->nsql++] = b.failed ? NULL : strdup(b.data);
	}
	sql_buf_reset(&b);
	hidden_sql(m, &b, false);
	j->unhide = b.failed ? NULL : strdup(b.data);
	sql_buf_free(&b);
	bool ok = j->unhide != NULL;
	for (size_t i = 0; i < j->nsql; i++)
		ok = ok && j->sql[i];
	if (!ok) {
		cleanup_free(j);
		fprintf(stderr, "router: rebalance: move %" PRId64 ": out of memory: rows left hidden on shard %zu\n",
			m->id, shard);
		return;
	}
	cleanup_job **pp = &rb->g->cleanups;
	while (*pp)
		pp = &(*pp)->next;
	*pp = j;
	cleanup_pump(rb->g);
}

/* Something failed before the switch: open the gate, try again later. */
static void move_failed(lane *rb)
{
	move *m = rb->cur;
	end_cut(rb);
	models_free(rb);  /* the copy starts over from what the target holds */
	gate_open(rb);
	m->attempts++;
	snprintf(m->note, sizeof m->note, "attempt %d failed: %.120s", m->attempts, rb->err);
	fprintf(stderr, "router: rebalance: move %" PRId64 ": %s\n", m->id, m->note);
	if (rb->g->cancel) {
		move_end(rb, "cancelled");
		return;
	}
	set_phase(m, "copy");
	after(rb, 1000, move_copy);
}

/* Set up: the bucket index on the source, staging tables on the target. */
static void move_prepared(lane *rb)
{
	if (rb->failed) {
		move_failed(rb);
		return;
	}
	if (!rb->cur->table && rb->cur->src < 256 && rb->cur->dst < 256 &&
	    (!rb->g->bkt_indexed[rb->cur->src] || !rb->g->bkt_indexed[rb->cur->dst])) {
		rb->g->bkt_indexed[rb->cur->src] = rb->g->bkt_indexed[rb->cur->dst] = true;
		kick_soon(rb->g);  /* the other lanes may start now */
	}
	rb->cur->rounds = 0;
	rb->cur->t_mark = now_ms();
	sync_start(rb, 0);
}

static void move_copy(lane *rb)
{
	move *m = rb->cur;
	if (rb->g->cancel) {
		move_end(rb, "cancelled");
		return;
	}
	if (tabs_load(rb, true) != 0) {
		fail_round(rb, "out of memory");
		move_failed(rb);
		return;
	}
	set_phase(m, "copy");
	/* a bucket move: the bucket index on both sides, and the buckets
	 * hidden on the target before any of their rows arrive there */
	if (round_begin(rb, 2 * rb->ntabs + (direct(rb) ? 1 : 0), move_prepared) != 0) {
		move_failed(rb);
		return;
	}
	sql_buf b;
	sql_buf_init(&b);
	for (size_t i = 0; i < rb->ntabs; i++) {
		tinfo *t = &rb->tabs[i];
		sql_buf_reset(&b);
		if (m->table)
			sql_buf_puts(&b, "SELECT 1");  /* a range is found by its key's index */
		else
			sql_buf_printf(&b, "CREATE INDEX IF NOT EXISTS %s ON %s(sl_bucket(%s))", t->bkt_index, t->name,
				       t->key);
		round_exec(rb, 2 * i, m->src, b.data, NULL, 0, m->table != NULL);
		sql_buf_reset(&b);
		if (direct(rb)) {
			sql_buf_printf(&b, "CREATE INDEX IF NOT EXISTS %s ON %s(sl_bucket(%s))", t->bkt_index, t->name,
				       t->key);
		} else {
			sql_buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (", t->stage);
			for (size_t c = 0; c < t->ncols; c++)
				sql_buf_printf(&b, "%s%s", c ? ", " : "", t->cols[c]);
			sql_buf_puts(&b, ", PRIMARY KEY (");
			for (size_t p = 0; p < t->npk; p++)
				sql_buf_printf(&b, "%s%s", p ? ", " : "", t->cols[t->pk[p]]);
			sql_buf_puts(&b, "))");
		}
		round_exec(rb, 2 * i + 1, m->dst, b.data, NULL, 0, false);
	}
	if (direct(rb)) {
		sql_buf_reset(&b);
		hidden_sql(m, &b, true);
		round_exec_gated(rb, 2 * rb->ntabs, m->dst, b.data, NULL, 0);
	}
	sql_buf_free(&b);
	round_end_empty(rb);
}


static void move_cutover(lane *rb)
{
	move *m = rb->cur;
	if (rb->g->gate != GATE_OPEN || cleaning(rb->g)) {
		/* another lane is cutting over: wait for the gate; or deleting
		 * a move's rows, which holds a shard's writer (the drain would
		 * wait for the transactions behind it) */
		after(rb, 2, move_cutover);
		return;
	}
	set_phase(m, "cutover");
	failpoint_hit("router.rebalance.cutover");
	gate_close(rb, m->table ? GATE_RANGE : GATE_MOVE, m->src, m->dst, m->mask);
	after(rb, 0, drain_poll);
}

static void move_after_sync(lane *rb)
{
	move *m = rb->cur;
	if (rb->g->cancel && !holds_gate(rb)) {
		move_end(rb, "cancelled");
		return;
	}
	if (rb->final_sync) {
		move_switch(rb);
		return;
	}
	if (m->rounds <= CATCHUP_ROUNDS)
		m->round_ms[m->rounds] = (double)(now_ms() - m->t_mark);
	m->t_mark = now_ms();
	m->rounds++;
	if (m->rounds == 1)
		failpoint_hit("router.rebalance.copied");
	/* Another round while the last one changed many rows, except after a
	 * quick first copy: its rows were all new to the target, but what the
	 * source changed meanwhile is what a round that short lets change,
	 * which the final sync copies as cheaply as a catch-up round would
	 * (each round reads every row of B on the source again). */
	bool quick_copy = m->rounds == 1 && m->round_ms[0] < CATCHUP_QUICK_MS;
	if (rb->delta > CATCHUP_SMALL && m->rounds < CATCHUP_ROUNDS && !quick_copy) {
		set_phase(m, "catchup");
		sync_start(rb, 0);
		return;
	}
	move_cutover(rb);
}

/* The gate is closed: wait until nothing in flight or in an open
 * transaction can still change B on the source. */
static void drain_poll(lane *rb)
{
	move *m = rb->cur;
	if (rb->g->cancel) {
		move_end(rb, "cancelled");
		return;
	}
	size_t busy = session_drain_count(rb->srv, rb->g);
	if (busy == 0) {
		/* drained: from now on nobody passes the gate (a new generation
		 * no session was marked for) */
		rb->g->gate_gen = ++rb->g->gen_counter;
		m->drain_ms = (double)(now_ms() - rb->g->gate_since);
		m->t_mark = now_ms();
		sync_start(rb, 1);
		return;
	}
	if (now_ms() - rb->g->gate_since > DRAIN_TIMEOUT_MS) {
		gate_open(rb);
		m->attempts++;
		snprintf(m->note, sizeof m->note,
			 "cutover attempt %d: %zu transaction(s) on shard %zu did not finish within %d ms; retrying",
			 m->attempts, busy, m->src, DRAIN_TIMEOUT_MS);
		set_phase(m, "catchup");
		after(rb, 200, move_prepared);
		return;
	}
	after(rb, 1, drain_poll);
}

/* ---- the switch: flip the map, move the rows at the consistent cut ---------------------- */

/*
 * The gate keeps every client statement off B, so the rows need no
 * transaction workspace, locks or 2PC to move: the target copies them from
 * its staging table and the source deletes them, each in one autocommit
 * statement on its own shard (durable when answered, idempotent when
 * redone).  What must not happen is a scatter read seeing them on both
 * shards or on neither, so the two statements run as one coord_apply: after
 * every older read has fixed its snapshots, and before any newer read may
 * begin.  A switch whose statements fail keeps its apply open (reads wait,
 * as they do for a phase two being retried) and is retried; after
 * SWITCH_RETRIES it lets reads go and closes the gate to every scatter
 * read of the two shards instead (rb->switching), as after a router crash
 * in the switch, until the redo succeeds.  (Reads already waiting at the
 * cut then go on, as they do when a phase two is left to the sweep after
 * its retries; the statements fail only while one of the two shards is
 * unreachable, and a read of it fails then too.)
 */

static void switch_run(lane *rb);
static void switch_ran(lane *rb);

static void send_assign(lane *rb, size_t slot, size_t shard)
{
	uint32_t *buckets = malloc(SL_BUCKETS * sizeof *buckets);
	uint32_t k = 0;
	for (uint32_t b = 0; buckets && b < SL_BUCKETS; b++)
		if (catalog_bucket_shard(rb->srv->cat, b) == shard)
			buckets[k++] = b;
	wire_request r = {.op = WIRE_OP_ASSIGN, .epoch = catalog_epoch(rb->srv->cat), .buckets = buckets,
			  .nbuckets = k};
	round_send(rb, slot, shard, &r);
	free(buckets);
}

static void switch_ready(void *arg)
{
	lane *rb = arg;
	if (!rb->g->closing)
		switch_run(rb);
}

static void switch_end_apply(lane *rb)
{
	if (rb->apply) {
		coord_apply_end(rb->srv->coord, rb->apply);
		rb->apply = NULL;
	}
}

static void move_switch(lane *rb)
{
	move *m = rb->cur;
	if (m->t_mark) {
		m->sync_ms = (double)(now_ms() - m->t_mark);
		m->t_mark = now_ms();
	}
	if (strcmp(m->phase, "switch") != 0) {
		failpoint_hit("router.rebalance.before_switch");
		sql_error err = {0};
		if (catalog_move_switch(rb->srv->cat, m->id, m->dst, m->buckets, m->n, m->table, m->range, &err) != 0) {
			fail_round(rb, "%s", err.message);
			move_failed(rb);
			return;
		}
		set_phase(m, "switch");
		failpoint_hit("router.rebalance.switched");
	}
	if (m->t_mark) {
		m->flip_ms = (double)(now_ms() - m->t_mark);
		m->t_mark = now_ms();
	}
	rb->switch_tries = 0;
	rb->switch_step = 0;
	switch_end_apply(rb);
	rb->apply = coord_apply_begin(rb->srv->coord, switch_ready, rb);
	if (!rb->apply) {
		/* no apply to order it: keep scatter reads of both shards out */
		rb->g->switching = 1;
		switch_run(rb);
		return;
	}
	if (coord_apply_ready(rb->apply))
		switch_run(rb);
}

/* One round, pipelined on each shard's connection: the new bucket lists
 * (bucket moves), then each table's statement.  With failpoints armed it
 * is two rounds, the target's inserts and then the source's deletes, so
 * that a crash between them is a real state (router.rebalance.commit). */
static void switch_run(lane *rb)
{
	move *m = rb->cur;
	bool split = failpoints_armed;
	bool inserts = !split || rb->switch_step == 0, deletes = !split || rb->switch_step == 1;
	size_t na = m->table || !inserts ? 0 : 2;
	size_t per = direct(rb) ? 1 : rb->ntabs;
	size_t n = na + (inserts ? per : 0) + (deletes ? per : 0);
	if (round_begin(rb, n, switch_ran) != 0) {
		fail_round(rb, "out of memory");
		after(rb, SWITCH_RETRY_MS, switch_ran);
		return;
	}
	size_t slot = 0;
	if (na) {
		send_assign(rb, slot++, m->src);
		send_assign(rb, slot++, m->dst);
	}
	sql_buf b;
	sql_buf_init(&b);
	if (direct(rb)) {
		/* the copy is in the target's table: B shows there and hides on
		 * the source (its rows are deleted after the gate opens) */
		if (inserts) {
			hidden_sql(m, &b, false);
			round_exec_gated(rb, slot++, m->dst, b.data, NULL, 0);
		}
		if (deletes) {
			sql_buf_reset(&b);
			hidden_sql(m, &b, true);
			round_exec_gated(rb, slot++, m->src, b.data, NULL, 0);
		}
	}
	for (size_t i = 0; !direct(rb) && i < rb->ntabs; i++) {
		tinfo *t = &rb->tabs[i];
		if (inserts) {
			sql_buf_reset(&b);
			sql_buf_printf(&b, "INSERT INTO %s SELECT * FROM %s WHERE true ON CONFLICT DO NOTHING", t->name,
				       t->stage);
			round_exec_gated(rb, slot++, m->dst, b.data, NULL, 0);
		}
		if (deletes) {
			wire_value params[2];
			uint32_t np;
			sql_buf_reset(&b);
			sql_buf_printf(&b, "DELETE FROM %s", t->name);
			move_pred(rb, i, &b, params, &np);
			round_exec_gated(rb, slot++, m->src, b.data, params, np);
		}
	}
	sql_buf_free(&b);
	round_end_empty(rb);
}

static void switch_ran(lane *rb)
{
	move *m = rb->cur;
	if (rb->failed) {
		snprintf(m->note, sizeof m->note, "switch: %.120s; retrying", rb->err);
		if (rb->switch_tries == 0)
			fprintf(stderr, "router: rebalance: move %" PRId64 ": %s\n", m->id, m->note);
		if (++rb->switch_tries >= SWITCH_RETRIES && rb->apply) {
			/* stop holding every read at the cut: hold those of the two
			 * shards at the gate instead */
			rb->g->switching = 1;
			switch_end_apply(rb);
		}
		after(rb, SWITCH_RETRY_MS, switch_run);
		return;
	}
	if (failpoints_armed && rb->switch_step == 0) {
		failpoint_hit("router.rebalance.commit");
		rb->switch_step = 1;
		switch_run(rb);
		return;
	}
	switch_end_apply(rb);
	failpoint_hit("router.rebalance.applied");
	if (m->t_mark)
		m->commit_ms = (double)(now_ms() - m->t_mark);
	if (direct(rb)) {
		double held = gate_open(rb);
		if (held > m->pause_ms)
			m->pause_ms = held;
		cleanup_queue(rb, m->src, "done");
		move_finish(rb, "cleanup");
		return;
	}
	move_end(rb, "done");
}

/* ---- adding a shard ------------------------------------------------------------------ */

static void add_pinged(lane *rb);
static void add_schema(lane *rb);
static void add_indexes(lane *rb);
static void add_drain(lane *rb);

static void add_finish(lane *rb, int ok, const char *sqlstate, const char *msg)
{
	add_job *j = rb->add_cur;
	rb->add_cur = NULL;
	gate_open(rb);
	tabs_free(rb);
	if (j->done)
		j->done(j->arg, ok, sqlstate, msg);
	free(j);
	rb->busy = 0;
	after(rb, 0, kick);
}

static void add_begin(lane *rb)
{
	add_job *j = rb->add_cur;
	j->idx = catalog_nshards(rb->srv->cat);
	if (j->idx >= 256) {
		add_finish(rb, 0, "54000", "a cluster has at most 256 shards");
		return;
	}
	for (size_t i = 0; i < j->idx; i++)
		if (strcmp(catalog_shard_addr(rb->srv->cat, i), j->addr) == 0) {
			char msg[320];
			snprintf(msg, sizeof msg, "shard \"%s\" is already in the cluster", j->addr);
			add_finish(rb, 0, "42710", msg);
			return;
		}
	if (shard_pool_set_addr(rb->srv->pool, j->idx, j->addr) != 0 || round_begin(rb, 2, add_pinged) != 0) {
		add_finish(rb, 0, "53200", "out of memory");
		return;
	}
	wire_request ping = {.op = WIRE_OP_PING};
	round_send(rb, 0, j->idx, &ping);
	round_exec(rb, 1, catalog_first_shard(rb->srv->cat),
		   "SELECT type, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '\\_sl%' ESCAPE '\\' "
		   "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type = 'index', rowid",
		   NULL, 0, true);
}

static void add_pinged(lane *rb)
{
	if (rb->failed) {
		char msg[768];
		snprintf(msg, sizeof msg, "cannot add shard %s: %s", rb->add_cur->addr, rb->err);
		add_finish(rb, 0, "08006", msg);
		return;
	}
	rb->schema_ans = rb->ans[1];
	rb->ans[1] = NULL;
	add_schema(rb);
}

/* "CREATE TABLE t" -> "CREATE TABLE IF NOT EXISTS t" (and indexes). */
static void idempotent_ddl(sql_buf *b, const char *sql)
{
	static const char *const forms[] = {"CREATE TABLE ", "CREATE UNIQUE INDEX ", "CREATE INDEX "};
	for (size_t f = 0; f < 3; f++) {
		size_t n = strlen(forms[f]);
		if (strncasecmp(sql, forms[f], n) == 0 && strncasecmp(sql + n, "IF NOT EXISTS", 13) != 0) {
			sql_buf_append(b, sql, n);
			sql_buf_puts(b, "IF NOT EXISTS ");
			sql_buf_puts(b, sql + n);
			return;
		}
	}
	sql_buf_puts(b, sql);
}

static void send_schema(lane *rb, bool indexes, void (*next)(lane *))
{
	const wire_response *r = &rb->schema_ans->msg.resp;
	size_t n = 0;
	for (uint32_t i = 0; i < r->nrows; i++)
		n += (strcmp(r->cells[i * r->ncols].p, "index") == 0) == indexes;
	if (round_begin(rb, n, next) != 0) {
		add_finish(rb, 0, "53200", "out of memory");
		return;
	}
	sql_buf b;
	sql_buf_init(&b);
	size_t k = 0;
	for (uint32_t i = 0; i < r->nrows; i++) {
		if ((strcmp(r->cells[i * r->ncols].p, "index") == 0) != indexes)
			continue;
		sql_buf_reset(&b);
		idempotent_ddl(&b, r->cells[i * r->ncols + 1].p);
		round_exec(rb, k++, rb->add_cur->idx, b.data, NULL, 0, false);
	}
	sql_buf_free(&b);
	round_end_empty(rb);
}

static void add_schema(lane *rb)
{
	send_schema(rb, false, add_indexes);
}

static void add_indexes(lane *rb)
{
	if (rb->failed) {
		shard_answer_free(rb->schema_ans);
		rb->schema_ans = NULL;
		char msg[768];
		snprintf(msg, sizeof msg, "copying the schema to shard %s: %s", rb->add_cur->addr, rb->err);
		add_finish(rb, 0, "58030", msg);
		return;
	}
	send_schema(rb, true, add_drain);
}

/* Reference tables: close the gate for their writes, drain, copy them. */
static void add_drain(lane *rb)
{
	shard_answer_free(rb->schema_ans);
	rb->schema_ans = NULL;
	if (rb->failed) {
		char msg[768];
		snprintf(msg, sizeof msg, "copying the indexes to shard %s: %s", rb->add_cur->addr, rb->err);
		add_finish(rb, 0, "58030", msg);
		return;
	}
	if (rb->g->gate == GATE_OPEN)
		gate_close(rb, GATE_REF, catalog_first_shard(rb->srv->cat), 0, NULL);
	if (session_drain_count(rb->srv, rb->g) != 0) {
		if (now_ms() - rb->g->gate_since > DRAIN_TIMEOUT_MS) {
			add_finish(rb, 0, "55006",
				   "ALTER CLUSTER ADD SHARD: transactions writing reference tables did not finish in time; "
				   "try again");
			return;
		}
		after(rb, 1, add_drain);
		return;
	}
	rb->g->gate_gen = ++rb->g->gen_counter;  /* drained: nobody passes any more */
	if (tabs_load(rb, false) != 0) {
		add_finish(rb, 0, "53200", "out of memory");
		return;
	}
	sync_start(rb, 1);
}

static void add_assigned(lane *rb);

static void add_after_sync(lane *rb)
{
	add_job *j = rb->add_cur;
	if (rb->failed) {
		char msg[768];
		snprintf(msg, sizeof msg, "copying reference tables to shard %s: %s", j->addr, rb->err);
		add_finish(rb, 0, "58030", msg);
		return;
	}
	sql_error err = {0};
	int idx = catalog_add_shard(rb->srv->cat, j->addr, &err);
	if (idx < 0 || (size_t)idx != j->idx) {
		add_finish(rb, 0, err.sqlstate[0] ? err.sqlstate : "XX000", err.message[0] ? err.message : "shard index");
		return;
	}
	size_t n = catalog_nshards(rb->srv->cat);
	if (round_begin(rb, n, add_assigned) != 0) {
		add_finish(rb, 0, "53200", "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		send_assign(rb, i, i);
}

static void add_assigned(lane *rb)
{
	add_job *j = rb->add_cur;
	char msg[768];
	snprintf(msg, sizeof msg, "shard %zu (%s) added", j->idx, j->addr);
	fprintf(stderr, "router: rebalance: %s\n", msg);
	add_finish(rb, 1, NULL, msg);
}

void rebalance_add_shard(rebalancer *rb, const char *addr, rebalance_cb done, void *arg)
{
	add_job *j = calloc(1, sizeof *j);
	if (!j || !addr || !addr[0] || strlen(addr) >= sizeof j->addr || !strchr(addr, ':')) {
		free(j);
		done(arg, 0, "22023", "invalid shard address: expected 'host:port'");
		return;
	}
	snprintf(j->addr, sizeof j->addr, "%s", addr);
	j->done = done;
	j->arg = arg;
	add_job **pp = &rb->adds;
	while (*pp)
		pp = &(*pp)->next;
	*pp = j;
	kick_soon(rb);
}

/* ---- planning (REBALANCE) --------------------------------------------------------------- */

static void plan_counted(lane *rb);

static int queue_move_of(lane *rb, const uint32_t *buckets, size_t n, size_t src, size_t dst, const char *table,
			 size_t range)
{
	move *m = calloc(1, sizeof *m);
	if (!m)
		return -1;
	if (table) {
		m->table = strdup(table);
		m->range = range;
		if (!m->table) {
			free(m);
			return -1;
		}
	}
	m->buckets = malloc((n ? n : 1) * sizeof *m->buckets);
	if (!m->buckets) {
		free(m->table);
		free(m);
		return -1;
	}
	if (n)
		memcpy(m->buckets, buckets, n * sizeof *buckets);
	m->n = n;
	m->src = src;
	m->dst = dst;
	for (size_t i = 0; i < n; i++)
		m->mask[buckets[i] / 64] |= 1ull << (buckets[i] % 64);
	set_phase(m, "queued");
	move **pp = &rb->g->queue;
	while (*pp)
		pp = &(*pp)->next;
	*pp = m;
	return 0;
}

/* Log every move queued since the last call, in one catalog transaction
 * (a move that stays unlogged is logged when it starts). */
static void log_queued(lane *rb)
{
	size_t n = 0;
	for (move *m = rb->g->queue; m; m = m->next)
		n += m->id == 0;
	catalog_move *cm = calloc(n ? n : 1, sizeof *cm);
	if (!cm)
		return;
	size_t k = 0;
	for (move *m = rb->g->queue; m; m = m->next)
		if (m->id == 0)
			cm[k++] = (catalog_move){.src = m->src, .dst = m->dst, .buckets = m->buckets, .nbuckets = m->n,
						 .table = m->table, .range = m->range};
	sql_error err = {0};
	if (catalog_moves_queue(rb->srv->cat, cm, k, &err) != 0) {
		fprintf(stderr, "router: rebalance: cannot log queued moves: %s\n", err.message);
	} else {
		k = 0;
		for (move *m = rb->g->queue; m; m = m->next)
			if (m->id == 0)
				m->id = cm[k++].id;
	}
	free(cm);
}

static int queue_move(lane *rb, const uint32_t *buckets, size_t n, size_t src, size_t dst)
{
	return queue_move_of(rb, buckets, n, src, dst, NULL, 0);
}

/* One move asked for by a statement: queued, logged, started when its turn comes. */
static int queue_one(lane *rb, const uint32_t *buckets, size_t n, size_t src, size_t dst, const char *table,
		     size_t range, sql_error *err)
{
	if (queue_move_of(rb, buckets, n, src, dst, table, range) != 0) {
		sql_error_set(err, "53200", 0, "out of memory");
		return -1;
	}
	log_queued(rb);
	kick_soon(rb->g);
	return 0;
}

/* Planning, first: every shard's bucket indexes, one shard at a time (each
 * build holds that shard's writer a while), so that no move needs to build
 * one and two moves of different shards run side by side from the start
 * (pick_move).  A shard that fails here builds its index in its first move. */
static void plan_count(lane *rb);

static void plan_indexed(lane *rb)
{
	size_t ns = catalog_nshards(rb->srv->cat);
	if (!rb->failed && rb->plan_shard < ns && rb->plan_shard < 256)
		rb->g->bkt_indexed[rb->plan_shard] = true;
	rb->failed = 0;
	rb->plan_shard++;
	while (rb->plan_shard < ns && (catalog_shard_removed(rb->srv->cat, rb->plan_shard) ||
				       (rb->plan_shard < 256 && rb->g->bkt_indexed[rb->plan_shard])))
		rb->plan_shard++;
	if (rb->plan_shard >= ns) {
		plan_count(rb);
		return;
	}
	if (round_begin(rb, rb->ntabs, plan_indexed) != 0) {
		plan_count(rb);
		return;
	}
	sql_buf b;
	sql_buf_init(&b);
	for (size_t i = 0; i < rb->ntabs; i++) {
		sql_buf_reset(&b);
		sql_buf_printf(&b, "CREATE INDEX IF NOT EXISTS %s ON %s(sl_bucket(%s))", rb->tabs[i].bkt_index,
			       rb->tabs[i].name, rb->tabs[i].key);
		round_exec(rb, i, rb->plan_shard, b.data, NULL, 0, false);
	}
	sql_buf_free(&b);
	round_end_empty(rb);
}

/* Planning could not go on: the REBALANCE statement fails, the lane is free. */
static void plan_oom(lane *rb)
{
	rebalance_cb d = rb->g->plan_done;
	rb->g->plan_done = NULL;
	rb->busy = 0;
	d(rb->g->plan_arg, 0, "53200", "out of memory");
}

static void plan_begin(lane *rb)
{
	if (tabs_load(rb, true) != 0) {
		plan_oom(rb);
		return;
	}
	rb->plan_shard = (size_t)-1;  /* plan_indexed goes to shard 0 first */
	rb->failed = 0;
	plan_indexed(rb);
}

static void plan_count(lane *rb)
{
	if (tabs_load(rb, true) != 0) {
		plan_oom(rb);
		return;
	}
	size_t ns = catalog_nshards(rb->srv->cat);
	size_t nt = 0;
	for (size_t i = 0; i < rb->ntabs; i++)
		nt += !rb->g->plan_table || strcmp(rb->tabs[i].name, rb->g->plan_table) == 0;
	if (round_begin(rb, nt * ns, plan_counted) != 0) {
		plan_oom(rb);
		return;
	}
	sql_buf b;
	sql_buf_init(&b);
	size_t k = 0;
	for (size_t i = 0; i < rb->ntabs; i++) {
		if (rb->g->plan_table && strcmp(rb->tabs[i].name, rb->g->plan_table) != 0)
			continue;
		sql_buf_reset(&b);
		sql_buf_printf(&b,
			       "SELECT sl_bucket(%s), count(*) FROM %s WHERE sl_bucket(%s) NOT IN (SELECT bucket FROM "
			       "_slhidden) GROUP BY 1",
			       rb->tabs[i].key, rb->tabs[i].name, rb->tabs[i].key);
		for (size_t s = 0; s < ns; s++)
			round_exec(rb, k++, s, b.data, NULL, 0, true);
	}
	sql_buf_free(&b);
	round_end_empty(rb);
}

static void plan_counted(lane *rb)
{
	rebalance_cb done = rb->g->plan_done;
	void *arg = rb->g->plan_arg;
	rb->g->plan_done = NULL;
	free(rb->g->plan_table);
	rb->g->plan_table = NULL;
	rb->busy = 0;
	if (rb->failed) {
		char msg[300];
		snprintf(msg, sizeof msg, "REBALANCE: counting rows: %s", rb->err);
		done(arg, 0, "58030", msg);
		after(rb, 0, kick);
		return;
	}
	size_t ns = catalog_nshards(rb->srv->cat);
	double *w = calloc(SL_BUCKETS, sizeof *w);
	double *load = calloc(ns, sizeof *load);
	size_t *owner = calloc(SL_BUCKETS, sizeof *owner);
	uint32_t *chunk = calloc(SL_BUCKETS, sizeof *chunk);
	if (!w || !load || !owner || !chunk) {
		free(w), free(load), free(owner), free(chunk);
		done(arg, 0, "53200", "out of memory");
		return;
	}
	/* weight: rows, plus a little per bucket so empty buckets spread too */
	for (size_t i = 0; i < rb->nans; i++) {
		const wire_response *r = &rb->ans[i]->msg.resp;
		for (uint32_t j = 0; j < r->nrows; j++) {
			const wire_value *v = &r->cells[(size_t)j * r->ncols];
			if (v[0].type == WIRE_INT && v[0].i >= 0 && v[0].i < SL_BUCKETS && v[1].type == WIRE_INT)
				w[v[0].i] += (double)v[1].i;
		}
	}
	for (uint32_t b = 0; b < SL_BUCKETS; b++) {
		w[b] += 0.001;
		owner[b] = catalog_bucket_shard(rb->srv->cat, b);
		if (owner[b] < ns)
			load[owner[b]] += w[b];
	}
	/* greedy: move a bucket from the heaviest to the lightest shard while
	 * that narrows the gap */
	for (int iter = 0; iter < SL_BUCKETS; iter++) {
		size_t h = SIZE_MAX, l = SIZE_MAX;
		for (size_t s = 0; s < ns; s++) {
			if (catalog_shard_removed(rb->srv->cat, s) || rebalance_draining(rb->g, s))
				continue;
			if (h == SIZE_MAX || load[s] > load[h])
				h = s;
			if (l == SIZE_MAX || load[s] < load[l])
				l = s;
		}
		if (h == SIZE_MAX)
			break;
		double gap = load[h] - load[l];
		int best = -1;
		for (uint32_t b = 0; b < SL_BUCKETS; b++)
			if (owner[b] == h && w[b] < gap && (best < 0 || w[b] > w[best]) && w[b] <= gap / 2 + 0.002)
				best = (int)b;
		if (best < 0)
			break;
		owner[best] = l;
		load[h] -= w[best];
		load[l] += w[best];
	}
	/* group by (from, to) pair, in bucket order, chunk buckets at a time */
	double total = 0;
	for (uint32_t b = 0; b < SL_BUCKETS; b++)
		total += w[b];
	double per_bucket = total / SL_BUCKETS;
	size_t chunk_n = per_bucket > 0 ? (size_t)(MOVE_ROWS / per_bucket) : MOVE_CHUNK;
	if (chunk_n > MOVE_CHUNK)
		chunk_n = MOVE_CHUNK;
	if (chunk_n < 1)
		chunk_n = 1;
	size_t nq = 0;
	for (size_t from = 0; from < ns; from++)
		for (size_t to = 0; to < ns; to++) {
			size_t k = 0;
			for (uint32_t b = 0; b < SL_BUCKETS; b++) {
				if (catalog_bucket_shard(rb->srv->cat, b) != from || owner[b] != to || from == to)
					continue;
				chunk[k++] = b;
				if (k == chunk_n) {
					nq += queue_move(rb, chunk, k, from, to) == 0;
					k = 0;
				}
			}
			if (k)
				nq += queue_move(rb, chunk, k, from, to) == 0;
		}
	free(w), free(load), free(owner), free(chunk);
	log_queued(rb);
	round_free(rb);
	char msg[128];
	snprintf(msg, sizeof msg, "%zu", nq);
	done(arg, 1, NULL, msg);
	after(rb, 0, kick);
}

static bool moves_running(const rebalancer *rb)
{
	for (size_t i = 0; i < NLANES; i++)
		if (rb->lanes[i].cur)
			return true;
	return false;
}

void rebalance_start(rebalancer *rb, const char *table, rebalance_cb done, void *arg)
{
	if (rb->queue || moves_running(rb) || rb->plan_done) {
		done(arg, 0, "55000", "a rebalance is already running (SHOW REBALANCE; CANCEL REBALANCE stops it)");
		return;
	}
	if (table && !catalog_table_get(rb->srv->cat, table)) {
		char msg[300];
		snprintf(msg, sizeof msg, "relation \"%s\" does not exist", table);
		done(arg, 0, "42P01", msg);
		return;
	}
	if (table) {
		const catalog_table *t = catalog_table_get(rb->srv->cat, table);
		if (t->partition != SQL_PARTITION_HASH) {
			done(arg, 0, "0A000",
			     "REBALANCE TABLE: only hash-partitioned tables are rebalanced (range tables do not move yet)");
			return;
		}
		rb->plan_table = quote(table);
	}
	rb->plan_done = done;
	rb->plan_arg = arg;
	kick_soon(rb);
}

int rebalance_move(rebalancer *rb, const uint32_t *buckets, size_t n, size_t dst, sql_error *err)
{
	if (dst >= catalog_nshards(rb->srv->cat) || catalog_shard_removed(rb->srv->cat, dst) ||
	    rebalance_draining(rb, dst)) {
		sql_error_set(err, "22023", 0, "shard %zu does not exist", dst);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (buckets[i] >= SL_BUCKETS) {
			sql_error_set(err, "22023", 0, "bucket %u out of range 0..%d", buckets[i], SL_BUCKETS - 1);
			return -1;
		}
		for (move *m = rb->queue; m; m = m->next)
			if (m->mask[buckets[i] / 64] & (1ull << (buckets[i] % 64))) {
				sql_error_set(err, "55000", 0, "bucket %u is already being moved", buckets[i]);
				return -1;
			}
		for (size_t l = 0; l < NLANES; l++) {
			const move *m = rb->lanes[l].cur;
			if (m && !m->table && (m->mask[buckets[i] / 64] & (1ull << (buckets[i] % 64)))) {
				sql_error_set(err, "55000", 0, "bucket %u is already being moved", buckets[i]);
				return -1;
			}
		}
	}
	size_t src = catalog_bucket_shard(rb->srv->cat, buckets[0]);
	for (size_t i = 1; i < n; i++)
		if (catalog_bucket_shard(rb->srv->cat, buckets[i]) != src) {
			sql_error_set(err, "0A000", 0, "MOVE BUCKET: the buckets of one move must be on one shard");
			return -1;
		}
	if (src == dst) {
		sql_error_set(err, "22023", 0, "bucket %u is already on shard %zu", buckets[0], dst);
		return -1;
	}
	return queue_one(&rb->lanes[0], buckets, n, src, dst, NULL, 0, err);
}

bool rebalance_table_busy(const rebalancer *rb, const char *table)
{
	for (size_t l = 0; l < NLANES; l++) {
		const move *m = rb->lanes[l].cur;
		if (m && m->table && strcmp(m->table, table) == 0)
			return true;
	}
	for (const move *m = rb->queue; m; m = m->next)
		if (m->table && strcmp(m->table, table) == 0)
			return true;
	return false;
}

int rebalance_move_range(rebalancer *rb, const char *table, size_t range, size_t dst, sql_error *err)
{
	const catalog *cat = rb->srv->cat;
	const catalog_table *t = catalog_range_table(cat, table, err);
	if (!t)
		return -1;
	if (range > t->nsplits) {
		sql_error_set(err, "22023", 0, "table \"%s\" has ranges 0..%zu", table, t->nsplits);
		return -1;
	}
	if (dst >= catalog_nshards(cat) || catalog_shard_removed(cat, dst) || rebalance_draining(rb, dst)) {
		sql_error_set(err, "22023", 0, "shard %zu does not exist", dst);
		return -1;
	}
	size_t src = catalog_range_shard(cat, t, range);
	if (src == dst) {
		sql_error_set(err, "22023", 0, "range %zu of \"%s\" is already on shard %zu", range, table, dst);
		return -1;
	}
	if (rebalance_table_busy(rb, table)) {
		sql_error_set(err, "55000", 0, "a range of \"%s\" is being moved already", table);
		return -1;
	}
	return queue_one(&rb->lanes[0], NULL, 0, src, dst, table, range, err);
}

size_t rebalance_cancel(rebalancer *rb)
{
	size_t n = 0;
	while (rb->queue) {
		move *m = rb->queue;
		if (strcmp(m->phase, "switch") == 0)
			break;  /* a switch to redo is finished, not cancelled */
		rb->queue = m->next;
		set_phase(m, "cancelled");
		log_phase(&rb->lanes[0], m, "cancelled");
		history_add(&rb->lanes[0], m);
		n++;
	}
	for (size_t l = 0; l < NLANES; l++) {
		const move *m = rb->lanes[l].cur;
		if (m && (strcmp(m->phase, "copy") == 0 || strcmp(m->phase, "catchup") == 0 ||
			  strcmp(m->phase, "cutover") == 0)) {
			rb->cancel = 1;
			n++;
		}
	}
	return n;
}

/* ---- removing a shard ------------------------------------------------------------------- */

bool rebalance_draining(const rebalancer *rb, size_t shard)
{
	return shard < 256 && rb->draining[shard];
}

void rebalance_remove_shard(rebalancer *rb, size_t shard, rebalance_cb done, void *arg)
{
	const catalog *cat = rb->srv->cat;
	sql_error err = {0};
	if (catalog_remove_check(cat, shard, false, &err) != 0) {
		done(arg, 0, err.sqlstate, err.message);
		return;
	}
	if (shard >= 256 || rb->draining[shard]) {
		done(arg, 0, "55000", "that shard is being removed already");
		return;
	}
	for (move *m = rb->queue; m; m = m->next)
		if (m->dst == shard) {
			done(arg, 0, "55000", "bucket moves to that shard are queued: CANCEL REBALANCE first");
			return;
		}
	size_t ns = catalog_nshards(cat);
	size_t count[256] = {0};
	bool usable[256] = {0};
	size_t nusable = 0;
	for (size_t i = 0; i < ns && i < 256; i++) {
		usable[i] = i != shard && !catalog_shard_removed(cat, i) && !rb->draining[i];
		nusable += usable[i];
	}
	if (nusable == 0) {
		done(arg, 0, "55000", "no other shard can take its buckets");
		return;
	}
	for (uint32_t b = 0; b < SL_BUCKETS; b++) {
		size_t o = catalog_bucket_shard(cat, b);
		if (o < 256)
			count[o]++;
	}
	/* each bucket to the shard with the fewest, in chunks per target */
	uint32_t *mine[256] = {0};
	size_t nmine[256] = {0};
	size_t nq = 0;
	for (uint32_t b = 0; b < SL_BUCKETS; b++) {
		if (catalog_bucket_shard(cat, b) != shard)
			continue;
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < ns && i < 256; i++)
			if (usable[i] && (best == SIZE_MAX || count[i] < count[best]))
				best = i;
		count[best]++;
		if (!mine[best])
			mine[best] = malloc(SL_BUCKETS * sizeof *mine[best]);
		if (!mine[best])
			continue;
		mine[best][nmine[best]++] = b;
		if (nmine[best] == 16) {
			nq += queue_move(&rb->lanes[0], mine[best], nmine[best], shard, best) == 0;
			nmine[best] = 0;
		}
	}
	for (size_t i = 0; i < 256; i++) {
		if (mine[i] && nmine[i])
			nq += queue_move(&rb->lanes[0], mine[i], nmine[i], shard, i) == 0;
		free(mine[i]);
	}
	log_queued(&rb->lanes[0]);
	rb->draining[shard] = true;
	char msg[200];
	snprintf(msg, sizeof msg,
		 "draining shard %zu: %zu bucket move(s) queued; it leaves the cluster once they are done (SHOW SHARDS)",
		 shard, nq);
	done(arg, 1, NULL, msg);
	kick_soon(rb);
}

static void remove_drain(lane *rb);

static void remove_end(lane *rb, size_t shard)
{
	gate_open(rb);
	rb->g->draining[shard] = false;
	rb->busy = 0;
	after(rb, 0, kick);
}

/* All its buckets are gone: stop everything reaching it, drain, remove. */
static bool remove_next(lane *rb)
{
	for (size_t i = 0; i < 256 && i < catalog_nshards(rb->srv->cat); i++) {
		if (!rb->g->draining[i])
			continue;
		sql_error err = {0};
		if (catalog_remove_check(rb->srv->cat, i, true, &err) != 0) {
			fprintf(stderr, "router: rebalance: shard %zu is not removed: %s\n", i, err.message);
			rb->g->draining[i] = false;
			continue;
		}
		rb->busy = 1;
		gate_close(rb, GATE_SHARD, i, i, NULL);
		after(rb, 0, remove_drain);
		return true;
	}
	return false;
}

static void remove_drain(lane *rb)
{
	size_t shard = rb->g->gate_src;
	if (session_drain_count(rb->srv, rb->g) != 0) {
		if (now_ms() - rb->g->gate_since > DRAIN_TIMEOUT_MS) {
			/* retry later: open the gate meanwhile */
			gate_open(rb);
			rb->busy = 0;
			after(rb, 1000, kick);
			return;
		}
		after(rb, 1, remove_drain);
		return;
	}
	rb->g->gate_gen = ++rb->g->gen_counter;  /* drained: nobody passes any more */
	sql_error err = {0};
	if (catalog_remove_shard(rb->srv->cat, shard, &err) != 0)
		fprintf(stderr, "router: rebalance: removing shard %zu: %s\n", shard, err.message);
	else
		fprintf(stderr, "router: rebalance: shard %zu removed from the cluster\n", shard);
	remove_end(rb, shard);
}

/* ---- the job loop --------------------------------------------------------------------- */

static bool lanes_idle(const rebalancer *g)
{
	for (size_t i = 0; i < NLANES; i++)
		if (g->lanes[i].busy)
			return false;
	return true;
}

/* May m run beside the moves running now?  Not on a bucket (or a range
 * table) one of them moves. */
static bool move_free_to_run(const rebalancer *g, const move *m)
{
	if (cleanup_blocks(g, m))
		return false;
	for (size_t i = 0; i < NLANES; i++) {
		const move *o = g->lanes[i].cur;
		if (!o)
			continue;
		if (m->table || o->table) {
			if (m->table && o->table && strcmp(m->table, o->table) == 0)
				return false;
			continue;
		}
		for (size_t w = 0; w < SL_BUCKETS / 64; w++)
			if (m->mask[w] & o->mask[w])
				return false;
	}
	return true;
}

static bool moves_overlap(const move *a, const move *b)
{
	if (a->table || b->table)
		return a->table && b->table && strcmp(a->table, b->table) == 0;
	for (size_t w = 0; w < SL_BUCKETS / 64; w++)
		if (a->mask[w] & b->mask[w])
			return true;
	return false;
}

/* The queued move to start next: the first one that shares no shard with
 * a running move (two copies into one target queue behind each other in
 * its writer, and a cutover's final writes wait behind the other lane's
 * copy), as long as no move queued before it touches its buckets; else
 * the head.  A switch to redo at the head always goes first. */
static move **pick_move(rebalancer *g)
{
	move **head = &g->queue;
	if (!*head || strcmp((*head)->phase, "switch") == 0)
		return head;
	for (move **pm = head; *pm; pm = &(*pm)->next) {
		move *m = *pm;
		bool apart = strcmp(m->phase, "switch") != 0 && move_free_to_run(g, m);
		for (size_t i = 0; i < NLANES && apart; i++) {
			const move *o = g->lanes[i].cur;
			apart = !o || (o->src != m->src && o->src != m->dst && o->dst != m->src && o->dst != m->dst);
		}
		/* the first move onto a shard builds its bucket index alone */
		if (apart && !m->table && m->src < 256 && m->dst < 256 &&
		    (!g->bkt_indexed[m->src] || !g->bkt_indexed[m->dst]) && !lanes_idle(g))
			apart = false;
		for (const move *e = *head; e != m && apart; e = e->next)
			apart = !moves_overlap(e, m);
		if (apart)
			return pm;
	}
	return head;
}

static void start_move(lane *rb, move *m)
{
	for (size_t i = 0; i < NLANES; i++) {
		const move *o = rb->g->lanes[i].cur;
		if (o)
			fprintf(stderr, "router: rebalance: move %" PRId64 " starts on lane %d beside move %" PRId64 "\n",
				m->id, rb->idx, o->id);
	}
	rb->busy = 1;
	rb->cur = m;
	m->t_start = now_ms();
	if (strcmp(m->phase, "switch") == 0) {
		/* found switching at start: the gate was closed for it */
		rb->g->gate_owner = rb;
		if (tabs_load(rb, true) != 0) {
			rb->busy = 0;
			rb->cur = NULL;
			m->next = rb->g->queue;
			rb->g->queue = m;
			rb->g->gate_owner = NULL;
			after(rb, 500, kick);
			return;
		}
		move_switch(rb);
		return;
	}
	log_phase(rb, m, "copy");
	move_copy(rb);
}

/* Give every idle lane work: shard additions, planning and removals on
 * lane 0 while nothing else runs; queued moves on any lane (pick_move),
 * as long as the next one touches no bucket a running move has. */
static void dispatch(rebalancer *g)
{
	if (g->closing)
		return;
	if (lanes_idle(g))
		g->cancel = 0;
	/* cleanups wait for a moment when no lane copies: when everything
	 * queued is done, or waits for them */
	if (lanes_idle(g) && (g->adds || g->plan_done || !g->queue || !move_free_to_run(g, g->queue)))
		cleanup_pump(g);
	lane *l0 = &g->lanes[0];
	if (g->adds || g->plan_done) {
		if (!lanes_idle(g) || g->cleanups)
			return;  /* after the running moves and their cleanups */
		l0->busy = 1;
		if (g->adds) {
			l0->add_cur = g->adds;
			g->adds = g->adds->next;
			add_begin(l0);
		} else {
			plan_begin(l0);
		}
		return;
	}
	for (size_t i = 0; i < NLANES && g->queue; i++) {
		lane *rb = &g->lanes[i];
		if (rb->busy)
			continue;
		move **pm = pick_move(g);
		move *m = *pm;
		/* a switch to redo goes first, alone; otherwise disjoint moves */
		if (strcmp(m->phase, "switch") != 0 && g->gate != GATE_OPEN && !g->gate_owner)
			return;
		if (!move_free_to_run(g, m))
			return;
		if (!m->table && m->src < 256 && m->dst < 256 && (!g->bkt_indexed[m->src] || !g->bkt_indexed[m->dst]) &&
		    !lanes_idle(g))
			return;
		*pm = m->next;
		m->next = NULL;
		start_move(rb, m);
	}
	if (lanes_idle(g) && !g->queue && !g->cleanups)
		remove_next(l0);
}

static void kick(lane *rb)
{
	dispatch(rb->g);
}

static void on_kick(uv_timer_t *t)
{
	dispatch(t->data);
}

static void kick_soon(rebalancer *g)
{
	if (!g->closing)
		uv_timer_start(&g->kick_timer, on_kick, 0, 0);
}

rebalancer *rebalance_open(router_server *srv)
{
	rebalancer *rb = calloc(1, sizeof *rb);
	if (!rb)
		return NULL;
	rb->srv = srv;
	uv_timer_init(srv->loop, &rb->kick_timer);
	rb->kick_timer.data = rb;
	uv_timer_init(srv->loop, &rb->clean_timer);
	rb->clean_timer.data = rb;
	for (size_t i = 0; i < NLANES; i++) {
		lane *l = &rb->lanes[i];
		l->g = rb;
		l->srv = srv;
		l->idx = (int)i;
		uv_timer_init(srv->loop, &l->timer);
		l->timer.data = l;
	}
	catalog_move *ms = NULL;
	size_t n = catalog_moves_load(srv->cat, &ms);
	for (size_t i = 0; i < n; i++) {
		move *m = calloc(1, sizeof *m);
		if (!m) {
			free(ms[i].buckets);
			continue;
		}
		m->id = ms[i].id;
		m->src = ms[i].src;
		m->dst = ms[i].dst;
		m->buckets = ms[i].buckets;
		m->n = ms[i].nbuckets;
		m->table = ms[i].table;
		m->range = ms[i].range;
		for (size_t b = 0; b < m->n; b++)
			m->mask[m->buckets[b] / 64] |= 1ull << (m->buckets[b] % 64);
		set_phase(m, strcmp(ms[i].phase, "switch") == 0 ? "switch" : "queued");
		if (strcmp(m->phase, "switch") == 0) {
			/* nothing may touch these buckets until the switch is redone */
			m->next = rb->queue;
			rb->queue = m;
			lane *l0 = &rb->lanes[0];
			l0->cur = m;  /* for the gate's table */
			gate_close(l0, m->table ? GATE_RANGE : GATE_MOVE, m->src, m->dst, m->mask);
			rb->switching = 1;  /* its statements may have run on one shard only */
			rb->gate_owner = NULL;  /* the lane that redoes the switch takes it */
			l0->cur = NULL;
			fprintf(stderr, "router: rebalance: move %" PRId64 " was switching: finishing it\n", m->id);
		} else {
			move **pp = &rb->queue;
			while (*pp)
				pp = &(*pp)->next;
			*pp = m;
			fprintf(stderr, "router: rebalance: move %" PRId64 " resumes from the copy\n", m->id);
		}
	}
	free(ms);
	if (rb->queue)
		uv_timer_start(&rb->kick_timer, on_kick, 100, 0);
	return rb;
}

/* Every timer closed (NLANES + 1): free everything. */
static void closed_one(rebalancer *g)
{
	if (++g->nclosed < NLANES + 2)
		return;
	while (g->cleanups) {
		cleanup_job *n = g->cleanups->next;
		cleanup_free(g->cleanups);
		g->cleanups = n;
	}
	move *lists[2] = {g->queue, g->history};
	for (int l = 0; l < 2; l++)
		while (lists[l]) {
			move *n = lists[l]->next;
			move_free(lists[l]);
			lists[l] = n;
		}
	while (g->adds) {
		add_job *n = g->adds->next;
		free(g->adds);
		g->adds = n;
	}
	while (g->waiters) {
		waiter *n = g->waiters->next;
		free(g->waiters);
		g->waiters = n;
	}
	for (size_t i = 0; i < NLANES; i++) {
		lane *rb = &g->lanes[i];
		if (rb->cur)
			move_free(rb->cur);
		free(rb->add_cur);
		round_free(rb);
		writes_free(rb);
		tabs_free(rb);
	}
	free(g->plan_table);
	free(g);
}

static void on_lane_closed(uv_handle_t *h)
{
	closed_one(((lane *)h->data)->g);
}

static void on_kick_closed(uv_handle_t *h)
{
	closed_one(h->data);
}

void rebalance_close(rebalancer *g)
{
	if (!g)
		return;
	g->closing = 1;
	for (size_t i = 0; i < NLANES; i++) {
		lane *rb = &g->lanes[i];
		rb->gen++;
		end_cut(rb);
		switch_end_apply(rb);
		shard_answer_free(rb->schema_ans);
		rb->schema_ans = NULL;
		uv_timer_stop(&rb->timer);
		uv_close((uv_handle_t *)&rb->timer, on_lane_closed);
	}
	uv_timer_stop(&g->kick_timer);
	uv_close((uv_handle_t *)&g->kick_timer, on_kick_closed);
	uv_timer_stop(&g->clean_timer);
	uv_close((uv_handle_t *)&g->clean_timer, on_kick_closed);
}

/* ---- SHOW REBALANCE -------------------------------------------------------------------- */

static void row_of(const move *m, rebalance_row *r)
{
	memset(r, 0, sizeof *r);
	snprintf(r->id, sizeof r->id, "%" PRId64, m->id);
	if (m->table)
		snprintf(r->buckets, sizeof r->buckets, "%.40s range %zu", m->table, m->range);
	else if (m->n == 1)
		snprintf(r->buckets, sizeof r->buckets, "%u", m->buckets[0]);
	else
		snprintf(r->buckets, sizeof r->buckets, "%u..%u (%zu)", m->buckets[0], m->buckets[m->n - 1], m->n);
	snprintf(r->from, sizeof r->from, "%zu", m->src);
	snprintf(r->to, sizeof r->to, "%zu", m->dst);
	snprintf(r->phase, sizeof r->phase, "%s", m->phase);
	snprintf(r->rows, sizeof r->rows, "%" PRIu64, m->rows_copied);
	uint64_t end = m->t_done ? m->t_done : now_ms();
	double secs = m->t_start ? (double)(end - m->t_start) / 1000.0 : 0;
	if (secs > 0)
		snprintf(r->rate, sizeof r->rate, "%.0f rows/s", (double)m->rows_copied / secs);
	if (m->t_done)
		snprintf(r->eta, sizeof r->eta, "0 s");
	else if (m->t_start && m->rows_copied > 0 && m->rows_src > m->rows_copied)
		snprintf(r->eta, sizeof r->eta, "%.1f s",
			 (double)(m->rows_src - m->rows_copied) / ((double)m->rows_copied / (secs > 0 ? secs : 1)));
	if (m->pause_ms > 0)
		snprintf(r->pause_ms, sizeof r->pause_ms, "%.1f", m->pause_ms);
	if (m->verified[0] && strcmp(m->phase, "done") == 0)
		snprintf(r->verified, sizeof r->verified, "%.90s; pause: drain %.0f + sync %.0f + flip %.0f + switch %.0f ms",
			 m->verified, m->drain_ms, m->sync_ms, m->flip_ms, m->commit_ms);
	else
		snprintf(r->verified, sizeof r->verified, "%.159s", m->verified[0] ? m->verified : m->note);
}

size_t rebalance_list(rebalancer *rb, rebalance_row *rows, size_t max)
{
	size_t n = 0;
	for (size_t l = 0; l < NLANES; l++)
		if (rb->lanes[l].cur && n < max)
			row_of(rb->lanes[l].cur, &rows[n++]);
	for (move *m = rb->queue; m && n < max; m = m->next)
		row_of(m, &rows[n++]);
	for (move *m = rb->history; m && n < max; m = m->next)
		row_of(m, &rows[n++]);
	return n;
}
