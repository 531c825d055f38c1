/* Opening and verifying mapped files by the safety rules. */
#include "fileopen.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mounts.h"
#include "util.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* A file is "sparse" when fewer than half its bytes are allocated on disk. */
#define SPARSE_MIN_PAGES 16

bool file_is_sparse(uint64_t size, uint64_t blocks_bytes, size_t page)
{
	return size > SPARSE_MIN_PAGES * page && blocks_bytes < size / 2;
}

/* Kernels before 5.6 (and seccomp filters that do not know it) answer ENOSYS to openat2. */
static bool no_openat2;

/* The path walk without openat2: one O_PATH|O_NOFOLLOW open per component from root, so that no
 * symlink is followed anywhere and "." or ".." never appear (a path from maps has neither). */
static int walk_nofollow(int root, const char *path)
{
	char comp[NAME_MAX + 1];
	int dfd = root == AT_FDCWD ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)
				   : fcntl(root, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	for (const char *p = path;;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (!n) /* a path that ends in '/' names a directory */
			return close(dfd), -EISDIR;
		if (n > NAME_MAX || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return close(dfd), -ELOOP;
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		int fd = openat(dfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(dfd);
		if (fd < 0)
			return -e;
		while (*p == '/')
			p++;
		if (!*p)
			return fd; /* the last component: the caller checks what it is */
		struct stat st = { 0 };
		if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
			int r = S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
			close(fd);
			return r;
		}
		dfd = fd;
	}
}

/* An O_PATH descriptor of path (absolute) as seen from root: AT_FDCWD for our own view, or a
 * descriptor of /proc/PID/root for the mapping process's. No symlink is followed, in the middle
 * or at the end: a path from maps is the kernel's name of the file, which holds none, so one met
 * on the way was put there since, and could lead out of the process's root (an absolute
 * directory symlink resolves against the walker's root) to a FIFO or a device. An O_PATH open
 * calls no open method of the file: nothing a device or FIFO would do on open happens. */
static int open_path_only(int root, const char *path)
{
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	if (root != AT_FDCWD)
		how.resolve |= RESOLVE_IN_ROOT;
#ifdef PRELOCKD_DEBUG
	/* Test builds only: the walk that kernels before 5.6 get, on this one. */
	if (getenv("PRELOCKD_DEBUG_NO_OPENAT2"))
		no_openat2 = true;
#endif
	if (!no_openat2) {
		long fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != ENOSYS)
			return -errno;
		no_openat2 = true;
	}
	return walk_nofollow(root, path);
}

