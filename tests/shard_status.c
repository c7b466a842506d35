/*
 * shard_status.c — print a shard's transaction table (a wire Status
 * request), for shell tests that must see what `shard-query` cannot:
 * prepared (in-doubt) transactions and the locks they hold.
 *
 *   shard_status HOST:PORT [stats|sagas]
 *
 * One line per transaction the shard knows, tab-separated:
 *
 *   txn  state  ts  age_ms  locks  waiting      (state: active | prepared)
 *
 * With `stats`: the shard's counters (name, value); with `sagas`: its open
 * saga steps.  No line: the shard holds no transaction.  Exit status 0 when the shard
 * answered, 1 when it could not be reached or answered with an error (so
 * "no output" never hides "no answer"), 2 on bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "txn/client.h"

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc == 2 ? stdout : stderr, "usage: shard_status HOST:PORT [stats|sagas]\n");
		return argc == 2 ? 0 : 2;
	}
	char host[256], err[256];
	int port;
	if (wire_parse_addr(argv[1], host, sizeof host, &port) != 0) {
		fprintf(stderr, "shard_status: bad address '%s'\n", argv[1]);
		return 2;
	}
	wire_client *c = wire_client_connect(host, port, err, sizeof err);
	if (!c) {
		fprintf(stderr, "shard_status: %s\n", err);
		return 1;
	}
	wire_request r = {.op = WIRE_OP_STATUS};
	if (argc == 3) {
		r.sql = argv[2];
		r.sql_len = (uint32_t)strlen(argv[2]);
	}
	wire_response resp;
	int rc = 0;
	if (wire_client_call(c, &r, &resp, err, sizeof err) != 0) {
		fprintf(stderr, "shard_status: %s\n", err);
		rc = 1;
	} else if (resp.status != WIRE_OK) {
		fprintf(stderr, "shard_status: %s %s\n", resp.sqlstate ? resp.sqlstate : "?",
			resp.message ? resp.message : "error");
		rc = 1;
	} else {
		for (uint32_t i = 0; i < resp.nrows; i++) {
			for (uint32_t j = 0; j < resp.ncols; j++) {
				const wire_value *v = &resp.cells[(size_t)i * resp.ncols + j];
				if (j)
					putchar('\t');
				if (v->type == WIRE_TEXT)
					fputs(v->p, stdout);
				else if (v->type == WIRE_INT)
					printf("%lld", (long long)v->i);
			}
			putchar('\n');
		}
	}
	wire_client_close(c);
	return rc;
}
