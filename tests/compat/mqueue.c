/* POSIX message queues as Linux implements them: mq_open (default and
 * given attributes, O_CREAT/O_EXCL, bad names and attributes, access modes,
 * permissions for another user, the CAP_SYS_RESOURCE and RLIMIT_MSGQUEUE
 * limits, the raw syscall's names without the leading '/'), the mq
 * descriptor as a file (fstat, fstatfs, FD_CLOEXEC, F_GETFL/F_SETFL, read of
 * the QSIZE line, write, poll, dup, close), mq_send/mq_receive (priority
 * order, sizes, MQ_PRIO_MAX, zero-length messages, O_NONBLOCK, absolute
 * deadlines, bad timespecs, EFAULT), mq_getattr/mq_setattr, blocking
 * across processes (a waiting receiver gets a message straight from the
 * sender, a waiting sender's message enters the queue as soon as a slot
 * frees), EINTR and SA_RESTART, mq_notify (SIGEV_SIGNAL and SIGEV_NONE,
 * one-shot, EBUSY, unregistering, removal on close by the owner, no signal
 * when a receiver is waiting) and mq_unlink. Every queue is unlinked at the
 * start and at exit: native runs share the host's queue namespace. */
#include "check.h"
#include <limits.h>
#include <linux/capability.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#define Q(x) "/cordon-compat-mq-" x
#define RAWNAME "cordon-compat-mq-raw"

static char longname[300];    /* "/" + 255 characters: the longest name */
static char toolongname[300]; /* "/" + 256 characters */

static const char *const names[] = {
    Q("default"), Q("small"), Q("attr"), Q("modes"), Q("user"), Q("userown"), Q("limits"), Q("prio"),
    Q("block"), Q("full"), Q("intr"), Q("notify"), Q("poll"), Q("dup"), Q("unlink"), Q("acc3"), "/" RAWNAME,
};

static pid_t main_pid;

static void cleanup(void) {
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) mq_unlink(names[i]);
    mq_unlink(longname);
}

static void cleanup_at_exit(void) {
    if (getpid() == main_pid) cleanup();
}

static const char *res(long r) { return r >= 0 ? "ok" : check_errname(errno); }

static mqd_t qopen(const char *name, int flags, long maxmsg, long msgsize) {
    struct mq_attr a = {.mq_maxmsg = maxmsg, .mq_msgsize = msgsize};
    mqd_t q = mq_open(name, flags | O_CREAT, 0600, &a);
    CHECK(q >= 0);
    return q;
}

static const char *flagname(long f) {
    static char s[32];
    if (f == 0) return "0";
    if (f == O_NONBLOCK) return "O_NONBLOCK";
    snprintf(s, sizeof s, "%#lo", f);
    return s;
}

static void show_attr(const char *label, mqd_t q) {
    struct mq_attr a;
    memset(&a, 0x55, sizeof a);
    CHECK(mq_getattr(q, &a) == 0);
    SHOW("%s: flags=%s maxmsg=%ld msgsize=%ld curmsgs=%ld", label, flagname(a.mq_flags), a.mq_maxmsg,
         a.mq_msgsize, a.mq_curmsgs);
}

static long curmsgs(mqd_t q) {
    struct mq_attr a;
    CHECK(mq_getattr(q, &a) == 0);
    return a.mq_curmsgs;
}

static void qsend(mqd_t q, const char *m, unsigned prio) { CHECK(mq_send(q, m, strlen(m), prio) == 0); }

/* Receives one message (the buffer is big enough for every queue here). */
static void recv1(const char *label, mqd_t q) {
    char buf[8200];
    unsigned prio = 12345;
    ssize_t n = mq_receive(q, buf, sizeof buf, &prio);
    if (n < 0) {
        SHOW("%s: %s", label, check_errname(errno));
        return;
    }
    char shown[64] = "";
    for (ssize_t i = 0, j = 0; i < n && j < 56; i++)
        j += snprintf(shown + j, sizeof shown - j, buf[i] >= 32 && buf[i] < 127 ? "%c" : "\\x%02x",
                      (unsigned char)buf[i]);
    SHOW("%s: \"%s\" len=%zd prio=%u", label, shown, n, prio);
}

static const char *pollname(short r) {
    static char s[128];
    static const struct { short bit; const char *name; } bits[] = {
        {POLLIN, "IN"}, {POLLPRI, "PRI"}, {POLLOUT, "OUT"}, {POLLERR, "ERR"}, {POLLHUP, "HUP"},
        {POLLNVAL, "NVAL"}, {POLLRDNORM, "RDNORM"}, {POLLRDBAND, "RDBAND"}, {POLLWRNORM, "WRNORM"},
        {POLLWRBAND, "WRBAND"}, {POLLRDHUP, "RDHUP"},
    };
    s[0] = 0;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (r & bits[i].bit) {
            if (s[0]) strcat(s, "|");
            strcat(s, bits[i].name);
        }
    return s[0] ? s : "0";
}

static void show_poll(const char *label, mqd_t q) {
    struct pollfd p = {.fd = q, .events = POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLWRNORM | POLLRDBAND | POLLWRBAND};
    int r = poll(&p, 1, 0);
    CHECK(r >= 0);
    SHOW("%s: poll -> %d %s", label, r, pollname(p.revents));
}

/* The text a read of an mq descriptor gives; the pid is shown by role. */
static void show_read(const char *label, mqd_t q, pid_t other) {
    char buf[200];
    ssize_t n = read(q, buf, sizeof buf - 1);
    CHECK(n >= 0);
    buf[n] = 0;
    unsigned long qsize;
    int notify, signo, pid;
    CHECK(sscanf(buf, "QSIZE:%lu NOTIFY:%d SIGNO:%d NOTIFY_PID:%d", &qsize, &notify, &signo, &pid) == 4);
    char again[200];
    snprintf(again, sizeof again, "QSIZE:%-10lu NOTIFY:%-5d SIGNO:%-5d NOTIFY_PID:%-6d\n", qsize, notify, signo, pid);
    int same = strcmp(again, buf) == 0;
    ssize_t n2 = read(q, buf, sizeof buf - 1);
    CHECK(lseek(q, 0, SEEK_SET) == 0);
    SHOW("%s: read %zd bytes, kernel layout=%s, QSIZE=%lu NOTIFY=%d SIGNO=%d NOTIFY_PID=%s; read again -> %zd", label,
         n, same ? "yes" : "no", qsize, notify, signo,
         pid == 0 ? "0" : pid == getpid() ? "me" : pid == other ? "child" : "other", n2);
}

static void settle(void) { usleep(50000); }

