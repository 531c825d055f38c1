/* Locking: open files by the safety rules, plan which page ranges of each file to hold, and keep
 * exact, page-rounded accounting of what is locked. Each locked range is its own read-only shared
 * mapping, sized exactly to what is locked, so the kernel's VmLck agrees with our count. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "daemon.h"
#include "log.h"
#include "select.h"

/* Gaps of up to this many pages between wanted pages are locked too: the kernel's fault-around
 * reads them anyway, and every separate range costs a VMA (vm.max_map_count is 65530). */
#define GAP_FILL_PAGES 16
/* A file is "sparse" when fewer than half its bytes are allocated on disk. */
#define SPARSE_MIN_PAGES 16

uint64_t compute_budget(const struct config *cfg, uint64_t memtotal_bytes, size_t page)
{
	uint64_t b = UINT64_MAX;
	if (cfg->max_total_bytes)
		b = cfg->max_total_bytes;
	if (cfg->max_total_percent > 0) {
		uint64_t p = (uint64_t)((double)memtotal_bytes * cfg->max_total_percent / 100.0);
		b = MIN(b, p);
	}
	if (b == UINT64_MAX)
		b = 0;
	return b / page * page;
}

void file_check_evaluate(struct daemon *d, struct lfile *f)
{
	if (f->always) {
		f->eligible = true;
		return;
	}
	if (f->deleted_only) {
		f->eligible = false;
		f->reason = REASON_DELETED;
	} else if (!regex_list_match(&d->cfg.include, f->path)) {
		f->eligible = false;
		f->reason = REASON_NOT_INCLUDED;
	} else if (regex_list_match(&d->cfg.exclude, f->path)) {
		f->eligible = false;
		f->reason = REASON_EXCLUDED;
	} else {
		f->eligible = true;
		if (f->reason == REASON_NOT_INCLUDED || f->reason == REASON_EXCLUDED)
			f->reason = REASON_NONE;
	}
}

static bool is_sparse(const struct daemon *d, uint64_t size, uint64_t blocks_bytes)
{
	return size > SPARSE_MIN_PAGES * d->page && blocks_bytes < size / 2;
}

/* The path to reach the file by: its own path, or the same path inside the mount namespace of
 * the process that maps it. */
static const char *file_path_via(struct daemon *d, const struct lfile *f, bool via_ns, char *buf,
				 size_t len)
{
	if (!via_ns)
		return f->path;
	if ((size_t)snprintf(buf, len, "%s/%d/root%s", d->proc_root, (int)f->ns_pid, f->path) >= len)
		return NULL;
	return buf;
}

/* Opens by the safety rules and checks that the result is a regular file and the very inode the
 * process maps. Returns the fd or -errno, with *reason set for a file that is not it. */
static int open_checked(const char *path, const struct lfile *f, struct stat *st,
			enum file_reason *reason)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
	*reason = REASON_OPEN_FAILED;
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st->st_mode)) {
		*reason = REASON_NOT_REGULAR;
		close(fd);
		return -EBADFD;
	}
	if ((uint64_t)st->st_dev != f->dev || (uint64_t)st->st_ino != f->ino) {
		*reason = REASON_REPLACED;
		close(fd);
		return -ESTALE;
	}
	*reason = REASON_NONE;
	return fd;
}

/* Sizes the page bitmap (`mapped`, `resident`) to the file; a bitmap that grew has pages the
 * process caches may show, so `mapped` fills its page sets again. */
static void want_fit_size(struct daemon *d, struct lfile *f)
{
	uint32_t had = f->want_npages;
	(void)file_want_reserve(f, MIN(round_up(f->size, d->page) / d->page,
				       (uint64_t)MAX_WANT_PAGES));
	if (f->want_npages != had)
		d->want_rebuild = true;
}

