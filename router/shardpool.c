/*
 * shardpool.c — multiplexed connections from the router to the shards (see
 * shardpool.h).
 *
 * Per shard: state DOWN -> CONNECTING -> UP -> (error) DOWN.  Requests sent
 * while CONNECTING wait in `queued` (already encoded) and are written when
 * the connection comes up.  `inflight` maps request id -> pending callback.
 * Requests sent while UP are appended to the connection's `obuf`; one idle
 * callback per loop iteration writes each dirty connection's buffer with a
 * single write, so requests of many sessions share system calls.
 * Invariant: every pending entry is either in `queued` or in `inflight`,
 * never both, and is completed exactly once (answer, error, or close).
 */
#include "router/shardpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "txn/client.h"
#include "txn/frame.h"
#include "txn/hmap.h"
#include "txn/localsock.h"

typedef struct pending {
	struct pending *next;
	uint64_t id;
	shard_cb cb;
	shard_started_cb started;  /* interim Started answers, or NULL */
	void *arg;
	uint8_t *buf;          /* header + payload, until written */
	size_t len;
} pending;

typedef enum { CONN_DOWN, CONN_CONNECTING, CONN_UP } conn_state;

/* A shard on a loopback address is reached through its abstract Unix
 * socket when it has one (txn/localsock.h), else through TCP. */
typedef union {
	uv_handle_t h;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
} conn_io;

typedef struct shard_conn {
	shard_pool *pool;
	size_t index;
	char addr[128];
	conn_state state;
	conn_io *io;           /* heap: freed in its close callback */
	int local;             /* io is the same-machine socket, not TCP */
	uv_connect_t connect;
	frame_reader fr;
	pending *queued, **queued_tail;
	hmap inflight;         /* id -> pending */
	uint8_t *obuf;         /* frames not yet handed to libuv */
	size_t olen, ocap;
	int dirty;
	char rbuf[65536];
} shard_conn;

struct shard_pool {
	uv_loop_t *loop;
	shard_conn **shards;
	size_t n;
	uint64_t next_id;
	int closing;
	uv_idle_t flusher;
	int flushing_armed;
	shard_waiting_cb waiting;
	void *waiting_arg;
};

/* A write owns its bytes: the answer (and the pending entry's end) may
 * come before libuv reports the write done. */
typedef struct {
	uv_write_t w;
	uint8_t *buf;
} write_op;

/* Deferred callbacks: a send that fails at once must not call back from
 * inside shard_pool_send(). */
typedef struct {
	uv_idle_t idle;
	pending *p;
	char error[256];
} deferred;

void shard_pool_on_waiting(shard_pool *p, shard_waiting_cb waiting, void *arg)
{
	p->waiting = waiting;
	p->waiting_arg = arg;
}

void shard_answer_free(shard_answer *a)
{
	if (!a)
		return;
	wire_message_free(&a->msg);
	free(a->frame);
	free(a);
}

shard_pool *shard_pool_new(uv_loop_t *loop)
{
	shard_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->loop = loop;
	uv_idle_init(loop, &p->flusher);
	p->flusher.data = p;
	return p;
}

size_t shard_pool_size(const shard_pool *p)
{
	return p->n;
}

int shard_pool_set_addr(shard_pool *p, size_t shard, const char *addr)
{
	if (shard >= p->n) {
		shard_conn **s = realloc(p->shards, (shard + 1) * sizeof *s);
		if (!s)
			return -1;
		p->shards = s;
		for (size_t i = p->n; i <= shard; i++) {
			s[i] = calloc(1, sizeof *s[i]);
			if (!s[i])
				return -1;
			s[i]->pool = p;
			s[i]->index = i;
			s[i]->queued_tail = &s[i]->queued;
			hmap_init(&s[i]->inflight);
			frame_reader_init(&s[i]->fr);
		}
		p->n = shard + 1;
	}
	snprintf(p->shards[shard]->addr, sizeof p->shards[shard]->addr, "%s", addr);
	return 0;
}

