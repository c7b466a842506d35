/*
 * decision_log.c — see decision_log.h for the format and the contract.
 *
 * Group commit: records are appended to `buf` (with their callbacks in
 * `waiting`).  When no flush is running, the whole buffer becomes one
 * flush, a thread-pool job that writes it (pwrite) and fdatasyncs the file;
 * then every callback of that flush runs on the loop.  Records appended
 * meanwhile wait for the next flush.
 *
 * The file has a fixed size, LOG_SIZE, filled with zeros when it is made,
 * and records overwrite the zeros in place: an fdatasync then only flushes
 * data, never a size change (appending made each fdatasync a journal
 * commit, 5x slower here).  A zero length word marks the end.  When a flush
 * would not fit, the job rotates instead: it writes a new zero-filled file
 * holding the decisions not yet done (all of them, the flush's included),
 * syncs it and renames it over the old one.
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

#define LOG_SIZE (16u << 20)

typedef struct waiter {
	struct waiter *next;
	dlog_cb cb;
	void *arg;
} waiter;

struct decision_log {
	uv_loop_t *loop;
	int fd;
	char *path;
	int64_t size;            /* offset of the end of the records */
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
	uv_work_t work;
	int64_t foff;            /* where the flush writes */
	int rotate;              /* the flush writes a fresh file instead */
	int fstatus;             /* 0 or -errno */
	int newfd;
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

/* Every pending decision as COMMIT records (malloc'd image). */
static size_t serialize_pending(const decision_log *d, unsigned char **out)
{
	size_t cap = 1024, len = 0, it;
	unsigned char *img = malloc(cap);
	if (!img)
		abort();
	for (hmap_entry *e = hmap_first(&d->pending, &it); e; e = hmap_next(&d->pending, e, &it)) {
		dlog_decision *dec = e->value;
		size_t need = 8 + 11 + 2u * dec->n;
		while (len + need > cap) {
			cap *= 2;
			img = realloc(img, cap);
			if (!img)
				abort();
		}
		len += encode(img + len, REC_COMMIT, dec->txn, dec->shards, dec->n);
	}
	*out = img;
	return len;
}

/* Write path.tmp: img, then zeros up to LOG_SIZE; sync it, rename it over
 * path, sync the directory.  Returns an fd open for writing, or -1 (err).
 * Runs on the loop at open and on the thread pool when rotating. */
static int make_log_file(const char *path, const unsigned char *img, size_t imglen, char *err, size_t errlen)
{
	if (imglen + 8 > LOG_SIZE) {
		snprintf(err, errlen, "decision log: %zu bytes of open decisions exceed the log size", imglen);
		return -1;
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	static const unsigned char zeros[65536];
	size_t off = 0;
	int ok = imglen == 0 || pwrite(fd, img, imglen, 0) == (ssize_t)imglen;
	off = imglen;
	while (ok && off < LOG_SIZE) {
		size_t n = LOG_SIZE - off < sizeof zeros ? LOG_SIZE - off : sizeof zeros;
		ok = pwrite(fd, zeros, n, (off_t)off) == (ssize_t)n;
		off += n;
	}
	if (!ok || fsync(fd) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(fd);
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
	return fd;
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
	unsigned char *img = NULL;
	size_t imglen = serialize_pending(d, &img);
	int fd2 = make_log_file(path, img, imglen, err, errlen);
	free(img);
	if (fd2 < 0)
		return -1;
	d->fd = fd2;
	d->size = (int64_t)imglen;
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
	d->path = strdup(path);
	d->waiting_tail = &d->waiting;
	hmap_init(&d->pending);
	if (load(d, path, err, errlen) != 0) {
		dlog_close(d);
		return NULL;
	}
	return d;
}

static void start_flush(decision_log *d);

/* Thread pool: write the batch (or rotate) and make it durable. */
static void flush_work(uv_work_t *w)
{
	decision_log *d = w->data;
	d->fstatus = 0;
	if (d->rotate) {
		char err[256];
		int fd = make_log_file(d->path, d->fbuf, d->flen, err, sizeof err);
		if (fd < 0) {
			fprintf(stderr, "coordinator: %s\n", err);
			d->fstatus = -EIO;
			return;
		}
		d->newfd = fd;
		return;
	}
	if (pwrite(d->fd, d->fbuf, d->flen, (off_t)d->foff) != (ssize_t)d->flen || fdatasync(d->fd) != 0)
		d->fstatus = -errno;
}

static void flush_done(uv_work_t *w, int status)
{
	decision_log *d = w->data;
	if (status < 0 || d->fstatus < 0) {
		/* The disk may or may not hold the records: nothing can be promised
		 * any more.  Stop; on restart the log says what was decided. */
		fprintf(stderr, "coordinator: making the decision log durable failed: %s; exiting\n",
			strerror(d->fstatus < 0 ? -d->fstatus : EIO));
		_exit(70);
	}
	d->fsyncs++;
	if (d->rotate) {
		close(d->fd);
		d->fd = d->newfd;
		d->size = (int64_t)d->flen;
		d->rotate = 0;
	} else {
		d->size = d->foff + (int64_t)d->flen;
	}
	waiter *wt = d->fwaiting;
	d->fwaiting = NULL;
	free(d->fbuf);
	d->fbuf = NULL;
	d->flushing = 0;
	while (wt) {
		waiter *n = wt->next;
		wt->cb(wt->arg, 0);
		free(wt);
		wt = n;
	}
	if (!d->closed && d->len)
		start_flush(d);
	else if (d->closed)
		dlog_close(d);
}

static void start_flush(decision_log *d)
{
	if (d->flushing || d->len == 0)
		return;
	d->flushing = 1;
	d->fwaiting = d->waiting;
	d->waiting = NULL;
	d->waiting_tail = &d->waiting;
	if ((uint64_t)d->size + d->len + 8 > LOG_SIZE) {
		/* full: the new file holds every open decision (this batch's
		 * commits are already among them; its DONEs already removed) */
		free(d->buf);
		d->buf = NULL;
		d->len = d->cap = 0;
		d->flen = serialize_pending(d, &d->fbuf);
		d->rotate = 1;
	} else {
		d->fbuf = d->buf;
		d->flen = d->len;
		d->foff = d->size;
		d->buf = NULL;
		d->len = d->cap = 0;
	}
	d->work.data = d;
	if (uv_queue_work(d->loop, &d->work, flush_work, flush_done) != 0) {
		d->fstatus = -EIO;
		flush_done(&d->work, -1);
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
	if (d->flushing)
		return;  /* flush_done() comes back here */
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
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	free(d);
}
