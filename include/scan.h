/* The scan stage: walk /proc, keep a cache of each process's file mappings, learn which pages of
 * each file are used, and re-read only the processes whose mappings may have changed. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "maps.h"
#include "pass.h"
#include "util.h"

/* The page range of a cached mapping; kept only in `mapped` mode, the one mode that needs it. */
struct prange {
	uint32_t pgoff;
	uint32_t npages;
};

struct proc {
	pid_t pid;
	bool critical;
	bool kthread; /* a kernel thread: nothing to read; kept so that checks skip it */
	uint64_t starttime; /* clock ticks since boot: tells a reused pid apart */
	uint64_t vsize;     /* bytes of address space: changes with most mmap/munmap */
	uint64_t faults;    /* minflt + majflt of all threads: a new page needs a fault */
	uint32_t nmaps;
	/* The text of its maps at its last read, if that read was complete and clean: the keyed
	 * hash (struct scan's maps_key) with MAPS_HASH_VALID set, and the mappings it counted;
	 * maps_hash 0 otherwise. A full pass does not parse the same text again (scan.c). */
	uint32_t nmappings;
	uint64_t maps_hash;
	/* The read (struct scan's pm_seq) whose pagemap lookups of its every mapping completed, 0
	 * if the last read did not: the base for skipping them while it is unchanged. */
	uint64_t pm_seq;
	int stat_fd;           /* its /proc/PID/stat kept open for the next pass, or -1 */
	uint32_t *slots;       /* the file of each executable mapping */
	struct prange *ranges; /* NULL unless `mapped` */
};

/* A mapping whose pages are to be looked up in /proc/PID/pagemap. */
struct pm_req {
	uint64_t vpage, npages; /* virtual page number and count */
	uint32_t slot, pgoff;   /* file and its page offset */
};

/* /proc/PID/stat descriptors kept open from pass to pass at most (see read_proc_stat()). */
#define SCAN_STAT_FDS_MAX 1024

struct scan {
	pid_t self_pid;    /* never scanned */
	struct proc *procs; /* sorted by pid */
	uint32_t nprocs;
	uint32_t nkthreads; /* of them, kernel threads */
	uint32_t new_waiting; /* new processes seen but not read yet (too young): the next check */
	uint32_t nyoung;      /* processes still young (c->young_ticks) or not read yet */
	bool procs_changed; /* the last scan read a process again, or the set of processes changed */
	int use_query;      /* PROCMAP_QUERY: 1 yes, 0 no, -1 untried */
	uint32_t read_seq;  /* processes read: a file's scan_mark lists it once per read */
	uint64_t pm_seq;    /* likewise, never wrapping: struct proc's and struct lfile's pm_* */
	uint32_t stat_fds, stat_fds_max; /* /proc/PID/stat descriptors kept, and how many may be */
	/* Scratch, reused from process to process. */
	struct buf buf; /* /proc/PID/cgroup */
	char *maps_buf; /* MAPS_READ_BYTES: /proc/PID/maps, a piece at a time */
	uint64_t *pagemap_buf;
	struct pm_req *pm;
	uint32_t npm, cap_pm;
	/* The key of struct proc's maps_hash, drawn once from getrandom() (maps_key_ready). */
	struct maps_hash_key maps_key;
	bool maps_key_ready;
};
#define MAPS_HASH_VALID (UINT64_C(1) << 63)

void scan_init(struct scan *s);
/* Reads the processes (all of them on a full pass, else those that changed; with c->new_only,
 * only new and young ones), adds the files they map to the lockset and marks the pages they use. Returns 0 or -errno (the caches then
 * hold what could be read). */
int scan_processes(struct scan *s, struct lockset *ls, struct pass_ctx *c);
/* Recomputes, for every file, how many processes map it, whether a critical one does, and (in
 * `mapped` mode) which pages are mapped. */
void scan_aggregate(struct scan *s, struct lockset *ls, struct pass_ctx *c);
void scan_free(struct scan *s);
