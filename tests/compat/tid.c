/* set_tid_address, gettid, set_robust_list. */
#include "check.h"
#include <linux/futex.h>

int main(void) {
    static int ctid;
    long tid = syscall(SYS_set_tid_address, &ctid);
    SHOW("set_tid_address > 0: %d", tid > 0);
    SHOW("set_tid_address == getpid: %d", tid == getpid());
    SHOW("gettid == getpid: %d", syscall(SYS_gettid) == getpid());
    CHECK(syscall(SYS_set_tid_address, NULL) == tid);
    static struct robust_list_head head = {.list = {&head.list}, .futex_offset = 0, .list_op_pending = NULL};
    CHECK(syscall(SYS_set_robust_list, &head, sizeof head) == 0);
    CHECK_ERRNO(syscall(SYS_set_robust_list, &head, sizeof head + 1), EINVAL);
    SHOW("set_robust_list ok");
    return 0;
}
