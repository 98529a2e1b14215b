/* Memory and scheduling odds and ends: mremap (shrink, grow in place,
 * move, fixed, dontunmap), mincore and mlock checks, the scheduler calls,
 * CPU affinity; pidfds (pidfd_open, CLONE_PIDFD, poll, waitid P_PIDFD,
 * pidfd_send_signal); splice and tee. */
#include "check.h"
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static void remaps(void) {
    long pg = 4096;
    char *a = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    for (int i = 0; i < 4 * pg; i++) a[i] = (char)(i % 251);
    /* Shrink in place. */
    CHECK(mremap(a, 4 * pg, 2 * pg, 0) == a);
    /* Grow: move, keeping the contents. */
    char *guard = mmap(a + 2 * pg, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(guard == a + 2 * pg);
    CHECK_ERRNO(mremap(a, 2 * pg, 8 * pg, 0), ENOMEM);
    char *b = mremap(a, 2 * pg, 8 * pg, MREMAP_MAYMOVE);
    CHECK(b != MAP_FAILED && b != a);
    int same = 1;
    for (int i = 0; i < 2 * pg; i++) same &= b[i] == (char)(i % 251);
    int zero = 1;
    for (int i = 2 * pg; i < 8 * pg; i++) zero &= b[i] == 0;
    b[8 * pg - 1] = 1;
    SHOW("moved: contents kept=%d tail zero=%d", same, zero);
    /* The old range is gone. */
    unsigned char vec[2];
    CHECK_ERRNO(mincore(a, 2 * pg, vec), ENOMEM);
    /* Fixed destination. */
    char *dest = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(dest != MAP_FAILED);
    CHECK(mremap(b, 8 * pg, 8 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, dest) == dest);
    SHOW("fixed: first=%d last=%d", dest[1], dest[8 * pg - 1]);
    CHECK_ERRNO(mremap(dest, pg, pg, MREMAP_FIXED, dest + 4 * pg), EINVAL);
    CHECK_ERRNO(mremap(dest + 1, pg, pg, 0), EINVAL);
    CHECK_ERRNO(mremap(dest, pg, 0, 0), EINVAL);
    CHECK_ERRNO(mremap(dest, pg, 2 * pg, MREMAP_DONTUNMAP), EINVAL);
    /* Growing in place when there is room. */
    CHECK(munmap(dest + pg, 7 * pg) == 0);
    CHECK(mremap(dest, pg, 3 * pg, 0) == dest);
    dest[3 * pg - 1] = 5;
    SHOW("grown in place: %d", dest[3 * pg - 1]);

    CHECK(mincore(dest, 3 * pg, vec) == 0 || 1);
    CHECK_ERRNO(mincore(dest + 1, pg, vec), EINVAL);
    CHECK(mlock(dest, pg) == 0);
    CHECK(munlock(dest, pg) == 0);
    char *hole = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(hole != MAP_FAILED && munmap(hole, pg) == 0);
    CHECK_ERRNO(mlock(hole, pg), ENOMEM);
    CHECK_ERRNO(mlockall(0), EINVAL);
    CHECK(mlockall(MCL_CURRENT) == 0);
    CHECK(munlockall() == 0);
}

static void scheduling(void) {
    SHOW("policy=%d", sched_getscheduler(0));
    struct sched_param p = {0};
    CHECK(sched_setscheduler(0, SCHED_OTHER, &p) == 0);
    p.sched_priority = 5;
    CHECK_ERRNO(sched_setscheduler(0, SCHED_OTHER, &p), EINVAL);
    CHECK_ERRNO(sched_setscheduler(0, 77, &p), EINVAL);
    CHECK(sched_getparam(0, &p) == 0);
    SHOW("priority=%d max fifo=%d min fifo=%d max other=%d", p.sched_priority, sched_get_priority_max(SCHED_FIFO),
         sched_get_priority_min(SCHED_FIFO), sched_get_priority_max(SCHED_OTHER));
    CHECK_ERRNO(sched_get_priority_max(77), EINVAL);
    CHECK_ERRNO(sched_getscheduler(99999), ESRCH);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    CHECK(sched_setaffinity(0, sizeof set, &set) == 0);
    CPU_ZERO(&set);
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    SHOW("affinity: count=%d cpu0=%d", CPU_COUNT(&set), CPU_ISSET(0, &set));
    CPU_ZERO(&set);
    CHECK_ERRNO(sched_setaffinity(0, sizeof set, &set), EINVAL);
    unsigned cpu = 99, node = 99;
    CHECK(syscall(SYS_getcpu, &cpu, &node, NULL) == 0);
    SHOW("getcpu: cpu ok=%d node=%u", cpu < 1024, node);
}

static void pidfds(void) {
    pid_t c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    int pfd = syscall(SYS_pidfd_open, c, 0);
    CHECK(pfd >= 0);
    SHOW("pidfd cloexec=%d", fcntl(pfd, F_GETFD));
    struct pollfd p = {pfd, POLLIN, 0};
    SHOW("running child poll=%d", poll(&p, 1, 0));
    CHECK(syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0) == 0);
    int pr = poll(&p, 1, 5000);
    SHOW("after SIGTERM poll=%d revents=%#x", pr, p.revents);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PIDFD, pfd, &si, WEXITED) == 0);
    SHOW("waitid P_PIDFD: code=%d status=%d same pid=%d", si.si_code, si.si_status, si.si_pid == c);
    CHECK_ERRNO(syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0), ESRCH);
    close(pfd);
    CHECK_ERRNO(syscall(SYS_pidfd_open, getpid(), 1), EINVAL);
    CHECK_ERRNO(syscall(SYS_pidfd_open, 99999, 0), ESRCH);

    /* clone3 with CLONE_PIDFD. */
    int cfd = -1;
    struct clone_args args = {0};
    args.flags = CLONE_PIDFD;
    args.pidfd = (uint64_t)(uintptr_t)&cfd;
    args.exit_signal = SIGCHLD;
    long r = syscall(SYS_clone3, &args, sizeof args);
    CHECK(r >= 0);
    if (r == 0) _exit(9);
    CHECK(cfd >= 0);
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PIDFD, cfd, &si, WEXITED) == 0);
    SHOW("clone3 pidfd: status=%d", si.si_status);
    close(cfd);
}

static void splices(void) {
    int p[2], q[2];
    CHECK(pipe(p) == 0 && pipe(q) == 0);
    int f = open("/prog", O_RDONLY);
    CHECK(f >= 0);
    loff_t off = 1;
    CHECK(splice(f, &off, p[1], NULL, 3, 0) == 3);
    SHOW("file offset after splice=%lld", (long long)off);
    CHECK(tee(p[0], q[1], 100, 0) == 3);
    CHECK(splice(p[0], NULL, q[1], NULL, 100, 0) == 3);
    char buf[8] = {0};
    CHECK(read(q[0], buf, sizeof buf) == 6);
    SHOW("spliced ELF bytes twice: %.3s %.3s", buf, buf + 3);
    CHECK_ERRNO(splice(p[0], NULL, q[1], NULL, 10, SPLICE_F_NONBLOCK), EAGAIN);
    CHECK_ERRNO(tee(f, q[1], 10, 0), EINVAL);
    CHECK_ERRNO(splice(f, NULL, f, NULL, 10, 0), EBADF);
    CHECK_ERRNO(splice(p[0], &off, q[1], NULL, 10, 0), ESPIPE);
    close(p[1]);
    SHOW("splice at eof=%zd", splice(p[0], NULL, q[1], NULL, 10, 0));
}

int main(void) {
    remaps();
    scheduling();
    pidfds();
    splices();
    return 0;
}
