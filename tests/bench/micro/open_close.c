/* open_close: open(O_RDONLY) + close of an existing regular file: path
 * resolution, file-description setup and teardown. */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 20000);
	const char *path = bench_file(argc, argv);
	long w = bench_warmup(iters);

	for (long i = 0; i < w; i++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			BENCH_DIE(path);
		close(fd);
	}
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			BENCH_DIE(path);
		if (close(fd) != 0)
			BENCH_DIE("close");
	}
	double t1 = bench_now_ns();
	bench_report("open_close", t0, t1, iters);
	return 0;
}
