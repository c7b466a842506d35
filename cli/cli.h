/*
 * cli.h — subcommands implemented outside main.c.
 */
#ifndef SHARDLITE_CLI_H
#define SHARDLITE_CLI_H

/* `shardlite cluster start|stop|status --dir DIR [--shards N] [--port P]` */
int cli_cluster(int argc, char **argv);

#endif
