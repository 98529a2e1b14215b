/* EINVAL for out-of-range arguments. */
#include "check.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

int main(void) {
    int fd = open(HELLO_PATH, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERRNO(lseek(fd, 0, 99), EINVAL);
    CHECK_ERRNO(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    CHECK_ERRNO(fcntl(fd, 12345), EINVAL);
    CHECK_ERRNO(dup3(fd, fd, 0), EINVAL);
    struct timespec ts;
    CHECK_ERRNO(syscall(SYS_clock_gettime, 99, &ts), EINVAL);
    CHECK_ERRNO(syscall(SYS_clock_getres, 99, &ts), EINVAL);
    struct timespec bad = {.tv_sec = 0, .tv_nsec = 2000000000L};
    CHECK_ERRNO(syscall(SYS_nanosleep, &bad, NULL), EINVAL);
    struct timespec neg = {.tv_sec = -1, .tv_nsec = 0};
    CHECK_ERRNO(syscall(SYS_nanosleep, &neg, NULL), EINVAL);
    CHECK_ERRNO(prctl(12345, 0, 0, 0, 0), EINVAL);
    struct rlimit rl;
    CHECK_ERRNO(syscall(SYS_getrlimit, 99, &rl), EINVAL);
    CHECK_ERRNO(syscall(SYS_mprotect, (void *)4097, 4096, PROT_READ), EINVAL);
    CHECK_ERRNO(syscall(SYS_arch_prctl, 0x9999, 0), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigaction, SIGKILL, &(struct sigaction){.sa_handler = SIG_IGN}, NULL, 8), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigaction, SIGUSR1, NULL, NULL, 4), EINVAL);
    uint64_t set = 0;
    CHECK_ERRNO(syscall(SYS_rt_sigprocmask, 99, &set, NULL, 8), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 4), EINVAL);
    CHECK_ERRNO(syscall(SYS_getrandom, &ts, sizeof ts, 0x80), EINVAL);
    CHECK_ERRNO(syscall(SYS_madvise, (void *)4097, 4096, MADV_DONTNEED), EINVAL);
    CHECK_ERRNO(syscall(SYS_munmap, (void *)4097, 4096), EINVAL);
    CHECK_ERRNO(syscall(SYS_readlink, "/data/link", &ts, 0), EINVAL);
    CHECK_ERRNO(syscall(SYS_faccessat, AT_FDCWD, "/", 8), EINVAL);
    char buf[8];
    CHECK_ERRNO(syscall(SYS_getdents64, open("/data", O_RDONLY | O_DIRECTORY), buf, 1), EINVAL);
    return 0;
}
