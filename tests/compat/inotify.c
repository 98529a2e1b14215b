/* inotify: inotify_init1 flags and errors, reads (EAGAIN, a buffer too
 * small for one event, partial reads), the events of file operations in a
 * watched directory (create, open, write, close, read, chmod, truncate,
 * mkdir, rename with matching cookies, unlink, rmdir, symlink, link) and
 * the merging of identical events, a watched file (MODIFY, then ATTRIB,
 * DELETE_SELF and IGNORED on unlink), IN_ONESHOT, IN_MASK_ADD,
 * IN_MASK_CREATE, IN_ONLYDIR, IN_DONT_FOLLOW, watches of the same inode
 * sharing a wd, inotify_rm_watch and its errors, a watched directory moved
 * between watched directories, FIONREAD, poll, a blocking read woken by
 * another process and events caused by a child. Works in a fresh directory,
 * argv[1] or /dev/shm/inotify-test. Watch descriptors are printed by label,
 * cookies only as "same and non-zero". */
#include "check.h"
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#ifndef IN_MASK_CREATE
#define IN_MASK_CREATE 0x10000000
#endif

static const struct { uint32_t bit; const char *name; } bits[] = {
    {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
    {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
    {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"},
    {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
    {IN_UNMOUNT, "UNMOUNT"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"}, {IN_IGNORED, "IGNORED"},
    {IN_ISDIR, "ISDIR"},
};

static const char *maskname(uint32_t m) {
    static char s[256];
    s[0] = 0;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (m & bits[i].bit) {
            if (s[0]) strcat(s, "|");
            strcat(s, bits[i].name);
            m &= ~bits[i].bit;
        }
    if (m) sprintf(s + strlen(s), "%s%#x", s[0] ? "|" : "", m);
    return s;
}

/* Watch descriptors are shown by label, never by number. */
static struct { int fd, wd; const char *label; } wds[32];
static int nwds;

static int watch(int fd, const char *path, uint32_t mask, const char *label) {
    int wd = inotify_add_watch(fd, path, mask);
    CHECK(wd >= 1);
    for (int i = 0; i < nwds; i++)
        if (wds[i].fd == fd && wds[i].wd == wd) return wd;
    CHECK(nwds < 32);
    wds[nwds].fd = fd, wds[nwds].wd = wd, wds[nwds++].label = label;
    return wd;
}

static const char *label(int fd, int wd) {
    for (int i = 0; i < nwds; i++)
        if (wds[i].fd == fd && wds[i].wd == wd) return wds[i].label;
    return "?";
}

static uint32_t last_cookie;

static void show_events(int fd, const char *step, const char *buf, ssize_t n) {
    for (ssize_t off = 0; off < n;) {
        const struct inotify_event *e = (const void *)(buf + off);
        char extra[64] = "";
        if (e->mask & IN_MOVED_FROM) {
            last_cookie = e->cookie;
            snprintf(extra, sizeof extra, " cookie nonzero=%d", e->cookie != 0);
        } else if (e->mask & IN_MOVED_TO) {
            snprintf(extra, sizeof extra, " cookie same=%d", e->cookie != 0 && e->cookie == last_cookie);
        } else if (e->cookie) {
            snprintf(extra, sizeof extra, " unexpected cookie");
        }
        SHOW("%s: %s %s %s%s", step, label(fd, e->wd), e->len ? e->name : "-", maskname(e->mask), extra);
        off += sizeof *e + e->len;
        CHECK(off <= n);
    }
}

/* Reads and prints every queued event of a non-blocking inotify fd. */
static void drain(int fd, const char *step) {
    char buf[4096] __attribute__((aligned(8)));
    int any = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        show_events(fd, step, buf, n);
        any = 1;
    }
    int err = errno;
    CHECK(n == -1 && err == EAGAIN);
    if (!any) SHOW("%s: no events", step);
}

static void put(const char *path, const char *data) {
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
    CHECK(close(fd) == 0);
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : "/dev/shm/inotify-test";
    CHECK(mkdir(base, 0755) == 0);
    CHECK(chdir(base) == 0);
    umask(022);
    char buf[4096] __attribute__((aligned(8)));

    /* inotify_init1 flags and errors. */
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    CHECK(in >= 0);
    SHOW("init1: nonblock=%d cloexec=%d", !!(fcntl(in, F_GETFL) & O_NONBLOCK), !!(fcntl(in, F_GETFD) & FD_CLOEXEC));
    CHECK_ERRNO(inotify_init1(0x1), EINVAL);
    CHECK_ERRNO(read(in, buf, sizeof buf), EAGAIN);

    /* Operations in a watched directory. */
    CHECK(mkdir("d", 0755) == 0);
    watch(in, "d", IN_ALL_EVENTS, "d");
    int fd = open("d/f", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    drain(in, "create");
    CHECK(write(fd, "hello", 5) == 5);
    drain(in, "write");
    CHECK(write(fd, "abc", 3) == 3);
    CHECK(write(fd, "def", 3) == 3);
    drain(in, "two writes (merged)");
    CHECK(close(fd) == 0);
    drain(in, "close");
    fd = open("d/f", O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 11);
    CHECK(read(fd, buf, sizeof buf) == 0); /* nothing read, no ACCESS */
    CHECK(close(fd) == 0);
    drain(in, "read-only open, read, close");
    CHECK(chmod("d/f", 0600) == 0);
    drain(in, "chmod");
    CHECK(truncate("d/f", 2) == 0);
    drain(in, "truncate");
    CHECK(mkdir("d/sub", 0755) == 0);
    drain(in, "mkdir");
    CHECK(rename("d/f", "d/g") == 0);
    drain(in, "rename");
    CHECK(rename("d/sub", "d/sub2") == 0);
    drain(in, "rename dir");
    CHECK(symlink("g", "d/sl") == 0);
    drain(in, "symlink");
    CHECK(link("d/g", "d/hl") == 0);
    drain(in, "link");
    CHECK(unlink("d/hl") == 0 && unlink("d/sl") == 0);
    drain(in, "unlink");
    CHECK(rmdir("d/sub2") == 0);
    drain(in, "rmdir");
    CHECK(chmod("d", 0700) == 0);
    drain(in, "chmod dir");

    /* Reads: too small a buffer, then exactly one event at a time. */
    put("d/abc", "x");
    CHECK(unlink("d/abc") == 0);
    int queued = -1;
    CHECK(ioctl(in, FIONREAD, &queued) == 0);
    SHOW("FIONREAD with 5 events named abc: %d", queued);
    CHECK_ERRNO(read(in, buf, sizeof(struct inotify_event)), EINVAL);
    ssize_t n = read(in, buf, sizeof(struct inotify_event) + 16 + 8);
    SHOW("read with room for one event: %zd, len=%u", n, ((struct inotify_event *)buf)->len);
    show_events(in, "partial read", buf, n);
    drain(in, "rest");
    put("d/0123456789abcde", "");
    put("d/0123456789abcdef", "");
    CHECK(ioctl(in, FIONREAD, &queued) == 0);
    SHOW("FIONREAD with names of 15 and 16 bytes: %d", queued);
    n = read(in, buf, sizeof buf);
    for (ssize_t off = 0; off < n; off += sizeof(struct inotify_event) + ((struct inotify_event *)(buf + off))->len)
        SHOW("  event len=%u", ((struct inotify_event *)(buf + off))->len);
    drain(in, "rest");

    /* poll. */
    struct pollfd p = {in, POLLIN, 0};
    int pr = poll(&p, 1, 0);
    SHOW("poll empty: %d revents=%#x", pr, p.revents);
    CHECK(chmod("d/g", 0644) == 0);
    pr = poll(&p, 1, 0);
    SHOW("poll queued: %d revents=%#x", pr, p.revents);
    drain(in, "chmod");

    /* A file watched directly. */
    int fin = inotify_init1(IN_NONBLOCK);
    CHECK(fin >= 0);
    put("file", "x");
    watch(fin, "file", IN_ALL_EVENTS, "file");
    fd = open("file", O_WRONLY);
    CHECK(fd >= 0 && write(fd, "y", 1) == 1 && close(fd) == 0);
    drain(fin, "watched file write");
    CHECK(unlink("file") == 0);
    drain(fin, "watched file unlink");

    /* Same inode, same wd; IN_MASK_ADD; replacing the mask; IN_MASK_CREATE. */
    put("m", "");
    int w1 = watch(fin, "m", IN_MODIFY, "m");
    SHOW("same path again: same wd=%d", inotify_add_watch(fin, "m", IN_MODIFY) == w1);
    CHECK(link("m", "m2") == 0);
    SHOW("hard link: same wd=%d", inotify_add_watch(fin, "m2", IN_MODIFY) == w1);
    SHOW("mask add: same wd=%d", inotify_add_watch(fin, "m", IN_ATTRIB | IN_MASK_ADD) == w1);
    CHECK(chmod("m", 0600) == 0);
    CHECK(truncate("m", 1) == 0);
    drain(fin, "modify|attrib");
    SHOW("replace: same wd=%d", inotify_add_watch(fin, "m", IN_ATTRIB) == w1);
    CHECK(truncate("m", 2) == 0);
    drain(fin, "attrib only, truncate");
    CHECK_ERRNO(inotify_add_watch(fin, "m", IN_ATTRIB | IN_MASK_CREATE), EEXIST);
    CHECK_ERRNO(inotify_add_watch(fin, "m", IN_ATTRIB | IN_MASK_CREATE | IN_MASK_ADD), EINVAL);
    CHECK_ERRNO(inotify_add_watch(fin, "m", 0), EINVAL);
    CHECK_ERRNO(inotify_add_watch(fin, "m", IN_MODIFY | IN_ONLYDIR), ENOTDIR);
    CHECK_ERRNO(inotify_add_watch(fin, "missing", IN_MODIFY), ENOENT);
    CHECK_ERRNO(inotify_add_watch(fd = open(".", O_RDONLY), "m", IN_MODIFY), EINVAL);
    close(fd);
    CHECK_ERRNO(inotify_add_watch(999, "m", IN_MODIFY), EBADF);
    CHECK(inotify_rm_watch(fin, w1) == 0);
    drain(fin, "rm_watch");
    CHECK_ERRNO(inotify_rm_watch(fin, w1), EINVAL);
    CHECK_ERRNO(inotify_rm_watch(fin, 12345), EINVAL);
    CHECK_ERRNO(inotify_rm_watch(fin, -1), EINVAL);
    CHECK(chmod("m", 0644) == 0);
    drain(fin, "after rm_watch");
    SHOW("new watch, different wd=%d", watch(fin, "m", IN_ATTRIB | IN_MASK_CREATE, "m (again)") != w1);

    /* IN_ONESHOT. */
    put("o", "");
    watch(fin, "o", IN_MODIFY | IN_ONESHOT, "o");
    CHECK(truncate("o", 1) == 0);
    CHECK(truncate("o", 2) == 0);
    CHECK(truncate("o", 3) == 0);
    drain(fin, "oneshot, three truncates");

    /* IN_DONT_FOLLOW: the link itself, not its target. */
    CHECK(symlink("o", "ol") == 0);
    int wt = watch(fin, "o", IN_ATTRIB, "o (target)");
    SHOW("through symlink: same wd as target=%d", inotify_add_watch(fin, "ol", IN_ATTRIB) == wt);
    SHOW("IN_DONT_FOLLOW: same wd as target=%d", watch(fin, "ol", IN_ATTRIB | IN_DONT_FOLLOW, "ol (link)") == wt);
    struct timespec ts[2] = {{1, 0}, {2, 0}};
    CHECK(utimensat(AT_FDCWD, "ol", ts, AT_SYMLINK_NOFOLLOW) == 0);
    drain(fin, "utimensat link nofollow");
    CHECK(chmod("ol", 0600) == 0);
    drain(fin, "chmod through link");

    /* A watched directory moved between two watched directories. */
    int min = inotify_init1(IN_NONBLOCK);
    CHECK(min >= 0);
    CHECK(mkdir("a", 0755) == 0 && mkdir("b", 0755) == 0 && mkdir("a/x", 0755) == 0);
    watch(min, "a", IN_ALL_EVENTS, "a");
    watch(min, "b", IN_ALL_EVENTS, "b");
    watch(min, "a/x", IN_ALL_EVENTS, "x");
    CHECK(rename("a/x", "b/y") == 0);
    drain(min, "move dir a/x to b/y");
    put("b/y/inner", "");
    drain(min, "create in moved dir");
    CHECK(rename("b/y/inner", "a/inner") == 0);
    drain(min, "move file b/y/inner to a/inner");
    CHECK(unlink("a/inner") == 0 && rmdir("b/y") == 0);
    drain(min, "unlink and rmdir");

    /* A blocking read woken by another process. */
    int bin = inotify_init1(0);
    CHECK(bin >= 0);
    SHOW("blocking: nonblock=%d cloexec=%d", !!(fcntl(bin, F_GETFL) & O_NONBLOCK), fcntl(bin, F_GETFD));
    watch(bin, "b", IN_CREATE, "b (blocking)");
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        usleep(100000);
        int cfd = open("b/late", O_CREAT | O_WRONLY, 0644);
        _exit(cfd >= 0 ? 0 : 1);
    }
    n = read(bin, buf, sizeof buf);
    CHECK(n > 0);
    show_events(bin, "blocking read", buf, n);
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    drain(min, "the other watch of b");

    /* Events caused by a child. */
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        put("b/bychild", "child");
        _exit(rename("b/bychild", "a/bychild") == 0 ? 0 : 1);
    }
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    drain(min, "child's operations");

    /* Clean up once no inotify fd is left. */
    CHECK(close(in) == 0 && close(fin) == 0 && close(min) == 0 && close(bin) == 0);
    CHECK(unlink("a/bychild") == 0 && unlink("b/late") == 0 && unlink("d/g") == 0);
    CHECK(unlink("d/0123456789abcde") == 0 && unlink("d/0123456789abcdef") == 0);
    CHECK(unlink("m") == 0 && unlink("m2") == 0 && unlink("o") == 0 && unlink("ol") == 0);
    CHECK(rmdir("a") == 0 && rmdir("b") == 0 && rmdir("d") == 0);
    CHECK(chdir("/") == 0 && rmdir(base) == 0);
    SHOW("done");
    return 0;
}
