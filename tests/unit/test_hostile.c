/* Unit tests for hostile input to the pure parsers, beyond the fixtures of test_config and
 * test_maps (issue 5):
 *
 * - regexes that slip past the complexity estimate: glibc's regcomp() takes seconds and hundreds
 *   of MiB for a nullable expression under stacked '+' ("a*" then 12 '+': 7 s, 900 MiB; with
 *   14: 95 s, 6 GiB) or stacked stars under a count ("x****{1000}": 5 s), all of it locked
 *   memory in the daemon (mlockall). Each is parsed in a child with a time and address-space
 *   limit; the config must be refused, quickly.
 * - the state-file reader (state_parse): a valid file, every way a line can be wrong, numbers
 *   that sscanf() would take but that are no byte counts, and the path escaping it relies on. */
#include "check.h"
#include "config.h"
#include "statefile.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static void quiet(void *userdata, const char *message)
{
	(void)userdata;
	(void)message;
}

/* ASan reserves terabytes of address space: RLIMIT_AS would stop it, not the parser. */
static int under_asan(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return 1;
#endif
#endif
	return getenv("PRELOCKD_SANITIZER") != NULL;
}

/* Parses "[lock]\ninclude = RE" in a child limited to `seconds` and 512 MiB. Returns the
 * child's status: exit 0 when the config was refused, 1 when it was accepted; killed by SIGALRM
 * (or SIGKILL/SEGV at the memory limit) when regcomp() ran away. */
static int parse_limited(const char *re, unsigned seconds, double *elapsed)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fflush(stdout); /* or a child may print the parent's buffered lines again (valgrind does) */
	pid_t pid = fork();
	if (pid == 0) {
		char text[512];
		struct config c;
		struct rlimit rl = { 512ul << 20, 512ul << 20 };
		if (!under_asan())
			setrlimit(RLIMIT_AS, &rl);
		alarm(seconds);
		snprintf(text, sizeof(text), "[lock]\ninclude = %s\n", re);
		int r = config_load_buf("t.conf", text, strlen(text), &c, quiet, NULL);
		if (r == 0)
			config_free(&c);
		_exit(r == 0 ? 1 : 0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return status;
}

static void test_regex_blowup(void)
{
	static const char *const bad[] = {
		"a*++++++++++++",
		"a?++++++++++++",
		"(a|b*)++++++++++++",
		"((((((((((((a*)+)+)+)+)+)+)+)+)+)+)+)+",
		/* found by fuzz_config (minimized): the continuation line of an include */
		"xx= ++*+++++++++++ult",
		/* found by fuzz_config after the first fix: glibc does not fold 'a**' into 'a*', so
		 * stacked stars under a count are nested closures, each copied (85 s as found) */
		"^/x***************{1000}******lock]",
		"x****{1000}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double s;
		int st = parse_limited(bad[i], 2, &s);
		/* Was a bug: regex_cost() underestimated stacked repetition operators: a nullable
		 * body under '+', or nested stars under a count, makes glibc's epsilon closures
		 * blow up far beyond the copies it counted. */
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "'%s' is refused as too complex (%s after %.1f s)", bad[i],
		      WIFSIGNALED(st)   ? strsignal(WTERMSIG(st))
		      : WEXITSTATUS(st) ? "accepted"
					: "refused",
		      s);
	}
	/* What real configs use stays accepted, and fast. */
	static const char *const good[] = {
		"^/(usr|bin|sbin|lib[^/]*|opt)/",
		"^/usr/lib/(x86_64-linux-gnu/)?lib(c|m|pthread)\\.so.*$",
		"^/opt/[^/]+/bin/.+",
		"(a+)+",
	};
	/* Sanitizers and valgrind run many times slower. */
	double quick = getenv("PRELOCKD_SANITIZER") ? 10.0 : 1.0;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		double s;
		int st = parse_limited(good[i], (unsigned)quick * 3, &s);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && s < quick,
		      "'%s' is accepted in %.2f s", good[i], s);
	}
}

/* ---- state_parse ---- */

static int parse_state(const char *text, struct saved_file **v, uint32_t *n)
{
	char *copy = strdup(text);
	if (!copy)
		abort();
	int r = state_parse(copy, PAGE, v, n);
	free(copy);
	return r;
}

