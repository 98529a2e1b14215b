/* mmap_coherent DIR: what a MAP_SHARED mapping wrote (no msync) is what a
 * later MAP_PRIVATE mapping of the same file, read(2), and a second shared
 * mapping see, as Linux's one page cache has it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char path[256], buf[16] = { 0 };
	if (argc < 2)
		return 2;
	snprintf(path, sizeof path, "%s/coherent", argv[1]);
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0 || write(fd, "old-data", 8) != 8 || ftruncate(fd, 8192) != 0)
		return 3;
	char *shared = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shared == MAP_FAILED)
		return 4;
	memcpy(shared, "new-data", 8);
	memcpy(shared + 4096, "page-two", 8);
	char *private = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
	char *again = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
	if (private == MAP_FAILED || again == MAP_FAILED || pread(fd, buf, 8, 0) != 8)
		return 5;
	printf("private %.8s %.8s\n", private, private + 4096);
	printf("shared %.8s %.8s\n", again, again + 4096);
	printf("read %.8s\n", buf);
	munmap(shared, 8192);
	munmap(private, 8192);
	munmap(again, 8192);
	close(fd);
	unlink(path);
	return 0;
}
