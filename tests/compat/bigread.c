/* Read the 1 MiB fixture in odd-sized chunks and with one big read; verify every byte. */
#include "check.h"

int main(void) {
    static unsigned char buf[BIG_LEN + 4096];
    int fd = open(BIG_PATH, O_RDONLY);
    CHECK(fd >= 0);
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf + total, 4097);
        CHECK(n >= 0);
        if (n == 0)
            break;
        total += (size_t)n;
    }
    SHOW("chunked total %zu", total);
    for (unsigned long i = 0; i < BIG_LEN; i++)
        CHECK(buf[i] == BIG_BYTE(i));
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    memset(buf, 0, sizeof buf);
    ssize_t n = read(fd, buf, sizeof buf);
    SHOW("one read returned %zd", n);
    for (unsigned long i = 0; i < BIG_LEN; i++)
        CHECK(buf[i] == BIG_BYTE(i));
    unsigned long sum = 0;
    for (unsigned long i = 0; i < BIG_LEN; i++)
        sum = sum * 31 + buf[i];
    SHOW("checksum %lx", sum);
    return 0;
}
