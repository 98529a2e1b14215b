/* pipe_throughput: the parent writes 64 KiB chunks into a pipe (default
 * capacity: 64 KiB), a forked child reads them with 64 KiB reads.  One op =
 * one 64 KiB chunk written and read, so MB/s = 65536e3 / ns_per_op.  The
 * child acknowledges on a second pipe once it has read everything, so the
 * time covers the reads too. */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK 65536L

static int data[2], ack[2];
static char buf[CHUNK];

/* Read exactly `bytes` from the data pipe; 0 on success. */
static int drain(long bytes)
{
	while (bytes > 0) {
		ssize_t n = read(data[0], buf, CHUNK);
		if (n <= 0)
			return -1;
		bytes -= n;
	}
	return 0;
}

static void child(long warm, long iters)
{
	char c = 'a';

	close(data[1]);
	close(ack[0]);
	if (drain(warm * CHUNK) != 0 || write(ack[1], &c, 1) != 1)
		_exit(1);
	if (drain(iters * CHUNK) != 0 || write(ack[1], &c, 1) != 1)
		_exit(1);
	_exit(0);
}

static void send_chunks(long chunks)
{
	char c;

	for (long i = 0; i < chunks; i++) {
		long off = 0;
		while (off < CHUNK) {
			ssize_t n = write(data[1], buf + off, CHUNK - off);
			if (n <= 0)
				BENCH_DIE("write");
			off += n;
		}
	}
	if (read(ack[0], &c, 1) != 1) {
		fprintf(stderr, "no acknowledgement from the reader\n");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 5000);
	long w = bench_warmup(iters);
	int status;

	memset(buf, 0x5a, sizeof(buf));
	if (pipe(data) != 0 || pipe(ack) != 0)
		BENCH_DIE("pipe");
	pid_t pid = fork();
	if (pid < 0)
		BENCH_DIE("fork");
	if (pid == 0)
		child(w, iters);
	close(data[0]);
	close(ack[1]);

	send_chunks(w);
	double t0 = bench_now_ns();
	send_chunks(iters);
	double t1 = bench_now_ns();

	if (waitpid(pid, &status, 0) != pid)
		BENCH_DIE("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "reader status %#x\n", status);
		return 1;
	}
	bench_report("pipe_throughput", t0, t1, iters);
	return 0;
}
