/* The pass and the event loop: sd-event receives signals and timers, so no handler ever runs
 * daemon logic asynchronously. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "daemon.h"
#include "log.h"

static uint64_t memtotal_bytes(void)
{
	/* sysinfo(2), not /proc/meminfo: ProcSubset=pid hides the latter in the sandboxed unit. */
	struct sysinfo si;
	if (sysinfo(&si) < 0)
		return 0;
	return (uint64_t)si.totalram * si.mem_unit;
}

/* Descriptors files may hold: all but a reserve for reading /proc, sd-event and the journal. */
void daemon_update_fd_budget(struct daemon *d)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		d->fd_budget = 1u << 20;
	else
		d->fd_budget = rl.rlim_cur > 64 ? (uint32_t)MIN(rl.rlim_cur - 64, 1u << 20) : 0;
}

static uint64_t cpu_usec(void)
{
	return now_usec(CLOCK_PROCESS_CPUTIME_ID);
}

/* STATUS= for the service manager, after READY=1 in the same datagram when ready is set. */
static void notify_status(struct daemon *d, bool ready)
{
	char locked[32], budget[32], next[48] = "";

	if (d->dry_run)
		return;
	if (d->cfg.interval_usec >= 1000000)
		snprintf(next, sizeof(next), ", next scan in %llus",
			 (unsigned long long)(d->cfg.interval_usec / 1000000));
	else if (d->cfg.interval_usec) /* "in 0s" would read as a stuck timer */
		snprintf(next, sizeof(next), ", next scan in %llums",
			 (unsigned long long)(d->cfg.interval_usec / 1000));
	else
		snprintf(next, sizeof(next), ", next scan on SIGUSR1/SIGHUP");
	sd_notifyf(0, "%sSTATUS=%u files, %s locked of %s budget%s", ready ? "READY=1\n" : "",
		   d->locked_files,
		   format_bytes(locked, sizeof(locked), d->locked_bytes),
		   format_bytes(budget, sizeof(budget), d->budget_bytes), next);
}

void pass_progress(struct daemon *d, const char *doing, uint32_t done, uint32_t total)
{
	if (d->dry_run || (!d->watchdog_usec && d->ready_sent))
		return;
	uint64_t now = now_usec(CLOCK_MONOTONIC);
	/* sd-event pings only between loop iterations; a pass of seconds must ping itself. */
	if (d->watchdog_usec && now - d->last_ping_usec >= d->watchdog_usec / 4) {
		sd_notify(0, "WATCHDOG=1");
		d->last_ping_usec = now;
	}
	if (!d->ready_sent && now - d->last_progress_usec >= d->progress_every_usec) {
		sd_notifyf(0, "STATUS=%s %u/%u", doing, done, total);
		d->last_progress_usec = now;
	}
}

#define STATE_SAVE_EVERY_USEC (60 * UINT64_C(1000000))

