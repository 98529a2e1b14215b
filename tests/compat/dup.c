/* dup, dup2, dup3 and fcntl F_GETFD/F_SETFD/F_GETFL/F_SETFL/F_DUPFD/F_DUPFD_CLOEXEC. */
#include "check.h"

int main(void) {
    int fd = open(HELLO_PATH, O_RDONLY);
    CHECK(fd == 3);
    int d = dup(fd);
    SHOW("dup(3) = %d", d);
    CHECK(fcntl(d, F_GETFD) == 0);

    /* duplicated fds share the file offset */
    char c;
    CHECK(read(fd, &c, 1) == 1 && c == 'h');
    CHECK(lseek(d, 0, SEEK_CUR) == 1);
    CHECK(read(d, &c, 1) == 1 && c == 'e');
    CHECK(lseek(fd, 0, SEEK_CUR) == 2);
    SHOW("shared offset ok");

    SHOW("dup2(3, 10) = %d", dup2(fd, 10));
    SHOW("dup2(3, 3) = %d", dup2(fd, fd));
    SHOW("dup2(10, 200) = %d", dup2(10, 200));
    CHECK(dup2(d, 10) == 10); /* replaces an open fd silently */
    CHECK_ERRNO(dup2(fd, -1), EBADF);
    CHECK_ERRNO(dup2(99, 11), EBADF);
    CHECK_ERRNO(dup2(fd, 1 << 30), EBADF);
    CHECK_ERRNO(dup(99), EBADF);

    SHOW("dup3(3, 12, O_CLOEXEC) = %d", dup3(fd, 12, O_CLOEXEC));
    SHOW("F_GETFD(12) = %d", fcntl(12, F_GETFD));
    SHOW("dup3(3, 13, 0) = %d", dup3(fd, 13, 0));
    SHOW("F_GETFD(13) = %d", fcntl(13, F_GETFD));
    CHECK_ERRNO(dup3(fd, fd, 0), EINVAL);
    CHECK_ERRNO(dup3(fd, 14, O_NONBLOCK), EINVAL);

    /* F_SETFD / F_GETFD */
    CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0);
    SHOW("F_GETFD after set = %d", fcntl(fd, F_GETFD));
    CHECK(fcntl(d, F_GETFD) == 0); /* per-fd, not shared */
    CHECK(fcntl(fd, F_SETFD, 0) == 0);
    SHOW("F_GETFD after clear = %d", fcntl(fd, F_GETFD));

    /* F_GETFL / F_SETFL: status flags are shared between dups */
    int fl = fcntl(fd, F_GETFL);
    SHOW("F_GETFL accmode=%d nonblock=%d append=%d", fl & O_ACCMODE, !!(fl & O_NONBLOCK), !!(fl & O_APPEND));
    CHECK(fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
    fl = fcntl(d, F_GETFL);
    SHOW("F_GETFL on dup after O_NONBLOCK: nonblock=%d", !!(fl & O_NONBLOCK));
    CHECK(fcntl(fd, F_SETFL, (fl & ~O_NONBLOCK) | O_RDWR) == 0); /* access mode is ignored */
    fl = fcntl(fd, F_GETFL);
    SHOW("F_GETFL after clearing: accmode=%d nonblock=%d", fl & O_ACCMODE, !!(fl & O_NONBLOCK));
    int ofl = fcntl(1, F_GETFL);
    SHOW("F_GETFL(1) accmode=%d", ofl & O_ACCMODE);

    /* F_DUPFD / F_DUPFD_CLOEXEC: lowest free fd >= arg */
    SHOW("F_DUPFD(3, 20) = %d", fcntl(fd, F_DUPFD, 20));
    SHOW("F_DUPFD(3, 20) again = %d", fcntl(fd, F_DUPFD, 20));
    SHOW("F_DUPFD(3, 0) = %d", fcntl(fd, F_DUPFD, 0));
    int cl = fcntl(fd, F_DUPFD_CLOEXEC, 30);
    SHOW("F_DUPFD_CLOEXEC(3, 30) = %d, F_GETFD = %d", cl, fcntl(cl, F_GETFD));
    CHECK_ERRNO(fcntl(fd, F_DUPFD, -1), EINVAL);
    CHECK_ERRNO(fcntl(fd, F_DUPFD, 1 << 30), EINVAL);
    CHECK_ERRNO(fcntl(99, F_DUPFD, 0), EBADF);
    CHECK_ERRNO(fcntl(99, F_GETFL), EBADF);
    CHECK_ERRNO(fcntl(fd, 9999), EINVAL);

    /* close one dup, the other keeps working */
    CHECK(close(fd) == 0);
    CHECK(lseek(d, 0, SEEK_SET) == 0);
    CHECK(read(d, &c, 1) == 1 && c == 'h');
    SHOW("dup survives close of original");

    /* dup of stdout writes to stdout */
    int o = dup(1);
    CHECK(o >= 0);
    CHECK(write(o, "via dup(1)\n", 11) == 11);
    CHECK(dup2(o, 1) == 1);
    CHECK(write(1, "after dup2(o, 1)\n", 17) == 17);
    return 0;
}
