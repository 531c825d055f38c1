/* Discovery: walk /proc, keep a cache of each process's executable file mappings, and re-read
 * only the processes whose mappings may have changed.
 *
 * The change signal, read from /proc/PID/stat in one small read: starttime (a reused pid),
 * vsize (mmap and munmap move it) and minflt+majflt summed over all threads (a page cannot enter
 * a process's page tables without a fault, so `resident` data cannot grow without it). A process
 * that is equal in all three since the last pass has, short of an munmap+mmap of the very same
 * size without touching a page, the same mappings and pages; every `full_every` passes everything
 * is re-read anyway to close that gap. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "daemon.h"
#include "log.h"
#include "maps.h"

#define PF_KTHREAD 0x00200000ul
#define PM_PRESENT (1ull << 63)
#define PM_FILE (1ull << 61)
/* Pagemap window: 8192 entries = 64 KiB of buffer; mappings up to 16 pages apart share one (a
 * page-table entry costs ~50 ns to read, a pread ~3 us). */
#define PAGEMAP_BATCH 8192
#define PAGEMAP_GAP 16

int parse_proc_stat(const char *buf, size_t len, struct proc_stat *st)
{
	const char *open = memchr(buf, '(', len), *close = NULL;
	/* comm may itself contain ')' and spaces: the last ')' ends it. */
	for (size_t i = len; i > 0; i--)
		if (buf[i - 1] == ')') {
			close = buf + i - 1;
			break;
		}
	if (!open || !close || close < open)
		return -EINVAL;
	size_t clen = MIN((size_t)(close - open - 1), sizeof(st->comm) - 1);
	memcpy(st->comm, open + 1, clen);
	st->comm[clen] = '\0';

	/* Fields after comm, numbered as in proc(5): 3 state, 9 flags, 10 minflt, 12 majflt,
	 * 22 starttime, 23 vsize. */
	const char *p = close + 1, *end = buf + len;
	uint64_t v[24] = { 0 };
	for (int field = 3; field <= 23; field++) {
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			return -EINVAL;
		if (field == 3) {
			p++;
			continue;
		}
		bool neg = *p == '-';
		if (neg)
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return -EINVAL;
		uint64_t x = 0;
		while (p < end && *p >= '0' && *p <= '9') {
			if (x > (UINT64_MAX - 9) / 10)
				return -EINVAL;
			x = x * 10 + (uint64_t)(*p++ - '0');
		}
		if (p < end && *p != ' ' && *p != '\n')
			return -EINVAL;
		v[field] = neg ? 0 : x;
	}
	st->flags = (unsigned long)v[9];
	st->minflt = v[10];
	st->majflt = v[12];
	st->starttime = v[22];
	st->vsize = v[23];
	return 0;
}

int parse_proc_cgroup(const char *buf, size_t len, char *out, size_t outlen)
{
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le - p >= 3 && memcmp(p, "0::", 3) == 0) {
			size_t n = (size_t)(le - p - 3);
			if (n >= outlen)
				return -ENAMETOOLONG;
			memcpy(out, p + 3, n);
			out[n] = '\0';
			return 0;
		}
		p = le + 1;
	}
	return -ENOENT;
}

struct scan_one {
	struct daemon *d;
	struct proc *p;
	char pid_dir[32];
};

/* Decides, once per file, whether its path qualifies, and opens it to learn its size. */
static void file_first_seen(struct daemon *d, struct lfile *f, bool deleted)
{
	if (deleted) {
		f->deleted_only = true;
		f->eligible = false;
		f->reason = REASON_DELETED;
		return;
	}
	file_check_evaluate(d, f);
	if (f->eligible && file_open_verified(d, f) == 0)
		file_hold_or_close(d, f);
}

static int push_pm(struct daemon *d, uint64_t vpage, uint64_t npages, uint32_t slot, uint64_t pgoff)
{
	if (GROW_ARRAY(d->pm, d->npm, d->cap_pm, 256) < 0)
		return -ENOMEM;
	d->pm[d->npm++] = (struct pm_req){ .vpage = vpage, .npages = npages, .slot = slot,
					   .pgoff = (uint32_t)pgoff };
	return 0;
}

/* The first page in [p, end) whose wanted bit is `set`, or end; a word of the bitmap at a time. */
static uint64_t next_want_bit(const struct lfile *f, uint64_t p, uint64_t end, bool set)
{
	while (p < end) {
		uint64_t w = f->want_bits[p / 64];
		w = (set ? w : ~w) >> (p % 64);
		if (w) {
			uint64_t q = p + (uint64_t)__builtin_ctzll(w);
			return q < end ? q : end;
		}
		p = (p / 64 + 1) * 64;
	}
	return end;
}

