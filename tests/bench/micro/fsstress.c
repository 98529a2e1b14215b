/* fsstress: a mixed file-system workload in a writable directory (argv[2];
 * in a container the harness's /scratch bind mount of a host directory).
 * A fixed, seeded pseudo-random sequence of create, write, read, stat,
 * rename (files, and now and then a directory), unlink, mkdir and rmdir over
 * a small namespace: the top directory and up to NDIRS subdirectories, each
 * with up to NFILES file slots.  argv[1] is the number of iterations of
 * ITER_OPS chosen actions each; the state carries over from one iteration to
 * the next.  The program keeps a model of the tree and checks every result
 * against it (sizes read and stat'ed, errors), so it is deterministic and a
 * wrong answer is an error, not a figure.  One op = one of those actions as
 * a system-call sequence; an rmdir of a non-empty directory first unlinks
 * its files, each unlink counted as an op, so the figure is the timed span
 * over the ops actually done (the same count under every runtime).  Works
 * in a fresh subdirectory it removes at the end. */
#include "bench.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define NDIRS 8          /* subdirectory slots d0..d7 (loc 1..NDIRS) */
#define NLOCS (NDIRS + 1) /* loc 0 = the work directory itself */
#define NFILES 16        /* file slots f0..f15 per loc */
#define MAXW 16384       /* largest single write */
#define MAXSIZE 65536    /* a write that would pass this goes to offset 0 */
#define ITER_OPS 1000

enum { OP_CREATE, OP_WRITE, OP_READ, OP_STAT, OP_RENAME, OP_UNLINK,
       OP_MKDIR, OP_RMDIR, NOPS };
static const char *const op_names[NOPS] = {
	"create", "write", "read", "stat", "rename", "unlink", "mkdir", "rmdir"};
/* Weights out of 100, in op order. */
static const int op_weight[NOPS] = {14, 14, 20, 20, 10, 12, 5, 5};

static int dir_exists[NLOCS];           /* dir_exists[0] is always 1 */
static long file_size[NLOCS][NFILES];   /* -1: no such file */
static long done[NOPS];
static int wfd;                         /* the work directory */
static char wbuf[MAXW], rbuf[MAXSIZE + 1];
static uint64_t rng_state;

static uint64_t rng(void)               /* xorshift64* */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static int below(int n)
{
	return (int)((rng() >> 33) % (uint64_t)n);
}

static void fpath(char *p, size_t sz, int loc, int f)
{
	if (loc == 0)
		snprintf(p, sz, "f%d", f);
	else
		snprintf(p, sz, "d%d/f%d", loc - 1, f);
}

static void dpath(char *p, size_t sz, int loc)
{
	snprintf(p, sz, "d%d", loc - 1);
}

