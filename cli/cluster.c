/*
 * cluster.c — `shardlite cluster`: a local cluster on 127.0.0.1 under one
 * directory.
 *
 *   DIR/cluster.conf     port=P and shards=N, fixed at the first start
 *   DIR/shard-I.pid      pid of shard I, listening on 127.0.0.1:(P + 1 + I)
 *   DIR/shard-I.log      its stderr
 *   DIR/shard-I/         its data directory
 *
 *   DIR/router.pid       the router, listening on 127.0.0.1:P (default 5433)
 *   DIR/router.log, DIR/router/   its log and data (catalog.db)
 *  `start` on an existing DIR
 * restarts whichever processes are not running, with the same ports and
 * data; it returns once every process accepts connections.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "txn/client.h"

typedef struct {
	const char *dir;
	int port;
	int shards;
	int explicit_layout;  /* --port or --shards given on the command line */
} cluster;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void path_of(const cluster *cl, char *buf, size_t n, const char *fmt, int i)
{
	char name[64];
	snprintf(name, sizeof name, fmt, i);
	snprintf(buf, n, "%s/%s", cl->dir, name);
}

static int read_conf(cluster *cl)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/cluster.conf", cl->dir);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	char line[256];
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "port=", 5) == 0)
			cl->port = atoi(line + 5);
		else if (strncmp(line, "shards=", 7) == 0)
			cl->shards = atoi(line + 7);
	}
	fclose(f);
	return 0;
}

static int write_conf(const cluster *cl)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/cluster.conf", cl->dir);
	FILE *f = fopen(p, "w");
	if (!f)
		return -1;
	fprintf(f, "port=%d\nshards=%d\n", cl->port, cl->shards);
	return fclose(f);
}

static pid_t read_pid(const char *pidfile)
{
	FILE *f = fopen(pidfile, "r");
	if (!f)
		return 0;
	long pid = 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/* Is pid a running shardlite process?  /proc/PID/stat: "pid (comm) S ...".
 * A zombie (state Z) is dead; another program that reused the pid is not
 * ours.  (cmdline is no use: it reads empty while a child is in execve.) */
static int alive(pid_t pid)
{
	if (pid <= 0 || kill(pid, 0) != 0)
		return 0;
	char p[64], buf[512];
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (!open || !close || close < open || close[1] != ' ')
		return 0;
	*close = 0;
	if (!strstr(open + 1, "shardlite"))
		return 0;
	return close[2] != 'Z';
}

static int ping(int port)
{
	char err[128];
	wire_client *c = wire_client_connect("127.0.0.1", port, err, sizeof err);
	if (!c)
		return -1;
	/* bounded: a hung (stopped) shard accepts the connection, never answers */
	wire_request r = {.op = WIRE_OP_PING};
	wire_response resp;
	int rc = wire_client_send(c, &r) == 0 && wire_client_recv(c, &resp, 1000, err, sizeof err) == 0 &&
			 resp.status == WIRE_OK
		 ? 0
		 : -1;
	wire_client_close(c);
	return rc;
}

/* Start a background process with stdout/stderr appended to logfile and
 * its pid written to pidfile. */
static pid_t spawn(const char *self, const char *pidfile, const char *logfile, char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setsid();
		int null = open("/dev/null", O_RDONLY);
		int log = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (null >= 0)
			dup2(null, 0);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		execv(self, argv);
		_exit(127);
	}
	FILE *f = fopen(pidfile, "w");
	if (f) {
		fprintf(f, "%d\n", (int)pid);
		fclose(f);
	}
	return pid;
}

static pid_t spawn_shard(const cluster *cl, int i, const char *self)
{
	char pidfile[4096], logfile[4096], data[4096], id[16], listen[64];
	path_of(cl, pidfile, sizeof pidfile, "shard-%d.pid", i);
	path_of(cl, logfile, sizeof logfile, "shard-%d.log", i);
	path_of(cl, data, sizeof data, "shard-%d", i);
	snprintf(id, sizeof id, "%d", i);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", cl->port + 1 + i);
	char *argv[] = {"shardlite", "shard", "--id", id, "--listen", listen, "--data", data, NULL};
	return spawn(self, pidfile, logfile, argv);
}

static pid_t spawn_router(const cluster *cl, const char *self)
{
	char pidfile[4096], logfile[4096], data[4096], listen[64];
	snprintf(pidfile, sizeof pidfile, "%s/router.pid", cl->dir);
	snprintf(logfile, sizeof logfile, "%s/router.log", cl->dir);
	snprintf(data, sizeof data, "%s/router", cl->dir);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", cl->port);
	size_t cap = (size_t)cl->shards * 24 + 1;
	char *shards = calloc(cap, 1);
	if (!shards)
		return -1;
	for (int i = 0; i < cl->shards; i++) {
		size_t len = strlen(shards);
		snprintf(shards + len, cap - len, "%s127.0.0.1:%d", i ? "," : "", cl->port + 1 + i);
	}
	char *argv[] = {"shardlite", "router", "--listen", listen, "--data", data, "--shards", shards, NULL};
	pid_t pid = spawn(self, pidfile, logfile, argv);
	free(shards);
	return pid;
}

