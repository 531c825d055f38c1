/* Memory pressure: the pressure file's parser, the growth rule the fallback applies, reading a
 * file through psi_open()/psi_poll_read() (a fixture in a temporary directory, so no trigger),
 * and the episode logic with time as a parameter. */
#include "check.h"
#include "psi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define S(text) text, sizeof(text) - 1

/* As 6.18 writes /proc/pressure/memory, captured on this machine during a hog's run. */
static const char kernel_text[] = "some avg10=0.99 avg60=0.41 avg300=0.09 total=334074\n"
				  "full avg10=0.93 avg60=0.38 avg300=0.09 total=301699\n";

static void test_parse_good(void)
{
	struct psi_sample s;

	CHECK(psi_parse(S(kernel_text), &s) == 0, "kernel text parses");
	CHECK(s.has_some && s.has_full, "both lines found");
	CHECK_U64(s.some.avg10, 99, "some avg10 in hundredths");
	CHECK_U64(s.some.avg60, 41, "some avg60");
	CHECK_U64(s.some.avg300, 9, "some avg300");
	CHECK_U64(s.some.total_usec, 334074, "some total");
	CHECK_U64(s.full.avg10, 93, "full avg10");
	CHECK_U64(s.full.total_usec, 301699, "full total");

	/* /proc/pressure/cpu before 5.13 had no "full" line; a "some" line alone is enough. */
	CHECK(psi_parse(S("some avg10=100.00 avg60=5.50 avg300=0.00 total=18446744073709551615\n"),
			&s) == 0 &&
		      !s.has_full,
	      "some only");
	CHECK_U64(s.some.avg10, 10000, "100.00 %");
	CHECK_U64(s.some.total_usec, UINT64_MAX, "total at 2^64-1");

	CHECK(psi_parse(S("some avg10=1.5 avg60=7 avg300=0.00 total=1"), &s) == 0,
	      "no final newline; one decimal; none");
	CHECK_U64(s.some.avg10, 150, "1.5 is 150");
	CHECK_U64(s.some.avg60, 700, "7 is 700");

	/* "full" first, and a malformed "full" line: the "some" line still counts. */
	CHECK(psi_parse(S("full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"
			  "some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"),
			&s) == 0 &&
		      s.has_full && s.full.total_usec == 5 && s.some.total_usec == 7,
	      "full line before some");
	CHECK(psi_parse(S("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\nfull avg10=x\n"), &s) ==
			      0 &&
		      !s.has_full && s.some.total_usec == 7,
	      "malformed full line ignored");
	CHECK(psi_parse(S("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\nother line\n\n"), &s) ==
		      0,
	      "unknown lines and empty lines ignored");
}

static void test_parse_bad(void)
{
	static const struct {
		const char *text, *name;
	} bad[] = {
		{ "", "empty file" },
		{ "\n", "just a newline" },
		{ "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", "full line only" },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00\n", "no total" },
		{ "some avg10=0.00 avg60=0.00 total=5\n", "a field missing" },
		{ "some avg60=0.00 avg10=0.00 avg300=0.00 total=5\n", "fields out of order" },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=\n", "empty total" },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=-5\n", "negative total" },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551616\n",
		  "total past 2^64" },
		{ "some avg10=0.001 avg60=0.00 avg300=0.00 total=5\n", "three decimals" },
		{ "some avg10=.50 avg60=0.00 avg300=0.00 total=5\n", "no whole part" },
		{ "some avg10=1. avg60=0.00 avg300=0.00 total=5\n", "no decimals after the dot" },
		{ "some avg10=99999999.00 avg60=0.00 avg300=0.00 total=5\n",
		  "average past 32 bits" },
		{ "some  avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", "two spaces" },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=5 \n", "trailing space" },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=5 new=1\n", "an unknown field" },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=5x\n", "junk after the total" },
		{ "something avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
		  "some as part of a word" },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\r\n", "CRLF" },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"
		  "some avg10=0.00 avg60=0.00 avg300=0.00 total=6\n",
		  "two some lines" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct psi_sample s = { .has_some = true, .has_full = true };
		int r = psi_parse(bad[i].text, strlen(bad[i].text), &s);
		CHECK(r == -EINVAL && !s.has_some && !s.has_full, "refused: %s", bad[i].name);
	}

	/* A NUL inside the text, and a length that cuts the line short. */
	struct psi_sample s;
	static const char with_nul[] = "some avg10=0.00 avg60=0.00\0avg300=0.00 total=5\n";
	CHECK(psi_parse(with_nul, sizeof(with_nul) - 1, &s) == -EINVAL, "refused: NUL inside");
	CHECK(psi_parse(kernel_text, 30, &s) == -EINVAL, "refused: text cut inside the some line");
	/* Cut inside the full line: the some line is whole, the full one is dropped. */
	CHECK(psi_parse(kernel_text, 70, &s) == 0 && !s.has_full, "cut inside the full line");
}