static void post(int p[2]) { CHECK(write(p[1], "x", 1) == 1); }
static void await(int p[2]) {
    char c;
    CHECK(read(p[0], &c, 1) == 1);
}

static void reap(pid_t c, const char *who) {
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("%s: exited=%d code=%d", who, WIFEXITED(st), WEXITSTATUS(st));
}

/* Forks a child that waits in mq_receive on `q` and exits with the digit
 * it got (99 on failure); returns once it is (all but surely) waiting. */
static pid_t waiting_digit_receiver(mqd_t q, int p[2]) {
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        char buf[64];
        post(p);
        ssize_t n = mq_receive(q, buf, sizeof buf, NULL);
        _exit(n == 1 ? buf[0] - '0' : 99);
    }
    await(p);
    settle();
    return c;
}

static int still_running(pid_t c) {
    int st;
    return waitpid(c, &st, WNOHANG) == 0;
}

static struct timespec rt_plus_ms(long ms) {
    struct timespec t;
    CHECK(clock_gettime(CLOCK_REALTIME, &t) == 0);
    t.tv_nsec += ms * 1000000;
    t.tv_sec += t.tv_nsec / 1000000000;
    t.tv_nsec %= 1000000000;
    return t;
}

static int ts_before(struct timespec a, struct timespec b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

static volatile sig_atomic_t handled;
static mqd_t handler_q = -1; /* the handler sends "h" here if >= 0 */
static void on_alarm(int sig) {
    (void)sig;
    handled++;
    if (handler_q >= 0) (void)mq_send(handler_q, "h", 1, 3);
}

static void arm(int flags, int ms) {
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = flags};
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    handled = 0;
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = ms * 1000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
}

static int sig_pending(int sig) {
    sigset_t s;
    CHECK(sigpending(&s) == 0);
    return sigismember(&s, sig);
}

/* Takes a pending notification signal and shows its siginfo. */
static void take_signal(const char *label, int sig, pid_t sender) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    struct timespec zero = {0, 0};
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = sigtimedwait(&s, &si, &zero);
    if (r < 0) {
        SHOW("%s: no signal (%s)", label, check_errname(errno));
        return;
    }
    SHOW("%s: signal %s code=%s errno=%d value=%d pid=%s uid=%d", label, r == SIGUSR1 ? "SIGUSR1" : r == SIGUSR2 ? "SIGUSR2" : "?",
         si.si_code == SI_MESGQ ? "SI_MESGQ" : "other", si.si_errno, si.si_value.sival_int,
         si.si_pid == sender ? "sender" : "other", (int)si.si_uid);
}

static int notify_sig(mqd_t q, int sig, int value) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = sig;
    ev.sigev_value.sival_int = value;
    return mq_notify(q, &ev);
}

static int notify_none(mqd_t q) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_NONE;
    return mq_notify(q, &ev);
}

static volatile int h_code, h_value, h_count;
static void on_usr2(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    h_code = si->si_code;
    h_value = si->si_value.sival_int;
    h_count++;
}

/* Drops CAP_SYS_RESOURCE from the effective set. */
static void drop_sys_resource(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    CHECK(syscall(SYS_capget, &h, d) == 0);
    d[0].effective &= ~(1u << CAP_SYS_RESOURCE);
    CHECK(syscall(SYS_capset, &h, d) == 0);
}

static int have_sys_resource(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    CHECK(syscall(SYS_capget, &h, d) == 0);
    return (d[0].effective >> CAP_SYS_RESOURCE) & 1;
}

