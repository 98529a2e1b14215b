/* A signal with the default action ends the process: abort() gives
 * SIGABRT (exit 134). Output before it must be flushed. */
#include "check.h"
#include <signal.h>

int main(void) {
    SHOW("before abort");
    signal(SIGCHLD, SIG_DFL);
    CHECK(raise(SIGCHLD) == 0); /* ignored by default */
    SHOW("SIGCHLD ignored");
    abort();
}
