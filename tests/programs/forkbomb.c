/* Forks children that wait on a pipe until fork fails; reports the errno.
 * Only ever run inside the sandbox (natively, as root, nothing stops it). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int p[2];
    if (pipe(p) != 0) return 2;
    int n = 0, err = 0;
    for (;;) {
        pid_t c = fork();
        if (c < 0) { err = errno; break; }
        if (c == 0) { char b; close(p[1]); read(p[0], &b, 1); _exit(0); }
        if (++n > 100000) break;
    }
    close(p[1]); /* every child's read returns EOF */
    int reaped = 0;
    while (wait(NULL) > 0) reaped++;
    printf("forks=%d err=%s reaped_all=%d\n", n, strerrorname_np(err), reaped == n);
    return 0;
}
