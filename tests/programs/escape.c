/*
 * Tries to read a host file outside the container's rootfs.
 *
 * argv[1] is the absolute host path of a secret file that lives outside the
 * rootfs (its content is never given to the guest). The rootfs has:
 *   /up            -> ../../..
 *   /data/hostlink -> <argv[1]>   (absolute host path, must resolve inside the rootfs)
 *   /data/relup    -> ../../secret
 *   /proc          an empty directory (proc is not mounted in this milestone)
 * Every attempt prints one line with the error, or with what it read, so the
 * harness can check that the secret never appears and that the native chroot
 * and the sandbox agree.
 */
#include "../compat/check.h"
#include <dirent.h>

static void show_fd(const char *label, int fd) {
    if (fd < 0) {
        SHOW("%s: %s", label, check_errname(errno));
        return;
    }
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) {
        SHOW("%s: opened, read failed: %s", label, check_errname(errno));
    } else {
        buf[n] = 0;
        SHOW("%s: OPENED AND READ %zd bytes: %s", label, n, buf);
    }
    close(fd);
}

static void try_open(const char *path) { show_fd(path, open(path, O_RDONLY)); }

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list(const char *label, int dirfd, const char *path) {
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        SHOW("list %s: %s", label, check_errname(errno));
        return;
    }
    DIR *d = fdopendir(fd);
    CHECK(d != NULL);
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256)
        names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp);
    printf("list %s:", label);
    for (int i = 0; i < n; i++)
        printf(" %s", names[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    const char *host = argv[1];
    char path[4096];

    /* plain ".." walks */
    try_open("../secret");
    try_open("../../secret");
    try_open("/../secret");
    try_open("/../../secret");
    try_open("/../../../secret");
    try_open("/data/../../secret");
    try_open("/data/../../../secret");
    try_open(host);

    /* symlinks */
    try_open("/data/hostlink");
    try_open("/data/relup");
    try_open("/up/secret");
    try_open("/up/../secret");
    snprintf(path, sizeof path, "/up%s", host);
    try_open(path);
    char link[256];
    ssize_t ln = readlink("/up", link, sizeof link - 1);
    CHECK(ln > 0);
    link[ln] = 0;
    SHOW("readlink /up = %s", link);

    /* /proc is not mounted: these must simply fail */
    snprintf(path, sizeof path, "/proc/self/root%s", host);
    try_open(path);
    snprintf(path, sizeof path, "/proc/1/root%s", host);
    try_open(path);
    try_open("/proc/self/root/../secret");

    /* climbing with chdir and fchdir */
    for (int i = 0; i < 30; i++)
        CHECK(chdir("..") == 0);
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    SHOW("cwd after 30 x chdir(..): %s", cwd);
    try_open("secret");
    try_open("bundle/secret");
    int root = open("/", O_RDONLY | O_DIRECTORY);
    CHECK(root >= 0);
    CHECK(chdir("/data") == 0);
    CHECK(fchdir(root) == 0);
    CHECK(chdir("../..") == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    SHOW("cwd after fchdir(/) and chdir(../..): %s", cwd);
    try_open("secret");

    /* openat relative to directory fds */
    int data = open("/data", O_RDONLY | O_DIRECTORY);
    CHECK(data >= 0);
    show_fd("openat(/data, ../../secret)", openat(data, "../../secret", O_RDONLY));
    show_fd("openat(/, ../secret)", openat(root, "../secret", O_RDONLY));
    show_fd("openat(/, ..)/../secret", openat(openat(root, "..", O_RDONLY | O_DIRECTORY), "../secret", O_RDONLY));

    /* what is above the root: the same directory as the root */
    list("/", AT_FDCWD, "/");
    list("/..", AT_FDCWD, "/..");
    list("/up", AT_FDCWD, "/up");
    list("openat(/data, ../..)", data, "../..");
    struct stat a, b;
    CHECK(stat("/", &a) == 0 && stat("/../..", &b) == 0);
    SHOW("/../.. is /: %d", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    return 0;
}