int daemon_pass(struct daemon *d)
{
	uint64_t cpu0 = cpu_usec(), t0 = now_usec(CLOCK_MONOTONIC);
	int r;

	d->pass++;
	d->stats = (struct pass_stats){ 0 };
	d->memtotal_bytes = memtotal_bytes();
	d->budget_bytes = compute_budget(&d->cfg, d->memtotal_bytes, d->page);
	daemon_update_fd_budget(d);
	memcg_refresh(&d->memcg);
	r = scan_processes(d);
	if (r < 0)
		log_warning_errno(r, "scan incomplete, keeping what is locked");
	scan_aggregate(d);
	uint64_t cpu_scan = cpu_usec() - cpu0;
	r = lock_pass(d);
	if (r < 0)
		log_warning_errno(r, "locking pass incomplete");
#ifdef PRELOCKD_DEBUG
	if (!d->dry_run && lock_verify_accounting(d) < 0)
		abort();
#endif
	uint64_t cpu = cpu_usec() - cpu0, wall = now_usec(CLOCK_MONOTONIC) - t0;
	if (d->dry_run)
		return 0;

	char locked[32], budget[32];
	struct log_fields lf = { .bytes = (int64_t)d->locked_bytes, .files = d->locked_files };
	log_full(LOG_INFO, &lf, 0,
		 "pass %u: %u files, %s locked of %s budget; %u processes (%u read), %u mappings, "
		 "%u ms CPU (%u scanning, %u locking), %u ms wall",
		 d->pass, d->locked_files, format_bytes(locked, sizeof(locked), d->locked_bytes),
		 format_bytes(budget, sizeof(budget), d->budget_bytes), d->stats.procs,
		 d->stats.procs_read, d->stats.mappings, (unsigned)(cpu / 1000),
		 (unsigned)(cpu_scan / 1000), (unsigned)((cpu - cpu_scan) / 1000),
		 (unsigned)(wall / 1000));
	r = status_write(d);
	if (r < 0 && !(d->warned & WARNED_STATUS)) {
		log_warning_errno(r, "cannot write status file %s, running on without it",
				  d->cfg.status_file);
		d->warned |= WARNED_STATUS;
	}
	/* The state is a hint for the next start, checked again when restored: written when the
	 * locked set changed, at most once a minute while running (each write is an fsync and an
	 * fstat per locked file), and always at exit. */
	uint64_t now = now_usec(CLOCK_MONOTONIC);
	if (d->locked_set_changed &&
	    (!d->state_saved_usec || now - d->state_saved_usec >= STATE_SAVE_EVERY_USEC)) {
		d->state_saved_usec = now;
		r = state_save(d);
		if (r < 0 && !(d->warned & WARNED_STATE)) {
			log_warning_errno(r, "cannot save state to %s, running on without it",
					  d->cfg.state_file);
			d->warned |= WARNED_STATE;
		}
		if (r >= 0)
			d->locked_set_changed = false;
	}
	return 0;
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

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;
	(void)s;
	(void)usec;
	daemon_pass(d);
	notify_status(d, false);
	arm_timer(d);
	return 0;
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;
	(void)s;
	(void)si;
	log_info("SIGUSR1: rescanning now");
	daemon_pass(d);
	notify_status(d, false);
	arm_timer(d);
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
	for (uint32_t s = 0; s < d->files.nslots; s++) {
		struct lfile *f = &d->files.slots[s];
		if (!f->in_use)
			continue;
		file_check_evaluate(d, f);
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
		memcg_init(&d->memcg); /* the service may have been moved to another cgroup */
		daemon_pass(d);
		arm_timer(d);
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
	int r = state_save(d);
	if (r < 0)
		log_warning_errno(r, "cannot save state to %s", d->cfg.state_file);
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

int daemon_run(struct daemon *d)
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
	d->progress_every_usec = 500000;
#ifdef PRELOCKD_DEBUG
	/* Test builds only: a first pass takes milliseconds on a test machine, too short to show
	 * its progress reports; tests ask for them at every item. */
	const char *e = getenv("PRELOCKD_DEBUG_PROGRESS_USEC");
	if (e)
		d->progress_every_usec = strtoull(e, NULL, 10);
#endif
	r = sd_event_add_time(d->event, &d->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_timer, d);
	if (r < 0)
		return log_error_errno(r, "cannot add timer"), r;
	sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);

	daemon_pass(d);
	notify_status(d, true);
	d->ready_sent = true;
	arm_timer(d);

	r = sd_event_loop(d->event);
	return r < 0 ? r : 0;
}

void daemon_free(struct daemon *d)
{
	lock_release_all(d);
	d->timer = sd_event_source_unref(d->timer);
	d->event = sd_event_unref(d->event);
	procs_free(d);
	memcg_free(&d->memcg);
	watch_free(d);
	file_table_free(&d->files);
	buf_free(&d->buf);
	free(d->pagemap_buf);
	free(d->runs);
	free(d->pm);
	config_free(&d->cfg);
	if (d->proc_fd >= 0)
		close(d->proc_fd);
}
