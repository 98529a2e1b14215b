/* Writes through a MAP_SHARED mapping of argv[1] and leaves it the way
 * argv[2] says: "munmap" (unmap, then exit), "msync" (msync, then _exit
 * with the mapping still there) or "exit" (just exit). The host file must
 * have the data in every case. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int fd = open(argv[1], O_CREAT | O_RDWR, 0644);
    if (fd < 0 || ftruncate(fd, 8192) != 0) return 3;
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return 4;
    close(fd);
    snprintf(m, 64, "first page via %s", argv[2]);
    snprintf(m + 4096, 64, "second page via %s", argv[2]);
    if (strcmp(argv[2], "munmap") == 0) {
        munmap(m, 8192);
    } else if (strcmp(argv[2], "msync") == 0) {
        if (msync(m, 8192, MS_SYNC) != 0) return 5;
        _exit(0);
    }
    return 0;
}
