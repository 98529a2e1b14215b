/* O_TMPFILE in directory argv[1] (default /tmp; the output never names
 * it, so runs in different directories compare): an unnamed
 * file (nlink 0) that /proc/self/fd shows as "dir/#ino (deleted)", that
 * can be opened again and fchmod'ed through its descriptor, and that a
 * linkat through /proc/self/fd names (more than once); once it has lost
 * its names again, or with O_EXCL, or for an ordinary file unlinked, no
 * link brings it back (ENOENT). Bad uses: a read-only O_TMPFILE, a
 * regular file or a missing directory. Without an argument, also
 * O_TMPFILE in the read-only root (EROFS). */
#include "../compat/check.h"

static void show_link(const char *what, int fd, const char *dir) {
    char proc[64], link[512], prefix[300];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, link, sizeof link - 1);
    CHECK(n > 0);
    link[n] = 0;
    snprintf(prefix, sizeof prefix, "%s/", dir);
    const char *tail = " (deleted)";
    size_t tl = strlen(tail);
    int deleted = (size_t)n > tl && strcmp(link + n - tl, tail) == 0;
    int hashed = strncmp(link, prefix, strlen(prefix)) == 0 && link[strlen(prefix)] == '#';
    size_t pl = strlen(prefix);
    int in_dir = strncmp(link, prefix, pl) == 0;
    if (deleted && hashed)
        SHOW("%s: /proc/self/fd link is DIR/#<ino> (deleted)", what);
    else if (deleted && in_dir)
        SHOW("%s: /proc/self/fd link is DIR/%.*s (deleted)", what, (int)(n - tl - pl), link + pl);
    else if (in_dir)
        SHOW("%s: /proc/self/fd link is DIR/%s", what, link + pl);
    else
        SHOW("%s: /proc/self/fd link is outside DIR: %s", what, link);
}

static void show_stat(const char *what, int fd) {
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    SHOW("%s: regular=%d nlink=%ld size=%ld mode=%04o", what, S_ISREG(st.st_mode), (long)st.st_nlink,
         (long)st.st_size, st.st_mode & 07777);
}

static int link_via_proc(int fd, const char *name) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW);
}

static void in_dir(const char *dir) {
    char name[300], name2[300], proc[64], buf[32] = {0};
    snprintf(name, sizeof name, "%s/named", dir);
    snprintf(name2, sizeof name2, "%s/named2", dir);

    int fd = open(dir, O_TMPFILE | O_RDWR, 0640);
    CHECK(fd >= 0);
    CHECK(write(fd, "unnamed", 7) == 7);
    show_stat("O_TMPFILE 0640", fd);
    show_link("unnamed", fd, dir);

    /* Opened again through /proc: the same file. */
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int again = open(proc, O_RDONLY);
    CHECK(again >= 0);
    CHECK(read(again, buf, sizeof buf - 1) == 7);
    SHOW("reopened through /proc: read \"%s\"", buf);
    CHECK(fchmod(fd, 0600) == 0);
    show_stat("after fchmod 0600, seen through the reopened fd", again);
    CHECK(close(again) == 0);

    /* Named by linkat through /proc, twice. */
    CHECK(link_via_proc(fd, name) == 0);
    show_stat("after linkat", fd);
    show_link("named", fd, dir);
    struct stat a, b;
    CHECK(fstat(fd, &a) == 0 && stat(name, &b) == 0);
    SHOW("the name is the same file: %d, size %ld", a.st_ino == b.st_ino && a.st_dev == b.st_dev, (long)b.st_size);
    CHECK_ERRNO(link_via_proc(fd, name), EEXIST);
    CHECK(link_via_proc(fd, name2) == 0);
    show_stat("after a second linkat", fd);

    /* Unnamed again: no way back. */
    CHECK(unlink(name) == 0 && unlink(name2) == 0);
    show_stat("after unlinking both names", fd);
    show_link("unlinked", fd, dir);
    CHECK_ERRNO(link_via_proc(fd, name), ENOENT);
    CHECK(close(fd) == 0);

    /* O_EXCL: never linkable. */
    fd = open(dir, O_TMPFILE | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0);
    show_stat("O_TMPFILE|O_EXCL", fd);
    CHECK_ERRNO(link_via_proc(fd, name), ENOENT);
    CHECK(close(fd) == 0);

    /* An ordinary file whose name went is not linkable either. */
    fd = open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0);
    CHECK(unlink(name) == 0);
    show_link("ordinary file unlinked", fd, dir);
    CHECK_ERRNO(link_via_proc(fd, name), ENOENT);
    CHECK(close(fd) == 0);
    CHECK_ERRNO(stat(name, &b), ENOENT);

    /* Bad uses. */
    CHECK_ERRNO(open(dir, O_TMPFILE | O_RDONLY, 0600), EINVAL);
    fd = open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0 && close(fd) == 0);
    SHOW("O_TMPFILE on a regular file: %s", open(name, O_TMPFILE | O_RDWR, 0600) < 0 ? check_errname(errno) : "ok");
    CHECK(unlink(name) == 0);
    SHOW("O_TMPFILE in a missing directory: %s", open(name, O_TMPFILE | O_RDWR, 0600) < 0 ? check_errname(errno) : "ok");
}

int main(int argc, char **argv) {
    umask(022);
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char made[300];
    in_dir(dir);
    snprintf(made, sizeof made, "%s/made", dir);
    CHECK(mkdir(made, 0755) == 0);
    in_dir(made);
    CHECK(rmdir(made) == 0);
    if (argc == 1) SHOW("O_TMPFILE in the read-only root: %s", open("/", O_TMPFILE | O_RDWR, 0600) < 0 ? check_errname(errno) : "ok");
    return 0;
}
