/* umask round trip (the initial value is left unprinted: it is inherited). */
#include "check.h"

int main(void) {
    umask(022);
    SHOW("umask(077) returned %04o", (unsigned)umask(077));
    SHOW("umask(0) returned %04o", (unsigned)umask(0));
    SHOW("umask(07777) returned %04o", (unsigned)umask(07777));
    SHOW("umask(022) returned %04o (masked to 0777)", (unsigned)umask(022));
    SHOW("raw umask(002) returned %04lo", syscall(SYS_umask, 002));
    SHOW("raw umask(-1) returned %04lo", syscall(SYS_umask, -1));
    SHOW("final umask %04o", (unsigned)umask(022));
    return 0;
}
