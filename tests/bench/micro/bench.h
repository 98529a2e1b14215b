/* Shared helpers for Cordon's microbenchmarks (header-only, no libc extras).
 *
 * Every benchmark: argv[1] = iteration count (optional), argv[2] = data file
 * (optional, default /bench/file).  It runs a short untimed warm-up, then
 * times `iters` operations with CLOCK_MONOTONIC and prints exactly one line
 * "<name> <ns_per_op>" on stdout.  Exit status 0 on success, 1 on any error
 * (with a message on stderr).
 */
#ifndef CORDON_BENCH_H
#define CORDON_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_DEFAULT_FILE "/bench/file"

static inline long bench_iters(int argc, char **argv, long dflt)
{
	if (argc > 1 && argv[1][0] != '\0') {
		char *end;
		long n = strtol(argv[1], &end, 10);
		if (*end != '\0' || n <= 0) {
			fprintf(stderr, "bad iteration count: %s\n", argv[1]);
			exit(2);
		}
		return n;
	}
	return dflt;
}

static inline const char *bench_file(int argc, char **argv)
{
	return (argc > 2 && argv[2][0] != '\0') ? argv[2] : BENCH_DEFAULT_FILE;
}

static inline long bench_warmup(long iters)
{
	long w = iters / 10;
	return w < 1 ? 1 : w;
}

static inline double bench_now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		perror("clock_gettime");
		exit(1);
	}
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline void bench_report(const char *name, double t0, double t1, long iters)
{
	printf("%s %.3f\n", name, (t1 - t0) / (double)iters);
	fflush(stdout);
}

#define BENCH_DIE(what)                                                        \
	do {                                                                   \
		fprintf(stderr, "%s: %s\n", (what), strerror(errno));          \
		exit(1);                                                       \
	} while (0)

#endif
