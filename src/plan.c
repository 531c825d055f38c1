#include "plan.h"

#include <errno.h>
#include <stdlib.h>

#include "util.h"

static int push_run(struct runs *r, uint64_t off, uint64_t len)
{
	if (GROW_ARRAY(r->v, r->n, r->cap, 64) < 0)
		return -ENOMEM;
	r->v[r->n++] = (struct run){ off, len };
	return 0;
}

uint64_t plan_runs(struct runs *r, const struct lfile *f, size_t page, bool whole,
		   uint64_t cap_bytes)
{
	uint64_t cap = cap_bytes / page * page, total = 0;
	uint64_t end = round_up(f->size, page) / page;
	uint64_t run_start = 0, run_end = 0;
	bool in_run = false;

	r->n = 0;
	if (whole) {
		uint64_t len = MIN(end * page, cap);
		if (len && push_run(r, 0, len) == 0)
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
			uint64_t len = MIN((run_end - run_start) * page, cap - total);
			if (push_run(r, run_start * page, len) < 0)
				break;
			total += len;
		}
		in_run = true;
		run_start = p;
		run_end = p + 1;
	}
	return total;
}

void runs_free(struct runs *r)
{
	free(r->v);
	*r = (struct runs){ 0 };
}
