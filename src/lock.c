/* Locking ranges of files, with exact, page-rounded accounting. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fileopen.h"
#include "log.h"
#include "util.h"

/* A file's locked pieces changed: the state file is out of date, and its plan must be made again
 * before it can count as settled. */
static void pieces_changed(struct lockset *ls, struct lfile *f)
{
	ls->changed = true;
	f->settled = false;
}

static void unlock_piece(struct lockset *ls, struct lfile *f, uint32_t i)
{
	struct piece *p = &f->pieces[i];

	/* munmap also unlocks; the pages stay in the page cache, just evictable again. */
	munmap(p->addr, p->len);
	f->locked_bytes -= p->len;
	ls->locked_bytes -= p->len;
	memmove(p, p + 1, (f->npieces - i - 1) * sizeof(*p));
	f->npieces--;
	pieces_changed(ls, f);
}

void lock_unlock_file(struct lockset *ls, struct lfile *f)
{
	if (f->npieces && log_enabled(LOG_DEBUG)) {
		struct log_fields lf = { .path = f->path, .bytes = (int64_t)f->locked_bytes, .files = -1 };
		log_full(LOG_DEBUG, &lf, 0, "unlocked %s (%llu bytes)", f->path,
			 (unsigned long long)f->locked_bytes);
	}
	while (f->npieces)
		unlock_piece(ls, f, f->npieces - 1);
	file_close(ls, f);
}

/* `resident` grows a file's locked set a few pages at a time. Growing the piece that ends where
 * the new range starts keeps one VMA where a new mapping would add one (vm.max_map_count). With
 * the VMA locked, mremap() populates and locks the new part itself. */
static int extend_piece(struct lockset *ls, struct lfile *f, uint64_t off, uint64_t len)
{
	for (uint32_t i = 0; i < f->npieces; i++) {
		struct piece *p = &f->pieces[i];
		if (p->off + p->len != off)
			continue;
		void *a = mremap(p->addr, p->len, p->len + len, MREMAP_MAYMOVE);
		if (a == MAP_FAILED)
			return -ENOENT; /* map it on its own instead */
		p->addr = a;
		/* Said again, to learn whether every page could be locked. If not, shrink back
		 * (in place, which cannot fail): a locked range is counted only when all of it is
		 * resident, which the debug build checks. */
		if (mlock((char *)a + p->len, len) < 0) {
			int r = -errno;
			(void)mremap(a, p->len + len, p->len, 0);
			return r;
		}
		p->len += len;
		f->locked_bytes += len;
		ls->locked_bytes += len;
		pieces_changed(ls, f);
		return 0;
	}
	return -ENOENT;
}

static int lock_range_now(struct lockset *ls, struct lfile *f, uint64_t off, uint64_t len)
{
	int r = extend_piece(ls, f, off, len);
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
	ls->locked_bytes += len;
	pieces_changed(ls, f);
	return 0;
}

/* Under a memory cgroup limit, pages that mlock() reads in are charged to the daemon, and at
 * the limit the kernel may retry the populate without end. So lock a chunk at a time, each only
 * while the cgroup has room for it; consecutive chunks grow one mapping (extend_piece). */
#define MEMCG_CHUNK (UINT64_C(1) << 20)

