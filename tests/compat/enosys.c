/* Unknown syscall numbers fail with ENOSYS. */
#include "check.h"

int main(void) {
    CHECK_ERRNO(syscall(1000), ENOSYS);
    CHECK_ERRNO(syscall(400), ENOSYS);
    CHECK_ERRNO(syscall(100000), ENOSYS);
    CHECK_ERRNO(syscall(-1), ENOSYS);
    CHECK_ERRNO(syscall(0x40000000 | 1000), ENOSYS); /* x32 bit with a bad number */
    SHOW("still running after unknown syscalls");
    return 0;
}
