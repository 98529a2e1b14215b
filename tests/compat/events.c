/* Event files: eventfd (counter and semaphore), epoll (level, edge and
 * one-shot triggering, errors, hang-up, wake-up by another process, closed
 * fds leaving the set), timerfd (relative, periodic, absolute, in epoll),
 * signalfd and sigtimedwait. */
#include "check.h"
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

static void eventfds(void) {
    int e = eventfd(3, EFD_NONBLOCK);
    CHECK(e >= 0);
    uint64_t v;
    CHECK(read(e, &v, 8) == 8);
    SHOW("eventfd read=%llu", (unsigned long long)v);
    CHECK_ERRNO(read(e, &v, 8), EAGAIN);
    CHECK_ERRNO(read(e, &v, 4), EINVAL);
    v = 0xffffffffffffffffULL;
    CHECK_ERRNO(write(e, &v, 8), EINVAL);
    v = 0xfffffffffffffffeULL;
    CHECK(write(e, &v, 8) == 8);
    v = 1;
    CHECK_ERRNO(write(e, &v, 8), EAGAIN);
    struct pollfd p = {e, POLLIN | POLLOUT, 0};
    int pr = poll(&p, 1, 0);
    SHOW("full eventfd poll=%d revents=%#x", pr, p.revents);
    close(e);

    int s = eventfd(2, EFD_SEMAPHORE | EFD_CLOEXEC);
    CHECK(s >= 0);
    CHECK(read(s, &v, 8) == 8);
    SHOW("semaphore read=%llu cloexec=%d", (unsigned long long)v, fcntl(s, F_GETFD));
    CHECK(read(s, &v, 8) == 8);
    struct stat st;
    CHECK(fstat(s, &st) == 0);
    SHOW("eventfd mode=%o", st.st_mode);
    SHOW("lseek on an eventfd=%ld", (long)lseek(s, 5, SEEK_SET));
    close(s);
    CHECK_ERRNO(eventfd(0, 0x80), EINVAL);
}

static int ready(int ep) {
    struct epoll_event ev[8];
    int n = epoll_wait(ep, ev, 8, 0);
    return n;
}

static void epolls(void) {
    CHECK_ERRNO(epoll_create(0), EINVAL);
    CHECK_ERRNO(epoll_create1(1), EINVAL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    int p[2];
    CHECK(pipe(p) == 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev), ENOENT);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL), ENOENT);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, 99, &ev), EBADF);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    CHECK_ERRNO(epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &ev), EINVAL);
    int reg = open("/prog", O_RDONLY);
    CHECK(reg >= 0);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev), EPERM);
    close(reg);
    CHECK_ERRNO(epoll_wait(ep, &ev, 0, 0), EINVAL);

    SHOW("empty pipe ready=%d", ready(ep));
    CHECK(write(p[1], "ab", 2) == 2);
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 1000);
    SHOW("level: n=%d events=%#x data=%llu", n, out[0].events, (unsigned long long)out[0].data.u64);
    SHOW("level again=%d", ready(ep));

    /* Edge-triggered: reported once per change. */
    ev.events = EPOLLIN | EPOLLET;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0);
    int first = ready(ep);
    SHOW("edge after mod=%d then=%d", first, ready(ep));
    CHECK(write(p[1], "c", 1) == 1);
    first = ready(ep);
    SHOW("edge after a write=%d then=%d", first, ready(ep));

    /* One-shot: disarmed until modified. */
    ev.events = EPOLLIN | EPOLLONESHOT;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0);
    first = ready(ep);
    SHOW("oneshot=%d then=%d", first, ready(ep));
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0);
    SHOW("oneshot rearmed=%d", ready(ep));

    /* Hang-up when the writer goes. */
    ev.events = EPOLLIN;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0);
    char buf[8];
    CHECK(read(p[0], buf, sizeof buf) == 3);
    close(p[1]);
    n = epoll_wait(ep, out, 4, 0);
    SHOW("after close of the writer: n=%d events=%#x", n, out[0].events);

    /* Closing the only fd of a file removes it from the set. */
    close(p[0]);
    SHOW("after close of the reader=%d", ready(ep));

    /* Woken by another process. */
    CHECK(pipe(p) == 0);
    ev.events = EPOLLIN;
    ev.data.u64 = 7;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
    pid_t c = fork();
    if (c == 0) {
        usleep(30000);
        CHECK(write(p[1], "z", 1) == 1);
        _exit(0);
    }
    n = epoll_wait(ep, out, 4, 5000);
    SHOW("woken by a child: n=%d data=%llu", n, (unsigned long long)out[0].data.u64);
    CHECK(waitpid(c, NULL, 0) == c);

    /* Many ready, few at a time: every fd gets its turn. */
    int efd[6];
    int ep2 = epoll_create1(0);
    for (int i = 0; i < 6; i++) {
        efd[i] = eventfd(1, 0);
        struct epoll_event e2 = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        CHECK(epoll_ctl(ep2, EPOLL_CTL_ADD, efd[i], &e2) == 0);
    }
    int seen = 0;
    for (int round = 0; round < 3; round++) {
        CHECK(epoll_wait(ep2, out, 2, 0) == 2);
        seen |= 1 << out[0].data.u32;
        seen |= 1 << out[1].data.u32;
    }
    SHOW("rotation saw all six=%d", seen == 0x3f);
    /* An epoll fd is itself pollable. */
    struct pollfd pf = {ep2, POLLIN, 0};
    int pr = poll(&pf, 1, 0);
    SHOW("poll of an epoll fd=%d revents=%#x", pr, pf.revents);
    for (int i = 0; i < 6; i++) close(efd[i]);
    close(ep2);
    close(ep);
}