static void on_deferred_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_deferred(uv_idle_t *idle)
{
	deferred *d = idle->data;
	uv_idle_stop(idle);
	d->p->cb(d->p->arg, NULL, d->error);
	free(d->p->buf);
	free(d->p);
	d->p = NULL;
	uv_close((uv_handle_t *)idle, on_deferred_closed);
}

static void fail_later(shard_pool *pool, pending *p, const char *error)
{
	deferred *d = calloc(1, sizeof *d);
	if (!d) {
		/* out of memory: call back now rather than never */
		p->cb(p->arg, NULL, error);
		free(p->buf);
		free(p);
		return;
	}
	d->p = p;
	snprintf(d->error, sizeof d->error, "%s", error);
	uv_idle_init(pool->loop, &d->idle);
	d->idle.data = d;
	uv_idle_start(&d->idle, on_deferred);
}

static void on_io_closed(uv_handle_t *h)
{
	free(h);
}

/* Fail everything on this connection and mark it down. */
static void conn_fail(shard_conn *c, const char *why)
{
	char msg[256];
	snprintf(msg, sizeof msg, "connection to shard %zu (%s) lost: %s", c->index, c->addr, why);
	if (c->io) {
		uv_close((uv_handle_t *)c->io, on_io_closed);
		c->io = NULL;
	}
	c->state = CONN_DOWN;
	c->olen = 0;
	c->dirty = 0;
	frame_reader_free(&c->fr);
	frame_reader_init(&c->fr);
	pending *q = c->queued;
	c->queued = NULL;
	c->queued_tail = &c->queued;
	while (q) {
		pending *n = q->next;
		fail_later(c->pool, q, msg);
		q = n;
	}
	size_t it;
	pending *list = NULL;
	for (hmap_entry *e = hmap_first(&c->inflight, &it); e; e = hmap_next(&c->inflight, e, &it)) {
		pending *p = e->value;
		p->next = list;
		list = p;
	}
	hmap_free(&c->inflight);
	hmap_init(&c->inflight);
	while (list) {
		pending *n = list->next;
		fail_later(c->pool, list, msg);
		list = n;
	}
}

static void on_written(uv_write_t *w, int status)
{
	write_op *op = (write_op *)w;
	free(op->buf);
	shard_conn *c = w->data;
	free(op);
	if (status < 0 && c->io && c->state == CONN_UP)
		conn_fail(c, uv_strerror(status));
}

static void on_flush(uv_idle_t *idle);

/* Register p as in flight and queue its bytes for this iteration's write. */
static int conn_write(shard_conn *c, pending *p)
{
	if (c->olen + p->len > c->ocap) {
		size_t cap = c->ocap ? c->ocap * 2 : 16384;
		while (cap < c->olen + p->len)
			cap *= 2;
		uint8_t *b = realloc(c->obuf, cap);
		if (!b)
			return -1;
		c->obuf = b;
		c->ocap = cap;
	}
	if (hmap_put(&c->inflight, &p->id, sizeof p->id, p) != 0)
		return -1;
	memcpy(c->obuf + c->olen, p->buf, p->len);
	c->olen += p->len;
	free(p->buf);
	p->buf = NULL;
	c->dirty = 1;
	shard_pool *pool = c->pool;
	if (!pool->flushing_armed) {
		pool->flushing_armed = 1;
		uv_idle_start(&pool->flusher, on_flush);
	}
	return 0;
}

