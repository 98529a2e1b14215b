/* sigaltstack set/get round trip. */
#include "check.h"
#include <signal.h>

int main(void) {
    stack_t cur;
    CHECK(sigaltstack(NULL, &cur) == 0);
    SHOW("initial: flags=%s size=%zu", cur.ss_flags == SS_DISABLE ? "SS_DISABLE" : "other", cur.ss_size);

    static char mem[65536];
    stack_t ss = {.ss_sp = mem, .ss_size = sizeof mem, .ss_flags = 0};
    stack_t old;
    CHECK(sigaltstack(&ss, &old) == 0);
    CHECK(old.ss_flags == SS_DISABLE);
    CHECK(sigaltstack(NULL, &cur) == 0);
    SHOW("after set: sp matches=%d size=%zu flags=%d", cur.ss_sp == mem, cur.ss_size, cur.ss_flags);

    stack_t dis = {.ss_flags = SS_DISABLE};
    CHECK(sigaltstack(&dis, &old) == 0);
    SHOW("old when disabling: sp matches=%d size=%zu", old.ss_sp == mem, old.ss_size);
    CHECK(sigaltstack(NULL, &cur) == 0);
    SHOW("after disable: flags=%s", cur.ss_flags == SS_DISABLE ? "SS_DISABLE" : "other");

    stack_t tiny = {.ss_sp = mem, .ss_size = 64, .ss_flags = 0};
    CHECK_ERRNO(sigaltstack(&tiny, NULL), ENOMEM);
    stack_t badflags = {.ss_sp = mem, .ss_size = sizeof mem, .ss_flags = 0x4};
    CHECK_ERRNO(sigaltstack(&badflags, NULL), EINVAL);
    CHECK_ERRNO(sigaltstack((stack_t *)8, NULL), EFAULT);
    return 0;
}
