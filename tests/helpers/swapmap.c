/* Test helper: maps FILE1 read+exec and touches every page of it, as mapper does; then, for each
 * byte read from stdin, puts the other file in its place: munmap() and mmap() of the other file,
 * of the very same size, at the very same address, without touching a page of it. Neither its
 * size of address space nor its fault count changes: its /proc/PID/stat looks the same, only its
 * maps say what happened (the gap a full pass of prelockd closes). Prints "ready" and, after each
 * swap, "swapped"; exits at the end of stdin.
 *
 *   swapmap FILE1 FILE2
 *
 * Everything the swap runs is run once before "ready" (code, the buffers it writes from, the
 * lazily bound library calls), so that the swap itself takes no page fault.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Maps fd over len bytes at addr (NULL: anywhere); returns the address or MAP_FAILED. */
static void *map_at(void *addr, size_t len, int fd)
{
	return mmap(addr, len, PROT_READ | PROT_EXEC, MAP_PRIVATE | (addr ? MAP_FIXED : 0), fd, 0);
}

int main(int argc, char **argv)
{
	struct stat st1, st2;
	volatile unsigned char sink = 0;
	char msg[16], in[16];

	if (argc != 3) {
		fprintf(stderr, "usage: swapmap FILE1 FILE2\n");
		return 64;
	}
	int fd[2] = { open(argv[1], O_RDONLY), open(argv[2], O_RDONLY) };
	if (fd[0] < 0 || fd[1] < 0 || fstat(fd[0], &st1) < 0 || fstat(fd[1], &st2) < 0) {
		perror("open");
		return 1;
	}
	if (st1.st_size != st2.st_size || st1.st_size == 0) {
		fprintf(stderr, "the files must be of the same size, not 0\n");
		return 64;
	}
	size_t len = (size_t)st1.st_size, page = (size_t)sysconf(_SC_PAGESIZE);
	/* A dry run of the swap: mmap, munmap and map_at() at a fixed address. */
	unsigned char *p = map_at(NULL, len, fd[1]);
	if (p == MAP_FAILED || munmap(p, len) < 0 || (p = map_at(NULL, len, fd[0])) == MAP_FAILED ||
	    map_at(p, len, fd[0]) != p) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < len; i += page)
		sink = (unsigned char)(sink + p[i]);
	memset(in, 0, sizeof(in));
	strcpy(msg, "ready\n");
	if (write(1, msg, 6) != 6)
		return 1;
	strcpy(msg, "swapped\n");
	for (int cur = 0;;) {
		ssize_t n = read(0, in, sizeof(in));
		if (n <= 0)
			return 0;
		for (ssize_t i = 0; i < n; i++) {
			cur = !cur;
			if (munmap(p, len) < 0 || map_at(p, len, fd[cur]) != p)
				return 1;
			if (write(1, msg, 8) != 8)
				return 1;
		}
	}
}
