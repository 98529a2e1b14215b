/* A signal with the default action ends the process: abort() gives
 * SIGABRT (wait status: signaled, core). It runs in a child: the
 * container's init itself is protected from default actions (as a PID
 * namespace's init is; tests/debian.rs checks it against runc). */
#include "check.h"
#include <signal.h>
#include <sys/wait.h>

int main(void) {
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        SHOW("before abort");
        signal(SIGCHLD, SIG_DFL);
        CHECK(raise(SIGCHLD) == 0); /* ignored by default */
        SHOW("SIGCHLD ignored");
        abort();
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("child: signaled=%d sig=%d", WIFSIGNALED(st), WTERMSIG(st));
    return 0;
}
