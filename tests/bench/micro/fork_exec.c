/* fork_exec: fork, execve a tiny static program that exits 0 at once
 * (argv[2], default /bench/true; natively the harness passes bench/true,
 * relative to the rootfs it runs in), waitpid.  One op = the whole cycle:
 * fork, exec and ELF load, exit, reaping. */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

static void cycle(const char *prog)
{
	int status;
	pid_t pid = fork();
	if (pid < 0)
		BENCH_DIE("fork");
	if (pid == 0) {
		char *const args[] = {(char *)prog, NULL};
		char *const env[] = {NULL};
		execve(prog, args, env);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		BENCH_DIE("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: child status %#x%s\n", prog, status,
			WIFEXITED(status) && WEXITSTATUS(status) == 127 ?
				" (execve failed)" : "");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 500);
	const char *prog = (argc > 2 && argv[2][0] != '\0') ? argv[2] : "/bench/true";
	long w = bench_warmup(iters);

	for (long i = 0; i < w; i++)
		cycle(prog);
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++)
		cycle(prog);
	double t1 = bench_now_ns();
	bench_report("fork_exec", t0, t1, iters);
	return 0;
}
