/*
 * server.c — the shard's event loop (see server.h).
 *
 * Invariants: a connection is in `conns` from accept until its close
 * callback; answers for a connection that is gone are dropped; every
 * request submitted to the executor comes back exactly once through
 * on_answers, on the thread that ran it, which writes it to the request's
 * outbox (a reference held from on_frame until shard_req_free) and frees it.
 * When pumping, the loop calls shard_executor_pump() after every turn of
 * I/O and whenever the writer thread kicks it; the kick handle outlives the
 * writer thread (closed after shard_executor_stop).
 */
#include "shard/server.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "shard/executor.h"
#include "shard/outbox.h"
#include "shard/store.h"
#include "txn/frame.h"
#include "txn/hmap.h"
#include "txn/localsock.h"
#include "txn/wire.h"

#define READ_CHUNK 65536

typedef struct server server;

typedef struct conn {
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;   /* the same-machine socket (txn/localsock.h) */
	} io;
	server *srv;
	uint64_t id;
	frame_reader fr;
	int closing;
	outbox *ob;           /* its answers, written by whichever thread has them */
	char peer[64];
	char rbuf[READ_CHUNK];
} conn;

struct server {
	const shard_server_config *cfg;
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_pipe_t local_listener;
	int have_local;
	outbox_hub hub;
	uv_signal_t sigterm, sigint;
	shard_executor *ex;
	shard_store *inline_st;  /* read-only, loop thread: short reads inline */
	int budget_left;
	int budget_hit;
	hmap conns;          /* id -> conn */
	uint64_t next_conn;
	int stopping;
	uv_check_t pump;     /* after each turn of I/O: shard_executor_pump */
	uv_async_t kick;     /* ... and when the writer thread asks for it */
	int pumping;
};

static void on_pump(uv_check_t *h)
{
	server *s = h->data;
	if (s->ex)
		shard_executor_pump(s->ex);
}

static void on_kick(uv_async_t *h)
{
	server *s = h->data;
	if (s->ex)
		shard_executor_pump(s->ex);
}

/* writer thread */
static void kick_loop(void *arg)
{
	server *s = arg;
	uv_async_send(&s->kick);
}

static void on_closed(uv_handle_t *h)
{
	conn *c = h->data;
	outbox_unref(c->ob);
	frame_reader_free(&c->fr);
	free(c);
}

static void conn_close(conn *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (why)
		fprintf(stderr, "shard %d: closing connection %s: %s\n", c->srv->cfg->id, c->peer, why);
	server *s = c->srv;
	hmap_del(&s->conns, &c->id, sizeof c->id);
	if (s->ex) {
		shard_req *r = calloc(1, sizeof *r);
		if (r) {
			r->kind = REQ_CONN_CLOSED;
			r->conn_id = c->id;
			shard_executor_submit(s->ex, r);
		}
	}
	if (c->ob)
		outbox_close(c->ob);
	uv_close((uv_handle_t *)&c->io, on_closed);
}

/* One frame: header, then payload.  outbox_send's result. */
static int send_frame(outbox *ob, const uint8_t *payload, size_t len)
{
	uint8_t hdr[FRAME_HEADER];
	frame_header_put(hdr, (uint32_t)len);
	uv_buf_t bufs[2] = {uv_buf_init((char *)hdr, FRAME_HEADER), uv_buf_init((char *)payload, (unsigned)len)};
	return outbox_send(ob, bufs, 2);
}

/* A single frame owned by the caller's buffer `own` (freed here). */
static void send_own(conn *c, uint8_t *own, size_t len)
{
	if (send_frame(c->ob, own, len) != 0)
		conn_close(c, "write failed");
	free(own);
}

/* The answers of one connection, in one write. */
static void send_answers(outbox *ob, shard_req *list, size_t n)
{
	uv_buf_t sbufs[64], *bufs = sbufs;
	uint8_t shdrs[32][FRAME_HEADER], (*hdrs)[FRAME_HEADER] = shdrs;
	if (n > 32) {
		bufs = malloc(2 * n * sizeof *bufs);
		hdrs = malloc(n * sizeof *hdrs);
	}
	if (!bufs || !hdrs) {
		/* out of memory: one at a time */
		for (shard_req *r = list; r; r = r->next)
			send_frame(ob, r->out, r->outlen);
	} else {
		size_t i = 0;
		for (shard_req *r = list; r; r = r->next, i++) {
			frame_header_put(hdrs[i], (uint32_t)r->outlen);
			bufs[2 * i] = uv_buf_init((char *)hdrs[i], FRAME_HEADER);
			bufs[2 * i + 1] = uv_buf_init((char *)r->out, (unsigned)r->outlen);
		}
		outbox_send(ob, bufs, 2 * n);
	}
	if (bufs != sbufs)
		free(bufs);
	if (hdrs != shdrs)
		free(hdrs);
	while (list) {
		shard_req *nx = list->next;
		shard_req_free(list);
		list = nx;
	}
}

