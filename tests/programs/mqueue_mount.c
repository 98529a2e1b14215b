/* The mqueue file system as a runc-like container sees it at /dev/mqueue:
 * a queue made with mq_open shows up as a regular file (mode, size 80,
 * nlink), the directory is 1777 with f_type MQUEUE_MAGIC, reading the file
 * gives the QSIZE/NOTIFY line (then EOF, lseek SEEK_END, rewind), a file
 * opened with open(2) is a real queue descriptor (mq_receive, mq_getattr,
 * no FD_CLOEXEC, O_RDWR in F_GETFL), write(2) on it fails, open(O_CREAT)
 * makes a queue with the default attributes that mq_open then finds, the
 * directory operations mqueue does not support (mkdir, symlink, mknod,
 * link, rename, O_TMPFILE, xattrs), truncate (it works and only sets the
 * size: the text read is unchanged), chmod through the path seen by fstat
 * of an mq descriptor, unlink(2) as mq_unlink, and the mountinfo line of
 * /dev/mqueue (fstype, source, super options). The container has its own
 * IPC namespace, so the directory holds only this program's queues; they
 * are unlinked at the start and at exit all the same. */
#include "../compat/check.h"
#include <dirent.h>
#include <mqueue.h>
#include <sys/statfs.h>
#include <sys/xattr.h>

#define DIR_ "/dev/mqueue"

static const char *const queues[] = {"/m1", "/m2", "/h", "/new"};

static void cleanup(void) {
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++) mq_unlink(queues[i]);
}

static const char *res(long r) { return r >= 0 ? "ok" : check_errname(errno); }

static const char *yesno(int b) { return b ? "yes" : "no"; }

static const char *ftype(mode_t m) {
    switch (m & S_IFMT) {
    case S_IFREG: return "regular";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symlink";
    case S_IFIFO: return "fifo";
    case S_IFCHR: return "chardev";
    case S_IFBLK: return "blockdev";
    case S_IFSOCK: return "socket";
    default: return "?";
    }
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* readdir of /dev/mqueue without . and .., sorted, with lstat of each. */
static void list_dir(const char *when) {
    DIR *d = opendir(DIR_);
    CHECK(d != NULL);
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        CHECK(n < 64);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmpstr);
    SHOW("%s: listing of " DIR_ ": %zu entries", when, n);
    for (size_t i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, DIR_ "/%s", names[i]);
        struct stat st;
        CHECK(lstat(path, &st) == 0);
        SHOW("%s: entry %s: type %s, mode %04o, size %lld, nlink %lu", when, names[i], ftype(st.st_mode),
             (unsigned)(st.st_mode & 07777), (long long)st.st_size, (unsigned long)st.st_nlink);
        free(names[i]);
    }
}

/* The text with \n shown as \n, so one observation stays on one line. */
static void show_text(const char *what, const char *buf, ssize_t n) {
    char out[512];
    size_t o = 0;
    for (ssize_t i = 0; i < n && o + 4 < sizeof out; i++) {
        if (buf[i] == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = buf[i];
        }
    }
    out[o] = 0;
    SHOW("%s: %zd bytes \"%s\"", what, n, out);
}

