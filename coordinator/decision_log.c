/*
 * decision_log.c — see decision_log.h for the format and the contract.
 *
 * Group commit: records are appended to `buf` (with their callbacks in
 * `waiting`).  When no flush is running, the whole buffer becomes one
 * flush: uv_fs_write at the end of the file, then uv_fs_fdatasync, then
 * every callback of that flush runs.  Records appended meanwhile wait for
 * the next flush.
 */
#include "coordinator/decision_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "txn/hmap.h"

enum { REC_COMMIT = 1, REC_DONE = 2 };

typedef struct waiter {
	struct waiter *next;
	dlog_cb cb;
	void *arg;
} waiter;

struct decision_log {
	uv_loop_t *loop;
	int fd;
	int64_t size;            /* bytes durable or being written */
	hmap pending;            /* txn -> dlog_decision* */
	/* the open batch */
	unsigned char *buf;
	size_t len, cap;
	waiter *waiting, **waiting_tail;
	/* the flush in progress */
	int flushing;
	unsigned char *fbuf;
	size_t flen;
	waiter *fwaiting;
	uv_fs_t req;
	uint64_t fsyncs;
	int closed;
};

static void put(decision_log *d, const void *p, size_t n)
{
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 4096;
		while (cap < d->len + n)
			cap *= 2;
		unsigned char *b = realloc(d->buf, cap);
		if (!b)
			abort();  /* a lost decision is not an option */
		d->buf = b;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
}

static void le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t encode(unsigned char *out, int kind, uint64_t txn, const uint16_t *shards, uint16_t n)
{
	unsigned char *body = out + 8;
	body[0] = (unsigned char)kind;
	for (int i = 0; i < 8; i++)
		body[1 + i] = (unsigned char)(txn >> (8 * i));
	body[9] = (unsigned char)n;
	body[10] = (unsigned char)(n >> 8);
	for (uint16_t i = 0; i < n; i++) {
		body[11 + 2 * i] = (unsigned char)shards[i];
		body[12 + 2 * i] = (unsigned char)(shards[i] >> 8);
	}
	uint32_t blen = 11 + 2u * n;
	le32(out, blen);
	le32(out + 4, (uint32_t)crc32(0L, body, blen));
	return 8 + blen;
}

static void add_pending(decision_log *d, uint64_t txn, const uint16_t *shards, uint16_t n)
{
	dlog_decision *dec = calloc(1, sizeof *dec);
	if (!dec)
		abort();
	dec->txn = txn;
	dec->n = n;
	dec->shards = calloc(n ? n : 1, sizeof *dec->shards);
	if (!dec->shards)
		abort();
	memcpy(dec->shards, shards, n * sizeof *shards);
	dlog_decision *old = hmap_get(&d->pending, &txn, sizeof txn);
	if (old) {
		free(old->shards);
		free(old);
	}
	hmap_put(&d->pending, &dec->txn, sizeof dec->txn, dec);
}

static void drop_pending(decision_log *d, uint64_t txn)
{
	dlog_decision *dec = hmap_del(&d->pending, &txn, sizeof txn);
	if (dec) {
		free(dec->shards);
		free(dec);
	}
}

