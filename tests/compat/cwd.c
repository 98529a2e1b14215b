/* getcwd, chdir, fchdir, including ".." at "/". */
#include "check.h"

static void pwd(const char *what) {
    char buf[256];
    CHECK(getcwd(buf, sizeof buf) == buf);
    SHOW("%s: cwd=%s", what, buf);
}

int main(void) {
    pwd("start");
    CHECK(chdir("/data/dir") == 0);
    pwd("chdir /data/dir");
    char c[8] = {0};
    CHECK(read_small_file("a", c, sizeof c) == 2); /* relative open uses the cwd */
    CHECK(chdir("..") == 0);
    pwd("chdir ..");
    CHECK(chdir("..") == 0);
    pwd("chdir .. again");
    CHECK(chdir("..") == 0);
    pwd("chdir .. at /");
    CHECK(chdir("/../../..") == 0);
    pwd("chdir /../../..");
    CHECK(chdir("data/dirlink") == 0);
    pwd("chdir through a symlink");
    CHECK(chdir("../types/./sub/") == 0);
    pwd("chdir ../types/./sub/");
    CHECK(chdir("/") == 0);

    int d = open("/data/types", O_RDONLY | O_DIRECTORY);
    CHECK(d >= 0);
    CHECK(fchdir(d) == 0);
    pwd("fchdir /data/types");
    char r[8] = {0};
    CHECK(read_small_file("reg", r, sizeof r) == 4);
    int root = open("/", O_RDONLY | O_DIRECTORY);
    CHECK(root >= 0);
    CHECK(fchdir(root) == 0);
    pwd("fchdir /");
    CHECK(chdir("..") == 0);
    pwd("chdir .. after fchdir /");

    int f = open(HELLO_PATH, O_RDONLY);
    CHECK(f >= 0);
    CHECK_ERRNO(fchdir(f), ENOTDIR);
    CHECK_ERRNO(fchdir(999), EBADF);
    CHECK_ERRNO(chdir(HELLO_PATH), ENOTDIR);
    CHECK_ERRNO(chdir("/nonexistent"), ENOENT);
    CHECK_ERRNO(chdir("/data/loop1"), ELOOP);
    CHECK_ERRNO(chdir(""), ENOENT);
    CHECK_ERRNO(chdir((const char *)8), EFAULT);
    pwd("after failed chdirs");

    /* raw getcwd returns the length including the NUL */
    char buf[64];
    CHECK(chdir("/data/dir") == 0);
    long n = syscall(SYS_getcwd, buf, sizeof buf);
    SHOW("SYS_getcwd returned %ld: %s", n, buf);
    CHECK_ERRNO(syscall(SYS_getcwd, buf, 5), ERANGE);
    CHECK_ERRNO(syscall(SYS_getcwd, buf, 0), ERANGE);
    CHECK(syscall(SYS_getcwd, buf, 10) == 10);
    CHECK_ERRNO(syscall(SYS_getcwd, (char *)8, sizeof buf), EFAULT);
    return 0;
}
