/* The daemon: the event loop, the passes it runs, and what it says about them. sd-event receives
 * signals and timers, so no handler ever runs daemon logic asynchronously. The stages of a pass
 * count what they meet; this file decides what to log and report, and says each problem once. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"
#include "lockpass.h"
#include "log.h"
#include "mounts.h"
#include "procfs.h"
#include "select.h"
#include "state.h"
#include "status.h"
#ifdef PRELOCKD_DEBUG
#include "debug.h"
#endif

#define WARNED_DENIED 0x1u
#define WARNED_MALFORMED 0x2u
#define WARNED_LOCK_FAILED 0x4u
#define WARNED_STATE 0x8u
#define WARNED_STATUS 0x10u
#define WARNED_NOFILE 0x20u
#define WARNED_BAD_PROC 0x40u
#define WARNED_UNREADABLE 0x10000u
#define WARNED_MAY_BLOCK 0x20000u
#define WARNED_PAGEMAP 0x100u
#define WARNED_WATCH 0x200u
#define WARNED_CAPPED 0x8000u
#define WARNED_LOADAVG 0x40000u

/* The state is written at most this often while running (each write is an fsync and an fstat
 * per locked file), and always at exit. */
#define STATE_SAVE_EVERY_USEC (60 * UINT64_C(1000000))
/* Full passes (every process re-read, every locked file looked at) come by wall time. One costs
 * about as much as reading every maps file as text (70 ms of CPU for 400 processes here), and
 * what only it catches is rare and not urgent: a mapping replaced by one of the same size
 * without a single page fault, a file changed on a network filesystem, a file whose first open
 * failed. Every 5 minutes is 0.02% of a core for 400 processes; quick passes, pressure passes
 * and SIGUSR1 never make full passes more frequent. */
#define FULL_PASS_EVERY_USEC (5 * 60 * UINT64_C(1000000))

static uint64_t memtotal_bytes(void)
{
	/* sysinfo(2), not /proc/meminfo: ProcSubset=pid hides the latter in the sandboxed unit. */
	struct sysinfo si;
	if (sysinfo(&si) < 0)
		return 0;
	return (uint64_t)si.totalram * si.mem_unit;
}

uint64_t daemon_budget(const struct daemon *d)
{
	return compute_budget(&d->cfg, memtotal_bytes(), d->ls.page);
}

/* Descriptors files may hold: all but a reserve for reading /proc, sd-event and the journal,
 * and the /proc/PID/stat descriptors the scan keeps (an eighth of the rest, SCAN_STAT_FDS_MAX
 * at most). */
static void update_fd_budget(struct daemon *d)
{
	struct rlimit rl;
	uint64_t avail;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		avail = UINT64_MAX;
	else
		avail = rl.rlim_cur > 64 ? rl.rlim_cur - 64 : 0;
	d->scan.stat_fds_max = (uint32_t)MIN(avail / 8, (uint64_t)SCAN_STAT_FDS_MAX);
	d->ls.fd_budget = (uint32_t)MIN(avail - d->scan.stat_fds_max, (uint64_t)1 << 20);
}

int daemon_init(struct daemon *d, struct config *cfg, const char *config_path, bool dry_run)
{
	*d = (struct daemon){ .cfg = *cfg, .config_path = config_path, .dry_run = dry_run,
			      .full_every_usec = FULL_PASS_EVERY_USEC, .progress_every_usec = 500000 };
	*cfg = (struct config){ 0 };
	d->ls.page = page_size();
	d->ls.watch.fd = -1;
	d->psi.fd = -1;
	scan_init(&d->scan);
	d->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->proc_fd < 0)
		return log_error_errno(-errno, "cannot open /proc"), -errno;
	d->ls.budget_bytes = daemon_budget(d);
	update_fd_budget(d);
	memcg_init(&d->ls.memcg);
	return 0;
}