static void test_open(void) {
    /* Default attributes: the ipc namespace's msg_default/msgsize_default. */
    mqd_t q = mq_open(Q("default"), O_CREAT | O_RDWR, 0666, NULL);
    CHECK(q >= 0);
    show_attr("default attr", q);
    struct stat st;
    CHECK(fstat(q, &st) == 0);
    SHOW("fstat: reg=%d mode=%04o nlink=%ld size=%ld uid=%d gid=%d", S_ISREG(st.st_mode), st.st_mode & 07777,
         (long)st.st_nlink, (long)st.st_size, st.st_uid, st.st_gid);
    struct statfs sf;
    CHECK(fstatfs(q, &sf) == 0);
    SHOW("fstatfs: type=%#lx", (unsigned long)sf.f_type);
    SHOW("F_GETFD=%d F_GETFL=%#o", fcntl(q, F_GETFD), fcntl(q, F_GETFL));
    CHECK_ERRNO(mq_open(Q("default"), O_CREAT | O_EXCL | O_RDWR, 0600, NULL), EEXIST);

    /* O_CREAT on an existing queue opens it: mode and attr are ignored,
     * even an attr that would be refused. */
    struct mq_attr a = {.mq_maxmsg = 3, .mq_msgsize = 7};
    mqd_t q2 = mq_open(Q("default"), O_CREAT | O_RDWR, 0600, &a);
    CHECK(q2 >= 0);
    show_attr("existing opened with O_CREAT and other attr", q2);
    CHECK(fstat(q2, &st) == 0);
    SHOW("its mode: %04o", st.st_mode & 07777);
    CHECK(mq_close(q2) == 0);
    struct mq_attr bad = {.mq_maxmsg = 0, .mq_msgsize = 0};
    q2 = mq_open(Q("default"), O_CREAT | O_RDWR, 0600, &bad);
    SHOW("existing opened with O_CREAT and maxmsg=0 msgsize=0: %s", res(q2));
    if (q2 >= 0) CHECK(mq_close(q2) == 0);
    q2 = mq_open(Q("default"), O_EXCL | O_RDONLY);
    SHOW("existing opened with O_EXCL without O_CREAT: %s", res(q2));
    if (q2 >= 0) CHECK(mq_close(q2) == 0);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(Q("default")) == 0);

    CHECK_ERRNO(mq_open(Q("default"), O_RDWR), ENOENT);
    CHECK_ERRNO(mq_open(Q("default"), O_RDWR, 0600, &bad), ENOENT); /* no O_CREAT: attr unused */

    /* fchmod works on the queue; umask applies at creation. */
    q = mq_open(Q("small"), O_CREAT | O_EXCL | O_WRONLY, 0777, &a);
    CHECK(q >= 0);
    show_attr("given attr 3/7", q);
    CHECK(fstat(q, &st) == 0);
    SHOW("created 0777 under umask 022: mode %04o", st.st_mode & 07777);
    CHECK(fchmod(q, 0640) == 0);
    CHECK(fstat(q, &st) == 0);
    SHOW("after fchmod 0640: mode %04o", st.st_mode & 07777);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(Q("small")) == 0);
    q = mq_open(Q("small"), O_CREAT | O_EXCL | O_RDWR, 04755, &a);
    CHECK(q >= 0);
    CHECK(fstat(q, &st) == 0);
    SHOW("created 04755: mode %04o", st.st_mode & 07777);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(Q("small")) == 0);

    /* mq_flags and mq_curmsgs of the attr given at creation are ignored. */
    struct mq_attr odd = {.mq_flags = O_NONBLOCK, .mq_maxmsg = 2, .mq_msgsize = 4, .mq_curmsgs = 5};
    q = mq_open(Q("attr"), O_CREAT | O_EXCL | O_RDWR, 0600, &odd);
    CHECK(q >= 0);
    show_attr("attr with flags=O_NONBLOCK curmsgs=5", q);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(Q("attr")) == 0);
    q = mq_open(Q("attr"), O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0600, &odd);
    CHECK(q >= 0);
    show_attr("opened with O_NONBLOCK", q);
    SHOW("its F_GETFL=%#o", fcntl(q, F_GETFL));
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(Q("attr")) == 0);

    /* Attributes refused at creation. */
    static const struct { long maxmsg, msgsize; } bads[] = {
        {0, 16}, {4, 0}, {-1, 16}, {4, -1}, {65537, 16}, {4, 16 * 1024 * 1024 + 1},
    };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        struct mq_attr b = {.mq_maxmsg = bads[i].maxmsg, .mq_msgsize = bads[i].msgsize};
        q = mq_open(Q("attr"), O_CREAT | O_EXCL | O_RDWR, 0600, &b);
        SHOW("create maxmsg=%ld msgsize=%ld: %s", bads[i].maxmsg, bads[i].msgsize, res(q));
        if (q >= 0) CHECK(mq_close(q) == 0 && mq_unlink(Q("attr")) == 0);
    }
    CHECK_ERRNO(mq_open(Q("attr"), O_RDWR), ENOENT); /* nothing was left behind */
    CHECK_ERRNO(syscall(SYS_mq_open, RAWNAME, O_CREAT | O_RDWR, 0600, (void *)8), EFAULT);
    CHECK_ERRNO(syscall(SYS_mq_open, RAWNAME, O_RDWR, 0600, (void *)8), EFAULT); /* copied even without O_CREAT */

    /* Beyond msg_max (10) and msgsize_max (8192) only with CAP_SYS_RESOURCE
     * (the result is shown against that rule, not by itself). */
    int cap = have_sys_resource();
    struct mq_attr big = {.mq_maxmsg = 11, .mq_msgsize = 16};
    q = mq_open(Q("limits"), O_CREAT | O_EXCL | O_RDWR, 0600, &big);
    int e = errno;
    SHOW("maxmsg 11 follows the CAP_SYS_RESOURCE rule: %s", cap ? (q >= 0 ? "yes" : "no") : (q < 0 && e == EINVAL ? "yes" : "no"));
    if (q >= 0) CHECK(mq_close(q) == 0 && mq_unlink(Q("limits")) == 0);
    big.mq_maxmsg = 2;
    big.mq_msgsize = 8193;
    q = mq_open(Q("limits"), O_CREAT | O_EXCL | O_RDWR, 0600, &big);
    e = errno;
    SHOW("msgsize 8193 follows the CAP_SYS_RESOURCE rule: %s", cap ? (q >= 0 ? "yes" : "no") : (q < 0 && e == EINVAL ? "yes" : "no"));
    if (q >= 0) CHECK(mq_close(q) == 0 && mq_unlink(Q("limits")) == 0);

    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        drop_sys_resource();
        struct mq_attr x = {.mq_maxmsg = 11, .mq_msgsize = 16};
        SHOW("no CAP_SYS_RESOURCE: maxmsg 11 -> %s", res(mq_open(Q("limits"), O_CREAT | O_EXCL | O_RDWR, 0600, &x)));
        x.mq_maxmsg = 2, x.mq_msgsize = 8193;
        SHOW("no CAP_SYS_RESOURCE: msgsize 8193 -> %s", res(mq_open(Q("limits"), O_CREAT | O_EXCL | O_RDWR, 0600, &x)));
        x.mq_maxmsg = 10, x.mq_msgsize = 8192;
        mqd_t m = mq_open(Q("limits"), O_CREAT | O_EXCL | O_RDWR, 0600, &x);
        SHOW("no CAP_SYS_RESOURCE: maxmsg 10 msgsize 8192 -> %s", res(m));
        if (m >= 0) {
            mq_close(m);
            mq_unlink(Q("limits"));
        }
        /* RLIMIT_MSGQUEUE bounds the bytes of the queues a user creates
         * (no capability bypasses it); opening an existing queue is free. */
        mqd_t keep = qopen(Q("small"), O_RDWR, 1, 1);
        struct rlimit rl = {0, 0};
        CHECK(setrlimit(RLIMIT_MSGQUEUE, &rl) == 0);
        x.mq_maxmsg = 1, x.mq_msgsize = 1;
        SHOW("RLIMIT_MSGQUEUE 0: create -> %s", res(mq_open(Q("limits"), O_CREAT | O_EXCL | O_RDWR, 0600, &x)));
        m = mq_open(Q("small"), O_RDWR);
        SHOW("RLIMIT_MSGQUEUE 0: open existing -> %s", res(m));
        mq_close(m);
        mq_close(keep);
        mq_unlink(Q("small"));
        _exit(0);
    }
    reap(c, "limits child");
    CHECK_ERRNO(mq_open(Q("limits"), O_RDWR), ENOENT);

    /* O_ACCMODE 3 (O_WRONLY|O_RDWR): EINVAL on an existing queue, but a
     * missing one is created first and then opened for neither. */
    CHECK_ERRNO(mq_open(Q("acc3"), O_WRONLY | O_RDWR), ENOENT);
    q = mq_open(Q("acc3"), O_CREAT | O_WRONLY | O_RDWR, 0600, &a);
    SHOW("O_CREAT|O_WRONLY|O_RDWR on a missing queue: %s", res(q));
    if (q >= 0) {
        CHECK_ERRNO(mq_send(q, "x", 1, 0), EBADF);
        char buf[16];
        CHECK_ERRNO(mq_receive(q, buf, sizeof buf, NULL), EBADF);
        show_attr("that descriptor", q);
        CHECK(mq_close(q) == 0);
    }
    CHECK_ERRNO(mq_open(Q("acc3"), O_WRONLY | O_RDWR), EINVAL);
    CHECK_ERRNO(mq_open(Q("acc3"), O_CREAT | O_WRONLY | O_RDWR, 0600, &a), EINVAL);
    mq_unlink(Q("acc3"));
}

