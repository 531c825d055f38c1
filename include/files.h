/* The table of files seen in lockable mappings (code and read-only data): identity (dev, inode), what processes use of
 * them, and what prelockd holds locked. Files are addressed by a stable slot index so that
 * per-process caches can refer to them cheaply (12 bytes a mapping). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Why a file is not (fully) locked; shown by --dry-run and in debug logs. */
enum file_reason {
	REASON_NONE = 0,      /* selected */
	REASON_NOT_INCLUDED,  /* path matches no include regex */
	REASON_EXCLUDED,      /* path matches an exclude regex */
	REASON_DELETED,       /* only seen as " (deleted)": can never be opened */
	REASON_OPEN_FAILED,   /* open() failed: errno in open_errno */
	REASON_NOT_REGULAR,   /* fstat says it is not a regular file */
	REASON_REPLACED,      /* the path now names another inode than the one mapped */
	REASON_SPARSE,        /* mostly holes: never locked because a process maps it */
	REASON_EMPTY,         /* nothing to lock (size 0 or no pages in use yet) */
	REASON_BUDGET,        /* did not fit in the budget */
	REASON_BUDGET_PARTLY, /* keeps what it has locked, cannot grow: budget */
	REASON_UNMAPPED,      /* no process maps it; kept for `keep` scans */
	REASON_LOCK_FAILED,   /* mmap or mlock failed: errno in lock_errno */
	REASON_NOT_OWNED,     /* owned by neither root nor an owner in `owners` */
	REASON_WRITABLE,      /* group or others may write it */
	REASON_MAY_BLOCK,     /* on FUSE or a network filesystem (allow_blocking_filesystems) */
};
const char *file_reason_to_string(enum file_reason r);

/* A locked range of a file: one mmap()ed, mlock()ed VMA of the daemon. */
struct piece {
	uint64_t off, len; /* page-aligned file offset and length in bytes */
	void *addr;
};

struct lfile {
	uint64_t dev, ino; /* dev as makedev(major, minor) */
	char *path;        /* as the mapping process sees it */
	pid_t ns_pid;      /* a process of another mount namespace that maps it, or 0 */
	bool own_path;     /* last opened by its own path, not through /proc/ns_pid/root */
	bool changed;      /* an inotify event since it was last looked at */
	bool critical;     /* a critical process maps it (recomputed each pass) */
	int fd;            /* held while anything is locked, else -1 */
	int wd;            /* inotify watch while anything is locked, else 0 (watch.c) */
	uint64_t size;     /* st_size when last checked; 0 before first open */
	uint64_t blocks_bytes;
	/* st_mtim and st_ctim in ns when lock_refresh() last looked; 0: not yet. A file truncated
	 * and written back to its size shows the same size and blocks, only these move. */
	int64_t mtime_ns, ctime_ns;
	bool opened_once, eligible, always, deleted_only;
	bool as_code, as_data; /* mapped as code (executable), as read-only data */
	uint16_t path_len;     /* strlen(path), at most UINT16_MAX (names from maps are shorter) */
	int open_errno, lock_errno;
	enum file_reason reason;
	uid_t uid;   /* owner and mode when last checked before an open (`owners`) */
	mode_t mode;

	/* Use, recomputed each pass from the process caches. */
	uint32_t nprocs;
	uint32_t last_proc_mark;
	uint32_t scan_mark;      /* scan.c: the read of a process that last listed it */
	uint32_t checked_pass;   /* last pass that opened or fstat()ed it */
	uint32_t last_seen_pass; /* last pass in which a process mapped it */
	/* scan.c: the read of a process (its pm_seq) since which every process read has looked up
	 * its pages in pagemap; 0: not since its bitmap was cleared or grew, or it was not eligible. */
	uint64_t pm_since;

	/* Pages wanted, one bit a page below `want_npages` (mapped/resident modes). */
	uint64_t *want_bits;
	uint32_t want_npages;
	/* Its locked pieces are exactly its plan, and nothing the plan is made of (wanted pages,
	 * size, pieces, rules) changed since: the pass need not plan it again. settled_always is
	 * the `always` flag the plan was made with. */
	bool settled, settled_always;

	struct piece *pieces;
	uint32_t npieces, cap_pieces;
	uint64_t locked_bytes;

	/* The last pass's plan: bytes it would hold, and the decision (for --dry-run, status). */
	uint64_t plan_bytes;
	uint8_t tier;

	uint32_t hash_next; /* slot + 1 of the next file in the bucket; 0 ends */
	bool in_use;
};

struct file_table {
	struct lfile *slots;
	uint32_t nslots, cap, nused;
	uint32_t *free_list;
	uint32_t nfree;
	uint32_t *buckets; /* slot + 1; 0 empty */
	uint32_t nbuckets;
};

/* How processes map the file: "code", "data" (read-only data), "code+data", or "-" (an `always`
 * file nothing maps). */
const char *file_kind_to_string(const struct lfile *f);

void file_table_free(struct file_table *t);
/* Returns the slot of (dev, ino), or -1. */
int64_t file_table_find(const struct file_table *t, uint64_t dev, uint64_t ino);
/* Finds or adds; *created tells which. Returns the slot or -ENOMEM. */
int64_t file_table_get(struct file_table *t, uint64_t dev, uint64_t ino, const char *path,
		       bool *created);
/* Removes a slot; the caller has unlocked and closed it. */
void file_table_remove(struct file_table *t, uint32_t slot);
static inline struct lfile *file_at(struct file_table *t, uint32_t slot)
{
	return &t->slots[slot];
}

/* A bitmap larger than this (16 GiB of 4 KiB pages, 512 KiB of bits) is not worth its memory. */
#define MAX_WANT_PAGES (1u << 22)

/* Page bitmap helpers. */
int file_want_reserve(struct lfile *f, uint64_t npages);
void file_want_set_range(struct lfile *f, uint64_t first_page, uint64_t npages);
void file_want_clear(struct lfile *f);
static inline bool file_want_test(const struct lfile *f, uint64_t page)
{
	return page < f->want_npages && (f->want_bits[page / 64] >> (page % 64)) & 1;
}
