/*
 * wire_tool — the C side of the codec cross-check in tests/wire_flatc.sh.
 *
 *   wire_tool decode IN.bin            print the canonical dump of a Message
 *                                      (or "error: <reason>", exit 1)
 *   wire_tool encode IN.dump OUT.bin   build a Message from a canonical dump
 *   wire_tool reencode IN.bin OUT.bin  decode, then encode again
 *
 * The dump is the description both ways, one item per line:
 *
 *   request                       | response
 *   id <u64>                      | id <u64>
 *   op <Op name>                  | status <Status name>
 *   txn <u64>                     | sqlstate <string>|null
 *   ts <u64>                      | message <string>|null
 *   epoch <u64>                   | changes <i64>
 *   readonly true|false           | column <string> <string>|null  (name, type)
 *   sql <string>|null             | row <value>...                 (ncols each)
 *   param <value>       (each)    |
 *   bucket <u32>        (each)    |
 *   step <u32>          (if not 0)|
 *   comp <string>       (if set)  |
 *   comp_param <value>  (each)    |
 *   mode <u8>           (if not 0)|
 *   snapshot true       (if set)  |
 *   unlocked true       (if set)  |
 *   ended <u64>         (each)    |
 *   decider <u32>       (if not 0)|
 *   early true          (if set)  | waited true                    (if set)
 *
 *   value:  null | int <i64> | real <double> | text <string> | blob <string>
 *   string: "..." where bytes outside printable ASCII, '"' and '\' are \xHH
 *   double: shortest %.{15,16,17}g that reads back to the same bits; inf,
 *           -inf, nan
 *
 * A column's type is null when the response has no `types` vector (then
 * every column's is).  Lines may come in any order in an encode input; the
 * dump prints them in the order above.  Invariant: decode(encode(dump)) ==
 * dump for every dump this tool prints.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txn/wire.h"

/* ---- dump ---- */

static void put_string(const void *p, size_t len)
{
	const unsigned char *s = p;
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
			putchar(s[i]);
		else
			printf("\\x%02x", s[i]);
	}
	putchar('"');
}

static void put_cstring(const char *s)
{
	if (s)
		put_string(s, strlen(s));
	else
		fputs("null", stdout);
}

static void put_double(double d)
{
	char buf[64];
	if (isnan(d)) {
		fputs("nan", stdout);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		double back = strtod(buf, NULL);
		if (memcmp(&back, &d, sizeof(d)) == 0)
			break;
	}
	fputs(buf, stdout);
}

static void put_value(const wire_value *v)
{
	switch (v->type) {
	case WIRE_NULL: fputs("null", stdout); break;
	case WIRE_INT: printf("int %" PRId64, v->i); break;
	case WIRE_REAL: fputs("real ", stdout); put_double(v->r); break;
	case WIRE_TEXT: fputs("text ", stdout); put_string(v->p, v->len); break;
	case WIRE_BLOB: fputs("blob ", stdout); put_string(v->p, v->len); break;
	default: printf("type%u", (unsigned)v->type); break;
	}
}

static void dump(const wire_message *m)
{
	if (m->kind == WIRE_MSG_REQUEST) {
		const wire_request *r = &m->req;
		printf("request\nid %" PRIu64 "\nop %s\ntxn %" PRIu64 "\nts %" PRIu64
		       "\nepoch %" PRIu64 "\nreadonly %s\nsql ",
		       r->id, wire_op_name(r->op), r->txn, r->ts, r->epoch,
		       r->readonly ? "true" : "false");
		if (r->sql)
			put_string(r->sql, r->sql_len);
		else
			fputs("null", stdout);
		putchar('\n');
		for (uint32_t i = 0; i < r->nparams; i++) {
			fputs("param ", stdout);
			put_value(&r->params[i]);
			putchar('\n');
		}
		for (uint32_t i = 0; i < r->nbuckets; i++)
			printf("bucket %" PRIu32 "\n", r->buckets[i]);
		if (r->step)
			printf("step %" PRIu32 "\n", r->step);
		if (r->comp) {
			fputs("comp ", stdout);
			put_string(r->comp, r->comp_len);
			putchar('\n');
		}
		for (uint32_t i = 0; i < r->ncomp_params; i++) {
			fputs("comp_param ", stdout);
			put_value(&r->comp_params[i]);
			putchar('\n');
		}
		if (r->mode)
			printf("mode %u\n", (unsigned)r->mode);
		if (r->snapshot)
			puts("snapshot true");
		if (r->unlocked)
			puts("unlocked true");
		for (uint32_t i = 0; i < r->nended; i++)
			printf("ended %" PRIu64 "\n", r->ended[i]);
		if (r->decider)
			printf("decider %" PRIu32 "\n", r->decider);
		if (r->early)
			puts("early true");
		return;
	}
	const wire_response *r = &m->resp;
	printf("response\nid %" PRIu64 "\nstatus %s\nsqlstate ", r->id,
	       wire_status_name(r->status));
	put_cstring(r->sqlstate);
	fputs("\nmessage ", stdout);
	put_cstring(r->message);
	printf("\nchanges %" PRId64 "\n", r->changes);
	if (r->waited)
		puts("waited true");
	for (uint32_t c = 0; c < r->ncols; c++) {
		fputs("column ", stdout);
		put_cstring(r->columns[c]);
		putchar(' ');
		put_cstring(r->types ? r->types[c] : NULL);
		putchar('\n');
	}
	for (uint32_t i = 0; i < r->nrows; i++) {
		fputs("row", stdout);
		for (uint32_t c = 0; c < r->ncols; c++) {
			putchar(' ');
			put_value(&r->cells[(size_t)i * r->ncols + c]);
		}
		putchar('\n');
	}
}

