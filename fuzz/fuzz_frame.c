/*
 * fuzz_frame.c — libFuzzer target for the frame reader (txn/frame.c) and the
 * wire decoder behind it.
 *
 * Input: byte 0 seeds the chunk sizes, the rest is the stream.  The stream
 * is fed to a frame_reader in chunks of 0..65 bytes and every
 * frame it yields goes through wire_decode().  Oracle: a direct walk over
 * the whole stream (header, payload, header, ...) must produce the same
 * frames in the same order, and the reader must fail exactly when the walk
 * meets a length of 0 or above FRAME_MAX.  Any difference aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txn/frame.h"
#include "txn/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_frame: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t seed = data[0] * 2654435761u + 1;
	const uint8_t *s = data + 1;
	size_t n = size - 1, fed = 0, walk = 0;
	bool bad = false;
	frame_reader fr;
	char err[256];

	frame_reader_init(&fr);
	while (!bad) {
		int rc;
		const uint8_t *pl;
		size_t plen;
		for (;;) {
			err[0] = 0;
			rc = frame_reader_next(&fr, &pl, &plen, err, sizeof(err));
			if (rc != 1)
				break;
			/* Oracle: the next frame of the direct walk. */
			if (n - walk < FRAME_HEADER)
				fail("frame where the walk has no header");
			uint32_t want = frame_header_get(s + walk);
			if (want == 0 || want > FRAME_MAX || plen != want ||
			    n - walk - FRAME_HEADER < want ||
			    memcmp(pl, s + walk + FRAME_HEADER, want) != 0)
				fail("frame differs from the direct walk");
			walk += FRAME_HEADER + want;
			if (walk > fed)
				fail("frame made of bytes not fed yet");
			wire_message m;
			char werr[256];
			if (wire_decode(pl, plen, &m, werr, sizeof(werr)) == 0)
				wire_message_free(&m);
		}
		if (rc < 0) {
			if (!err[0] || n - walk < FRAME_HEADER)
				fail("error without a reason or a header");
			uint32_t l = frame_header_get(s + walk);
			if (l != 0 && l <= FRAME_MAX)
				fail("error where the walk sees a good header");
			bad = true;
			break;
		}
		if (fed == n)
			break;
		seed = seed * 1103515245u + 12345u;
		size_t chunk = (seed >> 16) % 66; /* 0..65 */
		if (chunk > n - fed)
			chunk = n - fed;
		if (frame_reader_feed(&fr, s + fed, chunk) < 0)
			fail("out of memory");
		fed += chunk;
	}
	/* Whatever is left must be an incomplete frame or a bad header. */
	if (!bad && n - walk >= FRAME_HEADER) {
		uint32_t l = frame_header_get(s + walk);
		if (l == 0 || l > FRAME_MAX || n - walk - FRAME_HEADER >= l)
			fail("reader missed a frame or a bad header");
	}
	frame_reader_free(&fr);
	return 0;
}
