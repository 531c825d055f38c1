/* Test helper: a population of processes. Maps FILE read+exec and reads every page of it, then
 * forks N children that sleep (they inherit the mapping), prints "ready N" and waits to be
 * killed. The children die with it (PR_SET_PDEATHSIG), so killing this one process is enough.
 *
 *   forker N FILE
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "mapfile.h"

int main(int argc, char **argv)
{
	volatile unsigned char sink = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: forker N FILE\n");
		return 64;
	}
	long n = strtol(argv[1], NULL, 10);
	size_t size;
	unsigned char *p = n < 0 ? NULL : map_exec_file(argv[2], &size);
	if (!p) {
		perror(argv[2]);
		return 1;
	}
	sink = (unsigned char)(sink + touch_pages(p, size));
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
