/* A poll that blocks is woken by a child writing to a pipe, by the last
 * writer closing it (POLLHUP), and returns 0 on timeout; a futex wait is
 * woken by another process through shared memory. */
#include "check.h"
#include <linux/futex.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

static void nap_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t c = fork();
    if (c == 0) {
        nap_ms(50);
        write(p[1], "x", 1);
        nap_ms(50);
        _exit(0);
    }
    close(p[1]);
    struct pollfd pf = {p[0], POLLIN, 0};
    CHECK(poll(&pf, 1, -1) == 1);
    char ch;
    SHOW("woken by data: revents=%d read=%zd", pf.revents, read(p[0], &ch, 1));
    CHECK(poll(&pf, 1, -1) == 1);
    SHOW("woken by close: hup=%d", (pf.revents & POLLHUP) != 0);
    waitpid(c, NULL, 0);
    close(p[0]);

    CHECK(pipe(p) == 0);
    pf.fd = p[0];
    SHOW("timeout: %d", poll(&pf, 1, 30));

    int *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(word != MAP_FAILED);
    *word = 0;
    c = fork();
    if (c == 0) {
        nap_ms(50);
        __atomic_store_n(word, 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
        _exit(0);
    }
    while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == 0) syscall(SYS_futex, word, FUTEX_WAIT, 0, NULL, NULL, 0);
    SHOW("futex woken, word=%d", *word);
    CHECK_ERRNO(syscall(SYS_futex, word, FUTEX_WAIT, 5, NULL, NULL, 0), EAGAIN);
    struct timespec to = {0, 20000000};
    CHECK_ERRNO(syscall(SYS_futex, word, FUTEX_WAIT, 1, &to, NULL, 0), ETIMEDOUT);
    waitpid(c, NULL, 0);
    return 0;
}
