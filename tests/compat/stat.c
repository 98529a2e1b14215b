/* fstat, stat, lstat, newfstatat: mode, size, nlink, type (never inode, dev or times). */
#include "check.h"

static const char *kind(mode_t m) {
    if (S_ISREG(m)) return "reg";
    if (S_ISDIR(m)) return "dir";
    if (S_ISLNK(m)) return "lnk";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISCHR(m)) return "chr";
    if (S_ISSOCK(m)) return "sock";
    if (S_ISBLK(m)) return "blk";
    return "?";
}

static void show(const char *how, const char *path, const struct stat *st) {
    SHOW("%s %s: %s perm=%04o size=%lld nlink=%lu uid=%u gid=%u", how, path, kind(st->st_mode),
         (unsigned)(st->st_mode & 07777), S_ISDIR(st->st_mode) ? -1LL : (long long)st->st_size,
         (unsigned long)st->st_nlink, st->st_uid, st->st_gid);
}

int main(void) {
    static const char *paths[] = {"/data/hello.txt", "/data/big.bin", "/data/empty", "/data/exec.sh",
                                  "/data/dir", "/data/link", "/data/abslink", "/data/dirlink",
                                  "/data/dangling", "/data/types/reg", "/data/types/sub", "/", "/prog"};
    struct stat st;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *p = paths[i];
        if (stat(p, &st) == 0)
            show("stat", p, &st);
        else
            SHOW("stat %s: %s", p, check_errname(errno));
        CHECK(lstat(p, &st) == 0);
        show("lstat", p, &st);
        struct stat st2;
        CHECK(fstatat(AT_FDCWD, p, &st2, AT_SYMLINK_NOFOLLOW) == 0);
        CHECK(st2.st_mode == st.st_mode && st2.st_size == st.st_size && st2.st_ino == st.st_ino);
    }

    /* stat follows links to the same inode; lstat does not */
    struct stat a, b;
    CHECK(stat("/data/link", &a) == 0 && stat("/data/hello.txt", &b) == 0);
    CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    CHECK(lstat("/data/link", &a) == 0);
    CHECK(a.st_ino != b.st_ino);
    CHECK(a.st_size == 9); /* strlen("hello.txt") */
    CHECK(lstat("/data/abslink", &a) == 0 && a.st_size == 15);

    /* fstat agrees with stat */
    int fd = open("/data/big.bin", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(fstat(fd, &a) == 0 && stat("/data/big.bin", &b) == 0);
    CHECK(a.st_ino == b.st_ino && a.st_size == BIG_LEN && a.st_mode == b.st_mode);
    show("fstat", "big.bin fd", &a);

    /* newfstatat with a dirfd, relative path, AT_EMPTY_PATH */
    int d = open("/data", O_RDONLY | O_DIRECTORY);
    CHECK(d >= 0);
    CHECK(fstatat(d, "hello.txt", &a, 0) == 0 && a.st_size == HELLO_LEN);
    CHECK(fstatat(d, "link", &a, 0) == 0 && S_ISREG(a.st_mode));
    CHECK(fstatat(d, "link", &a, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(a.st_mode));
    CHECK(fstatat(fd, "", &a, AT_EMPTY_PATH) == 0 && a.st_size == BIG_LEN);
    CHECK(fstatat(d, "", &a, AT_EMPTY_PATH) == 0 && S_ISDIR(a.st_mode));
    CHECK(fstatat(d, "dir/..", &a, 0) == 0 && S_ISDIR(a.st_mode));
    CHECK_ERRNO(fstatat(fd, "", &a, 0), ENOENT);
    CHECK_ERRNO(fstatat(fd, "x", &a, 0), ENOTDIR);
    CHECK_ERRNO(fstatat(d, "hello.txt", &a, 0x12345678), EINVAL);
    CHECK_ERRNO(fstatat(999, "x", &a, 0), EBADF);

    CHECK_ERRNO(stat("/nonexistent", &a), ENOENT);
    CHECK_ERRNO(stat("/data/dangling", &a), ENOENT);
    CHECK_ERRNO(stat("/data/loop1", &a), ELOOP);
    CHECK_ERRNO(stat("/data/hello.txt/", &a), ENOTDIR);
    CHECK_ERRNO(lstat("/data/hello.txt/x", &a), ENOTDIR);
    CHECK_ERRNO(stat("", &a), ENOENT);
    CHECK_ERRNO(fstat(-1, &a), EBADF);
    CHECK(lstat("/data/loop1", &a) == 0 && S_ISLNK(a.st_mode));
    /* trailing slash on a symlink to a dir follows it */
    CHECK(lstat("/data/dirlink/", &a) == 0 && S_ISDIR(a.st_mode));

    /* stdout is a pipe in the harness */
    CHECK(fstat(1, &a) == 0);
    SHOW("fstat(1): %s", kind(a.st_mode));

    /* ".." of "/" is "/" */
    CHECK(stat("/", &a) == 0 && stat("/..", &b) == 0);
    CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    SHOW("/.. is /");
    return 0;
}