/* Queues the pages of a mapping that must be looked up in pagemap; read_pagemaps() reads them.
 * Pages some other process already showed in use need no second look: walking page tables is
 * most of the cost of a `resident` pass, and shared libraries are mapped by many processes. */
static int queue_pagemap(struct scan_one *c, uint32_t slot, const struct lfile *f,
			 const struct map_entry *e)
{
	struct daemon *d = c->d;
	uint64_t vpage = e->start / d->page, pgoff = e->offset / d->page;
	uint64_t n = (e->end - e->start) / d->page;

	/* Pages past the file's end (or past the bitmap) cannot be locked: do not read them. */
	if (pgoff >= f->want_npages)
		return 0;
	uint64_t end = pgoff + MIN(n, f->want_npages - pgoff);
	for (uint64_t p = pgoff; p < end;) {
		uint64_t a = next_want_bit(f, p, end, false); /* a run of pages not wanted yet */
		if (a >= end)
			break;
		uint64_t b = next_want_bit(f, a, end, true);
		int r = push_pm(d, vpage + (a - pgoff), b - a, slot, a);
		if (r < 0)
			return r;
		p = b;
	}
	return 0;
}

/* Reads the queued ranges from /proc/PID/pagemap. Libraries sit side by side in the address
 * space, so one read of a window covers many mappings: a pread per mapping costs about 3 us of
 * kernel entry and page-table walk setup, more than the few hundred entries most of them hold.
 * A window stops at PAGEMAP_BATCH pages or where the next mapping is far away. */
static int read_pagemaps(struct scan_one *c)
{
	struct daemon *d = c->d;
	uint64_t win_start = 0, win_end = 0; /* virtual pages held in the buffer */

	if (!d->npm)
		return 0;
	if (!d->pagemap_buf) {
		d->pagemap_buf = malloc(PAGEMAP_BATCH * sizeof(uint64_t));
		if (!d->pagemap_buf)
			return -ENOMEM;
	}
	char path[48];
	snprintf(path, sizeof(path), "%s/pagemap", c->pid_dir);
	_cleanup_close_ int fd = openat(d->proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		/* pagemap is mode 0400 to its owner: CAP_SYS_PTRACE passes the ptrace check but not
		 * this one (that takes CAP_DAC_READ_SEARCH). Without it, another user's process
		 * counts as using all that it maps, as in `mapped` mode. */
		if (!(d->warned & WARNED_PAGEMAP)) {
			log_warning("cannot read %s/pagemap (other users' processes need "
				    "CAP_DAC_READ_SEARCH): locking what such processes map, not only "
				    "what they use (reported once)", c->pid_dir);
			d->warned |= WARNED_PAGEMAP;
		}
		for (uint32_t i = 0; i < d->npm; i++)
			file_want_set_range(file_at(&d->files, d->pm[i].slot), d->pm[i].pgoff,
					    d->pm[i].npages);
		return 0;
	}
	if (fd < 0)
		return -errno;
	for (uint32_t i = 0; i < d->npm; i++) {
		const struct pm_req *q = &d->pm[i];
		struct lfile *f = file_at(&d->files, q->slot);
		uint64_t run = 0; /* present pages just before v, not yet marked */
		for (uint64_t v = q->vpage; v < q->vpage + q->npages; v++) {
			if (v < win_start || v >= win_end) {
				/* Extend the window over following mappings that are close. */
				uint64_t end = q->vpage + q->npages;
				for (uint32_t k = i + 1; k < d->npm; k++) {
					const struct pm_req *nq = &d->pm[k];
					if (nq->vpage < end || nq->vpage - end > PAGEMAP_GAP ||
					    nq->vpage + nq->npages - v > PAGEMAP_BATCH)
						break;
					end = nq->vpage + nq->npages;
				}
				end = MIN(end, v + PAGEMAP_BATCH);
				ssize_t r = pread(fd, d->pagemap_buf, (end - v) * 8, (off_t)(v * 8));
				if (r <= 0) {
					int e = r < 0 ? -errno : 0;
					if (run) /* what was seen before the process went */
						file_want_set_range(f, q->pgoff + (v - q->vpage) - run,
								    run);
					return e;
				}
				win_start = v;
				win_end = v + (uint64_t)r / 8;
			}
			uint64_t pm = d->pagemap_buf[v - win_start];
			if ((pm & PM_PRESENT) && (pm & PM_FILE)) {
				run++;
				continue;
			}
			if (run)
				file_want_set_range(f, q->pgoff + (v - q->vpage) - run, run);
			run = 0;
		}
		if (run)
			file_want_set_range(f, q->pgoff + q->npages - run, run);
	}
	return 0;
}

