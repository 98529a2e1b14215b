/* kill(getpid(), SIGTERM) with the default action: exit 143. */
#include "check.h"
#include <signal.h>

int main(void) {
    SHOW("before kill");
    kill(getpid(), SIGTERM);
    SHOW("after kill?");
    return 0;
}
