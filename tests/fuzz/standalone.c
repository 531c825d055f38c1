/* A main() for the fuzz targets where libFuzzer is not at hand (gcc builds, valgrind): runs the
 * target once on every file named on the command line, or in every directory named. `make check`
 * uses it to replay the committed corpora, so a crash the fuzzer once found stays fixed. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, n;
	do {
		if (cap - len < 65536) {
			unsigned char *nb = realloc(buf, cap + 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned files = 0, failed = 0;
#ifdef FUZZ_CORPUS
	/* Without arguments: the committed corpus this binary was built for. */
	char *corpus[] = { argv[0], (char *)FUZZ_CORPUS, NULL };
	if (argc == 1) {
		argc = 2;
		argv = corpus;
	}
#endif

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			failed++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed += run_file(argv[i]) < 0;
			files++;
			continue;
		}
		DIR *dir = opendir(argv[i]);
		struct dirent *de;
		while (dir && (de = readdir(dir))) {
			char path[4096];
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			failed += run_file(path) < 0;
			files++;
		}
		if (dir)
			closedir(dir);
	}
	/* TAP, so tests/run-tests counts it like any test. */
	printf("%s 1 - %u inputs replayed\n1..1\n", failed ? "not ok" : "ok", files);
	return failed ? 1 : 0;
}
