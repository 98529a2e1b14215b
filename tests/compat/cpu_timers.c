/* ITIMER_VIRTUAL and ITIMER_PROF: signals after CPU time used (a busy
 * loop), one-shot and periodic; getitimer while armed; disarming. */
#include "check.h"
#include <signal.h>
#include <sys/time.h>
#include <time.h>

static volatile int vt, prof;
static void on_vt(int s) { (void)s; vt++; }
static void on_prof(int s) { (void)s; prof++; }

static long cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void) {
    signal(SIGVTALRM, on_vt);
    signal(SIGPROF, on_prof);
    struct itimerval it = {.it_value = {0, 50000}};
    long start = cpu_ms();
    CHECK(setitimer(ITIMER_VIRTUAL, &it, NULL) == 0);
    struct itimerval cur;
    CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0);
    /* (Linux adds a tick to the value, so only "armed" is compared.) */
    SHOW("armed: left>0=%d", cur.it_value.tv_usec > 0 || cur.it_value.tv_sec > 0);
    while (!vt && cpu_ms() - start < 5000) {
    }
    long used = cpu_ms() - start;
    SHOW("ITIMER_VIRTUAL fired=%d after at least 45ms of CPU=%d", vt, used >= 45);
    CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0);
    SHOW("then disarmed: %ld %ld", (long)cur.it_value.tv_sec, (long)cur.it_value.tv_usec);

    struct itimerval periodic = {.it_value = {0, 10000}, .it_interval = {0, 10000}};
    CHECK(setitimer(ITIMER_PROF, &periodic, NULL) == 0);
    start = cpu_ms();
    while (prof < 5 && cpu_ms() - start < 5000) {
    }
    struct itimerval off = {0}, old;
    CHECK(setitimer(ITIMER_PROF, &off, &old) == 0);
    SHOW("ITIMER_PROF periodic: 5 signals=%d interval=%ld", prof >= 5, (long)old.it_interval.tv_usec);
    int before = prof;
    start = cpu_ms();
    while (cpu_ms() - start < 30) {
    }
    SHOW("none after disarming=%d", prof == before);
    CHECK_ERRNO(setitimer(7, &it, NULL), EINVAL);
    return 0;
}
