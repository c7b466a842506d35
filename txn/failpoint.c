/*
 * failpoint.c — see failpoint.h.  The table is written once at start, then
 * only read (counters aside), so threads may hit failpoints freely.
 */
#include "txn/failpoint.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_FAILPOINTS 16

typedef struct {
	char name[64];
	enum { FP_CRASH, FP_DELAY, FP_CRASH_AFTER } action;
	long arg;
	atomic_long hits;
} failpoint;

int failpoints_armed;
static failpoint points[MAX_FAILPOINTS];
static int npoints;

void failpoints_init(void)
{
	const char *env = getenv("SHARDLITE_FAILPOINTS");
	if (!env || !*env)
		return;
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", env);
	for (char *tok = strtok(buf, ","); tok && npoints < MAX_FAILPOINTS; tok = strtok(NULL, ",")) {
		failpoint *fp = &points[npoints];
		char *eq = strchr(tok, '=');
		if (eq)
			*eq = 0;
		snprintf(fp->name, sizeof fp->name, "%s", tok);
		fp->action = FP_CRASH;
		if (eq && strncmp(eq + 1, "delay:", 6) == 0) {
			fp->action = FP_DELAY;
			fp->arg = atol(eq + 7);
		} else if (eq && strncmp(eq + 1, "crash-after:", 12) == 0) {
			fp->action = FP_CRASH_AFTER;
			fp->arg = atol(eq + 13);
		}
		npoints++;
	}
	failpoints_armed = npoints > 0;
	if (failpoints_armed)
		fprintf(stderr, "failpoints armed: %s\n", env);
}

void failpoint_hit(const char *name)
{
	for (int i = 0; i < npoints; i++) {
		failpoint *fp = &points[i];
		if (strcmp(fp->name, name) != 0)
			continue;
		long n = atomic_fetch_add(&fp->hits, 1);
		switch (fp->action) {
		case FP_DELAY: {
			struct timespec ts = {fp->arg / 1000, (fp->arg % 1000) * 1000000L};
			fprintf(stderr, "failpoint %s: delaying %ld ms\n", name, (long)fp->arg);
			nanosleep(&ts, NULL);
			return;
		}
		case FP_CRASH_AFTER:
			if (n < fp->arg)
				return;
			/* fall through */
		case FP_CRASH:
			fprintf(stderr, "failpoint %s: crashing\n", name);
			_exit(77);
		}
	}
}
