/* readlink and readlinkat of fixture symlinks. */
#include "check.h"

static void show(const char *p) {
    char buf[256];
    ssize_t n = readlink(p, buf, sizeof buf);
    if (n < 0)
        SHOW("readlink %s: %s", p, check_errname(errno));
    else
        SHOW("readlink %s = \"%.*s\" (%zd)", p, (int)n, buf, n);
}

int main(void) {
    show("/data/link");
    show("/data/abslink");
    show("/data/dirlink");
    show("/data/loop1");
    show("/data/loop2");
    show("/data/dangling");
    show("/data/types/sym");
    show("/data/dirlink/../link"); /* .. after a symlinked dir goes to the real parent */
    show("/data/hello.txt");
    show("/data/dir");
    show("/nonexistent");
    show("/data/hello.txt/x");

    char buf[256];
    /* truncation: no NUL terminator, returns bufsiz */
    memset(buf, '#', sizeof buf);
    CHECK(readlink("/data/abslink", buf, 3) == 3);
    CHECK(memcmp(buf, "/da#", 4) == 0);
    SHOW("truncated to 3: %.3s", buf);
    CHECK_ERRNO(readlink("/data/link", buf, 0), EINVAL);
    CHECK_ERRNO(readlink(HELLO_PATH, buf, sizeof buf), EINVAL);
    CHECK_ERRNO(syscall(SYS_readlink, "/data/link", 8, sizeof buf), EFAULT);

    int d = open("/data", O_RDONLY | O_DIRECTORY);
    CHECK(d >= 0);
    ssize_t n = readlinkat(d, "link", buf, sizeof buf);
    CHECK(n == 9 && memcmp(buf, "hello.txt", 9) == 0);
    n = readlinkat(d, "types/sym", buf, sizeof buf);
    CHECK(n == 3 && memcmp(buf, "reg", 3) == 0);
    SHOW("readlinkat dirfd ok");
    CHECK_ERRNO(readlinkat(d, "hello.txt", buf, sizeof buf), EINVAL);
    CHECK_ERRNO(readlinkat(d, "nope", buf, sizeof buf), ENOENT);
    int f = open(HELLO_PATH, O_RDONLY);
    CHECK(f >= 0);
    CHECK_ERRNO(readlinkat(f, "x", buf, sizeof buf), ENOTDIR);
    CHECK_ERRNO(readlinkat(999, "x", buf, sizeof buf), EBADF);
    return 0;
}
