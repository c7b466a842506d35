/*
 * session.c — a client session of the router (see session.h).
 *
 * Protocol states:   STARTUP --StartupMessage--> READY
 * Transaction status (ReadyForQuery byte):
 *
 *        BEGIN              error                ROLLBACK / COMMIT
 *   'I' ───────► 'T' ──────────────► 'E' ──────────────────────────► 'I'
 *    ▲            │ COMMIT / ROLLBACK                                 
 *    └────────────┘                                                   
 *
 * Messages are handled one at a time: while a statement waits for shards
 * (busy), further input is only buffered.  Output accumulates in `out` and
 * is written when the session has nothing more to do.
 *
 * Transactions: an explicit transaction gets one id (also its wound-wait age)
 * and every shard it touches holds a private workspace for it.  A
 * transaction that wrote on at most one shard commits in one phase; one
 * that wrote on several commits through the coordinator (two-phase commit,
 * coordinator/coordinator.h).  An autocommit write that reaches several
 * shards (reference tables, writes without a routing key, INSERTs spread
 * over shards) runs as an implicit transaction committed the same way.
 * DDL is sent to every shard as idempotent statements (IF [NOT] EXISTS).
 *
 * Invariants: busy == 1 iff an exec is in flight (ex.pending > 0 or a
 * commit/rollback fan-out is waiting); every shard answer is freed exactly
 * once; in extended mode after an error every message up to Sync is
 * skipped (skip_to_sync).
 */
#include "router/session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/pgwire.h"
#include "router/plan.h"
#include "router/rebalance.h"
#include "router/sql.h"
#include "txn/hmap.h"

#define MAX_SHARDS 256
#define SERVER_VERSION "15.0 (shardlite 0.1.0)"

typedef struct prepared {
	char *name;
	sql_stmt_list *list;     /* owns stmt */
	sql_stmt *stmt;          /* NULL for an empty query */
	router_plan *plan;       /* for planned statements */
	router_plan *comp_plan;  /* its COMPENSATE WITH, planned too */
	uint32_t *param_types;
	size_t nparam_types;
	int refs;                /* portals using it + 1 while named */
} prepared;

typedef struct portal {
	char *name;
	prepared *ps;
	sql_arena *arena;        /* bound values */
	wire_value *params;
	size_t nparams;
	int done;                /* executed to completion already */
} portal;

typedef enum { EX_NONE, EX_STMT, EX_END_TXN } ex_kind;

typedef struct {
	ex_kind kind;
	const router_plan *plan;
	router_plan *owned_plan;
	plan_batch batch;
	shard_answer **answers;
	size_t pending, n;
	char err_state[6];
	char err_msg[512];
	bool describe;           /* simple protocol: send RowDescription */
	bool commit;             /* EX_END_TXN: COMMIT (else ROLLBACK) */
	const char *end_tag;
	bool saga_steps;         /* the requests are steps of s->saga */
	router_plan *comp_plan;  /* COMPENSATE WITH's plan and requests */
	plan_batch comp_batch;
	coord_read *cut;         /* a multi-shard read's consistent cut, until
				  * every shard's snapshot is taken */
	bool *snapped;           /* per slot: that shard's snapshot is taken
				  * (Started or the final answer came) */
	size_t nsnapped;
	wire_request *cut_reqs;  /* requests waiting for the cut, or for */
	size_t *cut_shards;      /* ... earlier commits (coord_on_visible) */
	bool began[MAX_SHARDS];  /* a request of this statement opened the txn there */
} exec_state;

struct session {
	router_server *srv;
	session *next, *prev;
	uv_tcp_t tcp;
	pgw_reader rd;
	pgw_buf out;
	int started;
	int closing;
	int busy;
	int skip_to_sync;
	int writing;             /* a write is in flight */
	char txn_status;         /* 'I', 'T', 'E' */
	uint64_t txn;
	bool touched[MAX_SHARDS];
	bool wrote[MAX_SHARDS];
	bool early;              /* early_shard is prepared early (coordinator.h) */
	bool early_stale;        /* ... and the transaction went on to other shards */
	size_t early_shard, early_decider;
	unsigned early_skip;     /* chances to prepare early still to let pass: the
				  * session's last early prepare was wasted */
	size_t hot_shard;        /* where the txn last waited for a row lock
				  * (Response.waited), SIZE_MAX: nowhere */
	uint32_t pid, key;
	char client_encoding[32];
	char application_name[64];
	char transaction_mode[16];
	int implicit;            /* an autocommit statement running as a txn */
	saga *saga;              /* the running saga (BEGIN SAGA / saga mode) */
	char saga_cause_state[6];  /* why the saga is being rolled back */
	char saga_cause_msg[512];
	uint64_t saga_failed;
	const sql_stmt *comp;    /* the statement's COMPENSATE WITH, for start_plan */
	const router_plan *comp_plan;  /* ... planned already (a prepared statement's) */
	int in_commit;           /* the coordinator owns the transaction now */
	bool forcing_commit;     /* COMMIT PREPARED (else ROLLBACK PREPARED) running */
	int handle_closed;       /* libuv closed the socket: free when idle */
	int parked;              /* waiting at a rebalance gate (s->replan) */
	struct {                 /* the running statement, to plan it again after a
				  * rebalance gate or a stale route (SL001) */
		sql_stmt *st;
		const router_plan *plan;
		const wire_value *params;
		size_t nparams;
		bool describe;
	} replan;
	int zombie;              /* counted in srv->zombies */
	int sl_retries;          /* stale-route retries of the current statement */
	uint64_t rb_gen, rb_txn; /* drained at gate rb_gen, in transaction rb_txn */
	char implicit_tag[64];
	hmap stmts;              /* name -> prepared */
	hmap portals;            /* name -> portal */
	/* simple query in progress */
	sql_stmt_list *qlist;
	size_t qidx;
	int in_simple;
	int in_run;              /* inside run_simple()'s loop */
	int simple_failed;       /* a statement of the current Query failed */
	int in_pump;             /* inside pump()'s loop */
	portal *cur_portal;
	exec_state ex;
	char rbuf[65536];
	sql_buf fmt;             /* scratch for formatting values */
};

static void pump(session *s);
static void run_simple(session *s);
static void early_abandon(session *s);

/* ---- ids --------------------------------------------------------------------- */

uint64_t router_new_txn(router_server *srv)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	srv->next_txn = now > srv->next_txn ? now : srv->next_txn + 1;
	return srv->next_txn;
}

/* ---- output -------------------------------------------------------------------- */

typedef struct {
	uv_write_t w;
	session *s;
	pgw_buf buf;
} write_op;

/* The session's memory goes only when the socket is closed and no shard
 * or coordinator callback can still arrive (busy == 0). */
static void maybe_free(session *s)
{
	if (!s->handle_closed || s->busy)
		return;
	if (s->zombie)
		s->srv->zombies--;
	pgw_reader_free(&s->rd);
	pgw_buf_free(&s->out);
	sql_buf_free(&s->fmt);
	free(s);
}

static void on_closed(uv_handle_t *h)
{
	session *s = h->data;
	s->handle_closed = 1;
	maybe_free(s);
}

static void session_ignore_answer(void *arg, shard_answer *a, const char *err)
{
	shard_answer_free(a);
}

void session_ignore_shard_answer(void *arg, shard_answer *a, const char *err)
{
	(void)arg;
	(void)err;
	shard_answer_free(a);
}

/* ---- the rebalancer's gate ---------------------------------------------------------------- */

/* The open transaction or saga (ids are unique: router_new_txn()). */
static uint64_t txn_ident(const session *s)
{
	return s->txn ? s->txn : s->saga ? saga_id(s->saga) : 0;
}

/* Part of the drain of gate gen: its transaction goes on through the gate. */
static bool drained_txn(const session *s, uint64_t gen)
{
	return gen && s->rb_gen == gen && s->txn_status != 'I' && txn_ident(s) == s->rb_txn;
}

void session_drain_mark(router_server *srv, size_t src, uint64_t gen)
{
	for (session *s = srv->sessions; s; s = s->next) {
		bool touched = s->saga || (s->txn && src < MAX_SHARDS && s->touched[src]);
		if (s->txn_status != 'I' && touched) {
			s->rb_gen = gen;
			s->rb_txn = txn_ident(s);
		}
	}
}

size_t session_drain_count(router_server *srv, const rebalancer *rb)
{
	uint64_t gen = rebalance_gate_gen(rb);
	size_t n = srv->zombies + saga_undoing_on(srv->sagas, rebalance_gate_src(rb));
	for (session *s = srv->sessions; s; s = s->next) {
		if (drained_txn(s, gen))
			n++;
		else if (s->ex.kind == EX_STMT && s->ex.batch.n > 0 && s->ex.plan &&
			 rebalance_holds(rb, &s->ex.batch, plan_table_name(s->ex.plan), plan_writes(s->ex.plan)))
			n++;
	}
	return n;
}

static void free_prepared(prepared *p)
{
	if (!p || --p->refs > 0)
		return;
	plan_free(p->plan);
	plan_free(p->comp_plan);
	sql_stmt_list_free(p->list);
	free(p->param_types);
	free(p->name);
	free(p);
}

static void free_portal(portal *p)
{
	if (!p)
		return;
	free_prepared(p->ps);
	if (p->arena)
		sql_arena_free(p->arena);
	free(p->params);
	free(p->name);
	free(p);
}

