/*
 * pgwire.h — PostgreSQL frontend/backend protocol v3 codec for the router.
 *
 * A pure codec: no sockets, no SQL.  The router feeds the bytes it reads
 * from a client into a pgw_reader, which yields whole frontend messages;
 * pgw_decode*() turns a message into a struct of zero-copy pointers into
 * the message body; pgw_put_*() appends backend messages to a pgw_buf that
 * the router writes to the socket.
 *
 * Two phases (see pgwire.c for the byte layouts):
 *
 *   startup phase   Int32 length (counts itself) + Int32 code + rest.
 *                   code 80877103 SSLRequest, 80877104 GSSENCRequest,
 *                   80877102 CancelRequest, otherwise a protocol version
 *                   (196608 = 3.0) and a StartupMessage.
 *   normal phase    Byte1 type + Int32 length (counts itself, not the type
 *                   byte) + body.
 *
 * The reader starts in the startup phase and moves to the normal phase by
 * itself after yielding any startup-phase packet other than SSLRequest or
 * GSSENCRequest (after those the client sends another startup packet once
 * it has read our single-byte 'N' answer).
 *
 * Hard limits (the reader fails the stream beyond them; there is no way to
 * resynchronise, so the caller sends the FATAL ErrorResponse built from the
 * pgw_err and closes the connection):
 *
 *   startup packet      8 <= length <= PGW_MAX_STARTUP (10,000, as in
 *                       PostgreSQL)
 *   Describe, Close, Execute, Sync, Flush, Terminate
 *                       4 <= length <= PGW_MAX_SMALL_MESSAGE (10,000): their
 *                       bodies are a name and a few integers at most
 *   any other message   4 <= length <= PGW_MAX_MESSAGE (16 MiB)
 *
 * A length below the minimum is SQLSTATE 08P01 (protocol_violation); a
 * length above the limit is 54000 (program_limit_exceeded).
 *
 * Ownership and lifetime: every pointer this module hands out (pgw_msg.body,
 * the strings and arrays inside decoded structs) points into the reader's
 * buffer and stays valid until the next pgw_reader_feed() or
 * pgw_reader_free() on that reader — so all messages yielded since the last
 * feed may be used together.  Decoders never allocate and never copy; the
 * strings they return are NUL-terminated in place.  Callers copy anything
 * they keep longer.
 *
 * Errors: every function that can fail on peer input fills a pgw_err (when
 * the pointer is not NULL) with a SQLSTATE and a one-line message naming
 * the message and the field, ready for pgw_put_err().
 */
#ifndef SHARDLITE_PGWIRE_H
#define SHARDLITE_PGWIRE_H

#include <stddef.h>
#include <stdint.h>

/* ---- limits and protocol constants ---------------------------------------- */

#define PGW_MAX_STARTUP 10000u              /* startup packet length word, max */
#define PGW_MAX_SMALL_MESSAGE 10000u        /* length word of small messages */
#define PGW_MAX_MESSAGE (16u * 1024u * 1024u) /* length word of any message */
#define PGW_MAX_STARTUP_PARAMS 64           /* name/value pairs kept */

#define PGW_PROTOCOL(major, minor) (((uint32_t)(major) << 16) | (uint32_t)(minor))
#define PGW_PROTOCOL_MAJOR(v) ((uint32_t)(v) >> 16)
#define PGW_PROTOCOL_MINOR(v) ((uint32_t)(v) & 0xffffu)
#define PGW_PROTOCOL_3_0 PGW_PROTOCOL(3, 0) /* 196608 */

#define PGW_CANCEL_REQUEST_CODE 80877102u   /* 1234.5678 */
#define PGW_SSL_REQUEST_CODE 80877103u      /* 1234.5679 */
#define PGW_GSSENC_REQUEST_CODE 80877104u   /* 1234.5680 */

