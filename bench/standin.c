/* Pressure benchmark: the interactive stand-in. It maps a big executable file read+exec, as a
 * program maps its code, and every PERIOD runs a "round": it calls into each page of its working
 * set (every page of the file starts with a `ret`), as a program runs its hot code. Each round's
 * latency and major faults are recorded and written as CSV when it stops (SIGTERM or DURATION).
 *
 *   standin [-g CGROUP_PROCS_FILE] [-p PERIOD_MS] [-d DURATION_S] [-w WARM_ROUNDS]
 *           FILE WORKING_SET
 *
 * WORKING_SET is a list of OFFSET:LENGTH chunks of the file in MiB, e.g. "4:4,20:4,36:4,52:4".
 * With -g it first moves itself into that cgroup, so that the pages it faults in are charged
 * there. On stdout it prints "resident N" (pages of the file cached before the first round:
 * should be 0, the bench evicts the file first), then one line per round:
 *
 *   r START_NS LATENCY_NS MAJFLT MINFLT      (CLOCK_MONOTONIC; faults during the round)
 *
 * and "ready" after WARM_ROUNDS rounds. Each round is written as it ends, outside the timed part,
 * to a pipe rather than a file: a file's page cache would be charged to the cgroup under test,
 * and the rounds so far survive if the OOM killer picks the stand-in.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

struct chunk {
	size_t first_page, npages;
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static size_t parse_working_set(const char *spec, struct chunk *c, size_t max, size_t file_pages)
{
	const size_t pages_per_mib = (1u << 20) / PAGE;
	size_t n = 0;
	const char *p = spec;

	while (*p && n < max) {
		char *end;
		unsigned long off = strtoul(p, &end, 10), len;
		if (*end != ':')
			die("bad working set '%s': want OFFSET:LENGTH[,...] in MiB", spec);
		len = strtoul(end + 1, &end, 10);
		c[n].first_page = off * pages_per_mib;
		c[n].npages = len * pages_per_mib;
		if (!len || c[n].first_page + c[n].npages > file_pages)
			die("working set chunk %lu:%lu is empty or past the end of the file", off,
			    len);
		n++;
		p = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			die("bad working set '%s'", spec);
	}
	return n;
}

static size_t resident_pages(void *base, size_t npages)
{
	unsigned char *vec = xmalloc(npages);
	size_t n = 0;
	if (mincore(base, npages * PAGE, vec) < 0)
		die_errno("mincore");
	for (size_t i = 0; i < npages; i++)
		n += vec[i] & 1;
	free(vec);
	return n;
}

/* One round: call the `ret` at the start of every page of the working set. */
static void run_round(unsigned char *base, const struct chunk *c, size_t nchunks)
{
	for (size_t k = 0; k < nchunks; k++)
		for (size_t i = 0; i < c[k].npages; i++) {
			void (*fn)(void) = (void (*)(void))(base + (c[k].first_page + i) * PAGE);
			fn();
		}
}

static void faults(uint64_t *maj, uint64_t *min)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*maj = (uint64_t)ru.ru_majflt;
	*min = (uint64_t)ru.ru_minflt;
}

int main(int argc, char **argv)
{
	const char *cgroup = NULL;
	unsigned period_ms = 20, duration_s = 60, warm_rounds = 5;
	struct chunk chunks[64];
	int opt;

	while ((opt = getopt(argc, argv, "g:p:d:w:")) != -1) {
		switch (opt) {
		case 'g': cgroup = optarg; break;
		case 'p': period_ms = (unsigned)atoi(optarg); break;
		case 'd': duration_s = (unsigned)atoi(optarg); break;
		case 'w': warm_rounds = (unsigned)atoi(optarg); break;
		default: die("usage: standin [-g CGROUP_PROCS] [-p MS] [-d S] [-w N] FILE WS");
		}
	}
	if (argc - optind != 2)
		die("usage: standin [-g CGROUP_PROCS] [-p MS] [-d S] [-w N] FILE WS");
	const char *path = argv[optind];
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if (cgroup)
		join_cgroup(cgroup);

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die_errno("%s", path);
	size_t file_pages = (size_t)st.st_size / PAGE;
	size_t nchunks = parse_working_set(argv[optind + 1], chunks, 64, file_pages);
	unsigned char *base =
		mmap(NULL, file_pages * PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	if (base == MAP_FAILED)
		die_errno("mmap %s", path);
	close(fd);
	printf("resident %zu\n", resident_pages(base, file_pages));

	size_t max_rounds = (size_t)duration_s * 1000 / period_ms + 1, n = 0;
	uint64_t next = now_ns(), maj0, min0, maj1, min1;
	faults(&maj0, &min0);
	while (!stop && n < max_rounds) {
		uint64_t t0 = now_ns();
		run_round(base, chunks, nchunks);
		uint64_t t1 = now_ns();
		faults(&maj1, &min1);
		printf("r %llu %llu %llu %llu\n", (unsigned long long)t0,
		       (unsigned long long)(t1 - t0), (unsigned long long)(maj1 - maj0),
		       (unsigned long long)(min1 - min0));
		maj0 = maj1;
		min0 = min1;
		if (++n == warm_rounds)
			printf("ready\n");
		/* A late round does not cause a burst of catch-up rounds: the next one starts a
		 * period after this one was due, or now if that has passed. */
		next += (uint64_t)period_ms * 1000000;
		if (next < t1)
			next = t1;
		sleep_until_ns(next);
	}
	return 0;
}
