/* Pipes (data, EOF, O_NONBLOCK, EPIPE/SIGPIPE, capacity, atomic small
 * writes between processes, poll) and execve (a child re-executing this
 * program, #! scripts, errors). */
#include "check.h"
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        SHOW("exec'd child argc=%d arg2=%s", argc, argc > 2 ? argv[2] : "-");
        return 5;
    }
    if (argc > 1 && strcmp(argv[1], "interp-arg") == 0) {
        SHOW("script: argc=%d argv1=%s argv2=%s argv3=%s", argc, argv[1], argv[2], argc > 3 ? argv[3] : "-");
        return 6;
    }
    int p[2];
    char buf[256];
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "hello", 5) == 5);
    CHECK(read(p[0], buf, sizeof buf) == 5);
    SHOW("pipe read %.5s", buf);
    struct stat st;
    CHECK(fstat(p[0], &st) == 0);
    SHOW("pipe is fifo=%d mode=%o", S_ISFIFO(st.st_mode), st.st_mode & 0777);
    CHECK_ERRNO(lseek(p[0], 0, SEEK_SET), ESPIPE);
    SHOW("capacity=%d", fcntl(p[0], F_GETPIPE_SZ));
    close(p[1]);
    SHOW("eof read=%zd", read(p[0], buf, sizeof buf));
    close(p[0]);

    CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    CHECK_ERRNO(read(p[0], buf, 1), EAGAIN);
    SHOW("cloexec=%d nonblock=%d", fcntl(p[0], F_GETFD), (fcntl(p[1], F_GETFL) & O_NONBLOCK) != 0);
    long total = 0;
    ssize_t n;
    while ((n = write(p[1], buf, sizeof buf)) > 0) total += n;
    SHOW("filled %ld then errno=%s", total, errno == EAGAIN ? "EAGAIN" : "other");
    struct pollfd pf[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    CHECK(poll(pf, 2, 0) == 1);
    SHOW("poll full: in=%d out=%d", pf[0].revents & POLLIN, pf[1].revents & POLLOUT);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    CHECK_ERRNO(write(p[1], "x", 1), EPIPE);
    close(p[1]);
    signal(SIGPIPE, SIG_DFL);

    /* Writer dies by SIGPIPE when the reader is gone. */
    CHECK(pipe(p) == 0);
    close(p[0]);
    pid_t c = fork();
    if (c == 0) { write(p[1], "x", 1); _exit(0); }
    close(p[1]);
    int status;
    CHECK(waitpid(c, &status, 0) == c);
    SHOW("writer killed by %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);

    /* Many small writes from two children arrive whole. */
    CHECK(pipe(p) == 0);
    for (int k = 0; k < 2; k++) {
        if (fork() == 0) {
            char rec[64];
            memset(rec, 'a' + k, sizeof rec);
            for (int i = 0; i < 500; i++) write(p[1], rec, sizeof rec);
            _exit(0);
        }
    }
    close(p[1]);
    char rec[64];
    int records = 0, torn = 0;
    size_t got = 0;
    while ((n = read(p[0], rec + got, sizeof rec - got)) > 0) {
        got += n;
        if (got == sizeof rec) {
            for (size_t i = 1; i < sizeof rec; i++) if (rec[i] != rec[0]) torn++;
            records++;
            got = 0;
        }
    }
    while (wait(NULL) > 0) {}
    SHOW("records=%d torn=%d", records, torn);
    close(p[0]);

    /* A child execs this program; its output comes through a pipe. */
    CHECK(pipe(p) == 0);
    c = fork();
    if (c == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        char *av[] = {"/prog", "child", "two", NULL};
        execve("/prog", av, environ);
        _exit(99);
    }
    close(p[1]);
    n = read(p[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    CHECK(waitpid(c, &status, 0) == c);
    SHOW("from child: %s exit=%d", strtok(buf, "\n"), WEXITSTATUS(status));
    close(p[0]);

    /* A #! script: the interpreter gets its argument and the script path. */
    c = fork();
    if (c == 0) {
        char *av[] = {"script", "x", NULL};
        execve("/data/script", av, environ);
        _exit(98);
    }
    CHECK(waitpid(c, &status, 0) == c);
    SHOW("script exit=%d", WEXITSTATUS(status));

    char *av[] = {"x", NULL};
    CHECK_ERRNO(execve("/data/missing", av, environ), ENOENT);
    CHECK_ERRNO(execve("/data/noexec", av, environ), EACCES);
    CHECK_ERRNO(execve("/data/garbage", av, environ), ENOEXEC);
    CHECK_ERRNO(execve("/data", av, environ), EACCES);
    CHECK_ERRNO(execve("/data/hello.txt/x", av, environ), ENOTDIR);
    return 0;
}