/* STATUS= for the service manager, after READY=1 in the same datagram when ready is set. */
static void notify_status(struct daemon *d, bool ready)
{
	char locked[32], budget[32], next[48] = "";
	uint64_t interval = d->cfg.interval_usec;

	if (interval >= 1000000)
		snprintf(next, sizeof(next), ", next scan in %llus",
			 (unsigned long long)(interval / 1000000));
	else if (interval) /* "in 0s" would read as a stuck timer */
		snprintf(next, sizeof(next), ", next scan in %llums", (unsigned long long)(interval / 1000));
	else
		snprintf(next, sizeof(next), ", next scan on SIGUSR1/SIGHUP");
	char pressure[64] = "", fallback[96] = "";
	if (d->episode.active)
		snprintf(pressure, sizeof(pressure), "; memory pressure: a pass every %llus (%u so far)",
			 (unsigned long long)(d->episode.pass_interval_usec / 1000000),
			 d->episode.passes);
	if (d->cfg.what == WHAT_RESIDENT && d->stats.pagemap_denied)
		snprintf(fallback, sizeof(fallback), "; resident falls back to mapped for %u "
			 "processes (no access to their pagemap)", d->stats.pagemap_denied);
	sd_notifyf(0, "%sSTATUS=%u files, %s locked of %s budget%s%s%s", ready ? "READY=1\n" : "",
		   d->ls.locked_files, format_bytes(locked, sizeof(locked), d->ls.locked_bytes),
		   format_bytes(budget, sizeof(budget), d->ls.budget_bytes), next, pressure, fallback);
}

#define SIGCHECK_EVERY_USEC 1000

/* Given to the stages: keeps watchdog pings flowing during a long pass (sd-event pings only
 * between loop iterations) and, before READY, reports progress ("locking 320/738 files"). */
static bool on_progress(void *userdata, const char *doing, uint32_t done, uint32_t total)
{
	struct daemon *d = userdata;
	sigset_t pending;
	uint64_t now = now_usec(CLOCK_MONOTONIC);
	/* SIGTERM and SIGINT wait, blocked, for sd-event: a pass that sees them pending stops, so
	 * that the loop gets to them at once, however long the pass would have been. Asked at most
	 * once a millisecond: the stages call here for every process and file, and sigpending()
	 * costs 1 us on a VM against 30 ns for the clock (1,400 calls were 17% of a quiet pass). */
	if (now - d->last_sigcheck_usec >= SIGCHECK_EVERY_USEC) {
		d->last_sigcheck_usec = now;
		if (sigpending(&pending) == 0 &&
		    (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1))
			return true;
	}
	if (!d->watchdog_usec && d->ready_sent)
		return false;
	if (d->watchdog_usec && now - d->last_ping_usec >= d->watchdog_usec / 4) {
		sd_notify(0, "WATCHDOG=1");
		d->last_ping_usec = now;
	}
	if (!d->ready_sent && now - d->last_progress_usec >= d->progress_every_usec) {
		sd_notifyf(0, "STATUS=%s %u/%u", doing, done, total);
		d->last_progress_usec = now;
	}
	return false;
}

static bool first_time(struct daemon *d, uint32_t bit)
{
	if (d->warned & bit)
		return false;
	d->warned |= bit;
	return true;
}

static const char *slot_path(const struct daemon *d, int64_t slot)
{
	if (slot < 0 || (uint64_t)slot >= d->ls.files.nslots || !d->ls.files.slots[slot].in_use)
		return "?";
	return d->ls.files.slots[slot].path;
}

