/* read, write, readv, writev on stdout and on files. */
#include "check.h"
#include <sys/uio.h>

int main(void) {
    char buf[64];

    /* write on stdout */
    CHECK(write(1, "write: direct\n", 14) == 14);
    CHECK(write(1, "", 0) == 0);

    /* writev on stdout with three pieces, one empty */
    struct iovec wv[3] = {
        {.iov_base = "writev: ", .iov_len = 8},
        {.iov_base = "", .iov_len = 0},
        {.iov_base = "three pieces\n", .iov_len = 13},
    };
    CHECK(writev(1, wv, 3) == 21);
    CHECK(writev(1, wv, 0) == 0);

    /* read a file */
    int fd = open(HELLO_PATH, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf);
    CHECK(n == HELLO_LEN);
    CHECK(memcmp(buf, HELLO_TEXT, HELLO_LEN) == 0);
    SHOW("read %zd bytes: %.*s", n, (int)n - 1, buf);
    CHECK(read(fd, buf, sizeof buf) == 0); /* EOF */
    CHECK(read(fd, buf, 0) == 0);

    /* short reads in small pieces */
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    char piece[5];
    CHECK(read(fd, piece, 5) == 5);
    CHECK(memcmp(piece, "hello", 5) == 0);
    CHECK(read(fd, piece, 2) == 2);
    CHECK(memcmp(piece, ", ", 2) == 0);

    /* readv into two buffers */
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    char a[4], b[32];
    memset(b, 0, sizeof b);
    struct iovec rv[2] = {{.iov_base = a, .iov_len = sizeof a}, {.iov_base = b, .iov_len = sizeof b}};
    n = readv(fd, rv, 2);
    CHECK(n == HELLO_LEN);
    CHECK(memcmp(a, "hell", 4) == 0);
    CHECK(memcmp(b, "o, world\n", 9) == 0);
    SHOW("readv first=%.4s second=%.8s", a, b);

    /* write to a read-only fd */
    CHECK_ERRNO(write(fd, "x", 1), EBADF);
    CHECK_ERRNO(writev(fd, wv, 3), EBADF);
    CHECK(close(fd) == 0);

    /* read from a closed fd, from stdout's write-only pipe is host-specific: skip */
    CHECK_ERRNO(read(fd, buf, 1), EBADF);
    CHECK_ERRNO(write(fd, "x", 1), EBADF);

    /* negative iovec count / too many */
    CHECK_ERRNO(syscall(SYS_writev, 1, wv, -1), EINVAL);
    CHECK_ERRNO(syscall(SYS_writev, 1, wv, 1025), EINVAL); /* > IOV_MAX */

    /* directories cannot be read */
    int dfd = open("/data/dir", O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK_ERRNO(read(dfd, buf, sizeof buf), EISDIR);
    CHECK(close(dfd) == 0);

    /* empty file */
    int efd = open("/data/empty", O_RDONLY);
    CHECK(efd >= 0);
    CHECK(read(efd, buf, sizeof buf) == 0);
    CHECK(close(efd) == 0);

    /* stdio mixes with raw writes in order (stdout is line buffered) */
    printf("printf line\n");
    CHECK(write(1, "raw line\n", 9) == 9);
    return 0;
}
