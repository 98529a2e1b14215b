/* pread_4k: pread of 4 KiB at offset 0 of a 1 MiB file (page-cache hit):
 * the data path of a read through an open fd. */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>

#define CHUNK 4096

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 50000);
	const char *path = bench_file(argc, argv);
	long w = bench_warmup(iters);
	static char buf[CHUNK];

	int fd = open(path, O_RDONLY);
	if (fd < 0)
		BENCH_DIE(path);
	for (long i = 0; i < w; i++)
		if (pread(fd, buf, CHUNK, 0) != CHUNK)
			BENCH_DIE("pread (warm-up)");
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++)
		if (pread(fd, buf, CHUNK, 0) != CHUNK)
			BENCH_DIE("pread");
	double t1 = bench_now_ns();
	close(fd);
	bench_report("pread_4k", t0, t1, iters);
	return 0;
}