/* Says, once for the daemon's life, each kind of problem the pass counted. */
static void report_problems(struct daemon *d, const struct pass_stats *st)
{
	if (st->procs_denied && first_time(d, WARNED_DENIED))
		log_warning_errno(st->denied_err, "cannot read the mappings of pid %d (needs "
				  "CAP_SYS_PTRACE, and no sandbox or LSM in the way), skipping such "
				  "processes (reported once)", (int)st->denied_pid);
	if (st->procs_bad && first_time(d, WARNED_BAD_PROC))
		log_warning_errno(st->bad_err, "pid %d: unreadable process data, ignoring (reported "
				  "once)", (int)st->bad_pid);
	if (st->maps_malformed && first_time(d, WARNED_MALFORMED))
		log_warning("/proc/%d/maps: %u malformed line(s) skipped, ignoring (reported once)",
			    (int)st->malformed_pid, st->maps_malformed);
	if (st->procs_capped && first_time(d, WARNED_CAPPED))
		log_warning("/proc/%d/maps: more files or mappings than one process may cost the "
			    "daemon; the rest of its mappings are not counted for it, ignoring (reported "
			    "once)", (int)st->capped_pid);
	if (st->pagemap_denied && first_time(d, WARNED_PAGEMAP))
		log_warning("cannot read /proc/%d/pagemap (other users' processes need "
			    "CAP_DAC_READ_SEARCH): locking what such processes map, not only what "
			    "they use (reported once)", (int)st->pagemap_denied_pid);
	if (st->nofile && first_time(d, WARNED_NOFILE))
		log_warning_errno(-EMFILE, "out of file descriptors; raise LimitNOFILE=, ignoring");
	if (st->fds_short && first_time(d, WARNED_NOFILE))
		log_warning("RLIMIT_NOFILE leaves room for %u open files: locked files beyond that are "
			    "held by their mappings alone and watched by path (raise LimitNOFILE=), "
			    "reported once", d->ls.fd_budget);
	if (st->open_denied && first_time(d, WARNED_UNREADABLE))
		log_warning_errno(st->open_denied_err, "cannot open %s: not locking it, nor %u other "
				  "file(s) this pass that the daemon's user may not read (the status "
				  "file and --status list them; reported once)",
				  slot_path(d, st->open_denied_slot), st->open_denied - 1);
	if (st->may_block && first_time(d, WARNED_MAY_BLOCK))
		log_warning("%s: on a filesystem that may block (FUSE, a network filesystem), not "
			    "touched, nor %u other file(s) this pass (allow_blocking_filesystems= "
			    "lets such filesystems in; reported once)",
			    slot_path(d, st->may_block_slot), st->may_block - 1);
	if (st->watch_failed && first_time(d, WARNED_WATCH))
		log_debug_errno(st->watch_err, "cannot watch %s: looking at it every pass instead",
				slot_path(d, st->watch_failed_slot));
	if (!st->lock_failed || !first_time(d, WARNED_LOCK_FAILED))
		return;
	const char *path = slot_path(d, st->lock_failed_slot);
	if (st->lock_failed_memcg)
		log_warning_errno(st->lock_err, "cannot lock %s: the daemon's memory cgroup %s is near "
				  "its limit (it stops %llu MiB short, where mlock() would stall); "
				  "keeping what is locked, will retry (reported once)", path,
				  d->ls.memcg.dir[0], (unsigned long long)(d->ls.memcg.margin >> 20));
	else if (st->lock_err == -ENOMEM || st->lock_err == -EAGAIN)
		log_warning_errno(st->lock_err, "cannot lock %s: out of lockable memory (memory cgroup "
				  "limit, RLIMIT_MEMLOCK or vm.max_map_count); keeping what is locked, "
				  "will retry (reported once)", path);
	else
		log_warning_errno(st->lock_err, "cannot lock %s, ignoring (reported once)", path);
}

static void log_pass(struct daemon *d, const char *kind, bool full, uint64_t cpu, uint64_t cpu_scan,
		     uint64_t wall)
{
	const struct pass_stats *st = &d->stats;
	char locked[32], budget[32];
	struct log_fields lf = { .bytes = (int64_t)d->ls.locked_bytes, .files = d->ls.locked_files };
	log_full(LOG_INFO, &lf, 0,
		 "pass %u%s: %u files, %s locked of %s budget; %u processes (%u read), %u mappings, "
		 "%u ms CPU (%u scanning, %u locking), %u ms wall",
		 d->pass, kind, d->ls.locked_files, format_bytes(locked, sizeof(locked), d->ls.locked_bytes),
		 format_bytes(budget, sizeof(budget), d->ls.budget_bytes), st->procs, st->procs_read,
		 st->mappings, (unsigned)(cpu / 1000), (unsigned)(cpu_scan / 1000),
		 (unsigned)((cpu - cpu_scan) / 1000), (unsigned)(wall / 1000));
	log_debug("details of pass %u (%s): processes %u vanished, %u denied, %u unreadable, %u "
		  "without pagemap, %u with maps as last read (not parsed); %u malformed maps lines; "
		  "files %u opened, %u could not be, %u could not be locked",
		  d->pass, full ? "full" : "quick", st->procs_vanished,
		  st->procs_denied, st->procs_bad, st->pagemap_denied, st->maps_unchanged,
		  st->maps_malformed, st->files_opened, st->open_failed, st->lock_failed);
}

static void save_state(struct daemon *d, bool at_exit)
{
	uint64_t now = now_usec(CLOCK_MONOTONIC);
	if (!at_exit && (!d->ls.changed ||
			 (d->state_saved_usec && now - d->state_saved_usec < STATE_SAVE_EVERY_USEC)))
		return;
	d->state_saved_usec = now;
	int r = state_save(&d->ls, d->proc_fd, d->cfg.state_file);
	if (r >= 0)
		d->ls.changed = false;
	else if (at_exit)
		log_warning_errno(r, "cannot save state to %s", d->cfg.state_file);
	else if (first_time(d, WARNED_STATE))
		log_warning_errno(r, "cannot save state to %s, running on without it",
				  d->cfg.state_file);
}

