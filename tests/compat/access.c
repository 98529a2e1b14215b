/* access, faccessat and faccessat2 (root in both worlds, read-only checks only). */
#include "check.h"

static void show(const char *p, int mode, const char *mname) {
    int r = access(p, mode);
    SHOW("access(%s, %s) = %s", p, mname, r == 0 ? "0" : check_errname(errno));
}

int main(void) {
    static const char *paths[] = {"/data/hello.txt", "/data/exec.sh", "/data/dir", "/data/link",
                                  "/data/dangling", "/data/loop1", "/nonexistent", "/data/hello.txt/x",
                                  "/prog", "/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        show(paths[i], F_OK, "F_OK");
        show(paths[i], R_OK, "R_OK");
        show(paths[i], X_OK, "X_OK");
        show(paths[i], R_OK | X_OK, "R_OK|X_OK");
    }
    CHECK_ERRNO(access(HELLO_PATH, 0x100), EINVAL);
    CHECK_ERRNO(access((const char *)8, F_OK), EFAULT);

    int d = open("/data", O_RDONLY | O_DIRECTORY);
    CHECK(d >= 0);
    CHECK(faccessat(d, "hello.txt", R_OK, 0) == 0);
    CHECK(faccessat(d, "exec.sh", X_OK, 0) == 0);
    CHECK_ERRNO(faccessat(d, "hello.txt", X_OK, 0), EACCES);
    CHECK_ERRNO(faccessat(d, "nope", F_OK, 0), ENOENT);
    CHECK(faccessat(AT_FDCWD, "data/dir", X_OK, 0) == 0);

    /* faccessat2 with flags, via the raw syscall */
    CHECK_ERRNO(syscall(SYS_faccessat2, d, "dangling", F_OK, 0), ENOENT);
    CHECK(syscall(SYS_faccessat2, d, "dangling", F_OK, AT_SYMLINK_NOFOLLOW) == 0);
    CHECK(syscall(SYS_faccessat2, d, "hello.txt", R_OK, AT_EACCESS) == 0);
    int f = open(HELLO_PATH, O_RDONLY);
    CHECK(f >= 0);
    CHECK(syscall(SYS_faccessat2, f, "", R_OK, AT_EMPTY_PATH) == 0);
    CHECK_ERRNO(syscall(SYS_faccessat2, d, "hello.txt", R_OK, 0x1), EINVAL);
    CHECK_ERRNO(syscall(SYS_faccessat, f, "x", F_OK), ENOTDIR);
    CHECK_ERRNO(syscall(SYS_faccessat, 999, "x", F_OK), EBADF);
    SHOW("faccessat2 ok");
    return 0;
}