/* ---- parse ---- */

typedef struct {
	const char *file;
	int line;
	const char *p;      /* cursor in the current line */
	void **owned;       /* every allocation, freed at exit */
	size_t nowned, capowned;
} parser;

static void die(parser *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void die(parser *ps, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s:%d: ", ps->file, ps->line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *own(parser *ps, void *p)
{
	if (!p)
		die(ps, "out of memory");
	if (ps->nowned == ps->capowned) {
		ps->capowned = ps->capowned ? 2 * ps->capowned : 64;
		void **n = realloc(ps->owned, ps->capowned * sizeof(*n));
		if (!n)
			die(ps, "out of memory");
		ps->owned = n;
	}
	ps->owned[ps->nowned++] = p;
	return p;
}

/* Grow an owned array (replacing its slot in the owned list). */
static void *grow(parser *ps, void *arr, uint32_t n, size_t elem)
{
	if (n & (n - 1) && n)
		return arr; /* capacity is the next power of two */
	size_t cap = n ? 2 * (size_t)n : 1;
	void *g = realloc(arr, cap * elem);
	if (!g)
		die(ps, "out of memory");
	for (size_t i = 0; i < ps->nowned; i++)
		if (ps->owned[i] == arr && arr) {
			ps->owned[i] = g;
			return g;
		}
	return own(ps, g);
}

static void skip_space(parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t')
		ps->p++;
}

/* A bare word; returns a pointer to a static copy. */
static const char *word(parser *ps)
{
	static char w[128];
	size_t n = 0;
	skip_space(ps);
	while (*ps->p && *ps->p != ' ' && *ps->p != '\t' && *ps->p != '\n') {
		if (n + 1 >= sizeof(w))
			die(ps, "word too long");
		w[n++] = *ps->p++;
	}
	w[n] = 0;
	if (!n)
		die(ps, "missing item");
	return w;
}

static bool at_end(parser *ps)
{
	skip_space(ps);
	return *ps->p == 0 || *ps->p == '\n';
}

/* A quoted string (NUL-terminated copy, *len bytes), or NULL for null. */
static char *string(parser *ps, uint32_t *len)
{
	skip_space(ps);
	if (strncmp(ps->p, "null", 4) == 0) {
		ps->p += 4;
		*len = 0;
		return NULL;
	}
	if (*ps->p != '"')
		die(ps, "expected a string");
	ps->p++;
	char *s = own(ps, malloc(strlen(ps->p) + 1));
	size_t n = 0;
	for (;;) {
		char c = *ps->p++;
		if (c == '"')
			break;
		if (c == 0 || c == '\n')
			die(ps, "unterminated string");
		if (c == '\\') {
			if (ps->p[0] != 'x' || !isxdigit((unsigned char)ps->p[1]) ||
			    !isxdigit((unsigned char)ps->p[2]))
				die(ps, "bad escape (only \\xHH)");
			char hex[3] = { ps->p[1], ps->p[2], 0 };
			c = (char)strtoul(hex, NULL, 16);
			ps->p += 3;
		}
		s[n++] = c;
	}
	s[n] = 0;
	*len = (uint32_t)n;
	return s;
}

static uint64_t u64(parser *ps)
{
	const char *w = word(ps);
	char *end;
	errno = 0;
	unsigned long long v = strtoull(w, &end, 10);
	if (errno || *end || *w == '-')
		die(ps, "bad unsigned number '%s'", w);
	return v;
}

static int64_t i64(parser *ps)
{
	const char *w = word(ps);
	char *end;
	errno = 0;
	long long v = strtoll(w, &end, 10);
	if (errno || *end)
		die(ps, "bad number '%s'", w);
	return v;
}

static unsigned name_index(parser *ps, const char *(*name)(int), int max)
{
	const char *w = word(ps);
	for (int i = 0; i <= max; i++)
		if (strcmp(name(i), w) == 0)
			return (unsigned)i;
	die(ps, "unknown name '%s'", w);
}

static const char *op_name(int i) { return wire_op_name((wire_op)i); }
static const char *status_name(int i) { return wire_status_name((wire_status)i); }

static void value(parser *ps, wire_value *v)
{
	memset(v, 0, sizeof(*v));
	const char *w = word(ps);
	if (strcmp(w, "null") == 0) {
		v->type = WIRE_NULL;
	} else if (strcmp(w, "int") == 0) {
		v->type = WIRE_INT;
		v->i = i64(ps);
	} else if (strcmp(w, "real") == 0) {
		v->type = WIRE_REAL;
		w = word(ps);
		char *end;
		v->r = strtod(w, &end);
		if (*end)
			die(ps, "bad real '%s'", w);
	} else if (strcmp(w, "text") == 0 || strcmp(w, "blob") == 0) {
		v->type = w[0] == 't' ? WIRE_TEXT : WIRE_BLOB;
		v->p = string(ps, &v->len);
		if (!v->p)
			die(ps, "null is not a text/blob value");
	} else {
		die(ps, "unknown value type '%s' (known: null, int, real, %s, %s)",
		    w, "text", "blob");
	}
}

static int parse(parser *ps, char *text, wire_message *m)
{
	memset(m, 0, sizeof(*m));
	wire_request *q = &m->req;
	wire_response *r = &m->resp;
	int types_null = -1;
	uint32_t len;

	ps->line = 0;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		ps->line++;
		ps->p = line;
		if (!at_end(ps)) {
			const char *k = word(ps);
			char key[32];
			snprintf(key, sizeof(key), "%s", k);
			if (!m->kind) {
				if (strcmp(key, "request") == 0)
					m->kind = WIRE_MSG_REQUEST;
				else if (strcmp(key, "response") == 0)
					m->kind = WIRE_MSG_RESPONSE;
				else
					die(ps, "first line must be request or response");
			} else if (strcmp(key, "id") == 0) {
				q->id = r->id = u64(ps);
			} else if (m->kind == WIRE_MSG_REQUEST) {
				if (strcmp(key, "op") == 0)
					q->op = (wire_op)name_index(ps, op_name, WIRE_OP_MAX);
				else if (strcmp(key, "txn") == 0)
					q->txn = u64(ps);
				else if (strcmp(key, "ts") == 0)
					q->ts = u64(ps);
				else if (strcmp(key, "epoch") == 0)
					q->epoch = u64(ps);
				else if (strcmp(key, "readonly") == 0)
					q->readonly = strcmp(word(ps), "true") == 0;
				else if (strcmp(key, "sql") == 0)
					q->sql = string(ps, &q->sql_len);
				else if (strcmp(key, "param") == 0) {
					q->params = grow(ps, q->params, q->nparams,
							 sizeof(*q->params));
					value(ps, &q->params[q->nparams++]);
				} else if (strcmp(key, "bucket") == 0) {
					q->buckets = grow(ps, q->buckets, q->nbuckets,
							  sizeof(*q->buckets));
					uint64_t b = u64(ps);
					if (b > UINT32_MAX)
						die(ps, "bucket out of range");
					q->buckets[q->nbuckets++] = (uint32_t)b;
				} else if (strcmp(key, "ended") == 0) {
					q->ended = grow(ps, q->ended, q->nended, sizeof(*q->ended));
					q->ended[q->nended++] = u64(ps);
				} else if (strcmp(key, "step") == 0) {
					uint64_t v = u64(ps);
					if (v > UINT32_MAX)
						die(ps, "step out of range");
					q->step = (uint32_t)v;
				} else if (strcmp(key, "decider") == 0) {
					uint64_t v = u64(ps);
					if (v > UINT32_MAX)
						die(ps, "decider out of range");
					q->decider = (uint32_t)v;
				} else if (strcmp(key, "comp") == 0) {
					q->comp = string(ps, &q->comp_len);
				} else if (strcmp(key, "comp_param") == 0) {
					q->comp_params = grow(ps, q->comp_params, q->ncomp_params,
							      sizeof(*q->comp_params));
					value(ps, &q->comp_params[q->ncomp_params++]);
				} else if (strcmp(key, "mode") == 0) {
					uint64_t v = u64(ps);
					if (v > 255)
						die(ps, "mode out of range");
					q->mode = (uint8_t)v;
				} else if (strcmp(key, "snapshot") == 0) {
					q->snapshot = strcmp(word(ps), "true") == 0;
				} else if (strcmp(key, "unlocked") == 0) {
					q->unlocked = strcmp(word(ps), "true") == 0;
				} else if (strcmp(key, "early") == 0) {
					q->early = strcmp(word(ps), "true") == 0;
				} else
					die(ps, "unknown request item '%s'", key);
			} else {
				if (strcmp(key, "status") == 0)
					r->status = (wire_status)name_index(
						ps, status_name, WIRE_STATUS_MAX);
				else if (strcmp(key, "sqlstate") == 0)
					r->sqlstate = string(ps, &len);
				else if (strcmp(key, "message") == 0)
					r->message = string(ps, &len);
				else if (strcmp(key, "changes") == 0)
					r->changes = i64(ps);
				else if (strcmp(key, "waited") == 0)
					r->waited = strcmp(word(ps), "true") == 0;
				else if (strcmp(key, "column") == 0) {
					if (r->nrows)
						die(ps, "column after row");
					r->columns = grow(ps, r->columns, r->ncols,
							  sizeof(*r->columns));
					r->types = grow(ps, r->types, r->ncols,
							sizeof(*r->types));
					const char *name = string(ps, &len);
					const char *type = string(ps, &len);
					if (!name)
						die(ps, "a column name cannot be null");
					if (types_null >= 0 && types_null != !type)
						die(ps, "types must be all null or none");
					types_null = !type;
					r->columns[r->ncols] = name;
					r->types[r->ncols++] = type;
				} else if (strcmp(key, "row") == 0) {
					for (uint32_t c = 0; c < r->ncols; c++) {
						r->cells = grow(ps, r->cells,
							(uint32_t)((size_t)r->nrows * r->ncols + c),
							sizeof(*r->cells));
						value(ps, &r->cells[(size_t)r->nrows * r->ncols + c]);
					}
					r->nrows++;
				} else
					die(ps, "unknown response item '%s'", key);
			}
			if (!at_end(ps))
				die(ps, "trailing text '%s'", ps->p);
		}
		line = nl ? nl + 1 : NULL;
	}
	if (!m->kind)
		die(ps, "empty description");
	if (types_null == 1)
		r->types = NULL;
	return 0;
}

/* ---- files ---- */

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(2);
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap + 1);
	for (;;) {
		if (!buf) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		cap *= 2;
		buf = realloc(buf, cap + 1);
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		exit(2);
	}
	fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
}

