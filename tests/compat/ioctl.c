/* ioctl TCGETS, TIOCGWINSZ, FIONREAD on regular files and a directory (stdio may be a pipe, so untested). */
#include "check.h"
#include <sys/ioctl.h>
#include <termios.h>

int main(void) {
    int fd = open(HELLO_PATH, O_RDONLY);
    CHECK(fd >= 0);
    struct termios t;
    struct winsize ws;
    CHECK_ERRNO(ioctl(fd, TCGETS, &t), ENOTTY);
    CHECK_ERRNO(ioctl(fd, TIOCGWINSZ, &ws), ENOTTY);
    CHECK_ERRNO(ioctl(fd, TIOCSWINSZ, &ws), ENOTTY);
    CHECK_ERRNO(ioctl(fd, TIOCGPGRP, &ws), ENOTTY);
    CHECK_ERRNO(isatty(fd) ? 0 : -1, ENOTTY); /* isatty sets errno */

    /* Linux answers FIONREAD on a regular file with the bytes left before EOF
     * (do_vfs_ioctl, fs/ioctl.c). */
    int n = -1;
    CHECK(ioctl(fd, FIONREAD, &n) == 0);
    SHOW("FIONREAD at 0 = %d", n);
    char buf[4];
    CHECK(read(fd, buf, 4) == 4);
    CHECK(ioctl(fd, FIONREAD, &n) == 0);
    SHOW("FIONREAD at 4 = %d", n);

    int d = open("/data/dir", O_RDONLY | O_DIRECTORY);
    CHECK(d >= 0);
    CHECK_ERRNO(ioctl(d, TCGETS, &t), ENOTTY);
    CHECK_ERRNO(ioctl(d, TIOCGWINSZ, &ws), ENOTTY);

    CHECK_ERRNO(ioctl(999, TCGETS, &t), EBADF);
    CHECK_ERRNO(ioctl(999, FIONREAD, &n), EBADF);
    CHECK_ERRNO(ioctl(fd, 0x12345678, &n), ENOTTY);
    return 0;
}
