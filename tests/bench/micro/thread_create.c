/* thread_create: pthread_create a thread that returns at once, pthread_join
 * it.  One op = the whole cycle: clone, thread start and exit, the join's
 * futex wake-up (glibc reuses the cached stack after the first thread). */
#include "bench.h"
#include <pthread.h>

static char token;

static void *nothing(void *arg)
{
	return arg;
}

static void cycle(void)
{
	pthread_t t;
	void *ret;
	int err = pthread_create(&t, NULL, nothing, &token);
	if (err != 0) {
		errno = err;
		BENCH_DIE("pthread_create");
	}
	err = pthread_join(t, &ret);
	if (err != 0) {
		errno = err;
		BENCH_DIE("pthread_join");
	}
	if (ret != &token) {
		fprintf(stderr, "thread returned %p\n", ret);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 5000);
	long w = bench_warmup(iters);

	for (long i = 0; i < w; i++)
		cycle();
	double t0 = bench_now_ns();
	for (long i = 0; i < iters; i++)
		cycle();
	double t1 = bench_now_ns();
	bench_report("thread_create", t0, t1, iters);
	return 0;
}
