#include "select.h"

#include <stdlib.h>

#include "util.h"

static int cmp_candidate(const void *pa, const void *pb)
{
	const struct candidate *a = pa, *b = pb;

	if (a->tier != b->tier)
		return a->tier > b->tier ? -1 : 1;
	if (a->nprocs != b->nprocs)
		return a->nprocs > b->nprocs ? -1 : 1;
	if (a->want_bytes != b->want_bytes)
		return a->want_bytes < b->want_bytes ? -1 : 1;
	/* Equal in everything the SPEC orders by: prefer what is locked already, then be stable. */
	if ((a->keep_bytes > 0) != (b->keep_bytes > 0))
		return a->keep_bytes > 0 ? -1 : 1;
	return a->slot < b->slot ? -1 : a->slot > b->slot;
}

uint64_t select_by_budget(struct candidate *c, size_t n, uint64_t budget_bytes)
{
	uint64_t left = budget_bytes;

	qsort(c, n, sizeof(*c), cmp_candidate);
	for (size_t i = 0; i < n; i++) {
		if (c[i].want_bytes <= left) {
			c[i].decision = DECIDE_FULL;
			left -= c[i].want_bytes;
		} else if (c[i].keep_bytes > 0 && c[i].keep_bytes <= left) {
			/* Growing would not fit, but dropping what is locked would only make room for
			 * smaller, lower-priority files: keep it. */
			c[i].decision = DECIDE_KEEP;
			left -= c[i].keep_bytes;
		} else {
			c[i].decision = DECIDE_DROP;
		}
	}
	return budget_bytes - left;
}

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

void select_judge_path(const struct config *cfg, struct lfile *f)
{
	if (f->always) {
		f->eligible = true;
		return;
	}
	if (f->deleted_only) {
		f->eligible = false;
		f->reason = REASON_DELETED;
	} else if (!regex_list_match(&cfg->include, f->path)) {
		f->eligible = false;
		f->reason = REASON_NOT_INCLUDED;
	} else if (regex_list_match(&cfg->exclude, f->path)) {
		f->eligible = false;
		f->reason = REASON_EXCLUDED;
	} else {
		f->eligible = true;
		if (f->reason == REASON_NOT_INCLUDED || f->reason == REASON_EXCLUDED)
			f->reason = REASON_NONE;
	}
}
