/* getrandom returns the requested length and real randomness. */
#include "check.h"
#include <sys/random.h>

static int all_zero(const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int main(void) {
    unsigned char a[64], b[64];
    SHOW("getrandom(64) = %zd", getrandom(a, sizeof a, 0));
    SHOW("getrandom(64, GRND_NONBLOCK) = %zd", getrandom(b, sizeof b, GRND_NONBLOCK));
    SHOW("not all zero: %d, two calls differ: %d", !all_zero(a, 64), memcmp(a, b, 64) != 0);
    SHOW("getrandom(0) = %zd", getrandom(a, 0, 0));
    SHOW("getrandom(1) = %zd", getrandom(a, 1, 0));
    static unsigned char big[4096];
    SHOW("getrandom(4096) = %zd", getrandom(big, sizeof big, 0));
    SHOW("4096 not all zero: %d", !all_zero(big, sizeof big));
    SHOW("GRND_RANDOM(16) = %zd", getrandom(a, 16, GRND_RANDOM));
    CHECK_ERRNO(getrandom(a, 16, 0x40), EINVAL);
    CHECK_ERRNO(syscall(SYS_getrandom, 8, 16, 0), EFAULT);
    /* byte values are spread out */
    int seen[256] = {0}, distinct = 0;
    for (size_t i = 0; i < sizeof big; i++)
        if (!seen[big[i]]++)
            distinct++;
    SHOW("more than 200 distinct byte values in 4096: %d", distinct > 200);
    return 0;
}
