/* Benchmark population: a process that maps `count` files chosen from DIR/lib0000.so ... (each
 * as a program maps a shared library: a read-only head, an executable text part, a read-only
 * and a writable tail), touches part of their text, and waits. With --procs N it forks N such
 * processes, each with its own choice, and waits for SIGTERM.
 *
 *   population DIR NFILES COUNT PROCS SEED
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void map_one(const char *path, unsigned seed)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	size_t page = 4096, n = (size_t)st.st_size / page;
	if (n < 4) {
		close(fd);
		return;
	}
	/* head r--, text r-x, rodata r--, data rw- private: the shape of a shared library */
	size_t h = 1, t = n / 2, r = (n - h - t) / 2, w = n - h - t - r;
	mmap(NULL, h * page, PROT_READ, MAP_PRIVATE, fd, 0);
	volatile unsigned char *x = mmap(NULL, t * page, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd,
					 (off_t)(h * page));
	if (r)
		mmap(NULL, r * page, PROT_READ, MAP_PRIVATE, fd, (off_t)((h + t) * page));
	if (w)
		mmap(NULL, w * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, (off_t)((h + t + r) * page));
	close(fd);
	if (x != MAP_FAILED) {
		unsigned char sink = 0;
		size_t first = (seed % 4) * t / 8, last = first + t / 4 + 1;
		for (size_t i = first; i < last && i < t; i++)
			sink = (unsigned char)(sink + x[i * page]);
		(void)sink;
	}
}

static void child(const char *dir, unsigned nfiles, unsigned count, unsigned seed)
{
	char path[4096];
	for (unsigned i = 0; i < count; i++) {
		unsigned k = (unsigned)rand_r(&seed) % nfiles;
		snprintf(path, sizeof(path), "%s/lib%04u.so", dir, k);
		map_one(path, seed);
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: population DIR NFILES COUNT PROCS SEED\n");
		return 64;
	}
	unsigned nfiles = (unsigned)atoi(argv[2]), count = (unsigned)atoi(argv[3]);
	unsigned procs = (unsigned)atoi(argv[4]), seed = (unsigned)atoi(argv[5]);
	setvbuf(stdout, NULL, _IONBF, 0);
	for (unsigned p = 0; p < procs; p++) {
		pid_t pid = fork();
		if (pid == 0)
			child(argv[1], nfiles, count, seed + p * 7919);
	}
	signal(SIGTERM, SIG_DFL);
	for (;;)
		pause();
}
