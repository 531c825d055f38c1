/* Test helper: a population of processes. Maps FILE read+exec and reads every page of it, then
 * forks N children that sleep (they inherit the mapping), prints "ready N" and waits to be
 * killed. The children die with it (PR_SET_PDEATHSIG), so killing this one process is enough.
 *
 *   forker N FILE
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat st;
	volatile unsigned char sink = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: forker N FILE\n");
		return 64;
	}
	long n = strtol(argv[1], NULL, 10);
	int fd = open(argv[2], O_RDONLY);
	if (n < 0 || fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
		perror(argv[2]);
		return 1;
	}
	unsigned char *p =
		mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	close(fd);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t off = 0; off < (size_t)st.st_size; off += page)
		sink = (unsigned char)(sink + p[off]);
	pid_t parent = getpid();
	long made = 0;
	for (; made < n; made++) {
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "fork %ld: %s\n", made, strerror(errno));
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			for (;;)
				pause();
		}
	}
	printf("ready %ld\n", made);
	fflush(stdout);
	for (;;)
		pause();
}
