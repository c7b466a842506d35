/*
 * localsock.c — abstract Unix sockets for same-machine shard connections
 * (see localsock.h).
 *
 * Invariant: the socket name is a pure function of (host, port), so the
 * shard and the router agree on it without configuration.
 */
#include "txn/localsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int localsock_is_loopback(const char *host)
{
	if (strcmp(host, "localhost") == 0)
		return 1;
	struct in_addr a;
	return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static socklen_t name_of(const char *host, int port, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	/* sun_path[0] stays 0: the abstract namespace */
	int n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "shardlite-shard-%s:%d",
			 strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, port);
	if (n < 0 || (size_t)n >= sizeof sa->sun_path - 1)
		return 0;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* A socket bound and listening (listening) or connected to the name. */
static int named_socket(const char *host, int port, bool listening)
{
	struct sockaddr_un sa;
	socklen_t len;
	if (!localsock_is_loopback(host) || (len = name_of(host, port, &sa)) == 0) {
		errno = EINVAL;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* a Unix connect completes at once or fails at once (EAGAIN: the
	 * shard's backlog is full; the caller takes TCP then) */
	int rc = listening ? (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 511) != 0)
			   : connect(fd, (struct sockaddr *)&sa, len) != 0;
	if (rc) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int localsock_listen(const char *host, int port)
{
	return named_socket(host, port, true);
}

int localsock_connect(const char *host, int port)
{
	return named_socket(host, port, false);
}