static int add_pmap(struct proc *p, bool with_range, uint32_t slot, uint64_t pgoff, uint64_t npages)
{
	if (pgoff > UINT32_MAX || npages > UINT32_MAX)
		return 0; /* beyond 16 TiB: nothing prelockd could lock anyway */
	/* A library's code split in two VMAs (by mprotect, say) is one file to count. */
	if (!with_range && p->nmaps && p->slots[p->nmaps - 1] == slot)
		return 0;
	if (p->nmaps % 16 == 0) {
		uint32_t *n = realloc(p->slots, (p->nmaps + 16) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->slots = n;
		if (with_range) {
			struct prange *r = realloc(p->ranges, (p->nmaps + 16) * sizeof(*r));
			if (!r)
				return -ENOMEM;
			p->ranges = r;
		}
	}
	p->slots[p->nmaps] = slot;
	if (with_range)
		p->ranges[p->nmaps] = (struct prange){ (uint32_t)pgoff, (uint32_t)npages };
	p->nmaps++;
	return 0;
}

static int on_mapping(const struct map_entry *e, void *userdata)
{
	struct scan_one *c = userdata;
	struct daemon *d = c->d;
	bool created;

	if (!map_entry_is_exec_file(e))
		return 0;
	uint64_t dev = makedev(e->dev_major, e->dev_minor);
	int64_t s;
	if (!e->path) {
		/* Without its name (PROCMAP_QUERY, lazily): enough for a file already known. */
		s = file_table_find(&d->files, dev, e->inode);
		if (s < 0)
			return MAPS_NEED_NAME;
		created = false;
	} else {
		s = file_table_get(&d->files, dev, e->inode, e->path, &created);
		if (s < 0)
			return (int)s;
	}
	d->stats.mappings++;
	struct lfile *f = file_at(&d->files, (uint32_t)s);
	/* The latest process to map it, the likeliest to live on: if the daemon's own view of the
	 * path does not lead to the inode (another mount namespace), /proc/PID/root of it may. */
	f->ns_pid = c->p->pid;
	if (created)
		file_first_seen(d, f, e->deleted);
	else if (d->full_pass && f->eligible && f->fd < 0 && (!f->opened_once || !f->size) &&
		 file_open_verified(d, f) == 0)
		/* Its first open failed, or it was empty, or a reload let it in: retry now, before
		 * this pass reads its pages, so the pass can use them. */
		file_hold_or_close(d, f);
	int r = add_pmap(c->p, d->cfg.what == WHAT_MAPPED, (uint32_t)s, e->offset / d->page,
			 (e->end - e->start) / d->page);
	if (r < 0)
		return r;
	if (d->cfg.what == WHAT_RESIDENT && f->eligible && f->want_npages)
		return queue_pagemap(c, (uint32_t)s, f, e);
	return 0;
}

static int read_mappings(struct scan_one *c)
{
	struct daemon *d = c->d;
	char path[48];
	unsigned malformed = 0;

	snprintf(path, sizeof(path), "%s/maps", c->pid_dir);
	_cleanup_close_ int fd = openat(d->proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	c->p->nmaps = 0;
	d->npm = 0;
	if (d->use_query != 0) {
		int r = maps_query_fd_lazy(fd, on_mapping, c);
		if (r != -ENOTTY && r != -EINVAL) {
			d->use_query = 1;
			return r < 0 ? r : read_pagemaps(c);
		}
		if (d->use_query < 0)
			log_debug("PROCMAP_QUERY unsupported here, parsing maps as text");
		d->use_query = 0;
		c->p->nmaps = 0;
		d->npm = 0;
	}
	int r = buf_read_fd(&d->buf, fd);
	if (r < 0)
		return r;
	r = maps_parse_buf(d->buf.data, d->buf.len, on_mapping, c, &malformed);
	if (r == 0)
		r = read_pagemaps(c);
	if (malformed) {
		d->stats.maps_malformed += malformed;
		if (!(d->warned & WARNED_MALFORMED)) {
			log_warning("%s: %u malformed line(s) skipped, ignoring (reported once)", path,
				    malformed);
			d->warned |= WARNED_MALFORMED;
		}
	}
	return r;
}

static bool proc_is_critical(struct daemon *d, struct scan_one *c, const char *comm)
{
	char path[48], cg[1024];

	if (strv_contains(&d->cfg.critical_names, comm))
		return true;
	if (!d->cfg.critical_cgroups.n)
		return false;
	snprintf(path, sizeof(path), "%s/cgroup", c->pid_dir);
	if (buf_read_at(&d->buf, d->proc_fd, path) < 0)
		return false;
	if (parse_proc_cgroup(d->buf.data, d->buf.len, cg, sizeof(cg)) < 0)
		return false;
	return regex_list_match(&d->cfg.critical_cgroups, cg);
}

enum { SCAN_KEEP, SCAN_DROP };

/* Reads /proc/PID/stat into buf (NUL-terminated); returns its length or -errno. One read: the
 * kernel renders the whole line at once when the buffer holds it. (Keeping the descriptor for
 * the next pass would save the open, but each one pins about 4 KiB of kernel memory, its
 * seq_file buffer: 1.7 MiB for 400 processes, more than all of the daemon's own.) */
static ssize_t read_proc_stat(struct daemon *d, pid_t pid, char *buf, size_t len)
{
	char path[32];
	snprintf(path, sizeof(path), "%d/stat", (int)pid);
	_cleanup_close_ int fd = openat(d->proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

static int scan_pid(struct daemon *d, struct proc *p, bool full)
{
	struct scan_one c = { .d = d, .p = p };
	struct proc_stat st;
	char sbuf[2048];
	int r;

	snprintf(c.pid_dir, sizeof(c.pid_dir), "%d", (int)p->pid);
	ssize_t n = read_proc_stat(d, p->pid, sbuf, sizeof(sbuf));
	if (n < 0)
		return (int)n;
	/* A line that fills the buffer may be cut: no stat line is that long. */
	if (n == 0 || (size_t)n >= sizeof(sbuf) - 1 || parse_proc_stat(sbuf, (size_t)n, &st) < 0) {
		d->stats.procs_bad++;
		return -EBADMSG;
	}
	if (st.flags & PF_KTHREAD)
		return SCAN_DROP;
	uint64_t faults = st.minflt + st.majflt;
	if (!full && p->starttime == st.starttime && p->vsize == st.vsize && p->faults == faults)
		return SCAN_KEEP;

	d->stats.procs_read++;
	p->critical = proc_is_critical(d, &c, st.comm);
	if (d->cfg.only_critical && !p->critical) {
		p->nmaps = 0;
	} else {
		r = read_mappings(&c);
		/* The process may have gone between reading maps and pagemap: its maps still count. */
		if (r == -ESRCH || r == -ENOENT)
			r = c.p->nmaps ? 0 : r;
		if (r < 0)
			return r;
	}
	p->starttime = st.starttime;
	p->vsize = st.vsize;
	p->faults = faults;
	return SCAN_KEEP;
}

static void proc_free(struct proc *p)
{
	free(p->slots);
	free(p->ranges);
	p->slots = NULL;
	p->ranges = NULL;
	p->nmaps = 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* Numeric entries of the proc root, sorted. */
static int list_pids(struct daemon *d, pid_t **out, uint32_t *n)
{
	int dfd = openat(d->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	DIR *dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return -errno;
	}
	pid_t *pids = NULL;
	uint32_t cnt = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		char *end;
		long v = strtol(de->d_name, &end, 10);
		if (*end || v <= 0 || v > INT32_MAX || v == d->self_pid)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 512;
			pid_t *np = realloc(pids, cap * sizeof(*np));
			if (!np) {
				free(pids);
				closedir(dir);
				return -ENOMEM;
			}
			pids = np;
		}
		pids[cnt++] = (pid_t)v;
	}
	closedir(dir);
	/* qsort(NULL, 0, ...) is undefined behaviour, and pids stays NULL when there are none. */
	if (cnt > 1)
		qsort(pids, cnt, sizeof(*pids), cmp_pid);
	*out = pids;
	*n = cnt;
	return 0;
}

static void note_error(struct daemon *d, pid_t pid, int r)
{
	if (r == -ESRCH || r == -ENOENT) {
		d->stats.procs_vanished++; /* exited while we looked: normal */
	} else if (r == -EACCES || r == -EPERM) {
		d->stats.procs_denied++;
		if (!(d->warned & WARNED_DENIED)) {
			log_warning_errno(r, "cannot read the mappings of pid %d (needs CAP_SYS_PTRACE, and no "
					     "sandbox or LSM in the way), skipping such processes (reported "
					     "once)", (int)pid);
			d->warned |= WARNED_DENIED;
		}
	} else if (!(d->warned & WARNED_BAD_PROC)) {
		log_warning_errno(r, "pid %d: unreadable process data, ignoring (reported once)", (int)pid);
		d->warned |= WARNED_BAD_PROC;
	}
}

int scan_processes(struct daemon *d)
{
	pid_t *pids = NULL;
	uint32_t npids = 0, old = 0;
	bool full = d->force_full || d->full_every <= 1 || d->pass % d->full_every == 1;

	d->full_pass = full;
	d->procs_changed = true; /* until the scan shows otherwise */
	int r = list_pids(d, &pids, &npids);
	if (r < 0)
		return r;
	struct proc *np = calloc(npids ? npids : 1, sizeof(*np));
	if (!np) {
		free(pids);
		return -ENOMEM;
	}
	uint32_t n = 0;
	for (uint32_t i = 0; i < npids; i++) {
		while (old < d->nprocs && d->procs[old].pid < pids[i])
			proc_free(&d->procs[old++]);
		struct proc *p = &np[n];
		if (old < d->nprocs && d->procs[old].pid == pids[i])
			*p = d->procs[old++];
		else
			*p = (struct proc){ .pid = pids[i], .starttime = UINT64_MAX };
		d->stats.procs++;
		pass_progress(d, "scanning processes", i, npids);
		r = scan_pid(d, p, full);
		if (r == -ENOMEM) {
			proc_free(p);
			goto oom;
		}
		if (r == SCAN_KEEP) {
			n++;
			continue;
		}
		if (r < 0)
			note_error(d, p->pid, r);
		proc_free(p);
	}
	while (old < d->nprocs)
		proc_free(&d->procs[old++]);
	/* Every process kept was either read again or is unchanged: a new one is always read, and
	 * one gone leaves the count short. */
	d->procs_changed = d->stats.procs_read > 0 || n != d->nprocs;
	free(d->procs);
	free(pids);
	d->procs = np;
	d->nprocs = n;
	d->cap_procs = npids;
	d->force_full = false;
	return 0;
oom:
	/* Keep what was scanned; the rest is freed. The next pass tries again. */
	for (uint32_t i = 0; i < n; i++)
		proc_free(&np[i]);
	for (; old < d->nprocs; old++)
		proc_free(&d->procs[old]);
	free(np);
	free(pids);
	free(d->procs);
	d->procs = NULL;
	d->nprocs = 0;
	d->procs_changed = true;
	return -ENOMEM;
}

void procs_free(struct daemon *d)
{
	for (uint32_t i = 0; i < d->nprocs; i++)
		proc_free(&d->procs[i]);
	free(d->procs);
	d->procs = NULL;
	d->nprocs = 0;
}

/* Recomputes, for every file, how many processes map it, whether a critical one does, and (in
 * `mapped` mode) which pages are mapped. */
void scan_aggregate(struct daemon *d)
{
	struct file_table *t = &d->files;
	/* `mapped` rebuilds each file's page set from the process caches, unless no cache changed:
	 * then the sets are what they were, and the files' plans stay settled. */
	bool mapped = d->cfg.what == WHAT_MAPPED &&
		      (d->procs_changed || d->full_pass || d->want_rebuild);
	if (mapped)
		d->want_rebuild = false;

	for (uint32_t s = 0; s < t->nslots; s++) {
		struct lfile *f = &t->slots[s];
		if (!f->in_use)
			continue;
		f->nprocs = 0;
		f->critical = false;
		f->last_proc_mark = 0;
		if (mapped)
			file_want_clear(f);
	}
	for (uint32_t i = 0; i < d->nprocs; i++) {
		struct proc *p = &d->procs[i];
		for (uint32_t k = 0; k < p->nmaps; k++) {
			struct lfile *f = &t->slots[p->slots[k]];
			if (f->last_proc_mark != i + 1) {
				f->last_proc_mark = i + 1;
				f->nprocs++;
			}
			f->critical |= p->critical;
			f->last_seen_pass = d->pass;
			if (mapped && p->ranges && f->want_npages)
				file_want_set_range(f, p->ranges[k].pgoff, p->ranges[k].npages);
		}
	}
}
