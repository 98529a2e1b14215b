/* readdir_10k: opendir + readdir to the end + closedir of a directory of
 * 10,000 empty files (argv[2], default /bench/dir10k, built by the harness).
 * One op = one complete listing; every listing must see all 10,000 entries
 * (plus . and ..). */
#include "bench.h"
#include <dirent.h>

#define ENTRIES 10000

static long list(const char *path)
{
	DIR *d = opendir(path);
	long n = 0;

	if (!d)
		BENCH_DIE(path);
	errno = 0;
	while (readdir(d))
		n++;
	if (errno)
		BENCH_DIE("readdir");
	closedir(d);
	if (n != ENTRIES + 2) {
		fprintf(stderr, "%s: %ld entries, want %d (with . and ..)\n",
			path, n, ENTRIES + 2);
		exit(1);
	}
	return n;
}

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 200);
	const char *path = argc > 2 && argv[2][0] ? argv[2] : "/bench/dir10k";
	long w = bench_warmup(iters);

	for (long i = 0; i < w; i++)
		list(path);
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++)
		list(path);
	double t1 = bench_now_ns();
	bench_report("readdir_10k", t0, t1, iters);
	return 0;
}