/* How often new processes are looked for, 0 for never: no periodic scans at all (interval = 0)
 * means no checks either. */
static uint64_t new_check_every(const struct daemon *d)
{
	return d->cfg.interval_usec ? d->cfg.new_process_check_usec : 0;
}

static void write_status(struct daemon *d)
{
	struct status_info si = { .pid = getpid(), .pass = d->pass, .what = d->cfg.what,
				  .interval_usec = d->cfg.interval_usec,
				  .locked_files = d->ls.locked_files, .locked_bytes = d->ls.locked_bytes,
				  .budget_bytes = d->ls.budget_bytes, .processes = d->scan.nprocs,
				  .stats = &d->stats, .pressure_mode = psi_mode_name(d->psi.mode),
				  .pressure_active = d->episode.active,
				  .pressure_passes = d->pressure_passes,
				  .new_check_usec = new_check_every(d),
				  .new_checks_read = d->new_checks_read };
	int r = status_write(d->cfg.status_file, &d->ls.files, &si);
	if (r < 0 && first_time(d, WARNED_STATUS))
		log_warning_errno(r, "cannot write status file %s, running on without it",
				  d->cfg.status_file);
}

static uint64_t cpu_usec(void)
{
	return now_usec(CLOCK_PROCESS_CPUTIME_ID);
}

/* A process is read by a check for new processes once it has run this long: most of what a
 * busy machine starts (compilers, shell pipelines) is gone by then, and is never read. */
#define NEW_MIN_AGE_USEC (500 * UINT64_C(1000))
/* Until this age a process changes as it starts up (libraries, plugins, data files opened as
 * it goes): checks read it again when its address space or fault count changed. */
#define YOUNG_USEC (10 * UINT64_C(1000000))
/* A check reads at most this many processes (about 13 ms of CPU for ordinary ones); the others
 * wait for the next check, a second later. */
#define NEW_MAX_READS 64

static uint64_t usec_to_ticks(uint64_t usec)
{
	static long hz;
	if (!hz && (hz = sysconf(_SC_CLK_TCK)) <= 0)
		hz = 100;
	return usec * (uint64_t)hz / 1000000;
}

static void set_ages(struct pass_ctx *c)
{
	c->now_ticks = usec_to_ticks(now_usec(CLOCK_BOOTTIME));
	c->new_min_age_ticks = usec_to_ticks(NEW_MIN_AGE_USEC);
	c->young_ticks = usec_to_ticks(YOUNG_USEC);
	c->new_max_reads = NEW_MAX_READS;
}

/* The last PID the kernel gave out in our PID namespace (the last field of /proc/loadavg), or 0
 * when it cannot be read. */
static uint64_t read_last_pid(int proc_fd)
{
	char text[128];
	_cleanup_close_ int fd = openat(proc_fd, "loadavg", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, text, sizeof(text));
	uint64_t pid;
	if (n <= 0 || parse_loadavg_last_pid(text, (size_t)n, &pid) < 0)
		return 0;
	return pid;
}

/* What the daemon may use now: the budget (memory can be hot-added), the descriptors, the
 * memory cgroups' limits. */
static void refresh_limits(struct daemon *d)
{
	d->ls.budget_bytes = daemon_budget(d);
	update_fd_budget(d);
	memcg_refresh(&d->ls.memcg);
}

/* The stages a pass and a check for new processes share: scan, aggregate, lock, report. A pass
 * says what went wrong as a warning; a check, which runs every second, at debug. A check that
 * read nothing new stops after the scan, before anything costs more: it returns false then.
 * *cpu_scan gets the CPU spent up to the end of the scan, from cpu0. */
