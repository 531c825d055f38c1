/* The lock stage: every file is judged (still mapped? changed on disk? still eligible?), planned,
 * and given a candidate summary; selection by budget decides; then files are unlocked first and
 * locked after, so that the locked total never passes the budget, not even for a moment. */
#include "lockpass.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileopen.h"
#include "lock.h"
#include "log.h"
#include "select.h"
#include "util.h"

/* Brings `always` files into the table; they need no process to map them. */
static void track_always(struct lockset *ls, struct pass_ctx *c)
{
	for (uint32_t s = 0; s < ls->files.nslots; s++)
		ls->files.slots[s].always = false;
	for (size_t i = 0; i < c->cfg->always.n; i++) {
		_cleanup_free_ char *path = realpath(c->cfg->always.v[i], NULL);
		struct stat st;
		bool created;
		/* O_NOFOLLOW refuses symlinks: resolve them here, where the administrator named them. */
		if (!path || stat(path, &st) < 0) {
			log_debug("always: %s: %s, ignoring", c->cfg->always.v[i], strerror(errno));
			continue;
		}
		int64_t s = file_table_get(&ls->files, (uint64_t)st.st_dev, (uint64_t)st.st_ino, path,
					   &created);
		if (s < 0)
			continue;
		struct lfile *f = file_at(&ls->files, (uint32_t)s);
		f->always = true;
		f->eligible = true;
		if (created || (!f->opened_once && f->fd < 0))
			(void)file_open_verified(ls, c, f);
	}
}

static bool whole_file(const struct pass_ctx *c, const struct lfile *f)
{
	return f->always || c->cfg->what == WHAT_WHOLE;
}

static uint64_t plan_file(struct lockset *ls, struct pass_ctx *c, struct lfile *f,
			  struct runs *runs)
{
	return plan_runs(runs, f, ls->page, whole_file(c, f), c->cfg->max_file_size_bytes);
}

/* A file with locked pieces or a held descriptor: looked at when inotify saw something (which
 * may be newer than an open in this pass), and on full passes unless this pass opened it. */
static void look_at_held(struct lockset *ls, struct pass_ctx *c, struct lfile *f, bool *gone)
{
	if (f->changed || ((c->full || f->wd <= 0) && f->checked_pass != c->pass))
		lock_refresh(ls, c, f, gone);
	f->changed = false;
	/* Watches are set up from the second pass on: the first one is for getting to READY=1,
	 * and until then every file is looked at each pass anyway. */
	if (f->npieces && f->wd <= 0 && c->watch && !*gone) {
		int r = watch_add(&ls->watch, f);
		if (r < 0 && r != -EBADF && !c->stats.watch_failed++) {
			c->stats.watch_failed_slot = f - ls->files.slots;
			c->stats.watch_err = r;
		}
	}
}

/* Decides what each file should be before selection. Returns false when it is no candidate. */
static bool file_candidate(struct lockset *ls, struct pass_ctx *c, uint32_t slot,
			   struct runs *runs, struct candidate *cand)
{
	struct lfile *f = file_at(&ls->files, slot);
	bool gone = false;

	if (f->fd >= 0 || f->npieces)
		look_at_held(ls, c, f, &gone);
	else if (f->eligible && f->opened_once && f->nprocs && (f->size == 0 || c->full))
		/* Not held open: an empty file may have been written since (cp truncates and rewrites
		 * in place), and any other may have changed; look again now and then. */
		(void)file_open_verified(ls, c, f);
	if (f->nprocs == 0 && !f->always) {
		/* Unmapped: a replaced or deleted inode can never be mapped again; the rest waits
		 * `keep` passes. */
		bool expired = c->pass - f->last_seen_pass > c->cfg->keep_scans;
		if (!f->npieces || gone || expired || file_replaced(c->proc_fd, f)) {
			lock_unlock_file(ls, f);
			file_table_remove(&ls->files, slot);
			return false;
		}
		f->reason = REASON_UNMAPPED;
		f->plan_bytes = f->locked_bytes;
		*cand = (struct candidate){ .slot = slot, .want_bytes = f->locked_bytes,
					    .keep_bytes = f->locked_bytes };
		return true;
	}
	if (f->eligible && !f->opened_once && f->fd < 0 && c->full)
		(void)file_open_verified(ls, c, f);
	/* Owner and mode against the current rules: a reload may have dropped an owner. */
	bool usable = f->eligible && f->opened_once && f->reason != REASON_SPARSE &&
		      f->reason != REASON_REPLACED && f->reason != REASON_NOT_REGULAR &&
		      file_owner_ok(c->cfg, f);
	if (!usable) {
		if (f->npieces)
			lock_unlock_file(ls, f);
		f->plan_bytes = 0;
		return false;
	}
	uint64_t want, kept;
	if (f->settled && f->settled_always == f->always) {
		want = kept = f->locked_bytes; /* as planned last time, and all of it locked */
	} else {
		want = plan_file(ls, c, f, runs);
		kept = lock_trim(ls, f, runs, false);
		/* Pieces inside the plan (kept == locked) and covering it (want == kept). */
		f->settled = want == kept && kept == f->locked_bytes && !c->dry_run;
		f->settled_always = f->always;
	}
	f->tier = f->always ? 2 : f->critical ? 1 : 0;
	*cand = (struct candidate){ .slot = slot, .tier = f->tier, .nprocs = f->nprocs,
				    .want_bytes = want, .keep_bytes = kept };
	return true;
}