int file_open_verified(struct daemon *d, struct lfile *f)
{
	char buf[4200];
	/* Zeroed for clang-analyzer: open_checked() fills it whenever it returns a descriptor, but
	 * the analyzer allows a failed fstat() with errno 0, which would return 0. */
	struct stat st = { 0 };
	enum file_reason reason;
	int fd;

	if (f->fd >= 0)
		return 0;
	/* Our own view first, even for a process in another mount namespace: a sandboxed daemon
	 * (PrivateTmp= and friends) is in a namespace of its own, yet sees the same /usr. The
	 * inode check makes a wrong file harmless; then try the process's own view. */
	fd = open_checked(f->path, f, &st, &reason);
	f->own_path = fd >= 0;
	if (fd < 0 && f->ns_pid && reason != REASON_NOT_REGULAR) {
		const char *p = file_path_via(d, f, true, buf, sizeof(buf));
		fd = p ? open_checked(p, f, &st, &reason) : -ENAMETOOLONG;
	}
	if (fd < 0) {
		d->stats.open_failed++;
		if (fd == -EMFILE || fd == -ENFILE) {
			if (!(d->warned & WARNED_NOFILE))
				log_warning_errno(fd, "out of file descriptors; raise LimitNOFILE=, ignoring");
			d->warned |= WARNED_NOFILE;
		}
		f->open_errno = -fd;
		f->reason = reason;
		return fd;
	}
	d->stats.files_opened++;
	f->checked_pass = d->pass;
	if ((uint64_t)st.st_size != f->size)
		f->settled = false;
	f->size = (uint64_t)st.st_size;
	f->blocks_bytes = (uint64_t)st.st_blocks * 512;
	f->opened_once = true;
	if (is_sparse(d, f->size, f->blocks_bytes)) {
		f->reason = REASON_SPARSE;
		close(fd);
		return -EFBIG;
	}
	d->fds_held++;
	if (f->reason == REASON_OPEN_FAILED || f->reason == REASON_SPARSE ||
	    f->reason == REASON_REPLACED || f->reason == REASON_NOT_REGULAR)
		f->reason = REASON_NONE;
	/* Whichever open first succeeds sizes the page bitmap (`mapped`, `resident`). */
	want_fit_size(d, f);
	f->fd = fd;
	return 0;
}

void file_close(struct daemon *d, struct lfile *f)
{
	if (!f->npieces)
		watch_remove(d, f); /* a file held by its mappings alone stays watched */
	if (f->fd >= 0) {
		close(f->fd);
		d->fds_held--;
	}
	f->fd = -1;
}

/* A locked file needs no descriptor: its mappings hold it. The descriptor only makes changes to
 * it cheap to see (fstat). Under a low RLIMIT_NOFILE, the scan of /proc comes first. */
void file_hold_or_close(struct daemon *d, struct lfile *f)
{
	if (f->fd < 0 || d->fds_held <= d->fd_budget)
		return;
	file_close(d, f);
	if (!(d->warned & WARNED_NOFILE)) {
		log_warning("RLIMIT_NOFILE leaves room for %u open files: locked files beyond that are "
			    "held by their mappings alone and watched by path (raise LimitNOFILE=), "
			    "reported once", d->fd_budget);
		d->warned |= WARNED_NOFILE;
	}
}

/* A file's locked pieces changed: the state file is out of date, and its plan must be made again
 * before it can count as settled. */
static void pieces_changed(struct daemon *d, struct lfile *f)
{
	d->locked_set_changed = true;
	f->settled = false;
}

static void unlock_piece(struct daemon *d, struct lfile *f, uint32_t i)
{
	struct piece *p = &f->pieces[i];

	/* munmap also unlocks; the pages stay in the page cache, just evictable again. */
	munmap(p->addr, p->len);
	f->locked_bytes -= p->len;
	d->locked_bytes -= p->len;
	d->npieces--;
	memmove(p, p + 1, (f->npieces - i - 1) * sizeof(*p));
	f->npieces--;
	pieces_changed(d, f);
}

void file_unlock_all(struct daemon *d, struct lfile *f)
{
	if (f->npieces && log_enabled(LOG_DEBUG)) {
		struct log_fields lf = { .path = f->path, .bytes = (int64_t)f->locked_bytes, .files = -1 };
		log_full(LOG_DEBUG, &lf, 0, "unlocked %s (%llu bytes)", f->path,
			 (unsigned long long)f->locked_bytes);
	}
	while (f->npieces)
		unlock_piece(d, f, f->npieces - 1);
	file_close(d, f);
}

