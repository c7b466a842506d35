/*
 * failpoint.h — named points in coordinator and shard code where a test can
 * make the process crash or stall (docs/failpoints.md lists them).
 *
 * Armed by the environment variable SHARDLITE_FAILPOINTS, read once:
 *
 *   SHARDLITE_FAILPOINTS="name[=action][,name[=action]...]"
 *   action:  crash        _exit(77) at once, no cleanup (the default)
 *            delay:MS     sleep MS milliseconds, then go on
 *            crash-after:N  pass N times, crash at the N+1th
 *
 * Off (the variable unset) a failpoint costs one predictable branch.
 */
#ifndef SHARDLITE_FAILPOINT_H
#define SHARDLITE_FAILPOINT_H

extern int failpoints_armed;
void failpoint_hit(const char *name);

#define FAILPOINT(name)                       \
	do {                                  \
		if (failpoints_armed)         \
			failpoint_hit(name);  \
	} while (0)

/* Parse SHARDLITE_FAILPOINTS; call once at process start. */
void failpoints_init(void);

#endif
