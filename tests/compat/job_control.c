/* Job control: stop and continue signals with their wait statuses
 * (WUNTRACED, WCONTINUED, waitid CLD_STOPPED/CLD_CONTINUED, WNOWAIT),
 * SIGCHLD codes and SA_NOCLDSTOP, a stopped child killed, a child that
 * stops itself, handled SIGTSTP; CPU time of children in wait4's rusage
 * and getrusage(RUSAGE_CHILDREN). */
#include "check.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

static volatile int chld_codes[8];
static volatile int nchld;
static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    if (nchld < 8) chld_codes[nchld++] = si->si_code;
}

static pid_t spawn_pauser(void) {
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        for (;;) pause();
    }
    return c;
}

static void wait_chld(int n) {
    for (int i = 0; i < 500 && nchld < n; i++) usleep(2000);
}

static volatile int tstp_handled;
static void on_tstp(int sig) { (void)sig; tstp_handled = 1; }

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);

    pid_t c = spawn_pauser();
    int st;
    CHECK(kill(c, SIGSTOP) == 0);
    CHECK(waitpid(c, &st, WUNTRACED) == c);
    SHOW("stopped=%d sig=%d", WIFSTOPPED(st), WSTOPSIG(st));
    CHECK(waitpid(c, &st, WUNTRACED | WNOHANG) == 0);
    wait_chld(1);
    CHECK(kill(c, SIGCONT) == 0);
    CHECK(waitpid(c, &st, WCONTINUED) == c);
    SHOW("continued=%d", WIFCONTINUED(st));
    wait_chld(2);
    SHOW("SIGCHLD codes: %d %d", chld_codes[0], chld_codes[1]);

    /* waitid sees the same; WNOWAIT leaves it to be seen again. */
    CHECK(kill(c, SIGTSTP) == 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, c, &si, WSTOPPED | WNOWAIT) == 0);
    SHOW("waitid: code=%d status=%d", si.si_code, si.si_status);
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, c, &si, WSTOPPED) == 0);
    SHOW("waitid again: code=%d status=%d", si.si_code, si.si_status);
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, c, &si, WSTOPPED | WNOHANG) == 0);
    SHOW("waitid once reported: pid=%d", si.si_pid);
    /* A stopped process dies of SIGKILL. */
    CHECK(kill(c, SIGKILL) == 0);
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("killed while stopped: signaled=%d sig=%d", WIFSIGNALED(st), WTERMSIG(st));

    /* A child that stops itself, then goes on when continued. */
    c = fork();
    if (c == 0) {
        raise(SIGSTOP);
        _exit(3);
    }
    CHECK(waitpid(c, &st, WUNTRACED) == c);
    SHOW("self-stopped=%d sig=%d", WIFSTOPPED(st), WSTOPSIG(st));
    CHECK(kill(c, SIGCONT) == 0);
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("then exited=%d code=%d", WIFEXITED(st), WEXITSTATUS(st));

    /* SA_NOCLDSTOP: no SIGCHLD for stops. */
    sa.sa_flags |= SA_NOCLDSTOP;
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
    nchld = 0;
    c = spawn_pauser();
    CHECK(kill(c, SIGSTOP) == 0);
    CHECK(waitpid(c, &st, WUNTRACED) == c);
    usleep(20000);
    SHOW("SIGCHLDs with SA_NOCLDSTOP: %d", nchld);
    CHECK(kill(c, SIGKILL) == 0);
    CHECK(waitpid(c, &st, 0) == c);

    /* A handled SIGTSTP does not stop. */
    c = fork();
    if (c == 0) {
        signal(SIGTSTP, on_tstp);
        raise(SIGTSTP);
        _exit(tstp_handled ? 4 : 5);
    }
    CHECK(waitpid(c, &st, WUNTRACED) == c);
    SHOW("handled SIGTSTP: exited=%d code=%d", WIFEXITED(st), WEXITSTATUS(st));

    /* A sleep and a blocked read go on across a stop and a continue
     * (restart_syscall / restart without a handler). */
    int pp[2];
    CHECK(pipe(pp) == 0);
    c = fork();
    if (c == 0) {
        struct timespec ts = {0, 150 * 1000 * 1000}, a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int r = nanosleep(&ts, NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        char ch;
        ssize_t n = read(pp[0], &ch, 1);
        _exit(r == 0 && ms >= 140 && n == 1 ? 0 : 1);
    }
    usleep(40000);
    CHECK(kill(c, SIGSTOP) == 0);
    CHECK(waitpid(c, &st, WUNTRACED) == c);
    usleep(20000);
    CHECK(kill(c, SIGCONT) == 0);
    usleep(150000);
    CHECK(kill(c, SIGSTOP) == 0);
    CHECK(waitpid(c, &st, WUNTRACED) == c);
    CHECK(kill(c, SIGCONT) == 0);
    CHECK(write(pp[1], "x", 1) == 1);
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("sleep and read across stops: exited=%d code=%d", WIFEXITED(st), WEXITSTATUS(st));

    /* Children's CPU time. */
    c = fork();
    if (c == 0) {
        struct timespec a, b;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        do {
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 60000000L);
        _exit(0);
    }
    struct rusage ru;
    CHECK(wait4(c, &st, 0, &ru) == c);
    long us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    SHOW("wait4 rusage: at least 50ms of CPU=%d", us >= 50000);
    CHECK(getrusage(RUSAGE_CHILDREN, &ru) == 0);
    us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    SHOW("RUSAGE_CHILDREN: at least 50ms=%d", us >= 50000);
    return 0;
}