/* SQLSTATEs this module reports. */
#define PGW_ERRCODE_PROTOCOL_VIOLATION "08P01"
#define PGW_ERRCODE_PROGRAM_LIMIT_EXCEEDED "54000"
#define PGW_ERRCODE_FEATURE_NOT_SUPPORTED "0A000"
#define PGW_ERRCODE_INVALID_AUTHORIZATION "28000"
#define PGW_ERRCODE_INVALID_PARAMETER_VALUE "22023"
#define PGW_ERRCODE_INVALID_TEXT_REPRESENTATION "22P02"
#define PGW_ERRCODE_CHARACTER_NOT_IN_REPERTOIRE "22021"
#define PGW_ERRCODE_OUT_OF_MEMORY "53200"

/* ---- type OIDs (pg_type.oid, fixed since PostgreSQL 7.x) ------------------- */

#define PGW_BOOLOID 16
#define PGW_BYTEAOID 17
#define PGW_CHAROID 18
#define PGW_NAMEOID 19
#define PGW_INT8OID 20
#define PGW_INT2OID 21
#define PGW_INT4OID 23
#define PGW_TEXTOID 25
#define PGW_OIDOID 26
#define PGW_JSONOID 114
#define PGW_FLOAT4OID 700
#define PGW_FLOAT8OID 701
#define PGW_UNKNOWNOID 705
#define PGW_BPCHAROID 1042
#define PGW_VARCHAROID 1043
#define PGW_DATEOID 1082
#define PGW_TIMEOID 1083
#define PGW_TIMESTAMPOID 1114
#define PGW_TIMESTAMPTZOID 1184
#define PGW_NUMERICOID 1700
#define PGW_UUIDOID 2950
#define PGW_JSONBOID 3802

/* typlen of a type for RowDescription: > 0 fixed width, -1 varlena,
 * -2 NUL-terminated (unknown).  Unlisted OIDs give -1. */
int16_t pgw_type_len(uint32_t oid);
/* SQL name of a type ("int4", "text", ...), or NULL for an unlisted OID. */
const char *pgw_type_name(uint32_t oid);

/* ---- errors ------------------------------------------------------------------ */

typedef struct {
	char sqlstate[6];  /* five characters + NUL */
	char msg[200];     /* one line, no trailing period */
} pgw_err;

/* ---- incremental frontend reader ---------------------------------------------- */

typedef enum { PGW_PHASE_STARTUP = 0, PGW_PHASE_NORMAL = 1 } pgw_phase;

/* One whole frontend message, as yielded by pgw_reader_next(). */
typedef struct {
	char type;            /* normal phase: the type byte; startup phase: 0 */
	uint32_t code;        /* startup phase: the Int32 after the length; else 0 */
	const uint8_t *body;  /* bytes after the length word (startup: the code
			       * is included, i.e. body[0..4) is the code) */
	size_t len;           /* bytes in body = length word - 4 */
} pgw_msg;

/* Invariant: buf[off..len) holds bytes fed but not yet consumed; once
 * failed is set every pgw_reader_next() repeats the stored error. */
typedef struct {
	uint8_t *buf;
	size_t len;
	size_t cap;
	size_t off;
	pgw_phase phase;
	int failed;
	pgw_err err;
} pgw_reader;

void pgw_reader_init(pgw_reader *r);      /* phase = PGW_PHASE_STARTUP */
void pgw_reader_free(pgw_reader *r);
/* For a caller that knows better (tests, a proxy joining mid-stream). */
void pgw_reader_set_phase(pgw_reader *r, pgw_phase phase);

/* Append n bytes read from the socket.  Invalidates every pointer handed
 * out for earlier messages.  Returns 0, or -1 when out of memory (the
 * reader is then failed with SQLSTATE 53200).  A failed reader discards
 * what it is fed and returns 0; pgw_reader_next() reports why it failed. */
int pgw_reader_feed(pgw_reader *r, const void *data, size_t n);

/* Take the next whole message.  Returns 1 with *m set, 0 when more bytes
 * are needed, -1 when the stream is bad (reason in *err; permanent).
 * Call it until it returns 0 after each feed. */
int pgw_reader_next(pgw_reader *r, pgw_msg *m, pgw_err *err);

/* Bytes fed but not yet returned as messages. */
size_t pgw_reader_buffered(const pgw_reader *r);

/* ---- decoded frontend messages ----------------------------------------------- */

