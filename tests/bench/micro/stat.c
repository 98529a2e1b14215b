/* stat: stat(2) of an existing regular file (argv[2], default /bench/file):
 * path resolution and attribute lookup, no file description. */
#include "bench.h"
#include <sys/stat.h>

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 100000);
	const char *path = bench_file(argc, argv);
	long w = bench_warmup(iters);
	struct stat st;

	for (long i = 0; i < w; i++)
		if (stat(path, &st) != 0)
			BENCH_DIE(path);
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		fprintf(stderr, "%s: not a non-empty regular file\n", path);
		return 1;
	}
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++)
		if (stat(path, &st) != 0)
			BENCH_DIE(path);
	double t1 = bench_now_ns();
	bench_report("stat", t0, t1, iters);
	return 0;
}
