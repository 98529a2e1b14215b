/* pipe_pingpong: a parent and a forked child bounce one byte over two pipes.
 * One op = one round trip: parent write, child read + write, parent read
 * (two wake-ups of a blocked reader). */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

static int to_child[2], to_parent[2];

static void child(void)
{
	char c;
	ssize_t n;

	close(to_child[1]);
	close(to_parent[0]);
	while ((n = read(to_child[0], &c, 1)) == 1)
		if (write(to_parent[1], &c, 1) != 1)
			_exit(1);
	_exit(n == 0 ? 0 : 1);          /* EOF: the parent is done */
}

static void round_trip(void)
{
	char c = 'x';
	if (write(to_child[1], &c, 1) != 1)
		BENCH_DIE("write");
	if (read(to_parent[0], &c, 1) != 1)
		BENCH_DIE("read");
}

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 10000);
	long w = bench_warmup(iters);
	int status;

	if (pipe(to_child) != 0 || pipe(to_parent) != 0)
		BENCH_DIE("pipe");
	pid_t pid = fork();
	if (pid < 0)
		BENCH_DIE("fork");
	if (pid == 0)
		child();
	close(to_child[0]);
	close(to_parent[1]);

	for (long i = 0; i < w; i++)
		round_trip();
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++)
		round_trip();
	double t1 = bench_now_ns();

	close(to_child[1]);
	if (waitpid(pid, &status, 0) != pid)
		BENCH_DIE("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child status %#x\n", status);
		return 1;
	}
	bench_report("pipe_pingpong", t0, t1, iters);
	return 0;
}
