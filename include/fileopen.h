/* Opening and verifying a mapped file, for every stage that opens one (scan, lock, state): a
 * descriptor is kept only for a regular file that is the very inode (dev, inode) the process
 * maps, reached by its own path or through the mapping process's root. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "files.h"
#include "pass.h"

/* Opens f (a no-op when it is open) and learns its size; sizes its page bitmap. Returns 0 or
 * -errno, with f->reason saying why (REASON_OPEN_FAILED, NOT_REGULAR, REPLACED, NOT_OWNED,
 * WRITABLE, SPARSE). */
int file_open_verified(struct lockset *ls, struct pass_ctx *c, struct lfile *f);
/* Opens a file by its own path, by the same rules, for the saved state (the identity is the
 * caller's to check). Returns the fd, with *st filled, or -errno (-EBADFD: not regular). */
int file_open_by_path(const char *path, struct stat *st);
/* Makes fd (from file_open_by_path, st its fstat) f's descriptor. Returns 0, -EFBIG (sparse) or
 * -EPERM (owner or mode: file_owner_ok()); fd is closed on error. */
int file_adopt(struct lockset *ls, struct pass_ctx *c, struct lfile *f, int fd,
	       const struct stat *st);
/* Whether f may be locked by its owner and mode: owned by root or an owner in `owners`, and not
 * writable by group or others (`always` files, named by root, pass). Sets f->reason when not. */
bool file_owner_ok(const struct config *cfg, struct lfile *f);
/* Closes the descriptor; a file held by its mappings alone stays watched. */
void file_close(struct lockset *ls, struct lfile *f);
/* Closes the descriptor when files hold more than the descriptor budget allows. */
void file_hold_or_close(struct lockset *ls, struct pass_ctx *c, struct lfile *f);
/* stat() of f by its path, when that still leads to this very inode and a regular file. Returns
 * 0, -ENOENT or -ESTALE. */
int file_stat_by_path(int proc_fd, const struct lfile *f, struct stat *st);
/* Replaced or deleted on disk: the path no longer leads to this inode. */
bool file_replaced(int proc_fd, const struct lfile *f);
/* Mostly holes: never locked because a process maps it. */
bool file_is_sparse(uint64_t size, uint64_t blocks_bytes, size_t page);
/* Sizes f's page bitmap to its size; a bitmap that grew sets ls->want_rebuild. */
void file_want_fit(struct lockset *ls, struct lfile *f, size_t page);
