/* pread64, pwrite64 errors and lseek with SEEK_SET/CUR/END. */
#include "check.h"

int main(void) {
    char buf[16];
    int fd = open(HELLO_PATH, O_RDONLY);
    CHECK(fd >= 0);

    CHECK(lseek(fd, 0, SEEK_CUR) == 0);
    CHECK(pread(fd, buf, 5, 7) == 5);
    CHECK(memcmp(buf, "world", 5) == 0);
    SHOW("pread(7,5) = %.5s", buf);
    CHECK(lseek(fd, 0, SEEK_CUR) == 0); /* pread leaves the offset alone */
    CHECK(pread(fd, buf, 16, 10) == 3);  /* short at EOF */
    CHECK(pread(fd, buf, 16, HELLO_LEN) == 0);
    CHECK(pread(fd, buf, 16, 1000) == 0);
    CHECK_ERRNO(pread(fd, buf, 1, -1), EINVAL);

    SHOW("SEEK_SET 4 -> %ld", (long)lseek(fd, 4, SEEK_SET));
    CHECK(read(fd, buf, 1) == 1 && buf[0] == 'o');
    SHOW("SEEK_CUR 0 -> %ld", (long)lseek(fd, 0, SEEK_CUR));
    SHOW("SEEK_CUR 2 -> %ld", (long)lseek(fd, 2, SEEK_CUR));
    SHOW("SEEK_CUR -3 -> %ld", (long)lseek(fd, -3, SEEK_CUR));
    SHOW("SEEK_END 0 -> %ld", (long)lseek(fd, 0, SEEK_END));
    SHOW("SEEK_END -6 -> %ld", (long)lseek(fd, -6, SEEK_END));
    CHECK(read(fd, buf, 16) == 6 && memcmp(buf, "world\n", 6) == 0);
    SHOW("SEEK_END 100 -> %ld", (long)lseek(fd, 100, SEEK_END));
    CHECK(read(fd, buf, 16) == 0); /* past EOF reads nothing */
    CHECK_ERRNO(lseek(fd, -1, SEEK_SET), EINVAL);
    CHECK_ERRNO(lseek(fd, -1000, SEEK_END), EINVAL);
    CHECK_ERRNO(lseek(fd, 0, 99), EINVAL);
    CHECK(lseek(fd, 0, SEEK_CUR) == 113); /* failed seeks do not move */

    /* pwrite on a read-only fd */
    CHECK_ERRNO(pwrite(fd, "x", 1, 0), EBADF);
    CHECK(close(fd) == 0);
    CHECK_ERRNO(lseek(fd, 0, SEEK_SET), EBADF);
    CHECK_ERRNO(pread(fd, buf, 1, 0), EBADF);

    /* pread on a big file at scattered offsets */
    int big = open(BIG_PATH, O_RDONLY);
    CHECK(big >= 0);
    static const long offs[] = {0, 1, 4095, 4096, 65537, 1048575};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        unsigned char c;
        CHECK(pread(big, &c, 1, offs[i]) == 1);
        CHECK(c == BIG_BYTE((unsigned long)offs[i]));
        SHOW("big[%ld] = %u", offs[i], c);
    }
    CHECK(lseek(big, 0, SEEK_END) == BIG_LEN);
    CHECK(close(big) == 0);

    /* lseek on a directory is allowed (rewinds) */
    int dfd = open("/data/dir", O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK(lseek(dfd, 0, SEEK_SET) == 0);
    CHECK(close(dfd) == 0);
    return 0;
}
