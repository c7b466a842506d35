/*
 * test_badframes.c — malformed frames from the network: random payloads,
 * lying lengths, oversize lengths, truncated and mutated messages.  Each
 * malformed frame must make the shard close that connection (and only that
 * one); the server must survive all of them (under ASan in the sanitizer
 * build) and keep serving a well-behaved client throughout.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tests/harness.h"
#include "tests/tap.h"
#include "txn/frame.h"

static th_shard S = {.id = 0};

/* Send bytes on a fresh connection; 1 if the server closed it, 0 if it
 * answered with a frame, -1 if it did neither within the timeout. */
static int verdict(const void *bytes, size_t len)
{
	wire_client *c = th_connect(&S);
	if (!c)
		return -1;
	wire_client_send_raw(c, bytes, len);
	struct pollfd p = {.fd = wire_client_fd(c), .events = POLLIN};
	int rc = -1;
	if (poll(&p, 1, 3000) == 1) {
		char buf[64];
		ssize_t n = recv(wire_client_fd(c), buf, sizeof buf, 0);
		rc = n > 0 ? 0 : 1;
	}
	wire_client_close(c);
	return rc;
}

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

int main(void)
{
	if (th_shard_start(&S) != 0)
		bail("cannot start a shard");
	wire_client *good = th_connect(&S);
	ok(th_status(good, WIRE_OP_EXEC, 0, 0, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)") == WIRE_OK,
	   "a well-behaved client works before");

	/* a valid request to derive malformed ones from */
	wire_value params[2] = {{.type = WIRE_INT, .i = 7}, {.type = WIRE_TEXT, .p = "seven", .len = 5}};
	wire_request rq = {.id = 9, .op = WIRE_OP_EXEC, .txn = 0, .sql = "INSERT INTO t VALUES (?1, ?2)",
			   .params = params, .nparams = 2};
	rq.sql_len = (uint32_t)strlen(rq.sql);
	uint8_t *valid;
	size_t vlen;
	if (wire_encode_request(&rq, &valid, &vlen) != 0)
		bail("cannot encode");
	uint8_t *frame = malloc(vlen + FRAME_HEADER + 4096);

	int total = 0, rejected = 0, silent = 0;
	/* 1. random payloads with honest lengths */
	for (int i = 0; i < 600; i++) {
		uint32_t n = 1 + rnd() % 300;
		frame_header_put(frame, n);
		for (uint32_t j = 0; j < n; j++)
			frame[FRAME_HEADER + j] = (uint8_t)rnd();
		int v = verdict(frame, FRAME_HEADER + n);
		total++;
		rejected += v == 1;
		silent += v == -1;
	}
	ok(rejected == total, "random payloads: %d/%d rejected (%d unanswered)", rejected, total, silent);

	/* 2. lying lengths: a valid message cut short but declared complete.
	 *    A cut that only drops trailing padding leaves a valid message: the
	 *    local verifier says which, and the shard must agree. */
	int t2 = 0, r2 = 0, still_valid = 0;
	for (size_t cut = 1; cut < vlen; cut++) {
		char err[128];
		int valid_cut = wire_verify(valid, cut, err, sizeof err) == 0;
		frame_header_put(frame, (uint32_t)cut);
		memcpy(frame + FRAME_HEADER, valid, cut);
		t2++;
		still_valid += valid_cut;
		r2 += verdict(frame, FRAME_HEADER + cut) == (valid_cut ? 0 : 1);
	}
	ok(r2 == t2 && still_valid < t2 / 10,
	   "truncated messages with lying lengths: %d/%d as expected (%d still valid)", r2, t2, still_valid);

	/* 3. zero and oversize lengths: rejected from the header alone */
	uint32_t lens[] = {0, FRAME_MAX + 1, 0x7fffffff, 0xffffffff};
	int t3 = 0, r3 = 0;
	for (int rep = 0; rep < 50; rep++)
		for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
			frame_header_put(frame, lens[i]);
			memcpy(frame + FRAME_HEADER, valid, 16);
			t3++;
			r3 += verdict(frame, FRAME_HEADER + 16) == 1;
		}
	ok(r3 == t3, "zero and oversize lengths: %d/%d rejected", r3, t3);

	/* 4. mutated valid messages: each is rejected or, if it still verifies,
	 *    answered; never a crash or a hang */
	int t4 = 0, handled = 0, rej4 = 0;
	for (int i = 0; i < 400; i++) {
		memcpy(frame + FRAME_HEADER, valid, vlen);
		int flips = 1 + (int)(rnd() % 4);
		for (int f = 0; f < flips; f++)
			frame[FRAME_HEADER + rnd() % vlen] ^= (uint8_t)(1u << (rnd() % 8));
		frame_header_put(frame, (uint32_t)vlen);
		int v = verdict(frame, FRAME_HEADER + vlen);
		t4++;
		handled += v != -1;
		rej4 += v == 1;
	}
	ok(handled == t4, "mutated messages: %d/%d handled (%d rejected, the rest still valid)", handled, t4, rej4);
	ok(total + t2 + t3 + t4 >= 1000, "%d malformed frames sent in all", total + t2 + t3 + t4);

	/* 5. a response sent to a shard is a protocol violation too */
	wire_response resp = {.id = 1, .status = WIRE_OK};
	uint8_t *rb;
	size_t rlen;
	wire_encode_response(&resp, &rb, &rlen);
	frame_header_put(frame, (uint32_t)rlen);
	memcpy(frame + FRAME_HEADER, rb, rlen);
	ok(verdict(frame, FRAME_HEADER + rlen) == 1, "a Response sent to a shard is rejected");
	free(rb);

	ok(th_shard_alive(&S), "the shard is still running");
	ok(th_status(good, WIRE_OP_EXEC, 0, 0, "INSERT INTO t VALUES (1, 'one')") == WIRE_OK &&
		   th_int(good, 0, "SELECT count(*) FROM t WHERE k = 1") == 1,
	   "the connection opened before all this still works");
	wire_client *fresh = th_connect(&S);
	ok(fresh && th_int(fresh, 0, "SELECT k FROM t WHERE v = 'one'") == 1, "a new client is served");
	wire_client_close(fresh);
	wire_client_close(good);
	free(frame);
	free(valid);
	ok(th_shard_term(&S) == 0, "clean shutdown");
	th_cleanup();
	return plan_done();
}