static void session_close(session *s)
{
	if (s->closing)
		return;
	s->closing = 1;
	router_server *srv = s->srv;
	if (s->parked) {
		rebalance_unwait(srv->rb, s);
		s->parked = 0;
		s->busy = 0;
	} else if (s->busy && s->ex.kind == EX_STMT) {
		s->zombie = 1;
		srv->zombies++;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	/* An open transaction dies with its client: tell the shards (fire and
	 * forget; they also roll back idle transactions).  Not once the
	 * coordinator owns it: its outcome is the coordinator's to decide. */
	if (s->saga) {
		/* a saga dies with its client: compensate what it did */
		saga_rollback(srv->sagas, s->saga, NULL, NULL);
		s->saga = NULL;
	}
	if (s->txn_status != 'I' && !s->in_commit) {
		early_abandon(s);
		for (size_t i = 0; i < MAX_SHARDS && i < catalog_nshards(srv->cat); i++) {
			if (!s->touched[i])
				continue;
			wire_request r = {.op = WIRE_OP_ROLLBACK, .txn = s->txn};
			shard_pool_send(srv->pool, i, &r, session_ignore_answer, NULL);
		}
	}
	size_t it;
	for (hmap_entry *e = hmap_first(&s->portals, &it); e; e = hmap_next(&s->portals, e, &it))
		free_portal(e->value);
	hmap_free(&s->portals);
	for (hmap_entry *e = hmap_first(&s->stmts, &it); e; e = hmap_next(&s->stmts, e, &it))
		free_prepared(e->value);
	hmap_free(&s->stmts);
	if (s->qlist)
		sql_stmt_list_free(s->qlist);
	s->qlist = NULL;
	uv_close((uv_handle_t *)&s->tcp, on_closed);
}

static void on_written(uv_write_t *w, int status)
{
	write_op *op = (write_op *)w;
	session *s = op->s;
	pgw_buf_free(&op->buf);
	free(op);
	s->writing--;
	if (status < 0)
		session_close(s);
}

static void flush(session *s)
{
	if (s->closing || s->out.len == 0)
		return;
	if (pgw_buf_failed(&s->out)) {
		session_close(s);
		return;
	}
	uv_buf_t b = uv_buf_init((char *)s->out.data, (unsigned)s->out.len);
	int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
	if (n == (int)s->out.len) {
		pgw_buf_reset(&s->out);
		return;
	}
	if (n < 0 && n != UV_EAGAIN) {
		session_close(s);
		return;
	}
	size_t done = n > 0 ? (size_t)n : 0;
	write_op *op = calloc(1, sizeof *op);
	if (!op) {
		session_close(s);
		return;
	}
	op->s = s;
	pgw_buf_init(&op->buf);
	pgw_buf_put_bytes(&op->buf, s->out.data + done, s->out.len - done);
	pgw_buf_reset(&s->out);
	b = uv_buf_init((char *)op->buf.data, (unsigned)op->buf.len);
	s->writing++;
	if (uv_write(&op->w, (uv_stream_t *)&s->tcp, &b, 1, on_written) != 0) {
		s->writing--;
		pgw_buf_free(&op->buf);
		free(op);
		session_close(s);
	}
}

static void send_error(session *s, const char *sqlstate, const char *msg, uint32_t position)
{
	pgw_notice n = {.severity = "ERROR", .sqlstate = sqlstate, .message = msg, .position = position};
	pgw_put_error_response(&s->out, &n);
	if (s->txn_status == 'T')
		s->txn_status = 'E';
	if (s->in_simple)
		s->simple_failed = 1;  /* the rest of the Query is skipped */
}

static void send_sql_error(session *s, const sql_error *e)
{
	send_error(s, e->sqlstate, e->message, (uint32_t)e->position);
}

static void send_fatal(session *s, const char *sqlstate, const char *msg)
{
	pgw_notice n = {.severity = "FATAL", .sqlstate = sqlstate, .message = msg};
	pgw_put_error_response(&s->out, &n);
	flush(s);
	session_close(s);
}

static void ready(session *s)
{
	pgw_put_ready_for_query(&s->out, s->txn_status);
}

/* ---- startup --------------------------------------------------------------------- */

static void handle_startup(session *s, const pgw_frontend *f)
{
	if (f->kind == PGW_F_SSL_REQUEST || f->kind == PGW_F_GSSENC_REQUEST) {
		pgw_put_encryption_refused(&s->out);  /* 'N': no TLS yet */
		return;
	}
	if (f->kind == PGW_F_CANCEL) {
		/* Accepted; statements are short and cannot be interrupted yet. */
		session_close(s);
		return;
	}
	const pgw_startup *st = &f->u.startup;
	if (PGW_PROTOCOL_MAJOR(st->version) != 3) {
		send_fatal(s, "08P01", "unsupported frontend protocol version");
		return;
	}
	if (st->application_name)
		snprintf(s->application_name, sizeof s->application_name, "%s", st->application_name);
	snprintf(s->client_encoding, sizeof s->client_encoding, "UTF8");
	if (st->client_encoding && strcasecmp(st->client_encoding, "UTF8") != 0 &&
	    strcasecmp(st->client_encoding, "UTF-8") != 0 && strcasecmp(st->client_encoding, "SQL_ASCII") != 0) {
		send_fatal(s, "22023", "only client_encoding UTF8 is supported");
		return;
	}
	pgw_reader_set_phase(&s->rd, PGW_PHASE_NORMAL);
	s->started = 1;
	pgw_put_auth_ok(&s->out);
	static const char *const params[][2] = {
		{"server_version", SERVER_VERSION},
		{"server_encoding", "UTF8"},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"},
		{"standard_conforming_strings", "on"},
		{"integer_datetimes", "on"},
		{"TimeZone", "UTC"},
		{"IntervalStyle", "postgres"},
		{"is_superuser", "on"},
		{"session_authorization", "shardlite"},
	};
	for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
		pgw_put_parameter_status(&s->out, params[i][0], params[i][1]);
	pgw_put_parameter_status(&s->out, "application_name", s->application_name);
	pgw_put_backend_key_data(&s->out, s->pid, s->key);
	ready(s);
}

/* ---- results ------------------------------------------------------------------------- */

static void send_row_description(session *s, const router_plan *p)
{
	size_t n = plan_ncols(p);
	if (n == 0) {
		pgw_put_no_data(&s->out);
		return;
	}
	pgw_field *f = calloc(n, sizeof *f);
	if (!f) {
		s->out.failed = 1;
		return;
	}
	for (size_t i = 0; i < n; i++)
		f[i] = pgw_field_of(plan_col_name(p, i), plan_col_type(p, i));
	pgw_put_row_description(&s->out, f, (uint16_t)n);
	free(f);
}

static void send_rows(session *s, const router_plan *p, const plan_result *r)
{
	size_t nc = r->ncols;
	pgw_value *vals = calloc(nc ? nc : 1, sizeof *vals);
	size_t *offs = calloc(nc ? nc : 1, sizeof *offs);
	if (!vals || !offs) {
		free(vals);
		free(offs);
		s->out.failed = 1;
		return;
	}
	for (size_t row = 0; row < r->nrows; row++) {
		sql_buf_reset(&s->fmt);
		const wire_value *cells = r->cells + row * nc;
		for (size_t c = 0; c < nc; c++) {
			offs[c] = s->fmt.len;
			if (cells[c].type == WIRE_NULL) {
				vals[c].len = -1;
				continue;
			}
			uint32_t oid = c < plan_ncols(p) ? plan_col_type(p, c) : PGW_TEXTOID;
			plan_format_text(oid, &cells[c], &s->fmt);
			vals[c].len = (int32_t)(s->fmt.len - offs[c]);
		}
		for (size_t c = 0; c < nc; c++)
			if (vals[c].len >= 0)
				vals[c].data = (const uint8_t *)s->fmt.data + offs[c];
		pgw_put_data_row(&s->out, vals, (uint16_t)nc);
	}
	free(vals);
	free(offs);
}

/* ---- shard fan-out -------------------------------------------------------------------- */

static void ex_reset(session *s)
{
	exec_state *ex = &s->ex;
	if (ex->cut)
		coord_read_end(s->srv->coord, ex->cut);
	free(ex->cut_reqs);
	free(ex->cut_shards);
	free(ex->snapped);
	for (size_t i = 0; i < ex->n; i++)
		shard_answer_free(ex->answers ? ex->answers[i] : NULL);
	free(ex->answers);
	plan_batch_free(&ex->batch);
	plan_free(ex->owned_plan);
	plan_batch_free(&ex->comp_batch);
	plan_free(ex->comp_plan);
	memset(ex, 0, sizeof *ex);
}

static void statement_done(session *s);
static void end_txn_state(session *s);
static void commit_implicit(session *s, const char *tag);

/* Roll back on every shard the transaction touched, without waiting. */
static void rollback_touched(session *s)
{
	for (size_t i = 0; i < MAX_SHARDS && i < catalog_nshards(s->srv->cat); i++) {
		if (!s->touched[i])
			continue;
		wire_request r = {.op = WIRE_OP_ROLLBACK_PREPARED, .txn = s->txn};
		shard_pool_send(s->srv->pool, i, &r, session_ignore_answer, NULL);
	}
}

static void saga_failed(session *s, const char *sqlstate, const char *msg);
static void commit_saga(session *s, const char *tag);

static void run_stmt(session *s, sql_stmt *st, const router_plan *plan, const wire_value *params,
			 size_t nparams, bool describe);

/* A shard refused a request routed with a stale map (SL001): the map has
 * moved on since.  Plan the statement again if nothing of it ran (a read,
 * or every request refused); otherwise the client gets a retryable 40001. */
static bool stale_route_retry(session *s)
{
	exec_state *ex = &s->ex;
	size_t refused = 0;
	for (size_t i = 0; i < ex->n; i++) {
		const shard_answer *a = ex->answers[i];
		refused += a && a->msg.resp.status == WIRE_ERROR && a->msg.resp.sqlstate &&
			   strcmp(a->msg.resp.sqlstate, "SL001") == 0;
	}
	bool retry = !s->implicit && !ex->saga_steps && s->sl_retries < 5 && s->replan.st &&
		     (!plan_writes(ex->plan) || refused == ex->n);
	if (!retry) {
		snprintf(ex->err_state, sizeof ex->err_state, "40001");
		return false;
	}
	/* the refused requests opened nothing on their shards */
	for (size_t i = 0; i < ex->n; i++) {
		const shard_answer *a = ex->answers[i];
		size_t shard = ex->batch.reqs[i].shard;
		if (a && a->msg.resp.status == WIRE_ERROR && a->msg.resp.sqlstate &&
		    strcmp(a->msg.resp.sqlstate, "SL001") == 0 && shard < MAX_SHARDS && ex->began[shard]) {
			s->touched[shard] = false;
			s->wrote[shard] = false;
		}
	}
	s->sl_retries++;
	ex_reset(s);
	run_stmt(s, s->replan.st, s->replan.plan, s->replan.params, s->replan.nparams, s->replan.describe);
	return true;
}

static void finish_stmt(session *s)
{
	exec_state *ex = &s->ex;
	const router_plan *p = ex->plan;
	if (strcmp(ex->err_state, "SL001") == 0 && stale_route_retry(s))
		return;
	if (ex->err_state[0] && ex->saga_steps) {
		saga_failed(s, ex->err_state, ex->err_msg);
		return;
	}
	if (ex->err_state[0]) {
		if (s->implicit) {
			rollback_touched(s);
			end_txn_state(s);
		}
		send_error(s, ex->err_state, ex->err_msg, 0);
		ex_reset(s);
		statement_done(s);
		return;
	}
	plan_result r;
	memset(&r, 0, sizeof r);
	sql_error err = {0};
	const wire_response **resp = calloc(ex->n ? ex->n : 1, sizeof *resp);
	if (!resp) {
		send_error(s, "53200", "out of memory", 0);
		ex_reset(s);
		statement_done(s);
		return;
	}
	for (size_t i = 0; i < ex->n; i++)
		resp[i] = &ex->answers[i]->msg.resp;
	int rc = plan_merge(p, &ex->batch, resp, &r, &err);
	free(resp);
	if (rc == 0 && plan_kind_of(p) >= PLAN_CREATE_TABLE)
		rc = plan_apply_ddl(p, s->srv->cat, &err);
	if (rc != 0 && ex->saga_steps) {
		plan_result_free(&r);
		saga_failed(s, err.sqlstate, err.message);
		return;
	}
	if (rc != 0) {
		if (s->implicit) {
			rollback_touched(s);
			end_txn_state(s);
		}
		send_sql_error(s, &err);
	} else if (s->implicit) {
		char tag[64];
		snprintf(tag, sizeof tag, "%s", r.tag);
		plan_result_free(&r);
		ex_reset(s);
		if (s->saga)
			commit_saga(s, tag);
		else
			commit_implicit(s, tag);
		return;
	} else {
		if (ex->describe && plan_kind_of(p) == PLAN_SELECT)
			send_row_description(s, p);
		send_rows(s, p, &r);
		pgw_put_command_complete(&s->out, r.tag);
	}
	plan_result_free(&r);
	ex_reset(s);
	statement_done(s);
}

/* Each in-flight request carries a small token naming its session and slot. */
typedef struct {
	session *s;
	size_t slot;
	uint64_t gen;
} token;

static uint64_t exec_gen;

/* A read at a consistent cut holds back newer commits' phase two only until
 * every shard has taken its snapshot: what they apply afterwards is
 * invisible to it (a shard answers Started once its snapshot is fixed, see
 * wire.fbs), so the cut ends then, not when the last rows arrive. */
static void snapshot_taken(session *s, size_t slot)
{
	exec_state *ex = &s->ex;
	if (!ex->cut || !ex->snapped || slot >= ex->n || ex->snapped[slot])
		return;
	ex->snapped[slot] = true;
	if (++ex->nsnapped == ex->n) {
		coord_read_end(s->srv->coord, ex->cut);
		ex->cut = NULL;
	}
}

static void on_shard_started(void *arg)
{
	token *t = arg;
	snapshot_taken(t->s, t->slot);
}

static void on_shard_answer(void *arg, shard_answer *a, const char *error)
{
	token *t = arg;
	session *s = t->s;
	size_t slot = t->slot;
	uint64_t gen = t->gen;
	free(t);
	exec_state *ex = &s->ex;
	(void)gen;
	snapshot_taken(s, slot);
	if (error) {
		if (!ex->err_state[0]) {
			snprintf(ex->err_state, sizeof ex->err_state, "08006");
			snprintf(ex->err_msg, sizeof ex->err_msg, "%s", error);
		}
	} else if (a->msg.resp.status == WIRE_ERROR) {
		if (!ex->err_state[0]) {
			const char *st = a->msg.resp.sqlstate ? a->msg.resp.sqlstate : "XX000";
			/* SL001, a stale route, is internal: finish_stmt() plans
			 * the statement again with the new map */
			snprintf(ex->err_state, sizeof ex->err_state, "%s", st);
			snprintf(ex->err_msg, sizeof ex->err_msg, "%s", a->msg.resp.message ? a->msg.resp.message : "error on a shard");
		}
	}
	if (!error && a->msg.resp.waited && ex->kind == EX_STMT && slot < ex->batch.n)
		s->hot_shard = ex->batch.reqs[slot].shard;
	ex->answers[slot] = a;
	if (--ex->pending > 0)
		return;
	if (s->closing) {
		ex_reset(s);
		s->busy = 0;
		maybe_free(s);
		return;
	}
	if (ex->kind == EX_STMT)
		finish_stmt(s);
	else {
		extern void finish_end_txn(session *);
		finish_end_txn(s);
	}
}

/* Send ex->batch (or the end-of-transaction fan-out) and go busy. */
static int send_requests(session *s, wire_request *reqs, const size_t *shards, size_t n)
{
	exec_state *ex = &s->ex;
	ex->answers = calloc(n ? n : 1, sizeof *ex->answers);
	if (!ex->answers)
		return -1;
	if (ex->cut && !(ex->snapped = calloc(n ? n : 1, sizeof *ex->snapped)))
		return -1;
	ex->nsnapped = 0;
	ex->n = n;
	ex->pending = n;
	s->busy = 1;
	exec_gen++;
	for (size_t i = 0; i < n; i++) {
		token *t = malloc(sizeof *t);
		if (t && ex->saga_steps) {
			t->s = s;
			t->slot = i;
			t->gen = exec_gen;
			saga_step(s->srv->sagas, s->saga, shards[i], &reqs[i], on_shard_answer, t);
			continue;
		}
		reqs[i].snapshot = ex->cut != NULL;
		if (!t || shard_pool_send_ex(s->srv->pool, shards[i], &reqs[i], on_shard_answer,
					     ex->cut ? on_shard_started : NULL, t) != 0) {
			free(t);
			/* count it as failed now */
			if (!ex->err_state[0]) {
				snprintf(ex->err_state, sizeof ex->err_state, "08006");
				snprintf(ex->err_msg, sizeof ex->err_msg, "cannot reach shard %zu", shards[i]);
			}
			ex->pending--;
			snapshot_taken(s, i);  /* nothing will read there */
			continue;
		}
		t->s = s;
		t->slot = i;
		t->gen = exec_gen;
	}
	return 0;
}

/* Early prepare (coordinator.h).  A statement of a transaction that
 * reaches another shard than the early decider makes the early prepare
 * stale; the first write of a transaction on a second shard, when it wrote
 * on exactly one other, prepares that one early, naming this one.  A
 * stale early prepare was wasted work (a PREPARE, an un-prepare, a PREPARE
 * again), so a session whose transactions go on past two shards (pgbench's
 * tpcb-like) lets the next EARLY_SKIP chances pass before it tries again. */
#define EARLY_SKIP 32
static void early_prepare_hook(session *s, const wire_request *reqs, const size_t *shards, size_t n)
{
	exec_state *ex = &s->ex;
	if (s->txn_status != 'T' || s->saga || s->implicit || !s->txn || n == 0 ||
	    reqs[0].op != WIRE_OP_EXEC || reqs[0].txn != s->txn)
		return;
	if (s->early) {
		for (size_t i = 0; i < n && !s->early_stale; i++)
			if (shards[i] != s->early_decider) {
				coord_early_stale(s->srv->coord, s->txn);
				s->early_stale = true;
			}
		return;
	}
	size_t b = shards[0], a = MAX_SHARDS, others = 0;
	if (n != 1 || b >= MAX_SHARDS || !ex->began[b] || !ex->plan || !plan_writes(ex->plan))
		return;
	for (size_t i = 0; i < MAX_SHARDS; i++)
		if (s->touched[i] && i != b) {
			others++;
			a = i;
		}
	if (others != 1 || !s->wrote[a])
		return;
	/* the txn waited for a row lock on A: others may want its rows too,
	 * so A should decide (released at the decision), not be prepared */
	if (s->hot_shard == a)
		return;
	if (s->early_skip > 0) {
		s->early_skip--;
		return;
	}
	if (coord_prepare_early(s->srv->coord, s->txn, s->txn, a, b) == 0) {
		s->early = true;
		s->early_shard = a;
		s->early_decider = b;
	}
}

/* A transaction prepared early ends without a commit: the coordinator
 * rolls the early shard back, the caller the others. */
static void early_abandon(session *s)
{
	if (!s->early)
		return;
	coord_early_abort(s->srv->coord, s->txn);
	s->touched[s->early_shard] = false;
	s->early = false;
}

static void send_now(session *s, wire_request *reqs, const size_t *shards, size_t n)
{
	exec_state *ex = &s->ex;
	early_prepare_hook(s, reqs, shards, n);
	if (send_requests(s, reqs, shards, n) != 0) {
		send_error(s, "53200", "out of memory", 0);
		ex_reset(s);
		statement_done(s);
		return;
	}
	if (n == 0 || ex->pending == 0) {
		/* nothing to wait for (no targets, or every send failed) */
		s->busy = 0;
		finish_stmt(s);
	}
}

/* The statement's requests waited (for its cut, or for commits
 * acknowledged earlier to be applied on its shards): send them. */
static void on_cut_ready(void *arg)
{
	session *s = arg;
	exec_state *ex = &s->ex;
	if (s->closing) {
		ex_reset(s);
		s->busy = 0;
		maybe_free(s);
		return;
	}
	send_now(s, ex->cut_reqs, ex->cut_shards, ex->n);
}

/* An implicit saga that sent nothing yet ends here. */
static void abandon_implicit_saga(session *s)
{
	if (!s->implicit || !s->saga)
		return;
	saga_rollback(s->srv->sagas, s->saga, NULL, NULL);
	s->saga = NULL;
	end_txn_state(s);
}

static void on_gate_open(void *arg);

static void start_plan(session *s, const router_plan *p, router_plan *owned, const wire_value *params,
		       size_t nparams, bool describe)
{
	exec_state *ex = &s->ex;
	memset(ex, 0, sizeof *ex);
	const sql_stmt *comp = s->comp;
	const router_plan *cplan = s->comp_plan;
	s->comp = NULL;
	s->comp_plan = NULL;
	ex->kind = EX_STMT;
	ex->plan = p;
	ex->owned_plan = owned;
	ex->describe = describe;
	sql_error err = {0};
	if (plan_requests(p, s->srv->cat, params, nparams, &ex->batch, &err) != 0) {
		send_sql_error(s, &err);
		ex_reset(s);
		statement_done(s);
		return;
	}
	size_t n = ex->batch.n;
	bool writes = plan_writes(p);
	bool ddl = plan_kind_of(p) >= PLAN_CREATE_TABLE;
	if (ddl && s->txn_status != 'I') {
		send_error(s, "0A000", "DDL inside a transaction block is not supported", 0);
		ex_reset(s);
		statement_done(s);
		return;
	}
	rebalancer *rb = s->srv->rb;
	uint64_t gen = rebalance_gate_gen(rb);
	if (gen && !drained_txn(s, gen) && rebalance_blocks(rb, &ex->batch, plan_table_name(p), writes, ddl)) {
		/* a bucket this statement needs is being cut over to another
		 * shard: wait, then plan it again with the new map */
		ex_reset(s);
		if (rebalance_wait(rb, on_gate_open, s) != 0) {
			send_error(s, "53200", "out of memory", 0);
			statement_done(s);
			return;
		}
		s->parked = 1;
		s->busy = 1;
		return;
	}
	if (writes && !ddl && s->txn_status == 'I') {
		/* Several shards written by one autocommit statement: make it one
		 * atomic transaction. */
		size_t distinct = 0;
		for (size_t i = 0; i < n; i++) {
			size_t j = 0;
			while (j < i && ex->batch.reqs[j].shard != ex->batch.reqs[i].shard)
				j++;
			distinct += j == i;
		}
		if (distinct > 1 && strcmp(s->transaction_mode, "saga") == 0) {
			/* saga mode: one step per shard, compensated if any fails */
			s->saga = saga_begin(s->srv->sagas, router_new_txn(s->srv));
			if (s->saga) {
				s->implicit = 1;
				s->txn_status = 'T';
			}
		} else if (distinct > 1) {
			s->implicit = 1;
			s->txn_status = 'T';
			s->txn = router_new_txn(s->srv);
		}
	}
	ex->saga_steps = s->saga && writes && !ddl;
	if (comp && !ex->saga_steps) {
		send_error(s, "0A000",
			   "COMPENSATE WITH belongs to a saga step (BEGIN SAGA, or SET transaction_mode = 'saga')", 0);
		ex_reset(s);
		statement_done(s);
		return;
	}
	if (comp && !cplan && plan_build(s->srv->cat, comp, NULL, 0, &ex->comp_plan, &err) == 0)
		cplan = ex->comp_plan;
	if (comp && (!cplan || plan_requests(cplan, s->srv->cat, params, nparams, &ex->comp_batch, &err) != 0)) {
		abandon_implicit_saga(s);
		send_sql_error(s, &err);
		ex_reset(s);
		statement_done(s);
		return;
	}
	if (comp && !plan_writes(cplan)) {
		abandon_implicit_saga(s);
		send_error(s, "0A000", "COMPENSATE WITH takes INSERT, UPDATE or DELETE", 0);
		ex_reset(s);
		statement_done(s);
		return;
	}
	/* each compensation request must go where one of the steps goes */
	for (size_t j = 0; comp && j < ex->comp_batch.n; j++) {
		size_t i = 0, twice = 0;
		while (i < n && ex->batch.reqs[i].shard != ex->comp_batch.reqs[j].shard)
			i++;
		for (size_t k = 0; k < j; k++)
			twice += ex->comp_batch.reqs[k].shard == ex->comp_batch.reqs[j].shard;
		if (i == n || twice) {
			abandon_implicit_saga(s);
			send_error(s, "0A000",
				   "COMPENSATE WITH must touch the rows of its own step: it reaches a shard the step "
				   "does not", 0);
			ex_reset(s);
			statement_done(s);
			return;
		}
	}
	wire_request *reqs = calloc(n ? n : 1, sizeof *reqs);
	size_t *shards = calloc(n ? n : 1, sizeof *shards);
	if (!reqs || !shards) {
		free(reqs);
		free(shards);
		send_error(s, "53200", "out of memory", 0);
		ex_reset(s);
		statement_done(s);
		return;
	}
	bool in_txn = s->txn_status == 'T' && !ddl && !s->saga;
	for (size_t i = 0; i < n; i++) {
		plan_request *pr = &ex->batch.reqs[i];
		if (ex->saga_steps && comp) {
			/* the explicit compensation for this shard ("" if none goes here) */
			reqs[i].comp = "";
			for (size_t j = 0; j < ex->comp_batch.n; j++)
				if (ex->comp_batch.reqs[j].shard == pr->shard) {
					reqs[i].comp = ex->comp_batch.reqs[j].sql;
					reqs[i].comp_len = (uint32_t)strlen(ex->comp_batch.reqs[j].sql);
					reqs[i].comp_params = ex->comp_batch.reqs[j].params;
					reqs[i].ncomp_params = ex->comp_batch.reqs[j].nparams;
				}
		}
		reqs[i].op = WIRE_OP_EXEC;
		reqs[i].sql = pr->sql;
		reqs[i].sql_len = (uint32_t)strlen(pr->sql);
		reqs[i].params = pr->params;
		reqs[i].nparams = pr->nparams;
		reqs[i].readonly = pr->readonly && !in_txn;
		reqs[i].epoch = catalog_epoch(s->srv->cat);
		reqs[i].buckets = pr->buckets;
		reqs[i].nbuckets = pr->nbuckets;
		if (in_txn) {
			reqs[i].txn = s->txn;
			reqs[i].ts = s->txn;
			reqs[i].begin = pr->shard < MAX_SHARDS && !s->touched[pr->shard];
			if (reqs[i].begin)
				ex->began[pr->shard] = true;
			if (pr->shard < MAX_SHARDS) {
				s->touched[pr->shard] = true;
				if (writes)
					s->wrote[pr->shard] = true;
			}
		}
		shards[i] = pr->shard;
	}
	if (!writes && n > 1) {
		/* A read over several shards runs at a consistent cut: it sees a
		 * distributed transaction on all its shards or on none. */
		ex->cut_reqs = reqs;
		ex->cut_shards = shards;
		ex->n = n;
		s->busy = 1;
		ex->cut = coord_read_begin(s->srv->coord, on_cut_ready, s);
		if (!ex->cut) {
			send_error(s, "53200", "out of memory", 0);
			ex_reset(s);
			statement_done(s);
		} else if (coord_read_ready(ex->cut)) {
			on_cut_ready(s);
		}
		return;
	}
	if (!coord_on_visible(s->srv->coord, shards, n, on_cut_ready, s)) {
		ex->cut_reqs = reqs;
		ex->cut_shards = shards;
		ex->n = n;
		s->busy = 1;
		return;
	}
	send_now(s, reqs, shards, n);
	free(reqs);
	free(shards);
}

/* ---- COMMIT / ROLLBACK -------------------------------------------------------------- */

static void end_txn_state(session *s)
{
	s->implicit = 0;
	s->txn_status = 'I';
	s->txn = 0;
	memset(s->touched, 0, sizeof s->touched);
	memset(s->wrote, 0, sizeof s->wrote);
	s->hot_shard = SIZE_MAX;
	if (s->early && s->early_stale)
		s->early_skip = EARLY_SKIP;
	s->early = false;
	s->early_stale = false;
}

void finish_end_txn(session *s)
{
	exec_state *ex = &s->ex;
	const char *tag = ex->end_tag;
	bool commit = ex->commit;  /* ex_reset() below clears ex */
	int failed = ex->err_state[0] != 0;
	/* A NotFound answer means the shard no longer knows the transaction:
	 * for COMMIT of a transaction that wrote there, that is a lost one. */
	char st[6], msg[512];
	snprintf(st, sizeof st, "%s", ex->err_state);
	snprintf(msg, sizeof msg, "%s", ex->err_msg);
	if (commit && !failed) {
		for (size_t i = 0; i < ex->n; i++)
			if (ex->answers[i] && ex->answers[i]->msg.resp.status == WIRE_NOT_FOUND) {
				failed = 1;
				snprintf(st, sizeof st, "40001");
				snprintf(msg, sizeof msg,
					 "the transaction was rolled back by a shard (idle timeout or shard restart)");
			}
	}
	ex_reset(s);
	end_txn_state(s);
	if (failed && commit) {
		send_error(s, st, msg, 0);
	} else {
		pgw_put_command_complete(&s->out, tag);
	}
	s->ex.commit = false;
	statement_done(s);
}

static void on_coord_done(void *arg, int committed, const char *sqlstate, const char *message)
{
	session *s = arg;
	s->in_commit = 0;
	if (s->closing) {
		s->busy = 0;
		maybe_free(s);
		return;
	}
	const char *tag = s->implicit ? s->implicit_tag : "COMMIT";
	char t[64];
	snprintf(t, sizeof t, "%s", tag);
	end_txn_state(s);
	s->busy = 0;
	if (committed)
		pgw_put_command_complete(&s->out, t);
	else
		send_error(s, sqlstate, message, 0);
	statement_done(s);
}

/* Two-phase commit of everything the transaction touched. */
static void commit_2pc(session *s)
{
	size_t shards[MAX_SHARDS];
	bool wrote[MAX_SHARDS];
	size_t n = 0;
	for (size_t i = 0; i < MAX_SHARDS && i < catalog_nshards(s->srv->cat); i++)
		if (s->touched[i]) {
			shards[n] = i;
			wrote[n++] = s->wrote[i];
		}
	s->busy = 1;
	s->in_commit = 1;
	coord_commit(s->srv->coord, s->txn, s->txn, shards, wrote, n, s->hot_shard, on_coord_done, s);
}

static void commit_implicit(session *s, const char *tag)
{
	snprintf(s->implicit_tag, sizeof s->implicit_tag, "%s", tag);
	commit_2pc(s);
}

/* ---- sagas (coordinator/saga.h) ------------------------------------------------------ */

/* COMMIT / ROLLBACK of a saga, or the end of an implicit one. */
static void on_saga_end(void *arg, int ok, const char *sqlstate, const char *message)
{
	session *s = arg;
	if (s->closing) {
		s->busy = 0;
		maybe_free(s);
		return;
	}
	char tag[64];
	snprintf(tag, sizeof tag, "%s", s->implicit ? s->implicit_tag : s->ex.commit ? "COMMIT" : "ROLLBACK");
	end_txn_state(s);
	s->ex.commit = false;
	if (ok)
		pgw_put_command_complete(&s->out, tag);
	else
		send_error(s, sqlstate ? sqlstate : "XX000", message ? message : "saga failed", 0);
	statement_done(s);
}

static void commit_saga(session *s, const char *tag)
{
	snprintf(s->implicit_tag, sizeof s->implicit_tag, "%s", tag);
	saga *g = s->saga;
	s->saga = NULL;
	s->busy = 1;
	saga_commit(s->srv->sagas, g, on_saga_end, s);
}

/* A step failed: compensate, then tell the client the cause. */
static void on_saga_failed(void *arg, int ok, const char *sqlstate, const char *message)
{
	session *s = arg;
	if (s->closing) {
		s->busy = 0;
		maybe_free(s);
		return;
	}
	char msg[1400];
	if (ok)
		snprintf(msg, sizeof msg, "%s (saga %" PRIu64 " rolled back: its completed steps were compensated)",
			 s->saga_cause_msg, s->saga_failed);
	else
		snprintf(msg, sizeof msg, "%s; rolling the saga back: %s", s->saga_cause_msg,
			 message ? message : "compensation failed");
	(void)sqlstate;
	if (s->implicit)
		end_txn_state(s);
	else
		s->txn_status = 'E';  /* until the client's ROLLBACK */
	send_error(s, s->saga_cause_state, msg, 0);
	statement_done(s);
}

static void saga_failed(session *s, const char *sqlstate, const char *msg)
{
	snprintf(s->saga_cause_state, sizeof s->saga_cause_state, "%s", sqlstate);
	snprintf(s->saga_cause_msg, sizeof s->saga_cause_msg, "%s", msg);
	ex_reset(s);
	saga *g = s->saga;
	s->saga = NULL;
	s->saga_failed = saga_id(g);
	s->busy = 1;
	saga_rollback(s->srv->sagas, g, on_saga_failed, s);
}

static void on_resolved(void *arg, int ok, const char *sqlstate, const char *message)
{
	session *s = arg;
	if (s->closing) {
		s->busy = 0;
		maybe_free(s);
		return;
	}
	if (ok) {
		pgw_notice n = {.severity = "NOTICE", .sqlstate = "00000", .message = message};
		pgw_put_notice_response(&s->out, &n);
		pgw_put_command_complete(&s->out, "RESOLVE SAGA");
	} else {
		send_error(s, sqlstate, message, 0);
	}
	statement_done(s);
}

static void resolve_saga(session *s, const sql_stmt *st)
{
	if (s->txn_status != 'I') {
		send_error(s, "25001", "RESOLVE SAGA cannot run inside a transaction block", 0);
		statement_done(s);
		return;
	}
	char *end = NULL;
	errno = 0;
	unsigned long long id = strtoull(st->prepared_gid, &end, 10);
	if (errno || !end || *end || end == st->prepared_gid || id == 0) {
		char msg[200];
		snprintf(msg, sizeof msg, "saga identifier must be a shardlite saga id: \"%.100s\"", st->prepared_gid);
		send_error(s, "22P02", msg, 0);
		statement_done(s);
		return;
	}
	s->busy = 1;
	saga_resolve(s->srv->sagas, (uint64_t)id, st->resolve_mode, on_resolved, s);
}

static size_t writers(const session *s)
{
	size_t w = 0;
	for (size_t i = 0; i < MAX_SHARDS; i++)
		w += s->wrote[i];
	return w;
}

static void end_txn(session *s, bool commit)
{
	exec_state *ex = &s->ex;
	memset(ex, 0, sizeof *ex);
	if (s->saga) {
		saga *g = s->saga;
		s->saga = NULL;
		s->busy = 1;
		ex->commit = commit;
		if (commit)
			saga_commit(s->srv->sagas, g, on_saga_end, s);
		else
			saga_rollback(s->srv->sagas, g, on_saga_end, s);
		return;
	}
	bool failed = s->txn_status == 'E';
	if (commit && !failed && (writers(s) > 1 || s->early)) {
		commit_2pc(s);
		return;
	}
	early_abandon(s);
	ex->kind = EX_END_TXN;
	ex->commit = commit && !failed;
	ex->end_tag = ex->commit ? "COMMIT" : "ROLLBACK";
	size_t n = 0;
	wire_request reqs[MAX_SHARDS];
	size_t shards[MAX_SHARDS];
	for (size_t i = 0; i < MAX_SHARDS && i < catalog_nshards(s->srv->cat); i++) {
		if (!s->touched[i])
			continue;
		memset(&reqs[n], 0, sizeof reqs[n]);
		reqs[n].op = ex->commit ? WIRE_OP_COMMIT : WIRE_OP_ROLLBACK;
		reqs[n].txn = s->txn;
		shards[n++] = i;
	}
	if (n == 0) {
		const char *tag = ex->end_tag;
		end_txn_state(s);
		pgw_put_command_complete(&s->out, tag);
		memset(ex, 0, sizeof *ex);
		statement_done(s);
		return;
	}
	if (send_requests(s, reqs, shards, n) != 0 || ex->pending == 0) {
		s->busy = 0;
		finish_end_txn(s);
	}
}

/* ---- utility statements ----------------------------------------------------------------- */

static void send_text_table(session *s, size_t ncols, const char *const *names, size_t nrows,
			    const char *const *cells, const char *tag)
{
	pgw_field f[16];
	for (size_t i = 0; i < ncols && i < 16; i++)
		f[i] = pgw_field_of(names[i], PGW_TEXTOID);
	pgw_put_row_description(&s->out, f, (uint16_t)ncols);
	pgw_value v[16];
	for (size_t r = 0; r < nrows; r++) {
		for (size_t c = 0; c < ncols && c < 16; c++) {
			const char *x = cells[r * ncols + c];
			v[c].data = (const uint8_t *)x;
			v[c].len = x ? (int32_t)strlen(x) : -1;
		}
		pgw_put_data_row(&s->out, v, (uint16_t)ncols);
	}
	char t[64];
	snprintf(t, sizeof t, "%s %zu", tag, nrows);
	pgw_put_command_complete(&s->out, tag[0] ? t : "SHOW");
}

static const char *show_var(session *s, const char *name)
{
	if (strcmp(name, "server_version") == 0)
		return SERVER_VERSION;
	if (strcmp(name, "server_encoding") == 0 || strcmp(name, "client_encoding") == 0)
		return "UTF8";
	if (strcmp(name, "transaction_isolation") == 0 || strcmp(name, "default_transaction_isolation") == 0)
		return "read committed";
	if (strcmp(name, "transaction_mode") == 0)
		return s->transaction_mode;
	if (strcmp(name, "timezone") == 0)
		return "UTC";
	if (strcmp(name, "datestyle") == 0)
		return "ISO, MDY";
	if (strcmp(name, "standard_conforming_strings") == 0 || strcmp(name, "integer_datetimes") == 0)
		return "on";
	if (strcmp(name, "application_name") == 0)
		return s->application_name;
	if (strcmp(name, "max_identifier_length") == 0)
		return "63";
	if (strcmp(name, "commit_latency_p50_ms") == 0 || strcmp(name, "commit_latency_p99_ms") == 0 ||
	    strcmp(name, "commit_latency_commits") == 0) {
		/* distributed commits, coordinator side: see coord_commit_latency() */
		double p50, p99;
		size_t n = coord_commit_latency(s->srv->coord, &p50, &p99);
		sql_buf_reset(&s->fmt);
		if (strcmp(name, "commit_latency_commits") == 0)
			sql_buf_printf(&s->fmt, "%zu", n);
		else
			sql_buf_printf(&s->fmt, "%.3f", strcmp(name, "commit_latency_p50_ms") == 0 ? p50 : p99);
		return s->fmt.data;
	}
	if (strcmp(name, "rebalance_max_pause_ms") == 0 || strcmp(name, "rebalance_max_wait_ms") == 0) {
		/* the longest cutover (gate closed), and the longest any client
		 * statement waited at a gate, since the router started */
		double v = strcmp(name, "rebalance_max_pause_ms") == 0 ? rebalance_max_pause_ms(s->srv->rb)
							     : rebalance_max_wait_ms(s->srv->rb);
		sql_buf_reset(&s->fmt);
		sql_buf_printf(&s->fmt, "%.1f", v);
		return s->fmt.data;
	}
	return NULL;
}

/* SHOW SHARDS: id, address, state, buckets, and the rows each shard holds
 * (every table's, counted on the shard: asynchronous). */
typedef struct {
	session *s;
	size_t n, pending;
	shard_answer **ans;
} shards_show;

static void show_shards_done(shards_show *c)
{
	session *s = c->s;
	const catalog *cat = s->srv->cat;
	size_t n = c->n;
	if (s->closing) {
		s->busy = 0;
		maybe_free(s);
	} else {
		const char **cells = calloc(n * 5 + 1, sizeof *cells);
		char (*bufs)[32] = calloc(n * 3 + 1, sizeof *bufs);
		size_t *buckets = calloc(n + 1, sizeof *buckets);
		if (!cells || !bufs || !buckets) {
			send_error(s, "53200", "out of memory", 0);
		} else {
			for (uint32_t b = 0; b < CATALOG_BUCKETS; b++) {
				size_t sh = catalog_bucket_shard(cat, b);
				if (sh < n)
					buckets[sh]++;
			}
			for (size_t i = 0; i < n; i++) {
				const shard_answer *a = c->ans[i];
				snprintf(bufs[i * 3], 32, "%zu", i);
				snprintf(bufs[i * 3 + 1], 32, "%zu", buckets[i]);
				cells[i * 5] = bufs[i * 3];
				cells[i * 5 + 1] = catalog_shard_addr(cat, i);
				cells[i * 5 + 2] = catalog_shard_removed(cat, i) ? "removed"
						   : rebalance_draining(s->srv->rb, i) ? "draining"
						   : a ? "active" : "unreachable";
				cells[i * 5 + 3] = bufs[i * 3 + 1];
				if (a && a->msg.resp.status == WIRE_OK && a->msg.resp.nrows == 1 && a->msg.resp.ncols == 1 &&
				    a->msg.resp.cells[0].type == WIRE_INT) {
					snprintf(bufs[i * 3 + 2], 32, "%" PRId64, a->msg.resp.cells[0].i);
					cells[i * 5 + 4] = bufs[i * 3 + 2];
				}
			}
			const char *names[] = {"id", "address", "state", "buckets", "rows"};
			send_text_table(s, 5, names, n, cells, "SELECT");
		}
		free(cells);
		free(bufs);
		free(buckets);
	}
	for (size_t i = 0; i < n; i++)
		shard_answer_free(c->ans[i]);
	free(c->ans);
	free(c);
	if (!s->closing)
		statement_done(s);
}

typedef struct {
	shards_show *c;
	size_t i;
} shards_token;

static void on_shard_rows(void *arg, shard_answer *a, const char *err)
{
	shards_token *t = arg;
	shards_show *c = t->c;
	if (!err && a && a->msg.resp.status == WIRE_OK)
		c->ans[t->i] = a;
	else
		shard_answer_free(a);
	free(t);
	if (--c->pending == 0)
		show_shards_done(c);
}

static void show_shards(session *s)
{
	const catalog *cat = s->srv->cat;
	shards_show *c = calloc(1, sizeof *c);
	size_t n = catalog_nshards(cat);
	if (c)
		c->ans = calloc(n + 1, sizeof *c->ans);
	if (!c || !c->ans) {
		free(c);
		send_error(s, "53200", "out of memory", 0);
		statement_done(s);
		return;
	}
	c->s = s;
	c->n = n;
	c->pending = 1;  /* until every request is out */
	sql_buf q;
	sql_buf_init(&q);
	sql_buf_puts(&q, "SELECT 0");
	for (size_t i = 0; i < catalog_ntables(cat); i++) {
		const catalog_table *t = catalog_table_at(cat, i);
		sql_buf_puts(&q, " + (SELECT count(*) FROM ");
		sql_render_ident(&q, t->name);
		/* the rows the shard shows: not a move's hidden copy */
		sql_buf_puts(&q, " WHERE ");
		if (!plan_render_hidden_filter(&q, t))
			sql_buf_puts(&q, "1");
		sql_buf_puts(&q, ")");
	}
	s->busy = 1;
	for (size_t i = 0; i < n && !q.failed; i++) {
		if (catalog_shard_removed(cat, i))
			continue;
		shards_token *t = malloc(sizeof *t);
		if (!t)
			continue;
		t->c = c;
		t->i = i;
		wire_request r = {.op = WIRE_OP_EXEC, .sql = q.data, .sql_len = (uint32_t)q.len, .readonly = true};
		c->pending++;
		if (shard_pool_send(s->srv->pool, i, &r, on_shard_rows, t) != 0) {
			free(t);
			c->pending--;
		}
	}
	sql_buf_free(&q);
	if (--c->pending == 0)
		show_shards_done(c);
}

static void do_show(session *s, const sql_show *sh)
{
	router_server *srv = s->srv;
	catalog *cat = srv->cat;
	switch (sh->what) {
	case SQL_SHOW_VAR: {
		const char *v = show_var(s, sh->name);
		if (!v) {
			char m[160];
			snprintf(m, sizeof m, "unrecognized configuration parameter \"%s\"", sh->name);
			send_error(s, "42704", m, 0);
			return;
		}
		const char *names[] = {sh->name};
		const char *cells[] = {v};
		send_text_table(s, 1, names, 1, cells, "");
		return;
	}
	case SQL_SHOW_TABLES: {
		size_t n = catalog_ntables(cat);
		const char **cells = calloc(n * 3 + 1, sizeof *cells);
		char (*bufs)[64] = calloc(n * 2 + 1, sizeof *bufs);
		if (!cells || !bufs) {
			free(cells);
			free(bufs);
			send_error(s, "53200", "out of memory", 0);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			const catalog_table *t = catalog_table_at(cat, i);
			cells[i * 3] = t->name;
			snprintf(bufs[i * 2], 64, "%s",
				 t->partition == SQL_PARTITION_HASH ? "hash" : t->partition == SQL_PARTITION_RANGE ? "range" : "reference");
			cells[i * 3 + 1] = bufs[i * 2];
			cells[i * 3 + 2] = t->partition_col >= 0 ? t->cols[t->partition_col].name : NULL;
		}
		const char *names[] = {"table", "partitioning", "partition_key"};
		send_text_table(s, 3, names, n, cells, "SELECT");
		free(cells);
		free(bufs);
		return;
	}
	case SQL_SHOW_SHARDS:
		return;  /* show_shards(), asynchronous */
	case SQL_SHOW_RANGES: {
		/* every RANGE table's ranges: bounds and owner */
		size_t cap = 64, n = 0;
		char (*bufs)[5][96] = calloc(cap, sizeof *bufs);
		for (size_t i = 0; bufs && i < catalog_ntables(cat); i++) {
			const catalog_table *t = catalog_table_at(cat, i);
			if (t->partition != SQL_PARTITION_RANGE)
				continue;
			for (size_t r = 0; r <= t->nsplits; r++) {
				if (n == cap) {
					void *nb = realloc(bufs, 2 * cap * sizeof *bufs);
					if (!nb)
						break;
					bufs = nb;
					cap *= 2;
				}
				snprintf(bufs[n][0], 96, "%s", t->name);
				snprintf(bufs[n][1], 96, "%zu", r);
				for (int side = 0; side < 2; side++) {
					char *out = bufs[n][2 + side];
					out[0] = 0;
					if (side == 0 ? r == 0 : r == t->nsplits)
						continue;
					const wire_value *v = &t->splits[side == 0 ? r - 1 : r];
					if (v->type == WIRE_INT)
						snprintf(out, 96, "%" PRId64, v->i);
					else
						snprintf(out, 96, "%.*s", (int)(v->len < 90 ? v->len : 90), (const char *)v->p);
				}
				snprintf(bufs[n][4], 96, "%zu", catalog_range_shard(cat, t, r));
				n++;
			}
		}
		const char **cells = calloc(n * 5 + 1, sizeof *cells);
		if (!bufs || !cells) {
			free(bufs);
			free(cells);
			send_error(s, "53200", "out of memory", 0);
			return;
		}
		for (size_t i = 0; i < n; i++)
			for (int c = 0; c < 5; c++)
				cells[i * 5 + c] = bufs[i][c][0] || c < 2 || c == 4 ? bufs[i][c] : NULL;
		const char *names[] = {"table", "range", "from_value", "to_value", "shard"};
		send_text_table(s, 5, names, n, cells, "SELECT");
		free(bufs);
		free(cells);
		return;
	}
	case SQL_SHOW_TRANSACTIONS: {
		coord_row rows[256];
		size_t n = coord_list(srv->coord, rows, 256);
		const char **cells = calloc(n * 4 + 1, sizeof *cells);
		if (!cells) {
			send_error(s, "53200", "out of memory", 0);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			cells[i * 4] = rows[i].txn;
			cells[i * 4 + 1] = rows[i].state;
			cells[i * 4 + 2] = rows[i].participants;
			cells[i * 4 + 3] = rows[i].age_ms;
		}
		const char *names[] = {"txn", "state", "participants", "age_ms"};
		send_text_table(s, 4, names, n, cells, "SELECT");
		free(cells);
		return;
	}
	case SQL_SHOW_SAGAS: {
		saga_row *rows = calloc(256, sizeof *rows);
		const char **cells = calloc(256 * 5, sizeof *cells);
		if (!rows || !cells) {
			free(rows);
			free(cells);
			send_error(s, "53200", "out of memory", 0);
			return;
		}
		size_t n = saga_list(srv->sagas, rows, 256);
		for (size_t i = 0; i < n; i++) {
			cells[i * 5] = rows[i].saga;
			cells[i * 5 + 1] = rows[i].state;
			cells[i * 5 + 2] = rows[i].steps;
			cells[i * 5 + 3] = rows[i].detail[0] ? rows[i].detail : NULL;
			cells[i * 5 + 4] = rows[i].age_ms;
		}
		const char *names[] = {"saga", "state", "steps", "detail", "age_ms"};
		send_text_table(s, 5, names, n, cells, "SELECT");
		free(rows);
		free(cells);
		return;
	}
	case SQL_SHOW_REBALANCE: {
		enum { NC = 10, MAXR = 96 };
		rebalance_row *rows = calloc(MAXR, sizeof *rows);
		const char **cells = calloc(MAXR * NC, sizeof *cells);
		if (!rows || !cells) {
			free(rows);
			free(cells);
			send_error(s, "53200", "out of memory", 0);
			return;
		}
		size_t n = rebalance_list(srv->rb, rows, MAXR);
		for (size_t i = 0; i < n; i++) {
			const char *v[NC] = {rows[i].id,   rows[i].buckets, rows[i].from,     rows[i].to,
					     rows[i].phase, rows[i].rows,   rows[i].rate,     rows[i].eta,
					     rows[i].pause_ms, rows[i].verified};
			for (size_t c = 0; c < NC; c++)
				cells[i * NC + c] = v[c][0] ? v[c] : NULL;
		}
		const char *names[NC] = {"move", "buckets", "from_shard", "to_shard", "phase",
					 "rows_copied", "rate", "eta", "pause_ms", "detail"};
		send_text_table(s, NC, names, n, cells, "SELECT");
		free(rows);
		free(cells);
		return;
	}
	}
}

static void do_set(session *s, const sql_set *set)
{
	if (set->name && strcmp(set->name, "transaction_mode") == 0) {
		const char *v = set->value ? set->value : "2pc";
		if (strcmp(v, "2pc") != 0 && strcmp(v, "saga") != 0) {
			send_error(s, "22023", "transaction_mode must be '2pc' or 'saga'", 0);
			return;
		}
		snprintf(s->transaction_mode, sizeof s->transaction_mode, "%s", v);
	} else if (set->name && strcmp(set->name, "application_name") == 0 && set->value) {
		snprintf(s->application_name, sizeof s->application_name, "%s", set->value);
		pgw_put_parameter_status(&s->out, "application_name", s->application_name);
	} else if (set->name && strcmp(set->name, "client_encoding") == 0 && set->value &&
		   strcasecmp(set->value, "utf8") != 0 && strcasecmp(set->value, "utf-8") != 0) {
		send_error(s, "22023", "only client_encoding UTF8 is supported", 0);
		return;
	}
	/* Other settings are accepted and have no effect (as documented). */
	pgw_put_command_complete(&s->out, "SET");
}

static void do_explain(session *s, const sql_explain *e, const wire_value *params, size_t nparams)
{
	router_plan *p = NULL;
	sql_error err = {0};
	if (plan_build(s->srv->cat, e->stmt, NULL, 0, &p, &err) != 0) {
		send_sql_error(s, &err);
		return;
	}
	plan_batch b;
	memset(&b, 0, sizeof b);
	if (plan_requests(p, s->srv->cat, params, nparams, &b, &err) != 0) {
		send_sql_error(s, &err);
		plan_free(p);
		return;
	}
	sql_buf out;
	sql_buf_init(&out);
	plan_explain(p, &b, s->srv->cat, &out);
	pgw_field f = pgw_field_of("QUERY PLAN", PGW_TEXTOID);
	pgw_put_row_description(&s->out, &f, 1);
	size_t rows = 0;
	const char *line = out.data ? out.data : "";
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		pgw_value v = {.data = (const uint8_t *)line, .len = (int32_t)len};
		pgw_put_data_row(&s->out, &v, 1);
		rows++;
		line += len + (nl ? 1 : 0);
	}
	pgw_put_command_complete(&s->out, "EXPLAIN");
	sql_buf_free(&out);
	plan_batch_free(&b);
	plan_free(p);
}