/* Read the old log, keep what is not done, write it back compacted. */
static int load(decision_log *d, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		unsigned char hdr[8];
		for (;;) {
			ssize_t n = read(fd, hdr, 8);
			if (n != 8)
				break;
			uint32_t blen = rd32(hdr), crc = rd32(hdr + 4);
			if (blen < 11 || blen > 11 + 2 * 65535)
				break;
			unsigned char *body = malloc(blen);
			if (!body || read(fd, body, blen) != (ssize_t)blen || (uint32_t)crc32(0L, body, blen) != crc) {
				free(body);
				break;
			}
			uint64_t txn = 0;
			for (int i = 0; i < 8; i++)
				txn |= (uint64_t)body[1 + i] << (8 * i);
			uint16_t cnt = (uint16_t)(body[9] | body[10] << 8);
			if (11 + 2u * cnt != blen) {
				free(body);
				break;
			}
			uint16_t *shards = calloc(cnt ? cnt : 1, sizeof *shards);
			for (uint16_t i = 0; shards && i < cnt; i++)
				shards[i] = (uint16_t)(body[11 + 2 * i] | body[12 + 2 * i] << 8);
			if (body[0] == REC_COMMIT && shards)
				add_pending(d, txn, shards, cnt);
			else if (body[0] == REC_DONE)
				drop_pending(d, txn);
			free(shards);
			free(body);
		}
		close(fd);
	}
	/* compact: tmp file with the pending decisions, fsync, rename, fsync dir */
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int tfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (tfd < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	size_t it;
	int64_t size = 0;
	for (hmap_entry *e = hmap_first(&d->pending, &it); e; e = hmap_next(&d->pending, e, &it)) {
		dlog_decision *dec = e->value;
		unsigned char *rec = malloc(8 + 11 + 2u * dec->n);
		if (!rec)
			abort();
		size_t n = encode(rec, REC_COMMIT, dec->txn, dec->shards, dec->n);
		if (write(tfd, rec, n) != (ssize_t)n) {
			free(rec);
			close(tfd);
			snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
			return -1;
		}
		size += (int64_t)n;
		free(rec);
	}
	if (fsync(tfd) != 0 || close(tfd) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot compact %s: %s", path, strerror(errno));
		return -1;
	}
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	d->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (d->fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	d->size = size;
	return 0;
}

decision_log *dlog_open(uv_loop_t *loop, const char *path, char *err, size_t errlen)
{
	decision_log *d = calloc(1, sizeof *d);
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->loop = loop;
	d->fd = -1;
	d->waiting_tail = &d->waiting;
	hmap_init(&d->pending);
	if (load(d, path, err, errlen) != 0) {
		dlog_close(d);
		return NULL;
	}
	return d;
}

static void start_flush(decision_log *d);

static void on_synced(uv_fs_t *req)
{
	decision_log *d = req->data;
	int status = req->result < 0 ? (int)req->result : 0;
	uv_fs_req_cleanup(req);
	d->fsyncs++;
	waiter *w = d->fwaiting;
	d->fwaiting = NULL;
	free(d->fbuf);
	d->fbuf = NULL;
	d->flushing = 0;
	if (status < 0) {
		/* The disk may or may not hold the records: nothing can be promised
		 * any more.  Stop; on restart the log says what was decided. */
		fprintf(stderr, "coordinator: making the decision log durable failed: %s; exiting\n",
			uv_strerror(status));
		_exit(70);
	}
	while (w) {
		waiter *n = w->next;
		w->cb(w->arg, status);
		free(w);
		w = n;
	}
	if (!d->closed && d->len)
		start_flush(d);
}

static void on_written(uv_fs_t *req)
{
	decision_log *d = req->data;
	ssize_t r = req->result;
	uv_fs_req_cleanup(req);
	if (r != (ssize_t)d->flen) {
		fprintf(stderr, "coordinator: writing the decision log failed\n");
		req->result = r < 0 ? r : UV_EIO;
		/* report the failure through the same path as the sync */
		req->data = d;
		on_synced(req);
		return;
	}
	d->size += (int64_t)d->flen;
	req->data = d;
	if (uv_fs_fdatasync(d->loop, req, d->fd, on_synced) != 0) {
		req->result = UV_EIO;
		on_synced(req);
	}
}

static void start_flush(decision_log *d)
{
	if (d->flushing || d->len == 0)
		return;
	d->flushing = 1;
	d->fbuf = d->buf;
	d->flen = d->len;
	d->fwaiting = d->waiting;
	d->buf = NULL;
	d->len = d->cap = 0;
	d->waiting = NULL;
	d->waiting_tail = &d->waiting;
	uv_buf_t b = uv_buf_init((char *)d->fbuf, (unsigned)d->flen);
	d->req.data = d;
	if (uv_fs_write(d->loop, &d->req, d->fd, &b, 1, -1, on_written) != 0) {
		d->req.result = UV_EIO;
		on_synced(&d->req);
	}
}

int dlog_commit(decision_log *d, uint64_t txn, const uint16_t *shards, uint16_t n, dlog_cb cb, void *arg)
{
	waiter *w = malloc(sizeof *w);
	unsigned char *rec = malloc(8 + 11 + 2u * n);
	if (!w || !rec) {
		free(w);
		free(rec);
		return -1;
	}
	size_t len = encode(rec, REC_COMMIT, txn, shards, n);
	put(d, rec, len);
	free(rec);
	/* Known as committed from now on: a sweep must not presume it aborted
	 * while its record is on the way to the disk. */
	add_pending(d, txn, shards, n);
	w->cb = cb;
	w->arg = arg;
	w->next = NULL;
	*d->waiting_tail = w;
	d->waiting_tail = &w->next;
	start_flush(d);
	return 0;
}

void dlog_done(decision_log *d, uint64_t txn)
{
	if (!hmap_get(&d->pending, &txn, sizeof txn))
		return;
	drop_pending(d, txn);
	unsigned char rec[8 + 11];
	size_t len = encode(rec, REC_DONE, txn, NULL, 0);
	put(d, rec, len);
	/* no one waits: it rides along with the next flush, or starts one */
	start_flush(d);
}

bool dlog_is_committed(const decision_log *d, uint64_t txn, dlog_decision *out)
{
	dlog_decision *dec = hmap_get(&d->pending, &txn, sizeof txn);
	if (dec && out)
		*out = *dec;
	return dec != NULL;
}

size_t dlog_pending(const decision_log *d, dlog_decision *out, size_t max)
{
	size_t it, n = 0;
	for (hmap_entry *e = hmap_first(&d->pending, &it); e && n < max; e = hmap_next(&d->pending, e, &it))
		out[n++] = *(dlog_decision *)e->value;
	return n;
}

size_t dlog_npending(const decision_log *d)
{
	return d->pending.count;
}

uint64_t dlog_fsyncs(const decision_log *d)
{
	return d->fsyncs;
}

void dlog_close(decision_log *d)
{
	if (!d)
		return;
	d->closed = 1;
	size_t it;
	for (hmap_entry *e = hmap_first(&d->pending, &it); e; e = hmap_next(&d->pending, e, &it)) {
		dlog_decision *dec = e->value;
		free(dec->shards);
		free(dec);
	}
	hmap_free(&d->pending);
	for (waiter *w = d->waiting; w;) {
		waiter *n = w->next;
		free(w);
		w = n;
	}
	free(d->buf);
	if (d->fd >= 0 && !d->flushing)
		close(d->fd);
	if (!d->flushing)
		free(d);
	/* a flush in flight finishes on the loop and frees nothing further:
	 * the process is exiting */
}
