/* What the init of a fresh PID namespace sees: run natively as pid 1 of a
 * new namespace (`unshare --pid --fork --mount-proc`) and inside Cordon as
 * the init of a pod's container with a PID namespace of its own, and the
 * outputs compared. In a fresh namespace ids are handed out in order, so
 * this program prints them: its own (1, no parent), a thread's, its
 * children's as fork, wait4, waitid and SIGCHLD report them and as they see
 * themselves (output comes from one process at a time); process groups (setpgid, getpgid, kill(-pgrp)); an orphan's
 * new parent (this init); signals from inside the namespace to its init
 * (SIGKILL and SIGTERM ignored without a handler, SIGUSR1 caught with the
 * sender's id); kill(-1); a zombie's /proc stat; /proc/self and
 * thread-self; /proc's process list; sigqueue's si_pid; ids that do not
 * exist in the namespace. */
#include "../compat/check.h"
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static volatile sig_atomic_t usr1_from = -1, chld_from = -1;

static void on_usr1(int s, siginfo_t *si, void *c) {
    (void)s, (void)c;
    usr1_from = si->si_pid;
}

static void on_chld(int s, siginfo_t *si, void *c) {
    (void)s, (void)c;
    chld_from = si->si_pid;
}

static void show_link(const char *path) {
    char buf[64] = {0};
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    SHOW("%s -> %s", path, n < 0 ? check_errname(errno) : buf);
}

/* The process list of /proc, in order. */
static void show_procs(void) {
    DIR *d = opendir("/proc");
    CHECK(d != NULL);
    int ids[64], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end == 0 && v > 0) ids[n++] = (int)v;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (ids[j] < ids[i]) {
                int t = ids[i];
                ids[i] = ids[j], ids[j] = t;
            }
    char line[256] = "";
    for (int i = 0; i < n; i++) snprintf(line + strlen(line), sizeof line - strlen(line), " %d", ids[i]);
    SHOW("/proc lists:%s", line);
}

/* Fields 3 (state), 4 (ppid) and 5 (pgrp) of /proc/<pid>/stat. */
static void show_stat(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0);
    buf[n] = 0;
    char state;
    int ppid, pgrp;
    CHECK(sscanf(strrchr(buf, ')') + 2, "%c %d %d", &state, &ppid, &pgrp) == 3);
    SHOW("stat of %d: state %c ppid %d pgrp %d", pid, state, ppid, pgrp);
}

static void *thread_main(void *arg) {
    (void)arg;
    SHOW("thread: tid %ld pid %d", (long)syscall(SYS_gettid), getpid());
    show_link("/proc/thread-self");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", (long)syscall(SYS_gettid));
    SHOW("its task dir: %s", access(path, R_OK) == 0 ? "there" : check_errname(errno));
    return NULL;
}

/* Waits for child `pid` (-1: any) and says how it ended. */
static void reap_pid(const char *what, pid_t pid) {
    int status;
    pid_t p = waitpid(pid, &status, 0);
    if (p < 0) {
        SHOW("%s: wait %s", what, check_errname(errno));
        return;
    }
    if (WIFEXITED(status))
        SHOW("%s: pid %d exited %d", what, p, WEXITSTATUS(status));
    else
        SHOW("%s: pid %d killed by %d", what, p, WTERMSIG(status));
}

static void reap(const char *what) { reap_pid(what, -1); }

int main(void) {
    /* The namespace's init leads a session (natively it starts in the
     * caller's, which the namespace cannot see). */
    setsid();
    SHOW("pid %d ppid %d tid %ld pgid %d sid %d", getpid(), getppid(), (long)syscall(SYS_gettid), getpgid(0),
         getsid(0));
    show_link("/proc/self");
    show_link("/proc/thread-self");
    show_stat(1);

    struct sigaction sa = {.sa_sigaction = on_chld, .sa_flags = SA_SIGINFO | SA_RESTART};
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
    sa.sa_sigaction = on_usr1;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_main, NULL) == 0);
    CHECK(pthread_join(th, NULL) == 0);

    /* A child: fork's id, its own view, wait4's, and SIGCHLD's si_pid. */
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        SHOW("child: pid %d ppid %d pgid %d sid %d", getpid(), getppid(), getpgid(0), getsid(0));
        _exit(7);
    }
    reap("child");
    SHOW("fork returned %d", c);
    SHOW("SIGCHLD from %d", (int)chld_from);

    /* Its own process group, signalled as a group. */
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        setpgid(0, 0);
        for (;;) pause();
    }
    setpgid(c, c);
    SHOW("getpgid(%d) = %d", c, getpgid(c));
    CHECK(kill(-c, SIGTERM) == 0);
    reap("group");

    /* An orphan: its parent exits, this init adopts it. */
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            for (int i = 0; i < 5000 && getppid() != 1; i++) usleep(1000);
            _exit(getppid() == 1 ? 42 : 1);
        }
        _exit(g > 0 ? 0 : 1);
    }
    reap("orphan's parent");
    reap("orphan");

    /* Signals from inside the namespace to its init. */
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        SHOW("kill(1, SIGKILL) = %d", kill(1, SIGKILL));
        SHOW("kill(1, SIGTERM) = %d", kill(1, SIGTERM));
        SHOW("kill(1, SIGUSR1) = %d", kill(1, SIGUSR1));
        _exit(0);
    }
    reap("signaller");
    for (int i = 0; i < 1000 && usr1_from < 0; i++) usleep(1000);
    SHOW("init lives; SIGUSR1 from %d", (int)usr1_from);

    /* waitid's si_pid, and a zombie in /proc. */
    c = fork();
    CHECK(c >= 0);
    if (c == 0) _exit(3);
    siginfo_t si = {0};
    CHECK(waitid(P_PID, c, &si, WEXITED | WNOWAIT) == 0);
    SHOW("waitid: si_pid %d status %d", si.si_pid, si.si_status);
    show_stat(c);
    reap("zombie");

    /* kill(-1): every process but init and the caller. */
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        CHECK(kids[i] >= 0);
        if (kids[i] == 0) {
            for (;;) pause();
        }
    }
    show_procs();
    CHECK(kill(-1, SIGUSR2) == 0);
    /* (Both die: which is reaped first is up to the race.) */
    reap_pid("kill(-1)", kids[0]);
    reap_pid("kill(-1)", kids[1]);

    /* Ids that are not in the namespace. */
    CHECK_ERRNO(kill(4000000, 0), ESRCH);
    CHECK_ERRNO(getpgid(4000000), ESRCH);
    CHECK_ERRNO(waitpid(4000000, NULL, WNOHANG), ECHILD);
    CHECK_ERRNO(syscall(SYS_pidfd_open, 4000000, 0), ESRCH);
    long pidfd = syscall(SYS_pidfd_open, 1, 0);
    SHOW("pidfd_open(1): %s", pidfd >= 0 ? "ok" : check_errname(errno));

    /* sigqueue to itself: its own id as the sender. */
    usr1_from = -1;
    union sigval v = {.sival_int = 1};
    CHECK(sigqueue(getpid(), SIGUSR1, v) == 0);
    for (int i = 0; i < 1000 && usr1_from < 0; i++) usleep(1000);
    SHOW("sigqueue from %d", (int)usr1_from);
    show_procs();
    return 0;
}