static void on_forced(void *arg, int ok, const char *sqlstate, const char *message)
{
	session *s = arg;
	if (s->closing) {
		s->busy = 0;
		maybe_free(s);
		return;
	}
	if (ok) {
		pgw_notice n = {.severity = "NOTICE", .sqlstate = "00000", .message = message};
		pgw_put_notice_response(&s->out, &n);
		pgw_put_command_complete(&s->out, s->forcing_commit ? "COMMIT PREPARED" : "ROLLBACK PREPARED");
	} else {
		send_error(s, sqlstate, message, 0);
	}
	statement_done(s);
}

/* COMMIT PREPARED 'txn' / ROLLBACK PREPARED 'txn': the operator decides an
 * in-doubt transaction (coordinator.h, docs/transactions.md). */
static void resolve_prepared(session *s, const sql_stmt *st)
{
	bool commit = st->kind == SQL_STMT_COMMIT;
	if (s->txn_status != 'I') {
		send_error(s, "25001", commit ? "COMMIT PREPARED cannot run inside a transaction block"
					      : "ROLLBACK PREPARED cannot run inside a transaction block", 0);
		statement_done(s);
		return;
	}
	char *end = NULL;
	errno = 0;
	unsigned long long txn = strtoull(st->prepared_gid, &end, 10);
	if (errno || !end || *end || end == st->prepared_gid || txn == 0) {
		char msg[200];
		snprintf(msg, sizeof msg, "transaction identifier must be a shardlite transaction id: \"%.100s\"",
			 st->prepared_gid);
		send_error(s, "22P02", msg, 0);
		statement_done(s);
		return;
	}
	s->forcing_commit = commit;
	s->busy = 1;
	coord_force(s->srv->coord, (uint64_t)txn, commit, on_forced, s);
}

