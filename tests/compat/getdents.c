/* getdents64: list fixture directories, sorted, with d_type. */
#include "check.h"
#include <dirent.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

struct entry {
    char name[256];
    unsigned char type;
};

static int cmp(const void *a, const void *b) {
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static const char *tname(unsigned char t) {
    switch (t) {
    case DT_REG: return "reg";
    case DT_DIR: return "dir";
    case DT_LNK: return "lnk";
    case DT_UNKNOWN: return "unknown";
    default: return "other";
    }
}

/* Lists fd with buffers of bufsize bytes; returns the number of entries. */
static int list(int fd, size_t bufsize, struct entry *out, int max) {
    char buf[65536];
    int n = 0;
    for (;;) {
        long r = syscall(SYS_getdents64, fd, buf, bufsize);
        CHECK(r >= 0);
        if (r == 0)
            break;
        for (long off = 0; off < r;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            CHECK(d->d_reclen > 0 && d->d_reclen % 8 == 0);
            CHECK(n < max);
            snprintf(out[n].name, sizeof out[n].name, "%s", d->d_name);
            out[n].type = d->d_type;
            n++;
            off += d->d_reclen;
        }
    }
    qsort(out, (size_t)n, sizeof out[0], cmp);
    return n;
}

static void show_dir(const char *path, size_t bufsize) {
    static struct entry e[64];
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    int n = list(fd, bufsize, e, 64);
    printf("%s (buf %zu):", path, bufsize);
    for (int i = 0; i < n; i++)
        printf(" %s/%s", e[i].name, tname(e[i].type));
    printf("\n");
    /* again at EOF returns 0; after rewinding the same entries come back */
    char buf[512];
    CHECK(syscall(SYS_getdents64, fd, buf, sizeof buf) == 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    static struct entry e2[64];
    CHECK(list(fd, bufsize, e2, 64) == n);
    for (int i = 0; i < n; i++)
        CHECK(strcmp(e[i].name, e2[i].name) == 0);
    CHECK(close(fd) == 0);
}

int main(void) {
    show_dir("/data/dir", 4096);
    show_dir("/data/dir", 24 + 8); /* one small entry at a time */
    show_dir("/data", 4096);
    show_dir("/data", 64);
    show_dir("/data/types", 4096);
    show_dir("/data/types/sub", 4096);
    show_dir("/data/dirlink", 4096);

    char buf[512];
    int fd = open("/data/dir", O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK_ERRNO(syscall(SYS_getdents64, fd, buf, 1), EINVAL);
    CHECK_ERRNO(syscall(SYS_getdents64, fd, (void *)8, sizeof buf), EFAULT);
    CHECK(close(fd) == 0);
    int f = open(HELLO_PATH, O_RDONLY);
    CHECK(f >= 0);
    CHECK_ERRNO(syscall(SYS_getdents64, f, buf, sizeof buf), ENOTDIR);
    CHECK_ERRNO(syscall(SYS_getdents64, 999, buf, sizeof buf), EBADF);

    /* readdir(3) from glibc uses getdents64 too */
    DIR *dir = opendir("/data/dir");
    CHECK(dir != NULL);
    int count = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        count++;
    SHOW("readdir /data/dir: %d entries", count);
    closedir(dir);
    return 0;
}
