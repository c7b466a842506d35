/*
 * harness.h — process-level test helpers: start real shard processes on
 * 127.0.0.1 (the binary named by $SHARDLITE), kill them with -9 or TERM, and
 * talk to them with the blocking wire client.  A test only ever signals the
 * pids it started.
 */
#ifndef SHARDLITE_HARNESS_H
#define SHARDLITE_HARNESS_H

#include <stdint.h>
#include <sys/types.h>

#include "txn/client.h"

typedef struct {
	pid_t pid;
	int id;
	int port;
	char dir[512];       /* data directory */
	char log[600];
	const char *extra[8];  /* extra command-line arguments, NULL-terminated */
} th_shard;

/* A fresh temporary directory (removed by th_cleanup). */
const char *th_tmpdir(void);
void th_cleanup(void);
int th_free_port(void);
/* A base port P with P..P+n-1 free on 127.0.0.1, below the ephemeral range
 * (where outgoing connections' local ports would collide). */
int th_free_port_range(int n);

/* Start (or restart with the same port and data) and wait until it answers a
 * ping.  0 or -1. */
int th_shard_start(th_shard *s);
void th_shard_kill9(th_shard *s);
/* SIGTERM and wait; returns the exit status, or -1. */
int th_shard_term(th_shard *s);
/* Is the process still running? */
int th_shard_alive(th_shard *s);

wire_client *th_connect(const th_shard *s);

/* Run one request; returns 0 and fills *resp, or -1 on transport errors. */
int th_call(wire_client *c, wire_op op, uint64_t txn, uint64_t ts, const char *sql, wire_response *resp);
/* Exec returning the first column of the first row as an integer, or
 * INT64_MIN on error / no rows. */
int64_t th_int(wire_client *c, uint64_t txn, const char *sql);
/* Exec expecting success; returns status (WIRE_OK...) or -1. */
int th_status(wire_client *c, wire_op op, uint64_t txn, uint64_t ts, const char *sql);
/* SQLSTATE of the last error th_* saw ("" if none). */
const char *th_last_sqlstate(void);
const char *th_last_message(void);

void th_sleep_ms(int ms);

#endif
