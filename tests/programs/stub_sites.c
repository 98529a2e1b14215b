/* A hostile guest against the stub page: the stub's code page is mapped
 * (read+exec) in every guest, and its `syscall` instructions are the only
 * places the systrap platform's seccomp filter lets a call reach the host.
 * This program finds each of them and jumps there with a system call the
 * host would answer differently from the sentry (getpid: the host pid of the
 * stub vs the guest's pid), and with calls that would matter on the host
 * (kill of pid 1, futex PI ops). Every outcome must be the sentry's: the
 * guest pid, -ENOSYS, or a guest-visible signal.
 *
 * Then it forges an rt_sigreturn at the stub's restorer with a frame that
 * blocks every host signal (SIGURG, which the sentry interrupts running
 * guest code with, included) and spins: the guest's own alarm must still
 * interrupt it (the platform also stops a thread by ptrace, not only by
 * signal).
 *
 * Prints "ok" lines; exits 0 when nothing reached the host. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define STUB_ADDR 0x7ff000000000UL
#define STUB_LEN 4096

static sigjmp_buf env;
static volatile long seen_rax;
static volatile int seen_sig;

static void on_signal(int sig, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    (void)si;
    seen_sig = sig;
    seen_rax = uc->uc_mcontext.gregs[REG_RAX];
    siglongjmp(env, 1);
}

/* Sets rax/rdi/rsi/rdx and calls `site`, which may return (a `syscall;
 * ret`), fall into other code, or raise a signal. */
static long call_site(uintptr_t site, long nr, long a0, long a1, long a2) {
    long ret;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("call *%[site]"
                     : "=a"(ret)
                     : [site] "r"(site), "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10)
                     : "rcx", "r11", "r8", "r9", "memory");
    return ret;
}

static int check(const char *what, uintptr_t site, long got, long guest_pid) {
    if (got == guest_pid || got == -38 /* ENOSYS */ || (got < 0 && got > -4096)) {
        printf("ok %s at +%#lx\n", what, (unsigned long)(site - STUB_ADDR));
        return 0;
    }
    printf("HOST ANSWERED %s at +%#lx: %ld (guest pid %ld)\n", what, (unsigned long)(site - STUB_ADDR), got,
           guest_pid);
    return 1;
}

static void spin_forever(void) {
    for (;;)
        __asm__ volatile("pause");
}

static void on_alarm(int sig) {
    (void)sig;
    printf("ok alarm interrupted a thread that blocked every host signal\n");
    fflush(stdout);
    _exit(0);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    int sigs[] = {SIGTRAP, SIGILL, SIGSEGV, SIGBUS, SIGSYS, SIGALRM};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);

    /* Unbuffered: a site that ends the program must not lose the log. */
    setvbuf(stdout, NULL, _IONBF, 0);
    const unsigned char *page = (const unsigned char *)STUB_ADDR;
    long guest_pid = getpid();
    int bad = 0, sites = 0;
    uintptr_t restorer = 0;
    for (unsigned off = 0; off + 1 < STUB_LEN; off++) {
        if (page[off] != 0x0f || page[off + 1] != 0x05)
            continue;
        /* The sites a filter could let through, by what follows them:
         * `ret` (futex), `int3` (injection), `ud2` (sigreturn, first trap),
         * `jmp` after `mov eax, 34` (the pause loop), `test rax, rax; jz; int3` (clone). The
         * template's own calls run on with garbage registers (its fork path
         * closes fd 1) and are left alone. */
        const unsigned char *n = page + off + 2;
        int known = n[0] == 0xc3 || n[0] == 0xcc || (n[0] == 0x0f && n[1] == 0x0b) ||
                    ((n[0] == 0xeb || n[0] == 0xe9) && off >= 5 && page[off - 5] == 0xb8 && page[off - 4] == 34) ||
                    (n[0] == 0x48 && n[1] == 0x85 && n[2] == 0xc0 &&
                     ((n[3] == 0x74 && n[5] == 0xcc) || (n[3] == 0x0f && n[4] == 0x84 && n[9] == 0xcc)));
        if (!known)
            continue;
        uintptr_t site = STUB_ADDR + off;
        sites++;
        if (off >= 5 && page[off - 5] == 0xb8 && page[off - 4] == 15 && !page[off - 3] && !page[off - 2] &&
            !page[off - 1])
            restorer = site - 5;
        struct {
            const char *what;
            long nr, a0, a1, a2;
        } calls[] = {
            {"getpid", SYS_getpid, 0, 0, 0},
            {"kill(1, SIGKILL)", SYS_kill, 1, SIGKILL, 0},
            {"futex LOCK_PI", SYS_futex, (long)&seen_rax, 6 /* FUTEX_LOCK_PI */, 0},
            {"futex WAIT (value differs)", SYS_futex, (long)&seen_rax, 0 /* FUTEX_WAIT */, 12345},
        };
        for (unsigned c = 0; c < sizeof calls / sizeof calls[0]; c++) {
            seen_sig = 0;
            seen_rax = 0;
            /* A site that falls into a host pause() loop gets out on the
             * guest's own timer. */
            alarm(1);
            long got;
            if (sigsetjmp(env, 1) == 0)
                got = call_site(site, calls[c].nr, calls[c].a0, calls[c].a1, calls[c].a2);
            else
                got = seen_rax;
            alarm(0);
            if (calls[c].nr == SYS_getpid)
                bad |= check(calls[c].what, site, got, guest_pid);
            else
                printf("ok %s at +%#lx did not take the sandbox down\n", calls[c].what,
                       (unsigned long)(site - STUB_ADDR));
        }
    }
    printf("sites: %d\n", sites);
    if (sites == 0 || !restorer) {
        printf("no stub page found\n");
        return 2;
    }

    /* The forged frame: resume in spin_forever with every signal blocked. */
    signal(SIGALRM, on_alarm);
    static unsigned char stack[16384] __attribute__((aligned(64)));
    static ucontext_t forged __attribute__((aligned(64)));
    memset(&forged, 0, sizeof forged);
    /* Keep the thread's current alternate stack (the sentry's, on systrap). */
    stack_t cur;
    sigaltstack(NULL, &cur);
    forged.uc_stack = cur;
    forged.uc_mcontext.gregs[REG_RIP] = (long)spin_forever;
    forged.uc_mcontext.gregs[REG_RSP] = (long)(stack + sizeof stack - 8);
    forged.uc_mcontext.gregs[REG_EFL] = 0x202;
    forged.uc_mcontext.gregs[REG_CSGSFS] = 0x33 | (0x2bL << 48);
    sigfillset(&forged.uc_sigmask);
    /* SIGALRM stays deliverable in the guest: it is what must get through. */
    sigdelset(&forged.uc_sigmask, SIGALRM);
    alarm(1);
    fflush(stdout);
    __asm__ volatile("mov %0, %%rsp\n\tjmp *%1" : : "r"(&forged), "r"(restorer) : "memory");
    __builtin_unreachable();
}
