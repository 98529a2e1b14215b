/* madvise(MADV_DONTNEED) zeroes private anonymous pages and restores private file pages. */
#include "check.h"
#include <sys/mman.h>

#define PG 4096L

int main(void) {
    unsigned char *p = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0xab, 8 * PG);
    CHECK(madvise(p + 2 * PG, 3 * PG, MADV_DONTNEED) == 0);
    SHOW("page1=%02x page2=%02x page4=%02x page5=%02x", p[PG], p[2 * PG], p[5 * PG - 1], p[5 * PG]);
    p[3 * PG] = 7; /* still mapped and writable */
    CHECK(p[3 * PG] == 7);

    int fd = open(HELLO_PATH, O_RDONLY);
    CHECK(fd >= 0);
    char *f = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(f != MAP_FAILED);
    f[0] = 'J';
    SHOW("before DONTNEED: %.5s", f);
    CHECK(madvise(f, PG, MADV_DONTNEED) == 0);
    SHOW("after DONTNEED: %.5s", f);

    CHECK_ERRNO(madvise(p + 1, PG, MADV_DONTNEED), EINVAL);
    CHECK(madvise(p, 0, MADV_DONTNEED) == 0);
    CHECK(munmap(p + 6 * PG, 2 * PG) == 0);
    CHECK_ERRNO(madvise(p + 6 * PG, 2 * PG, MADV_DONTNEED), ENOMEM);
    return 0;
}