typedef struct {
	const char *name;
	const char *value;
} pgw_param;

/* StartupMessage.  version is major<<16 | minor (major is always 3).
 * The named fields are NULL when the client did not send them (a later
 * duplicate wins); params holds every pair in wire order, including
 * "_pq_." protocol options.  user is always set (the protocol requires it). */
typedef struct {
	uint32_t version;
	const char *user;
	const char *database;
	const char *options;
	const char *application_name;
	const char *client_encoding;
	uint16_t nparams;
	pgw_param params[PGW_MAX_STARTUP_PARAMS];
} pgw_startup;

/* CancelRequest: the pid and key from our BackendKeyData. */
typedef struct {
	uint32_t pid;
	uint32_t key;
} pgw_cancel;

/* Query ('Q'): sql[0..len) then a NUL; sql has no NUL before len. */
typedef struct {
	const char *sql;
	size_t len;
} pgw_query;

/* Parse ('P').  name "" is the unnamed statement.  param_types points at
 * nparams big-endian Int32 OIDs (0 = unspecified); read them with
 * pgw_parse_param_type(). */
typedef struct {
	const char *name;
	const char *query;
	size_t query_len;
	uint16_t nparams;
	const uint8_t *param_types;
} pgw_parse;

uint32_t pgw_parse_param_type(const pgw_parse *p, uint16_t i); /* i < nparams */

/* A value: a Bind parameter or a DataRow column.  len -1 is SQL NULL and
 * then data is NULL; otherwise data[0..len) (not NUL-terminated). */
typedef struct {
	const uint8_t *data;
	int32_t len;
} pgw_value;

/* Bind ('B').  Validated on decode: nformats is 0, 1 or nparams and each
 * format code is 0 (text) or 1 (binary); every value length is -1 or fits;
 * each result format code is 0 or 1.  Read with the accessors below. */
typedef struct {
	const char *portal;
	const char *statement;
	uint16_t nformats;
	const uint8_t *formats;         /* nformats big-endian Int16 */
	uint16_t nparams;
	const uint8_t *values;          /* nparams (Int32 length, bytes) */
	uint16_t nresult_formats;
	const uint8_t *result_formats;  /* nresult_formats big-endian Int16 */
} pgw_bind;

/* Format of parameter i (< nparams): 0 text or 1 binary, applying the
 * 0 / 1 / n rule. */
int pgw_bind_param_format(const pgw_bind *b, uint16_t i);
/* Format of result column col: 0 or 1, or -1 when nresult_formats is
 * neither 0, 1 nor greater than col.  The caller checks
 * pgw_bind_result_formats_fit() once it knows the column count. */
int pgw_bind_result_format(const pgw_bind *b, uint16_t col);
int pgw_bind_result_formats_fit(const pgw_bind *b, uint16_t ncols, pgw_err *err);

/* Walk the parameter values in order. */
typedef struct {
	const uint8_t *pos;
	uint16_t left;
} pgw_bind_iter;

void pgw_bind_iter_init(const pgw_bind *b, pgw_bind_iter *it);
int pgw_bind_iter_next(pgw_bind_iter *it, pgw_value *v); /* 1 value, 0 end */

/* Describe ('D') and Close ('C'): kind 'S' statement or 'P' portal. */
typedef struct {
	char kind;
	const char *name;
} pgw_target;

/* Execute ('E'): max_rows <= 0 means no limit. */
typedef struct {
	const char *portal;
	int32_t max_rows;
} pgw_execute;

/* Each decoder validates the whole body: strings NUL-terminated inside it,
 * counts that fit, no trailing bytes.  0 on success, -1 with *err set.
 * The startup-phase decoders take the body including the code word. */