static void timerfds(void) {
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    CHECK(t >= 0);
    CHECK_ERRNO(timerfd_create(12345, 0), EINVAL);
    struct itimerspec its = {.it_value = {0, 20 * 1000 * 1000}};
    CHECK(timerfd_settime(t, 0, &its, NULL) == 0);
    uint64_t n;
    CHECK(read(t, &n, 8) == 8);
    SHOW("one-shot expirations=%llu", (unsigned long long)n);
    struct itimerspec cur;
    CHECK(timerfd_gettime(t, &cur) == 0);
    SHOW("disarmed after expiry: %ld %ld", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

    its.it_value.tv_nsec = 10 * 1000 * 1000;
    its.it_interval.tv_nsec = 10 * 1000 * 1000;
    CHECK(timerfd_settime(t, 0, &its, NULL) == 0);
    usleep(55000);
    CHECK(read(t, &n, 8) == 8);
    SHOW("periodic: at least 4 expirations=%d", n >= 4);
    CHECK(timerfd_gettime(t, &cur) == 0);
    SHOW("interval kept=%ld", cur.it_interval.tv_nsec);
    struct itimerspec off = {0};
    struct itimerspec old;
    CHECK(timerfd_settime(t, 0, &off, &old) == 0);
    SHOW("old interval=%ld", old.it_interval.tv_nsec);
    close(t);

    /* Absolute time, nonblocking, in epoll. */
    t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    CHECK_ERRNO(read(t, &n, 8), EAGAIN);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec abs = {.it_value = now};
    abs.it_value.tv_nsec += 30 * 1000 * 1000;
    if (abs.it_value.tv_nsec >= 1000000000) {
        abs.it_value.tv_sec++;
        abs.it_value.tv_nsec -= 1000000000;
    }
    CHECK(timerfd_settime(t, TFD_TIMER_ABSTIME, &abs, NULL) == 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 9};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, t, &ev) == 0);
    int r = epoll_wait(ep, &ev, 1, 5000);
    SHOW("absolute timer in epoll: n=%d data=%llu", r, (unsigned long long)ev.data.u64);
    CHECK(read(t, &n, 8) == 8);
    SHOW("absolute expirations=%llu", (unsigned long long)n);
    close(ep);
    close(t);
}

static void signalfds(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    int s = signalfd(-1, &set, SFD_NONBLOCK);
    CHECK(s >= 0);
    struct signalfd_siginfo si;
    CHECK_ERRNO(read(s, &si, sizeof si), EAGAIN);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    struct pollfd p = {s, POLLIN, 0};
    SHOW("signalfd poll=%d", poll(&p, 1, 0));
    CHECK(read(s, &si, sizeof si) == sizeof si);
    SHOW("signalfd: signo=%u code=%d from me=%d", si.ssi_signo, si.ssi_code, si.ssi_pid == (uint32_t)getpid());
    CHECK_ERRNO(read(s, &si, 10), EINVAL);

    /* sigtimedwait: a timeout, then a pending signal. */
    struct timespec ts = {0, 10 * 1000 * 1000};
    CHECK_ERRNO(sigtimedwait(&set, NULL, &ts), EAGAIN);
    CHECK(kill(getpid(), SIGUSR2) == 0);
    siginfo_t info;
    int got = sigtimedwait(&set, &info, &ts);
    SHOW("sigtimedwait=%d code=%d", got, info.si_code);
    CHECK(raise(SIGUSR1) == 0);
    int sig = 0;
    CHECK(sigwait(&set, &sig) == 0);
    SHOW("sigwait=%d", sig);
    close(s);
    CHECK(sigprocmask(SIG_UNBLOCK, &set, NULL) == 0);
}

static void on_usr1(int sig) { (void)sig; }

static void pwait_mask(void) {
    /* epoll_pwait's mask lets a blocked signal in while it waits. */
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    sigset_t set, none;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigemptyset(&none);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    int ep = epoll_create1(0);
    struct epoll_event ev;
    CHECK_ERRNO(epoll_pwait(ep, &ev, 1, 5000, &none), EINTR);
    close(ep);
}

int main(void) {
    eventfds();
    epolls();
    timerfds();
    signalfds();
    pwait_mask();
    return 0;
}
