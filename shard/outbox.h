/*
 * outbox.h — a shard connection's outgoing byte stream, writable from any
 * thread.
 *
 * The thread that finished a request (the writer, a reader or the loop)
 * writes its answer straight to the socket, so answering costs no wake-up
 * of the loop thread.  Only when the socket does not take everything at
 * once (or a write of the loop's is still in flight) are the bytes queued,
 * and the loop thread writes them with libuv once it is kicked (one
 * uv_async per server, the hub).  Bytes leave in the order outbox_send was
 * called.
 *
 *   outbox_hub_init    loop thread, once per server
 *   outbox_new         loop thread, per accepted connection (one reference)
 *   outbox_send        any thread
 *   outbox_ref/unref   any thread: the connection and each request in
 *                      flight hold one; the last unref frees it
 *   outbox_close       loop thread, before uv_close of the stream: later
 *                      sends are dropped (their connection is gone)
 */
#ifndef SHARDLITE_OUTBOX_H
#define SHARDLITE_OUTBOX_H

#include <pthread.h>
#include <stddef.h>
#include <uv.h>

typedef struct outbox outbox;

typedef struct {
	uv_async_t kick;          /* wakes the loop: some outbox has queued bytes */
	pthread_mutex_t mu;
	outbox *queued;           /* outboxes waiting for the loop (each holds a ref) */
} outbox_hub;

int outbox_hub_init(outbox_hub *hub, uv_loop_t *loop);
/* Loop thread, when the server stops: closes the kick handle (the hub's
 * memory must outlive the loop run). */
void outbox_hub_close(outbox_hub *hub);

/* stream: an accepted, reading uv_tcp_t or uv_pipe_t.  NULL: out of memory
 * or no descriptor. */
outbox *outbox_new(outbox_hub *hub, uv_stream_t *stream);
void outbox_ref(outbox *ob);
void outbox_unref(outbox *ob);
/* Writes the n buffers, in order, after everything sent before.  0, or -1
 * if the connection is closed or broken (nothing is written; the reading
 * side sees the error and closes it). */
int outbox_send(outbox *ob, const uv_buf_t *bufs, size_t n);
void outbox_close(outbox *ob);

#endif
