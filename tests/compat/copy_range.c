/* sendfile, copy_file_range and posix_fadvise: copies between files and
 * into pipes, with and without offset pointers, and their errors. */
#include "check.h"
#include <sys/sendfile.h>

static unsigned sum(const char *path) {
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    unsigned s = 0;
    unsigned char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++) s = s * 31 + buf[i];
    close(fd);
    return s;
}

int main(void) {
    /* sendfile of a gofer file into a tmpfs file, by position. */
    int in = open("/data/big.bin", O_RDONLY);
    CHECK(in >= 0);
    int out = open("/dev/shm/copy1", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(out >= 0);
    ssize_t total = 0, n;
    while ((n = sendfile(out, in, NULL, 100000)) > 0) total += n;
    CHECK(n == 0);
    SHOW("sendfile by position: %zd bytes, same=%d, in pos %ld", total, sum("/data/big.bin") == sum("/dev/shm/copy1"),
         (long)lseek(in, 0, SEEK_CUR));

    /* With an offset pointer: the input position stays. */
    CHECK(lseek(in, 7, SEEK_SET) == 7);
    off_t off = 1000;
    CHECK(ftruncate(out, 0) == 0 && lseek(out, 0, SEEK_SET) == 0);
    n = sendfile(out, in, &off, 5000);
    SHOW("sendfile at offset: %zd, offset now %ld, in pos %ld", n, (long)off, (long)lseek(in, 0, SEEK_CUR));

    /* Into a pipe. */
    int p[2];
    CHECK(pipe(p) == 0);
    off = 0;
    n = sendfile(p[1], in, &off, 300);
    char buf[512];
    CHECK(read(p[0], buf, sizeof buf) == n);
    SHOW("sendfile to a pipe: %zd", n);

    /* At end of file: 0. */
    off = 1 << 30;
    SHOW("sendfile past the end: %zd", sendfile(out, in, &off, 10));

    /* Errors. */
    CHECK_ERRNO(sendfile(out, p[0], NULL, 10), EINVAL);
    CHECK_ERRNO(sendfile(in, in, NULL, 10), EBADF);
    CHECK_ERRNO(sendfile(out, 999, NULL, 10), EBADF);
    off = -1;
    CHECK_ERRNO(sendfile(out, in, &off, 10), EINVAL);
    int app = open("/dev/shm/app", O_CREAT | O_WRONLY | O_APPEND, 0644);
    CHECK(app >= 0);
    CHECK_ERRNO(sendfile(app, in, NULL, 10), EINVAL);

    /* copy_file_range between files, positions and offsets. */
    int c = open("/dev/shm/copy2", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(c >= 0);
    CHECK(lseek(in, 0, SEEK_SET) == 0);
    total = 0;
    while ((n = copy_file_range(in, NULL, c, NULL, 65536, 0)) > 0) total += n;
    CHECK(n == 0);
    SHOW("copy_file_range by position: %zd, same=%d", total, sum("/data/big.bin") == sum("/dev/shm/copy2"));
    loff_t oi = 10, oo = 3;
    n = copy_file_range(in, &oi, out, &oo, 20, 0);
    SHOW("copy_file_range at offsets: %zd, in %lld, out %lld", n, (long long)oi, (long long)oo);
    oi = 0;
    oo = 100;
    CHECK_ERRNO(copy_file_range(c, &oi, c, &oo, 200, 0), EINVAL); /* overlapping */
    oi = 0;
    oo = 4096;
    n = copy_file_range(c, &oi, c, &oo, 100, 0);
    SHOW("copy_file_range within a file: %zd", n);
    CHECK_ERRNO(copy_file_range(in, NULL, c, NULL, 10, 1), EINVAL);
    CHECK_ERRNO(copy_file_range(in, NULL, p[1], NULL, 10, 0), EINVAL);
    CHECK_ERRNO(copy_file_range(c, NULL, in, NULL, 10, 0), EBADF);
    CHECK_ERRNO(copy_file_range(in, NULL, app, NULL, 10, 0), EBADF);
    int dir = open("/data", O_RDONLY | O_DIRECTORY);
    CHECK(dir >= 0);
    CHECK_ERRNO(copy_file_range(dir, NULL, c, NULL, 10, 0), EISDIR);

    /* posix_fadvise: hints accepted, bad ones refused. */
    SHOW("fadvise sequential: %d", posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL));
    SHOW("fadvise dontneed: %d", posix_fadvise(c, 0, 4096, POSIX_FADV_DONTNEED));
    SHOW("fadvise bad advice: %s", check_errname(posix_fadvise(in, 0, 0, 99)));
    SHOW("fadvise on a pipe: %s", check_errname(posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL)));
    SHOW("fadvise bad fd: %s", check_errname(posix_fadvise(999, 0, 0, POSIX_FADV_NORMAL)));
    SHOW("fadvise negative len: %s", check_errname(posix_fadvise(in, 0, -1, POSIX_FADV_NORMAL)));
    return 0;
}
