/* Test and measurement helper for src/psi.c: watches memory pressure the way the daemon will, or
 * measures what watching costs an idle machine.
 *
 *   psiwatch [-t THRESHOLD_US] [-w WINDOW_US] [-i POLL_MS] [-f PATH] open
 *       prints how psi_open() went ("mode=... trigger_error=... open_error=... path=...").
 *   psiwatch [options] watch DURATION_MS [once]
 *       the daemon's loop (trigger, or poll every POLL_MS; while an episode lasts, totals read
 *       every second): prints "ready", then "pressure NS SOURCE VERDICT" for every sign of
 *       stalls and "ended NS EVENTS PASSES" when an episode ends (NS: CLOCK_MONOTONIC). With
 *       "once" it exits 0 at the first episode's start; exit 2 when the time runs out first.
 *   psiwatch [options] cost SECONDS
 *       an sd-event loop as the daemon's: a timer every POLL_MS that calls psi_poll_read()
 *       (POLL_MS 0: a trigger watched with EPOLLPRI, no timer), for SECONDS; prints
 *       "cost mode=M seconds=S reads=N wakeups=N cpu_usec=N" (wakeups: voluntary context
 *       switches, each a return from epoll_wait; CPU: user + system, getrusage). With -n the
 *       timer runs but reads nothing: what the wakeups cost without the read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "psi.h"

static uint64_t threshold_usec = PSI_THRESHOLD_USEC, window_usec = PSI_WINDOW_USEC;
static uint64_t poll_usec = PSI_POLL_INTERVAL_USEC;
static const char *path;
static bool no_read; /* -n: the timer alone, to tell its cost from the read's */

static uint64_t mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int open_psi(struct psi *p)
{
	int r = psi_open(p, path, threshold_usec, window_usec);
	if (r < 0) {
		fprintf(stderr, "psiwatch: psi_open: %s\n", strerror(-r));
		return r;
	}
	printf("mode=%s trigger_error=%d open_error=%d path=%s threshold_usec=%llu "
	       "window_usec=%llu\n",
	       psi_mode_name(p->mode), p->trigger_error, p->open_error, p->path ? p->path : "-",
	       (unsigned long long)threshold_usec, (unsigned long long)window_usec);
	return 0;
}

static void report(enum psi_verdict v, const struct psi_episode *e, uint64_t now,
		   const char *source)
{
	static const char *const names[] = { "quiet", "started", "pass", "ended" };
	if (v == PSI_ENDED)
		printf("ended %llu %u %u\n", (unsigned long long)now * 1000, e->events, e->passes);
	else
		printf("pressure %llu %s %s\n", (unsigned long long)now * 1000, source, names[v]);
}

/* The loop the daemon is meant to run (docs/pressure.md), with poll(2) for its event loop. */
static int watch(struct psi *p, uint64_t duration_usec, bool once)
{
	struct psi_episode e;
	uint64_t deadline = mono_usec() + duration_usec;
	uint64_t next_read = p->mode == PSI_POLL ? mono_usec() + poll_usec : UINT64_MAX;

	psi_episode_init(&e, PSI_PASS_INTERVAL_USEC, PSI_QUIET_USEC);
	printf("ready\n");
	for (;;) {
		uint64_t now = mono_usec(), wake = deadline;
		if (now >= deadline)
			return 2;
		wake = next_read < wake ? next_read : wake;
		uint64_t ep = psi_episode_next_usec(&e);
		wake = ep < wake ? ep : wake;
		int timeout_ms = wake > now ? (int)((wake - now + 999) / 1000) : 0;
		int fired = 0;
		if (p->mode == PSI_TRIGGER) {
			fired = psi_trigger_wait(p, timeout_ms);
			if (fired < 0 && fired != -EINTR) {
				fprintf(stderr, "psiwatch: trigger: %s\n", strerror(-fired));
				return 1;
			}
		} else {
			usleep((useconds_t)timeout_ms * 1000);
		}
		now = mono_usec();
		enum psi_verdict v = PSI_QUIET;
		if (fired == 1) {
			v = psi_episode_pressure(&e, now);
			report(v, &e, now, "trigger");
			/* The totals' base for the reads while the episode lasts: from here, not from
			 * the last read (which may be hours old). */
			if (v == PSI_STARTED) {
				psi_poll_read(p, now, NULL);
				next_read = now + PSI_PASS_INTERVAL_USEC;
			}
		}
		if (now >= next_read) {
			int r = psi_poll_read(p, now, NULL);
			if (r < 0) {
				fprintf(stderr, "psiwatch: read: %s\n", strerror(-r));
				return 1;
			}
			if (r == 1) {
				v = psi_episode_pressure(&e, now);
				report(v, &e, now, "poll");
			}
			/* Between episodes only the fallback reads; during one, both do, each second. */
			if (e.active)
				next_read = now + PSI_PASS_INTERVAL_USEC;
			else
				next_read = p->mode == PSI_POLL ? now + poll_usec : UINT64_MAX;
		}
		if (once && v == PSI_STARTED)
			return 0;
		enum psi_verdict t = psi_episode_tick(&e, now);
		if (t != PSI_QUIET)
			report(t, &e, now, "timer");
		if (t == PSI_ENDED && p->mode == PSI_TRIGGER)
			next_read = UINT64_MAX;
	}
}