int lock_range(struct lockset *ls, struct lfile *f, uint64_t off, uint64_t len)
{
	/* The budget is a hard limit, checked here where bytes are locked, not only in planning. */
	if (ls->locked_bytes + len > ls->budget_bytes)
		return -EDQUOT;
	if (!ls->memcg.limited)
		return lock_range_now(ls, f, off, len);
	while (len) {
		uint64_t n = MIN(len, MEMCG_CHUNK);
		uint64_t room = ls->memcg.full ? 0 : memcg_room(&ls->memcg);
		if (room < n)
			n = room / ls->page * ls->page;
		if (!n) {
			ls->memcg.full = true; /* until the next pass reads the limits again */
			return -ENOMEM;
		}
		int r = lock_range_now(ls, f, off, n);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

int lock_add_runs(struct lockset *ls, struct lfile *f, const struct runs *r)
{
	uint32_t i = 0;
	for (uint32_t k = 0; k < r->n; k++) {
		uint64_t pos = r->v[k].off, end = pos + r->v[k].len;
		while (pos < end) {
			while (i < f->npieces && f->pieces[i].off + f->pieces[i].len <= pos)
				i++;
			uint64_t gap_end = i < f->npieces ? MIN(end, f->pieces[i].off) : end;
			if (gap_end > pos) {
				int e = lock_range(ls, f, pos, gap_end - pos);
				if (e < 0)
					return e;
			}
			pos = i < f->npieces && f->pieces[i].off < end
				      ? MAX(gap_end, f->pieces[i].off + f->pieces[i].len)
				      : end;
		}
	}
	return 0;
}

uint64_t lock_trim(struct lockset *ls, struct lfile *f, const struct runs *r, bool apply)
{
	struct piece *out = NULL;
	uint32_t nout = 0, j = 0;
	uint64_t kept = 0;

	if (apply && f->npieces) {
		out = malloc((f->npieces + r->n) * sizeof(*out));
		if (!out)
			return f->locked_bytes; /* keep everything; try again next pass */
	}
	for (uint32_t i = 0; i < f->npieces; i++) {
		const struct piece *p = &f->pieces[i];
		uint64_t ps = p->off, pe = p->off + p->len, pos = ps;
		while (j < r->n && r->v[j].off + r->v[j].len <= ps)
			j++;
		for (uint32_t k = j; k < r->n && r->v[k].off < pe; k++) {
			uint64_t a = MAX(ps, r->v[k].off), b = MIN(pe, r->v[k].off + r->v[k].len);
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
			pieces_changed(ls, f);
		ls->locked_bytes -= dropped;
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

/* Truncation and hole punching unmap the file's pages from every mapping, ours too: the VMA
 * stays locked, but empty where the pages were, and a file written back to the same size looks
 * unchanged to fstat() but for its times. So after a change, the pages missing from our own
 * mappings (/proc/self/pagemap, bit 63) are unmapped here, and the count drops to what is
 * really held. The plan then finds the file short and locks the gaps again through
 * lock_range(), like any new range: the budget and the memory cgroup's chunks apply (an mlock()
 * of a whole piece at the cgroup's limit would retry without end). */
#define PM_PRESENT (UINT64_C(1) << 63)
#define PM_BATCH 512 /* entries read at a time: 4 KiB on the stack */

static int keep_run(struct runs *r, uint64_t off, uint64_t len)
{
	if (r->n && r->v[r->n - 1].off + r->v[r->n - 1].len == off) {
		r->v[r->n - 1].len += len;
		return 0;
	}
	if (GROW_ARRAY(r->v, r->n, r->cap, 8) < 0)
		return -ENOMEM;
	r->v[r->n++] = (struct run){ off, len };
	return 0;
}

/* Appends to keep the runs of piece p that are present in our page tables. */
static int present_runs(int pm_fd, size_t page, const struct piece *p, struct runs *keep)
{
	uint64_t buf[PM_BATCH];
	uint64_t vpage = (uintptr_t)p->addr / page, npages = p->len / page;

	for (uint64_t i = 0; i < npages;) {
		uint64_t n = MIN(npages - i, (uint64_t)PM_BATCH);
		ssize_t got = pread(pm_fd, buf, n * sizeof(*buf), (off_t)((vpage + i) * sizeof(*buf)));
		if (got != (ssize_t)(n * sizeof(*buf)))
			return got < 0 ? -errno : -EIO;
		for (uint64_t k = 0; k < n; k++) {
			if (!(buf[k] & PM_PRESENT))
				continue;
			int r = keep_run(keep, p->off + (i + k) * page, page);
			if (r < 0)
				return r;
		}
		i += n;
	}
	return 0;
}

static void drop_lost_pages(struct lockset *ls, struct lfile *f)
{
	struct runs keep = { 0 };
	_cleanup_close_ int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* cannot tell: kept as counted; the next change tries again */
	for (uint32_t i = 0; i < f->npieces; i++)
		if (present_runs(fd, ls->page, &f->pieces[i], &keep) < 0)
			goto out;
	uint64_t kept = lock_trim(ls, f, &keep, false);
	if (kept < f->locked_bytes) {
		log_debug("%s: %llu of %llu locked bytes left our mappings; to be locked again",
			  f->path, (unsigned long long)(f->locked_bytes - kept),
			  (unsigned long long)f->locked_bytes);
		lock_trim(ls, f, &keep, true);
	}
out:
	free(keep.v);
}

/* Pages past a new end are gone (and touching them would SIGBUS, which we never do): unmap them
 * so the accounting stays true. */
static void cut_to_size(struct lockset *ls, struct lfile *f, uint64_t size)
{
	uint64_t end = round_up(size, ls->page);
	for (uint32_t i = f->npieces; i > 0; i--) {
		struct piece *p = &f->pieces[i - 1];
		if (p->off >= end) {
			unlock_piece(ls, f, i - 1);
		} else if (p->off + p->len > end) {
			uint64_t cut = p->off + p->len - end;
			munmap((char *)p->addr + (p->len - cut), cut);
			p->len -= cut;
			f->locked_bytes -= cut;
			ls->locked_bytes -= cut;
			pieces_changed(ls, f);
		}
	}
}

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void lock_refresh(struct lockset *ls, struct pass_ctx *c, struct lfile *f, bool *gone)
{
	struct stat st;
	bool event = f->changed; /* inotify: written, truncated, a hole punched, attributes */
	*gone = false;
	f->checked_pass = c->pass;
	if (f->fd >= 0 ? fstat(f->fd, &st) < 0 : file_stat_by_path(c->proc_fd, f, &st) < 0)
		return; /* held by its mappings alone, and its path leads elsewhere: nothing to see */
	if (st.st_nlink == 0)
		*gone = true;
	/* Grown with holes (truncate -s, a hole punched): never lock it because it is mapped. A
	 * punched hole drops pages from our mappings without changing the size: fewer blocks. */
	uint64_t size = (uint64_t)st.st_size, blocks_bytes = (uint64_t)st.st_blocks * 512;
	int64_t mtime = ts_ns(st.st_mtim), ctime = ts_ns(st.st_ctim);
	bool fewer_blocks = blocks_bytes < f->blocks_bytes;
	/* Any sign of a change, or times never seen (what happened before is unknown): look for
	 * pages that left our mappings. */
	bool touched = event || size != f->size || blocks_bytes != f->blocks_bytes ||
		       mtime != f->mtime_ns || ctime != f->ctime_ns;
	if (st.st_nlink == 0 || fewer_blocks || size != f->size)
		f->settled = false;
	f->blocks_bytes = blocks_bytes;
	f->mtime_ns = mtime;
	f->ctime_ns = ctime;
	if (file_is_sparse(size, blocks_bytes, ls->page)) {
		f->size = size;
		f->reason = REASON_SPARSE;
		return;
	}
	if (size != f->size) {
		log_debug("%s: size changed from %llu to %llu bytes", f->path,
			  (unsigned long long)f->size, (unsigned long long)size);
		f->size = size;
		cut_to_size(ls, f, size);
		file_want_fit(ls, f, ls->page);
	}
	if (touched && f->npieces)
		drop_lost_pages(ls, f);
}

void lock_release_all(struct lockset *ls)
{
	for (uint32_t s = 0; s < ls->files.nslots; s++)
		if (ls->files.slots[s].in_use)
			lock_unlock_file(ls, &ls->files.slots[s]);
}
