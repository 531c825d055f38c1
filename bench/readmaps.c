/* Cost benchmark: the floor for a scanner that reads /proc/PID/maps as text. It reads every
 * process's maps file in full (read(2) into one buffer, no parsing beyond counting lines) and
 * reports its own CPU time for it: what any text-only scanner pays before it parses a byte.
 *
 *   readmaps [REPEAT]
 *
 * Prints one line per repetition:
 *   cpu_us=N wall_us=N procs=N lines=N bytes=N
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "benchutil.h"

/* The clock prelockd reports its pass CPU with, so the two compare directly. */
static uint64_t cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static void read_all(char *buf, size_t len, unsigned long *procs, unsigned long *lines,
		     unsigned long *bytes)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	char path[300];

	if (!proc)
		die_errno("/proc");
	while ((de = readdir(proc))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/maps", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone meanwhile */
		ssize_t n;
		while ((n = read(fd, buf, len)) > 0) {
			*bytes += (unsigned long)n;
			for (ssize_t i = 0; i < n; i++)
				*lines += buf[i] == '\n';
		}
		close(fd);
		(*procs)++;
	}
	closedir(proc);
}

int main(int argc, char **argv)
{
	int repeat = argc > 1 ? atoi(argv[1]) : 1;
	size_t len = 1 << 16;
	char *buf = xmalloc(len);

	for (int r = 0; r < repeat; r++) {
		unsigned long procs = 0, lines = 0, bytes = 0;
		uint64_t c0 = cpu_us(), t0 = now_ns();
		read_all(buf, len, &procs, &lines, &bytes);
		uint64_t c1 = cpu_us(), t1 = now_ns();
		printf("cpu_us=%llu wall_us=%llu procs=%lu lines=%lu bytes=%lu\n",
		       (unsigned long long)(c1 - c0), (unsigned long long)((t1 - t0) / 1000), procs,
		       lines, bytes);
	}
	return 0;
}
