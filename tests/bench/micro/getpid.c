/* getpid: cost of the cheapest real system call (raw syscall(SYS_getpid),
 * bypassing any libc caching). */
#include "bench.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 200000);
	long w = bench_warmup(iters);
	volatile long sink = 0;

	for (long i = 0; i < w; i++)
		sink += syscall(SYS_getpid);
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++)
		sink += syscall(SYS_getpid);
	double t1 = bench_now_ns();
	if (sink <= 0) {
		fprintf(stderr, "getpid returned nonsense\n");
		return 1;
	}
	bench_report("getpid", t0, t1, iters);
	return 0;
}