/* The router answers an SSLRequest with 'N' once it serves. */
static int router_ready(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = -1;
	struct timeval tv = {.tv_sec = 1};  /* a hung router must not hang us */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		unsigned char req[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
		char c;
		if (write(fd, req, 8) == 8 && read(fd, &c, 1) == 1 && c == 'N')
			rc = 0;
	}
	close(fd);
	return rc;
}

/* Wait (up to 10 s) until shard i, process pid, answers a Ping; -1 with a
 * message if it does not or dies. */
static int shard_up(const cluster *cl, int i, pid_t pid)
{
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= 10)
			break;
		if (ping(cl->port + 1 + i) == 0 && alive(pid))
			return 0;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid || !alive(pid))
			break;
		sleep_ms(50);
	}
	fprintf(stderr, "shardlite cluster: shard %d did not come up; see %s/shard-%d.log\n", i, cl->dir, i);
	return -1;
}

/* This binary's path, to start shards and routers with. */
static int self_path(char *self, size_t n)
{
	ssize_t len = readlink("/proc/self/exe", self, n - 1);
	if (len <= 0) {
		fprintf(stderr, "shardlite cluster: cannot find my own binary\n");
		return -1;
	}
	self[len] = 0;
	return 0;
}

static int cluster_start(cluster *cl)
{
	if (mkdir(cl->dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "shardlite cluster: cannot create %s: %s\n", cl->dir, strerror(errno));
		return 1;
	}
	cluster saved = *cl;
	if (read_conf(&saved) == 0) {
		if (cl->explicit_layout && (cl->port != saved.port || cl->shards != saved.shards))
			fprintf(stderr, "shardlite cluster: %s already holds a cluster (port %d, %d shards); using it\n",
				cl->dir, saved.port, saved.shards);
		*cl = saved;
	} else if (write_conf(cl) != 0) {
		fprintf(stderr, "shardlite cluster: cannot write %s/cluster.conf\n", cl->dir);
		return 1;
	}
	char self[4096];
	if (self_path(self, sizeof self) != 0)
		return 1;
	pid_t *pids = calloc((size_t)cl->shards, sizeof *pids);
	if (!pids)
		return 1;
	for (int i = 0; i < cl->shards; i++) {
		char pidfile[4096];
		path_of(cl, pidfile, sizeof pidfile, "shard-%d.pid", i);
		pid_t pid = read_pid(pidfile);
		if (alive(pid)) {
			pids[i] = pid;
			continue;
		}
		pids[i] = spawn_shard(cl, i, self);
		if (pids[i] < 0) {
			fprintf(stderr, "shardlite cluster: cannot start shard %d: %s\n", i, strerror(errno));
			free(pids);
			return 1;
		}
		printf("started shard %d (pid %d) on 127.0.0.1:%d\n", i, (int)pids[i], cl->port + 1 + i);
	}
	int rc = 0;
	for (int i = 0; i < cl->shards; i++) {
		if (shard_up(cl, i, pids[i]) != 0)
			rc = 1;
	}
	free(pids);
	if (rc != 0)
		return rc;
	char rpid[4096];
	snprintf(rpid, sizeof rpid, "%s/router.pid", cl->dir);
	pid_t router = read_pid(rpid);
	if (!alive(router)) {
		router = spawn_router(cl, self);
		if (router < 0) {
			fprintf(stderr, "shardlite cluster: cannot start the router: %s\n", strerror(errno));
			return 1;
		}
		printf("started router (pid %d) on 127.0.0.1:%d\n", (int)router, cl->port);
	}
	int up = 0;
	for (int t = 0; t < 200 && !up; t++) {
		if (router_ready(cl->port) == 0) {
			up = 1;
			break;
		}
		int st;
		if (waitpid(router, &st, WNOHANG) == router || !alive(router))
			break;
		sleep_ms(50);
	}
	if (!up) {
		fprintf(stderr, "shardlite cluster: the router did not come up; see %s/router.log\n", cl->dir);
		return 1;
	}
	printf("cluster in %s: router on 127.0.0.1:%d, %d shards on 127.0.0.1:%d..%d\n", cl->dir, cl->port,
	       cl->shards, cl->port + 1, cl->port + cl->shards);
	printf("connect with: psql -h 127.0.0.1 -p %d\n", cl->port);
	return 0;
}

