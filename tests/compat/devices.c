/* /dev/null, /dev/zero, /dev/full, /dev/urandom: reads, writes, stat. */
#include "check.h"
#include <sys/sysmacros.h>

static void show_dev(const char *path) {
    struct stat st;
    CHECK(stat(path, &st) == 0);
    SHOW("%s chr=%d mode=%o rdev=%u:%u", path, S_ISCHR(st.st_mode), st.st_mode & 0777, major(st.st_rdev),
         minor(st.st_rdev));
}

int main(void) {
    char buf[64];
    show_dev("/dev/null");
    show_dev("/dev/zero");
    show_dev("/dev/full");
    show_dev("/dev/urandom");

    int fd = open("/dev/null", O_RDWR);
    CHECK(fd >= 0);
    SHOW("null write=%zd read=%zd", write(fd, "abc", 3), read(fd, buf, sizeof buf));
    close(fd);

    fd = open("/dev/zero", O_RDONLY);
    CHECK(fd >= 0);
    memset(buf, 0x55, sizeof buf);
    CHECK(read(fd, buf, sizeof buf) == sizeof buf);
    int zeros = 1;
    for (size_t i = 0; i < sizeof buf; i++) if (buf[i]) zeros = 0;
    SHOW("zero all zero=%d", zeros);
    close(fd);

    fd = open("/dev/full", O_WRONLY);
    CHECK(fd >= 0);
    CHECK_ERRNO(write(fd, "x", 1), ENOSPC);
    close(fd);

    fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(read(fd, buf, 32) == 32);
    int nonzero = 0;
    for (int i = 0; i < 32; i++) if (buf[i]) nonzero = 1;
    SHOW("urandom some nonzero=%d", nonzero);
    close(fd);
    return 0;
}
