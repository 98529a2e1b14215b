/* Synchronous signals caught by handlers: SIGSEGV (unmapped and
 * write-protected pages, with si_addr and si_code), SIGFPE on integer
 * division by zero, SIGTRAP on int3 and SIGILL on ud2; and SSE/AVX
 * registers surviving a handler that clobbers them. */
#include "check.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

static sigjmp_buf env;
static volatile int got_sig, got_code;
static volatile void *got_addr;

static void catcher(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    got_addr = si->si_addr;
    if (sig != SIGTRAP) siglongjmp(env, 1);
}

static void clobber(int sig) {
    (void)sig;
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n\tpcmpeqd %%xmm8, %%xmm8\n\tpcmpeqd %%xmm15, %%xmm15" ::: "xmm0", "xmm8", "xmm15");
}

static void catch(int sig) {
    struct sigaction sa = {0};
    sa.sa_sigaction = catcher;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

int main(void) {
    catch(SIGSEGV);
    catch(SIGFPE);
    catch(SIGTRAP);
    catch(SIGILL);

    if (sigsetjmp(env, 1) == 0) {
        *(volatile int *)0x1000 = 1;
        SHOW("no fault?");
    }
    SHOW("unmapped: sig=%d code=%d addr_ok=%d", got_sig, got_code, got_addr == (void *)0x1000);

    char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    if (sigsetjmp(env, 1) == 0) {
        p[10] = 1;
        SHOW("no fault?");
    }
    SHOW("read-only: sig=%d code=%d addr_ok=%d", got_sig, got_code, got_addr == p + 10);
    CHECK(mprotect(p, 4096, PROT_READ | PROT_WRITE) == 0);
    p[10] = 7;
    SHOW("after mprotect: %d", p[10]);

    volatile int zero = 0;
    if (sigsetjmp(env, 1) == 0) {
        volatile int x = 10 / zero;
        (void)x;
    }
    SHOW("divide: sig=%d code=%d", got_sig, got_code);

    __asm__ volatile("int3");
    SHOW("int3: sig=%d code=%d", got_sig, got_code);

    if (sigsetjmp(env, 1) == 0) __asm__ volatile("ud2");
    SHOW("ud2: sig=%d code=%d", got_sig, got_code);

    /* Vector registers of the interrupted code survive the handler. */
    signal(SIGUSR1, clobber);
    unsigned int in[4] = {0x11111111, 0x22222222, 0x33333333, 0x44444444}, out[4];
    __asm__ volatile("movdqu %0, %%xmm8" ::"m"(in) : "xmm8");
    raise(SIGUSR1);
    __asm__ volatile("movdqu %%xmm8, %0" : "=m"(out));
    SHOW("xmm8 kept=%d", memcmp(in, out, sizeof in) == 0);
    return 0;
}
