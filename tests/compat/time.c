/* clock_gettime, clock_getres, gettimeofday, time: monotonicity and sane ranges. */
#include "check.h"
#include <sys/time.h>
#include <time.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(void) {
    static const struct {
        clockid_t id;
        const char *name;
    } clocks[] = {
        {CLOCK_REALTIME, "REALTIME"},       {CLOCK_MONOTONIC, "MONOTONIC"},
        {CLOCK_BOOTTIME, "BOOTTIME"},       {CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW"},
        {CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME"}, {CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME"},
    };
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        struct timespec a, b, r;
        CHECK(clock_gettime(clocks[i].id, &a) == 0);
        CHECK(a.tv_nsec >= 0 && a.tv_nsec < 1000000000L);
        int mono = 1;
        for (int k = 0; k < 1000; k++) {
            CHECK(clock_gettime(clocks[i].id, &b) == 0);
            if (clocks[i].id != CLOCK_REALTIME)
                mono &= ns(b) >= ns(a);
            a = b;
        }
        CHECK(clock_getres(clocks[i].id, &r) == 0);
        SHOW("%s: non-decreasing=%d res=%lds+%ldns", clocks[i].name, mono, (long)r.tv_sec, r.tv_nsec);
        /* raw syscall agrees (no vDSO) */
        CHECK(syscall(SYS_clock_gettime, clocks[i].id, &b) == 0);
        CHECK(syscall(SYS_clock_getres, clocks[i].id, &r) == 0);
    }
    struct timespec rt, mono;
    CHECK(clock_gettime(CLOCK_REALTIME, &rt) == 0);
    SHOW("realtime after 2020 and before 2100: %d", rt.tv_sec > 1577836800L && rt.tv_sec < 4102444800L);
    CHECK(clock_gettime(CLOCK_MONOTONIC, &mono) == 0);
    SHOW("monotonic > 0: %d", ns(mono) > 0);
    struct timespec boot;
    CHECK(clock_gettime(CLOCK_BOOTTIME, &boot) == 0);
    SHOW("boottime >= monotonic (approximately): %d", ns(boot) + 1000000000LL >= ns(mono));

    struct timeval tv;
    CHECK(gettimeofday(&tv, NULL) == 0);
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    SHOW("gettimeofday within 2s of CLOCK_REALTIME: %d", tv.tv_sec >= rt.tv_sec && tv.tv_sec <= rt.tv_sec + 2);
    CHECK(syscall(SYS_gettimeofday, &tv, NULL) == 0);
    CHECK(syscall(SYS_gettimeofday, NULL, NULL) == 0);
    time_t t1 = time(NULL), t2 = 0;
    CHECK(time(&t2) >= t1 && t2 >= t1);
    SHOW("time() within 2s of CLOCK_REALTIME: %d", t1 >= rt.tv_sec && t1 <= rt.tv_sec + 2);
    long raw = syscall(SYS_time, NULL);
    SHOW("raw time() sane: %d", raw >= t1 && raw <= t1 + 2);

    /* CPU time advances when we burn CPU */
    struct timespec c0, c1;
    CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0) == 0);
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 30000000UL; i++)
        x += i;
    CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1) == 0);
    SHOW("process CPU time advanced: %d", ns(c1) > ns(c0));
    CHECK_ERRNO(clock_gettime(1234, &c0), EINVAL);
    return 0;
}
