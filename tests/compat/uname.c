/* uname: sysname, machine and nodename (the harness runs the native side in a
 * UTS namespace with the config's hostname); `prog nodename` prints only the
 * nodename, for the cordon-only hostname test. The release is not printed: a
 * sandbox may report its own kernel version. */
#include "check.h"
#include <sys/utsname.h>

int main(int argc, char **argv) {
    struct utsname u;
    CHECK(uname(&u) == 0);
    if (argc > 1 && strcmp(argv[1], "nodename") == 0) {
        SHOW("%s", u.nodename);
        return 0;
    }
    SHOW("sysname=%s", u.sysname);
    SHOW("machine=%s", u.machine);
    SHOW("release nonempty=%d", u.release[0] != 0);
    SHOW("version nonempty=%d", u.version[0] != 0);
    SHOW("nodename=%s", u.nodename); /* the harness gives the native run the same hostname */
    CHECK(strnlen(u.nodename, sizeof u.nodename) < sizeof u.nodename);
    CHECK_ERRNO(syscall(SYS_uname, (void *)8), EFAULT);
    return 0;
}