/* ---- add-shard: one more shard process, registered through the router ---- */

static int read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Read backend messages until ReadyForQuery; an ErrorResponse's message
 * goes to err.  0 when no error was seen. */
static int pg_until_ready(int fd, char *err, size_t errlen)
{
	int failed = 0;
	for (;;) {
		unsigned char hdr[5];
		if (read_full(fd, hdr, 5) != 0) {
			snprintf(err, errlen, "the router closed the connection");
			return -1;
		}
		uint32_t len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
		if (len < 4 || len > (1u << 24)) {
			snprintf(err, errlen, "bad message from the router");
			return -1;
		}
		char *body = malloc(len - 4 + 1);
		if (!body || read_full(fd, body, len - 4) != 0) {
			free(body);
			snprintf(err, errlen, "the router closed the connection");
			return -1;
		}
		body[len - 4] = 0;
		if (hdr[0] == 'E') {
			failed = 1;
			for (char *f = body; *f && f < body + len - 4; f += strlen(f) + 1)
				if (f[0] == 'M')
					snprintf(err, errlen, "%s", f + 1);
		}
		free(body);
		if (hdr[0] == 'Z')
			return failed ? -1 : 0;
	}
}

/* Run one SQL statement on the router (simple query protocol). */
static int router_query(int port, const char *sql, char *err, size_t errlen)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		snprintf(err, errlen, "cannot connect to the router on port %d", port);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	static const char params[] = "user\0shardlite\0database\0shardlite\0application_name\0shardlite cluster\0";
	unsigned char msg[256];
	uint32_t n = (uint32_t)(8 + sizeof params);
	msg[0] = (unsigned char)(n >> 24), msg[1] = (unsigned char)(n >> 16), msg[2] = (unsigned char)(n >> 8),
	msg[3] = (unsigned char)n;
	msg[4] = 0, msg[5] = 3, msg[6] = 0, msg[7] = 0;
	memcpy(msg + 8, params, sizeof params);
	int rc = -1;
	if (write(fd, msg, n) == (ssize_t)n && pg_until_ready(fd, err, errlen) == 0) {
		size_t ql = strlen(sql) + 1;
		uint32_t m = (uint32_t)(4 + ql);
		unsigned char *q = malloc(1 + m);
		if (q) {
			q[0] = 'Q';
			q[1] = (unsigned char)(m >> 24), q[2] = (unsigned char)(m >> 16), q[3] = (unsigned char)(m >> 8),
			q[4] = (unsigned char)m;
			memcpy(q + 5, sql, ql);
			if (write(fd, q, 1 + m) == (ssize_t)(1 + m))
				rc = pg_until_ready(fd, err, errlen);
			free(q);
		}
	}
	close(fd);
	return rc;
}

static int cluster_add_shard(cluster *cl)
{
	if (read_conf(cl) != 0) {
		fprintf(stderr, "shardlite cluster: %s holds no cluster (run cluster start first)\n", cl->dir);
		return 1;
	}
	if (cl->shards >= 64 || cl->port + 1 + cl->shards > 65535) {
		fprintf(stderr, "shardlite cluster: no room for another shard\n");
		return 1;
	}
	char self[4096];
	if (self_path(self, sizeof self) != 0)
		return 1;
	int i = cl->shards;
	pid_t pid = spawn_shard(cl, i, self);
	if (pid < 0) {
		fprintf(stderr, "shardlite cluster: cannot start shard %d: %s\n", i, strerror(errno));
		return 1;
	}
	if (shard_up(cl, i, pid) != 0)
		return 1;
	cl->shards++;
	if (write_conf(cl) != 0) {
		fprintf(stderr, "shardlite cluster: cannot write %s/cluster.conf\n", cl->dir);
		return 1;
	}
	char sql[128], err[512] = "";
	snprintf(sql, sizeof sql, "ALTER CLUSTER ADD SHARD '127.0.0.1:%d'", cl->port + 1 + i);
	if (router_query(cl->port, sql, err, sizeof err) != 0) {
		fprintf(stderr, "shardlite cluster: %s: %s\n", sql, err);
		return 1;
	}
	printf("added shard %d (pid %d) on 127.0.0.1:%d; REBALANCE moves data to it\n", i, (int)pid,
	       cl->port + 1 + i);
	return 0;
}

static void stop_pid(pid_t pid, const char *what)
{
	if (!alive(pid))
		return;
	kill(pid, SIGTERM);
	int t = 0;
	while (alive(pid) && t++ < 200)
		sleep_ms(50);
	if (alive(pid)) {
		fprintf(stderr, "shardlite cluster: the %s ignored SIGTERM; killing it\n", what);
		kill(pid, SIGKILL);
	}
	printf("stopped %s (pid %d)\n", what, (int)pid);
}