struct cost {
	struct psi *p;
	uint64_t reads, period_usec;
};

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct cost *c = userdata;
	int r = no_read ? 0 : psi_poll_read(c->p, usec, NULL);
	if (r < 0)
		return sd_event_exit(sd_event_source_get_event(s), r);
	c->reads++;
	/* From the time it was due, not from now: the loop's default accuracy (250 ms) lets it
	 * fire late, and re-arming from now would stretch every period by that. */
	sd_event_source_set_time(s, usec + c->period_usec);
	return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_trigger(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct cost *c = userdata;
	(void)fd;
	c->reads++;
	if (revents & EPOLLERR)
		return sd_event_exit(sd_event_source_get_event(s), -EPIPE);
	return 0;
}

static int cost(struct psi *p, uint64_t seconds)
{
	struct cost c = { .p = p, .period_usec = poll_usec };
	struct rusage r0, r1;
	sd_event *e = NULL;
	int r = sd_event_new(&e);
	if (r < 0)
		return r;
	if (poll_usec == 0) {
		if (p->mode != PSI_TRIGGER) {
			fprintf(stderr, "psiwatch: cost with POLL_MS 0 needs a trigger\n");
			sd_event_unref(e);
			return -EOPNOTSUPP;
		}
		r = sd_event_add_io(e, NULL, p->fd, EPOLLPRI, on_trigger, &c);
	} else {
		/* Accuracy a tenth of the period: room to coalesce with other timers, never so
		 * much that one wakeup serves two reads. */
		r = sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, poll_usec, poll_usec / 10,
					       on_timer, &c);
	}
	if (r >= 0)
		r = sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, seconds * 1000000, 0, NULL,
					       NULL); /* no handler: the loop exits */
	if (r < 0) {
		sd_event_unref(e);
		return r;
	}
	getrusage(RUSAGE_SELF, &r0);
	r = sd_event_loop(e);
	getrusage(RUSAGE_SELF, &r1);
	sd_event_unref(e);
	if (r < 0)
		return r;
	long long cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
			 r0.ru_stime.tv_sec) *
				1000000LL +
			r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
			r0.ru_stime.tv_usec;
	printf("cost mode=%s%s period_ms=%llu seconds=%llu reads=%llu wakeups=%ld cpu_usec=%lld\n",
	       psi_mode_name(p->mode), no_read ? "(no read)" : "",
	       (unsigned long long)poll_usec / 1000, (unsigned long long)seconds,
	       (unsigned long long)c.reads, r1.ru_nvcsw - r0.ru_nvcsw, cpu);
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: psiwatch [-t THRESHOLD_US] [-w WINDOW_US] [-i POLL_MS] [-f PATH] [-n] "
		"open | watch DURATION_MS [once] | cost SECONDS\n");
	return 64;
}

int main(int argc, char **argv)
{
	struct psi p;
	int opt;

	while ((opt = getopt(argc, argv, "t:w:i:f:n")) != -1) {
		switch (opt) {
		case 't': threshold_usec = strtoull(optarg, NULL, 10); break;
		case 'w': window_usec = strtoull(optarg, NULL, 10); break;
		case 'i': poll_usec = strtoull(optarg, NULL, 10) * 1000; break;
		case 'f': path = optarg; break;
		case 'n': no_read = true; break;
		default: return usage();
		}
	}
	if (optind >= argc)
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *cmd = argv[optind];
	if (open_psi(&p) < 0)
		return 1;
	int rc = 0;
	if (strcmp(cmd, "open") == 0) {
		rc = 0;
	} else if (strcmp(cmd, "watch") == 0 && optind + 1 < argc) {
		bool once = optind + 2 < argc && strcmp(argv[optind + 2], "once") == 0;
		if (p.mode == PSI_NONE) {
			fprintf(stderr, "psiwatch: no pressure file to watch\n");
			rc = 1;
		} else {
			rc = watch(&p, strtoull(argv[optind + 1], NULL, 10) * 1000, once);
		}
	} else if (strcmp(cmd, "cost") == 0 && optind + 1 < argc) {
		int r = cost(&p, strtoull(argv[optind + 1], NULL, 10));
		if (r < 0) {
			fprintf(stderr, "psiwatch: cost: %s\n", strerror(-r));
			rc = 1;
		}
	} else {
		rc = usage();
	}
	psi_close(&p);
	return rc;
}
