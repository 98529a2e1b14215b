/* poll on stdout with POLLOUT, negative fds, bad fds, no fds. */
#include "check.h"
#include <poll.h>
#include <time.h>

int main(void) {
    struct pollfd p[3] = {
        {.fd = 1, .events = POLLOUT},
        {.fd = -1, .events = POLLIN},
        {.fd = 999, .events = POLLIN},
    };
    p[1].revents = 123;
    int r = poll(p, 3, 1000);
    SHOW("poll = %d", r);
    SHOW("stdout POLLOUT=%d POLLERR=%d", !!(p[0].revents & POLLOUT), !!(p[0].revents & POLLERR));
    SHOW("negative fd revents=%d", p[1].revents);
    SHOW("bad fd POLLNVAL=%d", !!(p[2].revents & POLLNVAL));

    struct pollfd one = {.fd = 1, .events = POLLOUT};
    SHOW("stdout only, timeout 0: %d", poll(&one, 1, 0));
    SHOW("stdout only, infinite timeout: %d", poll(&one, 1, -1));

    struct timespec a, b;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0);
    SHOW("no fds, 20 ms = %d", poll(NULL, 0, 20));
    CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0);
    long long el = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    SHOW("waited >= 20 ms: %d", el >= 20000000LL);
    CHECK_ERRNO(syscall(SYS_poll, 8, 1, 0), EFAULT);
    return 0;
}