static bool scan_and_lock(struct daemon *d, struct pass_ctx *c, uint64_t cpu0, uint64_t *cpu_scan)
{
	int prio = c->new_only ? LOG_DEBUG : LOG_WARNING;

	set_ages(c);
	mounts_begin(&d->cfg, d->proc_fd);
	if (!c->new_only)
		refresh_limits(d);
	int use_query = d->scan.use_query;
	int r = scan_processes(&d->scan, &d->ls, c);
	if (r < 0)
		log_full(prio, NULL, r, "%s", c->new_only ? "check for new processes incomplete" :
				     "scan incomplete, keeping what is locked");
	if (use_query && !d->scan.use_query)
		log_debug("PROCMAP_QUERY unsupported here, parsing maps as text");
	if (c->new_only) {
		if (!d->scan.procs_changed || c->stop)
			return false;
		refresh_limits(d);
	}
	scan_aggregate(&d->scan, &d->ls, c);
	*cpu_scan = cpu_usec() - cpu0;
	r = lock_pass(&d->ls, c, &d->runs);
	if (r < 0)
		log_full(prio, NULL, r, "%s", c->new_only ? "locking new processes' files incomplete" :
				     "locking pass incomplete");
#ifdef PRELOCKD_DEBUG
	if (!d->dry_run && debug_verify_accounting(&d->ls) < 0)
		abort();
#endif
	report_problems(d, &c->stats);
	return true;
}

/* One pass: scan, then lock; then say what happened. kind is shown in the pass line: "" for a
 * pass by the timer, a signal or a reload, " (pressure)" for a pressure pass. */
static void daemon_pass(struct daemon *d, const char *kind)
{
	uint64_t cpu0 = cpu_usec(), t0 = now_usec(CLOCK_MONOTONIC), cpu_scan = 0;

	d->pass++;
	bool full = d->force_full || !d->last_full_usec || t0 - d->last_full_usec >= d->full_every_usec;
	if (full)
		d->last_full_usec = t0;
	struct pass_ctx c = { .cfg = &d->cfg, .proc_fd = d->proc_fd, .pass = d->pass,
			      .dry_run = d->dry_run, .watch = d->ready_sent, .full = full,
			      .progress = d->dry_run ? NULL : on_progress, .progress_ud = d,
			      .stats = { .lock_failed_slot = -1, .watch_failed_slot = -1 } };
	d->force_full = false;
	scan_and_lock(d, &c, cpu0, &cpu_scan);
	if (c.stop)
		log_info("pass %u stopped early: the daemon is stopping", d->pass);
	d->stats = c.stats;
	if (d->dry_run)
		return;
	log_pass(d, kind, full, cpu_usec() - cpu0, cpu_scan, now_usec(CLOCK_MONOTONIC) - t0);
	write_status(d);
	save_state(d, false);
}

/* Between passes, every new_process_check: the processes started since the last look are
 * read and their files locked at once, so that a program started a moment before memory runs
 * short is protected as well as one that ran before the last pass. Only new and young
 * processes are looked at (when nothing forked and nobody is young, one read of /proc/loadavg
 * is all it costs); it is not a pass: the pass number stays (keep counts passes), nothing
 * expires, and it logs at debug only. */
static void daemon_check_new(struct daemon *d)
{
	uint64_t cpu0 = cpu_usec(), cpu_scan;
	/* Nothing forked since the last look (the last PID given out is the same) and no process
	 * young: nothing to do, for the price of one small read instead of a listing of /proc
	 * (about 1 ms of CPU for 300 processes). */
	uint64_t last_pid = read_last_pid(d->proc_fd);
	if (!last_pid && first_time(d, WARNED_LOADAVG))
		log_debug("cannot read the last PID from /proc/loadavg: every check for new processes "
			  "lists /proc");
	bool forked = !last_pid || last_pid != d->last_pid;
	d->last_pid = last_pid;
	if (!forked && !d->scan.nyoung)
		return;
	struct pass_ctx c = { .cfg = &d->cfg, .proc_fd = d->proc_fd, .pass = d->pass,
			      .watch = true, .new_only = true,
			      .progress = on_progress, .progress_ud = d,
			      .stats = { .lock_failed_slot = -1, .watch_failed_slot = -1 } };
	uint32_t files0 = d->ls.locked_files;
	uint64_t bytes0 = d->ls.locked_bytes;
	if (!scan_and_lock(d, &c, cpu0, &cpu_scan))
		return;
	d->new_checks_read += c.stats.procs_read;
	if (!c.stats.procs_read && files0 == d->ls.locked_files && bytes0 == d->ls.locked_bytes)
		return;
	char locked[32];
	log_debug("new processes: %u read (%u left for the next check), %u files, %s locked, %u us CPU",
		  c.stats.procs_read, d->scan.new_waiting, d->ls.locked_files,
		  format_bytes(locked, sizeof(locked), d->ls.locked_bytes),
		  (unsigned)(cpu_usec() - cpu0));
	write_status(d); /* at most once a check, and only when it read or locked something */
	if (files0 != d->ls.locked_files || bytes0 != d->ls.locked_bytes)
		notify_status(d, false);
	save_state(d, false);
}

