/*
 * Shared helpers for the Cordon syscall-compatibility programs.
 *
 * Every program runs twice, natively in a chroot of its rootfs and inside
 * `cordon run`, and the harness compares stdout and the exit status. So a
 * program must only print what is the same in both worlds: never pids,
 * addresses, times, inode or device numbers.
 *
 * CHECK(expr)          exits 1 (after printing file:line and expr) if expr is false.
 * CHECK_ERRNO(expr, E) expects expr to return -1 with errno == E, and prints
 *                      one line saying so (the observation is part of stdout).
 * SHOW(fmt, ...)       prints one observation line.
 */
#ifndef CORDON_CHECK_H
#define CORDON_CHECK_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* Line-buffer stdout so that output printed before a crash is not lost and
 * the number of write(2) calls does not depend on buffer sizes. */
__attribute__((constructor)) static void check_init(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static inline const char *check_errname(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

#define CHECK(expr)                                                          \
    do {                                                                     \
        errno = 0;                                                           \
        if (!(expr)) {                                                       \
            int check_saved_errno_ = errno;                                  \
            printf("%s:%d: CHECK failed: %s (errno %d %s)\n", __FILE__,      \
                   __LINE__, #expr, check_saved_errno_,                      \
                   check_errname(check_saved_errno_));                       \
            fflush(stdout);                                                  \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define CHECK_ERRNO(expr, E)                                                 \
    do {                                                                     \
        errno = 0;                                                           \
        long check_ret_ = (long)(expr);                                      \
        int check_saved_errno_ = errno;                                      \
        if (check_ret_ != -1 || check_saved_errno_ != (E)) {                 \
            printf("%s:%d: CHECK_ERRNO failed: %s returned %ld errno %s, "   \
                   "expected -1 %s\n",                                       \
                   __FILE__, __LINE__, #expr, check_ret_,                    \
                   check_saved_errno_ ? check_errname(check_saved_errno_)    \
                                      : "0",                                 \
                   #E);                                                      \
            fflush(stdout);                                                  \
            exit(1);                                                         \
        }                                                                    \
        printf("%s -> %s\n", #expr, #E);                                     \
    } while (0)

#define SHOW(...)                                                            \
    do {                                                                     \
        printf(__VA_ARGS__);                                                 \
        putchar('\n');                                                       \
    } while (0)

/* Fixture tree built by the harness (tests/src/lib.rs, compat_fixtures). */
#define HELLO_PATH "/data/hello.txt"
#define HELLO_TEXT "hello, world\n"
#define HELLO_LEN 13
#define BIG_PATH "/data/big.bin"
#define BIG_LEN (1024 * 1024)
/* Byte i of /data/big.bin. Keep in sync with big_byte() in lib.rs. */
#define BIG_BYTE(i) ((unsigned char)(((i) * 131u + ((i) >> 12)) & 0xffu))

/* Reads a whole small file into buf (NUL-terminated); returns its length. */
static inline long read_small_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    close(fd);
    return (long)n;
}

#endif
