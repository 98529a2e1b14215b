/* seq_read_256m: sequential read(2) of a whole file (argv[2], default
 * /bench/big: 256 MiB of non-zero bytes) in 1 MiB calls, from the start to
 * EOF; argv[1] is the number of passes over the file.  One op = 1 MiB read,
 * so the figure is ns per MiB and MB/s = 1048576e3 / ns_per_op.  Untimed
 * warm-up passes first (at least one), which also check that no byte read
 * is zero; the file is opened once and rewound per pass. */
#include "bench.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1L << 20)

static char *buf;

/* One pass from offset 0 to EOF; returns the bytes read.  check: fail on a
 * zero byte (the harness writes none; untimed passes only). */
static long long pass(int fd, const char *path, int check)
{
	long long total = 0;

	if (lseek(fd, 0, SEEK_SET) != 0)
		BENCH_DIE("lseek");
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0)
			BENCH_DIE(path);
		if (n == 0)
			return total;
		if (check && memchr(buf, 0, (size_t)n)) {
			fprintf(stderr, "%s: zero byte read near offset %lld\n",
				path, total);
			exit(1);
		}
		total += n;
	}
}

int main(int argc, char **argv)
{
	long passes = bench_iters(argc, argv, 8);
	const char *path = argc > 2 && argv[2][0] ? argv[2] : "/bench/big";
	long w = bench_warmup(passes);
	struct stat st;

	buf = malloc(CHUNK);
	if (!buf)
		BENCH_DIE("malloc");
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		BENCH_DIE(path);
	if (fstat(fd, &st) != 0)
		BENCH_DIE("fstat");
	if (st.st_size < CHUNK) {
		fprintf(stderr, "%s: %lld bytes, want at least 1 MiB\n", path,
			(long long)st.st_size);
		return 1;
	}
	for (long i = 0; i < w; i++)
		if (pass(fd, path, 1) != st.st_size) {
			fprintf(stderr, "%s: short pass (warm-up)\n", path);
			return 1;
		}
	double t0 = bench_now_ns();
	long long bytes = 0;
	for (long i = 0; i < passes; i++) {
		long long n = pass(fd, path, 0);
		if (n != st.st_size) {
			fprintf(stderr, "%s: pass read %lld bytes, file has %lld\n",
				path, n, (long long)st.st_size);
			return 1;
		}
		bytes += n;
	}
	double t1 = bench_now_ns();
	close(fd);
	free(buf);
	printf("seq_read_256m %.3f\n", (t1 - t0) / ((double)bytes / CHUNK));
	fflush(stdout);
	return 0;
}
