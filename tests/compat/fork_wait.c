/* fork, vfork, exit statuses, wait4/waitpid/waitid, getppid, copy-on-write
 * memory after fork, SIGCHLD, and killing a child. */
#include "check.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

static volatile int sigchld_seen;
static void on_chld(int sig) { (void)sig; sigchld_seen++; }

static int global = 5;

int main(void) {
    pid_t me = getpid();
    int st;

    /* Exit code and copy-on-write of a global. */
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        global = 99;
        _exit(getppid() == me ? 7 : 1);
    }
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("child exited=%d code=%d global=%d", WIFEXITED(st), WEXITSTATUS(st), global);

    /* A large private buffer: the child's writes stay its own. */
    size_t len = 4 << 20;
    unsigned char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(buf != MAP_FAILED);
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(i * 7);
    c = fork();
    if (c == 0) {
        for (size_t i = 0; i < len; i += 2) buf[i] = 0xEE;
        for (size_t i = 0; i < len; i += 2) if (buf[i] != 0xEE) _exit(2);
        for (size_t i = 1; i < len; i += 2) if (buf[i] != (unsigned char)(i * 7)) _exit(3);
        _exit(0);
    }
    /* The parent writes too while the child runs. */
    for (size_t i = 1; i < len; i += 4096) buf[i] = (unsigned char)(i * 7);
    CHECK(waitpid(c, &st, 0) == c);
    int same = 1;
    for (size_t i = 0; i < len; i++) if (buf[i] != (unsigned char)(i * 7)) { same = 0; break; }
    SHOW("cow child=%d parent intact=%d", WEXITSTATUS(st), same);

    /* Shared anonymous memory stays shared. */
    int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    *shared = 1;
    c = fork();
    if (c == 0) { *shared = 42; _exit(0); }
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("shared after child=%d", *shared);

    /* Killed by a signal. */
    c = fork();
    if (c == 0) { raise(SIGTERM); _exit(1); }
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("signaled=%d sig=%d", WIFSIGNALED(st), WTERMSIG(st));

    /* WNOHANG on a running child, then SIGKILL it. */
    c = fork();
    if (c == 0) { struct timespec ts = {30, 0}; nanosleep(&ts, NULL); _exit(0); }
    CHECK(waitpid(c, &st, WNOHANG) == 0);
    CHECK(kill(c, SIGKILL) == 0);
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("killed sig=%d", WTERMSIG(st));

    /* SIGCHLD reaches the parent's handler. */
    signal(SIGCHLD, on_chld);
    c = fork();
    if (c == 0) _exit(0);
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("sigchld seen=%d", sigchld_seen > 0);

    /* Many children, reaped in any order. */
    for (int i = 0; i < 20; i++) {
        c = fork();
        if (c == 0) _exit(i);
    }
    int sum = 0;
    for (int i = 0; i < 20; i++) {
        CHECK(wait(&st) > 0);
        sum += WEXITSTATUS(st);
    }
    SHOW("20 children, codes sum=%d", sum);
    CHECK_ERRNO(wait(&st), ECHILD);

    /* waitid with WEXITED. */
    c = fork();
    if (c == 0) _exit(3);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, c, &si, WEXITED) == 0);
    SHOW("waitid code=%d status=%d pid_ok=%d", si.si_code, si.si_status, si.si_pid == c);

    /* vfork: the child shares memory until it exits. */
    volatile int v = 0;
    c = vfork();
    if (c == 0) { v = 11; _exit(4); }
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("vfork v=%d code=%d", v, WEXITSTATUS(st));

    /* Process groups and sessions. */
    c = fork();
    if (c == 0) {
        pid_t s = setsid();
        _exit(s == getpid() && getpgrp() == getpid() ? 0 : 1);
    }
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("setsid in child ok=%d", WEXITSTATUS(st) == 0);
    return 0;
}
