/* Memory pressure (PSI): the pressure file's parser, trigger creation with its fallbacks, and the
 * episode logic that turns stall events into pressure passes. Kernel behaviour relied on here:
 * kernel/sched/psi.c (psi_write, psi_trigger_create, psi_open before 6.5). */
#include "psi.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* The root cgroup's memory.pressure is the system-wide group (cgroup_psi() hands out psi_system
 * for the root), on whichever mount cgroup2 has: unified or hybrid. */
static const char *const default_paths[] = {
	PSI_PROC_PATH,
	"/sys/fs/cgroup/memory.pressure",
	"/sys/fs/cgroup/unified/memory.pressure",
};

/* "12.34" as 1234: the kernel prints averages as %lu.%02lu (a percentage, at most 100.00, but
 * nothing here depends on that). One or two decimals; a value past 32 bits is refused. */
static bool read_avg(const char **pp, const char *end, uint32_t *out)
{
	const char *p = *pp;
	uint64_t whole, frac = 0;

	if (!parse_dec_u64(&p, end, &whole) || whole > UINT32_MAX / 100)
		return false;
	if (p < end && *p == '.') {
		const char *f = ++p;
		if (!parse_dec_u64(&p, end, &frac) || p - f > 2)
			return false;
		if (p - f == 1)
			frac *= 10;
	}
	*pp = p;
	*out = (uint32_t)(whole * 100 + frac);
	return true;
}

/* One line after its "some"/"full" word: avg10=, avg60=, avg300=, total=, in that order, each
 * once, separated by single spaces, nothing after. The format has not changed since 4.20; a
 * future field would make the line fail here, which is the safe side for a "some" line: the
 * caller then polls nothing rather than misreading. */
static bool parse_fields(const char *p, const char *end, struct psi_line *l)
{
	static const char *const keys[] = { " avg10=", " avg60=", " avg300=", " total=" };
	uint32_t *avgs[] = { &l->avg10, &l->avg60, &l->avg300 };

	for (size_t i = 0; i < 4; i++) {
		size_t klen = strlen(keys[i]);
		if ((size_t)(end - p) < klen || memcmp(p, keys[i], klen) != 0)
			return false;
		p += klen;
		if (i < 3 ? !read_avg(&p, end, avgs[i]) : !parse_dec_u64(&p, end, &l->total_usec))
			return false;
	}
	return p == end;
}

int psi_parse(const char *buf, size_t len, struct psi_sample *out)
{
	const char *p = buf, *end = buf + len;
	bool some_bad = false;

	*out = (struct psi_sample){ 0 };
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		struct psi_line l = { 0 };
		bool is_some = eol - p >= 4 && memcmp(p, "some", 4) == 0;
		bool is_full = eol - p >= 4 && memcmp(p, "full", 4) == 0;

		if (is_some || is_full) {
			bool good = parse_fields(p + 4, eol, &l);
			if (is_some) {
				/* Two "some" lines: not a pressure file as the kernel writes it. */
				some_bad |= !good || out->has_some;
				out->has_some = good;
				out->some = l;
			} else if (good && !out->has_full) {
				out->has_full = true;
				out->full = l;
			}
		}
		/* Other lines (none today) are someone else's business. */
		p = nl ? nl + 1 : end;
	}
	if (some_bad || !out->has_some) {
		*out = (struct psi_sample){ 0 };
		return -EINVAL;
	}
	return 0;
}

static uint64_t monotonic_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int read_sample(int fd, struct psi_sample *s)
{
	char buf[512];
	*s = (struct psi_sample){ 0 };
	/* pread at 0: a seq_file starts over, so one descriptor serves every read. */
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return -errno;
	return psi_parse(buf, (size_t)n, s);
}

/* Only a kernel pressure file gets a trigger written to it (a test's fixture would be clobbered,
 * and any other file would take the write and never wake anyone). */
static bool is_kernel_file(int fd)
{
	struct statfs sfs;
	if (fstatfs(fd, &sfs) < 0)
		return false;
	return sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == CGROUP2_SUPER_MAGIC;
}

/* The trigger: a second descriptor, opened for writing. Before 6.5 that open itself fails with
 * EPERM without CAP_SYS_RESOURCE (psi_open(); the cgroup files likewise); from 6.5 the write does
 * the checking (EINVAL for an unprivileged window that is not a multiple of 2 s). Returns the fd
 * or a negative errno. */
