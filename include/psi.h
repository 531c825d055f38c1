/* Memory pressure (PSI): knowing when stalls begin, so that a pass can lock what came into use
 * since the last one before reclaim takes it. See docs/pressure.md for the choices and numbers.
 *
 * Three ways it can go, in order of preference:
 *   PSI_TRIGGER  "some THRESHOLD WINDOW" written to the pressure file: the kernel wakes the fd
 *                (POLLPRI) when stalls within any window exceed the threshold. Costs nothing
 *                while the machine is calm. Needs CAP_SYS_RESOURCE before Linux 6.5 (the open
 *                for writing fails with EPERM); from 6.5 anyone may, with windows that are
 *                multiples of 2 s, checked every 2 s by the kernel's averaging work.
 *   PSI_POLL     the file can be read but no trigger can be made: the caller reads it on a
 *                timer (psi_poll_read) and compares the growth of the "some" total.
 *   PSI_NONE     no pressure file: CONFIG_PSI off, psi=0, or /proc hidden (ProcSubset=pid).
 *
 * Everything here is independent of the daemon: the caller owns the timers and the event loop.
 * Wiring into sd-event (a sketch):
 *   psi_open(&p, NULL, PSI_THRESHOLD_USEC, PSI_WINDOW_USEC);
 *   TRIGGER: sd_event_add_io(e, &src, p.fd, EPOLLPRI, on_psi, m); on EPOLLPRI call
 *            psi_episode_pressure(); on EPOLLERR the file is gone: psi_close() and reopen.
 *   POLL:    a timer every PSI_POLL_INTERVAL_USEC: psi_poll_read() > 0 -> psi_episode_pressure().
 *   Both:    while an episode lasts, a timer every PSI_PASS_INTERVAL_USEC calls psi_poll_read()
 *            (stalls still growing -> psi_episode_pressure()) and psi_episode_tick(). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The defaults (reasons and measurements in docs/pressure.md). The window is 2 s, the shortest
 * an unprivileged trigger may have (6.5+). */
#define PSI_THRESHOLD_USEC UINT64_C(1000)
#define PSI_WINDOW_USEC UINT64_C(2000000)
/* The fallback's timer: how often psi_poll_read() runs while no episode is on. */
#define PSI_POLL_INTERVAL_USEC UINT64_C(1000000)
/* At most one pressure pass this often while an episode lasts. */
#define PSI_PASS_INTERVAL_USEC UINT64_C(1000000)
/* An episode is over after this long with no sign of stalls. */
#define PSI_QUIET_USEC UINT64_C(10000000)

/* The files tried when psi_open() is given no path. The root cgroup's memory.pressure (cgroup2)
 * holds the same system-wide numbers as /proc/pressure/memory and is still there when
 * ProcSubset=pid hides /proc/pressure; only root may write it, so it is read-only in practice. */
#define PSI_PROC_PATH "/proc/pressure/memory"

enum psi_mode {
	PSI_NONE = 0,
	PSI_POLL = 1,
	PSI_TRIGGER = 2,
};

/* One read of a pressure file. Totals are cumulative stall times in microseconds; the averages
 * are hundredths of a percent (avg10=12.34 -> 1234). A line that is missing leaves has_* false. */
struct psi_line {
	uint32_t avg10, avg60, avg300;
	uint64_t total_usec;
};
struct psi_sample {
	bool has_some, has_full;
	struct psi_line some, full;
};

struct psi {
	enum psi_mode mode;
	int fd;           /* TRIGGER: poll for POLLPRI (and read totals); POLL: read; NONE: -1 */
	const char *path; /* the file in use (a static string or the caller's) */
	uint64_t threshold_usec, window_usec;
	int trigger_error; /* why there is no trigger: a negative errno, 0 with one */
	int open_error;    /* why the first file was not used (ENOENT: hidden), even when a
			    * later one was; 0 when it was */
	/* psi_poll_read()'s memory: the "some" total and when it was read. */
	bool have_last;
	uint64_t last_total_usec, last_read_usec;
};

