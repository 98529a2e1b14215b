/* Bad user pointers give EFAULT rather than killing the process. Raw syscalls, so glibc never touches them. */
#include "check.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>

#define BAD ((void *)1)

int main(void) {
    int fd = open(HELLO_PATH, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERRNO(syscall(SYS_read, fd, BAD, 10), EFAULT);
    CHECK_ERRNO(syscall(SYS_write, 1, BAD, 10), EFAULT);
    CHECK_ERRNO(syscall(SYS_pread64, fd, BAD, 10, 0), EFAULT);
    CHECK_ERRNO(syscall(SYS_read, fd, (void *)0xffffffffffff0000UL, 10), EFAULT); /* kernel half */
    CHECK_ERRNO(syscall(SYS_newfstatat, AT_FDCWD, HELLO_PATH, BAD, 0), EFAULT);
    CHECK_ERRNO(syscall(SYS_fstat, fd, BAD), EFAULT);
    CHECK_ERRNO(syscall(SYS_stat, BAD, (void *)&fd), EFAULT);
    CHECK_ERRNO(syscall(SYS_open, BAD, O_RDONLY), EFAULT);
    CHECK_ERRNO(syscall(SYS_openat, AT_FDCWD, BAD, O_RDONLY), EFAULT);
    CHECK_ERRNO(syscall(SYS_readv, fd, BAD, 1), EFAULT);
    struct iovec iv = {.iov_base = BAD, .iov_len = 4};
    CHECK_ERRNO(syscall(SYS_readv, fd, &iv, 1), EFAULT);
    CHECK_ERRNO(syscall(SYS_writev, 1, &iv, 1), EFAULT);
    CHECK_ERRNO(syscall(SYS_uname, BAD), EFAULT);
    CHECK_ERRNO(syscall(SYS_getcwd, BAD, 100), EFAULT);
    CHECK_ERRNO(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, BAD), EFAULT);
    CHECK_ERRNO(syscall(SYS_gettimeofday, BAD, NULL), EFAULT);
    CHECK_ERRNO(syscall(SYS_nanosleep, BAD, NULL), EFAULT);
    CHECK_ERRNO(syscall(SYS_getrandom, BAD, 16, 0), EFAULT);
    CHECK_ERRNO(syscall(SYS_sysinfo, BAD), EFAULT);
    CHECK_ERRNO(syscall(SYS_getrlimit, RLIMIT_NOFILE, BAD), EFAULT);
    CHECK_ERRNO(syscall(SYS_rt_sigaction, SIGUSR1, BAD, NULL, 8), EFAULT);
    CHECK_ERRNO(syscall(SYS_readlink, "/data/link", BAD, 10), EFAULT);
    CHECK_ERRNO(syscall(SYS_access, BAD, F_OK), EFAULT);
    CHECK_ERRNO(syscall(SYS_chdir, BAD), EFAULT);
    CHECK_ERRNO(syscall(SYS_time, BAD), EFAULT);

    /* nothing was disturbed: the fd still reads correctly */
    char buf[16];
    CHECK(read(fd, buf, HELLO_LEN) == HELLO_LEN && memcmp(buf, HELLO_TEXT, HELLO_LEN) == 0);
    SHOW("fd still fine after EFAULTs");
    return 0;
}
