/* statx field checks (mode, size, nlink, type), flags and errors. */
#include "check.h"
#include <sys/sysmacros.h>

static int sx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st) {
    return (int)syscall(SYS_statx, dirfd, path, flags, mask, st);
}

int main(void) {
    struct statx st;
    static const char *paths[] = {"/data/hello.txt", "/data/big.bin", "/data/dir", "/data/link", "/data/exec.sh"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        for (int nofollow = 0; nofollow <= 1; nofollow++) {
            memset(&st, 0xff, sizeof st);
            CHECK(sx(AT_FDCWD, paths[i], nofollow ? AT_SYMLINK_NOFOLLOW : 0, STATX_BASIC_STATS, &st) == 0);
            CHECK((st.stx_mask & (STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_SIZE)) ==
                  (STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_SIZE));
            struct stat ref;
            CHECK((nofollow ? lstat : stat)(paths[i], &ref) == 0);
            CHECK(st.stx_mode == ref.st_mode);
            CHECK((long long)st.stx_size == (long long)ref.st_size);
            CHECK(st.stx_nlink == ref.st_nlink);
            CHECK(st.stx_ino == ref.st_ino);
            CHECK(st.stx_uid == ref.st_uid && st.stx_gid == ref.st_gid);
            CHECK(makedev(st.stx_dev_major, st.stx_dev_minor) == ref.st_dev);
            SHOW("statx %s%s: mode=%06o size=%lld nlink=%u", paths[i], nofollow ? " nofollow" : "",
                 st.stx_mode, S_ISDIR(st.stx_mode) ? -1LL : (long long)st.stx_size, st.stx_nlink);
        }
    }

    /* AT_EMPTY_PATH on an fd, relative lookups */
    int fd = open("/data/big.bin", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(sx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st) == 0 && st.stx_size == BIG_LEN);
    int d = open("/data", O_RDONLY | O_DIRECTORY);
    CHECK(d >= 0);
    CHECK(sx(d, "dir/a", 0, STATX_BASIC_STATS, &st) == 0 && st.stx_size == 2);
    CHECK(sx(d, "link", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &st) == 0 && S_ISLNK(st.stx_mode));

    /* mask 0 still works */
    CHECK(sx(AT_FDCWD, "/data/hello.txt", 0, 0, &st) == 0);
    SHOW("statx mask 0 ok");

    CHECK_ERRNO(sx(AT_FDCWD, "/nonexistent", 0, STATX_BASIC_STATS, &st), ENOENT);
    CHECK_ERRNO(sx(AT_FDCWD, "/data/loop1", 0, STATX_BASIC_STATS, &st), ELOOP);
    CHECK_ERRNO(sx(AT_FDCWD, "/data/hello.txt", 0, 0x80000000u, &st), EINVAL); /* STATX__RESERVED */
    CHECK_ERRNO(sx(AT_FDCWD, "/data/hello.txt", 0x40000000, STATX_BASIC_STATS, &st), EINVAL);
    CHECK_ERRNO(sx(AT_FDCWD, "/data/hello.txt", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &st), EINVAL);
    CHECK_ERRNO(sx(fd, "", 0, STATX_BASIC_STATS, &st), ENOENT);
    CHECK_ERRNO(sx(777, "x", 0, STATX_BASIC_STATS, &st), EBADF);
    CHECK_ERRNO(sx(AT_FDCWD, "/data/hello.txt", 0, STATX_BASIC_STATS, (struct statx *)8), EFAULT);
    return 0;
}
