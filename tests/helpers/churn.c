/* Test helper: process churn. For SECONDS, starts RATE short-lived processes a second; each maps
 * one of the FILEs read+exec (round robin), reads one of its pages, lives 1 to 30 ms and exits.
 * Children are reaped by the kernel (SIGCHLD ignored). Prints "ready" at the start and
 * "done STARTED" at the end.
 *
 *   churn RATE SECONDS FILE...
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mapfile.h"

static void child(const char *path, unsigned seed)
{
	volatile unsigned char sink = 0;
	size_t size;
	unsigned char *p = map_exec_file(path, &size);
	if (!p)
		_exit(1);
	size_t page = (size_t)sysconf(_SC_PAGESIZE), npages = (size + page - 1) / page;
	sink = (unsigned char)(sink + p[(seed % npages) * page]);
	struct timespec ts = { 0, (long)(1 + seed % 30) * 1000000L };
	nanosleep(&ts, NULL);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: churn RATE SECONDS FILE...\n");
		return 64;
	}
	long rate = strtol(argv[1], NULL, 10), seconds = strtol(argv[2], NULL, 10);
	int nfiles = argc - 3;
	if (rate <= 0 || seconds <= 0)
		return 64;
	signal(SIGCHLD, SIG_IGN);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	long total = rate * seconds, started = 0, failed = 0;
	long step_ns = 1000000000L / rate;
	printf("ready\n");
	fflush(stdout);
	for (long i = 0; i < total; i++) {
		pid_t pid = fork();
		if (pid == 0)
			child(argv[3 + i % nfiles], (unsigned)i * 2654435761u);
		if (pid > 0)
			started++;
		else if (failed++ == 0)
			fprintf(stderr, "fork: %s\n", strerror(errno));
		next.tv_nsec += step_ns;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	printf("done %ld\n", started);
	fflush(stdout);
	return 0;
}