int pgw_decode_startup(const uint8_t *body, size_t len, pgw_startup *out, pgw_err *err);
int pgw_decode_cancel(const uint8_t *body, size_t len, pgw_cancel *out, pgw_err *err);
int pgw_decode_query(const uint8_t *body, size_t len, pgw_query *out, pgw_err *err);
int pgw_decode_parse(const uint8_t *body, size_t len, pgw_parse *out, pgw_err *err);
int pgw_decode_bind(const uint8_t *body, size_t len, pgw_bind *out, pgw_err *err);
int pgw_decode_describe(const uint8_t *body, size_t len, pgw_target *out, pgw_err *err);
int pgw_decode_execute(const uint8_t *body, size_t len, pgw_execute *out, pgw_err *err);
int pgw_decode_close(const uint8_t *body, size_t len, pgw_target *out, pgw_err *err);
/* Sync, Flush, Terminate: the body must be empty; name is for the error. */
int pgw_decode_empty(const uint8_t *body, size_t len, const char *name, pgw_err *err);

typedef enum {
	PGW_F_SSL_REQUEST,
	PGW_F_GSSENC_REQUEST,
	PGW_F_CANCEL,
	PGW_F_STARTUP,
	PGW_F_QUERY,
	PGW_F_PARSE,
	PGW_F_BIND,
	PGW_F_DESCRIBE,
	PGW_F_EXECUTE,
	PGW_F_CLOSE,
	PGW_F_SYNC,
	PGW_F_FLUSH,
	PGW_F_TERMINATE,
	PGW_F_UNSUPPORTED  /* set with a -1 return: type byte not handled */
} pgw_fkind;

typedef struct {
	pgw_fkind kind;
	union {
		pgw_startup startup;
		pgw_cancel cancel;
		pgw_query query;
		pgw_parse parse;
		pgw_bind bind;
		pgw_target describe;
		pgw_execute execute;
		pgw_target close;
	} u;
} pgw_frontend;

/* Dispatch on m->type (normal phase) or m->code (startup phase) and decode.
 * Any other type byte — CopyData/CopyDone/CopyFail outside COPY,
 * FunctionCall, PasswordMessage, or an unknown byte — returns -1 with
 * kind PGW_F_UNSUPPORTED and err "unsupported message type 'd' (CopyData)"
 * (08P01); an unsupported protocol version returns -1 with 0A000. */
int pgw_decode(const pgw_msg *m, pgw_frontend *out, pgw_err *err);

/* Name of a frontend message type byte ("Query", "CopyData", ...) or NULL. */
const char *pgw_frontend_type_name(char type);

/* ---- backend message builder -------------------------------------------------- */

/* A growable output buffer.  data[0..len) is ready to send.  On out of
 * memory (or a message over 2^31-1 bytes) failed becomes 1, every later
 * put is a no-op and the contents must not be sent; check pgw_buf_failed()
 * once after building.  pgw_buf_reset() empties it and clears failed; it
 * may release a large allocation, so data is not valid across it.
 * A put may move data (realloc): do not keep pointers into it. */
typedef struct {
	uint8_t *data;
	size_t len;
	size_t cap;
	int failed;
} pgw_buf;

void pgw_buf_init(pgw_buf *b);
void pgw_buf_free(pgw_buf *b);
void pgw_buf_reset(pgw_buf *b);
int pgw_buf_failed(const pgw_buf *b);

/* Raw appends, and an open/close pair for messages built piecewise (for
 * example a DataRow written column by column):
 *     size_t at = pgw_msg_begin(b, 'D'); pgw_buf_put_int16(b, n); ...;
 *     pgw_msg_end(b, at);
 * pgw_msg_end() patches the length word. */
void pgw_buf_put_byte(pgw_buf *b, uint8_t v);
void pgw_buf_put_int16(pgw_buf *b, int16_t v);
void pgw_buf_put_int32(pgw_buf *b, int32_t v);
void pgw_buf_put_bytes(pgw_buf *b, const void *p, size_t n);
void pgw_buf_put_str(pgw_buf *b, const char *s);  /* with its NUL */
size_t pgw_msg_begin(pgw_buf *b, char type);
void pgw_msg_end(pgw_buf *b, size_t at);

/* RowDescription field.  The table OID and column number are always sent
 * as 0 (the router's results are not tied to one table).  typmod is -1
 * when the type has no modifier; format 0 text, 1 binary. */
typedef struct {
	const char *name;
	uint32_t type_oid;
	int16_t typlen;
	int32_t typmod;
	int16_t format;
} pgw_field;

