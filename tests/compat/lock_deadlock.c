/* Deadlock detection of fcntl record locks, as Linux does it: a blocking
 * F_SETLKW that would close a wait-for cycle between lock owners fails with
 * EDEADLK (two processes, three processes across two files, two readers
 * upgrading), and only the request that closes the cycle sees it. Linux
 * checks the first conflicting lock only, so a request can block and get
 * EDEADLK later, when a retry meets the cycle. OFD locks and flock never
 * report EDEADLK: they block (cut short here by a timer, EINTR). F_SETLKW
 * cut by a handler fails with EINTR, or is restarted with SA_RESTART. A
 * close of any fd of the file drops the owner's locks and wakes a waiter. */
#include "check.h"
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/time.h>
#include <sys/wait.h>

#define F1 "/dev/shm/deadlock1"
#define F2 "/dev/shm/deadlock2"

static int lk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

static const char *res(int r) { return r == 0 ? "ok" : check_errname(errno); }

static int openrw(const char *path) {
    int fd = open(path, O_CREAT | O_RDWR, 0600);
    CHECK(fd >= 0);
    return fd;
}

static void post(int p[2]) { CHECK(write(p[1], "x", 1) == 1); }
static void await(int p[2]) {
    char c;
    CHECK(read(p[0], &c, 1) == 1);
}

static void reap(pid_t c, const char *who) {
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("%s exited=%d code=%d", who, WIFEXITED(st), WEXITSTATUS(st));
}

static volatile sig_atomic_t handled;
static int release_fd = -1; /* the handler writes here if >= 0 */
static void on_alarm(int sig) {
    (void)sig;
    handled++;
    if (release_fd >= 0) (void)!write(release_fd, "x", 1);
}

/* A SIGALRM handler (with or without SA_RESTART) and a one-shot timer. */
static void arm(int flags, int ms) {
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = flags};
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    handled = 0;
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = ms * 1000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
}

/* Child: open the file itself, lock `mine`, post, then wait for `want`. */
static pid_t locker(const char *path, off_t mine, const char *wpath, off_t want, int ready[2], const char *name) {
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        int fd = openrw(path), wfd = openrw(wpath);
        CHECK(lk(fd, F_SETLK, F_WRLCK, mine, 10) == 0);
        post(ready);
        int r = lk(wfd, F_SETLKW, F_WRLCK, want, 10);
        SHOW("%s: F_SETLKW -> %s", name, res(r));
        _exit(r == 0 ? 0 : 1);
    }
    return c;
}

