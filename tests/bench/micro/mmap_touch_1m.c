/* mmap_touch_1m: mmap 1 MiB anonymous private memory, write one byte to each
 * of its 256 4-KiB pages (256 page faults), munmap.  One op = the whole
 * cycle. */
#include "bench.h"
#include <sys/mman.h>

#define SIZE (1L << 20)
#define PAGE 4096L

static void cycle(void)
{
	char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		BENCH_DIE("mmap");
	for (long off = 0; off < SIZE; off += PAGE)
		((volatile char *)p)[off] = (char)off | 1;
	if (munmap(p, SIZE) != 0)
		BENCH_DIE("munmap");
}

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 2000);
	long w = bench_warmup(iters);

	for (long i = 0; i < w; i++)
		cycle();
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++)
		cycle();
	double t1 = bench_now_ns();
	bench_report("mmap_touch_1m", t0, t1, iters);
	return 0;
}
