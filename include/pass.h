/* What the stages of a pass (scan.c, lockpass.c, state.c) share below the daemon: the locked set
 * they work on, which lives from pass to pass, and the settings and counters of one pass. The
 * daemon owns both; stages get them as arguments and never see the daemon. Warnings are the
 * daemon's to give: a stage counts a problem and records its first occurrence here, and
 * daemon.c says it once. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "files.h"
#include "memcg.h"
#include "watch.h"

/* Called during a long pass: the daemon keeps watchdog pings flowing and reports progress.
 * Returns true when the pass must stop now (SIGTERM): the stages then stop where they are. */
typedef bool (*progress_fn)(void *userdata, const char *doing, uint32_t done, uint32_t total);

/* What one pass saw. Counters, and for each kind of problem its first occurrence. */
struct pass_stats {
	uint32_t procs, procs_read, procs_vanished, procs_denied, procs_bad;
	uint32_t maps_malformed, mappings, pagemap_denied;
	uint32_t procs_capped; /* processes with more in their maps than one may cost (scan.c) */
	pid_t capped_pid;
	uint32_t files_opened, open_failed, lock_failed, nofile, watch_failed;
	pid_t denied_pid, bad_pid, malformed_pid, pagemap_denied_pid;
	int denied_err, bad_err, lock_err, watch_err;
	int64_t lock_failed_slot, watch_failed_slot; /* -1: none */
	bool lock_failed_memcg; /* the first lock failure was the memory cgroup guard */
	bool fds_short;         /* locked files held by their mappings alone: RLIMIT_NOFILE */
	/* Files the daemon may not open (EACCES, EPERM: its user cannot read them). */
	uint32_t open_denied;
	int64_t open_denied_slot;
	int open_denied_err;
	/* Files not touched: on a filesystem that may block (FUSE, network). */
	uint32_t may_block;
	int64_t may_block_slot;
	/* Processes whose maps text was as at their last read: not parsed again (scan.c). */
	uint32_t maps_unchanged;
};

/* The settings of one pass. */
struct pass_ctx {
	const struct config *cfg;
	int proc_fd; /* the /proc directory */
	uint32_t pass;  /* 1 for the first */
	bool full;      /* re-read every process, look at every file */
	/* A check for new processes (between passes): only processes the daemon has not read yet,
	 * once they have run new_min_age_ticks, and young ones that changed are read; every other
	 * process is taken as it was without a look at /proc. */
	bool new_only;
	uint64_t now_ticks;        /* CLOCK_BOOTTIME in clock ticks, as /proc/PID/stat's starttime */
	uint64_t new_min_age_ticks;
	uint64_t young_ticks;      /* a process this young is read again when it changed */
	uint32_t new_max_reads;    /* at most this many processes read by one such check */
	bool dry_run;   /* plan only: lock and unlock nothing */
	bool watch;     /* locked files get inotify watches (from the second pass on) */
	struct pass_stats stats;
	progress_fn progress;
	void *progress_ud;
	bool stop; /* the daemon is stopping: what is left of the pass is skipped */
};

/* Returns true when the stage must stop now. */
static inline bool pass_progress(struct pass_ctx *c, const char *doing, uint32_t done,
				 uint32_t total)
{
	if (c->progress && !c->stop)
		c->stop = c->progress(c->progress_ud, doing, done, total);
	return c->stop;
}

/* The files prelockd knows, and what it holds of them. */
struct lockset {
	struct file_table files;
	size_t page;
	uint64_t budget_bytes; /* the budget of the current pass, page-rounded */
	uint64_t locked_bytes;
	uint32_t locked_files;
	uint32_t fds_held, fd_budget; /* descriptors of files held open, and how many may be */
	bool changed;      /* since the state was saved */
	bool want_rebuild; /* a page bitmap grew: `mapped` fills them again from the caches */
	struct memcg memcg; /* the daemon's memory cgroup: locking stops short of its limit */
	struct watch watch;
};