/* Run one statement.  Completion (sync or async) ends in statement_done(). */
static void run_admin(session *s, const sql_stmt *st);

static void run_stmt(session *s, sql_stmt *st, const router_plan *plan, const wire_value *params,
		     size_t nparams, bool describe)
{
	if (s->txn_status == 'E' && st->kind != SQL_STMT_COMMIT && st->kind != SQL_STMT_ROLLBACK) {
		send_error(s, "25P02", "current transaction is aborted, commands ignored until end of transaction block", 0);
		statement_done(s);
		return;
	}
	switch (st->kind) {
	case SQL_STMT_BEGIN:
		if (s->txn_status != 'I') {
			pgw_notice n = {.severity = "WARNING", .sqlstate = "25001",
					.message = "there is already a transaction in progress"};
			pgw_put_notice_response(&s->out, &n);
			pgw_put_command_complete(&s->out, "BEGIN");
		} else if (st->begin.saga || strcmp(s->transaction_mode, "saga") == 0) {
			s->saga = saga_begin(s->srv->sagas, router_new_txn(s->srv));
			if (!s->saga) {
				send_error(s, "53200", "out of memory", 0);
			} else {
				s->txn_status = 'T';
				pgw_put_command_complete(&s->out, "BEGIN");
			}
		} else {
			s->txn_status = 'T';
			s->txn = router_new_txn(s->srv);
			pgw_put_command_complete(&s->out, "BEGIN");
		}
		statement_done(s);
		return;
	case SQL_STMT_COMMIT:
	case SQL_STMT_ROLLBACK:
		if (st->prepared_gid) {
			resolve_prepared(s, st);
			return;
		}
		if (s->txn_status == 'I') {
			pgw_notice n = {.severity = "WARNING", .sqlstate = "25P01",
					.message = "there is no transaction in progress"};
			pgw_put_notice_response(&s->out, &n);
			pgw_put_command_complete(&s->out, st->kind == SQL_STMT_COMMIT ? "COMMIT" : "ROLLBACK");
			statement_done(s);
			return;
		}
		end_txn(s, st->kind == SQL_STMT_COMMIT);
		return;
	case SQL_STMT_SET:
		do_set(s, &st->set);
		statement_done(s);
		return;
	case SQL_STMT_SHOW:
		if (st->show.what == SQL_SHOW_SHARDS) {
			show_shards(s);
			return;
		}
		do_show(s, &st->show);
		statement_done(s);
		return;
	case SQL_STMT_EXPLAIN:
		do_explain(s, &st->explain, params, nparams);
		statement_done(s);
		return;
	case SQL_STMT_ADD_SHARD:
	case SQL_STMT_REMOVE_SHARD:
	case SQL_STMT_SPLIT_RANGE:
	case SQL_STMT_MOVE_RANGE:
	case SQL_STMT_REBALANCE:
	case SQL_STMT_MOVE_BUCKET:
	case SQL_STMT_CANCEL_REBALANCE:
		run_admin(s, st);
		return;
	case SQL_STMT_RESOLVE_SAGA:
		resolve_saga(s, st);
		return;
	default:
		break;
	}
	/* kept for a re-plan after a rebalance gate or a stale route */
	s->replan.st = st;
	s->replan.plan = plan;
	s->replan.params = params;
	s->replan.nparams = nparams;
	s->replan.describe = describe;
	s->comp = st->compensate;
	router_plan *owned = NULL;
	if (!plan) {
		sql_error err = {0};
		if (plan_build(s->srv->cat, st, NULL, 0, &owned, &err) != 0) {
			send_sql_error(s, &err);
			statement_done(s);
			return;
		}
		plan = owned;
	}
	start_plan(s, plan, owned, params, nparams, describe);
}

