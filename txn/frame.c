/*
 * frame.c — the one frame reader of the project (format: txn/frame.h).
 *
 * Invariants of frame_reader:
 *  - buf[off, len) are the bytes fed and not yet consumed; off <= len <= cap.
 *  - A frame handed out by frame_reader_next() is buf[off' + 4, off' + 4 + N)
 *    for the previous off'; nothing moves the bytes until the next call,
 *    because only frame_reader_feed() compacts (moves buf[off, len) to the
 *    front) and grows the buffer.
 *  - A bad header (length 0 or above FRAME_MAX) is never consumed, so every
 *    later frame_reader_next() reports it again: the stream stays poisoned.
 *    It is detected from the 4 header bytes alone, before any payload is
 *    waited for, so a hostile length never makes the reader hold more than
 *    what was actually fed.
 *  - Compaction happens at most once per feed, so handing out k frames that
 *    arrived in one feed costs O(bytes), not O(k * bytes).
 */
#include "txn/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_MIN_CAP 4096u

void frame_header_put(uint8_t hdr[FRAME_HEADER], uint32_t len)
{
	hdr[0] = (uint8_t)len;
	hdr[1] = (uint8_t)(len >> 8);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 24);
}

uint32_t frame_header_get(const uint8_t hdr[FRAME_HEADER])
{
	return (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 |
	       (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
}

void frame_reader_init(frame_reader *fr)
{
	memset(fr, 0, sizeof(*fr));
}

void frame_reader_free(frame_reader *fr)
{
	free(fr->buf);
	memset(fr, 0, sizeof(*fr));
}

int frame_reader_feed(frame_reader *fr, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (fr->off == fr->len) {
		fr->off = fr->len = 0;
	} else if (fr->off > 0) {
		memmove(fr->buf, fr->buf + fr->off, fr->len - fr->off);
		fr->len -= fr->off;
		fr->off = 0;
	}
	if (n > SIZE_MAX - fr->len)
		return -1;
	size_t need = fr->len + n;
	if (need > fr->cap) {
		size_t cap = fr->cap ? fr->cap : FRAME_MIN_CAP;
		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		uint8_t *nb = realloc(fr->buf, cap);
		if (!nb)
			return -1;
		fr->buf = nb;
		fr->cap = cap;
	}
	memcpy(fr->buf + fr->len, data, n);
	fr->len += n;
	return 0;
}

int frame_reader_next(frame_reader *fr, const uint8_t **payload, size_t *plen,
		      char *err, size_t errlen)
{
	size_t avail = fr->len - fr->off;
	*payload = NULL;
	*plen = 0;
	if (avail < FRAME_HEADER)
		return 0;
	uint32_t n = frame_header_get(fr->buf + fr->off);
	if (n == 0 || n > FRAME_MAX) {
		if (err && errlen)
			snprintf(err, errlen, "frame header: length %u %s "
				 "(must be 1..%u)", n,
				 n == 0 ? "is empty" : "exceeds FRAME_MAX",
				 FRAME_MAX);
		return -1;
	}
	if (avail - FRAME_HEADER < n)
		return 0;
	*payload = fr->buf + fr->off + FRAME_HEADER;
	*plen = n;
	fr->off += FRAME_HEADER + (size_t)n;
	return 1;
}
