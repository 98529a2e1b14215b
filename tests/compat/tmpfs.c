/* A writable scratch file system: argv[1], /dev/shm by default (the
 * sandbox's tmpfs, a directory natively), or a directory of a gofer mount
 * that writes through to the host; argv[2] "nomap" skips the shared
 * mapping part. Checks create, O_EXCL, O_TRUNC, O_APPEND, holes and
 * truncation, unlink of an open file, hard links, rename (over files and
 * directories, NOREPLACE, EXCHANGE), rmdir, symlinks, directory listing,
 * chmod and times, O_TMPFILE, and MAP_SHARED mappings seen by another
 * process and by read(). */
#include "check.h"
#include <dirent.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list(const char *dir) {
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    printf("%s:", dir);
    for (int i = 0; i < n; i++) printf(" %s", names[i]);
    printf("\n");
}

static long fsize(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/dev/shm";
    int map = !(argc > 2 && strcmp(argv[2], "nomap") == 0);
    CHECK(chdir(dir) == 0);
    umask(022);
    int fd = open("f", O_CREAT | O_EXCL | O_RDWR, 0640);
    CHECK(fd >= 0);
    CHECK_ERRNO(open("f", O_CREAT | O_EXCL | O_RDWR, 0640), EEXIST);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    SHOW("new file mode=%o size=%ld nlink=%ld", st.st_mode, (long)st.st_size, (long)st.st_nlink);
    CHECK(write(fd, "hello world", 11) == 11);
    CHECK(lseek(fd, 100000, SEEK_SET) == 100000);
    CHECK(write(fd, "end", 3) == 3);
    char buf[16] = {0};
    CHECK(pread(fd, buf, 4, 50000) == 4);
    SHOW("size=%ld hole reads zeros=%d seek_end=%ld", fsize("f"), buf[0] == 0 && buf[3] == 0,
         (long)lseek(fd, 0, SEEK_END));
    CHECK(ftruncate(fd, 5) == 0);
    CHECK(ftruncate(fd, 20) == 0);
    memset(buf, 'x', sizeof buf);
    CHECK(pread(fd, buf, 16, 0) == 16);
    SHOW("after shrink and grow: %.5s then zero=%d", buf, buf[5] == 0 && buf[15] == 0);
    close(fd);
    fd = open("f", O_WRONLY | O_APPEND);
    CHECK(write(fd, "++", 2) == 2);
    close(fd);
    SHOW("append: size=%ld", fsize("f"));
    fd = open("f", O_RDWR | O_TRUNC);
    SHOW("O_TRUNC: size=%ld", fsize("f"));
    close(fd);
    CHECK_ERRNO(open("nodir/f", O_CREAT | O_RDWR, 0600), ENOENT);
    CHECK_ERRNO(open("f/x", O_CREAT | O_RDWR, 0600), ENOTDIR);
    CHECK_ERRNO(open("newdir/", O_CREAT | O_RDWR, 0600), EISDIR);

    /* A sparse file far larger than the file system's size. */
    fd = open("sparse", O_CREAT | O_RDWR, 0600);
    CHECK(pwrite(fd, "end", 3, 1LL << 40) == 3);
    CHECK(pread(fd, buf, 3, 1LL << 40) == 3);
    SHOW("sparse: size=%ld tail=%.3s", fsize("sparse"), buf);
    CHECK(ftruncate(fd, 0) == 0 && unlink("sparse") == 0);
    close(fd);

    /* Unlinked while open: the data stays reachable through the fd. */
    fd = open("gone", O_CREAT | O_RDWR, 0600);
    CHECK(write(fd, "still here", 10) == 10);
    CHECK(unlink("gone") == 0);
    CHECK_ERRNO(unlink("gone"), ENOENT);
    CHECK(pread(fd, buf, 10, 0) == 10);
    CHECK(fstat(fd, &st) == 0);
    SHOW("unlinked: %.10s nlink=%ld", buf, (long)st.st_nlink);
    close(fd);

    /* Hard links and renames. */
    CHECK(link("f", "f2") == 0);
    CHECK_ERRNO(link("f", "f2"), EEXIST);
    CHECK(stat("f", &st) == 0);
    SHOW("links=%ld", (long)st.st_nlink);
    CHECK(mkdir("d", 0755) == 0);
    CHECK_ERRNO(mkdir("d", 0755), EEXIST);
    CHECK(mkdir("d/sub", 0700) == 0);
    CHECK(stat("d", &st) == 0);
    SHOW("dir mode=%o nlink=%ld", st.st_mode, (long)st.st_nlink);
    CHECK_ERRNO(rmdir("d"), ENOTEMPTY);
    CHECK_ERRNO(unlink("d"), EISDIR);
    CHECK_ERRNO(rmdir("f"), ENOTDIR);
    CHECK(rename("f2", "d/moved") == 0);
    CHECK_ERRNO(rename("f", "d"), EISDIR);
    CHECK_ERRNO(rename("d", "f"), ENOTDIR);
    CHECK_ERRNO(rename("d", "d/sub/inside"), EINVAL);
    CHECK(syscall(SYS_renameat2, AT_FDCWD, "f", AT_FDCWD, "d/moved", RENAME_NOREPLACE) == -1 && errno == EEXIST);
    CHECK(write(open("other", O_CREAT | O_WRONLY, 0600), "o", 1) == 1);
    CHECK(syscall(SYS_renameat2, AT_FDCWD, "other", AT_FDCWD, "d/sub", RENAME_EXCHANGE) == 0);
    CHECK(stat("other", &st) == 0);
    SHOW("exchanged: other is dir=%d", S_ISDIR(st.st_mode));
    CHECK(rename("other", "d/sub") == 0 || errno == ENOTDIR);
    list(dir);
    list("d");
    CHECK(rename("d/moved", "f") == 0);
    CHECK(stat("f", &st) == 0);
    SHOW("renamed over its own link: nlink=%ld, both names stay=%d", (long)st.st_nlink, fsize("d/moved") >= 0);
    CHECK(unlink("d/moved") == 0);

    /* Symlinks. */
    CHECK(symlink("f", "l") == 0);
    CHECK_ERRNO(symlink("f", "l"), EEXIST);
    char target[32] = {0};
    CHECK(readlink("l", target, sizeof target - 1) == 1);
    CHECK(lstat("l", &st) == 0);
    SHOW("symlink -> %s islnk=%d size=%ld", target, S_ISLNK(st.st_mode), (long)st.st_size);
    CHECK_ERRNO(open("l", O_RDONLY | O_NOFOLLOW), ELOOP);
    CHECK(symlink("dangling", "dl") == 0);
    CHECK_ERRNO(open("dl", O_RDONLY), ENOENT);

    /* Attributes. */
    CHECK(chmod("f", 0600) == 0);
    struct timespec ts[2] = {{1000000000, 5}, {1200000000, 7}};
    CHECK(utimensat(AT_FDCWD, "f", ts, 0) == 0);
    CHECK(stat("f", &st) == 0);
    SHOW("chmod/utimens: mode=%o atime=%ld.%ld mtime=%ld.%ld", st.st_mode & 07777, (long)st.st_atim.tv_sec,
         st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);

    /* O_TMPFILE, then given a name. */
    int tf = open(".", O_TMPFILE | O_RDWR, 0600);
    if (tf >= 0) {
        CHECK(write(tf, "tmp", 3) == 3);
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", tf);
        CHECK(fstat(tf, &st) == 0);
        SHOW("O_TMPFILE: nlink=%ld size=%ld", (long)st.st_nlink, (long)st.st_size);
        close(tf);
    } else {
        SHOW("O_TMPFILE: errno=%s", check_errname(errno));
    }

    /* A FIFO: opens wait for the other side, data flows between processes. */
    CHECK(mkfifo("fifo", 0640) == 0);
    CHECK_ERRNO(mkfifo("fifo", 0640), EEXIST);
    CHECK(lstat("fifo", &st) == 0);
    SHOW("fifo: isfifo=%d mode=%o", S_ISFIFO(st.st_mode), st.st_mode & 07777);
    CHECK_ERRNO(open("fifo", O_WRONLY | O_NONBLOCK), ENXIO);
    int rw = open("fifo", O_RDWR);
    CHECK(rw >= 0);
    close(rw);
    pid_t w = fork();
    if (w == 0) {
        int wfd = open("fifo", O_WRONLY);
        _exit(wfd >= 0 && write(wfd, "through the fifo", 16) == 16 ? 0 : 1);
    }
    int rfd = open("fifo", O_RDONLY);
    CHECK(rfd >= 0);
    char fb[32] = {0};
    size_t got = 0;
    ssize_t r;
    while ((r = read(rfd, fb + got, sizeof fb - 1 - got)) > 0) got += r;
    int wst2;
    CHECK(waitpid(w, &wst2, 0) == w);
    SHOW("fifo read '%s' then eof=%d, writer status %d", fb, r == 0, WEXITSTATUS(wst2));
    CHECK(fstat(rfd, &st) == 0 && S_ISFIFO(st.st_mode));
    close(rfd);
    CHECK(unlink("fifo") == 0);
    CHECK(mknod("plain", S_IFREG | 0600, 0) == 0);
    CHECK(unlink("plain") == 0);

    /* MAP_SHARED: another process and read() see the writes. */
    fd = open("shared", O_CREAT | O_RDWR, 0600);
    if (!map) goto cleanup;
    CHECK(ftruncate(fd, 8192) == 0);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    pid_t c = fork();
    if (c == 0) {
        int cfd = open("shared", O_RDWR);
        char *cm = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        strcpy(cm + 4096, "from the child");
        _exit(0);
    }
    int wst;
    CHECK(waitpid(c, &wst, 0) == c);
    strcpy(m, "from the parent");
    char rb[20] = {0};
    CHECK(pread(fd, rb, 15, 0) == 15);
    SHOW("shared mapping: parent sees '%s', read sees '%s'", m + 4096, rb);
    CHECK(pwrite(fd, "WRITTEN", 7, 0) == 7);
    SHOW("write seen through the mapping: %.7s", m);
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    p[0] = 'p';
    SHOW("private copy: %.7s, file keeps %.7s", p, m);
    munmap(m, 8192);
    munmap(p, 4096);
cleanup:
    close(fd);

    /* Clean up, the directory is empty again. */
    CHECK(unlink("shared") == 0 && unlink("f") == 0 && unlink("l") == 0 && unlink("dl") == 0);
    CHECK(unlink("other") == 0 || rmdir("other") == 0);
    CHECK(rmdir("d/sub") == 0 || unlink("d/sub") == 0);
    CHECK(rmdir("d") == 0);
    list(dir);
    return 0;
}