/* ---- rebalancing statements ---------------------------------------------------------------- */

static void on_admin_done(void *arg, int ok, const char *sqlstate, const char *message)
{
	session *s = arg;
	const char *tag = s->implicit_tag;
	if (s->closing) {
		s->busy = 0;
		maybe_free(s);
		return;
	}
	if (!ok) {
		send_error(s, sqlstate ? sqlstate : "XX000", message ? message : "failed", 0);
	} else {
		if (message && (strcmp(tag, "REBALANCE") == 0 || strncmp(message, "draining", 8) == 0)) {
			char msg[200];
			if (strcmp(tag, "REBALANCE") == 0)
				snprintf(msg, sizeof msg, "%s bucket move(s) planned; SHOW REBALANCE follows them", message);
			else
				snprintf(msg, sizeof msg, "%s", message);
			pgw_notice n = {.severity = "NOTICE", .sqlstate = "00000", .message = msg};
			pgw_put_notice_response(&s->out, &n);
		}
		pgw_put_command_complete(&s->out, tag);
	}
	statement_done(s);
}

static void run_admin(session *s, const sql_stmt *st)
{
	rebalancer *rb = s->srv->rb;
	if (s->txn_status != 'I') {
		send_error(s, "25001", "cluster administration cannot run inside a transaction block", 0);
		statement_done(s);
		return;
	}
	s->busy = 1;
	switch (st->kind) {
	case SQL_STMT_ADD_SHARD:
		snprintf(s->implicit_tag, sizeof s->implicit_tag, "ALTER CLUSTER");
		rebalance_add_shard(rb, st->add_shard.address, on_admin_done, s);
		return;
	case SQL_STMT_REBALANCE:
		snprintf(s->implicit_tag, sizeof s->implicit_tag, "REBALANCE");
		rebalance_start(rb, st->rebalance.table, on_admin_done, s);
		return;
	case SQL_STMT_REMOVE_SHARD:
		snprintf(s->implicit_tag, sizeof s->implicit_tag, "ALTER CLUSTER");
		rebalance_remove_shard(rb, st->move.shard, on_admin_done, s);
		return;
	case SQL_STMT_SPLIT_RANGE:
	case SQL_STMT_MOVE_RANGE: {
		sql_error err = {0};
		const sql_alter_range *ar = &st->alter_range;
		snprintf(s->implicit_tag, sizeof s->implicit_tag, "ALTER TABLE");
		int rc;
		if (st->kind == SQL_STMT_MOVE_RANGE) {
			rc = rebalance_move_range(rb, ar->table, ar->range, ar->shard, &err);
		} else if (rebalance_table_busy(rb, ar->table)) {
			sql_error_set(&err, "55000", 0, "a range of \"%s\" is being moved: SPLIT AT waits for it", ar->table);
			rc = -1;
		} else {
			rc = catalog_split_range(s->srv->cat, ar->table, ar->value, &err);
		}
		if (rc != 0)
			on_admin_done(s, 0, err.sqlstate, err.message);
		else
			on_admin_done(s, 1, NULL, NULL);
		return;
	}
	case SQL_STMT_MOVE_BUCKET: {
		sql_error err = {0};
		snprintf(s->implicit_tag, sizeof s->implicit_tag, "REBALANCE");
		if (rebalance_move(rb, st->move.buckets, st->move.nbuckets, st->move.shard, &err) != 0)
			on_admin_done(s, 0, err.sqlstate, err.message);
		else
			on_admin_done(s, 1, NULL, NULL);
		return;
	}
	default: {
		char msg[96];
		size_t n = rebalance_cancel(rb);
		snprintf(msg, sizeof msg, "%zu bucket move(s) cancelled", n);
		pgw_notice note = {.severity = "NOTICE", .sqlstate = "00000", .message = msg};
		pgw_put_notice_response(&s->out, &note);
		snprintf(s->implicit_tag, sizeof s->implicit_tag, "CANCEL REBALANCE");
		on_admin_done(s, 1, NULL, NULL);
		return;
	}
	}
}

