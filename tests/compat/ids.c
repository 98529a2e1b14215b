/* getuid and friends, getgroups, getpid/getppid/gettid relations. */
#include "check.h"
#include <grp.h>

int main(void) {
    SHOW("uid=%u euid=%u gid=%u egid=%u", getuid(), geteuid(), getgid(), getegid());
    int n = getgroups(0, NULL);
    SHOW("getgroups count=%d", n);
    gid_t g[64];
    CHECK(getgroups(64, g) == n);
    if (n > 1)
        CHECK_ERRNO(getgroups(1, g), EINVAL);
    CHECK_ERRNO(syscall(SYS_getgroups, -1, g), EINVAL);
    SHOW("getpid>0: %d", getpid() > 0);
    SHOW("getppid>=0: %d", getppid() >= 0);
    SHOW("gettid==getpid: %d", (pid_t)syscall(SYS_gettid) == getpid());
    SHOW("stable: %d", getpid() == getpid() && getppid() == getppid());
    return 0;
}
