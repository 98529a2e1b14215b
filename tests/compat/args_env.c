/* argv, envp and the auxiliary vector as the loader built them. */
#include "check.h"
#include <elf.h>
#include <sys/auxv.h>

extern char **environ;

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    SHOW("argc=%d", argc);
    for (int i = 0; i < argc; i++)
        SHOW("argv[%d]=\"%s\"", i, argv[i]);
    CHECK(argv[argc] == NULL);
    /* envp order is up to the runtime: print it sorted */
    int n = 0;
    while (environ[n])
        n++;
    char **env = calloc((size_t)n + 1, sizeof *env);
    CHECK(env != NULL);
    memcpy(env, environ, (size_t)n * sizeof *env);
    qsort(env, (size_t)n, sizeof *env, cmp);
    for (int i = 0; i < n; i++)
        SHOW("env: %s", env[i]);
    SHOW("getenv(PATH)=%s", getenv("PATH"));

    SHOW("AT_PAGESZ=%lu", getauxval(AT_PAGESZ));
    SHOW("AT_UID=%lu AT_EUID=%lu AT_GID=%lu AT_EGID=%lu", getauxval(AT_UID), getauxval(AT_EUID), getauxval(AT_GID),
         getauxval(AT_EGID));
    SHOW("AT_SECURE=%lu", getauxval(AT_SECURE));
    SHOW("AT_PHDR set: %d, AT_PHNUM>0: %d, AT_PHENT=%lu", getauxval(AT_PHDR) != 0, getauxval(AT_PHNUM) > 0,
         getauxval(AT_PHENT));
    SHOW("AT_ENTRY set: %d", getauxval(AT_ENTRY) != 0);
    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    CHECK(rnd != NULL);
    int nonzero = 0;
    for (int i = 0; i < 16; i++)
        nonzero |= rnd[i];
    SHOW("AT_RANDOM points at 16 bytes, not all zero: %d", nonzero != 0);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    SHOW("AT_EXECFN=%s", execfn ? execfn : "(none)");
    SHOW("AT_HWCAP set: %d", getauxval(AT_HWCAP) != 0);
    /* the stack is where argv is, and it is writable */
    argv[0][0] = argv[0][0];
    char big[256 * 1024];
    memset(big, 1, sizeof big);
    SHOW("256 KiB of stack usable: %d", big[sizeof big - 1] == 1);
    return 0;
}