/* The rebalance gate opened: plan the parked statement again. */
static void on_gate_open(void *arg)
{
	session *s = arg;
	s->parked = 0;
	if (s->closing) {
		s->busy = 0;
		maybe_free(s);
		return;
	}
	run_stmt(s, s->replan.st, s->replan.plan, s->replan.params, s->replan.nparams, s->replan.describe);
}

/* ---- simple query ----------------------------------------------------------------------- */

/* A statement finished.  Called synchronously (from inside run_simple() or
 * pump(), whose loops go on by themselves) or from a shard/coordinator
 * callback, which must restart the loop. */
static void statement_done(session *s)
{
	s->busy = 0;
	s->sl_retries = 0;
	s->comp = NULL;
	s->comp_plan = NULL;
	if (s->closing)
		return;
	if (s->in_simple) {
		if (!s->in_run)
			run_simple(s);
		return;
	}
	s->cur_portal = NULL;
	if (!s->in_pump)
		pump(s);
}

/* Statement-by-statement through the current simple Query; an error stops
 * the rest (PostgreSQL runs a multi-statement Query as one implicit
 * transaction; here each statement stands alone, see docs). */
static void run_simple(session *s)
{
	s->in_run = 1;
	while (s->qlist && s->qidx < s->qlist->n && !s->closing) {
		if (s->simple_failed)
			break;
		sql_stmt *st = s->qlist->items[s->qidx++];
		s->busy = 1;
		run_stmt(s, st, NULL, NULL, 0, true);
		if (s->busy || s->closing) {
			s->in_run = 0;
			return;  /* resumes in statement_done() */
		}
	}
	s->in_run = 0;
	if (s->closing)
		return;
	if (s->qlist)
		sql_stmt_list_free(s->qlist);
	s->qlist = NULL;
	s->in_simple = 0;
	s->simple_failed = 0;
	ready(s);
	if (!s->in_pump)
		pump(s);
}

