/* sysinfo returns sane values. */
#include "check.h"
#include <sys/sysinfo.h>

int main(void) {
    struct sysinfo si;
    memset(&si, 0xff, sizeof si);
    CHECK(sysinfo(&si) == 0);
    SHOW("uptime >= 0: %d", si.uptime >= 0);
    SHOW("totalram > 0: %d", si.totalram > 0);
    SHOW("freeram <= totalram: %d", si.freeram <= si.totalram);
    SHOW("mem_unit >= 1: %d", si.mem_unit >= 1);
    SHOW("totalram >= 16 MiB: %d", (unsigned long long)si.totalram * si.mem_unit >= 16ULL << 20);
    SHOW("procs >= 1: %d", si.procs >= 1);
    SHOW("freeswap <= totalswap: %d", si.freeswap <= si.totalswap);
    CHECK_ERRNO(sysinfo((struct sysinfo *)8), EFAULT);
    return 0;
}
