/* /proc/PID/mountinfo, parsed (a pure parser over a buffer, as the other /proc parsers), and the
 * questions prelockd asks of it: which filesystem a device is, which mount holds a path, which
 * layers an overlayfs has, and whether a filesystem type may block forever. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One mount. The strings point into the parsed buffer, unescaped in place. */
struct mnt {
	uint32_t id;
	uint64_t dev; /* makedev(major, minor) */
	const char *point;
	const char *fstype;
	const char *super_opts;
};

struct mnt_table {
	struct mnt *v;
	uint32_t n, cap;
};

/* Parses buf (modified: fields are cut and unescaped in place) into t, which is emptied first
 * (its array reused). Malformed lines are skipped. Returns 0 or -ENOMEM. */
int mountinfo_parse(char *buf, size_t len, struct mnt_table *t);
void mnt_table_free(struct mnt_table *t);

const struct mnt *mnt_by_id(const struct mnt_table *t, uint32_t id);
const struct mnt *mnt_by_dev(const struct mnt_table *t, uint64_t dev);
/* The mount that holds path (absolute, in the table's view): the longest mount point that is
 * path or a directory above it; of equal ones the last (the top of a stack). NULL if none. */
const struct mnt *mnt_holding(const struct mnt_table *t, const char *path);

/* Calls fn for each layer directory of an overlayfs mount (lowerdir, upperdir, and the 6.7+
 * lowerdir+ and datadir+ forms), unescaped. Stops at and returns fn's first nonzero answer.
 * Returns -EINVAL when a layer cannot be read as an absolute path (given relative at mount
 * time, or too long). */
int mnt_overlay_layers(const struct mnt *m, int (*fn)(const char *dir, void *ud), void *ud);

/* FUSE and network filesystems: an open, a stat or a page fault there waits for a server that
 * may never answer (a user's FUSE server, a dead NFS server). */
bool fstype_may_block(const char *fstype);
