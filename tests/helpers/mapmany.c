/* Test helper: maps each FILE whole, read+exec, as a program maps its libraries, and reads every
 * page of each (none with -n). Prints "ready N" (files mapped) and waits to be killed.
 *
 *   mapmany [-n] FILE...
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	volatile unsigned char sink = 0;
	int touch = 1, first = 1, made = 0;

	if (argc > 1 && strcmp(argv[1], "-n") == 0) {
		touch = 0;
		first = 2;
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (int i = first; i < argc; i++) {
		struct stat st;
		int fd = open(argv[i], O_RDONLY);
		if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
			perror(argv[i]);
			return 1;
		}
		unsigned char *p =
			mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		close(fd);
		for (size_t off = 0; touch && off < (size_t)st.st_size; off += page)
			sink = (unsigned char)(sink + p[off]);
		made++;
	}
	printf("ready %d\n", made);
	fflush(stdout);
	for (;;)
		pause();
}
