/*
 * frame.h — length-prefixed frames on a byte stream.
 *
 * On the wire a frame is:
 *
 *   offset  size  field
 *   0       4     payload length N, u32 little-endian, 1 <= N <= FRAME_MAX
 *   4       N     payload: one wire Message (txn/wire.h)
 *
 * A length of 0 or above FRAME_MAX poisons the stream: the reader reports
 * an error and the connection must be closed (there is no way to resync).
 * Invariant of frame_reader: buf[0..len) holds bytes fed but not yet
 * consumed; a frame returned by frame_reader_next() stays valid until the
 * next call on that reader.
 */
#ifndef SHARDLITE_FRAME_H
#define SHARDLITE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER 4u
#define FRAME_MAX (16u * 1024u * 1024u)

typedef struct {
	uint8_t *buf;
	size_t len;   /* bytes held */
	size_t cap;
	size_t off;   /* start of unconsumed bytes */
} frame_reader;

void frame_reader_init(frame_reader *fr);
void frame_reader_free(frame_reader *fr);

/* Append n bytes read from the stream.  Returns 0, or -1 on out of memory. */
int frame_reader_feed(frame_reader *fr, const void *data, size_t n);

/* Returns 1 with *payload and *plen set when a whole frame is available, 0 when
 * more bytes are needed, -1 when the stream is bad (reason in err). */
int frame_reader_next(frame_reader *fr, const uint8_t **payload, size_t *plen,
		      char *err, size_t errlen);

void frame_header_put(uint8_t hdr[FRAME_HEADER], uint32_t len);
uint32_t frame_header_get(const uint8_t hdr[FRAME_HEADER]);

#endif
