/* mount(2)/umount2(2) as root: a tmpfs over a directory hides what was
 * there until unmounted; a bind mount shows another tree; a read-only
 * remount refuses writes; propagation changes are accepted; bad calls
 * fail as on Linux. The mount table shows the changes. */
#include "check.h"
#include <dirent.h>
#include <sys/mount.h>

static int count(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static int in_table(const char *path) {
    FILE *f = fopen("/proc/self/mounts", "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char src[128], mp[256];
        if (sscanf(line, "%127s %255s", src, mp) == 2 && strcmp(mp, path) == 0) n++;
    }
    fclose(f);
    return n;
}

int main(void) {
    CHECK(mkdir("/dev/shm/m", 0755) == 0);
    CHECK(mkdir("/dev/shm/src", 0755) == 0);
    int fd = open("/dev/shm/m/under", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
    fd = open("/dev/shm/src/in-src", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
    SHOW("before: %d entries, table %d", count("/dev/shm/m"), in_table("/dev/shm/m"));
    CHECK(mount("none", "/dev/shm/m", "tmpfs", 0, "size=1m,mode=700") == 0);
    struct stat st;
    CHECK(stat("/dev/shm/m", &st) == 0);
    SHOW("tmpfs: %d entries, mode %o, table %d", count("/dev/shm/m"), st.st_mode & 07777, in_table("/dev/shm/m"));
    CHECK((fd = open("/dev/shm/m/new", O_CREAT | O_WRONLY, 0644)) >= 0);
    close(fd);
    CHECK(umount2("/dev/shm/m", 0) == 0);
    SHOW("after umount: %d entries, under=%d, table %d", count("/dev/shm/m"), access("/dev/shm/m/under", F_OK) == 0,
         in_table("/dev/shm/m"));
    CHECK_ERRNO(umount2("/dev/shm/m", 0), EINVAL);
    CHECK_ERRNO(umount2("/dev/shm/m", 0x80), EINVAL);
    CHECK_ERRNO(mount("none", "/dev/shm/nope", "tmpfs", 0, NULL), ENOENT);
    CHECK_ERRNO(mount("none", "/dev/shm/m", "no-such-fs", 0, NULL), ENODEV);

    /* Bind mount. */
    CHECK(mount("/dev/shm/src", "/dev/shm/m", NULL, MS_BIND, NULL) == 0);
    SHOW("bind: in-src=%d under=%d", access("/dev/shm/m/in-src", F_OK) == 0, access("/dev/shm/m/under", F_OK) == 0);
    CHECK(mount(NULL, "/dev/shm/m", NULL, MS_PRIVATE | MS_REC, NULL) == 0);
    CHECK(umount2("/dev/shm/m", MNT_DETACH) == 0);
    SHOW("unbound: in-src=%d", access("/dev/shm/m/in-src", F_OK) == 0);

    /* Stacked mounts come off one at a time. */
    CHECK(mount("a", "/dev/shm/m", "tmpfs", 0, NULL) == 0);
    CHECK((fd = open("/dev/shm/m/first", O_CREAT | O_WRONLY, 0644)) >= 0);
    close(fd);
    CHECK(mount("b", "/dev/shm/m", "tmpfs", MS_RDONLY, NULL) == 0);
    CHECK_ERRNO(open("/dev/shm/m/x", O_CREAT | O_WRONLY, 0644), EROFS);
    CHECK(umount2("/dev/shm/m", 0) == 0);
    SHOW("second off: first=%d", access("/dev/shm/m/first", F_OK) == 0);
    CHECK(umount2("/dev/shm/m", 0) == 0);
    SHOW("both off: under=%d", access("/dev/shm/m/under", F_OK) == 0);

    CHECK(unlink("/dev/shm/m/under") == 0 && rmdir("/dev/shm/m") == 0);
    CHECK(unlink("/dev/shm/src/in-src") == 0 && rmdir("/dev/shm/src") == 0);
    return 0;
}