/* A text-format field of the given type: typlen from pgw_type_len(),
 * typmod -1. */
pgw_field pgw_field_of(const char *name, uint32_t type_oid);

/* ErrorResponse / NoticeResponse.  severity is sent as both S and V
 * ("ERROR", "FATAL", "WARNING", "NOTICE", ...); sqlstate is 5 characters;
 * detail and hint may be NULL; position, when > 0, is a 1-based character
 * (not byte) index into the query string, see pgw_char_position(). */
typedef struct {
	const char *severity;
	const char *sqlstate;
	const char *message;
	const char *detail;
	const char *hint;
	uint32_t position;
} pgw_notice;

void pgw_put_auth_ok(pgw_buf *b);                                        /* R */
void pgw_put_parameter_status(pgw_buf *b, const char *name, const char *value); /* S */
void pgw_put_backend_key_data(pgw_buf *b, uint32_t pid, uint32_t key);   /* K */
void pgw_put_ready_for_query(pgw_buf *b, char status); /* Z: 'I', 'T' or 'E' */
void pgw_put_row_description(pgw_buf *b, const pgw_field *fields, uint16_t n); /* T */
void pgw_put_data_row(pgw_buf *b, const pgw_value *values, uint16_t n);  /* D */
void pgw_put_command_complete(pgw_buf *b, const char *tag);             /* C */
void pgw_put_empty_query_response(pgw_buf *b);                          /* I */
void pgw_put_error_response(pgw_buf *b, const pgw_notice *e);           /* E */
void pgw_put_notice_response(pgw_buf *b, const pgw_notice *n);          /* N */
/* ErrorResponse from a pgw_err, e.g. severity "FATAL" before closing. */
void pgw_put_err(pgw_buf *b, const char *severity, const pgw_err *err);
void pgw_put_parse_complete(pgw_buf *b);                                /* 1 */
void pgw_put_bind_complete(pgw_buf *b);                                 /* 2 */
void pgw_put_close_complete(pgw_buf *b);                                /* 3 */
void pgw_put_no_data(pgw_buf *b);                                       /* n */
void pgw_put_parameter_description(pgw_buf *b, const uint32_t *oids, uint16_t n); /* t */
void pgw_put_portal_suspended(pgw_buf *b);                              /* s */
/* NegotiateProtocolVersion ('v'): the version we speak (e.g. 3.0) and the
 * "_pq_." options we did not recognise. */
void pgw_put_negotiate_protocol_version(pgw_buf *b, uint32_t version,
					const char *const *unrecognized, uint16_t n);
/* The single byte 'N' refusing an SSLRequest or GSSENCRequest. */
void pgw_put_encryption_refused(pgw_buf *b);

/* ---- text helpers ---------------------------------------------------------------- */

/* bytea text output, hex format: "\x" then two lowercase hex digits per
 * byte.  pgw_bytea_text_len(n) = 2 + 2n characters; pgw_bytea_to_text()
 * writes exactly that many (no NUL). */
size_t pgw_bytea_text_len(size_t n);
void pgw_bytea_to_text(const uint8_t *src, size_t n, char *dst);

/* bytea text input, as PostgreSQL accepts it: hex format "\x" followed by
 * pairs of hex digits (either case) with optional whitespace between pairs,
 * or escape format (bytes as themselves, "\\" for a backslash, "\ooo"
 * octal).  dst must hold len bytes (the output is never longer).  Returns
 * the decoded length, or -1 with *err (22023 / 22P02). */
long pgw_bytea_from_text(const char *text, size_t len, uint8_t *dst, pgw_err *err);

/* ErrorResponse position for byte offset off into the query s[0..len):
 * the 1-based index of the UTF-8 character containing byte off, i.e. one
 * more than the number of characters wholly before it.  off >= len gives
 * one past the last character ("at end of input"). */
uint32_t pgw_char_position(const char *s, size_t len, size_t off);

/* 0 when s[0..len) is well-formed UTF-8 with no NUL, else -1 with *err
 * (22021) naming the offending bytes like PostgreSQL does. */
int pgw_utf8_check(const char *s, size_t len, pgw_err *err);

#endif
