/* libFuzzer target: the pressure file's parser (psi_parse) and the episode logic. The text comes
 * from the kernel, but a parser of it must survive any bytes (a future format, a file that is not
 * what it should be) and hand out either a whole "some" line or nothing. The same bytes then
 * drive an episode as a sequence of events and timer ticks, whose promises must hold: passes at
 * least pass_interval apart, one STARTED and one ENDED per episode, ENDED only after quiet. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "psi.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_parse(const unsigned char *data, size_t size)
{
	/* An exact-size copy: no NUL after it, so reading past the end is ASan's to catch. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return;
	memcpy(text, data, size);

	struct psi_sample s;
	int r = psi_parse(text, size, &s);
	if (r != 0) {
		if (r != -EINVAL || s.has_some || s.has_full)
			abort();
		free(text);
		return;
	}
	if (!s.has_some)
		abort();
	/* What was read prints back to text that reads the same. */
	char again[256];
	int n = snprintf(again, sizeof(again),
			 "some avg10=%" PRIu32 ".%02" PRIu32 " avg60=%" PRIu32 ".%02" PRIu32
			 " avg300=%" PRIu32 ".%02" PRIu32 " total=%" PRIu64 "\n",
			 s.some.avg10 / 100, s.some.avg10 % 100, s.some.avg60 / 100,
			 s.some.avg60 % 100, s.some.avg300 / 100, s.some.avg300 % 100,
			 s.some.total_usec);
	struct psi_sample t;
	if (n <= 0 || (size_t)n >= sizeof(again) || psi_parse(again, (size_t)n, &t) != 0 ||
	    t.some.avg10 != s.some.avg10 || t.some.avg60 != s.some.avg60 ||
	    t.some.avg300 != s.some.avg300 || t.some.total_usec != s.some.total_usec)
		abort();
	/* The growth rule is monotonic in the growth. */
	uint64_t g = s.some.total_usec, el = s.full.total_usec;
	if (g < UINT64_MAX && psi_growth_exceeds(g, el, 50000, 2000000) &&
	    !psi_growth_exceeds(g + 1, el, 50000, 2000000))
		abort();
	free(text);
}

static void check_episode(const unsigned char *data, size_t size)
{
	const uint64_t interval = 1000000, quiet = 10000000;
	struct psi_episode e;
	uint64_t now = 1000000, last_pass = 0, last_pressure = 0;
	bool have_pass = false, active = false;

	psi_episode_init(&e, interval, quiet);
	for (size_t i = 0; i < size; i++) {
		/* Low bit: event or tick; the rest: time forward in steps of 100 ms. */
		now += (uint64_t)(data[i] >> 1) * 100000;
		bool event = data[i] & 1;
		enum psi_verdict v = event ? psi_episode_pressure(&e, now)
					   : psi_episode_tick(&e, now);
		if (event)
			last_pressure = now;
		switch (v) {
		case PSI_STARTED:
			if (active || !event)
				abort();
			active = true;
			break;
		case PSI_PASS:
			if (!active)
				abort();
			break;
		case PSI_ENDED:
			if (!active || event || now - last_pressure < quiet)
				abort();
			active = false;
			break;
		case PSI_QUIET: break;
		}
		if (v == PSI_STARTED || v == PSI_PASS) {
			if (have_pass && now - last_pass < interval)
				abort();
			last_pass = now;
			have_pass = true;
		}
		if (e.active != active)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	check_parse(data, size);
	check_episode(data, size);
	return 0;
}