static void test_growth(void)
{
	const uint64_t T = 50000, W = 2000000;

	CHECK(!psi_growth_exceeds(50000, 2000000, T, W), "exactly the threshold in a window: no");
	CHECK(psi_growth_exceeds(50001, 2000000, T, W), "just over in a window: yes");
	CHECK(!psi_growth_exceeds(25000, 1000000, T, W), "half a window: half the threshold, no");
	CHECK(psi_growth_exceeds(25001, 1000000, T, W), "half a window: just over half, yes");
	CHECK(psi_growth_exceeds(60000, 10000000, T, W),
	      "a gap of five windows: the threshold stays whole (a burst is not diluted)");
	CHECK(!psi_growth_exceeds(0, 1000000, T, W), "no growth: no");
	CHECK(psi_growth_exceeds(1, 0, T, W), "no time between reads: any growth counts");
	CHECK(!psi_growth_exceeds(UINT64_MAX - 1, UINT64_MAX, UINT64_MAX, UINT64_MAX),
	      "no overflow with huge numbers");
}

static char dir[] = "/tmp/prelockd-psi-XXXXXX";

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_files(void)
{
	char path[256];
	struct psi p;
	struct psi_sample s;

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/memory", dir);

	CHECK(psi_open(&p, path, 0, 2000000) == -EINVAL, "threshold 0 refused");
	CHECK(psi_open(&p, path, 3000000, 2000000) == -EINVAL, "threshold over the window refused");

	CHECK(psi_open(&p, path, 50000, 2000000) == PSI_NONE && p.fd == -1, "missing file: none");
	CHECK(p.open_error == -ENOENT, "missing file: open_error ENOENT (%d)", p.open_error);

	put(path, "");
	CHECK(psi_open(&p, path, 50000, 2000000) == PSI_NONE, "empty file: none");
	CHECK(p.open_error == -EINVAL, "empty file: open_error EINVAL (%d)", p.open_error);
	CHECK(psi_open(&p, dir, 50000, 2000000) == PSI_NONE, "a directory: none");

	put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n");
	CHECK(psi_open(&p, path, 50000, 2000000) == PSI_POLL && p.fd >= 0,
	      "a file that is not the kernel's: poll, never a trigger");
	CHECK(p.trigger_error == -EOPNOTSUPP, "no trigger on a plain file (%d)", p.trigger_error);
	CHECK(p.have_last && p.last_total_usec == 1000, "the open sets the base");

	/* Reads one second apart: more than 25 ms of stall per second is pressure. */
	p.last_read_usec = 10000000;
	put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=26000\n");
	CHECK(psi_poll_read(&p, 11000000, &s) == 0 && s.some.total_usec == 26000,
	      "25 ms in 1 s: not pressure");
	put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=51001\n");
	CHECK(psi_poll_read(&p, 12000000, NULL) == 1, "25.001 ms in 1 s: pressure");
	put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=51001\n"
		  "full avg10=0.00 avg60=0.00 avg300=0.00 total=51001\n");
	CHECK(psi_poll_read(&p, 13000000, NULL) == 0, "no growth: no pressure");
	put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n");
	CHECK(psi_poll_read(&p, 14000000, NULL) == 0 && p.last_total_usec == 5,
	      "a total that went down: a new base, not pressure");
	put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=400000\n");
	CHECK(psi_poll_read(&p, 14000000, NULL) == 1, "a read at the same instant: growth counts");
	put(path, "garbage\n");
	CHECK(psi_poll_read(&p, 15000000, NULL) == -EINVAL, "text that does not parse: EINVAL");
	CHECK(p.last_total_usec == 400000 && p.last_read_usec == 14000000,
	      "a failed read keeps the base");
	psi_close(&p);
	CHECK(p.fd == -1 && p.mode == PSI_NONE, "closed");
	CHECK(psi_poll_read(&p, 16000000, NULL) == -EBADF, "read after close: EBADF");

	unlink(path);
	rmdir(dir);
}

/* The machine's own file, where there is one: it must parse. Which mode depends on the kernel
 * and the privileges (the integration test checks that), so any but NONE is right. */
static void test_real(void)
{
	if (access(PSI_PROC_PATH, R_OK) != 0) {
		CHECK(1, "# SKIP no %s", PSI_PROC_PATH);
		return;
	}
	struct psi p;
	int r = psi_open(&p, NULL, PSI_THRESHOLD_USEC, PSI_WINDOW_USEC);
	CHECK(r == PSI_TRIGGER || r == PSI_POLL, "this machine: %s (trigger_error %d)",
	      psi_mode_name(p.mode), p.trigger_error);
	CHECK(psi_poll_read(&p, p.last_read_usec + 1000000, NULL) >= 0,
	      "this machine's file reads and parses");
	psi_close(&p);
}

