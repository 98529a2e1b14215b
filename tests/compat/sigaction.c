/* rt_sigaction and rt_sigprocmask round trips (no signal is delivered). */
#include "check.h"
#include <signal.h>

static void handler(int sig) { (void)sig; }

int main(void) {
    struct sigaction sa, old;
    CHECK(sigaction(SIGUSR1, NULL, &old) == 0);
    SHOW("initial SIGUSR1 handler is SIG_DFL: %d", old.sa_handler == SIG_DFL);
    CHECK(sigaction(SIGPIPE, NULL, &old) == 0);
    SHOW("initial SIGPIPE handler is SIG_DFL: %d", old.sa_handler == SIG_DFL);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaddset(&sa.sa_mask, SIGTERM);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    memset(&old, 0, sizeof old);
    CHECK(sigaction(SIGUSR1, NULL, &old) == 0);
    SHOW("handler matches: %d", old.sa_handler == handler);
    SHOW("SA_RESTART=%d SA_NODEFER=%d SA_SIGINFO=%d", !!(old.sa_flags & SA_RESTART), !!(old.sa_flags & SA_NODEFER),
         !!(old.sa_flags & SA_SIGINFO));
    SHOW("mask: USR2=%d TERM=%d INT=%d", sigismember(&old.sa_mask, SIGUSR2), sigismember(&old.sa_mask, SIGTERM),
         sigismember(&old.sa_mask, SIGINT));

    /* SA_SIGINFO handlers and SIG_IGN */
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
    CHECK(sigaction(SIGUSR2, NULL, &old) == 0);
    SHOW("SIGUSR2 SA_SIGINFO=%d", !!(old.sa_flags & SA_SIGINFO));
    CHECK(signal(SIGINT, SIG_IGN) == SIG_DFL);
    CHECK(signal(SIGINT, SIG_DFL) == SIG_IGN);
    SHOW("SIG_IGN round trip ok");
    /* realtime signals */
    CHECK(sigaction(SIGRTMIN + 3, &sa, NULL) == 0);
    CHECK(sigaction(SIGRTMIN + 3, NULL, &old) == 0 && old.sa_handler == handler);

    CHECK_ERRNO(sigaction(SIGKILL, &sa, NULL), EINVAL);
    CHECK_ERRNO(sigaction(SIGSTOP, &sa, NULL), EINVAL);
    CHECK(sigaction(SIGKILL, NULL, &old) == 0); /* reading is allowed */
    CHECK_ERRNO(sigaction(0, &sa, NULL), EINVAL);
    CHECK_ERRNO(sigaction(65, &sa, NULL), EINVAL);

    /* sigprocmask */
    sigset_t set, cur;
    CHECK(sigprocmask(SIG_SETMASK, NULL, &cur) == 0);
    SHOW("initial mask empty: %d", sigisemptyset(&cur));
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGKILL);
    sigaddset(&set, SIGSTOP);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    CHECK(sigprocmask(SIG_SETMASK, NULL, &cur) == 0);
    SHOW("blocked: USR1=%d KILL=%d STOP=%d", sigismember(&cur, SIGUSR1), sigismember(&cur, SIGKILL),
         sigismember(&cur, SIGSTOP));
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK(sigprocmask(SIG_SETMASK, &set, &cur) == 0);
    SHOW("old had USR1: %d", sigismember(&cur, SIGUSR1));
    CHECK(sigprocmask(SIG_UNBLOCK, &set, &cur) == 0);
    SHOW("old had USR2: %d", sigismember(&cur, SIGUSR2));
    CHECK(sigprocmask(SIG_SETMASK, NULL, &cur) == 0);
    SHOW("final mask empty: %d", sigisemptyset(&cur));
    return 0;
}