static void on_flush(uv_idle_t *idle)
{
	shard_pool *pool = idle->data;
	uv_idle_stop(idle);
	pool->flushing_armed = 0;
	for (size_t i = 0; i < pool->n; i++) {
		shard_conn *c = pool->shards[i];
		if (!c->dirty)
			continue;
		c->dirty = 0;
		if (!c->io || c->state != CONN_UP || c->olen == 0) {
			c->olen = 0;
			continue;
		}
		/* most writes complete at once: no request, and no epoll_ctl
		 * (uv_write re-arms the watcher even when it wrote it all);
		 * behind a queued write this is EAGAIN, so order is kept */
		uv_buf_t b = uv_buf_init((char *)c->obuf, (unsigned)c->olen);
		int n = uv_try_write((uv_stream_t *)c->io, &b, 1);
		if (n == (int)c->olen) {
			c->olen = 0;
			continue;
		}
		if (n < 0 && n != UV_EAGAIN) {
			conn_fail(c, uv_strerror(n));
			continue;
		}
		size_t done = n > 0 ? (size_t)n : 0;
		write_op *op = calloc(1, sizeof *op);
		if (!op) {
			conn_fail(c, "out of memory");
			continue;
		}
		op->w.data = c;
		if (done)
			memmove(c->obuf, c->obuf + done, c->olen - done);
		op->buf = c->obuf;
		b = uv_buf_init((char *)c->obuf, (unsigned)(c->olen - done));
		c->obuf = NULL;
		c->olen = c->ocap = 0;
		if (uv_write(&op->w, (uv_stream_t *)c->io, &b, 1, on_written) != 0) {
			free(op->buf);
			free(op);
			conn_fail(c, "write failed");
		}
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	shard_conn *c = h->data;
	*buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	shard_conn *c = s->data;
	if (n < 0) {
		conn_fail(c, n == UV_EOF ? "closed by the shard" : uv_strerror((int)n));
		return;
	}
	if (n == 0)
		return;
	if (frame_reader_feed(&c->fr, buf->base, (size_t)n) != 0) {
		conn_fail(c, "out of memory");
		return;
	}
	for (;;) {
		const uint8_t *payload;
		size_t len;
		char err[256];
		int rc = frame_reader_next(&c->fr, &payload, &len, err, sizeof err);
		if (rc == 0)
			return;
		if (rc < 0) {
			conn_fail(c, err);
			return;
		}
		shard_answer *a = calloc(1, sizeof *a);
		if (a)
			a->frame = malloc(len ? len : 1);
		if (!a || !a->frame) {
			free(a);
			conn_fail(c, "out of memory");
			return;
		}
		memcpy(a->frame, payload, len);
		if (wire_decode(a->frame, len, &a->msg, err, sizeof err) != 0 ||
		    a->msg.kind != WIRE_MSG_RESPONSE) {
			if (a->msg.kind == WIRE_MSG_REQUEST)
				wire_message_free(&a->msg);
			free(a->frame);
			free(a);
			conn_fail(c, "bad frame from the shard");
			return;
		}
		uint64_t id = a->msg.resp.id;
		if (a->msg.resp.status == WIRE_WAITING) {
			/* interim too: the request waits for an early-prepared txn */
			uint64_t holder = (uint64_t)a->msg.resp.changes;
			shard_answer_free(a);
			if (c->pool->waiting && hmap_get(&c->inflight, &id, sizeof id))
				c->pool->waiting(c->pool->waiting_arg, c->index, holder);
			if (!c->io)
				return;  /* the callback closed the pool */
			continue;
		}
		if (a->msg.resp.status == WIRE_STARTED) {
			/* interim: the request stays in flight */
			pending *p = hmap_get(&c->inflight, &id, sizeof id);
			shard_answer_free(a);
			if (p && p->started)
				p->started(p->arg);
			if (!c->io)
				return;  /* the callback closed the pool */
			continue;
		}
		pending *p = hmap_del(&c->inflight, &id, sizeof id);
		if (!p) {
			shard_answer_free(a);
			continue;  /* an answer nobody waits for any more */
		}
		p->cb(p->arg, a, NULL);
		free(p->buf);
		free(p);
		if (!c->io)
			return;  /* the callback closed the pool */
	}
}

static void conn_up(shard_conn *c)
{
	c->state = CONN_UP;
	if (!c->local)
		uv_tcp_nodelay(&c->io->tcp, 1);
	uv_read_start((uv_stream_t *)c->io, on_alloc, on_read);
	pending *q = c->queued;
	c->queued = NULL;
	c->queued_tail = &c->queued;
	while (q) {
		pending *n = q->next;
		if (conn_write(c, q) != 0)
			fail_later(c->pool, q, "cannot write to the shard");
		q = n;
	}
}

static void on_connect(uv_connect_t *req, int status)
{
	shard_conn *c = req->data;
	if (status < 0) {
		conn_fail(c, uv_strerror(status));
		return;
	}
	conn_up(c);
}

/* The same-machine socket: up at once, or 0 to go through TCP. */
static int conn_start_local(shard_conn *c, const char *host, int port)
{
	int fd = localsock_connect(host, port);
	if (fd < 0)
		return 0;
	c->io = calloc(1, sizeof *c->io);
	if (!c->io || uv_pipe_init(c->pool->loop, &c->io->pipe, 0) != 0) {
		free(c->io);
		c->io = NULL;
		close(fd);
		return 0;
	}
	c->io->h.data = c;
	if (uv_pipe_open(&c->io->pipe, fd) != 0) {
		close(fd);
		uv_close(&c->io->h, on_io_closed);
		c->io = NULL;
		return 0;
	}
	c->local = 1;
	conn_up(c);
	return 1;
}

static int conn_start(shard_conn *c)
{
	char host[128];
	int port;
	struct sockaddr_in sa;
	if (wire_parse_addr(c->addr, host, sizeof host, &port) != 0 || uv_ip4_addr(host, port, &sa) != 0)
		return -1;
	if (conn_start_local(c, host, port))
		return 0;
	c->local = 0;
	c->io = calloc(1, sizeof *c->io);
	if (!c->io)
		return -1;
	uv_tcp_init(c->pool->loop, &c->io->tcp);
	c->io->h.data = c;
	c->connect.data = c;
	if (uv_tcp_connect(&c->connect, &c->io->tcp, (const struct sockaddr *)&sa, on_connect) != 0) {
		uv_close(&c->io->h, on_io_closed);
		c->io = NULL;
		return -1;
	}
	c->state = CONN_CONNECTING;
	return 0;
}

int shard_pool_send(shard_pool *pool, size_t shard, wire_request *req, shard_cb cb, void *arg)
{
	return shard_pool_send_ex(pool, shard, req, cb, NULL, arg);
}

int shard_pool_send_ex(shard_pool *pool, size_t shard, wire_request *req, shard_cb cb, shard_started_cb started,
		       void *arg)
{
	if (shard >= pool->n || pool->closing)
		return -1;
	shard_conn *c = pool->shards[shard];
	pending *p = calloc(1, sizeof *p);
	if (!p)
		return -1;
	req->id = p->id = ++pool->next_id;
	p->cb = cb;
	p->started = started;
	p->arg = arg;
	uint8_t *payload;
	size_t len;
	if (wire_encode_request(req, &payload, &len) != 0) {
		free(p);
		return -1;
	}
	p->buf = malloc(len + FRAME_HEADER);
	if (!p->buf) {
		free(payload);
		free(p);
		return -1;
	}
	frame_header_put(p->buf, (uint32_t)len);
	memcpy(p->buf + FRAME_HEADER, payload, len);
	p->len = len + FRAME_HEADER;
	free(payload);
	if (c->state == CONN_DOWN && conn_start(c) != 0) {
		char msg[256];
		snprintf(msg, sizeof msg, "cannot connect to shard %zu (%s)", shard, c->addr);
		fail_later(pool, p, msg);
		return 0;
	}
	if (c->state == CONN_CONNECTING) {
		p->next = NULL;
		*c->queued_tail = p;
		c->queued_tail = &p->next;
		return 0;
	}
	if (conn_write(c, p) != 0) {
		fail_later(pool, p, "cannot write to the shard");
		conn_fail(c, "write failed");
	}
	return 0;
}

static void on_pool_closed(uv_handle_t *h)
{
	free(h->data);
}

void shard_pool_close(shard_pool *pool)
{
	pool->closing = 1;
	for (size_t i = 0; i < pool->n; i++) {
		shard_conn *c = pool->shards[i];
		conn_fail(c, "router shutting down");
		frame_reader_free(&c->fr);
		hmap_free(&c->inflight);
		free(c->obuf);
		free(c);
	}
	free(pool->shards);
	uv_idle_stop(&pool->flusher);
	uv_close((uv_handle_t *)&pool->flusher, on_pool_closed);
}
