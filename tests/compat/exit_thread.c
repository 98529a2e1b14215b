/* The raw exit syscall of the only thread ends the process with that status. */
#include "check.h"

int main(void) {
    SHOW("calling SYS_exit(7)");
    syscall(SYS_exit, 7);
    SHOW("still alive?!");
    return 0;
}
