/* Discovery: walk /proc, keep a cache of each process's executable file mappings, and re-read
 * only the processes whose mappings may have changed.
 *
 * The change signal, read from /proc/PID/stat in one small read: starttime (a reused pid),
 * vsize (mmap and munmap move it) and minflt+majflt summed over all threads (a page cannot enter
 * a process's page tables without a fault, so `resident` data cannot grow without it). A process
 * that is equal in all three since the last pass has, short of an munmap+mmap of the very same
 * size without touching a page, the same mappings and pages; full passes (by wall time, decided
 * by the daemon) re-read everything anyway to close that gap.
 *
 * A full pass reads every process's maps text, but need not parse what did not change: each
 * process keeps a keyed 64-bit hash of the whole text of its last complete, clean read (no line
 * malformed, nothing beyond its caps; maps.h: a polynomial at a point drawn from getrandom() at
 * start, so that no local user can make two texts collide without knowing it). A process whose
 * stat is unchanged is first read hashing only (maps_hash_fd); the same hash means the same
 * text, so the same slots and ranges, and only what parsing would do besides is done from the
 * cache (text_unchanged()). Another hash means it changed behind an unchanged stat, the very gap
 * full passes are for, which is rare: the text is then read again from its start (lseek) and
 * parsed, as any changed process is. That costs a second rendering of that one text, but needs
 * nothing else: the parse has side effects on the file table (files added, opened, pages looked
 * up) that a parse on the side could not take back, and holding the text to parse it after the
 * hash would need a buffer of its size (hundreds of MiB for a hostile process). A process whose
 * cached files would be looked up in pagemap by this read (in `resident` mode, one whose pages may
 * be new) is parsed directly, since the lookups need the mappings' addresses, which are not
 * cached. Reads that parse hash too, to be the base of the next full pass; the PROCMAP_QUERY
 * path does not (it reads no text) and leaves no hash. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fileopen.h"
#include "maps.h"
#include "procfs.h"
#include "scan.h"
#include "select.h"

#define PF_KTHREAD 0x00200000ul
#define PM_PRESENT (1ull << 63)
#define PM_FILE (1ull << 61)
/* Pagemap window: 8192 entries = 64 KiB of buffer; mappings up to 16 pages apart share one (a
 * page-table entry costs ~50 ns to read, a pread ~3 us). */
#define PAGEMAP_BATCH 8192
#define PAGEMAP_GAP 16
/* Ranges queued for pagemap before they are read: 4096 of 24 bytes, whatever the number of
 * mappings (a process may have 65530). */
#define PM_QUEUE_MAX 4096

/* The process being read, and what it is read with. */
struct scan_one {
	struct scan *s;
	struct lockset *ls;
	struct pass_ctx *c;
	struct proc *p;
	char pid_dir[32];
	int pm_fd;         /* its /proc/PID/pagemap, or one of: */
	bool capped;       /* beyond PROC_MAX_ENTRIES or PROC_NAME_BYTES */
	size_t name_bytes; /* of the files listed for it */
	bool same;         /* its stat (start time, vsize, faults) is as at its last read */
	uint64_t pm_prev;  /* its pm_seq before this read */
	/* The file of the mapping before: a library's three or four lockable mappings come one
	 * after the other, and the table's hash need not be asked again. (Slots stay valid for the
	 * whole scan: files leave the table only in the lock stage.) */
	uint64_t prev_dev, prev_ino;
	int64_t prev_slot; /* -1: none yet */
	uint32_t nmappings; /* lockable mappings counted (stats.mappings) by this read */
	bool unlisted;      /* a mapping counted but not in the cache (beyond 16 TiB) */
};
#define PM_FD_UNOPENED (-1)
#define PM_FD_DENIED (-2) /* not ours to read: its mappings count as used whole */

/* Decides, once per file, whether its path qualifies, and opens it to learn its size. */
static void file_first_seen(struct scan_one *o, struct lfile *f, bool deleted)
{
	if (deleted) {
		f->deleted_only = true;
		f->eligible = false;
		f->reason = REASON_DELETED;
		return;
	}
	select_judge_path(o->c->cfg, f);
	if (f->eligible && file_open_verified(o->ls, o->c, f) == 0)
		file_hold_or_close(o->ls, o->c, f);
}

static int read_pagemaps(struct scan_one *o);

/* Queues a range; a full queue is read at once, so that the queue is PM_QUEUE_MAX entries at
 * most (24 bytes each) whatever the number of mappings. */