static void arm_new_timer(struct daemon *d)
{
	if (!d->new_timer)
		return;
	uint64_t every = new_check_every(d);
	if (!every) {
		sd_event_source_set_enabled(d->new_timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time_accuracy(d->new_timer, MAX(every / 10, (uint64_t)1000));
	sd_event_source_set_time_relative(d->new_timer, every);
	sd_event_source_set_enabled(d->new_timer, SD_EVENT_ONESHOT);
}

static int on_new_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	daemon_check_new(userdata);
	arm_new_timer(userdata);
	return 0;
}

void daemon_dry_run(struct daemon *d, bool json)
{
	daemon_pass(d, "");
	struct status_info si = { .pid = getpid(), .pass = d->pass, .what = d->cfg.what,
				  .budget_bytes = d->ls.budget_bytes, .processes = d->scan.nprocs,
				  .stats = &d->stats, .pressure_mode = "-" };
	dry_run_print(&d->ls.files, &si, json);
}

static void arm_timer(struct daemon *d)
{
	if (!d->timer)
		return;
	if (!d->cfg.interval_usec) {
		sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
		return;
	}
	/* sd-event's default slack is 250 ms: fine for a minute, not for interval = 100ms. */
	uint64_t accuracy = MIN(MAX(d->cfg.interval_usec / 20, (uint64_t)1000), (uint64_t)1000000);
	sd_event_source_set_time_accuracy(d->timer, accuracy);
	sd_event_source_set_time_relative(d->timer, d->cfg.interval_usec);
	sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
}

static void rescan(struct daemon *d)
{
	daemon_pass(d, "");
	notify_status(d, false);
	arm_timer(d);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	rescan(userdata);
	return 0;
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)s;
	(void)si;
	log_info("SIGUSR1: rescanning now");
	rescan(userdata);
	return 0;
}

static void log_config_error(void *userdata, const char *message)
{
	(void)userdata;
	log_error("%s", message);
}

/* Applies a new config: files are re-judged by the new rules; nothing that still qualifies is
 * unlocked, because the pass only drops what the new rules reject. */
static void apply_config(struct daemon *d, struct config *n)
{
	bool what_changed = n->what != d->cfg.what;
	config_free(&d->cfg);
	d->cfg = *n;
	log_set_level(d->cfg.log_level);
	for (uint32_t s = 0; s < d->ls.files.nslots; s++) {
		struct lfile *f = &d->ls.files.slots[s];
		if (!f->in_use)
			continue;
		select_judge_path(&d->cfg, f);
		f->settled = false; /* max_file_size, what: plan it again */
		if (what_changed)
			file_want_clear(f);
	}
	d->force_full = true;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;
	struct config n;
	(void)s;
	(void)si;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)now_usec(CLOCK_MONOTONIC));
	log_info("SIGHUP: reloading %s", d->config_path);
	int r = config_load(d->config_path, &n, log_config_error, d);
	if (r < 0) {
		log_error("configuration %s rejected, running on with the previous one", d->config_path);
	} else {
		apply_config(d, &n);
		memcg_init(&d->ls.memcg); /* the service may have been moved to another cgroup */
		daemon_pass(d, "");
		arm_timer(d);
		arm_new_timer(d);
	}
	notify_status(d, true);
	return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;
	(void)s;
	sd_notify(0, "STOPPING=1");
	log_info("%s: saving state and exiting", strsignal((int)si->ssi_signo));
	save_state(d, true);
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* Locks what the saved state lists, before the first scan. */
static void restore_state(struct daemon *d)
{
	struct pass_ctx c = { .cfg = &d->cfg, .proc_fd = d->proc_fd, .pass = d->pass };
	int bad_line;
	char buf[32];
	mounts_begin(&d->cfg, d->proc_fd);
	int r = state_restore(&d->ls, &c, d->cfg.state_file, &bad_line);
	if (r == -EBADMSG)
		log_warning("%s:%d: not a valid prelockd state file, ignoring it", d->cfg.state_file,
			    bad_line);
	else if (r == -EBADFD)
		log_warning("state file %s is not a regular file, ignoring", d->cfg.state_file);
	else if (r == -EFBIG)
		log_warning("state file %s is bigger than %u MiB, ignoring", d->cfg.state_file,
			    STATE_FILE_MAX_BYTES >> 20);
	else if (r < 0)
		log_warning_errno(r, "cannot read state file %s, ignoring", d->cfg.state_file);
	else if (*d->cfg.state_file) {
		struct log_fields lf = { .bytes = (int64_t)d->ls.locked_bytes, .files = r };
		log_full(LOG_INFO, &lf, 0, "restored %d files, %s locked from %s", r,
			 format_bytes(buf, sizeof(buf), d->ls.locked_bytes), d->cfg.state_file);
	}
}

