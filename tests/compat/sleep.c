/* nanosleep and clock_nanosleep (relative and absolute) sleep at least as long as asked. */
#include "check.h"
#include <time.h>

static long long now(void) {
    struct timespec t;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t) == 0);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

#define MS 1000000LL

int main(void) {
    struct timespec ten = {.tv_sec = 0, .tv_nsec = 10 * MS}, rem = {99, 99};
    long long t0 = now();
    CHECK(nanosleep(&ten, &rem) == 0);
    long long t1 = now();
    SHOW("nanosleep 10ms slept >= 10ms: %d", t1 - t0 >= 10 * MS);
    SHOW("nanosleep 10ms slept < 5s: %d", t1 - t0 < 5000 * MS);

    t0 = now();
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &ten, NULL) == 0);
    t1 = now();
    SHOW("clock_nanosleep relative >= 10ms: %d", t1 - t0 >= 10 * MS);

    struct timespec target;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &target) == 0);
    target.tv_nsec += 20 * MS;
    if (target.tv_nsec >= 1000000000L) {
        target.tv_sec++;
        target.tv_nsec -= 1000000000L;
    }
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, NULL) == 0);
    SHOW("clock_nanosleep absolute reached target: %d", now() >= target.tv_sec * 1000000000LL + target.tv_nsec);

    /* an absolute time in the past returns at once */
    t0 = now();
    struct timespec past = {.tv_sec = 1, .tv_nsec = 0};
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL) == 0);
    SHOW("absolute past returns quickly: %d", now() - t0 < 1000 * MS);

    struct timespec rt;
    CHECK(clock_gettime(CLOCK_REALTIME, &rt) == 0);
    rt.tv_nsec += 10 * MS;
    if (rt.tv_nsec >= 1000000000L) {
        rt.tv_sec++;
        rt.tv_nsec -= 1000000000L;
    }
    CHECK(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &rt, NULL) == 0);
    SHOW("clock_nanosleep REALTIME absolute ok");

    struct timespec zero = {0, 0};
    CHECK(nanosleep(&zero, NULL) == 0);
    SHOW("zero sleep ok");

    /* clock_nanosleep returns the error number instead of setting errno */
    struct timespec bad = {0, 1000000000L};
    SHOW("clock_nanosleep bad nsec -> %s", check_errname(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL)));
    SHOW("clock_nanosleep bad clock -> %s", check_errname(clock_nanosleep(99, 0, &ten, NULL)));
    SHOW("clock_nanosleep CPU clock -> %s",
         check_errname(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ten, NULL)));
    CHECK_ERRNO(nanosleep(&bad, NULL), EINVAL);
    return 0;
}