/* Parses the text of a pressure file ("some avg10=.. avg60=.. avg300=.. total=N", optionally a
 * "full" line). Pure: len bytes of buf, no NUL needed. Returns 0 when a well-formed "some" line
 * was found (a "full" line is optional; one that is malformed is ignored), -EINVAL otherwise. */
int psi_parse(const char *buf, size_t len, struct psi_sample *out);

/* Opens path (NULL: /proc/pressure/memory, then the root cgroup's memory.pressure) and tries to
 * create a trigger for "some" stalls over threshold_usec within window_usec. Returns the mode it
 * got (>= 0), with p->fd set as the mode says; p->trigger_error and p->open_error say why it got
 * no better. -EINVAL when threshold is 0 or larger than the window. Never fails otherwise:
 * PSI_NONE is a result. */
int psi_open(struct psi *p, const char *path, uint64_t threshold_usec, uint64_t window_usec);
void psi_close(struct psi *p);

/* Reads the file again (PSI_POLL, or PSI_TRIGGER for totals during an episode) at now_usec
 * (CLOCK_MONOTONIC) and compares the growth of the "some" total since the previous read with
 * the threshold, scaled to the time between the reads (threshold per window). Returns 1 when
 * stalls grew faster than that, 0 when not (and on the first read, which only sets the base),
 * or a negative errno (-EINVAL on text that does not parse). Stores the sample when out is set. */
int psi_poll_read(struct psi *p, uint64_t now_usec, struct psi_sample *out);

/* The decision, pure: is growth_usec of stall in elapsed_usec more than threshold per window? */
bool psi_growth_exceeds(uint64_t growth_usec, uint64_t elapsed_usec, uint64_t threshold_usec,
			uint64_t window_usec);

/* Waits up to timeout_ms for the trigger (poll(2) for POLLPRI). 1: it fired; 0: timeout;
 * -EPIPE: POLLERR, the file went away; other negative errnos from poll. For helpers and tests;
 * the daemon watches p->fd in its event loop instead. */
int psi_trigger_wait(const struct psi *p, int timeout_ms);

const char *psi_mode_name(enum psi_mode mode);

/* Episodes: what a run of pressure events means for passes. Time is a parameter (CLOCK_MONOTONIC
 * microseconds), so tests need no sleeping. */
enum psi_verdict {
	PSI_QUIET = 0,   /* nothing to do */
	PSI_STARTED = 1, /* an episode begins: log it (once) and run a pass now */
	PSI_PASS = 2,    /* still under pressure and a pass is due now */
	PSI_ENDED = 3,   /* no pressure for quiet_usec: the episode is over (log it) */
};

struct psi_episode {
	uint64_t pass_interval_usec, quiet_usec; /* settings */
	bool active, pass_pending;
	uint64_t start_usec, last_pressure_usec, last_pass_usec;
	uint32_t events, passes; /* in the current (or just ended) episode, for the log */
};

void psi_episode_init(struct psi_episode *e, uint64_t pass_interval_usec, uint64_t quiet_usec);
/* Pressure was seen at now (a trigger event, or psi_poll_read() returned 1). STARTED or PASS
 * when a pass should run now; QUIET when the last pass was too recent (one is then due at
 * psi_episode_next_usec(), which psi_episode_tick() reports). */
enum psi_verdict psi_episode_pressure(struct psi_episode *e, uint64_t now_usec);
/* A timer at now: PASS when a deferred pass is due, ENDED when the episode is over, else QUIET. */
enum psi_verdict psi_episode_tick(struct psi_episode *e, uint64_t now_usec);
/* When psi_episode_tick() next has something to say; UINT64_MAX when no episode is on. */
uint64_t psi_episode_next_usec(const struct psi_episode *e);
