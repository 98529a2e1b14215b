/* Advisory locks between processes: fcntl record locks (F_GETLK reports
 * the holder, F_SETLK fails with EAGAIN, F_SETLKW waits, ranges split,
 * closing any fd of the file drops the process's locks), OFD locks, and
 * flock (shared, exclusive, LOCK_NB, released with the description). */
#include "check.h"
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

static int lk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

static void getlk(int fd, short type, off_t start, off_t len, pid_t holder) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    CHECK(fcntl(fd, F_GETLK, &fl) == 0);
    SHOW("F_GETLK %d@%ld+%ld: type=%s start=%ld len=%ld holder=%s", type, (long)start, (long)len,
         fl.l_type == F_UNLCK ? "unlocked" : fl.l_type == F_WRLCK ? "write" : "read", (long)fl.l_start,
         (long)fl.l_len, fl.l_type == F_UNLCK ? "-" : fl.l_pid == holder ? "parent" : "other");
}

int main(void) {
    int fd = open("/dev/shm/lockfile", O_CREAT | O_RDWR, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, "0123456789", 10) == 10);
    pid_t parent = getpid();
    CHECK(lk(fd, F_SETLK, F_WRLCK, 0, 5) == 0);
    CHECK(lk(fd, F_SETLK, F_RDLCK, 7, 0) == 0);
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t c = fork();
    if (c == 0) {
        int cfd = open("/dev/shm/lockfile", O_RDWR);
        getlk(cfd, F_RDLCK, 0, 1, parent);
        getlk(cfd, F_RDLCK, 5, 2, parent);
        getlk(cfd, F_WRLCK, 8, 1, parent);
        CHECK_ERRNO(lk(cfd, F_SETLK, F_WRLCK, 2, 1), EAGAIN);
        CHECK(lk(cfd, F_SETLK, F_RDLCK, 8, 1) == 0); /* read locks share */
        CHECK(write(ready[1], "r", 1) == 1);
        /* Waits until the parent unlocks. */
        CHECK(lk(cfd, F_SETLKW, F_WRLCK, 0, 5) == 0);
        SHOW("child got the write lock after the parent let go");
        _exit(0);
    }
    char ch;
    CHECK(read(ready[0], &ch, 1) == 1);
    usleep(50000);
    /* Unlocking the middle splits the lock: 0-1 and 3-4 stay. */
    CHECK(lk(fd, F_SETLK, F_UNLCK, 2, 1) == 0);
    CHECK(lk(fd, F_SETLK, F_UNLCK, 0, 5) == 0);
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("child exited=%d code=%d", WIFEXITED(st), WEXITSTATUS(st));

    /* Closing another fd of the file drops this process's locks. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, 0, 0) == 0);
    int other = open("/dev/shm/lockfile", O_RDONLY);
    close(other);
    c = fork();
    if (c == 0) {
        int cfd = open("/dev/shm/lockfile", O_RDWR);
        getlk(cfd, F_WRLCK, 0, 0, parent);
        _exit(0);
    }
    CHECK(waitpid(c, &st, 0) == c);

    /* OFD locks belong to the open file description. */
    int a = open("/dev/shm/lockfile", O_RDWR), b = open("/dev/shm/lockfile", O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    CHECK(fcntl(a, F_OFD_SETLK, &fl) == 0);
    CHECK_ERRNO(fcntl(b, F_OFD_SETLK, &fl), EAGAIN);
    fl.l_type = F_WRLCK;
    CHECK(fcntl(b, F_OFD_GETLK, &fl) == 0);
    SHOW("OFD conflict reported: type=%s pid=%d", fl.l_type == F_WRLCK ? "write" : "?", fl.l_pid);
    close(a);
    fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    CHECK(fcntl(b, F_OFD_SETLK, &fl) == 0);
    close(b);

    /* flock. */
    a = open("/dev/shm/lockfile", O_RDONLY);
    b = open("/dev/shm/lockfile", O_RDONLY);
    CHECK(flock(a, LOCK_SH) == 0);
    CHECK(flock(b, LOCK_SH | LOCK_NB) == 0);
    CHECK_ERRNO(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    CHECK(flock(a, LOCK_UN) == 0);
    CHECK(flock(b, LOCK_EX | LOCK_NB) == 0);
    c = fork();
    if (c == 0) {
        /* The inherited fd shares the description (and its lock). */
        close(b);
        int cfd = open("/dev/shm/lockfile", O_RDONLY);
        CHECK_ERRNO(flock(cfd, LOCK_SH | LOCK_NB), EWOULDBLOCK);
        CHECK(flock(cfd, LOCK_SH) == 0); /* waits for the parent's close */
        SHOW("child got the shared flock");
        _exit(0);
    }
    usleep(50000);
    close(b); /* the last fd of the description: its lock goes */
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("flock child exited=%d code=%d", WIFEXITED(st), WEXITSTATUS(st));
    CHECK_ERRNO(flock(a, 0), EINVAL);
    CHECK(unlink("/dev/shm/lockfile") == 0);
    return 0;
}
