/* POSIX timers: timer_create with the default SIGALRM, one-shot and
 * periodic expiries, absolute times, gettime, overruns while the signal
 * is blocked, SIGEV_THREAD_ID to one thread, SIGEV_THREAD (glibc's helper
 * thread), delete; and that exec deletes them. */
#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <time.h>

static volatile int alarm_code, alarm_value, alarms;
static void on_alarm(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    alarm_code = si->si_code;
    alarm_value = si->si_value.sival_int;
    alarms++;
}

static volatile pid_t usr1_tid;
static void on_usr1(int sig) {
    (void)sig;
    usr1_tid = gettid();
}

static volatile pid_t worker_tid;
static void *worker(void *arg) {
    (void)arg;
    worker_tid = gettid();
    while (!usr1_tid) usleep(1000);
    return NULL;
}

static volatile int thread_calls;
static void on_thread_timer(union sigval v) { thread_calls += v.sival_int; }

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_alarm;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);

    timer_t t;
    CHECK(timer_create(CLOCK_MONOTONIC, NULL, &t) == 0);
    struct itimerspec its = {.it_value = {0, 20 * 1000 * 1000}};
    CHECK(timer_settime(t, 0, &its, NULL) == 0);
    struct itimerspec cur;
    CHECK(timer_gettime(t, &cur) == 0);
    SHOW("armed: left>0=%d", cur.it_value.tv_sec > 0 || cur.it_value.tv_nsec > 0);
    while (!alarms) pause();
    SHOW("one-shot: code=%d (SI_TIMER=%d) value=%d", alarm_code, SI_TIMER, alarm_value);
    CHECK(timer_gettime(t, &cur) == 0);
    SHOW("after expiry: %ld %ld", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

    /* Periodic, counted with sigwaitinfo. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    its.it_value.tv_nsec = 5 * 1000 * 1000;
    its.it_interval.tv_nsec = 5 * 1000 * 1000;
    CHECK(timer_settime(t, 0, &its, NULL) == 0);
    int got = 0;
    siginfo_t si;
    while (got < 5) {
        CHECK(sigwaitinfo(&set, &si) == SIGALRM);
        got++;
    }
    SHOW("periodic: %d expirations, code=%d", got, si.si_code);
    /* Blocked and not waited for: expiries become overruns. */
    usleep(60000);
    CHECK(sigwaitinfo(&set, &si) == SIGALRM);
    SHOW("overrun after 60ms blocked >= 5: %d", si.si_overrun >= 5);
    struct itimerspec off = {0}, old;
    CHECK(timer_settime(t, 0, &off, &old) == 0);
    SHOW("old interval=%ld", old.it_interval.tv_nsec);
    CHECK(sigprocmask(SIG_UNBLOCK, &set, NULL) == 0);

    /* Absolute time. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    its = (struct itimerspec){.it_value = now};
    its.it_value.tv_nsec += 20 * 1000 * 1000;
    if (its.it_value.tv_nsec >= 1000000000) {
        its.it_value.tv_sec++;
        its.it_value.tv_nsec -= 1000000000;
    }
    alarms = 0;
    CHECK(timer_settime(t, TIMER_ABSTIME, &its, NULL) == 0);
    while (!alarms) pause();
    SHOW("absolute: fired=%d", alarms);
    CHECK(timer_delete(t) == 0);
    CHECK_ERRNO(timer_settime(t, 0, &its, NULL), EINVAL);
    CHECK_ERRNO(timer_create(12345, NULL, &t), EINVAL);

    /* To one thread. */
    signal(SIGUSR1, on_usr1);
    pthread_t w;
    CHECK(pthread_create(&w, NULL, worker, NULL) == 0);
    while (!worker_tid) usleep(1000);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR1;
    ev._sigev_un._tid = worker_tid;
    CHECK(timer_create(CLOCK_REALTIME, &ev, &t) == 0);
    its = (struct itimerspec){.it_value = {0, 10 * 1000 * 1000}};
    CHECK(timer_settime(t, 0, &its, NULL) == 0);
    CHECK(pthread_join(w, NULL) == 0);
    SHOW("SIGEV_THREAD_ID went to that thread=%d", usr1_tid == worker_tid);
    CHECK(timer_delete(t) == 0);

    /* SIGEV_THREAD: glibc runs the function in a thread of its own. */
    ev = (struct sigevent){0};
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = on_thread_timer;
    ev.sigev_value.sival_int = 7;
    CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0);
    its = (struct itimerspec){.it_value = {0, 10 * 1000 * 1000}};
    CHECK(timer_settime(t, 0, &its, NULL) == 0);
    for (int i = 0; i < 500 && !thread_calls; i++) usleep(2000);
    SHOW("SIGEV_THREAD callback got %d", thread_calls);
    CHECK(timer_delete(t) == 0);
    return 0;
}