static void test_state_valid(void)
{
	struct saved_file *v;
	uint32_t n;
	int r = parse_state("prelockd-state 1\n"
			    "F 2049 131 8192 1700000000000000000 /usr/lib/libc.so.6\n"
			    "R 0 4096\nR 8192 4096\n"
			    "F 1 2 3 4 /var/tmp/a%20b%0Ac%25.so\n"
			    "R 4096 16384\n"
			    "end 2\n",
			    &v, &n);
	CHECK_U64(r, 0, "a valid state parses");
	CHECK_U64(n, 2, "two files");
	if (r == 0 && n == 2) {
		CHECK_U64(v[0].dev, 2049, "dev");
		CHECK_U64(v[0].ino, 131, "inode");
		CHECK_U64(v[0].size, 8192, "size");
		CHECK_U64(v[0].mtime_ns, 1700000000000000000ull, "mtime");
		CHECK_STR(v[0].path, "/usr/lib/libc.so.6", "path");
		CHECK_U64(v[0].nranges, 2, "two ranges");
		CHECK_U64(v[0].ranges[1].off, 8192, "second range offset");
		CHECK(strcmp(v[1].path, "/var/tmp/a b\nc%.so") == 0, "an escaped path is decoded");
		CHECK_U64(v[1].ranges[0].len, 16384, "range length");
	}
	if (r == 0)
		saved_free(v, n);
	r = parse_state("prelockd-state 1\nend 0\n", &v, &n);
	CHECK(r == 0 && n == 0, "a state with no file parses (r %d, n %u)", r, n);
	r = parse_state("prelockd-state 1\nF 1 2 3 4 /x\nR 0 4096\nend 1", &v, &n);
	CHECK(r == 0 && n == 1, "the last newline is optional (r %d, n %u)", r, n);
	if (r == 0)
		saved_free(v, n);
}

static void test_state_refused(void)
{
	static const struct {
		const char *text, *why;
		int line;
	} bad[] = {
		{ "", "an empty file", 1 },
		{ "prelockd-state 2\nF 1 2 3 4 /x\n", "another version", 1 },
		{ "root:x:0:0:root:/root:/bin/bash\n", "a foreign file", 1 },
		{ "prelockd-state 1\nR 0 4096\n", "a range before any file", 2 },
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR 1 4096\n", "an unaligned offset", 3 },
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR 0 100\n", "an unaligned length", 3 },
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR 0 0\n", "an empty range", 3 },
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR 18446744073709547520 8192\n",
		  "a range that wraps", 3 },
		{ "prelockd-state 1\nF 1 2 3 4 relative\n", "a relative path", 2 },
		{ "prelockd-state 1\nF 1 2 3 4 /bad%zz\n", "a bad escape", 2 },
		{ "prelockd-state 1\nF 1 2 3 4 /nul%00x\n", "an escaped NUL", 2 },
		{ "prelockd-state 1\nF 1 2 3\n", "a short F line", 2 },
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR 0 4096 junk\n", "trailing junk on R", 3 },
		{ "prelockd-state 1\nX 1\n", "an unknown line", 2 },
		/* sscanf("%" SCNu64) takes a sign: "-4096" would become 2^64 - 4096, a range of
		 * 16 EiB, and "F -1 ..." a device number nobody has (was a bug). */
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR 0 -4096\n", "a negative length", 3 },
		{ "prelockd-state 1\nF -1 2 3 4 /x\n", "a negative device", 2 },
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR +0 4096\n", "a '+' sign", 3 },
		/* Cut short (a damaged disk, a copy that stopped): at a line's end or inside one. */
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR 0 4096\n", "a file cut at a line's end", 4 },
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR 0 40", "a file cut inside a line", 3 },
		{ "prelockd-state 1\n", "a file of the header alone", 2 },
		{ "prelockd-state 1\nF 1 2 3 4 /x\nR 0 4096\nend 2\n", "an end line that counts "
		  "other files", 4 },
		{ "prelockd-state 1\nend 0\nF 1 2 3 4 /x\nend 1\n", "a line after the end line", 3 },
		{ "prelockd-state 1\nend x\n", "a bad end line", 2 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct saved_file *v = (struct saved_file *)1;
		uint32_t n = 99;
		int r = parse_state(bad[i].text, &v, &n);
		CHECK(r == bad[i].line && v == NULL && n == 0,
		      "%s is refused whole at line %d (got %d, %u files)", bad[i].why, bad[i].line,
		      r, n);
		if (r == 0)
			saved_free(v, n);
	}
}

static void test_escape_round_trip(void)
{
	char all[256];
	for (int i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	char *e = escape_path(all);
	CHECK(e != NULL, "escape_path of every byte");
	if (!e)
		return;
	int oneline = 1;
	for (const char *p = e; *p; p++)
		oneline &= (unsigned char)*p >= 0x20 && *p != 0x7f;
	CHECK(oneline, "no control byte survives escaping");
	CHECK(unescape_path(e) == 0 && strcmp(e, all) == 0, "unescape_path restores every byte");
	free(e);
}

int main(void)
{
	test_regex_blowup();
	test_state_valid();
	test_state_refused();
	test_escape_round_trip();
	return check_done();
}