static void handle_query(session *s, const pgw_query *q)
{
	sql_error err = {0};
	sql_stmt_list *list = NULL;
	if (sql_parse(q->sql, q->len, &list, &err) != 0) {
		send_sql_error(s, &err);
		ready(s);
		return;
	}
	if (list->n == 0) {
		sql_stmt_list_free(list);
		pgw_put_empty_query_response(&s->out);
		ready(s);
		return;
	}
	s->qlist = list;
	s->qidx = 0;
	s->in_simple = 1;
	run_simple(s);
}

/* ---- extended query ------------------------------------------------------------------------ */

static void ext_error(session *s, const char *sqlstate, const char *msg, uint32_t pos)
{
	send_error(s, sqlstate, msg, pos);
	s->skip_to_sync = 1;
}

static void handle_parse(session *s, const pgw_parse *m)
{
	sql_error err = {0};
	sql_stmt_list *list = NULL;
	if (sql_parse(m->query, m->query_len, &list, &err) != 0) {
		ext_error(s, err.sqlstate, err.message, (uint32_t)err.position);
		return;
	}
	if (list->n > 1) {
		sql_stmt_list_free(list);
		ext_error(s, "42601", "cannot insert multiple commands into a prepared statement", 0);
		return;
	}
	prepared *p = calloc(1, sizeof *p);
	if (!p) {
		sql_stmt_list_free(list);
		ext_error(s, "53200", "out of memory", 0);
		return;
	}
	p->refs = 1;
	p->list = list;
	p->stmt = list->n ? list->items[0] : NULL;
	p->name = strdup(m->name);
	p->nparam_types = m->nparams;
	p->param_types = calloc(m->nparams + 1, sizeof *p->param_types);
	for (uint16_t i = 0; i < m->nparams && p->param_types; i++)
		p->param_types[i] = pgw_parse_param_type(m, i);
	if (p->stmt && (p->stmt->kind == SQL_STMT_SELECT || p->stmt->kind == SQL_STMT_INSERT ||
			p->stmt->kind == SQL_STMT_UPDATE || p->stmt->kind == SQL_STMT_DELETE ||
			p->stmt->kind == SQL_STMT_CREATE_TABLE || p->stmt->kind == SQL_STMT_DROP_TABLE ||
			p->stmt->kind == SQL_STMT_CREATE_INDEX)) {
		if (plan_build(s->srv->cat, p->stmt, p->param_types, p->nparam_types, &p->plan, &err) != 0 ||
		    (p->stmt->compensate && plan_build(s->srv->cat, p->stmt->compensate, p->param_types,
						       p->nparam_types, &p->comp_plan, &err) != 0)) {
			free_prepared(p);
			ext_error(s, err.sqlstate, err.message, (uint32_t)err.position);
			return;
		}
	}
	prepared *old = hmap_del(&s->stmts, m->name, strlen(m->name));
	if (old && m->name[0]) {
		hmap_put(&s->stmts, m->name, strlen(m->name), old);
		free_prepared(p);
		char msg[128];
		snprintf(msg, sizeof msg, "prepared statement \"%s\" already exists", m->name);
		ext_error(s, "42P05", msg, 0);
		return;
	}
	free_prepared(old);
	hmap_put(&s->stmts, m->name, strlen(m->name), p);
	pgw_put_parse_complete(&s->out);
}

static size_t stmt_nparams(const prepared *p)
{
	if (p->plan)
		return plan_nparams(p->plan);
	return p->stmt ? (size_t)p->stmt->max_param : 0;
}

