/*
 * main.c — the `shardlite` command: one binary, one subcommand per role.
 *
 *   shardlite shard   --id N --listen HOST:PORT --data DIR   a shard server
 *   shardlite router  --listen HOST:PORT --data DIR          the router
 *   shardlite cluster start|stop|status --dir DIR ...        a local cluster
 *   shardlite shard-query HOST:PORT SQL                      one statement on a shard
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "router/server.h"
#include "shard/server.h"
#include "txn/client.h"
#include "txn/failpoint.h"

static void usage_main(FILE *f)
{
	fprintf(f,
		"usage: shardlite <command> [options]\n"
		"\n"
		"commands:\n"
		"  shard        run one shard server (SQLite database over the wire protocol)\n"
		"  router       run the router (PostgreSQL protocol front end)\n"
		"  cluster      start, stop or inspect a local cluster on 127.0.0.1\n"
		"  shard-query  run one SQL statement directly on a shard (debugging)\n"
		"\n"
		"Each command takes --help.\n");
}

int cli_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* A number of milliseconds in [0, max]: 0, or -1 if s is not one. */
static int parse_ms(const char *s, unsigned long max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* cli_int() for the shard's option --name, saying what is wrong. */
static int int_option(const char *name, const char *s, long lo, long hi, int *out)
{
	if (cli_int(s, lo, hi, out) == 0)
		return 0;
	fprintf(stderr, "shardlite shard: bad --%s '%s' (want a whole number, %ld..%ld)\n", name, s, lo, hi);
	return -1;
}

/* parse_ms() for the shard's option --name, saying what is wrong. */
static int ms_option(const char *name, const char *s, unsigned long max, uint32_t *out)
{
	if (parse_ms(s, max, out) == 0)
		return 0;
	fprintf(stderr, "shardlite shard: bad --%s '%s' (want milliseconds, at most %lu)\n", name, s, max);
	return -1;
}

static void usage_shard(FILE *f)
{
	fprintf(f,
		"usage: shardlite shard --id N --listen HOST:PORT --data DIR [options]\n"
		"\n"
		"  --id N                 shard number\n"
		"  --listen HOST:PORT     address to serve (default 127.0.0.1:5434)\n"
		"  --data DIR             data directory (created if missing; holds shard.db)\n"
		"  --readers N            reader threads for read-only requests (default 2)\n"
		"  --lock-timeout-ms MS   longest wait for a row lock (default 5000)\n"
		"  --idle-timeout-ms MS   roll back unprepared transactions idle this long (default 60000)\n"
		"  --wound-delay-ms MS    how long an older transaction waits for a younger one's row\n"
		"                         before rolling it back (wound-wait; default 50, 0: at once;\n"
		"                         shorter than the lock timeout; the environment variable\n"
		"                         SHARDLITE_WOUND_DELAY_MS sets it too)\n");
}

static int cmd_shard(int argc, char **argv)
{
	static const struct option opts[] = {
		{"id", required_argument, 0, 'i'},
		{"listen", required_argument, 0, 'l'},
		{"data", required_argument, 0, 'd'},
		{"readers", required_argument, 0, 'r'},
		{"lock-timeout-ms", required_argument, 0, 't'},
		{"idle-timeout-ms", required_argument, 0, 'T'},
		{"wound-delay-ms", required_argument, 0, 'W'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	char host[256] = "127.0.0.1";
	shard_server_config cfg = {
		.id = -1, .host = host, .port = 5434, .data_dir = NULL,
		.nreaders = 2, .lock_timeout_ms = 5000, .idle_timeout_ms = 60000, .wound_delay_ms = 50,
	};
	const char *wd = getenv("SHARDLITE_WOUND_DELAY_MS");
	if (wd && *wd && parse_ms(wd, 60000, &cfg.wound_delay_ms) != 0) {
		fprintf(stderr, "shardlite shard: bad SHARDLITE_WOUND_DELAY_MS '%s' (want milliseconds)\n", wd);
		return 2;
	}
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (int_option("id", optarg, 0, 255, &cfg.id) != 0)
				return 2;
			break;
		case 'l':
			if (wire_parse_addr(optarg, host, sizeof host, &cfg.port) != 0) {
				fprintf(stderr, "shardlite shard: bad --listen address '%s' (want HOST:PORT)\n", optarg);
				return 2;
			}
			break;
		case 'd': cfg.data_dir = optarg; break;
		case 'r':
			if (int_option("readers", optarg, 0, 64, &cfg.nreaders) != 0)
				return 2;
			break;
		case 't':
			if (ms_option("lock-timeout-ms", optarg, 3600000, &cfg.lock_timeout_ms) != 0)
				return 2;
			break;
		case 'T':
			if (ms_option("idle-timeout-ms", optarg, 86400000, &cfg.idle_timeout_ms) != 0)
				return 2;
			break;
		case 'W':
			if (ms_option("wound-delay-ms", optarg, 60000, &cfg.wound_delay_ms) != 0)
				return 2;
			break;
		case 'h': usage_shard(stdout); return 0;
		default: usage_shard(stderr); return 2;
		}
	}
	if (cfg.id < 0 || !cfg.data_dir) {
		fprintf(stderr, "shardlite shard: --id and --data are required\n");
		usage_shard(stderr);
		return 2;
	}
	/* An older transaction that waits for a younger one's row wounds it
	 * after the delay; a lock timeout that comes first would fail the
	 * older one instead, every time (wound-wait would never break a
	 * deadlock, only the timeout would). */
	if (cfg.wound_delay_ms > 0 && cfg.lock_timeout_ms > 0 && cfg.wound_delay_ms >= cfg.lock_timeout_ms) {
		fprintf(stderr,
			"shardlite shard: the wound delay (%" PRIu32 " ms) must be shorter than the lock timeout (%" PRIu32
			" ms)\n",
			cfg.wound_delay_ms, cfg.lock_timeout_ms);
		return 2;
	}
	return shard_server_run(&cfg);
}

static void usage_router(FILE *f)
{
	fprintf(f,
		"usage: shardlite router --listen HOST:PORT --data DIR [--shards HOST:PORT,...]\n"
		"\n"
		"  --listen HOST:PORT   PostgreSQL protocol address (default 127.0.0.1:5433)\n"
		"  --data DIR           data directory (holds catalog.db)\n"
		"  --shards LIST        comma-separated shard addresses, for a new catalog;\n"
		"                       afterwards the catalog remembers them\n");
}

static int cmd_router(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, 0, 'l'},
		{"data", required_argument, 0, 'd'},
		{"shards", required_argument, 0, 's'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	char host[256] = "127.0.0.1";
	router_config cfg = {.host = host, .port = 5433};
	char *list = NULL;
	const char *shards[256];
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (wire_parse_addr(optarg, host, sizeof host, &cfg.port) != 0) {
				fprintf(stderr, "shardlite router: bad --listen address '%s' (want HOST:PORT)\n", optarg);
				return 2;
			}
			break;
		case 'd': cfg.data_dir = optarg; break;
		case 's': list = optarg; break;
		case 'h': usage_router(stdout); return 0;
		default: usage_router(stderr); return 2;
		}
	}
	if (!cfg.data_dir) {
		fprintf(stderr, "shardlite router: --data is required\n");
		usage_router(stderr);
		return 2;
	}
	for (char *tok = list ? strtok(list, ",") : NULL; tok && cfg.nshards < 256; tok = strtok(NULL, ","))
		shards[cfg.nshards++] = tok;
	cfg.shards = shards;
	return router_run(&cfg);
}

