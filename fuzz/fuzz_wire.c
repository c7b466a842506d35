/*
 * fuzz_wire.c — libFuzzer target for the wire codec (txn/fb.c, txn/wire.c).
 *
 * Property: wire_decode() on any bytes either fails with a non-empty reason
 * or yields a message m such that encode(m) succeeds, decode(encode(m))
 * equals m, and encoding is deterministic (encode(decode(encode(m))) is the
 * same bytes).  The input buffer is exactly sized, so AddressSanitizer
 * catches any read past it.  Any violation aborts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. txn/fb.c \
 *     txn/wire.c txn/frame.c fuzz/fuzz_wire.c -o fuzz_wire
 *   ./fuzz_wire -max_total_time=60 fuzz/corpus/wire
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txn/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int encode(const wire_message *m, uint8_t **out, size_t *len)
{
	return m->kind == WIRE_MSG_REQUEST ? wire_encode_request(&m->req, out, len)
					   : wire_encode_response(&m->resp, out, len);
}

static void fail(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_wire: %s%s%s\n", what, err ? ": " : "", err ? err : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	wire_message m, m2;
	uint8_t *buf, *buf2;
	size_t len, len2;

	err[0] = 0;
	if (wire_decode(data, size, &m, err, sizeof(err)) < 0) {
		if (!err[0])
			fail("rejected without a reason", NULL);
		if (m.kind != 0)
			fail("rejected but message not empty", NULL);
		return 0;
	}
	if (encode(&m, &buf, &len) < 0)
		fail("decoded message does not re-encode", NULL);
	if (wire_decode(buf, len, &m2, err, sizeof(err)) < 0)
		fail("re-encoded message does not decode", err);
	if (!wire_message_equal(&m, &m2))
		fail("decode(encode(m)) != m", NULL);
	if (encode(&m2, &buf2, &len2) < 0)
		fail("second encode failed", NULL);
	if (len != len2 || memcmp(buf, buf2, len) != 0)
		fail("encoding is not deterministic", NULL);
	free(buf2);
	wire_message_free(&m2);
	free(buf);
	wire_message_free(&m);
	return 0;
}