/* --- memory pressure ------------------------------------------------------------------------ */

static void arm_psi_timer(struct daemon *d)
{
	uint64_t now = now_usec(CLOCK_MONOTONIC), at = UINT64_MAX;
	if (!d->psi_timer)
		return;
	if (d->episode.active) /* the episode's ticks, and a look at the stall total each time */
		at = MIN(psi_episode_next_usec(&d->episode), now + d->episode.pass_interval_usec);
	else if (d->psi.mode == PSI_POLL)
		at = now + PSI_POLL_INTERVAL_USEC;
	if (at == UINT64_MAX) {
		sd_event_source_set_enabled(d->psi_timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(d->psi_timer, MAX(at, now));
	sd_event_source_set_enabled(d->psi_timer, SD_EVENT_ONESHOT);
}

static void on_verdict(struct daemon *d, enum psi_verdict v, uint64_t now)
{
	switch (v) {
	case PSI_STARTED:
		log_notice("memory pressure: stalls began, locking what came into use since the last "
			   "pass (a pass at most every %llu ms while it lasts)",
			   (unsigned long long)(d->episode.pass_interval_usec / 1000));
		__attribute__((fallthrough));
	case PSI_PASS:
		d->pressure_passes++;
		daemon_pass(d, " (pressure)");
		notify_status(d, false);
		break;
	case PSI_ENDED:
		log_info("memory pressure over after %llu s: %u pressure passes",
			 (unsigned long long)((now - d->episode.start_usec) / 1000000),
			 d->episode.passes);
		write_status(d);
		notify_status(d, false);
		break;
	case PSI_QUIET:
		break;
	}
}

static void pressure_seen(struct daemon *d, uint64_t now)
{
	on_verdict(d, psi_episode_pressure(&d->episode, now), now);
}

static int on_psi_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;
	(void)fd;
	if (revents & (EPOLLERR | EPOLLHUP)) {
		/* The pressure file went away (the kernel's psi was turned off under us). */
		log_warning("memory pressure trigger on %s failed: passes come by the interval alone",
			    d->psi.path);
		sd_event_source_set_enabled(s, SD_EVENT_OFF);
		return 0;
	}
	pressure_seen(d, now_usec(CLOCK_MONOTONIC));
	arm_psi_timer(d);
	return 0;
}

static int on_psi_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;
	(void)s;
	(void)usec;
	uint64_t now = now_usec(CLOCK_MONOTONIC);
	/* Polling, or in an episode: did stalls grow since the last look? (A trigger fires at most
	 * once a window.) */
	if (psi_poll_read(&d->psi, now, NULL) > 0)
		pressure_seen(d, now);
	on_verdict(d, psi_episode_tick(&d->episode, now), now);
	arm_psi_timer(d);
	return 0;
}

static void setup_pressure(struct daemon *d)
{
	psi_episode_init(&d->episode, PSI_PASS_INTERVAL_USEC, PSI_QUIET_USEC);
#ifdef PRELOCKD_DEBUG
	/* Test builds only: the pressure file is system-wide, and tests that count passes or
	 * STATUS= messages must not see passes that other work on the machine brings about. */
	if (getenv("PRELOCKD_DEBUG_NO_PRESSURE"))
		return;
#endif
	psi_open(&d->psi, NULL, PSI_THRESHOLD_USEC, PSI_WINDOW_USEC);
	if (d->psi.mode == PSI_NONE) {
		log_warning_errno(d->psi.open_error, "no memory pressure information in %s: passes "
				  "come by the interval alone", PSI_PROC_PATH);
		return;
	}
	if (d->psi.mode == PSI_TRIGGER &&
	    sd_event_add_io(d->event, &d->psi_io, d->psi.fd, EPOLLPRI, on_psi_io, d) < 0) {
		log_warning("cannot watch %s, reading it every %llu ms instead", d->psi.path,
			    (unsigned long long)(PSI_POLL_INTERVAL_USEC / 1000));
		d->psi.mode = PSI_POLL;
	}
	if (sd_event_add_time(d->event, &d->psi_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_psi_timer,
			      d) < 0) {
		log_warning("cannot add the memory pressure timer: passes come by the interval alone");
		return;
	}
	sd_event_source_set_time_accuracy(d->psi_timer, 10000);
	if (d->psi.mode == PSI_TRIGGER)
		log_info("memory pressure: a pass when stalls pass %llu ms in %llu s (trigger on %s)",
			 (unsigned long long)(d->psi.threshold_usec / 1000),
			 (unsigned long long)(d->psi.window_usec / 1000000), d->psi.path);
	else
		log_full(LOG_NOTICE, NULL, d->psi.trigger_error, "memory pressure: no trigger on %s%s, reading "
				 "it every %llu ms instead", d->psi.path,
				 d->psi.trigger_error == -EPERM || d->psi.trigger_error == -EACCES
					 ? " (before Linux 6.5 a trigger needs CAP_SYS_RESOURCE)"
					 : "",
				 (unsigned long long)(PSI_POLL_INTERVAL_USEC / 1000));
	arm_psi_timer(d);
}

