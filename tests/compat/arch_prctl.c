/* arch_prctl ARCH_GET_FS / ARCH_SET_FS / ARCH_GET_GS: glibc has set up TLS. */
#include "check.h"
#include <asm/prctl.h>

static __thread int tls_var = 42;

int main(void) {
    unsigned long fs = 0, gs = 1;
    CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) == 0);
    SHOW("fs base nonzero: %d", fs != 0);
    unsigned long self;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
    SHOW("%%fs:0 (TCB self pointer) == fs base: %d", self == fs);
    SHOW("TLS variable: %d", tls_var);
    tls_var++;
    CHECK(syscall(SYS_arch_prctl, ARCH_SET_FS, fs) == 0);
    SHOW("TLS after ARCH_SET_FS to the same value: %d", tls_var);
    CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) == 0);
    SHOW("gs base: %lu", gs);
    CHECK_ERRNO(syscall(SYS_arch_prctl, ARCH_GET_FS, (void *)8), EFAULT);
    CHECK_ERRNO(syscall(SYS_arch_prctl, 0x7777, &fs), EINVAL);
    return 0;
}