int main(void) {
    umask(022);
    cleanup();
    atexit(cleanup);

    /* 1. A queue with given attributes and one message. */
    struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 32};
    mqd_t q1 = mq_open("/m1", O_CREAT | O_EXCL | O_RDWR, 0640, &a);
    SHOW("mq_open /m1 O_CREAT|O_EXCL|O_RDWR 0640 maxmsg 4 msgsize 32: %s", res(q1));
    CHECK(q1 >= 0);
    int r = mq_send(q1, "hello", 5, 3);
    SHOW("mq_send \"hello\" prio 3: %s", res(r));

    /* 2. The queue in the directory. */
    list_dir("after mq_open");

    /* 3. The directory itself and its file system. */
    struct stat st;
    CHECK(stat(DIR_, &st) == 0);
    SHOW("stat " DIR_ ": type %s, mode %04o", ftype(st.st_mode), (unsigned)(st.st_mode & 07777));
    struct statfs sfs;
    CHECK(statfs(DIR_, &sfs) == 0);
    SHOW("statfs " DIR_ ": f_type 0x%lx", (unsigned long)sfs.f_type);

    /* 4. Reading the queue's file. */
    char buf[8192];
    int rfd = open(DIR_ "/m1", O_RDONLY);
    SHOW("open " DIR_ "/m1 O_RDONLY: %s", res(rfd));
    CHECK(rfd >= 0);
    ssize_t n = read(rfd, buf, sizeof buf);
    CHECK(n >= 0);
    show_text("first read", buf, n);
    n = read(rfd, buf, sizeof buf);
    SHOW("second read: %zd", n);
    off_t off = lseek(rfd, 0, SEEK_END);
    SHOW("lseek 0 SEEK_END: %lld", (long long)off);
    off = lseek(rfd, 0, SEEK_SET);
    SHOW("lseek 0 SEEK_SET: %lld", (long long)off);
    n = read(rfd, buf, sizeof buf);
    CHECK(n >= 0);
    show_text("read after rewind", buf, n);
    n = pread(rfd, buf, sizeof buf, 6);
    CHECK(n >= 0);
    show_text("pread at offset 6", buf, n);
    close(rfd);

    /* 5. A descriptor from open(2) is a queue descriptor. */
    int qfd = open(DIR_ "/m1", O_RDWR);
    SHOW("open " DIR_ "/m1 O_RDWR: %s", res(qfd));
    CHECK(qfd >= 0);
    unsigned prio = 99;
    n = mq_receive((mqd_t)qfd, buf, sizeof buf, &prio);
    if (n >= 0)
        SHOW("mq_receive on the open(2) descriptor: %zd bytes \"%.*s\" prio %u", n, (int)n, buf, prio);
    else
        SHOW("mq_receive on the open(2) descriptor: %s", check_errname(errno));
    struct mq_attr g;
    r = mq_getattr((mqd_t)qfd, &g);
    if (r == 0)
        SHOW("mq_getattr on the open(2) descriptor: maxmsg %ld msgsize %ld curmsgs %ld flags 0x%lx", g.mq_maxmsg,
             g.mq_msgsize, g.mq_curmsgs, g.mq_flags);
    else
        SHOW("mq_getattr on the open(2) descriptor: %s", check_errname(errno));
    SHOW("open(2) descriptor F_GETFD: %d", fcntl(qfd, F_GETFD));
    int fl = fcntl(qfd, F_GETFL);
    CHECK(fl >= 0);
    SHOW("open(2) descriptor F_GETFL access mode O_RDWR: %s", yesno((fl & O_ACCMODE) == O_RDWR));
    SHOW("mq_open descriptor F_GETFD: %d", fcntl((int)q1, F_GETFD));

    /* 6. write(2) is not how messages are sent. */
    errno = 0;
    n = write(qfd, "x", 1);
    SHOW("write(2) on an open(2) mq descriptor: %s", n >= 0 ? "ok" : check_errname(errno));
    errno = 0;
    n = write((int)q1, "x", 1);
    SHOW("write(2) on an mq_open descriptor: %s", n >= 0 ? "ok" : check_errname(errno));

    /* 7. open(O_CREAT) in the directory makes a queue. */
    int nfd = open(DIR_ "/new", O_CREAT | O_RDWR, 0600);
    SHOW("open " DIR_ "/new O_CREAT|O_RDWR 0600: %s", res(nfd));
    CHECK(nfd >= 0);
    r = mq_getattr((mqd_t)nfd, &g);
    if (r == 0)
        SHOW("mq_getattr of the new queue: maxmsg %ld msgsize %ld curmsgs %ld", g.mq_maxmsg, g.mq_msgsize,
             g.mq_curmsgs);
    else
        SHOW("mq_getattr of the new queue: %s", check_errname(errno));
    mqd_t qn = mq_open("/new", O_RDWR);
    SHOW("mq_open /new O_RDWR: %s", res(qn));
    CHECK(qn >= 0);
    r = mq_send((mqd_t)nfd, "via-open", 8, 7);
    SHOW("mq_send \"via-open\" prio 7 through the open(2) descriptor: %s", res(r));
    prio = 99;
    n = mq_receive(qn, buf, sizeof buf, &prio);
    if (n >= 0)
        SHOW("mq_receive through the mq_open descriptor: \"%.*s\" prio %u", (int)n, buf, prio);
    else
        SHOW("mq_receive through the mq_open descriptor: %s", check_errname(errno));
    r = mq_send(qn, "via-mq", 6, 1);
    SHOW("mq_send \"via-mq\" prio 1 through the mq_open descriptor: %s", res(r));
    prio = 99;
    n = mq_receive((mqd_t)nfd, buf, sizeof buf, &prio);
    if (n >= 0)
        SHOW("mq_receive through the open(2) descriptor: \"%.*s\" prio %u", (int)n, buf, prio);
    else
        SHOW("mq_receive through the open(2) descriptor: %s", check_errname(errno));
    list_dir("after open O_CREAT");

    /* 8. What the directory does not support. */
    SHOW("mkdir " DIR_ "/d: %s", res(mkdir(DIR_ "/d", 0755)));
    SHOW("symlink m1 " DIR_ "/s: %s", res(symlink("m1", DIR_ "/s")));
    SHOW("mknod " DIR_ "/f S_IFIFO: %s", res(mknod(DIR_ "/f", S_IFIFO | 0600, 0)));
    SHOW("link " DIR_ "/m1 " DIR_ "/h: %s", res(link(DIR_ "/m1", DIR_ "/h")));
    SHOW("rename " DIR_ "/m1 " DIR_ "/m2: %s", res(rename(DIR_ "/m1", DIR_ "/m2")));
    int tfd = open(DIR_, O_TMPFILE | O_RDWR, 0600);
    SHOW("open " DIR_ " O_TMPFILE|O_RDWR: %s", res(tfd));
    if (tfd >= 0) close(tfd);
    SHOW("setxattr " DIR_ "/m1 user.x: %s", res(setxattr(DIR_ "/m1", "user.x", "v", 1, 0)));
    SHOW("getxattr " DIR_ "/m1 user.x: %s", res(getxattr(DIR_ "/m1", "user.x", buf, sizeof buf)));
    SHOW("truncate " DIR_ "/m1 0: %s", res(truncate(DIR_ "/m1", 0)));
    CHECK(lstat(DIR_ "/m1", &st) == 0);
    SHOW("lstat " DIR_ "/m1 after truncate: size %lld", (long long)st.st_size);
    rfd = open(DIR_ "/m1", O_RDONLY);
    CHECK(rfd >= 0);
    n = read(rfd, buf, sizeof buf);
    CHECK(n >= 0);
    show_text("read after truncate", buf, n);
    SHOW("lseek 0 SEEK_END after truncate: %lld", (long long)lseek(rfd, 0, SEEK_END));
    close(rfd);
    list_dir("after the unsupported operations");

    /* 9. chmod through the path, seen by fstat of an mq descriptor. */
    SHOW("chmod " DIR_ "/m1 0600: %s", res(chmod(DIR_ "/m1", 0600)));
    struct stat fst;
    CHECK(fstat((int)q1, &fst) == 0);
    CHECK(lstat(DIR_ "/m1", &st) == 0);
    SHOW("fstat of the mq_open descriptor: type %s, mode %04o, same inode as the path %s", ftype(fst.st_mode),
         (unsigned)(fst.st_mode & 07777), yesno(fst.st_ino == st.st_ino && fst.st_dev == st.st_dev));

    /* 10. unlink(2) removes queues. */
    SHOW("unlink " DIR_ "/new: %s", res(unlink(DIR_ "/new")));
    mqd_t gone = mq_open("/new", O_RDWR);
    SHOW("mq_open /new O_RDWR after unlink: %s", res(gone));
    if (gone >= 0) mq_close(gone);
    r = mq_send(qn, "still", 5, 0);
    SHOW("mq_send on a descriptor of the unlinked queue: %s", res(r));
    SHOW("mq_unlink /m1: %s", res(mq_unlink("/m1")));
    list_dir("after unlinking both");

    /* 11. The mount. */
    static char info[65536];
    CHECK(read_small_file("/proc/self/mountinfo", info, sizeof info) > 0);
    int found = 0;
    for (char *line = strtok(info, "\n"); line; line = strtok(NULL, "\n")) {
        char root[512], mp[512];
        unsigned long id, parent;
        unsigned ma, mi;
        if (sscanf(line, "%lu %lu %u:%u %511s %511s", &id, &parent, &ma, &mi, root, mp) != 6) continue;
        if (strcmp(mp, DIR_) != 0) continue;
        char *sep = strstr(line, " - ");
        CHECK(sep != NULL);
        char fstype[64], source[256], sopts[512];
        CHECK(sscanf(sep + 3, "%63s %255s %511s", fstype, source, sopts) == 3);
        SHOW("mountinfo " DIR_ ": fstype %s, source %s, super options %s", fstype, source, sopts);
        found++;
    }
    SHOW("mountinfo lines for " DIR_ ": %d", found);

    /* 12. Clean up. */
    mq_close(q1);
    mq_close(qn);
    close(qfd);
    close(nfd);
    return 0;
}
