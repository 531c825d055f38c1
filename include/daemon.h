/* The daemon: the event loop and the one context of a running prelockd. Only main.c and
 * daemon.c see it; the stages of a pass get the parts they need (pass.h). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "pass.h"
#include "plan.h"
#include "psi.h"
#include "scan.h"

struct sd_event;
struct sd_event_source;

struct daemon {
	struct config cfg;
	const char *config_path;
	int proc_fd;
	bool dry_run;

	struct lockset ls;
	struct scan scan;
	struct runs runs;          /* the lock stage's scratch */
	struct pass_stats stats;   /* of the last pass */

	struct sd_event *event;
	struct sd_event_source *timer;
	bool ready_sent;

	/* Memory pressure: a pass as soon as stalls begin, and while they last. */
	struct psi psi;
	struct psi_episode episode;
	struct sd_event_source *psi_io;    /* the trigger (PSI_TRIGGER) */
	struct sd_event_source *psi_timer; /* polling (PSI_POLL), and the episode's ticks */
	uint32_t pressure_passes;          /* since the start */

	/* Programs started since the last pass: looked for every new_process_check. */
	struct sd_event_source *new_timer;
	uint32_t new_checks_read; /* processes read by those checks, since the start */
	uint64_t last_pid;        /* the last PID the kernel gave out, at the last look (0: unknown) */

	uint32_t pass;
	uint64_t full_every_usec; /* a full pass (every process re-read) at least this often */
	uint64_t last_full_usec;  /* CLOCK_MONOTONIC of the last full pass, 0 before the first */
	bool force_full;          /* the next pass re-reads every process */
	uint32_t warned;     /* WARNED_* bits: say each problem once */
	uint64_t state_saved_usec; /* CLOCK_MONOTONIC of the last state save while running, or 0 */
	uint64_t watchdog_usec;    /* 0: no watchdog */
	uint64_t last_ping_usec, last_progress_usec, progress_every_usec;
	uint64_t last_sigcheck_usec; /* on_progress() last looked for a pending SIGTERM */
};

/* Takes over *cfg (zeroed); opens /proc and computes the budget. Returns 0 or -errno. */
int daemon_init(struct daemon *d, struct config *cfg, const char *config_path, bool dry_run);
/* The budget the config gives on this machine. */
uint64_t daemon_budget(const struct daemon *d);
/* --dry-run: one pass that locks nothing, and its plan printed. */
void daemon_dry_run(struct daemon *d, bool json);
/* Locks the saved state, then runs passes until SIGTERM/SIGINT. Returns 0 or -errno. */
int daemon_run(struct daemon *d);
void daemon_free(struct daemon *d);
