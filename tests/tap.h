/*
 * tap.h — the smallest TAP producer that serves this project's tests.
 *
 * Each test file is a program that prints a TAP stream read by automake's
 * tap-driver.sh.  ok() records one assertion; plan_done() prints the plan at
 * the end (TAP allows a trailing plan) and returns the exit status.
 * Invariant: every ok() prints exactly one "ok N"/"not ok N" line.
 */
#ifndef SHARDLITE_TAP_H
#define SHARDLITE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"), fflush(stdout))
#define bail(...) (printf("Bail out! "), printf(__VA_ARGS__), printf("\n"), fflush(stdout), exit(1))

static inline int plan_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
