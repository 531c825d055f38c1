/* Pressure benchmark: the memory hog. Every PERIOD it maps STEP MiB more anonymous memory (up to
 * MAX MiB), writes every new page, and then writes one byte in every page it holds, so that all
 * of it stays in use. Without swap none of it can be reclaimed: what the cgroup needs for it
 * comes out of the page cache charged there, until the OOM killer ends it.
 *
 *   hog [-g CGROUP_PROCS_FILE] [-o OOM_SCORE_ADJ] STEP_MIB PERIOD_MS MAX_MIB
 *
 * The bench gives it -o 1000: it is the leak, and it should be the OOM killer's choice even when
 * it is still smaller than the stand-in (whose locked, mapped file pages count in its badness).
 *
 * Prints "start NS" (CLOCK_MONOTONIC) before the first allocation and "NS MIB" after each step
 * (MiB held), so that its owner knows how far it got when it was killed.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "benchutil.h"

int main(int argc, char **argv)
{
	const char *cgroup = NULL, *oom_adj = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "g:o:")) != -1) {
		switch (opt) {
		case 'g': cgroup = optarg; break;
		case 'o': oom_adj = optarg; break;
		default:
			die("usage: hog [-g CGROUP_PROCS] [-o OOM_SCORE_ADJ] STEP_MIB PERIOD_MS MAX_MIB");
		}
	}
	if (argc - optind != 3)
		die("usage: hog [-g CGROUP_PROCS] [-o OOM_SCORE_ADJ] STEP_MIB PERIOD_MS MAX_MIB");
	size_t step = (size_t)atoi(argv[optind]) << 20;
	uint64_t period_ns = (uint64_t)atoi(argv[optind + 1]) * 1000000;
	size_t max = (size_t)atoi(argv[optind + 2]) << 20;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (cgroup)
		join_cgroup(cgroup);
	if (oom_adj) {
		FILE *f = fopen("/proc/self/oom_score_adj", "w");
		if (!f || fprintf(f, "%s\n", oom_adj) < 0 || fclose(f) != 0)
			die_errno("cannot set oom_score_adj");
	}

	/* One reservation, filled step by step: the hog's memory is one mapping. */
	unsigned char *mem = mmap(NULL, max, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die_errno("mmap %zu MiB", max >> 20);
	/* Huge pages would make the hog grow in 2 MiB bites and skew the timing: keep it 4 KiB. */
	madvise(mem, max, MADV_NOHUGEPAGE);

	size_t held = 0;
	uint64_t next = now_ns();
	printf("start %llu\n", (unsigned long long)next);
	for (unsigned gen = 1;; gen++) {
		if (held < max) {
			size_t grow = held + step <= max ? step : max - held;
			for (size_t i = 0; i < grow; i += PAGE)
				mem[held + i] = (unsigned char)gen;
			held += grow;
			printf("%llu %zu\n", (unsigned long long)now_ns(), held >> 20);
		}
		for (size_t i = 0; i < held; i += PAGE)
			mem[i] = (unsigned char)gen;
		next += period_ns;
		sleep_until_ns(next);
	}
}
