/* Test helper: maps part of a file read+exec (as a program maps its code) and touches a
 * contiguous part of that, then waits to be killed. Prints "ready" once the pages are in its
 * page tables.
 *
 *   mapper FILE [MAP_FIRST MAP_LAST [TOUCH_FIRST TOUCH_LAST]]
 *
 * Numbers are percentages of the file's pages: the mapping covers [MAP_FIRST%, MAP_LAST%), and
 * the pages in [TOUCH_FIRST%, TOUCH_LAST%) of the file (within the mapping) are read once.
 * Defaults: map all of it, touch all that is mapped.
 *
 * MAPPER_PROT chooses the mapping: "rx" (the default: code), "r" (read-only data), "rwp"
 * (writable, private: a program's .data) or "rws" (writable, shared; the file is opened for
 * writing).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t pct(const char *s, size_t n)
{
	return (size_t)((double)n * atof(s) / 100.0);
}

int main(int argc, char **argv)
{
	struct stat st;
	volatile unsigned char sink = 0;

	if (argc != 2 && argc != 4 && argc != 6) {
		fprintf(stderr, "usage: mapper FILE [MAP_FIRST MAP_LAST [TOUCH_FIRST TOUCH_LAST]]\n");
		return 64;
	}
	const char *how = getenv("MAPPER_PROT");
	if (!how)
		how = "rx";
	int prot = PROT_READ, flags = MAP_PRIVATE, oflags = O_RDONLY;
	if (strcmp(how, "rx") == 0) {
		prot |= PROT_EXEC;
	} else if (strcmp(how, "rwp") == 0) {
		prot |= PROT_WRITE;
	} else if (strcmp(how, "rws") == 0) {
		prot |= PROT_WRITE;
		flags = MAP_SHARED;
		oflags = O_RDWR;
	} else if (strcmp(how, "r") != 0) {
		fprintf(stderr, "MAPPER_PROT: rx, r, rwp or rws\n");
		return 64;
	}
	int fd = open(argv[1], oflags);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 1;
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t npages = ((size_t)st.st_size + page - 1) / page;
	size_t m0 = argc >= 4 ? pct(argv[2], npages) : 0, m1 = argc >= 4 ? pct(argv[3], npages) : npages;
	size_t t0 = argc >= 6 ? pct(argv[4], npages) : m0, t1 = argc >= 6 ? pct(argv[5], npages) : m1;
	if (m1 <= m0) {
		fprintf(stderr, "empty mapping\n");
		return 64;
	}
	unsigned char *p = mmap(NULL, (m1 - m0) * page, prot, flags, fd, (off_t)(m0 * page));
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	close(fd);
	for (size_t i = t0 < m0 ? m0 : t0; i < t1 && i < m1; i++)
		sink = (unsigned char)(sink + p[(i - m0) * page]);
	printf("ready %zu %zu %zu %zu\n", m0, m1, t0, t1);
	fflush(stdout);
	for (;;)
		pause();
}
