/* alarm and setitimer deliver SIGALRM (into a blocked read, into
 * nanosleep, into pause); select/pselect/ppoll on pipes; close_range;
 * getrusage/times sanity. */
#include "check.h"
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>

static volatile int alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0); /* no SA_RESTART */

    /* alarm interrupts a blocked pipe read. */
    int p[2];
    CHECK(pipe(p) == 0);
    alarm(1);
    char c;
    CHECK_ERRNO(read(p[0], &c, 1), EINTR);
    SHOW("alarms=%d", alarms);
    SHOW("alarm(0) left=%u", alarm(0));

    /* setitimer interrupts nanosleep and reports the rest. */
    struct itimerval it = {{0, 0}, {0, 100000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    struct timespec ts = {5, 0}, rem;
    CHECK_ERRNO(nanosleep(&ts, &rem), EINTR);
    SHOW("alarms=%d rem<5s=%d", alarms, rem.tv_sec < 5);

    /* A periodic timer fires repeatedly; pause returns after each. */
    struct itimerval per = {{0, 20000}, {0, 20000}};
    CHECK(setitimer(ITIMER_REAL, &per, NULL) == 0);
    for (int i = 0; i < 3; i++) pause();
    struct itimerval off = {{0, 0}, {0, 0}}, old;
    CHECK(setitimer(ITIMER_REAL, &off, &old) == 0);
    SHOW("alarms=%d interval_us=%ld", alarms, (long)old.it_interval.tv_usec);

    /* select on a pipe: not ready, then ready. */
    fd_set r, w;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {0, 10000};
    SHOW("select empty=%d", select(p[0] + 1, &r, NULL, NULL, &tv));
    /* Linux writes the time left back: none after a timeout. */
    SHOW("timeout left=%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    FD_ZERO(&w);
    FD_SET(p[1], &w);
    tv = (struct timeval){5, 0};
    CHECK(select(p[1] + 1, NULL, &w, NULL, &tv) == 1);
    SHOW("ready at once: most of 5s left=%d", tv.tv_sec == 4 || tv.tv_sec == 5);
    CHECK(write(p[1], "x", 1) == 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_ZERO(&w);
    FD_SET(p[1], &w);
    int n = select(p[1] + 1, &r, &w, NULL, NULL);
    SHOW("select ready=%d r=%d w=%d", n, FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
    struct timespec zero = {0, 0};
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    SHOW("pselect=%d", pselect(p[0] + 1, &r, NULL, NULL, &zero, NULL));
    struct pollfd pf = {p[0], POLLIN, 0};
    SHOW("ppoll=%d revents=%d", ppoll(&pf, 1, &zero, NULL), pf.revents);
    /* A closed fd inside the fd table is EBADF. (Bits past the end of the
       table are ignored, and how big the table is depends on what the
       parent had open, so only fds inside it are checked.) */
    int closed = dup(p[0]);
    close(closed);
    FD_ZERO(&r);
    FD_SET(closed, &r);
    CHECK_ERRNO(select(closed + 1, &r, NULL, NULL, &tv), EBADF);
    CHECK(dup2(p[0], 100) == 100);
    close(100);
    FD_ZERO(&r);
    FD_SET(100, &r);
    CHECK_ERRNO(select(101, &r, NULL, NULL, &tv), EBADF);

    /* close_range closes, or marks close-on-exec. */
    int a = dup(p[0]), b = dup(p[0]);
    CHECK(syscall(SYS_close_range, a, b, 4 /* CLOEXEC */) == 0);
    SHOW("cloexec a=%d b=%d", fcntl(a, F_GETFD), fcntl(b, F_GETFD));
    CHECK(syscall(SYS_close_range, a, b, 0) == 0);
    CHECK_ERRNO(fcntl(a, F_GETFD), EBADF);

    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    struct tms tm;
    SHOW("times ok=%d rusage ok=%d", times(&tm) != (clock_t)-1, ru.ru_utime.tv_sec >= 0);
    return 0;
}
