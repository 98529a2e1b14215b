/* devpts: posix_openpt/grantpt/unlockpt/ptsname, the slave's default
 * termios, canonical input with echo and erase, raw mode, VMIN/VTIME,
 * window sizes, a controlling terminal (TIOCSCTTY, tcgetpgrp), ^C as
 * SIGINT to the foreground group, SIGWINCH on a resize, and hang-ups. */
#include "../compat/check.h"
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/wait.h>
#include <termios.h>

static void show_bytes(const char *what, const char *buf, ssize_t n) {
    printf("%s (%zd):", what, n);
    for (ssize_t i = 0; i < n; i++) printf(" %02x", (unsigned char)buf[i]);
    printf("\n");
}

/* Reads what the master has now (the slave's output and the echo). */
static ssize_t drain(int master, char *buf, size_t len) {
    struct pollfd p = {.fd = master, .events = POLLIN};
    ssize_t total = 0;
    while (poll(&p, 1, 200) == 1 && (p.revents & POLLIN)) {
        ssize_t n = read(master, buf + total, len - total);
        if (n <= 0) break;
        total += n;
    }
    return total;
}

static volatile sig_atomic_t got;
static void on_signal(int sig) { got = sig; }

/* SIGHUP handlers that report to a pipe. */
static int report_fd = -1;
static void report_hup(int sig) {
    (void)sig;
    (void)!write(report_fd, "H", 1);
    _exit(0);
}

/* Waits (5 s at most) for one byte on `fd`: what the reporter said. */
static char wait_report(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c = '-';
    if (poll(&p, 1, 5000) == 1 && read(fd, &c, 1) != 1) c = '-';
    return c;
}

/* A new session led by a child, with `name` as its controlling terminal.
 * With `fg_child`, the leader forks a process that becomes the terminal's
 * foreground group and reports a SIGHUP; then the leader exits. Without,
 * the leader itself reports a SIGHUP. `ready` gets 'R' once set up.
 * The children do not keep `master`. */
static pid_t session_on(const char *name, int master, int fg_child, int ready, int report) {
    pid_t leader = fork();
    if (leader != 0) return leader;
    close(master); /* the test's, which it closes for a hang-up */
    setsid();
    int t = open(name, O_RDWR);
    if (t < 0) _exit(1);
    report_fd = report;
    if (!fg_child) {
        signal(SIGHUP, report_hup);
        (void)!write(ready, "R", 1);
        for (;;) pause();
    }
    int sync[2];
    if (pipe(sync) != 0) _exit(1);
    pid_t fg = fork();
    if (fg == 0) {
        signal(SIGTTOU, SIG_IGN);
        signal(SIGHUP, report_hup);
        setpgid(0, 0);
        tcsetpgrp(t, getpid());
        (void)!write(sync[1], "x", 1);
        for (;;) pause();
    }
    char c;
    (void)!read(sync[0], &c, 1);
    (void)!write(ready, "R", 1);
    _exit(0);
}

