/* sched_getaffinity and sched_yield. */
#include "check.h"
#include <sched.h>

int main(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    SHOW("at least one cpu: %d", CPU_COUNT(&set) >= 1);
    CPU_ZERO(&set);
    CHECK(sched_getaffinity(getpid(), sizeof set, &set) == 0);
    SHOW("by pid: at least one cpu: %d", CPU_COUNT(&set) >= 1);
    long r = syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
    SHOW("raw returns a positive multiple of 8: %d", r > 0 && r % 8 == 0);
    CHECK_ERRNO(syscall(SYS_sched_getaffinity, 0, 3, &set), EINVAL);
    CHECK_ERRNO(syscall(SYS_sched_getaffinity, 0, sizeof set, (void *)8), EFAULT);
    for (int i = 0; i < 100; i++)
        CHECK(sched_yield() == 0);
    SHOW("sched_yield x100 = 0");
    return 0;
}
