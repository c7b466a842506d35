/*
 * localsock.h — the same-machine path to a shard: an abstract Unix socket
 * named after the shard's loopback TCP address.
 *
 * A shard that listens on a loopback address (127.0.0.0/8) also listens on
 * the abstract socket "\0shardlite-shard-HOST:PORT"; a router whose shard
 * address is loopback connects there first and falls back to TCP when
 * nobody answers.  Same frames, same protocol: only the kernel's cost per
 * message is lower (no TCP stack on either side).
 *
 * Contract:
 *  - Abstract names live in the network namespace and vanish with the
 *    process that bound them: no file to clean up, never stale.
 *  - Only loopback addresses get one (a shard reachable from elsewhere is
 *    not reachable this way from elsewhere either).
 *  - Both calls return a non-blocking, close-on-exec descriptor, or -1
 *    (errno set).
 */
#ifndef SHARDLITE_LOCALSOCK_H
#define SHARDLITE_LOCALSOCK_H

/* Is host a loopback IPv4 address (or "localhost")? */
int localsock_is_loopback(const char *host);

/* A listening socket for the shard at host:port (host must be loopback). */
int localsock_listen(const char *host, int port);

/* A connected socket to the shard at host:port, or -1 (not loopback, or no
 * shard process listens there). */
int localsock_connect(const char *host, int port);

#endif
