/* One 1 MiB write to stdout, then a 1 MiB writev in three pieces. */
#include "check.h"
#include <sys/uio.h>

int main(void) {
    static unsigned char buf[1 << 20];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)('a' + i % 26);
    for (size_t i = 99; i < sizeof buf; i += 100)
        buf[i] = '\n';
    ssize_t n = write(1, buf, sizeof buf);
    CHECK(n == (ssize_t)sizeof buf);
    struct iovec iv[3] = {
        {.iov_base = buf, .iov_len = 100000},
        {.iov_base = buf + 100000, .iov_len = 900000},
        {.iov_base = buf + 1000000, .iov_len = sizeof buf - 1000000},
    };
    n = writev(1, iv, 3);
    CHECK(n == (ssize_t)sizeof buf);
    SHOW("\nwrote %zd twice", n);
    return 0;
}
