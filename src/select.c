#include "select.h"

#include <stdlib.h>

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
