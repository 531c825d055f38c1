/* Opening and verifying mapped files by the safety rules. */
#include "fileopen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "util.h"

/* A file is "sparse" when fewer than half its bytes are allocated on disk. */
#define SPARSE_MIN_PAGES 16

bool file_is_sparse(uint64_t size, uint64_t blocks_bytes, size_t page)
{
	return size > SPARSE_MIN_PAGES * page && blocks_bytes < size / 2;
}

/* The same path inside the root of the process that maps f (another mount namespace), relative
 * to the /proc directory. NULL when it does not fit. */
static const char *path_in_ns(const struct lfile *f, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%d/root%s", (int)f->ns_pid, f->path) >= len)
		return NULL;
	return buf;
}

/* Opens by the safety rules and checks that the result is a regular file and the very inode the
 * process maps. Returns the fd or -errno, with *reason set for a file that is not it. */
static int open_checked(int dirfd, const char *path, const struct lfile *f, struct stat *st,
			enum file_reason *reason)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
	*reason = REASON_OPEN_FAILED;
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st->st_mode)) {
		*reason = REASON_NOT_REGULAR;
		close(fd);
		return -EBADFD;
	}
	if ((uint64_t)st->st_dev != f->dev || (uint64_t)st->st_ino != f->ino) {
		*reason = REASON_REPLACED;
		close(fd);
		return -ESTALE;
	}
	*reason = REASON_NONE;
	return fd;
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
	    f->reason == REASON_REPLACED || f->reason == REASON_NOT_REGULAR)
		f->reason = REASON_NONE;
	/* Whichever open first succeeds sizes the page bitmap (`mapped`, `resident`). */
	file_want_fit(ls, f, ls->page);
	f->fd = fd;
	return 0;
}

int file_open_verified(struct lockset *ls, struct pass_ctx *c, struct lfile *f)
{
	char buf[4200];
	/* Zeroed for clang-analyzer: open_checked() fills it whenever it returns a descriptor, but
	 * the analyzer allows a failed fstat() with errno 0, which would return 0. */
	struct stat st = { 0 };
	enum file_reason reason;
	int fd;

	if (f->fd >= 0)
		return 0;
	/* Our own view first, even for a process in another mount namespace: a sandboxed daemon
	 * (PrivateTmp= and friends) is in a namespace of its own, yet sees the same /usr. The
	 * inode check makes a wrong file harmless; then try the process's own view. */
	fd = open_checked(AT_FDCWD, f->path, f, &st, &reason);
	f->own_path = fd >= 0;
	if (fd < 0 && f->ns_pid && reason != REASON_NOT_REGULAR) {
		const char *p = path_in_ns(f, buf, sizeof(buf));
		fd = p ? open_checked(c->proc_fd, p, f, &st, &reason) : -ENAMETOOLONG;
	}
	if (fd < 0) {
		c->stats.open_failed++;
		if (fd == -EMFILE || fd == -ENFILE)
			c->stats.nofile++;
		f->open_errno = -fd;
		f->reason = reason;
		return fd;
	}
	return adopt(ls, c, f, fd, &st);
}

int file_open_by_path(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EBADFD;
	}
	return fd;
}

int file_adopt(struct lockset *ls, struct pass_ctx *c, struct lfile *f, int fd,
	       const struct stat *st)
{
	f->own_path = true;
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

/* The path to reach f by: its own, or the one through the mapping process's root. */
static int path_of(const struct lfile *f, int proc_fd, char *buf, size_t len, const char **path)
{
	if (f->own_path || !f->ns_pid) {
		*path = f->path;
		return AT_FDCWD;
	}
	*path = path_in_ns(f, buf, len);
	return proc_fd;
}

int file_stat_by_path(int proc_fd, const struct lfile *f, struct stat *st)
{
	char buf[4200];
	const char *path;
	int dirfd = path_of(f, proc_fd, buf, sizeof(buf), &path);
	if (!path || fstatat(dirfd, path, st, 0) < 0)
		return -ENOENT;
	if ((uint64_t)st->st_dev != f->dev || (uint64_t)st->st_ino != f->ino || !S_ISREG(st->st_mode))
		return -ESTALE;
	return 0;
}

bool file_replaced(int proc_fd, const struct lfile *f)
{
	struct stat st;
	return file_stat_by_path(proc_fd, f, &st) < 0;
}