/* Executor threads (writer, readers, or this loop when it pumps): answers
 * are ready.  Each
 * connection's answers leave in one write, from this thread; a connection
 * that is gone drops them (outbox_send fails). */
static void on_answers(void *arg, shard_req *list)
{
	(void)arg;
	while (list) {
		outbox *ob = list->sink;
		shard_req *mine = NULL, **mt = &mine, *rest = NULL, **rt = &rest;
		size_t n = 0;
		for (shard_req *r = list, *nx; r; r = nx) {
			nx = r->next;
			r->next = NULL;
			if (!r->sink || !r->out) {
				shard_req_free(r);
			} else if (r->sink == ob) {
				*mt = r;
				mt = &r->next;
				n++;
			} else {
				*rt = r;
				rt = &r->next;
			}
		}
		list = rest;
		if (n)
			send_answers(ob, mine, n);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	conn *c = h->data;
	*buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

/* Answer a ping on the loop thread: proof that the loop is never stalled by
 * SQLite work. */
static void answer_ping(conn *c, uint64_t id)
{
	wire_response resp = {.id = id, .status = WIRE_OK};
	uint8_t *out = NULL;
	size_t len = 0;
	if (wire_encode_response(&resp, &out, &len) == 0)
		send_own(c, out, len);
}

/* Short reads run on the loop thread, within a budget of SQLite virtual
 * machine steps (INLINE_BUDGET x INLINE_TICK, tens of microseconds): a
 * point lookup finishes well inside it and skips two thread hand-offs.  A
 * statement that needs more is interrupted (it has no side effects) and
 * goes to a reader thread as any other read, so SQLite never holds the loop
 * longer than the budget. */
#define INLINE_TICK 100
#define INLINE_BUDGET 40

static int on_tick(void *arg)
{
	server *s = arg;
	if (--s->budget_left > 0)
		return 0;
	s->budget_hit = 1;
	return 1;  /* interrupt */
}

/* 1: answered inline; 0: hand it to the executor. */
static int try_inline(server *s, conn *c, shard_req *r)
{
	wire_request *q = &r->msg.req;
	if (!s->inline_st || q->op != WIRE_OP_EXEC || q->txn != 0 || !q->readonly)
		return 0;
	store_result res;
	store_result_init(&res);
	store_stmt *st = store_prepare(s->inline_st, q->sql, q->sql_len, &res);
	if (st && !sqlite3_stmt_readonly(st->stmt)) {
		store_result_free(&res);
		return 0;  /* the reader answers with the proper error */
	}
	if (st) {
		sqlite3 *db = store_db(s->inline_st);
		s->budget_left = INLINE_BUDGET;
		s->budget_hit = 0;
		sqlite3_progress_handler(db, INLINE_TICK, on_tick, s);
		store_run(s->inline_st, st, q->params, q->nparams, &res);
		sqlite3_progress_handler(db, 0, NULL, NULL);
		if (s->budget_hit) {
			store_result_free(&res);
			return 0;
		}
	}
	uint8_t *out = NULL;
	size_t len = 0;
	int rc = store_result_encode(&res, q->id, &out, &len);
	store_result_free(&res);
	if (rc != 0)
		return 0;
	send_own(c, out, len);
	return 1;
}

static void on_frame(conn *c, const uint8_t *payload, size_t len)
{
	server *s = c->srv;
	shard_req *r = calloc(1, sizeof *r);
	uint8_t *frame = malloc(len ? len : 1);
	if (!r || !frame) {
		free(r);
		free(frame);
		conn_close(c, "out of memory");
		return;
	}
	memcpy(frame, payload, len);
	char err[256];
	if (wire_decode(frame, len, &r->msg, err, sizeof err) != 0) {
		free(frame);
		free(r);
		conn_close(c, err);
		return;
	}
	if (r->msg.kind != WIRE_MSG_REQUEST) {
		wire_message_free(&r->msg);
		free(frame);
		free(r);
		conn_close(c, "bad frame: a shard accepts requests only");
		return;
	}
	r->frame = frame;
	r->kind = REQ_WIRE;
	r->conn_id = c->id;
	r->sink = c->ob;
	outbox_ref(c->ob);
	if (r->msg.req.op == WIRE_OP_PING) {
		answer_ping(c, r->msg.req.id);
		shard_req_free(r);
		return;
	}
	if (r->msg.req.nbuckets && r->msg.req.op != WIRE_OP_ASSIGN) {
		uint64_t epoch;
		long foreign = shard_executor_foreign_bucket(s->ex, r->msg.req.buckets, r->msg.req.nbuckets, &epoch);
		if (foreign >= 0) {
			/* routed with a stale shard map: the router refreshes, retries */
			store_result res;
			store_result_init(&res);
			store_result_error(&res, "SL001",
					   "stale route: bucket %ld is not on shard %d (its map: epoch %llu; request: epoch %llu)",
					   foreign, s->cfg->id, (unsigned long long)epoch,
					   (unsigned long long)r->msg.req.epoch);
			uint8_t *out = NULL;
			size_t olen = 0;
			if (store_result_encode(&res, r->msg.req.id, &out, &olen) == 0)
				send_own(c, out, olen);
			store_result_free(&res);
			shard_req_free(r);
			return;
		}
	}
	if (try_inline(s, c, r)) {
		shard_req_free(r);
		return;
	}
	shard_executor_submit(s->ex, r);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	conn *c = st->data;
	if (n < 0) {
		conn_close(c, n == UV_EOF ? NULL : uv_strerror((int)n));
		return;
	}
	if (n == 0 || c->closing)
		return;
	if (frame_reader_feed(&c->fr, buf->base, (size_t)n) != 0) {
		conn_close(c, "out of memory");
		return;
	}
	for (;;) {
		const uint8_t *p;
		size_t len;
		char err[256];
		int rc = frame_reader_next(&c->fr, &p, &len, err, sizeof err);
		if (rc == 0)
			break;
		if (rc < 0) {
			conn_close(c, err);
			return;
		}
		on_frame(c, p, len);
		if (c->closing)
			return;
	}
}

static void accept_conn(uv_stream_t *l, int status, int local)
{
	server *s = l->data;
	if (status < 0 || s->stopping)
		return;
	conn *c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->srv = s;
	c->id = ++s->next_conn;
	frame_reader_init(&c->fr);
	if (local)
		uv_pipe_init(s->loop, &c->io.pipe, 0);
	else
		uv_tcp_init(s->loop, &c->io.tcp);
	c->io.tcp.data = c;
	if (uv_accept(l, (uv_stream_t *)&c->io) != 0 || !(c->ob = outbox_new(&s->hub, (uv_stream_t *)&c->io))) {
		uv_close((uv_handle_t *)&c->io, on_closed);
		return;
	}
	snprintf(c->peer, sizeof c->peer, "%s#%" PRIu64, local ? "local" : "", c->id);
	if (!local) {
		uv_tcp_nodelay(&c->io.tcp, 1);
		struct sockaddr_storage sa;
		int salen = sizeof sa;
		if (uv_tcp_getpeername(&c->io.tcp, (struct sockaddr *)&sa, &salen) == 0 && sa.ss_family == AF_INET) {
			char ip[32];
			struct sockaddr_in *in = (struct sockaddr_in *)&sa;
			uv_ip4_name(in, ip, sizeof ip);
			snprintf(c->peer, sizeof c->peer, "%s:%d", ip, ntohs(in->sin_port));
		}
	}
	if (hmap_put(&s->conns, &c->id, sizeof c->id, c) != 0) {
		uv_close((uv_handle_t *)&c->io, on_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&c->io, on_alloc, on_read);
}

static void on_connection(uv_stream_t *l, int status)
{
	accept_conn(l, status, 0);
}

static void on_local_connection(uv_stream_t *l, int status)
{
	accept_conn(l, status, 1);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	server *s = sig->data;
	if (s->stopping)
		return;
	s->stopping = 1;
	fprintf(stderr, "shard %d: signal %d, shutting down\n", s->cfg->id, signum);
	if (s->pumping)
		uv_close((uv_handle_t *)&s->pump, NULL);
	/* Let the batch in progress finish; unanswered requests die with their
	 * connections (nothing was acknowledged for them). */
	shard_executor_stop(s->ex);
	s->ex = NULL;
	if (s->pumping)
		uv_close((uv_handle_t *)&s->kick, NULL);  /* the writer thread is gone */
	store_close(s->inline_st);
	s->inline_st = NULL;
	size_t it;
	conn *list[256];
	for (;;) {
		int n = 0;
		for (hmap_entry *e = hmap_first(&s->conns, &it); e && n < 256; e = hmap_next(&s->conns, e, &it))
			list[n++] = e->value;
		if (!n)
			break;
		for (int i = 0; i < n; i++)
			conn_close(list[i], NULL);
	}
	uv_close((uv_handle_t *)&s->listener, NULL);
	if (s->have_local)
		uv_close((uv_handle_t *)&s->local_listener, NULL);
	outbox_hub_close(&s->hub);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
}

int shard_server_run(const shard_server_config *cfg)
{
	server s;
	memset(&s, 0, sizeof s);
	s.cfg = cfg;
	hmap_init(&s.conns);
	signal(SIGPIPE, SIG_IGN);
	if (mkdir(cfg->data_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "shard %d: cannot create %s: %s\n", cfg->id, cfg->data_dir, strerror(errno));
		return 1;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/shard.db", cfg->data_dir);
	s.loop = uv_default_loop();
	if (outbox_hub_init(&s.hub, s.loop) != 0) {
		fprintf(stderr, "shard %d: cannot set up the answer path\n", cfg->id);
		return 1;
	}
	/* light requests run on this loop (executor.h), unless switched off,
	 * or a test stalls shard code on purpose (a delay failpoint), which
	 * must not stall the loop with it */
	const char *pump = getenv("SHARDLITE_SHARD_PUMP");
	if (pump && strcmp(pump, "0") != 0 && strcmp(pump, "1") != 0) {
		fprintf(stderr, "shard %d: SHARDLITE_SHARD_PUMP must be 0 or 1, not '%s'\n", cfg->id, pump);
		return 2;
	}
	const char *fp = getenv("SHARDLITE_FAILPOINTS");
	s.pumping = !(pump && strcmp(pump, "0") == 0) && !(fp && strstr(fp, "delay:"));
	if (s.pumping) {
		/* before the writer thread starts: it may kick at once */
		uv_async_init(s.loop, &s.kick, on_kick);
		s.kick.data = &s;
	}
	char err[512];
	shard_executor_config ec = {
		.db_path = path,
		.nreaders = cfg->nreaders,
		.lock_timeout_ms = cfg->lock_timeout_ms,
		.idle_timeout_ms = cfg->idle_timeout_ms,
		.wound_delay_ms = cfg->wound_delay_ms,
		.pump = s.pumping,
		.kick = kick_loop,
		.on_answers = on_answers,
		.arg = &s,
	};
	s.ex = shard_executor_start(&ec, err, sizeof err);
	if (!s.ex) {
		fprintf(stderr, "shard %d: %s\n", cfg->id, err);
		return 1;
	}
	/* opened after the executor made the database and its WAL */
	s.inline_st = store_open(path, STORE_READER, err, sizeof err);
	if (!s.inline_st)
		fprintf(stderr, "shard %d: no inline reads: %s\n", cfg->id, err);
	struct sockaddr_in addr;
	int rc = uv_ip4_addr(cfg->host, cfg->port, &addr);
	if (rc == 0)
		rc = uv_tcp_init(s.loop, &s.listener);
	s.listener.data = &s;
	if (rc == 0)
		rc = uv_tcp_bind(&s.listener, (const struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s.listener, 511, on_connection);
	if (rc != 0) {
		fprintf(stderr, "shard %d: cannot listen on %s:%d: %s\n", cfg->id, cfg->host, cfg->port,
			uv_strerror(rc));
		shard_executor_stop(s.ex);
		store_close(s.inline_st);
		return 1;
	}
	/* the same-machine path: a shard on a loopback address also answers
	 * on its abstract Unix socket (txn/localsock.h) */
	if (localsock_is_loopback(cfg->host)) {
		int fd = localsock_listen(cfg->host, cfg->port);
		if (fd < 0 || uv_pipe_init(s.loop, &s.local_listener, 0) != 0) {
			fprintf(stderr, "shard %d: no same-machine socket (TCP only): %s\n", cfg->id, strerror(errno));
			if (fd >= 0)
				close(fd);
		} else {
			s.local_listener.data = &s;
			if (uv_pipe_open(&s.local_listener, fd) != 0)
				close(fd);  /* not the handle's yet */
			else if (uv_listen((uv_stream_t *)&s.local_listener, 511, on_local_connection) == 0)
				s.have_local = 1;
			if (!s.have_local) {
				fprintf(stderr, "shard %d: no same-machine socket (TCP only)\n", cfg->id);
				uv_close((uv_handle_t *)&s.local_listener, NULL);
			}
		}
	}
	if (s.pumping) {
		uv_check_init(s.loop, &s.pump);
		s.pump.data = &s;
		uv_check_start(&s.pump, on_pump);
	}
	uv_signal_init(s.loop, &s.sigterm);
	uv_signal_init(s.loop, &s.sigint);
	s.sigterm.data = s.sigint.data = &s;
	uv_signal_start(&s.sigterm, on_signal, SIGTERM);
	uv_signal_start(&s.sigint, on_signal, SIGINT);
	fprintf(stderr, "shard %d: serving %s on %s:%d\n", cfg->id, path, cfg->host, cfg->port);
	uv_run(s.loop, UV_RUN_DEFAULT);
	uv_loop_close(s.loop);
	hmap_free(&s.conns);
	fprintf(stderr, "shard %d: stopped\n", cfg->id);
	return 0;
}