static int write_message(const wire_message *m, const char *path)
{
	uint8_t *out;
	size_t outlen;
	int rc = m->kind == WIRE_MSG_REQUEST
			 ? wire_encode_request(&m->req, &out, &outlen)
			 : wire_encode_response(&m->resp, &out, &outlen);
	if (rc < 0) {
		fprintf(stderr, "%s: encoding failed\n", path);
		return 1;
	}
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(out, 1, outlen, f) != outlen || fclose(f) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		free(out);
		return 1;
	}
	free(out);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: wire_tool decode IN.bin\n"
			"       wire_tool encode IN.dump OUT.bin\n"
			"       wire_tool reencode IN.bin OUT.bin\n");
	return 2;
}

int main(int argc, char **argv)
{
	char err[256];
	wire_message m;
	size_t len;
	int rc;

	if (argc == 3 && strcmp(argv[1], "decode") == 0) {
		uint8_t *buf = slurp(argv[2], &len);
		if (wire_decode(buf, len, &m, err, sizeof(err)) < 0) {
			printf("error: %s\n", err);
			free(buf);
			return 1;
		}
		dump(&m);
		wire_message_free(&m);
		free(buf);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "reencode") == 0) {
		uint8_t *buf = slurp(argv[2], &len);
		if (wire_decode(buf, len, &m, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s: %s\n", argv[2], err);
			free(buf);
			return 1;
		}
		rc = write_message(&m, argv[3]);
		wire_message_free(&m);
		free(buf);
		return rc;
	}
	if (argc == 4 && strcmp(argv[1], "encode") == 0) {
		parser ps = { .file = argv[2] };
		char *text = (char *)slurp(argv[2], &len);
		if (memchr(text, 0, len)) {
			fprintf(stderr, "%s: NUL byte in description\n", argv[2]);
			return 2;
		}
		parse(&ps, text, &m);
		rc = write_message(&m, argv[3]);
		for (size_t i = 0; i < ps.nowned; i++)
			free(ps.owned[i]);
		free(ps.owned);
		free(text);
		return rc;
	}
	return usage();
}