/* `resident` grows a file's locked set a few pages at a time. Growing the piece that ends where
 * the new range starts keeps one VMA where a new mapping would add one (vm.max_map_count). With
 * the VMA locked, mremap() populates and locks the new part itself. */
static int extend_piece(struct daemon *d, struct lfile *f, uint64_t off, uint64_t len)
{
	for (uint32_t i = 0; i < f->npieces; i++) {
		struct piece *p = &f->pieces[i];
		if (p->off + p->len != off)
			continue;
		void *a = mremap(p->addr, p->len, p->len + len, MREMAP_MAYMOVE);
		if (a == MAP_FAILED)
			return -ENOENT; /* map it on its own instead */
		p->addr = a;
		p->len += len;
		f->locked_bytes += len;
		d->locked_bytes += len;
		pieces_changed(d, f);
		/* Said again, to learn whether every page could be locked; counted either way, as
		 * the kernel counts the VMA. */
		return mlock((char *)a + p->len - len, len) < 0 ? -errno : 0;
	}
	return -ENOENT;
}

static int lock_range_now(struct daemon *d, struct lfile *f, uint64_t off, uint64_t len)
{
	int r = extend_piece(d, f, off, len);
	if (r != -ENOENT)
		return r;
	if (GROW_ARRAY(f->pieces, f->npieces, f->cap_pieces, 2) < 0)
		return -ENOMEM;
	void *a = mmap(NULL, len, PROT_READ, MAP_SHARED, f->fd, (off_t)off);
	if (a == MAP_FAILED)
		return -errno;
	/* Under mlockall(MCL_FUTURE|MCL_ONFAULT) the new mapping is already lock-on-fault; mlock()
	 * turns that into populate-and-lock. */
	if (mlock(a, len) < 0) {
		r = -errno;
		munmap(a, len);
		return r;
	}
	uint32_t i = f->npieces;
	while (i > 0 && f->pieces[i - 1].off > off)
		i--;
	memmove(&f->pieces[i + 1], &f->pieces[i], (f->npieces - i) * sizeof(struct piece));
	f->pieces[i] = (struct piece){ .off = off, .len = len, .addr = a };
	f->npieces++;
	f->locked_bytes += len;
	d->locked_bytes += len;
	d->npieces++;
	pieces_changed(d, f);
	return 0;
}

/* Under a memory cgroup limit, pages that mlock() reads in are charged to the daemon, and at
 * the limit the kernel may retry the populate without end. So lock a chunk at a time, each only
 * while the cgroup has room for it; consecutive chunks grow one mapping (extend_piece). */
#define MEMCG_CHUNK (UINT64_C(1) << 20)