static void test_names(void) {
    struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 8};
    CHECK_ERRNO(mq_open("cordon-compat-mq-noslash", O_CREAT | O_RDWR, 0600, &a), EINVAL); /* glibc */
    CHECK_ERRNO(mq_open("/cordon-compat-mq/inner", O_CREAT | O_RDWR, 0600, &a), EACCES);
    CHECK_ERRNO(mq_open("/", O_CREAT | O_RDWR, 0600, &a), ENOENT);
    CHECK_ERRNO(mq_open("/", O_RDWR), ENOENT);
    CHECK_ERRNO(mq_open("/.", O_CREAT | O_RDWR, 0600, &a), EACCES);
    CHECK_ERRNO(mq_open("/..", O_CREAT | O_RDWR, 0600, &a), EACCES);
    CHECK_ERRNO(mq_open("//", O_CREAT | O_RDWR, 0600, &a), EACCES);
    CHECK_ERRNO(mq_open(toolongname, O_CREAT | O_RDWR, 0600, &a), ENAMETOOLONG);
    CHECK_ERRNO(mq_open(toolongname, O_RDWR), ENAMETOOLONG);
    mqd_t q = mq_open(longname, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
    SHOW("a name of 255 characters: %s", res(q));
    if (q >= 0) CHECK(mq_close(q) == 0);
    SHOW("unlink it: %s", res(mq_unlink(longname)));
    CHECK_ERRNO(mq_unlink("cordon-compat-mq-noslash"), EINVAL);
    CHECK_ERRNO(mq_unlink("/"), ENOENT);
    CHECK_ERRNO(mq_unlink("/cordon-compat-mq/inner"), EACCES);
    CHECK_ERRNO(mq_unlink("/."), EACCES);
    CHECK_ERRNO(mq_unlink(toolongname), ENAMETOOLONG);
    CHECK_ERRNO(mq_unlink(Q("never-created")), ENOENT);

    /* The system call takes the name without glibc's leading '/'. */
    CHECK_ERRNO(syscall(SYS_mq_open, "/" RAWNAME, O_CREAT | O_RDWR, 0600, &a), EACCES);
    CHECK_ERRNO(syscall(SYS_mq_open, "", O_CREAT | O_RDWR, 0600, &a), ENOENT);
    CHECK_ERRNO(syscall(SYS_mq_unlink, "/" RAWNAME), EACCES);
    long r = syscall(SYS_mq_open, RAWNAME, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
    SHOW("raw mq_open without '/': %s", res(r));
    CHECK(r >= 0);
    q = mq_open("/" RAWNAME, O_RDWR);
    CHECK(q >= 0);
    qsend((mqd_t)r, "raw", 0);
    recv1("glibc's /name is the same queue", q);
    CHECK(mq_close(q) == 0 && mq_close((mqd_t)r) == 0);
    SHOW("raw mq_unlink without '/': %s", res(syscall(SYS_mq_unlink, RAWNAME)));
    CHECK_ERRNO(mq_unlink("/" RAWNAME), ENOENT);
}

static void test_modes(void) {
    mqd_t w = qopen(Q("modes"), O_WRONLY, 4, 16);
    mqd_t r = mq_open(Q("modes"), O_RDONLY);
    CHECK(r >= 0);
    char buf[64];
    CHECK_ERRNO(mq_send(r, "x", 1, 0), EBADF);
    CHECK_ERRNO(mq_receive(w, buf, sizeof buf, NULL), EBADF);
    CHECK_ERRNO(mq_receive(w, buf, 1, NULL), EBADF); /* the mode is checked before the size */
    SHOW("F_GETFL: O_RDONLY one %#o, O_WRONLY one %#o", fcntl(r, F_GETFL), fcntl(w, F_GETFL));
    qsend(w, "one", 0);
    recv1("read-only descriptor receives", r);
    show_attr("write-only descriptor getattr", w);
    CHECK_ERRNO(read(w, buf, sizeof buf), EBADF);
    CHECK_ERRNO(write(r, "x", 1), EBADF);
    mqd_t rw = mq_open(Q("modes"), O_RDWR);
    CHECK(rw >= 0);
    CHECK_ERRNO(write(rw, "x", 1), EINVAL);

    /* Non-mq descriptors. */
    int p[2];
    CHECK(pipe(p) == 0);
    struct mq_attr at = {0}, badflags = {.mq_flags = 1};
    CHECK_ERRNO(mq_send(p[1], "x", 1, 0), EBADF);
    CHECK_ERRNO(mq_receive(p[0], buf, sizeof buf, NULL), EBADF);
    CHECK_ERRNO(mq_getattr(p[0], &at), EBADF);
    CHECK_ERRNO(mq_setattr(p[0], &at, NULL), EBADF);
    CHECK_ERRNO(mq_setattr(p[0], &badflags, NULL), EINVAL); /* the flags are checked first */
    CHECK_ERRNO(notify_sig(p[0], SIGUSR1, 0), EBADF);
    CHECK_ERRNO(mq_send(-1, "x", 1, 0), EBADF);
    CHECK_ERRNO(mq_getattr(1000, &at), EBADF);
    close(p[0]);
    close(p[1]);

    /* Another user: the mode bits decide; root's sticky mqueue directory
     * keeps it from unlinking root's queue. */
    CHECK(fchmod(w, 0604) == 0);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        CHECK(setgid(65534) == 0 && setuid(65534) == 0);
        mqd_t m = mq_open(Q("modes"), O_RDONLY);
        SHOW("user, queue 0604: O_RDONLY -> %s", res(m));
        SHOW("user, queue 0604: O_WRONLY -> %s", res(mq_open(Q("modes"), O_WRONLY)));
        SHOW("user, queue 0604: O_RDWR -> %s", res(mq_open(Q("modes"), O_RDWR)));
        SHOW("user, queue 0604: O_CREAT|O_WRONLY -> %s", res(mq_open(Q("modes"), O_CREAT | O_WRONLY, 0666, NULL)));
        SHOW("user: fchmod root's queue -> %s", res(fchmod(m, 0666)));
        SHOW("user: unlink root's queue -> %s", res(mq_unlink(Q("modes"))));
        SHOW("user: raw unlink of root's queue -> %s", res(syscall(SYS_mq_unlink, "cordon-compat-mq-modes")));
        struct mq_attr x = {.mq_maxmsg = 2, .mq_msgsize = 8};
        mqd_t own = mq_open(Q("userown"), O_CREAT | O_EXCL | O_RDWR, 0600, &x);
        SHOW("user creates a queue: %s", res(own));
        struct stat st;
        if (own >= 0 && fstat(own, &st) == 0) SHOW("its owner: uid=%d gid=%d mode=%04o", st.st_uid, st.st_gid, st.st_mode & 07777);
        _exit(0);
    }
    reap(c, "user child");
    CHECK(fchmod(w, 0600) == 0);
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        CHECK(setgid(65534) == 0 && setuid(65534) == 0);
        SHOW("user, queue 0600: O_RDONLY -> %s", res(mq_open(Q("modes"), O_RDONLY)));
        _exit(0);
    }
    reap(c, "user child");
    mqd_t own = mq_open(Q("userown"), O_RDWR);
    SHOW("root opens the user's 0600 queue: %s", res(own));
    if (own >= 0) CHECK(mq_close(own) == 0);
    SHOW("root unlinks the user's queue: %s", res(mq_unlink(Q("userown"))));
    CHECK(mq_close(w) == 0 && mq_close(r) == 0 && mq_close(rw) == 0);
    CHECK(mq_unlink(Q("modes")) == 0);
}

