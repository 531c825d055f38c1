/* Cost benchmark: a population of processes that use shared libraries as programs do. The parent
 * forks PROCS children; each dlopen()s LIBS_PER_PROC of the NLIBS generated libraries
 * DIR/libNNNN.so (real ELF shared objects: r-- headers, r-x text, r-- rodata, rw- data, bss),
 * calls into each and reads a contiguous quarter of its text, as a program runs its hot code.
 * Then the children idle. After SIGUSR1 to the parent (until SIGUSR2), every BUSY_EVERY-th child
 * is busy instead: it faults in a fresh page every 200 ms, as active programs do, so that a
 * rescan cannot skip every process as unchanged.
 *
 *   population [-b BUSY_EVERY] DIR NLIBS PROCS LIBS_PER_PROC SEED
 *
 * Which libraries a child opens: the first CORE ones (libc and friends: every process has them),
 * a few chosen so that every library has at least one user, and the rest drawn from a Zipf
 * distribution (a few libraries are popular, most have few users). The parent prints "ready N"
 * once all N children have opened theirs, then waits for SIGTERM; children die with it.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"

enum { CORE = 10, COVER = 3 };

struct plan {
	unsigned nlibs, procs, per_proc;
	double *cdf; /* Zipf over the libraries after the core ones */
};

static void plan_init(struct plan *p)
{
	unsigned n = p->nlibs - CORE;
	double sum = 0;
	p->cdf = xmalloc(n * sizeof(*p->cdf));
	for (unsigned k = 0; k < n; k++)
		p->cdf[k] = sum += 1.0 / (k + 1);
	for (unsigned k = 0; k < n; k++)
		p->cdf[k] /= sum;
}

static unsigned zipf_draw(const struct plan *p, unsigned *seed)
{
	double u = (double)rand_r(seed) / ((double)RAND_MAX + 1);
	unsigned lo = 0, hi = p->nlibs - CORE - 1;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (p->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return CORE + lo;
}

/* Reads a contiguous quarter of the library's text, at one of four places. */
static unsigned touch_text(void *h, unsigned seed)
{
	const unsigned char *text = dlsym(h, "bench_text");
	const unsigned long *size = dlsym(h, "bench_text_size");
	void (*fn)(void) = (void (*)(void))(uintptr_t)text;
	unsigned sum = 0;

	if (!text || !size)
		die("library without bench_text: %s", dlerror());
	fn();
	size_t pages = *size / PAGE, first = (seed % 4) * pages / 4, last = first + pages / 4 + 1;
	for (size_t i = first; i < last && i < pages; i++)
		sum += text[i * PAGE + 1];
	return sum;
}

/* Shared with the children: set while they are to be busy. */
static volatile sig_atomic_t *busy_flag;

static void __attribute__((noreturn))
child(const struct plan *p, const char *dir, unsigned idx, unsigned seed, bool busy, int ready_fd)
{
	unsigned char *used = xmalloc(p->nlibs);
	unsigned n = 0, sink = 0;
	char path[4096];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (unsigned k = 0; k < CORE; k++)
		used[k] = 1;
	for (unsigned j = 0; j < COVER; j++)
		used[CORE + (idx * COVER + j) % (p->nlibs - CORE)] = 1;
	for (unsigned k = 0; k < p->nlibs; k++)
		n += used[k];
	for (unsigned tries = 0; n < p->per_proc && tries < 100 * p->per_proc; tries++) {
		unsigned k = zipf_draw(p, &seed);
		if (!used[k]) {
			used[k] = 1;
			n++;
		}
	}
	for (unsigned k = 0; k < p->nlibs; k++) {
		if (!used[k])
			continue;
		snprintf(path, sizeof(path), "%s/lib%04u.so", dir, k);
		void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!h)
			die("dlopen: %s", dlerror());
		sink += touch_text(h, seed + k);
	}
	if (write(ready_fd, "x", 1) != 1)
		die_errno("ready pipe");
	close(ready_fd);
	for (;;) {
		if (!busy) {
			pause();
			continue;
		}
		usleep(200000);
		if (!*busy_flag)
			continue;
		unsigned char *page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page != MAP_FAILED) {
			page[0] = (unsigned char)sink++;
			munmap(page, PAGE);
		}
	}
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	if (sig == SIGUSR1 || sig == SIGUSR2)
		*busy_flag = sig == SIGUSR1;
	else
		stop = 1;
}

int main(int argc, char **argv)
{
	unsigned busy_every = 0;
	int opt, pipefd[2];

	while ((opt = getopt(argc, argv, "b:")) != -1) {
		if (opt != 'b')
			die("usage: population [-b BUSY_EVERY] DIR NLIBS PROCS LIBS_PER_PROC SEED");
		busy_every = (unsigned)atoi(optarg);
	}
	if (argc - optind != 5)
		die("usage: population [-b BUSY_EVERY] DIR NLIBS PROCS LIBS_PER_PROC SEED");
	const char *dir = argv[optind];
	struct plan p = { .nlibs = (unsigned)atoi(argv[optind + 1]),
			  .procs = (unsigned)atoi(argv[optind + 2]),
			  .per_proc = (unsigned)atoi(argv[optind + 3]) };
	unsigned seed = (unsigned)atoi(argv[optind + 4]);
	if (p.nlibs <= CORE + COVER || p.per_proc > p.nlibs)
		die("need more than %d libraries, and at most NLIBS per process", CORE + COVER);
	plan_init(&p);
	setvbuf(stdout, NULL, _IONBF, 0);
	busy_flag = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (busy_flag == MAP_FAILED)
		die_errno("mmap");
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGUSR1, on_signal);
	signal(SIGUSR2, on_signal);
	if (pipe(pipefd) < 0)
		die_errno("pipe");

	pid_t *pids = xmalloc(p.procs * sizeof(*pids));
	for (unsigned i = 0; i < p.procs; i++) {
		pid_t pid = pids[i] = fork();
		if (pid < 0)
			die_errno("fork");
		if (pid == 0) {
			close(pipefd[0]);
			signal(SIGTERM, SIG_DFL);
			signal(SIGUSR1, SIG_DFL);
			signal(SIGUSR2, SIG_DFL);
			child(&p, dir, i, seed + i * 7919, busy_every && i % busy_every == 0,
			      pipefd[1]);
		}
	}
	close(pipefd[1]);
	unsigned ready = 0;
	char c;
	while (ready < p.procs && read(pipefd[0], &c, 1) == 1)
		ready++;
	if (ready < p.procs)
		die("only %u of %u children got ready", ready, p.procs);
	printf("ready %u\n", ready);
	while (!stop)
		pause();
	for (unsigned i = 0; i < p.procs; i++)
		kill(pids[i], SIGTERM);
	while (wait(NULL) > 0)
		;
	return 0;
}
