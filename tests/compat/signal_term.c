/* kill(getpid(), SIGTERM) with the default action ends the process (in a
 * child: the container's init is protected, see tests/debian.rs). */
#include "check.h"
#include <signal.h>
#include <sys/wait.h>

int main(void) {
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        SHOW("before kill");
        kill(getpid(), SIGTERM);
        SHOW("after kill?");
        _exit(0);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("child: signaled=%d sig=%d", WIFSIGNALED(st), WTERMSIG(st));
    return 0;
}