static void test_send_receive(void) {
    mqd_t q = qopen(Q("prio"), O_RDWR, 8, 16);
    /* Priority order: higher first, FIFO within one priority. */
    qsend(q, "a", 1);
    qsend(q, "b", 5);
    qsend(q, "c", 1);
    qsend(q, "d", 5);
    qsend(q, "e", 0);
    qsend(q, "f", MQ_PRIO_MAX - 1);
    qsend(q, "g", 5);
    show_attr("after 7 sends", q);
    show_read("read of the descriptor", q, 0);
    for (int i = 0; i < 7; i++) {
        char label[16];
        snprintf(label, sizeof label, "recv %d", i + 1);
        recv1(label, q);
    }
    show_read("read when empty", q, 0);

    /* Sizes. */
    char sixteen[17] = "0123456789abcdef", buf[64];
    CHECK_ERRNO(mq_send(q, sixteen, 17, 0), EMSGSIZE);
    CHECK(mq_send(q, sixteen, 16, 0) == 0);
    CHECK_ERRNO(mq_receive(q, buf, 15, NULL), EMSGSIZE);
    show_attr("after EMSGSIZE receive", q);
    recv1("16 bytes into a buffer of 16", q);
    CHECK_ERRNO(mq_receive(q, buf, 15, NULL), EMSGSIZE); /* empty, blocking: fails at once */
    CHECK(mq_send(q, "", 0, 7) == 0);
    CHECK(mq_send(q, "x\0y", 3, 0) == 0);
    recv1("zero-length message", q);
    recv1("embedded NUL", q);
    CHECK(mq_send(q, "n", 1, 9) == 0);
    ssize_t n = mq_receive(q, buf, sizeof buf, NULL);
    SHOW("receive with a NULL prio pointer: %zd", n);

    /* MQ_PRIO_MAX is checked before the descriptor. */
    SHOW("MQ_PRIO_MAX=%d", MQ_PRIO_MAX);
    CHECK_ERRNO(mq_send(q, "x", 1, MQ_PRIO_MAX), EINVAL);
    CHECK_ERRNO(mq_send(q, "x", 1, 0xffffffffu), EINVAL);
    CHECK_ERRNO(mq_send(-1, "x", 1, MQ_PRIO_MAX), EINVAL);
    CHECK_ERRNO(mq_send(q, sixteen, 17, MQ_PRIO_MAX), EINVAL);
    show_attr("after the refused sends", q);

    /* EFAULT: a bad buffer to send fails (unless the message is empty);
     * a bad buffer to receive fails and the message is gone. */
    CHECK_ERRNO(mq_send(q, (const char *)8, 4, 0), EFAULT);
    SHOW("send of 0 bytes from a bad address: %s", res(mq_send(q, (const char *)8, 0, 2)));
    CHECK(mq_send(q, "lost", 4, 1) == 0);
    show_attr("before the bad receives", q);
    unsigned pr = 0;
    n = mq_receive(q, (char *)8, 16, &pr);
    SHOW("receive of the empty message into a bad address: %s len=%zd prio=%u", res(n), n, pr);
    CHECK_ERRNO(mq_receive(q, (char *)8, 16, NULL), EFAULT);
    show_attr("after EFAULT receive", q);
    CHECK(mq_send(q, "p", 1, 3) == 0);
    CHECK_ERRNO(mq_receive(q, buf, sizeof buf, (unsigned *)8), EFAULT);
    show_attr("after EFAULT for the prio", q);

    /* Full and empty queues without blocking. */
    struct mq_attr old, nb = {.mq_flags = O_NONBLOCK};
    CHECK(mq_setattr(q, &nb, &old) == 0);
    CHECK_ERRNO(mq_receive(q, buf, sizeof buf, NULL), EAGAIN);
    for (int i = 0; i < 8; i++) CHECK(mq_send(q, "m", 1, i % 3) == 0);
    CHECK_ERRNO(mq_send(q, "m", 1, 0), EAGAIN);
    CHECK_ERRNO(mq_send(q, "m", 1, 31), EAGAIN); /* a higher priority does not make room */
    show_attr("full", q);
    struct timespec bad = rt_plus_ms(1000);
    bad.tv_nsec = 1000000000;
    CHECK_ERRNO(mq_timedsend(q, "m", 1, 0, &bad), EINVAL); /* the timespec is checked first */
    CHECK(mq_setattr(q, &old, NULL) == 0);

    /* Absolute CLOCK_REALTIME deadlines. */
    struct timespec past = rt_plus_ms(0), zero = {0, 0}; /* past: a second ago; zero: the epoch */
    past.tv_sec -= 1;
    CHECK_ERRNO(mq_timedsend(q, "m", 1, 0, &past), ETIMEDOUT);
    CHECK_ERRNO(mq_timedsend(q, "m", 1, 0, &zero), ETIMEDOUT);
    struct timespec soon = rt_plus_ms(30), now;
    CHECK_ERRNO(mq_timedsend(q, "m", 1, 0, &soon), ETIMEDOUT);
    CHECK(clock_gettime(CLOCK_REALTIME, &now) == 0);
    SHOW("timed send returned no earlier than its deadline: %s", ts_before(now, soon) ? "no" : "yes");
    CHECK_ERRNO(mq_timedsend(q, "m", 1, 0, &bad), EINVAL);
    struct timespec negsec = {-1, 0}, negnsec = {past.tv_sec, -1};
    CHECK_ERRNO(mq_timedsend(q, "m", 1, 0, &negsec), EINVAL);
    CHECK_ERRNO(mq_timedsend(q, "m", 1, 0, &negnsec), EINVAL);
    n = mq_timedreceive(q, buf, sizeof buf, NULL, &past);
    SHOW("timed receive with a past deadline on a non-empty queue: %s", res(n));
    CHECK_ERRNO(mq_timedreceive(q, buf, sizeof buf, NULL, &bad), EINVAL); /* even though a message waits */
    CHECK_ERRNO(mq_timedsend(q, "m", 1, MQ_PRIO_MAX, &bad), EINVAL);
    while (curmsgs(q) > 0) CHECK(mq_receive(q, buf, sizeof buf, NULL) == 1);
    CHECK_ERRNO(mq_timedreceive(q, buf, sizeof buf, NULL, &past), ETIMEDOUT);
    CHECK_ERRNO(mq_timedreceive(q, buf, sizeof buf, NULL, &zero), ETIMEDOUT);
    soon = rt_plus_ms(30);
    CHECK_ERRNO(mq_timedreceive(q, buf, sizeof buf, NULL, &soon), ETIMEDOUT);
    CHECK(clock_gettime(CLOCK_REALTIME, &now) == 0);
    SHOW("timed receive returned no earlier than its deadline: %s", ts_before(now, soon) ? "no" : "yes");
    CHECK_ERRNO(mq_timedreceive(q, buf, sizeof buf, NULL, &bad), EINVAL);
    CHECK_ERRNO(mq_timedreceive(q, buf, sizeof buf, NULL, &negsec), EINVAL);
    CHECK_ERRNO(mq_timedreceive(q, buf, 15, NULL, &past), EMSGSIZE);
    CHECK_ERRNO(mq_timedreceive(q, buf, 15, NULL, &bad), EINVAL);
    CHECK(mq_send(q, "t", 1, 4) == 0);
    recv1("timed receive, message waiting, deadline in the future", q);

    /* mq_setattr: only O_NONBLOCK changes, the old attr comes back. */
    qsend(q, "s", 0);
    struct mq_attr set = {.mq_flags = O_NONBLOCK, .mq_maxmsg = 99, .mq_msgsize = 99, .mq_curmsgs = 99};
    memset(&old, 0x55, sizeof old);
    CHECK(mq_setattr(q, &set, &old) == 0);
    SHOW("setattr old: flags=%s maxmsg=%ld msgsize=%ld curmsgs=%ld", flagname(old.mq_flags), old.mq_maxmsg,
         old.mq_msgsize, old.mq_curmsgs);
    show_attr("after setattr", q);
    SHOW("F_GETFL has O_NONBLOCK: %d", (fcntl(q, F_GETFL) & O_NONBLOCK) != 0);
    set.mq_flags = O_NONBLOCK | O_APPEND;
    CHECK_ERRNO(mq_setattr(q, &set, &old), EINVAL);
    set.mq_flags = 1;
    CHECK_ERRNO(mq_setattr(q, &set, NULL), EINVAL);
    show_attr("after refused setattr", q);
    set.mq_flags = 0;
    CHECK(mq_setattr(q, &set, NULL) == 0);
    show_attr("after clearing", q);
    CHECK(fcntl(q, F_SETFL, O_NONBLOCK) == 0);
    show_attr("after fcntl F_SETFL O_NONBLOCK", q);
    recv1("receive", q);
    CHECK_ERRNO(mq_receive(q, buf, sizeof buf, NULL), EAGAIN);
    CHECK(fcntl(q, F_SETFL, 0) == 0);
    show_attr("after fcntl F_SETFL 0", q);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(Q("prio")) == 0);
}

