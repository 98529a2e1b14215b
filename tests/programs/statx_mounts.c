/* statx(2) across the mounts of a runc-like container (/ a directory of the
 * host's fs, /proc, /sys, tmpfs on /dev, /dev/shm and /tmp): which stx_mask
 * bits come back for several requests (BASIC_STATS|BTIME, 0, STATX_ALL,
 * MNT_ID_UNIQUE), STATX_ATTR_MOUNT_ROOT, stx_mnt_id and
 * stx_dev_major:minor against /proc/self/mountinfo (only yes/no: the ids
 * themselves differ), same mount same id, btime on tmpfs, flag errors and
 * AT_EMPTY_PATH with an fd or a NULL path. */
#include "../compat/check.h"
#include <sys/sysmacros.h>

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x1000U
#endif
#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x2000U
#endif
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U
#endif
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x2000
#endif

static int sx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st) {
    memset(st, 0, sizeof *st);
    return (int)syscall(SYS_statx, dirfd, path, flags, mask, st);
}

static const struct {
    unsigned bit;
    const char *name;
} bits[] = {
    {STATX_TYPE, "TYPE"},   {STATX_MODE, "MODE"},   {STATX_NLINK, "NLINK"},     {STATX_UID, "UID"},
    {STATX_GID, "GID"},     {STATX_ATIME, "ATIME"}, {STATX_MTIME, "MTIME"},     {STATX_CTIME, "CTIME"},
    {STATX_INO, "INO"},     {STATX_SIZE, "SIZE"},   {STATX_BLOCKS, "BLOCKS"},   {STATX_BTIME, "BTIME"},
    {STATX_MNT_ID, "MNT_ID"}, {STATX_DIOALIGN, "DIOALIGN"}, {STATX_MNT_ID_UNIQUE, "MNT_ID_UNIQUE"},
};

static void show_mask(const char *path, const char *req, unsigned mask) {
    char buf[256] = "";
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (mask & bits[i].bit) {
            strcat(buf, " ");
            strcat(buf, bits[i].name);
        }
    SHOW("%s request %s:%s", path, req, buf);
}

/* The mountinfo line of the mount `path` is on: the longest mount point
 * that is a prefix of it, the last one if several (the top of a stack). */