/* A descriptor of the root of the process that maps f (another mount namespace). */
static int open_proc_root(int proc_fd, pid_t pid)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%d/root", (int)pid);
	int fd = openat(proc_fd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* An O_PATH descriptor of f's path: in our own view, or (own false) in its process's root. */
static int open_f_path(int proc_fd, const struct lfile *f, bool own)
{
	if (own)
		return open_path_only(AT_FDCWD, f->path);
	_cleanup_close_ int root = open_proc_root(proc_fd, f->ns_pid);
	if (root < 0)
		return root;
	return open_path_only(root, f->path);
}

/* Opens for reading the file an O_PATH descriptor holds, once it is known to be the right one:
 * through /proc/self/fd, which leads to that very file whatever happened to its path since. */
static int reopen_for_reading(int path_fd)
{
	char buf[40];
	snprintf(buf, sizeof(buf), "/proc/self/fd/%d", path_fd);
	int fd = open(buf, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* Checks what an O_PATH descriptor leads to: a regular file, the very inode the process maps.
 * view: whose mount table holds the mount it was reached through (0: our own). */
static int check_identity(int path_fd, const struct lfile *f, pid_t view, struct stat *st,
			  enum file_reason *reason)
{
	*reason = REASON_OPEN_FAILED;
	if (fstat(path_fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode)) {
		*reason = REASON_NOT_REGULAR;
		return -EBADFD;
	}
	/* On overlayfs with layers on more than one filesystem, fstat() shows a per-layer device
	 * where maps shows the overlay's own (6.6 and later) or the layer's (before): the same
	 * inode number, and the mount table says which device it is. */
	if ((uint64_t)st->st_ino != f->ino ||
	    ((uint64_t)st->st_dev != f->dev && !mounts_overlay_matches(path_fd, view, f->dev))) {
		*reason = REASON_REPLACED;
		return -ESTALE;
	}
	*reason = REASON_NONE;
	return 0;
}

/* Owned by root or a listed owner, and only the owner may write: no unprivileged user can get
 * memory locked for a file of their own, nor for one they can rewrite at will. */
static enum file_reason owner_reason(const struct config *cfg, uid_t uid, mode_t mode)
{
	if (!owner_allowed(cfg, uid))
		return REASON_NOT_OWNED;
	if (mode & (S_IWGRP | S_IWOTH))
		return REASON_WRITABLE;
	return REASON_NONE;
}

bool file_owner_ok(const struct config *cfg, struct lfile *f)
{
	enum file_reason why = f->always ? REASON_NONE : owner_reason(cfg, f->uid, f->mode);
	if (why != REASON_NONE)
		f->reason = why;
	return why == REASON_NONE;
}

/* Opens f by the safety rules: O_PATH first, checked, and only then opened for reading. Returns
 * the fd or -errno, with *reason set for a file that is not it. */
static int open_checked(int proc_fd, const struct config *cfg, struct lfile *f, bool own,
			struct stat *st, enum file_reason *reason)
{
	pid_t view = own ? 0 : f->ns_pid;
	/* Decided from the mount table before the path is touched: a lookup through a FUSE or
	 * network mount can wait forever. */
	if (mounts_path_may_block(view, f->path)) {
		*reason = REASON_MAY_BLOCK;
		return -EDEADLK;
	}
	*reason = REASON_OPEN_FAILED;
	_cleanup_close_ int pfd = open_f_path(proc_fd, f, own);
	if (pfd < 0)
		return pfd;
	int r = check_identity(pfd, f, view, st, reason);
	if (r < 0)
		return r;
	f->uid = st->st_uid;
	f->mode = st->st_mode;
	if (!f->always && (*reason = owner_reason(cfg, f->uid, f->mode)) != REASON_NONE)
		return -EPERM;
	r = reopen_for_reading(pfd);
	if (r < 0)
		*reason = REASON_OPEN_FAILED;
	return r;
}

void file_want_fit(struct lockset *ls, struct lfile *f, size_t page)
{
	uint32_t had = f->want_npages;
	(void)file_want_reserve(f, MIN(round_up(f->size, page) / page, (uint64_t)MAX_WANT_PAGES));
	if (f->want_npages != had)
		ls->want_rebuild = true;
}

/* Takes fd, open on f's inode (st its fstat), as f's descriptor. */
static int adopt(struct lockset *ls, struct pass_ctx *c, struct lfile *f, int fd,
		 const struct stat *st)
{
	c->stats.files_opened++;
	f->checked_pass = c->pass;
	if ((uint64_t)st->st_size != f->size)
		f->settled = false;
	f->size = (uint64_t)st->st_size;
	f->blocks_bytes = (uint64_t)st->st_blocks * 512;
	f->opened_once = true;
	if (file_is_sparse(f->size, f->blocks_bytes, ls->page)) {
		f->reason = REASON_SPARSE;
		close(fd);
		return -EFBIG;
	}
	ls->fds_held++;
	if (f->reason == REASON_OPEN_FAILED || f->reason == REASON_SPARSE ||
	    f->reason == REASON_REPLACED || f->reason == REASON_NOT_REGULAR ||
	    f->reason == REASON_NOT_OWNED || f->reason == REASON_WRITABLE ||
	    f->reason == REASON_MAY_BLOCK)
		f->reason = REASON_NONE;
	/* Whichever open first succeeds sizes the page bitmap (`mapped`, `resident`). */
	file_want_fit(ls, f, ls->page);
	f->fd = fd;
	return 0;
}

int file_open_verified(struct lockset *ls, struct pass_ctx *c, struct lfile *f)
{
	/* Zeroed for clang-analyzer: open_checked() fills it whenever it returns a descriptor, but
	 * the analyzer allows a failed fstat() with errno 0, which would return 0. */
	struct stat st = { 0 };
	enum file_reason reason;
	int fd;

	if (f->fd >= 0)
		return 0;
	/* The filesystem the process maps it from, before any path is looked up: the inode
	 * lives there whatever path leads to it. */
	if (mounts_dev_may_block(f->dev, f->ns_pid)) {
		f->reason = REASON_MAY_BLOCK;
		if (!c->stats.may_block++)
			c->stats.may_block_slot = f - ls->files.slots;
		return -EDEADLK;
	}
	/* Our own view first, even for a process in another mount namespace: a sandboxed daemon
	 * (PrivateTmp= and friends) is in a namespace of its own, yet sees the same /usr. The
	 * inode check makes a wrong file harmless; then try the process's own view. */
	fd = open_checked(c->proc_fd, c->cfg, f, true, &st, &reason);
	f->own_path = fd >= 0;
	if (fd < 0 && f->ns_pid && reason != REASON_NOT_REGULAR && reason != REASON_NOT_OWNED &&
	    reason != REASON_WRITABLE)
		/* (A path that may block in our view may not in the process's: it is looked at
		 * there by its own mount table.) */
		fd = open_checked(c->proc_fd, c->cfg, f, false, &st, &reason);
	if (fd < 0) {
		/* Refused by owner, mode or filesystem is a rule, not a failure. */
		if (reason != REASON_NOT_OWNED && reason != REASON_WRITABLE &&
		    reason != REASON_MAY_BLOCK)
			c->stats.open_failed++;
		if (fd == -EMFILE || fd == -ENFILE)
			c->stats.nofile++;
		/* Its user may not read it (a 0711 program under the unit): the daemon says so. */
		if (reason == REASON_OPEN_FAILED && (fd == -EACCES || fd == -EPERM) &&
		    !c->stats.open_denied++) {
			c->stats.open_denied_slot = f - ls->files.slots;
			c->stats.open_denied_err = fd;
		}
		f->open_errno = -fd;
		f->reason = reason;
		return fd;
	}
	return adopt(ls, c, f, fd, &st);
}

int file_open_by_path(const char *path, struct stat *st)
{
	if (mounts_path_may_block(0, path))
		return -EDEADLK;
	_cleanup_close_ int pfd = open_path_only(AT_FDCWD, path);
	if (pfd < 0)
		return pfd;
	if (fstat(pfd, st) < 0 || !S_ISREG(st->st_mode))
		return -EBADFD;
	return reopen_for_reading(pfd);
}

int file_adopt(struct lockset *ls, struct pass_ctx *c, struct lfile *f, int fd,
	       const struct stat *st)
{
	f->own_path = true;
	f->uid = st->st_uid;
	f->mode = st->st_mode;
	if (!file_owner_ok(c->cfg, f)) {
		close(fd);
		return -EPERM;
	}
	return adopt(ls, c, f, fd, st);
}

void file_close(struct lockset *ls, struct lfile *f)
{
	if (!f->npieces)
		watch_remove(&ls->watch, f); /* a file held by its mappings alone stays watched */
	if (f->fd >= 0) {
		close(f->fd);
		ls->fds_held--;
	}
	f->fd = -1;
}

/* A locked file needs no descriptor: its mappings hold it. The descriptor only makes changes to
 * it cheap to see (fstat). Under a low RLIMIT_NOFILE, the scan of /proc comes first. */
void file_hold_or_close(struct lockset *ls, struct pass_ctx *c, struct lfile *f)
{
	if (f->fd < 0 || ls->fds_held <= ls->fd_budget)
		return;
	file_close(ls, f);
	c->stats.fds_short = true;
}

int file_stat_by_path(int proc_fd, const struct lfile *f, struct stat *st)
{
	enum file_reason reason;
	bool own = f->own_path || !f->ns_pid;
	pid_t view = own ? 0 : f->ns_pid;
	if (mounts_path_may_block(view, f->path))
		return -ENOENT; /* not reachable without the risk of waiting forever */
	_cleanup_close_ int pfd = open_f_path(proc_fd, f, own);
	if (pfd < 0)
		return -ENOENT;
	return check_identity(pfd, f, view, st, &reason) < 0 ? -ESTALE : 0;
}

bool file_replaced(int proc_fd, const struct lfile *f)
{
	struct stat st;
	return file_stat_by_path(proc_fd, f, &st) < 0;
}