int main(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(m >= 0);
    CHECK(grantpt(m) == 0);
    char *name = ptsname(m);
    CHECK(name != NULL);
    SHOW("ptsname: %s", name);
    CHECK_ERRNO(open(name, O_RDWR | O_NOCTTY), EIO); /* still locked */
    CHECK(unlockpt(m) == 0);
    int s = open(name, O_RDWR | O_NOCTTY);
    CHECK(s >= 0);
    SHOW("isatty: master %d slave %d", isatty(m), isatty(s));
    SHOW("ttyname(slave) matches: %d", strcmp(ttyname(s), name) == 0);
    /* A terminal cannot be spliced from: sendfile fails, so that cat reads
     * it (and sees the EOF a ^D makes). */
    {
        int null = open("/dev/null", O_WRONLY);
        CHECK(null >= 0);
        CHECK_ERRNO(sendfile(null, s, NULL, 16), EINVAL);
        close(null);
    }
    struct stat st;
    CHECK(fstat(s, &st) == 0);
    SHOW("slave: chr %d, mode %o, gid %d", S_ISCHR(st.st_mode), st.st_mode & 0777, (int)st.st_gid);

    struct termios t;
    CHECK(tcgetattr(s, &t) == 0);
    SHOW("slave termios: iflag %x oflag %x lflag %x vmin %d veof %d verase %d", t.c_iflag, t.c_oflag, t.c_lflag,
         t.c_cc[VMIN], t.c_cc[VEOF], t.c_cc[VERASE]);
    CHECK(tcgetattr(m, &t) == 0);
    SHOW("master termios: iflag %x oflag %x lflag %x", t.c_iflag, t.c_oflag, t.c_lflag);

    char buf[256];
    ssize_t n;
    /* Canonical input, echo, CR -> NL, erase. */
    CHECK(write(m, "hello\r", 6) == 6);
    n = read(s, buf, sizeof buf);
    show_bytes("slave read", buf, n);
    show_bytes("echo", buf, drain(m, buf, sizeof buf));
    CHECK(write(m, "abc\x7f" "d\n", 6) == 6);
    n = read(s, buf, sizeof buf);
    show_bytes("after erase", buf, n);
    show_bytes("echo of erase", buf, drain(m, buf, sizeof buf));
    CHECK(write(m, "one\ntwo\n", 8) == 8);
    n = read(s, buf, sizeof buf);
    show_bytes("one line per read", buf, n);
    n = read(s, buf, sizeof buf);
    show_bytes("then the next", buf, n);
    drain(m, buf, sizeof buf);
    /* Kill the line, then EOF: an empty read. */
    CHECK(write(m, "junk\x15\x04", 6) == 6);
    n = read(s, buf, sizeof buf);
    SHOW("read after kill+eof: %zd", n);
    drain(m, buf, sizeof buf);
    int avail = -1;
    CHECK(write(m, "xy\n", 3) == 3);
    struct pollfd ps = {.fd = s, .events = POLLIN};
    CHECK(poll(&ps, 1, 1000) == 1); /* Linux hands input over asynchronously */
    CHECK(ioctl(s, FIONREAD, &avail) == 0);
    SHOW("FIONREAD on slave: %d", avail);
    read(s, buf, sizeof buf);
    drain(m, buf, sizeof buf);

    /* Output processing: NL -> CR NL. */
    CHECK(write(s, "out\n", 4) == 4);
    show_bytes("master reads output", buf, drain(m, buf, sizeof buf));

    /* Raw mode: no echo, no line buffering; VMIN=0 VTIME=0 polls. */
    CHECK(tcgetattr(s, &t) == 0);
    struct termios saved = t;
    cfmakeraw(&t);
    CHECK(tcsetattr(s, TCSANOW, &t) == 0);
    CHECK(write(m, "r\r", 2) == 2);
    n = read(s, buf, sizeof buf);
    show_bytes("raw read", buf, n);
    SHOW("raw echo: %zd bytes", drain(m, buf, sizeof buf));
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    CHECK(tcsetattr(s, TCSANOW, &t) == 0);
    SHOW("VMIN=0 VTIME=0 read: %zd", read(s, buf, sizeof buf));
    t.c_cc[VTIME] = 1;
    CHECK(tcsetattr(s, TCSANOW, &t) == 0);
    SHOW("VTIME=1 read with nothing: %zd", read(s, buf, sizeof buf));
    CHECK(tcsetattr(s, TCSAFLUSH, &saved) == 0);

    /* Window size. */
    struct winsize ws = {.ws_row = 33, .ws_col = 101};
    CHECK(ioctl(m, TIOCSWINSZ, &ws) == 0);
    struct winsize got_ws;
    CHECK(ioctl(s, TIOCGWINSZ, &got_ws) == 0);
    SHOW("winsize: %dx%d", got_ws.ws_row, got_ws.ws_col);

    /* Not our controlling terminal (O_NOCTTY): no process group to ask. */
    CHECK_ERRNO(tcgetpgrp(s), ENOTTY);

    /* A child session with the slave as its controlling terminal. */
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        close(m);
        CHECK(setsid() == getpid());
        CHECK(ioctl(s, TIOCSCTTY, 0) == 0);
        printf("child: tcgetpgrp is me %d, tcgetsid is me %d\n", tcgetpgrp(s) == getpid(), tcgetsid(s) == getpid());
        int tty = open("/dev/tty", O_RDWR);
        printf("child: /dev/tty opens %d\n", tty >= 0);
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGWINCH, &sa, NULL);
        CHECK(write(ready[1], "r", 1) == 1);
        ssize_t r = read(s, buf, sizeof buf); /* interrupted by ^C */
        printf("child: read %zd errno %s, signal %s\n", r, r < 0 ? check_errname(errno) : "-",
               got == SIGINT ? "SIGINT" : "none");
        got = 0;
        CHECK(write(ready[1], "r", 1) == 1);
        for (int i = 0; i < 200 && got == 0; i++) usleep(10000);
        printf("child: after resize %s\n", got == SIGWINCH ? "SIGWINCH" : "none");
        fflush(stdout);
        _exit(0);
    }
    CHECK(read(ready[0], buf, 1) == 1);
    usleep(100000);
    CHECK(write(m, "\x03", 1) == 1);
    CHECK(read(ready[0], buf, 1) == 1);
    ws.ws_row = 40;
    CHECK(ioctl(m, TIOCSWINSZ, &ws) == 0);
    int status;
    CHECK(waitpid(c, &status, 0) == c);
    SHOW("child exited %d", WEXITSTATUS(status));
    show_bytes("echo of ^C", buf, drain(m, buf, sizeof buf));

    /* Input nobody reads fills up: a non-blocking master write then fails
     * with EAGAIN (EOF characters, which queue no bytes, included). */
    int fl = fcntl(m, F_GETFL);
    CHECK(fcntl(m, F_SETFL, fl | O_NONBLOCK) == 0);
    char eofs[4096];
    memset(eofs, 4, sizeof eofs);
    int full = 0;
    for (int i = 0; i < 10000 && !full; i++)
        if (write(m, eofs, sizeof eofs) < 0) full = errno == EAGAIN;
    SHOW("master input fills: %s", full ? "EAGAIN" : "never");
    CHECK(tcflush(s, TCIFLUSH) == 0);
    CHECK(fcntl(m, F_SETFL, fl) == 0);

    /* Hang-ups: the slave closed, the master reads EIO; the master closed,
     * the slave reads end of file and cannot write. */
    int s2 = open(name, O_RDWR | O_NOCTTY);
    CHECK(s2 >= 0);
    close(s);
    close(s2);
    CHECK_ERRNO(read(m, buf, sizeof buf), EIO);
    int m2 = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(m2 >= 0 && unlockpt(m2) == 0);
    int s3 = open(ptsname(m2), O_RDWR | O_NOCTTY);
    CHECK(s3 >= 0);
    close(m2);
    SHOW("slave read after master close: %zd", read(s3, buf, sizeof buf));
    CHECK_ERRNO(write(s3, "x", 1), EIO);

    /* SIGHUP: a session leader exits, its terminal's foreground group gets
     * SIGHUP; the master closes, the session leader gets SIGHUP. */
    {
        int ready[2], report[2];
        CHECK(pipe(ready) == 0 && pipe(report) == 0);
        int m4 = posix_openpt(O_RDWR | O_NOCTTY);
        CHECK(m4 >= 0 && grantpt(m4) == 0 && unlockpt(m4) == 0);
        pid_t leader = session_on(ptsname(m4), m4, 1, ready[1], report[1]);
        SHOW("leader set up: %c", wait_report(ready[0]));
        CHECK(waitpid(leader, &status, 0) == leader);
        SHOW("foreground group after its leader exited: %c", wait_report(report[0]));
        int m5 = posix_openpt(O_RDWR | O_NOCTTY);
        CHECK(m5 >= 0 && grantpt(m5) == 0 && unlockpt(m5) == 0);
        leader = session_on(ptsname(m5), m5, 0, ready[1], report[1]);
        SHOW("leader set up: %c", wait_report(ready[0]));
        close(m5);
        SHOW("session leader after the master closed: %c", wait_report(report[0]));
        CHECK(waitpid(leader, &status, 0) == leader);
        close(m4);
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
    return 0;
}
