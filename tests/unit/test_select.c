/* Budget selection: the ordering rules of SPEC.md and the never-exceed rule. */
#include "check.h"
#include "select.h"

#include <stdlib.h>

static const struct candidate *by_slot(const struct candidate *c, size_t n, uint32_t slot)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].slot == slot)
			return &c[i];
	return NULL;
}

static void test_order(void)
{
	struct candidate c[] = {
		{ .slot = 0, .tier = 0, .nprocs = 5, .want_bytes = 100 },
		{ .slot = 1, .tier = 1, .nprocs = 1, .want_bytes = 300 },
		{ .slot = 2, .tier = 0, .nprocs = 9, .want_bytes = 200 },
		{ .slot = 3, .tier = 0, .nprocs = 5, .want_bytes = 50 },
		{ .slot = 4, .tier = 2, .nprocs = 0, .want_bytes = 10 },
	};
	uint64_t total = select_by_budget(c, 5, 1000);
	CHECK_U64(total, 660, "everything fits: planned total");
	CHECK(c[0].slot == 4 && c[1].slot == 1 && c[2].slot == 2 && c[3].slot == 3 && c[4].slot == 0,
	      "order: always, critical, more processes, then smaller (%u %u %u %u %u)", c[0].slot,
	      c[1].slot, c[2].slot, c[3].slot, c[4].slot);
	for (int i = 0; i < 5; i++)
		CHECK(c[i].decision == DECIDE_FULL, "slot %u selected in full", c[i].slot);
}

static void test_short_budget(void)
{
	struct candidate c[] = {
		{ .slot = 0, .tier = 1, .nprocs = 1, .want_bytes = 600 },
		{ .slot = 1, .tier = 0, .nprocs = 3, .want_bytes = 500 },
		{ .slot = 2, .tier = 0, .nprocs = 3, .want_bytes = 300 },
		{ .slot = 3, .tier = 0, .nprocs = 2, .want_bytes = 100 },
	};
	uint64_t total = select_by_budget(c, 4, 1000);
	CHECK(total <= 1000, "planned %llu within the budget", (unsigned long long)total);
	CHECK(by_slot(c, 4, 0)->decision == DECIDE_FULL, "critical file first");
	CHECK(by_slot(c, 4, 2)->decision == DECIDE_FULL, "smaller of two equally shared files fits");
	CHECK(by_slot(c, 4, 1)->decision == DECIDE_DROP, "the larger one does not");
	CHECK(by_slot(c, 4, 3)->decision == DECIDE_FULL, "a smaller, less shared file fills the rest");
	CHECK_U64(total, 1000, "planned total");
}

static void test_keep_without_growth(void)
{
	struct candidate c[] = {
		{ .slot = 0, .tier = 1, .nprocs = 1, .want_bytes = 700 },
		{ .slot = 1, .tier = 0, .nprocs = 4, .want_bytes = 400, .keep_bytes = 250 },
		{ .slot = 2, .tier = 0, .nprocs = 1, .want_bytes = 200, .keep_bytes = 200 },
	};
	uint64_t total = select_by_budget(c, 3, 1000);
	CHECK(by_slot(c, 3, 1)->decision == DECIDE_KEEP, "locked file that cannot grow keeps its part");
	CHECK(by_slot(c, 3, 2)->decision == DECIDE_DROP, "no room left for a lower-priority file");
	CHECK_U64(total, 950, "planned total counts the kept part");
}

static void test_ties_prefer_locked(void)
{
	struct candidate c[] = {
		{ .slot = 7, .nprocs = 2, .want_bytes = 100 },
		{ .slot = 3, .nprocs = 2, .want_bytes = 100, .keep_bytes = 100 },
	};
	select_by_budget(c, 2, 100);
	CHECK(by_slot(c, 2, 3)->decision == DECIDE_FULL, "on a tie the locked file stays");
	CHECK(by_slot(c, 2, 7)->decision == DECIDE_DROP, "and the new one waits");
}

/* Random populations: the plan never exceeds the budget, and a file is dropped only when it
 * would not fit in what was left when its turn came. */
static void test_random_never_exceeds(void)
{
	unsigned seed = 12345;
	int bad = 0, greedy_bad = 0;
	for (int round = 0; round < 2000; round++) {
		struct candidate c[40];
		size_t n = (size_t)(rand_r(&seed) % 40) + 1;
		uint64_t budget = (uint64_t)(rand_r(&seed) % 5000);
		for (size_t i = 0; i < n; i++) {
			uint64_t want = (uint64_t)(rand_r(&seed) % 1000);
			c[i] = (struct candidate){ .slot = (uint32_t)i, .tier = (uint8_t)(rand_r(&seed) % 3),
						   .nprocs = (uint32_t)(rand_r(&seed) % 5),
						   .want_bytes = want,
						   .keep_bytes = rand_r(&seed) % 2 ? want / 2 : 0 };
		}
		uint64_t total = select_by_budget(c, n, budget), sum = 0, left = budget;
		for (size_t i = 0; i < n; i++) {
			uint64_t took = c[i].decision == DECIDE_FULL ? c[i].want_bytes
					: c[i].decision == DECIDE_KEEP ? c[i].keep_bytes : 0;
			if (c[i].decision == DECIDE_DROP && c[i].want_bytes <= left)
				greedy_bad++;
			sum += took;
			left -= took;
		}
		if (sum != total || total > budget)
			bad++;
	}
	CHECK(bad == 0, "2000 random populations: plan within budget and equal to the sum (%d bad)", bad);
	CHECK(greedy_bad == 0, "no file dropped that would have fit (%d)", greedy_bad);
}

int main(void)
{
	test_order();
	test_short_budget();
	test_keep_without_growth();
	test_ties_prefer_locked();
	test_random_never_exceeds();
	return check_done();
}
