/* Which files qualify and which fit: the path rules, the budget, and the selection, pure
 * functions so their rules are unit tested without a kernel. Selection Order: files of critical processes (and `always` files) first, then
 * files mapped by more processes, then smaller files; already-locked files win ties so that a
 * rescan does not churn. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "files.h"

enum decision {
	DECIDE_FULL, /* lock everything wanted */
	DECIDE_KEEP, /* keep the pieces already locked, do not grow */
	DECIDE_DROP, /* unlock everything */
};

struct candidate {
	uint32_t slot;
	uint8_t tier;        /* 2 always, 1 critical, 0 other */
	uint32_t nprocs;
	uint64_t want_bytes; /* bytes locked if fully selected */
	uint64_t keep_bytes; /* bytes already locked that stay wanted */
	enum decision decision;
};

/* Sorts by priority and decides each candidate so that the planned total never exceeds budget.
 * Returns the planned total in bytes. */
uint64_t select_by_budget(struct candidate *c, size_t n, uint64_t budget_bytes);

/* The budget: max_total and max_total_percent of memtotal_bytes, the smaller, page-rounded;
 * 0 when neither is set. */
uint64_t compute_budget(const struct config *cfg, uint64_t memtotal_bytes, size_t page);

/* Judges f's path by the include and exclude rules: sets f->eligible, and f->reason when not. */
void select_judge_path(const struct config *cfg, struct lfile *f);
