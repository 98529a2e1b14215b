/* Signal delivery to handlers: siginfo of raise/kill, blocking and
 * sigpending, SIG_IGN, SA_RESETHAND, SA_NODEFER, nested handlers,
 * sigsuspend with a pending signal, and the alternate stack. */
#include "check.h"
#include <signal.h>

static volatile int hits, last_sig, last_code, last_pid_ok, nested_depth, max_depth, calls;
static char altstack[65536];
static volatile int on_alt;

static void handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    hits++;
    last_sig = sig;
    last_code = si->si_code;
    last_pid_ok = si->si_pid == getpid();
}

static void alt_handler(int sig) {
    char local;
    (void)sig;
    on_alt = &local >= altstack && &local < altstack + sizeof altstack;
}

static void nest_handler(int sig) {
    nested_depth++;
    if (nested_depth > max_depth) max_depth = nested_depth;
    if (++calls < 3) raise(sig); /* SA_NODEFER: delivered at once */
    nested_depth--;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

    CHECK(raise(SIGUSR1) == 0);
    SHOW("raise: hits=%d sig=%d code=%d pid_ok=%d", hits, last_sig, last_code, last_pid_ok);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    SHOW("kill: hits=%d sig=%d code=%d pid_ok=%d", hits, last_sig, last_code, last_pid_ok);

    /* Blocked: stays pending until unblocked, then delivered at once. */
    sigset_t set, old, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &set, &old) == 0);
    CHECK(raise(SIGUSR1) == 0);
    SHOW("blocked: hits=%d", hits);
    CHECK(sigpending(&pend) == 0);
    SHOW("pending USR1=%d USR2=%d", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGUSR2));
    CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0);
    SHOW("unblocked: hits=%d", hits);

    /* Ignored signals vanish. */
    signal(SIGUSR2, SIG_IGN);
    CHECK(raise(SIGUSR2) == 0);
    SHOW("ignored USR2 survived");

    /* SA_RESETHAND: the handler runs once, then the action is SIG_DFL. */
    struct sigaction once = {0}, now;
    once.sa_sigaction = handler;
    once.sa_flags = SA_SIGINFO | SA_RESETHAND;
    CHECK(sigaction(SIGUSR2, &once, NULL) == 0);
    CHECK(raise(SIGUSR2) == 0);
    CHECK(sigaction(SIGUSR2, NULL, &now) == 0);
    SHOW("resethand: hits=%d now_default=%d", hits, now.sa_handler == SIG_DFL);

    /* SA_NODEFER lets a handler be re-entered. */
    struct sigaction nest = {0};
    nest.sa_handler = nest_handler;
    nest.sa_flags = SA_NODEFER;
    CHECK(sigaction(SIGHUP, &nest, NULL) == 0);
    CHECK(raise(SIGHUP) == 0);
    SHOW("nodefer depth=%d calls=%d", max_depth, calls);

    /* Without SA_NODEFER the signal is blocked inside its handler and
     * delivered again once it returns. */
    max_depth = 0;
    calls = 0;
    nest.sa_flags = 0;
    CHECK(sigaction(SIGHUP, &nest, NULL) == 0);
    CHECK(raise(SIGHUP) == 0);
    SHOW("deferred depth=%d calls=%d", max_depth, calls);

    /* sigsuspend returns EINTR after the handler of a pending signal. */
    CHECK(sigprocmask(SIG_BLOCK, &set, &old) == 0);
    CHECK(raise(SIGUSR1) == 0);
    sigset_t none;
    sigemptyset(&none);
    int before = hits;
    CHECK_ERRNO(sigsuspend(&none), EINTR);
    SHOW("sigsuspend ran handler=%d", hits == before + 1);
    sigset_t after;
    CHECK(sigprocmask(SIG_SETMASK, NULL, &after) == 0);
    SHOW("mask restored=%d", sigismember(&after, SIGUSR1));
    CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0);

    /* SA_ONSTACK runs the handler on the alternate stack. */
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    CHECK(sigaltstack(&ss, NULL) == 0);
    struct sigaction alt = {0};
    alt.sa_handler = alt_handler;
    alt.sa_flags = SA_ONSTACK;
    CHECK(sigaction(SIGWINCH, &alt, NULL) == 0);
    CHECK(raise(SIGWINCH) == 0);
    SHOW("on altstack=%d", on_alt);
    return 0;
}
