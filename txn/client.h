/*
 * client.h — a blocking wire-protocol client: one connection, requests
 * out, responses in.  For tests, benchmarks and command-line tools; the
 * router uses the event loop instead.
 *
 * A response returned by wire_client_recv()/call() points into the client's
 * buffers and stays valid until the next recv/call on the same client.
 */
#ifndef SHARDLITE_CLIENT_H
#define SHARDLITE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "txn/wire.h"

typedef struct wire_client wire_client;

wire_client *wire_client_connect(const char *host, int port, char *err, size_t errlen);
/* The same, through the shard's same-machine socket (txn/localsock.h). */
wire_client *wire_client_connect_local(const char *host, int port, char *err, size_t errlen);
void wire_client_close(wire_client *c);
int wire_client_fd(const wire_client *c);

/* Send one request; r->id 0 gets the next id.  0 or -1. */
int wire_client_send(wire_client *c, wire_request *r);
/* Send raw bytes (tests of malformed input).  0 or -1. */
int wire_client_send_raw(wire_client *c, const void *buf, size_t len);
/* Next response, blocking up to timeout_ms (-1: forever).  0, or -1 with err
 * ("timeout", "connection closed", a decode error...). */
int wire_client_recv(wire_client *c, wire_response *resp, int timeout_ms, char *err, size_t errlen);
/* Send r and wait for the response with its id. */
int wire_client_call(wire_client *c, wire_request *r, wire_response *resp, char *err, size_t errlen);

/* Parse "host:port".  0 or -1. */
int wire_parse_addr(const char *addr, char *host, size_t hostlen, int *port);

#endif
