/* Anonymous mmap: patterns, MAP_FIXED, munmap holes, mprotect, errors. */
#include "check.h"
#include <sys/mman.h>

#define PG 4096L

int main(void) {
    long ps = sysconf(_SC_PAGESIZE);
    SHOW("page size %ld", ps);
    CHECK(ps == PG);

    size_t len = 64 * PG;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(((uintptr_t)p & (PG - 1)) == 0);
    int zero = 1;
    for (size_t i = 0; i < len; i += 64)
        zero &= p[i] == 0;
    SHOW("fresh anonymous memory is zero: %d", zero);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 7 + 3);
    for (size_t i = 0; i < len; i++)
        CHECK(p[i] == (unsigned char)(i * 7 + 3));
    SHOW("pattern over 64 pages ok");

    /* MAP_FIXED over pages 8..11 replaces them with zero pages */
    unsigned char *f = mmap(p + 8 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(f == p + 8 * PG);
    CHECK(p[8 * PG] == 0 && p[12 * PG - 1] == 0);
    CHECK(p[8 * PG - 1] == (unsigned char)((8 * PG - 1) * 7 + 3));
    CHECK(p[12 * PG] == (unsigned char)((12 * PG) * 7 + 3));
    SHOW("MAP_FIXED replaced 4 pages, neighbours intact");

    /* munmap a hole in the middle: mprotect over it reports ENOMEM */
    CHECK(munmap(p + 20 * PG, 2 * PG) == 0);
    CHECK_ERRNO(mprotect(p + 20 * PG, PG, PROT_READ), ENOMEM);
    CHECK_ERRNO(mprotect(p + 19 * PG, 3 * PG, PROT_READ), ENOMEM);
    CHECK(munmap(p + 20 * PG, 2 * PG) == 0); /* unmapping a hole is fine */
    CHECK(p[19 * PG] == (unsigned char)((19 * PG) * 7 + 3));
    CHECK(p[22 * PG] == (unsigned char)((22 * PG) * 7 + 3));
    /* MAP_FIXED_NOREPLACE into the hole succeeds, over a mapping fails */
    void *h = mmap(p + 20 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(h == p + 20 * PG);
    CHECK_ERRNO(mmap(p + 20 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED ? -1 : 0, EEXIST);
    SHOW("hole refilled");

    /* mprotect read-only, then reading still works */
    CHECK(mprotect(p, 4 * PG, PROT_READ) == 0);
    CHECK(p[0] == 3 && p[4 * PG - 1] == (unsigned char)((4 * PG - 1) * 7 + 3));
    CHECK(mprotect(p, 4 * PG, PROT_READ | PROT_WRITE) == 0);
    p[0] = 99;
    CHECK(p[0] == 99);
    SHOW("mprotect read-only and back ok");

    /* PROT_NONE reservation made accessible later */
    unsigned char *r = mmap(NULL, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(r != MAP_FAILED);
    CHECK(mprotect(r + 4 * PG, 2 * PG, PROT_READ | PROT_WRITE) == 0);
    r[4 * PG] = 1;
    r[6 * PG - 1] = 2;
    CHECK(r[4 * PG] == 1 && r[6 * PG - 1] == 2);
    CHECK(munmap(r, 16 * PG) == 0);
    SHOW("PROT_NONE then mprotect ok");

    /* a large sparse mapping: touch one byte per MiB */
    size_t big = 256UL << 20;
    unsigned char *b = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(b != MAP_FAILED);
    for (size_t i = 0; i < big; i += 1 << 20)
        b[i] = (unsigned char)(i >> 20);
    for (size_t i = 0; i < big; i += 1 << 20)
        CHECK(b[i] == (unsigned char)(i >> 20));
    CHECK(munmap(b, big) == 0);
    SHOW("256 MiB sparse mapping ok");

    /* hint address without MAP_FIXED is honoured when free */
    CHECK(munmap(p, len) == 0);
    void *again = mmap(p, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(again != MAP_FAILED);
    SHOW("free hint honoured: %d", again == (void *)p);

    CHECK_ERRNO(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    CHECK_ERRNO(mmap(NULL, PG, PROT_READ, MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    CHECK_ERRNO(mmap((void *)(p + 1), PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    CHECK_ERRNO(mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1) == MAP_FAILED ? -1 : 0, EINVAL);
    CHECK_ERRNO(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, 999, 0) == MAP_FAILED ? -1 : 0, EBADF);
    CHECK_ERRNO(munmap(p + 1, PG), EINVAL);
    CHECK_ERRNO(munmap(p, 0), EINVAL);
    CHECK_ERRNO(mprotect(p + 1, PG, PROT_READ), EINVAL);
    CHECK_ERRNO(mprotect(again, PG, 0x1000), EINVAL);
    return 0;
}