int file_lock_range(struct daemon *d, struct lfile *f, uint64_t off, uint64_t len)
{
	/* The budget is a hard limit, checked here where bytes are locked, not only in planning. */
	if (d->locked_bytes + len > d->budget_bytes)
		return -EDQUOT;
	if (!d->memcg.limited)
		return lock_range_now(d, f, off, len);
	while (len) {
		uint64_t n = MIN(len, MEMCG_CHUNK);
		uint64_t room = d->memcg.full ? 0 : memcg_room(&d->memcg);
		if (room < n)
			n = room / d->page * d->page;
		if (!n) {
			d->memcg.full = true; /* until the next pass reads the limits again */
			return -ENOMEM;
		}
		int r = lock_range_now(d, f, off, n);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* --- planning ------------------------------------------------------------------------------ */

static uint64_t file_npages(const struct daemon *d, const struct lfile *f)
{
	return round_up(f->size, d->page) / d->page;
}

static bool whole_file(const struct daemon *d, const struct lfile *f)
{
	return f->always || d->cfg.what == WHAT_WHOLE;
}

static int push_run(struct daemon *d, uint64_t off, uint64_t len)
{
	if (GROW_ARRAY(d->runs, d->nruns, d->cap_runs, 64) < 0)
		return -ENOMEM;
	d->runs[d->nruns++] = (struct run){ off, len };
	return 0;
}

/* Fills d->runs with the byte ranges the file should hold, in offset order, max_file_size bytes
 * at most: all of it for `whole` (and `always` files), else the wanted pages with small gaps
 * filled. Returns the bytes planned. */
static uint64_t plan_runs(struct daemon *d, struct lfile *f)
{
	uint64_t cap = d->cfg.max_file_size_bytes / d->page * d->page, total = 0;
	uint64_t end = file_npages(d, f);
	uint64_t run_start = 0, run_end = 0;
	bool in_run = false;

	d->nruns = 0;
	if (whole_file(d, f)) {
		uint64_t len = MIN(end * d->page, cap);
		if (len && push_run(d, 0, len) == 0)
			total = len;
		return total;
	}
	end = MIN(end, (uint64_t)f->want_npages);
	for (uint64_t p = 0; p <= end && total < cap; p++) {
		if (p < end && p % 64 == 0 && f->want_bits[p / 64] == 0) {
			p = MIN(p + 63, end - 1); /* the loop's p++ must still reach end */
			continue;
		}
		if (p < end && !file_want_test(f, p))
			continue;
		if (p < end && in_run && p - run_end <= GAP_FILL_PAGES) {
			run_end = p + 1;
			continue;
		}
		if (in_run) {
			uint64_t len = MIN((run_end - run_start) * d->page, cap - total);
			if (push_run(d, run_start * d->page, len) < 0)
				break;
			total += len;
		}
		in_run = true;
		run_start = p;
		run_end = p + 1;
	}
	return total;
}

/* Keeps the parts of the file's pieces that lie in d->runs; with apply, unmaps the rest (a piece
 * may split in two). Returns the bytes kept. */
static uint64_t trim_to_runs(struct daemon *d, struct lfile *f, bool apply)
{
	struct piece *out = NULL;
	uint32_t nout = 0, j = 0;
	uint64_t kept = 0;

	if (apply && f->npieces) {
		out = malloc((f->npieces + d->nruns) * sizeof(*out));
		if (!out)
			return f->locked_bytes; /* keep everything; try again next pass */
	}
	for (uint32_t i = 0; i < f->npieces; i++) {
		const struct piece *p = &f->pieces[i];
		uint64_t ps = p->off, pe = p->off + p->len, pos = ps;
		while (j < d->nruns && d->runs[j].off + d->runs[j].len <= ps)
			j++;
		for (uint32_t k = j; k < d->nruns && d->runs[k].off < pe; k++) {
			uint64_t a = MAX(ps, d->runs[k].off), b = MIN(pe, d->runs[k].off + d->runs[k].len);
			if (apply && a > pos)
				munmap((char *)p->addr + (pos - ps), a - pos);
			if (apply)
				out[nout++] = (struct piece){ a, b - a, (char *)p->addr + (a - ps) };
			kept += b - a;
			pos = b;
		}
		if (apply && pos < pe)
			munmap((char *)p->addr + (pos - ps), pe - pos);
	}
	if (apply) {
		uint64_t dropped = f->locked_bytes - kept;
		if (dropped || nout != f->npieces)
			pieces_changed(d, f);
		d->locked_bytes -= dropped;
		d->npieces = d->npieces - f->npieces + nout;
		f->locked_bytes = kept;
		free(f->pieces);
		f->pieces = out;
		f->npieces = f->cap_pieces = nout;
		if (!nout) {
			free(out);
			f->pieces = NULL;
		}
	}
	return kept;
}

/* Locks the parts of d->runs that no piece holds yet. Returns 0 or the first error. */
static int add_runs(struct daemon *d, struct lfile *f)
{
	uint32_t i = 0;
	for (uint32_t k = 0; k < d->nruns; k++) {
		uint64_t pos = d->runs[k].off, end = pos + d->runs[k].len;
		while (pos < end) {
			while (i < f->npieces && f->pieces[i].off + f->pieces[i].len <= pos)
				i++;
			uint64_t gap_end = i < f->npieces ? MIN(end, f->pieces[i].off) : end;
			if (gap_end > pos) {
				int r = file_lock_range(d, f, pos, gap_end - pos);
				if (r < 0)
					return r;
			}
			pos = i < f->npieces && f->pieces[i].off < end
				      ? MAX(gap_end, f->pieces[i].off + f->pieces[i].len)
				      : end;
		}
	}
	return 0;
}

/* Truncation unmaps pages from every mapping, ours too; the VMA stays locked but empty, and a
 * file grown back would stay unlocked. mlock() again faults the pages in and locks them; on pages
 * still present it only walks the page tables. */
static void file_repopulate(struct lfile *f)
{
	for (uint32_t i = 0; i < f->npieces; i++)
		(void)mlock(f->pieces[i].addr, f->pieces[i].len);
}

/* A file whose size changed under us: pages past a new end are gone (and touching them would
 * SIGBUS, which we never do); unmap them so the accounting stays true. */
static int file_refresh(struct daemon *d, struct lfile *f, bool *gone)
{
	struct stat st;
	*gone = false;
	f->checked_pass = d->pass;
	if (f->fd >= 0 ? fstat(f->fd, &st) < 0 : file_stat_by_path(d, f, &st) < 0)
		return 0; /* held by its mappings alone, and its path leads elsewhere: nothing to see */
	if (st.st_nlink == 0)
		*gone = true;
	/* Grown with holes (truncate -s, a hole punched): never lock it because it is mapped. A
	 * punched hole drops pages from our mappings without changing the size: fewer blocks. */
	bool fewer_blocks = (uint64_t)st.st_blocks * 512 < f->blocks_bytes;
	if (st.st_nlink == 0 || fewer_blocks || (uint64_t)st.st_size != f->size)
		f->settled = false;
	f->blocks_bytes = (uint64_t)st.st_blocks * 512;
	if (is_sparse(d, (uint64_t)st.st_size, f->blocks_bytes)) {
		f->size = (uint64_t)st.st_size;
		f->reason = REASON_SPARSE;
		return 0;
	}
	uint64_t size = (uint64_t)st.st_size;
	if (size == f->size) {
		if (fewer_blocks)
			file_repopulate(f);
		return 0;
	}
	log_debug("%s: size changed from %llu to %llu bytes", f->path, (unsigned long long)f->size,
		  (unsigned long long)size);
	f->size = size;
	uint64_t end = round_up(size, d->page);
	for (uint32_t i = f->npieces; i > 0; i--) {
		struct piece *p = &f->pieces[i - 1];
		if (p->off >= end) {
			unlock_piece(d, f, i - 1);
		} else if (p->off + p->len > end) {
			uint64_t cut = p->off + p->len - end;
			munmap((char *)p->addr + (p->len - cut), cut);
			p->len -= cut;
			f->locked_bytes -= cut;
			d->locked_bytes -= cut;
			pieces_changed(d, f);
		}
	}
	want_fit_size(d, f);
	file_repopulate(f);
	return 0;
}

/* stat() of the file by its path, when that still leads to this very inode. */
int file_stat_by_path(struct daemon *d, const struct lfile *f, struct stat *st)
{
	char buf[4200];
	const char *path = file_path_via(d, f, !f->own_path && f->ns_pid, buf, sizeof(buf));
	if (!path || stat(path, st) < 0)
		return -ENOENT;
	if ((uint64_t)st->st_dev != f->dev || (uint64_t)st->st_ino != f->ino || !S_ISREG(st->st_mode))
		return -ESTALE;
	return 0;
}

/* Replaced or deleted on disk: the path no longer leads to this inode. */
static bool file_replaced(struct daemon *d, struct lfile *f)
{
	struct stat st;
	char buf[4200];
	const char *path = file_path_via(d, f, !f->own_path && f->ns_pid, buf, sizeof(buf));
	if (!path || stat(path, &st) < 0)
		return true;
	return (uint64_t)st.st_dev != f->dev || (uint64_t)st.st_ino != f->ino;
}

/* Brings `always` files into the table; they need no process to map them. */
static void track_always(struct daemon *d)
{
	for (uint32_t s = 0; s < d->files.nslots; s++)
		d->files.slots[s].always = false;
	for (size_t i = 0; i < d->cfg.always.n; i++) {
		_cleanup_free_ char *path = realpath(d->cfg.always.v[i], NULL);
		struct stat st;
		bool created;
		/* O_NOFOLLOW refuses symlinks: resolve them here, where the administrator named them. */
		if (!path || stat(path, &st) < 0) {
			log_debug("always: %s: %s, ignoring", d->cfg.always.v[i], strerror(errno));
			continue;
		}
		int64_t s = file_table_get(&d->files, (uint64_t)st.st_dev, (uint64_t)st.st_ino, path,
					   &created);
		if (s < 0)
			continue;
		struct lfile *f = file_at(&d->files, (uint32_t)s);
		f->always = true;
		f->eligible = true;
		if (created || (!f->opened_once && f->fd < 0))
			(void)file_open_verified(d, f);
	}
}

/* Decides what each file should be before selection. Returns false when it is no candidate. */
static bool file_candidate(struct daemon *d, uint32_t slot, struct candidate *c)
{
	struct lfile *f = file_at(&d->files, slot);
	bool gone = false;

	if (f->fd >= 0 || f->npieces) {
		/* A watched file is looked at when inotify saw something (which may be newer than
		 * an open in this pass), and on full passes unless this pass opened it already. */
		if (f->changed || ((d->full_pass || f->wd <= 0) && f->checked_pass != d->pass))
			(void)file_refresh(d, f, &gone);
		f->changed = false;
		/* Watches are set up from the second pass on: the first one is for getting to
		 * READY=1, and until then every file is looked at each pass anyway. */
		if (f->npieces && f->wd <= 0 && d->ready_sent && !gone)
			watch_add(d, f);
	}
	else if (f->eligible && f->opened_once && f->nprocs && (f->size == 0 || d->full_pass))
		/* Not held open: an empty file may have been written since (cp truncates and rewrites
		 * in place), and any other may have changed; look again now and then. */
		(void)file_open_verified(d, f);
	if (f->nprocs == 0 && !f->always) {
		/* Unmapped: a replaced or deleted inode can never be mapped again; the rest waits
		 * `keep` passes. */
		bool expired = d->pass - f->last_seen_pass > d->cfg.keep_scans;
		if (!f->npieces || gone || expired || file_replaced(d, f)) {
			file_unlock_all(d, f);
			file_table_remove(&d->files, slot);
			return false;
		}
		f->reason = REASON_UNMAPPED;
		f->plan_bytes = f->locked_bytes;
		*c = (struct candidate){ .slot = slot, .want_bytes = f->locked_bytes,
					 .keep_bytes = f->locked_bytes };
		return true;
	}
	if (f->eligible && !f->opened_once && f->fd < 0 && d->full_pass)
		(void)file_open_verified(d, f);
	bool usable = f->eligible && f->opened_once && f->reason != REASON_SPARSE &&
		      f->reason != REASON_REPLACED && f->reason != REASON_NOT_REGULAR;
	if (!usable) {
		if (f->npieces)
			file_unlock_all(d, f);
		f->plan_bytes = 0;
		return false;
	}
	uint64_t want, kept;
	if (f->settled && f->settled_always == f->always) {
		want = kept = f->locked_bytes; /* as planned last time, and all of it locked */
	} else {
		want = plan_runs(d, f);
		kept = trim_to_runs(d, f, false);
		/* Pieces inside the plan (kept == locked) and covering it (want == kept). */
		f->settled = want == kept && kept == f->locked_bytes && !d->dry_run;
		f->settled_always = f->always;
	}
	f->tier = f->always ? 2 : f->critical ? 1 : 0;
	*c = (struct candidate){ .slot = slot, .tier = f->tier, .nprocs = f->nprocs,
				 .want_bytes = want, .keep_bytes = kept };
	return true;
}

static void report_lock_failure(struct daemon *d, struct lfile *f, int r)
{
	f->lock_errno = -r;
	f->reason = REASON_LOCK_FAILED;
	d->stats.lock_failed++;
	if (d->warned & WARNED_LOCK_FAILED)
		return;
	d->warned |= WARNED_LOCK_FAILED;
	if (r == -ENOMEM && d->memcg.full)
		log_warning_errno(r, "cannot lock %s: the daemon's memory cgroup %s is near its "
				     "limit (it stops %llu MiB short, where mlock() would stall); "
				     "keeping what is locked, will retry (reported once)",
				  f->path, d->memcg.dir[0], (unsigned long long)(d->memcg.margin >> 20));
	else if (r == -ENOMEM || r == -EAGAIN)
		log_warning_errno(r, "cannot lock %s: out of lockable memory (memory cgroup limit, "
				     "RLIMIT_MEMLOCK or vm.max_map_count); keeping what is locked, "
				     "will retry (reported once)", f->path);
	else
		log_warning_errno(r, "cannot lock %s, ignoring (reported once)", f->path);
}

static void apply_full(struct daemon *d, struct lfile *f)
{
	uint64_t before = f->locked_bytes;

	if (f->fd < 0 && file_open_verified(d, f) < 0)
		return;
	plan_runs(d, f);
	int r = add_runs(d, f);
	if (r < 0)
		report_lock_failure(d, f, r);
	else if (f->reason == REASON_LOCK_FAILED)
		f->reason = REASON_NONE;
	if (f->locked_bytes != before && log_enabled(LOG_DEBUG)) {
		struct log_fields lf = { .path = f->path, .bytes = (int64_t)f->locked_bytes, .files = -1 };
		log_full(LOG_DEBUG, &lf, 0, "locked %s: %llu bytes in %u range(s), %u process(es)",
			 f->path, (unsigned long long)f->locked_bytes, f->npieces, f->nprocs);
	}
	if (!f->npieces)
		file_close(d, f);
	else
		file_hold_or_close(d, f);
}

int lock_pass(struct daemon *d)
{
	struct file_table *t = &d->files;
	struct candidate *cand;
	uint32_t n = 0;

	track_always(d);
	watch_drain(d);
	cand = malloc((t->nslots ? t->nslots : 1) * sizeof(*cand));
	if (!cand)
		return -ENOMEM;
	for (uint32_t s = 0; s < t->nslots; s++)
		if (t->slots[s].in_use && file_candidate(d, s, &cand[n]))
			n++;
	select_by_budget(cand, n, d->budget_bytes);

	/* Unlock first, so the locked total never passes the budget, not even for a moment. */
	for (uint32_t i = 0; i < n; i++) {
		struct lfile *f = file_at(t, cand[i].slot);
		if (f->reason == REASON_UNMAPPED && cand[i].decision != DECIDE_DROP)
			continue;
		if (cand[i].decision == DECIDE_DROP) {
			f->plan_bytes = 0;
			f->reason = cand[i].want_bytes ? REASON_BUDGET : REASON_EMPTY;
			if (!d->dry_run)
				file_unlock_all(d, f);
		} else {
			f->plan_bytes = cand[i].decision == DECIDE_FULL ? cand[i].want_bytes
									: cand[i].keep_bytes;
			f->reason = cand[i].decision == DECIDE_KEEP ? REASON_BUDGET_PARTLY
				    : f->plan_bytes	    ? REASON_NONE
								    : REASON_EMPTY;
			/* Pieces all inside the plan (kept == locked): nothing to trim. */
			if (!d->dry_run && cand[i].keep_bytes < f->locked_bytes) {
				plan_runs(d, f);
				trim_to_runs(d, f, true);
			}
		}
	}
	for (uint32_t i = 0; i < n && !d->dry_run; i++) {
		struct lfile *f = file_at(t, cand[i].slot);
		pass_progress(d, "locking files", i, n);
		if (cand[i].decision == DECIDE_FULL && f->reason != REASON_UNMAPPED &&
		    cand[i].want_bytes > f->locked_bytes)
			apply_full(d, f);
	}
	free(cand);

	d->locked_files = 0;
	for (uint32_t s = 0; s < t->nslots; s++) {
		struct lfile *f = &t->slots[s];
		if (f->in_use && f->npieces)
			d->locked_files++;
		else if (f->in_use)
			file_close(d, f); /* a descriptor is held only while something is locked */
	}
	return 0;
}

void lock_release_all(struct daemon *d)
{
	for (uint32_t s = 0; s < d->files.nslots; s++)
		if (d->files.slots[s].in_use)
			file_unlock_all(d, &d->files.slots[s]);
}

/* VmLck of the daemon in kB, read into the stack: a heap allocation here could grow a locked
 * mapping and change the very number being read. -1 when unreadable. */
static long long read_vmlck_kb(void)
{
	char buf[4096];
	_cleanup_close_ int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nVmLck:");
	return p ? strtoll(p + 8, NULL, 10) : -1;
}

/* Sums the daemon's locked VMAs in smaps: all of them, and the bytes of ours inside them. */
static int smaps_locked(struct daemon *d, unsigned long long *all_locked,
			unsigned long long *kernel_bytes, unsigned long long *kernel_rss)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	unsigned long long start = 0, end = 0, rss_kb = 0, ours = 0;

	*all_locked = *kernel_bytes = *kernel_rss = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		if (sscanf(line, "%llx-%llx ", &a, &b) == 2) {
			start = a;
			end = b;
			/* The kernel may merge two of our mappings into one VMA (same file, adjacent
			 * addresses and offsets), or hold one of ours in several: count overlaps. */
			ours = 0;
			for (uint32_t s = 0; s < d->files.nslots; s++) {
				struct lfile *lf = &d->files.slots[s];
				for (uint32_t i = 0; lf->in_use && i < lf->npieces; i++) {
					uintptr_t pa = (uintptr_t)lf->pieces[i].addr;
					uintptr_t pe = pa + lf->pieces[i].len;
					if (pa < end && pe > start)
						ours += MIN(end, pe) - MAX(start, pa);
				}
			}
		} else if (sscanf(line, "Rss: %llu kB", &rss_kb) == 1) {
			continue;
		} else if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " lo")) {
			*all_locked += end - start;
			*kernel_bytes += ours;
			if (ours == end - start)
				*kernel_rss += rss_kb * 1024;
		}
	}
	return 0;
}

