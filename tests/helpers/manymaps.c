/* Test helper: one process with very many mappings. Maps N single pages of FILE side by side,
 * page i at file offset (i mod pages of FILE), alternately read+exec and read-only so that no
 * two neighbours merge into one VMA; reads every executable page. Prints "ready N" (N mappings
 * made) and waits to be killed. vm.max_map_count (65530 by default) bounds N.
 *
 *   manymaps N FILE
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat st;
	volatile unsigned char sink = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: manymaps N FILE\n");
		return 64;
	}
	long n = strtol(argv[1], NULL, 10);
	int fd = open(argv[2], O_RDONLY);
	if (n <= 0 || fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[2]);
		return 1;
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t fpages = (size_t)st.st_size / page;
	if (fpages == 0) {
		fprintf(stderr, "%s: smaller than a page\n", argv[2]);
		return 1;
	}
	/* Reserve the address range first, so the pages land side by side. */
	unsigned char *base =
		mmap(NULL, (size_t)n * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		perror("mmap reserve");
		return 1;
	}
	long made = 0;
	for (; made < n; made++) {
		int prot = made % 2 ? PROT_READ : PROT_READ | PROT_EXEC;
		unsigned char *p = mmap(base + (size_t)made * page, page, prot,
					MAP_PRIVATE | MAP_FIXED, fd,
					(off_t)(((size_t)made % fpages) * page));
		if (p == MAP_FAILED) {
			perror("mmap");
			break;
		}
		if (prot & PROT_EXEC)
			sink = (unsigned char)(sink + p[0]);
	}
	close(fd);
	printf("ready %ld\n", made);
	fflush(stdout);
	for (;;)
		pause();
}
