/* Restart rules of an interrupted call, with and without SA_RESTART: a
 * blocked pipe read and a futex wait go on after an SA_RESTART handler and
 * fail with EINTR otherwise; a timed futex wait, nanosleep and poll fail
 * with EINTR either way; wait4 goes on with SA_RESTART. */
#include "check.h"
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

static volatile int handled;
static void on_usr1(int s) { (void)s; handled++; }

static void handler(int flags) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = flags;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    handled = 0;
}

/* A child that signals us after 30 ms, then runs `then` after 60 ms. */
static pid_t poke(void (*then)(void *), void *arg) {
    pid_t parent = getpid();
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        usleep(30000);
        kill(parent, SIGUSR1);
        usleep(30000);
        if (then) then(arg);
        _exit(0);
    }
    return c;
}

static void write_byte(void *arg) { CHECK(write(*(int *)arg, "x", 1) == 1); }

static void wake_word(void *arg) {
    int *w = arg;
    __atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int main(void) {
    int p[2];
    char c;
    CHECK(pipe(p) == 0);
    for (int restart = 0; restart < 2; restart++) {
        handler(restart ? SA_RESTART : 0);
        pid_t k = poke(write_byte, &p[1]);
        ssize_t n = read(p[0], &c, 1);
        int e = errno;
        SHOW("read, SA_RESTART=%d: result=%zd %s handled=%d", restart, n, n < 0 ? check_errname(e) : "-", handled);
        CHECK(waitpid(k, NULL, 0) == k);
        if (n < 0) CHECK(read(p[0], &c, 1) == 1);
    }

    int *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(word != MAP_FAILED);
    for (int restart = 0; restart < 2; restart++) {
        handler(restart ? SA_RESTART : 0);
        *word = 0;
        pid_t k = poke(wake_word, word);
        long r = syscall(SYS_futex, word, FUTEX_WAIT, 0, NULL, NULL, 0);
        int e = errno;
        SHOW("futex wait, SA_RESTART=%d: result=%ld %s handled=%d", restart, r, r < 0 ? check_errname(e) : "-", handled);
        CHECK(waitpid(k, NULL, 0) == k);
    }

    handler(SA_RESTART);
    *word = 0;
    pid_t k = poke(NULL, NULL);
    struct timespec to = {2, 0};
    long r = syscall(SYS_futex, word, FUTEX_WAIT, 0, &to, NULL, 0);
    SHOW("timed futex wait with SA_RESTART: %ld %s", r, r < 0 ? check_errname(errno) : "-");
    CHECK(waitpid(k, NULL, 0) == k);

    handler(SA_RESTART);
    k = poke(NULL, NULL);
    struct timespec ts = {2, 0};
    int s = nanosleep(&ts, NULL);
    SHOW("nanosleep with SA_RESTART: %d %s", s, s < 0 ? check_errname(errno) : "-");
    CHECK(waitpid(k, NULL, 0) == k);

    handler(SA_RESTART);
    k = poke(NULL, NULL);
    struct pollfd pf = {p[0], POLLIN, 0};
    s = poll(&pf, 1, 2000);
    SHOW("poll with SA_RESTART: %d %s", s, s < 0 ? check_errname(errno) : "-");
    CHECK(waitpid(k, NULL, 0) == k);

    /* wait4 for a child that exits after the signal. */
    handler(SA_RESTART);
    k = poke(NULL, NULL);
    int st;
    pid_t w = waitpid(k, &st, 0);
    SHOW("waitpid with SA_RESTART: reaped=%d handled=%d", w == k, handled);
    return 0;
}
