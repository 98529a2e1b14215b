/* fork_wait: fork a child that _exits at once, waitpid for it.  One op = the
 * whole cycle: address-space copy, child start and exit, reaping. */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

static void cycle(void)
{
	int status;
	pid_t pid = fork();
	if (pid < 0)
		BENCH_DIE("fork");
	if (pid == 0)
		_exit(0);
	if (waitpid(pid, &status, 0) != pid)
		BENCH_DIE("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child status %#x\n", status);
		exit(1);
	}
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
	bench_report("fork_wait", t0, t1, iters);
	return 0;
}
