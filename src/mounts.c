/* Which filesystems may be touched, from the mount table; see mounts.h. */
#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>

#include "mountinfo.h"
#include "util.h"

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif
/* A mount table is a few KiB (a container host's a few hundred); a user can make one of tens of
 * thousands of mounts in a namespace of their own. Past this the table is not read, and what it
 * would have said counts as "may block": that user's files are not touched. */
#define MOUNTINFO_MAX_BYTES (4u << 20)
/* A buffer grown past this for one hostile table is given back at the next pass. */
#define MOUNTINFO_KEEP_BYTES (256u << 10)
#define DEV_CACHE 64
/* overlayfs stacks at most two deep (FILESYSTEM_MAX_STACK_DEPTH); more is a loop. */
#define LAYER_DEPTH 4

struct view {
	pid_t pid; /* 0: the daemon's own */
	uint32_t gen;
	int err;
	struct buf buf;
	struct mnt_table t;
};

static struct {
	const struct config *cfg;
	int proc_fd;
	uint32_t gen;
	struct view self, other;
	struct {
		uint64_t dev;
		uint32_t gen;
		bool may_block;
	} devs[DEV_CACHE];
	uint32_t next_dev;
} M = { .proc_fd = -1 };

static void view_free(struct view *v)
{
	buf_free(&v->buf);
	mnt_table_free(&v->t);
	v->gen = 0;
}

void mounts_begin(const struct config *cfg, int proc_fd)
{
	M.cfg = cfg;
	M.proc_fd = proc_fd;
	if (!++M.gen)
		M.gen = 1;
	if (M.other.buf.cap > MOUNTINFO_KEEP_BYTES)
		view_free(&M.other);
	if (M.self.buf.cap > MOUNTINFO_KEEP_BYTES)
		view_free(&M.self);
}

void mounts_free(void)
{
	view_free(&M.self);
	view_free(&M.other);
}

static int read_capped(struct buf *b, const char *path)
{
	int dirfd = M.proc_fd >= 0 ? M.proc_fd : AT_FDCWD;
	char abs[48];
	if (dirfd == AT_FDCWD) {
		snprintf(abs, sizeof(abs), "/proc/%s", path);
		path = abs;
	}
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	b->len = 0;
	for (;;) {
		if (b->len == b->cap) {
			if (b->cap >= MOUNTINFO_MAX_BYTES)
				return -EFBIG;
			size_t ncap = MIN(b->cap ? b->cap * 2 : 16384, (size_t)MOUNTINFO_MAX_BYTES);
			char *p = realloc(b->data, ncap);
			if (!p)
				return -ENOMEM;
			b->data = p;
			b->cap = ncap;
		}
		ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		b->len += (size_t)n;
	}
}

/* The mount table of pid's view (0: our own), read at most once a pass. */
static struct view *view_of(pid_t pid)
{
	struct view *v = pid ? &M.other : &M.self;
	char path[32];
	if (v->gen == M.gen && v->pid == pid && M.gen)
		return v;
	v->gen = M.gen;
	v->pid = pid;
	if (pid)
		snprintf(path, sizeof(path), "%d/mountinfo", (int)pid);
	else
		snprintf(path, sizeof(path), "self/mountinfo");
	v->err = read_capped(&v->buf, path);
	if (!v->err)
		v->err = mountinfo_parse(v->buf.data, v->buf.len, &v->t);
	if (v->err)
		v->t.n = 0;
	return v;
}

static bool type_may_block(const char *type)
{
	return fstype_may_block(type) &&
	       !(M.cfg && strv_contains(&M.cfg->allow_blocking_filesystems, type));
}

static bool mnt_may_block(const struct view *v, const struct mnt *m, int depth);

struct layer_walk {
	const struct view *v;
	int depth;
	uint64_t want_dev; /* mounts_overlay_matches() */
};

static int layer_blocks(const char *dir, void *ud)
{
	const struct layer_walk *w = ud;
	const struct mnt *m = mnt_holding(&w->v->t, dir);
	return !m || mnt_may_block(w->v, m, w->depth + 1);
}

