/*
 * cli.h — subcommands implemented outside main.c.
 */
#ifndef SHARDLITE_CLI_H
#define SHARDLITE_CLI_H

/* `shardlite cluster start|stop|status --dir DIR [--shards N] [--port P]` */
int cli_cluster(int argc, char **argv);

/* The whole of s as a decimal number in [lo, hi] into *out: 0, or -1
 * (nothing stored) if it is not one: "4x", "", "-" and out-of-range
 * values are refused, where atoi() would take 4, 0, 0 and overflow. */
int cli_int(const char *s, long lo, long hi, int *out);

#endif
