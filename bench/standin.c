/* Pressure benchmark: the synthetic interactive stand-in. It maps the first CODE_MIB of a big file
 * read+exec, as a program maps its code, and the rest read-only and not executable, as a program
 * maps its .rodata (or ICU tables, fonts, a V8 snapshot). Every PERIOD it runs a "round": it calls
 * into each page of its code working set (every page of the code part starts with a `ret`), as a
 * program runs its hot code, and reads a word of each page of its data working set, as a program
 * reads its tables. Each round's latency and major faults are written to stdout as it ends.
 *
 *   standin [-g CGROUP_PROCS_FILE] [-p PERIOD_MS] [-d DURATION_S] [-w WARM_ROUNDS]
 *           [-c CODE_MIB] FILE CODE_WORKING_SET [DATA_WORKING_SET]
 *
 * A working set is a list of OFFSET:LENGTH chunks in MiB, e.g. "4:4,20:4,36:4,52:4": offsets into
 * the code part, and for DATA_WORKING_SET into the data part (which starts at CODE_MIB). Without
 * -c the whole file is code and there is no data part.
 * With -g it first moves itself into that cgroup, so that the pages it faults in are charged
 * there. On stdout it prints "resident CODE DATA" (pages of each part cached before the first
 * round: should be 0, the bench evicts the file first), then one line per round:
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

struct part {
	unsigned char *base;
	size_t npages;
	struct chunk chunks[64];
	size_t nchunks;
};

#define USAGE \
	"usage: standin [-g CGROUP_PROCS] [-p MS] [-d S] [-w N] [-c CODE_MIB] FILE CODE_WS [DATA_WS]"

static volatile sig_atomic_t stop;
volatile uint64_t data_sink; /* global, so that the compiler keeps the reads that feed it */

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

/* One round: call the `ret` at the start of every page of the code working set, then read one
 * word of every page of the data working set. The sum goes to a volatile so that the reads stay. */
static void run_round(const struct part *code, const struct part *data)
{
	uint64_t sum = 0;

	for (size_t k = 0; k < code->nchunks; k++) {
		const unsigned char *p = code->base + code->chunks[k].first_page * PAGE;
		for (size_t i = 0; i < code->chunks[k].npages; i++, p += PAGE)
			((void (*)(void))p)();
	}
	for (size_t k = 0; k < data->nchunks; k++) {
		const unsigned char *p = data->base + data->chunks[k].first_page * PAGE;
		for (size_t i = 0; i < data->chunks[k].npages; i++, p += PAGE)
			sum += *(const volatile uint64_t *)(const void *)p;
	}
	data_sink = sum;
}

/* Maps NPAGES of the file from page FIRST_PAGE with PROT, or returns an empty part for 0 pages. */
static void map_part(struct part *p, int fd, size_t first_page, size_t npages, int prot,
		     const char *path)
{
	p->npages = npages;
	if (!npages)
		return;
	p->base = mmap(NULL, npages * PAGE, prot, MAP_PRIVATE, fd, (off_t)(first_page * PAGE));
	if (p->base == MAP_FAILED)
		die_errno("mmap %s", path);
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
	size_t code_mib = 0;
	struct part code = { 0 }, data = { 0 };
	int opt;

	while ((opt = getopt(argc, argv, "g:p:d:w:c:")) != -1) {
		switch (opt) {
		case 'g': cgroup = optarg; break;
		case 'p': period_ms = (unsigned)atoi(optarg); break;
		case 'd': duration_s = (unsigned)atoi(optarg); break;
		case 'w': warm_rounds = (unsigned)atoi(optarg); break;
		case 'c': code_mib = (size_t)atoi(optarg); break;
		default: die("%s", USAGE);
		}
	}
	if (argc - optind != 2 && argc - optind != 3)
		die("%s", USAGE);
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
	size_t code_pages = code_mib ? code_mib * ((1u << 20) / PAGE) : file_pages;
	if (code_pages > file_pages)
		die("-c %zu: the file has only %zu MiB", code_mib, file_pages * PAGE >> 20);
	if (argc - optind == 3 && code_pages == file_pages)
		die("a data working set needs a data part: -c CODE_MIB below the file's size");
	/* Two mappings of one file, as the loader makes of an ELF object's text and rodata. */
	map_part(&code, fd, 0, code_pages, PROT_READ | PROT_EXEC, path);
	map_part(&data, fd, code_pages, file_pages - code_pages, PROT_READ, path);
	close(fd);
	code.nchunks = parse_working_set(argv[optind + 1], code.chunks, 64, code.npages);
	if (argc - optind == 3)
		data.nchunks = parse_working_set(argv[optind + 2], data.chunks, 64, data.npages);
	printf("resident %zu %zu\n", resident_pages(code.base, code.npages),
	       data.npages ? resident_pages(data.base, data.npages) : 0);

	size_t max_rounds = (size_t)duration_s * 1000 / period_ms + 1, n = 0;
	uint64_t next = now_ns(), maj0, min0, maj1, min1;
	faults(&maj0, &min0);
	while (!stop && n < max_rounds) {
		uint64_t t0 = now_ns();
		run_round(&code, &data);
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