static int cluster_stop(cluster *cl)
{
	if (read_conf(cl) != 0) {
		fprintf(stderr, "shardlite cluster: no cluster in %s\n", cl->dir);
		return 1;
	}
	char rpid[4096];
	snprintf(rpid, sizeof rpid, "%s/router.pid", cl->dir);
	stop_pid(read_pid(rpid), "router");
	unlink(rpid);
	for (int i = 0; i < cl->shards; i++) {
		char pidfile[4096];
		path_of(cl, pidfile, sizeof pidfile, "shard-%d.pid", i);
		pid_t pid = read_pid(pidfile);
		if (alive(pid)) {
			kill(pid, SIGTERM);
			int t = 0;
			while (alive(pid) && t++ < 200)
				sleep_ms(50);
			if (alive(pid)) {
				fprintf(stderr, "shardlite cluster: shard %d ignored SIGTERM; killing it\n", i);
				kill(pid, SIGKILL);
			}
			printf("stopped shard %d (pid %d)\n", i, (int)pid);
		}
		unlink(pidfile);
	}
	return 0;
}

static int cluster_status(cluster *cl)
{
	if (read_conf(cl) != 0) {
		fprintf(stderr, "shardlite cluster: no cluster in %s\n", cl->dir);
		return 1;
	}
	int down = 0;
	char rpid[4096];
	snprintf(rpid, sizeof rpid, "%s/router.pid", cl->dir);
	pid_t router = read_pid(rpid);
	int rup = alive(router) && router_ready(cl->port) == 0;
	printf("router   127.0.0.1:%d  %s", cl->port, rup ? "running" : "stopped");
	if (rup)
		printf(" (pid %d)", (int)router);
	printf("\n");
	down += !rup;
	for (int i = 0; i < cl->shards; i++) {
		char pidfile[4096];
		path_of(cl, pidfile, sizeof pidfile, "shard-%d.pid", i);
		pid_t pid = read_pid(pidfile);
		int running = alive(pid), up = running && ping(cl->port + 1 + i) == 0;
		printf("shard %d  127.0.0.1:%d  %s", i, cl->port + 1 + i,
		       up ? "running" : running ? "not answering" : "stopped");
		if (running)
			printf(" (pid %d)", (int)pid);
		printf("\n");
		down += !up;
	}
	return down ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shardlite cluster start|stop|status|add-shard --dir DIR [--shards N] [--port P]\n"
		"\n"
		"  start   start the cluster's processes that are not running, in the background,\n"
		"          and return once they accept connections (ports and data are kept)\n"
		"  stop    stop them (SIGTERM, then SIGKILL after 10 s)\n"
		"  status  show each process; exits 1 if any is down\n"
		"  add-shard  start one more shard and register it with the router\n"
		"          (ALTER CLUSTER ADD SHARD); REBALANCE then moves data to it\n"
		"\n"
		"  --dir DIR     cluster directory (data, logs, pid files)\n"
		"  --shards N    number of shards at the first start (default 4)\n"
		"  --port P      router port (default 5433); shard I listens on P+1+I\n");
}

int cli_cluster(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, 0, 'd'},
		{"shards", required_argument, 0, 's'},
		{"port", required_argument, 0, 'p'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *verb = argv[1];
	if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	cluster cl = {.dir = NULL, .port = 5433, .shards = 4};
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': cl.dir = optarg; break;
		case 's':
		case 'p':
			if (cli_int(optarg, 1, 65535, c == 's' ? &cl.shards : &cl.port) != 0) {
				fprintf(stderr, "shardlite cluster: bad --%s '%s' (want a number)\n",
					c == 's' ? "shards" : "port", optarg);
				return 2;
			}
			cl.explicit_layout = 1;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cl.dir) {
		fprintf(stderr, "shardlite cluster: --dir is required\n");
		return 2;
	}
	if (cl.shards < 1 || cl.shards > 64 || cl.port < 1 || cl.port + cl.shards > 65535) {
		fprintf(stderr, "shardlite cluster: --shards must be 1..64 and ports must fit\n");
		return 2;
	}
	if (strcmp(verb, "start") == 0)
		return cluster_start(&cl);
	if (strcmp(verb, "stop") == 0)
		return cluster_stop(&cl);
	if (strcmp(verb, "status") == 0)
		return cluster_status(&cl);
	if (strcmp(verb, "add-shard") == 0)
		return cluster_add_shard(&cl);
	fprintf(stderr, "shardlite cluster: unknown action '%s'\n", verb);
	usage(stderr);
	return 2;
}
