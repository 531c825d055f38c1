/* Which filesystems prelockd may touch, decided from the mount table before a path is looked
 * up, and the overlayfs inode check. A path on FUSE or a network filesystem can make an open,
 * a stat or a page fault wait forever for a server that does not answer; the mount table says
 * which filesystem a device or a directory is on without asking it.
 *
 * The tables are read once a pass at most, per view: the daemon's own (/proc/self/mountinfo)
 * and one other process's (the one asked about last), and the answers are kept per device for
 * the pass. They live here rather than in the pass's arguments so that every stage's look at a
 * path (the lock stage's by-path checks, the state's) gets them without new arguments. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* A new pass (or the state restore): tables and answers from before are forgotten, since mounts
 * come and go and device numbers are reused. cfg must live until the next call. */
void mounts_begin(const struct config *cfg, int proc_fd);
void mounts_free(void);

/* The filesystem of the device a process maps a file from (pid: that process; its mount table
 * first, then the daemon's) may block, or is not known: an overlayfs may block when one of its
 * layers may. Filesystem types in cfg->allow_filesystems never block. */
bool mounts_dev_may_block(uint64_t dev, pid_t pid);
/* A lookup of path, in the daemon's own view (pid 0) or that process's, would pass through a
 * mount that may block (or the table cannot be read). */
bool mounts_path_may_block(pid_t pid, const char *path);
/* fd (an O_PATH descriptor on overlayfs, reached in pid's view or our own) is the file a process
 * maps as (want_dev, the same inode number): maps names the overlay's own device (6.6 and
 * later) or, before, the device of the layer the file lives on, while fstat() shows a per-layer
 * device of the overlay's own. */
bool mounts_overlay_matches(int fd, pid_t pid, uint64_t want_dev);