static int make_trigger(const char *path, uint64_t threshold_usec, uint64_t window_usec)
{
	char text[64];
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int n = snprintf(text, sizeof(text), "some %llu %llu", (unsigned long long)threshold_usec,
			 (unsigned long long)window_usec);
	/* The terminating NUL is part of the write: psi_write() overwrites the last byte it is
	 * given with one, so without it "... 2000000" would become a window of 200000. */
	if (write(fd, text, (size_t)n + 1) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int open_one(struct psi *p, const char *path)
{
	struct psi_sample s;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = read_sample(fd, &s);
	if (r < 0) {
		close(fd);
		return r;
	}
	p->path = path;
	p->have_last = true;
	p->last_total_usec = s.some.total_usec;
	p->last_read_usec = monotonic_usec();
	if (!is_kernel_file(fd)) {
		p->trigger_error = -EOPNOTSUPP;
	} else {
		int t = make_trigger(path, p->threshold_usec, p->window_usec);
		if (t >= 0) {
			close(fd);
			p->fd = t;
			p->trigger_error = 0;
			p->mode = PSI_TRIGGER;
			return 0;
		}
		p->trigger_error = t;
	}
	p->fd = fd;
	p->mode = PSI_POLL;
	return 0;
}

int psi_open(struct psi *p, const char *path, uint64_t threshold_usec, uint64_t window_usec)
{
	*p = (struct psi){ .fd = -1, .threshold_usec = threshold_usec, .window_usec = window_usec };
	if (threshold_usec == 0 || threshold_usec > window_usec || window_usec > UINT32_MAX)
		return -EINVAL;

	const char *const *paths = path ? &path : default_paths;
	size_t npaths = path ? 1 : sizeof(default_paths) / sizeof(default_paths[0]);
	for (size_t i = 0; i < npaths; i++) {
		int r = open_one(p, paths[i]);
		if (r == 0)
			return (int)p->mode;
		/* The first file's error is the one worth reporting: the others are alternatives. */
		if (i == 0)
			p->open_error = r;
	}
	p->mode = PSI_NONE;
	return PSI_NONE;
}

void psi_close(struct psi *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->mode = PSI_NONE;
	p->have_last = false;
}

bool psi_growth_exceeds(uint64_t growth_usec, uint64_t elapsed_usec, uint64_t threshold_usec,
			uint64_t window_usec)
{
	/* The trigger's rule is "more than threshold within a window". Between reads closer than a
	 * window the threshold shrinks in proportion; over a longer gap it stays whole, so a burst
	 * is not diluted by a late timer. */
	uint64_t span = elapsed_usec < window_usec ? elapsed_usec : window_usec;
	uint64_t allowed;
	if (window_usec == 0)
		return growth_usec > threshold_usec;
	if (__builtin_mul_overflow(threshold_usec, span, &allowed))
		return false;
	return growth_usec > allowed / window_usec;
}

int psi_poll_read(struct psi *p, uint64_t now_usec, struct psi_sample *out)
{
	struct psi_sample s;
	if (p->fd < 0)
		return -EBADF;
	int r = read_sample(p->fd, &s);
	if (r < 0)
		return r;
	if (out)
		*out = s;

	bool fresh = !p->have_last || s.some.total_usec < p->last_total_usec;
	uint64_t growth = fresh ? 0 : s.some.total_usec - p->last_total_usec;
	uint64_t elapsed = now_usec > p->last_read_usec ? now_usec - p->last_read_usec : 0;
	p->have_last = true;
	p->last_total_usec = s.some.total_usec;
	p->last_read_usec = now_usec;
	/* No base yet, or a total that went down (another file, a fixture): start from here. */
	if (fresh)
		return 0;
	return psi_growth_exceeds(growth, elapsed, p->threshold_usec, p->window_usec);
}

int psi_trigger_wait(const struct psi *p, int timeout_ms)
{
	struct pollfd pfd = { .fd = p->fd, .events = POLLPRI };
	int n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if (pfd.revents & (POLLERR | POLLNVAL))
		return -EPIPE;
	return (pfd.revents & POLLPRI) ? 1 : 0;
}

const char *psi_mode_name(enum psi_mode mode)
{
	switch (mode) {
	case PSI_TRIGGER: return "trigger";
	case PSI_POLL: return "poll";
	case PSI_NONE: return "none";
	}
	return "?";
}

static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

void psi_episode_init(struct psi_episode *e, uint64_t pass_interval_usec, uint64_t quiet_usec)
{
	*e = (struct psi_episode){ .pass_interval_usec = pass_interval_usec,
				   .quiet_usec = quiet_usec };
}

enum psi_verdict psi_episode_pressure(struct psi_episode *e, uint64_t now_usec)
{
	if (!e->active) {
		e->active = true;
		e->pass_pending = false;
		e->start_usec = e->last_pressure_usec = e->last_pass_usec = now_usec;
		e->events = e->passes = 1;
		return PSI_STARTED;
	}
	e->events++;
	e->last_pressure_usec = now_usec;
	if (since(now_usec, e->last_pass_usec) >= e->pass_interval_usec) {
		e->pass_pending = false;
		e->last_pass_usec = now_usec;
		e->passes++;
		return PSI_PASS;
	}
	e->pass_pending = true;
	return PSI_QUIET;
}

enum psi_verdict psi_episode_tick(struct psi_episode *e, uint64_t now_usec)
{
	if (!e->active)
		return PSI_QUIET;
	/* A deferred pass comes first: that pressure was seen and not yet served. */
	if (e->pass_pending) {
		if (since(now_usec, e->last_pass_usec) < e->pass_interval_usec)
			return PSI_QUIET;
		e->pass_pending = false;
		e->last_pass_usec = now_usec;
		e->passes++;
		return PSI_PASS;
	}
	/* Over only once the last pass is an interval old too: the next episode's first pass must
	 * keep the rate limit as well (a late timer could otherwise end one episode and start the
	 * next at the instant of a pass). */
	if (since(now_usec, e->last_pressure_usec) >= e->quiet_usec &&
	    since(now_usec, e->last_pass_usec) >= e->pass_interval_usec) {
		e->active = false;
		return PSI_ENDED;
	}
	return PSI_QUIET;
}

uint64_t psi_episode_next_usec(const struct psi_episode *e)
{
	if (!e->active)
		return UINT64_MAX;
	if (e->pass_pending)
		return e->last_pass_usec + e->pass_interval_usec;
	uint64_t end = e->last_pressure_usec + e->quiet_usec;
	uint64_t rested = e->last_pass_usec + e->pass_interval_usec;
	return end > rested ? end : rested;
}
