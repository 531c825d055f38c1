/* The one daemon context, passed down to every part of a pass. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "files.h"
#include "memcg.h"
#include "util.h"

struct sd_event;
struct sd_event_source;

/* The page range of a cached mapping; kept only in `mapped` mode, the one mode that needs it. */
struct prange {
	uint32_t pgoff;
	uint32_t npages;
};

/* A mapping whose pages are to be looked up in /proc/PID/pagemap. */
struct pm_req {
	uint64_t vpage, npages; /* virtual page number and count */
	uint32_t slot, pgoff;   /* file and its page offset */
};

/* A byte range of a file, page-aligned. */
struct run {
	uint64_t off, len;
};

struct proc {
	pid_t pid;
	bool critical;
	uint64_t starttime; /* clock ticks since boot: tells a reused pid apart */
	uint64_t vsize;     /* bytes of address space: changes with most mmap/munmap */
	uint64_t faults;    /* minflt + majflt of all threads: a new page needs a fault */
	uint32_t nmaps;
	uint32_t *slots;        /* the file of each executable mapping */
	struct prange *ranges;  /* NULL unless `mapped` */
};

/* Counters of things skipped in a pass; reported once, not per occurrence. */
struct pass_stats {
	uint32_t procs, procs_read, procs_vanished, procs_denied, procs_bad;
	uint32_t maps_malformed, mappings;
	uint32_t files_opened, open_failed, lock_failed;
};

struct daemon {
	struct config cfg;
	const char *config_path;
	const char *proc_root;
	int proc_fd;
	size_t page;
	pid_t self_pid;

	/* Modes of this run. */
	bool dry_run, json;

	/* Event loop. */
	struct sd_event *event;
	struct sd_event_source *timer;
	bool ready_sent;

	/* What we know. */
	struct file_table files;
	struct proc *procs;
	uint32_t nprocs, cap_procs;
	struct buf buf;
	uint64_t *pagemap_buf;
	struct pm_req *pm; /* scratch: one process's pagemap requests */
	uint32_t npm, cap_pm;
	struct run *runs; /* scratch: the ranges planned for one file */
	uint32_t nruns, cap_runs;

	uint32_t pass;
	uint32_t full_every; /* re-read every process each N passes */
	bool force_full; /* the next pass re-reads every process */
	bool full_pass;  /* this pass does */
	bool procs_changed; /* this pass read a process again, or the set of processes changed */
	bool want_rebuild;  /* a page bitmap grew: `mapped` must fill it from the process caches */
	int use_query; /* 1 yes, 0 no, -1 untried */

	uint64_t budget_bytes;
	uint64_t locked_bytes;
	uint32_t locked_files, npieces;
	uint32_t fds_held, fd_budget; /* descriptors of files held open, and how many may be */
	int inotify_fd;               /* watches on locked files (watch.c), or -1 */
	int *wd_events;               /* scratch: watch descriptors with events this pass */
	uint32_t nwd_events, cap_wd_events;
	bool locked_set_changed;
	uint64_t memtotal_bytes;
	struct memcg memcg; /* the daemon's memory cgroup: locking stops short of its limit */

	struct pass_stats stats;
	uint32_t warned; /* WARNED_* bits: say each problem once */
	uint64_t next_scan_usec;
	uint64_t state_saved_usec; /* CLOCK_MONOTONIC of the last state save while running, or 0 */
	uint64_t watchdog_usec;   /* 0: no watchdog */
	uint64_t last_ping_usec, last_progress_usec, progress_every_usec;
};

#define WARNED_DENIED 0x1u
#define WARNED_MALFORMED 0x2u
#define WARNED_LOCK_FAILED 0x4u
#define WARNED_STATE 0x8u
#define WARNED_STATUS 0x10u
#define WARNED_NOFILE 0x20u
#define WARNED_BAD_PROC 0x40u
#define WARNED_MAPCOUNT 0x80u
#define WARNED_PAGEMAP 0x100u
#define WARNED_WATCH 0x200u

/* scan.c */
int scan_processes(struct daemon *d);
void scan_aggregate(struct daemon *d);
void procs_free(struct daemon *d);
/* Parses /proc/PID/stat text; exposed for tests. */
struct proc_stat {
	char comm[64];
	unsigned long flags;
	uint64_t minflt, majflt, starttime, vsize;
};
int parse_proc_stat(const char *buf, size_t len, struct proc_stat *st);
/* Extracts the cgroup v2 path ("0::PATH") from /proc/PID/cgroup text into out. */
int parse_proc_cgroup(const char *buf, size_t len, char *out, size_t outlen);

/* lockset.c */
int file_open_verified(struct daemon *d, struct lfile *f);
void file_unlock_all(struct daemon *d, struct lfile *f);
int file_lock_range(struct daemon *d, struct lfile *f, uint64_t off, uint64_t len);
void file_close(struct daemon *d, struct lfile *f);
void file_hold_or_close(struct daemon *d, struct lfile *f);
struct stat;
int file_stat_by_path(struct daemon *d, const struct lfile *f, struct stat *st);
void file_check_evaluate(struct daemon *d, struct lfile *f);
int lock_pass(struct daemon *d);
void lock_release_all(struct daemon *d);
int lock_verify_accounting(struct daemon *d);
uint64_t compute_budget(const struct config *cfg, uint64_t memtotal_bytes, size_t page);

/* watch.c */
void watch_init(struct daemon *d);
void watch_free(struct daemon *d);
void watch_add(struct daemon *d, struct lfile *f);
void watch_remove(struct daemon *d, struct lfile *f);
void watch_drain(struct daemon *d);

/* state.c */
int state_save(struct daemon *d);
int state_restore(struct daemon *d);
int state_reset(const struct config *cfg);
/* The state file's reader, a pure function over its NUL-terminated text (modified in place);
 * exposed for tests and the fuzzer. Returns 0, the line number of the first error (> 0: the
 * file is to be ignored as a whole), or -ENOMEM. */
struct saved_range {
	uint64_t off, len;
};
struct saved_file {
	uint64_t dev, ino, size, mtime_ns;
	char *path;
	struct saved_range *ranges;
	uint32_t nranges;
};
int state_parse(char *text, size_t page, struct saved_file **out, uint32_t *nout);
void saved_free(struct saved_file *v, uint32_t n);

/* status.c */
int status_write(struct daemon *d);
int status_print(const char *status_file, bool json);
void dry_run_print(struct daemon *d);

/* daemon.c */
/* Called during a long pass: keeps watchdog pings flowing and, before READY, reports progress
 * ("locking 320/738 files") in STATUS=. Cheap enough to call per item. */
void pass_progress(struct daemon *d, const char *doing, uint32_t done, uint32_t total);
int daemon_pass(struct daemon *d);
void daemon_update_fd_budget(struct daemon *d);
int daemon_run(struct daemon *d);
void daemon_free(struct daemon *d);