/* An overlayfs may block when a layer may: its files are read from there. As far as the table
 * shows: a layer named by a relative path, or on a mount the table does not hold, may. */
static bool mnt_may_block(const struct view *v, const struct mnt *m, int depth)
{
	if (strcmp(m->fstype, "overlay") != 0)
		return type_may_block(m->fstype);
	if (depth >= LAYER_DEPTH)
		return true;
	struct layer_walk w = { .v = v, .depth = depth };
	return mnt_overlay_layers(m, layer_blocks, &w) != 0;
}

bool mounts_dev_may_block(uint64_t dev, pid_t pid)
{
	for (uint32_t i = 0; i < DEV_CACHE; i++)
		if (M.devs[i].gen == M.gen && M.gen && M.devs[i].dev == dev)
			return M.devs[i].may_block;
	/* The process's table first: a mount of its own namespace is only there. Device numbers
	 * are the same in every namespace, so our own table answers for the rest (before 6.6,
	 * maps shows an overlay file's layer device, which a container's table may not hold). */
	struct view *v = view_of(pid);
	const struct mnt *m = mnt_by_dev(&v->t, dev);
	if (!m && pid) {
		v = view_of(0);
		m = mnt_by_dev(&v->t, dev);
	}
	bool may_block = !m || mnt_may_block(v, m, 0);
	uint32_t k = M.next_dev++ % DEV_CACHE;
	M.devs[k].dev = dev;
	M.devs[k].gen = M.gen;
	M.devs[k].may_block = may_block;
	return may_block;
}

bool mounts_path_may_block(pid_t pid, const char *path)
{
	const struct view *v = view_of(pid);
	if (v->err)
		return true;
	/* Every mount on the way, not only the one that holds the file: a lookup through a FUSE
	 * directory asks its server (revalidation) even on the way to a mount below it. */
	for (uint32_t i = 0; i < v->t.n; i++) {
		const struct mnt *m = &v->t.v[i];
		size_t n = strlen(m->point);
		if (n == 1)
			n = 0;
		if (strncmp(path, m->point, n) == 0 && (path[n] == '/' || !path[n]) &&
		    mnt_may_block(v, m, 0))
			return true;
	}
	return false;
}

/* The mount ID of fd, from /proc/self/fdinfo (statx's STATX_MNT_ID needs 5.8 and headers that
 * have it; fdinfo has had it since 3.15). */
static int fd_mount_id(int fd, uint32_t *id)
{
	char path[48], text[512];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	_cleanup_close_ int ifd = open(path, O_RDONLY | O_CLOEXEC);
	if (ifd < 0)
		return -errno;
	ssize_t n = read(ifd, text, sizeof(text) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -EBADMSG;
	text[n] = '\0';
	const char *p = strstr(text, "mnt_id:");
	if (!p)
		return -EBADMSG;
	p += 7;
	while (*p == ' ' || *p == '\t')
		p++;
	uint64_t v;
	if (!parse_dec_u64(&p, text + n, &v) || v > UINT32_MAX)
		return -EBADMSG;
	*id = (uint32_t)v;
	return 0;
}

static int layer_has_dev(const char *dir, void *ud)
{
	const struct layer_walk *w = ud;
	const struct mnt *m = mnt_holding(&w->v->t, dir);
	return m && m->dev == w->want_dev;
}

bool mounts_overlay_matches(int fd, pid_t pid, uint64_t want_dev)
{
	struct statfs sfs;
	uint32_t id = 0;
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != OVERLAYFS_SUPER_MAGIC ||
	    fd_mount_id(fd, &id) < 0)
		return false;
	const struct view *v = view_of(pid);
	const struct mnt *m = mnt_by_id(&v->t, id);
	if (!m || strcmp(m->fstype, "overlay") != 0)
		return false;
	if (m->dev == want_dev)
		return true;
	struct layer_walk w = { .v = v, .want_dev = want_dev };
	return mnt_overlay_layers(m, layer_has_dev, &w) > 0;
}
