/* openat2(2): struct open_how checks, every RESOLVE_* restriction, and the
 * /proc "magic" links it can refuse: /proc/self/fd/N reaches the open file
 * itself (a pipe, an unlinked file), /proc/self/cwd the directory. */
#include "../compat/check.h"
#include <linux/openat2.h>

static int o2(int dirfd, const char *path, unsigned long long flags, unsigned long long mode,
              unsigned long long resolve) {
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static void try_open(int dirfd, const char *path, unsigned long long resolve, const char *what) {
    int fd = o2(dirfd, path, O_RDONLY, 0, resolve);
    if (fd >= 0) {
        char buf[32] = {0};
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = 0;
        SHOW("%s %s: ok \"%s\"", what, path, n >= 0 ? buf : "(dir)");
        close(fd);
    } else {
        SHOW("%s %s: %s", what, path, check_errname(errno));
    }
}

static void put(const char *path, const char *text) {
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

int main(void) {
    /* A tree in /dev/shm: top/{f, sub/g, in -> sub/g, up -> ../outside,
     * abs -> /dev/shm/o2/outside, rootabs -> /f}; outside and f next to top. */
    CHECK(mkdir("/dev/shm/o2", 0755) == 0);
    CHECK(mkdir("/dev/shm/o2/top", 0755) == 0);
    CHECK(mkdir("/dev/shm/o2/top/sub", 0755) == 0);
    put("/dev/shm/o2/top/f", "top-f\n");
    put("/dev/shm/o2/top/sub/g", "sub-g\n");
    put("/dev/shm/o2/outside", "outside\n");
    CHECK(symlink("sub/g", "/dev/shm/o2/top/in") == 0);
    CHECK(symlink("../outside", "/dev/shm/o2/top/up") == 0);
    CHECK(symlink("/dev/shm/o2/outside", "/dev/shm/o2/top/abs") == 0);
    CHECK(symlink("/f", "/dev/shm/o2/top/rootabs") == 0);
    int top = open("/dev/shm/o2/top", O_RDONLY | O_DIRECTORY);
    CHECK(top >= 0);

    static const char *paths[] = {"f", "sub/g", "in", "up", "abs", "rootabs", "../outside", "sub/../f",
                                  "sub/../../outside", "/f", "/dev/shm/o2/outside", "."};
    static const struct {
        unsigned long long flags;
        const char *name;
    } modes[] = {
        {0, "plain"},
        {RESOLVE_BENEATH, "beneath"},
        {RESOLVE_IN_ROOT, "in_root"},
        {RESOLVE_NO_SYMLINKS, "no_symlinks"},
        {RESOLVE_NO_MAGICLINKS, "no_magiclinks"},
        {RESOLVE_NO_XDEV, "no_xdev"},
    };
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) try_open(top, paths[p], modes[m].flags, modes[m].name);

    /* O_PATH|O_NOFOLLOW may name a final symlink even with NO_SYMLINKS. */
    int l = o2(top, "in", O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS);
    SHOW("no_symlinks O_PATH|O_NOFOLLOW on a symlink: %s", l >= 0 ? "ok" : check_errname(errno));
    if (l >= 0) close(l);

    /* Crossing mounts: /dev/shm is a mount on /dev. */
    int dev = open("/dev", O_RDONLY | O_DIRECTORY);
    CHECK(dev >= 0);
    int x = o2(dev, "shm", O_RDONLY | O_DIRECTORY, 0, RESOLVE_NO_XDEV);
    SHOW("no_xdev into a mount: %s", x >= 0 ? "ok" : check_errname(errno));
    x = o2(top, "../../..", O_RDONLY | O_DIRECTORY, 0, RESOLVE_NO_XDEV);
    SHOW("no_xdev out of a mount: %s", x >= 0 ? "ok" : check_errname(errno));

    /* Magic links. */
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", pfd[1]);
    int w = open(path, O_WRONLY);
    CHECK(w >= 0);
    CHECK(write(w, "via-proc", 8) == 8);
    close(w);
    snprintf(path, sizeof path, "/proc/self/fd/%d", pfd[0]);
    int r = open(path, O_RDONLY);
    CHECK(r >= 0);
    char buf[16] = {0};
    CHECK(read(r, buf, sizeof buf - 1) == 8);
    SHOW("pipe reopened through /proc/self/fd: \"%s\"", buf);
    struct stat st;
    CHECK(fstat(r, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(stat(path, &st) == 0 && S_ISFIFO(st.st_mode));
    close(r);
    CHECK_ERRNO(o2(AT_FDCWD, path, O_RDONLY, 0, RESOLVE_NO_MAGICLINKS), ELOOP);
    CHECK_ERRNO(o2(AT_FDCWD, path, O_RDONLY, 0, RESOLVE_IN_ROOT), EXDEV);
    /* /proc/self is a plain symlink, not a magic one. */
    int st_fd = o2(AT_FDCWD, "/proc/self/status", O_RDONLY, 0, RESOLVE_NO_MAGICLINKS);
    SHOW("/proc/self/status with no_magiclinks: %s", st_fd >= 0 ? "ok" : check_errname(errno));
    if (st_fd >= 0) close(st_fd);

    /* An unlinked file stays reachable through its fd's link. */
    int u = open("/dev/shm/o2/gone", O_CREAT | O_RDWR, 0600);
    CHECK(u >= 0);
    CHECK(write(u, "still-here", 10) == 10);
    CHECK(unlink("/dev/shm/o2/gone") == 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", u);
    int u2 = open(path, O_RDONLY);
    CHECK(u2 >= 0);
    memset(buf, 0, sizeof buf);
    CHECK(read(u2, buf, sizeof buf - 1) == 10);
    SHOW("unlinked file through /proc/self/fd: \"%s\"", buf);
    close(u2);

    /* cwd link, and a directory fd's link used as a path prefix. */
    CHECK(chdir("/dev/shm/o2/top") == 0);
    try_open(AT_FDCWD, "/proc/self/cwd/sub/g", 0, "cwd link");
    snprintf(path, sizeof path, "/proc/self/fd/%d/sub/../f", top);
    try_open(AT_FDCWD, path, 0, "dir fd link");

    /* struct open_how checks. */
    struct open_how how = {.flags = O_RDONLY};
    CHECK_ERRNO(syscall(SYS_openat2, top, "f", &how, 8), EINVAL);
    CHECK_ERRNO(syscall(SYS_openat2, top, "f", &how, 8192), E2BIG);
    struct {
        struct open_how h;
        unsigned long long extra;
    } big = {{.flags = O_RDONLY}, 0};
    int b = (int)syscall(SYS_openat2, top, "f", &big, sizeof big);
    SHOW("larger struct with zero tail: %s", b >= 0 ? "ok" : check_errname(errno));
    big.extra = 1;
    CHECK_ERRNO(syscall(SYS_openat2, top, "f", &big, sizeof big), E2BIG);
    CHECK_ERRNO(o2(top, "f", O_RDONLY, 0, 0x1000), EINVAL);
    CHECK_ERRNO(o2(top, "f", O_RDONLY, 0644, 0), EINVAL);
    CHECK_ERRNO(o2(top, "f", O_RDONLY | (1ULL << 40), 0, 0), EINVAL);
    CHECK_ERRNO(o2(top, "f", O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT), EINVAL);
    CHECK_ERRNO(o2(top, "f", O_PATH | O_RDWR, 0, 0), EINVAL);
    CHECK_ERRNO(o2(top, "new", O_CREAT | O_WRONLY, 0644, RESOLVE_CACHED), EAGAIN);
    CHECK_ERRNO(o2(top, "f", O_RDONLY, 0, (unsigned long long)-1), EINVAL);
    CHECK_ERRNO(syscall(SYS_openat2, top, "f", (void *)8, sizeof how), EFAULT);

    /* Creation beneath a directory, with the mode. */
    int c = o2(top, "sub/made", O_CREAT | O_EXCL | O_WRONLY, 0640, RESOLVE_BENEATH);
    CHECK(c >= 0);
    CHECK(fstat(c, &st) == 0);
    SHOW("created beneath: mode %o", st.st_mode & 07777);
    CHECK_ERRNO(o2(top, "../escaped", O_CREAT | O_WRONLY, 0644, RESOLVE_BENEATH), EXDEV);
    CHECK(access("/dev/shm/o2/escaped", F_OK) != 0);
    return 0;
}
