/* Private file mappings: contents, copy-on-write, offsets, tail zeroing, errors. */
#include "check.h"
#include <sys/mman.h>

#define PG 4096L

int main(void) {
    int fd = open(HELLO_PATH, O_RDONLY);
    CHECK(fd >= 0);
    char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    SHOW("mapped: %.12s", p);
    CHECK(memcmp(p, HELLO_TEXT, HELLO_LEN) == 0);
    int zero = 1;
    for (long i = HELLO_LEN; i < PG; i++)
        zero &= p[i] == 0;
    SHOW("tail of last page is zero: %d", zero);

    /* writing to the private copy does not change the file */
    memcpy(p, "HELLO", 5);
    SHOW("private copy: %.12s", p);
    char buf[16] = {0};
    CHECK(pread(fd, buf, HELLO_LEN, 0) == HELLO_LEN);
    SHOW("file still: %.12s", buf);
    /* a second mapping sees the file, not the first mapping's copy */
    char *q = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(q != MAP_FAILED);
    SHOW("second mapping: %.12s", q);
    CHECK(munmap(q, PG) == 0);
    CHECK(munmap(p, PG) == 0);

    /* the mapping outlives the fd */
    char *r = mmap(NULL, HELLO_LEN, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(r != MAP_FAILED);
    CHECK(close(fd) == 0);
    SHOW("after close: %.12s", r);
    CHECK(munmap(r, HELLO_LEN) == 0);

    /* the big file, whole and at an offset */
    int big = open(BIG_PATH, O_RDONLY);
    CHECK(big >= 0);
    unsigned char *b = mmap(NULL, BIG_LEN, PROT_READ, MAP_PRIVATE, big, 0);
    CHECK(b != MAP_FAILED);
    for (unsigned long i = 0; i < BIG_LEN; i++)
        CHECK(b[i] == BIG_BYTE(i));
    SHOW("1 MiB mapping matches the file");
    unsigned char *o = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, big, 16 * PG);
    CHECK(o != MAP_FAILED);
    for (unsigned long i = 0; i < 3 * PG; i++)
        CHECK(o[i] == BIG_BYTE(i + 16 * PG));
    o[5] ^= 0xff;
    CHECK(b[16 * PG + 5] == BIG_BYTE(16 * PG + 5));
    SHOW("offset mapping ok, copy-on-write private");

    /* MAP_FIXED file mapping over an anonymous region */
    unsigned char *a = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    a[0] = 1;
    unsigned char *fx = mmap(a + 2 * PG, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_FIXED, big, 4 * PG);
    CHECK(fx == a + 2 * PG);
    CHECK(fx[0] == BIG_BYTE(4 * PG) && fx[2 * PG - 1] == BIG_BYTE(6 * PG - 1));
    CHECK(a[0] == 1 && a[4 * PG] == 0);
    SHOW("MAP_FIXED file over anonymous ok");

    CHECK_ERRNO(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, big, 100) == MAP_FAILED ? -1 : 0, EINVAL);
    CHECK_ERRNO(mmap(NULL, 0, PROT_READ, MAP_PRIVATE, big, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    int d = open("/data/dir", O_RDONLY | O_DIRECTORY);
    CHECK(d >= 0);
    CHECK_ERRNO(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, d, 0) == MAP_FAILED ? -1 : 0, ENODEV);
    return 0;
}