static void test_blocking(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    mqd_t q = qopen(Q("block"), O_RDWR, 2, 16);

    /* A receiver waits; the message goes straight to it. */
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        post(p);
        recv1("waiting child received", q);
        _exit(0);
    }
    await(p);
    settle();
    SHOW("child still waiting: %d", still_running(c));
    qsend(q, "wake", 6);
    long after = curmsgs(q);
    reap(c, "receiver child"); /* it prints what it got: the parent prints after it */
    SHOW("curmsgs right after the send: %ld", after);

    /* Two receivers wait: FIFO. */
    pid_t c1 = waiting_digit_receiver(q, p);
    pid_t c2 = waiting_digit_receiver(q, p);
    qsend(q, "1", 0);
    qsend(q, "2", 9);
    reap(c1, "first waiting receiver (got message)");
    reap(c2, "second waiting receiver (got message)");

    /* A sender waits on a full queue; a receive makes room and its message
     * enters the queue at once, in priority order. */
    qsend(q, "first", 0);
    qsend(q, "second", 0);
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        post(p);
        int r = mq_send(q, "third", 5, 9);
        _exit(r == 0 ? 0 : 1);
    }
    await(p);
    settle();
    SHOW("sender still waiting: %d, curmsgs %ld", still_running(c), curmsgs(q));
    recv1("receive from the full queue", q);
    SHOW("curmsgs right after the receive: %ld", curmsgs(q));
    reap(c, "sender child");
    recv1("then", q);
    recv1("then", q);

    /* A timed send waits until a receive makes room. */
    qsend(q, "x", 0);
    qsend(q, "y", 0);
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        post(p);
        struct timespec t = rt_plus_ms(5000);
        int r = mq_timedsend(q, "z", 1, 0, &t);
        _exit(r == 0 ? 0 : 1);
    }
    await(p);
    settle();
    recv1("receive with a timed sender waiting", q);
    reap(c, "timed sender child");
    recv1("then", q);
    recv1("then", q);
    close(p[0]);
    close(p[1]);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(Q("block")) == 0);
}

static void test_interrupt(void) {
    mqd_t q = qopen(Q("intr"), O_RDWR, 1, 16);
    mqd_t nbq = mq_open(Q("intr"), O_WRONLY | O_NONBLOCK);
    CHECK(nbq >= 0);
    char buf[64];
    arm(0, 30);
    CHECK_ERRNO(mq_receive(q, buf, sizeof buf, NULL), EINTR);
    SHOW("handler ran %d", (int)handled);
    struct timespec t = rt_plus_ms(5000);
    arm(0, 30);
    CHECK_ERRNO(mq_timedreceive(q, buf, sizeof buf, NULL, &t), EINTR);
    SHOW("handler ran %d", (int)handled);
    qsend(q, "full", 0);
    arm(0, 30);
    CHECK_ERRNO(mq_send(q, "x", 1, 0), EINTR);
    SHOW("handler ran %d", (int)handled);
    arm(0, 30);
    CHECK_ERRNO(mq_timedsend(q, "x", 1, 0, &t), EINTR);
    recv1("queue holds", q);

    /* With SA_RESTART the wait goes on; the handler sends a message. */
    handler_q = nbq;
    arm(SA_RESTART, 30);
    recv1("mq_receive with an SA_RESTART handler", q);
    SHOW("handler ran %d", (int)handled);
    arm(SA_RESTART, 30);
    recv1("mq_timedreceive with an SA_RESTART handler", q);
    SHOW("handler ran %d", (int)handled);
    handler_q = -1;
    signal(SIGALRM, SIG_DFL);
    CHECK(mq_close(q) == 0 && mq_close(nbq) == 0);
    CHECK(mq_unlink(Q("intr")) == 0);
}

