/* getrlimit and prlimit64 (values are inherited and differ, so only relations are printed). */
#include "check.h"
#include <sys/resource.h>

static void show(int res, const char *name) {
    struct rlimit a, b;
    CHECK(getrlimit(res, &a) == 0);
    CHECK(syscall(SYS_prlimit64, 0, res, NULL, &b) == 0);
    SHOW("%s: cur<=max %d, getrlimit==prlimit64 %d, cur>0 %d", name,
         a.rlim_max == RLIM_INFINITY || a.rlim_cur <= a.rlim_max,
         a.rlim_cur == b.rlim_cur && a.rlim_max == b.rlim_max, a.rlim_cur > 0);
    struct rlimit c;
    CHECK(syscall(SYS_prlimit64, getpid(), res, NULL, &c) == 0);
    CHECK(c.rlim_cur == a.rlim_cur);
}

int main(void) {
    show(RLIMIT_NOFILE, "NOFILE");
    show(RLIMIT_STACK, "STACK");
    show(RLIMIT_AS, "AS");
    show(RLIMIT_CORE, "CORE");
    struct rlimit r;
    CHECK(getrlimit(RLIMIT_NOFILE, &r) == 0);
    SHOW("NOFILE cur >= 64: %d", r.rlim_cur >= 64);
    CHECK_ERRNO(syscall(SYS_prlimit64, 0, 99, NULL, &r), EINVAL);
    CHECK_ERRNO(syscall(SYS_getrlimit, 99, &r), EINVAL);
    CHECK_ERRNO(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, (void *)8), EFAULT);
    return 0;
}