/* Debug builds: ask the kernel what this process holds locked in our ranges (smaps VmFlags "lo",
 * Rss), and compare with our count. smaps' Locked: is PSS-weighted, so it is not used. */
int lock_verify_accounting(struct daemon *d)
{
	unsigned long long all_locked = 0, kernel_bytes = 0, kernel_rss = 0;
	long long vmlck_kb = -1, before;

	/* Reading smaps allocates (stdio), and under mlockall() a grown heap is a grown locked
	 * mapping: VmLck read before and after must agree, or the two views are of different
	 * moments. The second round reuses the freed memory. */
	for (int round = 0; round < 3; round++) {
		before = read_vmlck_kb();
		int r = smaps_locked(d, &all_locked, &kernel_bytes, &kernel_rss);
		if (r < 0)
			return r;
		vmlck_kb = read_vmlck_kb();
		if (vmlck_kb == before)
			break;
	}
	/* VmLck counts every locked VMA, ours and the daemon's own (mlockall): the two views must
	 * agree, and what is left after our own ranges is the daemon itself. */
	if (vmlck_kb < 0 || (unsigned long long)vmlck_kb * 1024 != all_locked) {
		log_error("accounting mismatch: VmLck is %lld kB, locked VMAs in smaps add up to %llu kB",
			  vmlck_kb, all_locked / 1024);
		return -EIO;
	}
	if (kernel_bytes != d->locked_bytes) {
		log_error("accounting mismatch: kernel reports %llu bytes in locked ranges, we count %llu",
			  kernel_bytes, (unsigned long long)d->locked_bytes);
		return -EIO;
	}
	if (d->locked_bytes > d->budget_bytes) {
		log_error("budget exceeded: %llu > %llu bytes", (unsigned long long)d->locked_bytes,
			  (unsigned long long)d->budget_bytes);
		return -EIO;
	}
	log_debug("accounting verified: %llu bytes locked (%llu resident), VmLck %lld kB of which "
		  "%llu kB the daemon itself", kernel_bytes, kernel_rss, vmlck_kb,
		  (unsigned long long)vmlck_kb - kernel_bytes / 1024);
	return 0;
}