static void test_notify(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    CHECK(sigprocmask(SIG_BLOCK, &s, NULL) == 0);
    int p[2], back[2];
    CHECK(pipe(p) == 0 && pipe(back) == 0);
    mqd_t q = qopen(Q("notify"), O_RDWR, 4, 16);
    char buf[64];

    SHOW("unregister with nothing registered: %s", res(mq_notify(q, NULL)));
    CHECK(notify_sig(q, SIGUSR1, 42) == 0);
    CHECK_ERRNO(notify_sig(q, SIGUSR1, 43), EBUSY); /* even for the owner */
    CHECK_ERRNO(notify_none(q), EBUSY);
    show_read("registered", q, 0);
    qsend(q, "m1", 0);
    take_signal("message on the empty queue", SIGUSR1, getpid());
    show_read("after it fired", q, 0);
    qsend(q, "m2", 0);
    SHOW("another message: SIGUSR1 pending %d", sig_pending(SIGUSR1));

    /* A registration on a non-empty queue fires only when a message makes
     * it non-empty again. */
    CHECK(notify_sig(q, SIGUSR1, 44) == 0);
    qsend(q, "m3", 0);
    SHOW("send to a non-empty queue: SIGUSR1 pending %d", sig_pending(SIGUSR1));
    while (curmsgs(q) > 0) CHECK(mq_receive(q, buf, sizeof buf, NULL) == 2);
    SHOW("queue emptied: SIGUSR1 pending %d", sig_pending(SIGUSR1));
    qsend(q, "m4", 0);
    take_signal("then a message on the empty queue", SIGUSR1, getpid());
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 2);

    /* Unregistering by the owner. */
    CHECK(notify_sig(q, SIGUSR1, 45) == 0);
    CHECK(mq_notify(q, NULL) == 0);
    qsend(q, "m5", 0);
    SHOW("after unregistering: SIGUSR1 pending %d", sig_pending(SIGUSR1));
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 2);

    /* Another process: EBUSY while registered; its mq_notify(NULL) does
     * nothing; its exit does not remove the parent's registration. */
    CHECK(notify_sig(q, SIGUSR1, 46) == 0);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        CHECK_ERRNO(notify_sig(q, SIGUSR2, 1), EBUSY);
        SHOW("child: unregister the parent's registration: %s", res(mq_notify(q, NULL)));
        CHECK_ERRNO(notify_sig(q, SIGUSR2, 1), EBUSY);
        _exit(0);
    }
    reap(c, "child");
    CHECK_ERRNO(notify_sig(q, SIGUSR1, 47), EBUSY);
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        qsend(q, "m6", 0);
        _exit(0);
    }
    reap(c, "sending child");
    take_signal("message from a child", SIGUSR1, c);
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 2);

    /* The child's registration: it gets the signal from the parent's send;
     * its exit (closing the descriptor) removes a registration. */
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        CHECK(notify_sig(q, SIGUSR2, 7) == 0);
        show_read("child registered", q, 0);
        post(p);
        siginfo_t si;
        int r = sigwaitinfo(&s, &si);
        SHOW("child got %s code=%s value=%d from the parent: %s", r == SIGUSR2 ? "SIGUSR2" : "?",
             si.si_code == SI_MESGQ ? "SI_MESGQ" : "other", si.si_value.sival_int, si.si_pid == getppid() ? "yes" : "no");
        CHECK(notify_sig(q, SIGUSR2, 8) == 0);
        post(p);
        await(back); /* wait for the parent to try */
        _exit(0);
    }
    await(p);
    show_read("parent sees", q, c);
    CHECK_ERRNO(notify_sig(q, SIGUSR1, 48), EBUSY);
    qsend(q, "m7", 0);
    await(p);
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 2);
    CHECK_ERRNO(notify_sig(q, SIGUSR1, 49), EBUSY);
    post(back);
    reap(c, "registered child");
    SHOW("register after that child exited: %s", res(notify_sig(q, SIGUSR1, 50)));

    /* Closing any descriptor of the queue in the owner removes it. */
    mqd_t d = dup(q);
    CHECK(d >= 0);
    CHECK(close(d) == 0);
    SHOW("register after closing a dup: %s", res(notify_sig(q, SIGUSR1, 51)));
    mqd_t other = mq_open(Q("notify"), O_RDONLY);
    CHECK(other >= 0);
    CHECK(mq_close(other) == 0);
    SHOW("register after closing another descriptor of the queue: %s", res(notify_sig(q, SIGUSR1, 52)));
    qsend(q, "m8", 0);
    take_signal("the last registration fires", SIGUSR1, getpid());
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 2);

    /* SIGEV_NONE: holds the slot, sends nothing, removed by a message. */
    CHECK(notify_none(q) == 0);
    show_read("SIGEV_NONE registered", q, 0);
    CHECK_ERRNO(notify_sig(q, SIGUSR1, 53), EBUSY);
    qsend(q, "m9", 0);
    SHOW("SIGEV_NONE: SIGUSR1 pending %d SIGUSR2 pending %d", sig_pending(SIGUSR1), sig_pending(SIGUSR2));
    SHOW("register after SIGEV_NONE was used up: %s", res(notify_sig(q, SIGUSR1, 54)));
    CHECK(mq_notify(q, NULL) == 0);
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 2);

    /* No notification when a receiver is waiting: the message goes to it,
     * the registration stays. */
    CHECK(notify_sig(q, SIGUSR1, 55) == 0);
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        post(p);
        recv1("waiting child received", q);
        _exit(0);
    }
    await(p);
    settle();
    qsend(q, "m10", 0);
    reap(c, "receiver child");
    SHOW("with a waiting receiver: SIGUSR1 pending %d", sig_pending(SIGUSR1));
    CHECK_ERRNO(notify_sig(q, SIGUSR1, 56), EBUSY);
    qsend(q, "m11", 0);
    take_signal("next message", SIGUSR1, getpid());
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 3);

    /* A handler with SA_SIGINFO runs before mq_send returns. */
    struct sigaction sa = {.sa_sigaction = on_usr2, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
    sigset_t u2;
    sigemptyset(&u2);
    sigaddset(&u2, SIGUSR2);
    CHECK(sigprocmask(SIG_UNBLOCK, &u2, NULL) == 0);
    CHECK(notify_sig(q, SIGUSR2, 77) == 0);
    qsend(q, "m12", 0);
    SHOW("handler: count=%d code=%s value=%d", h_count, h_code == SI_MESGQ ? "SI_MESGQ" : "other", h_value);
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 3);
    CHECK(sigprocmask(SIG_BLOCK, &u2, NULL) == 0);

    /* Bad registrations: the sigevent is checked before the descriptor. */
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = 99;
    CHECK_ERRNO(mq_notify(q, &ev), EINVAL);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR1;
    CHECK_ERRNO(mq_notify(q, &ev), EINVAL);
    CHECK_ERRNO(notify_sig(q, 65, 0), EINVAL);
    CHECK_ERRNO(notify_sig(-1, 65, 0), EINVAL);
    CHECK_ERRNO(notify_sig(-1, SIGUSR1, 0), EBADF);
    CHECK_ERRNO(mq_notify(-1, NULL), EBADF);
    SHOW("SIGEV_SIGNAL with signal 0: %s", res(notify_sig(q, 0, 0)));
    mq_notify(q, NULL);
    SHOW("SIGEV_SIGNAL with signal 64: %s", res(notify_sig(q, 64, 0)));
    mq_notify(q, NULL);
    CHECK_ERRNO(syscall(SYS_mq_notify, q, (void *)8), EFAULT);
    SHOW("sigprocmask: SIGUSR1 pending %d SIGUSR2 pending %d", sig_pending(SIGUSR1), sig_pending(SIGUSR2));
    close(p[0]);
    close(p[1]);
    close(back[0]);
    close(back[1]);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(Q("notify")) == 0);
    CHECK(sigprocmask(SIG_UNBLOCK, &s, NULL) == 0);
}

