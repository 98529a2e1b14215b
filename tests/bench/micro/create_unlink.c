/* create_unlink: per op, open(O_CREAT|O_EXCL|O_WRONLY) a new file in a
 * writable directory (argv[2]; in a container the harness's /scratch bind
 * mount of a host directory), write 4 KiB, close, unlink.  The name rotates
 * over 256, so consecutive ops never reuse one.  Nothing is left behind. */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>

#define CHUNK 4096
#define NAMES 256

static char buf[CHUNK];
static char names[NAMES][32];

static void one(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		BENCH_DIE(name);
	if (write(fd, buf, CHUNK) != CHUNK)
		BENCH_DIE("write");
	if (close(fd) != 0)
		BENCH_DIE("close");
	if (unlinkat(dfd, name, 0) != 0)
		BENCH_DIE("unlink");
}

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 20000);
	const char *dir = argc > 2 && argv[2][0] ? argv[2] : "/scratch";
	long w = bench_warmup(iters);

	memset(buf, 'c', sizeof buf);
	for (int i = 0; i < NAMES; i++)
		snprintf(names[i], sizeof names[i], "cu.%d.%03d", (int)getpid(), i);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		BENCH_DIE(dir);
	for (long i = 0; i < w; i++)
		one(dfd, names[i % NAMES]);
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++)
		one(dfd, names[i % NAMES]);
	double t1 = bench_now_ns();
	close(dfd);
	bench_report("create_unlink", t0, t1, iters);
	return 0;
}
