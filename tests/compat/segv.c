/* Touching an unmapped address kills the process with SIGSEGV (exit status 139). */
#include "check.h"

int main(void) {
    SHOW("about to fault");
    volatile uintptr_t addr = 0x10;
    *(volatile int *)addr = 1;
    SHOW("survived the fault?!");
    return 0;
}