int main(void) {
    int p[2], q[2];
    CHECK(pipe(p) == 0 && pipe(q) == 0);
    int fd = openrw(F1);

    /* 1. Two processes: parent holds A=0+10, child holds B=10+10 and waits
     * for A; the parent asking for B closes the cycle. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, 0, 10) == 0);
    pid_t c = locker(F1, 10, F1, 0, p, "child");
    await(p);
    usleep(200000);
    CHECK_ERRNO(lk(fd, F_SETLKW, F_WRLCK, 10, 10), EDEADLK);
    CHECK_ERRNO(lk(fd, F_SETLK, F_WRLCK, 10, 10), EAGAIN); /* non-blocking: no cycle check */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 10};
    CHECK(fcntl(fd, F_GETLK, &fl) == 0);
    SHOW("B after EDEADLK: %s by the child", fl.l_type == F_WRLCK && fl.l_pid == c ? "write-locked" : "?");
    CHECK(lk(fd, F_SETLK, F_UNLCK, 0, 10) == 0);
    reap(c, "child");

    /* 2. Three owners, two files: Y holds C (file 2) and waits for A (held
     * by the parent); X holds B and waits for C; the parent asks for B. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, 0, 10) == 0);
    pid_t y = locker(F2, 0, F1, 0, p, "Y");
    await(p);
    pid_t x = locker(F1, 10, F2, 0, p, "X");
    await(p);
    usleep(200000);
    CHECK_ERRNO(lk(fd, F_SETLKW, F_WRLCK, 10, 10), EDEADLK);
    CHECK(lk(fd, F_SETLK, F_UNLCK, 0, 10) == 0); /* Y gets A, exits; X gets C */
    reap(x, "X"); /* X prints after Y's exit, so reap X first */
    reap(y, "Y");

    /* 3. Two readers of one range both upgrade: the second gets EDEADLK. */
    CHECK(lk(fd, F_SETLK, F_RDLCK, 0, 10) == 0);
    c = fork();
    if (c == 0) {
        int cfd = openrw(F1);
        CHECK(lk(cfd, F_SETLK, F_RDLCK, 0, 10) == 0);
        post(p);
        int r = lk(cfd, F_SETLKW, F_WRLCK, 0, 10);
        SHOW("reader child: upgrade -> %s", res(r));
        _exit(0);
    }
    await(p);
    usleep(200000);
    CHECK_ERRNO(lk(fd, F_SETLKW, F_WRLCK, 0, 10), EDEADLK);
    CHECK(lk(fd, F_SETLK, F_UNLCK, 0, 10) == 0);
    reap(c, "reader child");

    /* 4. Only the first conflicting lock is checked. The parent holds A; X
     * holds 20+10 (and waits for nothing); Y holds 30+10 and waits for A.
     * The parent asks for 20+20: it meets X's lock first and blocks; when X
     * lets go, the retry meets Y's lock and fails with EDEADLK. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, 0, 10) == 0);
    x = fork();
    if (x == 0) {
        int cfd = openrw(F1);
        CHECK(lk(cfd, F_SETLK, F_WRLCK, 20, 10) == 0);
        post(p);
        await(q);
        usleep(300000);
        post(p); /* "letting go", then the exit drops the lock */
        _exit(0);
    }
    await(p);
    y = locker(F1, 30, F1, 0, p, "Y");
    await(p);
    post(q);
    usleep(100000);
    CHECK_ERRNO(lk(fd, F_SETLKW, F_WRLCK, 20, 20), EDEADLK);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    SHOW("EDEADLK came after X let go: %s", poll(&pf, 1, 0) == 1 ? "yes" : "no");
    await(p);
    reap(x, "X");
    CHECK(lk(fd, F_SETLK, F_UNLCK, 0, 10) == 0);
    reap(y, "Y");

    /* 5. OFD locks: the same cycle just blocks (cut by a timer here). */
    int a = openrw(F1);
    CHECK(lk(a, F_OFD_SETLK, F_WRLCK, 0, 10) == 0);
    c = fork();
    if (c == 0) {
        close(a); /* else the description (and its lock) outlives the parent's close */
        int cfd = openrw(F1);
        CHECK(lk(cfd, F_OFD_SETLK, F_WRLCK, 10, 10) == 0);
        post(p);
        int r = lk(cfd, F_OFD_SETLKW, F_WRLCK, 0, 10);
        SHOW("OFD child: F_OFD_SETLKW on A -> %s", res(r));
        _exit(0);
    }
    await(p);
    usleep(200000);
    arm(0, 200);
    CHECK_ERRNO(lk(a, F_OFD_SETLKW, F_WRLCK, 10, 10), EINTR);
    SHOW("OFD cycle blocked until the timer: handler ran %d", (int)handled);
    CHECK_ERRNO(lk(a, F_OFD_SETLK, F_WRLCK, 10, 10), EAGAIN);
    close(a); /* the description's lock goes; the child gets A */
    reap(c, "OFD child");

    /* 6. flock: no deadlock detection either. */
    int f1 = openrw(F1), f2 = openrw(F2);
    CHECK(flock(f1, LOCK_EX) == 0);
    c = fork();
    if (c == 0) {
        int c1 = openrw(F1), c2 = openrw(F2);
        CHECK(flock(c2, LOCK_EX) == 0);
        post(p);
        int r = flock(c1, LOCK_EX);
        SHOW("flock child: flock file 1 -> %s", res(r));
        _exit(0);
    }
    await(p);
    usleep(200000);
    arm(0, 200);
    CHECK_ERRNO(flock(f2, LOCK_EX), EINTR);
    CHECK_ERRNO(flock(f2, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    CHECK(flock(f1, LOCK_UN) == 0);
    reap(c, "flock child");
    close(f1);
    close(f2);

    /* 7. A signal handler interrupts F_SETLKW: EINTR without SA_RESTART;
     * with it the wait restarts (the handler tells the holder to let go). */
    c = fork();
    if (c == 0) {
        int cfd = openrw(F1);
        CHECK(lk(cfd, F_SETLK, F_WRLCK, 0, 0) == 0);
        post(p);
        await(q);
        _exit(0);
    }
    await(p);
    arm(0, 200);
    CHECK_ERRNO(lk(fd, F_SETLKW, F_WRLCK, 0, 0), EINTR);
    SHOW("handler ran %d", (int)handled);
    release_fd = q[1];
    arm(SA_RESTART, 200);
    int r = lk(fd, F_SETLKW, F_WRLCK, 0, 0);
    SHOW("F_SETLKW with an SA_RESTART handler -> %s, handler ran %d", res(r), (int)handled);
    release_fd = -1;
    reap(c, "holder");
    CHECK(lk(fd, F_SETLK, F_UNLCK, 0, 0) == 0);

    /* 8. Closing another fd of the file drops the lock and wakes a waiter. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, 0, 0) == 0);
    int other = open(F1, O_RDONLY);
    CHECK(other >= 0);
    c = fork();
    if (c == 0) {
        int cfd = openrw(F1);
        post(p);
        int r = lk(cfd, F_SETLKW, F_WRLCK, 5, 1);
        SHOW("waiter: F_SETLKW -> %s", res(r));
        _exit(0);
    }
    await(p);
    usleep(200000);
    SHOW("closing another fd");
    close(other);
    reap(c, "waiter");
    CHECK(unlink(F1) == 0 && unlink(F2) == 0);
    return 0;
}