static int bind_binary(uint32_t oid, const uint8_t *d, int32_t len, sql_arena *a, wire_value *out)
{
	memset(out, 0, sizeof *out);
	switch (oid) {
	case PGW_INT2OID:
		if (len != 2) return -1;
		out->type = WIRE_INT;
		out->i = (int16_t)((d[0] << 8) | d[1]);
		return 0;
	case PGW_INT4OID:
		if (len != 4) return -1;
		out->type = WIRE_INT;
		out->i = (int32_t)(((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) | ((uint32_t)d[2] << 8) | d[3]);
		return 0;
	case PGW_INT8OID: {
		if (len != 8) return -1;
		uint64_t v = 0;
		for (int i = 0; i < 8; i++)
			v = (v << 8) | d[i];
		out->type = WIRE_INT;
		out->i = (int64_t)v;
		return 0;
	}
	case PGW_FLOAT8OID: {
		if (len != 8) return -1;
		uint64_t v = 0;
		for (int i = 0; i < 8; i++)
			v = (v << 8) | d[i];
		out->type = WIRE_REAL;
		memcpy(&out->r, &v, 8);
		return 0;
	}
	case PGW_BOOLOID:
		if (len != 1) return -1;
		out->type = WIRE_INT;
		out->i = d[0] != 0;
		return 0;
	case PGW_BYTEAOID: {
		void *p = sql_arena_alloc(a, (size_t)len + 1);
		if (!p) return -1;
		memcpy(p, d, (size_t)len);
		out->type = WIRE_BLOB;
		out->p = p;
		out->len = (uint32_t)len;
		return 0;
	}
	case PGW_TEXTOID: case PGW_VARCHAROID: case PGW_BPCHAROID: case PGW_UNKNOWNOID: {
		char *p = sql_arena_strndup(a, (const char *)d, (size_t)len);
		if (!p) return -1;
		out->type = WIRE_TEXT;
		out->p = p;
		out->len = (uint32_t)len;
		return 0;
	}
	}
	return -1;
}

static void handle_bind(session *s, const pgw_bind *b)
{
	prepared *p = hmap_get(&s->stmts, b->statement, strlen(b->statement));
	if (!p) {
		char msg[160];
		snprintf(msg, sizeof msg, "prepared statement \"%s\" does not exist", b->statement);
		ext_error(s, "26000", msg, 0);
		return;
	}
	size_t want = stmt_nparams(p);
	if (b->nparams != want) {
		char msg[160];
		snprintf(msg, sizeof msg, "bind message supplies %u parameters, but prepared statement \"%s\" requires %zu",
			 b->nparams, b->statement, want);
		ext_error(s, "08P01", msg, 0);
		return;
	}
	for (uint16_t i = 0; i < b->nresult_formats; i++)
		if (pgw_bind_result_format(b, i) != 0) {
			ext_error(s, "0A000", "binary result format is not supported", 0);
			return;
		}
	portal *po = calloc(1, sizeof *po);
	if (!po) {
		ext_error(s, "53200", "out of memory", 0);
		return;
	}
	po->arena = sql_arena_new();
	po->params = calloc(want + 1, sizeof *po->params);
	po->nparams = want;
	po->ps = p;
	p->refs++;
	po->name = strdup(b->portal);
	pgw_bind_iter it;
	pgw_bind_iter_init(b, &it);
	pgw_value v;
	sql_error err = {0};
	for (size_t i = 0; i < want && pgw_bind_iter_next(&it, &v) == 1; i++) {
		if (v.len < 0) {
			po->params[i].type = WIRE_NULL;
			continue;
		}
		int fmt = pgw_bind_param_format(b, (uint16_t)i);
		uint32_t oid = p->plan ? plan_param_type(p->plan, i) : PGW_TEXTOID;
		int rc;
		if (fmt == 1) {
			rc = bind_binary(oid, v.data, v.len, po->arena, &po->params[i]);
			if (rc != 0)
				sql_error_set(&err, "22P03", 0, "incorrect binary data format in bind parameter %zu", i + 1);
		} else if (p->plan) {
			rc = plan_bind_text(p->plan, i, (const char *)v.data, (size_t)v.len, po->arena, &po->params[i], &err);
		} else {
			char *t = sql_arena_strndup(po->arena, (const char *)v.data, (size_t)v.len);
			po->params[i].type = WIRE_TEXT;
			po->params[i].p = t;
			po->params[i].len = (uint32_t)v.len;
			rc = t ? 0 : -1;
		}
		if (rc != 0) {
			free_portal(po);
			ext_error(s, err.sqlstate[0] ? err.sqlstate : "22P02", err.message[0] ? err.message : "bad parameter", 0);
			return;
		}
	}
	portal *old = hmap_del(&s->portals, b->portal, strlen(b->portal));
	free_portal(old);
	hmap_put(&s->portals, b->portal, strlen(b->portal), po);
	pgw_put_bind_complete(&s->out);
}

static void describe_stmt_rows(session *s, const prepared *p)
{
	if (p->plan && plan_kind_of(p->plan) == PLAN_SELECT)
		send_row_description(s, p->plan);
	else if (p->stmt && p->stmt->kind == SQL_STMT_SHOW) {
		pgw_field f = pgw_field_of(p->stmt->show.name ? p->stmt->show.name : "value", PGW_TEXTOID);
		pgw_put_row_description(&s->out, &f, 1);
	} else
		pgw_put_no_data(&s->out);
}

static void handle_describe(session *s, const pgw_target *t)
{
	if (t->kind == 'S') {
		prepared *p = hmap_get(&s->stmts, t->name, strlen(t->name));
		if (!p) {
			char msg[160];
			snprintf(msg, sizeof msg, "prepared statement \"%s\" does not exist", t->name);
			ext_error(s, "26000", msg, 0);
			return;
		}
		size_t n = stmt_nparams(p);
		uint32_t *oids = calloc(n + 1, sizeof *oids);
		for (size_t i = 0; oids && i < n; i++)
			oids[i] = p->plan ? plan_param_type(p->plan, i) : PGW_TEXTOID;
		pgw_put_parameter_description(&s->out, oids, (uint16_t)n);
		free(oids);
		describe_stmt_rows(s, p);
	} else {
		portal *po = hmap_get(&s->portals, t->name, strlen(t->name));
		if (!po) {
			char msg[160];
			snprintf(msg, sizeof msg, "portal \"%s\" does not exist", t->name);
			ext_error(s, "34000", msg, 0);
			return;
		}
		describe_stmt_rows(s, po->ps);
	}
}

static void handle_execute(session *s, const pgw_execute *e)
{
	portal *po = hmap_get(&s->portals, e->portal, strlen(e->portal));
	if (!po) {
		char msg[160];
		snprintf(msg, sizeof msg, "portal \"%s\" does not exist", e->portal);
		ext_error(s, "34000", msg, 0);
		return;
	}
	if (!po->ps->stmt) {
		pgw_put_empty_query_response(&s->out);
		return;
	}
	s->cur_portal = po;
	s->busy = 1;
	s->comp_plan = po->ps->comp_plan;
	run_stmt(s, po->ps->stmt, po->ps->plan, po->params, po->nparams, false);
}

static void handle_close(session *s, const pgw_target *t)
{
	if (t->kind == 'S')
		free_prepared(hmap_del(&s->stmts, t->name, strlen(t->name)));
	else
		free_portal(hmap_del(&s->portals, t->name, strlen(t->name)));
	pgw_put_close_complete(&s->out);
}

/* ---- message loop ----------------------------------------------------------------------- */

static void handle(session *s, const pgw_msg *m)
{
	pgw_frontend f;
	pgw_err err;
	if (pgw_decode(m, &f, &err) != 0) {
		if (!s->started) {
			send_fatal(s, err.sqlstate, err.msg);
			return;
		}
		/* a malformed or unsupported message: report it; the session goes on */
		send_error(s, err.sqlstate, err.msg, 0);
		if (f.kind != PGW_F_UNSUPPORTED || m->type == 'P' || m->type == 'B' || m->type == 'E' || m->type == 'D' ||
		    m->type == 'C')
			s->skip_to_sync = 1;
		else
			ready(s);
		return;
	}
	if (!s->started) {
		handle_startup(s, &f);
		return;
	}
	if (s->skip_to_sync && f.kind != PGW_F_SYNC && f.kind != PGW_F_TERMINATE)
		return;
	switch (f.kind) {
	case PGW_F_QUERY:
		handle_query(s, &f.u.query);
		return;
	case PGW_F_PARSE:
		handle_parse(s, &f.u.parse);
		return;
	case PGW_F_BIND:
		handle_bind(s, &f.u.bind);
		return;
	case PGW_F_DESCRIBE:
		handle_describe(s, &f.u.describe);
		return;
	case PGW_F_EXECUTE:
		handle_execute(s, &f.u.execute);
		return;
	case PGW_F_CLOSE:
		handle_close(s, &f.u.close);
		return;
	case PGW_F_SYNC:
		s->skip_to_sync = 0;
		/* an unnamed portal does not outlive its transaction; keep it simple */
		ready(s);
		return;
	case PGW_F_FLUSH:
		flush(s);
		return;
	case PGW_F_TERMINATE:
		flush(s);
		session_close(s);
		return;
	default:
		send_error(s, "08P01", "unexpected message", 0);
		s->skip_to_sync = 1;
		return;
	}
}

static void pump(session *s)
{
	s->in_pump = 1;
	while (!s->busy && !s->closing) {
		pgw_msg m;
		pgw_err err;
		int rc = pgw_reader_next(&s->rd, &m, &err);
		if (rc == 0)
			break;
		if (rc < 0) {
			/* a broken stream cannot be resynchronised: say why, close */
			s->in_pump = 0;
			send_fatal(s, err.sqlstate, err.msg);
			return;
		}
		handle(s, &m);
	}
	s->in_pump = 0;
	if (!s->busy)
		flush(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	session *s = h->data;
	*buf = uv_buf_init(s->rbuf, sizeof s->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	session *s = st->data;
	if (n < 0) {
		session_close(s);
		return;
	}
	if (n == 0 || s->closing)
		return;
	if (pgw_reader_feed(&s->rd, buf->base, (size_t)n) != 0) {
		send_fatal(s, "53200", "out of memory");
		return;
	}
	pump(s);
}

void session_accept(router_server *srv, uv_stream_t *listener)
{
	session *s = calloc(1, sizeof *s);
	if (!s)
		return;
	s->srv = srv;
	s->hot_shard = SIZE_MAX;
	uv_tcp_init(srv->loop, &s->tcp);
	s->tcp.data = s;
	if (uv_accept(listener, (uv_stream_t *)&s->tcp) != 0) {
		uv_close((uv_handle_t *)&s->tcp, NULL);
		free(s);
		return;
	}
	uv_tcp_nodelay(&s->tcp, 1);
	pgw_reader_init(&s->rd);
	pgw_buf_init(&s->out);
	sql_buf_init(&s->fmt);
	hmap_init(&s->stmts);
	hmap_init(&s->portals);
	s->txn_status = 'I';
	s->pid = ++srv->next_pid;
	s->key = (uint32_t)rand();
	snprintf(s->transaction_mode, sizeof s->transaction_mode, "2pc");
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
}

void session_close_all(router_server *srv)
{
	while (srv->sessions)
		session_close(srv->sessions);
}