static void note_lock_failure(struct lockset *ls, struct pass_ctx *c, struct lfile *f, int r)
{
	f->lock_errno = -r;
	f->reason = REASON_LOCK_FAILED;
	if (c->stats.lock_failed++)
		return;
	c->stats.lock_failed_slot = f - ls->files.slots;
	c->stats.lock_err = r;
	c->stats.lock_failed_memcg = r == -ENOMEM && ls->memcg.full;
}

static void apply_full(struct lockset *ls, struct pass_ctx *c, struct lfile *f, struct runs *runs)
{
	uint64_t before = f->locked_bytes;

	if (f->fd < 0 && file_open_verified(ls, c, f) < 0)
		return;
	plan_file(ls, c, f, runs);
	int r = lock_add_runs(ls, f, runs);
	if (r < 0)
		note_lock_failure(ls, c, f, r);
	else if (f->reason == REASON_LOCK_FAILED)
		f->reason = REASON_NONE;
	if (f->locked_bytes != before && log_enabled(LOG_DEBUG)) {
		struct log_fields lf = { .path = f->path, .bytes = (int64_t)f->locked_bytes, .files = -1 };
		log_full(LOG_DEBUG, &lf, 0, "locked %s: %llu bytes in %u range(s), %u process(es)",
			 f->path, (unsigned long long)f->locked_bytes, f->npieces, f->nprocs);
	}
	if (!f->npieces)
		file_close(ls, f);
	else
		file_hold_or_close(ls, c, f);
}

/* Records the decision in the file and unlocks what it drops. */
static void apply_drops(struct lockset *ls, struct pass_ctx *c, const struct candidate *cand,
			struct runs *runs)
{
	struct lfile *f = file_at(&ls->files, cand->slot);
	if (f->reason == REASON_UNMAPPED && cand->decision != DECIDE_DROP)
		return;
	if (cand->decision == DECIDE_DROP) {
		f->plan_bytes = 0;
		f->reason = cand->want_bytes ? REASON_BUDGET : REASON_EMPTY;
		if (!c->dry_run)
			lock_unlock_file(ls, f);
		return;
	}
	f->plan_bytes = cand->decision == DECIDE_FULL ? cand->want_bytes : cand->keep_bytes;
	f->reason = cand->decision == DECIDE_KEEP ? REASON_BUDGET_PARTLY
		    : f->plan_bytes		  ? REASON_NONE
						  : REASON_EMPTY;
	/* Pieces all inside the plan (kept == locked): nothing to trim. */
	if (!c->dry_run && cand->keep_bytes < f->locked_bytes) {
		plan_file(ls, c, f, runs);
		lock_trim(ls, f, runs, true);
	}
}

int lock_pass(struct lockset *ls, struct pass_ctx *c, struct runs *runs)
{
	struct file_table *t = &ls->files;
	uint32_t n = 0;

	track_always(ls, c);
	watch_drain(&ls->watch, t);
	_cleanup_free_ struct candidate *cand = malloc((t->nslots ? t->nslots : 1) * sizeof(*cand));
	if (!cand)
		return -ENOMEM;
	for (uint32_t s = 0; s < t->nslots; s++)
		if (t->slots[s].in_use && file_candidate(ls, c, s, runs, &cand[n]))
			n++;
	select_by_budget(cand, n, ls->budget_bytes);

	for (uint32_t i = 0; i < n; i++)
		apply_drops(ls, c, &cand[i], runs);
	for (uint32_t i = 0; i < n && !c->dry_run; i++) {
		struct lfile *f = file_at(t, cand[i].slot);
		if (pass_progress(c, "locking files", i, n))
			break; /* stopping: what is locked stays, the state is saved */
		if (cand[i].decision == DECIDE_FULL && f->reason != REASON_UNMAPPED &&
		    cand[i].want_bytes > f->locked_bytes)
			apply_full(ls, c, f, runs);
	}

	ls->locked_files = 0;
	for (uint32_t s = 0; s < t->nslots; s++) {
		struct lfile *f = &t->slots[s];
		if (f->in_use && f->npieces)
			ls->locked_files++;
		else if (f->in_use)
			file_close(ls, f); /* a descriptor is held only while something is locked */
	}
	return 0;
}