static void test_episode(void)
{
	struct psi_episode e;
	const uint64_t s = 1000000; /* one second */
	const uint64_t t0 = 500 * s;

	psi_episode_init(&e, 1 * s, 10 * s);
	CHECK(psi_episode_tick(&e, t0) == PSI_QUIET, "no episode: a tick says nothing");
	CHECK(psi_episode_next_usec(&e) == UINT64_MAX, "no episode: no timer needed");

	CHECK(psi_episode_pressure(&e, t0) == PSI_STARTED, "first pressure: started (log, pass)");
	CHECK(e.active && e.passes == 1 && e.start_usec == t0, "episode state after start");
	CHECK(psi_episode_pressure(&e, t0 + s / 2) == PSI_QUIET,
	      "pressure 0.5 s later: no pass yet (rate limit)");
	CHECK(psi_episode_next_usec(&e) == t0 + s, "the deferred pass is due 1 s after the last");
	CHECK(psi_episode_tick(&e, t0 + s - 1) == PSI_QUIET, "tick just before: still nothing");
	CHECK(psi_episode_tick(&e, t0 + s) == PSI_PASS, "tick at 1 s: the deferred pass");
	CHECK(psi_episode_tick(&e, t0 + s + 1) == PSI_QUIET, "one deferred pass, not two");
	CHECK(psi_episode_pressure(&e, t0 + 2 * s) == PSI_PASS, "pressure 1 s after a pass: pass");
	CHECK(psi_episode_pressure(&e, t0 + 2 * s) == PSI_QUIET,
	      "a second event at the same instant: no second pass");
	CHECK(psi_episode_tick(&e, t0 + 3 * s) == PSI_PASS, "which is served a second later");

	/* A burst of 100 events within 5 s: at most one pass per second. */
	uint32_t before = e.passes;
	for (int i = 0; i < 100; i++) {
		uint64_t now = t0 + 3 * s + (uint64_t)i * 50000;
		psi_episode_pressure(&e, now);
		psi_episode_tick(&e, now);
	}
	CHECK(e.passes - before <= 5, "100 events in 5 s: %u passes", e.passes - before);
	CHECK(e.passes - before >= 4, "...but passes keep coming while pressure lasts (%u)",
	      e.passes - before);

	uint64_t last = e.last_pressure_usec;
	psi_episode_tick(&e, last + s); /* serve whatever is pending */
	CHECK(psi_episode_tick(&e, last + 10 * s - 1) == PSI_QUIET, "9.99 s quiet: still on");
	CHECK(psi_episode_next_usec(&e) == last + 10 * s,
	      "the end is due 10 s after the last event");
	CHECK(psi_episode_tick(&e, last + 10 * s) == PSI_ENDED, "10 s quiet: ended (log once)");
	CHECK(!e.active && e.events > 100, "ended: %u events counted for the log", e.events);
	CHECK(psi_episode_tick(&e, last + 20 * s) == PSI_QUIET, "ended once, not again");
	CHECK(psi_episode_pressure(&e, last + 30 * s) == PSI_STARTED && e.passes == 1 &&
		      e.events == 1,
	      "the next pressure starts a new episode, counts reset");

	/* A late timer: the pending pass comes before the end. */
	psi_episode_init(&e, 1 * s, 10 * s);
	psi_episode_pressure(&e, t0);
	psi_episode_pressure(&e, t0 + s / 2);
	CHECK(psi_episode_tick(&e, t0 + 60 * s) == PSI_PASS, "late tick: the pending pass first");
	CHECK(psi_episode_tick(&e, t0 + 60 * s) == PSI_QUIET,
	      "not the end at the instant of that pass (the next start would break the rate limit)");
	CHECK(psi_episode_next_usec(&e) == t0 + 61 * s,
	      "the end is due an interval after the pass");
	CHECK(psi_episode_tick(&e, t0 + 61 * s) == PSI_ENDED, "then the end");

	/* A clock that goes backwards (it should not) never makes a pass due early. */
	psi_episode_init(&e, 1 * s, 10 * s);
	psi_episode_pressure(&e, t0);
	CHECK(psi_episode_pressure(&e, t0 - s) == PSI_QUIET, "time going back: no pass");
}

int main(void)
{
	test_parse_good();
	test_parse_bad();
	test_growth();
	test_files();
	test_real();
	test_episode();
	return check_done();
}
