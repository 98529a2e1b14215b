/* open and openat: flags, errors, path walking. */
#include "check.h"
#include <limits.h>

static void opened(const char *what, int fd) {
    CHECK(fd >= 0);
    char buf[32] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n > 0 && buf[n - 1] == '\n')
        buf[n - 1] = 0;
    SHOW("%s: fd>=3 %d, content \"%s\"", what, fd >= 3, n >= 0 ? buf : "(EISDIR)");
    CHECK(close(fd) == 0);
}

int main(void) {
    opened("plain", open(HELLO_PATH, O_RDONLY));
    opened("relative symlink", open("/data/link", O_RDONLY));
    opened("absolute symlink", open("/data/abslink", O_RDONLY));
    opened("dot-dot", open("/data/dir/../hello.txt", O_RDONLY));
    opened("dot and slashes", open("//data/./dir//a", O_RDONLY));
    opened("above root", open("/../../data/dir/b", O_RDONLY));
    opened("dir symlink in middle with O_NOFOLLOW", open("/data/dirlink/c", O_RDONLY | O_NOFOLLOW));
    opened("O_CLOEXEC", open(HELLO_PATH, O_RDONLY | O_CLOEXEC));

    int d = open("/data/dir", O_RDONLY | O_DIRECTORY);
    CHECK(d >= 0);
    opened("openat relative", openat(d, "a", O_RDONLY));
    opened("openat dot-dot", openat(d, "../hello.txt", O_RDONLY));
    opened("openat absolute ignores dirfd", openat(d, HELLO_PATH, O_RDONLY));
    opened("openat AT_FDCWD", openat(AT_FDCWD, "data/hello.txt", O_RDONLY));
    CHECK(close(d) == 0);

    int dd = open("/data/dir/", O_RDONLY | O_DIRECTORY);
    CHECK(dd >= 0);
    CHECK(close(dd) == 0);
    int ds = open("/data/dirlink", O_RDONLY | O_DIRECTORY);
    CHECK(ds >= 0);
    CHECK(close(ds) == 0);
    int dr = open("/data/dir", O_RDONLY); /* directories open fine without O_DIRECTORY */
    CHECK(dr >= 0);
    CHECK(close(dr) == 0);

    CHECK_ERRNO(open("/nonexistent", O_RDONLY), ENOENT);
    CHECK_ERRNO(open("/data/nope/x", O_RDONLY), ENOENT);
    CHECK_ERRNO(open("", O_RDONLY), ENOENT);
    CHECK_ERRNO(open("/data/dangling", O_RDONLY), ENOENT);
    CHECK_ERRNO(open("/data/hello.txt/x", O_RDONLY), ENOTDIR);
    CHECK_ERRNO(open("/data/hello.txt/", O_RDONLY), ENOTDIR);
    CHECK_ERRNO(open(HELLO_PATH, O_RDONLY | O_DIRECTORY), ENOTDIR);
    CHECK_ERRNO(open("/data/link", O_RDONLY | O_DIRECTORY), ENOTDIR);
    CHECK_ERRNO(open("/data/link", O_RDONLY | O_NOFOLLOW), ELOOP);
    CHECK_ERRNO(open("/data/dirlink", O_RDONLY | O_NOFOLLOW | O_DIRECTORY), ENOTDIR);
    CHECK_ERRNO(open("/data/loop1", O_RDONLY), ELOOP);
    CHECK_ERRNO(open("/data/loop1/x", O_RDONLY), ELOOP);
    CHECK_ERRNO(open("/data/dir", O_WRONLY), EISDIR);
    CHECK_ERRNO(open("/data/dir", O_RDWR), EISDIR);

    char longname[NAME_MAX + 8];
    memset(longname, 'x', sizeof longname);
    longname[0] = '/';
    longname[sizeof longname - 1] = 0;
    CHECK_ERRNO(open(longname, O_RDONLY), ENAMETOOLONG);
    static char longpath[PATH_MAX + 16];
    for (size_t i = 0; i + 2 < sizeof longpath; i += 2) {
        longpath[i] = '/';
        longpath[i + 1] = 'a';
    }
    longpath[sizeof longpath - 1] = 0;
    CHECK_ERRNO(open(longpath, O_RDONLY), ENAMETOOLONG);

    int f = open(HELLO_PATH, O_RDONLY);
    CHECK(f >= 0);
    CHECK_ERRNO(openat(f, "x", O_RDONLY), ENOTDIR);
    CHECK(close(f) == 0);
    CHECK_ERRNO(openat(12345, "x", O_RDONLY), EBADF);
    CHECK_ERRNO(openat(-5, "x", O_RDONLY), EBADF);

    /* the lowest free fd is used */
    int a = open(HELLO_PATH, O_RDONLY);
    int b = open(HELLO_PATH, O_RDONLY);
    CHECK(a >= 0 && b == a + 1);
    CHECK(close(a) == 0);
    int c = open(HELLO_PATH, O_RDONLY);
    CHECK(c == a);
    SHOW("lowest free fd reused: yes");
    return 0;
}