static int push_pm(struct scan_one *o, uint64_t vpage, uint64_t npages, uint32_t slot,
		   uint64_t pgoff)
{
	struct scan *s = o->s;
	if (s->npm == PM_QUEUE_MAX) {
		int r = read_pagemaps(o);
		if (r < 0)
			return r;
	}
	if (GROW_ARRAY(s->pm, s->npm, s->cap_pm, 256) < 0)
		return -ENOMEM;
	s->pm[s->npm++] = (struct pm_req){ .vpage = vpage, .npages = npages, .slot = slot,
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
static int queue_pagemap(struct scan_one *o, uint32_t slot, const struct lfile *f,
			 const struct map_entry *e)
{
	size_t page = o->ls->page;
	uint64_t vpage = e->start / page, pgoff = e->offset / page;
	uint64_t n = (e->end - e->start) / page;

	/* Pages past the file's end (or past the bitmap) cannot be locked: do not read them. */
	if (pgoff >= f->want_npages)
		return 0;
	uint64_t end = pgoff + MIN(n, f->want_npages - pgoff);
	for (uint64_t p = pgoff; p < end;) {
		uint64_t a = next_want_bit(f, p, end, false); /* a run of pages not wanted yet */
		if (a >= end)
			break;
		uint64_t b = next_want_bit(f, a, end, true);
		int r = push_pm(o, vpage + (a - pgoff), b - a, slot, a);
		if (r < 0)
			return r;
		p = b;
	}
	return 0;
}

/* Reads the first npm queued ranges. Libraries sit side by side in the address space, so one
 * read of a window covers many mappings: a pread per mapping costs about 3 us of kernel entry and
 * page-table walk setup, more than the few hundred entries most of them hold. A window stops at
 * PAGEMAP_BATCH pages or where the next mapping is far away. */
static int read_pagemap_queue(struct scan_one *o, uint32_t npm)
{
	struct scan *s = o->s;
	struct file_table *t = &o->ls->files;
	uint64_t win_start = 0, win_end = 0; /* virtual pages held in the buffer */
	int fd = o->pm_fd;

	if (fd == PM_FD_DENIED) {
		/* pagemap is mode 0400 to its owner: CAP_SYS_PTRACE passes the ptrace check but not
		 * this one (that takes CAP_DAC_READ_SEARCH). Without it, another user's process
		 * counts as using all that it maps, as in `mapped` mode. */
		for (uint32_t i = 0; i < npm; i++)
			file_want_set_range(file_at(t, s->pm[i].slot), s->pm[i].pgoff, s->pm[i].npages);
		return 0;
	}
	for (uint32_t i = 0; i < npm; i++) {
		const struct pm_req *q = &s->pm[i];
		struct lfile *f = file_at(t, q->slot);
		uint64_t run = 0; /* present pages just before v, not yet marked */
		for (uint64_t v = q->vpage; v < q->vpage + q->npages; v++) {
			if (v < win_start || v >= win_end) {
				/* Extend the window over following mappings that are close. */
				uint64_t end = q->vpage + q->npages;
				for (uint32_t k = i + 1; k < npm; k++) {
					const struct pm_req *nq = &s->pm[k];
					if (nq->vpage < end || nq->vpage - end > PAGEMAP_GAP ||
					    nq->vpage + nq->npages - v > PAGEMAP_BATCH)
						break;
					end = nq->vpage + nq->npages;
				}
				end = MIN(end, v + PAGEMAP_BATCH);
				ssize_t r = pread(fd, s->pagemap_buf, (end - v) * 8, (off_t)(v * 8));
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
			uint64_t pm = s->pagemap_buf[v - win_start];
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

/* Reads the queued ranges from /proc/PID/pagemap, opened at the first call for the process, and
 * empties the queue. */
static int read_pagemaps(struct scan_one *o)
{
	struct scan *s = o->s;
	uint32_t npm = s->npm;

	s->npm = 0;
	if (!npm)
		return 0;
	if (!s->pagemap_buf) {
		s->pagemap_buf = malloc(PAGEMAP_BATCH * sizeof(uint64_t));
		if (!s->pagemap_buf)
			return -ENOMEM;
	}
	if (o->pm_fd == PM_FD_UNOPENED) {
		char path[48];
		snprintf(path, sizeof(path), "%s/pagemap", o->pid_dir);
		o->pm_fd = openat(o->c->proc_fd, path, O_RDONLY | O_CLOEXEC);
		if (o->pm_fd < 0 && (errno == EACCES || errno == EPERM)) {
			o->pm_fd = PM_FD_DENIED;
			if (!o->c->stats.pagemap_denied++)
				o->c->stats.pagemap_denied_pid = o->p->pid;
		} else if (o->pm_fd < 0) {
			int e = -errno;
			o->pm_fd = PM_FD_UNOPENED;
			return e;
		}
	}
	return read_pagemap_queue(o, npm);
}

/* What one process may cost, whatever it maps: PROC_MAX_ENTRIES entries in its cache (4 bytes
 * each, 12 in `mapped` mode: 32 or 96 KiB), for files whose names add up to PROC_NAME_BYTES at
 * most. A file the table holds for it alone costs a struct lfile (184 bytes) and its name (maps.c
 * caps names at PATH_MAX): at most 8192 of them and 512 KiB of names, about 2 MiB in all. Real
 * programs stay far below: the largest here map a few hundred files, with names of about 60
 * bytes. What lies beyond is not counted for that process, and the daemon says so once. */
#define PROC_MAX_ENTRIES 8192
#define PROC_NAME_BYTES (512 * 1024)

static void note_capped(struct scan_one *o)
{
	if (o->capped)
		return;
	o->capped = true;
	if (!o->c->stats.procs_capped++)
		o->c->stats.capped_pid = o->p->pid;
}

/* Adds a mapping of slot to the process's cache: once per file, or in `mapped` mode (with_range)
 * once per range, a range that continues the one before it growing that one. */
static int add_pmap(struct scan_one *o, bool with_range, struct lfile *f, uint32_t slot,
		    uint64_t pgoff, uint64_t npages)
{
	struct proc *p = o->p;

	if (pgoff > UINT32_MAX || npages > UINT32_MAX) {
		o->unlisted = true; /* the cache does not tell all that parsing did */
		return 0; /* beyond 16 TiB: nothing prelockd could lock anyway */
	}
	bool first = f->scan_mark != o->s->read_seq;
	if (!with_range && !first)
		return 0; /* listed for this process already */
	if (with_range && p->nmaps && p->slots[p->nmaps - 1] == slot) {
		struct prange *last = &p->ranges[p->nmaps - 1];
		uint64_t last_end = (uint64_t)last->pgoff + last->npages;
		uint64_t end = MAX(last_end, pgoff + npages);
		if (pgoff >= last->pgoff && pgoff <= last_end && end - last->pgoff <= UINT32_MAX) {
			last->npages = (uint32_t)(end - last->pgoff);
			return 0;
		}
	}
	size_t name_len = first ? f->path_len : 0;
	if (p->nmaps >= PROC_MAX_ENTRIES || name_len > PROC_NAME_BYTES - o->name_bytes) {
		note_capped(o);
		return 0;
	}
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
	f->scan_mark = o->s->read_seq;
	o->name_bytes += name_len;
	p->slots[p->nmaps] = slot;
	if (with_range)
		p->ranges[p->nmaps] = (struct prange){ (uint32_t)pgoff, (uint32_t)npages };
	p->nmaps++;
	return 0;
}

#define SLOT_SKIPPED (-ENOENT)

static int64_t remember_slot(struct scan_one *o, uint64_t dev, uint64_t ino, int64_t slot)
{
	o->prev_dev = dev;
	o->prev_ino = ino;
	o->prev_slot = slot;
	return slot;
}

/* The slot of the file e maps: found, or added while the process is within its limits; a lazy
 * PROCMAP_QUERY entry without a name gets MAPS_NEED_NAME. SLOT_SKIPPED: over the limits. */
static int64_t mapping_slot(struct scan_one *o, const struct map_entry *e, bool *created)
{
	struct file_table *t = &o->ls->files;
	uint64_t dev = makedev(e->dev_major, e->dev_minor);
	int64_t slot = o->prev_slot >= 0 && o->prev_dev == dev && o->prev_ino == e->inode
			       ? o->prev_slot
			       : file_table_find(t, dev, e->inode);

	*created = false;
	if (slot >= 0)
		return remember_slot(o, dev, e->inode, slot);
	/* Not even added to the table when the process could not list it (add_pmap). */
	if (o->p->nmaps >= PROC_MAX_ENTRIES ||
	    (e->path && e->path_len > PROC_NAME_BYTES - o->name_bytes)) {
		note_capped(o);
		return SLOT_SKIPPED;
	}
	if (!e->path)
		/* Without its name (PROCMAP_QUERY, lazily): enough for a file already known. */
		return MAPS_NEED_NAME;
	slot = file_table_get(t, dev, e->inode, e->path, created);
	return slot >= 0 ? remember_slot(o, dev, e->inode, slot) : slot;
}

static int on_mapping(const struct map_entry *e, void *userdata)
{
	struct scan_one *o = userdata;
	struct file_table *t = &o->ls->files;
	const struct config *cfg = o->c->cfg;
	size_t page = o->ls->page;
	bool created;

	if (!map_entry_is_lockable(e, cfg->read_only_data))
		return 0;
	int64_t slot = mapping_slot(o, e, &created);
	if (slot == SLOT_SKIPPED)
		return 0;
	if (slot < 0 || slot == MAPS_NEED_NAME)
		return (int)slot;
	o->c->stats.mappings++;
	o->nmappings++;
	struct lfile *f = file_at(t, (uint32_t)slot);
	/* The latest process to map it, the likeliest to live on: if the daemon's own view of the
	 * path does not lead to the inode (another mount namespace), /proc/PID/root of it may. */
	f->ns_pid = o->p->pid;
	if (e->perms & MAP_PERM_EXEC)
		f->as_code = true;
	else
		f->as_data = true;
	if (created)
		file_first_seen(o, f, e->deleted);
	else if (o->c->full && f->eligible && f->fd < 0 && (!f->opened_once || !f->size) &&
		 file_open_verified(o->ls, o->c, f) == 0)
		/* Its first open failed, or it was empty, or a reload let it in: retry now, before
		 * this pass reads its pages, so the pass can use them. */
		file_hold_or_close(o->ls, o->c, f);
	int r = add_pmap(o, cfg->what == WHAT_MAPPED, f, (uint32_t)slot, e->offset / page,
			 (e->end - e->start) / page);
	if (r < 0)
		return r;
	if (cfg->what != WHAT_RESIDENT)
		return 0;
	if (!f->eligible || !f->want_npages) {
		f->pm_since = 0; /* its pages are not looked up in this process */
		return 0;
	}
	if (!f->pm_since)
		f->pm_since = o->s->pm_seq;
	/* A page enters a process's page tables by a fault of its own (fault-around, populating
	 * and mlock() count too), so a process with the fault count of its last read has nothing
	 * in them that read did not see, if that read looked this file up: a full pass skips the
	 * pagemap reads (a third of its cost) but still reads every maps file. */
	if (o->same && o->pm_prev && f->pm_since <= o->pm_prev)
		return 0;
	return queue_pagemap(o, (uint32_t)slot, f, e);
}

/* The end of a read that returned r: a complete one is a base for skipping pagemap lookups. */
static int read_done(struct scan_one *o, int r)
{
	if (r == 0 && !o->capped && o->c->cfg->what == WHAT_RESIDENT)
		o->p->pm_seq = o->s->pm_seq;
	return r;
}

/* Draws the key of the maps hashes, once. Not blocking: early in boot, before the kernel's pool
 * is ready, it is tried again at each read, and until then maps are parsed every time. */
static bool maps_key_get(struct scan *s)
{
	uint64_t random;
	if (!s->maps_key_ready &&
	    getrandom(&random, sizeof(random), GRND_NONBLOCK) == (ssize_t)sizeof(random)) {
		maps_hash_key_init(&s->maps_key, random);
		s->maps_key_ready = true;
	}
	return s->maps_key_ready;
}

/* Whether this read would look up pages of a cached file of the process in pagemap, as
 * on_mapping() decides it for a process whose stat is unchanged. */
static bool cache_needs_pagemap(struct scan_one *o)
{
	struct file_table *t = &o->ls->files;
	struct proc *p = o->p;

	if (o->c->cfg->what != WHAT_RESIDENT)
		return false;
	if (!o->pm_prev)
		return true;
	for (uint32_t k = 0; k < p->nmaps; k++) {
		const struct lfile *f = file_at(t, p->slots[k]);
		if (f->eligible && f->want_npages && (!f->pm_since || f->pm_since > o->pm_prev))
			return true;
	}
	return false;
}

/* The prefix of a process's maps hash: the settings a parse of the same text depends on, so that
 * a reload that changes them (lockable read-only data, ranges in `mapped` mode) parses again. */
static uint64_t maps_hash_prefix(const struct config *cfg)
{
	return 1 + (cfg->read_only_data ? 1 : 0) + 2 * (uint64_t)cfg->what;
}

/* A complete, clean read hashed as h, and parsed: the base of the next full pass. */
static void remember_text(struct scan_one *o, struct maps_hash *h)
{
	o->p->maps_hash = maps_hash_end(h) | MAPS_HASH_VALID;
	o->p->nmappings = o->nmappings;
}

/* A process whose stat is unchanged, read last time completely and cleanly (hash, its
 * MAPS_HASH_VALID hash then): reads its text hashing only. The same text has the same lockable
 * mappings, so the cache (slots, ranges) is right; what on_mapping() does besides is done here
 * for each cached file: the count of mappings, ns_pid, and on a full pass the retry of an open
 * that failed. as_code and as_data are never cleared, so they are as that read left them; no page
 * is looked up (cache_needs_pagemap() was false), and a file not looked up has no pm_since.
 * Returns 1 when the text is the same (the read is done), 0 when it is to be parsed (fd is back
 * at its start), or -errno. */
static int text_unchanged(struct scan_one *o, int fd, uint64_t hash)
{
	struct scan *s = o->s;
	struct proc *p = o->p;
	struct file_table *t = &o->ls->files;
	struct maps_hash h;

	maps_hash_init(&h, &s->maps_key, maps_hash_prefix(o->c->cfg));
	int r = maps_hash_fd(fd, s->maps_buf, MAPS_READ_BYTES, &h);
	if (r < 0)
		return r;
	if ((maps_hash_end(&h) | MAPS_HASH_VALID) == hash) {
		bool resident = o->c->cfg->what == WHAT_RESIDENT;
		for (uint32_t k = 0; k < p->nmaps; k++) {
			struct lfile *f = file_at(t, p->slots[k]);
			f->ns_pid = p->pid;
			if (o->c->full && f->eligible && f->fd < 0 && (!f->opened_once || !f->size) &&
			    file_open_verified(o->ls, o->c, f) == 0)
				file_hold_or_close(o->ls, o->c, f);
			if (resident && (!f->eligible || !f->want_npages))
				f->pm_since = 0;
		}
		/* An open just now may have made a file's pages wanted: they are looked up by a
		 * parse, as on_mapping() would have. */
		if (!cache_needs_pagemap(o)) {
			o->c->stats.mappings += p->nmappings;
			o->c->stats.maps_unchanged++;
			p->maps_hash = hash;
			return 1;
		}
	}
	return lseek(fd, 0, SEEK_SET) == 0 ? 0 : -errno;
}

static int read_mappings(struct scan_one *o)
{
	struct scan *s = o->s;
	char path[48];
	unsigned malformed = 0;
	uint64_t last_hash = o->p->maps_hash;

	snprintf(path, sizeof(path), "%s/maps", o->pid_dir);
	o->pm_prev = o->p->pm_seq;
	o->p->pm_seq = 0; /* until this read has looked up every mapping */
	o->p->maps_hash = 0; /* until it has read the whole text, cleanly */
	_cleanup_close_ int fd = openat(o->c->proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	s->pm_seq++;
	s->npm = 0;
	if (++s->read_seq == 0) { /* wrapped: no file may carry a mark of this round */
		for (uint32_t k = 0; k < o->ls->files.nslots; k++)
			o->ls->files.slots[k].scan_mark = 0;
		s->read_seq = 1;
	}
	/* PROCMAP_QUERY pays off where the kernel leaves out most VMAs: asked for code only, it
	 * answers one VMA of a library's five. Asked for readable file mappings it answers four of
	 * five (it cannot leave out the writable ones), one system call each, and the text is
	 * cheaper: 400 processes of 50 libraries each, a --dry-run pass took 0.31 s of CPU by the
	 * ioctl against 0.18 s by the text (code only: 0.13 against 0.17). */
	if (s->use_query != 0 && !o->c->cfg->read_only_data) {
		o->p->nmaps = 0;
		int r = maps_query_walk(fd, MAP_PERM_EXEC, true, on_mapping, o);
		if (r != -ENOTTY && r != -EINVAL) {
			s->use_query = 1;
			return read_done(o, r < 0 ? r : read_pagemaps(o));
		}
		s->use_query = 0; /* the kernel predates it (6.11): the text from now on */
		o->p->nmaps = 0;
		last_hash = 0; /* the cache is gone */
		s->npm = 0;
	}
	/* In fixed pieces, never whole: a user's maps can be hundreds of MiB of text. */
	if (!s->maps_buf && !(s->maps_buf = malloc(MAPS_READ_BYTES)))
		return -ENOMEM;
	bool hashing = maps_key_get(s);
	if (last_hash && o->same && hashing && !cache_needs_pagemap(o)) {
		int r = text_unchanged(o, fd, last_hash);
		if (r != 0)
			return read_done(o, r > 0 ? 0 : r);
	}
	o->p->nmaps = 0;
	struct maps_stream ms;
	struct maps_hash h;
	maps_stream_init(&ms, s->maps_buf, MAPS_READ_BYTES);
	/* What map_entry_is_lockable() could take: the rest of the text is not even parsed. */
	ms.need_any = MAP_PERM_EXEC | (o->c->cfg->read_only_data ? MAP_PERM_READ : 0);
	if (hashing) {
		maps_hash_init(&h, &s->maps_key, maps_hash_prefix(o->c->cfg));
		ms.hash = &h;
	}
	int r = maps_read_fd(fd, &ms, on_mapping, o);
	malformed = ms.malformed;
	if (r == 0)
		r = read_pagemaps(o);
	if (r == 0 && ms.hash && !malformed && !o->capped && !o->unlisted)
		remember_text(o, &h);
	if (malformed && !o->c->stats.maps_malformed)
		o->c->stats.malformed_pid = o->p->pid;
	o->c->stats.maps_malformed += malformed;
	return read_done(o, r);
}

static bool proc_is_critical(struct scan_one *o, const char *comm)
{
	const struct config *cfg = o->c->cfg;
	char path[48], cg[1024];

	if (strv_contains(&cfg->critical_names, comm))
		return true;
	if (!cfg->critical_cgroups.n)
		return false;
	snprintf(path, sizeof(path), "%s/cgroup", o->pid_dir);
	if (buf_read_at(&o->s->buf, o->c->proc_fd, path) < 0)
		return false;
	if (parse_proc_cgroup(o->s->buf.data, o->s->buf.len, cg, sizeof(cg)) < 0)
		return false;
	return regex_list_match(&cfg->critical_cgroups, cg);
}

enum { SCAN_KEEP = 0 }; /* scan_pid(): the process stays in the table; < 0: it is dropped */

/* Reads /proc/PID/stat into buf (NUL-terminated); returns its length or -errno. One read: the
 * kernel renders the whole line at once when the buffer holds it.
 *
 * The descriptor is kept for the next pass, up to s->stat_fds_max of them: opening and closing
 * it is two thirds of what a pass costs for a process that did not change (13 of 17 us here), and
 * most passes find most processes unchanged. The price is kernel memory: each kept descriptor
 * pins about 4.2 KiB (its seq_file buffer and the file), 1.7 MiB for 400 processes, hence the
 * cap (SCAN_STAT_FDS_MAX; past it, open, read, close as before). A kept descriptor refers to the
 * process, not to the number: once it has exited, reading fails with ESRCH even if the number
 * was given to a new process, which is then opened afresh. */
static void proc_free(struct proc *p);

static void stat_fd_close(struct scan *s, struct proc *p)
{
	if (p->stat_fd >= 0) {
		close(p->stat_fd);
		p->stat_fd = -1;
		s->stat_fds--;
	}
}

static ssize_t read_proc_stat(struct scan_one *o, char *buf, size_t len)
{
	struct scan *s = o->s;
	struct proc *p = o->p;
	ssize_t n;
	bool was_kept = p->stat_fd >= 0;

	if (was_kept) {
		n = pread(p->stat_fd, buf, len - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			return n;
		}
		/* Gone (ESRCH), or something unexpected: drop it, and look at the number again. */
		stat_fd_close(s, p);
	}
	char path[32];
	snprintf(path, sizeof(path), "%d/stat", (int)p->pid);
	int fd = openat(o->c->proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	buf[n] = '\0';
	/* The number is alive though the process it was kept for is not: a new process got it,
	 * whatever its start time says (ticks are coarse). Read it as new. */
	if (was_kept) {
		proc_free(p);
		p->starttime = UINT64_MAX;
	}
	if (n > 0 && s->stat_fds < s->stat_fds_max) {
		p->stat_fd = fd;
		s->stat_fds++;
	} else {
		close(fd);
	}
	return n;
}

/* At most stat_fds_max kept: the cap falls when RLIMIT_NOFILE is lowered under the running
 * daemon, and descriptors kept beyond it would take the numbers the scan itself needs (listing
 * /proc first of all). The highest pids give theirs back first. */
static void trim_stat_fds(struct scan *s)
{
	for (uint32_t i = s->nprocs; i > 0 && s->stat_fds > s->stat_fds_max; i--)
		stat_fd_close(s, &s->procs[i - 1]);
}

static int scan_pid(struct scan_one *o)
{
	struct proc *p = o->p;
	struct proc_stat st;
	char sbuf[2048];

	snprintf(o->pid_dir, sizeof(o->pid_dir), "%d", (int)p->pid);
	ssize_t n = read_proc_stat(o, sbuf, sizeof(sbuf));
	if (n < 0)
		return (int)n;
	/* A line that fills the buffer may be cut: no stat line is that long. */
	if (n == 0 || (size_t)n >= sizeof(sbuf) - 1 || parse_proc_stat(sbuf, (size_t)n, &st) < 0)
		return -EBADMSG;
	if (st.flags & PF_KTHREAD) {
		proc_free(p);
		p->kthread = true;
		/* Kernel threads take at most half the kept descriptors: they come first (low
		 * pids), and a machine with many CPUs has over a thousand of them. */
		if (o->s->stat_fds > o->s->stat_fds_max / 2)
			stat_fd_close(o->s, p);
		return SCAN_KEEP;
	}
	p->kthread = false;
	uint64_t faults = st.minflt + st.majflt;
	o->same = p->starttime == st.starttime && p->vsize == st.vsize && p->faults == faults;
	if (!o->c->full && o->same)
		return SCAN_KEEP;
	/* A check for new processes leaves the very young for the next one: most of what a busy
	 * machine starts lives less than that, and a program's start-up maps more as it goes. */
	if (o->c->new_only && p->starttime != st.starttime &&
	    o->c->now_ticks - st.starttime < o->c->new_min_age_ticks) {
		proc_free(p);
		p->starttime = UINT64_MAX;
		o->s->new_waiting++;
		return SCAN_KEEP;
	}
	/* And it reads at most new_max_reads processes: whoever starts processes by the thousand
	 * gets them read a few dozen at a time, not the daemon's whole core. The rest wait for the
	 * next check: a new one stays unread, a young one that changed is kept as it was read
	 * last (so its change shows again). */
	if (o->c->new_only && o->c->stats.procs_read >= o->c->new_max_reads) {
		if (p->starttime != st.starttime) {
			proc_free(p);
			p->starttime = UINT64_MAX;
		}
		o->s->new_waiting++;
		return SCAN_KEEP;
	}

	o->c->stats.procs_read++;
	p->critical = proc_is_critical(o, st.comm);
	if (o->c->cfg->only_critical && !p->critical) {
		p->nmaps = 0;
		p->pm_seq = 0;
		p->maps_hash = 0;
	} else {
		int r = read_mappings(o);
		/* The process may have gone between reading maps and pagemap: its maps still count. */
		if (r == -ESRCH || r == -ENOENT)
			r = p->nmaps ? 0 : r;
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
	p->pm_seq = 0;    /* no cache, no base for skipping pagemap reads */
	p->maps_hash = 0; /* nor for skipping the parse of the same text */
}

/* A process leaves the table: its cache and its kept descriptor. */
static void proc_drop(struct scan *s, struct proc *p)
{
	proc_free(p);
	stat_fd_close(s, p);
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* Numeric entries of the proc directory but our own, sorted. */
static int list_pids(int proc_fd, pid_t self, pid_t **out, uint32_t *n)
{
	int dfd = openat(proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
		if (*end || v <= 0 || v > INT32_MAX || v == self)
			continue;
		if (GROW_ARRAY(pids, cnt, cap, 512) < 0) {
			free(pids);
			closedir(dir);
			return -ENOMEM;
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

/* Counts why a process could not be read; the first of each kind is kept for the daemon to
 * report. Vanishing mid-scan is normal. */
static void note_error(struct pass_stats *st, pid_t pid, int r)
{
	if (r == -ESRCH || r == -ENOENT) {
		st->procs_vanished++;
	} else if (r == -EACCES || r == -EPERM) {
		if (!st->procs_denied++) {
			st->denied_pid = pid;
			st->denied_err = r;
		}
	} else if (!st->procs_bad++) {
		st->bad_pid = pid;
		st->bad_err = r;
	}
}

void scan_init(struct scan *s)
{
	*s = (struct scan){ .self_pid = getpid(), .use_query = -1 };
	maps_key_get(s);
}

int scan_processes(struct scan *s, struct lockset *ls, struct pass_ctx *c)
{
	pid_t *pids = NULL;
	uint32_t npids = 0, old = 0;

	s->procs_changed = true; /* until the scan shows otherwise */
	s->new_waiting = 0;
	trim_stat_fds(s);
	int r = list_pids(c->proc_fd, s->self_pid, &pids, &npids);
	if (r < 0)
		return r;
	struct proc *np = calloc(npids ? npids : 1, sizeof(*np));
	if (!np) {
		free(pids);
		return -ENOMEM;
	}
	uint32_t n = 0;
	for (uint32_t i = 0; i < npids; i++) {
		while (old < s->nprocs && s->procs[old].pid < pids[i])
			proc_drop(s, &s->procs[old++]);
		struct proc *p = &np[n];
		if (old < s->nprocs && s->procs[old].pid == pids[i])
			*p = s->procs[old++];
		else
			*p = (struct proc){ .pid = pids[i], .starttime = UINT64_MAX,
					    .stat_fd = -1 };
		c->stats.procs++;
		if (pass_progress(c, "scanning processes", i, npids)) {
			proc_drop(s, p); /* stopping: the rest is dropped below */
			break;
		}
		/* A check for new processes: known kernel threads, and processes read before that
		 * are no longer young, are taken as they were, without opening anything. */
		if (c->new_only && (p->kthread || (p->starttime != UINT64_MAX &&
		    c->now_ticks - p->starttime >= c->young_ticks))) {
			n++;
			continue;
		}
		struct scan_one o = { .s = s, .ls = ls, .c = c, .p = p, .pm_fd = PM_FD_UNOPENED,
				      .prev_slot = -1 };
		r = scan_pid(&o);
		if (o.pm_fd >= 0)
			close(o.pm_fd);
		if (r == -ENOMEM) {
			proc_drop(s, p);
			goto oom;
		}
		if (r == SCAN_KEEP) {
			n++;
			continue;
		}
		if (r < 0)
			note_error(&c->stats, p->pid, r);
		proc_drop(s, p);
	}
	while (old < s->nprocs)
		proc_drop(s, &s->procs[old++]);
	/* Every process kept was either read again or is unchanged: a new one is read (or, too
	 * young for a check, makes the count differ), and one gone leaves the count short. */
	s->procs_changed = c->stats.procs_read > 0 || n != s->nprocs;
	free(s->procs);
	free(pids);
	s->procs = np;
	s->nprocs = n;
	s->nkthreads = s->nyoung = 0;
	for (uint32_t i = 0; i < n; i++) {
		s->nkthreads += np[i].kthread;
		s->nyoung += !np[i].kthread && (np[i].starttime == UINT64_MAX ||
						c->now_ticks - np[i].starttime < c->young_ticks);
	}
	return 0;
oom:
	/* Keep what was scanned; the rest is freed. The next pass tries again. */
	for (uint32_t i = 0; i < n; i++)
		proc_drop(s, &np[i]);
	for (; old < s->nprocs; old++)
		proc_drop(s, &s->procs[old]);
	free(np);
	free(pids);
	free(s->procs);
	s->procs = NULL;
	s->nprocs = 0;
	s->nkthreads = s->nyoung = 0;
	s->procs_changed = true;
	return -ENOMEM;
}

void scan_free(struct scan *s)
{
	for (uint32_t i = 0; i < s->nprocs; i++)
		proc_drop(s, &s->procs[i]);
	free(s->procs);
	buf_free(&s->buf);
	free(s->maps_buf);
	free(s->pagemap_buf);
	free(s->pm);
	*s = (struct scan){ .use_query = -1 };
}

void scan_aggregate(struct scan *s, struct lockset *ls, struct pass_ctx *c)
{
	struct file_table *t = &ls->files;
	/* `mapped` rebuilds each file's page set from the process caches, unless no cache changed:
	 * then the sets are what they were, and the files' plans stay settled. */
	bool mapped = c->cfg->what == WHAT_MAPPED && (s->procs_changed || c->full || ls->want_rebuild);
	if (mapped)
		ls->want_rebuild = false;

	for (uint32_t k = 0; k < t->nslots; k++) {
		struct lfile *f = &t->slots[k];
		if (!f->in_use)
			continue;
		f->nprocs = 0;
		f->critical = false;
		f->last_proc_mark = 0;
		if (mapped)
			file_want_clear(f);
	}
	for (uint32_t i = 0; i < s->nprocs; i++) {
		struct proc *p = &s->procs[i];
		for (uint32_t k = 0; k < p->nmaps; k++) {
			struct lfile *f = &t->slots[p->slots[k]];
			if (f->last_proc_mark != i + 1) {
				f->last_proc_mark = i + 1;
				f->nprocs++;
			}
			f->critical |= p->critical;
			f->last_seen_pass = c->pass;
			if (mapped && p->ranges && f->want_npages)
				file_want_set_range(f, p->ranges[k].pgoff, p->ranges[k].npages);
		}
	}
}