static void die_at(const char *what, const char *path)
{
	fprintf(stderr, "fsstress: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void mismatch(const char *what, const char *path, long got, long want)
{
	fprintf(stderr, "fsstress: %s %s: got %ld, model says %ld\n", what, path,
		got, want);
	exit(1);
}

/* Pick an existing file (scan from a random start); 0 if there is none. */
static int pick_file(int *loc, int *f)
{
	int start = below(NLOCS * NFILES);
	for (int k = 0; k < NLOCS * NFILES; k++) {
		int s = (start + k) % (NLOCS * NFILES);
		if (file_size[s / NFILES][s % NFILES] >= 0) {
			*loc = s / NFILES;
			*f = s % NFILES;
			return 1;
		}
	}
	return 0;
}

/* Pick a free file slot in an existing directory; 0 if there is none. */
static int pick_free(int *loc, int *f)
{
	int start = below(NLOCS * NFILES);
	for (int k = 0; k < NLOCS * NFILES; k++) {
		int s = (start + k) % (NLOCS * NFILES);
		if (dir_exists[s / NFILES] && file_size[s / NFILES][s % NFILES] < 0) {
			*loc = s / NFILES;
			*f = s % NFILES;
			return 1;
		}
	}
	return 0;
}

/* Pick a subdirectory slot (1..NDIRS) that exists (want 1) or not (want 0). */
static int pick_dir(int want)
{
	int start = below(NDIRS);
	for (int k = 0; k < NDIRS; k++) {
		int loc = 1 + (start + k) % NDIRS;
		if (dir_exists[loc] == want)
			return loc;
	}
	return 0;
}

static void write_all(int fd, long n, const char *p)
{
	if (write(fd, wbuf, (size_t)n) != n)
		die_at("write", p);
}

static void do_create(int loc, int f)
{
	char p[64];
	long n = 1 + below(MAXW);
	fpath(p, sizeof p, loc, f);
	int fd = openat(wfd, p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		die_at("create", p);
	write_all(fd, n, p);
	if (close(fd) != 0)
		die_at("close", p);
	file_size[loc][f] = n;
	done[OP_CREATE]++;
}

static void do_write(int loc, int f)
{
	char p[64];
	long n = 1 + below(MAXW);
	int append = file_size[loc][f] + n <= MAXSIZE;
	fpath(p, sizeof p, loc, f);
	/* Past MAXSIZE, overwrite from offset 0 rather than truncate: on
	 * close of a file truncated to 0, ext4 allocates its delayed blocks
	 * and starts writing them back (auto_da_alloc): disk, not file path. */
	int fd = openat(wfd, p, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : 0));
	if (fd < 0)
		die_at("open for write", p);
	write_all(fd, n, p);
	if (close(fd) != 0)
		die_at("close", p);
	if (append)
		file_size[loc][f] += n;
	else if (n > file_size[loc][f])
		file_size[loc][f] = n;
	done[OP_WRITE]++;
}

static void do_read(int loc, int f)
{
	char p[64];
	long total = 0;
	ssize_t n;
	fpath(p, sizeof p, loc, f);
	int fd = openat(wfd, p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die_at("open for read", p);
	while ((n = read(fd, rbuf, sizeof rbuf)) > 0)
		total += n;
	if (n < 0)
		die_at("read", p);
	close(fd);
	if (total != file_size[loc][f])
		mismatch("read", p, total, file_size[loc][f]);
	if (total > 0 && rbuf[0] != 'w')
		mismatch("read (first byte)", p, rbuf[0], 'w');
	done[OP_READ]++;
}

static void do_stat(int loc, int f)
{
	char p[64];
	struct stat st;
	fpath(p, sizeof p, loc, f);
	if (fstatat(wfd, p, &st, 0) != 0)
		die_at("stat", p);
	if (!S_ISREG(st.st_mode) || st.st_size != file_size[loc][f])
		mismatch("stat size", p, (long)st.st_size, file_size[loc][f]);
	done[OP_STAT]++;
}

static void do_unlink(int loc, int f)
{
	char p[64];
	fpath(p, sizeof p, loc, f);
	if (unlinkat(wfd, p, 0) != 0)
		die_at("unlink", p);
	file_size[loc][f] = -1;
	done[OP_UNLINK]++;
}

static void do_mkdir(int loc)
{
	char p[64];
	dpath(p, sizeof p, loc);
	if (mkdirat(wfd, p, 0755) != 0)
		die_at("mkdir", p);
	dir_exists[loc] = 1;
	done[OP_MKDIR]++;
}

static void do_rmdir(int loc)
{
	char p[64];
	for (int f = 0; f < NFILES; f++)
		if (file_size[loc][f] >= 0)
			do_unlink(loc, f);
	dpath(p, sizeof p, loc);
	if (unlinkat(wfd, p, AT_REMOVEDIR) != 0)
		die_at("rmdir", p);
	dir_exists[loc] = 0;
	done[OP_RMDIR]++;
}

/* Rename a file to a free slot of an existing directory, or, one time in
 * five, a subdirectory to a free subdirectory slot.  Never over an existing
 * file: ext4 then allocates the renamed file's delayed blocks and starts
 * writing them back (auto_da_alloc): disk, not file path.  Returns 0 if
 * there was nothing to rename. */
static int do_rename(void)
{
	char a[64], b[64];
	int from = pick_dir(1), to = pick_dir(0);

	if (below(5) == 0 && from && to) {
		dpath(a, sizeof a, from);
		dpath(b, sizeof b, to);
		if (renameat(wfd, a, wfd, b) != 0)
			die_at("rename dir", a);
		dir_exists[to] = 1;
		dir_exists[from] = 0;
		memcpy(file_size[to], file_size[from], sizeof file_size[to]);
		for (int f = 0; f < NFILES; f++)
			file_size[from][f] = -1;
		done[OP_RENAME]++;
		return 1;
	}
	int sl, sf, dl, df;
	if (!pick_file(&sl, &sf) || !pick_free(&dl, &df))
		return 0;
	fpath(a, sizeof a, sl, sf);
	fpath(b, sizeof b, dl, df);
	if (renameat(wfd, a, wfd, b) != 0)
		die_at("rename", a);
	file_size[dl][df] = file_size[sl][sf];
	file_size[sl][sf] = -1;
	done[OP_RENAME]++;
	return 1;
}

static void action(void)
{
	int r = below(100), op = 0, loc, f;

	while (r >= op_weight[op])
		r -= op_weight[op++];
	switch (op) {
	case OP_MKDIR:
		if ((loc = pick_dir(0))) {
			do_mkdir(loc);
			return;
		}
		break;
	case OP_RMDIR:
		if ((loc = pick_dir(1))) {
			do_rmdir(loc);
			return;
		}
		break;
	case OP_RENAME:
		if (do_rename())
			return;
		break;
	case OP_CREATE:
		break;
	default:
		if (pick_file(&loc, &f)) {
			if (op == OP_WRITE)
				do_write(loc, f);
			else if (op == OP_READ)
				do_read(loc, f);
			else if (op == OP_STAT)
				do_stat(loc, f);
			else
				do_unlink(loc, f);
			return;
		}
	}
	/* create, or the fallback of an action with nothing to act on. */
	if (pick_free(&loc, &f))
		do_create(loc, f);
	else if (pick_file(&loc, &f))
		do_unlink(loc, f);
}


static void cleanup(const char *top, const char *work)
{
	for (int loc = NLOCS - 1; loc >= 0; loc--) {
		if (!dir_exists[loc])
			continue;
		if (loc)
			do_rmdir(loc);
		else
			for (int f = 0; f < NFILES; f++)
				if (file_size[0][f] >= 0)
					do_unlink(0, f);
	}
	close(wfd);
	int tfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0 || unlinkat(tfd, work, AT_REMOVEDIR) != 0)
		die_at("rmdir", work);
	close(tfd);
}

int main(int argc, char **argv)
{
	long iters = bench_iters(argc, argv, 50);
	const char *top = argc > 2 && argv[2][0] ? argv[2] : "/scratch";
	long w = bench_warmup(iters);
	char work[64], p[4096];

	memset(wbuf, 'w', sizeof wbuf);
	rng_state = 0x5eedf5f5c0d0a11ULL;
	for (int loc = 0; loc < NLOCS; loc++)
		for (int f = 0; f < NFILES; f++)
			file_size[loc][f] = -1;
	dir_exists[0] = 1;
	snprintf(work, sizeof work, "fsstress.%d", (int)getpid());
	snprintf(p, sizeof p, "%s/%s", top, work);
	if (mkdir(p, 0755) != 0)
		die_at("mkdir", p);
	wfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd < 0)
		die_at("open", p);

	for (long i = 0; i < w * ITER_OPS; i++)
		action();
	long before[NOPS], ops = 0;
	memcpy(before, done, sizeof before);
	double t0 = bench_now_ns();
	for (long i = 0; i < iters * ITER_OPS; i++)
		action();
	double t1 = bench_now_ns();
	for (int i = 0; i < NOPS; i++)
		ops += done[i] - before[i];
	/* The mix, on stderr (the harness keeps its tail in the JSON). */
	fprintf(stderr, "fsstress: %ld timed ops:", ops);
	for (int i = 0; i < NOPS; i++)
		fprintf(stderr, " %s %ld", op_names[i], done[i] - before[i]);
	fprintf(stderr, "\n");
	cleanup(top, work);
	bench_report("fsstress", t0, t1, ops);
	return 0;
}
