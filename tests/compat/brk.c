/* brk: query, grow, write, shrink, re-grow (fresh pages are zero), refuse to go below the start. */
#include "check.h"

#define MB (1024 * 1024)

int main(void) {
    char *start = (char *)syscall(SYS_brk, 0);
    CHECK(start != NULL);
    CHECK((char *)syscall(SYS_brk, 0) == start);

    char *grown = (char *)syscall(SYS_brk, start + 2 * MB);
    CHECK(grown == start + 2 * MB);
    SHOW("grew by 2 MiB: %d", grown == start + 2 * MB);
    for (long i = 0; i < 2 * MB; i += 512)
        start[i] = (char)(i / 512);
    for (long i = 0; i < 2 * MB; i += 512)
        CHECK(start[i] == (char)(i / 512));
    start[2 * MB - 1] = 'z';
    SHOW("wrote and read back 2 MiB");

    char *shrunk = (char *)syscall(SYS_brk, start + 4096);
    CHECK(shrunk == start + 4096);
    CHECK(start[0] == 0 && start[512] == 1); /* the first page survives */
    SHOW("shrank to 4 KiB: %d", shrunk == start + 4096);

    char *regrown = (char *)syscall(SYS_brk, start + 2 * MB);
    CHECK(regrown == start + 2 * MB);
    int zero = 1;
    for (long i = 64 * 1024; i < 2 * MB; i += 512)
        zero &= start[i] == 0;
    SHOW("re-grown memory is zero: %d", zero);
    CHECK(start[2 * MB - 1] == 0);

    /* going below the initial break fails: the current break is returned */
    char *below = (char *)syscall(SYS_brk, start - 64 * MB);
    SHOW("brk below start refused: %d", below == start + 2 * MB);
    /* absurdly large grows fail the same way */
    char *huge = (char *)syscall(SYS_brk, start + (1L << 46));
    SHOW("brk +64 TiB refused: %d", huge == start + 2 * MB);

    CHECK((char *)syscall(SYS_brk, start) == start);
    SHOW("back to start: %d", (char *)syscall(SYS_brk, 0) == start);

    /* malloc still works afterwards */
    char *m = malloc(300000);
    CHECK(m != NULL);
    memset(m, 7, 300000);
    free(m);
    return 0;
}
