/*
 * wire.h — the router<->shard message vocabulary and its codec.
 *
 * Contract:
 *  - wire_encode_*() build one FlatBuffers Message (schema txn/wire.fbs,
 *    file identifier "SLW1") into a malloc'd buffer the caller frees.
 *  - wire_decode() first runs the verifier over untrusted bytes; nothing is
 *    read from a buffer that failed verification.  Decoded strings and blobs
 *    point into the buffer (zero copy): the buffer must outlive the message.
 *    Arrays (params, columns, cells, buckets) are malloc'd and released by
 *    wire_message_free().
 *  - Strings in a verified buffer are NUL-terminated; len excludes the NUL.
 *  - A response's rows all have exactly ncols values, or decoding fails.
 *  - A decoded TEXT/BLOB value's p is never NULL ("" when empty or absent);
 *    on encode, a NULL types[i] or columns[i] is sent as "".
 *  - Limits: a Message is at most FRAME_MAX bytes (txn/frame.h); the
 *    verifier allows at most len/4 table visits and 64 levels of nesting
 *    (txn/fb.h), so work and decoded memory stay linear in len.
 *  - Errors name the field path and buffer offset, e.g.
 *    "Message.request.sql: string not NUL-terminated at offset 1234".
 */
#ifndef SHARDLITE_WIRE_H
#define SHARDLITE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
	WIRE_OP_PING = 0,
	WIRE_OP_EXEC = 1,
	WIRE_OP_BEGIN = 2,
	WIRE_OP_PREPARE = 3,
	WIRE_OP_COMMIT_PREPARED = 4,
	WIRE_OP_ROLLBACK_PREPARED = 5,
	WIRE_OP_COMMIT = 6,
	WIRE_OP_ROLLBACK = 7,
	WIRE_OP_STATUS = 8,
	WIRE_OP_ASSIGN = 9,
	WIRE_OP_SAGA_STEP = 10,
	WIRE_OP_SAGA_UNDO = 11,
	WIRE_OP_SAGA_END = 12,
	WIRE_OP_RESOLVE = 13,
	WIRE_OP_FORGET = 14,
} wire_op;
#define WIRE_OP_MAX WIRE_OP_FORGET

/* SagaUndo modes (wire.fbs) */
enum { WIRE_UNDO_NORMAL = 0, WIRE_UNDO_OVERWRITE = 1, WIRE_UNDO_ACCEPT = 2 };

typedef enum {
	WIRE_NULL = 0,
	WIRE_INT = 1,
	WIRE_REAL = 2,
	WIRE_TEXT = 3,
	WIRE_BLOB = 4,
} wire_type;

typedef struct {
	wire_type type;
	int64_t i;         /* WIRE_INT */
	double r;          /* WIRE_REAL */
	const void *p;     /* WIRE_TEXT (NUL-terminated) or WIRE_BLOB bytes */
	uint32_t len;      /* bytes at p, excluding any NUL */
} wire_value;

typedef struct {
	uint64_t id;
	wire_op op;
	uint64_t txn;
	uint64_t ts;
	uint64_t epoch;
	bool readonly;
	const char *sql;   /* NULL when absent */
	uint32_t sql_len;
	wire_value *params;
	uint32_t nparams;
	uint32_t *buckets;
	uint32_t nbuckets;
	bool begin;        /* Exec opens txn on this shard (see wire.fbs) */
	uint32_t step;     /* saga step number */
	const char *comp;  /* SagaStep: explicit compensation SQL, NULL if absent */
	uint32_t comp_len;
	wire_value *comp_params;
	uint32_t ncomp_params;
	uint8_t mode;      /* SagaUndo: WIRE_UNDO_* */
	bool snapshot;     /* readonly Exec: answer WIRE_STARTED first (wire.fbs) */
	bool unlocked;     /* autocommit Exec: no row-lock check (wire.fbs) */
	uint64_t *ended;   /* SagaStep: committed sagas to end first; Forget: txns */
	uint32_t nended;
	uint32_t decider;  /* Prepare/Commit: the deciding shard + 1, 0 none (wire.fbs) */
	bool early;        /* Prepare: an early prepare (wire.fbs) */
} wire_request;

typedef enum {
	WIRE_OK = 0,
	WIRE_ERROR = 1,
	WIRE_NOT_FOUND = 2,
	WIRE_READ_ONLY = 3,
	WIRE_STARTED = 4,  /* interim answer of a snapshot request */
	WIRE_WAITING = 5,  /* interim: waits for early-prepared txn `changes` */
} wire_status;
#define WIRE_STATUS_MAX WIRE_WAITING

typedef struct {
	uint64_t id;
	wire_status status;
	const char *sqlstate;  /* NULL when absent */
	const char *message;   /* NULL when absent */
	uint32_t ncols;
	const char **columns;  /* ncols names, or NULL when ncols == 0 */
	const char **types;    /* ncols declared types ("" unknown), may be NULL */
	uint32_t nrows;
	wire_value *cells;     /* nrows * ncols, row-major */
	int64_t changes;
	bool waited;           /* an Exec of a txn that waited for a row lock */
} wire_response;

typedef enum { WIRE_MSG_REQUEST = 1, WIRE_MSG_RESPONSE = 2 } wire_msg_kind;

typedef struct {
	wire_msg_kind kind;
	wire_request req;      /* valid when kind == WIRE_MSG_REQUEST */
	wire_response resp;    /* valid when kind == WIRE_MSG_RESPONSE */
} wire_message;

/* Build a Message holding only a request / only a response.
 * Returns 0, or -1 (out of memory, bigger than FRAME_MAX, or invalid input:
 * an op/status/value type out of range, a NULL pointer with a nonzero
 * length or count); *out is then NULL. */
int wire_encode_request(const wire_request *r, uint8_t **out, size_t *outlen);
int wire_encode_response(const wire_response *r, uint8_t **out, size_t *outlen);

/* Verify untrusted bytes against the schema: bounds, alignment, offsets,
 * vtables, NUL-terminated strings, nesting depth, required fields, enum
 * ranges.  Returns 0 or -1 with a reason in err. */
int wire_verify(const uint8_t *buf, size_t len, char *err, size_t errlen);

/* Verify, then decode.  Exactly one of request/response must be present.
 * Returns 0 or -1 with a reason in err (msg is then empty, nothing to free). */
int wire_decode(const uint8_t *buf, size_t len, wire_message *msg,
		char *err, size_t errlen);
void wire_message_free(wire_message *msg);

/* Same content: kind and every field; doubles compared by bits, TEXT/BLOB
 * and sql by length and bytes, C strings by strcmp, NULL only equal to
 * NULL.  For tests and fuzzers (decode(encode(m)) equals m). */
bool wire_message_equal(const wire_message *a, const wire_message *b);
/* Same type and value (doubles by bits, TEXT/BLOB by length and bytes). */
bool wire_value_equal(const wire_value *a, const wire_value *b);

/* Schema names ("Exec", "Text", "NotFound"); "Unknown" out of range. */
const char *wire_op_name(wire_op op);
const char *wire_type_name(wire_type t);
const char *wire_status_name(wire_status s);

#endif
