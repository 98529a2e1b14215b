/* read(2) into memory a fork left copy-on-write: the data lands in the
 * reader's own copy, never in the other process's pages (and a read into
 * part of a page keeps the rest of the reader's page). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEN (64 * 1024)

static void show(const char *who, const char *buf)
{
	printf("%s: %.8s|%.8s|%.8s\n", who, buf, buf + 100, buf + LEN - 8);
}

int main(void)
{
	/* Anonymous memory and a heap buffer, both written before the fork. */
	char *anon = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *heap = malloc(LEN);
	if (anon == MAP_FAILED || !heap)
		return 1;
	memset(anon, 'P', LEN);
	memset(heap, 'Q', LEN);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/data/hello.txt", O_RDONLY);
		if (fd < 0)
			_exit(2);
		/* Into the middle of a page, then at the start of another. */
		if (pread(fd, anon + 100, 5, 0) != 5 || pread(fd, heap, 8, 0) != 8)
			_exit(3);
		show("child anon", anon);
		show("child heap", heap);
		fflush(stdout);
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 4;
	show("parent anon", anon);
	show("parent heap", heap);
	/* The parent reads too, after the child is gone (it owns its pages). */
	int fd = open("/data/hello.txt", O_RDONLY);
	if (fd < 0 || read(fd, anon, 8) != 8)
		return 5;
	show("parent anon", anon);
	return 0;
}
