/*
 * harness.c — see harness.h.
 */
#include "tests/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];
static char last_state[8], last_msg[512];

void th_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

const char *th_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof tmpdir, "%s/shardlite-test-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(1);
		}
	}
	return tmpdir;
}

void th_cleanup(void)
{
	if (tmpdir[0] && !getenv("KEEP_TMP")) {
		char cmd[600];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", tmpdir);
	}
}

int th_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		perror("free port");
		exit(1);
	}
	close(fd);
	return ntohs(sa.sin_port);
}

int th_free_port_range(int n)
{
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	for (int attempt = 0; attempt < 500; attempt++) {
		int base = 10000 + (int)(rand_r(&seed) % (unsigned)(32700 - 10000 - n));
		int ok = 1;
		for (int p = base; p < base + n && ok; p++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			int one = 1;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
			struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
			sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
			if (fd >= 0)
				close(fd);
		}
		if (ok)
			return base;
	}
	fprintf(stderr, "no free port range\n");
	exit(1);
}

static int ping(const th_shard *s)
{
	char err[128];
	wire_client *c = wire_client_connect("127.0.0.1", s->port, err, sizeof err);
	if (!c)
		return -1;
	wire_request r = {.op = WIRE_OP_PING};
	wire_response resp;
	int rc = wire_client_call(c, &r, &resp, err, sizeof err) == 0 ? 0 : -1;
	wire_client_close(c);
	return rc;
}

int th_shard_start(th_shard *s)
{
	const char *bin = getenv("SHARDLITE");
	if (!bin)
		bin = "./shardlite";
	if (!s->port)
		s->port = th_free_port();
	if (!s->dir[0])
		snprintf(s->dir, sizeof s->dir, "%s/shard-%d", th_tmpdir(), s->id);
	snprintf(s->log, sizeof s->log, "%s.log", s->dir);
	char id[16], listen[64];
	snprintf(id, sizeof id, "%d", s->id);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
	const char *argv[24] = {bin, "shard", "--id", id, "--listen", listen, "--data", s->dir};
	int n = 8;
	for (int i = 0; i < 8 && s->extra[i]; i++)
		argv[n++] = s->extra[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int log = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	s->pid = pid;
	for (int i = 0; i < 200; i++) {
		if (ping(s) == 0)
			return 0;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			s->pid = 0;
			return -1;
		}
		th_sleep_ms(25);
	}
	return -1;
}

void th_shard_kill9(th_shard *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

int th_shard_term(th_shard *s)
{
	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	int st;
	for (int i = 0; i < 400; i++) {
		pid_t r = waitpid(s->pid, &st, WNOHANG);
		if (r == s->pid) {
			s->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		th_sleep_ms(25);
	}
	th_shard_kill9(s);
	return -1;
}

int th_shard_alive(th_shard *s)
{
	if (s->pid <= 0)
		return 0;
	int st;
	return waitpid(s->pid, &st, WNOHANG) == 0;
}

wire_client *th_connect(const th_shard *s)
{
	char err[128];
	wire_client *c = wire_client_connect("127.0.0.1", s->port, err, sizeof err);
	if (!c)
		fprintf(stdout, "# connect: %s\n", err);
	return c;
}

int th_call(wire_client *c, wire_op op, uint64_t txn, uint64_t ts, const char *sql, wire_response *resp)
{
	/* tests open transactions implicitly with their first Exec */
	wire_request r = {.op = op, .txn = txn, .ts = ts, .sql = sql, .sql_len = sql ? (uint32_t)strlen(sql) : 0,
			  .begin = op == WIRE_OP_EXEC && txn != 0};
	char err[256];
	last_state[0] = last_msg[0] = 0;
	if (wire_client_call(c, &r, resp, err, sizeof err) != 0) {
		snprintf(last_msg, sizeof last_msg, "%s", err);
		return -1;
	}
	if (resp->status == WIRE_ERROR) {
		snprintf(last_state, sizeof last_state, "%s", resp->sqlstate ? resp->sqlstate : "");
		snprintf(last_msg, sizeof last_msg, "%s", resp->message ? resp->message : "");
	}
	return 0;
}

int64_t th_int(wire_client *c, uint64_t txn, const char *sql)
{
	wire_response resp;
	if (th_call(c, WIRE_OP_EXEC, txn, 0, sql, &resp) != 0 || resp.status != WIRE_OK ||
	    resp.nrows < 1 || resp.ncols < 1 || resp.cells[0].type != WIRE_INT)
		return INT64_MIN;
	return resp.cells[0].i;
}

int th_status(wire_client *c, wire_op op, uint64_t txn, uint64_t ts, const char *sql)
{
	wire_response resp;
	if (th_call(c, op, txn, ts, sql, &resp) != 0)
		return -1;
	return (int)resp.status;
}

const char *th_last_sqlstate(void)
{
	return last_state;
}

const char *th_last_message(void)
{
	return last_msg;
}
