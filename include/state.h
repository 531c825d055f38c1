/* The saved locked set: what to lock at the next start, before the first scan, so that a reboot
 * is protected before the desktop comes up. */
#pragma once
#include "config.h"
#include "pass.h"

/* A state of the most files and ranges the daemon can hold (vm.max_map_count ranges, a PATH_MAX
 * name each, escaped) stays well below this; anything bigger is not ours, and would sit in the
 * locked heap while read. */
#define STATE_FILE_MAX_BYTES (16u << 20)

/* Writes the locked set to path atomically (write, fsync, rename). Returns 0 or -errno. */
int state_save(const struct lockset *ls, int proc_fd, const char *path);
/* Locks what the state file at path lists, where each file is still the one saved. Returns the
 * number of files restored, 0 when there is no file, -EBADMSG with *bad_line set for a file that
 * is not a valid state file (ignored as a whole), -EBADFD for one that is not a regular
 * file, -EFBIG for one over STATE_FILE_MAX_BYTES, or -errno. */
int state_restore(struct lockset *ls, struct pass_ctx *c, const char *path, int *bad_line);
/* Deletes the state file; 0 when there is none. */
int state_reset(const char *path);
