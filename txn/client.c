/*
 * client.c — blocking wire client (see client.h).
 * Invariant: at most one decoded message (last) is alive; its frame copy is
 * kept in lastbuf because decoded strings point into it.
 */
#include "txn/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "txn/frame.h"
#include "txn/localsock.h"

struct wire_client {
	int fd;
	uint64_t next_id;
	frame_reader fr;
	wire_message last;
	int have_last;
	uint8_t *lastbuf;
};

int wire_parse_addr(const char *addr, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr || (size_t)(colon - addr) >= hostlen)
		return -1;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p <= 0 || p > 65535)
		return -1;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	*port = (int)p;
	return 0;
}

/* A client on a connected, blocking socket (closed on failure). */
static wire_client *client_of(int fd, char *err, size_t errlen)
{
	wire_client *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = fd;
	frame_reader_init(&c->fr);
	return c;
}

wire_client *wire_client_connect(const char *host, int port, char *err, size_t errlen)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "bad IPv4 address %s", host);
		return NULL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		snprintf(err, errlen, "connect %s:%d: %s", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return client_of(fd, err, errlen);
}

wire_client *wire_client_connect_local(const char *host, int port, char *err, size_t errlen)
{
	int fd = localsock_connect(host, port);
	int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
	if (fd < 0 || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		snprintf(err, errlen, "connect to the same-machine socket of %s:%d: %s", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	return client_of(fd, err, errlen);
}

static void drop_last(wire_client *c)
{
	if (c->have_last)
		wire_message_free(&c->last);
	c->have_last = 0;
	free(c->lastbuf);
	c->lastbuf = NULL;
}

void wire_client_close(wire_client *c)
{
	if (!c)
		return;
	drop_last(c);
	frame_reader_free(&c->fr);
	close(c->fd);
	free(c);
}

int wire_client_fd(const wire_client *c)
{
	return c->fd;
}

int wire_client_send_raw(wire_client *c, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int wire_client_send(wire_client *c, wire_request *r)
{
	if (r->id == 0)
		r->id = ++c->next_id;
	uint8_t *out;
	size_t len;
	if (wire_encode_request(r, &out, &len) != 0)
		return -1;
	uint8_t *frame = malloc(len + FRAME_HEADER);
	if (!frame) {
		free(out);
		return -1;
	}
	frame_header_put(frame, (uint32_t)len);
	memcpy(frame + FRAME_HEADER, out, len);
	int rc = wire_client_send_raw(c, frame, len + FRAME_HEADER);
	free(frame);
	free(out);
	return rc;
}

int wire_client_recv(wire_client *c, wire_response *resp, int timeout_ms, char *err, size_t errlen)
{
	drop_last(c);
	for (;;) {
		const uint8_t *p;
		size_t len;
		int rc = frame_reader_next(&c->fr, &p, &len, err, errlen);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			c->lastbuf = malloc(len ? len : 1);
			if (!c->lastbuf) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			memcpy(c->lastbuf, p, len);
			if (wire_decode(c->lastbuf, len, &c->last, err, errlen) != 0)
				return -1;
			c->have_last = 1;
			if (c->last.kind != WIRE_MSG_RESPONSE) {
				snprintf(err, errlen, "expected a response");
				return -1;
			}
			*resp = c->last.resp;
			return 0;
		}
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int pr = poll(&pfd, 1, timeout_ms);
		if (pr == 0) {
			snprintf(err, errlen, "timeout");
			return -1;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
		char buf[65536];
		ssize_t n = recv(c->fd, buf, sizeof buf, 0);
		if (n == 0) {
			snprintf(err, errlen, "connection closed");
			return -1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "recv: %s", strerror(errno));
			return -1;
		}
		if (frame_reader_feed(&c->fr, buf, (size_t)n) != 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
}

int wire_client_call(wire_client *c, wire_request *r, wire_response *resp, char *err, size_t errlen)
{
	if (wire_client_send(c, r) != 0) {
		snprintf(err, errlen, "send: %s", strerror(errno));
		return -1;
	}
	if (wire_client_recv(c, resp, -1, err, errlen) != 0)
		return -1;
	if (resp->id != r->id) {
		snprintf(err, errlen, "response id %llu for request %llu", (unsigned long long)resp->id,
			 (unsigned long long)r->id);
		return -1;
	}
	return 0;
}
