/* Credentials: the setuid/setgid families, setgroups, capget/capset,
 * prctl capability calls, and what capabilities allow in the file system
 * (DAC override, chown, fowner) as root and after dropping to a user. */
#include "check.h"
#include <grp.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* Capability sets relative to the starting ones (the host's root may lack
 * some capabilities, so absolute masks are not printed). */
static uint64_t start_eff;

static void caps(const char *when) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    CHECK(syscall(SYS_capget, &h, d) == 0);
    uint64_t eff = (uint64_t)d[1].effective << 32 | d[0].effective;
    uint64_t prm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
    uint64_t inh = (uint64_t)d[1].inheritable << 32 | d[0].inheritable;
    if (!start_eff) start_eff = eff;
    SHOW("%s: eff=%s prm=%s inh=%llx missing-from-start=%llx", when,
         eff == 0 ? "none" : eff == start_eff ? "all" : "some", prm == 0 ? "none" : prm == start_eff ? "all" : "some",
         (unsigned long long)inh, (unsigned long long)(eff ? start_eff & ~eff : 0));
}

static void ids(const char *when) {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    CHECK(getresuid(&r, &e, &s) == 0 && getresgid(&gr, &ge, &gs) == 0);
    SHOW("%s: uid %d/%d/%d gid %d/%d/%d", when, r, e, s, gr, ge, gs);
}

int main(void) {
    umask(0);
    ids("start");
    caps("start");
    /* A header with an unknown version gets the kernel's back. */
    struct __user_cap_header_struct h = {0x12345, 0};
    SHOW("probe: %ld, preferred version %x", syscall(SYS_capget, &h, NULL), h.version);
    h.version = 0x12345;
    struct __user_cap_data_struct dd[2];
    CHECK_ERRNO(syscall(SYS_capget, &h, dd), EINVAL);
    SHOW("bounding has CAP_SYS_ADMIN=%d, cap 63 -> %d", (int)prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN),
         (int)prctl(PR_CAPBSET_READ, 63));

    CHECK(mkdir("/dev/shm/c", 0755) == 0 || errno == EEXIST);
    int fd = open("/dev/shm/c/secret", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "s", 1) == 1);
    close(fd);
    CHECK(chown("/dev/shm/c/secret", 0, 0) == 0);

    pid_t c = fork();
    if (c == 0) {
        /* Groups first, while we may. */
        gid_t g[2] = {100, 200};
        CHECK(setgroups(2, g) == 0);
        CHECK(getgroups(0, NULL) == 2);
        CHECK(setresgid(1000, 1000, 1000) == 0);
        /* Effective uid leaves 0, saved stays: capabilities wait. */
        CHECK(setresuid(-1, 1000, 0) == 0);
        ids("euid 1000");
        caps("euid 1000");
        CHECK_ERRNO(open("/dev/shm/c/secret", O_RDONLY), EACCES);
        CHECK(setresuid(-1, 0, -1) == 0);
        caps("euid back to 0");
        CHECK((fd = open("/dev/shm/c/secret", O_RDONLY)) >= 0);
        close(fd);
        /* setfsuid moves only the file-system capabilities. */
        SHOW("setfsuid old=%d", setfsuid(1000));
        CHECK_ERRNO(open("/dev/shm/c/secret", O_RDONLY), EACCES);
        SHOW("setfsuid old=%d", setfsuid(0));
        /* Drop for good. */
        CHECK(setuid(1000) == 0);
        ids("setuid 1000");
        caps("setuid 1000");
        CHECK_ERRNO(setuid(0), EPERM);
        CHECK_ERRNO(setgroups(0, NULL), EPERM);
        CHECK_ERRNO(mount("none", "/dev/shm", "tmpfs", 0, NULL), EPERM);
        CHECK_ERRNO(chown("/dev/shm/c/secret", 1000, 1000), EPERM);
        CHECK_ERRNO(chmod("/dev/shm/c/secret", 0644), EPERM);
        CHECK_ERRNO(unlink("/dev/shm/c/secret"), EACCES);
        CHECK(access("/dev/shm/c/secret", F_OK) == 0);
        CHECK_ERRNO(access("/dev/shm/c/secret", R_OK), EACCES);
        /* Our own file: chmod, chgrp to a supplementary group, not to others. */
        CHECK((fd = open("/dev/shm/mine", O_CREAT | O_WRONLY | O_EXCL, 0644)) >= 0);
        close(fd);
        struct stat st;
        CHECK(stat("/dev/shm/mine", &st) == 0);
        SHOW("new file owner %d:%d", st.st_uid, st.st_gid);
        CHECK(chown("/dev/shm/mine", -1, 200) == 0);
        CHECK_ERRNO(chown("/dev/shm/mine", -1, 300), EPERM);
        CHECK(chmod("/dev/shm/mine", 0600) == 0);
        CHECK(unlink("/dev/shm/mine") == 0);
        _exit(0);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("child exited %d", WEXITSTATUS(st));

    /* capset: give up a capability, then root may not chown any more. */
    c = fork();
    if (c == 0) {
        struct __user_cap_header_struct hh = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        CHECK(syscall(SYS_capget, &hh, d) == 0);
        d[0].effective &= ~(1u << CAP_CHOWN);
        d[0].permitted &= ~(1u << CAP_CHOWN);
        CHECK(syscall(SYS_capset, &hh, d) == 0);
        caps("without CAP_CHOWN");
        CHECK_ERRNO(chown("/dev/shm/c/secret", 5, 5), EPERM);
        d[0].permitted |= 1u << CAP_CHOWN;
        CHECK_ERRNO(syscall(SYS_capset, &hh, d), EPERM);
        CHECK(prctl(PR_CAPBSET_DROP, CAP_MKNOD) == 0);
        SHOW("after drop: bounding has CAP_MKNOD=%d", (int)prctl(PR_CAPBSET_READ, CAP_MKNOD));
        CHECK(prctl(PR_SET_KEEPCAPS, 1) == 0);
        CHECK(setresuid(7, 7, 7) == 0);
        caps("keepcaps after setresuid 7");
        SHOW("keepcaps=%d", (int)prctl(PR_GET_KEEPCAPS));
        _exit(0);
    }
    CHECK(waitpid(c, &st, 0) == c);
    SHOW("child exited %d", WEXITSTATUS(st));
    unlink("/dev/shm/c/secret");
    rmdir("/dev/shm/c");
    return 0;
}
