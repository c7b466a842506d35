/*
 * outbox.c — see outbox.h.
 *
 * Invariants (under ob->mu):
 *  - bytes are written in send order: a direct write happens only when
 *    nothing is pending and no libuv write is in flight (busy);
 *  - pending bytes with no write in flight mean the outbox is listed on
 *    the hub (a kick is outstanding), so queued bytes never sit unnoticed;
 *  - busy implies the libuv write holds a reference, listed implies the
 *    hub holds one; the connection holds one until its close callback.
 */
#include "shard/outbox.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct outbox {
	outbox_hub *hub;
	uv_stream_t *stream;      /* loop thread only */
	int fd;
	_Atomic int refs;
	pthread_mutex_t mu;
	int closed, broken, busy, listed;
	unsigned char *pending;
	size_t plen, pcap;
	unsigned char *inflight;  /* the libuv write's bytes */
	uv_write_t w;
	outbox *next_queued;      /* hub list, under hub->mu */
};

#define SEND_IOV 64

static void flush(outbox *ob);

static void on_kick(uv_async_t *a)
{
	outbox_hub *hub = a->data;
	pthread_mutex_lock(&hub->mu);
	outbox *list = hub->queued;
	hub->queued = NULL;
	pthread_mutex_unlock(&hub->mu);
	while (list) {
		outbox *ob = list;
		list = ob->next_queued;
		pthread_mutex_lock(&ob->mu);
		ob->listed = 0;
		pthread_mutex_unlock(&ob->mu);
		flush(ob);
		outbox_unref(ob);
	}
}

int outbox_hub_init(outbox_hub *hub, uv_loop_t *loop)
{
	memset(hub, 0, sizeof *hub);
	if (pthread_mutex_init(&hub->mu, NULL) != 0)
		return -1;
	hub->kick.data = hub;
	if (uv_async_init(loop, &hub->kick, on_kick) != 0) {
		pthread_mutex_destroy(&hub->mu);
		return -1;
	}
	return 0;
}

static void on_hub_closed(uv_handle_t *h)
{
	outbox_hub *hub = h->data;
	/* kicks not yet served: their connections are closed, drop the refs */
	while (hub->queued) {
		outbox *ob = hub->queued;
		hub->queued = ob->next_queued;
		outbox_unref(ob);
	}
	pthread_mutex_destroy(&hub->mu);
}

void outbox_hub_close(outbox_hub *hub)
{
	uv_close((uv_handle_t *)&hub->kick, on_hub_closed);
}

outbox *outbox_new(outbox_hub *hub, uv_stream_t *stream)
{
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)stream, &fd) != 0)
		return NULL;
	outbox *ob = calloc(1, sizeof *ob);
	if (!ob)
		return NULL;
	if (pthread_mutex_init(&ob->mu, NULL) != 0) {
		free(ob);
		return NULL;
	}
	ob->hub = hub;
	ob->stream = stream;
	ob->fd = fd;
	atomic_init(&ob->refs, 1);
	return ob;
}

void outbox_ref(outbox *ob)
{
	atomic_fetch_add(&ob->refs, 1);
}