struct mnt {
    unsigned long id;
    unsigned major, minor;
};
static int find_mount(const char *path, struct mnt *out) {
    static char info[65536];
    CHECK(read_small_file("/proc/self/mountinfo", info, sizeof info) > 0);
    size_t best = 0;
    int found = 0;
    for (char *line = strtok(info, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long id, parent;
        unsigned ma, mi;
        char root[512], mp[512];
        if (sscanf(line, "%lu %lu %u:%u %511s %511s", &id, &parent, &ma, &mi, root, mp) != 6) continue;
        size_t n = strlen(mp);
        int prefix = strcmp(mp, "/") == 0 ||
                     (strncmp(path, mp, n) == 0 && (path[n] == 0 || path[n] == '/'));
        if (prefix && n >= best) {
            best = n;
            *out = (struct mnt){id, ma, mi};
            found = 1;
        }
    }
    return found;
}

static const char *paths[] = {"/", "/prog", "/proc", "/proc/self/status", "/sys", "/dev",
                              "/dev/null", "/dev/shm", "/tmp", "/tmp/file"};
#define NPATHS (sizeof paths / sizeof paths[0])
static unsigned long long old_id[NPATHS], uniq_id[NPATHS];

static const char *yesno(int b) { return b ? "yes" : "no"; }

int main(void) {
    int fd = open("/tmp/file", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "data\n", 5) == 5);
    struct statx st;

    for (size_t i = 0; i < NPATHS; i++) {
        const char *p = paths[i];
        CHECK(sx(AT_FDCWD, p, 0, STATX_BASIC_STATS | STATX_BTIME, &st) == 0);
        show_mask(p, "BASIC|BTIME", st.stx_mask);
        CHECK(sx(AT_FDCWD, p, 0, 0, &st) == 0);
        show_mask(p, "0", st.stx_mask);
        CHECK(sx(AT_FDCWD, p, 0, STATX_ALL, &st) == 0);
        show_mask(p, "ALL", st.stx_mask);
        /* STATX_DIOALIGN is not asked: Cordon serves file data through
         * the sentry and reports no direct-I/O alignment (the bit stays
         * clear), where the host's ext4 gives one. */
        CHECK(sx(AT_FDCWD, p, 0, STATX_MNT_ID_UNIQUE, &st) == 0);
        show_mask(p, "MNT_ID_UNIQUE", st.stx_mask);
        uniq_id[i] = st.stx_mnt_id;

        CHECK(sx(AT_FDCWD, p, 0, STATX_MNT_ID, &st) == 0);
        old_id[i] = st.stx_mnt_id;
        SHOW("%s MOUNT_ROOT: in attributes_mask %s, in attributes %s", p,
             yesno(st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT), yesno(st.stx_attributes & STATX_ATTR_MOUNT_ROOT));
        struct mnt m;
        CHECK(find_mount(p, &m));
        SHOW("%s mnt_id matches mountinfo: %s, dev matches mountinfo: %s, unique id differs: %s", p,
             yesno((st.stx_mask & STATX_MNT_ID) && st.stx_mnt_id == m.id),
             yesno(st.stx_dev_major == m.major && st.stx_dev_minor == m.minor), yesno(uniq_id[i] != old_id[i]));
        struct stat sb;
        CHECK(stat(p, &sb) == 0);
        CHECK(makedev(st.stx_dev_major, st.stx_dev_minor) == sb.st_dev && st.stx_ino == sb.st_ino);
    }

    /* Same mount, same id (old and unique); different mounts, different ids. */
    static const int pairs[][2] = {{0, 1}, {2, 3}, {5, 6}, {8, 9}, {0, 2}, {0, 8}, {5, 7}, {4, 5}, {7, 8}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        int a = pairs[i][0], b = pairs[i][1];
        SHOW("%s vs %s: same mnt_id %s, same unique id %s", paths[a], paths[b], yesno(old_id[a] == old_id[b]),
             yesno(uniq_id[a] == uniq_id[b]));
    }

    /* btime on tmpfs: present, not after mtime. */
    CHECK(sx(AT_FDCWD, "/tmp/file", 0, STATX_BTIME | STATX_MTIME, &st) == 0);
    SHOW("/tmp/file btime present %s, btime <= mtime %s", yesno(st.stx_mask & STATX_BTIME),
         yesno(st.stx_btime.tv_sec < st.stx_mtime.tv_sec ||
            (st.stx_btime.tv_sec == st.stx_mtime.tv_sec && st.stx_btime.tv_nsec <= st.stx_mtime.tv_nsec)));

    /* Flags and errors. */
    CHECK_ERRNO(sx(AT_FDCWD, "/tmp/file", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &st), EINVAL);
    CHECK_ERRNO(sx(AT_FDCWD, "/tmp/file", 0, 0x80000000U, &st), EINVAL); /* STATX__RESERVED */
    CHECK(sx(AT_FDCWD, "/tmp/file", AT_STATX_FORCE_SYNC, STATX_SIZE, &st) == 0 && st.stx_size == 5);
    CHECK(sx(AT_FDCWD, "/tmp/file", AT_STATX_DONT_SYNC, STATX_SIZE, &st) == 0 && st.stx_size == 5);
    CHECK(sx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st) == 0 && st.stx_size == 5);
    SHOW("AT_EMPTY_PATH on an fd: size %llu", (unsigned long long)st.stx_size);
    CHECK_ERRNO(sx(fd, "", 0, STATX_SIZE, &st), ENOENT);
    int r = sx(fd, NULL, AT_EMPTY_PATH, STATX_SIZE, &st);
    SHOW("NULL path, AT_EMPTY_PATH, fd: %s size %lld", r == 0 ? "ok" : check_errname(errno),
         r == 0 ? (long long)st.stx_size : -1LL);
    CHECK(chdir("/proc") == 0);
    r = sx(AT_FDCWD, NULL, AT_EMPTY_PATH, STATX_MNT_ID, &st);
    SHOW("NULL path, AT_EMPTY_PATH, AT_FDCWD in /proc: %s, mnt_id same as /proc %s", r == 0 ? "ok" : check_errname(errno),
         yesno(r == 0 && st.stx_mnt_id == old_id[2]));
    CHECK_ERRNO(sx(fd, NULL, 0, STATX_SIZE, &st), EFAULT);
    int opath = open("/tmp/file", O_PATH);
    CHECK(opath >= 0);
    CHECK(sx(opath, "", AT_EMPTY_PATH, STATX_SIZE | STATX_MNT_ID, &st) == 0 && st.stx_size == 5);
    SHOW("AT_EMPTY_PATH on an O_PATH fd: size %llu, mnt_id same as /tmp %s", (unsigned long long)st.stx_size,
         yesno(st.stx_mnt_id == old_id[8]));
    CHECK(unlink("/tmp/file") == 0);
    return 0;
}