static int setup_loop(struct daemon *d)
{
	static const int sigs[] = { SIGHUP, SIGUSR1, SIGTERM, SIGINT };
	sd_event_signal_handler_t handlers[] = { on_hup, on_usr1, on_term, on_term };
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&mask, sigs[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	r = sd_event_default(&d->event);
	if (r < 0)
		return log_error_errno(r, "cannot create event loop"), r;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		r = sd_event_add_signal(d->event, NULL, sigs[i], handlers[i], d);
		if (r < 0)
			return log_error_errno(r, "cannot watch signal %d", sigs[i]), r;
	}
	r = sd_event_set_watchdog(d->event, true);
	if (r < 0)
		log_warning_errno(r, "cannot set up the watchdog, ignoring");
	if (r > 0 && sd_watchdog_enabled(0, &d->watchdog_usec) <= 0)
		d->watchdog_usec = 0;
	d->last_ping_usec = d->last_progress_usec = now_usec(CLOCK_MONOTONIC);
#ifdef PRELOCKD_DEBUG
	/* Test builds only: a first pass takes milliseconds on a test machine, too short to show
	 * its progress reports; tests ask for them at every item. */
	const char *e = getenv("PRELOCKD_DEBUG_PROGRESS_USEC");
	if (e)
		d->progress_every_usec = strtoull(e, NULL, 10);
	/* And a full pass sooner than every 5 minutes. */
	e = getenv("PRELOCKD_DEBUG_FULL_PASS_USEC");
	if (e)
		d->full_every_usec = strtoull(e, NULL, 10);
#endif
	r = sd_event_add_time(d->event, &d->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_timer, d);
	if (r < 0)
		return log_error_errno(r, "cannot add timer"), r;
	sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
	r = sd_event_add_time(d->event, &d->new_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_new_timer, d);
	if (r < 0)
		log_warning_errno(r, "cannot add the timer for new processes: they wait for the next pass");
	else
		sd_event_source_set_enabled(d->new_timer, SD_EVENT_OFF);
	setup_pressure(d);
	return 0;
}

int daemon_run(struct daemon *d)
{
	update_fd_budget(d); /* main() raised RLIMIT_NOFILE */
	watch_init(&d->ls.watch);
	if (d->ls.watch.fd < 0)
		log_debug_errno(-errno, "inotify unavailable: locked files are checked every pass");
	restore_state(d);
	int r = setup_loop(d);
	if (r < 0)
		return r;
	daemon_pass(d, "");
	notify_status(d, true);
	d->ready_sent = true;
	arm_timer(d);
	arm_new_timer(d);

	r = sd_event_loop(d->event);
	return r < 0 ? r : 0;
}

void daemon_free(struct daemon *d)
{
	lock_release_all(&d->ls);
	d->timer = sd_event_source_unref(d->timer);
	d->new_timer = sd_event_source_unref(d->new_timer);
	d->psi_io = sd_event_source_unref(d->psi_io);
	d->psi_timer = sd_event_source_unref(d->psi_timer);
	psi_close(&d->psi);
	d->event = sd_event_unref(d->event);
	scan_free(&d->scan);
	mounts_free();
	memcg_free(&d->ls.memcg);
	watch_free(&d->ls.watch);
	file_table_free(&d->ls.files);
	runs_free(&d->runs);
	config_free(&d->cfg);
	if (d->proc_fd >= 0)
		close(d->proc_fd);
}