void outbox_unref(outbox *ob)
{
	if (!ob || atomic_fetch_sub(&ob->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&ob->mu);
	free(ob->pending);
	free(ob);
}

void outbox_close(outbox *ob)
{
	pthread_mutex_lock(&ob->mu);
	ob->closed = 1;
	free(ob->pending);
	ob->pending = NULL;
	ob->plen = ob->pcap = 0;
	pthread_mutex_unlock(&ob->mu);
}

/* Appends bufs from byte `skip` on (under ob->mu).  -1: out of memory. */
static int append(outbox *ob, const uv_buf_t *bufs, size_t n, size_t skip)
{
	size_t need = 0;
	for (size_t i = 0; i < n; i++)
		need += bufs[i].len;
	need -= skip;
	if (ob->plen + need > ob->pcap) {
		size_t cap = ob->pcap ? ob->pcap : 4096;
		while (cap < ob->plen + need)
			cap *= 2;
		unsigned char *p = realloc(ob->pending, cap);
		if (!p)
			return -1;
		ob->pending = p;
		ob->pcap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = bufs[i].len, off = 0;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		off = skip;
		skip = 0;
		memcpy(ob->pending + ob->plen, bufs[i].base + off, len - off);
		ob->plen += len - off;
	}
	return 0;
}

/* Writes as much as the socket takes now.  The count written, or -1 on an
 * error other than a full socket. */
static ssize_t write_now(int fd, const uv_buf_t *bufs, size_t n)
{
	size_t total = 0, i = 0, off = 0;
	while (i < n) {
		struct iovec iov[SEND_IOV];
		size_t k = 0, want = 0;
		for (size_t j = i; j < n && k < SEND_IOV; j++, k++) {
			size_t o = j == i ? off : 0;
			iov[k].iov_base = bufs[j].base + o;
			iov[k].iov_len = bufs[j].len - o;
			want += iov[k].iov_len;
		}
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = k};
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return (ssize_t)total;
			return -1;
		}
		total += (size_t)w;
		size_t left = (size_t)w;
		while (i < n && left >= bufs[i].len - off) {
			left -= bufs[i].len - off;
			off = 0;
			i++;
		}
		off += left;
		if ((size_t)w < want)
			return (ssize_t)total;  /* the socket is full */
	}
	return (ssize_t)total;
}

int outbox_send(outbox *ob, const uv_buf_t *bufs, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += bufs[i].len;
	pthread_mutex_lock(&ob->mu);
	if (ob->closed || ob->broken) {
		pthread_mutex_unlock(&ob->mu);
		return -1;
	}
	size_t done = 0;
	if (!ob->busy && ob->plen == 0) {
		ssize_t w = write_now(ob->fd, bufs, n);
		if (w < 0) {
			ob->broken = 1;
			pthread_mutex_unlock(&ob->mu);
			return -1;
		}
		done = (size_t)w;
	}
	if (done == total) {
		pthread_mutex_unlock(&ob->mu);
		return 0;
	}
	if (append(ob, bufs, n, done) != 0) {
		/* part of a frame may be out: the stream can only be dropped */
		ob->broken = 1;
		pthread_mutex_unlock(&ob->mu);
		return -1;
	}
	int kick = !ob->busy && !ob->listed;
	if (kick) {
		ob->listed = 1;
		outbox_ref(ob);
	}
	pthread_mutex_unlock(&ob->mu);
	if (kick) {
		outbox_hub *hub = ob->hub;
		pthread_mutex_lock(&hub->mu);
		ob->next_queued = hub->queued;
		hub->queued = ob;
		pthread_mutex_unlock(&hub->mu);
		uv_async_send(&hub->kick);
	}
	return 0;
}

static void on_written(uv_write_t *w, int status)
{
	outbox *ob = w->data;
	pthread_mutex_lock(&ob->mu);
	free(ob->inflight);
	ob->inflight = NULL;
	ob->busy = 0;
	if (status < 0)
		ob->broken = 1;
	pthread_mutex_unlock(&ob->mu);
	flush(ob);
	outbox_unref(ob);
}

/* Loop thread: one libuv write of everything pending. */
static void flush(outbox *ob)
{
	pthread_mutex_lock(&ob->mu);
	if (ob->closed || ob->broken || ob->busy || ob->plen == 0) {
		pthread_mutex_unlock(&ob->mu);
		return;
	}
	ob->inflight = ob->pending;
	uv_buf_t b = uv_buf_init((char *)ob->pending, (unsigned)ob->plen);
	ob->pending = NULL;
	ob->plen = ob->pcap = 0;
	ob->busy = 1;
	pthread_mutex_unlock(&ob->mu);
	outbox_ref(ob);
	ob->w.data = ob;
	if (uv_write(&ob->w, ob->stream, &b, 1, on_written) != 0) {
		pthread_mutex_lock(&ob->mu);
		free(ob->inflight);
		ob->inflight = NULL;
		ob->busy = 0;
		ob->broken = 1;
		pthread_mutex_unlock(&ob->mu);
		outbox_unref(ob);
	}
}