static void test_poll(void) {
    mqd_t q = qopen(Q("poll"), O_RDWR, 2, 16);
    mqd_t w = mq_open(Q("poll"), O_WRONLY);
    CHECK(w >= 0);
    show_poll("empty", q);
    qsend(q, "p", 0);
    show_poll("one message", q);
    show_poll("one message, write-only descriptor", w);
    qsend(q, "p", 0);
    show_poll("full", q);

    /* poll waits for a receive in another process to make room. */
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        settle();
        char buf[64];
        CHECK(mq_receive(q, buf, sizeof buf, NULL) == 1);
        _exit(0);
    }
    struct pollfd pf = {.fd = q, .events = POLLOUT};
    int r = poll(&pf, 1, 5000);
    SHOW("poll for POLLOUT on the full queue: %d %s", r, pollname(pf.revents));
    reap(c, "receiving child");
    char buf[64];
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 1);

    /* poll waits for a message. */
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        settle();
        qsend(q, "q", 0);
        _exit(0);
    }
    pf.events = POLLIN;
    pf.revents = 0;
    r = poll(&pf, 1, 5000);
    SHOW("poll for POLLIN on the empty queue: %d %s", r, pollname(pf.revents));
    reap(c, "sending child");
    recv1("then", q);
    CHECK(mq_close(q) == 0 && mq_close(w) == 0);
    CHECK(mq_unlink(Q("poll")) == 0);
}

static void test_dup_close(void) {
    mqd_t q = qopen(Q("dup"), O_RDWR, 4, 16);
    mqd_t d = dup(q);
    CHECK(d >= 0);
    qsend(d, "via dup", 1);
    SHOW("dup: F_GETFD=%d", fcntl(d, F_GETFD));
    show_attr("seen through the original", q);
    struct mq_attr nb = {.mq_flags = O_NONBLOCK};
    CHECK(mq_setattr(q, &nb, NULL) == 0);
    show_attr("dup after setattr O_NONBLOCK on the original", d);
    mqd_t again = mq_open(Q("dup"), O_RDWR);
    CHECK(again >= 0);
    show_attr("a separate mq_open", again);
    recv1("receive via the separate descriptor", again);
    CHECK(mq_close(q) == 0);
    char buf[64];
    struct mq_attr a;
    CHECK_ERRNO(mq_send(q, "x", 1, 0), EBADF);
    CHECK_ERRNO(mq_receive(q, buf, sizeof buf, NULL), EBADF);
    CHECK_ERRNO(mq_getattr(q, &a), EBADF);
    CHECK_ERRNO(mq_close(q), EBADF);
    qsend(d, "dup lives", 2);
    recv1("after closing the original", again);
    CHECK(close(d) == 0); /* close(2) closes an mq descriptor too */
    CHECK_ERRNO(mq_getattr(d, &a), EBADF);
    CHECK(mq_close(again) == 0);
    CHECK(mq_unlink(Q("dup")) == 0);
}

static void test_unlink(void) {
    mqd_t q = qopen(Q("unlink"), O_RDWR, 4, 16);
    qsend(q, "before", 1);
    SHOW("unlink: %s", res(mq_unlink(Q("unlink"))));
    struct stat st;
    CHECK(fstat(q, &st) == 0);
    SHOW("nlink after unlink: %ld", (long)st.st_nlink);
    CHECK_ERRNO(mq_open(Q("unlink"), O_RDWR), ENOENT);
    CHECK_ERRNO(mq_unlink(Q("unlink")), ENOENT);
    qsend(q, "after", 2);
    show_attr("unlinked queue", q);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        recv1("child receives from the unlinked queue", q);
        _exit(0);
    }
    reap(c, "child");
    /* The name is free again: a new, empty queue. */
    mqd_t n = qopen(Q("unlink"), O_RDWR | O_EXCL, 2, 8);
    show_attr("new queue of the same name", n);
    show_attr("old queue", q);
    recv1("old queue still holds", q);
    CHECK(mq_close(q) == 0);
    CHECK(mq_close(n) == 0);
    CHECK(mq_unlink(Q("unlink")) == 0);
    CHECK_ERRNO(mq_unlink(Q("unlink")), ENOENT);
}

int main(void) {
    main_pid = getpid();
    umask(022);
    longname[0] = '/';
    memset(longname + 1, 'l', 255);
    memcpy(longname + 1, "cordon-compat-mq-long", 21);
    memcpy(toolongname, longname, 256);
    toolongname[256] = 'l';
    cleanup();
    CHECK(atexit(cleanup_at_exit) == 0);

    test_open();
    test_names();
    test_modes();
    test_send_receive();
    test_blocking();
    test_interrupt();
    test_notify();
    test_poll();
    test_dup_close();
    test_unlink();
    return 0;
}
