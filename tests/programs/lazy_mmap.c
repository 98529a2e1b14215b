/* lazy_mmap FILE: a private mapping of a large file costs the sandbox only
 * the pages the program touches.  Maps FILE (64 MiB, with byte i+1 at
 * offset i * 32 MiB - i for i = 0, 1, 2) privately, reads those three bytes,
 * then every page, and prints how the sandbox's memory (memory.current of
 * its cgroup, mounted at /sys/fs/cgroup) grew after each step. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (64L << 20)

static long memory_current(void)
{
	FILE *f = fopen("/sys/fs/cgroup/memory.current", "r");
	long v = -1;
	if (!f || fscanf(f, "%ld", &v) != 1)
		return -1;
	fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		return 3;
	long before = memory_current();
	volatile unsigned char *m = mmap(NULL, SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED || before < 0)
		return 4;
	printf("bytes %d %d %d\n", m[0], m[(32L << 20) - 1], m[(64L << 20) - 2]);
	fflush(stdout);
	long three = memory_current();
	unsigned long sum = 0;
	for (long at = 0; at < SIZE; at += 4096)
		sum += m[at];
	long all = memory_current();
	fprintf(stderr, "memory.current: before %ld, after three bytes %ld, after every page %ld\n", before, three,
		all);
	printf("sum %lu\n", sum);
	printf("three pages cost under 1 MiB: %d\n", three - before < (1L << 20));
	printf("every page costs over 60 MiB: %d\n", all - before > (60L << 20));
	return 0;
}
