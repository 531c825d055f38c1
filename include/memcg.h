/* The memory cgroup the daemon runs in, and how much it may still charge before it meets its
 * limit (or an ancestor's). Page cache that mlock() brings in is charged to the daemon's cgroup;
 * at the limit the kernel reclaims the readahead pages it has just added before they are mapped,
 * and mlock()'s populate retries without end. So where a limit exists the daemon locks in
 * chunks and stops, with ENOMEM, while there is still room. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define MEMCG_MAX_LEVELS 16

struct memcg {
	char *dir[MEMCG_MAX_LEVELS]; /* own cgroup first, then its ancestors up to the mount */
	uint32_t nlevels;
	bool v2;
	bool limited;                     /* some level has a limit: locking goes by chunks */
	uint64_t limit[MEMCG_MAX_LEVELS]; /* UINT64_MAX: none; read once per pass */
	bool full;                        /* no room left in this pass: stop asking */
	uint64_t margin;                  /* kept free below the limit */
	struct buf stat;                  /* memory.stat, read again for every chunk */
};

/* Finds the daemon's memory cgroup directory from /proc/self/cgroup and /proc/self/mountinfo
 * text (both NUL-terminated). Writes the directory to dir and whether it is cgroup v2 to *v2.
 * Returns 0, -ENOENT when there is no memory controller, or -ENAMETOOLONG. */
int memcg_locate(const char *cgroup, const char *mountinfo, char *dir, size_t dirlen, bool *v2);

/* Parses a limit file's text into *limit: a byte count, or UINT64_MAX for none ("max" in v2, a
 * count of 2^62 or more in v1). Returns false on malformed text. */
bool memcg_parse_limit(const char *text, uint64_t *limit);

/* Sums the reclaimable file pages (inactive_file + active_file, or their total_ forms in v1)
 * from memory.stat text. */
uint64_t memcg_parse_reclaimable(const char *stat, bool v2);

/* Finds the daemon's own cgroup and its ancestors; without a memory controller the struct
 * stays empty and nothing is limited. */
void memcg_init(struct memcg *m);
void memcg_free(struct memcg *m);
/* Reads the limits again; once per pass. */
void memcg_refresh(struct memcg *m);
/* The bytes that may still be charged before the tightest limit, less the margin; UINT64_MAX
 * when nothing limits the daemon. */
uint64_t memcg_room(struct memcg *m);