static void print_value(const wire_value *v)
{
	switch (v->type) {
	case WIRE_NULL: fputs("NULL", stdout); break;
	case WIRE_INT: printf("%lld", (long long)v->i); break;
	case WIRE_REAL: printf("%.17g", v->r); break;
	case WIRE_TEXT: fwrite(v->p, 1, v->len, stdout); break;
	case WIRE_BLOB:
		fputs("\\x", stdout);
		for (uint32_t i = 0; i < v->len; i++)
			printf("%02x", ((const unsigned char *)v->p)[i]);
		break;
	}
}

static int cmd_shard_query(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: shardlite shard-query HOST:PORT SQL\n"
		       "Runs one autocommit statement on a shard and prints the rows tab-separated.\n");
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: shardlite shard-query HOST:PORT SQL\n");
		return 2;
	}
	char host[256], err[256];
	int port;
	if (wire_parse_addr(argv[1], host, sizeof host, &port) != 0) {
		fprintf(stderr, "shardlite shard-query: bad address '%s'\n", argv[1]);
		return 2;
	}
	wire_client *c = wire_client_connect(host, port, err, sizeof err);
	if (!c) {
		fprintf(stderr, "shardlite shard-query: %s\n", err);
		return 1;
	}
	wire_request r = {.op = WIRE_OP_EXEC, .sql = argv[2], .sql_len = (uint32_t)strlen(argv[2])};
	wire_response resp;
	int rc = 0;
	if (wire_client_call(c, &r, &resp, err, sizeof err) != 0) {
		fprintf(stderr, "shardlite shard-query: %s\n", err);
		rc = 1;
	} else if (resp.status == WIRE_ERROR) {
		fprintf(stderr, "ERROR %s: %s\n", resp.sqlstate ? resp.sqlstate : "?", resp.message ? resp.message : "");
		rc = 1;
	} else {
		for (uint32_t i = 0; i < resp.nrows; i++) {
			for (uint32_t j = 0; j < resp.ncols; j++) {
				if (j)
					putchar('\t');
				print_value(&resp.cells[(size_t)i * resp.ncols + j]);
			}
			putchar('\n');
		}
		if (resp.ncols == 0)
			printf("OK %lld\n", (long long)resp.changes);
	}
	wire_client_close(c);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage_main(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	failpoints_init();
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage_main(stdout);
		return 0;
	}
	if (strcmp(cmd, "shard") == 0)
		return cmd_shard(argc - 1, argv + 1);
	if (strcmp(cmd, "router") == 0)
		return cmd_router(argc - 1, argv + 1);
	if (strcmp(cmd, "cluster") == 0)
		return cli_cluster(argc - 1, argv + 1);
	if (strcmp(cmd, "shard-query") == 0)
		return cmd_shard_query(argc - 1, argv + 1);
	fprintf(stderr, "shardlite: unknown command '%s'\n", cmd);
	usage_main(stderr);
	return 2;
}
