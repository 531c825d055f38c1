/* Planning which page ranges of a file to hold: a pure function of the file's wanted pages,
 * its size and the rules. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "files.h"

/* Gaps of up to this many pages between wanted pages are locked too: the kernel's fault-around
 * reads them anyway, and every separate range costs a VMA (vm.max_map_count is 65530). */
#define GAP_FILL_PAGES 16

/* A byte range of a file, page-aligned. */
struct run {
	uint64_t off, len;
};

/* The planned ranges of one file, in offset order; reused from file to file. */
struct runs {
	struct run *v;
	uint32_t n, cap;
};

/* Plans f into r: all of it when whole, else its wanted pages with gaps of up to GAP_FILL_PAGES
 * filled; cap_bytes at most. Returns the bytes planned (less than planned when out of memory). */
uint64_t plan_runs(struct runs *r, const struct lfile *f, size_t page, bool whole,
		   uint64_t cap_bytes);
void runs_free(struct runs *r);
