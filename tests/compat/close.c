/* close and EBADF. */
#include "check.h"

int main(void) {
    CHECK_ERRNO(close(-1), EBADF);
    CHECK_ERRNO(close(1000), EBADF);
    CHECK_ERRNO(close(INT32_MAX), EBADF);
    int fd = open(HELLO_PATH, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(close(fd) == 0);
    CHECK_ERRNO(close(fd), EBADF);
    CHECK_ERRNO(read(fd, &fd, 1), EBADF);
    CHECK_ERRNO(fcntl(fd, F_GETFD), EBADF);
    /* many opens and closes */
    for (int i = 0; i < 200; i++) {
        int f = open(HELLO_PATH, O_RDONLY);
        CHECK(f == fd);
        CHECK(close(f) == 0);
    }
    int fds[64];
    for (int i = 0; i < 64; i++) {
        fds[i] = open("/data/dir", O_RDONLY);
        CHECK(fds[i] == fd + i);
    }
    for (int i = 63; i >= 0; i--)
        CHECK(close(fds[i]) == 0);
    SHOW("opened and closed 64 fds in order");
    return 0;
}
