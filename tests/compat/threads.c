/* POSIX threads: 64 threads hammering one futex-based mutex, creation and
 * join, shared memory and fds, thread-local storage, condition variables
 * (futexes between threads), thread-directed and process-directed
 * signals, robust mutexes of a dead thread, fork and exec from a thread,
 * and an exit from a thread ending the whole process. */
#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define NTHREADS 64
#define ROUNDS 3000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static __thread int tls_value = 1;

static void *count(void *arg) {
    tls_value = (int)(long)arg + 100;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    /* Another thread's tls never changed ours. */
    return (void *)(long)(tls_value == (int)(long)arg + 100 && getpid() != gettid());
}

/* Ping-pong over a condition variable. */
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int turn, volleys;

static void *pong(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    while (volleys < 1000) {
        while (turn != 1) pthread_cond_wait(&cond, &lock);
        volleys++;
        turn = 0;
        pthread_cond_signal(&cond);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static volatile pid_t handled_by;
static void on_usr1(int sig) { (void)sig; handled_by = gettid(); }

static volatile int waiting;
static void *wait_usr(void *arg) {
    (void)arg;
    waiting = 1;
    while (!handled_by) usleep(1000);
    return (void *)(long)gettid();
}

static pthread_mutex_t robust;
static void *lock_and_die(void *arg) {
    (void)arg;
    pthread_mutex_lock(&robust);
    return NULL; /* exits holding it */
}

static int pipefd[2];
static void *write_pipe(void *arg) {
    (void)arg;
    /* fds are shared: the main thread reads what this one writes. */
    CHECK(write(pipefd[1], "thread", 6) == 6);
    return NULL;
}

static void *fork_in_thread(void *arg) {
    (void)arg;
    pid_t c = fork();
    if (c == 0) {
        /* Only the forking thread lives on in the child. */
        _exit(7);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    return (void *)(long)WEXITSTATUS(st);
}

static void *exit_from_thread(void *arg) {
    (void)arg;
    usleep(20000);
    exit(5); /* exit_group: the main thread, asleep, ends too */
}

static void *exec_from_thread(void *arg) {
    (void)arg;
    char pid[32];
    snprintf(pid, sizeof pid, "%d", getpid());
    execl("/prog", "/prog", "execed", pid, (char *)NULL);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "execed") == 0) {
        /* The exec'ing thread took over the process's id. */
        SHOW("after exec from a thread: same pid=%d tid==pid=%d", atoi(argv[2]) == getpid(), getpid() == gettid());
        return 0;
    }
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++) CHECK(pthread_create(&t[i], NULL, count, (void *)i) == 0);
    int good = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        CHECK(pthread_join(t[i], &r) == 0);
        good += (int)(long)r;
    }
    SHOW("counter=%ld threads with their own tls and tid=%d main tls=%d", counter, good, tls_value);

    pthread_t p;
    CHECK(pthread_create(&p, NULL, pong, NULL) == 0);
    pthread_mutex_lock(&lock);
    while (volleys < 1000) {
        while (turn != 0 && volleys < 1000) pthread_cond_wait(&cond, &lock);
        if (volleys >= 1000) break;
        turn = 1;
        pthread_cond_signal(&cond);
        while (turn != 0) pthread_cond_wait(&cond, &lock);
    }
    pthread_mutex_unlock(&lock);
    CHECK(pthread_join(p, NULL) == 0);
    SHOW("volleys=%d", volleys);

    /* A thread-directed signal runs in that thread. */
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    pthread_t w;
    CHECK(pthread_create(&w, NULL, wait_usr, NULL) == 0);
    while (!waiting) usleep(1000);
    CHECK(pthread_kill(w, SIGUSR1) == 0);
    void *wtid;
    CHECK(pthread_join(w, &wtid) == 0);
    SHOW("pthread_kill handled in the target thread=%d", handled_by == (pid_t)(long)wtid);

    /* A process-directed signal the main thread blocks goes to a thread
     * that does not block it. */
    handled_by = 0;
    waiting = 0;
    CHECK(pthread_create(&w, NULL, wait_usr, NULL) == 0);
    while (!waiting) usleep(1000);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(pthread_join(w, &wtid) == 0);
    SHOW("kill handled by the thread that does not block it=%d", handled_by == (pid_t)(long)wtid);
    CHECK(pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0);

    /* A robust mutex whose owner died. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    CHECK(pthread_mutex_init(&robust, &ma) == 0);
    pthread_t d;
    CHECK(pthread_create(&d, NULL, lock_and_die, NULL) == 0);
    CHECK(pthread_join(d, NULL) == 0);
    int rc = pthread_mutex_lock(&robust);
    SHOW("robust lock after owner died: %s", rc == EOWNERDEAD ? "EOWNERDEAD" : strerror(rc));
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(&robust);
        pthread_mutex_unlock(&robust);
    }

    /* Shared fds. */
    CHECK(pipe(pipefd) == 0);
    CHECK(pthread_create(&d, NULL, write_pipe, NULL) == 0);
    char buf[16] = {0};
    CHECK(read(pipefd[0], buf, sizeof buf) == 6);
    CHECK(pthread_join(d, NULL) == 0);
    SHOW("read from the thread's write: %s", buf);

    /* fork from a thread. */
    void *code;
    CHECK(pthread_create(&d, NULL, fork_in_thread, NULL) == 0);
    CHECK(pthread_join(d, &code) == 0);
    SHOW("child forked by a thread exited with %ld", (long)code);

    /* exec from a thread, in a child so that we can go on. */
    pid_t c = fork();
    if (c == 0) {
        pthread_t e;
        CHECK(pthread_create(&e, NULL, exec_from_thread, NULL) == 0);
        for (;;) pause();
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("exec from a thread: exited=%d code=%d", WIFEXITED(st), WEXITSTATUS(st));

    /* exit() in a thread ends the process; so does a fatal signal. */
    c = fork();
    if (c == 0) {
        pthread_t e;
        CHECK(pthread_create(&e, NULL, exit_from_thread, NULL) == 0);
        for (;;) pause();
    }
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("exit in a thread: exited=%d code=%d", WIFEXITED(st), WEXITSTATUS(st));

    /* pthread_exit in main: the process lives until its last thread. The
     * thread forks while main exits, both writing memory the fork made
     * copy-on-write (repeated: the race between them is the point). */
    int normal = 0;
    for (int i = 0; i < 20; i++) {
        c = fork();
        if (c == 0) {
            pthread_t e;
            CHECK(pthread_create(&e, NULL, fork_in_thread, NULL) == 0);
            pthread_exit(NULL);
        }
        CHECK(waitpid(c, &st, 0) == c);
        normal += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    SHOW("pthread_exit in main: %d of 20 exited with 0", normal);
    return 0;
}
